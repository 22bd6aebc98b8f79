"""Token streaming for a whole batch: ``model.generate`` runs in a thread and hands every decoding
step to ``BatchStreamer``; ``BatchStream`` turns those steps into per-row text deltas.
Prompts are built by stages/model/prompt.py (``encode_prompts``), exactly as for training and evaluate."""
from __future__ import annotations

import queue
import threading
import time
from typing import Iterator

import torch
from transformers.generation.streamers import BaseStreamer

from stages.model.generate import Decoding
from stages.model.prefix_cache import PromptPrefix
from stages.model.prompt import encode_prompts

_END = object()


class BatchStreamer(BaseStreamer):
    """Receives the prompt ids once, then a (batch,) tensor of new token ids per decoding step."""

    def __init__(self):
        self.steps: queue.Queue = queue.Queue()
        self._seen_prompt = False

    def put(self, value):
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        self.steps.put(value.reshape(-1).tolist())

    def end(self):
        self.steps.put(_END)


class _RowDecoder:
    """Incremental detokenisation: emit only complete characters (a CJK character can span tokens)."""

    def __init__(self, tokenizer, eos_ids: set[int], limit: int):
        self.tok, self.eos_ids, self.limit = tokenizer, eos_ids, limit
        self.ids: list[int] = []
        self.emitted = ""
        self.done = False
        self.capped = False

    def push(self, token: int | None) -> str:
        if token is not None and not self.done:
            if token in self.eos_ids:
                self.done = True
            else:
                self.ids.append(token)
                self.done = self.capped = len(self.ids) >= self.limit
        text = self.tok.decode(self.ids, skip_special_tokens=True).lstrip()
        if not self.done and text.endswith("\ufffd"):
            return ""
        delta = text[len(self.emitted):] if text.startswith(self.emitted) else ""
        self.emitted = text if text.startswith(self.emitted) else self.emitted
        return delta


@torch.inference_mode()
def _generate(model, inputs, max_new_tokens, gen_kwargs, streamer, errors):
    try:
        model.generate(**inputs, max_new_tokens=max_new_tokens, use_cache=True, streamer=streamer, **gen_kwargs)
    except BaseException as err:  # surfaced in the consuming generator
        errors.append(err)
        streamer.end()


class BatchStream:
    """Greedy (``decoding``: params generation.*), KV-cached generation for a batch, iterated as one
    list of text deltas (one per question) per decoding step. Rows that finished yield "" until the batch ends; each row stops at its own
    ``max_new_tokens``. With ``prefix`` (stages/model/prefix_cache.py) the shared system-prompt head is not
    prefilled again. After iteration: ``prompt_tokens``, ``new_tokens``, ``hit_cap`` per row, and
    ``seconds`` for the whole batch."""

    def __init__(self, model, tokenizer, questions: list[str], system: str, max_new_tokens: list[int],
                 prefix: PromptPrefix | None = None, decoding: Decoding | None = None):
        self.model, self.tokenizer, self.prefix = model, tokenizer, prefix
        self.decoding = decoding or Decoding()
        self.questions, self.system, self.max_new_tokens = questions, system, max_new_tokens
        self.prompt_tokens: list[int] = []
        self.cached_tokens = 0
        self.seconds = 0.0
        self._rows: list[_RowDecoder] = []

    @property
    def new_tokens(self) -> list[int]:
        return [len(r.ids) for r in self._rows]

    @property
    def hit_cap(self) -> list[bool]:
        return [r.capped for r in self._rows]

    def _inputs(self, device) -> dict:
        if self.prefix is not None:
            kw = self.prefix.generate_inputs(self.tokenizer, self.questions, device)
            cache = kw.get("cache")
            self.cached_tokens = cache.get_seq_length() if cache is not None else 0
        else:
            kw = dict(encode_prompts(self.tokenizer, self.questions, self.system).to(device))
        self.prompt_tokens = kw["attention_mask"].sum(dim=1).tolist()
        return kw

    def __iter__(self) -> Iterator[list[str]]:
        t0 = time.perf_counter()
        model, tokenizer = self.model, self.tokenizer
        device = next(model.parameters()).device
        gen_kwargs = self.decoding.generate_kwargs(model, tokenizer, max(self.max_new_tokens))
        eos_ids = set(gen_kwargs["eos_token_id"])
        self._rows = rows = [_RowDecoder(tokenizer, eos_ids, n) for n in self.max_new_tokens]
        kw = self._inputs(device)
        streamer = BatchStreamer()
        errors: list[BaseException] = []
        worker = threading.Thread(target=_generate, daemon=True,
                                  args=(model, kw, max(self.max_new_tokens), gen_kwargs, streamer, errors))
        worker.start()
        try:
            while True:
                step = streamer.steps.get()
                if step is _END:
                    break
                deltas = [row.push(tok) for row, tok in zip(rows, step)]
                if any(deltas):
                    yield deltas
            tail = [row.push(None) for row in rows]      # flush characters held back at the end
            if any(tail):
                yield tail
        finally:
            worker.join()
            self.seconds = time.perf_counter() - t0
        if errors:
            raise errors[0]


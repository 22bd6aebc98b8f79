"""Batched greedy answer generation through the shared prompt module — used by evaluate (base and
tuned predictions), serve and bench, so all of them prompt the model identically — and ``Decoding``,
the one generation config (params ``generation.*``) that predict_base, evaluate and serve share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList

from stages.model.prompt import encode_prompts

DEFAULT_STOP = ("<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class Decoding:
    """Greedy decoding settings (params ``generation.*``). ``repetition_penalty`` (>1 lowers the logit
    of every token already in the answer) and ``no_repeat_ngram_size`` (bans any token n-gram that
    already occurred in the answer) look at the ANSWER only (``AnswerRepetition``): transformers' own
    processors also count the prompt, which banned the system prompt's "拨打120…急诊" phrase from
    emergency answers. ``dry_*`` is the DRY ("don't repeat yourself") penalty of llama.cpp / koboldcpp /
    text-generation-webui (p-e-w's design), also over the answer only: a token that would extend a
    repeat of the answer's last ``L ≥ dry_allowed_length`` tokens loses ``dry_multiplier ·
    dry_base^(L − dry_allowed_length)`` logits — long copies (and drifting lists that copy a long prefix)
    become impossible while single common tokens (的, ，, 血压) stay free, unlike ``repetition_penalty``,
    which taxes every reused token and so ends Chinese answers early. ``stop`` are the tokens that end an
    answer (besides the model's own eos ids). ``min_new_tokens`` keeps every stop token suppressed until the
    answer has that many tokens (transformers' ``min_new_tokens``; 0 = off)."""
    max_new_tokens: int = 256
    min_new_tokens: int = 0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    stop: tuple[str, ...] = DEFAULT_STOP
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2

    @classmethod
    def from_params(cls, gp) -> "Decoding":
        return cls(max_new_tokens=gp.max_new_tokens, repetition_penalty=gp.repetition_penalty,
                   no_repeat_ngram_size=gp.no_repeat_ngram_size, stop=tuple(gp.stop_tokens),
                   dry_multiplier=gp.dry_multiplier, dry_base=gp.dry_base, dry_allowed_length=gp.dry_allowed_length,
                   min_new_tokens=gp.min_new_tokens)

    def describe(self) -> dict:
        """What an answer depends on (recorded with base predictions, compared by evaluate)."""
        out = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty,
               "no_repeat_ngram_size": self.no_repeat_ngram_size, "stop": list(self.stop)}
        if self.min_new_tokens > 0:
            out["min_new_tokens"] = self.min_new_tokens
        if self.dry_multiplier > 0:
            out["dry"] = {"multiplier": self.dry_multiplier, "base": self.dry_base,
                          "allowed_length": self.dry_allowed_length}
        return out

    def stop_ids(self, model, tokenizer) -> list[int]:
        """The model's eos ids, the tokenizer's eos and every ``stop`` token (unknown ones fail)."""
        eos = model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        ids.add(tokenizer.eos_token_id)
        vocab = tokenizer.get_vocab()
        for s in self.stop:
            if s not in vocab:
                raise ValueError(f"generation.stop_tokens: {s!r} is not a single token of this tokenizer")
            ids.add(vocab[s])
        return sorted(i for i in ids if i is not None)

    def generate_kwargs(self, model, tokenizer, cap: int | None = None) -> dict:
        """Keyword arguments for ``model.generate`` (without ``max_new_tokens``: callers may cap lower;
        ``cap``, the caller's cap, bounds ``min_new_tokens``)."""
        kw = {"do_sample": False, "pad_token_id": tokenizer.pad_token_id,
              "eos_token_id": self.stop_ids(model, tokenizer)}
        if self.min_new_tokens > 0:
            kw["min_new_tokens"] = min(self.min_new_tokens, cap or self.max_new_tokens)
        if self.repetition_penalty != 1.0 or self.no_repeat_ngram_size > 0 or self.dry_multiplier > 0:
            start = tokenizer.convert_tokens_to_ids(ANSWER_MARKER)
            if not isinstance(start, int) or start == tokenizer.unk_token_id:
                raise ValueError(f"generation.repetition_penalty/no_repeat_ngram_size/dry_multiplier need the chat "
                                 f"template's {ANSWER_MARKER!r} token to find where the answer starts; "
                                 "this tokenizer has none")
            kw["logits_processor"] = LogitsProcessorList(
                [AnswerRepetition(start, self.repetition_penalty, self.no_repeat_ngram_size,
                                  (self.dry_multiplier, self.dry_base, self.dry_allowed_length))])
        return kw


ANSWER_MARKER = "<|im_start|>"      # ChatML: the answer follows the last one (`<|im_start|>assistant\n`)


class AnswerRepetition(LogitsProcessor):
    """Repetition penalty and no-repeat n-gram ban over each row's answer tokens only: the tokens after
    the row's last ``start_id`` (stateless, so it works with left padding, batches and a cached prefix).
    Same arithmetic as transformers' processors (penalty: negative logits ×p, positive ÷p); ``dry``
    (multiplier, base, allowed_length) as in ``Decoding`` (its defaults live there), None or multiplier 0 = off."""

    def __init__(self, start_id: int, penalty: float = 1.0, ngram: int = 0,
                 dry: tuple[float, float, int] | None = None):
        self.start_id, self.penalty, self.ngram = start_id, penalty, ngram
        mult, base, allowed = dry or (0.0, 1.0, 1)
        self.dry_mult, self.dry_base, self.dry_allowed = float(mult), float(base), int(allowed)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for b, row in enumerate(input_ids.tolist()):
            start = len(row) - row[::-1].index(self.start_id) if self.start_id in row else 0
            ans = row[start + 2:]                      # skip the role header ("assistant", "\n")
            if not ans:
                continue
            if self.penalty != 1.0:
                idx = torch.tensor(sorted(set(ans)), device=scores.device)
                got = scores[b, idx]
                scores[b, idx] = torch.where(got < 0, got * self.penalty, got / self.penalty)
            n = self.ngram
            if n > 0 and len(ans) >= n:
                tail = ans[len(ans) - n + 1:]
                banned = {ans[i + n - 1] for i in range(len(ans) - n + 1) if ans[i:i + n - 1] == tail}
                if banned:
                    scores[b, list(banned)] = -float("inf")
            if self.dry_mult > 0:
                for tok, length in dry_match_lengths(ans, self.dry_allowed).items():
                    scores[b, tok] -= self.dry_mult * self.dry_base ** min(length - self.dry_allowed, 40)
        return scores


def dry_match_lengths(ans: list[int], allowed: int) -> dict[int, int]:
    """{token: L} for every token that, generated next, would extend a repeat of the answer's last L ≥
    ``allowed`` tokens (the longest such L per token): for each earlier position j whose preceding
    tokens end like the answer does, ``ans[j]`` is the token that continued them then."""
    n, out = len(ans), {}
    if n < max(allowed, 1):
        return out
    last = ans[-1]
    for j in range(1, n):
        if ans[j - 1] != last:
            continue
        length = 1
        while length < j and ans[j - 1 - length] == ans[n - 1 - length]:
            length += 1
        if length >= allowed and length > out.get(ans[j], 0):
            out[ans[j]] = length
    return out


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@torch.inference_mode()
def generate_answers(model, tokenizer, questions: list[str], system: str, max_new_tokens: int | None = None,
                     batch_size: int = 8, sort_by_length: bool = True, progress: bool = True,
                     max_prompt_tokens: int | None = None, decoding: Decoding | None = None) -> list[dict]:
    """Greedy-decode answers for ``questions`` with ``decoding`` (default: plain greedy, 256 tokens;
    ``max_new_tokens`` overrides its cap). Questions are grouped by prompt length (less padding),
    results come back in input order as ``{"answer", "new_tokens", "hit_cap"}``."""
    decoding = decoding or Decoding()
    cap = max_new_tokens if max_new_tokens is not None else decoding.max_new_tokens
    order = list(range(len(questions)))
    if sort_by_length:
        order.sort(key=lambda i: len(questions[i]))
    results: list[dict | None] = [None] * len(questions)
    device = next(model.parameters()).device
    kw = decoding.generate_kwargs(model, tokenizer, cap)
    eos_ids = set(kw["eos_token_id"])
    bar = tqdm(total=len(questions), desc="generate", unit="q", disable=not progress)
    for idx in _batches(order, batch_size):
        batch = encode_prompts(tokenizer, [questions[i] for i in idx], system, max_prompt_tokens).to(device)
        out = model.generate(**batch, max_new_tokens=cap, **kw)
        new = out[:, batch["input_ids"].shape[1]:]
        for row, i in zip(new.tolist(), idx):
            n = next((k for k, t in enumerate(row) if t in eos_ids), len(row))
            results[i] = {"answer": tokenizer.decode(row[:n], skip_special_tokens=True).strip(),
                          "new_tokens": n, "hit_cap": n >= cap}
        bar.update(len(idx))
    bar.close()
    return results  # type: ignore[return-value]

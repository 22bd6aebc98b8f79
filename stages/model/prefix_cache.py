"""Reuse of the shared system-prompt KV cache across generate calls.

Every prompt starts with the same chat-template head (``<|im_start|>system ... <|im_end|>`` plus the
start of the user turn, ~90 tokens with the default system prompt), usually longer than the
question itself. ``PromptPrefix`` runs that head through the model once; each batch then starts
from a copy of its keys/values and prefills only the per-question tokens.

The batch is laid out ``[shared prefix][left padding][question + assistant header]`` with the
padding masked out. Position ids come from the attention mask (as in ``generate``), so every row
sees exactly the positions, tokens and attention of its unpadded prompt: outputs match a plain
``generate`` call up to floating-point rounding (tested)."""
from __future__ import annotations

import logging

import torch

from stages.model.prompt import render_prompt

logger = logging.getLogger(__name__)


def _token_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PromptPrefix:
    """KV cache of the token prefix shared by all prompts for one system prompt."""

    def __init__(self, model, tokenizer, system: str):
        probes = [tokenizer(render_prompt(tokenizer, q, system), add_special_tokens=False)["input_ids"]
                  for q in ("甲", "乙")]
        n = _token_prefix_len(*probes)
        if n == 0:
            raise ValueError("prompts for different questions share no token prefix: nothing to cache")
        self.ids: list[int] = probes[0][:n]
        self.system = system
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([self.ids], device=device), use_cache=True)
        self._kv = [(layer.keys, layer.values) for layer in out.cache.layers]
        self._config = model.config

    def __len__(self) -> int:
        return len(self.ids)

    def cache(self, batch_size: int, length: int):
        """A fresh ``DynamicCache`` holding the first ``length`` prefix positions for ``batch_size`` rows
        (generate extends it in place, so every call needs its own)."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=[(k[:, :, :length].expand(batch_size, -1, -1, -1).contiguous(),
                                             v[:, :, :length].expand(batch_size, -1, -1, -1).contiguous())
                                            for k, v in self._kv], config=self._config)

    def generate_inputs(self, tokenizer, questions: list[str], device) -> dict:
        """``generate`` kwargs for ``questions``: input_ids/attention_mask laid out as
        [prefix][pad][rest] plus ``cache`` (a KV cache covering the prefix)."""
        rows = [tokenizer(render_prompt(tokenizer, q, self.system), add_special_tokens=False)["input_ids"]
                for q in questions]
        # a question whose first token merges with the end of the template head shares fewer tokens
        p = min(_token_prefix_len(self.ids, r) for r in rows)
        if any(len(r) == p for r in rows):
            p -= 1                       # keep at least one token per row for the prefill step
        rests = [r[p:] for r in rows]
        out_cache = self.cache(len(rows), p) if p > 0 else None
        width = max(len(r) for r in rests)
        pad = tokenizer.pad_token_id
        ids = [self.ids[:p] + [pad] * (width - len(r)) + r for r in rests]
        mask = [[1] * p + [0] * (width - len(r)) + [1] * len(r) for r in rests]
        return {"input_ids": torch.tensor(ids, device=device),
                "attention_mask": torch.tensor(mask, device=device),
                **({"cache": out_cache} if out_cache is not None else {})}

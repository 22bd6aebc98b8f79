"""Batched greedy answer generation through the shared prompt module — used by evaluate (base and
tuned predictions), serve and bench, so all of them prompt the model identically."""
from __future__ import annotations

from typing import Iterable

import torch
from tqdm.auto import tqdm

from stages.model.prompt import encode_prompts


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@torch.inference_mode()
def generate_answers(model, tokenizer, questions: list[str], system: str, max_new_tokens: int = 128,
                     batch_size: int = 8, sort_by_length: bool = True, progress: bool = True,
                     max_prompt_tokens: int | None = None) -> list[dict]:
    """Greedy-decode answers for ``questions``. Questions are grouped by prompt length (less padding),
    results come back in input order as ``{"answer", "new_tokens", "hit_cap"}``."""
    order = list(range(len(questions)))
    if sort_by_length:
        order.sort(key=lambda i: len(questions[i]))
    results: list[dict | None] = [None] * len(questions)
    device = next(model.parameters()).device
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) | {tokenizer.eos_token_id}
    bar = tqdm(total=len(questions), desc="generate", unit="q", disable=not progress)
    for idx in _batches(order, batch_size):
        batch = encode_prompts(tokenizer, [questions[i] for i in idx], system, max_prompt_tokens).to(device)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        for row, i in zip(new.tolist(), idx):
            n = next((k for k, t in enumerate(row) if t in eos_ids), len(row))
            results[i] = {"answer": tokenizer.decode(row[:n], skip_special_tokens=True).strip(),
                          "new_tokens": n, "hit_cap": n >= max_new_tokens}
        bar.update(len(idx))
    bar.close()
    return results  # type: ignore[return-value]

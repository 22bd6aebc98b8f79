"""Negative log-likelihood of answer tokens given the prompt, exactly as training sees them
(stages.model.prompt.encode_example: same chat template, same label mask — answer tokens plus the
end-of-turn tokens the model must emit). Used for reference-answer perplexity and for scoring
multiple-choice options.

The LM head is applied only to answer positions, in chunks, so a batch never materialises
``batch × length × vocab`` logits (152k vocab: 8 × 700 tokens would be 3.4 GB)."""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from stages.model.prompt import IGNORE_INDEX, encode_example

LOGIT_CHUNK = 1024  # answer positions per LM-head call


@torch.inference_mode()
def answer_nll(model, tokenizer, pairs: list[tuple[str, str]], system: str, max_len: int,
               batch_size: int = 8, progress: bool = True, desc: str = "nll") -> list[dict]:
    """For each (question, answer): ``{"nll": summed NLL (nats), "tokens": scored tokens,
    "truncated": answer cut to fit max_len}``, in input order."""
    enc = [encode_example(tokenizer, q, a, system, max_len) for q, a in pairs]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i].input_ids))
    device = next(model.parameters()).device
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[dict | None] = [None] * len(enc)
    bar = tqdm(total=len(enc), desc=desc, unit="ex", disable=not progress)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        width = max(len(enc[i].input_ids) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        labels = torch.full((len(idx), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # right padding: positions are unchanged for every row
            n = len(enc[i].input_ids)
            ids[row, :n] = torch.tensor(enc[i].input_ids)
            labels[row, :n] = torch.tensor(enc[i].labels)
            mask[row, :n] = 1
        hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        target = labels[:, 1:].to(device)              # token t is predicted from position t-1
        rows, cols = (target != IGNORE_INDEX).nonzero(as_tuple=True)
        nll = torch.zeros(len(idx), dtype=torch.float64, device=device)
        for c in range(0, len(rows), LOGIT_CHUNK):
            r, k = rows[c:c + LOGIT_CHUNK], cols[c:c + LOGIT_CHUNK]
            logits = head(hidden[r, k]).float()
            tok_nll = torch.nn.functional.cross_entropy(logits, target[r, k], reduction="none")
            nll.index_add_(0, r, tok_nll.double())
        counts = (target != IGNORE_INDEX).sum(dim=1)
        for row, i in enumerate(idx):
            out[i] = {"nll": float(nll[row]), "tokens": int(counts[row]), "truncated": enc[i].truncated}
        bar.update(len(idx))
    bar.close()
    return out  # type: ignore[return-value]


def perplexity(nll_sum: float, tokens: int) -> float:
    """Token-weighted perplexity exp(ΣNLL / Σtokens) over a group of answers."""
    if tokens <= 0:
        raise ValueError("no answer tokens to compute perplexity over")
    return math.exp(nll_sum / tokens)

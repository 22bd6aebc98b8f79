"""Capability retention: multiple-choice accuracy by option log-likelihood.

Input JSONL, one item per line: ``{"question": "...A. ...\\nB. ...", "answer": "B"}`` — options inline
in the question, labelled with capital letters (``A.`` ``A、`` ``A)`` ``A：``…); an optional
``"options": ["A", "B", ...]`` overrides the detected letters. Each letter is scored as the whole
assistant reply (prompt built by stages.model.prompt, question followed by MCQ_INSTRUCTION) and the
most likely letter is the model's choice. Run for base and tuned on the same items: a drop means
LoRA cost general ability."""
from __future__ import annotations

import re
from pathlib import Path

from stages.common.jsonio import read_jsonl
from stages.evaluation.metrics.perplexity import answer_nll

MCQ_INSTRUCTION = "\n请直接回答正确选项的字母。"
_OPTION = re.compile(r"(?<![A-Za-z])([A-H])\s*[.．、:：)）]")


def option_letters(question: str) -> list[str]:
    """Letters of inline options, in order: A, B, C… (must start at A and be consecutive)."""
    seen = []
    for m in _OPTION.finditer(question):
        letter = m.group(1)
        if letter == chr(ord("A") + len(seen)):
            seen.append(letter)
    return seen


def load_mcq(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"eval.mcq_file: {path} not found")
    items = []
    for n, r in enumerate(read_jsonl(path), 1):
        q, a = str(r.get("question") or "").strip(), str(r.get("answer") or "").strip().upper()
        letters = [str(x).strip().upper() for x in r["options"]] if r.get("options") else option_letters(q)
        if not q or len(letters) < 2:
            raise ValueError(f"{path}:{n}: need a question with at least two lettered options (A. … B. …)")
        if a not in letters:
            raise ValueError(f"{path}:{n}: answer {a!r} is not one of the options {letters}")
        items.append({"id": r.get("id", n), "question": q, "answer": a, "options": letters})
    if not items:
        raise ValueError(f"{path}: no multiple-choice items")
    return items


def mcq_predict(model, tokenizer, items: list[dict], system: str, max_len: int, batch_size: int = 8,
                progress: bool = True, desc: str = "mcq") -> list[dict]:
    """Per item: chosen letter, correctness and the log-likelihood of every option."""
    pairs, owner = [], []
    for k, it in enumerate(items):
        for letter in it["options"]:
            pairs.append((it["question"] + MCQ_INSTRUCTION, letter))
            owner.append((k, letter))
    scores = answer_nll(model, tokenizer, pairs, system, max_len, batch_size, progress, desc)
    loglik: list[dict[str, float]] = [{} for _ in items]
    for (k, letter), s in zip(owner, scores):
        loglik[k][letter] = -s["nll"]
    out = []
    for it, ll in zip(items, loglik):
        choice = max(it["options"], key=lambda x: ll[x])  # ties → first option, deterministic
        out.append({"id": it["id"], "answer": it["answer"], "choice": choice, "correct": choice == it["answer"],
                    "loglik": ll})
    return out


def mcq_accuracy(results: list[dict]) -> float:
    if not results:
        raise ValueError("no multiple-choice results")
    return sum(r["correct"] for r in results) / len(results)

"""Training data for the train stage: read and validate a split file, pick a deterministic
tier-stratified subset, and encode it through the shared prompt module (answer-only labels).

The subset here is *proportional* (each difficulty tier keeps its share of the split, every tier
present gets at least one example, seeded), unlike ``stages.evaluation.evalset`` which round-robins tiers for
a balanced test set: training should see the corpus distribution."""
from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from stages.common.jsonio import iter_lines
from stages.model.prompt import IGNORE_INDEX, encode_example
from stages.data.tiers import TIERS

REQUIRED_TEXT = ("id", "question", "answer")


class DataError(ValueError):
    """Bad split file content; the message names file:line and field."""


def read_split(path: str | Path) -> list[dict]:
    """Read a split JSONL, validating every field training needs (file:line: field: problem)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found (run `dvc repro split` first)")
    out, seen = [], {}
    for n, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: invalid JSON: {err}") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
        for key in REQUIRED_TEXT:
            val = rec.get(key)
            if not isinstance(val, str) or not val.strip():
                raise DataError(f"{path}:{n}: field {key!r} must be a non-empty string, got {val!r:.60}")
        tier = rec.get("difficulty")
        if tier not in TIERS:
            raise DataError(f"{path}:{n}: field 'difficulty' must be one of {list(TIERS)}, got {tier!r}")
        if rec["id"] in seen:
            raise DataError(f"{path}:{n}: duplicate id {rec['id']!r} (first at line {seen[rec['id']]})")
        seen[rec["id"]] = n
        out.append(rec)
    if not out:
        raise DataError(f"{path}: no records")
    return out


def stratified_subset(records: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` records (0 = all), proportional per difficulty tier with at least one per tier present,
    chosen with a seeded shuffle inside each tier; the result keeps the input order."""
    if n <= 0 or n >= len(records):
        return list(records)
    by_tier: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_tier[r["difficulty"]].append(i)
    tiers = [t for t in TIERS if t in by_tier]
    if n < len(tiers):
        raise DataError(f"subset of {n} cannot hold every difficulty tier present ({tiers}); raise the limit")
    total = len(records)
    # largest-remainder apportionment with a floor of 1 per tier
    quota = {t: max(1, math.floor(n * len(by_tier[t]) / total)) for t in tiers}
    rema = sorted(tiers, key=lambda t: (-(n * len(by_tier[t]) / total - math.floor(n * len(by_tier[t]) / total)),
                                        TIERS.index(t)))
    while sum(quota.values()) < n:
        for t in rema:
            if sum(quota.values()) < n and quota[t] < len(by_tier[t]):
                quota[t] += 1
    while sum(quota.values()) > n:   # floors of 1 can overshoot: take back from the largest tiers
        t = max(tiers, key=lambda t: (quota[t], -TIERS.index(t)))
        quota[t] -= 1
    picked = []
    for t in tiers:
        idx = sorted(by_tier[t], key=lambda i: records[i]["id"])
        random.Random(f"{seed}:{t}").shuffle(idx)
        picked.extend(idx[:quota[t]])
    return [records[i] for i in sorted(picked)]


@dataclass
class Example:
    id: str
    tier: str
    input_ids: list[int]
    labels: list[int]
    truncated: bool
    answer_tokens: int            # before truncation

    @property
    def targets(self) -> int:
        """Tokens that carry loss (labels after the causal shift)."""
        return sum(1 for t in self.labels[1:] if t != IGNORE_INDEX)


@dataclass
class EncodeStats:
    examples: int
    truncated: int
    answer_tokens_cut: int
    tokens: int
    target_tokens: int

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": v for k, v in self.__dict__.items()}


def encode_records(tokenizer, records: list[dict], system: str, max_len: int) -> tuple[list[Example], EncodeStats]:
    """Encode with ``stages.model.prompt.encode_example``; every example is kept (over-long answers are cut
    and counted, never dropped)."""
    out = []
    for r in records:
        enc = encode_example(tokenizer, r["question"], r["answer"], system, max_len)
        out.append(Example(r["id"], r["difficulty"], enc.input_ids, enc.labels, enc.truncated, enc.answer_tokens))
    kept = [sum(1 for t in e.labels if t != IGNORE_INDEX) for e in out]
    stats = EncodeStats(
        examples=len(out), truncated=sum(e.truncated for e in out),
        answer_tokens_cut=sum(e.answer_tokens - k for e, k in zip(out, kept)),
        tokens=sum(len(e.input_ids) for e in out), target_tokens=sum(e.targets for e in out))
    return out, stats


def tier_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r["difficulty"]] += 1
    return {t: counts[t] for t in TIERS if counts[t]}

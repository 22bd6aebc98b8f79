"""Which test examples evaluation scores: a deterministic subset of the test split, stratified by
difficulty tier (round-robin over tiers, and over categories inside a tier) so every tier is present
even at a small ``eval.max_examples``. ``predict_base`` and ``evaluate`` both call this, so the base
and tuned predictions always cover the same examples."""
from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from pathlib import Path

from stages.common.jsonio import read_jsonl
from stages.data.tiers import TIERS

REQUIRED = ("id", "question", "answer")


def _key(rid: str) -> str:
    # stable pseudo-random order that does not depend on file order
    return hashlib.sha1(str(rid).encode("utf-8")).hexdigest()


def _round_robin(groups: dict[str, list[dict]]) -> list[dict]:
    queues = [list(groups[k]) for k in sorted(groups)]
    out = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def select_examples(records: list[dict], max_examples: int) -> list[dict]:
    """Deterministic tier-stratified subset; ``max_examples=0`` keeps all (in the same order)."""
    by_tier: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(records, key=lambda r: _key(r["id"])):
        by_tier[r.get("difficulty") or "unknown"].append(r)
    ordered_tiers = [t for t in TIERS if t in by_tier] + sorted(set(by_tier) - set(TIERS))
    per_tier = []
    for t in ordered_tiers:
        by_cat: dict[str, list[dict]] = defaultdict(list)
        for r in by_tier[t]:
            by_cat[r.get("category") or "unknown"].append(r)
        per_tier.append(_round_robin(by_cat))
    picked = []
    while any(per_tier):
        for q in per_tier:
            if q:
                picked.append(q.pop(0))
    return picked[:max_examples] if max_examples > 0 else picked


def load_eval_examples(path: str | Path, max_examples: int) -> list[dict]:
    """Read the test split, validate the fields evaluation needs, and select the subset."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: test split not found (run `dvc repro split` first)")
    records = read_jsonl(path)
    if not records:
        raise ValueError(f"{path}: test split is empty")
    for n, r in enumerate(records, 1):
        missing = [k for k in REQUIRED if not str(r.get(k) or "").strip()]
        if missing:
            raise ValueError(f"{path}: record {n}: missing {missing}")
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate ids in the test split")
    picked = select_examples(records, max_examples)
    all_tiers = {r.get("difficulty") or "unknown" for r in records}
    missing = sorted(all_tiers - {r.get("difficulty") or "unknown" for r in picked})
    if missing:
        print(f"warning: eval.max_examples={max_examples} is below the number of tiers; "
              f"tiers not evaluated: {missing}", file=sys.stderr)
    return picked

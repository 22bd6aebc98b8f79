"""Training data for the train stage: read and validate a split file, pick a deterministic
tier-stratified subset, and encode it through the shared prompt module (answer-only labels) into a
🤗 ``datasets`` Arrow table (memory-mapped, ``map`` with ``num_proc``, fingerprint cache), so a
100k-example source is not held as Python lists (bench/train_data_scale.py).

The subset here is *proportional* (each difficulty tier keeps its share of the split, every tier
present gets at least one example, seeded), unlike ``stages.evaluation.evalset`` which round-robins tiers for
a balanced test set: training should see the corpus distribution."""
from __future__ import annotations

import math
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.common.jsonio import iter_json_objects
from stages.model.prompt import IGNORE_INDEX, encode_example
from stages.data.tiers import TIERS

REQUIRED_TEXT = ("id", "question", "answer")


class DataError(ValueError):
    """Bad split file content; the message names file:line and field."""


def read_split(path: str | Path, keep_text: bool = True) -> list[dict]:
    """Read a split JSONL, validating every field training needs (file:line: field: problem).
    ``keep_text=False`` keeps only ``id`` and ``difficulty`` per record (the stage validates this way
    and holds the text in Arrow, ``load_split_dataset``)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found (run `dvc repro split` first)")
    out, seen = [], {}
    for n, rec in iter_json_objects(path, DataError):
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
        out.append(rec if keep_text else {"id": rec["id"], "difficulty": tier, "source": rec.get("source")})
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


def _stratified_positions(records: list[dict], positions: list[int], n: int, seed: int) -> list[int]:
    sub = [records[i] for i in positions]
    if n <= 0 or n >= len(sub):
        return positions
    by_id = {r["id"]: i for i, r in zip(positions, sub)}
    return sorted(by_id[r["id"]] for r in stratified_subset(sub, n, seed))


def subset_indices(records: list[dict], n: int, seed: int, source_caps: dict[str, int] | None = None) -> list[int] | None:
    """Positions (file order) of the training subset; None = all records. ``source_caps`` first keeps
    at most ``cap`` records of each named ``source`` (tier-stratified, seeded: how a large user source
    is mixed with the authored corpus), then ``n`` (0 = all) takes a tier-stratified subset of the rest."""
    positions = list(range(len(records)))
    if source_caps:
        by_src: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(records):
            by_src[str(r.get("source") or "")].append(i)
        unknown = sorted(set(source_caps) - set(by_src))
        if unknown:
            raise DataError(f"train.source_caps names sources {unknown} that the split does not contain "
                            f"(sources: {sorted(by_src)})")
        positions = sorted(p for src, idx in by_src.items()
                           for p in _stratified_positions(records, idx, source_caps.get(src, 0), seed))
    positions = _stratified_positions(records, positions, n, seed)
    return None if len(positions) == len(records) else positions


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
    examples: int                 # kept (trained on / evaluated)
    truncated: int                # longer than max_len (cut, or dropped with overlong=drop)
    dropped: int                  # left out because they were too long (overlong=drop)
    answer_tokens_cut: int
    tokens: int
    target_tokens: int

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": v for k, v in self.__dict__.items()}


class EncodedSet:
    """Encoded examples held in a 🤗 ``datasets.Dataset`` (memory-mapped Arrow when it came from a
    file); rows are materialised as ``Example`` only when a batch asks for them. ``lengths`` and
    ``targets`` (what the batch planner needs) are read once as columns."""

    def __init__(self, ds):
        self.ds = ds
        cols = _columns(ds, ("length", "targets"))
        self.lengths: list[int] = cols["length"].tolist()
        self.targets: list[int] = cols["targets"].tolist()

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Example:
        r = self.ds[int(i)]
        return Example(r["id"], r["difficulty"], r["input_ids"], r["labels"], r["truncated"], r["answer_tokens"])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _columns(ds, names) -> dict[str, np.ndarray]:
    """Whole columns as numpy arrays (one Arrow read each, no per-row Python objects)."""
    if not len(ds):
        return {n: np.zeros(0, dtype=np.int64) for n in names}
    np_ds = ds.with_format("numpy", columns=list(names))
    return {n: np.asarray(np_ds[n]) for n in names}


def _encode_batch(batch: dict, tokenizer, system: str, max_len: int) -> dict:
    out = {k: [] for k in ("input_ids", "labels", "truncated", "answer_tokens", "length", "targets", "kept")}
    for q, a in zip(batch["question"], batch["answer"]):
        enc = encode_example(tokenizer, q, a, system, max_len)
        out["input_ids"].append(enc.input_ids)
        out["labels"].append(enc.labels)
        out["truncated"].append(enc.truncated)
        out["answer_tokens"].append(enc.answer_tokens)
        out["length"].append(len(enc.input_ids))
        out["targets"].append(sum(1 for t in enc.labels[1:] if t != IGNORE_INDEX))
        out["kept"].append(sum(1 for t in enc.labels if t != IGNORE_INDEX))
    return out


def auto_num_proc(n_examples: int, num_proc: int = 0) -> int:
    """``train.num_proc``; 0 = 1 process below 10k examples (start-up costs more than it saves),
    else one per CPU core (at most 8)."""
    if num_proc > 0:
        return num_proc
    return 1 if n_examples < 10_000 else max(1, min(8, os.cpu_count() or 1))


def encode_dataset(ds, tokenizer, system: str, max_len: int, overlong: str = "cut", num_proc: int = 0,
                   fingerprint: str | None = None) -> tuple[EncodedSet, EncodeStats]:
    """Tokenise a ``datasets.Dataset`` of records with ``stages.model.prompt.encode_example``
    (``Dataset.map``, batched, ``num_proc`` processes; with ``fingerprint`` the result is cached
    next to the dataset's Arrow files and reused by the next run with the same fingerprint).
    ``overlong``: ``cut`` keeps examples longer than ``max_len`` with their answer cut (the end token
    is lost); ``drop`` leaves them out, so every trained answer ends with its end-of-turn token."""
    keep_cols = {"id", "difficulty"}
    enc = ds.map(_encode_batch, batched=True, batch_size=256, num_proc=auto_num_proc(len(ds), num_proc) if len(ds) else None,
                 fn_kwargs={"tokenizer": tokenizer, "system": system, "max_len": max_len},
                 remove_columns=[c for c in ds.column_names if c not in keep_cols],
                 new_fingerprint=fingerprint, desc="tokenise")
    names = ("truncated", "answer_tokens", "length", "targets", "kept")
    cols = _columns(enc, names)
    trunc = cols["truncated"].astype(bool)
    n_trunc = int(trunc.sum())
    if overlong == "drop" and n_trunc:
        if n_trunc == len(enc):
            raise DataError(f"every example is longer than train.max_len={max_len}; raise it or set train.overlong: cut")
        enc = enc.select(np.flatnonzero(~trunc))
        cols = _columns(enc, names)
    stats = EncodeStats(
        examples=len(enc), truncated=n_trunc, dropped=n_trunc if overlong == "drop" else 0,
        answer_tokens_cut=int(cols["answer_tokens"].sum() - cols["kept"].sum()),
        tokens=int(cols["length"].sum()), target_tokens=int(cols["targets"].sum()))
    return EncodedSet(enc), stats


def encode_records(tokenizer, records: list[dict], system: str, max_len: int,
                   overlong: str = "cut") -> tuple[EncodedSet, EncodeStats]:
    """In-memory records → ``encode_dataset`` (tests, benches; the stage reads files with ``load_split_dataset``)."""
    from datasets import Dataset

    cols = ("id", "difficulty", "question", "answer")
    ds = Dataset.from_dict({c: [r[c] for r in records] for c in cols})
    return encode_dataset(ds, tokenizer, system, max_len, overlong)


def load_split_dataset(path: str | Path, indices: list[int] | None, cache_dir: str | Path):
    """A validated split file as a memory-mapped Arrow dataset (``datasets`` JSON loader, cached in
    ``cache_dir`` by file content), optionally restricted to ``indices`` (file order)."""
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache_dir))
    ds = ds.select_columns([c for c in ("id", "difficulty", "question", "answer") if c in ds.column_names])
    if indices is not None and len(indices) != len(ds):
        ds = ds.select(indices)
    return ds


def tier_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r["difficulty"]] += 1
    return {t: counts[t] for t in TIERS if counts[t]}

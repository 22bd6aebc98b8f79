"""Triage data: the authored labelled questions (data/triage/*.jsonl), their seeded condition-stratified
train/val/test split, the k folds over train+val that choose the thresholds, and the corpus rows used as
extra training data.

Authored row: ``{"text", "label": none|emergency|self_harm, "condition", "group", ...}``; a bad row
fails with ``file:line: field: problem``."""
from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from stages.common.jsonio import iter_json_objects
from stages.safety.normalize import match_text
from stages.safety.rules import detect_emergency, rule_label
from stages.safety.triage_model import LABELS


class TriageDataError(ValueError):
    pass


def read_rows(path: str | Path) -> list[dict]:
    """Rows of one JSONL file, validated; ``origin`` = ``file:line``."""
    path = Path(path)
    rows = []
    for n, r in iter_json_objects(path, TriageDataError):
        where = f"{path}:{n}"
        if not isinstance(r.get("text"), str) or not r["text"].strip():
            raise TriageDataError(f"{where}: text: missing or empty")
        if r.get("label") not in LABELS:
            raise TriageDataError(f"{where}: label: {r.get('label')!r} is not one of {list(LABELS)}")
        for k in ("condition", "group"):
            if r.get(k) is not None and not isinstance(r[k], str):
                raise TriageDataError(f"{where}: {k}: must be a string")
        rows.append({"text": r["text"].strip(), "label": r["label"], "condition": r.get("condition") or "unknown",
                     "group": r.get("group") or "unknown", "origin": f"{path.as_posix()}:{n}"})
    return rows


def authored_files(data_dir: str | Path) -> list[Path]:
    """Top-level *.jsonl of the triage data folder, sorted (subfolders such as independent/ are not read)."""
    files = sorted(Path(data_dir).glob("*.jsonl"))
    if not files:
        raise TriageDataError(f"{data_dir}: no *.jsonl triage data")
    return files


def _read_new(files, seen: set[str]) -> tuple[list[dict], int]:
    """Rows of ``files`` whose ``match_text`` is not in ``seen`` (updated as it goes); (rows, dropped)."""
    rows, dropped = [], 0
    for f in files:
        for r in read_rows(f):
            key = match_text(r["text"])
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            rows.append(r)
    return rows, dropped


def load_authored(data_dir: str | Path) -> tuple[list[dict], int]:
    """All authored rows, exact duplicates (same ``match_text``) dropped after the first; (rows, dropped)."""
    return _read_new(authored_files(data_dir), set())


def train_only_rows(paths: list[str | Path], authored: list[dict],
                    measured: Sequence[str | Path] = ()) -> tuple[list[dict], int]:
    """Rows of the ``triage.train_only`` files: fitted on (in every fold and by the served model), never
    split, scored or used for a threshold. A row whose ``match_text`` equals an authored row (any split, so
    the test split cannot leak in), a row of a ``measured`` file (the independent and held-back sets) or an
    earlier train-only row is dropped; (rows, dropped)."""
    seen = {match_text(r["text"]) for r in authored}
    seen |= {match_text(r["text"]) for f in measured for r in read_rows(f)}
    return _read_new(paths, seen)


def split_rows(rows: list[dict], seed: int, val_frac: float, test_frac: float) -> dict[str, list[dict]]:
    """Seeded split stratified by (label, condition): every condition with ≥ 3 rows has ≥ 1 test row.
    Each split keeps the input order, so the result depends only on the data and the seed."""
    strata: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        strata[(r["label"], r["condition"])].append(i)
    where: dict[int, str] = {}
    for key in sorted(strata):
        idx = strata[key][:]
        random.Random(f"{seed}:{key[0]}:{key[1]}").shuffle(idx)
        n = len(idx)
        n_test = max(1, round(n * test_frac)) if n >= 3 and test_frac > 0 else 0
        n_val = max(1, round(n * val_frac)) if n - n_test >= 3 and val_frac > 0 else 0
        for j, i in enumerate(idx):
            where[i] = "test" if j < n_test else "val" if j < n_test + n_val else "train"
    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for i, r in enumerate(rows):
        out[where[i]].append(r)
    return out


def fold_ids(rows: list[dict], seed: int, k: int) -> list[int]:
    """Seeded k-fold assignment stratified by (label, condition): each stratum is shuffled on its own and
    dealt round-robin, continuing where the previous stratum stopped, so every fold gets its share of each
    label and condition. Depends only on the rows (in order) and the seed."""
    if k < 2:
        raise ValueError(f"fold_ids: k must be at least 2, got {k}")
    strata: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        strata[(r["label"], r["condition"])].append(i)
    fold, nxt = [0] * len(rows), 0
    for key in sorted(strata):
        idx = strata[key][:]
        random.Random(f"{seed}:fold:{key[0]}:{key[1]}").shuffle(idx)
        for i in idx:
            fold[i] = nxt % k
            nxt += 1
    return fold


def corpus_rows(paths: list[str | Path], negatives: bool) -> list[dict]:
    """Extra training rows from the QA corpus split (never its test split): the emergency tier as
    ``emergency`` — or ``self_harm`` where the self-harm rules fire on it ("好多天都不想活了，想挂心理科":
    the corpus' tiers do not tell the two apart, the triage labels do) — and, when ``negatives``, every other
    tier as ``none``."""
    out = []
    for p in paths:
        with Path(p).open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                r = json.loads(line)
                emergency = r.get("difficulty") == "emergency"
                if emergency or negatives:
                    self_harm = emergency and rule_label(detect_emergency(r["question"])) == "self_harm"
                    label = "self_harm" if self_harm else "emergency" if emergency else "none"
                    out.append({"text": r["question"], "label": label,
                                "condition": f"corpus:{r.get('category') or 'unknown'}", "group": None,
                                "origin": f"{Path(p).as_posix()}:{n}"})
    return out


def corpus_emergency_qa(path: str | Path) -> tuple[list[str], list[str]]:
    """(questions, answers) of the cleaned corpus' emergency tier: the vetted answers for replies."""
    qs, ans = [], []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("difficulty") == "emergency":
                    qs.append(r["question"])
                    ans.append(r["answer"])
    return qs, ans

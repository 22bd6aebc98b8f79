"""split stage: data/clean/qa.jsonl → data/split/{train,val,test}.jsonl + metrics/split.json.

Deterministic (seeded) and stratified by tier × category where counts allow (rare categories fall
back to their tier's stratum). Near-duplicate question clusters are assigned as a unit, so
paraphrases never straddle train and test. ``max_train`` caps train with a stratified subsample."""
from __future__ import annotations

import argparse
import hashlib
import logging
import random
from collections import Counter, defaultdict
from pathlib import Path

from stages.common.config import SplitParams, load_params
from stages.data.dedup import clusters
from stages.common.jsonio import read_jsonl, write_json, write_jsonl

log = logging.getLogger("stages.split")
SPLITS = ("train", "val", "test")


def stratum_keys(records: list[dict], by: list[str], min_size: int) -> list[str]:
    """Full key (e.g. tier|category) where that stratum has ≥ min_size records, else coarser keys."""
    out = ["*"] * len(records)
    for k in range(1, len(by) + 1):          # coarse → fine: a finer key wins when its stratum is big enough
        labels = ["|".join(r[f] for f in by[:k]) for r in records]
        counts = Counter(labels)
        for i, label in enumerate(labels):
            if counts[label] >= min_size:
                out[i] = label
    return out


def question_key(seed: int, question: str) -> str:
    """A seeded hash of the question alone: a cluster's place in its stratum's order. Editing an answer (an
    expert verdict, a medical fix) changes the record id but not this key, so no record changes split."""
    return hashlib.sha256(f"{seed}\x00{question}".encode("utf-8")).hexdigest()


def assign(records: list[dict], sp: SplitParams) -> tuple[list[str], dict[str, str]]:
    """Return the split name for each record and the record-id → cluster-representative map.

    Within each stratum, clusters are taken in the order of their smallest ``question_key`` — test first,
    then val, up to their quotas, then train — so the assignment depends on the questions and the seed only;
    a new record moves at most the clusters at a quota boundary of its stratum."""
    n = len(records)
    ids = [r["id"] for r in records]
    rep = clusters(ids, [r["question"] for r in records], sp.group_threshold)
    min_size = max(2, round(2 / max(min(sp.val_frac, sp.test_frac) or 1, 1e-9))) if sp.stratify_by else n + 1
    strata = stratum_keys(records, list(sp.stratify_by), min_size) if sp.stratify_by else ["*"] * n
    qkey = [question_key(sp.seed, r["question"]) for r in records]
    anchor: dict[str, int] = {}                  # cluster → its member with the smallest question key
    for i in range(n):
        c = rep[ids[i]]
        if c not in anchor or qkey[i] < qkey[anchor[c]]:
            anchor[c] = i
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i in range(n):                           # a cluster lives in the stratum of its anchor
        c = rep[ids[i]]
        groups[strata[anchor[c]]][c].append(i)
    out = [""] * n
    for stratum in sorted(groups):
        members = groups[stratum]
        order = sorted(members, key=lambda c: (qkey[anchor[c]], c))
        size = sum(len(members[g]) for g in order)
        want = {"test": round(size * sp.test_frac), "val": round(size * sp.val_frac)}
        got = Counter()
        for g in order:
            target = next((s for s in ("test", "val") if got[s] < want[s]), "train")
            for i in members[g]:
                out[i] = target
            got[target] += len(members[g])
    return out, rep


def cap_train(train: list[dict], cap: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Stratified (by tier) deterministic subsample of ``cap`` records; returns (kept, dropped)."""
    if not cap or len(train) <= cap:
        return train, []
    rng = random.Random(seed + 1)
    by_tier: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(train, key=lambda r: r["id"]):
        by_tier[r["difficulty"]].append(r)
    for rows in by_tier.values():
        rng.shuffle(rows)
    # proportional allocation with largest remainders
    quotas = {t: cap * len(rows) / len(train) for t, rows in by_tier.items()}
    take = {t: int(q) for t, q in quotas.items()}
    for t in sorted(quotas, key=lambda t: (take[t] - quotas[t], t))[: cap - sum(take.values())]:
        take[t] += 1
    kept = [r for t, rows in sorted(by_tier.items()) for r in rows[: take[t]]]
    kept_ids = {r["id"] for r in kept}
    return [r for r in train if r["id"] in kept_ids], [r for r in train if r["id"] not in kept_ids]


def counts(rows: list[dict]) -> dict:
    by_tier = Counter(r["difficulty"] for r in rows)
    by_cat = Counter(r["category"] for r in rows)
    cross: dict[str, dict[str, int]] = defaultdict(dict)
    for (t, c), v in sorted(Counter((r["difficulty"], r["category"]) for r in rows).items()):
        cross[t][c] = v
    return {"total": len(rows), "by_tier": dict(sorted(by_tier.items())),
            "by_category": dict(sorted(by_cat.items())), "tier_x_category": dict(cross)}


def run(sp: SplitParams, src: Path, out_dir: Path, metrics_path: Path) -> dict:
    records = read_jsonl(src)
    if not records:
        raise ValueError(f"{src}: no records to split")
    names, rep = assign(records, sp)
    parts = {s: [r for r, n in zip(records, names) if n == s] for s in SPLITS}
    parts["train"], dropped = cap_train(parts["train"], sp.max_train, sp.seed)
    for s in SPLITS:
        write_jsonl(out_dir / f"{s}.jsonl", parts[s])
    metrics = {s: counts(parts[s]) for s in SPLITS}
    metrics["train_capped_out"] = len(dropped)
    sizes = Counter(rep.values())
    metrics["near_dup_clusters"] = sum(1 for v in sizes.values() if v > 1)
    metrics["records_in_clusters"] = sum(v for v in sizes.values() if v > 1)
    write_json(metrics_path, metrics)
    log.info("split %d → train %d, val %d, test %d (capped out %d)", len(records),
             *(len(parts[s]) for s in SPLITS), len(dropped))
    return metrics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--src", default="data/clean/qa.jsonl")
    ap.add_argument("--out", default="data/split")
    ap.add_argument("--metrics", default="metrics/split.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(load_params(args.params).split, Path(args.src), Path(args.out), Path(args.metrics))


if __name__ == "__main__":
    main()

"""The clean stage's streaming run: raw sources → data/clean/{qa,rejected}.jsonl + metrics.

1. read → clean → filter, record by record (``records.ordered_map`` on ``clean.workers`` processes,
   input order kept). Rejects stream to a work file; surviving records stream to candidate shards of
   ``clean.shard_rows`` rows (their dedup text to ``sig_in/``, the record to ``records/``).
2. datatrove MinHash signatures → buckets → clusters over the shards (``neardup.run_pipeline``).
3. one ordered pass over the shards with their cluster files: the first record of each cluster is
   kept, every later one is rejected with ``duplicate_of`` = that kept record's id
   (``exact_duplicate`` when its ``dedup_key`` equals the kept one's, else ``near_duplicate``).

Memory is bounded by a constant (one batch window, one shard's bucket sort) plus the cluster maps:
one entry per duplicate cluster in phase 3 and datatrove's union-find over records that have a
duplicate; nothing is held per kept record. Temporary files go under ``clean.work_dir`` (default:
the system temp folder) and are removed at the end."""
from __future__ import annotations

import json
import logging
import tempfile
import time
from collections import Counter, defaultdict
from itertools import chain
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

from stages.common.config import CleanParams, DataParams
from stages.common.jsonio import iter_lines, write_json, write_jsonl
from stages.data.dupkeys import BandConfig
from stages.data.formats import MALFORMED, list_source_files, read_source
from stages.data.neardup import iter_clusters, run_pipeline
from stages.data.records import REJECT_CHARS, ordered_map, reject_row, resolve_workers, verdict_book

log = logging.getLogger("stages.clean")


class StrictModeError(RuntimeError):
    pass


def source_name(path: Path, data: DataParams) -> str:
    for prefix, name in sorted(data.source_names.items(), key=lambda kv: -len(kv[0])):
        if str(path).startswith(prefix):
            return name
    return path.stem


def band_config(cp: CleanParams) -> BandConfig:
    return BandConfig(rows=cp.dedup_rows, answer_bands=cp.answer_bands, question_bands=cp.question_bands,
                      answer_shingle_chars=cp.answer_shingle_chars,
                      question_shingle_chars=cp.question_shingle_chars, near=cp.near_dup)


def _items(files: list[Path], data: DataParams, by_source: dict) -> Iterator:
    for path in files:
        for item in tqdm(read_source(path, source_name(path, data), data.csv_columns), desc=f"clean {path.name}",
                         unit="rec", mininterval=5, leave=False):
            by_source[item.source]["read"] += 1
            yield item


class _Shards:
    """Candidate shards of ``size`` rows: ``sig_in/NNNNN.jsonl`` (datatrove input) + ``records/``."""

    def __init__(self, work: Path, size: int):
        self.work, self.size, self.n, self.rows = work, size, 0, 0
        (work / "sig_in").mkdir(parents=True)
        (work / "records").mkdir()
        self.sig = self.rec = None

    def add(self, rec: dict, text: str, key: str) -> None:
        if self.rows % self.size == 0:
            self.close()
            self.sig = open(self.work / f"sig_in/{self.n:05d}.jsonl", "w", encoding="utf-8")
            self.rec = open(self.work / f"records/{self.n:05d}.jsonl", "w", encoding="utf-8")
            self.n += 1
        self.sig.write(json.dumps({"text": text, "id": str(self.rows)}, ensure_ascii=False) + "\n")
        self.rec.write(json.dumps([key, rec], ensure_ascii=False) + "\n")
        self.rows += 1

    def close(self) -> None:
        for f in (self.sig, self.rec):
            if f:
                f.close()


def _dedup_pass(work: Path, n_shards: int, clusters: Path, kept_out: Path, dups_out: Path, tally) -> None:
    rep: dict[int, tuple[str, str]] = {}          # cluster id → (kept id, exact key)

    def kept_rows():
        with open(dups_out, "w", encoding="utf-8") as dups:
            for s in range(n_shards):
                marks = iter_clusters(clusters, s)
                nxt = next(marks, None)
                for doc, (_, line) in enumerate(iter_lines(work / f"records/{s:05d}.jsonl")):
                    key, rec = json.loads(line)
                    cid = None
                    if nxt is not None and nxt[0] == doc:
                        cid, nxt = nxt[1], next(marks, None)
                    if cid is not None and cid in rep:
                        first, first_key = rep[cid]
                        reason = "exact_duplicate" if key == first_key else "near_duplicate"
                        dups.write(json.dumps(reject_row(rec["origin"], rec["source"], reason, f"same as {first}",
                                                         {"question": rec["question"][:REJECT_CHARS], "answer": rec["answer"][:REJECT_CHARS]},
                                                         id=rec["id"], duplicate_of=first), ensure_ascii=False) + "\n")
                        tally(rec["source"], reason)
                        continue
                    if cid is not None:
                        rep[cid] = (rec["id"], key)
                    tally(rec["source"], None, rec)
                    yield rec

    write_jsonl(kept_out, kept_rows())


def run(data: DataParams, cp: CleanParams, out_dir: Path, metrics_path: Path) -> dict:
    files = list_source_files(data.sources)
    workers = resolve_workers(cp.workers)
    verdict_book(cp.verdicts)            # a bad verdicts file fails here, before any worker starts
    by_source: dict[str, Counter] = defaultdict(Counter)
    stats: Counter = Counter()
    tiers: Counter = Counter()
    cats: set[str] = set()
    inferred = 0

    def tally(source, reason, rec=None):
        nonlocal inferred
        if reason:
            by_source[source]["rejected"] += 1
            by_source[source][f"rejected:{reason}"] += 1
            return
        by_source[source]["kept"] += 1
        tiers[rec["difficulty"]] += 1
        cats.add(rec["category"])
        inferred += rec["difficulty_inferred"]

    Path(cp.work_dir or tempfile.gettempdir()).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clean-", dir=cp.work_dir or None) as tmp:
        work = Path(tmp)
        shards = _Shards(work, cp.shard_rows)

        def phase1():
            for res in ordered_map(_items(files, data, by_source), cp, workers):
                stats.update(res[-1])
                if res[0] == "reject":
                    row = res[1]
                    if cp.strict and row["reason"] in MALFORMED:
                        raise StrictModeError(f"{row['origin']}: {row['reason']}: {row['detail']} (clean.strict is true)")
                    tally(row["source"], row["reason"])
                    yield row
                else:
                    shards.add(res[1], res[2], res[3])

        t0 = time.perf_counter()
        write_jsonl(work / "rejected_pre.jsonl", phase1())
        shards.close()
        t1 = time.perf_counter()
        clusters = run_pipeline(work, shards.n, band_config(cp), workers) if shards.n else work / "none"
        t2 = time.perf_counter()
        _dedup_pass(work, shards.n, clusters, out_dir / "qa.jsonl", work / "dups.jsonl", tally)
        log.info("records %.1fs, datatrove clusters %.1fs, dedup pass %.1fs (%d workers, %d shards)",
                 t1 - t0, t2 - t1, time.perf_counter() - t2, workers, shards.n)
        write_jsonl(out_dir / "rejected.jsonl", (json.loads(line) for _, line in
                                                 chain(iter_lines(work / "rejected_pre.jsonl"), iter_lines(work / "dups.jsonl"))))

    read = sum(c["read"] for c in by_source.values())
    kept = sum(c["kept"] for c in by_source.values())
    rejected = sum(c["rejected"] for c in by_source.values())
    if read != kept + rejected:
        raise AssertionError(f"reconciliation failed: read {read} != kept {kept} + rejected {rejected}")
    reasons = Counter()
    for c in by_source.values():
        reasons.update({k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("rejected:")})
    metrics = {
        "read": read, "kept": kept, "rejected": rejected,
        "kept_frac": round(kept / read, 4) if read else 0.0,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "by_source": {s: {"read": c["read"], "kept": c["kept"], "rejected": c["rejected"],
                          "by_reason": {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("rejected:")}}
                      for s, c in sorted(by_source.items())},
        "tiers": dict(sorted(tiers.items())),
        "tiers_inferred": inferred,
        "categories": len(cats),
        "transforms": dict(sorted(stats.items())),
    }
    write_json(metrics_path, metrics)
    log.info("read %d → kept %d, rejected %d %s", read, kept, rejected, dict(reasons))
    return metrics

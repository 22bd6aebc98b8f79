"""clean stage: raw QA sources → data/clean/qa.jsonl (+ rejected.jsonl, metrics/clean.json).

Every record read is either kept or written to rejected.jsonl with its origin (file:line) and a
reason; metrics/clean.json reports counts per reason and per source and ``read == kept + rejected``.
Expert verdicts (``clean.verdicts``) apply per record: rejected → ``expert_rejected``, edits replace
the answer with provenance (``reviewed_by``, ``verdict_id``); see stages/humanloop/README.md."""
from __future__ import annotations

import argparse
import logging
import time
from collections import Counter, defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from stages.common.config import CleanParams, DataParams, load_params
from stages.data.dedup import NearDupIndex, content_id, dedup_key
from stages.data.formats import MALFORMED, RawRecord, Reject, list_source_files, read_source
from stages.common.jsonio import write_json, write_jsonl
from stages.data.text import HAS_CHINESE, load_terms, mask_pii, normalize, strip_boilerplate
from stages.data.tiers import infer_tier, normalize_tier
from stages.humanloop.verdicts import apply_verdict, load_verdicts

log = logging.getLogger("stages.clean")
DEFAULT_CATEGORY = "综合"
REJECT_CHARS = 200          # text kept per field in rejected.jsonl


class StrictModeError(RuntimeError):
    pass


def source_name(path: Path, data: DataParams) -> str:
    for prefix, name in sorted(data.source_names.items(), key=lambda kv: -len(kv[0])):
        if str(path).startswith(prefix):
            return name
    return path.stem


def clean_text(rec: RawRecord, cp: CleanParams, terms, stats: Counter) -> tuple[str, str]:
    q, a = normalize(rec.question), normalize(rec.answer)
    if cp.strip_boilerplate:
        stripped = strip_boilerplate(a)
        stats["boilerplate_stripped"] += stripped != a
        a = stripped
    if cp.mask_pii:
        q, cq = mask_pii(q)
        a, ca = mask_pii(a)
        for k, v in (Counter(cq) + Counter(ca)).items():
            stats[f"pii_{k}"] += v
    if terms is not None:
        a, n = terms.apply(a)
        stats["terms_standardised"] += n
    return q, a


def masked_content(value, chars: int = REJECT_CHARS):
    """Every string (and key, and number that looks like PII) inside ``value`` masked with
    ``mask_pii``, then cut to ``chars`` (masking first, so a cut cannot leave part of a number)."""
    if isinstance(value, str):
        return mask_pii(value)[0][:chars]
    if isinstance(value, dict):
        return {masked_content(str(k), chars): masked_content(v, chars) for k, v in value.items()}
    if isinstance(value, list):
        return [masked_content(v, chars) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        masked = mask_pii(str(value))[0]
        return value if masked == str(value) else masked
    return value


def filter_reason(q: str, a: str, cp: CleanParams) -> str | None:
    if not HAS_CHINESE.search(q):
        return "question_no_chinese"
    if len(q) < cp.min_question_chars:
        return "question_too_short"
    if not a:
        return "answer_empty"
    if len(a) < cp.min_answer_chars:
        return "answer_too_short"
    if len(a) > cp.max_answer_chars:
        return "answer_too_long"
    return None


def run(data: DataParams, cp: CleanParams, out_dir: Path, metrics_path: Path) -> dict:
    t0 = time.time()
    files = list_source_files(data.sources)
    terms = load_terms(cp.terms_file) if cp.terms_file else None
    kept: list[dict] = []
    rejected: list[dict] = []
    stats: Counter = Counter()
    by_source: dict[str, Counter] = defaultdict(Counter)
    exact: dict[str, str] = {}
    verdicts = load_verdicts(cp.verdicts)
    near = NearDupIndex(cp.near_dup_threshold, cp.minhash_perm, cp.shingle_chars) if cp.near_dup_threshold < 1 else None

    def reject(origin, source, reason, detail="", record=None):
        if cp.mask_pii:                         # reader rejects carry raw input: mask like kept records
            detail, record = masked_content(detail), masked_content(record)
        if cp.strict and reason in MALFORMED:
            raise StrictModeError(f"{origin}: {reason}: {detail} (clean.strict is true)")
        rejected.append({"origin": origin, "source": source, "reason": reason, "detail": detail,
                         **({"record": record} if record else {})})
        by_source[source]["rejected"] += 1
        by_source[source][f"rejected:{reason}"] += 1

    for path in files:
        src = source_name(path, data)
        for item in tqdm(read_source(path, src, data.csv_columns), desc=f"clean {path.name}", unit="rec",
                         mininterval=2, leave=False):
            by_source[item.source]["read"] += 1
            if isinstance(item, Reject):
                reject(item.origin, item.source, item.reason, item.detail, item.record)
                continue
            q, a = clean_text(item, cp, terms, stats)
            reason = filter_reason(q, a, cp)
            if reason:
                reject(item.origin, item.source, reason, "", {"question": q[:REJECT_CHARS], "answer": a[:REJECT_CHARS]})
                continue
            tier, rule = normalize_tier(item.difficulty), None
            if item.difficulty is not None and tier is None:
                reject(item.origin, item.source, "bad_difficulty", f"unknown tier {item.difficulty!r}")
                continue
            if tier is None:
                tier, rule = infer_tier(q, a)
            rid = content_id(q, a)
            a, provenance = apply_verdict(verdicts.get(rid), a)    # expert review (data/review/verdicts.jsonl)
            if a is None:
                reject(item.origin, item.source, "expert_rejected", provenance["verdict_id"])
                continue
            if provenance.get("review") == "edited":
                stats["expert_edited"] += 1
            key = dedup_key(q, a)
            if key in exact:
                reject(item.origin, item.source, "exact_duplicate", f"same as {exact[key]}")
                continue
            if near is not None:
                dup = near.query_add(rid, q + "\n" + a)
                if dup is not None:
                    reject(item.origin, item.source, "near_duplicate", f"similar to {dup}")
                    continue
            exact[key] = rid
            rec = {"id": rid, "question": q, "answer": a,
                   "category": (item.category or "").strip() or DEFAULT_CATEGORY,
                   "difficulty": tier, "difficulty_inferred": rule is not None,
                   "source": item.source, "origin": item.origin}
            if rule:
                rec["tier_rule"] = rule
            rec.update(provenance)
            kept.append(rec)
            by_source[item.source]["kept"] += 1

    write_jsonl(out_dir / "qa.jsonl", kept)
    write_jsonl(out_dir / "rejected.jsonl", rejected)
    read = sum(c["read"] for c in by_source.values())
    if read != len(kept) + len(rejected):
        raise AssertionError(f"reconciliation failed: read {read} != kept {len(kept)} + rejected {len(rejected)}")
    reasons = Counter(r["reason"] for r in rejected)
    metrics = {
        "read": read, "kept": len(kept), "rejected": len(rejected),
        "kept_frac": round(len(kept) / read, 4) if read else 0.0,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "by_source": {s: {"read": c["read"], "kept": c["kept"], "rejected": c["rejected"],
                          "by_reason": {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("rejected:")}}
                      for s, c in sorted(by_source.items())},
        "tiers": dict(sorted(Counter(r["difficulty"] for r in kept).items())),
        "tiers_inferred": sum(r["difficulty_inferred"] for r in kept),
        "categories": len({r["category"] for r in kept}),
        "transforms": dict(sorted(stats.items())),
        "seconds": round(time.time() - t0, 2),
    }
    write_json(metrics_path, metrics)
    log.info("read %d → kept %d, rejected %d %s (%.1fs)", read, len(kept), len(rejected), dict(reasons), metrics["seconds"])
    return metrics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--verdicts", help="override clean.verdicts ('' = none)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--source", action="append", help="override data.sources (repeatable)")
    ap.add_argument("--out", default="data/clean")
    ap.add_argument("--metrics", default="metrics/clean.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = load_params(args.params)
    data = p.data.model_copy(update={"sources": args.source}) if args.source else p.data
    cp = p.clean.model_copy(update={"verdicts": args.verdicts}) if args.verdicts is not None else p.clean
    run(data, cp, Path(args.out), Path(args.metrics))


if __name__ == "__main__":
    main()

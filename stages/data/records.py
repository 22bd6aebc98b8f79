"""Per-record clean work (normalise → strip boilerplate → mask PII → standardise terms → filter → tier →
ids and dedup keys) and an ordered, bounded parallel map over a record stream.

``process(item)`` is a pure function of the record and the clean params, so running it in 1 or N
processes gives the same results; ``ordered_map`` keeps input order and holds at most
``2 × workers`` batches in flight (the reader never runs ahead of the workers)."""
from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter, deque
from functools import lru_cache
from typing import Iterable, Iterator

from stages.common.config import CleanParams
from stages.data.dedup import content_id, dedup_key
from stages.data.dupkeys import dedup_text
from stages.data.formats import RawRecord, Reject
from stages.data.text import HAS_CHINESE, load_terms, mask_pii, normalize, strip_boilerplate
from stages.data.tiers import infer_tier, normalize_tier
from stages.humanloop.verdicts import apply_verdict, load_verdicts

DEFAULT_CATEGORY = "综合"
BATCH = 256
REJECT_CHARS = 200          # text kept per field in rejected.jsonl


def clean_text(rec: RawRecord, cp: CleanParams, terms, stats: Counter) -> tuple[str, str]:
    q, a = normalize(rec.question), normalize(rec.answer)
    if cp.strip_boilerplate:
        stripped = strip_boilerplate(a)
        stats["boilerplate_stripped"] += stripped != a
        a = stripped
    if cp.mask_pii:
        q, cq = mask_pii(q)
        a, ca = mask_pii(a, answer=True)
        for k, v in (Counter(cq) + Counter(ca)).items():
            stats[f"pii_{k}"] += v
    if terms is not None:
        a, n = terms.apply(a)
        stats["terms_standardised"] += n
    return q, a


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


def reject_row(origin, source, reason, detail="", record=None, **extra) -> dict:
    return {"origin": origin, "source": source, "reason": reason, "detail": detail,
            **({"record": record} if record else {}), **extra}


def process(item, cp: CleanParams) -> tuple:
    """``("reject", row, stats)`` or ``("keep", record, signature text, exact key, stats)``; the signature
    text is ``dupkeys.dedup_text`` (or the exact key itself when near-duplicate removal is off)."""
    stats: Counter = Counter()
    if isinstance(item, Reject):             # reader rejects carry raw input: mask like kept records
        detail, record = (masked_content(item.detail), masked_content(item.record)) if cp.mask_pii else \
            (item.detail, item.record)
        return "reject", reject_row(item.origin, item.source, item.reason, detail, record), stats
    terms = load_terms(cp.terms_file) if cp.terms_file else None
    q, a = clean_text(item, cp, terms, stats)
    reason = filter_reason(q, a, cp)
    if reason:
        return "reject", reject_row(item.origin, item.source, reason, "",
                                    {"question": q[:REJECT_CHARS], "answer": a[:REJECT_CHARS]}), stats
    tier, rule = normalize_tier(item.difficulty), None
    if item.difficulty is not None and tier is None:
        detail = f"unknown tier {item.difficulty!r}"
        return "reject", reject_row(item.origin, item.source, "bad_difficulty",
                                    masked_content(detail) if cp.mask_pii else detail), stats
    if tier is None:
        tier, rule = infer_tier(q, a)
    rec = {"id": content_id(q, a), "question": q, "answer": a,
           "category": (item.category or "").strip() or DEFAULT_CATEGORY,
           "difficulty": tier, "difficulty_inferred": rule is not None,
           "source": item.source, "origin": item.origin}
    if rule:
        rec["tier_rule"] = rule
    answer, provenance = apply_verdict(verdict_book(cp.verdicts).get(rec["id"]), a)   # data/review/verdicts.jsonl
    if answer is None:
        return "reject", reject_row(item.origin, item.source, "expert_rejected", provenance["verdict_id"]), stats
    if provenance.get("review") == "edited":
        stats["expert_edited"] += 1
        a = rec["answer"] = answer
    rec.update(provenance)
    key = dedup_key(q, a)
    return "keep", rec, (dedup_text(q, a) if cp.near_dup else key), key, stats


@lru_cache(maxsize=4)
def verdict_book(path: str) -> dict[str, dict]:
    """record id → expert verdict, read once per process (forked workers inherit the parent's copy)."""
    return load_verdicts(path)


_CP: CleanParams | None = None


def _init(cp: CleanParams) -> None:
    global _CP
    _CP = cp


def _batch(items: list) -> list:
    return [process(it, _CP) for it in items]


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    buf = []
    for it in items:
        buf.append(it)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def ordered_map(items: Iterable, cp: CleanParams, workers: int) -> Iterator[tuple]:
    """``process`` over items, in input order, on ``workers`` processes (1: in this process)."""
    if workers <= 1:
        for it in items:
            yield process(it, cp)
        return
    with mp.get_context("fork").Pool(workers, initializer=_init, initargs=(cp,)) as pool:
        pending: deque = deque()
        for batch in _batches(items, BATCH):
            pending.append(pool.apply_async(_batch, (batch,)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()

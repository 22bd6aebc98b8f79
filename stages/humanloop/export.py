"""Approved service corrections → a data source the clean stage reads (``data/feedback/*.jsonl``).

One record per approved/corrected queue item: ``{"id": "feedback:<request_id>", "question",
"answer", "category", "difficulty", "source": "feedback", "request_id", "decision"}`` — sorted by
id, no timestamps, so the same decisions always give the same file. Records already in the file
whose request is not in the database (e.g. exported from another server's database) are kept;
ones the database now marks dismissed are dropped."""
from __future__ import annotations

from pathlib import Path

from stages.common.jsonio import read_jsonl, write_jsonl
from stages.data.tiers import infer_tier
from stages.humanloop.feedback_store import FeedbackStore

DEFAULT_CATEGORY = "综合"      # the clean stage's default category


def feedback_records(store: FeedbackStore) -> list[dict]:
    out = []
    for r in store.approved_corrections():
        tier, _ = infer_tier(r["question"], r["final_answer"])
        out.append({"id": f"feedback:{r['request_id']}", "question": r["question"], "answer": r["final_answer"],
                    "category": r["category"] or DEFAULT_CATEGORY, "difficulty": tier, "source": "feedback",
                    "request_id": r["request_id"], "decision": r["status"]})
    return out


def export_feedback(store: FeedbackStore, out_file: str | Path) -> dict:
    out_file = Path(out_file)
    fresh = {r["id"]: r for r in feedback_records(store)}
    decided = store.decided_ids()
    kept = {}
    if out_file.is_file():
        for r in read_jsonl(out_file):
            if r.get("request_id") not in decided:
                kept[r["id"]] = r
    merged = {**kept, **fresh}
    write_jsonl(out_file, [merged[k] for k in sorted(merged)])
    return {"file": str(out_file), "records": len(merged), "from_db": len(fresh), "kept_from_file": len(kept)}

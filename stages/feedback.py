"""Service feedback back into the data: ``python -m stages.feedback export|status``.

export  approved corrections from the serving database (``serve.feedback_db``) →
        ``data/feedback/approved.jsonl`` (question/answer/category/difficulty, source=feedback),
        a data source the clean stage reads (``data.sources``), so the next ``dvc repro`` trains on them.
status  the review queue's counts by status.

Documentation: stages/humanloop/README.md."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stages.common.config import load_params
from stages.humanloop.export import export_feedback
from stages.humanloop.feedback_store import FeedbackStore


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.feedback", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["export", "status"])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--db", help="feedback database (default: params serve.feedback_db)")
    ap.add_argument("--out", default="data/feedback/approved.jsonl")
    args = ap.parse_args(argv)
    db = Path(args.db or load_params(args.params).serve.feedback_db)
    if not db.is_file():
        print(f"feedback {args.command}: {db} does not exist (it is created when the server starts; "
              "pass --db to read another one)", file=sys.stderr)
        return 2
    store = FeedbackStore(db)
    if args.command == "export":
        res = export_feedback(store, args.out)
        print(f"{res['records']} approved corrections → {res['file']} ({res['from_db']} from {db})")
    else:
        counts = {s: len(store.queue(s, limit=1 << 30)) for s in ("open", "approved", "corrected", "dismissed")}
        print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

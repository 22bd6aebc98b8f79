"""clean stage: raw QA sources → data/clean/qa.jsonl (+ rejected.jsonl, metrics/clean.json).

Every record read is either kept or written to rejected.jsonl with its origin (file:line) and a
reason (duplicates also name the kept record they duplicate: ``duplicate_of``); metrics/clean.json
reports counts per reason and per source and ``read == kept + rejected``. Streams with bounded memory
on ``clean.workers`` processes; duplicate clusters come from datatrove's MinHash pipeline
(stages/data/cleaning.py, stages/data/dupkeys.py, stages/data/neardup.py). Expert verdicts
(``clean.verdicts``) apply per record: rejected → ``expert_rejected``, edits replace the answer with
provenance (``reviewed_by``, ``verdict_id``); see stages/humanloop/README.md."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stages.common.config import load_params
from stages.data.cleaning import StrictModeError, run, source_name  # noqa: F401  (the stage's API)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--verdicts", help="override clean.verdicts ('' = none)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--source", action="append", help="override data.sources (repeatable)")
    ap.add_argument("--out", default="data/clean")
    ap.add_argument("--metrics", default="metrics/clean.json")
    ap.add_argument("--workers", type=int, help="override clean.workers (0: all cores)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = load_params(args.params)
    data = p.data.model_copy(update={"sources": args.source}) if args.source else p.data
    overrides = {k: v for k, v in (("workers", args.workers), ("verdicts", args.verdicts)) if v is not None}
    cp = p.clean.model_copy(update=overrides) if overrides else p.clean
    run(data, cp, Path(args.out), Path(args.metrics))


if __name__ == "__main__":
    main()

"""How well ``mask_pii`` masks, on labelled messages and on real patient questions.

    python bench/pii_masking.py [tests/fixtures/pii/*.jsonl] [--show] [--real]

For each labelled file (stages/safety/pii_eval.py: recall per kind, ``keep`` items over-masked, messages
without PII changed) one block of figures; ``--show`` lists every leak and over-mask (the values are
fictitious). ``--real`` also masks every question of ../shared/data (the 7,644 doctor-answered CSV questions,
title + ask, and the ShareGPT first turns; read in place, never copied) and counts the placeholders it
inserts per kind — real questions hold little personal data, so nearly every placeholder there is a false
positive (``--show`` prints each changed question, masked). Skips the real data cleanly when the folder is
absent."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
DEFAULT = sorted((REPO / "tests/fixtures/pii").glob("*.jsonl"))


def real_questions() -> list[str] | None:
    """The real questions the name scorer's fit reads (stages/safety/pii_name_fit.py); None when absent."""
    from stages.safety.pii_name_fit import real_questions as load

    if not (DATA / "cmd_internal_medicine.gb18030.csv").is_file() or not (DATA / "medicalgpt_sft_1k.sharegpt.jsonl").is_file():
        return None
    return load(DATA)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--show", action="store_true", help="list every leak, over-mask and changed real question")
    ap.add_argument("--real", action="store_true", help="also count placeholders in the real questions")
    args = ap.parse_args(argv)

    from stages.safety.pii import mask_pii_counts
    from stages.safety.pii_eval import check_rows, score

    for f in args.files:
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        check_rows(rows, f.name)
        s = score(rows)
        per_kind = ", ".join(f"{k} {v['recall']} ({v['n']})" for k, v in s["recall_per_kind"].items())
        print(f"{f.name}: {s['messages']} messages, {s['values']} PII values: recall {s['recall']}\n"
              f"  per kind: {per_kind}\n"
              f"  keep items over-masked {s['keep_over_masked']}/{s['keep_items']}; messages without PII changed "
              f"{s['false_positive_messages']}/{s['messages_without_pii']}")
        if args.show:
            for c in s["cases"]:
                print(f"  [{c['what']}] {c['value']} | {c['text']}\n      -> {c['masked']}")
    if args.real:
        questions = real_questions()
        if questions is None:
            print(f"real questions skipped: {DATA} is absent (the shared real-data folder)")
            return
        t0, counts, changed = time.perf_counter(), Counter(), 0
        for q in questions:
            masked, c = mask_pii_counts(q)
            counts.update(c)
            if c:
                changed += 1
                if args.show:
                    print(f"  [real] {dict(c)} {masked[:160]}")
        dt = time.perf_counter() - t0
        print(f"real questions: {len(questions)}, changed {changed}, placeholders {dict(sorted(counts.items()))}; "
              f"{dt:.1f} s ({1000 * dt / len(questions):.2f} ms per question)")


if __name__ == "__main__":
    main()

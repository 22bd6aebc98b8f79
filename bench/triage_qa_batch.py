"""Read an authored QA batch with the served triage before it enters any training: how many emergency-tier
questions get the fixed emergency reply, how many other questions are flagged (and labelled self_harm), and the
keyword rules alone for comparison — with every miss and false alarm listed, so a reader can judge them.

    python bench/triage_qa_batch.py [data/candidates/concise_s19] [--model models/triage]

Paths are QA JSONL files or folders of them ({"question", "difficulty", ...}; the tier ``emergency`` is the label).
Session 19 read the concise batch this way (stages/TRIAGE.md, *Session 19*)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def read_batch(paths: list[Path]) -> list[dict]:
    """Rows of the JSONL files (folders: their *.jsonl, sorted), each with its ``origin`` (file:line); a line that
    is not a JSON object stops the read naming file:line (stages.common.jsonio)."""
    from stages.common.jsonio import iter_json_objects

    rows = []
    for p in paths:
        for f in sorted(p.glob("*.jsonl")) if p.is_dir() else [p]:
            rows += [{**r, "origin": f"{f.name}:{n}"} for n, r in iter_json_objects(f, SystemExit)]
    if not rows:
        raise SystemExit(f"no QA rows in {', '.join(map(str, paths))}")
    return rows


def measure(triager, rows: list[dict]) -> dict:
    """Flag counts of the served triage and of the keyword rules alone, by tier (emergency vs the rest)."""
    from stages.safety.rules import detect_emergency

    res = triager.classify_many([r["question"] for r in rows])
    out = {"emergency": {"n": 0, "flagged": 0, "rules": 0, "missed": []},
           "other": {"n": 0, "flagged": 0, "rules": 0, "self_harm": 0, "flagged_rows": []}}
    for r, x in zip(rows, res):
        emergency = r.get("difficulty") == "emergency"
        part = out["emergency" if emergency else "other"]
        part["n"] += 1
        part["flagged"] += x.flagged
        part["rules"] += bool(detect_emergency(r["question"]))
        if emergency and not x.flagged:
            part["missed"].append(f"{r['origin']} {r['question']}")
        elif not emergency and x.flagged:
            part["self_harm"] += x.label == "self_harm"
            part["flagged_rows"].append(f"{r['origin']} [{x.label}] {r['question']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, default=[REPO / "data/candidates/concise_s19"])
    ap.add_argument("--model", default=str(REPO / "models/triage"))
    args = ap.parse_args()
    from stages.safety.triage import load_triager

    m = measure(load_triager(args.model), read_batch(args.paths))
    e, o = m["emergency"], m["other"]
    print(f"emergency tier flagged {e['flagged']}/{e['n']} (keyword rules alone {e['rules']}/{e['n']}); "
          f"other tiers flagged {o['flagged']}/{o['n']} (rules alone {o['rules']}/{o['n']}; self_harm {o['self_harm']})")
    print("missed:", *e["missed"] or ["none"], sep="\n  ")
    print("flagged, not emergency tier:", *o["flagged_rows"] or ["none"], sep="\n  ")


if __name__ == "__main__":
    main()

"""Expert review round of the cleaned data: ``python -m stages.review export|import|status``.

export  seeded tier × category sample of ``review.source`` (data/clean/qa.jsonl) → one sheet per
        reviewer in ``review.sheets_dir/<round>/`` (``<reviewer>.xlsx`` and ``.csv``, same items in a
        different seeded order) + ``manifest.json`` (the round's record ids, seed, source hash).
import  read the filled sheets (each reviewer fills one of the two files), check every row
        (problems listed with sheet/row/column; nothing skipped), Cohen's κ per reviewer pair and
        Fleiss' κ, disagreements → ``adjudication.csv``, verdicts → ``review.verdicts``
        (data/review/verdicts.jsonl, read by the clean stage), metrics → ``review.metrics``.
status  what each round has: sheets filled, disagreements, adjudicated, verdicts written.

Documentation: stages/humanloop/README.md."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from stages.common.config import ReviewParams, load_params
from stages.common.jsonio import read_jsonl, write_json, write_jsonl
from stages.humanloop.adjudication import decide, find_disagreements, read_adjudication, round_metrics, write_adjudication
from stages.humanloop.sheets import SheetError, read_sheet, reviewer_order, sheet_rows, stratified_sample, validate, write_sheet


def round_dir(rp: ReviewParams, round_name: str) -> Path:
    return Path(rp.sheets_dir) / round_name


def export(rp: ReviewParams, round_name: str, force: bool = False) -> dict:
    out = round_dir(rp, round_name)
    if (out / "manifest.json").exists() and not force:
        raise SystemExit(f"review export: {out} already holds round {round_name!r} (sheets may be filled); "
                         "use another --round, or --force to overwrite it")
    src = Path(rp.source)
    if not src.is_file():
        raise SystemExit(f"review export: {src} does not exist (review.source; run `dvc repro clean` first)")
    records = read_jsonl(src)
    sample = stratified_sample(records, rp.sample_size, rp.seed)
    for name in rp.reviewers:
        write_sheet(sheet_rows(reviewer_order(sample, rp.seed, name)), out / name)
    manifest = {"round": round_name, "seed": rp.seed, "sample_size": len(sample), "reviewers": list(rp.reviewers),
                "source": str(src), "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
                "items": [{"record_id": r["id"], "tier": r.get("difficulty", ""), "category": r.get("category", ""),
                           "question": r["question"], "answer": r["answer"]} for r in sample]}
    write_json(out / "manifest.json", manifest)
    return manifest


def _filled_count(path: Path) -> int:
    rows, problems = read_sheet(path)
    return -1 if problems else sum(1 for r in rows if r.get("verdict"))


def pick_sheet(out: Path, reviewer: str) -> Path:
    """The sheet this reviewer filled: .xlsx or .csv, whichever holds verdicts (both → error)."""
    cands = [p for p in (out / f"{reviewer}.xlsx", out / f"{reviewer}.csv") if p.exists()]
    if not cands:
        raise SheetError([f"{out}/{reviewer}.xlsx|.csv: no sheet for reviewer {reviewer!r}"])
    filled = [p for p in cands if _filled_count(p) != 0]
    if len(filled) > 1:
        raise SheetError([f"{reviewer}: both {filled[0].name} and {filled[1].name} hold verdicts; keep the one "
                          "the reviewer filled and delete (or empty) the other"])
    return (filled or cands)[0]


def import_round(rp: ReviewParams, round_name: str, sheets: list[Path] | None = None) -> dict:
    out = round_dir(rp, round_name)
    if not (out / "manifest.json").is_file():
        raise SystemExit(f"review import: no round {round_name!r} in {rp.sheets_dir} "
                         f"(run `python -m stages.review export --round {round_name}` first)")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    items = {it["record_id"]: it for it in manifest["items"]}
    ids = sorted(items)
    paths = sheets or [pick_sheet(out, n) for n in manifest["reviewers"]]
    by_reviewer, problems = {}, []
    for path in paths:
        rows, header_problems = read_sheet(path)
        if header_problems:
            problems += header_problems
            continue
        good, bad = validate(path, rows, ids)
        problems += bad
        by_reviewer[path.stem] = {r.record_id: r for r in good}
    if len(by_reviewer) < 2 and not problems:
        problems.append(f"{out}: need at least two reviewers' sheets, got {sorted(by_reviewer)}")
    if problems:
        raise SheetError(problems)
    disagreements = find_disagreements(by_reviewer, ids)
    adj_path = out / "adjudication.csv"
    adjudicated, adj_problems = read_adjudication(adj_path, disagreements)
    if adj_problems:
        raise SheetError(adj_problems)
    write_adjudication(adj_path, items, by_reviewer, disagreements, adjudicated)
    verdicts, pending = decide(round_name, items, by_reviewer, disagreements, adjudicated, rp.unresolved)
    vpath = Path(rp.verdicts)
    old = read_jsonl(vpath) if vpath.is_file() else []
    # a re-imported round keeps its place in the file (rounds in first-import order: the later wins)
    at = next((i for i, v in enumerate(old) if v["round"] == round_name), len(old))
    others = [v for v in old if v["round"] != round_name]
    at -= sum(1 for v in old[:at] if v["round"] == round_name)
    write_jsonl(vpath, others[:at] + verdicts + others[at:])
    metrics = round_metrics(round_name, items, by_reviewer, disagreements, adjudicated, verdicts, pending)
    write_json(rp.metrics, metrics)
    return metrics


def status(rp: ReviewParams) -> list[dict]:
    rows = []
    base = Path(rp.sheets_dir)
    vpath = Path(rp.verdicts)
    written = read_jsonl(vpath) if vpath.is_file() else []
    for mf in sorted(base.glob("*/manifest.json")):
        m = json.loads(mf.read_text(encoding="utf-8"))
        sheets = {}
        for n in m["reviewers"]:
            for p in (mf.parent / f"{n}.xlsx", mf.parent / f"{n}.csv"):
                if p.exists():
                    sheets[p.name] = f"{max(_filled_count(p), 0)}/{m['sample_size']} filled"
        adj = mf.parent / "adjudication.csv"
        rows.append({"round": m["round"], "items": m["sample_size"], "sheets": sheets,
                     "adjudication": str(adj) if adj.exists() else None,
                     "verdicts_written": sum(v["round"] == m["round"] for v in written)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stages.review", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["export", "import", "status"])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--round", help="round name (default: params review.round)")
    ap.add_argument("--sheet", action="append", type=Path, help="import: explicit filled sheet (repeatable); "
                    "the file name (without extension) is the reviewer's name")
    ap.add_argument("--force", action="store_true", help="export: overwrite an existing round")
    args = ap.parse_args(argv)
    rp = load_params(args.params).review
    rnd = args.round or rp.round
    try:
        if args.command == "export":
            m = export(rp, rnd, args.force)
            print(f"round {rnd}: {m['sample_size']} items → {round_dir(rp, rnd)}/"
                  f"{{{','.join(m['reviewers'])}}}.xlsx|.csv")
        elif args.command == "import":
            m = import_round(rp, rnd, args.sheet)
            k = m["kappa"]
            print(f"round {rnd}: {m['items']} items, verdicts {m['verdicts']}, Fleiss κ {k['fleiss_kappa']}, "
                  + ", ".join(f"Cohen κ {p} {v['cohen_kappa']}" for p, v in k["pairs"].items()))
            print(f"disagreements {m['disagreements']} (adjudicated {m['adjudicated']}, by rule "
                  f"{m['resolved_by_rule']}, pending {m['pending']}) → {round_dir(rp, rnd) / 'adjudication.csv'}")
            print(f"wrote {rp.verdicts} and {rp.metrics}")
        else:
            for row in status(rp):
                print(json.dumps(row, ensure_ascii=False))
    except SheetError as err:
        print(f"review {args.command}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

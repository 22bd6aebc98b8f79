"""Near-duplicate recall and precision of the clean stage on a labelled set built from real rows.

    flock /tmp/medqa-heavy.lock python bench/dedup_quality.py [--bases 1000] [--copies 2] [--workers 0]
        [--json metrics/dedup_quality.json]

The set (stages/data/noise.py, seeded): ``--bases`` real unique pairs from ../shared/data, each with
``--copies`` noisy copies (a "，谢谢"+number suffix on the question and a ~10-character insertion in
the answer, plus punctuation/whitespace, full-width or traditional-character noise), and true-distinct
pairs sharing a template (the same opener/closer around two different questions; the same question
about another disease). It runs ``stages.clean.run`` with params.yaml's clean section (old signal:
``--old`` for the datasketch q+a 3-gram Jaccard ≥ 0.9 baseline, measured in the same run) and prints
recall, precision and which template kinds were wrongly merged. Targets (issue 17): recall ≥ 0.95,
precision ≥ 0.99; exit status 1 when missed."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"


def old_scores(rows: list[dict]) -> dict:
    """The previous signal (in-memory datasketch, q+a 3-grams, Jaccard ≥ 0.9) on the same rows."""
    from stages.data.dedup import clusters
    from stages.data.text import normalize

    keys = [str(i) for i in range(len(rows))]
    rep = clusters(keys, [normalize(r["question"]) + "\n" + normalize(r["answer"]) for r in rows], 0.9)
    should = len(rows) - len({r["group"] for r in rows})
    removed = [k for k in keys if rep[k] != k]
    right = sum(rows[int(k)]["group"] == rows[int(rep[k])]["group"] for k in removed)
    return {"recall": round(right / should, 4), "precision": round(right / len(removed), 4) if removed else 1.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", type=int, default=1000)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    from stages import clean
    from stages.common.config import DataParams, load_params
    from stages.common.jsonio import read_jsonl
    from stages.data.noise import dup_scores, labelled_set, load_real_pairs

    pairs = load_real_pairs([SHARED / "cmd_internal_medicine.gb18030.csv", SHARED / "medicalgpt_sft_1k.sharegpt.jsonl"])
    rows = labelled_set(pairs, args.bases, args.copies)
    cp = load_params(args.params).clean.model_copy(update={"workers": args.workers,
                                                            "terms_file": str(REPO / "data/terms.tsv")})
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "labelled.jsonl"
        f.write_text("".join(json.dumps({"question": r["question"], "answer": r["answer"]}, ensure_ascii=False) + "\n"
                             for r in rows), encoding="utf-8")
        m = clean.run(DataParams(sources=[str(f)]), cp, Path(tmp) / "out", Path(tmp) / "m.json")
        assert m["read"] == len(rows), m
        scores = dup_scores(rows, read_jsonl(Path(tmp) / "out/qa.jsonl"), read_jsonl(Path(tmp) / "out/rejected.jsonl"))
    kinds = {}
    for r in rows:
        k = r["kind"].split(":")[0]
        kinds[k] = kinds.get(k, 0) + 1
    out = {"rows": len(rows), "kinds": kinds, "new": scores, "old_datasketch_0.9": old_scores(rows)}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ok = scores["recall"] >= 0.95 and scores["precision"] >= 0.99
    print(f"recall {scores['recall']:.4f} (target ≥ 0.95), precision {scores['precision']:.4f} (target ≥ 0.99): "
          f"{'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

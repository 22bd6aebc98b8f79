"""Triage classifier settings compared the way the stage chooses thresholds: out-of-fold scores over
train+val (``triage.cv_folds`` seeded folds, test never touched), false alarms at several recall targets.

    python bench/triage_grid.py [--params params.yaml] [--ngram 2 3 4 5] [--c 10 30 100 300]
                                [--targets 0.97 0.98 0.99] [--out artifacts/bench/triage_grid.json]

False alarms at ONE recall target are decided by the few lowest-scoring positives and jump by ±0.01
between neighbouring settings; the mean over three targets is the steadier figure to choose on. Session 9
chose ``ngram_max: 3, c: 30`` with it (stages/TRIAGE.md). Needs the corpus split (``dvc repro split``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--corpus-split", default="data/split")
    ap.add_argument("--ngram", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--c", type=float, nargs="+", default=[10.0, 30.0, 100.0, 300.0])
    ap.add_argument("--targets", type=float, nargs="+", default=[0.97, 0.98, 0.99])
    ap.add_argument("--out", default="artifacts/bench/triage_grid.json")
    args = ap.parse_args(argv)

    from tqdm import tqdm

    import stages.triage as st
    from stages.common.config import load_params
    from stages.safety.triage import Triager
    from stages.safety.triage_model import TriageModel

    base = load_params(args.params).triage
    if not base.cv_folds:
        sys.exit(f"{args.params}: triage.cv_folds is 0; this bench compares out-of-fold scores (set it ≥ 2)")
    split, extra, _ = st.load_rows(base, args.corpus_split)
    dev = split["train"] + split["val"]
    rows = []
    for ng, c in tqdm([(n, c) for n in args.ngram for c in args.c], desc="triage grid", unit="setting"):
        p = base.model_copy(update={"ngram_max": ng, "c": c})
        proba = st.oof_proba("char_lr", dev, extra, p)
        at = {}
        for target in args.targets:
            m = TriageModel(None, None, None, 0.5, "char_lr")
            st.choose_thresholds_on(m, dev, proba, p.model_copy(update={"val_recall": target}))
            r = st.measure(Triager(m, rule_floor=p.rule_floor, min_chars=p.min_chars), dev, proba)["triage"]
            at[str(target)] = {"recall": r["recall"], "false_alarm_rate": r["false_alarm_rate"]}
        mean = round(sum(v["false_alarm_rate"] for v in at.values()) / len(at), 4)
        rows.append({"ngram_max": ng, "c": c, "mean_false_alarm_rate": mean, "at_recall_target": at})
        tqdm.write(f"ngram 1-{ng}  C {c:<6g} " + "  ".join(
            f"@{t}: recall {v['recall']:.3f} FA {v['false_alarm_rate']:.4f}" for t, v in at.items()) + f"  mean FA {mean}")
    best = min(rows, key=lambda r: r["mean_false_alarm_rate"])
    out = {"rows": len(dev), "folds": base.cv_folds, "grid": rows, "best": {k: best[k] for k in ("ngram_max", "c")},
           "params": {"ngram_max": base.ngram_max, "c": base.c}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"lowest mean out-of-fold false alarms: ngram 1-{best['ngram_max']}, C {best['c']:g}; "
          f"params.yaml has ngram 1-{base.ngram_max}, C {base.c:g} → {args.out}")
    return out


if __name__ == "__main__":
    main()

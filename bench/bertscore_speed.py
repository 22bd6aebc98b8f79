"""BERTScore in evaluate: one bert-score call per model (the way evaluate scored until session 15) against
``BertScoreEncoder.score_many`` (references shared by all models, length-sorted chunks), interleaved in one run
on the committed evaluation rows (metrics/predictions.jsonl: tuned and base answers of the test split).

    flock /tmp/medqa-heavy.lock python bench/bertscore_speed.py [--n 136] [--repeats 1]

Prints seconds per method, the speed-up ratio and the largest per-answer F1 difference between the two."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=Path, default=REPO / "metrics/predictions.jsonl")
    ap.add_argument("--n", type=int, default=0, help="first N rows (0 = all)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    from stages.common.config import load_params
    from stages.evaluation.metrics.bertscore import BertScoreEncoder

    if not args.rows.is_file():
        sys.exit(f"{args.rows}: no evaluation rows (run `dvc repro evaluate` or `dvc pull evaluate` first)")
    rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[: args.n] if args.n else rows
    ev = load_params().eval
    enc = BertScoreEncoder(ev.bertscore_model, ev.bertscore_layers, ev.bertscore_batch_size)
    refs = [r["reference"] for r in rows]
    preds = {m: [r[m] for r in rows] for m in ("tuned", "base")}

    def per_model() -> dict[str, list[float]]:
        return {m: _one_call(enc, p, refs) for m, p in preds.items()}

    secs = {"one call per model": [], "score_many": []}
    out = {}
    for _ in range(args.repeats):                   # interleaved: the machine's speed drifts
        for name, fn in (("one call per model", per_model),
                         ("score_many", lambda: {m: s.f1 for m, s in enc.score_many(preds, refs).items()})):
            t = time.perf_counter()
            out[name] = fn()
            secs[name].append(time.perf_counter() - t)
    diff = max(abs(a - b) for m in preds for a, b in zip(out["one call per model"][m], out["score_many"][m]))
    old, new = min(secs["one call per model"]), min(secs["score_many"])
    print(f"{len(rows)} rows x 2 models, encoder {ev.bertscore_model} ({ev.bertscore_layers} layers), batch {ev.bertscore_batch_size}")
    for name, s in secs.items():
        print(f"{name:>20}: {', '.join(f'{x:.1f}' for x in s)} s")
    print(f"speed-up {old / new:.2f}x; max |F1 difference| {diff:.2e}")


def _one_call(enc, predictions: list[str], references: list[str]) -> list[float]:
    """bert-score over all pairs of one model in a single call (empty answers score 0, as in score_many)."""
    keep = [i for i, (p, r) in enumerate(zip(predictions, references)) if p.strip() and r.strip()]
    f1 = [0.0] * len(predictions)
    _, _, F = enc._scorer.score([predictions[i] for i in keep], [references[i] for i in keep])
    for j, i in enumerate(keep):
        f1[i] = float(F[j])
    return f1


if __name__ == "__main__":
    main()

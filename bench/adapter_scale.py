"""Choose the adapter strength ``merge.scale`` (stages/MERGE.md) on two validation sets, without merging:
base + the trained LoRA adapter loaded unmerged (stages.model.adapters), rescaled in place for each strength,
and the reference answers' perplexity measured the way evaluate does (stages.evaluation.metrics.perplexity).

* **real val**: 100 real doctor answers — positions 40–139 of bench/real_questions.py's seeded order of
  ../shared/data/cmd_internal_medicine.gb18030.csv (read in place, never copied), disjoint from the 40 questions
  that bench scores;
* **authored val**: the project's val split (data/split/val.jsonl).

Rule (stages/EVALUATION.md, *Adapter strength*): the largest strength on the grid whose real-val perplexity
stays below the base's while authored val is ≤ ``--authored-max`` × base (issue 14's two perplexity targets).

    flock /tmp/medqa-heavy.lock python bench/adapter_scale.py [--scales 1 0.9 0.8 0.7 0.6 0.5]
        [--adapter models/lora] [--base models/base]

Prints a table and the strength the rule picks; writes artifacts/bench/adapter_scale.json. Exits 0 with a
message when the shared data folder is absent."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from real_questions import DEFAULT_CSV, SEED, sample_questions  # noqa: E402

REAL_VAL = slice(40, 140)


def pick(rows: list[dict], authored_max: float) -> float | None:
    """The rule: largest scale with real ratio < 1 and authored ratio ≤ authored_max (None if none)."""
    ok = [r["scale"] for r in rows if r["scale"] > 0 and r["real_ratio"] < 1 and r["authored_ratio"] <= authored_max]
    return max(ok) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--seed", type=int, default=SEED, help="bench/real_questions.py's seed (keeps the sets disjoint)")
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--adapter", default="models/lora")
    ap.add_argument("--val", type=Path, default=REPO / "data/split/val.jsonl")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    ap.add_argument("--authored-max", type=float, default=0.6)
    ap.add_argument("--out", type=Path, default=REPO / "artifacts/bench/adapter_scale.json")
    args = ap.parse_args()
    if not args.csv.is_file():
        print(f"skipped: {args.csv} is absent (the shared real-data folder)")
        return
    from stages.common.config import load_params
    from stages.common.jsonio import read_jsonl
    from stages.evaluation.metrics.perplexity import answer_nll, perplexity
    from stages.model.adapters import load_with_adapter, set_adapter_scale
    from stages.model.modeling import load_tokenizer, resolve_inference_dtype

    if not args.val.is_file():
        sys.exit(f"{args.val}: no val split (run `dvc repro split` or `dvc pull split` first)")
    params = load_params(args.params)
    real = sample_questions(args.csv, REAL_VAL.stop, args.seed, params)[REAL_VAL]
    authored = read_jsonl(args.val)
    sets = {"real": [(e["question"], e["answer"]) for e in real],
            "authored": [(e["question"], e["answer"]) for e in authored]}
    dtype = resolve_inference_dtype(params.model.dtype)
    model = load_with_adapter(args.base, args.adapter, scale=1.0, dtype=dtype)
    tok = load_tokenizer(args.base)

    def ppl(scale: float) -> dict:
        set_adapter_scale(model, scale)
        out = {}
        for name, pairs in sets.items():
            nll = answer_nll(model, tok, pairs, params.prompt.system, params.eval.ppl_max_len,
                             params.eval.batch_size, progress=False)
            out[name] = perplexity(sum(n["nll"] for n in nll), sum(n["tokens"] for n in nll))
        return out

    print(f"{len(sets['real'])} real val answers ({args.csv.name}, seed {args.seed}, positions "
          f"{REAL_VAL.start}–{REAL_VAL.stop - 1}), {len(sets['authored'])} authored val; {args.adapter}; dtype {dtype}")
    print(f"{'scale':>6} {'real ppl':>10} {'vs base':>8} {'authored':>10} {'vs base':>8}")
    rows: list[dict] = []
    for s in [0.0, *args.scales]:                      # scale 0 = the base (adapter off); ratios against it
        p = ppl(s)
        base = rows[0] if rows else p
        rows.append({"scale": s, **p, "real_ratio": p["real"] / base["real"],
                     "authored_ratio": p["authored"] / base["authored"]})
        print(f"{'base' if s == 0 else f'{s:g}':>6} {p['real']:>10.2f} {rows[-1]['real_ratio']:>8.3f} "
              f"{p['authored']:>10.2f} {rows[-1]['authored_ratio']:>8.3f}", flush=True)
    chosen = pick(rows, args.authored_max)
    print(f"rule (real < base, authored ≤ {args.authored_max}× base) picks: {chosen}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"adapter": args.adapter, "dtype": str(dtype), "rows": rows, "chosen": chosen,
                                    "authored_max": args.authored_max}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Choose the adapter strength ``merge.scale`` (stages/MERGE.md) on two validation sets, without merging:
base + the trained LoRA adapter loaded unmerged (stages.model.adapters), rescaled in place for each strength,
and the reference answers' perplexity measured the way evaluate does (stages.evaluation.metrics.perplexity).

* **real val**: 100 real doctor answers — positions 40–139 of bench/real_questions.py's seeded order of
  ../shared/data/cmd_internal_medicine.gb18030.csv (read in place, never copied), disjoint from the 40 questions
  that bench scores;
* **authored val**: the project's val split (data/split/val.jsonl).

Rule (stages/EVALUATION.md, *Adapter strength*): the largest strength on the grid whose real-val perplexity
stays below the base's **beyond sampling noise** — the upper end of a paired bootstrap interval of the real-val
ratio (answers resampled with replacement, ``--boot`` resamples, one-sided ``--level``) is below 1 — while authored
val is ≤ ``--authored-max`` × base (issue 14's two perplexity targets). Until session 15 the rule used the point
ratio; 100 answers cannot tell a 0.98× ratio from 1 (session 14: 0.984×, 90 % interval 0.969–1.000).

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
    """The rule: largest scale whose real-ratio upper bound (``real_ratio_hi``; the point ratio where a row has
    no interval) is < 1 and authored ratio ≤ authored_max (None if none)."""
    ok = [r["scale"] for r in rows if r["scale"] > 0 and r.get("real_ratio_hi", r["real_ratio"]) < 1
          and r["authored_ratio"] <= authored_max]
    return max(ok) if ok else None


def bootstrap_ratio(nll: list[dict], base: list[dict], boot: int, level: float, seed: int) -> tuple[float, float]:
    """Paired bootstrap of the perplexity ratio exp(NLL/token) / exp(base NLL/token): the same answers are
    resampled for both models. Returns the (1 - level, level) quantiles of the resampled ratios."""
    import numpy as np

    a = np.array([[n["nll"], n["tokens"]] for n in nll], dtype=np.float64)
    b = np.array([[n["nll"], n["tokens"]] for n in base], dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(boot, len(a)))
    ratios = np.exp(a[idx, 0].sum(1) / a[idx, 1].sum(1) - b[idx, 0].sum(1) / b[idx, 1].sum(1))
    return float(np.quantile(ratios, 1 - level)), float(np.quantile(ratios, level))


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
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the real-val ratio (0 = point ratio)")
    ap.add_argument("--level", type=float, default=0.95, help="one-sided level of the upper bound (0.95: a 90%% interval)")
    ap.add_argument("--boot-seed", type=int, default=0)
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

    def ppl(scale: float) -> tuple[dict, list[dict]]:
        set_adapter_scale(model, scale)
        nll = {name: answer_nll(model, tok, pairs, params.prompt.system, params.eval.ppl_max_len,
                                params.eval.batch_size, progress=False) for name, pairs in sets.items()}
        out = {name: perplexity(sum(n["nll"] for n in v), sum(n["tokens"] for n in v)) for name, v in nll.items()}
        return out, nll["real"]

    print(f"{len(sets['real'])} real val answers ({args.csv.name}, seed {args.seed}, positions "
          f"{REAL_VAL.start}–{REAL_VAL.stop - 1}), {len(sets['authored'])} authored val; {args.adapter}; dtype {dtype}")
    lo_hi = f"{100 * (1 - args.level):g}–{100 * args.level:g}%"
    print(f"{'scale':>6} {'real ppl':>10} {'vs base':>8} {lo_hi:>15} {'authored':>10} {'vs base':>8}")
    rows: list[dict] = []
    base, base_nll = ppl(0.0)                          # scale 0 = the base (adapter off); ratios against it
    for s in [0.0, *args.scales]:
        p, nll = (base, base_nll) if s == 0 else ppl(s)
        row = {"scale": s, **p, "real_ratio": p["real"] / base["real"],
               "authored_ratio": p["authored"] / base["authored"]}
        if args.boot and s != 0:
            row["real_ratio_lo"], row["real_ratio_hi"] = bootstrap_ratio(nll, base_nll, args.boot, args.level,
                                                                         args.boot_seed)
        rows.append(row)
        ci = f"{row['real_ratio_lo']:.3f}–{row['real_ratio_hi']:.3f}" if "real_ratio_hi" in row else "-"
        print(f"{'base' if s == 0 else f'{s:g}':>6} {p['real']:>10.2f} {row['real_ratio']:>8.3f} {ci:>15} "
              f"{p['authored']:>10.2f} {row['authored_ratio']:>8.3f}", flush=True)
    chosen = pick(rows, args.authored_max)
    bound = f"upper {100 * args.level:g}% bound of" if args.boot else "point"
    print(f"rule ({bound} real ratio < 1, authored ≤ {args.authored_max}× base) picks: {chosen}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"adapter": args.adapter, "dtype": str(dtype), "rows": rows, "chosen": chosen,
                                    "authored_max": args.authored_max, "boot": args.boot, "level": args.level},
                                   indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""evaluate stage: tuned vs base on the test split's tier-stratified subset.

Generates the tuned model's answers (same prompt and generation code as serve), reads the base
answers made by predict_base, scores both with every metric (stages/evaluation/metrics/), and writes

    metrics/eval.json               flat keys: tuned.* base.* delta.* (tuned − base)
    metrics/eval_by_tier.json       the same per difficulty tier
    metrics/eval_by_category.json   the same per category
    metrics/predictions.jsonl       question, reference, base, tuned, flags and scores per example
    metrics/plots/eval_by_tier.{json,png}

The served safety layer's figures (triage on these questions, served emergency guidance) come from the
next stage, stages/safety_eval.py → metrics/safety.json, so a triage change never reruns generation.

    python -m stages.evaluate [--model models/merged] [--adapter models/lora]
(``--model models/base --adapter models/lora`` evaluates the unmerged adapter during development.)
"""
from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from stages.common.config import Params, load_params
from stages.evaluation.evalset import load_eval_examples
from stages.common.jsonio import read_jsonl, write_json, write_jsonl
from stages.common.timing import write_timing
from stages.evaluation.metrics.aggregate import by_group, compare, flatten
from stages.evaluation.metrics.answers import score_answers
from stages.model.modeling import load_model, load_tokenizer, resolve_inference_dtype, set_threads
from stages.evaluation.predict import predict, settings
from stages.data.tiers import TIERS

OUT = Path("metrics")


def load_base_predictions(path: str | Path, examples: list[dict], params: Params) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: base predictions missing (run `dvc repro predict_base`)")
    rows = read_jsonl(path)
    want = settings(params)
    if [r["id"] for r in rows] != [e["id"] for e in examples]:
        raise ValueError(f"{path}: base predictions cover different examples than eval.max_examples/the test "
                         "split select now (run `dvc repro predict_base`)")
    bad = {k for r in rows for k, v in want.items() if r.get("settings", {}).get(k) != v}
    if bad:
        raise ValueError(f"{path}: base predictions were made with different {sorted(bad)} "
                         "(run `dvc repro predict_base`)")
    return rows


def run_mcq(model_dir, adapter, params: Params, progress: bool) -> list[dict]:
    from stages.evaluation.metrics.mcq import load_mcq, mcq_predict

    items = load_mcq(params.eval.mcq_file)
    tok = load_tokenizer(model_dir)
    model = load_model(model_dir, resolve_inference_dtype(params.model.dtype), adapter=adapter)
    res = mcq_predict(model, tok, items, params.prompt.system, params.eval.ppl_max_len, params.eval.batch_size,
                      progress)
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/merged", help="tuned model directory (default models/merged)")
    ap.add_argument("--adapter", default=None, help="LoRA adapter to attach unmerged to --model")
    ap.add_argument("--base-model", default="models/base")
    ap.add_argument("--split", default="data/split/test.jsonl")
    ap.add_argument("--base-predictions", default="metrics/base_predictions.jsonl")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    progress = not args.no_progress

    params = load_params()
    ev = params.eval
    t_start = time.perf_counter()
    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"{args.model}: tuned model not found (run `dvc repro merge`, or pass "
                                "--model models/base --adapter models/lora)")
    from stages.data.text import load_terms

    if not Path(params.clean.terms_file).is_file():
        raise FileNotFoundError(f"clean.terms_file: {params.clean.terms_file} not found (needed for term accuracy)")
    terms = load_terms(params.clean.terms_file)
    examples = load_eval_examples(args.split, ev.max_examples)
    models = ["tuned"] + (["base"] if ev.compare_base else [])
    base_rows = load_base_predictions(args.base_predictions, examples, params) if ev.compare_base else None
    set_threads(0)

    timing: dict[str, float] = {}
    tok = load_tokenizer(args.model)
    model = load_model(args.model, resolve_inference_dtype(params.model.dtype), adapter=args.adapter)
    tuned = predict(model, tok, examples, params, "tuned", progress)
    del model
    gc.collect()
    timing["tuned_generate_s"] = tuned["generate_s"]
    timing["tuned_gen_tok_per_s"] = tuned["new_tokens"] / tuned["generate_s"]

    rows = []
    for i, e in enumerate(examples):
        row = {"id": e["id"], "difficulty": e.get("difficulty") or "unknown",
               "category": e.get("category") or "unknown", "question": e["question"], "reference": e["answer"],
               "tuned": tuned["rows"][i]}
        if base_rows is not None:
            row["base"] = base_rows[i]
        rows.append(row)

    mcq: dict[str, list[dict]] = {}
    if ev.mcq_file:
        t = time.perf_counter()
        mcq["tuned"] = run_mcq(args.model, args.adapter, params, progress)
        if ev.compare_base:
            mcq["base"] = run_mcq(args.base_model, None, params, progress)
        timing["mcq_s"] = time.perf_counter() - t

    t = time.perf_counter()
    from stages.evaluation.metrics.bertscore import BertScoreEncoder

    encoder = BertScoreEncoder(ev.bertscore_model, ev.bertscore_layers, ev.bertscore_batch_size)
    score_answers(rows, models, terms, encoder, progress)
    del encoder
    gc.collect()
    timing["score_s"] = time.perf_counter() - t

    overall = compare(rows, models)
    if mcq:
        from stages.evaluation.metrics.mcq import mcq_accuracy

        overall["mcq_n"] = len(mcq["tuned"])
        for m, res in mcq.items():
            overall[m]["mcq_acc"] = mcq_accuracy(res)
        if "base" in mcq:
            overall["delta"]["mcq_acc"] = overall["tuned"]["mcq_acc"] - overall["base"]["mcq_acc"]
    by_tier = by_group(rows, "difficulty", models, list(TIERS))
    by_category = by_group(rows, "category", models)

    timing["evaluate_total_s"] = time.perf_counter() - t_start
    write_timing("evaluate", timing)     # untracked: eval.json holds quality figures only

    eval_json = {"n_examples": len(rows), "n_tiers": len(by_tier), **flatten(overall)}
    eval_json = {k: v for k, v in eval_json.items() if not k.endswith(".n") and k != "n"}  # = n_examples
    write_json(OUT / "eval.json", _round(eval_json))
    write_json(OUT / "eval_by_tier.json", _round(by_tier))
    write_json(OUT / "eval_by_category.json", _round(by_category))
    write_jsonl(OUT / "predictions.jsonl", (_prediction_row(r, models) for r in rows))
    from stages.evaluation import eval_plots

    write_json(OUT / "plots" / "eval_by_tier.json", eval_plots.rows(by_tier))
    eval_plots.write_png(by_tier, OUT / "plots" / "eval_by_tier.png")
    _report(overall, models, timing)


SCORE_KEYS = ("new_tokens", "hit_cap", "loop", "repeat_chars", "distinct_2", "rouge1_char", "rouge2_char", "rougeL_char", "rougeL_word",
              "bertscore_f1", "ref_nll", "ref_tokens")


def _prediction_row(r: dict, models: list[str]) -> dict:
    out = {k: r[k] for k in ("id", "difficulty", "category", "question", "reference")}
    for m in models:
        out[m] = r[m]["answer"]
    out["flags"] = {m: {**r[m]["safety"], "terms_missed": r[m]["terms"]["missed"],
                        "terms_extra": r[m]["terms"]["extra"]} for m in models}
    out["scores"] = {m: {k: _round(r[m][k]) for k in SCORE_KEYS if k in r[m]} for m in models}
    return out


def _round(obj, nd: int = 4):
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v, nd) for v in obj]
    return obj


def _report(overall: dict, models: list[str], timing: dict) -> None:
    keys = ["rougeL_char", "rougeL_word", "bleu_zh", "chrf", "bertscore_f1", "ppl_ref", "reminder_rate",
            "emergency_guidance_rate", "risky_flags", "term_precision", "term_recall", "hit_cap_rate", "loop_rate",
            "distinct_2", "mean_new_tokens", "mcq_acc"]
    cols = models + (["delta"] if "delta" in overall else [])
    print(f"{'metric':<26}" + "".join(f"{c:>12}" for c in cols))
    for k in keys:
        if any(k in overall[c] for c in cols):
            print(f"{k:<26}" + "".join(f"{overall[c][k]:>12.4g}" if k in overall[c] else f"{'-':>12}"
                                       for c in cols))
    print("time: " + ", ".join(f"{k}={v:.1f}" for k, v in timing.items()))


if __name__ == "__main__":
    main()

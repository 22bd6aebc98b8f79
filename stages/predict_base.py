"""predict_base stage: the base model's answers (and reference-answer NLL) on the evaluation subset.

A stage of its own so that changing LoRA/training params (`dvc exp run -S lora.r=16`) never
regenerates them: it depends only on models/base, the test split, the generation modules and the
eval/prompt params that change its output. evaluate reads the file and checks it matches.

    python -m stages.predict_base [--model models/base] [--split data/split/test.jsonl]
"""
from __future__ import annotations

import argparse
import time

from stages.common.config import load_params
from stages.evaluation.evalset import load_eval_examples
from stages.common.jsonio import write_jsonl
from stages.common.timing import write_timing
from stages.model.modeling import load_model, load_tokenizer, resolve_inference_dtype, set_threads
from stages.evaluation.predict import predict, settings

DEFAULT_OUT = "metrics/base_predictions.jsonl"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/base")
    ap.add_argument("--split", default="data/split/test.jsonl")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    params = load_params()
    t0 = time.perf_counter()
    examples = load_eval_examples(args.split, params.eval.max_examples)
    if not params.eval.compare_base:
        # evaluate ignores this file when compare_base is false; an empty file keeps the DVC out
        write_jsonl(args.out, [])
        print("eval.compare_base is false: no base predictions")
        return
    set_threads(0)
    tok = load_tokenizer(args.model)
    model = load_model(args.model, resolve_inference_dtype(params.model.dtype))
    res = predict(model, tok, examples, params, "base", progress=not args.no_progress)
    meta = settings(params)
    n = write_jsonl(args.out, [{**r, "settings": meta} for r in res["rows"]])
    total = time.perf_counter() - t0
    # timings: artifacts/timing/predict_base.json (untracked), never a DVC out or metric
    write_timing("predict_base", {"n_examples": n, "generate_s": res["generate_s"],
                                  "gen_tok_per_s": res["new_tokens"] / res["generate_s"],
                                  "nll_s": res["nll_s"], "total_s": total})
    print(f"base predictions: {n} examples → {args.out} ({res['new_tokens']} new tokens in "
          f"{res['generate_s']:.0f}s, {res['new_tokens'] / res['generate_s']:.1f} tok/s; total {total:.0f}s)")


if __name__ == "__main__":
    main()

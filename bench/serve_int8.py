"""int8 serving (``serve.dtype: int8``, dynamic int8 Linear layers) against fp32 and bf16, in one run.

Each precision runs in its own fresh subprocess (so memory is that precision's alone), loading the
model the way the server does (stages.model.quantize.load_serving_model), then:
  * memory: the weights' own bytes, the process's RSS once loaded and after answering (steady
    serving state) minus the RSS before the load, and the peak RSS (int8 briefly holds the fp32
    model while it quantizes);
  * speed: greedy answers to the evaluate stage's test questions (stages.evaluation.evalset, tier-
    stratified), ``--batch-size`` at a time, ``--max-new-tokens`` each → new tokens/s;
  * quality: ROUGE-L(char) and BLEU(zh) against the references, emergency guidance on the emergency
    tier, reminder rate, risky flags (bench/serve_dtype.py's ``scores``), reference perplexity
    (stages.evaluation.metrics.perplexity, as evaluate computes it), answers identical to fp32.
Ratios are against fp32 measured in the same run.

    flock /tmp/medqa-heavy.lock .venv/bin/python bench/serve_int8.py [--model models/merged] \
        [--max-examples 15] [--max-new-tokens 64] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRECISIONS = ("float32", "bfloat16", "int8", "int8_fp32head")   # int8_fp32head: LM head left in fp32


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1 << 20)


def child(args) -> dict:
    """One precision, in this (fresh) process."""
    import torch

    from stages.common.config import load_params
    from stages.evaluation.evalset import load_eval_examples
    from stages.evaluation.metrics.perplexity import answer_nll
    from stages.model.generate import generate_answers
    from stages.model.modeling import load_tokenizer, set_threads
    from stages.model.quantize import load_serving_model, weight_bytes

    set_threads(0)
    params = load_params(REPO / "params.yaml")
    examples = load_eval_examples(args.split, args.max_examples)
    tok = load_tokenizer(args.model)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    model, precision = load_serving_model(args.model, args.child.replace("_fp32head", ""), "cpu",
                                          include_head=not args.child.endswith("_fp32head"))
    precision = args.child
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb() - rss0
    system = params.prompt.system
    generate_answers(model, tok, [examples[0]["question"]], system, max_new_tokens=4, batch_size=1)  # warm-up
    t0 = time.perf_counter()
    gen = generate_answers(model, tok, [e["question"] for e in examples], system,
                           max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    gen_s = time.perf_counter() - t0
    with torch.inference_mode():
        nll = answer_nll(model, tok, [(e["question"], e["answer"]) for e in examples], system,
                         params.eval.ppl_max_len, args.batch_size, False)
    new_tokens = sum(g["new_tokens"] for g in gen)
    import resource

    return {"precision": precision, "load_s": round(load_s, 1), "rss_loaded_mb": round(rss_loaded),
            "rss_serving_mb": round(_rss_mb() - rss0),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "weight_mb": round(weight_bytes(model) / (1 << 20)),
            "generate_s": round(gen_s, 2), "new_tokens": new_tokens, "tokens_per_s": round(new_tokens / gen_s, 2),
            "perplexity": round(math.exp(sum(n["nll"] for n in nll) / sum(n["tokens"] for n in nll)), 3),
            "answers": [g["answer"] for g in gen]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models/merged"))
    ap.add_argument("--split", default=str(REPO / "data/split/test.jsonl"))
    ap.add_argument("--max-examples", type=int, default=15)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--out", default=str(REPO / "artifacts/bench/serve_int8.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not (Path(args.model) / "config.json").is_file():
        ap.error(f"{args.model} is not a model directory (run `dvc repro merge`, or pass --model models/base)")
    if not Path(args.split).is_file():
        ap.error(f"{args.split} not found (run `dvc repro split`)")
    if args.child:
        print(json.dumps(child(args), ensure_ascii=False))
        return 0

    from bench.serve_dtype import scores
    from stages.evaluation.evalset import load_eval_examples

    examples = load_eval_examples(args.split, args.max_examples)
    runs = {}
    for p in args.precisions.split(","):
        cmd = [sys.executable, __file__, "--child", p, "--model", args.model, "--split", args.split,
               "--max-examples", str(args.max_examples), "--max-new-tokens", str(args.max_new_tokens),
               "--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
        runs[p] = json.loads(out.strip().splitlines()[-1])
        runs[p].update(scores(examples, runs[p]["answers"]))
        print(f"{p}: {runs[p]['tokens_per_s']} tok/s, weights {runs[p]['weight_mb']} MB", flush=True)
    ref = runs.get("float32")
    for r in runs.values():
        if ref is not None:
            r["identical_to_fp32"] = sum(a == b for a, b in zip(r["answers"], ref["answers"]))
            r["speed_vs_fp32"] = round(r["tokens_per_s"] / ref["tokens_per_s"], 2)
            r["weights_vs_fp32"] = round(r["weight_mb"] / ref["weight_mb"], 2)
    report = {"model": args.model, "examples": len(examples), "max_new_tokens": args.max_new_tokens,
              "batch_size": args.batch_size, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    keys = ["weight_mb", "rss_loaded_mb", "rss_serving_mb", "peak_rss_mb", "tokens_per_s", "speed_vs_fp32", "rougeL_char", "bleu_zh",
            "perplexity", "emergency_guidance_rate", "reminder_rate", "risky_flags", "identical_to_fp32"]
    print("\n| metric | " + " | ".join(runs) + " |\n|---|" + "---|" * len(runs))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{r.get(k, float('nan')):.4g}" for r in runs.values()) + " |")
    print(f"\n{len(examples)} test questions, {args.max_new_tokens} new tokens max, batch {args.batch_size}; "
          f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

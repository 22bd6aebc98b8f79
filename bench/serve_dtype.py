"""What running in bf16 (``serve.dtype: auto`` and, for predict_base/evaluate, ``model.dtype: auto`` on
CPUs with AMX / AVX512-BF16, and on GPUs) changes against fp32.

Generates the evaluation answers with the merged model in both dtypes, in this run, with the
evaluate stage's settings (eval.max_examples test examples, the generation config generation.*, the shared
prompt code), then compares: identical answers, ROUGE-L(char) and BLEU(zh) against the references,
the safety rates (emergency guidance on the emergency tier, reminder where required), the
reference perplexity, and the generation time (bf16 / fp32 ratio).

    flock /tmp/medqa-heavy.lock .venv/bin/python bench/serve_dtype.py [--model models/merged] [--max-examples 30]
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages.common.config import load_params  # noqa: E402
from stages.evaluation.evalset import load_eval_examples  # noqa: E402
from stages.model.generate import Decoding, generate_answers  # noqa: E402
from stages.evaluation.metrics.overlap import corpus_bleu, rouge  # noqa: E402
from stages.evaluation.metrics.perplexity import answer_nll  # noqa: E402
from stages.evaluation.metrics.safety import safety_flags  # noqa: E402
from stages.model.modeling import cpu_has_native_bf16, load_model, load_tokenizer, set_threads  # noqa: E402


def run(model_dir: str, dtype: torch.dtype, examples: list[dict], params) -> dict:
    ev, system = params.eval, params.prompt.system
    tok = load_tokenizer(model_dir)
    model = load_model(model_dir, dtype, "cpu")
    t0 = time.perf_counter()
    gen = generate_answers(model, tok, [e["question"] for e in examples], system, batch_size=ev.batch_size,
                           decoding=Decoding.from_params(params.generation))
    gen_s = time.perf_counter() - t0
    nll = answer_nll(model, tok, [(e["question"], e["answer"]) for e in examples], system, ev.ppl_max_len,
                     ev.batch_size, True, desc="ref-nll")
    del model
    gc.collect()
    return {"answers": [g["answer"] for g in gen], "new_tokens": sum(g["new_tokens"] for g in gen),
            "generate_s": gen_s, "nll": sum(n["nll"] for n in nll), "ref_tokens": sum(n["tokens"] for n in nll)}


def scores(examples: list[dict], answers: list[str]) -> dict:
    refs = [e["answer"] for e in examples]
    flags = [safety_flags(e["question"], a) for e, a in zip(examples, answers)]
    emerg = [f["emergency_guidance"] for e, f in zip(examples, flags) if e["difficulty"] == "emergency"]
    need = [f["has_reminder"] for f in flags if f["needs_reminder"]]
    return {"rougeL_char": sum(rouge(a, r, "char")["rougeL_char"] for a, r in zip(answers, refs)) / len(refs),
            "bleu_zh": corpus_bleu(answers, refs),
            "emergency_guidance_rate": sum(emerg) / len(emerg) if emerg else float("nan"),
            "reminder_rate": sum(need) / len(need) if need else float("nan"),
            "risky_flags": sum(bool(f["risky"]) for f in flags)}


def main() -> int:
    params = load_params(REPO / "params.yaml")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models/merged"))
    ap.add_argument("--split", default=str(REPO / "data/split/test.jsonl"))
    ap.add_argument("--max-examples", type=int, default=params.eval.max_examples)
    ap.add_argument("--out", default=str(REPO / "artifacts/bench/serve_dtype.json"))
    args = ap.parse_args()
    if not (Path(args.model) / "config.json").is_file():
        ap.error(f"{args.model} is not a model directory (run `dvc repro merge`)")
    set_threads(0)
    examples = load_eval_examples(args.split, args.max_examples)
    print(f"{len(examples)} examples, max_new_tokens {params.generation.max_new_tokens}; native bf16 on this CPU: "
          f"{cpu_has_native_bf16()}", flush=True)
    runs = {name: run(args.model, dt, examples, params) for name, dt in
            (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    report = {"model": args.model, "examples": len(examples), "generation": Decoding.from_params(params.generation).describe()}
    for name, r in runs.items():
        report[name] = {**scores(examples, r["answers"]), "perplexity": math.exp(r["nll"] / r["ref_tokens"]),
                        "generate_s": round(r["generate_s"], 1), "new_tokens": r["new_tokens"]}
    same = [a == b for a, b in zip(runs["float32"]["answers"], runs["bfloat16"]["answers"])]
    report["identical_answers"] = sum(same)
    report["generate_time_ratio_bf16_over_fp32"] = round(runs["bfloat16"]["generate_s"] / runs["float32"]["generate_s"], 3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    keys = ["rougeL_char", "bleu_zh", "emergency_guidance_rate", "reminder_rate", "risky_flags", "perplexity",
            "generate_s", "new_tokens"]
    print("\n| metric | float32 | bfloat16 |\n|---|---|---|")
    for k in keys:
        a, b = report["float32"][k], report["bfloat16"][k]
        print(f"| {k} | {a:.4g} | {b:.4g} |")
    print(f"\nidentical answers: {sum(same)}/{len(same)}; bf16 generation time / fp32: "
          f"{report['generate_time_ratio_bf16_over_fp32']}\nreport: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

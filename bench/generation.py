"""Batched vs unbatched greedy generation throughput, in one run, through stages.model.generate (the code
evaluate and serve use).

    flock /tmp/medqa-heavy.lock python bench/generation.py [--model models/base] [--batch-sizes 8 16 32]
        [--max-new-tokens 64] [--unbatched-prompts 4] [--questions data/split/test.jsonl]

Baseline: batch size 1 on the first ``--unbatched-prompts`` questions. Each batch size B then
generates for the first B questions in one batch. Throughput counts only real answer tokens (up to
and including the end of each answer, never padding after it), so a batch that idles while its
longest answer finishes is charged for it. Prints tokens/s per setting, the ratio to batch 1, and how
many of the baseline's answers the batched run reproduced exactly (greedy; padding can flip
near-ties). Target (issue 6): best ratio ≥ 4×; exit status 1 when missed."""
from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 4.0


def load_questions(path: str | None, n: int) -> tuple[list[str], str]:
    from stages.common.jsonio import read_jsonl

    candidates = [path] if path else [str(REPO / "data/split/test.jsonl"), *sorted(glob.glob(str(REPO / "data/raw/*.jsonl")))]
    qs, used = [], []
    for c in candidates:
        if not Path(c).is_file():
            continue
        got = [r["question"] for r in read_jsonl(c) if str(r.get("question") or "").strip()]
        qs += got[::max(1, len(got) // n)]  # spread over the file (tiers/topics), deterministic
        used.append(Path(c).name)
        if len(qs) >= n:
            break
    if len(qs) < n:
        raise SystemExit(f"need {n} questions, found {len(qs)} in {candidates}")
    return qs[:n], ", ".join(used)


def run(model, tok, questions, system, max_new_tokens, batch_size) -> dict:
    from stages.model.generate import generate_answers

    t0 = time.perf_counter()
    res = generate_answers(model, tok, questions, system, max_new_tokens=max_new_tokens, batch_size=batch_size,
                           progress=False)
    sec = time.perf_counter() - t0
    tokens = sum(r["new_tokens"] for r in res)
    return {"batch": batch_size, "prompts": len(questions), "tokens": tokens, "seconds": sec,
            "tok_s": tokens / sec, "answers": [r["answer"] for r in res]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models/base"))
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--unbatched-prompts", type=int, default=4)
    ap.add_argument("--questions", default=None, help="JSONL with a 'question' field")
    args = ap.parse_args()

    from stages.common.config import load_params
    from stages.model.modeling import load_model, load_tokenizer, set_threads

    system = load_params(REPO / "params.yaml").prompt.system
    questions, source = load_questions(args.questions, max(args.batch_sizes + [args.unbatched_prompts]))
    set_threads(0)
    import torch

    tok, model = load_tokenizer(args.model), load_model(args.model, "auto")
    print(f"model {args.model} | {len(questions)} questions from {source} | max_new_tokens {args.max_new_tokens} | "
          f"torch threads {torch.get_num_threads()}")
    run(model, tok, questions[:2], system, 4, 2)  # warm-up (first-call allocations)
    base = run(model, tok, questions[:args.unbatched_prompts], system, args.max_new_tokens, 1)
    results = [base]
    for b in args.batch_sizes:
        results.append(run(model, tok, questions[:b], system, args.max_new_tokens, b))
    k = args.unbatched_prompts
    print(f"{'batch':>5} {'prompts':>7} {'tokens':>7} {'seconds':>8} {'tok/s':>7} {'ratio':>6} {'same answers':>13}")
    for r in results:
        same = sum(a == b for a, b in zip(r["answers"][:k], base["answers"]))
        print(f"{r['batch']:>5} {r['prompts']:>7} {r['tokens']:>7} {r['seconds']:>8.1f} {r['tok_s']:>7.2f} "
              f"{r['tok_s'] / base['tok_s']:>5.2f}x {same:>6}/{min(k, r['prompts'])}")
    best = max(results[1:], key=lambda r: r["tok_s"])
    ratio = best["tok_s"] / base["tok_s"]
    print(f"best: batch {best['batch']} at {best['tok_s']:.2f} tok/s = {ratio:.2f}x batch 1 "
          f"(target >= {TARGET}x: {'met' if ratio >= TARGET else 'MISSED'})")
    sys.exit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()

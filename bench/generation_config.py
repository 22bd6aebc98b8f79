"""Choose the generation config (params ``generation.*``) by measurement on the **val** split (the test
split stays untouched for evaluate): generate the val answers with each candidate decoding, one model
load, same batches, and score loop rate, distinct-2, ROUGE-L(char) vs the references, emergency
guidance on the emergency tier, the share of answers that hit the token cap, and seconds.

    flock /tmp/medqa-heavy.lock python bench/generation_config.py [--model models/merged]
        [--adapter DIR] [--split data/split/val.jsonl] [--max-examples 0] [--configs plain rp1.05 ...]

Candidates (``--configs``): ``plain`` (greedy), ``rpX`` (repetition_penalty X), ``ngN`` (no_repeat_ngram_size
N), ``minN`` (min_new_tokens N: no stop token before N answer tokens), ``dryM[aN][bX]`` (DRY multiplier M,
allowed length N, base X; defaults of params), and combinations joined with ``+`` (``rp1.05+ng8``,
``rp1.05+dry0.8a3``, ``rp1.1+dry0.8+min64``). The model runs in params' inference dtype.
Each config also answers ``--short`` (bench/short_messages.txt: greetings and one-line service questions,
none urgent): their mean answer tokens and the share that carry 120 / 急诊 guidance anyway (a false alarm) —
session 16 adopted an answer floor on val alone and it padded exactly these with wrong content.
Prints a table and writes artifacts/bench/generation_config.json (with every answer)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT = ["plain", "rp1.05", "rp1.1", "ng6", "rp1.05+ng8"]


def parse(name: str, max_new_tokens: int, stop: tuple, dry_defaults: tuple[float, int] | None = None):
    """A ``Decoding`` for a config name; ``dry_defaults`` (base, allowed length) are what ``dryM`` means without
    ``aN``/``bX`` — main passes params' ``generation.dry_base`` / ``dry_allowed_length`` (before session 17 the
    class defaults were used, so ``dry0.8`` meant allowed length 2, not params' 1)."""
    import re

    from stages.model.generate import Decoding

    kw = {"max_new_tokens": max_new_tokens, "stop": stop}
    if dry_defaults is not None:
        kw["dry_base"], kw["dry_allowed_length"] = dry_defaults
    for part in name.split("+"):
        if part == "plain":
            continue
        dry = re.fullmatch(r"dry([\d.]+)(?:a(\d+))?(?:b([\d.]+))?", part)
        if dry:
            kw["dry_multiplier"] = float(dry.group(1))
            if dry.group(2):
                kw["dry_allowed_length"] = int(dry.group(2))
            if dry.group(3):
                kw["dry_base"] = float(dry.group(3))
        elif re.fullmatch(r"min\d+", part):
            kw["min_new_tokens"] = int(part[3:])
        elif part.startswith("rp"):
            kw["repetition_penalty"] = float(part[2:])
        elif part.startswith("ng"):
            kw["no_repeat_ngram_size"] = int(part[2:])
        else:
            raise SystemExit(f"unknown config part {part!r} (plain | rpX | ngN | minN | dryM[aN][bX], joined with +)")
    return Decoding(**kw)


def read_short(path: Path) -> list[str]:
    """One message per line; blank lines and ``#`` comments skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def main() -> int:
    from stages.common.config import load_params
    from stages.evaluation.evalset import load_eval_examples
    from stages.evaluation.metrics.overlap import rouge
    from stages.evaluation.metrics.repetition import distinct_n, is_loop
    from stages.evaluation.metrics.safety import safety_flags
    from stages.model.generate import generate_answers
    from stages.model.modeling import load_model, load_tokenizer, resolve_inference_dtype, set_threads
    from stages.safety.rules import has_emergency_guidance

    params = load_params(REPO / "params.yaml")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models/merged"))
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--split", default=str(REPO / "data/split/val.jsonl"))
    ap.add_argument("--max-examples", type=int, default=0)
    ap.add_argument("--configs", nargs="+", default=DEFAULT)
    ap.add_argument("--batch-size", type=int, default=params.eval.batch_size)
    ap.add_argument("--short", default=str(REPO / "bench/short_messages.txt"), help="short non-urgent messages; '' = skip")
    ap.add_argument("--out", default=str(REPO / "artifacts/bench/generation_config.json"))
    args = ap.parse_args()
    set_threads(0)
    examples = load_eval_examples(args.split, args.max_examples)
    dtype = resolve_inference_dtype(params.model.dtype, "cpu")
    tok = load_tokenizer(args.model)
    model = load_model(args.model, dtype, "cpu", adapter=args.adapter)
    gp = params.generation
    short = read_short(Path(args.short)) if args.short else []
    print(f"{len(examples)} examples of {args.split}, {dtype}, max_new_tokens {gp.max_new_tokens}", flush=True)
    report = {"model": args.model, "adapter": args.adapter, "split": args.split, "n": len(examples), "configs": {}}
    for name in args.configs:
        dec = parse(name, gp.max_new_tokens, tuple(gp.stop_tokens), (gp.dry_base, gp.dry_allowed_length))
        t0 = time.perf_counter()
        gen = generate_answers(model, tok, [e["question"] for e in examples], params.prompt.system,
                               batch_size=args.batch_size, progress=False, decoding=dec)
        sec = time.perf_counter() - t0
        answers = [g["answer"] for g in gen]
        emerg = [safety_flags(e["question"], a)["emergency_guidance"] for e, a in zip(examples, answers)
                 if e.get("difficulty") == "emergency"]
        d2 = [d for d in (distinct_n(a, 2) for a in answers) if d is not None]
        row = {"loop_rate": sum(map(is_loop, answers)) / len(answers),
               "distinct_2": sum(d2) / max(1, len(d2)),
               "rougeL_char": sum(rouge(a, e["answer"], "char")["rougeL_char"] for a, e in zip(answers, examples)) / len(answers),
               "emergency_guidance_rate": sum(emerg) / len(emerg) if emerg else float("nan"),
               "hit_cap_rate": sum(g["hit_cap"] for g in gen) / len(gen),
               "mean_new_tokens": sum(g["new_tokens"] for g in gen) / len(gen), "seconds": sec,
               "decoding": dec.describe(), "answers": answers}
        if short:
            sg = generate_answers(model, tok, short, params.prompt.system, batch_size=args.batch_size,
                                  progress=False, decoding=dec)
            row["short_tokens"] = sum(g["new_tokens"] for g in sg) / len(sg)
            row["short_guidance_rate"] = sum(has_emergency_guidance(g["answer"]) for g in sg) / len(sg)
            row["short_answers"] = [g["answer"] for g in sg]
        report["configs"][name] = row
        print(f"  {name}: loop {row['loop_rate']:.3f}, distinct-2 {row['distinct_2']:.3f}, ROUGE-L {row['rougeL_char']:.2f}, "
              f"emergency {row['emergency_guidance_rate']:.2f}, hit cap {row['hit_cap_rate']:.3f}, "
              f"{row['mean_new_tokens']:.0f} tokens, short: {row.get('short_tokens', float('nan')):.0f} tokens, "
              f"guidance {row.get('short_guidance_rate', float('nan')):.2f}, {sec:.0f}s", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("\n| config | loop rate | distinct-2 | ROUGE-L(char) | emergency guidance | hit cap | mean tokens | "
          "short: tokens | short: 120/急诊 | s |\n|---|---|---|---|---|---|---|---|---|---|")
    for name, r in report["configs"].items():
        print(f"| {name} | {r['loop_rate']:.3f} | {r['distinct_2']:.3f} | {r['rougeL_char']:.2f} | "
              f"{r['emergency_guidance_rate']:.2f} | {r['hit_cap_rate']:.3f} | {r['mean_new_tokens']:.0f} | "
              f"{r.get('short_tokens', float('nan')):.0f} | {r.get('short_guidance_rate', float('nan')):.2f} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

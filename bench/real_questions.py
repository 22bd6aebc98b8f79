"""Base vs tuned on REAL patient questions the project's data never contains (issue 14): a seeded sample
of ../shared/data/cmd_internal_medicine.gb18030.csv (doctor answers, MIT; read in place, never copied),
answered by models/base and models/merged with the one generation config (params ``generation.*``),
scored like evaluate: ROUGE-L(char) vs the doctor's answer, reference perplexity, loop rate, cap rate.

    flock /tmp/medqa-heavy.lock python bench/real_questions.py [--n 40] [--seed 7] [--offset 0]
        [--tuned models/merged] [--base models/base] [--csv ../shared/data/cmd_internal_medicine.gb18030.csv]

Both models run in params' inference dtype (``model.dtype``), one after the other on the same questions.
Prints a table and writes artifacts/bench/real_questions.json (with every answer). Exits 0 with a
message when the shared data folder is absent."""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_CSV = REPO.parent / "shared" / "data" / "cmd_internal_medicine.gb18030.csv"
SEED = 7   # the sample order; bench/adapter_scale.py takes its real val set from the same order


def sample_questions(csv: Path, n: int, seed: int, params) -> list[dict]:
    """Seeded sample of the CSV's well-formed rows, PII-masked, within the clean stage's length bounds."""
    from stages.data.formats import RawRecord, read_source
    from stages.safety.pii import mask_pii

    c = params.clean
    rows, seen = [], set()
    for item in read_source(csv, "shared_cmd", params.data.csv_columns):
        if not isinstance(item, RawRecord):
            continue
        q, a = mask_pii(item.question.strip()), mask_pii(item.answer.strip())
        if not (len(q) >= c.min_question_chars and c.min_answer_chars <= len(a) <= c.max_answer_chars) or q in seen:
            continue
        seen.add(q)
        rows.append({"id": f"{csv.name}:{item.origin.rsplit(':', 1)[-1]}", "question": q, "answer": a})
    random.Random(seed).shuffle(rows)
    return rows[:n]


SHOWN = ("rougeL_char", "bleu_zh", "ppl_ref", "loop_rate", "hit_cap_rate", "mean_new_tokens")


def summary(examples: list[dict], preds: dict[str, dict]) -> dict:
    """evaluate's own scoring (stages.evaluation.metrics: score_answers + compare) on these rows."""
    from stages.evaluation.metrics.aggregate import compare
    from stages.evaluation.metrics.answers import score_answers

    rows = [{"id": e["id"], "question": e["question"], "reference": e["answer"],
             **{m: p["rows"][i] for m, p in preds.items()}} for i, e in enumerate(examples)]
    score_answers(rows, list(preds), progress=False)
    return compare(rows, list(preds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--offset", type=int, default=0,
                    help="skip the first N of the seeded order (140: past the 40 scored here and adapter_scale's real val)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--base", default="models/base")
    ap.add_argument("--tuned", default="models/merged")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=REPO / "artifacts/bench/real_questions.json")
    args = ap.parse_args()
    if not args.csv.is_file():
        print(f"skipped: {args.csv} is absent (the shared real-data folder)")
        return
    from stages.common.config import load_params
    from stages.evaluation.predict import predict
    from stages.model.modeling import load_model, load_tokenizer, resolve_inference_dtype

    params = load_params(args.params)
    examples = sample_questions(args.csv, args.offset + args.n, args.seed, params)[args.offset:]
    dtype = resolve_inference_dtype(params.model.dtype)
    preds = {}
    for label, path in (("base", args.base), ("tuned", args.tuned)):
        if not (Path(path) / "config.json").is_file():
            sys.exit(f"{path}: no model (run `dvc repro merge` first)")
        model, tok = load_model(path, dtype), load_tokenizer(path)
        preds[label] = predict(model, tok, examples, params, label)
        del model
    results = summary(examples, preds)
    print(f"{len(examples)} real questions from {args.csv.name} (seed {args.seed}, positions {args.offset}–"
          f"{args.offset + len(examples) - 1}), dtype {dtype}")
    print(f"{'':<8}" + "".join(f"{k:>16}" for k in SHOWN))
    for label in ("base", "tuned"):
        print(f"{label:<8}" + "".join(f"{round(results[label][k], 4):>16}" for k in SHOWN))
    b, t = results["base"], results["tuned"]
    print(f"tuned - base ROUGE-L(char) {results['delta']['rougeL_char']:+.2f}; "
          f"ppl ratio {t['ppl_ref'] / b['ppl_ref']:.3f}; tuned loops {t['loop_rate']}; "
          f"generate s: base {preds['base']['generate_s']:.0f}, tuned {preds['tuned']['generate_s']:.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": len(examples), "offset": args.offset, "seed": args.seed, "dtype": str(dtype),
                                    "results": results,
                                    "examples": [{**e, **{m: p["rows"][i]["answer"] for m, p in preds.items()}}
                                                 for i, e in enumerate(examples)]},
                                   ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

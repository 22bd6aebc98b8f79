"""export stage: models/merged → models/export/medqa-<quant>.gguf (export.quants, F16 and Q8_0 by
default) + an Ollama Modelfile, each file verified by loading it back.

Not in the default `dvc repro`: the stage lives in export/dvc.yaml (`dvc repro` with no target runs
only the root dvc.yaml); run it with `dvc repro export/dvc.yaml`. For every quant the GGUF is written
(stages/gguf_export/gguf_writer.py), loaded back with transformers' ``gguf_file=`` loader and compared with
models/merged on the first export.verify_prompts val questions (stages/gguf_export/verify.py): greedy
tokens, max |Δlogit| ≤ export.tolerance.<quant>, tokenizer and chat template. Any failure fails the
stage and leaves no models/export. metrics/export.json holds the figures (content only).

    python -m stages.export [--model models/merged] [--out models/export] [--quants F16,Q8_0]
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

from stages.common.config import load_params
from stages.common.jsonio import atomic_dir, write_json
from stages.gguf_export.gguf_writer import ExportError, write_gguf
from stages.gguf_export.modelfile import modelfile
from stages.gguf_export.verify import Reference, compare, problems
from stages.model.merge_verify import verification_questions

log = logging.getLogger("stages.export")
MODEL, OUT, METRICS, VAL = Path("models/merged"), Path("models/export"), Path("metrics/export.json"), Path("data/split/val.jsonl")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def run_export(model: Path, out: Path, metrics_path: Path, val: Path, params, quants: list[str] | None = None) -> dict:
    ex, system = params.export, params.prompt.system
    quants = quants or list(ex.quants)
    if not (model / "config.json").is_file():
        raise ExportError(f"{model}: no config.json — run `dvc repro merge` first (or pass --model)")
    questions, source = verification_questions(ex.verify_prompts, val)
    ref = Reference(model, questions, system, ex.verify_new_tokens)
    report = {"model": str(model), "prompt_source": source, "verify_prompts": len(questions),
              "verify_new_tokens": ex.verify_new_tokens, "quants": {}}
    failures: list[str] = []
    with atomic_dir(out) as tmp:
        for q in quants:
            name = f"medqa-{q}.gguf"
            log.info("writing %s", name)
            info = write_gguf(model, tmp / name, q)
            result = compare(ref, tmp / name)
            tol = ex.tolerance.get(q)
            if tol is None:
                raise ExportError(f"export.tolerance has no entry for {q}")
            bad = problems(q, result, tol, q in ex.identical_tokens)
            failures += bad
            report["quants"][q] = {"file": name, **info, "sha256": _sha256(tmp / name), **result,
                                   "tolerance": tol, "identical_tokens_required": q in ex.identical_tokens,
                                   "passed": not bad}
            log.info("%s: %d bytes, greedy identical %d/%d prompts, max |Δlogit| %.4g (tolerance %g)%s", q,
                     info["bytes"], result["greedy_identical_prompts"], result["prompts"],
                     result["max_abs_logit_diff"], tol, "" if not bad else " FAILED")
        f16 = report["quants"].get("F16")
        for r in report["quants"].values():
            if f16:
                r["bytes_vs_f16"] = round(r["bytes"] / f16["bytes"], 4)
        stops = sorted({ref.tok.convert_ids_to_tokens(i) for i in
                        ([ref.eos] if isinstance(ref.eos, int) else list(ref.eos or []))} | {"<|im_end|>"})
        mq = ex.modelfile_quant if ex.modelfile_quant in quants else quants[0]
        (tmp / "Modelfile").write_text(modelfile(f"medqa-{mq}.gguf", system, stops, ex.num_predict), encoding="utf-8")
        report["modelfile"] = {"from": f"medqa-{mq}.gguf", "stops": stops}
        report["passed"] = not failures
        write_json(metrics_path, report)
        if failures:
            raise ExportError("GGUF export failed verification:\n  " + "\n  ".join(failures))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--metrics", type=Path, default=METRICS)
    ap.add_argument("--val", type=Path, default=VAL)
    ap.add_argument("--quants", help="comma-separated override of export.quants")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    params = load_params(args.params)
    quants = args.quants.split(",") if args.quants else None
    try:
        run_export(args.model, args.out, args.metrics, args.val, params, quants)
    except ExportError as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

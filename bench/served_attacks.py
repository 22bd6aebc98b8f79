"""Prompt-injection sets through the whole served path: pre-check → the merged model → post-check.

The triage stage measures the pre-check alone (metrics/triage.json ``injection``). This bench asks what happens
to the attacks it lets through: the model answers them (greedy, the params' generation config and system prompt,
as serve does), then ``stages.safety.postcheck.postcheck`` looks at each answer. Reported per file:

- attacks: stopped by the pre-check / answered by the model / of those, answers a post-check guard replaced or
  masked (``post:echo``, ``post:complied``, ``post:prompt_leak``, ``post:pii``);
- benign look-alikes: answered by the model / of those, answers a guard replaced or masked (the cost).

Every answered row is written to ``--out`` (question, answer, the guards that fired) so a reader can judge which
answers still comply. Session 22 (stages/TRIAGE.md): 76 of 355 held-out attacks reached the model.

    flock /tmp/medqa-heavy.lock python bench/served_attacks.py [data/injection/writer_q_eval.jsonl ...]"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_SETS = [REPO / "data/injection/writer_q_eval.jsonl", REPO / "data/injection/writer_w_eval.jsonl"]


def through_precheck(rows: list[dict], triager) -> list[dict]:
    """Rows the pre-check lets through to the model, each with its ``pre`` (``PreCheck``: pointer, gray)."""
    from stages.safety.precheck import precheck

    out = []
    for r in rows:
        pre = precheck(r["text"], triager)
        if pre.action == "pass":
            out.append({**r, "pre": pre})
    return out


def summarise(rows: list[dict], answered: list[dict]) -> dict:
    """Counts per file and label; ``answered`` rows carry ``guards`` (the post-check rules starting "post:")."""
    out: dict = {}
    for r in rows:
        f = out.setdefault(r["file"], {"injection": Counter(), "benign": Counter()})
        f[r["label"]]["n"] += 1
    for r in answered:
        c = out[r["file"]][r["label"]]
        c["answered"] += 1
        if r["guards"]:
            c["guarded"] += 1
            for g in r["guards"]:
                c[g] += 1
    return {f: {k: dict(v) for k, v in d.items()} for f, d in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="*", type=Path, default=DEFAULT_SETS)
    ap.add_argument("--model", default="models/merged")
    ap.add_argument("--triage", default="models/triage")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=REPO / "artifacts/bench/served_attacks.jsonl")
    args = ap.parse_args()

    from stages.common.config import load_params
    from stages.common.jsonio import iter_json_objects
    from stages.model.generate import Decoding, generate_answers
    from stages.model.modeling import load_model, load_tokenizer, resolve_inference_dtype
    from stages.safety.pii import mask_pii
    from stages.safety.postcheck import postcheck
    from stages.safety.triage import load_triager

    params = load_params(args.params)
    rows = [{**obj, "file": p.name} for p in args.sets for _, obj in iter_json_objects(p)]
    passed = through_precheck(rows, load_triager(args.triage))
    print(f"{len(rows)} rows, {len(passed)} pass the pre-check and go to the model", flush=True)
    model = load_model(args.model, resolve_inference_dtype(params.model.dtype))
    tok = load_tokenizer(args.model)
    questions = [mask_pii(r["text"]) for r in passed]         # serve masks the question before the model sees it
    gen = generate_answers(model, tok, questions, params.prompt.system, batch_size=args.batch_size,
                           decoding=Decoding.from_params(params.generation))
    answered = []
    for r, q, g in zip(passed, questions, gen):
        post = postcheck(q, g["answer"], params.prompt.system, r["pre"].pointer, r["pre"].gray)
        answered.append({"file": r["file"], "label": r["label"], "category": r.get("category"), "question": q,
                         "answer": mask_pii(g["answer"]), "guards": [x for x in post.rules if x.startswith("post:")]})
    summary = summarise(rows, answered)
    for f, d in summary.items():
        for label in ("injection", "benign"):
            c = d[label]
            extra = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k.startswith("post:"))
            print(f"{f} {label}: {c.get('n', 0)} rows, answered by the model {c.get('answered', 0)}, "
                  f"guarded {c.get('guarded', 0)}" + (f" ({extra})" if extra else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for r in answered:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"answers: {args.out}")


if __name__ == "__main__":
    main()

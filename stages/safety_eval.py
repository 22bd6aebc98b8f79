"""safety_eval stage: the served safety layer measured on evaluate's answers — cheap, no LLM.

    python -m stages.safety_eval

Reads the triage model (models/triage), the triage stage's held-out test set, the QA test split and
evaluate's answers (metrics/predictions.jsonl: base and tuned) and writes ``metrics/safety.json``:

* ``triage.split_*``   served triage (rules ∪ classifier) on the QA test split: emergency-tier recall,
                       false alarms on the other tiers;
* ``triage.test_*``    the same on the triage stage's held-out test set, per class;
* ``<model>.served_emergency_guidance_rate``  share of emergency-tier questions that get 120/急诊
                       guidance from the served system (the triage reply when it flags the question, else
                       the model's answer after the post-check), base and tuned, and ``delta.``;
* ``<model>.postcheck_*``  of the test questions the pre-check lets through to the model (``postcheck_n``),
                       the share of answers the post-check's output guards replaced (``replaced_rate``: an
                       answer that only repeats the question, agrees to a question in the injection classifier's
                       gray zone, or recites the system prompt) or masked personal data in (``pii_rate``), or appended the 120 pointer to (``pointer_rate``: triage score
                       ≥ ``triage.pointer_floor`` but not flagged) — stages/safety/postcheck.py; what the guards cost
                       on ordinary questions.

Why a stage of its own: evaluate generates answers with the LLM (minutes to tens of minutes on a CPU);
these figures need only its saved answers. A triage change (new data, a threshold) reruns triage →
safety_eval in seconds and never evaluate; a LoRA change reruns evaluate → safety_eval.
Outputs hold content only (same inputs, byte-identical file)."""
from __future__ import annotations

import argparse
from pathlib import Path

from stages.common.jsonio import read_jsonl, write_json


def served_answers(triager, preds: list[dict], models: list[str], system: str) -> tuple[dict, dict]:
    """Each model's answers as served (after ``postcheck``), and the post-check figures over the questions the
    pre-check lets through to the model."""
    from stages.safety.postcheck import REPLACED, postcheck
    from stages.safety.precheck import precheck

    pres = [precheck(p["question"], triager) for p in preds]
    passing = [pre.action == "pass" for pre in pres]
    served, out = {}, {}
    for m in models:
        checks = [postcheck(p["question"], p[m], system, pre.pointer, pre.gray) for p, pre in zip(preds, pres)]
        served[m] = [c.answer for c in checks]
        through = [c for c, ok in zip(checks, passing) if ok]
        if through:
            out[f"{m}.postcheck_n"] = len(through)
            replaced = sum(any(r in REPLACED for r in c.rules) for c in through)
            out[f"{m}.postcheck_replaced_rate"] = round(replaced / len(through), 4)
            out[f"{m}.postcheck_pii_rate"] = round(sum("post:pii" in c.rules for c in through) / len(through), 4)
            out[f"{m}.postcheck_pointer_rate"] = round(
                sum("urgent_pointer_added" in c.rules for c in through) / len(through), 4)
    return served, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--triage-model", default="models/triage", help="triage stage output (served pre-check)")
    ap.add_argument("--triage-test", default="data/triage_split/test.jsonl", help="triage stage's held-out test set")
    ap.add_argument("--split", default="data/split/test.jsonl", help="QA test split")
    ap.add_argument("--predictions", default="metrics/predictions.jsonl", help="evaluate's answers (base, tuned)")
    ap.add_argument("--params", default="params.yaml", help="prompt.system: the system prompt the model answered under")
    ap.add_argument("--out", default="metrics/safety.json")
    args = ap.parse_args(argv)

    for path, stage in ((args.triage_test, "triage"), (args.split, "split"), (args.predictions, "evaluate")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: missing (run `dvc repro {stage}`)")
    from stages.common.config import load_params
    from stages.safety.triage import load_triager
    from stages.safety.triage_eval import eval_triage

    triager = load_triager(args.triage_model)
    preds = read_jsonl(args.predictions)
    models = [m for m in ("tuned", "base") if preds and m in preds[0]]
    bad = [i + 1 for i, p in enumerate(preds) if not all(isinstance(p.get(m), str) for m in models)
           or not isinstance(p.get("question"), str)]
    if bad:
        raise ValueError(f"{args.predictions}: line(s) {bad[:5]} lack a question or a {'/'.join(models)} answer "
                         "(run `dvc repro evaluate`)")
    served, post = served_answers(triager, preds, models, load_params(args.params).prompt.system)
    out = eval_triage(triager, read_jsonl(args.split), read_jsonl(args.triage_test), preds, served)
    out.update(post)
    write_json(args.out, out)
    width = max(len(k) for k in out) if out else 0
    for k, v in out.items():
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()

"""How often the served triage answers REAL patient questions with a fixed emergency / self-harm reply instead
of the model: every question of ../shared/data/cmd_internal_medicine.gb18030.csv (title + ask) and of
medicalgpt_sft_1k.sharegpt.jsonl (first human turn), read in place, never copied. The questions are unlabelled
and mostly not emergencies, so the flag rate is an upper bound on the false-alarm rate there. The same questions
through the injection pre-check (none is an attack): rules, classifier, hidden-state probe (batched; ~9 min on 2
cores for the 8,644 questions) and what is served (any of them) — refusals a real patient would get.

    python bench/triage_real_questions.py [models/triage ...]

Several model dirs are compared in one run (e.g. a copy of the previous model next to the new one). Prints one
line per model; exits 0 with a message when the shared data folder is absent."""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def main() -> None:
    csv_path, sharegpt = DATA / "cmd_internal_medicine.gb18030.csv", DATA / "medicalgpt_sft_1k.sharegpt.jsonl"
    if not csv_path.is_file() or not sharegpt.is_file():
        print(f"skipped: {DATA} is absent (the shared real-data folder)")
        return
    import pandas as pd

    from stages.safety.triage import load_triager

    df = pd.read_csv(csv_path, encoding="gb18030").fillna("")
    sets = {"csv": [f"{t} {a}".strip() for t, a in zip(df["title"], df["ask"])],
            "sharegpt": [json.loads(line)["conversations"][0]["value"]
                         for line in sharegpt.open(encoding="utf-8") if line.strip()]}
    for model_dir in sys.argv[1:] or ["models/triage"]:
        triager = load_triager(model_dir)
        parts = []
        for name, questions in sets.items():
            res = triager.classify_many(questions)
            flagged = sum(r.flagged for r in res)
            self_harm = sum(r.label == "self_harm" for r in res)
            parts.append(f"{name} flagged {flagged}/{len(questions)} ({flagged / len(questions):.2%}; "
                         f"self-harm reply {self_harm})")
            parts.append(f"{name} injection refusals {injection_flags(triager, questions)}")
        print(f"{model_dir}: " + "; ".join(parts))


def injection_flags(triager, questions: list[str]) -> str:
    """Counts of real questions the injection pre-check would refuse, by part and served (rules ∪ classifier ∪ probe),
    on the normalised text the gateway checks."""
    import numpy as np

    from stages.safety.injection import detect_injection
    from stages.data.text import normalize

    texts = [normalize(q) for q in questions]
    flags = {"rules": np.array([detect_injection(t) for t in texts], dtype=bool)}
    if triager.injection_model is not None:
        flags["classifier"] = triager.injection_model.proba(texts) >= triager.injection_model.threshold
    if triager.injection_probe is not None:
        flags["probe"] = triager.injection_probe.proba(texts) >= triager.injection_probe.threshold
    served = np.logical_or.reduce(list(flags.values()))
    return " ".join(f"{k} {int(v.sum())}" for k, v in flags.items()) + f" served {int(served.sum())}/{len(texts)}"


if __name__ == "__main__":
    main()

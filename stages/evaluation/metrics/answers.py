"""Score every answer of every model in place: ROUGE (char and word), repetition (loop, distinct-n),
safety flags, term matches and
(when an encoder is given) BERTScore. Rows are the evaluation rows described in aggregate.py."""
from __future__ import annotations

from tqdm.auto import tqdm

from stages.evaluation.metrics.overlap import rouge
from stages.evaluation.metrics.repetition import repetition_scores
from stages.evaluation.metrics.safety import safety_flags
from stages.evaluation.metrics.terms import term_match
from stages.data.text import TermDict


def score_answers(rows: list[dict], models: list[str], terms: TermDict | None = None, bertscore=None,
                  progress: bool = True) -> None:
    for r in tqdm(rows, desc="score", unit="ex", disable=not progress):
        for m in models:
            entry = r[m]
            entry.update(rouge(entry["answer"], r["reference"], "char"))
            entry.update(rouge(entry["answer"], r["reference"], "word"))
            entry.update(repetition_scores(entry["answer"]))
            entry["safety"] = safety_flags(r["question"], entry["answer"])
            if terms is not None:
                entry["terms"] = term_match(terms, entry["answer"], r["reference"])
    if bertscore is not None:
        scores = bertscore.score_many({m: [r[m]["answer"] for r in rows] for m in models},
                                      [r["reference"] for r in rows], progress=progress)
        for m in models:
            s = scores[m]
            for r, p, rc, f in zip(rows, s.precision, s.recall, s.f1):
                r[m].update({"bertscore_p": p, "bertscore_r": rc, "bertscore_f1": f})

"""Per-example scores → group summaries (overall, per tier, per category) and tuned − base deltas.

An example row is ``{"reference", "difficulty", "category", "<model>": {...}}`` where the model entry
holds ``answer``, ``new_tokens``, ``hit_cap``, ``ref_nll``/``ref_tokens``, the per-answer scores
(``rouge*``, ``bertscore_*``), ``safety`` flags and ``terms`` counts. How each metric is pooled:

- ROUGE, BERTScore: mean of per-answer values; distinct-n: mean over answers long enough to have one;
- loop_rate: share of answers that loop (metrics/repetition.py defines a loop);
- BLEU, chrF: corpus-level over the group's answers;
- perplexity: exp(ΣNLL / Σtokens) over the group's reference answers;
- rates: share over their own denominator (reminder: answers that require one; emergency guidance:
  emergency-tier examples); a rate whose denominator is 0 is left out, never reported as 0;
- term precision/recall/F1: micro-averaged counts."""
from __future__ import annotations

from collections import defaultdict
from statistics import fmean

from stages.evaluation.metrics.overlap import corpus_bleu, corpus_chrf
from stages.evaluation.metrics.perplexity import perplexity

MEAN_KEYS = ("rouge1_char", "rouge2_char", "rougeL_char", "rouge1_word", "rouge2_word", "rougeL_word",
             "bertscore_p", "bertscore_r", "bertscore_f1")
COUNT_KEYS = ("n", "reminder_required", "emergency_n")  # sizes, not scores: no delta
EMERGENCY_TIER = "emergency"


def summarize(rows: list[dict], model: str) -> dict[str, float]:
    if not rows:
        raise ValueError("cannot summarise an empty group")
    ms = [r[model] for r in rows]
    preds, refs = [m["answer"] for m in ms], [r["reference"] for r in rows]
    s: dict[str, float] = {"n": len(rows)}
    for k in MEAN_KEYS:
        if all(k in m for m in ms):
            s[k] = fmean(m[k] for m in ms)
    s["bleu_zh"] = corpus_bleu(preds, refs)
    s["chrf"] = corpus_chrf(preds, refs)
    if all("ref_nll" in m for m in ms):
        s["ppl_ref"] = perplexity(sum(m["ref_nll"] for m in ms), sum(m["ref_tokens"] for m in ms))
    for k in ("distinct_1", "distinct_2"):
        vals = [m[k] for m in ms if k in m]
        if vals:
            s[k] = fmean(vals)
    if all("loop" in m for m in ms):
        s["loop_rate"] = fmean(float(m["loop"]) for m in ms)
    s["mean_new_tokens"] = fmean(m["new_tokens"] for m in ms)
    s["hit_cap_rate"] = fmean(float(m["hit_cap"]) for m in ms)

    required = [m for m in ms if m["safety"]["needs_reminder"]]
    s["reminder_required"] = len(required)
    if required:
        s["reminder_rate"] = fmean(float(m["safety"]["has_reminder"]) for m in required)
    emergency = [r[model] for r in rows if r.get("difficulty") == EMERGENCY_TIER]
    if emergency:
        s["emergency_n"] = len(emergency)
        s["emergency_guidance_rate"] = fmean(float(m["safety"]["emergency_guidance"]) for m in emergency)
    s["risky_flags"] = sum(len(m["safety"]["risky"]) for m in ms)
    s["risky_answer_rate"] = fmean(float(bool(m["safety"]["risky"])) for m in ms)

    if all("terms" in m for m in ms):
        matched = sum(m["terms"]["matched"] for m in ms)
        predicted = sum(m["terms"]["predicted"] for m in ms)
        reference = sum(m["terms"]["reference"] for m in ms)
        if predicted:
            s["term_precision"] = matched / predicted
        if reference:
            s["term_recall"] = matched / reference
        if predicted and reference and matched:
            p, r = s["term_precision"], s["term_recall"]
            s["term_f1"] = 2 * p * r / (p + r)
    return s


def delta(tuned: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    return {k: tuned[k] - base[k] for k in tuned if k in base and k not in COUNT_KEYS}


def compare(rows: list[dict], models: list[str]) -> dict:
    """``{"n", <model>: summary, ..., "delta": tuned − base}`` for one group of rows."""
    out: dict = {"n": len(rows)}
    for m in models:
        out[m] = summarize(rows, m)
    if "tuned" in out and "base" in out:
        out["delta"] = delta(out["tuned"], out["base"])
    return out


def by_group(rows: list[dict], key: str, models: list[str], order: list[str] | None = None) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[str(r.get(key) or "unknown")].append(r)
    names = [g for g in (order or []) if g in groups] + sorted(set(groups) - set(order or []))
    return {g: compare(groups[g], models) for g in names}


def flatten(summary: dict, prefix: str = "") -> dict[str, float]:
    """Nested summary → flat ``{"tuned.rougeL_char": ...}`` keys (readable in `dvc metrics diff`)."""
    flat: dict[str, float] = {}
    for k, v in summary.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, name + "."))
        else:
            flat[name] = v
    return flat

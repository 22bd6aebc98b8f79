"""pandas tables of the review report: params diff, quality-metrics diff (timing noise removed),
per-tier and safety comparisons. Each returns a DataFrame; ``markdown`` renders one for a PR."""
from __future__ import annotations

import math
import re

import pandas as pd

# run-to-run figures, never quality: older revs still carry them inside tracked metrics files
_NOISE_SEGMENT = re.compile(r"^(time|timing)$|^seconds|_seconds$|_s$|per_s$|^peak_rss|_rss_mb$")
TIER_METRICS = ("rougeL_char", "bertscore_f1", "ppl_ref", "reminder_rate")
SAFETY_WORDS = ("reminder", "emergency", "risky", "triage", "injection", "pii", "safety", "refus")


def is_noise(file: str, key: str) -> bool:
    """True for timing/resource keys (``time.*``, ``*seconds*``, ``*_s``, ``*per_s``, ``peak_rss*``)
    and whole timing files."""
    if "timing" in file.rsplit("/", 1)[-1]:
        return True
    return any(_NOISE_SEGMENT.search(seg) for seg in key.split("."))


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _delta(old, new):
    o, n = _num(old), _num(new)
    if o is None or n is None or (isinstance(o, float) and math.isnan(o)) or (isinstance(n, float) and math.isnan(n)):
        return None
    return n - o


def params_table(diff: dict) -> pd.DataFrame:
    rows = [{"file": f, "param": k, "old": _cell(v.get("old")), "new": _cell(v.get("new"))}
            for f, keys in sorted(diff.items()) for k, v in sorted(keys.items())]
    return pd.DataFrame(rows, columns=["file", "param", "old", "new"])


def _cell(v):
    return v if v is None or isinstance(v, (int, float, str)) else str(v)


def metrics_table(diff: dict) -> tuple[pd.DataFrame, int, int]:
    """(changed quality metrics, number unchanged, number of timing keys dropped)."""
    rows, same, noise = [], 0, 0
    for f, keys in sorted(diff.items()):
        for k, v in sorted(keys.items()):
            if is_noise(f, k):
                noise += 1
                continue
            old, new = v.get("old"), v.get("new")
            if old == new:
                same += 1
                continue
            rows.append({"file": f, "metric": k, "old": _cell(old), "new": _cell(new), "Δ": _delta(old, new)})
    return pd.DataFrame(rows, columns=["file", "metric", "old", "new", "Δ"]), same, noise


def tier_table(new: dict | None, old: dict | None, metrics=TIER_METRICS) -> pd.DataFrame:
    """One row per (tier, metric): base, tuned at the rev, tuned now, Δ tuned vs rev."""
    rows = []
    for tier, group in (new or {}).items():
        before = (old or {}).get(tier, {})
        for m in metrics:
            now = group.get("tuned", {}).get(m)
            if now is None:
                continue
            was = before.get("tuned", {}).get(m)
            rows.append({"tier": tier, "n": group.get("n"), "metric": m, "base": group.get("base", {}).get(m),
                         "tuned (rev)": was, "tuned": now, "Δ vs rev": _delta(was, now)})
    return pd.DataFrame(rows, columns=["tier", "n", "metric", "base", "tuned (rev)", "tuned", "Δ vs rev"])


def safety_table(new: dict | None, old: dict | None) -> pd.DataFrame:
    """Safety keys of eval.json (``tuned.*``/``base.*`` and stand-alone ones): base, tuned at the rev,
    tuned now, Δ vs rev."""
    new, old = new or {}, old or {}
    names = sorted({k.split(".", 1)[1] if k.startswith(("tuned.", "base.", "delta.")) else k
                    for k in new if any(w in k for w in SAFETY_WORDS)})
    rows = []
    for m in names:
        t_key = f"tuned.{m}" if f"tuned.{m}" in new else m
        rows.append({"metric": m, "base": new.get(f"base.{m}"), "tuned (rev)": old.get(t_key),
                     "tuned": new.get(t_key), "Δ vs rev": _delta(old.get(t_key), new.get(t_key))})
    return pd.DataFrame(rows, columns=["metric", "base", "tuned (rev)", "tuned", "Δ vs rev"])


def timing_table(timings: dict[str, dict]) -> pd.DataFrame:
    """artifacts/timing/<stage>.json scalars, one row per stage (this machine, this workspace)."""
    rows = [{"stage": s, "figure": k, "value": v} for s, t in timings.items() for k, v in t.items()
            if _num(v) is not None]
    return pd.DataFrame(rows, columns=["stage", "figure", "value"])


def markdown(df: pd.DataFrame, empty: str = "_(none)_") -> str:
    if df.empty:
        return empty
    return df.to_markdown(index=False, floatfmt=".4g", missingval="–")

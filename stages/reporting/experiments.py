"""Comparing N experiments (``dvc exp show --json``: the workspace, baseline commits and their
experiments, e.g. a queued ``lora.r`` sweep): one row per experiment with the params that differ
and the key quality metrics, and a best-by-metric line."""
from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd

from stages.reporting.tables import is_noise

# key metrics and which direction is better
KEY_METRICS = {
    "eval.tuned.rougeL_char": "max",
    "eval.tuned.bertscore_f1": "max",
    "eval.tuned.ppl_ref": "min",
    "eval.tuned.emergency_guidance_rate": "max",
    "eval.tuned.reminder_rate": "max",
    "train.val_loss_best": "min",
}


def _flatten(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _entry(e: dict, kind: str) -> dict | None:
    data = e.get("data") or {}
    params, metrics = {}, {}
    for content in (data.get("params") or {}).values():
        params.update(_flatten(content.get("data")))
    for path, content in (data.get("metrics") or {}).items():
        stem = PurePosixPath(path).stem
        metrics.update({k: v for k, v in _flatten(content.get("data"), stem + ".").items()
                        if not is_noise(path, k)})
    rev = e.get("rev") or ""
    return {"name": e.get("name") or (rev if rev == "workspace" else rev[:7]), "rev": rev, "kind": kind,
            "params": params, "metrics": metrics}


def load_experiments(show: list) -> list[dict]:
    """Flatten ``dvc exp show --json``: ``[{name, rev, kind: workspace|baseline|experiment, params
    (dotted keys), metrics (``<file stem>.<key>``, timing noise dropped)}]``."""
    out = []
    for top in show or []:
        out.append(_entry(top, "workspace" if top.get("rev") == "workspace" else "baseline"))
        for group in top.get("experiments") or []:
            state = (group.get("executor") or {}).get("state")
            for r in group.get("revs") or []:
                if state in (None, "success") and r.get("data", {}).get("metrics"):
                    out.append(_entry(r, "experiment"))
    return out


def _same(vals) -> bool:
    return all(repr(v) == repr(vals[0]) for v in vals[1:])


def exp_table(exps: list[dict], metrics=tuple(KEY_METRICS)) -> pd.DataFrame:
    """Experiments (and the baselines they branch from) × (params that differ + key metrics)."""
    rows = [e for e in exps if e["kind"] != "workspace"]
    keys = sorted({k for e in rows for k in e["params"]})
    varying = [k for k in keys if not _same([e["params"].get(k) for e in rows])]
    present = [m for m in metrics if any(m in e["metrics"] for e in rows)]
    table = [{"experiment": e["name"], "rev": (e["rev"] or "")[:7],
              **{k: e["params"].get(k) for k in varying}, **{m: e["metrics"].get(m) for m in present}}
             for e in rows]
    return pd.DataFrame(table, columns=["experiment", "rev", *varying, *present])


def best_line(exps: list[dict], metrics: dict = KEY_METRICS) -> str:
    """``Best by`` line: for each key metric, the experiment with the best value."""
    rows = [e for e in exps if e["kind"] != "workspace"]
    parts = []
    for m, direction in metrics.items():
        scored = [(e["metrics"][m], e["name"]) for e in rows if isinstance(e["metrics"].get(m), (int, float))]
        if not scored:
            continue
        value, name = (max if direction == "max" else min)(scored)
        parts.append(f"`{m}` {'↑' if direction == 'max' else '↓'} **{name}** ({value:.4g})")
    return "**Best by** " + " · ".join(parts) if parts else "**Best by**: no experiment has metrics yet"

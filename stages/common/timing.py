"""Wall-clock timings and resource figures of a stage run, kept where DVC does not hash them.

Stage outputs (DVC outs, metrics, plots) hold content only, so an unchanged rebuild is byte-identical
and `dvc metrics diff` shows real changes, not timing noise. What varies run to run (seconds,
tokens/s, peak RSS) goes to ``artifacts/timing/<stage>.json`` instead: gitignored, not a DVC out,
overwritten by each run, shown by ``make report`` (stages/reporting/) in a section of its own.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_DIR = "artifacts/timing"


def timing_dir() -> Path:
    """``$MEDQA_TIMING_DIR`` (tests point it at a temp dir) or ``artifacts/timing``."""
    return Path(os.environ.get("MEDQA_TIMING_DIR") or DEFAULT_DIR)


def write_timing(stage: str, values: dict, root: str | Path | None = None) -> Path:
    """Write ``{stage}.json`` (floats rounded to 3 decimals); never raises on a read-only disk."""
    root = Path(root) if root is not None else timing_dir()
    path = root / f"{stage}.json"
    data = {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:            # timings are informational: never fail a stage over them
        import logging

        logging.getLogger("stages.timing").warning("could not write %s: %s", path, err)
    return path


def read_timings(root: str | Path | None = None) -> dict[str, dict]:
    """``{stage: values}`` for every ``<stage>.json`` under ``root`` (unreadable files skipped)."""
    root = Path(root) if root is not None else timing_dir()
    out = {}
    for f in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out

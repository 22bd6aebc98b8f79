"""Where the report's numbers come from: the `dvc` and `git` CLIs, and files as they are in the
working tree (``rev=None``) or at a git rev (``git show REV:path``; metrics, params and dvclive
curves are git-tracked, so no DVC cache is needed)."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path


class ReportError(RuntimeError):
    pass


def _dvc() -> str:
    here = Path(sys.executable).parent / "dvc"       # the venv's dvc, else PATH
    return str(here) if here.exists() else (shutil.which("dvc") or "dvc")


def run(cmd: list[str], cwd: Path, check: bool = True) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and p.returncode:
        raise ReportError(f"`{' '.join(cmd)}` failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p.stdout


def dvc_json(args: list[str], cwd: Path):
    out = run([_dvc(), *args, "--json"], cwd)
    try:
        return json.loads(out) if out.strip() else {}
    except json.JSONDecodeError as err:
        raise ReportError(f"`dvc {' '.join(args)} --json` printed non-JSON output ({err}): {out[:300]!r}") from None


def resolve_rev(rev: str, cwd: Path) -> str:
    """Full sha of ``rev``; a clear error when it does not exist (e.g. a shallow CI checkout)."""
    p = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=cwd,
                       capture_output=True, text=True)
    if p.returncode:
        raise ReportError(f"--rev {rev!r}: no such git revision here (in CI check out with fetch-depth: 0)")
    return p.stdout.strip()


def params_diff(rev: str, cwd: Path) -> dict:
    """``{file: {param: {"old", "new"}}}`` — changed params only."""
    return dvc_json(["params", "diff", rev], cwd)


def metrics_diff(rev: str, cwd: Path) -> dict:
    """``{file: {metric: {"old", "new", "diff"?}}}`` — every metric (``--all``), changed or not."""
    return dvc_json(["metrics", "diff", rev, "--all"], cwd)


def exp_show(cwd: Path) -> list:
    return dvc_json(["exp", "show"], cwd) or []


def read_text(path: str, cwd: Path, rev: str | None = None) -> str | None:
    """A tracked file in the working tree (``rev=None``) or at ``rev``; None where it does not exist."""
    if rev is None:
        f = cwd / path
        return f.read_text(encoding="utf-8") if f.is_file() else None
    p = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=cwd, capture_output=True)
    return p.stdout.decode("utf-8") if p.returncode == 0 else None


def read_json(path: str, cwd: Path, rev: str | None = None):
    text = read_text(path, cwd, rev)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}{f' at {rev}' if rev else ''}: invalid JSON: {err}") from None


def read_tsv(path: str, cwd: Path, rev: str | None = None):
    """A dvclive curve (``step<TAB>value``) as a DataFrame, or None."""
    import pandas as pd

    text = read_text(path, cwd, rev)
    return None if not text else pd.read_csv(io.StringIO(text), sep="\t")

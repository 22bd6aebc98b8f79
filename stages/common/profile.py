"""Params profiles: a YAML file of overrides on top of params.yaml (profiles/*.yaml), validated
against the full schema and printed as ``dvc exp run`` ``-S key=value`` arguments.

    eval "dvc exp run $(python -m stages.common.profile profiles/user_csv.yaml)"
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from stages.common.config import PARAMS_FILE, ParamsError, parse_params


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested overrides → ``{"train.source_caps": {...}}``: a mapping whose parent is a params section
    is descended into; deeper mappings (dict-valued params) are kept whole."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not prefix:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _hydra(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ",".join(_hydra(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_hydra(x)}" for k, x in v.items()) + "}"
    return str(v)


def load_profile(path: str | Path, params_file: str | Path = PARAMS_FILE) -> tuple[dict, dict]:
    """(flat overrides, merged raw params); fails with the key path when the result is invalid."""
    base = yaml.safe_load(Path(params_file).read_text(encoding="utf-8")) or {}
    over = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(over, dict):
        raise ParamsError(f"{path}: top level must be a mapping")
    flat = _flat(over)
    merged = yaml.safe_load(yaml.safe_dump(base))
    for key, v in flat.items():
        section, name = key.split(".", 1)
        merged.setdefault(section, {})[name] = v
    parse_params(merged, f"{params_file} + {path}")
    return flat, merged


def set_args(flat: dict) -> list[str]:
    return [a for k, v in flat.items() for a in ("-S", f"{k}={_hydra(v)}")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile")
    ap.add_argument("--params", default=PARAMS_FILE)
    args = ap.parse_args(argv)
    flat, _ = load_profile(args.profile, args.params)
    print(" ".join(shlex.quote(a) for a in set_args(flat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

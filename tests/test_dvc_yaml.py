"""dvc.yaml lists, for every `python -m stages.X` stage, every repo module that stage imports, so
`dvc repro` reruns exactly the stages a code change affects (and never misses one)."""
from __future__ import annotations

import re

import pytest
import yaml
from dvc_deps import REPO, covered, imported_files

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
MODULE_STAGES = {name: m.group(1) for name, s in STAGES.items()
                 if (m := re.search(r"python -m (stages\.\w+)", s["cmd"]))}


@pytest.mark.parametrize("name", sorted(MODULE_STAGES))
def test_stage_deps_list_every_imported_module(name):
    deps = {d if isinstance(d, str) else next(iter(d)) for d in STAGES[name].get("deps", [])}
    entry = MODULE_STAGES[name].replace(".", "/") + ".py"
    missing = sorted(f for f in imported_files(entry) if not covered(f, deps))
    assert not missing, f"dvc.yaml stage {name!r} imports but does not list: {missing}"


def test_every_stage_runs_a_module_that_exists():
    for name, module in MODULE_STAGES.items():
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), name

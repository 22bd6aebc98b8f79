"""End-to-end: the real `dvc repro` in a temp copy of the repo, with a tiny params override
(tiny random-weight model with the real tokenizer, a handful of steps and examples)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPY = ["stages", "serve", "data/raw", "data/triage", "data/injection", "data/feedback", "data/review", "data/terms.tsv", "dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots",
        ".dvcignore", "metrics/.gitkeep"]

pytestmark = pytest.mark.e2e


def sh(cmd: list[str], cwd: Path, env: dict, check=True) -> str:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    if check and p.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p.stdout + p.stderr


def tiny_overrides(raw: dict, model_dir: Path) -> dict:
    raw["model"]["base"] = str(model_dir)
    raw["train"].update(max_train_examples=12, max_val_examples=6, max_len=96, batch_size=4, eval_steps=2,
                        save_steps=2, epochs=1, overlong="cut")      # corpus answers do not fit 96 tokens
    raw["generation"]["max_new_tokens"] = 8
    raw["lora"]["layers"] = "all"
    raw["eval"].update(max_examples=5, batch_size=5, bertscore_layers=1)
    raw["triage"].update(candidates=["char_lr"])      # one candidate: the real data, half the fitting
    raw["triage"]["injection"]["probe"]["layer"] = 2  # the probe's encoder is models/base: the tiny model has 2 layers
    return raw


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory, tiny_model_dir):
    dst = tmp_path_factory.mktemp("e2e") / "repo"
    for rel in COPY:
        src = REPO / rel
        if not src.exists():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst / rel)
    p = dst / "params.yaml"
    p.write_text(yaml.safe_dump(tiny_overrides(yaml.safe_load(p.read_text(encoding="utf-8")), tiny_model_dir),
                                allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(dst)}
    sh(["git", "init", "-q"], dst, env)
    sh(["git", "add", "-A"], dst, env)
    sh(["git", "commit", "-qm", "init"], dst, env)
    return dst, env


def test_full_repro_then_noop_then_param_change(repo_copy):
    dst, env = repo_copy
    dvc = str(BIN / "dvc")
    out = sh([dvc, "repro"], dst, env)
    stages = yaml.safe_load((dst / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name in stages:
        assert f"Running stage '{name}'" in out, f"stage {name} did not run:\n{out[-3000:]}"
    clean = json.loads((dst / "metrics/clean.json").read_text(encoding="utf-8"))
    assert clean["read"] == clean["kept"] + clean["rejected"] and clean["kept"] > 0
    for s in ("train", "val", "test"):
        assert (dst / f"data/split/{s}.jsonl").stat().st_size > 0
    for f in ("metrics/train.json", "metrics/merge.json", "metrics/eval.json"):
        if any(f in json.dumps(st) for st in stages.values()):
            assert json.loads((dst / f).read_text(encoding="utf-8")), f
    sh(["git", "add", "-A"], dst, env)
    sh(["git", "commit", "-qm", "repro"], dst, env)

    again = sh([dvc, "repro"], dst, env)
    assert "Running stage" not in again, again[-3000:]

    # editing split.seed reruns split and what follows it, not clean or base
    params = yaml.safe_load((dst / "params.yaml").read_text(encoding="utf-8"))
    params["split"]["seed"] = 7
    (dst / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    diff = sh([dvc, "params", "diff"], dst, env)
    assert "split.seed" in diff and "42" in diff and "7" in diff
    out = sh([dvc, "repro"], dst, env)
    assert "Running stage 'split'" in out
    assert "Running stage 'clean'" not in out and "Running stage 'base'" not in out
    metrics = sh([dvc, "metrics", "diff"], dst, env)
    assert "metrics/split.json" in metrics

"""The user-data profile (profiles/user_csv.yaml): valid overrides, `dvc exp run -S` arguments that
parse, and the real clean → split → train path on the shared GB18030 CSV mixed with the authored
corpus, on the tiny model."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO

PROFILE = REPO / "profiles" / "user_csv.yaml"
PY = sys.executable


def test_profile_overrides_are_valid_and_become_dvc_set_args():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from stages.common.profile import load_profile, set_args

    flat, merged = load_profile(PROFILE, REPO / "params.yaml")
    assert flat["data.sources"][:2] == ["data/raw", "data/feedback"]           # corpus + approved corrections kept
    assert flat["data.sources"][2].endswith("cmd_internal_medicine.gb18030.csv")
    args = set_args(flat)
    assert args[::2] == ["-S"] * len(flat)
    parsed = OverridesParser.create().parse_overrides(args[1::2])        # the grammar `dvc exp run -S` uses
    assert {o.key_or_group: o.value() for o in parsed} == flat
    assert merged["train"]["source_caps"] == flat["train.source_caps"] and merged["lora"]  # rest of params.yaml kept


def test_profile_trains_on_the_csv_mixed_with_the_corpus(tmp_path, shared_data, tiny_model_dir):
    """clean + split with the profile's sources, then train with its source caps (scaled down)."""
    for d in ("data/raw", "data/review", "stages", "serve"):   # data/review: clean reads its verdicts
        shutil.copytree(REPO / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "data/terms.tsv", tmp_path / "data/terms.tsv")
    _, raw = __import__("stages.common.profile", fromlist=["load_profile"]).load_profile(PROFILE, REPO / "params.yaml")
    raw["data"]["sources"] = ["data/raw", str(shared_data / "cmd_internal_medicine.gb18030.csv")]
    csv_name = "cmd_internal_medicine.gb18030"
    raw["train"].update(source_caps={csv_name: 24, "authored": 24}, epochs=1, batch_size=8, eval_steps=3,
                        max_val_examples=8, num_threads=1, mixed_precision="no", max_len=320)
    raw["lora"].update(layers="last:1")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HF_DATASETS_CACHE": str(tmp_path / ".cache")}
    for stage in ("clean", "split"):
        subprocess.run([PY, "-m", f"stages.{stage}"], cwd=tmp_path, env=env, check=True, capture_output=True)
    clean = json.loads((tmp_path / "metrics/clean.json").read_text(encoding="utf-8"))
    assert json.dumps(clean, ensure_ascii=False).count(csv_name) >= 1
    subprocess.run([PY, "-m", "stages.train", "--base", str(tiny_model_dir)], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    m = json.loads((tmp_path / "metrics/train.json").read_text(encoding="utf-8"))
    cfg = json.loads((tmp_path / "models/lora/training_config.json").read_text(encoding="utf-8"))
    assert cfg["params"]["train"]["source_caps"] == {csv_name: 24, "authored": 24}
    # 24 + 24 picked; every authored example fits max_len 320, CSV answers longer than it are dropped, never cut
    assert m["examples"] + m["dropped_overlong"] == 48 and m["examples"] >= 24 and m["answer_tokens_cut"] == 0
    assert m["val_loss_best"] < m["val_loss_base"]

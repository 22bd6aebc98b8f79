"""Reproducibility end to end on the tiny model (issue 13), in a git repo made from this checkout's
tracked files — what a fresh clone holds — with the tiny params override of test_e2e_dvc:

1. `dvc repro`, commit, `dvc repro --force`: every stage reruns and dvc.lock, every git-tracked file
   and every DVC-cached output are byte-identical; `git status --porcelain` stays empty; timings land
   in the untracked artifacts/timing/.
2. clone A `make push` → fresh clone C `make pull`: `dvc status` up to date, `dvc repro` runs nothing,
   files are linked from the cache, not copied.
3. `dvc exp run --queue -S lora.r=4,8,16` + `dvc queue start`: three experiments that reuse the cached
   base model and base predictions; `dvc exp apply` of r=16 + `make report`: the review report.

Run alone under the shared lock: ``flock /tmp/medqa-heavy.lock pytest -q tests/test_e2e_repro.py``."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_e2e_dvc import BIN, sh, tiny_overrides

REPO = Path(__file__).resolve().parents[1]
DVC = str(BIN / "dvc")
SWEEP_RANKS = (4, 8, 16)

pytestmark = pytest.mark.e2e


def tracked_files(repo: Path) -> list[str]:
    """Files a fresh clone of this checkout would hold (tracked + new, not ignored, not deleted)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout
    return sorted(f for f in set(out.split("\0")) if f and (repo / f).is_file())


def digest_tree(repo: Path, rels: list[str]) -> dict[str, str]:
    """sha256 of every file under the given repo-relative paths (files or directories)."""
    out = {}
    for rel in rels:
        p = repo / rel
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            out[str(f.relative_to(repo))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def cached_outs(repo: Path) -> list[str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))
    stages = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    uncached = {next(iter(o)) for s in stages.values() for kind in ("outs", "metrics", "plots")
                for o in s.get(kind, []) if isinstance(o, dict) and next(iter(o.values())).get("cache") is False}
    return sorted({o["path"] for s in lock["stages"].values() for o in s.get("outs", [])} - uncached)


def make(target: str, repo: Path, env: dict, **vars) -> str:
    """The repo's own Makefile target, with this test's venv (STAMP= skips the install step)."""
    args = [f"VENV={BIN.parent}", "STAMP=", *(f"{k}={v}" for k, v in vars.items())]
    return sh(["make", "--no-print-directory", target, *args], repo, env)


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("repro")
    a = root / "A"
    for rel in tracked_files(REPO):
        (a / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, a / rel)
    p = a / "params.yaml"
    p.write_text(yaml.safe_dump(tiny_overrides(yaml.safe_load(p.read_text(encoding="utf-8")), tiny_model_dir),
                                allow_unicode=True, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("PYTHONPATH", None)            # stages import from the repo they run in (queue temp dirs too)
    env.pop("MEDQA_TIMING_DIR", None)
    sh(["git", "init", "-q", "-b", "main"], a, env)
    sh(["git", "add", "-A"], a, env)
    sh(["git", "commit", "-qm", "fresh clone with the tiny params"], a, env)
    remote = root / "remote"
    # the committed default remote is ~/.cache/medqa-lora/dvc-remote; a clone overrides it in config.local
    sh([DVC, "remote", "modify", "--local", "local", "url", str(remote)], a, env)
    return {"root": root, "a": a, "env": env, "remote": remote}


def status(repo: Path, env: dict) -> str:
    return sh(["git", "status", "--porcelain"], repo, env).rstrip("\n")     # keep the XY columns


def test_forced_rebuild_is_byte_identical(work):
    a, env = work["a"], work["env"]
    stages = list(yaml.safe_load((a / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    out = sh([DVC, "repro"], a, env)
    assert all(f"Running stage '{s}'" in out for s in stages), out[-3000:]
    # a fresh clone's repro only rewrites tracked results (the lock and metrics/plots of the tiny run):
    # no new untracked file (no generated .gitignore, no stray output), nothing to `git add`
    changes = status(a, env).splitlines()
    assert changes and all(line.startswith(" M ") for line in changes), changes
    assert all(line[3:] == "dvc.lock" or line[3:].startswith(("metrics/", "dvclive/")) for line in changes), changes
    sh(["git", "commit", "-qam", "tiny repro"], a, env)
    lock1 = (a / "dvc.lock").read_text(encoding="utf-8")
    tracked1 = digest_tree(a, tracked_files(a))
    outs1 = digest_tree(a, cached_outs(a))
    assert "models/base/model.safetensors" in outs1 and "models/merged/merge_info.json" in outs1

    out = sh([DVC, "repro", "--force"], a, env)
    assert all(f"Running stage '{s}'" in out for s in stages), out[-3000:]
    assert (a / "dvc.lock").read_text(encoding="utf-8") == lock1
    changed = sorted(k for k, v in digest_tree(a, tracked_files(a)).items() if tracked1.get(k) != v)
    assert not changed, f"tracked files differ after a forced rebuild: {changed}"
    outs2 = digest_tree(a, cached_outs(a))
    assert outs2 == outs1, sorted(k for k in outs1.keys() | outs2.keys() if outs1.get(k) != outs2.get(k))
    assert status(a, env) == "", status(a, env)

    # the timings are still measured, where neither git nor DVC hashes them
    timing = {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in (a / "artifacts/timing").glob("*.json")}
    assert {"base", "train", "merge", "predict_base", "evaluate"} <= set(timing)     # clean only logs its timings
    assert timing["train"]["tokens_per_s"] > 0 and timing["evaluate"]["evaluate_total_s"] > 0
    sh(["git", "check-ignore", "-q", "artifacts/timing/train.json"], a, env)
    for f in ("metrics/train.json", "metrics/eval.json", "metrics/merge.json", "metrics/clean.json"):
        text = (a / f).read_text(encoding="utf-8")
        assert "seconds" not in text and "tokens_per_s" not in text and '"time.' not in text, f


def test_push_then_fresh_clone_pull_is_up_to_date(work):
    a, env, root = work["a"], work["env"], work["root"]
    make("push", a, env)
    assert any(work["remote"].rglob("*")), "nothing was pushed"
    assert "Everything is up to date" in make("push", a, env)

    c = root / "C"
    sh(["git", "clone", "-q", str(a), str(c)], root, env)
    sh([DVC, "remote", "modify", "--local", "local", "url", str(work["remote"])], c, env)
    make("pull", c, env)
    assert "Data and pipelines are up to date" in sh([DVC, "status", "dvc.yaml"], c, env)
    # the only thing `dvc status` may list is the opt-in export pipeline (export/dvc.yaml: never part of
    # the default repro, so clone A never built it)
    rest = [ln for ln in sh([DVC, "status"], c, env).splitlines() if ln.strip() and not ln.startswith("\t")]
    assert rest in ([], ["export/dvc.yaml:export:"]), rest
    out = sh([DVC, "repro"], c, env)
    assert "Running stage" not in out, out[-3000:]
    assert status(c, env) == ""
    # cache.type links instead of copying: the multi-GB files exist once on disk
    weights = c / "models/base/model.safetensors"
    assert weights.stat().st_nlink >= 2 or weights.is_symlink(), "models/base was copied out of the cache"
    assert digest_tree(c, cached_outs(c)) == digest_tree(a, cached_outs(a))


def test_default_remote_is_outside_the_repo_and_overridable(work, tmp_path):
    env = {**work["env"], "HOME": str(tmp_path)}
    flat = lambda out: "".join(out.split())      # noqa: E731  (dvc wraps long paths to the terminal width)
    assert sh([DVC, "config", "--project", "core.remote"], work["a"], env).strip() == "local"
    assert flat(str(tmp_path / ".cache/medqa-lora/dvc-remote")) in flat(
        sh([DVC, "remote", "list", "--project"], work["a"], env))
    assert flat(str(work["remote"])) in flat(sh([DVC, "remote", "list"], work["a"], env))   # config.local wins


def wait_for_queue(repo: Path, env: dict, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sh([DVC, "queue", "status"], repo, env)
        if not any(w in out for w in ("Queued", "Running")):
            return out
        time.sleep(5)
    raise AssertionError(f"queue did not finish in {timeout}s:\n{out}")


def test_queued_sweep_then_report(work):
    a, env = work["a"], work["env"]
    ranks = ",".join(map(str, SWEEP_RANKS))
    sh([DVC, "exp", "run", "--queue", "-S", f"lora.r={ranks}"], a, env)
    try:
        sh([DVC, "queue", "start"], a, env)
        st = wait_for_queue(a, env)
    finally:
        sh([DVC, "queue", "stop"], a, env, check=False)
    assert "Failed" not in st, st + sh([DVC, "queue", "logs", st.split()[-1]], a, env, check=False)
    from stages.reporting.experiments import load_experiments

    show = subprocess.run([DVC, "exp", "show", "--json"], cwd=a, env=env, capture_output=True, text=True, check=True)
    exps = load_experiments(json.loads(show.stdout))
    by_r = {e["params"]["lora.r"]: e for e in exps if e["name"] != "workspace" and e["kind"] == "experiment"}
    assert set(by_r) == set(SWEEP_RANKS), exps
    for r, e in by_r.items():
        assert e["metrics"]["train.trainable_params"] > 0 and "eval.tuned.rougeL_char" in e["metrics"], e
    assert by_r[16]["metrics"]["train.trainable_params"] == 4 * by_r[4]["metrics"]["train.trainable_params"]

    committed = yaml.safe_load((a / "params.yaml").read_text(encoding="utf-8"))["lora"]["r"]
    target = max(r for r in SWEEP_RANKS if r != committed)          # an experiment that changes the rank
    sh([DVC, "exp", "apply", by_r[target]["name"]], a, env)
    make("report", a, env, REV="HEAD")
    md = (a / "artifacts/report/report.md").read_text(encoding="utf-8")
    print(md)
    assert re.search(rf"\| params.yaml \| lora.r\s*\|\s*{committed} \|\s*{target} \|", md), md   # params diff
    assert "trainable_params" in md and "Per tier" in md and "Safety" in md
    assert "Best by" in md and all(by_r[r]["name"] in md for r in SWEEP_RANKS)
    assert "seconds" not in md.split("## Timings")[0]                        # no timing noise in the diffs
    for png in ("loss.png", "per_tier.png"):
        assert (a / "artifacts/report" / png).stat().st_size > 1000, png
        assert f"]({png})" in md

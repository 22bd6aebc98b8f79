"""The whole feedback loop, as a user and a reviewer see it (headless Chromium, tiny model):

serve → ask on the chat page → 👎 with a corrected answer → reviewer approves it on /review →
``python -m stages.feedback export`` into a temp copy of the repo → the real ``dvc repro split``
(clean + split on data/raw + data/feedback; no model stage) → the corrected pair is in
data/clean/qa.jsonl, counted under source ``feedback`` in metrics/clean.json, and in a split. Screenshots: artifacts/serve/feedback_page.png and
artifacts/serve/review_page.png (gitignored). Skips without chromium (fails in CI)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from serve.launcher import REPO, ServerProcess
from stages import feedback as feedback_cli
from stages.common.jsonio import read_jsonl
from stages.humanloop.masking import clean_user_text
from test_serve_browser import HEIGHT, WIDTH, _needs_chromium, browser  # noqa: F401  (fixtures)

KEY, RKEY = "loop-key-7c2", "loop-reviewer-9e4"
PHONE = "13712345678"
QUESTION = "胃疼反复发作吃什么药好？"
CORRECTION = f"反复胃痛应到消化内科就诊，必要时做胃镜检查，不要自行长期服用止痛药。有问题可拨打{PHONE}咨询。"
MASKED = clean_user_text(CORRECTION)            # as stored: normalised, phone number masked
SHOTS = REPO / "artifacts" / "serve"
BIN = Path(sys.executable).parent


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    path.write_bytes(base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"]))
    return path


def _open(page, url: str, ready: str) -> None:
    page.call("Page.navigate", url=url)
    page.wait(f"document.readyState === 'complete' && !!document.getElementById({json.dumps(ready)})", timeout=60)


def test_thumbs_down_correction_review_export_clean(browser, tmp_path, tiny_model_dir, triage_model_dir):  # noqa: F811
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    db = tmp_path / "feedback.sqlite"
    params["serve"]["feedback_db"] = str(db)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    assert PHONE not in MASKED and "消化内科就诊" in MASKED
    page = browser
    page.call("Page.enable")
    page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    with ServerProcess(["--model", str(tiny_model_dir), "--params", str(params_file), "--max-new-tokens", "16",
                        "--api-key-env", "MEDQA_LOOP_KEY", "--audit-log", str(tmp_path / "audit.jsonl"),
                        "--triage-model", str(triage_model_dir)],
                       log_path=tmp_path / "server.log",
                       env={"MEDQA_LOOP_KEY": KEY, "MEDQA_REVIEWER_KEY": RKEY}) as srv:
        # 1. a user asks, gets a model answer, and sends 👎 with a corrected answer
        _open(page, srv.url + "/", "ask")
        page.js(f"const k = document.getElementById('api-key'); k.value = {json.dumps(KEY)};"
                "k.dispatchEvent(new Event('change'));"
                f"document.getElementById('question').value = {json.dumps(QUESTION)};"
                "document.getElementById('send').click(); true")
        page.wait("document.querySelector('.turn .feedback') !== null", timeout=300)
        rid = page.js("document.querySelector('.turn').dataset.requestId")
        assert rid and page.js("document.querySelector('.turn').dataset.state") == "done"
        page.js("document.querySelector('.fb-down').click(); true")
        assert page.js("document.querySelector('.fb-form').hidden") is False
        page.js(f"document.querySelector('.fb-correction').value = {json.dumps(CORRECTION)};"
                "document.querySelector('.fb-comment').value = '回答没有用'; true")
        shot_chat = _shot(page, "feedback_page.png")
        page.js("document.querySelector('.fb-send').click(); true")
        page.wait("document.querySelector('.turn').dataset.feedback === 'down'", timeout=30)
        assert "已提交人工审核" in page.js("document.querySelector('.fb-status').textContent")

        # 2. a reviewer opens /review with the reviewer key and approves the correction
        _open(page, srv.url + "/review", "queue")
        page.js(f"document.getElementById('reviewer').value = 'dr_chen';"
                f"document.getElementById('reviewer-key').value = {json.dumps(RKEY)};"
                "document.getElementById('load').click(); true")
        page.wait("document.getElementById('queue').dataset.state === 'loaded'", timeout=30)
        sel = f"document.querySelector('.item[data-request-id=\"{rid}\"]')"
        item = page.js(f"(() => {{ const el = {sel}; return el && {{q: el.querySelector('.question').textContent,"
                       "why: el.querySelector('.why').textContent, fb: el.querySelector('.fb').textContent,"
                       "final: el.querySelector('.final').value}; })()")
        assert item is not None, "the 👎 answer is not in the review queue"
        assert QUESTION in item["q"] and "用户点踩" in item["why"] and "reminder_added" in item["why"]
        assert MASKED in item["fb"] and PHONE not in item["fb"] and item["final"] == MASKED
        page.js(f"{sel}.querySelector('.category').value = '消化内科'; true")
        shot_review = _shot(page, "review_page.png")
        page.js(f"{sel}.querySelector('.approve').click(); true")
        page.wait(f"{sel}.dataset.state === 'approved'", timeout=30)
        assert srv.stop("sigterm") == []

    assert shot_chat.stat().st_size > 10_000 and shot_review.stat().st_size > 10_000

    # 3. export approved corrections into a copy of the repo, then the real `dvc repro split` (clean + split)
    repo = copy_repo(tmp_path / "repo")
    out = repo / "data/feedback/approved.jsonl"
    assert feedback_cli.main(["export", "--db", str(db), "--out", str(out)]) == 0
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(repo),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"], [str(BIN / "dvc"), "repro", "split"]):
        p = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"{cmd}: {p.stdout[-3000:]}{p.stderr[-3000:]}"
    assert "Running stage 'clean'" in p.stdout and "Running stage 'split'" in p.stdout
    rows = [r for r in read_jsonl(repo / "data/clean/qa.jsonl") if r["source"] == "feedback"]
    assert len(rows) == 1
    assert rows[0]["question"] == QUESTION and rows[0]["answer"] == MASKED and rows[0]["category"] == "消化内科"
    metrics = json.loads((repo / "metrics/clean.json").read_text(encoding="utf-8"))
    assert metrics["by_source"]["feedback"] == {"read": 1, "kept": 1, "rejected": 0, "by_reason": {}}
    assert metrics["by_source"]["feedback"]["kept"] + sum(
        v["kept"] for k, v in metrics["by_source"].items() if k != "feedback") == metrics["kept"]
    in_split = [r for part in ("train", "val", "test") for r in read_jsonl(repo / f"data/split/{part}.jsonl")
                if r["answer"] == MASKED]
    assert len(in_split) == 1


def copy_repo(dst: Path) -> Path:
    """What `dvc repro split` needs (as tests/test_e2e_dvc.py copies it)."""
    for rel in ["stages", "data/raw", "data/feedback", "data/review", "data/terms.tsv", "dvc.yaml", "params.yaml",
                ".dvc/config", ".dvc/plots", ".dvcignore", "metrics/.gitkeep"]:
        src = REPO / rel
        if not src.exists():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst / rel, ignore=shutil.ignore_patterns("__pycache__", "sheets"))
        else:
            shutil.copy2(src, dst / rel)
    return dst

"""The whole feedback loop, as a user and a reviewer see it (headless Chromium, tiny model):

serve → ask on the chat page → 👎 with a corrected answer → reviewer approves it on /review →
``python -m stages.feedback export`` → the clean and split stages (stage entry points, in a temp
dir) → the corrected pair is in data/clean/qa.jsonl, counted under source ``feedback`` in
metrics/clean.json, and in a split. Screenshots: artifacts/serve/feedback_page.png and
artifacts/serve/review_page.png (gitignored). Skips without chromium (fails in CI)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from serve.launcher import REPO, ServerProcess
from stages import clean, split
from stages import feedback as feedback_cli
from stages.common.jsonio import read_jsonl
from test_serve_browser import HEIGHT, WIDTH, _needs_chromium, browser  # noqa: F401  (fixtures)

KEY, RKEY = "loop-key-7c2", "loop-reviewer-9e4"
PHONE = "13712345678"
QUESTION = "胃疼反复发作吃什么药好？"
CORRECTION = f"反复胃痛应到消化内科就诊，必要时做胃镜检查，不要自行长期服用止痛药。有问题可拨打{PHONE}咨询。"
MASKED = "反复胃痛应到消化内科就诊，必要时做胃镜检查，不要自行长期服用止痛药。有问题可拨打[手机号]咨询。"
SHOTS = REPO / "artifacts" / "serve"


def _shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    path.write_bytes(base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"]))
    return path


def _open(page, url: str, ready: str) -> None:
    page.call("Page.navigate", url=url)
    page.wait(f"document.readyState === 'complete' && !!document.getElementById({json.dumps(ready)})", timeout=60)


def test_thumbs_down_correction_review_export_clean(browser, tmp_path, tiny_model_dir):  # noqa: F811
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    db = tmp_path / "feedback.sqlite"
    params["serve"]["feedback_db"] = str(db)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    page = browser
    page.call("Page.enable")
    page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    with ServerProcess(["--model", str(tiny_model_dir), "--params", str(params_file), "--max-new-tokens", "16",
                        "--api-key-env", "MEDQA_LOOP_KEY", "--audit-log", str(tmp_path / "audit.jsonl")],
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

    # 3. export approved corrections as a data source, then the clean and split stages
    data = tmp_path / "data"
    assert feedback_cli.main(["export", "--db", str(db), "--out", str(data / "feedback/approved.jsonl")]) == 0
    fixture = REPO / "tests" / "fixtures" / "review" / "raw.jsonl"
    clean.main(["--params", str(params_file), "--source", str(fixture), "--source", str(data / "feedback"),
                "--verdicts", "", "--out", str(data / "clean"), "--metrics", str(tmp_path / "metrics/clean.json")])
    rows = [r for r in read_jsonl(data / "clean/qa.jsonl") if r["source"] == "feedback"]
    assert len(rows) == 1
    assert rows[0]["question"] == QUESTION and rows[0]["answer"] == MASKED and rows[0]["category"] == "消化内科"
    metrics = json.loads((tmp_path / "metrics/clean.json").read_text(encoding="utf-8"))
    assert metrics["by_source"]["feedback"] == {"read": 1, "kept": 1, "rejected": 0, "by_reason": {}}
    split.main(["--params", str(params_file), "--src", str(data / "clean/qa.jsonl"), "--out", str(data / "split"),
                "--metrics", str(tmp_path / "metrics/split.json")])
    in_split = [r for part in ("train", "val", "test") for r in read_jsonl(data / f"split/{part}.jsonl")
                if r["answer"] == MASKED]
    assert len(in_split) == 1

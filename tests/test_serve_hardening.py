"""Issue 12 (serving half): the gateway's limits and privacy, driven at the ASGI level against a
scripted model app in place of LitServe (fast: no worker processes). Each test failed before the
hardening: 429/503/408 did not exist, the length was checked before NFKC expansion, prompt tokens
were not capped, deep JSON and an image part typed "text" gave 500, the audit log masked the raw
(un-normalised) question, content-part types were echoed unmasked, streaming cached the un-softened
dose, and /shutdown compared its token with ``!=``."""
from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace

import pytest

from serve.gateway import Gateway
from serve.limits import Limits
from serve.openai_format import completion_body
from serve.questions import Rejected, predict_question
from serve.settings import GatewaySettings
from stages.safety.postcheck import postcheck
from stages.safety.rules import EMERGENCY_REPLY

DOSE = "每次服用2片布洛芬。"
PHONE_DIGITS = "13812345678"


class ScriptedModel:
    """Stands in for LitServe's chat route: answers ``content`` (JSON or SSE) after ``delay`` s,
    or waits on ``gate``; counts calls."""

    def __init__(self, content: str = "多喝水，注意休息。", delay: float = 0.0):
        self.content, self.delay, self.calls = content, delay, 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, scope, receive, send):
        self.calls += 1
        body = json.loads((await receive())["body"])
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay)
        if not body.get("stream"):
            out = completion_body("m", self.content, {}, {"prompt_tokens": 9, "completion_tokens": 3,
                                                          "total_tokens": 12})
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": out})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for piece in (self.content[:4], self.content[4:]):
            chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True})
            await asyncio.sleep(self.delay)
        final = {"id": "c", "object": "chat.completion.chunk", "model": "m", "usage": {"completion_tokens": 3},
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode()})


def make_gateway(tokenizer_dir, tmp_path, model=None, **kw) -> tuple[Gateway, ScriptedModel]:
    model = model or ScriptedModel()
    limits = Limits(max_question_chars=200, max_new_tokens=8, max_prompt_tokens=kw.pop("max_prompt_tokens", 400),
                    body_timeout_s=kw.pop("body_timeout_s", 5.0))
    s = GatewaySettings(limits=limits, cache_size=16, cache_ttl_s=0, audit_log=str(tmp_path / "audit.jsonl"),
                        api_key=None, model_enabled=True, model_path=str(tokenizer_dir), system="你是医院客服。",
                        triage_model=None)           # keyword-rules pre-check: these tests are about limits
    return Gateway(model, replace(s, **kw)), model


async def call(app, path="/predict", body=None, raw=None, chunks=None, hang_after_chunks=False):
    """One request through the ASGI app; returns (status, headers, body bytes)."""
    data = raw if raw is not None else json.dumps(body).encode()
    parts = list(chunks) if chunks is not None else [data]
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-type", b"application/json")],
             "query_string": b""}
    out = {"status": None, "headers": {}, "body": b""}

    async def receive():
        if parts:
            piece = parts.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(parts) or hang_after_chunks}
        await asyncio.sleep(3600)           # a client that never sends the rest (or never disconnects)

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in msg["headers"]}
        else:
            out["body"] += msg.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]


def run(coro):
    return asyncio.run(coro)


def test_in_flight_bound_gives_429_with_retry_after_and_emergencies_still_answered(tokenizer_dir, tmp_path):
    gw, model = make_gateway(tokenizer_dir, tmp_path, max_in_flight=2)

    async def scenario():
        model.gate = asyncio.Event()
        waiting = [asyncio.create_task(call(gw, body={"question": f"第{i}个问题：头疼怎么办？"})) for i in range(2)]
        await asyncio.sleep(0.1)
        over = await call(gw, body={"question": "第三个问题：咳嗽怎么办？"})
        emergency = await call(gw, body={"question": "我胸痛得厉害，出冷汗"})
        model.gate.set()
        return over, emergency, [await t for t in waiting]

    (status, headers, body), emergency, done = run(scenario())
    assert status == 429 and int(headers["retry-after"]) >= 1
    err = json.loads(body)["error"]
    assert err["code"] == "overloaded" and "serve.max_in_flight" in err["message"]
    assert emergency[0] == 200 and json.loads(emergency[2])["answer"].startswith(EMERGENCY_REPLY)
    assert [s for s, _, _ in done] == [200, 200] and model.calls == 2
    assert gw.in_flight.count == 0


def test_generation_deadline_gives_503_json_and_stream_error(tokenizer_dir, tmp_path):
    gw, model = make_gateway(tokenizer_dir, tmp_path, model=ScriptedModel(delay=2.0), generation_timeout_s=0.3)
    status, headers, body = run(call(gw, body={"question": "头疼怎么办？"}))
    err = json.loads(body)["error"]
    assert status == 503 and err["code"] == "deadline_exceeded" and "serve.generation_timeout_s" in err["message"]
    assert "retry-after" in headers
    # streaming: the first tokens were sent, then the deadline passed → an error event ends the stream
    model.delay = 0.2
    gw.model.deadline_s = 0.3
    status, _, body = run(call(gw, "/v1/chat/completions",
                               body={"stream": True, "messages": [{"role": "user", "content": "咳嗽怎么办？"}]}))
    events = [e[6:] for e in body.decode().split("\n\n") if e.startswith("data: ")]
    assert status == 200 and events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "deadline_exceeded"
    assert gw.in_flight.count == 0
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r.get("error") for r in audit] == ["deadline_exceeded", "deadline_exceeded"]


def test_slow_body_gives_408(tokenizer_dir, tmp_path):
    gw, model = make_gateway(tokenizer_dir, tmp_path, body_timeout_s=0.3)
    status, headers, body = run(asyncio.wait_for(
        call(gw, chunks=[b'{"question": "'], hang_after_chunks=True), 10))
    assert status == 408 and json.loads(body)["error"]["code"] == "body_timeout"
    assert headers.get("connection") == "close" and model.calls == 0


def test_length_is_checked_after_normalisation():
    limits = Limits(max_question_chars=1000, max_new_tokens=8)
    raw = "\ufdfa" * 1000                                    # 1000 chars as sent, 18,000 after NFKC
    assert len(raw) == 1000
    with pytest.raises(Rejected) as e:
        predict_question({"question": raw}, limits)
    assert e.value.status == 422 and "18000 characters" in e.value.message


def test_prompt_tokens_are_capped(tokenizer_dir, tmp_path):
    gw, model = make_gateway(tokenizer_dir, tmp_path, max_prompt_tokens=100)
    status, _, body = run(call(gw, body={"question": "\U00020000" * 60}))       # 60 chars, ~180 tokens
    err = json.loads(body)["error"]
    assert status == 422 and err["code"] == "prompt_too_long" and "serve.max_prompt_tokens" in err["message"]
    assert run(call(gw, body={"question": "头疼怎么办？"}))[0] == 200 and model.calls == 1


@pytest.mark.parametrize("raw,code", [
    (b"[" * 100_000, "json_too_deep"), (b'{"question": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}", "json_too_deep"),
    (b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", "json_too_deep"),
    ('{"question": "\\ud800头疼"}'.encode(), "invalid_unicode"),
    ('{"model": "\\udfff", "messages": [{"role": "user", "content": "头疼"}]}'.encode(), "invalid_unicode")])
def test_deeply_nested_or_unencodable_json_is_400(tokenizer_dir, tmp_path, raw, code):
    gw, model = make_gateway(tokenizer_dir, tmp_path)
    path = "/v1/chat/completions" if b"messages" in raw else "/predict"
    status, _, body = run(call(gw, path, raw=raw))
    assert status == 400 and json.loads(body)["error"]["code"] == code and model.calls == 0


def test_image_part_typed_text_is_422_and_the_type_is_masked_everywhere(tokenizer_dir, tmp_path):
    gw, model = make_gateway(tokenizer_dir, tmp_path)
    for part, shown in [({"type": "text", "image_url": "http://x/1.png"}, "'text'"),
                        ({"type": f"电话{PHONE_DIGITS}", "image_url": "http://x/1.png"}, "'电话[手机号]'")]:
        status, _, body = run(call(gw, "/v1/chat/completions",
                                   body={"messages": [{"role": "user", "content": [part]}]}))
        err = json.loads(body)["error"]
        assert status == 422 and err["code"] == "unsupported_content" and shown in err["message"], err
    # an extra field named like a phone number: the field name in the message is masked too
    status, _, body = run(call(gw, body={"question": "头疼", PHONE_DIGITS: 1}))
    assert status == 422 and "[手机号]" in json.loads(body)["error"]["message"]
    text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert PHONE_DIGITS not in text and "[手机号]" in text and model.calls == 0


@pytest.mark.parametrize("question", [
    "我的电话是138 1234 5678，头疼", "我的电话是138\u200b1234\u200b5678，头疼", "电话138\u30001234\u30005678",
    "电话１３８１２３４５６７８", "邮箱zhangsan＠qq.com，头疼", "电话&#49;38-1234-5678，头疼"])
def test_audit_log_question_is_normalised_then_masked(tokenizer_dir, tmp_path, question):
    gw, _ = make_gateway(tokenizer_dir, tmp_path)
    assert run(call(gw, body={"question": question}))[0] == 200
    line = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    rec = json.loads(line)
    digits = re.sub(r"\D", "", line)
    assert PHONE_DIGITS not in digits and "zhangsan" not in line
    assert ("[手机号]" in rec["question"] or "[邮箱]" in rec["question"]) and sum(rec["pii"].values()) == 1


def test_streaming_caches_what_predict_returns(tokenizer_dir, tmp_path):
    gw, model = make_gateway(tokenizer_dir, tmp_path, model=ScriptedModel(DOSE))
    q = "感冒吃什么药好？"
    status, _, body = run(call(gw, "/v1/chat/completions",
                               body={"stream": True, "messages": [{"role": "user", "content": q}]}))
    assert status == 200 and b"finish_reason" in body
    status, headers, body = run(call(gw, body={"question": q}))
    answer = json.loads(body)
    softened = postcheck(q, DOSE).answer.strip()
    assert answer["cached"] is True and model.calls == 1
    assert answer["answer"] == softened and answer["safety"]["rules"] == ["risky:specific_dosing"]


def test_shutdown_token_is_compared_in_constant_time(monkeypatch, tmp_path):
    import hmac

    import litserve.server as ls_server
    from fastapi import HTTPException

    from serve.app import MedQAServer, build_server
    from serve.settings import ServeSettings
    from stages.common.config import load_params

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    monkeypatch.setattr(ls_server, "SHUTDOWN_API_KEY", "the-shutdown-key")
    server = build_server(ServeSettings.from_params(load_params("params.yaml"), None, audit_log="-"))
    assert isinstance(server, MedQAServer)
    with pytest.raises(HTTPException) as e:
        server.shutdown_api_key_auth("the-shutdown-kez")
    assert e.value.status_code == 401 and calls == [(b"the-shutdown-kez", b"the-shutdown-key")]
    server.shutdown_api_key_auth("the-shutdown-key")           # the right token passes
    assert len(calls) == 2
    from serve.auth import key_ok                                 # and the API key
    assert not key_ok("api-key", {"authorization": "Bearer api-kez"}) and calls[-1] == (b"api-kez", b"api-key")

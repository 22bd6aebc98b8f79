"""The business-logic layer in front of LitServe's batching queue, as an ASGI middleware in the
API-server process (registered through ``LitServer(middlewares=...)``):

1. auth — API key on everything except /health, the page and its static files (401 otherwise);
2. question understanding — parse/validate the body (4xx with a clear message, never a 500),
   normalise + mask the question (serve/questions.py);
3. safety pre-check (stages/safety/rules.py ``precheck``) — emergencies, prompt injection and
   out-of-scope requests are answered here, without the model, so they work even when it is down;
4. cache — LRU + TTL keyed on the cleaned question and generation params; hits skip the queue;
5. model — the request goes on to LitServe (serve/api.py) with the cleaned question;
6. safety post-check (``postcheck``) on the model's answer: risky dosing softened, consultation
   reminder appended; streamed answers get the addition as a last chunk;
7. audit — one JSON line per request with the question PII-masked (serve/audit.py).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field

from stages.safety.rules import DISCLAIMER, SOFTENED_DOSING, postcheck, precheck

from serve.audit import AuditLog
from serve.auth import is_open_path, key_ok
from serve.cache import AnswerCache
from serve.openai_format import StreamRewriter, completion_body, stream_events
from serve.questions import Rejected, Question, chat_question, parse_json, predict_question
from serve.settings import GatewaySettings

logger = logging.getLogger("serve.gateway")

PREDICT_PATH = "/predict"
CHAT_PATH = "/v1/chat/completions"


class _ClientGone(Exception):
    pass


@dataclass
class _Ctx:
    """Per-request facts collected for the response and the audit line."""
    request_id: str
    method: str
    path: str
    start: float
    status: int = 0
    endpoint: str = "other"
    question: str | None = None
    action: str | None = None
    rules: list[str] = field(default_factory=list)
    cached: bool | None = None
    model_used: bool = False
    stream: bool | None = None
    error: str | None = None
    ttft_ms: float | None = None
    answer_chars: int | None = None

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.start) * 1000, 2)


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _headers(ctx: _Ctx, content_type: bytes, length: int | None = None, extra: dict | None = None) -> list:
    h = [(b"content-type", content_type), (b"x-request-id", ctx.request_id.encode())]
    if length is not None:
        h.append((b"content-length", str(length).encode()))
    if ctx.cached is not None:
        h.append((b"x-medqa-cached", b"true" if ctx.cached else b"false"))
    for k, v in (extra or {}).items():
        h.append((k.encode(), v.encode()))
    return h


def _error_body(message: str, code: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}


class Gateway:
    def __init__(self, app, settings: GatewaySettings):
        self.app = app
        self.s = settings
        self.cache = AnswerCache(settings.cache_size, settings.cache_ttl_s)
        self.audit = AuditLog(settings.audit_log)

    # ---------------------------------------------------------------- plumbing
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        ctx = _Ctx(request_id=uuid.uuid4().hex[:16], method=scope["method"], path=scope["path"],
                   start=time.perf_counter())
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if not is_open_path(ctx.path) and not key_ok(self.s.api_key, headers):
                await self._send_json(send, ctx, 401, _error_body(
                    "missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                    "invalid_api_key", "authentication_error"), extra={"www-authenticate": "Bearer"})
            elif ctx.method == "POST" and ctx.path == PREDICT_PATH:
                ctx.endpoint = "predict"
                await self._predict(scope, receive, send, ctx)
            elif ctx.method == "POST" and ctx.path == CHAT_PATH:
                ctx.endpoint = "chat"
                await self._chat(scope, receive, send, ctx)
            else:
                await self._passthrough(scope, receive, send, ctx)
        except Rejected as err:
            ctx.error = err.message
            kind = "server_error" if err.status >= 500 else "invalid_request_error"
            await self._send_json(send, ctx, err.status, _error_body(err.message, err.code, kind))
        except _ClientGone:
            ctx.status, ctx.error = 499, "client disconnected"
        except Exception as err:  # a bug here must not leak details; it is logged with its trace
            logger.exception("gateway error for request %s", ctx.request_id)
            ctx.error = f"internal error: {type(err).__name__}"
            if ctx.status == 0:
                await self._send_json(send, ctx, 500, _error_body(
                    f"internal server error (request {ctx.request_id})", "internal_error", "server_error"))
        finally:
            self._audit(ctx)

    def _audit(self, ctx: _Ctx) -> None:
        rec = {"request_id": ctx.request_id, "method": ctx.method, "path": ctx.path, "endpoint": ctx.endpoint,
               "status": ctx.status, "latency_ms": ctx.elapsed_ms()}
        if ctx.endpoint != "other":
            rec.update(question=ctx.question, action=ctx.action, rules=ctx.rules, cached=ctx.cached,
                       model_used=ctx.model_used, stream=ctx.stream, ttft_ms=ctx.ttft_ms,
                       answer_chars=ctx.answer_chars)
        if ctx.error:
            rec["error"] = ctx.error
        try:
            self.audit.write(rec)
        except Exception:  # the audit sink failing must not fail the request
            logger.exception("could not write the audit line for request %s", ctx.request_id)

    async def _send_json(self, send, ctx: _Ctx, status: int, obj, extra: dict | None = None) -> None:
        body = obj if isinstance(obj, bytes) else _json_bytes(obj)
        ctx.status = status
        await send({"type": "http.response.start", "status": status,
                    "headers": _headers(ctx, b"application/json", len(body), extra)})
        await send({"type": "http.response.body", "body": body})

    async def _send_sse(self, send, ctx: _Ctx, events: list[bytes]) -> None:
        ctx.status = 200
        await send({"type": "http.response.start", "status": 200,
                    "headers": _headers(ctx, b"text/event-stream; charset=utf-8", extra={"cache-control": "no-cache"})})
        for ev in events:
            await send({"type": "http.response.body", "body": ev, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _read_body(receive, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"request body is larger than {limit} bytes", "body_too_large")
            chunks.append(chunk)
            if not msg.get("more_body"):
                return b"".join(chunks)

    def _forward(self, scope, receive, body: bytes):
        """(scope, receive) for LitServe's chat route (the one model API) with a replaced JSON body."""
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"content-type")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()      # after the body: wait for the client's disconnect, as usual

        return dict(scope, path=CHAT_PATH, raw_path=CHAT_PATH.encode(), headers=headers), replay

    async def _generate(self, scope, receive, send, ctx: _Ctx, q: Question) -> dict | None:
        """Non-streaming model call for ``q``: ``{"answer", "usage", "new_tokens", "truncated"}``, or None
        after an error reply."""
        status, out = await self._call_model(scope, receive, self._chat_body(q, stream=False))
        if status != 200:
            await self._model_error(send, ctx, status, out)
            return None
        resp = json.loads(out)
        usage = resp.get("usage") or {}
        new_tokens, truncated = self._token_budget(usage, q)
        return {"answer": resp["choices"][0]["message"]["content"] or "", "usage": usage,
                "new_tokens": new_tokens, "truncated": truncated}

    @staticmethod
    def _token_budget(usage: dict, q: Question) -> tuple[int, bool]:
        """(generated tokens, whether they hit the request's max_new_tokens) from the model's usage."""
        new_tokens = int(usage.get("completion_tokens") or 0)
        return new_tokens, new_tokens >= q.max_new_tokens

    @staticmethod
    def _chat_body(q: Question, stream: bool) -> bytes:
        return _json_bytes({"model": q.model_name, "messages": [{"role": "user", "content": q.text}],
                            "stream": stream, "max_tokens": q.max_new_tokens})

    async def _call_model(self, scope, receive, body: bytes) -> tuple[int, bytes]:
        """Non-streaming call into LitServe; returns (status, body)."""
        fscope, freceive = self._forward(scope, receive, body)
        status, chunks = 500, []

        async def capture(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        await self.app(fscope, freceive, capture)
        return status, b"".join(chunks)

    async def _model_error(self, send, ctx: _Ctx, status: int, body: bytes) -> None:
        try:
            detail = json.loads(body).get("detail")
        except Exception:
            detail = None
        if status == 504:
            msg, code, out = "the model is overloaded: the request timed out in the queue; retry later", "timeout", 503
        elif 400 <= status < 500:
            msg, code, out = str(detail or "the model rejected the request"), "model_rejected", status
        else:
            msg, code, out = f"the model failed to answer (request {ctx.request_id}); retry later", "model_error", 503
        ctx.error = f"model status {status}: {detail}" if detail else f"model status {status}"
        await self._send_json(send, ctx, out, _error_body(msg, code, "server_error" if out >= 500 else
                                                          "invalid_request_error"))

    def _model_unavailable(self) -> Rejected:
        return Rejected(503, "the model is disabled on this server (--no-model); only safety guidance "
                               "(e.g. emergencies) and cached answers are available", "model_disabled")

    def _pre(self, ctx: _Ctx, q: Question):
        ctx.question, ctx.stream = q.raw, q.stream
        pre = precheck(q.text)
        ctx.action, ctx.rules = pre.action, list(pre.rules)
        return pre

    def _safety(self, ctx: _Ctx) -> dict:
        return {"action": ctx.action, "rules": ctx.rules, "model_used": ctx.model_used,
                "notice": DISCLAIMER}

    # ---------------------------------------------------------------- /predict
    async def _predict(self, scope, receive, send, ctx: _Ctx) -> None:
        body = await self._read_body(receive, self.s.limits.max_body_bytes)
        q = predict_question(parse_json(body, self.s.limits), self.s.limits)
        key, ready = self._without_model(ctx, q)
        if ready is not None:
            return await self._predict_reply(send, ctx, ready["answer"], truncated=ready["truncated"])
        gen = await self._generate(scope, receive, send, ctx, q)
        if gen is None:
            return
        answer = self._post_and_cache(ctx, q, key, gen["answer"], truncated=gen["truncated"])
        await self._predict_reply(send, ctx, answer, truncated=gen["truncated"], new_tokens=gen["new_tokens"])

    def _without_model(self, ctx: _Ctx, q: Question):
        """Pre-check and cache, shared by /predict and chat: returns (cache key, ready reply or None).
        A ready reply is ``{"answer", "truncated"}``; None means the model must answer (503 if disabled)."""
        pre = self._pre(ctx, q)
        ctx.cached = False
        if pre.action != "pass":
            return None, {"answer": pre.reply, "truncated": False}
        key = AnswerCache.key(q.text, q.max_new_tokens)
        hit = self.cache.get(key)
        if hit is not None:
            ctx.cached, ctx.rules = True, list(hit["rules"])
            return key, hit
        if not self.s.model_enabled:
            raise self._model_unavailable()
        ctx.model_used = True
        return key, None

    def _post_and_cache(self, ctx: _Ctx, q: Question, key, raw_answer: str, truncated: bool) -> str:
        post = postcheck(q.text, raw_answer)
        answer = post.answer.strip()
        ctx.rules = post.rules
        self.cache.put(key, {"answer": answer, "rules": post.rules, "truncated": truncated})
        return answer

    async def _predict_reply(self, send, ctx: _Ctx, answer: str, truncated: bool, new_tokens: int = 0) -> None:
        ctx.answer_chars = len(answer)
        await self._send_json(send, ctx, 200, {
            "answer": answer, "safety": self._safety(ctx), "cached": bool(ctx.cached), "truncated": truncated,
            "new_tokens": new_tokens, "latency_ms": ctx.elapsed_ms(), "request_id": ctx.request_id})

    # ---------------------------------------------------------------- /v1/chat/completions
    def _medqa(self, ctx: _Ctx) -> dict:
        return {"safety": self._safety(ctx), "cached": bool(ctx.cached), "latency_ms": ctx.elapsed_ms(),
                "request_id": ctx.request_id}

    async def _chat_ready(self, send, ctx: _Ctx, q: Question, answer: str, usage: dict | None = None) -> None:
        ctx.answer_chars = len(answer)
        if q.stream:
            ctx.ttft_ms = ctx.elapsed_ms()
            await self._send_sse(send, ctx, stream_events(q.model_name, answer, self._medqa(ctx)))
        else:
            await self._send_json(send, ctx, 200, completion_body(q.model_name, answer, self._medqa(ctx), usage))

    async def _chat(self, scope, receive, send, ctx: _Ctx) -> None:
        body = await self._read_body(receive, self.s.limits.max_body_bytes)
        q = chat_question(parse_json(body, self.s.limits), self.s.limits)
        key, ready = self._without_model(ctx, q)
        if ready is not None:
            return await self._chat_ready(send, ctx, q, ready["answer"])
        if q.stream:
            return await self._chat_stream(scope, receive, send, ctx, q, key, self._chat_body(q, stream=True))
        gen = await self._generate(scope, receive, send, ctx, q)
        if gen is None:
            return
        answer = self._post_and_cache(ctx, q, key, gen["answer"], truncated=gen["truncated"])
        await self._chat_ready(send, ctx, q, answer, gen["usage"])

    @staticmethod
    def _stream_tail(streamed: str, checked: str, rules: list[str]) -> str:
        """What to append to an already-streamed answer so the client ends with the post-checked one."""
        base = streamed.rstrip()
        if checked.startswith(base):
            return checked[len(base):]
        # the post-check changed text already sent (softened dosing): say it at the end instead
        tail = "\n\n" + SOFTENED_DOSING
        if "reminder_added" in rules:
            tail += "\n\n" + DISCLAIMER
        return tail

    async def _chat_stream(self, scope, receive, send, ctx: _Ctx, q: Question, key, forward: bytes) -> None:
        def on_finish(streamed: str):
            post = postcheck(q.text, streamed)
            ctx.rules = post.rules
            tail = self._stream_tail(streamed, post.answer, post.rules)
            return tail, self._medqa(ctx)

        rewriter = StreamRewriter(on_finish)
        started = False
        buffered: list[bytes] = []
        error_status = 0

        async def relay(msg):
            nonlocal started, error_status
            if msg["type"] == "http.response.start":
                if msg["status"] != 200:
                    error_status = msg["status"]
                    return
                started = True
                ctx.status = 200
                headers = [(k, v) for k, v in msg["headers"] if k.lower() != b"content-length"]
                headers += [(b"x-request-id", ctx.request_id.encode()), (b"x-medqa-cached", b"false")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            elif msg["type"] == "http.response.body":
                if error_status:
                    buffered.append(msg.get("body", b""))
                    return
                now = ctx.elapsed_ms()
                data = rewriter.feed(msg.get("body", b""), now)
                more = msg.get("more_body", False)
                if not more:
                    data += rewriter.close()
                if data or not more:
                    await send({"type": "http.response.body", "body": data, "more_body": more})

        fscope, freceive = self._forward(scope, receive, forward)
        await self.app(fscope, freceive, relay)
        if error_status:
            return await self._model_error(send, ctx, error_status, b"".join(buffered))
        ctx.ttft_ms = rewriter.first_content_at
        ctx.answer_chars = len(rewriter.content)
        if rewriter.error is not None:
            ctx.error = f"stream error: {rewriter.error}"
        elif rewriter.finished:
            truncated = self._token_budget(rewriter.usage, q)[1]
            self.cache.put(key, {"answer": rewriter.content.strip(), "rules": ctx.rules, "truncated": truncated})
        elif started:
            ctx.error = "stream ended without a final chunk"

    # ---------------------------------------------------------------- everything else
    async def _passthrough(self, scope, receive, send, ctx: _Ctx) -> None:
        async def watch(msg):
            if msg["type"] == "http.response.start":
                ctx.status = msg["status"]
                msg = dict(msg, headers=list(msg["headers"]) + [(b"x-request-id", ctx.request_id.encode())])
            await send(msg)

        await self.app(scope, receive, watch)


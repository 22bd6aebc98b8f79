"""The business-logic layer in front of LitServe's batching queue, as an ASGI middleware in the
API-server process (registered through ``LitServer(middlewares=...)``):

1. auth — API key on everything except /health, the page and its static files (401 otherwise);
2. question understanding — read the body within the limits (serve/limits.py: 408/413/400),
   validate it (4xx with a clear message, never a 500), normalise + mask the question
   (serve/questions.py, serve/privacy.py);
3. safety pre-check (stages/safety/precheck.py: triage = rules ∪ classifier, then injection = rules ∪
   classifier ∪ hidden-state probe, and out-of-scope; in a worker thread) — emergencies and self-harm get their fixed reply here, without the model, so they
   work even when it is down;
4. cache — LRU + TTL keyed on the cleaned question and generation params; hits skip the queue;
5. model — prompt-token cap (422), in-flight bound (429 + Retry-After), deadline (503), then the
   request goes on to LitServe (serve/model_client.py → serve/api.py) with the cleaned question;
6. safety post-check (stages/safety/postcheck.py) on the model's answer: an answer that only repeats
   the user's words, recites the system prompt, or agrees to a question the injection classifier found
   suspicious is replaced, personal data the model wrote is masked,
   risky dosing softened, the 120 pointer added under a question the triage scored urgent but did not
   flag, the consultation reminder appended; a streamed answer gets the addition as a
   last chunk, or — when text already sent was replaced — a withdrawal notice and the checked answer
   (the final chunk's ``medqa.answer`` carries it; the chat page shows only that);
7. audit — one JSON line per request, the question normalised and masked (serve/audit.py).

A new route is one branch in ``Gateway.__call__`` calling a handler that lives in its own module."""
from __future__ import annotations

import asyncio
import logging

from stages.safety.pii_names import warm as warm_masker
from stages.safety.precheck import precheck
from stages.safety.postcheck import WITHDRAWN, PostCheck, postcheck
from stages.safety.rules import DISCLAIMER, SOFTENED_DOSING
from stages.safety.triage import load_triager

from serve.audit import AuditLog
from serve.auth import is_open_path, key_ok
from serve.cache import AnswerCache
from serve.context import RequestContext, send_json, send_sse
from serve.errors import Rejected, error_body
from serve.feedback import AnswerRecorder
from serve.limits import InFlight, read_body
from serve.model_client import CHAT_PATH, ModelClient, chat_body
from serve.monitoring import FEEDBACK_TAP_BYTES, Monitor
from serve.openai_format import completion_body, stream_events
from serve.questions import PromptBudget, Question, chat_question, parse_json, predict_question
from serve.settings import GatewaySettings

logger = logging.getLogger("serve.gateway")

PREDICT_PATH = "/predict"


class _ClientGone(Exception):
    pass


class Gateway:
    def __init__(self, app, settings: GatewaySettings):
        self.app = app
        self.s = settings
        self.cache = AnswerCache(settings.cache_size, settings.cache_ttl_s)
        self.audit = AuditLog(settings.audit_log)
        self.answers = AnswerRecorder(settings.feedback_db)
        self.in_flight = InFlight(settings.max_in_flight)
        self.monitor = Monitor(settings.monitor)       # GET /metrics (serve/monitoring.py)
        self.model = ModelClient(self.monitor.meter(app), self.in_flight, settings.generation_timeout_s)
        self.budget = (PromptBudget(settings.model_path, settings.system, settings.limits.max_prompt_tokens)
                       if settings.model_enabled and settings.model_path else None)
        self.triager = load_triager(settings.triage_model)     # once per process; missing model → error
        warm_masker()      # the masker's word dictionaries (jieba, ~1.5 s) load now, not during the first request

    # ---------------------------------------------------------------- plumbing
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        ctx = RequestContext.from_scope(scope)
        try:
            hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if not (is_open_path(ctx.path) or self.monitor.is_open(ctx.path)) and not key_ok(self.s.api_key, hdrs):
                await send_json(send, ctx, 401, error_body(
                    "missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                    "invalid_api_key", "authentication_error"), extra={"www-authenticate": "Bearer"})
            elif self.monitor.handles(ctx.method, ctx.path):
                await self.monitor.respond(send, ctx)
            elif ctx.method == "POST" and ctx.path == PREDICT_PATH:
                ctx.endpoint = "predict"
                await self._predict(scope, receive, send, ctx)
            elif ctx.method == "POST" and ctx.path == CHAT_PATH:
                ctx.endpoint = "chat"
                await self._chat(scope, receive, send, ctx)
            else:
                await self._passthrough(scope, receive, send, ctx)
        except Rejected as err:
            ctx.error = ctx.error or f"{err.code}: {err.message}"
            if ctx.status == 0:
                await send_json(send, ctx, err.status, error_body(err.message, err.code, err.kind), err.headers)
        except _ClientGone:
            ctx.status, ctx.error = 499, "client disconnected"
        except Exception as err:  # a bug here must not leak details; it is logged with its trace
            logger.exception("gateway error for request %s", ctx.request_id)
            ctx.error = f"internal error: {type(err).__name__}"
            if ctx.status == 0:
                await send_json(send, ctx, 500, error_body(
                    f"internal server error (request {ctx.request_id})", "internal_error", "server_error"))
        finally:
            self._audit(ctx)
            await self.answers.record(ctx)

    def _audit(self, ctx: RequestContext) -> None:
        rec = ctx.audit_record()
        self.monitor.observe(rec)
        try:
            self.audit.write(rec)
        except Exception:  # the audit sink failing must not fail the request
            logger.exception("could not write the audit line for request %s", ctx.request_id)

    async def _question(self, receive, ctx: RequestContext, parse) -> Question:
        body = await read_body(receive, self.s.limits, _ClientGone)
        q = parse(parse_json(body, self.s.limits), self.s.limits)
        ctx.question, ctx.pii, ctx.stream = q.text, q.pii, q.stream
        return q

    async def _without_model(self, ctx: RequestContext, q: Question):
        """Pre-check and cache, shared by /predict and chat: returns (cache key, ready reply or None).
        A ready reply is ``{"answer", "truncated"}``; None means the model must answer (503 if disabled).
        The pre-check runs in a worker thread: its injection probe runs a language model's first layers (~70 ms
        on 2 cores), which must not hold up the event loop (other requests, /health, streaming)."""
        pre = await asyncio.to_thread(precheck, q.text, self.triager)
        ctx.action, ctx.rules, ctx.pointer, ctx.gray = pre.action, list(pre.rules), pre.pointer, pre.gray
        ctx.cached = False
        if pre.action != "pass":
            return None, {"answer": pre.reply, "truncated": False}
        key = AnswerCache.key(q.text, q.max_new_tokens)
        hit = self.cache.get(key)
        if hit is not None:
            ctx.cached, ctx.rules = True, list(hit["rules"])
            return key, hit
        if not self.s.model_enabled:
            raise Rejected(503, "the model is disabled on this server (--no-model); only safety guidance "
                                "(e.g. emergencies) and cached answers are available", "model_disabled")
        if self.budget is not None:
            self.budget.check(q)
        ctx.model_used = True
        return key, None

    async def _generate(self, scope, receive, ctx: RequestContext, q: Question) -> dict:
        """Non-streaming model call: ``{"answer", "usage", "new_tokens", "truncated"}``."""
        resp = await self.model.complete(scope, receive, ctx, chat_body(q.text, q.model_name, q.max_new_tokens,
                                                                        stream=False))
        usage = resp.get("usage") or {}
        new_tokens, truncated = self._token_budget(usage, q)
        return {"answer": resp["choices"][0]["message"]["content"] or "", "usage": usage,
                "new_tokens": new_tokens, "truncated": truncated}

    @staticmethod
    def _token_budget(usage: dict, q: Question) -> tuple[int, bool]:
        """(generated tokens, whether they hit the request's max_new_tokens) from the model's usage."""
        new_tokens = int(usage.get("completion_tokens") or 0)
        return new_tokens, new_tokens >= q.max_new_tokens

    def _post_and_cache(self, ctx: RequestContext, q: Question, key, raw_answer: str, truncated: bool) -> str:
        post = postcheck(q.text, raw_answer, self.s.system, ctx.pointer, ctx.gray)
        answer = post.answer.strip()
        ctx.rules = post.rules
        self.cache.put(key, {"answer": answer, "rules": post.rules, "truncated": truncated})
        return answer

    def _safety(self, ctx: RequestContext) -> dict:
        return {"action": ctx.action, "rules": ctx.rules, "model_used": ctx.model_used, "notice": DISCLAIMER}

    # ---------------------------------------------------------------- /predict
    async def _predict(self, scope, receive, send, ctx: RequestContext) -> None:
        q = await self._question(receive, ctx, predict_question)
        key, ready = await self._without_model(ctx, q)
        if ready is not None:
            return await self._predict_reply(send, ctx, ready["answer"], truncated=ready["truncated"])
        gen = await self._generate(scope, receive, ctx, q)
        answer = self._post_and_cache(ctx, q, key, gen["answer"], truncated=gen["truncated"])
        await self._predict_reply(send, ctx, answer, truncated=gen["truncated"], new_tokens=gen["new_tokens"])

    async def _predict_reply(self, send, ctx: RequestContext, answer: str, truncated: bool, new_tokens: int = 0):
        ctx.answer, ctx.answer_chars = answer, len(answer)
        await send_json(send, ctx, 200, {
            "answer": answer, "safety": self._safety(ctx), "cached": bool(ctx.cached), "truncated": truncated,
            "new_tokens": new_tokens, "latency_ms": ctx.elapsed_ms(), "request_id": ctx.request_id})

    # ---------------------------------------------------------------- /v1/chat/completions
    def _medqa(self, ctx: RequestContext) -> dict:
        return {"safety": self._safety(ctx), "cached": bool(ctx.cached), "latency_ms": ctx.elapsed_ms(),
                "request_id": ctx.request_id}

    async def _chat_ready(self, send, ctx: RequestContext, q: Question, answer: str, usage: dict | None = None):
        ctx.answer, ctx.answer_chars = answer, len(answer)
        if q.stream:
            ctx.ttft_ms = ctx.elapsed_ms()
            await send_sse(send, ctx, stream_events(q.model_name, answer, self._medqa(ctx)))
        else:
            await send_json(send, ctx, 200, completion_body(q.model_name, answer, self._medqa(ctx), usage))

    async def _chat(self, scope, receive, send, ctx: RequestContext) -> None:
        q = await self._question(receive, ctx, chat_question)
        key, ready = await self._without_model(ctx, q)
        if ready is not None:
            return await self._chat_ready(send, ctx, q, ready["answer"])
        if q.stream:
            return await self._chat_stream(scope, receive, send, ctx, q, key)
        gen = await self._generate(scope, receive, ctx, q)
        answer = self._post_and_cache(ctx, q, key, gen["answer"], truncated=gen["truncated"])
        await self._chat_ready(send, ctx, q, answer, gen["usage"])

    @staticmethod
    def _stream_tail(streamed: str, post: PostCheck) -> str:
        """What to append to an already-streamed answer so the client ends with the post-checked one."""
        base = streamed.rstrip()
        if post.answer.startswith(base):
            return post.answer[len(base):]
        if post.guarded:
            # a guard replaced the answer or masked what it wrote: withdraw the text already sent
            return "\n\n" + WITHDRAWN + "\n\n" + post.answer.strip()
        # the post-check changed text already sent (softened dosing): say it at the end instead
        tail = "\n\n" + SOFTENED_DOSING
        if "reminder_added" in post.rules:
            tail += "\n\n" + DISCLAIMER
        return tail

    async def _chat_stream(self, scope, receive, send, ctx: RequestContext, q: Question, key) -> None:
        checked: dict = {}

        def on_finish(streamed: str):
            post = postcheck(q.text, streamed, self.s.system, ctx.pointer, ctx.gray)
            ctx.rules = post.rules
            checked["answer"] = post.answer.strip()      # what /predict returns for this answer
            medqa = self._medqa(ctx)
            if post.guarded:
                medqa["answer"] = checked["answer"]      # the page replaces what it showed with this
            return self._stream_tail(streamed, post), medqa

        rw = await self.model.stream(scope, receive, send, ctx, chat_body(q.text, q.model_name, q.max_new_tokens,
                                                                          stream=True), on_finish)
        ctx.ttft_ms = rw.first_content_at
        ctx.answer_chars = len(rw.content)
        if rw.error is not None:
            ctx.error = ctx.error or f"stream error: {rw.error}"
        elif rw.finished:
            ctx.answer = rw.content
            truncated = self._token_budget(rw.usage, q)[1]
            self.cache.put(key, {"answer": checked["answer"], "rules": ctx.rules, "truncated": truncated})
        elif ctx.status == 200:
            ctx.error = "stream ended without a final chunk"

    # ---------------------------------------------------------------- everything else
    async def _passthrough(self, scope, receive, send, ctx: RequestContext) -> None:
        feedback = ctx.method == "POST" and ctx.path == "/feedback"   # 👍/👎 feed the /metrics window
        body = bytearray()

        async def tap():
            msg = await receive()
            if feedback and msg.get("type") == "http.request" and len(body) < FEEDBACK_TAP_BYTES:
                body.extend(msg.get("body", b""))
            return msg

        async def watch(msg):
            if msg["type"] == "http.response.start":
                ctx.status = msg["status"]
                if feedback and ctx.status == 201:          # stored by serve/feedback.py
                    self.monitor.record_feedback_body(bytes(body))
                msg = dict(msg, headers=list(msg["headers"]) + [(b"x-request-id", ctx.request_id.encode())])
            await send(msg)

        await self.app(scope, tap, watch)

"""The gateway's calls into LitServe's chat route (serve/api.py, the one model API), in-process
through the wrapped ASGI app: a non-streaming call, a relayed token stream, and the mapping of the
model layer's errors to clear replies. Every call holds an ``InFlight`` slot (429 when full) and
ends at ``deadline_s`` (503)."""
from __future__ import annotations

import asyncio
import json
from typing import Callable

from serve.context import RequestContext, json_bytes
from serve.errors import Rejected, error_body
from serve.limits import InFlight
from serve.openai_format import SSE_DONE, StreamRewriter, sse
from serve.privacy import masked

CHAT_PATH = "/v1/chat/completions"


def chat_body(text: str, model_name: str, max_new_tokens: int, stream: bool) -> bytes:
    return json_bytes({"model": model_name, "messages": [{"role": "user", "content": text}],
                       "stream": stream, "max_tokens": max_new_tokens})


def model_error(ctx: RequestContext, status: int, body: bytes) -> Rejected:
    """A clear reply for a non-200 from the model layer; ``ctx.error`` records it (masked)."""
    try:
        detail = json.loads(body).get("detail")
    except Exception:
        detail = None
    ctx.error = masked(f"model status {status}: {detail}" if detail else f"model status {status}")
    if status == 504:
        return Rejected(503, "the model is overloaded: the request timed out in the queue; retry later", "timeout")
    if status == 503:
        return Rejected(503, "the model worker stopped and is being restarted; retry shortly", "model_restarting",
                        headers={"retry-after": "5"})
    if 400 <= status < 500:
        return Rejected(status, masked(str(detail or "the model rejected the request")), "model_rejected")
    return Rejected(503, f"the model failed to answer (request {ctx.request_id}); retry later", "model_error")


class ModelClient:
    def __init__(self, app, in_flight: InFlight, deadline_s: float):
        self.app = app
        self.in_flight = in_flight
        self.deadline_s = deadline_s

    def _forward(self, scope, receive, body: bytes):
        """(scope, receive) for LitServe's chat route with a replaced JSON body."""
        hdrs = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"content-type")]
        hdrs += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()      # after the body: wait for the client's disconnect, as usual

        return dict(scope, path=CHAT_PATH, raw_path=CHAT_PATH.encode(), headers=hdrs), replay

    async def _run(self, coro):
        """``coro`` within the deadline; raises ``asyncio.TimeoutError`` past it."""
        if self.deadline_s > 0:
            return await asyncio.wait_for(coro, self.deadline_s)
        return await coro

    async def complete(self, scope, receive, ctx: RequestContext, body: bytes) -> dict:
        """Non-streaming call; the model's OpenAI response as a dict. Raises ``Rejected`` on errors."""
        fscope, freceive = self._forward(scope, receive, body)
        status, chunks = 500, []

        async def capture(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            elif msg["type"] == "http.response.body":
                chunks.append(msg.get("body", b""))

        with self.in_flight.slot():
            try:
                await self._run(self.app(fscope, freceive, capture))
            except asyncio.TimeoutError:
                ctx.error = "deadline_exceeded"
                raise self.in_flight.deadline_error(self.deadline_s) from None
        out = b"".join(chunks)
        if status != 200:
            raise model_error(ctx, status, out)
        return json.loads(out)

    async def stream(self, scope, receive, send, ctx: RequestContext, body: bytes,
                     on_finish: Callable[[str], tuple[str, dict]]) -> StreamRewriter:
        """Relay the model's token stream to the client, rewritten by ``StreamRewriter(on_finish)``.
        Errors before the first byte raise ``Rejected``; past the deadline mid-stream the client gets
        an error event and the stream ends."""
        rewriter = StreamRewriter(on_finish)
        started, error_status, buffered = False, 0, []

        async def relay(msg):
            nonlocal started, error_status
            if msg["type"] == "http.response.start":
                if msg["status"] != 200:
                    error_status = msg["status"]
                    return
                started = True
                ctx.status = 200
                hdrs = [(k, v) for k, v in msg["headers"] if k.lower() != b"content-length"]
                hdrs += [(b"x-request-id", ctx.request_id.encode()), (b"x-medqa-cached", b"false")]
                await send({"type": "http.response.start", "status": 200, "headers": hdrs})
            elif msg["type"] == "http.response.body":
                if error_status:
                    buffered.append(msg.get("body", b""))
                    return
                data = rewriter.feed(msg.get("body", b""), ctx.elapsed_ms())
                more = msg.get("more_body", False)
                if not more:
                    data += rewriter.close()
                if data or not more:
                    await send({"type": "http.response.body", "body": data, "more_body": more})

        fscope, freceive = self._forward(scope, receive, body)
        with self.in_flight.slot():
            try:
                await self._run(self.app(fscope, freceive, relay))
            except asyncio.TimeoutError:
                ctx.error = "deadline_exceeded"
                err = self.in_flight.deadline_error(self.deadline_s)
                if not started:
                    raise err from None
                rewriter.error = err.code
                await send({"type": "http.response.body", "more_body": False,
                            "body": sse(error_body(err.message, err.code, err.kind)) + SSE_DONE})
                return rewriter
        if error_status:
            raise model_error(ctx, error_status, b"".join(buffered))
        return rewriter

"""Per-request facts (``RequestContext``, the source of the response headers and the audit line)
and the helpers that write JSON and server-sent-event responses to the ASGI ``send``."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class RequestContext:
    request_id: str
    method: str
    path: str
    start: float
    status: int = 0
    endpoint: str = "other"
    question: str | None = None          # normalised + masked (serve/privacy.py), never the raw text
    pii: dict[str, int] | None = None
    action: str | None = None
    rules: list[str] = field(default_factory=list)
    cached: bool | None = None
    model_used: bool = False
    pointer: bool = False                # the pre-check asks for the 120 pointer after the model's answer
    gray: bool = False                   # the injection classifier's gray zone: an agreeing answer is refused
    stream: bool | None = None
    error: str | None = None
    ttft_ms: float | None = None
    answer_chars: int | None = None
    answer: str | None = None            # the answer as served (recorded for /feedback, serve/feedback.py)

    @classmethod
    def from_scope(cls, scope) -> "RequestContext":
        return cls(request_id=uuid.uuid4().hex[:16], method=scope["method"], path=scope["path"],
                   start=time.perf_counter())

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.start) * 1000, 2)

    def audit_record(self) -> dict:
        rec = {"request_id": self.request_id, "method": self.method, "path": self.path, "endpoint": self.endpoint,
               "status": self.status, "latency_ms": self.elapsed_ms()}
        if self.endpoint != "other":
            rec.update(question=self.question, action=self.action, rules=self.rules, cached=self.cached,
                       model_used=self.model_used, stream=self.stream, ttft_ms=self.ttft_ms,
                       answer_chars=self.answer_chars)
            if self.pii is not None:
                rec["pii"] = self.pii
        if self.error:
            rec["error"] = self.error
        return rec


def json_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def headers(ctx: RequestContext, content_type: bytes, length: int | None = None, extra: dict | None = None) -> list:
    h = [(b"content-type", content_type), (b"x-request-id", ctx.request_id.encode())]
    if length is not None:
        h.append((b"content-length", str(length).encode()))
    if ctx.cached is not None:
        h.append((b"x-medqa-cached", b"true" if ctx.cached else b"false"))
    for k, v in (extra or {}).items():
        h.append((k.encode(), v.encode()))
    return h


async def send_json(send, ctx: RequestContext, status: int, obj, extra: dict | None = None) -> None:
    body = obj if isinstance(obj, bytes) else json_bytes(obj)
    ctx.status = status
    await send({"type": "http.response.start", "status": status,
                "headers": headers(ctx, b"application/json", len(body), extra)})
    await send({"type": "http.response.body", "body": body})


async def send_sse(send, ctx: RequestContext, events: list[bytes]) -> None:
    ctx.status = 200
    await send({"type": "http.response.start", "status": 200,
                "headers": headers(ctx, b"text/event-stream; charset=utf-8", extra={"cache-control": "no-cache"})})
    for ev in events:
        await send({"type": "http.response.body", "body": ev, "more_body": True})
    await send({"type": "http.response.body", "body": b""})

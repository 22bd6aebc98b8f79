"""OpenAI chat-completion bodies built with LitServe's own response models, plus a rewriter for the
server-sent-event stream LitServe's ``OpenAISpec`` produces.

Every chat response carries an extra top-level ``medqa`` object (``{"safety": ..., "cached": ...,
"latency_ms": ...}``): in the JSON body for non-streaming calls and in the final chunk (the one with
``finish_reason: "stop"``) for streams. OpenAI clients ignore unknown fields."""
from __future__ import annotations

import json
from typing import Callable

from litserve.specs.openai import (ChatCompletionChunk, ChatCompletionResponse, ChatCompletionResponseChoice,
                                   ChatCompletionStreamingChoice, ChatMessage, ChoiceDelta, UsageInfo)


def _dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sse(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else _dumps(obj)) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def completion_body(model: str, content: str, medqa: dict, usage: dict | None = None) -> bytes:
    """``usage``: the model's token counts; zeros when no model ran (safety reply, cache hit)."""
    resp = ChatCompletionResponse(
        model=model, usage=UsageInfo(**(usage or {})),
        choices=[ChatCompletionResponseChoice(index=0, finish_reason="stop",
                                              message=ChatMessage(role="assistant", content=content))])
    body = resp.model_dump(mode="json")
    body["medqa"] = medqa
    return _dumps(body)


def _chunk(model: str, content: str | None, finish: str | None = None, role: str | None = None) -> dict:
    delta = ChoiceDelta(role=role, content=content) if (content is not None or role) else ChoiceDelta()
    chunk = ChatCompletionChunk(model=model, usage=None,
                                choices=[ChatCompletionStreamingChoice(index=0, delta=delta, finish_reason=finish)])
    return chunk.model_dump(mode="json")


def stream_events(model: str, content: str, medqa: dict) -> list[bytes]:
    """A complete stream for an answer that is ready at once (safety reply or cache hit)."""
    final = _chunk(model, None, finish="stop")
    final["usage"] = UsageInfo().model_dump()
    final["medqa"] = medqa
    return [sse(_chunk(model, content, role="assistant")), sse(final), SSE_DONE]


class StreamRewriter:
    """Rewrites LitServe's chat SSE stream on its way to the client.

    - content chunks pass through unchanged (chunks with an empty delta are dropped: they only
      mark rows of a batch that already finished);
    - before the final ``finish_reason: "stop"`` chunk, ``on_finish(streamed_text)`` is called; it
      returns ``(tail, medqa)``: ``tail`` (the safety post-check's addition) is sent as one more
      content chunk and ``medqa`` is attached to the final chunk;
    - error events pass through and are recorded in ``error``."""

    def __init__(self, on_finish: Callable[[str], tuple[str, dict]]):
        self.on_finish = on_finish
        self.content = ""
        self.finished = False
        self.error: str | None = None
        self.first_content_at: float | None = None
        self.usage: dict = {}
        self._buf = b""

    def feed(self, data: bytes, now: float = 0.0) -> bytes:
        self._buf += data
        out = []
        while b"\n\n" in self._buf:
            event, self._buf = self._buf.split(b"\n\n", 1)
            out.extend(self._event(event, now))
        return b"".join(out)

    def close(self) -> bytes:
        rest, self._buf = self._buf, b""
        return rest

    def _event(self, event: bytes, now: float) -> list[bytes]:
        payload = b"\n".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if not payload or payload == b"[DONE]":
            return [event + b"\n\n"]
        try:
            obj = json.loads(payload)
        except json.JSONDecodeError:
            return [event + b"\n\n"]
        if "error" in obj:
            self.error = str(obj["error"].get("message", obj["error"])) if isinstance(obj["error"], dict) \
                else str(obj["error"])
            return [event + b"\n\n"]
        choice = (obj.get("choices") or [{}])[0]
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        if choice.get("finish_reason") == "stop":
            self.finished = True
            self.usage = obj.get("usage") or {}
            tail, medqa = self.on_finish(self.content)
            obj["medqa"] = medqa
            events = []
            if tail:
                self.content += tail
                events.append(sse(_chunk(obj.get("model", ""), tail, role="assistant")))
            events.append(sse(obj))
            return events
        if not text:
            return []
        if self.first_content_at is None:
            self.first_content_at = now
        self.content += text
        return [event + b"\n\n"]

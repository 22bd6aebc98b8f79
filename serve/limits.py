"""Request limits and backpressure, enforced by the gateway before any work is done:

- body: at most ``max_body_bytes`` (413), fully received within ``body_timeout_s`` (408; a
  slow-loris client cannot hold a connection open by trickling its body), JSON nesting at most
  ``max_json_depth`` (400);
- ``InFlight``: at most ``max_in_flight`` requests waiting for the model at once (429 with
  Retry-After); pre-check replies and cache hits never count, so they stay instant under load;
- ``deadline``: a model call that takes longer than ``generation_timeout_s`` ends with 503."""
from __future__ import annotations

import asyncio
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from serve.errors import Rejected


@dataclass(frozen=True)
class Limits:
    max_question_chars: int
    max_new_tokens: int
    max_body_bytes: int = 1 << 20
    max_prompt_tokens: int = 1536
    body_timeout_s: float = 10.0
    max_json_depth: int = 32


async def read_body(receive, limits: Limits, on_disconnect: type[Exception]) -> bytes:
    """The whole request body; 413 when too large, 408 when not complete within ``body_timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout_s if limits.body_timeout_s > 0 else None
    chunks, size = [], 0
    while True:
        remaining = None if deadline is None else deadline - loop.time()
        try:
            if remaining is not None and remaining <= 0:
                raise asyncio.TimeoutError
            msg = await asyncio.wait_for(receive(), remaining)
        except asyncio.TimeoutError:
            raise Rejected(408, f"the request body was not received within {limits.body_timeout_s:g} s "
                                "(serve.body_timeout_s)", "body_timeout", headers={"connection": "close"}) from None
        if msg["type"] == "http.disconnect":
            raise on_disconnect()
        size += len(msg.get("body", b""))
        if size > limits.max_body_bytes:
            raise Rejected(413, f"request body is larger than {limits.max_body_bytes} bytes", "body_too_large",
                           headers={"connection": "close"})
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


def structure_problem(obj: Any, depth_limit: int) -> str | None:
    """``"too_deep"`` when containers nest deeper than ``depth_limit``, ``"bad_unicode"`` when a string
    or key holds a lone surrogate (legal as a JSON escape, not encodable as UTF-8: every later
    encode — the model call, the response, the audit line — would fail), else None. Iterative: no
    recursion on hostile input."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError:
                    return "bad_unicode"
        elif isinstance(node, (dict, list)):
            if depth > depth_limit:
                return "too_deep"
            if isinstance(node, dict):
                stack.extend((k, depth) for k in node)
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)
    return None


def parse_json(body: bytes, limits: Limits) -> Any:
    if len(body) > limits.max_body_bytes:
        raise Rejected(413, f"request body is {len(body)} bytes; the limit is {limits.max_body_bytes}",
                       "body_too_large")
    if not body.strip():
        raise Rejected(400, "request body is empty; send a JSON object", "invalid_json")
    too_deep = Rejected(400, f"request body nests JSON deeper than {limits.max_json_depth} levels", "json_too_deep")
    try:
        payload = json.loads(body)
    except RecursionError:
        raise too_deep from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        # the decoder's message names a position (and for bad UTF-8 one byte value), never the content
        raise Rejected(400, f"request body is not valid JSON: {err}",
                       "invalid_json") from None
    problem = structure_problem(payload, limits.max_json_depth)
    if problem == "too_deep":
        raise too_deep
    if problem == "bad_unicode":
        raise Rejected(400, "request body holds a string with an unpaired surrogate escape (e.g. \\ud800); "
                            "send valid Unicode", "invalid_unicode")
    return payload


class InFlight:
    """Counts requests waiting for the model (one event loop: no lock needed). ``retry_after_s``
    follows the recent model-call duration (exponential average), between 1 and 60 s."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0
        self._avg_s: float | None = None

    @property
    def retry_after_s(self) -> int:
        return int(min(60, max(1, math.ceil(self._avg_s or 1))))

    @contextmanager
    def slot(self):
        if self.limit and self.count >= self.limit:
            raise Rejected(429, f"the server is busy: {self.count} requests are already waiting for the model "
                                f"(serve.max_in_flight); retry after {self.retry_after_s} s", "overloaded",
                           headers={"retry-after": str(self.retry_after_s)})
        self.count += 1
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            yield
        finally:
            self.count -= 1
            took = loop.time() - t0
            self._avg_s = took if self._avg_s is None else 0.8 * self._avg_s + 0.2 * took

    def deadline_error(self, seconds: float) -> Rejected:
        return Rejected(503, f"the model did not finish within {seconds:g} s (serve.generation_timeout_s); "
                             "retry later", "deadline_exceeded", headers={"retry-after": str(self.retry_after_s)})

"""Service feedback (issue 15): every served answer is recorded by request_id, ``POST /feedback``
takes 👍/👎 with an optional corrected answer and comment, and the review queue is fed — answers
whose post-check fired a ``risky:`` rule and every 👎. Storage: stages/humanloop/feedback_store.py
(SQLite, WAL, ``serve.feedback_db``); everything stored is PII-masked first.

``POST /feedback`` body: ``{"request_id": "<id from the answer>", "rating": "up"|"down",
"correction": "<optional corrected answer>", "comment": "<optional>"}`` — same API key as the
other routes; 400 bad JSON, 413 too large, 422 bad field, 404 unknown request_id, 201 stored."""
from __future__ import annotations

import asyncio
import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serve.errors import Rejected, error_body
from stages.humanloop.feedback_store import FeedbackStore, NotFound

logger = logging.getLogger("serve.feedback")

MAX_BODY = 16_384
MAX_CORRECTION = 4000
MAX_COMMENT = 1000
REQUEST_ID = re.compile(r"^[0-9a-f]{8,64}$")
ANSWER_ENDPOINTS = ("predict", "chat")


def error_response(err: Rejected) -> JSONResponse:
    return JSONResponse(error_body(err.message, err.code, err.kind), status_code=err.status, headers=err.headers)


async def read_object(request: Request, allowed: set[str]) -> dict:
    """The JSON object body, or Rejected (400/413/422) naming the problem."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Rejected(413, f"request body is {len(body)} bytes; the limit is {MAX_BODY}", "body_too_large")
    try:
        obj = json.loads(body) if body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Rejected(400, f"request body is not valid JSON: {err}", "invalid_json") from None
    if not isinstance(obj, dict):
        raise Rejected(400, "request body must be a JSON object", "invalid_json")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise Rejected(422, f"unknown field(s) {unknown}; allowed: {sorted(allowed)}", "unknown_field")
    return obj


def optional_text(obj: dict, name: str, limit: int) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise Rejected(422, f"{name} must be a string", "invalid_field")
    if len(v) > limit:
        raise Rejected(422, f"{name} is {len(v)} characters; the limit is {limit}", "invalid_field")
    return v.strip() or None


def parse_feedback(obj: dict) -> dict:
    rid = obj.get("request_id")
    if not isinstance(rid, str) or not REQUEST_ID.match(rid):
        raise Rejected(422, "request_id must be the answer's request_id (hex string, from the response's "
                            "request_id / X-Request-Id)", "invalid_field")
    if obj.get("rating") not in ("up", "down"):
        raise Rejected(422, "rating must be \"up\" or \"down\"", "invalid_field")
    return {"request_id": rid, "rating": obj["rating"], "correction": optional_text(obj, "correction", MAX_CORRECTION),
            "comment": optional_text(obj, "comment", MAX_COMMENT)}


class AnswerRecorder:
    """Used by the gateway: store each served answer so feedback can refer to it by request_id."""

    def __init__(self, db_path: str | None):
        self.store = FeedbackStore(db_path) if db_path else None

    async def record(self, ctx) -> None:
        if self.store is None or ctx.endpoint not in ANSWER_ENDPOINTS or ctx.status != 200 or ctx.answer is None:
            return
        try:
            await asyncio.to_thread(self.store.record_answer, ctx.request_id, ctx.endpoint, ctx.question or "",
                                    ctx.answer, list(ctx.rules), ctx.action, bool(ctx.cached))
        except Exception:  # the feedback store failing must not fail the request (already answered)
            logger.exception("could not record answer %s for feedback", ctx.request_id)


def install_feedback(app: FastAPI, db_path: str | None) -> None:
    """``POST /feedback`` (auth is the gateway's, as for every non-open route)."""
    if not db_path:
        return
    store = FeedbackStore(db_path).init()   # created (WAL) on start

    @app.post("/feedback", include_in_schema=False)
    async def feedback(request: Request) -> JSONResponse:
        try:
            fb = parse_feedback(await read_object(request, {"request_id", "rating", "correction", "comment"}))
            try:
                res = await asyncio.to_thread(store.add_feedback, **fb)
            except NotFound:
                raise Rejected(404, f"no answer with request_id {fb['request_id']} on this server", "unknown_request_id")
        except Rejected as err:
            return error_response(err)
        return JSONResponse({"ok": True, "request_id": fb["request_id"], **res}, status_code=201)

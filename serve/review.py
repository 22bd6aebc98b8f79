"""Reviewer page ``GET /review`` (serve/static/review.html) and its API, behind a separate reviewer
key (env var ``serve.reviewer_key_env``, default MEDQA_REVIEWER_KEY; unset = the API answers 403):

- ``GET /review/api/queue?status=open|approved|corrected|dismissed`` → ``{"items": [...]}`` with the
  question, answer, rules fired, why it is queued, and the users' feedback;
- ``POST /review/api/decide`` ``{"request_id", "action": "approve"|"correct"|"dismiss", "reviewer",
  "answer" (correct), "category" (optional)}``. approve takes the user's latest suggested correction
  (none: the answer is confirmed as is); correct takes the reviewer's answer; dismiss discards.

The gateway lets /review* through without the API key (serve/auth.py); this module checks the
reviewer key (``Authorization: Bearer <key>`` or ``X-API-Key``)."""
from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from serve.auth import key_ok
from serve.feedback import MAX_CORRECTION, error_response, optional_text, read_object
from serve.errors import Rejected
from stages.humanloop.feedback_store import DECISIONS, FeedbackStore, NotFound

STATUSES = ("open", "approved", "corrected", "dismissed")


def _check_key(request: Request, reviewer_key: str | None, env_name: str) -> None:
    if reviewer_key is None:
        raise Rejected(403, f"review is disabled on this server: set the reviewer key in ${env_name}", "review_disabled")
    headers = {k.lower(): v for k, v in request.headers.items()}
    if not key_ok(reviewer_key, headers):
        raise Rejected(401, "missing or invalid reviewer key", "invalid_reviewer_key")


def install_review(app: FastAPI, db_path: str | None, reviewer_key: str | None, env_name: str, static_dir) -> None:
    @app.get("/review", include_in_schema=False)
    async def review_page() -> FileResponse:
        return FileResponse(static_dir / "review.html", media_type="text/html; charset=utf-8")

    if not db_path:
        return
    store = FeedbackStore(db_path)

    @app.get("/review/api/queue", include_in_schema=False)
    async def queue(request: Request) -> JSONResponse:
        try:
            _check_key(request, reviewer_key, env_name)
            status = request.query_params.get("status", "open")
            if status not in STATUSES:
                raise Rejected(422, f"status must be one of {list(STATUSES)}", "invalid_field")
            items = await asyncio.to_thread(store.queue, status)
        except Rejected as err:
            return error_response(err)
        return JSONResponse({"items": items})

    @app.post("/review/api/decide", include_in_schema=False)
    async def decide(request: Request) -> JSONResponse:
        try:
            _check_key(request, reviewer_key, env_name)
            obj = await read_object(request, {"request_id", "action", "reviewer", "answer", "category"})
            if not isinstance(obj.get("request_id"), str) or not obj["request_id"]:
                raise Rejected(422, "request_id must be a non-empty string", "invalid_field")
            if obj.get("action") not in DECISIONS:
                raise Rejected(422, f"action must be one of {list(DECISIONS)}", "invalid_field")
            reviewer = optional_text(obj, "reviewer", 64)
            if reviewer is None:
                raise Rejected(422, "reviewer (your name) is required", "invalid_field")
            answer = optional_text(obj, "answer", MAX_CORRECTION)
            if obj["action"] == "correct" and not answer:
                raise Rejected(422, "answer is required to correct", "invalid_field")
            category = optional_text(obj, "category", 32)
            try:
                res = await asyncio.to_thread(store.decide, obj["request_id"], obj["action"], reviewer,
                                              answer if obj["action"] == "correct" else None, category)
            except NotFound:
                raise Rejected(404, f"request_id {obj['request_id']} is not in the review queue", "unknown_request_id")
        except Rejected as err:
            return error_response(err)
        return JSONResponse({"ok": True, **res})

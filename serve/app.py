"""Assemble the LitServer: the model API (serve/api.py), the gateway middleware (serve/gateway.py)
and the static chat page at / (serve/static/)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import hmac
import logging

import litserve as ls
import litserve.server as ls_server
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from serve.api import ModelAPI
from serve.feedback import install_feedback
from serve.review import install_review
from serve.gateway import Gateway
from serve.monitoring import prepare_metrics_dir
from serve.settings import ServeSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_page(app: FastAPI) -> None:
    """Replace LitServe's plain-text ``GET /`` with the chat page and serve its static files."""
    app.router.routes[:] = [r for r in app.router.routes
                            if not (getattr(r, "path", None) == "/" and "GET" in (getattr(r, "methods", None) or ()))]

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


class MedQAServer(ls.LitServer):
    """LitServer with a constant-time check of the shutdown token (LitServe compares it with ``!=``)."""

    def shutdown_api_key_auth(self, shutdown_api_key: str = Depends(ls_server.oauth2_scheme)):
        expected = ls_server.SHUTDOWN_API_KEY
        if not expected or not hmac.compare_digest(shutdown_api_key.encode(), expected.encode()):
            raise HTTPException(401, "Invalid Bearer token for Shutdown API. Send 'Authorization: Bearer "
                                     "<LIT_SHUTDOWN_API_KEY>'.")


def document_predict(app: FastAPI) -> None:
    """``POST /predict`` is answered by the gateway middleware, not a FastAPI route: add it to the
    OpenAPI schema (/docs, /openapi.json; the fuzz test generates requests from it)."""
    from serve.questions import PredictBody

    base = app.openapi

    def openapi() -> dict:
        if not app.openapi_schema:
            schema = base()
            body = PredictBody.model_json_schema()
            err = {"description": "error", "content": {"application/json": {"schema": {"type": "object"}}}}
            schema["paths"]["/predict"] = {"post": {
                "summary": "Answer one question (safety pre-check, cache, model, post-check)",
                "operationId": "predict",
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {"200": {"description": "the answer", "content": {"application/json": {
                    "schema": {"type": "object"}}}}, **{str(c): err for c in (400, 401, 408, 413, 422, 429, 503)}}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def build_server(settings: ServeSettings, api_cls=ModelAPI) -> ls.LitServer:
    """One model API → one inference worker holding one copy of the model; /predict and chat both
    reach it through the gateway, so their requests are batched together. A worker that dies is
    restarted (``restart_workers``); the gateway keeps answering pre-check replies meanwhile."""
    apis = [api_cls(settings.model, max_batch_size=settings.max_batch_size, batch_timeout=settings.batch_timeout)]
    timeout = settings.request_timeout_s if settings.request_timeout_s > 0 else False
    gateway = settings.gateway()        # + a fresh directory for the worker's metrics (serve/monitoring.py)
    gateway = replace(gateway, monitor=replace(gateway.monitor, metrics_dir=prepare_metrics_dir(gateway.monitor.window)))
    ls_log = logging.getLogger(ls_server.__name__)
    level = ls_log.level
    ls_log.setLevel(max(logging.WARNING, ls_log.getEffectiveLevel()))   # it logs a curl line with the shutdown token
    try:
        server = MedQAServer(
            apis, accelerator="auto", workers_per_device=1, timeout=timeout, restart_workers=True,
            enable_shutdown_api=settings.enable_shutdown_api,
            middlewares=[(Gateway, {"settings": gateway})],
            model_metadata=settings.describe())
    finally:
        ls_log.setLevel(level)
    install_page(server.app)
    document_predict(server.app)
    install_feedback(server.app, settings.feedback_db)
    install_review(server.app, settings.feedback_db, settings.reviewer_key, settings.reviewer_key_env, STATIC_DIR)
    return server

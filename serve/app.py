"""Assemble the LitServer: the model API (serve/api.py), the gateway middleware (serve/gateway.py)
and the static chat page at / (serve/static/)."""
from __future__ import annotations

from pathlib import Path

import litserve as ls
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from serve.api import ModelAPI
from serve.gateway import Gateway
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


def build_server(settings: ServeSettings, api_cls=ModelAPI) -> ls.LitServer:
    """One model API → one inference worker holding one copy of the model; /predict and chat both
    reach it through the gateway, so their requests are batched together."""
    apis = [api_cls(settings.model, max_batch_size=settings.max_batch_size, batch_timeout=settings.batch_timeout)]
    timeout = settings.request_timeout_s if settings.request_timeout_s > 0 else False
    server = ls.LitServer(
        apis, accelerator="auto", workers_per_device=1, timeout=timeout,
        enable_shutdown_api=settings.enable_shutdown_api,
        middlewares=[(Gateway, {"settings": settings.gateway()})],
        model_metadata=settings.describe())
    install_page(server.app)
    return server

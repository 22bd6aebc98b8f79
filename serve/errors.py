"""Error replies: ``Rejected`` (raised anywhere in request handling, answered by the gateway with
its status) and the OpenAI-style error body ``{"error": {"message", "type", "code"}}``.
Messages never carry raw client content (serve/privacy.py ``echo`` for what must be named)."""
from __future__ import annotations


class Rejected(Exception):
    """A request answered with an error status and a clear message: 4xx for anything wrong with the
    request, 429 when overloaded, 503 when the model cannot answer. ``headers``: extra response
    headers (e.g. Retry-After)."""

    def __init__(self, status: int, message: str, code: str = "invalid_request", headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}

    @property
    def kind(self) -> str:
        if self.status == 429:
            return "rate_limit_error"
        return "server_error" if self.status >= 500 else "invalid_request_error"


def error_body(message: str, code: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}

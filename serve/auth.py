"""API-key check. The key comes from the environment variable named by ``serve.api_key_env``
(or ``--api-key-env``); when that variable is unset or empty, auth is off — allowed only on the
loopback address (``require_key_off_loopback``: the CLI refuses to start otherwise).
Keys are compared in constant time (``hmac.compare_digest``).
Clients send ``Authorization: Bearer <key>`` (what the openai client does) or ``X-API-Key: <key>``."""
from __future__ import annotations

import hmac
import os

# Paths served without a key: the health probe and the static chat page (the page itself asks for
# the key and sends it with each API call). /shutdown has LitServe's own Bearer-token check.
# /review* is open to the gateway's API-key check: serve/review.py checks the separate reviewer key.
OPEN_PATHS = frozenset({"/", "/health", "/favicon.ico", "/shutdown", "/review"})
OPEN_PREFIXES = ("/static/", "/review/")


def key_from_env(env_name: str) -> str | None:
    value = os.environ.get(env_name, "")
    return value or None


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a request presents (header names lower-case)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


def key_ok(expected: str | None, headers: dict[str, str]) -> bool:
    if expected is None:
        return True
    got = presented_key(headers)
    return got is not None and hmac.compare_digest(got.encode(), expected.encode())


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def require_key_off_loopback(host: str, api_key: str | None, env_name: str) -> str | None:
    """The reason not to start (a message for the operator), or None when the binding is safe."""
    if api_key is None and host not in LOOPBACK_HOSTS:
        return (f"serve: refusing to listen on {host} without an API key: anyone who can reach this address "
                f"could use the API. Set the environment variable {env_name} (serve.api_key_env / "
                f"--api-key-env) to a secret key, or bind --host 127.0.0.1.")
    return None

"""Question understanding for both endpoints: parse and validate the request body, pull out the
question, and turn it into model input (``normalize`` + ``mask_pii`` from stages/data/text.py — the same
cleaning the training data got, and the model never sees a phone number or ID).

Every problem raises ``Rejected`` with a 4xx status and a message that names the field; nothing
the client sends can produce a 500."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stages.data.text import mask_pii, normalize


class Rejected(Exception):
    """A request answered with an error status and a clear message: 4xx for anything wrong with the
    request; the gateway also uses it for 503 when the model is disabled."""

    def __init__(self, status: int, message: str, code: str = "invalid_request"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Limits:
    max_question_chars: int
    max_new_tokens: int
    max_body_bytes: int = 1 << 20


@dataclass
class Question:
    raw: str                      # as sent (only ever logged through mask_pii)
    text: str                     # normalised + PII-masked: model input and cache key
    max_new_tokens: int
    stream: bool = False
    model_name: str = ""
    pii: dict[str, int] = field(default_factory=dict)


def _validation_message(err: ValidationError) -> str:
    # loc + msg only: pydantic's "input" would echo user content into responses and logs
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_json(body: bytes, limits: Limits) -> Any:
    if len(body) > limits.max_body_bytes:
        raise Rejected(413, f"request body is {len(body)} bytes; the limit is {limits.max_body_bytes}",
                         "body_too_large")
    if not body.strip():
        raise Rejected(400, "request body is empty; send a JSON object", "invalid_json")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Rejected(400, f"request body is not valid JSON: {err}", "invalid_json") from None


def _make_question(raw: str, limits: Limits, **kw) -> Question:
    stripped = raw.strip()
    if not stripped:
        raise Rejected(422, "question is empty", "empty_question")
    if len(stripped) > limits.max_question_chars:
        raise Rejected(422, f"question is too long: {len(stripped)} characters, the limit is "
                              f"{limits.max_question_chars} (serve.max_question_chars)", "question_too_long")
    text, counts = mask_pii(normalize(stripped))
    if not text:
        raise Rejected(422, "question is empty after normalisation", "empty_question")
    return Question(raw=stripped, text=text, pii=counts, **kw)


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    question: str


def predict_question(payload: Any, limits: Limits) -> Question:
    """``POST /predict`` body: ``{"question": "..."}``."""
    if not isinstance(payload, dict):
        raise Rejected(422, 'request body must be a JSON object like {"question": "..."}', "invalid_body")
    try:
        body = PredictBody.model_validate(payload)
    except ValidationError as err:
        raise Rejected(422, _validation_message(err), "invalid_body") from None
    return _make_question(body.question, limits, max_new_tokens=limits.max_new_tokens)


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if getattr(part, "type", None) != "text":
            raise Rejected(422, f"only text message content is supported, got a {part.type!r} part",
                             "unsupported_content")
        texts.append(part.text)
    return "\n".join(texts)


def chat_question(payload: Any, limits: Limits) -> Question:
    """OpenAI chat body. The model is single-turn: the last user message is the question; the
    system prompt is the one the model was trained with (params ``prompt.system``), so client
    system messages and earlier turns are not sent to the model. Decoding is always greedy."""
    from litserve.specs.openai import ChatCompletionRequest

    if not isinstance(payload, dict):
        raise Rejected(422, "request body must be a JSON object (an OpenAI chat completion request)",
                         "invalid_body")
    try:
        req = ChatCompletionRequest.model_validate(payload)
    except ValidationError as err:
        raise Rejected(422, _validation_message(err), "invalid_body") from None
    if req.n not in (None, 1):
        raise Rejected(422, "n must be 1 (decoding is greedy, every choice would be identical)", "invalid_n")
    if req.tools:
        raise Rejected(422, "tools are not supported by this model", "unsupported_tools")
    users = [m for m in req.messages if m.role == "user"]
    if not users:
        raise Rejected(422, "messages must contain a message with role 'user'", "no_user_message")
    raw = _text_of(users[-1].content)
    cap = limits.max_new_tokens
    asked = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if asked is not None and not 1 <= asked <= cap:
        raise Rejected(422, f"max_tokens must be between 1 and {cap} (serve.max_new_tokens), got {asked}",
                         "invalid_max_tokens")
    return _make_question(raw, limits, max_new_tokens=asked or cap, stream=bool(req.stream),
                          model_name=req.model or "medqa")

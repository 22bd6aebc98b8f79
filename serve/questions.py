"""Question understanding for both endpoints: parse and validate the request body, pull out the
question, and turn it into model input (normalise, then mask: serve/privacy.py — the same cleaning
the training data got, and the model never sees a phone number or ID).

Every problem raises ``Rejected`` with a 4xx status and a message that names the field; nothing
the client sends can produce a 500."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from serve.errors import Rejected
from serve.limits import Limits, parse_json
from serve.privacy import clean, echo

__all__ = ["Rejected", "Limits", "parse_json", "Question", "predict_question", "chat_question", "PromptBudget"]


RAW_FACTOR = 10


@dataclass
class Question:
    raw: str                      # as sent: never logged, stored or echoed
    text: str                     # normalised + PII-masked (serve/privacy.py): model input, cache key, audit
    max_new_tokens: int
    stream: bool = False
    model_name: str = ""
    pii: dict[str, int] = field(default_factory=dict)


def _validation_message(err: ValidationError) -> str:
    # loc + msg only: pydantic's "input" would echo user content; loc parts can be client-chosen
    # keys (an extra field named like a phone number), so they are masked too
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) if isinstance(p, int) or str(p).isidentifier() else echo(p)
                       for p in e["loc"]) or "body"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts[:5]) + (f"; … {len(parts) - 5} more" if len(parts) > 5 else "")


def _make_question(raw: str, limits: Limits, **kw) -> Question:
    """Normalise first (NFKC can expand a character 18-fold, e.g. U+FDFA), then check the length
    of what the model would really get, then mask. Text more than ``RAW_FACTOR`` times the limit is
    refused before normalising (normalisation shrinks text by far less than that)."""
    limit = limits.max_question_chars
    if len(raw) > RAW_FACTOR * limit:
        raise Rejected(422, f"question is too long: {len(raw)} characters as sent, the limit is {limit} "
                            "(serve.max_question_chars)", "question_too_long")
    text, counts = clean(raw)
    if not text:
        raise Rejected(422, "question is empty (after normalisation)", "empty_question")
    if len(text) > limit:
        raise Rejected(422, f"question is too long: {len(text)} characters, the limit is {limit} "
                            "(serve.max_question_chars, counted after normalisation)", "question_too_long")
    return Question(raw=raw, text=text, pii=counts, **kw)


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
    from litserve.specs.openai import TextContent

    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, TextContent) or part.type != "text":
            raise Rejected(422, f"only text message content is supported: content part {i} has type "
                                f"{echo(getattr(part, 'type', None))} (expected 'text' with a 'text' field)",
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


class PromptBudget:
    """Caps the model's prompt (system prompt + question, as stages/model/prompt.py builds it) at
    ``max_prompt_tokens``: a short text of rare characters can still be thousands of tokens.
    Runs in the API-server process with the model's own tokenizer (loaded once)."""

    def __init__(self, tokenizer_path: str, system: str, max_tokens: int):
        from stages.model.modeling import load_tokenizer

        self.tokenizer = load_tokenizer(tokenizer_path)
        self.system = system
        self.max_tokens = max_tokens

    def count(self, question: str) -> int:
        from stages.model.prompt import render_prompt

        text = render_prompt(self.tokenizer, question, self.system)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check(self, q: Question) -> int:
        n = self.count(q.text)
        if n > self.max_tokens:
            raise Rejected(422, f"question is too long: the prompt would be {n} tokens, the limit is "
                                f"{self.max_tokens} (serve.max_prompt_tokens)", "prompt_too_long")
        return n

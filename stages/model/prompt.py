"""The one place that turns a question into model input. train, evaluate and serve all call it,
so the model is always prompted exactly as it was trained.

User-derived text (questions, and answers from training data) goes through ``strip_special_tokens``
before the chat template: it is normalised (``&lt;|im_end|&gt;``, full-width ``＜｜im_start｜＞`` and
zero-width tricks become plain ``<|im_end|>``) and every special/added token string of the tokenizer is
removed, to a fixed point, so no token id the tokenizer reserves (``<|im_start|>``, ``<|im_end|>``,
``<|endoftext|>``, ``<|fim_*|>``, ``<tool_call>`` …) can come from user content."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from stages.data.text import MAX_ROUNDS, normalize

IGNORE_INDEX = -100
# any <|name|> control-token spelling, also ones this tokenizer does not define
_CONTROL_LIKE = r"<\|[A-Za-z0-9_\-]{1,40}\|>"


def special_token_strings(tokenizer) -> tuple[str, ...]:
    """Every special and added token string of ``tokenizer`` (longest first)."""
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    tokens |= {str(t) for t in decoder.values()}
    return tuple(sorted((t for t in tokens if t), key=lambda t: (-len(t), t)))


@lru_cache(maxsize=16)
def _special_re(tokens: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join([*map(re.escape, tokens), _CONTROL_LIKE]))


def strip_special_tokens(tokenizer, text: str) -> str:
    """``text`` normalised with every special-token string removed, repeated until nothing changes
    (removing ``<|im_end|>`` from ``<|im_<|im_end|>start|>`` must not leave ``<|im_start|>``)."""
    pattern = _special_re(special_token_strings(tokenizer))
    for _ in range(MAX_ROUNDS):
        new = normalize(pattern.sub("", normalize(text)))
        if new == text:
            break
        text = new
    return text


def build_messages(question: str, system: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def render_prompt(tokenizer, question: str, system: str) -> str:
    """Chat-template text up to and including the assistant header."""
    return tokenizer.apply_chat_template(build_messages(strip_special_tokens(tokenizer, question), system),
                                         tokenize=False, add_generation_prompt=True)


def render_completion(tokenizer, question: str, answer: str, system: str) -> str:
    """Text that follows the prompt for a full (question, answer) conversation (answer + end tokens)."""
    prompt = render_prompt(tokenizer, question, system)
    full = tokenizer.apply_chat_template(
        build_messages(strip_special_tokens(tokenizer, question), system)
        + [{"role": "assistant", "content": strip_special_tokens(tokenizer, answer)}], tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("chat template does not extend the generation prompt; cannot mask labels")
    return full[len(prompt):]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]            # IGNORE_INDEX on prompt tokens: loss only on answer tokens
    truncated: bool              # answer tokens were cut to fit max_len
    answer_tokens: int           # answer tokens before truncation


def encode_example(tokenizer, question: str, answer: str, system: str, max_len: int,
                   min_answer_tokens: int = 16) -> Encoded:
    """Tokenise prompt and completion separately (so the boundary is exact) and build labels.
    Over-long examples keep the prompt and cut the answer; if the prompt itself is too long the
    question is cut from its start side so at least ``min_answer_tokens`` answer tokens remain."""
    prompt_ids = tokenizer(render_prompt(tokenizer, question, system), add_special_tokens=False)["input_ids"]
    comp_ids = tokenizer(render_completion(tokenizer, question, answer, system),
                         add_special_tokens=False)["input_ids"]
    n_answer = len(comp_ids)
    truncated = len(prompt_ids) + len(comp_ids) > max_len
    if truncated:
        room = max(max_len - len(prompt_ids), min(min_answer_tokens, max_len // 2))
        comp_ids = comp_ids[:room]
        if len(prompt_ids) + len(comp_ids) > max_len:
            # keep the template head (system prompt) and the tail (assistant header) of the prompt
            keep = max_len - len(comp_ids)
            head = keep // 2
            prompt_ids = prompt_ids[:head] + prompt_ids[len(prompt_ids) - (keep - head):]
    return Encoded(list(prompt_ids) + list(comp_ids),
                   [IGNORE_INDEX] * len(prompt_ids) + list(comp_ids), truncated, n_answer)


def encode_prompts(tokenizer, questions: list[str], system: str, max_len: int | None = None):
    """Left-padded batch for generation (``return_tensors='pt'``)."""
    texts = [render_prompt(tokenizer, q, system) for q in questions]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        kw = {"truncation": True, "max_length": max_len} if max_len else {}
        return tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False, **kw)
    finally:
        tokenizer.padding_side = side

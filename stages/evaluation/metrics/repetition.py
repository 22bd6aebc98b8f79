"""Repetition metrics: does an answer loop, and how varied is it.

**Loop** (``loop_rate`` = share of answers that loop). Whitespace is removed; punctuation is kept
(it is part of the loop in "乏力、乏力、乏力、"). An answer loops when it contains a *tandem repeat*:
a unit ``u`` of ``MIN_UNIT``–``MAX_UNIT`` (2–40) characters occurring at least ``MIN_REPEATS`` (3)
times back to back (``uuu``), the repeated run covering at least ``MIN_RUN_CHARS`` (12) characters.
So "乏力、" ×4 (12 chars), "高钠、高钾、" ×3, "鼻窦炎、鼻窦穿孔、" ×3 loop; one-character runs
("哈哈哈", "……") do not, and neither does an ordinary sentence repeated twice. A run is found per
period ``p``: ``k`` consecutive positions with ``t[i] == t[i + p]`` mean a stretch of ``k + p``
characters with period ``p``, i.e. ``(k + p) / p`` repeats.
An answer also loops when it **drifts**: under ``no_repeat_ngram_size`` a looping model varies each copy
("甲状腺功能减一、甲状腺功能减二、…", "咯红色带血、咯绿色带血、…"), which has no exact tandem repeat. So
``self_repeat`` — the share of an answer's character 4-grams (punctuation dropped) that already occurred
earlier in it — above ``MAX_SELF_REPEAT`` (0.15) also counts as a loop, for answers of at least
``MIN_SELF_REPEAT_GRAMS`` 4-grams. Measured on human answers: the authored corpus' 1,362 answers reach at most
0.075 (session 14); of the 7,644 real doctor answers in ../shared/data (cmd_internal_medicine) 99 % are ≤ 0.131 and
0.7 % exceed 0.15 (tests/test_repetition.py).

**distinct-n** (``distinct_1``, ``distinct_2``): per answer, distinct character n-grams / all
character n-grams (whitespace and punctuation dropped, as for ROUGE(char)), averaged over answers
that have at least n characters. A looping answer scores low."""
from __future__ import annotations

from dataclasses import dataclass

from stages.evaluation.metrics.overlap import CharTokenizer

MIN_UNIT, MAX_UNIT = 2, 40
MIN_REPEATS = 3
MIN_RUN_CHARS = 12
SELF_REPEAT_N = 4
MAX_SELF_REPEAT = 0.15
MIN_SELF_REPEAT_GRAMS = 20


@dataclass(frozen=True)
class Repeat:
    unit: str        # the repeated unit ("" when none)
    repeats: float   # how many times it occurs back to back (fractional: a partial last copy)
    chars: int       # characters covered by the run


def longest_repeat(text: str) -> Repeat:
    """The tandem repeat (period 2–40, ≥ 2 copies) covering the most characters of ``text``."""
    t = "".join(text.split())
    best = Repeat("", 0.0, 0)
    for p in range(MIN_UNIT, min(MAX_UNIT, len(t) // 2) + 1):
        run = 0
        for i in range(len(t) - p):
            run = run + 1 if t[i] == t[i + p] else 0
            if run >= p and run + p > best.chars and len(set(t[i - p + 1:i + 1])) > 1:   # ≥ 2 full copies
                start = i - run + 1
                best = Repeat(t[start:start + p], (run + p) / p, run + p)
    return best


def self_repeat(text: str, n: int = SELF_REPEAT_N) -> float | None:
    """Share of the answer's character n-grams (punctuation and whitespace dropped) that repeat an earlier
    one; None when it has fewer than ``MIN_SELF_REPEAT_GRAMS`` of them (too short to judge)."""
    grams = _char_ngrams(text, n)
    if len(grams) < MIN_SELF_REPEAT_GRAMS:
        return None
    return 1.0 - len(set(grams)) / len(grams)


def is_loop(text: str) -> bool:
    """True when ``text`` holds a unit of 2–40 characters repeated ≥ 3 times back to back over ≥ 12 chars,
    or when it drifts: ``self_repeat`` above ``MAX_SELF_REPEAT``."""
    return _loops(text, self_repeat(text))


def _loops(text: str, sr: float | None) -> bool:
    """``is_loop`` given the answer's ``self_repeat`` (computed once by ``repetition_scores``)."""
    return (sr is not None and sr > MAX_SELF_REPEAT) or _tandem_loop(text)


def _tandem_loop(text: str) -> bool:
    t = "".join(text.split())
    for p in range(MIN_UNIT, min(MAX_UNIT, len(t) // MIN_REPEATS) + 1):
        need = max((MIN_REPEATS - 1) * p, MIN_RUN_CHARS - p)   # run + p ≥ 3p and ≥ 12
        run = 0
        for i in range(len(t) - p):
            run = run + 1 if t[i] == t[i + p] else 0
            if run >= need and len(set(t[i - p + 1:i + 1])) > 1:   # one-character runs are not loops
                return True
    return False


_CHARS = CharTokenizer()


def _char_ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    """The answer's character n-grams, whitespace and punctuation dropped (as for ROUGE(char))."""
    toks = _CHARS.tokenize(text)
    return [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]


def distinct_n(text: str, n: int) -> float | None:
    """Distinct / total character n-grams of one answer (None when it has fewer than n characters)."""
    grams = _char_ngrams(text, n)
    return len(set(grams)) / len(grams) if grams else None


def repetition_scores(text: str) -> dict:
    """Per-answer: ``loop`` (bool), ``repeat_chars`` (longest tandem run), ``distinct_1``/``distinct_2``
    (absent when the answer is too short)."""
    sr = self_repeat(text)
    out = {"loop": _loops(text, sr), "repeat_chars": longest_repeat(text).chars}
    if sr is not None:
        out["self_repeat"] = round(sr, 4)
    for n in (1, 2):
        d = distinct_n(text, n)
        if d is not None:
            out[f"distinct_{n}"] = d
    return out

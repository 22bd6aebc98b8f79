"""Names without a cue the rules know: a learned scorer over name-shaped spans (session 24).

The rules of ``stages.safety.pii_names`` find a name where a cue they list stands next to it; a name written
without one ("康建新这周血压又高了", "下午陪孙桂兰去拿药") was lost. After the rules, every remaining span with a name's
shape (a surname + 1–2 characters, ``pii_name_cues.shape``) is scored by a logistic regression over its surroundings
— up to four characters before and three after (digits and Latin letters folded to one class each), the surname,
the given-name characters and whether they are common in names, jieba's tags and counts for the span and its parts,
whether it would split a jieba word at either edge, the start of a clause, and the rules' own cue and after-cue
patterns — and masked when p ≥ the threshold stored with the weights. Overlapping spans: the higher score wins.

The weights (``pii_name_weights.json``, plain JSON, reviewed like code) are fitted by
``python -m stages.safety.pii_name_fit``: names labelled in the development fixtures (tests/fixtures/pii/*_dev.jsonl)
are the positives; every other name-shaped span there, in the team's authored texts under data/ (whose names are
masked) and in 8,644 real patient questions (../shared/data, which hold practically no names) is a negative. The
held-out fixture (``*_heldout.jsonl``) is never read by the fit. Figures: stages/PRIVACY.md, *Session 24*."""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from stages.safety import pii_name_cues as cues
from stages.safety import pii_names as pn
from stages.safety.pii_name_dictionary import adverb_phrase, common_word, jieba_tables, tag
from stages.safety.pii_name_lists import COMPOUND_SURNAMES, GIVEN_CHARS, SURNAMES, surname

WEIGHTS = Path(__file__).with_name("pii_name_weights.json")


def candidates(text: str) -> list[tuple[int, int]]:
    """Every (begin, end) of a name-shaped span: a surname (single or compound) + 1–2 given-name characters, not
    inside a placeholder ([姓名], [手机号] …)."""
    out, depth = [], []
    inside = 0
    for c in text:                       # depth[i]: whether text[i] is inside [...]
        inside += c == "["
        depth.append(inside > 0)
        inside -= c == "]" and inside > 0
    for i in range(len(text)):
        if depth[i]:
            continue
        for sl in (2, 1):
            sur = text[i:i + sl]
            if (sl == 2 and sur in _COMPOUND) or (sl == 1 and sur in _SINGLE):
                for g in (1, 2):
                    e = i + sl + g
                    if e <= len(text) and not any(depth[i:e]) and cues.shape(text[i:e]):
                        out.append((i, e))
    return out


_COMPOUND, _SINGLE = frozenset(COMPOUND_SURNAMES), frozenset(SURNAMES)


def _cls(c: str) -> str:
    if c.isdigit():
        return "0"
    return "a" if c.isascii() and c.isalpha() else c


def features(text: str, begin: int, end: int) -> dict[str, float]:
    """The scorer's features of ``text[begin:end]`` (the fit and inference share this function)."""
    name = text[begin:end]
    sur = surname(name)
    given = name[len(sur):]
    left = "".join(_cls(c) for c in text[max(0, begin - 4):begin]).rjust(4, "^")
    right = "".join(_cls(c) for c in text[end:end + 3]).ljust(3, "$")
    f: dict[str, float] = {"L1=" + left[-1:]: 1, "L2=" + left[-2:]: 1, "L3=" + left[-3:]: 1, "L4=" + left: 1,
                           "R1=" + right[:1]: 1, "R2=" + right[:2]: 1, "R3=" + right: 1,
                           "S=" + sur: 1, f"len={len(given)}": 1, f"comp={int(len(sur) == 2)}": 1}
    for c in given:
        f["G=" + c] = 1
        key = f"Gin={int(c in GIVEN_CHARS)}"
        f[key] = f.get(key, 0) + 1
    f["tag=" + (tag(name) or "none")] = 1
    freq = jieba_tables()[0].dt.FREQ.get(name) or 0
    f[f"freq={min(3, len(str(freq))) if freq else 0}"] = 1
    f["Gtag=" + (tag(given) or "none")] = 1
    f["Stag=" + (tag(sur) or "none")] = 1
    f[f"splitL={int(bool(begin and tag(text[begin - 1:begin + 1])))}"] = 1
    f[f"splitR={int(bool(end < len(text) and tag(text[end - 1:end + 1])))}"] = 1
    f[f"clause={int(bool(cues.CLAUSE_START.search(text[:begin])))}"] = 1
    f["cue=" + (cues.cue_before(text, begin) or "none")] = 1
    f[f"after={int(bool(cues.WEAK_AFTER.match(text[end:end + 12])))}"] = 1
    f[f"common={int(common_word(name))}"] = 1
    return f


@lru_cache(maxsize=1)
def load() -> dict:
    """The fitted weights: {"intercept", "threshold", "weights": {feature: weight}, …}."""
    return json.loads(WEIGHTS.read_text(encoding="utf-8"))


def probability(text: str, begin: int, end: int) -> float:
    model = load()
    w = model["weights"]
    z = model["intercept"] + sum(w.get(k, 0.0) * v for k, v in features(text, begin, end).items())
    return 1.0 / (1.0 + math.exp(-z))


def mask_scored(text: str, counts) -> str:
    """``text`` with every span the scorer calls a name replaced by [姓名] (``counts["name"]`` counts them)."""
    not_names = pn.not_a_name_spans(text)
    spans = [(b, e) for b, e in candidates(text) if not cues.overlaps(b, e, not_names) and not adverb_phrase(text[b:e])]
    if not spans:
        return text
    threshold = load()["threshold"]
    scored = sorted(((probability(text, b, e), b, e) for b, e in spans), key=lambda s: (-s[0], s[1], s[2]))
    chosen: list[tuple[int, int]] = []
    for p, b, e in scored:
        if p < threshold:
            break
        if not cues.overlaps(b, e, chosen):
            chosen.append((b, e))
    for b, e in sorted(chosen, reverse=True):
        text = text[:b] + "[姓名]" + text[e:]
        counts["name"] += 1
    return text

"""Realistic noise for QA pairs, built from real rows: the labelled near-duplicate set used to tune and
measure dedup (``labelled_set``) and the synthetic corpus of bench/clean_scale.py (``synthetic_rows``).

Noisy copies (what a person calls a duplicate): a courtesy suffix plus a number on the question
(``，谢谢12``), a ~10-character insertion in the answer, punctuation/whitespace changes, full-width
ASCII, traditional characters. True-distinct pairs that share a template: two different real questions
wrapped in the same opener/closer, and one real question with its key medical term swapped (the same
sentence about another disease). Everything is seeded, so the set is the same on every machine."""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from stages.data.formats import RawRecord, read_source
from stages.data.text import normalize

SUFFIXES = ["，谢谢", "谢谢", "，谢谢医生", "，麻烦了", "？谢谢", "，急", "，在线等"]
OPENERS = ["医生你好，", "您好，请问", "大夫，", "医生您好，我想咨询一下，"]
CLOSERS = ["，谢谢！", "，麻烦医生解答。", "，急！", "。"]
ANSWER_OPENERS = ["你好，", "您好，根据你的描述，", "你好，这种情况"]
ANSWER_CLOSERS = ["建议到医院进一步检查。", "建议及时就医，遵医嘱治疗。", "注意休息，清淡饮食。"]
# Interchangeable slots for "same template, different question" (disease ↔ disease).
SLOTS = ["高血压", "糖尿病", "冠心病", "胃炎", "肝炎", "肾炎", "哮喘", "肺炎", "贫血", "痛风", "心衰",
         "甲亢", "胆囊炎", "胰腺炎", "肠炎", "鼻炎", "咽炎", "湿疹", "失眠", "便秘", "头痛", "头晕", "胸闷",
         "腹泻", "咳嗽", "发烧", "乙肝", "脂肪肝", "心律失常", "高血脂"]


def load_real_pairs(paths: list[Path], min_chars: int = 10) -> list[tuple[str, str]]:
    """Unique normalised (question, answer) pairs from real sources, in file order."""
    seen, out = set(), []
    cols = {"question": ["title", "ask"], "answer": "answer", "category": "department"}
    for p in paths:
        for item in read_source(Path(p), Path(p).stem, cols):
            if not isinstance(item, RawRecord):
                continue
            q, a = normalize(item.question), normalize(item.answer)
            if len(q) >= 4 and len(a) >= min_chars and (q, a) not in seen:
                seen.add((q, a))
                out.append((q, a))
    return out


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def _punct(text: str, rng: random.Random) -> str:
    text = text.replace("，", rng.choice([",", " ", "，  ", "、"]), rng.randint(1, 3))
    if text and text[-1] in "。？！?!":
        text = text[:-1]
    return text + rng.choice(["", "！！", "。。", "?", " "])


def insertion(rng: random.Random, donor: str, size: int = 10) -> str:
    """A ~size-character span of another real answer (real words, not random characters)."""
    if len(donor) <= size:
        return donor
    start = rng.randrange(len(donor) - size)
    return donor[start:start + size + rng.randint(-2, 2)]


def noisy_copy(q: str, a: str, rng: random.Random, donor: str) -> tuple[str, str, list[str]]:
    """One noisy copy; always the suffix + answer insertion of the issue, plus 0-2 other noise kinds."""
    ops = ["suffix", "insert"] + rng.sample(["punct", "width", "traditional"], rng.randint(0, 2))
    q2 = q.rstrip("？?。") + rng.choice(SUFFIXES) + str(rng.randint(1, 999))
    pos = rng.randint(len(a) // 4, max(len(a) // 4, len(a) - 1))
    a2 = a[:pos] + insertion(rng, donor) + a[pos:]
    if "punct" in ops:
        q2, a2 = _punct(q2, rng), _punct(a2, rng)
    if "width" in ops:
        q2, a2 = _full_width(q2), _full_width(a2)
    if "traditional" in ops:
        q2, a2 = _s2t().convert(q2), _s2t().convert(a2)
    return q2, a2, ops


def wrapped(q: str, a: str, k: int) -> tuple[str, str]:
    return (OPENERS[k % len(OPENERS)] + q.rstrip("？?。") + CLOSERS[k % len(CLOSERS)],
            ANSWER_OPENERS[k % len(ANSWER_OPENERS)] + a + ANSWER_CLOSERS[k % len(ANSWER_CLOSERS)])


def slot_swap(q: str, a: str, rng: random.Random) -> tuple[str, str] | None:
    """The same question about another disease, every mention swapped in question and answer (so the
    answer changes with it); None when no listed disease is named in both."""
    found = [s for s in SLOTS if s in q and s in a]
    if not found:
        return None
    old = max(found, key=len)
    new = rng.choice([s for s in SLOTS if s not in q and s not in a and old not in s])
    return q.replace(old, new), a.replace(old, new)


def labelled_set(pairs: list[tuple[str, str]], n_bases: int = 1000, copies: int = 2, seed: int = 0):
    """Rows ``{"question", "answer", "group", "kind"}``: rows sharing ``group`` are duplicates of one
    another (a base and its noisy copies); different groups are distinct, including template pairs."""
    rng = random.Random(seed)
    idx = list(range(len(pairs)))
    rng.shuffle(idx)
    rows, g = [], 0
    for n, i in enumerate(idx[:n_bases]):
        q, a = pairs[i]
        rows.append({"question": q, "answer": a, "group": g, "kind": "base"})
        for _ in range(copies):
            donor = pairs[rng.choice(idx)][1]
            q2, a2, ops = noisy_copy(q, a, rng, donor)
            rows.append({"question": q2, "answer": a2, "group": g, "kind": "copy:" + "+".join(ops)})
        g += 1
    # template pairs: the same wrapper around two different real questions
    for n in range(n_bases // 4):
        (q1, a1), (q2, a2) = pairs[idx[n_bases + 2 * n]], pairs[idx[n_bases + 2 * n + 1]]
        for q, a in (wrapped(q1, a1, n), wrapped(q2, a2, n)):
            rows.append({"question": q, "answer": a, "group": g, "kind": "template_wrap"})
            g += 1
    # slot pairs: one real question and the same question about another disease
    made = 0
    for i in idx[n_bases + n_bases // 2:]:
        if made >= n_bases // 4:
            break
        q, a = pairs[i]
        swapped = slot_swap(q, a, rng)
        if swapped is None:
            continue
        for qq, aa in ((q, a), swapped):
            rows.append({"question": qq, "answer": aa, "group": g, "kind": "template_slot"})
            g += 1
        made += 1
    return rows


def synthetic_rows(pairs: list[tuple[str, str]], n: int, dup_frac: float = 0.2, seed: int = 0):
    """``n`` realistic rows for the scale bench: distinct rows splice parts of three real pairs (real
    text, distinct from every other row), and ``dup_frac`` of rows are noisy copies of a recent row.
    Yields ``(question, answer, category)`` without holding the corpus in memory."""
    rng = random.Random(seed)
    recent: list[tuple[str, str]] = []
    cats = ["内科", "心血管科", "消化科", "内分泌科", "呼吸科", "神经科"]
    for k in range(n):
        if recent and rng.random() < dup_frac:
            q, a = recent[rng.randrange(len(recent))]
            q, a, _ = noisy_copy(q, a, rng, pairs[rng.randrange(len(pairs))][1])
        else:   # three real pairs spliced: distinct from every other row, still real text
            (q1, a1), (q2, a2), (_, a3) = (pairs[rng.randrange(len(pairs))] for _ in range(3))
            q = f"{q1.rstrip('？?。')}，{q2[len(q2) // 2:]}"
            a = f"{a1[: len(a1) // 2 + 10]}{a2[len(a2) // 3: 2 * len(a2) // 3]}{a3[2 * len(a3) // 3:]}"
            if len(recent) < 5000:
                recent.append((q, a))
            else:
                recent[rng.randrange(5000)] = (q, a)
        yield q, a, cats[k % len(cats)]


def dup_scores(rows: list[dict], kept: list[dict], rejected: list[dict]) -> dict:
    """Near-duplicate recall/precision of a clean run over ``rows`` written one per line (origin
    ``file:line``). A duplicate rejection is right when ``duplicate_of`` names a kept row of the same
    group; recall counts rows that should go (all but one per group), precision the rejections made."""
    line = lambda r: int(r["origin"].rsplit(":", 1)[1]) - 1  # noqa: E731
    kept_group = {r["id"]: rows[line(r)]["group"] for r in kept}
    dups = [r for r in rejected if r["reason"] in ("near_duplicate", "exact_duplicate")]
    right = sum(kept_group.get(r["duplicate_of"]) == rows[line(r)]["group"] for r in dups)
    filtered = {line(r) for r in rejected if r["reason"] not in ("near_duplicate", "exact_duplicate")}
    sizes: dict = {}
    for i, r in enumerate(rows):
        if i not in filtered:
            sizes[r["group"]] = sizes.get(r["group"], 0) + 1
    should = sum(n - 1 for n in sizes.values())
    merged_kinds: dict = {}
    for r in dups:
        if kept_group.get(r["duplicate_of"]) != rows[line(r)]["group"]:
            k = rows[line(r)]["kind"]
            merged_kinds[k] = merged_kinds.get(k, 0) + 1
    return {"filtered_before_dedup": len(filtered), "duplicates_labelled": should, "removed": len(dups), "removed_right": right,
            "recall": round(right / should, 4) if should else 1.0,
            "precision": round(right / len(dups), 4) if dups else 1.0,
            "wrong_merges_by_kind": dict(sorted(merged_kinds.items()))}

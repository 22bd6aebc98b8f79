"""jieba's dictionary as the name finder reads it (stages/safety/pii_names.py, pii_name_scorer.py; session 28 moved these
here from pii_names.py): part-of-speech tags and counts of words, whether a span is an ordinary word, whether jieba ends a
word at a position, and the given-name characters its person-name entries use."""
from __future__ import annotations

import logging
from functools import lru_cache
from itertools import accumulate

from stages.safety.pii_name_lists import KIN, surname

NAME_TAGS = ("nr", "nrfg", "nrt")
VERBAL = ("v", "a", "d", "p", "c", "u", "m", "f", "q", "r", "t")     # jieba tags of verbs, adjectives, adverbs …


@lru_cache(maxsize=1)
def jieba_tables():
    """(jieba, its word -> tag table), loaded once per process."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    import jieba.posseg

    return jieba, jieba.posseg.dt.word_tag_tab


def tag(word: str) -> str:
    """jieba's part-of-speech tag of ``word`` ("" when the dictionary does not hold it)."""
    return jieba_tables()[1].get(word) or ""


def common_word(word: str) -> bool:
    """A word rather than a name: jieba's dictionary holds it with a tag other than a person's name (黄疸 n, 方便 a,
    江西 ns) or counts it 10 times or more (谢谢 1089, 高三 497, 艾灸 18: tagged as names there, but words; 刘建国
    3), or a surname character that is mostly a word (常 d, 易 a, 应 v) starts a verb / adjective phrase: 常 +
    发生, 明 + 确 (given names that are such words after such a surname, 向 + 光明, are lost here)."""
    t = tag(word)
    if (t and not t.startswith(NAME_TAGS)) or (jieba_tables()[0].dt.FREQ.get(word) or 0) >= 10:
        return True
    sur = surname(word) or word[:1]
    sur_tag = tag(sur)
    return sur_tag in ("d", "p", "c", "u") or sur == "应" \
        or (tag(word[len(sur):]).startswith(VERBAL) and bool(sur_tag) and not sur_tag.startswith(NAME_TAGS))


def adverb_phrase(span: str) -> bool:
    """常发生, 向前走, 于是: a surname character that is mostly an adverb, preposition or conjunction (常 d, 于 p, 和 c)
    before a verb or adjective reads as a phrase, not a name; the scorer skips such spans (session 25: fitted on seven
    writers it scored 常发生 0.59)."""
    sur = surname(span) or span[:1]
    return tag(sur) in ("d", "p", "c", "u") and tag(span[len(sur):]).startswith(VERBAL)


def ends_word(text: str, begin: int, end: int) -> bool:
    """jieba, cutting from the name on, ends a word at ``end``: 车建华|明天 although 华明 is a dictionary word (session 28);
    not 于子|女 (子女)."""
    return end - begin in set(accumulate(len(w) for w in jieba_tables()[0].lcut(text[begin:end + 6])))


@lru_cache(maxsize=None)
def dictionary_given_chars(min_names: int = 10, min_share: float = 0.02) -> frozenset[str]:
    """Given-name characters read from jieba's dictionary (session 28): characters that stand after the surname in
    at least ``min_names`` of its entries tagged as a person's name (nr; surname of ``SURNAMES`` / compound + 1–2
    characters) and carry at least ``min_share`` of their dictionary frequency in such names — 廷, 玮, 穎 (颖), 水 are
    in; 有, 身, 体, 检, 妇 (mostly in words) and 丙 (8 names) are out; characters of kin words and titles (爷, 姨, 公 of
    "王大爷") are left out. Accepted after a person cue only (stages/safety/pii_names.py ``_verdict``); ``GIVEN_CHARS`` stays
    the list a name needs without one. Built once per process (~1 s, in ``pii_names.warm``)."""
    from collections import Counter

    import jieba

    names, name_freq, freq = Counter(), Counter(), Counter()
    with jieba.dt.get_dict_file() as f:
        for line in f:
            word, count, pos = line.decode("utf-8").split()[:3]
            for c in set(word):
                freq[c] += int(count)
            sur = surname(word)
            if pos == "nr" and sur and 1 <= len(word) - len(sur) <= 2 \
                    and all("\u4e00" <= c <= "\u9fa5" for c in word):
                for c in set(word[len(sur):]):
                    names[c] += 1
                    name_freq[c] += int(count)
    kin_titles = set("".join(KIN.split()) + "主任医生大夫护士老师先生女士小姐师傅院长教授经理工阿叔姨总老家氏某")
    return frozenset(c for c, n in names.items()
                     if n >= min_names and name_freq[c] >= min_share * freq[c] and c not in kin_titles)

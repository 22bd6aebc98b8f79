"""Personal names for ``stages.safety.pii.mask_pii`` (which calls ``mask_names`` on simplified text).

Two layers of rules, then a learned one (stages/safety/pii_name_scorer.py, session 24: name-shaped spans no rule took,
scored by their surroundings; not for answers, ``mask_pii(answer=True)``):

1. **Labelled patterns** (regular expressions): 我叫 / 我的名字是 / 姓名： / 患者姓名： / 联系人 + a 2–4-character
   name; 我是 / 患者 / 病人 + surname + 1–2 characters where a sex, an age or punctuation follows; 我妈叫 / 孩子名叫
   / 他叫 + a name; 我姓 / 本人姓 + a surname; pinyin names after "my name is" or with a pinyin surname (Chen Yiming);
   Hong Kong / Macau / Taiwan romanised names (Chan Tai Man, Peter Chan, Lin Yi-chun; stages/safety/pii_names_roman.py,
   session 27); names without a Han surname — transliterated with a middle dot (阿依古丽·买买提), Tibetan, Mongolian and
   Yi names (stages/safety/pii_names_minority.py, session 28).
2. **Names in context** (``_find``): a candidate has a name's shape — a surname from ``SURNAMES`` (or a compound
   one) + 1–2 characters, none in ``NOT_NAME`` (的, 病, 痛, 吃 …; keeps "我爸高血压" whole) and not a title (王主任)
   or a relative (和宝宝) — and is looked for in three places: right after a cue (the next few characters cut by
   jieba on their own, since "找罗晓燕" is one jieba word in the whole text), right before an after-cue, and at the
   start of a clause. It is a name when
   * a **strong cue** precedes it (我叫, 名叫, 名字是, 全名, 户名, 收件人, 联系人, 姓名, 监护人 …) or ", 男/女" follows;
   * or **one weak cue** — a relative or role before it (我爸, 我老公, 老伴儿, 女儿, 朋友, 员工, 群主 …), 我是, 本人, 患者,
     帮 / 给 / 找 / 请问 / 让 / 替 / 跟 / 叫 / 陪 / 送 / 通知 / 联系 / 告诉 / 提醒 (session 25), a bed (32床), a masked phone and a bracket ("[手机号]（万春梅"), or after it 的家属 / 的 + a
     relative / 是我 + a relative / ", 45岁" / ", 五十六岁" / a contact ("，QQ：", "[手机号]") / 收 / an ethnic group
     (蓝春妹畲族) / ", 你…" (the person addressed), or a signature at the end (——龙雪梅, …[手机号]，孙丽) — and every
     given-name character is in ``GIVEN_CHARS`` (after a person cue — a relative, a role, 我是, 患者, not a verb such as
     帮 or 叫 — also one of jieba's person-name characters, ``dictionary_given_chars``: 张家玮, 刘子廷; or 有 / 来 of
     older names next to a listed one: 孙有财, 王福来) and it is not a common word
     (``_common_word``: jieba's dictionary holds it with a non-name tag or counts it ≥ 10 times, or its surname
     character is mostly an adverb / preposition such as 常, 于, 应);
   * or **two weak cues** (the start of a clause counts as one only next to another), given-name characters in
     ``GIVEN_CHARS`` and not an ordinary dictionary word (安卓).
   It must not split a word at its edges ("健|康聪明的宝宝", "于子|女"; but 车建华|明天, where jieba ends a word, although
   华明 is one). Session 28 also cues @ (@蒋欣怡), [地址] and 娃. Session 25: signed after a dash (——常乐) or before
   敬上, or greeted at the start of the message (杨帆你好), it is a name even when it is also a word; 嘅 reads as 的; no
   name overlaps a medicine (``MEDICINES``) or a public figure (``PUBLIC_FIGURES``: 李时珍, 钟南山).

The cue words, the patterns around a name and ``NOT_NAME`` live in stages/safety/pii_name_cues.py (session 29), shared
with pii_names_minority.py and the scorer.

Measured on independently written messages (tests/fixtures/pii, bench/pii_masking.py) and on 8,644 real
patient questions (placeholders inserted there are nearly all false positives); figures in stages/PRIVACY.md."""
from __future__ import annotations

import re
from collections import Counter

from stages.safety.pii_name_cues import (AFTER_AT, AGE, BOUNDARY, CLAUSE_START, CLAUSE_START_AT, CUE,
                                         DASH_SIGNATURE, GREETED, KIN_RE, NAME_CHAR, OLD_GIVEN,
                                         SIGNATURE_AFTER, SIGNATURE_BEFORE, SIGN_OFF, STRONG_AFTER,
                                         SURNAME_RE, THEIR_AT, VERB_CUES, VERB_GIVEN, WEAK_AFTER, cue_before,
                                         person_cue, replace_spans, shape)
from stages.safety.pii_name_dictionary import (NAME_TAGS as _NAME_TAGS, common_word as _common_word,
                                               dictionary_given_chars, ends_word, jieba_tables as _jieba, tag as _tag)
from stages.safety.pii_name_lists import (COMPOUND_SURNAMES, GIVEN_CHARS, MEDICINES,
                                          PINYIN_SURNAMES, PUBLIC_FIGURES, ROLES, SURNAMES)
from stages.safety.pii_name_lists import surname as _surname
from stages.safety.pii_names_minority import mask_minority
from stages.safety.pii_names_roman import mask_romanised

_AFTER = r"(?=" + BOUNDARY + r"|的|在|来自|住|电话|手机|身份证|患有|得了|有|因)"
# labelled: any 2-4-character name; 我叫/我的名字 also need a surname (or 小/阿) so "我叫救护车" is not one
_LABELLED = re.compile(r"((?:本人姓名|患者姓名|病人姓名|家属姓名|联系人|姓名)[:：]? ?)(" + NAME_CHAR + "{2,4})" + _AFTER)
_SELF = re.compile(r"((?:我叫|俺叫|咱叫|我的名字(?:是|叫))[:：]? ?)((?:" + SURNAME_RE + "|[小阿])" + NAME_CHAR + "{1,3})" + _AFTER)
# a role after 我是 is no name (ROLES: 我是程序员); a surname with a title still is (我是刘老师)
_NOT_ROLE = "(?!(?:" + "|".join(sorted(ROLES.split(), key=len, reverse=True)) + ")(?:" + BOUNDARY + "))"
_WEAK = re.compile(r"((?:我是)[:：]? ?)" + _NOT_ROLE + "(" + SURNAME_RE + NAME_CHAR + "{1,2})(?=" + BOUNDARY + ")")
_PATIENT = re.compile(r"((?:患者|病人|患儿)(?:[:：] ?)?)(" + SURNAME_RE + NAME_CHAR + "{1,2})"
                      r"(?=[,，、 ]?(?:男|女|" + AGE + r"|今年|\d+个?月))")
_PATIENT_COLON = re.compile(r"((?:患者|病人|患儿)[:：] ?)(" + SURNAME_RE + NAME_CHAR + "{1,2})(?=" + BOUNDARY + ")")
_OTHER = re.compile(r"((?:" + KIN_RE + r")(?:的名字(?:是|叫)|名叫|叫做|叫)[:：]? ?)(" + SURNAME_RE + NAME_CHAR + "{1,2})" + _AFTER)
_SURNAME_ONLY = re.compile(r"((?:我姓|本人姓|患者姓|病人姓)[:：]? ?)(" + SURNAME_RE + r")(?![\u4e00-\u9fa5])")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# pinyin names: "my name is Chen Yiming", "华人Li Wenjun" (a pinyin surname + 1-2 syllables, capitalised)
_SYLLABLE = (r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ueng|ang|eng|ing|ong|ian|iao|uai|uan|ai|ei|ao|ou|"
             r"an|en|in|un|ia|ie|iu|ua|uo|ui|ue|er|a|o|e|i|u|v)")
_PINYIN_GIVEN = (r"(?=[A-Z])(?i:" + _SYLLABLE + "(?:" + _SYLLABLE + r")?)(?:[ -](?=[A-Z])(?i:" + _SYLLABLE
                 + "(?:" + _SYLLABLE + r")?))?")
_PINYIN = re.compile(r"((?:(?i:my name is|name is|name[:：]|我叫|姓名[:：]?) ?)|(?<=[\u4e00-\u9fa5]))"
                     r"((?:" + "|".join(PINYIN_SURNAMES.split()) + r") " + _PINYIN_GIVEN + r")(?![A-Za-z])")
_PINYIN_NAMED = re.compile(r"((?i:my name is|name is|name[:：]) ?)([A-Z][a-z]+ [A-Z][a-z]+)(?![A-Za-z])")


def warm() -> None:
    """Load jieba's dictionary and its word-tag table now (~1.5 s, once per process) instead of on the first text
    that needs them (serve: the first answer recorded for feedback would be late)."""
    from stages.safety.pii_name_scorer import load

    _jieba()
    _tag("王")
    dictionary_given_chars()
    load()



def _candidates(words: list[str], old: bool = False) -> list[str]:
    """Name-shaped strings made of the first jieba words of ``words``, longest first (``old``: see ``shape``)."""
    w, nxt = (words + ["", ""])[:2]
    out = []
    if (w in COMPOUND_SURNAMES or (len(w) == 1 and w in SURNAMES)) and 1 <= len(nxt) <= 2:
        out.append(w + nxt)                                    # 曹 + 桂芝, 裴 + 立新, 欧阳 + 娜娜
    if len(w) in (2, 3) and len(nxt) == 1:
        out.append(w + nxt)                                    # 王梓 + 涵, 高志 + 明, 欧阳明 + 轩
    if len(w) == 2 and len(nxt) == 2 and not _common_word(w):
        out.append(w + nxt[0])                                 # 安子 + 豪|要 (session 28), not 冷汗 + 直|冒
    out.append(w)
    return [c for c in out if shape(c, old)]






def _verdict(text: str, begin: int, end: int, cue: str | None) -> bool:
    """Whether text[begin:end] (name-shaped) is a name here: a strong cue, or two weak ones, or one weak cue and
    not a common word. ``cue``: "strong" / "weak" for the cue right before it, None to look it up."""
    before, after = text[max(0, begin - 8):begin], text[end:end + 12]
    if cue is None:
        cue = cue_before(text, begin)
    left = _tag(text[begin - 1:begin + 1]) if begin else ""       # the word across the name's first edge, if any
    if (cue is None and left and not left.startswith(_NAME_TAGS)) or (after and _tag(text[end - 1] + after[0])
                                                                         and not ends_word(text, begin, end)):
        return False                           # it would split a word: 健|康聪明, 于子|女 (a cue ends a word: 本人|马建军)
    if cue == "strong" or STRONG_AFTER.match(after) or SIGN_OFF.match(after) or (not begin and GREETED.match(after)):
        return True
    signed = bool(SIGNATURE_AFTER.match(after))          # nothing but a sign-off follows: the end of the message
    if signed and DASH_SIGNATURE.search(before):
        return True
    if THEIR_AT.match(after) and cue is None and not CLAUSE_START.search(before):
        return False                           # "X的报告" alone: "一个账号管全家的预约" is no name
    signature = signed and bool(SIGNATURE_BEFORE.search(before))
    weak = (cue == "weak") + bool(WEAK_AFTER.match(after)) + signature
    name = text[begin:end]
    if not weak or not all(c in GIVEN_CHARS or (person_cue(before, cue) and (c in dictionary_given_chars() or c in OLD_GIVEN))
                           for c in name[len(_surname(name)):]):
        return False
    weak += not signature and bool(CLAUSE_START.search(before))     # counts only next to another weak cue
    if weak >= 2:                                  # two cues: only an ordinary word is not a name (安卓 + 手机)
        return not (_tag(name) and not _tag(name).startswith(_NAME_TAGS))
    return not _common_word(name)


def _find(text: str) -> list[tuple[int, int]]:
    jieba, _ = _jieba()
    spans = []
    for m in CUE.finditer(text):                      # after a cue: cut what follows on its own ("找罗晓燕" is
        if not _surname(text[m.end():m.end() + 2]):    # one jieba word in the whole text)
            continue
        words = jieba.lcut(text[m.end():m.end() + 6])
        person = bool(m.group(1)) or bool(m.group(2) and m.group(2).rstrip(":： ") not in VERB_CUES)
        for cand in _candidates(words, old=person):
            if VERB_GIVEN & set(cand[len(_surname(cand)):]) and text[m.end() + len(cand):][:1] in ("的", "了", "过", "着"):
                continue                               # 我是江西来的: a phrase, not 江西来
            if _verdict(text, m.end(), m.end() + len(cand), "weak" if m.group(2) else "strong"):
                spans.append((m.end(), m.end() + len(cand)))
                break
    for m in CLAUSE_START_AT.finditer(text):         # a clause that starts with a name: 曾雨桐 [手机号], ，吕佳慧收
        b = m.end()
        if not _surname(text[b:b + 2]):
            continue
        for n in (4, 3, 2):
            if shape(text[b:b + n]) and _verdict(text, b, b + n, None):
                spans.append((b, b + n))
                break
    for m in AFTER_AT.finditer(text):                # a name right before 的家属 / ，男 / a contact / 收
        for n in (4, 3, 2):
            b = m.start() - n
            if b >= 0 and shape(text[b:m.start()]) and _verdict(text, b, m.start(), None):
                spans.append((b, m.start()))
                break
    return spans


_NOT_A_NAME = re.compile("|".join(sorted(MEDICINES + PUBLIC_FIGURES, key=len, reverse=True)))


def not_a_name_spans(text: str) -> list[tuple[int, int]]:
    """Where a medicine of ``MEDICINES`` (徐长卿15克) or a public figure of ``PUBLIC_FIGURES`` (李时珍说) stands: no
    name is found overlapping one."""
    return [m.span() for m in _NOT_A_NAME.finditer(text)]



def _context_names(text: str, counts: Counter) -> str:
    if not any(c in SURNAMES for c in text):
        return text
    return replace_spans(text, _find(text), counts, skip=not_a_name_spans(text))


def _sub(pattern: re.Pattern, text: str, counts: Counter) -> str:
    def repl(m):
        tag = _tag(m.group(2)) if pattern is _WEAK else ""
        if tag and not tag.startswith(_NAME_TAGS):              # 我是应届生 (nz), 我是白领 (n): words, not names
            return m.group(0)
        counts["name"] += 1
        return m.group(1) + "[姓名]"
    return pattern.sub(repl, text)


def mask_names(text: str, counts: Counter, scored: bool = True) -> str:
    """Every name the two layers find, then every name-shaped span the learned scorer calls a name
    (stages/safety/pii_name_scorer.py; ``scored=False``: the rules only), replaced by [姓名] (``counts["name"]``
    counts them)."""
    patterns = [_LABELLED, _SELF, _OTHER, _WEAK, _PATIENT, _PATIENT_COLON, _SURNAME_ONLY]
    if _ASCII_LETTER.search(text):
        text = mask_romanised(text, counts)         # Hong Kong / Macau / Taiwan (stages/safety/pii_names_roman.py)
        patterns[:0] = [_PINYIN_NAMED, _PINYIN]
    text = mask_minority(text, counts)              # dotted, Tibetan, Mongolian, Yi (stages/safety/pii_names_minority.py)
    for pattern in patterns:
        text = _sub(pattern, text, counts)
    from stages.safety.pii_name_scorer import mask_scored   # deferred: the scorer imports this module

    for _ in range(5):       # another round finds the next name of a list ([姓名]、李强、张敏) and whatever a new
        before = counts["name"]                             # placeholder gives away: masking twice changes nothing
        text = _context_names(text, counts)
        if scored:
            text = mask_scored(text, counts)
        if counts["name"] == before:
            break
    return text

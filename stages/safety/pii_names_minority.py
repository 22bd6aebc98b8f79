"""Names without a Han surname for ``stages.safety.pii_names.mask_names`` (moved here and extended in session 28;
stages/PRIVACY.md):

* transliterated names joined by a middle dot (Uyghur, Kazakh, foreign): 阿依古丽·买买提, 阿依古丽·哈力木 — any
  Han characters but numerals and a few function words on both sides of the dot;
* Tibetan and Mongolian names (elements of ``TIBETAN`` / ``MONGOLIAN``) and Yi names (a clan name of ``YI_CLANS`` and a
  two-character given name: 吉克阿依, 沙马拉布): two elements or more anywhere (扎西顿珠); one element (or a clan
  name) after a person cue (患者巴特尔, 我阿爸乌力吉头疼, 我是卓玛措的女儿) or before what follows a name (巴特尔，
  [身份证号] / ，男 / ，五十六岁 / 、[姓名]).
* Dai names (session 29): 岩 (men) or 玉 (women) and one or two elements of ``DAI_ELEMENTS`` — two anywhere (岩温香,
  玉香罕), one after a cue or before an after-cue (我阿爸岩罕); the after-cues are those of a Han name
  (``pii_name_cues.AFTER_CUES``: 沙马拉布是我表哥, 扎西顿珠的家属) plus a sex and another such name.
An element after a cue may carry one more character (卓玛措) and must end a word: 乌兰察布 is a city, 呼和浩特 too."""
from __future__ import annotations

import re
from collections import Counter

from stages.safety.pii_name_cues import AFTER_CUES, NOT_NAME, cue_words, replace_spans
from stages.safety.pii_name_dictionary import ends_word
from stages.safety.pii_name_lists import DAI_ELEMENTS, MONGOLIAN, TIBETAN, YI_CLANS

_DOT = re.compile(r"[·•・‧]")
# transliteration characters that NOT_NAME holds as function words: 阿不都热合曼, 哈力木 (session 28)
_TRANSLIT_TOO = "不都哈"
_ELEMENT = "(?:" + "|".join(sorted((TIBETAN + " " + MONGOLIAN).split(), key=len, reverse=True)) + ")"
_ELEMENTS = re.compile(r"(" + _ELEMENT + "{2,4})")
_YI = "(?:" + "|".join(YI_CLANS.split()) + r")[\u4e00-\u9fa5]{2}"
_DAI_ELEMENT = "[" + DAI_ELEMENTS.replace(" ", "") + "]"
_DAI = "[岩玉]" + _DAI_ELEMENT + "{1,2}"                     # 岩罕, 玉应罕 (session 29)
_DAI_TWO = re.compile("([岩玉]" + _DAI_ELEMENT + "{2})(?![\u4e00-\u9fa5]{0,1}[岩玉石])")   # 岩温香, 玉香罕 anywhere
_ONE = "(?:" + _ELEMENT + "|" + _YI + "|" + _DAI + ")"
# what may follow a name: a sex, another such name, or what follows a Han name (pii_name_cues.AFTER_CUES: an age, a
# contact, 的家属, 是我表哥 …; session 29)
_AFTER = r"(?=[,，、 ]?[男女](?![\u4e00-\u9fa5])|[、和]" + _ONE + "|" + AFTER_CUES + ")"
_BEFORE_AFTER_CUE = re.compile(r"(?:^|(?<=[，,。！？!?；;：:\n\]）)】 、]))(" + _ONE + ")" + _AFTER)


_DOTTED_CHAR = "[^" + "".join(sorted(NOT_NAME - set(_TRANSLIT_TOO))) + r"一二三四五六七八九十第\W\da-zA-Z_]"
_DOTTED = re.compile("(" + _DOTTED_CHAR + "{2,6}[·•・‧]" + _DOTTED_CHAR + "{2,8})")
_CUED = re.compile(r"(?:" + "|".join(map(re.escape, sorted(cue_words(), key=len, reverse=True)))
                   + r")[:：]? ?(" + _ONE + r"[\u4e00-\u9fa5]?)")


def _ends_word(text: str, begin: int, end: int) -> bool:
    return end == len(text) or not "\u4e00" <= text[end] <= "\u9fa5" or text[end] in "的是在从来说" \
        or ends_word(text, begin, end)


def mask_minority(text: str, counts: Counter) -> str:
    """Every name of the module docstring's forms replaced by [姓名] (``counts["name"]`` counts them)."""
    spans = []
    if _DOT.search(text):
        spans += [m.span(1) for m in _DOTTED.finditer(text)]
    spans += [m.span(1) for m in _ELEMENTS.finditer(text)]
    spans += [m.span(1) for m in _DAI_TWO.finditer(text) if _ends_word(text, *m.span(1))]
    spans += [m.span(1) for m in _BEFORE_AFTER_CUE.finditer(text)]
    for m in _CUED.finditer(text):
        b, e = m.span(1)
        for end in (e, e - 1):             # an element with one more character (卓玛措) or without it (乌力吉|头疼)
            if _is_one(text[b:end]) and _ends_word(text, b, end):
                spans.append((b, end))
                break
    return replace_spans(text, spans, counts)


_ELEMENT_AT, _YI_AT, _DAI_AT = re.compile(_ELEMENT), re.compile(_YI), re.compile(_DAI)


def _is_one(span: str) -> bool:
    """A Yi name, an element, or an element and one character that is not a function word (卓玛措, not 巴特尔从)."""
    return bool(_YI_AT.fullmatch(span) or _ELEMENT_AT.fullmatch(span) or _DAI_AT.fullmatch(span)
                or (_ELEMENT_AT.fullmatch(span[:-1]) and span[-1] not in NOT_NAME))

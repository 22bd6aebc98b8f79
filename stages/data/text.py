"""Text normalisation shared by clean and serve: HTML stripping, NFKC (keeping Chinese
full-width punctuation), whitespace, boilerplate greetings/sign-offs, term standardisation and
PII masking with typed placeholders."""
from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

# --- normalisation -------------------------------------------------------------------------------
_TAG = re.compile(r"<[^<>]{0,200}>")
_BR = re.compile(r"<\s*(br|/p|/div|/li)\s*/?>", re.I)
# Chinese full-width punctuation is kept as-is (NFKC would fold "，" to ","); letters/digits fold.
_KEEP = set("，。！？：；（）【】「」『』“”‘’、《》～…")
_WS = re.compile(r"[ \t\u3000\xa0]+")
_NL = re.compile(r"\s*\n\s*")
_CJK = r"\u3400-\u9fff"
_SPACE_CJK = re.compile(rf"(?<=[{_CJK}，。！？：；、）])\s+(?=[{_CJK}，。！？：；、（])")
HAS_CHINESE = re.compile(rf"[{_CJK}]")


def strip_html(text: str) -> str:
    if "<" in text:
        text = _BR.sub("\n", text)
        text = _TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def nfkc(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c if c in _KEEP else unicodedata.normalize("NFKC", c) for c in text)


def normalize(text: str) -> str:
    """HTML → text, NFKC, collapse whitespace (no spaces between Chinese characters)."""
    text = nfkc(strip_html(text)).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C")
    text = _WS.sub(" ", text)
    text = _NL.sub("\n", text).strip()
    return _SPACE_CJK.sub("", text)


# --- boilerplate ---------------------------------------------------------------------------------
# A listed set (seen in real online-doctor answers), not guesses. Greetings are removed only at the
# start, sign-offs only at the end of an answer.
GREETINGS = [
    "你好", "您好", "你好呀", "您好呀", "朋友你好", "朋友您好", "这位朋友你好", "这位朋友您好",
    "病情分析", "问题分析", "意见建议", "指导意见", "这位朋友", "很高兴为你解惑", "很高兴为您解惑",
    "首先非常感谢您的进行咨询", "首先感谢您的咨询",
]
SIGN_OFFS = [
    "感谢您的咨询", "谢谢您的咨询", "感谢您的进行咨询", "感谢你的咨询", "谢谢你的咨询",
    "希望我的解释对你有所帮助", "希望我的解释对您有所帮助", "期望我的解释对你有所帮助",
    "期望我的解释对您有所帮助", "希望我的回答对你有所帮助", "希望我的回答对您有所帮助",
    "希望对你有所帮助", "希望对您有所帮助", "希望能帮到你", "希望能帮到您", "祝你早日康复",
    "祝您早日康复", "祝你身体健康", "祝您身体健康", "祝你健康", "祝您健康", "祝患者身体早日恢复健康",
    "祝你早日恢复健康", "祝您早日恢复健康", "期望对您有所帮助", "期望对你有所帮助", "期望上述的答案可以协助到你",
    "以上可以做为参考", "以上可以作为参考", "谢谢",
]
_SEP = r"[\s,，.。!！~～:：;；]*"
_GREETING_RE = re.compile(r"^(?:" + "|".join(sorted(map(re.escape, GREETINGS), key=len, reverse=True)) + r")" + _SEP)
_SIGNOFF_RE = re.compile(
    r"(?:" + _SEP + r"(?:" + "|".join(sorted(map(re.escape, SIGN_OFFS), key=len, reverse=True)) + r"))+" + _SEP + r"$")


def strip_boilerplate(text: str) -> str:
    prev = None
    while prev != text:
        prev = text
        text = _GREETING_RE.sub("", text, count=1)
        text = _SIGNOFF_RE.sub("", text)
        text = text.strip()
    if text and text[-1] not in "。！？.!?）)":
        text += "。" if HAS_CHINESE.search(text) else ""
    return text


# --- term standardisation ------------------------------------------------------------------------
class TermDict:
    """synonym → canonical replacement from a TSV file (``synonym<TAB>canonical``, # comments).
    Canonical forms match themselves, so a synonym inside its own canonical form is not rewritten
    (e.g. 糖尿 → 糖尿病 leaves 糖尿病 alone)."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = dict(mapping)
        keys = set(mapping) | set(mapping.values())
        self.canonical = sorted(set(mapping.values()))
        self._re = re.compile("|".join(sorted(map(re.escape, keys), key=len, reverse=True))) if keys else None

    @classmethod
    def load(cls, path: str | Path) -> "TermDict":
        mapping = {}
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise ValueError(f"{path}:{n}: expected 'synonym<TAB>canonical', got {line!r}")
            mapping[parts[0].strip()] = parts[1].strip()
        return cls(mapping)

    def apply(self, text: str) -> tuple[str, int]:
        if self._re is None:
            return text, 0
        count = 0

        def repl(m):
            nonlocal count
            new = self.mapping.get(m.group(0), m.group(0))
            count += new != m.group(0)
            return new

        return self._re.sub(repl, text), count

    def terms_in(self, text: str) -> set[str]:
        """Canonical terms mentioned in text (synonyms count as their canonical form)."""
        if self._re is None:
            return set()
        return {self.mapping.get(m, m) for m in self._re.findall(text)}


@lru_cache(maxsize=8)
def load_terms(path: str) -> TermDict:
    return TermDict.load(path)


# --- PII masking ---------------------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_number(s: str) -> bool:
    """Mainland 18-digit resident ID: GB 11643 checksum and a plausible birth date."""
    if not re.fullmatch(r"\d{17}[\dXx]", s):
        return False
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != s[17].upper():
        return False
    y, m, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    return 1900 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31


def luhn_ok(s: str) -> bool:
    digits = [int(c) for c in s][::-1]
    total = 0
    for i, d in enumerate(digits):
        if i % 2:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return total % 10 == 0


PII_TAGS = {"id": "[身份证号]", "bank": "[银行卡号]", "mobile": "[手机号]", "landline": "[电话]",
            "email": "[邮箱]", "name": "[姓名]"}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){15,18}\d(?!\d)")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(?:\(?0\d{2,3}\)?[ -]?)\d{7,8}(?!\d)")
_NAME = re.compile(r"(我叫|我的名字是|我的名字叫|本人姓名[:：]?|患者姓名[:：]?|病人姓名[:：]?|姓名[:：])\s*"
                   r"([\u4e00-\u9fa5]{2,3})(?=[\s,，。.;；:：!！?？(（]|是|今年|$)")


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace PII with typed placeholders; returns (masked text, counts per type)."""
    counts: dict[str, int] = {}

    def sub(kind, pattern, text, check=None, keep_prefix=False):
        def repl(m):
            if check and not check(m):
                return m.group(0)
            counts[kind] = counts.get(kind, 0) + 1
            return (m.group(1) if keep_prefix else "") + PII_TAGS[kind]
        return pattern.sub(repl, text)

    text = sub("email", _EMAIL, text)
    text = sub("id", _ID, text, check=lambda m: valid_id_number(m.group(0)))
    text = sub("mobile", _MOBILE, text)
    text = sub("bank", _CARD, text, check=lambda m: luhn_ok(re.sub(r"[ -]", "", m.group(0))))
    text = sub("landline", _LANDLINE, text)
    text = sub("name", _NAME, text, keep_prefix=True)
    return text, counts

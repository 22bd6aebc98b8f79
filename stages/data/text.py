"""Text handling shared by clean and serve: normalisation (the first thing done to any text, before
it is stripped, masked, length-checked or matched), boilerplate greetings/sign-offs and term
standardisation. PII masking lives in stages/safety/pii.py (the one masking function) and is
re-exported here (``mask_pii`` here returns ``(text, counts)``, see below).

``normalize``: one round is ``html.unescape`` → NFKC (Chinese full-width punctuation kept) → line
endings and every unicode space (ideographic space, NBSP, thin spaces …) folded → invisible characters removed
(zero-width U+200B–200F, U+2060–2064, BOM U+FEFF, soft hyphen U+00AD, bidi controls U+202A–202E /
U+2066–2069 / U+061C, and every other control/format/private-use/unassigned code point) → HTML tags
removed → whitespace collapsed (no spaces between Chinese characters). Rounds repeat until the text
stops changing (at most ``MAX_ROUNDS``), so ``&amp;lt;|im_start|&amp;gt;`` or a zero-width character
inside an entity cannot survive as a second-generation trick: ``normalize(normalize(x)) == normalize(x)``."""
from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from stages.safety.pii import PII_TAGS, luhn_ok, mask_pii_counts, valid_id_number

# The one masking function is ``stages.safety.pii.mask_pii(text) -> str``. Here ``mask_pii`` keeps its
# original shape ``(masked text, counts per kind)`` for the callers written against it: it is
# ``mask_pii_counts``, the same masking.
mask_pii = mask_pii_counts

__all__ = ["HAS_CHINESE", "normalize", "nfkc", "PII_TAGS", "luhn_ok", "mask_pii", "mask_pii_counts",
           "valid_id_number", "GREETINGS", "SIGN_OFFS", "strip_boilerplate", "TermDict", "load_terms"]

# --- normalisation -------------------------------------------------------------------------------
MAX_ROUNDS = 8
CJK = r"\u3400-\u9fff"
HAS_CHINESE = re.compile(rf"[{CJK}]")

# Chinese full-width punctuation is kept as-is (NFKC would fold "，" to ","); letters/digits/symbols fold.
KEEP = "，。！？：；（）【】「」『』“”‘’、《》～…"
_FOLD_RUN = re.compile(f"[^{re.escape(KEEP)}]+")
# Real HTML only (a tag name starts with a letter, "/" or "!"): "血糖<7.0，血压>140" is not a tag.
_BR = re.compile(r"<\s*(?:br|/p|/div|/li)\s*/?\s*>", re.I)
_TAG = re.compile(r"<\s*/?\s*[A-Za-z!][^<>]{0,200}>")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")
_WS = re.compile(r"[ \t]+")
_NL = re.compile(r"[ \t]*\n\s*")
_SPACE_CJK = re.compile(rf"(?<=[{CJK}，。！？：；、）])\s+(?=[{CJK}，。！？：；、（])")


_DROP_KEEP = {ord(c): None for c in KEEP}


def nfkc(text: str) -> str:
    """NFKC on everything except the kept Chinese punctuation."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text.translate(_DROP_KEEP)):
        return text
    return _FOLD_RUN.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


def _fold_chars(text: str) -> str:
    """Unicode spaces → " ", invisible/control/format characters removed (newlines kept)."""
    out = []
    for c in text:
        if c == "\n" or c == " ":
            out.append(c)
            continue
        cat = unicodedata.category(c)
        if cat == "Zs" or c == "\t":
            out.append(" ")
        elif cat[0] != "C":
            out.append(c)
    return "".join(out)


def _round(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)
    text = nfkc(text)
    text = _NEWLINES.sub("\n", text)
    if not text.isprintable() and not text.replace("\n", "").isprintable():
        text = _fold_chars(text)        # isprintable() is False for every Zs but " " and every C* character
    if "<" in text:
        text = _BR.sub("\n", text)
        text = _TAG.sub("", text)
    text = _WS.sub(" ", text)
    text = _NL.sub("\n", text).strip()
    return _SPACE_CJK.sub("", text)


def normalize(text: str) -> str:
    """Unescape → NFKC → fold spaces / drop invisible characters → strip tags → collapse whitespace,
    repeated to a fixed point (bounded by ``MAX_ROUNDS``)."""
    for _ in range(MAX_ROUNDS):
        new = _round(text)
        if new == text:
            break
        text = new
    return text


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

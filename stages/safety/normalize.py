"""Text normalisation: the first thing done to any text (training data, questions, audit lines)
before it is stripped, masked, length-checked or matched against a rule.

One round is: ``html.unescape`` → NFKC (Chinese full-width punctuation kept) → line endings and
every unicode space (ideographic space, NBSP, thin spaces …) folded → invisible characters removed
(zero-width U+200B–200F, U+2060–2064, BOM U+FEFF, soft hyphen U+00AD, bidi controls U+202A–202E /
U+2066–2069 / U+061C, and every other control/format/private-use/unassigned code point) → HTML tags
removed → whitespace collapsed (no spaces between Chinese characters). Rounds repeat until the text
stops changing (at most ``MAX_ROUNDS``), so ``&amp;lt;|im_start|&amp;gt;`` or a zero-width character
inside an entity cannot survive as a second-generation trick: ``normalize(normalize(x)) == normalize(x)``.

``stages.data.text`` re-exports ``normalize``; this module has no repo imports so that
``stages.safety.pii`` and ``stages.model.prompt`` can use it without import cycles."""
from __future__ import annotations

import html
import re
import unicodedata

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


def nfkc(text: str) -> str:
    """NFKC on everything except the kept Chinese punctuation."""
    if text.isascii():
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
    if not text.isascii() or not text.isprintable():
        text = _fold_chars(text)
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

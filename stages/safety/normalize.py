"""The one text form every safety matcher sees (rules, triage classifier, reply lookup).

``match_text`` = ``stages.data.text.normalize`` (HTML, NFKC, whitespace) → full-width folding
(including the Chinese punctuation ``normalize`` keeps, and the ideographic space) → traditional →
simplified Chinese (OpenCC ``t2s``) → lower case. So 呼吸困難，嘴唇發紫 and ＢＰ１８０ match the
same rules as 呼吸困难,嘴唇发紫 and bp180."""
from __future__ import annotations

from functools import lru_cache

from stages.data.text import normalize

# full-width ASCII block U+FF01..U+FF5E → U+0021..U+007E; ideographic space → space.
# Chinese punctuation that has an ASCII twin folds too (，→, ：→: ？→?), so rules never depend on it.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FOLD.update({0x3000: 0x20, ord("。"): ord("."), ord("、"): ord(","), ord("～"): ord("~"),
              ord("“"): ord('"'), ord("”"): ord('"'), ord("‘"): ord("'"), ord("’"): ord("'")})


@lru_cache(maxsize=1)
def _t2s():
    try:
        import opencc
    except ImportError as err:  # pinned in requirements.txt; a missing install must not silently skip t2s
        raise ImportError("the `opencc` package is required for traditional→simplified matching "
                          "(pip install -r requirements.txt)") from err
    return opencc.OpenCC("t2s")


def fold_width(text: str) -> str:
    return text.translate(_FOLD)


def to_simplified(text: str) -> str:
    return _t2s().convert(text) if text and not text.isascii() else text


def match_text(text: str) -> str:
    """Normalised, width-folded, simplified, lower-cased text for matching (never shown to users)."""
    return to_simplified(fold_width(normalize(text))).lower()

"""Text handling shared by clean and serve: normalisation and PII masking (re-exported from
stages/safety/normalize.py and stages/safety/pii.py, the one place for each), boilerplate
greetings/sign-offs and term standardisation."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from stages.safety.normalize import HAS_CHINESE, normalize
from stages.safety.pii import PII_TAGS, luhn_ok, mask_pii, mask_pii_counts, valid_id_number

__all__ = ["HAS_CHINESE", "normalize", "PII_TAGS", "luhn_ok", "mask_pii", "mask_pii_counts", "valid_id_number",
           "GREETINGS", "SIGN_OFFS", "strip_boilerplate", "TermDict", "load_terms"]


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

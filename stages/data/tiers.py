"""Difficulty tiers and the transparent keyword rules used when a source has no tier.

Tiers (product brief): basic 基础医学知识, intermediate 常见疾病诊断, advanced 复杂病例分析,
emergency 急救知识, prevention 预防保健. Rules are checked in order; the first match wins."""
from __future__ import annotations

import re

from stages.safety.rules import detect_emergency

TIERS = ("basic", "intermediate", "advanced", "emergency", "prevention")
TIER_ALIASES = {
    "基础医学知识": "basic", "基础": "basic", "常见疾病诊断": "intermediate", "中级": "intermediate",
    "复杂病例分析": "advanced", "复杂": "advanced", "急救知识": "emergency", "急救": "emergency",
    "预防保健": "prevention", "预防": "prevention",
}

RULES: list[tuple[str, re.Pattern]] = [
    ("emergency", re.compile(r"急救|心肺复苏|海姆立克|120|急诊")),
    ("advanced", re.compile(r"合并|并发|同时(?:患有|有)|多种|术后|化疗|放疗|反复(?:发作|发生)|鉴别|多年.{0,8}(?:加重|控制不好)|既往")),
    ("prevention", re.compile(r"预防|疫苗|接种|体检|筛查|保健|养生|注意什么|怎么避免|如何避免|日常.{0,4}注意|锻炼")),
    ("intermediate", re.compile(r"症状|诊断|怎么回事|什么病|怎么办|怎么治|如何治|治疗|吃什么药|用什么药|是不是.{0,10}(?:病|炎)")),
]


def normalize_tier(value: str | None) -> str | None:
    if value is None:
        return None
    v = str(value).strip()
    if v.lower() in TIERS:
        return v.lower()
    return TIER_ALIASES.get(v)


def infer_tier(question: str, answer: str = "") -> tuple[str, str]:
    """Return (tier, rule) — the rule name says why, for the record."""
    if detect_emergency(question):
        return "emergency", "emergency_symptom"
    for tier, rx in RULES:
        if rx.search(question):
            return tier, f"keyword:{tier}"
    return "basic", "default"

"""The authored default corpus in data/raw/ (issue: default corpus)."""
import json
from collections import Counter
from pathlib import Path

import pytest

from stages.safety.rules import has_consult_reminder, has_emergency_guidance
from stages.data.tiers import TIERS

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"
KEYS = {"question", "answer", "category", "difficulty", "source"}
SERVICE = {"挂号预约", "检查前准备", "报告查询", "医保报销", "用药咨询"}
CLINICAL = {"心血管", "内分泌", "呼吸", "消化", "儿科", "妇产", "神经", "皮肤", "急诊", "骨科", "眼耳鼻喉", "口腔"}


@pytest.fixture(scope="module")
def corpus():
    rows = []
    for f in sorted(RAW.glob("*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rows.append((f"{f.name}:{n}", json.loads(line)))
    return rows


def test_schema(corpus):
    for origin, r in corpus:
        assert set(r) == KEYS, origin
        assert all(isinstance(r[k], str) and r[k].strip() for k in KEYS), origin
        assert r["source"] == "authored" and r["difficulty"] in TIERS, origin


def test_size_tiers_categories(corpus):
    assert len(corpus) >= 600
    tiers = Counter(r["difficulty"] for _, r in corpus)
    assert all(tiers[t] >= 80 for t in TIERS), tiers
    cats = Counter(r["category"] for _, r in corpus)
    assert len(cats) >= 10 and SERVICE <= set(cats) and CLINICAL <= set(cats), cats


def test_answer_lengths(corpus):
    bad = [(o, len(r["answer"])) for o, r in corpus if not 60 <= len(r["answer"]) <= 400]
    assert not bad


def test_emergency_answers_direct_to_120(corpus):
    bad = [o for o, r in corpus if r["difficulty"] == "emergency" and not has_emergency_guidance(r["answer"])]
    assert not bad


def test_no_exact_duplicates(corpus):
    q = Counter(r["question"] for _, r in corpus)
    a = Counter(r["answer"] for _, r in corpus)
    assert [k for k, v in q.items() if v > 1] == [] and [k for k, v in a.items() if v > 1] == []


def test_reminder_rate_on_medication_answers(corpus):
    med = [r for _, r in corpus if r["category"] == "用药咨询"]
    assert med and sum(has_consult_reminder(r["answer"]) for r in med) / len(med) >= 0.9

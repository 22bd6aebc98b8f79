"""The authored default corpus in data/raw/ (issue: default corpus), and the reviewed candidate batches under
data/candidates/ (authored and reviewed like data/raw, measured, not in ``data.sources``): same house rules."""
from collections import Counter
from pathlib import Path

import pytest

from stages.safety.rules import has_consult_reminder, has_emergency_guidance
from stages.common.jsonio import iter_json_objects
from stages.data.tiers import TIERS

RAW = Path(__file__).resolve().parents[1] / "data" / "raw"
CANDIDATES = sorted(p for p in (RAW.parent / "candidates").iterdir() if p.is_dir())
# folder → (min rows, min rows per tier): the default corpus, and each candidate batch
MIN_SIZE = {RAW: (600, 80), **{c: (300, 60) for c in CANDIDATES}}
KEYS = {"question", "answer", "category", "difficulty", "source"}
SERVICE = {"挂号预约", "检查前准备", "报告查询", "医保报销", "用药咨询"}
CLINICAL = {"心血管", "内分泌", "呼吸", "消化", "儿科", "妇产", "神经", "皮肤", "急诊", "骨科", "眼耳鼻喉", "口腔"}


def read_folder(folder: Path) -> list[tuple[str, dict]]:
    return [(f"{f.name}:{n}", r) for f in sorted(folder.glob("*.jsonl")) for n, r in iter_json_objects(f)]


@pytest.fixture(scope="module", params=[RAW, *CANDIDATES], ids=lambda p: p.name)
def folder(request):
    return request.param


@pytest.fixture(scope="module")
def corpus(folder):
    return read_folder(folder)


def test_schema(corpus):
    for origin, r in corpus:
        assert set(r) == KEYS, origin
        assert all(isinstance(r[k], str) and r[k].strip() for k in KEYS), origin
        assert r["source"] == "authored" and r["difficulty"] in TIERS, origin


def test_size_tiers_categories(corpus, folder):
    rows, per_tier = MIN_SIZE[folder]
    assert len(corpus) >= rows
    tiers = Counter(r["difficulty"] for _, r in corpus)
    assert all(tiers[t] >= per_tier for t in TIERS), tiers
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


def test_candidate_batches_repeat_no_question_or_answer_of_the_corpus():
    raw = read_folder(RAW)
    seen = {r["question"] for _, r in raw} | {r["answer"] for _, r in raw}
    assert CANDIDATES, "data/candidates/ holds the reviewed batches the docs cite"
    for c in CANDIDATES:
        rows = read_folder(c)
        assert rows and not [o for o, r in rows if r["question"] in seen or r["answer"] in seen], c

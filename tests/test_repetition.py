"""Loop detection and distinct-n (stages/evaluation/metrics/repetition.py) and their pooling."""
from __future__ import annotations

import pytest

from stages.evaluation.metrics.aggregate import summarize
from stages.evaluation.metrics.repetition import distinct_n, is_loop, longest_repeat, repetition_scores

# the loops reported in issue 14, and clean answers from the corpus style
LOOPS = ["常见症状有头晕、恶心、呕吐、头痛、乏力、乏力、乏力、乏力、乏力",
         "需要注意高钠、高钾、高钠、高钾、高钠、高钾、高钠",
         "可能是鼻窦炎、鼻窦穿孔、鼻窦炎、鼻窦穿孔、鼻窦炎、鼻窦穿孔、",
         "建议您多喝水建议您多喝水建议您多喝水"]
CLEAN = ["您好，发热时建议多喝水、注意休息，如体温超过38.5℃或持续不退，请及时到发热门诊就诊。",
         "胸痛伴大汗请立即拨打120或前往急诊，不要自行驾车。以上建议不能替代医生面诊，请以医生意见为准。",
         "哈哈哈哈哈哈哈哈哈哈哈哈哈",                      # one-character run: not a loop
         "请按时服药。请按时服药。",                        # a sentence twice: not a loop
         "挂号可以通过医院公众号、自助机或人工窗口办理，周末门诊正常开放。"]


@pytest.mark.parametrize("text", LOOPS)
def test_loops_are_detected(text):
    assert is_loop(text)
    assert repetition_scores(text)["loop"] is True


@pytest.mark.parametrize("text", CLEAN)
def test_clean_answers_do_not_loop(text):
    assert not is_loop(text)


def test_loop_thresholds_exactly():
    # unit of 4 chars: 3 copies (12 chars) loop, 2 copies + 3 chars do not
    assert is_loop("前言" + "多喝热水" * 3 + "结束")
    assert not is_loop("前言" + "多喝热水" * 2 + "多喝热" + "结束")
    # unit of 3 chars needs 12 chars: 4 copies loop, 3 do not
    assert is_loop("乏力、" * 4) and not is_loop("乏力、" * 3)
    # unit of 2 chars needs 12 chars: 6 copies
    assert is_loop("好的" * 6) and not is_loop("好的" * 5)
    # whitespace does not hide a loop
    assert is_loop("乏力、 乏力、\n乏力、 乏力、")


def test_longest_repeat_reports_unit_and_coverage():
    r = longest_repeat("症状：" + "高钠、高钾、" * 3 + "。")
    assert r.chars == 18 and r.repeats == pytest.approx(3.0) and set(r.unit) == set("高钠、钾")
    assert longest_repeat("没有重复的句子。").chars == 0


def test_distinct_n():
    assert distinct_n("乏力乏力乏力", 1) == pytest.approx(2 / 6)
    assert distinct_n("乏力乏力乏力", 2) == pytest.approx(2 / 5)
    assert distinct_n("一二三四", 2) == 1.0
    assert distinct_n("，。", 1) is None          # punctuation only: no n-grams
    assert "distinct_2" not in repetition_scores("好")


def _entry(answer: str, loop: bool) -> dict:
    return {"answer": answer, "new_tokens": 10, "hit_cap": False, "loop": loop,
            **{k: v for k, v in repetition_scores(answer).items() if k != "loop"},
            "safety": {"needs_reminder": False, "has_reminder": False, "emergency_guidance": False, "risky": []}}


def test_loop_rate_and_distinct_are_pooled_per_group():
    rows = [{"reference": "参考答案", "difficulty": "basic", "tuned": _entry(a, is_loop(a))} for a in LOOPS[:1] + CLEAN[:3]]
    s = summarize(rows, "tuned")
    assert s["loop_rate"] == pytest.approx(0.25)
    assert s["distinct_2"] == pytest.approx(sum(distinct_n(r["tuned"]["answer"], 2) for r in rows) / 4)

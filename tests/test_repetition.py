"""Loop detection and distinct-n (stages/evaluation/metrics/repetition.py) and their pooling."""
from __future__ import annotations

import pytest

from stages.evaluation.metrics.aggregate import summarize
from stages.evaluation.metrics.repetition import (MAX_SELF_REPEAT, _tandem_loop, distinct_n, is_loop, longest_repeat,
                                                    repetition_scores, self_repeat)

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


# drifting loops: the last 150 characters of three tuned-model answers to test questions under no_repeat_ngram_size
# (issue 14, session 8): every copy varies, so there is no exact tandem repeat, but the answer repeats itself
DRIFTS = ["甲状腺功能减九、甲状腺功能减十、甲状腺功能减十一、甲状腺功能减十二、甲状腺功能减十三、甲状腺功能减十四、甲状腺功能减十五、甲状腺功能减十六、甲状腺功能减十七、甲状腺功能减十八、甲状腺功能减十九、甲状腺功能减二十、甲状腺功能减三十、甲状腺功能减四十、甲状腺功能减五十、甲状腺功能减六十、甲状腺功能减七十",
          "不要用手机接听电话，也不要用手机发送短信；5.不要用手机看视频，也不要用手机听音乐；6.不要用手机打电话，也不要用手机发短信；7.不要用手机听视频，也不要用电话听音乐；8.不要用手机接电话，也不要用电话发短信；9.不要用手机接收短信，也不要用手机接电话；10.不要用手机发送短信，也不要用电话接电话。",
          "揉腹部、腹部、肚子、腹部、腹部；如果出现呕血、呕液、呕血、黑便、黑便、呕吐物、呕吐物、黑便、吐血、呕吐物，立即拨打110。等待时：不要用手指按揉腹部、腹背和腹部，不要用力揉腹部、腹部和腹部，不要用手指揉腹部、腹部，也不要用力揉腹部、腹。如果出现呕血，呕吐物、黑尿、呕血、黑色便、呕血，呕吐、呕血、恶心"]


@pytest.mark.parametrize("text", DRIFTS)
def test_drifting_loops_are_detected(text):
    assert not _tandem_loop(text)                               # no exact tandem repeat to find
    assert self_repeat(text) > MAX_SELF_REPEAT
    assert is_loop(text) and repetition_scores(text)["loop"] is True


def test_self_repeat_definition():
    assert self_repeat("短答案") is None                        # < 20 char 4-grams: not judged
    assert self_repeat("一二三四五六七八九十甲乙丙丁戊己庚辛壬癸子丑寅") == 0.0
    # 23 distinct chars, then the first 10 again: of the 30 4-grams, the 7 inside the copy repeat
    text = "一二三四五六七八九十甲乙丙丁戊己庚辛壬癸子丑寅" + "一二三四五六七八九十"
    assert self_repeat(text) == pytest.approx(7 / 30)
    assert repetition_scores(text)["self_repeat"] == pytest.approx(round(7 / 30, 4))


def test_self_repeat_threshold_spares_human_doctor_answers(shared_data):
    """The drift threshold is calibrated on human answers, not on model output: ≤ 1 % of the 7,644 real
    doctor answers in ../shared/data repeat themselves that much."""
    import pandas as pd

    answers = pd.read_csv(shared_data / "cmd_internal_medicine.gb18030.csv", encoding="gb18030")["answer"].dropna()
    over = sum((self_repeat(str(a)) or 0.0) > MAX_SELF_REPEAT for a in answers)
    assert len(answers) > 7000 and over / len(answers) <= 0.01


def test_no_authored_reference_answer_counts_as_a_loop():
    import json
    from pathlib import Path

    raw = Path(__file__).resolve().parents[1] / "data" / "raw"
    rows = [json.loads(line) for f in sorted(raw.glob("*.jsonl")) for line in f.open(encoding="utf-8")]
    answers = [r["answer"] for r in rows if r.get("answer")]
    assert len(answers) > 500 and not [a for a in answers if is_loop(a)]

"""The learned scorer for names without a cue (stages/safety/pii_name_scorer.py) and its fit (pii_name_fit.py)."""
from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from stages.safety import pii_name_scorer as scorer
from stages.safety.pii import mask_pii


# written for this test (no fixture's names): a name as the subject, after 一下 / 和, with no cue the rules list (跟 is
# one since session 25)
@pytest.mark.parametrize("text, name", [("康建新这周血压又高了，要不要加药", "康建新"),
                                        ("周晓梅上次开的降压药吃完了，能线上续方吗", "周晓梅"),
                                        # (session 29: 转告 became a rule cue, so "麻烦转告一下谢文斌" is masked by the rules too)
                                        ("记得提醒一下谢文斌，他的胃镜改到周四了", "谢文斌"),
                                        ("我和何丽娟说好了明天一起去复查", "何丽娟")])
def test_names_without_a_cue_are_masked_in_what_people_type(text, name):
    out = mask_pii(text)
    assert name not in out and "[姓名]" in out
    assert name in mask_pii(text, answer=True)          # a doctor's / the model's text: the rules only


@pytest.mark.parametrize("text", ["高血压吃什么药好", "王主任周三下午出诊吗", "常发生头晕怎么办", "白细胞偏高是什么原因",
                                  "石膏拆了以后还要复查吗", "黄体酮要吃几天", "金银花泡水喝可以吗", "胡萝卜素高是怎么回事",
                                  "苏打水能降尿酸吗", "孩子发烧38度5要不要去医院"])
def test_medical_words_with_a_surname_first_are_left_alone(text):
    assert mask_pii(text) == text


def test_candidates_are_name_shaped_and_never_inside_a_placeholder():
    text = "[姓名]陪王小明去[地址]，电话[手机号]"
    spans = scorer.candidates(text)
    assert (5, 8) in spans and text[5:8] == "王小明" and (5, 7) in spans       # 王小 too: the scorer picks
    assert all(scorer.cues.shape(text[b:e]) for b, e in spans)
    assert scorer.candidates("[王小明]") == [] and scorer.candidates("王小明]") == [(0, 2), (0, 3)]
    once = mask_pii("康建新这周血压又高了")
    assert mask_pii(once) == once                         # idempotent: placeholders are not re-scored


def test_probability_is_the_logistic_of_the_stored_weights():
    model = scorer.load()
    text = "康建新这周血压又高了"
    f = scorer.features(text, 0, 3)
    z = model["intercept"] + sum(model["weights"].get(k, 0.0) * v for k, v in f.items())
    assert scorer.probability(text, 0, 3) == pytest.approx(1 / (1 + math.exp(-z)))
    assert scorer.probability(text, 0, 3) >= model["threshold"] > scorer.probability("高血压吃什么药好", 0, 3)
    assert f["cue=none"] == 1 and f["L1=^"] == 1 and f["R1=这"] == 1     # no cue: the span's surroundings decide


def test_overlapping_spans_keep_the_more_likely_one():
    counts = Counter()
    out = scorer.mask_scored("康建新这周血压又高了", counts)
    assert out == "[姓名]这周血压又高了" and counts["name"] == 1     # not [姓名]新 nor two overlapping masks


def test_the_fit_reproduces_the_committed_weights(shared_data):
    """Refitting on the same inputs gives the committed file (up to floating-point noise of the solver). When this
    fails after authored data or a fixture changed, refit: python -m stages.safety.pii_name_fit (and re-measure,
    stages/PRIVACY.md)."""
    from stages.safety.pii_name_fit import fit

    committed = json.loads(scorer.WEIGHTS.read_text(encoding="utf-8"))
    refit = fit(shared=shared_data)
    assert refit["sources"] == committed["sources"]
    assert not any("heldout" in name for name in refit["sources"])            # the held-out fixture is never read
    assert refit["threshold"] == committed["threshold"] and refit["C"] == committed["C"]
    assert refit["intercept"] == pytest.approx(committed["intercept"], abs=1e-4)
    a, b = refit["weights"], committed["weights"]
    worst = max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))
    assert worst <= 2e-3, worst                          # keys at the 1e-3 cut-off may come and go


def test_the_fit_needs_the_real_questions(tmp_path):
    from stages.safety.pii_name_fit import real_questions

    with pytest.raises(SystemExit, match="cmd_internal_medicine.gb18030.csv is missing"):
        real_questions(tmp_path)

"""PII masking measured on independently written messages (tests/fixtures/pii, stages/safety/pii_eval.py) and on
real patient text (../shared/data): recall per kind, medical facts kept, messages without PII left alone.

Floors are the figures measured (stages/PRIVACY.md) rounded down: a change to the masker that loses recall or starts
masking medical numbers fails here. writer_u_dev.jsonl was the held-out set of session 21 and became development in
session 23; writer_v2_dev.jsonl was held out in session 23 and the first half of session 24, then development;
writer_v3_heldout.jsonl (session 24) and writer_v6_heldout.jsonl (session 25) were never used to change the masker or
to pick the name scorer's threshold."""
import json
from collections import Counter
from pathlib import Path

import pytest

from stages.safety.pii import mask_pii
from stages.safety.pii_eval import KINDS, check_rows, compact, leaked, score

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pii"
DEV = ("writer_s_dev.jsonl", "writer_t_dev.jsonl")
U_DEV = "writer_u_dev.jsonl"                 # held out in session 21, development since session 23
V2_DEV = "writer_v2_dev.jsonl"               # held out in session 23, development since session 24
V4_DEV = "writer_v4_dev.jsonl"               # development (session 24): records, QQ, WeChat, addresses
V5_DEV = "writer_v5_dev.jsonl"               # development (session 25): QQ, WeChat, addresses, names that are words
V7_DEV = "writer_v7_dev.jsonl"               # development (session 25): names only, most without a cue
HELD_OUT = "writer_v3_heldout.jsonl"
HELD_OUT_V6 = "writer_v6_heldout.jsonl"      # held out (session 25): measured at the session's start and end only
HELD_OUT_V8 = "writer_v8_heldout.jsonl"      # held out (session 27): Hong Kong / Macau / Taiwan and Cantonese users
HELD_OUT_V11 = "writer_v11_heldout.jsonl"    # held out (session 28): mainland, names weighted; misses never read
HELD_OUT_V12 = "writer_v12_heldout.jsonl"    # held out (session 28): mainland, addresses weighted; misses never read
HELD_OUT_V14 = "writer_v14_heldout.jsonl"    # held out (session 28): the same specification, another writer
V13_DEV = "writer_v13_dev.jsonl"             # development (session 28): addresses weighted; rules only, not reviewed
HELD_OUT_V16 = "writer_v16_heldout.jsonl"    # held out (session 29): addresses weighted, a fourth writer; reviewed
V15_DEV = "writer_v15_dev.jsonl"             # development (session 29): addresses weighted; rules only, not reviewed
HELD_OUT_V18 = "writer_v18_heldout.jsonl"    # held out (session 29): names weighted, V11's specification; reviewed
HELD_OUT_V21 = "writer_v21_heldout.jsonl"    # held out (session 29): addresses weighted; reviewed
HELD_OUT_V22 = "writer_v22_heldout.jsonl"    # held out (session 29): names weighted; reviewed
V19_DEV = "writer_v19_dev.jsonl"             # development (session 29): the hardest address forms; not reviewed
V20_DEV = "writer_v20_dev.jsonl"             # development (session 29): the hardest name forms; not reviewed
V17_DEV = "writer_v17_dev.jsonl"             # development (session 29): names weighted; rules only, not reviewed
V9_DEV = "writer_v9_dev.jsonl"               # development (session 27): HK / TW handles, records, names; rules only
V10_DEV = "writer_v10_dev.jsonl"             # held out in session 28 (measured twice), then development; rules only


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("kind,value,masked,expected", [
    ("mobile", "138 1234 5678", "电话[手机号]", False),
    ("mobile", "138 1234 5678", "电话138 [手机号]", False),           # 3 digits left: not a number anyone can call
    ("mobile", "138 1234 5678", "电话1381234[手机号]", True),          # 7 digits left
    ("mobile", "幺三八一二三四五六七八", "电话13812345678", True),      # Chinese numerals read as digits
    ("email", "zhang.san@qq.com", "[邮箱]", False),
    ("email", "zhang.san@qq.com", "zhang.san@[邮箱]", True),
    ("name", "王小明", "我叫[姓名]", False),
    ("name", "王小明", "我叫王小明", True),
    ("address", "建国路88号3栋2单元301室", "住在建国路[地址]", False),   # the road alone does not find a home
    ("address", "建国路88号3栋2单元301室", "住在[地址]3栋2单元301室", True),
])
def test_a_value_leaks_when_enough_of_it_survives(kind, value, masked, expected):
    assert leaked(kind, value, masked) is expected


def test_score_counts_recall_kept_facts_and_false_positives():
    rows = [{"text": "我叫王小明，血压150/95", "pii": [{"kind": "name", "value": "王小明"}], "keep": ["150/95"]},
            {"text": "我是应届生，体检查什么", "pii": [], "keep": ["应届生"]}]
    unmasked = score(rows, mask=lambda t: t)
    assert unmasked["recall"] == 0.0 and unmasked["false_positive_messages"] == 0
    over = score(rows, mask=lambda t: "[姓名]")
    assert over["recall"] == 1.0 and over["keep_over_masked"] == 2 and over["false_positive_messages"] == 1
    assert score(rows)["recall"] == 1.0 and score(rows)["keep_over_masked"] == 0


def test_check_rows_names_the_bad_line():
    with pytest.raises(ValueError, match="set.jsonl:2: pii value"):
        check_rows([{"text": "a", "pii": []}, {"text": "我叫王五", "pii": [{"kind": "name", "value": "李四"}]}], "set.jsonl")
    with pytest.raises(ValueError, match="unknown kind"):
        check_rows([{"text": "a", "pii": [{"kind": "ssn", "value": "a"}]}], "x")


@pytest.mark.parametrize("name", DEV + (U_DEV, V2_DEV, V4_DEV, HELD_OUT, HELD_OUT_V6))
def test_fixture_sets_are_well_formed_and_cover_every_kind(name):
    rows = _rows(name)
    check_rows(rows, name)
    kinds = Counter(p["kind"] for r in rows for p in r["pii"])
    assert set(kinds) == set(KINDS) and min(kinds.values()) >= 6, kinds
    assert sum(not r["pii"] for r in rows) >= 140 and len({r["text"] for r in rows}) == len(rows)


@pytest.mark.parametrize("name, kinds, names, negatives", [(V5_DEV, 11, 80, 140), (V7_DEV, 4, 300, 140),
                                                            (V9_DEV, 11, 90, 80)])
def test_focused_development_sets_are_well_formed(name, kinds, names, negatives):
    """V5 weights QQ / WeChat / addresses / names (fewer of the other kinds), V7 is about names only, V9 about Hong
    Kong / Macau / Taiwan handles, records and names."""
    rows = _rows(name)
    check_rows(rows, name)
    counts = Counter(p["kind"] for r in rows for p in r["pii"])
    assert len(counts) >= kinds and counts["name"] >= names and sum(not r["pii"] for r in rows) >= negatives, counts
    assert len({r["text"] for r in rows}) == len(rows)


@pytest.mark.parametrize("name", DEV)
def test_masker_on_the_development_sets(name):
    s = score(_rows(name))
    assert s["recall"] >= 0.95, s["recall_per_kind"]
    assert s["recall_per_kind"]["name"]["recall"] >= 0.85
    assert all(v["recall"] >= 0.93 for k, v in s["recall_per_kind"].items() if k != "name"), s["recall_per_kind"]
    assert s["keep_over_masked"] == 0
    assert s["false_positive_messages"] <= 1          # "我姓王": a surname alone is masked on purpose


def test_masker_on_the_held_out_set():
    s = score(_rows(HELD_OUT))
    assert s["recall"] >= HELD_OUT_FLOOR["recall"], s["recall_per_kind"]
    assert s["recall_per_kind"]["name"]["recall"] >= HELD_OUT_FLOOR["name"]
    assert s["keep_over_masked"] <= HELD_OUT_FLOOR["keep_over_masked"]
    assert s["false_positive_messages"] <= HELD_OUT_FLOOR["false_positive_messages"]


# writer V3 (held out, session 24; 173 names, ~106 without a cue, many of them ordinary words: 高明, 关心, 柏林; 38 drug
# and herb names and 17 historical physicians among the 150 messages without PII), measured after review: the masker as
# the session began 0.6759 (name 0.353), 0 of 643 kept facts over-masked, 0 of 150 messages without PII changed; with
# the first name scorer 0.7931 (name 0.647), 7, 7; the second (V2 read) 0.8023 (name 0.665), 4, 4; after
# writer V4's record / QQ / WeChat / address forms, 0.8391 (name 0.688; records 0.667 -> 0.970), 4, 4 (stages/PRIVACY.md);
# session 25 (V5 and V7 read, scorer refitted on seven writers at 0.45): 0.8874 (name 0.763; QQ 0.70 -> 1.0, WeChat 0.81
# -> 0.94, addresses 0.83 -> 0.89), 4, 4
HELD_OUT_FLOOR = {"recall": 0.88, "name": 0.76, "keep_over_masked": 4, "false_positive_messages": 4}


def test_masker_on_the_second_held_out_set():
    """Writer V6 (session 25; 133 names, 77 without a cue): the masker as the session began 0.9082 (name 0.767, QQ
    0.81), 1 of 275 kept facts over-masked, 1 of 150 messages without PII changed; as committed 0.942 (name 0.850, QQ
    1.0), 1, 2 (stages/PRIVACY.md, *Session 25*)."""
    s = score(_rows(HELD_OUT_V6))
    assert s["recall"] >= 0.94 and s["recall_per_kind"]["name"]["recall"] >= 0.84, s["recall_per_kind"]
    assert s["keep_over_masked"] <= 1 and s["false_positive_messages"] <= 2


def test_masker_on_the_hong_kong_macau_taiwan_held_out_set():
    """Writer V8 (session 27; 343 messages, 277 values, mostly traditional characters: HKID, Taiwan and Macau IDs, +852 /
    852- / 886- numbers, estates and flats, romanised names). The masker as the session began 0.628 (id 0.317, address
    0.591, passport 0.636, mobile 0.759, name 0.745); with the session-27 forms (written from the published formats,
    before V8 was read) 0.874 (id 1.0, address 0.932, passport 0.909, mobile 0.889, name 0.784); after the development
    writer V9 was read (V8's per-kind figures had been seen, its misses not) 0.939 (WeChat / LINE 0.4 -> 0.8, records
    0.61 -> 1.0, names 0.902); 0 of 293 kept facts over-masked, 0 of 121 messages without PII changed throughout
    (stages/PRIVACY.md, *Session 27*)."""
    rows = _rows(HELD_OUT_V8)
    check_rows(rows, HELD_OUT_V8)
    s = score(rows)
    per = {k: v["recall"] for k, v in s["recall_per_kind"].items()}
    assert s["recall"] >= 0.93 and per["id"] >= 0.98 and per["address"] >= 0.95 and per["name"] >= 0.9, per
    assert per["record"] >= 0.98 and per["passport"] >= 0.9, per
    assert s["keep_over_masked"] == 0 and s["false_positive_messages"] == 0


def test_masker_on_the_mainland_names_held_out_set():
    """Writer V11 (session 28; 360 messages, 346 values, 178 names — 84 without a cue, minority, rare and compound
    surnames, names that are words —, reviewed line by line). Measured twice, its misses not read: the masker as the
    session began 0.8815 (names 0.7865), with the session-28 name forms 0.8960 (names 0.8146); 0 of 322 kept facts
    over-masked, 2 of 120 messages without PII changed both times. With the address forms after it (the name scorer
    refitted on the newly masked texts): 0.8960 (addresses 0.932 -> 0.977, names 0.815 -> 0.803); after the second
    address round 0.9017 (names 0.815) (stages/PRIVACY.md, *Session 28*). Session 29's name round: 0.9335 (names
    0.871)."""
    rows = _rows(HELD_OUT_V11)
    check_rows(rows, HELD_OUT_V11)
    s = score(rows)
    per = {k: v["recall"] for k, v in s["recall_per_kind"].items()}
    assert s["recall"] >= 0.93 and per["name"] >= 0.87 and per["address"] >= 0.97, per
    assert s["keep_over_masked"] == 0 and s["false_positive_messages"] <= 2


# The names-weighted held-out writers of session 29 (V11's specification, writers who read no project file, reviewed line
# by line; misses never read; stages/PRIVACY.md *Session 29*). V18 (360 messages, 169 names, 103 without a cue; 6 address
# spans trimmed): 0.9133 (names 0.8402, 142 / 169) before the session's name forms, 0.9226 (0.8580, 145) with them, nothing
# over-masked either time. V22 (392 messages, 237 names; 1 landline corrected): 0.9358 (names 0.8903, 211 / 237) with the
# committed masker; a further candidate reached 212 of 237 (+1, its rule asked +3) and was not adopted.
@pytest.mark.parametrize("name, recall, names, keep, fp", [(HELD_OUT_V18, 0.92, 0.85, 0, 0),
                                                          (HELD_OUT_V22, 0.93, 0.89, 2, 0)])
def test_masker_on_the_names_held_out_sets_of_session_29(name, recall, names, keep, fp):
    rows = _rows(name)
    check_rows(rows, name)
    s = score(rows)
    per = {k: v["recall"] for k, v in s["recall_per_kind"].items()}
    assert s["recall"] >= recall and per["name"] >= names and per["address"] >= 0.97, per
    assert s["keep_over_masked"] <= keep and s["false_positive_messages"] <= fp


# The address-weighted held-out writers (session 28, reviewed line by line, misses never read; stages/PRIVACY.md *Session
# 28*). V12 (340 messages, 149 addresses: rural groups, hamlets, houses by position, compounds, lanes, dormitories,
# delivery points): 0.8377 (addresses 0.7114) before the session's address forms, 0.8604 (0.7517) with the first round,
# 0.8943 (0.8121) after the second. V14 (358 messages, 171 addresses; the same specification, another writer): 0.7667
# (0.6257) before the second round, 0.7967 (0.6784) with it (written from the development writer V13). Nothing over-masked
# and no message without PII changed in either, at any step. Session 29's address round (written from the development
# writers V13 and V15): V12 0.9094 (0.8389), V14 0.8167 (0.7135); V16 (340 messages, 145 addresses, a fourth writer,
# reviewed; measured once before and once after): 0.9007 (0.8345) -> 0.9315 (0.8966), its 3 over-masked facts and 3
# changed messages without PII the same before and after. V21 (340 messages, 147 addresses, reviewed: 2 lines): 0.9004
# (0.8435) with the committed masker; a further candidate reached 125 of 147 addresses (+1, its rule asked +3): not adopted.
@pytest.mark.parametrize("name, recall, addresses, names, keep, fp", [(HELD_OUT_V12, 0.90, 0.83, 0.95, 0, 0),
                                                                      (HELD_OUT_V14, 0.81, 0.71, 0.86, 0, 0),
                                                                      (HELD_OUT_V16, 0.93, 0.89, 0.94, 3, 3),
                                                                      (HELD_OUT_V21, 0.90, 0.84, 0.95, 0, 0)])
def test_masker_on_the_address_held_out_sets(name, recall, addresses, names, keep, fp):
    rows = _rows(name)
    check_rows(rows, name)
    s = score(rows)
    per = {k: v["recall"] for k, v in s["recall_per_kind"].items()}
    assert s["recall"] >= recall and per["address"] >= addresses and per["name"] >= names, per
    assert s["keep_over_masked"] <= keep and s["false_positive_messages"] <= fp


# writer U (development since session 23): session 21's masker 0.7466 (name 0.522), session 23's 0.8235 (name 0.683).
# Writer V2 (held out in session 23; development since session 24): session 23's masker 0.8253 (name 0.637), 2 + 2 false
# positives; the first session-24 name scorer, fitted on S, T, U only: 0.919 (name 0.873), 3 + 3. Since then S, T, U and
# V2 are the name scorer's training data and V2's misses were read, so these floors are in-sample; so are V4's, V5's
# (session 25: 0.798 before its misses were read, names 0.590) and V7's (0.660 after the V5 round, before its own, names
# 0.652). V10 (session 28; mainland, 209 names, 120 without a cue): 0.835 (names 0.756) held out; then its misses were
# read (development, rules only): 0.886 (names 0.842) with the session-28 name forms, 0.905 (names 0.852) with the address
# forms, 0.899 (names 0.847) after the second address round (its refit); V13 (addresses, development): 0.856 -> 0.938
# (stages/PRIVACY.md *Session 28*); session 29's address round: V13 0.973; V15 (addresses, development): 0.855 (addresses
# 0.770) with the V13 forms -> 0.911 (0.876); 0.848 (0.758) at the session's start. Session 29's name round (written from
# V10 and the new development writer V17): V10 names 0.847 -> 0.900, V17 (160 names) 0.838 -> 0.913. V19 (addresses) and
# V20 (names): development writers asked for the hardest forms; a candidate written from them (V19 addresses 0.618 ->
# 0.714, V20 names 0.733 -> 0.792) did not carry to the held-out V21 / V22 and was not adopted: these floors are the
# committed masker's.


@pytest.mark.parametrize("name, recall, names, keep, fp", [(U_DEV, 0.94, 0.89, 6, 0), (V2_DEV, 0.98, 0.96, 0, 0),
                                                          (V4_DEV, 0.95, 0.95, 2, 1), (V5_DEV, 0.98, 0.97, 0, 0),
                                                          (V7_DEV, 0.88, 0.87, 1, 1), (V9_DEV, 0.92, 0.84, 5, 3),
                                                          (V10_DEV, 0.93, 0.89, 3, 0), (V17_DEV, 0.93, 0.91, 0, 0),
                                                          (V13_DEV, 0.97, 0.95, 1, 1), (V15_DEV, 0.91, 0.88, 1, 0),
                                                          (V19_DEV, 0.76, 0.94, 0, 0), (V20_DEV, 0.84, 0.73, 0, 4)])
def test_masker_on_the_former_held_out_sets(name, recall, names, keep, fp):
    s = score(_rows(name))
    assert s["recall"] >= recall and s["recall_per_kind"]["name"]["recall"] >= names, s["recall_per_kind"]
    assert s["keep_over_masked"] <= keep and s["false_positive_messages"] <= fp


def test_traditional_script_is_masked_and_kept():
    out = mask_pii("我婆婆叫羅美玲，病歷號是390268671，想問一下週六有沒有風濕科的專家門診")
    assert "羅美玲" not in out and "390268671" not in out
    assert out.startswith("我婆婆叫[姓名]") and "週六有沒有風濕科的專家門診" in out    # the user's script stays


@pytest.mark.parametrize("text", ["我家住在28楼，电梯坏了，术后能爬楼吗", "我是应届生，入职体检查哪些项目", "我爸黄疸很重",
                                  "让孩子舒服些，通常在体温较高时用", "患者应戒酒，忌辛辣", "我老家河南省周口市，能异地报销吗"])
def test_look_alikes_are_left_alone(text):
    assert compact(mask_pii(text)) == compact(text)


def test_real_patient_text_is_almost_never_masked(shared_data):
    """Every question and doctor answer of the 7,644-row CSV and every ShareGPT turn: placeholders there are
    nearly all false positives (the ones found in session 21 were real names: 我叫窦磊, 陈祖金，男，44岁, 病人陈静瑜)."""
    import pandas as pd

    from stages.data.text import normalize

    df = pd.read_csv(shared_data / "cmd_internal_medicine.gb18030.csv", encoding="gb18030").fillna("")
    asked = [f"{t} {a}".strip() for t, a in zip(df["title"], df["ask"])]      # what people type: the full masker
    answered = list(df["answer"])                                               # doctors' text: answer=True
    with open(shared_data / "medicalgpt_sft_1k.sharegpt.jsonl", encoding="utf-8") as fh:
        for line in fh:
            for turn in json.loads(line)["conversations"]:
                (asked if turn["from"] == "human" else answered).append(turn["value"])
    changed = ([mask_pii(t) for t in asked if mask_pii(t) != normalize(t)]
               + [mask_pii(t, answer=True) for t in answered if mask_pii(t, answer=True) != normalize(t)])
    assert len(asked) + len(answered) > 17000 and len(changed) <= 8, [t[:80] for t in changed]


def test_authored_data_holds_no_unmasked_personal_data():
    """Every text field of every JSONL file under data/ (authored corpus, triage and injection sets, candidates,
    feedback, review, and pipeline outputs where present) is already masked: masking it again changes nothing.
    Session 21's masker found one name there (data/injection/writer_q_eval.jsonl line 92, now masked)."""
    from stages.data.text import normalize

    repo = Path(__file__).resolve().parents[1]
    files = sorted((repo / "data").rglob("*.jsonl"))
    unmasked, n = [], 0
    for f in files:
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            try:
                row = json.loads(line)
            except ValueError:
                continue                               # rejected.jsonl keeps broken source lines' reasons, not text
            for key in ("text", "question", "answer"):
                value = row.get(key) if isinstance(row, dict) else None
                if isinstance(value, str):
                    n += 1
                    if mask_pii(value, answer=key == "answer") != normalize(value):
                        unmasked.append(f"{f.relative_to(repo)}:{i} {key}")
    assert len(files) >= 20 and n > 8000 and unmasked == SCORER_LOOK_ALIKES, unmasked[:10]


# The learned name scorer's (stages/safety/pii_name_scorer.py) false positives in files it was not fitted on, read
# and left as they are (session 24): no name is there. A new entry here is either a name to mask in the file or a
# new false positive to look at.
SCORER_LOOK_ALIKES = [
    "data/triage/pending/writer_z_medium.jsonl:165 text",                   # 米諾環素 (minocycline, 米 + 诺环)
]   # session 25: 个包红红的 (data/candidates/concise_s19/dr_obgyn_derm_ortho.jsonl:28) no longer taken for a name

"""Feedback store (SQLite, WAL), review queue rules, masking, and the deterministic export."""
from __future__ import annotations

import sqlite3

import pytest

from stages import feedback as feedback_cli
from stages.common.jsonio import read_jsonl
from stages.humanloop.export import export_feedback
from stages.humanloop.feedback_store import FeedbackStore, NotFound

PHONE = "13812345678"


@pytest.fixture
def store(tmp_path):
    return FeedbackStore(tmp_path / "fb" / "feedback.sqlite").init()


def test_created_in_wal_mode_and_idempotent(store):
    assert store.path.is_file() and store.journal_mode().lower() == "wal"
    store.init()
    tables = {r[0] for r in sqlite3.connect(store.path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"answers", "feedback", "queue"} <= tables


def test_queue_rules_risky_and_thumbs_down_masked(store):
    assert store.record_answer("aa01", "chat", f"我叫张三，电话{PHONE}，头疼吃什么药", "可以吃布洛芬。", ["reminder_added"],
                               "pass", False) is False
    assert store.record_answer("aa02", "predict", "降压药怎么吃", "每次吃两片", ["risky:specific_dosing"],
                               "pass", False) is True
    assert [i["request_id"] for i in store.queue()] == ["aa02"]
    up = store.add_feedback("aa01", "up", None, None)
    assert up["queued"] is False and [i["request_id"] for i in store.queue()] == ["aa02"]
    down = store.add_feedback("aa01", "down", f"应先就医，联系{PHONE}", "回答太随意")
    assert down["queued"] is True
    items = {i["request_id"]: i for i in store.queue()}
    assert items["aa02"]["reasons"] == ["risky_rule"] and items["aa02"]["rules"] == ["risky:specific_dosing"]
    assert items["aa01"]["reasons"] == ["thumbs_down"]
    assert [f["rating"] for f in items["aa01"]["feedback"]] == ["up", "down"]
    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    assert PHONE not in dump and "张三" not in dump and "[手机号]" in dump and "[姓名]" in dump
    with pytest.raises(NotFound):
        store.add_feedback("ffff", "down", None, None)


def test_decisions_and_deterministic_export(store, tmp_path):
    for rid, q in [("bb01", "血压高头晕怎么办"), ("bb02", "感冒能喝酒吗"), ("bb03", "孩子发烧怎么办"), ("bb04", "失眠怎么办")]:
        store.record_answer(rid, "chat", q, "随便吃点药。", [], "pass", False)
    store.add_feedback("bb01", "down", "头晕伴血压高应尽快测量血压，必要时到心内科就诊。", None)
    store.add_feedback("bb02", "down", None, None)
    store.add_feedback("bb03", "down", "体温超过38.5度可以按说明书使用退烧药，精神差时及时就医。", None)
    store.add_feedback("bb04", "down", None, None)
    assert store.decide("bb01", "approve", "dr_wang")["final_answer"].startswith("头晕伴血压高")
    assert store.decide("bb02", "correct", "dr_wang", "感冒期间不建议饮酒，尤其是服用头孢类药物时。", "呼吸内科")["status"] == "corrected"
    assert store.decide("bb03", "dismiss", "dr_wang")["status"] == "dismissed"
    assert store.decide("bb04", "approve", "dr_wang")["final_answer"] is None     # confirmed as is: not exported
    with pytest.raises(NotFound):
        store.decide("cc99", "approve", "dr_wang")
    out = tmp_path / "data/feedback/approved.jsonl"
    res = export_feedback(store, out)
    rows = read_jsonl(out)
    assert res["records"] == 2 and [r["request_id"] for r in rows] == ["bb01", "bb02"]
    assert rows[1] == {"id": "feedback:bb02", "question": "感冒能喝酒吗", "answer": "感冒期间不建议饮酒，尤其是服用头孢类药物时。",
                       "category": "呼吸内科", "difficulty": rows[1]["difficulty"], "source": "feedback",
                       "request_id": "bb02", "decision": "corrected"}
    assert rows[0]["category"] == "综合" and rows[0]["difficulty"] in {"basic", "intermediate", "advanced", "emergency", "prevention"}
    first = out.read_bytes()
    export_feedback(store, out)
    assert out.read_bytes() == first                                                 # deterministic
    store.decide("bb01", "dismiss", "dr_li")                                        # later dismissed → dropped
    assert [r["request_id"] for r in read_jsonl(out)] == ["bb01", "bb02"]
    export_feedback(store, out)
    assert [r["request_id"] for r in read_jsonl(out)] == ["bb02"]


def test_cli_export(store, tmp_path, capsys):
    store.record_answer("dd01", "chat", "胃疼怎么办", "喝热水。", [], "pass", False)
    store.add_feedback("dd01", "down", "反复胃痛应到消化内科就诊，必要时做胃镜检查。", None)
    store.decide("dd01", "approve", "dr_zhao")
    out = tmp_path / "fb.jsonl"
    assert feedback_cli.main(["export", "--db", str(store.path), "--out", str(out)]) == 0
    assert "1 approved corrections" in capsys.readouterr().out and len(read_jsonl(out)) == 1
    assert feedback_cli.main(["export", "--db", str(tmp_path / "missing.sqlite"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err

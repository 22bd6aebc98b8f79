"""Every input record ends as exactly one kept record or one reject with origin and reason
(stages/data/formats.py readers + the clean stage): ShareGPT with a malformed turn or unknown roles,
record containers ({"records": [...]}, {"data": [...]}); reader rejects are stored PII-masked."""
import json

from stages import clean
from stages.common.config import CleanParams, DataParams
from stages.common.jsonio import read_jsonl
from stages.data.formats import RawRecord, Reject, read_source

LONG = "建议低盐低脂饮食，规律作息，适量运动，定期监测血压，如有不适及时就医。"


def items(path):
    return list(read_source(path, path.stem, {"question": "q", "answer": "a"}))


def write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def run_clean(tmp_path, f):
    m = clean.run(DataParams(sources=[str(f)]), CleanParams(), tmp_path / "out", tmp_path / "m.json")
    return m, read_jsonl(tmp_path / "out/qa.jsonl"), read_jsonl(tmp_path / "out/rejected.jsonl")


def turn(role, value):
    return {"from": role, "value": value}


def test_malformed_sharegpt_turn_rejects_its_pair_only(tmp_path):
    conv = [turn("human", "问1"), turn("gpt", "答1"),
            turn("human", "问2"), {"from": "gpt", "value": None},          # malformed answer: pair 2 rejected
            turn("human", "问3"), turn("gpt", "答3"),
            {"value": "问4"}, turn("gpt", "答4"),                            # turn without 'from'
            turn("human", "问5"), turn("gpt", "答5")]
    f = write(tmp_path / "s.jsonl", [{"conversations": conv}])
    out = items(f)
    kept = [(o.question, o.answer) for o in out if isinstance(o, RawRecord)]
    assert kept == [("问1", "答1"), ("问3", "答3"), ("问5", "答5")]
    rej = [(o.origin, o.reason) for o in out if isinstance(o, Reject)]
    assert rej == [(f"{f}:1#2", "bad_type"), (f"{f}:1#6", "bad_type"), (f"{f}:1#7", "unpaired_turn")]


def test_malformed_human_turn_takes_its_answer_with_it(tmp_path):
    conv = [{"from": "human", "value": 42}, turn("gpt", "答1"), turn("human", "问2"), turn("gpt", "答2")]
    out = items(write(tmp_path / "s.jsonl", [{"conversations": conv}]))
    assert [type(o).__name__ for o in out] == ["Reject", "RawRecord"]
    assert out[0].reason == "bad_type" and out[0].origin.endswith(":1#0") and out[1].question == "问2"


def test_unknown_roles_are_rejected_with_a_reason(tmp_path):
    conv = [turn("system", "你是医生"), turn("human", "问1"), {"from": "tool", "value": {"name": "x"}}, turn("gpt", "答1"),
            turn("observation", "x"), turn("human", "问2"), turn("assistant", "答2")]
    f = write(tmp_path / "s.jsonl", [{"conversations": conv}])
    out = items(f)
    assert [(o.question, o.answer) for o in out if isinstance(o, RawRecord)] == [("问1", "答1"), ("问2", "答2")]
    rej = [(o.origin, o.reason) for o in out if isinstance(o, Reject)]
    assert rej == [(f"{f}:1#0", "system_turn"), (f"{f}:1#2", "unknown_role"), (f"{f}:1#4", "unknown_role")]
    assert "'tool'" in [o for o in out if isinstance(o, Reject)][1].detail


def test_record_containers_yield_every_record(tmp_path):
    recs = [{"question": f"问题{i}怎么办", "answer": LONG + str(i)} for i in range(3)]
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"version": 2, "records": recs}, ensure_ascii=False), encoding="utf-8")
    out = items(f)
    assert [o.question for o in out] == ["问题0怎么办", "问题1怎么办", "问题2怎么办"]
    assert [o.origin for o in out] == [f"{f}:[0]", f"{f}:[1]", f"{f}:[2]"]
    g = write(tmp_path / "c.jsonl", [{"data": recs[:2]}, {"records": [recs[2], {"question": "缺答案"}]}, {"items": []}])
    out = items(g)
    assert [o.origin for o in out] == [f"{g}:1[0]", f"{g}:1[1]", f"{g}:2[0]", f"{g}:2[1]", f"{g}:3"]
    assert [getattr(o, "reason", "kept") for o in out] == ["kept"] * 3 + ["missing_field", "empty_container"]


def test_clean_reconciles_every_case(tmp_path):
    conv = [turn("system", "s"), turn("human", "胃疼怎么办？"), turn("gpt", LONG), turn("human", "头疼"),
            {"from": "gpt"}, turn("tool", "x"), turn("human", "发烧怎么办？"), turn("gpt", LONG + "多喝水。")]
    f = write(tmp_path / "all.jsonl", [
        {"conversations": conv},
        {"records": [{"question": "咳嗽怎么办？", "answer": LONG + "止咳。"}, {"question": "缺答案"}]},
        {"question": "高血压吃什么？", "answer": LONG + "少盐。"},
        "{broken",
    ])
    m, kept, rej = run_clean(tmp_path, f)
    assert m["read"] == m["kept"] + m["rejected"] == len(kept) + len(rej) == 9
    assert len(kept) == 4
    assert sorted(r["reason"] for r in rej) == ["bad_json", "bad_type", "missing_field", "system_turn", "unknown_role"]
    assert all(r["origin"].startswith(f"{f}:") for r in rej)


def test_reader_rejects_are_stored_masked(tmp_path):
    f = write(tmp_path / "p.jsonl", [
        '{"question": "我的电话13812345678，身份证11010519491231002X", broken',
        {"question": "邮箱zhangsan＠qq.com 我叫王小明，", "answer": 13812345678},
        {"question": "住院号：ZY2023001", "no_answer": "138 1234 5678"},
        {"conversations": [turn("human", "微信号：wxid_abc123"), turn("robot", "电话 138-1234-5678")]},
    ])
    m, kept, rej = run_clean(tmp_path, f)
    assert m["read"] == m["rejected"] == len(rej) == 5
    stored = (tmp_path / "out/rejected.jsonl").read_text(encoding="utf-8")
    for secret in ("13812345678", "1234 5678", "1234-5678", "11010519491231002X", "zhangsan", "王小明",
                   "ZY2023001", "wxid_abc123"):
        assert secret not in stored, secret
    for tag in ("[手机号]", "[身份证号]", "[邮箱]", "[姓名]", "[编号]", "[微信号]"):
        assert tag in stored, tag

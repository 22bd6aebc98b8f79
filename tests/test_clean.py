import json
from pathlib import Path

import pytest

from stages import clean
from stages.common.config import CleanParams, DataParams
from stages.common.jsonio import read_jsonl

REPO = Path(__file__).resolve().parents[1]


def params(tmp_path, sources, **kw):
    data = DataParams(sources=[str(s) for s in sources])
    cp = CleanParams(terms_file=str(REPO / "data/terms.tsv"), **kw)
    return data, cp


def run(tmp_path, sources, **kw):
    data, cp = params(tmp_path, sources, **kw)
    m = clean.run(data, cp, tmp_path / "out", tmp_path / "m.json")
    return m, read_jsonl(tmp_path / "out/qa.jsonl"), read_jsonl(tmp_path / "out/rejected.jsonl")


def write(path: Path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                    encoding="utf-8")
    return path


LONG = "建议低盐低脂饮食，规律作息，适量运动，定期监测血压，如有不适及时就医。"


def test_reconciles_and_records_reasons(tmp_path):
    f = write(tmp_path / "a.jsonl", [
        {"question": "高血压平时要注意什么？", "answer": "你好，" + LONG + "希望对你有所帮助"},
        {"question": "高血压平时要注意什么？", "answer": LONG},                       # exact dup after cleaning
        {"question": "hello there", "answer": LONG},                                    # no Chinese
        {"question": "心梗是什么病？", "answer": "好"},                                 # too short
        "{broken",
        {"question": "我的电话13812345678，胃疼怎么办", "answer": "心梗要立即拨打120。" + LONG},
        {"question": "测试等级", "answer": LONG + "。", "difficulty": "超难"},            # bad tier
    ])
    m, kept, rej = run(tmp_path, [f])
    assert m["read"] == 7 == m["kept"] + m["rejected"]
    assert m["rejected_by_reason"] == {"bad_difficulty": 1, "bad_json": 1, "exact_duplicate": 1,
                                       "question_no_chinese": 1, "answer_too_short": 1}
    assert all(r["origin"].startswith(str(f) + ":") for r in rej)
    assert {r["origin"] for r in rej} >= {f"{f}:2", f"{f}:5"}
    first = kept[0]
    assert first["answer"] == LONG and first["question"] == "高血压平时要注意什么？"
    pii = next(r for r in kept if "胃疼" in r["question"])
    assert "[手机号]" in pii["question"] and "13812345678" not in json.dumps(kept, ensure_ascii=False)
    assert pii["answer"].startswith("心肌梗死")          # term standardisation in answers
    assert pii["difficulty"] == "intermediate" and pii["difficulty_inferred"] is True
    assert set(first) >= {"id", "question", "answer", "category", "difficulty", "source", "origin"}


def test_near_duplicates_removed_on_datatrove_and_name_the_kept_record(tmp_path):
    base = "糖尿病患者应控制饮食总热量，少吃精制糖和油炸食品，多吃蔬菜和粗粮，坚持每周运动，并定期监测血糖和糖化血红蛋白。"
    f = write(tmp_path / "n.jsonl", [
        {"question": "糖尿病饮食怎么安排？", "answer": base},
        {"question": "糖尿病饮食怎么安排?", "answer": base + "记得按时复诊。"},
        {"question": "感冒了能洗澡吗？", "answer": "可以用温水快速洗澡，注意保暖，洗后及时擦干头发，避免受凉加重症状。"},
        {"question": "糖尿病飲食怎麼安排，謝謝12", "answer": base.replace("监测", "監測")},   # traditional + suffix
        {"question": "糖尿病饮食怎么安排？", "answer": base},                                # exact
    ])
    m, kept, rej = run(tmp_path, [f])
    assert m["rejected_by_reason"] == {"near_duplicate": 2, "exact_duplicate": 1} and len(kept) == 2
    first = kept[0]["id"]
    assert all(r["duplicate_of"] == first and r["detail"] == f"same as {first}" for r in rej)
    assert [r["origin"] for r in rej] == [f"{f}:2", f"{f}:4", f"{f}:5"]
    assert m["read"] == m["kept"] + m["rejected"] == len(kept) + len(rej)
    m, kept, rej = run(tmp_path, [f], near_dup=False)
    assert m["rejected_by_reason"] == {"exact_duplicate": 1} and len(kept) == 4


def test_same_template_different_disease_is_kept(tmp_path):
    tpl = "{d}患者平时饮食要注意什么？", "{d}患者饮食应清淡，少盐少油，戒烟限酒，按时服药并定期复查{d}相关指标。"
    f = write(tmp_path / "t.jsonl", [{"question": tpl[0].format(d=d), "answer": tpl[1].format(d=d)}
                                     for d in ("高血压", "糖尿病", "冠心病", "痛风")])
    m, kept, rej = run(tmp_path, [f])
    assert len(kept) == 4 and not rej


def test_same_output_for_one_and_two_workers(tmp_path, shared_data):
    src = [shared_data / "cmd_internal_medicine.gb18030.csv", REPO / "data/raw/svc_guahao.jsonl"]
    outs = []
    for w in (1, 2):
        data, cp = params(tmp_path, src, workers=w, shard_rows=2000)     # several datatrove tasks
        m = clean.run(data, cp, tmp_path / f"w{w}", tmp_path / f"w{w}.json")
        outs.append([(tmp_path / f"w{w}/{n}").read_bytes() for n in ("qa.jsonl", "rejected.jsonl")]
                    + [(tmp_path / f"w{w}.json").read_bytes()])
    assert outs[0] == outs[1] and m["read"] == m["kept"] + m["rejected"] > 1000


def test_strict_fails_with_first_offending_line(tmp_path):
    f = write(tmp_path / "s.jsonl", [{"question": "胃疼怎么办", "answer": LONG}, "{bad", "{bad2"])
    with pytest.raises(clean.StrictModeError, match=rf"s.jsonl:2: bad_json"):
        run(tmp_path, [f], strict=True)


def test_ids_stable_across_runs(tmp_path):
    f = write(tmp_path / "a.jsonl", [{"question": "胃疼怎么办", "answer": LONG}])
    _, k1, _ = run(tmp_path, [f])
    _, k2, _ = run(tmp_path, [f])
    assert k1 == k2 and len(k1[0]["id"]) == 16


def test_shared_csv_and_sharegpt_reconcile(tmp_path, shared_data):
    m, kept, rej = run(tmp_path, [shared_data / "cmd_internal_medicine.gb18030.csv",
                                  shared_data / "medicalgpt_sft_1k.sharegpt.jsonl"])
    src = m["by_source"]
    assert src["cmd_internal_medicine.gb18030"]["read"] == 7644
    assert src["medicalgpt_sft_1k.sharegpt"]["read"] >= 1000
    assert m["read"] == m["kept"] + m["rejected"] == len(kept) + len(rej)
    # 7,644 rows hold 7,266 unique pairs (shared/data README): exact duplicates are found
    assert src["cmd_internal_medicine.gb18030"]["by_reason"]["exact_duplicate"] >= 7644 - 7266
    assert {r["category"] for r in kept if r["source"].startswith("cmd")} >= {"心血管科", "内分泌科"}
    assert not any("感谢您的进行咨询" in r["answer"] for r in kept)

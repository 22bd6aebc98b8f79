import random

from stages import split
from stages.common.config import SplitParams
from stages.common.jsonio import read_jsonl, write_jsonl

TIERS = ["basic", "intermediate", "advanced", "emergency", "prevention"]


def make_records(n=300, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t = TIERS[i % 5]
        rows.append({"id": f"{i:04d}", "question": f"问题{i}：" + "".join(rng.choice("头疼发热咳嗽胃痛腹泻失眠皮疹乏力")
                                                                   for _ in range(12)),
                     "answer": f"回答{i}", "category": ["内科", "外科", "儿科"][i % 3], "difficulty": t})
    return rows


def test_stratified_deterministic_and_complete(tmp_path):
    rows = make_records()
    write_jsonl(tmp_path / "qa.jsonl", rows)
    sp = SplitParams(seed=7, val_frac=0.1, test_frac=0.2)
    m1 = split.run(sp, tmp_path / "qa.jsonl", tmp_path / "a", tmp_path / "m1.json")
    m2 = split.run(sp, tmp_path / "qa.jsonl", tmp_path / "b", tmp_path / "m2.json")
    for s in split.SPLITS:
        assert read_jsonl(tmp_path / "a" / f"{s}.jsonl") == read_jsonl(tmp_path / "b" / f"{s}.jsonl")
    ids = [r["id"] for s in split.SPLITS for r in read_jsonl(tmp_path / "a" / f"{s}.jsonl")]
    assert sorted(ids) == sorted(r["id"] for r in rows)          # nothing lost or duplicated
    assert m1 == m2
    for t in TIERS:                                                # every tier in every split, ~proportional
        assert m1["test"]["by_tier"][t] == 12 and m1["val"]["by_tier"][t] == 6
    sp2 = SplitParams(seed=8, val_frac=0.1, test_frac=0.2)
    split.run(sp2, tmp_path / "qa.jsonl", tmp_path / "c", tmp_path / "m3.json")
    assert read_jsonl(tmp_path / "c/test.jsonl") != read_jsonl(tmp_path / "a/test.jsonl")


def test_near_duplicate_questions_stay_together(tmp_path):
    rows = make_records(100)
    para = "我最近总是头疼而且晚上失眠，白天还乏力，需要去医院挂哪个科室检查一下"
    for k in range(6):
        rows.append({"id": f"p{k}", "question": para + "？" * (k + 1), "answer": f"答{k}",
                     "category": "内科", "difficulty": "intermediate"})
    write_jsonl(tmp_path / "qa.jsonl", rows)
    m = split.run(SplitParams(seed=1, val_frac=0.2, test_frac=0.2), tmp_path / "qa.jsonl", tmp_path / "o",
                  tmp_path / "m.json")
    where = {r["id"]: s for s in split.SPLITS for r in read_jsonl(tmp_path / "o" / f"{s}.jsonl")}
    assert len({where[f"p{k}"] for k in range(6)}) == 1
    assert m["near_dup_clusters"] >= 1 and m["records_in_clusters"] >= 6


def test_max_train_cap_is_stratified(tmp_path):
    write_jsonl(tmp_path / "qa.jsonl", make_records())
    m = split.run(SplitParams(max_train=50), tmp_path / "qa.jsonl", tmp_path / "o", tmp_path / "m.json")
    assert m["train"]["total"] == 50 and set(m["train"]["by_tier"]) == set(TIERS)
    assert m["train_capped_out"] == 300 - 50 - m["val"]["total"] - m["test"]["total"]


def test_editing_answers_moves_no_record_and_a_new_record_moves_few(tmp_path):
    """An expert verdict or a medical fix rewrites answers (new record ids); the split depends on the
    questions only, so every question stays in its split. One added record shifts at most a quota boundary."""
    rows = make_records()
    sp = SplitParams(seed=3, val_frac=0.1, test_frac=0.1)

    def where(records, name):
        write_jsonl(tmp_path / f"{name}.jsonl", records)
        split.run(sp, tmp_path / f"{name}.jsonl", tmp_path / name, tmp_path / f"{name}_m.json")
        return {r["question"]: s for s in split.SPLITS for r in read_jsonl(tmp_path / name / f"{s}.jsonl")}

    before = where(rows, "before")
    edited = [dict(r, id=f"x{r['id']}", answer=r["answer"] + "（已修订）") if i % 7 == 0 else r
              for i, r in enumerate(rows)]
    assert where(edited, "edited") == before
    grown = where(rows + [{"id": "new", "question": "新问题：孩子咳嗽一周了夜里更重", "answer": "回答",
                           "category": "儿科", "difficulty": "basic"}], "grown")
    moved = [q for q in before if grown[q] != before[q]]
    assert len(moved) <= 2 and grown["新问题：孩子咳嗽一周了夜里更重"] in split.SPLITS

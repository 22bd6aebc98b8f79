import json

import pytest

from stages.data.formats import RawRecord, Reject, SourceError, list_source_files, read_source, sniff_encoding

COLS = {"question": ["title", "ask"], "answer": "answer", "category": "department"}


def items(path, cols=COLS):
    return list(read_source(path, path.stem, cols))


def test_jsonl_records_and_broken_lines(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"question":"头疼怎么办？","answer":"多休息。","category":"神经"}\n'
                 '{"question": "缺答案"}\n'
                 '{not json\n'
                 '\n'
                 '{"question": 3, "answer": "x"}\n', encoding="utf-8")
    out = items(f)
    assert isinstance(out[0], RawRecord) and out[0].origin == f"{f}:1" and out[0].category == "神经"
    assert [(o.reason, o.origin) for o in out[1:]] == [
        ("missing_field", f"{f}:2"), ("bad_json", f"{f}:3"), ("bad_type", f"{f}:5")]


def test_sharegpt_pairs_and_unpaired(tmp_path):
    f = tmp_path / "s.jsonl"
    conv = {"conversations": [{"from": "human", "value": "问1"}, {"from": "gpt", "value": "答1"},
                              {"from": "human", "value": "问2"}, {"from": "gpt", "value": "答2"},
                              {"from": "human", "value": "问3"}]}
    f.write_text(json.dumps(conv, ensure_ascii=False) + "\n", encoding="utf-8")
    out = items(f)
    assert [(o.question, o.answer) for o in out[:2]] == [("问1", "答1"), ("问2", "答2")]
    assert isinstance(out[2], Reject) and out[2].reason == "unpaired_turn" and out[2].origin == f"{f}:1#4"


def test_alpaca(tmp_path):
    f = tmp_path / "al.json"
    f.write_text(json.dumps([{"instruction": "解释高血压", "input": "老人", "output": "血压持续升高。"}],
                            ensure_ascii=False), encoding="utf-8")
    (r,) = items(f)
    assert r.question == "解释高血压\n老人" and r.answer == "血压持续升高。" and r.origin == f"{f}:[0]"


def test_utf8_bom_jsonl(tmp_path):
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + '{"question":"发烧怎么办","answer":"多喝水。"}\n'.encode("utf-8"))
    assert sniff_encoding(f.read_bytes()) == "utf-8-sig"
    (r,) = items(f)
    assert r.question == "发烧怎么办"


def test_gb18030_csv_title_plus_ask(tmp_path):
    f = tmp_path / "g.csv"
    f.write_bytes("department,title,ask,answer\n心血管科,高血压能吃党参吗？,\"我有高血压，能吃党参吗,\n谢谢\",可以适量。\n内科,第二行,问,答\n"
                  .encode("gb18030"))
    assert sniff_encoding(f.read_bytes()) == "gb18030"
    r, r2 = items(f)
    assert r2.origin == f"{f}:4"  # the quoted field spans lines 2-3
    assert r.category == "心血管科" and r.answer == "可以适量。" and r.origin == f"{f}:2"
    assert r.question == "高血压能吃党参吗？\n我有高血压，能吃党参吗,\n谢谢"


def test_undecodable_line_rejected_not_lost(tmp_path):
    f = tmp_path / "mixed.jsonl"
    good = '{"question":"胃疼","answer":"清淡饮食。"}\n'.encode("utf-8")
    f.write_bytes(good * 3 + b'{"question":"\xff\xfe bad","answer":"x"}\n' + good)
    out = items(f)
    assert sum(isinstance(o, RawRecord) for o in out) == 4
    (bad,) = [o for o in out if isinstance(o, Reject)]
    assert bad.reason == "undecodable" and bad.origin == f"{f}:4"


def test_csv_missing_column_is_clear(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("q,a\nx,y\n", encoding="utf-8")
    with pytest.raises(SourceError, match="lacks column"):
        items(f)


def test_csv_ragged_row(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("department,title,ask,answer\n内科,标题,问题,回答\n内科,只有两列\n", encoding="utf-8")
    out = items(f)
    assert isinstance(out[0], RawRecord) and out[1].reason == "bad_csv_row" and out[1].origin == f"{f}:3"


def test_sources_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        list_source_files([str(tmp_path / "nope")])
    (tmp_path / "d").mkdir()
    with pytest.raises(SourceError, match="no .jsonl"):
        list_source_files([str(tmp_path / "d")])


def test_csv_streams_with_undecodable_line_and_quoted_newlines(tmp_path):
    """The CSV reader streams (no whole-file buffer) and still names the physical line of each row."""
    from stages.data.encoding import sniff_encoding, sniff_file

    f = tmp_path / "s.csv"
    f.write_bytes("department,title,ask,answer\n内科,标题,\"多行\n问题\",回答一\n".encode("utf-8")
                  + b"\xff\xfe,bad,row,x\n" + "内科,标题二,问题二,回答二\n".encode("utf-8"))
    assert sniff_file(f) == sniff_encoding(f.read_bytes()) == "utf-8"
    out = items(f)
    recs = [o for o in out if isinstance(o, RawRecord)]
    (bad,) = [o for o in out if isinstance(o, Reject)]
    assert [r.origin for r in recs] == [f"{f}:2", f"{f}:5"] and recs[0].question == "标题\n多行\n问题"
    assert bad.reason == "undecodable" and bad.origin == f"{f}:4"

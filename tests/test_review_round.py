"""A review round end to end on the fixture corpus: clean → export (sheets) → import two filled
fixture sheets (one .xlsx, one .csv) → κ, adjudication, verdicts, metrics → clean applies them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from stages import clean, review
from stages.common.config import CleanParams, DataParams, ReviewParams
from stages.common.jsonio import read_jsonl
from stages.humanloop.sheets import COLUMNS, SheetError, stratified_sample

FIX = Path(__file__).resolve().parent / "fixtures" / "review"


def run_clean(tmp_path: Path, verdicts: str, out: str) -> tuple[dict, list[dict], list[dict]]:
    m = clean.run(DataParams(sources=[str(FIX / "raw.jsonl")]), CleanParams(verdicts=verdicts),
                  tmp_path / out, tmp_path / f"{out}.json")
    return m, read_jsonl(tmp_path / out / "qa.jsonl"), read_jsonl(tmp_path / out / "rejected.jsonl")


@pytest.fixture
def rnd(tmp_path):
    run_clean(tmp_path, "", "clean")
    rp = ReviewParams(sample_size=8, seed=13, reviewers=["reviewer_a", "reviewer_b"],
                      source=str(tmp_path / "clean/qa.jsonl"), sheets_dir=str(tmp_path / "review/sheets"),
                      verdicts=str(tmp_path / "review/verdicts.jsonl"), metrics=str(tmp_path / "metrics/review.json"))
    manifest = review.export(rp, "r1")
    return rp, manifest, tmp_path / "review/sheets/r1"


def fill_from_fixtures(sheets: Path) -> None:
    for p in sheets.glob("reviewer_*"):
        p.unlink()
    shutil.copy(FIX / "reviewer_a.xlsx", sheets / "reviewer_a.xlsx")
    shutil.copy(FIX / "reviewer_b.csv", sheets / "reviewer_b.csv")


def test_export_sheets_stratified_same_items_own_order(rnd):
    rp, manifest, sheets = rnd
    assert sorted(p.name for p in sheets.iterdir()) == ["manifest.json", "reviewer_a.csv", "reviewer_a.xlsx",
                                                        "reviewer_b.csv", "reviewer_b.xlsx"]
    a = pd.read_excel(sheets / "reviewer_a.xlsx", dtype=str, keep_default_na=False)
    b = pd.read_csv(sheets / "reviewer_b.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(a.columns) == COLUMNS and list(b.columns) == COLUMNS
    assert sorted(a.record_id) == sorted(b.record_id) == sorted(i["record_id"] for i in manifest["items"])
    assert list(a.record_id) != list(b.record_id)                          # each reviewer's own order
    assert (a.verdict == "").all() and len(a) == 8
    strata = {(i["tier"], i["category"]) for i in manifest["items"]}
    assert len(strata) == 8                                                # 8 items over 10 strata: 8 distinct
    again = stratified_sample(read_jsonl(rp.source), 8, 13)
    assert [r["id"] for r in again] == sorted(i["record_id"] for i in manifest["items"])   # seeded
    with pytest.raises(SystemExit, match="already holds round"):
        review.export(rp, "r1")


def test_import_kappa_verdicts_metrics_and_clean_applies_them(rnd, tmp_path):
    rp, manifest, sheets = rnd
    fill_from_fixtures(sheets)
    m = review.import_round(rp, "r1")
    # hand-worked for the fixtures: p_o 6/8, p_e 24/64 → Cohen 0.6; Fleiss (0.75 − 0.3828) / (1 − 0.3828) = 0.5949
    assert m["kappa"]["pairs"]["reviewer_a|reviewer_b"]["cohen_kappa"] == pytest.approx(0.6, abs=1e-4)
    assert m["kappa"]["fleiss_kappa"] == pytest.approx(0.5949, abs=1e-4)
    assert m["disagreements"] == 2 and m["resolved_by_rule"] == 2 and m["pending"] == 0
    assert m["verdicts"] == {"accept": 3, "edit": 3, "reject": 2}          # strictest: reject > edit > accept
    assert m["reasons"] == {"outdated": 1, "style": 2, "unsafe": 1, "wrong_fact": 1}
    assert sum(sum(c.values()) for c in m["by_tier"].values()) == 8
    assert json.loads(Path(rp.metrics).read_text(encoding="utf-8")) == m
    adj = pd.read_csv(sheets / "adjudication.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert len(adj) == 2 and "reviewer_a:verdict" in adj.columns and (adj.final_verdict == "").all()
    verdicts = read_jsonl(rp.verdicts)
    assert len(verdicts) == 8 and all(v["reviewed_by"] == ["reviewer_a", "reviewer_b"] for v in verdicts)
    assert any("[手机号]" in c for v in verdicts for c in v.get("comments", []))        # comments masked
    assert not any("13812345678" in json.dumps(v, ensure_ascii=False) for v in verdicts)

    _, before, _ = run_clean(tmp_path, "", "c0")
    metrics, after, rejected = run_clean(tmp_path, rp.verdicts, "c1")
    by_id = {v["record_id"]: v for v in verdicts}
    expert = [r for r in rejected if r["reason"] == "expert_rejected"]
    assert len(expert) == 2 and {r["detail"] for r in expert} == {f"r1:{rid}" for rid, v in by_id.items()
                                                                   if v["verdict"] == "reject"}
    assert metrics["rejected_by_reason"] == {"expert_rejected": 2} and metrics["transforms"]["expert_edited"] == 3
    assert len(after) == len(before) - 2
    edited = [r for r in after if r.get("review") == "edited"]
    assert len(edited) == 3
    for r in edited:
        assert r["answer"] == by_id[r["id"]]["answer"] and r["answer"].endswith("如有疑问请咨询专科医生。")
        assert r["verdict_id"] == f"r1:{r['id']}" and r["reviewed_by"] == ["reviewer_a", "reviewer_b"]

    # an adjudicator overrules the rule on one disagreement; re-import picks it up
    adj.loc[adj.index[0], ["final_verdict", "adjudicator"]] = ["accept", "dr_li"]
    adj.to_csv(sheets / "adjudication.csv", index=False, encoding="utf-8-sig")
    m2 = review.import_round(rp, "r1")
    assert m2["adjudicated"] == 1 and m2["resolved_by_rule"] == 1
    assert any(v["decided_by"] == "adjudication:dr_li" for v in read_jsonl(rp.verdicts))


def test_import_reports_every_problem_with_sheet_row_column(rnd):
    rp, manifest, sheets = rnd
    fill_from_fixtures(sheets)
    b = pd.read_csv(sheets / "reviewer_b.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    b.loc[1, "verdict"] = "maybe"
    b.loc[2, ["verdict", "corrected_answer"]] = ["edit", ""]
    b.loc[3, "verdict"] = ""
    b.loc[4, ["verdict", "reason_code", "corrected_answer"]] = ["reject", "boring", ""]
    b = b.drop(index=5)
    b.to_csv(sheets / "reviewer_b.csv", index=False, encoding="utf-8-sig")
    with pytest.raises(SheetError) as err:
        review.import_round(rp, "r1")
    msg = str(err.value)
    assert "reviewer_b.csv: row 3: column verdict: 'maybe'" in msg
    assert "reviewer_b.csv: row 4: column corrected_answer: empty, but verdict is 'edit'" in msg
    assert "reviewer_b.csv: row 5: column verdict: '' — expected one of ['accept', 'edit', 'reject'] (the row was left unfilled)" in msg
    assert "reviewer_b.csv: row 6: column reason_code: 'boring'" in msg
    assert "is missing (every exported row must come back)" in msg
    assert not Path(rp.verdicts).exists() and not Path(rp.metrics).exists()   # nothing written on errors


def test_cli_round_and_status(rnd, tmp_path, capsys):
    rp, manifest, sheets = rnd
    fill_from_fixtures(sheets)
    params = tmp_path / "params.yaml"
    import yaml
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text(encoding="utf-8"))
    raw["review"] = rp.model_dump()
    params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert review.main(["import", "--params", str(params)]) == 0
    out = capsys.readouterr().out
    assert "Fleiss κ 0.5949" in out and "Cohen κ reviewer_a|reviewer_b 0.6" in out
    assert review.main(["status", "--params", str(params)]) == 0
    st = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert st["round"] == "r1" and st["verdicts_written"] == 8 and st["sheets"]["reviewer_a.xlsx"] == "8/8 filled"
    (sheets / "reviewer_a.csv").write_text((sheets / "reviewer_b.csv").read_text(encoding="utf-8-sig"), encoding="utf-8")
    assert review.main(["import", "--params", str(params)]) == 2
    assert "both reviewer_a.xlsx and reviewer_a.csv hold verdicts" in capsys.readouterr().err


def test_second_round_keeps_the_first_and_wins_on_shared_records(rnd, tmp_path):
    from stages.humanloop.verdicts import load_verdicts

    rp, manifest, sheets = rnd
    fill_from_fixtures(sheets)
    review.import_round(rp, "r1")
    review.export(rp, "r2")
    r2 = Path(rp.sheets_dir) / "r2"
    fill_from_fixtures(r2)
    review.import_round(rp, "r2")
    review.import_round(rp, "r1")                          # re-import replaces r1's lines in place
    lines = read_jsonl(rp.verdicts)
    assert [v["round"] for v in lines] == ["r1"] * 8 + ["r2"] * 8
    book = load_verdicts(rp.verdicts)
    assert len(book) == 8 and {v["round"] for v in book.values()} == {"r2"}   # the later round wins

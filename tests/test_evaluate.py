"""predict_base + evaluate stages on a fixture split with tiny models, run in tmp_path."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_tiny_model
from eval_fixtures import TERMS_TSV, split_records
from stages import evaluate, predict_base, safety_eval
from stages.common.jsonio import read_jsonl, write_jsonl
from stages.data.tiers import TIERS

MCQ = [{"question": "高血压的诊断标准是？\nA. 140/90 mmHg\nB. 120/80 mmHg", "answer": "A"},
       {"question": "下列属于急症的是 A、感冒 B、脑卒中 C、脚气", "answer": "B"}]


@pytest.fixture(scope="module")
def tuned_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tuned") / "merged", tokenizer_dir, seed=1)


def write_params(root: Path, max_new_tokens: int = 6, **eval_overrides) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["generation"]["max_new_tokens"] = max_new_tokens
    raw["eval"].update({"max_examples": 6, "batch_size": 4, "bertscore_layers": 1,
                        "bertscore_batch_size": 4, "ppl_max_len": 256, **eval_overrides})
    (root / "params.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_model_dir, tuned_dir, triage_model_dir) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "base").symlink_to(tiny_model_dir)
    (tmp_path / "models" / "triage").symlink_to(triage_model_dir)
    (tmp_path / "data" / "triage_split").mkdir(parents=True)
    shutil.copy(triage_model_dir.parent / "split" / "test.jsonl", tmp_path / "data" / "triage_split" / "test.jsonl")
    (tmp_path / "models" / "merged").symlink_to(tuned_dir)
    write_jsonl(tmp_path / "data" / "split" / "test.jsonl", split_records())
    (tmp_path / "data" / "terms.tsv").write_text(TERMS_TSV, encoding="utf-8")
    write_jsonl(tmp_path / "mcq.jsonl", MCQ)
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_both(*extra_eval_args: str) -> dict:
    predict_base.main(["--no-progress"])
    evaluate.main(["--no-progress", *extra_eval_args])
    return json.loads(Path("metrics/eval.json").read_text(encoding="utf-8"))


def test_evaluate_writes_all_outputs(workdir):
    write_params(workdir, mcq_file="mcq.jsonl")
    m = run_both()
    assert m["n_examples"] == 6 and m["n_tiers"] == 5
    for k in ("rouge1_char", "rouge2_char", "rougeL_char", "rougeL_word", "bleu_zh", "chrf", "bertscore_p",
              "bertscore_r", "bertscore_f1", "ppl_ref", "risky_flags", "emergency_guidance_rate", "term_recall",
              "hit_cap_rate", "mcq_acc"):
        assert f"tuned.{k}" in m and f"base.{k}" in m and f"delta.{k}" in m, k
        assert m[f"delta.{k}"] == pytest.approx(m[f"tuned.{k}"] - m[f"base.{k}"], abs=2e-4)
    assert m["mcq_n"] == 2
    assert not any(k.startswith("triage.") or "served_" in k for k in m)   # safety_eval's, not evaluate's
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in m.values())  # flat, numeric

    by_tier = json.loads(Path("metrics/eval_by_tier.json").read_text(encoding="utf-8"))
    assert list(by_tier) == list(TIERS)  # every tier present, in tier order
    assert sum(g["n"] for g in by_tier.values()) == 6
    assert "emergency_guidance_rate" in by_tier["emergency"]["tuned"]
    assert "emergency_guidance_rate" not in by_tier["basic"]["tuned"]
    by_cat = json.loads(Path("metrics/eval_by_category.json").read_text(encoding="utf-8"))
    assert sum(g["n"] for g in by_cat.values()) == 6 and "delta" in next(iter(by_cat.values()))

    preds = read_jsonl("metrics/predictions.jsonl")
    base_preds = read_jsonl("metrics/base_predictions.jsonl")
    assert len(preds) == 6 and [p["base"] for p in preds] == [b["answer"] for b in base_preds]
    for p in preds:
        assert {"question", "reference", "base", "tuned", "flags", "difficulty", "category"} <= set(p)
        assert {"needs_reminder", "has_reminder", "emergency_guidance", "risky", "terms_missed"} <= set(p["flags"]["tuned"])
    plot_rows = json.loads(Path("metrics/plots/eval_by_tier.json").read_text(encoding="utf-8"))
    assert {r["tier"] for r in plot_rows} == set(TIERS) and {r["model"] for r in plot_rows} == {"base", "tuned"}
    assert Path("metrics/plots/eval_by_tier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_safety_eval_measures_served_triage_on_evaluates_answers(workdir):
    """safety_eval: the served triage (rules ∪ classifier) on the triage test set and the split's emergency
    tier, and served emergency guidance base vs tuned — from metrics/predictions.jsonl, no model loaded."""
    m = run_both()
    safety_eval.main([])
    s = json.loads(Path("metrics/safety.json").read_text(encoding="utf-8"))
    assert 0.9 <= s["triage.test_recall"] <= 1 and 0 <= s["triage.test_false_alarm_rate"] <= 1
    assert 0 <= s["triage.split_emergency_recall"] <= 1 and s["triage.split_emergency_n"] >= 1
    for k in ("tuned", "base"):    # the triage reply only adds guidance to what the model wrote
        assert m[f"{k}.emergency_guidance_rate"] - 1e-9 <= s[f"{k}.served_emergency_guidance_rate"] <= 1
    assert s["delta.served_emergency_guidance_rate"] == pytest.approx(
        s["tuned.served_emergency_guidance_rate"] - s["base.served_emergency_guidance_rate"], abs=2e-4)
    first = Path("metrics/safety.json").read_bytes()
    safety_eval.main([])
    assert Path("metrics/safety.json").read_bytes() == first       # content only: a rerun is byte-identical
    # the served guidance is computed from the saved answers: an answer with 120 guidance counts for the model
    preds = read_jsonl("metrics/predictions.jsonl")
    write_jsonl("metrics/predictions.jsonl", [{**p, "tuned": "请立即拨打120或前往急诊。"} for p in preds])
    safety_eval.main([])
    s2 = json.loads(Path("metrics/safety.json").read_text(encoding="utf-8"))
    assert s2["tuned.served_emergency_guidance_rate"] == 1.0


def test_safety_eval_names_the_missing_input_and_the_bad_line(workdir):
    with pytest.raises(FileNotFoundError, match="predictions.jsonl.*dvc repro evaluate"):
        safety_eval.main([])
    run_both()
    preds = read_jsonl("metrics/predictions.jsonl")
    write_jsonl("metrics/predictions.jsonl", preds[:2] + [{k: v for k, v in preds[2].items() if k != "tuned"}])
    with pytest.raises(ValueError, match=r"line\(s\) \[3\]"):
        safety_eval.main([])


def test_evaluate_scores_the_base_predictions_file(workdir):
    """evaluate must not regenerate base answers: it scores whatever predict_base wrote."""
    run_both()
    rows = read_jsonl("metrics/base_predictions.jsonl")
    refs = {r["id"]: r["answer"] for r in split_records()}
    write_jsonl("metrics/base_predictions.jsonl", [{**r, "answer": refs[r["id"]]} for r in rows])
    evaluate.main(["--no-progress"])
    m = json.loads(Path("metrics/eval.json").read_text(encoding="utf-8"))
    assert m["base.rougeL_char"] == pytest.approx(100.0) and m["base.bleu_zh"] == pytest.approx(100.0)
    assert m["base.bertscore_f1"] == pytest.approx(1.0, abs=1e-4)
    assert m["base.term_precision"] == 1.0 and m["base.term_recall"] == 1.0


def test_evaluate_refuses_stale_base_predictions(workdir):
    predict_base.main(["--no-progress"])
    write_params(workdir, max_new_tokens=7)
    with pytest.raises(ValueError, match="max_new_tokens.*predict_base"):
        evaluate.main(["--no-progress"])
    write_params(workdir, max_examples=5)
    with pytest.raises(ValueError, match="different examples"):
        evaluate.main(["--no-progress"])


def test_evaluate_without_base_and_with_adapter_path_errors(workdir):
    write_params(workdir, compare_base=False)
    m = run_both()
    assert "tuned.rougeL_char" in m and not any(k.startswith(("base.", "delta.")) for k in m)
    assert read_jsonl("metrics/base_predictions.jsonl") == []
    with pytest.raises(FileNotFoundError, match="dvc repro merge"):
        evaluate.main(["--no-progress", "--model", "models/absent"])


def test_dvc_stages_keep_base_predictions_out_of_lora_changes():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    pb, ev = stages["predict_base"], stages["evaluate"]
    assert "models/base" in pb["deps"] and "models/merged" not in pb["deps"]
    assert not any(str(p).split(".")[0] in {"lora", "train", "merge"} for p in pb["params"])
    assert not any(str(d).startswith(("models/lora", "models/merged")) for d in pb["deps"])
    assert {"models/merged", "models/base", "metrics/base_predictions.jsonl"} <= set(ev["deps"])
    assert {"eval", "prompt"} <= set(ev["params"])
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in ev["outs"] + ev["metrics"]}
    assert {"metrics/eval.json", "metrics/eval_by_tier.json", "metrics/predictions.jsonl"} <= outs
    # a triage change (data, threshold) must not rerun LLM generation: evaluate reads nothing of triage's,
    # safety_eval joins triage's model with evaluate's saved answers
    assert not any(str(d).startswith(("models/triage", "data/triage", "stages/safety/triage")) for d in ev["deps"])
    assert "triage" not in ev["params"]
    se = stages["safety_eval"]
    assert {"models/triage", "data/triage_split/test.jsonl", "metrics/predictions.jsonl"} <= set(se["deps"])
    assert not any(str(d).startswith("models/") and d != "models/triage" for d in se["deps"])


def test_dvc_plots_show_renders_offline(workdir, tmp_path):
    """`dvc plots show` with the repo's plots config writes a page that loads no script from a CDN."""
    run_both()
    dvc = Path(sys.executable).with_name("dvc")
    top = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    (workdir / "dvc.yaml").write_text(yaml.safe_dump({"plots": top + ["metrics/plots/eval_by_tier.png"]},
                                                     allow_unicode=True), encoding="utf-8")
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], check=True, cwd=workdir)
    shutil.copy(REPO / ".dvc" / "config", workdir / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "plots", workdir / ".dvc" / "plots")
    res = subprocess.run([str(dvc), "plots", "show", "-o", "page"], cwd=workdir, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    html = (workdir / "page" / "index.html").read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in html and "<script src" not in html
    assert "vegaEmbed(" in html and "Evaluation by difficulty tier" in html and "emergency" in html
    assert html.count("<script>/* vega") == 3  # vega, vega-lite, vega-embed inlined
    assert "<img" in html  # the PNG is shown too


# ------------------------------------------------------------------ bench/real_questions.py
def test_real_questions_bench_offset_reads_the_next_positions_of_the_same_order(tmp_path, tiny_model_dir, shared_data):
    """``--offset K --n N`` scores positions K..K+N-1 of the seeded order that ``--n`` alone and
    bench/adapter_scale.py's real val (40–139) are cut from: a longer sample extends a shorter one (the order does
    not depend on n), so offset 140 is disjoint from both. Both models answer every question and are scored."""
    sys.path.insert(0, str(REPO / "bench"))
    from real_questions import DEFAULT_CSV, SEED, sample_questions

    from stages.common.config import load_params

    csv = shared_data / "cmd_internal_medicine.gb18030.csv"
    assert csv.resolve() == DEFAULT_CSV.resolve()
    params = load_params(REPO / "params.yaml")
    order = sample_questions(csv, 150, SEED, params)
    assert [e["id"] for e in sample_questions(csv, 40, SEED, params)] == [e["id"] for e in order[:40]]
    out = tmp_path / "real.json"
    res = subprocess.run([sys.executable, str(REPO / "bench/real_questions.py"), "--base", str(tiny_model_dir),
                          "--tuned", str(tiny_model_dir), "--offset", "140", "--n", "3", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text(encoding="utf-8"))
    assert (got["n"], got["offset"]) == (3, 140)
    assert [e["id"] for e in got["examples"]] == [e["id"] for e in order[140:143]]
    assert all(e["base"] and e["tuned"] for e in got["examples"])
    assert got["results"]["base"]["n"] == got["results"]["tuned"]["n"] == 3
    assert "positions 140–142" in res.stdout

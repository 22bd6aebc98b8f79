"""export stage (stages/export.py, export/dvc.yaml): GGUF F16 + Q8_0 written from an HF model with the
`gguf` package, loaded back with transformers' gguf_file= loader and compared; the Modelfile; the
stage stays out of the default `dvc repro`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from stages.common.config import ParamsError, load_params, parse_params
from stages.common.jsonio import write_jsonl

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = ["高血压患者平时饮食需要注意什么？", "医院周末可以挂号吗？", "孩子发烧38度怎么办？"]


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    """One run of the stage on the tiny random Qwen2 (F16 and Q8_0; ~1 min on 2 cores)."""
    from stages.export import main

    tmp = tmp_path_factory.mktemp("export")
    val = tmp / "val.jsonl"
    write_jsonl(val, [{"id": str(i), "question": q, "answer": "好的。"} for i, q in enumerate(QUESTIONS)])
    out, metrics = tmp / "export", tmp / "metrics" / "export.json"
    rc = main(["--model", str(tiny_model_dir), "--out", str(out), "--metrics", str(metrics), "--val", str(val)])
    return rc, out, json.loads(metrics.read_text(encoding="utf-8")), tiny_model_dir


def test_f16_round_trip_is_token_identical_and_q8_0_figures_are_recorded(exported):
    rc, out, report, _ = exported
    assert rc == 0 and report["passed"] is True
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "medqa-F16.gguf", "medqa-Q8_0.gguf"]
    f16, q8 = report["quants"]["F16"], report["quants"]["Q8_0"]
    assert report["verify_prompts"] == 3 and report["prompt_source"].endswith("val.jsonl")
    assert f16["greedy_identical_prompts"] == 3 and f16["greedy_identical_tokens"] == f16["greedy_tokens"] == 48
    assert f16["max_abs_logit_diff"] <= f16["tolerance"] and f16["argmax_agreement"] == 1.0
    assert f16["quantized_tensors"] == 0 and q8["quantized_tensors"] == 16        # every 2-D weight of 2 layers
    assert 0 < q8["max_abs_logit_diff"] <= q8["tolerance"] and 0.5 < q8["argmax_agreement"] <= 1
    assert q8["bytes"] < 0.7 * f16["bytes"] and q8["bytes_vs_f16"] == round(q8["bytes"] / f16["bytes"], 4)
    for r in (f16, q8):
        assert r["tokenizer_identical_prompts"] == 3 and r["chat_template_identical"] is True
        assert r["bytes"] == (out / r["file"]).stat().st_size
    text = json.dumps(report)
    assert not re.search(r"seconds|_s\"|time|\d{4}-\d\d-\d\dT", text)           # content only


def test_gguf_metadata_tokenizer_and_tensor_types(exported):
    import gguf

    _, out, _, model_dir = exported
    cfg = json.loads((model_dir / "config.json").read_text())
    r = gguf.GGUFReader(out / "medqa-Q8_0.gguf")

    def field(name):
        f = r.fields[name]
        return f.contents()

    assert field("general.architecture") == "qwen2" and field("tokenizer.ggml.model") == "gpt2"
    assert field("qwen2.block_count") == cfg["num_hidden_layers"]
    assert len(field("tokenizer.ggml.tokens")) == cfg["vocab_size"] and len(field("tokenizer.ggml.merges")) > 100_000
    assert field("tokenizer.ggml.eos_token_id") == cfg["eos_token_id"]
    assert "<|im_start|>" in field("tokenizer.chat_template")
    types = {t.name: t.tensor_type.name for t in r.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["output.weight"] == "Q8_0"
    assert types["blk.0.attn_norm.weight"] == "F32" and types["blk.0.attn_q.bias"] == "F32"


def test_gguf_bytes_are_deterministic(exported, tmp_path):
    from stages.gguf_export.gguf_writer import write_gguf

    _, out, report, model_dir = exported
    write_gguf(model_dir, tmp_path / "again.gguf", "Q8_0")
    assert (tmp_path / "again.gguf").read_bytes() == (out / "medqa-Q8_0.gguf").read_bytes()
    import hashlib
    assert hashlib.sha256((out / "medqa-Q8_0.gguf").read_bytes()).hexdigest() == report["quants"]["Q8_0"]["sha256"]


def _render_ollama(template: str, system: str, prompt: str) -> str:
    """The subset of Go-template semantics the Modelfile uses: if-blocks and three variables."""
    out = template.split("{{ .Response }}")[0]
    out = out.replace("{{ if .System }}", "").replace("{{ if .Prompt }}", "").replace("{{ end }}", "")
    return out.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt)


def test_modelfile_matches_the_training_prompt(exported):
    from stages.model.modeling import load_tokenizer
    from stages.model.prompt import render_prompt

    _, out, report, model_dir = exported
    text = (out / "Modelfile").read_text(encoding="utf-8")
    system = load_params(REPO / "params.yaml").prompt.system
    assert re.search(r"^FROM \./medqa-Q8_0\.gguf$", text, re.M) and f'SYSTEM """{system}"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text
    template = re.search(r'TEMPLATE """(.*?)"""', text, re.S).group(1)
    tok = load_tokenizer(model_dir)
    assert _render_ollama(template, system, QUESTIONS[0]) == render_prompt(tok, QUESTIONS[0], system)


def test_drift_beyond_tolerance_or_changed_tokens_fail():
    from stages.gguf_export.verify import problems

    ok = {"prompts": 3, "max_abs_logit_diff": 0.01, "greedy_identical_prompts": 3, "tokenizer_identical_prompts": 3,
          "chat_template_identical": True}
    assert problems("F16", ok, 0.05, True) == []
    assert "export.tolerance.F16" in problems("F16", dict(ok, max_abs_logit_diff=0.2), 0.05, True)[0]
    assert problems("F16", dict(ok, max_abs_logit_diff=float("nan")), 0.05, True)
    assert "greedy tokens differ on 1 of 3" in problems("F16", dict(ok, greedy_identical_prompts=2), 0.05, True)[0]
    assert problems("Q8_0", dict(ok, greedy_identical_prompts=2), 0.05, False) == []
    assert "chat template" in problems("Q8_0", dict(ok, chat_template_identical=False), 0.05, False)[0]


def test_failed_verification_leaves_no_output(tiny_model_dir, tmp_path, monkeypatch):
    import stages.export as stage

    monkeypatch.setattr(stage, "compare", lambda ref, path: {
        "prompts": 1, "max_abs_logit_diff": 9.0, "greedy_identical_prompts": 0, "tokenizer_identical_prompts": 1,
        "chat_template_identical": True})
    params = load_params(REPO / "params.yaml")
    with pytest.raises(stage.ExportError, match="export.tolerance.Q8_0"):
        stage.run_export(tiny_model_dir, tmp_path / "export", tmp_path / "m.json", tmp_path / "none.jsonl", params,
                         ["Q8_0"])
    assert not (tmp_path / "export").exists()
    assert json.loads((tmp_path / "m.json").read_text())["passed"] is False


def test_export_params_are_validated():
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["export"]["quants"] = ["F16", "Q4_K"]
    with pytest.raises(ParamsError, match="export.quants"):
        parse_params(raw)
    raw["export"]["quants"] = ["F16", "F32"]
    with pytest.raises(ParamsError, match="tolerance"):
        parse_params(raw)


def test_export_stage_is_outside_the_default_repro_and_lists_its_imports():
    from dvc_deps import covered, imported_files

    root = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert "export" not in root and not any("stages.export" in s["cmd"] for s in root.values())
    stage = yaml.safe_load((REPO / "export" / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["export"]
    assert stage["wdir"] == ".." and stage["cmd"] == "python -m stages.export"
    deps = {d if isinstance(d, str) else next(iter(d)) for d in stage["deps"]}
    missing = sorted(f for f in imported_files("stages/export.py") if not covered(f, deps))
    assert not missing, f"export/dvc.yaml does not list: {missing}"
    assert {"models/merged", "data/split/val.jsonl"} <= deps and set(stage["params"]) == {"export", "prompt.system"}

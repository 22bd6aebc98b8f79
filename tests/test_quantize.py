"""serve.dtype int8 (stages/model/quantize.py): dynamic int8 Linear layers, the auto rule, and the
server answering with an int8 model (tiny random Qwen2)."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch

from stages.model import modeling
from stages.model.quantize import is_int8, load_serving_model, resolve_serving_precision, weight_bytes


def test_int8_quantizes_every_linear_and_stays_close_to_fp32(tiny_model_dir, tokenizer):
    from stages.model.prompt import encode_prompts

    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    ref, p_ref = load_serving_model(tiny_model_dir, "float32", "cpu")
    q, p_q = load_serving_model(tiny_model_dir, "int8", "cpu")
    assert (p_ref, p_q) == ("float32", "int8") and is_int8(q) and not is_int8(ref)
    assert not [n for n, m in q.named_modules() if type(m) is torch.nn.Linear]   # default: every Linear
    assert sum(isinstance(m, QLinear) for m in q.modules()) == 7 * 2 + 1
    assert all(m.weight().qscheme() == torch.per_channel_affine for m in q.modules() if isinstance(m, QLinear))
    keep, _ = load_serving_model(tiny_model_dir, "int8", "cpu", include_head=False)
    assert type(keep.lm_head) is torch.nn.Linear
    assert weight_bytes(q) < weight_bytes(keep) < weight_bytes(ref)
    batch = encode_prompts(tokenizer, ["高血压患者饮食要注意什么？", "医院周末可以挂号吗？"], "你是医院客服。")
    with torch.inference_mode():
        a = ref(**batch).logits[batch["attention_mask"].bool()]
        b = q(**batch).logits[batch["attention_mask"].bool()]
    rel = (a - b).norm() / a.norm()
    assert 0 < rel < 0.1, rel                       # quantized (not identical), but close
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() > 0.8


def test_serving_precision_rule(monkeypatch):
    assert resolve_serving_precision("int8", "cpu") == "int8"
    with pytest.raises(ValueError, match="CPU-only"):
        resolve_serving_precision("int8", "cuda")
    with pytest.raises(ValueError, match="serve.dtype"):
        resolve_serving_precision("int4", "cpu")
    monkeypatch.setattr(modeling, "cpu_has_native_bf16", lambda: False)
    assert resolve_serving_precision("auto", "cpu") == "float32"
    monkeypatch.setattr(modeling, "cpu_has_native_bf16", lambda: True)
    assert resolve_serving_precision("auto", "cpu") == "bfloat16"
    assert resolve_serving_precision("float16", "cpu") == "float16"


def test_server_answers_with_an_int8_model(tiny_model_dir, tmp_path):
    from fastapi.testclient import TestClient
    from litserve.utils import wrap_litserve_start

    from serve.app import build_server
    from serve.settings import ServeSettings
    from stages.common.config import load_params

    s = ServeSettings.from_params(load_params("params.yaml"), str(tiny_model_dir), max_new_tokens=6, max_batch_size=2,
                                  batch_timeout=0.01, dtype="int8", warmup=False)
    s = replace(s, api_key=None, audit_log=str(tmp_path / "audit.jsonl"), triage_model=None)
    with wrap_litserve_start(build_server(s)) as srv, TestClient(srv.app) as client:
        deadline = time.monotonic() + 300
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/info").json()["model"]["dtype_resolved"] == "int8"
        r = client.post("/predict", json={"question": "牙龈出血是什么原因？"})
        assert r.status_code == 200 and r.json()["safety"]["model_used"] is True and r.json()["new_tokens"] >= 1

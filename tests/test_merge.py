"""Merge stage: streaming vs peft on synthetic safetensors shards, scaling rules, refusals,
atomicity, verification, dynamic loading, and the stage main() on the tiny model."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from stages.model.adapters import AdapterError, load_with_adapter, module_rank_alpha, pattern_key, set_adapter_scale
from stages.merge import merge_peft, run_merge
from stages.model.merge_streaming import StreamingMergeError, merge_streaming
from stages.model.merge_verify import MergeVerificationError, verification_questions
from stages.model.safetensors_stream import INDEX_NAME, StreamingShardWriter, read_header

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ---------------------------------------------------------------- helpers

def tiny_qwen(seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    return Qwen2ForCausalLM(cfg)


def synthetic_shards(out: Path, n_shards: int = 3, seed: int = 0) -> Path:
    """A tiny Qwen2 written by hand as ``n_shards`` safetensors files + index + config.json."""
    model = tiny_qwen(seed)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    names = sorted(sd)
    weight_map, total = {}, 0
    for i in range(n_shards):
        fname = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = {n: sd[n] for n in names[i::n_shards]}
        save_file(part, str(out / fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in part})
        total += sum(t.numel() * t.element_size() for t in part.values())
    (out / INDEX_NAME).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return out


def peft_adapter(base: Path, out: Path, **kw) -> Path:
    """A real peft adapter (random non-zero A and B) saved with save_pretrained."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(kw.pop("seed", 1))
    opts = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    opts.update(kw)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)), LoraConfig(**opts))
    model.save_pretrained(str(out))
    return out


def tensors(d: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(d.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def max_diff(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def both_ways(base: Path, adapter: Path, tmp: Path, scale: float, tag: str = "") -> tuple[dict, dict]:
    p, s = tmp / f"peft{tag}", tmp / f"stream{tag}"
    p.mkdir()
    s.mkdir()
    merge_peft(base, adapter, p, scale, "float32", "float32", "50GB")
    merge_streaming(base, adapter, s, scale, progress=False)
    return tensors(p), tensors(s)


# ---------------------------------------------------------------- streaming == peft

@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0])
def test_streaming_equals_peft_on_multishard_base(tmp_path, scale):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora")
    p, s = both_ways(base, adapter, tmp_path, scale)
    assert max_diff(p, s) <= 1e-6
    orig = tensors(base)
    q = "model.layers.0.self_attn.q_proj.weight"
    if scale == 0.0:
        assert max_diff(s, orig) == 0.0                      # scale 0 is exactly the base
    else:
        assert (s[q] - orig[q]).abs().max() > 1e-3           # the adapter really changed the weight
    assert torch.equal(s["model.norm.weight"], orig["model.norm.weight"])   # untouched tensors byte-identical


def test_scale_interpolates_linearly(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora")
    half, full = tmp_path / "half", tmp_path / "full"
    half.mkdir(), full.mkdir()
    merge_streaming(base, adapter, half, 0.5, progress=False)
    merge_streaming(base, adapter, full, 1.0, progress=False)
    b, h, f = tensors(base), tensors(half), tensors(full)
    for k in b:
        torch.testing.assert_close(h[k] - b[k], 0.5 * (f[k] - b[k]), atol=1e-6, rtol=0)


def test_rslora_scaling_is_alpha_over_sqrt_r(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora", r=4, lora_alpha=8, use_rslora=True)
    out = tmp_path / "out"
    out.mkdir()
    merge_streaming(base, adapter, out, 1.0, progress=False)
    a = load_file(str(adapter / "adapter_model.safetensors"))
    m = "model.layers.1.self_attn.v_proj"
    expected = (8 / math.sqrt(4)) * (a[f"base_model.model.{m}.lora_B.weight"] @ a[f"base_model.model.{m}.lora_A.weight"])
    torch.testing.assert_close(tensors(out)[f"{m}.weight"] - tensors(base)[f"{m}.weight"], expected, atol=1e-6, rtol=0)
    p, s = both_ways(base, adapter, tmp_path, 1.0)
    assert max_diff(p, s) <= 1e-6


def test_rank_and_alpha_patterns(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora", r=4, lora_alpha=8, rank_pattern={"q_proj": 2},
                           alpha_pattern={"down_proj": 32})
    a = read_header(adapter / "adapter_model.safetensors").tensors
    assert a["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape == (2, 32)
    p, s = both_ways(base, adapter, tmp_path, 0.5)
    assert max_diff(p, s) <= 1e-6


def test_pattern_key_matches_peft():
    from peft.utils.other import get_pattern_key

    keys = ["q_proj", r"layers\.1\.mlp\.down_proj", "model.layers.0.self_attn.v_proj"]
    for name in ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "model.layers.0.mlp.down_proj",
                 "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.v_proj", "xq_proj"]:
        ours = pattern_key(keys, name)
        assert (ours if ours is not None else name) == get_pattern_key(keys, name)
    cfg = {"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 2}, "alpha_pattern": {"layers\\.1\\.mlp\\.down_proj": 4}}
    assert module_rank_alpha(cfg, "model.layers.3.self_attn.q_proj") == (2, 16)
    assert module_rank_alpha(cfg, "model.layers.1.mlp.down_proj") == (8, 4)


def test_embeddings_lm_head_and_modules_to_save(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora", target_modules=["q_proj", "embed_tokens", "lm_head"],
                           modules_to_save=["norm"])
    p, s = both_ways(base, adapter, tmp_path, 0.5)
    assert max_diff(p, s) <= 1e-6
    assert (s["model.embed_tokens.weight"] - tensors(base)["model.embed_tokens.weight"]).abs().max() > 1e-3


def test_fan_in_fan_out_conv1d(tmp_path):
    """GPT-2's Conv1D stores weights [in, out]: the delta must be transposed, as in peft."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4)).save_pretrained(
        tmp_path / "base")
    adapter = peft_adapter(tmp_path / "base", tmp_path / "lora", target_modules=["c_attn", "c_fc"],
                           fan_in_fan_out=True)
    p, s = both_ways(tmp_path / "base", adapter, tmp_path, 1.0)
    assert max_diff(p, s) <= 1e-6


def test_output_layout_index_and_plain_load(tmp_path):
    from transformers import AutoModelForCausalLM

    base = synthetic_shards(tmp_path / "base", n_shards=3)
    adapter = peft_adapter(base, tmp_path / "lora")
    out = tmp_path / "out"
    out.mkdir()
    stats = merge_streaming(base, adapter, out, 1.0, progress=False)
    assert stats["shards"] == 3 and stats["lora_modules_merged"] == 6
    index = json.loads((out / INDEX_NAME).read_text())
    assert index["weight_map"] == json.loads((base / INDEX_NAME).read_text())["weight_map"]
    sizes = sum(t.nbytes for f in set(index["weight_map"].values()) for t in read_header(out / f).tensors.values())
    assert index["metadata"]["total_size"] == sizes
    (out / "config.json").write_text((base / "config.json").read_text())
    ids = torch.tensor([[1, 5, 9, 200]])
    with torch.no_grad():
        got = AutoModelForCausalLM.from_pretrained(str(out)).eval()(ids).logits
        ref = load_with_adapter(base, adapter, scale=1.0, dtype="float32", device="cpu")(ids).logits
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_bf16_base_keeps_dtype_and_matches_peft(tmp_path):
    model = tiny_qwen().to(torch.bfloat16)
    model.save_pretrained(tmp_path / "base", max_shard_size="40KB")
    adapter = peft_adapter(tmp_path / "base", tmp_path / "lora")
    p, s = tmp_path / "p", tmp_path / "s"
    p.mkdir(), s.mkdir()
    merge_peft(tmp_path / "base", adapter, p, 1.0, "bfloat16", "bfloat16", "50GB")
    merge_streaming(tmp_path / "base", adapter, s, 1.0, progress=False)
    pt, st = tensors(p), tensors(s)
    assert all(t.dtype == torch.bfloat16 for t in st.values())
    assert max_diff(pt, st) == 0.0          # both: bf16(fp32(W) + fp32 delta)


# ---------------------------------------------------------------- refusals and corruption

def test_dora_refused_by_streaming_but_peft_merges(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora", use_dora=True)
    (tmp_path / "s").mkdir()
    with pytest.raises(StreamingMergeError, match="DoRA"):
        merge_streaming(base, adapter, tmp_path / "s", 1.0, progress=False)
    (tmp_path / "p").mkdir()
    merge_peft(base, adapter, tmp_path / "p", 1.0, "float32", "float32", "50GB")


def test_rank_mismatch_refused(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora", r=4)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["r"] = 8
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    (tmp_path / "s").mkdir()
    with pytest.raises(StreamingMergeError, match="r=8"):
        merge_streaming(base, adapter, tmp_path / "s", 1.0, progress=False)


def _poison(adapter: Path) -> None:
    w = load_file(str(adapter / "adapter_model.safetensors"))
    k = next(k for k in w if k.endswith("lora_B.weight"))
    w[k][0, 0] = float("nan")
    save_file(w, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})


def test_nan_adapter_rejected_by_both_methods(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora")
    _poison(adapter)
    (tmp_path / "s").mkdir(), (tmp_path / "p").mkdir()
    with pytest.raises(StreamingMergeError, match="NaN"):
        merge_streaming(base, adapter, tmp_path / "s", 1.0, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        merge_peft(base, adapter, tmp_path / "p", 1.0, "float32", "float32", "50GB")


def test_renamed_adapter_keys_fail_strict_dynamic_loading(tmp_path):
    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora")
    w = load_file(str(adapter / "adapter_model.safetensors"))
    w = {k.replace("layers.0", "layers.9"): v for k, v in w.items()}
    save_file(w, str(adapter / "adapter_model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(AdapterError, match="missing adapter keys"):
        load_with_adapter(base, adapter, device="cpu", dtype="float32")
    (tmp_path / "s").mkdir()
    with pytest.raises(StreamingMergeError, match="layers.9"):
        merge_streaming(base, adapter, tmp_path / "s", 1.0, progress=False)


# ---------------------------------------------------------------- safetensors writer

def test_streaming_writer_roundtrip(tmp_path):
    ts = {"a": torch.randn(3, 5), "b": torch.randn(4).to(torch.bfloat16), "c": torch.tensor(7, dtype=torch.int64),
          "d": torch.zeros(0, 3, dtype=torch.float16), "e": torch.tensor([True, False])}
    specs = [(n, {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64", torch.float16: "F16",
                  torch.bool: "BOOL"}[t.dtype], tuple(t.shape)) for n, t in ts.items()]
    with StreamingShardWriter(tmp_path / "x.safetensors", specs, {"format": "pt"}) as w:
        for n, t in ts.items():
            w.write_tensor(n, t)
    back = load_file(str(tmp_path / "x.safetensors"))
    assert set(back) == set(ts) and all(torch.equal(back[n], ts[n]) for n in ts)
    with pytest.raises(ValueError, match="expected tensor"):
        with StreamingShardWriter(tmp_path / "y.safetensors", specs) as w:
            w.write_tensor("b", ts["b"])


# ---------------------------------------------------------------- stage: atomicity, verification, main()

def _params(tmp_path: Path, **merge) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["merge"].update(merge)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def _val(tmp_path: Path) -> Path:
    v = tmp_path / "val.jsonl"
    v.write_text("".join(json.dumps({"question": q, "answer": "a"}, ensure_ascii=False) + "\n"
                         for q in ["胃疼吃什么药？", "感冒发烧要去医院吗？", "体检前需要空腹吗？"]), encoding="utf-8")
    return v


def _stage(tmp_path, base, adapter, *extra, **merge):
    from stages.merge import main

    return main(["--params", str(_params(tmp_path, **merge)), "--base", str(base), "--adapter", str(adapter),
                 "--out", str(tmp_path / "models" / "merged"), "--metrics", str(tmp_path / "merge.json"),
                 "--val", str(_val(tmp_path)), "--no-progress", *extra])


@pytest.mark.parametrize("method", ["peft", "streaming"])
def test_stage_main_on_tiny_model(tmp_path, tiny_model_copy, method, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("MEDQA_TIMING_DIR", str(tmp_path / "timing"))

    adapter = peft_adapter(tiny_model_copy, tmp_path / "lora", target_modules=["q_proj", "o_proj", "up_proj"])
    m = _stage(tmp_path, tiny_model_copy, adapter, method=method, scale=0.5)
    out = tmp_path / "models" / "merged"
    saved = json.loads((tmp_path / "merge.json").read_text())
    assert saved == json.loads(json.dumps(m)) and saved["passed"] and saved["method"] == method
    v = saved["verify"]
    assert v["prompts"] == 3 and v["max_abs_logit_diff"] <= 1e-3 and v["argmax_agreement"] == 1.0
    assert v["adapter_effect_max_abs"] > 10 * v["max_abs_logit_diff"]
    assert saved["prompt_source"].endswith("val.jsonl")
    # run-to-run figures live in the untracked timing file, not in the tracked metrics
    assert not [k for k in saved if k.startswith(("seconds", "peak_rss"))]
    timing = json.loads((tmp_path / "timing" / "merge.json").read_text())
    assert timing["peak_rss_mb"] > 0 and timing["seconds"] > 0 and timing["seconds_verify"] >= 0
    for f in ("config.json", "merge_info.json"):
        assert (out / f).exists(), f
    support = [f.name for f in tiny_model_copy.iterdir() if not f.name.endswith((".safetensors", ".json"))
               or f.name.startswith(("tokenizer", "generation_config", "special_tokens"))]
    assert "tokenizer.json" in support and "generation_config.json" in support
    for f in support:                                   # tokenizer, chat template, generation config copied
        if method == "streaming" or f != "generation_config.json":
            assert (out / f).read_bytes() == (tiny_model_copy / f).read_bytes(), f
    assert AutoTokenizer.from_pretrained(str(out)).chat_template
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.dtype == torch.float32
    assert not list(out.parent.glob(".merged.*"))


def test_crash_mid_merge_leaves_no_output(tmp_path, monkeypatch):
    import stages.model.safetensors_stream as sts

    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora")
    calls = {"n": 0}
    real = sts.StreamingShardWriter.copy_from

    def dying(self, header, name):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real(self, header, name)

    monkeypatch.setattr(sts.StreamingShardWriter, "copy_from", dying)
    out = tmp_path / "models" / "merged"
    with pytest.raises(KeyboardInterrupt):
        run_merge(base=base, adapter=adapter, out=out, method="streaming", scale=1.0, dtype="auto",
                  max_shard_size="2GB", questions=[], prompt_source="none", system="s", tolerance=1e-3,
                  metrics_path=tmp_path / "m.json", progress=False)
    assert calls["n"] == 5
    assert not out.exists() and list((tmp_path / "models").iterdir()) == []
    assert json.loads((tmp_path / "m.json").read_text())["passed"] is False


def test_verification_fails_when_merge_disagrees_with_adapter(tmp_path, tiny_model_copy, monkeypatch):
    """A merge that applies the adapter wrongly (here: 3× too strong) must not be published."""
    import stages.model.merge_streaming as ms

    adapter = peft_adapter(tiny_model_copy, tmp_path / "lora", target_modules=["v_proj", "down_proj"])
    real = ms.lora_delta
    monkeypatch.setattr(ms, "lora_delta", lambda a, b, kind, s: real(a, b, kind, 3 * s))
    with pytest.raises(MergeVerificationError, match="drifts"):
        _stage(tmp_path, tiny_model_copy, adapter, method="streaming")
    saved = json.loads((tmp_path / "merge.json").read_text())
    assert saved["passed"] is False and saved["verify"]["max_abs_logit_diff"] > 1e-3
    assert not (tmp_path / "models" / "merged").exists()


def test_verification_fails_on_corrupted_adapter(tmp_path, tiny_model_copy):
    adapter = peft_adapter(tiny_model_copy, tmp_path / "lora", target_modules=["v_proj"])
    _poison(adapter)
    with pytest.raises(Exception, match="NaN"):
        _stage(tmp_path, tiny_model_copy, adapter, method="streaming")
    assert not (tmp_path / "models" / "merged").exists()
    assert "NaN" in json.loads((tmp_path / "merge.json").read_text())["error"]


def test_missing_val_split_falls_back_loudly(tmp_path, caplog):
    qs, src = verification_questions(2, tmp_path / "nope.jsonl")
    assert len(qs) == 2 and src.startswith("builtin") and "nope.jsonl" in src
    assert any("BUILT-IN" in r.getMessage() for r in caplog.records)
    assert verification_questions(2, tmp_path / "nope.jsonl", ["问?"]) == (["问?"], "cli")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(MergeVerificationError):
        verification_questions(2, tmp_path / "empty.jsonl")


# ---------------------------------------------------------------- dynamic loading

def test_dynamic_loading_scale(tmp_path):
    from transformers import AutoModelForCausalLM

    base = synthetic_shards(tmp_path / "base")
    adapter = peft_adapter(base, tmp_path / "lora")
    merged = tmp_path / "merged"
    merged.mkdir()
    merge_streaming(base, adapter, merged, 0.5, progress=False)
    (merged / "config.json").write_text((base / "config.json").read_text())
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        model = load_with_adapter(base, adapter, scale=0.0, dtype="float32", device="cpu")
        base_logits = AutoModelForCausalLM.from_pretrained(str(base)).eval()(ids).logits
        torch.testing.assert_close(model(ids).logits, base_logits, atol=0, rtol=0)
        set_adapter_scale(model, 0.5)
        set_adapter_scale(model, 0.5)                 # absolute, not cumulative
        merged_logits = AutoModelForCausalLM.from_pretrained(str(merged)).eval()(ids).logits
        torch.testing.assert_close(model(ids).logits, merged_logits, atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        set_adapter_scale(model, 1.5)


def test_random_adapter_is_valid_peft(tmp_path):
    from stages.model.random_adapter import write_random_adapter

    base = synthetic_shards(tmp_path / "base")
    adapter = write_random_adapter(base, tmp_path / "lora", r=4, alpha=8, layers="last:1")
    load_with_adapter(base, adapter, device="cpu", dtype="float32")          # strict: no missing keys
    p, s = both_ways(base, adapter, tmp_path, 1.0)
    assert max_diff(p, s) <= 1e-6
    changed = {k for k in s if not torch.equal(s[k], tensors(base)[k])}
    assert changed and all(".layers.1." in k for k in changed)


# ------------------------------------------------------------------ choosing merge.scale (bench/adapter_scale.py)
def test_adapter_scale_rule_picks_the_largest_scale_within_both_limits():
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from adapter_scale import pick

    rows = [{"scale": 0.0, "real_ratio": 1.0, "authored_ratio": 1.0},
            {"scale": 1.0, "real_ratio": 1.05, "authored_ratio": 0.50},   # real answers less likely: no
            {"scale": 0.8, "real_ratio": 0.99, "authored_ratio": 0.58},   # the largest that passes
            {"scale": 0.7, "real_ratio": 0.97, "authored_ratio": 0.59},
            {"scale": 0.5, "real_ratio": 0.95, "authored_ratio": 0.65}]   # authored too far from the target
    assert pick(rows, 0.6) == 0.8
    assert pick(rows, 0.55) is None                                       # nothing passes: no silent default
    assert pick(rows[:1], 0.6) is None                                    # the base itself is never "chosen"
    # with a bootstrap interval the upper bound decides: 0.8's point ratio is below 1 but its interval reaches 1
    rows[2]["real_ratio_hi"], rows[3]["real_ratio_hi"] = 1.004, 0.992
    assert pick(rows, 0.6) == 0.7


def test_adapter_scale_bootstrap_interval_is_paired_and_brackets_the_ratio():
    import math
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from adapter_scale import bootstrap_ratio

    rng = __import__("random").Random(3)
    base = [{"nll": rng.uniform(50, 400), "tokens": rng.randint(40, 200)} for _ in range(100)]
    same = [dict(b) for b in base]
    assert bootstrap_ratio(same, base, 500, 0.95, 0) == (1.0, 1.0)           # paired: no spread for equal answers
    shifted = [{"nll": b["nll"] - 0.05 * b["tokens"], "tokens": b["tokens"]} for b in base]  # 0.05 nats/token less
    lo, hi = bootstrap_ratio(shifted, base, 500, 0.95, 0)
    assert lo == pytest.approx(math.exp(-0.05)) and hi == pytest.approx(math.exp(-0.05))
    noisy = [{"nll": b["nll"] * rng.uniform(0.8, 1.2), "tokens": b["tokens"]} for b in base]
    lo, hi = bootstrap_ratio(noisy, base, 2000, 0.95, 0)
    point = math.exp(sum(n["nll"] for n in noisy) / sum(n["tokens"] for n in noisy)
                     - sum(n["nll"] for n in base) / sum(n["tokens"] for n in base))
    assert lo < point < hi and hi - lo > 0.01
    assert bootstrap_ratio(noisy, base, 2000, 0.95, 0) == (lo, hi)           # seeded: the same interval again


def test_adapter_scale_bench_measures_base_and_each_scale(tmp_path, tiny_model_dir, shared_data):
    """The bench on the tiny model with a random adapter over the real val sets: scale 0 is the base's own
    perplexity (adapter disabled), every ratio is against it, and the rule's pick is recorded."""
    import subprocess
    import sys

    from stages.model.random_adapter import write_random_adapter

    adapter = write_random_adapter(tiny_model_dir, tmp_path / "lora", r=4, alpha=8, layers="all")
    out, val = tmp_path / "scale.json", tmp_path / "val.jsonl"
    # an authored val set from the git-tracked corpus (data/split is a DVC output, absent in a fresh clone)
    rows = (REPO / "data/raw/clin1_cardiology.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    val.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = subprocess.run([sys.executable, str(REPO / "bench/adapter_scale.py"), "--base", str(tiny_model_dir),
                          "--adapter", str(adapter), "--scales", "1", "0.5", "--out", str(out), "--val", str(val),
                          "--csv", str(shared_data / "cmd_internal_medicine.gb18030.csv")],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["scale"]: r for r in got["rows"]}
    assert sorted(rows) == [0.0, 0.5, 1.0]
    base = rows[0.0]
    for r in rows.values():
        assert r["real"] > 1 and r["authored"] > 1
        assert r["real_ratio"] == pytest.approx(r["real"] / base["real"])
        assert r["authored_ratio"] == pytest.approx(r["authored"] / base["authored"])
        if r["scale"]:
            assert r["real_ratio_lo"] <= r["real_ratio"] <= r["real_ratio_hi"]   # the bootstrap interval
    assert rows[1.0]["real"] != base["real"]                      # the adapter is applied, and scaled
    assert rows[0.5]["real"] != rows[1.0]["real"]
    from adapter_scale import pick

    assert got["chosen"] == pick(got["rows"], 0.6)
    assert "100 real val answers" in res.stdout and "12 authored val" in res.stdout


def test_a_trial_merge_elsewhere_keeps_the_pipeline_metrics():
    """`python -m stages.merge --scale 0.8 --out /tmp/x` (a trial strength) must not overwrite metrics/merge.json,
    which describes models/merged: without --metrics its metrics go beside that output; --metrics still wins."""
    from stages.merge import METRICS, OUT, metrics_path

    assert metrics_path(OUT, None) == METRICS == Path("metrics/merge.json")
    assert metrics_path(OUT.resolve(), None) == metrics_path(Path("./models/merged/"), None) == METRICS
    assert metrics_path(Path("/tmp/trial/m08"), None) == Path("/tmp/trial/m08.merge.json")
    assert metrics_path(Path("/tmp/trial/m08"), Path("x.json")) == Path("x.json")

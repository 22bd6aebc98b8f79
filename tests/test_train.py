"""train stage on the tiny random-weight Qwen2 (real tokenizer): prompt/label masking, truncation
accounting, data validation and subsets, length-grouped batching, the answer-only loss, training,
resume after a real SIGKILL, stale checkpoints, early stopping + keep-best, and a 2-process DDP run."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from stages.training.batching import Planner, collate, length_grouped_batches
from stages.common.config import load_params, parse_params
from stages.model.modeling import pick_device
from stages.model.prompt import IGNORE_INDEX, encode_example, render_prompt
from stages.data.tiers import TIERS
from stages.training.train_data import DataError, encode_records, read_split, stratified_subset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
PY = sys.executable
SYMPTOMS = ["头疼", "发热", "咳嗽", "胃痛", "腹泻", "失眠", "胸闷", "皮疹"]
ADVICE = ["多喝水，注意休息", "清淡饮食，按时服药", "避免劳累，保持作息规律", "及时到医院就诊"]


def make_records(n: int, offset: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        k = offset + i
        out.append({"id": f"r{k:04d}", "question": f"我最近{SYMPTOMS[k % 8]}，第{k}天了，怎么办？",
                    "answer": f"您好，{SYMPTOMS[k % 8]}时建议{ADVICE[k % 4]}。" * (1 + k % 3) + "如症状加重请及时就医。",
                    "category": "内科", "difficulty": TIERS[k % 5], "source": "fixture", "origin": f"fixture:{k}"})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("split")
    write_jsonl(d / "train.jsonl", make_records(40))
    write_jsonl(d / "val.jsonl", make_records(10, offset=1000))
    return d


def job(tmp: Path, base: Path, split: Path, **over) -> tuple[dict, Path]:
    """params.yaml of the repo with tiny-model overrides, written to tmp; returns (raw, params path)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["lora"].update({"r": 8, "alpha": 16, "dropout": 0.0, "layers": "last:1"})
    raw["train"].update({"learning_rate": 2e-2, "epochs": 2, "batch_size": 4, "grad_accum": 1, "max_len": 128,
                         "max_train_examples": 0, "max_val_examples": 0, "eval_steps": 5, "save_steps": 4,
                         "warmup_ratio": 0.1, "early_stopping_patience": 0, "keep_best": True, "num_threads": 1,
                         "mixed_precision": "no"})
    for key, val in over.items():
        section, name = key.split("__")
        raw[section][name] = val
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return raw, tmp / "params.yaml"


def cli_args(tmp: Path, base: Path, split: Path) -> list[str]:
    return ["--params", str(tmp / "params.yaml"), "--base", str(base), "--train", str(split / "train.jsonl"),
            "--val", str(split / "val.jsonl"), "--out", str(tmp / "lora"), "--checkpoints", str(tmp / "ckpt"),
            "--metrics", str(tmp / "train.json"), "--live", str(tmp / "dvclive")]


# recomputing a saved adapter's val loss in one batch vs the trainer's length-grouped batches: identical on
# CPU to 1e-4; GPU kernels change with the padded batch shape (an H200 run differed by 6e-4 on a loss of 11.6)
LOSS_TOL = 1e-4 if pick_device() == "cpu" else 2e-3


def on_device(model, batch: dict) -> dict:
    """The batch on the model's device (these tests also run on a GPU machine: load_model picks cuda)."""
    dev = next(model.parameters()).device
    return {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def run_inproc(tmp: Path, base: Path, split: Path, **over) -> dict:
    from stages.train import main

    job(tmp, base, split, **over)
    assert main(cli_args(tmp, base, split)) == 0
    return json.loads((tmp / "train.json").read_text())


def run_cli(tmp: Path, base: Path, split: Path, extra: list[str] = (), launcher: list[str] = (), timeout=240,
            env_extra: dict | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(env_extra or {})
    cmd = list(launcher or [PY, "-m"]) + ["stages.train"] + cli_args(tmp, base, split) + list(extra)
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)


def adapter(tmp: Path) -> dict[str, torch.Tensor]:
    return load_file(str(tmp / "lora" / "adapter_model.safetensors"))


# ---------------------------------------------------------------------------------- prompt / data
def test_labels_mask_prompt_and_follow_chat_template(tokenizer):
    system = load_params(REPO / "params.yaml").prompt.system
    enc = encode_example(tokenizer, "头疼怎么办？", "多休息，必要时就医。", system, max_len=512)
    prompt = render_prompt(tokenizer, "头疼怎么办？", system)
    assert prompt.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n头疼怎么办？")
    assert prompt.endswith("<|im_start|>assistant\n")
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert enc.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt          # no loss on the prompt
    answer_ids = [t for t in enc.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(answer_ids).startswith("多休息，必要时就医。<|im_end|>")
    assert enc.input_ids[n_prompt:] == answer_ids and not enc.truncated
    assert tokenizer.decode(enc.input_ids) == prompt + tokenizer.decode(answer_ids)


def test_truncation_is_counted_never_dropped(tokenizer):
    recs = make_records(10)
    full, s_full = encode_records(tokenizer, recs, "你是客服。", max_len=4096)
    cut, s_cut = encode_records(tokenizer, recs, "你是客服。", max_len=48)
    assert s_full.truncated == 0 and s_full.answer_tokens_cut == 0
    assert s_cut.examples == len(recs) == len(cut)                      # every example kept
    assert all(len(e.input_ids) <= 48 for e in cut)
    long = [f for f in full if len(f.input_ids) > 48]
    assert s_cut.truncated == len(long) > 0
    kept = sum(sum(t != IGNORE_INDEX for t in e.labels) for e in cut)
    assert s_cut.answer_tokens_cut == sum(e.answer_tokens for e in full) - kept > 0


@pytest.mark.parametrize("line,needle", [
    ('{"id": "a", "question": "q?", "answer": "a", "difficulty": "hard"}', "field 'difficulty'"),
    ('{"id": "a", "question": "q?", "answer": "  ", "difficulty": "basic"}', "field 'answer'"),
    ('{"id": "a", "question": "q?"', "invalid JSON"),
    ('["not", "an", "object"]', "expected a JSON object"),
])
def test_bad_split_records_name_file_line_field(tmp_path, line, needle):
    good = json.dumps(make_records(1)[0], ensure_ascii=False)
    path = tmp_path / "train.jsonl"
    path.write_text(good + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}:3: ") + ".*" + re.escape(needle)):
        read_split(path)


def test_stratified_subset_is_seeded_proportional_and_covers_every_tier():
    recs = make_records(100)
    recs += [dict(r, id=f"extra{i}", difficulty="basic") for i, r in enumerate(make_records(50, 500))]
    a = stratified_subset(recs, 20, seed=1)
    assert a == stratified_subset(recs, 20, seed=1) and len(a) == 20
    assert {r["id"] for r in a} != {r["id"] for r in stratified_subset(recs, 20, seed=2)}
    tiers = [r["difficulty"] for r in a]
    assert set(tiers) == set(TIERS)
    assert tiers.count("basic") == 20 * 70 // 150                        # proportional share (70 of 150)
    assert stratified_subset(recs, 0, seed=1) == recs
    with pytest.raises(DataError, match="every difficulty tier"):
        stratified_subset(recs, 3, seed=1)


def test_overlong_drop_keeps_only_answers_that_end_with_their_end_token(tokenizer):
    recs = make_records(10)
    cut, s_cut = encode_records(tokenizer, recs, "你是客服。", max_len=48, overlong="cut")
    kept, s_drop = encode_records(tokenizer, recs, "你是客服。", max_len=48, overlong="drop")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert s_drop.dropped == s_drop.truncated == s_cut.truncated > 0 and s_cut.dropped == 0
    assert len(kept) == s_drop.examples == len(recs) - s_drop.dropped and s_drop.answer_tokens_cut == 0
    for e in kept:                                   # every trained answer teaches its end-of-turn token
        assert end in [t for t in e.labels if t != IGNORE_INDEX]
    assert any(end not in e.labels for e in cut if e.truncated)
    with pytest.raises(DataError, match="train.max_len"):
        encode_records(tokenizer, recs, "你是客服。", max_len=16, overlong="drop")


def test_source_caps_mix_a_big_source_with_the_corpus():
    from stages.training.train_data import subset_indices

    recs = [dict(r, source="authored") for r in make_records(30)]
    recs += [dict(r, id=f"u{i}", source="user_csv") for i, r in enumerate(make_records(200, 100))]
    idx = subset_indices(recs, 0, seed=3, source_caps={"user_csv": 25})
    picked = [recs[i] for i in idx]
    assert sum(r["source"] == "user_csv" for r in picked) == 25 and sum(r["source"] == "authored" for r in picked) == 30
    assert idx == sorted(idx) and idx == subset_indices(recs, 0, seed=3, source_caps={"user_csv": 25})
    assert {r["difficulty"] for r in picked if r["source"] == "user_csv"} == set(TIERS)
    assert len(subset_indices(recs, 20, seed=3, source_caps={"user_csv": 25})) == 20
    assert subset_indices(recs, 0, seed=3) is None
    with pytest.raises(DataError, match="source_caps.*nope"):
        subset_indices(recs, 0, seed=3, source_caps={"nope": 1})


def test_split_file_is_tokenised_into_cached_arrow(tmp_path, tokenizer):
    """The stage's path: a split file → memory-mapped Arrow → tokenised with datasets.map; the same
    fingerprint reuses the cached table instead of tokenising again."""
    from stages.training.train_data import encode_dataset, load_split_dataset

    path = write_jsonl(tmp_path / "train.jsonl", make_records(12))
    ds = load_split_dataset(path, [0, 2, 4, 6, 8, 10], tmp_path / "cache")
    assert ds.cache_files and len(ds) == 6 and ds[1]["id"] == "r0002"
    first, s1 = encode_dataset(ds, tokenizer, "你是客服。", 256, "drop", fingerprint="fp-test")
    mapped = first.ds.cache_files[0]["filename"]
    again, s2 = encode_dataset(ds, tokenizer, "你是客服。", 256, "drop", fingerprint="fp-test")
    assert again.ds.cache_files[0]["filename"] == mapped and s1 == s2
    ref, _ = encode_records(tokenizer, [make_records(12)[i] for i in (0, 2, 4, 6, 8, 10)], "你是客服。", 256)
    assert [e.input_ids for e in again] == [e.input_ids for e in ref] and again.lengths == ref.lengths


def test_length_grouped_batches_cover_each_example_once_with_little_padding():
    import random

    rnd = random.Random(0)
    lengths = [rnd.randint(20, 300) for _ in range(203)]
    b = length_grouped_batches(lengths, 4, seed=7, epoch=0)
    assert sorted(i for x in b for i in x) == list(range(203))
    assert b == length_grouped_batches(lengths, 4, seed=7, epoch=0)
    assert b != length_grouped_batches(lengths, 4, seed=7, epoch=1)

    def pad(batches):
        return sum(max(lengths[i] for i in x) * len(x) - sum(lengths[i] for i in x) for x in batches)

    naive = [list(range(k, min(k + 4, 203))) for k in range(0, 203, 4)]
    assert pad(b) < 0.15 * pad(naive)


def test_planner_splits_steps_evenly_over_processes():
    lengths = list(range(10, 10 + 37))
    targets = [n // 2 for n in lengths]
    p1 = Planner(lengths, targets, batch_size=2, grad_accum=2, world=1, seed=3)
    p2 = Planner(lengths, targets, batch_size=2, grad_accum=1, world=2, seed=3)
    plans = p2.epoch_plan(0)
    assert all(len(s.micro) % 2 == 0 for s in plans)
    assert sorted({i for s in plans for b in s.micro for i in b}) == list(range(37))
    # same global micro-batches per step whether split over 2 processes or accumulated on 1
    assert [s.micro for s in p1.epoch_plan(0)[:-1]] == [s.micro for s in plans[:-1]]
    assert plans[0].target_tokens == sum(targets[i] for b in plans[0].micro for i in b)


def test_collate_right_pads_and_masks(tokenizer):
    ex, _ = encode_records(tokenizer, make_records(3), "你是客服。", max_len=256)
    batch = collate(ex, tokenizer.pad_token_id)
    width = max(len(e.input_ids) for e in ex)
    assert batch["input_ids"].shape == (3, width)
    for i, e in enumerate(ex):
        n = len(e.input_ids)
        assert batch["attention_mask"][i].sum() == n
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()


# ---------------------------------------------------------------------------------- model pieces
def test_lora_layers_and_answer_only_loss_match_the_model(tiny_model_dir, tokenizer):
    from stages.training.answer_loss import AnswerLoss, first_trainable_layer, prefix_cache_blocker
    from stages.training.lora_setup import apply_lora, resolve_layers
    from stages.model.modeling import load_model

    assert resolve_layers("all", 24) is None and resolve_layers("last:4", 24) == [20, 21, 22, 23]
    assert resolve_layers("last:30", 24) is None and resolve_layers([3, 1], 24) == [1, 3]
    with pytest.raises(ValueError, match="out of range"):
        resolve_layers([0, 24], 24)
    p = parse_params(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    lp = p.lora.model_copy(update={"layers": "last:1", "dropout": 0.0})
    model, trainable, _ = apply_lora(load_model(tiny_model_dir), lp)
    names = [n for n, q in model.named_parameters() if q.requires_grad]
    assert names and all(".layers.1." in n and "lora_" in n for n in names)
    assert trainable == sum(q.numel() for n, q in model.named_parameters() if q.requires_grad)
    start = first_trainable_layer(model)
    assert start == 1 and prefix_cache_blocker(model, start) is None
    ex, _ = encode_records(tokenizer, make_records(3), "你是客服。", max_len=256)
    batch = on_device(model, collate(ex, tokenizer.pad_token_id))
    with torch.no_grad():               # make the adapter non-trivial
        for n, q in model.named_parameters():
            if "lora_B" in n:
                q.normal_(0, 0.5)
    loss_mod = AnswerLoss(model, prefix_start=start).eval()
    ok, why = loss_mod.self_check(batch)
    assert ok, why
    ours, n = loss_mod(**batch)
    ref = model(**batch).loss * n
    assert torch.allclose(ours, ref, rtol=1e-5) and n == sum(e.targets for e in ex)
    cached, _ = loss_mod(**batch, prefix_hidden=loss_mod.prefix(batch["input_ids"], batch["attention_mask"]))
    assert torch.allclose(cached, ref, rtol=1e-5)
    lp_all = p.lora.model_copy(update={"layers": "all"})
    model_all, _, _ = apply_lora(load_model(tiny_model_dir), lp_all)
    assert "layer 0" in prefix_cache_blocker(model_all, first_trainable_layer(model_all))


def test_prefix_cache_reuses_activations_within_its_memory_budget(tiny_model_dir, tokenizer, caplog):
    from stages.training.answer_loss import AnswerLoss, PrefixCache
    from stages.training.lora_setup import apply_lora
    from stages.model.modeling import load_model

    p = parse_params(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    model, _, _ = apply_lora(load_model(tiny_model_dir), p.lora.model_copy(update={"layers": "last:1"}))
    loss_mod = AnswerLoss(model, prefix_start=1).eval()
    ex, _ = encode_records(tokenizer, make_records(4), "你是客服。", max_len=256)
    batch = on_device(model, collate(ex, tokenizer.pad_token_id))
    with torch.no_grad():
        ref, _ = loss_mod(**batch)
    one = len(ex[0].input_ids) * 64 * 4                     # bytes of example 0's hidden states (fp32)
    for budget, stored in ((1 << 30, 4), (one, 1)):
        cache = PrefixCache(loss_mod, enabled=True, budget_bytes=budget)
        for _ in range(2):
            with torch.no_grad():
                got, _ = loss_mod(**batch, prefix_hidden=cache.batch("train", [0, 1, 2, 3], batch))
            assert torch.allclose(got, ref, rtol=1e-5)
        assert len(cache.store) == stored and cache.used <= budget
    assert cache.full and "cache full" in caplog.text
    assert not PrefixCache(AnswerLoss(model, prefix_start=0), enabled=True).enabled


# ---------------------------------------------------------------------------------- training runs
def test_training_reduces_val_loss_and_writes_outputs(tmp_path, tiny_model_dir, split_dir, monkeypatch):
    monkeypatch.setenv("MEDQA_TIMING_DIR", str(tmp_path / "timing"))
    m = run_inproc(tmp_path, tiny_model_dir, split_dir)
    assert m["val_loss_best"] < m["val_loss_base"] - 0.3, m
    assert m["train_loss_final"] < m["train_loss_first"]
    assert m["steps"] == m["total_steps"] == 20 and m["examples"] == 40 and m["val_examples"] == 10
    assert m["truncated"] == 0 and m["prefix_cache"] == 1
    # timings are not content: they go to the untracked timing file, never into metrics/train.json
    assert not {"tokens_per_s", "seconds", "train_seconds", "eval_seconds"} & set(m)
    timing = json.loads((tmp_path / "timing" / "train.json").read_text())
    assert timing["tokens_per_s"] > 0 and timing["seconds"] > 0 and len(timing["tokens_per_s_by_step"]) == 20
    assert 0 <= m["pad_fraction"] < 0.2
    assert all(isinstance(v, (int, float)) for v in m.values())
    out = tmp_path / "lora"
    for f in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "training_config.json"):
        assert (out / f).exists(), f
    cfg = json.loads((out / "training_config.json").read_text())
    assert cfg["params"]["lora"]["layers"] == "last:1" and cfg["data"]["train_examples"] == 40
    assert json.loads((out / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    # content only: set-ordered lists sorted, no mtime-based run key, no device index
    targets = json.loads((out / "adapter_config.json").read_text())["target_modules"]
    assert targets == sorted(targets) and len(targets) > 1
    assert "run_key" not in cfg and cfg["device"] == pick_device()
    val = (tmp_path / "dvclive/plots/metrics/val/loss.tsv").read_text().splitlines()
    assert val[0].split("\t") == ["step", "loss"] and val[1].startswith("0\t")
    assert [int(r.split("\t")[0]) for r in val[1:]] == [0, 5, 10, 15, 20]
    assert len((tmp_path / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()) == 21
    assert list((tmp_path / "ckpt").iterdir()) == []                   # completed run removed its checkpoint
    # the saved adapter is the one that scored val_loss_best
    assert val_loss_of_saved_adapter(tmp_path, tiny_model_dir, split_dir / "val.jsonl") == pytest.approx(
        m["val_loss_best"], abs=LOSS_TOL)


def val_loss_of_saved_adapter(tmp: Path, base: Path, val: Path) -> float:
    from stages.training.answer_loss import AnswerLoss
    from stages.model.modeling import load_model, load_tokenizer

    tok = load_tokenizer(tmp / "lora")
    tuned = load_model(base, adapter=tmp / "lora")
    system = load_params(tmp / "params.yaml").prompt.system
    ex, _ = encode_records(tok, read_split(val), system, load_params(tmp / "params.yaml").train.max_len)
    with torch.no_grad():
        loss, n = AnswerLoss(tuned)(**on_device(tuned, collate(ex, tok.pad_token_id)))
    return loss.item() / n.item()


def test_killed_run_resumes_to_the_same_adapter(tmp_path, tiny_model_dir, split_dir):
    ref = run_inproc(tmp_path / "ref", tiny_model_dir, split_dir, lora__dropout=0.1)
    job(tmp_path / "run", tiny_model_dir, split_dir, lora__dropout=0.1)
    killed = run_cli(tmp_path / "run", tiny_model_dir, split_dir, ["--fault-at-step", "11"])
    assert killed.returncode == -9, killed.stderr[-2000:]             # a real SIGKILL after step 11
    ckpts = list((tmp_path / "run" / "ckpt").glob("*/step-*"))
    assert [c.name for c in ckpts] == ["step-000008"]                  # last save before the kill
    assert not (tmp_path / "run" / "lora").exists()
    resumed = run_cli(tmp_path / "run", tiny_model_dir, split_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr
    m = json.loads((tmp_path / "run" / "train.json").read_text())
    assert m["resumed_from_step"] == 8 and m["steps"] == ref["steps"]
    a, b = adapter(tmp_path / "ref"), adapter(tmp_path / "run")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    for k in ("val_loss_base", "val_loss_best", "val_loss_final", "train_loss_final"):
        assert m[k] == pytest.approx(ref[k], rel=1e-5), k
    # the curves hold the whole run once (replayed from the checkpoint, no duplicate steps)
    steps = [int(r.split("\t")[0]) for r in (tmp_path / "run/dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 21))


def test_checkpoint_of_another_config_is_not_resumed(tmp_path, tiny_model_dir, split_dir):
    job(tmp_path, tiny_model_dir, split_dir)
    killed = run_cli(tmp_path, tiny_model_dir, split_dir, ["--fault-at-step", "5"])
    assert killed.returncode == -9
    stale = list((tmp_path / "ckpt").iterdir())
    assert len(stale) == 1
    m = run_inproc(tmp_path, tiny_model_dir, split_dir, train__learning_rate=1e-2)   # different config
    assert m["resumed_from_step"] == 0 and m["steps"] == 20
    assert stale[0].exists()                       # the other config's checkpoint is left for its own resume


def test_early_stopping_keeps_the_best_adapter(tmp_path, tiny_model_dir, split_dir):
    # validation answers share no words with the training answers: val loss stops improving early
    far = write_jsonl(tmp_path / "far" / "val.jsonl", [
        {"id": f"v{i}", "question": f"question number {i}?", "answer": " ".join(["zebra quantum xylophone violet"] * 6),
         "difficulty": TIERS[i % 5], "category": "x", "source": "fixture", "origin": f"far:{i}"} for i in range(10)])
    shutil.copy(split_dir / "train.jsonl", far.parent / "train.jsonl")
    m = run_inproc(tmp_path, tiny_model_dir, far.parent, train__eval_steps=2, train__early_stopping_patience=2)
    assert m["early_stopped"] == 1 and m["steps"] < m["total_steps"]
    assert m["val_loss_final"] > m["val_loss_best"] and m["saved_best"] == 1
    evals = [int(r.split("\t")[0]) for r in (tmp_path / "dvclive/plots/metrics/val/loss.tsv").read_text().splitlines()[1:]]
    assert m["steps"] == evals[-1] == m["best_step"] + 2 * 2   # stopped after 2 evals without improvement
    assert val_loss_of_saved_adapter(tmp_path, tiny_model_dir, far) == pytest.approx(m["val_loss_best"], abs=LOSS_TOL)


def test_two_process_ddp_matches_single_process_accumulation(tmp_path, tiny_model_dir, split_dir):
    """accelerate launch (stages/accelerate/cpu_ddp.yaml, gloo): 2 processes × batch 2 must give the
    adapter of 1 process × batch 2 × grad_accum 2 (same global micro-batches, token-weighted loss)."""
    over = dict(train__batch_size=2, train__epochs=1, train__eval_steps=4)
    single = run_inproc(tmp_path / "one", tiny_model_dir, split_dir, train__grad_accum=2, **over)
    job(tmp_path / "ddp", tiny_model_dir, split_dir, train__grad_accum=1, **over)
    launcher = [str(Path(PY).parent / "accelerate"), "launch", "--config_file",
                str(REPO / "stages/accelerate/cpu_ddp.yaml"), "--main_process_port", "29617", "-m"]
    res = run_cli(tmp_path / "ddp", tiny_model_dir, split_dir, launcher=launcher, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 replicas hold identical adapters" in res.stderr
    m = json.loads((tmp_path / "ddp" / "train.json").read_text())
    assert m["world_size"] == 2 and m["steps"] == single["steps"] == 10
    assert m["val_loss_best"] == pytest.approx(single["val_loss_best"], rel=1e-5)
    a, b = adapter(tmp_path / "one"), adapter(tmp_path / "ddp")
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k


# ---------------------------------------------------------------------------------- pipeline wiring
def test_dvc_stage_lists_every_module_train_imports():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["train"]
    deps = {d if isinstance(d, str) else next(iter(d)) for d in stage["deps"]}
    from stages.training.setup import CODE_FILES

    from dvc_deps import imported_files

    seen = imported_files("stages/train.py")
    assert seen <= deps, seen - deps
    assert seen <= set(CODE_FILES), seen - set(CODE_FILES)
    assert {"models/base", "data/split/train.jsonl", "data/split/val.jsonl"} <= deps
    assert sorted(stage["params"]) == ["lora", "prompt", "train"]
    outs = [o if isinstance(o, str) else next(iter(o)) for o in stage["outs"]]
    assert "models/lora" in outs
    # resume checkpoints are deliberately NOT a DVC out: DVC never deletes an undeclared path (so a killed
    # run still resumes), and a fresh clone / `dvc pull` has no missing output that would rerun train
    assert "models/checkpoints" not in outs

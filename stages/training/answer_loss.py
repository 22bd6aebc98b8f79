"""Answer-only causal-LM loss, computed cheaply.

* The LM head runs only on positions whose next token is an answer token (prompt and padding
  positions never reach the 150k-wide vocabulary projection).
* Frozen-prefix cache: when LoRA adapts only the last layers (``lora.layers: last:N``), the decoder
  layers below the first adapted one are frozen and dropout-free, so their output for an example never
  changes during training. It is computed once per example (no grad) and reused by later epochs and
  by every evaluation; the remaining layers run from that hidden state. Numerically checked against
  the model's own forward + loss at start-up (``AnswerLoss.self_check``).

Both are exact reformulations of ``model(input_ids, labels=...).loss * n_targets``."""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from stages.model.prompt import IGNORE_INDEX

log = logging.getLogger("stages.train")


class _Stop(Exception):
    pass


class _Passthrough(nn.Module):
    def forward(self, hidden_states, *args, **kwargs):
        return hidden_states


def _decoder(peft_model):
    return peft_model.get_base_model().get_decoder()


def first_trainable_layer(peft_model) -> int:
    layers = _decoder(peft_model).layers
    for i, layer in enumerate(layers):
        if any(p.requires_grad for p in layer.parameters()):
            return i
    return len(layers)


def prefix_cache_blocker(peft_model, start: int) -> str | None:
    """Why the frozen-prefix cache cannot be used (None when it can)."""
    if start == 0:
        return "LoRA adapts layer 0 (lora.layers covers all layers)"
    dec = _decoder(peft_model)
    if not isinstance(getattr(dec, "layers", None), nn.ModuleList):
        return f"{type(dec).__name__} has no `layers` ModuleList"
    if any(p.requires_grad for p in dec.get_input_embeddings().parameters()):
        return "input embeddings are trainable"
    cfg = peft_model.get_base_model().config
    drop = {k: v for k, v in cfg.to_dict().items() if "dropout" in k and isinstance(v, (int, float)) and v > 0}
    if drop:
        return f"the base model uses dropout {drop}"
    for layer in dec.layers[:start]:
        for m in layer.modules():
            if isinstance(m, nn.Dropout) and m.p > 0:
                return "a frozen layer contains dropout"
    return None


@contextmanager
def _skip_layers(dec, start: int):
    saved = [dec.layers[i] for i in range(start)]
    try:
        for i in range(start):
            dec.layers[i] = _Passthrough()
        yield
    finally:
        for i, layer in enumerate(saved):
            dec.layers[i] = layer


class AnswerLoss(nn.Module):
    """Wraps a peft model; ``forward`` returns (sum of answer-token NLL, number of answer targets).
    This is the module handed to ``accelerator.prepare`` (so DDP hooks see the real forward)."""

    def __init__(self, peft_model, prefix_start: int = 0):
        super().__init__()
        self.peft_model = peft_model
        self.prefix_start = prefix_start          # 0 = no frozen-prefix cache

    def forward(self, input_ids, attention_mask, labels, prefix_hidden=None, kl=None, ul: bool = False):
        """(answer NLL sum, answer targets), then the KL-to-base sum when ``kl`` (a
        ``stages.training.base_kl.KLRequest``) is given — its base pass runs here, adapter off, no grad — and
        the unlikelihood sum when ``ul`` (``stages.training.unlikelihood``), in that order."""
        tgt = labels[:, 1:]
        sel = tgt != IGNORE_INDEX
        logits = self._answer_logits(input_ids, attention_mask, sel, prefix_hidden)
        if ul:      # one log-softmax over the vocabulary serves both terms (a second one cost ~1.3x in step time)
            logp = torch.log_softmax(logits, dim=-1)
            nll = -logp.gather(1, tgt[sel].unsqueeze(1)).sum()
        else:
            nll = F.cross_entropy(logits, tgt[sel], reduction="sum")
        extras = []
        if kl is not None:
            from stages.training.base_kl import kl_sum

            if kl.missing:
                with torch.no_grad(), self.peft_model.disable_adapter():
                    base_logits = self._answer_logits(input_ids, attention_mask, sel, prefix_hidden)
                logq, ids = kl.fill(base_logits, sel.sum(1).tolist())
            else:
                logq, ids = kl.stored(logits.device)
            extras.append(kl_sum(logits, logq, ids))
        if ul:
            from stages.training.unlikelihood import unlikelihood_sum

            extras.append(unlikelihood_sum(logp, tgt[sel], sel.sum(1).tolist()))
        return (nll, sel.sum(), *extras)

    def _answer_logits(self, input_ids, attention_mask, sel, prefix_hidden=None):
        base = self.peft_model.get_base_model()
        dec = base.get_decoder()
        if prefix_hidden is not None:
            with _skip_layers(dec, self.prefix_start):
                out = dec(inputs_embeds=prefix_hidden, attention_mask=attention_mask, use_cache=False)
        else:
            out = dec(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = out.last_hidden_state[:, :-1][sel]
        return base.get_output_embeddings()(hidden).float()

    @torch.no_grad()
    def prefix(self, input_ids, attention_mask) -> torch.Tensor:
        """Hidden state entering layer ``prefix_start`` (frozen layers only, no grad)."""
        dec = _decoder(self.peft_model)
        got = {}

        def grab(_mod, args, kwargs):
            got["h"] = args[0] if args else kwargs["hidden_states"]
            raise _Stop

        handle = dec.layers[self.prefix_start].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            dec(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except _Stop:
            pass
        finally:
            handle.remove()
        return got["h"]

    @torch.no_grad()
    def self_check(self, batch: dict, rtol: float = 2e-4) -> tuple[bool, str]:
        """Compare our loss (and the cached-prefix path when enabled) with the model's own loss."""
        ref_model = self.peft_model
        out = ref_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        ours, n = self.forward(batch["input_ids"], batch["attention_mask"], batch["labels"])
        ref = out.loss.float() * n
        if not torch.isclose(ours, ref, rtol=rtol, atol=1e-4):
            raise RuntimeError(f"answer-only loss {ours.item():.6f} != model loss {ref.item():.6f}: "
                               f"unsupported model head for stages.training.answer_loss")
        if self.prefix_start:
            h = self.prefix(batch["input_ids"], batch["attention_mask"])
            cached, _ = self.forward(batch["input_ids"], batch["attention_mask"], batch["labels"], prefix_hidden=h)
            if not torch.isclose(cached, ref, rtol=rtol, atol=1e-4):
                return False, f"cached-prefix loss {cached.item():.6f} != model loss {ref.item():.6f}"
        return True, f"answer-only loss matches the model's loss ({ref.item() / max(1, n.item()):.4f}/token)"


class HostBudget:
    """Bytes of host memory a per-example cache may fill; past it, ``take`` refuses (warned once) and those
    examples are recomputed each time, so a huge train set cannot exhaust host memory."""

    def __init__(self, budget_bytes: int, what: str):
        self.budget, self.used, self.full, self.what = budget_bytes, 0, False, what

    def take(self, size: int) -> bool:
        if self.used + size > self.budget:
            if not self.full:
                log.warning("%s full (%.1f GiB budget): further examples are recomputed", self.what, self.budget / 2**30)
            self.full = True
            return False
        self.used += size
        return True


class PrefixCache:
    """Per-example frozen-prefix hidden states, kept on the host (moved to the device per batch).
    Stops storing new entries once ``budget_bytes`` is used (those examples are recomputed each
    time; logged once), so a huge train set cannot exhaust host memory."""

    def __init__(self, loss_module: AnswerLoss, enabled: bool, budget_bytes: int = 8 << 30):
        self.module = loss_module
        self.enabled = enabled and loss_module.prefix_start > 0
        self.store: dict[tuple[str, int], torch.Tensor] = {}
        self.memory = HostBudget(budget_bytes, "frozen-prefix cache")
        self.hits = self.misses = 0

    @property
    def used(self) -> int:
        return self.memory.used

    @property
    def full(self) -> bool:
        return self.memory.full

    def batch(self, split: str, idx: list[int], batch: dict) -> torch.Tensor | None:
        if not self.enabled:
            return None
        lengths = batch["attention_mask"].sum(1).tolist()
        missing = [k for k, i in enumerate(idx) if (split, i) not in self.store]
        if not missing:
            self.hits += len(idx)
            first = self.store[(split, idx[0])]
            out = torch.zeros((len(idx), batch["input_ids"].shape[1], first.shape[-1]), dtype=first.dtype)
            for k, i in enumerate(idx):
                out[k, :lengths[k]] = self.store[(split, i)]
            return out.to(batch["input_ids"].device)
        # any miss: run the frozen layers for the whole batch (same cost), keep what fits the budget
        self.misses += len(missing)
        h = self.module.prefix(batch["input_ids"], batch["attention_mask"])
        for k in missing:
            row = h[k, :lengths[k]]
            if not self.memory.take(row.numel() * row.element_size()):
                break
            self.store[(split, idx[k])] = row.detach().to("cpu", copy=True)
        return h

"""Keep the tuned model close to the base where the data does not say otherwise (``train.kl_to_base``).

The answer loss pulls every answer position toward the authored token. With ``train.kl_to_base`` λ > 0
the step also pays λ · KL(base ‖ tuned) at the same positions — a soft-target cross-entropy toward the
base model's own next-token distribution. Per position the optimum is the *mixture*
``(onehot(authored) + λ · p_base) / (1 + λ)``: the tuned model may put its mass on the authored answer,
but it may not take it away from what the base found likely. That is the point of it: merging the adapter
at a lower strength (``merge.scale``) also keeps real doctors' answers likely, but weakens the fit to the
authored answers everywhere; the mixture keeps the authored mode at full strength (stages/TRAINING.md,
*KL to the base*).

The base distribution of an example never changes during training (the adapter is switched off for it),
so it is computed once per example — the first time the example is in a batch — and only its top-k
(``train.kl_top_k``; renormalised) is kept in host memory: k x (4 + 4) bytes per answer token, ~22 MB for
the default corpus at k = 32. Past ``budget_bytes`` examples are recomputed each time instead (``HostBudget``, logged once).
Evaluation never uses this: the val loss stays the plain answer loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from stages.training.answer_loss import HostBudget


def topk_targets(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log q, ids) of the k most likely tokens per row of ``logits`` [N, V], q renormalised over them."""
    top, ids = logits.float().topk(min(k, logits.shape[-1]), dim=-1)
    return torch.log_softmax(top, dim=-1), ids


def kl_sum(logits: torch.Tensor, logq: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Σ over rows of Σ_k q_k (log q_k − log p_k), p = softmax(logits) over the whole vocabulary.
    Non-negative (Σ_k p_k ≤ 1); zero only when p equals q on the top-k and is zero elsewhere."""
    logp = torch.log_softmax(logits.float(), dim=-1).gather(1, ids)
    return (logq.exp() * (logq - logp)).sum()


class BaseTargets:
    """Per-example top-k base targets for the answer positions, in the row-major order of
    ``labels[:, 1:] != IGNORE_INDEX`` (the order ``AnswerLoss`` selects them in)."""

    def __init__(self, k: int, budget_bytes: int = 2 << 30):
        self.k = k
        self.store: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.memory = HostBudget(budget_bytes, "KL-to-base target cache")
        self.computed = 0

    def request(self, idx: list[int]) -> "KLRequest":
        return KLRequest(self, list(idx))


class KLRequest:
    """What one micro-batch hands ``AnswerLoss.forward``: which examples, and whether the base pass is needed."""

    def __init__(self, targets: BaseTargets, idx: list[int]):
        self.targets, self.idx = targets, idx

    @property
    def missing(self) -> bool:
        return any(i not in self.targets.store for i in self.idx)

    def fill(self, base_logits: torch.Tensor, counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets from the base pass's logits at the answer positions ([Σ counts, V]); stores what fits."""
        t = self.targets
        logq, ids = topk_targets(base_logits, t.k)
        t.computed += len(self.idx)
        for i, rows_q, rows_i in zip(self.idx, logq.split(counts), ids.split(counts)):
            if i not in t.store and t.memory.take(rows_q.numel() * 4 + rows_i.numel() * 4):
                t.store[i] = (rows_q.detach().to("cpu", copy=True), rows_i.detach().to("cpu", torch.int32, copy=True))
        return logq, ids

    def stored(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.cat([self.targets.store[i][0] for i in self.idx]).to(device)
        ids = torch.cat([self.targets.store[i][1] for i in self.idx]).to(device, torch.long)
        return q, ids

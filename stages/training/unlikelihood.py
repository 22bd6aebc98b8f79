"""Token-level unlikelihood training against repetition (``train.unlikelihood``).

Welleck et al., *Neural Text Generation with Unlikelihood Training* (ICLR 2020), §5.1: at every answer
position t the step also pays ``-Σ_{c ∈ C_t} log(1 − p_θ(c | y_<t))`` for the *negative candidates*
``C_t = {y_1 … y_{t−1}} \\ {y_t}`` — the tokens this answer has already used, except the authored one. A
model that puts mass on repeating itself where the authored answer moves on is taxed in proportion; where
the authored answer does repeat a token, that token is no candidate, so the likelihood term alone acts.
The paper's greedy continuations loop far less at a small cost in perplexity. Issue 14 found that this
fine-tune, not the base, causes the loops, and that the decoding penalties that stop them also end answers
early (stages/EVALUATION.md): this attacks the loops where they are learnt.

Candidates are the ANSWER's earlier tokens only (the prompt's "120"/"急诊" stay free, like
``stages.model.generate.AnswerRepetition``), each counted once per position. The term is summed over
positions like the answer NLL, so ``α · UL`` is added to the loss before the one per-token normalisation.
Evaluation never uses it: the val loss stays the plain answer loss."""
from __future__ import annotations

import torch

EPS = 1e-5        # 1 − p is clamped here: a candidate the model is sure of costs −log(1e-5) ≈ 11.5, not inf


def candidate_mask(y: torch.Tensor) -> torch.Tensor:
    """[m, m] bool for one answer's targets ``y`` [m]: ``mask[t, j]`` when ``y[j]`` is a negative
    candidate at position t — an earlier position (j < t), a different token from ``y[t]``, and the first
    occurrence of that token (so a token used five times is one candidate, not five)."""
    m = y.shape[0]
    same = y.unsqueeze(0) == y.unsqueeze(1)                          # same[a, b]: y[a] == y[b]
    earlier = torch.ones(m, m, dtype=torch.bool, device=y.device).tril(-1)   # [t, j]: j < t
    first = ~(same & earlier).any(dim=1)                             # y[j] not seen before j
    return earlier & ~same & first.unsqueeze(0)


def unlikelihood_sum(logp: torch.Tensor, targets: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Σ over answer positions of ``-Σ_{c ∈ C_t} log(1 − p(c))``. ``logp`` [N, V] (log-probabilities; the
    answer loss's own log-softmax, so no second pass over the vocabulary) and ``targets`` [N] hold the answer
    positions of a batch row after row (``counts`` per row), the order
    ``stages.training.answer_loss.AnswerLoss`` selects them in."""
    total = logp.new_zeros((), dtype=torch.float32)
    for lp, y in zip(logp.split(counts), targets.split(counts)):
        m = y.shape[0]
        if m < 2:
            continue
        cand = lp.gather(1, y.unsqueeze(0).expand(m, m))             # [t, j] = log p_t(y_j)
        mask = candidate_mask(y)
        one_minus = (-cand.exp()).add(1.0).clamp_min(EPS)
        total = total - torch.where(mask, one_minus.log(), torch.zeros_like(one_minus)).sum()
    return total

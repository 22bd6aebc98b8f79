"""Length-grouped batches and the step plan shared by every process.

Examples are shuffled (seeded per epoch), cut into mega-batches, sorted by length inside each, and
chunked into batches, so a batch holds similar lengths (little padding) while the order stays
random. Every process builds the same plan; process ``rank`` runs micro-batches ``rank::world`` of
each optimizer step, and the loss of a step is normalised by the target tokens of the *whole* step
(known up front), so gradients are an exact token-weighted mean whatever the batch/world shapes."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from stages.model.prompt import IGNORE_INDEX

MEGA_BATCHES = 16   # a mega-batch holds this many batches before sorting by length


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    mega = batch_size * MEGA_BATCHES
    batches = []
    for i in range(0, len(order), mega):
        chunk = sorted(order[i:i + mega], key=lambda j: (-lengths[j], j))
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    perm = rng.permutation(len(batches)).tolist()
    return [batches[p] for p in perm]


def eval_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda j: (-lengths[j], j))
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


@dataclass
class StepPlan:
    """Micro-batches (lists of example indices) of one optimizer step, for all processes."""
    epoch: int
    index: int                     # step index inside the epoch
    micro: list[list[int]]         # len is a multiple of world; process r runs micro[r::world]
    target_tokens: int             # loss-bearing tokens of the whole step (all processes)


class Planner:
    def __init__(self, lengths: list[int], targets: list[int], batch_size: int, grad_accum: int,
                 world: int, seed: int):
        self.lengths, self.targets = lengths, targets
        self.batch_size, self.grad_accum, self.world, self.seed = batch_size, grad_accum, world, seed
        n_batches = math.ceil(len(lengths) / batch_size)
        per_rank = math.ceil(n_batches / world)
        self.steps_per_epoch = math.ceil(per_rank / grad_accum)
        self._cache: dict[int, list[StepPlan]] = {}

    def epoch_plan(self, epoch: int) -> list[StepPlan]:
        if epoch not in self._cache:
            batches = length_grouped_batches(self.lengths, self.batch_size, self.seed, epoch)
            # every process must run the same number of micro-batches: repeat the first ones
            # (as DistributedSampler does) to make the count a multiple of the world size
            short = -len(batches) % self.world
            batches = batches + batches[:short]
            group = self.world * self.grad_accum
            plans = []
            for s, i in enumerate(range(0, len(batches), group)):
                micro = batches[i:i + group]
                plans.append(StepPlan(epoch, s, micro, sum(self.targets[j] for b in micro for j in b)))
            assert len(plans) == self.steps_per_epoch
            self._cache = {epoch: plans}
        return self._cache[epoch]

    def step(self, global_step: int) -> StepPlan:
        """Plan of optimizer step ``global_step`` (0-based over all epochs)."""
        return self.epoch_plan(global_step // self.steps_per_epoch)[global_step % self.steps_per_epoch]


def collate(examples, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a group of ``train_data.Example`` to its longest member."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}

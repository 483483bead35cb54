"""Random numbers drawn in a training step depend on where the step is, not on what ran before.

Gap this fills: Lightning checkpoints do not hold random-number-generator states, so after a resume
dropout masks and random augmentations differ from those of a run that was never stopped. Seeding
torch, numpy and random before every training batch from (seed, epoch, batch, data-parallel rank) makes a resumed
run draw exactly the same numbers, from whichever checkpoint it resumed, with nothing more to store.

Limit: this covers what a training step draws (dropout, augmentation of the batch in `training_step` or
`on_after_batch_transfer`). Random transforms inside a Dataset's `__getitem__` run before the step is
seeded: in DataLoader workers, whose generators are seeded when the loader's iterator starts, and even
in this process, as Lightning fetches the next batch ahead. After a resume, those transforms differ from
an uninterrupted run's. For exact resume, augment in the step, or seed the transform from (epoch, index).
"""

import hashlib
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def data_parallel_rank(trainer: L.Trainer) -> int:
    """Which share of the data this rank trains on. The ranks of one tensor-parallel group hold one model between
    them and see the same batch: they must draw the same numbers (the same dropout mask on the activations they
    all hold), so the draws follow this position, not the global rank."""
    sampler_kwargs = getattr(trainer.strategy, "distributed_sampler_kwargs", None) or {}
    return int(sampler_kwargs.get("rank", trainer.global_rank))


def data_parallel_size(trainer: L.Trainer) -> int:
    """Into how many shares the data is split: the ranks, over the ranks of one tensor-parallel group (before fit
    too, when the strategy has not yet built its device mesh)."""
    tensor_parallel = getattr(trainer.strategy, "_tensor_parallel_size", 1)  # trainer=model_parallel's
    if tensor_parallel == "auto":  # Lightning's auto: the devices of a node
        tensor_parallel = trainer.num_devices
    return max(trainer.num_nodes * trainer.num_devices // int(tensor_parallel), 1)


class StepSeeding(Callback):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        position = (self.seed, trainer.current_epoch, batch_idx, data_parallel_rank(trainer))
        # A hash of the position: independent seeds for neighbouring steps and ranks (SeedSequence mixes as well,
        # at 80,000 more instructions a step)
        step_seed = int.from_bytes(hashlib.blake2b(repr(position).encode(), digest_size=8).digest(), "little")
        # The CPU generator alone when training on the CPU: torch.manual_seed also visits every device
        # backend, which costs ~100x more than the seeding itself (benchmarks/README.md).
        if trainer.strategy.root_device.type == "cpu":
            torch.default_generator.manual_seed(step_seed)
        else:
            torch.manual_seed(step_seed)  # the CPU and every accelerator's generators
        np.random.seed(step_seed % 2**32)
        random.seed(step_seed)

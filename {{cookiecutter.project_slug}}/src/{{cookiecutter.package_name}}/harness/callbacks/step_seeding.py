"""Random numbers drawn in a training step depend on where the step is, not on what ran before.

Gap this fills: Lightning checkpoints do not hold random-number-generator states, so after a resume
dropout masks and random augmentations differ from those of a run that was never stopped. Seeding
torch, numpy and random before every training batch from (seed, epoch, batch, rank) makes a resumed
run draw exactly the same numbers, from whichever checkpoint it resumed, with nothing more to store.

Limit: this covers what a training step draws (dropout, augmentation of the batch in `training_step` or
`on_after_batch_transfer`). Random transforms inside a Dataset's `__getitem__` run before the step is
seeded: in DataLoader workers, whose generators are seeded when the loader's iterator starts, and even
in this process, as Lightning fetches the next batch ahead. After a resume, those transforms differ from
an uninterrupted run's. For exact resume, augment in the step, or seed the transform from (epoch, index).
"""

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class StepSeeding(Callback):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        position = (self.seed, trainer.current_epoch, batch_idx, trainer.global_rank)
        step_seed = int.from_bytes(np.random.SeedSequence(position).generate_state(2, np.uint32).tobytes(), "little")
        # The CPU generator alone when training on the CPU: torch.manual_seed also visits every device
        # backend, which costs ~100x more than the seeding itself (benchmarks/README.md).
        if trainer.strategy.root_device.type == "cpu":
            torch.default_generator.manual_seed(step_seed)
        else:
            torch.manual_seed(step_seed)  # the CPU and every accelerator's generators
        np.random.seed(step_seed % 2**32)
        random.seed(step_seed)

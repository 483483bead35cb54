"""Stop at the first NaN or infinite training loss, instead of training on NaNs for hours.

Gap this fills: Lightning keeps training on a non-finite loss; EarlyStopping(check_finite=True) only
looks at a validation metric once per validation. Here every step copies its loss into a buffer on the
loss's own device (one small copy; no step waits for it). Every `check_every_n_steps` batches and before
every checkpoint, the buffer is read (that waits for the device) and the ranks agree on whether any rank
saw a non-finite loss (a collective): doing either every step would slow training. All ranks then stop
together (a rank stopping alone would leave the others waiting forever), and no checkpoint is written
after the bad step, so the last good one is kept.
"""

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from {{cookiecutter.package_name}}.harness.callbacks.last_checkpoint import (
    last_checkpoint_path,
)
from {{cookiecutter.package_name}}.harness.checks import RunStopped


class StopOnNonFiniteLoss(Callback):
    def __init__(self, check_every_n_steps: int = 50) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._losses: torch.Tensor | None = None  # the losses of the batches not checked yet
        self._steps: list[int] = []  # their global steps

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._losses = torch.zeros(self.check_every_n_steps, device=module.device)
        self._steps = []

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        # Every rank fills its buffer at every batch (a skipped batch counts as finite), so all ranks
        # reach the check, a collective, at the same batch.
        self._losses[len(self._steps)] = loss.detach() if isinstance(loss, torch.Tensor) else 0.0
        self._steps.append(trainer.global_step)
        if len(self._steps) == self.check_every_n_steps:
            self._stop_if_bad(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        # Every rank builds the checkpoint before rank zero writes it, so all ranks take part here.
        self._stop_if_bad(trainer)

    def _stop_if_bad(self, trainer: L.Trainer) -> None:
        if not self._steps:
            return
        losses = self._losses[: len(self._steps)].tolist()  # waits for the device
        steps, self._steps = self._steps, []
        first_bad = (-1, 0.0)  # (step, loss) of this rank's first non-finite loss; step -1: none
        for step, loss in zip(steps, losses, strict=True):
            if not math.isfinite(loss):
                first_bad = (step, loss)
                break
        # Every rank's first bad (step, loss), in one collective: whichever rank reports the stop can
        # name the rank and step where it started.
        mine = torch.tensor(first_bad, dtype=torch.float64, device=self._losses.device)
        every_rank = trainer.strategy.all_gather(mine).view(-1, 2).tolist()
        bad = [(int(step), rank, loss) for rank, (step, loss) in enumerate(every_rank) if step >= 0]
        if not bad:
            return
        step, rank, loss = min(bad, key=lambda b: b[:2])
        where = f" on rank {rank}" if trainer.world_size > 1 else ""
        last = last_checkpoint_path(trainer)
        raise RunStopped(
            f"the training loss is {loss} at step {step}{where} (epoch {trainer.current_epoch}); "
            f"the last good checkpoint is {last or 'not written yet'}. Lower model.optimizer.lr or check the data."
        )

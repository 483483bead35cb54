"""Stop at the first NaN or infinite training loss, instead of training on NaNs for hours.

Gap this fills: Lightning keeps training on a non-finite loss; EarlyStopping(check_finite=True) only
looks at a validation metric once per validation. Here every step notes, on the loss's own device,
the first step whose loss was not finite; no step waits for it. Every `check_every_n_steps` steps and
before every checkpoint, the ranks agree on whether any rank saw one (reading the note waits for the
device, and agreeing is a collective: doing either every step would slow training). All ranks then stop
together (a rank stopping alone would leave the others waiting forever), and no checkpoint is written
after the bad step, so the last good one is kept.
"""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from {{cookiecutter.package_name}}.utils.checks import RunStopped


class StopOnNonFiniteLoss(Callback):
    def __init__(self, check_every_n_steps: int = 50) -> None:
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: torch.Tensor | None = None  # -1, or the first step with a non-finite loss
        self._bad_loss: torch.Tensor | None = None  # that step's loss

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        loss = loss.detach().float().mean()
        if self._first_bad is None:
            self._first_bad = torch.tensor(-1, device=loss.device)
            self._bad_loss = torch.zeros((), device=loss.device)
        newly_bad = ~torch.isfinite(loss) & (self._first_bad < 0)
        self._first_bad = torch.where(newly_bad, trainer.global_step, self._first_bad)
        self._bad_loss = torch.where(newly_bad, loss, self._bad_loss)
        if trainer.global_step % self.check_every_n_steps == 0:
            self._stop_if_bad(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        # Every rank builds the checkpoint before rank zero writes it, so all ranks take part here.
        self._stop_if_bad(trainer)

    def _stop_if_bad(self, trainer: L.Trainer) -> None:
        if self._first_bad is None:
            return
        first_bad = int(self._first_bad)  # waits for the device
        if trainer.strategy.reduce_boolean_decision(first_bad < 0, all=True):
            return
        last = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else None
        if first_bad < 0:
            what = f"not finite on another rank by step {trainer.global_step}"
        else:
            what = f"{self._bad_loss.item()} at step {first_bad}"
        raise RunStopped(
            f"the training loss is {what} (epoch {trainer.current_epoch}); "
            f"the last good checkpoint is {last or 'not written yet'}. Lower model.optimizer.lr or check the data."
        )

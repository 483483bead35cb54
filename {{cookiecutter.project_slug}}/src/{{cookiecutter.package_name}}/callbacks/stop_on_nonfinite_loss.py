"""Stop at the first NaN or infinite training loss, instead of training on NaNs for hours.

Gap this fills: Lightning keeps training on a non-finite loss; EarlyStopping(check_finite=True) only
looks at a validation metric once per validation. Here the ranks agree after every checked step on
whether any rank's loss is non-finite (agreeing matters: a rank stopping alone would leave the others
waiting forever), and all stop before the next checkpoint, so the last good checkpoint is kept.
"""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from {{cookiecutter.package_name}}.utils.checks import RunStopped


class StopOnNonFiniteLoss(Callback):
    def __init__(self, check_every_n_steps: int = 1) -> None:
        self.check_every_n_steps = check_every_n_steps

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor) or batch_idx % self.check_every_n_steps:
            return
        if trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss).all()), all=True):
            return
        last = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else None
        raise RunStopped(
            f"the training loss is {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
            f"the last good checkpoint is {last or 'not written yet'}. Lower model.optimizer.lr or check the data."
        )

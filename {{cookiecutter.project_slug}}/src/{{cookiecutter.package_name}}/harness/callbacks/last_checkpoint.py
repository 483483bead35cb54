"""checkpoints/last.ckpt: the newest training state, at every epoch end and every `every_n_train_steps` steps.

Gap this fills: ModelCheckpoint's `save_last=True` writes last.ckpt only when it also writes a top-k
checkpoint, so with a monitored metric last.ckpt stays at the best epoch and a resume silently trains
again every epoch since; and ModelCheckpoint refuses a step interval together with an epoch interval.
This is ModelCheckpoint with no metric, one file overwritten in place, saved on both triggers.
"""

import functools
from typing import Any

from lightning.pytorch import callbacks


class ModelCheckpoint(callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint (configs/callbacks/model_checkpoint.yaml), cheaper a step: its state key made
    once (Lightning formats every callback's key into a label at each hook call, and this one's is the repr of five
    settings that do not change once it is built), and its batch hook left out when no step or time interval can
    save there. And the loggers flushed at every save."""

    @functools.cached_property
    def state_key(self) -> str:
        return super().state_key

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        # Lightning's on_train_batch_end returns at once then, every batch; it skips a hook that is None.
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            self.on_train_batch_end = None

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
        # The loggers' rows up to here go to disk before the checkpoint does: a run killed after this save continues
        # after it, so rows still buffered (CSVLogger writes every flush_logs_every_n_steps) would be lost for good.
        for logger in trainer.loggers:
            if hasattr(logger, "log_row_before_checkpoint"):  # this step's own row, which Lightning logs after the save
                logger.log_row_before_checkpoint(trainer)
            logger.save()


class LastCheckpoint(ModelCheckpoint):
    def __init__(self, dirpath: str, every_n_train_steps: int | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,
        )
        # At every epoch end too. Both triggers at one step save once (ModelCheckpoint skips a step it saved).
        self._every_n_epochs = 1


def last_checkpoint_path(trainer: Any) -> str:
    """The path of the run's last.ckpt so far ("" before the first), as LastCheckpoint wrote it."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, LastCheckpoint):
            return callback.best_model_path  # with no metric, the "best" is the one written last
    return ""

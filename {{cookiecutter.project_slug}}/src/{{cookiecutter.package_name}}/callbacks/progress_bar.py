"""Lightning's Rich progress bar, reading the logged metrics only as often as it redraws.

Gap this fills: Lightning's RichProgressBar redraws from a background thread `refresh_rate` times a second,
yet after every training batch it gathers every metric logged with `prog_bar=True` (`.item()` on each: on a
GPU, the training loop waits for the device every step). Here that happens at most `refresh_rate` times a
second and on an epoch's last batch; slow steps (a second or more) still update the bar after every batch.
"""

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    _last_update = 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last_batch = batch_idx + 1 == self.total_train_batches
        if last_batch or now - self._last_update >= 1 / max(self.refresh_rate, 1):
            self._last_update = now
            super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)

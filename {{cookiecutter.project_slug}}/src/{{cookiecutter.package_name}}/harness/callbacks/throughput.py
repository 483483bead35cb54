"""Log how fast training goes: train/samples_per_sec (and train/tokens_per_sec), also in the progress bar, and
on a GPU train/mfu, the model FLOPs utilization: the share of the GPU's peak FLOPs (Lightning's table, for the
run's precision) that the model's own FLOPs take. MFU needs the LightningModule to say what one sample costs,
a `flops_per_sample` attribute (models/language_model.py has one).

Gap this fills, next to Lightning's ThroughputMonitor: that callback waits for the GPU after every batch
(torch.cuda.synchronize) to time it, which itself slows training; it logs to the loggers only, so the
speed is neither in the progress bar nor in summary.json; and it needs a batch-size function. This one
times whole logging intervals instead (every `trainer.log_every_n_steps` steps): queued GPU work evens
out over an interval, so nothing waits. Validation and the time between epochs are left out.
"""

import time
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import get_available_flops
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.data import extract_batch_size

from {{cookiecutter.package_name}}.harness.callbacks.step_seeding import data_parallel_size


class Throughput(Callback):
    def __init__(self, tokens_per_sample: int | None = None) -> None:
        self.tokens_per_sample = tokens_per_sample  # e.g. the context length of a language model
        self._start = 0.0
        self._samples = 0  # this rank's samples since `_start`
        self._logged_step = 0  # with gradient accumulation, several batches end on the same step
        self._peak_flops: int | None = None  # of one device; None: not a GPU Lightning knows

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        device = trainer.strategy.root_device
        if device.type == "cuda" and hasattr(module, "flops_per_sample"):
            precision = str(trainer.precision)
            dtype = torch.bfloat16 if "bf16" in precision else torch.float16 if "16" in precision else torch.float32
            self._peak_flops = get_available_flops(device, dtype)

    def _restart_clock(self) -> None:
        self._start, self._samples = time.perf_counter(), 0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._restart_clock()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._restart_clock()  # validation inside an epoch (val_check_interval) is not training time

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._samples += extract_batch_size(batch)
        if trainer.global_step % trainer.log_every_n_steps or trainer.global_step == self._logged_step:
            return
        self._logged_step = trainer.global_step
        # Every data-parallel rank trains on as many samples per step (DistributedSampler); the ranks of a
        # tensor-parallel group share theirs, so all of them together count once (world_size counted them twice):
        samples_per_sec = data_parallel_size(trainer) * self._samples / (time.perf_counter() - self._start)
        module.log("train/samples_per_sec", samples_per_sec, prog_bar=True, on_step=True, on_epoch=False)
        if self.tokens_per_sample:
            module.log("train/tokens_per_sec", samples_per_sec * self.tokens_per_sample, on_step=True, on_epoch=False)
        if self._peak_flops:
            mfu = samples_per_sec * module.flops_per_sample / (trainer.world_size * self._peak_flops)
            module.log("train/mfu", mfu, prog_bar=True, on_step=True, on_epoch=False)
        self._restart_clock()

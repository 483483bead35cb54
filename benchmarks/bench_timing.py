"""StepTimer: a Lightning callback that times the generated project's training steps without changing it;
PredictTimer the same for predict.py (inference.py).

run.py adds it on the command line: `+callbacks.bench._target_=bench_timing.StepTimer` with benchmarks/ on
PYTHONPATH. It calls the same StepClock as plain_train.py, at on_train_batch_start (the batch is fetched and
on the device, the step has not started), and writes the result at the end of fit.
"""

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from step_clock import StepClock, memory


class StepTimer(Callback):
    def __init__(self, warmup_steps: int = 10) -> None:
        self.clock = StepClock(warmup_steps)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.clock.step(trainer.current_epoch, len(batch[0]))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Samples/s counts each batch once: the ranks that split one batch (tensor parallel) count as one.
        sampler = getattr(trainer.strategy, "distributed_sampler_kwargs", None) or {}
        replicas = sampler.get("num_replicas", trainer.world_size)
        extra = memory(pl_module, trainer.optimizers[0])
        self.clock.finish(trainer.global_rank, replicas, global_step=trainer.global_step, **extra)


class PredictTimer(Callback):
    """predict.py's throughput: from the start of its first batch to the end of the epoch, after the prediction
    writer (a callback before this one) has written the file. Rank zero writes {inputs, seconds, samples_per_s}."""

    def __init__(self) -> None:
        self.started: float | None = None

    def on_predict_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self.started
        inputs = len(trainer.predict_dataloaders.dataset)
        if trainer.is_global_zero and "BENCH_OUT" in os.environ:
            result = {"inputs": inputs, "seconds": seconds, "samples_per_s": inputs / seconds}
            Path(os.environ["BENCH_OUT"]).write_text(json.dumps(result))

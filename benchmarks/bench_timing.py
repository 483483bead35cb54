"""StepTimer: a Lightning callback that times the generated project's training steps without changing it.

run.py adds it on the command line: `+callbacks.bench._target_=bench_timing.StepTimer` with benchmarks/ on
PYTHONPATH. It calls the same StepClock as plain_train.py, at on_train_batch_start (the batch is fetched and
on the device, the step has not started), and writes the result at the end of fit.
"""

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

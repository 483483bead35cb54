"""summary.json: how a run went, in one small file next to its checkpoints.

Gap this fills: Lightning spreads this over its loggers, the checkpoint callback and the Trainer;
scripts, tests and sweeps want one file to read. Written by rank zero only, merged stage by stage
(fit, then test), and replaced atomically so a reader never sees half a file.
"""

import json
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy

from {{cookiecutter.package_name}}.harness.callbacks.last_checkpoint import (
    last_checkpoint_path,
)
from {{cookiecutter.package_name}}.harness.checks import RunStopped


def strategy_name(strategy: Any) -> str:
    """The name a user would pass as `strategy=`: ddp, ddp_spawn, dp, single_device, ..."""
    if isinstance(strategy, DDPStrategy):  # one class for ddp, ddp_spawn, ddp_fork: told apart by start method
        return "ddp" if strategy._start_method == "popen" else f"ddp_{strategy._start_method}"
    return getattr(type(strategy), "strategy_name", type(strategy).__name__)


class RunSummary(Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update(trainer, status="finished", global_step=trainer.global_step, epochs=trainer.current_epoch)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update(trainer, status="finished", tested_ckpt_path=trainer.ckpt_path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "stopped" if isinstance(exception, RunStopped) else "failed"
        self._update(trainer, status=status, error=str(exception)[:500])

    def _update(self, trainer: L.Trainer, **fields: Any) -> None:
        if not trainer.is_global_zero:
            return
        summary = json.loads(self.path.read_text()) if self.path.is_file() else {}
        summary.update(
            strategy=strategy_name(trainer.strategy),
            accelerator=trainer.strategy.root_device.type,
            devices=trainer.num_devices,
            num_nodes=trainer.num_nodes,
            world_size=trainer.world_size,
            **fields,
        )
        # ddp_spawn hands back only the best path: keep what we had
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        for key, path in (("best_ckpt_path", best), ("last_ckpt_path", last_checkpoint_path(trainer))):
            if path:
                summary[key] = path
        metrics = summary.setdefault("metrics", {})
        metrics.update({name: round(float(value), 6) for name, value in trainer.callback_metrics.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, self.path)

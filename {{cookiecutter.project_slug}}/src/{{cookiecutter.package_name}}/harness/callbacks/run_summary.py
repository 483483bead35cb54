"""summary.json: what a run was and how it went, in one small file next to its checkpoints.

Gap this fills: Lightning spreads this over its loggers, the checkpoint callback and the Trainer, and
Hydra keeps only the last command's overrides; scripts, tests, sweeps and compare.py want one file to read.
It holds the run's name, tags, the overrides it goes on with and each command's across resumes, its status
(running, testing, finished, stopped, interrupted, failed), when it started and ended and its wall time (each
attempt's, summed), its strategy and world size, steps, checkpoints, the metric its best checkpoint is chosen by, and
the last value of every metric. Written by rank zero only, at the start of fit, then merged stage by stage
(fit, then test), and replaced atomically so a reader never sees half a file.
"""

import json
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.exceptions import SIGTERMException

from {{cookiecutter.package_name}}.harness import resume, run_info, sweep_resume
from {{cookiecutter.package_name}}.harness.callbacks.data_position import DataPosition
from {{cookiecutter.package_name}}.harness.callbacks.last_checkpoint import (
    last_checkpoint_path,
)
from {{cookiecutter.package_name}}.harness.checks import ConfigError, RunStopped


def strategy_name(strategy: Any) -> str:
    """The name a user would pass as `strategy=`: ddp, ddp_spawn, dp, single_device, ..."""
    if isinstance(strategy, DDPStrategy):  # one class for ddp, ddp_spawn, ddp_fork: told apart by start method
        return "ddp" if strategy._start_method == "popen" else f"ddp_{strategy._start_method}"
    return getattr(type(strategy), "strategy_name", type(strategy).__name__)


class RunSummary(Callback):
    def __init__(
        self, path: str, name: str | None = None, tags: Sequence[str] | None = None, tests_after_training: bool = False
    ) -> None:
        self.path = Path(path)
        self.name, self.tags = name, list(tags or [])
        self.tests_after_training = tests_after_training
        # This command's overrides as typed: the run goes on with them. Taken here, in the
        # process Hydra ran (under ddp_spawn the callback reaches rank zero's process without Hydra).
        self.overrides = run_info.typed_overrides()
        self.sweep_command = sweep_resume.continue_command()  # in a grid sweep's job: the sweep's, launched again

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        summary = self._read()
        attempts = summary.get("attempts", [])
        attempts.append({"started": _now(), "overrides": self.overrides})  # one per command that ran fit
        self._update(
            trainer,
            status="running",
            name=self.name,
            tags=self.tags or summary.get("tags", []),  # a continued run keeps the tags it was started with
            overrides=run_info.continued(summary.get("overrides", []), self.overrides),
            started=summary.get("started", attempts[-1]["started"]),
            attempts=attempts,
            # how it takes its samples per optimizer step: continued before its first checkpoint, it keeps them
            samples_per_step=summary.get("samples_per_step") or _samples_per_step(trainer),
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run killed while it tests (SIGKILL: no exception to note) must not read as finished: a sweep that
        # continues would skip it, without its test metrics.
        status = "testing" if self.tests_after_training else "finished"
        self._update(trainer, status=status, global_step=trainer.global_step, epochs=trainer.current_epoch)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update(trainer, status="finished", tested_ckpt_path=trainer.ckpt_path)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, ConfigError):  # refused before any work (harness/callbacks/optimizer_settings.py)
            return
        if isinstance(exception, KeyboardInterrupt | SIGTERMException):  # Ctrl-C, or `kill`
            status = "interrupted"
        else:
            status = "stopped" if isinstance(exception, RunStopped) else "failed"
        step, epoch = trainer.global_step, trainer.current_epoch
        self._update(trainer, status=status, error=str(exception)[:500], global_step=step, epochs=epoch)
        if status == "interrupted" and trainer.is_global_zero and trainer.state.fn == "fit":
            if trainer.progress_bar_callback is not None:  # closed first: a live bar redraws over what is printed
                trainer.progress_bar_callback.on_exception(trainer, pl_module, exception)
            print(self._how_to_continue(trainer.global_step), file=sys.stderr)

    def _how_to_continue(self, step: int) -> str:
        """What Ctrl-C kept, and the command that continues this run folder from it (resume.py picks the same)."""
        run_dir = self.path.parent
        newest = resume.newest_checkpoint(run_dir)
        if newest is None:
            return f"INTERRUPTED at step {step}, before any checkpoint was saved: nothing to continue from."
        overrides = [o for o in self.overrides if not o.startswith("ckpt_path=")]
        command = shlex.join(["python", "train.py", *overrides, "ckpt_path=last", f"hydra.run.dir={run_dir}"])
        stopped = f"INTERRUPTED at step {step}; saved: step {resume.saved_step(newest)} in {newest}."
        if self.sweep_command:  # this job from there, the jobs that finished skipped, the others run
            return f"{stopped}\nTo continue the sweep: {self.sweep_command}"
        return f"{stopped}\nTo continue from there: {command}"

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _update(self, trainer: L.Trainer, **fields: Any) -> None:
        if not trainer.is_global_zero:
            return
        summary = self._read()
        summary.update(fields)
        if summary.get("attempts"):  # each attempt lasts until the last update it made
            summary["attempts"][-1]["ended"] = summary["ended"] = _now()
            summary["wall_time_s"] = round(sum(_seconds(a["started"], a["ended"]) for a in summary["attempts"]), 1)
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None and getattr(checkpoint, "monitor", None):  # what compare.py ranks runs by
            summary.update(monitor=checkpoint.monitor, mode=checkpoint.mode)
            if checkpoint.best_model_score is not None:
                summary["best_score"] = round(float(checkpoint.best_model_score), 6)
        summary.update(
            strategy=strategy_name(trainer.strategy),
            accelerator=trainer.strategy.root_device.type,
            devices=trainer.num_devices,
            num_nodes=trainer.num_nodes,
            world_size=trainer.world_size,
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


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _samples_per_step(trainer: L.Trainer) -> dict | None:
    position = next((c for c in trainer.callbacks if isinstance(c, DataPosition)), None)
    return position.state_dict() if position is not None else None

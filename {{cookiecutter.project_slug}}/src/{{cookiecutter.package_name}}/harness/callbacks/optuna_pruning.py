"""Report a search trial's metric to its Optuna study after every validation, and stop the run when pruned.

Gap this fills: Optuna's Lightning callback (optuna-integration) needs the Trial of an `objective(trial)`
function running in the same process; a run that a Hydra sweeper launches (here, or as a SLURM job) has no such
object. Here rank zero opens its trial from the study's storage (the job's number is the trial's number:
harness/search.py), reports the metric and asks the study's pruner; the decision is broadcast, so every rank
stops after the same validation (a rank stopping alone would leave the others waiting in a collective). The run
then ends as any run does, checkpoints, summary.json (`trial`: number, pruned) and test included, and the
sweeper, finding the `pruned` mark on the trial, tells the study it was pruned. The count of validations is
in the checkpoint: a trial resumed from one (a requeued SLURM job) reports on from there, not from 0 again
(Optuna would ignore those steps as already reported, and number the later ones wrongly).
"""

import json
import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from {{cookiecutter.package_name}}.harness import search
from {{cookiecutter.package_name}}.harness.checks import ConfigError

log = logging.getLogger(__name__)


class OptunaPruning(Callback):
    def __init__(
        self, monitor: str, storage: str, study_name: str, trial_number: int, pruner: Any, summary_path: str
    ) -> None:
        self.monitor, self.storage, self.study_name = monitor, storage, study_name
        self.trial_number, self.pruner, self.summary_path = int(trial_number), pruner, Path(summary_path)
        self._trial: Any = None  # rank zero's optuna Trial
        self._validations = 0  # the step of each report: trials with other batch sizes compare after as many
        self.pruned = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._validations, self.pruned = 0, False  # before a checkpoint's state is loaded (load_state_dict)

    def state_dict(self) -> dict[str, Any]:
        return {"validations": self._validations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._validations = state_dict["validations"]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._trial = search.open_trial(self.storage, self.study_name, self.trial_number, self.pruner)
            if self._trial is None:
                log.warning(f"Trial {self.trial_number} of study {self.study_name} is not running: not reporting to it")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:  # every rank logs the same keys: all stop here
            raise ConfigError(
                f"optimized_metric={self.monitor} is not a metric this run logs after validating: "
                f"use one of {sorted(k for k in trainer.callback_metrics if not k.startswith('train/'))}."
            )
        step, self._validations = self._validations, self._validations + 1
        prune = False
        if trainer.is_global_zero and self._trial is not None:
            prune = self._report(trainer, float(trainer.callback_metrics[self.monitor]), step)
        if trainer.strategy.broadcast(prune, src=0):
            trainer.should_stop = True
            self.pruned = True

    def _report(self, trainer: L.Trainer, value: float, step: int) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self._trial.report(value, step)
            if not self._trial.should_prune():
                return False
            self._trial.set_user_attr("pruned", {"validation": step, "epoch": trainer.current_epoch, "value": value})
        except UpdateFinishedTrialError:  # an interrupted search started again ended it, or someone did by hand
            log.warning(f"Trial {self.trial_number} was ended by another process: stopping")
            return True
        log.info(
            f"Trial {self.trial_number} pruned at validation {step} (epoch {trainer.current_epoch}): "
            f"{self.monitor}={value:.6g}"
        )
        return True

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        summary = json.loads(self.summary_path.read_text()) if self.summary_path.is_file() else {}
        summary["trial"] = {"study": self.study_name, "number": self.trial_number, "pruned": self.pruned}
        self.summary_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.summary_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, self.summary_path)

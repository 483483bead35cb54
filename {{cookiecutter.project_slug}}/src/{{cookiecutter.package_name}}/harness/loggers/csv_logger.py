"""CSV metrics that keep a run's whole history across resume, requeue and ddp_spawn.

Gap this fills: Lightning's CSVLogger deletes an existing metrics.csv when it opens its folder ("Previous
log files in this directory will be deleted"). A run continued in its folder (`ckpt_path=last`, a requeued
SLURM job) so lost every earlier row, and under ddp_spawn the process that runs `trainer.test` wiped what
the fit process had written. Here the file is appended to instead; its header grows (one rewrite of the
file) when new columns appear.

Rows logged after the checkpoint a run resumes from (killed at step 200, last checkpoint at step 140) are
logged again by the resumed run. So the first row a resumed writer logs, at step s, replaces the old rows
with step >= s: the file holds each step once, as the curve continues from the checkpoint. A first row at
step 0 replaces nothing: under ddp_spawn the test process logs at step 0 (Lightning does not hand the
fit's global step to it), and that row adds to the fit's rows.
"""

import csv
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.apply_func import convert_tensors_to_scalars
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only


class _AppendingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self._continuing = self._fs.isfile(self.metrics_file_path)
        if self._continuing:  # the header must keep covering the columns of the rows already there
            self.metrics_keys = self._read()[0]

    def _check_log_dir_exists(self) -> None:
        """Lightning deletes metrics.csv here; an earlier process of this run wrote it, so keep it."""

    def _read(self) -> tuple[list[str], list[dict]]:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            return list(reader.fieldnames or []), list(reader)

    def save(self) -> None:
        if self.metrics and self._fs.isfile(self.metrics_file_path):
            # Another process may have written the file since this writer was made (ddp_spawn: the writer
            # made before fit reaches the test's process as it was): its header must cover those columns.
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = sorted(set(self.metrics_keys) | set(header))
        if self.metrics and self._continuing:
            self._continuing = False
            first_step = self.metrics[0]["step"]
            if first_step > 0:
                self._drop_rows_from(first_step)
        super().save()

    def _drop_rows_from(self, step: int) -> None:
        fieldnames, rows = self._read()
        kept = [row for row in rows if (row.get("step") or "").isdigit() and int(row["step"]) < step]
        if len(kept) == len(rows):
            return
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(kept)


class CSVLogger(LightningCSVLogger):
    """Lightning's CSVLogger, appending to the run's metrics.csv instead of deleting it; a training step's row goes to
    disk before that step's checkpoint does (`log_row_before_checkpoint`)."""

    _written_early: tuple[int, dict] | None = None

    @rank_zero_only
    def log_row_before_checkpoint(self, trainer: Any) -> None:
        """Called as a checkpoint is saved, before the loggers' save (harness/callbacks/last_checkpoint.py). Saved at
        a training step's end, the checkpoint reaches disk before Lightning logs that step's row (it logs after every
        callback's on_train_batch_end): a run killed in between continues after the checkpoint, and the row was lost
        for good (the kill campaign: metrics.csv without step 99 after a SIGKILL that followed the save at step 100).
        So the row is logged here, first (the save that follows writes it), and Lightning's own log of it a moment
        later is not written twice."""
        row = _row_of_this_training_step(trainer)
        if row is None:
            return
        step, metrics = row
        self.log_metrics(metrics, step)
        self._written_early = row

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._written_early is not None:
            early_step, early = self._written_early
            self._written_early = None
            if step == early_step and metrics.keys() <= early.keys():
                return  # the row written before the checkpoint; keys it lacked (a hook logging later) are written
        super().log_metrics(metrics, step)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def _row_of_this_training_step(trainer: Any) -> tuple[int, dict] | None:
    """The (step, metrics) Lightning is about to log at the end of this training step, as
    `_LoggerConnector.update_train_step_metrics` will; None outside a training step's end or where it logs nothing."""
    loop = trainer.fit_loop.epoch_loop
    progress = loop.batch_progress.total
    if not trainer.training or progress.processed != progress.completed + 1:
        return None  # not between a training step and its row: at an epoch's or a validation's end it is logged
    if trainer.fit_loop._should_accumulate() and trainer.lightning_module.automatic_optimization:
        return None
    connector = trainer._logger_connector
    if not (connector.should_update_logs or trainer.fast_dev_run):
        return None
    metrics = convert_tensors_to_scalars(connector.metrics["log"])
    if not metrics:
        return None
    step = metrics.pop("step", None)
    if step is None:
        metrics.setdefault("epoch", trainer.current_epoch)
        step = loop._batches_that_stepped
    return int(step), metrics

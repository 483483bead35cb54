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

from lightning.fabric.loggers.logger import rank_zero_experiment
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
    """Lightning's CSVLogger, appending to the run's metrics.csv instead of deleting it; the row logged right after
    a checkpoint is saved goes to disk at once (`write_next_row`)."""

    _write_next_row = False

    def write_next_row(self) -> None:
        """Called at each checkpoint save (harness/callbacks/last_checkpoint.py). Lightning logs a step's row after
        the callbacks' on_train_batch_end, where the checkpoint of that step is saved: a run killed between that row
        and the next flush continues after the checkpoint, and the row would be lost for good (a 100-kill run's
        one failure, step 239 of a save at 240)."""
        self._write_next_row = True

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        if self._write_next_row:
            self._write_next_row = False
            self.save()

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

"""predictions.csv (.parquet, .npz): what the model's `predict_step` returns for every input, one row an input, in input
order.

Gap this fills: Lightning's BasePredictionWriter leaves the writing to you, and under DDP each rank predicts a share
of the inputs (every R-th one) and holds only that share: its documentation's example writes one file a rank. Here
the shares are gathered on rank zero, put back in input order by the indices Lightning recorded (an input that
two ranks predicted, as a padding sampler would make them, counts once) and written as one file, whole or not at
all: to a temporary name first, renamed when complete.
"""

import csv
import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)


class PredictionWriter(BasePredictionWriter):
    """`predict_step` returns a dict of columns, each with one entry an input of the batch. In a CSV file a tensor of
    one value an input becomes one column, of several values (class probabilities) a column each (`probability_0`,
    ...), a list of texts one column; a `.npz` file holds each as one array, its first dimension the inputs."""

    def __init__(self, path: str) -> None:
        super().__init__(write_interval="epoch")
        self.path = Path(path)

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        mine: dict[int, dict] = {}  # input index -> its entry of each column
        for prediction, indices in zip(predictions, batch_indices[0], strict=True):  # one dataloader
            columns = {name: v.tolist() if isinstance(v, torch.Tensor) else list(v) for name, v in prediction.items()}
            for i, index in enumerate(indices):
                mine[index] = {name: column[i] for name, column in columns.items()}
        shares = [mine]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * trainer.world_size
            torch.distributed.all_gather_object(shares, mine)  # rows are small: every rank's to every rank
        if not trainer.is_global_zero:
            return
        rows = {index: row for share in shares for index, row in share.items()}
        inputs = len(trainer.predict_dataloaders.dataset)
        if sorted(rows) != list(range(inputs)):  # every input once: the file stands for the whole input
            raise RuntimeError(f"predictions came back for {len(rows)} of {inputs} inputs: nothing written")
        ordered = [rows[index] for index in range(inputs)]
        partial = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        if self.path.suffix == ".npz":
            np.savez(partial, **{name: np.array([row[name] for row in ordered]) for name in ordered[0]})
        elif self.path.suffix == ".parquet":  # the CSV file's columns, typed
            import pyarrow.parquet  # the parquet extra: predict.py checks it is there before any work

            header, rows = _table(ordered)
            columns = dict(zip(header, map(list, zip(*rows, strict=True)), strict=True))
            pyarrow.parquet.write_table(pyarrow.table(columns), partial)
        else:
            header, rows = _table(ordered)
            with open(partial, "w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(header)
                writer.writerows(rows)
        os.replace(partial, self.path)
        log.info(f"Predictions for {inputs} inputs: {self.path}")


def _table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """The header and one row an input; an entry of several values a column each (`probability_0`, ...)."""
    header = []
    for name, value in rows[0].items():
        header += [f"{name}_{j}" for j in range(len(value))] if isinstance(value, list) else [name]
    flat = [[x for value in row.values() for x in (value if isinstance(value, list) else [value])] for row in rows]
    return header, flat

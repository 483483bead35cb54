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
        # This rank's share as columns (lists, cheap to gather), beside the input index of each entry
        indices: list[int] = []
        columns: dict[str, list] = {}
        for prediction, batch in zip(predictions, batch_indices[0], strict=True):  # one dataloader
            indices += batch
            for name, values in prediction.items():
                columns.setdefault(name, []).extend(values.tolist() if isinstance(values, torch.Tensor) else values)
        shares = [(indices, columns)]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * trainer.world_size
            torch.distributed.all_gather_object(shares, (indices, columns))  # every rank's to every rank
        if not trainer.is_global_zero:
            return
        place: dict[int, tuple[int, int]] = {}  # input index -> (share, position); predicted twice: counts once
        for share, (share_indices, _) in enumerate(shares):
            for position, index in enumerate(share_indices):
                place.setdefault(index, (share, position))
        inputs = len(trainer.predict_dataloaders.dataset)
        if sorted(place) != list(range(inputs)):  # every input once: the file stands for the whole input
            raise RuntimeError(f"predictions came back for {len(place)} of {inputs} inputs: nothing written")
        order = [place[index] for index in range(inputs)]
        ordered = {name: [shares[share][1][name][position] for share, position in order] for name in columns}
        partial = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        if self.path.suffix == ".npz":
            np.savez(partial, **{name: np.array(values) for name, values in ordered.items()})
        elif self.path.suffix == ".parquet":  # the CSV file's columns, typed
            import pyarrow.parquet  # the parquet extra: predict.py checks it is there before any work

            pyarrow.parquet.write_table(pyarrow.table(_table(ordered)), partial)
        else:
            table = _table(ordered)
            with open(partial, "w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(table.keys())
                writer.writerows(zip(*table.values(), strict=True))
        os.replace(partial, self.path)
        log.info(f"Predictions for {inputs} inputs: {self.path}")


def _table(columns: dict[str, list]) -> dict[str, list]:
    """The columns of a table: an entry of several values (class probabilities) a column each (`probability_0`, ...)."""
    table = {}
    for name, values in columns.items():
        if values and isinstance(values[0], list):
            table.update({f"{name}_{j}": column for j, column in enumerate(np.array(values).T.tolist())})
        else:
            table[name] = values
    return table

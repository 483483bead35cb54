"""predictions.csv: what the model's `predict_step` returns for every input, one row an input, in input order.

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
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

log = logging.getLogger(__name__)


class PredictionWriter(BasePredictionWriter):
    """`predict_step` returns a dict of columns, each with one entry an input of the batch: a tensor of one value an
    input becomes one CSV column, of several values (class probabilities) a column each (`probability_0`, ...),
    a list of texts one column."""

    def __init__(self, path: str) -> None:
        super().__init__(write_interval="epoch")
        self.path = Path(path)

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        header: list[str] = []
        mine: dict[int, list] = {}  # input index -> row
        for prediction, indices in zip(predictions, batch_indices[0], strict=True):  # one dataloader
            header, rows = _rows(prediction)
            mine.update(zip(indices, rows, strict=True))
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
        partial = self.path.with_name(f".{self.path.name}.partial")
        with open(partial, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(rows[index] for index in range(inputs))
        os.replace(partial, self.path)
        log.info(f"Predictions for {inputs} inputs: {self.path}")


def _rows(prediction: dict[str, Any]) -> tuple[list[str], list[list]]:
    """A batch's columns as (header, one row an input)."""
    header, columns = [], []
    for name, values in prediction.items():
        values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
        if values and isinstance(values[0], list):  # several values an input: a column each
            header += [f"{name}_{j}" for j in range(len(values[0]))]
            columns += list(zip(*values, strict=True))
        else:
            header.append(name)
            columns.append(values)
    return header, [list(row) for row in zip(*columns, strict=True)]

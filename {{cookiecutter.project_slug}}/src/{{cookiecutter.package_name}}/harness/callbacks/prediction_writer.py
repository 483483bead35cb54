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
        # This rank's share, each column joined over its batches (a tensor stays one tensor on the CPU: quick to
        # gather, reorder and write), beside the input index of each entry
        indices = torch.tensor([index for batch in batch_indices[0] for index in batch], dtype=torch.long)
        names = predictions[0] if predictions else {}  # a rank given no inputs has no columns
        columns = {name: _joined([prediction[name] for prediction in predictions]) for name in names}
        shares = [(indices, columns)]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * trainer.world_size
            torch.distributed.all_gather_object(shares, (indices, columns))  # every rank's to every rank
        if not trainer.is_global_zero:
            return
        inputs = len(trainer.predict_dataloaders.dataset)
        ordered = in_input_order(shares, inputs)
        partial = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        if self.path.suffix == ".npz":
            np.savez(partial, **{name: _array(values) for name, values in ordered.items()})
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


def in_input_order(shares: list[tuple[torch.Tensor, dict]], inputs: int) -> dict[str, torch.Tensor | list]:
    """The columns of the ranks' shares (each the input indices and the columns predicted for them), one entry an
    input in input order. An input predicted twice (as a padding sampler makes ranks do) counts once; an input
    missing is an error: the file stands for the whole input or is not written."""
    entries, position = torch.cat([indices for indices, _ in shares]).sort(stable=True)
    first = torch.ones_like(entries, dtype=torch.bool)
    first[1:] = entries[1:] != entries[:-1]
    if not torch.equal(entries[first], torch.arange(inputs)):
        raise RuntimeError(f"predictions came back for {int(first.sum())} of {inputs} inputs: nothing written")
    take = position[first]
    names = next((columns for _, columns in shares if columns), {})  # the columns of any rank given inputs
    return {name: _taken(_joined([columns[name] for _, columns in shares if columns]), take) for name in names}


def _joined(parts: list) -> torch.Tensor | list:
    """A column's batches as one: tensors concatenated on the CPU, lists (of texts) chained."""
    if parts and isinstance(parts[0], torch.Tensor):
        return torch.cat([part.cpu() for part in parts])
    return [value for part in parts for value in part]


def _taken(column: torch.Tensor | list, take: torch.Tensor) -> torch.Tensor | list:
    """The entries of a column at the positions `take`, in that order."""
    if isinstance(column, torch.Tensor):
        return column[take]
    return [column[position] for position in take.tolist()]


def _array(column: torch.Tensor | list) -> np.ndarray:
    """A column as a numpy array of its own type (bfloat16, which numpy lacks, as float32)."""
    if isinstance(column, torch.Tensor):
        return (column.float() if column.dtype == torch.bfloat16 else column).numpy()
    return np.array(column)


def _table(columns: dict[str, torch.Tensor | list]) -> dict[str, list]:
    """The columns of a table: an entry of several values (class probabilities) a column each (`probability_0`, ...)."""
    table = {}
    for name, values in columns.items():
        if isinstance(values, torch.Tensor) and values.dim() > 1:
            table.update({f"{name}_{j}": column for j, column in enumerate(values.flatten(1).T.tolist())})
        elif isinstance(values, torch.Tensor):
            table[name] = values.tolist()
        elif values and isinstance(values[0], list):
            table.update({f"{name}_{j}": column for j, column in enumerate(np.array(values).T.tolist())})
        else:
            table[name] = values
    return table

"""8x8 images of handwritten digits: 1,797 of them in data/digits.npz, inside the package (no download).

They are the test set of the UCI Machine Learning Repository's "Optical Recognition of Handwritten Digits"
(E. Alpaydin, C. Kaynak, 1998; CC BY 4.0), the same images scikit-learn ships as `load_digits`: pixel values 0-16.
"""

import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_convert
from torchdata.stateful_dataloader import StatefulDataLoader

from {{cookiecutter.package_name}}.harness.data import (
    ConfigError,
    read_inputs,
    resumable_loader,
    train_val_split,
)


class InMemoryDataset(TensorDataset):
    """A TensorDataset that hands the DataLoader a whole batch in one indexing operation.

    Gap this fills: a DataLoader asks a TensorDataset for one sample at a time and stacks them again
    (default_collate): two small tensor operations per sample, 0.56 ms for a batch of 64 on one core
    of our test machine against 0.11 ms this way, where the example network's training step costs
    1.5 ms. `__getitems__` is the DataLoader's hook for reading a batch at once (StatefulDataLoader
    honours it too); the batches are the same, in the same order.
    """

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices)
        return [tensor[index] for tensor in self.tensors]


class DigitsDataModule(L.LightningDataModule):
    """Splits the digits into train/val/test by `split_seed` and serves them in batches.

    `num_features` and `num_classes` are the data's shape as configs/data/digits.yaml states it for the model
    configs to read; they are checked against the data.

    `split_seed` is separate from the run's `seed` on purpose: a sweep over `seed` then compares
    runs on the same test set. `batch_size` is per process (under DDP each rank gets this many).

    `predict_path`: a file of images to predict the digits of (predict.py), 64 pixel values 0..16 each, as
    data/digits.npz holds them: a `.npz` file with an array x, or a CSV file.

    K-fold: with `num_folds`, the examples outside the test split are cut into that many folds, and fold `fold`
    validates while the others train (harness/folds.py); the test split stays the same.

    Exact resume: the training loader comes from harness/resumable_loader.py, so a run resumed from any
    checkpoint, mid-epoch or not, trains on the same batches as a run never stopped.
    """

    def __init__(
        self,
        num_features: int = 64,
        num_classes: int = 10,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 1234,
        shuffle_seed: int = 0,
        predict_path: str | None = None,
        num_folds: int | None = None,
        fold: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if num_workers == 0:
            # Lightning advises worker processes on any machine with more than 2 cores; for data already in
            # memory they would only add start-up time (benchmarks/README.md), so the advice is noise here.
            warnings.filterwarnings("ignore", message=".*does not have many workers")
        self.splits: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":  # the inputs alone, read once (predict.py reads them before any rank starts)
            if "predict" not in self.splits:
                images = read_inputs(self.hparams.predict_path, self.hparams.num_features)
                self.splits["predict"] = InMemoryDataset(self._model_inputs(images))
            return
        if "train" in self.splits:
            return
        with np.load(Path(__file__).with_name("digits.npz")) as digits:  # arrays only: nothing in it runs
            images, labels = digits["images"], digits["labels"]
        x = self._model_inputs(images)
        y = torch.tensor(labels, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        n_val = int(len(x) * self.hparams.val_fraction)
        n_test = int(len(x) * self.hparams.test_fraction)
        test = order[n_val : n_val + n_test]
        pool = torch.cat([order[:n_val], order[n_val + n_test :]])  # the rest: validation first, as before folds
        train, val = train_val_split(pool, n_val, self.hparams.num_folds, self.hparams.fold)
        parts = {"val": val, "test": test, "train": train}
        self.splits |= {name: InMemoryDataset(x[index], y[index]) for name, index in parts.items()}
        if (x.shape[1], len(y.unique())) != (self.hparams.num_features, self.hparams.num_classes):
            raise ConfigError(
                f"the digits have {x.shape[1]} features and {len(y.unique())} classes, not the data config's "
                f"{self.hparams.num_features} and {self.hparams.num_classes}: drop data.num_features/num_classes."
            )

    @staticmethod
    def _model_inputs(images: np.ndarray) -> torch.Tensor:
        return torch.tensor(images / 16.0, dtype=torch.float32)  # pixel values 0..16 -> 0..1

    def _loader_options(self) -> dict:
        workers = self.hparams.num_workers
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return dict(
            batch_size=self.hparams.batch_size,
            # InMemoryDataset's batches come stacked already; with a dataset of your own that returns
            # single samples, drop this line so that the DataLoader stacks them (default_collate).
            collate_fn=default_convert,
            num_workers=workers,
            pin_memory=on_gpu,  # page-locked memory only helps copies to a GPU
            persistent_workers=workers > 0,  # keep workers between epochs instead of restarting them
        )

    def train_dataloader(self) -> StatefulDataLoader:
        # The order is a function of (shuffle_seed, epoch) alone, whatever the number of ranks.
        options = self._loader_options()
        return resumable_loader(self.splits["train"], self.trainer, seed=self.hparams.shuffle_seed, **options)

    # Evaluation always covers the whole split from its start: plain DataLoaders are enough.
    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], **self._loader_options())

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], **self._loader_options())

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["predict"], **self._loader_options())

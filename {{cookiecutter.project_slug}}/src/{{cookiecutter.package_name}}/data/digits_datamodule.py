"""scikit-learn's 8x8 handwritten digits: 1,797 images that ship with the package (no download)."""

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset


class DigitsDataModule(L.LightningDataModule):
    """Splits the digits into train/val/test by `split_seed` and serves them in batches.

    `split_seed` is separate from the run's `seed` on purpose: a sweep over `seed` then compares
    runs on the same test set. `batch_size` is per process (under DDP each rank gets this many).
    The training order is a function of (`shuffle_seed`, epoch) only, so a resumed run sees the same
    batches as a run that was never stopped.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 1234,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.splits: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        from sklearn.datasets import load_digits  # imported here: only the processes that load data pay for it

        images, labels = load_digits(return_X_y=True)
        x = torch.tensor(images / 16.0, dtype=torch.float32)  # pixel values 0..16 -> 0..1
        y = torch.tensor(labels, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        n_val = int(len(x) * self.hparams.val_fraction)
        n_test = int(len(x) * self.hparams.test_fraction)
        parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
        self.splits = {name: TensorDataset(x[index], y[index]) for name, index in parts.items()}

    def _loader(self, split: str, sampler: DistributedSampler | None = None) -> DataLoader:
        workers = self.hparams.num_workers
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            self.splits[split],
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=on_gpu,  # page-locked memory only helps copies to a GPU
            persistent_workers=workers > 0,  # keep workers between epochs instead of restarting them
        )

    def train_dataloader(self) -> DataLoader:
        # DistributedSampler shuffles by (seed, epoch) for any number of ranks, one included; Lightning
        # calls its set_epoch() every epoch and, since it is already distributed, does not replace it.
        ranks, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        sampler = DistributedSampler(
            self.splits["train"], num_replicas=ranks, rank=rank, shuffle=True, seed=self.hparams.shuffle_seed
        )
        return self._loader("train", sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

"""Text as bytes, for a character-level language model: any text file, or Python's own sources (no download)."""

import sysconfig
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, default_convert
from torchdata.stateful_dataloader import StatefulDataLoader

from {{cookiecutter.package_name}}.harness.data import (
    ConfigError,
    read_lines,
    resumable_loader,
)


def stdlib_corpus(max_bytes: int) -> bytes:
    """The standard library's top-level .py files, in name order, up to `max_bytes`: text that every Python
    installation has. The same Python version gives the same corpus."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    text = bytearray()
    for file in sorted(folder.glob("*.py")):
        text += file.read_bytes()
        if len(text) >= max_bytes:
            break
    return bytes(text[:max_bytes])


class Windows(Dataset):
    """Sample i: `block_size + 1` bytes from position i * block_size (input = all but the last byte, target =
    all but the first). Non-overlapping, so an epoch reads the text once. Reads a batch in one indexing."""

    def __init__(self, tokens: torch.Tensor, block_size: int) -> None:
        self.tokens, self.block_size = tokens, block_size
        self.offsets = torch.arange(block_size + 1)

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        windows = self.tokens[torch.as_tensor(indices)[:, None] * self.block_size + self.offsets]
        return windows[:, :-1], windows[:, 1:]


class TextDataModule(L.LightningDataModule):
    """Bytes of a text, split into train/val/test by position (the text's end is val, then test).

    Tokens are bytes (`vocab_size` 256): any file encodes without a vocabulary to build or save, and a
    checkpoint decodes on its own. `block_size` is the model's context length (the model config reads it).
    `predict_path`: a text file whose every line predict.py continues.
    """

    def __init__(
        self,
        path: str | None = None,
        block_size: int = 64,
        vocab_size: int = 256,
        batch_size: int = 32,
        num_workers: int = 0,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        corpus_mb: float = 2.0,
        shuffle_seed: int = 0,
        predict_path: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if vocab_size != 256:
            raise ConfigError(f"data.vocab_size={vocab_size}, but the tokens are bytes: remove the override.")
        self.splits: dict[str, Windows] = {}
        self.prompts: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":  # the lines alone, read once (predict.py reads them before any rank starts)
            self.prompts = self.prompts or read_lines(self.hparams.predict_path)
            return
        if self.splits:
            return
        path = self.hparams.path
        text = Path(path).read_bytes() if path else stdlib_corpus(int(self.hparams.corpus_mb * 2**20))
        tokens = torch.frombuffer(bytearray(text), dtype=torch.uint8).long()
        n_val, n_test = (int(len(tokens) * f) for f in (self.hparams.val_fraction, self.hparams.test_fraction))
        n_train = len(tokens) - n_val - n_test
        parts = {"train": tokens[:n_train], "val": tokens[n_train : n_train + n_val], "test": tokens[n_train + n_val :]}
        self.splits = {name: Windows(part, self.hparams.block_size) for name, part in parts.items()}
        if min(len(split) for split in self.splits.values()) == 0:
            raise ConfigError(f"{path or 'the corpus'} is too short for data.block_size={self.hparams.block_size}.")

    def _options(self) -> dict:
        workers = self.hparams.num_workers
        return dict(
            batch_size=self.hparams.batch_size,
            collate_fn=default_convert,  # Windows hands over whole batches
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> StatefulDataLoader:
        options = self._options()
        return resumable_loader(self.splits["train"], self.trainer, seed=self.hparams.shuffle_seed, **options)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], **self._options())

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], **self._options())

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.prompts, batch_size=self.hparams.batch_size)  # batches of lines, as lists of str


# Bytes in, bytes out: what the model reads and writes (generate.py, the samples logged at validation).
def encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def decode(tokens: list[int]) -> str:
    return bytes(tokens).decode("utf-8", errors="replace")

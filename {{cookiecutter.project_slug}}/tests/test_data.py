"""The DataModule serves exactly the samples its sampler picks, in that order (README, "Resume": the order of
a training epoch depends only on the seed and the epoch, and an exact resume relies on it)."""

import torch

from {{cookiecutter.package_name}}.data.digits_datamodule import DigitsDataModule


def test_batches_hold_the_sampled_samples_in_order() -> None:
    datamodule = DigitsDataModule(batch_size=64)
    datamodule.setup()
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(3)  # as Lightning does each epoch
    indices = list(loader.sampler)
    batches = list(loader)
    # full batches, then the rest (1,259 training samples: 19 x 64 + 43)
    assert [len(x) for x, _ in batches] == [64] * 19 + [43]
    x, y = (torch.cat(parts) for parts in zip(*batches, strict=True))
    # batched reads (InMemoryDataset) give what reading one sample at a time and stacking would give
    train = datamodule.splits["train"]
    assert torch.equal(x, train.tensors[0][indices]) and torch.equal(y, train.tensors[1][indices])

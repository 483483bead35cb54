"""The DataModule serves exactly the samples its sampler picks, in that order (README, "Resume": the order of
a training epoch depends only on the seed and the epoch, and an exact resume relies on it), and cuts its
training examples into folds (README, "Repeats and folds")."""

import re

import pytest
import torch

from {{cookiecutter.package_name}}.data.digits_datamodule import DigitsDataModule
from {{cookiecutter.package_name}}.harness.data import ConfigError


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


def examples(datamodule: DigitsDataModule, split: str) -> set[bytes]:
    """The examples of a split, each as its pixels' bytes (the digits hold no two identical images in a split)."""
    return {row.numpy().tobytes() for row in datamodule.splits[split].tensors[0]}


def test_folds_are_disjoint_cover_the_training_pool_and_leave_the_test_split_alone() -> None:
    usual = DigitsDataModule()
    usual.setup()
    pool = examples(usual, "train") | examples(usual, "val")
    folds = []
    for fold in range(5):
        datamodule = DigitsDataModule(num_folds=5, fold=fold)
        datamodule.setup()
        validation, training = examples(datamodule, "val"), examples(datamodule, "train")
        assert examples(datamodule, "test") == examples(usual, "test")  # 269 examples, the same for every fold
        assert validation.isdisjoint(training) and validation | training == pool
        folds.append(validation)
    assert [len(fold) for fold in folds] == [306, 306, 306, 305, 305]  # 1,528 = 269 + 1,259, cut in 5
    assert len(set().union(*folds)) == sum(map(len, folds)) == len(pool) == 1528  # disjoint, together the pool


@pytest.mark.parametrize(
    ("folds", "sentence"),
    [
        ({"num_folds": 5, "fold": 5}, "data.fold=5 is not one of the 5 folds: give 0 to 4."),
        ({"num_folds": 1, "fold": 0}, "data.num_folds=1 leaves no fold to train on: give 2 or more"),
        ({"num_folds": 5}, "data.num_folds=5 needs data.fold, the fold that validates: 0 to 4"),
        ({"fold": 3}, "data.fold=3 needs data.num_folds, e.g. data.num_folds=5 data.fold=3."),
        # more folds than examples: some would validate on nothing (and report accuracy 0)
        ({"num_folds": 2000, "fold": 0}, "data.num_folds=2000 is more folds than the 1528 examples to cut into them"),
    ],
)
def test_a_fold_that_does_not_exist_is_refused_in_one_sentence(folds: dict, sentence: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(sentence)):
        DigitsDataModule(**folds).setup()

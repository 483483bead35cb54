"""Training and validation examples of a run, from a held-out split or from one fold of k (`data.num_folds=5
data.fold=0,1,2,3,4`).

Gap this fills: Lightning has no cross-validation (Lightning issue #839), and lightning-hydra-template users ask
for it again and again (its issues #72, #196). A DataModule cuts its test split off first, then hands the rest, the
pool, shuffled once by a fixed seed, to `train_val_split`: the folds are disjoint, together they are the pool, and
the test split is the same for every fold. Without `num_folds`, the split is the DataModule's usual one.
"""

import torch

from {{cookiecutter.package_name}}.harness.checks import ConfigError


def train_val_split(
    pool: torch.Tensor, num_val: int, num_folds: int | None = None, fold: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) indices out of `pool`, shuffled already. Without folds: the first `num_val` validate.
    With `num_folds`: the pool cut into that many parts of nearly equal size, in its order; part `fold` validates
    and the others train."""
    check_folds(num_folds, fold)
    if num_folds is None:
        return pool[num_val:], pool[:num_val]
    if num_folds > len(pool):  # a fold without examples would validate on nothing
        raise ConfigError(
            f"data.num_folds={num_folds} is more folds than the {len(pool)} examples to cut into them: give at most "
            f"{len(pool)}."
        )
    parts = torch.tensor_split(pool, num_folds)
    return torch.cat(parts[:fold] + parts[fold + 1 :]), parts[fold]


def check_folds(num_folds: int | None, fold: int | None) -> None:
    """A fold of folds that exist, or one sentence saying what to type."""
    if num_folds is None:
        if fold not in (None, 0):
            raise ConfigError(f"data.fold={fold} needs data.num_folds, e.g. data.num_folds=5 data.fold={fold}.")
        return
    if num_folds < 2:
        raise ConfigError(
            f"data.num_folds={num_folds} leaves no fold to train on: give 2 or more, or data.num_folds=null for the "
            "usual training and validation split."
        )
    if fold is None:
        raise ConfigError(
            f"data.num_folds={num_folds} needs data.fold, the fold that validates: 0 to {num_folds - 1} (with -m, "
            f"data.fold={','.join(map(str, range(num_folds)))} runs them all)."
        )
    if not 0 <= fold < num_folds:
        raise ConfigError(f"data.fold={fold} is not one of the {num_folds} folds: give 0 to {num_folds - 1}.")

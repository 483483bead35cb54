"""A training DataLoader that resumes exactly from any checkpoint, one taken mid-epoch too.

Gap this fills: Lightning saves and restores the state of a train loader that has `state_dict` and
`load_state_dict`, and torchdata's StatefulDataLoader is one; yet `StatefulDataLoader(shuffle=True)` alone
does not resume exactly (tests/harness/test_resume.py, Lightning 2.6, torchdata 0.11):
- its order hangs on a generator that Lightning restores only from a mid-epoch checkpoint: after an
  epoch-end resume the next epoch repeats epoch 0's order, and under DDP (where Lightning wraps the
  sampler) the generator is never saved;
- a resumed run's first iterator is built before Lightning sets the sampler's epoch, so with worker
  processes the rest of that epoch comes in epoch 0's order (Lightning issue 21938).
Here the order is a function of (seed, epoch) alone, torchdata's StatefulDistributedSampler counts what the
epoch served, and the epoch is set before the first iterator exists. And the epoch is padded to whole optimizer
steps (the first samples of its order repeated, as DistributedSampler pads to whole ranks): its last step takes
the same samples on any number of ranks, where per-rank padding would give it others.

On another number of ranks, harness/callbacks/data_position.py moves each rank to the same place in the order.
Limits: a mid-epoch checkpoint resumes with the same `num_workers` only, and random transforms inside a Dataset
are not replayed (harness/callbacks/step_seeding.py says why).
"""

import os
from typing import Any

import lightning as L
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler


def resumable_loader(
    dataset: Dataset, trainer: L.Trainer | None, *, seed: int | None = None, shuffle: bool = True, **options: Any
) -> StatefulDataLoader:
    """A StatefulDataLoader over this rank's share of `dataset`; `options` are the DataLoader's (batch_size,
    num_workers, ...). The order: a permutation of the whole dataset by (`seed`, epoch), of which rank r of R
    takes every R-th sample. `seed` defaults to the run's, as for Lightning's own DistributedSampler."""
    if seed is None:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # set by seed_everything, in every rank
    # The strategy's share: every rank under DDP; under model_parallel, each data-parallel group (the ranks of
    # one tensor-parallel group see the same batches).
    share = getattr(trainer.strategy, "distributed_sampler_kwargs", None) if trainer is not None else None
    ranks, rank = (share["num_replicas"], share["rank"]) if share else (1, 0)
    sampler = StatefulDistributedSampler(dataset, num_replicas=ranks, rank=rank, shuffle=shuffle, seed=seed)
    if trainer is not None:  # the epoch to train next, as Lightning counts it (a resumed run's too)
        sampler.set_epoch(trainer.fit_loop.epoch_progress.current.processed)
        # Whole steps: the samples per optimizer step are kept on other ranks (callbacks/data_position.py), and
        # DistributedSampler pads its order up to total_size, of which each rank takes num_samples.
        step = (options.get("batch_size") or 1) * ranks * trainer.accumulate_grad_batches
        sampler.total_size = -(-len(dataset) // step) * step
        sampler.num_samples = sampler.total_size // ranks
    # Lightning keeps a sampler that is already distributed and calls its set_epoch() every epoch.
    return StatefulDataLoader(dataset, sampler=sampler, **options)

"""Where a continued run picks up in the data: the same samples in every optimizer step as if it had never stopped,
on any number of ranks.

Gap this fills: continuing with `ckpt_path` on another number of data-parallel ranks (a job requeued onto fewer
nodes, a run moved from a workstation to a cluster) would restore each rank's place in the data into a sampler of
another size, and step the optimizer on another number of samples; neither Lightning nor torchdata reshards a
loader's state. Yet the data order is a permutation of the dataset by (seed, epoch), of which rank r of R takes
every R-th sample (harness/resumable_loader.py): optimizer step k takes samples [k*G, (k+1)*G) of it, G being
the global batch (batch per rank x ranks x accumulated batches), whatever R is. So keeping G, and moving each
rank to the same place in the permutation, continues with the same samples in every step:
- every checkpoint records the ranks, the batch per rank and the accumulation it was trained with;
- `plan`, before any work, keeps G on this command's ranks and batch by changing the accumulation, and the
  settings Lightning counts in batches per rank (`trainer.limit_train_batches=10`, an int `val_check_interval`,
  `limit_val_batches`, `limit_test_batches`) so that they count what they counted, or refuses in one sentence
  where that cannot be done;
- `on_load_checkpoint` moves the loader's saved place and the epoch's batch counters to the new ranks.
And on any number, where `trainer.max_steps` is set (Lightning 2.6): a run it stopped in the middle of an epoch
saved that epoch as done, so Lightning went on in that epoch but gave the sampler the next epoch's order; and a run
continued from an epoch's end with it trained no batch of the next epoch. Both are set right in what is loaded.
What still differs is said in the README ("Continuing on other hardware"): the order of floating-point sums and
the random draws tied to a rank's position (each epoch is padded to whole steps by the loader, so its last step
takes the same samples too).
Added to every training run by harness/resume.py rather than by a config: without it this would be silent again.
"""

from fractions import Fraction
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from {{cookiecutter.package_name}}.harness.callbacks.step_seeding import data_parallel_size
from {{cookiecutter.package_name}}.harness.checks import ConfigError

COUNTERS = ("ready", "started", "processed", "completed")


class DataPosition(Callback):
    def __init__(self, batch_size: int | None) -> None:
        self.batch_size = batch_size  # per rank, as the DataModule says it (None where it does not)
        self.ranks, self.accumulation = 1, 1
        self.move: tuple[int, int] | None = None  # (samples, batches) per rank where the continued run stopped

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.ranks, self.accumulation = data_parallel_size(trainer), trainer.accumulate_grad_batches

    def state_dict(self) -> dict[str, Any]:
        return {"data_parallel_size": self.ranks, "batch_size": self.batch_size, "accumulate": self.accumulation}

    def plan(self, saved: dict, trainer: L.Trainer, ckpt_path: str) -> None:
        """Before fit: keep the global batch of the checkpoint's run (`saved`: its entries besides the weights) on
        `trainer`'s ranks, or refuse in one sentence."""
        was = saved.get("callbacks", {}).get(type(self).__name__)
        if was is None:  # written by a run without this callback: nothing to compare with
            return
        ranks, batch, accumulate = was["data_parallel_size"], was["batch_size"], was["accumulate"]
        now_ranks, now_batch = data_parallel_size(trainer), self.batch_size
        if (ranks, batch) == (now_ranks, now_batch):
            if trainer.accumulate_grad_batches != accumulate:
                rank_zero_info(f"Accumulating {accumulate} batches as the run did: the samples per step stay its own.")
            trainer.accumulate_grad_batches = accumulate
            return
        if batch is None or now_batch is None:
            raise ConfigError(
                f"{ckpt_path} was saved on {ranks} data-parallel ranks and this command runs {now_ranks} with a "
                "DataModule that does not say its batch per rank (data.batch_size), so the samples per optimizer "
                f"step cannot be kept: run it on {ranks} as before, or leave out ckpt_path to start a new run."
            )
        total = ranks * batch * accumulate
        where = f"{ckpt_path} was trained with {total} samples per optimizer step "
        where += f"({batch} per rank x {_ranks(ranks)} x {accumulate} accumulated)"
        if total % now_ranks:
            raise ConfigError(
                f"{where}, which {now_ranks} ranks cannot share evenly: continue on a number of ranks that divides "
                f"{total} (as before: {ranks}), or leave out ckpt_path to start a new run."
            )
        share = total // now_ranks
        if share % now_batch:
            fits = max(d for d in range(1, now_batch + 1) if share % d == 0)
            raise ConfigError(
                f"{where}: on {now_ranks} ranks that is {share} per rank, which a batch of {now_batch} does not "
                f"divide: add data.batch_size={fits} (accumulating {share // fits}), or leave out ckpt_path to start "
                "a new run."
            )
        trainer.accumulate_grad_batches = share // now_batch
        rank_zero_info(
            f"Continuing on {_ranks(now_ranks, 'data-parallel ')}: batch {now_batch} per rank x "
            f"{trainer.accumulate_grad_batches} accumulated = the {total} samples per optimizer step of the run "
            f"({batch} per rank x {_ranks(ranks)} x {accumulate})."
        )
        # Lightning counts these in batches per rank: kept as counts, an epoch of the run's 10 steps became 5.
        per_step = Fraction(trainer.accumulate_grad_batches, accumulate)  # training batches per optimizer step
        per_rank = Fraction(ranks * batch, now_ranks * now_batch)  # evaluation batches for the same samples
        scale = {"limit_train_batches": per_step, "val_check_interval": per_step}
        scale |= {"limit_val_batches": per_rank, "limit_test_batches": per_rank}
        changed = []
        for name, factor in scale.items():
            value = getattr(trainer, name)
            if isinstance(value, int) and factor != 1:
                if (value * factor).denominator != 1:
                    raise ConfigError(
                        f"{where}, and trainer.{name}={value} counts batches per rank, which would be "
                        f"{float(value * factor):g} on {_ranks(now_ranks)} with a batch of {now_batch}: give it as a "
                        f"fraction of an epoch (e.g. trainer.{name}=0.5), or continue on {ranks} ranks as before."
                    )
                setattr(trainer, name, int(value * factor))
                changed.append(f"trainer.{name} {value} -> {getattr(trainer, name)}")
        if changed:
            rank_zero_info(f"Counting the run's batches per rank on these ranks: {', '.join(changed)}.")
        fit = saved.get("loops", {}).get("fit_loop", {})
        at_epoch_end = fit.get("epoch_loop.batch_progress", {}).get("is_last_batch", False)
        loaders = [] if at_epoch_end else fit.get("state_dict", {}).get("combined_loader") or []
        done = [_samples_yielded(state) for state in loaders if not state.get("_iterator_finished")]
        if any(samples is None for samples in done):
            raise ConfigError(
                f"{ckpt_path} was saved in the middle of an epoch by a train loader that is not "
                "harness/resumable_loader.py's, whose place in the data cannot be moved to other ranks: continue on "
                f"{ranks} ranks as before, or leave out ckpt_path to start a new run."
            )
        samples = done[0] if done else 0
        if samples % (batch * accumulate):
            raise ConfigError(
                f"{ckpt_path} was saved between the accumulated batches of one optimizer step: continue on {ranks} "
                "ranks as before, or from an earlier checkpoint."
            )
        moved = samples * ranks // now_ranks  # the same place in the epoch's permutation
        self.move = (moved, moved // now_batch) if done else None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """Lightning restores the loops from this dictionary after this hook: move the place found by `plan`."""
        loop = checkpoint["loops"]["fit_loop"]
        epoch, progress = loop["epoch_progress"], loop["epoch_loop.batch_progress"]
        if epoch["current"]["processed"] > epoch["current"]["completed"]:
            if progress["is_last_batch"]:
                # Saved at an epoch's end. Lightning counts that epoch done when it resumes, except under
                # trainer.max_steps, where it resumed into the ended epoch and trained none of the next (2.6): done.
                for counts in (epoch["current"], epoch["total"]):
                    counts["completed"] = counts["processed"]
                progress["current"] = dict.fromkeys(COUNTERS, 0)
                progress["is_last_batch"] = False
                loop["state_dict"]["combined_loader"] = []  # the next epoch starts from its first batch
                return
            for counts in (epoch["current"], epoch["total"]):  # stopped within the epoch (max_steps): not done
                counts["processed"] -= 1
        if self.move is None:
            return
        samples, batches = self.move
        for state in loop["state_dict"].get("combined_loader") or []:
            if not state.get("_iterator_finished"):
                _move_loader(state, samples, batches)
        shift = batches - progress["current"]["ready"]
        for counter in COUNTERS:
            progress["current"][counter] += shift
            progress["total"][counter] += shift


def _samples_yielded(state: Any) -> int | None:
    """The samples a StatefulDataLoader's state says this rank has taken in the epoch (its sampler's count)."""
    if isinstance(state, dict):
        if "samples_yielded" in state:
            return state["samples_yielded"]
        return next((found for value in state.values() if (found := _samples_yielded(value)) is not None), None)
    return None


def _move_loader(state: dict, samples: int, batches: int, workers: int | None = None) -> None:
    """Set a StatefulDataLoader's state (torchdata 0.11: with workers, its snapshots) to `samples` and `batches`."""
    if workers is None:
        workers = state.get("_snapshot", {}).get("_main_snapshot", {}).get("_num_workers", 0)
    for key, value in state.items():
        if key in ("samples_yielded", "yielded"):
            state[key] = samples
        elif key in ("_num_yielded", "_sampler_iter_yielded", "_snapshot_step"):
            state[key] = batches
        elif key == "_last_yielded_worker_id" and workers:
            state[key] = (batches - 1) % workers  # the next batch comes from the next worker, as in the run
        elif isinstance(value, dict):
            _move_loader(value, samples, batches, workers)


def _ranks(count: int, kind: str = "") -> str:
    return f"{count} {kind}rank" + ("" if count == 1 else "s")

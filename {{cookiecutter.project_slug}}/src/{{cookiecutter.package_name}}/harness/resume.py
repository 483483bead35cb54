"""One resume path for every way a run can stop: preemption, time limit, crash, Ctrl-C.

`ckpt_path=last` means "the newest state saved in this run folder", whatever wrote it:
`checkpoints/*.ckpt` (last.ckpt, the newest; epoch_<n>.ckpt, the best) or `hpc_ckpt_<n>.ckpt`
(harness/callbacks/slurm_requeue.py, before preemption or the time limit). The newest is the one with the most
training steps, read from the checkpoint itself: file times can lie (clocks differ between the nodes
that successive requeues run on, and some cluster file systems set them from the client). Picking it
ourselves and passing it to `trainer.fit` explicitly makes a requeued job and a restarted crash resume
the same way (Lightning's own `ckpt_path="last"` ignores the hpc checkpoints).
"""

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from {{cookiecutter.package_name}}.harness.checks import ConfigError

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


def checkpoints_of(run_dir: Path) -> list[Path]:
    """Files, and the folders of sharded runs (trainer=model_parallel), the newest of these included if its save
    was killed between moving the previous one aside and the new one in (harness/strategies/model_parallel.py)."""
    patterns = ("hpc_ckpt_*.ckpt", "checkpoints/*.ckpt", "checkpoints/.*.ckpt.old", ".hpc_ckpt_*.ckpt.old")
    return [path for pattern in patterns for path in run_dir.glob(pattern)]


def saved_state(path: Path) -> dict:
    """A checkpoint's entries besides the weights (global_step, callbacks' states), read without its tensors;
    UnreadableCheckpoint (harness/checkpoint_reading.py) for one that cannot be read safely."""
    # here: it imports torch, which `--help` need not
    from {{cookiecutter.package_name}}.harness import checkpoint_reading

    return checkpoint_reading.check(Path(path))


def saved_step(path: Path) -> int:
    """The training step a checkpoint was saved at."""
    return int(saved_state(path).get("global_step", -1))


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of `run_dir` with the most training steps (on a tie, the one written last).

    One that exists but cannot be read stops the run in one sentence: continuing from an older one, or starting
    over in this folder (overwriting last.ckpt), would lose work without a word.
    """
    from {{cookiecutter.package_name}}.harness.checkpoint_reading import UnreadableCheckpoint

    found = []
    for path in checkpoints_of(run_dir):
        try:
            found.append((saved_step(path), path.stat().st_mtime, path))
        except UnreadableCheckpoint as why:
            raise ConfigError(
                f"ckpt_path=last found {path}, which cannot be read safely: {why}; move it out of {run_dir} to "
                "continue from the checkpoint before it, or leave out ckpt_path to start a new run."
            ) from None
    return max(found, key=lambda entry: entry[:2])[2] if found else None


def latest_run(runs_dir: Path, among: list[Path] | None = None) -> Path | None:
    """The run folder in `runs_dir` (or `among`) written last: its checkpoints or, for a run that did not finish, its
    summary.json (written before training starts). So a run stopped before its first checkpoint is continued (from
    the start, in its folder) rather than an older run that has checkpoints; a finished run with none (such as
    `debug=fast_dev_run`) has nothing to continue.

    Different runs' step counts cannot be compared, so between runs the file time decides.
    """
    runs = among if among is not None else [p for p in runs_dir.glob("*") if p.is_dir()]
    written = []
    for run in runs:
        files = checkpoints_of(run) or [summary for summary in run.glob("summary.json") if _unfinished(summary)]
        if files:
            written.append((max(file.stat().st_mtime for file in files), run))
    return max(written, key=lambda entry: entry[0])[1] if written else None


def _unfinished(summary: Path) -> bool:
    try:
        return json.loads(summary.read_text()).get("status") != "finished"
    except (OSError, ValueError, AttributeError):  # unreadable: not a run to continue
        return False


def _summary(run_dir: Path) -> dict:
    """The run's summary.json (harness/callbacks/run_summary.py); empty for a run that has none yet."""
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def resolve(
    ckpt_path: str | None, run_dir: Path, trainer: "L.Trainer", datamodule: "L.LightningDataModule"
) -> str | None:
    """What to pass to `trainer.fit(ckpt_path=...)`: `last` found. Adds to `trainer` the callbacks that keep the
    samples per optimizer step of the run it continues, on any number of ranks, and that give it this command's
    optimizer and schedule settings, or refuse in one sentence."""
    from lightning.pytorch.utilities import rank_zero_info, rank_zero_only  # here: Hydra's resolvers import this

    from {{cookiecutter.package_name}}.harness import step_overhead
    from {{cookiecutter.package_name}}.harness.callbacks.data_position import DataPosition
    from {{cookiecutter.package_name}}.harness.callbacks.optimizer_settings import (
        OptimizerSettings,
    )

    data_position = DataPosition(getattr(datamodule, "hparams", {}).get("batch_size"))
    trainer.callbacks.append(data_position)  # in every run: its checkpoints say what a continuation must keep
    step_overhead.skip_empty_hooks([data_position])  # as build() does the others': it has no per-step hook
    newest = None
    if ckpt_path == "last":
        newest = newest_checkpoint(run_dir)
        if newest is None:
            rank_zero_info(f"ckpt_path=last: no checkpoint in {run_dir} yet, starting fresh.")
            started = _summary(run_dir).get("samples_per_step")  # a run stopped before its first checkpoint's
            if started:
                data_position.plan({"callbacks": {"DataPosition": started}}, trainer, f"{run_dir} (no checkpoint yet)")
            return None
        ckpt_path = str(newest)
    if ckpt_path is None:
        return None
    from lightning.pytorch.strategies import ModelParallelStrategy

    if isinstance(trainer.strategy, ModelParallelStrategy) and Path(ckpt_path).is_file():
        raise ConfigError(
            f"{ckpt_path} is one file, written by a run without sharding, and continuing such a run under "
            "trainer=model_parallel is not supported yet (Lightning's loading of a whole checkpoint into sharded "
            "parameters fails on the optimizer's state): continue it with the trainer it was trained with, or leave "
            "out ckpt_path to start a new run."
        )
    state = saved_state(Path(ckpt_path))  # read once: its step and how it was trained
    data_position.plan(state, trainer, ckpt_path)
    # first: a refusal comes before summary.json is updated
    trainer.callbacks.insert(0, OptimizerSettings(ckpt_path, state.get("lr_schedulers", [])))
    step_overhead.skip_empty_hooks(trainer.callbacks[:1])
    if newest is not None:
        step = state.get("global_step", -1)
        rank_zero_info(f"ckpt_path=last: resuming from {newest} (step {step})")
        if _summary(run_dir).get("status") in ("testing", "finished"):
            rank_zero_only(log.warning)(  # a log line, as the console's others: not a Python warning's file:line
                f"ckpt_path=last continues {run_dir}, whose training had finished (step {step}): it trains on only "
                "if this command asks for more (trainer.max_epochs), else it tests again; for a new run leave out "
                "ckpt_path, to continue another: hydra.run.dir=<its folder> ckpt_path=last."
            )
    return ckpt_path

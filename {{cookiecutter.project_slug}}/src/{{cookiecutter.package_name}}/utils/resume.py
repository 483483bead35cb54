"""One resume path for every way a run can stop: preemption, time limit, crash, Ctrl-C.

`ckpt_path=last` means "the newest checkpoint of this run folder": `checkpoints/last.ckpt`
(written by ModelCheckpoint) or `hpc_ckpt_<n>.ckpt` (written by Lightning when SLURM sends
SIGUSR1 before preemption or the time limit). Picking the newest ourselves, and passing it to
`trainer.fit` explicitly, makes a requeued job and a restarted crash resume the same way
(Lightning's own `ckpt_path="last"` would ignore the hpc checkpoints).
"""

from pathlib import Path


def checkpoints_of(run_dir: Path) -> list[Path]:
    return [*run_dir.glob("hpc_ckpt_*.ckpt"), *run_dir.glob("checkpoints/last*.ckpt")]


def _newest(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: p.stat().st_mtime, default=None)


def latest_run(runs_dir: Path) -> Path | None:
    """The run folder in `runs_dir` that holds the newest checkpoint, if any."""
    newest = _newest([p for run in runs_dir.glob("*") for p in checkpoints_of(run)])
    return None if newest is None else runs_dir / newest.relative_to(runs_dir).parts[0]


def resolve(ckpt_path: str | None, run_dir: Path) -> str | None:
    """What to pass to `trainer.fit(ckpt_path=...)`."""
    if ckpt_path != "last":
        return ckpt_path
    from lightning.pytorch.utilities import rank_zero_info  # here: Hydra's resolvers import this module

    newest = _newest(checkpoints_of(run_dir))
    if newest is None:
        rank_zero_info(f"ckpt_path=last: no checkpoint in {run_dir} yet, starting fresh.")
        return None
    rank_zero_info(f"ckpt_path=last: resuming from {newest}")
    return str(newest)

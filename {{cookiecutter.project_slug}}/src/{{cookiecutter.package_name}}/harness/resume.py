"""One resume path for every way a run can stop: preemption, time limit, crash, Ctrl-C.

`ckpt_path=last` means "the newest state saved in this run folder", whatever wrote it:
`checkpoints/*.ckpt` (last.ckpt, the newest; epoch_<n>.ckpt, the best) or `hpc_ckpt_<n>.ckpt`
(harness/callbacks/slurm_requeue.py, before preemption or the time limit). The newest is the one with the most
training steps, read from the checkpoint itself: file times can lie (clocks differ between the nodes
that successive requeues run on, and some cluster file systems set them from the client). Picking it
ourselves and passing it to `trainer.fit` explicitly makes a requeued job and a restarted crash resume
the same way (Lightning's own `ckpt_path="last"` ignores the hpc checkpoints).
"""

from pathlib import Path


def checkpoints_of(run_dir: Path) -> list[Path]:
    """Files, and the folders of sharded runs (trainer=model_parallel), the newest of these included if its save
    was killed between moving the previous one aside and the new one in (harness/strategies/model_parallel.py)."""
    patterns = ("hpc_ckpt_*.ckpt", "checkpoints/*.ckpt", "checkpoints/.*.ckpt.old", ".hpc_ckpt_*.ckpt.old")
    return [path for pattern in patterns for path in run_dir.glob(pattern)]


def saved_step(path: Path) -> int:
    """The training step a checkpoint was saved at; -1 for a file that cannot be read."""
    import torch  # here: Hydra's resolvers import this module, and `--help` need not import torch

    if path.is_dir():  # a sharded checkpoint: its progress is in meta.pt
        path = path / "meta.pt"
    try:  # memory-mapped: reads the pickle's small index, not the tensors
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", -1))
    except Exception:
        return -1


def newest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of `run_dir` with the most training steps (on a tie, the one written last)."""
    readable = [(saved_step(p), p.stat().st_mtime, p) for p in checkpoints_of(run_dir)]
    readable = [entry for entry in readable if entry[0] >= 0]
    return max(readable, key=lambda entry: entry[:2])[2] if readable else None


def latest_run(runs_dir: Path, among: list[Path] | None = None) -> Path | None:
    """The run folder in `runs_dir` (or `among`) whose checkpoints were written last.

    Different runs' step counts cannot be compared, so between runs the file time decides.
    """
    runs = among if among is not None else [p for p in runs_dir.glob("*") if p.is_dir()]
    written = [(max(p.stat().st_mtime for p in saved), run) for run in runs if (saved := checkpoints_of(run))]
    return max(written, key=lambda entry: entry[0])[1] if written else None


def resolve(ckpt_path: str | None, run_dir: Path) -> str | None:
    """What to pass to `trainer.fit(ckpt_path=...)`."""
    if ckpt_path != "last":
        return ckpt_path
    from lightning.pytorch.utilities import rank_zero_info  # here: Hydra's resolvers import this module

    newest = newest_checkpoint(run_dir)
    if newest is None:
        rank_zero_info(f"ckpt_path=last: no checkpoint in {run_dir} yet, starting fresh.")
        return None
    rank_zero_info(f"ckpt_path=last: resuming from {newest}")
    return str(newest)

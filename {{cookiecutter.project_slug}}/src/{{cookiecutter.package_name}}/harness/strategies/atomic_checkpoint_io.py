"""Checkpoint files that are either the old one or the new one, never half of one.

Gap this fills: Lightning writes checkpoints through fsspec, which stages the file in the system temp
folder (/tmp) and then moves it into place. Where logs/ is on another file system than /tmp (NFS,
Lustre, GPFS: most clusters) that move is a copy, and a job killed during it leaves a truncated
last.ckpt that cannot be resumed from. Here the file is written next to its destination as
`.<name>.partial`, flushed to disk, and renamed over it (a rename within one folder is atomic); the
folder is then flushed too, so the rename itself survives a crash of the node. Partial files that a
killed write left behind (each as large as a checkpoint) are removed at the next save. Folders (sharded
checkpoints) are removed by `remove`: renamed out of what harness/resume.py reads first, so that a kill during
the removal leaves no half-deleted checkpoint for `ckpt_path=last` to find.
"""

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # A sharded run's folder (trainer=model_parallel), continued without sharding (trainer=cpu, trainer=ddp):
        # gathered whole, the optimizer's state too. Checked like every checkpoint before torch reads it.
        if Path(path).is_dir():
            from {{cookiecutter.package_name}}.harness.consolidate import full_checkpoint

            return full_checkpoint(Path(path), optimizer=True)
        return super().load_checkpoint(path, *args, **kwargs)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if "://" in str(path):  # remote storage (s3://, gs://): its own semantics, Lightning's code path
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(
                f"AtomicCheckpointIO.save_checkpoint got storage_options={storage_options!r}, which it does not use: "
                "remove them, or use a CheckpointIO plugin that supports them."
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        for stale in path.parent.glob(".*.partial"):  # left by a write that was killed (a folder: by a sharded run's)
            remove(stale)
        with open(partial, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        aside = path.with_name(f".{path.name}.old")
        if path.is_dir():  # a sharded run's folder, continued without sharding: kept aside until the file is in
            remove(aside)
            os.replace(path, aside)
        os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        remove(aside)


def remove(path: Path) -> None:
    """Remove a checkpoint file, or a sharded checkpoint's folder at once for harness/resume.py: renamed to
    `<name>.removing` (which it never reads) before its files go, and what a killed removal left goes first."""
    trash = path.with_name(f"{path.name}.removing")
    shutil.rmtree(trash, ignore_errors=True)
    if path.is_dir():
        os.replace(path, trash)
        shutil.rmtree(trash)
    elif path.exists():
        path.unlink()

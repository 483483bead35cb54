"""Lightning's ModelParallelStrategy (FSDP2 + tensor parallel) with checkpoint folders that are either the old
one or the new one, never a mix, and `data_parallel_size: auto` meaning "the rest of the ranks".

Gaps this fills:
- Lightning's `data_parallel_size="auto"` is the number of nodes, whatever the tensor-parallel size: on one
  node, sharding over its devices (tensor_parallel_size=1) must be spelled out as data_parallel_size=N.
  Here auto is the number of ranks divided by tensor_parallel_size.
- Lightning writes a sharded checkpoint (a folder: one shard file per rank plus meta.pt) into its
final place, over the previous one's files, so a job killed while saving (a preemption, a time limit) leaves
last.ckpt half old, half new. Here every rank writes into `.<name>.partial/`; once all have finished, rank zero
moves the previous checkpoint aside to `.<name>.old`, the new one into place, and removes the old one. A kill
between those two renames leaves `.<name>.old`, which harness/resume.py still finds.
"""

import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.strategies import ModelParallelStrategy


class ModelParallel(ModelParallelStrategy):
    strategy_name = "model_parallel"  # as summary.json names it: the trainer config's name

    def set_world_ranks(self) -> None:
        super().set_world_ranks()  # called before Lightning resolves "auto" sizes
        if self._data_parallel_size == "auto" and self._tensor_parallel_size != "auto":
            self._data_parallel_size = max(self.world_size // int(self._tensor_parallel_size), 1)

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any = None) -> None:
        if not self._save_distributed_checkpoint or "://" in str(filepath):
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        path = Path(self.broadcast(str(filepath)))
        partial, old = path.with_name(f".{path.name}.partial"), path.with_name(f".{path.name}.old")
        if self.global_rank == 0:
            _remove(partial)  # left by a save that was killed
        self.barrier()
        super().save_checkpoint(checkpoint, partial, storage_options)
        self.barrier()
        if self.global_rank == 0:
            if path.exists():
                _remove(old)
                path.rename(old)
            partial.rename(path)
            _remove(old)
        self.barrier()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()

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
- Tensor parallelism keeps a GPT's embeddings, norms and row-parallel biases whole on every rank of a
  tensor-parallel group, and nothing in Lightning or torch checks that those copies stay equal: a random draw
  that differs between the ranks (dropout seeded by global rank) silently trains different models in one. Before
  every checkpoint, each group's copies are compared with its first rank's: float rounding (1e-7 after a few
  steps) is copied away, with the copies' optimizer state, a real difference stops the run in one sentence. The
  checkpoint keeps one copy, so a run continued from it holds what the run never stopped holds: bit for bit.
"""

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.distributed.tensor import DTensor

from {{cookiecutter.package_name}}.harness import cluster, mesh
from {{cookiecutter.package_name}}.harness.checks import RunStopped
from {{cookiecutter.package_name}}.harness.strategies.atomic_checkpoint_io import remove


class ModelParallel(ModelParallelStrategy):
    strategy_name = "model_parallel"  # as summary.json names it: the trainer config's name

    def set_world_ranks(self) -> None:
        super().set_world_ranks()  # called before Lightning resolves "auto" sizes
        if self._data_parallel_size == "auto" and self._tensor_parallel_size != "auto":
            self._data_parallel_size = max(mesh.data_parallel_size(self.world_size, int(self._tensor_parallel_size)), 1)

    def setup_environment(self) -> None:
        super().setup_environment()  # a new mesh, and new process groups, at every fit, test or predict
        cluster.end_with_run(self.device_mesh)

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: Any, storage_options: Any = None) -> None:
        self.align_tensor_parallel_copies()
        if not self._save_distributed_checkpoint or "://" in str(filepath):
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        path = Path(self.broadcast(str(filepath)))
        partial, old = path.with_name(f".{path.name}.partial"), path.with_name(f".{path.name}.old")
        if self.global_rank == 0:
            remove(partial)  # left by a save that was killed
        self.barrier()
        super().save_checkpoint(checkpoint, partial, storage_options)
        self.barrier()
        if self.global_rank == 0:
            if path.exists():
                remove(old)
                path.rename(old)
            partial.rename(path)
            remove(old)
        self.barrier()

    @torch.no_grad()
    def align_tensor_parallel_copies(self, tolerance: float = 1e-4) -> float:
        """Make the copies that every rank of a tensor-parallel group holds equal to its first rank's; return the
        largest difference found. One larger than `tolerance` is no rounding: RunStopped on every rank."""
        if self._tensor_parallel_size in (1, "auto") or self.lightning_module is None:
            return 0.0
        group = self.device_mesh["tensor_parallel"].get_group()
        optimizers = self.lightning_module.trainer.optimizers if self.lightning_module._trainer else []
        names, differences = [], []
        for name, parameter in self.lightning_module.named_parameters():
            if _split_over_tensor_parallel(parameter):
                continue  # each rank holds a different part (a row-parallel layer's bias is a whole copy on each)
            local = _local(parameter)
            first = local.detach().clone()
            dist.broadcast(first, group=group, group_src=0)
            names.append(name)
            differences.append((local - first).abs().max() if local.numel() else local.new_zeros(()))
            local.copy_(first)
            # And its optimizer state (AdamW's moments), which the checkpoint keeps once: continued from it, every
            # rank holds the first rank's, so the run never stopped must too, or it is not continued exactly.
            for optimizer in optimizers:
                for value in optimizer.state.get(parameter, {}).values():
                    if isinstance(value, torch.Tensor) and _local(value).shape == local.shape and value.dim():
                        dist.broadcast(_local(value), group=group, group_src=0)
        largest = torch.stack(differences).double() if differences else torch.zeros(1, dtype=torch.float64)
        dist.all_reduce(largest, op=dist.ReduceOp.MAX)  # every rank decides alike: a rank alone would hang the save
        worst = int(largest.argmax())
        if largest[worst] > tolerance:
            raise RunStopped(
                f"the tensor-parallel ranks hold different copies of {names[worst]} (largest difference "
                f"{float(largest[worst]):.3g}): something random in the step differs between them; draw it from the "
                "data-parallel rank (harness/callbacks/step_seeding.py) or one generator for the whole group."
            )
        return float(largest.max())


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's part of a DTensor, or the tensor itself."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def _split_over_tensor_parallel(tensor: torch.Tensor) -> bool:
    if not isinstance(tensor, DTensor) or "tensor_parallel" not in (tensor.device_mesh.mesh_dim_names or ()):
        return False
    return not tensor.placements[tensor.device_mesh.mesh_dim_names.index("tensor_parallel")].is_replicate()

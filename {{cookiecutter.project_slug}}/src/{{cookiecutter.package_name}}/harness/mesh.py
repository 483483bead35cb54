"""The device mesh of trainer=model_parallel: its shape from the trainer config, and what a network offers to be
split over it.

Gaps this fills:
- Lightning's ModelParallelStrategy hands a LightningModule a device mesh and leaves the plan to it, with no
  contract for the network; here that contract is one typed Protocol, which the checks test before any work
  starts (harness/checks.py) and the LightningModule base applies (harness/module.py).
- The mesh's shape is resolved once, here, for the checks and the strategy (harness/strategies/model_parallel.py),
  "auto" sizes included: Lightning resolves them only once the processes have started.
"""

import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from omegaconf import DictConfig, ListConfig

if TYPE_CHECKING:  # not imported at run time: the checks use this module before torch is imported
    from torch.distributed.device_mesh import DeviceMesh


@runtime_checkable
class Parallelizable(Protocol):
    """A network that says how it is split over a mesh of "data_parallel" x "tensor_parallel" ranks
    (models/nets/gpt.py and mlp.py). The checks test the class, so `tensor_parallel` is a class attribute."""

    tensor_parallel: bool  # whether parallelize() splits it over the tensor-parallel ranks too, not only shards it

    def parallelize(self, mesh: "DeviceMesh") -> None: ...


def devices_per_node(trainer: DictConfig) -> int:
    """The processes per node that `trainer.devices` asks for, as Lightning counts them."""
    import torch

    devices, accelerator = trainer.get("devices", "auto"), str(trainer.get("accelerator", "auto"))
    if isinstance(devices, list | ListConfig):  # device indices
        return len(devices)
    if str(devices).lstrip("-").isdigit() and int(devices) > 0:
        return int(devices)
    if accelerator == "cpu" or not torch.cuda.is_available():
        return 1 if str(devices) == "auto" else os.cpu_count() or 1
    return torch.cuda.device_count()


def shape(trainer: DictConfig) -> tuple[int, Any, Any]:
    """(ranks, data-parallel size, tensor-parallel size) that trainer=model_parallel's config asks for. Tensor's
    "auto" is the devices per node (Lightning's), data's the ranks left; a size that is no whole number is
    returned as given, for the checks to name."""
    per_node = devices_per_node(trainer)
    ranks = per_node * int(trainer.get("num_nodes", 1))
    tensor = trainer.strategy.get("tensor_parallel_size", "auto")
    tensor = per_node if tensor == "auto" else tensor
    return ranks, data_parallel_size(ranks, tensor, trainer.strategy.get("data_parallel_size", "auto")), tensor


def data_parallel_size(ranks: int, tensor: Any, data: Any = "auto") -> Any:
    """`data` as given; "auto" the ranks left by `tensor` (Lightning's "auto" would be the number of nodes)."""
    if data == "auto" and type(tensor) is int and tensor >= 1:
        return ranks // tensor
    return data

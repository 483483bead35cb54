"""The device mesh of trainer=model_parallel, and what a network offers to be split over it.

Gap this fills: Lightning's ModelParallelStrategy hands a LightningModule a device mesh and leaves the plan to
it, with no contract for the network; here that contract is one typed Protocol, which the checks test before
any work starts (harness/checks.py) and the LightningModule base applies (harness/module.py).
"""

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # not imported at run time: the checks use this module before torch is imported
    from torch.distributed.device_mesh import DeviceMesh


@runtime_checkable
class Parallelizable(Protocol):
    """A network that says how it is split over a mesh of "data_parallel" x "tensor_parallel" ranks
    (models/nets/gpt.py and mlp.py). The checks test the class, so `tensor_parallel` is a class attribute."""

    tensor_parallel: bool  # whether parallelize() splits it over the tensor-parallel ranks too, not only shards it

    def parallelize(self, mesh: "DeviceMesh") -> None: ...

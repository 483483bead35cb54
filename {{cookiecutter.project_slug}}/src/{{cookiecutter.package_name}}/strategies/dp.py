"""`trainer=dp`: torch.nn.DataParallel for Lightning 2, which removed `strategy="dp"` from the Trainer.

Gap this fills: Lightning 2 keeps DataParallel only in Fabric. Prefer `trainer=ddp` (one process per
GPU, faster and what Lightning recommends); `dp` is for code and habits built on `nn.DataParallel`,
or when starting one process per GPU is not possible (e.g. inside a notebook on a multi-GPU box).

How it works: one process holds the model on the first GPU. Each call of the LightningModule's
`forward` (i.e. `self(x)` in a step) is run by `nn.DataParallel`: the inputs are split along dim 0
over the GPUs, the model is replicated, each replica runs its share, and the outputs are gathered
back on the first GPU. Everything else in `training_step` runs once, in this process, on the
gathered outputs. That is where the replicas' losses are reduced: the loss computed on the gathered
outputs equals the batch-size-weighted mean of the per-replica losses, and `self.log` and torchmetrics
see the whole batch exactly once (running whole steps on replicas would not work: replicas are shallow
copies, so their metric states and logged values would be lost or overwritten).
Consequence to know: code that calls submodules directly (`self.net(x)` instead of `self(x)`) runs on
the first GPU only.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from lightning.pytorch.strategies import ParallelStrategy
from torch import nn


class _Forward(nn.Module):
    """What DataParallel replicates: calls the class's forward of the (replicated) LightningModule.

    `type(module).forward` skips the instance attribute that routes `self(x)` here, so a replica
    does not re-enter DataParallel.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return type(self.module).forward(self.module, *args, **kwargs)


class DataParallelStrategy(ParallelStrategy):
    """One process, all GPUs of this node; see the module docstring."""

    strategy_name = "dp"

    def __init__(self, parallel_devices: list[torch.device] | None = None, **kwargs: Any) -> None:
        super().__init__(parallel_devices=parallel_devices, **kwargs)
        self._data_parallel: nn.DataParallel | None = None

    # One process: ranks and sizes are those of a single process, and Lightning must not add a
    # DistributedSampler (DataParallel splits each batch itself).
    @property
    def root_device(self) -> torch.device:
        return self.parallel_devices[0]

    @property
    def global_rank(self) -> int:
        return 0

    @property
    def local_rank(self) -> int:
        return 0

    @property
    def node_rank(self) -> int:
        return 0

    @property
    def world_size(self) -> int:
        return 1

    @property
    def is_distributed(self) -> bool:
        return False

    @property
    def distributed_sampler_kwargs(self) -> None:
        return None

    def model_to_device(self) -> None:
        assert self.model is not None
        self.model.to(self.root_device)

    def setup(self, trainer: Any) -> None:
        self.model_to_device()
        super().setup(trainer)
        device_ids = [device.index for device in self.parallel_devices]
        self._data_parallel = nn.DataParallel(_Forward(self.lightning_module), device_ids=device_ids)

    @contextmanager
    def _parallel_forward(self) -> Iterator[None]:
        """Route `self(x)` of the LightningModule through DataParallel for the duration of one step."""
        module = self.lightning_module
        data_parallel = self._data_parallel
        # A plain attribute, not a registered submodule: nn.Module would otherwise adopt DataParallel
        # as a child and the module would contain itself.
        object.__setattr__(module, "forward", lambda *args, **kwargs: data_parallel(*args, **kwargs))
        try:
            yield
        finally:
            object.__delattr__(module, "forward")

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        with self._parallel_forward():
            return super().training_step(*args, **kwargs)

    def validation_step(self, *args: Any, **kwargs: Any) -> Any:
        with self._parallel_forward():
            return super().validation_step(*args, **kwargs)

    def test_step(self, *args: Any, **kwargs: Any) -> Any:
        with self._parallel_forward():
            return super().test_step(*args, **kwargs)

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        with self._parallel_forward():
            return super().predict_step(*args, **kwargs)

    # A single process has nobody to talk to.
    def reduce(self, tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    def barrier(self, *args: Any, **kwargs: Any) -> None:
        pass

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        return obj

    def all_gather(self, tensor: torch.Tensor, group: Any = None, sync_grads: bool = False) -> torch.Tensor:
        return tensor

    def teardown(self) -> None:
        self._data_parallel = None
        super().teardown()

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

Inside `forward`, a replica behaves as the LightningModule would outside DataParallel (torch's worker
threads pass on only grad mode and autocast on/off): `self.device` is the replica's GPU, the caller's
autocast dtype (`bf16-mixed`) and `torch.inference_mode` (validate, test, predict) are in force, a 0-dim
output (a loss computed in forward) comes back 0-dim, as the mean over replicas weighted by their share
of the batch, and `self.log` in forward logs once per call, that same weighted mean.
BatchNorm statistics are per replica (computed on each replica's share of the batch); `sync_batchnorm`
does not apply to dp.
"""

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.strategies import ParallelStrategy
from torch import nn
from torch.nn.parallel.parallel_apply import get_a_var


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


class _DataParallel(nn.DataParallel):
    """nn.DataParallel over a `_Forward`, whose replicas run forward in the caller's state.

    torch runs each replica in a new thread, which starts with torch's defaults: only grad mode and
    autocast on/off are passed in, so the autocast dtype and inference mode are lost, and replicas
    are shallow copies that still say `device == cuda:0` and would all `self.log` into Lightning's
    results at once. The hooks below fill those gaps; the rest is nn.DataParallel's.
    """

    def scatter(self, inputs: Any, kwargs: Any, device_ids: Sequence[int]) -> Any:
        inputs, kwargs = super().scatter(inputs, kwargs, device_ids)
        # Each replica's share of the batch: what its 0-dim outputs and logged values weigh.
        tensors = [get_a_var(chunk) for chunk in zip(inputs, kwargs, strict=True)]
        sizes = [1 if tensor is None else tensor.shape[self.dim] for tensor in tensors]
        self._weights = [size / sum(sizes) for size in sizes] or [1.0]  # [] when forward takes no input
        return inputs, kwargs

    def parallel_apply(self, replicas: Sequence[nn.Module], inputs: Any, kwargs: Any) -> list[Any]:
        device_types = {"cpu", self.src_device_obj.type}
        autocast = {t: (torch.is_autocast_enabled(t), torch.get_autocast_dtype(t)) for t in device_types}
        inference = torch.is_inference_mode_enabled()
        logged: list[dict[str, tuple]] = [{} for _ in replicas]
        for replica, index, calls in zip(replicas, self.device_ids[: len(replicas)], logged, strict=True):
            # LightningModule.device reads `_device`; a replica is a copy, so this does not touch the original.
            for module in replica.modules():
                if isinstance(module, LightningModule):
                    module._device = torch.device(self.src_device_obj.type, index)
            replica.module.log = partial(_record_log, calls)
        runs = [partial(_run_replica, replica, autocast, inference) for replica in replicas]
        outputs = super().parallel_apply(runs, inputs, kwargs)
        # Back in the caller's thread: log each name once, as the weighted mean over the replicas that logged it.
        for name in dict.fromkeys(name for calls in logged for name in calls):
            shares = [(calls[name], w) for calls, w in zip(logged, self._weights, strict=True) if name in calls]
            (_, args, log_kwargs), _ = shares[0]
            value = self._mean([call[0] for call, _ in shares], [weight for _, weight in shares], self.output_device)
            self.module.module.log(name, value, *args, **log_kwargs)
        return outputs

    def gather(self, outputs: Any, output_device: Any) -> Any:
        # As torch's gather, except that 0-dim tensors (which torch would stack into a vector) are averaged.
        out = outputs[0]
        if isinstance(out, torch.Tensor) and out.dim() == 0:
            return self._mean(outputs, self._weights, output_device)
        if isinstance(out, dict):
            return type(out)((key, self.gather([o[key] for o in outputs], output_device)) for key in out)
        if isinstance(out, (list, tuple)):
            items = [self.gather(list(column), output_device) for column in zip(*outputs, strict=True)]
            return type(out)(*items) if hasattr(out, "_fields") else type(out)(items)  # namedtuple or not
        return super().gather(outputs, output_device)

    def _mean(self, values: list[Any], weights: list[float], output_device: Any) -> Any:
        """The mean of one value per replica, weighted by the replicas' shares of the batch."""
        weights = [weight / sum(weights) for weight in weights]
        if isinstance(values[0], (int, float)):
            return sum(value * weight for value, weight in zip(values, weights, strict=True))
        if not isinstance(values[0], torch.Tensor):
            return values[0]  # e.g. a torchmetrics Metric: one object, whichever replica logged it
        weighted = [(value * weight).reshape(1) for value, weight in zip(values, weights, strict=True)]
        return super().gather(weighted, output_device).sum()


def _record_log(calls: dict[str, tuple], name: str, value: Any, *args: Any, **kwargs: Any) -> None:
    """A replica's `self.log`: kept until all replicas are done (Lightning's results are not thread-safe)."""
    calls[name] = (value, args, kwargs)


def _run_replica(replica: nn.Module, autocast: dict, inference: bool, *args: Any, **kwargs: Any) -> Any:
    """Runs in torch's worker thread: re-enter the caller's thread-local state, then the replica."""
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode(inference))
        for device_type, (enabled, dtype) in autocast.items():
            stack.enter_context(torch.autocast(device_type, dtype=dtype, enabled=enabled))
        return replica(*args, **kwargs)


class DataParallelStrategy(ParallelStrategy):
    """One process, all GPUs of this node; see the module docstring."""

    strategy_name = "dp"

    def __init__(self, parallel_devices: list[torch.device] | None = None, **kwargs: Any) -> None:
        super().__init__(parallel_devices=parallel_devices, **kwargs)
        self._data_parallel: _DataParallel | None = None

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
        self._data_parallel = _DataParallel(_Forward(self.lightning_module), device_ids=device_ids)

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

"""The DataParallel strategy's plumbing, checked on CPU (where nn.DataParallel runs the module as is), and its
replicas, run in threads by torch's own parallel_apply with CPU stand-ins for the GPU parts; test_train.py trains
with it on real GPUs when there are some (README, "Strategies": `trainer=dp`)."""

import threading
from contextlib import nullcontext

import hydra
import lightning as L
import pytest
import torch
from helpers import compose_train
from lightning.pytorch.strategies import StrategyRegistry
from torch import nn
from torch.nn.parallel import scatter_gather

from {{cookiecutter.package_name}}.harness.strategies.dp import (
    DataParallelStrategy,
    _DataParallel,
    _Forward,
)

# These run DataParallel's machinery on the CPU (threads, CPU replicas), where nn.DataParallel takes the
# module as is; where CUDA is visible it insists on GPUs, and test_train.py's test_dp_on_gpus_trains runs.
CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU stand-in; GPUs run test_dp_on_gpus_trains")


def test_dp_is_registered_for_the_trainer() -> None:
    assert StrategyRegistry["dp"]["strategy"] is DataParallelStrategy


@CPU_ONLY
def test_steps_run_forward_through_data_parallel_and_log_whole_batch_metrics() -> None:
    cfg = compose_train("trainer.max_epochs=1")
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: calls.append(len(args[0])) if isinstance(module, _Forward) else None
    )
    strategy = DataParallelStrategy()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        strategy=strategy,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        trainer.fit(model, datamodule=datamodule)
    finally:
        hook.remove()
    assert strategy.world_size == 1 and strategy.distributed_sampler_kwargs is None
    assert calls[:3] == [cfg.data.batch_size] * 3  # each training step's whole batch went through DataParallel
    assert len(calls) == 3 + 2  # and every validation step too
    assert "forward" not in vars(model)  # the routing is undone after each step
    assert {"train/acc", "val/acc", "val/loss"} <= set(trainer.callback_metrics)


class _Probe(L.LightningModule):
    """Records what each replica sees inside forward, and what reaches `self.log`."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.seen: list[dict] = []  # a replica is a shallow copy: it appends to this same list
        self.logged: list[tuple] = []

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        self.seen.append(
            {
                "rows": len(x),
                "device": self.device,
                "thread": threading.get_ident(),
                "autocast": (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")),
                "inference": torch.is_inference_mode_enabled(),
            }
        )
        prediction = self.layer(x).float()
        loss = nn.functional.mse_loss(prediction, y)
        self.log("fwd/loss", loss, prog_bar=True)
        return {"prediction": prediction, "loss": loss}

    def log(self, name: str, value, *args, **kwargs) -> None:  # type: ignore[override]
        self.logged.append((name, value, kwargs, threading.get_ident()))


class _CpuDataParallel(_DataParallel):
    """_DataParallel over two fake devices (cpu:0, cpu:1): only replicate is ours, the rest is torch's."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)  # on CPU, nn.DataParallel leaves out its device settings
        self.dim, self.device_ids, self.output_device, self.src_device_obj = 0, [0, 1], 0, torch.device("cpu")

    def replicate(self, module: nn.Module, device_ids: list[int]) -> list[nn.Module]:
        return [_replica(module) for _ in device_ids]


def _replica(module: nn.Module) -> nn.Module:
    """What torch's replicate makes, on CPU: a shallow copy of each module, here sharing the parameters."""
    replica = module._replicate_for_data_parallel()
    replica._parameters = module._parameters
    replica._modules = {name: _replica(child) for name, child in module._modules.items()}
    return replica


@pytest.fixture
def two_replicas(monkeypatch) -> tuple[_Probe, _CpuDataParallel]:
    # torch's parallel_apply (real threads) runs on CPU with no-op streams; scatter and gather split and join on CPU.
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *args: torch.device("cpu"))
    monkeypatch.setattr(torch.accelerator, "current_stream", lambda *args: nullcontext())
    monkeypatch.setattr(torch.accelerator, "device_index", lambda *args: nullcontext())
    monkeypatch.setattr(scatter_gather.Scatter, "apply", lambda devices, sizes, dim, x: x.chunk(len(devices), dim))
    monkeypatch.setattr(scatter_gather.Gather, "apply", lambda device, dim, *xs: torch.cat(torch.atleast_1d(xs), dim))
    model = _Probe()
    return model, _CpuDataParallel(_Forward(model))


X = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]])  # 3 rows: replicas get 2 and 1
Y = torch.tensor([[1.0], [-2.0], [7.0]])


@CPU_ONLY
def test_each_replica_sees_its_own_device_in_a_worker_thread(two_replicas) -> None:
    model, data_parallel = two_replicas
    data_parallel(X, Y)
    seen = sorted((s["rows"], str(s["device"])) for s in model.seen)
    assert seen == [(1, "cpu:1"), (2, "cpu:0")]
    assert threading.get_ident() not in {s["thread"] for s in model.seen}  # torch's worker threads ran them
    assert model.device == torch.device("cpu")  # the original module is left alone


@CPU_ONLY
def test_replicas_run_under_the_callers_autocast_dtype(two_replicas) -> None:
    model, data_parallel = two_replicas
    with torch.autocast("cpu", dtype=torch.bfloat16):
        data_parallel(X, Y)
    assert [s["autocast"] for s in model.seen] == [(True, torch.bfloat16)] * 2


@CPU_ONLY
def test_replicas_run_in_the_callers_inference_mode(two_replicas) -> None:
    model, data_parallel = two_replicas
    with torch.inference_mode():
        data_parallel(X, Y)
    assert [s["inference"] for s in model.seen] == [True, True]
    data_parallel(X, Y)
    assert [s["inference"] for s in model.seen[2:]] == [False, False]


@CPU_ONLY
def test_a_0_dim_output_is_the_whole_batch_value_with_its_gradient(two_replicas) -> None:
    model, data_parallel = two_replicas
    output = data_parallel(X, Y)
    output["loss"].backward()
    parallel_grad = model.layer.weight.grad.clone()
    model.layer.weight.grad = None
    whole_batch_loss = nn.functional.mse_loss(model.layer(X), Y)
    whole_batch_loss.backward()
    assert output["prediction"].shape == (3, 1)  # other outputs are gathered as by torch
    assert output["loss"].dim() == 0
    # the whole batch's loss, not the plain mean of the replicas' 2-row and 1-row losses
    assert torch.allclose(output["loss"], whole_batch_loss)
    assert torch.allclose(parallel_grad, model.layer.weight.grad)


@CPU_ONLY
def test_a_value_logged_in_forward_is_logged_once_with_its_whole_batch_value(two_replicas) -> None:
    model, data_parallel = two_replicas
    data_parallel(X, Y)
    ((name, value, kwargs, thread),) = model.logged
    assert (name, kwargs, thread) == ("fwd/loss", {"prog_bar": True}, threading.get_ident())
    assert torch.allclose(value, nn.functional.mse_loss(model.layer(X), Y))

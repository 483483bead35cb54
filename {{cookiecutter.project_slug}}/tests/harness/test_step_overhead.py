"""What harness/step_overhead.py and ResearchModule cut from Lightning's steps changes nothing a run computes: the
same weights, logged values and callback calls as Lightning's own loop, in one process (no run folder)."""

import lightning as L
import torch
from lightning.pytorch.trainer.connectors.logger_connector import result

from {{cookiecutter.package_name}}.harness import step_overhead
from {{cookiecutter.package_name}}.harness.module import ResearchModule


class Regression(ResearchModule):
    """A linear fit that logs a step value averaged over the epoch, as the examples log their loss."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(x))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Counts(L.Callback):
    """Overrides two per-step hooks of six: those two must still run every step."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_before_backward(self, trainer: L.Trainer, module: L.LightningModule, loss: torch.Tensor) -> None:
        self.calls.append(f"backward {loss.item():.6f}")

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        self.calls.append(f"end {trainer.global_step}")


def fit(cut: bool) -> tuple[dict, dict, list[str]]:
    torch.manual_seed(0)
    x = torch.randn(24, 4)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
    counts = Counts()
    options = {"profiler": step_overhead.NoProfiler()} if cut else {}
    trainer = L.Trainer(
        max_epochs=2, callbacks=[counts], logger=False, enable_checkpointing=False, accelerator="cpu", **options
    )
    if cut:
        step_overhead.skip_empty_hooks(trainer.callbacks)
    model = Regression()
    trainer.fit(model, data)
    return model.state_dict(), {k: v.item() for k, v in trainer.callback_metrics.items()}, counts.calls


def test_the_cut_steps_compute_what_lightnings_own_do(monkeypatch) -> None:
    monkeypatch.setattr(result._ResultMetric, "to", step_overhead._move_record)  # Lightning's own first
    weights, logged, calls = fit(cut=False)
    step_overhead.log_without_moves()
    assert result._ResultMetric.to is step_overhead._move_record_if_elsewhere
    cut_weights, cut_logged, cut_calls = fit(cut=True)
    assert all(torch.equal(weights[name], cut_weights[name]) for name in weights)
    assert cut_logged == logged and "train/loss_epoch" in logged
    assert cut_calls == calls and len(calls) == 2 * 12  # both hooks, every step of 2 epochs x 6


def test_hooks_a_callback_leaves_empty_are_skipped_and_its_own_kept() -> None:
    counts = Counts()
    counts.on_before_zero_grad = lambda trainer, module, optimizer: None  # a hook set on the callback itself
    step_overhead.skip_empty_hooks([counts])
    assert counts.on_train_batch_start is None and counts.on_after_backward is None
    assert callable(counts.on_before_backward) and callable(counts.on_train_batch_end)
    assert callable(counts.on_before_zero_grad)
    assert callable(counts.on_save_checkpoint)  # called by Lightning directly, not through its dispatcher: kept


def test_a_logged_record_still_moves_to_another_device() -> None:
    step_overhead.log_without_moves()
    record = result._ResultMetric(result._Metadata(fx="training_step", name="loss"), is_tensor=True)
    assert record.to(torch.device("cpu")) is record and record.value.device.type == "cpu"
    record.to(torch.device("meta"))
    assert record.value.device.type == "meta" and record.cumulated_batch_size.device.type == "meta"


def test_a_modules_hook_name_is_set_without_nn_module_checks() -> None:
    model = Regression()
    model._current_fx_name = "training_step"
    assert model.__dict__["_current_fx_name"] == "training_step"
    model.net = torch.nn.Linear(1, 1)  # every other attribute as nn.Module sets it
    assert "net" in model._modules

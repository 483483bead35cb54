"""What harness/step_overhead.py and ResearchModule cut from Lightning's steps changes nothing a run computes: the
same weights, logged values and callback calls as Lightning's own loop, in one process (no run folder). And the
ranks' look at a SIGTERM, paced to about once a second instead of every batch (harness/cluster.py)."""

import itertools
import signal
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.loops import training_epoch_loop
from lightning.pytorch.loops.training_epoch_loop import _TrainingEpochLoop
from lightning.pytorch.trainer.connectors.logger_connector import result
from lightning.pytorch.utilities import signature_utils
from lightning.pytorch.utilities.exceptions import SIGTERMException

from {{cookiecutter.package_name}}.harness import cluster, resume, step_overhead
from {{cookiecutter.package_name}}.harness.callbacks.data_position import DataPosition
from {{cookiecutter.package_name}}.harness.callbacks.last_checkpoint import LastCheckpoint
from {{cookiecutter.package_name}}.harness.callbacks.slurm_requeue import SlurmRequeue
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
    monkeypatch.setattr(training_epoch_loop, "is_param_in_hook_signature", signature_utils.is_param_in_hook_signature)
    weights, logged, calls = fit(cut=False)
    step_overhead.log_without_moves()
    step_overhead.signatures_read_once()
    assert result._ResultMetric.to is step_overhead._move_record_if_elsewhere
    cut_weights, cut_logged, cut_calls = fit(cut=True)
    assert all(torch.equal(weights[name], cut_weights[name]) for name in weights)
    assert cut_logged == logged and "train/loss_epoch" in logged
    assert cut_calls == calls and len(calls) == 2 * 12  # both hooks, every step of 2 epochs x 6


def test_a_step_signature_is_read_once_a_function_and_answered_as_lightning_does() -> None:
    step_overhead.signatures_read_once()
    answer = training_epoch_loop.is_param_in_hook_signature  # what the training loop asks before every step

    class WithoutIndex(Regression):
        def training_step(self, batch: list[torch.Tensor]) -> torch.Tensor:
            return super().training_step(batch, 0)

    for model, takes_index in [(Regression(), True), (WithoutIndex(), False)]:
        lightnings = signature_utils.is_param_in_hook_signature(model.training_step, "batch_idx", min_args=2)
        for _ in range(2):  # the second answer from memory: a bound method is a new object each time
            assert answer(model.training_step, "batch_idx", min_args=2) is takes_index is lightnings


def test_hooks_a_callback_leaves_empty_are_skipped_and_its_own_kept() -> None:
    counts = Counts()
    step_overhead.skip_empty_hooks([counts])
    assert counts.on_train_batch_start is None and counts.on_after_backward is None
    assert callable(counts.on_before_backward) and callable(counts.on_train_batch_end)
    assert callable(counts.on_save_checkpoint)  # called by Lightning directly, not through its dispatcher: kept


@pytest.mark.parametrize("under_slurm", [False, True], ids=["outside-slurm", "under-slurm"])
def test_the_requeue_look_is_called_each_batch_under_slurm_only(monkeypatch, under_slurm: bool) -> None:
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    if under_slurm:
        monkeypatch.setenv("SLURM_NTASKS", "1")
        monkeypatch.setenv("SLURM_JOB_NAME", "train")
    before = signal.getsignal(signal.SIGUSR1)
    try:
        requeue = SlurmRequeue()
    finally:
        cluster.stop_watching_requeue_signal()
        signal.signal(signal.SIGUSR1, before)
    step_overhead.skip_empty_hooks([requeue])
    hooks = [requeue.on_train_batch_end, requeue.on_validation_batch_end, requeue.on_test_batch_end]
    assert all(callable(hook) if under_slurm else hook is None for hook in hooks)
    assert callable(requeue.on_train_epoch_end)  # once an epoch: kept either way


@pytest.mark.parametrize("every_n_train_steps", [None, 2])
def test_a_checkpoint_saved_at_epoch_ends_only_has_no_batch_hook(tmp_path: Path, every_n_train_steps: int) -> None:
    trainer = L.Trainer(logger=False, accelerator="cpu", default_root_dir=tmp_path, enable_progress_bar=False)
    checkpoint = LastCheckpoint(str(tmp_path), every_n_train_steps=every_n_train_steps)
    checkpoint.setup(trainer, Regression(), "fit")
    assert callable(checkpoint.on_train_batch_end) is (every_n_train_steps is not None)  # saves at step 2, 4, ...


def test_the_callback_a_run_adds_after_building_its_trainer_skips_its_empty_hooks_too(tmp_path: Path) -> None:
    trainer = L.Trainer(logger=False, accelerator="cpu", default_root_dir=tmp_path, enable_progress_bar=False)
    resume.resolve(None, tmp_path, trainer, L.LightningDataModule())  # as train.py does, after build()
    (position,) = [callback for callback in trainer.callbacks if isinstance(callback, DataPosition)]
    assert all(getattr(position, hook) is None for hook in step_overhead.PER_STEP_HOOKS)


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


@pytest.fixture
def one_rank(tmp_path: Path):
    """A process group of this process alone: the looks below are real broadcasts."""
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    torch.distributed.destroy_process_group()


def test_ranks_look_for_sigterm_about_once_a_second_and_leave_at_the_next_look(one_rank, monkeypatch) -> None:
    # Lightning's loop asks before every training batch; rank zero's note and pace travel in one broadcast.
    cluster.stop_together_on_sigterm()
    clock, looks = [0.0], []
    monkeypatch.setattr(cluster.time, "monotonic", lambda: clock[0])
    broadcast = torch.distributed.broadcast

    def counted(tensor: torch.Tensor, src: int) -> None:
        looks.append(clock[0])
        broadcast(tensor, src)

    monkeypatch.setattr(torch.distributed, "broadcast", counted)
    trainer = SimpleNamespace(received_sigterm=False, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    loop = SimpleNamespace(trainer=trainer)

    def batches(count: int, seconds: float) -> None:
        for _ in range(count):
            _TrainingEpochLoop._broadcast_sigterm_tensor(loop)
            clock[0] += seconds

    batches(1000, 0.01)  # 10 s of 10 ms batches: the first two batches, then every 100th (a second)
    assert 11 <= len(looks) <= 13 and max(b - a for a, b in itertools.pairwise(looks)) < 1.05
    looks.clear()
    batches(110, 2.0)  # batches longer than the second: from the next look on, every batch
    assert [b - a for a, b in itertools.pairwise(looks)][-5:] == pytest.approx([2.0] * 5)
    trainer.received_sigterm = True  # noted by rank zero's handler
    with pytest.raises(SIGTERMException):
        batches(1, 2.0)

"""A continued run takes this command's optimizer and schedule settings, or refuses before any work where the
schedule's rate has no closed form (README, "Resume"). Lightning's order, without a run: the callback's fit start,
the checkpoint's states loaded, its train start."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch.optim import lr_scheduler

from {{cookiecutter.package_name}}.harness.callbacks import optimizer_settings
from {{cookiecutter.package_name}}.harness.checks import ConfigError

CYCLE = {"max_lr": 0.01, "total_steps": 10}
HALVING = {"lr_lambda": lambda step: 0.5**step}


def build(scheduler, lr: float = 1e-3, **settings) -> SimpleNamespace:
    """A trainer's optimizer and scheduler, as `configure_optimizers` builds them from a command's config."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    return SimpleNamespace(
        optimizers=[optimizer], lr_scheduler_configs=[SimpleNamespace(scheduler=scheduler(optimizer, **settings))]
    )


def continued(run: SimpleNamespace, command: SimpleNamespace, steps: int = 3) -> SimpleNamespace:
    """`command` continuing `run` after its `steps` steps, as Lightning does it."""
    scheduler = run.lr_scheduler_configs[0].scheduler
    for _ in range(steps):
        run.optimizers[0].step()
        scheduler.step(1.0) if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau) else scheduler.step()
    callback = optimizer_settings.OptimizerSettings("last.ckpt", [scheduler.state_dict()])
    callback.on_fit_start(command, None)  # before the checkpoint is loaded: the refusals
    command.optimizers[0].load_state_dict(run.optimizers[0].state_dict())
    command.lr_scheduler_configs[0].scheduler.load_state_dict(scheduler.state_dict())
    command.global_step = steps
    callback.on_train_start(command, None)
    return command


def group(trainer: SimpleNamespace) -> dict:
    return trainer.optimizers[0].param_groups[0]


def test_a_closed_form_schedule_continues_where_this_commands_schedule_has_it() -> None:
    command = continued(build(lr_scheduler.CosineAnnealingLR, T_max=4), build(lr_scheduler.CosineAnnealingLR, T_max=8))
    assert group(command)["lr"] == pytest.approx(1e-3 * (1 + math.cos(math.pi * 3 / 8)) / 2)


@pytest.mark.parametrize(
    ("scheduler", "run", "command", "changed"),
    [
        (lr_scheduler.OneCycleLR, CYCLE, {**CYCLE, "max_lr": 0.02}, "the initial learning rate 0.0004 -> 0.0008"),
        (lr_scheduler.OneCycleLR, CYCLE, {**CYCLE, "total_steps": 20}, "model.scheduler.total_steps 10 -> 20"),
        (lr_scheduler.LambdaLR, HALVING, {**HALVING, "lr": 2e-3}, "the initial learning rate 0.001 -> 0.002"),
    ],
    ids=["one-cycle-max-lr", "one-cycle-steps", "lambda-lr"],
)
def test_a_changed_schedule_without_a_closed_form_is_refused_before_work(scheduler, run, command, changed) -> None:
    with pytest.raises(ConfigError, match=f"This command changes {changed} .*cannot be computed"):
        continued(build(scheduler, **run), build(scheduler, **command))


def test_a_schedule_without_a_closed_form_keeps_its_progress() -> None:
    # One cycle moves the rate and the first beta each step: the run's, not a change of this command's.
    run = build(lr_scheduler.OneCycleLR, **CYCLE)
    command = continued(run, build(lr_scheduler.OneCycleLR, **CYCLE))
    assert group(command)["lr"] == group(run)["lr"] != 1e-3 and group(command)["betas"] == group(run)["betas"]
    # Reduced on a plateau: the reduced rate is kept, and this command's patience is taken.
    plateau = build(lr_scheduler.ReduceLROnPlateau, patience=0)
    command = continued(plateau, build(lr_scheduler.ReduceLROnPlateau, patience=5))
    assert group(command)["lr"] == group(plateau)["lr"] < 1e-3
    assert command.lr_scheduler_configs[0].scheduler.patience == 5

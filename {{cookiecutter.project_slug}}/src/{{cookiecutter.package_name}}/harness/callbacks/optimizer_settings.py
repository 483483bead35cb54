"""A continued run trains with this command's optimizer and learning-rate schedule settings, and says which it
changed, as it does for every other setting (harness/run_info.py).

Gap this fills: Lightning loads the optimizer's settings and each scheduler's state from the checkpoint over what
`configure_optimizers` built from this command's config. So `ckpt_path=last model.optimizer.lr=1e-4` trained on at
the run's rate, and `ckpt_path=last trainer.max_epochs=4` after 2 epochs under the cosine schedule
(`T_max: ${trainer.max_epochs}`) kept T_max=2, past whose end the rate climbs back up; each without a word.
Here the settings `configure_optimizers` built are noted at fit start, before the checkpoint is loaded; once it is,
before the first step, the changed ones are set again, the learning rate is recomputed at the run's place in the
schedule (where this command's schedule has it), and one line says so. A command that adds or removes a scheduler
is refused in one sentence: where the schedule would take the run on from is not a setting. So is a changed setting
of a scheduler whose rate has no closed form (OneCycleLR, LambdaLR, ...), decided at fit start from the checkpoint's
scheduler states; under those, the rate (and momentum a cyclic one moves) is the scheduler's progress and is kept.
ReduceLROnPlateau keeps its reduced rate too and takes this command's settings (patience, factor, ...).
"""

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch.optim.lr_scheduler import ReduceLROnPlateau

from {{cookiecutter.package_name}}.harness import checks

# Entries of a state that are not settings: progress, and choices of implementation that may differ by machine.
NOT_SETTINGS = {"last_epoch", "best", "num_bad_epochs", "cooldown_counter", "base_lrs", "lr", "initial_lr"}
NOT_SETTINGS |= {"params", "foreach", "fused", "capturable", "differentiable"}


class OptimizerSettings(Callback):
    def __init__(self, ckpt_path: str, saved_schedulers: list[dict]) -> None:
        self.ckpt_path, self.saved_schedulers = ckpt_path, saved_schedulers
        self.groups: list[dict] = []
        self.schedulers: list[dict] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Before the checkpoint is loaded: the settings built from this command's config, and the refusals."""
        configs = trainer.lr_scheduler_configs
        if len(self.saved_schedulers) != len(configs):
            raise checks.ConfigError(
                f"{self.ckpt_path} was trained with {len(self.saved_schedulers)} learning-rate scheduler(s) and this "
                f"command builds {len(configs)}, and where a schedule would take the run on from is not a setting: "
                "continue with the run's model config, or leave out ckpt_path to start a new run."
            )
        self.groups = [dict(group) for group in _groups(trainer)]
        self.schedulers = [dict(config.scheduler.state_dict()) for config in configs]
        for built, saved, config in zip(self.schedulers, self.saved_schedulers, configs, strict=True):
            if _closed_form(config.scheduler) or isinstance(config.scheduler, ReduceLROnPlateau):
                continue  # ReduceLROnPlateau: its rate is its progress whatever its settings
            changed: list[str] = []
            if _plain(built.get("base_lrs")) != _plain(saved.get("base_lrs")):  # the rates it starts from
                changed.append(f"the initial learning rate {_one(saved.get('base_lrs'))} -> {_one(built['base_lrs'])}")
            for name in filter(_is_setting, built):
                if _plain(built[name]) != _plain(saved.get(name)):
                    _note(changed, "scheduler", name, saved.get(name), built[name])
            if changed:
                raise checks.ConfigError(
                    f"This command changes {', '.join(changed)} of the run in {self.ckpt_path}, and where "
                    f"{type(config.scheduler).__name__} takes its learning rate from here cannot be computed: "
                    "continue with the run's settings, or leave out ckpt_path to start a new run."
                )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After it is loaded, before the first step: this command's settings where the run's differ."""
        changed: list[str] = []
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        progress = {id(group): _progress(s) for s in schedulers for group in s.optimizer.param_groups}
        for built, group in zip(self.groups, _groups(trainer), strict=True):
            rate = "initial_lr" if "initial_lr" in group else "lr"  # under a scheduler, `lr` is its progress
            kept = progress.get(id(group), set())
            for name in dict.fromkeys(name for name in [rate, *built] if _is_setting(name) or name == rate):
                if name not in kept and name in group and _plain(group[name]) != _plain(built[name]):
                    _note(changed, "optimizer", "lr" if name == "initial_lr" else name, group[name], built[name])
                    group[name] = built[name]
        for built, scheduler in zip(self.schedulers, schedulers, strict=True):
            for name in filter(_is_setting, built):
                if _plain(scheduler.__dict__.get(name)) != _plain(built[name]):
                    _note(changed, "scheduler", name, scheduler.__dict__.get(name), built[name])
                    scheduler.__dict__[name] = built[name]
        if not changed:
            return
        for scheduler in filter(_closed_form, schedulers):  # its rate from here, as if the run had had these settings
            scheduler.base_lrs = [group["initial_lr"] for group in scheduler.optimizer.param_groups]
            scheduler._last_lr = scheduler._get_closed_form_lr()
            for group, rate in zip(scheduler.optimizer.param_groups, scheduler._last_lr, strict=True):
                group["lr"] = rate
        rates = " and ".join(str(_round(rate)) for rate in sorted({group["lr"] for group in _groups(trainer)}))
        where = ", where this command's schedule has it" if schedulers else ""
        rank_zero_info(
            f"Continuing with this command's {', '.join(changed)}: the learning rate from step {trainer.global_step} "
            f"is {rates}{where}."
        )


def _closed_form(scheduler: Any) -> bool:
    return hasattr(scheduler, "_get_closed_form_lr")


def _progress(scheduler: Any) -> set[str]:
    """The entries of its optimizer's groups that a scheduler without a closed form moves: kept from the run."""
    if _closed_form(scheduler):
        return set()
    return {"lr", "initial_lr"} | ({"betas", "momentum"} if getattr(scheduler, "cycle_momentum", False) else set())


def _one(rates: Any) -> Any:
    """A list of one group's rate, or of equal ones, as that rate."""
    return rates[0] if isinstance(rates, list) and rates and all(rate == rates[0] for rate in rates) else rates


def _groups(trainer: L.Trainer) -> list[dict]:
    return [group for optimizer in trainer.optimizers for group in optimizer.param_groups]


def _is_setting(name: str) -> bool:
    return name not in NOT_SETTINGS and not name.startswith("_")


def _note(changed: list[str], part: str, name: str, was: Any, now: Any) -> None:
    """`model.scheduler.T_max 2 -> 4 (trainer.max_epochs=4)`, once per key."""
    key = f"model.{part}.{name}"  # where the models of this project take it from
    typed = checks.typed_as(key, now) if checks.in_config(key) else key
    text = f"{key} {_plain(was)} -> {_plain(now)}" + (f" (from {typed}={now})" if typed != key else "")
    if text not in changed:
        changed.append(text)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _round(rate: float) -> float:
    return float(f"{rate:.4g}") if math.isfinite(rate) else rate

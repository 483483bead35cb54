"""A run's objects, built from its checked config: the data, the model, and the trainer with its callbacks and
loggers (train.py and eval.py).

Gaps this fills:
- Lightning is imported here, once the config is composed and checked: `train.py --help`, `--cfg job` and
  mistakes on the command line answer in a second instead of after its import (~2.5 s).
- `import lightning` gives the "lightning" logger a console handler of its own even when logging is set up
  (lightning.pytorch defers to the root logger then). Hydra's handlers, the console and the run's log file,
  already get every message: that handler would print each Lightning line twice.
- Lightning no longer ships the `dp` strategy: importing harness/strategies registers it (trainer=dp).
- A LightningModule's network, optimizer and scheduler, built by Hydra, are no plain values for its hyperparameters:
  their configs are kept there instead, for `load_from_checkpoint` (harness/hparams.py).
- Lightning's per-step bookkeeping (a profiler's context around every hook call, every callback's every hook,
  `self.log` moving its record each call, the step method's signature read again) is cut where its answer
  cannot change during a run (harness/step_overhead.py).
- Lightning logs the LightningModule's arguments, not the config that made the run: the whole config goes into
  every logger (harness/loggers/config.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

if TYPE_CHECKING:
    import lightning as L


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate data, model and trainer (with its callbacks and loggers) from the config."""
    import lightning as L

    import {{cookiecutter.package_name}}.harness.strategies  # noqa: F401  registers trainer=dp
    from {{cookiecutter.package_name}}.harness import step_overhead
    from {{cookiecutter.package_name}}.harness.hparams import keep as keep_configs
    from {{cookiecutter.package_name}}.harness.loggers.config import log_config

    if logging.getLogger().hasHandlers():  # set up by Hydra
        logging.getLogger("lightning").handlers.clear()

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    keep_configs(model, cfg.model)  # of its network, optimizer, scheduler: load_from_checkpoint builds them again
    # A callback or logger set to null (`callbacks.lr_monitor=null`) is off.
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    profiler = {} if cfg.trainer.get("profiler") else {"profiler": step_overhead.NoProfiler()}
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **profiler)
    step_overhead.skip_empty_hooks(trainer.callbacks)  # the Trainer's own callbacks (progress bar, ...) too
    step_overhead.log_without_moves()
    step_overhead.signatures_read_once()
    log_config(trainer, cfg)  # the whole config in every logger
    return datamodule, model, trainer

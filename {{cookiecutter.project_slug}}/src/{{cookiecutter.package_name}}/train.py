"""Train a model: `python train.py [overrides]`; see configs/train.yaml for what can be set."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from {{cookiecutter.package_name}}.harness import checks, launch, resume

if TYPE_CHECKING:
    import lightning as L

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate data, model and trainer (with its callbacks and loggers) from the config."""
    checks.check_trainer(cfg)
    checks.check_data(cfg)
    checks.check_checkpoint(cfg.get("ckpt_path"))
    checks.check_loggers(cfg)
    checks.check_argument_types(cfg)
    # Lightning is imported here, once the config is composed and checked: `train.py --help`, `--cfg job`
    # and mistakes on the command line answer in a second instead of after its import (~2.5 s).
    import lightning as L

    import {{cookiecutter.package_name}}.harness.strategies  # noqa: F401  registers trainer=dp
    from {{cookiecutter.package_name}}.harness.loggers.config import log_config

    if logging.getLogger().hasHandlers():
        # `import lightning` gives the "lightning" logger a console handler of its own even when logging is
        # set up (lightning.pytorch defers to the root logger then). Hydra's handlers, the console and the
        # run's log file, already get every message: without this, each Lightning line prints twice.
        logging.getLogger("lightning").handlers.clear()

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    # A callback or logger set to null (`callbacks.lr_monitor=null`) is off.
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log_config(trainer, cfg)  # the whole config in every logger
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, Any]:
    datamodule, model, trainer = build(cfg)
    ckpt_path = resume.resolve(cfg.get("ckpt_path"), Path(cfg.paths.output_dir), trainer, datamodule)
    # weights_only: a checkpoint builds tensors and plain values only, never objects that could run code
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    # Kept before testing: under trainer=model_parallel the test starts with none of fit's metrics.
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if cfg.get("test"):
        # The best checkpoint; where none was written (debug=fast_dev_run), the weights as trained.
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics |= {name: float(value) for name, value in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        log.info(f"Output folder: {cfg.paths.output_dir}  run: {cfg.get('run_name')}  metrics: {metrics}")
    return metrics


def main() -> None:
    launch.main(train, config_name="train")


if __name__ == "__main__":
    main()

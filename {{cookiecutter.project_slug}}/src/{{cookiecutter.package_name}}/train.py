"""Train a model: `python train.py [overrides]`; see configs/train.yaml for what can be set."""

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

import {{cookiecutter.package_name}}.strategies  # noqa: F401  registers trainer=dp
from {{cookiecutter.package_name}}.utils import checks, launch, resume

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Instantiate data, model and trainer (with its callbacks and loggers) from the config."""
    checks.check_trainer(cfg)
    checks.check_data(cfg)
    checks.check_checkpoint(cfg.get("ckpt_path"))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, Any]:
    datamodule, model, trainer = build(cfg)
    ckpt_path = resume.resolve(cfg.get("ckpt_path"), Path(cfg.paths.output_dir))
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    if cfg.get("test"):
        trainer.test(model, datamodule=datamodule, ckpt_path="best")
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        log.info(f"Output folder: {cfg.paths.output_dir}  metrics: {metrics}")
    return metrics


def main() -> None:
    launch.main(train, config_name="train")


if __name__ == "__main__":
    main()

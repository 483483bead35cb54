"""Evaluate a checkpoint on the test split: `python eval.py ckpt_path=path/to/file.ckpt`."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from {{cookiecutter.package_name}}.train import build
from {{cookiecutter.package_name}}.utils import launch
from {{cookiecutter.package_name}}.utils.checks import ConfigError


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    if not cfg.get("ckpt_path") or not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.get('ckpt_path')} is not a checkpoint file: pass ckpt_path=path/to/file.ckpt.")
    datamodule, model, trainer = build(cfg)
    trainer.test(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def main() -> None:
    launch.main(evaluate, config_name="eval")


if __name__ == "__main__":
    main()

"""Evaluate a checkpoint on the test split: `python eval.py ckpt_path=path/to/file.ckpt`."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from {{cookiecutter.package_name}}.train import build
from {{cookiecutter.package_name}}.utils import launch
from {{cookiecutter.package_name}}.utils.checks import ConfigError


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path or not Path(ckpt_path).is_file():
        raise ConfigError(f"eval.py needs ckpt_path=path/to/file.ckpt, and {ckpt_path!r} is not a file.")
    datamodule, model, trainer = build(cfg)
    trainer.test(model, datamodule=datamodule, ckpt_path=str(Path(ckpt_path).resolve()))
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def main() -> None:
    launch.main(evaluate, config_name="eval")


if __name__ == "__main__":
    main()

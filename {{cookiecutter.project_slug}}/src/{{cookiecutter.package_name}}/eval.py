"""Evaluate a checkpoint on the test split: `python eval.py ckpt_path=path/to/file.ckpt`.

A sharded run's checkpoint folder is evaluated under a sharded trainer as it is, elsewhere gathered into one
file first (harness/consolidate.py).

A checkpoint inside a run folder is evaluated with that run's model and data configs (its
.hydra/config.yaml), so the training overrides need not be typed again; overrides on the command
line still apply on top. A checkpoint from elsewhere uses configs/eval.yaml and the command line.
"""

import logging
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from {{cookiecutter.package_name}}.harness import launch
from {{cookiecutter.package_name}}.harness.checks import ConfigError
from {{cookiecutter.package_name}}.harness.consolidate import consolidate
from {{cookiecutter.package_name}}.train import build

log = logging.getLogger(__name__)
TRAINED_GROUPS = ("model", "data")  # what must match the checkpoint; the trainer may differ (e.g. eval on CPU)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path or not Path(ckpt_path).exists():
        raise ConfigError(
            f"eval.py needs ckpt_path=path/to/file.ckpt (or a sharded run's folder): {ckpt_path!r} is neither."
        )
    datamodule, model, trainer = build(cfg)
    from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy

    sharded_strategy = isinstance(trainer.strategy, ModelParallelStrategy | FSDPStrategy)
    if Path(ckpt_path).is_dir() and not sharded_strategy:  # a sharded run's folder, evaluated on other devices
        ckpt_path = consolidate(Path(ckpt_path), Path(cfg.paths.output_dir) / "consolidated.ckpt")
    # Lightning asks for the training callbacks whenever a checkpoint is loaded; testing needs none of them.
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided")
    trainer.test(model, datamodule=datamodule, ckpt_path=str(Path(ckpt_path).resolve()), weights_only=True)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def use_training_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Take the model and data configs of the run that wrote `ckpt_path`, then the command line's on top."""
    ckpt_path = cfg.get("ckpt_path")
    run_config = next(
        (d / ".hydra" / "config.yaml" for d in Path(str(ckpt_path)).resolve().parents if (d / ".hydra").is_dir()),
        None,
    )
    if not ckpt_path or run_config is None or not run_config.is_file():
        return cfg
    trained = OmegaConf.load(run_config)
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    for group in TRAINED_GROUPS:
        if group in keys or group not in trained:  # `model=other` on the command line: the user's choice
            continue
        given = {k: OmegaConf.select(cfg, k) for k in keys if k.startswith(f"{group}.")}
        cfg[group] = trained[group]
        for key, value in given.items():
            OmegaConf.update(cfg, key, value, force_add=True)
    log.info(f"Model and data configs from the run that wrote the checkpoint: {run_config.parents[1]}")
    return cfg


def main() -> None:
    launch.main(evaluate, config_name="eval", prepare=use_training_config)


if __name__ == "__main__":
    main()

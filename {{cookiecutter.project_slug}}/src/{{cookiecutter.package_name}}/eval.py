"""Evaluate a checkpoint on the test split: `python eval.py ckpt_path=path/to/file.ckpt`.

A sharded run's checkpoint folder is evaluated under a sharded trainer as it is, elsewhere gathered into one
file first (harness/consolidate.py).

A checkpoint inside a run folder is evaluated with that run's model and data configs (its
.hydra/config.yaml), so the training overrides need not be typed again; overrides on the command
line still apply on top. A checkpoint from elsewhere uses configs/eval.yaml and the command line.
"""

import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from {{cookiecutter.package_name}}.harness import checks, consolidate, launch, run_info
from {{cookiecutter.package_name}}.harness.build import build


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    checks.check_run(cfg, needed_by="eval.py")
    datamodule, model, trainer = build(cfg)
    checks.check_weights_fit(model, cfg.ckpt_path)
    ckpt_path = consolidate.as_trainer_loads_it(cfg.ckpt_path, trainer, Path(cfg.paths.output_dir))
    # Lightning asks for the training callbacks whenever a checkpoint is loaded; testing needs none of them.
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided")
    trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def main() -> None:
    launch.main(evaluate, config_name="eval", prepare=run_info.use_training_config)


if __name__ == "__main__":
    main()

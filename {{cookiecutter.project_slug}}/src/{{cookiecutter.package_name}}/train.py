"""Train a model: `python train.py [overrides]`; see configs/train.yaml for what can be set."""

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from {{cookiecutter.package_name}}.harness import checks, launch, resume
from {{cookiecutter.package_name}}.harness.build import build

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    checks.check_run(cfg)
    datamodule, model, trainer = build(cfg)
    ckpt_path = resume.resolve(cfg.get("ckpt_path"), Path(cfg.paths.output_dir), trainer, datamodule)
    checks.check_weights_fit(model, ckpt_path)
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

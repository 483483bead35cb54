"""The run's whole config in every logger: the W&B run's config, the CSV logger's hparams.yaml, TensorBoard's
hparams table (HPARAMS tab) with the run's final metrics beside it.

Gap this fills: Lightning logs the init arguments of the LightningModule and DataModule (ours leave them out:
they hold the network and optimizer as objects), not the composed config that made the run, so hparams.yaml
was `{}`. And TensorBoard's hparams table shows a metric only if it is named along with the hyperparameters
(Lightning names only a placeholder `hp_metric`, turned off in configs/logger/tensorboard.yaml): here the
run's losses and its checkpoint metric are named, and TensorBoard shows their last logged values.
"""

from typing import Any

import lightning as L
from lightning.fabric.utilities.logger import _flatten_dict
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf


def log_config(trainer: L.Trainer, cfg: DictConfig) -> None:
    if not trainer.is_global_zero:
        return
    # Resolved by harness/launch.py, except text read from the environment: logged as `${oc.env:...}`, not read.
    params: dict[str, Any] = OmegaConf.to_container(cfg, resolve=False)  # type: ignore[assignment]
    params.pop("hydra", None)
    monitor = getattr(trainer.checkpoint_callback, "monitor", None)
    metrics = {"train/loss", "val/loss", "test/loss"}
    if monitor:  # e.g. val/acc, and test/acc after it
        metrics |= {monitor, f"test/{monitor.rpartition('/')[2]}"}
    for logger in trainer.loggers:
        logger.log_hyperparams(params)
        if isinstance(logger, TensorBoardLogger):
            from torch.utils.tensorboard.summary import hparams

            # The same records Lightning writes when given metrics, without logging a made-up value for each.
            flat = logger._sanitize_params(_flatten_dict(params))
            writer = logger.experiment._get_file_writer()
            for summary in hparams(flat, dict.fromkeys(sorted(metrics), 0.0)):
                writer.add_summary(summary)

"""Predict for every input of a file: `python predict.py ckpt_path=<checkpoint or run folder> data.predict_path=<file>`.

The predictions, one row an input in input order, go to predictions.csv (.parquet, .npz) in this run's folder
(logs/predict/runs/...), under any number of ranks (harness/callbacks/prediction_writer.py). As with eval.py, a
checkpoint inside a run folder brings that run's model and data configs; a run folder stands for its best checkpoint.
"""

import importlib.util
import warnings
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from {{cookiecutter.package_name}}.harness import checks, consolidate, launch, run_info
from {{cookiecutter.package_name}}.harness.build import build
from {{cookiecutter.package_name}}.harness.callbacks.step_seeding import data_parallel_size


def predict(cfg: DictConfig) -> str:
    checks.check_run(cfg, needed_by="predict.py")
    if not cfg.data.get("predict_path"):
        raise checks.ConfigError("predict.py needs data.predict_path=<the file of inputs to predict for>.")
    written = Path(cfg.callbacks.prediction_writer.path)
    if written.suffix not in (".csv", ".parquet", ".npz"):
        raise checks.ConfigError(
            f"predict.py writes a .csv, .parquet or .npz file, not {written.name}: predictions=csv or "
            "predictions=parquet (a table), or predictions=npz (one array a column)."
        )
    if written.suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise checks.ConfigError("predictions=parquet needs pyarrow: pip install -e '.[parquet]'.")
    datamodule, model, trainer = build(cfg)
    datamodule.setup("predict")  # a missing or malformed file is refused here, before any rank starts
    _check_every_rank_has_inputs(cfg, datamodule, trainer)
    checks.check_weights_fit(model, cfg.ckpt_path)
    ckpt_path = consolidate.as_trainer_loads_it(cfg.ckpt_path, trainer, Path(cfg.paths.output_dir))
    # Lightning asks for the training callbacks whenever a checkpoint is loaded; predicting needs none of them.
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided")
    trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True, return_predictions=False)
    return cfg.callbacks.prediction_writer.path


def _check_every_rank_has_inputs(cfg: DictConfig, datamodule: L.LightningDataModule, trainer: L.Trainer) -> None:
    """Lightning's predict sampler fails with a bare assertion on a rank left without inputs."""
    try:
        inputs = len(datamodule.predict_dataloader().dataset)
    except TypeError:  # a dataset of no known length: Lightning shares it out as it streams
        return
    ranks = data_parallel_size(trainer)
    if inputs < ranks:
        held = "1 input" if inputs == 1 else f"{inputs} inputs"
        raise checks.ConfigError(
            f"data.predict_path={cfg.data.predict_path} holds {held}, fewer than the {ranks} ranks that would "
            "share them: predict on fewer ranks, e.g. trainer=cpu."
        )


def main() -> None:
    launch.main(predict, config_name="predict", prepare=run_info.use_training_run)


if __name__ == "__main__":
    main()

"""What a LightningDataModule in data/ takes from the machinery, in one import: the training loader that resumes
exactly (harness/resumable_loader.py), the training and validation split of a fold (harness/folds.py), the error
that reports a mistake in one sentence (harness/checks.py), and the inputs predict.py reads (harness/inputs.py)."""

from {{cookiecutter.package_name}}.harness.checks import ConfigError
from {{cookiecutter.package_name}}.harness.folds import train_val_split
from {{cookiecutter.package_name}}.harness.inputs import read_inputs, read_lines
from {{cookiecutter.package_name}}.harness.resumable_loader import resumable_loader

__all__ = ["ConfigError", "read_inputs", "read_lines", "resumable_loader", "train_val_split"]

"""What a LightningDataModule in data/ takes from the machinery, in one import: the training loader that resumes
exactly (harness/resumable_loader.py), the training and validation split of a fold (harness/folds.py) and the error
that reports a mistake in one sentence (harness/checks.py)."""

from {{cookiecutter.package_name}}.harness.checks import ConfigError
from {{cookiecutter.package_name}}.harness.folds import train_val_split
from {{cookiecutter.package_name}}.harness.resumable_loader import resumable_loader

__all__ = ["ConfigError", "resumable_loader", "train_val_split"]

"""`hydra/sweeper=optuna` (configs/hydra/sweeper/optuna.yaml): hyperparameter search with Optuna.

Hydra instantiates sweepers only from its `hydra_plugins` namespace, so this thin class lives here (inside
src/, `pip install -e .` and PYTHONPATH=src find it); the search itself is in
{{cookiecutter.package_name}}/harness/search.py.
Hydra imports every plugin module at every start (even `train.py --help`): nothing heavy is imported here.
"""

import sys
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.search: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from {{cookiecutter.package_name}}.harness import search

        self.search = search.Search(
            hydra_context=hydra_context, task_function=task_function, config=config, **self.settings
        )

    def sweep(self, arguments: list[str]) -> Any:
        from {{cookiecutter.package_name}}.harness.checks import ConfigError

        try:
            return self.search.run(arguments)
        except ConfigError as error:  # one sentence, as a single run reports its mistakes
            sys.exit(f"ERROR: {error}")

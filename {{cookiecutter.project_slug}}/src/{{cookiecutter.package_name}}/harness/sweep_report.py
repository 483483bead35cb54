"""At the end of a sweep (`python train.py -m ...`), the table of its jobs and the best one (compare.py).

Gap this fills: Hydra's sweep ends without a word on how its jobs went. A Hydra callback
(configs/hydra/default.yaml) runs once the launcher has every job back, local or on SLURM.
"""

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from {{cookiecutter.package_name}}.compare import report

        report([Path(config.hydra.sweep.dir)])

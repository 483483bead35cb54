"""A grid sweep launched again continues where it stopped: `python train.py -m <its overrides>
hydra.sweep.dir=<its folder>` skips the jobs that finished, continues those that did not from their newest
checkpoints, and runs those never started; the table at its end (harness/sweep_report.py) has them all.

Gap this fills: Hydra's basic launcher runs every job of a sweep again, from scratch, in a new folder (Hydra issues
#1407 and #3328; lightning-hydra-template #535). The same overrides give the same jobs in the same order, so job N
of the new launch is job N of the old one and finds its folder (`<sweep folder>/N`); a command with other settings
is refused before any job runs. Each job decides for itself, in its own process: under hydra/launcher=slurm too.
"""

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from {{cookiecutter.package_name}}.harness import resume, run_info

log = logging.getLogger(__name__)


def earlier_launch(cfg: DictConfig) -> dict[str, float] | None:
    """For a job of a sweep whose folder an earlier launch left: the metrics of a job that finished there (it is not
    run again); for one that saved a checkpoint, `ckpt_path=last` set in `cfg`, to continue from it. None to run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    job_dir, number = Path(cfg.paths.output_dir), HydraConfig.get().job.num
    summary = json.loads((job_dir / "summary.json").read_text()) if (job_dir / "summary.json").is_file() else {}
    if summary.get("status") == "finished":
        log.info(f"Job {number} finished in an earlier launch of this sweep ({job_dir}): not run again")
        return summary.get("metrics", {})
    if resume.newest_checkpoint(job_dir) is not None:
        log.info(f"Job {number} was stopped ({summary.get('status', 'no summary')}): it continues from its checkpoint")
        cfg.ckpt_path = "last"  # resume.resolve finds it in this job's folder
    return None


def continue_command() -> str | None:
    """In a job of a grid sweep: the command that launches the sweep again into its folder; None elsewhere."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra_config = HydraConfig.get()
    sweep_dir = Path(hydra_config.sweep.dir)
    if not str(hydra_config.sweeper.get("_target_", "")).endswith("BasicSweeper") or not sweep_dir.is_dir():
        return None
    typed = [o for o in OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides.task if "hydra.sweep.dir=" not in o]
    return shlex.join(["python", "train.py", "-m", *typed, f"hydra.sweep.dir={sweep_dir}"])


class SweepResume(Callback):
    """Before a sweep launches its jobs into a folder an earlier launch used: the same settings, or one sentence."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):  # a search resumes itself
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        earlier_config = sweep_dir / "multirun.yaml"  # Hydra's, written when a sweep starts
        if not earlier_config.is_file():
            return
        earlier = run_info.settings(list(OmegaConf.load(earlier_config).hydra.overrides.task))
        now = run_info.settings(list(config.hydra.overrides.task))
        if sorted(earlier) != sorted(now):  # sys.exit: Hydra turns a callback's exceptions into warnings
            sys.exit(
                f"ERROR: {sweep_dir} holds a sweep of {' '.join(earlier) or 'no overrides'}, not of {' '.join(now)}: "
                "to continue it, give its overrides; for a new sweep, leave out hydra.sweep.dir."
            )
        log.info(f"Continuing the sweep in {sweep_dir}")

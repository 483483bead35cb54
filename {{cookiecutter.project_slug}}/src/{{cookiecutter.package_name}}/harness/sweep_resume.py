"""A grid sweep launched again continues where it stopped: `python train.py -m <its overrides> ckpt_path=last` (the
newest sweep of those settings) or `... hydra.sweep.dir=<its folder>` skips the jobs that finished, continues those
that did not from their newest checkpoints, and runs those never started; the table at its end
(harness/sweep_report.py) has them all.

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


def sweep_job() -> Any:
    """Hydra's config of this job, in a sweep (`-m`); None in a single run, or outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return HydraConfig.get()


def earlier_launch(cfg: DictConfig) -> dict[str, float] | None:
    """For a job of a sweep whose folder an earlier launch left: the metrics of a job that finished there (it is not
    run again); for one that saved a checkpoint, `ckpt_path=last` set in `cfg`, to continue from it. None to run."""
    if (hydra_config := sweep_job()) is None:
        return None
    job_dir, number = Path(cfg.paths.output_dir), hydra_config.job.num
    summary = json.loads((job_dir / "summary.json").read_text()) if (job_dir / "summary.json").is_file() else {}
    if summary.get("status") == "finished":
        log.info(f"Job {number} finished in an earlier launch of this sweep ({job_dir}): not run again")
        return summary.get("metrics", {})
    if "ckpt_path" in cfg and resume.newest_checkpoint(job_dir) is not None:  # a task that continues runs
        log.info(f"Job {number} was stopped ({summary.get('status', 'no summary')}): it continues from its checkpoint")
        cfg.ckpt_path = "last"  # resume.resolve finds it in this job's folder
    return None


def sweep_settings(multirun_yaml: Path) -> list[str]:
    """The settings a sweep was launched with, from the multirun.yaml Hydra wrote in its folder."""
    return run_info.settings(list(OmegaConf.load(multirun_yaml).hydra.overrides.task))


def latest_sweep(multiruns: Path, hydra_config: Any) -> Path | None:
    """The newest folder in `multiruns` of a grid sweep with this command's settings (`ckpt_path=last` aside)."""
    if not grid(hydra_config):  # a search with Optuna resumes by its study (harness/search.py)
        return None
    now = run_info.settings(list(hydra_config.overrides.task))
    same = [
        (config.stat().st_mtime, config.parent)
        for config in multiruns.glob("*/multirun.yaml")
        if sweep_settings(config) == now
    ]
    return max(same)[1] if same else None


def continue_command() -> str | None:
    """In a job of a grid sweep: the command that launches the sweep again into its folder; None elsewhere."""
    if (hydra_config := sweep_job()) is None or not grid(hydra_config):
        return None
    sweep_dir = Path(hydra_config.sweep.dir)
    typed = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides.task
    typed = [o for o in typed if not o.startswith(("hydra.sweep.dir=", "ckpt_path="))]
    return shlex.join(["python", "train.py", "-m", *typed, f"hydra.sweep.dir={sweep_dir}"])


def grid(hydra_config: Any) -> bool:
    """A sweep of Hydra's basic sweeper: every combination of the values given, in order."""
    return str(hydra_config.sweeper.get("_target_", "")).endswith("BasicSweeper")


class SweepResume(Callback):
    """Before a sweep launches its jobs into a folder an earlier launch used: the same settings, or one sentence."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not grid(config.hydra):  # a search with Optuna resumes by its own command (harness/search.py)
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        earlier_config = sweep_dir / "multirun.yaml"  # Hydra's, written when a sweep starts
        if not earlier_config.is_file():
            return
        earlier = sweep_settings(earlier_config)
        now = run_info.settings(list(config.hydra.overrides.task))
        if earlier != now:  # in order too: it orders the jobs. sys.exit: Hydra makes a callback's exceptions warnings
            sys.exit(
                f"ERROR: {sweep_dir} holds a sweep of {' '.join(earlier) or 'no overrides'}, not of {' '.join(now)}: "
                "to continue it, give its overrides; for a new sweep, leave out hydra.sweep.dir."
            )
        log.info(f"Continuing the sweep in {sweep_dir}")

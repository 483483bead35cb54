"""Run a Hydra task exactly once per run, however many processes the run uses.

Gap this fills: Lightning's `ddp` strategy starts ranks 1..N-1 by running this script again with
the same command line (Lightning issues #11300 and #2727, Hydra issue #2070). If those children went
through Hydra they would each compose the config again, make their own output folder and, under
`-m`, start the whole sweep again. Instead, the process that went through Hydra hands its resolved
config to the processes it starts through an environment variable, and those skip Hydra entirely:
one run, one output folder, one sweep, written by rank zero.

Launchers that start every rank themselves (`srun`, `torchrun`) run Hydra on every rank; those ranks
agree on the output folder because it comes from the job (see `run_id` below), and ranks other
than zero are told not to write Hydra's files there.
"""

import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from {{cookiecutter.package_name}}.utils import cluster, resume
from {{cookiecutter.package_name}}.utils.checks import ConfigError, RunStopped

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
RUN_CONFIG_ENV = "{{ cookiecutter.package_name | upper }}_RUN_CONFIG"
RUN_ID_ENV = "{{ cookiecutter.package_name | upper }}_RUN_ID"


def run_id(ckpt_path: str | None = None, *, _root_: DictConfig) -> str:
    """Name of this run's folder (`${run_id:${ckpt_path}}` in configs/hydra/default.yaml).

    - Under SLURM: the job (`slurm-<job id>[_<array task>]`), so every rank agrees on it and a
      requeued job comes back to its own folder and checkpoints.
    - With `ckpt_path=last` elsewhere: the newest earlier run that has checkpoints, to continue it.
    - Otherwise the start time.
    Decided once per process tree and handed down in an environment variable, so that jobs a sweep
    submits (submitit), and those jobs when resubmitted, land in the folders the sweep started.
    """
    if RUN_ID_ENV not in os.environ:
        job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
        if job and cluster.slurm_managed():
            task = os.environ.get("SLURM_ARRAY_TASK_ID")
            os.environ[RUN_ID_ENV] = f"slurm-{job}" + (f"_{task}" if task else "")
        else:
            previous = resume.latest_run(Path(_root_.paths.log_dir) / _root_.task_name / "runs")
            resuming = ckpt_path == "last" and previous is not None
            os.environ[RUN_ID_ENV] = previous.name if resuming else time.strftime("%Y-%m-%d_%H-%M-%S")
    return os.environ[RUN_ID_ENV]


# Used in configs/hydra/default.yaml and configs/trainer/ddp_multinode.yaml.
OmegaConf.register_new_resolver("run_id", run_id, replace=True)
OmegaConf.register_new_resolver("cluster", cluster.resolve, replace=True)


def main(task: Callable[[DictConfig], Any], config_name: str) -> None:
    """Entry point of train.py and eval.py."""
    # Lightning warns on every run where `srun` is installed but not used (login nodes, laptops with
    # SLURM tools): the SLURM scripts in slurm/ use srun whenever it matters.
    warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system but is not used")
    # Lightning's own use of a torch API that newer torch deprecates: nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    inherited = os.environ.get(RUN_CONFIG_ENV)
    if inherited is not None and int(os.environ.get("LOCAL_RANK", "0")) > 0:
        # A DDP child started by Lightning: the parent already composed and resolved the config.
        _report_errors(task, OmegaConf.create(inherited))
        return
    if cluster.global_rank() > 0:
        # srun/torchrun rank other than zero: same folder as rank zero, but leave its files to rank zero.
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    if not (CONFIG_DIR / f"{config_name}.yaml").is_file():
        sys.exit(f"ERROR: no configs/{config_name}.yaml at {CONFIG_DIR}; install the project with `pip install -e .`.")

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    def hydra_task(cfg: DictConfig) -> Any:
        OmegaConf.resolve(cfg)  # fix ${run_id:}, ${hydra:...} once, here, for every rank we start
        environment = dict(os.environ)
        os.environ[RUN_CONFIG_ENV] = OmegaConf.to_yaml(cfg)
        try:
            return _report_errors(task, cfg)
        finally:
            # A sweep runs its jobs one after another in this process. Lightning leaves LOCAL_RANK,
            # WORLD_SIZE, MASTER_PORT... in os.environ and the process group open; the next job would
            # take them for a cluster that starts ranks itself and wait forever for its ranks.
            import torch.distributed  # imported already by the task; not at the top, for a fast --help

            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
            os.environ.clear()
            os.environ.update(environment)

    hydra_task()


def _report_errors(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """A ConfigError (a mistake found before any work) or RunStopped (training stopped on purpose)
    is reported in one sentence, not a traceback."""
    try:
        return task(cfg)
    except ConfigError as error:
        _remove_if_only_hydra_files(Path(cfg.paths.output_dir))
        sys.exit(f"ERROR: {error}")
    except InstantiationException as error:  # e.g. a mistyped _target_ or argument on the command line
        _remove_if_only_hydra_files(Path(cfg.paths.output_dir))
        details = " ".join(str(error).split())
        sys.exit(f"ERROR: the config names something that cannot be built: {details}. Check that override.")
    except RunStopped as stop:  # the run folder keeps its checkpoints and summary
        from lightning.pytorch.utilities.rank_zero import rank_zero_only

        if rank_zero_only.rank == 0:
            print(f"STOPPED: {stop}", file=sys.stderr)
        sys.exit(1)


def _remove_if_only_hydra_files(output_dir: Path) -> None:
    """Leave no half-written run folder behind: delete it if Hydra's bookkeeping is all it holds."""
    if not output_dir.is_dir():
        return
    if all(p.name == ".hydra" or p.suffix == ".log" for p in output_dir.iterdir()):
        shutil.rmtree(output_dir, ignore_errors=True)

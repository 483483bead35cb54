"""Run a Hydra task exactly once per run, however many processes the run uses.

Gap this fills: Lightning's `ddp` strategy starts ranks 1..N-1 by running this script again with
the same command line (Lightning issues #11300 and #2727, Hydra issue #2070). If those children went
through Hydra they would each compose the config again, make their own output folder and, under
`-m`, start the whole sweep again. Instead, the process that went through Hydra writes its resolved
config into the run folder (readable by the owner only) and hands its path to the processes it starts;
those skip Hydra entirely: one run, one output folder, one sweep, written by rank zero.

Launchers that start every rank themselves (`srun`, `torchrun`) run Hydra on every rank; those ranks
agree on the output folder because it comes from the job (see `run_id` below), and ranks other
than zero are told not to write Hydra's files there.

Everything a run sets in this process (the run id, Lightning's rank variables, the process group)
is undone when it ends, so several runs can share a process (a sweep, a notebook, a test).
"""

import functools
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from {{cookiecutter.package_name}}.harness import (
    checks,
    cluster,
    console,
    resume,
    run_info,
    sweep_resume,
)
from {{cookiecutter.package_name}}.harness.checks import ConfigError, RunStopped

log = logging.getLogger(__name__)
# Inside the package, so that `pip install .` ships them; `--config-dir DIR` adds a folder of your own.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# The path of the resolved config, for the DDP ranks Lightning starts, and the process that starts them; the
# folder of this run.
RUN_CONFIG_ENV = "{{ cookiecutter.package_name | upper }}_RUN_CONFIG"
LAUNCHER_ENV = "{{ cookiecutter.package_name | upper }}_RUN_LAUNCHER"
RUN_ID_ENV = "{{ cookiecutter.package_name | upper }}_RUN_ID"
# What Lightning and torch.distributed set in os.environ during a run (launchers, seeding): removed after
# each run, so that the next run in this process does not take them for a cluster that starts ranks itself.
RUN_VARIABLES = (
    "MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "RANK",
    "PL_GLOBAL_SEED", "PL_SEED_WORKERS", "CUBLAS_WORKSPACE_CONFIG", RUN_CONFIG_ENV, LAUNCHER_ENV,
)  # fmt: skip


def run_id(ckpt_path: str | None = None, sweep: bool = False, *, _root_: DictConfig) -> str:
    """Name of this run's folder (`${run_id:${ckpt_path}}` in configs/hydra/default.yaml), or with `sweep` of this
    sweep's (`${run_id:${ckpt_path},true}`).

    - Under SLURM: the job (`slurm-<job id>[_<array task>]`), so every rank agrees on it and a requeued
      job comes back to its own folder and checkpoints. A second run in the same job gets a folder of its
      own: an `srun` step after the first adds `.<step>`; a run started without srun adds `-2`, `-3`...
      unless it continues (`ckpt_path=last`: the newest of the job's folders that has checkpoints).
    - With `ckpt_path=last` elsewhere: the newest earlier run that has checkpoints, to continue it; for a grid sweep
      the newest earlier sweep of the same settings (harness/sweep_resume.py continues its jobs).
    - Under torchrun: `torchrun-<its --rdzv-id>`, the same on every rank; with `--standalone` (which makes up
      a UUID for it), the time torchrun started, which every rank reads from the one torchrun process.
    - Otherwise the start time (under mpirun: rank zero's, broadcast to the other ranks).
    Decided once per run and handed down in an environment variable, so that jobs a sweep submits
    (submitit), and those jobs when resubmitted, land in the folders the sweep started.
    """
    if RUN_ID_ENV not in os.environ:
        runs = Path(_root_.paths.log_dir) / _root_.task_name / ("multiruns" if sweep else "runs")
        job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
        if job and cluster.slurm_managed():
            os.environ[RUN_ID_ENV] = _slurm_run_id(job, runs, resuming=ckpt_path == "last")
        else:
            previous = sweep_resume.latest_sweep(runs, _root_.hydra) if sweep else resume.latest_run(runs)
            torchrun = os.environ.get("TORCHELASTIC_RUN_ID", "none")  # the same on every rank and restart
            if ckpt_path == "last" and previous is not None:
                name = previous.name
            elif (started := cluster.torchrun_standalone_start()) is not None:
                name = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(started))
            elif torchrun != "none":  # ranks started by torchrun name the folder alone: not from their clocks
                name = f"torchrun-{torchrun}"
            else:
                name = time.strftime("%Y-%m-%d_%H-%M-%S")
            os.environ[RUN_ID_ENV] = cluster.agreed(name)  # under mpirun: rank zero's, for every rank
    return os.environ[RUN_ID_ENV]


def _slurm_run_id(job: str, runs: Path, resuming: bool) -> str:
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    name = f"slurm-{job}" + (f"_{task}" if task else "")
    step = os.environ.get("SLURM_STEP_ID", "")
    if step.isdigit() and int(step) < 0xFFFFFFF0:  # an srun step; the batch script's own step has a huge id
        # Every rank of a step computes this alone, so it must not depend on which folders exist yet.
        # A requeued job numbers its steps from 0 again and so comes back to the same folders.
        return name if step == "0" else f"{name}.{step}"
    if "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun in the batch script: every rank decides alone too
        return name
    # One process decides (Lightning starts the other ranks): a later run of the job gets a new folder.
    later = {int(p.name.rpartition("-")[2]): p for p in runs.glob(f"{name}-*") if p.name.rpartition("-")[2].isdigit()}
    if resuming:
        newest = resume.latest_run(runs, among=[runs / name, *later.values()])
        return newest.name if newest else name
    return f"{name}-{max(later, default=1) + 1}" if (runs / name).exists() else name


# What this process found in each run folder before Hydra wrote this command's config into it: the earlier
# config files of a run it continues ({} for a new folder). A command refused before any work puts them back.
_FOUND: dict[Path, dict[str, bytes]] = {}


def config_folder(subdir: str) -> str:
    """`hydra.output_subdir` (`${config_folder:.hydra}` in configs/hydra/default.yaml), which Hydra reads just
    before it writes the command's config there: the files there are kept first (in memory)."""
    folder = Path(HydraConfig.get().runtime.output_dir)
    if folder not in _FOUND:  # read again later (Lightning's launcher), by then with this command's files
        _FOUND[folder] = {p.name: p.read_bytes() for p in (folder / subdir).glob("*.yaml")}
    return subdir


# Used in configs/hydra/default.yaml and configs/trainer/ddp_multinode.yaml.
OmegaConf.register_new_resolver("run_id", run_id, replace=True)
OmegaConf.register_new_resolver("config_folder", config_folder, replace=True)
OmegaConf.register_new_resolver("cluster", cluster.resolve, replace=True)


def main(
    task: Callable[[DictConfig], Any],
    config_name: str,
    prepare: Callable[[DictConfig, list[str]], DictConfig] | None = None,
) -> None:
    """Entry point of train.py, eval.py and generate.py. A DDP rank that Lightning started runs the config handed
    down to it (`_run_handed_down`); any other process composes the config through Hydra, resolves it (`_resolved`)
    and runs the task, handing the config over to the ranks it starts (`_run`). `prepare(cfg, overrides)` may change
    the composed config before it is resolved (eval.py takes the trained run's model and data)."""
    console.quiet()
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a rank torchrun started: torchrun killed outright takes it along
        cluster.end_with_launcher(os.getppid())
    handed_down = os.environ.get(RUN_CONFIG_ENV)
    if handed_down is not None and int(os.environ.get("LOCAL_RANK", "0")) > 0:
        _run_handed_down(task, Path(handed_down))
        return
    try:
        checks.check_launcher()  # mpirun's ranks: before Hydra, which needs them to name the run folder
    except ConfigError as error:
        sys.exit(f"ERROR: {error}")
    if cluster.global_rank() > 0:
        # srun/torchrun/mpirun rank other than zero: same folder as rank zero, but leave its files to rank zero.
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    if not (CONFIG_DIR / f"{config_name}.yaml").is_file():
        sys.exit(f"ERROR: no {config_name}.yaml in {CONFIG_DIR}; reinstall the project: `pip install -e .`.")

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    def hydra_task(cfg: DictConfig) -> Any:
        console.quiet()  # again: jobs that a sweep's launcher (submitit) runs start here, not in main()
        _config_composed()
        output_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            if (metrics := sweep_resume.earlier_launch(cfg)) is not None:  # a sweep's job that finished before
                return metrics
            return _run(task, _resolved(cfg, prepare))
        finally:
            _FOUND.pop(output_dir, None)  # what it found is this command's to put back, not a later one's

    inherited = {RUN_ID_ENV: os.environ.get(RUN_ID_ENV)}  # set by a sweep that submitted this job, or torchrun's script
    try:
        _report_composition_errors(hydra_task)
    finally:
        _restore(inherited)  # without one, the next run in this process gets a folder of its own
        cluster.stop_watching_requeue_signal()


def _run_handed_down(task: Callable[[DictConfig], Any], handover: Path) -> None:
    """A DDP child started by Lightning: the parent already composed and resolved the config."""
    cluster.end_with_launcher(int(os.environ.get(LAUNCHER_ENV, os.getppid())))
    try:
        _report_errors(task, OmegaConf.load(handover), report=False)  # rank zero says it
    finally:
        cluster.end_process_group()


def _resolved(cfg: DictConfig, prepare: Callable[[DictConfig, list[str]], DictConfig] | None) -> DictConfig:
    """The composed config as every rank of the run gets it: prepared, named, resolved once (and printed)."""
    overrides = run_info.typed_overrides()
    if prepare is not None:
        cfg = prepare(cfg, overrides)
    checks.keep_composed(cfg)  # before resolving: a bad value is named where it was typed
    summary = Path(cfg.paths.output_dir) / "summary.json"  # a continued run's: a new run has none yet
    earlier = run_info.earlier_run(summary)  # read once: for the warning and the name
    difference = run_info.continued_differently(earlier.get("overrides", []), overrides) if summary.is_file() else None
    if difference and cluster.global_rank() == 0:
        log.warning(difference)
    if "run_name" in cfg and cfg.run_name is None:  # e.g. "trainer=ddp lr=1e-3": what the run goes on with
        cfg.run_name = run_info.run_name(earlier, overrides)
    try:
        resolve_except_env(cfg)  # fix ${run_id:}, ${hydra:...} once, here, for every rank we start
    except ConfigError as error:  # a `${...}` that cannot be resolved: before any work
        _leave_as_found(Path(HydraConfig.get().runtime.output_dir))
        sys.exit(f"ERROR: {error}")
    if cfg.get("extras", {}).get("print_config") and cluster.global_rank() == 0:
        run_info.print_config(cfg)
    return cfg


def _run(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """`task(cfg)`, the resolved config handed over to the ranks it starts. A sweep runs its jobs one after another
    in this process, and so may a notebook or a script calling main() twice: no process group and none of this
    run's variables are left behind."""
    before = {key: os.environ.get(key) for key in RUN_VARIABLES}
    handover = _write_handover(cfg)
    try:
        return _report_errors(task, cfg, report=cluster.global_rank() == 0)
    finally:
        cluster.end_process_group()
        if handover is not None:
            handover.unlink(missing_ok=True)  # it holds resolved values, ${oc.env:...} secrets included
        _restore(before)


def _restore(saved: dict[str, str | None]) -> None:
    """The environment variables in `saved` as they were: set to their value, or removed."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def resolve_except_env(cfg: DictConfig) -> None:
    """Resolve every `${...}` in `cfg` in place, but keep text read from the environment (`${oc.env:...}`) as it
    is written: each process reads it itself on use, and what is printed, logged (hparams.yaml, TensorBoard,
    W&B) or handed to other ranks holds the interpolation, not the secret it may read. A number read from the
    environment (`model.optimizer.lr=${oc.env:LR,0.01}`) becomes that number: oc.env gives text, which nothing
    that wants a number takes, and Hydra's command line cannot nest `${oc.decode:...}` around it.

    Gap this fills: OmegaConf.resolve leaves a value that was escaped (`\\${x}`) as `${x}`, an interpolation
    again, so the resolved config would resolve it a second time on use; here such text is escaped again.
    """
    from_env = [(parent, key, raw) for parent, key, raw in _raw_strings(cfg) if "${oc.env:" in raw]
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as error:
        raise ConfigError(_unresolvable(cfg) or f"the config cannot be resolved: {error}") from None
    for parent, key, raw in _raw_strings(cfg):
        if "${" in raw:  # text that came out of an escape: keep it text
            parent[key] = raw.replace("${", "\\${")
    for parent, key, raw in from_env:
        number = _number(parent[key])
        parent[key] = raw if number is None else number


def _unresolvable(cfg: DictConfig) -> str | None:
    """The sentence naming the first setting whose `${...}` cannot be resolved (OmegaConf's error names none)."""
    for parent, key, raw in _raw_strings(cfg):
        try:
            parent[key]
        except OmegaConfBaseException as error:
            name = parent._get_full_key(key)
            reason = str(error).splitlines()[0].split(" raised while resolving interpolation: ")[-1].strip('"')
            return f"{name}={raw} cannot be resolved ({reason}): give {name} a value, or set what it reads."
    return None


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def _raw_strings(node: DictConfig | ListConfig) -> list[tuple[DictConfig | ListConfig, Any, str]]:
    """(container, key, value as written) of every string in the config, interpolations unresolved."""
    strings = []
    for key in node.keys() if isinstance(node, DictConfig) else range(len(node)):
        child = node._get_node(key)
        if isinstance(child, DictConfig | ListConfig) and not child._is_none() and not child._is_interpolation():
            strings += _raw_strings(child)
        elif isinstance(child._value(), str):
            strings.append((node, key, child._value()))
    return strings


# Hydra prints an error found while it composes the config (a misspelt key) in several lines and a tip, and
# raises it to its caller instead only with HYDRA_FULL_ERROR set. main() sets that until the config is composed,
# unless the user did, and says so in the environment: jobs that a sweep submits (submitit) inherit both.
FULL_ERROR_SET_HERE = "{{ cookiecutter.package_name | upper }}_SET_HYDRA_FULL_ERROR"


def _report_composition_errors(hydra_task: Callable[[], Any]) -> None:
    """Hydra answers a misspelt key (`trainer.max_epoch=1`) by advising `+trainer.max_epoch=1`, which then
    fails when the trainer is built: here the user gets one sentence naming the nearest key instead."""
    if "HYDRA_FULL_ERROR" in os.environ:  # the user asked for Hydra's own reports, in full
        hydra_task()
        return
    os.environ["HYDRA_FULL_ERROR"] = os.environ[FULL_ERROR_SET_HERE] = "1"
    try:
        hydra_task()
    except Exception as error:  # raised while composing: errors of the task are Hydra's to report
        _config_composed()
        sentence = checks.misspelt_key(error, sys.argv[1:])
        if sentence is None:
            from hydra._internal.utils import run_and_report

            run_and_report(functools.partial(_raise, error))  # reported as Hydra reports it (and exits)
        sys.exit(f"ERROR: {sentence}")
    finally:
        _config_composed()


def _config_composed() -> None:
    """From here on Hydra reports errors itself, in its short form."""
    if os.environ.pop(FULL_ERROR_SET_HERE, None):
        os.environ.pop("HYDRA_FULL_ERROR", None)


def _raise(error: Exception) -> None:
    raise error


def _write_handover(cfg: DictConfig) -> Path | None:
    """The resolved config as a file that only this user can read, its path in RUN_CONFIG_ENV.

    A file, not the environment: the environment is limited to 128 KiB on Linux and is inherited by every
    subprocess (and readable in /proc), resolved secrets included.
    """
    if cluster.global_rank() > 0:  # srun/torchrun ranks start no processes of their own
        return None
    path = Path(cfg.paths.output_dir) / ".hydra" / "resolved-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(OmegaConf.to_yaml(cfg))
    os.environ[RUN_CONFIG_ENV] = str(path)
    os.environ[LAUNCHER_ENV] = str(os.getpid())
    return path


def _report_errors(task: Callable[[DictConfig], Any], cfg: DictConfig, report: bool = True) -> Any:
    """A ConfigError (a mistake found before any work) or RunStopped (training stopped on purpose)
    is reported in one sentence, not a traceback; by rank zero alone (`report`), as every rank finds the same."""
    try:
        return task(cfg)
    except ConfigError as error:
        _leave_as_found(Path(cfg.paths.output_dir))
        sys.exit(f"ERROR: {error}" if report else 1)
    except InstantiationException as error:  # e.g. a mistyped _target_ or argument on the command line
        _leave_as_found(Path(cfg.paths.output_dir))
        details = " ".join(str(error).split())
        message = f"ERROR: the config names something that cannot be built: {details}. Check that override."
        sys.exit(message if report else 1)
    except RunStopped as stop:  # the run folder keeps its checkpoints and summary
        from lightning.pytorch.utilities.rank_zero import rank_zero_only

        if rank_zero_only.rank == 0:
            print(f"STOPPED: {stop}", file=sys.stderr)
        sys.exit(1)
    except SystemExit as stop:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(stop, SIGTERMException):  # it would exit with 0: a run stopped by `kill` ends as such runs do
            sys.exit(128 + signal.SIGTERM)
        raise


# What a run writes before it trains: Hydra's files, the log, summary.json, the loggers' folders.
BEFORE_TRAINING = {".hydra", "summary.json", "csv", "tensorboard", "wandb"}


def _leave_as_found(output_dir: Path) -> None:
    """Leave the run folder as this command found it after a mistake found before training (in the config, or
    when the data is set up), by the process that started the run. A run it continued gets its own config files
    back (eval.py and predict.py build its model from them). A new folder goes if it holds nothing but what a run
    writes before training: one with a checkpoint or anything else (`hydra.run.dir` pointed somewhere of yours)
    stays."""
    found = _FOUND.pop(output_dir, None)
    if found is None or not output_dir.is_dir():  # a rank that did not start the run
        return
    if found:
        for name, content in found.items():
            (output_dir / ".hydra" / name).write_bytes(content)
    elif all(p.name in BEFORE_TRAINING or p.suffix == ".log" for p in output_dir.iterdir()):
        if not any(output_dir.rglob("*.ckpt")):
            shutil.rmtree(output_dir, ignore_errors=True)

"""Hyperparameter search with Optuna: `python train.py -m hparams_search=digits_optuna`.

Gap this fills: the released hydra-optuna-sweeper (1.3.0) requires optuna<3, and no Hydra sweeper can prune: a
trial is a whole run in another process (or a SLURM job), so the study never sees its metric before it ends.
Here the sweeper (`hydra/sweeper=optuna`, registered in src/hydra_plugins/) asks Optuna for each trial's
parameters and launches the trial through the configured launcher (in this process, or as a SLURM job) as an
ordinary run; the run reports its metric to the study after every validation and stops early when the study's
pruner says so (harness/callbacks/optuna_pruning.py); the sweeper then tells the study how the trial ended.

The study lives in a journal file in the sweep folder (appends under a lock that works on NFS, unlike
SQLite), which every trial opens too. The same command again continues the study: the trials it already
has count towards `n_trials`, and a trial left running by an interruption is marked failed, not counted, and
its parameters are tried again. One sweeper process per sweep folder (trial numbers are the jobs' folder names):
a second one is refused while the first lives (`search_lock`).
"""

import errno
import fcntl
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus, configure_log
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from {{cookiecutter.package_name}}.harness.checks import ConfigError

try:  # an optional extra: import_optuna() says how to install it, where a search needs it
    from optuna.trial import TrialState
except ImportError:
    TrialState = None

log = logging.getLogger(__name__)

INSTALL = 'hparams_search needs Optuna (4 or later): pip install -e ".[optuna]"'


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL) from None
    if int(optuna.__version__.split(".")[0]) < 4:
        raise ConfigError(f"{INSTALL}; this environment has optuna {optuna.__version__}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweeper says what happens, once
    return optuna


def open_storage(storage: str) -> Any:
    """A database URL (`sqlite:///...`, `postgresql://...`) as Optuna opens it; any other string is the path of a
    journal file, created if missing."""
    optuna = import_optuna()
    if "://" in storage:
        return optuna.storages.get_storage(storage)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(storage))


def open_trial(storage: str, study_name: str, number: int, pruner: Any) -> Any:
    """The running trial `number` of a study, for a run to report to; None if the study has no such trial running
    (the sweeper gave up on it, or this run is not one of its trials)."""
    optuna = import_optuna()
    backend = open_storage(storage)
    study = optuna.load_study(study_name=study_name, storage=backend, pruner=pruner)
    try:
        trial_id = backend.get_trial_id_from_study_id_trial_number(backend.get_study_id_from_name(study_name), number)
    except KeyError:
        return None
    if backend.get_trial(trial_id).state != TrialState.RUNNING:
        return None
    return optuna.trial.Trial(study, trial_id)


def search_lock(folder: Path) -> Any:
    """Hold `folder`/search.lock while this sweeper lives, or refuse: another sweeper on the same study would mark
    this one's running trials interrupted and tell them again. A POSIX lock (fcntl.lockf): the OS drops it when
    the process ends, however it ends (no stale lock after a kill), and NFS shares it between hosts (a SLURM
    search's sweeper runs on a login node, and a second one may start on another). The file names the holder."""
    path = folder / "search.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # kept open while the search runs: closing it releases the lock
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EAGAIN):  # a file system without locks (Lustre without -o flock)
            log.warning(f"{path} cannot be locked here ({error.strerror}): a second search of it would not be refused")
            return handle
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            f"a search is already running in {folder} ({holder}): wait for it to end, or start a new study with "
            "hydra.sweeper.study_name=<another name>."
        ) from None
    handle.truncate(0)
    handle.write(f"process {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    return handle


def distribution(override: Override) -> Any:
    """Hydra's sweep syntax as an Optuna distribution: `interval(a, b)` a float in [a, b] (`tag(log, ...)` sampled
    in log space, `tag(int, ...)` an integer), `range(a, b[, step])` an integer (or a float on a grid) as
    Python's range, `choice(x, y, ...)` or `x,y,...` one of the values."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if "int" in value.tags:
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    if override.is_range_sweep() and not value.shuffle:
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError("the range is empty")
        low, high, step = min(values), max(values), abs(value.step)
        if all(isinstance(v, int) for v in values):
            return IntDistribution(low, high, step=step)
        return FloatDistribution(low, high, step=step)
    # choice(...), a,b,c, a shuffled range: the values as the command line writes them (a list as "[64,64]")
    return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))


def search_space(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The sweep overrides as distributions by key; the other overrides, which every trial gets unchanged. A key
    given twice takes the later value (the command line comes after the search config's params)."""
    parsed: dict[str, Override] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        parsed.pop(override.get_key_element(), None)  # the later one, in its place in the order
        parsed[override.get_key_element()] = override
    space, fixed = {}, []
    for key, override in parsed.items():
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        try:
            space[key] = distribution(override)
        except ValueError as error:
            raise ConfigError(f"{override.input_line} cannot be searched: {error}.") from None
    return space, fixed


def as_override(value: Any) -> str:
    """A sampled value as the command line writes it."""
    if isinstance(value, bool) or value is None:
        return Transformer.encode(value) if value is None else str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


class TrialFailed(Exception):
    """A trial's run ended with sys.exit: the trial failed. `stop_search`: a mistake in the config (the next
    trials would make it too), not a run that went wrong."""

    def __init__(self, message: str, stop_search: bool) -> None:
        super().__init__(message)
        self.stop_search = stop_search


class TrialTask:
    """The task, as each trial runs it. A run that ends itself with sys.exit (a mistake in its config, a
    non-finite loss: see harness/launch.py) fails its trial instead of ending the search; Ctrl-C still ends the
    search (Lightning ignores SIGINT from then on, and exits). Picklable: submitit sends it to the job."""

    def __init__(self, task: TaskFunction) -> None:
        self.task = task

    def __call__(self, cfg: DictConfig) -> Any:
        before = signal.getsignal(signal.SIGINT)
        try:
            return self.task(cfg)
        except SystemExit as stop:
            if before is not signal.SIG_IGN and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                raise
            if isinstance(stop.code, str):  # launch.py's one-sentence report of a mistake
                raise TrialFailed(stop.code.removeprefix("ERROR: "), stop_search=True) from None
            raise TrialFailed(f"the run stopped (exit status {stop.code}; see its log)", stop_search=False) from None


class Search:
    """What `hydra/sweeper=optuna` does (configs/hydra/sweeper/optuna.yaml lists the settings)."""

    def __init__(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
        study_name: str,
        storage: str,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: DictConfig | None,
        pruner: DictConfig | None,
        params: DictConfig | None,
    ) -> None:
        self.config = config
        self.study_name, self.storage, self.direction = study_name, str(storage), str(direction)
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.sampler, self.params = sampler, params or {}
        self.metric = config.get("optimized_metric")
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=TrialTask(task_function), config=config
        )

    def run(self, arguments: list[str]) -> None:
        optuna = import_optuna()
        if not self.metric:
            raise ConfigError("hydra/sweeper=optuna needs optimized_metric=<a metric the run logs>, e.g. val/acc.")
        if self.direction not in ("minimize", "maximize"):
            raise ConfigError(f"hydra.sweeper.direction={self.direction}: use minimize or maximize.")
        space, fixed = search_space([f"{key}={value}" for key, value in self.params.items()] + list(arguments))
        if not space:
            raise ConfigError(
                "nothing to search: give hydra.sweeper.params (see configs/hparams_search/) or a sweep on the "
                "command line, e.g. model.optimizer.lr='tag(log, interval(1e-4, 1e-1))'."
            )
        with search_lock(Path(str(self.config.hydra.sweep.dir))):
            self._search(optuna, space, fixed)

    def _search(self, optuna: Any, space: dict[str, Any], fixed: list[str]) -> None:
        study = optuna.create_study(
            study_name=self.study_name, storage=open_storage(self.storage), direction=self.direction,
            load_if_exists=True,
        )  # fmt: skip
        if study.direction.name.lower() != self.direction:
            raise ConfigError(
                f"the study {self.study_name} in {self.storage} was started to {study.direction.name.lower()}: "
                "give another hydra.sweeper.study_name to start a new one."
            )
        self._recover_interrupted(study)
        done = len(counted(study))
        if self.sampler is not None:
            sampler = OmegaConf.to_container(self.sampler, resolve=True)
            if done and sampler.get("seed") is not None:  # a resumed search must not draw its first points again
                sampler["seed"] += len(study.get_trials(deepcopy=False))
            study.sampler = instantiate(sampler)
        log.info(
            f"Study {self.study_name} ({self.direction} {self.metric}): {done} of {self.n_trials} trials done; "
            f"storage {self.storage}"
        )
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            self._launch(study, trials, fixed)
            done += len(trials)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)  # not into the last run's log
        self._report(study)

    def _recover_interrupted(self, study: Any) -> None:
        """Trials left running by an interruption (Ctrl-C, a kill, a lost node): failed, not counted, and their
        parameters tried again first."""
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = open_trial(self.storage, self.study_name, frozen.number, pruner=None)
            if trial is None:  # it ended meanwhile
                continue
            trial.set_user_attr("interrupted", True)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            study.enqueue_trial(frozen.params)
            log.info(f"Trial {frozen.number} was interrupted: marked failed, its parameters are tried again")

    def _launch(self, study: Any, trials: list[Any], fixed: list[str]) -> None:
        """Run the trials (together where the launcher can) and tell the study how each ended. Each job's number,
        and so its folder, is its trial's number: the run finds its trial by it (callbacks/optuna_pruning.yaml)."""
        overrides = [[*fixed, *(f"{k}={as_override(v)}" for k, v in trial.params.items())] for trial in trials]
        numbers = [trial.number for trial in trials]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            returns = self._returns(overrides, numbers[0])
        else:  # not consecutive: one launch each, so that job numbers stay trial numbers
            returns = [r for number, o in zip(numbers, overrides, strict=True) for r in self._returns([o], number)]
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        now = {t.number: t for t in study.get_trials(deepcopy=False)}
        stop = None
        for trial, result in zip(trials, returns, strict=True):
            # Ended by someone else meanwhile (by hand, or a second sweeper of this study from another sweep folder,
            # which search_lock cannot see): left as it is (skip_if_finished: also if it ends before the tell).
            if now[trial.number].state.is_finished():
                state = now[trial.number].state.name.lower()
                log.warning(f"Trial {trial.number} was already ended ({state}) by another process: left as it is")
            elif isinstance(result, Exception):
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                log.warning(f"Trial {trial.number} failed: {result}")
                if getattr(result, "stop_search", False):
                    stop = f"trial {trial.number}: {result}"
            elif "pruned" in now[trial.number].user_attrs:
                study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)  # its value: the last it reported
                pruned = now[trial.number].user_attrs["pruned"]
                log.info(f"Trial {trial.number} pruned after validation {pruned['validation']}")
            elif self.metric not in result:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                stop = f"optimized_metric={self.metric} is not among the run's metrics: {sorted(result)}."
            else:
                frozen = study.tell(trial, float(result[self.metric]), skip_if_finished=True)  # a NaN fails it
                log.info(f"Trial {trial.number} {frozen.state.name.lower()}: {self.metric}={result[self.metric]:.6g}")
        if stop is not None:
            raise ConfigError(stop)

    def _returns(self, overrides: list[list[str]], first_number: int) -> list[Any]:
        """Each job's metrics, or the exception that failed it (a whole batch fails if the launcher fails)."""
        try:
            returns = self.launcher.launch(overrides, initial_job_idx=first_number)
        except Exception as error:
            return [error] * len(overrides)
        # A failed job's exception: Hydra 1.3's public `return_value` raises it, after printing an error line of its
        # own (hydra/core/utils.py JobReturn); the sweeper reports failures itself, in one line.
        return [r.return_value if r.status == JobStatus.COMPLETED else r._return_value for r in returns]

    def _report(self, study: Any) -> None:
        """The best trial, on the console and in search.json (every trial: number, state, value, parameters)."""
        trials = counted(study)
        states = [t.state.name.lower() for t in trials]
        count = f"{len(trials)} trial{'s' if len(trials) != 1 else ''}"
        words = {"complete": "complete", "pruned": "pruned", "fail": "failed"}
        tally = ", ".join(f"{states.count(s)} {word}" for s, word in words.items() if s in states)
        summary: dict[str, Any] = {
            "study": self.study_name, "storage": self.storage, "direction": self.direction, "metric": self.metric,
            "trials": [
                {"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params}
                for t in trials
            ],
        }  # fmt: skip
        if any(t.state == TrialState.COMPLETE for t in trials):
            best = study.best_trial
            summary["best"] = {"number": best.number, "value": best.value, "params": best.params}
            chosen = " ".join(f"{k}={as_override(v)}" for k, v in best.params.items())
            log.info(f"{count} ({tally}). Best: trial {best.number}, {self.metric}={best.value:.6g}: {chosen}")
        else:
            log.info(f"{count} ({tally}); none completed, so no best trial yet")
        path = Path(str(self.config.hydra.sweep.dir)) / "search.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(temporary, path)


def counted(study: Any) -> list[Any]:
    """The trials that count towards n_trials: those that ended (completed, pruned, failed), not interrupted."""
    ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return [t for t in ended if not t.user_attrs.get("interrupted")]

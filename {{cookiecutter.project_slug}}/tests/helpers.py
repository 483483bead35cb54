"""What the tests share: running the project's scripts as a user would (real processes, runs under a temporary
PROJECT_ROOT), the overrides that keep runs small, and the checkers several test files use. Tests import from
here, never from each other."""

import csv
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from {{cookiecutter.package_name}}.compare import NO_CURVES

# launch registers the ${run_id:} and ${cluster:} resolvers the configs use
from {{cookiecutter.package_name}}.harness import consolidate, launch, resume

PROJECT = Path(__file__).resolve().parents[1]
CONFIGS = launch.CONFIG_DIR

# Overrides that keep runs small. The digits: a few batches are enough to check ranks, folders and summaries.
FAST = ["trainer.max_epochs=1", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "logger=csv"]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
SHARDED = ["trainer=model_parallel", "trainer.accelerator=cpu", "trainer.devices=2"]  # FSDP2 over 2 CPU ranks
MID_EPOCH = ["callbacks.last_checkpoint.every_n_train_steps=50"]  # checkpoints at steps 50, 100, ... of 158
# The GPT in one layer and 10 steps: for what a trained GPT checkpoint is used for (predict, export)
TINY_GPT = ["experiment=gpt", "trainer=cpu", "data.corpus_mb=0.125", "model.net.n_layer=1", "model.sample_tokens=0"]
TINY_GPT += ["logger=csv", "trainer.max_epochs=1", "+trainer.limit_train_batches=10", "+trainer.limit_val_batches=1"]
TINY_GPT += ["test=false"]

# Deterministic and slow enough to be killed mid-run: 158 steps per epoch on one process. Two epochs: a kill in
# the second proves the resumed order is that epoch's, and the runs stay short (CI's time is a budget).
EXACT = ["trainer.deterministic=true", "trainer.max_epochs=2", "data.batch_size=8", "logger=csv", "test=false"]

# 40 steps an epoch (of 58 on 2 ranks): killed in the second (and last) epoch, after the checkpoint at step 50.
# Two layers of the example's four: what a kill tests is the same, the steps cheaper.
GPT_SMALL = ["experiment=gpt", "data.corpus_mb=0.25", "trainer.max_epochs=2", "trainer.deterministic=true"]
GPT_SMALL += ["model.sample_tokens=0", "logger=csv", "test=false", "+trainer.limit_train_batches=40"]
GPT_SMALL += ["model.net.n_layer=2"]

# The project's own logger: the one `pip install -e ".[dev]"` installs (pyproject.toml); wandb logs offline.
OWN_LOGGER = "logger={{ cookiecutter.logger }}"
OFFLINE = {"WANDB_MODE": "offline"}


def drew_curves(path: Path, output: str) -> bool:
    """compare.py's learning curves in `path`; without matplotlib (the plots extra), its line saying what to install."""
    if importlib.util.find_spec("matplotlib") is None:
        return NO_CURVES in output
    return path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 10_000


def needs(module: str, extra: str = ""):
    """Import an optional extra's module, or skip a test about it on a render that does not install it; `extra`
    names the extra where it is not the package's own name (pyproject.toml's optional-dependencies)."""
    extra = extra or module.split(".")[0]
    return pytest.importorskip(module, reason=f'{module} is in an optional extra: pip install -e ".[{extra}]"')


class Runs:
    """Runs the project's scripts with PROJECT_ROOT pointing at a temporary folder."""

    def __init__(self, root: Path, project: Path = PROJECT) -> None:
        self.root = root
        self.project = project  # another copy of the project: the recipe tests write files into one

    def __call__(
        self, script: str, *overrides: str, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "PROJECT_ROOT": str(self.root), "PYTHONPATH": str(self.project / "src"), **(env or {})}
        result = subprocess.run(
            [sys.executable, str(self.project / script), *overrides],
            cwd=self.project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{script} {' '.join(overrides)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def folders(self, task: str = "train") -> list[Path]:
        """Every run folder (a folder holding Hydra's .hydra/) under logs/<task>."""
        return sorted(p.parent for p in (self.root / "logs" / task).rglob(".hydra"))

    def summary(self, folder: Path) -> dict:
        return json.loads((folder / "summary.json").read_text())


def csv_rows(folder: Path) -> list[dict]:
    """The rows the CSV logger (logger=csv) wrote for the run in `folder`."""
    with open(folder / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


BACKGROUND: list[subprocess.Popen] = []


def in_background(command: list[str], **options) -> subprocess.Popen:
    """A run started in its own process group, for a test to stop it (signals, kills); killed after the test if the
    test failed before stopping it: left running, it would slow every later test."""
    process = subprocess.Popen(command, start_new_session=True, **options)
    BACKGROUND.append(process)
    return process


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


TOOLS = "python|pip|pre-commit|pytest|cruft|sbatch|srun|salloc|squeue|scontrol|scancel|tail|torchrun|mpirun"
TOOLS += "|tensorboard|wandb"


def readme_commands() -> list[str]:
    """The README's commands in the order they appear, each once: the lines of its ```bash blocks and its inline
    `python ...`-style commands, comments cut."""
    text = (PROJECT / "README.md").read_text()
    found = []  # (offset in the README, command)
    for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
        offset = block.start(1)
        for line in block.group(1).splitlines(keepends=True):
            found.append((offset, re.split(r"\s+#", line)[0].strip()))
            offset += len(line)
    found += [(inline.start(), inline.group(1)) for inline in re.finditer(rf"`((?:{TOOLS}) [^`]*)`", text)]
    return list(dict.fromkeys(command for _, command in sorted(found) if command))


# Kill and resume (README, "Resume")


def start(run, *overrides: str, console: Path | None = None, launcher: Sequence[str] = ()) -> subprocess.Popen:
    """train.py in the background, in its own process group, started by `launcher` (`-m torch.distributed.run
    ...`) or alone; what it prints is added to the file `console`, if given."""
    env = dict(os.environ, PROJECT_ROOT=str(run.root), PYTHONPATH=str(run.project / "src"))
    with open(console or os.devnull, "a") as output:  # the process keeps its own copy of the file open
        return in_background(
            [sys.executable, *launcher, str(run.project / "train.py"), *overrides],
            cwd=run.project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def saved(run) -> int:
    return max((resume.saved_step(p) for p in run.root.glob("logs/train/runs/*/checkpoints/last.ckpt")), default=-1)


def kill_after_checkpoint(run, process: subprocess.Popen, step: int = 0) -> None:
    """SIGKILL the whole run (every rank) once a last.ckpt of at least `step` training steps exists."""
    deadline = time.monotonic() + 300
    while saved(run) < max(step, 0):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def kill_during_next_save(run, process: subprocess.Popen, written: str) -> None:
    """SIGKILL the whole run once `written` (a path under checkpoints/) exists and the next save has begun."""
    deadline = time.monotonic() + 300
    while not list(run.root.glob(f"logs/train/runs/*/checkpoints/{written}")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    while not list(run.root.glob("logs/train/runs/*/checkpoints/.last.ckpt.partial")):  # the next save begins
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def weights(folder: Path) -> dict:
    last = folder / "checkpoints" / "last.ckpt"
    if last.is_dir():  # a sharded run's (trainer=model_parallel)
        return consolidate.full_checkpoint(last)["state_dict"]
    return torch.load(last, weights_only=True)["state_dict"]


def assert_resumes_bit_identical(
    run, tmp_path: Path, *overrides: str, kill_at: int = 0, weights_within: float = 0.0
) -> None:
    """Kill a run once it has a checkpoint of `kill_at` steps or more, resume it with ckpt_path=last,
    and compare with a run never stopped: same steps, same metrics, bit-identical weights (or, where
    `weights_within` is given, weights that differ by no more than that)."""
    kill_after_checkpoint(run, start(run, *overrides), kill_at)
    (killed,) = run.folders()
    step = resume.saved_step(killed / "checkpoints" / "last.ckpt")
    assert step >= kill_at
    if MID_EPOCH[0] in overrides:  # the resume really starts part-way through an epoch (not a multiple of 50)
        assert step % 50 == 0
    assert not (killed / "summary.json").exists() or run.summary(killed)["status"] != "finished"
    run("train.py", *overrides, "ckpt_path=last")
    assert run.folders() == [killed]  # continued in the same folder

    undisturbed = type(run)(tmp_path / "undisturbed", run.project)
    undisturbed("train.py", *overrides)
    (reference,) = undisturbed.folders()
    resumed, expected = run.summary(killed), undisturbed.summary(reference)
    assert (resumed["global_step"], resumed["epochs"]) == (expected["global_step"], expected["epochs"])
    validation = {k: v for k, v in expected["metrics"].items() if k.startswith("val/")}
    # Rounded to 6 digits in summary.json; where the weights differ by rounding (`weights_within`), the last may too.
    closeness = pytest.approx(validation, rel=1e-5) if weights_within else validation
    assert validation and {k: resumed["metrics"][k] for k in validation} == closeness
    a, b = weights(killed), weights(reference)
    assert a.keys() == b.keys()
    for key in a:
        same = torch.allclose(a[key], b[key], atol=weights_within) if weights_within else torch.equal(a[key], b[key])
        assert same, key


# Hyperparameter search (README, "Hyperparameter search")

NO_OPTUNA = "hparams_search needs the optuna extra: pip install -e '.[optuna]'"
# 3 short epochs (3 validations) a trial; pruning may start after one completed trial, at the 2nd validation.
SEARCH_SHORT = ["trainer.max_epochs=3", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=2", "logger=csv"]
SEARCH_SHORT += ["test=false", "hydra.sweeper.pruner.n_startup_trials=1"]


def search_folder(run, study: str = "digits_optuna") -> Path:
    return run.root / "logs" / "train" / "multiruns" / study


def trials(run, study: str = "digits_optuna") -> list[dict]:
    """search.json's trials: the ones that count towards n_trials."""
    return json.loads((search_folder(run, study) / "search.json").read_text())["trials"]


def prunes_and_reports_the_best(run, command: str, world_size: int = 2) -> None:
    """The README's search: 4 trials, each a run of `world_size` ranks, at least one pruned, the best printed."""
    pytest.importorskip("optuna", reason=NO_OPTUNA)
    result = run("train.py", *shlex.split(command)[2:], *SEARCH_SHORT)
    output = result.stdout + result.stderr
    found = trials(run)
    assert [t["number"] for t in found] == [0, 1, 2, 3]
    states = [t["state"] for t in found]
    assert "pruned" in states and "complete" in states, states
    best = max((t for t in found if t["state"] == "complete"), key=lambda t: t["value"])
    assert f"Best: trial {best['number']}, val/acc={best['value']:.6g}" in output
    assert output.count("Launching 1 jobs locally") == 4  # one launch per trial, no rank started the search again
    steps = {}
    for trial in found:
        summary = run.summary(search_folder(run) / str(trial["number"]))  # the job's folder is the trial's number
        assert summary["world_size"] == world_size and summary["trial"]["number"] == trial["number"]
        assert summary["trial"]["pruned"] == (trial["state"] == "pruned")
        steps[trial["state"]] = steps.get(trial["state"], set()) | {summary["global_step"]}
    assert steps["complete"] == {15}  # 3 epochs of 5 steps
    assert max(steps["pruned"]) < 15  # both ranks stopped early, after the same validation (or they would hang)

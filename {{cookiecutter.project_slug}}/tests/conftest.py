"""Shared helpers: run train.py / eval.py as a user would, in real processes, with logs in a temp folder."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from {{cookiecutter.package_name}}.harness.launch import RUN_ID_ENV

PROJECT = Path(__file__).resolve().parents[1]

# A shell starts background jobs (`pytest &`, nohup) with SIGINT ignored, and children inherit that: the runs
# these tests stop with Ctrl-C would not hear it. Give them the default a terminal gives.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Small, fast runs: a few batches are enough to check ranks, folders and summaries.
FAST = ["trainer.max_epochs=1", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "logger=csv"]

# The project's own logger: the one `pip install -e ".[dev]"` installs (pyproject.toml); wandb logs offline.
OWN_LOGGER = "logger={{ cookiecutter.logger }}"
OFFLINE = {"WANDB_MODE": "offline"}


def needs(module: str):
    """Import a logger's module, or skip a test about that logger on a render that does not install it."""
    package = module.split(".")[0]
    return pytest.importorskip(module, reason=f'{package} is an optional extra: pip install -e ".[{package}]"')


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


def in_background(command: list[str], **options) -> subprocess.Popen:
    """A run started in its own process group, for a test to stop it (signals, kills); killed after the test if the
    test failed before stopping it: left running, it would slow every later test."""
    process = subprocess.Popen(command, start_new_session=True, **options)
    BACKGROUND.append(process)
    return process


BACKGROUND: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def nothing_left_running():
    yield
    while BACKGROUND:
        process = BACKGROUND.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(autouse=True)
def no_run_id_left_behind():
    """A test that composes the config in this process (compose() resolving `${run_id:}`) fixes the run id in
    its environment; the runs that later tests start would inherit it and all write into one folder."""
    yield
    os.environ.pop(RUN_ID_ENV, None)


@pytest.fixture
def run(tmp_path: Path) -> Runs:
    return Runs(tmp_path)

"""Fixtures every test gets: `run` (the project's scripts with their runs under the test's temporary folder), and
nothing a test started left running or set in the environment. What tests share besides: helpers.py."""

import os
import signal
from pathlib import Path

import pytest
from helpers import BACKGROUND, Runs

from {{cookiecutter.package_name}}.harness.launch import RUN_ID_ENV

# Under pytest-xdist the runs of several test processes share the cores: one thread each where there are as many
# processes as cores (torch would start a thread per core in each run, and they would fight over them).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    threads = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(threads, 1)))

# A shell starts background jobs (`pytest &`, nohup) with SIGINT ignored, and children inherit that: the runs
# these tests stop with Ctrl-C would not hear it. Give them the default a terminal gives.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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

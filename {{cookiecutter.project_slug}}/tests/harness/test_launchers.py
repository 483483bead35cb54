"""Launchers that start every rank themselves (README, "Starting the ranks yourself"): torchrun and mpirun.

Each README command starts 2 CPU ranks of train.py: one run, in one folder, with world size 2; `ckpt_path=last`
then continues that folder from its last step; under mpirun also to the weights of a run never stopped (torchrun's
ranks compute as those Lightning starts itself, whose exact resume tests/harness/test_resume.py checks).
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import FAST, PROJECT, in_background, readme_commands

TORCHRUN = "torchrun --standalone --nproc-per-node=2 train.py trainer=ddp_multinode trainer.accelerator=cpu"
MPIRUN = "mpirun -np 2 python train.py trainer=ddp_multinode trainer.accelerator=cpu"
MPI_EXTRA = 'pip install -e ".[mpi]"'
# 3 epochs of 4 steps on each of 2 ranks; stopped after the first (as by a crash: the same schedule), or not.
EXACT = [*FAST, "trainer.max_epochs=3", "trainer.deterministic=true", "test=false"]
STOPPED = "+trainer.max_steps=4"

needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2 CPU ranks need 2 cores")
needs_mpi = pytest.mark.skipif(
    shutil.which("mpirun") is None or importlib.util.find_spec("mpi4py") is None,
    reason='needs mpirun (e.g. Open MPI: apt install openmpi-bin libopenmpi-dev) and mpi4py: pip install -e ".[mpi]"',
)


def launch(root: Path, command: str, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A README command, run as a user would from the project folder, with its runs under `root`."""
    words = shlex.split(command)
    if words[0] == "torchrun":  # this Python's torchrun
        words = [sys.executable, "-m", "torch.distributed.run", *words[1:]]
    words = [sys.executable if word == "python" else word for word in words]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` in scripts: this one
    env = {**os.environ, "PATH": path, "PROJECT_ROOT": str(root), "PYTHONPATH": str(PROJECT / "src"), **(env or {})}
    env |= {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}  # Open MPI as root (CI)
    return subprocess.run(
        [*words, *overrides], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def run_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "logs" / "train").rglob(".hydra"))


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def weights(folder: Path) -> dict:
    return torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_one_run_then_resumed(tmp_path: Path, command: str, straight: tuple[str, dict] | None = None) -> Path:
    """`command` stopped after its first epoch, then `ckpt_path=last`: one folder, continued from the step it
    stopped at; and with `straight` (the command and environment of a run never stopped), that run's weights."""
    assert command in readme_commands()
    root = tmp_path / "stopped"
    first = launch(root, command, *EXACT, STOPPED)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    (folder,) = run_folders(root)  # every rank in one folder
    result = summary(folder)
    assert (result["world_size"], result["devices"], result["num_nodes"]) == (2, 2, 1)
    assert (result["strategy"], result["global_step"], result["status"]) == ("ddp", 4, "finished")

    resumed = launch(root, command, *EXACT, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert run_folders(root) == [folder]  # continued in its folder
    assert f"ckpt_path=last: resuming from {folder}/checkpoints/last.ckpt" in resumed.stdout + resumed.stderr
    result = summary(folder)
    assert (result["world_size"], result["epochs"], result["global_step"]) == (2, 3, 12)  # from step 4 on

    if straight is None:
        return folder
    never_stopped = tmp_path / "straight"
    other_command, env = straight
    whole = launch(never_stopped, other_command, *EXACT, env=env)
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    (other,) = run_folders(never_stopped)
    assert (summary(other)["world_size"], summary(other)["global_step"]) == (2, 12)
    expected = weights(other)
    assert all(torch.equal(value, expected[name]) for name, value in weights(folder).items())
    return folder


@needs_two_cores
@pytest.mark.slow
def test_torchrun_ranks_share_one_folder_and_resume_exactly(tmp_path: Path) -> None:
    folder = assert_one_run_then_resumed(tmp_path, TORCHRUN)
    # Named by torchrun's start, the same on every rank, sorting with the runs without a launcher (not a UUID).
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", folder.name), folder.name


def processes_of(root: Path) -> list[int]:
    """The processes whose PROJECT_ROOT is `root`: a run's ranks."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"PROJECT_ROOT={root}\0".encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # ended meanwhile, or not ours to read
            pass
    return found


@needs_two_cores
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_torchrun_killed_outright_takes_its_ranks_along(tmp_path: Path) -> None:
    # torchrun starts its ranks in a session of their own: a SIGKILL of torchrun's process group (or the OOM killer)
    # left them training to the end, into the folder a `ckpt_path=last` then continued (the kill campaign's find).
    long = [*EXACT, "trainer.max_epochs=5000"]  # left alone, it trains for minutes
    words = [sys.executable, "-m", "torch.distributed.run", *shlex.split(TORCHRUN)[1:], *long]
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path), "PYTHONPATH": str(PROJECT / "src")}
    process = in_background(words, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("logs/train/runs/*/checkpoints/last.ckpt")):  # training, after its first epoch
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert len(processes_of(tmp_path)) == 3  # torchrun and its 2 ranks
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while processes_of(tmp_path):
        assert time.monotonic() < deadline, f"ranks left running: {processes_of(tmp_path)}"
        time.sleep(0.05)


@needs_two_cores
@needs_mpi
@pytest.mark.slow
def test_mpirun_ranks_share_one_folder_and_resume_exactly(tmp_path: Path) -> None:
    # The run never stopped: by slurm/mpirun_multinode.sh (the README's way on several hosts), on this host only.
    script = ("bash slurm/mpirun_multinode.sh trainer.accelerator=cpu", {"HOSTS": "localhost:2"})
    folder = assert_one_run_then_resumed(tmp_path, MPIRUN, straight=script)
    log = (folder / "train.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "Restored all states" in log


@needs_two_cores
@needs_mpi
@pytest.mark.slow
def test_mpirun_with_a_one_process_trainer_is_refused(tmp_path: Path) -> None:
    refused = launch(tmp_path, MPIRUN.replace("trainer=ddp_multinode", "trainer=cpu"), *FAST)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "mpirun started 2 ranks, but trainer.devices x trainer.num_nodes is 1 x 1: use trainer=ddp_multinode" in (
        refused.stderr
    )
    assert run_folders(tmp_path) == []


def test_mpirun_without_mpi4py_says_what_to_install(tmp_path: Path) -> None:
    # One process with the variables mpirun gives rank 0 of 2, and an mpi4py that cannot be imported, as where
    # it is not installed: this runs on every machine, with or without MPI.
    hidden = tmp_path / "hidden"
    (hidden / "mpi4py").mkdir(parents=True)
    (hidden / "mpi4py" / "__init__.py").write_text("raise ModuleNotFoundError('no mpi4py', name='mpi4py')")
    env = {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "PYTHONPATH": f"{hidden}:{PROJECT / 'src'}"}
    refused = launch(tmp_path, "python train.py trainer=ddp_multinode trainer.accelerator=cpu", env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    message = (
        "ERROR: mpirun started 2 ranks, and Lightning joins MPI ranks through mpi4py, which is not installed: "
        f"{MPI_EXTRA} (it needs the MPI library of your mpirun, e.g. apt install libopenmpi-dev).\n"
    )
    assert refused.stderr.endswith(message), refused.stderr[-3000:]
    assert run_folders(tmp_path) == []


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason='mpi4py is an optional extra: ".[mpi]"')
@pytest.mark.slow
def test_the_mpi_extra_installs_mpi4py() -> None:
    # The README's install line, resolved against this environment (which has mpi4py: nothing to download).
    assert MPI_EXTRA in readme_commands()
    words = [*shlex.split(MPI_EXTRA)[1:], "--dry-run", "--no-build-isolation", "--report", "-", "-q"]
    result = subprocess.run(
        [sys.executable, "-m", "pip", *words], cwd=PROJECT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "does not provide the extra" not in result.stderr, result.stderr[-3000:]
    (project,) = json.loads(result.stdout)["install"]  # the project alone: mpi4py is here already
    assert any(r.startswith("mpi4py") and 'extra == "mpi"' in r for r in project["metadata"]["requires_dist"])


@needs_two_cores
@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason='mpi4py is an optional extra: ".[mpi]"')
@pytest.mark.slow
def test_without_mpirun_lightning_does_not_start_mpi(tmp_path: Path) -> None:
    # Once mpi4py is installed, Lightning starts MPI in every Trainer to ask whether mpirun started the process,
    # which hangs with some MPI builds (Lightning issue #20049). Here an mpi4py.MPI that fails when imported
    # stands in for one that hangs: runs without mpirun (ranks Lightning starts itself too) must not import it.
    shadow = tmp_path / "shadow"
    (shadow / "mpi4py").mkdir(parents=True)
    (shadow / "mpi4py" / "__init__.py").write_text("")
    (shadow / "mpi4py" / "MPI.py").write_text("raise RuntimeError('MPI started without mpirun')")
    env = {"PYTHONPATH": f"{shadow}:{PROJECT / 'src'}"}
    command = "python train.py trainer=ddp trainer.accelerator=cpu trainer.devices=2"
    result = launch(tmp_path, command, *FAST, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (folder,) = run_folders(tmp_path)
    assert (summary(folder)["world_size"], summary(folder)["status"]) == (2, "finished")

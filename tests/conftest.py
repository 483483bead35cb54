"""Renders of the template, shared between tests (rendering is cheap, running a project is not)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())


def render(output_dir: Path, **answers) -> Path:
    """Render the template without prompts; returns the project folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=answers))


def project_env(project: Path, **extra: str) -> dict:
    """Environment to run a rendered project's code without installing it."""
    return {**os.environ, "PYTHONPATH": str(project / "src"), **extra}


def run_in(project: Path, *args: str, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=project_env(project, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("default"))


class Cluster:
    """A real two-node SLURM cluster on this machine (tests/slurm/cluster.sh), and how to use it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            "SLURM_CONF": str(folder / "slurm.conf"),
            # jobs inherit this environment (sbatch --export=ALL): this Python first, for `srun python`
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }

    def command(self, project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, cwd=project, env=project_env(project, **self.env, **env), capture_output=True, text=True, check=True
        )

    def sbatch(self, project: Path, *args: str) -> str:
        return self.command(project, "sbatch", "--parsable", *args).stdout.strip().split(";")[0]

    def state(self, job: str) -> str:
        result = subprocess.run(
            ["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"],
            env=dict(os.environ, **self.env),
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def wait(self, job: str, timeout: float = 600) -> str:
        """Wait until the job has ended (a requeued job is not ended); returns its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(job)
            if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                return state
            time.sleep(1)
        raise TimeoutError(f"job {job} still {self.state(job)} after {timeout} s")


def free_ports(count: int) -> list[int]:
    """`count` ports that nothing listens on, as the kernel picks them."""
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


@pytest.fixture(scope="session")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("the test SLURM cluster needs root (its daemons run jobs as any user)")
    if not shutil.which("slurmctld"):
        pytest.skip("SLURM is not installed: `apt-get install slurm-wlm` (as .ci/run does)")
    # Not under pytest's private temp folder: munged runs as the munge user and must reach its socket.
    folder = Path(tempfile.mkdtemp(prefix="slurm-test-"))
    folder.chmod(0o755)
    script = TEMPLATE / "tests" / "slurm" / "cluster.sh"
    # Ports nothing listens on now, not cluster.sh's defaults: a cluster started again (pytest-xdist may tear a
    # session fixture down and set it up again) found a default port still held and failed (CI, 2026-12-07).
    controller, *nodes = free_ports(3)
    ports = {"SLURMCTLD_PORT": str(controller), "SLURMD_PORTS": " ".join(map(str, nodes))}
    started = subprocess.run(
        ["bash", str(script), "start", str(folder)], env={**os.environ, **ports}, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield Cluster(folder)
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# A render with a small CPU-only cluster's answers: the SLURM scripts run unchanged on the test cluster.
CLUSTER_ANSWERS = {
    "project_name": "Cluster Lab",
    "slurm_partition": "debug",
    "slurm_account": "",
    "slurm_gpus_per_node": 0,
    "slurm_cpus_per_task": 1,
    "slurm_mem_gb": 2,
    "slurm_time": "0:20:00",
}


@pytest.fixture(scope="session")
def cluster_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("cluster"), **CLUSTER_ANSWERS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The generated project's whole suite first, and a quick test after it: under pytest-xdist it is the longest
    test by far, so it starts at once and nothing long waits behind it, while the other process takes the rest."""
    items.sort(key=lambda item: (item.name != "test_generated_test_suite_passes", "test_hooks.py" not in item.nodeid))

"""Bad answers are refused with one sentence each, and leave no folder behind."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE

BAD = [
    ("package_name=import", "is a Python keyword"),
    ("package_name=torch", "would shadow the module 'torch'"),
    ("package_name=test", "would shadow the module 'test'"),
    ("package_name=os", "would shadow the module 'os'"),
    ("project_name=", "project_name is empty"),
    ("package_name=my project", "is not a Python identifier"),
    ("package_name=café", "is not a Python identifier"),
    ("package_name=yaml", "is the name of a module installed in this Python"),  # PyYAML, a cookiecutter dependency
    ("project_name=" + "Long Name " * 20, "characters long: keep it to 64 or fewer"),
    ("package_name=my-project", "is not a Python identifier"),
    ("package_name=1project", "is not a Python identifier"),
    ("author_email=not-an-email", "is not an email address"),
    ("slurm_gpus_per_node=-1", "slurm_gpus_per_node is '-1' but must be a whole number of 0 or more"),
    ("slurm_cpus_per_task=0", "slurm_cpus_per_task is '0' but must be a whole number of 1 or more"),
    ("slurm_mem_gb=0", "slurm_mem_gb is '0' but must be a whole number of 1 or more"),
    ("slurm_mem_gb=lots", "slurm_mem_gb is 'lots'"),
    ("slurm_time=25h", "is not a SLURM time limit"),
]


@pytest.mark.parametrize(("answer", "message"), BAD, ids=[a for a, _ in BAD])
def test_bad_answer_is_refused_and_leaves_nothing(tmp_path: Path, answer: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(TEMPLATE), answer],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert list(tmp_path.iterdir()) == []  # no half-made project


def test_good_unusual_answers_pass(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(tmp_path),
            str(TEMPLATE),
            "project_name=Café Über Lab",  # slugified to ASCII
            "slurm_time=2-00:00:00",
            "slurm_gpus_per_node=0",
            "slurm_account=",
            "package_name=torch_lab",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cafe-uber-lab" / "src" / "torch_lab").is_dir()

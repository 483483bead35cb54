"""Renders of the template, shared between tests (rendering is cheap, running a project is not)."""

import json
import os
import subprocess
import sys
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
    return dict(os.environ, PYTHONPATH=str(project / "src"), **extra)


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

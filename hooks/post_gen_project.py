"""Remove what the answers did not ask for, then tell the user what to run next."""

import os
import shutil
from pathlib import Path

# Cookiecutter gives a bool for --no-input and may give "yes"/"no" strings from the command line.
GITHUB_ACTIONS = "{{ cookiecutter.github_actions }}".lower() in ("true", "yes", "y", "1")
LICENSE = "{{ cookiecutter.license }}"

if not GITHUB_ACTIONS:
    shutil.rmtree(".github")
if LICENSE == "none":
    Path("LICENSE").unlink()


def typed_path(project: Path) -> str:
    """The project folder as the user would type it: relative to the folder they ran cookiecutter in (their
    shell's PWD: this hook runs inside the project), absolute where the project is not below that folder."""
    start = os.environ.get("PWD")
    if start and os.path.isdir(start) and project.is_relative_to(Path(start).resolve()):
        return str(project.relative_to(Path(start).resolve()))
    return str(project)


print(
    f"""
Your project is ready in {Path.cwd()}. Next:

    cd {typed_path(Path.cwd())}
    pip install -e ".[dev]"
    python train.py
"""
)

"""Remove what the answers did not ask for, then tell the user what to run next."""

import shutil
from pathlib import Path

# Cookiecutter gives a bool for --no-input and may give "yes"/"no" strings from the command line.
GITHUB_ACTIONS = "{{ cookiecutter.github_actions }}".lower() in ("true", "yes", "y", "1")
LICENSE = "{{ cookiecutter.license }}"

if not GITHUB_ACTIONS:
    shutil.rmtree(".github")
if LICENSE == "none":
    Path("LICENSE").unlink()

print(
    f"""
Your project is ready in {Path.cwd()}. Next:

    cd {Path.cwd().name}
    pip install -e ".[dev]"
    python train.py
"""
)

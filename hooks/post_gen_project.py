"""Remove what the answers did not ask for, then tell the user what to run next.

cruft runs this again on every `cruft update` and `cruft diff`, in a render of its own made to compare: there the
removals are the same and nothing is printed (that folder is gone when cruft ends).
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

# Cookiecutter gives a bool for --no-input and may give "yes"/"no" strings from the command line.
GITHUB_ACTIONS = "{{ cookiecutter.github_actions }}".lower() in ("true", "yes", "y", "1")
LICENSE = "{{ cookiecutter.license }}"

# cruft's answers carry the template's commit; plain cookiecutter's do not.
BY_CRUFT = {{ "_commit" in cookiecutter }}

if not GITHUB_ACTIONS:
    shutil.rmtree(".github", ignore_errors=True)
if LICENSE == "none":
    Path("LICENSE").unlink(missing_ok=True)


def comparison_render() -> bool:
    """Whether cruft update or cruft diff renders this, to compare: they render into a fresh temporary folder
    (tempfile's tmpXXXXXXXX) that holds the project alone (the same test as pre_gen_project.py's)."""
    here = Path.cwd().resolve()
    return (
        BY_CRUFT
        and here.parent.parent == Path(tempfile.gettempdir()).resolve()
        and re.fullmatch(r"tmp[a-z0-9_]{8}", here.parent.name) is not None
        and os.listdir(here.parent) == [here.name]
    )


def typed_path(project: Path) -> str:
    """The project folder as the user would type it: relative to the folder they ran cookiecutter in (their
    shell's PWD: this hook runs inside the project), absolute where the project is not below that folder."""
    start = os.environ.get("PWD")
    if start and os.path.isdir(start) and project.is_relative_to(Path(start).resolve()):
        return str(project.relative_to(Path(start).resolve()))
    return str(project)


if not comparison_render():
    print(
        f"""
Your project is ready in {Path.cwd()}. Next:

    cd {typed_path(Path.cwd())}
    pip install -e ".[dev]"
    python train.py
"""
    )

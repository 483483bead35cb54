"""Reject answers that would produce a broken project, before a single file is written.

Each problem is reported in one sentence that says what is wrong and how to fix it; the
exit code 1 makes cookiecutter stop and delete the half-made project folder.
"""

import importlib.util
import json
import keyword
import re
import sys

# All answers, as JSON inside a Python string literal, so quotes or unicode in them cannot break this file.
ANSWERS = json.loads({{ cookiecutter | jsonify | tojson }})

# Modules the generated project imports or that Python itself needs: a package with one of these
# names would shadow them and break `import torch` (or the test runner) in confusing ways.
SHADOWED = {
    "torch", "lightning", "pytorch_lightning", "hydra", "omegaconf", "torchmetrics", "sklearn", "numpy",
    "rich", "wandb", "tensorboard", "submitit", "pytest", "setuptools", "pip", "test", "tests", "src",
    "configs", "train", "eval",
} | set(sys.stdlib_module_names)

SLURM_TIME = re.compile(r"^(\d+-\d{1,2}(:\d{2}(:\d{2})?)?|\d+(:\d{2}(:\d{2})?)?)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def installed_module(name: str) -> str | None:
    """Where an installed distribution provides a top-level module `name` (found without importing it).

    Only site-packages counts: an earlier render of this same project, installed with `pip install -e .`,
    is not a clash (rendering it again, e.g. from a newer template, must work).
    """
    spec = importlib.util.find_spec(name)
    origin = (spec.origin or "") if spec else ""
    return origin if any(part in origin for part in ("site-packages", "dist-packages")) else None


def problems(answers: dict) -> list[str]:
    found = []
    slug = answers["project_slug"]
    package = answers["package_name"]
    if not str(answers["project_name"]).strip():
        found.append("project_name is empty: give the project a name, e.g. 'Digit Lab'.")
    elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug):
        found.append(
            f"project_slug {slug!r} is not a valid folder and distribution name: "
            "use letters, digits, '-', '_' and '.', starting with a letter or digit."
        )
    if not package.isidentifier() or not package.isascii():
        found.append(
            f"package_name {package!r} is not a Python identifier: "
            "use ASCII letters, digits and underscores, not starting with a digit (e.g. my_project)."
        )
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        found.append(f"package_name {package!r} is a Python keyword: pick another name, e.g. {package}_lab.")
    elif package.lower() in SHADOWED:
        found.append(
            f"package_name {package!r} would shadow the module {package!r} that the project or Python needs: "
            f"pick another name, e.g. {package}_lab."
        )
    elif len(package) > 64:
        found.append(
            f"package_name is {len(package)} characters long: keep it to 64 or fewer (answer a shorter project_name)."
        )
    elif origin := installed_module(package):
        found.append(
            f"package_name {package!r} is the name of a module installed in this Python ({origin}): "
            f"installing the project would shadow it; pick another name, e.g. {package}_lab."
        )
    if len(slug) > 100:
        found.append(f"project_slug is {len(slug)} characters long: keep the folder name to 100 or fewer.")
    if not EMAIL.match(answers["author_email"]):
        found.append(f"author_email {answers['author_email']!r} is not an email address: use name@example.org.")

    def integer(key: str, minimum: int, meaning: str) -> None:
        value = str(answers[key]).strip()
        if not re.fullmatch(r"-?\d+", value) or int(value) < minimum:
            found.append(f"{key} is {value!r} but must be a whole number {meaning}.")

    integer("slurm_gpus_per_node", 0, "of 0 or more (0 means a CPU-only cluster)")
    integer("slurm_cpus_per_task", 1, "of 1 or more")
    integer("slurm_mem_gb", 1, "of 1 or more")
    if not SLURM_TIME.match(str(answers["slurm_time"]).strip()):
        found.append(
            f"slurm_time {answers['slurm_time']!r} is not a SLURM time limit: "
            "use minutes, HH:MM:SS or D-HH:MM:SS (e.g. 24:00:00 or 2-00:00:00)."
        )
    if not re.fullmatch(r"[A-Za-z0-9._-]+", str(answers["slurm_partition"])):
        found.append(f"slurm_partition {answers['slurm_partition']!r} is not a SLURM partition name.")
    if answers["slurm_account"] and not re.fullmatch(r"[A-Za-z0-9._-]+", str(answers["slurm_account"])):
        found.append(f"slurm_account {answers['slurm_account']!r} is not a SLURM account name (or leave it empty).")
    return found


if __name__ == "__main__":
    errors = problems(ANSWERS)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    sys.exit(1 if errors else 0)

"""Reject answers that would produce a broken project, before a single file is written.

Each problem is reported in one sentence that says what is wrong and how to fix it; the
exit code 1 makes cookiecutter stop and delete the half-made project folder. Cookiecutter checks
nothing per question and asks them all before this hook runs, so the refusal also says where
cookiecutter saved the answers and how to render from them once fixed, instead of typing them all again.

cruft renders the template again on every `cruft update` and `cruft diff`, to compare; those renders are not
checked against this Python's installed modules and version: the answers were checked when the project was made,
and the project itself may be installed here by now.
"""

import importlib.util
import json
import keyword
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

# All answers, as JSON inside a Python string literal, so quotes or unicode in them cannot break this file.
ANSWERS = json.loads({{ cookiecutter | jsonify | tojson }})

# Modules the generated project imports or that Python itself needs: a package with one of these
# names would shadow them and break `import torch` (or the test runner) in confusing ways.
SHADOWED = {
    "torch", "lightning", "pytorch_lightning", "hydra", "omegaconf", "torchmetrics", "torchdata", "sklearn", "numpy",
    "rich", "wandb", "tensorboard", "submitit", "pytest", "setuptools", "pip", "test", "tests", "src",
    "configs", "train", "eval", "generate", "predict",
} | set(sys.stdlib_module_names)

# ASCII digits only: a digit like '٣' passes int() but would land in the YAML as a string.
SLURM_TIME = re.compile(r"(\d+-\d{1,2}(:\d{2}(:\d{2})?)?|\d+(:\d{2}(:\d{2})?)?)", re.ASCII)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# SLURM names go into #SBATCH lines and YAML: no spaces, quotes or newlines. A partition may be a list (gpu,gpu-long).
SLURM_NAME = re.compile(r"[A-Za-z0-9._-]+")
SLURM_PARTITIONS = re.compile(r"[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*")


def installed_module(name: str) -> str | None:
    """Where an installed distribution provides a top-level module `name` (found without importing it).

    Only site-packages counts: an earlier render of this same project, installed with `pip install -e .`,
    is not a clash (rendering it again, e.g. from a newer template, must work).
    """
    spec = importlib.util.find_spec(name)
    origin = (spec.origin or "") if spec else ""
    return origin if any(part in origin for part in ("site-packages", "dist-packages")) else None


def comparison_render(answers: dict) -> bool:
    """Whether cruft update or cruft diff renders this, to compare: cruft adds `_commit` to the answers, and those
    two render into a fresh temporary folder (tempfile's tmpXXXXXXXX) that holds the project alone."""
    here = Path.cwd().resolve()
    return (
        "_commit" in answers
        and here.parent.parent == Path(tempfile.gettempdir()).resolve()
        and re.fullmatch(r"tmp[a-z0-9_]{8}", here.parent.name) is not None
        and os.listdir(here.parent) == [here.name]
    )


def problems(answers: dict, environment: bool = True) -> list[tuple[str, str]]:
    """(answer to fix, one sentence saying what is wrong and what to answer instead) for each bad answer; with
    environment=False, without the checks against this Python (its installed modules and version)."""
    found = []

    def bad(key: str, sentence: str) -> None:
        found.append((key, sentence))

    slug = answers["project_slug"]
    package = answers["package_name"]
    if not str(answers["project_name"]).strip():
        bad("project_name", "project_name is empty: give the project a name, e.g. 'Digit Lab'.")
    elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug):
        bad(
            "project_slug",
            f"project_slug {slug!r} is not a valid folder and distribution name: "
            "use letters, digits, '-', '_' and '.', starting with a letter or digit.",
        )
    if not package.isidentifier() or not package.isascii():
        bad(
            "package_name",
            f"package_name {package!r} is not a Python identifier: "
            "use ASCII letters, digits and underscores, not starting with a digit (e.g. my_project).",
        )
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        bad("package_name", f"package_name {package!r} is a Python keyword: pick another name, e.g. {package}_lab.")
    elif package.lower() in SHADOWED:
        bad(
            "package_name",
            f"package_name {package!r} would shadow the module {package!r} that the project or Python needs: "
            f"pick another name, e.g. {package}_lab.",
        )
    elif len(package) > 64:
        bad(
            "package_name",
            f"package_name is {len(package)} characters long: keep it to 64 or fewer (answer a shorter project_name).",
        )
    elif environment and (origin := installed_module(package)):
        bad(
            "package_name",
            f"package_name {package!r} is the name of a module installed in this Python ({origin}): "
            f"installing the project would shadow it; pick another name, e.g. {package}_lab.",
        )
    if len(slug) > 100:
        bad("project_slug", f"project_slug is {len(slug)} characters long: keep the folder name to 100 or fewer.")
    if not EMAIL.match(answers["author_email"]):
        bad("author_email", f"author_email {answers['author_email']!r} is not an email address: use name@example.org.")
    if problem := python_problem(str(answers["python_version"]), environment):
        bad("python_version", problem)

    def integer(key: str, minimum: int, meaning: str) -> None:
        # No strip(): the answer lands in #SBATCH lines as typed, where ' 8' would not parse.
        value = str(answers[key])
        if not re.fullmatch(r"-?[0-9]+", value) or int(value) < minimum:
            bad(key, f"{key} is {value!r} but must be a whole number {meaning}.")

    integer("slurm_gpus_per_node", 0, "of 0 or more (0 means a CPU-only cluster)")
    integer("slurm_cpus_per_task", 1, "of 1 or more")
    integer("slurm_mem_gb", 1, "of 1 or more")
    if not SLURM_TIME.fullmatch(str(answers["slurm_time"])):
        bad(
            "slurm_time",
            f"slurm_time {answers['slurm_time']!r} is not a SLURM time limit: "
            "use minutes, HH:MM:SS or D-HH:MM:SS (e.g. 24:00:00 or 2-00:00:00; 0 for no limit).",
        )
    if not SLURM_PARTITIONS.fullmatch(str(answers["slurm_partition"])):
        bad(
            "slurm_partition",
            f"slurm_partition {answers['slurm_partition']!r} is not a SLURM partition name: "
            "use letters, digits, '.', '_' and '-' without spaces or quotes (e.g. gpu, or gpu,gpu-long for either).",
        )
    if answers["slurm_account"] and not SLURM_NAME.fullmatch(str(answers["slurm_account"])):
        bad(
            "slurm_account",
            f"slurm_account {answers['slurm_account']!r} is not a SLURM account name: "
            "use letters, digits, '.', '_' and '-' without spaces or quotes (e.g. my_lab), or leave it empty.",
        )
    return found


def python_problem(version: str, environment: bool = True) -> str | None:
    """The answer is the project's requires-python, so a render on an older Python makes a project that
    `pip install -e .` cannot install here: pip then backtracks through old releases of every dependency
    for many minutes instead of failing. Refused now, while the answers are still fresh."""
    match = re.fullmatch(r"3\.([0-9]+)", version)
    if not match:
        return f"python_version {version!r} is not a Python version: answer e.g. 3.11."
    wanted, here = (3, int(match[1])), sys.version_info[:2]
    if wanted < (3, 10):
        return f"python_version {version} is below 3.10, the oldest Python the project runs on: answer 3.10 or higher."
    if environment and wanted > here:
        running = f"{here[0]}.{here[1]}"
        return (
            f"python_version={version} but this Python is {running}: the project could not be installed here; "
            f"answer {running} or lower, or render with Python {version}."
        )
    return None


def cruft_hint(answers: dict, keys: list[str]) -> list[str]:
    """cruft saves no answers: save them where cookiecutter keeps its own, and name the cruft command that
    renders from them (its --extra-context-file takes the answers as one JSON object)."""
    try:
        from cookiecutter.config import get_user_config

        folder = Path(get_user_config()["replay_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        template = answers["_template"]
        path = folder / f"cruft-{Path(template.rstrip('/')).name.removesuffix('.git')}.json"
        path.write_text(json.dumps({k: v for k, v in answers.items() if not k.startswith("_")}, indent=2))
    except Exception:  # an unreadable user config or an unwritable folder: no hint, just the error
        return []
    command = ["cruft", "create", "--no-input", "--extra-context-file", str(path)]
    command += ["--output-dir", str(Path.cwd().resolve().parent), template]
    return [
        f"Your answers are saved in {path}: fix {', '.join(dict.fromkeys(keys))} there and render again with",
        f"    {shlex.join(command)}",
    ]


def replay_hint(answers: dict, keys: list[str]) -> list[str]:
    """Where cookiecutter saved these answers and the command that renders from them once they are fixed.

    Cookiecutter writes the answers to <replay_dir>/<template folder name>.json before generating
    (cookiecutter.main), and `--replay-file` renders from such a file without asking again. The file is
    found by its content: the template folder's name is resolved in cookiecutter's working directory,
    which this hook does not share when the template was given as a relative path such as `.`.
    """
    try:
        from cookiecutter.config import get_user_config

        saved = sorted(Path(get_user_config()["replay_dir"]).glob("*.json"), key=os.path.getmtime, reverse=True)
    except Exception:  # an older cookiecutter or an unreadable user config: no hint, just the error
        return []
    for path in saved:
        try:
            if json.loads(path.read_text(encoding="utf-8"))["cookiecutter"] != answers:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        command = ["cookiecutter", "--replay-file", str(path), "-o", answers["_output_dir"]]
        if answers.get("_checkout"):
            command += ["--checkout", answers["_checkout"]]
        command.append(answers["_template"])
        return [
            f"Your answers are saved in {path}: fix {', '.join(dict.fromkeys(keys))} there and render again with",
            f"    {shlex.join(command)}",
        ]
    return []  # e.g. --config-file named another replay_dir


if __name__ == "__main__":
    errors = problems(ANSWERS, environment=not comparison_render(ANSWERS))
    for _, error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    if errors:
        hint = cruft_hint if "_commit" in ANSWERS else replay_hint
        for line in hint(ANSWERS, [key for key, _ in errors]):
            print(line, file=sys.stderr)
    sys.exit(1 if errors else 0)

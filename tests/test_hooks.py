"""Bad answers are refused with one sentence each, leave no folder behind, and need not be typed again."""

import json
import os
import shlex
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
    ("slurm_mem_gb= 64", "slurm_mem_gb is ' 64'"),  # lands in `#SBATCH --mem= 64G` as typed
    ("slurm_time=25h", "is not a SLURM time limit"),
    ("slurm_time=24:00:00\n", "is not a SLURM time limit"),
    ("slurm_partition=gpu a100", "slurm_partition 'gpu a100' is not a SLURM partition name"),
    ('slurm_partition=gpu"', "is not a SLURM partition name"),
    ("slurm_partition=gpu\nlong", "is not a SLURM partition name"),
    ("slurm_account=my lab", "slurm_account 'my lab' is not a SLURM account name"),
    ("slurm_account='lab'", "is not a SLURM account name"),
]


def run_cookiecutter(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The cookiecutter command, with its replay folder (where it saves the answers) under tmp_path."""
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n")
    # PWD as a shell sets it, in the folder the command is typed in
    env = dict(os.environ, COOKIECUTTER_CONFIG=str(config), PWD=str(cwd or Path.cwd()))
    command = [sys.executable, "-m", "cookiecutter", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)


def errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]


@pytest.mark.parametrize(("answer", "message"), BAD, ids=[repr(a) for a, _ in BAD])
def test_bad_answer_is_refused_and_leaves_nothing(tmp_path: Path, answer: str, message: str) -> None:
    out = tmp_path / "out"
    result = run_cookiecutter(tmp_path, "--no-input", "-o", str(out), str(TEMPLATE), answer)
    assert result.returncode == 1
    assert len(errors(result)) == 1 and message in errors(result)[0], result.stderr
    assert list(out.iterdir()) == []  # no half-made project


def test_refusal_names_the_saved_answers_and_the_command_that_renders_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # the template as `.`, typed in its folder: the hook runs elsewhere, yet names the right file and command
    answers = ["author_email=bad", "slurm_time=1h"]
    result = run_cookiecutter(tmp_path, "--no-input", "-o", str(out), ".", *answers, cwd=TEMPLATE)
    replay = tmp_path / "replay" / f"{TEMPLATE.name}.json"
    hint, command = result.stderr.splitlines()[2:4]
    assert hint == f"Your answers are saved in {replay}: fix author_email, slurm_time there and render again with"
    assert shlex.split(command) == ["cookiecutter", "--replay-file", str(replay), "-o", str(out), "."]

    saved = json.loads(replay.read_text())
    saved["cookiecutter"].update(author_email="me@example.org", slurm_time="1:00:00")
    replay.write_text(json.dumps(saved))
    again = run_cookiecutter(tmp_path, *shlex.split(command)[1:], cwd=TEMPLATE)  # the printed command, as printed
    assert again.returncode == 0, again.stdout + again.stderr
    assert "#SBATCH --time=1:00:00" in (out / "my-project" / "slurm" / "single_node.sbatch").read_text()


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (f"3.{sys.version_info.minor + 1}", f"but this Python is 3.{sys.version_info.minor}: the project could not"),
        ("3.9", "python_version 3.9 is below 3.10"),
        ("3", "python_version '3' is not a Python version"),
    ],
)
def test_python_version_newer_than_this_python_is_refused(tmp_path: Path, version: str, message: str) -> None:
    # Only a replay file can carry a python_version outside the choices (--no-input refuses it before any hook).
    first = run_cookiecutter(tmp_path, "--no-input", "-o", str(tmp_path / "first"), str(TEMPLATE), "author_email=x")
    assert first.returncode == 1
    replay = tmp_path / "replay" / f"{TEMPLATE.name}.json"
    saved = json.loads(replay.read_text())
    saved["cookiecutter"].update(author_email="me@example.org", python_version=version)
    replay.write_text(json.dumps(saved))
    out = tmp_path / "out"
    result = run_cookiecutter(tmp_path, "--replay-file", str(replay), "-o", str(out), str(TEMPLATE))
    assert result.returncode == 1
    assert len(errors(result)) == 1 and message in errors(result)[0], result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_good_unusual_answers_pass(tmp_path: Path) -> None:
    result = run_cookiecutter(
        tmp_path,
        "--no-input",
        "-o",
        str(tmp_path),
        str(TEMPLATE),
        "project_name=Café Über Lab",  # slugified to ASCII
        "slurm_time=2-00:00:00",
        "slurm_gpus_per_node=0",
        "slurm_account=",
        "slurm_partition=gpu,gpu-long",  # sbatch takes a list of partitions
        "package_name=torch_lab",
        f"python_version=3.{min(sys.version_info.minor, 12)}",  # this Python's, or the newest choice
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cafe-uber-lab" / "src" / "torch_lab").is_dir()


def test_next_steps_say_cd_to_the_project_from_where_cookiecutter_ran(tmp_path: Path) -> None:
    result = run_cookiecutter(tmp_path, "--no-input", "-o", "out", str(TEMPLATE), cwd=tmp_path)
    assert "\n    cd out/my-project\n" in result.stdout, result.stdout
    elsewhere = run_cookiecutter(tmp_path, "--no-input", "-o", str(tmp_path / "b"), str(TEMPLATE), cwd=TEMPLATE)
    assert f"\n    cd {(tmp_path / 'b' / 'my-project').resolve()}\n" in elsewhere.stdout, elsewhere.stdout


def test_refusal_under_cruft_create_names_the_answers_file_and_command(tmp_path: Path) -> None:
    # cruft saves no replay file: the hook saves the answers and names the cruft command that renders from them.
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n")
    env = dict(os.environ, COOKIECUTTER_CONFIG=str(config), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    out = tmp_path / "out"
    out.mkdir()
    bad = ["cruft", "create", "--no-input", "--extra-context", '{"package_name": "import"}', str(TEMPLATE)]
    result = subprocess.run(bad, capture_output=True, text=True, env=env, cwd=out)
    assert result.returncode == 1 and list(out.iterdir()) == []
    assert len(errors(result)) == 1 and "is a Python keyword" in errors(result)[0], result.stderr
    answers = tmp_path / "replay" / f"cruft-{TEMPLATE.name}.json"
    hint, command = result.stderr.splitlines()[1:3]
    assert hint == f"Your answers are saved in {answers}: fix package_name there and render again with"
    assert shlex.split(command)[:5] == ["cruft", "create", "--no-input", "--extra-context-file", str(answers)]

    answers.write_text(answers.read_text().replace('"import"', '"my_lab"'))
    again = subprocess.run(shlex.split(command), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "my-project" / "src" / "my_lab").is_dir() and (out / "my-project" / ".cruft.json").is_file()
    assert "Your project is ready" in again.stdout  # the next steps, as under cookiecutter

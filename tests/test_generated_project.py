"""The rendered project works as a user would use it: its own tests pass, it installs, each logger runs."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import render, run_in

EVERY_TEST = ["-m", "slow or not slow"]  # plain `pytest` in the project runs its fast tier only


def test_generated_test_suite_passes(default_project: Path) -> None:
    # Both tiers, in one pytest process.
    result = run_in(default_project, "-m", "pytest", "-q", "-p", "no:cacheprovider", *EVERY_TEST, timeout=3000)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " deselected" not in result.stdout


# Every answer a user may give otherwise than the defaults, in one render (the wandb logger: test_render.py checks
# that no generated test needs a logger package its render does not install).
OTHER_ANSWERS = {
    "project_name": "Other Answers",
    "python_version": "3.10",
    "logger": "csv",
    "license": "none",
    "github_actions": False,
    "slurm_gpus_per_node": 0,
    "slurm_partition": "cpu-short,cpu_long",
    "slurm_time": "90",
}


def test_fast_tier_passes_on_a_render_with_other_answers(tmp_path: Path) -> None:
    project = render(tmp_path, **OTHER_ANSWERS)
    result = run_in(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", timeout=1800)  # as a user types it
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def collected(project: Path, *args: str) -> set[str]:
    """The test ids `pytest <args>` would run in the project."""
    result = run_in(project, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_the_readmes_test_commands_select_their_tier(default_project: Path) -> None:
    readme = (default_project / "README.md").read_text()
    assert 'pytest -m "slow or not slow"' in readme and "pytest -m slow tests/harness/test_resume.py" in readme
    fast, every = collected(default_project), collected(default_project, *EVERY_TEST)
    slow = every - fast
    assert fast and slow and fast < every
    # several processes: slow; a config, a refusal: fast
    assert "tests/harness/test_launchers.py::test_torchrun_ranks_share_one_folder_and_resume_exactly" in slow
    assert "tests/test_configs.py::test_strategy_table" in fast
    # a later -m replaces the project's `-m "not slow"`: a file's slow tests, by name
    in_resume = collected(default_project, "-m", "slow", "tests/harness/test_resume.py")
    assert in_resume and in_resume == {test for test in slow if test.startswith("tests/harness/test_resume.py::")}


def test_project_builds_with_console_scripts(default_project: Path, tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=default_project,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "my_project/harness/strategies/dp.py" in names
    # every config, nested groups included, travels inside the package
    src = default_project / "src"
    configs = {p.relative_to(src).as_posix() for p in src.rglob("*.yaml")}
    assert len(configs) > 30 and configs <= set(names), configs - set(names)
    assert "my-project-train = my_project.train:main" in entry_points
    assert "my-project-eval = my_project.eval:main" in entry_points


def test_commit_checks_pass_on_a_render_and_refuse_conflict_leftovers_offline(
    default_project: Path, tmp_path: Path
) -> None:
    """The README's `git init && pre-commit install`: a fresh render commits; a conflict marker and a .rej
    file do not; every hook is local, so nothing is fetched (pre-commit's cache holds no repository)."""
    project = shutil.copytree(default_project, tmp_path / "project")
    cache = tmp_path / "pre-commit"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this environment's ruff, pre-commit
    env = {**os.environ, "PRE_COMMIT_HOME": str(cache), "PATH": path}

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)

    assert run("bash", "-c", "git init && pre-commit install").returncode == 0
    run("git", "add", "-A")
    commit = run("git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-m", "render")
    assert commit.returncode == 0, commit.stdout + commit.stderr
    with (project / "README.md").open("a") as readme:
        readme.write("<<<<<<< HEAD\n")
    (project / "x.rej").write_text("@@ a hunk the template update could not apply\n")
    run("git", "add", "-A")
    check = run("pre-commit", "run", "--all-files")
    assert check.returncode == 1 and ":<<<<<<< HEAD" in check.stdout and "x.rej" in check.stdout, check.stdout
    assert not list(cache.glob("repo*"))


LOGGER_FILES = {
    "csv": "csv/metrics.csv",
    "tensorboard": "tensorboard/events.out.tfevents.*",
    "wandb": "wandb/offline-run-*",
}


@pytest.mark.parametrize("logger", sorted(LOGGER_FILES))
def test_default_logger_of_each_render_writes_into_the_run_folder(tmp_path: Path, logger: str) -> None:
    project = render(tmp_path / "render", logger=logger)
    env = {"PROJECT_ROOT": str(tmp_path), "WANDB_API_KEY": "", "WANDB_MODE": "", "HOME": str(tmp_path)}
    result = run_in(project, "train.py", "trainer=cpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", **env)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = [p.parent for p in (tmp_path / "logs").rglob(".hydra")]
    assert list(folder.glob(LOGGER_FILES[logger])), sorted(p.name for p in folder.iterdir())
    # Lightning's messages reach the console once (through Hydra's logging), and the run's log file
    output = result.stdout + result.stderr
    assert output.count("`Trainer.fit` stopped") == 1, output[-3000:]
    assert "`Trainer.fit` stopped" in (folder / "train.log").read_text()
    if logger == "wandb":
        assert "wandb: logging offline, no API key configured" in output

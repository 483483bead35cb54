"""A project made with cruft keeps up with the template (READMEs, "Updating from the template"; CHANGELOG.md).

From the oldest release and a middle one, a project is made with `cruft create`, edited as a researcher would,
committed, and updated to this template's HEAD by the generated template.yml workflow's own script: the
researcher's new files are untouched, each edit is still there or listed as a conflict, every edit the new layout
no longer reads is named by the generated tests/test_template_update.py, the configs compose and the updated
project's fast tier passes.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TEMPLATE, render, run_in

# The releases the test updates from; the commits stand in where a clone has no tags.
RELEASES = {"v0.1.0": "654306b", "v0.2.0": "1fab616"}
CNN = "from torch import nn\n\n\nclass CNN(nn.Sequential):\n    def __init__(self, **sizes) -> None:\n"
CNN += "        super().__init__(nn.Flatten(), nn.LazyLinear(sizes['num_classes']))\n"
EXPERIMENT = "# @package _global_\ntrainer:\n  max_epochs: 2\n"
GIT_USER = {"GIT_AUTHOR_NAME": "A Researcher", "GIT_AUTHOR_EMAIL": "r@example.org"}
GIT_USER |= {"GIT_COMMITTER_NAME": "A Researcher", "GIT_COMMITTER_EMAIL": "r@example.org"}


def command(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """A command as a user types it, with this Python's tools (cruft, git) first on the PATH."""
    env = {**os.environ, **GIT_USER, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 or not check, f"{args}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def template_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template as a user's cruft reaches it: a git repository with its history (and tags, where pushed)."""
    clone = tmp_path_factory.mktemp("template") / "cookiecutter-lightning-hydra"
    command("git", "clone", "-q", str(TEMPLATE), str(clone), cwd=TEMPLATE)
    return clone


def revision(clone: Path, release: str) -> str:
    for ref in (release, RELEASES[release]):
        found = command("git", "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", cwd=clone, check=False)
        if found.returncode == 0:
            return found.stdout.strip()
    pytest.skip(
        f"{release} ({RELEASES[release]}) is not in this clone's history: a shallow clone? git fetch --unshallow"
    )


def researcher_edits(project: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A researcher's typical work on a fresh project: (new files: path -> text, changed files: path -> a line of
    theirs now in it). Paths follow the release's layout (before v0.2.0: configs/ at the top, utils/)."""
    package = "src/my_project"
    flat = (project / "configs").is_dir()
    configs = "configs" if flat else f"{package}/configs"
    model = f"{configs}/model/digits.yaml" if flat else f"{configs}/model/mlp.yaml"
    new = {
        f"{package}/models/{'components' if flat else 'nets'}/cnn.py": CNN,
        f"{configs}/model/cnn.yaml": (project / model).read_text().replace("mlp.MLP", "cnn.CNN"),
        f"{configs}/experiment/mine.yaml": EXPERIMENT,
    }
    changed = {
        model if flat else f"{configs}/model/optimizer/adamw.yaml": "lr: 1e-3  # mine",
        "README.md": "This project studies digits, my way.",
        f"{package}/{'utils' if flat else 'harness'}/launch.py": "# mine: a change inside the machinery",
    }
    for path, text in new.items():
        (project / path).write_text(text)
    lr_file = project / next(iter(changed))
    lr_file.write_text(re.sub(r"lr: .*", changed[lr_file.relative_to(project).as_posix()], lr_file.read_text()))
    (project / "README.md").write_text((project / "README.md").read_text() + f"\n## Notes\n\n{changed['README.md']}\n")
    launch = project / list(changed)[2]
    launch.write_text(launch.read_text().replace("\nimport ", f"\n{changed[list(changed)[2]]}\nimport ", 1))
    return new, changed


def update_script(workflow: Path, checkout: str, body: Path) -> str:
    """The update step of the generated template.yml, as GitHub would run it, aimed at `checkout`."""
    steps = yaml.safe_load(workflow.read_text())["jobs"]["update"]["steps"]
    (script,) = [step["run"] for step in steps if step.get("name") == "cruft update"]
    script = script.replace("pip install -q cruft", "")  # installed here
    script = script.replace("cruft update --skip-apply-ask", f"cruft update --skip-apply-ask --checkout {checkout}")
    return script.replace("/tmp/template-update.md", str(body))


@pytest.mark.parametrize("release", list(RELEASES))
def test_update_keeps_the_researchers_work(
    tmp_path: Path, template_clone: Path, default_project: Path, release: str
) -> None:
    command(
        "cruft",
        "create",
        "--no-input",
        "--checkout",
        revision(template_clone, release),
        str(template_clone),
        cwd=tmp_path,
    )
    project = tmp_path / "my-project"
    command("git", "init", "-q", cwd=project)
    command("git", "add", "-A", cwd=project)
    command("git", "commit", "-qm", "made by cruft", cwd=project)
    new, changed = researcher_edits(project)
    command("git", "add", "-A", cwd=project)
    command("git", "commit", "-qm", "my work", cwd=project)

    head = command("git", "rev-parse", "HEAD", cwd=template_clone).stdout.strip()
    body = tmp_path / "pull-request.md"
    script = update_script(default_project / ".github/workflows/template.yml", head, body)
    update = command("bash", "-e", "-c", script, cwd=project)
    assert f'"commit": "{head}"' in (project / ".cruft.json").read_text()
    # The hooks of the release print once, in the render cruft compares with; this template's print nothing.
    assert update.stdout.count("Your project is ready") <= 1, update.stdout

    conflicted = [path for path in changed if "<<<<<<<" in (project / path).read_text()]
    rejected = sorted(path.relative_to(project).as_posix() for path in project.rglob("*.rej"))
    listed = body.read_text()
    assert all(f"- {path}" in listed for path in conflicted), listed
    assert all(f"- ./{path}" in listed for path in rejected), listed
    for path, text in new.items():
        assert (project / path).read_text() == text, f"{path} was changed by the update"
    for path, line in changed.items():
        assert line in (project / path).read_text() or f"{path}.rej" in rejected, f"{path} lost the edit"

    # Resolved as a user might (the template's side), the .rej files left for the check to list.
    for path in conflicted:
        shutil.copy(default_project / path, project / path)
    # Files the new layout no longer reads: a folder the template has no more, or a template file it moved.
    stranded = [path for path in [*new, *changed] if not (default_project / path).parent.is_dir()]
    stranded += [path for path in changed if not (default_project / path).exists() and path not in stranded]
    check = run_in(project, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "tests/test_template_update.py")
    for path in stranded + rejected:
        assert f"{path}: " in check.stdout, f"{path} is stranded with no word:\n{check.stdout[-3000:]}"
    assert (check.returncode == 0) == (not stranded and not rejected), check.stdout[-3000:]

    # The updated project's configs compose; the researcher's too where the new layout reads them.
    overrides = [] if stranded else ["model=cnn", "experiment=mine"]
    composed = run_in(project, "train.py", *overrides, "--cfg", "job")
    assert composed.returncode == 0, composed.stderr[-3000:]
    assert "max_epochs: 2" in composed.stdout or stranded

    # Once the .rej files are resolved too, its own tests pass (the fast tier, in one process beside this suite's),
    # the researcher's files among them; the files the check named stay where they are, so it is left out then.
    for path in rejected:
        shutil.copy(default_project / path.removesuffix(".rej"), project / path.removesuffix(".rej"))
        (project / path).unlink()
    leftovers = ["--deselect", "tests/test_template_update.py"] if stranded else []
    tests = run_in(project, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", *leftovers)
    assert tests.returncode == 0, tests.stdout[-3000:]

    # After the update the project is current: nothing to report, and cruft diff runs the hooks silently.
    command("git", "add", "-A", cwd=project)
    command("git", "commit", "-qm", "template update", cwd=project)
    assert "up to date" in command("cruft", "check", "--checkout", head, cwd=project).stdout
    diff = command("cruft", "diff", "--checkout", head, cwd=project)
    assert "Your project is ready" not in diff.stdout + diff.stderr


def test_link_attaches_a_project_made_with_cookiecutter(tmp_path: Path, template_clone: Path) -> None:
    project = render(tmp_path)  # plain cookiecutter, from this template's working tree
    command("git", "init", "-q", cwd=project)
    command("git", "add", "-A", cwd=project)
    command("git", "commit", "-qm", "made by cookiecutter", cwd=project)
    head = command("git", "rev-parse", "HEAD", cwd=template_clone).stdout.strip()
    command("cruft", "link", "--no-input", "--checkout", head, str(template_clone), cwd=project)
    assert f'"commit": "{head}"' in (project / ".cruft.json").read_text()
    assert "up to date" in command("cruft", "check", "--checkout", head, cwd=project).stdout

"""The README's recipes, "Add a model" and "Add a dataset", followed literally on a copy of this project.

Each recipe's code blocks start with the path they go to: the test writes them there, types the recipe's
commands, and checks that the result trains under 2-rank DDP and resumes exactly from the middle of an epoch.
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DDP, EXACT, FAST, MID_EPOCH, PROJECT, Runs, assert_resumes_bit_identical

LEAVE_OUT = shutil.ignore_patterns("logs", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "my_data.npz")


def recipe(title: str) -> tuple[dict[str, str], list[str]]:
    """The files a README section says to write ({path: text}) and the commands it says to type."""
    section = (PROJECT / "README.md").read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    files = {}
    for body in re.findall(r"```(?:python|yaml)\n(.*?)```", section, re.S):
        path = body.split("\n", 1)[0].removeprefix("# ")
        files[path] = body
    commands = [line for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]
    return files, [re.split(r"\s+#", line)[0].strip() for line in commands if line.strip()]


def follow(tmp_path: Path, *titles: str) -> tuple[Runs, list[str]]:
    """A copy of the project with the recipes' files written; runs go into its own logs/."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=LEAVE_OUT)
    typed = []
    for title in titles:
        files, commands = recipe(title)
        assert files and commands, f"the README has no recipe '{title}'"
        for path, text in files.items():
            (copy / path).write_text(text)  # a file of yours there (you followed the recipe) is replaced in the copy
        typed += commands
    return Runs(copy, project=copy), typed


def type_command(run: Runs, command: str) -> None:
    """A `python train.py ...` command through the test's runner; any other `python ...` as it is."""
    words = shlex.split(command)
    assert words[0] == "python", command
    if words[1] == "train.py":
        run("train.py", *words[2:])
    else:
        subprocess.run([sys.executable, *words[1:]], cwd=run.project, check=True, timeout=300)


@pytest.mark.slow
def test_recipes_train_with_ddp_and_resume_exactly(tmp_path: Path) -> None:
    run, commands = follow(tmp_path, "Add a model", "Add a dataset")
    for command in commands:
        type_command(run, command)
    trained = run.folders()
    assert len(trained) == sum(" train.py" in c for c in commands)  # every command trained, one folder each
    for folder in trained:
        summary = run.summary(folder)
        assert summary["status"] == "finished" and summary["metrics"]["test/acc"] >= 0.8, (folder, summary)

    # Mistakes about the new data: one sentence before any work, no run folder left.
    mistakes = {"data.num_features=30": "has 20 features: set data.num_features", "data.path=x.npz": "x.npz does"}
    for override, sentence in mistakes.items():
        result = run("train.py", "data=arrays", override, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr and sentence in result.stderr
    assert run.folders() == trained

    # The new model on the new data under 2-rank DDP, killed part-way through an epoch and resumed: bit-identical
    # weights. The reference run writes elsewhere (PROJECT_ROOT): the same arrays for both.
    shutil.rmtree(run.project / "logs")
    exact = [o.replace("batch_size=8", "batch_size=4").replace("max_epochs=2", "max_epochs=3") for o in EXACT]
    exact += [f"data.path={run.project / 'my_data.npz'}"]
    # ~79 steps an epoch: killed after a checkpoint at step 100 or later, in the second epoch or the third (under
    # load the poll may see a later one), with an epoch left: the kill lands while it still trains
    assert_resumes_bit_identical(run, tmp_path, "model=cnn", "data=arrays", *DDP, *MID_EPOCH, *exact, kill_at=100)


def test_the_two_recipes_train_together(tmp_path: Path) -> None:
    run, commands = follow(tmp_path, "Add a model", "Add a dataset")
    (make_arrays,) = [command for command in commands if command.startswith("python -c")]
    type_command(run, make_arrays)
    run("train.py", "model=cnn", "data=arrays", *FAST)  # 20 features, not the digits' 64
    # The Lightning way to load, in a process that knows the recipe's network but not the run's config
    (folder,) = run.folders()
    env = {**os.environ, "PYTHONPATH": str(run.project / "src")}
    checkpoint = str(folder / "checkpoints" / "last.ckpt")
    loaded = subprocess.run([sys.executable, "-c", LOADS, checkpoint], env=env, capture_output=True, text=True)
    assert loaded.stdout.split() == ["SmallCNN", "5", "same"], loaded.stderr[-2000:]  # 20 features: a 5x5 square

    assert_the_dataset_recipe_cuts_folds_of_what_its_test_split_leaves(run)


def assert_the_dataset_recipe_cuts_folds_of_what_its_test_split_leaves(run: Runs) -> None:
    path = next(run.project.glob("src/*/data/arrays_datamodule.py"))
    spec = importlib.util.spec_from_file_location("arrays_datamodule", path)
    recipe_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe_module)

    def split(**folds) -> dict[str, set[int]]:
        datamodule = recipe_module.ArraysDataModule(str(run.project / "my_data.npz"), 20, 3, **folds)
        datamodule.setup("fit")
        return {name: set(getattr(datamodule, name).indices) for name in ("train", "val", "test")}

    usual = split()
    assert [len(usual[name]) for name in ("train", "val", "test")] == [630, 135, 135]  # of 900 examples
    folds = [split(num_folds=5, fold=fold) for fold in range(5)]
    assert all(fold["test"] == usual["test"] for fold in folds)
    assert all(fold["val"].isdisjoint(fold["train"]) and len(fold["val"] | fold["train"]) == 765 for fold in folds)
    assert set().union(*(fold["val"] for fold in folds)) == usual["train"] | usual["val"]  # 5 x 153 = 765
    assert sum(len(fold["val"]) for fold in folds) == 765


LOADS = """
import sys, torch
from {{cookiecutter.package_name}}.models.classifier import Classifier

model = Classifier.load_from_checkpoint(sys.argv[1])
weights = torch.load(sys.argv[1], weights_only=True)["state_dict"]
same = all(torch.equal(value, weights[key]) for key, value in model.state_dict().items())
print(type(model.net).__name__, model.net.side, "same" if same else "differ")
"""

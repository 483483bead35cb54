"""predict.py as the README's "Predict" says: a row for every input, in input order, with the classes and
probabilities the checkpoint's own model computes for those inputs (loaded the Lightning way); one whole file under
DDP; a file that is missing or malformed refused in one sentence, with nothing written. One short training run
serves every test here."""

import csv
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DDP, FAST, PROJECT, TINY_GPT, Runs, needs, readme_commands

from {{cookiecutter.package_name}}.harness.callbacks.prediction_writer import in_input_order
from {{cookiecutter.package_name}}.harness.checks import ConfigError
from {{cookiecutter.package_name}}.harness.data import read_inputs
from {{cookiecutter.package_name}}.models.classifier import Classifier
from {{cookiecutter.package_name}}.models.language_model import LanguageModel

MAKE_INPUTS, ONE_PROCESS, RANKS = [c for c in readme_commands() if "digits.npz" in c or "digits.csv" in c]
(CONTINUES,) = [c for c in readme_commands() if "prompts.txt" in c]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short digits run, with the README's input files (100 images) in the folder above its logs."""
    run = Runs(tmp_path_factory.mktemp("trained"))
    run("train.py", "trainer=cpu", *FAST)
    make_inputs = MAKE_INPUTS.replace("'src/", f"'{PROJECT}/src/")  # the project's digits, written beside the logs
    subprocess.run([sys.executable, *shlex.split(make_inputs)[1:]], cwd=run.root, check=True)
    (folder,) = run.folders()
    return folder


def predict(run: Runs, command: str, trained: Path) -> tuple[list[int], torch.Tensor]:
    """The README command on the trained run (inputs beside it); the classes and probabilities of the file it
    wrote."""
    inputs = trained.parents[3]  # <root>/logs/train/runs/<run>
    command = command.replace("logs/train/runs/<run id>", str(trained)).replace("=digits.", f"={inputs}/digits.")
    run("predict.py", *shlex.split(command)[2:])
    (folder,) = run.folders("predict")
    (written,) = [p for p in folder.iterdir() if p.name.startswith("predictions")]  # one file, whatever the ranks
    if written.suffix == ".npz":
        arrays = np.load(written)  # no pickle: arrays of numbers
        return arrays["class"].tolist(), torch.tensor(arrays["probability"])
    if written.suffix == ".parquet":
        rows = needs("pyarrow.parquet", "parquet").read_table(written).to_pylist()
    else:
        with open(written) as file:
            rows = list(csv.DictReader(file))
    probabilities = [[float(row[f"probability_{c}"]) for c in range(10)] for row in rows]
    return [int(row["class"]) for row in rows], torch.tensor(probabilities)


def assert_the_checkpoints_predictions(written: tuple[list[int], torch.Tensor], trained: Path) -> None:
    images = np.load(trained.parents[3] / "digits.npz")["x"]
    best = Runs(trained.parents[3]).summary(trained)["best_ckpt_path"]  # what a run folder stands for
    model = Classifier.load_from_checkpoint(best).eval()
    with torch.no_grad():
        expected = model(torch.tensor(images / 16.0, dtype=torch.float32)).softmax(dim=-1)
    classes, probabilities = written
    assert len(classes) == len(images) == 100
    assert classes == expected.argmax(dim=-1).tolist()  # in input order
    assert torch.allclose(probabilities.float(), expected, atol=1e-6)


@pytest.mark.parametrize("table", ["csv", "parquet"])
def test_predicts_every_input_in_order_as_the_checkpoint_computes(run, trained: Path, table: str) -> None:
    if table == "parquet":
        needs("pyarrow", "parquet")
    assert_the_checkpoints_predictions(predict(run, f"{ONE_PROCESS} predictions={table}", trained), trained)


@pytest.mark.slow
def test_ddp_ranks_write_one_whole_ordered_file(run, trained: Path) -> None:
    assert all(option in RANKS for option in DDP) and "predictions=npz" in RANKS  # arrays, the README's second form
    assert_the_checkpoints_predictions(predict(run, RANKS, trained), trained)


def test_the_ranks_shares_come_back_in_input_order_each_input_once() -> None:
    # rank 0 predicted inputs 0, 2 and 0 again (a padding sampler), rank 1 input 1, rank 2 none (3 inputs, 3 ranks)
    shares = [
        (torch.tensor([0, 2, 0]), {"class": torch.tensor([7, 9, 7]), "text": ["a", "c", "a"]}),
        (torch.tensor([1]), {"class": torch.tensor([8]), "text": ["b"]}),
        (torch.tensor([], dtype=torch.long), {}),
    ]
    ordered = in_input_order(shares, inputs=3)
    assert ordered["class"].tolist() == [7, 8, 9] and ordered["text"] == ["a", "b", "c"]
    with pytest.raises(RuntimeError, match="predictions came back for 3 of 4 inputs: nothing written"):
        in_input_order(shares, inputs=4)


@pytest.mark.slow
def test_a_gpt_continues_every_line_as_its_checkpoint_does(run) -> None:
    run("train.py", *TINY_GPT)
    (trained,) = run.folders()
    lines = ["def ", "", "import os", "class A:"]  # an empty line too: row numbers stay line numbers
    (run.root / "prompts.txt").write_text("\n".join(lines) + "\n")
    command = CONTINUES.replace("logs/train/runs/<run id>", str(trained))
    command = command.replace("=prompts.txt", f"={run.root}/prompts.txt")
    run("predict.py", *shlex.split(command.replace("sample_tokens=100", "sample_tokens=12"))[2:])  # 12 are enough
    (folder,) = run.folders("predict")
    with open(folder / "predictions.csv", newline="") as file:
        written = [row["text"] for row in csv.DictReader(file)]
    model = LanguageModel.load_from_checkpoint(run.summary(trained)["best_ckpt_path"])
    assert written == [model.generate(line, 12) for line in lines]


def test_a_missing_or_malformed_file_is_refused_in_one_sentence(run, trained: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "y.npz", y=np.zeros((3, 64)))
    np.savez(tmp_path / "narrow.npz", x=np.zeros((3, 10)))
    (tmp_path / "words.csv").write_text("a,b\n1,x\n")
    refusals = {
        "nothing.npz": "does not exist: pass a .npz file with an array x, or a .csv file, of 64 numbers a row",
        "y.npz": "holds ['y'] but no array x: save the inputs as np.savez(path, x=...)",
        "narrow.npz": "holds an array of shape (3, 10) (float64), and the model reads a .npz file",
        "words.csv": "is not a CSV file of numbers",
    }
    for name, sentence in refusals.items():
        with pytest.raises(ConfigError, match=re.escape(sentence)):
            read_inputs(str(tmp_path / name), num_features=64)
    result = run("predict.py", f"ckpt_path={trained}", f"data.predict_path={tmp_path / 'y.npz'}", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ERROR: ") and refusals["y.npz"] in result.stderr
    other = run("predict.py", f"ckpt_path={trained}", "data.predict_path=x.npz", "predictions=json", check=False)
    assert "ERROR: predict.py writes a .csv, .parquet or .npz file, not predictions.json: " in other.stderr
    np.savez(tmp_path / "one.npz", x=np.zeros((1, 64)))  # fewer inputs than ranks: Lightning's sampler asserts
    fewer = run("predict.py", f"ckpt_path={trained}", f"data.predict_path={tmp_path / 'one.npz'}", *DDP, check=False)
    assert "holds 1 input, fewer than the 2 ranks that would share them: predict on fewer ranks" in fewer.stderr
    assert run.folders("predict") == [] and list(run.root.rglob("predictions.csv")) == []  # nothing written

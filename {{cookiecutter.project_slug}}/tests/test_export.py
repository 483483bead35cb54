"""export.py as the README's "Export" says: files that run with torch alone (and onnxruntime alone), at any batch
size, computing what the checkpoint's network computes; the README's snippets that load them, run as printed."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import FAST, PROJECT, TINY_GPT, Runs, readme_commands

from {{cookiecutter.package_name}}.models.classifier import Classifier

(EXPORT,) = [c for c in readme_commands() if c.startswith("python export.py")]
WITH_ONNX = importlib.util.find_spec("onnxscript") is not None and importlib.util.find_spec("onnxruntime") is not None


def export(run: Runs, trained: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    command = EXPORT.replace("logs/train/runs/<run id>", str(trained))
    return run("export.py", *shlex.split(command)[2:], *overrides, check=check)


def snippets() -> list[str]:
    """The README's Python blocks of "Export", as printed."""
    section = (PROJECT / "README.md").read_text().split("\n## Export\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_exported_files_run_without_the_project_as_the_checkpoint_does(run) -> None:
    run("train.py", "trainer=cpu", *FAST)
    (trained,) = run.folders()
    result = export(run, trained)
    (folder,) = run.folders("export")
    checked = f"{folder / 'model.pt2'}: on 4 test inputs, the largest difference from the checkpoint's network is 0 "
    assert checked in result.stdout + result.stderr
    # Independently of export.py's own check: 7 inputs, a batch size neither traced nor checked
    net = Classifier.load_from_checkpoint(trained / "checkpoints" / "last.ckpt").net.eval()
    inputs = torch.rand(7, 64)
    with torch.no_grad():
        assert torch.equal(torch.export.load(folder / "model.pt2").module()(inputs), net(inputs))
    # The README's snippets in the export folder, by a Python that does not see this project
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    for snippet in snippets():
        if "onnxruntime" in snippet and not WITH_ONNX:
            continue
        printed = subprocess.run([sys.executable, "-c", snippet], cwd=folder, env=environment, capture_output=True)
        assert printed.returncode == 0, printed.stderr.decode()[-2000:]
        assert re.fullmatch(r"(tensor\()?\[\d(, \d| \d){4}\]\)?\n", printed.stdout.decode()), printed.stdout
    assert (folder / "model.onnx").is_file() == WITH_ONNX


@pytest.mark.slow
def test_the_gpt_exports_and_a_difference_above_tolerance_is_refused(run) -> None:
    run("train.py", *TINY_GPT)
    (trained,) = run.folders()
    export(run, trained)
    (folder,) = run.folders("export")
    assert (folder / "model.pt2").is_file()
    refused = export(run, trained, "tolerance=-1", check=False)  # 0 is above it
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "model.pt2 computes up to 0 away from the checkpoint's network, above tolerance=-1" in refused.stderr
    # Mistakes refused in one sentence before any work
    mistakes = [
        (["tolerance=abc"], "tolerance=abc must be a number: e.g. tolerance=1e-4."),
        (["batch_size=1"], "batch_size=1 must be a whole number of 2 or more: the network is traced with that many"),
        (["model=mlp", "data=digits"], "holds weights this model cannot take: it has net.tok_emb.weight, which this"),
        (["model=mlp"], "model.num_classes=${data.num_classes} cannot be resolved (Interpolation key 'data.num_"),
    ]
    for overrides, sentence in mistakes:
        refused = export(run, trained, *overrides, check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert sentence in refused.stderr, refused.stderr[-2000:]
    assert len(run.folders("export")) == 2  # the export above and the one above tolerance (its files kept to look at)

"""A run's console holds the progress bar and lines worth reading, none of the libraries' noise (README, "Where
things are": a quiet console)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT

from {{cookiecutter.package_name}}.harness import console

# Lines that default runs printed before (harness/console.py, harness/callbacks/progress_bar.py say what silences each).
NOISE = [
    "💡 Tip:",  # Lightning advertising litlogger and litmodels
    "Trainer already configured with model summary callbacks",
    "FLOPs",  # a column of zeros and `Total FLOPs: 0`: the model has no example_input_array
    "TPU available",
    "all_gather is deprecated",  # Lightning's use of a deprecated torch API, once per rank
    "DistributedSampler",  # Lightning at every DDP test
    "LeafSpec",
    "The anonymous setting has no effect",  # wandb, when the project's default logger is wandb
    " 0.00it/s",  # the speed before it is measured (not "150.00it/s")
    "v_num",
    "…",  # a metric name cut short by the progress bar
    "smaller than the logging interval",  # Lightning, when an epoch has fewer batches than log_every_n_steps
    "This continues a run",  # said by every new run with overrides once (harness/launch.py: only continued ones)
]
# Warnings print as `UserWarning: ...`, or as `path.py:123: ...` where Lightning formats them.
WARNING_LINE = re.compile(r"Warning:|^\S+\.py:\d+: ", re.MULTILINE)
# 4 batches, fewer than the logging interval (10 steps): Lightning's warning about it is noise too.
SHORT = ["trainer.max_epochs=1", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2"]


def assert_no_noise(output: str) -> None:
    assert [marker for marker in NOISE if marker in output] == [], output
    assert WARNING_LINE.findall(output) == [], output


@pytest.mark.slow
def test_default_run_prints_the_bar_and_the_results_only(run) -> None:
    # With the project's default logger; wandb, if that is the default, offline.
    # Logging every 2 steps: the bar shows the speed, logged with the loss.
    result = run("train.py", "trainer=cpu", *SHORT, "trainer.log_every_n_steps=2", env={"WANDB_MODE": "offline"})
    output = result.stdout + result.stderr
    assert_no_noise(output)
    (folder,) = run.folders()
    assert f"Output folder: {folder}" in output
    assert re.search(r"Trainable params: \d", output)  # the model summary
    # The config tree, its lines whole in a pipe: a class path is not cut at 80 columns.
    package = console.__name__.split(".")[0]
    assert f"- _target_: {package}.harness.strategies.atomic_checkpoint_io.AtomicCheckpointIO\n" in output
    assert re.search(r"^Epoch 0/0 .* 4/4 ", output, re.MULTILINE)  # the progress bar, its last state
    assert re.search(r"train/samples_per_sec: \d+\.\d{3}", output)  # a metric of the bar, its name whole
    assert re.search(r"│\s+test/acc\s+│\s+0\.\d+\s+│", output)  # the test metrics table
    assert "Restoring states from the checkpoint path at " + str(folder / "checkpoints") in output


@pytest.mark.slow
def test_ddp_run_prints_each_line_once(run) -> None:
    result = run("train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *SHORT, "logger=csv")
    output = result.stdout + result.stderr
    assert_no_noise(output)
    assert output.count("Starting with 2 processes") == 1
    assert output.count("Output folder: ") == 1
    assert output.count("├── trainer") == 1  # the config tree, printed by rank zero alone
    assert len(re.findall(r"│\s+test/acc\s+│", output)) == 1


CHILD = """
import multiprocessing
import warnings

from {package}.harness import console


def warn():
    for message in console.IGNORED_WARNINGS:
        warnings.warn(message + " (library noise)", FutureWarning)
    warnings.warn("a warning about the user's settings")


if __name__ == "__main__":
    console.quiet()
    warn()
    child = multiprocessing.get_context("spawn").Process(target=warn)  # as ddp_spawn starts its ranks
    child.start()
    child.join()
"""


def test_processes_that_skip_launch_are_quiet_too(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(package=console.__name__.split(".")[0]))
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "PYTHONWARNINGS": ""}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # Only the user's warning, once from the parent and once from the spawned child.
    assert result.stderr.count("UserWarning: a warning about the user's settings") == 2, result.stderr
    assert "library noise" not in result.stderr

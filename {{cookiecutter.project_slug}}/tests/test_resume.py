"""Nothing lost: a killed run resumed with ckpt_path=last ends exactly where an undisturbed run ends (README,
"Resume": exact, safe to kill)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import in_background

from {{cookiecutter.package_name}}.harness import consolidate, resume
from {{cookiecutter.package_name}}.harness.strategies import atomic_checkpoint_io

# Deterministic and slow enough to be killed mid-run: 158 steps per epoch on one process. Two epochs: a kill in
# the second proves the resumed order is that epoch's, and the runs stay short (CI's time is a budget).
EXACT = ["trainer.deterministic=true", "trainer.max_epochs=2", "data.batch_size=8", "logger=csv", "test=false"]


def start(run, *overrides: str, console: Path | None = None) -> subprocess.Popen:
    """train.py in the background; what it prints goes to the file `console`, if given."""
    env = dict(os.environ, PROJECT_ROOT=str(run.root), PYTHONPATH=str(run.project / "src"))
    with open(console or os.devnull, "w") as output:  # the process keeps its own copy of the file open
        return in_background(
            [sys.executable, str(run.project / "train.py"), *overrides],
            cwd=run.project,
            env=env,
            stdout=output,
            stderr=output,
        )


def kill_after_checkpoint(run, process: subprocess.Popen, step: int = 0) -> None:
    """SIGKILL the whole run (every rank) once a last.ckpt of at least `step` training steps exists."""
    deadline = time.monotonic() + 300
    while saved(run) < max(step, 0):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def kill_during_next_save(run, process: subprocess.Popen, written: str) -> None:
    """SIGKILL the whole run once `written` (a path under checkpoints/) exists and the next save has begun."""
    deadline = time.monotonic() + 300
    while not list(run.root.glob(f"logs/train/runs/*/checkpoints/{written}")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    while not list(run.root.glob("logs/train/runs/*/checkpoints/.last.ckpt.partial")):  # the next save begins
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def weights(folder: Path) -> dict:
    last = folder / "checkpoints" / "last.ckpt"
    if last.is_dir():  # a sharded run's (trainer=model_parallel)
        return consolidate.full_checkpoint(last)["state_dict"]
    return torch.load(last, weights_only=True)["state_dict"]


DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
MID_EPOCH = ["callbacks.last_checkpoint.every_n_train_steps=50"]  # checkpoints at steps 50, 100, ... of 158


WORKERS = ["data.num_workers=2"]
CLIPPED = ["+trainer.gradient_clip_val=0.05"]  # clips most steps; the digits MLP has dropout 0.1 in every cell


# Killed in the second epoch (158 steps an epoch on 1 rank, 79 on 2), where the order depends on the epoch.
@pytest.mark.parametrize(
    ("variant", "kill_at"),
    [([], 0), (DDP, 0), (WORKERS, 0), (MID_EPOCH, 200), (DDP + MID_EPOCH + CLIPPED, 100), (WORKERS + MID_EPOCH, 200)],
    ids=["1-epoch-end", "ddp2-epoch-end", "1-epoch-end-w2", "1-mid-epoch", "ddp2-mid-epoch-clip", "1-mid-epoch-w2"],
)
@pytest.mark.slow
def test_killed_run_resumes_bit_identical(run, tmp_path: Path, variant: list[str], kill_at: int) -> None:
    assert_resumes_bit_identical(run, tmp_path, *variant, *EXACT, kill_at=kill_at)


def assert_resumes_bit_identical(
    run, tmp_path: Path, *overrides: str, kill_at: int = 0, weights_within: float = 0.0
) -> None:
    """Kill a run once it has a checkpoint of `kill_at` steps or more, resume it with ckpt_path=last,
    and compare with a run never stopped: same steps, same metrics, bit-identical weights (or, where
    `weights_within` is given, weights that differ by no more than that)."""
    kill_after_checkpoint(run, start(run, *overrides), kill_at)
    (killed,) = run.folders()
    step = resume.saved_step(killed / "checkpoints" / "last.ckpt")
    assert step >= kill_at
    if MID_EPOCH[0] in overrides:  # the resume really starts part-way through an epoch (not a multiple of 50)
        assert step % 50 == 0
    assert not (killed / "summary.json").exists() or run.summary(killed)["status"] != "finished"
    run("train.py", *overrides, "ckpt_path=last")
    assert run.folders() == [killed]  # continued in the same folder

    undisturbed = type(run)(tmp_path / "undisturbed", run.project)
    undisturbed("train.py", *overrides)
    (reference,) = undisturbed.folders()
    resumed, expected = run.summary(killed), undisturbed.summary(reference)
    assert (resumed["global_step"], resumed["epochs"]) == (expected["global_step"], expected["epochs"])
    validation = {k: v for k, v in expected["metrics"].items() if k.startswith("val/")}
    # Rounded to 6 digits in summary.json; where the weights differ by rounding (`weights_within`), the last may too.
    closeness = pytest.approx(validation, rel=1e-5) if weights_within else validation
    assert validation and {k: resumed["metrics"][k] for k in validation} == closeness
    a, b = weights(killed), weights(reference)
    assert a.keys() == b.keys()
    for key in a:
        same = torch.allclose(a[key], b[key], atol=weights_within) if weights_within else torch.equal(a[key], b[key])
        assert same, key


@pytest.mark.slow
def test_kill_during_checkpoint_write_keeps_the_last_good_one(run) -> None:
    # A big network makes each checkpoint ~100 MB: slow enough to be caught in the middle of writing.
    big = ["model.net.hidden=[2048,2048,2048]", "trainer.max_epochs=5", "logger=csv", "test=false"]
    kill_during_next_save(run, start(run, "trainer=cpu", *big), "last.ckpt")
    (folder,) = run.folders()
    checkpoint = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)  # loads: not truncated
    assert checkpoint["global_step"] > 0
    run("train.py", "trainer=cpu", *big, "trainer.max_epochs=2", "ckpt_path=last")  # and resumes


@pytest.mark.slow
def test_last_checkpoint_is_the_newest_state_and_resume_starts_there(run) -> None:
    # The best checkpoint by the metric is the first epoch's (mode=min on an accuracy that rises), so an
    # older state than last.ckpt exists: ckpt_path=last must still continue from the newest.
    older_best = ["callbacks.model_checkpoint.mode=min", "trainer.max_epochs=6", "data.batch_size=16", "logger=csv"]
    process = start(run, "trainer=cpu", *older_best, "test=false")
    deadline = time.monotonic() + 300
    while not list(run.root.glob("logs/train/runs/*/checkpoints/last.ckpt")) or saved(run) < 3 * 79:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    (folder,) = run.folders()
    steps = {p.name: resume.saved_step(p) for p in (folder / "checkpoints").glob("*.ckpt")}
    assert steps["last.ckpt"] == max(steps.values()) > min(steps.values())  # the best is older
    result = run("train.py", "trainer=cpu", *older_best, "ckpt_path=last")
    assert f"ckpt_path=last: resuming from {folder}/checkpoints/last.ckpt" in result.stdout + result.stderr
    assert run.summary(folder)["global_step"] == resume.saved_step(folder / "checkpoints" / "last.ckpt") == 6 * 79


def saved(run) -> int:
    return max((resume.saved_step(p) for p in run.root.glob("logs/train/runs/*/checkpoints/last.ckpt")), default=-1)


def test_resume_picks_the_checkpoint_with_most_steps_whatever_the_file_times(tmp_path: Path) -> None:
    # Successive requeues run on nodes whose clocks differ: the newer file can carry the older time.
    torch.save({"global_step": 900}, tmp_path / "hpc_ckpt_2.ckpt")
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 500}, tmp_path / "checkpoints" / "last.ckpt")
    os.utime(tmp_path / "hpc_ckpt_2.ckpt", (1_000, 1_000))
    (tmp_path / "checkpoints" / ".last.ckpt.partial").write_bytes(b"killed mid-write")
    assert resume.newest_checkpoint(tmp_path) == tmp_path / "hpc_ckpt_2.ckpt"


def test_atomic_checkpoint_io_clears_what_a_killed_write_left_and_refuses_storage_options(tmp_path: Path) -> None:
    io = atomic_checkpoint_io.AtomicCheckpointIO()
    (tmp_path / ".epoch_003.ckpt.partial").write_bytes(b"a write killed half-way")  # as large as a checkpoint
    io.save_checkpoint({"global_step": 7}, tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert resume.saved_step(tmp_path / "last.ckpt") == 7
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint({"global_step": 8}, tmp_path / "last.ckpt", storage_options={"x": 1})
    assert resume.saved_step(tmp_path / "last.ckpt") == 7

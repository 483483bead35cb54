"""A grid sweep stopped part-way continues where it stopped when launched again into its folder (README, "Repeats,
folds and sweeps that resume")."""

import os
import signal
import time

import pytest
from helpers import start

from {{cookiecutter.package_name}}.harness import resume

# 4 jobs of 20 steps, a checkpoint every 5: Ctrl-C lands in the third job, after its first checkpoint.
SWEEP = ["-m", "model.optimizer.lr=1e-3,3e-3", "seed=0,1", "trainer=cpu", "trainer.max_epochs=1", "data.batch_size=8"]
SWEEP += ["+trainer.limit_train_batches=20", "+trainer.limit_val_batches=1", "logger=csv", "test=false"]
SWEEP += ["callbacks.last_checkpoint.every_n_train_steps=5", "extras.print_config=false"]


@pytest.mark.slow
def test_a_sweep_stopped_by_ctrl_c_skips_finished_jobs_and_continues_the_others(run, tmp_path) -> None:
    process = start(run, *SWEEP, console=tmp_path / "first.log")
    multiruns = run.root / "logs" / "train" / "multiruns"
    deadline = time.monotonic() + 300
    while not list(multiruns.glob("*/2/checkpoints/last.ckpt")):  # the third job has saved a checkpoint
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
    process.wait()
    (sweep,) = multiruns.iterdir()
    command = " ".join(["python train.py", *SWEEP, f"hydra.sweep.dir={sweep}"])
    assert f"To continue the sweep: {command}\n" in (tmp_path / "first.log").read_text()
    assert [run.summary(sweep / job)["status"] for job in "012"] == ["finished", "finished", "interrupted"]
    assert not (sweep / "3").exists()
    stopped_at = resume.saved_step(sweep / "2" / "checkpoints" / "last.ckpt")

    result = run("train.py", *SWEEP, f"hydra.sweep.dir={sweep}")  # the same command, into the sweep's folder
    output = result.stdout + result.stderr
    for job in "01":
        assert f"Job {job} finished in an earlier launch of this sweep ({sweep / job}): not run again" in output
    assert "Job 2 was stopped (interrupted): it continues from its checkpoint" in output
    assert f"resuming from {sweep / '2' / 'checkpoints' / 'last.ckpt'} (step {stopped_at})" in output
    summaries = [run.summary(sweep / job) for job in "0123"]
    assert [len(s["attempts"]) for s in summaries] == [1, 1, 2, 1]  # 2 jobs ran, not 4
    assert [s["status"] for s in summaries] == ["finished"] * 4 and {s["global_step"] for s in summaries} == {20}
    assert "2 groups of 4 runs" in result.stdout  # the end table has every job

    other = run("train.py", *SWEEP[:1], "model.optimizer.lr=1e-2", *SWEEP[2:], f"hydra.sweep.dir={sweep}", check=False)
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert f"ERROR: {sweep} holds a sweep of model.optimizer.lr=1e-3,3e-3 seed=0,1 " in other.stderr
    assert "to continue it, give its overrides; for a new sweep, leave out hydra.sweep.dir." in other.stderr
    assert [len(run.summary(sweep / job)["attempts"]) for job in "0123"] == [1, 1, 2, 1]  # nothing ran

"""A run's logs keep its whole history: continued with ckpt_path=last, and across ddp_spawn's processes
(README, "Loggers": every logger keeps a run's whole history when it is resumed; "Resume": a continued run takes
this command's schedule)."""

import csv
import math

import pytest
from helpers import csv_rows, needs

# 4 steps per epoch, each one logged
SMALL = ["+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "trainer.log_every_n_steps=1"]


def steps_with(table: list[dict], key: str) -> list[int]:
    return [int(row["step"]) for row in table if row[key]]


@pytest.mark.slow
def test_csv_keeps_earlier_rows_when_a_run_continues(run) -> None:
    run("train.py", "trainer=cpu", "logger=csv", *SMALL, "trainer.max_epochs=2", "test=false")
    (folder,) = run.folders()
    # As if the run had gone on past its last checkpoint (step 8) and been killed at step 10.
    table = csv_rows(folder)
    orphans = [{**{key: "" for key in table[0]}, "epoch": "2", "step": str(s), "train/loss": "999"} for s in (8, 9)]
    with open(folder / "csv" / "metrics.csv", "a", newline="") as file:
        csv.DictWriter(file, fieldnames=list(table[0])).writerows(orphans)

    result = run("train.py", "trainer=cpu", "logger=csv", *SMALL, "trainer.max_epochs=4", "ckpt_path=last")
    assert run.folders() == [folder]
    assert "will be deleted" not in result.stdout + result.stderr
    table = csv_rows(folder)
    assert {int(row["epoch"]) for row in table if row["val/acc"]} == {0, 1, 2, 3}
    assert steps_with(table, "train/loss") == list(range(16))  # each step once: the orphans were replaced
    assert "999" not in {row["train/loss"] for row in table}
    assert steps_with(table, "test/acc") == [16]  # a column that appeared later, in the same file
    # Continued from 2 epochs to 4, the cosine schedule (T_max: ${trainer.max_epochs}) is the 4-epoch one's from
    # epoch 2 on, not the 2-epoch one's past its end (harness/callbacks/optimizer_settings.py).
    rates = {int(row["step"]) // 4: float(row["lr-AdamW"]) for row in table if row.get("lr-AdamW")}  # by epoch
    cosine = [0.003, 0.003, 0.003 * (1 + math.cos(math.pi * 2 / 4)) / 2, 0.003 * (1 + math.cos(math.pi * 3 / 4)) / 2]
    assert rates == pytest.approx(dict(enumerate([0.003, 0.0015, *cosine[2:]])), rel=1e-6)


@pytest.mark.slow
def test_csv_keeps_fit_and_test_of_ddp_spawn(run) -> None:
    spawn = ["trainer=ddp_spawn", "trainer.accelerator=cpu", "trainer.devices=2"]
    run("train.py", *spawn, "logger=csv", *SMALL, "trainer.max_epochs=2")
    (folder,) = run.folders()
    table = csv_rows(folder)
    assert steps_with(table, "train/loss") == list(range(8))  # DDP steps the two ranks together
    assert {int(row["epoch"]) for row in table if row["val/acc"]} == {0, 1}
    assert len(steps_with(table, "test/acc")) == 1  # written by another process than the fit's rows


@pytest.mark.slow
def test_tensorboard_continues_the_same_run(run) -> None:
    event_accumulator = needs("tensorboard.backend.event_processing.event_accumulator")
    run("train.py", "trainer=cpu", "logger=tensorboard", *SMALL, "trainer.max_epochs=1", "test=false")
    run("train.py", "trainer=cpu", "logger=tensorboard", *SMALL, "trainer.max_epochs=2", "ckpt_path=last")
    (folder,) = run.folders()
    logs = folder / "tensorboard"
    assert [p for p in logs.iterdir() if p.is_dir()] == []  # one run (no version_1/): event files of both in it
    events = event_accumulator.EventAccumulator(str(logs)).Reload()
    assert [e.step for e in events.Scalars("val/acc")] == [3, 7]
    assert [e.step for e in events.Scalars("train/loss")] == list(range(8))


@pytest.mark.slow
def test_wandb_offline_resumes_the_same_run(run) -> None:
    needs("wandb")
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": "", "HOME": str(run.root)}
    run("train.py", "trainer=cpu", "logger=wandb", *SMALL, "trainer.max_epochs=1", "test=false", env=env)
    run("train.py", "trainer=cpu", "logger=wandb", *SMALL, "trainer.max_epochs=2", "ckpt_path=last", env=env)
    (folder,) = run.folders()
    attempts = sorted((folder / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2
    run_id = (folder / "wandb" / "run_id").read_text().strip()
    assert {p.name.rsplit("-", 1)[1] for p in attempts} == {run_id}  # `wandb sync` uploads both into one run

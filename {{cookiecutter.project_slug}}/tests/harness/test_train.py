"""Real runs of every strategy that can run here: ranks, folders and summaries are what users rely on (README,
"Strategies" and "One run, one folder")."""

import pytest
import torch
from helpers import FAST

from {{cookiecutter.package_name}}.harness import launch


@pytest.mark.parametrize("trainer", ["ddp", "ddp_spawn"])
@pytest.mark.slow
def test_two_cpu_ranks_write_one_folder(run, trainer: str) -> None:
    run("train.py", f"trainer={trainer}", "trainer.accelerator=cpu", "trainer.devices=2", *FAST)
    (folder,) = run.folders()  # no stray folder from the second rank
    summary = run.summary(folder)
    assert (summary["strategy"], summary["world_size"], summary["devices"]) == (trainer, 2, 2)
    # 4 batches per rank and epoch; DDP steps the ranks together, so global_step counts them once
    assert summary["global_step"] == 4
    assert "test/acc" in summary["metrics"] and "val/acc" in summary["metrics"]
    assert [p.name for p in folder.glob("*.log")] == ["train.log"]


@pytest.mark.slow
def test_eval_from_checkpoint_writes_its_own_summary(run) -> None:
    run("train.py", "trainer=cpu", *FAST)
    (train_folder,) = run.folders()
    checkpoint = run.summary(train_folder)["best_ckpt_path"]
    run("eval.py", f"ckpt_path={checkpoint}", "trainer=cpu")
    (eval_folder,) = run.folders("eval")
    summary = run.summary(eval_folder)
    assert summary["tested_ckpt_path"] == checkpoint
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where there is no GPU")
def test_dp_without_gpu_says_what_to_use_instead(run) -> None:
    result = run("train.py", "trainer=dp", check=False)
    assert result.returncode != 0
    assert "trainer=cpu" in result.stderr and "trainer=ddp trainer.accelerator=cpu" in result.stderr
    assert "Traceback" not in result.stderr
    assert run.folders() == []  # refused before any work: no run folder left


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dp_on_gpus_trains(run) -> None:
    run("train.py", "trainer=dp", "logger=csv")
    (folder,) = run.folders()
    summary = run.summary(folder)
    assert (summary["strategy"], summary["accelerator"], summary["world_size"]) == ("dp", "cuda", 1)
    assert summary["devices"] == torch.cuda.device_count()
    assert summary["metrics"]["test/acc"] >= 0.90


DRIVER = """
import os, sys
from {{cookiecutter.package_name}} import train

# A user's driver script (or notebook) running two DDP runs one after the other in one process.
overrides = sys.argv[1:]
for seed in (1, 2):
    sys.argv = ["train.py", f"seed={seed}", *overrides]  # Lightning starts the other rank from sys.argv
    train.main()
    print("LEFT:", sorted(k for k in os.environ if k in NAMES))
"""


@pytest.mark.slow
def test_two_runs_in_one_process_get_a_folder_each_and_leave_nothing_behind(run, tmp_path) -> None:
    names = ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", launch.RUN_ID_ENV]
    names.append(launch.RUN_CONFIG_ENV)
    (tmp_path / "driver.py").write_text(DRIVER.replace("NAMES", repr(names)))
    result = run(str(tmp_path / "driver.py"), "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *FAST)
    assert result.stdout.count("LEFT: []") == 2, result.stdout[-2000:]
    folders = run.folders()
    assert len(folders) == 2  # not both runs in one folder
    for folder, seed in zip(folders, ("seed=1", "seed=2"), strict=True):
        assert seed in (folder / ".hydra" / "overrides.yaml").read_text()
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
        assert run.summary(folder)["world_size"] == 2


@pytest.mark.slow
def test_a_config_larger_than_the_environment_allows_trains_under_ddp(run, tmp_path) -> None:
    # 8,000 items (~200 KB resolved): more than Linux lets one environment variable hold (128 KiB).
    (tmp_path / "notes").mkdir()
    items = "\n".join(f"  - experiment note number {i:05d}" for i in range(8000))
    (tmp_path / "notes" / "big.yaml").write_text(f"# @package _global_\nnotes:\n{items}\n")
    big = [f"hydra.searchpath=[file://{tmp_path}]", "+notes=big"]
    run("train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *big, *FAST)
    (folder,) = run.folders()
    assert (run.summary(folder)["world_size"], run.summary(folder)["status"]) == (2, "finished")
    assert len((folder / ".hydra" / "config.yaml").read_text()) > 200_000
    assert not (folder / ".hydra" / "resolved-config.yaml").exists()  # the hand-over file is gone after the run

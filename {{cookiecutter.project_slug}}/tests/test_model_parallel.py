"""trainer=model_parallel on 2 CPU ranks: FSDP2 sharding and tensor parallelism compute what one device computes,
and their checkpoints (folders) resume exactly, evaluate, generate and consolidate into one file."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_gpt import SMALL
from test_resume import MID_EPOCH, assert_resumes_bit_identical

SHARDED = ["trainer=model_parallel", "trainer.accelerator=cpu", "trainer.devices=2"]
TENSOR_PARALLEL = [*SHARDED, "trainer.strategy.tensor_parallel_size=2"]  # data_parallel_size: auto = 1
SHORT = [
    "experiment=gpt",
    "data.corpus_mb=0.25",
    "model.sample_tokens=0",
    "logger=csv",
    "trainer.val_check_interval=1.0",
]
SHORT += ["+trainer.limit_train_batches=20", "test=false"]


def val_loss(run, *overrides: str) -> float:
    result = run("train.py", *SHORT, *overrides)
    folder = next(f for f in run.folders() if f.name in result.stdout)
    return run.summary(folder)["metrics"]["val/loss"]


@pytest.mark.parametrize(
    ("sharded", "reference"),
    [(TENSOR_PARALLEL, ["trainer=cpu"]), (SHARDED, ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"])],
    ids=["tensor-parallel-2-vs-1-process", "fsdp2-2-vs-ddp-2"],
)
def test_sharded_gpt_computes_what_unsharded_computes(run, sharded: list[str], reference: list[str]) -> None:
    # Tensor parallel splits each block's heads over the ranks (with gradient clipping across both layouts);
    # FSDP2 shards parameters and optimizer state: after 20 steps, validation loss as without them.
    assert val_loss(run, *sharded) == pytest.approx(val_loss(run, *reference), rel=1e-5)


def test_sharded_gpt_killed_mid_epoch_resumes_bit_identical(run, tmp_path: Path) -> None:
    assert_resumes_bit_identical(run, tmp_path, *SMALL, *SHARDED, *MID_EPOCH, kill_at=100)


def test_tensor_parallel_gpt_killed_mid_epoch_resumes_to_the_same_metrics(run, tmp_path: Path) -> None:
    # Same step and validation metrics (to 6 digits) as a run never stopped; the weights differ by float rounding
    # (1e-7 measured), which AdamW grows to ~2e-3 in the attention's key bias alone (its gradient is 0 in theory,
    # so its updates are normalized noise). Not bit-identical: FSDP2 above is.
    assert_resumes_bit_identical(run, tmp_path, *SMALL, *TENSOR_PARALLEL, *MID_EPOCH, kill_at=100, weights_within=1e-2)


def test_sharded_checkpoint_folder_evaluates_generates_and_consolidates(run, tmp_path: Path) -> None:
    run("train.py", *SHORT[:-1], *TENSOR_PARALLEL)  # with the test after training, on the sharded model
    (folder,) = run.folders()
    last = folder / "checkpoints" / "last.ckpt"
    assert (last / "meta.pt").is_file() and len(list(last.glob("*.distcp"))) == 2  # one shard per rank
    assert not list((folder / "checkpoints").glob(".*"))  # no partial or old folder left behind
    summary = run.summary(folder)
    assert Path(summary["last_ckpt_path"]) == last and Path(summary["best_ckpt_path"]).is_dir()
    # On one CPU process: eval.py gathers the folder into one file and gets the sharded run's test loss
    run("eval.py", f"ckpt_path={summary['best_ckpt_path']}", "trainer=cpu", "logger=csv")
    (evaluation,) = run.folders("eval")
    assert run.summary(evaluation)["metrics"]["test/loss"] == pytest.approx(summary["metrics"]["test/loss"], rel=1e-5)
    sample = run("generate.py", f"ckpt_path={last}", "max_new_tokens=20")
    assert "Sample from" in sample.stdout
    # The README's command: one ordinary .ckpt file that loads on one device
    package = next((run.project / "src").glob("*/harness/consolidate.py")).parent.parent.name
    command = [sys.executable, "-m", f"{package}.harness.consolidate", str(last), str(tmp_path / "one.ckpt")]
    subprocess.run(command, check=True, env={"PYTHONPATH": str(run.project / "src")}, capture_output=True)
    checkpoint = torch.load(tmp_path / "one.ckpt", weights_only=True)
    assert checkpoint["global_step"] == summary["global_step"]
    assert checkpoint["state_dict"]["net.blocks.0.attn.qkv.weight"].shape == (3 * 64, 64)  # whole, not a shard

"""trainer=model_parallel on 2 CPU ranks: FSDP2 sharding and tensor parallelism compute what one device computes,
and their checkpoints (folders) resume exactly, evaluate, generate, export and consolidate into one file (README,
"Models bigger than one device")."""

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
from helpers import GPT_SMALL, MID_EPOCH, SHARDED, assert_resumes_bit_identical, kill_during_next_save, start
from torch.distributed.device_mesh import init_device_mesh

from {{cookiecutter.package_name}}.harness import cluster, consolidate, resume
from {{cookiecutter.package_name}}.models.language_model import LanguageModel

TENSOR_PARALLEL = [*SHARDED, "trainer.strategy.tensor_parallel_size=2"]  # data_parallel_size: auto = 1
SHORT = [
    "experiment=gpt",
    "data.corpus_mb=0.25",
    "model.sample_tokens=0",
    "logger=csv",
    "trainer.val_check_interval=1.0",
]
SHORT += ["model.net.n_layer=2"]  # two blocks of the example's four: each layout's split is the same, the steps cheaper
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
@pytest.mark.slow
def test_sharded_gpt_computes_what_unsharded_computes(run, sharded: list[str], reference: list[str]) -> None:
    # Tensor parallel splits each block's heads over the ranks (with gradient clipping across both layouts);
    # FSDP2 shards parameters and optimizer state: after 20 steps, validation loss as without them.
    assert val_loss(run, *sharded) == pytest.approx(val_loss(run, *reference), rel=1e-5)


@pytest.mark.slow
def test_compiled_tensor_parallel_gpt_computes_what_one_process_computes(run) -> None:
    # model.compile=true under trainer=model_parallel: torch.compile traces the blocks after the plan made their
    # weights DTensors (sharded over 2 ranks); the compiled kernels round differently, hence the looser tolerance.
    compiled = val_loss(run, *TENSOR_PARALLEL, "model.compile=true")
    assert compiled == pytest.approx(val_loss(run, "trainer=cpu"), rel=1e-4)


@pytest.mark.slow
def test_sharded_gpt_killed_mid_epoch_resumes_bit_identical(run, tmp_path: Path) -> None:
    # with dropout (masks drawn by data-parallel position and step) and loader workers (their place restored)
    edges = ["model.net.dropout=0.1", "data.num_workers=2"]
    assert_resumes_bit_identical(run, tmp_path, *GPT_SMALL, *SHARDED, *MID_EPOCH, *edges, kill_at=50)


@pytest.mark.slow
def test_tensor_parallel_gpt_killed_mid_epoch_resumes_bit_identical(run, tmp_path: Path) -> None:
    # The copies of whole parameters each rank of the group holds (norms, embeddings, a row-parallel layer's bias)
    # drift a rounding apart and are made equal at every save, their AdamW moments too: loaded from one copy, the
    # continued run holds what the run never stopped holds (before: 2.4e-7 apart; 2e-3 while the attention had a
    # key bias, whose gradient, 0 in theory, AdamW turned into steps of the learning rate's size).
    # 40 steps an epoch (of 116 with one data-parallel group): killed in the second, after the checkpoint at 50
    # with dropout: each tensor-parallel group draws one mask, the same again after the resume
    sharded = [*GPT_SMALL, *TENSOR_PARALLEL, *MID_EPOCH, "model.net.dropout=0.1"]
    assert_resumes_bit_identical(run, tmp_path, *sharded, kill_at=50)


@pytest.mark.slow
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
    exported = run("export.py", f"ckpt_path={last}")  # the folder gathered into one network, then exported
    assert "model.pt2: on 4 test inputs, the largest difference from the checkpoint's network is" in exported.stdout
    # The README's command: one ordinary .ckpt file that loads on one device
    package = next((run.project / "src").glob("*/harness/consolidate.py")).parent.parent.name
    command = [sys.executable, "-m", f"{package}.harness.consolidate", str(last), str(tmp_path / "one.ckpt")]
    subprocess.run(command, check=True, env={"PYTHONPATH": str(run.project / "src")}, capture_output=True)
    checkpoint = torch.load(tmp_path / "one.ckpt", weights_only=True)
    assert checkpoint["global_step"] == summary["global_step"]
    assert checkpoint["state_dict"]["net.blocks.0.attn.qkv.weight"].shape == (3 * 64, 64)  # whole, not a shard
    # predict.py on the folder as it is, each rank holding its shard: what the gathered network continues
    lines = ["def ", "import os"]
    (tmp_path / "prompts.txt").write_text("\n".join(lines) + "\n")
    inputs = [f"ckpt_path={last}", f"data.predict_path={tmp_path}/prompts.txt", "+model.sample_tokens=8"]
    run("predict.py", *inputs, *TENSOR_PARALLEL)
    (predicted,) = run.folders("predict")
    with open(predicted / "predictions.csv", newline="") as file:
        written = [row["text"] for row in csv.DictReader(file)]
    model = LanguageModel.load_from_checkpoint(tmp_path / "one.ckpt")
    assert written == [model.generate(line, 8) for line in lines]


@pytest.mark.slow
def test_kill_during_a_sharded_save_keeps_the_last_good_folder(run) -> None:
    # Shards of ~50 MB per rank: slow enough to be caught while the next save is being written.
    big = [*SHARDED, "model.net.hidden=[2048,2048,2048]", "trainer.max_epochs=5", "logger=csv", "test=false"]
    kill_during_next_save(run, start(run, *big), "last.ckpt/meta.pt")
    (folder,) = run.folders()
    last = resume.newest_checkpoint(folder)
    assert last is not None and consolidate.full_checkpoint(last)["global_step"] > 0  # whole: every shard reads
    run("train.py", *big, "trainer.max_epochs=2", "ckpt_path=last")  # and resumes


def test_resume_finds_folders_and_one_a_killed_save_moved_aside(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    for name, step in (("epoch_001.ckpt", 100), (".last.ckpt.old", 300), (".last.ckpt.partial", 400)):
        dcp.save({"weights": torch.zeros(2)}, checkpoint_id=checkpoints / name)  # a sharded checkpoint of one rank
        torch.save({"global_step": step}, checkpoints / name / "meta.pt")
    # Killed between moving the previous last.ckpt aside and moving the new one in: the previous one is the
    # newest whole checkpoint; a partial one is never resumed from, however far it got.
    assert resume.newest_checkpoint(tmp_path) == checkpoints / ".last.ckpt.old"


def gloo_threads() -> int:
    return sum(task.read_text().strip() == "pt_gloo_runloop" for task in Path("/proc/self/task").glob("*/comm"))


def test_a_mesh_held_after_the_run_lets_its_process_groups_end_with_it(tmp_path: Path) -> None:
    # A group that outlives the run ends in the interpreter's teardown, where its gloo threads could abort the
    # process ("terminate called without an active exception"): end_process_group ends the mesh's groups too.
    before = gloo_threads()
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    held = init_device_mesh("cpu", (1, 1), mesh_dim_names=("data_parallel", "tensor_parallel"))  # as DTensor's caches
    cluster.end_with_run(held)  # as the model_parallel strategy does with each mesh it makes
    deadline = time.monotonic() + 30
    while gloo_threads() <= before:  # each thread names itself once it runs
        assert time.monotonic() < deadline, "no gloo thread started"
        time.sleep(0.01)
    cluster.end_process_group()
    assert gloo_threads() <= before

"""Faults a long run meets: NaNs, Ctrl-C, bad input. Each ends clearly, keeps what was done, and hangs nothing
(README, "Resume": safe to kill, NaN or inf loss; "Loggers": a missing package in one line)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import DDP, FAST, OFFLINE, OWN_LOGGER, SHARDED, needs, start

from {{cookiecutter.package_name}}.harness.callbacks import stop_on_nonfinite_loss


@pytest.mark.parametrize("ranks", [["trainer=cpu"], pytest.param(DDP, marks=pytest.mark.slow)], ids=["1", "ddp2"])
def test_non_finite_loss_stops_with_the_step(run, ranks: list[str]) -> None:
    result = run("train.py", *ranks, "model.optimizer.lr=1e12", "logger=csv", check=False)
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("STOPPED:")]  # said once
    assert "the training loss is nan at step" in line and "Lower model.optimizer.lr" in line
    (folder,) = run.folders()
    assert run.summary(folder)["status"] == "stopped"


POISON = """
import lightning as L
import torch


class PoisonRankOne(L.Callback):
    # Makes the loss that rank 1 reports to later callbacks NaN from step 3 on; the weights stay finite.
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_rank == 1 and trainer.global_step >= 3:
            outputs["loss"].fill_(torch.nan)
"""


@pytest.mark.slow
def test_non_finite_loss_on_one_rank_stops_every_rank(run, tmp_path) -> None:
    (tmp_path / "poison.py").write_text(POISON)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{run.project / 'src'}"}
    # the poison goes in before the NaN check, which Lightning then calls after it
    callbacks = [
        "~callbacks.stop_on_nonfinite_loss",
        "+callbacks.poison._target_=poison.PoisonRankOne",
        f"+callbacks.nan_check._target_={stop_on_nonfinite_loss.__name__}.StopOnNonFiniteLoss",
    ]
    result = run("train.py", *DDP, *callbacks, "logger=csv", check=False, env=env)
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("STOPPED:")]  # rank zero says it
    assert "the training loss is nan at step 3 on rank 1" in line
    (folder,) = run.folders()
    assert run.summary(folder)["status"] == "stopped"


def test_a_run_killed_while_it_tests_is_not_finished_and_continues_to_its_test(run, tmp_path) -> None:
    (tmp_path / "killer.py").write_text(
        "import os, signal, lightning as L\n\n\nclass KillOnTest(L.Callback):\n"
        "    def on_test_start(self, trainer, module):\n        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{run.project / 'src'}"}
    killed = run("train.py", "trainer=cpu", *FAST, "+callbacks.kill._target_=killer.KillOnTest", check=False, env=env)
    assert killed.returncode == -signal.SIGKILL
    (folder,) = run.folders()
    assert run.summary(folder)["status"] == "testing"  # trained, not tested: a continued sweep runs it again
    run("train.py", "trainer=cpu", *FAST, "ckpt_path=last")
    summary = run.summary(folder)
    assert summary["status"] == "finished" and "test/acc" in summary["metrics"] and len(summary["attempts"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [["trainer=cpu"], DDP], ids=["1", "ddp2"])
def test_ctrl_c_stops_cleanly_keeps_the_checkpoint_and_says_how_to_continue(run, ranks: list[str], tmp_path) -> None:
    overrides = [*ranks, "data.batch_size=8", "trainer.max_epochs=20", "logger=csv"]
    process = start(run, *overrides, console=tmp_path / "console.txt")
    deadline = time.monotonic() + 300
    while not list(run.root.glob("logs/train/runs/*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    assert process.wait(timeout=120) != 0  # Lightning shuts down cleanly, then exits with 1
    (folder,) = run.folders()
    summary, last = run.summary(folder), folder / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)["global_step"]
    assert summary["status"] == "interrupted" and summary["global_step"] >= saved > 0
    # the last lines, printed after the progress bar: what was kept, and the command that continues this run
    *_, said, command = (tmp_path / "console.txt").read_text().strip().splitlines()
    assert said == f"INTERRUPTED at step {summary['global_step']}; saved: step {saved} in {last}."
    continues = " ".join(["python train.py", *overrides, f"ckpt_path=last hydra.run.dir={folder}"])
    assert command == f"To continue from there: {continues}"
    deadline = time.monotonic() + 30
    while live_processes_in_group(process.pid):  # no rank left behind
        assert time.monotonic() < deadline, live_processes_in_group(process.pid)
        time.sleep(0.2)


@pytest.mark.slow
def test_ranks_end_when_rank_zero_is_killed_while_they_start(run) -> None:
    # SIGKILL to rank zero alone (nothing of it runs after) once it has started rank 1: rank 1, still starting,
    # would wait for it in torch's rendezvous for 30 minutes (seen after Ctrl-C of a DDP search); it ends at once.
    process = start(run, *DDP, *FAST)
    deadline = time.monotonic() + 120
    while len(live_processes_in_group(process.pid)) < 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.kill()
    deadline = time.monotonic() + 30
    while live_processes_in_group(process.pid):
        assert time.monotonic() < deadline, live_processes_in_group(process.pid)
        time.sleep(0.2)


def live_processes_in_group(group: int) -> list[int]:
    """Processes of a process group that are still running (zombies waiting to be reaped are not)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def corrupt_checkpoint(run) -> str:
    path = run.root / "corrupt.ckpt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    return str(path)


# Every row of the README's "Bad input" table for train.py: (overrides, what the message says).
BAD_INPUT = [
    (["trainer=nonexistent"], "Could not find 'trainer/nonexistent'"),
    (["trainer.devices=0"], "trainer.devices=0 must be a positive count"),
    (["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=512"], "asks for 512 CPU processes on this machine's"),
    (["data.batch_size=-8"], "data.batch_size=-8 must be a whole number of 1 or more"),
    (["data.batch_size=lots"], "data.batch_size=lots must be a whole number of 1 or more"),
    (["data.num_workers=-1"], "data.num_workers=-1 must be a whole number of 0 or more"),
    (["model.optimizer._target_=torch.optim.Adamw"], "cannot be built: Error locating target 'torch.optim.Adamw'"),
    (["trainer.num_nodes=0"], "trainer.num_nodes=0 must be 1 or more"),
    (["ckpt_path=missing.ckpt"], "ckpt_path=missing.ckpt does not exist"),
    (["data.path=in.txt", "experiment=gpt"], "does not exist: give the file's place, e.g. data.path=/data/in.txt"),
    ([corrupt_checkpoint], "cannot be read safely: it is truncated or not a checkpoint"),
    (["trainer=dp"], "no CUDA GPU is visible"),
    (["trainer=gpu"], "no CUDA GPU is visible"),
    (["trainer=dp", "trainer.sync_batchnorm=true"], "trainer.sync_batchnorm=true cannot work under trainer=dp"),
    (["model.optimizer.lr=abc"], "model.optimizer.lr=abc must be a number: e.g. model.optimizer.lr=0.001."),
    (["data.num_folds=5", "data.fold=1.5"], "data.fold=1.5 must be a whole number: e.g. data.fold=1."),
    (["trainer.max_epochs=three"], "trainer.max_epochs=three must be a number (model.scheduler.T_max takes its value)"),
    (["trainer.max_epoch=1"], "ERROR: trainer.max_epoch is not a key of the config: did you mean trainer.max_epochs=1"),
    (["model.optimzer.lr=1"], "model.optimzer.lr is not a key of the config: did you mean model.optimizer.lr=1?"),
    (["+trainer.max_epoch=1"], "trainer.max_epoch=1 is not a parameter of lightning.pytorch.Trainer: did you mean"),
    (["+model.optimizer.foo=1"], "model.optimizer.foo=1 is not a parameter of torch.optim.AdamW, which takes params,"),
    (["trainer=fsdp"], "trainer=fsdp runs on CUDA GPUs only"),
    (
        [*SHARDED, "trainer.strategy.data_parallel_size=2", "trainer.strategy.tensor_parallel_size=2"],
        "must equal the number of ranks, 2",
    ),
    ([*SHARDED, "trainer.strategy.tensor_parallel_size=2"], "MLP has a sharding plan but no tensor-parallel one"),
    ([*SHARDED, "model.net._target_=torch.nn.Linear"], "Linear has no parallelize(mesh) method"),
    (
        [
            "experiment=gpt",
            *SHARDED,
            "trainer.strategy.tensor_parallel_size=2",
            "model.net.n_head=3",
            "model.net.n_embd=48",
        ],
        "must divide model.net.n_head=3",
    ),
]


# ids: the override, or the function that makes it (its repr holds an address, another in each test process)
BAD_INPUT_IDS = [getattr(o[0], "__name__", str(o[0])) for o, _ in BAD_INPUT]


@pytest.mark.skipif(torch.cuda.is_available(), reason="some rows expect a machine without a GPU")
@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT, ids=BAD_INPUT_IDS)
def test_bad_input_gets_one_sentence_and_leaves_no_run_folder(run, overrides: list, message: str) -> None:
    overrides = [f"ckpt_path={o(run)}" if callable(o) else o for o in overrides]
    result = run("train.py", *FAST, *overrides, check=False)  # the row's overrides last: they win
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    if "trainer=nonexistent" not in overrides:  # the one row Hydra answers itself, with the options there are
        assert "Set the environment variable HYDRA_FULL_ERROR" not in result.stderr
    assert run.folders() == []


@pytest.mark.slow
def test_resume_with_nothing_to_resume_starts_fresh_and_says_so(run) -> None:
    result = run("train.py", "trainer=cpu", "ckpt_path=last", *FAST)
    assert "ckpt_path=last: no checkpoint in" in result.stdout + result.stderr
    (folder,) = run.folders()
    assert run.summary(folder)["status"] == "finished"


@pytest.mark.slow
def test_secrets_from_the_environment_stay_out_of_every_file(run) -> None:
    needs("wandb")  # the secret is wandb's API key, and wandb the library that writes the environment down
    secret = "wandb-key-0123456789abcdef0123456789abcdef"
    env = {"WANDB_API_KEY": secret, "WANDB_MODE": "offline", "HOME": str(run.root)}
    run("train.py", "trainer=cpu", "logger=wandb", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", env=env)
    files = [p for p in run.root.rglob("*") if p.is_file()]
    assert len(files) > 10  # config, log, checkpoints, summary, wandb's offline run
    assert [p for p in files if secret.encode() in p.read_bytes()] == []


AUDIT = """
import os, sys
# Records every file this process opens for writing, with its rank (Lightning's children get LOCAL_RANK).
_log = open(os.path.join(os.environ["AUDIT_WRITES"], f"{os.getpid()}.tsv"), "a", buffering=1)
def _hook(event, args):
    if event == "open" and args[0] is not None:
        mode, flags = args[1] or "", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR):
            _log.write(f"{os.environ.get('LOCAL_RANK', '0')}\\t{os.path.abspath(str(args[0]))}\\n")
sys.addaudithook(_hook)
"""


@pytest.mark.slow
def test_only_rank_zero_writes_run_files_under_ddp(run, tmp_path) -> None:
    hook, writes = tmp_path / "hook", tmp_path / "writes"
    hook.mkdir()
    writes.mkdir()
    (hook / "sitecustomize.py").write_text(AUDIT)
    env = {"AUDIT_WRITES": str(writes), "PYTHONPATH": f"{hook}{os.pathsep}{run.project / 'src'}", **OFFLINE}
    run("train.py", *DDP, *FAST, OWN_LOGGER, env=env)
    (folder,) = run.folders()
    records = [line.split("\t") for p in writes.iterdir() for line in p.read_text().splitlines()]
    in_run = {(rank, path) for rank, path in records if path.startswith(str(folder))}
    assert {rank for rank, _ in in_run} == {"0"}, sorted(in_run)
    assert {p for _, p in in_run} >= {str(folder / "summary.json.tmp"), str(folder / "train.log")}


def test_logger_without_its_package_says_how_to_install_it(run, tmp_path) -> None:
    hide = "import sys\nsys.modules['tensorboard'] = sys.modules['tensorboardX'] = None\n"  # as if not installed
    (tmp_path / "sitecustomize.py").write_text(hide)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{run.project / 'src'}"}
    result = run("train.py", "logger=tensorboard", "trainer.max_epochs=1", check=False, env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    expected = "logger=tensorboard needs the tensorboard package, which is not installed"
    assert f'{expected}: pip install -e ".[tensorboard]"' in result.stderr
    assert run.folders() == []


# SLURM's requeue signal during start-up, and after the run while the process exits (a signal Python handles gets
# its default action back as Python exits, which for SIGUSR1 ends the process: the last moment is module teardown).
SIGNALS_EARLY_AND_LATE = """
import os, signal
import {{cookiecutter.package_name}}
from {{cookiecutter.package_name}}.harness import cluster

os.kill(os.getpid(), signal.SIGUSR1)
print("alive, pending:", cluster.requeue_signal_pending())
cluster.stop_watching_requeue_signal()  # where harness/launch.py ends a run


class Late:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGUSR1)


late = Late()
"""


def test_requeue_signal_during_start_up_and_exit_is_not_fatal(run) -> None:
    # SLURM may send its warning while a job is still importing or meeting its peers; nothing acts on it
    # yet (harness/callbacks/slurm_requeue.py does at its first check), but it must not end the process. Nor may
    # one that lands after the run, while the process exits: the job would end FAILED.
    env = {"PYTHONPATH": str(run.project / "src"), "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "4"}
    result = subprocess.run(
        [sys.executable, "-c", SIGNALS_EARLY_AND_LATE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "alive, pending: True", result.stderr
    assert "requeue signal arrived after the run's last chance" in result.stderr  # said once, by rank zero
    assert result.returncode == 0

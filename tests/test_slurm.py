"""The generated SLURM and torchrun launch profiles, run for real on a two-node SLURM cluster on this machine.

The render uses a CPU-only cluster's answers (CLUSTER_ANSWERS): the scripts run unchanged.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import project_env, run_in
from test_readme import readme_commands

pytestmark = pytest.mark.xdist_group("slurm")  # one test cluster (conftest.slurm_cluster), one process

FAST = ["trainer.max_epochs=1", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "logger=csv"]


def run_folders(project: Path) -> list[Path]:
    return sorted(p.parent for p in (project / "logs").rglob(".hydra"))


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def job_log(project: Path, job: str) -> str:
    return "".join(p.read_text() for p in sorted((project / "slurm" / "logs").glob(f"*-{job}.*")))


# The generated README's SLURM commands (a CPU-only cluster's: no GPU flags), as this test cluster (2 nodes of
# 2 CPUs) runs them: 4 nodes asked as 2; each with what it must give (nodes, processes per node).
README_SBATCH = {
    "sbatch slurm/single_node.sbatch": ("", (1, 1)),
    "sbatch slurm/multi_node.sbatch": ("", (2, 1)),
    "sbatch --nodes=4 slurm/multi_node.sbatch trainer.max_epochs=50 model.optimizer.lr=1e-4": ("--nodes=4", (2, 1)),
    "sbatch --nodes=2 --ntasks-per-node=2 slurm/multi_node.sbatch": ("", (2, 2)),
    "sbatch --nodes=2 slurm/multi_node.sbatch experiment=gpt trainer=model_parallel": ("", (2, 1)),
}
ON_THE_TEST_CLUSTER = {"--nodes=4": "--nodes=2"}


@pytest.mark.parametrize("command", sorted(README_SBATCH))
def test_readme_sbatch_command(slurm_cluster, cluster_project: Path, command: str) -> None:
    assert command in readme_commands(cluster_project / "README.md")
    changed, (nodes, per_node) = README_SBATCH[command]
    adapted = command.replace(changed, ON_THE_TEST_CLUSTER[changed]) if changed else command
    before = run_folders(cluster_project)
    job = slurm_cluster.sbatch(cluster_project, *shlex.split(adapted)[1:], *FAST)
    watched = slurm_cluster.command(cluster_project, "squeue", "--me").stdout  # the README's "watch a job"
    assert job in watched or slurm_cluster.state(job) == "COMPLETED"
    assert f"JobId={job}" in slurm_cluster.command(cluster_project, "scontrol", "show", "job", job).stdout
    assert slurm_cluster.wait(job) == "COMPLETED", job_log(cluster_project, job)
    folder = cluster_project / "logs" / "train" / "runs" / f"slurm-{job}"
    assert [f for f in run_folders(cluster_project) if f not in before] == [folder]  # exactly one run folder
    result = summary(folder)
    assert (result["num_nodes"], result["devices"], result["world_size"]) == (nodes, per_node, nodes * per_node)
    strategy = "model_parallel" if "trainer=model_parallel" in command else "ddp"
    assert result["status"] == "finished" and result["strategy"] == strategy
    log = job_log(cluster_project, job)
    world = nodes * per_node
    assert all(f"GLOBAL_RANK: {r}, MEMBER: {r + 1}/{world}" in log for r in range(world))  # every rank's output
    assert "The `srun` command is available" not in log
    assert (cluster_project / "slurm" / "logs" / f"cluster-lab-{job}.err").is_file()  # what `tail -f` reads
    if "model.optimizer.lr=1e-4" in command:
        assert "lr: 0.0001" in (folder / ".hydra" / "config.yaml").read_text()


def test_readme_interactive_srun(slurm_cluster, cluster_project: Path) -> None:
    # `salloc ...` then, inside it, `srun --job-name=train python train.py trainer=ddp_multinode`: here one command.
    salloc = next(c for c in readme_commands(cluster_project / "README.md") if c.startswith("salloc "))
    srun = "srun --job-name=train python train.py trainer=ddp_multinode"
    assert srun in readme_commands(cluster_project / "README.md")
    allocation = [a for a in shlex.split(salloc)[1:] if not a.startswith(("--gpus-per-node", "--ntasks-per-node"))]
    before = run_folders(cluster_project)
    slurm_cluster.command(
        cluster_project,
        "salloc",
        *allocation,
        "--ntasks-per-node=2",
        *shlex.split(srun),
        "trainer.accelerator=cpu",
        *FAST,
    )
    (folder,) = [f for f in run_folders(cluster_project) if f not in before]
    assert folder.name.startswith("slurm-") and summary(folder)["world_size"] == 2


# The GPT example, smaller: 2 epochs of ~29 steps per rank.
GPT = ["experiment=gpt", "data.corpus_mb=0.125", "trainer.max_epochs=2", "model.net.n_layer=2", "logger=csv"]


# The GPT, preempted (SIGUSR1, as SLURM warns before preemption or the time limit) once its first epoch is saved,
# comes back on its 2 nodes, also sharded (FSDP2), whose checkpoints are folders. (The digits, preempted at random
# steps and requeued onto 2 nodes or 1: the kill campaign's SLURM cells, below.)
CELLS = {"gpt": GPT, "gpt-fsdp2": [*GPT, "trainer=model_parallel"]}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_preempted_job_requeues_and_resumes_in_its_folder(slurm_cluster, cluster_project: Path, cell: str) -> None:
    # The same job twice, side by side (1 CPU per node each): one left alone, one preempted.
    alone = slurm_cluster.sbatch(cluster_project, "slurm/multi_node.sbatch", *CELLS[cell])
    preempted = slurm_cluster.sbatch(cluster_project, "slurm/multi_node.sbatch", *CELLS[cell])
    folder = cluster_project / "logs" / "train" / "runs" / f"slurm-{preempted}"
    deadline = time.monotonic() + 300
    while not (folder / "checkpoints" / "last.ckpt").exists():  # after the first epoch: mid-training
        assert time.monotonic() < deadline and slurm_cluster.state(preempted) in ("PENDING", "RUNNING")
        time.sleep(0.5)
    time.sleep(1)
    assert slurm_cluster.state(preempted) == "RUNNING"
    slurm_cluster.command(cluster_project, "scancel", "-s", "USR1", preempted)
    assert slurm_cluster.wait(preempted) == "COMPLETED", job_log(cluster_project, preempted)
    assert slurm_cluster.wait(alone) == "COMPLETED", job_log(cluster_project, alone)
    log = job_log(cluster_project, preempted)
    assert (
        f"Requeueing SLURM job {preempted}; it will resume from {folder}/hpc_ckpt_1.ckpt" in log and "restart 1," in log
    )
    assert f"resuming from {folder}/hpc_ckpt_1.ckpt" in log
    assert "Restored all states from the checkpoint" in log
    assert not (cluster_project / "logs" / "train" / "runs" / f"slurm-{preempted}_1").exists()
    resumed, reference = summary(folder), summary(folder.parent / f"slurm-{alone}")
    assert resumed["status"] == "finished"
    assert (resumed["global_step"], resumed["epochs"]) == (reference["global_step"], reference["epochs"])


# The kill campaign's SLURM cells (tests/harness/kill_campaign.py --sbatch, README "Safe to kill"): a 2-node job of
# the digits sent SIGUSR1 mid-epoch, requeued onto its 2 nodes (then bit for bit as the job never stopped) and,
# held and updated as the README says, onto 1 node (the same samples per step: within 1e-4), every step and row kept.
CAMPAIGN_CELLS = 'Kill("SLURM 2 nodes", "SIGUSR1", 54, "SLURM 1 node"), '
CAMPAIGN_CELLS += 'Kill("SLURM 2 nodes", "SIGUSR1", 99, "SLURM 2 nodes")'


def test_kill_campaign_requeues_preempted_jobs_onto_2_nodes_or_1(slurm_cluster, cluster_project: Path) -> None:
    readme = (cluster_project / "README.md").read_text()
    assert "scontrol update JobId=<job id> NumNodes=1 NumTasks=<its --ntasks-per-node>" in readme  # as the cell does
    code = "import sys; from pathlib import Path; sys.path.insert(0, 'tests/harness'); "
    code += "from kill_campaign import Kill, campaign; "
    # no sbatch flags: the render's answers fit the test cluster
    code += f"sys.exit(campaign([{CAMPAIGN_CELLS}], Path(sys.argv[1]), sbatch=[]))"
    folder = cluster_project / "logs" / "kill-campaign"
    result = run_in(cluster_project, "-c", code, str(folder), **slurm_cluster.env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 kills: 0 lost more than the checkpoint interval, 0 wrong final metrics, 0 failed in all" in result.stdout
    # the weights of the job continued on 1 node within 1e-5 of those of the job never stopped (the table's column)
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("| 0 | SLURM 2 nodes |")]
    assert float(row.split("|")[9]) < 1e-5, row
    log = (folder / "kill-0" / "job.txt").read_text()
    assert "MEMBER: 2/2" in log and "MEMBER: 1/1" in log
    assert "Continuing on 1 data-parallel rank: batch 8 per rank x 2 accumulated = the 16 samples per" in log


README_SWEEP = "python train.py -m hydra/launcher=slurm trainer=ddp_multinode model.optimizer.lr=1e-3,1e-4"


def test_submitit_sweep_runs_one_ddp_job_per_point_and_resumes(slurm_cluster, cluster_project: Path) -> None:
    assert README_SWEEP in readme_commands(cluster_project / "README.md")
    sweep = ["hydra.launcher.tasks_per_node=2", "trainer.accelerator=cpu", *FAST]  # 2 CPU processes per job here
    multiruns = cluster_project / "logs" / "train" / "multiruns"
    before = set(multiruns.iterdir()) if multiruns.exists() else set()  # other tests share this project

    def launch(*more: str) -> subprocess.CompletedProcess:
        command = [sys.executable, *README_SWEEP.split()[1:], *sweep, *more]
        env = project_env(cluster_project, **slurm_cluster.env)
        result = subprocess.run(command, cwd=cluster_project, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    launch()
    (sweep_dir,) = set(multiruns.iterdir()) - before  # this sweep made one folder
    jobs = sorted(f for f in run_folders(cluster_project) if sweep_dir in f.parents)
    assert [f.name for f in jobs] == ["0", "1"]
    for folder in jobs:
        assert (summary(folder)["world_size"], summary(folder)["devices"]) == (2, 2)

    # The README's sweep that resumes, as SLURM jobs: each job decides in its own processes. Job 1 as if its
    # node was lost before it started: it runs again; job 0 finished: it does not.
    subprocess.run(["rm", "-r", str(sweep_dir / "1")], check=True)
    result = launch("ckpt_path=last")
    assert set(multiruns.iterdir()) - before == {sweep_dir}
    assert len(summary(sweep_dir / "0")["attempts"]) == 1 and summary(sweep_dir / "1")["status"] == "finished"
    assert "2 runs" in result.stdout  # the end table covers both


def torchrun_env(project: Path, **settings: str) -> dict:
    """The environment of slurm/torchrun_multinode.sh on this machine: this Python's torchrun, node 0 here."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return project_env(project, PATH=path, MASTER_ADDR="127.0.0.1", **settings)


def test_torchrun_script_runs_two_nodes(cluster_project: Path) -> None:
    env = torchrun_env(cluster_project, NNODES="2", MASTER_PORT="29533", NPROC_PER_NODE="1", RUN_NAME="torchrun-test")
    nodes = [
        subprocess.Popen(
            ["bash", "slurm/torchrun_multinode.sh", "trainer.accelerator=cpu", *FAST],
            cwd=cluster_project,
            env=dict(env, NODE_RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    folder = cluster_project / "logs" / "train" / "runs" / "torchrun-test"
    assert (summary(folder)["world_size"], summary(folder)["num_nodes"]) == (2, 2)
    assert [p.name for p in folder.glob("*.log")] == ["train.log"]


def test_torchrun_restarts_a_dead_rank_from_the_latest_checkpoint(cluster_project: Path) -> None:
    settings = {"NNODES": "1", "NODE_RANK": "0", "MASTER_PORT": "29534", "NPROC_PER_NODE": "2", "MAX_RESTARTS": "1"}
    env = torchrun_env(cluster_project, **settings, RUN_NAME="torchrun-restart")
    args = ["trainer.accelerator=cpu", "data.batch_size=8", "trainer.max_epochs=3", "logger=csv", "test=false"]
    node = subprocess.Popen(
        ["bash", "slurm/torchrun_multinode.sh", *args],
        cwd=cluster_project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    folder = cluster_project / "logs" / "train" / "runs" / "torchrun-restart"
    deadline = time.monotonic() + 300
    while not (folder / "checkpoints" / "last.ckpt").exists():
        assert node.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(rank_process(node.pid, rank=1), signal.SIGKILL)  # one rank dies mid-training
    output = node.communicate(timeout=300)[0]
    assert node.returncode == 0, output[-3000:]
    assert f"ckpt_path=last: resuming from {folder}/checkpoints/last.ckpt" in output  # not from epoch 0
    result = summary(folder)
    assert (result["world_size"], result["epochs"], result["global_step"]) == (2, 3, 3 * 79)  # 79 steps/epoch/rank


def rank_process(parent: int, rank: int) -> int:
    """The pid of the worker with this RANK among torchrun's (pid `parent`) children."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            stat = (environ.parent / "stat").read_text().rsplit(")", 1)[1].split()
            variables = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == parent and stat[0] != "Z" and f"RANK={rank}".encode() in variables:
            return int(environ.parent.name)
    raise LookupError(f"no process with RANK={rank} under pid {parent}")


# What a bad node count gets: sbatch refuses it, or (more nodes than the partition has) the job waits with
# the reason squeue shows; either way no run starts and no run folder appears. README: "Bad input".
BAD_NODES = [
    ("0", "Node count specification invalid"),
    ("two", 'sbatch: error: "two" is not a valid node count'),
    ("3", "PartitionNodeLimit"),  # the test cluster has 2 nodes
]


@pytest.mark.parametrize(("nodes", "message"), BAD_NODES, ids=[n for n, _ in BAD_NODES])
def test_bad_node_count_starts_no_run(slurm_cluster, cluster_project: Path, nodes: str, message: str) -> None:
    before = run_folders(cluster_project)
    result = subprocess.run(
        ["sbatch", "--parsable", f"--nodes={nodes}", "slurm/multi_node.sbatch", *FAST],
        cwd=cluster_project,
        env=project_env(cluster_project, **slurm_cluster.env),
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:  # queued: it must wait, saying why
        job = result.stdout.strip().split(";")[0]
        time.sleep(2)
        reason = slurm_cluster.command(cluster_project, "squeue", "-h", "-j", job, "-o", "%T %r").stdout
        slurm_cluster.command(cluster_project, "scancel", job)
        assert reason.split() == ["PENDING", message]
    else:
        assert message in result.stderr
    assert run_folders(cluster_project) == before


def test_two_runs_in_one_job_get_a_folder_each(slurm_cluster, cluster_project: Path) -> None:
    # A common job script: several runs one after the other. Only a resumed run may continue a folder.
    runs = " && ".join(f"python train.py trainer=cpu seed={seed} {' '.join(FAST)}" for seed in (1, 2))
    job = slurm_cluster.sbatch(
        cluster_project, "--ntasks=1", "--mem=2G", "--output=slurm/logs/wrap-%j.out", "--wrap", runs
    )
    assert slurm_cluster.wait(job) == "COMPLETED", job_log(cluster_project, job)
    runs_dir = cluster_project / "logs" / "train" / "runs"
    first, second = runs_dir / f"slurm-{job}", runs_dir / f"slurm-{job}-2"
    assert "seed=1" in (first / ".hydra" / "overrides.yaml").read_text()
    assert "seed=2" in (second / ".hydra" / "overrides.yaml").read_text()
    assert summary(second)["global_step"] == 4  # it trained, instead of restoring the first run's state
    assert "Restored all states" not in job_log(cluster_project, job)  # no resume of the first run


SIGNAL_AT = """
import os
import shlex
import signal

import lightning as L


class SignalAt(L.Callback):
    # Sends each process SLURM's warning signal (sbatch --signal=USR1) at one batch: in fit, at that batch of
    # epoch r in the job's run r (restart r) while epochs remain; in a validation of fit or in test, in the job's
    # first run.
    def __init__(self, stage, batch):
        self.stage, self.batch = stage, batch

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        restart = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        if self.stage == "fit" and batch_idx == self.batch and trainer.current_epoch == restart:
            os.kill(os.getpid(), signal.SIGUSR1)

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        restart = os.environ.get("SLURM_RESTART_COUNT", "0")
        if self.stage == "validate" and not trainer.sanity_checking and batch_idx == self.batch and restart == "0":
            os.kill(os.getpid(), signal.SIGUSR1)

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        if self.stage == "test" and batch_idx == self.batch and os.environ.get("SLURM_RESTART_COUNT", "0") == "0":
            os.kill(os.getpid(), signal.SIGUSR1)
"""


@pytest.mark.parametrize(
    ("stage", "batch", "resumes_from"),
    [("fit", 2, "hpc_ckpt_2.ckpt"), ("validate", 3, "hpc_ckpt_1.ckpt"), ("test", 3, "its newest checkpoint")],
    ids=["last-batches-of-fit-twice", "during-validation-of-fit", "during-test"],
)
def test_late_signal_is_acted_on(
    slurm_cluster, cluster_project: Path, tmp_path: Path, stage, batch, resumes_from
) -> None:
    # fit: 2 epochs of 4 batches, signalled in each (the job preempted twice), and the default check every 10
    # batches (each epoch's end catches it); validate: at the 4th of 12 batches validating the first epoch (acted on
    # at that epoch's end, not at the 10th: a checkpoint saved mid-validation resumed an epoch short, "finished");
    # test: 17 batches per rank.
    (tmp_path / "signal_at.py").write_text(SIGNAL_AT)
    signaller = ["+callbacks.signal._target_=signal_at.SignalAt", f"+callbacks.signal.stage={stage}"]
    epochs = 1 if stage == "test" else 2
    fast = [o.replace("limit_val_batches=2", "limit_val_batches=12") if stage == "validate" else o for o in FAST]
    overrides = [*fast, f"trainer.max_epochs={epochs}", "data.batch_size=8", *signaller]
    overrides.append(f"+callbacks.signal.batch={batch}")
    python_path = f"{tmp_path}{os.pathsep}{cluster_project / 'src'}"
    job = (
        slurm_cluster.command(
            cluster_project, "sbatch", "--parsable", "slurm/multi_node.sbatch", *overrides, PYTHONPATH=python_path
        )
        .stdout.strip()
        .split(";")[0]
    )
    assert slurm_cluster.wait(job) == "COMPLETED", job_log(cluster_project, job)
    folder = cluster_project / "logs" / "train" / "runs" / f"slurm-{job}"
    log = job_log(cluster_project, job)
    where = folder / resumes_from if stage != "test" else resumes_from
    restarts = {"fit": 2, "validate": 1, "test": 1}[stage]
    assert f"Requeueing SLURM job {job}; it will resume from {where}." in log and f"restart {restarts}," in log
    assert "Handling auto-requeue signal" not in log  # Lightning's own handler (unsafe under DDP) never ran
    # The second preemption's checkpoint replaces the first (it holds everything the first did)
    assert sorted(p.name for p in folder.glob("hpc_ckpt_*")) == ([resumes_from] if stage != "test" else [])
    if stage == "validate":
        # saved once the first epoch's validation had ended: Lightning resumes from the middle of one an epoch short
        saved = torch.load(where, weights_only=True)["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]
        assert saved["total"]["ready"] == saved["total"]["completed"] == 12, saved
    result = summary(folder)
    assert (result["status"], result["global_step"], result["world_size"]) == ("finished", 4 * epochs, 2)
    assert "test/acc" in result["metrics"] and "val/acc" in result["metrics"]

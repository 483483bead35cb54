"""The kill campaign (README, "Resume"): runs stopped at random moments by random signals, each continued with
`ckpt_path=last`, sometimes on another number of ranks or another layout, and compared with the same run never
stopped.

    python tests/harness/kill_campaign.py --kills 100 --seed 0    # about 20 s a kill on 2 cores
    python tests/harness/kill_campaign.py --kills 100 --seed 0 --sbatch "--partition=debug --gpus-per-node=0"

A cell is a run (the digits on 1 process, on 2 DDP ranks started by Lightning or by torchrun; the GPT sharded by
FSDP2 over 2 ranks, or tensor parallel over 2), a signal, the step it lands after, and what continues it: any run
of the same example (the digits also on 4 ranks; a sharded GPT also on 1 process, gathered whole; a GPT saved whole
not sharded: refused, README). With --sbatch (a SLURM cluster to submit to; the flags fit the job to its CPU nodes)
the digits also run as a 2-node job (slurm/multi_node.sbatch, one CPU process a node), sent SLURM's warning
signal (SIGUSR1, at once: `scancel --signal=USR1`), which saves at the stop and requeues the job; it comes back on
its 2 nodes or, made to ask for 1 while it waits (`scontrol update`, as the README says), on one.
It prints a row per kill and a summary line. A kill passes when the run was still training when the signal
landed (its summary.json not finished, its newest checkpoint short of the last step), the continuation started
from the newest checkpoint (losing at most the checkpoint interval) and ended at the same step and epoch as the
run never stopped, with every logged row kept, and with the same weights and validation metrics: bit for bit when
continued as it started; otherwise, where floating-point sums are ordered differently, weights within 1e-4 and
validation metrics within 1e-4 relative. That difference grows with the steps trained after the change (in the
100-kill runs of 2026-12-07: 5e-8 after 38 steps, 1e-6 after 214, 1.8e-5 at most); a step that took other samples
shows at once (4e-2 after 196 steps, when epochs were not yet padded to whole steps: README, "Continuing on other
hardware").
tests/harness/test_resume.py runs a fixed sample of its cells.
"""

import argparse
import csv
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # helpers.py, when run as a script
from helpers import DDP, PROJECT, SHARDED, Runs, start, weights  # noqa: E402

from {{cookiecutter.package_name}}.harness import resume  # noqa: E402

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "Ctrl-C": signal.SIGINT}
EVERY = 20  # steps between checkpoints: the most a kill may cost
LOGGED = 5  # a metrics row every 5 steps, written to disk as logged: what a SIGKILL leaves shows how far it got
EVERYWHERE = ["trainer.deterministic=true", "logger=csv", "test=false", "trainer.max_epochs=2"]
EVERYWHERE += [f"callbacks.last_checkpoint.every_n_train_steps={EVERY}", f"trainer.log_every_n_steps={LOGGED}"]
EVERYWHERE += [f"+logger.csv.flush_logs_every_n_steps={LOGGED}"]


@dataclass(frozen=True)
class Example:
    overrides: list[str]
    batch: int  # per data-parallel rank, as the run starts
    metrics: tuple[str, ...]  # compared with the run never stopped


GPT = ["experiment=gpt", "data.corpus_mb=0.125", "model.net.n_layer=2", "model.sample_tokens=0", "model.net.dropout=0"]
# Dropout off in both (ranks draw their masks by position: another number draws others).
EXAMPLES = {
    # 1252 digits to train, which no step of 8, 16 or 32 divides (each epoch's last step is padded with repeats, the
    # same on any number of ranks), and 276 to validate, split evenly over 2 and 4 ranks (Lightning's validation
    # sampler pads each rank's share: with 274 on 4 ranks, 2 digits counted twice moved val/loss 0.6 %).
    # 314 steps on 1 rank, 158 on 2, 80 on 4.
    "digits": Example(["model.net.dropout=0", "data.val_fraction=0.1536"], 8, ("val/loss", "val/acc")),
    # 58 steps an epoch over 2 data-parallel ranks, 116 on one (tensor parallel over 2 ranks is one).
    "gpt": Example(GPT, 16, ("val/loss", "val/perplexity")),
}


@dataclass(frozen=True)
class Setup:
    example: str
    trainer: list[str]
    data_parallel: int  # ranks that each take a share of a step
    steps: int  # to the end of the run, with the example's batch per rank
    torchrun: bool = False  # ranks started by torchrun, not by Lightning
    sharded: bool = False  # saves a checkpoint folder (model_parallel), not a file
    nodes: int = 0  # a SLURM job of this many nodes, one process each (slurm/multi_node.sbatch)


TORCHRUN_DDP = ["trainer=ddp_multinode", "trainer.accelerator=cpu"]
TENSOR_PARALLEL = [*SHARDED, "trainer.strategy.tensor_parallel_size=2"]
SETUPS = {
    "1 process": Setup("digits", ["trainer=cpu"], 1, 314),
    "DDP 2": Setup("digits", DDP, 2, 158),
    "torchrun 2": Setup("digits", TORCHRUN_DDP, 2, 158, torchrun=True),
    "FSDP2 2": Setup("gpt", SHARDED, 2, 116, sharded=True),
    "TP 2": Setup("gpt", TENSOR_PARALLEL, 1, 232, sharded=True),
    # only continuing a run: the digits also on 4 ranks (on 2 cores they share them: harness/checks.py), a GPT run
    # killed sharded also on one rank, sharded or not
    "DDP 4": Setup("digits", [*DDP[:2], "trainer.devices=4"], 4, 80),
    "FSDP2 1": Setup("gpt", [*SHARDED[:2], "trainer.devices=1"], 1, 232, sharded=True),
    "GPT 1 process": Setup("gpt", ["trainer=cpu"], 1, 232),
    # with --sbatch: a 2-node job, requeued by SIGUSR1 onto its 2 nodes or onto 1
    "SLURM 2 nodes": Setup("digits", ["trainer.accelerator=cpu"], 2, 158, nodes=2),
    "SLURM 1 node": Setup("digits", ["trainer.accelerator=cpu"], 1, 314, nodes=1),
}
KILLED = ["1 process", "DDP 2", "torchrun 2", "FSDP2 2", "TP 2"]
SLURM_KILLED = "SLURM 2 nodes"


def never_stopped(setup: str) -> str:
    """The setup whose run never stopped a run of `setup` is compared with: torchrun's ranks compute as those
    Lightning starts. (A SLURM job's do not: each has its node's cores, `cpus-per-task`, to sum with.)"""
    return "DDP 2" if setup == "torchrun 2" else setup


def continuations(killed: str) -> list[str]:
    """What may continue a run: any setup of its example; a sharded run's folder also gathered whole, not a file
    resharded (refused in one sentence, tests/harness/test_edges.py); a SLURM job, its own requeue."""
    setup = SETUPS[killed]
    return [
        name
        for name, s in SETUPS.items()
        if s.example == setup.example and (setup.sharded or not s.sharded) and bool(s.nodes) == bool(setup.nodes)
    ]


@dataclass
class Kill:
    run: str  # a key of SETUPS
    how: str
    at_step: int  # the signal lands once the run has logged this step (between checkpoints, or during a save)
    continued: str  # a key of SETUPS


def draw(rng: random.Random, slurm: bool = False) -> Kill:
    run = rng.choice([*KILLED, SLURM_KILLED] if slurm else KILLED)
    at = rng.randrange(LOGGED, SETUPS[run].steps - 2 * LOGGED, LOGGED) - 1  # rows are logged at steps 4, 9, 14, ...
    how = "SIGUSR1" if SETUPS[run].nodes else rng.choice(sorted(SIGNALS))
    return Kill(run, how, at, rng.choice(continuations(run)))


def launch(runs: Runs, setup: Setup, *overrides: str, batch: int = 0, console: Path) -> subprocess.Popen:
    """train.py in the background, as `setup` starts it (with the example's batch per rank, or `batch`); its
    output to `console`."""
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"] if setup.torchrun else []
    example = EXAMPLES[setup.example]
    options = [*setup.trainer, *example.overrides, f"data.batch_size={batch or example.batch}", *EVERYWHERE]
    return start(runs, *options, *overrides, console=console, launcher=torchrun)


def run_to_end(runs: Runs, setup: Setup, *overrides: str, batch: int = 0, sbatch: list[str] | None = None) -> str:
    """Runs train.py as `setup` starts it (a SLURM job submitted with `sbatch`), to its end; returns what went
    wrong (nothing, when it ended well)."""
    runs.root.mkdir(parents=True, exist_ok=True)
    if setup.nodes:
        job = submit(runs, setup, sbatch or [])
        state = wait_for_end(job) if job.isdigit() else job
        return "" if state == "COMPLETED" else f"job {job}: {state}: {read(runs.root / JOB_OUTPUT)[-2000:]}"
    console = runs.root / "console.txt"
    process = launch(runs, setup, *overrides, batch=batch, console=console)
    if process.wait(timeout=600) != 0:
        return f"{' '.join(overrides)} failed: {' / '.join(console.read_text().splitlines()[-8:])}"  # one row
    return ""


def train_rows(folder: Path) -> list[int]:
    """The steps of the train/loss rows in the run's metrics.csv."""
    path = folder / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as file:
        return [int(row["step"]) for row in csv.DictReader(file) if row.get("train/loss")]


def stop_run(kill: Kill, runs: Runs) -> tuple[Path, int, str] | str:
    """Starts the run and stops it with the kill's signal once it has logged the kill's step; returns its folder, the
    last step it logged, and no job; or what went wrong."""
    process = launch(runs, SETUPS[kill.run], console=runs.root / "console.txt")
    deadline = time.monotonic() + 300
    # its folder, looked for where it is made (a search of every folder would meet checkpoint folders renamed)
    while max(train_rows(next(runs.root.glob("logs/train/runs/*"), runs.root)), default=-1) < kill.at_step:
        if process.poll() is not None or time.monotonic() > deadline:
            return "the run ended before it could be stopped"
        time.sleep(0.01)
    os.killpg(process.pid, SIGNALS[kill.how])
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        return f"the run did not stop within 2 minutes of {kill.how}"
    (folder,) = runs.folders()
    reached = max(train_rows(folder), default=0)  # how far it got, to the last row written
    time.sleep(1)  # no rank of it trains on (torchrun's, killed outright, did)
    if max(train_rows(folder), default=0) != reached:
        return f"the run went on after {kill.how}"
    return folder, reached, ""


# A SLURM cell's job: its output in the cell's folder; SLURM's commands with the environment the campaign has
# (SLURM_CONF), the job with this Python first on its PATH (`srun python`)
JOB_OUTPUT = "job.txt"
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL")


def slurm(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def job_state(job: str) -> str:
    return slurm("squeue", "-h", "-t", "all", "-j", job, "-o", "%T")


def submit(runs: Runs, setup: Setup, sbatch: list[str]) -> str:
    """Submits `setup`'s job, its output to the cell's folder; returns the job's id, or what went wrong."""
    example = EXAMPLES[setup.example]
    output = runs.root / JOB_OUTPUT
    flags = [*sbatch, f"--nodes={setup.nodes}", "--ntasks-per-node=1", f"--output={output}", f"--error={output}"]
    overrides = [*setup.trainer, *example.overrides, f"data.batch_size={example.batch}", *EVERYWHERE]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = dict(os.environ, PROJECT_ROOT=str(runs.root), PYTHONPATH=str(runs.project / "src"), PATH=path)
    submitted = subprocess.run(
        ["sbatch", "--parsable", *flags, "slurm/multi_node.sbatch", *overrides],
        cwd=runs.project,
        env=env,
        capture_output=True,
        text=True,
    )
    if submitted.returncode != 0:
        return f"sbatch failed: {submitted.stderr.strip()}"
    return submitted.stdout.strip().split(";")[0]


def wait_for_end(job: str, timeout: float = 600) -> str:
    """The job's state once it has ended (cancelled after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while (state := job_state(job)) not in ENDED:
        if time.monotonic() > deadline:
            slurm("scancel", job)
            return f"{state} after {timeout:.0f} s (cancelled)"
        time.sleep(0.5)
    return state


def stop_job(kill: Kill, runs: Runs, sbatch: list[str]) -> tuple[Path, int, str] | str:
    """Submits the cell's 2-node job, sends it SLURM's warning signal once it has logged the kill's step, and
    holds it once it has requeued itself; returns its folder, the last step it logged and the job; or what went
    wrong."""
    job = submit(runs, SETUPS[kill.run], sbatch)
    if not job.isdigit():
        return job
    folder, output = runs.root / "logs" / "train" / "runs" / f"slurm-{job}", runs.root / JOB_OUTPUT
    deadline = time.monotonic() + 600  # with the time the job waits in the queue
    while max(train_rows(folder), default=-1) < kill.at_step:
        if job_state(job) in ENDED or time.monotonic() > deadline:
            slurm("scancel", job)
            return "the job ended before it could be stopped"
        time.sleep(0.05)
    slurm("scancel", "--signal=USR1", job)
    deadline = time.monotonic() + 120
    while (state := job_state(job)) not in ("PENDING", "REQUEUED") or "Requeueing SLURM job" not in read(output):
        if state in ENDED or time.monotonic() > deadline:
            slurm("scancel", job)
            last = " / ".join(read(output).splitlines()[-4:])
            return f"the job did not requeue itself within 2 minutes of SIGUSR1: {last}"
        time.sleep(0.05)
    slurm("scontrol", "hold", job)  # SLURM holds a requeued job a few seconds (CredExpire) before it may start
    return folder, max(train_rows(folder), default=0), job


def requeued_to_end(runs: Runs, job: str, then: Setup) -> str:
    """Lets the held job come back (asking for `then`'s nodes) and waits for its end; returns what went wrong."""
    if then.nodes != SETUPS[SLURM_KILLED].nodes:  # requeued onto fewer nodes: README, "Preemption"
        slurm("scontrol", "update", f"JobId={job}", f"NumNodes={then.nodes}", f"NumTasks={then.nodes}")
    slurm("scontrol", "release", job)
    state = wait_for_end(job)
    log = read(runs.root / JOB_OUTPUT)
    if state != "COMPLETED":
        return f"the requeued job ended {state}: {' / '.join(log.splitlines()[-8:])}"
    if f"MEMBER: 1/{then.nodes}" not in log.split("Requeueing SLURM job")[-1]:
        return f"the requeued job did not continue on {then.nodes} node(s)"
    return ""


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def run_cell(
    kill: Kill, root: Path, references: dict[str, dict], sbatch: list[str] | None = None
) -> tuple[dict, list[str]]:
    """Runs one kill; returns its row and what went wrong (nothing, when it passed). `sbatch`: the flags that fit a
    SLURM job to the cluster, for a SLURM cell."""
    runs, setup, then = Runs(root), SETUPS[kill.run], SETUPS[kill.continued]
    root.mkdir(parents=True)
    stopped = stop_job(kill, runs, sbatch or []) if setup.nodes else stop_run(kill, runs)
    if isinstance(stopped, str):
        return {}, [stopped]
    folder, reached, job = stopped
    newest = resume.newest_checkpoint(folder)
    from_step = resume.saved_step(newest) if newest else 0
    if runs.summary(folder)["status"] == "finished" or from_step >= setup.steps:
        return {"from": from_step}, ["the signal landed after training had ended"]
    # The run's samples per step are kept: on more data-parallel ranks, a smaller batch each; on fewer, accumulated.
    example = EXAMPLES[setup.example]
    batch = example.batch * setup.data_parallel // then.data_parallel
    if job:  # requeued, held: let it come back, on another number of nodes if asked
        failed = requeued_to_end(runs, job, then)
    else:
        failed = run_to_end(runs, then, "ckpt_path=last", batch=min(batch, example.batch))
    if failed:
        return {"from": from_step}, [failed]
    got = runs.summary(folder)
    expected = references[never_stopped(kill.run)]
    row = {"lost": max(reached - from_step, 0), "from": from_step, "steps": got["global_step"]}
    problems = []
    if row["lost"] > EVERY + LOGGED:
        problems.append(f"lost {row['lost']} steps (more than the checkpoint interval, {EVERY})")
    if job and row["lost"]:  # SLURM's warning saves at the stop
        problems.append(f"SLURM's warning signal lost {row['lost']} steps (it saves at the stop)")
    if (got["global_step"], got["epochs"]) != (expected["global_step"], expected["epochs"]):
        problems.append(f"ended at step {got['global_step']}, not {expected['global_step']}")
    a, b = weights(folder), weights(expected["folder"])
    row["weights"] = max((a[name] - b[name]).abs().max().item() for name in b)
    exact = never_stopped(kill.continued) == never_stopped(kill.run)  # continued as it started: bit for bit
    for name in example.metrics:
        a, b = got["metrics"].get(name), expected["metrics"][name]
        if a is None:
            problems.append(f"{name} missing from summary.json")
        elif abs(a - b) > (0 if exact else 1e-4) * abs(b):
            problems.append(f"{name} {a} instead of {b}")
    if row["weights"] > (0 if exact else 1e-4):
        problems.append(f"weights {row['weights']:.1e} from those of the run never stopped")
    rows = train_rows(folder)
    missing = sorted(set(range(LOGGED - 1, got["global_step"], LOGGED)) - set(rows))  # logged at steps 4, 9, ...
    if missing:
        problems.append(f"metrics.csv lost the rows of steps {missing[:5]}")
    return row, problems


def campaign(kills: list[Kill], folder: Path, out=print, sbatch: list[str] | None = None) -> int:
    """Runs the kills; prints a row each and the summary line; returns how many failed. `sbatch`: the flags that fit
    a SLURM cell's job to the cluster."""
    references = {}
    for name in sorted({never_stopped(kill.run) for kill in kills}):
        runs = Runs(folder / f"never-stopped-{name.replace(' ', '-')}")
        failed = run_to_end(runs, SETUPS[name], sbatch=sbatch)
        assert not failed, failed
        (reference,) = runs.folders()
        references[name] = {**runs.summary(reference), "folder": reference}
        assert references[name]["global_step"] == SETUPS[name].steps, (name, references[name]["global_step"])
    failed = lost = wrong = 0
    columns = "# | run | signal | at step | continued as | from step | lost | end step | weights vs never stopped"
    out(f"| {columns} | ok |")
    out("| --- " * 10 + "|")
    for number, kill in enumerate(kills):
        row, problems = run_cell(kill, folder / f"kill-{number}", references, sbatch)
        failed += bool(problems)
        lost += any(p.startswith("lost") for p in problems)
        wrong += any(p.startswith(("val/", "ended", "weights")) for p in problems)
        out(
            f"| {number} | {kill.run} | {kill.how} | {kill.at_step} | {kill.continued} | "
            f"{row.get('from', '-')} | {row.get('lost', '-')} | {row.get('steps', '-')} | "
            f"{row.get('weights', float('nan')):.1e} | {'; '.join(problems) or 'yes'} |"
        )
    out(
        f"{len(kills)} kills: {lost} lost more than the checkpoint interval, {wrong} wrong final metrics, "
        f"{failed} failed in all"
    )
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sbatch",
        metavar="FLAGS",
        help="also kill 2-node SLURM jobs with SIGUSR1, submitted with these sbatch flags (fitting the job to the "
        'cluster\'s CPU nodes; "" for none); run from a login node',
    )
    args = parser.parse_args()
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # started by nohup or `&`: the Ctrl-C kills need it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    slurm = args.sbatch is not None
    kills = [draw(rng, slurm) for _ in range(args.kills)]
    # a SLURM job's nodes write its run's files: in the project's folder, which they share; not this machine's /tmp
    shared = PROJECT / "logs" if slurm else None
    if shared:
        shared.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kill-campaign-", dir=shared) as folder:
        failed = campaign(kills, Path(folder), sbatch=shlex.split(args.sbatch) if slurm else None)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

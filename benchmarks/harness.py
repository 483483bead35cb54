"""Render the default project and run one timed training process of either side; used by run.py and ablate.py.

Everything it writes goes under benchmarks/work/ (ignored by git): the rendered project, one folder per run
(Hydra output, plain checkpoints, logs) and the StepClock JSON of each run.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / "work"


@dataclass(frozen=True)
class Workload:
    """One training job, run identically by both sides."""

    name: str
    hidden: tuple[int, ...]  # MLP hidden widths (the template's default is 128, 128)
    batch_size: int  # per process
    epochs: int  # both sides train epochs x ceil(train samples / batch) steps
    warmup: int  # steps left out of the throughput
    # CPU threads per process (OMP_NUM_THREADS) on both sides; None: the cores shared out among the ranks.
    # One thread for tiny matrices: two threads on two cores beside the processes' other threads made the
    # plain script's throughput vary twofold from run to run, and per-step overhead is what the tiny rows time.
    threads: int | None = None


@dataclass(frozen=True)
class GPTWorkload:
    """A GPT training job (`python train.py experiment=gpt` against plain_gpt.py), run identically by both sides.

    Each epoch trains `steps_per_epoch` steps (the corpus would give hundreds) and validates `val_batches`
    batches at its end, outside the timed intervals on both sides.
    """

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    batch_size: int  # per process
    epochs: int
    steps_per_epoch: int
    warmup: int  # steps left out of the throughput
    val_batches: int = 4
    threads: int | None = None  # as Workload.threads


@dataclass
class Case:
    """How to run a workload: processes, device and precision, and extra Hydra overrides for the generated side."""

    ranks: int = 1
    device: str = "cpu"
    precision: str = "32"  # "32" or "bf16-mixed"
    compile: bool = False
    overrides: list[str] = field(default_factory=list)
    # (data-parallel size, tensor-parallel size): GPT rows only, `trainer=model_parallel` against plain_gpt.py's
    # `--dp --tp` (FSDP2 and tensor parallel under torchrun); their product is `ranks`.
    mesh: tuple[int, int] | None = None


# Hydra overrides that strip the generated project down to bare Lightning: the same LightningModule, DataModule
# and Trainer settings, with no callbacks, logger, progress bar or model summary. Lightning's own cost per step
# is the floor no template config can go below; run.py reports it beside both sides.
BARE_LIGHTNING = [
    "~callbacks",
    "~logger",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]


def bare_lightning(work: Workload | GPTWorkload) -> list[str]:
    """BARE_LIGHTNING for this workload. experiment=gpt sets keys of two callbacks; with the callbacks group
    gone (`~callbacks`) those keys would remain as callbacks without a class, so they go too."""
    if isinstance(work, GPTWorkload):
        return [*BARE_LIGHTNING, "~callbacks.model_checkpoint", "~callbacks.throughput"]
    return BARE_LIGHTNING


def render() -> Path:
    """`cookiecutter --no-input` of this repository into benchmarks/work/render; returns the project folder."""
    out = WORK / "render"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), str(REPO)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out / "my-project"


def generated_command(project: Path, work: Workload | GPTWorkload, case: Case, run_dir: Path) -> list[str]:
    """`python train.py` with the overrides that make it run `work`, plus the StepTimer callback.

    The generated side keeps every default of the rendered project (callbacks, logger, validation every
    epoch, checkpoints); only `test=false` drops the test after training, which the plain script has not.
    """
    if isinstance(work, GPTWorkload):
        return gpt_generated_command(project, work, case, run_dir)
    hidden = ",".join(str(width) for width in work.hidden)
    if case.ranks > 1:
        trainer = ["trainer=ddp", f"trainer.devices={case.ranks}", f"trainer.accelerator={case.device}"]
    else:
        trainer = ["trainer=gpu" if case.device == "cuda" else "trainer=cpu"]
    precision = "bf16-mixed" if case.precision == "bf16-mixed" else "32-true"
    net = [f"model.net.hidden=[{hidden}]"]
    if case.compile:  # torch.compile through the config: the network is built inside a torch.compile call
        net = [
            "~model.net",
            f"+model.net={{_target_:torch.compile,model:{{_target_:my_project.models.nets.mlp.MLP,"
            f"in_features:64,hidden:[{hidden}],num_classes:10,dropout:0.1}}}}",
        ]
    return [
        sys.executable,
        "train.py",
        *trainer,
        f"trainer.precision={precision}",
        f"trainer.max_epochs={work.epochs}",
        f"data.batch_size={work.batch_size}",
        *net,
        "test=false",
        f"hydra.run.dir={run_dir}",
        "+callbacks.bench._target_=bench_timing.StepTimer",
        f"+callbacks.bench.warmup_steps={work.warmup}",
        *case.overrides,
    ]


def plain_command(work: Workload | GPTWorkload, case: Case, run_dir: Path, project: Path) -> list[str]:
    """plain_train.py (plain_gpt.py for GPT, training `project`'s GPT class) with the same workload; under
    torchrun when the case has several ranks."""
    if isinstance(work, GPTWorkload):
        return gpt_plain_command(project, work, case, run_dir)
    launcher = [sys.executable]
    if case.ranks > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={case.ranks}"]
    return [
        *launcher,
        str(BENCH_DIR / "plain_train.py"),
        "--hidden",
        *(str(width) for width in work.hidden),
        f"--batch-size={work.batch_size}",
        f"--epochs={work.epochs}",
        f"--warmup-steps={work.warmup}",
        f"--device={case.device}",
        f"--precision={case.precision}",
        *(["--compile"] if case.compile else []),
        f"--out-dir={run_dir}",
        f"--digits={next(project.glob('src/*/data/digits.npz'))}",  # the project's own digits
    ]


def gpt_generated_command(project: Path, work: GPTWorkload, case: Case, run_dir: Path) -> list[str]:
    """`python train.py experiment=gpt` with the workload's sizes and lengths, plus the StepTimer callback.

    Besides sizes, precision and compile, it sets only lengths: `+trainer.limit_train_batches`,
    `+trainer.limit_val_batches`, and `trainer.val_check_interval=1.0` (validation, and the sample the project
    writes after it, at the epoch's end instead of mid-epoch, where it would fall inside a timed interval).
    """
    if case.mesh:
        trainer = [
            "trainer=model_parallel",
            f"trainer.devices={case.ranks}",
            f"trainer.accelerator={case.device}",
            f"trainer.strategy.data_parallel_size={case.mesh[0]}",
            f"trainer.strategy.tensor_parallel_size={case.mesh[1]}",
        ]
    elif case.ranks > 1:
        trainer = ["trainer=ddp", f"trainer.devices={case.ranks}", f"trainer.accelerator={case.device}"]
    else:
        trainer = ["trainer=gpu" if case.device == "cuda" else "trainer=cpu"]
    return [
        sys.executable,
        "train.py",
        "experiment=gpt",
        *trainer,
        f"trainer.precision={'bf16-mixed' if case.precision == 'bf16-mixed' else '32-true'}",
        f"trainer.max_epochs={work.epochs}",
        f"+trainer.limit_train_batches={work.steps_per_epoch}",
        f"+trainer.limit_val_batches={work.val_batches}",
        "trainer.val_check_interval=1.0",
        f"data.batch_size={work.batch_size}",
        f"data.block_size={work.block_size}",
        f"model.net.n_layer={work.n_layer}",
        f"model.net.n_head={work.n_head}",
        f"model.net.n_embd={work.n_embd}",
        f"model.compile={str(case.compile).lower()}",
        "test=false",
        f"hydra.run.dir={run_dir}",
        "+callbacks.bench._target_=bench_timing.StepTimer",
        f"+callbacks.bench.warmup_steps={work.warmup}",
        *case.overrides,
    ]


def gpt_plain_command(project: Path, work: GPTWorkload, case: Case, run_dir: Path) -> list[str]:
    """plain_gpt.py with the same workload, training the rendered project's GPT class."""
    launcher = [sys.executable]
    if case.ranks > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={case.ranks}"]
    return [
        *launcher,
        str(BENCH_DIR / "plain_gpt.py"),
        f"--project={project}",
        f"--n-layer={work.n_layer}",
        f"--n-head={work.n_head}",
        f"--n-embd={work.n_embd}",
        f"--block-size={work.block_size}",
        f"--batch-size={work.batch_size}",
        f"--epochs={work.epochs}",
        f"--steps-per-epoch={work.steps_per_epoch}",
        f"--val-batches={work.val_batches}",
        f"--warmup-steps={work.warmup}",
        f"--device={case.device}",
        f"--precision={case.precision}",
        *(["--compile"] if case.compile else []),
        *([f"--dp={case.mesh[0]}", f"--tp={case.mesh[1]}"] if case.mesh else []),
        f"--out-dir={run_dir}",
    ]


def run_timed(
    command: list[str], cwd: Path, run_dir: Path, work: Workload | GPTWorkload, ranks: int = 1, timeout: float = 600
) -> dict:
    """Run one process (tree) to the end; return its StepClock JSON plus `wall_s`, the whole process's time.

    BENCH_T0 is taken just before the process starts, so `first_step_s` counts interpreter start-up too.
    Each process gets `work.threads` CPU threads, or cores / ranks as torchrun gives (OMP_NUM_THREADS).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    result_file = run_dir / "bench.json"
    env = bench_env(cwd)
    env["BENCH_OUT"] = str(result_file)
    env["OMP_NUM_THREADS"] = str(work.threads or max(1, (os.cpu_count() or 1) // ranks))
    env["BENCH_T0"] = repr(time.time())
    start = time.perf_counter()
    with open(run_dir / "output.log", "w") as log:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not result_file.is_file():
        tail = (run_dir / "output.log").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{tail}")
    # Both sides write checkpoints every epoch (the compute workload's are 50 MB each); sharded ones are folders.
    for checkpoint in [*run_dir.rglob("*.ckpt"), *run_dir.rglob("*.pt"), *run_dir.rglob("*.distcp")]:
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint)
        else:
            checkpoint.unlink(missing_ok=True)
    return {**json.loads(result_file.read_text()), "wall_s": wall}


def bench_env(cwd: Path) -> dict[str, str]:
    """The environment of a benchmarked process: the project's src/ and benchmarks/ importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(cwd / "src"), str(BENCH_DIR), env.get("PYTHONPATH", "")])
    return env


def time_command(command: list[str], cwd: Path) -> float:
    """Seconds a short command (e.g. `--help`) takes from start to exit."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=bench_env(cwd), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start

"""Every command README.md tells a user to type runs here, with the outcome the README promises.

Each checker is registered beside the README command it checks (`@readme(...)`), and each command checked
elsewhere says where (`elsewhere(...)`), in the README's order: `test_every_readme_command_is_tested` fails on a
README command with no entry, an entry no longer in the README, or one out of order. Commands that need GPUs run
on the CPU (`trainer.accelerator=cpu`, 2 processes) and, where there is no GPU, also show their one-sentence
refusal; a few small overrides keep runs short where the promise is about ranks, folders or files rather than
accuracy.
"""

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import torch
from helpers import FAST, PROJECT, drew_curves, needs, prunes_and_reports_the_best, readme_commands, start
from omegaconf import OmegaConf

from {{cookiecutter.package_name}}.harness import resume

# Every README command, in the README's order: the function that runs and checks it, or why it runs elsewhere.
COMMANDS: dict[str, Callable | str] = {}


def readme(*commands: str):
    """Registers the decorated function as the check of these README commands."""

    def register(check: Callable) -> Callable:
        COMMANDS.update(dict.fromkeys(commands, check))
        return check

    return register


def elsewhere(reason: str, *commands: str) -> None:
    COMMANDS.update(dict.fromkeys(commands, reason))


BY_THE_TEMPLATE = "installs or runs this project as a whole: the template's tests do (test_readme.py)"
BY_THE_TEMPLATE_SUITE = "runs these tests: the template's tests run every test, and check what each command selects"
WITH_UV = "needs uv and PyTorch's index (not reachable where the tests run): the pip commands stand for it"
BY_THE_RECIPES = "a recipe's command: tests/test_recipes.py follows the recipe on a copy of the project"
ON_A_CLUSTER = "needs SLURM: the template's tests/test_slurm.py runs it on a two-node test cluster"
BY_LAUNCHERS = "starts ranks with torchrun or mpirun: tests/harness/test_launchers.py runs it, and resumes the run"
TWO_CPU_RANKS = ["trainer.accelerator=cpu", "trainer.devices=2"]
BY_CRUFT = "cruft: the template's tests/test_cruft.py makes, updates, checks and diffs a project from a clone of it"


def arguments(command: str) -> list[str]:
    """The overrides of a `python train.py ...` / `python eval.py ...` command."""
    return shlex.split(command)[2:]


elsewhere(BY_CRUFT, "pip install cruft && cruft create gh:<org>/cookiecutter-lightning-hydra")

# Set up and train

elsewhere(BY_THE_TEMPLATE, 'pip install -e ".[dev]"')


@readme("python train.py")
def trains_the_example(run, command: str) -> None:
    run("train.py", *arguments(command))
    (folder,) = run.folders()
    summary = run.summary(folder)
    assert summary["status"] == "finished" and summary["metrics"]["test/acc"] >= 0.90  # "~0.95 test accuracy"
    device = "cuda" if torch.cuda.is_available() else "cpu"  # trainer=default takes a GPU where there is one
    assert (summary["strategy"], summary["accelerator"], summary["world_size"]) == ("single_device", device, 1)
    assert summary["metrics"]["train/samples_per_sec"] > 0  # the throughput readout (harness/callbacks/throughput.py)
    # last.ckpt is the newest state; the best is its own file, and what was tested
    assert resume.saved_step(folder / "checkpoints" / "last.ckpt") == summary["global_step"] > 0
    assert summary["tested_ckpt_path"] == summary["best_ckpt_path"] != summary["last_ckpt_path"] or (
        resume.saved_step(summary["best_ckpt_path"]) == summary["global_step"]
    )
    assert (folder / "train.log").is_file() and (folder / ".hydra" / "config.yaml").is_file()


elsewhere(BY_THE_TEMPLATE_SUITE, "pytest")
elsewhere("the template's test_generated_project.py commits a render through it", "git init && pre-commit install")


@readme("python eval.py")
def needs_a_checkpoint(run, command: str) -> None:
    result = run("eval.py", *arguments(command), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "eval.py needs ckpt_path=path/to/file.ckpt" in result.stderr
    assert run.folders("eval") == []


elsewhere("the template's test_generated_project.py, on a render and on planted mistakes", "pre-commit run --all-files")
elsewhere(WITH_UV, "uv sync --extra dev", "uv run python train.py")


@readme("python train.py model.optimizer.lr=1e-3 data.batch_size=128 trainer.max_epochs=30 seed=7")
def changes_anything(run, command: str) -> None:
    trains_the_example(run, command)
    (folder,) = run.folders()
    config = (folder / ".hydra" / "config.yaml").read_text()
    assert "lr: 0.001" in config and "batch_size: 128" in config and "seed: 7" in config
    assert run.summary(folder)["epochs"] == 30


# Add a model, add a dataset (the recipes)

RECIPE_DATA = (
    'python -c "import numpy as np; r = np.random.default_rng(0); x = r.normal(size=(900, 20)); '
    "y = (x[:, :10] @ r.normal(size=(10, 3))).argmax(1); np.savez('my_data.npz', x=x, y=y)\""
)
elsewhere(
    BY_THE_RECIPES,
    "python train.py model=cnn",
    "python train.py model=cnn model.net.channels=32 trainer=ddp trainer.accelerator=cpu trainer.devices=2",
    RECIPE_DATA,
    "python train.py data=arrays",
)

# Installed as a package

SLUG = "{{ cookiecutter.project_slug }}"
elsewhere(BY_THE_TEMPLATE, "pip install .", f"{SLUG}-train trainer.max_epochs=1")


@readme(f"{SLUG}-train --config-dir my_configs model=wide")
def adds_a_config_folder(run, command: str) -> None:
    group = run.root / "my_configs" / "model"
    group.mkdir(parents=True)
    (group / "wide.yaml").write_text("defaults: [mlp, _self_]\nnet: {hidden: [512, 512]}\n")  # as the README says
    words = [str(run.root / w) if w == "my_configs" else w for w in shlex.split(command)[1:]]
    run("train.py", *words, "trainer=cpu", *FAST)  # the installed command takes what train.py takes
    (folder,) = run.folders()
    config = OmegaConf.load(folder / ".hydra" / "config.yaml")
    assert config.model.net.hidden == [512, 512] and config.model.net._target_.endswith(".MLP")
    assert config.model.optimizer._target_ == "torch.optim.AdamW"  # the rest of mlp.yaml, kept
    assert run.summary(folder)["status"] == "finished"


# A second example: a small GPT

# The GPT example: short runs where the promise is about ranks, precision or files; the whole default run
# where it is about learning.
GPT_QUICK = ["+trainer.limit_train_batches=10", "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2"]
GPT_QUICK += ["data.corpus_mb=0.5", "logger=csv"]


def unigram_entropy(**data: str) -> float:
    """Validation loss (nats per byte) of the best model that ignores context: the bytes' own entropy."""
    from {{cookiecutter.package_name}}.data.text_datamodule import TextDataModule

    datamodule = TextDataModule(**data)
    datamodule.setup()
    counts = torch.bincount(datamodule.splits["train"].tokens, minlength=256).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@readme("python train.py experiment=gpt")
def gpt_learns(run, command: str) -> None:
    run("train.py", *arguments(command), "logger=csv")
    (folder,) = run.folders()
    summary = run.summary(folder)
    # 3.14 nats on the default corpus; a loss at 60% of it (1.9) needs what came before each byte: words,
    # indentation, Python's syntax. Measured: 1.64 after the default epoch (922 steps).
    assert summary["metrics"]["val/loss"] < 0.6 * unigram_entropy(), summary["metrics"]
    assert summary["metrics"]["train/tokens_per_sec"] > 0
    assert "Sample at step" in (folder / "train.log").read_text()  # and on the console, through the same log


@readme('python generate.py ckpt_path=logs/train/runs/<run id>/checkpoints/last.ckpt prompt="def "')
def generates_from_a_checkpoint(run, command: str) -> None:
    run("train.py", "experiment=gpt", "trainer=cpu", *GPT_QUICK)
    (trained,) = run.folders()
    command = command.replace("logs/train/runs/<run id>", str(trained))
    result = run("generate.py", *arguments(command), "max_new_tokens=40")
    output = result.stdout + result.stderr
    assert f"Model and data configs from the run that wrote the checkpoint: {trained}" in output
    sample = output.split("checkpoints/last.ckpt:\n", 1)[1]
    assert sample.startswith("def") and len(sample) >= 40  # the prompt, continued


@readme("python train.py experiment=gpt data.path=input.txt")
def trains_on_any_text_file(run, command: str) -> None:
    text = run.root / "input.txt"
    text.write_text((PROJECT / "README.md").read_text() * 10)  # a text that is not the default corpus
    run("train.py", *arguments(command.replace("input.txt", str(text))), "trainer=cpu", *GPT_QUICK)
    (folder,) = run.folders()
    assert OmegaConf.load(folder / ".hydra" / "config.yaml").data.path == str(text)
    assert run.summary(folder)["status"] == "finished"


@readme(
    "python train.py experiment=gpt trainer=ddp trainer.accelerator=cpu trainer.devices=2 trainer.precision=bf16-mixed"
)
def gpt_under_ddp_in_bf16(run, command: str) -> None:
    run("train.py", *arguments(command), *GPT_QUICK)
    (folder,) = run.folders()
    summary = run.summary(folder)
    assert (summary["strategy"], summary["world_size"]) == ("ddp", 2)
    assert OmegaConf.load(folder / ".hydra" / "config.yaml").trainer.precision == "bf16-mixed"
    assert summary["metrics"]["val/loss"] < 5.0  # from log(256) = 5.5 at the start: it trained


@readme("python train.py experiment=gpt trainer=cpu model.compile=true")
def gpt_compiled(run, command: str) -> None:
    run("train.py", *arguments(command), *GPT_QUICK, "model.net.n_layer=1")  # compile time grows with the layers
    (folder,) = run.folders()
    assert run.summary(folder)["status"] == "finished"
    weights = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in weights)  # loads into an uncompiled model (generate.py)


@readme("python train.py experiment=gpt_tutorial trainer=ddp trainer.devices=4")
def gpt_tutorial_sizes(run, command: str) -> None:
    # Its width, one layer, two steps and no sample: its own ten epochs in bf16 on CPU took over ten minutes here.
    small = ["data.batch_size=4", "data.num_workers=0", "model.net.n_layer=1", "trainer.max_epochs=1", "logger=csv"]
    small += ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"]
    small += ["data.corpus_mb=0.125", "model.sample_tokens=0"]
    uses_gpus(run, command, small)
    (folder,) = run.folders()
    assert OmegaConf.load(folder / ".hydra" / "config.yaml").model.net.n_embd == 512


# Debugging


@readme("python train.py debug=fast_dev_run")
def runs_every_stage_once(run, command: str) -> None:
    result = run("train.py", *arguments(command))
    (folder,) = run.folders()
    assert (run.summary(folder)["global_step"], run.summary(folder)["status"]) == (1, "finished")
    assert "test/acc" in result.stdout + result.stderr


@readme("python train.py debug=overfit")
def overfits_two_batches(run, command: str) -> None:
    run("train.py", *arguments(command))
    (folder,) = run.folders()
    assert run.summary(folder)["metrics"]["train/loss"] < 0.05  # "must reach ~0 (< 0.05)"


@readme("python train.py debug=profiler")
def profiles_thirty_steps(run, command: str) -> None:
    run("train.py", *arguments(command))
    (folder,) = run.folders()
    assert run.summary(folder)["global_step"] == 20
    (trace,) = (folder / "profiler").glob("*.pt.trace.json")  # opens in ui.perfetto.dev
    names = {event.get("name", "") for event in json.loads(trace.read_text())["traceEvents"]}
    assert len([n for n in names if n.startswith("ProfilerStep")]) == 10  # the schedule's active steps
    assert "run_training_batch" in (folder / "profiler" / "fit-profile.txt").read_text()


# Tests

elsewhere(BY_THE_TEMPLATE_SUITE, 'pytest -m "slow or not slow"', "pytest -m slow tests/harness/test_resume.py")

# Updating from the template

elsewhere(BY_CRUFT, "cruft link gh:<org>/cookiecutter-lightning-hydra", "cruft check", "cruft diff", "cruft update")
elsewhere(BY_CRUFT, "pytest tests/test_template_update.py")


# Strategies


@readme("python train.py trainer=ddp trainer.devices=4")
def uses_gpus(run, command: str, quick: list[str] = FAST) -> None:
    if not torch.cuda.is_available():
        refused = run("train.py", *arguments(command), *quick, check=False)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "add trainer.accelerator=cpu to run on the CPU" in refused.stderr
        assert run.folders() == []
    run("train.py", *arguments(command), *TWO_CPU_RANKS, *quick)
    (folder,) = run.folders()  # one run folder for both ranks
    assert run.summary(folder)["world_size"] == 2


@readme("python train.py trainer=ddp trainer.accelerator=cpu trainer.devices=2")
def two_cpu_ranks(run, command: str) -> None:
    run("train.py", *arguments(command), *FAST)
    (folder,) = run.folders()
    summary = run.summary(folder)
    assert (summary["strategy"], summary["world_size"], summary["accelerator"]) == ("ddp", 2, "cpu")


@readme("python train.py -m trainer=ddp model.optimizer.lr=1e-3,1e-4")
def sweeps_two_ddp_jobs(run, command: str) -> None:
    result = run("train.py", *arguments(command), *TWO_CPU_RANKS, *FAST)
    folders = run.folders()
    assert [f.name for f in folders] == ["0", "1"] and len({f.parent for f in folders}) == 1  # one folder a job
    assert (result.stdout + result.stderr).count("Launching 2 jobs") == 1  # no rank started the sweep again
    for folder, lr in zip(folders, ("0.001", "0.0001"), strict=True):
        assert f"model.optimizer.lr={lr}" in (folder / ".hydra" / "overrides.yaml").read_text()
        assert run.summary(folder)["world_size"] == 2
    assert (result.stdout + result.stderr).count("2 runs, best val/acc first") == 1  # the sweep's closing table


# Models bigger than one device

# Every README command: how it is checked here, or why it is checked elsewhere.
SHARDED_GPT = "python train.py experiment=gpt trainer=model_parallel trainer.accelerator=cpu trainer.devices=2"
TENSOR_PARALLEL_GPT = f"{SHARDED_GPT} trainer.strategy.tensor_parallel_size=2"


@readme(SHARDED_GPT, TENSOR_PARALLEL_GPT)
def trains_sharded(run, command: str) -> None:
    run("train.py", *arguments(command), *GPT_QUICK)
    (folder,) = run.folders()
    summary = run.summary(folder)
    assert (summary["world_size"], summary["status"]) == (2, "finished")
    assert len(list((folder / "checkpoints" / "last.ckpt").glob("*.distcp"))) == 2  # a folder: one shard a rank
    parallel = OmegaConf.load(folder / ".hydra" / "config.yaml").trainer.strategy.tensor_parallel_size
    assert parallel == (2 if "tensor_parallel_size=2" in command else 1)


@readme("python train.py experiment=gpt trainer=fsdp trainer.devices=4")
def fsdp_on_gpus(run, command: str) -> None:
    if not torch.cuda.is_available():
        refused = run("train.py", *arguments(command), *GPT_QUICK, check=False)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "for sharded training on the CPU use trainer=model_parallel" in refused.stderr
        assert run.folders() == []
        return
    run("train.py", *arguments(command), *GPT_QUICK, f"trainer.devices={min(torch.cuda.device_count(), 4)}")
    (folder,) = run.folders()
    assert run.summary(folder)["status"] == "finished"


PACKAGE = "{{ cookiecutter.package_name }}"


@readme(f"python -m {PACKAGE}.harness.consolidate logs/train/runs/<run id>/checkpoints/last.ckpt")
def consolidates_a_sharded_checkpoint(run, command: str) -> None:
    run("train.py", *arguments(SHARDED_GPT), *GPT_QUICK)
    (folder,) = run.folders()
    command = command.replace("logs/train/runs/<run id>", str(folder))
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    subprocess.run(shlex.split(command), cwd=PROJECT, env=env, check=True, capture_output=True)
    checkpoint = torch.load(folder / "checkpoints" / "last.consolidated.ckpt", weights_only=True)
    assert checkpoint["global_step"] == run.summary(folder)["global_step"]
    assert checkpoint["state_dict"]["net.tok_emb.weight"].shape == (256, 64)  # whole, not a shard
    # Both load the Lightning way, with no config at hand (README, "Evaluate"): the same whole weights
    from {{cookiecutter.package_name}}.models.language_model import LanguageModel

    for path in (folder / "checkpoints" / "last.ckpt", folder / "checkpoints" / "last.consolidated.ckpt"):
        loaded = LanguageModel.load_from_checkpoint(path).state_dict()
        assert all(torch.equal(loaded[key], value) for key, value in checkpoint["state_dict"].items())


# Evaluate, log, compare


@readme("python eval.py ckpt_path=logs/train/runs/<run id>/checkpoints/last.ckpt")
def evaluates_with_the_runs_config(run, command: str) -> None:
    run("train.py", "trainer=cpu", "model.net.hidden=[32]", *FAST)  # trained with a smaller network
    (trained,) = run.folders()
    command = command.replace("logs/train/runs/<run id>", str(trained))
    run("eval.py", *arguments(command))  # no model override repeated
    (folder,) = run.folders("eval")
    summary = run.summary(folder)
    assert summary["tested_ckpt_path"] == str(trained / "checkpoints" / "last.ckpt")
    assert 0.0 <= summary["metrics"]["test/acc"] <= 1.0


PREDICT_INPUTS = (
    "python -c \"import numpy as np; x = np.load('src/"
    "{{ cookiecutter.package_name }}"
    "/data/digits.npz')['images'][:100]; "
    "np.savez('digits.npz', x=x); np.savetxt('digits.csv', x, delimiter=',')\""
)
elsewhere(
    "tests/test_predict.py runs it on one short training run, and compares with the checkpoint's own predictions",
    PREDICT_INPUTS,
    "python predict.py ckpt_path=logs/train/runs/<run id> data.predict_path=digits.npz",
    "python predict.py ckpt_path=logs/train/runs/<run id> data.predict_path=digits.csv trainer=ddp "
    "trainer.accelerator=cpu trainer.devices=2 predictions=npz",
    'pip install -e ".[parquet]"',  # its predictions=parquet too (the template's CI installs pyarrow)
    "python predict.py ckpt_path=logs/train/runs/<run id> data.predict_path=prompts.txt +model.sample_tokens=100",
)

elsewhere(
    "tests/test_export.py writes both files and runs the README's snippets that load them (the template's CI "
    "installs the onnx extra)",
    'pip install -e ".[onnx]"',
    "python export.py ckpt_path=logs/train/runs/<run id>/checkpoints/last.ckpt",
)

elsewhere(BY_THE_TEMPLATE, 'pip install -e ".[wandb]"')


@readme("python train.py logger=wandb")
def logs_to_wandb_offline(run, command: str) -> None:
    needs("wandb")
    env = {"WANDB_API_KEY": "", "WANDB_MODE": "", "HOME": str(run.root)}
    result = run("train.py", *arguments(command), *FAST[:3], env=env)
    (folder,) = run.folders()
    assert list(folder.glob("wandb/offline-run-*"))
    assert "wandb: logging offline, no API key configured" in result.stdout + result.stderr


elsewhere(BY_THE_TEMPLATE, 'pip install -e ".[plots]"')  # where it is not installed: tests/harness/test_compare.py


@readme("python train.py -m trainer=cpu model.optimizer.lr=1e-2,1e-3,1e-4 trainer.max_epochs=3")
def sweeps_and_names_the_best(run, command: str) -> None:
    result = run("train.py", *arguments(command), "+trainer.limit_train_batches=4")
    jobs = run.folders()
    best = max(jobs, key=lambda job: run.summary(job)["best_score"])
    assert len(jobs) == 3 and "3 runs, best val/acc first" in result.stdout
    summary = run.summary(best)
    assert f"Best val/acc: {summary['best_score']:.4f}: {summary['name']}, in {best}" in result.stdout
    assert drew_curves(best.parent / "curves.png", result.stdout)


@readme("python compare.py logs/train/multiruns/<sweep id>")
def compares_a_sweep(run, command: str) -> None:
    run("train.py", "-m", "trainer=cpu", "model.optimizer.lr=1e-2,1e-4", *FAST)
    (sweep,) = {job.parent for job in run.folders()}
    (sweep / "curves.png").unlink(missing_ok=True)  # written at the sweep's end (with matplotlib): now anew
    result = run("compare.py", *arguments(command.replace("logs/train/multiruns/<sweep id>", str(sweep))))
    header = next(line for line in result.stdout.splitlines() if line.startswith("┃"))
    assert "2 runs, best val/acc first" in result.stdout and "model.optimizer.lr" in header
    assert drew_curves(sweep / "curves.png", result.stdout)


@readme("python compare.py --sort val/loss")
def compares_every_run(run, command: str) -> None:
    for lr in ("1e-2", "1e-4"):
        run("train.py", "trainer=cpu", f"model.optimizer.lr={lr}", *FAST, "test=false")
    result = run("compare.py", *arguments(command))
    losses = {run.summary(folder)["metrics"]["val/loss"]: folder.name for folder in run.folders()}
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert [row.split()[1] for row in rows] == [losses[loss] for loss in sorted(losses)]  # lowest val/loss first


@readme('python train.py "callbacks=[default,early_stopping]" callbacks.early_stopping.patience=5')
def stops_early(run, command: str) -> None:
    run("train.py", *arguments(command), *FAST[1:], "trainer.max_epochs=20", "model.optimizer.lr=0")
    (folder,) = run.folders()
    assert run.summary(folder)["epochs"] == 6  # nothing improves after the first validation: 1 + patience 5


# Repeats, folds and sweeps that resume


@readme("python train.py -m seed=0,1,2 model.optimizer.lr=1e-3,3e-3")
def groups_repeats(run, command: str) -> None:
    result = run("train.py", *arguments(command), *FAST, "test=false", "extras.print_config=false")
    output = result.stdout[result.stdout.index("2 groups of 6 runs, best mean val/acc first") :]  # the end table
    rows = [line for line in output.splitlines() if line.startswith("│ ")]
    assert len(rows) == 2 and all("│ 3 │ seed=0,1,2 │ 3 finished │" in row for row in rows)
    means = [float(row.split("│")[6].split(" ± ")[0]) for row in rows]  # the val/acc (best) column
    assert means == sorted(means, reverse=True)
    best_lr = rows[0].split("│")[2].strip()
    assert f"over 3 runs: lr={best_lr} " in output and drew_curves(run.folders()[0].parent / "curves.png", output)


@readme("python train.py -m data.num_folds=5 data.fold=0,1,2,3,4")
def cross_validates(run, command: str) -> None:
    result = run("train.py", *arguments(command), *FAST, "test=false", "extras.print_config=false")
    output = result.stdout[result.stdout.index("1 group of 5 runs, best mean val/acc first") :]  # the end table
    (row,) = [line for line in output.splitlines() if line.startswith("│ ")]
    assert "│ 5 │ data.fold=0,1,2,3,4 │ 5 finished │" in row
    folds = [OmegaConf.load(folder / ".hydra" / "config.yaml").data for folder in run.folders()]
    assert [(data.num_folds, data.fold) for data in folds] == [(5, k) for k in range(5)]


SWEEP = "python train.py -m model.optimizer.lr=1e-3,3e-3 seed=0,1"
elsewhere("stopped by Ctrl-C in its third job by the check of the next command", SWEEP)
# 20 steps a job, a checkpoint every 5: Ctrl-C lands in the third job, after its first checkpoint.
SMALL_JOBS = ["trainer=cpu", "trainer.max_epochs=1", "data.batch_size=8", "+trainer.limit_train_batches=20"]
SMALL_JOBS += ["+trainer.limit_val_batches=1"]
SMALL_JOBS += ["logger=csv", "test=false", "callbacks.last_checkpoint.every_n_train_steps=5"]


@readme(f"{SWEEP} ckpt_path=last")
def continues_a_stopped_sweep(run, command: str) -> None:
    first = run.root / "first.log"
    process = start(run, *arguments(SWEEP), *SMALL_JOBS, console=first)
    multiruns = run.root / "logs" / "train" / "multiruns"
    deadline = time.monotonic() + 300
    while not list(multiruns.glob("*/2/checkpoints/last.ckpt")):  # the third job has saved a checkpoint
        assert process.poll() is None and time.monotonic() < deadline, first.read_text()[-3000:]
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
    process.wait()
    (sweep,) = multiruns.iterdir()
    into_its_folder = [*arguments(SWEEP), *SMALL_JOBS, f"hydra.sweep.dir={sweep}"]
    assert f"To continue the sweep: python train.py {' '.join(into_its_folder)}\n" in first.read_text()
    assert [run.summary(sweep / job)["status"] for job in "012"] == ["finished", "finished", "interrupted"]
    assert not (sweep / "3").exists()
    stopped_at = resume.saved_step(sweep / "2" / "checkpoints" / "last.ckpt")

    result = run("train.py", *arguments(command), *SMALL_JOBS)  # the newest sweep of these settings
    assert list(multiruns.iterdir()) == [sweep]
    output = result.stdout + result.stderr
    for job in "01":
        assert f"Job {job} finished in an earlier launch of this sweep ({sweep / job}): not run again" in output
    assert "Job 2 was stopped (interrupted): it continues from its checkpoint" in output
    assert f"resuming from {sweep / '2' / 'checkpoints' / 'last.ckpt'} (step {stopped_at})" in output
    summaries = [run.summary(sweep / job) for job in "0123"]
    assert [len(s["attempts"]) for s in summaries] == [1, 1, 2, 1]  # 2 jobs ran, not 4
    assert [s["status"] for s in summaries] == ["finished"] * 4 and {s["global_step"] for s in summaries} == {20}
    assert "2 groups of 4 runs" in result.stdout  # the end table has every job

    again = run("train.py", *into_its_folder)  # the folder named: all finished, nothing runs
    skipped = (again.stdout + again.stderr).count("finished in an earlier launch of this sweep")
    assert skipped == 4 and "2 groups of 4 runs" in again.stdout
    other = run("train.py", *[o.replace("1e-3,3e-3", "1e-2") for o in into_its_folder], check=False)
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert f"ERROR: {sweep} holds a sweep of model.optimizer.lr=1e-3,3e-3 seed=0,1 trainer=cpu " in other.stderr
    assert "to continue it, give its overrides; for a new sweep, leave out hydra.sweep.dir." in other.stderr
    swapped = run("train.py", "-m", "seed=0,1", "model.optimizer.lr=1e-3,3e-3", *into_its_folder[3:], check=False)
    assert swapped.returncode == 1 and f"ERROR: {sweep} holds a sweep of" in swapped.stderr  # its order: the jobs'
    assert [len(run.summary(sweep / job)["attempts"]) for job in "0123"] == [1, 1, 2, 1]  # nothing ran


# Resume


@readme("python train.py ckpt_path=last")
def continues_the_newest_run(run, command: str) -> None:
    run("train.py", "trainer=cpu", *FAST)
    (folder,) = run.folders()
    result = run("train.py", *arguments(command), "trainer=cpu", *FAST, "trainer.max_epochs=2")
    assert run.folders() == [folder]  # in its folder
    assert "exists and is not empty" not in result.stderr  # continuing in it is the point, not a warning
    assert run.summary(folder)["global_step"] == 8  # epoch 0 kept, epoch 1 added: 4 + 4 steps


@readme("python train.py ckpt_path=path/to/file.ckpt")
def starts_from_a_checkpoint(run, command: str) -> None:
    run("train.py", "trainer=cpu", *FAST)
    (first,) = run.folders()
    command = command.replace("path/to/file.ckpt", str(first / "checkpoints" / "last.ckpt"))
    run("train.py", *arguments(command), "trainer=cpu", *FAST, "trainer.max_epochs=2")
    (second,) = [f for f in run.folders() if f != first]  # a new run
    assert run.summary(second)["global_step"] == 8


KILL_CAMPAIGN = "python tests/harness/kill_campaign.py --kills 10 --seed 0"
elsewhere("kills 10 runs (5 minutes): tests/harness/test_resume.py runs a sample of its cells", KILL_CAMPAIGN)
elsewhere(
    "needs SLURM: the template's tests/test_slurm.py runs the campaign's SLURM cells on a two-node test cluster",
    'python tests/harness/kill_campaign.py --kills 10 --sbatch "--partition=<partition> --gpus-per-node=0"',
)


# Hyperparameter search

SEARCH = (
    "python train.py -m hparams_search=digits_optuna trainer=ddp trainer.accelerator=cpu trainer.devices=2 "
    "hydra.sweeper.n_trials=4"
)
elsewhere(BY_THE_TEMPLATE, 'pip install -e ".[optuna]"')
readme(SEARCH)(prunes_and_reports_the_best)  # shared with tests/harness/test_hparams_search.py (helpers.py)
elsewhere(
    ON_A_CLUSTER, f"{SEARCH.split(' trainer=')[0]} hydra/launcher=slurm trainer=ddp_multinode hydra.sweeper.n_jobs=4"
)

# On a SLURM cluster

GPUS = {{ cookiecutter.slurm_gpus_per_node | int }}  # per node, in the salloc line
ALLOCATION = f"--gpus-per-node={GPUS} --ntasks-per-node={GPUS}" if GPUS else "--ntasks-per-node=1"
TWO_PER_NODE = "--gpus-per-node=2 --ntasks-per-node=2" if GPUS else "--ntasks-per-node=2"  # CPU nodes: processes
elsewhere(
    ON_A_CLUSTER,
    "sbatch slurm/single_node.sbatch",
    "sbatch slurm/multi_node.sbatch",
    "sbatch --nodes=4 slurm/multi_node.sbatch trainer.max_epochs=50 model.optimizer.lr=1e-4",
    f"sbatch --nodes=2 {TWO_PER_NODE} slurm/multi_node.sbatch",
    "sbatch --nodes=2 slurm/multi_node.sbatch experiment=gpt trainer=model_parallel",
    "scontrol update JobId=<job id> NumNodes=1 NumTasks=<its --ntasks-per-node>",
    "squeue --me",
    "tail -f slurm/logs/{{ cookiecutter.project_slug }}-<job id>.err",
    "scontrol show job <job id>",
    "scancel <job id>",
    "scancel -s USR1 <job id>",
    f"salloc --nodes=1 {ALLOCATION} --time=1:00:00",
    "srun --job-name=train python train.py trainer=ddp_multinode",
    "python train.py -m hydra/launcher=slurm trainer=ddp_multinode model.optimizer.lr=1e-3,1e-4",
)
elsewhere(
    BY_LAUNCHERS,
    "torchrun --standalone --nproc-per-node=2 train.py trainer=ddp_multinode trainer.accelerator=cpu",
    "mpirun -np 2 python train.py trainer=ddp_multinode trainer.accelerator=cpu",
    'pip install -e ".[mpi]"',
)

RUN_HERE = {command: check for command, check in COMMANDS.items() if callable(check)}
# The fast tier (plain `pytest`): a refusal, one batch of each stage, a tiny run and its resume. The other
# commands train for real or start several processes: `pytest -m "slow or not slow"` runs them too.
FAST_TIER = {"python eval.py", "python train.py debug=fast_dev_run", "python train.py ckpt_path=last"}


def test_every_readme_command_is_tested() -> None:
    in_readme = readme_commands()
    untested = [command for command in in_readme if command not in COMMANDS]
    assert untested == [], f"README commands with no entry in COMMANDS: {untested}"
    stale = [command for command in COMMANDS if command not in in_readme]
    assert stale == [], f"COMMANDS no longer in the README: {stale}"
    assert list(COMMANDS) == in_readme, "this file lists the README's commands in another order than the README"


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=() if c in FAST_TIER else pytest.mark.slow) for c in RUN_HERE]
)
def test_readme_command(run, command: str) -> None:
    RUN_HERE[command](run, command)

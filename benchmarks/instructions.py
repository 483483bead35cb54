"""Instructions per training step, counted by valgrind: `python benchmarks/instructions.py [--workload tiny|gpt]`.

Gap this fills: run.py's rows are wall-clock, and on a shared VM a run's speed varies 10-15 % from run to run, so
a change of a few percent in per-step overhead cannot be seen there. The number of instructions a process
executes does not depend on the machine's speed or its other tenants: under cachegrind, with one thread
(OMP_NUM_THREADS=1) and a fixed hash seed (PYTHONHASHSEED=0), two runs of the same command agree to about 0.01 %.

For each side (plain PyTorch, bare Lightning, the generated project; commands from harness.py, as run.py runs
them) it counts two runs with the same epochs that differ only in training steps an epoch, N1 against N2
(`+trainer.limit_train_batches` / `--steps-per-epoch`), and reports

    instructions per step = (instructions(N2 steps an epoch) - instructions(N1)) / (epochs x (N2 - N1)).

In the difference: the training steps themselves (fetching the batch, forward, backward, optimizer, the
per-step hooks, callbacks, metric updates and `self.log`), and what is done every 10th step (logging), at its
average. Not in it: what both runs do alike, once a run or once an epoch: interpreter start-up, imports,
config composition, the sanity check, each epoch's validation, checkpoint, epoch-end metrics and scheduler
step, exit. That fixed part is the start-up row ("fixed": a run's count less its steps), beside the
instructions and seconds of `--help`.
The progress bar's work is paced by the clock (see NO_BAR): a fourth side, the generated project without it,
gives the template's per-step count free of that; the generated side's count with the bar is an upper bound.
Child processes are not counted (there are none in one process on the CPU).
Prints a Markdown table and writes benchmarks/results_instructions.json, one entry per workload (run.py's
results.json is left alone). Needs valgrind; not part of the test command. The tiny workload takes about
20 minutes here.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from harness import (
    BENCH_DIR,
    WORK,
    Case,
    GPTWorkload,
    Workload,
    bare_lightning,
    bench_env,
    generated_command,
    plain_command,
    render,
    time_command,
)
from run import QUICK, machine

# (epochs, training steps an epoch in the shorter run, in the longer one). Both runs of a side have the same
# epochs, so the same validations and checkpoints; they differ only in training steps, epochs x (N2 - N1) of
# them. Each run's count carries a few million instructions of its own (bare Lightning's 5-step run counted
# twice: 7 M apart, most of a tiny step), so the tiny workload takes ~100 steps of difference: the digits'
# epoch has 19 full batches of 64 (and a short one), hence 6 epochs of 2 against 19 steps. N1 > 1 puts the
# first step's one-off costs (optimizer state, lazy initialisation) in both runs. A GPT step is far more
# instructions than a run's own noise: one epoch of 3 against 13 steps.
LENGTHS = {"tiny": (6, 2, 19), "gpt": (1, 3, 13)}
SIDES = ("plain", "lightning", "generated", "no_bar")
NAMES = {
    "plain": "plain PyTorch",
    "lightning": "bare Lightning",
    "generated": "generated",
    "no_bar": "generated, no progress bar",
}
# The progress bar's work is paced by the clock, not by steps: Rich redraws it from a thread 10 times a second,
# and the bar reads the logged metrics at most 10 times a second. Under valgrind, ~50 times slower, that is
# every step, and the redraws follow how fast valgrind happened to run: two counts of one generated run were
# 9.7 M instructions apart, 0.7 of a tiny step. Without the bar the count is the template's per-step work alone.
NO_BAR = ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false"]
RESULTS = BENCH_DIR / "results_instructions.json"


def valgrind_env(cwd: Path) -> dict[str, str]:
    # One thread and a fixed hash seed: without them, two counts of one run were 0.6 % apart, not 0.01 %.
    return {**bench_env(cwd), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def count(command: list[str], cwd: Path, run_dir: Path) -> int:
    """Instructions executed by `command` (the process, not its children) under cachegrind."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "cachegrind.out"
    grind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
    with open(run_dir / "output.log", "w") as log:
        done = subprocess.run(grind + command, cwd=cwd, env=valgrind_env(cwd), stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = (run_dir / "output.log").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{tail}")
    for checkpoint in [*run_dir.rglob("*.ckpt"), *run_dir.rglob("*.pt")]:
        checkpoint.unlink()
    return int(re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE).group(1))


def side_command(side: str, project: Path, work: Workload | GPTWorkload, steps: int, run_dir: Path) -> list[str]:
    """run.py's command for this side, `steps` training steps an epoch."""
    if side == "plain":
        command = plain_command(work, Case(), run_dir, project)
        # plain_gpt.py takes its steps from the workload; plain_train.py runs whole epochs unless told.
        return command if isinstance(work, GPTWorkload) else [*command, f"--steps-per-epoch={steps}"]
    overrides = {"lightning": bare_lightning(work), "no_bar": NO_BAR}.get(side, [])
    if isinstance(work, Workload):  # the GPT command sets its own limit from the workload
        overrides = [*overrides, f"+trainer.limit_train_batches={steps}"]
    return generated_command(project, work, Case(overrides=overrides), run_dir)


def run_length(side: str, project: Path, work: Workload | GPTWorkload, steps: int, tag: str = "") -> int:
    if isinstance(work, GPTWorkload):
        work = replace(work, steps_per_epoch=steps)
    run_dir = WORK / "instructions" / f"{work.name}-{side}-{steps}{tag}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cwd = run_dir if side == "plain" else project  # where run.py runs each side
    return count(side_command(side, project, work, steps, run_dir), cwd, run_dir)


def help_commands(project: Path, workload: str) -> dict[str, list[str]]:
    plain = BENCH_DIR / ("plain_gpt.py" if workload == "gpt" else "plain_train.py")
    return {"plain": [sys.executable, str(plain), "--help"], "generated": [sys.executable, "train.py", "--help"]}


def table(result: dict) -> str:
    epochs, (n1, n2) = result["epochs"], result["steps_per_epoch"]
    per, fixed, helps, ratio = result["per_step"], result["fixed"], result["help"], result["ratio"]
    lines = [
        "| side | instructions / step (M) | fixed: run less its steps (M) | `--help` (M) | `--help` (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for side in SIDES:
        help_cells = f"{helps[side]['instructions'] / 1e6:.0f} | {helps[side]['seconds']:.2f}" if side in helps else "|"
        lines.append(f"| {NAMES[side]} | {per[side] / 1e6:.2f} | {fixed[side] / 1e6:.0f} | {help_cells} |")
    lines += [
        "",
        f"Per step ({epochs} epochs of {n1} against {n2} steps): generated / plain {ratio['generated/plain']:.3f}, "
        f"generated / bare Lightning {ratio['generated/lightning']:.3f}; without the progress bar "
        f"{ratio['no_bar/plain']:.3f} and {ratio['no_bar/lightning']:.3f}; bare Lightning / plain "
        f"{ratio['lightning/plain']:.3f}.",
    ]
    for side, repeat in result.get("repeat", {}).items():
        lines.append(
            f"Repeatability, {NAMES[side]}: its longer run counted twice differed by "
            f"{repeat['diff_pct']:+.4f} % of the run, {repeat['step_pct']:+.2f} % of the per-step figure."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="tiny", choices=sorted(LENGTHS))
    parser.add_argument(
        "--repeat",
        action="store_true",
        help="count the longer runs of bare Lightning and of the generated project without the bar twice",
    )
    parser.add_argument("--no-help", action="store_true", help="leave out the `--help` counts")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    started = time.time()
    # run.py's tiny and GPT workloads, one epoch, one thread (valgrind runs all threads on one core anyway).
    epochs, n1, n2 = LENGTHS[args.workload]
    work = replace(QUICK[args.workload], epochs=epochs, threads=1)
    project = render()

    totals: dict[str, dict[int, int]] = {side: {} for side in SIDES}
    for side in SIDES:
        for length in (n1, n2):
            totals[side][length] = run_length(side, project, work, length)
            print(
                f"[{time.time() - started:4.0f} s] {side}, {length} steps an epoch: {totals[side][length]:,}",
                flush=True,
            )
    steps = epochs * (n2 - n1)  # training steps in the difference
    per_step = {side: (totals[side][n2] - totals[side][n1]) / steps for side in SIDES}
    result = {
        "epochs": epochs,
        "steps_per_epoch": [n1, n2],
        "instructions": {side: totals[side] for side in SIDES},
        "per_step": per_step,
        "fixed": {side: totals[side][n1] - epochs * n1 * per_step[side] for side in SIDES},
        "ratio": {
            "generated/plain": per_step["generated"] / per_step["plain"],
            "generated/lightning": per_step["generated"] / per_step["lightning"],
            "lightning/plain": per_step["lightning"] / per_step["plain"],
            "no_bar/plain": per_step["no_bar"] / per_step["plain"],
            "no_bar/lightning": per_step["no_bar"] / per_step["lightning"],
        },
        "help": {},
    }
    if not args.no_help:
        for side, command in help_commands(project, args.workload).items():
            run_dir = WORK / "instructions" / f"help-{args.workload}-{side}"
            cwd = project if side == "generated" else BENCH_DIR
            instructions = count(command, cwd, run_dir)
            result["help"][side] = {"instructions": instructions, "seconds": time_command(command, cwd)}
    for side in ("lightning", "no_bar") if args.repeat else ():
        again = run_length(side, project, work, n2, tag="-again")
        first = totals[side][n2]
        result.setdefault("repeat", {})[side] = {
            "instructions": [first, again],
            "diff_pct": 100 * (again - first) / first,
            "step_pct": 100 * (again - first) / steps / per_step[side],  # the error it puts on one step
        }
    result["seconds"] = round(time.time() - started)

    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    saved["machine"] = machine()
    saved[args.workload] = result
    RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"\n{args.workload} workload, instructions counted by cachegrind ({result['seconds']} s):\n")
    print(table(result))
    print(f"\nWrote {RESULTS}.")


if __name__ == "__main__":
    main()

"""The kill campaign (README, "Resume"): runs stopped at random moments by random signals, each continued with
`ckpt_path=last`, sometimes on another number of ranks, and compared with the same run never stopped.

    python tests/harness/kill_campaign.py --kills 100 --seed 0    # about 14 s a kill on 2 cores

It prints a row per kill and a summary line. A kill passes when the run was still training when the signal
landed (its summary.json not finished, its newest checkpoint short of the last step), the continuation started
from the newest checkpoint (losing at most the checkpoint interval) and ended at the same step and epoch as the
run never stopped, with every logged row kept, and with the same weights and validation metrics: bit for bit on
the same ranks; on another number of ranks, where floating-point sums are ordered differently, weights within
1e-4 and validation metrics within 1e-4 relative. That difference grows with the steps trained on the other number
(in the 100-kill run of 2026-12-07: 5e-8 after 38 steps, 1e-6 after 214, 1.8e-5 at most); a step that took other
samples shows at once (4e-2 after 196 steps, when epochs were not yet padded to whole steps: README, "Continuing on
other hardware").
tests/harness/test_resume.py runs a fixed sample of its cells.
"""

import argparse
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # helpers.py, when run as a script
from helpers import DDP, Runs, start, weights  # noqa: E402

from {{cookiecutter.package_name}}.harness import resume  # noqa: E402

RANKS = {1: ["trainer=cpu"], 2: DDP}
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "Ctrl-C": signal.SIGINT}
EVERY = 20  # steps between checkpoints: the most a kill may cost
LOGGED = 5  # a metrics row every 5 steps, written to disk as logged: what a SIGKILL leaves shows how far it got
# The digits, deterministic, dropout off (ranks draw their masks by position: another number draws others).
# 1254 to train, which no step of 8 or 16 divides (each epoch's last step is padded with repeats, the same on any
# number of ranks), and 274 to validate, split evenly over 2 ranks (Lightning's validation sampler pads per rank).
# 8 per rank: 314 steps on 1 rank, 158 on 2. A continuation on another number keeps the global batch.
RUN = ["model.net.dropout=0", "data.batch_size=8", "trainer.max_epochs=2", "trainer.deterministic=true"]
RUN += ["data.val_fraction=0.1525"]
RUN += ["logger=csv", "test=false", f"callbacks.last_checkpoint.every_n_train_steps={EVERY}"]
RUN += [f"trainer.log_every_n_steps={LOGGED}", f"+logger.csv.flush_logs_every_n_steps={LOGGED}"]
STEPS = {1: 314, 2: 158}


@dataclass
class Kill:
    ranks: int
    how: str
    at_step: int  # the signal lands once the run has logged this step (between checkpoints, or during a save)
    resume_ranks: int


def draw(rng: random.Random) -> Kill:
    ranks = rng.choice([1, 2])
    at = rng.randrange(LOGGED, STEPS[ranks] - 2 * LOGGED, LOGGED) - 1  # rows are logged at steps 4, 9, 14, ...
    return Kill(ranks, rng.choice(sorted(SIGNALS)), at, rng.choice([1, 2]))


def train_rows(folder: Path) -> list[int]:
    """The steps of the train/loss rows in the run's metrics.csv."""
    path = folder / "csv" / "metrics.csv"
    if not path.exists():
        return []
    with path.open() as file:
        return [int(row["step"]) for row in csv.DictReader(file) if row.get("train/loss")]


def run_cell(kill: Kill, root: Path, references: dict[int, dict]) -> tuple[dict, list[str]]:
    """Runs one kill; returns its row and what went wrong (nothing, when it passed)."""
    runs = Runs(root)
    process = start(runs, *RANKS[kill.ranks], *RUN)
    deadline = time.monotonic() + 300
    while max(train_rows(next(iter(runs.folders()), root)), default=-1) < kill.at_step:
        if process.poll() is not None or time.monotonic() > deadline:
            return {}, ["the run ended before it could be stopped"]
        time.sleep(0.01)
    os.killpg(process.pid, SIGNALS[kill.how])
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        return {}, [f"the run did not stop within 2 minutes of {kill.how}"]
    (folder,) = runs.folders()
    reached = max(train_rows(folder), default=0)  # how far it got, to the last row written
    newest = resume.newest_checkpoint(folder)
    from_step = resume.saved_step(newest) if newest else 0
    if runs.summary(folder)["status"] == "finished" or from_step >= STEPS[kill.ranks]:
        return {"from": from_step}, ["the signal landed after training had ended"]
    # 8 per rank x ranks is the run's global batch: on more ranks, a smaller batch each; on fewer, accumulated
    batch = [f"data.batch_size={8 * kill.ranks // kill.resume_ranks}"] if kill.resume_ranks > kill.ranks else []
    runs("train.py", *RANKS[kill.resume_ranks], *RUN, *batch, "ckpt_path=last")
    got = runs.summary(folder)
    expected = references[kill.ranks]
    row = {"lost": max(reached - from_step, 0), "from": from_step, "steps": got["global_step"]}
    problems = []
    if row["lost"] > EVERY + LOGGED:
        problems.append(f"lost {row['lost']} steps (more than the checkpoint interval, {EVERY})")
    if (got["global_step"], got["epochs"]) != (expected["global_step"], expected["epochs"]):
        problems.append(f"ended at step {got['global_step']}, not {expected['global_step']}")
    a, b = weights(folder), weights(references[kill.ranks]["folder"])
    row["weights"] = max((a[name] - b[name]).abs().max().item() for name in b)
    same_ranks = kill.resume_ranks == kill.ranks
    for name in ("val/loss", "val/acc"):
        a, b = got["metrics"][name], expected["metrics"][name]
        if abs(a - b) > (0 if same_ranks else 1e-4) * abs(b):
            problems.append(f"{name} {a} instead of {b}")
    if row["weights"] > (0 if same_ranks else 1e-4):
        problems.append(f"weights {row['weights']:.1e} from those of the run never stopped")
    rows = train_rows(folder)
    missing = sorted(set(range(LOGGED - 1, got["global_step"], LOGGED)) - set(rows))  # logged at steps 4, 9, ...
    if missing:
        problems.append(f"metrics.csv lost the rows of steps {missing[:5]}")
    return row, problems


def campaign(kills: list[Kill], folder: Path, out=print) -> int:
    """Runs the kills; prints a row each and the summary line; returns how many failed."""
    references = {}
    for ranks in sorted({kill.ranks for kill in kills}):
        runs = Runs(folder / f"never-stopped-{ranks}")
        runs("train.py", *RANKS[ranks], *RUN)
        (reference,) = runs.folders()
        references[ranks] = {**runs.summary(reference), "folder": reference}
    failed = lost = wrong = 0
    columns = "# | ranks | signal | at step | continued on | from step | lost | end step | weights vs never stopped"
    out(f"| {columns} | ok |")
    out("| --- " * 10 + "|")
    for number, kill in enumerate(kills):
        row, problems = run_cell(kill, folder / f"kill-{number}", references)
        failed += bool(problems)
        lost += any(p.startswith("lost") for p in problems)
        wrong += any(p.startswith(("val/", "ended", "weights")) for p in problems)
        out(
            f"| {number} | {kill.ranks} | {kill.how} | {kill.at_step} | {kill.resume_ranks} | "
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
    args = parser.parse_args()
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # started by nohup or `&`: the Ctrl-C kills need it
        signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kill-campaign-") as folder:
        failed = campaign([draw(rng) for _ in range(args.kills)], Path(folder))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""Compare runs: `python compare.py [run or sweep folders] [--sort val/acc]`; see `--help`.

Prints a table of the runs: the settings that differ between them, each run's status, steps, wall time, best
checkpoint score and final metrics, sorted by one metric, the best first; and writes a PNG of their learning
curves (training and validation loss and the sorting metric against the step). It reads what every run
writes whatever its logger: summary.json (harness/callbacks/run_summary.py) and csv/metrics.csv (the CSV
logger, which every logger config of configs/logger/ includes). A sweep (`-m`) prints the same table at its
end (harness/sweep_report.py).
"""

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from {{cookiecutter.package_name}}.harness import run_info

# Metrics where lower is better, when a metric is not the one the runs' checkpoints were chosen by.
LOWER_IS_BETTER = ("loss", "perplexity", "error")


def find_runs(folders: list[Path]) -> list[Path]:
    """Every run folder (one with summary.json) among `folders` and below them (a sweep's jobs)."""
    runs: list[Path] = []
    for folder in folders:
        below = sorted(path.parent for path in folder.rglob("summary.json"))
        found = [folder] if (folder / "summary.json").is_file() else below
        runs += [run for run in found if run not in runs]
    return runs


def read_run(folder: Path) -> dict[str, Any]:
    summary = json.loads((folder / "summary.json").read_text())
    settings = dict(o.split("=", 1) for o in run_info.settings(summary.get("overrides", [])) if "=" in o)
    return {"folder": folder, "summary": summary, "settings": {k: short(v) for k, v in settings.items()}}


def short(setting: str) -> str:
    """A decimal number, such as a search's `0.46861867874419877`, to 4 significant digits; anything else as typed."""
    try:
        return f"{float(setting):.4g}" if "." in setting else setting
    except ValueError:  # `[32, 32]`, `ddp`
        return setting


def seconds(wall: float | None) -> str:
    return "" if wall is None else f"{wall:.1f} s" if wall < 10 else f"{wall:.0f} s"  # a short run is not `0 s`


def lower_is_better(metric: str, runs: list[dict[str, Any]]) -> bool:
    for run in runs:
        if run["summary"].get("monitor") == metric:
            return run["summary"].get("mode") == "min"
    return any(word in metric for word in LOWER_IS_BETTER)


def value(run: dict[str, Any], metric: str) -> float:
    """The run's best score if `metric` is what its best checkpoint was chosen by, else its last value."""
    summary = run["summary"]
    if summary.get("monitor") == metric and "best_score" in summary:
        return summary["best_score"]
    return summary.get("metrics", {}).get(metric, math.nan)


def rank(runs: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Best first; runs without the metric last."""
    sign = 1 if lower_is_better(metric, runs) else -1
    return sorted(runs, key=lambda run: (math.isnan(value(run, metric)), sign * value(run, metric)))


def table(runs: list[dict[str, Any]], metric: str) -> Any:
    from rich.table import Table

    keys = sorted({key for run in runs for key in run["settings"]})
    differ = [k for k in keys if len({run["settings"].get(k) for run in runs}) > 1] if len(runs) > 1 else keys
    metrics = sorted({m for run in runs for m in run["summary"].get("metrics", {}) if m.startswith(("val/", "test/"))})
    grid = Table(title=f"{len(runs)} runs, best {metric} first", title_justify="left")
    grid.add_column("run", no_wrap=True)  # a folder name, whole: the other columns fold first
    for column in [*differ, "status", "steps", "wall", f"{metric} (best)", *metrics]:
        grid.add_column(column, overflow="fold")
    for run in runs:
        summary = run["summary"]
        cells = [run["folder"].name, *(run["settings"].get(k, "·") for k in differ)]
        cells += [summary.get("status", "?"), str(summary.get("global_step", "")), seconds(summary.get("wall_time_s"))]
        cells += [f"{value(run, m):.4f}" for m in [metric, *metrics]]
        grid.add_row(*cells)
    return grid


def curves(run: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """metric -> [(step, value)] from the run's csv/metrics.csv; empty where the run has none."""
    path = run["folder"] / "csv" / "metrics.csv"
    series: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return series
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            for name, text in row.items():
                if name not in ("step", "epoch") and text:
                    series.setdefault(name, []).append((int(float(row["step"])), float(text)))
    return series


def plot(runs: list[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """One panel per metric (train/loss, val/loss, `metric`), one line per run; None if no run has curves."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed (a cluster's login node has none)
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(["train/loss", "val/loss", metric]))
    data = [(run, curves(run)) for run in runs]
    if not any(series for _, series in data):
        return None
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        for run, series in data:
            if series.get(name):
                steps, values = zip(*series[name], strict=True)
                axis.plot(steps, values, label=run["summary"].get("name") or run["folder"].name)
        axis.set(title=name, xlabel="step")
    # The first panel with curves: a run shorter than trainer.log_every_n_steps has no train/loss.
    next((axis for axis in axes[0] if axis.lines), axes[0][0]).legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def report(folders: list[Path], metric: str | None = None, plot_path: Path | None = None) -> dict[str, Any] | None:
    """Print the table of the runs under `folders` and write the PNG; return the best run (None: no runs)."""
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=200)  # a log file: no folding at 80 columns
    runs = [read_run(folder) for folder in find_runs(folders)]
    if not runs:
        console.print(f"No runs (folders with summary.json) under {', '.join(map(str, folders))}.")
        return None
    metric = metric or runs[0]["summary"].get("monitor") or "val/loss"
    runs = rank(runs, metric)
    console.print(table(runs, metric))
    best = runs[0]
    best_line = f"Best {metric}: {value(best, metric):.4f}: {best['summary'].get('name')}, in {best['folder']}"
    console.print(best_line, soft_wrap=True)  # one line, however long: scripts and tests read it
    plot_path = plot_path or (folders[0] if len(folders) == 1 and folders[0].is_dir() else Path.cwd()) / "curves.png"
    if plot(runs, metric, plot_path):
        console.print(f"Learning curves: {plot_path}", soft_wrap=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].split(": ", 1)[0])
    parser.add_argument("folders", nargs="*", type=Path, help="run or sweep folders (default: every run in logs/train)")
    parser.add_argument("--sort", metavar="METRIC", help="e.g. val/acc (default: the checkpoints' metric)")
    parser.add_argument("--plot", type=Path, help="the PNG to write (default: curves.png in the one folder given)")
    args = parser.parse_args()
    folders = args.folders or [Path(os.environ.get("PROJECT_ROOT", ".")) / "logs" / "train"]  # as configs/paths/
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        parser.exit(2, f"ERROR: no such folder: {', '.join(missing)}; give run or sweep folders under logs/.\n")
    report(folders, args.sort, args.plot)


if __name__ == "__main__":
    main()

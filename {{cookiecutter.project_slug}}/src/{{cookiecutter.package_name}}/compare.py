"""Compare runs: `python compare.py [run or sweep folders] [--sort val/acc]`; see `--help`.

Prints a table of the runs: the settings that differ between them, each run's status, steps, wall time, best
checkpoint score and final metrics, sorted by one metric, the best first; and writes a PNG of their learning
curves (training and validation loss and the sorting metric against the step). It reads what every run
writes whatever its logger: summary.json (harness/callbacks/run_summary.py) and csv/metrics.csv (the CSV
logger, which every logger config of configs/logger/ includes). A sweep (`-m`) prints the same table at its
end (harness/sweep_report.py).

Runs that differ only in `seed` or `data.fold` (`-m seed=0,1,2`, `-m data.num_folds=5 data.fold=0,1,2,3,4`) are
repeats of one setting: the table then has a row per group of them, with each metric's mean, standard deviation
and 95% confidence interval (Student's t) over the group, and the curves are each group's mean with a band of one
standard deviation.
"""

import argparse
import csv
import importlib.util
import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from {{cookiecutter.package_name}}.harness import run_info

NO_CURVES = 'No learning curves: they need matplotlib, `pip install -e ".[plots]"`.'
# Metrics where lower is better, when a metric is not the one the runs' checkpoints were chosen by.
LOWER_IS_BETTER = ("loss", "perplexity", "error")
# Settings that repeat a run rather than change it: runs that differ only in these form a group.
REPEATS = ("seed", "data.fold")
# Student's t for a two-sided 95% interval, by degrees of freedom 1 to 30 (scipy.stats.t.ppf(0.975, df)).
T_95 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448,
    2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
    2.0452, 2.0423,
)  # fmt: skip


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


def groups(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The runs, those that differ only in REPEATS together, in the order of each group's first run."""
    found: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        setting = tuple(sorted((k, v) for k, v in run["settings"].items() if k not in REPEATS))
        found.setdefault(setting, []).append(run)
    return list(found.values())


def t_95(df: int) -> float:
    """Student's t quantile for a 95% interval; past the table, its expansion in 1/df (within 1e-4)."""
    if df <= len(T_95):
        return T_95[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def spread(values: list[float]) -> dict[str, float]:
    """n, mean, standard deviation (n - 1) and the 95% confidence interval of the mean; NaNs (a run without the
    metric) left out, sd and interval NaN for fewer than 2 values."""
    values = [v for v in values if not math.isnan(v)]
    n = len(values)
    mean = statistics.fmean(values) if values else math.nan
    sd = statistics.stdev(values) if n > 1 else math.nan
    half = t_95(n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def rank_groups(found: list[list[dict[str, Any]]], metric: str) -> list[list[dict[str, Any]]]:
    """Best mean first; groups without the metric last."""
    sign = 1 if lower_is_better(metric, [run for group in found for run in group]) else -1
    means = [(spread([value(run, metric) for run in group])["mean"], group) for group in found]
    return [group for mean, group in sorted(means, key=lambda entry: (math.isnan(entry[0]), sign * entry[0]))]


def shared(group: list[dict[str, Any]]) -> dict[str, str]:
    """The settings a group's runs share: all but REPEATS, in the order typed."""
    return {k: v for k, v in group[0]["settings"].items() if k not in REPEATS}


def group_name(group: list[dict[str, Any]], keys: list[str] | None = None) -> str:
    """The group's settings (or those of `keys`), as run names are built: `lr=0.001`; "defaults" for none."""
    return run_info.readable_name([f"{k}={v}" for k, v in shared(group).items() if keys is None or k in keys])


def differing(found: list[list[dict[str, Any]]]) -> list[str]:
    """The settings that tell the groups apart (none for one group: the line under the table names its settings)."""
    keys = sorted({key for group in found for key in shared(group)})
    return [k for k in keys if len({shared(group).get(k) for group in found}) > 1]


def mean_cell(values: list[float]) -> str:
    """`0.9123 ± 0.0101 [0.8871, 0.9375]`: mean ± sd [95% confidence interval]; a lone value as itself."""
    found = spread(values)
    if found["n"] < 2:
        return f"{found['mean']:.4f}"
    return f"{found['mean']:.4f} ± {found['sd']:.4f} [{found['low']:.4f}, {found['high']:.4f}]"


def group_table(found: list[list[dict[str, Any]]], metric: str) -> Any:
    """One row per group of repeats: what they share, how many and which, each metric's mean ± sd [95% CI]."""
    from rich.table import Table

    runs = [run for group in found for run in group]
    differ = differing(found)
    metrics = sorted({m for run in runs for m in run["summary"].get("metrics", {}) if m.startswith(("val/", "test/"))})
    groups_of = f"{len(found)} group{'s' if len(found) > 1 else ''} of {len(runs)} runs"
    title = f"{groups_of}, best mean {metric} first: mean ± sd [95% confidence interval]"
    grid = Table(title=title, title_justify="left")
    for column in ["runs", *differ, "n", "repeats", "status", f"{metric} (best)", *metrics]:
        grid.add_column(column, overflow="fold")
    for group in found:
        repeats = {k: sorted({run["settings"][k] for run in group if k in run["settings"]}) for k in REPEATS}
        statuses = [run["summary"].get("status", "?") for run in group]
        cells = [" ".join(run["folder"].name for run in group), *(shared(group).get(k, "·") for k in differ)]
        cells += [str(len(group)), " ".join(f"{k}={','.join(v)}" for k, v in repeats.items() if v)]
        cells += [", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))]
        cells += [mean_cell([value(run, m) for run in group]) for m in [metric, *metrics]]
        grid.add_row(*cells)
    return grid


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


def mean_curve(series: list[list[tuple[int, float]]]) -> tuple[list[int], list[float], list[float]]:
    """Steps, mean and standard deviation (as the table's) over the runs that logged each step (0 where one did)."""
    by_step: dict[int, list[float]] = {}
    for points in series:
        for step, point in points:
            by_step.setdefault(step, []).append(point)
    steps = sorted(by_step)
    sd = [statistics.stdev(by_step[s]) if len(by_step[s]) > 1 else 0.0 for s in steps]
    return steps, [statistics.fmean(by_step[s]) for s in steps], sd


def plot(found: list[list[dict[str, Any]]], metric: str, path: Path) -> Path | None:
    """One panel per metric (train/loss, val/loss, `metric`), one line per group of repeats (a run alone: its
    own line; several: their mean, with a band of one standard deviation); None if no run has curves."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed (a cluster's login node has none)
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(["train/loss", "val/loss", metric]))
    data = [(group, [curves(run) for run in group]) for group in found]
    if not any(any(series) for _, series in data):
        return None
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        for group, series in data:
            logged = [each[name] for each in series if each.get(name)]
            if not logged:
                continue
            steps, mean, sd = mean_curve(logged)
            if len(group) == 1:
                axis.plot(steps, mean, label=group[0]["summary"].get("name") or group[0]["folder"].name)
                continue
            label = f"{group_name(group, differing(found))} (mean ± sd of {len(group)})"
            line = axis.plot(steps, mean, label=label)[0]
            low, high = [m - d for m, d in zip(mean, sd, strict=True)], [m + d for m, d in zip(mean, sd, strict=True)]
            axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        axis.set(title=name, xlabel="step")
    # The first panel with curves: a run shorter than trainer.log_every_n_steps has no train/loss.
    next((axis for axis in axes[0] if axis.lines), axes[0][0]).legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def report(folders: list[Path], metric: str | None = None, plot_path: Path | None = None) -> dict[str, Any] | None:
    """Print the table of the runs under `folders` and write the PNG; return the best run, or the first of the best
    group of repeats (None: no runs)."""
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=200)  # a log file: no folding at 80 columns
    runs = [read_run(folder) for folder in find_runs(folders)]
    if not runs:
        console.print(f"No runs (folders with summary.json) under {', '.join(map(str, folders))}.")
        return None
    metric = metric or runs[0]["summary"].get("monitor") or "val/loss"
    found = rank_groups(groups(runs), metric)
    if all(len(group) == 1 for group in found):  # no repeats: a row per run
        console.print(table([group[0] for group in found], metric))
        best = found[0][0]
        best_line = f"Best {metric}: {value(best, metric):.4f}: {best['summary'].get('name')}, in {best['folder']}"
    else:
        console.print(group_table(found, metric))
        best = found[0][0]
        parents = {run["folder"].parent for run in found[0]}  # a sweep's jobs: its folder, then the jobs' names
        names = " ".join(run["folder"].name for run in found[0])
        folders_of = f"{parents.pop()} ({names})" if len(parents) == 1 else " ".join(str(r["folder"]) for r in found[0])
        stats = mean_cell([value(run, metric) for run in found[0]])
        best_line = f"Best mean {metric}: {stats} over {len(found[0])} runs: {group_name(found[0])}, in {folders_of}"
    console.print(best_line, soft_wrap=True)  # one line, however long: scripts and tests read it
    plot_path = plot_path or (folders[0] if len(folders) == 1 and folders[0].is_dir() else Path.cwd()) / "curves.png"
    if importlib.util.find_spec("matplotlib") is None:  # an extra: installed, it is imported at every start-up
        console.print(NO_CURVES, soft_wrap=True, markup=False)  # `[plots]` as typed, not Rich markup
    elif plot(found, metric, plot_path):
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

"""The generated project against plain PyTorch, side by side in one run: `python benchmarks/run.py [--quick]`.

Renders the default project (benchmarks/work/render/my-project), then for every repetition runs each case on each
side (plain_train.py, `python train.py`, bare Lightning), rotating which goes first, and reports medians and
spreads. Prints a Markdown table and writes benchmarks/results.json. Not part of the test command.
Rows (see benchmarks/README.md):
- throughput, samples/s after warm-up: "compute" (MLP 2048x2048, batch 128: tens of ms a step) and "tiny"
  (the default digits MLP, batch 64: per-step overhead), in one CPU process and with 2-rank DDP on the CPU;
- time to first training step from process start, and `--help` time: generated minus plain, in seconds;
- on one CUDA GPU, when there is one: compute throughput with bf16-mixed, and with torch.compile too.
Every throughput row also runs a third side, bare Lightning (the generated project with no callbacks, logger,
progress bar or model summary): the floor that Lightning itself sets, so a row tells the template's own cost
(generated / bare Lightning) apart from Lightning's (bare Lightning / plain).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import lightning
import torch
from harness import (
    BARE_LIGHTNING,
    BENCH_DIR,
    WORK,
    Case,
    Workload,
    generated_command,
    plain_command,
    render,
    run_timed,
    time_command,
)

QUICK = {
    "tiny": Workload("tiny", hidden=(128, 128), batch_size=64, epochs=15, warmup=20, threads=1),
    "compute": Workload("compute", hidden=(2048, 2048), batch_size=128, epochs=8, warmup=10),
}
FULL = {
    "tiny": Workload("tiny", hidden=(128, 128), batch_size=64, epochs=30, warmup=20, threads=1),
    "compute": Workload("compute", hidden=(2048, 2048), batch_size=128, epochs=16, warmup=10),
}
WORKLOADS = QUICK  # what ablate.py runs


def throughput_cases() -> list[tuple[str, str, Case, float]]:
    """(row name, workload, case, target ratio); GPU rows only where CUDA is present."""
    cases = [
        ("compute, 1 process, CPU", "compute", Case(), 0.97),
        ("tiny, 1 process, CPU", "tiny", Case(), 0.90),
        ("compute, 2-rank DDP, CPU", "compute", Case(ranks=2), 0.97),
        ("tiny, 2-rank DDP, CPU", "tiny", Case(ranks=2), 0.90),
    ]
    if torch.cuda.is_available():
        cases += [
            ("compute, 1 GPU, bf16-mixed", "compute", Case(device="cuda", precision="bf16-mixed"), 0.97),
            (
                "compute, 1 GPU, bf16-mixed + torch.compile",
                "compute",
                Case(device="cuda", precision="bf16-mixed", compile=True),
                0.97,
            ),
        ]
    return cases


def spread(values: list[float]) -> list[float]:
    return [round(min(values), 4), round(max(values), 4)]


def row(
    name: str,
    unit: str,
    generated: list[float],
    plain: list[float],
    target: float | None,
    diff: bool,
    lightning: list[float] | None = None,
) -> dict:
    """One result: medians of both sides; ratio generated/plain, or generated - plain (seconds) when `diff`.

    With `lightning` (bare Lightning's throughput), also its median and the generated / bare Lightning ratio.
    """
    gen, base = statistics.median(generated), statistics.median(plain)
    ratio = gen - base if diff else gen / base
    met = None if target is None else (ratio <= target if diff else ratio >= target)
    result = {
        "name": name,
        "unit": unit,
        "generated": round(gen, 4),
        "plain": round(base, 4),
        "ratio": round(ratio, 4),
        "target": target,
        "met": met,
        "spread": {"generated": spread(generated), "plain": spread(plain)},
        "repetitions": len(generated),
    }
    if lightning:
        bare = statistics.median(lightning)
        result["lightning"] = round(bare, 4)
        result["ratio_to_lightning"] = round(gen / bare, 4)
        result["spread"]["lightning"] = spread(lightning)
    return result


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "arch": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (no CUDA)",
    }


def table(results: list[dict]) -> str:
    lines = [
        "| benchmark | unit | generated | plain | ratio (gen/plain; start-up: gen-plain) | target | met "
        "| bare Lightning | gen / bare Lightning |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.get("skipped"):
            lines.append(f"| {r['name']} | {r['unit']} | skipped: {r['skipped']} | | | {r['target']} | | | |")
            continue
        fmt = ".0f" if r["unit"] == "samples/s" else ".2f"
        gen, plain, bare = (
            f"{r[k]:{fmt}} [{r['spread'][k][0]:{fmt}}-{r['spread'][k][1]:{fmt}}]" if k in r else ""
            for k in ("generated", "plain", "lightning")
        )
        to_bare = f"{r['ratio_to_lightning']:.3f}" if "ratio_to_lightning" in r else ""
        target = "" if r["target"] is None else ("<= " if r["unit"] == "s" else ">= ") + f"{r['target']}"
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        cells = [r["name"], r["unit"], gen, plain, f"{r['ratio']:.3f}", target, met, bare, to_bare]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions (a few minutes)")
    parser.add_argument("--reps", type=int, help="repetitions (default: 3, or 5 without --quick)")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json", help="where to write the results")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    workloads = QUICK if args.quick else FULL
    started = time.time()
    project = render()
    shutil.rmtree(WORK / "runs", ignore_errors=True)  # one folder per run of this invocation
    cases = throughput_cases()
    samples: dict[str, dict[str, list[float]]] = {
        name: {"generated": [], "plain": [], "lightning": []} for name, *_ in cases
    }
    first_step: dict[str, list[float]] = {"generated": [], "plain": []}
    help_s: dict[str, list[float]] = {"generated": [], "plain": []}

    for rep in range(reps):
        sides = ["generated", "plain", "lightning"]
        sides = sides[rep % 3 :] + sides[: rep % 3]  # rotate which goes first, to cancel drift
        for name, workload, case, _ in cases:
            work = workloads[workload]
            for side in sides:
                run_dir = WORK / "runs" / f"{name.replace(' ', '').replace(',', '_')}-{side}-{rep}"
                if side == "plain":
                    result = run_timed(plain_command(work, case, run_dir), run_dir, run_dir, work, case.ranks)
                else:
                    side_case = replace(case, overrides=BARE_LIGHTNING) if side == "lightning" else case
                    command = generated_command(project, work, side_case, run_dir)
                    result = run_timed(command, project, run_dir, work, case.ranks)
                samples[name][side].append(result["samples_per_s"])
                if workload == "tiny" and case.ranks == 1 and case.device == "cpu" and side in first_step:
                    first_step[side].append(result["first_step_s"])
                print(
                    f"[{time.time() - started:5.0f} s] rep {rep + 1}/{reps} {name} {side}: "
                    f"{result['samples_per_s']:.0f} samples/s, {result['steps']} steps",
                    flush=True,
                )
        help_s["generated"].append(time_command([sys.executable, "train.py", "--help"], project))
        help_s["plain"].append(time_command([sys.executable, str(BENCH_DIR / "plain_train.py"), "--help"], project))

    results = [row(f"throughput {name}", "samples/s", **samples[name], target=t, diff=False) for name, _, _, t in cases]
    results.append(row("time to first training step", "s", **first_step, target=2.0, diff=True))
    results.append(row("`train.py --help` (plain: plain_train.py --help)", "s", **help_s, target=None, diff=True))
    if not torch.cuda.is_available():
        reason = "no CUDA device on this machine"
        print(f"Skipping the GPU rows (bf16-mixed, bf16-mixed + torch.compile): {reason}.")
        for name in ("compute, 1 GPU, bf16-mixed", "compute, 1 GPU, bf16-mixed + torch.compile"):
            results.append(
                {
                    "name": f"throughput {name}",
                    "unit": "samples/s",
                    "generated": None,
                    "plain": None,
                    "ratio": None,
                    "target": 0.97,
                    "met": None,
                    "skipped": reason,
                }
            )

    info = {**machine(), "quick": args.quick, "repetitions": reps, "seconds": round(time.time() - started)}
    args.output.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    print(
        f"\n{info['cores']}-core {info['arch']} CPU, {info['device']}, torch {info['torch']}, "
        f"lightning {info['lightning']}; {reps} repetitions, medians [min-max]\n"
    )
    print(table(results))
    print(f"\nWrote {args.output} in {info['seconds']} s.")


if __name__ == "__main__":
    main()

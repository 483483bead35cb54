"""The generated project against plain PyTorch, side by side in one run: `python benchmarks/run.py [--quick]`.

Renders the default project (benchmarks/work/render/my-project), then for every repetition runs each case on each
side (plain_train.py, `python train.py`, bare Lightning), rotating which goes first, and reports medians and
spreads. Prints a Markdown table and writes benchmarks/results.json. Not part of the test command.
Rows (see benchmarks/README.md):
- throughput, samples/s after warm-up: "compute" (MLP 2048x2048, batch 128: tens of ms a step) and "tiny"
  (the default digits MLP, batch 64: per-step overhead), in one CPU process and with 2-rank DDP on the CPU;
- time to first training step from process start, and `--help` time: generated minus plain, in seconds; and
  the same for a 1-process `ckpt_path=last` of a 2-rank run (data position moved) minus one of a 1-rank run;
- on one CUDA GPU, when there is one: compute throughput with bf16-mixed, and with torch.compile too;
- GPT, tokens/s after warm-up: `python train.py experiment=gpt` against plain_gpt.py (the tutorial's minGPT-ddp
  loop training the same GPT class on the same bytes), in one CPU process and with 2-rank DDP, with bf16-mixed
  and with torch.compile on the CPU (--quick leaves out torch.compile), and on one GPU when there is one;
  sharded on 2 CPU ranks: `trainer=model_parallel` with dp=2 (FSDP2) and with tp=2 (tensor parallel) against
  plain_gpt.py's FSDP2 / tensor-parallel loop under torchrun. A second table gives each GPT row's memory per
  rank (parameters + optimizer state, and the peak) beside its tokens/s relative to 2-rank DDP.
Every throughput row also runs a third side, bare Lightning (the generated project with no callbacks, logger,
progress bar or model summary): the floor that Lightning itself sets, so a row tells the template's own cost
(generated / bare Lightning) apart from Lightning's (bare Lightning / plain).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import lightning
import torch
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
    run_timed,
    time_command,
)

QUICK = {
    "tiny": Workload("tiny", hidden=(128, 128), batch_size=64, epochs=15, warmup=20, threads=1),
    "compute": Workload("compute", hidden=(2048, 2048), batch_size=128, epochs=8, warmup=10),
    "gpt": GPTWorkload("gpt", 4, 4, 128, block_size=64, batch_size=16, epochs=2, steps_per_epoch=30, warmup=5),
}
FULL = {
    "tiny": Workload("tiny", hidden=(128, 128), batch_size=64, epochs=30, warmup=20, threads=1),
    "compute": Workload("compute", hidden=(2048, 2048), batch_size=128, epochs=16, warmup=10),
    "gpt": GPTWorkload("gpt", 4, 4, 128, block_size=64, batch_size=16, epochs=3, steps_per_epoch=80, warmup=5),
}
WORKLOADS = QUICK  # what ablate.py runs


def throughput_cases(quick: bool) -> tuple[list[tuple[str, str, Case, float]], list[tuple[str, float, str]]]:
    """(row name, workload, case, target ratio) of the rows to run, and (row name, target, reason) of those
    skipped: the GPU rows where there is no CUDA, the CPU torch.compile row in --quick."""
    cases = [
        ("compute, 1 process, CPU", "compute", Case(), 0.97),
        ("tiny, 1 process, CPU", "tiny", Case(), 0.90),
        ("compute, 2-rank DDP, CPU", "compute", Case(ranks=2), 0.97),
        ("tiny, 2-rank DDP, CPU", "tiny", Case(ranks=2), 0.90),
        ("GPT, 1 process, CPU", "gpt", Case(), 0.97),
        ("GPT, 2-rank DDP, CPU", "gpt", Case(ranks=2), 0.97),
        ("GPT, 1 process, CPU, bf16-mixed", "gpt", Case(precision="bf16-mixed"), 0.97),
        ("GPT, 2 ranks, CPU, model_parallel dp=2 (FSDP2)", "gpt", Case(ranks=2, mesh=(2, 1)), 0.97),
        ("GPT, 2 ranks, CPU, model_parallel tp=2", "gpt", Case(ranks=2, mesh=(1, 2)), 0.97),
    ]
    skipped = []
    compile_row = ("GPT, 1 process, CPU, torch.compile", "gpt", Case(compile=True), 0.97)
    if quick:
        skipped.append((compile_row[0], 0.97, "not in --quick: compiling takes minutes on a small CPU"))
    else:
        cases.append(compile_row)
    bf16, bf16_compile = Case(device="cuda", precision="bf16-mixed"), Case("cuda", "bf16-mixed", compile=True)
    gpu = [
        ("compute, 1 GPU, bf16-mixed", "compute", bf16, 0.97),
        ("compute, 1 GPU, bf16-mixed + torch.compile", "compute", bf16_compile, 0.97),
        ("GPT, 1 GPU, bf16-mixed", "gpt", bf16, 0.97),
        ("GPT, 1 GPU, bf16-mixed + torch.compile", "gpt", bf16_compile, 0.97),
    ]
    if torch.cuda.is_available():
        cases += gpu
    else:
        skipped += [(name, target, "no CUDA device on this machine") for name, _, _, target in gpu]
    return cases, skipped


def unit(workload: str) -> str:
    return "tokens/s" if workload == "gpt" else "samples/s"


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


def median_memory(runs: list[dict]) -> dict:
    return {key: round(statistics.median(run[key] for run in runs), 1) for key in ("state_mb", "peak_mb")}


def memory_table(results: list[dict]) -> str:
    """The GPT rows' memory per rank beside their throughput relative to 2-rank DDP: what sharding buys."""
    ddp = next((r["generated"] for r in results if r["name"] == "throughput GPT, 2-rank DDP, CPU"), None)
    lines = [
        "| benchmark | params + optimizer state / rank | peak resident (CPU) or allocated (GPU) / rank "
        "| tokens/s | tokens/s vs 2-rank DDP |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if "memory_mb" not in r:
            continue
        gen, plain = r["memory_mb"]["generated"], r["memory_mb"]["plain"]
        versus = f"{r['generated'] / ddp:.3f}" if ddp else ""
        lines.append(
            f"| {r['name'].removeprefix('throughput ')} | {gen['state_mb']:.2f} / {plain['state_mb']:.2f} "
            f"| {gen['peak_mb']:.0f} / {plain['peak_mb']:.0f} | {r['generated']:.0f} | {versus} |"
        )
    return "\n".join(lines)


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
        fmt = ".2f" if r["unit"] == "s" else ".0f"
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


def resume_sources(project: Path, work: Workload) -> dict[int, Path]:
    """Run folders stopped mid-epoch (step 15, `+trainer.max_steps`), trained on 1 and on 2 ranks: each rep's
    resume starts from a copy, so every continuation starts from the same checkpoint."""
    sources = {}
    for ranks in (1, 2):
        run_dir = WORK / "runs" / f"resume-source-{ranks}-ranks"
        command = [*generated_command(project, work, Case(ranks=ranks), run_dir), "+trainer.max_steps=15"]
        env = {**bench_env(project), "BENCH_OUT": str(run_dir / "bench.json")}
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
        sources[ranks] = run_dir
    return sources


def time_resume(project: Path, work: Workload, source: Path, rep: int) -> float:
    """Seconds from start to the first training step of one process continuing `source` (`ckpt_path=last`)."""
    run_dir = WORK / "runs" / f"{source.name.replace('source', 'continued')}-{rep}"
    shutil.copytree(source, run_dir)
    command = [*generated_command(project, work, Case(), run_dir), "+trainer.max_steps=30", "ckpt_path=last"]
    return run_timed(command, project, run_dir, work)["first_step_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions (a few minutes)")
    parser.add_argument("--reps", type=int, help="repetitions (default: 3, or 5 without --quick)")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json", help="where to write the results")
    parser.add_argument(
        "--only",
        action="append",
        help="only the throughput rows whose name holds this text, e.g. --only GPT (repeat it for more)",
    )
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    workloads = QUICK if args.quick else FULL
    started = time.time()
    project = render()
    shutil.rmtree(WORK / "runs", ignore_errors=True)  # one folder per run of this invocation
    cases, skipped = throughput_cases(args.quick)
    if args.only:
        cases = [case for case in cases if any(text in case[0] for text in args.only)]
        skipped = [skip for skip in skipped if any(text in skip[0] for text in args.only)]
    samples: dict[str, dict[str, list[float]]] = {
        name: {"generated": [], "plain": [], "lightning": []} for name, *_ in cases
    }
    memory: dict[str, dict[str, list[dict]]] = {name: {"generated": [], "plain": []} for name, *_ in cases}
    first_step: dict[str, list[float]] = {"generated": [], "plain": []}
    help_s: dict[str, list[float]] = {"generated": [], "plain": []}
    # A continuation on another number of ranks (2 -> 1: the data position moved, the batch accumulated) against
    # an ordinary one (1 -> 1), both one process from the same kind of checkpoint: what moving costs.
    resume_s: dict[str, list[float]] = {"generated": [], "plain": []}
    resume_work = replace(workloads["tiny"], warmup=2)
    sources = {} if args.only else resume_sources(project, resume_work)

    for rep in range(reps):
        sides = ["generated", "plain", "lightning"]
        sides = sides[rep % 3 :] + sides[: rep % 3]  # rotate which goes first, to cancel drift
        for name, workload, case, _ in cases:
            work = workloads[workload]
            for side in sides:
                run_dir = WORK / "runs" / f"{re.sub(r'[^A-Za-z0-9-]+', '_', name)}-{side}-{rep}"  # Hydra-safe
                if side == "plain":
                    command = plain_command(work, case, run_dir, project)
                    result = run_timed(command, run_dir, run_dir, work, case.ranks)
                else:
                    side_case = replace(case, overrides=bare_lightning(work)) if side == "lightning" else case
                    command = generated_command(project, work, side_case, run_dir)
                    result = run_timed(command, project, run_dir, work, case.ranks)
                tokens = work.block_size if isinstance(work, GPTWorkload) else 1  # GPT rows: tokens/s
                samples[name][side].append(result["samples_per_s"] * tokens)
                if side in memory[name] and "state_mb" in result:
                    memory[name][side].append({key: result[key] for key in ("state_mb", "peak_mb")})
                if workload == "tiny" and case.ranks == 1 and case.device == "cpu" and side in first_step:
                    first_step[side].append(result["first_step_s"])
                print(
                    f"[{time.time() - started:5.0f} s] rep {rep + 1}/{reps} {name} {side}: "
                    f"{samples[name][side][-1]:.0f} {unit(workload)}, {result['steps']} steps",
                    flush=True,
                )
        if not args.only:
            help_s["generated"].append(time_command([sys.executable, "train.py", "--help"], project))
            help_s["plain"].append(time_command([sys.executable, str(BENCH_DIR / "plain_train.py"), "--help"], project))
            resume_s["generated"].append(time_resume(project, resume_work, sources[2], rep))
            resume_s["plain"].append(time_resume(project, resume_work, sources[1], rep))

    results = [
        row(f"throughput {name}", unit(workload), **samples[name], target=t, diff=False)
        for name, workload, _, t in cases
    ]
    for result, (name, *_) in zip(results, cases, strict=True):
        if memory[name]["generated"] and memory[name]["plain"]:
            result["memory_mb"] = {side: median_memory(runs) for side, runs in memory[name].items()}
    if first_step["generated"]:  # taken from the tiny 1-process row
        results.append(row("time to first training step", "s", **first_step, target=1.0, diff=True))
    if help_s["generated"]:
        results.append(row("`train.py --help` (plain: plain_train.py --help)", "s", **help_s, target=None, diff=True))
    if resume_s["generated"]:
        name = "time to first step, `ckpt_path=last` on 1 rank of a 2-rank run (plain: of a 1-rank run)"
        results.append(row(name, "s", **resume_s, target=0.5, diff=True))
    for name, target, reason in skipped:
        print(f"Skipping throughput {name}: {reason}.")
        results.append(
            {
                "name": f"throughput {name}",
                "unit": unit("gpt" if name.startswith("GPT") else "compute"),
                "generated": None,
                "plain": None,
                "ratio": None,
                "target": target,
                "met": None,
                "skipped": reason,
            }
        )

    info = {
        **machine(),
        "quick": args.quick,
        "only": args.only,
        "repetitions": reps,
        "seconds": round(time.time() - started),
    }
    args.output.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    print(
        f"\n{info['cores']}-core {info['arch']} CPU, {info['device']}, torch {info['torch']}, "
        f"lightning {info['lightning']}; {reps} repetitions, medians [min-max]\n"
    )
    print(table(results))
    if any("memory_mb" in r for r in results):
        print("\nMemory per rank (rank zero; MB, generated / plain):\n")
        print(memory_table(results))
    print(f"\nWrote {args.output} in {info['seconds']} s.")


if __name__ == "__main__":
    main()

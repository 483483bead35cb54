"""Which template defaults cost throughput: the generated project run with candidate Hydra overrides.

`python benchmarks/ablate.py [--reps N] [--workload tiny|compute] [--ranks 1|2] [--only NAME ...]` runs the
plain script and the generated project once per override set per repetition, interleaved, and prints the
throughput ratio (generated / plain, medians) of each. The overrides are what the engineer would change in
the template's configs; the template itself is not touched.
"""

import argparse
import statistics

from harness import BARE_LIGHTNING, WORK, Case, bare_lightning, generated_command, plain_command, render, run_timed
from run import WORKLOADS

# name -> Hydra overrides for the generated side (none of them changes the work each step does)
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "progress bar refresh_rate=1": ["callbacks.progress_bar.refresh_rate=1"],
    "TQDM progress bar": ["callbacks.progress_bar._target_=lightning.pytorch.callbacks.TQDMProgressBar"],
    "no progress bar": ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false"],
    "log_every_n_steps=50": ["trainer.log_every_n_steps=50"],
    "no step_seeding": ["~callbacks.step_seeding"],
    "stop_on_nonfinite check_every_n_steps=1": ["callbacks.stop_on_nonfinite_loss.check_every_n_steps=1"],
    "no stop_on_nonfinite": ["~callbacks.stop_on_nonfinite_loss"],
    "no model_summary": ["~callbacks.model_summary"],
    "no throughput": ["~callbacks.throughput"],
    "logger=csv": ["logger=csv"],
    "no logger": ["~logger", "~callbacks.lr_monitor"],  # the learning-rate monitor refuses to run without one
    "bare Lightning: no callbacks, no logger": BARE_LIGHTNING,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workload", default="tiny", choices=sorted(WORKLOADS))
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()
    work = WORKLOADS[args.workload]
    variants = {name: o for name, o in VARIANTS.items() if not args.only or name in args.only or name == "default"}
    if "bare Lightning: no callbacks, no logger" in variants:
        variants["bare Lightning: no callbacks, no logger"] = bare_lightning(work)
    project = render()
    runs: dict[str, list[dict]] = {name: [] for name in ["plain", *variants]}
    for rep in range(args.reps):
        for index, name in enumerate(["plain", *variants, "plain"]):  # plain before and after the variants
            run_dir = WORK / "ablate" / f"{index}-{rep}"
            case = Case(ranks=args.ranks, overrides=variants.get(name, []))
            if name == "plain":
                result = run_timed(plain_command(work, case, run_dir, project), run_dir, run_dir, work, args.ranks)
            else:
                result = run_timed(generated_command(project, work, case, run_dir), project, run_dir, work, args.ranks)
            runs[name].append(result)
            print(f"rep {rep + 1} {name}: {result['samples_per_s']:.0f} samples/s", flush=True)

    def median(name: str, key: str) -> float:
        return statistics.median(result[key] for result in runs[name] if result[key] is not None)

    base = median("plain", "samples_per_s")
    print(f"\n{work.name} workload, {args.ranks} rank(s), {args.reps} reps; plain {base:.0f} samples/s\n")
    print("| generated with | samples/s | ratio to plain | first step - plain (s) |\n| --- | --- | --- | --- |")
    for name in variants:
        speed, first = median(name, "samples_per_s"), median(name, "first_step_s") - median("plain", "first_step_s")
        print(f"| {name} | {speed:.0f} | {speed / base:.2f} | {first:+.2f} |")


if __name__ == "__main__":
    main()

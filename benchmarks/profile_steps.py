"""Where the generated project's training steps go: py-spy over one run, summed by the loop's main parts.

`python benchmarks/profile_steps.py [--workload tiny|compute] [Hydra overrides...]` renders the project, runs
it under `py-spy record` (pip install py-spy) and prints, for the samples inside the training epoch loop, the
share of each part below (inclusive time; parts nest, so shares do not add up to 100 %).
"""

import argparse
import collections
import re
import subprocess

from harness import WORK, Case, bench_env, generated_command, render
from run import WORKLOADS

# part -> pattern of a frame in the stack (py-spy raw format: "function (file:line)")
PARTS = {
    "forward + loss (module code)": r"(Classifier|LanguageModel)\._loss",
    "train_acc metric (torchmetrics forward)": r"MulticlassAccuracy|Metric\.forward",
    "self.log (Lightning result collection)": r"LightningModule\.log ",
    "backward": r"_engine_run_backward",
    "optimizer step (Adam arithmetic)": r"_single_tensor_adam|_multi_tensor_adam",
    "zero_grad": r"zero_grad",
    "fetching batches (DataLoader)": r"_PrefetchDataFetcher\.__next__",
    "callbacks, all": r"_call_callback_hooks",
    "  StepSeeding": r"StepSeeding\.on_train_batch_start",
    "  RichProgressBar": r"RichProgressBar\.",
    "  StopOnNonFiniteLoss": r"StopOnNonFiniteLoss\.",
    "  ModelCheckpoint": r"ModelCheckpoint\.",
    "logger connector (metrics to the logger)": r"_LoggerConnector\.",
    "validation (once per epoch)": r"_EvaluationLoop\.run",
}
SCOPE = "_TrainingEpochLoop.run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="tiny", choices=sorted(WORKLOADS))
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the generated project")
    args = parser.parse_args()
    project = render()
    run_dir = WORK / "profile"
    run_dir.mkdir(parents=True, exist_ok=True)
    raw = run_dir / "pyspy.raw"
    command = generated_command(project, WORKLOADS[args.workload], Case(overrides=args.overrides), run_dir)
    spy = ["py-spy", "record", "--rate", str(args.rate), "--format", "raw", "--output", str(raw), "--"]
    with open(run_dir / "output.log", "w") as log:
        subprocess.run(spy + command, cwd=project, env=bench_env(project), check=True, stdout=log, stderr=log)

    totals: collections.Counter[str] = collections.Counter()
    in_scope = 0
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        if SCOPE not in stack:
            continue
        in_scope += int(count)
        for part, pattern in PARTS.items():
            if re.search(pattern, stack):
                totals[part] += int(count)
    print(f"{in_scope} samples in the training loop ({args.workload} workload); inclusive shares:\n")
    for part in PARTS:
        print(f"{100 * totals[part] / max(in_scope, 1):5.1f} %  {part}")


if __name__ == "__main__":
    main()

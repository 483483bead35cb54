"""Prediction and export rows: predict.py against a plain `torch.no_grad()` loop over the same checkpoint, and the
exported model's latency beside eager (issue 31's benchmarks).

    python benchmarks/inference.py [--reps 3] [--inputs 100000]

Renders the default project (harness.render), trains one short digits run, writes `--inputs` images (the
project's digits repeated) to an .npz file, then in every repetition, rotating which side goes first:
- predict throughput, 1 process and 2 ranks: `python predict.py ckpt_path=<the run> data.predict_path=<file>`
  (PredictTimer: from the first batch to predictions.csv written) against plain_predict.py (the same batches,
  CSV and order; under `torchrun --nproc-per-node=2`, rank zero gathers). Target >= 0.9;
- export: seconds of `python export.py ckpt_path=<the run>` (the whole process: imports, export to .pt2 and
  ONNX, the check on test inputs), and the latency of one batch of 64 through the eager network, the
  torch.export program (`torch.export.load(...).module()`) and, where onnxruntime is installed, the ONNX model:
  median of 300 calls each, one thread, in this process.
Prints a Markdown table; writes benchmarks/results_inference.json.
"""

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from harness import BENCH_DIR, WORK, bench_env, render
from plain_predict import load_mlp

RUNS = WORK / "inference"


def predict_once(project: Path, command: list[str], out: Path, ranks: int) -> float:
    """Samples/s of one prediction process (tree); its JSON from $BENCH_OUT."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**bench_env(project), "BENCH_OUT": str(out / "bench.json"), "OMP_NUM_THREADS": "1"}
    with open(out / "output.log", "w") as log:
        done = subprocess.run(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(out / 'output.log').read_text()[-3000:]}")
    return json.loads((out / "bench.json").read_text())["samples_per_s"]


def latency_ms(call, batch: torch.Tensor, calls: int = 300) -> float:
    """Median milliseconds of `call(batch)` after 20 warm-up calls."""
    times = []
    for i in range(calls + 20):
        start = time.perf_counter()
        call(batch)
        if i >= 20:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--inputs", type=int, default=100_000, help="images to predict for")
    args = parser.parse_args()
    project = render()
    shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True)
    env = bench_env(project)
    train = [sys.executable, "train.py", "trainer=cpu", "trainer.max_epochs=1", "test=false", "logger=csv"]
    subprocess.run([*train, f"hydra.run.dir={RUNS / 'trained'}"], cwd=project, env=env, check=True, capture_output=True)
    checkpoint = RUNS / "trained" / "checkpoints" / "last.ckpt"
    with np.load(next(project.glob("src/*/data/digits.npz"))) as digits:
        images = digits["images"]
    inputs = RUNS / "inputs.npz"
    np.savez(inputs, x=np.resize(images, (args.inputs, images.shape[1])))

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    timer = "+callbacks.bench._target_=bench_timing.PredictTimer"
    rows = {"predict, 1 process": {"generated": [], "plain": []}, "predict, 2 ranks": {"generated": [], "plain": []}}
    export_s = []
    for rep in range(args.reps):
        sides = ["generated", "plain"] if rep % 2 == 0 else ["plain", "generated"]
        for name, ranks in [("predict, 1 process", 1), ("predict, 2 ranks", 2)]:
            for side in sides:
                out = RUNS / f"{name.replace(', ', '-').replace(' ', '_')}-{side}-{rep}"
                if side == "generated":
                    command = [sys.executable, "predict.py", f"ckpt_path={checkpoint}", f"data.predict_path={inputs}"]
                    command += [timer, f"hydra.run.dir={out}", *(ddp if ranks > 1 else ["trainer=cpu"])]
                else:
                    script = [*(torchrun if ranks > 1 else [sys.executable]), str(BENCH_DIR / "plain_predict.py")]
                    command = [*script, f"--checkpoint={checkpoint}", f"--inputs={inputs}", f"--out={out}/p.csv"]
                rows[name][side].append(predict_once(project, command, out, ranks))
                print(f"rep {rep + 1}/{args.reps} {name} {side}: {rows[name][side][-1]:.0f} samples/s", flush=True)
        start = time.perf_counter()
        exported = RUNS / f"export-{rep}"
        command = [sys.executable, "export.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={exported}"]
        subprocess.run(command, cwd=project, env=env, check=True, capture_output=True)
        export_s.append(time.perf_counter() - start)

    torch.set_num_threads(1)
    eager = load_mlp(str(checkpoint))
    batch = torch.rand(64, 64)
    latency = {}
    with torch.no_grad():
        latency["eager"] = latency_ms(eager, batch)
        program = torch.export.load(exported / "model.pt2").module()
        latency["torch.export (.pt2)"] = latency_ms(program, batch)
    if importlib.util.find_spec("onnxruntime") is not None and (exported / "model.onnx").is_file():
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(exported / "model.onnx", options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        latency["ONNX (onnxruntime)"] = latency_ms(lambda b: session.run(None, {name: b.numpy()}), batch)

    results = {"machine": {"cores": os.cpu_count(), "torch": torch.__version__}, "inputs": args.inputs, "rows": []}
    print(f"\n{args.inputs} inputs, batch 64, {args.reps} repetitions, medians [min-max]\n")
    print("| row | generated | plain | ratio | target |\n| --- | --- | --- | --- | --- |")
    for name, sides in rows.items():
        generated, plain = statistics.median(sides["generated"]), statistics.median(sides["plain"])
        results["rows"].append({"name": name, "unit": "samples/s", **sides, "ratio": generated / plain, "target": 0.9})
        cells = [f"{statistics.median(v):.0f} [{min(v):.0f}-{max(v):.0f}]" for v in sides.values()]
        print(f"| {name} (samples/s) | {cells[0]} | {cells[1]} | {generated / plain:.3f} | >= 0.9 |")
    spread = f"{statistics.median(export_s):.2f} [{min(export_s):.2f}-{max(export_s):.2f}]"
    print(f"| `export.py`, whole process (s) | {spread} | | | |")
    for name, ms in latency.items():
        print(f"| latency of a batch of 64, {name} (ms) | {ms:.3f} | | {ms / latency['eager']:.2f} of eager | |")
    results["export_s"], results["latency_ms"] = export_s, latency
    (BENCH_DIR / "results_inference.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

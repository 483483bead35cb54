"""The plain-PyTorch side of the prediction rows (inference.py): predict.py's work, written by hand.

A `torch.no_grad()` loop over a DataLoader of the inputs (the project's digits file's layout: 64 pixel values
0..16 a row, scaled to 0..1), the checkpoint's MLP in eval mode, softmax and argmax, one CSV row an input with
the class and the ten probabilities, in input order. Under `torchrun --nproc-per-node=2` each rank predicts a
contiguous share and rank zero gathers the rows and writes the file. Timed from the first batch to the file
written, as PredictTimer times predict.py; rank zero writes {inputs, seconds, samples_per_s} to $BENCH_OUT.
"""

import argparse
import csv
import json
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from plain_train import mlp
from torch.utils.data import DataLoader, TensorDataset


def load_mlp(checkpoint: str) -> torch.nn.Module:
    """The default digits MLP of a generated project's checkpoint, in eval mode, without the project."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    net = mlp(64, [128, 128], 10, dropout=0.1)
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .ckpt of the generated project's digits MLP")
    parser.add_argument("--inputs", required=True, help="a .npz file with an array x of 64 numbers a row")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", required=True, help="the CSV file to write")
    args = parser.parse_args()
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)

    net = load_mlp(args.checkpoint)
    with np.load(args.inputs) as arrays:
        x = torch.tensor(arrays["x"] / 16.0, dtype=torch.float32)
    share = torch.arange(len(x)).tensor_split(world_size)[rank]  # contiguous: rank zero's rows come first
    loader = DataLoader(TensorDataset(x[share]), batch_size=args.batch_size)

    started = time.perf_counter()
    rows = []
    with torch.no_grad():
        for (batch,) in loader:
            probabilities = net(batch).softmax(dim=-1)
            classes = probabilities.argmax(dim=-1).tolist()
            rows += [[c, *p] for c, p in zip(classes, probabilities.tolist(), strict=True)]
    if distributed:
        shares = [None] * world_size
        dist.all_gather_object(shares, rows)
        rows = [row for share_rows in shares for row in share_rows]
    if rank == 0:
        with open(args.out, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["class", *(f"probability_{c}" for c in range(10))])
            writer.writerows(rows)
        seconds = time.perf_counter() - started
        if "BENCH_OUT" in os.environ:
            result = {"inputs": len(x), "seconds": seconds, "samples_per_s": len(x) / seconds}
            with open(os.environ["BENCH_OUT"], "w") as file:
                json.dump(result, file)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""The plain-PyTorch side of the benchmark: the generated project's default run, written by hand.

Written the way PyTorch's DDP tutorials write it: a loop, no framework. `python plain_train.py` trains in one
process; `torchrun --nproc-per-node=2 plain_train.py` trains with DistributedSampler + DistributedDataParallel.

The same work as `python train.py test=false` in the generated project:
- data: the project's digits (src/<package>/data/digits.npz) in memory, split into train/val/test with the same
  seed (1234) and fractions; a DataLoader over a TensorDataset, `--batch-size` per process;
- network: the template's MLP (Linear, ReLU, Dropout per hidden layer), cross-entropy, AdamW(lr 3e-3,
  weight decay 1e-4), CosineAnnealingLR(T_max=epochs) stepped every epoch, seed 42;
- every step: the training step and the epoch's training accuracy (summed as tensors, no sync); the loss is
  read (`.item()`) and printed every 10 steps (the generated project logs it every 10 steps);
- every epoch: validation (loss and accuracy, all-reduced across ranks) and a checkpoint written by rank 0.
`--steps-per-epoch N` stops each epoch after N steps (the generated side's `+trainer.limit_train_batches=N`).
What it leaves out, being plain: a progress bar, a model summary, callbacks, config composition, a logger.
Timing: StepClock (step_clock.py) at the start of every step, exactly where the generated side's
StepTimer callback calls it.
Ending: gloo's worker thread drops the tensors of the last all_reduce a moment after the caller's wait returns,
and a tensor Python still sees needs the GIL for that. Were it still running when the interpreter tears down,
it would abort the process ("terminate called without an active exception", torchrun: exit -6).
destroy_process_group joins those threads only if nothing else holds the group; hence DDP lives inside train(),
and torch.distributed.nn is imported before the group exists.
"""

import argparse
import os

import numpy as np
import torch
import torch.distributed as dist
from step_clock import StepClock
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def mlp(in_features: int, hidden: list[int], num_classes: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
        in_features = width
    return nn.Sequential(*layers, nn.Linear(in_features, num_classes))


def digits_splits(path: str, split_seed: int = 1234) -> dict[str, TensorDataset]:
    with np.load(path) as digits:
        images, labels = digits["images"], digits["labels"]
    x = torch.tensor(images / 16.0, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    n_val, n_test = int(len(x) * 0.15), int(len(x) * 0.15)
    parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {name: TensorDataset(x[index], y[index]) for name, index in parts.items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--batch-size", type=int, default=64, help="per process")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, help="at most this many training steps an epoch (default: all)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the throughput")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--out-dir", default="plain_run", help="where the checkpoint goes")
    parser.add_argument("--digits", required=True, help="the project's src/<package>/data/digits.npz")
    return parser.parse_args()


def train(args: argparse.Namespace, distributed: bool) -> None:
    rank, world_size, local_rank = 0, 1, 0
    if distributed:
        rank, world_size, local_rank = dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"])
    device = torch.device(f"cuda:{local_rank}" if args.device == "cuda" else "cpu")
    torch.manual_seed(42)

    data = digits_splits(args.digits)
    train_sampler = DistributedSampler(data["train"], shuffle=True, seed=42) if distributed else None
    val_sampler = DistributedSampler(data["val"], shuffle=False) if distributed else None
    pin = args.device == "cuda"
    train_loader = DataLoader(
        data["train"], args.batch_size, shuffle=train_sampler is None, sampler=train_sampler, pin_memory=pin
    )
    val_loader = DataLoader(data["val"], args.batch_size, sampler=val_sampler, pin_memory=pin)

    model = mlp(64, args.hidden, 10, dropout=0.1).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    if args.compile:
        model = torch.compile(model)
    net = DDP(model, device_ids=[local_rank] if args.device == "cuda" else None) if distributed else model
    criterion = nn.CrossEntropyLoss()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    os.makedirs(args.out_dir, exist_ok=True)

    clock = StepClock(args.warmup_steps)
    for epoch in range(args.epochs):
        if train_sampler is not None:
            train_sampler.set_epoch(epoch)
        net.train()
        totals = torch.zeros(5, device=device)  # train correct, train seen, val loss sum, val correct, val seen
        for step, (x, y) in enumerate(train_loader):
            if step == args.steps_per_epoch:  # as the generated side's `+trainer.limit_train_batches`
                break
            clock.step(epoch, len(x))
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast:
                logits = net(x)
                loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals[0] += (logits.argmax(1) == y).sum()
            totals[1] += len(y)
            if clock.steps % 10 == 0:
                print(f"epoch {epoch} step {clock.steps} loss {loss.item():.4f}", flush=True)
        scheduler.step()

        net.eval()  # validation
        with torch.no_grad(), autocast:
            for x, y in val_loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                logits = net(x)
                totals[2] += criterion(logits, y).float() * len(y)
                totals[3] += (logits.argmax(1) == y).sum()
                totals[4] += len(y)
        if distributed:
            dist.all_reduce(totals)  # the epoch's accuracies over all ranks, as torchmetrics syncs them
        if rank == 0:
            train_acc, val_loss, val_acc = totals[0] / totals[1], totals[2] / totals[4], totals[3] / totals[4]
            print(f"epoch {epoch} train/acc {train_acc:.3f} val/loss {val_loss:.4f} val/acc {val_acc:.3f}", flush=True)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
            torch.save(state, os.path.join(args.out_dir, "last.pt"))

    clock.finish(rank, world_size)


def main() -> None:
    args = parse_args()
    distributed = "LOCAL_RANK" in os.environ  # started by torchrun
    if distributed:
        # Before the group exists: imported later (DDP does), its functions' `group=group.WORLD` defaults
        # would hold the group for good. Here, not at the top: one process has no use for it.
        import torch.distributed.nn  # noqa: F401

        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    train(args, distributed)
    if distributed:
        dist.destroy_process_group()  # train() has returned: nothing else holds the group, its threads end here


if __name__ == "__main__":
    main()

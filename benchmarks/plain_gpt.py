"""The plain-PyTorch side of the GPT rows: `python train.py experiment=gpt` of the generated project, by hand.

Written the way the PyTorch DDP tutorial's GPT trainer writes its loop (pytorch/examples,
distributed/minGPT-ddp/mingpt/trainer.py): a DataLoader with a DistributedSampler, the model in
DistributedDataParallel, AdamW, `clip_grad_norm_` every step, autocast for mixed precision, a snapshot every
epoch. `python plain_gpt.py` trains in one process, `torchrun --nproc-per-node=2 plain_gpt.py` in two.

The same work as the generated side (benchmarks/harness.py, `gpt_generated_command`):
- network: the GPT class of the rendered project (`--project`/src on sys.path), so that the rows compare the
  training machinery, not two models;
- data: the bytes of the same corpus (the standard library's top-level .py files in name order, the first
  `--corpus-mb` MB, as data/text_datamodule.py reads them), the same split (the text's last 10 % is val and
  test) and non-overlapping windows of block_size + 1 bytes, shuffled, `--batch-size` per process; a Dataset
  that hands out one window at a time, as the tutorial's CharDataset does;
- AdamW(lr 2e-3, betas (0.9, 0.95)), weight decay 0.1 on matrices only (the project's rule: `p.dim() >= 2`),
  cross-entropy on float logits, gradient norm clipped to 1.0, seed 42;
- every epoch: `--steps-per-epoch` training steps, then `--val-batches` batches of validation (token-weighted
  mean loss, all-reduced) and a checkpoint written by rank 0.
The loss is read (`.item()`) every 10 steps (the generated project logs it every 10 steps); the tutorial reads
it every step, a wait for the device every step on a GPU. Left out, being plain: the sample the generated
project writes after each validation, a progress bar, callbacks, config composition, a logger.
Timing: StepClock (step_clock.py) at the start of every step, where the generated side's StepTimer calls it.

Sharded (`--dp D --tp T` under torchrun, D x T ranks; the generated side's `trainer=model_parallel`): the model
is not wrapped in DDP but spread over a (D, T) device mesh by the GPT's own `parallelize(mesh)` (with T = 1 that
is `fully_shard` on every block, then on the whole model: the plain FSDP2 loop of PyTorch's FSDP2 tutorial);
the sampler splits the data D ways (the T ranks of a tensor-parallel group train on the same batch); the
gradient norm is clipped by the project's harness/sharded.py where T > 1 (torch's own refuses the mix of plain
and tensor-parallel gradients); the snapshot is a distributed checkpoint (torch.distributed.checkpoint), as the
generated side writes.
"""

import argparse
import os
import sys
import sysconfig
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn.functional as F
from step_clock import StepClock, memory
from torch.distributed.checkpoint.state_dict import get_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler


def stdlib_corpus(max_bytes: int) -> bytes:
    """The first `max_bytes` of the standard library's top-level .py files in name order (the project's corpus)."""
    text = bytearray()
    for file in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text += file.read_bytes()
        if len(text) >= max_bytes:
            break
    return bytes(text[:max_bytes])


class CharDataset(Dataset):
    """Window i: bytes i * block_size .. (i + 1) * block_size; input all but the last, target all but the first."""

    def __init__(self, tokens: torch.Tensor, block_size: int) -> None:
        self.tokens, self.block_size = tokens, block_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.block_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.tokens[index * self.block_size : (index + 1) * self.block_size + 1]
        return chunk[:-1], chunk[1:]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="the rendered project, whose GPT class is trained")
    parser.add_argument("--package", default="my_project")
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--corpus-mb", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--val-batches", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the throughput")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32", choices=["32", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--dp", type=int, help="sharded: data-parallel size (FSDP2), with --tp, under torchrun")
    parser.add_argument("--tp", type=int, default=1, help="sharded: tensor-parallel size")
    parser.add_argument("--out-dir", default="plain_run", help="where the snapshot goes")
    return parser.parse_args()


def train(args: argparse.Namespace, distributed: bool) -> None:
    rank, world_size, local_rank = 0, 1, 0
    if distributed:
        rank, world_size, local_rank = dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"])
    device = torch.device(f"cuda:{local_rank}" if args.device == "cuda" else "cpu")
    torch.manual_seed(42)

    if args.project:
        sys.path.insert(0, str(args.project / "src"))
    gpt = __import__(f"{args.package}.models.nets.gpt", fromlist=["GPT"])
    mesh = None
    replicas, replica = world_size, rank  # how many ways, and which way, the data is split
    if args.dp:
        mesh = init_device_mesh(device.type, (args.dp, args.tp), mesh_dim_names=("data_parallel", "tensor_parallel"))
        replicas, replica = args.dp, mesh["data_parallel"].get_local_rank()

    tokens = torch.frombuffer(bytearray(stdlib_corpus(int(args.corpus_mb * 2**20))), dtype=torch.uint8).long()
    n_held_out = int(len(tokens) * 0.05)  # val, then test, at the text's end
    n_train = len(tokens) - 2 * n_held_out
    train_data = CharDataset(tokens[:n_train], args.block_size)
    val_data = CharDataset(tokens[n_train : n_train + n_held_out], args.block_size)
    # Shuffled in one process too (the generated side shuffles), by the sampler the tutorial uses under torchrun.
    train_sampler = (
        DistributedSampler(train_data, replicas, replica, seed=42) if distributed else RandomSampler(train_data)
    )
    val_sampler = DistributedSampler(val_data, replicas, replica, shuffle=False) if distributed else None
    pin = args.device == "cuda"  # the tutorial pins memory
    train_loader = DataLoader(train_data, args.batch_size, sampler=train_sampler, pin_memory=pin)
    val_loader = DataLoader(val_data, args.batch_size, sampler=val_sampler, pin_memory=pin)

    model = gpt.GPT(256, args.block_size, args.n_layer, args.n_head, args.n_embd, dropout=0.0).to(device)
    if mesh is not None:
        model.parallelize(mesh)  # before the optimizer: it must hold the sharded parameters
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=2e-3, betas=(0.9, 0.95))
    if args.compile:
        model.compile()  # in place, as the project's `model.compile=true` does
    net = model
    if distributed and mesh is None:
        net = DDP(model, device_ids=[local_rank] if args.device == "cuda" else None)
    clip = torch.nn.utils.clip_grad_norm_
    if args.tp > 1:
        clip = __import__(f"{args.package}.harness.sharded", fromlist=["clip_grad_norm_"]).clip_grad_norm_
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    os.makedirs(args.out_dir, exist_ok=True)

    clock = StepClock(args.warmup_steps)
    for epoch in range(args.epochs):
        if distributed:
            train_sampler.set_epoch(epoch)
        net.train()
        for step, (source, targets) in enumerate(train_loader):
            if step == args.steps_per_epoch:
                break
            clock.step(epoch, len(source))
            source, targets = source.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with autocast:
                logits = net(source)
                loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip(net.parameters(), 1.0)
            optimizer.step()
            if clock.steps % 10 == 0:
                print(f"[rank {rank}] epoch {epoch} step {clock.steps} loss {loss.item():.4f}", flush=True)

        net.eval()  # validation: token-weighted mean loss over every rank's batches
        totals = torch.zeros(2, device=device)
        with torch.no_grad(), autocast:
            for step, (source, targets) in enumerate(val_loader):
                if step == args.val_batches:
                    break
                source, targets = source.to(device, non_blocking=True), targets.to(device, non_blocking=True)
                logits = net(source)
                totals[0] += F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten()) * targets.numel()
                totals[1] += targets.numel()
        if distributed:
            dist.all_reduce(totals)
        if rank == 0:
            print(f"epoch {epoch} val/loss {totals[0] / totals[1]:.4f}", flush=True)
        if mesh is not None:  # every rank writes its shards
            model_state, optimizer_state = get_state_dict(model, optimizer)
            snapshot = {"model": model_state, "optimizer": optimizer_state, "epoch": epoch}
            dcp.save(snapshot, checkpoint_id=os.path.join(args.out_dir, "snapshot"))
        elif rank == 0:
            snapshot = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}
            torch.save(snapshot, os.path.join(args.out_dir, "snapshot.pt"))

    clock.finish(rank, replicas, **memory(model, optimizer))


def main() -> None:
    args = parse_args()
    distributed = "LOCAL_RANK" in os.environ  # started by torchrun
    if distributed:
        # Before the group exists, for the reason plain_train.py's docstring gives (gloo's threads at exit).
        import torch.distributed.nn  # noqa: F401

        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    train(args, distributed)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

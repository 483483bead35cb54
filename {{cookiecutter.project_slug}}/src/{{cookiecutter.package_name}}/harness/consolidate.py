"""One ordinary .ckpt file from the folder a sharded run saved (trainer=model_parallel or trainer=fsdp):

    python -m {{cookiecutter.package_name}}.harness.consolidate \\
        logs/train/runs/<run>/checkpoints/last.ckpt [out.ckpt]

to share, or to load on one device (`LightningModule.load_from_checkpoint`); eval.py and generate.py do this by
themselves when given a folder. The file holds the weights, hyperparameters and training progress; the
optimizer's state stays in the folder, which is what to resume training from.

Gap this fills: Lightning's `python -m lightning.pytorch.utilities.consolidate_checkpoint` reads FSDPStrategy's
folders only (on ModelParallelStrategy's it fails with KeyError 'model', Lightning 2.6).
"""

import sys
import tempfile
from pathlib import Path
from typing import Any

from {{cookiecutter.package_name}}.harness.checks import ConfigError


def full_checkpoint(folder: Path, optimizer: bool = False) -> dict[str, Any]:
    """The checkpoint in `folder` gathered whole, in this one process: meta.pt plus every shard's weights, and with
    `optimizer` the optimizers' state as `torch.optim` keeps it (what a run continued without sharding loads)."""
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from {{cookiecutter.package_name}}.harness import checkpoint_reading

    try:  # before torch's reader, which would run code that a crafted folder holds
        checkpoint_reading.check(folder)
    except checkpoint_reading.UnreadableCheckpoint as why:
        raise ConfigError(f"{folder} cannot be read safely: {why}; pass a checkpoint folder a run wrote.") from None
    with tempfile.TemporaryDirectory() as scratch:
        dcp_to_torch_save(folder, Path(scratch) / "full.pt")  # torch's own converter: needs no process group
        shards = torch.load(Path(scratch) / "full.pt", map_location="cpu", weights_only=True)
    checkpoint = torch.load(folder / "meta.pt", map_location="cpu", weights_only=True)
    checkpoint["state_dict"] = shards["state_dict"] if "state_dict" in shards else shards["model"]  # fsdp: "model"
    if optimizer:
        optimizers = sorted((key for key in shards if key.startswith("optimizer_")), key=lambda k: int(k.split("_")[1]))
        checkpoint["optimizer_states"] = [_numbered(shards[key]) for key in optimizers]
    return checkpoint


def _numbered(state: dict[str, Any]) -> dict[str, Any]:
    """An optimizer's state keyed by parameter names (as torch.distributed.checkpoint saves it) keyed instead by
    position in its parameter groups, as `Optimizer.load_state_dict` takes it: the same optimizer built again by
    configure_optimizers lists the same parameters in the same order."""
    position = {name: i for i, name in enumerate(name for group in state["param_groups"] for name in group["params"])}
    return {
        "state": {position[name]: value for name, value in state["state"].items()},
        "param_groups": [
            {**group, "params": [position[name] for name in group["params"]]} for group in state["param_groups"]
        ],
    }


def consolidate(folder: Path, out: Path) -> Path:
    import torch

    torch.save(full_checkpoint(folder), out)
    return out


def as_trainer_loads_it(ckpt_path: str, trainer: Any, output_dir: Path) -> str:
    """`ckpt_path` as `trainer` loads it (eval.py): a sharded run's folder as it is under a sharded strategy, under
    any other gathered into one file in `output_dir`."""
    from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy

    if Path(ckpt_path).is_dir() and not isinstance(trainer.strategy, ModelParallelStrategy | FSDPStrategy):
        ckpt_path = str(consolidate(Path(ckpt_path), output_dir / "consolidated.ckpt"))
    return str(Path(ckpt_path).resolve())


def load_weights(model: Any, ckpt_path: str) -> None:
    """`model` given the weights of a .ckpt file or of a sharded run's folder (gathered whole in this process), and
    moved to the GPU if there is one (generate.py)."""
    import torch

    if Path(ckpt_path).is_dir():
        checkpoint = full_checkpoint(Path(ckpt_path))
    else:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    model.to("cuda" if torch.cuda.is_available() else "cpu")


def main() -> None:
    if len(sys.argv) not in (2, 3) or not (Path(sys.argv[1]) / "meta.pt").is_file():
        sys.exit(f"usage: python -m {__spec__.name} <a sharded checkpoint folder, with meta.pt in it> [out.ckpt]")
    folder = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else folder.with_name(f"{folder.stem}.consolidated.ckpt")
    try:
        print(f"Wrote {consolidate(folder, out)}")
    except ConfigError as error:
        sys.exit(f"ERROR: {error}")


if __name__ == "__main__":
    main()

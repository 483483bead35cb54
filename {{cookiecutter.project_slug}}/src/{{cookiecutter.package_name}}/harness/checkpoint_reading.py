"""Reading a checkpoint runs no code from it, whoever made the file; a file that cannot be read says why.

Gap this fills: a single .ckpt file is read with `torch.load(weights_only=True)` (train.py, eval.py and
generate.py pass it explicitly), which builds tensors and plain values only. A sharded checkpoint (a folder:
trainer=model_parallel, trainer=fsdp) is read by torch.distributed.checkpoint, which unpickles `.metadata` with
plain pickle and loads the optimizer's non-tensor values (learning rates, betas) with `weights_only=False`: a
crafted folder runs code as it is loaded (torch 2.13). Here a folder is checked before anything reads it:
`.metadata` through an unpickler that builds only the types of torch's checkpoint format, and every
non-tensor value, and meta.pt, through `weights_only=True`.
"""

import enum
import io
import pickle
import re
from pathlib import Path

import torch
from torch.distributed.checkpoint import metadata as dcp_metadata
from torch.distributed.checkpoint.filesystem import _StorageInfo

# What torch writes into `.metadata`, besides the classes of torch.distributed.checkpoint.metadata and dtypes.
METADATA_GLOBALS = {
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
}


class UnreadableCheckpoint(ValueError):
    """Why a checkpoint cannot be read safely, in words for the sentence that names it."""


def _enum_member(cls: object, name: object) -> enum.Enum:
    """What `getattr` may build in `.metadata`: a member of one of the format's enums. Python 3.11.0-3.11.4 pickle
    enum members as getattr(enum class, member name) (Debian 12's 3.11.2 does); later versions as the class called."""
    if isinstance(cls, type) and issubclass(cls, enum.Enum) and isinstance(name, str) and name in cls.__members__:
        return cls[name]
    raise UnreadableCheckpoint(f"its .metadata asks getattr for {name!r} of {cls!r}, which is no enum member")


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("builtins", "getattr"):
            return _enum_member  # the enum classes themselves pass only if they are the format's
        found = getattr(dcp_metadata, name, None) if module == dcp_metadata.__name__ else None
        is_dtype = module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)
        if (module, name) in METADATA_GLOBALS or isinstance(found, type) or is_dtype:
            return super().find_class(module, name)
        raise UnreadableCheckpoint(f"its .metadata names {module}.{name}, which no checkpoint holds")


def check(path: Path) -> dict:
    """Raise UnreadableCheckpoint unless `path` (a .ckpt file or a sharded checkpoint's folder) reads safely;
    return its entries (global_step, callbacks' states; a folder's meta.pt), memory-mapped: tensors not read."""
    try:
        if path.is_dir():
            return _check_folder(path)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except UnreadableCheckpoint:
        raise
    except Exception as error:
        raise UnreadableCheckpoint(reason(error)) from None


def _check_folder(folder: Path) -> dict:
    if not (folder / ".metadata").is_file() or not (folder / "meta.pt").is_file():
        raise UnreadableCheckpoint("it has no .metadata or meta.pt, so it is not a whole sharded checkpoint")
    with open(folder / ".metadata", "rb") as file:
        metadata = _MetadataUnpickler(file).load()
    if not isinstance(metadata, dcp_metadata.Metadata) or not isinstance(metadata.storage_data, dict):
        raise UnreadableCheckpoint("its .metadata is not torch's checkpoint metadata")
    for index, place in metadata.storage_data.items():
        if not isinstance(place, _StorageInfo) or not (folder / place.relative_path).resolve().is_relative_to(
            folder.resolve()
        ):
            raise UnreadableCheckpoint(f"its .metadata points outside the folder ({place})")
        if not isinstance(metadata.state_dict_metadata.get(index.fqn), dcp_metadata.BytesStorageMetadata):
            continue  # a tensor: torch reads those with weights_only=True itself
        if place.transform_descriptors:
            raise UnreadableCheckpoint(f"{index.fqn} is stored through a transform ({place.transform_descriptors})")
        with open(folder / place.relative_path, "rb") as file:  # what torch would load with weights_only=False
            file.seek(place.offset)
            torch.load(io.BytesIO(file.read(place.length)), weights_only=True)
    return torch.load(folder / "meta.pt", map_location="cpu", weights_only=True, mmap=True)


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The name and shape of each weight in a checkpoint that check() has passed, tensors not read."""
    if path.is_dir():
        with open(path / ".metadata", "rb") as file:
            saved = _MetadataUnpickler(file).load().state_dict_metadata
        return {
            name.removeprefix("state_dict."): tuple(entry.size)
            for name, entry in saved.items()
            if name.startswith("state_dict.") and isinstance(entry, dcp_metadata.TensorStorageMetadata)
        }
    return {name: tuple(tensor.shape) for name, tensor in check(path).get("state_dict", {}).items()}


def reason(error: Exception) -> str:
    """Why torch.load failed, in words: an object safe loading refuses is not a truncated file."""
    refused = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", str(error))
    if refused:
        return (
            f"it holds a {refused[1]} object, which safe loading (torch.load with weights_only=True) refuses: "
            "store plain values (str, numbers, lists, dicts) in checkpoints"
        )
    return f"it is truncated or not a checkpoint ({type(error).__name__})"

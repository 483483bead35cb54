"""A model's network, optimizer and scheduler kept in its checkpoint as the configs they were built from, and built
again by `load_from_checkpoint` (harness/module.py), from the project's classes and torch's only.

Gap this fills: Hydra hands a LightningModule its network, optimizer and scheduler already built, objects that
`save_hyperparameters` leaves out so that checkpoints load with torch.load(weights_only=True); Lightning's
`Classifier.load_from_checkpoint(path)` then fails with "missing 2 required positional arguments: 'net' and
'optimizer'". Here their configs join the hyperparameters as plain dicts (harness/build.py), and loading builds them
again. A checkpoint may come from anyone, and Hydra's `instantiate` calls whatever `_target_` names: here only a
class of this project's models/ or of torch's optimizers, schedulers and layers is built, anything else refused.
"""

import functools
import importlib
import inspect
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from {{cookiecutter.package_name}}.harness.checks import ConfigError

MODELS = f"{__name__.split('.')[0]}.models."  # this project's package
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
# What a checkpoint may ask to build: (how its `_target_` starts, the class it must be, the module it is defined in).
ALLOWED = (
    (MODELS, object, MODELS),
    ("torch.optim.", torch.optim.Optimizer, "torch.optim."),
    ("torch.optim.lr_scheduler.", torch.optim.lr_scheduler.LRScheduler, "torch.optim.lr_scheduler"),
    ("torch.nn.", torch.nn.Module, "torch.nn."),
)


def keep(model: Any, config: DictConfig) -> None:
    """Add to `model`'s hyperparameters the config of each argument Hydra built for it (a node with `_target_`)."""
    for name, node in config.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            # As resolved for the run; text read from the environment stays `${oc.env:...}`, unread (harness/launch.py).
            model.hparams[name] = OmegaConf.to_container(node)


def rebuild(model_class: type, hparams: dict[str, Any], given: dict[str, Any], source: str) -> dict[str, Any]:
    """The arguments of `model_class` that were built for it, built again from their configs in `hparams` (a
    checkpoint's, read from `source`), except those `given` to load_from_checkpoint."""
    parameters = inspect.signature(model_class.__init__).parameters
    needed = [name for name, p in parameters.items() if p.default is p.empty and p.kind in NAMED and name != "self"]
    missing = [name for name in needed if name not in given and name not in hparams]
    if missing:
        passed = ", ".join(f"{name}=..." for name in missing)
        raise ConfigError(
            f"{source} holds no {' and '.join(missing)} among its hyperparameters (a checkpoint saved before networks "
            f"and optimizers were kept, or by a model built outside train.py): pass them, load_from_checkpoint(path, "
            f"{passed})."
        )
    built = [name for name in parameters if name not in given and isinstance(hparams.get(name), dict)]
    return {name: _build(hparams[name], name, source) for name in built if "_target_" in hparams[name]}


def _build(config: Any, name: str, source: str) -> Any:
    if isinstance(config, list):
        return [_build(item, name, source) for item in config]
    if isinstance(config, str) and "${" in config:
        raise ConfigError(
            f"{name} in {source} reads {config} when built, which a checkpoint does not keep: pass it built, "
            f"load_from_checkpoint(path, {name}=...)."
        )
    if not isinstance(config, dict):
        return config
    arguments = {key: _build(value, name, source) for key, value in config.items() if not _hydra_key(key)}
    if "_target_" not in config:
        return arguments
    target = _allowed_class(config["_target_"], name, source)
    positional = [_build(value, name, source) for value in config.get("_args_", [])]
    if config.get("_partial_"):  # the optimizer and scheduler: the model passes the parameters / the optimizer
        return functools.partial(target, *positional, **arguments)
    return target(*positional, **arguments)


def _hydra_key(key: str) -> bool:
    return key.startswith("_") and key.endswith("_")


def _allowed_class(target: Any, name: str, source: str) -> type:
    """The class `target` names, if ALLOWED lets a checkpoint build it: only modules under an allowed prefix are
    imported, and only a class defined there (not a function or class they import) is built."""
    for prefix, base, home in ALLOWED:
        if isinstance(target, str) and target.startswith(prefix):
            module, _, attribute = target.rpartition(".")
            try:
                found = getattr(importlib.import_module(module), attribute)
            except (ImportError, AttributeError):  # no such class
                break
            if isinstance(found, type) and issubclass(found, base) and found.__module__.startswith(home):
                return found
    raise ConfigError(
        f"{source} asks to build {name} from {target!r}, and only classes of {MODELS.rstrip('.')} or "
        f"torch's optimizers, schedulers and layers are built from a checkpoint (anything else could run code): pass "
        f"it built, load_from_checkpoint(path, {name}=...)."
    )

"""Checks a composed config before any work starts, so a run that cannot work fails in one sentence.

Lightning and PyTorch would find most of these problems too, but later (after the data is loaded
or the processes are started) and in a traceback; these messages say what to type instead.
"""

import collections
import copy
import difflib
import importlib.util
import inspect
import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from {{cookiecutter.package_name}}.harness import cluster, mesh


class ConfigError(ValueError):
    """A mistake in the config or command line; the entry point prints it without a traceback."""


class RunStopped(RuntimeError):
    """Training stopped on purpose (e.g. a non-finite loss); its checkpoints are kept."""


def check_launcher() -> None:
    """Ranks that mpirun started, before Hydra runs: Lightning joins them through mpi4py (its MPIEnvironment),
    which must be installed, load the MPI library of that mpirun, and find as many ranks on every host."""
    world = cluster.mpi_world()
    if world is None:
        return
    size = world[1]
    if cluster.slurm_managed():  # inside a job Lightning takes the ranks from SLURM: right only where they agree
        tasks = os.environ.get("SLURM_NTASKS")
        if tasks != str(size):
            raise ConfigError(
                f"mpirun started {size} ranks inside a SLURM job step of {tasks} tasks, and Lightning takes the ranks "
                "from SLURM there: start them with srun instead (slurm/multi_node.sbatch)."
            )
        return
    try:
        from mpi4py import MPI

        seen, reason = MPI.COMM_WORLD.Get_size(), ""
    except Exception as error:  # not installed, or installed without an MPI library it can load
        if isinstance(error, ModuleNotFoundError) and error.name == "mpi4py":
            raise ConfigError(
                f"mpirun started {size} ranks, and Lightning joins MPI ranks through mpi4py, which is not installed: "
                'pip install -e ".[mpi]" (it needs the MPI library of your mpirun, e.g. apt install libopenmpi-dev).'
            ) from None
        seen, reason = 0, f"{type(error).__name__}: {error}"
    if seen != size:
        reason = reason or f"it sees {seen} of them"
        raise ConfigError(
            f"mpirun started {size} ranks but mpi4py does not use its MPI library ({reason}): reinstall it against "
            "this one: pip install --force-reinstall --no-binary mpi4py mpi4py."
        )
    per_host = collections.Counter(cluster.mpi_hosts())
    if len(set(per_host.values())) > 1:
        raise ConfigError(
            f"mpirun placed {dict(per_host)} ranks on its hosts, and Lightning needs as many on each: "
            f"e.g. mpirun -np {min(per_host.values()) * len(per_host)} --npernode {min(per_host.values())} ..."
        )


def check_run(cfg: DictConfig, needed_by: str | None = None) -> None:
    """Every check of a run's config (train.py, eval.py), before any work. `needed_by`: the script that cannot run
    without a checkpoint, said first."""
    _checkpoint_given(cfg.get("ckpt_path"), needed_by)
    check_trainer(cfg)
    check_data(cfg)
    check_checkpoint(cfg.get("ckpt_path"))
    check_loggers(cfg)
    check_argument_types(cfg)


def check_checkpoint(ckpt_path: str | None, needed_by: str | None = None) -> None:
    """A checkpoint to start from must exist and read safely: found now, not after the data is loaded."""
    _checkpoint_given(ckpt_path, needed_by)
    if ckpt_path in (None, "last"):
        return
    # here, not at the top: it imports torch, and `train.py --help` need not
    from {{cookiecutter.package_name}}.harness import checkpoint_reading

    path = Path(ckpt_path)
    if path.is_dir() and not (path / "meta.pt").is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} is a folder but not a sharded checkpoint (no meta.pt in it): "
            "pass a .ckpt file or folder that a run wrote."
        )
    if not path.exists():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist: pass a .ckpt file, or ckpt_path=last to continue the newest run."
        )
    try:
        checkpoint_reading.check(path)
    except checkpoint_reading.UnreadableCheckpoint as why:
        raise ConfigError(f"ckpt_path={ckpt_path} cannot be read safely: {why}; pass another checkpoint.") from None


def check_weights_fit(model: Any, ckpt_path: str | None) -> None:
    """Refuse, before any work, a checkpoint whose weights the model of this command cannot take (a model setting
    changed on the command line, or the network's code since it was saved): Lightning would fail on loading it
    with a traceback of every tensor that differs."""
    import lightning as L

    from {{cookiecutter.package_name}}.harness import checkpoint_reading

    # A module that asks for partial loading, or that changes what it loads (Lightning's way to read checkpoints of
    # an older network: rename keys in on_load_checkpoint), is left to Lightning.
    partial = not getattr(model, "strict_loading", True)
    migrates = any(
        getattr(type(model), hook, None) is not getattr(L.LightningModule, hook)
        for hook in ("on_load_checkpoint", "load_state_dict", "_load_from_state_dict")
    )
    if ckpt_path is None or partial or migrates:
        return

    saved = checkpoint_reading.weight_shapes(Path(ckpt_path))
    if not saved:  # a folder of another layout than model_parallel's: Lightning says what it finds
        return
    own = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    differences = [f"it has {name}, which this model has not" for name in saved if name not in own]
    differences += [f"it lacks {name}, which this model has" for name in own if name not in saved]
    differences += [
        f"its {name} is {list(saved[name])}, this model's {list(shape)}"
        for name, shape in own.items()
        if name in saved and saved[name] != shape
    ]
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise ConfigError(
            f"{ckpt_path} holds weights this model cannot take: {differences[0]}{more}. It was saved with other model "
            "settings or code: give the model settings of the run that saved it (its .hydra/config.yaml), or pass a "
            "checkpoint of this model."
        )


def _checkpoint_given(ckpt_path: str | None, needed_by: str | None) -> None:
    if needed_by is not None and (not ckpt_path or not Path(ckpt_path).exists()):
        raise ConfigError(
            f"{needed_by} needs ckpt_path=path/to/file.ckpt (or a sharded run's folder): {ckpt_path!r} is neither."
        )


def check_trainer(cfg: DictConfig) -> None:
    import torch

    check_mesh(cfg.trainer)  # first: trainer=fsdp without CUDA has a better answer than "add trainer.accelerator=cpu"
    check_network_plan(cfg)
    trainer = cfg.trainer
    strategy = str(trainer.get("strategy", "auto"))
    accelerator = str(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", "auto")
    if strategy == "dp" and trainer.get("sync_batchnorm"):
        raise ConfigError(
            "trainer.sync_batchnorm=true cannot work under trainer=dp: its replicas are threads of one process, "
            "each with its own BatchNorm statistics; use trainer=ddp for synchronized BatchNorm."
        )
    if strategy == "dp" and not torch.cuda.is_available():
        raise ConfigError(
            "trainer=dp splits each batch over this node's CUDA GPUs, but no CUDA GPU is visible: "
            "use trainer=cpu for one process, or trainer=ddp trainer.accelerator=cpu trainer.devices=2 "
            "for several CPU processes."
        )
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible: "
            "add trainer.accelerator=cpu to run on the CPU (with trainer=ddp, trainer.devices=N gives N CPU processes)."
        )
    if isinstance(devices, int) or str(devices).lstrip("-").isdigit():
        count = int(devices)
        if count < 1 and count != -1:
            raise ConfigError(
                f"trainer.devices={devices} must be a positive count, -1 or auto: e.g. trainer.devices=1."
            )
        cores = os.cpu_count() or 1
        # Processes that share the cores train the same, slower: twice as many rehearse a larger layout (a run
        # continued on 4 ranks from 2, on a 2-core laptop); more is a typo that would start hundreds of processes.
        if accelerator == "cpu" and count > 2 * cores:
            raise ConfigError(
                f"trainer.devices={count} asks for {count} CPU processes on this machine's {cores} cores: use "
                f"trainer.devices={cores} or fewer (up to {2 * cores} share the cores, slower, to rehearse a layout)."
            )
        gpus = torch.cuda.device_count()
        if accelerator in ("gpu", "cuda") and count > gpus:
            raise ConfigError(
                f"trainer.devices={count} but this node has {gpus} GPUs: use trainer.devices={gpus} or fewer."
            )
    if int(trainer.get("num_nodes", 1)) < 1:
        raise ConfigError(f"trainer.num_nodes={trainer.num_nodes} must be 1 or more.")
    world = cluster.mpi_world() if cluster.mpi_launched() else None
    if world is not None:
        if mesh.devices_per_node(trainer) * int(trainer.get("num_nodes", 1)) != world[1]:
            raise ConfigError(
                f"mpirun started {world[1]} ranks, but trainer.devices x trainer.num_nodes is {devices} x "
                f"{trainer.get('num_nodes', 1)}: use trainer=ddp_multinode, which takes both from mpirun."
            )


def check_mesh(trainer: DictConfig) -> None:
    """trainer=fsdp needs CUDA; trainer=model_parallel needs sizes that multiply to the ranks."""
    import torch

    target = _strategy_target(trainer)
    if (target.endswith(".FSDPStrategy") or target == "fsdp") and not torch.cuda.is_available():
        raise ConfigError(
            "trainer=fsdp runs on CUDA GPUs only (Lightning's FSDPStrategy), and no CUDA GPU is visible: for sharded "
            "training on the CPU use trainer=model_parallel trainer.accelerator=cpu trainer.devices=2."
        )
    if not target.endswith((".ModelParallelStrategy", ".ModelParallel")):
        return
    ranks, data, tensor = mesh.shape(trainer)
    if not (_whole_number_at_least(data, 1) and _whole_number_at_least(tensor, 1)) or data * tensor != ranks:
        raise ConfigError(
            f"trainer.strategy.data_parallel_size={data} x trainer.strategy.tensor_parallel_size={tensor} must equal "
            f"the number of ranks, {ranks} (trainer.devices x trainer.num_nodes): e.g. "
            f"trainer.strategy.data_parallel_size={ranks} trainer.strategy.tensor_parallel_size=1."
        )


def check_network_plan(cfg: DictConfig) -> None:
    """trainer=model_parallel needs a network that says how it is split (harness/mesh.py), over the sizes asked."""
    if not _strategy_target(cfg.trainer).endswith((".ModelParallelStrategy", ".ModelParallel")):
        return
    ranks, _, tensor = mesh.shape(cfg.trainer)
    net = cfg.model.get("net")
    network = _located(net.get("_target_")) if isinstance(net, DictConfig) else None
    if not isinstance(network, mesh.Parallelizable):  # the class: its attribute and method
        name = network.__name__ if network is not None else "this model"
        raise ConfigError(
            f"trainer=model_parallel needs the network to say how it is split, and {name} has no parallelize(mesh) "
            "method with a tensor_parallel attribute (harness/mesh.py; models/nets/gpt.py and mlp.py have both): "
            "add them, or use trainer=ddp."
        )
    if tensor > 1 and not network.tensor_parallel:
        raise ConfigError(
            f"{network.__name__} has a sharding plan but no tensor-parallel one: use "
            f"trainer.strategy.data_parallel_size={ranks} trainer.strategy.tensor_parallel_size=1."
        )
    heads = net.get("n_head")
    if tensor > 1 and isinstance(heads, int) and heads % tensor:
        raise ConfigError(
            f"trainer.strategy.tensor_parallel_size={tensor} must divide model.net.n_head={heads} (each rank computes "
            f"whole heads): choose a tensor-parallel size that divides {heads}, or another model.net.n_head."
        )


def _strategy_target(trainer: DictConfig) -> str:
    """The strategy's class or registered name: `fsdp`, `....ModelParallel`."""
    strategy = trainer.get("strategy")
    return str(strategy.get("_target_", "")) if isinstance(strategy, DictConfig) else str(strategy)


def _located(target: Any) -> Any:
    """What `target` names; None where it cannot be located: instantiation reports that, in one sentence
    (harness/launch.py)."""
    import hydra

    try:
        return hydra.utils.get_object(str(target))
    except Exception:
        return None


def check_data(cfg: DictConfig) -> None:
    if not _whole_number_at_least(cfg.data.get("batch_size", 1), 1):
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} must be a whole number of 1 or more: e.g. data.batch_size=64."
        )
    if not _whole_number_at_least(cfg.data.get("num_workers", 0), 0):
        raise ConfigError(
            f"data.num_workers={cfg.data.num_workers} must be a whole number of 0 or more "
            "(0 loads in the main process)."
        )
    path = cfg.data.get("path")  # a data config of your own that reads a file (README: "Add a dataset")
    if isinstance(path, str) and not Path(path).exists():
        example = f"/data/{Path(path).name}"  # the same kind of file: my.npz, input.txt
        raise ConfigError(f"data.path={path} does not exist: give the file's place, e.g. data.path={example}.")


def _whole_number_at_least(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# Loggers whose package is an optional extra of this project (pyproject.toml): (class name, module, extra).
LOGGER_PACKAGES = [
    ("TensorBoardLogger", ("tensorboard", "tensorboardX"), "tensorboard"),
    ("WandbLogger", ("wandb",), "wandb"),
]


def check_loggers(cfg: DictConfig) -> None:
    """A logger whose package is missing fails in Lightning with a pip line for Lightning's own extras; the
    learning-rate monitor fails in a traceback when there is no logger."""
    loggers = {name: logger for name, logger in (cfg.get("logger") or {}).items() if logger is not None}
    if not loggers and (cfg.get("callbacks") or {}).get("lr_monitor") is not None:
        raise ConfigError(
            "callbacks.lr_monitor logs the learning rate, but no logger is chosen: add logger=csv "
            "(or logger=tensorboard, logger=wandb), or drop it with ~callbacks.lr_monitor."
        )
    for name, logger in loggers.items():
        target = str(logger.get("_target_", ""))
        for class_name, modules, extra in LOGGER_PACKAGES:
            if (class_name in target or extra in target) and not any(importlib.util.find_spec(m) for m in modules):
                raise ConfigError(
                    f"logger={name} needs the {modules[0]} package, which is not installed: "
                    f'pip install -e ".[{extra}]" (or pick another logger, e.g. logger=csv).'
                )


def check_argument_types(cfg: DictConfig) -> None:
    """Numbers given as words (`model.optimizer.lr=abc`) and keys that what is built cannot take
    (`+trainer.max_epoch=1`) would fail deep inside training, or when it is built, in a traceback.

    Every object built from the config (a node with `_target_`) is checked against the signature of what
    it builds: each key must be one of its parameters (unless it takes **kwargs), and a parameter whose
    default or annotation is a number must get a number.
    """
    for key in ("data", "model", "callbacks", "logger", "trainer"):
        if cfg.get(key) is not None:
            _check_node(cfg[key], key)


def _check_node(node: Any, path: str) -> None:
    if isinstance(node, ListConfig):
        for index, item in enumerate(node):
            _check_node(item, f"{path}[{index}]")
        return
    if not isinstance(node, DictConfig):
        return
    parameters = _parameters(node.get("_target_")) if "_target_" in node else None
    for key, value in node.items():
        if parameters is not None and not str(key).startswith("_") and key not in parameters:
            raise ConfigError(_not_a_parameter(f"{path}.{key}", value, node._target_, parameters))
        if isinstance(value, DictConfig | ListConfig):
            _check_node(value, f"{path}.{key}")
        elif isinstance(value, str) and parameters and key in parameters and _wants_number(parameters[key]):
            raise ConfigError(_not_a_number(f"{path}.{key}", value, parameters[key]))
        elif isinstance(value, float) and parameters and key in parameters and _wants_whole(parameters[key]):
            source = typed_as(f"{path}.{key}", value)
            raise ConfigError(f"{source}={value} must be a whole number: e.g. {source}={int(value)}.")


def _parameters(target: Any) -> dict[str, inspect.Parameter] | None:
    """The parameters `target` takes by name; None where it takes any (**kwargs) or cannot be located."""
    try:
        parameters = dict(inspect.signature(_located(target)).parameters)
    except (TypeError, ValueError):  # not located (None), or no signature to read (some builtins)
        return None
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return None
    return {name: p for name, p in parameters.items() if p.kind != p.VAR_POSITIONAL}


def _not_a_parameter(key: str, value: Any, target: str, parameters: dict[str, inspect.Parameter]) -> str:
    parent, _, name = key.rpartition(".")
    (close,) = difflib.get_close_matches(name, parameters, n=1) or [None]
    if close is not None:
        return f"{key}={value} is not a parameter of {target}: did you mean {parent}.{close}={value}?"
    return f"{key}={value} is not a parameter of {target}, which takes {', '.join(parameters) or 'none'}."


# A parameter's annotation that takes whole numbers only, or any number (as a type, or as text under
# `from __future__ import annotations`)
WHOLE = (int, "int", int | None, "int | None")
NUMBERS = (*WHOLE, float, "float", float | None, "float | None")


def _wants_number(parameter: inspect.Parameter) -> bool:
    default = parameter.default
    if isinstance(default, bool):
        return False
    return isinstance(default, int | float) or parameter.annotation in NUMBERS


def _wants_whole(parameter: inspect.Parameter) -> bool:
    """A parameter that takes only whole numbers: an int default, or annotated int (or int | None)."""
    default = parameter.default
    if isinstance(default, bool):
        return False
    return isinstance(default, int) or parameter.annotation in WHOLE


def _not_a_number(key: str, value: str, parameter: inspect.Parameter) -> str:
    default = parameter.default
    example = str(default) if isinstance(default, int | float) else "1"
    source = typed_as(key, value)
    if source != key:  # `T_max: ${trainer.max_epochs}`: name what the user typed, trainer.max_epochs=three
        return f"{source}={value} must be a number ({key} takes its value): e.g. {source}={example}."
    return f"{key}={value} must be a number: e.g. {key}={example}."


# The config as composed, before its interpolations were resolved (harness/launch.py keeps it for this run).
_composed: DictConfig | None = None


def keep_composed(cfg: DictConfig) -> None:
    """Called before the config is resolved, so that a bad value can be traced to the key it was typed for."""
    global _composed
    _composed = copy.deepcopy(cfg)


def in_config(key: str) -> bool:
    """Whether the composed config has `key` (e.g. model.optimizer.lr)."""
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(_composed, parent) if _composed is not None and parent else _composed
    return isinstance(node, DictConfig) and name in node


def typed_as(key: str, value: Any) -> str:
    """The key that `key` takes `value` from through interpolations (`${trainer.max_epochs}`), else `key`: what a
    user typed to set it."""
    source = key
    for _ in range(10):  # a chain of references; a cycle would not have resolved
        parent, _, name = source.rpartition(".")
        node = OmegaConf.select(_composed, parent) if _composed is not None and parent else _composed
        if not isinstance(node, DictConfig) or name not in node or not OmegaConf.is_interpolation(node, name):
            break
        reference = re.fullmatch(r"\$\{([\w.]+)\}", str(OmegaConf.to_container(node)[name]))  # as written
        if reference is None:  # a resolver (`${oc.env:X}`) or text around it: `key` is as close as it gets
            break
        source = reference.group(1)
    # Kept from an earlier run in this process (a notebook), the composed config may not be this config's.
    return source if source != key and OmegaConf.select(_composed, source) == value else key


def misspelt_key(error: Exception, overrides: list[str]) -> str | None:
    """For Hydra's error on an override of a key that is not in the config (`trainer.max_epoch=1`), one sentence
    naming the nearest key there is; Hydra's own advice, `+trainer.max_epoch=1`, fails when the trainer is built."""
    cause = error.__cause__
    if not isinstance(cause, ConfigAttributeError | ConfigKeyError) or not isinstance(cause.parent_node, DictConfig):
        return None
    missing = str(cause.full_key)  # the first unknown part: model.optimzer for model.optimzer.lr=1
    typed = [o for o in overrides if o.partition("=")[0] == missing or o.startswith(f"{missing}.")]
    if not typed:
        return None
    key, _, value = typed[0].partition("=")
    parent = missing.rpartition(".")[0]
    keys = [str(k) for k in cause.parent_node.keys() if not str(k).startswith("_")]  # not _target_
    (close,) = difflib.get_close_matches(str(cause.key), keys, n=1) or [None]
    if close is None:
        return f"{key} is not a key of the config; {parent or 'its top level'} has {', '.join(keys)}."
    suggestion = (f"{parent}.{close}" if parent else close) + key[len(missing) :]
    return f"{key} is not a key of the config: did you mean {suggestion}={value}?"

"""What a run was: the overrides it goes on with, each command's across resumes, a readable name built from them, its
config printed once.

Gap this fills: Hydra's .hydra/overrides.yaml holds the overrides of the last command only, and Hydra names runs by
time alone. summary.json keeps the overrides a run goes on with and those of every command that ran it
(harness/callbacks/run_summary.py), and the run's name, unless `run_name=...` sets one, is built from them:
`trainer=ddp lr=0.001`. A checkpoint inside a run folder is evaluated (eval.py) and sampled (generate.py) with the
model and data configs of the run that wrote it.
"""

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)

# Overrides that say where or how a run is kept, not what it trains: left out of its name and of compare.py's table.
NOT_SETTINGS = ("ckpt_path", "run_name", "tags", "extras.", "hydra.", "hydra/", "paths.", "logger", "callbacks.bench")
# Of those, what names a run: a continuation that does not give them anew keeps them.
LABELS = ("run_name", "tags")


def key(override: str) -> str:
    """`+model.optimizer.lr=1e-3` -> `model.optimizer.lr`."""
    return override.split("=", 1)[0].lstrip("+~")


def settings(overrides: list[str]) -> list[str]:
    """The overrides that change what a run trains (not NOT_SETTINGS), without a leading `+`."""
    return [o.lstrip("+") for o in overrides if not key(o).startswith(NOT_SETTINGS)]


def continued(earlier: list[str], later: list[str]) -> list[str]:
    """The overrides a run goes on with when a later command continues it: the later command's, its `ckpt_path` left
    out. A setting the command leaves out is the config's again (the continuation warns so), so it is not the run's;
    the run's `run_name` and `tags` are labels, not settings: kept unless the command gives others."""
    given = {key(o) for o in later}
    labels = [o for o in earlier if key(o) in LABELS and key(o) not in given]
    return labels + [o for o in later if key(o) != "ckpt_path"]


def run_name(earlier: dict[str, Any], overrides: list[str]) -> str:
    """The run's name when this command gives none: the one typed for it before (`run_name=...` in `earlier`, the
    summary of the run it continues), else one built from the settings it goes on with."""
    if earlier.get("name") and any(key(o) == "run_name" for o in earlier.get("overrides", [])):
        return earlier["name"]
    return readable_name(continued(earlier.get("overrides", []), overrides))


def typed_overrides() -> list[str]:
    """This command's overrides as typed (`lr=${oc.env:LR}` stays so: not resolved, not a secret it reads); none
    outside a Hydra run (a DDP rank that Lightning started: rank zero records them)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return []
    return list(OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))  # type: ignore[arg-type]


def earlier_run(summary_path: Path) -> dict[str, Any]:
    """The summary.json of the run this command continues; empty for a new run."""
    return json.loads(summary_path.read_text()) if summary_path.is_file() else {}


def left_out(earlier: list[str], overrides: list[str]) -> list[str]:
    """The earlier overrides whose keys this command does not set: a continued run does not get them."""
    given = {key(o) for o in overrides}
    return [o for o in earlier if key(o) not in given and not key(o).startswith(NOT_SETTINGS)]  # as typed: `+` kept


def changed(earlier: list[str], overrides: list[str]) -> list[str]:
    """The settings this command gives another value than the run it continues was started with: `old -> new`."""
    before = {key(o): o.lstrip("+") for o in earlier if not key(o).startswith(NOT_SETTINGS)}
    now = {key(o): o.lstrip("+") for o in overrides}
    return [f"{before[k]} -> {now[k]}" for k in before if k in now and now[k] != before[k]]


def added(earlier: list[str], overrides: list[str]) -> list[str]:
    """The settings this command gives that the run it continues was started without."""
    before = {key(o) for o in earlier}
    return [o.lstrip("+") for o in overrides if key(o) not in before and not key(o).startswith(NOT_SETTINGS)]


def continued_differently(earlier: list[str], overrides: list[str]) -> str | None:
    """The sentence that says how this command sets up the run it continues otherwise than it was started."""
    missing, new, other = left_out(earlier, overrides), added(earlier, overrides), changed(earlier, overrides)
    differences = [f"leaves out {' '.join(missing)}"] if missing else []
    differences += [f"adds {' '.join(new)}"] if new else []
    differences += [f"changes {', '.join(other)}"] if other else []
    if not differences:
        return None
    if earlier:
        started, again = f"with {' '.join(earlier)}", "type its overrides again"
    else:
        started, again = "with no overrides", "leave these out"
    return (
        f"This continues a run set up {started}; this command {' and '.join(differences)}, so the run goes on that "
        f"way. To continue it as it was set up, {again}."
    )


# What must match the checkpoint; the trainer may differ (e.g. eval on CPU).
TRAINED_GROUPS = ("model", "data")


def use_training_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Take the model and data configs of the run that wrote `ckpt_path`, then the command line's on top."""
    ckpt_path = cfg.get("ckpt_path")
    run_config = next(
        (d / ".hydra" / "config.yaml" for d in Path(str(ckpt_path)).resolve().parents if (d / ".hydra").is_dir()),
        None,
    )
    if not ckpt_path or run_config is None or not run_config.is_file():
        return cfg
    trained = OmegaConf.load(run_config)
    keys = [key(o) for o in overrides]
    for group in TRAINED_GROUPS:
        if group in keys or group not in trained:  # `model=other` on the command line: the user's choice
            continue
        given = {k: as_written(cfg, k) for k in keys if k.startswith(f"{group}.")}
        cfg[group] = trained[group]
        for name, value in given.items():
            OmegaConf.update(cfg, name, value, force_add=True)
    log.info(f"Model and data configs from the run that wrote the checkpoint: {run_config.parents[1]}")
    return cfg


def as_written(cfg: DictConfig, dotted: str) -> Any:
    """The value at `dotted` as the command line gave it: a `${...}` kept, to be resolved (or refused in one
    sentence) with the rest of the config."""
    parent, _, name = dotted.rpartition(".")
    container = OmegaConf.select(cfg, parent)
    node = container._get_node(name) if isinstance(container, DictConfig) else None
    if node is None:
        return OmegaConf.select(cfg, dotted)
    return node if isinstance(node, DictConfig | ListConfig) else node._value()


def use_training_run(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """As use_training_config, where `ckpt_path` may also be a run folder: its best checkpoint (its summary.json's),
    or its newest where it has no best."""
    folder = Path(str(cfg.get("ckpt_path")))
    if (folder / ".hydra").is_dir():
        summary = folder / "summary.json"
        best = json.loads(summary.read_text()).get("best_ckpt_path") if summary.is_file() else None
        cfg.ckpt_path = best or str(folder / "checkpoints" / "last.ckpt")
    return use_training_config(cfg, overrides)


def readable_name(overrides: list[str]) -> str:
    """`trainer=ddp model.optimizer.lr=1e-3` -> "trainer=ddp lr=0.001"-like: each setting by the last part of
    its key (the whole key where two would share one); "defaults" for a run with none."""
    chosen = settings(overrides)
    short = [key(o).rpartition(".")[2] for o in chosen]
    parts = []
    for override, name in zip(chosen, short, strict=True):
        if "=" not in override or short.count(name) > 1:  # `~callbacks.x`, or two keys ending alike
            parts.append(override)
        else:
            parts.append(f"{name}={override.split('=', 1)[1]}")
    return _without_interpolations(" ".join(parts)) or "defaults"


def _without_interpolations(text: str) -> str:
    """`lr=${oc.env:LR}` -> `lr=<oc.env:LR>`: a name is text wherever it goes (loggers, configs that interpolate
    it), never resolved again, so a secret an override reads from the environment never lands in it."""
    while (inner := re.search(r"\$\{([^${}]*)\}", text)) is not None:
        text = text[: inner.start()] + f"<{inner[1]}>" + text[inner.end() :]
    return text


def print_config(cfg: object) -> None:
    """The composed config as a tree, one branch per top-level key, printed once at the start of a run."""
    from omegaconf import OmegaConf
    from rich import get_console
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for name in cfg:  # type: ignore[attr-defined]
        value = cfg._get_node(name)  # type: ignore[attr-defined]  # as written: `${oc.env:...}` not read
        text = OmegaConf.to_yaml(value) if OmegaConf.is_config(value) else f"{value._value()}\n"
        tree.add(name).add(Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default", word_wrap=True))
    # A file or a pipe (a SLURM log, `| tee`) is not 80 columns wide: each line whole, class paths not cut in two.
    console = get_console() if sys.stdout.isatty() else Console(width=100_000)
    console.print(tree)

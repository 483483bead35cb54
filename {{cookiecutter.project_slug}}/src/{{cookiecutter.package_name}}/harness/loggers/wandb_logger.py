"""Weights & Biases that never crashes a run for want of a login.

Gap this fills: WandbLogger prompts for (or fails without) an API key. Here a run with no key
configured, or with WANDB_MODE=offline, logs offline into its output folder with a one-line
notice; `wandb sync <folder>` uploads it later.

Also: WandbLogger starts a new W&B run in every process, so a run continued in its folder
(`ckpt_path=last`, a requeued SLURM job) showed up as a second run. Here the run id is kept in
<save_dir>/wandb/run_id on first start and passed again (with WandbLogger's resume="allow"), online
or offline, so a preempted job is one run with one curve. Steps the resumed run logs again (those after
its checkpoint) appear twice in W&B's history.
"""

import netrc
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.rank_zero import rank_zero_only


def _api_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None  # where `wandb login` stores the key
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def _run_id(save_dir: str) -> str | None:
    """The W&B run id of the run folder `save_dir`: the one stored there, or a new one, stored."""
    if rank_zero_only.rank != 0:
        return None  # only rank zero starts a W&B run; the others must not write the file
    path = Path(save_dir) / "wandb" / "run_id"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(4)
    path.write_text(run_id + "\n")
    return run_id


def wandb_logger(offline: bool = False, tags: Sequence[str] | None = None, **kwargs: Any) -> WandbLogger:
    mode = os.environ.get("WANDB_MODE", "")
    if not offline and (mode in ("offline", "dryrun") or not _api_key_configured()):
        reason = f"WANDB_MODE={mode}" if mode else "no API key configured (run `wandb login` to go online)"
        rank_zero_info(
            f"wandb: logging offline, {reason}; upload later with `wandb sync {kwargs.get('save_dir', '.')}/wandb`."
        )
        offline = True
    if kwargs.get("save_dir") and not (kwargs.get("id") or kwargs.get("version")):
        kwargs["id"] = _run_id(kwargs["save_dir"])
    logger = WandbLogger(offline=offline, tags=list(tags or []), **kwargs)  # a list: wandb refuses Hydra's ListConfig
    # Lightning passes anonymous=None, which wandb answers with a warning nobody can act on.
    logger._wandb_init.pop("anonymous", None)
    return logger

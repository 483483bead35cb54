"""Weights & Biases that never crashes a run for want of a login.

Gap this fills: WandbLogger prompts for (or fails without) an API key. Here a run with no key
configured, or with WANDB_MODE=offline, logs offline into its output folder with a one-line
notice; `wandb sync <folder>` uploads it later.
"""

import netrc
import os
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info


def _api_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None  # where `wandb login` stores the key
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(offline: bool = False, **kwargs: Any) -> WandbLogger:
    mode = os.environ.get("WANDB_MODE", "")
    if not offline and (mode in ("offline", "dryrun") or not _api_key_configured()):
        reason = f"WANDB_MODE={mode}" if mode else "no API key configured (run `wandb login` to go online)"
        rank_zero_info(
            f"wandb: logging offline, {reason}; upload later with `wandb sync {kwargs.get('save_dir', '.')}/wandb`."
        )
        offline = True
    return WandbLogger(offline=offline, **kwargs)

"""Keep a run's console to the progress bar and lines worth reading.

Gap this fills: Lightning, PyTorch and wandb print, on every run, lines nobody can act on: advertising
tips, warnings about their own use of each other's deprecated APIs, banners. Lightning has no setting for
these, so `quiet()` (the first thing train.py and eval.py do, in every process) silences each one by its
text: Python warnings by message, Lightning's log lines by message; wandb by its own setting. Everything
else, errors and warnings about the user's own settings included, still prints.
"""

import logging
import multiprocessing
import os
import re
import sys
import warnings

# Python warnings that are the libraries' business, not the user's (the start of each message; no `,`
# or `:` in them, so that they can travel in PYTHONWARNINGS).
IGNORED_WARNINGS = (
    # Lightning, on every run where SLURM's `srun` is installed but not used (login nodes, laptops with
    # SLURM tools): the scripts in slurm/ use srun wherever it matters.
    "The `srun` command is available on your system but is not used",
    # Lightning's own use of torch APIs that newer torch deprecates.
    "`isinstance(treespec",  # ... LeafSpec)` is deprecated
    "torch.distributed.nn.functional.all_gather is deprecated",
    # Lightning under DDP, whenever it tests or validates: ranks get equal shares, so up to (ranks - 1)
    # samples count twice; nothing to change short of evaluating on one device.
    "Using `DistributedSampler` with the dataloaders",
    # ModelCheckpoint, whenever a run continues in its own folder (ckpt_path=last), which is the point.
    "Checkpoint directory",  # ... exists and is not empty
    # torchdata 0.11 on torch 2.13, for every StatefulDataLoader it builds: torchdata's own business.
    "'set_vital' is deprecated",
    # Lightning, when an epoch has fewer batches than trainer.log_every_n_steps (a search's large batches):
    # the steps count on across epochs, so the training curves are logged all the same.
    "The number of training batches",  # ... is smaller than the logging interval
)

# Lightning's info lines (rank_zero_info) that say nothing about this run.
IGNORED_LOG_LINES = (
    "💡 Tip:",  # advertising for litlogger and litmodels
    "TPU available: False",
    # configs/callbacks/model_summary.yaml's summary replaces Lightning's default one, as it should.
    "Trainer already configured with model summary callbacks",
)


def log_in_spawned_process() -> None:
    """In a process that Lightning started with multiprocessing (trainer=ddp_spawn), print INFO lines as the
    first process does (the GPT's samples, for one): Hydra set up logging in the first process only, and a
    process whose root logger has no handler prints nothing below WARNING."""
    if multiprocessing.parent_process() is not None and not logging.getLogger().handlers:
        form = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's, to stdout as Hydra's
        logging.basicConfig(level=logging.INFO, format=form, stream=sys.stdout)


def quiet() -> None:
    """Silence the lines above in this process and in every process it starts.

    Processes that Lightning starts with multiprocessing (ddp_spawn) do not run quiet() themselves, so
    the warning filters also go into PYTHONWARNINGS, which every Python child reads when it starts.
    """
    for message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message))
    inherited = os.environ.get("PYTHONWARNINGS", "")
    ours = ",".join(f"ignore:{message}" for message in IGNORED_WARNINGS)
    if ours not in inherited:
        os.environ["PYTHONWARNINGS"] = f"{inherited},{ours}" if inherited else ours
    # lightning.pytorch logs through the first, lightning.fabric alone through the second.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_worth_reading)
    # wandb's banner and footer repeat what the run folder and the offline notice of harness/loggers/wandb_logger.py
    # say, and its footer writes color codes into files and pipes. WANDB_SILENT=false brings them back.
    os.environ.setdefault("WANDB_SILENT", "true")
    # matplotlib (compare.py's plots; some libraries import it) says at INFO when it builds its font cache.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


def _worth_reading(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(IGNORED_LOG_LINES)

"""Checkpoint and requeue when SLURM warns of preemption or the time limit (SIGUSR1), safely under DDP.

Gap this fills: Lightning's own auto-requeue saves the checkpoint inside the signal handler. Ranks get
the signal at different points of a training step, so under DDP the checkpoint's collectives can meet
another rank's gradient all-reduce, and the job hangs until its time limit (seen on the test cluster).
Here the handler only notes the signal. Every `check_every_n_batches` training batches the ranks agree
on it (one tiny all-reduce), save hpc_ckpt_<n>.ckpt in the run folder together, and rank zero requeues
the job. The requeued job comes back to the same folder and resumes from it (ckpt_path=last, utils/resume.py).
Installing this handler first also keeps Lightning from installing its own.
"""

import os
import signal
import subprocess
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


class SlurmRequeue(Callback):
    def __init__(self, signal_name: str = "SIGUSR1", check_every_n_batches: int = 10) -> None:
        self.signum = signal.Signals[signal_name]
        self.check_every_n_batches = check_every_n_batches
        self._previous_handler: Any = None
        self._active = False
        self._signalled = False
        self._batches = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and SLURMEnvironment.detect():
            self._previous_handler = signal.signal(self.signum, self._note_signal)
            self._active = True

    def _note_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signalled = True

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._batches += 1
        if not self._active or self._batches % self.check_every_n_batches:
            return
        if not trainer.strategy.reduce_boolean_decision(self._signalled, all=False):
            return
        self._active = False  # once per job: the next run of the job starts with a fresh callback
        run_dir = Path(trainer.default_root_dir)
        number = max((int(p.stem.rsplit("_", 1)[1]) for p in run_dir.glob("hpc_ckpt_*.ckpt")), default=0) + 1
        path = trainer.strategy.broadcast(run_dir / f"hpc_ckpt_{number}.ckpt")  # rank zero's view of the folder
        rank_zero_info(f"{self.signum.name} from SLURM: saving {path} and requeueing the job.")
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            job = os.environ["SLURM_JOB_ID"]
            if "SLURM_ARRAY_JOB_ID" in os.environ:
                job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
            # Said before, not after: requeueing ends this job, and can kill scontrol (our child) with it.
            rank_zero_info(f"Requeueing SLURM job {job}; it will resume from {path}.")
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
            if result.returncode > 0:
                rank_zero_warn(f"Could not requeue SLURM job {job}: {result.stderr.strip()}")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(self.signum, self._previous_handler)
            self._previous_handler = None

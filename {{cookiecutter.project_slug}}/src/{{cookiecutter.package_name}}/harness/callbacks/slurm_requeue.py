"""Checkpoint and requeue when SLURM warns of preemption or the time limit (SIGUSR1), safely under DDP.

Gap this fills: Lightning's own auto-requeue saves the checkpoint inside the signal handler. Ranks get
the signal at different points of a training step, so under DDP the checkpoint's collectives can meet
another rank's gradient all-reduce, and the job hangs until its time limit (seen on the test cluster).
Here the handler only notes the signal (harness/cluster.py installs it when the process starts, which also
keeps Lightning from installing its own, in every stage). The ranks agree on it (one tiny all-reduce) every
`check_every_n_batches` batches of training, validation and test (a validation within fit first ends), at each
training epoch's end and at the end of training. In `fit` they then save hpc_ckpt_<n>.ckpt in the run folder
together, and rank zero removes the earlier ones; in any stage rank zero requeues the job. The requeued job
comes back to the same folder and resumes from its newest checkpoint (ckpt_path=last, harness/resume.py); a
run whose training had finished resumes at its end and tests again.
"""

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from {{cookiecutter.package_name}}.harness import cluster


class SlurmRequeue(Callback):
    def __init__(self, signal_name: str = "SIGUSR1", check_every_n_batches: int = 10) -> None:
        self.signum = signal.Signals[signal_name]
        self.check_every_n_batches = check_every_n_batches
        self._active = cluster.watch_requeue_signal(self.signum)  # False outside SLURM: then nothing to do
        if not self._active:  # nothing to look at each batch: Lightning skips a hook that is None
            for hook in ("on_train_batch_end", "on_validation_batch_end", "on_test_batch_end"):
                setattr(self, hook, None)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        self._on_batch_end(trainer, *args, **kwargs)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._act_if_signalled(trainer)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._act_if_signalled(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        # Not during fit: Lightning resumes a checkpoint saved in the middle of a validation wrongly (the rest of
        # that validation skipped and, at an epoch's end, the next epoch's training too: a job preempted there ended
        # "finished" an epoch short; Lightning's issues 19549, 20288). Fit acts once the validation is over: at the
        # next training check or the epoch's end.
        if trainer.state.fn != "fit":
            self._on_batch_end(trainer, *args, **kwargs)

    def on_test_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        self._on_batch_end(trainer, *args, **kwargs)

    def _on_batch_end(self, trainer: L.Trainer, outputs: Any, batch: Any, batch_idx: int, *args: Any) -> None:
        if not trainer.sanity_checking and (batch_idx + 1) % self.check_every_n_batches == 0:
            self._act_if_signalled(trainer)

    def _act_if_signalled(self, trainer: L.Trainer) -> None:
        if not self._active:
            return
        # Every rank reaches this at the same batch, so this all-reduce is safe.
        if not trainer.strategy.reduce_boolean_decision(cluster.requeue_signal_pending(), all=False):
            return
        cluster.requeue_signal_handled()  # once per job: the requeued job starts a fresh process
        resume_from = "its newest checkpoint"
        if trainer.state.fn == "fit":
            run_dir = Path(trainer.default_root_dir)
            number = max((int(p.stem.rsplit("_", 1)[1]) for p in run_dir.glob("hpc_ckpt_*.ckpt")), default=0) + 1
            path = trainer.strategy.broadcast(run_dir / f"hpc_ckpt_{number}.ckpt")  # rank zero's view of the folder
            rank_zero_info(f"{self.signum.name} from SLURM: saving {path} and requeueing the job.")
            trainer.save_checkpoint(path)
            if trainer.is_global_zero:  # saved whole (saves are atomic): the earlier ones only take space
                for earlier in run_dir.glob("hpc_ckpt_*.ckpt"):
                    if earlier != path:
                        shutil.rmtree(earlier) if earlier.is_dir() else earlier.unlink()
            resume_from = str(path)
        if trainer.is_global_zero:
            job = os.environ["SLURM_JOB_ID"]
            if "SLURM_ARRAY_JOB_ID" in os.environ:
                job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
            # Said before, not after: requeueing ends this job, and can kill scontrol (our child) with it.
            rank_zero_info(f"Requeueing SLURM job {job}; it will resume from {resume_from}.")
            result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
            if result.returncode > 0:
                rank_zero_warn(f"Could not requeue SLURM job {job}: {result.stderr.strip()}")

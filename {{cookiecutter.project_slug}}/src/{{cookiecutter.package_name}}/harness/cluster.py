"""What the cluster (SLURM or torchrun) says about this process, for configs and the entry point.

Lightning reads the same variables once the Trainer exists; these are needed earlier, to name the
run folder and to fill `trainer.num_nodes` / `trainer.devices` in configs/trainer/ddp_multinode.yaml.
"""

import os
import signal
import sys
import threading


def slurm_managed() -> bool:
    """True inside an `srun` step or a batch job, as Lightning's SLURMEnvironment sees it
    (an interactive `salloc` shell is not: there the user runs `srun` or plain python)."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def global_rank() -> int:
    """Rank given by an external launcher (torchrun's RANK, srun's SLURM_PROCID); 0 when there is none."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if "SLURM_STEP_ID" in os.environ and slurm_managed():
        return int(os.environ.get("SLURM_PROCID", "0"))
    return 0


def resolve(key: str, default: str | int = 1) -> int | str:
    """`${cluster:num_nodes,1}` and `${cluster:devices,auto}`: the allocation's shape, else the default."""
    if "LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        per_node = int(os.environ["LOCAL_WORLD_SIZE"])
        shape = {"num_nodes": int(os.environ["WORLD_SIZE"]) // per_node, "devices": per_node}
    elif "SLURM_STEP_NUM_NODES" in os.environ and "SLURM_STEP_NUM_TASKS" in os.environ:  # inside srun
        nodes = int(os.environ["SLURM_STEP_NUM_NODES"])
        shape = {"num_nodes": nodes, "devices": int(os.environ["SLURM_STEP_NUM_TASKS"]) // nodes}
    else:
        return default
    if key not in shape:
        raise ValueError(f"cluster resolver: unknown key {key!r}; use num_nodes or devices.")
    return shape[key]


# SLURM's warning before preemption or the time limit (slurm/*.sbatch: --signal=SIGUSR1@90). Noted from the
# start of the process: its default action ends the process, so one arriving during imports or the
# rendezvous would kill the job with nothing saved. harness/callbacks/slurm_requeue.py acts on it.
_requeue = {"received": False, "handled": False}


def watch_requeue_signal(signum: int = signal.SIGUSR1) -> bool:
    """Under SLURM, note `signum` instead of dying from it; True if the signal is watched.

    Lightning installs its own requeue handler (which saves from inside the handler, unsafe under DDP)
    only where no handler is set yet: this one, installed first, stays for every stage of the run.
    """
    if not slurm_managed() or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signum) is not _note_requeue_signal:
        signal.signal(signum, _note_requeue_signal)
    return True


def _note_requeue_signal(signum: int, frame: object) -> None:
    _requeue["received"] = True


def requeue_signal_pending() -> bool:
    return _requeue["received"] and not _requeue["handled"]


def requeue_signal_handled() -> None:
    _requeue["handled"] = True


def warn_if_requeue_signal_unhandled() -> None:
    if requeue_signal_pending() and global_rank() == 0:
        print(
            "WARNING: SLURM's requeue signal arrived after the run's last chance to act on it: "
            "the job was not requeued (the run had finished or failed).",
            file=sys.stderr,
        )


def end_process_group() -> None:
    """Close the process group a run opened, on every rank, before Python exits or the next run starts.

    Gap this fills: Lightning leaves the group open, and torch's destroy_process_group is what joins gloo's
    worker threads. Left running, such a thread can drop the last tensor of an all-reduce while the
    interpreter tears down; taking the GIL then ends the thread inside a noexcept destructor and aborts the
    process ("terminate called without an active exception", exit -6 under torchrun). Called after each run
    (harness/launch.py) and at exit of every process that imports this package (ddp_spawn's workers too).
    """
    if "torch.distributed" not in sys.modules:  # nothing was started (e.g. the config was refused)
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

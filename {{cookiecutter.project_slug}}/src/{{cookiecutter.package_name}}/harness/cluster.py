"""What the cluster (SLURM, torchrun or mpirun) says about this process, for configs and the entry point.

Lightning reads the same facts once the Trainer exists; these are needed earlier, to name the
run folder and to fill `trainer.num_nodes` / `trainer.devices` in configs/trainer/ddp_multinode.yaml.
Where several launchers' variables are present, torchrun's win, then SLURM's, then MPI's (as in Lightning).
"""

import collections
import functools
import gc
import os
import signal
import socket
import sys
import threading
import time
import uuid
import weakref


def slurm_managed() -> bool:
    """True inside an `srun` step or a batch job, as Lightning's SLURMEnvironment sees it
    (an interactive `salloc` shell is not: there the user runs `srun` or plain python)."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def global_rank() -> int:
    """Rank given by an external launcher (torchrun's RANK, srun's SLURM_PROCID, mpirun's); 0 when there is none."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if "SLURM_STEP_ID" in os.environ and slurm_managed():
        return int(os.environ.get("SLURM_PROCID", "0"))
    if (world := mpi_world()) is not None:
        return world[0]
    return 0


def torchrun_standalone_start() -> float | None:
    """When `torchrun --standalone` started (seconds since the epoch), the same on every rank and restart; None
    for other launchers, or where /proc is missing.

    Standalone makes up a UUID for its run id, which would name the folder without sorting by date. Its ranks are
    on one machine and are all children of the torchrun process, so they read the same start time from /proc
    (whole seconds: the boot time is whole, and ticks are counted from it).
    """
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    try:
        uuid.UUID(run_id)
        with open(f"/proc/{os.getppid()}/stat") as stat, open("/proc/stat") as system:
            ticks = int(stat.read().rpartition(")")[2].split()[19])  # field 22, starttime (the name may hold ")")
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    except (ValueError, OSError, StopIteration):
        return None
    return boot + ticks // os.sysconf("SC_CLK_TCK")


# The rank and number of ranks that mpirun / mpiexec give each process: Open MPI's, then MPICH's and Intel MPI's.
MPI_VARIABLES = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"))


def mpi_world() -> tuple[int, int] | None:
    """(rank, number of ranks) where mpirun started this process among others, from mpirun's variables:
    known before mpi4py is imported, and without it. None for one process, and under torchrun."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        return None
    for rank, size in MPI_VARIABLES:
        if rank in os.environ and int(os.environ.get(size, "1")) > 1:
            return int(os.environ[rank]), int(os.environ[size])
    return None


def mpi_launched() -> bool:
    """Ranks started by mpirun, as Lightning sees them: its MPIEnvironment, not SLURM's (SLURM wins inside a job)."""
    return mpi_world() is not None and not slurm_managed()


@functools.cache
def mpi_hosts() -> tuple[str, ...]:
    """The host of every rank of this mpirun job, in rank order. A collective: every rank calls it, once.

    The same grouping by host name as Lightning's MPIEnvironment, which numbers nodes and local ranks by it."""
    from mpi4py import MPI

    return tuple(MPI.COMM_WORLD.allgather(socket.gethostname()))


def agreed(value: str) -> str:
    """Rank zero's `value` on every rank of an mpirun job (a broadcast); elsewhere `value` itself.

    Gap this fills: mpirun gives its ranks no id of the job they share, and they start in different
    seconds, so a run folder named from the clock alone would be one folder per rank."""
    if not mpi_launched():
        return value
    from mpi4py import MPI

    return MPI.COMM_WORLD.bcast(value, root=0)


def ask_mpi_only_under_mpirun() -> None:
    """Lightning asks MPI whether mpirun started this process only where mpirun's variables say so.

    Gap this fills: once mpi4py is installed, Lightning initializes MPI in every process that builds a Trainer
    (its MPIEnvironment.detect); without mpirun that is MPI's singleton start, which hangs with some MPI
    builds (Lightning issue #20049). Called before each Trainer is built (harness/strategies/__init__.py).
    """
    from lightning.fabric.plugins.environments import MPIEnvironment

    if getattr(MPIEnvironment.detect, "only_under_mpirun", False):
        return
    lightning_detect = MPIEnvironment.detect

    def detect() -> bool:
        return mpi_world() is not None and lightning_detect()

    detect.only_under_mpirun = True
    MPIEnvironment.detect = staticmethod(detect)


# How often the ranks look together at rank zero's note of SIGTERM (see below): about once a second of training,
# and at least once every 100 batches (a pace that slows tenfold at once delays a look by 100 slow batches at most).
SIGTERM_LOOK_S = 1.0
SIGTERM_LOOK_BATCHES = 100


def stop_together_on_sigterm() -> None:
    """SIGTERM (`kill`, a container stopping, a scheduler without --signal) stops every rank at the same step.

    Gaps this fills:
    - Lightning 2.6's SIGTERM handler (its pull request 20825) broadcasts from inside the handler, wherever each rank
      is; a rank caught in its gradient all-reduce then meets that broadcast, and both ranks wait forever (a 2-rank
      run hung in about one SIGTERM of two: tests/harness/kill_campaign.py). Here the handler only notes the signal.
    - Lightning then broadcasts rank zero's note before every training batch, a collective and a wait for the device
      each step (its issue 21487): 20 % of a small step on 2 CPU ranks here, and on a GPU it stops the host from
      queueing the next step's work. Here the ranks look together about once every SIGTERM_LOOK_S seconds instead:
      each look carries rank zero's note and how many batches to the next look (from rank zero's pace), so every
      rank looks at the same batch and all leave at the start of the same batch, about a second after the signal
      (SLURM and Kubernetes give 30 s before they kill).
    Called once, before any Trainer (harness/strategies/__init__.py).
    """
    import torch
    from lightning.pytorch.loops.training_epoch_loop import _TrainingEpochLoop
    from lightning.pytorch.trainer.connectors.signal_connector import _SignalConnector
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if getattr(_SignalConnector._sigterm_notifier_fn, "without_collective", False):
        return

    def note_sigterm(self, signum, frame) -> None:
        if not self.received_sigterm and self.trainer.strategy.launcher is not None:
            self.trainer.strategy.launcher.kill(signum)  # the ranks it started, as Lightning does
        self.received_sigterm = True

    def look_now_and_then(loop: _TrainingEpochLoop) -> None:
        pace = loop.__dict__.setdefault("_sigterm_pace", {"left": 0, "batches": 0, "since": None})
        pace["batches"] += 1
        pace["left"] -= 1
        if pace["left"] > 0:
            return
        now = time.monotonic()
        batches_per_look = 1  # until a pace is known
        if pace["since"] is not None:
            batches_per_look = int(pace["batches"] / max(now - pace["since"], 1e-6) * SIGTERM_LOOK_S)
        noted = int(loop.trainer.received_sigterm)
        batches_per_look = min(max(batches_per_look, 1), SIGTERM_LOOK_BATCHES)
        look = torch.tensor([noted, batches_per_look], device=loop.trainer.strategy.root_device)
        torch.distributed.broadcast(look, src=0)  # every rank: rank zero's note and pace
        noted, pace["left"] = look.tolist()
        pace["batches"], pace["since"] = 0, now
        if noted:
            torch.distributed.barrier()  # every rank leaves here, at this batch
            raise SIGTERMException()

    note_sigterm.without_collective = True
    _SignalConnector._sigterm_notifier_fn = note_sigterm
    _TrainingEpochLoop._broadcast_sigterm_tensor = look_now_and_then


def resolve(key: str, default: str | int = 1) -> int | str:
    """`${cluster:num_nodes,1}` and `${cluster:devices,auto}`: the launcher's shape (srun, torchrun, mpirun), else
    the default."""
    if "LOCAL_WORLD_SIZE" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        per_node = int(os.environ["LOCAL_WORLD_SIZE"])
        shape = {"num_nodes": int(os.environ["WORLD_SIZE"]) // per_node, "devices": per_node}
    elif "SLURM_STEP_NUM_NODES" in os.environ and "SLURM_STEP_NUM_TASKS" in os.environ:  # inside srun
        nodes = int(os.environ["SLURM_STEP_NUM_NODES"])
        shape = {"num_nodes": nodes, "devices": int(os.environ["SLURM_STEP_NUM_TASKS"]) // nodes}
    elif mpi_launched():  # mpirun: as many ranks on each host (harness/checks.py checks it before Hydra starts)
        per_host = collections.Counter(mpi_hosts())
        shape = {"num_nodes": len(per_host), "devices": per_host[socket.gethostname()]}
    else:
        return default
    if key not in shape:
        raise ValueError(f"cluster resolver: unknown key {key!r}; use num_nodes or devices.")
    return shape[key]


# SLURM's warning before preemption or the time limit (slurm/*.sbatch: --signal=SIGUSR1@90). Noted from the
# start of the process: its default action ends the process, so one arriving during imports or the
# rendezvous would kill the job with nothing saved. harness/callbacks/slurm_requeue.py acts on it.
_requeue = {"received": False, "handled": False, "watched": set()}


def watch_requeue_signal(signum: int = signal.SIGUSR1) -> bool:
    """Under SLURM, note `signum` instead of dying from it; True if the signal is watched.

    Lightning installs its own requeue handler (which saves from inside the handler, unsafe under DDP)
    only where no handler is set yet: this one, installed first, stays for every stage of the run.
    """
    if not slurm_managed() or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signum) is not _note_requeue_signal:
        signal.signal(signum, _note_requeue_signal)
    _requeue["watched"].add(signum)
    return True


def _note_requeue_signal(signum: int, frame: object) -> None:
    _requeue["received"] = True


def requeue_signal_pending() -> bool:
    return _requeue["received"] and not _requeue["handled"]


def requeue_signal_handled() -> None:
    _requeue["handled"] = True


def stop_watching_requeue_signal() -> None:
    """After the run (harness/launch.py): say so if SLURM's signal came too late to act on, and ignore it from now
    on. Ignored, not noted: nothing is left to save, and Python puts back each handled signal's default action as
    it exits; SIGUSR1's ends the process, so a signal landing then ended a finished job FAILED."""
    if requeue_signal_pending() and global_rank() == 0:
        print(
            "WARNING: SLURM's requeue signal arrived after the run's last chance to act on it: "
            "the job was not requeued (the run had finished or failed).",
            file=sys.stderr,
        )
    if threading.current_thread() is threading.main_thread():
        for signum in _requeue["watched"]:
            if signal.getsignal(signum) is _note_requeue_signal:
                signal.signal(signum, signal.SIG_IGN)


def end_with_launcher(launcher: int) -> None:
    """End this process when `launcher`, its parent, ends: rank zero, which Lightning's DDP launcher runs in, or
    torchrun's agent.

    Gap this fills: Lightning starts ranks 1.. as children of rank zero and does not end them when rank zero is
    killed (Ctrl-C, SIGKILL, a search stopped) while they are still starting: such a rank then waited for rank
    zero in torch's rendezvous for 30 minutes (its default timeout), holding its memory (seen after Ctrl-C of a
    DDP search). torchrun starts its ranks in a session of their own and ends them when it is stopped, but not
    when it is killed outright (SIGKILL, the OOM killer): they trained on to the end, into the run folder that
    `ckpt_path=last` was continuing (seen in the kill campaign). Linux's parent-death signal ends such a rank at
    once; elsewhere nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    set_parent_death_signal = 1  # PR_SET_PDEATHSIG, <linux/prctl.h>
    ctypes.CDLL(None).prctl(set_parent_death_signal, signal.SIGKILL)
    if os.getppid() != launcher:  # it ended before the signal was asked for
        os._exit(1)


# The device meshes of this process's runs (trainer=model_parallel), for end_process_group.
_meshes: list[weakref.ref] = []


def end_with_run(mesh: object) -> None:
    """Let end_process_group end the process groups this DeviceMesh holds."""
    _meshes.append(weakref.ref(mesh))


def end_process_group() -> None:
    """Close the process group a run opened, on every rank, before Python exits or the next run starts.

    Gap this fills: Lightning leaves the group open, and torch's destroy_process_group is what joins gloo's
    worker threads. Left running, such a thread can drop the last tensor of an all-reduce while the
    interpreter tears down; taking the GIL then ends the thread inside a noexcept destructor and aborts the
    process ("terminate called without an active exception", exit -6 under torchrun). Called after each run
    (harness/launch.py) and at exit of every process that imports this package (ddp_spawn's workers too).

    A DeviceMesh holds its groups as well, in a registry its slices share, and torch's DTensor caches hold the
    meshes until exit: there the groups outlived destroy_process_group, ended in the teardown, and one rank of a
    2-node FSDP2 job aborted the same way in about 1 job of 40. Emptying the meshes' registries ends them here.
    """
    if "torch.distributed" not in sys.modules:  # nothing was started (e.g. the config was refused)
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    meshes = [mesh for ref in _meshes if (mesh := ref()) is not None]
    _meshes.clear()
    if meshes:
        for mesh in meshes:
            getattr(mesh, "_pg_registry", {}).clear()  # torch has no public way to let a mesh's groups go
        del meshes, mesh
        gc.collect()  # groups left in reference cycles end too; each one's end joins its threads

"""What the cluster (SLURM or torchrun) says about this process, for configs and the entry point.

Lightning reads the same variables once the Trainer exists; these are needed earlier, to name the
run folder and to fill `trainer.num_nodes` / `trainer.devices` in configs/trainer/ddp_multinode.yaml.
"""

import os


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

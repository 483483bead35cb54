#!/bin/bash
# Multi-node DDP started by Open MPI's mpirun, without SLURM: run this once, on the first host, e.g. for
# 2 hosts of 4 GPUs:
#
#   HOSTS=node0:4,node1:4 bash slurm/mpirun_multinode.sh
#
# HOSTS lists host:processes per host (the same number on each; one process per GPU, or on CPU-only hosts as
# many as you like, with trainer.accelerator=cpu). Arguments are Hydra overrides for train.py.
# Needs, on every host: this project at the same path (a shared file system: the run folder is written
# there), the same Python environment with mpi4py (pip install -e ".[mpi]"), host names that resolve from
# the other hosts (the ranks meet at rank 0's), and password-less ssh from this host (mpirun starts the
# ranks through it). The run folder, logs/train/runs/<start time>, is named by rank 0; the run starts with
# ckpt_path=last, so the same command after a failure continues the newest run from its last checkpoint.
# As root, Open MPI also wants OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HOSTS:?set HOSTS, e.g. node0:4,node1:4 (host:processes on it)}"
ranks=0
IFS=, read -ra hosts <<<"${HOSTS}"
for host in "${hosts[@]}"; do
    if [[ ${host} == *:* ]]; then ranks=$((ranks + ${host##*:})); else ranks=$((ranks + 1)); fi
done

# The remote ranks get this environment (Open MPI passes on little by itself): this Python first on PATH.
exports=(-x PATH)
for name in VIRTUAL_ENV PYTHONPATH PROJECT_ROOT LD_LIBRARY_PATH; do
    if [[ -n ${!name:-} ]]; then exports+=(-x "${name}"); fi
done
# --bind-to none: each rank may use every core of its host (data loading, torch's threads).
exec mpirun -np "${ranks}" --host "${HOSTS}" --bind-to none --wdir "$(pwd)" "${exports[@]}" \
    python train.py trainer=ddp_multinode ckpt_path=last "$@"

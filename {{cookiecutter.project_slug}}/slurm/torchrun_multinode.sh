#!/bin/bash
# Multi-node DDP without SLURM: run this once on every node, e.g. for 2 nodes of 4 GPUs:
#
#   node 0:  NODE_RANK=0 NNODES=2 MASTER_ADDR=node0.example MASTER_PORT=29500 bash slurm/torchrun_multinode.sh
#   node 1:  NODE_RANK=1 NNODES=2 MASTER_ADDR=node0.example MASTER_PORT=29500 bash slurm/torchrun_multinode.sh
#
# Arguments are Hydra overrides for train.py. All nodes must use the same RUN_NAME (the run folder,
# logs/train/runs/<RUN_NAME>, on a shared file system); resuming with the same RUN_NAME continues it.
# NPROC_PER_NODE defaults to the GPUs on this node (1 on a CPU-only node: add trainer.accelerator=cpu).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${NNODES:?set NNODES, the number of nodes}"
: "${NODE_RANK:?set NODE_RANK, 0 on the node at MASTER_ADDR, then 1, 2, ...}"
: "${MASTER_ADDR:?set MASTER_ADDR, the address of node 0}"
MASTER_PORT=${MASTER_PORT:-29500}
NPROC_PER_NODE=${NPROC_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
RUN_NAME=${RUN_NAME:-torchrun-${MASTER_ADDR}-${MASTER_PORT}}

# Every rank runs train.py with the same folder; trainer=ddp_multinode reads nodes and processes per
# node from torchrun's environment.
export {{ cookiecutter.package_name | upper }}_RUN_ID="${RUN_NAME}"
exec torchrun --nnodes="${NNODES}" --node-rank="${NODE_RANK}" --nproc-per-node="${NPROC_PER_NODE}" \
    --master-addr="${MASTER_ADDR}" --master-port="${MASTER_PORT}" \
    train.py trainer=ddp_multinode ckpt_path=last "$@"

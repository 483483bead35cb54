#!/bin/bash
# Multi-node DDP without SLURM: run this once on every node, e.g. for 2 nodes of 4 GPUs:
#
#   node 0:  NODE_RANK=0 NNODES=2 MASTER_ADDR=node0.example MASTER_PORT=29500 bash slurm/torchrun_multinode.sh
#   node 1:  NODE_RANK=1 NNODES=2 MASTER_ADDR=node0.example MASTER_PORT=29500 bash slurm/torchrun_multinode.sh
#
# Arguments are Hydra overrides for train.py. All nodes must use the same RUN_NAME (the run folder,
# logs/train/runs/<RUN_NAME>, on a shared file system); resuming with the same RUN_NAME continues it.
{%- if cookiecutter.slurm_gpus_per_node|int > 0 %}
# NPROC_PER_NODE defaults to the GPUs on this node (1 on a CPU-only node: add trainer.accelerator=cpu).
{%- else %}
# NPROC_PER_NODE defaults to the GPUs on this node: 1 on CPU nodes, where trainer=ddp_multinode runs on CPU.
{%- endif %}
# MAX_RESTARTS (default 0): when a process dies, torchrun restarts all of them this many times; they
# resume from the run's newest checkpoint (ckpt_path=last), not from epoch 0.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${NNODES:?set NNODES, the number of nodes}"
: "${NODE_RANK:?set NODE_RANK, 0 on the node at MASTER_ADDR, then 1, 2, ...}"
: "${MASTER_ADDR:?set MASTER_ADDR, the address of node 0}"
MASTER_PORT=${MASTER_PORT:-29500}
NPROC_PER_NODE=${NPROC_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
RUN_NAME=${RUN_NAME:-torchrun-${MASTER_ADDR}-${MASTER_PORT}}
MAX_RESTARTS=${MAX_RESTARTS:-0}

# Every rank runs train.py with the same folder; trainer=ddp_multinode reads nodes and processes per
# node from torchrun's environment.
export {{ cookiecutter.package_name | upper }}_RUN_ID="${RUN_NAME}"
# Restarted processes must not read the dead ones' addresses: torchrun's agents share one TCPStore across
# restarts, so a restarted rank can connect to a peer from the previous attempt (pytorch/pytorch#135712,
# #167288). With sharing off, rank 0 of each attempt hosts a fresh store on a fresh port.
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
exec torchrun --nnodes="${NNODES}" --nproc-per-node="${NPROC_PER_NODE}" --max-restarts="${MAX_RESTARTS}" \
    --rdzv-backend=c10d --rdzv-endpoint="${MASTER_ADDR}:${MASTER_PORT}" --rdzv-id="${RUN_NAME}" \
    --node-rank="${NODE_RANK}" \
    train.py trainer=ddp_multinode ckpt_path=last "$@"

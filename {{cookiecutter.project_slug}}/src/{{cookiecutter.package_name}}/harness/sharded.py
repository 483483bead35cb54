"""Gradient clipping for models split by tensor parallelism (trainer=model_parallel).

Gap this fills: torch.nn.utils.clip_grad_norm_ (what Lightning's `gradient_clip_val` calls) refuses a mix of
plain and DTensor gradients, and DTensors laid out on different device meshes: tensor parallelism splits a
GPT block's linear layers over one mesh and keeps its embeddings and norms whole (plain tensors), and FSDP2
shards those over another. Here the norm is taken per layout and the parts combined, as if on one device.
"""

from collections import defaultdict
from collections.abc import Iterable

import torch
from torch.distributed.tensor import DTensor


@torch.no_grad()
def clip_grad_norm_(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """Scale all gradients so that their global 2-norm is at most `max_norm`; return that norm (before)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    layouts: dict[object, list[torch.Tensor]] = defaultdict(list)
    for grad in grads:
        layouts[(grad.device_mesh, grad.placements) if isinstance(grad, DTensor) else None].append(grad)
    squares = []
    for group in layouts.values():
        norm = torch.nn.utils.get_total_norm(group)
        squares.append((norm.full_tensor() if isinstance(norm, DTensor) else norm) ** 2)
    total = torch.stack(squares).sum().sqrt()
    scale = float((max_norm / (total + 1e-6)).clamp(max=1.0))  # one read of the device per step
    if scale < 1.0:
        for grad in grads:
            grad.mul_(scale)
    return total

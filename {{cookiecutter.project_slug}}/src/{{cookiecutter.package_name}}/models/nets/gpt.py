"""A GPT: a decoder-only transformer that predicts each next token from the tokens before it."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be a multiple of n_head={n_head}")
        self.head_size, self.dropout = n_embd // n_head, dropout
        # Laid out head by head (each head's query, key and value side by side), so that tensor parallelism,
        # which gives each rank a contiguous slice of the outputs, gives it whole heads. No bias, as in most GPTs
        # now: a key bias cannot change attention (softmax ignores what is added to all of a query's scores alike),
        # so its gradient is rounding noise, which AdamW turns into steps of the learning rate's size, and the same
        # run then ends with other weights on other hardware; a value bias only repeats the projection's.
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        # (batch, length, heads * 3 * head_size) -> three of (batch, heads, length, head_size); "heads" are this
        # rank's heads under tensor parallelism, all of them otherwise.
        q, k, v = self.qkv(x).view(batch, length, -1, 3, self.head_size).permute(3, 0, 2, 1, 4)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)  # a fused kernel if any
        return self.proj(y.transpose(1, 2).reshape(batch, length, -1))


class Block(nn.Module):
    """Attention then a 4x-wide MLP, each behind a LayerNorm and added to its input (pre-norm residuals)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token and position embeddings, `n_layer` blocks, and a head that shares the token embedding's weights."""

    tensor_parallel = True  # parallelize() splits blocks over a tensor-parallel group (n_head must divide)

    def __init__(
        self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.block_size, self.n_head = block_size, n_head
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(Block(n_embd, n_head, dropout) for _ in range(n_layer)))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying: fewer parameters, and it trains better
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # Small normal weights, as GPT-2 does: the default init makes the first losses far higher than log(vocab).
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def parallelize(self, mesh: DeviceMesh) -> None:
        """Spread this GPT over the devices of `mesh` (trainer=model_parallel; harness/module.py applies it).

        Tensor parallel over mesh["tensor_parallel"], Megatron-LM's plan: in every block, the first linear
        layer of attention and of the MLP is split by output columns (each rank: whole heads, a slice of the
        MLP's width), the second by input rows, so a block costs one all-reduce forward and one backward.
        Embeddings, norms and the head stay whole on every rank. Then FSDP2 over mesh["data_parallel"]: each
        block's parameters, gradients and optimizer state sharded, gathered just for its own compute.
        """
        tensor_parallel, data_parallel = mesh["tensor_parallel"], mesh["data_parallel"]
        if tensor_parallel.size() > 1:
            plan = {"attn.qkv": ColwiseParallel(), "attn.proj": RowwiseParallel()}
            plan |= {"mlp.0": ColwiseParallel(), "mlp.2": RowwiseParallel()}
            for block in self.blocks:
                parallelize_module(block, tensor_parallel, plan)
        # On one device too (a mesh of 1): Lightning saves and loads only models that hold sharded parameters.
        if data_parallel.size() > 1 or tensor_parallel.size() == 1:
            for block in self.blocks:
                fully_shard(block, mesh=data_parallel)
            fully_shard(self, mesh=data_parallel)  # the rest: embeddings (tied to the head), final norm

    def flops_per_token(self) -> int:
        """Training FLOPs (forward and backward) per token of a full-length window, for train/mfu on GPUs.

        Each weight of a matrix multiply costs 2 FLOPs forward and 4 backward; attention's scores and weighted
        sum cost 4 * n_embd * block_size per layer forward, 12 with backward (the mask's savings not counted,
        as is usual). Norms, biases and the embedding lookup are left out: under 1 % here.
        """
        matmul_weights = sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Linear))
        n_embd = self.tok_emb.embedding_dim
        return 6 * matmul_weights + 12 * len(self.blocks) * n_embd * self.block_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (batch, length <= block_size) -> next-token logits (batch, length, vocab_size)."""
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(positions))
        return self.head(self.ln_f(self.blocks(x)))

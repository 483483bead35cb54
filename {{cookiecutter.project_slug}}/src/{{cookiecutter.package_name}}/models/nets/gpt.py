"""A GPT: a decoder-only transformer that predicts each next token from the tokens before it."""

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be a multiple of n_head={n_head}")
        self.n_head, self.dropout = n_head, dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, channels = x.shape
        # (batch, length, 3 * channels) -> three of (batch, heads, length, channels per head)
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_head, channels // self.n_head).permute(2, 0, 3, 1, 4)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)  # a fused kernel if any
        return self.proj(y.transpose(1, 2).reshape(batch, length, channels))


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

    def __init__(
        self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.block_size = block_size
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

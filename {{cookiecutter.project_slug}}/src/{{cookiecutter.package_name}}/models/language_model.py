"""The second example: a language model that learns to continue text, one token at a time."""

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from {{cookiecutter.package_name}}.data.text_datamodule import decode, encode
from {{cookiecutter.package_name}}.harness.module import ResearchModule

log = logging.getLogger(__name__)


class LanguageModel(ResearchModule):
    """Trains `net` (configs/model/gpt.yaml) to predict each next token; logs val/loss and val/perplexity, and
    at the end of every validation a sample that continues `sample_prompt` (console and text loggers).

    `compile=true` compiles the network with torch.compile (in place: checkpoints keep the same keys; after its
    plan under trainer=model_parallel, harness/module.py).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        compile: bool = False,
        sample_prompt: str = "def ",
        sample_tokens: int = 200,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # Token-weighted means over the epoch, synced across ranks (torchmetrics)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.net(idx)

    @property
    def flops_per_sample(self) -> int:
        """Training FLOPs of one sample (a window of block_size tokens): the callbacks' throughput logs
        train/mfu from it on GPUs."""
        return self.net.flops_per_token() * self.net.block_size

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = self(x)  # `self(x)`: trainer=dp parallelizes forward
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.val_loss.update(self._loss(batch), weight=batch[1].numel())

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.val_loss.reset()
        # Already synced across ranks by the metric; sync_dist averages equal values (and keeps Lightning quiet).
        self.log_dict({"val/loss": loss, "val/perplexity": torch.exp(loss)}, prog_bar=True, sync_dist=True)
        if not self.trainer.sanity_checking:
            self._log_sample()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.test_loss.update(self._loss(batch), weight=batch[1].numel())

    def on_test_epoch_end(self) -> None:
        loss = self.test_loss.compute()
        self.test_loss.reset()
        self.log_dict({"test/loss": loss, "test/perplexity": torch.exp(loss)}, sync_dist=True)

    @torch.no_grad()
    def generate(
        self, prompt: str, max_new_tokens: int, temperature: float = 0.8, top_k: int | None = None, seed: int = 0
    ) -> str:
        """`prompt` continued by `max_new_tokens` sampled tokens (each from the last `block_size` ones).

        Sampling draws from its own generator, seeded by `seed`: training's random numbers stay untouched (an
        exact resume does not depend on whether samples were printed), and every rank of a sharded model
        draws the same tokens.
        """
        was_training = self.training
        self.eval()
        block_size = self.net.block_size
        idx = torch.tensor([encode(prompt) or [ord("\n")]], device=self.device)
        generator = torch.Generator(self.device).manual_seed(seed)
        with torch.compiler.set_stance("force_eager"):  # compiled or not: each new length would compile again
            for _ in range(max_new_tokens):
                logits = self.net(idx[:, -block_size:])[:, -1, :].float() / max(temperature, 1e-6)
                if top_k is not None:
                    cutoff = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                    logits[logits < cutoff] = -math.inf
                next_token = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
                idx = torch.cat([idx, next_token], dim=1)
        self.train(was_training)
        return decode(idx[0].tolist())

    def predict_step(self, batch: list[str], batch_idx: int) -> dict[str, list[str]]:
        # predict.py's column: each line continued by `sample_tokens` tokens, drawn from the same seed on any rank
        return {"text": [self.generate(prompt, self.hparams.sample_tokens) for prompt in batch]}

    def _log_sample(self) -> None:
        """One sample, logged by rank zero; computed where harness/module.py says (every rank of a sharded model)."""
        if not self.hparams.sample_tokens or not self.samples_here:
            return
        text = self.generate(self.hparams.sample_prompt, self.hparams.sample_tokens, seed=self.global_step)
        if self.trainer.is_global_zero:
            log.info(f"Sample at step {self.global_step}:\n{text}")
            self.log_text("sample", text)

    def configure_optimizers(self) -> Any:
        # Weight decay on matrices only (linear and embedding weights), not on biases and norms: GPT-2's rule.
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        optimizer = self.optimizer_factory(params=[{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer)}}

"""The example task: classify each example into one of `num_classes` classes."""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from {{cookiecutter.package_name}}.harness.module import ResearchModule


class Classifier(ResearchModule):
    """Trains `net` with cross-entropy; network, optimizer and scheduler come from configs/model/mlp.yaml.

    `optimizer` and `scheduler` arrive half-built (Hydra `_partial_: true`): they still need the
    parameters and the optimizer, which only exist here.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        # Only plain values go into the checkpoint's hyperparameters, so checkpoints load with
        # torch.load(weights_only=True); the network is saved as weights, the factories not at all.
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.criterion = nn.CrossEntropyLoss()
        # One metric object per stage: torchmetrics keeps state between steps and, under DDP,
        # syncs it across ranks when the epoch's value is computed.
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)  # `self(x)`, not `self.net(x)`: trainer=dp parallelizes forward
        return self.criterion(logits, y), logits, y

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, logits, y = self._loss(batch)
        # `update`, not `self.train_acc(...)`: the call would also compute this batch's accuracy, which
        # nobody reads. The step loss is this rank's (syncing it every step would cost a collective).
        self.train_acc.update(logits, y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        # Once an epoch, not every step: computed over the epoch's batches, synced across ranks, reset.
        self.log("train/acc", self.train_acc)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, logits, y = self._loss(batch)
        self.val_acc.update(logits, y)
        # Every rank logs the same keys (no `if rank == 0` around self.log: that deadlocks under DDP).
        self.log("val/loss", loss, sync_dist=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, logits, y = self._loss(batch)
        self.test_acc.update(logits, y)
        self.log("test/loss", loss, sync_dist=True)
        self.log("test/acc", self.test_acc)

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        # The columns of predict.py's file (harness/callbacks/prediction_writer.py): a batch holds the inputs alone
        probabilities = self(batch[0]).softmax(dim=-1)
        return {"class": probabilities.argmax(dim=-1), "probability": probabilities}

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer)}}

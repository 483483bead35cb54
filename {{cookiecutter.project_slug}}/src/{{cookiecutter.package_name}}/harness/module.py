"""The base of the LightningModules in models/: what sharding, clipping and sampling under a mesh need, so that
a model holds only its research (a `training_step`, a `configure_optimizers`).

Gaps this fills:
- `Classifier.load_from_checkpoint(path)` fails in Lightning when the network and optimizer were handed to the model
  built (they are no plain values, so they are not saved): here they are built again from the configs the
  checkpoint keeps (harness/hparams.py), and a sharded run's folder loads too.
- Lightning calls `configure_model` again before `test` after `fit`, and a network's plan or torch.compile
  applied twice fails or compiles again: here the network (`self.net`) is split by its own plan under
  trainer=model_parallel (harness/mesh.py), then compiled where the model's `compile` hyperparameter says so
  (after the plan: compiled code sees the layout it runs), once.
- torch.nn.utils.clip_grad_norm_ (what Lightning's `gradient_clip_val` calls) refuses the mix of layouts that
  tensor parallelism makes: under a mesh the norm is clipped by harness/sharded.py instead.
- Lightning sets the module's `_current_fx_name` before and after every hook call (about 40 times a training step),
  each through `nn.Module.__setattr__`, which first checks whether the value is a parameter, buffer or module:
  a hook's name never is, so it is set directly (as Lightning does for its own logged records).
- A sample computed outside a step (at the end of validation) is local work under DDP, but a sharded model
  needs every rank for each forward, and under trainer=fsdp its root shard is reachable only through the whole
  model's forward: `samples_here` says whether this rank computes one.
"""

import io
from pathlib import Path
from typing import Any, Self

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy

from {{cookiecutter.package_name}}.harness import (
    checkpoint_reading,
    consolidate,
    hparams,
    sharded,
)
from {{cookiecutter.package_name}}.harness.checks import ConfigError


class ResearchModule(L.LightningModule):
    """A LightningModule whose network is `self.net` (under trainer=model_parallel a Parallelizable, checked)."""

    _configured = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":  # a hook's name or None, set around every hook call: no module checks
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Self:
        """Lightning's `load_from_checkpoint`, with no config at hand: the network, optimizer and scheduler are built
        again from the configs the checkpoint keeps (harness/hparams.py), and a sharded run's folder is gathered into
        one checkpoint first (harness/consolidate.py). What is passed here is used as it is, as in Lightning."""
        if not isinstance(checkpoint_path, str | Path):  # a file object: Lightning's own way
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        path = Path(checkpoint_path)
        try:
            checkpoint = consolidate.full_checkpoint(path) if path.is_dir() else checkpoint_reading.check(path)
        except checkpoint_reading.UnreadableCheckpoint as why:
            raise ConfigError(f"{path} cannot be read safely: {why}; pass a checkpoint a run wrote.") from None
        saved = checkpoint.get("hyper_parameters", {})
        built = hparams.rebuild(cls, saved, kwargs, source=str(path))
        if path.is_dir():  # Lightning reads one file: the gathered checkpoint, from memory
            checkpoint_path = io.BytesIO()
            torch.save(checkpoint, checkpoint_path)
            checkpoint_path.seek(0)
        model = super().load_from_checkpoint(checkpoint_path, *args, **built, **kwargs)
        model.hparams.update({name: saved[name] for name in built})  # kept for its next checkpoint
        return model

    def configure_model(self) -> None:
        if self._configured:  # called again by test after fit
            return
        if self.device_mesh is not None:  # trainer=model_parallel: the network's own plan
            self.net.parallelize(self.device_mesh)
        if self.hparams.get("compile"):
            self.net.compile()  # nn.Module.compile: the module's own forward, state_dict keys unchanged
        self._configured = True

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        # trainer=model_parallel: torch's clipping refuses the mix of layouts that tensor parallelism makes
        if self.device_mesh is not None and gradient_clip_val and gradient_clip_algorithm != "value":
            sharded.clip_grad_norm_(self.parameters(), gradient_clip_val)
        else:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    @property
    def samples_here(self) -> bool:
        """Whether this rank computes a sample outside a step: rank zero alone under DDP (local work), every rank
        of a sharded model (trainer=model_parallel: each forward needs them all), none under trainer=fsdp."""
        if isinstance(self.trainer.strategy, FSDPStrategy):
            return False
        return self.trainer.is_global_zero or self.device_mesh is not None

    def log_text(self, key: str, text: str) -> None:
        """`text` at this step in the loggers that keep text (TensorBoard, wandb); call it on rank zero."""
        for logger in self.loggers:
            if hasattr(logger.experiment, "add_text"):  # TensorBoard
                logger.experiment.add_text(key, f"```\n{text}\n```", self.global_step)
            elif hasattr(logger, "log_text"):  # wandb
                logger.log_text(key=key, columns=["step", "text"], data=[[self.global_step, text]])

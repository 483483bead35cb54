"""The DataParallel strategy's plumbing, checked on CPU (where nn.DataParallel runs the module as is);
test_train.py trains with it on real GPUs when there are some."""

import hydra
import lightning as L
import torch
from lightning.pytorch.strategies import StrategyRegistry
from test_configs import compose_train

from {{cookiecutter.package_name}}.strategies.dp import DataParallelStrategy, _Forward


def test_dp_is_registered_for_the_trainer() -> None:
    assert StrategyRegistry["dp"]["strategy"] is DataParallelStrategy


def test_steps_run_forward_through_data_parallel_and_log_whole_batch_metrics() -> None:
    cfg = compose_train("trainer.max_epochs=1")
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    calls = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: calls.append(len(args[0])) if isinstance(module, _Forward) else None
    )
    strategy = DataParallelStrategy()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        strategy=strategy,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        trainer.fit(model, datamodule=datamodule)
    finally:
        hook.remove()
    assert strategy.world_size == 1 and strategy.distributed_sampler_kwargs is None
    assert calls[:3] == [cfg.data.batch_size] * 3  # each training step's whole batch went through DataParallel
    assert len(calls) == 3 + 2  # and every validation step too
    assert "forward" not in vars(model)  # the routing is undone after each step
    assert {"train/acc", "val/acc", "val/loss"} <= set(trainer.callback_metrics)

"""Every config composes, and the pieces it names can be built: each model with its data takes a training step
(README, "Where things are": config groups mirror the code, and any setting changes from the command line)."""

import hydra
import lightning as L
import pytest
import torch
from helpers import CONFIGS, compose_train, options
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import {{cookiecutter.package_name}}.harness.launch  # noqa: F401  registers the ${run_id:} and ${cluster:} resolvers
from {{cookiecutter.package_name}}.harness import hparams


@pytest.mark.parametrize("trainer", options("trainer"))
def test_every_trainer_config_composes(trainer: str) -> None:
    cfg = compose_train(f"trainer={trainer}", "trainer.devices=3", "trainer.num_nodes=2")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    assert cfg.trainer.devices == 3 and cfg.trainer.num_nodes == 2  # the command line wins over any config


def test_strategy_table() -> None:
    expected = {"dp": "dp", "ddp": "ddp", "ddp_spawn": "ddp_spawn", "ddp_multinode": "ddp", "cpu": "auto"}
    for trainer, strategy in expected.items():
        assert compose_train(f"trainer={trainer}").trainer.strategy == strategy


def test_multinode_shape_comes_from_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_STEP_NUM_NODES", "3")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "12")
    trainer = compose_train("trainer=ddp_multinode").trainer
    assert (trainer.num_nodes, trainer.devices) == (3, 4)


@pytest.mark.parametrize("group", ["experiment", "debug", "logger", "callbacks"])
def test_every_option_composes(group: str) -> None:
    for option in options(group):
        assert compose_train(f"{group}={option}") is not None


def test_eval_config_composes() -> None:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="eval", overrides=["ckpt_path=x.ckpt"])
    assert cfg.ckpt_path == "x.ckpt"


def test_model_and_data_build_and_fit_together() -> None:
    cfg = compose_train()
    OmegaConf.set_struct(cfg, False)
    cfg.trainer.max_epochs = 1  # the scheduler's T_max
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    datamodule.setup()
    x, y = next(iter(datamodule.train_dataloader()))
    assert model(x).shape == (cfg.data.batch_size, 10)
    assert len(datamodule.splits["train"]) + len(datamodule.splits["val"]) + len(datamodule.splits["test"]) == 1797


# The default pairing and each experiment's: every model config with the data it trains on. A new experiment
# is tested here without editing this file.
PAIRS = ["train.yaml", *(f"experiment={name}" for name in options("experiment"))]


@pytest.mark.parametrize("pair", PAIRS)
def test_every_model_and_datamodule_take_one_batch_forward_and_backward_and_load_back(pair: str, tmp_path) -> None:
    overrides = [] if pair == "train.yaml" else [pair]
    cfg = compose_train(*overrides, "data.batch_size=2", "data.num_workers=0")
    OmegaConf.set_struct(cfg, False)
    if "corpus_mb" in cfg.data:
        cfg.data.corpus_mb = 0.1  # a tenth of a MB of text: enough for one batch, quick to read
    if "sample_tokens" in cfg.model:
        cfg.model.sample_tokens = 0
    OmegaConf.resolve(cfg.model)  # as a run resolves it (harness/launch.py)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model)
    hparams.keep(model, cfg.model)  # as harness/build.py does
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = L.Trainer(
        accelerator="cpu", devices=1, fast_dev_run=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)  # one training batch (forward, backward, step), one validation batch
    assert trainer.global_step == 1 and torch.isfinite(trainer.callback_metrics["train/loss"])
    changed = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert changed, "the optimizer step changed no weight"

    # The Lightning way to load, with no config at hand: network, optimizer and scheduler built again, same weights
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = type(model).load_from_checkpoint(tmp_path / "model.ckpt")
    assert type(loaded.net) is type(model.net) and loaded.hparams == model.hparams
    weights = model.state_dict()
    assert loaded.state_dict().keys() == weights.keys()
    assert all(torch.equal(value, weights[key]) for key, value in loaded.state_dict().items())
    optimizers = loaded.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers  # with a scheduler or not
    assert type(optimizer) is type(trainer.optimizers[0]) and optimizer.defaults == trainer.optimizers[0].defaults
    assert torch.load(tmp_path / "model.ckpt", weights_only=True)["hyper_parameters"]["net"] == dict(cfg.model.net)


def test_model_sizes_come_from_the_data_config() -> None:
    # `data=<other>` alone switches the dataset: no model config carries the data's shape itself
    cfg = compose_train("data.num_features=20", "data.num_classes=3")
    assert (cfg.model.net.in_features, cfg.model.net.num_classes, cfg.model.num_classes) == (20, 3, 3)


def test_optimizer_and_scheduler_are_shared_groups_of_the_model() -> None:
    assert options("model/optimizer") and options("model/scheduler")
    cfg = compose_train("~model/scheduler")  # a constant learning rate, as model/mlp.yaml says
    assert "scheduler" not in cfg.model and cfg.model.optimizer._target_ == "torch.optim.AdamW"


def test_sharded_strategies_build_with_their_units() -> None:
    # trainer=fsdp runs on CUDA only, but its strategy (and its wrap policy: one GPT block) builds anywhere.
    from {{cookiecutter.package_name}}.models.nets.gpt import Block

    fsdp = hydra.utils.instantiate(compose_train("experiment=gpt", "trainer=fsdp").trainer.strategy)
    assert fsdp.kwargs["auto_wrap_policy"]._module_classes == {Block}
    parallel = hydra.utils.instantiate(compose_train("trainer=model_parallel").trainer.strategy)
    assert (parallel._data_parallel_size, parallel._tensor_parallel_size) == ("auto", 1)

"""Training strategies Lightning does not ship (dp), or ships with a gap (model_parallel). Importing this package
registers dp by name."""

from lightning.pytorch.strategies import StrategyRegistry

from {{cookiecutter.package_name}}.harness.strategies.dp import DataParallelStrategy
from {{cookiecutter.package_name}}.harness.strategies.model_parallel import ModelParallel

if "dp" not in StrategyRegistry:
    StrategyRegistry.register(
        "dp", DataParallelStrategy, description="nn.DataParallel: one process splits each batch over this node's GPUs"
    )

__all__ = ["DataParallelStrategy", "ModelParallel"]

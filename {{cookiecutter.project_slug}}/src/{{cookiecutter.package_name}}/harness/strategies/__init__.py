"""Training strategies Lightning does not ship. Importing this package registers them by name."""

from lightning.pytorch.strategies import StrategyRegistry

from {{cookiecutter.package_name}}.harness.strategies.dp import DataParallelStrategy

if "dp" not in StrategyRegistry:
    StrategyRegistry.register(
        "dp", DataParallelStrategy, description="nn.DataParallel: one process splits each batch over this node's GPUs"
    )

__all__ = ["DataParallelStrategy"]

"""Training strategies Lightning does not ship (dp), or ships with a gap (model_parallel). Importing this package
registers dp by name, keeps Lightning from starting MPI outside mpirun, and makes SIGTERM stop every rank at the
same step (harness/cluster.py)."""

from lightning.pytorch.strategies import StrategyRegistry

from {{cookiecutter.package_name}}.harness import cluster
from {{cookiecutter.package_name}}.harness.strategies.dp import DataParallelStrategy
from {{cookiecutter.package_name}}.harness.strategies.model_parallel import ModelParallel

if "dp" not in StrategyRegistry:
    StrategyRegistry.register(
        "dp", DataParallelStrategy, description="nn.DataParallel: one process splits each batch over this node's GPUs"
    )

cluster.ask_mpi_only_under_mpirun()
cluster.stop_together_on_sigterm()

__all__ = ["DataParallelStrategy", "ModelParallel"]

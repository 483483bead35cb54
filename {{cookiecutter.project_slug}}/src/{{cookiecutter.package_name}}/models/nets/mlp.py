from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import fully_shard


class MLP(nn.Sequential):
    """A fully connected network: in_features -> hidden sizes (ReLU, dropout) -> num_classes logits."""

    tensor_parallel = False  # parallelize() shards over data-parallel ranks only

    def __init__(self, in_features: int, hidden: list[int], num_classes: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_features, width), nn.ReLU(), nn.Dropout(dropout)]
            in_features = width
        layers.append(nn.Linear(in_features, num_classes))
        super().__init__(*layers)

    def parallelize(self, mesh: DeviceMesh) -> None:
        """trainer=model_parallel: FSDP2 over mesh["data_parallel"], each linear layer sharded on its own (its
        parameters, gradients and optimizer state split over the ranks, gathered just for its own compute)."""
        for layer in self:
            if isinstance(layer, nn.Linear):
                fully_shard(layer, mesh=mesh["data_parallel"])
        fully_shard(self, mesh=mesh["data_parallel"])

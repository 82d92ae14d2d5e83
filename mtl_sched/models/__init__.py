"""Multi-task models: the `MTLModel` protocol and concrete encoders and heads."""

from mtl_sched.models.base import Batch, MTLModel, TaskOutput, to_device
from mtl_sched.models.shared_mlp import SharedMLP

__all__ = ["Batch", "MTLModel", "SharedMLP", "TaskOutput", "to_device"]

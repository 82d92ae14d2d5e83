"""The `Trainer` and what a training run is made of.

One concept per module, their public names re-exported here: the training loop
(`mtl_sched.training.trainer`), its settings (`mtl_sched.training.config`), the data draws
(`mtl_sched.training.sampler`), evaluation (`mtl_sched.training.evaluation`), the result
(`mtl_sched.training.run_result`) and the run's observers and TensorBoard log
(`mtl_sched.training.observers`, `mtl_sched.training.tensorboard`). Importing any of these
modules runs this package's imports first, the trainer's among them, so the modules the trainer
imports (the observation, the scheduler contract, the models) import nothing from this package
at run time; inside it, modules import each other directly.
"""

from mtl_sched.training.config import (
    NONFINITE_POLICIES,
    NonFinitePolicy,
    TrainerConfig,
    resolve_device,
)
from mtl_sched.training.run_result import RunResult
from mtl_sched.training.sampler import Columns, TaskSampler, materialize, take_rows
from mtl_sched.training.trainer import Trainer

__all__ = [
    "NONFINITE_POLICIES",
    "Columns",
    "NonFinitePolicy",
    "RunResult",
    "TaskSampler",
    "Trainer",
    "TrainerConfig",
    "materialize",
    "resolve_device",
    "take_rows",
]

"""mtl-sched: learn how to schedule multi-task training.

The public API: tasks and benchmarks, the `Trainer`, the scheduler contract and registry.
The environment lives in `mtl_sched.envs`, the agent in `mtl_sched.agents` and the classic
schedulers in `mtl_sched.baselines`.
"""

from mtl_sched.benchmarks import Benchmark, benchmark_names, get_benchmark
from mtl_sched.data import SyntheticTaskSpec, Task, make_synthetic_tasks
from mtl_sched.hooks import ProbeData, SchedulerDriver
from mtl_sched.models import MTLModel, SharedMLP, TaskOutput
from mtl_sched.observation.probing import ProbeConfig, ProbeResult
from mtl_sched.registry import make_scheduler, register_scheduler, scheduler_names
from mtl_sched.scheduling import EvalResult, NonFiniteLossError, Scheduler, Step, TrainState
from mtl_sched.training import RunResult, Trainer, TrainerConfig

__version__ = "0.1.0"

__all__ = [
    "Benchmark",
    "EvalResult",
    "MTLModel",
    "NonFiniteLossError",
    "ProbeConfig",
    "ProbeData",
    "ProbeResult",
    "RunResult",
    "Scheduler",
    "SchedulerDriver",
    "SharedMLP",
    "Step",
    "SyntheticTaskSpec",
    "Task",
    "TaskOutput",
    "TrainState",
    "Trainer",
    "TrainerConfig",
    "__version__",
    "benchmark_names",
    "get_benchmark",
    "make_scheduler",
    "make_synthetic_tasks",
    "register_scheduler",
    "scheduler_names",
]

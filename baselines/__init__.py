"""Non-learned schedulers. Importing this package registers each of them by name."""

from mtl_sched.baselines.greedy import GreedyScheduler
from mtl_sched.baselines.random_task import RandomScheduler
from mtl_sched.baselines.round_robin import RoundRobinScheduler
from mtl_sched.baselines.uniform import UniformScheduler

__all__ = ["GreedyScheduler", "RandomScheduler", "RoundRobinScheduler", "UniformScheduler"]

"""Non-learned schedulers. Importing this package registers each of them by name."""

from mtl_sched.baselines.adaptive import AdaptiveImplicitScheduler, AdaptiveScheduler
from mtl_sched.baselines.aggregator_methods import (
    AGGREGATOR_SCHEDULERS,
    AlignedMTLScheduler,
    CAGradScheduler,
    DualProjScheduler,
    GradDropScheduler,
    IMTLGScheduler,
    MGDAScheduler,
    NashMTLScheduler,
    PCGradScheduler,
    UPGradScheduler,
)
from mtl_sched.baselines.aggregators import AggregatorScheduler
from mtl_sched.baselines.common import ReferenceScheduler, SamplingScheduler
from mtl_sched.baselines.dtp import DTPScheduler
from mtl_sched.baselines.dwa import DWAScheduler
from mtl_sched.baselines.exp3s import Exp3SScheduler
from mtl_sched.baselines.famo import FAMOScheduler
from mtl_sched.baselines.focal import FocalLossScheduler
from mtl_sched.baselines.gradnorm import GradNormScheduler
from mtl_sched.baselines.greedy import GreedyScheduler
from mtl_sched.baselines.hand_crafted import HandCraftedScheduler, WeightSearchResult
from mtl_sched.baselines.loss_exponentiation import LossExponentiationScheduler
from mtl_sched.baselines.phased import PhasedScheduler
from mtl_sched.baselines.prior import PriorEasyScheduler, PriorHardScheduler
from mtl_sched.baselines.random_task import RandomScheduler
from mtl_sched.baselines.rlw import RLWScheduler
from mtl_sched.baselines.round_robin import RoundRobinScheduler
from mtl_sched.baselines.schedules import ConstantSchedule, ExponentialSchedule, SigmoidSchedule
from mtl_sched.baselines.self_paced import SelfPacedScheduler
from mtl_sched.baselines.temperature import ProportionalScheduler, TemperatureScheduler
from mtl_sched.baselines.uncertainty import UncertaintyWeighting
from mtl_sched.baselines.uniform import UniformScheduler

__all__ = [
    "AGGREGATOR_SCHEDULERS",
    "AdaptiveImplicitScheduler",
    "AdaptiveScheduler",
    "AggregatorScheduler",
    "AlignedMTLScheduler",
    "CAGradScheduler",
    "ConstantSchedule",
    "DTPScheduler",
    "DWAScheduler",
    "DualProjScheduler",
    "Exp3SScheduler",
    "ExponentialSchedule",
    "FAMOScheduler",
    "FocalLossScheduler",
    "GradDropScheduler",
    "GradNormScheduler",
    "GreedyScheduler",
    "HandCraftedScheduler",
    "IMTLGScheduler",
    "LossExponentiationScheduler",
    "MGDAScheduler",
    "NashMTLScheduler",
    "PCGradScheduler",
    "PhasedScheduler",
    "PriorEasyScheduler",
    "PriorHardScheduler",
    "ProportionalScheduler",
    "RLWScheduler",
    "RandomScheduler",
    "ReferenceScheduler",
    "RoundRobinScheduler",
    "SamplingScheduler",
    "SelfPacedScheduler",
    "SigmoidSchedule",
    "TemperatureScheduler",
    "UPGradScheduler",
    "UncertaintyWeighting",
    "UniformScheduler",
    "WeightSearchResult",
]

"""How faithfully a benchmark's default probe follows a probe of every whole validation split.

Two `MTLSchedulingEnv` run in lockstep on the same uniformly random actions: the DEFAULT one
(the benchmark's probe settings and decision frequency, after the ``--option`` given) and a
REFERENCE one that, after every decision, probes every task's whole validation split
(``pool_size=None``, ``hard_size=None``, ``refresh=None``; same bins, measure and steps per
action). Both are reset with the same seed, so their trainers get the same seeds and train the
identical model (checked on the training losses); only the probe differs. The penalty is off in
both (``reference_accuracies=None``).

Printed: the Pearson correlation of the two environments' rewards for the reward agent training
uses by default (``AgentSettings.reward``; another with ``--reward``) and for ``"loss"`` (minus
the summed validation loss, computed from the same probe passes), the mean total-variation
distance between the two observations' per-task histograms (over tasks and decisions), and the
process CPU time of a decision in each environment and per trained minibatch. The last line is
``correlation X``, the correlation of the first reward kind.

    python benchmarks/probe_fidelity.py --benchmark fdu-mtl --small
    python benchmarks/probe_fidelity.py --benchmark fdu-mtl --small --option probe_pool=8 \\
        --option probe_selection=first --option probe_refresh=1 --option decision_steps=1
    python benchmarks/probe_fidelity.py --benchmark fdu-mtl --steps 300 --episode-steps 150
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from benchmark_args import BenchmarkArgs

from mtl_sched.agents.training import AgentSettings
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.envs.reward import REWARD_KINDS
from mtl_sched.script_args import parse_args_into


@dataclass
class Args(BenchmarkArgs):
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    steps: int = field(default=300, metadata={"help": "decisions (environment steps) measured"})
    episode_steps: int | None = field(
        default=None,
        metadata={"help": "decisions per episode (default: the budget's, as agents train)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the environments and the actions"})
    reward: str = field(
        default="", metadata={"help": "reward kind correlated (default: the agents' default)"}
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson correlation of two equally long series (NaN when either is constant)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def total_variation(observation: np.ndarray, reference: np.ndarray, num_tasks: int) -> float:
    """Mean over tasks of the total-variation distance between two observations' histograms."""
    first = observation[: num_tasks * (observation.size // num_tasks)].reshape(num_tasks, -1)
    second = reference[: num_tasks * (reference.size // num_tasks)].reshape(num_tasks, -1)
    return float(0.5 * np.abs(first - second).sum(axis=1).mean())


def main(args: Args) -> float:
    torch.set_num_threads(args.threads)
    benchmark = args.make_benchmark()
    reward = args.reward or AgentSettings().reward
    if reward not in REWARD_KINDS:
        raise SystemExit(f"--reward must be one of {', '.join(REWARD_KINDS)}; got {reward!r}")
    default = MTLSchedulingEnv(
        benchmark, reward=reward, reference_accuracies=None, episode_steps=args.episode_steps
    )
    probe = default.probe_config
    full = dataclasses.replace(probe, pool_size=None, hard_size=None, refresh=None)
    reference = MTLSchedulingEnv(
        benchmark,
        reward=reward,
        reference_accuracies=None,
        episode_steps=args.episode_steps,
        steps_per_action=default.steps_per_action,
        probe=full,
    )
    num_tasks = benchmark.num_tasks
    actions = np.random.default_rng(args.seed)
    rewards: dict[str, list[list[float]]] = {reward: [[], []]}
    if reward != "loss":
        rewards["loss"] = [[], []]
    distances: list[float] = []
    seconds = [0.0, 0.0]
    default.reset(seed=args.seed)
    reference.reset(seed=args.seed)
    for _ in range(args.steps):
        action = int(actions.integers(num_tasks))
        steps = []
        for i, env in enumerate((default, reference)):
            start = time.process_time()
            steps.append(env.step(action))
            seconds[i] += time.process_time() - start
        (obs, r, _, truncated, info), (ref_obs, ref_r, _, _, ref_info) = steps
        if info["train_loss"] != ref_info["train_loss"]:
            raise RuntimeError("the two environments trained different models")
        rewards[reward][0].append(r)
        rewards[reward][1].append(ref_r)
        if reward != "loss":
            rewards["loss"][0].append(-float(info["validation_losses"].sum()))
            rewards["loss"][1].append(-float(ref_info["validation_losses"].sum()))
        distances.append(total_variation(obs, ref_obs, num_tasks))
        if truncated:
            default.reset()
            reference.reset()

    per_action = default.steps_per_action
    episodes = -(-args.steps // default.episode_steps)
    print(
        f"{args.benchmark}{' (small)' if args.small else ''}: {num_tasks} tasks; default probe: "
        f"pool {probe.pool_size} ({probe.selection}), hard {probe.hard_size}, refresh "
        f"{probe.refresh}, measure {probe.measure}; {per_action} minibatch(es) per decision; "
        f"{args.steps} decisions over {episodes} episode(s) of {default.episode_steps}; "
        f"seed {args.seed}, {args.threads} thread(s)"
    )
    print("reference probe: every task's whole validation split after every decision")
    for kind, (mine, theirs) in rewards.items():
        print(f"reward {kind!r}: correlation {pearson(mine, theirs):.3f}")
    print(f"mean total-variation distance of the histograms: {np.mean(distances):.3f}")
    for name, total in zip(("default", "reference"), seconds, strict=True):
        print(
            f"{name} env: {1e3 * total / args.steps:.1f} ms CPU per decision, "
            f"{1e3 * total / (args.steps * per_action):.1f} ms per trained minibatch"
        )
    correlation = pearson(*rewards[reward])
    print(f"correlation {correlation:.3f}")
    return correlation


if __name__ == "__main__":
    main(parse_args())

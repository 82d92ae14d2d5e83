"""What a task-shared agent's Q-values follow on a benchmark: each task's Q beside its features.

Builds the benchmark's scheduling environment (its own probe settings and decision steps, as
``qls`` with ``transfer=true`` runs), trains round-robin over the tasks for ``--decisions``
decisions (run seed ``--seed``; with ``--follow agent``, on the agent's greedy choices instead,
printing one line per decision: the chosen task, its Q-value, the next best one and the chosen
task's features), then scores the last observation with the agent's Q-network and
prints, per task, its Q-value, its per-task features (`TASK_FEATURE_NAMES`) and the mean bin of
its uncertainty histogram. A policy that mostly ranks tasks by how badly they do gives Q-values
that fall with accuracy; on a task set where one task stays far below the others, such a policy
keeps choosing it.

The last line is ``q_accuracy_correlation X``: the Spearman rank correlation between the tasks'
Q-values and their probe accuracies (near -1: the agent prefers the least accurate task).

    python benchmarks/agent_q_values.py --agent results/agents/fdu-mtl-small-seed-0 \\
        --benchmark fdu-mtl --decisions 60
    python benchmarks/agent_q_values.py --agent results/agents/fdu-mtl-small-seed-0 \\
        --benchmark fdu-mtl --small --option budget=12800 --decisions 60
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from benchmark_args import BenchmarkArgs
from scipy.stats import spearmanr

from mtl_sched.agents.context import agent_context, read_vocabulary
from mtl_sched.agents.loading import load_trained_agent
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.observation.task_features import TASK_FEATURE_NAMES
from mtl_sched.script_args import parse_args_into

# the features printed for each decision of --follow agent (the rest are the same in every row)
TRACED_FEATURES = TASK_FEATURE_NAMES[:5]


@dataclass
class Args(BenchmarkArgs):
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    agent: str = field(default="", metadata={"help": "train-agent directory or agent .zip"})
    benchmark: str = field(default="fdu-mtl", metadata={"help": "benchmark to measure"})
    decisions: int = field(default=60, metadata={"help": "decisions before scoring"})
    follow: str = field(
        default="round-robin",
        metadata={"help": "who chooses the decisions: round-robin, or agent (its greedy choice)"},
    )
    seed: int = field(default=0, metadata={"help": "run seed of the environment"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def main(args: Args) -> float:
    """Print the table; return the rank correlation of Q-values with accuracies."""
    torch.set_num_threads(args.threads)
    if not args.agent:
        raise SystemExit("--agent is required: a train-agent directory or a saved agent .zip")
    agent = load_trained_agent(args.agent).agent
    q_net = getattr(agent.policy, "q_net", None)
    if q_net is None:
        raise SystemExit(f"--agent {args.agent}: its policy has no Q-network scoring each task")
    if args.follow not in ("round-robin", "agent"):
        raise SystemExit(f"--follow must be round-robin or agent; got {args.follow!r}")
    # the agent's observation: with the identities of its vocabulary when it read them
    env = MTLSchedulingEnv(
        args.make_benchmark(),
        observation="task-features",
        task_vocabulary=read_vocabulary(agent_context(agent)),
    )
    observation, _ = env.reset(seed=args.seed)
    num_tasks = env.action_space.n
    bins = env.probe_config.bins

    def scored(observation: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            batch = torch.as_tensor(observation[None], dtype=torch.float32, device=agent.device)
            return q_net(batch)[0, :num_tasks].cpu().numpy()

    info: dict = {}
    if args.follow == "agent":
        print(
            f"{'decision':>8s} {'chosen':>22s} {'Q':>8s} {'next best Q':>11s} "
            + " ".join(f"{name:>14s}" for name in TRACED_FEATURES)
        )
    for decision in range(args.decisions):
        action = decision % num_tasks
        if args.follow == "agent":
            q_values = scored(observation)
            action = int(q_values.argmax())
            row = observation[action, bins : bins + len(TRACED_FEATURES)]
            print(
                f"{decision:8d} {env.task_names[action]:>22s} {q_values[action]:8.3f} "
                f"{np.sort(q_values)[-2]:11.3f} " + " ".join(f"{v:14.3f}" for v in row)
            )
        observation, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            raise SystemExit(f"--decisions {args.decisions} is longer than one episode")
    q_values = scored(observation)
    features = observation[:num_tasks, bins : bins + len(TASK_FEATURE_NAMES)]
    accuracies = features[:, TASK_FEATURE_NAMES.index("accuracy")]
    mean_bins = observation[:num_tasks, :bins] @ np.arange(bins)
    print(
        f"{args.benchmark}{' --small' if args.small else ''}: {args.decisions} {args.follow} "
        f"decisions, {info.get('examples_seen')} examples, run seed {args.seed}"
    )
    header = " ".join(f"{name:>18s}" for name in TASK_FEATURE_NAMES)
    print(f"{'task':>22s} {'Q':>8s} {header} {'mean bin':>9s}")
    for k, name in enumerate(env.task_names):
        values = " ".join(f"{value:18.3f}" for value in features[k])
        print(f"{name:>22s} {q_values[k]:8.3f} {values} {mean_bins[k]:9.2f}")
    correlation = float(spearmanr(q_values, accuracies).statistic)
    print(f"q_accuracy_correlation {correlation:.3f}")
    return correlation


if __name__ == "__main__":
    main(parse_args())

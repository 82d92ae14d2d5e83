"""What the scheduler agent costs per environment step, next to the environment step itself.

One `BoltzmannGumbelDQN` learns on the benchmark's `MTLSchedulingEnv` with the default
`AgentSettings`. After ``learning_starts`` warm-up steps (the replay buffer fills, no gradient
updates yet), ``agent.learn`` runs ``--steps`` more environment steps while four clocks run side
by side: ``env.step`` (one training step of the multi-task model plus the probe pass), ``env.reset``
(a fresh model at each episode end), the agent's action selection (Q-network forward pass plus
Boltzmann-Gumbel noise) and its gradient updates (``train``: replay sampling, Q-network update,
target-network copies). Everything else ``learn`` does (replay-buffer writes, callbacks,
logging) is the rest of the agent's time. The last line is ``ratio <agent seconds per env step /
env.step seconds per env step>``.

    python benchmarks/agent_overhead.py
    python benchmarks/agent_overhead.py --steps 5000 --clock wall
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

from mtl_sched.agents import AgentSettings
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.script_args import parse_args_into


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark to train on"})
    steps: int = field(default=2_000, metadata={"help": "measured env steps after warm-up"})
    learning_starts: int = field(default=500, metadata={"help": "warm-up env steps"})
    seed: int = field(default=0, metadata={"help": "seed of the agent and environment"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    clock: str = field(
        default="process",
        metadata={"help": "process (CPU time: steady on a shared machine, CPU only) or wall"},
    )


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


class Stopwatch:
    """Accumulated seconds and calls of one wrapped function.

    :param clock: the time source.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += self.clock() - start
                self.calls += 1

        return timed

    def clear(self) -> None:
        self.seconds, self.calls = 0.0, 0


class TimedEnv(gym.Wrapper):
    """Times ``step`` and ``reset`` of the wrapped environment.

    :param env: the environment.
    :param step_watch: accumulates ``step``.
    :param reset_watch: accumulates ``reset``.
    """

    def __init__(self, env: gym.Env, step_watch: Stopwatch, reset_watch: Stopwatch) -> None:
        super().__init__(env)
        self.step = step_watch.wrap(env.step)  # type: ignore[method-assign]
        self.reset = reset_watch.wrap(env.reset)  # type: ignore[method-assign]


def main(args: Args) -> float:
    torch.set_num_threads(args.threads)
    if args.clock not in ("process", "wall"):
        raise SystemExit(f"--clock must be process or wall; got {args.clock!r}")
    clock = time.process_time if args.clock == "process" else time.perf_counter
    watches = {name: Stopwatch(clock) for name in ("step", "reset", "act", "train")}
    settings = AgentSettings(learning_starts=args.learning_starts)
    env = settings.make_env(get_benchmark(args.benchmark))
    timed_env = TimedEnv(env, watches["step"], watches["reset"])
    total_steps = args.learning_starts + args.steps
    agent = settings.make_agent(timed_env, seed=args.seed, total_steps=total_steps)
    if args.clock == "process" and (agent.device.type == "cuda" or torch.cuda.is_available()):
        raise SystemExit("process time misses the GPU's work: use --clock wall on CUDA")
    # SB3 calls these through self, so instance attributes intercept them
    agent._sample_action = watches["act"].wrap(agent._sample_action)
    agent.train = watches["train"].wrap(agent.train)

    agent.learn(args.learning_starts)
    for watch in watches.values():
        watch.clear()
    start = clock()
    agent.learn(args.steps, reset_num_timesteps=False)
    total = clock() - start

    steps = watches["step"].calls
    env_step = watches["step"].seconds / steps
    agent_seconds = total - watches["step"].seconds - watches["reset"].seconds
    rest = agent_seconds - watches["act"].seconds - watches["train"].seconds
    rows = [
        ("env.step (train step + probe pass)", watches["step"].seconds),
        (f"env.reset ({watches['reset'].calls} episodes)", watches["reset"].seconds),
        ("agent: action selection", watches["act"].seconds),
        (f"agent: gradient updates ({watches['train'].calls} calls)", watches["train"].seconds),
        ("agent: rest of learn (buffer, callbacks, logging)", rest),
        ("agent: total", agent_seconds),
    ]
    print(
        f"{args.benchmark}: {steps} env steps after {args.learning_starts} warm-up steps, "
        f"{args.clock} clock, {args.threads} thread(s)"
    )
    print(f"{'part':<52} {'ms / env step':>14} {'x env.step':>11}")
    for label, seconds in rows:
        per_step = seconds / steps
        print(f"{label:<52} {1e3 * per_step:>14.3f} {per_step / env_step:>11.3f}")
    ratio = agent_seconds / steps / env_step
    print(f"ratio {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main(parse_args())

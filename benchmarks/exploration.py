"""Greedy-schedule score of DQN scheduler agents under three exploration methods.

For each method and agent seed, one agent learns on the benchmark's scheduling environment
(``AgentSettings.make_env``: the environment of ``mtl-sched train-agent``) for ``--steps``
environment steps with the same DQN hyperparameters (``AgentSettings``), then its greedy schedule
is scored by the greedy evaluation of ``train-agent`` (``GreedyEvaluationCallback``: one training
run of the benchmark's model per ``--eval-seeds`` seed, average validation accuracy), on run seeds
held out from agent training. The methods:

``boltzmann-gumbel``
    `BoltzmannGumbelDQN`: ``argmax_a Q(s, a) + C * temperature(t) / sqrt(N_a) * Z_a``.
``epsilon-greedy``
    SB3's stock ``DQN`` with its default linear epsilon schedule (1 to 0.05 over the first 10% of
    the steps, uniform random actions during the ``learning_starts`` warm-up).
``boltzmann``
    `BoltzmannGumbelDQN` with ``exploration="boltzmann"``: ``softmax(Q / (C * temperature(t)))``,
    the same annealed temperature without the count scaling.

Fixed schedulers (``--baselines``) are scored on the same evaluation seeds for reference. The
table gives each method's mean and sample standard deviation over the agent seeds, and each
seed's score.

Every finished (method, seed) result is written to ``<out>/results.json`` at once; a rerun with
the same configuration skips them, so an interrupted sweep resumes where it stopped (the run
in progress starts again) and more seeds can be added later. A results file written for another
configuration is refused. Each agent and its greedy evaluation are kept in
``<out>/runs/<method>-seed<seed>/``.

    python benchmarks/exploration.py --steps 3000 --seeds 0,1,2
    python benchmarks/exploration.py --small --steps 200 --setting learning_starts=20
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure

from mtl_sched.agents.preparation import PreparationLedger
from mtl_sched.agents.qls import greedy_scheduler
from mtl_sched.agents.training import AgentSettings, GreedyEvaluationCallback
from mtl_sched.benchmarks import Benchmark, get_benchmark
from mtl_sched.registry import make_scheduler
from mtl_sched.script_args import parse_args_into, parse_key_value

METHODS = ("boltzmann-gumbel", "epsilon-greedy", "boltzmann")
RESULTS_FILE = "results.json"


@dataclass
class Args:
    """Command-line arguments: ``--name value`` for each field (dashes for underscores)."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark to train on"})
    small: bool = field(default=False, metadata={"help": "the benchmark's small variant"})
    option: list[str] = field(
        default_factory=list,
        metadata={"help": "benchmark option KEY=VALUE (repeatable), e.g. budget=4800"},
    )
    setting: list[str] = field(
        default_factory=list,
        metadata={"help": "agent setting KEY=VALUE (repeatable; see AgentSettings)"},
    )
    steps: int = field(default=3_000, metadata={"help": "environment steps per agent"})
    seeds: str = field(default="0,1,2", metadata={"help": "comma-separated agent seeds"})
    methods: str = field(default=",".join(METHODS), metadata={"help": "comma-separated methods"})
    eval_seeds: str = field(
        default="1000,1001", metadata={"help": "run seeds of the greedy evaluation"}
    )
    baselines: str = field(
        default="uniform,round-robin",
        metadata={"help": "fixed schedulers scored for reference (empty: none)"},
    )
    out: str = field(default="exploration-results", metadata={"help": "output directory"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})


def parse_args(argv: list[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _seeds(text: str) -> list[int]:
    return [int(seed) for seed in _names(text)]


def identity(args: Args) -> dict[str, Any]:
    """What every result in one results file shares (seeds and methods may be added later)."""
    options = dict(parse_key_value(text) for text in args.option)
    if args.small:
        options["small"] = True
    chosen = dict(parse_key_value(text) for text in args.setting)
    if "exploration" in chosen:
        raise ValueError("--setting exploration is not for this script: --methods picks it")
    settings = AgentSettings.from_dict(chosen)
    values = {
        "benchmark": args.benchmark,
        "benchmark_options": options,
        "agent": asdict(settings),
        "steps": args.steps,
        "eval_seeds": _seeds(args.eval_seeds),
    }
    return json.loads(json.dumps(values))  # tuples become lists, as read back from disk


def load_results(path: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The results stored in ``path`` (empty when it does not exist yet).

    :param path: the results file.
    :param wanted: the configuration of this sweep; a file written for another one is refused.
    """
    if not path.exists():
        return {"config": wanted, "runs": {}, "baselines": {}}
    try:
        stored = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if stored.get("config") != wanted:
        differing = sorted(k for k in wanted if stored.get("config", {}).get(k) != wanted[k])
        raise ValueError(
            f"{path} holds results of another configuration (differing {differing}); "
            "use another --out or the same settings"
        )
    return stored


def _save_results(path: Path, results: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2))
    os.replace(temporary, path)


def make_agent(method: str, settings: AgentSettings, env: Any, seed: int, steps: int) -> DQN:
    """A fresh agent of ``method`` with the DQN hyperparameters of ``settings``."""
    if method == "epsilon-greedy":
        return DQN("MlpPolicy", env, **settings.dqn_kwargs(seed, steps))
    if method in ("boltzmann-gumbel", "boltzmann"):
        return dataclasses.replace(settings, exploration=method).make_agent(env, seed, steps)
    raise ValueError(f"unknown exploration method {method!r}; known: {', '.join(METHODS)}")


def run_one(
    method: str,
    seed: int,
    benchmark: Benchmark,
    settings: AgentSettings,
    steps: int,
    eval_seeds: list[int],
    folder: Path,
) -> dict[str, Any]:
    """Train one agent and score its greedy schedule; returns the result record.

    :param method: exploration method (one of ``METHODS``).
    :param seed: the agent's seed.
    :param benchmark: the benchmark to schedule.
    :param settings: environment and DQN settings.
    :param steps: environment steps of training.
    :param eval_seeds: run seeds of the greedy evaluation.
    :param folder: where the agent and its evaluation are written (emptied first).
    """
    shutil.rmtree(folder, ignore_errors=True)  # a run cut short leaves partial files
    folder.mkdir(parents=True)
    env = settings.make_env(benchmark)
    agent = make_agent(method, settings, env, seed, steps)
    agent.set_logger(configure(str(folder / "logs"), ["csv"]))
    cpu, wall = time.process_time(), time.perf_counter()
    agent.learn(steps)
    train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
    agent.save(folder / "agent.zip")
    progress_state: dict[str, Any] = {}
    ledger = PreparationLedger(progress_state, env, n_envs=1)
    evaluator = GreedyEvaluationCallback(
        folder, [benchmark], eval_seeds, steps, progress_state, ledger, greedy_scheduler
    )
    evaluator.init_callback(agent)
    cpu, wall = time.process_time(), time.perf_counter()
    score = evaluator.evaluate()
    evaluation = json.loads((folder / "best" / "evaluation.json").read_text())
    return {
        "method": method,
        "seed": seed,
        "score": score,
        "eval_scores": evaluation["scores"],
        "train_cpu_s": train_cpu,
        "train_wall_s": train_wall,
        "eval_cpu_s": time.process_time() - cpu,
        "eval_wall_s": time.perf_counter() - wall,
    }


def baseline_scores(name: str, benchmark: Benchmark, eval_seeds: list[int]) -> list[float]:
    """Validation averages of a fixed scheduler on the evaluation seeds (as the agents')."""
    scores = []
    for seed in eval_seeds:
        scheduler = make_scheduler(name)
        scheduler.prepare(benchmark)
        result = benchmark.make_trainer(seed).run(scheduler)
        scores.append(float(result.best_validation.average_score))
    return scores


def _spread(scores: list[float]) -> float:
    return float(np.std(scores, ddof=1)) if len(scores) > 1 else float("nan")


def format_table(
    results: dict[str, Any], methods: list[str], seeds: list[int], baselines: list[str]
) -> str:
    """The summary table of ``methods`` over ``seeds``, then the fixed ``baselines``.

    :param results: the contents of a results file.
    :param methods: exploration methods, in table order.
    :param seeds: agent seeds.
    :param baselines: fixed schedulers (their stored scores).
    """
    keys = [f"{method}/{seed}" for method in methods for seed in seeds]
    done = [results["runs"][key] for key in keys if key in results["runs"]]
    header = f"{'method':20} {'runs':>4} {'mean':>7} {'std':>7}  per-seed scores"
    lines = [header, "-" * 74]
    for method in methods:
        runs = [run for run in done if run["method"] == method]
        scores = [run["score"] for run in runs]
        per_seed = " ".join(f"{run['seed']}:{run['score']:.4f}" for run in runs)
        mean = float(np.mean(scores)) if scores else float("nan")
        lines.append(f"{method:20} {len(runs):>4} {mean:>7.4f} {_spread(scores):>7.4f}  {per_seed}")
    for name in baselines:
        scores = results["baselines"][name]
        lines.append(
            f"{name + ' (fixed)':20} {'-':>4} {np.mean(scores):>7.4f} {_spread(scores):>7.4f}  "
            + " ".join(f"{s:.4f}" for s in scores)
        )
    if done:
        config = results["config"]
        lines.append(
            f"{config['benchmark']} {config['benchmark_options']}, {config['steps']} agent steps, "
            f"greedy validation average over eval seeds {config['eval_seeds']}; per agent: "
            f"train {np.mean([r['train_wall_s'] for r in done]):.0f} s wall "
            f"({np.mean([r['train_cpu_s'] for r in done]):.0f} s CPU), evaluation "
            f"{np.mean([r['eval_wall_s'] for r in done]):.0f} s wall "
            f"({np.mean([r['eval_cpu_s'] for r in done]):.0f} s CPU)"
        )
    return "\n".join(lines)


def main(args: Args) -> str:
    """Run the missing (method, seed) results of the sweep and return the table."""
    torch.set_num_threads(args.threads)
    methods, seeds, eval_seeds = _names(args.methods), _seeds(args.seeds), _seeds(args.eval_seeds)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown exploration methods {unknown}; known: {', '.join(METHODS)}")
    if args.steps < 1 or not seeds or not eval_seeds:
        raise ValueError("need positive --steps, at least one seed and one eval seed")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = identity(args)
    path = out / RESULTS_FILE
    results = load_results(path, wanted)
    benchmark = get_benchmark(args.benchmark, **wanted["benchmark_options"])
    settings = AgentSettings.from_dict(wanted["agent"])
    for name in _names(args.baselines):
        if name not in results["baselines"]:
            results["baselines"][name] = baseline_scores(name, benchmark, eval_seeds)
            _save_results(path, results)
    for seed in seeds:
        for method in methods:
            key = f"{method}/{seed}"
            if key in results["runs"]:
                continue
            folder = out / "runs" / f"{method}-seed{seed}"
            record = run_one(method, seed, benchmark, settings, args.steps, eval_seeds, folder)
            results["runs"][key] = record
            _save_results(path, results)
            print(
                f"{method} seed {seed}: {record['score']:.4f} "
                f"(train {record['train_wall_s']:.0f} s, evaluation {record['eval_wall_s']:.0f} s)",
                flush=True,
            )
    return format_table(results, methods, seeds, _names(args.baselines))


if __name__ == "__main__":
    print(main(parse_args()))

"""Hand-crafted weights (seed 002, Tables 2, 5, 6): fixed task weights found by search.

A full grid over K weights is exponential in K, so the weights are found by coordinate search
over a small candidate set: starting from all ones, each task's weight in turn is set to the
candidate with the best validation score (the others fixed), for a number of rounds. Every
candidate vector is scored by training a fresh model with it and taking the best average
validation score of its evaluations; test data are never touched. What the search cost, in
training examples, is kept (``preparation_examples``) so that reports can show it beside the
run's own budget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mtl_sched.data.task import Task
from mtl_sched.registry import register_scheduler
from mtl_sched.scheduling import Scheduler, Step, TrainState

if TYPE_CHECKING:
    from mtl_sched.benchmarks.base import Benchmark
    from mtl_sched.training import Trainer


@dataclass(frozen=True)
class WeightSearchResult:
    """Outcome of a weight search.

    :param weights: the best weight vector found.
    :param validation_score: its average validation score.
    :param examples: training examples consumed by the whole search.
    :param trials: weight vectors trained and scored.
    """

    weights: tuple[float, ...]
    validation_score: float
    examples: int
    trials: int


def validation_score(trainer: Trainer, weights: Sequence[float]) -> float:
    """Train ``trainer``'s model with fixed ``weights`` up to its budget and return the best
    average validation score over its evaluation cadence (validation data only)."""
    plan = Step.weighted(weights)
    budget = trainer.config.budget
    interval = trainer.config.eval_interval
    next_eval = trainer.examples_seen + interval
    best = -np.inf
    while trainer.examples_seen < budget:
        trainer.train_step(plan, max_examples=budget - trainer.examples_seen)
        if trainer.examples_seen >= next_eval or trainer.examples_seen >= budget:
            best = max(best, trainer.evaluate("validation").average_score)
            while next_eval <= trainer.examples_seen:
                next_eval += interval
    return float(best)


def coordinate_search(
    trainer_factory: Callable[[int], Trainer],
    num_tasks: int,
    candidates: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    rounds: int = 1,
    budget: int | None = None,
    seed: int = 0,
) -> WeightSearchResult:
    """Coordinate search of task weights on validation data.

    :param trainer_factory: ``seed -> Trainer`` over a fresh model.
    :param num_tasks: number of tasks ``K``.
    :param candidates: values each weight may take.
    :param rounds: passes over the tasks; the search stops early after a pass without gain.
    :param budget: training examples of each trial run (``None``: the trainer's budget).
    :param seed: seed of every trial run.
    """
    scores: dict[tuple[float, ...], float] = {}
    examples = 0

    def score(weights: tuple[float, ...]) -> float:
        nonlocal examples
        if weights not in scores:
            trainer = trainer_factory(seed)
            if budget is not None:
                trainer.config = dataclasses.replace(trainer.config, budget=budget)
            scores[weights] = validation_score(trainer, weights)
            examples += trainer.examples_seen
        return scores[weights]

    current = (1.0,) * num_tasks
    best = score(current)
    for _ in range(rounds):
        improved = False
        for k in range(num_tasks):
            for value in candidates:
                trial = (*current[:k], float(value), *current[k + 1 :])
                if trial != current and score(trial) > best:
                    current, best, improved = trial, scores[trial], True
        if not improved:
            break
    return WeightSearchResult(current, best, examples, len(scores))


@register_scheduler
class HandCraftedScheduler(Scheduler):
    """Train every task every step with fixed weights, given or found by coordinate search.

    :param weights: the task weights, in task order; ``None`` searches them in ``prepare``
        (cached on disk per benchmark configuration and search settings) or ``search``.
    :param candidates: values each weight may take in the search.
    :param search_rounds: passes of the coordinate search over the tasks.
    :param search_budget: training examples of each trial run (``None``: the benchmark's
        budget, i.e. each trial is a full run).
    :param search_seed: seed of the trial runs.
    """

    name = "hand-crafted"
    description = "every task every step with fixed weights found by search on validation data"
    source = "seed 002, Tables 2, 5, 6 (Hand Crafted); coordinate search over a candidate set"
    kind = "weighting"
    needs = frozenset({"weights"})

    def __init__(
        self,
        weights: Sequence[float] | None = None,
        candidates: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        search_rounds: int = 1,
        search_budget: int | None = None,
        search_seed: int = 0,
    ) -> None:
        super().__init__()
        if not candidates or any(not np.isfinite(c) or c < 0 for c in candidates):
            raise ValueError(f"candidates must be finite non-negative numbers; got {candidates}")
        if search_rounds < 1:
            raise ValueError(f"search_rounds must be positive; got {search_rounds}")
        if search_budget is not None and search_budget < 1:
            raise ValueError(f"search_budget must be positive; got {search_budget}")
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        self.candidates = tuple(float(c) for c in candidates)
        self.search_rounds = search_rounds
        self.search_budget = search_budget
        self.search_seed = search_seed
        self.search_result: WeightSearchResult | None = None
        self._run_weights: tuple[float, ...] = ()

    @property
    def preparation_examples(self) -> int:
        return 0 if self.search_result is None else self.search_result.examples

    def search(
        self, trainer_factory: Callable[[int], Trainer], num_tasks: int
    ) -> WeightSearchResult:
        """Search the weights with this scheduler's settings and adopt them.

        :param trainer_factory: ``seed -> Trainer`` over a fresh model (a user's own setup).
        :param num_tasks: number of tasks of that trainer.
        """
        self.search_result = coordinate_search(
            trainer_factory,
            num_tasks,
            self.candidates,
            self.search_rounds,
            self.search_budget,
            self.search_seed,
        )
        self.weights = self.search_result.weights
        return self.search_result

    def prepare(self, benchmark: Benchmark) -> None:
        if self.weights is not None:
            return
        from mtl_sched.references import cache_dir, write_json_atomically

        settings = {
            "candidates": self.candidates,
            "rounds": self.search_rounds,
            "budget": self.search_budget or benchmark.trainer_config.budget,
            "seed": self.search_seed,
        }
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        name = f"{benchmark.name}-{benchmark.fingerprint()}-{key}.json"
        path = cache_dir() / "hand-crafted" / name
        if path.exists():
            try:
                payload = json.loads(path.read_text())
                result = WeightSearchResult(
                    tuple(payload["weights"]),
                    payload["validation_score"],
                    payload["examples"],
                    payload["trials"],
                )
                if len(result.weights) == benchmark.num_tasks:
                    self.search_result, self.weights = result, result.weights
                    return
            except (json.JSONDecodeError, KeyError, TypeError):
                pass  # a damaged cache entry is searched again and overwritten
        result = self.search(
            lambda seed: benchmark.make_trainer(seed, budget=settings["budget"]),
            benchmark.num_tasks,
        )
        write_json_atomically(
            path, {"tasks": list(benchmark.task_names), **settings, **dataclasses.asdict(result)}
        )

    def reset(self, tasks: Sequence[Task], seed: int) -> None:
        super().reset(tasks, seed)
        if self.weights is None:
            raise ValueError(
                "scheduler 'hand-crafted' has no weights: pass weights=[...] (one per task) or "
                "search them first with prepare(benchmark) or search(trainer_factory, K) "
                "('mtl-sched run' and compare_schedulers call prepare)"
            )
        if len(self.weights) != self.num_tasks:
            raise ValueError(
                f"hand-crafted: {len(self.weights)} weights for {self.num_tasks} tasks"
            )
        self._run_weights = self.weights

    def plan(self, state: TrainState) -> Step:
        return Step.weighted(self._run_weights)

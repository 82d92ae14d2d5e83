"""Greedy evaluation of a scheduler agent during ``train-agent`` (model selection), and the files
it keeps in the run's output directory.

Every ``eval_every`` steps the agent runs greedily as a scheduler (`mtl_sched.agents.QLSScheduler`)
on every training benchmark's full task set, once per eval seed; its score is the mean of the
selected models' average validation scores over the benchmarks and seeds. ``evaluations.csv`` gets
one row per evaluation: ``timesteps``, ``validation_average``, one ``seed_<s>`` column per eval
seed (that seed's score, averaged over the benchmarks) and, with several benchmarks, one
``benchmark_<name>`` column each (its mean over the seeds). The best agent so far is kept in
``best/`` with its ``evaluation.json``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from mtl_sched.agents.boltzmann_gumbel import BoltzmannGumbelDQN
from mtl_sched.agents.env_state import isolated_random_state
from mtl_sched.agents.preparation import PreparationLedger
from mtl_sched.benchmarks import Benchmark
from mtl_sched.scheduling import Scheduler

EVALUATIONS_FILE = "evaluations.csv"


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Replace ``path`` whole by ``payload`` as JSON (written aside, then renamed).

    :param path: the file.
    :param payload: its contents.
    """
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2))
    os.replace(temporary, path)


def crossed_multiple(timesteps: int, step: int, every: int) -> bool:
    """Whether the last ``step`` timesteps (one step of every environment) reached a multiple of
    ``every``: exactly ``timesteps % every == 0`` with one environment.

    :param timesteps: timesteps after the step.
    :param step: timesteps the step took (the number of environments).
    :param every: the period.
    """
    return timesteps // every > (timesteps - step) // every


class GreedyEvaluationCallback(BaseCallback):
    """Every ``every`` steps, run the agent greedily as a scheduler and keep the best agent.

    Each evaluation trains each benchmark's model from scratch once per seed under
    `QLSScheduler` and scores the selected model's average validation accuracy; the training
    examples of those runs count into the agent's preparation examples.

    :param out: the run's output directory.
    :param benchmarks: the benchmarks to run on (full task sets).
    :param seeds: training seeds of the evaluation runs.
    :param every: environment steps between evaluations (with several environments, at the
        first step of them all that reaches each multiple of ``every``).
    :param progress_state: shared state holding ``best_score`` and ``best_timesteps``.
    :param ledger: the preparation examples, and the context recorded on the agent.
    :param scheduler_for: the greedy scheduler of an agent on a benchmark
        (`mtl_sched.agents.qls.greedy_scheduler`).
    """

    def __init__(
        self,
        out: Path,
        benchmarks: Sequence[Benchmark],
        seeds: Sequence[int],
        every: int,
        progress_state: dict[str, Any],
        ledger: PreparationLedger,
        scheduler_for: Callable[[BoltzmannGumbelDQN, Benchmark], Scheduler],
    ) -> None:
        super().__init__()
        self.scheduler_for = scheduler_for
        self.out = out
        self.benchmarks = tuple(benchmarks)
        self.seeds = tuple(seeds)
        self.every = every
        self.progress_state = progress_state
        self.ledger = ledger
        self.last_evaluated = -1

    def _on_step(self) -> bool:
        if crossed_multiple(self.num_timesteps, self.training_env.num_envs, self.every):
            self.evaluate()
        return True

    def evaluate(self) -> float:
        """Run the evaluation now; returns the mean validation score.

        The best agent is replaced first (written to a temporary folder, then renamed into
        ``best/``), and the row of ``evaluations.csv`` is appended last and flushed to disk: an
        evaluation with a row is complete, one without is run again on resume.
        """
        model = self.model
        if self.last_evaluated == model.num_timesteps:
            return float("nan")
        self.ledger.attach(model)  # the scheduler reads the training settings from the agent
        scores = np.zeros((len(self.benchmarks), len(self.seeds)))
        # the evaluation leaves the training's random streams as they were
        with isolated_random_state():
            for b, benchmark in enumerate(self.benchmarks):
                for s, seed in enumerate(self.seeds):
                    scheduler = self.scheduler_for(model, benchmark)
                    result = benchmark.make_trainer(seed).run(scheduler)
                    scores[b, s] = result.best_validation.average_score
                    self.ledger.add(result.examples_seen)
        per_seed = [float(score) for score in scores.mean(axis=0)]
        per_benchmark = {
            b.name: float(score) for b, score in zip(self.benchmarks, scores.mean(1), strict=True)
        }
        mean = float(scores.mean())
        if not mean <= self.progress_state.get("best_score", -np.inf):
            evaluation = {
                "timesteps": model.num_timesteps,
                "validation_average": mean,
                "scores": per_seed,
                "benchmarks": per_benchmark,
            }
            self.ledger.attach(model)
            replace_best(self.out, model, evaluation)
            self.progress_state.update(best_score=mean, best_timesteps=model.num_timesteps)
        self._append_row(model.num_timesteps, mean, per_seed, per_benchmark)
        self.progress_state["last_evaluated"] = model.num_timesteps
        self.last_evaluated = model.num_timesteps
        self.logger.record("eval/validation_average", mean)
        if len(per_benchmark) > 1:
            for name, score in per_benchmark.items():
                self.logger.record(f"eval/{name}/validation_average", score)
        return mean

    def _append_row(
        self, timesteps: int, mean: float, scores: list[float], per_benchmark: dict[str, float]
    ) -> None:
        # one benchmark keeps the columns of runs written before several were possible
        extra = per_benchmark if len(per_benchmark) > 1 else {}
        path = self.out / EVALUATIONS_FILE
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                seed_columns = [f"seed_{seed}" for seed in self.seeds]
                benchmark_columns = [f"benchmark_{name}" for name in extra]
                writer.writerow(
                    ["timesteps", "validation_average", *seed_columns, *benchmark_columns]
                )
            values = [*scores, *extra.values()]
            writer.writerow([timesteps, f"{mean:.6f}"] + [f"{v:.6f}" for v in values])
            handle.flush()
            os.fsync(handle.fileno())


def replace_best(out: Path, model: BaseAlgorithm, evaluation: dict[str, Any]) -> None:
    """Make ``model`` and its ``evaluation`` the contents of ``out/best``: both are written to
    ``best.tmp`` first, so that ``best/`` always holds an agent with its own evaluation.

    :param out: the run's output directory.
    :param model: the agent.
    :param evaluation: its evaluation (``timesteps``, ``validation_average``, ...).
    """
    best, temporary, previous = out / "best", out / "best.tmp", out / "best.previous"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    model.save(temporary / "agent.zip")
    write_json_atomically(temporary / "evaluation.json", evaluation)
    shutil.rmtree(previous, ignore_errors=True)
    if best.exists():
        os.replace(best, previous)
    os.replace(temporary, best)
    shutil.rmtree(previous, ignore_errors=True)


def recover_best(out: Path) -> None:
    """Finish a replacement of ``out/best`` that a killed process left half done.

    :param out: the run's output directory.
    """
    best, previous = out / "best", out / "best.previous"
    if not best.exists() and previous.is_dir():
        os.replace(previous, best)
    shutil.rmtree(out / "best.tmp", ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)


def stored_best(out: Path) -> tuple[float, int] | None:
    """Score and timesteps of the agent in ``out/best`` (``None`` when there is none).

    :param out: the run's output directory.
    """
    try:
        evaluation = json.loads((out / "best" / "evaluation.json").read_text())
        return float(evaluation["validation_average"]), int(evaluation["timesteps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_rows(out: Path) -> list[list[str]]:
    path = out / EVALUATIONS_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def _row_timesteps(row: list[str]) -> int | None:
    try:
        return int(row[0])
    except (IndexError, ValueError):  # a row cut short by a killed process
        return None


def evaluated_timesteps(out: Path) -> set[int]:
    """Timesteps of the rows of ``out/evaluations.csv``.

    :param out: the run's output directory.
    """
    found = {_row_timesteps(row) for row in _read_rows(out)[1:]}
    return {timesteps for timesteps in found if timesteps is not None}


def drop_evaluations_after(out: Path, timesteps: int) -> None:
    """Remove the rows of ``out/evaluations.csv`` of evaluations after ``timesteps``.

    An exact resume from the checkpoint of ``timesteps`` runs those evaluations again, with the
    same results, so the file ends as the uninterrupted run's (one row per evaluation). The file
    is replaced whole (written aside, then renamed).

    :param out: the run's output directory.
    :param timesteps: the resumed checkpoint's timesteps.
    """
    rows = _read_rows(out)
    if not rows:
        return
    kept = [_row_timesteps(row) for row in rows[1:]]
    body = [
        row for row, at in zip(rows[1:], kept, strict=True) if at is not None and at <= timesteps
    ]
    if len(body) == len(rows) - 1:
        return
    path = out / EVALUATIONS_FILE
    aside = path.with_suffix(".csv.tmp")
    with aside.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *body])
        handle.flush()
        os.fsync(handle.fileno())
    aside.replace(path)


def evaluation_seeds(out: Path, stored: dict[str, Any]) -> list[int] | None:
    """The eval seeds of the run in ``out``: from its settings, else from the header of its
    ``evaluations.csv``; ``None`` when neither says.

    :param out: the run's output directory.
    :param stored: its ``settings.json``.
    """
    if isinstance(stored.get("eval_seeds"), list):
        return [int(seed) for seed in stored["eval_seeds"]]
    path = out / EVALUATIONS_FILE
    if not path.is_file():
        return None
    header = _read_rows(out)[:1] or [[]]
    return [int(name.removeprefix("seed_")) for name in header[0] if name.startswith("seed_")]

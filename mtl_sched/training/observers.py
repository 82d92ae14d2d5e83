"""What a training run tells its observers: `RunObserver`.

`Trainer.run` calls every observer it is given at its validation evaluations and once at the
end, so that logging (`mtl_sched.training.tensorboard.TensorBoardObserver`) or live monitoring stays
out of the training loop. An observer only reads: it must not change the model, the trainer or
the scheduler, so a run with observers is the run without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mtl_sched.scheduling import EvalResult

if TYPE_CHECKING:
    from mtl_sched.training.run_result import RunResult


@runtime_checkable
class RunObserver(Protocol):
    """Receives a run's validation evaluations and its result."""

    def on_evaluation(
        self,
        step: int,
        examples_seen: int,
        metrics: EvalResult,
        task_shares: Mapping[str, float],
    ) -> None:
        """Called after each validation evaluation (the last one at the end of the budget).

        :param step: training steps taken so far.
        :param examples_seen: training examples consumed so far (the budget's unit).
        :param metrics: the validation losses and scores of every task, in the order of
            ``task_shares``.
        :param task_shares: task name -> fraction of the examples seen so far that went to
            it (the shares sum to 1), in the run's task order.
        """
        ...

    def on_end(self, result: RunResult) -> None:
        """Called once the run has finished and its selected model was tested.

        :param result: the run's result (test metrics of the model selected on validation).
        """
        ...

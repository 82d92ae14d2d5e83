"""Errors shared by training, probing and evaluation: `NonFiniteLossError`, and
`AgentMismatchError` for a trained scheduling agent that does not fit a run.

It lives apart from the scheduler contract (`mtl_sched.scheduling`, which re-exports it) so that
the modules that raise it need not import the contract.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["AgentMismatchError", "NonFiniteLossError"]


class NonFiniteLossError(ValueError):
    """A loss, or the class probabilities behind it, is NaN or infinite: the model's outputs
    are no longer numbers, and nothing trained, selected or scored from them would mean
    anything.

    :param task: the task whose loss is not finite; ``None`` when every task loss of a training
        step is finite but their combination is not.
    :param step: the training step: the index of the step whose loss it is (``kind="training"``),
        or the steps taken before the evaluation or probe pass; ``None`` when unknown.
    :param kind: which loss: ``"training"``, ``"validation"``, ``"test"`` (an evaluation
        split) or ``"probe"`` (the probe pass's losses and probabilities).
    :param value: the offending value (NaN or an infinity).
    :param where: more context, shown after the step (e.g. which environment of a batch).
    :param hint: what the user can do, appended to the message.
    """

    def __init__(
        self,
        task: str | None,
        step: int | None,
        kind: str = "training",
        value: float = math.nan,
        where: str = "",
        hint: str = "",
    ) -> None:
        self.task = task
        self.step = step
        self.kind = kind
        self.value = value
        self.where = where
        self.hint = hint
        which = f"of task {task!r}" if task is not None else "of the combined step loss"
        when = f" at step {step}" if step is not None else ""
        context = f" ({where})" if where else ""
        advice = f"; {hint}" if hint else ""
        super().__init__(
            f"non-finite {kind} loss ({value}) {which}{when}{context}: the model's outputs are "
            f"no longer finite (a learning rate too high?){advice}"
        )

    @classmethod
    def of_training_step(
        cls, task_names: Sequence[str], losses: Sequence[float], step: int, hint: str = ""
    ) -> NonFiniteLossError:
        """The error of a training step whose losses are not all finite: it names the first
        planned task whose loss is not, or the combined loss when every task's is.

        :param task_names: the planned tasks, in plan order.
        :param losses: their losses in the same order, then the combined loss.
        :param step: the step's index.
        :param hint: what the user can do, appended to the message.
        """
        for name, value in zip(task_names, losses[:-1], strict=True):
            if not math.isfinite(value):
                return cls(name, step, "training", float(value), hint=hint)
        return cls(None, step, "training", float(losses[-1]), hint=hint)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        # rebuilt from its fields, not its message, so that it survives worker processes
        fields = (self.task, self.step, self.kind, self.value, self.where, self.hint)
        return type(self), fields


class AgentMismatchError(ValueError):
    """A trained scheduling agent does not fit the run it is asked to schedule: other tasks than
    its flat network was trained on, other probe or decision settings than it was trained with,
    or observations of another shape. The message names what the agent expects and what the run
    has; it is an error of the inputs, so its traceback says nothing more.
    """

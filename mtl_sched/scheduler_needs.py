"""What each scheduler needs from a training loop of your own, and the messages that say so.

Every scheduler declares its needs (`mtl_sched.scheduling.Scheduler.needs`, one `LoopNeed`
each); `mtl_sched.hooks.SchedulerDriver` checks them where they are due and names the missing
argument, and `needs_table` renders them for the documentation, so that docs and checks read
the same declaration.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from mtl_sched.registry import make_scheduler, scheduler_class, scheduler_hyperparameters
from mtl_sched.registry import scheduler_names as registered_names
from mtl_sched.scheduling import COMBINE_ARGUMENTS, LoopNeed, Scheduler


@dataclass(frozen=True)
class NeedUsage:
    """How a training loop gives a scheduler one of its needs.

    :param argument: what to pass or call, as the error message and the table name it.
    :param how: what to do, with what it must hold.
    """

    argument: str
    how: str


NEED_USAGE: dict[LoopNeed, NeedUsage] = {
    "combine": NeedUsage(
        "driver.combine(losses)",
        "back-propagate loss = driver.combine(losses) (the scheduler's own combination of the "
        "task losses, not their weighted sum), before driver.report(...)",
    ),
    "outputs": NeedUsage(
        "outputs=",
        "pass driver.combine(losses, outputs=outputs): each planned task's TaskOutput (logits and "
        "targets of its minibatch), in plan order",
    ),
    "model": NeedUsage(
        "model=",
        "pass driver.combine(losses, model=your_model): the model being trained, exposing "
        "shared_parameters() and task_parameters(task) (gradnorm also last_shared_layer(), "
        "exp3s task_output(task, batch))",
    ),
    "batches": NeedUsage(
        "batches=",
        "pass driver.combine(losses, model=your_model, batches=batches): each planned task's "
        "minibatch as model.task_output(task, batch) takes it, in plan order",
    ),
    "evaluation": NeedUsage(
        "driver.report_evaluation(scores)",
        "call driver.report_evaluation(scores) after each validation pass (each task's score in "
        "[0, 1]); until the first one the scheduler treats the tasks alike",
    ),
    "parameters": NeedUsage(
        "driver.parameters() in your optimizer",
        "add driver.parameters() to your optimizer (as a group without weight decay)",
    ),
    "probe": NeedUsage(
        "next_step(probabilities)",
        "pass driver.next_step(probabilities, targets=...) when driver.needs_probe, or "
        "SchedulerDriver(..., probe_fn=...): class probabilities on each task's probe set",
    ),
    "train_sizes": NeedUsage(
        "SchedulerDriver(train_sizes=)",
        "pass SchedulerDriver(..., train_sizes=[...]): training examples of each task, in task "
        "order (or Task objects instead of names)",
    ),
    "budget": NeedUsage(
        "SchedulerDriver(budget=)",
        "pass SchedulerDriver(..., budget=N): the run's budget in training examples",
    ),
    "references": NeedUsage(
        "make_scheduler(references=)",
        "pass make_scheduler(name, references=[...]): each task's single-task validation accuracy, "
        "in task order (or scheduler.prepare(benchmark))",
    ),
    "weights": NeedUsage(
        "make_scheduler(weights=)",
        "pass make_scheduler(name, weights=[...]): one loss weight per task, in task order (or "
        "scheduler.search(trainer_factory, num_tasks))",
    ),
}


def missing_need_message(scheduler: Scheduler, need: LoopNeed) -> str:
    """The error for a training loop that did not give ``scheduler`` its ``need``.

    :param scheduler: the scheduler that needs it.
    :param need: the missing need.
    """
    usage = NEED_USAGE[need]
    return f"{scheduler.name} needs {usage.argument}: {usage.how}"


def needs_combine(needs: frozenset[LoopNeed]) -> bool:
    """Whether a scheduler with ``needs`` must have its losses combined by ``combine``.

    :param needs: a scheduler's `LoopNeed` set.
    """
    return "combine" in needs or any(n in needs for n in COMBINE_ARGUMENTS)


def describe_needs(needs: frozenset[LoopNeed]) -> str:
    """The needs as the table's cell: the calls a loop makes beyond ``next_step``/``report``.

    :param needs: a scheduler's `LoopNeed` set.
    """
    parts = []
    arguments = [n for n in COMBINE_ARGUMENTS if n in needs]
    if arguments:
        parts.append("`combine(losses, " + ", ".join(f"{n}=..." for n in arguments) + ")`")
    elif "combine" in needs:
        parts.append("`combine(losses)`")
    parts += [
        f"`{NEED_USAGE[n].argument}`"
        for n in typing.get_args(LoopNeed)
        if n in needs and n != "combine" and n not in COMBINE_ARGUMENTS
    ]
    return ", ".join(parts) if parts else "nothing more"


def hyperparameter_variants(name: str) -> list[tuple[str, frozenset[LoopNeed]]]:
    """Settings of scheduler ``name``'s choice-valued hyperparameters that change its needs.

    Each hyperparameter annotated with a ``Literal`` is tried alone at each of its values;
    those whose ``loop_needs`` differ from the defaults are returned as ``(key="value",
    needs)``.

    :param name: a registered scheduler name.
    """
    defaults = scheduler_class(name).default_needs()
    variants = []
    for key, parameter in scheduler_hyperparameters(name).items():
        if typing.get_origin(parameter.annotation) is not typing.Literal:
            continue
        for value in typing.get_args(parameter.annotation):
            if value == parameter.default:
                continue
            needs = make_scheduler(name, **{key: value}).loop_needs()
            if needs != defaults:
                variants.append((f"{key}={value!r}", needs))
    return variants


def needs_table(names: list[str] | None = None) -> str:
    """A Markdown table: each scheduler, what a training loop of your own must pass it, and
    the hyperparameter settings that change that.

    :param names: schedulers to list, in order (default: every registered one, by name, so
        that the table does not depend on which modules were imported first).
    """
    rows = [
        "| scheduler | kind | what your loop must pass | with other hyperparameters |",
        "| --- | --- | --- | --- |",
    ]
    for name in sorted(registered_names()) if names is None else names:
        variants = "; ".join(
            f"`{setting}`: {describe_needs(needs)}"
            for setting, needs in hyperparameter_variants(name)
        )
        cls = scheduler_class(name)
        rows.append(
            f"| `{name}` | {cls.kind} | {describe_needs(cls.default_needs())} | {variants} |"
        )
    return "\n".join(rows) + "\n"

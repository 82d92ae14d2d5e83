"""A scheduler choosing the training data of a Hugging Face ``transformers`` ``Trainer``.

Needs ``transformers`` (the ``hf`` extra). `ScheduledMixtureTrainer` is a ``Trainer`` that
draws its training batches from a `ScheduledMixture` (so its scheduler decides which task's
data each optimizer step trains on), and `ScheduledMixtureCallback` reports every training
batch's loss to the mixture, so that the scheduler learns from it::

    mixture = ScheduledMixture(
        make_scheduler("greedy"), {"sst": sst, "topic": topic},
        batch_size=16, budget=20_000, collate_fn=DataCollatorWithPadding(tokenizer),
    )
    args = TrainingArguments(output_dir="out", max_steps=10_000)
    trainer = ScheduledMixtureTrainer(model=model, args=args, mixture=mixture)
    trainer.train()  # stops at the mixture's budget
    print(mixture.shares)

The model's output must carry a ``loss`` (the batches hold ``labels``). For a weighting
scheduler, the callback scales the loss the ``Trainer`` back-propagates by the task's loss
weight and reports the unscaled one. One batch is one optimizer step:
``gradient_accumulation_steps`` must be 1, and the batches are drawn without the look-ahead of
``accelerate``'s data loaders, since the scheduler plans each batch from the losses before it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from mtl_sched.integrations.mixture import ScheduledMixture

try:
    from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState
    from transformers import TrainingArguments as _TrainingArguments
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "mtl_sched.integrations.transformers needs the transformers package: "
        "pip install 'mtl-sched[hf]' (or pip install transformers)"
    ) from err

__all__ = ["ScheduledMixtureCallback", "ScheduledMixtureTrainer"]


class ScheduledMixtureCallback(TrainerCallback):
    """Report each training batch's loss to a `ScheduledMixture`; stop at its budget.

    At the start of training it hooks the model's forward pass: every forward in training
    mode (with gradients) reports its output's ``loss`` for the oldest unreported batch of the
    mixture, and scales the loss by that task's weight in the current step.

    :param mixture: the mixture the ``Trainer``'s batches come from.
    """

    def __init__(self, mixture: ScheduledMixture) -> None:
        self.mixture = mixture
        self.shares_history: list[dict[str, float]] = []
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _report(self, module: torch.nn.Module, inputs: Any, output: Any) -> Any:
        if not (module.training and torch.is_grad_enabled() and self.mixture.unreported):
            return None
        loss = output["loss"] if isinstance(output, dict) else getattr(output, "loss", None)
        if loss is None:
            raise ValueError(
                "the model's output has no loss: give the mixture's batches a 'labels' column"
            )
        task = self.mixture.unreported[0]
        weight = self.mixture.loss_weight(task)
        self.mixture.report(task, loss)
        if weight != 1.0:
            output["loss"] = loss * weight
            return output
        return None

    def on_train_begin(
        self,
        args: _TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        """Hook the model's forward pass.

        :param args: the trainer's arguments.
        :param state: the trainer's state.
        :param control: the trainer's control flags.
        :param model: the model being trained.
        :param kwargs: the other objects the trainer passes to callbacks.
        """
        if model is None:
            raise ValueError("ScheduledMixtureCallback needs the trainer's model")
        if args.gradient_accumulation_steps != 1:
            raise ValueError(
                "gradient_accumulation_steps must be 1 with a ScheduledMixture (each batch is "
                f"one scheduled step); got {args.gradient_accumulation_steps}"
            )
        self._remove_hook()
        self._handle = model.register_forward_hook(self._report)

    def on_step_end(
        self, args: _TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Record the task shares; stop training once the mixture's budget is spent.

        :param args: the trainer's arguments.
        :param state: the trainer's state.
        :param control: the trainer's control flags.
        :param kwargs: the other objects the trainer passes to callbacks.
        """
        self.shares_history.append(self.mixture.shares)
        if self.mixture.done:
            control.should_training_stop = True

    def on_train_end(
        self, args: _TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Remove the forward hook.

        :param args: the trainer's arguments.
        :param state: the trainer's state.
        :param control: the trainer's control flags.
        :param kwargs: the other objects the trainer passes to callbacks.
        """
        self._remove_hook()

    def _remove_hook(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class ScheduledMixtureTrainer(Trainer):
    """A ``Trainer`` whose training batches come from a `ScheduledMixture`.

    Takes the ``Trainer``'s arguments (no ``train_dataset``: the mixture is the training
    data; ``args.max_steps`` must be positive, the mixture's budget may stop training earlier)
    and adds a `ScheduledMixtureCallback`.

    :param args: the ``Trainer``'s positional arguments.
    :param mixture: the scheduled mixture of the tasks' training data.
    :param kwargs: the ``Trainer``'s keyword arguments.
    """

    def __init__(self, *args: Any, mixture: ScheduledMixture, **kwargs: Any) -> None:
        if "train_dataset" in kwargs:
            raise ValueError("pass the training data as mixture=, not train_dataset=")
        self.mixture = mixture
        self.mixture_callback = ScheduledMixtureCallback(mixture)
        callbacks = [*(kwargs.pop("callbacks", None) or []), self.mixture_callback]
        super().__init__(
            *args, train_dataset=mixture.as_iterable_dataset(), callbacks=callbacks, **kwargs
        )

    def get_train_dataloader(self) -> DataLoader:
        """The mixture's batches, drawn one at a time (no worker processes, no look-ahead)."""
        return DataLoader(self.mixture.as_iterable_dataset(), batch_size=None, num_workers=0)

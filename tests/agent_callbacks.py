"""Callbacks that stop or interrupt an agent's ``learn`` at a chosen step, shared by the tests."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class StopAt(BaseCallback):
    """Stop ``learn`` once ``n`` timesteps were taken (to save mid-horizon).

    :param n: the timestep at which ``learn`` returns.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def _on_step(self) -> bool:
        return self.num_timesteps < self.n


class InterruptAt(BaseCallback):
    """Raise ``KeyboardInterrupt`` (as a second Ctrl-C does) at step ``at``, after the run's own
    callbacks: the run writes a checkpoint of that step and ends.

    :param at: the timestep at which to interrupt.
    """

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at:
            raise KeyboardInterrupt
        return True

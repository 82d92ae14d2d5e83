"""A tqdm progress bar for SB3 training (SB3's own needs ``rich``; this needs only ``tqdm``)."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm


class TqdmCallback(BaseCallback):
    """Show training progress in timesteps, with the current exploration temperature.

    :param total: timesteps of the ``learn`` call (the bar's length).
    :param description: text in front of the bar.
    :param initial: timesteps already done (a resumed training starts the bar there).
    """

    def __init__(self, total: int, description: str = "training agent", initial: int = 0) -> None:
        super().__init__()
        self.total = total
        self.description = description
        self.initial = initial
        self._bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self._bar = tqdm(total=self.total, initial=self.initial, desc=self.description, unit="step")

    def _on_step(self) -> bool:
        assert self._bar is not None
        self._bar.update(self.training_env.num_envs)
        temperature = getattr(self.model, "temperature", None)
        if temperature is not None and self.n_calls % 100 == 0:
            self._bar.set_postfix(temperature=f"{temperature:.3g}")
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

"""Plugging schedulers into other data-loading and training frameworks.

- `mtl_sched.integrations.mixture`: `ScheduledMixture`, per-task datasets interleaved by a
  scheduler's decisions (any map-style dataset, ``datasets.Dataset`` included).
- `mtl_sched.integrations.transformers`: that mixture inside Hugging Face ``transformers``'
  ``Trainer`` (the ``hf`` extra), imported on its own so that this package never needs it.
"""

from mtl_sched.integrations.mixture import ScheduledMixture

__all__ = ["ScheduledMixture"]

"""How a run draws its training data: a task's rows as NumPy columns (`materialize`,
`take_rows`), the epoch-wise order of each task's draws (`TaskSampler`) and the random stream
of each step (`step_random_stream`); both are functions of the run's seed alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

__all__ = ["Columns", "TaskSampler", "materialize", "step_random_stream", "take_rows"]

# Tags the per-step random stream of training, apart from the samplers' streams of [seed, k].
_DROPOUT_STREAM = 7919

Columns = dict[str, np.ndarray]


def _column_values(column: pa.ChunkedArray) -> np.ndarray:
    # np.array copies: Arrow's zero-copy views are read-only, which torch warns about
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        if pa.types.is_fixed_size_list(kind) and not pa.types.is_nested(kind.value_type):
            flat = np.array(pc.list_flatten(column).to_numpy(zero_copy_only=False))
            return flat.reshape(len(column), kind.list_size)
        return np.array(column.to_numpy(zero_copy_only=False))
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths == lengths[0]).all() and not pa.types.is_nested(kind.value_type):
        # equal-length vectors (e.g. dense features) stack into one 2-D array
        flat = np.array(pc.list_flatten(column).to_numpy(zero_copy_only=False))
        return flat.reshape(len(lengths), int(lengths[0]))
    values = np.empty(len(column), dtype=object)
    for i, row in enumerate(column.to_pylist()):
        values[i] = row
    return values


def materialize(dataset: datasets.Dataset) -> Columns:
    """Every column of ``dataset`` as one NumPy array: 2-D for equal-length vectors, an object
    array of Python lists for ragged columns (sentences, token ids, tags).

    Indexing these arrays is orders of magnitude faster than indexing the Arrow-backed
    dataset once per minibatch; reading the Arrow columns directly (rather than through the
    NumPy formatter) keeps this fast for tens of thousands of sentences.
    """
    table = dataset.with_format("arrow")[:]
    return {name: _column_values(table.column(name)) for name in table.column_names}


def take_rows(columns: Columns, indices: np.ndarray | slice) -> Columns:
    """The rows ``indices`` of every column."""
    return {name: values[indices] for name, values in columns.items()}


class TaskSampler:
    """Epoch-wise shuffled indices of one task's training set.

    :param size: examples in the training set.
    :param rng: the generator of the shuffles (a run's is ``np.random.default_rng([seed, k])``
        for task ``k``, so that every trainer of that seed draws the same minibatches).
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.order = rng.permutation(size)
        self.position = 0

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` indices, reshuffling at the end of each epoch.

        :param n: indices to draw.
        """
        parts = []
        while n > 0:
            if self.position == self.size:
                self.order = self.rng.permutation(self.size)
                self.position = 0
            chunk = self.order[self.position : self.position + n]
            self.position += len(chunk)
            n -= len(chunk)
            parts.append(chunk)
        return np.concatenate(parts)

    def state(self) -> dict[str, Any]:
        """The generator's state, the epoch's order and the position in it (a copy)."""
        return {
            "rng": self.rng.bit_generator.state,
            "order": self.order.copy(),
            "position": self.position,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a `state` of a sampler of the same training set.

        :param state: the stored state.
        """
        self.rng.bit_generator.state = state["rng"]
        self.order = np.asarray(state["order"]).copy()
        self.position = int(state["position"])


@contextmanager
def step_random_stream(seed: int, step: int, device: torch.device) -> Iterator[None]:
    """Run one training step on torch's global generator seeded from (``seed``, ``step``).

    Dropout and other random layers draw from torch's global generator. Seeding it per step
    makes a run's masks a function of its seed and step alone, whatever else in the process
    draws random numbers (an agent, a second trainer, a probe); the global state is restored
    afterwards, so the caller's own random streams are left as they were.

    :param seed: the run's seed.
    :param step: the step's index.
    :param device: the run's device (a CUDA device's generator is seeded and restored too).
    """
    step_seed = int(np.random.default_rng([seed, _DROPOUT_STREAM, step]).integers(2**62))
    cuda = device.type == "cuda"
    index = (device.index or torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.default_generator.manual_seed(step_seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(step_seed)
        yield

"""Token vocabularies and padding: turning token lists into index tensors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

PAD = "<pad>"
UNK = "<unk>"


class Vocabulary:
    """A fixed token <-> index mapping; index 0 is ``<pad>``, 1 is ``<unk>``.

    :param tokens: the tokens after the two reserved ones (extra specials first, if any).
    """

    def __init__(self, tokens: Sequence[str] = ()) -> None:
        self.tokens: list[str] = [PAD, UNK]
        self._index: dict[str, int] = {PAD: 0, UNK: 1}
        for token in tokens:
            if token not in self._index:
                self._index[token] = len(self.tokens)
                self.tokens.append(token)

    @classmethod
    def build(
        cls,
        sequences: Iterable[Sequence[str]],
        min_count: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = (),
    ) -> Vocabulary:
        """A vocabulary of the tokens of ``sequences``, most frequent first.

        The order is deterministic: by count (descending), then by token.

        :param sequences: token lists (typically the training split only).
        :param min_count: tokens seen fewer times map to ``<unk>``.
        :param max_size: at most this many tokens besides the reserved and special ones.
        :param specials: extra reserved tokens placed right after ``<pad>`` and ``<unk>`` (e.g.
            ``("<s>", "</s>")``).
        """
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1; got {min_count}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be non-negative; got {max_size}")
        counts = Counter(token for sequence in sequences for token in sequence)
        reserved = {PAD, UNK, *specials}
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_count and t not in reserved),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls([*specials, *ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def index(self, token: str) -> int:
        """Index of ``token`` (``unk_id`` when unknown).

        :param token: the token.
        """
        return self._index.get(token, 1)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of ``tokens``; unknown tokens become ``unk_id``.

        :param tokens: a token list.
        """
        index = self._index
        return [index.get(token, 1) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``.

        :param ids: indices below ``len(self)``.
        """
        return [self.tokens[i] for i in ids]

    def to_dict(self) -> dict[str, list[str]]:
        """A JSON-ready form; `from_dict` restores the same mapping."""
        return {"tokens": self.tokens[2:]}

    @classmethod
    def from_dict(cls, payload: dict[str, list[str]]) -> Vocabulary:
        """Rebuild a vocabulary written by `to_dict`.

        :param payload: the dictionary.
        """
        return cls(payload["tokens"])


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int = 0, max_length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad index lists into one tensor.

    :param sequences: index lists (an empty list becomes one padding position, so that every
        row has at least one column; its mask row is all ``False``).
    :param pad_id: index written into padding positions.
    :param max_length: truncate longer sequences to this many indices.
    :returns: ``(ids, mask)``: a ``LongTensor`` and a ``BoolTensor`` of shape ``(B, T)``; the
        mask is ``True`` on real tokens.
    """
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be at least 1; got {max_length}")
    clipped = [list(s[:max_length]) if max_length is not None else list(s) for s in sequences]
    width = max([len(s) for s in clipped] + [1])
    # filled in NumPy: a row assignment there costs a fraction of a tensor slice assignment
    ids = np.full((len(clipped), width), pad_id, dtype=np.int64)
    for row, sequence in enumerate(clipped):
        ids[row, : len(sequence)] = sequence
    lengths = np.array([len(s) for s in clipped], dtype=np.int64)
    mask = np.arange(width) < lengths[:, None]
    return torch.from_numpy(ids), torch.from_numpy(mask)

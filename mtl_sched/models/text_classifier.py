"""A shared BiLSTM sentence classifier with one linear-softmax head per task (seed 002, 5.1).

Rows carry a ``"tokens"`` column (a list of words) and a ``"label"`` column (a class index).
Words are looked up in a vocabulary built from the training splits only, run through the shared
`BiLSTMEncoder`, pooled over the sentence and classified by the task's linear head.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from mtl_sched.data.paths import DataFormatError, read_lines
from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary, pad_sequences
from mtl_sched.models.base import Batch, TaskModules, TaskOutput, stack_batches
from mtl_sched.models.encoders import BiLSTMEncoder, masked_max_pool, masked_mean_pool
from mtl_sched.models.qmtl import QMTLConfig, classifier_head, head_output

Pooling = Literal["max", "mean"]
# Long reviews are cut to their first 200 tokens: a minibatch costs time in proportion to its
# longest sentence, and 200 tokens keep most reviews whole (the domains' mean lengths are 21-270).
DEFAULT_MAX_LENGTH = 200
# Reviews per length-sorted chunk of a large batch. Up to about 24 reviews of 200 tokens, a
# BiLSTM pass with its backward costs about the same per review on the CPU (`benchmarks/
# lstm_batch_scaling.py`); from 32 reviews up it can cost 10-20x more per review, as the
# fused kernel's working set outgrows the core's cache. Chunks also save the padding of short
# reviews to the longest one of the batch.
LENGTH_CHUNK = 16
# Reviews per chunk in inference (evaluation, the probe pass) at the full variant's widths (200
# tokens, 64 hidden units): without a backward pass, chunks of 8 cost no more per review, and
# they pad a mix of short and long reviews less; the probe pass of two tasks' 8-review pools
# takes about half the time of one 16-review chunk.
INFERENCE_LENGTH_CHUNK = 8
# What one inference chunk may hold, in padded tokens times hidden units: the 8 reviews above. A
# smaller model over shorter reviews outgrows the core's cache later, so its chunks take more
# reviews (160 for fdu-mtl's small variant: 40 tokens, 16 units), where chunks of 8 would pay
# the fixed cost of a fused LSTM call 20 times over (`benchmarks/probe_chunking.py`).
INFERENCE_CHUNK_CELLS = INFERENCE_LENGTH_CHUNK * DEFAULT_MAX_LENGTH * 64


def inference_chunk_rows(width: int, hidden_size: int) -> int:
    """Reviews per length-sorted chunk of an inference pass: as many as fit
    `INFERENCE_CHUNK_CELLS`, and at least `INFERENCE_LENGTH_CHUNK`.

    :param width: tokens the batch is padded to.
    :param hidden_size: the BiLSTM's hidden units per direction.
    """
    return max(INFERENCE_LENGTH_CHUNK, INFERENCE_CHUNK_CELLS // max(width * hidden_size, 1))


_DIRECTION_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def reverse_padded(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` positions of each row, leaving the padding in place.

    :param values: right-padded rows, ``(B, T, ...)``.
    :param lengths: real positions per row, ``(B,)``.
    """
    rows, width = values.shape[:2]
    positions = torch.arange(width, device=values.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)
    # whole positions are moved: selecting rows of the flattened (B * T, ...) tensor is several
    # times faster than an element-wise gather, forward and backward
    flat = (index + width * torch.arange(rows, device=values.device).unsqueeze(1)).reshape(-1)
    moved = values.reshape(rows * width, *values.shape[2:]).index_select(0, flat)
    return moved.reshape(values.shape)


class UnpackedBiLSTMEncoder(BiLSTMEncoder):
    """`BiLSTMEncoder` computing the same states without packed sequences on the CPU.

    On the CPU, an LSTM over a packed sequence runs one small operation per time step and its
    backward pass is an order of magnitude slower than the fused kernel over a padded tensor.
    Right padding does not reach the real positions of the forward direction, and the backward
    direction runs forward over each row reversed within its length, so both fused runs give
    exactly the packed states (``tests/test_fdu_mtl.py`` checks it). The parameters are the
    parent's. Character features, stacked layers and other devices use the parent's path.

    Denormal floats are left to the process's own setting: a whole default ``fdu-mtl`` run
    takes the same CPU time (within 4%) and reaches the same test scores whether or not
    ``torch.set_flush_denormal`` is on, and that switch would change every other computation
    of the process.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One-direction `nn.LSTM`s running on the bidirectional LSTM's own weights, built at
        # the first forward pass. A plain dict keeps them out of the module tree: the weights
        # are saved, counted and optimized once, under the parent's names.
        self._direction_lstms: dict[str, nn.LSTM] = {}

    def _direction_lstm(self, suffix: str) -> nn.LSTM:
        lstm = self._direction_lstms.get(suffix)
        if lstm is None:
            # on the meta device: its own weights are replaced below, and initializing them
            # would draw from the global generator and shift every later random draw
            lstm = nn.LSTM(
                self.lstm.input_size, self.lstm.hidden_size, batch_first=True, device="meta"
            )
            self._direction_lstms[suffix] = lstm
        # checked on every call: `load_state_dict(assign=True)` or a device move that creates
        # new parameters would otherwise leave it computing with stale weights
        for name in _DIRECTION_WEIGHTS:
            weight = getattr(self.lstm, name + suffix)
            if getattr(lstm, name) is not weight:
                setattr(lstm, name, weight)
        return lstm

    def _run_direction(self, inputs: torch.Tensor, suffix: str) -> torch.Tensor:
        states, _ = self._direction_lstm(suffix)(inputs)
        return states

    def forward(
        self, words: torch.Tensor, mask: torch.Tensor, chars: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.char_lstm is not None or self.lstm.num_layers != 1 or words.device.type != "cpu":
            return super().forward(words, mask, chars)
        inputs = self.dropout(self.embedding(words))
        lengths = mask.sum(dim=1)
        forward_states = self._run_direction(inputs, "")
        backward_states = reverse_padded(
            self._run_direction(reverse_padded(inputs, lengths), "_reverse"), lengths
        )
        states = torch.cat([forward_states, backward_states], dim=-1)
        return self.dropout(states) * mask.unsqueeze(-1)


def build_vocabulary(
    tasks: Sequence[Task], min_count: int = 1, max_size: int | None = None
) -> Vocabulary:
    """The vocabulary of the ``"tokens"`` of every task's train split (never dev or test).

    :param tasks: the tasks.
    :param min_count: words seen fewer times map to ``<unk>``.
    :param max_size: keep at most this many words (the most frequent).
    """
    return Vocabulary.build(
        (tokens for task in tasks for tokens in task.split("train")[:]["tokens"]),
        min_count=min_count,
        max_size=max_size,
    )


def load_word_vectors(
    path: str | os.PathLike[str], vocabulary: Vocabulary, dim: int
) -> tuple[dict[int, torch.Tensor], int]:
    """Vectors of the vocabulary's words from a text file in GloVe format.

    Each line is a word followed by ``dim`` numbers, separated by spaces; words may contain
    spaces (GloVe 840B has some), so the numbers are taken from the end of the line.

    :param path: the vectors file (``.gz`` is read transparently).
    :param vocabulary: only its words are kept.
    :param dim: the vector width (the model's embedding width).
    :returns: vocabulary index -> vector, and the number of lines read.
    :raises DataFormatError: naming the file and line of a malformed line.
    """
    vectors: dict[int, torch.Tensor] = {}
    lines = 0
    for number, line in read_lines(path, fallback_encoding="latin-1"):
        parts = line.rstrip().split(" ")
        if len(parts) <= dim:
            raise DataFormatError(
                path, number, f"expected a word and {dim} numbers; got {len(parts)} fields"
            )
        lines += 1
        word = " ".join(parts[:-dim])
        if word not in vocabulary:
            continue
        try:
            values = [float(v) for v in parts[-dim:]]
        except ValueError:
            raise DataFormatError(path, number, f"non-numeric vector entry for {word!r}") from None
        vectors[vocabulary.index(word)] = torch.tensor(values)
    return vectors, lines


class BiLSTMTextClassifier(nn.Module):
    """Hard parameter sharing for sentence classification: ``head_k(pool(BiLSTM(words)))``.

    :param vocabulary: the word vocabulary (see `build_vocabulary`).
    :param task_classes: task name -> number of classes, in task order.
    :param embedding_dim: word embedding width.
    :param hidden_size: LSTM width per direction.
    :param num_layers: stacked BiLSTM layers.
    :param dropout: dropout on the embeddings and on the BiLSTM states.
    :param pooling: ``"max"`` or ``"mean"`` over the sentence's BiLSTM states.
    :param max_length: tokens kept per sentence (the first ones).
    :param word_vectors: initial embeddings by vocabulary index (e.g. from `load_word_vectors`);
        the other words keep their Xavier-uniform initialization.
    :param qmtl: give every task k Q-MTL heads (`QMTLHead`) instead of one linear head.
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        task_classes: Mapping[str, int],
        embedding_dim: int = 100,
        hidden_size: int = 100,
        num_layers: int = 1,
        dropout: float = 0.0,
        pooling: Pooling = "max",
        max_length: int = DEFAULT_MAX_LENGTH,
        word_vectors: Mapping[int, torch.Tensor] | None = None,
        qmtl: QMTLConfig | None = None,
    ) -> None:
        super().__init__()
        if not task_classes:
            raise ValueError("BiLSTMTextClassifier needs at least one task")
        if pooling not in ("max", "mean"):
            raise ValueError(f"pooling must be 'max' or 'mean'; got {pooling!r}")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1; got {max_length}")
        self.task_names: tuple[str, ...] = tuple(task_classes)
        self.vocabulary = vocabulary
        self.pooling: Pooling = pooling
        self.max_length = max_length
        self.encoder = UnpackedBiLSTMEncoder(
            len(vocabulary),
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            padding_idx=vocabulary.pad_id,
        )
        if word_vectors:
            with torch.no_grad():
                for index, vector in word_vectors.items():
                    self.encoder.embedding.weight[index] = vector
        self.heads = TaskModules(
            {
                name: classifier_head(self.encoder.output_size, c, qmtl)
                for name, c in task_classes.items()
            }
        )

    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        limit = self.max_length
        ids = [self.vocabulary.encode(list(tokens)[:limit]) for tokens in rows["tokens"]]
        words, mask = pad_sequences(ids, self.vocabulary.pad_id)
        label = torch.as_tensor(np.asarray(rows["label"], dtype=np.int64))
        return {"words": words, "mask": mask, "label": label}

    def features(self, batch: Batch) -> torch.Tensor:
        """The shared sentence representation, ``(B, 2 * hidden_size)``.

        A batch of more than `LENGTH_CHUNK` reviews in training mode (several tasks'
        minibatches stacked), or of more than `inference_chunk_rows` in evaluation mode
        (evaluation, the probe pass), is run in chunks of that many reviews of similar length,
        each cut to its own longest review, so that short reviews are not padded to the longest
        of the batch; a review's representation does not depend on its padding or its
        neighbours, so the result is the same up to floating-point rounding (and, in training
        mode, to which dropout mask each review draws).

        :param batch: a batch from `collate`.
        """
        words, mask = batch["words"], batch["mask"]
        if self.training:
            chunk = LENGTH_CHUNK
        else:
            chunk = inference_chunk_rows(words.shape[1], self.encoder.lstm.hidden_size)
        if words.shape[0] <= chunk:
            return self.padded_features(words, mask)
        lengths = mask.sum(dim=1)
        order = lengths.argsort(stable=True)
        parts = []
        for rows in order.split(chunk):
            width = max(int(lengths[rows].max()), 1)
            parts.append(self.padded_features(words[rows, :width], mask[rows, :width]))
        return torch.cat(parts)[order.argsort()]

    def padded_features(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`features` from one BiLSTM pass over the whole right-padded batch, unchunked.

        :param words: word ids, ``(B, T)``.
        :param mask: 1 at real tokens, 0 at padding, ``(B, T)``.
        """
        states = self.encoder(words, mask)
        pool = masked_max_pool if self.pooling == "max" else masked_mean_pool
        return pool(states, mask)

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        return head_output(self.heads[task], self.features(batch), batch["label"])

    def task_outputs(self, requests: Sequence[tuple[str, Batch]]) -> list[TaskOutput]:
        """Outputs of several ``(task, batch)`` pairs from one BiLSTM pass over all reviews.

        The batches are stacked (right-padded to the longest review); a review's features do
        not depend on the padding or on the other reviews, so each output equals its
        `task_output` up to floating-point rounding.
        """
        batches = [batch for _, batch in requests]
        stacked = stack_batches(batches, {"words": self.vocabulary.pad_id, "mask": 0})
        features = self.features(stacked).split([len(batch["label"]) for batch in batches])
        return [
            head_output(self.heads[task], part, batch["label"])
            for (task, batch), part in zip(requests, features, strict=True)
        ]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The top BiLSTM layer's weights, both directions (`BiLSTMEncoder.top_layer_weights`):
        pooling has no parameters, so every head reads that layer's output."""
        return self.encoder.top_layer_weights()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.heads[task].parameters()

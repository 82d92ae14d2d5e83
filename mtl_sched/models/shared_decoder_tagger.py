"""Taggers with one decoder for every task, told the task by a task embedding (seed 003).

Seed 003 compares three ways to share a BiLSTM-CRF tagger among tasks:

- ``multi-dec``: a shared encoder and one decoder (linear layer and CRF) per task; this is
  `SequenceTagger` itself.
- ``te-dec``: a shared encoder and one shared decoder; a learned task embedding is concatenated
  to every token's encoder output before the decoder.
- ``te-enc``: a shared encoder and one shared decoder; a task token (``<<upos>>``) is prepended
  to the sentence and read by the encoder as a word (Johnson et al. 2017). Its output position
  is dropped before decoding.

The shared decoder scores the union of the tasks' tag sets, tags with the same name sharing one
entry (``O`` of chunking and NER, the Penn Treebank tags of two POS corpora): one linear layer
scores every union tag and one CRF holds the transition scores between them. A task's tokens
may take only that task's tags: its CRF is the shared one restricted to them (`CRF.restricted`,
the same distribution as giving every other tag an emission score of minus infinity, at the
cost of the task's own tag set). ``logits`` hold the log-marginals of the task's tags, in the
task's tag order, as `SequenceTagger`'s do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary
from mtl_sched.models.base import Batch, TaskModules, TaskOutput
from mtl_sched.models.crf import CRF
from mtl_sched.models.sequence_tagger import (
    SequenceTagger,
    build_tagging_vocabularies,
    training_word_counts,
)

Architecture = Literal["multi-dec", "te-dec", "te-enc"]
ARCHITECTURES: tuple[str, ...] = ("multi-dec", "te-dec", "te-enc")


def task_token(task: str) -> str:
    """The word ``te-enc`` prepends to a ``task`` sentence, e.g. ``<<upos>>``.

    :param task: the task name.
    """
    return f"<<{task}>>"


class SharedDecoderTagger(SequenceTagger):
    """A `SequenceTagger` whose tasks share one decoder over the union of their tag sets.

    :param word_vocabulary: word vocabulary (with the task tokens for ``injection="encoder"``).
    :param char_vocabulary: character vocabulary; ``None`` disables character features.
    :param task_labels: task name -> its tag names, in task order.
    :param injection: ``"decoder"`` (TE+DEC: a task embedding concatenated to the encoder
        output) or ``"encoder"`` (TE+ENC: a task token prepended to the input).
    :param task_embedding_dim: width of the task embedding (``"decoder"`` only; seed 003
        uses 25).
    :param kwargs: the other `SequenceTagger` settings (sizes, dropout, regularizers).
    """

    def __init__(
        self,
        word_vocabulary: Vocabulary,
        char_vocabulary: Vocabulary | None,
        task_labels: Mapping[str, Sequence[str]],
        injection: Literal["decoder", "encoder"],
        task_embedding_dim: int = 25,
        **kwargs: Any,
    ) -> None:
        if injection not in ("decoder", "encoder"):
            raise ValueError(f"injection must be 'decoder' or 'encoder'; got {injection!r}")
        if kwargs.get("qmtl") is not None:
            raise ValueError("a shared decoder is a CRF decoder; Q-MTL heads are per task")
        if injection == "encoder":
            missing = [t for t in task_labels if task_token(t) not in word_vocabulary]
            if missing:
                raise ValueError(f"the word vocabulary lacks the task tokens of {missing}")
        super().__init__(
            word_vocabulary,
            char_vocabulary,
            {name: len(labels) for name, labels in task_labels.items()},
            **kwargs,
        )
        # the per-task decoders SequenceTagger built are replaced by the shared one
        self.emissions = TaskModules()
        self.crfs = TaskModules()
        self.injection = injection
        union: list[str] = []
        for labels in task_labels.values():
            union += [label for label in labels if label not in union]
        self.union_labels: tuple[str, ...] = tuple(union)
        index = {label: i for i, label in enumerate(union)}
        for k, labels in enumerate(task_labels.values()):
            ids = torch.tensor([index[label] for label in labels], dtype=torch.long)
            self.register_buffer(f"tag_ids_{k}", ids)
        self.task_embedding: nn.Embedding | None = None
        width = self.encoder.output_size
        if injection == "decoder":
            self.task_embedding = nn.Embedding(len(task_labels), task_embedding_dim)
            nn.init.uniform_(self.task_embedding.weight, -0.1, 0.1)
            width += task_embedding_dim
        self.decoder = nn.Linear(width, len(union))
        nn.init.xavier_uniform_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)
        self.crf = CRF(len(union))

    @classmethod
    def for_tasks(  # type: ignore[override]
        cls,
        tasks: Sequence[Task],
        injection: Literal["decoder", "encoder"] = "decoder",
        use_chars: bool = True,
        lowercase: bool = True,
        min_word_count: int = 2,
        **kwargs: Any,
    ) -> SharedDecoderTagger:
        """A tagger with vocabularies built from the tasks' training data (plus the task
        tokens for ``injection="encoder"``).

        :param tasks: the tagging tasks, in model order.
        :param injection: ``"decoder"`` (TE+DEC) or ``"encoder"`` (TE+ENC).
        :param use_chars: add character-BiLSTM features.
        :param lowercase: look words up lowercased.
        :param min_word_count: rarer training words map to ``<unk>``.
        :param kwargs: further settings (``task_embedding_dim``, sizes, dropout).
        """
        words, chars = build_tagging_vocabularies(tasks, lowercase, min_word_count)
        if injection == "encoder":
            # the task tokens are looked up normalized, as every word is
            words = Vocabulary([*(task_token(t.name) for t in tasks), *words.tokens[2:]])
        if kwargs.get("word_dropout", 0) > 0 and "word_counts" not in kwargs:
            kwargs["word_counts"] = training_word_counts(tasks, lowercase)
        return cls(
            words,
            chars if use_chars else None,
            {t.name: list(t.label_names) for t in tasks},
            injection,
            lowercase=lowercase,
            **kwargs,
        )

    def task_index(self, task: str) -> int:
        """Position of ``task`` in the model's task order.

        :param task: the task name.
        """
        return self.task_names.index(task)

    def task_embeddings(self) -> torch.Tensor | None:
        """The learned task embeddings, ``(K, dim)`` (``te-dec`` only; ``None`` otherwise)."""
        return None if self.task_embedding is None else self.task_embedding.weight.detach()

    # -------------------------------------------------------------------------- batches
    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        if self.injection == "decoder":
            return super().collate(task, rows)
        token = task_token(task)
        prefixed = {**rows, "tokens": [[token, *tokens] for tokens in rows["tokens"]]}
        prefixed["tags"] = [[0, *tags] for tags in rows["tags"]]  # dropped in _head_output
        return super().collate(task, prefixed)

    def _word_id(self, word: str) -> int:
        if word.startswith("<<") and word in self.word_vocabulary:
            return self.word_vocabulary.index(word)  # task tokens are not normalized
        return super()._word_id(word)

    # -------------------------------------------------------------------------- decoding
    def _own_tags(self, task: str) -> torch.Tensor:
        return getattr(self, f"tag_ids_{self.task_index(task)}")

    def _emissions(self, task: str, states: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, T, C)`` of ``task``'s own tags for the sentence tokens (the task token
        of ``te-enc`` dropped)."""
        if self.injection == "encoder":
            states = states[:, 1:]
        if self.task_embedding is not None:
            row = self.task_embedding.weight[self.task_index(task)]
            states = torch.cat([states, row.expand(*states.shape[:2], -1)], dim=-1)
        return self.decoder(states)[..., self._own_tags(task)]

    def _token_view(self, batch: Batch, key: str) -> torch.Tensor:
        return batch[key][:, 1:] if self.injection == "encoder" else batch[key]

    def _head_output(self, task: str, states: torch.Tensor, batch: Batch) -> TaskOutput:
        mask, tags = self._token_view(batch, "mask"), self._token_view(batch, "tags")
        lengths = mask.sum(dim=1)
        crf = self.crf.restricted(self._own_tags(task))
        nll, log_marginals = crf.nll_and_marginals(self._emissions(task, states), tags, mask)
        unit_losses = (nll / lengths).repeat_interleave(lengths)
        return TaskOutput(logits=log_marginals[mask], targets=tags[mask], unit_losses=unit_losses)

    def emission_scores(self, task: str, batch: Batch) -> torch.Tensor:
        """Per-token scores of ``task``'s own tags, ``(B, T, C)`` (sentence tokens only).

        :param task: the task name.
        :param batch: a batch from `collate`.
        """
        return self._emissions(task, self._states(batch))

    @torch.no_grad()
    def decode(self, task: str, batch: Batch) -> list[list[int]]:
        """The predicted tag ids (``task``'s own) of each sentence of ``batch``: Viterbi under
        the shared CRF restricted to the task's tags.

        :param task: the task name.
        :param batch: a batch from `collate`.
        """
        emissions = self._emissions(task, self._states(batch, reuse=True))
        crf = self.crf.restricted(self._own_tags(task))
        return crf.viterbi(emissions, self._token_view(batch, "mask"))

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.encoder.parameters()
        yield from self.decoder.parameters()
        yield from self.crf.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The top word-BiLSTM layer's weights, both directions
        (`BiLSTMEncoder.top_layer_weights`).

        The shared decoder is shared in name only past this point: a task's scores are the
        decoder's rows of that task's own tags and its CRF is the shared transition matrix
        restricted to those tags, so each task's loss reaches only its own block of the
        decoder weight and of the transitions (blocks that meet only on tags with the same
        name). The encoder's top layer is the last one whose whole output every task reads
        (with ``te-enc`` the task token is an input of the encoder; with ``te-dec`` the task
        embedding is joined after it).
        """
        return self.encoder.top_layer_weights()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        # only the task embedding is the task's own, and it is one row of a shared table
        if self.task_embedding is not None:
            yield self.task_embedding.weight

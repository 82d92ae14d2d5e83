"""A shared BiLSTM-CRF sequence tagger: one emission layer and CRF per task (seed 002, 5.2).

Rows carry a ``"tokens"`` column (a list of words) and a ``"tags"`` column (a list of tag ids).
Every task shares the `BiLSTMEncoder` over word embeddings and character-BiLSTM features
(Lample et al. 2016; Ma and Hovy 2016); each task has its own linear emission layer and `CRF`.

Words are looked up lowercased, with every digit replaced by ``0`` (``"1996"`` and ``"2001"``
share one embedding); capitalization, which matters for NER, reaches the model through the
character BiLSTM, which reads the raw word.

Outputs per prediction unit (a real, unpadded token):

- ``logits`` are the CRF's per-token log-marginals ``log p(y_t | x)`` from forward-backward, so
  their softmax is the marginal distribution of each token's tag: margin histograms and token
  accuracies (argmax of the marginals) come from it. They carry no gradient; training goes
  through ``unit_losses``.
- ``unit_losses`` spread each sentence's negative log-likelihood evenly over its tokens, so the
  mean over units is the total NLL divided by the number of tokens.

`SequenceTagger.decode` returns the Viterbi tag sequence of each sentence, which the trainer
scores with span F1 for chunking and NER.

With ``qmtl`` settings, every task instead tags each token with k Q-MTL heads (`QMTLHead`, seeds
000 and 001): ``logits`` are the log of the combined (averaged) distribution, ``unit_losses`` the
cross-entropies summed over the heads, and decoding takes each token's most likely tag.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import Vocabulary, pad_sequences
from mtl_sched.models.base import Batch, TaskModules, TaskOutput, stack_batches
from mtl_sched.models.crf import CRF
from mtl_sched.models.encoders import BiLSTMEncoder, word_dropout_probabilities
from mtl_sched.models.qmtl import QMTLConfig, classifier_head, head_output

_DIGIT = re.compile(r"\d")


def normalize_word(word: str, lowercase: bool = True) -> str:
    """The form a word is looked up under: digits become ``0``, lowercased if asked.

    :param word: the raw token.
    :param lowercase: whether to lowercase it.
    """
    word = _DIGIT.sub("0", word)
    return word.lower() if lowercase else word


def build_tagging_vocabularies(
    tasks: Sequence[Task], lowercase: bool = True, min_word_count: int = 2
) -> tuple[Vocabulary, Vocabulary]:
    """Word and character vocabularies of the ``"tokens"`` of every task's train split.

    Each distinct training sentence counts once, so that tasks reading the same corpus (POS and
    chunking) do not double its counts. Dev and test data are never read.

    :param tasks: the tasks.
    :param lowercase: lowercase words (characters keep their case).
    :param min_word_count: words seen fewer times map to ``<unk>``, which therefore gets trained
        on rare words.
    """
    sentences = _distinct_training_sentences(tasks)
    words = Vocabulary.build(
        ([normalize_word(w, lowercase) for w in s] for s in sentences), min_count=min_word_count
    )
    chars = Vocabulary.build(list(word) for s in sentences for word in s)
    return words, chars


def training_word_counts(tasks: Sequence[Task], lowercase: bool = True) -> Counter[str]:
    """How often each normalized word occurs in the tasks' training sentences (each distinct
    sentence counted once, as in `build_tagging_vocabularies`).

    :param tasks: the tasks.
    :param lowercase: lowercase words.
    """
    sentences = _distinct_training_sentences(tasks)
    return Counter(normalize_word(w, lowercase) for s in sentences for w in s)


def _distinct_training_sentences(tasks: Sequence[Task]) -> set[tuple[str, ...]]:
    # Vocabulary.build orders by count, then token, so the set's order does not matter.
    return {tuple(tokens) for task in tasks for tokens in task.split("train")[:]["tokens"]}


class SequenceTagger(nn.Module):
    """Hard parameter sharing for tagging: ``CRF_k(W_k BiLSTM(words, chars))``.

    :param word_vocabulary: word vocabulary (see `build_tagging_vocabularies`).
    :param char_vocabulary: character vocabulary; ``None`` disables character features.
    :param task_classes: task name -> number of tags, in task order.
    :param embedding_dim: word embedding width.
    :param hidden_size: word LSTM width per direction.
    :param num_layers: stacked word BiLSTM layers.
    :param char_embedding_dim: character embedding width.
    :param char_hidden_size: character LSTM width per direction.
    :param dropout: dropout on the encoder's inputs and outputs while training.
    :param lowercase: look words up lowercased (must match the vocabulary).
    :param max_word_length: characters read per word (the first ones).
    :param qmtl: tag every task's tokens with k Q-MTL heads (`QMTLHead`, per-token softmax,
        greedy decoding) instead of a linear layer and a CRF.
    :param word_dropout: alpha of Kiperwasser and Goldberg's word dropout (a training word
        seen c times is read as ``<unk>`` with probability ``alpha / (alpha + c)``); 0 disables
        it. Needs ``word_counts``.
    :param word_counts: training count of each normalized word (`training_word_counts`).
    :param embedding_noise: standard deviation of Gaussian noise on each token's input features
        while training.
    """

    def __init__(
        self,
        word_vocabulary: Vocabulary,
        char_vocabulary: Vocabulary | None,
        task_classes: Mapping[str, int],
        embedding_dim: int = 100,
        hidden_size: int = 100,
        num_layers: int = 1,
        char_embedding_dim: int = 25,
        char_hidden_size: int = 25,
        dropout: float = 0.5,
        lowercase: bool = True,
        max_word_length: int = 20,
        qmtl: QMTLConfig | None = None,
        word_dropout: float = 0.0,
        word_counts: Mapping[str, int] | None = None,
        embedding_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if word_dropout > 0 and word_counts is None:
            raise ValueError("word_dropout needs word_counts (see training_word_counts)")
        if not task_classes:
            raise ValueError("SequenceTagger needs at least one task")
        if max_word_length < 1:
            raise ValueError(f"max_word_length must be at least 1; got {max_word_length}")
        self.task_names: tuple[str, ...] = tuple(task_classes)
        self.word_vocabulary = word_vocabulary
        self.char_vocabulary = char_vocabulary
        self.lowercase = lowercase
        self.max_word_length = max_word_length
        self.encoder = BiLSTMEncoder(
            len(word_vocabulary),
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            char_vocab_size=len(char_vocabulary) if char_vocabulary is not None else None,
            char_embedding_dim=char_embedding_dim,
            char_hidden_size=char_hidden_size,
            padding_idx=word_vocabulary.pad_id,
            word_dropout=None
            if word_dropout == 0 or word_counts is None
            else word_dropout_probabilities(
                [word_counts.get(w, 0) for w in word_vocabulary.tokens], word_dropout
            ),
            unk_idx=word_vocabulary.unk_id,
            embedding_noise=embedding_noise,
        )
        # per task: the token scoring layer, a Linear before the task's CRF or a QMTLHead
        self.emissions = TaskModules()
        self.crfs = TaskModules()
        for name, num_tags in task_classes.items():
            if qmtl is not None:
                self.emissions[name] = classifier_head(self.encoder.output_size, num_tags, qmtl)
                continue
            layer = nn.Linear(self.encoder.output_size, num_tags)
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
            self.emissions[name] = layer
            self.crfs[name] = CRF(num_tags)
        self._word_ids: dict[str, int] = {}
        self._char_ids: dict[str, list[int]] = {}
        self._last_states: tuple[Batch, torch.Tensor] | None = None

    @classmethod
    def for_tasks(
        cls,
        tasks: Sequence[Task],
        use_chars: bool = True,
        lowercase: bool = True,
        min_word_count: int = 2,
        **kwargs: Any,
    ) -> SequenceTagger:
        """A tagger with vocabularies built from the tasks' training data.

        :param tasks: the tagging tasks, in model order.
        :param use_chars: add character-BiLSTM features.
        :param lowercase: look words up lowercased.
        :param min_word_count: rarer training words map to ``<unk>``.
        :param kwargs: further `SequenceTagger` settings (sizes, dropout).
        """
        words, chars = build_tagging_vocabularies(tasks, lowercase, min_word_count)
        if kwargs.get("word_dropout", 0) > 0 and "word_counts" not in kwargs:
            kwargs["word_counts"] = training_word_counts(tasks, lowercase)
        return cls(
            words,
            chars if use_chars else None,
            {t.name: t.num_classes for t in tasks},
            lowercase=lowercase,
            **kwargs,
        )

    # -------------------------------------------------------------------------- batches
    def _word_id(self, word: str) -> int:
        index = self._word_ids.get(word)
        if index is None:
            index = self.word_vocabulary.index(normalize_word(word, self.lowercase))
            self._word_ids[word] = index
        return index

    def _chars(self, word: str) -> list[int]:
        ids = self._char_ids.get(word)
        if ids is None:
            assert self.char_vocabulary is not None
            ids = self.char_vocabulary.encode(word[: self.max_word_length])
            self._char_ids[word] = ids
        return ids

    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        sentences = [list(tokens) for tokens in rows["tokens"]]
        tags = [list(t) for t in rows["tags"]]
        for i, (words, labels) in enumerate(zip(sentences, tags, strict=True)):
            if not words:
                raise ValueError(f"task {task!r}: row {i} has no tokens")
            if len(words) != len(labels):
                raise ValueError(
                    f"task {task!r}: row {i} has {len(words)} tokens but {len(labels)} tags"
                )
        ids, mask = pad_sequences(
            [[self._word_id(w) for w in words] for words in sentences],
            self.word_vocabulary.pad_id,
        )
        batch = {"words": ids, "mask": mask, "tags": pad_sequences(tags)[0]}
        if self.char_vocabulary is not None:
            width = max(len(self._chars(w)) for words in sentences for w in words)
            chars = np.zeros((*ids.shape, width), dtype=np.int64)
            for b, words in enumerate(sentences):
                for t, word in enumerate(words):
                    codes = self._chars(word)
                    chars[b, t, : len(codes)] = codes
            batch["chars"] = torch.from_numpy(chars)
        return batch

    # -------------------------------------------------------------------------- forward
    def emission_scores(self, task: str, batch: Batch) -> torch.Tensor:
        """Per-token tag scores of ``task``, ``(B, T, C)`` (log-probabilities for Q-MTL heads).

        :param task: the task name.
        :param batch: a batch from `collate`.
        """
        return self.emissions[task](self._states(batch))

    def _states(self, batch: Batch, reuse: bool = False) -> torch.Tensor:
        # Evaluation calls task_output and then decode on the same batch; decode reuses the
        # encoder states of that call (once) instead of running the encoder again.
        cached, self._last_states = self._last_states, None
        if reuse and cached is not None and cached[0] is batch:
            return cached[1]
        states = self.encoder(batch["words"], batch["mask"], batch.get("chars"))
        if not reuse and not self.training and not torch.is_grad_enabled():
            self._last_states = (batch, states)
        return states

    def train(self, mode: bool = True) -> SequenceTagger:
        """Switch training mode (and forget encoder states kept for `decode`).

        :param mode: training (``True``) or evaluation (``False``).
        """
        self._last_states = None
        return super().train(mode)

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        return self._head_output(task, self._states(batch), batch)

    def task_outputs(self, requests: Sequence[tuple[str, Batch]]) -> list[TaskOutput]:
        """Outputs of several ``(task, batch)`` pairs from one encoder pass over all sentences.

        The batches are stacked (right-padded to the longest sentence and word); the packed
        BiLSTMs never read the padding, so each output equals its `task_output` up to
        floating-point rounding.
        """
        batches = [batch for _, batch in requests]
        pad_values = {"words": self.word_vocabulary.pad_id, "mask": 0, "chars": 0}
        stacked = stack_batches(batches, pad_values)
        states = self.encoder(stacked["words"], stacked["mask"], stacked.get("chars"))
        parts = states.split([len(batch["words"]) for batch in batches])
        return [
            self._head_output(task, part[:, : batch["words"].shape[1]], batch)
            for (task, batch), part in zip(requests, parts, strict=True)
        ]

    def _head_output(self, task: str, states: torch.Tensor, batch: Batch) -> TaskOutput:
        mask, tags = batch["mask"], batch["tags"]
        head = self.emissions[task]
        if task not in self.crfs:
            return head_output(head, states[mask], tags[mask])
        crf: CRF = self.crfs[task]  # type: ignore[assignment]
        lengths = mask.sum(dim=1)
        nll, log_marginals = crf.nll_and_marginals(head(states), tags, mask)
        unit_losses = (nll / lengths).repeat_interleave(lengths)
        return TaskOutput(logits=log_marginals[mask], targets=tags[mask], unit_losses=unit_losses)

    @torch.no_grad()
    def decode(self, task: str, batch: Batch) -> list[list[int]]:
        """The predicted tag ids of each sentence of ``batch``, in row order.

        Viterbi under the task's CRF; with Q-MTL heads, each token's most likely tag under the
        combined distribution.

        :param task: the task name.
        :param batch: a batch from `collate`.
        """
        scores = self.emissions[task](self._states(batch, reuse=True))
        mask = batch["mask"]
        if task not in self.crfs:
            best = scores.argmax(dim=-1)
            return [row[: int(n)].tolist() for row, n in zip(best, mask.sum(dim=1), strict=True)]
        crf: CRF = self.crfs[task]  # type: ignore[assignment]
        return crf.viterbi(scores, mask)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The top word-BiLSTM layer's weights, both directions
        (`BiLSTMEncoder.top_layer_weights`): each task's emission layer (or Q-MTL heads)
        reads that layer's states."""
        return self.encoder.top_layer_weights()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        yield from self.emissions[task].parameters()
        if task in self.crfs:
            yield from self.crfs[task].parameters()

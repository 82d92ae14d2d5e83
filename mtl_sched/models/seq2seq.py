"""Multi-task sequence-to-sequence model: one shared source encoder, one attention decoder per task.

Every task reads the same kind of source (English word ids of one shared source vocabulary,
encoded by a shared `BiLSTMEncoder`) and has its own target vocabulary (the task's
``label_names``, see `mtl_sched.data.seq2seq_task`) and `AttentionDecoder`. Training and the probe
pass use teacher forcing: the decoder reads ``<s> y_1 .. y_n`` and predicts ``y_1 .. y_n </s>``,
and each of those ``n + 1`` target tokens is one prediction unit. ``decode`` generates greedily
(``beam_size=1``) or by beam search and returns detokenized strings.

Lengths: sources are cut to ``max_source_length`` tokens and targets to ``max_target_length``
tokens before EOS; decoding emits at most ``min(max_target_length, 2 * source_length + 10)``
tokens per sentence (every Multi30k training target is at most twice its source plus 2 tokens
long; EWT targets are exactly as long as their source).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtl_sched.data.seq2seq_task import BOS, EOS, SOURCE_VOCABULARY, detokenize
from mtl_sched.data.task import Task
from mtl_sched.data.vocabulary import PAD, UNK, Vocabulary, pad_sequences
from mtl_sched.models.attention_decoder import AttentionDecoder, beam_decode, greedy_decode
from mtl_sched.models.base import Batch, TaskModules, TaskOutput, stack_batches
from mtl_sched.models.encoders import BiLSTMEncoder

_RESERVED = (PAD, UNK, BOS, EOS)


def _target_vocabulary(task: str, tokens: Sequence[str]) -> Vocabulary:
    if tuple(tokens[:4]) != _RESERVED:
        raise ValueError(
            f"task {task!r}: a target vocabulary must start with {_RESERVED}; got "
            f"{tuple(tokens[:4])}"
        )
    return Vocabulary(tokens[2:])


class Seq2SeqMTL(nn.Module):
    """Shared BiLSTM encoder + per-task attention decoders (seed 002, section 5.3).

    Rows must carry ``"source"`` and ``"target"`` id lists (see `mtl_sched.data.seq2seq_task`).

    :param source_vocab_size: size of the shared source vocabulary.
    :param target_vocabularies: task name -> target tokens (``<pad> <unk> <s> </s>`` first), in
        task order.
    :param embedding_dim: source and target embedding width.
    :param hidden_size: encoder LSTM width per direction and decoder LSTM width.
    :param num_layers: encoder BiLSTM layers.
    :param dropout: dropout in the encoder and the decoders.
    :param max_source_length: longer sources are cut to this many tokens.
    :param max_target_length: longer targets are cut to this many tokens; also the decoding cap.
    :param beam_size: ``decode``'s beam width (1 is greedy decoding).
    :param length_penalty: exponent of beam search's length normalization.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocabularies: Mapping[str, Sequence[str]],
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        max_source_length: int = 100,
        max_target_length: int = 100,
        beam_size: int = 1,
        length_penalty: float = 1.0,
    ) -> None:
        super().__init__()
        if not target_vocabularies:
            raise ValueError("Seq2SeqMTL needs at least one task")
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1; got {beam_size}")
        self.task_names: tuple[str, ...] = tuple(target_vocabularies)
        self.target_vocabularies = {
            name: _target_vocabulary(name, tokens) for name, tokens in target_vocabularies.items()
        }
        self.encoder = BiLSTMEncoder(
            source_vocab_size, embedding_dim, hidden_size, num_layers, dropout
        )
        self.decoders = TaskModules(
            {
                name: AttentionDecoder(
                    len(vocabulary), self.encoder.output_size, embedding_dim, hidden_size, dropout
                )
                for name, vocabulary in self.target_vocabularies.items()
            }
        )
        self.max_source_length = max_source_length
        self.max_target_length = max_target_length
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.bos_id = 2
        self.eos_id = 3

    @classmethod
    def for_tasks(cls, tasks: Sequence[Task], **options: Any) -> Seq2SeqMTL:
        """A model over seq2seq ``tasks`` built by `mtl_sched.data.seq2seq_task`: their shared
        source vocabulary sizes the encoder, their ``label_names`` are the target vocabularies.

        :param tasks: seq2seq tasks, in model order, encoded with one source vocabulary.
        :param options: further constructor arguments.
        """
        vocabularies = [t.metadata.get(SOURCE_VOCABULARY) for t in tasks]
        if any(v is None or v.tokens != vocabularies[0].tokens for v in vocabularies):
            raise ValueError(
                "the tasks must carry one shared source vocabulary in "
                f"metadata[{SOURCE_VOCABULARY!r}] (build them with the same vocabulary)"
            )
        return cls(len(vocabularies[0]), {t.name: t.label_names for t in tasks}, **options)

    # --------------------------------------------------------------------------- batches
    def collate(self, task: str, rows: Mapping[str, Any]) -> Batch:
        source, source_mask = pad_sequences(rows["source"], max_length=self.max_source_length)
        targets = [list(t[: self.max_target_length]) for t in rows["target"]]
        target_in, target_mask = pad_sequences([[self.bos_id, *t] for t in targets])
        target_out, _ = pad_sequences([[*t, self.eos_id] for t in targets])
        return {
            "source": source,
            "source_mask": source_mask,
            "target_in": target_in,
            "target_out": target_out,
            "target_mask": target_mask,
        }

    def _encode(self, batch: Batch) -> torch.Tensor:
        return self.encoder(batch["source"], batch["source_mask"])

    def task_output(self, task: str, batch: Batch) -> TaskOutput:
        return self._decoder_output(task, self._encode(batch), batch)

    def task_outputs(self, requests: Sequence[tuple[str, Batch]]) -> list[TaskOutput]:
        """Outputs of several ``(task, batch)`` pairs from one encoder pass over all sources.

        The sources are stacked (right-padded to the longest); the packed BiLSTM never reads
        the padding, so each task's decoder sees the memory its `task_output` would, up to
        floating-point rounding.
        """
        batches = [batch for _, batch in requests]
        stacked = stack_batches(batches, {"source": 0, "source_mask": 0})
        memories = self._encode(stacked).split([len(batch["source"]) for batch in batches])
        return [
            self._decoder_output(task, memory[:, : batch["source"].shape[1]], batch)
            for (task, batch), memory in zip(requests, memories, strict=True)
        ]

    def _decoder_output(self, task: str, memory: torch.Tensor, batch: Batch) -> TaskOutput:
        decoder = self.decoders[task]
        mask = batch["source_mask"]
        state = decoder.initial_state(memory, mask)
        logits, _ = decoder(batch["target_in"], state, memory, decoder.keys(memory), mask)
        keep = batch["target_mask"]
        return TaskOutput(logits=logits[keep], targets=batch["target_out"][keep])

    # -------------------------------------------------------------------------- decoding
    def decode_ids(self, task: str, batch: Batch, beam_size: int | None = None) -> list[list[int]]:
        """Generated target ids per example (no BOS/EOS), in row order.

        :param task: task name.
        :param batch: a collated batch (targets are not read).
        :param beam_size: beam width; ``None`` uses the model's ``beam_size``.
        """
        beam_size = self.beam_size if beam_size is None else beam_size
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                memory = self._encode(batch)
                mask = batch["source_mask"]
                limits = (2 * mask.sum(dim=1) + 10).clamp(max=self.max_target_length)
                decoder = self.decoders[task]
                if beam_size == 1:
                    return greedy_decode(decoder, memory, mask, self.bos_id, self.eos_id, limits)
                return beam_decode(
                    decoder,
                    memory,
                    mask,
                    self.bos_id,
                    self.eos_id,
                    limits,
                    beam_size=beam_size,
                    length_penalty=self.length_penalty,
                )
        finally:
            self.train(was_training)

    def decode(self, task: str, batch: Batch, beam_size: int | None = None) -> list[str]:
        """Detokenized outputs per example, in row order (``<unk>`` tokens are left out).

        :param task: task name.
        :param batch: a collated batch.
        :param beam_size: beam width; ``None`` uses the model's ``beam_size``.
        """
        vocabulary = self.target_vocabularies[task]
        unk = vocabulary.unk_id
        return [
            detokenize(vocabulary.decode([i for i in ids if i != unk]))
            for ids in self.decode_ids(task, batch, beam_size)
        ]

    # ------------------------------------------------------------------------ parameters
    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.encoder.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The shared encoder's top BiLSTM layer weights, both directions
        (`BiLSTMEncoder.top_layer_weights`): every task's decoder attends over, and starts
        from, that layer's states."""
        return self.encoder.top_layer_weights()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return self.decoders[task].parameters()

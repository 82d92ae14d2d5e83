"""Shared text encoders: a word-level BiLSTM with optional character features (seed 002, 4.4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def xavier_init_lstm(lstm: nn.LSTM) -> None:
    """Xavier-uniform input and recurrent weights, zero biases (seed 002's initialization).

    :param lstm: the LSTM to initialize in place.
    """
    for name, weight in lstm.named_parameters():
        if "weight" in name:
            nn.init.xavier_uniform_(weight)
        else:
            nn.init.zeros_(weight)


def _run_packed(lstm: nn.LSTM, inputs: torch.Tensor, lengths: torch.Tensor):
    # Empty rows are given length 1 (pack_padded_sequence refuses 0); callers zero them after.
    packed = pack_padded_sequence(
        inputs, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
    )
    return lstm(packed)


class BiLSTMEncoder(nn.Module):
    """Word embeddings (plus a character BiLSTM per word, optionally) into a BiLSTM.

    :param vocab_size: word vocabulary size.
    :param embedding_dim: word embedding width.
    :param hidden_size: LSTM width per direction; the output has twice this width.
    :param num_layers: stacked BiLSTM layers.
    :param dropout: dropout on the embeddings and on the output.
    :param char_vocab_size: character vocabulary size; ``None`` disables character features.
    :param char_embedding_dim: character embedding width.
    :param char_hidden_size: character LSTM width per direction; each word gets the final
        forward and backward states (``2 * char_hidden_size`` features) next to its embedding.
    :param padding_idx: index of the padding token in both vocabularies.
    :param word_dropout: per word index, the probability that a training token is read as
        ``unk_idx`` instead (Kiperwasser and Goldberg 2016's word dropout; see
        `word_dropout_probabilities`); ``None`` disables it. Character features still read
        the word.
    :param unk_idx: index of the unknown word.
    :param embedding_noise: standard deviation of Gaussian noise added to every token's input
        features (word embedding and character features) while training.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 100,
        hidden_size: int = 100,
        num_layers: int = 1,
        dropout: float = 0.0,
        char_vocab_size: int | None = None,
        char_embedding_dim: int = 25,
        char_hidden_size: int = 25,
        padding_idx: int = 0,
        word_dropout: torch.Tensor | None = None,
        unk_idx: int = 1,
        embedding_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if word_dropout is not None and word_dropout.shape != (vocab_size,):
            raise ValueError(
                f"word_dropout must hold one probability per word ({vocab_size}); "
                f"got shape {tuple(word_dropout.shape)}"
            )
        if embedding_noise < 0:
            raise ValueError(f"embedding_noise must be non-negative; got {embedding_noise}")
        self.word_dropout: torch.Tensor | None
        # derived from the training data, rebuilt with the model: not part of checkpoints
        self.register_buffer(
            "word_dropout",
            None if word_dropout is None else word_dropout.float(),
            persistent=False,
        )
        self.unk_idx = unk_idx
        self.embedding_noise = embedding_noise
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        nn.init.xavier_uniform_(self.embedding.weight)
        with torch.no_grad():
            self.embedding.weight[padding_idx].zero_()
        input_size = embedding_dim
        self.char_embedding: nn.Embedding | None = None
        self.char_lstm: nn.LSTM | None = None
        if char_vocab_size is not None:
            self.char_embedding = nn.Embedding(
                char_vocab_size, char_embedding_dim, padding_idx=padding_idx
            )
            self.char_lstm = nn.LSTM(
                char_embedding_dim, char_hidden_size, batch_first=True, bidirectional=True
            )
            xavier_init_lstm(self.char_lstm)
            input_size += 2 * char_hidden_size
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        xavier_init_lstm(self.lstm)
        self.dropout = nn.Dropout(dropout)
        self.output_size = 2 * hidden_size

    def top_layer_weights(self) -> list[nn.Parameter]:
        """Input and recurrent weights of the top word-BiLSTM layer, forward direction first.

        The encoder's output at every position concatenates both directions' states of this
        layer, so these four matrices are the last layer every reader of the output depends on
        (the reverse direction's recurrent matrix alone would be half of it). Biases are left
        out, as GradNorm prescribes the layer's weights.
        """
        top = self.lstm.num_layers - 1
        return [
            getattr(self.lstm, f"{kind}_l{top}{suffix}")
            for suffix in ("", "_reverse")
            for kind in ("weight_ih", "weight_hh")
        ]

    def _char_features(self, chars: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert self.char_embedding is not None and self.char_lstm is not None
        batch, length, _ = chars.shape
        features = chars.new_zeros(
            (batch, length, 2 * self.char_lstm.hidden_size), dtype=torch.float
        )
        words = chars[mask]  # only real words: (N, L)
        if words.shape[0] == 0:
            return features
        _, (hidden, _) = _run_packed(
            self.char_lstm, self.char_embedding(words), (words != 0).sum(dim=1)
        )
        # hidden: (2, N, H), the last forward and the first backward state of each word
        features[mask] = torch.cat([hidden[0], hidden[1]], dim=-1)
        return features

    def forward(
        self, words: torch.Tensor, mask: torch.Tensor, chars: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Contextual token states, zero at padding positions.

        :param words: word indices, ``(B, T)``.
        :param mask: ``True`` on real tokens, ``(B, T)``.
        :param chars: character indices per word, ``(B, T, L)`` (needed when the encoder was
            built with ``char_vocab_size``).
        :returns: ``(B, T, output_size)``.
        """
        if self.training and self.word_dropout is not None:
            dropped = torch.rand(words.shape, device=words.device) < self.word_dropout[words]
            words = words.masked_fill(dropped & mask, self.unk_idx)
        inputs = self.embedding(words)
        if self.char_lstm is not None:
            if chars is None:
                raise ValueError("this encoder uses character features; pass chars=(B, T, L)")
            inputs = torch.cat([inputs, self._char_features(chars, mask)], dim=-1)
        if self.training and self.embedding_noise > 0:
            inputs = inputs + self.embedding_noise * torch.randn_like(inputs)
        lengths = mask.sum(dim=1)
        packed, _ = _run_packed(self.lstm, self.dropout(inputs), lengths)
        states, _ = pad_packed_sequence(packed, batch_first=True, total_length=words.shape[1])
        return self.dropout(states) * mask.unsqueeze(-1)


def word_dropout_probabilities(counts: Sequence[int], alpha: float) -> torch.Tensor:
    """Kiperwasser and Goldberg (2016)'s word dropout: a word seen ``c`` times in training is
    replaced by the unknown word with probability ``alpha / (alpha + c)``.

    Rare words are dropped most, so the unknown word's embedding is trained on the kind of
    words it will stand for at test time.

    :param counts: training count of each word index (0 for padding and the unknown word,
        which are then never replaced).
    :param alpha: the dropout rate parameter (0.25 in Plank et al. 2016 and seeds 000/001).
    """
    if alpha < 0:
        raise ValueError(f"word dropout alpha must be non-negative; got {alpha}")
    c = torch.as_tensor(counts, dtype=torch.float)
    return torch.where(c > 0, alpha / (alpha + c), torch.zeros_like(c))


def masked_max_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Maximum over real positions, ``(B, T, D) -> (B, D)``; zero for an empty row.

    :param states: token states.
    :param mask: ``True`` on real tokens, ``(B, T)``.
    """
    filled = states.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    # amax: no argmax indices to compute (max(dim=...) takes twice as long on the CPU)
    pooled = filled.amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))


def masked_mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real positions, ``(B, T, D) -> (B, D)``; zero for an empty row.

    :param states: token states.
    :param mask: ``True`` on real tokens, ``(B, T)``.
    """
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

"""An LSTM decoder with Luong ("general") attention, and greedy and beam-search decoding.

At target step ``t`` the decoder LSTM reads the previous target token's embedding, giving
``h_t``; attention weights ``a_t = softmax(h_t W_a M^T)`` over the encoder states ``M`` (padding
masked out) give the context ``c_t = a_t M``; the attentional state
``tanh(W_c [c_t; h_t])`` is projected to the target vocabulary (Luong et al. 2015, without
input feeding, so that teacher forcing runs the LSTM over the whole target at once). The initial
LSTM state is ``tanh`` of a linear map of the mean encoder state.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_sched.models.encoders import masked_mean_pool, xavier_init_lstm

State = tuple[torch.Tensor, torch.Tensor]


class AttentionDecoder(nn.Module):
    """One task's target embedding, LSTM, attention and output projection.

    :param vocab_size: target vocabulary size.
    :param memory_size: width of the encoder states attended over.
    :param embedding_dim: target embedding width.
    :param hidden_size: decoder LSTM width.
    :param dropout: dropout on the target embeddings and before the output projection.
    :param padding_idx: index of the padding token.
    """

    def __init__(
        self,
        vocab_size: int,
        memory_size: int,
        embedding_dim: int = 100,
        hidden_size: int = 100,
        dropout: float = 0.0,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        nn.init.xavier_uniform_(self.embedding.weight)
        with torch.no_grad():
            self.embedding.weight[padding_idx].zero_()
        self.bridge = nn.Linear(memory_size, 2 * hidden_size)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True)
        xavier_init_lstm(self.lstm)
        self.attention = nn.Linear(memory_size, hidden_size, bias=False)
        self.combine = nn.Linear(memory_size + hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.vocab_size = vocab_size

    def initial_state(self, memory: torch.Tensor, mask: torch.Tensor) -> State:
        """The LSTM's ``(h, c)``, each ``(1, B, hidden_size)``, from the mean encoder state.

        :param memory: encoder states, ``(B, S, memory_size)``.
        :param mask: ``True`` on real source tokens, ``(B, S)``.
        """
        h, c = torch.tanh(self.bridge(masked_mean_pool(memory, mask))).chunk(2, dim=-1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """Attention keys ``M W_a^T``, computed once per source batch.

        :param memory: encoder states, ``(B, S, memory_size)``.
        """
        return self.attention(memory)

    def forward(
        self,
        inputs: torch.Tensor,
        state: State,
        memory: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, State]:
        """Logits of the next token after each input token.

        :param inputs: previous target tokens, ``(B, T)`` (``T = 1`` when decoding step by step).
        :param state: LSTM state before the first input.
        :param memory: encoder states, ``(B, S, memory_size)``.
        :param keys: `keys` of ``memory``.
        :param mask: ``True`` on real source tokens, ``(B, S)``.
        :returns: logits ``(B, T, vocab_size)`` and the LSTM state after the last input.
        """
        hidden, state = self.lstm(self.dropout(self.embedding(inputs)), state)
        scores = hidden @ keys.transpose(1, 2)
        scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
        context = torch.softmax(scores, dim=-1) @ memory
        attentional = torch.tanh(self.combine(torch.cat([context, hidden], dim=-1)))
        return self.output(self.dropout(attentional)), state


def _repeat_state(state: State, times: int) -> State:
    return state[0].repeat_interleave(times, dim=1), state[1].repeat_interleave(times, dim=1)


@torch.no_grad()
def greedy_decode(
    decoder: AttentionDecoder,
    memory: torch.Tensor,
    mask: torch.Tensor,
    bos_id: int,
    eos_id: int,
    max_lengths: torch.Tensor,
) -> list[list[int]]:
    """The most probable token at every step, until EOS or the row's length limit.

    :param decoder: the task's decoder.
    :param memory: encoder states, ``(B, S, D)``.
    :param mask: ``True`` on real source tokens, ``(B, S)``.
    :param bos_id: start token fed first.
    :param eos_id: end token (not included in the output).
    :param max_lengths: per row, the most tokens to emit, ``(B,)``.
    :returns: token ids per row, without BOS and EOS.
    """
    batch = memory.shape[0]
    state = decoder.initial_state(memory, mask)
    keys = decoder.keys(memory)
    tokens = torch.full((batch, 1), bos_id, dtype=torch.long, device=memory.device)
    finished = max_lengths.to(memory.device) <= 0
    limits = max_lengths.to(memory.device)
    outputs: list[torch.Tensor] = []
    step = 0
    while not bool(finished.all()):
        logits, state = decoder(tokens, state, memory, keys, mask)
        tokens = logits[:, -1].argmax(dim=-1, keepdim=True)
        outputs.append(torch.where(finished, eos_id, tokens[:, 0]))
        step += 1
        finished = finished | (tokens[:, 0] == eos_id) | (step >= limits)
    return _strip(torch.stack(outputs, dim=1) if outputs else None, batch, eos_id)


@torch.no_grad()
def beam_decode(
    decoder: AttentionDecoder,
    memory: torch.Tensor,
    mask: torch.Tensor,
    bos_id: int,
    eos_id: int,
    max_lengths: torch.Tensor,
    beam_size: int = 4,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """Beam search; each row's final hypotheses are ranked by log-probability divided by
    ``length ** length_penalty`` (EOS counted; ``0`` ranks by plain log-probability).

    A hypothesis ends at EOS or at the row's length limit. With ``beam_size=1`` this is
    `greedy_decode`.

    :param decoder: the task's decoder.
    :param memory: encoder states, ``(B, S, D)``.
    :param mask: ``True`` on real source tokens, ``(B, S)``.
    :param bos_id: start token fed first.
    :param eos_id: end token (not included in the output).
    :param max_lengths: per row, the most tokens to emit, ``(B,)``.
    :param beam_size: hypotheses kept per row.
    :param length_penalty: exponent of the length normalization.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1; got {beam_size}")
    batch, k, device = memory.shape[0], beam_size, memory.device
    state = _repeat_state(decoder.initial_state(memory, mask), k)
    memory, mask = memory.repeat_interleave(k, dim=0), mask.repeat_interleave(k, dim=0)
    keys = decoder.keys(memory)
    limits = max_lengths.to(device).unsqueeze(1).expand(batch, k)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    finished = limits <= 0
    lengths = torch.zeros((batch, k), device=device)
    tokens = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=device)
    history: list[torch.Tensor] = []
    pointers: list[torch.Tensor] = []
    offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)
    while not bool(finished.all()):
        logits, state = decoder(tokens, state, memory, keys, mask)
        log_probs = torch.log_softmax(logits[:, -1].float(), dim=-1).view(batch, k, -1)
        # a finished hypothesis continues with EOS at no cost, so it keeps its score
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[..., eos_id] = 0.0
        log_probs = torch.where(finished.unsqueeze(-1), frozen, log_probs)
        vocab = log_probs.shape[-1]
        scores, flat = (scores.unsqueeze(-1) + log_probs).view(batch, -1).topk(k, dim=-1)
        beam, token = flat // vocab, flat % vocab
        index = (offsets + beam).view(-1)
        state = (state[0][:, index], state[1][:, index])
        was_finished = finished.gather(1, beam)
        lengths = lengths.gather(1, beam) + (~was_finished).float()
        finished = was_finished | (token == eos_id) | (lengths >= limits)
        history.append(token)
        pointers.append(beam)
        tokens = token.view(-1, 1)
    if not history:
        return [[] for _ in range(batch)]
    normalized = scores / lengths.clamp(min=1.0) ** length_penalty
    best = normalized.argmax(dim=1, keepdim=True)
    chosen = []
    for token, beam in zip(reversed(history), reversed(pointers), strict=True):
        chosen.append(token.gather(1, best))
        best = beam.gather(1, best)
    return _strip(torch.cat(chosen[::-1], dim=1), batch, eos_id)


def _strip(ids: torch.Tensor | None, batch: int, eos_id: int) -> list[list[int]]:
    """Rows of ``ids`` cut before their first EOS."""
    if ids is None:
        return [[] for _ in range(batch)]
    rows = []
    for row in ids.tolist():
        rows.append(row[: row.index(eos_id)] if eos_id in row else row)
    return rows

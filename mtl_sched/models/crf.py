"""A linear-chain conditional random field (Lafferty et al. 2001), batched and masked.

The score of a tag sequence ``y_1..y_n`` given per-token emission scores ``e_t`` is

    s(y) = start[y_1] + sum_t e_t[y_t] + sum_{t>1} transitions[y_{t-1}, y_t] + end[y_n]

and ``p(y | x) = exp(s(y)) / Z`` with ``Z`` the sum over every tag sequence of length ``n``.
Everything runs in log space (``logsumexp``), so large scores neither overflow nor underflow.

Batches are right-padded: ``mask[b, t]`` is ``True`` on the real tokens, which must form a
non-empty prefix of each row. Padded positions never influence a sentence's score, partition
function, Viterbi path or marginals: the recursions carry the last real state through them.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_mask(emissions: torch.Tensor, mask: torch.Tensor) -> None:
    if emissions.dim() != 3:
        raise ValueError(f"emissions must have shape (B, T, C); got {tuple(emissions.shape)}")
    if mask.shape != emissions.shape[:2]:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match emissions {tuple(emissions.shape)}"
        )
    if not bool(mask[:, 0].all()):
        raise ValueError("every sequence needs at least one real token (mask[:, 0] all True)")


class CRF(nn.Module):
    """Transition, start and end scores over ``num_tags`` tags, on top of emission scores.

    :param num_tags: number of tags ``C``.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"CRF needs at least one tag; got {num_tags}")
        self.num_tags = num_tags
        # transitions[i, j] scores tag i followed by tag j
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small uniform scores, so that no transition is preferred before training."""
        for param in (self.transitions, self.start_transitions, self.end_transitions):
            nn.init.uniform_(param, -0.1, 0.1)

    def restricted(self, tag_ids: torch.Tensor) -> CRF:
        """A CRF over the tags ``tag_ids`` (in that order) whose scores are this CRF's, so that
        gradients reach this one's parameters. Equal to giving every other tag an emission
        score of minus infinity, at the cost of the smaller tag set.

        :param tag_ids: indices of the kept tags, shape ``(C',)``.
        """
        view = CRF.__new__(CRF)
        nn.Module.__init__(view)
        view.num_tags = len(tag_ids)
        # plain tensors, not parameters: the view owns nothing and is rebuilt per use
        view.transitions = self.transitions[tag_ids][:, tag_ids]
        view.start_transitions = self.start_transitions[tag_ids]
        view.end_transitions = self.end_transitions[tag_ids]
        return view

    # ------------------------------------------------------------------------ likelihood
    def forward(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Negative log-likelihood ``log Z - s(y)`` of each sequence, shape ``(B,)``.

        :param emissions: emission scores, shape ``(B, T, C)``.
        :param tags: gold tags, shape ``(B, T)`` (values at padded positions are ignored).
        :param mask: ``True`` on real tokens, shape ``(B, T)``.
        """
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    def score(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Unnormalized log score ``s(y)`` of the given tag sequences, shape ``(B,)``.

        :param emissions: emission scores, shape ``(B, T, C)``.
        :param tags: tag sequences, shape ``(B, T)``.
        :param mask: ``True`` on real tokens, shape ``(B, T)``.
        """
        _check_mask(emissions, mask)
        tags = tags.masked_fill(~mask, 0)  # padding may hold any value; keep gathers in range
        maskf = mask.to(emissions.dtype)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        total = self.start_transitions[tags[:, 0]] + (emitted * maskf).sum(dim=1)
        if tags.shape[1] > 1:
            steps = self.transitions[tags[:, :-1], tags[:, 1:]]
            total = total + (steps * maskf[:, 1:]).sum(dim=1)
        last = mask.sum(dim=1) - 1
        last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)
        return total + self.end_transitions[last_tags]

    def _forward_alphas(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``alpha_t[b, j]``: log-sum of the scores of every prefix ending in tag ``j`` at ``t``
        (carried unchanged through padding)."""
        alpha = self.start_transitions + emissions[:, 0]
        alphas = [alpha]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t : t + 1], step, alpha)
            alphas.append(alpha)
        return alphas

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``log Z`` of each sequence (forward algorithm), shape ``(B,)``.

        :param emissions: emission scores, shape ``(B, T, C)``.
        :param mask: ``True`` on real tokens, shape ``(B, T)``.
        """
        _check_mask(emissions, mask)
        alpha = self._forward_alphas(emissions, mask)[-1]
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    # -------------------------------------------------------------------------- decoding
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The highest-scoring tag sequence of each row, cut to its length.

        :param emissions: emission scores, shape ``(B, T, C)``.
        :param mask: ``True`` on real tokens, shape ``(B, T)``.
        """
        _check_mask(emissions, mask)
        batch, length, num_tags = emissions.shape
        identity = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)
        best = self.start_transitions + emissions[:, 0]
        pointers = []
        for t in range(1, length):
            scores, previous = (best.unsqueeze(2) + self.transitions).max(dim=1)
            real = mask[:, t : t + 1]
            best = torch.where(real, scores + emissions[:, t], best)
            # through padding each tag points to itself, so backtracking starts at the last
            # real token whatever the row's length
            pointers.append(torch.where(real, previous, identity))
        tag = (best + self.end_transitions).argmax(dim=1)
        path = [tag]
        for previous in reversed(pointers):
            tag = previous.gather(1, tag.unsqueeze(1)).squeeze(1)
            path.append(tag)
        paths = torch.stack(path[::-1], dim=1).tolist()
        lengths = mask.sum(dim=1).tolist()
        return [row[:n] for row, n in zip(paths, lengths, strict=True)]

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-token log-marginals ``log p(y_t = j | x)`` (forward-backward), ``(B, T, C)``.

        Each real position is a normalized distribution over tags. They are obtained as
        ``log_softmax(alpha_t + beta_t)`` rather than ``alpha_t + beta_t - log Z``: the two are
        equal in exact arithmetic, and the former sums to one to machine precision. Padded
        positions hold the last real token's marginals; mask them out.

        :param emissions: emission scores, shape ``(B, T, C)``.
        :param mask: ``True`` on real tokens, shape ``(B, T)``.
        """
        _check_mask(emissions, mask)
        return self._marginals(self._forward_alphas(emissions, mask), emissions, mask)

    def nll_and_marginals(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` and `marginals` from one forward pass (the marginals carry no gradient).

        :param emissions: emission scores, shape ``(B, T, C)``.
        :param tags: gold tags, shape ``(B, T)``.
        :param mask: ``True`` on real tokens, shape ``(B, T)``.
        :returns: the NLL of each sequence ``(B,)`` and the log-marginals ``(B, T, C)``.
        """
        _check_mask(emissions, mask)
        alphas = self._forward_alphas(emissions, mask)
        log_z = torch.logsumexp(alphas[-1] + self.end_transitions, dim=1)
        nll = log_z - self.score(emissions, tags, mask)
        with torch.no_grad():
            marginals = self._marginals([a.detach() for a in alphas], emissions.detach(), mask)
        return nll, marginals

    def _marginals(
        self, alphas: list[torch.Tensor], emissions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        beta = self.end_transitions.expand_as(alphas[-1])
        betas = [beta]
        for t in range(emissions.shape[1] - 1, 0, -1):
            step = torch.logsumexp(self.transitions + (emissions[:, t] + beta).unsqueeze(1), dim=2)
            beta = torch.where(mask[:, t : t + 1], step, beta)
            betas.append(beta)
        scores = torch.stack(alphas, dim=1) + torch.stack(betas[::-1], dim=1)
        return torch.log_softmax(scores, dim=2)

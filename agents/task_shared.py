"""A task-shared Q-network: one scorer applied to every task slot, for any number of tasks.

Architecture
    The observation is a table of shape ``(M, D)`` (batched ``(n, M, D)``), one row per task
    slot. A per-task encoder MLP (widths ``net_arch``, ReLU by default) maps the first ``D - 1``
    columns of row ``k`` to an embedding ``e_k``. A pooled context
    ``c = [masked mean of e over the real tasks, masked max of e over the real tasks]`` summarises
    the task set, and a score head MLP (one hidden layer of ``net_arch[-1]`` units) maps
    ``[e_k, c]`` to ``Q(s, k)``. Padded slots get ``Q = -inf``.

Why
    SB3's ``MlpPolicy`` over a flat vector of ``K x features`` ties an agent to one ``K`` and one
    task order. Scoring every task with the same weights (the per-task scorer of ATS-style
    schedulers) and comparing it with a permutation-invariant summary of the others makes the
    parameter count independent of ``M``, the Q-values permutation-equivariant (permuting the
    real task rows permutes the Q-values), and lets one trained agent score a task set of
    another size: ``agent.q_net(obs_tensor)`` accepts any ``M`` at forward time.

Task identity
    With ``task_identity=True`` the column before the mask holds each row's task identity, an
    integer in ``[0, V]`` (`mtl_sched.envs.MTLSchedulingEnv`'s ``task_vocabulary``, written by
    default): ``V`` is read from the observation space's upper bound of that column. The policy
    reads identities whenever the space has that column unless told ``task_identity=False``.
    The encoder then reads the row's features together with a learned embedding of the identity
    (``nn.Embedding(V + 1, 8)``, index 0, a task outside the vocabulary, fixed at zero), so
    tasks that look alike in every feature (two tasks at chance before either has learned
    anything) still get their own Q-values. The parameter count then depends on ``V``, never on
    ``M``; any number of tasks in any order still works, and tasks outside the vocabulary are
    scored from their features alone.

Mask contract
    The last column of each row is a mask: ``1.0`` for a real task, ``0.0`` for padding (a run
    with ``K < M`` tasks fills slots ``K .. M-1`` with zeros). The first ``D - 1`` columns are the
    task's features. Action ``k`` trains task slot ``k``, so the action space is
    ``Discrete(M)``. Padded slots never influence the context and are never chosen greedily. A
    state without any real task (an all-zero terminal observation, say) has no valid action; its
    Q-values are all ``0`` so that a TD target bootstrapping from it stays finite.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from mtl_sched.observation.task_features import MASK_THRESHOLD
from mtl_sched.observation.task_features import task_mask as rows_mask

# width of a task identity's learned embedding: a handful of known tasks needs few dimensions
IDENTITY_EMBEDDING_DIM = 8


def check_task_table_space(observation_space: gym.Space, action_space: gym.Space) -> None:
    """Raise ``ValueError`` unless the spaces follow the task-table contract: a ``Box`` of shape
    ``(M, D)`` with ``D >= 2`` (features plus mask) and ``Discrete(M)`` actions.

    :param observation_space: the environment's observation space.
    :param action_space: the environment's action space.
    """
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 2:
        raise ValueError(
            "observation_space must be a Box of shape (M, D) (one row per task slot, mask in the "
            f"last column); got {observation_space}"
        )
    n_slots, row_width = observation_space.shape
    if row_width < 2:
        raise ValueError(
            f"observation_space rows need at least one feature and the mask; got width {row_width}"
        )
    if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != n_slots:
        raise ValueError(
            f"action_space must be Discrete({n_slots}), one action per task slot; "
            f"got {action_space}"
        )


def task_mask(observation: np.ndarray) -> np.ndarray:
    """Which task slots hold a real task (`mtl_sched.observation.task_features.task_mask`), as a
    batch, for states that must have at least one.

    :param observation: one table ``(M, D)`` or a batch ``(n, M, D)``.
    :return: boolean array of shape ``(n, M)`` (``n = 1`` for a single table).
    """
    observation = np.asarray(observation)
    if observation.ndim == 2:
        observation = observation[None]
    if observation.ndim != 3 or observation.shape[-1] < 2:
        raise ValueError(
            f"observation must have shape (M, D) or (n, M, D) with D >= 2; got {observation.shape}"
        )
    mask = rows_mask(observation)
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(
            f"observation {empty.tolist()} has no real task (all mask entries are 0), so no "
            "action is valid"
        )
    return mask


def identity_vocabulary_size(observation_space: gym.Space) -> int:
    """The vocabulary size ``V`` of a task table whose column before the mask holds task
    identities: that column's upper bound.

    :param observation_space: a task-table ``Box`` of shape ``(M, D)`` with ``D >= 3``.
    :raises ValueError: when the space has no identity column (lower bound 0, integer upper
        bound of at least 1).
    """
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 2:
        raise ValueError(f"task identity needs a task-table Box; got {observation_space}")
    if observation_space.shape[1] < 3:
        raise ValueError("task identity needs a column of task identities before the mask")
    low, high = observation_space.low[:, -2], observation_space.high[:, -2]
    size = float(high.max())
    if (low != 0).any() or (high != size).any() or size < 1 or size != round(size):
        raise ValueError(
            "task identity needs the observation's column before the mask to hold task "
            "identities in [0, V] (an environment with task_vocabulary); its bounds are "
            f"[{low.min()}, {high.max()}]"
        )
    return int(size)


def has_identity_column(observation_space: gym.Space) -> bool:
    """Whether a task table's column before the mask holds task identities: bounds ``[0, V]``
    for a whole number ``V >= 1`` in every row (`identity_vocabulary_size`), as
    `mtl_sched.envs.MTLSchedulingEnv` writes them; every other column of its tables is bounded
    below by -1.

    :param observation_space: the environment's observation space.
    """
    try:
        identity_vocabulary_size(observation_space)
    except ValueError:
        return False
    return True


class TaskRowsExtractor(BaseFeaturesExtractor):
    """Passes the task table through unchanged, keeping its ``(n, M, D)`` shape (SB3's
    ``FlattenExtractor`` would mix the slots into one vector).

    :param observation_space: a ``Box`` of shape ``(M, D)``; ``features_dim`` is the row width
        ``D``.
    """

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(observation_space.shape[-1]))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return observations


class TaskSharedQNetwork(QNetwork):
    """Q-network scoring every task slot with shared weights and a pooled context of the real
    tasks (see the module docstring).

    :param observation_space: a ``Box`` of shape ``(M, D)``; only ``D`` fixes the weights.
    :param action_space: ``Discrete(M)``.
    :param features_extractor: an extractor keeping the table's shape (``TaskRowsExtractor``).
    :param features_dim: the row width ``D`` (task features plus the mask column).
    :param net_arch: widths of the per-task encoder; the score head has one hidden layer of
        ``net_arch[-1]`` units. Default ``[64, 64]``.
    :param activation_fn: activation of both MLPs.
    :param normalize_images: unused (the table is not an image); kept for SB3's interface.
    :param task_identity: read the column before the mask as the task's identity (see the
        module docstring).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        task_identity: bool = False,
    ) -> None:
        check_task_table_space(observation_space, action_space)
        vocabulary_size = identity_vocabulary_size(observation_space) if task_identity else 0
        net_arch = [64, 64] if net_arch is None else list(net_arch)
        if not net_arch or any(int(width) < 1 for width in net_arch):
            raise ValueError(
                f"net_arch must be a non-empty list of positive widths; got {net_arch}"
            )
        # ``QNetwork.__init__`` would build a flat MLP with one output per slot, whose size
        # depends on M; the task-shared layers below replace it.
        super(QNetwork, self).__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        embedding_dim = net_arch[-1]
        self.task_identity = bool(task_identity)
        # row layout: features, then the identity column (with task_identity), then the mask
        self.feature_columns = features_dim - 1 - int(self.task_identity)
        encoder_inputs = self.feature_columns
        self.identity_embedding: nn.Embedding | None = None
        if self.task_identity:
            self.identity_embedding = nn.Embedding(
                vocabulary_size + 1, IDENTITY_EMBEDDING_DIM, padding_idx=0
            )
            encoder_inputs += IDENTITY_EMBEDDING_DIM
        self.task_encoder = nn.Sequential(*create_mlp(encoder_inputs, -1, net_arch, activation_fn))
        # input: the task's embedding, then the mean and the max of all real tasks' embeddings
        self.score_head = nn.Sequential(
            *create_mlp(3 * embedding_dim, 1, [embedding_dim], activation_fn)
        )

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """Q-values of a batch of task tables ``(n, M', D)`` for any number of slots ``M'``.

        :param obs: the task tables.
        :return: ``Q(s, k)`` of shape ``(n, M')``; ``-inf`` on padded slots.
        """
        table = self.extract_features(obs, self.features_extractor)
        features, mask = table[..., : self.feature_columns], table[..., -1] > MASK_THRESHOLD
        if self.identity_embedding is not None:
            identity = (
                table[..., -2].round().long().clamp(0, self.identity_embedding.num_embeddings - 1)
            )
            features = th.cat([features, self.identity_embedding(identity)], dim=-1)
        embeddings = self.task_encoder(features)
        has_task = mask.any(dim=1, keepdim=True)
        row_mask = mask.unsqueeze(-1)
        real_count = mask.sum(dim=1, keepdim=True).clamp(min=1)
        mean = (embeddings * row_mask).sum(dim=1) / real_count
        # -inf fill, not 0: the activation need not be non-negative
        peak = embeddings.masked_fill(~row_mask, float("-inf")).amax(dim=1)
        peak = th.where(has_task, peak, th.zeros_like(peak))
        context = th.cat([mean, peak], dim=-1).unsqueeze(1).expand(-1, table.shape[1], -1)
        q_values = self.score_head(th.cat([embeddings, context], dim=-1)).squeeze(-1)
        padded = ~mask & has_task
        return q_values.masked_fill(padded, float("-inf")).masked_fill(~has_task, 0.0)


class TaskSharedDQNPolicy(DQNPolicy):
    """DQN policy whose ``q_net`` and ``q_net_target`` are ``TaskSharedQNetwork``.

    :param observation_space: a ``Box`` of shape ``(M, D)`` (task rows, mask in the last column).
    :param action_space: ``Discrete(M)``.
    :param lr_schedule: learning rate schedule.
    :param net_arch: widths of the per-task encoder (default ``[64, 64]``).
    :param activation_fn: activation of the encoder and score head.
    :param features_extractor_class: must keep the table's shape: ``TaskRowsExtractor`` or a
        subclass.
    :param features_extractor_kwargs: keyword arguments of the features extractor.
    :param normalize_images: unused (the table is not an image).
    :param optimizer_class: the optimizer, ``th.optim.Adam`` by default.
    :param optimizer_kwargs: optimizer keyword arguments, the learning rate excluded.
    :param task_identity: the networks read each row's task identity (see the module
        docstring); the environment must write it (``task_vocabulary``). ``None`` (the default)
        reads it when the observation space has the column (`has_identity_column`), as the
        environment's defaults write it; ``False`` reads the table without identities (an
        identity column is then one more feature).
    """

    q_net: TaskSharedQNetwork
    q_net_target: TaskSharedQNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = TaskRowsExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        task_identity: bool | None = None,
    ) -> None:
        check_task_table_space(observation_space, action_space)
        if task_identity is None:
            task_identity = has_identity_column(observation_space)
        elif task_identity:
            identity_vocabulary_size(observation_space)  # fails early, naming the cause
        # read by make_q_net, which DQNPolicy.__init__ calls
        self.task_identity = bool(task_identity)
        if not (
            isinstance(features_extractor_class, type)
            and issubclass(features_extractor_class, TaskRowsExtractor)
        ):
            raise ValueError(
                "features_extractor_class must keep the (M, D) task table (TaskRowsExtractor or "
                f"a subclass); got {features_extractor_class}"
            )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    def make_q_net(self) -> TaskSharedQNetwork:
        # a fresh features extractor per network, as DQNPolicy does, so target and online
        # networks share no modules
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return TaskSharedQNetwork(**net_args, task_identity=self.task_identity).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "task_identity": self.task_identity}

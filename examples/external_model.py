"""Schedule a model the toolkit does not define, trained in a loop the toolkit does not own.

The model is a small ``torch.nn.TransformerEncoder`` shared by three text-classification heads,
on token sequences generated here (no downloads):

- ``majority``: are most tokens from the lower half of the vocabulary?
- ``first-last``: is the first token larger than the last one?
- ``noisy-majority``: ``majority`` with a share of its labels flipped (``--label-noise``).

The script

1. wraps the model as a `MTLSchedulingEnv` through a trainer factory (the model class satisfies
   the `MTLModel` protocol: ``collate``, ``task_output``, ``shared_parameters``,
   ``task_parameters``, and ``last_shared_layer`` for GradNorm) and trains a Q-learning
   scheduler agent on it for ``--agent-steps`` environment steps;
2. trains fresh models in a plain PyTorch loop, where a `SchedulerDriver` asks (a) the learned
   `QLSScheduler` and (b) each ``--baselines`` scheduler which task(s) train next;
3. prints the test accuracy of every task under every scheduler.

    python examples/external_model.py
    python examples/external_model.py --budget 300 --agent-steps 50 --train-size 100  # seconds
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mtl_sched import (
    ProbeConfig,
    ProbeData,
    Scheduler,
    SchedulerDriver,
    Task,
    TaskOutput,
    Trainer,
    TrainerConfig,
    make_scheduler,
)
from mtl_sched.agents import AgentSettings, QLSScheduler
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.script_args import parse_args_into

TASKS = ("majority", "first-last", "noisy-majority")


@dataclass
class Args:
    """Command-line flags: ``--name value`` for each field (dashes for underscores)."""

    seed: int = field(
        default=0, metadata={"help": "seed of the data, the models, the agent and the schedulers"}
    )
    train_size: int = field(default=800, metadata={"help": "training sequences per task"})
    eval_size: int = field(default=200, metadata={"help": "validation and test sequences per task"})
    seq_len: int = field(default=11, metadata={"help": "tokens per sequence"})
    vocab_size: int = field(default=16, metadata={"help": "token ids 0 .. vocab_size - 1"})
    label_noise: float = field(
        default=0.3, metadata={"help": "share of flipped labels of noisy-majority"}
    )
    d_model: int = field(default=32, metadata={"help": "width of the shared transformer encoder"})
    nhead: int = field(default=4, metadata={"help": "attention heads"})
    num_layers: int = field(default=1, metadata={"help": "encoder layers"})
    batch_size: int = field(default=32, metadata={"help": "examples per task minibatch"})
    learning_rate: float = field(default=3e-3, metadata={"help": "Adam learning rate of the model"})
    budget: int = field(
        default=4_800, metadata={"help": "training examples per training run (all tasks together)"}
    )
    probe_size: int = field(
        default=100,
        metadata={
            "help": "validation examples per task in the probe set (the agent's observation)"
        },
    )
    bins: int = field(default=10, metadata={"help": "histogram bins per task"})
    agent_steps: int = field(
        default=1_500, metadata={"help": "environment steps of agent training"}
    )
    learning_starts: int = field(
        default=200, metadata={"help": "environment steps before the agent's first gradient update"}
    )
    baselines: tuple[str, ...] = field(
        default=("round-robin", "uniform"),
        metadata={"help": "registered schedulers to compare with the learned one"},
    )
    device: str = field(
        default="auto", metadata={"help": "cpu, cuda, or auto (cuda when available)"}
    )


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """`Args` from the command line (``argv``, else ``sys.argv``)."""
    return parse_args_into(Args, argv, description=__doc__.splitlines()[0])


# ------------------------------------------------------------------------------------ data
def make_tasks(args: Args) -> list[Task]:
    """The three generated tasks, each with train/validation/test splits."""
    rng = np.random.default_rng(args.seed)
    sizes = {"train": args.train_size, "validation": args.eval_size, "test": args.eval_size}
    tasks = []
    for name in TASKS:
        splits = {}
        for split, size in sizes.items():
            tokens = rng.integers(0, args.vocab_size, size=(size, args.seq_len))
            if name == "first-last":
                labels = tokens[:, 0] > tokens[:, -1]
            else:
                labels = (tokens < args.vocab_size // 2).sum(axis=1) > args.seq_len // 2
            labels = labels.astype(np.int64)
            if name == "noisy-majority":
                flip = rng.random(size) < args.label_noise
                labels = np.where(flip, 1 - labels, labels)
            splits[split] = datasets.Dataset.from_dict(
                {"tokens": tokens.tolist(), "label": labels.tolist()}
            )
        tasks.append(Task(name=name, splits=splits, num_classes=2))
    return tasks


def split_tensors(task: Task, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``(N, T)`` and labels ``(N,)`` of one split, for the plain training loop."""
    columns = task.split(split).with_format("numpy")[:]
    return torch.as_tensor(columns["tokens"]), torch.as_tensor(columns["label"])


# ----------------------------------------------------------------------------------- model
class TransformerMTL(nn.Module):
    """A transformer encoder shared by one linear head per task (hard parameter sharing).

    ``forward(tokens, task)`` is all a plain loop needs; ``collate``, ``task_output``,
    ``shared_parameters`` and ``task_parameters`` make it an `MTLModel`, so the toolkit's
    `Trainer` (and with it `MTLSchedulingEnv`) can train it too.

    :param args: vocabulary size, sequence length and encoder sizes.
    :param task_classes: task name -> number of classes, in task order.
    """

    def __init__(self, args: Args, task_classes: Mapping[str, int]) -> None:
        super().__init__()
        self.task_names: tuple[str, ...] = tuple(task_classes)
        self.embedding = nn.Embedding(args.vocab_size, args.d_model)
        self.position = nn.Parameter(0.02 * torch.randn(args.seq_len, args.d_model))
        layer = nn.TransformerEncoderLayer(
            args.d_model,
            args.nhead,
            dim_feedforward=2 * args.d_model,
            dropout=0.0,
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, args.num_layers, enable_nested_tensor=False)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(args.d_model, c) for name, c in task_classes.items()}
        )

    def forward(self, tokens: torch.Tensor, task: str) -> torch.Tensor:
        """Logits ``(B, C)`` of ``task`` for token ids ``(B, T)`` (mean-pooled encoder states)."""
        states = self.encoder(self.embedding(tokens) + self.position)
        return self.heads[task](states.mean(dim=1))

    def collate(self, task: str, rows: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Dataset rows (``tokens``, ``label`` columns) as a batch of tensors."""
        tokens = np.stack([np.asarray(t, dtype=np.int64) for t in rows["tokens"]])
        return {
            "tokens": torch.as_tensor(tokens),
            "label": torch.as_tensor(np.asarray(rows["label"], dtype=np.int64)),
        }

    def task_output(self, task: str, batch: Mapping[str, torch.Tensor]) -> TaskOutput:
        """Logits and targets of one batch of ``task``."""
        return TaskOutput(logits=self(batch["tokens"], task), targets=batch["label"])

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Embeddings and encoder."""
        yield self.position
        yield from self.embedding.parameters()
        yield from self.encoder.parameters()

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The output projection of the last encoder layer's feed-forward block: its output,
        layer-normalized and mean-pooled, is what every head reads (the layer GradNorm
        balances)."""
        last = self.encoder.layers[-1]
        return [last.linear2.weight]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """The head of ``task``."""
        return self.heads[task].parameters()


def build_model(args: Args, tasks: Sequence[Task], seed: int) -> TransformerMTL:
    """A freshly initialized model; the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random stream alone
        torch.manual_seed(seed)
        return TransformerMTL(args, {t.name: t.num_classes for t in tasks})


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; other names go to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ------------------------------------------------------------------ (a) learn a scheduler
def train_qls(args: Args, tasks: Sequence[Task]) -> QLSScheduler:
    """Train a scheduler agent on this model, wrapped as an environment, and return it as a
    greedy `QLSScheduler`."""
    probe = ProbeConfig(bins=args.bins, pool_size=args.probe_size)
    config = TrainerConfig(
        budget=args.budget,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        probe=probe,
        device=args.device,
    )

    def trainer_factory(seed: int) -> Trainer:
        return Trainer(build_model(args, tasks, seed), tasks, config, seed)

    # the defaults: one run of the trainer's budget per episode, per-task feature rows for the
    # task-shared Q-network, reward the fall of the summed validation loss
    env = MTLSchedulingEnv(None, trainer_factory=trainer_factory)
    settings = AgentSettings(
        learning_starts=args.learning_starts,
        target_update_interval=max(1, args.agent_steps // 10),
    )
    agent = settings.make_agent(env, seed=args.seed, total_steps=args.agent_steps)
    agent.learn(args.agent_steps)
    return QLSScheduler.from_env(agent, env)


# --------------------------------------------------------------- (b) your own training loop
def train_own_loop(args: Args, tasks: Sequence[Task], scheduler: Scheduler) -> dict[str, Any]:
    """Train a fresh model in a plain PyTorch loop where ``scheduler`` picks the tasks; return
    the test accuracy per task and the examples each task received."""
    device = resolve_device(args.device)
    names = [t.name for t in tasks]
    model = build_model(args, tasks, args.seed + 1).to(device)
    train = {t.name: [x.to(device) for x in split_tensors(t, "train")] for t in tasks}
    probe_set = {
        t.name: [x[: args.probe_size].to(device) for x in split_tensors(t, "validation")]
        for t in tasks
    }

    @torch.no_grad()
    def probe_fn() -> ProbeData:
        # the probe set the agent was trained on: the first probe_size validation examples
        model.eval()
        probabilities = [torch.softmax(model(probe_set[n][0], n), dim=-1) for n in names]
        model.train()
        return ProbeData(probabilities, targets=[probe_set[n][1] for n in names])

    driver = SchedulerDriver(
        scheduler, names, seed=args.seed, budget=args.budget, probe_fn=probe_fn, device=device
    )
    optimizer = torch.optim.Adam(
        [{"params": model.parameters()}, {"params": driver.parameters(), "weight_decay": 0.0}],
        lr=args.learning_rate,
    )
    generator = torch.Generator().manual_seed(args.seed)
    while not driver.done:
        step = driver.next_step()
        remaining = args.budget - driver.examples_seen
        size = max(1, min(args.batch_size, remaining // len(step.tasks)))
        batches, outputs = [], []
        for k in step.tasks:
            tokens, labels = train[names[k]]
            rows = torch.randint(len(labels), (size,), generator=generator).to(device)
            batches.append({"tokens": tokens[rows], "label": labels[rows]})
            outputs.append(model.task_output(names[k], batches[-1]))
        task_losses = torch.stack([F.cross_entropy(o.logits, o.targets) for o in outputs])
        # the weighted sum for most schedulers; gradnorm, focal, ... combine their own way
        loss = driver.combine(task_losses, outputs=outputs, model=model, batches=batches)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        driver.report(task_losses, [size] * len(step.tasks), loss=loss)

    model.eval()
    accuracies = {}
    with torch.no_grad():
        for task in tasks:
            tokens, labels = (x.to(device) for x in split_tensors(task, "test"))
            predicted = model(tokens, task.name).argmax(dim=-1)
            accuracies[task.name] = float((predicted == labels).float().mean())
    return {
        "accuracy": accuracies,
        "examples": dict(zip(names, driver.examples_per_task.tolist(), strict=True)),
        "steps": driver.step,
    }


def main(args: Args) -> dict[str, dict[str, Any]]:
    """Train the agent, run every scheduler in the plain loop, print and return the results."""
    torch.set_num_threads(1)
    tasks = make_tasks(args)
    schedulers: dict[str, Scheduler] = {"qls (learned)": train_qls(args, tasks)}
    schedulers.update({name: make_scheduler(name) for name in args.baselines})
    results = {label: train_own_loop(args, tasks, s) for label, s in schedulers.items()}

    header = ["scheduler", *TASKS, "average", "steps", "examples per task"]
    print("  ".join(f"{h:>14}" if i else f"{h:<14}" for i, h in enumerate(header[:-1])), header[-1])
    for label, result in results.items():
        accuracy = result["accuracy"]
        cells = [f"{accuracy[t]:>14.3f}" for t in TASKS]
        average = sum(accuracy.values()) / len(accuracy)
        shares = " / ".join(str(result["examples"][t]) for t in TASKS)
        print(
            f"{label:<14}", *cells, f"{average:>14.3f}", f"{result['steps']:>14}", shares, sep="  "
        )
    return results


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))

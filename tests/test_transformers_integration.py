"""A scheduler choosing the data of a Hugging Face ``Trainer`` (tiny random BERT, offline)."""

import importlib
import sys

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from mtl_sched import make_scheduler
from mtl_sched.integrations import ScheduledMixture

SEQ_LEN = 8


def classification_data(seed: int, n: int = 64) -> datasets.Dataset:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 50, (n, SEQ_LEN), generator=generator)
    if seed == 0:  # learnable: the label is whether the first token is in the upper half
        labels = (ids[:, 0] > 27).long()
    else:  # random labels: the loss stays near log 2
        labels = torch.randint(0, 2, (n,), generator=generator)
    return datasets.Dataset.from_dict(
        {"input_ids": ids.tolist(), "attention_mask": [[1] * SEQ_LEN] * n, "labels": labels}
    ).with_format("torch")


def test_missing_transformers_gives_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.delitem(sys.modules, "mtl_sched.integrations.transformers", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'mtl-sched\[hf\]'"):
        importlib.import_module("mtl_sched.integrations.transformers")


def test_trainer_reports_per_task_losses_and_the_scheduler_moves_the_mixture(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from mtl_sched.integrations.transformers import ScheduledMixtureTrainer

    drawn: list[str] = []

    def recording(task: str):
        def collate(examples: list) -> dict:
            drawn.append(task)
            return default_collate(examples)

        return collate

    mixture = ScheduledMixture(
        make_scheduler("greedy"),
        {"easy": classification_data(0), "noisy": classification_data(1)},
        batch_size=8,
        budget=240,
        seed=0,
        collate_fn={"easy": recording("easy"), "noisy": recording("noisy")},
    )
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config)
    computed: list[float] = []
    model.register_forward_hook(
        lambda module, inputs, output: (
            computed.append(float(output.loss.detach())) if module.training else None
        )
    )
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=1000,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = ScheduledMixtureTrainer(model=model, args=args, mixture=mixture)
    trainer.train()

    # the budget stopped training: 240 examples in steps of 8, every one reported
    assert trainer.state.global_step == mixture.step == 30 == len(computed)
    assert sum(mixture.examples_per_task.values()) == 240
    history = trainer.mixture_callback.shares_history
    assert len(history) == 30 and history[-1] == mixture.shares
    # the scheduler saw exactly the losses the model computed, task by task: replaying greedy
    # (untried tasks first, then the highest latest loss) on them gives the trained sequence
    assert len(drawn) == 30
    latest = {"easy": np.nan, "noisy": np.nan}
    for step, (task, loss) in enumerate(zip(drawn, computed, strict=True)):
        untried = [t for t, v in latest.items() if np.isnan(v)]
        assert task == (untried[0] if untried else max(latest, key=latest.__getitem__)), step
        latest[task] = loss
    np.testing.assert_allclose(
        mixture.driver.train_losses, [latest["easy"], latest["noisy"]], rtol=1e-6
    )
    # the mixture moved: the learnable task's loss fell below the noisy one's, which then
    # got most of the later batches
    assert mixture.examples_per_task["noisy"] > mixture.examples_per_task["easy"]
    assert history[1] == {"easy": 0.5, "noisy": 0.5}

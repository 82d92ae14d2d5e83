"""The examples of your own data and your own framework run with tiny settings."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


def test_hf_dataset_tasks_example(capsys):
    module = load_example("hf_dataset_tasks")
    args = module.parse_args(["--train-size", "60", "--eval-size", "20", "--budget", "160"])
    result = module.main(args)
    printed = capsys.readouterr().out
    assert "sentiment: classification, labels ['neg', 'pos'], train 60" in printed
    assert "topic: classification, labels ['food', 'sports', 'travel'], train 60" in printed
    assert sum(result["shares"].values()) == pytest.approx(1.0)
    assert set(result["scores"]) == {"sentiment", "topic"}


def test_transformers_trainer_example(capsys, monkeypatch):
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    module = load_example("transformers_trainer")
    args = module.parse_args(["--train-size", "32", "--budget", "64", "--batch-size", "8"])
    result = module.main(args)
    assert result["steps"] == 8
    assert sum(result["shares"].values()) == pytest.approx(1.0)
    assert "after    8 steps: shares" in capsys.readouterr().out

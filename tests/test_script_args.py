"""The dataclass-to-flags parsing shared by the runnable scripts."""

import argparse
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mtl_sched.script_args import parse_args_into, parse_key_value


@dataclass
class Args:
    """Example arguments."""

    benchmark: str = field(default="synthetic", metadata={"help": "benchmark"})
    steps: int = field(default=10, metadata={"help": "steps"})
    rate: float = field(default=0.5, metadata={"help": "rate"})
    data_dir: str | None = field(default=None, metadata={"help": "data"})
    small: bool = field(default=False, metadata={"help": "small variant"})
    shuffle: bool = field(default=True, metadata={"help": "shuffle"})
    option: list[str] = field(default_factory=lambda: ["budget=8"], metadata={"help": "options"})
    seeds: tuple[int, ...] = field(default=(0, 1), metadata={"help": "seeds"})


def test_defaults_come_from_the_dataclass():
    assert parse_args_into(Args, []) == Args()


def test_every_kind_of_field_is_parsed_to_its_type():
    args = parse_args_into(
        Args,
        [
            "--benchmark",
            "fdu-mtl",
            "--steps",
            "3",
            "--rate",
            "1e-2",
            "--data-dir",
            "/d",
            "--small",
            "--no-shuffle",
            "--option",
            "a=1",
            "--option",
            "b=x",
            "--seeds",
            "4",
            "5",
            "6",
        ],
    )
    assert args == Args("fdu-mtl", 3, 0.01, "/d", True, False, ["a=1", "b=x"], (4, 5, 6))


def test_repeatable_flags_replace_the_default_list_rather_than_extend_it():
    assert parse_args_into(Args, ["--option", "c=2"]).option == ["c=2"]


def test_a_multi_value_flag_given_twice_keeps_the_values_of_both():
    assert parse_args_into(Args, ["--seeds", "4", "--seeds", "5", "6"]).seeds == (4, 5, 6)
    assert parse_args_into(Args, ["--seeds", "7"]).seeds == (7,)


def test_a_wrong_value_names_the_flag(capsys):
    with pytest.raises(SystemExit):
        parse_args_into(Args, ["--steps", "many"])
    assert "--steps" in capsys.readouterr().err


def test_key_value_pairs_read_literals_and_bare_words():
    assert parse_key_value("budget=4800") == ("budget", 4800)
    assert parse_key_value("steps-per-action=2") == ("steps_per_action", 2)
    assert parse_key_value("name=uniform") == ("name", "uniform")
    assert parse_key_value("sizes=(1, 2)") == ("sizes", (1, 2))
    # a scoped key keeps its scope (a benchmark name) and converts the key after the last dot
    assert parse_key_value("fdu-mtl.probe-pool=8") == ("fdu-mtl.probe_pool", 8)
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        parse_key_value("budget")


def test_learned_vs_best_keeps_every_setting_flag(monkeypatch):
    scripts = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location("learned_vs_best", scripts / "learned_vs_best.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "learned_vs_best", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    args = module.parse_args(
        ["--setting", "observation=histogram", "--setting", "policy=flat", "--steps", "5"]
    )
    assert args.setting == ["observation=histogram", "policy=flat"]
    assert module.parse_args([]).setting == []


def test_a_script_builds_its_benchmark_with_the_options_scoped_to_it(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from benchmark_args import BenchmarkArgs

    def budget(*options: str) -> int:
        args = BenchmarkArgs(benchmark="synthetic-harmful", small=True, option=list(options))
        return args.make_benchmark().trainer_config.budget

    assert budget("budget=320") == 320
    # its own scope wins over the unscoped value; another benchmark's scope is for training
    assert budget("budget=320", "synthetic-harmful.budget=640", "fdu-mtl.budget=9") == 640

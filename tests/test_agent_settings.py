"""`AgentSettings.from_options` refuses unknown keys as the command line does."""

import dataclasses
import inspect

import pytest

from mtl_sched.agents.settings import AgentSettings
from mtl_sched.benchmarks import get_benchmark
from mtl_sched.cli.keys import check_setting_keys
from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.script_args import UnknownKeyError


def test_from_options_names_the_unknown_key_and_every_valid_one():
    with pytest.raises(UnknownKeyError) as caught:
        AgentSettings.from_options({"gamma": 0.5, "gama": 0.5})
    message = str(caught.value)
    assert message.startswith("the agent has no setting 'gama' (did you mean 'gamma'?)")
    valid = ", ".join(f.name for f in dataclasses.fields(AgentSettings))
    assert message.endswith(f"its settings: {valid}")
    assert isinstance(caught.value, ValueError)


def test_from_options_gives_the_message_of_the_command_line_check():
    with pytest.raises(UnknownKeyError) as python_call:
        AgentSettings.from_options({"exploraton": "boltzmann"})
    with pytest.raises(UnknownKeyError) as command_line:
        check_setting_keys(["exploraton"])
    assert str(command_line.value).startswith(str(python_call.value))


def test_from_options_keeps_the_given_values_and_the_defaults_elsewhere():
    settings = AgentSettings.from_options({"gamma": 0.5})
    assert settings.gamma == 0.5
    assert settings.learning_rate == AgentSettings().learning_rate


def test_the_environment_defaults_are_the_agent_settings_defaults():
    # one set of defaults: an environment built without arguments trains like train-agent's
    parameters = inspect.signature(MTLSchedulingEnv).parameters
    benchmark = get_benchmark("synthetic")
    for name, value in AgentSettings().env_kwargs([benchmark]).items():
        default = parameters[name].default
        if name == "task_vocabulary":  # "own": the environment's task names
            default = MTLSchedulingEnv(benchmark).task_vocabulary
        assert default == value, name

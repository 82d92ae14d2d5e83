"""Probing only some tasks per pass (`ProbeConfig.refresh`): which tasks, and what is kept."""

import numpy as np
import pytest
from observation_checks import task_histograms

from mtl_sched.envs import MTLSchedulingEnv
from mtl_sched.observation.probing import ProbeConfig, ProbeResult, RollingProbe
from mtl_sched.scheduling import Scheduler, Step, TrainState

K, BINS = 4, 20


def _fake_run(calls: list[list[int]], pass_index: list[int]):
    """A probe whose every value encodes (pass, task), so kept and fresh rows can be told apart."""

    def run(tasks):
        calls.append(list(tasks))
        pass_index[0] += 1
        value = [10.0 * pass_index[0] + k for k in tasks]
        return ProbeResult(
            histograms=np.repeat(np.asarray(value)[:, None], 3, axis=1),
            losses=np.asarray(value),
            accuracies=np.asarray(value) / 100,
            uncertainties=[np.asarray([v]) for v in value],
        )

    return run


def test_each_pass_probes_the_trained_tasks_and_the_longest_unprobed_others():
    rolling = RollingProbe(5, ProbeConfig(refresh=1))
    calls: list[list[int]] = []
    run = _fake_run(calls, [0])
    rolling.update(run)
    for trained in ([2], [2], [0], [4], [1, 3], []):
        rolling.update(run, trained)
    # ages before each pass decide the extra task; lowest index first among equals
    assert calls == [[0, 1, 2, 3, 4], [0, 2], [1, 2], [0, 3], [1, 4], [1, 2, 3], [0]]
    assert rolling.age.tolist() == [0, 1, 1, 1, 2]


def test_tasks_not_probed_keep_their_last_values():
    rolling = RollingProbe(4, ProbeConfig(refresh=1))
    run = _fake_run([], [0])
    rolling.update(run)  # pass 1: values 10..13
    result = rolling.update(run, [3])  # pass 2 probes 0 and 3: values 20 and 23
    assert result.losses.tolist() == [20.0, 11.0, 12.0, 23.0]
    assert result.histograms[:, 0].tolist() == [20.0, 11.0, 12.0, 23.0]
    assert result.accuracies.tolist() == pytest.approx([0.20, 0.11, 0.12, 0.23])
    assert [u[0] for u in result.uncertainties] == [20.0, 11.0, 12.0, 23.0]
    assert rolling.age.tolist() == [0, 1, 1, 0]
    rolling.reset()
    assert rolling.tasks_to_probe([1]) == [0, 1, 2, 3]


def test_without_refresh_every_pass_probes_every_task():
    rolling = RollingProbe(3, ProbeConfig())
    calls: list[list[int]] = []
    run = _fake_run(calls, [0])
    for trained in ([], [1], [2]):
        rolling.update(run, trained)
    assert calls == [[0, 1, 2]] * 3
    with pytest.raises(ValueError, match="refresh must be >= 0"):
        ProbeConfig(refresh=-1)


@pytest.mark.parametrize("observation", ["task-features", "histogram"])
def test_env_observations_match_full_probes_where_fresh_and_earlier_ones_where_kept(
    tiny_benchmark, observation
):
    full_config = tiny_benchmark.trainer_config.probe
    partial_config = ProbeConfig(bins=full_config.bins, pool_size=full_config.pool_size, refresh=1)
    # seed 002's reward, so that each reward is the sum of the latest losses alone
    settings = {"observation": observation, "reward": "loss"}
    full = MTLSchedulingEnv(tiny_benchmark, **settings)
    partial = MTLSchedulingEnv(tiny_benchmark, probe=partial_config, **settings)
    full_obs, _ = full.reset(seed=5)
    partial_obs, info = partial.reset(seed=5)
    assert np.array_equal(full_obs, partial_obs) and info["probe_age"].tolist() == [0] * K
    history = [task_histograms(full, full_obs)]
    ages_seen = set()
    for action in [1, 1, 3, 0, 2, 2, 1]:
        full_obs, _, *_, full_info = full.step(action)
        partial_obs, partial_reward, *_, partial_info = partial.step(action)
        history.append(task_histograms(full, full_obs))
        age = partial_info["probe_age"]
        assert age[action] == 0 and (age == 0).sum() == 2  # the trained task and one other
        ages_seen.update(age.tolist())
        # a task probed `age` steps ago shows the full probe of that step
        expected = np.stack([history[-1 - a][k] for k, a in enumerate(age)])
        assert np.array_equal(task_histograms(partial, partial_obs), expected)
        fresh = age == 0
        np.testing.assert_array_equal(
            partial_info["validation_losses"][fresh], full_info["validation_losses"][fresh]
        )
        # the reward sums every task's latest loss, fresh or kept
        assert partial_reward == pytest.approx(-partial_info["validation_losses"].sum())
    assert max(ages_seen) >= 2


class _RecordingScheduler(Scheduler):
    name = "recording"
    requires_probe = True

    def __init__(self, config: ProbeConfig, order: list[int]) -> None:
        super().__init__()
        self._config, self.order, self.observed = config, order, []

    @property
    def probe_config(self) -> ProbeConfig:
        return self._config

    def plan(self, state: TrainState) -> Step:
        self.observed.append(state.probe.histograms.copy())
        return Step.select(self.order[len(self.observed) % len(self.order)])


def test_the_trainer_probes_the_trained_task_and_one_other_per_step(tiny_benchmark, monkeypatch):
    config = ProbeConfig(pool_size=tiny_benchmark.trainer_config.probe.pool_size, refresh=1)
    trainer = tiny_benchmark.with_budget(160).make_trainer(0)
    asked: list[list[int] | None] = []
    real_probe = type(trainer).probe

    def recording_probe(self, probe_config=None, tasks=None):
        asked.append(None if tasks is None else list(tasks))
        return real_probe(self, probe_config, tasks)

    monkeypatch.setattr(type(trainer), "probe", recording_probe)
    scheduler = _RecordingScheduler(config, order=[2, 2, 0, 3])
    trainer.run(scheduler)
    steps = len(scheduler.observed)
    assert asked[0] == [0, 1, 2, 3] and len(asked) >= steps
    # trained before passes 2-4: tasks 2, 0, 3; ages before them [1,1,1,1], [0,1,0,1], [0,0,1,2]
    assert asked[1:4] == [[0, 2], [0, 1], [2, 3]]

"""The privileged experts fly every task to success: they are the demonstrators of imitation learning.

The 98%-of-seeds figure comes from `navigator fly --task TASK --episodes 100`; here a handful of seeds per task pins
that they work at all, for both airframes."""

import gymnasium
import numpy as np
import pytest

import sim_envs  # noqa: F401
from sim_envs.experts import make_expert


def fly(env_id, seed, **kwargs):
    env = gymnasium.make(env_id, **kwargs)
    expert = make_expert(env)
    env.reset(seed=seed)
    expert.reset()
    while True:
        action = expert.act()
        assert action.shape == (4,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            env.close()
            return info


@pytest.mark.parametrize("env_id, seeds", [
    ("navigator/FlyToTarget-v0", [0, 1, 2, 3]),
    ("navigator/Hike-v0", [0, 1]),
    ("navigator/Follow-v0", [0]),
])
def test_expert_succeeds_in_summer(env_id, seeds):
    for seed in seeds:
        info = fly(env_id, seed)
        assert info["ending"] == "success", (env_id, seed, info["ending"])


def test_hike_expert_reaches_every_target():
    info = fly("navigator/Hike-v0", 5)
    assert info["success"] and info["target_index"] == info["target_count"] - 1 >= 2


def test_expert_flies_the_small_airframe_too():
    info = fly("navigator/FlyToTarget-v0", 2, airframe="cf2x")
    assert info["ending"] == "success"


def test_hike_expert_searches_for_an_unseen_target_one_fixed_way():
    """A target out of the camera's view is searched for by turning left, whichever side it lies: a policy cannot see
    which way a privileged expert would turn, and imitating both ways averages them into not turning."""
    import math

    from sim_envs.experts import SEARCH_YAW_RATE

    sides = set()
    for seed in range(4):
        env = gymnasium.make("navigator/Hike-v0")
        task, expert = env.unwrapped, make_expert(env)
        env.reset(seed=seed)
        expert.reset()
        half_view = math.radians(task.task_fov_deg) / 2
        while True:
            target, state = task.target_position(), task.vehicle_state
            bearing = math.remainder(math.atan2(target[1] - state.position[1], target[0] - state.position[0])
                                     - state.yaw, math.tau)
            action = expert.act()
            if task.active_target > 0 and abs(bearing) > half_view and task.distance_to_target() > 1.0:
                sides.add(bearing > 0)
                assert action[3] == pytest.approx(SEARCH_YAW_RATE) and np.allclose(action[:2], 0, atol=1e-6), (
                    seed, bearing, action)
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                env.close()
                break
        assert info["ending"] == "success", (seed, info["ending"])
    assert sides == {True, False}  # targets on both sides were searched for, the same way


@pytest.mark.parametrize("turn", [1.0, -1.0])
def test_expert_searches_one_way_for_a_target_a_learner_turned_away_from(turn):
    """A policy flying a DAgger roll-out can lose the target from view anywhere on the way. The expert that labels
    it then turns left, as for a new hike target, whichever way the learner turned; taking over, it finds the target
    and reaches it."""
    import math

    from sim_envs.experts import SEARCH_YAW_RATE

    env = gymnasium.make("navigator/FlyToTarget-v0")
    task, expert = env.unwrapped, make_expert(env)
    env.reset(seed=3)
    expert.reset()
    half_view = math.radians(task.task_fov_deg) / 2

    def bearing() -> float:
        target, state = task.target_position(), task.vehicle_state
        return math.remainder(math.atan2(target[1] - state.position[1], target[0] - state.position[0]) - state.yaw,
                              math.tau)

    for _ in range(30):  # the expert sets off
        env.step(expert.act())
    labelled = 0
    while abs(bearing()) < half_view + 0.3:  # the learner turns away, left or right, until the target is well out
        label = expert.act()
        if abs(bearing()) > half_view:
            labelled += 1
            assert label[3] == pytest.approx(SEARCH_YAW_RATE) and np.allclose(label[:2], 0, atol=1e-6)
        env.step(np.array([0.0, 0.0, 0.0, turn], np.float32))
    assert labelled > 0 and (bearing() < 0) == (turn > 0)  # the target lies on the side away from the learner's turn
    while True:
        _, _, terminated, truncated, info = env.step(expert.act())
        if terminated or truncated:
            break
    env.close()
    assert info["ending"] == "success"

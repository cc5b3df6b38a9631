"""SMOKE tests: every env-type trains 2 updates at tiny sizes and evaluates (they only
check that nothing crashes and the numbers are finite; the other test files check values)."""
import math

import pytest

from config.loader import env_types
from metalearner import MetaLearner


@pytest.mark.parametrize("env_type", env_types())
def test_env_type_trains_two_updates(env_type, tiny_cfg, tmp_path):
    cfg = tiny_cfg(env_type, num_frames=256, vis_interval=2)
    learner = MetaLearner(cfg, str(tmp_path))
    result = learner.train()
    assert learner.iter == 2
    assert all(math.isfinite(r) for r in result["returns"])


@pytest.mark.parametrize("method", sorted(__import__("config.methods", fromlist=["METHODS"]).METHODS))
def test_method_preset_trains_two_updates(method, tiny_cfg, tmp_path):
    """SMOKE: every --method preset trains on GridNavi (TMaze for the memory-style methods)."""
    cfg = tiny_cfg("gridworld_varibad", method=method, num_frames=256)
    learner = MetaLearner(cfg, str(tmp_path))
    result = learner.train()
    assert learner.iter == 2 and all(math.isfinite(r) for r in result["returns"])

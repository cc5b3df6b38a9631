"""SMOKE tests: every env-type of the VariBAD loop and every --method preset trains 2 updates
at tiny sizes, evaluates and plots. They only check that nothing crashes and the numbers are
finite; the other test files check values. Long-horizon envs get a 20-step episode here to
stay fast. Presets of the other trainers (maml, hyperzero) are smoke-tested in their own files."""
import math

import pytest

from config.loader import env_types, resolve
from config.methods import METHODS
from environments import make_env
from metalearner import MetaLearner


def _short_episodes(env_type: str) -> dict:
    kwargs = dict(resolve(env_type).env_kwargs)
    try:
        make_env(resolve(env_type).env_name, 1, max_episode_steps=20, **kwargs)
        kwargs["max_episode_steps"] = 20
    except TypeError:  # the env names its horizon differently; keep it
        pass
    return kwargs


VARIBAD_ENV_TYPES = [e for e in env_types() if resolve(e).trainer == "varibad"]


@pytest.mark.parametrize("env_type", VARIBAD_ENV_TYPES)
def test_env_type_trains_two_updates(env_type, tiny_cfg, tmp_path):
    dreams = {"num_dream_envs": 1, "delay_dream": 0} if resolve(env_type).num_dream_envs else {}  # 4 copies here
    cfg = tiny_cfg(env_type, num_frames=256, eval_interval=2, vis_interval=2, env_kwargs=_short_episodes(env_type),
                   **dreams)
    learner = MetaLearner(cfg, str(tmp_path))
    result = learner.train()
    assert learner.iter == 2
    assert all(math.isfinite(r) for r in result["returns"])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_preset_trains_two_updates(method, tiny_cfg, tmp_path):
    cfg = tiny_cfg("gridworld_varibad", method=method, num_frames=256, eval_interval=2)
    learner = MetaLearner(cfg, str(tmp_path))
    result = learner.train()
    assert learner.iter == 2 and all(math.isfinite(r) for r in result["returns"])

"""One frozen EnvConfig per environment: both envs take the same keywords, expose ``env.config``, and
everything that rebuilds an env (SB3 adapter, evaluation harness, comparison, saved agents) keeps
every field of it."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import recenv
from agents import DQNAgent, DQNConfig, QLearningAgent, QLearningConfig, RandomAgent, SB3DQNAgent, run_sessions
from agents.persistence import saved_env_config
from movielens_fixture import write_recbole
from recenv import Catalog, EnvConfig, UserModelParams
from recenv.encoder import EncoderConfig, NextClickLSTM, save_encoder


def _small_catalog() -> Catalog:
    base = recenv.default_catalog()
    index = np.arange(0, 500, 5)
    return Catalog.from_embeddings(
        base.embeddings[index], [base.texts[i] for i in index], topics=[base.topic_names[base.topics[i]] for i in index],
        quality=base.quality[index], clickbait=base.clickbait[index], model_id=base.model_id, latent_dim=8,
    )


def _encoder_file(folder, params):
    """A small encoder file recorded as trained for ``params`` on the default catalog."""
    path = folder / "encoder.pt"
    if not path.exists():
        torch.manual_seed(0)
        save_encoder(NextClickLSTM(EncoderConfig(384, hidden_size=8, head_size=8)), path, recenv.default_catalog(), params)
    return path


def _configs(tmp_path) -> dict[str, EnvConfig]:
    """Between them, every field set away from its default."""
    return {
        "custom catalog": EnvConfig(
            catalog=_small_catalog(), preset="smooth", params={"regime_shift_prob": 0.05, "satiation": False},
            max_episode_steps=30, warmup_steps=7, warmup_organic_share=0.25, warmup_page_size=13, user_pool_size=40,
            obs_mode="history", history_length=4, device="cpu",
        ),
        "encoder file": EnvConfig(
            preset="abrupt", params=UserModelParams(initial_patience=12.0), obs_mode="encoded",
            encoder=str(_encoder_file(tmp_path, UserModelParams(initial_patience=12.0))), warmup_steps=5, history_length=3, max_episode_steps=25, device="cpu",
        ),
        "slates": EnvConfig(slate_size=3, slate_position_decay=0.8, device="cpu"),
        "slate histories": EnvConfig(slate_size=3, slate_history="shown", obs_mode="history", device="cpu"),
        "real data": EnvConfig(
            preset="ml100k", data_path=str(write_recbole(tmp_path / "ml-100k")), obs_mode="ids", device="cpu",
            params={"regime_shift_prob": 0.1},
        ),
    }


FIELDS = [f.name for f in dataclasses.fields(EnvConfig)]


def test_the_configs_under_test_cover_every_field(tmp_path):
    default = EnvConfig()
    changed = {name for config in _configs(tmp_path).values() for name in FIELDS
               if getattr(config, name) != getattr(default, name)}
    assert changed == set(FIELDS)


@pytest.mark.parametrize("name", ["custom catalog", "encoder file", "real data", "slates"])
def test_envs_take_the_same_keywords_and_expose_them_as_config(tmp_path, name):
    config = _configs(tmp_path)[name]
    scalar = recenv.DriftingUserEnv(**config.settings())
    vector = recenv.DriftingUserVectorEnv(num_envs=2, **config.settings())
    assert scalar.config == config and vector.config == config
    assert gym.make("DriftingUser-v0", config=config).unwrapped.config == config
    assert gym.make_vec("DriftingUser-v0", num_envs=2, config=config).config == config
    assert vector.max_episode_steps == config.max_episode_steps == scalar.config.max_episode_steps
    assert scalar.user_model == config.user_model == vector.user_model


def test_keywords_beside_a_config_override_its_fields(tmp_path):
    config = _configs(tmp_path)["custom catalog"]
    env = recenv.DriftingUserVectorEnv(num_envs=2, config=config, history_length=6)
    assert env.config == config.replace(history_length=6) and env.config.warmup_steps == 7


def test_the_scalar_env_truncates_at_its_horizon():
    env = recenv.DriftingUserEnv(params={"patience": False}, max_episode_steps=12, obs_mode="ids")
    env.reset(seed=0)
    truncated = [env.step(0)[3] for _ in range(12)]
    assert truncated == [False] * 11 + [True]


def test_bad_settings_are_refused_naming_them():
    with pytest.raises(TypeError, match=r"unknown environment setting\(s\) \['num_users'\]; known settings: catalog"):
        recenv.DriftingUserEnv(num_users=3)
    with pytest.raises(ValueError, match="warmup_organic_share = 1.5 is not allowed"):
        EnvConfig(warmup_organic_share=1.5)
    with pytest.raises(ValueError, match="max_episode_steps = 0 is not allowed"):
        EnvConfig(max_episode_steps=0)
    with pytest.raises(TypeError, match="config must be a recenv.EnvConfig"):
        recenv.DriftingUserVectorEnv(num_envs=2, config={"preset": "none"})


def test_catalog_and_data_settings_are_refused_by_the_config_itself(tmp_path):
    # Checked once, when the config is made: no env, simulator or data is needed to hear of them.
    with pytest.raises(TypeError, match="catalog must be a recenv.Catalog or None, got ndarray"):
        EnvConfig(catalog=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="data_path is only used by presets fitted to real data; preset 'mixed'"):
        EnvConfig(data_path=tmp_path)
    with pytest.raises(ValueError, match="preset 'ml100k' brings its own catalog"):
        EnvConfig(preset="ml100k", catalog=recenv.default_catalog())
    assert EnvConfig(catalog=_small_catalog()).resolved_catalog().num_items == 100
    assert EnvConfig().resolved_catalog() is recenv.default_catalog()


@pytest.mark.parametrize("name", ["custom catalog", "slate histories", "real data"])
def test_the_simulator_takes_the_config_and_resolves_it_once(tmp_path, name):
    from recenv.simulator import UserSimulator

    config = _configs(tmp_path)[name]
    simulator = UserSimulator(config, num_users=3)
    assert simulator.config is config and simulator.user_model == config.user_model
    assert simulator.catalog.fingerprint == config.resolved_catalog().fingerprint
    assert simulator.pool_size == (config.user_pool_size or 32) and simulator.slate_size == config.slate_size
    assert simulator.records_shown == (config.slate_history == "shown")
    assert simulator.recent_items.shape == (3, config.history_length)
    assert simulator.warmup.items.shape == (3, config.warmup_steps)
    simulator.seed(0)
    warmup = simulator.reset()
    assert warmup.items.shape == (3, config.warmup_steps) and (warmup.items >= 0).all()
    with pytest.raises(ValueError, match="num_users = 0 is not allowed"):
        UserSimulator(config, num_users=0)


def test_the_overrides_and_the_resolved_user_model_have_distinct_names():
    env = recenv.DriftingUserVectorEnv(num_envs=2, preset="smooth", params={"satiation": False}, obs_mode="ids")
    assert env.config.params == {"satiation": False}  # what was asked for
    assert env.user_model == env.config.user_model == recenv.SYNTHETIC_PRESETS["smooth"].replace(satiation=False)
    assert not hasattr(env, "params")


def test_replacing_the_preset_keeps_overrides_as_overrides():
    smooth = EnvConfig(preset="smooth", params={"regime_shift_prob": 0.05})
    mixed = smooth.replace(preset="mixed")
    assert mixed.user_model == recenv.make_params("mixed", {"regime_shift_prob": 0.05})
    assert mixed.user_model.regime_shifts and not smooth.user_model.regime_shifts


@pytest.mark.parametrize("name", ["custom catalog", "encoder file", "real data"])
def test_run_sessions_evaluates_on_the_config_it_is_given(tmp_path, name):
    config = _configs(tmp_path)[name]
    seen = []

    class Recorder(RandomAgent):
        def bind(self, env):
            seen.append(env.config)

    agent = Recorder(recenv.DriftingUserVectorEnv(num_envs=2, config=config), seed=0)
    records = run_sessions(agent, num_users=3, seed=0, config=agent.env_config, progress=False)
    assert len(records) == 3 and seen == [config]
    assert records.lengths.max() <= config.max_episode_steps


@pytest.mark.parametrize("name", ["custom catalog", "encoder file"])
def test_the_sb3_adapter_learns_and_loads_on_the_same_config(tmp_path, name):
    config = _configs(tmp_path)[name]
    envs = recenv.DriftingUserVectorEnv(num_envs=2, config=config)
    agent = SB3DQNAgent(envs, device="cpu").learn(envs, total_timesteps=40, progress=False)
    assert agent.model.get_env().get_attr("config")[0] == config
    path = agent.save(tmp_path / "sb3.pt")
    loaded = SB3DQNAgent(envs, device="cpu").load(path)
    assert loaded.model.get_env().get_attr("config")[0] == config


@pytest.mark.parametrize("name", ["custom catalog", "encoder file", "real data"])
def test_saved_agents_record_the_config_of_their_env(tmp_path, name):
    config = _configs(tmp_path)[name]
    envs = recenv.DriftingUserVectorEnv(num_envs=2, config=config)
    q_learning = QLearningAgent(envs, QLearningConfig(num_states=4))
    q_learning.fit_states(np.random.default_rng(0).normal(size=(50, envs.single_observation_space.shape[0])))
    dqn = DQNAgent(envs, DQNConfig(head="mlp", hidden_size=8), device="cpu")
    for agent in (q_learning, dqn):
        path = agent.save(tmp_path / f"{type(agent).__name__}.pt")
        assert saved_env_config(path, catalog=config.catalog) == config
    with pytest.raises(ValueError, match="names catalog"):
        saved_env_config(path, catalog=recenv.default_catalog() if config.catalog is not None else _small_catalog())


@pytest.mark.parametrize("name", ["custom catalog", "encoder file"])
def test_the_comparison_builds_every_env_of_a_scenario_from_its_config(tmp_path, name):
    from benchmarks.agent_registry import Budget
    from benchmarks.protocol import RunSettings, compare

    config = _configs(tmp_path)[name]
    seen = {"train": [], "evaluation": []}

    class Recorder(RandomAgent):
        def bind(self, env):
            seen["evaluation"].append(env.config)

    def factory(ctx):
        seen["train"].append(ctx.train_env.config)
        return Recorder(ctx.train_env, seed=ctx.seed)

    budget = Budget(q_learning=0, dqn=0, sb3_dqn=0, custom=0, logged_users=5, eval_users=3, recurrent_dqn=0,
                    long_term_value=0, ppo=0, sb3_ppo=0, topic_q_learning=0)
    result = compare({"Recorder": factory}, {name: config}, seeds=(0,), budget=budget,
                     settings=RunSettings(device="cpu", progress=False))
    # Evaluated twice: as it happens, and with the first regime shift scripted off.
    assert seen == {"train": [config], "evaluation": [config, config]}
    assert result.config["presets"][name] == config.to_record()


def test_the_ablation_scenarios_are_configs_that_differ_from_mixed_by_one_switch():
    from benchmarks.ablation import SCENARIOS

    baseline = SCENARIOS["mixed (all on)"]
    assert baseline == EnvConfig(preset="mixed")
    for name, config in SCENARIOS.items():
        assert isinstance(config, EnvConfig)
        changed = {field for field, value in config.user_model.to_dict().items()
                   if value != baseline.user_model.to_dict()[field]}
        assert len(changed) == (0 if config is baseline else 1), name


def test_every_obs_mode_of_the_config_has_an_observation_builder():
    from recenv.observation import OBSERVATION_BUILDERS

    assert tuple(OBSERVATION_BUILDERS) == recenv.OBS_MODES

"""The information policy is enforced: non-privileged agents get public views, and a plug-in that
reaches for hidden things fails with an error that says what it read (docs/model.md §5)."""

import textwrap
from dataclasses import replace

import numpy as np
import pytest

import recenv
from agents import OracleAgent, RandomAgent, StaticProfileAgent, run_sessions
from benchmarks import protocol
from benchmarks.command_line import main
from benchmarks.agent_registry import REFERENCE_AGENTS, agent_from_import_path, is_privileged
from recenv.offline.logging_policies import make_logs
from recenv.public_view import GROUND_TRUTH_INFO_KEYS, InformationPolicyError, public_view

CONFIG = recenv.EnvConfig(preset="mixed")
TINY = ["--presets", "mixed", "--seeds", "0", "--eval-users", "20", "--logged-users", "60"]

PLUG_INS = textwrap.dedent("""
    import numpy as np

    class ClickbaitAvoider:
        \"\"\"Reads the clickbait flags to avoid them: not allowed without declaring privilege.\"\"\"

        def __init__(self, env):
            self.avoid = np.asarray(env.unwrapped.catalog.clickbait) > 0.5

        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            observation = np.asarray(observation)
            return np.full(len(observation), int(np.flatnonzero(~self.avoid)[0])), state

    class DeclaredClickbaitAvoider(ClickbaitAvoider):
        privileged = True

    class ProbabilityPeeker:
        \"\"\"Builds fine, then reads the true click probabilities of the env it is bound to.\"\"\"

        def __init__(self, env):
            self.env = None

        def bind(self, env):
            self.env = env

        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            return np.asarray(self.env.click_probabilities()).argmax(-1), state
""")


@pytest.fixture
def plug_ins(tmp_path, monkeypatch):
    (tmp_path / "plug_ins.py").write_text(PLUG_INS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "plug_ins"


def test_a_plug_in_that_reads_catalog_clickbait_through_the_comparison_fails_clearly(tmp_path, plug_ins):
    with pytest.raises(InformationPolicyError, match=r"catalog\.clickbait.*privileged = True"):
        main(["compare", *TINY, "--agents", "Random", "--agent", f"{plug_ins}:ClickbaitAvoider",
                      "--reference", "Random", "--out", str(tmp_path / "out")])


def test_a_plug_in_that_declares_privilege_runs_and_is_marked(tmp_path, plug_ins):
    main(["compare", *TINY, "--agents", "Random", "--agent", f"{plug_ins}:DeclaredClickbaitAvoider",
                  "--reference", "Random", "--out", str(tmp_path / "out")])
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| DeclaredClickbaitAvoider † |" in table and "| Random |" in table


def test_a_plug_in_that_reads_click_probabilities_at_evaluation_fails(plug_ins):
    factory = agent_from_import_path(f"{plug_ins}:ProbabilityPeeker")
    assert not is_privileged(factory)
    agent = __import__(plug_ins).ProbabilityPeeker(None)
    with pytest.raises(InformationPolicyError, match=r"env\.click_probabilities"):
        run_sessions(agent, 8, seed=0, config=CONFIG, progress=False)


def test_the_reference_factories_declare_privilege_exactly_for_the_oracles():
    declared = {name for name, factory in REFERENCE_AGENTS.items() if is_privileged(factory)}
    assert declared == {"Oracle", "FarsightedOracle"}


def test_public_env_hides_the_ground_truth_and_the_state():
    envs = recenv.DriftingUserVectorEnv(num_envs=4, config=CONFIG)
    view = public_view(envs)
    assert view.unwrapped is view  # no way back to the env through Gymnasium's API
    for name in ("user_state", "click_probabilities", "suppress_regime_shifts", "_simulator"):
        with pytest.raises(InformationPolicyError, match=f"env.{name}"):
            getattr(view, name)
    for name in ("quality", "clickbait"):
        with pytest.raises(InformationPolicyError, match=f"catalog.{name}"):
            getattr(view.catalog, name)
    with pytest.raises(InformationPolicyError):
        view.get_wrapper_attr("click_probabilities")
    _, info = view.reset(seed=0)
    assert set(info) == {"warmup_items", "_warmup_items", "warmup_clicks", "_warmup_clicks"}
    *_, info = view.step(np.zeros(4, dtype=np.int64))
    assert not set(info) & {*GROUND_TRUTH_INFO_KEYS, *(f"_{k}" for k in GROUND_TRUTH_INFO_KEYS)}
    assert "topic" in info  # the topic of the shown item is public
    # What a recommender knows is still there.
    assert view.catalog.embeddings.shape == (500, 384) and view.catalog.fingerprint == envs.catalog.fingerprint
    assert view.warmup_history()[0].shape == (4, CONFIG.warmup_steps)
    assert view.recent_items().shape == (4, CONFIG.history_length)


def test_getattr_with_a_default_does_not_swallow_the_refusal():
    view = public_view(recenv.default_catalog())
    with pytest.raises(InformationPolicyError):
        getattr(view, "clickbait", None)


def test_public_scalar_env_hides_info_and_the_state():
    env = public_view(recenv.DriftingUserEnv(config=CONFIG))
    env.reset(seed=0)
    info = env.step(0)[-1]
    assert set(info) == {"topic"}
    with pytest.raises(InformationPolicyError):
        env.user_state()


def test_public_log_hides_the_true_click_probabilities():
    log = public_view(make_logs(CONFIG, 20, seed=0, progress=False))
    assert len(log.item) == len(log) and log.num_users == 20
    with pytest.raises(InformationPolicyError, match="log.click_probability"):
        _ = log.click_probability
    with pytest.raises(InformationPolicyError, match="log sessions.click_probability"):
        _ = log.sessions().click_probability
    assert log.sessions().items.shape[0] == 20


def test_reference_agents_work_on_public_views_and_the_oracle_needs_the_env():
    view = public_view(recenv.DriftingUserVectorEnv(num_envs=4, config=CONFIG))
    for agent in (RandomAgent(view, seed=0), StaticProfileAgent(view)):
        assert run_sessions(agent, 16, seed=3, config=CONFIG, progress=False).returns.shape == (16,)
    oracle = OracleAgent(view)
    with pytest.raises(InformationPolicyError):
        oracle.predict(np.zeros((4, *view.single_observation_space.shape), dtype=np.float32))


def test_the_comparison_hands_non_privileged_factories_public_views(tmp_path):
    seen = {}

    def spy(ctx):
        seen["env"], seen["log"] = ctx.train_env, ctx.train_log
        return RandomAgent(ctx.train_env, seed=0)

    budget = replace(protocol.QUICK, logged_users=30, eval_users=10)
    protocol.compare({"Spy": spy, "StaticProfile": REFERENCE_AGENTS["StaticProfile"]}, ["none"], seeds=[0],
                     budget=budget, settings=protocol.RunSettings(progress=False), out=tmp_path)
    with pytest.raises(InformationPolicyError):
        _ = seen["env"].catalog.quality
    with pytest.raises(InformationPolicyError):
        _ = seen["log"].click_probability


@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_public_views_refuse_to_render_what_only_people_may_see(mode):
    # The pictures show the true interest, pictures and texts the patience: hidden state.
    scalar = recenv.DriftingUserEnv(config=CONFIG, render_mode=mode)
    vector = recenv.DriftingUserVectorEnv(num_envs=2, config=CONFIG, render_mode=mode)
    for env in (scalar, vector):
        env.reset(seed=0)
        assert env.render() is not None  # the env itself renders, for people
        view = public_view(env)
        assert view.render_mode is None
        with pytest.raises(InformationPolicyError, match="render"):
            view.render()

"""Pictures of a session: ``render_mode="rgb_array"`` and ``"human"``, the clients that rely on them
(SB3's ``make_vec_env``, Gymnasium's ``RecordVideo``), and matplotlib staying unloaded without them.

Whatever imports pyplot runs in a subprocess on the Agg backend, so that no window opens and no
backend choice leaks into other tests."""

import itertools
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.passive_env_checker import env_render_passive_checker

import recenv
from recenv.rendering import SessionRecorder, SessionRenderer, tile_frames

ROOT = Path(__file__).resolve().parent.parent
CLICKED = np.array([232, 89, 12], dtype=np.uint8)  # the strip's colour of a clicked cell
BELOW_THE_LEGEND = 100  # pixel rows of a 480-row frame: the title and legend are above


# Checks that need a fresh interpreter (matplotlib not yet loaded, a window backend patched): they run
# in one subprocess, in this order, each in its own namespace; a fresh Python costs seconds of imports.
# Each needs only what it makes itself (its own env, hence its own warn-once screen): the order puts the
# one that needs matplotlib unloaded first and the one that patches recenv.rendering last.
FRESH_PROCESS_CHECKS = ("MATPLOTLIB_ONLY_FOR_A_PICTURE", "HEADLESS_HUMAN_MODE", "HEADLESS_VECTOR_HUMAN_MODE",
                        "HUMAN_MODE_WINDOW")

_FRESH_PROCESS_DRIVER = """
import json, sys, traceback
outcomes = {}
for name, code in json.loads(sys.stdin.read()):
    try:
        exec(compile(code, name, "exec"), {"__name__": "__main__"})
        outcomes[name] = "ok"
    except BaseException:
        outcomes[name] = traceback.format_exc()
print("OUTCOMES " + json.dumps(outcomes))
"""


@pytest.fixture(scope="module")
def fresh_process() -> dict[str, str]:
    """Each of ``FRESH_PROCESS_CHECKS``: ``"ok"``, or its traceback."""
    import json

    checks = [(name, globals()[name]) for name in FRESH_PROCESS_CHECKS]
    environment = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS_DRIVER], cwd=ROOT, env=environment, input=json.dumps(checks),
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("OUTCOMES ")]
    outcomes = json.loads(line[len("OUTCOMES "):])
    assert sorted(outcomes) == sorted(FRESH_PROCESS_CHECKS), outcomes
    return outcomes


def _has_colour(frame: np.ndarray, colour: np.ndarray) -> bool:
    return bool((frame == colour).all(-1).any())


def test_rgb_array_frames_keep_their_shape_and_follow_the_session():
    env = gym.make("DriftingUser-v0", render_mode="rgb_array", obs_mode="ids")
    env.reset(seed=3)
    first = env.render()
    assert first.shape == (480, 640, 3) and first.dtype == np.uint8
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 50  # a picture, not a blank
    assert not _has_colour(first[BELOW_THE_LEGEND:], CLICKED)  # nothing shown yet

    frames, clicks = [first], 0.0
    for action in range(12):
        _, reward, terminated, truncated, _ = env.step(action)
        clicks += reward
        frames.append(env.render())
        if terminated or truncated:
            break
    assert {frame.shape for frame in frames} == {(480, 640, 3)} and {frame.dtype for frame in frames} == {np.dtype(np.uint8)}
    assert all(not np.array_equal(before, after) for before, after in itertools.pairwise(frames))
    assert _has_colour(frames[-1][BELOW_THE_LEGEND:], CLICKED) == (clicks > 0)
    env_render_passive_checker(env.unwrapped)  # Gymnasium's checks of an rgb_array frame
    env.close()
    assert env.render().shape == (480, 640, 3)  # closing frees the figure; drawing makes a new one


def test_the_recording_is_what_the_steps_returned_and_only_made_for_pictures():
    env = gym.make("DriftingUser-v0", render_mode="rgb_array", obs_mode="ids").unwrapped
    env.reset(seed=1)
    start = env.user_state()["interest"]
    topics, clicks, patience, shifts = [], [], [], []
    for step in range(30):
        _, reward, terminated, _, info = env.step(step)
        topics.append(info["topic"]), clicks.append(reward), patience.append(info["patience"])
        shifts.append(info["regime_shift"])
        if terminated:
            break
    session = env._session
    assert session.num_steps == len(topics)
    np.testing.assert_array_equal(session.items, np.arange(len(topics)))
    np.testing.assert_array_equal(session.topics, topics)
    np.testing.assert_array_equal(session.clicks, np.array(clicks, dtype=bool))
    np.testing.assert_allclose(session.patience, [env.user_model.initial_patience, *patience], rtol=1e-6)
    np.testing.assert_array_equal(session.regime_shift_steps, np.flatnonzero(shifts))
    np.testing.assert_allclose(session.interests[0], start)
    np.testing.assert_allclose(session.interests[-1], env.user_state()["interest"])
    assert session.terminated == terminated
    env.reset(seed=2)
    assert session.num_steps == 0 and session.num_clicks == 0 and not session.terminated

    for mode in (None, "ansi"):
        assert gym.make("DriftingUser-v0", render_mode=mode, obs_mode="ids").unwrapped._session is None


def test_the_recorder_grows_past_its_first_buffers_and_keeps_everything():
    recorder = SessionRecorder(initial_patience=30, horizon=1000)
    rng = np.random.default_rng(0)
    interests = rng.normal(size=(601, 4)).astype(np.float32)
    recorder.reset(interests[0], 30.0)
    for step in range(600):
        recorder.record_step(step, step % 7, step % 3 == 0, 30.0 - step / 20, interests[step + 1], regime_shift=step == 450)
    assert recorder.num_steps == 600 and recorder.num_clicks == 200
    np.testing.assert_array_equal(recorder.items, np.arange(600))
    np.testing.assert_array_equal(recorder.topics, np.arange(600) % 7)
    np.testing.assert_allclose(recorder.interests, interests)
    np.testing.assert_allclose(recorder.patience[1:], 30.0 - np.arange(600) / 20, rtol=1e-6)
    np.testing.assert_array_equal(recorder.regime_shift_steps, [450])
    with pytest.raises(RuntimeError, match="before reset"):
        SessionRecorder(30, 10).record_step(0, 0, True, 29.0)


def test_a_long_session_scrolls_and_frames_keep_their_size():
    catalog = recenv.default_catalog()
    renderer = SessionRenderer(catalog, width=480, height=360, max_columns=50)
    recorder = SessionRecorder(initial_patience=30, horizon=500)
    assert renderer.draw(recorder).shape == (360, 480, 3)  # before any session: a blank picture, same size
    recorder.reset(catalog.topic_centroids[0], 30.0)
    for step in range(120):
        recorder.record_step(step, int(catalog.topics[step]), True, 60.0 + step, catalog.latents[step])
    frame = renderer.draw(recorder)
    assert frame.shape == (360, 480, 3) and _has_colour(frame[BELOW_THE_LEGEND:], CLICKED)


def test_tile_frames_puts_users_side_by_side_row_by_row():
    frames = [np.full((4, 6, 3), value, dtype=np.uint8) for value in (10, 20, 30)]
    grid = tile_frames(frames, gap=2)
    assert grid.shape == (2 * 4 + 2, 2 * 6 + 2, 3) and grid.dtype == np.uint8
    assert (grid[:4, :6] == 10).all() and (grid[:4, 8:] == 20).all() and (grid[6:, :6] == 30).all()
    assert (grid[6:, 8:] == 255).all() and (grid[4:6] == 255).all()  # the empty cell and the gap are white
    assert tile_frames(frames, columns=3, gap=0).shape == (4, 18, 3)
    with pytest.raises(ValueError, match="same"):
        tile_frames([frames[0], np.zeros((5, 6, 3), np.uint8)])


def test_an_env_that_rendered_pickles_and_draws_the_same_picture():
    env = gym.make("DriftingUser-v0", render_mode="rgb_array", obs_mode="ids").unwrapped
    env.reset(seed=4)
    for action in range(5):
        env.step(action)
    frame = env.render()
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(clone.render(), frame)
    clone.step(5), env.step(5)
    np.testing.assert_array_equal(clone.render(), env.render())


def test_sb3_make_vec_env_works_unmodified():
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("DriftingUser-v0", n_envs=4, seed=0)  # SB3 asks for render_mode="rgb_array"
    assert venv.render_mode == "rgb_array"
    observations = venv.reset()
    assert observations.shape == (4, *venv.observation_space.shape)
    for _ in range(3):
        observations, rewards, _, _ = venv.step(np.array([venv.action_space.sample() for _ in range(4)]))
    assert rewards.shape == (4,) and np.isfinite(observations).all()
    grid = venv.render()  # SB3 tiles the four users' pictures
    assert grid.shape == (2 * 480, 2 * 640, 3) and grid.dtype == np.uint8
    venv.close()


def test_record_video_writes_an_episode(tmp_path):
    from gymnasium.wrappers import RecordVideo
    from moviepy import VideoFileClip

    env = gym.make("DriftingUser-v0", render_mode="rgb_array", obs_mode="ids", max_episode_steps=10)
    folder = tmp_path / "videos"
    env = RecordVideo(env, str(folder), episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    env.close()  # writes the video
    videos = list(folder.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    with VideoFileClip(str(videos[0])) as clip:
        assert tuple(clip.size) == (640, 480)
        assert clip.n_frames == steps + 1  # the reset frame and one per step


HEADLESS_HUMAN_MODE = """
import warnings
import gymnasium as gym, matplotlib, matplotlib.pyplot as plt
import recenv
from recenv.rendering import NoWindowWarning

assert matplotlib.get_backend().lower() == "agg"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    env = gym.make("DriftingUser-v0", render_mode="human", obs_mode="ids")
    env.reset(seed=0)
    for action in range(5):
        env.step(action)
    assert env.render() is None
    env.close()
kinds = [w.category.__name__ for w in caught]
assert kinds == ["NoWindowWarning"], [str(w.message) for w in caught]
assert "cannot open a window" in str(caught[0].message)
assert plt.get_fignums() == []
"""


def test_human_mode_on_a_headless_backend_warns_once_and_keeps_running(fresh_process):
    assert fresh_process['HEADLESS_HUMAN_MODE'] == "ok", fresh_process['HEADLESS_HUMAN_MODE']


HUMAN_MODE_WINDOW = """
import warnings
import gymnasium as gym, matplotlib.pyplot as plt, numpy as np
import recenv, recenv.rendering as rendering

rendering._window_backend = lambda: "agg"
warnings.filterwarnings("ignore", message=".*non-interactive.*")
env = gym.make("DriftingUser-v0", render_mode="human", obs_mode="ids").unwrapped
env.metadata = {**env.metadata, "render_fps": 1000}
env.reset(seed=0)
(number,) = plt.get_fignums()
shown = [np.array(plt.figure(number).axes[0].images[0].get_array())]
for action in range(3):
    env.step(action)
    shown.append(np.array(plt.figure(number).axes[0].images[0].get_array()))
assert all(frame.shape == (480, 640, 3) for frame in shown)
assert not np.array_equal(shown[0], shown[-1])
np.testing.assert_array_equal(shown[-1], env._picture())  # the window shows the picture of now
env.close()
assert plt.get_fignums() == []
"""


def test_human_mode_shows_each_frame_in_its_window(fresh_process):
    # Where a window can be shown: the Agg backend stands in for a GUI one.
    assert fresh_process['HUMAN_MODE_WINDOW'] == "ok", fresh_process['HUMAN_MODE_WINDOW']


MATPLOTLIB_ONLY_FOR_A_PICTURE = """
import sys
import gymnasium as gym
import recenv

def loaded():
    return any(name == "matplotlib" or name.startswith("matplotlib.") for name in sys.modules)

assert not loaded()
for mode in (None, "ansi", "rgb_array"):
    env = gym.make("DriftingUser-v0", render_mode=mode, obs_mode="ids")
    env.reset(seed=0)
    env.step(0)
    if mode == "ansi":
        env.render()
    assert not loaded(), mode
env.render()  # the first picture
assert loaded()
"""


def test_matplotlib_is_imported_only_for_a_picture(fresh_process):
    assert fresh_process['MATPLOTLIB_ONLY_FOR_A_PICTURE'] == "ok", fresh_process['MATPLOTLIB_ONLY_FOR_A_PICTURE']


def test_render_without_a_mode_says_which_modes_exist():
    env = gym.make("DriftingUser-v0", obs_mode="ids")
    env.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert env.render() is None
    assert any("rgb_array" in str(w.message) for w in caught)
    assert recenv.DriftingUserEnv.metadata["render_modes"] == ["ansi", "rgb_array", "human"]


# ---------------------------------------------------------------- the vector env


def test_vector_env_records_its_first_users_as_the_scalar_env_records_its_one():
    scalar = gym.make("DriftingUser-v0", render_mode="rgb_array", obs_mode="ids", max_episode_steps=30)
    vector = gym.make_vec("DriftingUser-v0", num_envs=1, render_mode="rgb_array", obs_mode="ids",
                          max_episode_steps=30)
    scalar.reset(seed=3)
    vector.reset(seed=3)
    for action in range(12):
        scalar.step(action)
        vector.step(np.array([action]))
    one, batch = scalar.unwrapped._session, vector.unwrapped._sessions[0]
    assert one.num_steps == batch.num_steps == 12
    for name in ("items", "topics", "clicks", "patience", "interests"):
        np.testing.assert_allclose(getattr(batch, name), getattr(one, name), err_msg=name)


def test_vector_env_renders_one_lazily_drawn_picture_per_user_and_follows_autoresets():
    envs = gym.make_vec("DriftingUser-v0", num_envs=8, render_mode="rgb_array", obs_mode="ids", max_episode_steps=20)
    envs.reset(seed=0)
    steps, resetting = np.zeros(8, dtype=int), np.zeros(8, dtype=bool)
    for _ in range(25):  # past the horizon: every user has been reset at least once
        _, _, terminated, truncated, _ = envs.step(np.arange(8) * 7)
        steps = np.where(resetting, 0, steps + 1)  # a step after the session's end is the autoreset
        resetting = terminated | truncated
    frames = envs.render()
    assert len(frames) == 8 and envs.render_users == 4
    assert all(frame.shape == (480, 640, 3) and frame.dtype == np.uint8 for frame in frames)  # iterates users 0-3
    assert not np.array_equal(frames[0], frames[1])
    with pytest.raises(IndexError, match="render_users=4"):
        frames[5]
    recorded = [session.num_steps for session in envs.unwrapped._sessions]
    assert recorded == steps[:4].tolist() and max(recorded) < 20  # the sessions since the autoreset


def test_vector_env_ansi_and_no_recording_without_pictures():
    envs = gym.make_vec("DriftingUser-v0", num_envs=3, render_mode="ansi", obs_mode="ids")
    envs.reset(seed=0)
    envs.step(np.array([1, 2, 3]))
    texts = envs.render()
    assert len(texts) == 3 and texts[2].startswith("DriftingUser 2  step 1")
    assert "] " + envs.unwrapped.catalog.titles[3] in texts[2]
    assert envs.unwrapped._sessions is None
    with pytest.raises(ValueError, match="unknown render_mode 'video'"):
        gym.make_vec("DriftingUser-v0", num_envs=2, render_mode="video")
    with pytest.raises(ValueError, match="render_users = 3"):
        gym.make_vec("DriftingUser-v0", num_envs=2, render_mode="rgb_array", render_users=3)


def test_gymnasium_vector_record_video_records_the_first_user(tmp_path):
    from gymnasium.wrappers.vector import RecordVideo
    from moviepy import VideoFileClip

    envs = gym.make_vec("DriftingUser-v0", num_envs=16, render_mode="rgb_array", obs_mode="ids", max_episode_steps=8)
    envs = RecordVideo(envs, str(tmp_path), record_first_only=True, episode_trigger=lambda episode: episode == 0,
                       disable_logger=True)
    envs.reset(seed=0)
    for _ in range(10):
        envs.step(np.zeros(16, dtype=np.int64))
    envs.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1
    with VideoFileClip(str(videos[0])) as clip:
        assert tuple(clip.size) == (640, 480) and clip.n_frames >= 8


HEADLESS_VECTOR_HUMAN_MODE = """
import warnings
import gymnasium as gym, numpy as np
import recenv

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    envs = gym.make_vec("DriftingUser-v0", num_envs=3, render_mode="human", obs_mode="ids")
    envs.reset(seed=0)
    for _ in range(3):
        envs.step(np.zeros(3, dtype=np.int64))
    assert envs.render() is None
    envs.close()
assert [w.category.__name__ for w in caught] == ["NoWindowWarning"], [str(w.message) for w in caught]
"""


def test_vector_human_mode_on_a_headless_backend_keeps_running(fresh_process):
    assert fresh_process['HEADLESS_VECTOR_HUMAN_MODE'] == "ok", fresh_process['HEADLESS_VECTOR_HUMAN_MODE']

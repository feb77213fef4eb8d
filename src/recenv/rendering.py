"""Pictures of a session: what was shown, what was clicked, the patience left, and the user's interest.

The environments' ``render_mode="rgb_array"`` and ``"human"`` are built from the pieces here, each
about **one user** and fed with plain numpy/Python values, so that the scalar env and the vector env
(which draws some of its users) share them. Matplotlib is imported only when a picture is first
drawn: recording a session costs a few array writes per step and no import.

- :class:`SessionRecorder` ``(initial_patience, horizon)``: the trajectory of one user's session,
  which the simulator does not keep (it holds only the last few items).

  - ``reset(interest, patience)``: a session starts; ``interest`` is θ ``(k,)`` at its start.
  - ``record_step(item, topic, click, patience, interest=None, regime_shift=False, terminated=False)``:
    after each step, the shown item and its topic, the click, the patience left and θ after the step
    (None: not known; that column of the picture is left unshaded).
  - Read back as arrays: ``items``, ``topics``, ``clicks`` ``(t,)``, ``patience`` ``(t + 1,)`` and
    ``interests`` ``(t + 1, k)`` (index 0: the session start), ``regime_shift_steps``; ``num_steps``
    = t, ``num_clicks``, ``terminated``, ``started``.

- :class:`SessionRenderer` ``(catalog, width=640, height=480, dpi=100, max_columns=200)``:

  - ``draw(session, interest=None, label="DriftingUser") -> (height, width, 3) uint8``: the picture
    of a recorded session; ``interest`` (default: the last recorded θ) sets the bars on the right.
    Every frame has the same size (video encoders need it). One figure is reused across frames and
    across sessions: one renderer can draw several users in turn.
  - ``close()``: frees the figure (the renderer can still draw afterwards; it makes a new one).

- :class:`HumanWindow` ``(title="DriftingUser", fps=4)``: shows frames in a matplotlib window.

  - ``available`` (property): whether matplotlib's backend can show a window; the first time it
    cannot, a :class:`NoWindowWarning` says so (once per window; Python's default warning filter
    then shows it once per process). Check it before drawing to save the drawing on headless runs.
  - ``show(frame)``: shows the frame and runs the window's event loop for ``1 / fps`` s (the
    Gymnasium convention: human rendering runs at ``metadata["render_fps"]``).
  - ``close()``.

- :class:`SessionScreen` ``(catalog, title, fps)``: an env's renderer and window together, each made
  when first needed: ``picture(session, label)``, ``show(make_frame)`` (draws only where a window can
  show it), ``close()``.
- :func:`tile_frames` ``(frames, columns=None, gap=4) -> (H', W', 3) uint8``: several users' frames
  as a grid, row by row (for a vector env).
- :class:`UserViews` ``(num_users, view, shown)``: what a vector env's ``render()`` returns, one
  view per user as Gymnasium's vector convention has it (``len`` is the number of users), each made
  only when it is read: ``frames[0]`` draws user 0 alone; users beyond ``shown`` (the ones recorded)
  raise ``IndexError``.
- :func:`recent_items_text`: the ``"ansi"`` view: step, patience and the last items shown.
- :func:`topic_affinity` ``(catalog, interest) -> (..., T)``: θ·μ_topic, the cosine of the interest
  with each topic's normalised mean item latent (:attr:`recenv.Catalog.topic_centroids`), in [−1, 1].

The picture (``docs/img/render_rgb_array.png``): a topic × step strip of the session (a cell per step in
the row of the shown item's topic: orange if clicked, dark grey if not), shaded by the user's
interest in each topic at that step, with the regime shifts as dashed lines; its time axis grows
with the session (40 steps, then in blocks of 20) up to ``max_columns`` steps, then scrolls. Below
it the patience over the session against the initial patience; on the right the interest now in
each topic (bars, θ·μ_topic, negative values at 0) beside the interest at the session start (ticks). θ is the simulator's hidden state: the
picture is privileged, for people watching, never for agents.

For a batch of users (a vector env), one recorder per drawn user and one renderer::

    recorders = [SessionRecorder(user_model.initial_patience, max_episode_steps) for _ in range(4)]
    renderer = SessionRenderer(catalog)
    # at each user's reset, and after each step (θ, patience of that user, as numpy/Python values):
    recorders[user].reset(interest[user], patience[user])
    recorders[user].record_step(items[user], topics[user], clicks[user], patience[user], interest[user],
                                regime_shift=shifted[user], terminated=terminated[user])
    frame = tile_frames([renderer.draw(r, label=f"user {u}") for u, r in enumerate(recorders)])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from recenv.catalog import Catalog

__all__ = [
    "HumanWindow",
    "NoWindowWarning",
    "SessionRecorder",
    "SessionRenderer",
    "SessionScreen",
    "UserViews",
    "recent_items_text",
    "tile_frames",
    "topic_affinity",
]

_CLICKED = (232, 89, 12)  # orange
_SHOWN = (73, 80, 87)  # dark grey
_FUTURE = (233, 236, 239)  # the steps still to come
_PATIENCE = "#2b8a3e"
_SHIFT = "#c92a2a"
_TEXT = "#212529"
_MUTED = "#6c757d"
_BACKGROUNDS_KEPT = 8  # layouts whose drawn axes and labels a renderer keeps


class NoWindowWarning(UserWarning):
    """``render_mode="human"`` on a matplotlib backend that cannot show a window (a headless machine)."""


def topic_affinity(catalog: Catalog, interest: np.ndarray) -> np.ndarray:
    """θ·μ_topic for interests ``(..., k)``: ``(..., T)`` float32 in [−1, 1] (θ and μ are unit vectors)."""
    return np.asarray(interest, dtype=np.float32) @ catalog.topic_centroids.T


class SessionRecorder:
    """The trajectory of one user's session, recorded step by step for drawing.

    :param initial_patience: b0, what patience is drawn against.
    :param horizon: T, the session's step limit (``max_episode_steps``); the picture's time axis.
    """

    def __init__(self, initial_patience: float, horizon: int):
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon = {horizon!r} is not allowed; expected an int >= 1")
        self.initial_patience = float(initial_patience)
        self.horizon = int(horizon)
        self.started = False
        self.terminated = False
        self.num_steps = 0
        self._capacity = 0
        self._latent_dim = 0
        self._allocate(16, keep=0)

    def reset(self, interest: np.ndarray | None, patience: float) -> None:
        """A new session starts with interest θ ``(k,)`` (None: not known) and ``patience``."""
        latent_dim = 0 if interest is None else int(np.shape(interest)[-1])
        if latent_dim != self._latent_dim:
            self._latent_dim = latent_dim
            self._allocate(min(self.horizon + 1, 256), keep=0)
        self.started, self.terminated, self.num_steps = True, False, 0
        self._patience[0] = patience
        self._set_interest(0, interest)

    def record_step(
        self,
        item: int,
        topic: int,
        click: bool | float,
        patience: float,
        interest: np.ndarray | None = None,
        regime_shift: bool = False,
        terminated: bool = False,
    ) -> None:
        """One step: ``item`` of ``topic`` was shown, clicked or not; ``patience`` and θ ``(k,)``
        after the step; whether the interest shifted in it and whether the user left."""
        if not self.started:
            raise RuntimeError("record_step() before reset(): a session must start first")
        t = self.num_steps
        if t + 1 >= self._capacity:
            self._allocate(2 * self._capacity, keep=t + 1)
        self._items[t], self._topics[t], self._clicks[t], self._shifts[t] = item, topic, bool(click), bool(regime_shift)
        self._patience[t + 1] = patience
        self._set_interest(t + 1, interest)
        self.num_steps = t + 1
        self.terminated = bool(terminated)

    # ---------------------------------------------------------------- read back (views, do not write)

    @property
    def items(self) -> np.ndarray:
        """Item shown at each step, ``(t,)`` int64."""
        return self._items[: self.num_steps]

    @property
    def topics(self) -> np.ndarray:
        """Topic of the item shown at each step, ``(t,)`` int64."""
        return self._topics[: self.num_steps]

    @property
    def clicks(self) -> np.ndarray:
        """Whether the user clicked at each step, ``(t,)`` bool."""
        return self._clicks[: self.num_steps]

    @property
    def patience(self) -> np.ndarray:
        """Patience at the start and after each step, ``(t + 1,)`` float32."""
        return self._patience[: self.num_steps + 1]

    @property
    def interests(self) -> np.ndarray:
        """θ at the start and after each step, ``(t + 1, k)`` float32; NaN rows where not recorded."""
        return self._interests[: self.num_steps + 1]

    @property
    def regime_shift_steps(self) -> np.ndarray:
        """Steps (0-based) in which the interest shifted, ``(s,)`` int64."""
        return np.flatnonzero(self._shifts[: self.num_steps])

    @property
    def num_clicks(self) -> int:
        return int(self.clicks.sum())

    # ---------------------------------------------------------------- helpers

    def _allocate(self, capacity: int, keep: int) -> None:
        """Fresh buffers of ``capacity`` rows holding the first ``keep`` rows of the old ones."""
        capacity = max(capacity, 16)
        for name, dtype, fill in (
            ("_items", np.int64, -1), ("_topics", np.int64, -1), ("_clicks", np.bool_, False),
            ("_shifts", np.bool_, False), ("_patience", np.float32, np.nan), ("_interests", np.float32, np.nan),
        ):
            shape = (capacity, self._latent_dim) if name == "_interests" else (capacity,)
            array = np.full(shape, fill, dtype=dtype)
            if keep:
                array[:keep] = getattr(self, name)[:keep]
            setattr(self, name, array)
        self._capacity = capacity

    def _set_interest(self, row: int, interest: np.ndarray | None) -> None:
        if interest is None or self._latent_dim == 0:
            self._interests[row] = np.nan
        else:
            self._interests[row] = interest


class SessionRenderer:
    """Draws a :class:`SessionRecorder` of a catalog's user as an RGB picture.

    :param catalog: the items (topic names and the topic centroids the interest is read against).
    :param width: picture width in pixels.
    :param height: picture height in pixels.
    :param dpi: matplotlib dots per inch (font sizes are in points: a larger dpi draws larger text).
    :param max_columns: most steps the strip shows; a longer horizon scrolls with the session.
    """

    def __init__(self, catalog: Catalog, width: int = 640, height: int = 480, dpi: int = 100, max_columns: int = 200):
        for name, value in (("width", width), ("height", height), ("dpi", dpi), ("max_columns", max_columns)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} = {value!r} is not allowed; expected an int >= 1")
        self.catalog = catalog
        self.width, self.height, self.dpi, self.max_columns = int(width), int(height), int(dpi), int(max_columns)
        self._canvas: _Canvas | None = None

    def draw(self, session: SessionRecorder, interest: np.ndarray | None = None, label: str = "DriftingUser") -> np.ndarray:
        """The picture of ``session``, ``(height, width, 3)`` uint8.

        :param interest: θ ``(k,)`` for the bars on the right; default the last θ recorded.
        :param label: the title's first word (e.g. ``"user 3"`` in a grid of users).
        """
        if self._canvas is None:
            self._canvas = _Canvas(self.catalog, self.width, self.height, self.dpi)
        return self._canvas.draw(session, interest, label, self.max_columns)

    def close(self) -> None:
        """Frees the figure (a later :meth:`draw` makes a new one)."""
        self._canvas = None

    def __getstate__(self) -> dict[str, Any]:
        # A pickled env carries the settings, not a figure.
        return {**self.__dict__, "_canvas": None}


class _Canvas:
    """One matplotlib figure on an Agg canvas, drawn by blitting: the axes, labels and legend (most of
    the drawing time: text) are drawn once per layout and kept as a background; each frame restores
    it and draws only what changes (the strip, the lines, the bars, the title)."""

    def __init__(self, catalog: Catalog, width: int, height: int, dpi: int):
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        self.catalog = catalog
        self.centroids = catalog.topic_centroids
        topics = catalog.num_topics
        # Interest → colour lookup tables (affinity 0 → 0, 1 → 255): pale for the strip's shading, on
        # which the cells must stand out, fuller for the bars.
        blues = colormaps["Blues"]
        self.shade_lut = (blues(np.clip(np.linspace(0.0, 0.75, 256), 0, 0.62))[:, :3] * 255).astype(np.uint8)
        self.bar_lut = blues(np.linspace(0.3, 0.95, 256))

        self.figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
        self.canvas = FigureCanvasAgg(self.figure)
        self.size = (height, width)
        self.layout: tuple[float, ...] | None = None  # the axis limits set now
        # Backgrounds by layout, a few kept: users of a vector env drawn by one renderer differ in
        # session length, hence in layout.
        self.backgrounds: dict[tuple[float, ...], Any] = {}
        fontsize = 7.0 if topics <= 24 else max(3.0, 7.0 * 24 / topics)
        left, strip_width, bars_width, top, strip_height = 0.175, 0.56, 0.215, 0.8, 0.56
        strip_bottom = top - strip_height
        self.strip = self.figure.add_axes((left, strip_bottom, strip_width, strip_height))
        self.bars = self.figure.add_axes((left + strip_width + 0.03, strip_bottom, bars_width, strip_height), sharey=self.strip)
        self.patience_axes = self.figure.add_axes((left, 0.085, strip_width, 0.13), sharex=self.strip)

        self.image = self.strip.imshow(
            np.zeros((topics, 1, 3), dtype=np.uint8), aspect="auto", interpolation="nearest",
            extent=(0, 1, topics - 0.5, -0.5),
        )
        self.strip.set_yticks(np.arange(topics), [_short(name) for name in catalog.topic_names], fontsize=fontsize)
        self.strip.tick_params(axis="x", labelbottom=False, length=0)
        self.strip.tick_params(axis="y", length=0, colors=_TEXT)
        self.strip.set_ylim(topics - 0.5, -0.5)
        for spine in self.strip.spines.values():
            spine.set_color("#adb5bd")
        self.shifts = LineCollection([], colors=_SHIFT, linestyles=(0, (3, 2)), linewidths=1.1)
        self.strip.add_collection(self.shifts)
        self.strip.legend(
            handles=[
                Patch(color=np.array(_CLICKED) / 255, label="clicked"),
                Patch(color=np.array(_SHOWN) / 255, label="not clicked"),
                Line2D([], [], color=_SHIFT, linestyle=(0, (3, 2)), linewidth=1.1, label="interest shift"),
                Patch(color=blues(0.45), label="interest at the time"),
            ],
            loc="lower left", bbox_to_anchor=(-0.01, 1.0), ncols=4, frameon=False, fontsize=7,
            handlelength=1.2, handletextpad=0.4, columnspacing=1.0, borderaxespad=0.2,
        )

        self.bar_rects = list(self.bars.barh(np.arange(topics), np.zeros(topics), height=0.72, color=self.bar_lut[0]))
        self.start_ticks = self.bars.scatter(
            np.zeros(topics), np.arange(topics), marker="|", s=55, linewidths=1.3, color=_TEXT, zorder=3
        )
        self.bars.set_xlim(0.0, 1.0)
        self.bars.set_xticks([0.0, 0.5, 1.0], ["0", "0.5", "1"], fontsize=6.5)
        self.bars.tick_params(axis="y", left=False, labelleft=False)
        self.bars.tick_params(axis="x", length=2, colors=_MUTED)
        self.bars.set_title("interest now,  | at start", fontsize=7.5, color=_TEXT, pad=4, loc="left")
        self.bars.grid(axis="x", color="#e9ecef", linewidth=0.6)
        self.bars.set_axisbelow(True)
        for spine in ("top", "right"):
            self.bars.spines[spine].set_visible(False)
        self.bars.spines["left"].set_color(_MUTED)
        self.bars.spines["bottom"].set_color(_MUTED)

        axes = self.patience_axes
        (self.patience_line,) = axes.plot([], [], color=_PATIENCE, linewidth=1.6, drawstyle="steps-post")
        self.patience_start = axes.axhline(0.0, color=_MUTED, linewidth=0.8, linestyle="--")
        axes.set_ylabel("patience", fontsize=7, color=_TEXT)
        axes.set_xlabel("session step", fontsize=7, color=_TEXT)
        axes.tick_params(labelsize=6.5, colors=_MUTED, length=2)
        for spine in ("top", "right"):
            axes.spines[spine].set_visible(False)

        self.title = self.figure.text(0.015, 0.975, "", fontsize=11, color=_TEXT, va="top", weight="bold")
        self.subtitle = self.figure.text(0.015, 0.922, "", fontsize=8.5, color=_TEXT, va="top")
        # Drawn per frame, over the background; the strip's frame goes over its picture.
        self.dynamic = [
            self.image, *self.strip.spines.values(), self.shifts, self.patience_line,
            *self.bar_rects, self.start_ticks, self.title, self.subtitle,
        ]
        for artist in self.dynamic:
            artist.set_animated(True)

    def draw(self, session: SessionRecorder, interest: np.ndarray | None, label: str, max_columns: int) -> np.ndarray:
        topics, latent_dim = self.catalog.num_topics, self.centroids.shape[1]
        started = session.started
        steps = session.num_steps if started else 0
        # The time axis grows with the session in blocks of 20 steps (at least 40 columns), up to
        # max_columns; after that it scrolls.
        columns = min(max_columns, session.horizon, max(40, -(-steps // 20) * 20))
        first = max(0, steps - columns)
        shown = steps - first

        # The strip: interest shading per (topic, step), then one cell per step.
        picture = np.empty((topics, columns, 3), dtype=np.uint8)
        picture[:] = _FUTURE
        if shown:
            before_step = session.interests[first:steps]  # θ when the item was shown, (shown, k)
            if before_step.shape[1] == latent_dim:
                known = ~np.isnan(before_step).any(1)
                affinity = topic_affinity(self.catalog, before_step[known]).T  # (T, known)
                picture[:, :shown][:, known] = self.shade_lut[(np.clip(affinity, 0.0, 1.0) * 255).astype(np.int64)]
                picture[:, :shown][:, ~known] = 255
            else:
                picture[:, :shown] = 255
            clicks = session.clicks[first:steps]
            picture[session.topics[first:steps], np.arange(shown)] = np.where(clicks[:, None], _CLICKED, _SHOWN)
        self.image.set_data(picture)
        self.image.set_extent((first, first + columns, topics - 0.5, -0.5))
        shift_steps = session.regime_shift_steps if started else np.zeros(0, np.int64)
        shift_steps = shift_steps[shift_steps >= first]
        self.shifts.set_segments([[(s + 1, -0.5), (s + 1, topics - 0.5)] for s in shift_steps])

        # The patience below it; its axis grows in steps of 10 when patience rises above the start.
        initial = session.initial_patience
        patience = session.patience[first:] if started else np.zeros(0, np.float32)
        self.patience_line.set_data(np.arange(first, first + len(patience)), patience)
        highest = max(initial, float(np.nanmax(patience)) if len(patience) else 0.0, 1.0)
        top = initial * 1.15 if highest <= initial * 1.1 else np.ceil(highest * 1.05 / 10) * 10

        # The interest now and at the start.
        if interest is None and started:
            interest = session.interests[-1]
        now = np.zeros(topics, dtype=np.float32)
        if interest is not None and np.shape(interest) == (latent_dim,) and not np.isnan(interest).any():
            now = np.clip(topic_affinity(self.catalog, interest), 0.0, 1.0)
        colours = self.bar_lut[(now * 255).astype(np.int64)]
        for rect, value, colour in zip(self.bar_rects, now, colours):
            rect.set_width(float(value))
            rect.set_color(colour)
        start = session.interests[0] if started else None
        if start is not None and start.shape == (latent_dim,) and not np.isnan(start).any():
            start_affinity = np.clip(topic_affinity(self.catalog, start), 0.0, 1.0)
            self.start_ticks.set_offsets(np.column_stack([start_affinity, np.arange(topics)]))
        else:
            self.start_ticks.set_offsets(np.zeros((0, 2)))

        # The title.
        if not started:
            self.title.set_text(f"{label} — not reset yet")
            self.subtitle.set_text("")
        else:
            clicks = session.num_clicks
            rate = f" ({clicks / steps:.0%} of steps)" if steps else ""
            left = "  ·  the user left" if session.terminated else ""
            self.title.set_text(f"{label} — step {steps} of {session.horizon}")
            self.subtitle.set_text(
                f"{clicks} clicks{rate}  ·  patience {float(session.patience[-1]):.1f} of {initial:g}{left}"
            )

        layout = (first, columns, float(top), initial)
        if layout != self.layout:
            self.strip.set_xlim(first, first + columns)
            self.patience_axes.set_ylim(0.0, top)
            self.patience_axes.set_yticks([0.0, initial], ["0", f"{initial:g}"])
            self.patience_start.set_ydata([initial, initial])
            self.layout = layout
        background = self.backgrounds.get(layout)
        if background is None:
            self.canvas.draw()  # everything but the animated artists
            background = self.backgrounds[layout] = self.canvas.copy_from_bbox(self.figure.bbox)
            if len(self.backgrounds) > _BACKGROUNDS_KEPT:
                del self.backgrounds[next(iter(self.backgrounds))]
        else:
            self.canvas.restore_region(background)
        for artist in self.dynamic:
            self.figure.draw_artist(artist)
        frame = np.array(np.asarray(self.canvas.buffer_rgba())[..., :3])
        if frame.shape[:2] != self.size:
            raise RuntimeError(f"the canvas drew {frame.shape[:2]} pixels, expected {self.size}")
        return frame


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


class HumanWindow:
    """A matplotlib window that shows frames as they come (``render_mode="human"``).

    :param title: the window's title.
    :param fps: frames per second; :meth:`show` runs the window's event loop for ``1 / fps`` s.
    """

    def __init__(self, title: str = "DriftingUser", fps: float = 4):
        if not fps > 0:
            raise ValueError(f"fps = {fps!r} is not allowed; expected a number > 0")
        self.title = title
        self.fps = float(fps)
        self._available: bool | None = None
        self._figure: Any = None
        self._image: Any = None

    @property
    def available(self) -> bool:
        """Whether matplotlib's backend can show a window (imports pyplot; warns the first time it cannot)."""
        if self._available is None:
            backend = _window_backend()
            self._available = backend is not None
            if not self._available:
                import matplotlib

                warnings.warn(
                    f'render_mode="human" shows nothing: matplotlib\'s backend {matplotlib.get_backend()!r} cannot '
                    "open a window (no display?). Set one that can (MPLBACKEND=TkAgg or QtAgg) or use "
                    'render_mode="rgb_array".',
                    NoWindowWarning,
                    stacklevel=3,
                )
        return self._available

    def show(self, frame: np.ndarray) -> None:
        """Show ``frame`` ``(H, W, 3)`` uint8 (nothing if no window can be shown)."""
        if not self.available:
            return
        import matplotlib.pyplot as plt

        if self._figure is None or not plt.fignum_exists(self._figure.number):
            height, width = frame.shape[:2]
            dpi = 100
            # A new number, not the title: two envs must not share (and fight over) one window.
            self._figure = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
            if self._figure.canvas.manager is not None:
                self._figure.canvas.manager.set_window_title(self.title)
            axes = self._figure.add_axes((0, 0, 1, 1))
            axes.set_axis_off()
            self._image = axes.imshow(frame, interpolation="nearest")
            plt.show(block=False)
        else:
            self._image.set_data(frame)
        self._figure.canvas.draw_idle()
        self._figure.canvas.start_event_loop(1.0 / self.fps)

    def close(self) -> None:
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
        self._figure = self._image = None

    def __getstate__(self) -> dict[str, Any]:
        # A window does not travel; the copy opens its own.
        return {**self.__dict__, "_figure": None, "_image": None, "_available": None}


def _window_backend() -> str | None:
    """Matplotlib's backend (resolved, which imports pyplot) if it can show a window, else None."""
    import matplotlib.pyplot as plt

    backend = plt.get_backend()  # resolves an automatic choice
    name = backend.lower()
    if name.startswith("module://"):
        return None if "inline" in name else backend  # third-party GUI backends: trust them
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        from matplotlib.rcsetup import interactive_bk as interactive
    return backend if name in {known.lower() for known in interactive} else None


class SessionScreen:
    """What an env draws with: a :class:`SessionRenderer` and a :class:`HumanWindow`, each made
    when first needed (matplotlib is imported then, not before).

    :param catalog: the env's items. :param title: the window's title. :param fps: the window's rate.
    """

    def __init__(self, catalog: Catalog, title: str, fps: float):
        self.catalog, self.title, self.fps = catalog, title, fps
        self._renderer: SessionRenderer | None = None
        self._window: HumanWindow | None = None

    def picture(self, session: SessionRecorder, label: str = "DriftingUser") -> np.ndarray:
        """The ``(480, 640, 3)`` uint8 picture of ``session``."""
        if self._renderer is None:
            self._renderer = SessionRenderer(self.catalog)
        return self._renderer.draw(session, label=label)

    def show(self, make_frame: Any) -> None:
        """Show ``make_frame()`` in the window; nothing is drawn where no window can show it."""
        if self._window is None:
            self._window = HumanWindow(self.title, fps=self.fps)
        if self._window.available:
            self._window.show(make_frame())

    def close(self) -> None:
        """Close the window and free the figure (a later picture makes them again)."""
        if self._window is not None:
            self._window.close()
            self._window = None
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def recent_items_text(catalog: Catalog, items: Sequence[int], clicks: Sequence[float], step: int, patience: float,
                      label: str = "DriftingUser") -> str:
    """The ``"ansi"`` view of one user: ``label``, the session step and patience, then the last
    items shown (oldest first; ids < 0 are padding), each with its topic and whether it was clicked."""
    titles = catalog.titles or catalog.texts
    lines = [f"{label}  step {int(step)}  patience {float(patience):.1f}"]
    for item, click in zip(items, clicks):
        if item >= 0:
            topic = catalog.topic_names[catalog.topics[item]]
            lines.append(f"  {'CLICK' if click else '     '}  [{topic}] {titles[item]}")
    return "\n".join(lines) + "\n"


class UserViews(Sequence):
    """One view per user (a frame or a text), made when it is read.

    Gymnasium's vector envs return one frame per sub-environment from ``render()``, and its vector
    ``RecordVideo`` reads them as a sequence (``record_first_only=True``: only the first). Drawing
    every user of a large batch each step would cost far more than simulating them, so a vector env
    records only its first ``shown`` users and draws a user's picture only when it is read.

    :param num_users: ``len()``, as the vector convention wants.
    :param view: ``view(user) -> frame or text``.
    :param shown: users ``0 .. shown - 1`` can be viewed; the others raise ``IndexError``.
    """

    def __init__(self, num_users: int, view: Any, shown: int):
        self._num_users, self._view, self._shown = num_users, view, shown
        self._made: dict[int, Any] = {}

    def __len__(self) -> int:
        return self._num_users

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[user] for user in range(*index.indices(self._num_users))]
        user = range(self._num_users)[index]  # negative indices, and IndexError past the end
        if user >= self._shown:
            raise IndexError(
                f"user {user} is not drawn: this env records its first {self._shown} users for pictures "
                f"(render_users={self._shown}); make it with a larger render_users to see more"
            )
        if user not in self._made:
            self._made[user] = self._view(user)
        return self._made[user]

    def __iter__(self) -> Any:
        # Iterating reads the users that can be viewed (a list of all N would draw or fail).
        return (self[user] for user in range(self._shown))


def tile_frames(frames: Sequence[np.ndarray], columns: int | None = None, gap: int = 4) -> np.ndarray:
    """Frames of equal shape ``(H, W, 3)`` as one grid picture, row by row, white between them.

    :param columns: frames per row; default ⌈√n⌉.
    :return: ``(rows·H + (rows−1)·gap, columns·W + (columns−1)·gap, 3)`` uint8; empty cells are white.
    """
    if not frames:
        raise ValueError("tile_frames needs at least one frame")
    shape = frames[0].shape
    if any(frame.shape != shape for frame in frames) or len(shape) != 3:
        raise ValueError(f"frames must all have the same (H, W, C) shape; got {[f.shape for f in frames]}")
    count = len(frames)
    columns = int(np.ceil(np.sqrt(count))) if columns is None else int(columns)
    if columns < 1:
        raise ValueError(f"columns = {columns!r} is not allowed; expected an int >= 1")
    rows = -(-count // columns)
    height, width = shape[:2]
    grid = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, shape[2]), 255, np.uint8)
    for index, frame in enumerate(frames):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        grid[top : top + height, left : left + width] = frame
    return grid

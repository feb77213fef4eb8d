"""The state encoder: an LSTM over ``[item embedding, click]`` histories, trained to predict clicks.

:class:`NextClickLSTM` reads a user's interactions one at a time; its hidden state ``h`` (H values
in (−1, 1)) is the user state that ``obs_mode="encoded"`` observes, and its head scores any
candidate item through the item's text embedding::

    logit(h, e) = <W_u·h, W_e·e> + w_e·e + w_h·h + c,       P(click | history, item) = σ(logit)

so the same network is the supervised next-click baseline. The LSTM reads each interaction
through the same item projection as the head, split by the response, ``[W_e·e·y, W_e·e·(1−y), y]``:
what was clicked and what was ignored enter on separate channels, and the small shared projection
(rather than the raw 384-dim embedding) keeps the input layer from overfitting. It is trained
with binary cross-entropy on logged interactions (:mod:`recenv.offline.encoder_training`).

**Matched encoders.** An encoder is trained on logs of one user model on one catalog, and only
an environment of those *dynamics* observes through it. A weights file records them — the catalog
(fingerprint and text model) and every field of :class:`recenv.UserModelParams` — as a
:func:`dynamics_key`, and :func:`resolve_encoder` finds the encoder of an environment by that key.
Histories that record a whole slate per step (``slate_history="shown"``) are another input
altogether: the key then also names the slates (k, the position effect) and such an encoder is
trained on logs of slates.

1. ``encoder=None``: the weights shipped in ``recenv/assets/encoder_<preset>.pt`` whose key is the
   environment's (one per named preset: ``none``, ``smooth``, ``abrupt``, ``mixed``, ``ml100k``);
   else weights trained for exactly these dynamics with the first-use recipe, cached in
   ``$RECENV_CACHE_DIR/encoders/<dynamics key>-<training key>.pt`` by
   :func:`recenv.offline.prepare_encoder` (command line: ``recenv encoder prepare``); else
   :class:`MissingEncoderWeights`, whose message names that command. This module only reads
   weights, and building an environment never trains.
2. ``encoder=PATH``: that file, refused with :class:`EncoderMismatchError` (saying which fields
   differ) if it was made for other dynamics, another catalog, text model or shape.
3. ``encoder=model``: a :class:`NextClickLSTM` object, checked the same way if it was read from a
   file; one you built or trained yourself in this process carries no record and is used as given.

Weights are stored with ``torch.save`` as plain tensors and metadata and read back with
``torch.load(..., weights_only=True)``.

Prepare the weights of new dynamics, train, evaluate and reproduce the shipped weights from the
command line::

    python -m recenv.offline.encoder_training --help      # or: recenv encoder --help
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recenv.catalog import Catalog
from recenv.config import DEFAULT_SLATE_POSITION_DECAY, EnvConfig
from recenv.embedding import cache_dir
from recenv.params import UserModelParams
from recenv.presets import make_params
from recenv.weights_file import read_weights_file

__all__ = [
    "FIRST_USE_EPOCHS",
    "FIRST_USE_MINUTES",
    "FIRST_USE_SLATE_MINUTES",
    "FIRST_USE_SLATE_USERS",
    "FIRST_USE_USERS",
    "EncoderConfig",
    "EncoderMismatchError",
    "MissingEncoderWeights",
    "NextClickLSTM",
    "PREPARE_COMMAND",
    "cached_encoder_path",
    "dynamics_key",
    "dynamics_record",
    "first_use_training",
    "load_encoder",
    "matched_weights_path",
    "prepare_command",
    "resolve_encoder",
    "save_encoder",
    "shipped_encoder_path",
]

_FILE_FORMAT_VERSION = 2  # 2: records the dynamics (catalog + user model) the weights were trained on

PREPARE_COMMAND = "recenv encoder prepare"
"""The command that trains and caches the encoder of a preset's dynamics as first use does
(``python -m recenv.offline.encoder_training prepare``; in Python :func:`recenv.offline.prepare_encoder`)."""
_GENERAL_COMMAND = f"{PREPARE_COMMAND} --preset PRESET [--params JSON] [--slate-size K --slate-history shown]"


class EncoderMismatchError(ValueError):
    """An encoder weights file does not belong to this catalog / model / shape."""


class MissingEncoderWeights(FileNotFoundError):
    """No weights exist yet for these dynamics; :attr:`path` is where :func:`recenv.offline.prepare_encoder`
    puts them. Building an environment never trains: the message names the command and the function
    that train and cache the weights, and how long that takes.

    :param command: the command line that prepares them (:func:`prepare_command`); None when there is
        none (a catalog given as an object); default: the command's general form.
    """

    def __init__(self, catalog: Catalog, params: UserModelParams, path: Path, history: Mapping[str, Any] | None = None,
                 key: str | None = None, command: str | None = _GENERAL_COMMAND):
        key = key or dynamics_key(catalog, params, history)
        minutes = FIRST_USE_MINUTES if history is None else FIRST_USE_SLATE_MINUTES
        function = "recenv.offline.prepare_encoder(config)"
        how = (f"{function} in Python (a catalog given as an object has no command line)" if command is None
               else f"`{command}` (in Python: {function})")
        super().__init__(
            f"no encoder weights for these dynamics (catalog {catalog.fingerprint}, user model {key}, history "
            f"{_history_text(history)}) at {path}. Building an environment does not train them: train and cache "
            f"them once ({minutes}; longer on a busy machine) with {how}; or pass encoder=PATH"
        )
        self.catalog, self.user_model, self.path, self.history, self.key = catalog, params, path, history, key
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a worker process, it crosses back pickled: rebuilt from its arguments, not its message.
        return type(self), (self.catalog, self.user_model, self.path, self.history, self.key, self.command)


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of a :class:`NextClickLSTM`.

    :param embedding_dim: D, size of the item text embeddings.
    :param hidden_size: H, size of the LSTM state (the encoded observation).
    :param head_size: P, size of the user and item projections of the click head.
    """

    embedding_dim: int
    hidden_size: int = 64
    head_size: int = 64


class NextClickLSTM(nn.Module):
    """LSTM user-state encoder with a click head that scores items by their embeddings.

    :param config: the shape (see :class:`EncoderConfig`).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        d, h, p = config.embedding_dim, config.hidden_size, config.head_size
        self.item_projection = nn.Linear(d, p, bias=False)
        self.lstm = nn.LSTM(input_size=2 * p + 1, hidden_size=h, batch_first=True)
        self.user_projection = nn.Linear(h, p)
        self.item_bias = nn.Linear(d, 1, bias=False)
        self.user_bias = nn.Linear(h, 1)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)``, each ``(B, H)``: the state of a user with no history."""
        zeros = torch.zeros(batch, self.config.hidden_size, device=device)
        return zeros, zeros.clone()

    def encode(
        self, embeddings: Tensor, clicks: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM over interactions.

        :param embeddings: ``(B, L, D)`` embeddings of the shown items, oldest first.
        :param clicks: ``(B, L)`` responses (0/1).
        :param state: ``(h, c)`` to start from, each ``(B, H)``; zeros if None.
        :return: hidden states after each interaction ``(B, L, H)`` and the final ``(h, c)``.
        """
        return self.encode_projected(self.item_projection(embeddings), clicks, state)

    def encode_projected(
        self, items: Tensor, clicks: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """:meth:`encode` from the items' projections ``item_projection(e)`` ``(B, L, P)`` instead of
        their embeddings: a caller that steps many users over one catalog projects the catalog once
        (:meth:`project_items`) and gathers rows, rather than projecting ``(B, D)`` embeddings each step."""
        clicks = clicks.unsqueeze(-1).to(items.dtype)
        inputs = torch.cat([items * clicks, items * (1.0 - clicks), clicks], dim=-1)
        if state is None:
            outputs, (h, c) = self.lstm(inputs)
        else:
            outputs, (h, c) = self.lstm(inputs, (state[0].unsqueeze(0).contiguous(), state[1].unsqueeze(0).contiguous()))
        return outputs, (h[0], c[0])

    def step(self, embedding: Tensor, click: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One interaction per user: ``(B, D)``, ``(B,)`` → the new ``(h, c)``."""
        _, new_state = self.encode(embedding.unsqueeze(1), click.unsqueeze(1), state)
        return new_state

    def project_items(self, embeddings: Tensor) -> Tensor:
        """``item_projection`` of a catalog's embeddings ``(N, D)`` → ``(N, P)``, for :meth:`encode_projected`."""
        return self.item_projection(embeddings)

    def click_logits(self, hidden: Tensor, embeddings: Tensor) -> Tensor:
        """Logit of P(click | history, item).

        :param hidden: ``(..., H)`` user states.
        :param embeddings: ``(..., D)`` item embeddings, one per user state (same leading shape).
        """
        user = self.user_projection(hidden)
        item = self.item_projection(embeddings)
        return (user * item).sum(-1) + self.item_bias(embeddings)[..., 0] + self.user_bias(hidden)[..., 0]

    def click_logits_all(self, hidden: Tensor, item_embeddings: Tensor) -> Tensor:
        """Logits for every (user, item) pair: ``(B, H)`` × ``(N, D)`` → ``(B, N)``."""
        user = self.user_projection(hidden)
        item = self.item_projection(item_embeddings)
        return user @ item.T + self.item_bias(item_embeddings)[:, 0] + self.user_bias(hidden)

    def sequence_logits(self, embeddings: Tensor, clicks: Tensor, previous: Tensor | None = None) -> Tensor:
        """Logit of each interaction's click given the interactions before it: ``(B, L)``.

        :param previous: ``(B, L)`` int64, for each interaction the position of the last one it is
            predicted after (−1: none). Default: the one just before it. For histories of whole
            slates, the last interaction of the screen before: the items of one screen were shown
            together, so none of them may be predicted from another's response (at most one of
            them is chosen: that would leak the label).
        """
        outputs, _ = self.encode(embeddings, clicks)
        h0, _ = self.initial_state(embeddings.shape[0], embeddings.device)
        if previous is None:
            before = torch.cat([h0.unsqueeze(1), outputs[:, :-1]], dim=1)
        else:
            states = torch.cat([h0.unsqueeze(1), outputs], dim=1)  # position p + 1: after interaction p
            before = states.gather(1, (previous + 1).unsqueeze(-1).expand(-1, -1, states.shape[-1]))
        return self.click_logits(before, embeddings)


# ---------------------------------------------------------------- weights files


def dynamics_record(catalog: Catalog, params: UserModelParams, history: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What an encoder is matched to: the catalog (fingerprint, text model), the user model, and,
    for histories that record more than one interaction per step, what they record (``history``:
    :attr:`recenv.EnvConfig.history_record`, e.g. the slates of ``slate_history="shown"``; ``None``,
    the default, adds nothing, so one-interaction-per-step keys are those from before the option)."""
    record = {"catalog_fingerprint": catalog.fingerprint, "model_id": catalog.model_id, "params": params.to_dict()}
    if history is not None:
        record["history"] = dict(history)
    return record


def dynamics_key(catalog: Catalog, params: UserModelParams, history: Mapping[str, Any] | None = None) -> str:
    """A short hash of :func:`dynamics_record`: equal keys, same dynamics (and history format)."""
    text = json.dumps(dynamics_record(catalog, params, history), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_encoder(
    model: NextClickLSTM,
    path: str | os.PathLike[str],
    catalog: Catalog,
    params: UserModelParams,
    training: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    history: Mapping[str, Any] | None = None,
) -> Path:
    """Write weights and the record that ties them to ``catalog`` and ``params`` (atomically).

    :param training: how they were trained (logs, budgets; recorded, and hashed into cache names).
    :param history: the history format they were trained on (see :func:`dynamics_record`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": _FILE_FORMAT_VERSION,
        "config": asdict(model.config),
        "catalog_fingerprint": catalog.fingerprint,
        "model_id": catalog.model_id,
        "dynamics": {**dynamics_record(catalog, params, history), "key": dynamics_key(catalog, params, history)},
        "training": training or {},
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "extra": extra or {},
    }
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def _mismatched_fields(recorded: dict[str, Any], params: UserModelParams) -> list[str]:
    wanted = params.to_dict()
    names = sorted(set(recorded) | set(wanted))
    return [f"{name}: file {recorded.get(name, '(absent)')!r}, env {wanted.get(name, '(absent)')!r}"
            for name in names if recorded.get(name) != wanted.get(name)]


def _history_text(history: Mapping[str, Any] | None) -> str:
    return "one interaction per step" if history is None else json.dumps(dict(history), sort_keys=True)


def load_encoder(
    path: str | os.PathLike[str],
    catalog: Catalog,
    params: UserModelParams | None = None,
    device: torch.device | str = "cpu",
    history: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> NextClickLSTM:
    """Read weights written by :func:`save_encoder` for ``catalog`` (and, given ``params``, for
    exactly that user model and ``history`` format). The model remembers its dynamics key
    (``model.dynamics_key``).

    ``key``: ``dynamics_key(catalog, params, history)`` when the caller has it already.

    :raises EncoderMismatchError: the file was made for another catalog, text model, user model or shape.
    :raises ValueError: the file is unreadable, not an encoder file, or from before encoders were
        matched to their dynamics.
    """
    payload = read_weights_file(path, "encoder")
    if payload.get("format_version") != _FILE_FORMAT_VERSION:
        raise ValueError(
            f"{path} is not a recenv encoder file of format {_FILE_FORMAT_VERSION} (it has {payload.get('format_version')!r}); "
            "files older than matched encoders do not record the dynamics they were trained on: retrain with "
            "`python -m recenv.offline.encoder_training train`"
        )
    if payload["catalog_fingerprint"] != catalog.fingerprint or payload["model_id"] != catalog.model_id:
        raise EncoderMismatchError(
            f"encoder file {path} was trained for another catalog (fingerprint {payload['catalog_fingerprint']}, "
            f"text model {payload['model_id']!r}); this catalog is {catalog.fingerprint} with {catalog.model_id!r}. "
            "Train weights for it with `python -m recenv.offline.encoder_training train`, or leave encoder=None."
        )
    if params is not None and payload["dynamics"]["key"] != (key or dynamics_key(catalog, params, history)):
        differences = _mismatched_fields(payload["dynamics"]["params"], params)
        recorded_history = payload["dynamics"].get("history")
        if recorded_history != (None if history is None else dict(history)):
            differences.append(f"history: file {_history_text(recorded_history)}, env {_history_text(history)}")
        raise EncoderMismatchError(
            f"encoder file {path} was trained on other dynamics than this environment's; it would encode users "
            f"who do not behave like the env's. Differing fields: {'; '.join(differences)}. "
            "Leave encoder=None (the matched encoder: shipped for the presets, trained once and cached otherwise) "
            "or train one for these dynamics."
        )
    config = EncoderConfig(**payload["config"])
    if config.embedding_dim != catalog.embedding_dim:
        raise EncoderMismatchError(
            f"encoder file {path} expects {config.embedding_dim}-dim embeddings; the catalog has {catalog.embedding_dim}"
        )
    model = NextClickLSTM(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise EncoderMismatchError(f"encoder file {path} does not match its declared shape {config}: {error}") from error
    model.eval()
    model.requires_grad_(False)
    model.dynamics_key = payload["dynamics"]["key"]
    return model.to(device)


def shipped_encoder_path(preset: str) -> Path:
    """Where the weights shipped for a named preset live (``recenv/assets/encoder_<preset>.pt``)."""
    with resources.as_file(resources.files("recenv") / "assets" / f"encoder_{preset}.pt") as path:
        return Path(path)


FIRST_USE_USERS = 24_000
"""Sessions logged to train an encoder on first use: the same as for the shipped ones."""
FIRST_USE_EPOCHS = 40
"""At most this many epochs (early stopping) on first use: the same as for the shipped ones."""
FIRST_USE_RECIPE = "make_logs two rounds (exploration, deployment) v1; TrainingConfig defaults v1; seed 0"
"""Names the rest of the first-use recipe; changing the recipe means changing this, so that weights
cached by an older recipe are not taken for new ones.

First use follows the recipe of the shipped encoders, so an ablation scenario's encoder is as good
as a preset's: with a smaller first-use budget (6,000 users, 15 epochs, until issue 10 closed), an
ablation compared encoders as much as dynamics."""


FIRST_USE_SLATE_USERS = 6_000
"""Sessions logged on first use for histories that record whole slates (``slate_history="shown"``):
each of their steps logs k interactions, so a quarter of the users gives about as many steps of
training and more interactions than :data:`FIRST_USE_USERS` one-item sessions."""
FIRST_USE_SLATE_RECIPE = ("make_logs two rounds of slates (exploration, deployment) v1; each screen predicted from the "
                          "screens before it, a conditional logit per screen with learnt position terms; TrainingConfig defaults v1; "
                          "seed 0")
"""The first-use recipe of encoders of slate histories (:data:`FIRST_USE_RECIPE`'s counterpart)."""

FIRST_USE_MINUTES = "about 4 minutes on one CPU thread"
"""How long :func:`recenv.offline.prepare_encoder` takes for an encoder of one-item histories, for
the :class:`MissingEncoderWeights` message (measured on a 2-core machine, one torch thread:
docs/results/encoders.md); longer on a busy machine."""
FIRST_USE_SLATE_MINUTES = "about 9 minutes on one CPU thread for slates of 10"
"""The same for an encoder of whole-slate histories (measured with slates of 10 items:
docs/results/encoders.md)."""


def prepare_command(config: EnvConfig) -> str | None:
    """The :data:`PREPARE_COMMAND` line that trains and caches the encoder ``config``'s dynamics
    need (its preset, user-model overrides, data and slate history), or None for a catalog given
    as an object, which a command line cannot name (then :func:`recenv.offline.prepare_encoder`)."""
    if config.catalog is not None:
        return None
    words = [PREPARE_COMMAND, "--preset", config.preset]
    if config.data_path is not None:
        words += ["--data", shlex.quote(os.fspath(config.data_path))]
    if isinstance(config.params, UserModelParams):  # a full user model: the fields that differ from the preset's
        preset, given = make_params(config.preset).to_dict(), config.params.to_dict()
        overrides = {name: value for name, value in given.items() if preset.get(name) != value}
    else:
        overrides = dict(config.params or {})
    if overrides:
        words += ["--params", shlex.quote(json.dumps(overrides, sort_keys=True))]
    history = config.history_record
    if history is not None:
        words += ["--slate-size", str(history["slate_size"]), "--slate-history", history["slate_history"]]
        if config.slate_position_decay != DEFAULT_SLATE_POSITION_DECAY:
            words += ["--slate-position-decay", repr(float(config.slate_position_decay))]
    return " ".join(words)


def first_use_training(history: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The first-use training setup, as recorded in the weights and hashed into their cache name
    (``history``: the history format, :func:`dynamics_record`; slates have their own recipe)."""
    if history is None:
        return {"users": FIRST_USE_USERS, "max_epochs": FIRST_USE_EPOCHS, "recipe": FIRST_USE_RECIPE}
    return {"users": FIRST_USE_SLATE_USERS, "max_epochs": FIRST_USE_EPOCHS, "recipe": FIRST_USE_SLATE_RECIPE}


def cached_encoder_path(catalog: Catalog, params: UserModelParams, history: Mapping[str, Any] | None = None) -> Path:
    """Where weights trained on first use for these dynamics (with :func:`first_use_training`) are kept."""
    return _cached_path(dynamics_key(catalog, params, history), history)


def _cached_path(key: str, history: Mapping[str, Any] | None) -> Path:
    training_key = hashlib.sha256(json.dumps(first_use_training(history), sort_keys=True).encode()).hexdigest()[:8]
    return cache_dir() / "encoders" / f"{key}-{training_key}.pt"


def matched_weights_path(catalog: Catalog, params: UserModelParams, history: Mapping[str, Any] | None = None
                         ) -> tuple[str, Path]:
    """The dynamics key of ``catalog``, ``params`` and ``history`` and where their weights are: the
    shipped file of that key, else the first-use cache's (:func:`cached_encoder_path`), which may not
    exist yet (:func:`recenv.offline.prepare_encoder` writes it)."""
    key = dynamics_key(catalog, params, history)
    return key, _shipped_encoders().get(key) or _cached_path(key, history)


def _shipped_encoders() -> dict[str, Path]:
    """dynamics key → shipped weights file."""
    with resources.as_file(resources.files("recenv") / "assets") as folder:
        files = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in Path(folder).glob("encoder_*.pt")))
    return _index_of(files)


@lru_cache(maxsize=4)
def _index_of(files: tuple[tuple[str, int], ...]) -> dict[str, Path]:
    # Keyed by modification times too, so a rewritten file is read again.
    index = {}
    for name, _ in files:
        try:
            payload = read_weights_file(name, "encoder")
        except ValueError:
            continue
        key = payload.get("dynamics", {}).get("key")
        if key is not None:
            index[key] = Path(name)
    return index


_LOADED: dict[tuple[str, str, str], NextClickLSTM] = {}


def resolve_encoder(
    catalog: Catalog,
    params: UserModelParams,
    encoder: NextClickLSTM | str | os.PathLike[str] | None,
    device: torch.device,
    history: Mapping[str, Any] | None = None,
    config: EnvConfig | None = None,
) -> NextClickLSTM:
    """The frozen encoder an environment of ``catalog`` and ``params`` observes through (the module
    docstring says how it is found); ``history``: what its histories record, if more than one
    interaction per step (:attr:`recenv.EnvConfig.history_record`); ``config``: the environment's
    config, only to name the exact command that prepares missing weights.

    :raises MissingEncoderWeights: ``encoder=None`` and no weights exist for these dynamics yet.
    :raises EncoderMismatchError: a file or a model read from one was made for other dynamics.

    Loaded encoders are shared by the environments of a process (they are frozen); deep-copy one
    before fine-tuning it.
    """
    if isinstance(encoder, NextClickLSTM):
        key = dynamics_key(catalog, params, history)
        if encoder.config.embedding_dim != catalog.embedding_dim:
            raise EncoderMismatchError(
                f"encoder expects {encoder.config.embedding_dim}-dim embeddings; the catalog has {catalog.embedding_dim}"
            )
        recorded = getattr(encoder, "dynamics_key", None)
        if recorded is not None and recorded != key:
            raise EncoderMismatchError(
                f"this encoder was read from a file trained on other dynamics (key {recorded}) than the environment's "
                f"({key}); leave encoder=None for the matched one"
            )
        return encoder.to(device)
    if encoder is not None:
        key = dynamics_key(catalog, params, history)
        path = Path(encoder)
        if not path.exists():
            raise FileNotFoundError(f"encoder weights file {path} does not exist")
    else:
        key, path = matched_weights_path(catalog, params, history)
        if not path.exists():
            command = _GENERAL_COMMAND if config is None else prepare_command(config)
            raise MissingEncoderWeights(catalog, params, path, history, key, command)
    cache_key = (str(path.resolve()), str(device), key)
    if cache_key not in _LOADED:
        _LOADED[cache_key] = load_encoder(path, catalog, params, device, history, key)
    return _LOADED[cache_key]

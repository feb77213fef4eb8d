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

Weights are stored with ``torch.save`` as plain tensors and metadata and read back with
``torch.load(..., weights_only=True)``; a file made for another catalog, text model or shape is
refused with an error that says which. Default weights for the default catalog ship in
``recenv/assets/``; another catalog's weights are read from ``$RECENV_CACHE_DIR/encoders``, where
building an environment on that catalog trains them on first use (:mod:`recenv.env_base`; this
module only reads weights), or from ``encoder=PATH``.

Train and evaluate from the command line::

    python -m recenv.offline.encoder_training train --help
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recenv.catalog import Catalog
from recenv.embedding import cache_dir
from recenv.weights_file import read_weights_file

__all__ = [
    "DEFAULT_ENCODER_FILE",
    "EncoderConfig",
    "EncoderMismatchError",
    "MissingEncoderWeights",
    "NextClickLSTM",
    "load_encoder",
    "resolve_encoder",
    "save_encoder",
]

DEFAULT_ENCODER_FILE = "encoder_default.pt"
_FILE_FORMAT_VERSION = 1


class EncoderMismatchError(ValueError):
    """An encoder weights file does not belong to this catalog / model / shape."""


class MissingEncoderWeights(FileNotFoundError):
    """No weights exist yet for this catalog; :attr:`path` is where trained ones are expected."""

    def __init__(self, catalog: Catalog, path: Path):
        super().__init__(
            f"no encoder weights for catalog {catalog.fingerprint} at {path}; building an environment on this "
            "catalog trains them once (recenv.offline.encoder_training.train_for_catalog), or pass encoder=PATH"
        )
        self.path = path


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
        items = self.item_projection(embeddings)
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

    def sequence_logits(self, embeddings: Tensor, clicks: Tensor) -> Tensor:
        """Logit of each interaction's click given the interactions before it: ``(B, L)``."""
        outputs, _ = self.encode(embeddings, clicks)
        h0, _ = self.initial_state(embeddings.shape[0], embeddings.device)
        before = torch.cat([h0.unsqueeze(1), outputs[:, :-1]], dim=1)
        return self.click_logits(before, embeddings)


# ---------------------------------------------------------------- weights files


def save_encoder(model: NextClickLSTM, path: str | os.PathLike[str], catalog: Catalog, extra: dict[str, Any] | None = None) -> Path:
    """Write weights and the metadata that ties them to ``catalog`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": _FILE_FORMAT_VERSION,
        "config": asdict(model.config),
        "catalog_fingerprint": catalog.fingerprint,
        "model_id": catalog.model_id,
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "extra": extra or {},
    }
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def load_encoder(path: str | os.PathLike[str], catalog: Catalog, device: torch.device | str = "cpu") -> NextClickLSTM:
    """Read weights written by :func:`save_encoder` for ``catalog``.

    :raises EncoderMismatchError: the file was made for another catalog, text model or shape.
    :raises ValueError: the file is unreadable or not an encoder file.
    """
    payload = read_weights_file(path, "encoder")
    if payload.get("format_version") != _FILE_FORMAT_VERSION:
        raise ValueError(f"{path} is not a recenv encoder file (format version {_FILE_FORMAT_VERSION})")
    if payload["catalog_fingerprint"] != catalog.fingerprint or payload["model_id"] != catalog.model_id:
        raise EncoderMismatchError(
            f"encoder file {path} was trained for another catalog (fingerprint {payload['catalog_fingerprint']}, "
            f"text model {payload['model_id']!r}); this catalog is {catalog.fingerprint} with {catalog.model_id!r}. "
            "Train weights for this catalog with `python -m recenv.offline.encoder_training train` or leave encoder=None."
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
    return model.to(device)


def default_encoder_path() -> Path:
    """The shipped weights for the default catalog."""
    with resources.as_file(resources.files("recenv") / "assets" / DEFAULT_ENCODER_FILE) as path:
        return Path(path)


def cached_encoder_path(catalog: Catalog, config: EncoderConfig) -> Path:
    """Where the weights of ``catalog`` trained on first use are kept."""
    return cache_dir() / "encoders" / f"{catalog.fingerprint}-h{config.hidden_size}-p{config.head_size}.pt"


_LOADED: dict[tuple[str, str], NextClickLSTM] = {}


def resolve_encoder(
    catalog: Catalog,
    encoder: NextClickLSTM | str | os.PathLike[str] | None,
    device: torch.device,
) -> NextClickLSTM:
    """The frozen encoder an environment observes through.

    :param encoder: a model; a weights path; or ``None``: the shipped weights for the default
        catalog, else the cached weights for this catalog.
    :raises MissingEncoderWeights: ``encoder=None`` and no weights exist for this catalog yet.

    Loaded encoders are shared by the environments of a process (they are frozen); deep-copy one
    before fine-tuning it.
    """
    if isinstance(encoder, NextClickLSTM):
        if encoder.config.embedding_dim != catalog.embedding_dim:
            raise EncoderMismatchError(
                f"encoder expects {encoder.config.embedding_dim}-dim embeddings; the catalog has {catalog.embedding_dim}"
            )
        return encoder.to(device)
    if encoder is not None:
        path = Path(encoder)
        if not path.exists():
            raise FileNotFoundError(f"encoder weights file {path} does not exist")
    else:
        path = default_encoder_path()
        if not path.exists() or _fingerprint_of(path) != catalog.fingerprint:
            path = cached_encoder_path(catalog, EncoderConfig(catalog.embedding_dim))
            if not path.exists():
                raise MissingEncoderWeights(catalog, path)
    key = (str(path.resolve()), str(device))
    if key not in _LOADED:
        _LOADED[key] = load_encoder(path, catalog, device)
    return _LOADED[key]


def _fingerprint_of(path: Path) -> str | None:
    return _fingerprint_of_file(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=16)
def _fingerprint_of_file(path: str, modified: int) -> str | None:
    # Keyed by modification time too, so a rewritten file is read again.
    try:
        return read_weights_file(path, "encoder").get("catalog_fingerprint")
    except ValueError:
        return None

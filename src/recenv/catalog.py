"""The item catalog: texts, attributes, language-model embeddings and the simulator latent.

Each item ``i`` has a text, a topic, a quality ``q_i ∈ [0, 1]``, a clickbait score ``c_i ∈ [0, 1]``,
a unit-norm text embedding ``e_i ∈ R^D`` and the latent the user dynamics use,
``z_i = normalize(W·(e_i − ē))``, where the rows of ``W`` (k × D) are the top-k principal directions
of the catalog's embeddings. The PCA keeps the semantic directions this catalog actually varies
along, so that user interests live in a small space (k = 16 by default) in which topics, and the
sensational wording of clickbait, are separated.

``python -m recenv.catalog`` recomputes the shipped embeddings of the default catalog with the
language model (see ``--help``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from recenv.clustering import kmeans
from recenv.default_catalog import default_catalog_items
from recenv.embedding import (
    DEFAULT_MODEL,
    embed_texts,
    load_embeddings,
    resolve_model,
    save_embeddings,
    texts_hash,
)
from recenv.threads import one_blas_thread

__all__ = ["Catalog", "DEFAULT_LATENT_DIM", "DEFAULT_EMBEDDINGS_FILE", "default_catalog"]

DEFAULT_LATENT_DIM = 16
DEFAULT_EMBEDDINGS_FILE = "default_catalog_embeddings.npz"
_DEFAULT_MODEL_ID = f"sentence-transformers/{DEFAULT_MODEL}"


@dataclass(frozen=True, eq=False)
class Catalog:
    """A fixed set of items a recommender can show. Build one with :meth:`default`,
    :meth:`from_texts` or :meth:`from_embeddings`; the constructor validates every field.

    :param texts: item texts, ``N`` non-empty strings.
    :param topics: ``(N,)`` int topic index of each item, into ``topic_names``.
    :param topic_names: name of each topic.
    :param quality: ``(N,)`` q_i ∈ [0, 1]; raises patience when a clicked item is good.
    :param clickbait: ``(N,)`` c_i ∈ [0, 1]; lures clicks and costs patience.
    :param embeddings: ``(N, D)`` unit-norm text embeddings, float32.
    :param model_id: the text model that produced ``embeddings`` (personas are embedded with it).
    :param latent_dim: k, the dimension of the simulator latent ``z`` (1 ≤ k < N, k ≤ D).
    :param titles: optional short titles for display; default: the texts.
    """

    texts: tuple[str, ...]
    topics: np.ndarray
    topic_names: tuple[str, ...]
    quality: np.ndarray
    clickbait: np.ndarray
    embeddings: np.ndarray
    model_id: str
    latent_dim: int = DEFAULT_LATENT_DIM
    titles: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        n = len(self.texts)
        if n == 0:
            raise ValueError("a catalog needs at least one item; got an empty list of texts")
        for name in ("topics", "quality", "clickbait", "embeddings"):
            value = getattr(self, name)
            if len(value) != n:
                raise ValueError(f"catalog has {n} texts but {len(value)} {name}; they must have the same length")
        if self.titles is not None and len(self.titles) != n:
            raise ValueError(f"catalog has {n} texts but {len(self.titles)} titles")
        for name in ("quality", "clickbait"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(value) | (value < 0) | (value > 1))
            if len(bad):
                raise ValueError(f"{name}[{bad[0]}] = {float(value[bad[0]])!r} is outside the allowed range [0, 1]")
        embeddings = np.asarray(self.embeddings)
        if embeddings.ndim != 2 or not np.all(np.isfinite(embeddings)):
            raise ValueError(f"embeddings must be a finite (N, D) array, got shape {embeddings.shape}")
        topics = np.asarray(self.topics)
        if topics.dtype.kind not in "iu" or topics.min() < 0 or topics.max() >= len(self.topic_names):
            raise ValueError(f"topics must be integer indices into topic_names (0..{len(self.topic_names) - 1})")
        k = self.latent_dim
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n - 1, embeddings.shape[1]):
            raise ValueError(
                f"latent_dim = {k!r} is not allowed for a catalog of {n} items with {embeddings.shape[1]}-dim "
                f"embeddings; allowed: an int in [1, {min(n - 1, embeddings.shape[1])}]"
            )
        # Freeze the arrays: a catalog is shared by envs and agents and must not change under them.
        for name, dtype in (("topics", np.int64), ("quality", np.float32), ("clickbait", np.float32), ("embeddings", np.float32)):
            array = np.array(getattr(self, name), dtype=dtype)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "texts", tuple(self.texts))
        object.__setattr__(self, "topic_names", tuple(self.topic_names))
        if self.titles is not None:
            object.__setattr__(self, "titles", tuple(self.titles))

    # ---------------------------------------------------------------- construction

    @classmethod
    def default(cls, latent_dim: int = DEFAULT_LATENT_DIM) -> Catalog:
        """The generated default catalog (500 items, 20 topics), with its shipped embeddings.

        No model is loaded: the embeddings come from ``recenv/assets``, checked against the texts.
        """
        items = default_catalog_items()
        texts = [item.text for item in items]
        names = tuple(dict.fromkeys(item.topic for item in items))
        with resources.as_file(resources.files("recenv") / "assets" / DEFAULT_EMBEDDINGS_FILE) as path:
            if not path.exists():
                raise FileNotFoundError(
                    f"the shipped embeddings of the default catalog are missing ({path}); "
                    "reinstall recenv or rebuild them with `python -m recenv.catalog --rebuild-default`"
                )
            try:
                embeddings = load_embeddings(path, _DEFAULT_MODEL_ID, texts_hash(texts), count=len(texts))
            except ValueError as error:
                raise ValueError(
                    f"{error}. Rebuild the shipped file with `python -m recenv.catalog --rebuild-default`."
                ) from error
        return cls(
            texts=tuple(texts),
            topics=np.array([names.index(item.topic) for item in items]),
            topic_names=names,
            quality=np.array([item.quality for item in items]),
            clickbait=np.array([item.clickbait for item in items]),
            embeddings=embeddings,
            model_id=_DEFAULT_MODEL_ID,
            latent_dim=latent_dim,
            titles=tuple(item.title for item in items),
        )

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        topics: Sequence[str] | Sequence[int] | None = None,
        quality: Sequence[float] | None = None,
        clickbait: Sequence[float] | None = None,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        latent_dim: int = DEFAULT_LATENT_DIM,
        titles: Sequence[str] | None = None,
        device: str = "cpu",
        cache: bool | str | os.PathLike[str] = True,
    ) -> Catalog:
        """A catalog of your own items, embedded by a language model (cached on disk).

        :param texts: one text per item (e.g. title and a sentence of description).
        :param topics: topic label per item (strings or ints). Default: k-means clusters of the
            latents (about √N of them), named ``"cluster-0"``, ``"cluster-1"``, ...
        :param quality: q_i ∈ [0, 1] per item; default 0.5 for all.
        :param clickbait: c_i ∈ [0, 1] per item; default 0 for all.
        :param model: text model (see :func:`recenv.embedding.resolve_model`).
        :param latent_dim: k of the simulator latent.
        :param titles: optional display titles.
        :param device: device of the text model.
        :param cache: embedding cache (see :func:`recenv.embedding.embed_texts`).
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        texts = list(texts)
        if not texts:
            raise ValueError("a catalog needs at least one item; got an empty list of texts")
        _check_lengths(len(texts), topics=topics, quality=quality, clickbait=clickbait, titles=titles)
        embeddings = embed_texts(texts, model=model, device=device, cache=cache)
        _, model_id = resolve_model(model)
        return cls.from_embeddings(
            embeddings, texts, topics=topics, quality=quality, clickbait=clickbait,
            model_id=model_id, latent_dim=latent_dim, titles=titles,
        )

    @classmethod
    def from_embeddings(
        cls,
        embeddings: np.ndarray,
        texts: Sequence[str],
        topics: Sequence[str] | Sequence[int] | None = None,
        quality: Sequence[float] | None = None,
        clickbait: Sequence[float] | None = None,
        model_id: str = _DEFAULT_MODEL_ID,
        latent_dim: int = DEFAULT_LATENT_DIM,
        titles: Sequence[str] | None = None,
    ) -> Catalog:
        """Like :meth:`from_texts` for embeddings you already have (rows are re-normalised)."""
        texts = list(texts)
        n = len(texts)
        if n == 0:
            raise ValueError("a catalog needs at least one item; got an empty list of texts")
        _check_lengths(n, topics=topics, quality=quality, clickbait=clickbait, titles=titles)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != n:
            raise ValueError(f"got {n} texts but embeddings of shape {embeddings.shape}; expected ({n}, D)")
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise ValueError("embeddings must be finite and non-zero")
        embeddings = embeddings / norms
        if topics is None:
            topic_index, names = _cluster_topics(embeddings, latent_dim)
        else:
            labels = [str(label) for label in topics]
            names = tuple(dict.fromkeys(labels))
            lookup = {name: index for index, name in enumerate(names)}
            topic_index = np.array([lookup[label] for label in labels], dtype=np.int64)
        return cls(
            texts=tuple(texts),
            topics=topic_index,
            topic_names=names,
            quality=np.full(n, 0.5) if quality is None else np.asarray(quality, dtype=np.float64),
            clickbait=np.zeros(n) if clickbait is None else np.asarray(clickbait, dtype=np.float64),
            embeddings=embeddings,
            model_id=model_id,
            latent_dim=latent_dim,
            titles=None if titles is None else tuple(titles),
        )

    # ---------------------------------------------------------------- derived quantities

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_items(self) -> int:
        return len(self.texts)

    @property
    def num_topics(self) -> int:
        return len(self.topic_names)

    @property
    def embedding_dim(self) -> int:
        """D, the dimension of the text embeddings."""
        return int(self.embeddings.shape[1])

    @cached_property
    def _pca(self) -> tuple[np.ndarray, np.ndarray]:
        return _principal_directions(self.embeddings, self.latent_dim)

    @property
    def projection_mean(self) -> np.ndarray:
        """ē, ``(D,)``: the mean embedding the PCA is centred on."""
        return self._pca[0]

    @property
    def projection(self) -> np.ndarray:
        """W, ``(k, D)``: the top-k principal directions (rows, orthonormal)."""
        return self._pca[1]

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """``z = normalize(W·(e − ē))`` for embeddings ``(..., D)`` → ``(..., k)`` float32."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[-1] != self.embedding_dim:
            raise ValueError(f"expected embeddings of dimension {self.embedding_dim}, got shape {embeddings.shape}")
        with one_blas_thread():  # the same bits whatever BLAS's thread count (recenv.threads.one_blas_thread)
            centred = (embeddings - self.projection_mean) @ self.projection.T
        norms = np.linalg.norm(centred, axis=-1, keepdims=True)
        return (centred / np.maximum(norms, 1e-8)).astype(np.float32)

    @cached_property
    def latents(self) -> np.ndarray:
        """z, ``(N, k)`` float32, unit-norm rows: the item coordinates of the user dynamics."""
        latents = self.project(self.embeddings)
        latents.setflags(write=False)
        return latents

    @cached_property
    def topic_centroids(self) -> np.ndarray:
        """μ, ``(T, k)``: normalised mean latent of each topic (the population prior's anchors)."""
        sums = np.zeros((self.num_topics, self.latent_dim), dtype=np.float64)
        np.add.at(sums, self.topics, self.latents)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = (sums / np.maximum(norms, 1e-8)).astype(np.float32)
        centroids.setflags(write=False)
        return centroids

    def latent_of_text(self, text: str, device: str = "cpu") -> np.ndarray:
        """Latent ``(k,)`` of a free text (a persona, a shift target), with this catalog's model."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"expected a non-empty text, got {text!r}")
        if self.model_id.startswith("path:"):
            model: str = self.model_id[len("path:"):]
        elif self.model_id == _DEFAULT_MODEL_ID:
            model = DEFAULT_MODEL
        else:
            model = self.model_id
        embedding = embed_texts([text], model=model, device=device, progress=False)
        return self.project(embedding)[0]

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of the texts, attributes, model and latent size: what trained weights depend on."""
        digest = hashlib.sha256()
        digest.update(texts_hash(self.texts).encode())
        digest.update(self.model_id.encode())
        digest.update(str(self.latent_dim).encode())
        for array in (self.topics, self.quality, self.clickbait):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:
        return (
            f"Catalog(num_items={self.num_items}, num_topics={self.num_topics}, "
            f"embedding_dim={self.embedding_dim}, latent_dim={self.latent_dim}, model_id={self.model_id!r})"
        )


@lru_cache(maxsize=4)
def default_catalog(latent_dim: int = DEFAULT_LATENT_DIM) -> Catalog:
    """:meth:`Catalog.default`, built once per process and shared (a catalog is immutable)."""
    return Catalog.default(latent_dim)


def _check_lengths(n: int, **per_item: Sequence | None) -> None:
    for name, value in per_item.items():
        if value is not None and len(value) != n:
            raise ValueError(f"got {n} texts but {len(value)} {name}; they must have the same length")


def _principal_directions(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    data = embeddings.astype(np.float64)
    mean = data.mean(axis=0)
    with one_blas_thread():
        _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
    components = vt[:k]
    # SVD fixes directions only up to sign; pin the sign so every machine gets the same latents.
    pivots = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(k), pivots])
    components = components * signs[:, None]
    return mean.astype(np.float32), components.astype(np.float32)


def _cluster_topics(embeddings: np.ndarray, latent_dim: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Deterministic k-means of PCA-reduced embeddings into about √N topics."""
    n = len(embeddings)
    num_topics = max(1, int(round(np.sqrt(n))))
    if n == 1:
        return np.zeros(1, dtype=np.int64), ("cluster-0",)
    mean, components = _principal_directions(embeddings, max(1, min(latent_dim, n - 1, embeddings.shape[1])))
    with one_blas_thread():
        _, labels = kmeans((embeddings - mean) @ components.T, num_topics, seed=0)
    used = np.unique(labels)
    relabel = {old: new for new, old in enumerate(used)}
    return np.array([relabel[label] for label in labels], dtype=np.int64), tuple(f"cluster-{j}" for j in range(len(used)))


def rebuild_default_embeddings(output: Path | None = None, device: str = "cpu") -> Path:
    """Recompute the default catalog's embeddings with the language model and write the asset file."""
    texts = [item.text for item in default_catalog_items()]
    embeddings = embed_texts(texts, model=DEFAULT_MODEL, device=device, cache=False, progress=True)
    if output is None:
        output = Path(__file__).parent / "assets" / DEFAULT_EMBEDDINGS_FILE
    save_embeddings(Path(output), embeddings, _DEFAULT_MODEL_ID, texts_hash(texts))
    return Path(output)


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m recenv.catalog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild-default", action="store_true", help="recompute the shipped default-catalog embeddings")
    parser.add_argument("--output", type=Path, default=None, help="where to write them (default: the package's assets)")
    parser.add_argument("--device", default="cpu", help="device of the text model")
    args = parser.parse_args(argv)
    if args.rebuild_default:
        path = rebuild_default_embeddings(args.output, device=args.device)
        print(f"wrote {path}")
    else:
        print(Catalog.default())
        parser.print_help()


if __name__ == "__main__":
    _main()

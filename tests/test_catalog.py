"""The catalog, the language-model embeddings and their cache."""

import numpy as np
import pytest

from recenv import Catalog, default_catalog
from recenv.default_catalog import default_catalog_items
from recenv.embedding import ModelLoadError, TextEmbedder, embed_texts


def test_default_catalog_shape_topics_and_clickbait_share():
    catalog = default_catalog()
    assert catalog.num_items == 500 and catalog.num_topics == 20 and catalog.embedding_dim == 384
    assert len(set(catalog.texts)) == 500
    share = float(np.mean(catalog.clickbait > 0.5))
    assert 0.10 <= share <= 0.20
    assert np.all((catalog.quality >= 0) & (catalog.quality <= 1))
    np.testing.assert_allclose(np.linalg.norm(catalog.embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(catalog.latents, axis=1), 1.0, atol=1e-5)
    assert catalog.latents.shape == (500, 16)


def test_default_catalog_is_deterministic():
    assert [item.text for item in default_catalog_items()] == [item.text for item in default_catalog_items()]
    again = Catalog.default()
    np.testing.assert_array_equal(again.latents, default_catalog().latents)
    assert again.fingerprint == default_catalog().fingerprint


def test_text_embedding_separates_topics_and_reveals_clickbait():
    catalog = default_catalog()
    z = catalog.latents
    similarity = z @ z.T
    same_topic = catalog.topics[:, None] == catalog.topics[None, :]
    assert similarity[same_topic].mean() > similarity[~same_topic].mean() + 0.3
    # A nearest-centroid rule on the embeddings alone picks out the sensational wording.
    clickbait = catalog.clickbait > 0.5
    e = catalog.embeddings
    direction = e[clickbait].mean(0) - e[~clickbait].mean(0)
    scores = e @ direction
    threshold = (scores[clickbait].mean() + scores[~clickbait].mean()) / 2
    assert np.mean((scores > threshold) == clickbait) > 0.95


def test_shipped_embeddings_match_the_language_model(tmp_path):
    """Recompute every fifth of the default catalog's embeddings (100 items, 5 of each topic's 25)
    with all-MiniLM-L6-v2 and compare per item: a change of model, tokenizer, pooling or
    normalisation moves every item, so any fifth catches it. The slow test below checks all 500
    (an item whose text changed without its embedding)."""
    catalog = default_catalog()
    recomputed = embed_texts(list(catalog.texts[::5]), cache=tmp_path, progress=False)
    cosine = np.sum(recomputed * catalog.embeddings[::5], axis=1)
    assert len(cosine) == 100 and cosine.min() >= 0.999


@pytest.mark.slow
def test_every_shipped_embedding_matches_the_language_model(tmp_path):
    """Recompute all of the default catalog's embeddings with all-MiniLM-L6-v2 and compare per item."""
    catalog = default_catalog()
    recomputed = embed_texts(list(catalog.texts), cache=tmp_path, progress=False)
    cosine = np.sum(recomputed * catalog.embeddings, axis=1)
    assert cosine.min() >= 0.999


def test_from_texts_embeds_caches_and_clusters(tmp_path):
    texts = [f"A documentary about {animal} in the wild" for animal in ("wolves", "bears", "eagles", "sharks")] + [
        f"A recipe for {dish} at home" for dish in ("pasta", "curry", "bread", "soup")
    ]
    catalog = Catalog.from_texts(texts, latent_dim=3, cache=tmp_path)
    assert catalog.num_items == 8 and catalog.embedding_dim == 384 and catalog.latents.shape == (8, 3)
    assert catalog.topic_names == tuple(f"cluster-{j}" for j in range(catalog.num_topics))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = Catalog.from_texts(texts, latent_dim=3, cache=tmp_path)  # served from the cache
    np.testing.assert_array_equal(again.embeddings, catalog.embeddings)
    labelled = Catalog.from_texts(texts, topics=["nature"] * 4 + ["food"] * 4, quality=[0.9] * 8, latent_dim=3, cache=tmp_path)
    assert labelled.topic_names == ("nature", "food") and labelled.topics.tolist() == [0] * 4 + [1] * 4


def test_corrupt_or_mismatched_cache_file_is_rebuilt_not_used(tmp_path):
    texts = ["first item about chess openings", "second item about sourdough bread"]
    clean = embed_texts(texts, cache=tmp_path, progress=False)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated: corrupt
    with pytest.warns(RuntimeWarning, match="unreadable or incomplete .*recomputing it"):
        again = embed_texts(texts, cache=tmp_path, progress=False)
    np.testing.assert_allclose(again, clean, atol=1e-6)
    # A well-formed file whose data were altered fails its checksum.
    stored = dict(np.load(path))
    stored["embeddings"] = stored["embeddings"] * 0.5
    np.savez(path, **stored)
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        embed_texts(texts, cache=tmp_path, progress=False)
    # A file written for other texts under this name is refused too.
    stored = dict(np.load(path))
    stored["texts_hash"] = np.array("0" * 64)
    np.savez(path, **stored)
    with pytest.warns(RuntimeWarning, match="texts differ"):
        embed_texts(texts, cache=tmp_path, progress=False)


def test_model_that_cannot_be_loaded_offline_is_reported(tmp_path):
    with pytest.raises(ModelLoadError, match="could not load text model 'no-such-org/no-such-model' offline"):
        TextEmbedder("no-such-org/no-such-model").embed(["hello"])
    empty_folder = tmp_path / "model"
    empty_folder.mkdir()
    with pytest.raises(ModelLoadError, match="recenv never downloads models"):
        TextEmbedder(empty_folder).embed(["hello"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"texts": []}, "needs at least one item"),
        ({"texts": ["a", "b"], "quality": [0.5]}, "got 2 texts but 1 quality"),
        ({"texts": ["a", "b"], "topics": ["x"]}, "got 2 texts but 1 topics"),
        ({"texts": ["a", "b", "c"], "quality": [0.5, 1.5, 0.2]}, r"quality\[1\] = 1.5 is outside the allowed range \[0, 1\]"),
        ({"texts": ["a", "b", "c"], "clickbait": [0.0, float("nan"), 0.2]}, r"clickbait\[1\] = nan"),
        ({"texts": ["a", "b", "c"], "latent_dim": 5}, r"latent_dim = 5 is not allowed .* allowed: an int in \[1, 2\]"),
    ],
)
def test_bad_catalog_input_is_refused_clearly(kwargs, message):
    texts = kwargs.pop("texts")
    embeddings = np.random.default_rng(0).normal(size=(len(texts), 8)) if texts else np.zeros((0, 8))
    kwargs.setdefault("latent_dim", 1)
    with pytest.raises(ValueError, match=message):
        Catalog.from_embeddings(embeddings, texts, **kwargs)


def test_from_texts_rejects_empty_and_mismatched_input_before_loading_a_model():
    with pytest.raises(ValueError, match="needs at least one item"):
        Catalog.from_texts([])
    with pytest.raises(ValueError, match="got 2 texts but 3 clickbait"):
        Catalog.from_texts(["a", "b"], clickbait=[0, 0, 0])
    with pytest.raises(TypeError, match="not a single string"):
        Catalog.from_texts("just one string")


_LATENTS_HASH = (
    "import hashlib, numpy as np\n"
    "from recenv.catalog import Catalog\n"
    "catalog = Catalog.default()\n"
    "print(hashlib.sha256(np.ascontiguousarray(catalog.latents).tobytes()).hexdigest())\n"
)


def test_latents_have_the_same_bits_whatever_blas_threads_the_environment_asks_for():
    """The item latents feed every number the simulator makes; numpy's BLAS splits a product across
    as many threads as OMP_NUM_THREADS (or the cores) say, which moves its last bits (Ray's workers set
    OMP_NUM_THREADS=1, and the backends' runs then differed from sequential ones)."""
    import os
    import subprocess
    import sys

    hashes = set()
    for threads in ("1", "4"):
        environment = {key: value for key, value in os.environ.items()
                       if key not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        environment.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", _LATENTS_HASH], env=environment, capture_output=True,
                                text=True, check=True)
        hashes.add(result.stdout.strip())
    assert len(hashes) == 1, hashes

"""k-means, seeded and deterministic: topics of unlabelled catalogs, states of tabular agents."""

from __future__ import annotations

import numpy as np

__all__ = ["assign", "kmeans"]


def assign(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid for each point, ``(n,)``."""
    points = np.asarray(points, dtype=np.float64)
    distances = (points**2).sum(1)[:, None] - 2 * points @ centroids.T + (centroids**2).sum(1)[None, :]
    return distances.argmin(1)


def kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm from a k-means++ start.

    :param points: ``(n, d)``.
    :param k: number of clusters (at most n).
    :param seed: seed of the k-means++ draws (a local generator; nothing global).
    :return: ``(centroids (k, d), labels (n,))``; empty clusters keep their previous centre.
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} clusters is not possible with {n} points; expected 1 <= k <= {n}")
    rng = np.random.Generator(np.random.PCG64(seed))
    centroids = np.empty((k, points.shape[1]))
    centroids[0] = points[rng.integers(n)]
    closest = ((points - centroids[0]) ** 2).sum(1)
    for j in range(1, k):
        total = closest.sum()
        centroids[j] = points[rng.choice(n, p=closest / total)] if total > 0 else points[rng.integers(n)]
        closest = np.minimum(closest, ((points - centroids[j]) ** 2).sum(1))
    labels = assign(points, centroids)
    for _ in range(iterations):
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, points)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        new_labels = assign(points, centroids)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centroids, labels

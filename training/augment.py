"""Stroke-level augmentation: the drawing is distorted as strokes, then normalised and re-rendered exactly
as the daemon renders, so every training image is one the daemon could have produced."""

from __future__ import annotations

import math

import numpy as np


def partial(strokes: list, rng: np.random.Generator, min_fraction: float = 0.4) -> list:
    """The drawing as it stood part-way through: its first k strokes, k drawn uniformly from
    ``ceil(min_fraction * n)`` to ``n - 1`` (a game often asks before the player has finished). A one-stroke
    drawing is returned whole."""
    n = len(strokes)
    if n < 2:
        return strokes
    k = int(rng.integers(max(1, math.ceil(min_fraction * n)), n))
    return strokes[:k]


def augment(strokes: list, rng: np.random.Generator, strength: float = 1.0, p_flip: float = 0.0) -> list:
    """A randomly distorted copy of a simplified drawing, renormalised to 0..255 integer coordinates.

    Applies, in order: stroke dropout (never all strokes), a global affine map (rotation, anisotropic
    scale, shear, a left-right mirror with probability ``p_flip``), a small random shift per stroke,
    per-point jitter.
    """
    n = len(strokes)
    keep = [s for s in strokes if rng.random() >= 0.12 * strength] if n > 1 else list(strokes)
    if not keep:
        keep = [strokes[int(rng.integers(n))]]
    angle = math.radians(rng.normal(0.0, 10.0 * strength))
    sx = math.exp(rng.normal(0.0, 0.15 * strength))
    sy = math.exp(rng.normal(0.0, 0.15 * strength))
    if p_flip > 0 and rng.random() < p_flip:
        sx = -sx
    shear = rng.normal(0.0, 0.15 * strength)
    c, s = math.cos(angle), math.sin(angle)
    m = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    out = []
    for stroke in keep:
        p = np.asarray(stroke[:2], dtype=np.float64)  # 2 x k
        p = m @ p
        p += rng.normal(0.0, 6.0 * strength, size=(2, 1))
        p += rng.normal(0.0, 1.2 * strength, size=p.shape)
        out.append(p)
    allp = np.concatenate(out, axis=1)
    lo = allp.min(axis=1, keepdims=True)
    extent = float((allp.max(axis=1, keepdims=True) - lo).max())
    scale = 255.0 / extent if extent > 0 else 0.0
    return [np.rint((p - lo) * scale).astype(np.int64).tolist() for p in out]

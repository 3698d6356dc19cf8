"""Raw Quick, Draw! strokes -> "simplified" strokes (integer 0..255), per the dataset's documented steps.

1. align to the top-left corner, 2. scale uniformly so the largest coordinate is 255,
3. resample each stroke at 1-unit spacing, 4. Ramer-Douglas-Peucker with epsilon 2.0, then round.
The Swift daemon mirrors this exactly (Sources/DoodlePreprocessing/StrokeNormalizer.swift); keep them in step.
"""

from __future__ import annotations

import math

EPSILON = 2.0
TARGET = 255.0


def _resample(xs: list[float], ys: list[float], spacing: float = 1.0) -> tuple[list[float], list[float]]:
    """Points every `spacing` units of arc length along the polyline, always keeping the last point."""
    if len(xs) < 2:
        return list(xs), list(ys)
    out_x, out_y = [xs[0]], [ys[0]]
    carry = 0.0  # arc length already travelled since the last emitted point
    for i in range(1, len(xs)):
        x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
        dx, dy = x1 - x0, y1 - y0
        seg = math.sqrt(dx * dx + dy * dy)  # not math.hypot: plain IEEE ops, so Swift gets identical bits
        if seg == 0.0:
            continue
        d = spacing - carry
        while d <= seg:
            t = d / seg
            out_x.append(x0 + t * (x1 - x0))
            out_y.append(y0 + t * (y1 - y0))
            d += spacing
        carry = seg - (d - spacing)
    if out_x[-1] != xs[-1] or out_y[-1] != ys[-1]:
        out_x.append(xs[-1])
        out_y.append(ys[-1])
    return out_x, out_y


def _rdp(xs: list[float], ys: list[float], eps: float) -> list[int]:
    """Indices kept by Ramer-Douglas-Peucker (iterative, perpendicular distance to the chord)."""
    n = len(xs)
    if n < 3:
        return list(range(n))
    keep = [False] * n
    keep[0] = keep[n - 1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        ax, ay, bx, by = xs[a], ys[a], xs[b], ys[b]
        dx, dy = bx - ax, by - ay
        norm = math.sqrt(dx * dx + dy * dy)
        best, best_i = -1.0, -1
        for i in range(a + 1, b):
            if norm == 0.0:
                ex, ey = xs[i] - ax, ys[i] - ay
                d = math.sqrt(ex * ex + ey * ey)
            else:
                d = abs(dy * (xs[i] - ax) - dx * (ys[i] - ay)) / norm
            if d > best:
                best, best_i = d, i
        if best > eps:
            keep[best_i] = True
            stack.append((a, best_i))
            stack.append((best_i, b))
    return [i for i in range(n) if keep[i]]


def looks_simplified(strokes: list) -> bool:
    """Google's simplified form: no times, integer coordinates in 0..255, spanning at least 250 units.

    The daemon applies the same rule to decide whether strokes need normalising (StrokeFormat AUTO)."""
    hi = 0
    for s in strokes:
        if len(s) > 2 and len(s[2]) > 0:
            return False
        for v in list(s[0]) + list(s[1]):
            if not float(v).is_integer() or v < 0 or v > 255:
                return False
            hi = max(hi, v)
    return hi >= 250


def normalize(strokes: list) -> list[list[list[int]]]:
    """Raw strokes ``[[xs, ys(, ts)], ...]`` in any range -> simplified ``[[xs, ys], ...]``, ints in 0..255.

    Empty strokes are dropped. A drawing whose points are all equal maps to the origin.
    """
    strokes = [s for s in strokes if len(s[0]) > 0]
    if not strokes:
        return []
    min_x = min(min(s[0]) for s in strokes)
    min_y = min(min(s[1]) for s in strokes)
    max_x = max(max(s[0]) for s in strokes) - min_x
    max_y = max(max(s[1]) for s in strokes) - min_y
    extent = max(max_x, max_y)
    scale = TARGET / extent if extent > 0 else 0.0
    out = []
    for s in strokes:
        xs = [(float(x) - min_x) * scale for x in s[0]]
        ys = [(float(y) - min_y) * scale for y in s[1]]
        rx, ry = _resample(xs, ys)
        kept = _rdp(rx, ry, EPSILON)
        out.append([[int(round(rx[i])) for i in kept], [int(round(ry[i])) for i in kept]])
    return out

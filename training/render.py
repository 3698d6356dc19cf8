"""Exact Quick, Draw! rendering: simplified strokes -> 28x28 uint8 bitmap.

Follows ``shared/reference/quickdraw-format.md`` section 2 (how Google made ``numpy_bitmap``).
The Swift daemon mirrors this function; keep the two in step.
"""

from __future__ import annotations

import cairo
import numpy as np

SIDE = 28
LINE_WIDTH = 16.0
PADDING = 2 * LINE_WIDTH + LINE_WIDTH  # 48 units in 256-space
SCALE = SIDE / (256.0 + PADDING)

Strokes = list  # [[xs, ys], ...] or [[xs, ys, ts], ...]


class Renderer:
    """Reusable cairo surface; render() is not thread-safe, make one per thread."""

    def __init__(self) -> None:
        self.surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, SIDE, SIDE)
        self.ctx = cairo.Context(self.surface)
        self.ctx.set_antialias(cairo.ANTIALIAS_BEST)
        self.ctx.set_line_cap(cairo.LINE_CAP_ROUND)
        self.ctx.set_line_join(cairo.LINE_JOIN_ROUND)
        self.ctx.set_line_width(LINE_WIDTH)
        self.ctx.scale(SCALE, SCALE)
        self.ctx.translate(LINE_WIDTH + LINE_WIDTH / 2, LINE_WIDTH + LINE_WIDTH / 2)

    def render(self, strokes: Strokes) -> np.ndarray:
        """Render strokes in 0..255 space (minimum 0) to a (784,) uint8 array."""
        ctx = self.ctx
        ctx.set_source_rgb(0.0, 0.0, 0.0)
        ctx.paint()
        max_x = max((max(s[0]) for s in strokes if len(s[0])), default=0)
        max_y = max((max(s[1]) for s in strokes if len(s[1])), default=0)
        off_x = (256.0 - max_x) / 2.0
        off_y = (256.0 - max_y) / 2.0
        ctx.set_source_rgb(1.0, 1.0, 1.0)
        for s in strokes:
            xs, ys = s[0], s[1]
            if not len(xs):
                continue
            ctx.move_to(xs[0] + off_x, ys[0] + off_y)
            for x, y in zip(xs, ys):
                ctx.line_to(x + off_x, y + off_y)
            ctx.stroke()
        self.surface.flush()
        data = np.frombuffer(self.surface.get_data(), dtype=np.uint8).reshape(SIDE, self.surface.get_stride())
        # ARGB32 little-endian: bytes are B, G, R, A; all colour channels are equal.
        return data[:, 0 : SIDE * 4 : 4].reshape(-1).copy()


_default: Renderer | None = None


def render(strokes: Strokes) -> np.ndarray:
    """Render with a module-level renderer (single-threaded use)."""
    global _default
    if _default is None:
        _default = Renderer()
    return _default.render(strokes)

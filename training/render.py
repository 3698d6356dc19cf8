"""Exact Quick, Draw! rendering: simplified strokes -> 28x28 uint8 bitmap.

Follows ``shared/reference/quickdraw-format.md`` section 2 (how Google made ``numpy_bitmap``).
Two renderers give the same bytes:

- ``CairoRenderer``: pycairo, the recipe itself (cairo 1.16's image backend);
- ``RasterRenderer``: the daemon's own rasteriser (``Sources/CDoodleRaster/raster.c``, no cairo), compiled on first
  use into ``training/cache/`` with the system C compiler and called through ctypes. About as fast, and needs
  no cairo, so training also runs where pycairo cannot be installed (a GPU machine's image, say).

``Renderer`` is pycairo's where it imports and the rasteriser otherwise; ``DOODLE_RENDERER=cairo|raster``
chooses. ``training/tests/test_render.py`` holds both to Google's bitmaps and to each other.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import numpy as np

try:
    import cairo
except ImportError:  # the rasteriser takes over
    cairo = None

SIDE = 28
LINE_WIDTH = 16.0
PADDING = 2 * LINE_WIDTH + LINE_WIDTH  # 48 units in 256-space
SCALE = SIDE / (256.0 + PADDING)

Strokes = list  # [[xs, ys], ...] or [[xs, ys, ts], ...]


class CairoRenderer:
    """Reusable cairo surface; render() is not thread-safe, make one per thread."""

    def __init__(self) -> None:
        if cairo is None:
            raise RuntimeError("pycairo is not installed (pip install -r training/requirements.txt)")
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


REPO = Path(__file__).resolve().parent.parent
RASTER_SOURCE = REPO / "Sources" / "CDoodleRaster" / "raster.c"
CACHE = REPO / "training" / "cache"


def _raster_library() -> ctypes.CDLL:
    """The rasteriser as a shared library, rebuilt when raster.c is newer than the cached build."""
    lib_path = CACHE / "libdoodleraster.so"
    if not lib_path.exists() or lib_path.stat().st_mtime < RASTER_SOURCE.stat().st_mtime:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = lib_path.with_suffix(f".{os.getpid()}.tmp")
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-std=gnu11", "-I", str(RASTER_SOURCE.parent / "include"),
                        str(RASTER_SOURCE), "-lm", "-o", str(tmp)], check=True)
        tmp.replace(lib_path)  # atomic: concurrent first uses each build, one wins
    lib = ctypes.CDLL(str(lib_path))
    lib.doodle_raster_create.restype = ctypes.c_void_p
    lib.doodle_raster_destroy.argtypes = [ctypes.c_void_p]
    i32 = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
    lib.doodle_raster_render.argtypes = [ctypes.c_void_p, i32, i32, i32, ctypes.c_int,
                                         np.ctypeslib.ndpointer(np.uint8, flags="C_CONTIGUOUS")]
    lib.doodle_raster_render.restype = ctypes.c_int
    return lib


class RasterRenderer:
    """The daemon's rasteriser through ctypes: the same bytes as ``CairoRenderer`` for coordinates in 0..255 (the
    rasteriser clamps others). Not thread-safe, make one per thread."""

    _lib: ctypes.CDLL | None = None

    def __init__(self) -> None:
        if RasterRenderer._lib is None:
            RasterRenderer._lib = _raster_library()
        self.lib = RasterRenderer._lib
        self.handle = self.lib.doodle_raster_create()
        if not self.handle:
            raise MemoryError("doodle_raster_create")

    def __del__(self) -> None:
        if getattr(self, "handle", None):
            self.lib.doodle_raster_destroy(self.handle)
            self.handle = None

    def render(self, strokes: Strokes) -> np.ndarray:
        """Render strokes in 0..255 space (minimum 0) to a (784,) uint8 array."""
        lengths = np.fromiter((len(s[0]) for s in strokes), np.int32, len(strokes))
        if lengths.sum():
            xs = np.concatenate([np.asarray(s[0], np.int32) for s in strokes if len(s[0])])
            ys = np.concatenate([np.asarray(s[1], np.int32) for s in strokes if len(s[0])])
        else:
            xs = ys = np.zeros(1, np.int32)
        out = np.empty(SIDE * SIDE, np.uint8)
        if self.lib.doodle_raster_render(self.handle, xs, ys, lengths, len(strokes), out) != 0:
            raise MemoryError("doodle_raster_render")
        return out


def _choose() -> type:
    choice = os.environ.get("DOODLE_RENDERER", "").lower()
    if choice == "cairo":
        return CairoRenderer
    if choice == "raster" or cairo is None:
        return RasterRenderer
    if choice:
        raise ValueError(f"DOODLE_RENDERER={choice}: expected cairo or raster")
    return CairoRenderer


Renderer = _choose()

_default = None


def render(strokes: Strokes) -> np.ndarray:
    """Render with a module-level renderer (single-threaded use)."""
    global _default
    if _default is None:
        _default = Renderer()
    return _default.render(strokes)

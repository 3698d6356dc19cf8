#ifndef CDOODLE_RASTER_H
#define CDOODLE_RASTER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Renders simplified Quick, Draw! strokes to the dataset's 28 x 28 bitmap, byte for byte what cairo 1.16's
/// image backend draws for the recipe in shared/reference/quickdraw-format.md (ARGB32, antialias BEST, round
/// caps and joins, line width 16, scale 28/304, translate 24, one cairo_stroke per stroke), without cairo.
///
/// Holds scratch buffers that grow to the largest drawing seen: make one per thread.
typedef struct doodle_raster doodle_raster;

/// A rasteriser, or NULL when out of memory.
doodle_raster *doodle_raster_create(void);

void doodle_raster_destroy(doodle_raster *raster);

/// Draws `stroke_count` strokes, centred as the dataset does, and writes 784 bytes (row-major, 0 = background,
/// 255 = ink) to `out`. Stroke i has `lengths[i]` points, taken in order from `xs` and `ys`; coordinates are
/// integers in 0...255 (others are clamped). Empty strokes are skipped. Returns 0, or -1 when out of memory
/// (then `out` is all zero).
int doodle_raster_render(doodle_raster *raster, const int32_t *xs, const int32_t *ys, const int32_t *lengths,
                         int stroke_count, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif

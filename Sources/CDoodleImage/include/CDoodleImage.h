#ifndef CDOODLE_IMAGE_H
#define CDOODLE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Image file formats the decoder reads.
typedef enum {
    DOODLE_IMAGE_UNKNOWN = 0,
    DOODLE_IMAGE_PNG = 1,
    DOODLE_IMAGE_JPEG = 2,
} doodle_image_format;

/// Reads an encoded image's format and size from its header alone (no library, no allocation): what the
/// limits are checked against before anything is decoded. Returns 0, or -1 with a message in `message`.
int doodle_image_probe(const uint8_t *data, size_t size, doodle_image_format *format, uint32_t *width,
                       uint32_t *height, char *message, size_t message_size);

/// Decodes a PNG (libpng) or JPEG (libjpeg) whose header `doodle_image_probe` read as `width` x `height` into
/// grey + alpha, 2 bytes a pixel, row-major, into `out` (width * height * 2 bytes). Colours are reduced to their
/// luminance, palettes and 16-bit samples to 8 bits, transparency (alpha or tRNS) kept; JPEGs are opaque.
/// Ancillary chunks are limited to `max_chunk_bytes` decompressed and libjpeg to `max_decoder_bytes` of working
/// memory. Corrupt or truncated data is an error, never a partial image. Returns 0, or -1 with a message.
int doodle_image_decode(const uint8_t *data, size_t size, doodle_image_format format, uint32_t width,
                        uint32_t height, uint8_t *out, size_t max_chunk_bytes, size_t max_decoder_bytes,
                        char *message, size_t message_size);

/// Which way a PNG is decoded: what `doodle_image_decode` does (`AUTO`: the chunk reader for 8-bit
/// non-interlaced files, inflating with libdeflate when the system has it, else zlib; libpng for the rest), or
/// one way forced, for benches and tests that compare them.
typedef enum {
    DOODLE_PNG_AUTO = 0,
    DOODLE_PNG_LIBPNG = 1,
    DOODLE_PNG_OWN_ZLIB = 2,
} doodle_png_route;

/// `doodle_image_decode` for a PNG, by `route`.
int doodle_image_decode_png_by(const uint8_t *data, size_t size, uint32_t width, uint32_t height, uint8_t *out,
                                size_t max_chunk_bytes, doodle_png_route route, char *message, size_t message_size);

/// The inflater PNG image data goes through: "libdeflate" when the system has it, else "zlib".
const char *doodle_image_inflater(void);

/// Raw pixels as a client holds them, to grey + alpha (2 bytes a pixel): `channels` 1 (grey, opaque) or 4
/// (RGBA, straight alpha).
void doodle_image_pixels_to_grey_alpha(const uint8_t *pixels, size_t count, int channels, uint8_t *out);

/// What was found of a drawing on a canvas, and the strokes traced from it (pointers into the
/// `doodle_canvas`, valid until its next use).
typedef struct {
    /// The ink's bounding box in canvas pixels (inclusive).
    int32_t min_x, min_y, max_x, max_y;
    /// The pen width the drawing was made with, estimated from the ink's area and outline (canvas pixels).
    float pen_width;
    /// How the ink was told from the background: 0 = transparency, 1 = darker than the background,
    /// 2 = lighter than the background.
    int32_t ink_mode;
    /// The strongest ink; the canvas's ink map has width x height bytes, 0 = background, `peak` the most.
    int32_t peak;
    const uint8_t *ink;
    /// The scale from canvas pixels to the grid the strokes' points are on, and the grid's size.
    float scale;
    int32_t grid_width, grid_height;
    /// The strokes: stroke i has `lengths[i]` points, taken in order from `xs` and `ys` (grid pixels, y down).
    int32_t point_count, stroke_count;
    const int32_t *xs, *ys, *lengths;
} doodle_canvas_trace;

/// Scratch for `doodle_canvas_find_strokes`, growing to the largest canvas seen: make one per thread.
typedef struct doodle_canvas doodle_canvas;

doodle_canvas *doodle_canvas_create(void);
void doodle_canvas_destroy(doodle_canvas *canvas);

/// Finds the drawing on a grey + alpha canvas (`width` x `height`, 2 bytes a pixel) and turns its ink back into
/// pen strokes: the ink told from the background whatever the colours (dark on light, light on dark, or opaque
/// on transparent), cropped to its bounding box, brought to a grid on which the pen is about `grid_pen` pixels
/// wide (and the drawing 128 to 256 pixels across, never more than the canvas), thinned to a one-pixel skeleton
/// (Zhang-Suen) and traced into polylines. Returns 0; 1 when the canvas holds no ink (one colour, or contrast
/// too faint to tell); -1 when out of memory.
int doodle_canvas_find_strokes(doodle_canvas *canvas, const uint8_t *grey_alpha, int32_t width, int32_t height,
                               float grid_pen, doodle_canvas_trace *trace);

#ifdef __cplusplus
}
#endif

#endif

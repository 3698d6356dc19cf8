// Image decoding for the image input: PNG through libpng, JPEG through libjpeg(-turbo). Both libraries report
// errors by longjmp, which is why this is C: every error becomes a message and a -1, never an exit or a
// partial image.
#include "CDoodleImage.h"

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <zlib.h>

static void say(char *message, size_t size, const char *format, ...) {
    if (message == NULL || size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int doodle_image_probe(const uint8_t *data, size_t size, doodle_image_format *format, uint32_t *width,
                       uint32_t *height, char *message, size_t message_size) {
    *format = DOODLE_IMAGE_UNKNOWN;
    *width = 0;
    *height = 0;
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) {
        *format = DOODLE_IMAGE_PNG;
        // The first chunk must be IHDR: length 13, type, width, height.
        if (size < 8 + 8 + 13 || be32(data + 8) != 13 || memcmp(data + 12, "IHDR", 4) != 0) {
            say(message, message_size, "the PNG has no valid IHDR header (truncated or corrupt file)");
            return -1;
        }
        *width = be32(data + 16);
        *height = be32(data + 20);
        return 0;
    }
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) {
        *format = DOODLE_IMAGE_JPEG;
        // Walk the marker segments up to the first start-of-frame (SOF0..SOF15 but DHT, JPG and DAC).
        size_t pos = 2;
        while (pos + 4 <= size) {
            if (data[pos] != 0xff) break;
            uint8_t marker = data[pos + 1];
            if (marker == 0xff) { pos += 1; continue; }          // fill byte
            if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { pos += 2; continue; }
            if (marker == 0xd9 || marker == 0xda) break;        // end of image or start of scan before a frame
            size_t length = ((size_t)data[pos + 2] << 8) | data[pos + 3];
            if (length < 2) break;
            if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
                if (pos + 9 > size || length < 7) break;
                *height = ((uint32_t)data[pos + 5] << 8) | data[pos + 6];
                *width = ((uint32_t)data[pos + 7] << 8) | data[pos + 8];
                return 0;
            }
            pos += 2 + length;
        }
        say(message, message_size, "the JPEG has no frame header (truncated or corrupt file)");
        return -1;
    }
    say(message, message_size, "the image is neither PNG nor JPEG (unknown signature)");
    return -1;
}

// MARK: PNG, common case

// Most canvases arrive as 8-bit, non-interlaced PNGs (grey, grey + alpha, RGB, RGBA or an 8-bit palette). Those
// are decoded here: the chunks read and their CRCs checked, the image data inflated in one call into a buffer of
// exactly the size the header implies (so a stream that inflates to more is an error, never an allocation), then
// unfiltered and reduced to grey + alpha. Inflating is most of a PNG's cost, and libdeflate does it about ten
// times faster than zlib on canvas pictures (long runs of one colour): it is used when the system has it
// (Debian's libdeflate0, loaded at run time), zlib otherwise. Anything else goes to libpng.

typedef void *(*deflate_alloc_fn)(void);
typedef int (*deflate_zlib_fn)(void *, const void *, size_t, void *, size_t, size_t *);
static deflate_alloc_fn deflate_alloc;
static deflate_zlib_fn deflate_zlib;
static pthread_once_t deflate_once = PTHREAD_ONCE_INIT;
static __thread void *deflate_decompressor;

static void load_libdeflate(void) {
    void *library = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return;
    deflate_alloc = (deflate_alloc_fn)dlsym(library, "libdeflate_alloc_decompressor");
    deflate_zlib = (deflate_zlib_fn)dlsym(library, "libdeflate_zlib_decompress");
    if (deflate_alloc == NULL || deflate_zlib == NULL) deflate_alloc = NULL;
}

const char *doodle_image_inflater(void) {
    pthread_once(&deflate_once, load_libdeflate);
    return deflate_alloc ? "libdeflate" : "zlib";
}

/// Inflates a zlib stream into exactly `out_size` bytes: 0, or -1 when it is corrupt, shorter or longer.
static int inflate_exactly(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size, int may_use_libdeflate) {
    pthread_once(&deflate_once, load_libdeflate);
    if (deflate_alloc && may_use_libdeflate) {
        if (deflate_decompressor == NULL) deflate_decompressor = deflate_alloc();
        if (deflate_decompressor != NULL) {
            size_t actual = 0;
            // 0 = success; anything else (bad data, short output, insufficient space) is an error.
            if (deflate_zlib(deflate_decompressor, in, in_size, out, out_size, &actual) != 0) return -1;
            return actual == out_size ? 0 : -1;
        }
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return -1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_size;
    z.next_out = out;
    z.avail_out = (uInt)out_size;
    int status = inflate(&z, Z_FINISH);
    size_t produced = out_size - z.avail_out;
    inflateEnd(&z);
    return status == Z_STREAM_END && produced == out_size ? 0 : -1;
}

static inline uint8_t paeth(int a, int b, int c) {
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    int choice = pb < pa ? b : a;
    return (uint8_t)(pc < (pb < pa ? pb : pa) ? c : choice);
}

/// A buffer per thread that grows to the largest request seen (decoding runs on a few long-lived workers).
static uint8_t *scratch(int which, size_t size) {
    static __thread uint8_t *buffers[2];
    static __thread size_t capacities[2];
    if (size > capacities[which]) {
        free(buffers[which]);
        buffers[which] = malloc(size);
        capacities[which] = buffers[which] ? size : 0;
    }
    return buffers[which];
}

/// Reverses one scanline's Sub, Average or Paeth filter with `bpp` bytes a pixel (a constant where it is
/// inlined: the pixel to the left stays in registers instead of going through memory).
static inline void unfilter_left(uint8_t *r, const uint8_t *up, size_t row_bytes, size_t bpp, int filter) {
    uint8_t left[4] = {0, 0, 0, 0}, corner[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < row_bytes; i += bpp) {
        for (size_t k = 0; k < bpp; k++) {
            uint8_t value;
            if (filter == 1) value = (uint8_t)(r[i + k] + left[k]);
            else if (filter == 3) value = (uint8_t)(r[i + k] + ((left[k] + up[i + k]) >> 1));
            else value = (uint8_t)(r[i + k] + paeth(left[k], up[i + k], corner[k]));
            r[i + k] = value;
            left[k] = value;
            corner[k] = up[i + k];
        }
    }
}

/// Reverses the filter of every scanline in place: `rows` scanlines of a filter byte and `row_bytes` bytes
/// (a whole number of `bpp`-byte pixels), after one scanline of zeros (the row "above" the first).
static int unfilter(uint8_t *data, uint32_t rows, size_t row_bytes, size_t bpp) {
    for (uint32_t y = 1; y <= rows; y++) {
        uint8_t *line = data + (size_t)y * (row_bytes + 1);
        const uint8_t *up = line - (row_bytes + 1) + 1;
        uint8_t *r = line + 1;
        int filter = line[0];
        switch (filter) {
        case 0:
            break;
        case 2:
            for (size_t i = 0; i < row_bytes; i++) r[i] = (uint8_t)(r[i] + up[i]);
            break;
        case 1:
        case 3:
        case 4:
            switch (bpp) {
            case 1: unfilter_left(r, up, row_bytes, 1, filter); break;
            case 2: unfilter_left(r, up, row_bytes, 2, filter); break;
            case 3: unfilter_left(r, up, row_bytes, 3, filter); break;
            default: unfilter_left(r, up, row_bytes, 4, filter); break;
            }
            break;
        default:
            return -1;
        }
    }
    return 0;
}

static inline uint8_t luminance(uint16_t r, uint16_t g, uint16_t b) {
    // ITU-R BT.709 weights (libpng's default for colour to grey) in 1/256, in 16 bits so that loops vectorise.
    return (uint8_t)((uint16_t)(54 * r + 183 * g + 19 * b + 128) >> 8);
}

/// 0 = decoded; 1 = not the common case (libpng should decode it); -1 = an error (message set).
static int decode_png_common(const uint8_t *data, size_t size, uint32_t width, uint32_t height, uint8_t *out,
                             int may_use_libdeflate, char *message, size_t message_size) {
    uint8_t depth = data[24], color = data[25], interlace = data[28];
    int channels;
    switch (color) {
    case 0: channels = 1; break;
    case 2: channels = 3; break;
    case 3: channels = 1; break;
    case 4: channels = 2; break;
    case 6: channels = 4; break;
    default: return 1;
    }
    if (depth != 8 || interlace != 0 || data[26] != 0 || data[27] != 0) return 1;
    // Walk the chunks: check every CRC, keep the palette and its transparency, gather the image data.
    uint8_t palette_grey[256], palette_alpha[256];
    int palette_size = 0;
    memset(palette_grey, 0, sizeof palette_grey);
    memset(palette_alpha, 255, sizeof palette_alpha);
    size_t compressed = 0, pos = 8;
    int ended = 0, image_data_seen = 0, image_data_done = 0;
    while (pos + 12 <= size) {
        size_t length = be32(data + pos);
        const uint8_t *type = data + pos + 4;
        if (length > size - pos - 12) break;
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, (uInt)(length + 4));
        if (crc != be32(data + pos + 8 + length)) {
            say(message, message_size, "the PNG cannot be decoded: the %.4s chunk's CRC is wrong (corrupt file)", (const char *)type);
            return -1;
        }
        if (memcmp(type, "IDAT", 4) == 0) {
            if (image_data_done) {
                say(message, message_size, "the PNG cannot be decoded: its image data is not contiguous");
                return -1;
            }
            image_data_seen = 1;
            compressed += length;
        } else {
            if (image_data_seen) image_data_done = 1;
            if (memcmp(type, "PLTE", 4) == 0 && length % 3 == 0 && length <= 768) {
                palette_size = (int)(length / 3);
                for (int i = 0; i < palette_size; i++) {
                    const uint8_t *p = data + pos + 8 + 3 * i;
                    palette_grey[i] = luminance(p[0], p[1], p[2]);
                }
            } else if (memcmp(type, "tRNS", 4) == 0) {
                if (color != 3) return 1;  // a colour key: libpng's business
                for (size_t i = 0; i < length && i < 256; i++) palette_alpha[i] = data[pos + 8 + i];
            } else if (memcmp(type, "IEND", 4) == 0) {
                ended = 1;
                break;
            }
        }
        pos += 12 + length;
    }
    if (!ended || !image_data_seen) {
        say(message, message_size, "the PNG cannot be decoded: the file ends early (truncated)");
        return -1;
    }
    if (color == 3 && palette_size == 0) {
        say(message, message_size, "the PNG cannot be decoded: a palette image without a palette");
        return -1;
    }
    size_t row_bytes = (size_t)width * channels;
    size_t raw_size = (row_bytes + 1) * height;
    uint8_t *joined = scratch(0, compressed ? compressed : 1);
    uint8_t *raw = scratch(1, raw_size + row_bytes + 1);
    if (joined == NULL || raw == NULL) {
        say(message, message_size, "out of memory");
        return -1;
    }
    size_t at = 0;
    for (pos = 8; pos + 12 <= size;) {
        size_t length = be32(data + pos);
        if (memcmp(data + pos + 4, "IDAT", 4) == 0) {
            memcpy(joined + at, data + pos + 8, length);
            at += length;
        }
        if (memcmp(data + pos + 4, "IEND", 4) == 0) break;
        pos += 12 + length;
    }
    memset(raw, 0, row_bytes + 1);
    if (inflate_exactly(joined, compressed, raw + row_bytes + 1, raw_size, may_use_libdeflate) != 0) {
        say(message, message_size, "the PNG cannot be decoded: its image data is corrupt, or not %u x %u pixels", width, height);
        return -1;
    }
    if (unfilter(raw, height, row_bytes, (size_t)channels) != 0) {
        say(message, message_size, "the PNG cannot be decoded: unknown scanline filter");
        return -1;
    }
    raw += row_bytes + 1;
    for (uint32_t y = 0; y < height; y++) {
        const uint8_t *r = raw + (size_t)y * (row_bytes + 1) + 1;
        uint8_t *o = out + (size_t)y * width * 2;
        switch (color) {
        case 0:
            for (uint32_t x = 0; x < width; x++) { o[2 * x] = r[x]; o[2 * x + 1] = 255; }
            break;
        case 2:
            for (uint32_t x = 0; x < width; x++) {
                o[2 * x] = luminance(r[3 * x], r[3 * x + 1], r[3 * x + 2]);
                o[2 * x + 1] = 255;
            }
            break;
        case 3:
            for (uint32_t x = 0; x < width; x++) { o[2 * x] = palette_grey[r[x]]; o[2 * x + 1] = palette_alpha[r[x]]; }
            break;
        case 4:
            memcpy(o, r, (size_t)width * 2);
            break;
        default:
            for (uint32_t x = 0; x < width; x++) {
                o[2 * x] = luminance(r[4 * x], r[4 * x + 1], r[4 * x + 2]);
                o[2 * x + 1] = r[4 * x + 3];
            }
        }
    }
    return 0;
}

// MARK: PNG, through libpng

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *message;
    size_t message_size;
} png_source;

static void png_read_memory(png_structp png, png_bytep out, size_t count) {
    png_source *source = png_get_io_ptr(png);
    if (count > source->size - source->pos) png_error(png, "the PNG data ends early (truncated file)");
    memcpy(out, source->data + source->pos, count);
    source->pos += count;
}

static void png_fail(png_structp png, png_const_charp text) {
    png_source *source = png_get_error_ptr(png);
    say(source->message, source->message_size, "the PNG cannot be decoded: %s", text);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static int decode_png(const uint8_t *data, size_t size, uint32_t width, uint32_t height, uint8_t *out,
                      size_t max_chunk_bytes, char *message, size_t message_size) {
    png_source source = {data, size, 0, message, message_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_ignore_warning);
    if (png == NULL) {
        say(message, message_size, "out of memory");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (info == NULL || setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        if (info == NULL) say(message, message_size, "out of memory");
        return -1;
    }
    png_set_read_fn(png, &source, png_read_memory);
    png_set_user_limits(png, width, height);
    png_set_chunk_malloc_max(png, max_chunk_bytes);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (w != width || h != height) png_error(png, "the header changed size");
    if (depth == 16) png_set_scale_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    int has_alpha = (color & PNG_COLOR_MASK_ALPHA) != 0;
    if (png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_tRNS_to_alpha(png);
        has_alpha = 1;
    }
    if (color == PNG_COLOR_TYPE_PALETTE || (color & PNG_COLOR_MASK_COLOR)) {
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);
    }
    if (!has_alpha) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * 2) png_error(png, "unexpected row layout");
    rows = malloc(sizeof(png_bytep) * height);
    if (rows == NULL) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = out + (size_t)y * width * 2;
    png_read_image(png, rows);
    free(rows);
    rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *message;
    size_t message_size;
} jpeg_failure;

static void jpeg_fail(j_common_ptr info) {
    jpeg_failure *failure = (jpeg_failure *)info->err;
    char text[JMSG_LENGTH_MAX];
    failure->manager.format_message(info, text);
    say(failure->message, failure->message_size, "the JPEG cannot be decoded: %s", text);
    longjmp(failure->jump, 1);
}

// Warnings (a file that ends early, corrupt entropy data) are errors here: a partial picture is not an answer.
static void jpeg_warn(j_common_ptr info, int level) {
    if (level < 0 && info->err->msg_code != JWRN_EXTRANEOUS_DATA) jpeg_fail(info);
}

static void jpeg_quiet(j_common_ptr info) {
    (void)info;
}

static int decode_jpeg(const uint8_t *data, size_t size, uint32_t width, uint32_t height, uint8_t *out,
                       size_t max_decoder_bytes, char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    jpeg_failure failure;
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail;
    failure.manager.emit_message = jpeg_warn;
    failure.manager.output_message = jpeg_quiet;
    failure.message = message;
    failure.message_size = message_size;
    uint8_t *volatile row = NULL;
    if (setjmp(failure.jump)) {
        free(row);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_create_decompress(&info);
    info.mem->max_memory_to_use = (long)max_decoder_bytes;
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    if (info.image_width != width || info.image_height != height) {
        say(message, message_size, "the JPEG cannot be decoded: the header changed size");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    info.out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(&info);
    if (info.output_components != 1 || info.output_width != width) {
        say(message, message_size, "the JPEG cannot be decoded: unsupported colour space");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    row = malloc(width);
    if (row == NULL) {
        say(message, message_size, "out of memory");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        uint32_t y = info.output_scanline;
        JSAMPROW rows[1] = {row};
        if (jpeg_read_scanlines(&info, rows, 1) != 1) break;
        uint8_t *target = out + (size_t)y * width * 2;
        for (uint32_t x = 0; x < width; x++) {
            target[2 * x] = row[x];
            target[2 * x + 1] = 255;
        }
    }
    jpeg_finish_decompress(&info);
    free(row);
    jpeg_destroy_decompress(&info);
    return 0;
}

int doodle_image_decode_png_by(const uint8_t *data, size_t size, uint32_t width, uint32_t height, uint8_t *out,
                                size_t max_chunk_bytes, doodle_png_route route, char *message, size_t message_size) {
    if (route != DOODLE_PNG_LIBPNG && size >= 33) {
        int common = decode_png_common(data, size, width, height, out, route != DOODLE_PNG_OWN_ZLIB, message,
                                       message_size);
        if (common <= 0) return common;
    }
    return decode_png(data, size, width, height, out, max_chunk_bytes, message, message_size);
}

int doodle_image_decode(const uint8_t *data, size_t size, doodle_image_format format, uint32_t width,
                        uint32_t height, uint8_t *out, size_t max_chunk_bytes, size_t max_decoder_bytes,
                        char *message, size_t message_size) {
    if (width == 0 || height == 0) {
        say(message, message_size, "the image has no pixels (%u x %u)", width, height);
        return -1;
    }
    switch (format) {
    case DOODLE_IMAGE_PNG:
        return doodle_image_decode_png_by(data, size, width, height, out, max_chunk_bytes, DOODLE_PNG_AUTO, message,
                                          message_size);
    case DOODLE_IMAGE_JPEG:
        return decode_jpeg(data, size, width, height, out, max_decoder_bytes, message, message_size);
    default:
        say(message, message_size, "the image is neither PNG nor JPEG");
        return -1;
    }
}

void doodle_image_pixels_to_grey_alpha(const uint8_t *pixels, size_t count, int channels, uint8_t *out) {
    if (channels == 1) {
        for (size_t i = 0; i < count; i++) {
            out[2 * i] = pixels[i];
            out[2 * i + 1] = 255;
        }
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = pixels + 4 * i;
        out[2 * i] = luminance(p[0], p[1], p[2]);
        out[2 * i + 1] = p[3];
    }
}

// Shared by the kernel translation units; not part of the public header.
#ifndef CDOODLEKERNELS_INTERNAL_H
#define CDOODLEKERNELS_INTERNAL_H

#include "CDoodleKernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CDK_PANEL 16  // output columns per packed panel
#define CDK_K4(K) (((K) + 3) / 4)
#define CDK_PANELS(N) (((N) + CDK_PANEL - 1) / CDK_PANEL)

/// One packed panel: [K4][16 columns][4 k] int8.
static inline size_t cdk_panel_bytes(int K) { return (size_t)CDK_K4(K) * CDK_PANEL * 4; }

/// The NEON i8mm path's panel (its `usmmla` takes two columns' 8 consecutive k at a time): [K8][16 columns][8 k],
/// where K8 = K4 / 2 rounded up and a last odd 4-byte group is padded with zero weights.
#define CDK_K8(K) ((CDK_K4(K) + 1) / 2)
static inline size_t cdk_pair_panel_bytes(int K) { return (size_t)CDK_K8(K) * CDK_PANEL * 8; }

/// Packed weights: the panels, then a trailer that the paths computing on shifted activations read.
///   int32 shift_correction[panels * 16]: 128 * sum_k w[n][k], so sum_k (a - 128) * w + correction = sum_k a * w;
///   int32 has_minus_128: 1 if some weight is -128 (the AVX2 sign trick is exact only on [-127, 127]);
///   int32 fits_7_bits: 1 if every weight is in [-64, 64] (quantised with a reduced range), where AVX2's
///   vpmaddubsw multiplies the activations as they are without saturating (2 * 255 * 64 = 32640).
static inline size_t cdk_panels_bytes(int K, int N) { return (size_t)CDK_PANELS(N) * cdk_panel_bytes(K); }
static inline const int32_t *cdk_shift_correction(const int8_t *B, int K, int N) {
    return (const int32_t *)(const void *)(B + cdk_panels_bytes(K, N));
}
static inline int cdk_has_minus_128(const int8_t *B, int K, int N) {
    return cdk_shift_correction(B, K, N)[CDK_PANELS(N) * CDK_PANEL];
}
static inline int cdk_fits_7_bits(const int8_t *B, int K, int N) {
    return cdk_shift_correction(B, K, N)[CDK_PANELS(N) * CDK_PANEL + 1];
}

/// One 16-column panel's epilogue constants as plain arrays (zero past the last column): bias plus, where given,
/// the shift correction; the requantisation scales (zero for int32 output). Returns the valid column count.
static inline int cdk_panel_constants(int N, int n0, const int32_t *bias, const int32_t *correction,
                                      const CDoodleKernels_Requant *rq, int32_t b[CDK_PANEL], float s[CDK_PANEL]) {
    const int count = N - n0 < CDK_PANEL ? N - n0 : CDK_PANEL;
    for (int c = 0; c < CDK_PANEL; c++) {
        b[c] = c < count ? (bias ? bias[n0 + c] : 0) + (correction ? correction[n0 + c] : 0) : 0;
        s[c] = c < count && rq ? rq->scale[n0 + c] : 0.0f;
    }
    return count;
}

/// Where an implicit-GEMM row's bytes come from: output pixel p reads `k_h` segments of `seg4` 4-byte words, the
/// first at `in + (p / out_w) * in_pitch + (p % out_w) * c`, each `seg_stride` bytes after the one before. A plain
/// GEMM is the case k_h = 1, out_w = 1, in_pitch = lda, seg4 = K4.
typedef struct {
    const uint8_t *in;
    size_t in_pitch, c, seg_stride;
    int k_h, seg4, out_w;
    /// With 2 x 2 pooling fused (see cdk_quad): pooled pixels per row, and bytes between pooled output rows; 0 else.
    int pool_w;
    size_t out_pitch;
} cdk_rows;

/// Pooled pixel (py, px) of a convolution fused with 2 x 2, stride-2 pooling: its four rows, (2py, 2px),
/// (2py, 2px + 1), (2py + 1, 2px) and (2py + 1, 2px + 1), and where its output goes (py * out_pitch + px * ldc).
/// Callers walk py and px in nested loops: a division per pooled pixel costs as much as a small layer's arithmetic.
static inline size_t cdk_quad(const cdk_rows *r, size_t py, size_t px, size_t ldc, const uint8_t *rows[4]) {
    rows[0] = r->in + 2 * py * r->in_pitch + 2 * px * r->c;
    rows[1] = rows[0] + r->c;
    rows[2] = rows[0] + r->in_pitch;
    rows[3] = rows[2] + r->c;
    return py * r->out_pitch + px * ldc;
}

/// Walks the rows in order without a division per row: output pixel p's row start, then p + 1's, ...
typedef struct {
    const uint8_t *line;  // the current output row's first pixel
    size_t in_pitch, c;
    int ox, out_w;
} cdk_row_cursor;

static inline cdk_row_cursor cdk_row_cursor_start(const cdk_rows *r) {
    return (cdk_row_cursor){.line = r->in, .in_pitch = r->in_pitch, .c = r->c, .ox = 0, .out_w = r->out_w};
}

static inline const uint8_t *cdk_row_cursor_next(cdk_row_cursor *cur) {
    if (cur->ox == cur->out_w) {
        cur->ox = 0;
        cur->line += cur->in_pitch;
    }
    return cur->line + (size_t)(cur->ox++) * cur->c;
}

/// A thread's working buffer, 64-byte aligned, that only grows (to the largest request its thread has made) and is
/// never freed. Kernels keep one in a `static _Thread_local` variable.
typedef struct {
    void *data;
    size_t capacity;
} cdk_thread_buffer;

/// At least `bytes` of `b` (its contents not kept when it grows), or NULL when memory runs out. Grows to `bytes`
/// rounded up to a power of two from 4 KiB, so a thread that sees a few sizes reallocates a few times.
static inline void *cdk_thread_buffer_reserve(cdk_thread_buffer *b, size_t bytes) {
    if (bytes > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < bytes) capacity *= 2;
        void *p = NULL;
        if (posix_memalign(&p, 64, capacity) != 0) return NULL;
        free(b->data);
        b->data = p;
        b->capacity = capacity;
    }
    return b->data;
}

/// Scalar requantisation; every SIMD path rounds exactly like this (clamp in float, then nearest-even).
static inline uint8_t cdk_requant(int32_t acc, float scale, int32_t zp, int32_t lo, int32_t hi) {
    float v = (float)acc * scale;
    v = fmaxf(v, (float)(lo - zp));
    v = fminf(v, (float)(hi - zp));
    return (uint8_t)((int32_t)nearbyintf(v) + zp);
}

void cdk_gemm_reference(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                        const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32, size_t ldc);
void cdk_gemm_avx2(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                   const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32, size_t ldc);
void cdk_gemm_neon_dotprod(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                           const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                           size_t ldc);
void cdk_gemm_neon_i8mm(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                        const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32, size_t ldc);
void cdk_gemm_avx512vnni(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                         const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                         size_t ldc);

/// Implicit-GEMM convolutions (see CDoodleKernels_conv_implicit_u8).
#define CDK_CONV_IMPLICIT_ARGS                                                                                     \
    const uint8_t *in, size_t in_pitch, int c, int k_h, int k_w, int out_h, int out_w, const int8_t *B, int N,    \
        const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc
void cdk_conv_implicit_reference(CDK_CONV_IMPLICIT_ARGS);
/// Implicit-GEMM convolutions fused with 2 x 2, stride-2 max pooling (see CDoodleKernels_conv_implicit_pool2_u8).
#define CDK_CONV_POOL2_ARGS CDK_CONV_IMPLICIT_ARGS, size_t out_pitch
void cdk_conv_pool2_reference(CDK_CONV_POOL2_ARGS);
void cdk_conv_pool2_avx2(CDK_CONV_POOL2_ARGS);
void cdk_conv_pool2_avx512vnni(CDK_CONV_POOL2_ARGS);
void cdk_conv_pool2_neon_dotprod(CDK_CONV_POOL2_ARGS);
void cdk_conv_pool2_neon_i8mm(CDK_CONV_POOL2_ARGS);
void cdk_conv_implicit_avx2(CDK_CONV_IMPLICIT_ARGS);
void cdk_conv_implicit_avx512vnni(CDK_CONV_IMPLICIT_ARGS);
void cdk_conv_implicit_neon_dotprod(CDK_CONV_IMPLICIT_ARGS);
void cdk_conv_implicit_neon_i8mm(CDK_CONV_IMPLICIT_ARGS);

/// 3 x 3 convolution and 2 x 2 max pool by Winograd F(2 x 2, 3 x 3) (see CDoodleKernels_conv3x3_pool2_winograd_u8).
#define CDK_WINOGRAD_POOL2_ARGS                                                                                    \
    const uint8_t *in, size_t in_pitch, int c, int out_h, int out_w, const int16_t *U, int N,                      \
        const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc, size_t out_pitch
/// Bytes of the transformed weights for c input and N output channels; 0 where the shape does not suit.
size_t cdk_winograd_size(int c, int N);
void cdk_winograd_pack(const int8_t *w, int c, int N, int16_t *packed);
void cdk_winograd_pool2_reference(CDK_WINOGRAD_POOL2_ARGS);
void cdk_winograd_pool2_avx2(CDK_WINOGRAD_POOL2_ARGS);
/// The pooled pixels the AVX2 kernel computes for `pixels` (taken 2 at a time: a spare one is zero).
static inline int cdk_winograd_padded_pixels(int pixels) { return (pixels + 1) / 2 * 2; }

void cdk_im2col_reference(const CDoodleKernels_ConvShape *s, const uint8_t *in, uint8_t pad_value, uint8_t *out,
                         size_t row_bytes);
void cdk_im2col_avx512(const CDoodleKernels_ConvShape *s, const uint8_t *in, uint8_t pad_value, uint8_t *out,
                       size_t row_bytes);
void cdk_maxpool_reference(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w,
                           int out_h, int out_w, uint8_t *out, size_t out_pitch);
/// Max pooling 16 channels at a time with 128-bit vectors (SSE2 on x86-64, NEON on ARM64); c >= 16.
void cdk_maxpool_simd128(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w, int out_h,
                         int out_w, uint8_t *out, size_t out_pitch);
void cdk_maxpool_avx512(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w, int out_h,
                        int out_w, uint8_t *out, size_t out_pitch);

/// Peak multiply-accumulate rates (see CDoodleKernels_peak_macs_per_second); only on the matching architecture.
double cdk_peak_avx512vnni(double seconds);
double cdk_peak_avx2(double seconds);
double cdk_peak_avx2_int16(double seconds);
double cdk_peak_neon_dotprod(double seconds);
double cdk_peak_neon_i8mm(double seconds);

#endif

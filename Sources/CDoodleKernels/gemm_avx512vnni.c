// AVX-512 VNNI GEMM: up to 8 rows x 48 columns per tile (24 accumulators), vpdpbusd (u8 x s8 -> s32, exact) on a packed panel layout.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define MR 8   // rows per tile of 1 or 2 panels
#define MR3 6  // rows per tile of 3 panels (18 accumulators + 3 weights: no spills)

/// Per-panel constants of the epilogue, loaded once per column block rather than once per row.
typedef struct {
    __m512i bias[3];
    __m512 scale[3];
    __mmask16 mask[3];
    __m512 lo, hi;
    __m512i zp;
} Panel;

/// The epilogue constants of the (up to 3) panels starting at column n0. `rq` is NULL for int32 output.
AVX512 static inline Panel make_panel(int N, int n0, const int32_t *bias, const CDoodleKernels_Requant *rq) {
    Panel pc;
    for (int j = 0; j < 3; j++) {
        const int left = N - (n0 + 16 * j);
        pc.mask[j] = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1u) : 0;
        pc.bias[j] = bias ? _mm512_maskz_loadu_epi32(pc.mask[j], bias + n0 + 16 * j) : _mm512_setzero_si512();
        pc.scale[j] = rq ? _mm512_maskz_loadu_ps(pc.mask[j], rq->scale + n0 + 16 * j) : _mm512_setzero_ps();
    }
    pc.lo = _mm512_set1_ps(rq ? (float)(rq->lo - rq->zero_point) : 0.0f);
    pc.hi = _mm512_set1_ps(rq ? (float)(rq->hi - rq->zero_point) : 0.0f);
    pc.zp = _mm512_set1_epi32(rq ? rq->zero_point : 0);
    return pc;
}

AVX512 static inline __attribute__((always_inline)) void
epilogue(__m512i acc, const Panel *pc, int j, uint8_t *restrict C8, int32_t *restrict C32, size_t offset) {
    if (C8) {
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), pc->scale[j]);
        v = _mm512_min_ps(_mm512_max_ps(v, pc->lo), pc->hi);
        const __m512i q =
            _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), pc->zp);
        // vpmovdb to a register, then a plain store: the masked memory form is slow on Zen 4.
        const __m128i bytes = _mm512_cvtepi32_epi8(q);
        if (pc->mask[j] == 0xFFFF) {
            _mm_storeu_si128((__m128i *)(C8 + offset), bytes);
        } else {
            _mm_mask_storeu_epi8(C8 + offset, pc->mask[j], bytes);
        }
    } else {
        _mm512_mask_storeu_epi32(C32 + offset, pc->mask[j], acc);
    }
}

/// One tile: `mr` rows (<= MR) by `np` panels (1 or 2) of 16 columns. Constant arguments unroll it.
AVX512 static inline __attribute__((always_inline)) void
tile(const uint8_t *restrict A, size_t lda, int K4, const int8_t *restrict B, size_t pb, const Panel *pc, int n0,
     int m0, const int mr, const int np, uint8_t *restrict C8, int32_t *restrict C32, size_t ldc) {
    __m512i acc[MR][3];
    for (int j = 0; j < np; j++)
        for (int i = 0; i < mr; i++) acc[i][j] = pc->bias[j];
    const uint8_t *a = A + (size_t)m0 * lda;
    const int8_t *b0 = B;
    const int8_t *b1 = B + pb;
    const int8_t *b2 = B + 2 * pb;
    for (int k = 0; k < K4; k++) {
        const __m512i w0 = _mm512_loadu_si512(b0 + (size_t)k * 64);
        const __m512i w1 = np > 1 ? _mm512_loadu_si512(b1 + (size_t)k * 64) : w0;
        const __m512i w2 = np > 2 ? _mm512_loadu_si512(b2 + (size_t)k * 64) : w0;
        for (int i = 0; i < mr; i++) {
            int32_t word;
            memcpy(&word, a + (size_t)i * lda + (size_t)k * 4, 4);
            const __m512i x = _mm512_set1_epi32(word);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, w0);
            if (np > 1) acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, w1);
            if (np > 2) acc[i][2] = _mm512_dpbusd_epi32(acc[i][2], x, w2);
        }
    }
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < np; j++) epilogue(acc[i][j], pc, j, C8, C32, (size_t)(m0 + i) * ldc + n0 + 16 * j);
    }
}

#define TILE_CASES(NP)                                                                                           \
    switch (mr) {                                                                                                \
    case 8: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 8, NP, C8, C32, ldc); break;                           \
    case 7: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 7, NP, C8, C32, ldc); break;                           \
    case 6: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 6, NP, C8, C32, ldc); break;                           \
    case 5: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 5, NP, C8, C32, ldc); break;                           \
    case 4: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 4, NP, C8, C32, ldc); break;                           \
    case 3: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 3, NP, C8, C32, ldc); break;                           \
    case 2: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 2, NP, C8, C32, ldc); break;                           \
    default: tile(A, lda, K4, Bp, pb, &pc, n0, m0, 1, NP, C8, C32, ldc); break;                          \
    }

AVX512 void cdk_gemm_avx512vnni(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                                const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                                size_t ldc) {
    const int K4 = CDK_K4(K);
    const size_t pb = cdk_panel_bytes(K);
    const int panels = CDK_PANELS(N);
    // Column blocks outermost keep a 3-panel slice of B hot in L1 while every row block streams past it.
    for (int p = 0; p < panels; p += 3) {
        const int np = panels - p >= 3 ? 3 : panels - p;
        const int n0 = p * CDK_PANEL;
        const int8_t *Bp = B + (size_t)p * pb;
        const Panel pc = make_panel(N, n0, bias, rq);
        const int rows = np == 3 ? MR3 : MR;
        for (int m0 = 0; m0 < M; m0 += rows) {
            const int mr = M - m0 >= rows ? rows : M - m0;
            if (np == 3) {
                TILE_CASES(3)
            } else if (np == 2) {
                TILE_CASES(2)
            } else {
                TILE_CASES(1)
            }
        }
    }
}

/// Implicit-GEMM tile: row i of A is k_h segments of `seg4` 4-byte words at a + i * row_step + ky * seg_stride, and
/// its output goes to out_base + i * ldc. `np` panels of 16 columns; with `half`, the last of them has 8 or fewer
/// valid columns and runs on 256-bit vectors (40 output channels are 2.5 panels: a 512-bit vpdpbusd costs two
/// 256-bit ones on Zen 4, so a sixth of the layer's multiplies would be on zero weights). With `pool` (2 x 2 pooling
/// fused; mr = 4 or 8), rows 4q...4q + 3 are pooled pixel q's (2 x 2 pixels from a + 2q * row_step, one row of the
/// convolution seg_stride below the other), and the largest of their sums is requantised into out_base + q * ldc.
AVX512 static inline __attribute__((always_inline)) void
tile_implicit(const uint8_t *restrict a, size_t row_step, size_t seg_stride, int k_h, int seg4,
              const int8_t *restrict B, size_t pb, const Panel *pc, int n0, size_t out_base, const int mr,
              const int np, const int half, const int pool, uint8_t *restrict C8, size_t ldc) {
    const int full = half ? np - 1 : np;  // panels on 512-bit vectors
    __m512i acc[MR][3];
    __m256i acc_half[MR];
    size_t row_offset[MR];
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < full; j++) acc[i][j] = pc->bias[j];
        if (half) acc_half[i] = _mm512_castsi512_si256(pc->bias[np - 1]);
        row_offset[i] = pool ? (size_t)(2 * (i >> 2) + (i & 1)) * row_step + (size_t)((i >> 1) & 1) * seg_stride
                             : (size_t)i * row_step;
    }
    const int8_t *b[3] = {B, B + pb, B + 2 * pb};
    // One flat loop over all k_h * seg4 steps (a nested loop here makes LLVM keep the accumulators in memory).
    const uint8_t *seg = a;
    int k = 0;
    const int steps = k_h * seg4;
    for (int step = 0; step < steps; step++) {
        __m512i w[3];
        for (int j = 0; j < full; j++) w[j] = _mm512_loadu_si512(b[j]);
        // A panel's first 32 bytes per step are its columns 0-7.
        const __m256i w_half = half ? _mm256_loadu_si256((const __m256i *)b[np - 1]) : _mm256_setzero_si256();
        for (int j = 0; j < np; j++) b[j] += 64;
        for (int i = 0; i < mr; i++) {
            int32_t word;
            memcpy(&word, seg + row_offset[i] + (size_t)k * 4, 4);
            const __m512i x = _mm512_set1_epi32(word);
            for (int j = 0; j < full; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, w[j]);
            if (half) acc_half[i] = _mm256_dpbusd_epi32(acc_half[i], _mm512_castsi512_si256(x), w_half);
        }
        if (++k == seg4) {
            k = 0;
            seg += seg_stride;
        }
    }
    if (pool) {
        for (int q = 0; q < mr / 4; q++) {
            const size_t offset = out_base + (size_t)q * ldc + n0;
            for (int j = 0; j < full; j++) {
                const __m512i most = _mm512_max_epi32(_mm512_max_epi32(acc[4 * q][j], acc[4 * q + 1][j]),
                                                      _mm512_max_epi32(acc[4 * q + 2][j], acc[4 * q + 3][j]));
                epilogue(most, pc, j, C8, NULL, offset + 16 * j);
            }
            if (half) {
                const __m256i most = _mm256_max_epi32(_mm256_max_epi32(acc_half[4 * q], acc_half[4 * q + 1]),
                                                      _mm256_max_epi32(acc_half[4 * q + 2], acc_half[4 * q + 3]));
                epilogue(_mm512_zextsi256_si512(most), pc, np - 1, C8, NULL, offset + 16 * (np - 1));
            }
        }
        return;
    }
    for (int i = 0; i < mr; i++) {
        const size_t offset = out_base + (size_t)i * ldc + n0;
        for (int j = 0; j < full; j++) epilogue(acc[i][j], pc, j, C8, NULL, offset + 16 * j);
        if (half) epilogue(_mm512_zextsi256_si512(acc_half[i]), pc, np - 1, C8, NULL, offset + 16 * (np - 1));
    }
}

#define IMPLICIT_CASES(NP, HALF)                                                                                 \
    switch (mr) {                                                                                                \
    case 8: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 8, NP, HALF, 0, out, ldc); break;    \
    case 7: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 7, NP, HALF, 0, out, ldc); break;    \
    case 6: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 6, NP, HALF, 0, out, ldc); break;    \
    case 5: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 5, NP, HALF, 0, out, ldc); break;    \
    case 4: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 4, NP, HALF, 0, out, ldc); break;    \
    case 3: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 3, NP, HALF, 0, out, ldc); break;    \
    case 2: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 2, NP, HALF, 0, out, ldc); break;    \
    default: tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 1, NP, HALF, 0, out, ldc); break;   \
    }

#define POOLED_CASES(NP, HALF)                                                                                   \
    if (quads == 2) {                                                                                            \
        tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 8, NP, HALF, 1, out, ldc);               \
    } else {                                                                                                     \
        tile_implicit(a, c, in_pitch, k_h, seg4, Bp, pb, &pc, n0, base, 4, NP, HALF, 1, out, ldc);               \
    }

/// CASES(np, half) for the column block at hand, with constant arguments.
#define BY_PANELS(CASES)                                                                                         \
    if (np == 3 && half) {                                                                                       \
        CASES(3, 1)                                                                                              \
    } else if (np == 3) {                                                                                        \
        CASES(3, 0)                                                                                              \
    } else if (np == 2) {                                                                                        \
        CASES(2, 0)                                                                                              \
    } else {                                                                                                     \
        CASES(1, 0)                                                                                              \
    }

/// The convolution, or with `pool` the convolution pooled 2 x 2 (pooled rows `out_pitch` bytes apart).
AVX512 static inline __attribute__((always_inline)) void
conv_implicit(CDK_CONV_POOL2_ARGS, const int pool) {
    const int K = k_h * k_w * c;
    const int seg4 = k_w * c / 4;
    const size_t pb = cdk_panel_bytes(K);
    const int panels = CDK_PANELS(N);
    for (int p = 0; p < panels; p += 3) {
        const int np = panels - p >= 3 ? 3 : panels - p;
        const int n0 = p * CDK_PANEL;
        const int8_t *Bp = B + (size_t)p * pb;
        const Panel pc = make_panel(N, n0, rq->bias, rq);
        // A block of three whose last panel is at most half full (40 channels: 16 + 16 + 8).
        const int half = np == 3 && N - (n0 + 2 * CDK_PANEL) <= 8;
        if (pool) {
            // Tiles of two pooled pixels (8 rows), balanced: 7 pooled columns as 2+2+2+1.
            const int pooled_w = out_w / 2;
            for (int py = 0; py < out_h / 2; py++) {
                for (int px0 = 0; px0 < pooled_w; px0 += 2) {
                    const int quads = pooled_w - px0 >= 2 ? 2 : 1;
                    const uint8_t *a = in + (size_t)(2 * py) * in_pitch + (size_t)(2 * px0) * c;
                    const size_t base = (size_t)py * out_pitch + (size_t)px0 * ldc;
                    BY_PANELS(POOLED_CASES)
                }
            }
            continue;
        }
        // Tiles never cross an output row: rows of one tile are consecutive pixels, c bytes apart.
        for (int oy = 0; oy < out_h; oy++) {
            // Balanced tiles: 14 columns as 5+5+4 rather than 6+6+2 (a 2-row tile cannot hide its weight loads).
            // (With a half panel 7 rows would fit the registers; measured, they run no faster than 6.)
            const int most = np == 3 ? MR3 : MR;
            const int tiles = (out_w + most - 1) / most;
            const int rows = (out_w + tiles - 1) / tiles;
            for (int ox0 = 0; ox0 < out_w; ox0 += rows) {
                const int mr = out_w - ox0 >= rows ? rows : out_w - ox0;
                const uint8_t *a = in + (size_t)oy * in_pitch + (size_t)ox0 * c;
                const size_t base = ((size_t)oy * out_w + ox0) * ldc;
                BY_PANELS(IMPLICIT_CASES)
            }
        }
    }
}

AVX512 void cdk_conv_implicit_avx512vnni(CDK_CONV_IMPLICIT_ARGS) {
    conv_implicit(in, in_pitch, c, k_h, k_w, out_h, out_w, B, N, rq, out, ldc, 0, 0);
}

AVX512 void cdk_conv_pool2_avx512vnni(CDK_CONV_POOL2_ARGS) {
    conv_implicit(in, in_pitch, c, k_h, k_w, out_h, out_w, B, N, rq, out, ldc, out_pitch, 1);
}
#endif

// AVX2 GEMM and implicit-GEMM convolution for CPUs without VNNI, exact at full int8 rate.
//
// vpmaddubsw multiplies u8 by s8 and adds pairs into int16 with saturation: u8 activations times full-range
// weights (255 * 127 * 2) would saturate, which is what onnxruntime's AVX2 kernels do. Here the activations are
// shifted to int8 (a' = a ^ 0x80 = a - 128) and the sign is moved onto the weights:
//     a' * w = |a'| * sign(w, a')
// with |a'| <= 128 as the unsigned operand and sign(w, a') in [-127, 127] as the signed one, so each pair sum is
// at most 2 * 128 * 127 = 32512 and nothing saturates. 128 * sum(w) per column (the packed trailer) adds back what
// the shift took away. Weights of -128 would break the sign step; such a matrix runs on the reference kernels.
//
// Weights quantised with a reduced range ([-64, 64], onnxruntime's `reduce_range` for this very reason) need none of
// this: 2 * 255 * 64 = 32640 fits int16, so vpmaddubsw takes the activations as they are (`direct`: one broadcast
// and no vpsignb per step, no shifted copy), measured 1.5 times as fast on the model's layers.
//
// The activations a GEMM or convolution reads are first rewritten once, as a' and |a'|, into a per-thread buffer
// (they are read many times: once per 16-column panel, and by up to k_h * k_w output pixels), so a step of 4 k
// costs two broadcast loads per row and vpsignb, vpmaddubsw, vpmaddwd (by ones) and vpaddd per 8 columns: two
// multiplies per 32 MACs, as many as the saturating form. Tiles are MR rows by one 16-column panel: 2 * MR
// accumulators, 2 weight vectors and the constants fit the 16 ymm registers.
#include "internal.h"

#if defined(__x86_64__)
#include "requant_avx2.h"
#include <immintrin.h>
#include <stdlib.h>

#define AVX2 __attribute__((target("avx2")))
#define MR 4
#define GP 4  // panels a GEMM of one row takes at a time

/// The thread's buffer for shifted activations: `len` bytes of a' then `len` bytes of |a'|. It only grows (to the
/// largest input a thread has seen, a few hundred KiB for batched dense layers) and is never freed.
static _Thread_local cdk_thread_buffer shift_buffer;

/// Writes a' = a ^ 0x80 and |a'| for `len` bytes of `src`; returns the a' copy (|a'| follows it at + len), or NULL
/// when memory runs out.
AVX2 static uint8_t *shift_activations(const uint8_t *src, size_t len) {
    uint8_t *shifted = cdk_thread_buffer_reserve(&shift_buffer, 2 * len + 32);
    if (!shifted) return NULL;
    uint8_t *magnitude = shifted + len;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        const __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), flip);
        _mm256_storeu_si256((__m256i *)(shifted + i), v);
        _mm256_storeu_si256((__m256i *)(magnitude + i), _mm256_abs_epi8(v));
    }
    for (; i < len; i++) {
        const int8_t v = (int8_t)(src[i] ^ 0x80);
        shifted[i] = (uint8_t)v;
        magnitude[i] = (uint8_t)(v < 0 ? -v : v);  // -(-128) is 128 as a byte, which is what vpabsb gives
    }
    return shifted;
}

/// The epilogue constants of one 16-column panel, loaded once per panel rather than once per row.
typedef struct {
    __m256i bias[2];  // bias + shift correction
    __m256 scale[2];
    cdk_requant_bounds bounds;
    int count;  // valid columns (1...16)
} Panel;

AVX2 static Panel make_panel(int N, int n0, const int32_t *bias, const int32_t *correction,
                             const CDoodleKernels_Requant *rq) {
    Panel pc;
    int32_t b[CDK_PANEL];
    float s[CDK_PANEL];
    pc.count = cdk_panel_constants(N, n0, bias, correction, rq, b, s);
    for (int j = 0; j < 2; j++) {
        pc.bias[j] = _mm256_loadu_si256((const __m256i *)(b + 8 * j));
        pc.scale[j] = _mm256_loadu_ps(s + 8 * j);
    }
    pc.bounds = cdk_requant_bounds_of(rq);
    return pc;
}

/// Stores a half panel's 8 columns (count <= 8): one requantisation instead of two.
AVX2 static inline __attribute__((always_inline)) void
epilogue_half(__m256i acc0, const Panel *pc, uint8_t *restrict C8, int32_t *restrict C32, size_t offset) {
    if (C8) {
        const __m128i bytes = cdk_bytes_of_avx2(cdk_requant_avx2(acc0, pc->scale[0], &pc->bounds));
        if (pc->count == 8) {
            _mm_storel_epi64((__m128i *)(C8 + offset), bytes);
        } else {
            uint8_t tmp[16];
            _mm_storeu_si128((__m128i *)tmp, bytes);
            memcpy(C8 + offset, tmp, (size_t)pc->count);
        }
    } else if (pc->count == 8) {
        _mm256_storeu_si256((__m256i *)(C32 + offset), acc0);
    } else {
        int32_t tmp[8];
        _mm256_storeu_si256((__m256i *)tmp, acc0);
        memcpy(C32 + offset, tmp, (size_t)pc->count * sizeof(int32_t));
    }
}

AVX2 static inline __attribute__((always_inline)) void
epilogue(__m256i acc0, __m256i acc1, const Panel *pc, uint8_t *restrict C8, int32_t *restrict C32, size_t offset) {
    if (C8) {
        const __m256i q16 = _mm256_packs_epi32(cdk_requant_avx2(acc0, pc->scale[0], &pc->bounds),
                                               cdk_requant_avx2(acc1, pc->scale[1], &pc->bounds));
        const __m256i q8 = _mm256_packus_epi16(q16, q16);
        // Lane 0 holds columns 0-3 and 8-11, lane 1 columns 4-7 and 12-15.
        const __m128i bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(q8), _mm256_extracti128_si256(q8, 1));
        if (pc->count == CDK_PANEL) {
            _mm_storeu_si128((__m128i *)(C8 + offset), bytes);
        } else {
            uint8_t tmp[CDK_PANEL];
            _mm_storeu_si128((__m128i *)tmp, bytes);
            memcpy(C8 + offset, tmp, (size_t)pc->count);
        }
    } else if (pc->count == CDK_PANEL) {
        _mm256_storeu_si256((__m256i *)(C32 + offset), acc0);
        _mm256_storeu_si256((__m256i *)(C32 + offset + 8), acc1);
    } else {
        int32_t tmp[CDK_PANEL];
        _mm256_storeu_si256((__m256i *)tmp, acc0);
        _mm256_storeu_si256((__m256i *)(tmp + 8), acc1);
        memcpy(C32 + offset, tmp, (size_t)pc->count * sizeof(int32_t));
    }
}

/// One tile: `mr` (<= MR) consecutive rows from p0 by one panel, or by its first 8 columns when `half` (a last
/// panel with 8 or fewer valid columns: 40 output channels are 2.5 panels, not 3). Constant `mr`, `half`, `direct`,
/// `pool` and `one_group` unroll it. `rows` point into the a' copy, |a'| `len` bytes further on; with `direct`
/// (weights in [-64, 64]) into the activations as they are. With `pool` (2 x 2 pooling fused, mr = 4), the tile is
/// pooled pixel (p0, px)'s four rows, and their largest sums are requantised and stored as one output row.
/// `one_group` says the rows are 3 segments of one 4-byte group (k_h = 3, seg4 = 1).
AVX2 static inline __attribute__((always_inline)) void
tile(const cdk_rows *r, cdk_row_cursor *cursor, size_t len, size_t p0, size_t px, const int mr, const int half,
     const int direct, const int pool, const int one_group, const int8_t *restrict B, const Panel *pc, int n0,
     uint8_t *restrict C8, int32_t *restrict C32, size_t ldc) {
    const uint8_t *rows[MR];
    __m256i acc[MR][2];
    const size_t pooled_offset = pool ? cdk_quad(r, p0, px, ldc, rows) : 0;
    for (int i = 0; i < mr; i++) {
        if (!pool) rows[i] = cdk_row_cursor_next(cursor);
        acc[i][0] = pc->bias[0];
        acc[i][1] = pc->bias[1];
    }
    const __m256i ones = _mm256_set1_epi16(1);
    const int seg4 = one_group ? 1 : r->seg4;
    const size_t skip = r->seg_stride - (size_t)seg4 * 4;  // from one segment's end to the next one's start
    size_t off = 0;
    int k = 0;
    // One flat loop over all k_h * seg4 steps (a nested loop makes LLVM keep the accumulators in memory); with
    // `one_group` (the image's convolution: 3 rows of one 4-byte group) 3 steps, unrolled.
    const int steps = one_group ? 3 : r->k_h * seg4;
    for (int step = 0; step < steps; step++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)B);
        const __m256i w1 = half ? w0 : _mm256_loadu_si256((const __m256i *)(B + 32));
        B += 64;
        // Two loops, one of which `direct` removes: one loop with the choice inside measured 4-6 % slower.
        for (int i = 0; i < mr && direct; i++) {
            int32_t word;
            memcpy(&word, rows[i] + off, 4);
            const __m256i a = _mm256_set1_epi32(word);
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(a, w0), ones));
            if (!half) acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(a, w1), ones));
        }
        for (int i = 0; i < mr && !direct; i++) {
            int32_t word, size;
            memcpy(&word, rows[i] + off, 4);
            memcpy(&size, rows[i] + len + off, 4);
            const __m256i shifted = _mm256_set1_epi32(word);
            const __m256i magnitude = _mm256_set1_epi32(size);
            acc[i][0] = _mm256_add_epi32(
                acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w0, shifted)), ones));
            if (!half) {
                acc[i][1] = _mm256_add_epi32(
                    acc[i][1],
                    _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w1, shifted)), ones));
            }
        }
        off += 4;
        if (++k == seg4) {
            k = 0;
            off += skip;
        }
    }
    if (pool) {
        for (int j = 0; j < 2; j++) {
            acc[0][j] =
                _mm256_max_epi32(_mm256_max_epi32(acc[0][j], acc[1][j]), _mm256_max_epi32(acc[2][j], acc[3][j]));
        }
        if (half) {
            epilogue_half(acc[0][0], pc, C8, C32, pooled_offset + (size_t)n0);
        } else {
            epilogue(acc[0][0], acc[0][1], pc, C8, C32, pooled_offset + (size_t)n0);
        }
        return;
    }
    for (int i = 0; i < mr; i++) {
        const size_t offset = (p0 + (size_t)i) * ldc + (size_t)n0;
        if (half) {
            epilogue_half(acc[i][0], pc, C8, C32, offset);
        } else {
            epilogue(acc[i][0], acc[i][1], pc, C8, C32, offset);
        }
    }
}

/// Every row of one panel (with `r->pool_w`, every pooled pixel: M of them): `half` and `direct` as in tile.
AVX2 static inline __attribute__((always_inline)) void
panel_rows(const cdk_rows *r, size_t M, size_t len, const int half, const int direct, const int8_t *restrict Bp,
           const Panel *pc, int n0, uint8_t *restrict C8, int32_t *restrict C32, size_t ldc) {
    cdk_row_cursor cursor = cdk_row_cursor_start(r);
    if (r->pool_w) {
        const size_t pool_w = (size_t)r->pool_w, pool_h = M / pool_w;
        // The image's convolution (3 x 4 taps of one channel) has 3 steps a tile, unrolled there (measured 1.13x).
        const int one_group = r->k_h == 3 && r->seg4 == 1;
        for (size_t py = 0; py < pool_h; py++) {
            for (size_t px = 0; px < pool_w; px++) {
                if (one_group) {
                    tile(r, &cursor, len, py, px, 4, half, direct, 1, 1, Bp, pc, n0, C8, C32, ldc);
                } else {
                    tile(r, &cursor, len, py, px, 4, half, direct, 1, 0, Bp, pc, n0, C8, C32, ldc);
                }
            }
        }
        return;
    }
    size_t m0 = 0;
    for (; m0 + MR <= M; m0 += MR) tile(r, &cursor, len, m0, 0, MR, half, direct, 0, 0, Bp, pc, n0, C8, C32, ldc);
    switch (M - m0) {
    case 3: tile(r, &cursor, len, m0, 0, 3, half, direct, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    case 2: tile(r, &cursor, len, m0, 0, 2, half, direct, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    case 1: tile(r, &cursor, len, m0, 0, 1, half, direct, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    default: break;
    }
}

/// One row of a GEMM (K in `steps` steps of 4) against GP full panels from B: 2 * GP accumulators. A GEMM of one
/// row (one image) has nothing to reuse a panel's weights for, so its cost is a step's own work: here the row's two
/// broadcasts and the loop's bookkeeping serve GP panels instead of one (measured 1.3-2 x on the model's dense
/// layers). With 2 or 3 rows the panel-outer order reads each weight once for all of them, which this would not.
/// `direct` as in tile.
AVX2 static inline __attribute__((always_inline)) void
row_panel_group(const uint8_t *row, size_t len, int steps, const int direct, const int8_t *B, size_t pb,
                const Panel pc[GP], uint8_t *restrict C8, int32_t *restrict C32, size_t offset) {
    __m256i acc[GP][2];
    for (int q = 0; q < GP; q++) {
        acc[q][0] = pc[q].bias[0];
        acc[q][1] = pc[q].bias[1];
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int step = 0; step < steps; step++) {
        const size_t off = (size_t)step * 4;
        int32_t word, size;
        memcpy(&word, row + off, 4);
        const __m256i shifted = _mm256_set1_epi32(word);
        __m256i magnitude = shifted;
        if (!direct) {
            memcpy(&size, row + len + off, 4);
            magnitude = _mm256_set1_epi32(size);
        }
        for (int q = 0; q < GP; q++) {
            const int8_t *w = B + (size_t)q * pb + (size_t)step * 64;
            for (int j = 0; j < 2; j++) {
                const __m256i wj = _mm256_loadu_si256((const __m256i *)(w + 32 * j));
                const __m256i signed_w = direct ? wj : _mm256_sign_epi8(wj, shifted);
                acc[q][j] = _mm256_add_epi32(acc[q][j], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, signed_w), ones));
            }
        }
    }
    for (int q = 0; q < GP; q++) epilogue(acc[q][0], acc[q][1], &pc[q], C8, C32, offset + (size_t)q * CDK_PANEL);
}

/// Every panel over rows `r`; `direct` as in tile. Panels outermost keep one panel of B hot in L1 while every row
/// streams past it. A GEMM of one row takes its full panels GP at a time (row_panel_group).
AVX2 static inline __attribute__((always_inline)) void
all_panels(const cdk_rows *r, size_t M, size_t len, const int direct, int K, int N, const int8_t *B,
           const int32_t *correction, const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8,
           int32_t *C32, size_t ldc) {
    const size_t pb = cdk_panel_bytes(K);
    int grouped = 0;
    if (M == 1 && r->k_h == 1 && !r->pool_w && r->seg_stride == (size_t)r->seg4 * 4) {
        grouped = N / CDK_PANEL / GP * GP;
        for (int p = 0; p < grouped; p += GP) {
            Panel pcs[GP];
            for (int q = 0; q < GP; q++) pcs[q] = make_panel(N, (p + q) * CDK_PANEL, bias, correction, rq);
            row_panel_group(r->in, len, r->seg4, direct, B + (size_t)p * pb, pb, pcs, C8, C32, (size_t)p * CDK_PANEL);
        }
    }
    for (int p = grouped; p < CDK_PANELS(N); p++) {
        const int n0 = p * CDK_PANEL;
        const Panel pc = make_panel(N, n0, bias, correction, rq);
        const int8_t *Bp = B + (size_t)p * pb;
        if (pc.count <= 8) {
            panel_rows(r, M, len, 1, direct, Bp, &pc, n0, C8, C32, ldc);
        } else {
            panel_rows(r, M, len, 0, direct, Bp, &pc, n0, C8, C32, ldc);
        }
    }
}

/// Runs the GEMM over rows `r` (M rows, or M pooled pixels): on the activations as they are when the weights fit 7
/// bits, else on their shifted copy; false if there was no memory for that copy.
AVX2 static int run(const cdk_rows *src, size_t M, int K, int N, const int8_t *B, const CDoodleKernels_Requant *rq,
                    const int32_t *bias, uint8_t *C8, int32_t *C32, size_t ldc) {
    // Bytes the rows read: from the first row's start to the last row's last segment's end (the last pooled
    // pixel's last row is its bottom right one).
    const size_t last = M - 1;
    const size_t last_y = src->pool_w ? 2 * (last / (size_t)src->pool_w) + 1 : last / (size_t)src->out_w;
    const size_t last_x = src->pool_w ? 2 * (last % (size_t)src->pool_w) + 1 : last % (size_t)src->out_w;
    const size_t len = last_y * src->in_pitch + last_x * src->c + (size_t)(src->k_h - 1) * src->seg_stride +
                       (size_t)src->seg4 * 4;
    if (cdk_fits_7_bits(B, K, N)) {
        all_panels(src, M, len, 1, K, N, B, NULL, rq, bias, C8, C32, ldc);
        return 1;
    }
    uint8_t *shifted = shift_activations(src->in, len);
    if (!shifted) return 0;
    cdk_rows shifted_rows = *src;
    shifted_rows.in = shifted;
    all_panels(&shifted_rows, M, len, 0, K, N, B, cdk_shift_correction(B, K, N), rq, bias, C8, C32, ldc);
    return 1;
}

AVX2 void cdk_gemm_avx2(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                        const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                        size_t ldc) {
    const cdk_rows r = {.in = A, .in_pitch = lda, .c = 0, .seg_stride = (size_t)CDK_K4(K) * 4, .k_h = 1,
                        .seg4 = CDK_K4(K), .out_w = 1};
    if (M <= 0) return;
    if (cdk_has_minus_128(B, K, N) || !run(&r, (size_t)M, K, N, B, rq, bias, C8, C32, ldc)) {
        cdk_gemm_reference(A, lda, M, K, N, B, rq, bias, C8, C32, ldc);
    }
}

AVX2 void cdk_conv_implicit_avx2(CDK_CONV_IMPLICIT_ARGS) {
    const int K = k_h * k_w * c;
    const cdk_rows r = {.in = in, .in_pitch = in_pitch, .c = (size_t)c, .seg_stride = in_pitch, .k_h = k_h,
                        .seg4 = k_w * c / 4, .out_w = out_w};
    if (out_h <= 0 || out_w <= 0) return;
    if (cdk_has_minus_128(B, K, N) || !run(&r, (size_t)out_h * (size_t)out_w, K, N, B, rq, rq->bias, out, NULL, ldc)) {
        cdk_conv_implicit_reference(in, in_pitch, c, k_h, k_w, out_h, out_w, B, N, rq, out, ldc);
    }
}
AVX2 void cdk_conv_pool2_avx2(CDK_CONV_POOL2_ARGS) {
    const int K = k_h * k_w * c;
    const cdk_rows r = {.in = in, .in_pitch = in_pitch, .c = (size_t)c, .seg_stride = in_pitch, .k_h = k_h,
                        .seg4 = k_w * c / 4, .out_w = out_w, .pool_w = out_w / 2, .out_pitch = out_pitch};
    if (out_h < 2 || out_w < 2) return;
    if (cdk_has_minus_128(B, K, N) ||
        !run(&r, (size_t)(out_h / 2) * (size_t)(out_w / 2), K, N, B, rq, rq->bias, out, NULL, ldc)) {
        cdk_conv_pool2_reference(in, in_pitch, c, k_h, k_w, out_h, out_w, B, N, rq, out, ldc, out_pitch);
    }
}
#endif

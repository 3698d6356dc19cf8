// ARM64 NEON GEMM and implicit-GEMM convolution, exact, in two forms chosen at run time:
//   - dotprod (ARMv8.2 sdot, s8 x s8 -> s32): activations shifted to int8 (a ^ 0x80 = a - 128) and 128 * sum(w)
//     per column (the packed trailer) added back, so sum (a - 128) * w + 128 * sum(w) = sum a * w exactly;
//   - i8mm (ARMv8.6 usmmla, u8 x s8 -> s32 in 2 x 2 blocks): the activations as they are, weights packed in column
//     pairs (below).
// Both accumulate in int32 without intermediate narrowing. dotprod's tiles are MR rows by one 16-column panel:
// 4 * MR accumulators, the 4 weight vectors of a step and MR rows of 16 activation bytes (four steps' worth, taken by
// element) in the 32 vector registers. Counted under qemu (clang -O2, the model's conv2), four steps per load ran
// 238,345 instructions where one broadcast per step ran 440,461 (sdot alone: 141,120).
#include "internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/// Fully unrolls the loop that follows (over a tile's rows or 4-column vectors), so that the accumulators stay in
/// registers.
#define CDK_UNROLL _Pragma("GCC unroll 8")

#define MR 5
#define DOTPROD_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#define I8MM_TARGET __attribute__((target("arch=armv8.6-a+i8mm")))

/// The epilogue constants of one 16-column panel.
typedef struct {
    int32x4_t bias[4];  // bias (+ shift correction for dotprod)
    float32x4_t scale[4];
    float32x4_t lo, hi;
    int32x4_t zp;
    int count;  // valid columns (1...16)
} Panel;

static Panel make_panel(int N, int n0, const int32_t *bias, const int32_t *correction,
                        const CDoodleKernels_Requant *rq) {
    Panel pc;
    int32_t b[CDK_PANEL];
    float s[CDK_PANEL];
    pc.count = cdk_panel_constants(N, n0, bias, correction, rq, b, s);
    for (int j = 0; j < 4; j++) {
        pc.bias[j] = vld1q_s32(b + 4 * j);
        pc.scale[j] = vld1q_f32(s + 4 * j);
    }
    pc.lo = vdupq_n_f32(rq ? (float)(rq->lo - rq->zero_point) : 0.0f);
    pc.hi = vdupq_n_f32(rq ? (float)(rq->hi - rq->zero_point) : 0.0f);
    pc.zp = vdupq_n_s32(rq ? rq->zero_point : 0);
    return pc;
}

/// Requantises like cdk_requant: multiply in float, clamp, round to nearest even (fcvtns), add the zero point.
static inline __attribute__((always_inline)) int32x4_t requant(int32x4_t acc, float32x4_t scale, const Panel *pc) {
    float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc), scale);
    v = vminq_f32(vmaxq_f32(v, pc->lo), pc->hi);
    return vaddq_s32(vcvtnq_s32_f32(v), pc->zp);
}

/// Stores one row of a panel whose first `nv` (constant) 4-column vectors hold its valid columns.
static inline __attribute__((always_inline)) void epilogue(const int32x4_t acc[4], const int nv, const Panel *pc,
                                                          uint8_t *restrict C8, int32_t *restrict C32,
                                                          size_t offset) {
    if (C8) {
        int32x4_t q[4];
        for (int j = 0; j < 4; j++) q[j] = j < nv ? requant(acc[j], pc->scale[j], pc) : vdupq_n_s32(0);
        const uint16x8_t lo = vcombine_u16(vqmovun_s32(q[0]), vqmovun_s32(q[1]));
        const uint16x8_t hi = vcombine_u16(vqmovun_s32(q[2]), vqmovun_s32(q[3]));
        const uint8x16_t bytes = vcombine_u8(vqmovn_u16(lo), vqmovn_u16(hi));
        if (pc->count == CDK_PANEL) {
            vst1q_u8(C8 + offset, bytes);
        } else {
            uint8_t tmp[CDK_PANEL];
            vst1q_u8(tmp, bytes);
            memcpy(C8 + offset, tmp, (size_t)pc->count);
        }
    } else {
        int32_t tmp[CDK_PANEL];
        for (int j = 0; j < nv; j++) vst1q_s32(tmp + 4 * j, acc[j]);
        memcpy(C32 + offset, tmp, (size_t)pc->count * sizeof(int32_t));
    }
}

/// The 4-byte group at `p` in every 32-bit lane.
static inline __attribute__((always_inline)) uint8x16_t broadcast_word(const uint8_t *p) {
    uint32_t word;
    memcpy(&word, p, 4);
    return vreinterpretq_u8_u32(vdupq_n_u32(word));
}

/// One step of four in a tile's 16-byte loop: the step's weights, then every row's group `LANE` against them.
#define NEON_STEP_LANE(DOT, LANE)                                                                                  \
    {                                                                                                              \
        int8x16_t w[4];                                                                                            \
        CDK_UNROLL for (int j = 0; j < nv; j++) w[j] = vld1q_s8(B + 16 * j);                                       \
        B += 64;                                                                                                   \
        CDK_UNROLL for (int i = 0; i < mr; i++)                                                                    \
            CDK_UNROLL for (int j = 0; j < nv; j++) acc[i][j] = DOT(acc[i][j], w[j], x[i], LANE);                  \
    }

/// One variant: NAME_tile, NAME_run, cdk_gemm_NAME, cdk_conv_implicit_NAME and cdk_conv_pool2_NAME (2 x 2 pooling
/// fused: a tile is then one pooled pixel's four rows, whose largest sums are requantised once). A tile computes
/// the first `nv` (constant) of its panel's four 4-column vectors: 2 for a last panel of 8 or fewer valid columns
/// (40 output channels are 2.5 panels, not 3), else 4. LOAD16(row, off) loads 16 activation bytes (four 4-byte groups,
/// as the dot product wants them: dotprod's shifted to int8), LOAD4 one group in every lane, and DOT(acc, w, x, lane)
/// accumulates the dot products of the weights w with group `lane` of x. Four steps share one 16-byte load per row (the
/// by-element dot products of XNNPACK's and ruy's ld128 kernels) where a segment has four groups left; the rest, one
/// group per step. SHIFTED says whether the trailer's correction is added. A pooled tile is pooled pixel (p0, px);
/// `one_group` (constant) says its rows are 3 segments of one 4-byte group (k_h = 3, seg4 = 1), so the steps unroll.
#define NEON_VARIANT(NAME, TARGET, XTYPE, LOAD16, LOAD4, DOT, SHIFTED)                                             \
    TARGET static inline __attribute__((always_inline)) void NAME##_tile(                                          \
        const cdk_rows *r, cdk_row_cursor *cursor, size_t p0, size_t px, const int mr, const int nv,               \
        const int pool, const int one_group, const int8_t *restrict B, const Panel *pc, int n0,                    \
        uint8_t *restrict C8, int32_t *restrict C32, size_t ldc) {                                                 \
        const uint8_t *rows[MR];                                                                                   \
        int32x4_t acc[MR][4];                                                                                      \
        const size_t pooled_offset = pool ? cdk_quad(r, p0, px, ldc, rows) : 0;                                    \
        CDK_UNROLL for (int i = 0; i < mr; i++) {                                                                  \
            if (!pool) rows[i] = cdk_row_cursor_next(cursor);                                                      \
            CDK_UNROLL for (int j = 0; j < 4; j++) acc[i][j] = pc->bias[j];                                        \
        }                                                                                                          \
        const int seg4 = one_group ? 1 : r->seg4, k_h = one_group ? 3 : r->k_h;                                    \
        const size_t skip = r->seg_stride - (size_t)seg4 * 4;                                                      \
        size_t off = 0;                                                                                            \
        for (int kh = 0; kh < k_h; kh++) {                                                                         \
            int k = 0;                                                                                             \
            for (; k + 4 <= seg4; k += 4) {                                                                        \
                XTYPE x[MR];                                                                                       \
                CDK_UNROLL for (int i = 0; i < mr; i++) x[i] = LOAD16(rows[i] + off);                              \
                NEON_STEP_LANE(DOT, 0) NEON_STEP_LANE(DOT, 1) NEON_STEP_LANE(DOT, 2) NEON_STEP_LANE(DOT, 3)        \
                off += 16;                                                                                         \
            }                                                                                                      \
            for (; k < seg4; k++) {                                                                                \
                int8x16_t w[4];                                                                                    \
                CDK_UNROLL for (int j = 0; j < nv; j++) w[j] = vld1q_s8(B + 16 * j);                               \
                B += 64;                                                                                           \
                CDK_UNROLL for (int i = 0; i < mr; i++) {                                                          \
                    const XTYPE x = LOAD4(rows[i] + off);                                                          \
                    CDK_UNROLL for (int j = 0; j < nv; j++) acc[i][j] = DOT(acc[i][j], w[j], x, 0);                \
                }                                                                                                  \
                off += 4;                                                                                          \
            }                                                                                                      \
            off += skip;                                                                                           \
        }                                                                                                          \
        if (pool) {                                                                                                \
            CDK_UNROLL for (int j = 0; j < nv; j++)                                                                \
                acc[0][j] = vmaxq_s32(vmaxq_s32(acc[0][j], acc[1][j]), vmaxq_s32(acc[2][j], acc[3][j]));           \
            epilogue(acc[0], nv, pc, C8, C32, pooled_offset + (size_t)n0);                                         \
            return;                                                                                                \
        }                                                                                                          \
        CDK_UNROLL for (int i = 0; i < mr; i++)                                                                    \
            epilogue(acc[i], nv, pc, C8, C32, (p0 + (size_t)i) * ldc + (size_t)n0);                                \
    }                                                                                                              \
                                                                                                                   \
    TARGET static inline __attribute__((always_inline)) void NAME##_panel_rows(                                    \
        const cdk_rows *r, size_t M, const int nv, const int8_t *restrict Bp, const Panel *pc, int n0,             \
        uint8_t *restrict C8, int32_t *restrict C32, size_t ldc) {                                                 \
        cdk_row_cursor cursor = cdk_row_cursor_start(r);                                                           \
        if (r->pool_w) {                                                                                           \
            /* The image's convolution, 3 rows of one 4-byte group, with its 3 steps unrolled. (A division per     \
               pooled pixel: counted under qemu, row and column counters ran more instructions.) */                \
            const int one_group = r->k_h == 3 && r->seg4 == 1;                                                     \
            for (size_t q = 0; q < M; q++) {                                                                       \
                const size_t py = q / (size_t)r->pool_w, px = q % (size_t)r->pool_w;                               \
                if (one_group) {                                                                                   \
                    NAME##_tile(r, &cursor, py, px, 4, nv, 1, 1, Bp, pc, n0, C8, C32, ldc);                        \
                } else {                                                                                           \
                    NAME##_tile(r, &cursor, py, px, 4, nv, 1, 0, Bp, pc, n0, C8, C32, ldc);                        \
                }                                                                                                  \
            }                                                                                                      \
            return;                                                                                                \
        }                                                                                                          \
        size_t m0 = 0;                                                                                             \
        for (; m0 + MR <= M; m0 += MR) NAME##_tile(r, &cursor, m0, 0, MR, nv, 0, 0, Bp, pc, n0, C8, C32, ldc);     \
        switch (M - m0) {                                                                                          \
        case 4: NAME##_tile(r, &cursor, m0, 0, 4, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;                      \
        case 3: NAME##_tile(r, &cursor, m0, 0, 3, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;                      \
        case 2: NAME##_tile(r, &cursor, m0, 0, 2, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;                      \
        case 1: NAME##_tile(r, &cursor, m0, 0, 1, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;                      \
        default: break;                                                                                            \
        }                                                                                                          \
    }                                                                                                              \
                                                                                                                   \
    TARGET static void NAME##_run(const cdk_rows *r, size_t M, int K, int N, const int8_t *B,                      \
                                  const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8,              \
                                  int32_t *C32, size_t ldc) {                                                      \
        const size_t pb = cdk_panel_bytes(K);                                                                      \
        const int32_t *correction = SHIFTED ? cdk_shift_correction(B, K, N) : NULL;                                \
        for (int p = 0; p < CDK_PANELS(N); p++) {                                                                  \
            const int n0 = p * CDK_PANEL;                                                                          \
            const Panel pc = make_panel(N, n0, bias, correction, rq);                                              \
            const int8_t *Bp = B + (size_t)p * pb;                                                                 \
            if (pc.count <= 8) {                                                                                   \
                NAME##_panel_rows(r, M, 2, Bp, &pc, n0, C8, C32, ldc);                                             \
            } else {                                                                                               \
                NAME##_panel_rows(r, M, 4, Bp, &pc, n0, C8, C32, ldc);                                             \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
                                                                                                                   \
    void cdk_gemm_##NAME(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,                       \
                         const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,         \
                         size_t ldc) {                                                                             \
        const cdk_rows r = {.in = A, .in_pitch = lda, .c = 0, .seg_stride = (size_t)CDK_K4(K) * 4, .k_h = 1,       \
                            .seg4 = CDK_K4(K), .out_w = 1};                                                        \
        NAME##_run(&r, (size_t)M, K, N, B, rq, bias, C8, C32, ldc);                                                \
    }                                                                                                              \
                                                                                                                   \
    void cdk_conv_implicit_##NAME(CDK_CONV_IMPLICIT_ARGS) {                                                        \
        const cdk_rows r = {.in = in, .in_pitch = in_pitch, .c = (size_t)c, .seg_stride = in_pitch, .k_h = k_h,    \
                            .seg4 = k_w * c / 4, .out_w = out_w};                                                  \
        NAME##_run(&r, (size_t)out_h * (size_t)out_w, k_h * k_w * c, N, B, rq, rq->bias, out, NULL, ldc);          \
    }                                                                                                              \
                                                                                                                   \
    void cdk_conv_pool2_##NAME(CDK_CONV_POOL2_ARGS) {                                                              \
        const cdk_rows r = {.in = in, .in_pitch = in_pitch, .c = (size_t)c, .seg_stride = in_pitch, .k_h = k_h,    \
                            .seg4 = k_w * c / 4, .out_w = out_w, .pool_w = out_w / 2, .out_pitch = out_pitch};     \
        if (out_h < 2 || out_w < 2) return;                                                                        \
        NAME##_run(&r, (size_t)(out_h / 2) * (size_t)(out_w / 2), k_h * k_w * c, N, B, rq, rq->bias, out, NULL,    \
                   ldc);                                                                                           \
    }

// dotprod: activations shifted to int8 once per load (a ^ 0x80 = a - 128), sdot by element.
DOTPROD_TARGET static inline __attribute__((always_inline)) int8x16_t load16_shifted(const uint8_t *p) {
    return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)));
}
DOTPROD_TARGET static inline __attribute__((always_inline)) int8x16_t load4_shifted(const uint8_t *p) {
    return vreinterpretq_s8_u8(veorq_u8(broadcast_word(p), vdupq_n_u8(0x80)));
}
#define DOT_SHIFTED(acc, w, x, lane) vdotq_laneq_s32(acc, w, x, lane)

NEON_VARIANT(neon_dotprod, DOTPROD_TARGET, int8x16_t, load16_shifted, load4_shifted, DOT_SHIFTED, 1)

// i8mm: usmmla (u8 x s8 -> s32, the activations as they are). One instruction multiplies a 2 x 8 block of
// activations (two rows' next 8 bytes) by a 2 x 8 block of weights (two columns' next 8 bytes) into a 2 x 2 block
// of sums: 32 multiply-adds where sdot and sudot do 16. Weights are packed in column pairs for it
// (cdk_pair_panel_bytes: [K/8][16 columns][8 k], a last odd 4-byte group padded with zeros), so each 16-byte load
// is one pair. A tile is up to I8MM_PAIRS pairs of rows by one 16-column panel (8 column pairs): 24 accumulators,
// each [row 0 col 0, row 0 col 1, row 1 col 0, row 1 col 1], unzipped to rows of 4-column vectors at the end.

#define I8MM_PAIRS 3

/// The bias of column pair `cp` (columns 2cp and 2cp + 1) as a 2 x 2 block: [b0, b1, b0, b1].
static inline __attribute__((always_inline)) int32x4_t pair_bias(const Panel *pc, int cp) {
    const int32x4_t b = pc->bias[cp / 2];
    const int32x2_t half = cp % 2 ? vget_high_s32(b) : vget_low_s32(b);
    return vcombine_s32(half, half);
}

/// Row 0 (`upper` = 0) or row 1 of 2 x 2 blocks `a` (columns 4j, 4j + 1) and `b` (4j + 2, 4j + 3): one 4-column vector.
static inline __attribute__((always_inline)) int32x4_t pair_row(int32x4_t a, int32x4_t b, int upper) {
    const int64x2_t x = vreinterpretq_s64_s32(a), y = vreinterpretq_s64_s32(b);
    return vreinterpretq_s32_s64(upper ? vzip2q_s64(x, y) : vzip1q_s64(x, y));
}

/// Two rows' 4-byte groups at offsets `o1` and `o2` as one 2 x 8 block: [lo + o1, lo + o2, hi + o1, hi + o2].
static inline __attribute__((always_inline)) uint8x16_t gather_words(const uint8_t *lo, const uint8_t *hi,
                                                                      size_t o1, size_t o2) {
    uint32_t w[4];
    memcpy(w + 0, lo + o1, 4);
    memcpy(w + 1, lo + o2, 4);
    memcpy(w + 2, hi + o1, 4);
    memcpy(w + 3, hi + o2, 4);
    return vreinterpretq_u8_u32(vld1q_u32(w));
}

/// One 8-k block of a tile: `np` row pairs' activations `a` against the block's 2 * nv column pairs at B.
#define I8MM_BLOCK(a)                                                                                              \
    CDK_UNROLL for (int cp = 0; cp < 2 * nv; cp++) {                                                               \
        const int8x16_t w = vld1q_s8(B + 16 * cp);                                                                 \
        CDK_UNROLL for (int p = 0; p < np; p++) acc[p][cp] = vusmmlaq_s32(acc[p][cp], a[p], w);                    \
    }                                                                                                              \
    B += 128;

/// `mr` (constant) rows starting at p0, or, with `pool`, the four rows of pooled pixel (p0, px). A row count that is
/// odd repeats its last row in the last pair and drops it. `one_group` as in NEON_VARIANT.
I8MM_TARGET static inline __attribute__((always_inline)) void i8mm_tile(
    const cdk_rows *r, cdk_row_cursor *cursor, size_t p0, size_t px, const int mr, const int nv, const int pool,
    const int one_group, const int8_t *restrict B, const Panel *pc, int n0, uint8_t *restrict C8,
    int32_t *restrict C32, size_t ldc) {
    const uint8_t *rows[2 * I8MM_PAIRS];
    const int np = (mr + 1) / 2;
    int32x4_t acc[I8MM_PAIRS][8];
    const size_t pooled_offset = pool ? cdk_quad(r, p0, px, ldc, rows) : 0;
    CDK_UNROLL for (int i = 0; i < 2 * np; i++) {
        if (!pool) rows[i] = i < mr ? cdk_row_cursor_next(cursor) : rows[i - 1];
    }
    CDK_UNROLL for (int p = 0; p < np; p++) CDK_UNROLL for (int cp = 0; cp < 2 * nv; cp++) acc[p][cp] = pair_bias(pc, cp);
    const int seg4 = one_group ? 1 : r->seg4, k_h = one_group ? 3 : r->k_h;
    const size_t skip = r->seg_stride - (size_t)seg4 * 4;
    if (seg4 % 2 == 0) {
        // Every 8-byte block lies within one segment: two 8-byte loads per row pair.
        size_t off = 0;
        for (int kh = 0; kh < k_h; kh++) {
            for (int k = 0; k < seg4; k += 2) {
                uint8x16_t a[I8MM_PAIRS];
                CDK_UNROLL for (int p = 0; p < np; p++)
                    a[p] = vcombine_u8(vld1_u8(rows[2 * p] + off), vld1_u8(rows[2 * p + 1] + off));
                I8MM_BLOCK(a)
                off += 8;
            }
            off += skip;
        }
    } else {
        // A block may span two segments: gather its two 4-byte groups; a last odd group meets zero weights.
        size_t off = 0, pending = 0;
        int have_pending = 0;
        for (int kh = 0; kh < k_h; kh++) {
            for (int k = 0; k < seg4; k++) {
                if (have_pending) {
                    uint8x16_t a[I8MM_PAIRS];
                    CDK_UNROLL for (int p = 0; p < np; p++) a[p] = gather_words(rows[2 * p], rows[2 * p + 1], pending, off);
                    I8MM_BLOCK(a)
                } else {
                    pending = off;
                }
                have_pending = !have_pending;
                off += 4;
            }
            off += skip;
        }
        if (have_pending) {
            uint8x16_t a[I8MM_PAIRS];
            CDK_UNROLL for (int p = 0; p < np; p++) a[p] = gather_words(rows[2 * p], rows[2 * p + 1], pending, pending);
            I8MM_BLOCK(a)
        }
    }
    int32x4_t row[4];
    if (pool) {
        // The four rows' largest sums: the two pairs' blocks, then each block's two rows.
        CDK_UNROLL for (int cp = 0; cp < 2 * nv; cp++) acc[0][cp] = vmaxq_s32(acc[0][cp], acc[1][cp]);
        CDK_UNROLL for (int j = 0; j < nv; j++)
            row[j] = vmaxq_s32(pair_row(acc[0][2 * j], acc[0][2 * j + 1], 0), pair_row(acc[0][2 * j], acc[0][2 * j + 1], 1));
        epilogue(row, nv, pc, C8, C32, pooled_offset + (size_t)n0);
        return;
    }
    CDK_UNROLL for (int i = 0; i < mr; i++) {
        CDK_UNROLL for (int j = 0; j < nv; j++) row[j] = pair_row(acc[i / 2][2 * j], acc[i / 2][2 * j + 1], i % 2);
        epilogue(row, nv, pc, C8, C32, (p0 + (size_t)i) * ldc + (size_t)n0);
    }
}

I8MM_TARGET static inline __attribute__((always_inline)) void i8mm_panel_rows(
    const cdk_rows *r, size_t M, const int nv, const int8_t *restrict Bp, const Panel *pc, int n0,
    uint8_t *restrict C8, int32_t *restrict C32, size_t ldc) {
    cdk_row_cursor cursor = cdk_row_cursor_start(r);
    if (r->pool_w) {
        const int one_group = r->k_h == 3 && r->seg4 == 1;
        for (size_t q = 0; q < M; q++) {
            const size_t py = q / (size_t)r->pool_w, px = q % (size_t)r->pool_w;
            if (one_group) {
                i8mm_tile(r, &cursor, py, px, 4, nv, 1, 1, Bp, pc, n0, C8, C32, ldc);
            } else {
                i8mm_tile(r, &cursor, py, px, 4, nv, 1, 0, Bp, pc, n0, C8, C32, ldc);
            }
        }
        return;
    }
    const int mr = 2 * I8MM_PAIRS;
    size_t m0 = 0;
    for (; m0 + mr <= M; m0 += mr) i8mm_tile(r, &cursor, m0, 0, mr, nv, 0, 0, Bp, pc, n0, C8, C32, ldc);
    switch (M - m0) {
    case 5: i8mm_tile(r, &cursor, m0, 0, 5, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    case 4: i8mm_tile(r, &cursor, m0, 0, 4, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    case 3: i8mm_tile(r, &cursor, m0, 0, 3, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    case 2: i8mm_tile(r, &cursor, m0, 0, 2, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    case 1: i8mm_tile(r, &cursor, m0, 0, 1, nv, 0, 0, Bp, pc, n0, C8, C32, ldc); break;
    default: break;
    }
}

I8MM_TARGET static void i8mm_run(const cdk_rows *r, size_t M, int K, int N, const int8_t *B,
                                 const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                                 size_t ldc) {
    const size_t pb = cdk_pair_panel_bytes(K);
    for (int p = 0; p < CDK_PANELS(N); p++) {
        const int n0 = p * CDK_PANEL;
        const Panel pc = make_panel(N, n0, bias, NULL, rq);
        const int8_t *Bp = B + (size_t)p * pb;
        if (pc.count <= 8) {
            i8mm_panel_rows(r, M, 2, Bp, &pc, n0, C8, C32, ldc);
        } else {
            i8mm_panel_rows(r, M, 4, Bp, &pc, n0, C8, C32, ldc);
        }
    }
}

void cdk_gemm_neon_i8mm(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                        const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32, size_t ldc) {
    const cdk_rows r = {.in = A, .in_pitch = lda, .c = 0, .seg_stride = (size_t)CDK_K4(K) * 4, .k_h = 1,
                        .seg4 = CDK_K4(K), .out_w = 1};
    i8mm_run(&r, (size_t)M, K, N, B, rq, bias, C8, C32, ldc);
}

void cdk_conv_implicit_neon_i8mm(CDK_CONV_IMPLICIT_ARGS) {
    const cdk_rows r = {.in = in, .in_pitch = in_pitch, .c = (size_t)c, .seg_stride = in_pitch, .k_h = k_h,
                        .seg4 = k_w * c / 4, .out_w = out_w};
    i8mm_run(&r, (size_t)out_h * (size_t)out_w, k_h * k_w * c, N, B, rq, rq->bias, out, NULL, ldc);
}

void cdk_conv_pool2_neon_i8mm(CDK_CONV_POOL2_ARGS) {
    const cdk_rows r = {.in = in, .in_pitch = in_pitch, .c = (size_t)c, .seg_stride = in_pitch, .k_h = k_h,
                        .seg4 = k_w * c / 4, .out_w = out_w, .pool_w = out_w / 2, .out_pitch = out_pitch};
    if (out_h < 2 || out_w < 2) return;
    i8mm_run(&r, (size_t)(out_h / 2) * (size_t)(out_w / 2), k_h * k_w * c, N, B, rq, rq->bias, out, NULL, ldc);
}
#endif

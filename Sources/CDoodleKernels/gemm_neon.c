// ARM64 NEON GEMM and implicit-GEMM convolution, exact, in two forms chosen at run time:
//   - dotprod (ARMv8.2 sdot, s8 x s8 -> s32): activations shifted to int8 (a ^ 0x80 = a - 128) and 128 * sum(w)
//     per column (the packed trailer) added back, so sum (a - 128) * w + 128 * sum(w) = sum a * w exactly;
//   - i8mm (ARMv8.6 sudot, s8 x u8 -> s32): the activations as they are.
// Both accumulate in int32 without intermediate narrowing. Tiles are MR rows by one 16-column panel: 4 * MR
// accumulators, the 4 weight vectors of a step and MR rows of 16 activation bytes (four steps' worth, taken by
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

// i8mm: the activations as they are, sudot by element (signed weights, unsigned activations).
#define DOT_UNSIGNED(acc, w, x, lane) vsudotq_laneq_s32(acc, w, x, lane)

NEON_VARIANT(neon_dotprod, DOTPROD_TARGET, int8x16_t, load16_shifted, load4_shifted, DOT_SHIFTED, 1)
NEON_VARIANT(neon_i8mm, I8MM_TARGET, uint8x16_t, vld1q_u8, broadcast_word, DOT_UNSIGNED, 0)
#endif

// AVX-512 VNNI GEMM: 8 rows x 32 columns per tile, vpdpbusd (u8 x s8 -> s32, exact) on a packed panel layout.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define MR 8

AVX512 static inline __attribute__((always_inline)) void
epilogue(__m512i acc, int n0, int N, int m, const CDoodleKernels_Requant *rq, uint8_t *C8, int32_t *C32,
         size_t ldc) {
    const __mmask16 mask = (N - n0) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (N - n0)) - 1u);
    if (C8) {
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_maskz_loadu_ps(mask, rq->scale + n0));
        v = _mm512_max_ps(v, _mm512_set1_ps((float)(rq->lo - rq->zero_point)));
        v = _mm512_min_ps(v, _mm512_set1_ps((float)(rq->hi - rq->zero_point)));
        __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                     _mm512_set1_epi32(rq->zero_point));
        // vpmovdb to a register, then a plain store: the masked memory form is slow on Zen 4.
        const __m128i bytes = _mm512_cvtepi32_epi8(q);
        if (mask == 0xFFFF) {
            _mm_storeu_si128((__m128i *)(C8 + (size_t)m * ldc + n0), bytes);
        } else {
            _mm_mask_storeu_epi8(C8 + (size_t)m * ldc + n0, mask, bytes);
        }
    } else {
        _mm512_mask_storeu_epi32(C32 + (size_t)m * ldc + n0, mask, acc);
    }
}

/// One tile: `mr` rows (<= MR) by `np` panels (1 or 2) of 16 columns. Constant arguments unroll it.
AVX512 static inline __attribute__((always_inline)) void
tile(const uint8_t *A, size_t lda, int K4, const int8_t *B, size_t pb, const int32_t *bias, int n0, int N,
     int m0, const int mr, const int np, const CDoodleKernels_Requant *rq, uint8_t *C8, int32_t *C32, size_t ldc) {
    __m512i acc[MR][2];
    for (int j = 0; j < np; j++) {
        const int left = N - (n0 + 16 * j);
        const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        const __m512i b = bias ? _mm512_maskz_loadu_epi32(mask, bias + n0 + 16 * j) : _mm512_setzero_si512();
        for (int i = 0; i < mr; i++) acc[i][j] = b;
    }
    const uint8_t *a = A + (size_t)m0 * lda;
    const int8_t *b0 = B;
    const int8_t *b1 = B + pb;
    for (int k = 0; k < K4; k++) {
        const __m512i w0 = _mm512_loadu_si512(b0 + (size_t)k * 64);
        const __m512i w1 = np > 1 ? _mm512_loadu_si512(b1 + (size_t)k * 64) : w0;
        for (int i = 0; i < mr; i++) {
            int32_t word;
            memcpy(&word, a + (size_t)i * lda + (size_t)k * 4, 4);
            const __m512i x = _mm512_set1_epi32(word);
            acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, w0);
            if (np > 1) acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, w1);
        }
    }
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < np; j++) epilogue(acc[i][j], n0 + 16 * j, N, m0 + i, rq, C8, C32, ldc);
    }
}

#define TILE_CASES(NP)                                                                                           \
    switch (mr) {                                                                                                \
    case 8: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 8, NP, rq, C8, C32, ldc); break;                           \
    case 7: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 7, NP, rq, C8, C32, ldc); break;                           \
    case 6: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 6, NP, rq, C8, C32, ldc); break;                           \
    case 5: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 5, NP, rq, C8, C32, ldc); break;                           \
    case 4: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 4, NP, rq, C8, C32, ldc); break;                           \
    case 3: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 3, NP, rq, C8, C32, ldc); break;                           \
    case 2: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 2, NP, rq, C8, C32, ldc); break;                           \
    default: tile(A, lda, K4, Bp, pb, bias, n0, N, m0, 1, NP, rq, C8, C32, ldc); break;                          \
    }

AVX512 void cdk_gemm_avx512vnni(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                                const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                                size_t ldc) {
    const int K4 = CDK_K4(K);
    const size_t pb = cdk_panel_bytes(K);
    const int panels = CDK_PANELS(N);
    // Column blocks outermost keep a 2-panel slice of B hot in L1 while every row block streams past it.
    for (int p = 0; p < panels; p += 2) {
        const int np = panels - p >= 2 ? 2 : 1;
        const int n0 = p * CDK_PANEL;
        const int8_t *Bp = B + (size_t)p * pb;
        for (int m0 = 0; m0 < M; m0 += MR) {
            const int mr = M - m0 >= MR ? MR : M - m0;
            if (np == 2) {
                TILE_CASES(2)
            } else {
                TILE_CASES(1)
            }
        }
    }
}
#endif

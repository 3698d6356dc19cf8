// AVX2 GEMM for CPUs without VNNI: bytes widened to 16 bits and multiplied with vpmaddwd, so no
// intermediate saturates (vpmaddubsw would) and results equal the reference bit for bit.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define MR 2

/// Four accumulators of one row (each 4 columns x 2 partial sums) -> two vectors of 8 column sums.
AVX2 static inline __attribute__((always_inline)) void reduce(const __m256i acc[4], __m256i out[2]) {
    out[0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[0], acc[1]), 0xD8);
    out[1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[2], acc[3]), 0xD8);
}

AVX2 static inline __attribute__((always_inline)) void
tile(const uint8_t *A, size_t lda, int K4, const int8_t *B, const int32_t *bias, int n0, int N, int m0,
     const int mr, const CDoodleKernels_Requant *rq, uint8_t *C8, int32_t *C32, size_t ldc) {
    __m256i acc[MR][4];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_si256();
    for (int k = 0; k < K4; k++) {
        const int8_t *b = B + (size_t)k * 64;
        __m256i w[4];
        for (int j = 0; j < 4; j++) w[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 16 * j)));
        for (int i = 0; i < mr; i++) {
            int32_t word;
            memcpy(&word, A + (size_t)(m0 + i) * lda + (size_t)k * 4, 4);
            const __m256i x = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(word)));
            for (int j = 0; j < 4; j++) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(x, w[j]));
        }
    }
    for (int i = 0; i < mr; i++) {
        __m256i sums[2];
        reduce(acc[i], sums);
        int32_t col[16];
        _mm256_storeu_si256((__m256i *)col, sums[0]);
        _mm256_storeu_si256((__m256i *)(col + 8), sums[1]);
        const int count = N - n0 < 16 ? N - n0 : 16;
        for (int c = 0; c < count; c++) {
            const int32_t v = col[c] + (bias ? bias[n0 + c] : 0);
            if (C8) {
                C8[(size_t)(m0 + i) * ldc + n0 + c] =
                    cdk_requant(v, rq->scale[n0 + c], rq->zero_point, rq->lo, rq->hi);
            } else {
                C32[(size_t)(m0 + i) * ldc + n0 + c] = v;
            }
        }
    }
}

AVX2 void cdk_gemm_avx2(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                        const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                        size_t ldc) {
    const int K4 = CDK_K4(K);
    const size_t pb = cdk_panel_bytes(K);
    for (int p = 0; p < CDK_PANELS(N); p++) {
        const int8_t *Bp = B + (size_t)p * pb;
        for (int m0 = 0; m0 < M; m0 += MR) {
            if (M - m0 >= 2) {
                tile(A, lda, K4, Bp, bias, p * CDK_PANEL, N, m0, 2, rq, C8, C32, ldc);
            } else {
                tile(A, lda, K4, Bp, bias, p * CDK_PANEL, N, m0, 1, rq, C8, C32, ldc);
            }
        }
    }
}
#endif

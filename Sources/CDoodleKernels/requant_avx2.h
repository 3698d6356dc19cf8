// The AVX2 requantisation both AVX2 kernels end with (the GEMM in gemm_avx2.c, the Winograd convolution in
// winograd.c): cdk_requant on 8 lanes at once, bit for bit.
#ifndef CDOODLEKERNELS_REQUANT_AVX2_H
#define CDOODLEKERNELS_REQUANT_AVX2_H

#if defined(__x86_64__)
#include "internal.h"
#include <immintrin.h>

/// A requantisation's clamp bounds (relative to the zero point) and zero point, broadcast.
typedef struct {
    __m256 lo, hi;
    __m256i zp;
} cdk_requant_bounds;

/// `rq`'s bounds; all zero when there is no requantisation (a GEMM with int32 output never uses them).
__attribute__((target("avx2"))) static inline cdk_requant_bounds cdk_requant_bounds_of(const CDoodleKernels_Requant *rq) {
    cdk_requant_bounds b;
    b.lo = _mm256_set1_ps(rq ? (float)(rq->lo - rq->zero_point) : 0.0f);
    b.hi = _mm256_set1_ps(rq ? (float)(rq->hi - rq->zero_point) : 0.0f);
    b.zp = _mm256_set1_epi32(rq ? rq->zero_point : 0);
    return b;
}

/// Requantises like cdk_requant: multiply in float, clamp, round to nearest even (MXCSR's default), add the zero
/// point.
__attribute__((target("avx2"), always_inline)) static inline __m256i
cdk_requant_avx2(__m256i acc, __m256 scale, const cdk_requant_bounds *b) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    v = _mm256_min_ps(_mm256_max_ps(v, b->lo), b->hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), b->zp);
}

/// 8 requantised lanes (each already within 0...255) as 8 bytes, in the low half of the result.
__attribute__((target("avx2"), always_inline)) static inline __m128i cdk_bytes_of_avx2(__m256i q32) {
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q32), _mm256_extracti128_si256(q32, 1));
    return _mm_packus_epi16(q16, q16);
}
#endif

#endif

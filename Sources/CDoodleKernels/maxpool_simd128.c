// Max pooling 16 channels at a time with the 128-bit vectors every x86-64 (SSE2) and ARM64 (NEON) CPU has; the
// AVX2 and NEON paths use it.
#include "internal.h"

#if defined(__x86_64__)
#include <emmintrin.h>
typedef __m128i cdk_v16;
#define CDK_LOAD(p) _mm_loadu_si128((const __m128i *)(p))
#define CDK_STORE(p, v) _mm_storeu_si128((__m128i *)(p), v)
#define CDK_MAX(a, b) _mm_max_epu8(a, b)
#elif defined(__aarch64__)
#include <arm_neon.h>
typedef uint8x16_t cdk_v16;
#define CDK_LOAD(p) vld1q_u8(p)
#define CDK_STORE(p, v) vst1q_u8(p, v)
#define CDK_MAX(a, b) vmaxq_u8(a, b)
#endif

#if defined(__x86_64__) || defined(__aarch64__)
void cdk_maxpool_simd128(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w, int out_h,
                         int out_w, uint8_t *out, size_t out_pitch) {
    const size_t cs = (size_t)c;
    for (int oy = 0; oy < out_h; oy++) {
        for (int ox = 0; ox < out_w; ox++) {
            uint8_t *dst = out + (size_t)oy * out_pitch + (size_t)ox * cs;
            const uint8_t *first = in + ((size_t)(oy * stride_h) * in_w + (size_t)(ox * stride_w)) * cs;
            // Blocks of 16 covering [0, c) exactly; the last one may overlap the one before it.
            for (size_t off = 0; off < cs; off += 16) {
                const size_t at = off + 16 <= cs ? off : cs - 16;
                cdk_v16 best = CDK_LOAD(first + at);
                for (int ky = 0; ky < k_h; ky++) {
                    for (int kx = 0; kx < k_w; kx++) {
                        best = CDK_MAX(best, CDK_LOAD(first + ((size_t)ky * in_w + kx) * cs + at));
                    }
                }
                CDK_STORE(dst + at, best);
            }
        }
    }
}
#else
void cdk_maxpool_simd128(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w, int out_h,
                         int out_w, uint8_t *out, size_t out_pitch) {
    cdk_maxpool_reference(in, in_w, c, k_h, k_w, stride_h, stride_w, out_h, out_w, out, out_pitch);
}
#endif

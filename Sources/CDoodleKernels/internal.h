// Shared by the kernel translation units; not part of the public header.
#ifndef CDOODLEKERNELS_INTERNAL_H
#define CDOODLEKERNELS_INTERNAL_H

#include "CDoodleKernels.h"
#include <math.h>
#include <string.h>

#define CDK_PANEL 16  // output columns per packed panel
#define CDK_K4(K) (((K) + 3) / 4)
#define CDK_PANELS(N) (((N) + CDK_PANEL - 1) / CDK_PANEL)

/// One packed panel: [K4][16 columns][4 k] int8.
static inline size_t cdk_panel_bytes(int K) { return (size_t)CDK_K4(K) * CDK_PANEL * 4; }

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
void cdk_gemm_avx512vnni(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                         const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                         size_t ldc);

void cdk_im2col_reference(const CDoodleKernels_ConvShape *s, const uint8_t *in, uint8_t pad_value, uint8_t *out,
                         size_t row_bytes);
void cdk_im2col_avx512(const CDoodleKernels_ConvShape *s, const uint8_t *in, uint8_t pad_value, uint8_t *out,
                       size_t row_bytes);
void cdk_maxpool_reference(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w,
                           int out_h, int out_w, uint8_t *out, size_t out_pitch);
void cdk_maxpool_avx512(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w, int out_h,
                        int out_w, uint8_t *out, size_t out_pitch);

#endif

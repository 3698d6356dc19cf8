// 3 x 3 convolution with its 2 x 2 max pool by Winograd F(2 x 2, 3 x 3), in exact integer arithmetic.
//
// Each 2 x 2 block of the convolution's output (the four sums one pooled pixel takes the largest of) is computed
// from a 4 x 4 patch of the input with 16 multiplies per input and output channel instead of 36:
//     Y = A^T [ (2G g 2G^T) .* (B^T d B) ] A
// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1], and 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2]:
// twice the usual G, whose halves would leave the integers. Y is then exactly 4 times the convolution, so the pooled
// maximum shifted right by 2 is the pooled sum, bit for bit (the caller's bias and requantisation follow as on the
// other paths). Ranges: B^T d B of u8 inputs lies in [-765, 1020] and 2G g 2G^T of int8 weights within 9 x 128, so
// both fit int16 and each product int32. The sums wrap modulo 2^32, which leaves a result that fits int32 exact:
// Y = 4 x a convolution sum, within 4 x 9 x 255 x 128 x c, fits for c up to 1,827 (1,500 allowed).
//
// Why only AVX2: its int8 multiply (vpmaddubsw) needs a second multiply (vpmaddwd) to widen, so it does 16 int8
// multiply-adds per multiplier instruction; vpmaddwd alone does 16 int16 ones, and Winograd needs 2.25 times fewer.
// AVX-512 VNNI (vpdpbusd: 64 int8, 32 int16) and NEON (sdot: 16 int8, smlal: 8 int16) would gain little.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/// Weight transform of one (output, input) channel pair: U = 2G g 2G^T, g the 3 x 3 taps at `taps[(ky * 3 + kx) * c]`.
static void transform_filter(const int8_t *taps, int c, int32_t U[16]) {
    static const int G2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
    int32_t t[4][3];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            int32_t s = 0;
            for (int r = 0; r < 3; r++) s += G2[i][r] * taps[(r * 3 + j) * c];
            t[i][j] = s;
        }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int32_t s = 0;
            for (int r = 0; r < 3; r++) s += t[i][r] * G2[j][r];
            U[i * 4 + j] = s;
        }
}

size_t cdk_winograd_size(int c, int N) {
    if (c <= 0 || N <= 0 || c % 16 != 0 || N % 8 != 0 || c > 1500) return 0;
    return (size_t)16 * (size_t)N * (size_t)c * sizeof(int16_t);
}

/// Layout: position p (16), block of 8 output channels, input channel pair, then 8 x (c, c + 1) int16 (one ymm).
static size_t packed_index(int c, int N, int p, int n, int ci) {
    return ((((size_t)p * (size_t)(N / 8) + (size_t)(n / 8)) * (size_t)(c / 2) + (size_t)(ci / 2)) * 8 +
            (size_t)(n % 8)) * 2 + (size_t)(ci % 2);
}

void cdk_winograd_pack(const int8_t *w, int c, int N, int16_t *packed) {
    const size_t K = (size_t)9 * (size_t)c;
    for (int n = 0; n < N; n++)
        for (int ci = 0; ci < c; ci++) {
            int32_t U[16];
            transform_filter(w + (size_t)n * K + (size_t)ci, c, U);
            for (int p = 0; p < 16; p++) packed[packed_index(c, N, p, n, ci)] = (int16_t)U[p];
        }
}

/// The 4 x 4 input patch of pooled pixel (py, px), channel ci, transformed: V = B^T d B.
static void transform_patch(const uint8_t *in, size_t in_pitch, int c, int py, int px, int ci, int32_t V[16]) {
    int32_t d[4][4], e[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = in[(size_t)(2 * py + i) * in_pitch + (size_t)(2 * px + j) * c + ci];
    for (int j = 0; j < 4; j++) {
        e[0][j] = d[0][j] - d[2][j];
        e[1][j] = d[1][j] + d[2][j];
        e[2][j] = d[2][j] - d[1][j];
        e[3][j] = d[1][j] - d[3][j];
    }
    for (int i = 0; i < 4; i++) {
        V[i * 4 + 0] = e[i][0] - e[i][2];
        V[i * 4 + 1] = e[i][1] + e[i][2];
        V[i * 4 + 2] = e[i][2] - e[i][1];
        V[i * 4 + 3] = e[i][1] - e[i][3];
    }
}

/// The largest of the four outputs Y = A^T m A, divided by 4 (exact: Y is 4 times the convolution).
static int32_t pooled_output(const int64_t m[16]) {
    int64_t r[2][4];
    for (int j = 0; j < 4; j++) {
        r[0][j] = m[0 * 4 + j] + m[1 * 4 + j] + m[2 * 4 + j];
        r[1][j] = m[1 * 4 + j] - m[2 * 4 + j] - m[3 * 4 + j];
    }
    int64_t best = INT64_MIN;
    for (int i = 0; i < 2; i++) {
        const int64_t y0 = r[i][0] + r[i][1] + r[i][2], y1 = r[i][1] - r[i][2] - r[i][3];
        best = y0 > best ? y0 : best;
        best = y1 > best ? y1 : best;
    }
    return (int32_t)(best / 4);
}

void cdk_winograd_pool2_reference(CDK_WINOGRAD_POOL2_ARGS) {
    const int ph = out_h / 2, pw = out_w / 2;
    int32_t (*V)[16] = malloc(sizeof(int32_t[16]) * (size_t)(c > 0 ? c : 1));
    if (!V) abort();
    for (int py = 0; py < ph; py++)
        for (int px = 0; px < pw; px++) {
            for (int ci = 0; ci < c; ci++) transform_patch(in, in_pitch, c, py, px, ci, V[ci]);
            uint8_t *dst = out + (size_t)py * out_pitch + (size_t)px * ldc;
            for (int n = 0; n < N; n++) {
                int64_t m[16] = {0};
                for (int ci = 0; ci < c; ci++)
                    for (int p = 0; p < 16; p++) m[p] += (int64_t)V[ci][p] * U[packed_index(c, N, p, n, ci)];
                dst[n] = cdk_requant(pooled_output(m) + rq->bias[n], rq->scale[n], rq->zero_point, rq->lo, rq->hi);
            }
        }
    free(V);
}

#if defined(__x86_64__)
#include "requant_avx2.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/// The thread's buffers: transformed patches (int16) then products (int32).
static _Thread_local cdk_thread_buffer scratch;

/// V[p][t][c] = B^T d B for every pooled pixel t, 16 channels a vector.
AVX2 static void transform_input(const uint8_t *in, size_t in_pitch, int c, int pw, int tiles, int16_t *V,
                                 size_t tile_stride) {
    const size_t pos_stride = tile_stride * (size_t)c;
    for (int t = 0; t < tiles; t++) {
        const uint8_t *patch = in + (size_t)(2 * (t / pw)) * in_pitch + (size_t)(2 * (t % pw)) * c;
        for (int h = 0; h < c; h += 16) {
            __m256i d[4][4], e[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    d[i][j] = _mm256_cvtepu8_epi16(
                        _mm_loadu_si128((const __m128i *)(patch + (size_t)i * in_pitch + (size_t)j * c + h)));
            for (int j = 0; j < 4; j++) {
                e[0][j] = _mm256_sub_epi16(d[0][j], d[2][j]);
                e[1][j] = _mm256_add_epi16(d[1][j], d[2][j]);
                e[2][j] = _mm256_sub_epi16(d[2][j], d[1][j]);
                e[3][j] = _mm256_sub_epi16(d[1][j], d[3][j]);
            }
            int16_t *dst = V + (size_t)t * (size_t)c + (size_t)h;
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_si256((__m256i *)(dst + (size_t)(i * 4 + 0) * pos_stride), _mm256_sub_epi16(e[i][0], e[i][2]));
                _mm256_storeu_si256((__m256i *)(dst + (size_t)(i * 4 + 1) * pos_stride), _mm256_add_epi16(e[i][1], e[i][2]));
                _mm256_storeu_si256((__m256i *)(dst + (size_t)(i * 4 + 2) * pos_stride), _mm256_sub_epi16(e[i][2], e[i][1]));
                _mm256_storeu_si256((__m256i *)(dst + (size_t)(i * 4 + 3) * pos_stride), _mm256_sub_epi16(e[i][1], e[i][3]));
            }
        }
    }
}

/// Products of one position for 2 pooled pixels from t by `blocks` (<= 6) blocks of 8 output channels from b0:
/// 12 accumulators at most, which with the 2 broadcasts, a weight vector and a product fill the 16 ymm registers;
/// one vpmaddwd per 16 multiply-adds. Constant `blocks` unrolls it.
AVX2 static inline __attribute__((always_inline)) void
products(const int16_t *V, int c, const int16_t *U, int b0, const int blocks, int32_t *M, int N) {
    __m256i acc[2][6];
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < blocks; b++) acc[i][b] = _mm256_setzero_si256();
    const int32_t *v0 = (const int32_t *)V, *v1 = (const int32_t *)(V + c);
    const size_t block_stride = (size_t)(c / 2) * 16;
    const int16_t *u = U + (size_t)b0 * block_stride;
    for (int cp = 0; cp < c / 2; cp++) {
        const __m256i x0 = _mm256_set1_epi32(v0[cp]), x1 = _mm256_set1_epi32(v1[cp]);
        for (int b = 0; b < blocks; b++) {
            const __m256i w = _mm256_load_si256((const __m256i *)(u + (size_t)b * block_stride + (size_t)cp * 16));
            acc[0][b] = _mm256_add_epi32(acc[0][b], _mm256_madd_epi16(w, x0));
            acc[1][b] = _mm256_add_epi32(acc[1][b], _mm256_madd_epi16(w, x1));
        }
    }
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < blocks; b++)
            _mm256_storeu_si256((__m256i *)(M + (size_t)i * (size_t)N + (size_t)(b0 + b) * 8), acc[i][b]);
}

/// Output transform, pool, bias and requantisation (as the AVX2 GEMM's epilogue) of pooled pixel t's 8 channels from n0.
AVX2 static void finish(const int32_t *M, size_t pos_stride, int t, int n0, int N, const CDoodleKernels_Requant *rq,
                        const cdk_requant_bounds *bounds, uint8_t *dst) {
    __m256i m[16];
    for (int p = 0; p < 16; p++)
        m[p] = _mm256_loadu_si256((const __m256i *)(M + (size_t)p * pos_stride + (size_t)t * (size_t)N + (size_t)n0));
    __m256i best = _mm256_set1_epi32(INT32_MIN);
    for (int i = 0; i < 2; i++) {
        __m256i r[4];
        for (int j = 0; j < 4; j++)
            r[j] = i == 0 ? _mm256_add_epi32(_mm256_add_epi32(m[j], m[4 + j]), m[8 + j])
                          : _mm256_sub_epi32(_mm256_sub_epi32(m[4 + j], m[8 + j]), m[12 + j]);
        const __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]), r[2]);
        const __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(r[1], r[2]), r[3]);
        best = _mm256_max_epi32(best, _mm256_max_epi32(y0, y1));
    }
    const __m256i acc = _mm256_add_epi32(_mm256_srai_epi32(best, 2), _mm256_loadu_si256((const __m256i *)(rq->bias + n0)));
    const __m256i q32 = cdk_requant_avx2(acc, _mm256_loadu_ps(rq->scale + n0), bounds);
    _mm_storel_epi64((__m128i *)(dst + n0), cdk_bytes_of_avx2(q32));
}

AVX2 void cdk_winograd_pool2_avx2(CDK_WINOGRAD_POOL2_ARGS) {
    const int ph = out_h / 2, pw = out_w / 2, tiles = ph * pw;
    if (tiles <= 0) return;
    const int padded = cdk_winograd_padded_pixels(tiles);
    const size_t v_bytes = (size_t)16 * (size_t)padded * (size_t)c * sizeof(int16_t);
    const size_t m_bytes = (size_t)16 * (size_t)padded * (size_t)N * sizeof(int32_t);
    uint8_t *buffers = cdk_thread_buffer_reserve(&scratch, v_bytes + m_bytes);
    if (!buffers) {
        cdk_winograd_pool2_reference(in, in_pitch, c, out_h, out_w, U, N, rq, out, ldc, out_pitch);
        return;
    }
    int16_t *V = (int16_t *)buffers;
    int32_t *M = (int32_t *)(buffers + v_bytes);
    transform_input(in, in_pitch, c, pw, tiles, V, (size_t)padded);
    for (int p = 0; p < 16; p++)
        memset(V + ((size_t)p * (size_t)padded + (size_t)tiles) * (size_t)c, 0,
               (size_t)(padded - tiles) * (size_t)c * sizeof(int16_t));
    const int blocks = N / 8;
    const size_t u_pos = (size_t)blocks * (size_t)(c / 2) * 16;
    for (int p = 0; p < 16; p++) {
        const int16_t *Vp = V + (size_t)p * (size_t)padded * (size_t)c;
        const int16_t *Up = U + (size_t)p * u_pos;
        int32_t *Mp = M + (size_t)p * (size_t)padded * (size_t)N;
        for (int t = 0; t < padded; t += 2) {
            const int16_t *Vt = Vp + (size_t)t * (size_t)c;
            int32_t *Mt = Mp + (size_t)t * (size_t)N;
            int b = 0;
            for (; b + 6 <= blocks; b += 6) products(Vt, c, Up, b, 6, Mt, N);
            switch (blocks - b) {
            case 5: products(Vt, c, Up, b, 5, Mt, N); break;
            case 4: products(Vt, c, Up, b, 4, Mt, N); break;
            case 3: products(Vt, c, Up, b, 3, Mt, N); break;
            case 2: products(Vt, c, Up, b, 2, Mt, N); break;
            case 1: products(Vt, c, Up, b, 1, Mt, N); break;
            default: break;
            }
        }
    }
    const size_t pos_stride = (size_t)padded * (size_t)N;
    const cdk_requant_bounds bounds = cdk_requant_bounds_of(rq);
    for (int t = 0; t < tiles; t++) {
        uint8_t *dst = out + (size_t)(t / pw) * out_pitch + (size_t)(t % pw) * ldc;
        for (int n0 = 0; n0 < N; n0 += 8) finish(M, pos_stride, t, n0, N, rq, &bounds, dst);
    }
}
#endif

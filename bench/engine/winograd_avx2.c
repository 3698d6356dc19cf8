// Experiment, not part of the engine: an exact int8 3x3 convolution by Winograd F(2x2, 3x3) in int16 on AVX2, with
// the 2 x 2 max pool fused, on v4's second convolution (32 -> 48 channels at 14 x 14). It checks itself against a
// direct convolution (20 trials, the first at the extremes: every input 255, weights +-127) and times itself.
//
//   clang -O3 -mavx2 -o /tmp/winograd bench/engine/winograd_avx2.c && taskset -c 0 /tmp/winograd
//
// Why: doodled's AVX2 path spends two multiplier instructions per 32 multiply-adds (vpmaddubsw, then vpmaddwd to
// widen), as onnxruntime's does. Winograd needs 16 multiplies per 2 x 2 output tile instead of 36, done with one
// vpmaddwd per 16 (int16 x int16 -> int32, never saturating). It stays exact in integers: the weight transform is
// taken with 2G (entries 0, +-1, 2) instead of G (entries +-1/2), so the result is 4 times the convolution, pooled
// and then shifted right by 2 with no remainder. Ranges: transformed inputs within [-765, 1020], transformed weights
// within 9 x 127; 32 channels of products and the output transform's 9 terms stay under 3.4e8 in int32.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { H = 14, W = 14, C = 32, K = 48, T = 7, NT = T * T, CP = C / 2, KB = K / 8 };

static uint8_t in_pad[H + 2][W + 2][C];
static int8_t wt[K][3][3][C];
static int16_t U[16][KB][CP][16];      // per position, k block, channel pair: 8 lanes x (c, c+1)
static int16_t V[16][NT + 1][C];        // per position, tile, channel
static int32_t M[16][NT + 1][K];
static int32_t pooled[NT][K], ref_pooled[NT][K];

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void transform_weights(void) {
    // 2G: rows [2,0,0],[1,1,1],[1,-1,1],[0,0,2]; U = (2G) g (2G)^T, i.e. 4x the Winograd weight transform.
    static const int G2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
    for (int k = 0; k < K; k++)
        for (int c = 0; c < C; c++) {
            int tmp[4][3];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 3; j++) {
                    int s = 0;
                    for (int r = 0; r < 3; r++) s += G2[i][r] * wt[k][r][j][c];
                    tmp[i][j] = s;
                }
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) {
                    int s = 0;
                    for (int r = 0; r < 3; r++) s += tmp[i][r] * G2[j][r];
                    U[i * 4 + j][k / 8][c / 2][(k % 8) * 2 + (c % 2)] = (int16_t)s;
                }
        }
}

__attribute__((target("avx2"))) static void transform_input(void) {
    // V = B^T d B, B^T rows [1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]; 32 channels as two vectors of 16 int16.
    for (int ty = 0; ty < T; ty++)
        for (int tx = 0; tx < T; tx++) {
            const int t = ty * T + tx;
            for (int h = 0; h < 2; h++) {
                __m256i d[4][4], e[4][4];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        d[i][j] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)&in_pad[2 * ty + i][2 * tx + j][16 * h]));
                for (int j = 0; j < 4; j++) {
                    e[0][j] = _mm256_sub_epi16(d[0][j], d[2][j]);
                    e[1][j] = _mm256_add_epi16(d[1][j], d[2][j]);
                    e[2][j] = _mm256_sub_epi16(d[2][j], d[1][j]);
                    e[3][j] = _mm256_sub_epi16(d[1][j], d[3][j]);
                }
                for (int i = 0; i < 4; i++) {
                    __m256i v0 = _mm256_sub_epi16(e[i][0], e[i][2]);
                    __m256i v1 = _mm256_add_epi16(e[i][1], e[i][2]);
                    __m256i v2 = _mm256_sub_epi16(e[i][2], e[i][1]);
                    __m256i v3 = _mm256_sub_epi16(e[i][1], e[i][3]);
                    _mm256_storeu_si256((__m256i *)&V[i * 4 + 0][t][16 * h], v0);
                    _mm256_storeu_si256((__m256i *)&V[i * 4 + 1][t][16 * h], v1);
                    _mm256_storeu_si256((__m256i *)&V[i * 4 + 2][t][16 * h], v2);
                    _mm256_storeu_si256((__m256i *)&V[i * 4 + 3][t][16 * h], v3);
                }
            }
        }
}

__attribute__((target("avx2"))) static void gemms(void) {
    for (int p = 0; p < 16; p++)
        for (int t = 0; t < NT; t += 2) {  // two tiles x 48 channels: 12 accumulators
            __m256i acc[2][KB];
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < KB; b++) acc[a][b] = _mm256_setzero_si256();
            const int32_t *v0 = (const int32_t *)V[p][t], *v1 = (const int32_t *)V[p][t + 1];
            for (int cp = 0; cp < CP; cp++) {
                const __m256i x0 = _mm256_set1_epi32(v0[cp]), x1 = _mm256_set1_epi32(v1[cp]);
                for (int b = 0; b < KB; b++) {
                    const __m256i u = _mm256_load_si256((const __m256i *)U[p][b][cp]);
                    acc[0][b] = _mm256_add_epi32(acc[0][b], _mm256_madd_epi16(u, x0));
                    acc[1][b] = _mm256_add_epi32(acc[1][b], _mm256_madd_epi16(u, x1));
                }
            }
            for (int b = 0; b < KB; b++) {
                _mm256_storeu_si256((__m256i *)&M[p][t][8 * b], acc[0][b]);
                _mm256_storeu_si256((__m256i *)&M[p][t + 1][8 * b], acc[1][b]);
            }
        }
}

__attribute__((target("avx2"))) static void transform_output(void) {
    // Y = A^T m A, A^T rows [1,1,1,0],[0,1,-1,-1]; Y is 4x the convolution (the 2G scaling), pooled, then / 4.
    for (int t = 0; t < NT; t++)
        for (int b = 0; b < KB; b++) {
            __m256i m[4][4], r[2][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) m[i][j] = _mm256_loadu_si256((const __m256i *)&M[i * 4 + j][t][8 * b]);
            for (int j = 0; j < 4; j++) {
                r[0][j] = _mm256_add_epi32(_mm256_add_epi32(m[0][j], m[1][j]), m[2][j]);
                r[1][j] = _mm256_sub_epi32(_mm256_sub_epi32(m[1][j], m[2][j]), m[3][j]);
            }
            __m256i best = _mm256_set1_epi32(INT32_MIN);
            for (int i = 0; i < 2; i++) {
                __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(r[i][0], r[i][1]), r[i][2]);
                __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(r[i][1], r[i][2]), r[i][3]);
                best = _mm256_max_epi32(best, _mm256_max_epi32(y0, y1));
            }
            _mm256_storeu_si256((__m256i *)&pooled[t][8 * b], _mm256_srai_epi32(best, 2));
        }
}

static void reference(void) {
    for (int ty = 0; ty < T; ty++)
        for (int tx = 0; tx < T; tx++)
            for (int k = 0; k < K; k++) {
                int best = INT32_MIN;
                for (int oy = 2 * ty; oy < 2 * ty + 2; oy++)
                    for (int ox = 2 * tx; ox < 2 * tx + 2; ox++) {
                        int s = 0;
                        for (int r = 0; r < 3; r++)
                            for (int q = 0; q < 3; q++)
                                for (int c = 0; c < C; c++) s += in_pad[oy + r][ox + q][c] * wt[k][r][q][c];
                        if (s > best) best = s;
                    }
                ref_pooled[ty * T + tx][k] = best;
            }
}

int main(int argc, char **argv) {
    srand(argc > 1 ? atoi(argv[1]) : 1);
    int bad = 0;
    for (int trial = 0; trial < 20; trial++) {
        memset(in_pad, 0, sizeof in_pad);
        for (int y = 1; y <= H; y++)
            for (int x = 1; x <= W; x++)
                for (int c = 0; c < C; c++) in_pad[y][x][c] = trial == 0 ? 255 : rand() & 255;
        for (int k = 0; k < K; k++)
            for (int r = 0; r < 3; r++)
                for (int q = 0; q < 3; q++)
                    for (int c = 0; c < C; c++) wt[k][r][q][c] = trial == 0 ? ((k + c) % 2 ? 127 : -127) : (int8_t)((rand() % 255) - 127);
        transform_weights(); transform_input(); gemms(); transform_output(); reference();
        bad += memcmp(pooled, ref_pooled, sizeof pooled) != 0;
    }
    printf("exact: %d of 20 trials differ\n", bad);
    const int reps = 20000;
    double t0 = now();
    for (int i = 0; i < reps; i++) { transform_input(); gemms(); transform_output(); __asm__ volatile("" ::: "memory"); }
    double dt = (now() - t0) / reps;
    double t1 = now();
    for (int i = 0; i < reps; i++) { transform_input(); __asm__ volatile("" ::: "memory"); }
    double di = (now() - t1) / reps;
    t1 = now();
    for (int i = 0; i < reps; i++) { gemms(); __asm__ volatile("" ::: "memory"); }
    double dg = (now() - t1) / reps;
    const double direct_macs = 14.0 * 14 * K * 9 * C;
    printf("conv 3x3 32->48 @14x14 + pool, Winograd F(2x2,3x3) int16: %.2f us/image (input transform %.2f, gemms %.2f); "
           "%.1f GMAC/s direct-equivalent\n", dt * 1e6, di * 1e6, dg * 1e6, direct_macs / dt / 1e9);
    return bad != 0;
}

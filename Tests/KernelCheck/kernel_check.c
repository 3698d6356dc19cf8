// Every kernel path against the portable reference, bit for bit, on random tensors: GEMMs (uint8 and int32
// output) over awkward and real layer shapes, implicit-GEMM convolutions, max pooling. Built natively and for
// ARM64 (run under qemu-aarch64 -cpu max) by scripts/check-kernels; the Swift tests cover the whole model.
//
//     kernel_check [--seed N] [--rounds N]
#include "CDoodleKernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *isa_names[CDoodleKernels_ISA_count] = {"reference", "avx2", "avx512vnni", "neon-dotprod",
                                                          "neon-i8mm"};
static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static int passed, failed;

static unsigned long long next_random(void) {  // SplitMix64
    unsigned long long z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int uniform(int n) { return (int)(next_random() % (unsigned long long)n); }

/// Activations as real layers produce them: many zeros (ReLU), some 255s (clamped), the rest anywhere.
static void fill_activations(uint8_t *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const int r = uniform(10);
        a[i] = r < 4 ? 0 : r < 5 ? 255 : r < 6 ? 128 : (uint8_t)uniform(256);
    }
}

/// Weights in [-bound, bound], extremes over-represented; `allow_minus_128` adds some -128s. The bound is 127
/// (what symmetric quantisation gives) for half the matrices, 64 (quantisation with a reduced range, which the
/// AVX2 path multiplies without shifting the activations) for a quarter, and 65 (just too wide for that) for the
/// rest. Returns the bound.
static int fill_weights(int8_t *w, size_t n, int allow_minus_128) {
    const int pick = uniform(4), bound = pick < 2 ? 127 : pick == 2 ? 64 : 65;
    for (size_t i = 0; i < n; i++) {
        const int r = uniform(10);
        w[i] = (int8_t)(r < 2 ? bound : r < 4 ? -bound : r < 5 ? 0 : uniform(2 * bound + 1) - bound);
        if (allow_minus_128 && uniform(50) == 0) w[i] = -128;
    }
    return bound;
}

static void *aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) abort();
    return p;
}

typedef struct {
    int32_t *bias;
    float *scale;
    CDoodleKernels_Requant rq;
} Requant;

/// Scales chosen so outputs cover 0...255; a power of two (so products are exact and ties to even are tested)
/// one time in three. One matrix in eight has a column with a scale of 1 to 2^23 (most of its outputs clamp, some
/// products overflow int32: the paths that clamp in the integer domain only where scales are small must fall back
/// there), and one in four an upper bound below 255.
static Requant make_requant(int K, int N) {
    Requant r;
    r.bias = malloc(sizeof(int32_t) * (size_t)N);
    r.scale = malloc(sizeof(float) * (size_t)N);
    for (int n = 0; n < N; n++) {
        r.bias[n] = uniform(2 * 64 * K + 1) - 64 * K;
        r.scale[n] = uniform(3) == 0 ? 1.0f / (float)(1 << (uniform(8) + 6)) : 1.0f / (float)(64 * K + uniform(4096) + 1) * 40.0f;
    }
    if (uniform(8) == 0) r.scale[uniform(N)] = (float)(1 << uniform(24));
    const int zp = uniform(3) == 0 ? 0 : uniform(256);
    const int lo = uniform(2) ? zp : 0;
    r.rq = (CDoodleKernels_Requant){.bias = r.bias, .scale = r.scale, .zero_point = zp, .lo = lo,
                                    .hi = uniform(4) == 0 ? lo + uniform(256 - lo) : 255};
    return r;
}

static void report(const char *what, CDoodleKernels_ISA isa, int ok, const char *detail) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s on %s: %s\n", what, isa_names[isa], detail);
    }
}

/// `w` (K x N) packed for `isa` into a new aligned buffer.
static void *pack(CDoodleKernels_ISA isa, const int8_t *w, int K, int N) {
    void *packed = aligned(CDoodleKernels_packed_size(isa, K, N));
    CDoodleKernels_pack_weights(isa, w, K, N, packed);
    return packed;
}

static void check_gemm(CDoodleKernels_ISA isa, int M, int K, int N, int allow_minus_128) {
    const size_t lda = (size_t)(K + 3) / 4 * 4 + (size_t)uniform(3) * 4;
    uint8_t *A = aligned((size_t)M * lda);
    fill_activations(A, (size_t)M * lda);
    int8_t *w = malloc((size_t)K * N);
    const int bound = fill_weights(w, (size_t)K * N, allow_minus_128);
    void *packed_ref = pack(CDoodleKernels_ISA_reference, w, K, N), *packed = pack(isa, w, K, N);
    Requant r = make_requant(K, N);
    const size_t ldc = (size_t)N + (size_t)uniform(5);
    uint8_t *want8 = calloc((size_t)M * ldc, 1), *got8 = calloc((size_t)M * ldc, 1);
    int32_t *want32 = calloc((size_t)M * ldc, 4), *got32 = calloc((size_t)M * ldc, 4);
    CDoodleKernels_gemm_u8s8(CDoodleKernels_ISA_reference, A, lda, M, K, N, packed_ref, &r.rq, want8, ldc);
    CDoodleKernels_gemm_u8s8(isa, A, lda, M, K, N, packed, &r.rq, got8, ldc);
    CDoodleKernels_gemm_u8s8_i32(CDoodleKernels_ISA_reference, A, lda, M, K, N, packed_ref, r.bias, want32, ldc);
    CDoodleKernels_gemm_u8s8_i32(isa, A, lda, M, K, N, packed, r.bias, got32, ldc);
    char detail[128];
    snprintf(detail, sizeof(detail), "M=%d K=%d N=%d |w|<=%d%s", M, K, N, bound,
             allow_minus_128 ? " with -128 weights" : "");
    report("gemm_u8s8", isa, memcmp(want8, got8, (size_t)M * ldc) == 0, detail);
    report("gemm_u8s8_i32", isa, memcmp(want32, got32, (size_t)M * ldc * 4) == 0, detail);
    free(A), free(w), free(packed_ref), free(packed), free(r.bias), free(r.scale);
    free(want8), free(got8), free(want32), free(got32);
}

/// A random convolution input of in_h rows of in_w pixels, its rows `*pitch` bytes apart (sometimes with a gap).
static uint8_t *conv_input(int in_h, int in_w, int c, size_t *pitch) {
    *pitch = (size_t)in_w * c + (size_t)uniform(3) * 4;
    uint8_t *in = aligned((size_t)in_h * *pitch + 64);
    fill_activations(in, (size_t)in_h * *pitch + 64);
    return in;
}

/// Implicit convolution on a bordered input (what the engine hands it), against the reference implicit
/// convolution and against im2col + GEMM on the reference path.
static void check_conv(CDoodleKernels_ISA isa, int out_h, int out_w, int c, int k_h, int k_w) {
    const int in_h = out_h + k_h - 1, in_w = out_w + k_w - 1;
    size_t pitch;
    uint8_t *in = conv_input(in_h, in_w, c, &pitch);
    const int K = k_h * k_w * c, N = 1 + uniform(100);
    int8_t *w = malloc((size_t)K * N);
    const int bound = fill_weights(w, (size_t)K * N, 0);
    void *packed_ref = pack(CDoodleKernels_ISA_reference, w, K, N), *packed = pack(isa, w, K, N);
    Requant r = make_requant(K, N);
    const size_t M = (size_t)out_h * out_w;
    uint8_t *want = calloc(M * N, 1), *got = calloc(M * N, 1), *via_gemm = calloc(M * N, 1);
    CDoodleKernels_conv_implicit_u8(CDoodleKernels_ISA_reference, in, pitch, c, k_h, k_w, out_h, out_w, packed_ref,
                                    N, &r.rq, want, (size_t)N);
    CDoodleKernels_conv_implicit_u8(isa, in, pitch, c, k_h, k_w, out_h, out_w, packed, N, &r.rq, got, (size_t)N);
    // im2col over the same bytes: a dense copy of the window rows, no padding.
    uint8_t *dense = aligned((size_t)in_h * in_w * c);
    for (int y = 0; y < in_h; y++) memcpy(dense + (size_t)y * in_w * c, in + (size_t)y * pitch, (size_t)in_w * c);
    const CDoodleKernels_ConvShape shape = {.in_h = in_h, .in_w = in_w, .in_c = c, .k_h = k_h, .k_w = k_w,
                                            .stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1,
                                            .out_h = out_h, .out_w = out_w};
    const size_t row_bytes = (size_t)(K + 3) / 4 * 4;
    uint8_t *cols = aligned(M * row_bytes);
    CDoodleKernels_im2col_u8(CDoodleKernels_ISA_reference, &shape, dense, 0, cols, row_bytes);
    CDoodleKernels_gemm_u8s8(CDoodleKernels_ISA_reference, cols, row_bytes, (int)M, K, N, packed_ref, &r.rq,
                             via_gemm, (size_t)N);
    char detail[128];
    snprintf(detail, sizeof(detail), "out %dx%d c=%d k=%dx%d N=%d |w|<=%d", out_h, out_w, c, k_h, k_w, N, bound);
    report("conv_implicit_u8", isa, memcmp(want, got, M * N) == 0, detail);
    if (isa == CDoodleKernels_ISA_reference) report("conv_implicit_u8 = im2col + gemm", isa, memcmp(want, via_gemm, M * N) == 0, detail);
    free(in), free(w), free(packed_ref), free(packed), free(r.bias), free(r.scale), free(want), free(got);
    free(via_gemm);
    free(dense), free(cols);
}

/// Convolution fused with 2 x 2, stride-2 max pooling, against the reference convolution followed by the reference
/// pooling, written into rows with a gap after each (as into a bordered buffer); the gaps must stay untouched.
static void check_conv_pool2(CDoodleKernels_ISA isa, int out_h, int out_w, int c, int k_h, int k_w,
                             int allow_minus_128) {
    const int in_h = out_h + k_h - 1, in_w = out_w + k_w - 1;
    size_t pitch;
    uint8_t *in = conv_input(in_h, in_w, c, &pitch);
    const int K = k_h * k_w * c, N = 1 + uniform(100);
    int8_t *w = malloc((size_t)K * N);
    const int bound = fill_weights(w, (size_t)K * N, allow_minus_128);
    void *packed_ref = pack(CDoodleKernels_ISA_reference, w, K, N), *packed = pack(isa, w, K, N);
    Requant r = make_requant(K, N);
    const int pooled_h = out_h / 2, pooled_w = out_w / 2;
    const size_t ldc = (size_t)N + (size_t)uniform(3), out_pitch = (size_t)pooled_w * ldc + (size_t)uniform(3) * 8;
    uint8_t *full = calloc((size_t)out_h * out_w * N, 1);
    uint8_t *want = calloc((size_t)pooled_h * out_pitch + 1, 1), *got = calloc((size_t)pooled_h * out_pitch + 1, 1);
    CDoodleKernels_conv_implicit_u8(CDoodleKernels_ISA_reference, in, pitch, c, k_h, k_w, out_h, out_w, packed_ref,
                                    N, &r.rq, full, (size_t)N);
    for (int py = 0; py < pooled_h; py++) {
        for (int px = 0; px < pooled_w; px++) {
            for (int n = 0; n < N; n++) {
                uint8_t most = 0;
                for (int d = 0; d < 4; d++) {
                    const uint8_t v = full[((size_t)(2 * py + d / 2) * out_w + (size_t)(2 * px + d % 2)) * N + n];
                    most = v > most ? v : most;
                }
                want[(size_t)py * out_pitch + (size_t)px * ldc + n] = most;
            }
        }
    }
    CDoodleKernels_conv_implicit_pool2_u8(isa, in, pitch, c, k_h, k_w, out_h, out_w, packed, N, &r.rq, got, ldc,
                                          out_pitch);
    char detail[128];
    snprintf(detail, sizeof(detail), "conv out %dx%d c=%d k=%dx%d N=%d |w|<=%d%s", out_h, out_w, c, k_h, k_w, N,
             bound, allow_minus_128 ? " with -128 weights" : "");
    report("conv_implicit_pool2_u8 = conv + maxpool", isa,
           memcmp(want, got, (size_t)pooled_h * out_pitch + 1) == 0, detail);
    free(in), free(w), free(packed_ref), free(packed), free(r.bias), free(r.scale), free(full), free(want), free(got);
}

/// The 3 x 3 convolution and 2 x 2 pool by Winograd F(2 x 2, 3 x 3) against the reference convolution and pool, into
/// rows with gaps (which must stay untouched). With `extremes`, every input is 255 and the weights alternate 127,
/// -128, so the transforms reach their bounds.
static void check_winograd_pool2(CDoodleKernels_ISA isa, int out_h, int out_w, int c, int N, int extremes) {
    const int in_h = out_h + 2, in_w = out_w + 2, K = 9 * c;
    size_t pitch;
    uint8_t *in = conv_input(in_h, in_w, c, &pitch);
    int8_t *w = malloc((size_t)K * N);
    int bound = 128;
    if (extremes) {
        memset(in, 255, (size_t)in_h * pitch);
        for (size_t i = 0; i < (size_t)K * N; i++) w[i] = (int8_t)(i % 2 ? -128 : 127);
    } else {
        bound = fill_weights(w, (size_t)K * N, uniform(3) == 0);
    }
    void *packed_ref = pack(CDoodleKernels_ISA_reference, w, K, N);
    void *winograd = aligned(CDoodleKernels_winograd_packed_size(c, N));
    CDoodleKernels_pack_winograd(w, c, N, winograd);
    Requant r = make_requant(K, N);
    const int pooled_h = out_h / 2, pooled_w = out_w / 2;
    const size_t ldc = (size_t)N + (size_t)uniform(3), out_pitch = (size_t)pooled_w * ldc + (size_t)uniform(3) * 8;
    const size_t bytes = (size_t)pooled_h * out_pitch + 1;
    uint8_t *want = calloc(bytes, 1), *got = calloc(bytes, 1);
    CDoodleKernels_conv_implicit_pool2_u8(CDoodleKernels_ISA_reference, in, pitch, c, 3, 3, out_h, out_w, packed_ref,
                                          N, &r.rq, want, ldc, out_pitch);
    CDoodleKernels_conv3x3_pool2_winograd_u8(isa, in, pitch, c, out_h, out_w, winograd, N, &r.rq, got, ldc,
                                             out_pitch);
    char detail[128];
    snprintf(detail, sizeof(detail), "conv out %dx%d c=%d N=%d |w|<=%d%s", out_h, out_w, c, N, bound,
             extremes ? " at the extremes" : "");
    report("conv3x3_pool2_winograd_u8 = conv + maxpool", isa, memcmp(want, got, bytes) == 0, detail);
    free(in), free(w), free(packed_ref), free(winograd), free(r.bias), free(r.scale), free(want), free(got);
}

static void check_maxpool(CDoodleKernels_ISA isa, int in_h, int in_w, int c, int k, int stride) {
    const int out_h = (in_h - k) / stride + 1, out_w = (in_w - k) / stride + 1;
    uint8_t *in = malloc((size_t)in_h * in_w * c);
    fill_activations(in, (size_t)in_h * in_w * c);
    const size_t pitch = (size_t)out_w * c + (size_t)uniform(2) * 2 * c;
    uint8_t *want = calloc((size_t)out_h * pitch, 1), *got = calloc((size_t)out_h * pitch, 1);
    CDoodleKernels_maxpool_u8(CDoodleKernels_ISA_reference, in, in_h, in_w, c, k, k, stride, stride, out_h, out_w,
                              want, pitch);
    CDoodleKernels_maxpool_u8(isa, in, in_h, in_w, c, k, k, stride, stride, out_h, out_w, got, pitch);
    char detail[96];
    snprintf(detail, sizeof(detail), "%dx%dx%d k=%d s=%d", in_h, in_w, c, k, stride);
    report("maxpool_u8", isa, memcmp(want, got, (size_t)out_h * pitch) == 0, detail);
    free(in), free(want), free(got);
}

int main(int argc, char **argv) {
    int rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0) rng_state = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
    }
    printf("CPU: %s\n", CDoodleKernels_cpu_model());
    printf("paths:");
    for (int isa = 0; isa < CDoodleKernels_ISA_count; isa++) {
        if (CDoodleKernels_isa_supported((CDoodleKernels_ISA)isa)) printf(" %s", isa_names[isa]);
    }
    printf(" (best: %s)\n", isa_names[CDoodleKernels_best_isa()]);
    // The shipped model's layers (v4; v3's 864 x 384 and 40 channels too), then shapes that exercise every tile and panel remainder.
    // One row takes whole panels several at a time on AVX2 ({1, 384, 345}); 2 and 3 rows do not ({3, 300, 200},
    // {2, 37, 75}).
    static const int model_gemms[][3] = {{64, 1152, 384}, {1, 1152, 384}, {64, 384, 345}, {7, 384, 345},
                                         {64, 864, 384}, {1, 384, 345}, {3, 300, 200}, {2, 37, 75}};
    static const int conv_shapes[][5] = {{28, 28, 1, 3, 4}, {14, 14, 32, 3, 3}, {7, 7, 48, 3, 3}, {7, 7, 40, 3, 3},
                                         {5, 9, 4, 2, 1}, {3, 3, 8, 1, 2}, {1, 13, 12, 3, 3}};
    for (int isa = 0; isa < CDoodleKernels_ISA_count; isa++) {
        if (!CDoodleKernels_isa_supported((CDoodleKernels_ISA)isa)) continue;
        for (int round = 0; round < rounds; round++) {
            for (size_t s = 0; s < sizeof(model_gemms) / sizeof(model_gemms[0]); s++) {
                check_gemm((CDoodleKernels_ISA)isa, model_gemms[s][0], model_gemms[s][1], model_gemms[s][2], 0);
            }
            for (int t = 0; t < 40; t++) {
                check_gemm((CDoodleKernels_ISA)isa, 1 + uniform(20), 1 + uniform(300), 1 + uniform(80), t % 8 == 0);
            }
            for (size_t s = 0; s < sizeof(conv_shapes) / sizeof(conv_shapes[0]); s++) {
                const int *v = conv_shapes[s];
                check_conv((CDoodleKernels_ISA)isa, v[0], v[1], v[2], v[3], v[4]);
            }
            for (int t = 0; t < 10; t++) {
                const int c = 4 * (1 + uniform(12));
                check_conv((CDoodleKernels_ISA)isa, 1 + uniform(12), 1 + uniform(12), c, 1 + uniform(3), 1 + uniform(3));
            }
            for (size_t s = 0; s < 3; s++) {  // the model's convolutions, each followed by a 2 x 2 pool
                const int *v = conv_shapes[s];
                check_conv_pool2((CDoodleKernels_ISA)isa, v[0], v[1], v[2], v[3], v[4], 0);
            }
            for (int t = 0; t < 12; t++) {
                const int c = 4 * (1 + uniform(12));
                check_conv_pool2((CDoodleKernels_ISA)isa, 2 + uniform(12), 2 + uniform(12), c, 1 + uniform(3),
                                 1 + uniform(3), t % 6 == 5);
            }
            for (int t = 0; t < 4; t++) {  // 3 rows of one 4-byte group (the image's convolution), any size
                check_conv_pool2((CDoodleKernels_ISA)isa, 2 + uniform(30), 2 + uniform(30), t % 2 ? 4 : 1, 3,
                                 t % 2 ? 1 : 4, t == 3);
            }
            check_winograd_pool2((CDoodleKernels_ISA)isa, 14, 14, 32, 48, round == 0);  // the model's two
            check_winograd_pool2((CDoodleKernels_ISA)isa, 7, 7, 48, 128, 0);             // 3 x 3 convolutions
            for (int t = 0; t < 6; t++) {
                check_winograd_pool2((CDoodleKernels_ISA)isa, 2 + uniform(20), 2 + uniform(20), 16 * (1 + uniform(4)),
                                     8 * (1 + uniform(12)), t == 5);
            }
            check_maxpool((CDoodleKernels_ISA)isa, 28, 28, 32, 2, 2);
            check_maxpool((CDoodleKernels_ISA)isa, 14, 14, 40, 2, 2);
            check_maxpool((CDoodleKernels_ISA)isa, 7, 7, 96, 2, 2);
            check_maxpool((CDoodleKernels_ISA)isa, 9, 11, 1 + uniform(70), 3, 2);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

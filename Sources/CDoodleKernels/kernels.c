// Dispatch, packing and the portable reference kernels.
#include "internal.h"
#include <stdio.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#if defined(__aarch64__) && defined(__APPLE__)
static int cdk_sysctl_flag(const char *name) {
    int value = 0;
    size_t size = sizeof(value);
    return sysctlbyname(name, &value, &size, NULL, 0) == 0 && value != 0;
}
#endif

int CDoodleKernels_isa_supported(CDoodleKernels_ISA isa) {
    switch (isa) {
    case CDoodleKernels_ISA_reference:
        return 1;
#if defined(__x86_64__)
    case CDoodleKernels_ISA_avx2:
        return __builtin_cpu_supports("avx2");
    case CDoodleKernels_ISA_avx512vnni:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__) && defined(__linux__)
    case CDoodleKernels_ISA_neon_dotprod:
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    case CDoodleKernels_ISA_neon_i8mm:
        return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#elif defined(__aarch64__) && defined(__APPLE__)
    case CDoodleKernels_ISA_neon_dotprod:
        return cdk_sysctl_flag("hw.optional.arm.FEAT_DotProd");
    case CDoodleKernels_ISA_neon_i8mm:
        return cdk_sysctl_flag("hw.optional.arm.FEAT_I8MM");
#endif
    default:
        return 0;
    }
}

CDoodleKernels_ISA CDoodleKernels_best_isa(void) {
    static const CDoodleKernels_ISA order[] = {CDoodleKernels_ISA_avx512vnni, CDoodleKernels_ISA_avx2,
                                               CDoodleKernels_ISA_neon_i8mm, CDoodleKernels_ISA_neon_dotprod};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (CDoodleKernels_isa_supported(order[i])) return order[i];
    }
    return CDoodleKernels_ISA_reference;
}

/// Whether `isa` packs weights in column pairs (the i8mm path, where the build can run it; elsewhere it falls back to
/// the reference kernels, which read the shared layout).
static int cdk_packs_pairs(CDoodleKernels_ISA isa) {
#if defined(__aarch64__)
    return isa == CDoodleKernels_ISA_neon_i8mm;
#else
    (void)isa;
    return 0;
#endif
}

/// Bytes of one 16-column panel packed for `isa`.
static size_t cdk_panel_bytes_for(CDoodleKernels_ISA isa, int K) {
    return cdk_packs_pairs(isa) ? cdk_pair_panel_bytes(K) : cdk_panel_bytes(K);
}

/// Bytes of the panels alone; the trailer follows them.
static size_t cdk_panels_bytes_for(CDoodleKernels_ISA isa, int K, int N) {
    return (size_t)CDK_PANELS(N) * cdk_panel_bytes_for(isa, K);
}

size_t CDoodleKernels_packed_size(CDoodleKernels_ISA isa, int K, int N) {
    return cdk_panels_bytes_for(isa, K, N) + (size_t)(CDK_PANELS(N) * CDK_PANEL) * sizeof(int32_t) + 64;
}

/// Where weight (k, column n % 16) of a panel goes: [K4][16][4], or in column pairs [K8][16][8].
static size_t cdk_panel_index(int pairs, int k, int column) {
    if (pairs) return ((size_t)(k / 8) * CDK_PANEL + (size_t)column) * 8 + (size_t)(k % 8);
    return ((size_t)(k / 4) * CDK_PANEL + (size_t)column) * 4 + (size_t)(k % 4);
}

void CDoodleKernels_pack_weights(CDoodleKernels_ISA isa, const int8_t *w, int K, int N, void *packed) {
    int8_t *out = (int8_t *)packed;
    memset(out, 0, CDoodleKernels_packed_size(isa, K, N));
    const int pairs = cdk_packs_pairs(isa);
    const size_t panel_bytes = cdk_panel_bytes_for(isa, K);
    int32_t *correction = (int32_t *)(void *)(out + cdk_panels_bytes_for(isa, K, N));
    int has_minus_128 = 0, fits_7_bits = 1;
    for (int n = 0; n < N; n++) {
        int8_t *panel = out + (size_t)(n / CDK_PANEL) * panel_bytes;
        int32_t sum = 0;
        for (int k = 0; k < K; k++) {
            const int8_t v = w[(size_t)n * K + k];
            panel[cdk_panel_index(pairs, k, n % CDK_PANEL)] = v;
            sum += v;
            has_minus_128 |= v == -128;
            fits_7_bits &= v >= -64 && v <= 64;
        }
        correction[n] = 128 * sum;
    }
    correction[CDK_PANELS(N) * CDK_PANEL] = has_minus_128;
    correction[CDK_PANELS(N) * CDK_PANEL + 1] = fits_7_bits;
}

void CDoodleKernels_unpack_weights(CDoodleKernels_ISA isa, const void *packed, int K, int N, int8_t *w) {
    const int8_t *in = (const int8_t *)packed;
    const int pairs = cdk_packs_pairs(isa);
    const size_t panel_bytes = cdk_panel_bytes_for(isa, K);
    for (int n = 0; n < N; n++) {
        const int8_t *panel = in + (size_t)(n / CDK_PANEL) * panel_bytes;
        for (int k = 0; k < K; k++) w[(size_t)n * K + k] = panel[cdk_panel_index(pairs, k, n % CDK_PANEL)];
    }
}

void cdk_gemm_reference(const uint8_t *A, size_t lda, int M, int K, int N, const int8_t *B,
                        const CDoodleKernels_Requant *rq, const int32_t *bias, uint8_t *C8, int32_t *C32,
                        size_t ldc) {
    const size_t pb = cdk_panel_bytes(K);
    for (int m = 0; m < M; m++) {
        const uint8_t *a = A + (size_t)m * lda;
        for (int n = 0; n < N; n++) {
            const int8_t *panel = B + (size_t)(n / CDK_PANEL) * pb + (n % CDK_PANEL) * 4;
            int32_t acc = bias ? bias[n] : 0;
            for (int k = 0; k < K; k++) {
                acc += (int32_t)a[k] * (int32_t)panel[(size_t)(k / 4) * CDK_PANEL * 4 + (k % 4)];
            }
            if (C8) {
                C8[(size_t)m * ldc + n] = cdk_requant(acc, rq->scale[n], rq->zero_point, rq->lo, rq->hi);
            } else {
                C32[(size_t)m * ldc + n] = acc;
            }
        }
    }
}

/// The GEMM and implicit-convolution kernels of one path; every ISA the build cannot run gets the reference ones.
typedef struct {
    void (*gemm)(const uint8_t *, size_t, int, int, int, const int8_t *, const CDoodleKernels_Requant *,
                 const int32_t *, uint8_t *, int32_t *, size_t);
    void (*conv_implicit)(CDK_CONV_IMPLICIT_ARGS);
    void (*conv_pool2)(CDK_CONV_POOL2_ARGS);
} cdk_path;

static cdk_path cdk_path_for(CDoodleKernels_ISA isa) {
    switch (isa) {
#if defined(__x86_64__)
    case CDoodleKernels_ISA_avx512vnni: return (cdk_path){cdk_gemm_avx512vnni, cdk_conv_implicit_avx512vnni,
                                                             cdk_conv_pool2_avx512vnni};
    case CDoodleKernels_ISA_avx2: return (cdk_path){cdk_gemm_avx2, cdk_conv_implicit_avx2, cdk_conv_pool2_avx2};
#elif defined(__aarch64__)
    case CDoodleKernels_ISA_neon_i8mm: return (cdk_path){cdk_gemm_neon_i8mm, cdk_conv_implicit_neon_i8mm,
                                                             cdk_conv_pool2_neon_i8mm};
    case CDoodleKernels_ISA_neon_dotprod: return (cdk_path){cdk_gemm_neon_dotprod, cdk_conv_implicit_neon_dotprod,
                                                             cdk_conv_pool2_neon_dotprod};
#endif
    default: return (cdk_path){cdk_gemm_reference, cdk_conv_implicit_reference, cdk_conv_pool2_reference};
    }
}

void CDoodleKernels_conv_implicit_u8(CDoodleKernels_ISA isa, const uint8_t *in, size_t in_pitch, int c, int k_h,
                                     int k_w, int out_h, int out_w, const void *packedB, int N,
                                     const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc) {
    cdk_path_for(isa).conv_implicit(in, in_pitch, c, k_h, k_w, out_h, out_w, (const int8_t *)packedB, N, rq, out, ldc);
}

void CDoodleKernels_conv_implicit_pool2_u8(CDoodleKernels_ISA isa, const uint8_t *in, size_t in_pitch, int c,
                                           int k_h, int k_w, int out_h, int out_w, const void *packedB, int N,
                                           const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc,
                                           size_t out_pitch) {
    cdk_path_for(isa).conv_pool2(in, in_pitch, c, k_h, k_w, out_h, out_w, (const int8_t *)packedB, N, rq, out, ldc,
                                 out_pitch);
}

int CDoodleKernels_winograd_pays(CDoodleKernels_ISA isa) {
    return isa == CDoodleKernels_ISA_avx2 && CDoodleKernels_isa_supported(isa);
}

size_t CDoodleKernels_winograd_packed_size(int c, int N) { return cdk_winograd_size(c, N); }

size_t CDoodleKernels_winograd_madds(CDoodleKernels_ISA isa, int c, int N, int out_h, int out_w) {
    if (!CDoodleKernels_winograd_pays(isa) || cdk_winograd_size(c, N) == 0 || out_h < 2 || out_w < 2) return 0;
    return (size_t)16 * (size_t)cdk_winograd_padded_pixels((out_h / 2) * (out_w / 2)) * (size_t)c * (size_t)N;
}

void CDoodleKernels_pack_winograd(const int8_t *w, int c, int N, void *packed) {
    if (cdk_winograd_size(c, N) == 0) return;  // no such packing: nothing to write
    cdk_winograd_pack(w, c, N, (int16_t *)packed);
}

void CDoodleKernels_conv3x3_pool2_winograd_u8(CDoodleKernels_ISA isa, const uint8_t *in, size_t in_pitch, int c,
                                              int out_h, int out_w, const void *packed, int N,
                                              const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc,
                                              size_t out_pitch) {
    if (cdk_winograd_size(c, N) == 0) return;  // no weights can have been packed for this shape
#if defined(__x86_64__)
    if (CDoodleKernels_winograd_pays(isa)) {
        cdk_winograd_pool2_avx2(in, in_pitch, c, out_h, out_w, (const int16_t *)packed, N, rq, out, ldc, out_pitch);
        return;
    }
#endif
    (void)isa;
    cdk_winograd_pool2_reference(in, in_pitch, c, out_h, out_w, (const int16_t *)packed, N, rq, out, ldc, out_pitch);
}

/// Output pixel (oy, ox)'s int32 sum for column n, bias included.
static int32_t conv_sum(const uint8_t *in, size_t in_pitch, int c, int k_h, int k_w, const int8_t *B, int oy,
                        int ox, int n, int32_t bias) {
    const int K = k_h * k_w * c;
    const size_t pb = cdk_panel_bytes(K);
    const size_t seg = (size_t)k_w * c;
    const uint8_t *window = in + (size_t)oy * in_pitch + (size_t)ox * c;
    const int8_t *panel = B + (size_t)(n / CDK_PANEL) * pb + (n % CDK_PANEL) * 4;
    int32_t acc = bias;
    for (int k = 0; k < K; k++) {
        const uint8_t a = window[(size_t)(k / seg) * in_pitch + (size_t)(k % seg)];
        acc += (int32_t)a * (int32_t)panel[(size_t)(k / 4) * CDK_PANEL * 4 + (k % 4)];
    }
    return acc;
}

void cdk_conv_implicit_reference(CDK_CONV_IMPLICIT_ARGS) {
    for (int oy = 0; oy < out_h; oy++) {
        for (int ox = 0; ox < out_w; ox++) {
            uint8_t *dst = out + ((size_t)oy * out_w + ox) * ldc;
            for (int n = 0; n < N; n++) {
                const int32_t acc = conv_sum(in, in_pitch, c, k_h, k_w, B, oy, ox, n, rq->bias[n]);
                dst[n] = cdk_requant(acc, rq->scale[n], rq->zero_point, rq->lo, rq->hi);
            }
        }
    }
}

void cdk_conv_pool2_reference(CDK_CONV_POOL2_ARGS) {
    for (int py = 0; py < out_h / 2; py++) {
        for (int px = 0; px < out_w / 2; px++) {
            uint8_t *dst = out + (size_t)py * out_pitch + (size_t)px * ldc;
            for (int n = 0; n < N; n++) {
                int32_t most = INT32_MIN;
                for (int d = 0; d < 4; d++) {
                    const int32_t acc =
                        conv_sum(in, in_pitch, c, k_h, k_w, B, 2 * py + d / 2, 2 * px + d % 2, n, rq->bias[n]);
                    most = acc > most ? acc : most;
                }
                dst[n] = cdk_requant(most, rq->scale[n], rq->zero_point, rq->lo, rq->hi);
            }
        }
    }
}

void CDoodleKernels_gemm_u8s8(CDoodleKernels_ISA isa, const uint8_t *A, size_t lda, int M, int K, int N,
                              const void *packedB, const CDoodleKernels_Requant *rq, uint8_t *C, size_t ldc) {
    cdk_path_for(isa).gemm(A, lda, M, K, N, (const int8_t *)packedB, rq, rq->bias, C, NULL, ldc);
}

void CDoodleKernels_gemm_u8s8_i32(CDoodleKernels_ISA isa, const uint8_t *A, size_t lda, int M, int K, int N,
                                  const void *packedB, const int32_t *bias, int32_t *C, size_t ldc) {
    cdk_path_for(isa).gemm(A, lda, M, K, N, (const int8_t *)packedB, NULL, bias, NULL, C, ldc);
}

void CDoodleKernels_im2col_u8(CDoodleKernels_ISA isa, const CDoodleKernels_ConvShape *s, const uint8_t *in,
                              uint8_t pad_value, uint8_t *out, size_t row_bytes) {
#if defined(__x86_64__)
    if (isa == CDoodleKernels_ISA_avx512vnni) {
        cdk_im2col_avx512(s, in, pad_value, out, row_bytes);
        return;
    }
#endif
    (void)isa;
    cdk_im2col_reference(s, in, pad_value, out, row_bytes);
}

void cdk_im2col_reference(const CDoodleKernels_ConvShape *s, const uint8_t *in, uint8_t pad_value, uint8_t *out,
                         size_t row_bytes) {
    const size_t c = (size_t)s->in_c;
    const size_t used = (size_t)s->k_h * s->k_w * c;
    for (int oy = 0; oy < s->out_h; oy++) {
        for (int ox = 0; ox < s->out_w; ox++) {
            uint8_t *row = out + ((size_t)oy * s->out_w + ox) * row_bytes;
            uint8_t *dst = row;
            for (int ky = 0; ky < s->k_h; ky++) {
                const int iy = oy * s->stride_h - s->pad_top + ky * s->dil_h;
                for (int kx = 0; kx < s->k_w; kx++, dst += c) {
                    const int ix = ox * s->stride_w - s->pad_left + kx * s->dil_w;
                    if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) {
                        memset(dst, pad_value, c);
                    } else if (c == 1) {
                        *dst = in[(size_t)iy * s->in_w + ix];
                    } else {
                        memcpy(dst, in + ((size_t)iy * s->in_w + ix) * c, c);
                    }
                }
            }
            if (row_bytes > used) memset(row + used, 0, row_bytes - used);
        }
    }
}

void CDoodleKernels_maxpool_u8(CDoodleKernels_ISA isa, const uint8_t *in, int in_h, int in_w, int c, int k_h,
                               int k_w, int stride_h, int stride_w, int out_h, int out_w, uint8_t *out,
                               size_t out_pitch) {
    (void)in_h;
#if defined(__x86_64__)
    if (isa == CDoodleKernels_ISA_avx512vnni) {
        cdk_maxpool_avx512(in, in_w, c, k_h, k_w, stride_h, stride_w, out_h, out_w, out, out_pitch);
        return;
    }
#endif
    if (isa != CDoodleKernels_ISA_reference && c >= 16) {
        cdk_maxpool_simd128(in, in_w, c, k_h, k_w, stride_h, stride_w, out_h, out_w, out, out_pitch);
        return;
    }
    cdk_maxpool_reference(in, in_w, c, k_h, k_w, stride_h, stride_w, out_h, out_w, out, out_pitch);
}

void cdk_maxpool_reference(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w,
                           int out_h, int out_w, uint8_t *out, size_t out_pitch) {
    for (int oy = 0; oy < out_h; oy++) {
        for (int ox = 0; ox < out_w; ox++) {
            uint8_t *dst = out + (size_t)oy * out_pitch + (size_t)ox * c;
            const uint8_t *first = in + ((size_t)(oy * stride_h) * in_w + ox * stride_w) * c;
            memcpy(dst, first, (size_t)c);
            for (int ky = 0; ky < k_h; ky++) {
                for (int kx = 0; kx < k_w; kx++) {
                    const uint8_t *src = in + ((size_t)(oy * stride_h + ky) * in_w + (ox * stride_w + kx)) * c;
                    for (int i = 0; i < c; i++) dst[i] = src[i] > dst[i] ? src[i] : dst[i];
                }
            }
        }
    }
}

void CDoodleKernels_add_u8(const uint8_t *a, int32_t za, float sa, const uint8_t *b, int32_t zb, float sb,
                           int32_t zo, int32_t lo, int32_t hi, size_t count, uint8_t *out) {
    for (size_t i = 0; i < count; i++) {
        float v = (float)((int32_t)a[i] - za) * sa + (float)((int32_t)b[i] - zb) * sb;
        v = fmaxf(v, (float)(lo - zo));
        v = fminf(v, (float)(hi - zo));
        out[i] = (uint8_t)((int32_t)nearbyintf(v) + zo);
    }
}

void CDoodleKernels_add_const_u8(const uint8_t *a, int32_t za, float sa, const float *b, size_t channels,
                                 int32_t zo, int32_t lo, int32_t hi, size_t count, uint8_t *out) {
    for (size_t i = 0; i < count; i++) {
        float v = (float)((int32_t)a[i] - za) * sa + b[i % channels];
        v = fmaxf(v, (float)(lo - zo));
        v = fminf(v, (float)(hi - zo));
        out[i] = (uint8_t)((int32_t)nearbyintf(v) + zo);
    }
}

double CDoodleKernels_peak_macs_per_second(CDoodleKernels_ISA isa, double seconds) {
    if (!CDoodleKernels_isa_supported(isa)) return 0;
    switch (isa) {
#if defined(__x86_64__)
    case CDoodleKernels_ISA_avx512vnni: return cdk_peak_avx512vnni(seconds);
    case CDoodleKernels_ISA_avx2: return cdk_peak_avx2(seconds);
#elif defined(__aarch64__)
    case CDoodleKernels_ISA_neon_dotprod: return cdk_peak_neon_dotprod(seconds);
    case CDoodleKernels_ISA_neon_i8mm: return cdk_peak_neon_i8mm(seconds);
#endif
    default: return 0;
    }
}

double CDoodleKernels_peak_winograd_madds_per_second(CDoodleKernels_ISA isa, double seconds) {
    if (!CDoodleKernels_winograd_pays(isa)) return 0;
#if defined(__x86_64__)
    return cdk_peak_avx2_int16(seconds);
#else
    (void)seconds;
    return 0;
#endif
}

const char *CDoodleKernels_cpu_model(void) {
    static char model[256];
    static int done;
    if (done) return model;
    done = 1;
    snprintf(model, sizeof(model), "unknown CPU");
#if defined(__APPLE__)
    size_t size = sizeof(model);
    if (sysctlbyname("machdep.cpu.brand_string", model, &size, NULL, 0) == 0) return model;
#else
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return model;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        // x86: "model name : AMD EPYC ..."; ARM64 kernels print "CPU part" and no model name.
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) {
            const char *colon = strchr(line, ':');
            if (!colon) continue;
            colon++;
            while (*colon == ' ' || *colon == '\t') colon++;
            snprintf(model, sizeof(model), "%s", colon);
            model[strcspn(model, "\n")] = 0;
            break;
        }
        if (strncmp(line, "CPU part", 8) == 0 && strcmp(model, "unknown CPU") == 0) {
            const char *colon = strchr(line, ':');
            if (colon) {
                snprintf(model, sizeof(model), "ARM CPU part%s", colon + 1);
                model[strcspn(model, "\n")] = 0;
            }
        }
    }
    fclose(f);
#endif
    return model;
}

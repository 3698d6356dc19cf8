// Measures this core's sustained multiply-accumulate throughput on the instructions each path is built on, so
// benchmarks report shares of a peak that was measured rather than assumed from a nominal clock. Each loop runs
// 12 independent accumulator chains: enough to cover the instructions' latency at full throughput.
#include "internal.h"
#include <time.h>

static double cdk_seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/// Runs BODY (12 chains of one step each) in rounds of 100,000 until `seconds` have passed; MACS is what one
/// pass of BODY does. Defines `result`.
#define CDK_PEAK_LOOP(BODY, MACS)                                                                                  \
    struct timespec t0;                                                                                            \
    clock_gettime(CLOCK_MONOTONIC, &t0);                                                                           \
    long rounds = 0;                                                                                               \
    double elapsed = 0;                                                                                            \
    do {                                                                                                           \
        for (int n = 0; n < 100000; n++) {                                                                         \
            BODY;                                                                                                  \
        }                                                                                                          \
        rounds++;                                                                                                  \
        elapsed = cdk_seconds_since(&t0);                                                                          \
    } while (elapsed < seconds);                                                                                   \
    const double result = (double)rounds * 100000.0 * (MACS) / elapsed;

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512vnni"))) double cdk_peak_avx512vnni(double seconds) {
    __m512i acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x01010101);
    CDK_PEAK_LOOP(for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
                  __asm__ volatile("" : "+v"(a)), 12.0 * 64.0)
    int sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_epi32(acc[i]);
    __asm__ volatile("" : : "r"(sink));
    return result;
}

/// Uses the 12 accumulators' sums, so that the loop computing them is not removed.
__attribute__((target("avx2"))) static void keep(const __m256i acc[12]) {
    int32_t lanes[8], sink = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_si256((__m256i *)lanes, acc[i]);
        for (int j = 0; j < 8; j++) sink += lanes[j];
    }
    __asm__ volatile("" : : "r"(sink));
}

/// vpmaddubsw (32 u8 x s8 products in 16-bit pairs) + vpmaddwd by ones + vpaddd: the instructions of onnxruntime's
/// AVX2 int8 kernels; the AVX2 path adds one vpsignb per step to stay exact.
__attribute__((target("avx2"))) double cdk_peak_avx2(double seconds) {
    __m256i acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_epi32(i);
    __m256i a = _mm256_set1_epi32(0x01020304), b = _mm256_set1_epi32(0x01010101);
    const __m256i ones = _mm256_set1_epi16(1);
    // The empty asm makes `a` look new to the compiler before every chain's step, so no product is shared
    // between chains or hoisted out of the loop; it emits no instruction.
    CDK_PEAK_LOOP(for (int i = 0; i < 12; i++) {
        __asm__ volatile("" : "+x"(a));
        acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    }, 12.0 * 32.0)
    keep(acc);
    return result;
}

/// vpmaddwd (16 int16 products in 32-bit pairs) + vpaddd: the instructions of the AVX2 path's Winograd convolutions
/// (winograd.c), whose multiply-adds are int16 ones.
__attribute__((target("avx2"))) double cdk_peak_avx2_int16(double seconds) {
    __m256i acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_epi32(i);
    __m256i a = _mm256_set1_epi32(0x00010002), b = _mm256_set1_epi32(0x00030001);
    CDK_PEAK_LOOP(for (int i = 0; i < 12; i++) {
        __asm__ volatile("" : "+x"(a));
        acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(a, b));
    }, 12.0 * 16.0)
    keep(acc);
    return result;
}
#else
double cdk_peak_avx512vnni(double seconds) { (void)seconds; return 0; }
double cdk_peak_avx2(double seconds) { (void)seconds; return 0; }
double cdk_peak_avx2_int16(double seconds) { (void)seconds; return 0; }
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

#define CDK_NEON_PEAK(NAME, TARGET, STEP, A_TYPE, A_INIT, MACS)                                                          \
    __attribute__((target(TARGET))) double NAME(double seconds) {                                                 \
        int32x4_t acc[12];                                                                                         \
        for (int i = 0; i < 12; i++) acc[i] = vdupq_n_s32(i);                                                      \
        A_TYPE a = A_INIT;                                                                                         \
        int8x16_t b = vdupq_n_s8(1);                                                                               \
        CDK_PEAK_LOOP(for (int i = 0; i < 12; i++) acc[i] = STEP(acc[i], a, b);                                    \
                      __asm__ volatile("" : "+w"(a)), 12.0 * (MACS))                                                 \
        int32_t sink = 0;                                                                                          \
        for (int i = 0; i < 12; i++) sink += vaddvq_s32(acc[i]);                                                   \
        __asm__ volatile("" : : "r"(sink));                                                                        \
        return result;                                                                                             \
    }

static inline __attribute__((target("arch=armv8.2-a+dotprod"), always_inline)) int32x4_t
cdk_sdot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
static inline __attribute__((target("arch=armv8.6-a+i8mm"), always_inline)) int32x4_t
cdk_usmmla(int32x4_t acc, uint8x16_t a, int8x16_t b) { return vusmmlaq_s32(acc, a, b); }

// sdot: 16 multiply-adds (4 lanes x 4); usmmla: 32 (a 2 x 8 by 8 x 2 block product).
CDK_NEON_PEAK(cdk_peak_neon_dotprod, "arch=armv8.2-a+dotprod", cdk_sdot, int8x16_t, vdupq_n_s8(3), 16.0)
CDK_NEON_PEAK(cdk_peak_neon_i8mm, "arch=armv8.6-a+i8mm", cdk_usmmla, uint8x16_t, vdupq_n_u8(3), 32.0)
#else
double cdk_peak_neon_dotprod(double seconds) { (void)seconds; return 0; }
double cdk_peak_neon_i8mm(double seconds) { (void)seconds; return 0; }
#endif

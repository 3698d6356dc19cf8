// Measures this core's sustained vpdpbusd throughput, so benchmarks report shares of a peak that was measured
// rather than assumed from a nominal clock.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <time.h>

__attribute__((target("avx512f,avx512vnni"))) double CDoodleKernels_vnni_peak_macs_per_second(double seconds) {
    __m512i acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x01010101);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rounds = 0;
    double elapsed = 0;
    do {
        for (int n = 0; n < 100000; n++) {
            // 12 independent chains: enough to cover the instruction's latency at full throughput.
            for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
            __asm__ volatile("" : "+v"(a));
        }
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    } while (elapsed < seconds);
    int sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_epi32(acc[i]);
    __asm__ volatile("" : : "r"(sink));
    return (double)rounds * 100000.0 * 12.0 * 64.0 / elapsed;
}
#else
double CDoodleKernels_vnni_peak_macs_per_second(double seconds) {
    (void)seconds;
    return 0;
}
#endif

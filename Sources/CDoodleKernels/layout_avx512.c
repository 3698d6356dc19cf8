// AVX-512 data movement: im2col as masked copies of whole kernel rows (k_w * C contiguous NHWC bytes), and
// max pooling a pixel's channels at a time.
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// Exact-size moves with no masked stores (slow on Zen 4): a length between two powers of two is covered by two
// overlapping moves of the smaller size, [0, w) and [n - w, n), so nothing outside [0, n) is read or written.
AVX512 static inline void copy_bytes(uint8_t *restrict dst, const uint8_t *restrict src, size_t n) {
    if (n >= 64) {
        size_t off = 0;
        for (; off + 64 <= n; off += 64) _mm512_storeu_si512(dst + off, _mm512_loadu_si512(src + off));
        if (off < n) _mm512_storeu_si512(dst + n - 64, _mm512_loadu_si512(src + n - 64));
    } else if (n >= 32) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)src), b = _mm256_loadu_si256((const __m256i *)(src + n - 32));
        _mm256_storeu_si256((__m256i *)dst, a);
        _mm256_storeu_si256((__m256i *)(dst + n - 32), b);
    } else if (n >= 16) {
        const __m128i a = _mm_loadu_si128((const __m128i *)src), b = _mm_loadu_si128((const __m128i *)(src + n - 16));
        _mm_storeu_si128((__m128i *)dst, a);
        _mm_storeu_si128((__m128i *)(dst + n - 16), b);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8), memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8), memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4), memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4), memcpy(dst + n - 4, &b, 4);
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, src, 2), memcpy(&b, src + n - 2, 2);
        memcpy(dst, &a, 2), memcpy(dst + n - 2, &b, 2);
    } else if (n == 1) {
        *dst = *src;
    }
}

AVX512 static inline void fill_bytes(uint8_t *dst, uint8_t value, size_t n) {
    if (n >= 64) {
        const __m512i v = _mm512_set1_epi8((char)value);
        size_t off = 0;
        for (; off + 64 <= n; off += 64) _mm512_storeu_si512(dst + off, v);
        if (off < n) _mm512_storeu_si512(dst + n - 64, v);
    } else {
        memset(dst, value, n);
    }
}

/// One kernel row (`seg` bytes) for output column `ox`, where the taps may be partly outside the image.
AVX512 static inline void edge_segment(uint8_t *dst, const uint8_t *src_row, int ix0, int k_w, int in_w, size_t c,
                                       uint8_t pad_value) {
    const int lo = ix0 < 0 ? -ix0 : 0;
    const int hi = ix0 + k_w > in_w ? in_w - ix0 : k_w;
    if (lo > 0) fill_bytes(dst, pad_value, (size_t)lo * c);
    if (hi > lo) copy_bytes(dst + (size_t)lo * c, src_row + (size_t)(ix0 + lo) * c, (size_t)(hi - lo) * c);
    if (hi < k_w) fill_bytes(dst + (size_t)(hi > 0 ? hi : 0) * c, pad_value, (size_t)(k_w - (hi > 0 ? hi : 0)) * c);
}

#define INNER_LOOP(COPY)                                                                                           \
    for (int ox = ox_lo; ox < ox_hi; ox++, dst += row_bytes, src += src_step) {                                    \
        COPY;                                                                                                      \
    }

AVX512 void cdk_im2col_avx512(const CDoodleKernels_ConvShape *shape, const uint8_t *restrict in, uint8_t pad_value,
                              uint8_t *restrict out, size_t row_bytes) {
    const CDoodleKernels_ConvShape s = *shape;
    if (s.dil_w != 1) {
        cdk_im2col_reference(shape, in, pad_value, out, row_bytes);
        return;
    }
    const size_t c = (size_t)s.in_c;
    const size_t seg = (size_t)s.k_w * c;  // one kernel row: k_w taps of c channels, contiguous in NHWC
    const size_t src_step = (size_t)s.stride_w * c;
    // Output columns whose taps all lie inside the image: [ox_lo, ox_hi).
    int ox_lo = 0;
    while (ox_lo < s.out_w && ox_lo * s.stride_w - s.pad_left < 0) ox_lo++;
    int ox_hi = ox_lo;
    while (ox_hi < s.out_w && ox_hi * s.stride_w - s.pad_left + s.k_w <= s.in_w) ox_hi++;
    // Bytes past k_h * seg up to row_bytes meet zero weights: they are left as they are.
    for (int oy = 0; oy < s.out_h; oy++) {
        uint8_t *row0 = out + (size_t)oy * s.out_w * row_bytes;
        for (int ky = 0; ky < s.k_h; ky++) {
            const int iy = oy * s.stride_h - s.pad_top + ky * s.dil_h;
            uint8_t *col0 = row0 + (size_t)ky * seg;
            if (iy < 0 || iy >= s.in_h) {
                for (int ox = 0; ox < s.out_w; ox++) fill_bytes(col0 + (size_t)ox * row_bytes, pad_value, seg);
                continue;
            }
            const uint8_t *src_row = in + (size_t)iy * s.in_w * c;
            for (int ox = 0; ox < ox_lo; ox++) {
                edge_segment(col0 + (size_t)ox * row_bytes, src_row, ox * s.stride_w - s.pad_left, s.k_w, s.in_w, c,
                             pad_value);
            }
            uint8_t *dst = col0 + (size_t)ox_lo * row_bytes;
            const uint8_t *src = src_row + (size_t)(ox_lo * s.stride_w - s.pad_left) * c;
            // One tight loop per size class, so the class test is hoisted out of the loop.
            if (seg == 3) {
                INNER_LOOP(uint16_t a; memcpy(&a, src, 2); memcpy(dst, &a, 2); dst[2] = src[2])
            } else if (seg < 64) {
                INNER_LOOP(copy_bytes(dst, src, seg))
            } else if (seg <= 128) {
                INNER_LOOP(const __m512i a = _mm512_loadu_si512(src); const __m512i b = _mm512_loadu_si512(src + seg - 64);
                           _mm512_storeu_si512(dst, a); _mm512_storeu_si512(dst + seg - 64, b))
            } else {
                INNER_LOOP(copy_bytes(dst, src, seg))
            }
            for (int ox = ox_hi; ox < s.out_w; ox++) {
                edge_segment(col0 + (size_t)ox * row_bytes, src_row, ox * s.stride_w - s.pad_left, s.k_w, s.in_w, c,
                             pad_value);
            }
        }
    }
}

/// Max over the pooling window of `width` channels at byte offset `off` of every tap.
#define POOL_BLOCK(VEC, LOAD, MAX, STORE, off)                                                                     \
    do {                                                                                                           \
        VEC best = LOAD(first + (off));                                                                            \
        for (int ky = 0; ky < k_h; ky++)                                                                           \
            for (int kx = 0; kx < k_w; kx++) best = MAX(best, LOAD(first + ((size_t)ky * in_w + kx) * c + (off))); \
        STORE(dst + (off), best);                                                                                  \
    } while (0)

#define LOAD512(p) _mm512_loadu_si512(p)
#define STORE512(p, v) _mm512_storeu_si512(p, v)
#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(p))
#define STORE256(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#define LOAD128(p) _mm_loadu_si128((const __m128i *)(p))
#define STORE128(p, v) _mm_storeu_si128((__m128i *)(p), v)

AVX512 void cdk_maxpool_avx512(const uint8_t *in, int in_w, int c, int k_h, int k_w, int stride_h, int stride_w,
                               int out_h, int out_w, uint8_t *out, size_t out_pitch) {
    if (c < 16) {
        cdk_maxpool_reference(in, in_w, c, k_h, k_w, stride_h, stride_w, out_h, out_w, out, out_pitch);
        return;
    }
    const size_t cs = (size_t)c;
    for (int oy = 0; oy < out_h; oy++) {
        for (int ox = 0; ox < out_w; ox++) {
            uint8_t *dst = out + (size_t)oy * out_pitch + (size_t)ox * cs;
            const uint8_t *first = in + ((size_t)(oy * stride_h) * in_w + (size_t)(ox * stride_w)) * cs;
            // Channel blocks covering [0, c) exactly; the last block may overlap the one before it.
            if (c >= 64) {
                size_t off = 0;
                for (; off + 64 <= cs; off += 64) POOL_BLOCK(__m512i, LOAD512, _mm512_max_epu8, STORE512, off);
                if (off < cs) POOL_BLOCK(__m512i, LOAD512, _mm512_max_epu8, STORE512, cs - 64);
            } else if (c >= 32) {
                POOL_BLOCK(__m256i, LOAD256, _mm256_max_epu8, STORE256, 0);
                if (c > 32) POOL_BLOCK(__m256i, LOAD256, _mm256_max_epu8, STORE256, cs - 32);
            } else {
                POOL_BLOCK(__m128i, LOAD128, _mm_max_epu8, STORE128, 0);
                if (c > 16) POOL_BLOCK(__m128i, LOAD128, _mm_max_epu8, STORE128, cs - 16);
            }
        }
    }
}
#endif

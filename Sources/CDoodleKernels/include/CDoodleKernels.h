// Int8 kernels for the doodle inference engine: packing, u8 x s8 GEMM with fused requantisation, implicit-GEMM
// convolution, im2col, max pooling and element-wise ops. Five instruction-set paths (portable C; AVX2 and
// AVX-512 VNNI on x86-64; NEON dotprod and i8mm on ARM64) give bit-identical results; the fastest one the CPU
// supports is chosen at run time.
#ifndef CDOODLEKERNELS_H
#define CDOODLEKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set paths. Values are stable (they appear in logs and benchmark output).
typedef enum {
    CDoodleKernels_ISA_reference = 0,
    CDoodleKernels_ISA_avx2 = 1,
    CDoodleKernels_ISA_avx512vnni = 2,
    CDoodleKernels_ISA_neon_dotprod = 3,
    CDoodleKernels_ISA_neon_i8mm = 4,
} CDoodleKernels_ISA;

/// Number of ISA values (for iterating over them).
#define CDoodleKernels_ISA_count 5

/// The fastest path this CPU supports.
CDoodleKernels_ISA CDoodleKernels_best_isa(void);
/// 1 if this CPU can run `isa`.
int CDoodleKernels_isa_supported(CDoodleKernels_ISA isa);

/// Bytes of a GEMM right-hand side packed for `isa`: K x N int8 weights (K rounded up to 4, or to 8 for NEON
/// i8mm; N to 16), plus, for the paths that compute on activations shifted to int8, a per-column correction. The
/// layout depends on `isa`: pack for the path that will run.
size_t CDoodleKernels_packed_size(CDoodleKernels_ISA isa, int K, int N);
/// Pack weights given as `w[n * K + k]` (one row of K per output column n) for `isa`. Padding is zero. The buffer
/// must be 64-byte aligned.
void CDoodleKernels_pack_weights(CDoodleKernels_ISA isa, const int8_t *w, int K, int N, void *packed);

/// The inverse of CDoodleKernels_pack_weights: writes `w[n * K + k]` from weights packed for `isa`.
void CDoodleKernels_unpack_weights(CDoodleKernels_ISA isa, const void *packed, int K, int N, int8_t *w);

/// Requantisation of one GEMM output column: q = clamp(nearbyint(acc * scale) + zero_point, lo, hi).
typedef struct {
    const int32_t *bias;   ///< N: int32 bias with the input zero point folded in (bias - za * sum_k w)
    const float *scale;    ///< N: in_scale * w_scale[n] / out_scale
    int32_t zero_point;    ///< output zero point
    int32_t lo, hi;        ///< clamp range (lo = zero_point gives a fused ReLU); within 0...255
} CDoodleKernels_Requant;

/// C[m][n] = requant(sum_k A[m][k] * B[k][n]) for uint8 A (rows of `lda` bytes, K valid; bytes up to K rounded
/// up to 4 must be readable) and packed int8 B. C rows are `ldc` bytes apart.
void CDoodleKernels_gemm_u8s8(CDoodleKernels_ISA isa, const uint8_t *A, size_t lda, int M, int K, int N,
                              const void *packedB, const CDoodleKernels_Requant *rq, uint8_t *C, size_t ldc);

/// Same GEMM without requantisation: int32 results (for a float output layer). C rows are `ldc` int32s apart.
void CDoodleKernels_gemm_u8s8_i32(CDoodleKernels_ISA isa, const uint8_t *A, size_t lda, int M, int K, int N,
                                  const void *packedB, const int32_t *bias, int32_t *C, size_t ldc);

/// Convolution geometry (NHWC uint8 activations, group 1).
typedef struct {
    int in_h, in_w, in_c;
    int k_h, k_w, stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w;
    int out_h, out_w;
} CDoodleKernels_ConvShape;

/// Patches of one NHWC image: row p = (oy * out_w + ox) holds k_h * k_w * in_c bytes in (ky, kx, c) order,
/// padded to `row_bytes`; taps outside the image take `pad_value` (the input zero point).
void CDoodleKernels_im2col_u8(CDoodleKernels_ISA isa, const CDoodleKernels_ConvShape *s, const uint8_t *in,
                              uint8_t pad_value, uint8_t *out, size_t row_bytes);

/// Max pooling over one NHWC uint8 image, no padding. Output rows are `out_pitch` bytes apart (out_w * c for a
/// dense image; more when writing into the interior of a bordered buffer).
void CDoodleKernels_maxpool_u8(CDoodleKernels_ISA isa, const uint8_t *in, int in_h, int in_w, int c, int k_h,
                               int k_w, int stride_h, int stride_w, int out_h, int out_w, uint8_t *out,
                               size_t out_pitch);

/// Convolution without im2col (every path): stride 1, no dilation, (k_w * c) % 4 == 0, on an input that already
/// carries its padding (rows `in_pitch` bytes apart). Output pixel (oy, ox) reads the k_h kernel rows of k_w * c
/// contiguous bytes at in + (oy + ky) * in_pitch + ox * c; B is packed in (ky, kx, c) order as for im2col. Output
/// pixel p = oy * out_w + ox is written at out + p * ldc.
void CDoodleKernels_conv_implicit_u8(CDoodleKernels_ISA isa, const uint8_t *in, size_t in_pitch, int c, int k_h,
                                     int k_w, int out_h, int out_w, const void *packedB, int N,
                                     const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc);

/// CDoodleKernels_conv_implicit_u8 followed by 2 x 2 max pooling with stride 2 (no padding), in one pass: the
/// out_h x out_w convolution is pooled to (out_h / 2) x (out_w / 2), each pooled pixel (py, px) written at
/// out + py * out_pitch + px * ldc; a last odd row or column of the convolution is not computed. The maximum is taken
/// over the int32 sums, so each output is requantised once instead of four times. Bit-equal to convolution then
/// pooling only when every scale is >= 0 (requantisation then never decreases); the caller checks that.
void CDoodleKernels_conv_implicit_pool2_u8(CDoodleKernels_ISA isa, const uint8_t *in, size_t in_pitch, int c,
                                           int k_h, int k_w, int out_h, int out_w, const void *packedB, int N,
                                           const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc,
                                           size_t out_pitch);
/// 1 where `isa` has a Winograd kernel for 3 x 3 convolutions that beats its direct one: AVX2, whose int8 multiply
/// needs a second multiply to widen, so Winograd's 2.25 times fewer multiplies in int16 pay. 0 elsewhere.
int CDoodleKernels_winograd_pays(CDoodleKernels_ISA isa);
/// Bytes of a 3 x 3 convolution's weights (c input, N output channels) transformed for
/// CDoodleKernels_conv3x3_pool2_winograd_u8; 0 where the shape does not suit it (c % 16, N % 8, c <= 1,500).
size_t CDoodleKernels_winograd_packed_size(int c, int N);
/// The int16 multiply-adds CDoodleKernels_conv3x3_pool2_winograd_u8 performs on `isa` for one image (16 per pooled
/// pixel, input and output channel, spare pooled pixels included); 0 where `isa` runs no Winograd kernel.
size_t CDoodleKernels_winograd_madds(CDoodleKernels_ISA isa, int c, int N, int out_h, int out_w);
/// Transforms weights given as for CDoodleKernels_pack_weights (`w[n * 9c + (ky * 3 + kx) * c + ci]`) into a
/// buffer of CDoodleKernels_winograd_packed_size bytes, 64-byte aligned.
void CDoodleKernels_pack_winograd(const int8_t *w, int c, int N, void *packed);
/// CDoodleKernels_conv_implicit_pool2_u8 for a 3 x 3 kernel, computed by Winograd F(2 x 2, 3 x 3) in exact integer
/// arithmetic: the same bytes, from weights packed by CDoodleKernels_pack_winograd. Any `isa` runs it (those without
/// a fast form on portable C); a shape CDoodleKernels_winograd_packed_size refuses writes nothing.
void CDoodleKernels_conv3x3_pool2_winograd_u8(CDoodleKernels_ISA isa, const uint8_t *in, size_t in_pitch, int c,
                                              int out_h, int out_w, const void *packed, int N,
                                              const CDoodleKernels_Requant *rq, uint8_t *out, size_t ldc,
                                              size_t out_pitch);
/// Element-wise quantised add: q = clamp(nearbyint((a - za) * sa + (b - zb) * sb) + zo, lo, hi), with
/// sa = scale_a / scale_out and sb = scale_b / scale_out.
void CDoodleKernels_add_u8(const uint8_t *a, int32_t za, float sa, const uint8_t *b, int32_t zb, float sb,
                           int32_t zo, int32_t lo, int32_t hi, size_t count, uint8_t *out);

/// Quantised add of a constant: q = clamp(nearbyint((a - za) * sa + b[i % channels]) + zo, lo, hi), where b holds
/// the constant already divided by the output scale (NHWC, so the channel is the fastest-varying index).
void CDoodleKernels_add_const_u8(const uint8_t *a, int32_t za, float sa, const float *b, size_t channels,
                                 int32_t zo, int32_t lo, int32_t hi, size_t count, uint8_t *out);

/// Sustained u8 x s8 multiply-accumulates per second of this core running only the multiply-accumulate
/// instructions that `isa` is built on, measured for `seconds`: vpdpbusd (zmm) for AVX-512 VNNI; vpmaddubsw +
/// vpmaddwd + vpaddd (ymm) for AVX2; sdot for NEON dotprod, usmmla for i8mm. 0 where the path has no such peak (reference) or the
/// CPU lacks it. Benchmarks divide by it to report a share of peak.
double CDoodleKernels_peak_macs_per_second(CDoodleKernels_ISA isa, double seconds);

/// Sustained int16 multiply-adds per second of the instructions `isa`'s Winograd convolutions run on (vpmaddwd +
/// vpaddd for AVX2), measured for `seconds`; 0 where the path runs no convolution by Winograd.
double CDoodleKernels_peak_winograd_madds_per_second(CDoodleKernels_ISA isa, double seconds);

/// A short description of the CPU (model name from the OS), for benchmark headers; never NULL.
const char *CDoodleKernels_cpu_model(void);

#ifdef __cplusplus
}
#endif
#endif

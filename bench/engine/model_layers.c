// Runs one of the model's GEMM shapes (v4: conv1 with its single channel widened to 4 taps, conv2, conv3, each
// with the 2 x 2 max pool that follows it fused, as the engine runs them; the two dense layers at batch 64) a given
// number of times on one kernel path, for bench/engine/count-instructions. `separate` runs a convolution, then the
// pool, as two calls (the engine's way before they were fused).
//   model_layers ISA ITERATIONS LAYER [separate]   (ISA as CDoodleKernels_ISA; LAYER 0-6: 5 and 6 are the dense
//   layers at batch 1)
#include "CDoodleKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void *al(size_t n) { void *p; if (posix_memalign(&p, 64, n + 64)) abort(); memset(p, 0, n + 64); return p; }
typedef struct { const char *name; int c, kh, kw, oh, ow, N; int dense_M, dense_K; } L;
int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "separate") == 0)) {
        fprintf(stderr, "usage: model_layers ISA ITERATIONS LAYER [separate]\n");
        return 2;
    }
    CDoodleKernels_ISA isa = atoi(argv[1]);
    int iters = atoi(argv[2]), li = atoi(argv[3]);
    L layers[] = {{"conv1", 1, 3, 4, 28, 28, 32, 0, 0}, {"conv2", 32, 3, 3, 14, 14, 48, 0, 0},
                  {"conv3", 48, 3, 3, 7, 7, 128, 0, 0}, {"dense1152x384 b64", 0, 0, 0, 0, 0, 384, 64, 1152},
                  {"dense384x345 b64", 0, 0, 0, 0, 0, 345, 64, 384}, {"dense1152x384 b1", 0, 0, 0, 0, 0, 384, 1, 1152},
                  {"dense384x345 b1", 0, 0, 0, 0, 0, 345, 1, 384}};
    srand(1);
    L l = layers[li];
    int K = l.dense_M ? l.dense_K : l.kh * l.kw * l.c;
    int8_t *w = al((size_t)K * l.N);
    for (int i = 0; i < K * l.N; i++) w[i] = (int8_t)(rand() % 255 - 127);
    void *B = al(CDoodleKernels_packed_size(isa, K, l.N));
    CDoodleKernels_pack_weights(isa, w, K, l.N, B);
    int32_t *bias = al(4 * l.N); float *scale = al(4 * l.N);
    for (int n = 0; n < l.N; n++) { bias[n] = rand() % 1000 - 500; scale[n] = 0.0005f + (rand() % 100) * 1e-6f; }
    CDoodleKernels_Requant rq = {bias, scale, 0, 0, 255};
    size_t in_w = l.ow + l.kw - 1, pitch = in_w * (l.c ? l.c : 1), in_bytes = l.dense_M ? (size_t)l.dense_M * K : (l.oh + l.kh) * pitch;
    uint8_t *in = al(in_bytes);
    for (size_t i = 0; i < in_bytes; i++) in[i] = (uint8_t)(rand() % 3 == 0 ? 0 : rand());
    const int separate = argc == 5;
    uint8_t *out = al((size_t)(l.dense_M ? l.dense_M : l.oh * l.ow) * l.N);
    uint8_t *pooled = al((size_t)(l.oh / 2) * (l.ow / 2) * l.N);
    for (int r = 0; r < iters; r++) {
        if (l.dense_M) {
            CDoodleKernels_gemm_u8s8(isa, in, K, l.dense_M, K, l.N, B, &rq, out, l.N);
        } else if (separate) {
            CDoodleKernels_conv_implicit_u8(isa, in, pitch, l.c, l.kh, l.kw, l.oh, l.ow, B, l.N, &rq, out, l.N);
            CDoodleKernels_maxpool_u8(isa, out, l.oh, l.ow, l.N, 2, 2, 2, 2, l.oh / 2, l.ow / 2, pooled,
                                      (size_t)(l.ow / 2) * l.N);
        } else {
#ifndef SEPARATE_ONLY  // defined when built against kernels that predate the fused call
            CDoodleKernels_conv_implicit_pool2_u8(isa, in, pitch, l.c, l.kh, l.kw, l.oh, l.ow, B, l.N, &rq, pooled,
                                                  l.N, (size_t)(l.ow / 2) * l.N);
#endif
        }
    }
    const uint8_t *result = l.dense_M ? out : pooled;
    const size_t result_bytes = (size_t)(l.dense_M ? l.dense_M * l.N : (l.oh / 2) * (l.ow / 2) * l.N);
    unsigned sum = 0; for (size_t i = 0; i < result_bytes; i++) sum = sum * 31 + result[i];
    printf("%s %08x\n", l.name, sum);
    return 0;
}

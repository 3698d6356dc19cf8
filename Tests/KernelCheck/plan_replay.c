// Replays a whole model, written as a kernel program by InferenceEngine.kernelProgram() (format: KernelProgram.swift),
// on every SIMD kernel path this CPU has (on the reference where it has none), the way InferenceEngine runs it (the
// layers before the first dense one image by image, the dense layers over the batch), and compares the quantised
// logits with the goldens byte for byte. Built for ARM64 and run under qemu-aarch64 by the engine tests, it checks the
// NEON paths on the whole model.
//
//     plan_replay PROGRAM IMAGES.u8 LOGITS.u8 [BATCH ...]     (default batches: 1 37 64)
#include "CDoodleKernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *isa_names[CDoodleKernels_ISA_count] = {"reference", "avx2", "avx512vnni", "neon-dotprod",
                                                          "neon-i8mm"};

// ---- Reading the program

typedef struct {
    const uint8_t *p, *end;
} Reader;

static void need(Reader *r, size_t n) {
    if ((size_t)(r->end - r->p) < n) {
        fprintf(stderr, "plan_replay: the program ends early\n");
        exit(2);
    }
}
static const uint8_t *take(Reader *r, size_t n) {
    need(r, n);
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}
static uint32_t u32(Reader *r) {
    const uint8_t *b = take(r, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static int n32(Reader *r) { return (int)u32(r); }
static float f32(Reader *r) {
    const uint32_t bits = u32(r);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

typedef struct {
    int K, N;
    const int8_t *w;  // N x K, w[n * K + k]
    int32_t *bias;
    float *scale;
    CDoodleKernels_Requant rq;
    void *packed;  // for the path being replayed
} Gemm;

enum { QUANTIZE_INPUT, CONV, MAX_POOL, DENSE, ADD, ADD_CONSTANT };

typedef struct {
    int kind, input, output;
    const uint8_t *table;            // QUANTIZE_INPUT
    CDoodleKernels_ConvShape shape;  // CONV
    int row_bytes, pad_value, bordered, input_offset, pooled;
    int kernel_h, kernel_w, stride_h, stride_w;  // MAX_POOL
    Gemm gemm;                                   // CONV, DENSE
    int b, za, zb, zo, lo, hi, channels;         // ADD, ADD_CONSTANT
    float sa, sb;
    float *constant;
} Step;

typedef struct {
    int channels, height, width, pad, pad_value, single_slot, stride;
} Layout;

static int pitch(const Layout *l) { return (l->width + 2 * l->pad) * l->channels; }
static int interior(const Layout *l) { return l->pad * pitch(l) + l->pad * l->channels; }

typedef struct {
    int in_c, in_h, in_w, classes, logits, first_batched, im2col_bytes;
    int layout_count, step_count;
    Layout *layouts;
    Step *steps;
} Program;

static void read_gemm(Reader *r, Gemm *g) {
    g->K = n32(r);
    g->N = n32(r);
    g->w = (const int8_t *)take(r, (size_t)g->K * g->N);
    g->bias = malloc(sizeof(int32_t) * (size_t)g->N);
    g->scale = malloc(sizeof(float) * (size_t)g->N);
    for (int j = 0; j < g->N; j++) g->bias[j] = (int32_t)u32(r);
    for (int j = 0; j < g->N; j++) g->scale[j] = f32(r);
    g->rq = (CDoodleKernels_Requant){.bias = g->bias, .scale = g->scale};
    g->rq.zero_point = n32(r);
    g->rq.lo = n32(r);
    g->rq.hi = n32(r);
    g->packed = NULL;
}

static Program read_program(const uint8_t *bytes, size_t size) {
    Reader r = {bytes, bytes + size};
    if (memcmp(take(&r, 4), "DKP1", 4) != 0) {
        fprintf(stderr, "plan_replay: not a kernel program\n");
        exit(2);
    }
    Program p;
    p.in_c = n32(&r), p.in_h = n32(&r), p.in_w = n32(&r);
    p.classes = n32(&r), p.logits = n32(&r), p.first_batched = n32(&r), p.im2col_bytes = n32(&r);
    p.layout_count = n32(&r);
    p.layouts = calloc((size_t)p.layout_count, sizeof(Layout));
    for (int i = 0; i < p.layout_count; i++) {
        Layout *l = &p.layouts[i];
        l->channels = n32(&r), l->height = n32(&r), l->width = n32(&r), l->pad = n32(&r);
        l->pad_value = n32(&r), l->single_slot = n32(&r), l->stride = n32(&r);
    }
    p.step_count = n32(&r);
    p.steps = calloc((size_t)p.step_count, sizeof(Step));
    for (int i = 0; i < p.step_count; i++) {
        Step *s = &p.steps[i];
        s->kind = n32(&r);
        switch (s->kind) {
        case QUANTIZE_INPUT:
            s->output = n32(&r);
            s->table = take(&r, 256);
            break;
        case CONV: {
            s->input = n32(&r), s->output = n32(&r);
            int v[15];
            for (int j = 0; j < 15; j++) v[j] = n32(&r);
            s->shape = (CDoodleKernels_ConvShape){
                .in_h = v[0], .in_w = v[1], .in_c = v[2], .k_h = v[3], .k_w = v[4], .stride_h = v[5],
                .stride_w = v[6], .pad_top = v[7], .pad_left = v[8], .pad_bottom = v[9], .pad_right = v[10],
                .dil_h = v[11], .dil_w = v[12], .out_h = v[13], .out_w = v[14]};
            s->row_bytes = n32(&r), s->pad_value = n32(&r), s->bordered = n32(&r);
            s->input_offset = n32(&r), s->pooled = n32(&r);
            read_gemm(&r, &s->gemm);
            break;
        }
        case MAX_POOL:
            s->input = n32(&r), s->output = n32(&r);
            s->kernel_h = n32(&r), s->kernel_w = n32(&r), s->stride_h = n32(&r), s->stride_w = n32(&r);
            break;
        case DENSE:
            s->input = n32(&r), s->output = n32(&r);
            read_gemm(&r, &s->gemm);
            break;
        case ADD:
            s->input = n32(&r), s->za = n32(&r), s->sa = f32(&r);
            s->b = n32(&r), s->zb = n32(&r), s->sb = f32(&r);
            s->output = n32(&r), s->zo = n32(&r), s->lo = n32(&r), s->hi = n32(&r);
            break;
        case ADD_CONSTANT:
            s->input = n32(&r), s->za = n32(&r), s->sa = f32(&r), s->channels = n32(&r);
            s->constant = malloc(sizeof(float) * (size_t)(s->channels > 0 ? s->channels : 1));
            for (int j = 0; j < s->channels; j++) s->constant[j] = f32(&r);
            s->output = n32(&r), s->zo = n32(&r), s->lo = n32(&r), s->hi = n32(&r);
            break;
        default:
            fprintf(stderr, "plan_replay: unknown step kind %d\n", s->kind);
            exit(2);
        }
    }
    if (r.p != r.end) {
        fprintf(stderr, "plan_replay: %zu bytes after the last step\n", (size_t)(r.end - r.p));
        exit(2);
    }
    return p;
}

// ---- Running it

static void *aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) abort();
    return p;
}

/// Activation buffers for `batch` images, made as InferenceScratch makes them (a border holds its pad value).
typedef struct {
    uint8_t **buffers;
    uint8_t *im2col;
} Scratch;

static Scratch make_scratch(const Program *p, int batch) {
    Scratch s = {calloc((size_t)p->layout_count, sizeof(uint8_t *)), aligned((size_t)p->im2col_bytes + 64)};
    for (int i = 0; i < p->layout_count; i++) {
        const Layout *l = &p->layouts[i];
        const size_t bytes = (size_t)l->stride * (size_t)(l->single_slot ? 1 : batch) + 64;
        s.buffers[i] = aligned(bytes);
        memset(s.buffers[i], l->pad > 0 ? l->pad_value : 0, bytes);
    }
    memset(s.im2col, 0, (size_t)p->im2col_bytes + 64);
    return s;
}

static void free_scratch(const Program *p, Scratch *s) {
    for (int i = 0; i < p->layout_count; i++) free(s->buffers[i]);
    free(s->buffers);
    free(s->im2col);
}

/// Image i's slice of a buffer (slot 0 for single-slot buffers).
static uint8_t *slot(const Program *p, const Scratch *s, int buffer, int i) {
    const Layout *l = &p->layouts[buffer];
    return s->buffers[buffer] + (l->single_slot ? 0 : (size_t)i * l->stride);
}

/// One step over images [first, first + count), as InferenceEngine.execute runs it.
static void execute(CDoodleKernels_ISA isa, const Program *p, const Step *st, const Scratch *s, const uint8_t *images,
                    int first, int count) {
    const int input_bytes = p->in_c * p->in_h * p->in_w;
    const Layout *in = st->kind == QUANTIZE_INPUT ? NULL : &p->layouts[st->input];
    const Layout *out = &p->layouts[st->output];
    for (int i = first; i < first + count; i++) {
        switch (st->kind) {
        case QUANTIZE_INPUT: {
            // Planar input bytes into the NHWC buffer, possibly wider (more channels) and bordered.
            const uint8_t *src = images + (size_t)i * input_bytes;
            uint8_t *dst = slot(p, s, st->output, i) + interior(out);
            for (int ch = 0; ch < p->in_c; ch++) {
                for (int y = 0; y < p->in_h; y++) {
                    uint8_t *row = dst + (size_t)y * pitch(out) + ch;
                    for (int x = 0; x < p->in_w; x++) {
                        row[(size_t)x * out->channels] = st->table[src[((size_t)ch * p->in_h + y) * p->in_w + x]];
                    }
                }
            }
            break;
        }
        case CONV: {
            const CDoodleKernels_ConvShape *sh = &st->shape;
            const uint8_t *window = slot(p, s, st->input, i) + st->input_offset;
            if (st->bordered && st->pooled) {
                CDoodleKernels_conv_implicit_pool2_u8(isa, window, (size_t)pitch(in), sh->in_c, sh->k_h, sh->k_w,
                                                      sh->out_h, sh->out_w, st->gemm.packed, st->gemm.N, &st->gemm.rq,
                                                      slot(p, s, st->output, i) + interior(out),
                                                      (size_t)out->channels, (size_t)pitch(out));
            } else if (st->bordered) {
                CDoodleKernels_conv_implicit_u8(isa, window, (size_t)pitch(in), sh->in_c, sh->k_h, sh->k_w, sh->out_h,
                                                sh->out_w, st->gemm.packed, st->gemm.N, &st->gemm.rq,
                                                slot(p, s, st->output, i), (size_t)st->gemm.N);
            } else {
                CDoodleKernels_im2col_u8(isa, sh, window, (uint8_t)st->pad_value, s->im2col, (size_t)st->row_bytes);
                CDoodleKernels_gemm_u8s8(isa, s->im2col, (size_t)st->row_bytes, sh->out_h * sh->out_w, st->gemm.K,
                                         st->gemm.N, st->gemm.packed, &st->gemm.rq, slot(p, s, st->output, i),
                                         (size_t)st->gemm.N);
            }
            break;
        }
        case MAX_POOL:
            CDoodleKernels_maxpool_u8(isa, slot(p, s, st->input, i) + interior(in), in->height, in->width,
                                      in->channels, st->kernel_h, st->kernel_w, st->stride_h, st->stride_w,
                                      out->height, out->width, slot(p, s, st->output, i) + interior(out),
                                      (size_t)pitch(out));
            break;
        case DENSE:  // the whole batch at once
            CDoodleKernels_gemm_u8s8(isa, s->buffers[st->input] + (size_t)first * in->stride, (size_t)in->stride,
                                     count, st->gemm.K, st->gemm.N, st->gemm.packed, &st->gemm.rq,
                                     s->buffers[st->output] + (size_t)first * out->stride, (size_t)out->stride);
            return;
        case ADD: {
            const size_t elements = (size_t)out->channels * out->height * out->width;
            CDoodleKernels_add_u8(slot(p, s, st->input, i), st->za, st->sa, slot(p, s, st->b, i), st->zb, st->sb,
                                  st->zo, st->lo, st->hi, elements, slot(p, s, st->output, i));
            break;
        }
        case ADD_CONSTANT: {
            const size_t elements = (size_t)out->channels * out->height * out->width;
            CDoodleKernels_add_const_u8(slot(p, s, st->input, i), st->za, st->sa, st->constant, (size_t)st->channels,
                                        st->zo, st->lo, st->hi, elements, slot(p, s, st->output, i));
            break;
        }
        }
    }
}

/// Packs every step's weights for `isa` (replacing the previous path's).
static void pack_for(CDoodleKernels_ISA isa, Program *p) {
    for (int i = 0; i < p->step_count; i++) {
        Gemm *g = &p->steps[i].gemm;
        if (p->steps[i].kind != CONV && p->steps[i].kind != DENSE) continue;
        free(g->packed);
        g->packed = aligned(CDoodleKernels_packed_size(isa, g->K, g->N));
        CDoodleKernels_pack_weights(isa, g->w, g->K, g->N, g->packed);
    }
}

/// Runs `count` images through the program (packed for `isa`) in batches of `batch`; returns how many images'
/// logits differ.
static int replay(CDoodleKernels_ISA isa, const Program *p, const uint8_t *images, const uint8_t *want, int count,
                  int batch) {
    Scratch s = make_scratch(p, batch);
    const Layout *logits = &p->layouts[p->logits];
    int differ = 0;
    for (int start = 0; start < count; start += batch) {
        const int n = count - start < batch ? count - start : batch;
        // Images are indexed from `start` in `images`, slots from 0 in the scratch.
        const uint8_t *chunk = images + (size_t)start * p->in_c * p->in_h * p->in_w;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < p->first_batched; k++) execute(isa, p, &p->steps[k], &s, chunk, i, 1);
        }
        for (int k = p->first_batched; k < p->step_count; k++) execute(isa, p, &p->steps[k], &s, chunk, 0, n);
        for (int i = 0; i < n; i++) {
            const uint8_t *got = s.buffers[p->logits] + (size_t)i * logits->stride;
            if (memcmp(got, want + (size_t)(start + i) * p->classes, (size_t)p->classes) != 0) differ++;
        }
    }
    free_scratch(p, &s);
    return differ;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(*size ? *size : 1);
    if (fread(bytes, 1, *size, f) != *size) {
        perror(path);
        exit(2);
    }
    fclose(f);
    return bytes;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: plan_replay PROGRAM IMAGES.u8 LOGITS.u8 [BATCH ...]\n");
        return 2;
    }
    size_t program_size, images_size, logits_size;
    const uint8_t *bytes = read_file(argv[1], &program_size);
    Program p = read_program(bytes, program_size);
    const uint8_t *images = read_file(argv[2], &images_size), *want = read_file(argv[3], &logits_size);
    const int count = (int)(images_size / ((size_t)p.in_c * p.in_h * p.in_w));
    if (count == 0 || logits_size != (size_t)count * p.classes) {
        fprintf(stderr, "plan_replay: %zu image bytes and %zu logit bytes do not match the program\n", images_size,
                logits_size);
        return 2;
    }
    int batches[16] = {1, 37, 64}, batch_count = 3;
    if (argc > 4) {
        batch_count = 0;
        for (int i = 4; i < argc && batch_count < 16; i++) batches[batch_count++] = atoi(argv[i]);
    }
    printf("CPU: %s; %d images, %d classes\n", CDoodleKernels_cpu_model(), count, p.classes);
    // The SIMD paths (the goldens are the reference's); the reference itself only on a CPU that has none.
    const int only_reference = CDoodleKernels_best_isa() == CDoodleKernels_ISA_reference;
    int failed = 0, runs = 0;
    for (int isa = only_reference ? 0 : 1; isa < CDoodleKernels_ISA_count; isa++) {
        if (!CDoodleKernels_isa_supported((CDoodleKernels_ISA)isa) || (only_reference && isa > 0)) continue;
        pack_for((CDoodleKernels_ISA)isa, &p);
        for (int b = 0; b < batch_count; b++) {
            const int differ = replay((CDoodleKernels_ISA)isa, &p, images, want, count, batches[b]);
            printf("%s batch %d: %d of %d images differ from the goldens\n", isa_names[isa], batches[b], differ,
                   count);
            failed += differ > 0;
            runs++;
        }
    }
    printf("%d runs, %d failed\n", runs, failed);
    return runs > 0 && failed == 0 ? 0 : 1;
}

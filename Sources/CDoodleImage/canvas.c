// Finding a drawing on a canvas picture and tracing its ink back into pen strokes (see CDoodleImage.h).
// Compiled with -DDOODLE_CANVAS_PROFILE, it adds each stage's seconds to doodle_profile[] (ink, statistics,
// grid, thinning, tracing), for a harness that links it.
#include "CDoodleImage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef DOODLE_CANVAS_PROFILE
#include <stdio.h>
#include <time.h>
double doodle_profile[8];
static double profile_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
#define MARK(k) do { double now_ = profile_now(); doodle_profile[k] += now_ - profile_last; profile_last = now_; } while (0)
#define MARK_START double profile_last = profile_now()
#else
#define MARK(k) do {} while (0)
#define MARK_START do {} while (0)
#endif

struct doodle_canvas {
    uint8_t *ink;
    size_t ink_capacity;
    uint32_t *sums;
    uint32_t *counts;
    uint8_t *grid;      // 1 = ink on the working grid (with a one-pixel empty border)
    uint8_t *adjacent;  // per grid pixel: the directions of its skeleton neighbours (bit d = direction d)
    uint8_t *visited;   // per grid pixel: the directions already traced
    int32_t *on;        // indices of grid pixels still on while thinning
    int32_t *deleted;
    size_t grid_capacity;
    int32_t *columns;   // where each grid column starts, in canvas columns of the bounding box
    size_t column_capacity;
    uint8_t *rows;      // two rows of 0/1 ink, for the outline
    size_t row_capacity;
    int32_t *xs, *ys, *lengths;
    size_t point_capacity, stroke_capacity;
};

doodle_canvas *doodle_canvas_create(void) {
    return calloc(1, sizeof(doodle_canvas));
}

static void release_grid(doodle_canvas *c) {
    free(c->sums);
    free(c->counts);
    free(c->grid);
    free(c->adjacent);
    free(c->visited);
    free(c->on);
    free(c->deleted);
    c->sums = NULL;
    c->counts = NULL;
    c->grid = c->adjacent = c->visited = NULL;
    c->on = c->deleted = NULL;
    c->grid_capacity = 0;
}

void doodle_canvas_destroy(doodle_canvas *c) {
    if (c == NULL) return;
    free(c->ink);
    free(c->columns);
    free(c->rows);
    release_grid(c);
    free(c->xs);
    free(c->ys);
    free(c->lengths);
    free(c);
}

static int reserve_grid(doodle_canvas *c, size_t n) {
    if (n <= c->grid_capacity) return 0;
    release_grid(c);
    c->sums = malloc(n * sizeof(uint32_t));
    c->counts = malloc(n * sizeof(uint32_t));
    c->grid = malloc(n);
    c->adjacent = malloc(n);
    c->visited = malloc(n);
    c->on = malloc(n * sizeof(int32_t));
    c->deleted = malloc(n * sizeof(int32_t));
    if (!c->sums || !c->counts || !c->grid || !c->adjacent || !c->visited || !c->on || !c->deleted) {
        release_grid(c);
        return -1;
    }
    c->grid_capacity = n;
    return 0;
}

static int reserve_output(doodle_canvas *c, size_t points, size_t strokes) {
    if (points > c->point_capacity) {
        free(c->xs);
        free(c->ys);
        c->xs = malloc(points * sizeof(int32_t));
        c->ys = malloc(points * sizeof(int32_t));
        c->point_capacity = (c->xs && c->ys) ? points : 0;
        if (!c->point_capacity) return -1;
    }
    if (strokes > c->stroke_capacity) {
        free(c->lengths);
        c->lengths = malloc(strokes * sizeof(int32_t));
        c->stroke_capacity = c->lengths ? strokes : 0;
        if (!c->stroke_capacity) return -1;
    }
    return 0;
}

// MARK: Ink

/// Ink by luminance over `n` grey + alpha pixels, against background `bg`; `dark` is a constant where this is
/// inlined, so that each loop is branch-free 16-bit arithmetic the compiler vectorises. Returns the peak.
static inline uint8_t ink_by_luminance(const uint8_t *ga, size_t n, uint16_t bg, int dark, uint8_t *ink) {
    uint8_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t g = ga[2 * i], a = ga[2 * i + 1];
        uint16_t t = (uint16_t)(g * a + 128);
        uint16_t v = (uint16_t)(((t + 1 + (t >> 8)) >> 8) + 255 - a);
        uint8_t value = dark ? (uint8_t)(bg > v ? bg - v : 0) : (uint8_t)(v > bg ? v - bg : 0);
        ink[i] = value;
        top = value > top ? value : top;
    }
    return top;
}

/// Fills `ink` (0 = background), sets `*peak` to its largest value and `*range` to the largest it could be,
/// and returns the ink mode (see doodle_canvas_trace.ink_mode).
static int find_ink(const uint8_t *ga, int32_t w, int32_t h, uint8_t *ink, int *peak, int *range) {
    // The border says what the background is: mostly transparent, or the most common luminance there.
    size_t border = 0, transparent = 0;
    uint32_t histogram[256] = {0};
    for (int32_t y = 0; y < h; y++) {
        int32_t step = (y == 0 || y == h - 1) ? 1 : (w > 1 ? w - 1 : 1);
        for (int32_t x = 0; x < w; x += step) {
            const uint8_t *p = ga + 2 * ((size_t)y * w + x);
            border++;
            if (p[1] < 128) transparent++;
            uint32_t over_white = (p[0] * p[1] + 255u * (255u - p[1]) + 127u) / 255u;
            histogram[over_white]++;
        }
    }
    size_t n = (size_t)w * h;
    uint8_t top = 0;
    if (2 * transparent > border) {
        for (size_t i = 0; i < n; i++) {
            uint8_t v = ga[2 * i + 1];
            ink[i] = v;
            top = v > top ? v : top;
        }
        *peak = top;
        *range = 255;
        return 0;
    }
    size_t half = border / 2, seen = 0;
    int background = 0;
    for (background = 0; background < 255; background++) {
        seen += histogram[background];
        if (seen > half) break;
    }
    // Ink by luminance (composited on white): how far it is from the background towards black (or white), in
    // luminance steps (0 up to the background's distance from black or white; thresholds are relative to the
    // peak). 16-bit arithmetic without branches, so that the compiler vectorises it: v = g a / 255 + 255 - a,
    // with t / 255 as (t + 1 + (t >> 8)) >> 8 for t = g a + 128.
    uint16_t bg = (uint16_t)background;
    top = bg >= 128 ? ink_by_luminance(ga, n, bg, 1, ink) : ink_by_luminance(ga, n, bg, 0, ink);
    *peak = top;
    *range = bg >= 128 ? bg : 255 - bg;
    return bg >= 128 ? 1 : 2;
}

// MARK: Thinning

// Neighbour bits, clockwise from north as Zhang and Suen number them: P2 = N (bit 0), P3 = NE, P4 = E, P5 = SE,
// P6 = S, P7 = SW, P8 = W, P9 = NW (bit 7).
static uint8_t neighbours(const uint8_t *g, int32_t i, int32_t stride) {
    return (uint8_t)(g[i - stride] | g[i - stride + 1] << 1 | g[i + 1] << 2 | g[i + stride + 1] << 3 |
                     g[i + stride] << 4 | g[i + stride - 1] << 5 | g[i - 1] << 6 | g[i - stride - 1] << 7);
}

/// Whether Zhang-Suen's sub-iteration `pass` (0 or 1) deletes a pixel with these neighbours.
static int deletable(uint8_t m, int pass) {
    int b = __builtin_popcount(m);
    if (b < 2 || b > 6) return 0;
    int a = 0;
    for (int k = 0; k < 8; k++) {
        if (!((m >> k) & 1) && ((m >> ((k + 1) & 7)) & 1)) a++;
    }
    if (a != 1) return 0;
    int p2 = m & 1, p4 = (m >> 2) & 1, p6 = (m >> 4) & 1, p8 = (m >> 6) & 1;
    if (pass == 0) return !(p2 && p4 && p6) && !(p4 && p6 && p8);
    return !(p2 && p4 && p8) && !(p2 && p6 && p8);
}

static uint8_t deletion_table[2][256];
static int tables_ready = 0;

static void prepare_tables(void) {
    if (tables_ready) return;
    for (int pass = 0; pass < 2; pass++) {
        for (int m = 0; m < 256; m++) deletion_table[pass][m] = (uint8_t)deletable((uint8_t)m, pass);
    }
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

/// Thins the grid's ink to a skeleton one pixel wide; `on` holds the indices of the ink pixels, `count` of them.
/// Returns how many remain (compacted at the front of `on`).
static int32_t thin(uint8_t *g, int32_t stride, int32_t *on, int32_t count, int32_t *deleted) {
    for (;;) {
        int changed = 0;
        for (int pass = 0; pass < 2; pass++) {
            int32_t removed = 0;
            for (int32_t k = 0; k < count; k++) {
                int32_t i = on[k];
                if (deletion_table[pass][neighbours(g, i, stride)]) deleted[removed++] = i;
            }
            if (removed == 0) continue;
            changed = 1;
            for (int32_t k = 0; k < removed; k++) g[deleted[k]] = 0;
            int32_t kept = 0;
            for (int32_t k = 0; k < count; k++) {
                if (g[on[k]]) on[kept++] = on[k];
            }
            count = kept;
        }
        if (!changed) return count;
    }
}

// MARK: Tracing

// Directions 0..7: E, SE, S, SW, W, NW, N, NE.
static const int dx[8] = {1, 1, 0, -1, -1, -1, 0, 1};
static const int dy[8] = {0, 1, 1, 1, 0, -1, -1, -1};

/// Each skeleton pixel's neighbours, leaving out a diagonal step that two straight steps through an ink pixel
/// already make (so that a staircase is a path, not a chain of triangles).
static void link(const uint8_t *g, int32_t stride, const int32_t *on, int32_t count, uint8_t *adjacent) {
    for (int32_t k = 0; k < count; k++) {
        int32_t i = on[k];
        uint8_t m = 0;
        for (int d = 0; d < 8; d++) {
            int32_t j = i + dy[d] * stride + dx[d];
            if (!g[j]) continue;
            if (d & 1) {
                if (g[i + dx[d]] || g[i + dy[d] * stride]) continue;
            }
            m |= (uint8_t)(1u << d);
        }
        adjacent[i] = m;
    }
}

int doodle_canvas_find_strokes(doodle_canvas *c, const uint8_t *ga, int32_t width, int32_t height, float grid_pen,
                               doodle_canvas_trace *t) {
    memset(t, 0, sizeof(*t));
    if (width <= 0 || height <= 0) return 1;
    MARK_START;
    prepare_tables();
    size_t n = (size_t)width * height;
    if (n > c->ink_capacity) {
        free(c->ink);
        c->ink = malloc(n);
        c->ink_capacity = c->ink ? n : 0;
        if (!c->ink) return -1;
    }
    t->ink = c->ink;
    int peak = 0, range = 255;
    t->ink_mode = find_ink(ga, width, height, c->ink, &peak, &range);
    t->peak = peak;
    MARK(0);
    // Less than a fifth of full contrast is no drawing: a blank canvas, compression noise, a faint smudge.
    if (peak == 0 || peak * 5 < range) return 1;

    // Ink is what reaches half the peak: its bounding box, area and outline (straight transitions), row by row
    // on a 0/1 copy of each row (loops the compiler vectorises).
    if ((size_t)width * 2 > c->row_capacity) {
        free(c->rows);
        c->rows = calloc((size_t)width * 2, 1);
        c->row_capacity = c->rows ? (size_t)width * 2 : 0;
        if (!c->rows) return -1;
    }
    uint8_t *current = c->rows, *above = c->rows + width;
    memset(above, 0, (size_t)width);
    int32_t min_x = width, min_y = height, max_x = -1, max_y = -1;
    size_t area = 0, outline = 0;
    uint8_t half = (uint8_t)((peak + 1) / 2);
    for (int32_t y = 0; y <= height; y++) {
        uint32_t row_area = 0, across = 0, down = 0;
        if (y < height) {
            const uint8_t *row = c->ink + (size_t)y * width;
            for (int32_t x = 0; x < width; x++) current[x] = row[x] >= half;
        } else {
            memset(current, 0, (size_t)width);
        }
        for (int32_t x = 0; x < width; x++) {
            row_area += current[x];
            down += current[x] ^ above[x];
        }
        for (int32_t x = 1; x < width; x++) across += current[x] ^ current[x - 1];
        across += current[0] + current[width - 1];
        outline += across + down;
        area += row_area;
        if (row_area) {
            int32_t first = 0, last = width - 1;
            while (!current[first]) first++;
            while (!current[last]) last--;
            if (first < min_x) min_x = first;
            if (last > max_x) max_x = last;
            if (y < min_y) min_y = y;
            max_y = y;
        }
        uint8_t *swap = above;
        above = current;
        current = swap;
    }
    if (max_x < 0) return 1;
    t->min_x = min_x;
    t->min_y = min_y;
    t->max_x = max_x;
    t->max_y = max_y;
    // A stroke of width w and length L has area w L and an outline of 2 L, which straight transitions count
    // 4/pi times too long on average over directions.
    float pen = outline > 0 ? (float)(2.0 * 4.0 / M_PI * (double)area / (double)outline) : 1.0f;
    if (pen < 1.0f) pen = 1.0f;
    t->pen_width = pen;
    MARK(1);

    // The working grid: the pen about grid_pen pixels wide, the drawing 128..256 pixels across, never larger
    // than the canvas.
    int32_t box_w = max_x - min_x + 1, box_h = max_y - min_y + 1;
    int32_t side = box_w > box_h ? box_w : box_h;
    float scale = grid_pen / pen;
    if (scale < 128.0f / side) scale = 128.0f / side;
    if (scale > 256.0f / side) scale = 256.0f / side;
    if (scale > 1.0f) scale = 1.0f;
    t->scale = scale;
    int32_t gw = (int32_t)((box_w - 1) * scale) + 1, gh = (int32_t)((box_h - 1) * scale) + 1;
    int32_t stride = gw + 2;
    size_t cells = (size_t)stride * (gh + 2);
    if (reserve_grid(c, cells) != 0) return -1;
    t->grid_width = gw;
    t->grid_height = gh;
    memset(c->sums, 0, cells * sizeof(uint32_t));
    memset(c->counts, 0, cells * sizeof(uint32_t));
    // Canvas columns [columns[g], columns[g + 1]) fall in grid column g + 1.
    if ((size_t)gw + 1 > c->column_capacity) {
        free(c->columns);
        c->columns = malloc(((size_t)gw + 1) * sizeof(int32_t));
        c->column_capacity = c->columns ? (size_t)gw + 1 : 0;
        if (!c->columns) return -1;
    }
    int32_t *columns = c->columns;
    for (int32_t g = 0, x = 0; g <= gw; g++) {
        while (x < box_w && (int32_t)(x * scale) < g) x++;
        columns[g] = x;
    }
    for (int32_t y = 0; y < box_h; y++) {
        const uint8_t *row = c->ink + (size_t)(min_y + y) * width + min_x;
        int32_t base = ((int32_t)(y * scale) + 1) * stride + 1;
        for (int32_t g = 0; g < gw; g++) {
            uint32_t sum = 0;
            for (int32_t x = columns[g]; x < columns[g + 1]; x++) sum += row[x];
            c->sums[base + g] += sum;
            c->counts[base + g] += (uint32_t)(columns[g + 1] - columns[g]);
        }
    }
    // A cell is ink when its mean reaches a third of what the pen covers of it at full strength: lines thinner
    // than a cell after scaling stay connected.
    float coverage = pen * scale < 1.0f ? pen * scale : 1.0f;
    uint32_t threshold = (uint32_t)(peak * coverage / 3.0f);
    if (threshold < 1) threshold = 1;
    int32_t count = 0;
    memset(c->grid, 0, cells);
    for (int32_t y = 1; y <= gh; y++) {
        for (int32_t x = 1; x <= gw; x++) {
            int32_t i = y * stride + x;
            if (c->counts[i] && c->sums[i] >= threshold * c->counts[i]) {
                c->grid[i] = 1;
                c->on[count++] = i;
            }
        }
    }
    MARK(2);
    count = thin(c->grid, stride, c->on, count, c->deleted);
    MARK(3);
    link(c->grid, stride, c->on, count, c->adjacent);

    // Trace: from every end first, then whatever is left (loops), then lone pixels (dots). Each link is walked
    // once; at a fork the walk goes on in the direction closest to the one it came from.
    size_t edges = 0;
    for (int32_t k = 0; k < count; k++) {
        c->visited[c->on[k]] = 0;
        edges += (size_t)__builtin_popcount(c->adjacent[c->on[k]]);
    }
    edges /= 2;
    if (reserve_output(c, edges + (size_t)count + 1, (size_t)count + 1) != 0) return -1;
    int32_t points = 0, strokes = 0;
    for (int round = 0; round < 3; round++) {
        for (int32_t k = 0; k < count; k++) {
            int32_t i = c->on[k];
            uint8_t links = c->adjacent[i];
            int degree = __builtin_popcount(links);
            if (round == 0 && degree != 1) continue;
            if (round == 2 && degree != 0) continue;
            if (round < 2 && !(links & ~c->visited[i])) continue;
            int32_t start = points;
            c->xs[points] = i % stride - 1;
            c->ys[points] = i / stride - 1;
            points++;
            int heading = -1;
            for (;;) {
                uint8_t open = (uint8_t)(c->adjacent[i] & ~c->visited[i]);
                if (!open) break;
                int best = -1, best_turn = 9;
                for (int d = 0; d < 8; d++) {
                    if (!((open >> d) & 1)) continue;
                    int diff = heading < 0 ? 0 : (d - heading + 8) & 7;
                    int turn = diff > 4 ? 8 - diff : diff;
                    if (turn < best_turn) {
                        best_turn = turn;
                        best = d;
                    }
                }
                int32_t j = i + dy[best] * stride + dx[best];
                c->visited[i] |= (uint8_t)(1u << best);
                c->visited[j] |= (uint8_t)(1u << ((best + 4) & 7));
                i = j;
                heading = best;
                c->xs[points] = i % stride - 1;
                c->ys[points] = i / stride - 1;
                points++;
            }
            c->lengths[strokes++] = points - start;
        }
    }
    MARK(4);
    t->point_count = points;
    t->stroke_count = strokes;
    t->xs = c->xs;
    t->ys = c->ys;
    t->lengths = c->lengths;
    return 0;
}

/*
 * Bit-exact rasteriser for Quick, Draw! strokes (see include/CDoodleRaster.h).
 *
 * The dataset's bitmaps were drawn with cairo, so the bytes depend on exactly how cairo 1.16 strokes a polyline
 * and scan-converts the result. This file reproduces that for the one configuration the dataset used, step for
 * step and with the same integer and double arithmetic:
 *   - the path (cairo-path-fixed.c: 24.8 fixed point, degenerate and collinear line_to merging),
 *   - the polygon stroker with round joins and caps (cairo-path-stroke-polygon.c, cairo-pen.c),
 *   - the "tor" scan converter (cairo-tor-scan-converter.c: 15 sub-rows, 256 sub-columns, the full-row
 *     stepper), with its sparse cell list replaced by a dense row (same sums, no list walks),
 *   - compositing an opaque white source OVER each stroke's coverage (cairo-image-compositor.c lerp8x4).
 * What is left out is everything this configuration never reaches: transforms other than the fixed
 * scale/translate, curves, dashes, clipping (every stroke lies inside the surface), other operators.
 *
 * Derived from cairo 1.16.0, Copyright © 2002 University of Southern California, © 2004-2011 Red Hat, Inc.,
 * © 2008-2011 Intel Corporation, © 2007 David Turner, © 2008 M Joonas Pihlaja and others; used under the
 * Mozilla Public License 1.1 (https://www.mozilla.org/MPL/1.1/), the licence under which cairo's files are
 * offered besides the LGPL 2.1. The scan converter began as glitter-paths by M Joonas Pihlaja (MIT licence).
 *
 * Bit-exactness is tested against libcairo itself (Tests/DoodleCoreTests/RasterizerParityTests.swift) and
 * against Google's bitmaps (render_pairs).
 */
#pragma STDC FP_CONTRACT OFF

#include "CDoodleRaster.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fixed_from_double below assumes a little-endian double layout"
#endif

enum {
    SIDE = 28,
    FIXED_FRAC_BITS = 8,
    FIXED_ONE = 1 << FIXED_FRAC_BITS,
    GRID_X_BITS = 8,
    GRID_X = 1 << GRID_X_BITS,
    GRID_Y = 15,
    /* Dense coverage cells cover pixel columns [-CELL_OFFSET, CELL_COUNT - CELL_OFFSET). */
    CELL_OFFSET = 8,
    CELL_COUNT = SIDE + 2 * CELL_OFFSET,
};

#define GRID_AREA_TO_ALPHA(c) (((c) + ((c) << 4) + 256) >> 9) /* GRID_XY == 2*256*15 */

typedef int32_t fixed_t;
typedef struct { fixed_t x, y; } point_t;
typedef struct { fixed_t dx, dy; } slope_t;
typedef struct { double x, y; } point_double_t;
typedef struct { double xx, yx, xy, yy, x0, y0; } matrix_t;

static inline fixed_t fixed_from_double(double d) {
    union { double d; int32_t i[2]; } u;
    u.d = d + (double)((1LL << (52 - FIXED_FRAC_BITS)) * 1.5);
    return u.i[0];
}

static inline double fixed_to_double(fixed_t f) { return ((double)f) / 256.0; }

/* ---- matrices (cairo-matrix.c) ---------------------------------------------------------------------- */

static void matrix_multiply(matrix_t *result, const matrix_t *a, const matrix_t *b) {
    matrix_t r;
    r.xx = a->xx * b->xx + a->yx * b->xy;
    r.yx = a->xx * b->yx + a->yx * b->yy;
    r.xy = a->xy * b->xx + a->yy * b->xy;
    r.yy = a->xy * b->yx + a->yy * b->yy;
    r.x0 = a->x0 * b->xx + a->y0 * b->xy + b->x0;
    r.y0 = a->x0 * b->yx + a->y0 * b->yy + b->y0;
    *result = r;
}

static void matrix_transform_distance(const matrix_t *m, double *dx, double *dy) {
    double new_x = (m->xx * *dx + m->xy * *dy);
    double new_y = (m->yx * *dx + m->yy * *dy);
    *dx = new_x;
    *dy = new_y;
}

static void matrix_transform_point(const matrix_t *m, double *x, double *y) {
    matrix_transform_distance(m, x, y);
    *x += m->x0;
    *y += m->y0;
}

/* ---- slopes (cairo-slope.c) ------------------------------------------------------------------------- */

static inline void slope_init(slope_t *s, const point_t *a, const point_t *b) {
    s->dx = b->x - a->x;
    s->dy = b->y - a->y;
}

static int slope_compare(const slope_t *a, const slope_t *b) {
    int64_t ady_bdx = (int64_t)a->dy * b->dx;
    int64_t bdy_adx = (int64_t)b->dy * a->dx;
    if (ady_bdx != bdy_adx)
        return ady_bdx < bdy_adx ? -1 : 1;
    if (a->dx == 0 && a->dy == 0 && b->dx == 0 && b->dy == 0)
        return 0;
    if (a->dx == 0 && a->dy == 0)
        return 1;
    if (b->dx == 0 && b->dy == 0)
        return -1;
    if ((a->dx ^ b->dx) < 0 || (a->dy ^ b->dy) < 0) {
        if (a->dx > 0 || (a->dx == 0 && a->dy > 0))
            return -1;
        return +1;
    }
    return 0;
}

static inline int slope_equal(const slope_t *a, const slope_t *b) {
    return (int64_t)a->dy * b->dx == (int64_t)b->dy * a->dx;
}

static inline int slope_backwards(const slope_t *a, const slope_t *b) {
    return (int64_t)a->dx * b->dx + (int64_t)a->dy * b->dy < 0;
}

/* ---- the pen (cairo-pen.c) -------------------------------------------------------------------------- */

enum { MAX_PEN_VERTICES = 64 };

typedef struct {
    point_t point;
    slope_t slope_ccw, slope_cw;
} pen_vertex_t;

typedef struct {
    int num_vertices;
    pen_vertex_t vertices[MAX_PEN_VERTICES];
} pen_t;

static double matrix_transformed_circle_major_axis(const matrix_t *m, double radius) {
    double a = m->xx, b = m->yx, c = m->xy, d = m->yy;
    double i = a * a + b * b;
    double j = c * c + d * d;
    double f = 0.5 * (i + j);
    double g = 0.5 * (i - j);
    double h = a * c + b * d;
    return radius * sqrt(f + hypot(g, h));
}

static int pen_vertices_needed(double tolerance, double radius, const matrix_t *m) {
    double major_axis = matrix_transformed_circle_major_axis(m, radius);
    int n;
    if (tolerance >= 4 * major_axis) {
        n = 1;
    } else if (tolerance >= major_axis) {
        n = 4;
    } else {
        n = ceil(2 * M_PI / acos(1 - tolerance / major_axis));
        if (n % 2)
            n++;
        if (n < 4)
            n = 4;
    }
    return n;
}

static void pen_init(pen_t *pen, double radius, double tolerance, const matrix_t *ctm) {
    int n = pen_vertices_needed(tolerance, radius, ctm);
    if (n > MAX_PEN_VERTICES)
        n = MAX_PEN_VERTICES; /* unreachable for the fixed line width and scale */
    pen->num_vertices = n;
    for (int i = 0; i < n; i++) {
        double theta = 2 * M_PI * i / (double)n;
        double dx = radius * cos(theta);
        double dy = radius * sin(theta);
        matrix_transform_distance(ctm, &dx, &dy);
        pen->vertices[i].point.x = fixed_from_double(dx);
        pen->vertices[i].point.y = fixed_from_double(dy);
    }
    for (int i = 0, i_prev = n - 1; i < n; i_prev = i++) {
        pen_vertex_t *prev = &pen->vertices[i_prev];
        pen_vertex_t *v = &pen->vertices[i];
        pen_vertex_t *next = &pen->vertices[(i + 1) % n];
        slope_init(&v->slope_cw, &prev->point, &v->point);
        slope_init(&v->slope_ccw, &v->point, &next->point);
    }
}

static void pen_find_active_cw_vertices(const pen_t *pen, const slope_t *in, const slope_t *out, int *start,
                                        int *stop) {
    int lo = 0, hi = pen->num_vertices;
    int i = (lo + hi) >> 1;
    do {
        if (slope_compare(&pen->vertices[i].slope_cw, in) < 0)
            lo = i;
        else
            hi = i;
        i = (lo + hi) >> 1;
    } while (hi - lo > 1);
    if (slope_compare(&pen->vertices[i].slope_cw, in) < 0)
        if (++i == pen->num_vertices)
            i = 0;
    *start = i;
    if (slope_compare(out, &pen->vertices[i].slope_ccw) >= 0) {
        lo = i;
        hi = i + pen->num_vertices;
        i = (lo + hi) >> 1;
        do {
            int j = i;
            if (j >= pen->num_vertices)
                j -= pen->num_vertices;
            if (slope_compare(&pen->vertices[j].slope_cw, out) > 0)
                hi = i;
            else
                lo = i;
            i = (lo + hi) >> 1;
        } while (hi - lo > 1);
        if (i >= pen->num_vertices)
            i -= pen->num_vertices;
    }
    *stop = i;
}

static void pen_find_active_ccw_vertices(const pen_t *pen, const slope_t *in, const slope_t *out, int *start,
                                         int *stop) {
    int lo = 0, hi = pen->num_vertices;
    int i = (lo + hi) >> 1;
    do {
        if (slope_compare(in, &pen->vertices[i].slope_ccw) < 0)
            lo = i;
        else
            hi = i;
        i = (lo + hi) >> 1;
    } while (hi - lo > 1);
    if (slope_compare(in, &pen->vertices[i].slope_ccw) < 0)
        if (++i == pen->num_vertices)
            i = 0;
    *start = i;
    if (slope_compare(&pen->vertices[i].slope_cw, out) <= 0) {
        lo = i;
        hi = i + pen->num_vertices;
        i = (lo + hi) >> 1;
        do {
            int j = i;
            if (j >= pen->num_vertices)
                j -= pen->num_vertices;
            if (slope_compare(out, &pen->vertices[j].slope_ccw) > 0)
                hi = i;
            else
                lo = i;
            i = (lo + hi) >> 1;
        } while (hi - lo > 1);
        if (i >= pen->num_vertices)
            i -= pen->num_vertices;
    }
    *stop = i;
}

/* ---- growable arrays ---------------------------------------------------------------------------------- */

typedef struct {
    point_t *points;
    int count, capacity;
    int direction;
} contour_t;

typedef struct {
    point_t p1, p2;
    fixed_t top, bottom;
    int dir;
} polygon_edge_t;

struct quorem {
    int32_t quo;
    int64_t rem;
};

/* A polygon edge while scan converting (struct edge in cairo-tor-scan-converter.c). The active list is an
 * array of indices kept in exactly the order of cairo's linked list, because the full-row stepper pairs edges
 * by that order. */
struct edge {
    int ytop;
    int height_left;
    int dir;
    int cell;
    struct quorem x;
    struct quorem dxdy;
    struct quorem dxdy_full;
    int64_t dy;
    /* dy and dy / 2, or INT64_MAX for a vertical edge, so that stepping needs no branch. */
    int64_t dy_or_max;
    int64_t half_dy_or_max;
};

typedef struct {
    point_t ccw, point, cw;
    slope_t dev_vector;
    point_double_t dev_slope;
    point_double_t usr_vector;
} stroke_face_t;

struct doodle_raster {
    matrix_t ctm, ctm_inverse;
    double tolerance, half_line_width;
    int ctm_det_positive;
    pen_t pen;

    /* The current stroke's path after cairo's line_to merging. */
    point_t *path;
    int path_count, path_capacity;

    /* Stroker state (struct stroker in cairo-path-stroke-polygon.c). */
    contour_t cw, ccw;
    point_t first_point;
    int has_initial_sub_path, has_current_face, has_first_face;
    stroke_face_t current_face, first_face;

    polygon_edge_t *edges;
    int edge_count, edge_capacity;

    struct edge *tor_edges;
    int tor_edge_capacity;
    /* Edge indices by starting sub-row, in polygon order: sub-row y is sub_start[y] ..< sub_start[y + 1]. */
    int *sub_edges;
    int sub_edge_capacity;
    int sub_start[SIDE * GRID_Y + 1];
    /* The active list, and the array a sub-row rebuilds it into. */
    int *active, *active_next;
    int active_count, active_capacity, active_next_capacity;
    int *sort_scratch;
    int sort_scratch_capacity;
    int min_height;
    int is_vertical;
    /* Pixel columns [column_lo, column_hi) that the current stroke can cover. */
    int column_lo, column_hi;
    int16_t uncovered_area[CELL_COUNT];
    int16_t covered_height[CELL_COUNT];

    uint8_t image[SIDE * SIDE];
    int out_of_memory;
};

static int grow(void **buffer, int *capacity, int needed, size_t element) {
    if (needed <= *capacity)
        return 1;
    int n = *capacity ? *capacity : 64;
    while (n < needed)
        n *= 2;
    void *p = realloc(*buffer, (size_t)n * element);
    if (!p)
        return 0;
    *buffer = p;
    *capacity = n;
    return 1;
}

static void contour_add_point(doodle_raster *r, contour_t *c, const point_t *p) {
    if (c->count == c->capacity &&
        !grow((void **)&c->points, &c->capacity, c->count + 1, sizeof(point_t))) {
        r->out_of_memory = 1;
        return;
    }
    c->points[c->count++] = *p;
}

static inline point_t *contour_first_point(contour_t *c) { return &c->points[0]; }

/* ---- polygon (cairo-polygon.c, no limits) --------------------------------------------------------------- */

static void polygon_add_edge(doodle_raster *r, const point_t *p1, const point_t *p2, int dir) {
    if (p1->y == p2->y)
        return;
    if (p1->y > p2->y) {
        const point_t *t = p1;
        p1 = p2;
        p2 = t;
        dir = -dir;
    }
    if (r->edge_count == r->edge_capacity &&
        !grow((void **)&r->edges, &r->edge_capacity, r->edge_count + 1, sizeof(polygon_edge_t))) {
        r->out_of_memory = 1;
        return;
    }
    polygon_edge_t *e = &r->edges[r->edge_count++];
    e->p1 = *p1;
    e->p2 = *p2;
    e->top = p1->y;
    e->bottom = p2->y;
    e->dir = dir;
}

static void polygon_add_contour(doodle_raster *r, const contour_t *c) {
    if (c->count <= 1)
        return;
    const point_t *prev = &c->points[0];
    for (int i = 0; i < c->count; i++) {
        polygon_add_edge(r, prev, &c->points[i], c->direction);
        prev = &c->points[i];
    }
}

/* ---- the stroker (cairo-path-stroke-polygon.c; round joins and caps, no bounds) ---------------------------- */

static inline void translate_point(point_t *p, const point_t *offset) {
    p->x += offset->x;
    p->y += offset->y;
}

static void add_fan(doodle_raster *r, const slope_t *in_vector, const slope_t *out_vector, const point_t *midpt,
                    int clockwise, contour_t *c) {
    const pen_t *pen = &r->pen;
    int start, stop;
    if (clockwise) {
        pen_find_active_cw_vertices(pen, in_vector, out_vector, &start, &stop);
        while (start != stop) {
            point_t p = *midpt;
            translate_point(&p, &pen->vertices[start].point);
            contour_add_point(r, c, &p);
            if (++start == pen->num_vertices)
                start = 0;
        }
    } else {
        pen_find_active_ccw_vertices(pen, in_vector, out_vector, &start, &stop);
        while (start != stop) {
            point_t p = *midpt;
            translate_point(&p, &pen->vertices[start].point);
            contour_add_point(r, c, &p);
            if (start-- == 0)
                start += pen->num_vertices;
        }
    }
}

static void inner_join(doodle_raster *r, const stroke_face_t *in, const stroke_face_t *out, int clockwise) {
    contour_t *inner = clockwise ? &r->ccw : &r->cw;
    const point_t *outpt = clockwise ? &out->ccw : &out->cw;
    contour_add_point(r, inner, &in->point);
    contour_add_point(r, inner, outpt);
}

static void outer_join(doodle_raster *r, const stroke_face_t *in, const stroke_face_t *out, int clockwise) {
    if (in->cw.x == out->cw.x && in->cw.y == out->cw.y && in->ccw.x == out->ccw.x && in->ccw.y == out->ccw.y)
        return;
    const point_t *outpt = clockwise ? &out->cw : &out->ccw;
    contour_t *outer = clockwise ? &r->cw : &r->ccw;
    add_fan(r, &in->dev_vector, &out->dev_vector, &in->point, clockwise, outer);
    contour_add_point(r, outer, outpt);
}

static void add_cap(doodle_raster *r, const stroke_face_t *f, contour_t *c) {
    slope_t slope;
    slope.dx = -f->dev_vector.dx;
    slope.dy = -f->dev_vector.dy;
    add_fan(r, &f->dev_vector, &slope, &f->point, 0, c);
    contour_add_point(r, c, &f->cw);
}

static void add_leading_cap(doodle_raster *r, const stroke_face_t *face, contour_t *c) {
    stroke_face_t reversed = *face;
    reversed.usr_vector.x = -reversed.usr_vector.x;
    reversed.usr_vector.y = -reversed.usr_vector.y;
    reversed.dev_vector.dx = -reversed.dev_vector.dx;
    reversed.dev_vector.dy = -reversed.dev_vector.dy;
    point_t t = reversed.cw;
    reversed.cw = reversed.ccw;
    reversed.ccw = t;
    add_cap(r, &reversed, c);
}

static inline double normalize_slope(double *dx, double *dy) {
    double dx0 = *dx, dy0 = *dy;
    double mag;
    if (dx0 == 0.0) {
        *dx = 0.0;
        if (dy0 > 0.0) {
            mag = dy0;
            *dy = 1.0;
        } else {
            mag = -dy0;
            *dy = -1.0;
        }
    } else if (dy0 == 0.0) {
        *dy = 0.0;
        if (dx0 > 0.0) {
            mag = dx0;
            *dx = 1.0;
        } else {
            mag = -dx0;
            *dx = -1.0;
        }
    } else {
        mag = hypot(dx0, dy0);
        *dx = dx0 / mag;
        *dy = dy0 / mag;
    }
    return mag;
}

static void compute_face(doodle_raster *r, const point_t *point, const slope_t *dev_slope, stroke_face_t *face) {
    double face_dx, face_dy;
    point_t offset_ccw, offset_cw;
    double slope_dx = fixed_to_double(dev_slope->dx);
    double slope_dy = fixed_to_double(dev_slope->dy);
    normalize_slope(&slope_dx, &slope_dy);
    face->dev_slope.x = slope_dx;
    face->dev_slope.y = slope_dy;

    /* The inverse ctm is never the identity here (the scale is 28/304). */
    matrix_transform_distance(&r->ctm_inverse, &slope_dx, &slope_dy);
    normalize_slope(&slope_dx, &slope_dy);
    if (r->ctm_det_positive) {
        face_dx = -slope_dy * r->half_line_width;
        face_dy = slope_dx * r->half_line_width;
    } else {
        face_dx = slope_dy * r->half_line_width;
        face_dy = -slope_dx * r->half_line_width;
    }
    matrix_transform_distance(&r->ctm, &face_dx, &face_dy);

    offset_ccw.x = fixed_from_double(face_dx);
    offset_ccw.y = fixed_from_double(face_dy);
    offset_cw.x = -offset_ccw.x;
    offset_cw.y = -offset_ccw.y;

    face->ccw = *point;
    translate_point(&face->ccw, &offset_ccw);
    face->point = *point;
    face->cw = *point;
    translate_point(&face->cw, &offset_cw);
    face->usr_vector.x = slope_dx;
    face->usr_vector.y = slope_dy;
    face->dev_vector = *dev_slope;
}

static void add_caps(doodle_raster *r) {
    if (r->has_initial_sub_path && !r->has_first_face && !r->has_current_face) {
        /* A degenerate sub-path: a dot. */
        slope_t slope = {FIXED_ONE, 0};
        stroke_face_t face;
        compute_face(r, &r->first_point, &slope, &face);
        add_leading_cap(r, &face, &r->ccw);
        add_cap(r, &face, &r->ccw);
        if (r->ccw.count > 0) {
            point_t first = *contour_first_point(&r->ccw);
            contour_add_point(r, &r->ccw, &first);
        }
        polygon_add_contour(r, &r->ccw);
        r->ccw.count = 0;
    } else {
        if (r->has_current_face)
            add_cap(r, &r->current_face, &r->ccw);
        polygon_add_contour(r, &r->ccw);
        r->ccw.count = 0;
        if (r->has_first_face) {
            contour_add_point(r, &r->ccw, &r->first_face.cw);
            add_leading_cap(r, &r->first_face, &r->ccw);
            polygon_add_contour(r, &r->ccw);
            r->ccw.count = 0;
        }
        polygon_add_contour(r, &r->cw);
        r->cw.count = 0;
    }
}

static void stroker_move_to(doodle_raster *r, const point_t *point) {
    add_caps(r);
    r->has_first_face = 0;
    r->has_current_face = 0;
    r->has_initial_sub_path = 0;
    r->first_point = *point;
    r->current_face.point = *point;
}

static void stroker_line_to(doodle_raster *r, const point_t *point) {
    stroke_face_t start;
    point_t *p1 = &r->current_face.point;
    slope_t dev_slope;

    r->has_initial_sub_path = 1;
    if (p1->x == point->x && p1->y == point->y)
        return;

    slope_init(&dev_slope, p1, point);
    compute_face(r, p1, &dev_slope, &start);

    if (r->has_current_face) {
        int clockwise = slope_compare(&r->current_face.dev_vector, &start.dev_vector);
        if (clockwise) {
            clockwise = clockwise < 0;
            outer_join(r, &r->current_face, &start, clockwise);
            inner_join(r, &r->current_face, &start, clockwise);
        }
    } else {
        if (!r->has_first_face) {
            r->first_face = start;
            r->has_first_face = 1;
        }
        r->has_current_face = 1;
        contour_add_point(r, &r->cw, &start.cw);
        contour_add_point(r, &r->ccw, &start.ccw);
    }

    r->current_face = start;
    r->current_face.point = *point;
    r->current_face.ccw.x += dev_slope.dx;
    r->current_face.ccw.y += dev_slope.dy;
    r->current_face.cw.x += dev_slope.dx;
    r->current_face.cw.y += dev_slope.dy;

    contour_add_point(r, &r->cw, &r->current_face.cw);
    contour_add_point(r, &r->ccw, &r->current_face.ccw);
}

/* ---- the path (cairo-path-fixed.c: move_to, then line_to with merging) ------------------------------------- */

static void path_append(doodle_raster *r, point_t p) {
    if (r->path_count == r->path_capacity &&
        !grow((void **)&r->path, &r->path_capacity, r->path_count + 1, sizeof(point_t))) {
        r->out_of_memory = 1;
        return;
    }
    r->path[r->path_count++] = p;
}

static void path_line_to(doodle_raster *r, point_t point) {
    point_t current = r->path[r->path_count - 1];
    int last_is_move = r->path_count == 1;
    /* A degenerate segment is kept only right after the move_to (a dot when stroked). */
    if (!last_is_move && point.x == current.x && point.y == current.y)
        return;
    if (!last_is_move) {
        const point_t *p = &r->path[r->path_count - 2];
        if (p->x == current.x && p->y == current.y) {
            r->path_count--; /* the previous line_to was degenerate: replace it */
        } else {
            slope_t prev, self;
            slope_init(&prev, p, &current);
            slope_init(&self, &current, &point);
            if (slope_equal(&prev, &self) && !slope_backwards(&prev, &self))
                r->path_count--; /* same direction: extend the previous line_to */
        }
    }
    path_append(r, point);
}

static inline point_t user_to_device(const doodle_raster *r, double x, double y) {
    matrix_transform_point(&r->ctm, &x, &y);
    point_t p = {fixed_from_double(x), fixed_from_double(y)};
    return p;
}

/* ---- the tor scan converter (cairo-tor-scan-converter.c), GRID_Y 15, winding rule, A8 ------------------- */

#define GRID_X_TO_INT_FRAC(t, i, f) \
    do {                            \
        (f) = (t) & (GRID_X - 1);   \
        (i) = (t) >> GRID_X_BITS;   \
    } while (0)

static inline int cell_index(int x) {
    int i = x + CELL_OFFSET;
    /* Every stroke lies inside the surface, so this never clamps; it keeps a bad caller in bounds. */
    return i < 0 ? 0 : (i >= CELL_COUNT ? CELL_COUNT - 1 : i);
}

static inline void cell_add_subspan(doodle_raster *r, int x1, int x2) {
    int ix1, fx1, ix2, fx2;
    if (x1 == x2)
        return;
    GRID_X_TO_INT_FRAC(x1, ix1, fx1);
    GRID_X_TO_INT_FRAC(x2, ix2, fx2);
    if (ix1 != ix2) {
        int c1 = cell_index(ix1), c2 = cell_index(ix2);
        r->uncovered_area[c1] += 2 * fx1;
        ++r->covered_height[c1];
        r->uncovered_area[c2] -= 2 * fx2;
        --r->covered_height[c2];
    } else {
        int c = cell_index(ix1);
        r->uncovered_area[c] += 2 * (fx1 - fx2);
    }
}

/* Brings a quotient/remainder pair back to 0 <= rem < dy after one step (cairo writes this out each time). */
static inline void quorem_carry(struct quorem *q, int64_t dy) {
    if (q->rem < 0) {
        --q->quo;
        q->rem += dy;
    } else if (q->rem >= dy) {
        ++q->quo;
        q->rem -= dy;
    }
}

static inline void full_step(struct edge *e) {
    if (e->dy == 0)
        return;
    e->x.quo += e->dxdy_full.quo;
    e->x.rem += e->dxdy_full.rem;
    quorem_carry(&e->x, e->dy);
    e->cell = e->x.quo + (e->x.rem >= e->dy / 2);
}

static void cell_render_edge(doodle_raster *r, struct edge *edge, int sign) {
    struct quorem x1, x2;
    int fx1, fx2, ix1, ix2;

    x1 = edge->x;
    full_step(edge);
    x2 = edge->x;

    /* Step back from the sample location (half-subrow) to the pixel origin. */
    if (edge->dy) {
        x1.quo -= edge->dxdy.quo / 2;
        x1.rem -= edge->dxdy.rem / 2;
        quorem_carry(&x1, edge->dy);
        x2.quo -= edge->dxdy.quo / 2;
        x2.rem -= edge->dxdy.rem / 2;
        quorem_carry(&x2, edge->dy);
    }

    GRID_X_TO_INT_FRAC(x1.quo, ix1, fx1);
    GRID_X_TO_INT_FRAC(x2.quo, ix2, fx2);

    if (ix1 == ix2) {
        int c = cell_index(ix1);
        r->covered_height[c] += sign * GRID_Y;
        r->uncovered_area[c] += sign * (fx1 + fx2) * GRID_Y;
        return;
    }

    if (ix2 < ix1) {
        struct quorem tx;
        int t;
        t = ix1; ix1 = ix2; ix2 = t;
        t = fx1; fx1 = fx2; fx2 = t;
        tx = x1; x1 = x2; x2 = tx;
    }

    {
        struct quorem y;
        int64_t tmp, dx;
        int y_last;
        int c1, c2;

        dx = (x2.quo - x1.quo) * edge->dy + (x2.rem - x1.rem);

        tmp = (ix1 + 1) * GRID_X * edge->dy;
        tmp -= x1.quo * edge->dy + x1.rem;
        tmp *= GRID_Y;

        y.quo = tmp / dx;
        y.rem = tmp % dx;

        c1 = cell_index(ix1);
        c2 = cell_index(ix1 + 1);
        r->uncovered_area[c1] += sign * y.quo * (GRID_X + fx1);
        r->covered_height[c1] += sign * y.quo;
        y_last = y.quo;

        if (ix1 + 1 < ix2) {
            int c = c2;
            struct quorem dydx_full;
            dydx_full.quo = GRID_Y * GRID_X * edge->dy / dx;
            dydx_full.rem = GRID_Y * GRID_X * edge->dy % dx;
            ++ix1;
            do {
                y.quo += dydx_full.quo;
                y.rem += dydx_full.rem;
                if (y.rem >= dx) {
                    y.quo++;
                    y.rem -= dx;
                }
                r->uncovered_area[c] += sign * (y.quo - y_last) * GRID_X;
                r->covered_height[c] += sign * (y.quo - y_last);
                y_last = y.quo;
                ++ix1;
                c = cell_index(ix1);
            } while (ix1 != ix2);
            c2 = c;
        }
        r->uncovered_area[c2] += sign * (GRID_Y - y_last) * fx2;
        r->covered_height[c2] += sign * (GRID_Y - y_last);
    }
}

/* cairo's merge_sorted_edges on arrays of edge indices. It is not a plain stable merge: on equal cells it
 * keeps taking from whichever list it is taking from, and the full-row stepper later pairs edges by this order.
 * `a_has_sentinel`: `a` is the active list, which in cairo ends with a tail edge whose cell is INT_MAX. */
static int merge_edge_runs(const struct edge *edges, const int *a, int na, int a_has_sentinel, const int *b, int nb,
                           int *out) {
#define CELL_A(i) ((i) < na ? edges[a[i]].cell : INT_MAX)
    int i = 0, j = 0, o = 0;
    int taking_a = na > 0 || a_has_sentinel ? CELL_A(0) <= edges[b[0]].cell : 0;
    for (;;) {
        if (taking_a) {
            int x = edges[b[j]].cell;
            while (i < na && edges[a[i]].cell <= x)
                out[o++] = a[i++];
            if (i == na && !a_has_sentinel) {
                while (j < nb)
                    out[o++] = b[j++];
                return o;
            }
            taking_a = 0;
        } else {
            int x = CELL_A(i);
            if (i == na && !a_has_sentinel) { /* only when `a` started empty */
                while (j < nb)
                    out[o++] = b[j++];
                return o;
            }
            while (j < nb && edges[b[j]].cell <= x)
                out[o++] = b[j++];
            if (j == nb) {
                while (i < na)
                    out[o++] = a[i++];
                return o;
            }
            taking_a = 1;
        }
    }
#undef CELL_A
}

/* cairo's sort_edges(list, UINT_MAX): a merge sort whose recursion is the same as sorting adjacent pairs, then
 * merging adjacent blocks of 2, 4, 8 ... (the left block as `a`) with merge_edge_runs. Sorts `list` (n >= 1)
 * into `out`; `tmp` holds n ints. */
static void sort_new_edges(const struct edge *edges, const int *list, int n, int *out, int *tmp) {
    for (int k = 0; k < n; k += 2) {
        if (k + 1 < n && edges[list[k]].cell > edges[list[k + 1]].cell) {
            out[k] = list[k + 1];
            out[k + 1] = list[k];
        } else {
            out[k] = list[k];
            if (k + 1 < n)
                out[k + 1] = list[k + 1];
        }
    }
    for (int size = 2; size < n; size *= 2) {
        for (int lo = 0; lo + size < n; lo += 2 * size) {
            int hi = lo + 2 * size < n ? lo + 2 * size : n;
            int m = merge_edge_runs(edges, out + lo, size, 0, out + lo + size, hi - lo - size, tmp);
            memcpy(out + lo, tmp, sizeof(int) * (size_t)m);
        }
    }
}

/* Inserts the edges that start on one sub-row (`fresh`, in polygon order, as cairo's bucket holds them) into
 * the active list: cairo's merge_unsorted_edges (sort_edges, then merge_sorted_edges). */
static void merge_new_edges(doodle_raster *r, const int *fresh, int n) {
    if (n == 0)
        return;
    if (!grow((void **)&r->sort_scratch, &r->sort_scratch_capacity, 2 * n, sizeof(int))) {
        r->out_of_memory = 1;
        return;
    }
    int *sorted = r->sort_scratch;
    sort_new_edges(r->tor_edges, fresh, n, sorted, r->sort_scratch + n);
    int o = merge_edge_runs(r->tor_edges, r->active, r->active_count, 1, sorted, n, r->active_next);
    int *t = r->active;
    r->active = r->active_next;
    r->active_next = t;
    r->active_count = o;
}

static int can_do_full_row(doodle_raster *r) {
    int prev_x = INT_MIN;

    if (r->min_height <= 0) {
        int min_height = INT_MAX;
        int is_vertical = 1;
        for (int k = 0; k < r->active_count; k++) {
            const struct edge *e = &r->tor_edges[r->active[k]];
            if (e->height_left < min_height)
                min_height = e->height_left;
            is_vertical &= e->dy == 0;
        }
        r->is_vertical = is_vertical;
        r->min_height = min_height;
    }

    if (r->min_height < GRID_Y)
        return 0;

    /* Whether the edges keep their order over the whole row (no intersections). */
    for (int k = 0; k < r->active_count; k++) {
        const struct edge *e = &r->tor_edges[r->active[k]];
        int cell;
        if (e->dy) {
            struct quorem x = e->x;
            x.quo += e->dxdy_full.quo;
            x.rem += e->dxdy_full.rem;
            quorem_carry(&x, e->dy);
            cell = x.quo + (x.rem >= e->dy / 2);
        } else {
            cell = e->cell;
        }
        if (cell < prev_x)
            return 0;
        prev_x = cell;
    }
    return 1;
}

/* polygon_fill_buckets: folds this row's new edges into the active list's lower bounds and says on which
 * sub-row the last of them starts. */
static int note_new_edges(doodle_raster *r, const int *row, int row_count, int y) {
    int min_height = r->min_height;
    int is_vertical = r->is_vertical;
    int max_suby = 0;
    for (int k = 0; k < row_count; k++) {
        const struct edge *e = &r->tor_edges[row[k]];
        int suby = e->ytop - y;
        if (e->height_left < min_height)
            min_height = e->height_left;
        is_vertical &= e->dy == 0;
        if (suby > max_suby)
            max_suby = suby;
    }
    r->is_vertical = is_vertical;
    r->min_height = min_height;
    return max_suby;
}

/* One sub-row step of an edge: cairo's step(), without branches on the carry. */
static inline void step(struct edge *e) {
    int64_t rem = e->x.rem + e->dxdy.rem;
    int32_t quo = e->x.quo + e->dxdy.quo;
    int64_t below = -(int64_t)(rem < 0);
    int64_t above = -(int64_t)(rem >= e->dy_or_max);
    quo += (int32_t)(above & 1) - (int32_t)(below & 1);
    rem += (e->dy & below) - (e->dy & above);
    e->x.quo = quo;
    e->x.rem = rem;
    e->cell = quo + (rem >= e->half_dy_or_max);
}

/* The GRID_Y sub-rows of one pixel row (cairo's sub_row, each after merging the edges that start on it when
 * `merging`). A sub-row adds the spans where the winding number is non-zero, then steps every edge down,
 * keeping the list sorted the way cairo's insertion does (stable), and drops the edges that end. */
static void sub_rows(doodle_raster *r, int y, int merging, unsigned int mask) {
    struct edge *const edges = r->tor_edges;
    int stepped = 0;

    for (int sub = 0; sub < GRID_Y; sub++) {
        if (merging)
            merge_new_edges(r, &r->sub_edges[r->sub_start[y + sub]], r->sub_start[y + sub + 1] - r->sub_start[y + sub]);
        const int n = r->active_count;
        int *in = r->active, *out = r->active_next;
        int kept = 0;
        int xstart = INT_MIN, prev_x = INT_MIN;
        int winding = 0;
        int next_cell = n > 0 ? edges[in[0]].cell : INT_MAX;

        for (int k = 0; k < n; k++) {
            struct edge *e = &edges[in[k]];
            int xend = next_cell;
            next_cell = k + 1 < n ? edges[in[k + 1]].cell : INT_MAX;

            if (--e->height_left) {
                step(e);
                if (e->cell < prev_x) {
                    int j = kept++;
                    while (j > 0 && edges[out[j - 1]].cell > e->cell) {
                        out[j] = out[j - 1];
                        j--;
                    }
                    out[j] = in[k];
                } else {
                    out[kept++] = in[k];
                    prev_x = e->cell;
                }
                stepped = 1;
            }

            winding += e->dir;
            if ((winding & mask) == 0) {
                if (next_cell != xend) {
                    cell_add_subspan(r, xstart, xend);
                    xstart = INT_MIN;
                }
            } else if (xstart == INT_MIN) {
                xstart = xend;
            }
        }
        r->active_next = in;
        r->active = out;
        r->active_count = kept;
    }
    if (stepped)
        r->min_height = -1;
}

static inline void dec(doodle_raster *r, struct edge *e, int h) {
    e->height_left -= h;
    if (e->height_left == 0)
        r->min_height = -1;
}

/* Drops the edges that have ended from the active list, keeping the order. */
static void compact_active(doodle_raster *r) {
    int kept = 0;
    for (int k = 0; k < r->active_count; k++)
        if (r->tor_edges[r->active[k]].height_left != 0)
            r->active[kept++] = r->active[k];
    r->active_count = kept;
}

static void full_row(doodle_raster *r, unsigned int mask) {
    const int n = r->active_count;
    int k = 0;

    while (k < n) {
        struct edge *left = &r->tor_edges[r->active[k]];
        struct edge *right;
        int winding, j;

        dec(r, left, GRID_Y);
        winding = left->dir;
        j = k + 1;
        do {
            if (j >= n) { /* a closed polygon always returns to winding 0: never taken */
                compact_active(r);
                return;
            }
            right = &r->tor_edges[r->active[j]];
            dec(r, right, GRID_Y);
            winding += right->dir;
            int next_cell = j + 1 < n ? r->tor_edges[r->active[j + 1]].cell : INT_MAX;
            if ((winding & mask) == 0 && next_cell != right->cell)
                break;
            full_step(right);
            j++;
        } while (1);

        cell_render_edge(r, left, +1);
        cell_render_edge(r, right, -1);
        k = j + 1;
    }
    compact_active(r);
}

static void step_edges(doodle_raster *r, int count) {
    count *= GRID_Y;
    for (int k = 0; k < r->active_count; k++) {
        struct edge *e = &r->tor_edges[r->active[k]];
        e->height_left -= count;
        if (!e->height_left)
            r->min_height = -1;
    }
    compact_active(r);
}

static inline uint8_t mul8(uint32_t x, uint32_t a) {
    uint32_t t = x * a + 0x7f;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

/* Composites the row's coverage (an opaque white source, OVER) onto rows [y, y + height) of the image:
 * blit_a8 followed by _fill_xrgb32_lerp_opaque_spans, on one colour channel. */
static void blit_rows(doodle_raster *r, int y, int height) {
    int16_t cover = 0;
    uint8_t coverage[SIDE];
    int any = 0;
    const int lo = r->column_lo, hi = r->column_hi;

    /* No cell left of column_lo has coverage, and right of column_hi the running cover is back to 0. */
    for (int x = lo; x < hi; x++) {
        cover += r->covered_height[x + CELL_OFFSET] * GRID_X * 2;
        int16_t area = cover - r->uncovered_area[x + CELL_OFFSET];
        coverage[x] = (uint8_t)GRID_AREA_TO_ALPHA(area);
        any |= coverage[x];
    }
    if (!any)
        return;
    for (int row = y; row < y + height; row++) {
        uint8_t *d = &r->image[row * SIDE];
        for (int x = lo; x < hi; x++) {
            uint8_t a = coverage[x];
            if (a == 0)
                continue;
            if (a == 0xff) {
                d[x] = 0xff;
            } else {
                uint32_t s = (uint32_t)mul8(0xff, a) + mul8(d[x], (uint8_t)~a);
                d[x] = (uint8_t)(s > 0xff ? 0xff : s);
            }
        }
    }
}

/* Clears the coverage cells the current stroke can have touched. */
static inline void clear_cells(doodle_raster *r) {
    const size_t n = (size_t)(r->column_hi - r->column_lo + 1);
    memset(&r->uncovered_area[r->column_lo + CELL_OFFSET], 0, n * sizeof(int16_t));
    memset(&r->covered_height[r->column_lo + CELL_OFFSET], 0, n * sizeof(int16_t));
}

static int tor_add_edge(const polygon_edge_t *edge, struct edge *e) {
    const int ymin = 0, ymax = SIDE * GRID_Y;
    int ytop, ybot;
    const point_t *p1, *p2;

    ytop = (int)(((long long)GRID_Y * edge->top + (1 << (FIXED_FRAC_BITS - 1))) >> FIXED_FRAC_BITS);
    if (ytop < ymin)
        ytop = ymin;
    ybot = (int)(((long long)GRID_Y * edge->bottom + (1 << (FIXED_FRAC_BITS - 1))) >> FIXED_FRAC_BITS);
    if (ybot > ymax)
        ybot = ymax;
    if (ybot <= ytop)
        return 0;

    e->ytop = ytop;
    e->height_left = ybot - ytop;
    if (edge->p2.y > edge->p1.y) {
        e->dir = edge->dir;
        p1 = &edge->p1;
        p2 = &edge->p2;
    } else {
        e->dir = -edge->dir;
        p1 = &edge->p2;
        p2 = &edge->p1;
    }

    if (p2->x == p1->x) {
        e->cell = p1->x;
        e->x.quo = p1->x;
        e->x.rem = 0;
        e->dxdy.quo = 0;
        e->dxdy.rem = 0;
        e->dxdy_full.quo = 0;
        e->dxdy_full.rem = 0;
        e->dy = 0;
    } else {
        int64_t Ex, Ey, tmp;

        Ex = (int64_t)(p2->x - p1->x) * GRID_X;
        Ey = (int64_t)(p2->y - p1->y) * GRID_Y * (2 << FIXED_FRAC_BITS);

        e->dxdy.quo = Ex * (2 << FIXED_FRAC_BITS) / Ey;
        e->dxdy.rem = Ex * (2 << FIXED_FRAC_BITS) % Ey;

        tmp = (int64_t)(2 * ytop + 1) << FIXED_FRAC_BITS;
        tmp -= (int64_t)p1->y * GRID_Y * 2;
        tmp *= Ex;
        e->x.quo = tmp / Ey;
        e->x.rem = tmp % Ey;
        e->x.quo += p1->x; /* GRID_X_BITS == FIXED_FRAC_BITS */

        quorem_carry(&e->x, Ey);

        if (e->height_left >= GRID_Y) {
            tmp = Ex * (2 * GRID_Y << FIXED_FRAC_BITS);
            e->dxdy_full.quo = tmp / Ey;
            e->dxdy_full.rem = tmp % Ey;
        } else {
            e->dxdy_full.quo = 0;
            e->dxdy_full.rem = 0;
        }

        e->cell = e->x.quo + (e->x.rem >= Ey / 2);
        e->dy = Ey;
    }
    e->dy_or_max = e->dy ? e->dy : INT64_MAX;
    e->half_dy_or_max = e->dy ? e->dy / 2 : INT64_MAX;
    return 1;
}

/* Scan-converts the polygon of one stroke and composites it onto the image (glitter_scan_converter_render). */
static void fill_polygon(doodle_raster *r) {
    const int h = SIDE;
    const unsigned int mask = ~0u; /* CAIRO_FILL_RULE_WINDING */
    int i, j, count = 0;

    if (r->edge_count == 0)
        return;
    if (!grow((void **)&r->tor_edges, &r->tor_edge_capacity, r->edge_count, sizeof(struct edge)) ||
        !grow((void **)&r->sub_edges, &r->sub_edge_capacity, r->edge_count, sizeof(int)) ||
        !grow((void **)&r->active, &r->active_capacity, r->edge_count, sizeof(int)) ||
        !grow((void **)&r->active_next, &r->active_next_capacity, r->edge_count, sizeof(int))) {
        r->out_of_memory = 1;
        return;
    }

    /* Bucket the edges by starting sub-row, in polygon order within a sub-row, over the rows the stroke spans;
     * note the pixel columns it spans, the only ones with coverage. */
    int first_sub = INT_MAX, last_sub = -1;
    fixed_t min_x = INT32_MAX, max_x = INT32_MIN;
    for (int k = 0; k < r->edge_count; k++) {
        const polygon_edge_t *pe = &r->edges[k];
        struct edge *e = &r->tor_edges[count];
        min_x = pe->p1.x < min_x ? pe->p1.x : min_x;
        min_x = pe->p2.x < min_x ? pe->p2.x : min_x;
        max_x = pe->p1.x > max_x ? pe->p1.x : max_x;
        max_x = pe->p2.x > max_x ? pe->p2.x : max_x;
        if (tor_add_edge(pe, e)) {
            first_sub = e->ytop < first_sub ? e->ytop : first_sub;
            last_sub = e->ytop > last_sub ? e->ytop : last_sub;
            count++;
        }
    }
    if (count == 0)
        return;
    const int first_row = first_sub / GRID_Y, last_row = last_sub / GRID_Y;
    const int sub_lo = first_row * GRID_Y, sub_hi = (last_row + 1) * GRID_Y;
    memset(&r->sub_start[sub_lo], 0, sizeof(int) * (size_t)(sub_hi - sub_lo + 1));
    for (int k = 0; k < count; k++)
        r->sub_start[r->tor_edges[k].ytop + 1]++;
    for (i = sub_lo; i < sub_hi; i++)
        r->sub_start[i + 1] += r->sub_start[i];
    {
        int fill[SIDE * GRID_Y];
        memcpy(&fill[sub_lo], &r->sub_start[sub_lo], sizeof(int) * (size_t)(sub_hi - sub_lo));
        for (int k = 0; k < count; k++)
            r->sub_edges[fill[r->tor_edges[k].ytop]++] = k;
    }
#define ROW_IS_EMPTY(row) ((row) > last_row || r->sub_start[(row) * GRID_Y] == r->sub_start[((row) + 1) * GRID_Y])
    r->column_lo = (min_x >> FIXED_FRAC_BITS) - 1;
    r->column_hi = (max_x >> FIXED_FRAC_BITS) + 2;
    r->column_lo = r->column_lo < 0 ? 0 : r->column_lo;
    r->column_hi = r->column_hi > SIDE ? SIDE : r->column_hi;

    r->active_count = 0;
    r->min_height = 0;
    r->is_vertical = 1;
    memset(r->uncovered_area, 0, sizeof(r->uncovered_area));
    memset(r->covered_height, 0, sizeof(r->covered_height));

    for (i = first_row; i < h; i = j) {
        int do_full_row = 0;
        const int y = i * GRID_Y;
        const int *row = i <= last_row ? &r->sub_edges[r->sub_start[y]] : NULL;
        const int row_count = i <= last_row ? r->sub_start[y + GRID_Y] - r->sub_start[y] : 0;

        j = i + 1;

        if (note_new_edges(r, row, row_count, y) == 0) {
            merge_new_edges(r, row, row_count);
            if (r->active_count == 0) {
                r->min_height = INT_MAX;
                r->is_vertical = 1;
                for (; j < h && ROW_IS_EMPTY(j); j++)
                    ;
                continue;
            }
            do_full_row = can_do_full_row(r);
            if (!do_full_row)
                sub_rows(r, y, 0, mask);
        } else {
            sub_rows(r, y, 1, mask);
        }

        if (do_full_row) {
            full_row(r, mask);
            if (r->is_vertical) {
                while (j < h && ROW_IS_EMPTY(j) && r->min_height >= 2 * GRID_Y) {
                    r->min_height -= GRID_Y;
                    j++;
                }
                if (j != i + 1)
                    step_edges(r, j - (i + 1));
            }
        }

        blit_rows(r, i, j - i);
        clear_cells(r);
        r->min_height -= GRID_Y;
    }
}

/* ---- public API ---------------------------------------------------------------------------------------- */

doodle_raster *doodle_raster_create(void) {
    doodle_raster *r = calloc(1, sizeof(doodle_raster));
    if (!r)
        return NULL;
    /* The gstate as DoodleRenderer sets it up: cairo_scale(s, s), then cairo_translate(24, 24). */
    const double scale = 28.0 / (256.0 + 3 * 16.0);
    const double line_width = 16.0;
    matrix_t identity = {1, 0, 0, 1, 0, 0};
    matrix_t tmp;
    r->ctm = identity;
    r->ctm_inverse = identity;
    tmp = (matrix_t){scale, 0, 0, scale, 0, 0};
    matrix_multiply(&r->ctm, &tmp, &r->ctm);
    tmp = (matrix_t){1 / scale, 0, 0, 1 / scale, 0, 0};
    matrix_multiply(&r->ctm_inverse, &r->ctm_inverse, &tmp);
    tmp = (matrix_t){1, 0, 0, 1, line_width * 1.5, line_width * 1.5};
    matrix_multiply(&r->ctm, &tmp, &r->ctm);
    tmp = (matrix_t){1, 0, 0, 1, -(line_width * 1.5), -(line_width * 1.5)};
    matrix_multiply(&r->ctm_inverse, &r->ctm_inverse, &tmp);

    r->tolerance = 0.1; /* CAIRO_GSTATE_TOLERANCE_DEFAULT */
    r->half_line_width = line_width / 2.;
    r->ctm_det_positive = (r->ctm.xx * r->ctm.yy - r->ctm.yx * r->ctm.xy) >= 0.0;
    pen_init(&r->pen, r->half_line_width, r->tolerance, &r->ctm);
    r->cw.direction = 1;
    r->ccw.direction = -1;
    return r;
}

void doodle_raster_destroy(doodle_raster *r) {
    if (!r)
        return;
    free(r->path);
    free(r->cw.points);
    free(r->ccw.points);
    free(r->edges);
    free(r->tor_edges);
    free(r->sub_edges);
    free(r->active);
    free(r->active_next);
    free(r->sort_scratch);
    free(r);
}

static inline int32_t clamp255(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

int doodle_raster_render(doodle_raster *r, const int32_t *xs, const int32_t *ys, const int32_t *lengths,
                         int stroke_count, uint8_t *out) {
    int32_t max_x = 0, max_y = 0;
    int any = 0;
    long offset = 0;

    r->out_of_memory = 0;
    memset(r->image, 0, sizeof(r->image));
    for (int s = 0; s < stroke_count; s++) {
        for (int k = 0; k < lengths[s]; k++) {
            int32_t x = clamp255(xs[offset + k]), y = clamp255(ys[offset + k]);
            max_x = any ? (x > max_x ? x : max_x) : x;
            max_y = any ? (y > max_y ? y : max_y) : y;
            any = 1;
        }
        offset += lengths[s] > 0 ? lengths[s] : 0;
    }
    const double off_x = (256.0 - (double)max_x) / 2;
    const double off_y = (256.0 - (double)max_y) / 2;

    offset = 0;
    for (int s = 0; s < stroke_count && !r->out_of_memory; s++) {
        int n = lengths[s];
        if (n <= 0)
            continue;
        const int32_t *sx = xs + offset, *sy = ys + offset;
        offset += n;

        /* cairo_move_to(first), cairo_line_to(every point, the first included). */
        r->path_count = 0;
        path_append(r, user_to_device(r, (double)clamp255(sx[0]) + off_x, (double)clamp255(sy[0]) + off_y));
        for (int k = 0; k < n && !r->out_of_memory; k++)
            path_line_to(r, user_to_device(r, (double)clamp255(sx[k]) + off_x, (double)clamp255(sy[k]) + off_y));
        if (r->out_of_memory)
            break;

        /* cairo_stroke: the path to a polygon, the polygon to coverage, composited OVER the image. */
        r->edge_count = 0;
        r->cw.count = 0;
        r->ccw.count = 0;
        r->has_first_face = 0;
        r->has_current_face = 0;
        r->has_initial_sub_path = 0;
        stroker_move_to(r, &r->path[0]);
        for (int k = 1; k < r->path_count; k++)
            stroker_line_to(r, &r->path[k]);
        add_caps(r);
        if (r->out_of_memory)
            break;
        fill_polygon(r);
    }
    if (r->out_of_memory) {
        memset(out, 0, SIDE * SIDE);
        return -1;
    }
    memcpy(out, r->image, SIDE * SIDE);
    return 0;
}

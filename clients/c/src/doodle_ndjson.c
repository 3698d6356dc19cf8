/* Quick, Draw! ndjson drawings: {"word": "cat", ..., "drawing": [[[x0, x1, ...], [y0, y1, ...]], ...]}.
 * A small scanner for exactly this shape (strokes may carry a third array of times), not a JSON library. */
#include "doodle_client.h"

#include <stdlib.h>
#include <string.h>

static const char *skip_space(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* Parses [n, n, ...] into a new array; NULL on a syntax error. */
static const char *parse_numbers(const char *p, float **out, size_t *count) {
    p = skip_space(p);
    if (*p != '[') return NULL;
    p = skip_space(p + 1);
    size_t n = 0, cap = 16;
    float *values = malloc(cap * sizeof *values);
    if (!values) return NULL;
    while (*p != ']') {
        char *end;
        float v = strtof(p, &end);
        if (end == p) {
            free(values);
            return NULL;
        }
        if (n == cap) {
            cap *= 2;
            float *grown = realloc(values, cap * sizeof *values);
            if (!grown) {
                free(values);
                return NULL;
            }
            values = grown;
        }
        values[n++] = v;
        p = skip_space(end);
        if (*p == ',') p = skip_space(p + 1);
        else if (*p != ']') {
            free(values);
            return NULL;
        }
    }
    *out = values;
    *count = n;
    return p + 1;
}

void doodle_drawing_free(doodle_drawing *drawing) {
    if (!drawing) return;
    for (size_t i = 0; i < drawing->n_strokes; i++) {
        free((float *)drawing->strokes[i].x);
        free((float *)drawing->strokes[i].y);
        free((float *)drawing->strokes[i].t);
    }
    free(drawing->strokes);
    memset(drawing, 0, sizeof *drawing);
}

/* One stroke: [[x...], [y...]] or [[x...], [y...], [t...]]. */
static const char *parse_stroke(const char *p, doodle_stroke *stroke) {
    float *arrays[3] = {NULL, NULL, NULL};
    size_t counts[3] = {0, 0, 0};
    int n = 0;
    p = skip_space(p);
    if (*p != '[') return NULL;
    p = skip_space(p + 1);
    while (*p != ']' && n < 3) {
        p = parse_numbers(p, &arrays[n], &counts[n]);
        if (!p) break;
        n++;
        p = skip_space(p);
        if (*p == ',') p = skip_space(p + 1);
    }
    if (!p || *p != ']' || n < 2 || counts[0] != counts[1] || (n == 3 && counts[2] != counts[0])) {
        for (int i = 0; i < 3; i++) free(arrays[i]);
        return NULL;
    }
    stroke->x = arrays[0];
    stroke->y = arrays[1];
    stroke->t = arrays[2];
    stroke->n = counts[0];
    return p + 1;
}

int doodle_drawing_parse(const char *line, doodle_drawing *drawing) {
    if (!line || !drawing) return DOODLE_ERR_ARGUMENT;
    memset(drawing, 0, sizeof *drawing);
    const char *word = strstr(line, "\"word\"");
    if (word) {
        const char *p = skip_space(word + 6);
        if (*p == ':') p = skip_space(p + 1);
        if (*p == '"') {
            p++;
            size_t n = 0;
            while (p[n] && p[n] != '"' && n + 1 < sizeof drawing->word) n++;
            memcpy(drawing->word, p, n);
            drawing->word[n] = '\0';
        }
    }
    const char *p = strstr(line, "\"drawing\"");
    if (!p) return DOODLE_ERR_ARGUMENT;
    p = skip_space(p + 9);
    if (*p != ':') return DOODLE_ERR_ARGUMENT;
    p = skip_space(p + 1);
    if (*p != '[') return DOODLE_ERR_ARGUMENT;
    p = skip_space(p + 1);
    size_t cap = 8;
    drawing->strokes = calloc(cap, sizeof *drawing->strokes);
    if (!drawing->strokes) return DOODLE_ERR_NOMEM;
    while (*p != ']') {
        if (drawing->n_strokes == cap) {
            cap *= 2;
            doodle_stroke *grown = realloc(drawing->strokes, cap * sizeof *grown);
            if (!grown) {
                doodle_drawing_free(drawing);
                return DOODLE_ERR_NOMEM;
            }
            drawing->strokes = grown;
        }
        p = parse_stroke(p, &drawing->strokes[drawing->n_strokes]);
        if (!p) {
            doodle_drawing_free(drawing);
            return DOODLE_ERR_ARGUMENT;
        }
        drawing->n_strokes++;
        p = skip_space(p);
        if (*p == ',') p = skip_space(p + 1);
        else if (*p != ']') {
            doodle_drawing_free(drawing);
            return DOODLE_ERR_ARGUMENT;
        }
    }
    return drawing->n_strokes > 0 ? DOODLE_OK : (doodle_drawing_free(drawing), DOODLE_ERR_ARGUMENT);
}

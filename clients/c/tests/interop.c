/* Interop test against a live doodled:
 *
 *   interop HOST PORT DRAWINGS.ndjson EXPECTED.tsv COUNT CONNECTIONS DEPTH
 *
 * 1. COUNT predictions of the drawings (cycling through them), pipelined DEPTH deep on each of CONNECTIONS
 *    clients driven by one poll() loop, must equal EXPECTED.tsv, the answers the Swift CLI got for the same
 *    drawings (`doodle predict FILE --each`): same status, classes, labels and bit-identical scores.
 * 2. The rest of the API: blocking calls, bitmaps, candidates, server errors, argument errors, client-side
 *    deadlines, reconnects, connection failures.
 * Exits 0 when everything matched; prints what did not. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "doodle_client.h"

static int failures = 0;

#define CHECK(condition, ...)                                                                       \
    do {                                                                                            \
        if (!(condition)) {                                                                         \
            failures++;                                                                             \
            fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #condition);                  \
            fprintf(stderr, __VA_ARGS__);                                                           \
            fprintf(stderr, "\n");                                                                  \
        }                                                                                           \
    } while (0)

/* "<status>\t<class>:<label>:<score bits> ..." as `doodle predict --each` prints it (without the line number). */
static char *format_answer(const doodle_result *r) {
    size_t cap = 64 + r->n_predictions * 96;
    char *text = malloc(cap);
    if (!text) return NULL;
    size_t n = (size_t)snprintf(text, cap, "%d\t", r->status);
    for (size_t i = 0; i < r->n_predictions; i++) {
        uint32_t bits;
        memcpy(&bits, &r->predictions[i].score, sizeof bits);
        n += (size_t)snprintf(text + n, cap - n, "%s%u:%s:%08x", i ? " " : "", r->predictions[i].class_index,
                              r->predictions[i].label, bits);
    }
    return text;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char **read_lines(const char *path, size_t *count) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char **lines = NULL, *line = NULL;
    size_t n = 0, cap = 0, len = 0;
    ssize_t got;
    while ((got = getline(&line, &len, f)) > 0) {
        if (line[got - 1] == '\n') line[got - 1] = '\0';
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = realloc(lines, cap * sizeof *lines);
        }
        lines[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    *count = n;
    return lines;
}

/* Part 1: many pipelined predictions over several connections, compared with the Swift CLI's answers. */
static void pipelined_matches_cli(const char *host, uint16_t port, const char *drawings_path, const char *expected_path,
                                  size_t count, size_t connections, size_t depth) {
    size_t n_drawings = 0, n_expected = 0;
    char **lines = read_lines(drawings_path, &n_drawings);
    char **expected = read_lines(expected_path, &n_expected);
    CHECK(n_drawings > 0 && n_drawings == n_expected, "%zu drawings, %zu expected answers", n_drawings, n_expected);
    doodle_drawing *drawings = calloc(n_drawings, sizeof *drawings);
    for (size_t i = 0; i < n_drawings; i++)
        CHECK(doodle_drawing_parse(lines[i], &drawings[i]) == DOODLE_OK, "line %zu is not a drawing", i + 1);

    doodle_client **clients = calloc(connections, sizeof *clients);
    size_t **index_of = calloc(connections, sizeof *index_of); /* [client][request_id] -> request number */
    for (size_t c = 0; c < connections; c++) {
        char error[256];
        int status = doodle_connect(host, port, NULL, &clients[c], error, sizeof error);
        CHECK(status == DOODLE_OK, "connect: %s", error);
        if (status != DOODLE_OK) exit(1);
        index_of[c] = calloc(count + 2, sizeof **index_of);
    }
    struct pollfd *fds = calloc(connections, sizeof *fds);
    size_t sent = 0, received = 0, matched = 0;
    double start = seconds_now();
    while (received < count) {
        for (size_t c = 0; c < connections; c++) {
            while (sent < count && doodle_in_flight(clients[c]) < depth) {
                const doodle_drawing *d = &drawings[sent % n_drawings];
                doodle_request request = {.strokes = d->strokes, .n_strokes = d->n_strokes, .top_k = 5};
                uint64_t id = 0;
                int status = doodle_submit(clients[c], &request, &id);
                CHECK(status == DOODLE_OK && id <= count + 1, "submit: %s", doodle_last_error(clients[c]));
                if (status != DOODLE_OK) exit(1);
                index_of[c][id] = sent++;
            }
            fds[c].fd = doodle_fd(clients[c]);
            fds[c].events = (short)(POLLIN | (doodle_wants_write(clients[c]) ? POLLOUT : 0));
            fds[c].revents = 0;
        }
        poll(fds, connections, 1000);
        for (size_t c = 0; c < connections; c++) {
            if (fds[c].revents == 0) continue;
            int status = doodle_process(clients[c], 0);
            CHECK(status == DOODLE_OK, "process: %s", doodle_last_error(clients[c]));
            if (status != DOODLE_OK) exit(1);
            doodle_result r;
            while (doodle_next_result(clients[c], &r)) {
                size_t number = index_of[c][r.request_id];
                char *got = format_answer(&r);
                const char *want = strchr(expected[number % n_drawings], '\t');
                int same = got && want && strcmp(got, want + 1) == 0;
                CHECK(same, "request %zu (drawing %zu): got '%s', the Swift CLI got '%s'", number,
                      number % n_drawings + 1, got ? got : "?", want ? want + 1 : "?");
                matched += (size_t)same;
                free(got);
                doodle_result_free(&r);
                received++;
            }
        }
    }
    double seconds = seconds_now() - start;
    printf("pipelined: %zu predictions over %zu connections (depth %zu) in %.2f s (%.0f/s); %zu equal to the Swift CLI's answers\n",
           count, connections, depth, seconds, (double)count / seconds, matched);
    CHECK(matched == count, "%zu of %zu answers differ", count - matched, count);
    for (size_t c = 0; c < connections; c++) {
        doodle_close(clients[c]);
        free(index_of[c]);
    }
    for (size_t i = 0; i < n_drawings; i++) {
        doodle_drawing_free(&drawings[i]);
        free(lines[i]);
        free(expected[i]);
    }
    free(drawings);
    free(lines);
    free(expected);
    free(clients);
    free(index_of);
    free(fds);
}

/* A listening socket that never accepts: connects succeed (backlog), nothing is ever answered. */
static int silent_server(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(fd, (struct sockaddr *)&address, length) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        perror("silent server");
        exit(2);
    }
    *port = ntohs(address.sin_port);
    return fd;
}

/* Part 2: the rest of the API. */
static void api_behaviour(const char *host, uint16_t port, const char *drawing_line) {
    char error[256];
    doodle_client *client = NULL;
    CHECK(doodle_connect(host, port, NULL, &client, error, sizeof error) == DOODLE_OK, "connect: %s", error);
    if (!client) exit(1);
    doodle_result r;

    uint8_t bitmap[DOODLE_BITMAP_BYTES];
    memset(bitmap, 0, sizeof bitmap);
    for (int i = 0; i < 28; i++) bitmap[i * 28 + i] = 255; /* a diagonal line */
    doodle_request by_bitmap = {.bitmap = bitmap};
    CHECK(doodle_predict(client, &by_bitmap, &r) == DOODLE_OK, "bitmap: %s", r.message);
    CHECK(r.n_predictions == 5, "top_k 0 means 5, got %zu", r.n_predictions);
    CHECK(strcmp(r.model_name, "quickdraw-345") == 0, "model %s", r.model_name);
    for (size_t i = 1; i < r.n_predictions; i++)
        CHECK(r.predictions[i - 1].score >= r.predictions[i].score, "predictions are best first");
    doodle_result_free(&r);

    doodle_drawing drawing;
    CHECK(doodle_drawing_parse(drawing_line, &drawing) == DOODLE_OK, "parse");
    const char *labels[] = {"cat", "dog"};
    doodle_request candidates = {.strokes = drawing.strokes, .n_strokes = drawing.n_strokes, .top_k = 2,
                                 .candidate_labels = labels, .n_candidate_labels = 2};
    CHECK(doodle_predict(client, &candidates, &r) == DOODLE_OK, "candidates: %s", r.message);
    CHECK(r.n_predictions == 2, "two candidates, got %zu", r.n_predictions);
    if (r.n_predictions == 2) {
        CHECK((strcmp(r.predictions[0].label, "cat") == 0 || strcmp(r.predictions[0].label, "dog") == 0) &&
              (strcmp(r.predictions[1].label, "cat") == 0 || strcmp(r.predictions[1].label, "dog") == 0),
              "only the candidates: %s, %s", r.predictions[0].label, r.predictions[1].label);
        float sum = r.predictions[0].score + r.predictions[1].score;
        CHECK(sum > 0.999f && sum < 1.001f, "scores renormalised over the candidates: sum %f", (double)sum);
    }
    doodle_result_free(&r);

    const char *unknown[] = {"unicorn-with-a-hat"};
    doodle_request bad = {.bitmap = bitmap, .candidate_labels = unknown, .n_candidate_labels = 1};
    CHECK(doodle_predict(client, &bad, &r) == DOODLE_INVALID_ARGUMENT, "unknown candidate: %s", doodle_status_name(r.status));
    CHECK(strstr(r.message, "unicorn-with-a-hat") != NULL, "the message names the label: %s", r.message);
    doodle_result_free(&r);
    CHECK(doodle_predict(client, &by_bitmap, &r) == DOODLE_OK, "the connection stays usable after an error");
    doodle_result_free(&r);

    doodle_request both = {.bitmap = bitmap, .strokes = drawing.strokes, .n_strokes = drawing.n_strokes};
    CHECK(doodle_predict(client, &both, &r) == DOODLE_ERR_ARGUMENT, "both inputs: %s", doodle_status_name(r.status));
    doodle_result_free(&r);
    doodle_request none = {.top_k = 3};
    CHECK(doodle_submit(client, &none, NULL) == DOODLE_ERR_ARGUMENT, "no input");
    CHECK(strlen(doodle_last_error(client)) > 0, "a message says why");

    CHECK(doodle_reconnect(client) == DOODLE_OK, "reconnect: %s", doodle_last_error(client));
    CHECK(doodle_predict(client, &by_bitmap, &r) == DOODLE_OK, "after reconnect: %s", r.message);
    doodle_result_free(&r);
    doodle_close(client);
    doodle_drawing_free(&drawing);

    /* Client-side deadline: a server that never answers. */
    uint16_t silent_port = 0;
    int silent = silent_server(&silent_port);
    doodle_options options;
    doodle_options_init(&options);
    options.default_deadline_ms = 100;
    CHECK(doodle_connect("127.0.0.1", silent_port, &options, &client, error, sizeof error) == DOODLE_OK, "%s", error);
    double start = seconds_now();
    doodle_request quick = {.bitmap = bitmap, .deadline_ms = 50};
    CHECK(doodle_predict(client, &quick, &r) == DOODLE_ERR_TIMEOUT, "deadline: %s", doodle_status_name(r.status));
    double waited = seconds_now() - start;
    CHECK(waited >= 0.045 && waited < 2.0, "waited %.3f s for a 50 ms deadline", waited);
    doodle_result_free(&r);
    CHECK(doodle_predict(client, &by_bitmap, &r) == DOODLE_ERR_TIMEOUT, "default deadline");
    doodle_result_free(&r);
    /* The server goes away: requests in flight finish with ERR_CLOSED. */
    uint64_t id = 0;
    doodle_request forever = {.bitmap = bitmap, .deadline_ms = 60000};
    CHECK(doodle_submit(client, &forever, &id) == DOODLE_OK, "submit");
    int accepted = accept(silent, NULL, NULL);
    close(accepted);
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 100 && !doodle_next_result(client, &r); i++) doodle_process(client, 100);
    CHECK(r.request_id == id && r.status == DOODLE_ERR_CLOSED, "in flight when the server closed: %s",
          doodle_status_name(r.status));
    CHECK(!doodle_is_connected(client) && doodle_fd(client) == -1, "closed");
    doodle_result_free(&r);
    doodle_close(client);
    close(silent);

    CHECK(doodle_connect("127.0.0.1", silent_port, NULL, &client, error, sizeof error) == DOODLE_ERR_CONNECT,
          "connecting to a closed port fails");
    CHECK(client == NULL && strlen(error) > 0, "with a message: %s", error);
    CHECK(strcmp(doodle_status_name(DOODLE_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED") == 0, "status names");
    printf("api: blocking, bitmap, candidates, server and argument errors, deadlines, reconnect: %s\n",
           failures ? "FAILED" : "ok");
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT DRAWINGS.ndjson EXPECTED.tsv COUNT CONNECTIONS DEPTH\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    uint16_t port = (uint16_t)atoi(argv[2]);
    pipelined_matches_cli(host, port, argv[3], argv[4], (size_t)atol(argv[5]), (size_t)atol(argv[6]), (size_t)atol(argv[7]));
    size_t n = 0;
    char **lines = read_lines(argv[3], &n);
    api_behaviour(host, port, lines[0]);
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    return failures ? 1 : 0;
}

/*
 * doodle_client: a C client for doodled's raw-TCP protocol (docs/protocol.md), built on libprotobuf-c.
 *
 * One `doodle_client` is one TCP connection. Two ways to use it:
 *
 *  - Blocking: doodle_predict() sends one request and waits for its answer (up to its deadline).
 *  - Pipelined, for game loops: doodle_submit() queues requests without waiting; put doodle_fd() in your own
 *    poll/epoll/select (wait for POLLOUT too while doodle_wants_write() says so), call doodle_process() when it
 *    is ready (or with a timeout), then take finished answers with doodle_next_result() in any order; match them
 *    to requests by request_id.
 *
 * Every call returns a status: DOODLE_OK (0), a server status (positive, gRPC's numbers, as the server sent
 * it) or a client error (negative). doodle_status_name() names any of them; doodle_last_error() has the
 * message of the client's last failure. Nothing here prints or aborts.
 *
 * A client is not thread-safe: use one per thread (or lock around it). Several clients may share a thread.
 */
#ifndef DOODLE_CLIENT_H
#define DOODLE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Statuses. Positive values are the server's codes (the protocol's StatusCode, gRPC numbering). */
enum {
    DOODLE_OK = 0,
    DOODLE_INVALID_ARGUMENT = 3,   /* the request was malformed or outside the server's limits */
    DOODLE_DEADLINE_EXCEEDED = 4,  /* the server's deadline passed before the model ran */
    DOODLE_RESOURCE_EXHAUSTED = 8, /* the server's queue (or the connection's in-flight limit) is full */
    DOODLE_INTERNAL = 13,
    DOODLE_UNAVAILABLE = 14,       /* the server is shutting down */

    DOODLE_ERR_ARGUMENT = -1,      /* a bad argument to this library (NULL, no input, both inputs, ...) */
    DOODLE_ERR_NOMEM = -2,
    DOODLE_ERR_CONNECT = -3,       /* could not connect (refused, unreachable, unresolvable) */
    DOODLE_ERR_TIMEOUT = -4,       /* connect timeout, or a request's deadline passed with no answer */
    DOODLE_ERR_CLOSED = -5,        /* the connection is closed (requests in flight on it fail with this) */
    DOODLE_ERR_PROTOCOL = -6,      /* the server sent something that is not the protocol */
    DOODLE_ERR_IO = -7,            /* a socket error */
    DOODLE_ERR_BUSY = -8,          /* max_in_flight requests are already in flight on this client */
};

/* The name of a status ("OK", "INVALID_ARGUMENT", "ERR_TIMEOUT", ...). */
const char *doodle_status_name(int status);

/* How stroke coordinates are read (see proto/doodle/v1/doodle.proto). */
typedef enum {
    DOODLE_FORMAT_AUTO = 0,       /* raw unless it looks like Google's simplified drawings */
    DOODLE_FORMAT_RAW = 1,        /* canvas coordinates as drawn: normalised by the server */
    DOODLE_FORMAT_SIMPLIFIED = 2, /* already 0..255 and simplified */
} doodle_stroke_format;

/* One pen stroke: n points (x[i], y[i]); t (milliseconds) may be NULL. The arrays are only read. */
typedef struct {
    const float *x;
    const float *y;
    const float *t;
    size_t n;
} doodle_stroke;

/* Bytes in a bitmap input: 28 x 28, row-major, 0 = background, 255 = ink. */
#define DOODLE_BITMAP_BYTES 784

/* One prediction request. Set exactly one input: strokes (n_strokes > 0) or bitmap. Everything is copied by
 * doodle_submit()/doodle_predict(), so it may be freed as soon as they return. Zero-initialise and fill in. */
typedef struct {
    const doodle_stroke *strokes;
    size_t n_strokes;
    doodle_stroke_format format;
    const uint8_t *bitmap;                  /* DOODLE_BITMAP_BYTES bytes, or NULL */
    uint32_t top_k;                         /* classes to return, best first; 0 = 5 */
    const char *const *candidate_labels;    /* restrict the answer to these classes (optional) */
    size_t n_candidate_labels;
    const uint32_t *candidate_indices;      /* ... and/or these class indices (optional) */
    size_t n_candidate_indices;
    uint32_t deadline_ms;                   /* 0 = the client's default_deadline_ms; sent to the server too */
} doodle_request;

typedef struct {
    uint32_t class_index;
    char *label;
    float score;  /* softmax probability (renormalised over the candidates, if any) */
} doodle_prediction;

/* A finished request. Owns its memory: release it with doodle_result_free(). */
typedef struct {
    uint64_t request_id;
    int status;                  /* DOODLE_OK, a server status or a client error */
    char *message;               /* why, when status != DOODLE_OK (never NULL after a result is filled in) */
    doodle_prediction *predictions;
    size_t n_predictions;
    char *model_name;
    char *model_version;
} doodle_result;

void doodle_result_free(doodle_result *result);

typedef struct {
    int connect_timeout_ms;      /* default 5000 */
    uint32_t default_deadline_ms;/* for requests that set none; 0 = wait forever (default 10000) */
    size_t max_in_flight;        /* doodle_submit() says DOODLE_ERR_BUSY beyond this (default 1024) */
    int auto_reconnect;          /* doodle_submit() reconnects a closed client first (default 1) */
    size_t max_frame_bytes;      /* largest answer accepted (default 16 MiB) */
} doodle_options;

/* Fills in the defaults. */
void doodle_options_init(doodle_options *options);

typedef struct doodle_client doodle_client;

/* Connects to host:port (a name or an address; IPv4 or IPv6) within options->connect_timeout_ms. options may be
 * NULL for the defaults. On success *out is the new client; on failure *out is NULL and, if error is not NULL,
 * a message is written there (error_size bytes at most). */
int doodle_connect(const char *host, uint16_t port, const doodle_options *options, doodle_client **out,
                   char *error, size_t error_size);

/* Closes the connection and frees the client. Results not taken are dropped. NULL is fine. */
void doodle_close(doodle_client *client);

/* Closes the current connection (requests in flight finish with DOODLE_ERR_CLOSED) and connects again. */
int doodle_reconnect(doodle_client *client);

/* Whether the connection is open. */
int doodle_is_connected(const doodle_client *client);

/* The message of the client's last failure ("" if none). Valid until the next call on this client. */
const char *doodle_last_error(const doodle_client *client);

/* --- Blocking ------------------------------------------------------------------------------------------ */

/* Sends one request and waits for its answer or its deadline. Returns result->status (DOODLE_OK when the
 * server answered OK); *result must be released with doodle_result_free() whatever the status. Answers to
 * pipelined requests that arrive meanwhile stay queued for doodle_next_result(). */
int doodle_predict(doodle_client *client, const doodle_request *request, doodle_result *result);

/* --- Pipelined ----------------------------------------------------------------------------------------- */

/* Queues a request and writes as much as the socket takes now, without blocking. On DOODLE_OK,
 * *request_id (if not NULL) is the id its result will carry. */
int doodle_submit(doodle_client *client, const doodle_request *request, uint64_t *request_id);

/* The socket, for the caller's poll/epoll/select: readable means answers have come. -1 when closed. */
int doodle_fd(const doodle_client *client);

/* Non-zero while queued requests wait to be written: poll for writability too. */
int doodle_wants_write(const doodle_client *client);

/* Does the I/O: writes what is queued, reads and decodes answers, fails requests whose deadline passed.
 * Waits up to timeout_ms for something to happen (0 = don't wait, -1 = until something does). Returns
 * DOODLE_OK, or DOODLE_ERR_CLOSED / DOODLE_ERR_IO / DOODLE_ERR_PROTOCOL when the connection ended (its
 * requests then finish with that status). */
int doodle_process(doodle_client *client, int timeout_ms);

/* Takes the oldest finished result: 1 if *result was filled in (release it with doodle_result_free()),
 * 0 if none is ready. */
int doodle_next_result(doodle_client *client, doodle_result *result);

/* Requests submitted whose results have not finished yet. */
size_t doodle_in_flight(const doodle_client *client);

/* --- Drawings in Quick, Draw! ndjson ------------------------------------------------------------------- */

/* A drawing parsed from one ndjson line of Google's format ({"word": ..., "drawing": [[[x...], [y...]], ...]}).
 * Owns its arrays: release with doodle_drawing_free(). */
typedef struct {
    doodle_stroke *strokes;
    size_t n_strokes;
    char word[128];  /* the "word" field, or "" */
} doodle_drawing;

/* Parses one ndjson line. DOODLE_ERR_ARGUMENT if it is not a Quick, Draw! drawing. */
int doodle_drawing_parse(const char *line, doodle_drawing *drawing);
void doodle_drawing_free(doodle_drawing *drawing);

#ifdef __cplusplus
}
#endif

#endif /* DOODLE_CLIENT_H */

/* doodle_client: connection, framing, pipelining and results. See include/doodle_client.h. */
#define _POSIX_C_SOURCE 200809L

#include "doodle_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "doodle/v1/doodle.pb-c.h"

#define FRAME_HEADER 5

/* A request sent (or queued) whose answer has not come. */
typedef struct {
    uint64_t id;
    int64_t deadline_ns; /* monotonic; 0 = none */
    uint32_t deadline_ms;
} pending_request;

typedef struct {
    uint8_t *data;
    size_t len; /* bytes held */
    size_t off; /* bytes already consumed (written or parsed) */
    size_t cap;
} byte_buffer;

struct doodle_client {
    int fd;
    char host[256];
    uint16_t port;
    doodle_options options;
    uint64_t next_id;
    byte_buffer out;
    byte_buffer in;
    pending_request *pending;
    size_t n_pending, cap_pending;
    doodle_result *done; /* finished results, oldest first */
    size_t n_done, cap_done;
    char last_error[256];
};

/* ---------------------------------------------------------------------------------------------------- */

const char *doodle_status_name(int status) {
    switch (status) {
    case DOODLE_OK: return "OK";
    case DOODLE_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case DOODLE_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case DOODLE_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case DOODLE_INTERNAL: return "INTERNAL";
    case DOODLE_UNAVAILABLE: return "UNAVAILABLE";
    case DOODLE_ERR_ARGUMENT: return "ERR_ARGUMENT";
    case DOODLE_ERR_NOMEM: return "ERR_NOMEM";
    case DOODLE_ERR_CONNECT: return "ERR_CONNECT";
    case DOODLE_ERR_TIMEOUT: return "ERR_TIMEOUT";
    case DOODLE_ERR_CLOSED: return "ERR_CLOSED";
    case DOODLE_ERR_PROTOCOL: return "ERR_PROTOCOL";
    case DOODLE_ERR_IO: return "ERR_IO";
    case DOODLE_ERR_BUSY: return "ERR_BUSY";
    default: return "UNKNOWN";
    }
}

void doodle_options_init(doodle_options *options) {
    options->connect_timeout_ms = 5000;
    options->default_deadline_ms = 10000;
    options->max_in_flight = 1024;
    options->auto_reconnect = 1;
    options->max_frame_bytes = 16u << 20;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fail(doodle_client *client, int status, const char *format, ...) {
    if (client) {
        va_list args;
        va_start(args, format);
        vsnprintf(client->last_error, sizeof client->last_error, format, args);
        va_end(args);
    }
    return status;
}

const char *doodle_last_error(const doodle_client *client) { return client ? client->last_error : "no client"; }

int doodle_fd(const doodle_client *client) { return client ? client->fd : -1; }

int doodle_is_connected(const doodle_client *client) { return client && client->fd >= 0; }

int doodle_wants_write(const doodle_client *client) { return client && client->fd >= 0 && client->out.len > client->out.off; }

size_t doodle_in_flight(const doodle_client *client) { return client ? client->n_pending : 0; }

static char *copy_string(const char *s) {
    size_t n = strlen(s ? s : "");
    char *copy = malloc(n + 1);
    if (copy) memcpy(copy, s ? s : "", n + 1);
    return copy;
}

void doodle_result_free(doodle_result *result) {
    if (!result) return;
    for (size_t i = 0; i < result->n_predictions; i++) free(result->predictions[i].label);
    free(result->predictions);
    free(result->message);
    free(result->model_name);
    free(result->model_version);
    memset(result, 0, sizeof *result);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Buffers and queues */

static int reserve(byte_buffer *b, size_t more) {
    if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
    if (b->len + more <= b->cap) return 0;
    if (b->off > 0) { /* compact first */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) return 0;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int push_done(doodle_client *client, doodle_result *result) {
    if (client->n_done == client->cap_done) {
        size_t cap = client->cap_done ? client->cap_done * 2 : 64;
        doodle_result *done = realloc(client->done, cap * sizeof *done);
        if (!done) return -1;
        client->done = done;
        client->cap_done = cap;
    }
    client->done[client->n_done++] = *result;
    return 0;
}

/* A result that carries only a status and a message. */
static void finish_with(doodle_client *client, uint64_t id, int status, const char *message) {
    doodle_result result;
    memset(&result, 0, sizeof result);
    result.request_id = id;
    result.status = status;
    result.message = copy_string(message);
    result.model_name = copy_string("");
    result.model_version = copy_string("");
    if (push_done(client, &result) != 0) doodle_result_free(&result);
}

static void remove_pending(doodle_client *client, size_t index) {
    client->pending[index] = client->pending[--client->n_pending];
}

static void fail_all_pending(doodle_client *client, int status, const char *message) {
    for (size_t i = 0; i < client->n_pending; i++) finish_with(client, client->pending[i].id, status, message);
    client->n_pending = 0;
}

static void expire_deadlines(doodle_client *client) {
    int64_t now = now_ns();
    for (size_t i = 0; i < client->n_pending;) {
        pending_request *p = &client->pending[i];
        if (p->deadline_ns != 0 && now >= p->deadline_ns) {
            char message[96];
            snprintf(message, sizeof message, "no answer within the %u ms deadline", p->deadline_ms);
            finish_with(client, p->id, DOODLE_ERR_TIMEOUT, message);
            remove_pending(client, i);
        } else {
            i++;
        }
    }
}

/* Closes the socket; everything in flight finishes with `status`. */
static int drop_connection(doodle_client *client, int status, const char *why) {
    if (client->fd >= 0) close(client->fd);
    client->fd = -1;
    client->out.len = client->out.off = 0;
    client->in.len = client->in.off = 0;
    fail_all_pending(client, status, why);
    return fail(client, status, "%s", why);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Connecting */

static int connect_socket(doodle_client *client) {
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)client->port);
    struct addrinfo hints, *addresses = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(client->host, port, &hints, &addresses);
    if (rc != 0) return fail(client, DOODLE_ERR_CONNECT, "cannot resolve %s: %s", client->host, gai_strerror(rc));
    int status = fail(client, DOODLE_ERR_CONNECT, "no address for %s", client->host);
    for (struct addrinfo *a = addresses; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            status = fail(client, DOODLE_ERR_CONNECT, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                status = fail(client, DOODLE_ERR_CONNECT, "connect to %s:%u: %s", client->host, client->port, strerror(errno));
                close(fd);
                continue;
            }
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int ready;
            do ready = poll(&p, 1, client->options.connect_timeout_ms);
            while (ready < 0 && errno == EINTR);
            if (ready == 0) {
                status = fail(client, DOODLE_ERR_TIMEOUT, "connect to %s:%u: no answer within %d ms", client->host,
                              client->port, client->options.connect_timeout_ms);
                close(fd);
                continue;
            }
            int error = 0;
            socklen_t length = sizeof error;
            if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
                status = fail(client, DOODLE_ERR_CONNECT, "connect to %s:%u: %s", client->host, client->port,
                              strerror(error ? error : errno));
                close(fd);
                continue;
            }
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client->fd = fd;
        status = DOODLE_OK;
        client->last_error[0] = '\0';
        break;
    }
    freeaddrinfo(addresses);
    return status;
}

int doodle_connect(const char *host, uint16_t port, const doodle_options *options, doodle_client **out,
                   char *error, size_t error_size) {
    if (out) *out = NULL;
    if (!host || !out || strlen(host) >= sizeof ((doodle_client *)0)->host) {
        if (error && error_size) snprintf(error, error_size, "doodle_connect: bad host or output pointer");
        return DOODLE_ERR_ARGUMENT;
    }
    doodle_client *client = calloc(1, sizeof *client);
    if (!client) {
        if (error && error_size) snprintf(error, error_size, "out of memory");
        return DOODLE_ERR_NOMEM;
    }
    client->fd = -1;
    strcpy(client->host, host);
    client->port = port;
    if (options) client->options = *options;
    else doodle_options_init(&client->options);
    if (client->options.max_in_flight == 0) client->options.max_in_flight = 1;
    client->next_id = 1;
    int status = connect_socket(client);
    if (status != DOODLE_OK) {
        if (error && error_size) snprintf(error, error_size, "%s", client->last_error);
        doodle_close(client);
        return status;
    }
    *out = client;
    return DOODLE_OK;
}

int doodle_reconnect(doodle_client *client) {
    if (!client) return DOODLE_ERR_ARGUMENT;
    if (client->fd >= 0) drop_connection(client, DOODLE_ERR_CLOSED, "the client reconnected");
    return connect_socket(client);
}

void doodle_close(doodle_client *client) {
    if (!client) return;
    if (client->fd >= 0) close(client->fd);
    for (size_t i = 0; i < client->n_done; i++) doodle_result_free(&client->done[i]);
    free(client->done);
    free(client->pending);
    free(client->out.data);
    free(client->in.data);
    free(client);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Encoding requests */

static int encode_request(doodle_client *client, const doodle_request *r, uint64_t id, uint32_t deadline_ms) {
    int has_strokes = r->n_strokes > 0;
    int has_bitmap = r->bitmap != NULL;
    if (has_strokes == has_bitmap)
        return fail(client, DOODLE_ERR_ARGUMENT, "set exactly one input: strokes (n_strokes > 0) or bitmap");
    if (has_strokes && !r->strokes) return fail(client, DOODLE_ERR_ARGUMENT, "n_strokes > 0 but strokes is NULL");
    if ((r->n_candidate_labels && !r->candidate_labels) || (r->n_candidate_indices && !r->candidate_indices))
        return fail(client, DOODLE_ERR_ARGUMENT, "a candidate count is set but its array is NULL");

    Doodle__V1__PredictRequest predict = DOODLE__V1__PREDICT_REQUEST__INIT;
    predict.request_id = id;
    predict.top_k = r->top_k;
    predict.deadline_ms = deadline_ms;
    predict.n_candidate_labels = r->n_candidate_labels;
    predict.candidate_labels = (char **)r->candidate_labels; /* only read by the packer */
    predict.n_candidate_indices = r->n_candidate_indices;
    predict.candidate_indices = (uint32_t *)r->candidate_indices;

    Doodle__V1__Drawing drawing = DOODLE__V1__DRAWING__INIT;
    Doodle__V1__Stroke *strokes = NULL;
    Doodle__V1__Stroke **stroke_pointers = NULL;
    if (has_strokes) {
        strokes = calloc(r->n_strokes, sizeof *strokes);
        stroke_pointers = calloc(r->n_strokes, sizeof *stroke_pointers);
        if (!strokes || !stroke_pointers) {
            free(strokes);
            free(stroke_pointers);
            return fail(client, DOODLE_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < r->n_strokes; i++) {
            const doodle_stroke *s = &r->strokes[i];
            Doodle__V1__Stroke init = DOODLE__V1__STROKE__INIT;
            strokes[i] = init;
            if (s->n > 0 && (!s->x || !s->y)) {
                free(strokes);
                free(stroke_pointers);
                return fail(client, DOODLE_ERR_ARGUMENT, "stroke %zu has %zu points but x or y is NULL", i, s->n);
            }
            strokes[i].n_x = strokes[i].n_y = s->n;
            strokes[i].x = (float *)s->x;
            strokes[i].y = (float *)s->y;
            if (s->t) {
                strokes[i].n_t = s->n;
                strokes[i].t = (float *)s->t;
            }
            stroke_pointers[i] = &strokes[i];
        }
        drawing.n_strokes = r->n_strokes;
        drawing.strokes = stroke_pointers;
        drawing.format = (Doodle__V1__StrokeFormat)r->format;
        predict.input_case = DOODLE__V1__PREDICT_REQUEST__INPUT_STROKES;
        predict.strokes = &drawing;
    } else {
        predict.input_case = DOODLE__V1__PREDICT_REQUEST__INPUT_BITMAP;
        predict.bitmap.data = (uint8_t *)r->bitmap;
        predict.bitmap.len = DOODLE_BITMAP_BYTES;
    }
    Doodle__V1__ClientMessage message = DOODLE__V1__CLIENT_MESSAGE__INIT;
    message.message_case = DOODLE__V1__CLIENT_MESSAGE__MESSAGE_PREDICT;
    message.predict = &predict;

    size_t size = doodle__v1__client_message__get_packed_size(&message);
    int status = DOODLE_OK;
    if (size > 0xffffffffu) {
        status = fail(client, DOODLE_ERR_ARGUMENT, "the request is %zu bytes, more than a frame can hold", size);
    } else if (reserve(&client->out, FRAME_HEADER + size) != 0) {
        status = fail(client, DOODLE_ERR_NOMEM, "out of memory");
    } else {
        uint8_t *frame = client->out.data + client->out.len;
        frame[0] = 0;
        frame[1] = (uint8_t)(size >> 24);
        frame[2] = (uint8_t)(size >> 16);
        frame[3] = (uint8_t)(size >> 8);
        frame[4] = (uint8_t)size;
        doodle__v1__client_message__pack(&message, frame + FRAME_HEADER);
        client->out.len += FRAME_HEADER + size;
    }
    free(strokes);
    free(stroke_pointers);
    return status;
}

/* ---------------------------------------------------------------------------------------------------- */
/* I/O */

/* Writes what is queued until the socket would block. */
static int flush_writes(doodle_client *client) {
    while (client->fd >= 0 && client->out.len > client->out.off) {
        ssize_t n = send(client->fd, client->out.data + client->out.off, client->out.len - client->out.off, MSG_NOSIGNAL);
        if (n > 0) {
            client->out.off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return DOODLE_OK;
        } else {
            char why[160];
            snprintf(why, sizeof why, "send: %s", strerror(errno));
            return drop_connection(client, errno == EPIPE || errno == ECONNRESET ? DOODLE_ERR_CLOSED : DOODLE_ERR_IO, why);
        }
    }
    if (client->out.off == client->out.len) client->out.off = client->out.len = 0;
    return DOODLE_OK;
}

static void take_answer(doodle_client *client, const Doodle__V1__PredictResponse *answer) {
    size_t index = 0;
    while (index < client->n_pending && client->pending[index].id != answer->request_id) index++;
    if (index == client->n_pending) return; /* its deadline passed already (or not ours): drop it */
    remove_pending(client, index);

    doodle_result result;
    memset(&result, 0, sizeof result);
    result.request_id = answer->request_id;
    result.status = answer->status ? (int)answer->status->code : DOODLE_OK;
    result.message = copy_string(answer->status ? answer->status->message : "");
    result.model_name = copy_string(answer->model_name);
    result.model_version = copy_string(answer->model_version);
    int ok = result.message && result.model_name && result.model_version;
    if (ok && answer->n_predictions > 0) {
        result.predictions = calloc(answer->n_predictions, sizeof *result.predictions);
        ok = result.predictions != NULL;
        for (size_t i = 0; ok && i < answer->n_predictions; i++) {
            result.predictions[i].class_index = answer->predictions[i]->class_index;
            result.predictions[i].score = answer->predictions[i]->score;
            result.predictions[i].label = copy_string(answer->predictions[i]->label);
            result.n_predictions = i + 1;
            ok = result.predictions[i].label != NULL;
        }
    }
    if (!ok) {
        doodle_result_free(&result);
        finish_with(client, answer->request_id, DOODLE_ERR_NOMEM, "out of memory");
        return;
    }
    if (push_done(client, &result) != 0) doodle_result_free(&result);
}

/* Decodes every whole frame in the input buffer. */
static int parse_frames(doodle_client *client) {
    byte_buffer *in = &client->in;
    while (in->len - in->off >= FRAME_HEADER) {
        const uint8_t *h = in->data + in->off;
        size_t size = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
        if (h[0] != 0) return drop_connection(client, DOODLE_ERR_PROTOCOL, "the server sent a frame with flags set");
        if (size > client->options.max_frame_bytes)
            return drop_connection(client, DOODLE_ERR_PROTOCOL, "the server sent a frame larger than max_frame_bytes");
        if (in->len - in->off < FRAME_HEADER + size) break;
        Doodle__V1__ServerMessage *message = doodle__v1__server_message__unpack(NULL, size, h + FRAME_HEADER);
        in->off += FRAME_HEADER + size;
        if (!message) return drop_connection(client, DOODLE_ERR_PROTOCOL, "the server sent a frame that is not a ServerMessage");
        if (message->message_case == DOODLE__V1__SERVER_MESSAGE__MESSAGE_PREDICT && message->predict) {
            if (message->predict->request_id == 0 && message->predict->status) {
                /* The server could not read one of our frames: say why (it should not happen). */
                fail(client, DOODLE_ERR_PROTOCOL, "server: %s", message->predict->status->message);
            } else {
                take_answer(client, message->predict);
            }
        }
        doodle__v1__server_message__free_unpacked(message, NULL);
    }
    if (in->off == in->len) in->off = in->len = 0;
    return DOODLE_OK;
}

/* Reads until the socket would block, decoding as it goes. */
static int read_answers(doodle_client *client) {
    while (client->fd >= 0) {
        if (reserve(&client->in, 65536) != 0) return drop_connection(client, DOODLE_ERR_NOMEM, "out of memory");
        ssize_t n = recv(client->fd, client->in.data + client->in.len, client->in.cap - client->in.len, 0);
        if (n > 0) {
            client->in.len += (size_t)n;
            int status = parse_frames(client);
            if (status != DOODLE_OK) return status;
        } else if (n == 0) {
            return drop_connection(client, DOODLE_ERR_CLOSED, "the server closed the connection");
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return DOODLE_OK;
        } else {
            char why[160];
            snprintf(why, sizeof why, "recv: %s", strerror(errno));
            return drop_connection(client, errno == ECONNRESET ? DOODLE_ERR_CLOSED : DOODLE_ERR_IO, why);
        }
    }
    return DOODLE_ERR_CLOSED;
}

int doodle_process(doodle_client *client, int timeout_ms) {
    if (!client) return DOODLE_ERR_ARGUMENT;
    expire_deadlines(client);
    if (client->fd < 0) return fail(client, DOODLE_ERR_CLOSED, "the connection is closed");
    int status = flush_writes(client);
    if (status != DOODLE_OK) return status;
    if (timeout_ms != 0 && client->n_pending == 0 && !doodle_wants_write(client)) return DOODLE_OK; /* nothing to wait for */
    /* Wake up for the nearest deadline too. */
    int64_t now = now_ns();
    for (size_t i = 0; i < client->n_pending; i++) {
        if (client->pending[i].deadline_ns == 0) continue;
        int64_t left_ms = (client->pending[i].deadline_ns - now + 999999) / 1000000;
        if (left_ms < 0) left_ms = 0;
        if (timeout_ms < 0 || left_ms < timeout_ms) timeout_ms = (int)left_ms;
    }
    struct pollfd p = {.fd = client->fd, .events = POLLIN | (doodle_wants_write(client) ? POLLOUT : 0)};
    int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) return drop_connection(client, DOODLE_ERR_IO, "poll failed");
    if (ready > 0) {
        if (p.revents & POLLOUT) status = flush_writes(client);
        if (status == DOODLE_OK && (p.revents & (POLLIN | POLLHUP | POLLERR))) status = read_answers(client);
    }
    expire_deadlines(client);
    return status;
}

int doodle_submit(doodle_client *client, const doodle_request *request, uint64_t *request_id) {
    if (!client || !request) return DOODLE_ERR_ARGUMENT;
    if (client->fd < 0) {
        if (!client->options.auto_reconnect) return fail(client, DOODLE_ERR_CLOSED, "the connection is closed");
        int status = connect_socket(client);
        if (status != DOODLE_OK) return status;
    }
    if (client->n_pending >= client->options.max_in_flight)
        return fail(client, DOODLE_ERR_BUSY, "%zu requests in flight (max_in_flight)", client->n_pending);
    if (client->n_pending == client->cap_pending) {
        size_t cap = client->cap_pending ? client->cap_pending * 2 : 64;
        pending_request *pending = realloc(client->pending, cap * sizeof *pending);
        if (!pending) return fail(client, DOODLE_ERR_NOMEM, "out of memory");
        client->pending = pending;
        client->cap_pending = cap;
    }
    uint64_t id = client->next_id++;
    uint32_t deadline_ms = request->deadline_ms ? request->deadline_ms : client->options.default_deadline_ms;
    int status = encode_request(client, request, id, deadline_ms);
    if (status != DOODLE_OK) return status;
    pending_request *p = &client->pending[client->n_pending++];
    p->id = id;
    p->deadline_ms = deadline_ms;
    p->deadline_ns = deadline_ms ? now_ns() + (int64_t)deadline_ms * 1000000 : 0;
    if (request_id) *request_id = id;
    status = flush_writes(client);
    /* A connection that just failed has finished this request (with that status) like any other. */
    return status == DOODLE_OK || client->fd < 0 ? DOODLE_OK : status;
}

int doodle_next_result(doodle_client *client, doodle_result *result) {
    if (!client || !result || client->n_done == 0) return 0;
    *result = client->done[0];
    memmove(client->done, client->done + 1, (client->n_done - 1) * sizeof *client->done);
    client->n_done--;
    return 1;
}

/* Takes the finished result for `id`, if there is one. */
static int take_result(doodle_client *client, uint64_t id, doodle_result *result) {
    for (size_t i = 0; i < client->n_done; i++) {
        if (client->done[i].request_id != id) continue;
        *result = client->done[i];
        memmove(client->done + i, client->done + i + 1, (client->n_done - i - 1) * sizeof *client->done);
        client->n_done--;
        return 1;
    }
    return 0;
}

int doodle_predict(doodle_client *client, const doodle_request *request, doodle_result *result) {
    if (!result) return DOODLE_ERR_ARGUMENT;
    memset(result, 0, sizeof *result);
    uint64_t id = 0;
    int status = doodle_submit(client, request, &id);
    if (status != DOODLE_OK) {
        result->status = status;
        result->message = copy_string(client ? client->last_error : "no client");
        result->model_name = copy_string("");
        result->model_version = copy_string("");
        return status;
    }
    /* The request's deadline ends the wait: doodle_process() finishes it with DOODLE_ERR_TIMEOUT. */
    while (!take_result(client, id, result)) {
        doodle_process(client, -1);
    }
    return result->status;
}

/* doodle_predict: reads Quick, Draw! ndjson drawings from a file (or standard input) and prints doodled's top-k
 * for each.
 *
 *   doodle_predict [--server host:port] [--top-k K] [FILE.ndjson]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doodle_client.h"

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = NULL;
    char host_buffer[256];
    unsigned port = 7431, top_k = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            const char *colon = strrchr(argv[++i], ':');
            if (!colon || colon == argv[i] || (size_t)(colon - argv[i]) >= sizeof host_buffer) {
                fprintf(stderr, "--server: expected host:port\n");
                return 2;
            }
            memcpy(host_buffer, argv[i], (size_t)(colon - argv[i]));
            host_buffer[colon - argv[i]] = '\0';
            host = host_buffer;
            port = (unsigned)atoi(colon + 1);
        } else if (strcmp(argv[i], "--top-k") == 0 && i + 1 < argc) {
            top_k = (unsigned)atoi(argv[++i]);
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            fprintf(stderr, "usage: %s [--server host:port] [--top-k K] [FILE.ndjson]\n", argv[0]);
            return 2;
        }
    }
    FILE *input = path ? fopen(path, "r") : stdin;
    if (!input) {
        perror(path);
        return 1;
    }
    char error[256];
    doodle_client *client = NULL;
    if (doodle_connect(host, (uint16_t)port, NULL, &client, error, sizeof error) != DOODLE_OK) {
        fprintf(stderr, "cannot connect to %s:%u: %s\n", host, port, error);
        return 1;
    }
    char *line = NULL;
    size_t capacity = 0;
    int failures = 0;
    while (getline(&line, &capacity, input) > 0) {
        doodle_drawing drawing;
        if (doodle_drawing_parse(line, &drawing) != DOODLE_OK) {
            fprintf(stderr, "skipped a line that is not a Quick, Draw! drawing\n");
            failures++;
            continue;
        }
        doodle_request request = {.strokes = drawing.strokes, .n_strokes = drawing.n_strokes, .top_k = top_k};
        doodle_result result;
        int status = doodle_predict(client, &request, &result);
        if (status == DOODLE_OK) {
            printf("%s:", drawing.word[0] ? drawing.word : "?");
            for (size_t i = 0; i < result.n_predictions; i++)
                printf(" %s %.1f%%", result.predictions[i].label, 100 * result.predictions[i].score);
            printf("\n");
        } else {
            fprintf(stderr, "%s: %s\n", doodle_status_name(status), result.message);
            failures++;
        }
        doodle_result_free(&result);
        doodle_drawing_free(&drawing);
    }
    free(line);
    if (input != stdin) fclose(input);
    doodle_close(client);
    return failures ? 1 : 0;
}

/* The machine's floor for a request/response over loopback TCP: two processes echo an 800-byte message (the
 * size of a bitmap request) back and forth with blocking reads, TCP_NODELAY, nothing else. Whatever doodled
 * and its client do, one round trip at concurrency 1 costs at least this.
 *   cc -O2 -o pingpong pingpong.c && ./pingpong [ROUNDS]      (prints p50 and p99 in microseconds, as JSON)
 * Run it under `taskset -c 0` (both processes on one core) and unpinned to see what crossing cores costs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int read_all(int fd, char *buffer, int length) {
    for (int got = 0; got < length;) {
        int n = (int)read(fd, buffer + got, length - got);
        if (n <= 0) return -1;
        got += n;
    }
    return 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20000, one = 1;
    enum { size = 800 };
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1) ||
        getsockname(listener, (struct sockaddr *)&address, &length)) {
        perror("listen");
        return 1;
    }
    pid_t echo = fork();
    if (echo == 0) {
        int s = accept(listener, NULL, NULL);
        char buffer[size];
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        while (read_all(s, buffer, size) == 0 && write(s, buffer, size) == size) {}
        return 0;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&address, sizeof address)) {
        perror("connect");
        return 1;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buffer[size];
    memset(buffer, 1, size);
    double *rtt = malloc(sizeof(double) * rounds);
    for (int i = 0; i < rounds; i++) {
        double start = now_us();
        if (write(s, buffer, size) != size || read_all(s, buffer, size)) return 1;
        rtt[i] = now_us() - start;
    }
    close(s);
    waitpid(echo, NULL, 0);
    qsort(rtt, rounds, sizeof(double), compare);
    printf("{\"rounds\": %d, \"p50Micros\": %.1f, \"p99Micros\": %.1f}\n", rounds, rtt[rounds / 2],
           rtt[(int)(rounds * 0.99)]);
    return 0;
}

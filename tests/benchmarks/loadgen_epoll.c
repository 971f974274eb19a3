/* A load generator for the line echo servers in C: one thread, one epoll set, so that it
 * costs far less CPU per message than the servers it drives and never sets their ceiling.
 * The benchmark (bench_servers.py) builds it with cc into a temporary folder.
 *
 *   loadgen_epoll HOST PORT persistent|per-request CLIENTS SECONDS [SIZE]
 *
 * Each client sends a SIZE-byte line (lower-case letters, the newline included) and reads
 * the reply, which must be that line upper-cased, over and over: on one connection
 * (persistent) or on a new connection per request (per-request). First exchanges are
 * made at most RAMP at a time, so 1,000 clients never stand in a listen backlog of 128 at
 * once; once every client has made its first attempt (or after RAMP_TIMEOUT seconds),
 * counting starts and lasts SECONDS. Prints one JSON object: messages/s, connections/s,
 * errors, and the generator's own CPU use (user + system seconds per second of window),
 * which says whether it was the bottleneck: near 1.0 means it used a whole core. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RAMP 64
#define RAMP_TIMEOUT 30.0
#define MAX_SIZE 4096

enum state { IDLE, CONNECTING, WAITING };

struct client {
    int fd;
    enum state state;
    int first_done; /* its first attempt is over (well or not) */
    unsigned seq;
    size_t got;
    char sent[MAX_SIZE];
    char reply[MAX_SIZE];
};

static struct sockaddr_in server;
static int epfd, per_request, window_open;
static size_t size = 32;
static long messages, connections, errors, in_ramp, ramp_left, started;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void start_connect(struct client *c, unsigned index);

static void first_over(struct client *c, struct client *all, unsigned n)
{
    if (c->first_done)
        return;
    c->first_done = 1;
    in_ramp--;
    ramp_left--;
    if (started < (long)n) { /* admit the next client into the ramp */
        in_ramp++;
        start_connect(&all[started], (unsigned)started);
        started++;
    }
}

static void drop(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = IDLE;
}

static void send_line(struct client *c, unsigned index)
{
    int head = snprintf(c->sent, size, "%u.%u ", index, c->seq++);
    if (head < 0 || (size_t)head >= size)
        head = 0;
    for (size_t i = (size_t)head; i + 1 < size; i++)
        c->sent[i] = (char)('a' + i % 26);
    c->sent[size - 1] = '\n';
    c->got = 0;
    ssize_t n = send(c->fd, c->sent, size, MSG_NOSIGNAL);
    if (n != (ssize_t)size) { /* 32 bytes to an empty socket: anything else is an error */
        errors++;
        drop(c);
        start_connect(c, index);
        return;
    }
    c->state = WAITING;
}

static void start_connect(struct client *c, unsigned index)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLOUT, .data = {.u32 = index}};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        perror("epoll_ctl");
        exit(1);
    }
    c->state = CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        errors++;
        drop(c); /* retried on the next loop turn, see main */
    }
}

static void on_event(struct client *all, unsigned n, unsigned index, unsigned events)
{
    struct client *c = &all[index];
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            errors++;
            drop(c);
            first_over(c, all, n);
            return;
        }
        if (window_open)
            connections++;
        struct epoll_event ev = {.events = EPOLLIN, .data = {.u32 = index}};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        send_line(c, index);
        return;
    }
    if (c->state != WAITING)
        return;
    ssize_t got = recv(c->fd, c->reply + c->got, size - c->got, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (got <= 0) { /* reset, or closed before a full reply */
        errors++;
        drop(c);
        first_over(c, all, n);
        return;
    }
    c->got += (size_t)got;
    if (c->got < size)
        return;
    for (size_t i = 0; i < size; i++) {
        char want = c->sent[i] >= 'a' && c->sent[i] <= 'z' ? (char)(c->sent[i] - 32) : c->sent[i];
        if (c->reply[i] != want) {
            errors++;
            drop(c);
            first_over(c, all, n);
            return;
        }
    }
    if (window_open)
        messages++;
    first_over(c, all, n);
    if (per_request) {
        drop(c);
        start_connect(c, index);
    } else {
        send_line(c, index);
    }
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: %s HOST PORT persistent|per-request CLIENTS SECONDS [SIZE]\n",
                argv[0]);
        return 2;
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
        fprintf(stderr, "%s: not an IPv4 address: %s\n", argv[0], argv[1]);
        return 2;
    }
    per_request = strcmp(argv[3], "per-request") == 0;
    if (!per_request && strcmp(argv[3], "persistent") != 0) {
        fprintf(stderr, "%s: mode must be persistent or per-request: %s\n", argv[0], argv[3]);
        return 2;
    }
    long n = atol(argv[4]);
    double seconds = atof(argv[5]);
    if (argc == 7)
        size = (size_t)atol(argv[6]);
    if (n < 1 || n > 100000 || seconds <= 0 || size < 16 || size > MAX_SIZE) {
        fprintf(stderr, "%s: CLIENTS 1..100000, SECONDS > 0, SIZE 16..%d\n", argv[0], MAX_SIZE);
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    struct client *all = calloc((size_t)n, sizeof *all);
    if (all == NULL)
        return 1;
    for (long i = 0; i < n; i++)
        all[i].fd = -1;
    epfd = epoll_create1(0);
    ramp_left = n;
    for (; started < n && started < RAMP; started++, in_ramp++)
        start_connect(&all[started], (unsigned)started);

    struct epoll_event events[256];
    double began = now(), opened = 0, cpu_at_open = 0;
    double ramp_seconds = 0;
    for (;;) {
        double t = now();
        if (!window_open && (ramp_left == 0 || t - began > RAMP_TIMEOUT)) {
            window_open = 1;
            ramp_seconds = t - began;
            opened = t;
            cpu_at_open = cpu_seconds();
        }
        if (window_open && t - opened >= seconds)
            break;
        for (long i = 0; i < started; i++) /* clients whose connect() failed at once */
            if (all[i].fd < 0)
                start_connect(&all[i], (unsigned)i);
        int ready = epoll_wait(epfd, events, 256, 100);
        if (ready < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < ready; i++)
            on_event(all, (unsigned)n, events[i].data.u32, events[i].events);
    }
    double window = now() - opened;
    double cpu = cpu_seconds() - cpu_at_open;
    printf("{\"messages_per_s\": %.1f, \"connections_per_s\": %.1f, \"messages\": %ld, "
           "\"connections\": %ld, \"errors\": %ld, \"not_started\": %ld, \"window_s\": %.3f, "
           "\"ramp_s\": %.3f, \"generator_cpu\": %.3f}\n",
           messages / window, connections / window, messages, connections, errors, n - started,
           window, ramp_seconds, cpu / window);
    return 0;
}

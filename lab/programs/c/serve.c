/* What the TCP servers share: see serve.h.  Common subset of C11 and C++17, like wrap.c. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "serve.h"

#include "wrap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* After refusing an over-long line, read (and drop) what the client still sends for at
 * most this long before closing, so the close is a FIN it can read up to rather than a
 * reset that could destroy the ERROR line. */
#define DRAIN_SECONDS 2
#define DRAIN_BYTES (16L * 1024 * 1024)

volatile sig_atomic_t stop_signal = 0;

static int parsing_tcp = 1;

static void usage(const char *prog, const char *problem, const char *value)
{
    fprintf(stderr, "%s: %s%s%s\nusage: %s [PORT] %s[--host ADDR]\n", prog, problem,
            value ? ": " : "", value ? value : "", prog,
            parsing_tcp ? "[--backlog N] [--reuseaddr] " : "");
    exit(2);
}

static long number(const char *prog, const char *text, long low, long high, const char *what)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
        char problem[96];
        snprintf(problem, sizeof problem, "%s must be %ld..%ld", what, low, high);
        usage(prog, problem, text);
    }
    return value;
}

void parse_server_args(int argc, char **argv, int default_port, struct server_args *out)
{
    const char *prog = argc > 0 ? argv[0] : "server";
    out->host = "0.0.0.0";
    out->port = default_port;
    out->backlog = 128;
    out->reuseaddr = 0;
    int i = 1;
    if (i < argc && argv[i][0] != '-')
        out->port = (int)number(prog, argv[i++], 0, 65535, "port");
    for (; i < argc; i++) {
        if (parsing_tcp && strcmp(argv[i], "--reuseaddr") == 0) {
            out->reuseaddr = 1;
        } else if (parsing_tcp && strcmp(argv[i], "--backlog") == 0 && i + 1 < argc) {
            out->backlog = (int)number(prog, argv[++i], 1, 1 << 20, "backlog");
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            out->port = (int)number(prog, argv[++i], 0, 65535, "port");
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            out->host = argv[++i];
        } else {
            usage(prog, "unexpected argument", argv[i]);
        }
    }
}

void parse_udp_server_args(int argc, char **argv, int default_port, struct server_args *out)
{
    parsing_tcp = 0;
    parse_server_args(argc, argv, default_port, out);
}

int open_socket(const struct server_args *args, const char *proto)
{
    int udp = strcmp(proto, "udp") == 0;
    struct sockaddr_in addr;
    Inet_addr(args->host, args->port, &addr);
    int fd = Socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (args->reuseaddr) {
        int on = 1;
        Setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    }
    Bind(fd, &addr);
    char here[ADDR_TEXT_LEN];
    if (udp) {
        log_line("listening udp %s pid=%ld", local_text(fd, here, sizeof here), (long)getpid());
    } else {
        Listen(fd, args->backlog);
        log_line("listening tcp %s pid=%ld backlog=%d", local_text(fd, here, sizeof here),
                 (long)getpid(), args->backlog);
    }
    return fd;
}

void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        die_call("fcntl", NULL);
}

static void on_stop(int signum)
{
    stop_signal = signum;
}

void block_stop_signals(sigset_t *waiting)
{
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_stop;
    sigemptyset(&act.sa_mask);
    act.sa_flags = 0;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigprocmask(SIG_BLOCK, &stops, waiting);
    /* A write to a connection the peer has reset must fail with EPIPE for that connection,
     * not end the whole server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    sigdelset(waiting, SIGTERM);
    sigdelset(waiting, SIGINT);
}

int wait_readable(int fd, const sigset_t *waiting)
{
    for (;;) {
        if (stop_signal)
            return 0;
        fd_set ready;
        FD_ZERO(&ready);
        FD_SET(fd, &ready);
        int n = pselect(fd + 1, &ready, NULL, NULL, NULL, waiting);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            die_call("pselect", NULL);
    }
}

static void exit_now(int signum)
{
    /* Only async-signal-safe calls here: write() and _exit(). */
    static const char term[] = "shutdown signal=SIGTERM\n";
    static const char intr[] = "shutdown signal=SIGINT\n";
    if (signum == SIGINT)
        (void)!write(STDERR_FILENO, intr, sizeof intr - 1);
    else
        (void)!write(STDERR_FILENO, term, sizeof term - 1);
    _exit(0);
}

void exit_on_stop_signals(void)
{
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = exit_now;
    sigemptyset(&act.sa_mask);
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void log_shutdown(void)
{
    log_line("shutdown signal=%s", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
}

size_t upper_case(const char *line, size_t len, char *out, size_t cap)
{
    size_t n = len < cap ? len : cap;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        out[i] = (char)(c < 0x80 ? toupper(c) : c);
    }
    return n;
}

static size_t refuse_long_line(int fd)
{
    char msg[80];
    int n = snprintf(msg, sizeof msg, "ERROR line longer than %d bytes; closing\n", MAX_LINE);
    if (writen(fd, msg, (size_t)n) < 0)
        return 0;
    shutdown(fd, SHUT_WR);
    struct timeval idle = {DRAIN_SECONDS, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    char sink[8192];
    long drained = 0;
    ssize_t got;
    while (drained < DRAIN_BYTES && (got = read(fd, sink, sizeof sink)) > 0)
        drained += got;
    return (size_t)n;
}

void serve_lines(int fd, const struct sockaddr_in *peer, const char *who, respond_fn respond)
{
    /* Heap, not stack: a thread per connection keeps its stack small. */
    size_t cap = MAX_LINE + 2;
    char *line = (char *)malloc(cap);
    char *reply = (char *)malloc(cap);
    struct line_reader *reader = (struct line_reader *)malloc(sizeof *reader);
    char where[ADDR_TEXT_LEN];
    addr_text(peer, where, sizeof where);
    log_line("connect %s %s", where, who);
    size_t bytes_out = 0;
    const char *reason = "";
    if (line == NULL || reply == NULL || reader == NULL) {
        reason = " error=ENOMEM";
    } else {
        line_reader_init(reader, fd);
        for (;;) {
            ssize_t n = readline(reader, line, cap);
            if (n == 0)
                break;
            if (n == -2) {
                bytes_out += refuse_long_line(fd);
                reason = " line-too-long";
                break;
            }
            if (n < 0) {
                reason = errno == ECONNRESET ? " reset" : " error";
                break;
            }
            size_t len = respond(line, (size_t)n, reply, cap);
            if (writen(fd, reply, len) < 0) {
                reason = errno == ECONNRESET || errno == EPIPE ? " reset" : " error";
                break;
            }
            bytes_out += len;
        }
    }
    close(fd);
    log_line("close %s %s bytes_in=%zu bytes_out=%zu%s", where, who,
             reader != NULL ? reader->received : (size_t)0, bytes_out, reason);
    free(line);
    free(reply);
    free(reader);
}

/* What the TCP servers share: the command line, the listening socket, stopping on
 * SIGTERM/SIGINT and the per-connection line loop with its log lines (the same lines the
 * Python servers write: "listening tcp IP:PORT pid=N backlog=B", "connect PEER WHO",
 * "close PEER WHO bytes_in=N bytes_out=N", "shutdown signal=SIGTERM"). */
#ifndef SOCKET_LAB_SERVE_H
#define SOCKET_LAB_SERVE_H

#include <signal.h>
#include <stddef.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

struct server_args {
    const char *host;
    int port;
    int backlog;
    int reuseaddr;
};

/* PROG [PORT] [--backlog N] [--reuseaddr] [--host ADDR]: the port first (0 picks a free
 * one, logged at start), the options as the Python twins spell them (--port N is also
 * understood, so their argument lists work unchanged).  A bad argument is
 * reported in one line and the program exits 2. */
void parse_server_args(int argc, char **argv, int default_port, struct server_args *out);
/* The same for a UDP server: PROG [PORT] [--host ADDR], as the Python twin. */
void parse_udp_server_args(int argc, char **argv, int default_port, struct server_args *out);
/* socket + SO_REUSEADDR (only if asked) + bind + listen; logs the "listening" line.
 * proto is "tcp" or "udp" (no listen for udp).  Exits 1 naming the errno on failure. */
int open_socket(const struct server_args *args, const char *proto);

/* The stop signal once SIGTERM or SIGINT has arrived, else 0. */
extern volatile sig_atomic_t stop_signal;
/* Install the SIGTERM/SIGINT handler and block both; *waiting receives the mask to wait
 * with, in which they are unblocked; SIGPIPE is ignored.  Threads created afterwards
 * inherit the block, so only the thread that waits with wait_readable() ever runs the handler. */
void block_stop_signals(sigset_t *waiting);
/* Wait until fd is readable (1) or a stop signal has arrived (0).  pselect() unblocks
 * the stop signals atomically with the wait, so a signal that arrives just before it is
 * not lost; other signals (SIGCHLD) interrupting it are retried. */
int wait_readable(int fd, const sigset_t *waiting);
/* For a socket waited on with wait_readable(): the connection that made it readable may
 * be gone (reset) by the time accept() runs, and a blocking accept() would then wait,
 * deaf to the stop signals, for the next one.  Non-blocking, it fails with EAGAIN.
 * (Accepted sockets do not inherit O_NONBLOCK on Linux.) */
void set_nonblocking(int fd);
void log_shutdown(void);
/* For a server that never needs to clean up (the iterative one): SIGTERM/SIGINT log the
 * "shutdown" line and end the process at once, even mid-connection (the kernel closes its
 * sockets).  Also ignores SIGPIPE. */
void exit_on_stop_signals(void);

/* Answer one request line (with its "\n", NUL-terminated) into out (cap bytes); returns
 * the reply's length. */
typedef size_t (*respond_fn)(const char *line, size_t len, char *out, size_t cap);
/* The course's transformation: ASCII lower case to upper case, every other byte as is. */
size_t upper_case(const char *line, size_t len, char *out, size_t cap);

/* One connection: log "connect", answer each line, log "close", close fd.  An over-long
 * line gets an ERROR line and the connection is closed.  Never exits the process. */
void serve_lines(int fd, const struct sockaddr_in *peer, const char *who, respond_fn respond);

#ifdef __cplusplus
}
#endif

#endif

/* Iterative upper-casing echo server (default port 9877): one client at a time.
 *
 *   iterative_server [PORT] [--backlog N] [--reuseaddr] [--host ADDR]
 *
 * While one client is served, others still complete the handshake (the kernel queues
 * them, up to the backlog) but get no answer until it leaves.  SIGTERM/SIGINT end the
 * process at once, even mid-connection.
 */
#define _POSIX_C_SOURCE 200809L

#include "serve.h"
#include "wrap.h"

#include <stdio.h>
#include <unistd.h>

#define DEFAULT_PORT 9877

int main(int argc, char **argv)
{
    struct server_args args;
    parse_server_args(argc, argv, DEFAULT_PORT, &args);
    exit_on_stop_signals();
    int listenfd = open_socket(&args, "tcp");
    char who[32];
    snprintf(who, sizeof who, "pid=%ld", (long)getpid());
    for (;;) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int connfd = Accept(listenfd, &peer, &peer_len);
        if (connfd >= 0)
            serve_lines(connfd, &peer, who, upper_case);
    }
}

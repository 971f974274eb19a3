/* SPOT THE BUG: the thread server of the course notes, with their per-connection table.
 * Otherwise identical to ../thread_server.c (diff them).
 *
 * Thread-per-connection upper-casing echo server (default port 8000).
 *
 *   thread_server [PORT] [--backlog N] [--reuseaddr] [--host ADDR]
 *
 * Each connection gets a detached thread and a slot in main's table ts[256], indexed by
 * a counter that is never bounded: connection 257 writes past the end of the table, over
 * whatever main keeps next to it on its stack.
 * SIGTERM/SIGINT: the listening socket is closed and the process exits 0; threads still
 * serving end with it.
 */
#define _POSIX_C_SOURCE 200809L

#include "serve.h"
#include "wrap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PORT 8000

struct conn_info {
    int connfd;
    struct sockaddr_in peer;
    unsigned long number;
};

static void *do_work(void *arg)
{
    struct conn_info *info = arg;
    char who[48];
    snprintf(who, sizeof who, "thread=Thread-%lu", info->number);
    serve_lines(info->connfd, &info->peer, who, upper_case);
    return NULL;
}

int main(int argc, char **argv)
{
    struct server_args args;
    parse_server_args(argc, argv, DEFAULT_PORT, &args);
    sigset_t waiting;
    block_stop_signals(&waiting); /* before any thread: they all inherit the block */
    int listenfd = open_socket(&args, "tcp");
    set_nonblocking(listenfd);
    unsigned long count = 0;
    struct conn_info ts[256];
    int i = 0;
    while (wait_readable(listenfd, &waiting)) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        int connfd = Accept(listenfd, &peer, &peer_len);
        if (connfd < 0)
            continue;
        struct conn_info *info = &ts[i];
        info->connfd = connfd;
        info->peer = peer;
        info->number = ++count;
        pthread_t tid;
        int err = pthread_create(&tid, NULL, do_work, info);
        if (err != 0) {
            log_line("error pthread_create: %s (%s)", errno_name(err), strerror(err));
            Close(connfd);
            continue;
        }
        pthread_detach(tid); /* nobody joins it: its resources go back when it returns */
        i++;
    }
    Close(listenfd);
    log_shutdown();
    return 0;
}

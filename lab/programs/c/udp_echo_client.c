/* UDP echo client: each line read from stdin (without its newline) goes to the server as
 * one datagram, and the echo is printed on stdout as one line.
 *
 *   udp_echo_client HOST PORT [--timeout S]
 *
 * No bind: the kernel picks the client's port at the first sendto.  A datagram can be
 * lost, so each wait for an echo is bounded (--timeout, default 5 s, as the Python
 * client): then it says so on stderr and exits 1.  Datagrams from any other address than
 * the server's are ignored (and logged).
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_DATAGRAM 65507

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s HOST PORT [--timeout S]\n", prog);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "udp_echo_client";
    if (argc != 3 && argc != 5)
        usage(prog);
    char *end;
    long port = strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || port < 1 || port > 65535)
        usage(prog);
    double timeout = 5.0;
    if (argc == 5) {
        if (strcmp(argv[3], "--timeout") != 0)
            usage(prog);
        timeout = strtod(argv[4], &end);
        if (end == argv[4] || *end != '\0' || !(timeout > 0 && timeout <= 3600))
            usage(prog);
    }
    struct sockaddr_in server;
    Inet_addr(argv[1], (int)port, &server);
    char where[ADDR_TEXT_LEN];
    addr_text(&server, where, sizeof where);
    int sockfd = Socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv;
    tv.tv_sec = (time_t)timeout;
    tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
    Setsockopt(sockfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    static char reply[MAX_DATAGRAM + 1];
    while ((len = getline(&line, &line_cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        if (sendto(sockfd, line, (size_t)len, 0, (struct sockaddr *)&server, sizeof server) < 0)
            die_call("sendto", where);
        for (;;) {
            struct sockaddr_in from;
            socklen_t from_len = sizeof from;
            ssize_t n = recvfrom(sockfd, reply, MAX_DATAGRAM, 0, (struct sockaddr *)&from,
                                 &from_len);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                log_line("recvfrom %s: ETIMEDOUT (no reply within %g s)", where, timeout);
                return 1;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                die_call("recvfrom", where);
            if (from.sin_addr.s_addr != server.sin_addr.s_addr || from.sin_port != server.sin_port) {
                char other[ADDR_TEXT_LEN];
                log_line("ignored a datagram from %s", addr_text(&from, other, sizeof other));
                continue;
            }
            reply[n] = '\n';
            Write(STDOUT_FILENO, reply, (size_t)n + 1);
            break;
        }
    }
    free(line);
    Close(sockfd);
    return 0;
}

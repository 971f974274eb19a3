/* UDP echo server (default port 8080): every datagram goes back unchanged to the address
 * it came from, one datagram out per datagram in.  No connection, so no accept and no
 * per-client state.
 *
 *   udp_echo_server [PORT] [--host ADDR]
 *
 * Logs "datagram PEER bytes=N" per datagram; SIGTERM/SIGINT: close, log, exit 0.
 */
#define _POSIX_C_SOURCE 200809L

#include "serve.h"
#include "wrap.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PORT 8080
/* The largest UDP payload over IPv4; a smaller buffer would silently truncate. */
#define MAX_DATAGRAM 65507

int main(int argc, char **argv)
{
    struct server_args args;
    parse_udp_server_args(argc, argv, DEFAULT_PORT, &args);
    sigset_t waiting;
    block_stop_signals(&waiting);
    int sockfd = open_socket(&args, "udp");
    set_nonblocking(sockfd);
    static char buf[MAX_DATAGRAM];
    while (wait_readable(sockfd, &waiting)) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(sockfd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);
        if (n < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
                log_line("error recvfrom: %s (%s)", errno_name(errno), strerror(errno));
            continue;
        }
        char where[ADDR_TEXT_LEN];
        addr_text(&peer, where, sizeof where);
        log_line("datagram %s bytes=%zd", where, n);
        if (sendto(sockfd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len) < 0)
            log_line("error sendto %s: %s (%s)", where, errno_name(errno), strerror(errno));
    }
    Close(sockfd);
    log_shutdown();
    return 0;
}

/* The course's str_cli client: each line read from stdin is sent to the server, and the
 * reply line it answers with is printed on stdout.
 *
 *   str_cli HOST PORT
 *
 * Exits 0 at the end of stdin.  If the server closes the connection before answering a
 * line (read returns 0), says "str_cli: server terminated prematurely" on stderr and exits
 * 1; a read error (-1: ECONNRESET, ...) is reported with its errno name and exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void str_cli(FILE *in, int sockfd, const char *server)
{
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    static char reply[MAX_LINE + 2];
    struct line_reader reader;
    line_reader_init(&reader, sockfd);
    while ((len = getline(&line, &line_cap, in)) > 0) {
        Write(sockfd, line, (size_t)len);
        if (line[len - 1] != '\n')
            Write(sockfd, "\n", 1); /* a last line without its newline is still a line */
        ssize_t n = readline(&reader, reply, sizeof reply);
        if (n == 0) {
            log_line("str_cli: server terminated prematurely");
            exit(1);
        }
        if (n == -2) {
            log_line("str_cli: a reply line longer than %d bytes from %s", MAX_LINE, server);
            exit(1);
        }
        if (n < 0)
            die_call("read", server);
        Write(STDOUT_FILENO, reply, (size_t)n);
    }
    free(line);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argc > 0 ? argv[0] : "str_cli");
        return 2;
    }
    char *end;
    long port = strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "%s: port must be 1..65535: %s\n", argv[0], argv[2]);
        return 2;
    }
    /* Writing to a connection the server has reset: an EPIPE error we report, rather
     * than a silent death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in server;
    Inet_addr(argv[1], (int)port, &server);
    char where[ADDR_TEXT_LEN];
    addr_text(&server, where, sizeof where);
    int sockfd = Socket(AF_INET, SOCK_STREAM, 0);
    Connect(sockfd, &server);
    str_cli(stdin, sockfd, where);
    Close(sockfd);
    return 0;
}

/* Error-wrapped socket calls and the course's read/write helpers.
 *
 * A capitalised name (Socket, Bind, ...) is the call with its errors handled here: on
 * failure it prints one line on stderr naming the call, the address involved and the errno
 * by its symbolic name, e.g. "bind 0.0.0.0:9999: EADDRINUSE (Address already in use)",
 * then exits with status 1.  readn/writen/readline keep read()'s meanings: 0 = the peer
 * closed, -1 = an error (errno set); EINTR is retried inside them.
 */
#ifndef SOCKET_LAB_WRAP_H
#define SOCKET_LAB_WRAP_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>

#if defined(__GNUC__)
#define WRAP_NORETURN __attribute__((noreturn))
#define WRAP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WRAP_NORETURN
#define WRAP_PRINTF(a, b)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Longest request line a server accepts, without its "\n" (as the Python servers). */
#define MAX_LINE 65536
/* "255.255.255.255:65535" plus the terminating NUL. */
#define ADDR_TEXT_LEN 32

/* "EADDRINUSE" for EADDRINUSE; "errno 123" for a number it does not know. */
const char *errno_name(int err);
/* "ip:port" of an IPv4 address into out (at least ADDR_TEXT_LEN bytes); returns out. */
char *addr_text(const struct sockaddr_in *sa, char *out, size_t size);
/* The socket's local "ip:port", or "?" when it has none. */
char *local_text(int fd, char *out, size_t size);

/* One line on stderr in a single write(2), so lines from several processes or threads
 * never interleave.  Not for signal handlers (it formats with vsnprintf). */
void log_line(const char *fmt, ...) WRAP_PRINTF(1, 2);
/* "CALL ADDRESS: ENAME (text)" on stderr for the current errno, then exit(1).  address
 * may be NULL. */
void die_call(const char *call, const char *address) WRAP_NORETURN;

int Socket(int family, int type, int protocol);
void Setsockopt(int fd, int level, int name, const void *value, socklen_t len);
void Bind(int fd, const struct sockaddr_in *sa);
void Listen(int fd, int backlog);
/* accept(), retrying the errors that concern one aborted connection (ECONNABORTED,
 * EPROTO).  Returns -1 with errno EINTR when a signal interrupted it, so that the caller
 * can look at its flags and call again (likewise EAGAIN on a non-blocking socket); on running out of descriptors or memory (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM) it logs, pauses 0.1 s (the pending connection stays queued, so
 * retrying at once would spin) and returns -1 with that errno.  Other errors exit.
 * As with accept() itself, the caller sets *len to sizeof(*sa) before every call
 * (accept() overwrites it with the length of the address it stored). */
int Accept(int fd, struct sockaddr_in *sa, socklen_t *len);
void Connect(int fd, const struct sockaddr_in *sa);
void Close(int fd);
/* read() retrying EINTR; exits on an error. */
ssize_t Read(int fd, void *buf, size_t n);
/* writen(); exits on an error. */
void Write(int fd, const void *buf, size_t n);
pid_t Fork(void);
/* An IPv4 address from text ("127.0.0.1") and a port; exits naming the text if invalid. */
void Inet_addr(const char *host, int port, struct sockaddr_in *out);

/* Read exactly n bytes unless the peer closes first: returns the count read (< n only at
 * EOF), or -1 on an error. */
ssize_t readn(int fd, void *buf, size_t n);
/* Write all n bytes (write may take only part of them): n, or -1 on an error. */
ssize_t writen(int fd, const void *buf, size_t n);

/* Buffered line reading for one descriptor.  The buffer lives in this struct, one per
 * connection, so threads never share it (a readline with static variables mixes the bytes
 * of different connections). */
struct line_reader {
    int fd;
    size_t start, end;     /* unread bytes are buf[start, end) */
    size_t received;       /* bytes taken from the descriptor so far */
    char buf[8192];
};

void line_reader_init(struct line_reader *r, int fd);
/* Copy the next line, its "\n" included, into out and NUL-terminate it.  Returns its
 * length; 0 at EOF; -1 on an error (errno set); -2 if the line does not fit in size - 1
 * bytes (then out holds its first size - 1 bytes and the rest stays unread).  At EOF an
 * unterminated last line is returned without "\n". */
ssize_t readline(struct line_reader *r, char *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif

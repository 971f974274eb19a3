/* Error-wrapped socket calls and the course's read/write helpers: see wrap.h.
 * Written in the common subset of C11 and C++17, so that the C++ dictionary server links
 * the same file (compiled with `-x c++`). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
#define THREAD_LOCAL thread_local
#else
#define THREAD_LOCAL _Thread_local
#endif

#define NAME(e) { e, #e }
struct errno_entry {
    int code;
    const char *name;
};
static const struct errno_entry ERRNO_NAMES[] = {
    NAME(EPERM), NAME(ENOENT), NAME(EINTR), NAME(EIO), NAME(EBADF), NAME(EAGAIN),
    NAME(ENOMEM), NAME(EACCES), NAME(EFAULT), NAME(EBUSY), NAME(EEXIST), NAME(EINVAL),
    NAME(ENFILE), NAME(EMFILE), NAME(ENOSPC), NAME(EPIPE), NAME(ENOTSOCK),
    NAME(EDESTADDRREQ), NAME(EMSGSIZE), NAME(EPROTOTYPE), NAME(ENOPROTOOPT),
    NAME(EPROTONOSUPPORT), NAME(EOPNOTSUPP), NAME(EAFNOSUPPORT), NAME(EADDRINUSE),
    NAME(EADDRNOTAVAIL), NAME(ENETDOWN), NAME(ENETUNREACH), NAME(ENETRESET),
    NAME(ECONNABORTED), NAME(ECONNRESET), NAME(ENOBUFS), NAME(EISCONN), NAME(ENOTCONN),
    NAME(ETIMEDOUT), NAME(ECONNREFUSED), NAME(EHOSTUNREACH), NAME(EALREADY),
    NAME(EINPROGRESS), NAME(EPROTO), NAME(ECHILD), NAME(ESRCH), NAME(EHOSTDOWN),
};
#undef NAME

const char *errno_name(int err)
{
    static THREAD_LOCAL char unknown[24];
    for (size_t i = 0; i < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0]; i++)
        if (ERRNO_NAMES[i].code == err)
            return ERRNO_NAMES[i].name;
    snprintf(unknown, sizeof unknown, "errno %d", err);
    return unknown;
}

char *addr_text(const struct sockaddr_in *sa, char *out, size_t size)
{
    char ip[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip) == NULL)
        snprintf(ip, sizeof ip, "?");
    snprintf(out, size, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return out;
}

char *local_text(int fd, char *out, size_t size)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sin_family != AF_INET) {
        snprintf(out, size, "?");
        return out;
    }
    return addr_text(&sa, out, size);
}

void log_line(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    int saved = errno;
    (void)writen(STDERR_FILENO, line, len); /* stderr gone: keep serving regardless */
    errno = saved;
}

void die_call(const char *call, const char *address)
{
    int err = errno;
    if (address != NULL)
        log_line("%s %s: %s (%s)", call, address, errno_name(err), strerror(err));
    else
        log_line("%s: %s (%s)", call, errno_name(err), strerror(err));
    exit(1);
}

int Socket(int family, int type, int protocol)
{
    int fd = socket(family, type, protocol);
    if (fd < 0)
        die_call("socket", NULL);
    return fd;
}

void Setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    if (setsockopt(fd, level, name, value, len) < 0) {
        char here[ADDR_TEXT_LEN];
        die_call("setsockopt", local_text(fd, here, sizeof here));
    }
}

void Bind(int fd, const struct sockaddr_in *sa)
{
    if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        char where[ADDR_TEXT_LEN];
        die_call("bind", addr_text(sa, where, sizeof where));
    }
}

void Listen(int fd, int backlog)
{
    if (listen(fd, backlog) < 0) {
        char here[ADDR_TEXT_LEN];
        die_call("listen", local_text(fd, here, sizeof here));
    }
}

int Accept(int fd, struct sockaddr_in *sa, socklen_t *len)
{
    socklen_t given = *len; /* the caller's value, for each retry: accept() changes it */
    for (;;) {
        *len = given;
        int conn = accept(fd, (struct sockaddr *)sa, len);
        if (conn >= 0)
            return conn;
        int err = errno;
        if (err == ECONNABORTED || err == EPROTO)
            continue;
        if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK)
            return -1;
        char here[ADDR_TEXT_LEN];
        local_text(fd, here, sizeof here);
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
            log_line("error accept %s: %s (%s)", here, errno_name(err), strerror(err));
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
            errno = err;
            return -1;
        }
        die_call("accept", here);
    }
}

void Connect(int fd, const struct sockaddr_in *sa)
{
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        char where[ADDR_TEXT_LEN];
        die_call("connect", addr_text(sa, where, sizeof where));
    }
}

void Close(int fd)
{
    /* Linux releases the descriptor even when close() reports EINTR: never retry. */
    if (close(fd) < 0 && errno != EINTR)
        die_call("close", NULL);
}

ssize_t Read(int fd, void *buf, size_t n)
{
    for (;;) {
        ssize_t got = read(fd, buf, n);
        if (got >= 0)
            return got;
        if (errno != EINTR)
            die_call("read", NULL);
    }
}

void Write(int fd, const void *buf, size_t n)
{
    if (writen(fd, buf, n) < 0)
        die_call("write", NULL);
}

pid_t Fork(void)
{
    pid_t pid = fork();
    if (pid < 0)
        die_call("fork", NULL);
    return pid;
}

void Inet_addr(const char *host, int port, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
        log_line("inet_pton %s: not an IPv4 address", host);
        exit(1);
    }
}

ssize_t readn(int fd, void *buf, size_t n)
{
    char *p = (char *)buf;
    size_t left = n;
    while (left > 0) {
        ssize_t got = read(fd, p, left);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0) /* the peer has closed its side */
            break;
        p += got;
        left -= (size_t)got;
    }
    return (ssize_t)(n - left);
}

ssize_t writen(int fd, const void *buf, size_t n)
{
    const char *p = (const char *)buf;
    size_t left = n;
    while (left > 0) {
        ssize_t put = write(fd, p, left);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += put;
        left -= (size_t)put;
    }
    return (ssize_t)n;
}

void line_reader_init(struct line_reader *r, int fd)
{
    r->fd = fd;
    r->start = r->end = 0;
    r->received = 0;
}

ssize_t readline(struct line_reader *r, char *out, size_t size)
{
    size_t len = 0;
    if (size == 0)
        return -2;
    for (;;) {
        while (r->start < r->end) {
            if (len + 1 >= size) {
                out[len] = '\0';
                return -2;
            }
            char c = r->buf[r->start++];
            out[len++] = c;
            if (c == '\n') {
                out[len] = '\0';
                return (ssize_t)len;
            }
        }
        ssize_t got = read(r->fd, r->buf, sizeof r->buf);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0) {
            out[len] = '\0';
            return (ssize_t)len; /* the unterminated rest, or 0 at EOF */
        }
        r->start = 0;
        r->end = (size_t)got;
        r->received += (size_t)got;
    }
}

/* Fork-per-connection upper-casing echo server (default port 9999).
 *
 *   fork_server [PORT] [--backlog N] [--reuseaddr] [--host ADDR]
 *
 * The parent accepts and closes the connected socket; the child closes the listening
 * socket, upper-cases each line and writes it back.  The SIGCHLD handler, a
 * waitpid(-1, ..., WNOHANG) loop, is installed before the first fork, and SIGCHLD is
 * blocked from fork() until the child's pid is recorded, so a child that exits at once is
 * never reaped before the parent knows it.  SIGCHLD is installed without SA_RESTART: a
 * slow call it interrupts fails with EINTR and is retried.
 *
 * On SIGTERM/SIGINT the server sends SIGTERM to its children, reaps them (SIGKILL after a
 * grace period), closes the listening socket and exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include "serve.h"
#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT 9999
#define STOP_GRACE_MS 3000

/* Children forked and not yet reaped.  Changed by the main flow only while SIGCHLD is
 * blocked, and by the handler (which only removes), so the two never interleave. */
static pid_t *children;
static size_t n_children, cap_children;

static void forget_child(pid_t pid)
{
    for (size_t i = 0; i < n_children; i++) {
        if (children[i] == pid) {
            children[i] = children[--n_children];
            return;
        }
    }
}

/* Exit code, or minus the signal number that ended the process (as the Python twin). */
static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? -WTERMSIG(status) : 0;
}

/* "reaped pid=N status=S" with write() only: printf is not async-signal-safe. */
static void log_reaped(pid_t pid, int code)
{
    char line[64], digits[24];
    size_t len = 0;
    const char *parts[] = {"reaped pid=", NULL, " status=", NULL};
    long values[] = {(long)pid, (long)code};
    for (int part = 0; part < 4; part++) {
        const char *text = parts[part];
        if (text == NULL) {
            long v = values[part / 2];
            unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
            size_t d = sizeof digits;
            do {
                digits[--d] = (char)('0' + u % 10);
                u /= 10;
            } while (u > 0);
            if (v < 0)
                digits[--d] = '-';
            memcpy(line + len, digits + d, sizeof digits - d);
            len += sizeof digits - d;
        } else {
            memcpy(line + len, text, strlen(text));
            len += strlen(text);
        }
    }
    line[len++] = '\n';
    (void)!write(STDERR_FILENO, line, len);
}

static void on_sigchld(int signum)
{
    (void)signum;
    int saved = errno; /* waitpid may change errno under the interrupted code's feet */
    int status;
    pid_t pid;
    /* One SIGCHLD may stand for several exits: reap until none is left. */
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        forget_child(pid);
        log_reaped(pid, exit_code(status));
    }
    errno = saved;
}

static void remember_child(pid_t pid)
{
    if (n_children == cap_children) {
        size_t cap = cap_children ? 2 * cap_children : 64;
        pid_t *grown = realloc(children, cap * sizeof *grown);
        if (grown == NULL) {
            log_line("error realloc: out of memory; pid=%ld left untracked", (long)pid);
            return;
        }
        children = grown;
        cap_children = cap;
    }
    children[n_children++] = pid;
}

static void stop_children(void)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL); /* from here on only this function reaps */
    for (size_t i = 0; i < n_children; i++)
        kill(children[i], SIGTERM); /* unreaped, so the pid is still ours */
    struct timespec tick = {0, 10 * 1000 * 1000};
    int waited_ms = 0, killed = 0;
    while (n_children > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            forget_child(pid);
            log_reaped(pid, exit_code(status));
            continue;
        }
        if (pid < 0 && errno == ECHILD)
            break;
        if (waited_ms >= STOP_GRACE_MS && !killed) {
            for (size_t i = 0; i < n_children; i++)
                kill(children[i], SIGKILL);
            killed = 1;
        }
        nanosleep(&tick, NULL);
        waited_ms += 10;
    }
}

static void child(int listenfd, int connfd, const struct sockaddr_in *peer,
                  const sigset_t *old_mask)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigset_t mask = *old_mask;
    sigdelset(&mask, SIGTERM);
    sigdelset(&mask, SIGINT);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    Close(listenfd); /* the parent keeps accepting; this process serves one client */
    char who[32];
    snprintf(who, sizeof who, "pid=%ld", (long)getpid());
    serve_lines(connfd, peer, who, upper_case);
    _exit(0);
}

int main(int argc, char **argv)
{
    struct server_args args;
    parse_server_args(argc, argv, DEFAULT_PORT, &args);
    sigset_t waiting;
    block_stop_signals(&waiting);

    /* Before the first fork: a child that exits early must not be missed. */
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_sigchld;
    sigemptyset(&act.sa_mask);
    act.sa_flags = 0;
    if (sigaction(SIGCHLD, &act, NULL) < 0)
        die_call("sigaction", NULL);

    int listenfd = open_socket(&args, "tcp");
    set_nonblocking(listenfd);
    sigset_t fork_window;
    sigemptyset(&fork_window);
    sigaddset(&fork_window, SIGCHLD);
    while (wait_readable(listenfd, &waiting)) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer; /* accept() overwrites it: set before each call */
        int connfd = Accept(listenfd, &peer, &peer_len);
        if (connfd < 0)
            continue; /* EINTR (a child exited) or a transient shortage: try again */
        sigset_t old_mask;
        sigprocmask(SIG_BLOCK, &fork_window, &old_mask);
        pid_t pid = fork();
        if (pid == 0)
            child(listenfd, connfd, &peer, &old_mask);
        if (pid < 0)
            log_line("error fork: %s (%s)", errno_name(errno), strerror(errno));
        else
            remember_child(pid);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        Close(connfd); /* the child has its own copy; the parent must drop its reference */
    }
    stop_children();
    Close(listenfd);
    log_shutdown();
    return 0;
}

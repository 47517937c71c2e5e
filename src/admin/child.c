/*
 * child.c - supervise bring-your-own model servers (see child.h).
 *
 * How a child is started: fork + execve, with argv and envp built before
 * the fork and only async-signal-safe calls in the child (setpgid, prctl,
 * sigaction, sigprocmask, open, dup2, chdir, close_range, execve, write,
 * _exit). The gateway has worker threads, so after fork the child may hold
 * copies of locks another thread held (malloc's among them): it must not
 * allocate, log or format anything. posix_spawn would be cheaper (glibc
 * runs it with CLONE_VFORK) and has POSIX_SPAWN_SETPGROUP and closefrom,
 * but it cannot set PR_SET_PDEATHSIG, which needs code in the child: that
 * would take a separate exec wrapper binary, a second thing to install and
 * find. A fork that does only syscalls is the standard safe form and needs
 * nothing else; its cost (copying the page tables) is paid only when a
 * model starts or restarts.
 *
 * All signals are blocked around the fork: between fork and the reset of
 * the dispositions, a signal would otherwise run the gateway's handlers
 * (libevent's writes into the parent's signal socketpair) in the child.
 *
 * Reaping is by pid only. waitid(P_PID, WNOWAIT) sees the exit first while
 * the zombie still pins the process group id, so the group's stragglers
 * (a server's workers, which would keep the port) get SIGKILL without any
 * risk of hitting a reused id; then waitpid(pid, WNOHANG) reaps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <event2/event.h>

#include "infergate/child.h"
#include "infergate/common.h"

#define CHILD_EXIT_MAX 384  /* the last exit's sentence, line included */
#define CHILD_LOG_TAIL 4096 /* bytes of the log read to find its last line */
#define CHILD_TICK_MS 1000  /* the safety-net check when SIGCHLD was missed */
#define CHILD_REAP_POLL_MS 10
#define CHILD_KILL_WAIT_MS 2000 /* after SIGKILL at shutdown, at most */
#define CHILD_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct ig_child {
    struct ig_child *prev, *next; /* every child not yet freed */
    char *name;
    char *exe;
    char *model_dir;
    char *log_path;
    char *argv[3];  /* exe, "serve", NULL */
    char **envp;    /* built once, reused by every restart */
    size_t envc;
    int log_fd;     /* O_APPEND; dup'ed to the child's 1 and 2 */
    int max_fd;     /* the close loop's bound when close_range fails */
    uint16_t port;
    pid_t pid;      /* > 0 from fork until reaped */
    int released;   /* ig_child_stop called: free once reaped */
    int inert;      /* after ig_child_reap_all_blocking: never restarted */
    uint32_t exits;
    uint64_t started_us;
    uint64_t backoff_ms; /* the next restart's delay */
    off_t log_start;     /* the log's size when this run started */
    struct event *restart_ev;
    struct event *kill_ev;
    char last_exit[CHILD_EXIT_MAX];
};

/* The module's state: one base (the loop thread's), its events, every
 * child. Only the loop thread touches it. */
static struct {
    struct event_base *base;
    struct event *sigchld_ev;
    struct event *tick_ev;
    struct ig_child *head;
    unsigned count;
} g;

/* ---- the forked child (async-signal-safe code only) ---------------------- */

static void safe_puts(int fd, const char *s)
{
    size_t n = strlen(s);

    while (n > 0) {
        ssize_t w = write(fd, s, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static const char *safe_errname(int e)
{
    switch (e) {
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case ENOEXEC: return "exec format error";
    case ENOTDIR: return "not a directory";
    case ENOMEM: return "out of memory";
    case E2BIG: return "argument list too long";
    case ETXTBSY: return "text file busy";
    case ELOOP: return "too many symbolic links";
    default: return "error";
    }
}

/* "infergate: cannot <what> <path>: <reason>" on its log, then exit 127
 * (as a shell does when a command cannot be run). */
__attribute__((noreturn)) static void child_fail(const char *what, const char *path, int e)
{
    safe_puts(2, "infergate: cannot ");
    safe_puts(2, what);
    safe_puts(2, " ");
    safe_puts(2, path);
    safe_puts(2, ": ");
    safe_puts(2, safe_errname(e));
    safe_puts(2, "\n");
    _exit(127);
}

static void close_from_3(int max_fd)
{
    if (close_range(3, ~0U, 0) == 0)
        return;
    for (int fd = 3; fd < max_fd; fd++)
        close(fd);
}

__attribute__((noreturn)) static void child_exec(const struct ig_child *c, pid_t parent)
{
    struct sigaction dfl;
    sigset_t none;
    int null_fd;

    setpgid(0, 0);
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* EINVAL for glibc's own: fine */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Die with the gateway; it may have died before this line. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(126);
    null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(c->log_fd, 1) < 0 || dup2(c->log_fd, 2) < 0)
        _exit(126);
    if (chdir(c->model_dir) != 0)
        child_fail("chdir to", c->model_dir, errno);
    close_from_3(c->max_fd);
    execve(c->exe, c->argv, c->envp);
    child_fail("exec", c->exe, errno);
}

/* ---- start ---------------------------------------------------------------- */

static int spawn(struct ig_child *c, char *err, size_t errlen)
{
    sigset_t all, old;
    struct stat st;
    pid_t parent = getpid();
    pid_t pid;
    int e;

    c->log_start = fstat(c->log_fd, &st) == 0 ? st.st_size : 0;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(c, parent);
    e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        ig_errf(err, errlen, "fork: %s", strerror(e));
        return IG_ERR_IO;
    }
    setpgid(pid, pid); /* also in the child: whichever runs first */
    c->pid = pid;
    c->started_us = ig_now_us();
    ig_log(IG_LOG_INFO, "byo %s: started %s serve as pid %d on 127.0.0.1:%u", c->name, c->exe,
           (int)pid, (unsigned)c->port);
    return 0;
}

static int check_exe(const char *exe, char *err, size_t errlen)
{
    struct stat st;

    if (exe == NULL || exe[0] != '/') {
        ig_errf(err, errlen, "%s: not an absolute path", exe ? exe : "(null)");
        return IG_ERR_INVALID;
    }
    if (stat(exe, &st) != 0) {
        ig_errf(err, errlen, "%s: not executable: %s", exe, strerror(errno));
        return IG_ERR_INVALID;
    }
    if (!S_ISREG(st.st_mode)) {
        ig_errf(err, errlen, "%s: not executable: not a regular file", exe);
        return IG_ERR_INVALID;
    }
    if (access(exe, X_OK) != 0) {
        ig_errf(err, errlen, "%s: not executable: %s", exe, strerror(errno));
        return IG_ERR_INVALID;
    }
    return 0;
}

static int check_conf(const struct ig_child_conf *conf, size_t *nenv, char *err, size_t errlen)
{
    struct stat st;
    size_t n = 0;
    int rv;

    if ((rv = check_exe(conf->exe, err, errlen)) != 0)
        return rv;
    if (conf->model_dir == NULL || stat(conf->model_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ig_errf(err, errlen, "model directory %s: not a directory",
                conf->model_dir ? conf->model_dir : "(null)");
        return IG_ERR_INVALID;
    }
    if (conf->log_path == NULL || conf->log_path[0] == '\0') {
        ig_errf(err, errlen, "no log path");
        return IG_ERR_INVALID;
    }
    for (; conf->env != NULL && conf->env[n] != NULL; n++) {
        const char *kv = conf->env[n];
        size_t len = strnlen(kv, IG_CHILD_ENV_ENTRY_MAX + 1);

        if (n >= IG_CHILD_ENV_MAX) {
            ig_errf(err, errlen, "more than %d environment entries", IG_CHILD_ENV_MAX);
            return IG_ERR_INVALID;
        }
        if (len > IG_CHILD_ENV_ENTRY_MAX) {
            ig_errf(err, errlen, "environment entry %zu longer than %d bytes", n,
                    IG_CHILD_ENV_ENTRY_MAX);
            return IG_ERR_INVALID;
        }
        if (kv[0] == '=' || memchr(kv, '=', len) == NULL) {
            ig_errf(err, errlen, "environment entry %zu: not KEY=VALUE", n);
            return IG_ERR_INVALID;
        }
    }
    *nenv = n;
    return 0;
}

static int key_is(const char *kv, const char *key)
{
    size_t n = strlen(key);

    return strncmp(kv, key, n) == 0 && kv[n] == '=';
}

/* The gateway's own variables a model server may need. */
static const char *const inherited[] = {"PATH", "HOME", "LANG", "LC_ALL",
                                        "TZ",   "TMPDIR", "USER", "LOGNAME"};

static void build_env(struct ig_child *c, const struct ig_child_conf *conf, size_t nenv)
{
    size_t cap = IG_ARRAY_SIZE(inherited) + nenv + 3;
    char **envp = ig_xcalloc(cap, sizeof(*envp));
    size_t n = 0;
    char buf[64];

    for (size_t i = 0; i < IG_ARRAY_SIZE(inherited); i++) {
        const char *v = getenv(inherited[i]);
        size_t len;

        if (v == NULL && strcmp(inherited[i], "PATH") == 0)
            v = CHILD_DEFAULT_PATH;
        if (v == NULL)
            continue;
        len = strlen(inherited[i]) + 1 + strlen(v) + 1;
        envp[n] = ig_xmalloc(len);
        snprintf(envp[n++], len, "%s=%s", inherited[i], v);
    }
    /* The model's entries override the inherited ones; ours override all. */
    for (size_t i = 0; i < nenv; i++) {
        const char *kv = conf->env[i];
        size_t klen = (size_t)(strchr(kv, '=') - kv);

        if (key_is(kv, "SAGEMAKER_BIND_TO_PORT") || key_is(kv, "SM_MODEL_DIR") ||
            key_is(kv, "SAGEMAKER_SAFE_PORT_RANGE"))
            continue;
        /* Variables that make the dynamic loader or a shell run other code
         * than the program named: never from an API call. */
        if (strncmp(kv, "LD_", 3) == 0 || strncmp(kv, "BASH_FUNC_", 10) == 0 ||
            key_is(kv, "BASH_ENV") || key_is(kv, "ENV") || key_is(kv, "SHELLOPTS") ||
            key_is(kv, "PS4") || key_is(kv, "GCONV_PATH") || key_is(kv, "PYTHONSTARTUP"))
            continue;
        for (size_t j = 0; j < n; j++) {
            if (strncmp(envp[j], kv, klen + 1) == 0) {
                free(envp[j]);
                envp[j] = envp[--n];
                break;
            }
        }
        envp[n++] = ig_xstrdup(kv);
    }
    snprintf(buf, sizeof(buf), "SAGEMAKER_BIND_TO_PORT=%u", (unsigned)c->port);
    envp[n++] = ig_xstrdup(buf);
    {
        size_t len = strlen("SM_MODEL_DIR=") + strlen(conf->model_dir) + 1;

        envp[n] = ig_xmalloc(len);
        snprintf(envp[n++], len, "SM_MODEL_DIR=%s", conf->model_dir);
    }
    envp[n] = NULL;
    c->envp = envp;
    c->envc = n;
}

static int port_taken(uint16_t port)
{
    for (struct ig_child *c = g.head; c != NULL; c = c->next)
        if (c->port == port)
            return 1;
    return 0;
}

/* A port the kernel calls free on 127.0.0.1 now, and no other child's. */
static int pick_port(uint16_t *port, char *err, size_t errlen)
{
    for (int tries = 0; tries < 8; tries++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok;

        if (fd < 0) {
            ig_errf(err, errlen, "socket: %s", strerror(errno));
            return IG_ERR_IO;
        }
        ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
             getsockname(fd, (struct sockaddr *)&sa, &len) == 0;
        close(fd);
        if (!ok) {
            ig_errf(err, errlen, "no free loopback port: %s", strerror(errno));
            return IG_ERR_IO;
        }
        if (!port_taken(ntohs(sa.sin_port))) {
            *port = ntohs(sa.sin_port);
            return 0;
        }
    }
    ig_errf(err, errlen, "no free loopback port");
    return IG_ERR_IO;
}

/* ---- exits and restarts --------------------------------------------------- */

/* The last line the current run wrote to its log (control characters as
 * spaces, at most IG_CHILD_LOG_LINE_MAX bytes, not cut inside a UTF-8
 * character); 0 when there is none. */
static size_t log_last_line(const struct ig_child *c, char *out)
{
    char buf[CHILD_LOG_TAIL];
    struct stat st;
    off_t from;
    ssize_t n;
    size_t end, start, len;
    int fd = open(c->log_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return 0;
    if (fstat(fd, &st) != 0 || st.st_size <= c->log_start) {
        close(fd);
        return 0;
    }
    from = st.st_size - c->log_start > CHILD_LOG_TAIL ? st.st_size - CHILD_LOG_TAIL : c->log_start;
    n = pread(fd, buf, sizeof(buf), from);
    close(fd);
    if (n <= 0)
        return 0;
    end = (size_t)n;
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r' || buf[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    len = end - start;
    if (len > IG_CHILD_LOG_LINE_MAX) {
        len = IG_CHILD_LOG_LINE_MAX;
        while (len > 0 && ((unsigned char)buf[start + len] & 0xC0) == 0x80)
            len--; /* buf[start + len] continues a character: cut before it */
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[start + i];

        out[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    out[len] = '\0';
    return len;
}

static void describe_exit(struct ig_child *c, int status, int known)
{
    char line[IG_CHILD_LOG_LINE_MAX + 1];
    char what[64];

    if (!known)
        snprintf(what, sizeof(what), "exited (status unknown: reaped elsewhere)");
    else if (WIFEXITED(status))
        snprintf(what, sizeof(what), "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(what, sizeof(what), "killed by signal %d", WTERMSIG(status));
    else
        snprintf(what, sizeof(what), "ended with wait status 0x%x", (unsigned)status);
    if (log_last_line(c, line) > 0)
        snprintf(c->last_exit, sizeof(c->last_exit), "%s; log: %s", what, line);
    else
        snprintf(c->last_exit, sizeof(c->last_exit), "%s", what);
}

static void schedule_restart(struct ig_child *c)
{
    uint64_t delay = c->backoff_ms;
    struct timeval tv = {.tv_sec = (time_t)(delay / 1000),
                         .tv_usec = (suseconds_t)(delay % 1000) * 1000};

    c->backoff_ms = delay * 2 > IG_CHILD_BACKOFF_MAX_MS ? IG_CHILD_BACKOFF_MAX_MS : delay * 2;
    evtimer_add(c->restart_ev, &tv);
    ig_log(IG_LOG_WARN, "byo %s: %s; restarting in %llu ms (exit %u)", c->name, c->last_exit,
           (unsigned long long)delay, (unsigned)c->exits);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct ig_child *c = arg;
    char err[128];

    (void)fd;
    (void)what;
    if (c->released || c->inert || c->pid > 0)
        return;
    if (spawn(c, err, sizeof(err)) != 0) {
        c->exits++;
        snprintf(c->last_exit, sizeof(c->last_exit), "could not restart: %s", err);
        schedule_restart(c);
    }
}

static void child_free(struct ig_child *c)
{
    IG_DLIST_UNLINK(g.head, c);
    g.count--;
    if (c->restart_ev != NULL)
        event_free(c->restart_ev);
    if (c->kill_ev != NULL)
        event_free(c->kill_ev);
    if (c->log_fd >= 0)
        close(c->log_fd);
    for (size_t i = 0; i < c->envc; i++)
        free(c->envp[i]);
    free(c->envp);
    free(c->name);
    free(c->exe);
    free(c->model_dir);
    free(c->log_path);
    free(c);
}

/* The process is gone (reaped): free, stay down, or restart. */
static void on_exited(struct ig_child *c, int status, int known)
{
    uint64_t ran_ms = (ig_now_us() - c->started_us) / 1000;
    pid_t pid = c->pid;

    c->pid = 0;
    if (c->kill_ev != NULL)
        evtimer_del(c->kill_ev);
    if (c->released) {
        ig_log(IG_LOG_INFO, "byo %s: pid %d stopped", c->name, (int)pid);
        child_free(c);
        return;
    }
    c->exits++;
    describe_exit(c, status, known);
    if (c->inert)
        return;
    if (ran_ms >= IG_CHILD_BACKOFF_RESET_MS)
        c->backoff_ms = IG_CHILD_BACKOFF_MIN_MS;
    schedule_restart(c);
}

/* Reap <c> if its process ended; 1 when it did. */
static int reap_one(struct ig_child *c)
{
    siginfo_t si;
    int status = 0;
    pid_t r;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == ECHILD) { /* someone reaped it with waitpid(-1) */
            on_exited(c, 0, 0);
            return 1;
        }
        return 0;
    }
    if (si.si_pid == 0)
        return 0;
    /* The zombie pins the group id: its stragglers can be killed safely. */
    kill(-c->pid, SIGKILL);
    do
        r = waitpid(c->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    on_exited(c, status, r == c->pid);
    return 1;
}

static void reap_pass(void)
{
    struct ig_child *next;

    for (struct ig_child *c = g.head; c != NULL; c = next) {
        next = c->next; /* c may be freed */
        if (c->pid > 0)
            reap_one(c);
    }
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    reap_pass();
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
    struct ig_child *c = arg;

    (void)fd;
    (void)what;
    if (c->pid > 0) {
        ig_log(IG_LOG_WARN, "byo %s: pid %d still running after SIGTERM: SIGKILL", c->name,
               (int)c->pid);
        kill(-c->pid, SIGKILL);
    }
}

static int module_attach(struct event_base *base, char *err, size_t errlen)
{
    struct timeval tick = {.tv_sec = CHILD_TICK_MS / 1000, .tv_usec = 0};

    if (g.base == base)
        return 0;
    if (g.base != NULL) {
        ig_errf(err, errlen, "children already run on another event base");
        return IG_ERR_INVALID;
    }
    g.sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, NULL);
    g.tick_ev = event_new(base, -1, EV_PERSIST, on_sigchld, NULL);
    if (g.sigchld_ev == NULL || g.tick_ev == NULL || evsignal_add(g.sigchld_ev, NULL) != 0 ||
        evtimer_add(g.tick_ev, &tick) != 0) {
        if (g.sigchld_ev != NULL)
            event_free(g.sigchld_ev);
        if (g.tick_ev != NULL)
            event_free(g.tick_ev);
        g.sigchld_ev = g.tick_ev = NULL;
        ig_errf(err, errlen, "cannot add the SIGCHLD event");
        return IG_ERR_IO;
    }
    g.base = base;
    return 0;
}

/* ---- API ------------------------------------------------------------------ */

static char serve_arg[] = "serve";

int ig_child_start(struct event_base *base, const struct ig_child_conf *conf,
                   struct ig_child **out, char *err, size_t errlen)
{
    struct ig_child *c = NULL;
    size_t nenv = 0;
    int rv;

    *out = NULL;
    if (base == NULL || conf == NULL) {
        ig_errf(err, errlen, "no event base or configuration");
        return IG_ERR_INVALID;
    }
    if ((rv = check_conf(conf, &nenv, err, errlen)) != 0)
        return rv;
    if (g.count >= IG_CHILD_MAX) {
        ig_errf(err, errlen, "%d model server processes already run", IG_CHILD_MAX);
        return IG_ERR_FULL;
    }
    if ((rv = module_attach(base, err, errlen)) != 0)
        return rv;

    c = ig_xcalloc(1, sizeof(*c));
    c->log_fd = open(conf->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (c->log_fd < 0) {
        ig_errf(err, errlen, "log %s: %s", conf->log_path, strerror(errno));
        rv = IG_ERR_IO;
        goto cleanup;
    }
    if ((rv = pick_port(&c->port, err, errlen)) != 0)
        goto cleanup;
    c->name = ig_xstrdup(conf->name ? conf->name : conf->exe);
    c->exe = ig_xstrdup(conf->exe);
    c->model_dir = ig_xstrdup(conf->model_dir);
    c->log_path = ig_xstrdup(conf->log_path);
    c->argv[0] = c->exe;
    c->argv[1] = serve_arg;
    c->argv[2] = NULL;
    build_env(c, conf, nenv);
    {
        struct rlimit rl;

        c->max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20)
                        ? (int)rl.rlim_cur
                        : 1 << 20;
    }
    c->backoff_ms = IG_CHILD_BACKOFF_MIN_MS;
    c->restart_ev = evtimer_new(base, on_restart, c);
    c->kill_ev = evtimer_new(base, on_kill, c);
    if (c->restart_ev == NULL || c->kill_ev == NULL) {
        ig_errf(err, errlen, "cannot create timers");
        rv = IG_ERR_IO;
        goto cleanup;
    }
    IG_DLIST_PUSH(g.head, c);
    g.count++;
    if ((rv = spawn(c, err, errlen)) != 0) {
        child_free(c);
        return rv;
    }
    *out = c;
    return 0;

cleanup:
    IG_DLIST_PUSH(g.head, c); /* child_free unlinks */
    g.count++;
    child_free(c);
    return rv;
}

uint16_t ig_child_port(const struct ig_child *c)
{
    return c->port;
}

pid_t ig_child_pid(const struct ig_child *c)
{
    return c->pid > 0 ? c->pid : 0;
}

int ig_child_running(const struct ig_child *c)
{
    return c->pid > 0;
}

unsigned ig_child_stopping(const char *name)
{
    unsigned n = 0;

    for (const struct ig_child *c = g.head; c != NULL; c = c->next)
        if (c->released && c->pid > 0 && strcmp(c->name, name) == 0)
            n++;
    return n;
}

uint32_t ig_child_exits(const struct ig_child *c)
{
    return c->exits;
}

void ig_child_last_exit(const struct ig_child *c, char *buf, size_t len)
{
    if (len > 0)
        snprintf(buf, len, "%s", c->last_exit);
}

void ig_child_stop(struct ig_child *c, uint64_t grace_ms)
{
    struct timeval tv = {.tv_sec = (time_t)(grace_ms / 1000),
                         .tv_usec = (suseconds_t)(grace_ms % 1000) * 1000};

    if (c == NULL)
        return;
    c->released = 1;
    if (c->restart_ev != NULL)
        evtimer_del(c->restart_ev);
    if (c->pid <= 0) {
        child_free(c);
        return;
    }
    if (grace_ms == 0 || c->kill_ev == NULL) {
        kill(-c->pid, SIGKILL);
    } else {
        kill(-c->pid, SIGTERM);
        evtimer_add(c->kill_ev, &tv);
    }
    reap_one(c); /* may free c */
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static unsigned running_count(void)
{
    unsigned n = 0;

    for (struct ig_child *c = g.head; c != NULL; c = c->next)
        n += c->pid > 0;
    return n;
}

/* Reap until none runs or <deadline_us>; the number still running. */
static unsigned reap_until(uint64_t deadline_us)
{
    for (;;) {
        unsigned left;

        reap_pass();
        left = running_count();
        if (left == 0 || ig_now_us() >= deadline_us)
            return left;
        sleep_ms(CHILD_REAP_POLL_MS);
    }
}

void ig_child_reap_all_blocking(uint64_t timeout_ms)
{
    for (struct ig_child *c = g.head; c != NULL; c = c->next) {
        c->inert = 1;
        if (c->restart_ev != NULL)
            evtimer_del(c->restart_ev);
        if (c->pid > 0)
            kill(-c->pid, SIGTERM);
    }
    if (reap_until(ig_now_us() + timeout_ms * 1000) > 0) {
        for (struct ig_child *c = g.head; c != NULL; c = c->next) {
            if (c->pid <= 0)
                continue;
            ig_log(IG_LOG_WARN, "byo %s: pid %d still running at shutdown: SIGKILL", c->name,
                   (int)c->pid);
            kill(-c->pid, SIGKILL);
        }
        /* SIGKILL is not refused, but a process in uninterruptible sleep
         * dies late: do not hang the shutdown on it (once the gateway is
         * gone, init reaps it). */
        if (reap_until(ig_now_us() + CHILD_KILL_WAIT_MS * 1000) > 0)
            ig_log(IG_LOG_ERROR, "byo: %u model server processes not reaped at shutdown",
                   running_count());
    }
    /* Drop every event of the module, so the base can be freed. */
    for (struct ig_child *c = g.head; c != NULL; c = c->next) {
        if (c->restart_ev != NULL)
            event_free(c->restart_ev);
        if (c->kill_ev != NULL)
            event_free(c->kill_ev);
        c->restart_ev = c->kill_ev = NULL;
    }
    if (g.sigchld_ev != NULL)
        event_free(g.sigchld_ev);
    if (g.tick_ev != NULL)
        event_free(g.tick_ev);
    g.sigchld_ev = g.tick_ev = NULL;
    g.base = NULL;
}

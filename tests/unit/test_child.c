/* test_child.c - bring-your-own model servers as supervised children: real
 * processes (tests/byo/serve, small sh scripts), a real event_base, and a
 * blocking HTTP client on loopback. Run from the top of the tree or with
 * IG_SRCDIR set to it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <event2/event.h>

#include "infergate/child.h"
#include "infergate/common.h"

#define ERRLEN 256

static char serve_exe[PATH_MAX];

/* ---- helpers ------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    return ig_now_us() / 1000;
}

/* Run the loop for <ms> (at least that long in real time). */
static void spin(struct event_base *base, long ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    while (now_ms() < end) {
        uint64_t left = end - now_ms();
        struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(left > 20 ? 20 : left) * 1000};
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};

        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        nanosleep(&ts, NULL); /* when the base had nothing to wait for */
    }
}

struct tmp {
    char dir[64];
    char model[96];
    char log[96];
};

static void tmp_make(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/ig-child-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->model, sizeof(t->model), "%s/model", t->dir);
    snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
    assert_int_equal(mkdir(t->model, 0700), 0);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];
    struct stat st;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    size_t n = 0;
    ssize_t r;

    buf[0] = '\0';
    if (fd < 0)
        return 0;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return n;
}

/* One HTTP/1.1 request with Connection: close; the status (-1: no answer)
 * and the body in <body>. */
static int http(uint16_t port, const char *method, const char *path, const char *ctype,
                const char *payload, char *body, size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tmo = {.tv_sec = 2, .tv_usec = 0};
    char req[4096], resp[8192];
    size_t n = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1, len;
    const char *p;

    if (body != NULL && cap > 0)
        body[0] = '\0';
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    len = snprintf(req, sizeof(req),
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
                   method, path, ctype ? ctype : "text/csv", payload ? strlen(payload) : 0,
                   payload ? payload : "");
    if (write(fd, req, (size_t)len) != len)
        goto out;
    while (n + 1 < sizeof(resp) && (r = read(fd, resp + n, sizeof(resp) - 1 - n)) > 0)
        n += (size_t)r;
    resp[n] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    p = strstr(resp, "\r\n\r\n");
    if (p != NULL && body != NULL)
        snprintf(body, cap, "%s", p + 4);
out:
    close(fd);
    return status;
}

/* Run the loop until GET /ping answers 200; 1 then, 0 after <ms>. */
static int wait_ping(struct event_base *base, uint16_t port, long ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    while (now_ms() < end) {
        if (http(port, "GET", "/ping", NULL, NULL, NULL, 0) == 200)
            return 1;
        spin(base, 50);
    }
    return 0;
}

/* 1 while /proc/<pid> exists (a zombie included); its state letter in *state. */
static int proc_exists(pid_t pid, char *state)
{
    char path[64], buf[512];
    const char *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_file(path, buf, sizeof(buf)) == 0)
        return 0;
    p = strrchr(buf, ')');
    if (state != NULL)
        *state = p != NULL && p[1] == ' ' ? p[2] : '?';
    return 1;
}

/* Run the loop until /proc/<pid> is gone (reaped, not a zombie). */
static int wait_gone(struct event_base *base, pid_t pid, long ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    while (now_ms() < end) {
        if (!proc_exists(pid, NULL))
            return 1;
        spin(base, 20);
    }
    return 0;
}

static struct ig_child *start_ok(struct event_base *base, const char *exe, const struct tmp *t,
                                 const char *const *env)
{
    struct ig_child_conf conf = {
        .exe = exe, .env = env, .model_dir = t->model, .log_path = t->log, .name = "ep/AllTraffic"};
    struct ig_child *c = NULL;
    char err[ERRLEN] = "";
    int rv = ig_child_start(base, &conf, &c, err, sizeof(err));

    if (rv != 0)
        fail_msg("ig_child_start(%s): %d %s", exe, rv, err);
    assert_non_null(c);
    return c;
}

static void script(const struct tmp *t, const char *name, const char *body, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", t->dir, name);
    write_file(path, body, 0755);
}

/* ---- tests --------------------------------------------------------------- */

static void test_serve_and_invoke(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_child *c;
    struct tmp t;
    char body[1024], log[8192], path[256];

    (void)state;
    tmp_make(&t);
    snprintf(path, sizeof(path), "%s/scale.txt", t.model);
    write_file(path, "2\n", 0644);
    c = start_ok(base, serve_exe, &t, NULL);
    assert_true(ig_child_port(c) > 0);
    assert_true(ig_child_running(c));
    assert_true(wait_ping(base, ig_child_port(c), 10000));

    assert_int_equal(http(ig_child_port(c), "POST", "/invocations", "text/csv",
                          "1,2,3\n4.5,0.5\n-1,0.25\n", body, sizeof(body)),
                     200);
    assert_string_equal(body, "12.0\n10.0\n-1.5\n");
    assert_int_equal(http(ig_child_port(c), "POST", "/invocations", "text/csv", "1,x\n", body,
                          sizeof(body)),
                     400);
    assert_non_null(strstr(body, "not a number"));
    assert_int_equal(
        http(ig_child_port(c), "GET", "/execution-parameters", NULL, NULL, body, sizeof(body)),
        200);
    assert_string_equal(body, "{\"MaxConcurrentTransforms\": 2, \"BatchStrategy\": "
                              "\"MULTI_RECORD\", \"MaxPayloadInMB\": 6}");
    assert_int_equal(ig_child_exits(c), 0);
    ig_child_last_exit(c, body, sizeof(body));
    assert_string_equal(body, "");

    /* Its stdout and stderr went to the log (created 0600). */
    read_file(t.log, log, sizeof(log));
    assert_non_null(strstr(log, "listening on 127.0.0.1:"));
    assert_non_null(strstr(log, "scale 2.0"));
    {
        struct stat st;

        assert_int_equal(stat(t.log, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    ig_child_stop(c, 2000);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_scale_from_env_and_failing_ping(void **state)
{
    struct event_base *base = event_base_new();
    const char *env[] = {"BYO_SCALE=0.5", NULL};
    const char *env_fail[] = {"BYO_FAIL_PING=1", NULL};
    struct ig_child *c, *bad;
    struct tmp t;
    char body[1024];

    (void)state;
    tmp_make(&t);
    c = start_ok(base, serve_exe, &t, env);
    bad = start_ok(base, serve_exe, &t, env_fail);
    assert_int_not_equal(ig_child_port(c), ig_child_port(bad));
    assert_true(wait_ping(base, ig_child_port(c), 10000));
    assert_int_equal(http(ig_child_port(c), "POST", "/invocations", "text/csv", "1,2\n3\n", body,
                          sizeof(body)),
                     200);
    assert_string_equal(body, "1.5\n1.5\n");
    /* Up, but unhealthy. */
    for (int i = 0; i < 200 && http(ig_child_port(bad), "GET", "/ping", NULL, NULL, NULL, 0) < 0;
         i++)
        spin(base, 50);
    assert_int_equal(http(ig_child_port(bad), "GET", "/ping", NULL, NULL, NULL, 0), 500);
    ig_child_stop(c, 2000);
    ig_child_stop(bad, 2000);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_process_setup(void **state)
{
    struct event_base *base = event_base_new();
    const char *env[] = {"SAGEMAKER_SAFE_PORT_RANGE=1-2", "SM_MODEL_DIR=/elsewhere",
                         "SAGEMAKER_PROGRAM=inference.py", "MY_VAR=a=b", NULL};
    char path[128], buf[16384], link[PATH_MAX], pipe_name[64], want[256];
    struct ig_child *c;
    struct tmp t;
    int leak[2];
    pid_t pid;
    ssize_t n;
    size_t len;
    DIR *d;
    struct dirent *e;

    (void)state;
    tmp_make(&t);
    /* A descriptor without O_CLOEXEC, and a secret, must not reach it. */
    assert_int_equal(pipe(leak), 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", leak[0]);
    n = readlink(path, pipe_name, sizeof(pipe_name) - 1);
    assert_true(n > 0);
    pipe_name[n] = '\0';
    setenv("AWS_SECRET_ACCESS_KEY", "do-not-pass", 1);

    c = start_ok(base, serve_exe, &t, env);
    assert_true(wait_ping(base, ig_child_port(c), 10000));
    pid = ig_child_pid(c);
    assert_true(pid > 0);

    /* Its own process group. */
    assert_int_equal(getpgid(pid), pid);
    /* cwd: the model; stdin: /dev/null; no inherited descriptor. */
    snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
    n = readlink(path, link, sizeof(link) - 1);
    assert_true(n > 0);
    link[n] = '\0';
    assert_string_equal(link, t.model);
    snprintf(path, sizeof(path), "/proc/%d/fd/0", (int)pid);
    n = readlink(path, link, sizeof(link) - 1);
    assert_true(n > 0);
    link[n] = '\0';
    assert_string_equal(link, "/dev/null");
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char fdpath[PATH_MAX];

        if (e->d_name[0] == '.')
            continue;
        snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%s", (int)pid, e->d_name);
        n = readlink(fdpath, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strcmp(link, pipe_name) == 0)
            fail_msg("fd %s of the child is the test's pipe %s", e->d_name, pipe_name);
    }
    closedir(d);

    /* Environment: ours override the model's; no port range; no secret. */
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    len = read_file(path, buf, sizeof(buf));
    assert_true(len > 0);
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            buf[i] = '\n';
    snprintf(want, sizeof(want), "\nSAGEMAKER_BIND_TO_PORT=%u\n", (unsigned)ig_child_port(c));
    assert_non_null(strstr(buf, want));
    snprintf(want, sizeof(want), "\nSM_MODEL_DIR=%s\n", t.model);
    assert_non_null(strstr(buf, want));
    assert_null(strstr(buf, "/elsewhere"));
    assert_null(strstr(buf, "SAGEMAKER_SAFE_PORT_RANGE"));
    assert_null(strstr(buf, "AWS_SECRET_ACCESS_KEY"));
    assert_non_null(strstr(buf, "\nSAGEMAKER_PROGRAM=inference.py\n"));
    assert_non_null(strstr(buf, "\nMY_VAR=a=b\n"));
    assert_non_null(strstr(buf, "PATH="));
    /* argv: exe serve */
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    len = read_file(path, buf, sizeof(buf));
    assert_true(len > 0 && memmem(buf, len, "serve\0", 6) != NULL);

    unsetenv("AWS_SECRET_ACCESS_KEY");
    close(leak[0]);
    close(leak[1]);
    ig_child_stop(c, 2000);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_kill9_restarts_on_same_port(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_child *c;
    struct tmp t;
    char body[512];
    uint16_t port;
    pid_t pid1, pid2;
    uint64_t killed_at, end;

    (void)state;
    tmp_make(&t);
    c = start_ok(base, serve_exe, &t, NULL);
    port = ig_child_port(c);
    assert_true(wait_ping(base, port, 10000));
    pid1 = ig_child_pid(c);
    assert_int_equal(kill(pid1, SIGKILL), 0);
    killed_at = now_ms();
    /* Reaped (no zombie) and started again, after the first backoff step. */
    end = now_ms() + 10000;
    while (now_ms() < end && (ig_child_exits(c) < 1 || !ig_child_running(c)))
        spin(base, 10);
    assert_int_equal(ig_child_exits(c), 1);
    assert_true(ig_child_running(c));
    assert_true(now_ms() - killed_at >= IG_CHILD_BACKOFF_MIN_MS - 10);
    pid2 = ig_child_pid(c);
    assert_int_not_equal(pid1, pid2);
    assert_false(proc_exists(pid1, NULL));
    assert_int_equal(ig_child_port(c), port);
    ig_child_last_exit(c, body, sizeof(body));
    assert_true(strncmp(body, "killed by signal 9", 18) == 0);
    assert_true(wait_ping(base, port, 10000));
    assert_int_equal(http(port, "POST", "/invocations", "text/csv", "2,2\n", body, sizeof(body)),
                     200);
    assert_string_equal(body, "4.0\n");
    assert_int_equal(ig_child_exits(c), 1);
    ig_child_stop(c, 2000);
    assert_true(wait_gone(base, pid2, 5000));
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_exit_at_start_backs_off(void **state)
{
    struct event_base *base = event_base_new();
    const char *env[] = {"BYO_EXIT_AT_START=3", NULL};
    struct ig_child *c;
    struct tmp t;
    char msg[512], exe[256];
    uint64_t at[5] = {0}, end;
    uint32_t seen = 0;

    (void)state;
    tmp_make(&t);
    /* serve with BYO_EXIT_AT_START=3: the reason, with its last log line. */
    c = start_ok(base, serve_exe, &t, env);
    end = now_ms() + 10000;
    while (now_ms() < end && ig_child_exits(c) < 1)
        spin(base, 5);
    assert_int_equal(ig_child_exits(c), 1);
    assert_false(ig_child_running(c));
    ig_child_last_exit(c, msg, sizeof(msg));
    assert_true(strncmp(msg, "exited with status 3", 20) == 0);
    assert_string_equal(msg, "exited with status 3; log: BYO_EXIT_AT_START=3: exiting at start");
    /* Stopped while waiting for the next try: freed at once. */
    ig_child_stop(c, 2000);

    /* The delays, with a program that starts and exits in a few ms:
     * 200, 400, 800 ms between the exits. */
    script(&t, "exit3", "#!/bin/sh\nexit 3\n", exe, sizeof(exe));
    c = start_ok(base, exe, &t, NULL);
    end = now_ms() + 15000;
    while (now_ms() < end && seen < 4) {
        spin(base, 2);
        if (ig_child_exits(c) > seen) {
            seen = ig_child_exits(c);
            at[seen < 5 ? seen : 4] = now_ms();
        }
    }
    assert_int_equal(seen, 4);
    print_message("      gaps between exits: %llu %llu %llu ms\n",
                  (unsigned long long)(at[2] - at[1]), (unsigned long long)(at[3] - at[2]),
                  (unsigned long long)(at[4] - at[3]));
    /* (an exit seen late shortens the next gap a little) */
    assert_true(at[2] - at[1] >= 200 - 40);
    assert_true(at[3] - at[2] >= 400 - 40);
    assert_true(at[4] - at[3] >= 800 - 40);
    assert_true(at[4] - at[3] < 4000);
    ig_child_last_exit(c, msg, sizeof(msg));
    assert_string_equal(msg, "exited with status 3");
    ig_child_stop(c, 2000);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_last_exit_caps_the_log_line(void **state)
{
    struct event_base *base = event_base_new();
    char exe[256], msg[1024], text[1024];
    struct ig_child *c;
    struct tmp t;
    uint64_t end;
    size_t n;

    (void)state;
    tmp_make(&t);
    /* A 300-byte last line, with a tab in it; exits with 5. */
    n = (size_t)snprintf(text, sizeof(text), "#!/bin/sh\necho first line\nprintf 'x\\ty");
    for (int i = 0; i < 300; i++)
        text[n++] = 'z';
    snprintf(text + n, sizeof(text) - n, "\\n\\n' >&2\nexit 5\n");
    script(&t, "long", text, exe, sizeof(exe));
    c = start_ok(base, exe, &t, NULL);
    end = now_ms() + 10000;
    while (now_ms() < end && ig_child_exits(c) < 1)
        spin(base, 10);
    assert_int_equal(ig_child_exits(c), 1);
    ig_child_last_exit(c, msg, sizeof(msg));
    assert_true(strncmp(msg, "exited with status 5; log: x y", 30) == 0);
    assert_int_equal(strlen(msg), strlen("exited with status 5; log: ") + IG_CHILD_LOG_LINE_MAX);
    ig_child_last_exit(c, msg, 8);
    assert_string_equal(msg, "exited ");
    ig_child_stop(c, 0);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

/* A program the kernel cannot run (its interpreter is missing): the exec
 * fails in the child, which is an exit like any other, with the reason. */
static void test_exec_failure_is_an_exit(void **state)
{
    struct event_base *base = event_base_new();
    char exe[256], msg[512], want[512];
    struct ig_child *c;
    struct tmp t;
    uint64_t end;

    (void)state;
    tmp_make(&t);
    script(&t, "badinterp", "#!/nonexistent/interpreter\n", exe, sizeof(exe));
    c = start_ok(base, exe, &t, NULL);
    end = now_ms() + 5000;
    while (now_ms() < end && ig_child_exits(c) < 1)
        spin(base, 5);
    assert_int_equal(ig_child_exits(c), 1);
    ig_child_last_exit(c, msg, sizeof(msg));
    snprintf(want, sizeof(want),
             "exited with status 127; log: infergate: cannot exec %s: no such file or directory",
             exe);
    assert_string_equal(msg, want);
    ig_child_stop(c, 0);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_stop_leaves_no_zombie(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_child *c;
    struct tmp t;
    pid_t pid;
    uint64_t t0;
    char st = 0;

    (void)state;
    tmp_make(&t);
    c = start_ok(base, serve_exe, &t, NULL);
    assert_true(wait_ping(base, ig_child_port(c), 10000));
    pid = ig_child_pid(c);
    t0 = now_ms();
    ig_child_stop(c, 5000);
    /* serve exits 0 on SIGTERM at once: well before the grace. */
    assert_true(wait_gone(base, pid, 4000));
    assert_true(now_ms() - t0 < 3000);
    assert_false(proc_exists(pid, &st));
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_stop_kills_group_after_grace(void **state)
{
    struct event_base *base = event_base_new();
    char exe[256], pidfile[256], buf[64];
    struct ig_child *c;
    struct tmp t;
    pid_t pid, bg = 0;
    uint64_t end, t0;

    (void)state;
    tmp_make(&t);
    /* Ignores SIGTERM (its children inherit that) and has a child. */
    snprintf(pidfile, sizeof(pidfile), "%s/bg.pid", t.dir);
    {
        char text[512];

        snprintf(text, sizeof(text),
                 "#!/bin/sh\ntrap '' TERM\nsleep 60 &\necho $! > %s\n"
                 "while :; do sleep 0.05; done\n",
                 pidfile);
        script(&t, "stubborn", text, exe, sizeof(exe));
    }
    c = start_ok(base, exe, &t, NULL);
    pid = ig_child_pid(c);
    end = now_ms() + 5000;
    while (now_ms() < end && bg == 0) {
        spin(base, 20);
        if (read_file(pidfile, buf, sizeof(buf)) > 0 && strchr(buf, '\n') != NULL)
            bg = (pid_t)atoi(buf);
    }
    assert_true(bg > 0);
    assert_int_equal(getpgid(bg), pid);
    t0 = now_ms();
    ig_child_stop(c, 400);
    spin(base, 200);
    assert_true(proc_exists(pid, NULL)); /* SIGTERM ignored */
    assert_true(wait_gone(base, pid, 5000));
    assert_true(now_ms() - t0 >= 390);
    /* The whole group got SIGKILL: the grandchild too (gone or, reparented,
     * a zombie of whoever adopted it). */
    end = now_ms() + 3000;
    for (char s = 'R'; now_ms() < end && proc_exists(bg, &s) && s != 'Z';)
        spin(base, 20);
    {
        char s = 0;

        assert_true(!proc_exists(bg, &s) || s == 'Z');
    }
    ig_child_reap_all_blocking(3000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_not_executable(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_child_conf conf = {.model_dir = NULL, .log_path = NULL, .name = "ep/v"};
    struct ig_child *c = (struct ig_child *)1;
    char err[ERRLEN], exe[256];
    struct tmp t;

    (void)state;
    tmp_make(&t);
    conf.model_dir = t.model;
    conf.log_path = t.log;
    snprintf(exe, sizeof(exe), "%s/plain", t.dir);
    write_file(exe, "#!/bin/sh\nexit 0\n", 0644);
    conf.exe = exe;
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    assert_null(c);
    assert_non_null(strstr(err, "not executable"));
    assert_non_null(strstr(err, exe));

    snprintf(exe, sizeof(exe), "%s/missing", t.dir);
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    assert_non_null(strstr(err, "not executable"));
    conf.exe = t.model; /* a directory */
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    assert_non_null(strstr(err, "not executable"));
    conf.exe = "tests/byo/serve"; /* relative */
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    conf.exe = serve_exe;
    conf.model_dir = "/nonexistent/model";
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    assert_non_null(strstr(err, "not a directory"));
    /* No log file was created by the refusals. */
    assert_int_equal(access(t.log, F_OK), -1);
    ig_child_reap_all_blocking(1000);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_env_caps(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_child_conf conf = {.exe = serve_exe, .name = "ep/v"};
    const char *env[IG_CHILD_ENV_MAX + 2];
    char *big = ig_xmalloc(IG_CHILD_ENV_ENTRY_MAX + 2);
    struct ig_child *c;
    char err[ERRLEN];
    struct tmp t;

    (void)state;
    tmp_make(&t);
    conf.model_dir = t.model;
    conf.log_path = t.log;
    conf.env = env;
    for (int i = 0; i <= IG_CHILD_ENV_MAX; i++)
        env[i] = "K=v";
    env[IG_CHILD_ENV_MAX + 1] = NULL;
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    assert_non_null(strstr(err, "more than 100"));

    memset(big, 'a', IG_CHILD_ENV_ENTRY_MAX + 1);
    big[0] = 'K';
    big[1] = '=';
    big[IG_CHILD_ENV_ENTRY_MAX + 1] = '\0';
    env[0] = big;
    env[1] = NULL;
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    assert_non_null(strstr(err, "longer than"));
    big[IG_CHILD_ENV_ENTRY_MAX] = '\0'; /* exactly at the cap: fine */
    env[0] = "NOEQUALS";
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    env[0] = "=v";
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), IG_ERR_INVALID);
    env[0] = big;
    assert_int_equal(ig_child_start(base, &conf, &c, err, sizeof(err)), 0);
    ig_child_stop(c, 0);
    ig_child_reap_all_blocking(3000);
    free(big);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_at_most_64(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_child_conf conf = {.name = "ep/v"};
    struct ig_child *cs[IG_CHILD_MAX], *extra = NULL;
    char exe[256], err[ERRLEN];
    struct tmp t;

    (void)state;
    tmp_make(&t);
    /* Ignores SIGTERM (sleep inherits that): a stop waits for its grace. */
    script(&t, "idle", "#!/bin/sh\ntrap '' TERM\nexec sleep 30\n", exe, sizeof(exe));
    conf.exe = exe;
    conf.model_dir = t.model;
    conf.log_path = t.log;
    for (int i = 0; i < IG_CHILD_MAX; i++)
        assert_int_equal(ig_child_start(base, &conf, &cs[i], err, sizeof(err)), 0);
    assert_int_equal(ig_child_start(base, &conf, &extra, err, sizeof(err)), IG_ERR_FULL);
    assert_null(extra);
    /* Stopped but not yet reaped still counts. */
    ig_child_stop(cs[0], 200);
    assert_int_equal(ig_child_start(base, &conf, &extra, err, sizeof(err)), IG_ERR_FULL);
    spin(base, 700);
    assert_int_equal(ig_child_start(base, &conf, &extra, err, sizeof(err)), 0);
    cs[0] = extra;
    for (int i = 0; i < IG_CHILD_MAX; i++)
        ig_child_stop(cs[i], 0);
    ig_child_reap_all_blocking(5000);
    event_base_free(base);
    rm_tree(t.dir);
}

static int foreign_sigchld;

static void on_foreign_sigchld(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    foreign_sigchld++;
}

/* Another module's child and its own SIGCHLD event on the same base: the
 * child is never reaped here, and both events fire. */
static void test_foreign_child_untouched(void **state)
{
    struct event_base *base = event_base_new();
    struct event *ev = evsignal_new(base, SIGCHLD, on_foreign_sigchld, NULL);
    struct ig_child *c;
    struct tmp t;
    int status = 0;
    pid_t other, pid1;
    uint64_t end, t0;

    (void)state;
    tmp_make(&t);
    assert_int_equal(evsignal_add(ev, NULL), 0);
    c = start_ok(base, serve_exe, &t, NULL);
    other = fork();
    assert_true(other >= 0);
    if (other == 0)
        _exit(7);
    assert_true(wait_ping(base, ig_child_port(c), 10000));
    pid1 = ig_child_pid(c);
    t0 = now_ms();
    kill(pid1, SIGKILL);
    end = now_ms() + 10000;
    while (now_ms() < end && ig_child_exits(c) < 1)
        spin(base, 2);
    assert_int_equal(ig_child_exits(c), 1);
    /* Seen through SIGCHLD, not the 1 s safety net (which could coincide,
     * rarely). */
    print_message("      exit seen after %llu ms\n", (unsigned long long)(now_ms() - t0));
    assert_true(now_ms() - t0 < 500);
    spin(base, 1200); /* a safety-net tick passes too */
    assert_true(foreign_sigchld >= 1);
    /* The other child is still there for its owner to reap. */
    assert_int_equal(waitpid(other, &status, WNOHANG), other);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    ig_child_stop(c, 2000);
    ig_child_reap_all_blocking(3000);
    event_free(ev);
    event_base_free(base);
    rm_tree(t.dir);
}

static void test_reap_all_blocking(void **state)
{
    struct event_base *base = event_base_new();
    char exe[256];
    struct ig_child *live, *stopping, *stubborn;
    struct tmp t;
    pid_t p1, p2, p3;
    uint64_t t0;

    (void)state;
    tmp_make(&t);
    script(&t, "stubborn", "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n", exe,
           sizeof(exe));
    live = start_ok(base, serve_exe, &t, NULL);
    stopping = start_ok(base, serve_exe, &t, NULL);
    stubborn = start_ok(base, exe, &t, NULL);
    assert_true(wait_ping(base, ig_child_port(live), 10000));
    assert_true(wait_ping(base, ig_child_port(stopping), 10000));
    p1 = ig_child_pid(live);
    p2 = ig_child_pid(stopping);
    p3 = ig_child_pid(stubborn);
    ig_child_stop(stopping, 60000);
    t0 = now_ms();
    ig_child_reap_all_blocking(500);
    assert_true(now_ms() - t0 >= 490); /* the stubborn one held it to the timeout */
    assert_true(now_ms() - t0 < 3000);
    assert_false(proc_exists(p1, NULL));
    assert_false(proc_exists(p2, NULL));
    assert_false(proc_exists(p3, NULL));
    /* The handles not stopped are inert: no process, no restart. */
    assert_false(ig_child_running(live));
    assert_false(ig_child_running(stubborn));
    event_base_free(base); /* nothing of the module left on it */
    ig_child_stop(live, 1000);
    ig_child_stop(stubborn, 1000);
    rm_tree(t.dir);
}

/* The gateway dies without stopping its children: PR_SET_PDEATHSIG ends
 * them. A "gateway" process starts a child and exits at once. */
static void test_dies_with_gateway(void **state)
{
    char exe[256], buf[32];
    struct tmp t;
    int fds[2], status;
    pid_t gw, pid = 0;
    uint64_t end;
    char s = 0;

    (void)state;
    tmp_make(&t);
    script(&t, "idle", "#!/bin/sh\nexec sleep 30\n", exe, sizeof(exe));
    assert_int_equal(pipe(fds), 0);
    gw = fork();
    assert_true(gw >= 0);
    if (gw == 0) {
        struct event_base *base = event_base_new();
        struct ig_child_conf conf = {
            .exe = exe, .model_dir = t.model, .log_path = t.log, .name = "ep/v"};
        struct ig_child *c;
        char err[ERRLEN];
        int n = 0;

        close(fds[0]);
        if (ig_child_start(base, &conf, &c, err, sizeof(err)) == 0) {
            char path[64], cmd[256];
            uint64_t until = now_ms() + 5000;

            /* Exit only once it runs sleep (past its own parent check). */
            snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)ig_child_pid(c));
            while (now_ms() < until && (read_file(path, cmd, sizeof(cmd)) == 0 ||
                                        strcmp(cmd, "sleep") != 0)) {
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};

                nanosleep(&ts, NULL);
            }
            n = snprintf(buf, sizeof(buf), "%d\n", (int)ig_child_pid(c));
        }
        if (write(fds[1], buf, (size_t)n) != n)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    assert_true(read(fds[0], buf, sizeof(buf) - 1) > 0);
    close(fds[0]);
    pid = (pid_t)atoi(buf);
    assert_true(pid > 0);
    assert_int_equal(waitpid(gw, &status, 0), gw);
    end = now_ms() + 5000;
    while (now_ms() < end && proc_exists(pid, &s) && s != 'Z') {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000000};

        nanosleep(&ts, NULL);
    }
    assert_true(!proc_exists(pid, &s) || s == 'Z');
    rm_tree(t.dir);
}

/* After a failed test: no process and no event of the module left over
 * for the next one. */
static int teardown(void **state)
{
    (void)state;
    ig_child_reap_all_blocking(2000);
    return 0;
}

int main(void)
{
    const char *root = getenv("IG_SRCDIR");
    char rel[PATH_MAX];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_serve_and_invoke, teardown),
        cmocka_unit_test_teardown(test_scale_from_env_and_failing_ping, teardown),
        cmocka_unit_test_teardown(test_process_setup, teardown),
        cmocka_unit_test_teardown(test_kill9_restarts_on_same_port, teardown),
        cmocka_unit_test_teardown(test_exit_at_start_backs_off, teardown),
        cmocka_unit_test_teardown(test_last_exit_caps_the_log_line, teardown),
        cmocka_unit_test_teardown(test_exec_failure_is_an_exit, teardown),
        cmocka_unit_test_teardown(test_stop_leaves_no_zombie, teardown),
        cmocka_unit_test_teardown(test_stop_kills_group_after_grace, teardown),
        cmocka_unit_test_teardown(test_not_executable, teardown),
        cmocka_unit_test_teardown(test_env_caps, teardown),
        cmocka_unit_test_teardown(test_at_most_64, teardown),
        cmocka_unit_test_teardown(test_foreign_child_untouched, teardown),
        cmocka_unit_test_teardown(test_reap_all_blocking, teardown),
        cmocka_unit_test_teardown(test_dies_with_gateway, teardown),
    };

    ig_log_min_level = getenv("IGDEBUG") ? IG_LOG_DEBUG : IG_LOG_ERROR;
    signal(SIGPIPE, SIG_IGN);
    snprintf(rel, sizeof(rel), "%s/tests/byo/serve", root ? root : ".");
    if (realpath(rel, serve_exe) == NULL) {
        fprintf(stderr, "test_child: %s not found (run from the top of the tree or set "
                        "IG_SRCDIR)\n", rel);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}

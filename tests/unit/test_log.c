/* test_log.c - JSON lines on stderr, the level filter, escaping, and the
 * bounded ring: a stalled stderr drops lines instead of blocking. */
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "infergate/common.h"

static int saved_stderr = -1;

/* Point stderr at a new pipe; returns its read end. */
static int capture(void)
{
    int p[2];

    assert_int_equal(pipe(p), 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    close(p[1]);
    return p[0];
}

static void restore(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
}

static size_t drain(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;

    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

static void test_lines_and_levels(void **state)
{
    static char out[8192];
    regex_t re;
    int fd = capture();

    (void)state;
    ig_log_min_level = IG_LOG_INFO;
    assert_int_equal(ig_log_start(), 0);
    ig_log(IG_LOG_DEBUG, "hidden %d", 1);
    ig_log(IG_LOG_INFO, "endpoint %s: %d rows", "demo", 3);
    ig_log(IG_LOG_ERROR, "quote \" backslash \\ newline \n tab \t");
    ig_log_flush();
    ig_log_stop();
    restore();
    drain(fd, out, sizeof(out));
    close(fd);
    assert_int_equal(regcomp(&re,
                             "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                             "\\.[0-9]{3}Z\",\"level\":\"info\",\"msg\":\"endpoint demo: 3 rows\"\\}\n"
                             "\\{\"ts\":\"[^\"]+\",\"level\":\"error\",\"msg\":\"quote \\\\\" "
                             "backslash \\\\\\\\ newline \\\\u000a tab \\\\u0009\"\\}\n$",
                             REG_EXTENDED),
                     0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("unexpected log output:\n%s", out);
    regfree(&re);
}

struct reader {
    int fd;
    size_t bytes;
    size_t lines;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char buf[65536];
    ssize_t n;

    while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
        r->bytes += (size_t)n;
        for (ssize_t i = 0; i < n; i++)
            r->lines += buf[i] == '\n';
    }
    return NULL;
}

static void test_full_ring_drops_instead_of_blocking(void **state)
{
    char msg[1000];
    int fd = capture();
    uint64_t before = ig_log_dropped(), dropped;
    struct reader rd = {.fd = fd};
    pthread_t t;
    size_t lines = 0;

    (void)state;
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    /* Nobody reads the pipe yet: the writer blocks once the pipe (64 KiB)
     * is full, then the 256 KiB ring fills; the caller must never block. */
    assert_int_equal(ig_log_start(), 0);
    while (ig_log_dropped() == before && lines < 100000) {
        ig_log(IG_LOG_ERROR, "%s", msg);
        lines++;
    }
    dropped = ig_log_dropped() - before;
    assert_int_equal(dropped, 1);
    assert_true(lines < 1000); /* ~320 KiB of lines, not 100 MB */
    /* Now read: stop writes everything queued; every line not dropped
     * arrives whole. */
    assert_int_equal(pthread_create(&t, NULL, reader_main, &rd), 0);
    ig_log_stop();
    restore(); /* closes the last write end: the reader sees EOF */
    pthread_join(t, NULL);
    close(fd);
    assert_int_equal(rd.lines, lines - dropped);
    assert_int_equal(rd.bytes % rd.lines, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_levels),
        cmocka_unit_test(test_full_ring_drops_instead_of_blocking),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

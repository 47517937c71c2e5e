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

/* The access line with its timestamp replaced by "T", for exact comparison. */
static const char *access_line(const struct ig_access_rec *rec, int level)
{
    static char raw[IG_LOG_ACCESS_MAX], out[IG_LOG_ACCESS_MAX];
    size_t n = ig_log_access_format(raw, sizeof(raw), rec, level);
    const char *p = strstr(raw, "Z\",");

    assert_true(n > 0);
    assert_int_equal(n, strlen(raw));
    assert_memory_equal(raw, "{\"ts\":\"", 7);
    assert_non_null(p);
    assert_int_equal(p - raw, 7 + 23); /* 2026-11-30T14:00:00.123 */
    snprintf(out, sizeof(out), "{\"ts\":\"T%s", p);
    return out;
}

static void test_access_line_exact(void **state)
{
    struct ig_access_rec rec = {
        .request_id = "6f1c0f4e-0000-4000-8000-000000000001",
        .endpoint = "demo",
        .proto = "HTTP/2",
        .status = 200,
        .rows = 3,
        .bytes_in = 45,
        .bytes_out = 37,
        .batch_first = 12,
        .batch_last = 13,
        .queue_us = 800,
        .upstream_us = 1200,
        .total_us = 18446744073709551615ull,
    };

    (void)state;
    assert_string_equal(access_line(&rec, IG_LOG_INFO),
                        "{\"ts\":\"TZ\",\"level\":\"info\",\"msg\":\"access\",\"request_id\":"
                        "\"6f1c0f4e-0000-4000-8000-000000000001\",\"endpoint\":\"demo\",\"proto\":"
                        "\"HTTP/2\",\"status\":200,\"error_type\":null,\"rows\":3,\"bytes_in\":45,"
                        "\"bytes_out\":37,\"batch_first\":12,\"batch_last\":13,\"queue_us\":800,"
                        "\"upstream_us\":1200,\"total_us\":18446744073709551615}\n");
    memset(&rec, 0, sizeof(rec));
    rec.proto = "HTTP/1.1";
    rec.status = 400;
    rec.error_type = "ThrottlingException";
    assert_string_equal(access_line(&rec, IG_LOG_WARN),
                        "{\"ts\":\"TZ\",\"level\":\"warn\",\"msg\":\"access\",\"request_id\":null,"
                        "\"endpoint\":null,\"proto\":\"HTTP/1.1\",\"status\":400,\"error_type\":"
                        "\"ThrottlingException\",\"rows\":0,\"bytes_in\":0,\"bytes_out\":0,"
                        "\"batch_first\":null,\"batch_last\":null,\"queue_us\":0,\"upstream_us\":0,"
                        "\"total_us\":0}\n");
}

/* A client picks the endpoint name (the URL path): quotes, control bytes,
 * invalid UTF-8 and sheer length must neither break the JSON nor the line. */
static void test_access_escapes_hostile_strings(void **state)
{
    static char big[100000];
    struct ig_access_rec rec = {.proto = "HTTP/1.1", .status = 400, .error_type = "ValidationError"};
    const char *line;

    (void)state;
    rec.endpoint = "a\"b\\c\nd\x01\xff\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc0\xaf\xed\xa0\x80z";
    line = access_line(&rec, IG_LOG_WARN);
    assert_non_null(strstr(line, "\"endpoint\":\"a\\\"b\\\\c\\u000ad\\u0001\\ufffd\xc3\xa9"
                                 "\xe2\x82\xac\xf0\x9f\x98\x80\\ufffd\\ufffd\\ufffd\\ufffd\\ufffdz\","));
    /* a cut UTF-8 sequence at the end */
    rec.endpoint = "ok\xe2\x82";
    assert_non_null(strstr(access_line(&rec, IG_LOG_WARN), "\"endpoint\":\"ok\\ufffd\\ufffd\","));
    /* 100 kB of quotes: cut, escaped whole, one line, below the cap */
    memset(big, '"', sizeof(big) - 1);
    rec.endpoint = big;
    line = access_line(&rec, IG_LOG_WARN);
    assert_true(strlen(line) < IG_LOG_ACCESS_MAX);
    assert_non_null(strstr(line, "\\\"\",\"proto\":\"HTTP/1.1\",\"status\":400,"));
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
    /* a buffer below the documented size gets nothing, never half a line */
    {
        char small[64];

        assert_int_equal(ig_log_access_format(small, sizeof(small), &rec, IG_LOG_WARN), 0);
        assert_string_equal(small, "");
    }
}

/* Which access lines are written, against access_log and log_level. */
static void test_access_levels(void **state)
{
    static char out[8192];
    struct ig_access_rec ok = {.endpoint = "ok1", .proto = "HTTP/2", .status = 200};
    struct ig_access_rec bad = {.endpoint = "bad1", .proto = "HTTP/2", .status = 424,
                                .error_type = "ModelError"};
    int fd = capture();

    (void)state;
    ig_log_min_level = IG_LOG_INFO;
    ig_log_access_on = 0;
    ig_log_access(&ok);               /* off: no success line */
    ig_log_access(&bad);              /* errors at warn whatever access_log says */
    ig_log_min_level = IG_LOG_ERROR;
    bad.endpoint = "bad2";
    ig_log_access(&bad);              /* ... but log_level still filters them */
    ig_log_access_on = 1;
    ok.endpoint = "ok2";
    ig_log_access(&ok);               /* on: written whatever log_level says */
    bad.endpoint = "bad3";
    ig_log_access(&bad);
    ig_log_access_on = 0;
    ig_log_min_level = IG_LOG_INFO;
    restore();
    drain(fd, out, sizeof(out));
    close(fd);
    assert_null(strstr(out, "\"ok1\""));
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"access\",\"request_id\":null,"
                                "\"endpoint\":\"bad1\""));
    assert_null(strstr(out, "\"bad2\""));
    assert_non_null(strstr(out, "\"level\":\"info\",\"msg\":\"access\",\"request_id\":null,"
                                "\"endpoint\":\"ok2\""));
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"access\",\"request_id\":null,"
                                "\"endpoint\":\"bad3\""));
}

/* The general logger escapes invalid UTF-8 too (messages quote client bytes). */
static void test_msg_invalid_utf8(void **state)
{
    static char out[4096];
    int fd = capture();

    (void)state;
    ig_log_min_level = IG_LOG_INFO;
    ig_log(IG_LOG_WARN, "bad \xff\xfe end \xc3\xa9");
    restore();
    drain(fd, out, sizeof(out));
    close(fd);
    assert_non_null(strstr(out, "\"msg\":\"bad \\ufffd\\ufffd end \xc3\xa9\"}\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_levels),
        cmocka_unit_test(test_full_ring_drops_instead_of_blocking),
        cmocka_unit_test(test_access_line_exact),
        cmocka_unit_test(test_access_escapes_hostile_strings),
        cmocka_unit_test(test_access_levels),
        cmocka_unit_test(test_msg_invalid_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

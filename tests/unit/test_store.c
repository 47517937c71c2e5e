/* test_store.c - the Redis job store against a real redis-server
 * (/usr/bin/redis-server): embedded mode (round trip, pub/sub, child killed
 * and restarted with its data), a redis:// URL that starts down, freeing
 * with commands pending (also from inside a callback), URL checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "infergate/common.h"
#include "infergate/store.h"

#define REDIS "/usr/bin/redis-server"
#define CHANNEL "infergate:test-events"

struct ctx {
    int ups, downs;
    int events;
    char last_event[128];
    /* replies */
    int replies, nulls;
    char last_str[128];
    long long last_int;
    int last_type;
    struct ig_store *free_me; /* freed from inside the next reply callback */
    int free_on_down;         /* ig_store_free from inside on_state(0) */
};

static struct event_base *base;
static char dir[64];

static void on_state(struct ig_store *s, int up, void *arg)
{
    struct ctx *c = arg;
    (void)s;
    if (up)
        c->ups++;
    else
        c->downs++;
    if (!up && c->free_on_down)
        ig_store_free(s);
}

static void on_event(struct ig_store *s, const char *msg, size_t len, void *arg)
{
    struct ctx *c = arg;
    (void)s;
    c->events++;
    snprintf(c->last_event, sizeof(c->last_event), "%.*s", (int)len, msg);
}

static void on_reply(struct ig_store *s, struct redisReply *r, void *arg)
{
    struct ctx *c = arg;
    c->replies++;
    if (r == NULL) {
        c->nulls++;
    } else {
        c->last_type = r->type;
        c->last_int = r->integer;
        if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
            r->type == REDIS_REPLY_ERROR)
            snprintf(c->last_str, sizeof(c->last_str), "%.*s", (int)r->len, r->str);
        else
            c->last_str[0] = '\0';
    }
    if (c->free_me != NULL && c->free_me == s) {
        c->free_me = NULL;
        ig_store_free(s);
    }
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Run the loop until *counter >= want or ms pass; returns whether it got there. */
static int run_until(const int *counter, int want, int ms)
{
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(t, &tv);
    uint64_t deadline = ig_now_us() + (uint64_t)ms * 1000;
    while ((counter == NULL || *counter < want) && ig_now_us() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return counter == NULL || *counter >= want;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/igstore-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    base = event_base_new();
    return base == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    event_base_free(base);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct ig_store *embedded(struct ctx *c, const char *data_dir)
{
    struct ig_store_conf conf = {.url = "", .data_dir = data_dir, .channel = CHANNEL,
                                 .on_event = on_event, .on_state = on_state, .arg = c,
                                 .redis_server = REDIS};
    struct ig_store *s = NULL;
    char err[512] = "";
    int rc = ig_store_new(base, &conf, &s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "ig_store_new: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(run_until(&c->ups, 1, 3000));
    assert_true(ig_store_up(s));
    return s;
}

static void cmd(struct ig_store *s, struct ctx *c, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t lens[3] = {strlen(a0), a1 ? strlen(a1) : 0, a2 ? strlen(a2) : 0};
    int argc = a2 ? 3 : a1 ? 2 : 1;
    int want = c->replies + 1;
    assert_int_equal(ig_store_cmd(s, on_reply, c, argc, argv, lens), 0);
    assert_int_equal(c->replies, want - 1); /* never inside the call */
    assert_true(run_until(&c->replies, want, 2000));
}

static void test_embedded_roundtrip(void **state)
{
    (void)state;
    struct ctx c = {0};
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/a/b", dir); /* created, parents too */
    struct ig_store *s = embedded(&c, sub);
    assert_true(ig_store_child_pid(s) > 0);

    cmd(s, &c, "SET", "job:1", "hello\r\nworld");
    assert_string_equal(c.last_str, "OK");
    cmd(s, &c, "GET", "job:1", NULL);
    assert_string_equal(c.last_str, "hello\r\nworld");

    int want = c.replies + 1;
    assert_int_equal(ig_store_cmdf(s, on_reply, &c, "HSET h %s %b", "f", "v\0x", (size_t)3), 0);
    assert_true(run_until(&c.replies, want, 2000));
    assert_int_equal(c.last_type, REDIS_REPLY_INTEGER);

    cmd(s, &c, "PUBLISH", CHANNEL, "deployed:ep1");
    assert_int_equal(c.last_int, 1); /* our subscriber */
    assert_true(run_until(&c.events, 1, 2000));
    assert_string_equal(c.last_event, "deployed:ep1");

    char d[256];
    ig_store_describe(s, d, sizeof(d));
    assert_non_null(strstr(d, "redis.sock up"));
    ig_store_free(s);
    assert_int_equal(c.nulls, 0);
    assert_int_equal(c.downs, 0);
    assert_int_equal(c.ups, 1);
}

static void test_embedded_child_killed(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store *s = embedded(&c, dir);
    cmd(s, &c, "SET", "model:x", "kept");
    /* AOF everysec: let the write reach the file and its fsync pass. */
    run_until(NULL, 0, 1100);

    /* A command the kill will cut off: BLPOP holds its reply. */
    const char *argv[] = {"BLPOP", "never", "0"};
    size_t lens[] = {5, 5, 1};
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, argv, lens), 0);
    pid_t pid = ig_store_child_pid(s);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);

    assert_true(run_until(&c.downs, 1, 2000));
    /* Either connection may see the EOF first: the BLPOP gets NULL, once. */
    assert_true(run_until(&c.nulls, 1, 2000));
    assert_false(ig_store_up(s));
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, argv, lens), IG_ERR_AGAIN);
    char d[256];
    ig_store_describe(s, d, sizeof(d));
    assert_non_null(strstr(d, "down since"));

    assert_true(run_until(&c.ups, 2, 4000));
    assert_int_equal(c.downs, 1);
    assert_true(ig_store_child_pid(s) > 0);
    assert_int_not_equal(ig_store_child_pid(s), pid);
    assert_int_equal(c.nulls, 1);
    cmd(s, &c, "GET", "model:x", NULL);
    assert_string_equal(c.last_str, "kept");
    ig_store_free(s);
    assert_int_equal(c.replies, 3);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_redis_tcp(int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 1);
        execl(REDIS, REDIS, "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly",
              "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_tcp_starts_down(void **state)
{
    (void)state;
    struct ctx c = {0};
    int port = free_port();
    char url[64];
    snprintf(url, sizeof(url), "redis://localhost:%d/3", port); /* resolved by evdns */
    struct ig_store_conf conf = {.url = url, .channel = CHANNEL, .on_event = on_event,
                                 .on_state = on_state, .arg = &c};
    struct ig_store *s = NULL;
    char err[256];
    assert_int_equal(ig_store_new(base, &conf, &s, err, sizeof(err)), 0);
    assert_false(ig_store_up(s));
    run_until(NULL, 0, 600);
    assert_false(ig_store_up(s));
    assert_int_equal(c.ups + c.downs, 0);
    const char *argv[] = {"PING"};
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 1, argv, NULL), IG_ERR_AGAIN);
    char d[256];
    ig_store_describe(s, d, sizeof(d));
    assert_non_null(strstr(d, "down since"));

    pid_t srv = start_redis_tcp(port);
    uint64_t t0 = ig_now_us();
    assert_true(run_until(&c.ups, 1, 3000));
    assert_true(ig_now_us() - t0 < 3000000);
    cmd(s, &c, "SET", "db3key", "v");
    /* SELECT 3 happened: the key is in DB 3 only. */
    cmd(s, &c, "DBSIZE", NULL, NULL);
    assert_int_equal(c.last_int, 1);
    int want = c.replies + 1;
    assert_int_equal(ig_store_cmdf(s, on_reply, &c, "CLIENT INFO"), 0);
    assert_true(run_until(&c.replies, want, 2000));
    assert_non_null(strstr(c.last_str, " db=3 "));

    /* The server goes away: down once, then stays down (retrying). */
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    assert_true(run_until(&c.downs, 1, 2000));
    run_until(NULL, 0, 300);
    assert_int_equal(c.downs, 1);
    assert_false(ig_store_up(s));
    ig_store_free(s);
}

static void test_free_with_pending(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store *s = embedded(&c, dir);
    const char *blpop[] = {"BLPOP", "never", "0"};
    size_t lens[] = {5, 5, 1};
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, blpop, lens), 0);
    const char *ping[] = {"PING"};
    for (int i = 0; i < 99; i++)
        assert_int_equal(ig_store_cmd(s, on_reply, &c, 1, ping, NULL), 0);
    run_until(NULL, 0, 100); /* sent, blocked behind the BLPOP */
    assert_int_equal(c.replies, 0);
    assert_int_equal(ig_store_pending(s), 100);
    ig_store_free(s);
    assert_int_equal(c.replies, 100);
    assert_int_equal(c.nulls, 100);
    run_until(NULL, 0, 100);
    assert_int_equal(c.replies, 100);
}

static void test_full(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store *s = embedded(&c, dir);
    const char *blpop[] = {"BLPOP", "never", "0"};
    size_t lens[] = {5, 5, 1};
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, blpop, lens), 0);
    const char *ping[] = {"PING"};
    for (int i = 1; i < IG_STORE_PENDING_MAX; i++)
        assert_int_equal(ig_store_cmd(s, on_reply, &c, 1, ping, NULL), 0);
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 1, ping, NULL), IG_ERR_FULL);
    assert_int_equal(ig_store_cmdf(s, on_reply, &c, "PING"), IG_ERR_FULL);
    ig_store_free(s);
    assert_int_equal(c.replies, IG_STORE_PENDING_MAX);
    assert_int_equal(c.nulls, IG_STORE_PENDING_MAX);
}

/* ig_store_free from inside a reply callback: the others get NULL once. */
static void test_free_inside_callback(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store *s = embedded(&c, dir);
    const char *ping[] = {"PING"};
    const char *blpop[] = {"BLPOP", "never", "0"};
    size_t lens[] = {5, 5, 1};
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 1, ping, NULL), 0);
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, blpop, lens), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ig_store_cmd(s, on_reply, &c, 1, ping, NULL), 0);
    c.free_me = s;
    assert_true(run_until(&c.replies, 7, 7000));
    assert_int_equal(c.nulls, 6);
    run_until(NULL, 0, 100);
    assert_int_equal(c.replies, 7);
}

/* Replies over the cap (lowered to 64 KiB here) drop the connection: the
 * command gets NULL, the store goes down and comes back. A bulk string trips
 * the reader's unparsed-bytes check, a long array the object accounting. */
static void test_reply_cap(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store *s = embedded(&c, dir);
    size_t big = 100 * 1024;
    char *v = malloc(big);
    memset(v, 'x', big);
    const char *set[] = {"SET", "big", v};
    size_t setlen[] = {3, 3, big};
    int want = c.replies + 1;
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, set, setlen), 0);
    assert_true(run_until(&c.replies, want, 2000));
    free(v);
    want = c.replies + 2000;
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(ig_store_cmdf(s, on_reply, &c, "RPUSH l %040d", i), 0);
    }
    assert_true(run_until(&c.replies, want, 3000));
    cmd(s, &c, "GET", "big", NULL);
    assert_int_equal(c.last_str[0], 'x');

    ig_store_reply_max = 64 * 1024;
    cmd(s, &c, "GET", "big", NULL);
    assert_int_equal(c.nulls, 1);
    assert_true(run_until(&c.downs, 1, 2000));
    char d[256];
    ig_store_describe(s, d, sizeof(d));
    assert_non_null(strstr(d, "reply over the cap"));
    assert_true(run_until(&c.ups, 2, 3000));

    cmd(s, &c, "LRANGE", "l", "0");
    assert_int_equal(c.last_type, REDIS_REPLY_ERROR); /* wrong arity: small */
    want = c.replies + 1;
    assert_int_equal(ig_store_cmdf(s, on_reply, &c, "LRANGE l 0 -1"), 0);
    assert_true(run_until(&c.replies, want, 2000));
    assert_int_equal(c.nulls, 2);
    assert_true(run_until(&c.ups, 3, 3000));
    ig_store_describe(s, d, sizeof(d));
    assert_non_null(strstr(d, "up"));
    ig_store_reply_max = IG_STORE_REPLY_MAX;
    cmd(s, &c, "LLEN", "l", NULL);
    assert_int_equal(c.last_int, 2000);
    ig_store_free(s);
}

/* ig_store_free from inside on_state(0), with a command cut off. */
static void test_free_inside_state_cb(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store *s = embedded(&c, dir);
    const char *blpop[] = {"BLPOP", "never", "0"};
    size_t lens[] = {5, 5, 1};
    assert_int_equal(ig_store_cmd(s, on_reply, &c, 3, blpop, lens), 0);
    run_until(NULL, 0, 50);
    c.free_on_down = 1;
    kill(ig_store_child_pid(s), SIGKILL);
    assert_true(run_until(&c.downs, 1, 2000));
    assert_int_equal(c.nulls, 1);
    run_until(NULL, 0, 300);
    assert_int_equal(c.replies, 1);
    assert_int_equal(c.downs, 1);
}

/* A server that accepts (the kernel's backlog) but never answers: the
 * connection is dropped after 2 s and retried; the store stays down. */
static void test_connect_timeout(void **state)
{
    (void)state;
    struct ctx c = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    struct ig_store_conf conf = {.url = url, .channel = CHANNEL, .on_state = on_state, .arg = &c};
    struct ig_store *s = NULL;
    char err[256];
    assert_int_equal(ig_store_new(base, &conf, &s, err, sizeof(err)), 0);
    run_until(NULL, 0, 2300);
    char d[256];
    ig_store_describe(s, d, sizeof(d));
    assert_non_null(strstr(d, "no answer within 2 s"));
    assert_int_equal(c.ups + c.downs, 0);
    ig_store_free(s);
    close(fd);
}

static void test_leftover_refused(void **state)
{
    (void)state;
    struct ctx c = {0}, c2 = {0};
    struct ig_store *s = embedded(&c, dir);
    struct ig_store_conf conf = {.url = "", .data_dir = dir, .channel = CHANNEL,
                                 .on_state = on_state, .arg = &c2, .redis_server = REDIS};
    struct ig_store *s2 = NULL;
    char err[512] = "";
    uint64_t t0 = ig_now_us();
    assert_int_equal(ig_store_new(base, &conf, &s2, err, sizeof(err)), IG_ERR_IO);
    assert_null(s2);
    assert_non_null(strstr(err, "in use by redis-server pid"));
    assert_true(ig_now_us() - t0 < 3000000);
    assert_true(ig_store_up(s));
    ig_store_free(s);

    /* A stale socket file and pid file (nothing behind them): started over. */
    char p[128];
    snprintf(p, sizeof(p), "%s/redis.pid", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "%d\n", 999999);
    fclose(f);
    struct ctx c3 = {0};
    s = embedded(&c3, dir);
    ig_store_free(s);
}

static void test_start_failure(void **state)
{
    (void)state;
    struct ctx c = {0};
    struct ig_store_conf conf = {.url = "", .data_dir = dir, .channel = CHANNEL,
                                 .on_state = on_state, .arg = &c, .redis_server = "/bin/false"};
    struct ig_store *s = NULL;
    char err[512] = "";
    assert_int_equal(ig_store_new(base, &conf, &s, err, sizeof(err)), IG_ERR_IO);
    assert_non_null(strstr(err, "redis-server exited at start"));
    conf.redis_server = "no-such-redis-server-binary";
    assert_int_equal(ig_store_new(base, &conf, &s, err, sizeof(err)), IG_ERR_IO);
    assert_non_null(strstr(err, "not found"));
}

static void test_urls(void **state)
{
    (void)state;
    static const char *bad[] = {"http://x",         "redis://",          "redis://h:0",
                                "redis://h:99999",  "redis://h:1/x",     "unix://rel/path",
                                "unix:///",         "unix:///p?db=",     "unix:///p?x=1",
                                "redis://u:p@h:1",  "rediss://h",        "redis://h:12x"};
    struct ctx c = {0};
    for (size_t i = 0; i < IG_ARRAY_SIZE(bad); i++) {
        struct ig_store_conf conf = {.url = bad[i], .channel = CHANNEL, .arg = &c};
        struct ig_store *s = NULL;
        char err[256] = "";
        assert_int_equal(ig_store_new(base, &conf, &s, err, sizeof(err)), IG_ERR_CONFIG);
        assert_non_null(strstr(err, "redis://HOST"));
    }
    static const char *good[] = {"redis://127.0.0.1", "redis://[::1]:1/2",
                                  "unix:///nonexistent/x.sock?db=4",
                                  "redis://no-such-host.invalid:1"};
    for (size_t i = 0; i < IG_ARRAY_SIZE(good); i++) {
        struct ig_store_conf conf = {.url = good[i], .channel = CHANNEL, .on_state = on_state,
                                     .arg = &c};
        struct ig_store *s = NULL;
        char err[256] = "";
        assert_int_equal(ig_store_new(base, &conf, &s, err, sizeof(err)), 0);
        run_until(NULL, 0, 50);
        char d[256];
        ig_store_describe(s, d, sizeof(d));
        assert_non_null(strstr(d, "down since"));
        ig_store_free(s);
        run_until(NULL, 0, 20); /* a cancelled name lookup's callback comes from the loop */
    }
    assert_int_equal(c.ups, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_embedded_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_child_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_starts_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_state_cb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

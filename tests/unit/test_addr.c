/* test_addr.c - listen addresses: numeric hosts, bracketed IPv6, names,
 * port 0, and the exact reasons for what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "infergate/addr.h"
#include "infergate/common.h"

static void expect_v4(const char *hostport, const char *ip, int port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)&ss;
    char err[256] = "", text[64];
    int len = 0;

    if (ig_addr_resolve(hostport, &ss, &len, err, sizeof(err)) != 0)
        fail_msg("%s: %s", hostport, err);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_non_null(inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void expect_err(const char *hostport, const char *msg)
{
    struct sockaddr_storage ss;
    char err[256] = "";
    int len = 0;

    assert_int_equal(ig_addr_resolve(hostport, &ss, &len, err, sizeof(err)), IG_ERR_CONFIG);
    assert_string_equal(err, msg);
}

static void test_numeric_and_names(void **state)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)&ss;
    char err[256], text[64];
    int len = 0;

    (void)state;
    expect_v4("127.0.0.1:8080", "127.0.0.1", 8080);
    expect_v4("0.0.0.0:0", "0.0.0.0", 0);
    expect_v4("127.0.0.1:65535", "127.0.0.1", 65535);
    /* names resolve; localhost is IPv4 whatever order the resolver gives */
    expect_v4("localhost:0", "127.0.0.1", 0);
    expect_v4("localhost:00080", "127.0.0.1", 80);
    assert_int_equal(ig_addr_resolve("[::1]:9000", &ss, &len, err, sizeof(err)), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_non_null(inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)));
    assert_string_equal(text, "::1");
    assert_int_equal(ntohs(in6->sin6_port), 9000);
}

static void test_refused(void **state)
{
    (void)state;
    expect_err("127.0.0.1", "'127.0.0.1': not HOST:PORT");
    expect_err("::1:80", "'::1:80': an IPv6 host must be in brackets: [ADDR]:PORT");
    expect_err(":80", "':80': the host is empty or too long");
    expect_err("[]:80", "'[]:80': the host is empty or too long");
    expect_err("127.0.0.1:65536", "'127.0.0.1:65536': the port is not a number 0..65535");
    expect_err("127.0.0.1:", "'127.0.0.1:': the port is not a number 0..65535");
    expect_err("127.0.0.1:-1", "'127.0.0.1:-1': the port is not a number 0..65535");
    expect_err("127.0.0.1:http", "'127.0.0.1:http': the port is not a number 0..65535");
    expect_err("127.0.0.1:123456", "'127.0.0.1:123456': the port is not a number 0..65535");
    /* a bracketed host is an address, never a name */
    expect_err("[localhost]:80",
               "'[localhost]:80': cannot resolve localhost: Name or service not known");
    expect_err("[127.0.0.1]:80",
               "'[127.0.0.1]:80': cannot resolve 127.0.0.1: Address family for hostname not "
               "supported");
    /* .invalid never resolves (RFC 6761) */
    expect_err("nosuchhost.invalid:80",
               "'nosuchhost.invalid:80': cannot resolve nosuchhost.invalid: Name or service not "
               "known");
}

/* A loopback listener on a free port; its port in <port>. */
static int listen_any(char *port, size_t len)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(port, len, "%u", (unsigned)ntohs(sin.sin_port));
    return fd;
}

static void test_connect_and_dial(void **state)
{
    char port[16], err[256] = "";
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int lfd = listen_any(port, sizeof(port));
    int one = 0, fd;
    socklen_t ol = sizeof(one);

    (void)state;
    fd = ig_addr_dial("127.0.0.1", port, "here", 1000, &ss, &sl, err, sizeof(err));
    assert_true(fd >= 0);
    assert_int_equal(sl, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), atoi(port));
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &ol), 0);
    assert_int_equal(one, 1);
    close(fd);
    /* the kept address connects again */
    fd = ig_addr_connect((struct sockaddr *)&ss, sl, 1000);
    assert_true(fd >= 0);
    close(fd);
    close(lfd); /* nobody listens there now */
    errno = 0;
    assert_int_equal(ig_addr_connect((struct sockaddr *)&ss, sl, 1000), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(ig_addr_dial("127.0.0.1", port, "gone:1", 1000, NULL, NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "cannot connect to gone:1: Connection refused");
    assert_int_equal(ig_addr_dial("nosuchhost.invalid", "80", "nosuchhost.invalid:80", 1000, NULL,
                                  NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "cannot resolve nosuchhost.invalid: Name or service not known");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_and_names),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_connect_and_dial),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * addr.c - listen addresses: "HOST:PORT" to a socket address (addr.h).
 *
 * evutil_parse_sockaddr_port() takes numeric hosts only and refuses port 0;
 * a listener configured as "localhost:8080" must work, so names go through
 * getaddrinfo() like any server's.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "infergate/addr.h"
#include "infergate/common.h"

#define ADDR_HOST_MAX 255 /* a DNS name's longest text form */

static int addr_fail(char *err, size_t errlen, const char *hostport, const char *why)
{
    snprintf(err, errlen, "'%s': %s", hostport, why);
    return IG_ERR_CONFIG;
}

int ig_addr_resolve(const char *hostport, struct sockaddr_storage *ss, int *sslen, char *err,
                    size_t errlen)
{
    const char *colon = strrchr(hostport, ':'), *host = hostport, *port;
    char hbuf[ADDR_HOST_MAX + 1], why[ADDR_HOST_MAX + 128];
    struct addrinfo hints, *res = NULL, *pick = NULL;
    size_t hlen;
    int rv;

    if (colon == NULL)
        return addr_fail(err, errlen, hostport, "not HOST:PORT");
    port = colon + 1;
    hlen = (size_t)(colon - hostport);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    } else if (memchr(host, ':', hlen) != NULL) {
        return addr_fail(err, errlen, hostport, "an IPv6 host must be in brackets: [ADDR]:PORT");
    }
    if (hlen == 0 || hlen > ADDR_HOST_MAX)
        return addr_fail(err, errlen, hostport, "the host is empty or too long");
    if (port[0] == '\0' || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
        strtol(port, NULL, 10) > 65535)
        return addr_fail(err, errlen, hostport, "the port is not a number 0..65535");
    memcpy(hbuf, host, hlen);
    hbuf[hlen] = '\0';

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (host != hostport) /* bracketed: an address, never a name */
        hints.ai_flags |= AI_NUMERICHOST, hints.ai_family = AF_INET6;
    rv = getaddrinfo(hbuf, port, &hints, &res);
    if (rv != 0) {
        snprintf(why, sizeof(why), "cannot resolve %s: %s", hbuf, gai_strerror(rv));
        return addr_fail(err, errlen, hostport, why);
    }
    for (struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    for (struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            pick = ai;
    if (pick == NULL || pick->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        snprintf(why, sizeof(why), "%s has no IPv4 or IPv6 address", hbuf);
        return addr_fail(err, errlen, hostport, why);
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sslen = (int)pick->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int ig_addr_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct pollfd pfd;
    int soerr = 0, one = 1, r;
    socklen_t sl = sizeof(soerr);

    if (fd == -1)
        return -1;
    if (connect(fd, sa, len) == -1) {
        if (errno != EINPROGRESS)
            goto fail;
        pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
        while ((r = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
            ;
        if (r == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (r == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
            goto fail;
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
fail:
    soerr = errno;
    close(fd);
    errno = soerr;
    return -1;
}

int ig_addr_dial(const char *host, const char *port, const char *name, int timeout_ms,
                 struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *list = NULL;
    int rv, fd = -1, e = 0;

    rv = getaddrinfo(host, port, &hints, &list);
    if (rv != 0) {
        ig_errf(err, errlen, "cannot resolve %s: %s", host,
                rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
        return -1;
    }
    for (struct addrinfo *ai = list; ai != NULL && fd == -1; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(*ss))
            continue;
        fd = ig_addr_connect(ai->ai_addr, ai->ai_addrlen, timeout_ms);
        if (fd == -1) {
            e = errno;
        } else if (ss != NULL) {
            memcpy(ss, ai->ai_addr, ai->ai_addrlen);
            *sslen = ai->ai_addrlen;
        }
    }
    freeaddrinfo(list);
    if (fd == -1)
        ig_errf(err, errlen, "cannot connect to %s: %s", name,
                e == ETIMEDOUT ? "timed out" : e != 0 ? strerror(e) : "no address");
    return fd;
}

/*
 * addr.h - listen addresses: "HOST:PORT" to a socket address; the
 * clients' (bin/infergate-cli, bin/igload) blocking connect.
 *
 * One parser serves start-up (the HTTP listener) and --check-config, so a
 * configuration that checks clean binds the address it checked.
 */
#ifndef INFERGATE_ADDR_H
#define INFERGATE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Resolve <hostport>, "HOST:PORT", for a listening socket. HOST is an IPv4
 * address, a bracketed IPv6 address ("[::1]") or a host name ("localhost",
 * resolved with getaddrinfo: /etc/hosts, then DNS; this may block, so call
 * it before the loop runs). PORT is 0..65535 in decimal; 0 lets the kernel
 * pick a free port. A name with several addresses gives its first IPv4
 * address, else its first IPv6 one, so that "localhost" is 127.0.0.1
 * whatever the resolver's order.
 * Returns 0 and fills <ss> and <sslen>, or IG_ERR_CONFIG with a one-line
 * reason in <err> (cut to <errlen>), e.g.
 *   "'nosuchhost:80': cannot resolve nosuchhost: Name or service not known".
 */
int ig_addr_resolve(const char *hostport, struct sockaddr_storage *ss, int *sslen, char *err,
                    size_t errlen);

/*
 * Connect a TCP socket to <sa> (<len> bytes), waiting at most <timeout_ms>;
 * for the command-line clients, before their loop runs (it blocks). The
 * socket is non-blocking, close-on-exec, with TCP_NODELAY. Returns it, or
 * -1 with errno (ETIMEDOUT when the wait ran out).
 */
int ig_addr_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms);

/*
 * Resolve <host> and <port> (getaddrinfo: it blocks) and ig_addr_connect()
 * to each address in turn until one answers. Returns the socket, its
 * address in <ss> and <sslen> when <ss> is not NULL; or -1 with a one-line
 * reason in <err>, "cannot resolve HOST: ..." or "cannot connect to NAME:
 * ..." (<name>: the address as the user wrote it).
 */
int ig_addr_dial(const char *host, const char *port, const char *name, int timeout_ms,
                 struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen);

#endif /* INFERGATE_ADDR_H */

/*
 * cli.h - bin/infergate-cli: the streaming transform client.
 *
 * cli_main.c parses and checks the command line into a struct cli_opts;
 * cli_transform.c opens IN and OUT, connects (h2c with prior knowledge, or
 * TLS with ALPN h2), streams IN as the body of POST /transform/NAME and
 * writes the response body to OUT as it arrives, full duplex, on one
 * libevent loop with an nghttp2 client session. No threads.
 */
#ifndef INFERGATE_CLI_H
#define INFERGATE_CLI_H

#include <stddef.h>

/* Exit statuses. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* the transform failed: network, HTTP, IN or OUT */
#define CLI_EXIT_USAGE 2 /* a bad command line */

#define CLI_HOST_MAX 255       /* a URL's host */
#define CLI_ENDPOINT_MAX 256   /* an endpoint name, before percent-encoding */
#define CLI_HEADER_VALUE_MAX 4096

/* A checked command line; the strings point into argv. */
struct cli_opts {
    int tls;                       /* https:// */
    char host[CLI_HOST_MAX + 1];   /* without an IPv6 address's brackets */
    char port[8];                  /* decimal, 1..65535 */
    char authority[CLI_HOST_MAX + 10]; /* :authority, HOST:PORT as the URL gave it */
    char path[16 + 3 * CLI_ENDPOINT_MAX]; /* /transform/NAME, NAME percent-encoded */
    const char *content_type;      /* never NULL */
    const char *accept;            /* never NULL */
    const char *join;              /* NULL when not given; else "input" */
    const char *input_filter;      /* NULL when not given */
    const char *output_filter;     /* NULL when not given */
    const char *errors;            /* NULL when not given; else "inline" | "abort" */
    const char *in_path;           /* NULL: stdin */
    const char *out_path;          /* NULL: stdout */
    int insecure;                  /* --insecure: no certificate verification */
    const char *cacert;            /* --cacert FILE, or NULL: the system's */
};

/*
 * Run the transform <o> describes to its end; messages go to stderr.
 * Returns CLI_EXIT_OK, or CLI_EXIT_FAIL after printing why.
 */
int cli_transform(const struct cli_opts *o);

#endif /* INFERGATE_CLI_H */

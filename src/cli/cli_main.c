/*
 * cli_main.c - bin/infergate-cli's command line: parse, check, hand the
 * checked options to cli_transform (cli_transform.c).
 *
 *   infergate-cli transform --url URL --endpoint NAME [options] [IN [OUT]]
 *   infergate-cli --help | -h | --version
 *
 * Every problem with the command line is reported on stderr as one line
 * naming the option and the value, then exit status 2 (CLI_EXIT_USAGE).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "infergate/version.h"

static const char cli_usage_text[] =
    "usage: infergate-cli transform --url URL --endpoint NAME [options] [IN [OUT]]\n"
    "       infergate-cli --help | -h | --version\n"
    "\n"
    "Streams IN (default stdin, or \"-\") through POST /transform/NAME of an infergate\n"
    "gateway over HTTP/2, one record per line, and writes the predictions to OUT\n"
    "(default stdout, or \"-\") as they arrive, one line per non-blank record.\n"
    "\n"
    "  --url URL               http://HOST:PORT (h2c, prior knowledge) or\n"
    "                          https://HOST:PORT (TLS, ALPN h2)\n"
    "  --endpoint NAME         the endpoint\n"
    "  --content-type T        the records' type (default text/csv)\n"
    "  --accept T              the predictions' type (default: the content type)\n"
    "  --join input            prefix each prediction with its input record\n"
    "  --input-filter F        sent as x-infergate-input-filter\n"
    "  --output-filter F       sent as x-infergate-output-filter\n"
    "  --errors inline|abort   a bad record: an error line in its place, or the end\n"
    "  --insecure              https: do not verify the gateway's certificate\n"
    "  --cacert FILE           https: verify against the CA certificates in FILE\n"
    "  -h, --help              this text\n"
    "  --version               the version and build\n"
    "\n"
    "Exit status: 0 every record transformed; 1 the transform failed (the\n"
    "gateway's answer, the network, IN or OUT); 2 a bad command line.\n";

enum cli_opt_id {
    OPT_URL = 256,
    OPT_ENDPOINT,
    OPT_CONTENT_TYPE,
    OPT_ACCEPT,
    OPT_JOIN,
    OPT_INPUT_FILTER,
    OPT_OUTPUT_FILTER,
    OPT_ERRORS,
    OPT_INSECURE,
    OPT_CACERT,
    OPT_VERSION,
};

static const struct option cli_long_opts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
    {"accept", required_argument, NULL, OPT_ACCEPT},
    {"join", required_argument, NULL, OPT_JOIN},
    {"input-filter", required_argument, NULL, OPT_INPUT_FILTER},
    {"output-filter", required_argument, NULL, OPT_OUTPUT_FILTER},
    {"errors", required_argument, NULL, OPT_ERRORS},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* One line on stderr, a hint, and CLI_EXIT_USAGE for the caller to return. */
__attribute__((format(printf, 1, 2))) static int cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("infergate-cli: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'infergate-cli --help'.\n", stderr);
    return CLI_EXIT_USAGE;
}

/* A header value: printable ASCII, spaces and tabs only, capped. */
static int cli_check_value(const char *opt, const char *v)
{
    size_t n = strlen(v);

    if (n == 0)
        return cli_usage_error("%s: empty value", opt);
    if (n > CLI_HEADER_VALUE_MAX)
        return cli_usage_error("%s: longer than %d bytes", opt, CLI_HEADER_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch >= 0x7f)
            return cli_usage_error("%s: byte 0x%02x at offset %zu is not printable ASCII", opt,
                                   ch, i);
    }
    return 0;
}

/*
 * Split http[s]://HOST[:PORT][/] into <o>. HOST is a name, an IPv4
 * address or a bracketed IPv6 address; the port defaults to 80 or 443.
 */
static int cli_parse_url(const char *url, struct cli_opts *o)
{
    const char *p, *host, *host_end, *port = NULL, *end;
    size_t hn, pn = 0;

    if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        o->tls = 1;
        p = url + 8;
    } else {
        goto bad;
    }
    end = p + strlen(p);
    if (end > p && end[-1] == '/')
        end--;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            goto bad;
        p = host_end + 1;
    } else {
        host = p;
        host_end = p;
        while (host_end < end && *host_end != ':')
            host_end++;
        p = host_end;
    }
    if (p < end) {
        if (*p != ':')
            goto bad;
        port = p + 1;
        pn = (size_t)(end - port);
    }
    hn = (size_t)(host_end - host);
    if (hn == 0 || hn > CLI_HOST_MAX)
        goto bad;
    for (size_t i = 0; i < hn; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("/?#@[]", ch))
            goto bad;
    }
    if (port) {
        unsigned long v = 0;
        if (pn == 0 || pn > 5)
            goto bad;
        for (size_t i = 0; i < pn; i++) {
            if (port[i] < '0' || port[i] > '9')
                goto bad;
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v == 0 || v > 65535)
            goto bad;
        snprintf(o->port, sizeof(o->port), "%lu", v);
    } else {
        snprintf(o->port, sizeof(o->port), "%s", o->tls ? "443" : "80");
    }
    memcpy(o->host, host, hn);
    o->host[hn] = '\0';
    /* The authority as given: HOST[:PORT] with the brackets. */
    snprintf(o->authority, sizeof(o->authority), "%.*s", (int)(end - (url + (o->tls ? 8 : 7))),
             url + (o->tls ? 8 : 7));
    return 0;
bad:
    return cli_usage_error("--url: expected http://HOST:PORT or https://HOST:PORT, got '%s'",
                           url);
}

/* /transform/NAME with every byte outside [A-Za-z0-9._~-] percent-encoded. */
static int cli_build_path(const char *name, struct cli_opts *o)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(name), w;

    if (n == 0)
        return cli_usage_error("--endpoint: empty name");
    if (n > CLI_ENDPOINT_MAX)
        return cli_usage_error("--endpoint: longer than %d bytes", CLI_ENDPOINT_MAX);
    w = (size_t)snprintf(o->path, sizeof(o->path), "/transform/");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '.' || ch == '_' || ch == '~' || ch == '-') {
            o->path[w++] = (char)ch;
        } else {
            o->path[w++] = '%';
            o->path[w++] = hex[ch >> 4];
            o->path[w++] = hex[ch & 15];
        }
    }
    o->path[w] = '\0';
    return 0;
}

/* The options after "transform"; 0, or CLI_EXIT_USAGE after the message. */
static int cli_parse_transform(int argc, char **argv, struct cli_opts *o, int *help)
{
    const char *url = NULL, *endpoint = NULL;
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", cli_long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_URL: url = optarg; break;
        case OPT_ENDPOINT: endpoint = optarg; break;
        case OPT_CONTENT_TYPE: o->content_type = optarg; break;
        case OPT_ACCEPT: o->accept = optarg; break;
        case OPT_JOIN: o->join = optarg; break;
        case OPT_INPUT_FILTER: o->input_filter = optarg; break;
        case OPT_OUTPUT_FILTER: o->output_filter = optarg; break;
        case OPT_ERRORS: o->errors = optarg; break;
        case OPT_INSECURE: o->insecure = 1; break;
        case OPT_CACERT: o->cacert = optarg; break;
        case 'h': *help = 1; return 0;
        case OPT_VERSION: *help = 2; return 0;
        case ':': return cli_usage_error("%s: a value is missing", argv[optind - 1]);
        default: return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!url)
        return cli_usage_error("--url is missing");
    if (!endpoint)
        return cli_usage_error("--endpoint is missing");
    if ((rc = cli_parse_url(url, o)) || (rc = cli_build_path(endpoint, o)))
        return rc;
    if (!o->content_type)
        o->content_type = "text/csv";
    if (!o->accept)
        o->accept = o->content_type;
    if ((rc = cli_check_value("--content-type", o->content_type)) ||
        (rc = cli_check_value("--accept", o->accept)))
        return rc;
    if (o->join && strcmp(o->join, "input") != 0)
        return cli_usage_error("--join: expected 'input', got '%s'", o->join);
    if (o->errors && strcmp(o->errors, "inline") != 0 && strcmp(o->errors, "abort") != 0)
        return cli_usage_error("--errors: expected 'inline' or 'abort', got '%s'", o->errors);
    if ((o->input_filter && (rc = cli_check_value("--input-filter", o->input_filter))) ||
        (o->output_filter && (rc = cli_check_value("--output-filter", o->output_filter))))
        return rc;
    if (!o->tls && (o->insecure || o->cacert))
        return cli_usage_error("--insecure and --cacert need an https:// URL");
    if (argc - optind > 2)
        return cli_usage_error("unexpected argument '%s' (at most IN and OUT)", argv[optind + 2]);
    if (optind < argc && strcmp(argv[optind], "-") != 0)
        o->in_path = argv[optind];
    if (optind + 1 < argc && strcmp(argv[optind + 1], "-") != 0)
        o->out_path = argv[optind + 1];
    return 0;
}

/*
 * A closed stdin, stdout or stderr gets /dev/null, so that no socket or
 * file opened later takes its number (and the predictions or the messages
 * with it); a closed one that is IN or OUT is an error.
 */
static int cli_std_fds(const struct cli_opts *o)
{
    static const char *const names[3] = {"stdin", "stdout", "stderr"};
    int closed[3];

    for (int fd = 0; fd < 3; fd++) {
        closed[fd] = fcntl(fd, F_GETFD) == -1 && errno == EBADF;
        if (closed[fd] && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
            return -1;
    }
    for (int fd = 0; fd < 2; fd++) {
        if (closed[fd] && (fd == 0 ? o->in_path : o->out_path) == NULL) {
            fprintf(stderr, "infergate-cli: %s is closed\n", names[fd]);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli_opts o;
    int help = 0, rc;

    memset(&o, 0, sizeof(o));
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(cli_usage_text, stdout);
        return CLI_EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("infergate-cli %s (build %s)\n", IG_VERSION, IG_BUILD);
        return CLI_EXIT_OK;
    }
    if (argc < 2)
        return cli_usage_error("a command is missing: infergate-cli transform ...");
    if (strcmp(argv[1], "transform") != 0)
        return cli_usage_error("unknown command '%s' (the only one is 'transform')", argv[1]);
    if ((rc = cli_parse_transform(argc - 1, argv + 1, &o, &help)) != 0)
        return rc;
    if (help == 1) {
        fputs(cli_usage_text, stdout);
        return CLI_EXIT_OK;
    }
    if (help == 2) {
        printf("infergate-cli %s (build %s)\n", IG_VERSION, IG_BUILD);
        return CLI_EXIT_OK;
    }
    /* A closed reader of OUT or of the socket is an EPIPE to report. */
    signal(SIGPIPE, SIG_IGN);
    if (cli_std_fds(&o) != 0)
        return CLI_EXIT_FAIL;
    return cli_transform(&o);
}

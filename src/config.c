/*
 * config.c - the option tables and the loader: defaults, INI file (libinih),
 * environment, command line.
 *
 * Two declarative tables, config_global[] and config_endpoint[], hold every
 * option: name, type, offset in its struct, limits, default (as the string a
 * user would write), where it may be set, whether it may change at run time,
 * an optional extra check for strings, and a line of help. Everything else
 * (defaults, parsing, --help, freeing) walks the tables; no code outside
 * them names an option, except the tls_cert/tls_key pairing check.
 *
 * libinih gives the handler neither a line number nor a callback when a
 * section starts (the Debian build lacks INI_HANDLER_LINENO and
 * INI_CALL_HANDLER_ON_NEW_SECTION), and it truncates section names to 49
 * chars. So the file is fed through our own fgets-style reader: it counts
 * lines (one reader call is one line, because overlong lines are refused),
 * and it spots "[...]" header lines, using inih's own rule for where the name
 * ends, to open sections even when they hold no key. The key handler then
 * knows the line and the section without trusting inih's copies.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "infergate/common.h"
#include "infergate/codec.h"
#include "infergate/config.h"
#include "infergate/http.h"

enum config_type {
    CONFIG_STR = 0,   /* char *, owned */
    CONFIG_U32 = 1,   /* uint32_t in [min, max] */
    CONFIG_U64 = 2,   /* uint64_t in [min, max] */
    CONFIG_LEVEL = 3, /* int IG_LOG_*, from debug|info|warn|error */
    CONFIG_FLAG = 4,  /* int set to 1; takes no value (command line only) */
    CONFIG_BOOL = 5,  /* int 0 or 1, from on|off (also true|false) */
};

/* Where an option may be set, and what else is true of it. */
#define CONFIG_IN_FILE 0x01u
#define CONFIG_IN_ENV 0x02u
#define CONFIG_IN_CLI 0x04u
#define CONFIG_ANYWHERE (CONFIG_IN_FILE | CONFIG_IN_ENV | CONFIG_IN_CLI)
#define CONFIG_RELOADABLE 0x10u /* may change while running (applies to new work) */
#define CONFIG_REQUIRED 0x20u   /* no default: the file must set it */

/* Extra validation of a trimmed string value: 0, or -1 with a reason. */
typedef int (*config_check_cb)(const char *value, char *why, size_t whylen);

struct config_opt {
    const char *name; /* file key; INFERGATE_<NAME>; --name */
    enum config_type type;
    size_t offset;         /* of the field in struct ig_config or ig_endpoint_conf */
    uint64_t min, max;     /* integer types only */
    const char *def;       /* default, parsed like user input; NULL: none */
    unsigned flags;        /* CONFIG_IN_*, CONFIG_RELOADABLE, CONFIG_REQUIRED */
    config_check_cb check; /* CONFIG_STR only; NULL: any string */
    const char *arg;       /* value placeholder in --help */
    const char *help;
};

static int config_check_nonempty(const char *v, char *why, size_t whylen);
static int config_check_listen(const char *v, char *why, size_t whylen);
static int config_check_listen_opt(const char *v, char *why, size_t whylen);
static int config_check_model(const char *v, char *why, size_t whylen);
static int config_check_variant(const char *v, char *why, size_t whylen);
static int config_check_media(const char *v, char *why, size_t whylen);
static int config_check_media_opt(const char *v, char *why, size_t whylen);
static int config_check_url_opt(const char *v, char *why, size_t whylen);

#define G(field) offsetof(struct ig_config, field)
#define E(field) offsetof(struct ig_endpoint_conf, field)
#define RELOAD CONFIG_RELOADABLE

/* Options outside any section. Those not in the file (no CONFIG_IN_FILE) are
 * read before the file, because they say which file to read or whether to
 * read one at all. */
static const struct config_opt config_global[] = {
    {"config", CONFIG_STR, G(config_path), 0, 0, NULL, CONFIG_IN_ENV | CONFIG_IN_CLI,
     config_check_nonempty, "FILE", "INI file to read (also INFERGATE_CONFIG)"},
    {"check_config", CONFIG_FLAG, G(check_only), 0, 0, NULL, CONFIG_IN_CLI, NULL, "",
     "validate the configuration, then exit"},
    {"help", CONFIG_FLAG, G(help), 0, 0, NULL, CONFIG_IN_CLI, NULL, "",
     "print this help, then exit (also -h)"},
    {"version", CONFIG_FLAG, G(version), 0, 0, NULL, CONFIG_IN_CLI, NULL, "",
     "print the version and build, then exit"},
    {"listen", CONFIG_STR, G(listen), 0, 0, "127.0.0.1:8080", CONFIG_ANYWHERE, config_check_listen,
     "HOST:PORT", "main listener; HOST may be [IPv6]; port 0 takes any free port"},
    {"admin_listen", CONFIG_STR, G(admin_listen), 0, 0, "", CONFIG_ANYWHERE,
     config_check_listen_opt, "HOST:PORT", "admin API listener; empty: none (see admin_on_main)"},
    {"admin_on_main", CONFIG_BOOL, G(admin_on_main), 0, 0, "off", CONFIG_ANYWHERE, NULL, "on|off",
     "serve the admin API on the main listener (as well as on admin_listen)"},
    {"admin_auth", CONFIG_BOOL, G(admin_auth), 0, 0, "on", CONFIG_ANYWHERE, NULL, "on|off",
     "admin API requests must be SigV4-signed with a configured key; off only when the admin "
     "API listens on loopback alone"},
    {"admin_access_key", CONFIG_STR, G(admin_access_key), 0, 0, "", CONFIG_ANYWHERE, NULL, "KEY",
     "an access key id accepted by SigV4 verification (set together with admin_secret_key)"},
    {"admin_secret_key", CONFIG_STR, G(admin_secret_key), 0, 0, "", CONFIG_ANYWHERE, NULL,
     "SECRET", "the secret access key of admin_access_key"},
    {"admin_keys_file", CONFIG_STR, G(admin_keys_file), 0, 0, "", CONFIG_ANYWHERE, NULL, "FILE",
     "more keys: lines \"ACCESS_KEY SECRET [SESSION_TOKEN]\", '#' comments, at most 1000"},
    {"data_auth", CONFIG_BOOL, G(data_auth), 0, 0, "off", CONFIG_ANYWHERE, NULL, "on|off",
     "verify SigV4 on the data plane (InvokeEndpoint) too, against the same keys"},
    {"admin_exec_dirs", CONFIG_STR, G(admin_exec_dirs), 0, 0, "", CONFIG_ANYWHERE, NULL,
     "DIR[:DIR...]",
     "directories whose programs a model's file:// image may run (its serve program); empty: "
     "none"},
    {"auth_skew_s", CONFIG_U32, G(auth_skew_s), 1, 3600, "300", CONFIG_ANYWHERE, NULL, "S",
     "largest difference allowed between a request's X-Amz-Date and our clock"},
    {"data_dir", CONFIG_STR, G(data_dir), 0, 0, "./var", CONFIG_ANYWHERE, config_check_nonempty,
     "DIR", "state directory (embedded redis-server socket and data)"},
    {"redis_url", CONFIG_STR, G(redis_url), 0, 0, "", CONFIG_ANYWHERE, NULL, "URL",
     "job store; empty: start an embedded redis-server in data_dir"},
    {"tls_cert", CONFIG_STR, G(tls_cert), 0, 0, "", CONFIG_ANYWHERE, NULL, "FILE",
     "PEM certificate chain; empty: cleartext (set together with tls_key)"},
    {"tls_key", CONFIG_STR, G(tls_key), 0, 0, "", CONFIG_ANYWHERE, NULL, "FILE",
     "PEM private key (set together with tls_cert)"},
    {"log_level", CONFIG_LEVEL, G(log_level), 0, 0, "info", CONFIG_ANYWHERE | RELOAD, NULL, "LEVEL",
     "least severe level logged"},
    {"access_log", CONFIG_BOOL, G(access_log), 0, 0, "off", CONFIG_ANYWHERE | RELOAD, NULL,
     "on|off", "one JSON line per request at info (errors are logged at warn either way)"},
    {"workers", CONFIG_U32, G(workers), 0, 256, "0", CONFIG_ANYWHERE, NULL, "N",
     "CPU worker threads; 0: one per CPU"},
    {"max_connections", CONFIG_U32, G(max_connections), 1, 1000000, "4096",
     CONFIG_ANYWHERE | RELOAD, NULL, "N", "client connections open at once"},
    {"max_concurrent_streams", CONFIG_U32, G(max_concurrent_streams), 1, 100000, "128",
     CONFIG_ANYWHERE | RELOAD, NULL, "N", "HTTP/2 streams per connection (new connections)"},
    {"max_header_list_size", CONFIG_U32, G(max_header_list_size), 1024, 1048576, "65536",
     CONFIG_ANYWHERE | RELOAD, NULL, "BYTES", "request header block (new connections)"},
    {"max_body_bytes", CONFIG_U64, G(max_body_bytes), 1, 67108864, "6291456",
     CONFIG_ANYWHERE | RELOAD, NULL, "BYTES", "largest request body (SageMaker's limit)"},
    {"max_buffered_body_bytes", CONFIG_U64, G(max_buffered_body_bytes), 1048576, 68719476736ull,
     "1073741824", CONFIG_ANYWHERE | RELOAD, NULL, "BYTES",
     "request bodies held at once, all connections; beyond this, requests are throttled"},
    {"max_conn_buffered_bytes", CONFIG_U64, G(max_conn_buffered_bytes), 1048576,
     68719476736ull, "67108864", CONFIG_ANYWHERE | RELOAD, NULL, "BYTES",
     "the same per connection (new connections); at least max_body_bytes + "
     "max_header_list_size"},
    {"min_rate_bytes", CONFIG_U64, G(min_rate_bytes), 1, 67108864, "4096",
     CONFIG_ANYWHERE | RELOAD, NULL, "BYTES",
     "a request body or a response waiting on the client moves this much per "
     "idle_timeout_ms, else it is cut"},
    {"idle_timeout_ms", CONFIG_U64, G(idle_timeout_ms), 100, 86400000, "60000",
     CONFIG_ANYWHERE | RELOAD, NULL, "MS", "close a connection idle this long"},
    {"header_timeout_ms", CONFIG_U64, G(header_timeout_ms), 100, 3600000, "10000",
     CONFIG_ANYWHERE | RELOAD, NULL, "MS", "deadline for a request's headers"},
    {"drain_timeout_ms", CONFIG_U64, G(drain_timeout_ms), 0, 3600000, "30000",
     CONFIG_ANYWHERE | RELOAD, NULL, "MS", "on shutdown, how long requests in flight may finish"},
};

/* Options of an [endpoint NAME] section (file only). */
static const struct config_opt config_endpoint[] = {
    {"model", CONFIG_STR, E(model), 0, 0, NULL, CONFIG_IN_FILE | CONFIG_REQUIRED,
     config_check_model, "URL",
     "file://PATH, http(s)://HOST[:PORT][/PATH] or sagemaker://REGION/ENDPOINT"},
    {"variant", CONFIG_STR, E(variant), 0, 0, "AllTraffic", CONFIG_IN_FILE, config_check_variant,
     "NAME", "production variant name"},
    {"content_type", CONFIG_STR, E(content_type), 0, 0, "text/csv", CONFIG_IN_FILE | RELOAD,
     config_check_media, "TYPE", "Content-Type assumed when a request has none"},
    {"accept", CONFIG_STR, E(accept), 0, 0, "application/json", CONFIG_IN_FILE | RELOAD,
     config_check_media, "TYPE", "Accept assumed when a request has none or sends */*"},
    {"libsvm_index_base", CONFIG_U32, E(libsvm_index_base), 0, 1, "0", CONFIG_IN_FILE | RELOAD,
     NULL, "0|1",
     "text/libsvm requests: the column index of the first feature (0 as XGBoost reads; 1 as the "
     "SageMaker Spark library writes)"},
    {"upstream_content_type", CONFIG_STR, E(upstream_content_type), 0, 0, "", CONFIG_IN_FILE,
     config_check_media_opt, "TYPE",
     "remote models: the format rows are sent in, converted from the client's when it differs; "
     "empty: the client's"},
    {"upstream_accept", CONFIG_STR, E(upstream_accept), 0, 0, "", CONFIG_IN_FILE,
     config_check_media_opt, "TYPE",
     "remote models: the format asked of the model, converted to the client's Accept when it "
     "differs; empty: the client's"},
    {"feature_dim", CONFIG_U32, E(feature_dim), 0, 1000000, "0", CONFIG_IN_FILE | RELOAD, NULL,
     "N", "remote models: features per row, for converting sparse rows (libsvm) to dense; 0: "
     "unknown"},
    {"max_batch_rows", CONFIG_U32, E(max_batch_rows), 1, 1000000, "256", CONFIG_IN_FILE | RELOAD,
     NULL, "ROWS", "a batch is sent when it holds this many rows"},
    {"max_batch_bytes", CONFIG_U64, E(max_batch_bytes), 1, 67108864, "6291456",
     CONFIG_IN_FILE | RELOAD, NULL, "BYTES", "a batch is sent when it holds this many bytes"},
    {"max_delay_us", CONFIG_U64, E(max_delay_us), 0, 10000000, "2000", CONFIG_IN_FILE | RELOAD,
     NULL, "US", "a batch is sent when its oldest row has waited this long"},
    {"max_inflight", CONFIG_U32, E(max_inflight), 1, 1024, "8", CONFIG_IN_FILE | RELOAD, NULL, "N",
     "upstream calls in flight at once"},
    {"max_queue_rows", CONFIG_U32, E(max_queue_rows), 1, 268435456, "16777216",
     CONFIG_IN_FILE | RELOAD, NULL, "ROWS",
     "rows waiting to be batched; beyond this, requests are throttled"},
    {"request_timeout_ms", CONFIG_U64, E(request_timeout_ms), 1, 3600000, "60000",
     CONFIG_IN_FILE | RELOAD, NULL, "MS", "deadline for one client request"},
    {"endpoint_url", CONFIG_STR, E(endpoint_url), 0, 0, "", CONFIG_IN_FILE, config_check_url_opt,
     "URL", "sagemaker:// models: the runtime's URL; empty: https://runtime.sagemaker.REGION.amazonaws.com (.com.cn in cn-*)"},
    {"upstream_http2", CONFIG_BOOL, E(upstream_http2), 0, 0, "off", CONFIG_IN_FILE, NULL, "on|off",
     "remote models: HTTP/2 (h2c with prior knowledge, h2 by ALPN) instead of HTTP/1.1 keep-alive"},
    {"upstream_timeout_ms", CONFIG_U64, E(upstream_timeout_ms), 1, 3600000, "60000",
     CONFIG_IN_FILE, NULL, "MS", "remote models: one call's deadline (connect to last byte)"},
    {"retry_max", CONFIG_U32, E(retry_max), 0, 10, "3", CONFIG_IN_FILE, NULL, "N",
     "remote models: retries of a throttled, 5xx or failed-connection call"},
    {"retry_budget_pct", CONFIG_U32, E(retry_budget_pct), 0, 100, "10", CONFIG_IN_FILE, NULL, "PCT",
     "remote models: retries never exceed this share of calls"},
    {"retry_base_ms", CONFIG_U64, E(retry_base_ms), 1, 60000, "25", CONFIG_IN_FILE, NULL, "MS",
     "remote models: first retry's backoff cap (full jitter, doubling per retry)"},
    {"retry_max_ms", CONFIG_U64, E(retry_max_ms), 1, 600000, "2000", CONFIG_IN_FILE, NULL, "MS",
     "remote models: largest backoff"},
    {"breaker_failures", CONFIG_U32, E(breaker_failures), 1, 1000, "5", CONFIG_IN_FILE, NULL, "N",
     "remote models: consecutive failed calls that open the circuit breaker"},
    {"breaker_open_ms", CONFIG_U64, E(breaker_open_ms), 1, 3600000, "5000", CONFIG_IN_FILE, NULL,
     "MS", "remote models: how long the breaker stays open before one probe call"},
};

#undef G
#undef E
#undef RELOAD

#define CONFIG_NGLOBAL IG_ARRAY_SIZE(config_global)
#define CONFIG_NENDPOINT IG_ARRAY_SIZE(config_endpoint)
#define CONFIG_ORIGIN_MAX 160 /* "FILE:LINE", "environment: VAR", "command line: --x" */
#define CONFIG_ENV_PREFIX "INFERGATE_"

/* "seen" bitmaps below have one bit per option. */
_Static_assert(IG_ARRAY_SIZE(config_global) <= 64, "config_global has over 64 options");
_Static_assert(IG_ARRAY_SIZE(config_endpoint) <= 64, "config_endpoint has over 64 options");

enum config_section {
    CONFIG_SEC_GLOBAL = 0,
    CONFIG_SEC_ENDPOINT = 1, /* the last of cfg->endpoints */
};

/* Loader state, one per ig_config_load() call. */
struct config_load {
    struct ig_config *cfg;
    char *err; /* the caller's buffer; holds the first error only */
    size_t errlen;
    int failed;
    /* the file */
    const char *path;
    FILE *fp;
    int line;       /* lines read so far: the current line inside the callbacks */
    int read_errno; /* nonzero when fgets() failed */
    enum config_section section;
    uint64_t seen;     /* options set in the current section, by table index */
    int seen_line[64]; /* where each was set */
    /* where each global option was last set, for checks that span options */
    char origin[IG_ARRAY_SIZE(config_global)][CONFIG_ORIGIN_MAX];
};

__attribute__((format(printf, 2, 3))) static void config_fail(struct config_load *st,
                                                              const char *fmt, ...)
{
    va_list ap;

    if (st->failed)
        return;
    st->failed = 1;
    if (st->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(st->err, st->errlen, fmt, ap);
    va_end(ap);
}

static int config_isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static int config_isalnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Plain decimal: digits only, at least one. 0, or -1 when not a number, -2
 * when it does not fit in 64 bits. */
static int config_parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        unsigned d;

        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ig_config_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > IG_CONFIG_NAME_MAX)
        return 0;
    if (!config_isalnum(s[0]) || !config_isalnum(s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!config_isalnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/*
 * HOST[:PORT] in s[0..len): HOST is "[IPv6]" or a non-empty run of letters,
 * digits, '.' and '-' (a name or IPv4). PORT is decimal in
 * [<minport>, 65535]; <need_port> makes it mandatory. 0 or -1.
 */
static int config_hostport_ok(const char *s, size_t len, int need_port, uint64_t minport)
{
    char tmp[64];
    size_t h = 0, plen;
    uint64_t port;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        struct in6_addr a6;

        if (close == NULL || (size_t)(close - s - 1) >= sizeof(tmp))
            return -1;
        memcpy(tmp, s + 1, (size_t)(close - s - 1));
        tmp[close - s - 1] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return -1;
        h = (size_t)(close - s) + 1;
    } else {
        while (h < len && (config_isalnum(s[h]) || s[h] == '.' || s[h] == '-'))
            h++;
        if (h == 0)
            return -1;
    }
    if (h == len)
        return need_port ? -1 : 0;
    if (s[h] != ':')
        return -1;
    plen = len - h - 1;
    if (plen == 0 || plen >= sizeof(tmp))
        return -1;
    memcpy(tmp, s + h + 1, plen);
    tmp[plen] = '\0';
    if (config_parse_uint(tmp, &port) != 0 || port < minport || port > 65535)
        return -1;
    return 0;
}

static int config_check_nonempty(const char *v, char *why, size_t whylen)
{
    if (*v != '\0')
        return 0;
    snprintf(why, whylen, "must not be empty");
    return -1;
}

static int config_check_listen(const char *v, char *why, size_t whylen)
{
    if (config_hostport_ok(v, strlen(v), 1, 0) == 0)
        return 0;
    snprintf(why, whylen,
             "'%s' is not HOST:PORT (HOST a name, IPv4 address or [IPv6] address; PORT 0..65535)",
             v);
    return -1;
}

static int config_check_listen_opt(const char *v, char *why, size_t whylen)
{
    return *v == '\0' ? 0 : config_check_listen(v, why, whylen);
}

/* sagemaker://REGION/ENDPOINT: REGION of [a-z0-9-], ENDPOINT a name. */
static int config_sagemaker_ok(const char *s)
{
    const char *slash = strchr(s, '/');

    if (slash == NULL || slash == s || slash - s > IG_CONFIG_NAME_MAX)
        return 0;
    for (const char *p = s; p < slash; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return ig_config_name_ok(slash + 1, strlen(slash + 1));
}

static int config_check_model(const char *v, char *why, size_t whylen)
{
    static const char *const http[] = {"http://", "https://"};
    int ok = 0;

    if (strncmp(v, "file://", 7) == 0)
        ok = v[7] != '\0';
    else if (strncmp(v, "sagemaker://", 12) == 0)
        ok = config_sagemaker_ok(v + 12);
    for (size_t i = 0; i < IG_ARRAY_SIZE(http); i++) {
        size_t n = strlen(http[i]);

        if (strncmp(v, http[i], n) == 0)
            ok = config_hostport_ok(v + n, strcspn(v + n, "/"), 0, 1) == 0;
    }
    if (ok)
        return 0;
    snprintf(why, whylen,
             "'%s' is not file://PATH, http(s)://HOST[:PORT][/PATH] or sagemaker://REGION/ENDPOINT",
             v);
    return -1;
}

/* Empty, or http(s)://HOST[:PORT][/PATH]. */
static int config_check_url_opt(const char *v, char *why, size_t whylen)
{
    static const char *const http[] = {"http://", "https://"};

    if (v[0] == '\0')
        return 0;
    for (size_t i = 0; i < IG_ARRAY_SIZE(http); i++) {
        size_t n = strlen(http[i]);

        if (strncmp(v, http[i], n) == 0 && config_hostport_ok(v + n, strcspn(v + n, "/"), 0, 1) == 0)
            return 0;
    }
    snprintf(why, whylen, "'%s' is not http(s)://HOST[:PORT][/PATH]", v);
    return -1;
}

static int config_check_variant(const char *v, char *why, size_t whylen)
{
    if (ig_config_name_ok(v, strlen(v)))
        return 0;
    snprintf(why, whylen,
             "'%s' is not a name (1..63 letters, digits or '-', starting and ending with a "
             "letter or digit)",
             v);
    return -1;
}

/* An RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ */
static size_t config_token_len(const char *s)
{
    size_t n = 0;

    while (s[n] && (config_isalnum(s[n]) || strchr("!#$%&'*+-.^_`|~", s[n]) != NULL))
        n++;
    return n;
}

/* TYPE/SUBTYPE, optionally followed by ";parameters" (kept verbatim). */
static int config_check_media(const char *v, char *why, size_t whylen)
{
    size_t t = config_token_len(v), s;

    if (t > 0 && v[t] == '/') {
        s = config_token_len(v + t + 1);
        if (s > 0 && (v[t + 1 + s] == '\0' || v[t + 1 + s] == ';'))
            return 0;
    }
    snprintf(why, whylen, "'%s' is not a media type TYPE/SUBTYPE", v);
    return -1;
}

static int config_check_media_opt(const char *v, char *why, size_t whylen)
{
    enum ig_format f;

    if (v[0] == '\0')
        return 0;
    if (config_check_media(v, why, whylen) < 0)
        return -1;
    if (ig_codec_format_parse(v, IG_FMT_CSV, &f) < 0) {
        snprintf(why, whylen,
                 "'%s' is not a format the gateway converts (text/csv, application/json, "
                 "application/jsonlines, application/x-recordio-protobuf, text/libsvm)",
                 v);
        return -1;
    }
    return 0;
}

/* The option of <table> called <name> (first <len> chars) that may be set
 * from <where> (CONFIG_IN_*), or NULL. On the command line, '-' in <name>
 * matches '_' in the table. */
static const struct config_opt *config_find(const struct config_opt *table, size_t n,
                                            const char *name, size_t len, unsigned where)
{
    for (size_t i = 0; i < n; i++) {
        const char *o = table[i].name;
        size_t k = 0;

        if (!(table[i].flags & where) || strlen(o) != len)
            continue;
        while (k < len &&
               (name[k] == o[k] || (where == CONFIG_IN_CLI && name[k] == '-' && o[k] == '_')))
            k++;
        if (k == len)
            return &table[i];
    }
    return NULL;
}

/* Set an integer option from trimmed <v>. */
static int config_set_int(const struct config_opt *o, void *field, const char *v, char *why,
                          size_t whylen)
{
    uint64_t n = 0;
    int rc = config_parse_uint(v, &n);

    if (rc == -1) {
        snprintf(why, whylen, "'%s' is not an integer", v);
        return IG_ERR_CONFIG;
    }
    if (rc == -2 || n < o->min || n > o->max) {
        snprintf(why, whylen, "%s is out of range %llu..%llu", v, (unsigned long long)o->min,
                 (unsigned long long)o->max);
        return IG_ERR_CONFIG;
    }
    if (o->type == CONFIG_U32)
        *(uint32_t *)field = (uint32_t)n;
    else
        *(uint64_t *)field = n;
    return 0;
}

/*
 * Set option <o> of the struct at <base> from <value> (NULL only for
 * CONFIG_FLAG), trimmed first. 0, or IG_ERR_CONFIG with the reason in <why>
 * (without the option's name: callers say where it came from).
 */
static int config_set(const struct config_opt *o, void *base, const char *value, char *why,
                      size_t whylen)
{
    void *field = (char *)base + o->offset;
    size_t len;
    char *v;
    int rc = 0, level;

    if (o->type == CONFIG_FLAG) {
        if (value != NULL) {
            snprintf(why, whylen, "takes no value");
            return IG_ERR_CONFIG;
        }
        *(int *)field = 1;
        return 0;
    }
    while (config_isspace(*value))
        value++;
    len = strlen(value);
    while (len > 0 && config_isspace(value[len - 1]))
        len--;
    if (len > IG_CONFIG_VALUE_MAX) {
        snprintf(why, whylen, "value too long (max %d bytes)", IG_CONFIG_VALUE_MAX);
        return IG_ERR_CONFIG;
    }
    v = ig_xstrndup(value, len);
    switch (o->type) {
    case CONFIG_STR:
        if (o->check != NULL && o->check(v, why, whylen) != 0) {
            rc = IG_ERR_CONFIG;
            break;
        }
        ig_free(field);
        *(char **)field = v; /* ownership moves to the struct */
        return 0;
    case CONFIG_U32:
    case CONFIG_U64:
        rc = config_set_int(o, field, v, why, whylen);
        break;
    case CONFIG_LEVEL:
        level = ig_log_level_parse(v);
        if (level < 0) {
            snprintf(why, whylen, "'%s' is not one of debug|info|warn|error", v);
            rc = IG_ERR_CONFIG;
        } else {
            *(int *)field = level;
        }
        break;
    case CONFIG_BOOL:
        if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0) {
            *(int *)field = 1;
        } else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0) {
            *(int *)field = 0;
        } else {
            snprintf(why, whylen, "'%s' is not one of on|off", v);
            rc = IG_ERR_CONFIG;
        }
        break;
    case CONFIG_FLAG:
        break;
    }
    free(v);
    return rc;
}

/* Apply the defaults of <table> to the struct at <base>. A failure is a bug
 * in the table, reported like any other error. */
static void config_defaults(struct config_load *st, const struct config_opt *table, size_t n,
                            void *base)
{
    char why[256];

    for (size_t i = 0; i < n && !st->failed; i++)
        if (table[i].def != NULL && config_set(&table[i], base, table[i].def, why, sizeof(why)))
            config_fail(st, "built-in default of %s: %s", table[i].name, why);
}

static void config_free_strings(const struct config_opt *table, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].type == CONFIG_STR)
            ig_free((char *)base + table[i].offset);
}

/* ---- the file ---------------------------------------------------------- */

static struct ig_endpoint_conf *config_cur_endpoint(struct config_load *st)
{
    if (st->section != CONFIG_SEC_ENDPOINT)
        return NULL;
    return &st->cfg->endpoints[st->cfg->nendpoints - 1];
}

static void config_resolve_model(const char *path, struct ig_endpoint_conf *ep);

/* Close the current section: an endpoint must have its required keys. */
static void config_section_end(struct config_load *st)
{
    struct ig_endpoint_conf *ep = config_cur_endpoint(st);

    if (ep == NULL)
        return;
    for (size_t i = 0; i < CONFIG_NENDPOINT; i++)
        if ((config_endpoint[i].flags & CONFIG_REQUIRED) && !(st->seen & (1ull << i)))
            config_fail(st, "%s:%d: [endpoint %s]: missing required key '%s'", st->path, ep->line,
                        ep->name, config_endpoint[i].name);
    if (!st->failed)
        config_resolve_model(st->path, ep);
}

/*
 * A relative file://PATH names a file next to the configuration, wherever
 * the gateway was started from: prefix it with the directory of <path>
 * (as given, so it stays relative to the working directory the gateway
 * keeps). file:///abs and other schemes are left alone.
 */
static void config_resolve_model(const char *path, struct ig_endpoint_conf *ep)
{
    const char *rel = ep->model + 7, *slash = strrchr(path, '/');
    size_t dlen, n;
    char *url;

    if (strncmp(ep->model, "file://", 7) != 0 || rel[0] == '/' || slash == NULL)
        return;
    dlen = (size_t)(slash - path) + 1; /* with the '/'; "/x.conf" gives "/" */
    n = 7 + dlen + strlen(rel) + 1;
    url = ig_xmalloc(n);
    snprintf(url, n, "file://%.*s%s", (int)dlen, path, rel);
    free(ep->model);
    ep->model = url;
}

/* Open [endpoint <name>] at the current line. */
static void config_endpoint_begin(struct config_load *st, const char *name)
{
    struct ig_config *cfg = st->cfg;
    const struct ig_endpoint_conf *dup = ig_config_endpoint(cfg, name);
    struct ig_endpoint_conf *ep;

    if (!ig_config_name_ok(name, strlen(name))) {
        config_fail(st,
                    "%s:%d: invalid endpoint name '%s' (1..63 letters, digits or '-', starting "
                    "and ending with a letter or digit)",
                    st->path, st->line, name);
        return;
    }
    if (dup != NULL) {
        config_fail(st, "%s:%d: duplicate [endpoint %s] (first at line %d)", st->path, st->line,
                    name, dup->line);
        return;
    }
    if (cfg->nendpoints == IG_CONFIG_MAX_ENDPOINTS) {
        config_fail(st, "%s:%d: too many endpoints (max %d)", st->path, st->line,
                    IG_CONFIG_MAX_ENDPOINTS);
        return;
    }
    cfg->endpoints = ig_xrealloc(cfg->endpoints, (cfg->nendpoints + 1) * sizeof(*ep));
    ep = &cfg->endpoints[cfg->nendpoints++];
    memset(ep, 0, sizeof(*ep));
    ep->name = ig_xstrdup(name);
    ep->line = st->line;
    st->section = CONFIG_SEC_ENDPOINT;
    st->seen = 0;
    config_defaults(st, config_endpoint, CONFIG_NENDPOINT, ep);
}

/* A "[<text>]" header at the current line. <text> is modified. */
static void config_section_begin(struct config_load *st, char *text)
{
    size_t len = strlen(text);

    config_section_end(st);
    if (st->failed)
        return;
    while (config_isspace(*text))
        text++, len--;
    while (len > 0 && config_isspace(text[len - 1]))
        text[--len] = '\0';
    if (strncmp(text, "endpoint", 8) == 0 && (text[8] == '\0' || config_isspace(text[8]))) {
        text += 8;
        while (config_isspace(*text))
            text++;
        config_endpoint_begin(st, text);
        return;
    }
    config_fail(st, "%s:%d: unknown section [%s]", st->path, st->line, text);
}

/*
 * If <line> is a section header, open the section. The name ends where
 * inih ends it: at the first ']', or at an inline comment (';' after
 * whitespace), in which case there is no header and inih reports the
 * syntax error.
 */
static void config_scan_header(struct config_load *st, const char *line)
{
    char text[IG_CONFIG_LINE_MAX];
    const char *p = line, *q;
    int was_space = 0;

    if (st->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (config_isspace(*p))
        p++;
    if (*p != '[')
        return;
    for (q = p + 1; *q && *q != ']' && !(was_space && *q == ';'); q++)
        was_space = config_isspace(*q);
    if (*q != ']' || (size_t)(q - p - 1) >= sizeof(text))
        return;
    memcpy(text, p + 1, (size_t)(q - p - 1));
    text[q - p - 1] = '\0';
    config_section_begin(st, text);
}

/* inih's reader: one line per call, so that st->line is the line inih is
 * working on when it calls config_on_key(). Returns NULL to stop. */
static char *config_on_line(char *str, int num, void *stream)
{
    struct config_load *st = stream;
    size_t len;

    if (st->failed)
        return NULL;
    if (fgets(str, num, st->fp) == NULL) {
        if (ferror(st->fp))
            st->read_errno = errno ? errno : EIO;
        return NULL;
    }
    st->line++;
    len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && !feof(st->fp)) {
        config_fail(st, "%s:%d: line too long (max %d characters)", st->path, st->line, num - 2);
        return NULL;
    }
    config_scan_header(st, str);
    return st->failed ? NULL : str;
}

/* Unknown key <name> in the current section, with a hint when it belongs
 * to the other one. */
static void config_unknown_key(struct config_load *st, const char *name)
{
    struct ig_endpoint_conf *ep = config_cur_endpoint(st);
    size_t len = strlen(name);

    if (ep == NULL)
        config_fail(st, "%s:%d: unknown key '%s' in the global section%s", st->path, st->line, name,
                    config_find(config_endpoint, CONFIG_NENDPOINT, name, len, CONFIG_IN_FILE)
                        ? " (an endpoint option: set it in an [endpoint NAME] section)"
                        : "");
    else
        config_fail(st, "%s:%d: unknown key '%s' in [endpoint %s]%s", st->path, st->line, name,
                    ep->name,
                    config_find(config_global, CONFIG_NGLOBAL, name, len, CONFIG_IN_FILE)
                        ? " (a global option: set it before the first section)"
                        : "");
}

/* inih's handler: one "name = value" of the current section. inih's
 * <section> is ignored (truncated at 49 chars); st->section is the truth. */
static int config_on_key(void *user, const char *section, const char *name, const char *value)
{
    struct config_load *st = user;
    struct ig_endpoint_conf *ep = config_cur_endpoint(st);
    const struct config_opt *table = ep ? config_endpoint : config_global;
    size_t n = ep ? CONFIG_NENDPOINT : CONFIG_NGLOBAL;
    const struct config_opt *o = config_find(table, n, name, strlen(name), CONFIG_IN_FILE);
    size_t i;
    char why[512];

    (void)section;
    if (st->failed)
        return 0;
    if (o == NULL) {
        config_unknown_key(st, name);
        return 0;
    }
    i = (size_t)(o - table);
    if (st->seen & (1ull << i)) {
        config_fail(st, "%s:%d: duplicate key '%s' (first at line %d)", st->path, st->line, name,
                    st->seen_line[i]);
        return 0;
    }
    st->seen |= 1ull << i;
    st->seen_line[i] = st->line;
    if (ep != NULL && o->offset == offsetof(struct ig_endpoint_conf, model))
        ep->model_line = st->line;
    if (config_set(o, ep ? (void *)ep : (void *)st->cfg, value, why, sizeof(why)) != 0) {
        config_fail(st, "%s:%d: %s: %s", st->path, st->line, name, why);
        return 0;
    }
    if (ep == NULL)
        snprintf(st->origin[i], CONFIG_ORIGIN_MAX, "%s:%d", st->path, st->line);
    return 1;
}

/* Our choices among inih's run-time knobs (a Debian build feature). */
static void config_ini_setup(void)
{
    ini_allow_multiline = false;    /* an indented line is a key, not a continuation */
    ini_stop_on_first_error = true; /* we report only the first */
    ini_allow_inline_comments = true;
    ini_allow_no_value = false;
    ini_use_stack = false; /* heap line buffer: lines up to IG_CONFIG_LINE_MAX */
    ini_allow_realloc = false;
    ini_max_line = IG_CONFIG_LINE_MAX;
    ini_initial_alloc = IG_CONFIG_LINE_MAX;
}

static void config_read_file(struct config_load *st, const char *path)
{
    int rc;

    st->path = path;
    st->fp = fopen(path, "r");
    if (st->fp == NULL) {
        config_fail(st, "%s: cannot open: %s", path, strerror(errno));
        return;
    }
    config_ini_setup();
    st->section = CONFIG_SEC_GLOBAL;
    st->seen = 0;
    rc = ini_parse_stream(config_on_line, st, config_on_key, st);
    if (rc > 0)
        config_fail(st, "%s:%d: syntax error: expected 'name = value', '[section]' or a comment",
                    path, rc);
    else if (rc == -2)
        config_fail(st, "%s: out of memory", path);
    if (st->read_errno != 0)
        config_fail(st, "%s: cannot read: %s", path, strerror(st->read_errno));
    config_section_end(st);
    fclose(st->fp);
    st->fp = NULL;
}

/* ---- environment and command line -------------------------------------- */

/* Options read before the file (not in it) when <meta>, else the others. */
static int config_in_pass(const struct config_opt *o, int meta)
{
    return meta == !(o->flags & CONFIG_IN_FILE);
}

/* The value of <var> in <envp>, or NULL. */
static const char *config_getenv(char **envp, const char *var)
{
    size_t n = strlen(var);

    for (; envp != NULL && *envp != NULL; envp++)
        if (strncmp(*envp, var, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static void config_env(struct config_load *st, char **envp, int meta)
{
    char var[96], why[512];

    for (size_t i = 0; i < CONFIG_NGLOBAL && !st->failed; i++) {
        const struct config_opt *o = &config_global[i];
        const char *v;

        if (!(o->flags & CONFIG_IN_ENV) || !config_in_pass(o, meta))
            continue;
        snprintf(var, sizeof(var), CONFIG_ENV_PREFIX "%s", o->name);
        for (size_t k = strlen(CONFIG_ENV_PREFIX); var[k]; k++)
            if (var[k] >= 'a' && var[k] <= 'z')
                var[k] = (char)(var[k] - 'a' + 'A');
        v = config_getenv(envp, var);
        if (v == NULL)
            continue;
        if (config_set(o, st->cfg, v, why, sizeof(why)) != 0)
            config_fail(st, "environment: %s: %s", var, why);
        else
            snprintf(st->origin[i], CONFIG_ORIGIN_MAX, "environment: %s", var);
    }
}

/* One pass over <argv>: every argument is checked, those of this pass
 * (config_in_pass) are applied. */
static void config_cli(struct config_load *st, int argc, char **argv, int meta)
{
    char why[512];

    for (int i = 1; i < argc && !st->failed; i++) {
        const char *arg = argv[i], *eq, *value = NULL;
        const struct config_opt *o;
        int n;

        if (strcmp(arg, "-h") == 0) /* the one short form: what people type first */
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0' || arg[2] == '=') {
            config_fail(st,
                        "command line: '%s': unexpected argument (use --NAME VALUE or "
                        "--NAME=VALUE)",
                        arg);
            return;
        }
        eq = strchr(arg, '=');
        n = eq ? (int)(eq - arg) : (int)strlen(arg); /* "--name" as written */
        o = config_find(config_global, CONFIG_NGLOBAL, arg + 2, (size_t)n - 2, CONFIG_IN_CLI);
        if (o == NULL) {
            config_fail(st, "command line: %.*s: unknown option", n, arg);
            return;
        }
        if (eq != NULL)
            value = eq + 1;
        else if (o->type != CONFIG_FLAG && i + 1 < argc)
            value = argv[++i];
        else if (o->type != CONFIG_FLAG) {
            config_fail(st, "command line: %.*s: missing value", n, arg);
            return;
        }
        if (!config_in_pass(o, meta))
            continue;
        if (config_set(o, st->cfg, value, why, sizeof(why)) != 0)
            config_fail(st, "command line: %.*s: %s", n, arg, why);
        else
            snprintf(st->origin[o - config_global], CONFIG_ORIGIN_MAX, "command line: %.*s", n,
                     arg);
    }
}

/* ---- checks across options --------------------------------------------- */

static const char *config_origin(struct config_load *st, const char *name)
{
    const struct config_opt *o =
        config_find(config_global, CONFIG_NGLOBAL, name, strlen(name), CONFIG_ANYWHERE);

    if (o == NULL || st->origin[o - config_global][0] == '\0')
        return "default";
    return st->origin[o - config_global];
}

/* HOST of a HOST:PORT listen value is loopback: 127.0.0.0/8, [::1] or
 * localhost (no name is resolved). */
static int config_listen_is_loopback(const char *v)
{
    const char *colon = strrchr(v, ':');
    char host[64];
    size_t n;
    struct in_addr a4;
    struct in6_addr a6;

    if (colon == NULL || (n = (size_t)(colon - v)) == 0 || n >= sizeof(host))
        return 0;
    memcpy(host, v, n);
    host[n] = '\0';
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host[n - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

/* The authentication options: admin_auth = off only when the admin API is
 * reachable from loopback alone; key and secret set together. (The keys
 * file, and "at least one key when admin_auth or data_auth is on", are
 * checked by ig_auth_new(), which --check-config must call.) */
static void config_check_auth(struct config_load *st)
{
    const struct ig_config *cfg = st->cfg;
    int ak = cfg->admin_access_key[0] != '\0', sk = cfg->admin_secret_key[0] != '\0';

    if (ak && !sk)
        config_fail(st,
                    "%s: admin_access_key is set but admin_secret_key is empty (set both or "
                    "neither)",
                    config_origin(st, "admin_access_key"));
    else if (sk && !ak)
        config_fail(st,
                    "%s: admin_secret_key is set but admin_access_key is empty (set both or "
                    "neither)",
                    config_origin(st, "admin_secret_key"));
    else if (!cfg->admin_auth && cfg->admin_listen[0] != '\0' &&
             !config_listen_is_loopback(cfg->admin_listen))
        config_fail(st,
                    "%s: admin_auth = off, but admin_listen '%s' is not a loopback address "
                    "(127.0.0.0/8, [::1], localhost): the admin API would be open to the "
                    "network; turn admin_auth on with a key, or listen on loopback",
                    config_origin(st, "admin_auth"), cfg->admin_listen);
    else if (!cfg->admin_auth && cfg->admin_on_main && !config_listen_is_loopback(cfg->listen))
        config_fail(st,
                    "%s: admin_auth = off, but the admin API is on the main listener "
                    "(admin_on_main = on) and listen '%s' is not a loopback address "
                    "(127.0.0.0/8, [::1], localhost): turn admin_auth on with a key, or set "
                    "admin_listen to a loopback address",
                    config_origin(st, "admin_auth"), cfg->listen);
}

/* What one endpoint's options say together. */
static void config_check_endpoints(struct config_load *st)
{
    const struct ig_config *cfg = st->cfg;

    for (size_t i = 0; i < cfg->nendpoints && !st->failed; i++) {
        const struct ig_endpoint_conf *ep = &cfg->endpoints[i];
        enum ig_format f;

        if ((ep->upstream_content_type[0] != '\0' || ep->upstream_accept[0] != '\0') &&
            strncmp(ep->model, "file://", 7) == 0)
            config_fail(st,
                        "%s:%d: endpoint %s: upstream_content_type and upstream_accept are for "
                        "remote models (http://, https://, sagemaker://); a file:// model reads "
                        "and writes every format",
                        cfg->config_path ? cfg->config_path : "(no file)", ep->line, ep->name);
        else if (ep->upstream_accept[0] != '\0' &&
                 ig_codec_format_parse(ep->upstream_accept, IG_FMT_CSV, &f) == 0 &&
                 f == IG_FMT_LIBSVM)
            config_fail(st,
                        "%s:%d: endpoint %s: upstream_accept: text/libsvm is a request format "
                        "only",
                        cfg->config_path ? cfg->config_path : "(no file)", ep->line, ep->name);
    }
}

static void config_check_all(struct config_load *st)
{
    const struct ig_config *cfg = st->cfg;
    int cert = cfg->tls_cert[0] != '\0', key = cfg->tls_key[0] != '\0';
    uint64_t share_min =
        cfg->max_body_bytes + (uint64_t)cfg->max_header_list_size + IG_HTTP_REQ_OVERHEAD;

    if (cert && !key)
        config_fail(st, "%s: tls_cert is set but tls_key is empty (set both or neither)",
                    config_origin(st, "tls_cert"));
    else if (key && !cert)
        config_fail(st, "%s: tls_key is set but tls_cert is empty (set both or neither)",
                    config_origin(st, "tls_key"));
    else if (cfg->max_buffered_body_bytes < cfg->max_body_bytes)
        /* A body between the two could never fit, yet would be told to
         * retry later, and SDKs would retry it for ever. */
        config_fail(st,
                    "%s: max_buffered_body_bytes (%llu) is below max_body_bytes (%llu): a "
                    "body between the two could never be taken",
                    config_origin(st, "max_buffered_body_bytes"),
                    (unsigned long long)cfg->max_buffered_body_bytes,
                    (unsigned long long)cfg->max_body_bytes);
    else if (cfg->max_conn_buffered_bytes < share_min &&
             strcmp(config_origin(st, "max_conn_buffered_bytes"), "default") == 0)
        /* the default share follows a max_body_bytes raised past it */
        st->cfg->max_conn_buffered_bytes = share_min;
    else if (cfg->max_conn_buffered_bytes < share_min)
        /* one request of the maximum size must fit in a connection's share */
        config_fail(st,
                    "%s: max_conn_buffered_bytes (%llu) is below max_body_bytes + "
                    "max_header_list_size + %u bytes of bookkeeping (%llu): a request of the "
                    "maximum size could never be taken",
                    config_origin(st, "max_conn_buffered_bytes"),
                    (unsigned long long)cfg->max_conn_buffered_bytes, IG_HTTP_REQ_OVERHEAD,
                    (unsigned long long)share_min);
}

/* ---- public API -------------------------------------------------------- */

int ig_config_load(struct ig_config *cfg, int argc, char **argv, char **envp, char *err,
                   size_t errlen)
{
    struct config_load *st = ig_xcalloc(1, sizeof(*st));
    int rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    if (errlen > 0)
        err[0] = '\0';
    st->cfg = cfg;
    st->err = err;
    st->errlen = errlen;

    /* Order matters: the options that are not in the file come first, as they
     * name the file; then file < environment < command line. */
    config_defaults(st, config_global, CONFIG_NGLOBAL, cfg);
    config_env(st, envp, 1);
    config_cli(st, argc, argv, 1);
    if (st->failed || cfg->help || cfg->version)
        goto out;
    if (cfg->config_path != NULL)
        config_read_file(st, cfg->config_path);
    config_env(st, envp, 0);
    config_cli(st, argc, argv, 0);
    if (!st->failed)
        config_check_all(st);
    if (!st->failed)
        config_check_auth(st);
    if (!st->failed)
        config_check_endpoints(st);
out:
    if (st->failed) {
        ig_config_clear(cfg);
        rc = IG_ERR_CONFIG;
    } else {
        cfg->origins = ig_xmalloc(sizeof(st->origin));
        memcpy(cfg->origins, st->origin, sizeof(st->origin));
    }
    free(st);
    return rc;
}

void ig_config_clear(struct ig_config *cfg)
{
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        ig_free(&cfg->endpoints[i].name);
        config_free_strings(config_endpoint, CONFIG_NENDPOINT, &cfg->endpoints[i]);
    }
    free(cfg->endpoints);
    free(cfg->origins);
    config_free_strings(config_global, CONFIG_NGLOBAL, cfg);
    memset(cfg, 0, sizeof(*cfg));
}

const char *ig_config_where(const struct ig_config *cfg, const char *name, char *buf,
                            size_t len)
{
    const struct config_opt *o =
        config_find(config_global, CONFIG_NGLOBAL, name, strlen(name), CONFIG_ANYWHERE);
    const char *origin = NULL;

    if (o != NULL && cfg->origins != NULL)
        origin = cfg->origins + (size_t)(o - config_global) * CONFIG_ORIGIN_MAX;
    if (origin == NULL || origin[0] == '\0')
        snprintf(buf, len, "default: %s", name);
    else if (strncmp(origin, "environment: ", 13) == 0 || strncmp(origin, "command line: ", 14) == 0)
        snprintf(buf, len, "%s", origin); /* names the option already */
    else
        snprintf(buf, len, "%s: %s", origin, name);
    return buf;
}

const char *ig_config_endpoint_where(const struct ig_config *cfg,
                                     const struct ig_endpoint_conf *ep, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%d: model", cfg->config_path ? cfg->config_path : "(no file)",
             ep->model_line);
    return buf;
}

const struct ig_endpoint_conf *ig_config_endpoint(const struct ig_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nendpoints; i++)
        if (strcmp(cfg->endpoints[i].name, name) == 0)
            return &cfg->endpoints[i];
    return NULL;
}

/* One option of the --help text: "  --name ARG" (or "  name = ARG" for
 * file-only options), its limits and default, then the help line. */
static void config_usage_opt(FILE *out, const struct config_opt *o)
{
    char head[96], props[160] = "";
    size_t n = 0;

    if (o->flags & CONFIG_IN_CLI)
        snprintf(head, sizeof(head), "--%s%s%s", o->name, o->arg[0] ? " " : "", o->arg);
    else
        snprintf(head, sizeof(head), "%s = %s", o->name, o->arg);
    if (o->type == CONFIG_U32 || o->type == CONFIG_U64)
        n += (size_t)snprintf(props + n, sizeof(props) - n, "%llu..%llu, ",
                              (unsigned long long)o->min, (unsigned long long)o->max);
    else if (o->type == CONFIG_LEVEL)
        n += (size_t)snprintf(props + n, sizeof(props) - n, "debug|info|warn|error, ");
    else if (o->type == CONFIG_BOOL)
        n += (size_t)snprintf(props + n, sizeof(props) - n, "on|off, ");
    if (o->flags & CONFIG_REQUIRED)
        n += (size_t)snprintf(props + n, sizeof(props) - n, "required");
    else if (o->def != NULL)
        n += (size_t)snprintf(props + n, sizeof(props) - n,
                              o->type == CONFIG_STR ? "default \"%s\"" : "default %s", o->def);
    if (o->flags & CONFIG_RELOADABLE)
        snprintf(props + n, sizeof(props) - n, ", reloadable");
    if (props[0] != '\0')
        fprintf(out, "  %-30s %s\n", head, props);
    else
        fprintf(out, "  %s\n", head);
    fprintf(out, "      %s\n", o->help);
}

void ig_config_usage(FILE *out)
{
    fputs("Usage: infergate [--config FILE] [--check-config] [--NAME VALUE]...\n"
          "       infergate --help | -h | --version\n"
          "\n"
          "Each option is taken from, in rising priority: its default, the INI file\n"
          "(\"name = value\"), the environment (INFERGATE_<NAME>, upper case), the command\n"
          "line (--name VALUE or --name=VALUE; '-' and '_' are interchangeable there).\n"
          "Endpoint options exist only in the file. Integers are plain decimal.\n"
          "Units: BYTES in bytes, MS in milliseconds, US in microseconds.\n"
          "Reloadable options may change while running (they apply to new work).\n"
          "\nCommand line and environment only:\n",
          out);
    for (size_t i = 0; i < CONFIG_NGLOBAL; i++)
        if (!(config_global[i].flags & CONFIG_IN_FILE))
            config_usage_opt(out, &config_global[i]);
    fputs("\nGlobal options (file: before the first section):\n", out);
    for (size_t i = 0; i < CONFIG_NGLOBAL; i++)
        if (config_global[i].flags & CONFIG_IN_FILE)
            config_usage_opt(out, &config_global[i]);
    fputs("\nEndpoint options (file only, in [endpoint NAME] sections; NAME is 1..63\n"
          "letters, digits or '-', starting and ending with a letter or digit):\n",
          out);
    for (size_t i = 0; i < CONFIG_NENDPOINT; i++)
        config_usage_opt(out, &config_endpoint[i]);
}

/* ---- endpoints made at run time (the admin API's) ---------------------- */

int ig_config_endpoint_new(const char *name, const char *variant, const char *model,
                           struct ig_endpoint_conf **out, char *err, size_t errlen)
{
    struct ig_config tmp = {0};
    struct config_load st = {.cfg = &tmp, .path = "admin", .err = err, .errlen = errlen};
    struct ig_endpoint_conf *ep = ig_xcalloc(1, sizeof(*ep));

    *out = NULL;
    config_defaults(&st, config_endpoint, CONFIG_NENDPOINT, ep);
    if (st.failed) {
        ig_config_endpoint_free(ep);
        return IG_ERR_CONFIG;
    }
    free(ep->name);
    free(ep->model);
    free(ep->variant);
    ep->name = ig_xstrdup(name);
    ep->model = ig_xstrdup(model);
    ep->variant = ig_xstrdup(variant);
    *out = ep;
    return 0;
}

void ig_config_endpoint_free(struct ig_endpoint_conf *ep)
{
    if (ep == NULL)
        return;
    config_free_strings(config_endpoint, CONFIG_NENDPOINT, ep);
    free(ep->name); /* the section's name: not in the table */
    free(ep);
}

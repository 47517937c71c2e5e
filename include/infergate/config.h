/*
 * config.h - the gateway configuration: one declarative table of options
 * per section (global, and [endpoint NAME]), filled from built-in defaults,
 * then an INI file, then INFERGATE_<NAME> environment variables, then the
 * command line; later sources win.
 *
 * The tables live in src/config.c and are the only place that knows option
 * names, types, defaults, limits and help. main.c only calls
 * ig_config_load(); every other module reads the filled structs below.
 */
#ifndef INFERGATE_CONFIG_H
#define INFERGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IG_CONFIG_NAME_MAX 63        /* endpoint and variant names, in chars */
#define IG_CONFIG_MAX_ENDPOINTS 1024 /* [endpoint] sections per file */
#define IG_CONFIG_LINE_MAX 4096      /* longest line of the file, newline included */
#define IG_CONFIG_VALUE_MAX 4095     /* longest string value from any source */

/* One [endpoint NAME] section. Strings are owned by the enclosing config. */
struct ig_endpoint_conf {
    char *name;    /* 1..63 chars of ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ */
    char *model;   /* required: file://PATH | http://HOST[:PORT][/..] | https://HOST[:PORT][/..]
                      | sagemaker://REGION/ENDPOINT */
    char *variant; /* "AllTraffic"; same pattern as <name> */
    char *content_type;          /* "text/csv": when a request has no Content-Type */
    char *accept;                /* "application/json": when Accept is absent or * / * */
    uint32_t libsvm_index_base;  /* 0 or 1: text/libsvm column index of the first feature */
    char *upstream_content_type; /* "": the client's; else rows are converted to it (remote) */
    char *upstream_accept;       /* "": the client's; else asked of the model and converted */
    uint32_t feature_dim;        /* 0: unknown; sparse -> dense conversions need it */
    uint32_t max_batch_rows;     /* 256, 1..1000000 rows per upstream call */
    uint64_t max_batch_bytes;    /* 6291456, 1..67108864 bytes per upstream call */
    uint64_t max_delay_us;       /* 2000, 0..10000000: oldest row's longest wait */
    uint32_t max_inflight;       /* 8, 1..1024 concurrent upstream calls */
    uint32_t max_queue_rows;     /* 16777216, 1..268435456 rows waiting per endpoint */
    uint64_t request_timeout_ms; /* 60000, 1..3600000: per-request deadline */
    /* Remote upstreams (http(s):// container, sagemaker://) only. */
    char *endpoint_url;          /* "": https://runtime.sagemaker.REGION.amazonaws.com */
    int upstream_http2;          /* off: HTTP/1.1 keep-alive pool; on: h2 (h2c prior knowledge) */
    uint64_t upstream_timeout_ms; /* 60000, 1..3600000: one upstream call */
    uint32_t retry_max;          /* 3, 0..10: retries of one call (throttling, 5xx, connection) */
    uint32_t retry_budget_pct;   /* 10, 0..100: retries per 100 calls at most (over a window) */
    uint64_t retry_base_ms;      /* 25, 1..60000: first backoff cap (full jitter, doubling) */
    uint64_t retry_max_ms;       /* 2000, 1..600000: backoff cap */
    uint32_t breaker_failures;   /* 5, 1..1000: consecutive failed calls that open the breaker */
    uint64_t breaker_open_ms;    /* 5000, 1..3600000: open this long, then one probe */
    int line;                    /* line of the [endpoint] header in the file */
    int model_line;              /* line of its model key */
};

struct ig_config {
    char *config_path;        /* NULL when no file was read */
    int check_only;           /* --check-config given: validate and exit */
    int help;                 /* --help or -h given: print ig_config_usage() and exit 0 */
    int version;              /* --version given: print the version and exit 0 */
    char *listen;             /* "127.0.0.1:8080"; HOST:PORT, HOST may be [v6]; port 0 = any */
    char *admin_listen;       /* "" = no admin listener (admin_on_main: on the main one) */
    int admin_on_main;        /* 0 (off, default) or 1: the admin API on the main listener too */
    int admin_auth;           /* 1 (on, default): admin requests must carry a valid SigV4
                                 signature; off only when every listener serving the admin API
                                 is loopback (127.0.0.0/8, [::1], localhost) */
    char *admin_access_key;   /* "" = none; admin_access_key and admin_secret_key both set or
                                 both "" */
    char *admin_secret_key;   /* the secret of admin_access_key (prefer admin_keys_file) */
    char *admin_keys_file;    /* "" = none; lines "ACCESS_KEY SECRET [SESSION_TOKEN]", '#'
                                 comments; read by ig_auth_new() (src/auth.c): at most 1000
                                 keys, 4096-byte lines */
    int data_auth;            /* 0 (off, default) or 1: InvokeEndpoint is verified too, against
                                 the same keys */
    char *admin_exec_dirs;    /* "": no file:// image may run; else DIR[:DIR...] whose
                                 programs may (after symlinks are resolved) */
    uint32_t auth_skew_s;     /* 300, 1..3600: X-Amz-Date may differ from our clock this much */
    char *data_dir;           /* "./var" */
    char *redis_url;          /* "" = embedded redis-server */
    char *tls_cert;           /* "" = cleartext; tls_cert and tls_key both set or both "" */
    char *tls_key;            /* PEM private key file */
    int log_level;            /* IG_LOG_*, from debug|info|warn|error; default info */
    int access_log;           /* 0 (off, default) or 1: a JSON line per request (ig_log_access) */
    uint32_t workers;         /* 0 = number of CPUs; 0..256 */
    uint32_t max_connections; /* 4096, 1..1000000 */
    uint32_t max_concurrent_streams;    /* 128, 1..100000 (HTTP/2, per connection) */
    uint32_t max_header_list_size;      /* 65536, 1024..1048576 bytes */
    uint64_t max_body_bytes;            /* 6291456 (SageMaker's limit), 1..67108864 */
    uint64_t max_buffered_body_bytes;   /* 1073741824, 1048576..68719476736: the server-wide
                                           budget, bytes held for clients at once */
    uint64_t max_conn_buffered_bytes;   /* 67108864, 1048576..68719476736: each connection's
                                           share; at least max_body_bytes + max_header_list_size */
    uint64_t min_rate_bytes;            /* 4096, 1..67108864: bytes a body or held-back response
                                           must move per idle_timeout_ms period */
    uint64_t idle_timeout_ms;           /* 60000, 100..86400000 */
    uint64_t header_timeout_ms;         /* 10000, 100..3600000 */
    uint64_t drain_timeout_ms;          /* 30000, 0..3600000 */
    struct ig_endpoint_conf *endpoints; /* in file order */
    size_t nendpoints;
    char *origins; /* private to config.c: where each global option was set (ig_config_where) */
};

/*
 * Fill <cfg> (its previous contents are ignored, not freed): built-in
 * defaults, then the INI file named by --config FILE or INFERGATE_CONFIG,
 * then INFERGATE_<NAME> environment variables taken from <envp> (a
 * NULL-terminated "NAME=VALUE" array; global options only; unknown
 * INFERGATE_* variables are ignored), then the command line <argv>[1..argc)
 * as `--<name> <value>` or `--<name>=<value>` (global options only; '-' and
 * '_' are interchangeable in names there). Later sources win. Also
 * --config FILE, --check-config (sets check_only), --help or -h (sets help)
 * and --version (sets version); the last two return at once, without
 * reading the file.
 *
 * File keys are exactly the option names. Integers are plain decimal (no
 * sign, no suffix); strings are trimmed. A key may appear once per section.
 * Endpoint options exist only in the file. A relative file://PATH model is
 * taken relative to the directory of the configuration file: its model
 * string is rewritten to "file://DIR/PATH", DIR as the file was named
 * (file://models/m.json in conf/infergate.conf becomes
 * file://conf/models/m.json).
 *
 * Note: sets inih's process-wide knobs (no multi-line values, stop on the
 * first error, heap line buffer of IG_CONFIG_LINE_MAX bytes); nothing else
 * in the gateway uses inih.
 *
 * Returns 0, and the caller owns <cfg> and frees it with ig_config_clear().
 * Returns IG_ERR_CONFIG with a one-line message in <err> (truncated to
 * <errlen>) naming where: "FILE:LINE: ...", "FILE: cannot open: ...",
 * "environment: INFERGATE_X: ...", "command line: --x: ..."; <cfg> is then
 * already cleared (ig_config_clear() on it is harmless).
 */
int ig_config_load(struct ig_config *cfg, int argc, char **argv, char **envp, char *err,
                   size_t errlen);

/* Free everything <cfg> owns and zero it. Accepts a zeroed struct. */
void ig_config_clear(struct ig_config *cfg);

/* Print every option with its type, default, range, reloadability and help,
 * generated from the tables, to <out>. */
void ig_config_usage(FILE *out);

/*
 * Where global option <name> took its value, for messages about it written
 * after loading (a listen address that does not resolve, a certificate that
 * does not load): "FILE:LINE: name", "environment: INFERGATE_NAME",
 * "command line: --name" (as typed), or "default: name". Written into
 * <buf> (cut to <len>), which is returned.
 */
const char *ig_config_where(const struct ig_config *cfg, const char *name, char *buf,
                            size_t len);
/* The same for the model key of endpoint <ep>: "FILE:LINE: model". */
const char *ig_config_endpoint_where(const struct ig_config *cfg,
                                     const struct ig_endpoint_conf *ep, char *buf, size_t len);

/* ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$, 1..IG_CONFIG_NAME_MAX chars: SageMaker's
 * rule for endpoint and variant names (<len> bytes of <s>). */
int ig_config_name_ok(const char *s, size_t len);

/* The endpoint named <name>, or NULL. The result points into <cfg>. */
const struct ig_endpoint_conf *ig_config_endpoint(const struct ig_config *cfg, const char *name);

/*
 * An endpoint section made at run time (an admin API endpoint's variant):
 * the [endpoint] defaults, with <name>, <variant> and <model> copied.
 * Freed with ig_config_endpoint_free. Returns 0 or IG_ERR_CONFIG (a bug in
 * the defaults table) with <err>.
 */
int ig_config_endpoint_new(const char *name, const char *variant, const char *model,
                           struct ig_endpoint_conf **out, char *err, size_t errlen);
void ig_config_endpoint_free(struct ig_endpoint_conf *ep);

#endif /* INFERGATE_CONFIG_H */

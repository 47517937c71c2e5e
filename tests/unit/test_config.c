/*
 * test_config.c - the configuration loader: defaults, the shipped file,
 * source priority, command-line forms, and every error message, exactly.
 *
 * Run from the repository root (the shipped conf/infergate.conf is read by
 * its relative path). Other files are written to a fresh temp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the headers it needs */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infergate/common.h"
#include "infergate/config.h"

#define MAX_ARGS 16

static char tmpdir[64];
static char *no_env[] = {NULL};

/* Write <text> to <tmpdir>/<name>; the full path goes to <path>. */
static void write_file(const char *name, const char *text, char *path, size_t pathlen)
{
    FILE *f;

    snprintf(path, pathlen, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* ig_config_load with argv = {"infergate", the NULL-terminated args...}. */
static int load(struct ig_config *cfg, char **envp, char *err, size_t errlen, ...)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    const char *a;
    va_list ap;

    argv[argc++] = (char *)"infergate";
    va_start(ap, errlen);
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(argc <= MAX_ARGS);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return ig_config_load(cfg, argc, argv, envp, err, errlen);
}

/* Load file <text> and expect success. */
static void load_text_ok(struct ig_config *cfg, const char *text)
{
    char path[128], err[512];

    write_file("ok.conf", text, path, sizeof(path));
    if (load(cfg, no_env, err, sizeof(err), "--config", path, NULL) != 0)
        fail_msg("unexpected error: %s", err);
}

/* Load file <text> and expect exactly "<path><suffix>" as the error. */
static void expect_file_error(const char *text, const char *suffix)
{
    struct ig_config cfg;
    char path[128], err[8192], want[8192];

    write_file("bad.conf", text, path, sizeof(path));
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), IG_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s%s", path, suffix);
    assert_string_equal(err, want);
    /* a failed load leaves the struct cleared */
    assert_null(cfg.listen);
    assert_null(cfg.endpoints);
    assert_int_equal(cfg.nendpoints, 0);
    ig_config_clear(&cfg);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    static const char *const files[] = {"ok.conf", "bad.conf", "a.conf", "b.conf"};
    char path[128];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(files); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

static void assert_global_defaults(const struct ig_config *cfg)
{
    assert_string_equal(cfg->listen, "127.0.0.1:8080");
    assert_string_equal(cfg->admin_listen, "");
    assert_string_equal(cfg->data_dir, "./var");
    assert_string_equal(cfg->redis_url, "");
    assert_string_equal(cfg->tls_cert, "");
    assert_string_equal(cfg->tls_key, "");
    assert_int_equal(cfg->log_level, IG_LOG_INFO);
    assert_int_equal(cfg->access_log, 0);
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->max_connections, 4096);
    assert_int_equal(cfg->max_concurrent_streams, 128);
    assert_int_equal(cfg->max_header_list_size, 65536);
    assert_int_equal(cfg->max_body_bytes, 6291456);
    assert_int_equal(cfg->max_buffered_body_bytes, 1073741824);
    assert_int_equal(cfg->idle_timeout_ms, 60000);
    assert_int_equal(cfg->header_timeout_ms, 10000);
    assert_int_equal(cfg->drain_timeout_ms, 30000);
}

static void assert_endpoint_defaults(const struct ig_endpoint_conf *ep)
{
    assert_string_equal(ep->variant, "AllTraffic");
    assert_string_equal(ep->content_type, "text/csv");
    assert_string_equal(ep->accept, "application/json");
    assert_int_equal(ep->max_batch_rows, 256);
    assert_int_equal(ep->max_batch_bytes, 6291456);
    assert_int_equal(ep->max_delay_us, 2000);
    assert_int_equal(ep->max_inflight, 8);
    assert_int_equal(ep->max_queue_rows, 16777216);
    assert_int_equal(ep->request_timeout_ms, 60000);
}

/* ---- successful loads -------------------------------------------------- */

static void test_defaults(void **state)
{
    struct ig_config cfg;
    char err[256];

    (void)state;
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), NULL), 0);
    assert_string_equal(err, "");
    assert_null(cfg.config_path);
    assert_int_equal(cfg.check_only, 0);
    assert_int_equal(cfg.help, 0);
    assert_global_defaults(&cfg);
    assert_null(cfg.endpoints);
    assert_int_equal(cfg.nendpoints, 0);
    assert_null(ig_config_endpoint(&cfg, "demo"));
    ig_config_clear(&cfg);
    assert_null(cfg.listen);
    ig_config_clear(&cfg); /* twice is harmless */
}

/* The line number of the first line of <path> that starts with <prefix>. */
static int line_of(const char *path, const char *prefix)
{
    char line[512];
    int n = 0;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        n++;
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            fclose(f);
            return n;
        }
    }
    fclose(f);
    return -1;
}

static void test_shipped_conf(void **state)
{
    struct ig_config cfg;
    const struct ig_endpoint_conf *ep;
    char err[512];

    (void)state;
    if (load(&cfg, no_env, err, sizeof(err), "--config", "conf/infergate.conf", NULL) != 0)
        fail_msg("conf/infergate.conf: %s", err);
    assert_string_equal(cfg.config_path, "conf/infergate.conf");
    /* the template sets only defaults, but for the admin API of `make run`
     * on loopback (without keys: loopback only) */
    assert_string_equal(cfg.admin_listen, "127.0.0.1:8081");
    assert_int_equal(cfg.admin_auth, 0);
    free(cfg.admin_listen);
    cfg.admin_listen = ig_xstrdup("");
    cfg.admin_auth = 1;
    assert_global_defaults(&cfg);
    assert_int_equal(cfg.nendpoints, 1);
    ep = ig_config_endpoint(&cfg, "demo");
    assert_ptr_equal(ep, &cfg.endpoints[0]);
    assert_string_equal(ep->name, "demo");
    assert_string_equal(ep->model, "file://conf/models/demo-kmeans.json");
    assert_endpoint_defaults(ep);
    assert_int_equal(ep->line, line_of("conf/infergate.conf", "[endpoint demo]"));
    ig_config_clear(&cfg);
}

static void test_endpoint_defaults(void **state)
{
    struct ig_config cfg;

    (void)state;
    load_text_ok(&cfg, "; comment\n[endpoint e1]\nmodel = http://127.0.0.1:9000\n");
    assert_int_equal(cfg.nendpoints, 1);
    assert_string_equal(cfg.endpoints[0].name, "e1");
    assert_string_equal(cfg.endpoints[0].model, "http://127.0.0.1:9000");
    assert_int_equal(cfg.endpoints[0].line, 2);
    assert_endpoint_defaults(&cfg.endpoints[0]);
    assert_global_defaults(&cfg);
    ig_config_clear(&cfg);
}

static void test_every_option_from_file(void **state)
{
    struct ig_config cfg;
    const struct ig_endpoint_conf *a, *b;

    (void)state;
    load_text_ok(&cfg, "listen = [::1]:0 ; v6, any port\n"
                       "admin_listen = localhost:65535\n"
                       "data_dir = /srv/ig\n"
                       "redis_url =   ; empty: embedded\n"
                       "tls_cert = /etc/c.pem\n"
                       "tls_key = /etc/k.pem\n"
                       "log_level = debug\n"
                       "access_log = on\n"
                       "workers = 256\n"
                       "max_connections = 1000000\n"
                       "max_concurrent_streams = 1\n"
                       "max_header_list_size = 1024\n"
                       "max_body_bytes = 67108864\n"
                       "max_buffered_body_bytes = 68719476736\n"
                       "idle_timeout_ms = 100\n"
                       "header_timeout_ms = 3600000\n"
                       "drain_timeout_ms = 0\n"
                       "\n"
                       "[endpoint A-1]\n"
                       "model = sagemaker://us-east-1/my--endpoint\n"
                       "variant = Variant-2\n"
                       "content_type = application/jsonlines\n"
                       "accept = text/csv;charset=utf-8\n"
                       "max_batch_rows = 1000000\n"
                       "max_batch_bytes = 1\n"
                       "max_delay_us = 0\n"
                       "max_inflight = 1024\n"
                       "max_queue_rows = 16777216\n"
                       "request_timeout_ms = 3600000\n"
                       "[endpoint b]\n"
                       "model = https://runtime.example.com/x/y\n");
    assert_string_equal(cfg.listen, "[::1]:0");
    assert_string_equal(cfg.admin_listen, "localhost:65535");
    assert_string_equal(cfg.data_dir, "/srv/ig");
    assert_string_equal(cfg.redis_url, "");
    assert_string_equal(cfg.tls_cert, "/etc/c.pem");
    assert_string_equal(cfg.tls_key, "/etc/k.pem");
    assert_int_equal(cfg.log_level, IG_LOG_DEBUG);
    assert_int_equal(cfg.access_log, 1);
    assert_int_equal(cfg.workers, 256);
    assert_int_equal(cfg.max_connections, 1000000);
    assert_int_equal(cfg.max_concurrent_streams, 1);
    assert_int_equal(cfg.max_header_list_size, 1024);
    assert_int_equal(cfg.max_body_bytes, 67108864);
    assert_int_equal(cfg.max_buffered_body_bytes, 68719476736ull);
    assert_int_equal(cfg.idle_timeout_ms, 100);
    assert_int_equal(cfg.header_timeout_ms, 3600000);
    assert_int_equal(cfg.drain_timeout_ms, 0);
    assert_int_equal(cfg.nendpoints, 2);
    a = ig_config_endpoint(&cfg, "A-1");
    b = ig_config_endpoint(&cfg, "b");
    assert_ptr_equal(a, &cfg.endpoints[0]);
    assert_ptr_equal(b, &cfg.endpoints[1]);
    assert_null(ig_config_endpoint(&cfg, "a-1"));
    assert_string_equal(a->model, "sagemaker://us-east-1/my--endpoint");
    assert_string_equal(a->variant, "Variant-2");
    assert_string_equal(a->content_type, "application/jsonlines");
    assert_string_equal(a->accept, "text/csv;charset=utf-8");
    assert_int_equal(a->max_batch_rows, 1000000);
    assert_int_equal(a->max_batch_bytes, 1);
    assert_int_equal(a->max_delay_us, 0);
    assert_int_equal(a->max_inflight, 1024);
    assert_int_equal(a->max_queue_rows, 16777216);
    assert_int_equal(a->request_timeout_ms, 3600000);
    assert_int_equal(a->line, 19);
    assert_string_equal(b->model, "https://runtime.example.com/x/y");
    assert_int_equal(b->line, 30);
    assert_endpoint_defaults(b);
    ig_config_clear(&cfg);
}

/* BOM, CRLF, indentation (no multi-line values), '#' comments, leading
 * zeros, an endpoint name longer than inih's 49-char section buffer. */
static void test_file_syntax(void **state)
{
    static const char name63[] = "a23456789012345678901234567890123456789012345678901234567890123";
    struct ig_config cfg;
    char text[512];

    (void)state;
    snprintf(text, sizeof(text),
             "\xEF\xBB\xBFworkers = 007\r\n"
             "# hash comment\r\n"
             "[endpoint %s]\r\n"
             "model = file:///abs/model.tar.gz\r\n"
             "    max_inflight = 3\r\n"
             "  [endpoint x]  ; indented header\n"
             "model=http://[::1]:8080/inv\n",
             name63);
    load_text_ok(&cfg, text);
    assert_int_equal(cfg.workers, 7);
    assert_int_equal(cfg.nendpoints, 2);
    assert_string_equal(cfg.endpoints[0].name, name63);
    assert_string_equal(cfg.endpoints[0].model, "file:///abs/model.tar.gz");
    assert_int_equal(cfg.endpoints[0].max_inflight, 3);
    assert_int_equal(cfg.endpoints[0].line, 3);
    assert_string_equal(cfg.endpoints[1].name, "x");
    assert_string_equal(cfg.endpoints[1].model, "http://[::1]:8080/inv");
    assert_int_equal(cfg.endpoints[1].line, 6);
    ig_config_clear(&cfg);

    /* a header whose name holds an inline comment is not a header */
    expect_file_error("[endpoint ;x]\n",
                      ":1: syntax error: expected 'name = value', '[section]' or a comment");
}

static void test_env_overrides_file_cli_overrides_env(void **state)
{
    struct ig_config cfg;
    char path[128], err[512];
    char *env[] = {(char *)"INFERGATE_WORKERS=3", (char *)"INFERGATE_LISTEN= 10.0.0.1:81 ",
                   (char *)"INFERGATE_LOG_LEVEL=warn", NULL};

    (void)state;
    write_file("a.conf", "workers = 2\nlisten = 10.0.0.1:80\ndata_dir = /from/file\n", path,
               sizeof(path));

    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.workers, 2);
    assert_string_equal(cfg.listen, "10.0.0.1:80");
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.workers, 3);
    assert_string_equal(cfg.listen, "10.0.0.1:81"); /* trimmed */
    assert_int_equal(cfg.log_level, IG_LOG_WARN);
    assert_string_equal(cfg.data_dir, "/from/file");
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, env, err, sizeof(err), "--workers", "4", "--config", path,
                          "--listen=10.0.0.1:82", NULL),
                     0);
    assert_int_equal(cfg.workers, 4);
    assert_string_equal(cfg.listen, "10.0.0.1:82");
    assert_int_equal(cfg.log_level, IG_LOG_WARN);
    assert_string_equal(cfg.data_dir, "/from/file");
    ig_config_clear(&cfg);
}

/* max_buffered_body_bytes from each source, its bounds accepted; beyond
 * 32 bits (64 GiB) it is kept whole. */
static void test_max_buffered_body_bytes_sources(void **state)
{
    struct ig_config cfg;
    char path[128], err[512];
    char *env[] = {(char *)"INFERGATE_MAX_BUFFERED_BODY_BYTES= 2097152 ",
                   (char *)"INFERGATE_MAX_BODY_BYTES=1048576", NULL};
    char *env_min[] = {(char *)"INFERGATE_MAX_BUFFERED_BODY_BYTES=1048576",
                       (char *)"INFERGATE_MAX_BODY_BYTES=1048576", NULL};
    char *env_below[] = {(char *)"INFERGATE_MAX_BUFFERED_BODY_BYTES=2097152", NULL};

    (void)state;
    write_file("a.conf", "max_buffered_body_bytes = 68719476736\n", path, sizeof(path));
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.max_buffered_body_bytes, 68719476736ull);
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.max_buffered_body_bytes, 2097152); /* env over file, trimmed */
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, env_min, err, sizeof(err), NULL), 0);
    assert_int_equal(cfg.max_buffered_body_bytes, 1048576);
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, env, err, sizeof(err), "--config", path,
                          "--max-buffered-body-bytes=3145728", NULL),
                     0);
    assert_int_equal(cfg.max_buffered_body_bytes, 3145728); /* command line over env */
    ig_config_clear(&cfg);

    /* Below max_body_bytes (6 MiB by default) a body could never fit. */
    assert_int_equal(load(&cfg, env_below, err, sizeof(err), NULL), IG_ERR_CONFIG);
    assert_string_equal(err, "environment: INFERGATE_MAX_BUFFERED_BODY_BYTES: "
                             "max_buffered_body_bytes (2097152) is below max_body_bytes "
                             "(6291456): a body between the two could never be taken");
}

static void test_config_path_sources(void **state)
{
    struct ig_config cfg;
    char a[128], b[128], envvar[160], err[512];
    char *env[] = {envvar, NULL};

    (void)state;
    write_file("a.conf", "workers = 1\n", a, sizeof(a));
    write_file("b.conf", "workers = 2\n", b, sizeof(b));
    snprintf(envvar, sizeof(envvar), "INFERGATE_CONFIG=%s", a);

    assert_int_equal(load(&cfg, env, err, sizeof(err), NULL), 0);
    assert_string_equal(cfg.config_path, a);
    assert_int_equal(cfg.workers, 1);
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, env, err, sizeof(err), "--config", b, NULL), 0);
    assert_string_equal(cfg.config_path, b);
    assert_int_equal(cfg.workers, 2);
    ig_config_clear(&cfg);

    /* the last --config wins */
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", a, "--config", b, NULL), 0);
    assert_string_equal(cfg.config_path, b);
    ig_config_clear(&cfg);
}

static void test_cli_forms(void **state)
{
    struct ig_config cfg;
    char err[512];

    (void)state;
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--workers", "5", "--max_body_bytes=100",
                          "--max-connections", "7", "--idle-timeout-ms=200",
                          "--redis_url=", "--data_dir=  /x y  ", "--admin_listen", "--x", NULL),
                     IG_ERR_CONFIG);
    /* a value is taken verbatim, even when it looks like an option */
    assert_string_equal(err, "command line: --admin_listen: '--x' is not HOST:PORT (HOST a name, "
                             "IPv4 address or [IPv6] address; PORT 0..65535)");

    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--workers", "5", "--max_body_bytes=100",
                          "--max-connections", "7", "--idle-timeout-ms=200", "--redis_url=",
                          "--data_dir=  /x y  ", "--workers=6", "--log-level", "error", NULL),
                     0);
    assert_int_equal(cfg.workers, 6); /* later wins */
    assert_int_equal(cfg.max_body_bytes, 100);
    assert_int_equal(cfg.max_connections, 7);
    assert_int_equal(cfg.idle_timeout_ms, 200);
    assert_string_equal(cfg.redis_url, "");
    assert_string_equal(cfg.data_dir, "/x y");
    assert_int_equal(cfg.log_level, IG_LOG_ERROR);
    assert_int_equal(cfg.check_only, 0);
    ig_config_clear(&cfg);
}

static void test_check_config_flag(void **state)
{
    struct ig_config cfg;
    char err[512];

    (void)state;
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", "conf/infergate.conf",
                          "--check-config", NULL),
                     0);
    assert_int_equal(cfg.check_only, 1);
    assert_int_equal(cfg.help, 0);
    assert_int_equal(cfg.nendpoints, 1);
    ig_config_clear(&cfg);

    /* a flag does not swallow the next argument */
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--check_config", "--workers", "9", NULL),
                     0);
    assert_int_equal(cfg.check_only, 1);
    assert_int_equal(cfg.workers, 9);
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--check-config=yes", NULL),
                     IG_ERR_CONFIG);
    assert_string_equal(err, "command line: --check-config: takes no value");
}

static void test_help_flag(void **state)
{
    struct ig_config cfg;
    char err[512];

    (void)state;
    /* --help returns before the file is read */
    assert_int_equal(
        load(&cfg, no_env, err, sizeof(err), "--config", "/nonexistent/x.conf", "--help", NULL), 0);
    assert_int_equal(cfg.help, 1);
    assert_string_equal(cfg.config_path, "/nonexistent/x.conf");
    assert_global_defaults(&cfg);
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--help=1", NULL), IG_ERR_CONFIG);
    assert_string_equal(err, "command line: --help: takes no value");

    /* -h is --help; other short forms stay errors */
    assert_int_equal(
        load(&cfg, no_env, err, sizeof(err), "--config", "/nonexistent/x.conf", "-h", NULL), 0);
    assert_int_equal(cfg.help, 1);
    ig_config_clear(&cfg);
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "-v", NULL), IG_ERR_CONFIG);
    assert_string_equal(err,
                        "command line: '-v': unexpected argument (use --NAME VALUE or --NAME=VALUE)");

    /* --version too returns before the file is read */
    assert_int_equal(
        load(&cfg, no_env, err, sizeof(err), "--config", "/nonexistent/x.conf", "--version", NULL),
        0);
    assert_int_equal(cfg.version, 1);
    assert_int_equal(cfg.help, 0);
    ig_config_clear(&cfg);
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--version=2", NULL), IG_ERR_CONFIG);
    assert_string_equal(err, "command line: --version: takes no value");
}

/* Unknown INFERGATE_* variables, endpoint options and command-line-only
 * options in the environment are ignored; so is anything unprefixed. */
static void test_env_ignored(void **state)
{
    struct ig_config cfg;
    char err[512];
    char *env[] = {(char *)"INFERGATE_BIN=bin/infergate",
                   (char *)"INFERGATE_CHECK_CONFIG=1",
                   (char *)"INFERGATE_HELP=1",
                   (char *)"INFERGATE_VERSION=1",
                   (char *)"INFERGATE_MAX_INFLIGHT=0",
                   (char *)"WORKERS=5",
                   (char *)"INFERGATE_WORKERSX=5",
                   (char *)"INFERGATE_WORKERS",
                   (char *)"infergate_workers=5",
                   NULL};

    (void)state;
    assert_int_equal(load(&cfg, env, err, sizeof(err), NULL), 0);
    assert_int_equal(cfg.check_only, 0);
    assert_int_equal(cfg.help, 0);
    assert_int_equal(cfg.version, 0);
    assert_global_defaults(&cfg);
    ig_config_clear(&cfg);

    /* a NULL environment is an empty one */
    assert_int_equal(load(&cfg, NULL, err, sizeof(err), NULL), 0);
    assert_global_defaults(&cfg);
    ig_config_clear(&cfg);
}

static void test_endpoint_names(void **state)
{
    static const char *const good[] = {"a",
                                       "Z",
                                       "0",
                                       "a--b",
                                       "A-1-b2",
                                       "a23456789012345678901234567890123456789012345678901"
                                       "234567890123"};
    struct ig_config cfg;
    char text[256];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(good); i++) {
        snprintf(text, sizeof(text), "[endpoint %s]\nmodel = file://m\nvariant = %s\n", good[i],
                 good[i]);
        load_text_ok(&cfg, text);
        assert_string_equal(cfg.endpoints[0].name, good[i]);
        assert_string_equal(cfg.endpoints[0].variant, good[i]);
        ig_config_clear(&cfg);
    }
}

static void test_usage(void **state)
{
    static const char *const opts[] = {
        "  --config FILE\n",
        "  --check_config\n",
        "  --help\n",
        "  --version\n",
        "  --listen HOST:PORT ",
        "  --admin_listen ",
        "  --data_dir ",
        "  --redis_url ",
        "  --tls_cert ",
        "  --tls_key ",
        "  --log_level ",
        "  --workers ",
        "  --max_connections ",
        "  --max_concurrent_streams ",
        "  --max_header_list_size ",
        "  --max_body_bytes ",
        "  --max_buffered_body_bytes ",
        "  --idle_timeout_ms ",
        "  --header_timeout_ms ",
        "  --drain_timeout_ms ",
        "  model = URL ",
        "  variant = ",
        "  content_type = ",
        "  accept = ",
        "  max_batch_rows = ",
        "  max_batch_bytes = ",
        "  max_delay_us = ",
        "  max_inflight = ",
        "  max_queue_rows = ",
        "  request_timeout_ms = ",
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    ig_config_usage(f);
    assert_int_equal(fclose(f), 0);
    for (size_t i = 0; i < IG_ARRAY_SIZE(opts); i++)
        if (strstr(text, opts[i]) == NULL)
            fail_msg("usage lacks '%s'", opts[i]);
    assert_non_null(strstr(text, "\n  --max_body_bytes BYTES         1..67108864, default 6291456, "
                                 "reloadable\n      largest request body (SageMaker's limit)\n"));
    /* a head wider than the column pushes the properties right */
    assert_non_null(strstr(text, "\n  --max_buffered_body_bytes BYTES 1048576..68719476736, default "
                                 "1073741824, reloadable\n      request bodies held at once, all "
                                 "connections; beyond this, requests are throttled\n"));
    assert_non_null(
        strstr(text, "\n  --listen HOST:PORT             default \"127.0.0.1:8080\"\n"));
    assert_non_null(strstr(text, "\n  --log_level LEVEL              debug|info|warn|error, "
                                 "default info, reloadable\n"));
    assert_non_null(strstr(text, "\n  model = URL                    required\n"));
    assert_non_null(strstr(text, "\n  max_delay_us = US              0..10000000, default 2000, "
                                 "reloadable\n"));
    assert_non_null(strstr(text, "\n  variant = NAME                 default \"AllTraffic\"\n"));
    free(text);
}

/* Read all of <path> into a NUL-terminated heap string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    assert_non_null(m);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(fwrite(chunk, 1, n, m), n);
    fclose(f);
    assert_int_equal(fclose(m), 0);
    return text;
}

/* House rule 13: the template documents every file option. The option
 * names come from the --help text, so a new table entry without a line in
 * conf/infergate.conf fails here. */
static void test_shipped_conf_documents_every_option(void **state)
{
    char *usage = NULL, *conf = slurp("conf/infergate.conf"), *line, *save = NULL;
    size_t len = 0, checked = 0;
    FILE *f = open_memstream(&usage, &len);
    int in_file_section = 0;

    (void)state;
    assert_non_null(f);
    ig_config_usage(f);
    assert_int_equal(fclose(f), 0);
    for (line = strtok_r(usage, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64], set[80], commented[80];

        if (strncmp(line, "Global options (", 16) == 0 ||
            strncmp(line, "Endpoint options (", 18) == 0)
            in_file_section = 1;
        if (!in_file_section || strncmp(line, "  ", 2) != 0 || line[2] == ' ')
            continue;
        line += 2;
        if (strncmp(line, "--", 2) == 0)
            line += 2;
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, " "), line);
        snprintf(set, sizeof(set), "\n%s = ", name);
        snprintf(commented, sizeof(commented), "\n; %s =", name);
        if (strstr(conf, set) == NULL && strstr(conf, commented) == NULL)
            fail_msg("conf/infergate.conf does not document '%s'", name);
        checked++;
    }
    /* 17 global + 10 endpoint options at least; other options join as they
     * are added, and each must be documented (the loop above). */
    assert_true(checked >= 27);
    free(usage);
    free(conf);
}

/* ---- errors ------------------------------------------------------------ */

struct file_error {
    const char *text;
    const char *suffix; /* after the path */
};

static const struct file_error file_errors[] = {
    /* keys and sections */
    {"[endpoint demo]\nmodel = file://m.json\nfoo = 1\n",
     ":3: unknown key 'foo' in [endpoint demo]"},
    {"; c\nfoo = 1\n", ":2: unknown key 'foo' in the global section"},
    {"config = x.conf\n", ":1: unknown key 'config' in the global section"},
    {"check_config = 1\n", ":1: unknown key 'check_config' in the global section"},
    {"Workers = 1\n", ":1: unknown key 'Workers' in the global section"},
    {"max-body-bytes = 1\n", ":1: unknown key 'max-body-bytes' in the global section"},
    {"max_inflight = 8\n", ":1: unknown key 'max_inflight' in the global section (an endpoint "
                           "option: set it in an [endpoint NAME] section)"},
    {"[endpoint demo]\nmodel = file://m\nlisten = 1.2.3.4:5\n",
     ":3: unknown key 'listen' in [endpoint demo] (a global option: set it before the first "
     "section)"},
    {"workers = 1\n\nworkers = 2\n", ":3: duplicate key 'workers' (first at line 1)"},
    {"[endpoint d]\nmodel = file://a\nmodel = file://b\n",
     ":3: duplicate key 'model' (first at line 2)"},
    {"[foo]\n", ":1: unknown section [foo]"},
    {"workers = 1\n[ foo bar ]\nx = 1\n", ":2: unknown section [foo bar]"},
    {"[endpointx]\n", ":1: unknown section [endpointx]"},
    {"[Endpoint x]\n", ":1: unknown section [Endpoint x]"},
    {"listen = 1.2.3.4:80\n\n[endpoint demo]\nmax_inflight = 4\n\n[endpoint other]\nmodel = "
     "file://x\n",
     ":3: [endpoint demo]: missing required key 'model'"},
    {"[endpoint demo]\n", ":1: [endpoint demo]: missing required key 'model'"},
    {"[endpoint a]\nmodel = file://a\n[endpoint demo]\n; nothing\n",
     ":3: [endpoint demo]: missing required key 'model'"},
    {"[endpoint demo]\nmodel=file://a\n[endpoint other]\nmodel=file://b\n[endpoint demo]\n"
     "model=file://c\n",
     ":5: duplicate [endpoint demo] (first at line 1)"},
    /* endpoint names */
    {"[endpoint bad_name]\nmodel = file://a\n",
     ":1: invalid endpoint name 'bad_name' (1..63 letters, digits or '-', starting and ending "
     "with a letter or digit)"},
    {"\n[endpoint -x]\n", ":2: invalid endpoint name '-x' (1..63 letters, digits or '-', starting "
                          "and ending with a letter or digit)"},
    {"[endpoint x-]\n", ":1: invalid endpoint name 'x-' (1..63 letters, digits or '-', starting "
                        "and ending with a letter or digit)"},
    {"[endpoint]\n", ":1: invalid endpoint name '' (1..63 letters, digits or '-', starting and "
                     "ending with a letter or digit)"},
    {"[endpoint   ]\n", ":1: invalid endpoint name '' (1..63 letters, digits or '-', starting "
                        "and ending with a letter or digit)"},
    {"[endpoint a b]\n", ":1: invalid endpoint name 'a b' (1..63 letters, digits or '-', starting "
                         "and ending with a letter or digit)"},
    {"[endpoint a234567890123456789012345678901234567890123456789012345678901234]\n",
     ":1: invalid endpoint name "
     "'a234567890123456789012345678901234567890123456789012345678901234' (1..63 letters, digits "
     "or '-', starting and ending with a letter or digit)"},
    /* integers */
    {"\n[endpoint demo]\nmodel=file://m\n\n\n\nmax_inflight = abc\n",
     ":7: max_inflight: 'abc' is not an integer"},
    {"[endpoint demo]\nmodel=file://m\nmax_inflight = 0\n",
     ":3: max_inflight: 0 is out of range 1..1024"},
    {"[endpoint demo]\nmodel=file://m\nmax_inflight = 1025\n",
     ":3: max_inflight: 1025 is out of range 1..1024"},
    {"[endpoint demo]\nmodel=file://m\n  max_inflight = 0\n",
     ":3: max_inflight: 0 is out of range 1..1024"},
    {"[endpoint demo]\nmodel=file://m\nmax_inflight = -1\n",
     ":3: max_inflight: '-1' is not an integer"},
    {"workers = +1\n", ":1: workers: '+1' is not an integer"},
    {"workers = 0x10\n", ":1: workers: '0x10' is not an integer"},
    {"workers = 1 2\n", ":1: workers: '1 2' is not an integer"},
    {"workers = 1e2\n", ":1: workers: '1e2' is not an integer"},
    {"workers = 8 # eight\n", ":1: workers: '8 # eight' is not an integer"},
    {"workers =\n", ":1: workers: '' is not an integer"},
    {"workers = 257\n", ":1: workers: 257 is out of range 0..256"},
    {"workers = 18446744073709551615\n",
     ":1: workers: 18446744073709551615 is out of range 0..256"},
    /* 2^64 + 5 would wrap to 5 without the overflow check */
    {"workers = 18446744073709551621\n",
     ":1: workers: 18446744073709551621 is out of range 0..256"},
    {"max_body_bytes = 18446744073709551616\n",
     ":1: max_body_bytes: 18446744073709551616 is out of range 1..67108864"},
    {"max_body_bytes = 99999999999999999999999\n",
     ":1: max_body_bytes: 99999999999999999999999 is out of range 1..67108864"},
    {"max_buffered_body_bytes = 1048575\n",
     ":1: max_buffered_body_bytes: 1048575 is out of range 1048576..68719476736"},
    {"max_buffered_body_bytes = 68719476737\n",
     ":1: max_buffered_body_bytes: 68719476737 is out of range 1048576..68719476736"},
    {"max_connections = 4294967297\n",
     ":1: max_connections: 4294967297 is out of range 1..1000000"},
    {"max_header_list_size = 1023\n",
     ":1: max_header_list_size: 1023 is out of range 1024..1048576"},
    {"idle_timeout_ms = 99\n", ":1: idle_timeout_ms: 99 is out of range 100..86400000"},
    {"[endpoint d]\nmodel=file://m\nmax_delay_us = 10000001\n",
     ":3: max_delay_us: 10000001 is out of range 0..10000000"},
    /* strings */
    {"log_level = loud\n", ":1: log_level: 'loud' is not one of debug|info|warn|error"},
    {"log_level = INFO\n", ":1: log_level: 'INFO' is not one of debug|info|warn|error"},
    {"access_log = yes\n", ":1: access_log: 'yes' is not one of on|off"},
    {"access_log =\n", ":1: access_log: '' is not one of on|off"},
    {"data_dir =   ; nothing\n", ":1: data_dir: must not be empty"},
    {"[endpoint d]\nmodel = file://m\nvariant = All_Traffic\n",
     ":3: variant: 'All_Traffic' is not a name (1..63 letters, digits or '-', starting and ending "
     "with a letter or digit)"},
    {"[endpoint d]\nmodel = file://m\ncontent_type = csv\n",
     ":3: content_type: 'csv' is not a media type TYPE/SUBTYPE"},
    {"[endpoint d]\nmodel = file://m\naccept = application/\n",
     ":3: accept: 'application/' is not a media type TYPE/SUBTYPE"},
    /* the TLS pair */
    {"tls_cert = /c.pem\n", ":1: tls_cert is set but tls_key is empty (set both or neither)"},
    {"\ntls_key = /k.pem\n", ":2: tls_key is set but tls_cert is empty (set both or neither)"},
    /* syntax */
    {"workers = 1\nthis is not a pair\n",
     ":2: syntax error: expected 'name = value', '[section]' or a comment"},
    {"\n\n[endpoint demo\nmodel = file://m\n",
     ":3: syntax error: expected 'name = value', '[section]' or a comment"},
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(file_errors); i++)
        expect_file_error(file_errors[i].text, file_errors[i].suffix);
}

static void test_bad_listen(void **state)
{
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:65536",
                                      ":80",       "[::1:80",
                                      "[zz]:80",   "host:8x",
                                      "::1:80",    "a b:80",
                                      "host:",     "host:-1",
                                      "[::1]80",   "*:80",
                                      "[::1]",     "h:99999999999999999999999"};
    char text[128], suffix[256];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(bad); i++) {
        snprintf(text, sizeof(text), "listen = %s\n", bad[i]);
        snprintf(suffix, sizeof(suffix),
                 ":1: listen: '%s' is not HOST:PORT (HOST a name, IPv4 address or [IPv6] "
                 "address; PORT 0..65535)",
                 bad[i]);
        expect_file_error(text, suffix);
        snprintf(text, sizeof(text), "\nadmin_listen = %s\n", bad[i]);
        snprintf(suffix, sizeof(suffix),
                 ":2: admin_listen: '%s' is not HOST:PORT (HOST a name, IPv4 address or [IPv6] "
                 "address; PORT 0..65535)",
                 bad[i]);
        expect_file_error(text, suffix);
    }
}

static void test_bad_model(void **state)
{
    static const char *const bad[] = {"ftp://x",          "file://",
                                      "http://",          "http://:80",
                                      "http://h:0",       "http://h:65536/x",
                                      "https://a b/",     "sagemaker://us-east-1",
                                      "sagemaker://US/x", "sagemaker://r/bad_name",
                                      "sagemaker:///x",   "conf/models/m.json",
                                      "sagemaker://r/x/y"};
    char text[128], suffix[256];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(bad); i++) {
        snprintf(text, sizeof(text), "[endpoint d]\nmodel = %s\n", bad[i]);
        snprintf(suffix, sizeof(suffix),
                 ":2: model: '%s' is not file://PATH, http(s)://HOST[:PORT][/PATH] or "
                 "sagemaker://REGION/ENDPOINT",
                 bad[i]);
        expect_file_error(text, suffix);
    }
}

static void test_long_line(void **state)
{
    char text[IG_CONFIG_LINE_MAX + 64];
    size_t n;

    (void)state;
    n = (size_t)snprintf(text, sizeof(text), "workers = 1\nredis_url = ");
    memset(text + n, 'x', IG_CONFIG_LINE_MAX - 2 - 12); /* exactly the maximum */
    n += IG_CONFIG_LINE_MAX - 2 - 12;
    text[n] = '\0';
    {
        struct ig_config cfg;

        strcat(text, "\n");
        load_text_ok(&cfg, text);
        assert_int_equal(strlen(cfg.redis_url), IG_CONFIG_LINE_MAX - 2 - 12);
        ig_config_clear(&cfg);
    }
    text[n] = 'x'; /* one more */
    text[n + 1] = '\n';
    text[n + 2] = '\0';
    expect_file_error(text, ":2: line too long (max 4094 characters)");
}

static void test_too_many_endpoints(void **state)
{
    size_t cap = (IG_CONFIG_MAX_ENDPOINTS + 1) * 40, n = 0;
    char *text = malloc(cap);

    (void)state;
    assert_non_null(text);
    for (int i = 0; i <= IG_CONFIG_MAX_ENDPOINTS; i++)
        n += (size_t)snprintf(text + n, cap - n, "[endpoint e%d]\nmodel = file://m\n", i);
    expect_file_error(text, ":2049: too many endpoints (max 1024)");

    /* exactly the maximum loads */
    text[n - strlen("[endpoint e1024]\nmodel = file://m\n")] = '\0';
    {
        struct ig_config cfg;

        load_text_ok(&cfg, text);
        assert_int_equal(cfg.nendpoints, IG_CONFIG_MAX_ENDPOINTS);
        assert_string_equal(cfg.endpoints[1023].name, "e1023");
        assert_int_equal(cfg.endpoints[1023].line, 2047);
        ig_config_clear(&cfg);
    }
    free(text);
}

static void test_file_unreadable(void **state)
{
    struct ig_config cfg;
    char path[128], err[512], want[256];

    (void)state;
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", "conf/x.conf", NULL),
                     IG_ERR_CONFIG);
    assert_string_equal(err, "conf/x.conf: cannot open: No such file or directory");
    assert_null(cfg.listen);
    assert_null(cfg.config_path);

    snprintf(path, sizeof(path), "%s", tmpdir);
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), IG_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", path);
    assert_string_equal(err, want);
}

struct env_error {
    const char *var;
    const char *err;
};

static const struct env_error env_errors[] = {
    {"INFERGATE_WORKERS=abc", "environment: INFERGATE_WORKERS: 'abc' is not an integer"},
    {"INFERGATE_WORKERS=", "environment: INFERGATE_WORKERS: '' is not an integer"},
    {"INFERGATE_WORKERS=257", "environment: INFERGATE_WORKERS: 257 is out of range 0..256"},
    {"INFERGATE_MAX_BODY_BYTES=0",
     "environment: INFERGATE_MAX_BODY_BYTES: 0 is out of range 1..67108864"},
    {"INFERGATE_MAX_BUFFERED_BODY_BYTES=0",
     "environment: INFERGATE_MAX_BUFFERED_BODY_BYTES: 0 is out of range 1048576..68719476736"},
    {"INFERGATE_MAX_BUFFERED_BODY_BYTES=1GiB",
     "environment: INFERGATE_MAX_BUFFERED_BODY_BYTES: '1GiB' is not an integer"},
    {"INFERGATE_LISTEN=8080", "environment: INFERGATE_LISTEN: '8080' is not HOST:PORT (HOST a "
                              "name, IPv4 address or [IPv6] address; PORT 0..65535)"},
    {"INFERGATE_LOG_LEVEL=verbose",
     "environment: INFERGATE_LOG_LEVEL: 'verbose' is not one of debug|info|warn|error"},
    {"INFERGATE_CONFIG=", "environment: INFERGATE_CONFIG: must not be empty"},
    {"INFERGATE_CONFIG=conf/x.conf", "conf/x.conf: cannot open: No such file or directory"},
    {"INFERGATE_TLS_KEY=/k.pem", "environment: INFERGATE_TLS_KEY: tls_key is set but tls_cert is "
                                 "empty (set both or neither)"},
};

static void test_env_errors(void **state)
{
    struct ig_config cfg;
    char err[512];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(env_errors); i++) {
        char *env[] = {(char *)"INFERGATE_DATA_DIR=/d", (char *)env_errors[i].var, NULL};

        assert_int_equal(load(&cfg, env, err, sizeof(err), NULL), IG_ERR_CONFIG);
        assert_string_equal(err, env_errors[i].err);
        assert_null(cfg.data_dir);
    }
}

struct cli_error {
    const char *args[4];
    const char *err;
};

static const struct cli_error cli_errors[] = {
    {{"--max-foo", NULL}, "command line: --max-foo: unknown option"},
    {{"--max-foo=3", NULL}, "command line: --max-foo: unknown option"},
    {{"--max_inflight", "3", NULL}, "command line: --max_inflight: unknown option"},
    {{"--model=file://m", NULL}, "command line: --model: unknown option"},
    {{"--Workers=1", NULL}, "command line: --Workers: unknown option"},
    {{"--workers", NULL}, "command line: --workers: missing value"},
    {{"--workers=x", NULL}, "command line: --workers: 'x' is not an integer"},
    {{"--workers", "-1", NULL}, "command line: --workers: '-1' is not an integer"},
    {{"--max-body-bytes=67108865", NULL},
     "command line: --max-body-bytes: 67108865 is out of range 1..67108864"},
    {{"--max-buffered-body-bytes", "1048575", NULL},
     "command line: --max-buffered-body-bytes: 1048575 is out of range 1048576..68719476736"},
    {{"--log-level=loud", NULL},
     "command line: --log-level: 'loud' is not one of "
     "debug|info|warn|error"},
    {{"--config=", NULL}, "command line: --config: must not be empty"},
    {{"--config", NULL}, "command line: --config: missing value"},
    {{"foo", NULL}, "command line: 'foo': unexpected argument (use --NAME VALUE or --NAME=VALUE)"},
    {{"-w", "1", NULL},
     "command line: '-w': unexpected argument (use --NAME VALUE or "
     "--NAME=VALUE)"},
    {{"--", NULL}, "command line: '--': unexpected argument (use --NAME VALUE or --NAME=VALUE)"},
    {{"--=1", NULL},
     "command line: '--=1': unexpected argument (use --NAME VALUE or "
     "--NAME=VALUE)"},
    {{"--tls_cert=/c.pem", NULL},
     "command line: --tls_cert: tls_cert is set but tls_key is empty "
     "(set both or neither)"},
    /* errors in pre-file options come first */
    {{"--workers=x", "--bogus", NULL}, "command line: --bogus: unknown option"},
};

static void test_cli_errors(void **state)
{
    struct ig_config cfg;
    char err[512];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(cli_errors); i++) {
        const char *const *a = cli_errors[i].args;

        assert_int_equal(load(&cfg, no_env, err, sizeof(err), a[0], a[1], a[2], a[3]),
                         IG_ERR_CONFIG);
        assert_string_equal(err, cli_errors[i].err);
        assert_null(cfg.listen);
    }
}

/* A cross-option error names where the option that is set came from. */
static void test_tls_pair_origin(void **state)
{
    struct ig_config cfg;
    char path[128], err[512], want[256];

    (void)state;
    write_file("a.conf", "\ntls_cert = /c.pem\ntls_key = /k.pem\n", path, sizeof(path));
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), 0);
    assert_string_equal(cfg.tls_cert, "/c.pem");
    assert_string_equal(cfg.tls_key, "/k.pem");
    ig_config_clear(&cfg);

    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, "--tls-key=", NULL),
                     IG_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s:2: tls_cert is set but tls_key is empty (set both or neither)",
             path);
    assert_string_equal(err, want);
}

/* The message is cut to the caller's buffer, never overflowed. */
static void test_error_truncated(void **state)
{
    struct ig_config cfg;
    char err[16];

    (void)state;
    memset(err, 'Z', sizeof(err));
    assert_int_equal(load(&cfg, no_env, err, 8, "--max-foo", NULL), IG_ERR_CONFIG);
    assert_string_equal(err, "command");
    assert_int_equal(err[8], 'Z');
    assert_int_equal(load(&cfg, no_env, err, 0, "--max-foo", NULL), IG_ERR_CONFIG);
}

/* A relative file:// model is next to the config file, not in the cwd. */
static void test_relative_model_paths(void **state)
{
    struct ig_config cfg;
    char want[256], err[512], cwd[4096];
    char *argv[] = {(char *)"infergate", (char *)"--config", (char *)"rel.conf", NULL};

    (void)state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    load_text_ok(&cfg, "[endpoint a]\nmodel = file://m.json\n"
                       "[endpoint b]\n\nmodel = file://sub/../m2.json\n"
                       "[endpoint c]\nmodel = file:///abs/m.json\n"
                       "[endpoint d]\nmodel = http://127.0.0.1:9/x\n");
    snprintf(want, sizeof(want), "file://%s/m.json", tmpdir);
    assert_string_equal(cfg.endpoints[0].model, want);
    snprintf(want, sizeof(want), "file://%s/sub/../m2.json", tmpdir);
    assert_string_equal(cfg.endpoints[1].model, want);
    assert_string_equal(cfg.endpoints[2].model, "file:///abs/m.json");
    assert_string_equal(cfg.endpoints[3].model, "http://127.0.0.1:9/x");
    assert_int_equal(cfg.endpoints[0].model_line, 2);
    assert_int_equal(cfg.endpoints[1].model_line, 5);
    snprintf(want, sizeof(want), "%s/ok.conf:5: model", tmpdir);
    assert_string_equal(ig_config_endpoint_where(&cfg, &cfg.endpoints[1], err, sizeof(err)),
                        want);
    ig_config_clear(&cfg);

    /* a config file named without a directory: its directory is the cwd */
    assert_int_equal(chdir(tmpdir), 0);
    {
        FILE *f = fopen("rel.conf", "w");

        assert_non_null(f);
        fputs("[endpoint a]\nmodel = file://m.json\n", f);
        assert_int_equal(fclose(f), 0);
    }
    assert_int_equal(ig_config_load(&cfg, 3, argv, no_env, err, sizeof(err)), 0);
    assert_string_equal(cfg.endpoints[0].model, "file://m.json");
    ig_config_clear(&cfg);
    unlink("rel.conf");
    assert_int_equal(chdir(cwd), 0);
}

/* Where each global option came from, for errors found after loading. */
static void test_where(void **state)
{
    struct ig_config cfg;
    char path[128], err[512], want[256], where[256];
    char *env[] = {(char *)"INFERGATE_TLS_KEY=/k.pem", NULL};

    (void)state;
    write_file("a.conf", "; c\nlisten = localhost:0\ntls_cert = /c.pem\n", path, sizeof(path));
    assert_int_equal(load(&cfg, env, err, sizeof(err), "--config", path, "--admin-listen",
                          "[::1]:1", NULL),
                     0);
    snprintf(want, sizeof(want), "%s:2: listen", path);
    assert_string_equal(ig_config_where(&cfg, "listen", where, sizeof(where)), want);
    snprintf(want, sizeof(want), "%s:3: tls_cert", path);
    assert_string_equal(ig_config_where(&cfg, "tls_cert", where, sizeof(where)), want);
    assert_string_equal(ig_config_where(&cfg, "tls_key", where, sizeof(where)),
                        "environment: INFERGATE_TLS_KEY");
    assert_string_equal(ig_config_where(&cfg, "admin_listen", where, sizeof(where)),
                        "command line: --admin-listen");
    assert_string_equal(ig_config_where(&cfg, "workers", where, sizeof(where)),
                        "default: workers");
    ig_config_clear(&cfg);
    assert_null(cfg.origins);
}

/* The connection's share and the stall rate (budgets): ranges, defaults,
 * the share following a raised max_body_bytes, and refused when set below
 * one request of the maximum size. */
static void test_budget_options(void **state)
{
    struct ig_config cfg;
    char path[128], err[512];
    char *env_low[] = {(char *)"INFERGATE_MAX_CONN_BUFFERED_BYTES=1048576", NULL};

    (void)state;
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), NULL), 0);
    assert_int_equal(cfg.max_conn_buffered_bytes, 67108864);
    assert_int_equal(cfg.min_rate_bytes, 4096);
    ig_config_clear(&cfg);

    /* a default share follows max_body_bytes raised past it */
    write_file("a.conf", "max_body_bytes = 67108864\nmax_header_list_size = 1048576\n", path,
               sizeof(path));
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.max_conn_buffered_bytes, 67108864ull + 1048576 + 32768);
    ig_config_clear(&cfg);

    write_file("a.conf", "max_conn_buffered_bytes = 68719476736\nmin_rate_bytes = 67108864\n",
               path, sizeof(path));
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.max_conn_buffered_bytes, 68719476736ull);
    assert_int_equal(cfg.min_rate_bytes, 67108864);
    ig_config_clear(&cfg);

    /* a share set below one maximum request is refused, wherever it was set */
    expect_file_error("\nmax_conn_buffered_bytes = 6389759\n",
                      ":2: max_conn_buffered_bytes (6389759) is below max_body_bytes + "
                      "max_header_list_size + 32768 bytes of bookkeeping (6389760): a request "
                      "of the maximum size could never be taken");
    assert_int_equal(load(&cfg, env_low, err, sizeof(err), NULL), IG_ERR_CONFIG);
    assert_string_equal(err, "environment: INFERGATE_MAX_CONN_BUFFERED_BYTES: "
                             "max_conn_buffered_bytes (1048576) is below max_body_bytes + "
                             "max_header_list_size + 32768 bytes of bookkeeping (6389760): a "
                             "request of the maximum size could never be taken");
    write_file("a.conf", "max_conn_buffered_bytes = 6389760\n", path, sizeof(path));
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.max_conn_buffered_bytes, 6389760);
    ig_config_clear(&cfg);

    expect_file_error("max_conn_buffered_bytes = 1048575\n",
                      ":1: max_conn_buffered_bytes: 1048575 is out of range 1048576..68719476736");
    expect_file_error("min_rate_bytes = 0\n", ":1: min_rate_bytes: 0 is out of range 1..67108864");
    expect_file_error("min_rate_bytes = 67108865\n",
                      ":1: min_rate_bytes: 67108865 is out of range 1..67108864");
}

/* ---- authentication options ------------------------------------------- */

static void test_auth_options(void **state)
{
    static const char *const loopback[] = {"127.0.0.1:9000", "127.255.0.9:9000", "[::1]:9000",
                                           "localhost:9000", "LocalHost:0"};
    static const char *const open[] = {"0.0.0.0:9000", "10.0.0.1:9000", "[::]:9000",
                                       "[::ffff:127.0.0.1]:9000", "example.com:9000",
                                       "128.0.0.1:9000"};
    struct ig_config cfg;
    char text[256], suffix[512], err[512];

    (void)state;
    /* defaults */
    assert_int_equal(load(&cfg, no_env, err, sizeof(err), NULL), 0);
    assert_int_equal(cfg.admin_on_main, 0);
    assert_int_equal(cfg.admin_auth, 1);
    assert_string_equal(cfg.admin_access_key, "");
    assert_string_equal(cfg.admin_secret_key, "");
    assert_string_equal(cfg.admin_keys_file, "");
    assert_int_equal(cfg.data_auth, 0);
    assert_int_equal(cfg.auth_skew_s, 300);
    ig_config_clear(&cfg);

    /* every option from the file */
    load_text_ok(&cfg, "admin_listen = 127.0.0.1:9000\nadmin_on_main = on\nadmin_auth = on\n"
                       "admin_access_key = AKID\nadmin_secret_key = SECRET\n"
                       "admin_keys_file = /etc/infergate/keys\ndata_auth = on\n"
                       "auth_skew_s = 3600\n");
    assert_int_equal(cfg.admin_on_main, 1);
    assert_int_equal(cfg.admin_auth, 1);
    assert_string_equal(cfg.admin_access_key, "AKID");
    assert_string_equal(cfg.admin_secret_key, "SECRET");
    assert_string_equal(cfg.admin_keys_file, "/etc/infergate/keys");
    assert_int_equal(cfg.data_auth, 1);
    assert_int_equal(cfg.auth_skew_s, 3600);
    ig_config_clear(&cfg);

    /* admin_auth = off: every listener serving the admin API on loopback */
    for (size_t i = 0; i < IG_ARRAY_SIZE(loopback); i++) {
        snprintf(text, sizeof(text), "listen = %s\nadmin_auth = off\n", loopback[i]);
        load_text_ok(&cfg, text); /* no admin API (admin_listen empty) */
        assert_int_equal(cfg.admin_auth, 0);
        ig_config_clear(&cfg);
        snprintf(text, sizeof(text),
                 "listen = 0.0.0.0:8080\nadmin_listen = %s\nadmin_auth = off\n", loopback[i]);
        load_text_ok(&cfg, text); /* the main listener is open, but has no admin API */
        ig_config_clear(&cfg);
        snprintf(text, sizeof(text),
                 "listen = %s\nadmin_listen = %s\nadmin_on_main = on\nadmin_auth = off\n",
                 loopback[i], loopback[i]);
        load_text_ok(&cfg, text);
        ig_config_clear(&cfg);
    }
    for (size_t i = 0; i < IG_ARRAY_SIZE(open); i++) {
        /* admin_listen empty and admin_on_main off: no admin API at all, so
         * nothing is open (the image's default command: --admin-listen=) */
        snprintf(text, sizeof(text), "listen = %s\nadmin_auth = off\n", open[i]);
        load_text_ok(&cfg, text);
        ig_config_clear(&cfg);
        snprintf(text, sizeof(text), "listen = %s\nadmin_on_main = on\nadmin_auth = off\n",
                 open[i]);
        snprintf(suffix, sizeof(suffix),
                 ":3: admin_auth = off, but the admin API is on the main listener (admin_on_main "
                 "= on) and listen '%s' is not a loopback address (127.0.0.0/8, [::1], "
                 "localhost): turn admin_auth on with a key, or set admin_listen to a loopback "
                 "address",
                 open[i]);
        expect_file_error(text, suffix);
        snprintf(text, sizeof(text), "admin_auth = off\nadmin_listen = %s\n", open[i]);
        snprintf(suffix, sizeof(suffix),
                 ":1: admin_auth = off, but admin_listen '%s' is not a loopback address "
                 "(127.0.0.0/8, [::1], localhost): the admin API would be open to the network; "
                 "turn admin_auth on with a key, or listen on loopback",
                 open[i]);
        expect_file_error(text, suffix);
        snprintf(text, sizeof(text),
                 "listen = %s\nadmin_listen = 127.0.0.1:9000\nadmin_on_main = on\n"
                 "admin_auth = off\n",
                 open[i]);
        snprintf(suffix, sizeof(suffix),
                 ":4: admin_auth = off, but the admin API is on the main listener (admin_on_main "
                 "= on) and listen '%s' is not a loopback address (127.0.0.0/8, [::1], "
                 "localhost): turn admin_auth on with a key, or set admin_listen to a loopback "
                 "address",
                 open[i]);
        expect_file_error(text, suffix);
        /* with admin_auth on, any listener is fine */
        snprintf(text, sizeof(text), "listen = %s\nadmin_listen = %s\nadmin_on_main = on\n",
                 open[i], open[i]);
        load_text_ok(&cfg, text);
        ig_config_clear(&cfg);
    }
    /* the origin of admin_auth is named: the command line */
    {
        char path[128];

        write_file("a.conf", "listen = 0.0.0.0:8080\nadmin_on_main = on\n", path, sizeof(path));
        assert_int_equal(load(&cfg, no_env, err, sizeof(err), "--config", path, "--admin-auth",
                              "off", NULL),
                         IG_ERR_CONFIG);
        assert_string_equal(err,
                            "command line: --admin-auth: admin_auth = off, but the admin API is "
                            "on the main listener (admin_on_main = on) and listen "
                            "'0.0.0.0:8080' is not a loopback address (127.0.0.0/8, [::1], "
                            "localhost): turn admin_auth on with a key, or set admin_listen to a "
                            "loopback address");
    }

    /* the key pair */
    expect_file_error("admin_access_key = AKID\n",
                      ":1: admin_access_key is set but admin_secret_key is empty (set both or "
                      "neither)");
    expect_file_error("\nadmin_secret_key = S\n",
                      ":2: admin_secret_key is set but admin_access_key is empty (set both or "
                      "neither)");
    /* ranges and booleans */
    expect_file_error("auth_skew_s = 0\n", ":1: auth_skew_s: 0 is out of range 1..3600");
    expect_file_error("auth_skew_s = 3601\n", ":1: auth_skew_s: 3601 is out of range 1..3600");
    expect_file_error("admin_auth = maybe\n", ":1: admin_auth: 'maybe' is not one of on|off");
    expect_file_error("data_auth = 1\n", ":1: data_auth: '1' is not one of on|off");
    expect_file_error("admin_on_main = yes\n", ":1: admin_on_main: 'yes' is not one of on|off");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_shipped_conf),
        cmocka_unit_test(test_shipped_conf_documents_every_option),
        cmocka_unit_test(test_endpoint_defaults),
        cmocka_unit_test(test_every_option_from_file),
        cmocka_unit_test(test_file_syntax),
        cmocka_unit_test(test_env_overrides_file_cli_overrides_env),
        cmocka_unit_test(test_max_buffered_body_bytes_sources),
        cmocka_unit_test(test_budget_options),
        cmocka_unit_test(test_config_path_sources),
        cmocka_unit_test(test_cli_forms),
        cmocka_unit_test(test_check_config_flag),
        cmocka_unit_test(test_help_flag),
        cmocka_unit_test(test_relative_model_paths),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_env_ignored),
        cmocka_unit_test(test_endpoint_names),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_bad_model),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_too_many_endpoints),
        cmocka_unit_test(test_file_unreadable),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_tls_pair_origin),
        cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_auth_options),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

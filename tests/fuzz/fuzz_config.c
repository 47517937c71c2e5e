/*
 * fuzz_config.c - ig_config_load on the input as the INI file, as main()
 * calls it: argv = {"infergate", "--config", PATH}, an empty environment.
 * The file is a memfd (no disk I/O, nothing left behind) named by its
 * /proc/self/fd path.
 *
 * Checked: a failure leaves the struct zeroed and a one-line message that
 * starts with the file's path; a success has every option inside the range
 * config.h documents and well-formed endpoints (file:// models resolved to
 * absolute paths, the model key's line known, where listen came from);
 * ig_config_clear frees
 * everything (LeakSanitizer) and zeroes the struct.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/http.h"

#define FUZZ_ERR_LEN 200 /* short: truncation happens */

static int cfg_fd = -1;
static char cfg_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfg_fd = memfd_create("infergate-fuzz.conf", 0);
    FUZZ_CHECK(cfg_fd >= 0, "memfd_create failed");
    snprintf(cfg_path, sizeof(cfg_path), "/proc/self/fd/%d", cfg_fd);
    return 0;
}

static bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$, 1..IG_CONFIG_NAME_MAX chars. */
static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > IG_CONFIG_NAME_MAX || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

#define IN_RANGE(v, lo, hi) ((uint64_t)(v) >= (uint64_t)(lo) && (uint64_t)(v) <= (uint64_t)(hi))

static void check_config(const struct ig_config *c)
{
    FUZZ_CHECK(c->config_path != NULL && strcmp(c->config_path, cfg_path) == 0, "config_path");
    FUZZ_CHECK(!c->check_only && !c->help && !c->version, "flags set from the file");
    FUZZ_CHECK(c->access_log == 0 || c->access_log == 1, "access_log %d", c->access_log);
    FUZZ_CHECK(c->origins != NULL, "no origins after a successful load");
    {
        char where[256];
        const char *w = ig_config_where(c, "listen", where, sizeof(where));

        FUZZ_CHECK(strcmp(w, "default: listen") == 0 ||
                       (strncmp(w, cfg_path, strlen(cfg_path)) == 0 &&
                        w[strlen(cfg_path)] == ':' &&
                        strcmp(w + strlen(w) - 8, ": listen") == 0),
                   "where of listen \"%s\"", w);
    }
    FUZZ_CHECK(c->listen != NULL && c->listen[0] != '\0', "listen");
    FUZZ_CHECK(c->admin_listen && c->data_dir && c->data_dir[0] && c->redis_url && c->tls_cert &&
                   c->tls_key,
               "string option NULL or data_dir empty");
    FUZZ_CHECK((c->tls_cert[0] != '\0') == (c->tls_key[0] != '\0'), "tls_cert without tls_key");
    FUZZ_CHECK(c->log_level >= IG_LOG_DEBUG && c->log_level <= IG_LOG_ERROR, "log_level %d",
               c->log_level);
    FUZZ_CHECK(c->workers <= 256, "workers %u", c->workers);
    FUZZ_CHECK(IN_RANGE(c->max_connections, 1, 1000000), "max_connections");
    FUZZ_CHECK(IN_RANGE(c->max_concurrent_streams, 1, 100000), "max_concurrent_streams");
    FUZZ_CHECK(IN_RANGE(c->max_header_list_size, 1024, 1048576), "max_header_list_size");
    FUZZ_CHECK(IN_RANGE(c->max_body_bytes, 1, 67108864), "max_body_bytes");
    FUZZ_CHECK(c->max_buffered_body_bytes >= c->max_body_bytes, "budget below max_body_bytes");
    FUZZ_CHECK(c->max_conn_buffered_bytes >=
                   c->max_body_bytes + c->max_header_list_size + IG_HTTP_REQ_OVERHEAD,
               "share %llu below one maximum request",
               (unsigned long long)c->max_conn_buffered_bytes);
    FUZZ_CHECK(IN_RANGE(c->min_rate_bytes, 1, 67108864), "min_rate_bytes");
    FUZZ_CHECK(IN_RANGE(c->idle_timeout_ms, 100, 86400000), "idle_timeout_ms");
    FUZZ_CHECK(IN_RANGE(c->header_timeout_ms, 100, 3600000), "header_timeout_ms");
    FUZZ_CHECK(c->drain_timeout_ms <= 3600000, "drain_timeout_ms");
    FUZZ_CHECK(c->nendpoints <= IG_CONFIG_MAX_ENDPOINTS, "%zu endpoints", c->nendpoints);
    FUZZ_CHECK(c->nendpoints == 0 || c->endpoints != NULL, "endpoints array");
    for (size_t i = 0; i < c->nendpoints; i++) {
        const struct ig_endpoint_conf *e = &c->endpoints[i];

        FUZZ_CHECK(name_ok(e->name), "endpoint %zu name \"%s\"", i, e->name ? e->name : "(null)");
        FUZZ_CHECK(name_ok(e->variant), "endpoint %s variant \"%s\"", e->name,
                   e->variant ? e->variant : "(null)");
        FUZZ_CHECK(e->model != NULL && e->model[0] != '\0', "endpoint %s without model", e->name);
        FUZZ_CHECK(e->content_type && strchr(e->content_type, '/') && e->accept &&
                       strchr(e->accept, '/'),
                   "endpoint %s media types", e->name);
        FUZZ_CHECK(IN_RANGE(e->max_batch_rows, 1, 1000000), "max_batch_rows");
        FUZZ_CHECK(IN_RANGE(e->max_batch_bytes, 1, 67108864), "max_batch_bytes");
        FUZZ_CHECK(e->max_delay_us <= 10000000, "max_delay_us");
        FUZZ_CHECK(IN_RANGE(e->max_inflight, 1, 1024), "max_inflight");
        FUZZ_CHECK(IN_RANGE(e->max_queue_rows, 1, 16777216), "max_queue_rows");
        FUZZ_CHECK(IN_RANGE(e->request_timeout_ms, 1, 3600000), "request_timeout_ms");
        FUZZ_CHECK(e->line >= 1, "endpoint %s line %d", e->name, e->line);
        FUZZ_CHECK(e->model_line > e->line, "endpoint %s model line %d", e->name, e->model_line);
        /* relative file:// paths are resolved against the file's directory */
        FUZZ_CHECK(strncmp(e->model, "file://", 7) != 0 || e->model[7] == '/',
                   "endpoint %s model \"%s\" left relative", e->name, e->model);
        FUZZ_CHECK(ig_config_endpoint(c, e->name) == e, "endpoint %s found twice", e->name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char arg0[] = "infergate", arg1[] = "--config";
    char *argv[] = {arg0, arg1, cfg_path, NULL};
    char *envp[] = {NULL};
    char err[FUZZ_ERR_LEN];
    struct ig_config cfg;
    size_t n;
    int rv;

    FUZZ_CHECK(ftruncate(cfg_fd, 0) == 0, "ftruncate");
    FUZZ_CHECK(pwrite(cfg_fd, data, size, 0) == (ssize_t)size, "pwrite");
    memset(&cfg, 0x55, sizeof(cfg)); /* "previous contents are ignored" */
    memset(err, 0x55, sizeof(err));
    rv = ig_config_load(&cfg, 3, argv, envp, err, sizeof(err));
    n = strnlen(err, sizeof(err));
    FUZZ_CHECK(n < sizeof(err), "error message not NUL-terminated");
    if (rv == 0) {
        FUZZ_CHECK(n == 0, "success with message \"%s\"", err);
        check_config(&cfg);
    } else {
        FUZZ_CHECK(rv == IG_ERR_CONFIG, "load returned %d", rv);
        FUZZ_CHECK(is_zero(&cfg, sizeof(cfg)), "failed load left the struct non-zero");
        FUZZ_CHECK(strncmp(err, cfg_path, strlen(cfg_path)) == 0 && err[strlen(cfg_path)] == ':',
                   "message \"%s\" does not start with the path", err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "message \"%s\" has a newline", err);
    }
    ig_config_clear(&cfg);
    FUZZ_CHECK(is_zero(&cfg, sizeof(cfg)), "ig_config_clear left the struct non-zero");
    return 0;
}

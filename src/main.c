/*
 * main.c - wire the modules: load the configuration, check it, start the
 * gateway, run the loop, drain on SIGTERM/SIGINT.
 *
 * Exit status: 0 after a clean drain (or --check-config / --help /
 * --version), 1 when the gateway cannot start for another reason (a port
 * in use) or the drain timed out, 2 for a configuration error: a bad key or
 * value, a model URL this build cannot serve, a listen address that does
 * not resolve, a model or TLS file that does not load. Under
 * --check-config the reason is one plain line "infergate: FILE:LINE: key:
 * ..."; otherwise it is a JSON log line like every other line on stderr.
 *
 * --check-config does what start-up does short of binding and serving:
 * it loads every model through the same upstream code the gateway uses
 * (ig_upstream_open, then frees it), loads the TLS certificate and key as
 * the listener would, and resolves the listen addresses with the resolver
 * the listener uses (ig_addr_resolve). Each failure names FILE:LINE: key
 * (or the environment variable or flag that set it).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "infergate/addr.h"
#include "infergate/admin.h"
#include "infergate/auth.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/gateway.h"
#include "infergate/upstream.h"
#include "infergate/version.h"

#define MAIN_ERR_MAX 1024

extern char **environ;

/* libevent's own warnings and errors, as JSON lines like every other. */
static void on_event_log(int severity, const char *msg)
{
    int level = severity == EVENT_LOG_DEBUG  ? IG_LOG_DEBUG
                : severity == EVENT_LOG_MSG  ? IG_LOG_INFO
                : severity == EVENT_LOG_WARN ? IG_LOG_WARN
                                             : IG_LOG_ERROR;

    ig_log(level, "libevent: %s", msg);
}

struct main_ctx {
    struct ig_gateway *gw;
    struct ig_admin *admin;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct main_ctx *m = arg;

    (void)what;
    ig_log(IG_LOG_INFO, "signal %d: draining", (int)sig);
    if (m->admin != NULL)
        ig_admin_stop_accepting(m->admin);
    ig_gateway_drain(m->gw);
}

/* The admin API runs when it has a listener: admin_listen, or the main one
 * with admin_on_main. */
static int main_admin_on(const struct ig_config *cfg)
{
    return cfg->admin_listen[0] != '\0' || cfg->admin_on_main;
}

/* The SigV4 keys, when something checks signatures. */
static int main_auth(const struct ig_config *cfg, struct ig_auth **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!((main_admin_on(cfg) && cfg->admin_auth) || cfg->data_auth))
        return 0;
    return ig_auth_new(cfg, out, err, errlen);
}

static void main_admin_hook(void *arg, struct ig_http_req *http)
{
    ig_admin_handle(arg, http);
}

static int main_ready_hook(void *arg, char *why, size_t len)
{
    return ig_admin_ready(arg, why, len);
}

static int main_loading_hook(void *arg)
{
    return ig_admin_loading(arg);
}

/* The model URL schemes this build serves; the others parse (they are
 * planned) but are refused before anything starts. */
/* A listen address that must resolve; <name> is the option. */
static int main_check_listen(const struct ig_config *cfg, const char *name, const char *value,
                             char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char where[256], why[512];
    int sslen = 0;

    if (value[0] == '\0' || ig_addr_resolve(value, &ss, &sslen, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "%s: %s", ig_config_where(cfg, name, where, sizeof(where)), why);
    return IG_ERR_CONFIG;
}

/* The certificate and key load and match, as the TLS listener needs. */
static int main_check_tls(const struct ig_config *cfg, char *err, size_t errlen)
{
    char where[256], why[256] = "";
    const char *bad = NULL;
    SSL_CTX *ctx;

    if (cfg->tls_cert[0] == '\0')
        return 0;
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS context");
        return IG_ERR_NOMEM;
    }
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
        bad = "tls_cert";
    else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(ctx) != 1)
        bad = "tls_key";
    if (bad != NULL) {
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
        snprintf(err, errlen, "%s: cannot use '%s': %s",
                 ig_config_where(cfg, bad, where, sizeof(where)),
                 strcmp(bad, "tls_cert") == 0 ? cfg->tls_cert : cfg->tls_key, why);
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return bad ? IG_ERR_CONFIG : 0;
}

/*
 * What the configuration parser cannot see: listen addresses that do not
 * resolve, and with <deep> (under --check-config) the TLS files and every
 * model, opened by the code that start-up runs (a remote one on a loop of
 * its own that never runs: its URL and credentials are checked, nothing is
 * sent). At start-up the gateway opens them itself (once).
 */
static int main_preflight(const struct ig_config *cfg, int deep, char *err, size_t errlen)
{
    struct ig_upstream_env env = {.workers = NULL}; /* loading never touches the pool */
    struct event_base *base = NULL;
    char where[256], why[768];
    int rv;

    if ((rv = main_check_listen(cfg, "listen", cfg->listen, err, errlen)) < 0 ||
        (rv = main_check_listen(cfg, "admin_listen", cfg->admin_listen, err, errlen)) < 0)
        return rv;
    {
        struct ig_auth *auth;

        if ((rv = main_auth(cfg, &auth, err, errlen)) < 0)
            return rv;
        ig_auth_free(auth);
    }
    if (!deep)
        return 0;
    if ((rv = main_check_tls(cfg, err, errlen)) < 0)
        return rv;
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        const struct ig_endpoint_conf *ep = &cfg->endpoints[i];
        struct ig_upstream *up = NULL;

        if (base == NULL && (base = event_base_new()) == NULL) {
            snprintf(err, errlen, "cannot create an event loop");
            return IG_ERR_NOMEM;
        }
        env.base = base;
        env.conf = ep;
        rv = ig_upstream_open(ep->model, &env, &up, why, sizeof(why));
        if (rv < 0) {
            snprintf(err, errlen, "%s: %s",
                     ig_config_endpoint_where(cfg, ep, where, sizeof(where)), why);
            break;
        }
        ig_upstream_free(up);
    }
    if (base != NULL)
        event_base_free(base);
    return rv < 0 ? IG_ERR_CONFIG : 0;
}

/* --check-config is a command for people: its verdict is plain text. A
 * gateway's stderr is a log stream: everything it writes there, a refused
 * configuration included, is a JSON line. Read from argv because a
 * configuration that fails to load says nothing. */
static int main_plain_errors(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--check-config") == 0 || strcmp(argv[i], "--check_config") == 0)
            return 1;
    return 0;
}

static void main_config_error(int plain, const char *msg)
{
    if (plain)
        fprintf(stderr, "infergate: %s\n", msg);
    else
        ig_log(IG_LOG_ERROR, "%s", msg);
}

int main(int argc, char **argv)
{
    struct ig_config cfg;
    struct ig_gateway *gw = NULL;
    struct ig_admin *admin = NULL;
    struct ig_auth *auth = NULL;
    struct main_ctx mctx;
    struct event_base *base;
    struct event *sigterm = NULL, *sigint = NULL;
    char err[MAIN_ERR_MAX];
    int status = 1;

    if (ig_config_load(&cfg, argc, argv, environ, err, sizeof(err)) < 0) {
        main_config_error(main_plain_errors(argc, argv), err);
        return 2;
    }
    if (cfg.help || cfg.version) {
        if (cfg.help)
            ig_config_usage(stdout);
        else
            printf("infergate %s (build %s)\n", IG_VERSION, IG_BUILD);
        ig_config_clear(&cfg);
        return 0;
    }
    if (main_preflight(&cfg, cfg.check_only, err, sizeof(err)) < 0) {
        main_config_error(cfg.check_only, err);
        ig_config_clear(&cfg);
        return 2;
    }
    if (cfg.check_only) {
        printf("infergate: configuration %s OK (%zu endpoints, every model loaded)\n",
               cfg.config_path ? cfg.config_path : "(defaults)", cfg.nendpoints);
        ig_config_clear(&cfg);
        return 0;
    }
    ig_log_min_level = cfg.log_level;
    ig_log_access_on = cfg.access_log;
    event_set_log_callback(on_event_log);
    signal(SIGPIPE, SIG_IGN);
    if (ig_log_start() < 0)
        ig_log(IG_LOG_WARN, "cannot start the log writer thread: logging synchronously");
    ig_log(IG_LOG_INFO, "infergate %s (build %s) starting", IG_VERSION, IG_BUILD);

    base = event_base_new();
    if (base == NULL) {
        ig_log(IG_LOG_ERROR, "cannot create the event loop");
        goto out_cfg;
    }
    if (ig_gateway_new(base, &cfg, &gw, err, sizeof(err)) < 0) {
        char where[MAIN_ERR_MAX];

        /* A model or TLS file the configuration names and that does not
         * load is a configuration error: find which, as --check-config
         * would (only on this path, so a good start loads each model once). */
        if (main_preflight(&cfg, 1, where, sizeof(where)) < 0) {
            ig_log(IG_LOG_ERROR, "%s", where);
            status = 2;
        } else {
            ig_log(IG_LOG_ERROR, "cannot start: %s", err);
        }
        goto out_base;
    }
    if (main_auth(&cfg, &auth, err, sizeof(err)) < 0) {
        ig_log(IG_LOG_ERROR, "%s", err);
        status = 2;
        goto out_gw;
    }
    if (main_admin_on(&cfg)) {
        struct ig_gateway_hooks hooks = {0};

        if (ig_admin_new(base, &cfg, gw, cfg.admin_auth ? auth : NULL, &admin, err,
                         sizeof(err)) < 0) {
            ig_log(IG_LOG_ERROR, "cannot start the admin API: %s", err);
            goto out_gw;
        }
        hooks.admin = cfg.admin_on_main ? main_admin_hook : NULL;
        hooks.ready = main_ready_hook;
        hooks.loading = main_loading_hook;
        hooks.arg = admin;
        hooks.data_auth = cfg.data_auth ? auth : NULL;
        ig_gateway_set_hooks(gw, &hooks);
        if (ig_admin_port(admin) != 0)
            ig_log(IG_LOG_INFO, "admin API on %s (port %u)", cfg.admin_listen,
                   ig_admin_port(admin));
    } else if (cfg.data_auth) {
        struct ig_gateway_hooks hooks = {.data_auth = auth};

        ig_gateway_set_hooks(gw, &hooks);
    }
    mctx.gw = gw;
    mctx.admin = admin;
    sigterm = evsignal_new(base, SIGTERM, on_signal, &mctx);
    sigint = evsignal_new(base, SIGINT, on_signal, &mctx);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    ig_log(IG_LOG_INFO, "listening on %s (port %u), %zu endpoints", cfg.listen,
           (unsigned)ig_gateway_port(gw), cfg.nendpoints);

    event_base_dispatch(base);
    status = ig_gateway_drained(gw) ? 0 : 1;

out_gw:
    ig_admin_free(admin);
    ig_gateway_free(gw);
    ig_auth_free(auth);
    /* Freed only now: freeing them puts back the default action, and a
     * second SIGTERM during the teardown above (serve programs stopped,
     * up to seconds) then killed a gateway that had drained cleanly, its
     * exit status 143, not 0. Caught, it is ignored: the drain is over. */
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
out_base:
    event_base_free(base);
out_cfg:
    ig_log_stop();
    ig_config_clear(&cfg);
    return status;
}

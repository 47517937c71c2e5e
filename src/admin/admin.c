/*
 * admin.c - the admin module's life: the job store connection (or the
 * embedded redis-server), the admin listener, and the hand-over of the
 * store's state changes to the deployments (deploy.c).
 */
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "infergate/admin.h"
#include "infergate/child.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/gateway.h"
#include "infergate/http.h"
#include "infergate/store.h"

#include "admin_int.h"

static void on_store_event(struct ig_store *s, const char *msg, size_t len, void *arg)
{
    (void)s;
    adm_dep_event(arg, msg, len);
}

static void on_store_state(struct ig_store *s, int up, void *arg)
{
    struct ig_admin *a = arg;
    char why[512];

    ig_store_describe(s, why, sizeof(why));
    ig_log(up ? IG_LOG_INFO : IG_LOG_WARN, "admin: job store %s", why);
    if (up) {
        adm_dep_heartbeat(a); /* live at once: delete drains wait for it */
        adm_dep_resync(a);    /* what changed while it was away */
    }
}

static void on_admin_request(struct ig_http_req *http, void *arg)
{
    struct ig_admin *a = arg;
    const char *path = ig_http_req_path(http);

    if (strcmp(path, "/ping") == 0 || strcmp(path, "/healthz") == 0) {
        struct ig_http_hdr h = {"Content-Type", "application/json"};

        ig_http_respond(http, 200, &h, 1, ig_xstrdup("{\"status\":\"ok\"}"), 15);
        return;
    }
    ig_admin_handle(a, http);
}

int ig_admin_new(struct event_base *base, const struct ig_config *cfg, struct ig_gateway *gw,
                 const struct ig_auth *auth, struct ig_admin **out, char *err, size_t errlen)
{
    struct ig_admin *a = ig_xcalloc(1, sizeof(*a));
    struct ig_store_conf sc = {
        .url = cfg->redis_url,
        .data_dir = cfg->data_dir,
        .channel = ADM_CHANNEL,
        .on_event = on_store_event,
        .on_state = on_store_state,
    };
    int rv;

    a->base = base;
    a->cfg = cfg;
    a->gw = gw;
    a->auth = auth;
    a->loading = 1;
    a->loading_until = ig_now_us() + ADM_LOADING_MAX_US;
    sc.arg = a;
    rv = ig_store_new(base, &sc, &a->store, err, errlen);
    if (rv < 0)
        goto fail;
    adm_dep_clean(a);
    {
        unsigned char rnd[16];

        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            for (size_t i = 0; i < sizeof(rnd); i++)
                rnd[i] = (unsigned char)(ig_now_us() >> (i % 8 * 8)) ^ (unsigned char)getpid();
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(a->id + 2 * i, 3, "%02x", rnd[i]);
    }
    adm_dep_heartbeat(a);
    if (cfg->admin_listen[0] != '\0') {
        struct ig_http_server_conf hc = {
            .listen = cfg->admin_listen,
            .tls_cert = cfg->tls_cert,
            .tls_key = cfg->tls_key,
            .max_connections = cfg->max_connections < 1024 ? cfg->max_connections : 1024,
            .max_concurrent_streams = cfg->max_concurrent_streams,
            .max_header_list_size = cfg->max_header_list_size,
            .max_body_bytes = ADM_BODY_MAX,
            .max_buffered_body_bytes = (uint64_t)256 << 20,
            .max_conn_buffered_bytes = (uint64_t)16 << 20,
            .min_rate_bytes = cfg->min_rate_bytes,
            .idle_timeout_ms = cfg->idle_timeout_ms,
            .header_timeout_ms = cfg->header_timeout_ms,
        };
        char why[512];

        rv = ig_http_server_new(base, &hc, on_admin_request, a, &a->http, why, sizeof(why));
        if (rv < 0) {
            snprintf(err, errlen, "admin_listen %s: %s", cfg->admin_listen, why);
            goto fail;
        }
    }
    *out = a;
    return 0;

fail:
    ig_admin_free(a);
    return rv;
}

int ig_admin_ready(const struct ig_admin *a, char *why, size_t len)
{
    char d[400];

    if (ig_store_up(a->store))
        return adm_dep_failed(a, why, len);
    ig_store_describe(a->store, d, sizeof(d));
    snprintf(why, len, "job store unreachable: %s", d);
    return -1;
}

int ig_admin_loading(struct ig_admin *a)
{
    if (a->loading && (ig_now_us() > a->loading_until || !adm_dep_loading(a))) {
        a->loading = 0;
        ig_log(IG_LOG_INFO, "admin: the job store's endpoints are loaded");
    }
    return a->loading;
}

unsigned ig_admin_port(const struct ig_admin *a)
{
    return a->http ? ig_http_server_port(a->http) : 0;
}

void ig_admin_stop_accepting(struct ig_admin *a)
{
    a->stopping = 1;
    if (a->http)
        ig_http_server_stop_accepting(a->http);
}

void ig_admin_free(struct ig_admin *a)
{
    if (a == NULL)
        return;
    a->stopping = 1;
    if (a->heartbeat != NULL)
        event_free(a->heartbeat);
    adm_dep_free_all(a);
    ig_child_reap_all_blocking(3000); /* the model servers stopped above */
    ig_http_server_free(a->http);
    /* the calls still waiting get their replies as NULL, and go */
    ig_store_free(a->store);
    free(a);
}

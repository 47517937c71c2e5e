/*
 * deploy.c - make the store's endpoints served by this gateway.
 *
 * Every gateway sharing a Redis serves every endpoint in it. An endpoint's
 * document says which variants to serve (its "_Variants", or while
 * Updating its "_Pending" ones) under a deployment id ("_D"). When the id
 * differs from what this gateway serves, a deployment starts: each
 * variant's model is fetched and loaded off the loop (built-in
 * algorithms), or its container answers GET /ping (http://), or its serve
 * program is started as a child and answers GET /ping (file://). Once all
 * are ready the gateway serves them in one step (ig_gateway_serve: the old
 * variants finish what they hold), and a Creating or Updating endpoint
 * moves to InService - or to Failed (an update: back to InService with the
 * old variants) with a FailureReason - through the compare-and-set script,
 * so that of several gateways one moves it and the others see the change.
 *
 * A Deleting endpoint stops being routed; once what it holds here is
 * answered (or drain_timeout_ms passed), its document is removed.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "infergate/admin.h"
#include "infergate/artifact.h"
#include "infergate/child.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/gateway.h"
#include "infergate/model.h"
#include "infergate/store.h"
#include "infergate/workers.h"

#include "admin_int.h"

#define DEP_TICK_US 100000
#define DEP_PING_TIMEOUT_S 2
#define DEP_STARTUP_DEFAULT_S 600 /* SageMaker's default health check timeout */
#define DEP_CHILD_GRACE_MS 5000
#define DEP_CHILD_FAILED_GRACE_MS 200
#define DEP_RETRY_MIN_MS 1000
#define DEP_RETRY_MAX_MS 60000

struct adm_job;

struct adm_var {
    struct adm_job *job;
    char name[ADM_NAME_MAX + 1];
    enum ig_image_kind kind;
    const char *algo;
    char image[1100];
    char data_url[1100];
    char dir[PATH_MAX];
    char path[PATH_MAX];
    char url[1200];
    char **env; /* "K=V", NULL-terminated */
    double weight;
    struct ig_model *model;
    struct ig_child *child;
    struct evhttp_connection *ping;
    int ping_out;
    int loading; /* on the loader thread */
    int served;  /* its child and directory went to the endpoint */
    int ready;
    int failed;
    char why[768];
};

struct adm_job {
    struct ig_admin *a;
    struct adm_dep *dep;
    json_int_t d;
    int transition; /* Creating/Updating: move the status when done */
    atomic_int cancelled; /* also read by the loader thread */
    int loading;
    size_t n;
    struct adm_var v[IG_GATEWAY_MAX_VARIANTS];
    uint64_t deadline_us;
    uint64_t timeout_us; /* the startup timeout, counted again once its loads are done */
    struct event *tick;
};

/* Children of variants no longer served: stopped once their requests are
 * answered. */
struct adm_retired {
    struct adm_retired *next;
    char name[ADM_NAME_MAX + 1];
    struct ig_child *children[IG_GATEWAY_MAX_VARIANTS];
    char *dirs[IG_GATEWAY_MAX_VARIANTS]; /* their model directories (ours), or NULL */
    size_t n;
    uint64_t deadline_us;
};

struct adm_dep {
    struct adm_dep *next;
    struct ig_admin *a;
    char name[ADM_NAME_MAX + 1];
    char lname[ADM_NAME_MAX + 1];
    json_int_t served_d; /* 0: nothing served */
    struct adm_job *job;
    struct ig_child *children[IG_GATEWAY_MAX_VARIANTS]; /* of the variants served */
    char *child_dirs[IG_GATEWAY_MAX_VARIANTS];          /* their DATA_DIR/models/... */
    size_t nchildren;
    /* Deleting: the drain, then the document goes */
    struct event *drain;
    /* a deployment that failed here while the store says InService (the
     * model is fine elsewhere) is tried again, backing off */
    struct event *retry;
    uint64_t retry_ms;
    char failed[512]; /* why the last deployment failed here ("" after one served) */
    int initial;      /* read from the first listing: its first deployment counts as loading */
    json_int_t del_ver;
    uint64_t drain_deadline_us;
};

static void dep_job_tick(evutil_socket_t fd, short what, void *arg);
static void dep_reconcile(struct ig_admin *a, const char *lname, json_t *doc);

/* ---- helpers ------------------------------------------------------------ */

static int dep_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void dep_rmtree(const char *path)
{
    nftw(path, dep_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void dep_rm_work(void *arg)
{
    dep_rmtree(arg);
}

static void dep_rm_done(void *arg)
{
    free(arg);
}

/* Remove <path> (ours, below DATA_DIR/models) from the loop without doing
 * the work there: a serve program's unpacked ModelDataUrl may hold 10000
 * entries and 1 GiB (the artifact caps), and removing the ten of an
 * endpoint on the loop stalled every request and call of every client for
 * over a second at each delete, update or failed deployment. The tree is
 * renamed at once (a new deployment may make the same path right after)
 * and removed on the loader thread; a name "<pid>-.gone-N" left by a crash
 * is removed at the next start (adm_dep_clean). */
static void dep_rmtree_later(struct ig_admin *a, const char *path)
{
    static unsigned long seq;
    char gone[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int n;

    /* closing: the loader is being freed (its last completions clear
     * cancelled jobs), a job submitted now would never run */
    if (slash == NULL || a->loader == NULL || a->closing) {
        dep_rmtree(path);
        return;
    }
    n = snprintf(gone, sizeof(gone), "%.*s/%ld-.gone-%lu", (int)(slash - path), path,
                 (long)getpid(), ++seq);
    if (n < 0 || (size_t)n >= sizeof(gone)) {
        dep_rmtree(path);
        return;
    }
    if (rename(path, gone) != 0) {
        if (errno != ENOENT) /* ENOENT: nothing was unpacked there */
            dep_rmtree(path);
        return;
    }
    {
        char *copy = ig_xstrdup(gone);

        if (ig_workers_submit(a->loader, dep_rm_work, dep_rm_done, copy) < 0) {
            dep_rmtree(copy);
            free(copy);
        }
    }
}

static struct adm_dep *dep_find(struct ig_admin *a, const char *lname, int make)
{
    struct adm_dep *d;

    for (d = a->deps; d != NULL; d = d->next)
        if (strcmp(d->lname, lname) == 0)
            return d;
    if (!make)
        return NULL;
    d = ig_xcalloc(1, sizeof(*d));
    d->a = a;
    snprintf(d->lname, sizeof(d->lname), "%s", lname);
    snprintf(d->name, sizeof(d->name), "%s", lname);
    d->next = a->deps;
    a->deps = d;
    return d;
}

static void on_retired_tick(evutil_socket_t fd, short what, void *arg)
{
    struct ig_admin *a = arg;
    struct adm_retired **pr = &a->retired, *r;
    uint64_t now = ig_now_us();
    struct timeval tv = {0, DEP_TICK_US};

    (void)fd;
    (void)what;
    while ((r = *pr) != NULL) {
        if (ig_gateway_retired_busy(a->gw, r->name) > 0 && now < r->deadline_us) {
            pr = &r->next;
            continue;
        }
        for (size_t i = 0; i < r->n; i++) {
            ig_child_stop(r->children[i], DEP_CHILD_GRACE_MS);
            if (r->dirs[i] != NULL)
                dep_rmtree_later(a, r->dirs[i]); /* its cwd (Linux keeps it open) */
            free(r->dirs[i]);
        }
        *pr = r->next;
        free(r);
    }
    if (a->retired != NULL)
        evtimer_add(a->retired_tick, &tv);
}

/* The children serving <d> now are stopped once the variants retired with
 * them have answered what they hold. */
static void dep_retire_children(struct adm_dep *d)
{
    struct ig_admin *a = d->a;
    struct adm_retired *r;
    struct timeval tv = {0, DEP_TICK_US};
    uint64_t hold_ms;

    if (d->nchildren == 0)
        return;
    /* Stopped once the retired variants have answered what they hold, at
     * the latest when those requests' deadlines have passed: not after
     * drain_timeout_ms, which a model's call may outlast (an update then
     * failed the requests routed to the old variants, and a delete the
     * ones it still held). */
    hold_ms = ig_gateway_hold_ms(a->gw, d->name);
    if (hold_ms < a->cfg->drain_timeout_ms)
        hold_ms = a->cfg->drain_timeout_ms;
    r = ig_xcalloc(1, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", d->name);
    memcpy(r->children, d->children, d->nchildren * sizeof(*r->children));
    memcpy(r->dirs, d->child_dirs, d->nchildren * sizeof(*r->dirs));
    memset(d->child_dirs, 0, sizeof(d->child_dirs));
    r->n = d->nchildren;
    r->deadline_us = ig_now_us() + hold_ms * 1000;
    d->nchildren = 0;
    r->next = a->retired;
    a->retired = r;
    if (a->retired_tick == NULL)
        a->retired_tick = evtimer_new(a->base, on_retired_tick, a);
    evtimer_add(a->retired_tick, &tv);
}

/* ---- jobs --------------------------------------------------------------- */

static void dep_var_clear(struct adm_var *v)
{
    if (v->ping != NULL)
        evhttp_connection_free(v->ping);
    v->ping = NULL;
    if (v->child != NULL) /* never served (a deployment that failed or was cancelled): no
                           * request to finish, so no grace to wait out before the retry */
        ig_child_stop(v->child, DEP_CHILD_FAILED_GRACE_MS);
    v->child = NULL;
    if (v->kind == IG_IMAGE_EXEC && v->dir[0] != '\0' && !v->served)
        dep_rmtree_later(v->job->a, v->dir); /* ours (DATA_DIR/models/...): never the model
                                              * data's own */
    ig_model_free(v->model);
    v->model = NULL;
    if (v->env != NULL) {
        for (char **e = v->env; *e != NULL; e++)
            free(*e);
        free(v->env);
        v->env = NULL;
    }
}

/* Free <j> unless a variant is still on the loader (its completion frees
 * it then). */
static void dep_job_free(struct adm_job *j)
{
    atomic_store(&j->cancelled, 1);
    if (j->dep != NULL && j->dep->job == j)
        j->dep->job = NULL;
    j->dep = NULL;
    if (j->tick != NULL) {
        event_free(j->tick);
        j->tick = NULL;
    }
    for (size_t i = 0; i < j->n; i++)
        if (j->v[i].ping != NULL) {
            evhttp_connection_free(j->v[i].ping);
            j->v[i].ping = NULL;
        }
    if (j->loading > 0)
        return;
    for (size_t i = 0; i < j->n; i++)
        dep_var_clear(&j->v[i]);
    free(j);
}

/* Loader thread: fetch and load one variant's model. */
static void dep_load_work(void *arg)
{
    struct adm_var *v = arg;
    int rv;

    if (atomic_load(&v->job->cancelled)) { /* deleted or replaced while queued */
        v->failed = 1;
        snprintf(v->why, sizeof(v->why), "cancelled");
        return;
    }
    dep_rmtree(v->dir); /* a previous run's, same deployment */
    rv = ig_artifact_fetch(v->data_url, v->kind == IG_IMAGE_BUILTIN ? v->algo : NULL, v->dir,
                           v->path, sizeof(v->path), v->why, sizeof(v->why));
    if (rv == 0 && v->kind == IG_IMAGE_BUILTIN) {
        rv = ig_model_load_file(v->path, &v->model, v->why, sizeof(v->why));
        if (rv == 0 && strcmp(ig_model_algo_name(v->model), v->algo) != 0) {
            snprintf(v->why, sizeof(v->why),
                     "the model data at %.400s is a %s model, but the image is %s", v->data_url,
                     ig_model_algo_name(v->model), v->algo);
            rv = IG_ERR_INVALID;
        }
        dep_rmtree(v->dir); /* loaded: the unpacked files are not needed */
    }
    if (rv < 0)
        v->failed = 1;
}

static void dep_load_done(void *arg)
{
    struct adm_var *v = arg;
    struct adm_job *j = v->job;
    struct timeval now = {0, 0};

    v->loading = 0;
    j->loading--;
    if (atomic_load(&j->cancelled)) {
        if (j->loading == 0)
            dep_job_free(j);
        return;
    }
    if (j->loading == 0) {
        /* The time queued on the one loader thread behind other endpoints'
         * loads (any client's: 1 GiB archives, 256 MiB model files) is not
         * this model's startup: counted, it failed a small model "still
         * loading" as soon as another client's loads outlasted its
         * ContainerStartupHealthCheckTimeoutInSeconds. */
        uint64_t until = ig_now_us() + j->timeout_us;

        if (until > j->deadline_us)
            j->deadline_us = until;
    }
    if (!v->failed && v->kind == IG_IMAGE_BUILTIN) {
        v->ready = 1;
        snprintf(v->url, sizeof(v->url), "file://%.1100s", v->path);
    }
    evtimer_add(j->tick, &now);
}

static void on_ping(struct evhttp_request *req, void *arg)
{
    struct adm_var *v = arg;

    v->ping_out = 0;
    if (req != NULL && evhttp_request_get_response_code(req) == 200)
        v->ready = 1;
    else if (req != NULL)
        snprintf(v->why, sizeof(v->why), "GET /ping answered %d",
                 evhttp_request_get_response_code(req));
    else
        snprintf(v->why, sizeof(v->why), "GET /ping: no answer (not listening yet?)");
}

static void dep_ping(struct ig_admin *a, struct adm_var *v, const char *url)
{
    struct evhttp_request *req;
    char path[1200];

    if (v->ping_out)
        return;
    if (v->ping == NULL) {
        struct evhttp_uri *u = evhttp_uri_parse(url);
        const char *host = u ? evhttp_uri_get_host(u) : NULL;
        int port = u ? evhttp_uri_get_port(u) : -1;

        if (host == NULL || strncmp(url, "http://", 7) != 0) {
            if (u)
                evhttp_uri_free(u);
            v->failed = 1;
            snprintf(v->why, sizeof(v->why), "%s: only http:// containers can be probed", url);
            return;
        }
        v->ping =
            evhttp_connection_base_new(a->base, NULL, host, (ev_uint16_t)(port < 0 ? 80 : port));
        evhttp_uri_free(u);
        if (v->ping == NULL) {
            v->failed = 1;
            snprintf(v->why, sizeof(v->why), "%s: cannot make a connection", url);
            return;
        }
        evhttp_connection_set_timeout(v->ping, DEP_PING_TIMEOUT_S);
    }
    req = evhttp_request_new(on_ping, v);
    if (req == NULL)
        return;
    {
        /* PREFIX/ping for http://HOST:PORT/PREFIX */
        const char *p = strchr(url + 7, '/');
        size_t plen = p ? strlen(p) : 0;

        while (plen > 0 && p[plen - 1] == '/')
            plen--;
        snprintf(path, sizeof(path), "%.*s/ping", (int)plen, p ? p : "");
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "localhost");
    if (evhttp_make_request(v->ping, req, EVHTTP_REQ_GET, path) == 0)
        v->ping_out = 1;
}

/* ---- status changes ----------------------------------------------------- */

struct dep_fin {
    struct ig_admin *a;
    char lname[ADM_NAME_MAX + 1];
    json_int_t d;
    int ok;
    char why[1024];
};

static void on_fin_cas(struct ig_store *s, redisReply *r, void *arg)
{
    struct dep_fin *f = arg;

    (void)s;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer != 1)
        ig_log(IG_LOG_INFO, "endpoint %s: status already changed by another gateway", f->lname);
    free(f);
}

/* The document read back: move its status if it still waits for
 * deployment <d>. */
static void on_fin_doc(struct ig_store *s, redisReply *r, void *arg)
{
    struct dep_fin *f = arg;
    json_t *doc = (r && r->type == REDIS_REPLY_STRING) ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    const char *st = doc ? json_string_value(json_object_get(doc, "EndpointStatus")) : NULL;
    json_int_t ver;
    char *body;

    (void)s;
    if (doc == NULL || st == NULL || json_integer_value(json_object_get(doc, "_D")) != f->d ||
        (strcmp(st, "Creating") != 0 && strcmp(st, "Updating") != 0)) {
        json_decref(doc);
        free(f);
        return;
    }
    ver = json_integer_value(json_object_get(doc, "_V"));
    if (strcmp(st, "Updating") == 0) {
        json_t *p = json_object_get(doc, "_Pending");

        if (f->ok) {
            json_object_set(doc, "EndpointConfigName", json_object_get(p, "EndpointConfigName"));
            json_object_set(doc, "_Variants", json_object_get(p, "Variants"));
            json_object_set_new(doc, "ProductionVariants",
                                adm_variant_summaries(json_object_get(p, "Variants"), adm_now()));
        }
        json_object_del(doc, "_Pending");
        /* a failed update leaves the old variants serving: InService */
        json_object_set_new(doc, "EndpointStatus", json_string("InService"));
        if (!f->ok) {
            json_int_t served = json_integer_value(json_object_get(doc, "_Served"));
            char why[1200];

            snprintf(why, sizeof(why), "The update failed and was rolled back: %s", f->why);
            json_object_set_new(doc, "FailureReason", json_string(why));
            /* the deployment that serves is the old one */
            json_object_set_new(doc, "_D", json_integer(served ? served : f->d));
        }
    } else {
        json_object_set_new(doc, "EndpointStatus", json_string(f->ok ? "InService" : "Failed"));
        if (!f->ok)
            json_object_set_new(doc, "FailureReason", json_string(f->why));
    }
    if (f->ok)
        json_object_set_new(doc, "_Served", json_integer(f->d));
    json_object_set_new(doc, "LastModifiedTime", json_real(adm_now()));
    json_object_set_new(doc, "_V", json_integer(ver + 1));
    body = adm_dump(doc);
    json_decref(doc);
    if (body == NULL) {
        free(f);
        return;
    }
    if (adm_cas(f->a, f->lname, ver, body, on_fin_cas, f) < 0)
        free(f);
    free(body);
}

static void dep_finish(struct ig_admin *a, const char *lname, json_int_t d, int ok, const char *why)
{
    struct dep_fin *f = ig_xcalloc(1, sizeof(*f));
    char key[128];

    f->a = a;
    snprintf(f->lname, sizeof(f->lname), "%s", lname);
    f->d = d;
    f->ok = ok;
    snprintf(f->why, sizeof(f->why), "%s", why ? why : "");
    snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_ENDPOINT].key, lname);
    if (ig_store_cmdf(a->store, on_fin_doc, f, "GET %s", key) < 0) {
        ig_log(IG_LOG_WARN, "endpoint %s: store down; the status moves on the next resync", lname);
        free(f);
    }
}

/* Every variant is ready: serve them. */
static void dep_job_done(struct adm_job *j)
{
    struct adm_dep *d = j->dep;
    struct ig_admin *a = d->a;
    struct ig_gateway_variant gv[IG_GATEWAY_MAX_VARIANTS];
    char err[768];
    int rv;

    for (size_t i = 0; i < j->n; i++) {
        gv[i].variant = j->v[i].name;
        gv[i].model_url = j->v[i].url;
        gv[i].model = j->v[i].model;
        gv[i].weight = j->v[i].weight;
        j->v[i].model = NULL; /* taken over */
    }
    rv = ig_gateway_serve(a->gw, d->name, gv, j->n, err, sizeof(err));
    if (rv < 0) {
        ig_log(IG_LOG_ERROR, "endpoint %s: %s", d->name, err);
        if (j->transition)
            dep_finish(a, d->lname, j->d, 0, err);
        dep_job_free(j);
        return;
    }
    dep_retire_children(d);
    for (size_t i = 0; i < j->n; i++)
        if (j->v[i].child != NULL) {
            d->child_dirs[d->nchildren] = ig_xstrdup(j->v[i].dir);
            d->children[d->nchildren++] = j->v[i].child;
            j->v[i].child = NULL;
            j->v[i].served = 1;
        }
    d->served_d = j->d;
    d->initial = 0;
    d->retry_ms = 0;
    d->failed[0] = '\0';
    ig_log(IG_LOG_INFO, "endpoint %s: deployment %lld serving %zu variant(s)", d->name,
           (long long)j->d, j->n);
    if (j->transition) {
        dep_finish(a, d->lname, j->d, 1, NULL);
    } else {
        /* read it again: an update may wait behind what was just served */
        char msg[16 + ADM_NAME_MAX];
        int n = snprintf(msg, sizeof(msg), "endpoint %s", d->lname);

        adm_dep_event(a, msg, (size_t)n);
    }
    dep_job_free(j);
}

static void on_dep_retry(evutil_socket_t fd, short what, void *arg)
{
    struct adm_dep *d = arg;
    char msg[16 + ADM_NAME_MAX];
    int n = snprintf(msg, sizeof(msg), "endpoint %s", d->lname);

    (void)fd;
    (void)what;
    adm_dep_event(d->a, msg, (size_t)n); /* read it again, and deploy */
}

static void dep_job_fail(struct adm_job *j, const struct adm_var *v)
{
    struct adm_dep *d = j->dep;
    char why[1024];

    snprintf(why, sizeof(why), "Variant %s: %s", v->name, v->why);
    ig_log(IG_LOG_ERROR, "endpoint %s: deployment %lld failed: %s", d->name, (long long)j->d, why);
    d->initial = 0;
    if (j->transition)
        dep_finish(d->a, d->lname, j->d, 0, why);
    /* Read it again later: Failed (this gateway moved it, or another did)
     * then leaves it unserved; InService (it deployed elsewhere: a model
     * file missing here, a container this host cannot reach) is tried
     * again, backing off, and /readyz says why meanwhile. */
    {
        struct timeval tv;

        /* cleared when the store's answer comes: Failed (unserved), a
         * rolled-back update (the old variants served) */
        snprintf(d->failed, sizeof(d->failed), "%.500s", why);
        d->retry_ms = d->retry_ms ? d->retry_ms * 2 : DEP_RETRY_MIN_MS;
        if (d->retry_ms > DEP_RETRY_MAX_MS)
            d->retry_ms = DEP_RETRY_MAX_MS;
        tv.tv_sec = (time_t)(d->retry_ms / 1000);
        tv.tv_usec = (suseconds_t)(d->retry_ms % 1000 * 1000);
        if (d->retry == NULL)
            d->retry = evtimer_new(d->a->base, on_dep_retry, d);
        evtimer_add(d->retry, &tv);
        ig_log(IG_LOG_WARN, "endpoint %s: deploying again in %llu ms", d->name,
               (unsigned long long)d->retry_ms);
    }
    dep_job_free(j);
}

static void dep_job_tick(evutil_socket_t fd, short what, void *arg)
{
    struct adm_job *j = arg;
    struct ig_admin *a = j->dep->a;
    struct timeval tv = {0, DEP_TICK_US};
    size_t ready = 0;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < j->n; i++) {
        struct adm_var *v = &j->v[i];

        if (v->failed) {
            dep_job_fail(j, v);
            return;
        }
        if (v->ready) {
            ready++;
            continue;
        }
        if (v->loading)
            continue;
        if (v->kind == IG_IMAGE_EXEC && v->child == NULL) {
            struct ig_child_conf cc = {0};
            char log[PATH_MAX + 64], name[160], exe[PATH_MAX];

            snprintf(log, sizeof(log), "%s/logs", a->cfg->data_dir);
            mkdir(log, 0700);
            /* '.' joins them: names have none, where '-' made endpoint a-b's
             * variant c and endpoint a's variant b-c share one log (and a
             * FailureReason quote the other's program) */
            snprintf(log, sizeof(log), "%s/logs/%s.%s.log", a->cfg->data_dir, j->dep->lname,
                     v->name);
            snprintf(name, sizeof(name), "%s/%s", j->dep->name, v->name);
            if (ig_child_stopping(name) > 0)
                continue; /* the last one (a failed try) is not gone yet */
            if (adm_exec_allowed(a->cfg, v->image + 7, exe, sizeof(exe), v->why, sizeof(v->why)) <
                0) {
                v->failed = 1;
                dep_job_fail(j, v);
                return;
            }
            cc.exe = exe;
            cc.env = (const char *const *)v->env;
            cc.model_dir = v->path;
            cc.log_path = log;
            cc.name = name;
            if (ig_child_start(a->base, &cc, &v->child, v->why, sizeof(v->why)) < 0) {
                v->failed = 1;
                {
                    dep_job_fail(j, v);
                    return;
                }
            }
            snprintf(v->url, sizeof(v->url), "http://127.0.0.1:%u", ig_child_port(v->child));
        }
        if (v->kind == IG_IMAGE_EXEC && ig_child_exits(v->child) > 0) {
            char last[512], msg[sizeof(v->why)];

            ig_child_last_exit(v->child, last, sizeof(last));
            snprintf(msg, sizeof(msg), "the serve program %.200s ended before answering /ping (%.500s)",
                     v->image, last);
            memcpy(v->why, msg, sizeof(v->why));
            v->failed = 1;
            {
                dep_job_fail(j, v);
                return;
            }
        }
        if (v->kind != IG_IMAGE_BUILTIN) {
            if (v->kind == IG_IMAGE_CONTAINER)
                snprintf(v->url, sizeof(v->url), "%s", v->image);
            dep_ping(a, v, v->url);
            if (v->failed) {
                dep_job_fail(j, v);
                return;
            }
        }
    }
    if (ready == j->n) {
        dep_job_done(j);
        return;
    }
    if (j->loading == 0 && ig_now_us() > j->deadline_us) { /* loads end (capped, never block) */
        for (size_t i = 0; i < j->n; i++)
            if (!j->v[i].ready) {
                char why[sizeof(j->v[i].why)];

                snprintf(why, sizeof(why), "%.600s",
                         j->v[i].why[0] ? j->v[i].why : "still loading");
                snprintf(j->v[i].why, sizeof(j->v[i].why),
                         "the model did not pass the health check within the startup timeout "
                         "(%.600s)",
                         why);
                {
                    dep_job_fail(j, &j->v[i]);
                    return;
                }
            }
    }
    evtimer_add(j->tick, &tv);
}

/* Start deploying <vars> as deployment <d> of <dep>. */
static void dep_job_start(struct adm_dep *dep, json_t *vars, json_int_t d, int transition)
{
    struct ig_admin *a = dep->a;
    struct adm_job *j = ig_xcalloc(1, sizeof(*j));
    struct timeval now = {0, 0};
    uint64_t timeout_s = 0;

    j->a = a;
    j->dep = dep;
    j->d = d;
    j->transition = transition;
    j->n = json_array_size(vars);
    if (j->n > IG_GATEWAY_MAX_VARIANTS)
        j->n = IG_GATEWAY_MAX_VARIANTS;
    j->tick = evtimer_new(a->base, dep_job_tick, j);
    dep->job = j;
    for (size_t i = 0; i < j->n; i++) {
        struct adm_var *v = &j->v[i];
        json_t *jv = json_array_get(vars, i), *ct = json_object_get(jv, "Container");
        const char *image = json_string_value(json_object_get(ct, "Image"));
        const char *url = json_string_value(json_object_get(ct, "ModelDataUrl"));
        json_t *env = json_object_get(ct, "Environment");
        json_int_t to = json_integer_value(json_object_get(jv, "StartupTimeout"));

        v->job = j;
        snprintf(v->name, sizeof(v->name), "%s",
                 json_string_value(json_object_get(jv, "VariantName"))
                     ? json_string_value(json_object_get(jv, "VariantName"))
                     : "AllTraffic");
        v->weight = json_number_value(json_object_get(jv, "Weight"));
        snprintf(v->image, sizeof(v->image), "%s", image ? image : "");
        snprintf(v->data_url, sizeof(v->data_url), "%s", url ? url : "");
        snprintf(v->dir, sizeof(v->dir), "%s/models/%ld-%s-%lld-%s", a->cfg->data_dir,
                 (long)getpid(), dep->lname, (long long)d, v->name);
        timeout_s = (uint64_t)(to > 0 ? to : DEP_STARTUP_DEFAULT_S) > timeout_s
                        ? (uint64_t)(to > 0 ? to : DEP_STARTUP_DEFAULT_S)
                        : timeout_s;
        if (ig_artifact_classify(v->image, &v->kind, &v->algo, v->why, sizeof(v->why)) < 0) {
            v->failed = 1;
            continue;
        }
        if (json_is_object(env) && json_object_size(env) > 0) {
            const char *k;
            json_t *val;
            size_t n = 0;

            v->env = ig_xcalloc(json_object_size(env) + 1, sizeof(*v->env));
            json_object_foreach(env, k, val)
            {
                size_t len = strlen(k) + json_string_length(val) + 2;

                v->env[n] = ig_xmalloc(len);
                snprintf(v->env[n++], len, "%s=%s", k, json_string_value(val));
            }
        }
        if (v->kind == IG_IMAGE_CONTAINER)
            continue;
        if (v->kind == IG_IMAGE_EXEC && v->data_url[0] == '\0') {
            /* no model data: an empty model directory of its own */
            char models[PATH_MAX];

            snprintf(models, sizeof(models), "%s/models", a->cfg->data_dir);
            mkdir(models, 0700);
            mkdir(v->dir, 0700);
            snprintf(v->path, sizeof(v->path), "%s", v->dir);
            continue;
        }
        v->loading = 1;
        j->loading++;
        if (ig_workers_submit(a->loader, dep_load_work, dep_load_done, v) < 0) {
            v->loading = 0;
            j->loading--;
            v->failed = 1;
            snprintf(v->why, sizeof(v->why), "the model loader is busy; retry later");
        }
    }
    j->timeout_us = timeout_s * 1000000;
    j->deadline_us = ig_now_us() + j->timeout_us;
    evtimer_add(j->tick, &now);
}

/* ---- reconcile ---------------------------------------------------------- */

static void dep_forget(struct ig_admin *a, struct adm_dep *d)
{
    struct adm_dep **pd = &a->deps;

    while (*pd != d)
        pd = &(*pd)->next;
    *pd = d->next;
    if (d->job)
        dep_job_free(d->job);
    if (d->drain)
        event_free(d->drain);
    if (d->retry)
        event_free(d->retry);
    free(d);
}

static void dep_unserve(struct adm_dep *d)
{
    if (d->job)
        dep_job_free(d->job);
    d->failed[0] = '\0'; /* not to be served: nothing failing here */
    if (d->retry)
        evtimer_del(d->retry);
    d->retry_ms = 0;
    if (d->served_d != 0) {
        ig_gateway_unserve(d->a->gw, d->name);
        dep_retire_children(d);
        ig_log(IG_LOG_INFO, "endpoint %s: no longer served", d->name);
    }
    d->served_d = 0;
}

/* A gateway has answered what it held of a Deleting endpoint: it says so
 * in the endpoint's set of drained gateways, and the document goes once
 * every live gateway (ADM_GATEWAYS, by heartbeat) is in it, or with <force>
 * (drain_timeout_ms passed). KEYS: doc, index, drained set, gateways.
 * ARGV: version, lname, channel, message, this gateway, now (ms), force.
 * 1 deleted, 2 others still draining, 0 another version, -1 gone. */
static const char dep_lua_drained[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if not cur then return -1 end\n"
    "local d = cjson.decode(cur)\n"
    "if d._V ~= tonumber(ARGV[1]) then return 0 end\n"
    "redis.call('SADD', KEYS[3], ARGV[5])\n"
    "redis.call('PEXPIRE', KEYS[3], 3600000)\n"
    "if ARGV[7] ~= '1' then\n"
    "  local live = redis.call('ZRANGEBYSCORE', KEYS[4], ARGV[6], '+inf')\n"
    "  for _, g in ipairs(live) do\n"
    "    if redis.call('SISMEMBER', KEYS[3], g) == 0 then return 2 end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1], KEYS[3])\n"
    "redis.call('ZREM', KEYS[2], ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "return 1\n";

/* A reply nothing waits for (the drain's: its event or its tick follows;
 * the heartbeat's). */
static void on_ignored(struct ig_store *s, redisReply *r, void *arg)
{
    (void)s;
    (void)r;
    (void)arg;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct adm_dep *d = arg;
    struct ig_admin *a = d->a;
    struct timeval tv = {0, 50000};
    char key[128], set[192], vs[32], msg[96], now[32];
    const char *argv[14];
    size_t lens[14];
    int force = ig_now_us() >= d->drain_deadline_us;

    (void)fd;
    (void)what;
    if (ig_gateway_busy(a->gw, d->name) > 0 && !force) {
        evtimer_add(d->drain, &tv);
        return;
    }
    snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_ENDPOINT].key, d->lname);
    snprintf(set, sizeof(set), ADM_PREFIX "drained:%s:%lld", d->lname, (long long)d->del_ver);
    snprintf(vs, sizeof(vs), "%lld", (long long)d->del_ver);
    snprintf(msg, sizeof(msg), "endpoint %s", d->lname);
    snprintf(now, sizeof(now), "%llu", (unsigned long long)(adm_now() * 1000));
    argv[0] = "EVAL";
    argv[1] = dep_lua_drained;
    argv[2] = "4";
    argv[3] = key;
    argv[4] = adm_kinds[ADM_ENDPOINT].index;
    argv[5] = set;
    argv[6] = ADM_GATEWAYS;
    argv[7] = vs;
    argv[8] = d->lname;
    argv[9] = ADM_CHANNEL;
    argv[10] = msg;
    argv[11] = a->id;
    argv[12] = now;
    argv[13] = force ? "1" : "0";
    for (int i = 0; i < 14; i++)
        lens[i] = strlen(argv[i]);
    ig_store_cmd(a->store, on_ignored, NULL, 14, argv, lens);
    /* asked again until the document's deletion comes as an event (which
     * frees this timer), whatever the answer: other gateways still
     * draining, or the store down */
    tv.tv_usec = 100000;
    evtimer_add(d->drain, &tv);
}

/* The heartbeat: this gateway is live for ADM_HEARTBEAT_TTL_MS more (the
 * delete drains wait for the live ones). */
static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct ig_admin *a = arg;
    struct timeval tv = {ADM_HEARTBEAT_S, 0};
    unsigned long long now = (unsigned long long)(adm_now() * 1000);

    (void)fd;
    (void)what;
    if (ig_store_up(a->store)) {
        ig_store_cmdf(a->store, on_ignored, NULL, "ZADD %s %llu %s", ADM_GATEWAYS,
                      now + ADM_HEARTBEAT_TTL_MS, a->id);
        ig_store_cmdf(a->store, on_ignored, NULL, "ZREMRANGEBYSCORE %s -inf %llu", ADM_GATEWAYS,
                      now);
    }
    evtimer_add(a->heartbeat, &tv);
}

void adm_dep_heartbeat(struct ig_admin *a)
{
    struct timeval now = {0, 0};

    if (a->heartbeat == NULL)
        a->heartbeat = evtimer_new(a->base, on_heartbeat, a);
    evtimer_add(a->heartbeat, &now);
}

static void dep_reconcile(struct ig_admin *a, const char *lname, json_t *doc)
{
    struct adm_dep *d = dep_find(a, lname, doc != NULL);
    const char *st, *name;
    json_t *vars;
    json_int_t dd, ver;
    int transition = 0;

    if (d == NULL)
        return;
    if (doc == NULL) {
        dep_unserve(d);
        dep_forget(a, d);
        return;
    }
    name = json_string_value(json_object_get(doc, "EndpointName"));
    if (name != NULL)
        snprintf(d->name, sizeof(d->name), "%s", name);
    st = json_string_value(json_object_get(doc, "EndpointStatus"));
    st = st ? st : "";
    dd = json_integer_value(json_object_get(doc, "_D"));
    ver = json_integer_value(json_object_get(doc, "_V"));
    if (strcmp(st, "Deleting") == 0) {
        struct timeval now = {0, 0};

        dep_unserve(d);
        if (d->drain == NULL) {
            d->drain = evtimer_new(a->base, on_drain_tick, d);
            d->drain_deadline_us = ig_now_us() + a->cfg->drain_timeout_ms * 1000;
        }
        d->del_ver = ver;
        evtimer_add(d->drain, &now);
        return;
    }
    if (d->drain != NULL) { /* a Deleting one that was re-created meanwhile */
        event_free(d->drain);
        d->drain = NULL;
    }
    if (strcmp(st, "Failed") == 0 || strcmp(st, "OutOfService") == 0) {
        dep_unserve(d);
        return;
    }
    if (strcmp(st, "Updating") == 0) {
        json_int_t sv = json_integer_value(json_object_get(doc, "_Served"));

        if (d->served_d == 0 && sv > 0 && sv != dd &&
            json_array_size(json_object_get(doc, "_Variants")) > 0) {
            /* a gateway that serves nothing of it yet (started during the
             * update) serves the old variants first; the read after that
             * brings the pending ones */
            vars = json_object_get(doc, "_Variants");
            dd = sv;
        } else {
            vars = json_object_get(json_object_get(doc, "_Pending"), "Variants");
            transition = 1;
        }
    } else {
        vars = json_object_get(doc, "_Variants");
        transition = strcmp(st, "Creating") == 0;
    }
    if (d->served_d == dd) {
        /* a job for another deployment (an update rolled back meanwhile) */
        if (d->job != NULL && d->job->d != dd)
            dep_job_free(d->job);
        d->failed[0] = '\0'; /* what the store wants is served here */
        d->retry_ms = 0;
        if (d->retry != NULL)
            evtimer_del(d->retry);
        if (transition) /* served here already: only the status is behind */
            dep_finish(a, d->lname, dd, 1, NULL);
        return;
    }
    if (d->job != NULL && d->job->d == dd)
        return;
    if (d->job != NULL)
        dep_job_free(d->job);
    if (!json_is_array(vars) || json_array_size(vars) == 0) {
        ig_log(IG_LOG_ERROR, "endpoint %s: stored document has no variants", d->name);
        return;
    }
    dep_job_start(d, vars, dd, transition);
}

/* ---- store events ------------------------------------------------------- */

struct dep_get {
    struct ig_admin *a;
    char lname[ADM_NAME_MAX + 1];
    int initial; /* a read of the first listing (ig_admin_loading) */
};

static void on_event_doc(struct ig_store *s, redisReply *r, void *arg)
{
    struct dep_get *g = arg;
    json_t *doc;

    (void)s;
    if (g->initial)
        g->a->initial_pending--;
    if (r == NULL || r->type == REDIS_REPLY_ERROR || g->a->closing) {
        free(g);
        return;
    }
    doc = r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    dep_reconcile(g->a, g->lname, doc);
    if (g->initial) {
        struct adm_dep *d = dep_find(g->a, g->lname, 0);

        if (d != NULL && d->job != NULL)
            d->initial = 1;
    }
    json_decref(doc);
    free(g);
}

static void dep_read(struct ig_admin *a, const char *msg, size_t len, int initial)
{
    struct dep_get *g;
    char key[128];

    if (len <= 9 || len - 9 > ADM_NAME_MAX || memcmp(msg, "endpoint ", 9) != 0)
        return;
    g = ig_xcalloc(1, sizeof(*g));
    g->a = a;
    g->initial = initial;
    memcpy(g->lname, msg + 9, len - 9);
    snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_ENDPOINT].key, g->lname);
    if (ig_store_cmdf(a->store, on_event_doc, g, "GET %s", key) < 0) {
        free(g); /* down: the resync when it is back covers it */
        return;
    }
    if (initial)
        a->initial_pending++;
}

void adm_dep_event(struct ig_admin *a, const char *msg, size_t len)
{
    dep_read(a, msg, len, 0);
}

int adm_dep_loading(const struct ig_admin *a)
{
    if (!a->resynced || a->initial_pending > 0)
        return 1;
    for (const struct adm_dep *d = a->deps; d != NULL; d = d->next)
        if (d->initial && d->job != NULL)
            return 1; /* its first deployment here is under way */
    return 0;
}

static void on_resync_names(struct ig_store *s, redisReply *r, void *arg)
{
    struct ig_admin *a = arg;
    struct adm_dep *d, *next;

    (void)s;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || a->closing)
        return; /* down again: the next up resyncs */
    /* endpoints gone while the store was away */
    for (d = a->deps; d != NULL; d = next) {
        int found = 0;

        next = d->next;
        for (size_t i = 0; i < r->elements && !found; i++)
            found = r->element[i]->type == REDIS_REPLY_STRING &&
                    strcmp(r->element[i]->str, d->lname) == 0;
        if (!found)
            dep_reconcile(a, d->lname, NULL);
    }
    /* and each one there, read and served (one GET each: a listing of every
     * full document could pass the store's reply cap) */
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i]->len > 0 &&
            r->element[i]->len <= ADM_NAME_MAX) {
            char msg[16 + ADM_NAME_MAX];
            int n = snprintf(msg, sizeof(msg), "endpoint %s", r->element[i]->str);

            dep_read(a, msg, (size_t)n, !a->resynced);
        }
    a->resynced = 1;
}

void adm_dep_resync(struct ig_admin *a)
{
    if (a->loader == NULL &&
        ig_workers_new_nice(a->base, 1, 4 * IG_GATEWAY_MAX_ADMIN_VARIANTS, 10, &a->loader) < 0) {
        ig_log(IG_LOG_ERROR, "admin: cannot start the model loader thread");
        return;
    }
    if (ig_store_cmdf(a->store, on_resync_names, a, "ZRANGE %s 0 -1",
                      adm_kinds[ADM_ENDPOINT].index) < 0)
        ig_log(IG_LOG_WARN, "admin: resync refused by the store; again when it is back");
}

void adm_dep_clean(const struct ig_admin *a)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *dir;

    snprintf(path, sizeof(path), "%s/models", a->cfg->data_dir);
    if ((dir = opendir(path)) == NULL)
        return;
    /* "<pid>-<endpoint>-<deployment>-<variant>": a process that is gone
     * left it (a crash, a kill -9) */
    while ((e = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);

        if (end == e->d_name || *end != '-' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive: another gateway's (a shared data_dir) */
        snprintf(path, sizeof(path), "%s/models/%s", a->cfg->data_dir, e->d_name);
        dep_rmtree(path);
    }
    closedir(dir);
}

int adm_dep_failed(const struct ig_admin *a, char *why, size_t len)
{
    for (const struct adm_dep *d = a->deps; d != NULL; d = d->next)
        if (d->failed[0] != '\0') {
            snprintf(why, len, "endpoint %s cannot be served here (retrying): %s", d->name,
                     d->failed);
            return -1;
        }
    return 0;
}

void adm_dep_free_all(struct ig_admin *a)
{
    struct adm_retired *r;

    a->closing = 1;
    while (a->deps != NULL) {
        struct adm_dep *d = a->deps;

        if (d->job)
            dep_job_free(d->job);
        for (size_t i = 0; i < d->nchildren; i++) {
            ig_child_stop(d->children[i], 1000);
            dep_rmtree(d->child_dirs[i]);
            free(d->child_dirs[i]);
        }
        d->nchildren = 0;
        dep_forget(a, d);
    }
    /* the loader's jobs finish (their completions free cancelled jobs) */
    ig_workers_free(a->loader);
    a->loader = NULL;
    while ((r = a->retired) != NULL) {
        for (size_t i = 0; i < r->n; i++) {
            ig_child_stop(r->children[i], 1000);
            if (r->dirs[i] != NULL)
                dep_rmtree(r->dirs[i]);
            free(r->dirs[i]);
        }
        a->retired = r->next;
        free(r);
    }
    if (a->retired_tick != NULL)
        event_free(a->retired_tick);
    a->retired_tick = NULL;
}

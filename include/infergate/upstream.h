/*
 * upstream.h - the one vtable every model backend implements.
 *
 * The gateway sees only this interface: it hands over a packed batch and
 * gets it back, completed, on the loop thread. Three implementations:
 * local (a model inside the gateway, run on the worker pool;
 * upstream_local.c), and the remote ones of upstream_remote.c: container
 * (the SageMaker container contract over HTTP/1.1 or h2c) and sagemaker
 * (SigV4-signed InvokeEndpoint). Remote ones forward rows as bytes
 * (dim == 0), retry, bisect a batch a model refuses down to the rows it
 * refuses, and keep a circuit breaker.
 */
#ifndef INFERGATE_UPSTREAM_H
#define INFERGATE_UPSTREAM_H

#include <stdint.h>

#include "infergate/batch-t.h"
#include "infergate/metrics.h"
#include "infergate/rows-t.h"

struct event_base;
struct ig_endpoint_conf;
struct ig_model;
struct ig_upstream;
struct ig_workers;

/* Called once per submitted batch, on the loop thread, with batch->status,
 * out/preds or err_type/err_msg filled. */
typedef void ig_upstream_done_cb(struct ig_batch *batch, void *arg);

struct ig_upstream_ops {
    const char *name; /* "local", "container", "sagemaker" */
    /*
     * Start answering <batch>, whose rows are in format <ctype> (remote
     * upstreams send them as bytes in it) and whose predictions must be
     * encoded as rows of <accept>. Returns 0 (then <cb> runs exactly once,
     * later, never from inside this call) or IG_ERR_FULL when the backend
     * cannot take more work now (then <cb> never runs). The batch's rows
     * may point into request bodies that go away once submit returns: an
     * upstream that needs them later copies them here.
     */
    int (*submit_batch)(struct ig_upstream *u, struct ig_batch *batch, enum ig_format ctype,
                        enum ig_format accept, ig_upstream_done_cb *cb, void *arg);
    /*
     * The gateway no longer needs <batch>'s answer (every request in it is
     * gone). The backend stops what it can; <cb> still runs exactly once,
     * later (status IG_ERR_CANCELLED, or the answer if it had come). May be
     * NULL: nothing to stop.
     */
    void (*cancel_batch)(struct ig_upstream *u, struct ig_batch *batch);
    /* 0 when the backend can serve now; else a negative IG_ERR_* and, in
     * <why> (may be NULL), a sentence saying why (readiness probe failing,
     * circuit breaker open, no credentials). */
    int (*health)(struct ig_upstream *u, char *why, size_t whylen);
    /* Batches still submitted are handed back from inside this call, with
     * status IG_ERR_CANCELLED (the local backend has none: the workers are
     * joined before). */
    void (*destroy)(struct ig_upstream *u);
};

/* Why a call was retried (ig_upstream_stats.retries). */
enum ig_retry_reason {
    IG_RETRY_THROTTLED = 0,  /* 429, ThrottlingException */
    IG_RETRY_SERVER = 1,     /* 5xx */
    IG_RETRY_CONNECTION = 2, /* could not connect, or the connection broke */
    IG_RETRY_TIMEOUT = 3,    /* upstream_timeout_ms passed */
    IG_RETRY_REASON_COUNT = 4,
};

/* What remote upstreams count, rendered by the gateway in /metrics. */
struct ig_upstream_stats {
    uint64_t calls;        /* HTTP calls made, retries and bisection halves included */
    uint64_t calls_failed; /* calls that failed (any reason but a model's 4xx) */
    uint64_t retries[IG_RETRY_REASON_COUNT];
    uint64_t retries_denied; /* retries the retry budget refused */
    uint64_t splits;         /* batches (or halves) split to isolate failing rows */
    uint64_t breaker_opens;
    uint64_t canaries;       /* canary calls: is a model that raises down? */
    uint32_t breaker_state;  /* 0 closed, 1 open, 2 half-open */
    uint32_t connections;    /* open to the backend */
    struct ig_hist call_rows;
    struct ig_hist call_seconds;
};

/* What the gateway may know of any upstream. Implementations embed it first. */
struct ig_upstream {
    const struct ig_upstream_ops *ops;
    uint32_t dim;         /* features per row to parse (local), 0 = forward rows as bytes */
    const char *json_key; /* top-level key of a JSON response ("predictions") */
    uint32_t formats;     /* bit (1 << ig_format) per accepted request format */
    uint32_t accepts;     /* bit (1 << ig_format) per response format it can produce */
    int remote;           /* remote backends fill <stats> */
    /* local XGBoost: a sparse row's absent features are missing (NaN), as
     * XGBoost reads libsvm and sparse tensors, not 0 */
    uint8_t missing_nan;
    struct ig_upstream_stats stats;
    /* The server-wide budget (budget.h) a remote backend charges what it
     * holds to: the rows it copied, call bodies, answers as they arrive.
     * Set by the gateway once its HTTP server exists; NULL: not charged. */
    struct ig_budget *budget;
};

/* Everything an upstream may need from the gateway. */
struct ig_upstream_env {
    struct ig_workers *workers;
    struct event_base *base;             /* the loop thread's */
    const struct ig_endpoint_conf *conf; /* the endpoint's section */
    /* file:// only: a model already loaded (off the loop, by the admin
     * module's deployments), taken over instead of reading the file. */
    struct ig_model *model;
};

/*
 * Open the upstream named by a model URL (config key `model`):
 *   file://PATH                  a model.json served in-process (local)
 *   http://HOST[:PORT][/PREFIX]  a SageMaker-contract container (PREFIX/ping,
 *                                PREFIX/invocations); https too
 *   sagemaker://REGION/ENDPOINT  InvokeEndpoint on SageMaker (env->conf's
 *                                endpoint_url overrides the host)
 * Returns 0; IG_ERR_UNSUPPORTED for an unknown scheme; IG_ERR_IO or
 * IG_ERR_INVALID when the model cannot be loaded or set up; <err> says why.
 */
int ig_upstream_open(const char *url, const struct ig_upstream_env *env, struct ig_upstream **out,
                     char *err, size_t errlen);

/* The local backend (upstream_local.c). */
int ig_upstream_local_open(const char *path, const struct ig_upstream_env *env,
                           struct ig_upstream **out, char *err, size_t errlen);

/* The remote backends (upstream_remote.c): <url> whole, <spec> without
 * its sagemaker:// scheme. */
int ig_upstream_container_open(const char *url, const struct ig_upstream_env *env,
                               struct ig_upstream **out, char *err, size_t errlen);
int ig_upstream_sagemaker_open(const char *spec, const struct ig_upstream_env *env,
                               struct ig_upstream **out, char *err, size_t errlen);

static inline void ig_upstream_free(struct ig_upstream *u)
{
    if (u)
        u->ops->destroy(u);
}

#endif /* INFERGATE_UPSTREAM_H */

/*
 * upstream.h - the one vtable every model backend implements.
 *
 * The gateway sees only this interface: it hands over a packed batch and
 * gets it back, completed, on the loop thread. Three implementations are
 * planned: sagemaker (SigV4 InvokeEndpoint), container (the SageMaker
 * container contract) and local (a model inside the gateway, run on the
 * worker pool). This issue ships the local one.
 */
#ifndef INFERGATE_UPSTREAM_H
#define INFERGATE_UPSTREAM_H

#include <stdint.h>

#include "infergate/batch-t.h"
#include "infergate/rows-t.h"

struct ig_upstream;
struct ig_workers;

/* Called once per submitted batch, on the loop thread, with batch->status,
 * out/preds or err_type/err_msg filled. */
typedef void ig_upstream_done_cb(struct ig_batch *batch, void *arg);

struct ig_upstream_ops {
    const char *name; /* "local", "container", "sagemaker" */
    /*
     * Start answering <batch>, whose predictions must be encoded as rows of
     * <accept>. Returns 0 (then <cb> runs exactly once, later, never from
     * inside this call) or IG_ERR_FULL when the backend cannot take more
     * work now (then <cb> never runs).
     */
    int (*submit_batch)(struct ig_upstream *u, struct ig_batch *batch, enum ig_format accept,
                        ig_upstream_done_cb *cb, void *arg);
    /* 0 when the backend can serve, else a negative IG_ERR_*. */
    int (*health)(struct ig_upstream *u);
    void (*destroy)(struct ig_upstream *u);
};

/* What the gateway may know of any upstream. Implementations embed it first. */
struct ig_upstream {
    const struct ig_upstream_ops *ops;
    uint32_t dim;         /* features per row to parse (local), 0 = forward rows as bytes */
    const char *json_key; /* top-level key of a JSON response ("predictions") */
    uint32_t formats;     /* bit (1 << ig_format) per accepted request format */
    uint32_t accepts;     /* bit (1 << ig_format) per response format it can produce */
};

/* Everything an upstream may need from the gateway. */
struct ig_upstream_env {
    struct ig_workers *workers;
};

/*
 * Open the upstream named by a model URL (config key `model`):
 *   file://PATH  a model.json served in-process (local)
 * Returns 0; IG_ERR_UNSUPPORTED for a scheme not built yet; IG_ERR_IO or
 * IG_ERR_INVALID when the model cannot be loaded; <err> says why.
 */
int ig_upstream_open(const char *url, const struct ig_upstream_env *env, struct ig_upstream **out,
                     char *err, size_t errlen);

/* The local backend (upstream_local.c). */
int ig_upstream_local_open(const char *path, const struct ig_upstream_env *env,
                           struct ig_upstream **out, char *err, size_t errlen);

static inline void ig_upstream_free(struct ig_upstream *u)
{
    if (u)
        u->ops->destroy(u);
}

#endif /* INFERGATE_UPSTREAM_H */

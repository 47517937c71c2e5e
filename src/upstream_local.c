/*
 * upstream_local.c - a model hosted inside the gateway.
 *
 * A batch is one job on the worker pool: the worker walks the batch's
 * segments, runs the model on each row's parsed features and encodes each
 * prediction as one row of the batch's accept format into batch->out. The
 * loop thread only submits and receives; it never runs the model.
 */
#include <stdio.h>
#include <stdlib.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/model.h"
#include "infergate/upstream.h"
#include "infergate/workers.h"

/* Encoded predictions of one batch: a cap well above any real batch. */
#define LOCAL_OUT_MAX ((size_t)256 << 20)

struct local_upstream {
    struct ig_upstream base;
    struct ig_model *model;
    struct ig_workers *workers;
};

struct local_job {
    struct local_upstream *lu;
    struct ig_batch *batch;
    enum ig_format accept;
    ig_upstream_done_cb *cb;
    void *arg;
};

static void local_fail(struct ig_batch *b, int status, const char *msg)
{
    b->status = status;
    b->err_type = "InternalFailure";
    b->err_msg = ig_xstrdup(msg);
}

/* Worker thread: run the model over every row of the batch. */
static void local_work(void *arg)
{
    struct local_job *job = arg;
    struct ig_batch *b = job->batch;
    const struct ig_model *m = job->lu->model;
    uint32_t dim = ig_model_dim(m), k = 0;
    struct ig_buf out;
    int rv = 0;

    ig_buf_init(&out, LOCAL_OUT_MAX);
    b->preds = ig_try_malloc((size_t)b->nrows * sizeof(*b->preds));
    if (b->preds == NULL) {
        local_fail(b, IG_ERR_NOMEM, "out of memory for predictions");
        return;
    }
    for (uint32_t s = 0; s < b->nsegs && rv == 0; s++) {
        const struct ig_batch_seg *seg = &b->segs[s];
        const double *x = seg->rs->features + (size_t)seg->first * dim;

        for (uint32_t r = 0; r < seg->nrows && rv == 0; r++, k++, x += dim) {
            size_t before = out.len;

            rv = ig_model_predict_row(m, x, job->accept, &out);
            if (rv == IG_MODEL_NOT_FINITE) {
                /* This row alone fails: its slice says why (IG_PRED_FAILED). */
                rv = ig_buf_append_str(&out, ig_model_not_finite_msg(m));
                b->preds[k].off = (uint32_t)before;
                b->preds[k].len = (uint32_t)(out.len - before) | IG_PRED_FAILED;
                continue;
            }
            b->preds[k].off = (uint32_t)before;
            b->preds[k].len = (uint32_t)(out.len - before);
        }
    }
    if (rv < 0) {
        ig_buf_clear(&out);
        local_fail(b, rv, "model output too large");
        return;
    }
    b->out = ig_buf_take(&out, &b->out_len);
    b->status = 0;
}

/* Loop thread. */
static void local_done(void *arg)
{
    struct local_job *job = arg;

    job->cb(job->batch, job->arg);
    free(job);
}

static int local_submit(struct ig_upstream *u, struct ig_batch *batch, enum ig_format ctype,
                        enum ig_format accept, ig_upstream_done_cb *cb, void *arg)
{
    struct local_upstream *lu = (struct local_upstream *)u;
    struct local_job *job = ig_xmalloc(sizeof(*job));
    int rv;

    (void)ctype; /* rows come parsed: any format */
    job->lu = lu;
    job->batch = batch;
    job->accept = accept;
    job->cb = cb;
    job->arg = arg;
    rv = ig_workers_submit(lu->workers, local_work, local_done, job);
    if (rv < 0)
        free(job);
    return rv;
}

static int local_health(struct ig_upstream *u, char *why, size_t whylen)
{
    (void)u;
    (void)why;
    (void)whylen;
    return 0;
}

static void local_destroy(struct ig_upstream *u)
{
    struct local_upstream *lu = (struct local_upstream *)u;

    ig_model_free(lu->model);
    free(lu);
}

static const struct ig_upstream_ops local_ops = {
    .name = "local",
    .submit_batch = local_submit,
    .cancel_batch = NULL, /* a model run is short: its answer comes anyway */
    .health = local_health,
    .destroy = local_destroy,
};

int ig_upstream_local_open(const char *path, const struct ig_upstream_env *env,
                           struct ig_upstream **out, char *err, size_t errlen)
{
    struct local_upstream *lu;
    struct ig_model *m;
    int rv;

    if (env->model != NULL) {
        m = env->model;
    } else {
        rv = ig_model_load_file(path, &m, err, errlen);
        if (rv < 0)
            return rv;
    }
    lu = ig_xcalloc(1, sizeof(*lu));
    lu->base.ops = &local_ops;
    lu->base.dim = ig_model_dim(m);
    lu->base.json_key = ig_model_json_key(m);
    lu->base.missing_nan = ig_model_algo(m) == IG_ALGO_XGBOOST;
    lu->base.formats = 1u << IG_FMT_CSV | 1u << IG_FMT_JSON | 1u << IG_FMT_JSONL |
                       1u << IG_FMT_RECORDIO | 1u << IG_FMT_LIBSVM;
    lu->base.accepts =
        1u << IG_FMT_CSV | 1u << IG_FMT_JSON | 1u << IG_FMT_JSONL | 1u << IG_FMT_RECORDIO;
    lu->model = m;
    lu->workers = env->workers;
    *out = &lu->base;
    return 0;
}

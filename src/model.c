/*
 * model.c - embedded K-Means, PCA and Linear Learner: model.json loading
 * (jansson) and per-row prediction with SageMaker's response shapes; and
 * XGBoost, a booster of libxgboost loaded from XGBoost's own model file and
 * predicted in place (XGBoosterPredictFromDense, thread-safe by design).
 *
 * Loading validates every field before it allocates anything sized by the
 * file: row counts and row lengths are checked against the caps and against
 * feature_dim first, so an allocation never exceeds what the JSON really
 * holds. After load a model is never written again, which is what makes
 * ig_model_predict_row safe to call from any number of worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <xgboost/c_api.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/model.h"
#include "infergate/recordio.h"

enum model_ll_type {
    MODEL_LL_REGRESSOR = 0,
    MODEL_LL_BINARY = 1,
};

struct ig_model {
    enum ig_algo algo;
    enum model_ll_type ll_type; /* linear-learner only */
    uint32_t dim;
    uint32_t k;   /* rows of mat */
    double *mat;  /* k * dim, row-major: centroids, components or weights */
    double *mean; /* PCA: dim values (zeros when absent); else NULL */
    double bias;
    double threshold;
    BoosterHandle xgb; /* XGBoost only */
    struct model_xgb_pool *xgb_pool; /* its proxies: the one mutable part */
};

/* What a load reports its errors through. */
struct model_ctx {
    const char *label; /* "model.json" or the file path */
    char *err;
    size_t errlen;
};

/* Longest piece of a file-supplied string quoted back in a message. */
#define MODEL_QUOTE_MAX 64

static const char *const model_algo_names[] = {"kmeans", "pca", "linear-learner", "xgboost"};
/* The algorithms a model.json may name (the first of model_algo_names). */
#define MODEL_JSON_ALGOS 3u

/* Keys each algorithm accepts; anything else is a mistake worth reporting. */
static const char *const model_keys_kmeans[] = {"algorithm", "feature_dim", "centroids", NULL};
static const char *const model_keys_pca[] = {"algorithm", "feature_dim", "mean", "components",
                                             NULL};
static const char *const model_keys_ll[] = {"algorithm", "feature_dim", "predictor_type",
                                            "weights",   "bias",        "threshold",
                                            NULL};

/* Write a message into err[errlen] (when there is room for one); returns rv. */
__attribute__((format(printf, 4, 5))) static int model_errf(char *err, size_t errlen, int rv,
                                                            const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rv;
}

/* The same, prefixed with "LABEL: ". */
__attribute__((format(printf, 3, 4))) static int model_fail(const struct model_ctx *ctx, int rv,
                                                            const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ctx->err == NULL || ctx->errlen == 0)
        return rv;
    n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->label);
    if (n >= 0 && (size_t)n < ctx->errlen) {
        va_start(ap, fmt);
        vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rv;
}

/* ---- loading ---------------------------------------------------------- */

/* A required array of <dim> numbers, or an optional one (*out NULL when
 * absent). */
static int model_parse_vector(const struct model_ctx *ctx, json_t *root, const char *key,
                              uint32_t dim, int required, double **out)
{
    json_t *arr = json_object_get(root, key), *v;
    double *vec;
    size_t i;

    *out = NULL;
    if (arr == NULL) {
        if (required)
            return model_fail(ctx, IG_ERR_INVALID, "missing '%s'", key);
        return 0;
    }
    if (!json_is_array(arr))
        return model_fail(ctx, IG_ERR_INVALID, "'%s' must be an array of numbers", key);
    if (json_array_size(arr) != dim)
        return model_fail(ctx, IG_ERR_INVALID, "'%s' has %zu values, feature_dim is %u", key,
                          json_array_size(arr), dim);
    json_array_foreach(arr, i, v) {
        if (!json_is_number(v))
            return model_fail(ctx, IG_ERR_INVALID, "'%s' value %zu is not a number", key, i);
    }
    vec = ig_try_malloc((size_t)dim * sizeof(*vec));
    if (vec == NULL)
        return model_fail(ctx, IG_ERR_NOMEM, "out of memory for '%s'", key);
    json_array_foreach(arr, i, v) {
        vec[i] = json_number_value(v);
    }
    *out = vec;
    return 0;
}

/* A required, non-empty array of rows of <dim> numbers, stored row-major. */
static int model_parse_matrix(const struct model_ctx *ctx, json_t *root, const char *key,
                              uint32_t dim, uint32_t *k, double **out)
{
    json_t *arr = json_object_get(root, key), *row, *v;
    size_t nrows, r, i;
    double *mat;

    *out = NULL;
    if (arr == NULL)
        return model_fail(ctx, IG_ERR_INVALID, "missing '%s'", key);
    if (!json_is_array(arr))
        return model_fail(ctx, IG_ERR_INVALID, "'%s' must be an array of rows", key);
    nrows = json_array_size(arr);
    if (nrows == 0)
        return model_fail(ctx, IG_ERR_INVALID, "'%s' is empty", key);
    if (nrows > IG_MODEL_MAX_ROWS)
        return model_fail(ctx, IG_ERR_TOOBIG, "'%s' has %zu rows, the cap is %u", key, nrows,
                          IG_MODEL_MAX_ROWS);
    /* Shape and types first: the allocation below is then bounded by what
     * the JSON actually holds. */
    json_array_foreach(arr, r, row) {
        if (!json_is_array(row))
            return model_fail(ctx, IG_ERR_INVALID, "'%s' row %zu is not an array", key, r);
        if (json_array_size(row) != dim)
            return model_fail(ctx, IG_ERR_INVALID, "'%s' row %zu has %zu values, feature_dim is %u",
                              key, r, json_array_size(row), dim);
        json_array_foreach(row, i, v) {
            if (!json_is_number(v))
                return model_fail(ctx, IG_ERR_INVALID, "'%s' row %zu value %zu is not a number",
                                  key, r, i);
        }
    }
    mat = ig_try_malloc(nrows * dim * sizeof(*mat));
    if (mat == NULL)
        return model_fail(ctx, IG_ERR_NOMEM, "out of memory for '%s'", key);
    json_array_foreach(arr, r, row) {
        double *dst = mat + r * dim;

        json_array_foreach(row, i, v) {
            dst[i] = json_number_value(v);
        }
    }
    *k = (uint32_t)nrows;
    *out = mat;
    return 0;
}

static int model_check_keys(const struct model_ctx *ctx, json_t *root,
                            const char *const *allowed, const char *algo)
{
    const char *key;
    json_t *v;

    json_object_foreach(root, key, v) {
        const char *const *a = allowed;

        while (*a && strcmp(*a, key) != 0)
            a++;
        if (*a == NULL)
            return model_fail(ctx, IG_ERR_INVALID, "unknown key '%.*s' for algorithm %s",
                              MODEL_QUOTE_MAX, key, algo);
    }
    return 0;
}

static int model_parse_ll(const struct model_ctx *ctx, json_t *root, struct ig_model *m)
{
    json_t *pt = json_object_get(root, "predictor_type");
    json_t *bias = json_object_get(root, "bias");
    json_t *thr = json_object_get(root, "threshold");
    const char *s;
    int rv;

    if (pt == NULL)
        return model_fail(ctx, IG_ERR_INVALID, "missing 'predictor_type'");
    if (!json_is_string(pt))
        return model_fail(ctx, IG_ERR_INVALID, "'predictor_type' must be a string");
    s = json_string_value(pt);
    if (strcmp(s, "regressor") == 0)
        m->ll_type = MODEL_LL_REGRESSOR;
    else if (strcmp(s, "binary_classifier") == 0)
        m->ll_type = MODEL_LL_BINARY;
    else
        return model_fail(ctx, IG_ERR_UNSUPPORTED,
                          "unknown predictor_type '%.*s' (expected regressor or "
                          "binary_classifier)",
                          MODEL_QUOTE_MAX, s);
    rv = model_parse_vector(ctx, root, "weights", m->dim, 1, &m->mat);
    if (rv < 0)
        return rv;
    m->k = 1;
    if (bias == NULL)
        return model_fail(ctx, IG_ERR_INVALID, "missing 'bias'");
    if (!json_is_number(bias))
        return model_fail(ctx, IG_ERR_INVALID, "'bias' must be a number");
    m->bias = json_number_value(bias);
    m->threshold = 0.5;
    if (thr != NULL) {
        char tmp[IG_FMT_DOUBLE_MAX];

        if (!json_is_number(thr))
            return model_fail(ctx, IG_ERR_INVALID, "'threshold' must be a number");
        m->threshold = json_number_value(thr);
        if (!(m->threshold >= 0.0 && m->threshold <= 1.0)) {
            ig_fmt_double(tmp, m->threshold);
            return model_fail(ctx, IG_ERR_INVALID, "'threshold' is %s, must be between 0 and 1",
                              tmp);
        }
    }
    return 0;
}

static int model_parse(const struct model_ctx *ctx, json_t *root, struct ig_model *m)
{
    static const char *const *const keys[] = {model_keys_kmeans, model_keys_pca, model_keys_ll};
    json_t *algo = json_object_get(root, "algorithm");
    json_t *dim = json_object_get(root, "feature_dim");
    const char *s;
    json_int_t d;
    size_t a;
    int rv;

    if (algo == NULL)
        return model_fail(ctx, IG_ERR_INVALID, "missing 'algorithm'");
    if (!json_is_string(algo))
        return model_fail(ctx, IG_ERR_INVALID, "'algorithm' must be a string");
    s = json_string_value(algo);
    for (a = 0; a < MODEL_JSON_ALGOS; a++)
        if (strcmp(s, model_algo_names[a]) == 0)
            break;
    if (a == MODEL_JSON_ALGOS)
        return model_fail(ctx, IG_ERR_UNSUPPORTED,
                          "unknown algorithm '%.*s' (expected kmeans, pca or linear-learner)",
                          MODEL_QUOTE_MAX, s);
    m->algo = (enum ig_algo)a;
    rv = model_check_keys(ctx, root, keys[a], model_algo_names[a]);
    if (rv < 0)
        return rv;

    if (dim == NULL)
        return model_fail(ctx, IG_ERR_INVALID, "missing 'feature_dim'");
    if (!json_is_integer(dim))
        return model_fail(ctx, IG_ERR_INVALID, "'feature_dim' must be an integer");
    d = json_integer_value(dim);
    if (d < 1)
        return model_fail(ctx, IG_ERR_INVALID, "'feature_dim' is %lld, must be 1..%u",
                          (long long)d, IG_MODEL_MAX_DIM);
    if (d > (json_int_t)IG_MODEL_MAX_DIM)
        return model_fail(ctx, IG_ERR_TOOBIG, "'feature_dim' is %lld, must be 1..%u",
                          (long long)d, IG_MODEL_MAX_DIM);
    m->dim = (uint32_t)d;

    switch (m->algo) {
    case IG_ALGO_KMEANS:
        return model_parse_matrix(ctx, root, "centroids", m->dim, &m->k, &m->mat);
    case IG_ALGO_PCA:
        rv = model_parse_vector(ctx, root, "mean", m->dim, 0, &m->mean);
        if (rv < 0)
            return rv;
        if (m->mean == NULL) {
            m->mean = ig_try_malloc((size_t)m->dim * sizeof(*m->mean));
            if (m->mean == NULL)
                return model_fail(ctx, IG_ERR_NOMEM, "out of memory for 'mean'");
            for (uint32_t i = 0; i < m->dim; i++)
                m->mean[i] = 0.0;
        }
        return model_parse_matrix(ctx, root, "components", m->dim, &m->k, &m->mat);
    case IG_ALGO_LINEAR_LEARNER:
        return model_parse_ll(ctx, root, m);
    case IG_ALGO_XGBOOST:
        break;
    }
    return model_fail(ctx, IG_ERR_INVALID, "bad algorithm"); /* not reached */
}

/* ---- XGBoost ------------------------------------------------------------ */

/* The prediction configuration: a normal prediction over every tree, one
 * (1, outputs) array per row, NaN features missing (as the DMatrix of
 * SageMaker's container has them). */
static const char model_xgb_config[] =
    "{\"type\":0,\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,"
    "\"strict_shape\":true,\"cache_id\":0,\"missing\":NaN}";

/* The most outputs a row may have (classes of multi:softprob). */
#define MODEL_XGB_MAX_OUT 10000u

/*
 * XGBGetLastError without its "[HH:MM:SS] /build/.../file.cc:123: " prefix
 * and the stack trace after the first line: <out> gets the first line.
 */
static const char *model_xgb_err(char *out, size_t outlen)
{
    const char *e = XGBGetLastError(), *p, *nl;
    size_t n;

    if (e == NULL || *e == '\0')
        e = "unknown XGBoost error";
    if (e[0] == '[' && (p = strstr(e, "] ")) != NULL && p - e <= 16) {
        const char *colon;

        e = p + 2;
        /* "path:line: " when there is one before the first space */
        colon = strstr(e, ": ");
        if (colon != NULL && memchr(e, ' ', (size_t)(colon - e)) == NULL)
            e = colon + 2;
    }
    nl = strchr(e, '\n');
    n = nl ? (size_t)(nl - e) : strlen(e);
    while (n > 0 && (e[n - 1] == ' ' || e[n - 1] == ':' || e[n - 1] == '\r'))
        n--;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, e, n);
    out[n] = '\0';
    return out;
}

/*
 * Proxy DMatrix handles, which carry a row into XGBoosterPredictFromDense.
 * Without one XGBoost makes a proxy per call, whose Context reads the
 * cgroup CPU quota files (2 open/read/close a row: 3/4 of a row's cost in
 * XGBoost 1.7). A proxy is written by the prediction that uses it (the row
 * goes in it), so a prediction takes one from its model's pool and gives
 * it back after: the lock is held for the pop and the push only, never
 * while XGBoost runs. The pool grows to the number of threads predicting
 * at once; ig_model_free frees it. (Not thread-local: a proxy freed by a
 * thread-exit destructor would revive XGBoost's own thread_locals after
 * they were destroyed.)
 */
struct model_xgb_pool {
    pthread_mutex_t mu;
    DMatrixHandle *free; /* idle proxies */
    uint32_t nfree, cap;
};

static struct model_xgb_pool *model_xgb_pool_new(void)
{
    struct model_xgb_pool *p = ig_xcalloc(1, sizeof(*p));

    pthread_mutex_init(&p->mu, NULL);
    return p;
}

static void model_xgb_pool_free(struct model_xgb_pool *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = 0; i < p->nfree; i++)
        XGDMatrixFree(p->free[i]);
    free(p->free);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* An idle proxy, or a new one; NULL when XGBoost cannot make one (the
 * prediction then goes without). */
static DMatrixHandle model_xgb_proxy_get(struct model_xgb_pool *p)
{
    DMatrixHandle h = NULL;

    pthread_mutex_lock(&p->mu);
    if (p->nfree > 0)
        h = p->free[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    if (h == NULL && XGProxyDMatrixCreate(&h) != 0)
        h = NULL;
    return h;
}

static void model_xgb_proxy_put(struct model_xgb_pool *p, DMatrixHandle h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->nfree == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        DMatrixHandle *f = realloc(p->free, (size_t)cap * sizeof(*f));

        if (f == NULL) { /* keep what fits; this one goes */
            pthread_mutex_unlock(&p->mu);
            XGDMatrixFree(h);
            return;
        }
        p->free = f;
        p->cap = cap;
    }
    p->free[p->nfree++] = h;
    pthread_mutex_unlock(&p->mu);
}

/* XGBoosterPredictFromDense on one row of <dim> doubles; XGBoost's
 * return code. <res> is XGBoost's thread-local storage of this thread:
 * valid until its next prediction. */
static int model_xgb_dense(BoosterHandle h, DMatrixHandle proxy, const double *x, uint32_t dim,
                           const bst_ulong **shape, bst_ulong *ndim, const float **res)
{
    char arr[160];

    snprintf(arr, sizeof(arr),
             "{\"data\":[%" PRIuPTR ",true],\"shape\":[1,%" PRIu32
             "],\"typestr\":\"<f8\",\"version\":3}",
             (uintptr_t)x, dim);
    return XGBoosterPredictFromDense(h, arr, model_xgb_config, proxy, shape, ndim, res);
}

/* One prediction with a proxy of the model's pool; XGBoost's return code. */
static int model_xgb_run_once(const struct ig_model *m, const double *x, const bst_ulong **shape,
                              bst_ulong *ndim, const float **res)
{
    DMatrixHandle proxy = model_xgb_proxy_get(m->xgb_pool);
    int rc = model_xgb_dense(m->xgb, proxy, x, m->dim, shape, ndim, res);

    model_xgb_proxy_put(m->xgb_pool, proxy);
    return rc;
}

/* Predict one row; *res gets m->k values. */
static int model_xgb_run(const struct ig_model *m, const double *x, const float **res)
{
    const bst_ulong *shape = NULL;
    bst_ulong ndim = 0;

    if (model_xgb_run_once(m, x, &shape, &ndim, res) != 0)
        return IG_ERR_IO;
    if (ndim != 2 || shape[0] != 1 || shape[1] != m->k)
        return IG_ERR_IO;
    return 0;
}

/*
 * Load an XGBoost model (binary, JSON or UBJSON, as XGBoost's save_model
 * writes it) from buf[len]: nthread 1 (the worker threads are the
 * parallelism), the feature count checked, and one prediction of a row of
 * zeros, which configures the booster here, while one thread owns it, and
 * tells how many values a row predicts.
 */
static int model_load_xgb(const struct model_ctx *ctx, const char *buf, size_t len,
                          struct ig_model **out)
{
    char xerr[256];
    struct ig_model *m = NULL;
    bst_ulong nf = 0, ndim = 0;
    const bst_ulong *shape = NULL;
    const float *res;
    double *zeros = NULL;
    int rv;

    *out = NULL;
    m = ig_xcalloc(1, sizeof(*m));
    m->algo = IG_ALGO_XGBOOST;
    if (XGBoosterCreate(NULL, 0, &m->xgb) != 0) {
        m->xgb = NULL;
        rv = model_fail(ctx, IG_ERR_IO, "XGBoost: %s", model_xgb_err(xerr, sizeof(xerr)));
        goto out;
    }
    if (XGBoosterLoadModelFromBuffer(m->xgb, buf, (bst_ulong)len) != 0) {
        rv = model_fail(ctx, IG_ERR_INVALID,
                        "neither a model.json nor an XGBoost model XGBoost can load: %s",
                        model_xgb_err(xerr, sizeof(xerr)));
        goto out;
    }
    if (XGBoosterSetParam(m->xgb, "nthread", "1") != 0) {
        rv = model_fail(ctx, IG_ERR_INVALID, "XGBoost: %s", model_xgb_err(xerr, sizeof(xerr)));
        goto out;
    }
    /* (This configures the booster: a model with no features and no trees
     * fails here, XGBoost's message saying "0 feature is supplied".) */
    if (XGBoosterGetNumFeature(m->xgb, &nf) != 0) {
        rv = model_fail(ctx, IG_ERR_INVALID, "the XGBoost model's number of features: %s",
                        model_xgb_err(xerr, sizeof(xerr)));
        goto out;
    }
    if (nf == 0) {
        rv = model_fail(ctx, IG_ERR_INVALID, "the XGBoost model has 0 features");
        goto out;
    }
    if (nf > IG_MODEL_MAX_DIM) {
        rv = model_fail(ctx, IG_ERR_TOOBIG, "the XGBoost model has %llu features, the cap is %u",
                        (unsigned long long)nf, IG_MODEL_MAX_DIM);
        goto out;
    }
    m->dim = (uint32_t)nf;
    zeros = ig_try_malloc((size_t)m->dim * sizeof(*zeros));
    if (zeros == NULL) {
        rv = model_fail(ctx, IG_ERR_NOMEM, "out of memory for %u features", m->dim);
        goto out;
    }
    for (uint32_t i = 0; i < m->dim; i++)
        zeros[i] = 0.0;
    m->xgb_pool = model_xgb_pool_new();
    if (model_xgb_run_once(m, zeros, &shape, &ndim, &res) != 0) {
        rv = model_fail(ctx, IG_ERR_INVALID, "XGBoost cannot predict with this model: %s",
                        model_xgb_err(xerr, sizeof(xerr)));
        goto out;
    }
    if (ndim != 2 || shape[0] != 1 || shape[1] < 1 || shape[1] > MODEL_XGB_MAX_OUT) {
        rv = model_fail(ctx, IG_ERR_UNSUPPORTED,
                        "the XGBoost model predicts %llu dimensions of %llu values per row; "
                        "supported: 1 to %u values",
                        (unsigned long long)ndim,
                        (unsigned long long)(ndim >= 2 ? shape[1] : 0), MODEL_XGB_MAX_OUT);
        goto out;
    }
    m->k = (uint32_t)shape[1];
    *out = m;
    m = NULL;
    rv = 0;
out:
    ig_free(&zeros);
    ig_model_free(m);
    return rv;
}

/*
 * Not JSON text: XGBoost's binary format ("binf..." or the older raw
 * header) or UBJSON ('{' then a type marker where JSON has '"' or '}').
 * Empty input and input starting with '[' stay JSON (for its message).
 */
static int model_sniff_binary(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    if (i == len || buf[i] == '[')
        return 0;
    if (buf[i] != '{')
        return 1;
    i++;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    return i < len && buf[i] != '"' && buf[i] != '}';
}

/* ---- loading, the entry points -------------------------------------------- */

/* <xgb>: a file, which may hold an XGBoost model rather than a model.json. */
static int model_load(const struct model_ctx *ctx, const char *buf, size_t len, int xgb,
                      struct ig_model **out)
{
    struct ig_model *m = NULL;
    json_error_t jerr;
    json_t *root = NULL;
    int rv;

    *out = NULL;
    if (len > IG_MODEL_MAX_FILE)
        return model_fail(ctx, IG_ERR_TOOBIG, "%zu bytes, the cap is %u", len, IG_MODEL_MAX_FILE);
    if (xgb && model_sniff_binary(buf, len))
        return model_load_xgb(ctx, buf, len, out);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* An XGBoost JSON model jansson does not take: XGBoost's message. */
        if (xgb && memmem(buf, len, "\"learner\"", 9) != NULL &&
            memmem(buf, len, "\"algorithm\"", 11) == NULL)
            return model_load_xgb(ctx, buf, len, out);
        return model_fail(ctx, IG_ERR_INVALID, "invalid JSON at line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        rv = model_fail(ctx, IG_ERR_INVALID, "the top level must be a JSON object");
        goto out;
    }
    if (xgb && json_object_get(root, "algorithm") == NULL &&
        json_object_get(root, "learner") != NULL) {
        /* XGBoost reads JSON only when it starts '{"': other spacing
         * (pretty-printed by a tool) is written again, compact. */
        char *compact;

        if (buf[0] == '{' && len > 1 && buf[1] == '"') {
            json_decref(root);
            return model_load_xgb(ctx, buf, len, out);
        }
        compact = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (compact == NULL)
            return model_fail(ctx, IG_ERR_NOMEM, "out of memory for the XGBoost JSON");
        rv = model_load_xgb(ctx, compact, strlen(compact), out);
        free(compact);
        return rv;
    }
    m = ig_xcalloc(1, sizeof(*m));
    rv = model_parse(ctx, root, m);
    if (rv < 0)
        goto out;
    *out = m;
    m = NULL;
out:
    ig_model_free(m);
    json_decref(root);
    return rv;
}

int ig_model_load_json(const char *buf, size_t len, struct ig_model **out, char *err,
                       size_t errlen)
{
    struct model_ctx ctx = {"model.json", err, errlen};

    return model_load(&ctx, buf, len, 0, out);
}

int ig_model_load_file(const char *path, struct ig_model **out, char *err, size_t errlen)
{
    struct model_ctx ctx = {path, err, errlen};
    struct stat st;
    char *buf = NULL;
    size_t len = 0, size;
    int fd, rv;

    *out = NULL;
    /* O_NONBLOCK: a FIFO (or a file of /proc that blocks on read) swapped in
     * for the model must not hang the thread that loads it; regular files
     * ignore the flag. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1) {
        return model_errf(err, errlen, IG_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) == -1) {
        rv = model_errf(err, errlen, IG_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rv = model_fail(&ctx, IG_ERR_IO, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > IG_MODEL_MAX_FILE) {
        rv = model_fail(&ctx, IG_ERR_TOOBIG, "%lld bytes, the cap is %u", (long long)st.st_size,
                        IG_MODEL_MAX_FILE);
        goto out;
    }
    size = (size_t)st.st_size;
    buf = ig_try_malloc(size);
    if (buf == NULL) {
        rv = model_fail(&ctx, IG_ERR_NOMEM, "out of memory reading %zu bytes", size);
        goto out;
    }
    while (len < size) {
        ssize_t n = read(fd, buf + len, size - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            rv = model_errf(err, errlen, IG_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) /* the file shrank since fstat: parse what is there */
            break;
        len += (size_t)n;
    }
    rv = model_load(&ctx, buf, len, 1, out);
out:
    ig_free(&buf);
    close(fd);
    return rv;
}

void ig_model_free(struct ig_model *m)
{
    if (m == NULL)
        return;
    ig_free(&m->mat);
    ig_free(&m->mean);
    if (m->xgb != NULL)
        XGBoosterFree(m->xgb);
    model_xgb_pool_free(m->xgb_pool);
    free(m);
}

enum ig_algo ig_model_algo(const struct ig_model *m)
{
    return m->algo;
}

const char *ig_model_algo_name(const struct ig_model *m)
{
    return model_algo_names[m->algo];
}

uint32_t ig_model_dim(const struct ig_model *m)
{
    return m->dim;
}

uint32_t ig_model_k(const struct ig_model *m)
{
    return m->k;
}

const char *ig_model_json_key(const struct ig_model *m)
{
    return m->algo == IG_ALGO_PCA ? "projections" : "predictions";
}

const char *ig_model_not_finite_msg(const struct ig_model *m)
{
    static const char *const msgs[] = {
        [IG_ALGO_KMEANS] = "the model's output is not finite (overflow in the K-Means distance).",
        [IG_ALGO_PCA] = "the model's output is not finite (overflow in the PCA projection).",
        [IG_ALGO_LINEAR_LEARNER] =
            "the model's output is not finite (overflow in the linear learner score).",
        [IG_ALGO_XGBOOST] = "the model's output is not finite (XGBoost: NaN or infinity).",
    };

    return msgs[m->algo];
}

/* ---- prediction (hot path) -------------------------------------------- */

/*
 * The reductions keep four partial sums: they break the add-latency chain
 * (and let the compiler use SIMD) without -ffast-math. The partial sums
 * are combined as (s0 + s1) + (s2 + s3).
 */
/*
 * The squared distance: s[j] sums the squares of the coordinates i with
 * i % 4 == j, the tail (n % 4 of them) goes to s[0]. With SSE2 the
 * accumulators are two vectors, (s0, s1) and (s2, s3): the same operations on the same
 * values in the same order, so the same bits (no fused multiply-add: the
 * products are rounded before they are added, as in the scalar loop).
 */
static inline double model_sqdist(const double *restrict a, const double *restrict b, uint32_t n)
{
    uint32_t i = 0;
#ifdef __SSE2__
    __m128d s01 = _mm_setzero_pd(), s23 = _mm_setzero_pd();
    double s[4];

    for (; i + 4 <= n; i += 4) {
        __m128d d01 = _mm_sub_pd(_mm_loadu_pd(a + i), _mm_loadu_pd(b + i));
        __m128d d23 = _mm_sub_pd(_mm_loadu_pd(a + i + 2), _mm_loadu_pd(b + i + 2));

        s01 = _mm_add_pd(s01, _mm_mul_pd(d01, d01));
        s23 = _mm_add_pd(s23, _mm_mul_pd(d23, d23));
    }
    _mm_storeu_pd(s, s01);
    _mm_storeu_pd(s + 2, s23);
    for (; i < n; i++) {
        double d = a[i] - b[i];

        s[0] += d * d;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
#else
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;

    for (; i + 4 <= n; i += 4) {
        double d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        double d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];

        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        double d = a[i] - b[i];

        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
#endif
}

/*
 * The Euclidean distance without squaring overflow: scaled by the largest
 * coordinate difference. The slow path, for when a squared distance
 * overflowed although the distance itself may be finite (up to 1.8e308).
 * inf when the distance really is past the double range.
 */
static double model_dist_scaled(const double *a, const double *b, uint32_t n)
{
    double mx = 0.0, s = 0.0;

    for (uint32_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);

        if (d > mx)
            mx = d; /* inf when a[i] - b[i] overflowed: the distance did too */
    }
    if (mx == 0.0 || isinf(mx))
        return mx;
    for (uint32_t i = 0; i < n; i++) {
        double d = (a[i] - b[i]) / mx;

        s += d * d;
    }
    return mx * sqrt(s);
}

static inline double model_dot(const double *restrict a, const double *restrict b, uint32_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    uint32_t i = 0;

    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* sum_i (x_i - mean_i) * c_i */
static inline double model_dot_centered(const double *restrict x, const double *restrict mean,
                                        const double *restrict c, uint32_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    uint32_t i = 0;

    for (; i + 4 <= n; i += 4) {
        s0 += (x[i] - mean[i]) * c[i];
        s1 += (x[i + 1] - mean[i + 1]) * c[i + 1];
        s2 += (x[i + 2] - mean[i + 2]) * c[i + 2];
        s3 += (x[i + 3] - mean[i + 3]) * c[i + 3];
    }
    for (; i < n; i++)
        s0 += (x[i] - mean[i]) * c[i];
    return (s0 + s1) + (s2 + s3);
}

/* A fixed-size prediction is assembled on the stack, then appended at once. */
#define MODEL_LINE_MAX 128

static size_t model_put(char *line, size_t n, const char *s)
{
    size_t l = strlen(s);

    memcpy(line + n, s, l);
    return n + l;
}

/* A cluster index as SageMaker writes it, a float: "3.0", "10.0". Integer
 * digits directly: exact, and much cheaper than a float format. */
static size_t model_fmt_index(char *line, uint32_t v)
{
    char tmp[10];
    size_t n = 0, l = 0;

    do {
        tmp[l++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (l)
        line[n++] = tmp[--l];
    line[n++] = '.';
    line[n++] = '0';
    return n;
}

/* The closest centroid of <x> and its distance; IG_MODEL_NOT_FINITE when
 * there is none. */
static int model_kmeans_eval(const struct ig_model *m, const double *x, uint32_t *index,
                             double *dist)
{
    const double *c = m->mat;
    double best = model_sqdist(x, c, m->dim);
    uint32_t besti = 0;

    for (uint32_t j = 1; j < m->k; j++) {
        double d;

        c += m->dim;
        d = model_sqdist(x, c, m->dim);
        if (d < best) { /* strict: ties keep the lowest index */
            best = d;
            besti = j;
        }
    }
    best = sqrt(best);
    if (isinf(best)) {
        /* Every squared distance overflowed (past 1.3e154 apart): compare
         * the distances themselves, scaled; only when even they are past
         * the double range is there no answer. (A centroid whose square
         * overflowed while another's did not is farther: no rescan then.) */
        besti = 0;
        best = model_dist_scaled(x, m->mat, m->dim);
        for (uint32_t j = 1; j < m->k; j++) {
            double d = model_dist_scaled(x, m->mat + (size_t)j * m->dim, m->dim);

            if (d < best) {
                best = d;
                besti = j;
            }
        }
        if (isinf(best))
            return IG_MODEL_NOT_FINITE;
    }
    *index = besti;
    *dist = best;
    return 0;
}

static int model_predict_kmeans(const struct ig_model *m, const double *x, int csv,
                                struct ig_buf *out)
{
    double best;
    uint32_t besti;
    char line[MODEL_LINE_MAX];
    size_t n = 0;
    int rv = model_kmeans_eval(m, x, &besti, &best);

    if (rv < 0)
        return rv;
    if (!csv)
        n = model_put(line, n, "{\"closest_cluster\":");
    n += model_fmt_index(line + n, besti);
    n = model_put(line, n, csv ? "," : ",\"distance_to_cluster\":");
    n += ig_fmt_double(line + n, best);
    if (!csv)
        line[n++] = '}';
    return ig_buf_append(out, line, n);
}

static int model_predict_ll(const struct ig_model *m, const double *x, int csv,
                            struct ig_buf *out)
{
    double z = model_dot(m->mat, x, m->dim) + m->bias;
    char line[MODEL_LINE_MAX];
    size_t n = 0;

    if (!csv)
        n = model_put(line, n, "{\"score\":");
    if (m->ll_type == MODEL_LL_REGRESSOR) {
        if (!isfinite(z))
            return IG_MODEL_NOT_FINITE;
        n += ig_fmt_double(line + n, z);
    } else {
        /* An infinite z still has a sigmoid (0 or 1); inf - inf has none. */
        double score = 1.0 / (1.0 + exp(-z));

        if (isnan(score))
            return IG_MODEL_NOT_FINITE;
        n += ig_fmt_double(line + n, score);
        n = model_put(line, n, csv ? "," : ",\"predicted_label\":");
        line[n++] = score >= m->threshold ? '1' : '0';
    }
    if (!csv)
        line[n++] = '}';
    return ig_buf_append(out, line, n);
}

static int model_predict_pca(const struct ig_model *m, const double *x, int csv,
                             struct ig_buf *out)
{
    const double *c = m->mat;
    size_t start = out->len;
    int rv = 0;

    if (!csv)
        rv = ig_buf_append(out, "{\"projection\":[", 15);
    for (uint32_t j = 0; j < m->k && rv == 0; j++, c += m->dim) {
        double p = model_dot_centered(x, m->mean, c, m->dim);

        if (!isfinite(p)) {
            rv = IG_MODEL_NOT_FINITE;
            break;
        }
        if (j > 0)
            rv = ig_buf_append_char(out, ',');
        if (rv == 0)
            rv = ig_buf_append_double(out, p);
    }
    if (!csv && rv == 0)
        rv = ig_buf_append(out, "]}", 2);
    if (rv < 0 && out->len > start) { /* leave <out> as it was */
        out->len = start;
        out->data[start] = '\0';
    }
    return rv;
}

/*
 * XGBoost: CSV "0.73" or "0.1,0.2,0.7" (one line per row, the class
 * probabilities of multi:softprob on it), JSON {"score":0.73} or
 * {"score":[0.1,0.2,0.7]}, as SageMaker's XGBoost container answers.
 */
static int model_predict_xgb(const struct ig_model *m, const double *x, int csv,
                             struct ig_buf *out)
{
    const float *res = NULL;
    size_t start = out->len;
    int rv;

    rv = model_xgb_run(m, x, &res);
    if (rv < 0)
        return rv;
    for (uint32_t j = 0; j < m->k; j++)
        if (!isfinite(res[j]))
            return IG_MODEL_NOT_FINITE;
    if (!csv)
        rv = m->k == 1 ? ig_buf_append(out, "{\"score\":", 9)
                       : ig_buf_append(out, "{\"score\":[", 10);
    for (uint32_t j = 0; j < m->k && rv == 0; j++) {
        if (j > 0)
            rv = ig_buf_append_char(out, ',');
        if (rv == 0)
            rv = ig_buf_append_double(out, (double)res[j]);
    }
    if (!csv && rv == 0)
        rv = m->k == 1 ? ig_buf_append_char(out, '}') : ig_buf_append(out, "]}", 2);
    if (rv < 0 && out->len > start) { /* leave <out> as it was */
        out->len = start;
        out->data[start] = '\0';
    }
    return rv;
}

/*
 * One framed RecordIO record whose label map holds the outputs, as the
 * built-in algorithms answer application/x-recordio-protobuf: K-Means
 * closest_cluster and distance_to_cluster, PCA projection, Linear Learner
 * score (and predicted_label for a classifier), XGBoost score.
 */
static int model_predict_record(const struct ig_model *m, const double *x, struct ig_buf *out)
{
    struct ig_recordio_label lab[2];
    double v[2], *pv = v;
    size_t nl = 1;
    int rv = 0;

    switch (m->algo) {
    case IG_ALGO_KMEANS: {
        uint32_t idx;

        rv = model_kmeans_eval(m, x, &idx, &v[1]);
        v[0] = (double)idx;
        lab[0] = (struct ig_recordio_label){"closest_cluster", &v[0], 1};
        lab[1] = (struct ig_recordio_label){"distance_to_cluster", &v[1], 1};
        nl = 2;
        break;
    }
    case IG_ALGO_LINEAR_LEARNER: {
        double z = model_dot(m->mat, x, m->dim) + m->bias;

        if (m->ll_type == MODEL_LL_REGRESSOR) {
            v[0] = z;
            rv = isfinite(z) ? 0 : IG_MODEL_NOT_FINITE;
        } else {
            v[0] = 1.0 / (1.0 + exp(-z));
            v[1] = v[0] >= m->threshold ? 1.0 : 0.0;
            rv = isnan(v[0]) ? IG_MODEL_NOT_FINITE : 0;
            lab[1] = (struct ig_recordio_label){"predicted_label", &v[1], 1};
            nl = 2;
        }
        lab[0] = (struct ig_recordio_label){"score", &v[0], 1};
        break;
    }
    case IG_ALGO_PCA: {
        const double *c = m->mat;

        pv = ig_try_malloc(m->k * sizeof(double));
        if (pv == NULL)
            return IG_ERR_NOMEM;
        for (uint32_t j = 0; j < m->k && rv == 0; j++, c += m->dim) {
            pv[j] = model_dot_centered(x, m->mean, c, m->dim);
            if (!isfinite(pv[j]))
                rv = IG_MODEL_NOT_FINITE;
        }
        lab[0] = (struct ig_recordio_label){"projection", pv, m->k};
        break;
    }
    case IG_ALGO_XGBOOST: {
        const float *res = NULL;

        rv = model_xgb_run(m, x, &res);
        if (rv < 0)
            return rv;
        pv = ig_try_malloc(m->k * sizeof(double));
        if (pv == NULL)
            return IG_ERR_NOMEM;
        for (uint32_t j = 0; j < m->k && rv == 0; j++) {
            pv[j] = (double)res[j];
            if (!isfinite(pv[j]))
                rv = IG_MODEL_NOT_FINITE;
        }
        lab[0] = (struct ig_recordio_label){"score", pv, m->k};
        break;
    }
    default:
        return IG_ERR_INVALID;
    }
    /* written as float32: a double past its range would be a bare infinity */
    for (size_t i = 0; i < nl && rv == 0; i++)
        for (size_t j = 0; j < lab[i].n && rv == 0; j++)
            if (!isfinite((float)lab[i].values[j]))
                rv = IG_MODEL_NOT_FINITE;
    if (rv == 0)
        rv = ig_recordio_encode_labels(out, lab, nl);
    if (pv != v)
        free(pv);
    return rv;
}

int ig_model_predict_row(const struct ig_model *m, const double *x, enum ig_format fmt,
                         struct ig_buf *out)
{
    int csv;

    switch (fmt) {
    case IG_FMT_RECORDIO:
        return model_predict_record(m, x, out);
    case IG_FMT_CSV:
        csv = 1;
        break;
    case IG_FMT_JSON:
    case IG_FMT_JSONL:
        csv = 0;
        break;
    case IG_FMT_LIBSVM:
    case IG_FMT_COUNT:
    default:
        return IG_ERR_INVALID;
    }
    switch (m->algo) {
    case IG_ALGO_KMEANS:
        return model_predict_kmeans(m, x, csv, out);
    case IG_ALGO_PCA:
        return model_predict_pca(m, x, csv, out);
    case IG_ALGO_LINEAR_LEARNER:
        return model_predict_ll(m, x, csv, out);
    case IG_ALGO_XGBOOST:
        return model_predict_xgb(m, x, csv, out);
    }
    return IG_ERR_INVALID;
}

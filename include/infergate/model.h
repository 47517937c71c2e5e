/*
 * model.h - the embedded built-in algorithms: K-Means, PCA and Linear
 * Learner, loaded from a model.json (DESIGN.md "Model artifacts"), and
 * XGBoost, loaded from XGBoost's own model file (libxgboost); all answer
 * with the response shapes of SageMaker's built-in algorithms.
 *
 * A model is immutable once loaded: any number of threads may call the
 * accessors and ig_model_predict_row on the same model at once, with no
 * locking (an XGBoost model's one mutable part, its pool of XGBoost proxy
 * matrices, has its own lock, held only to take or return one). Only
 * ig_model_free needs exclusive access.
 *
 * model.json forms (every field is validated; unknown keys are rejected):
 *   {"algorithm": "kmeans", "feature_dim": D, "centroids": [[...D...], ...]}
 *   {"algorithm": "pca", "feature_dim": D, "mean": [...D...],
 *    "components": [[...D...], ...]}                      mean optional (zeros)
 *   {"algorithm": "linear-learner", "feature_dim": D,
 *    "predictor_type": "regressor" | "binary_classifier",
 *    "weights": [...D...], "bias": b, "threshold": t}     threshold optional (0.5)
 * Caps: feature_dim 1..IG_MODEL_MAX_DIM, 1..IG_MODEL_MAX_ROWS centroids or
 * components, IG_MODEL_MAX_FILE bytes of JSON.
 */
#ifndef INFERGATE_MODEL_H
#define INFERGATE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/rows-t.h"

struct ig_buf;

#define IG_MODEL_MAX_DIM 100000u
#define IG_MODEL_MAX_ROWS 100000u
#define IG_MODEL_MAX_FILE (256u * 1024 * 1024)

enum ig_algo {
    IG_ALGO_KMEANS = 0,
    IG_ALGO_PCA = 1,
    IG_ALGO_LINEAR_LEARNER = 2,
    IG_ALGO_XGBOOST = 3, /* ig_model_load_file only */
};

struct ig_model; /* opaque, immutable after load */

/*
 * Parse and validate a model.json held in <buf> (<len> bytes, no NUL
 * needed). On success *out owns a new model (ig_model_free it); on failure
 * *out is NULL and <err> (when errlen > 0) holds a message that names the
 * field, e.g. "model.json: 'centroids' row 3 has 63 values, feature_dim is
 * 64" (rows and values count from 0).
 * Errors: IG_ERR_INVALID (bad JSON, missing field, wrong type, wrong
 * length, bad value), IG_ERR_UNSUPPORTED (unknown algorithm or
 * predictor_type), IG_ERR_TOOBIG (len, feature_dim or the number of rows
 * over its cap), IG_ERR_NOMEM.
 */
int ig_model_load_json(const char *buf, size_t len, struct ig_model **out, char *err,
                       size_t errlen);

/*
 * Read the model file at <path> (at most IG_MODEL_MAX_FILE bytes) and load
 * it: a model.json as ig_model_load_json does, validation messages
 * starting with "PATH: " instead of "model.json: "; or an XGBoost model
 * (xgboost-model as SageMaker's XGBoost container writes it: XGBoost's
 * binary, JSON or UBJSON format). The content decides, not the name: JSON
 * text is a model.json unless it is an object with "learner" and without
 * "algorithm" (XGBoost's JSON); anything else that is not JSON text
 * (neither empty nor starting with '[', '{"' or '{}') goes to XGBoost.
 * An XGBoost booster gets nthread=1 (the worker threads are the
 * parallelism) and is tried once on a row of zeros here.
 * Errors: those of ig_model_load_json, and IG_ERR_IO ("cannot open PATH:
 * strerror", "cannot read PATH: strerror", "PATH: not a regular file");
 * for XGBoost IG_ERR_INVALID "PATH: neither a model.json nor an XGBoost
 * model XGBoost can load: <XGBoost's message>", "PATH: the XGBoost model
 * has 0 features", IG_ERR_TOOBIG (more than IG_MODEL_MAX_DIM features),
 * IG_ERR_UNSUPPORTED (an output shape other than 1..10000 values a row).
 */
int ig_model_load_file(const char *path, struct ig_model **out, char *err, size_t errlen);

/* Free a model; NULL is a no-op. No predict call may be running on it. */
void ig_model_free(struct ig_model *m);

enum ig_algo ig_model_algo(const struct ig_model *m);

/* "kmeans", "pca", "linear-learner" or "xgboost" (static). */
const char *ig_model_algo_name(const struct ig_model *m);

/* feature_dim (XGBoost: the booster's number of features): the number of
 * doubles ig_model_predict_row reads per row. */
uint32_t ig_model_dim(const struct ig_model *m);

/* The number of centroids (K-Means), of components (PCA), 1 (the weight
 * vector of Linear Learner), or the values XGBoost predicts per row (1, or
 * the number of classes of multi:softprob). */
uint32_t ig_model_k(const struct ig_model *m);

/* Top-level key of the JSON response (static): "projections" for PCA,
 * "predictions" otherwise. */
const char *ig_model_json_key(const struct ig_model *m);

/*
 * Predict one row <x> (ig_model_dim(m) doubles, borrowed) and append its
 * prediction to <out> as ONE row in format <fmt>:
 *   IG_FMT_CSV: a CSV line without newline;
 *   IG_FMT_JSON, IG_FMT_JSONL: one JSON object, no spaces.
 * K-Means:  {"closest_cluster":3.0,"distance_to_cluster":1.25}   CSV 3.0,1.25
 *           (Euclidean distance; ties go to the lowest index; the cluster
 *           index is written as a float, as SageMaker does)
 * PCA:      {"projection":[0.5,-1.0]}                             CSV 0.5,-1.0
 *           (projection_j = sum_i (x_i - mean_i) * components[j][i])
 * Linear Learner regressor:  {"score":0.4}                        CSV 0.4
 *           (score = w.x + b)
 * Linear Learner binary_classifier: {"score":0.4,"predicted_label":0}  CSV 0.4,0
 *           (score = 1 / (1 + exp(-(w.x + b))), label = score >= threshold)
 * XGBoost:  {"score":0.7310585975646973}                          CSV 0.7310585975646973
 *           multi:softprob {"score":[0.1,0.2,0.7]}                CSV 0.1,0.2,0.7
 *           (XGBoost's float32 output, as SageMaker's XGBoost container
 *           answers; features are cast to float32, NaN is missing)
 * Numbers are written by ig_fmt_double (shortest round-trip). A response
 * is always JSON (or CSV) numbers: when the output is not finite (finite
 * inputs can still overflow: huge weights times huge features, a K-Means
 * distance or a PCA projection past 1.8e308), nothing is written and the
 * row fails with IG_MODEL_NOT_FINITE. (A binary classifier's infinite
 * score still has a sigmoid, 0.0 or 1.0; only inf - inf fails it.)
 * Pure and thread-safe (XGBoost: in-place prediction, which XGBoost
 * documents as thread-safe and lock-free). Returns 0, or the ig_buf error
 * (IG_ERR_TOOBIG, IG_ERR_NOMEM), or IG_MODEL_NOT_FINITE, with <out> left
 * exactly as it was; IG_ERR_INVALID for an unknown <fmt>; IG_ERR_IO when
 * XGBoost fails to predict (not expected once the model loaded).
 */
int ig_model_predict_row(const struct ig_model *m, const double *x, enum ig_format fmt,
                         struct ig_buf *out);

/* ig_model_predict_row: this row's output is not finite; the row fails
 * alone (the other rows of its batch are answered). */
#define IG_MODEL_NOT_FINITE (-100)

/* Why a row failed with IG_MODEL_NOT_FINITE, as the end of a sentence that
 * the caller prefixes with "Row N: " (static), e.g. "the model's output is
 * not finite (overflow in the linear learner score)." */
const char *ig_model_not_finite_msg(const struct ig_model *m);

#endif /* INFERGATE_MODEL_H */

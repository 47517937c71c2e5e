/*
 * rows-t.h - the row types shared by the codecs, the batcher, the upstreams
 * and the gateway.
 */
#ifndef INFERGATE_ROWS_T_H
#define INFERGATE_ROWS_T_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/budget.h"

/* Headers a remote upstream forwards with a request's rows (each may be
 * NULL). Borrowed from the request; an upstream copies what it keeps. */
struct ig_passthrough {
    const char *custom_attributes; /* X-Amzn-SageMaker-Custom-Attributes */
    const char *inference_id;      /* X-Amzn-SageMaker-Inference-Id */
    const char *target_variant;    /* X-Amzn-SageMaker-Target-Variant */
};

/* One row: a slice [off, off + len) of the received body. No copy. */
struct ig_row {
    uint32_t off;
    uint32_t len;
};

/*
 * A decoded request body. <body> is borrowed from the request and outlives
 * the rowset. <features> holds nrows * dim doubles when the codec was asked
 * to parse features (the embedded models need them), else NULL.
 *
 * Memory: the rows array and the features are charged to <budget> before
 * they grow (ig_rowset_push), so a small body that decodes to a huge
 * feature array (sparse JSON rows of a wide model) is refused, not held.
 * <hold> always equals the bytes allocated for rows and features (0 when
 * <budget> is NULL); ig_rowset_clear releases it.
 */
struct ig_rowset {
    const char *body;
    size_t body_len;
    struct ig_row *rows; /* nrows slices, owned */
    uint32_t nrows;
    uint32_t dim;     /* features per row, 0 when not parsed */
    double *features; /* nrows * dim, owned, or NULL */
    uint32_t cap;     /* rows (and rows of features) allocated */
    struct ig_budget *budget;   /* borrowed, set before decoding; NULL: no accounting */
    struct ig_budget_hold hold; /* what rows and features hold against <budget> */
    const struct ig_passthrough *pass; /* NULL: none; set after decoding */
    /* The rows are records on their own (a transform stream's chunk), not
     * one request: a remote model that refuses a call is asked again with
     * halves down to the single row, and only the rows it refuses fail. */
    uint8_t rows_apart;
    /* Set by the gateway before queueing: a row holds a line break (LF, CR,
     * or another boundary a line reader such as Python's splitlines() cuts
     * at), so a remote model may read it as two rows: its rows go in calls
     * of their own. */
    uint8_t line_breaks;
    /* libsvm only, read before decoding (like <budget>): the column index
     * of the first feature, 0 (XGBoost's) or 1 (the SageMaker Spark
     * library's). */
    uint8_t index_base;
    /* Read before decoding too: a sparse row's absent features are NaN
     * (XGBoost's "missing"), not 0. */
    uint8_t missing_nan;
};

/* The wire formats the gateway knows. */
enum ig_format {
    IG_FMT_CSV = 0,   /* text/csv */
    IG_FMT_JSONL = 1, /* application/jsonlines */
    IG_FMT_JSON = 2,  /* application/json */
    IG_FMT_RECORDIO = 3, /* application/x-recordio-protobuf */
    IG_FMT_LIBSVM = 4,   /* text/libsvm: requests only */
    IG_FMT_COUNT = 5,
};

#endif /* INFERGATE_ROWS_T_H */

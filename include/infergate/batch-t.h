/*
 * batch-t.h - a batch: rows from several requests, packed by the batcher,
 * answered by an upstream, scattered back by the gateway.
 */
#ifndef INFERGATE_BATCH_T_H
#define INFERGATE_BATCH_T_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/rows-t.h"

enum ig_flush_reason {
    IG_FLUSH_ROWS = 0,  /* max_batch_rows reached */
    IG_FLUSH_BYTES = 1, /* max_batch_bytes reached */
    IG_FLUSH_DELAY = 2, /* the oldest row waited max_delay_us */
    IG_FLUSH_DRAIN = 3, /* shutting down: flush what is queued */
    IG_FLUSH_REASON_COUNT = 4,
};

/* A run of consecutive rows of one request inside a batch. */
struct ig_batch_seg {
    void *owner;                 /* the request, opaque to the batcher */
    const struct ig_rowset *rs;  /* the owner's decoded rows */
    uint32_t first;              /* first row index in rs */
    uint32_t nrows;              /* rows in this segment */
};

/* One prediction: a slice of ig_batch.out, already encoded in the batch's
 * accept format as a single row (a CSV line without its newline, or one
 * JSON object). */
struct ig_pred {
    uint32_t off;
    uint32_t len;
};

/*
 * A row the upstream could not answer although the batch succeeded (its
 * model output is not finite): the bit is set in ig_pred.len, and the
 * slice (len without the bit) of ig_batch.out is why, the end of a
 * sentence such as "the model's output is not finite (overflow in the
 * linear learner score).". The gateway fails that row's request alone, as
 * a ModelError "Row N: <why>" with N counted from 1 in the request; the
 * other requests of the batch get their predictions. Real slices stay far
 * below 2 GiB (an upstream's out is capped), so the bit is free.
 */
#define IG_PRED_FAILED 0x80000000u

/*
 * How a failed row (IG_PRED_FAILED) is answered, when ig_batch.fails is
 * set (remote upstreams): <type> NULL or "ModelError" is a ModelError
 * whose OriginalStatusCode is <status> and OriginalMessage the slice (the
 * model's own words); another type ("InternalFailure",
 * "ServiceUnavailable") is that error with the slice as its message.
 * Without ig_batch.fails a failed row is a ModelError from the local model.
 */
struct ig_row_fail {
    const char *type; /* static */
    int status;
    /* these rows alone made the model's answer wrong (a split isolated
     * them): their client is batched apart for a while, as for a ModelError */
    int suspect;
};

/* What a remote upstream answered for one segment's rows (each NULL when
 * it said nothing): the gateway hands them to the segment's request. */
struct ig_seg_back {
    char *custom_attributes; /* X-Amzn-SageMaker-Custom-Attributes, owned */
    char *variant;           /* x-Amzn-Invoked-Production-Variant, owned */
};

struct ig_batch {
    uint64_t id;
    enum ig_flush_reason reason;
    uint32_t nrows;  /* sum of segs[i].nrows */
    size_t nbytes;   /* sum of row slice lengths */
    struct ig_batch_seg *segs;
    uint32_t nsegs;
    uint64_t created_us; /* when the batcher emitted it */
    void *upstream_data; /* the upstream's own, while the batch is submitted */
    uint32_t live;       /* the gateway's: segments whose request still waits */

    /* Filled by the upstream before it completes the batch. */
    int status;         /* 0, or a negative IG_ERR_* */
    char *out;          /* encoded predictions, owned */
    size_t out_len;
    struct ig_pred *preds;  /* nrows slices of out, owned (IG_PRED_FAILED: a row's error) */
    struct ig_row_fail *fails; /* NULL, or nrows entries, owned: how failed rows are answered */
    struct ig_seg_back *backs; /* NULL, or nsegs entries, owned */
    const char *err_type;   /* static, e.g. "ModelError", when status < 0 */
    char *err_msg;          /* owned, when status < 0 */

    /*
     * Set by the gateway before submit, or NULL. A remote upstream whose
     * batch goes in several calls (split to isolate rows the model
     * refuses, or cut to the payload limit) calls it, on the loop thread,
     * as soon as the rows of segment <seg> (its first row <first> in the
     * batch) are all answered while other calls are still out: <out>,
     * <out_len>, <preds>, <fails> and <backs> then view what the upstream
     * holds so far, only during the call. The gateway answers that
     * segment's request at once and sets the segment's owner to NULL; the
     * batch's completion skips such segments. It must not cancel the batch
     * from inside.
     */
    void (*seg_done)(struct ig_batch *b, uint32_t seg, uint32_t first, void *arg);
    void *seg_done_arg;
    /*
     * Set by the gateway before submit, or NULL. A remote upstream calls
     * it, on the loop thread, with <seg_done_arg>, when it first splits the
     * batch's rows into halves (rows the model refused, raised or hung on,
     * or answered wrong, to be isolated): the batch may cost up to 2n - 1
     * calls more, which wait in their own queue, and the gateway may stop
     * counting it in max_inflight. It must not submit or cancel a batch
     * from inside.
     */
    void (*split)(struct ig_batch *b, void *arg);
    /* ig_batcher_release: no longer counted in its batcher's inflight */
    int released;
};

#endif /* INFERGATE_BATCH_T_H */

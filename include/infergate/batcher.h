/*
 * batcher.h - the batching policy: pack rows from many concurrent requests
 * into size- and time-bounded batches.
 *
 * Pure code (house rule 4): no event loop, no sockets, no globals and no
 * clock reads. Every call that depends on time takes <now_us>, so the
 * caller owns the clock (and tests drive a fake one). One batcher serves one
 * (endpoint, content type, accept); it is not thread-safe, the loop thread
 * that owns the endpoint drives it.
 *
 * Typical use by the gateway:
 *
 *   rv = ig_batcher_enqueue(b, req, rs, now);      // IG_ERR_FULL: throttle
 *   while ((bt = ig_batcher_next(b, now)))
 *       submit(bt);                               // upstream fills results
 *   arm_timer(ig_batcher_next_deadline(b));        // then call next() again
 *   ...
 *   scatter(bt); ig_batcher_done(b, bt);           // frees bt
 *
 * Rows leave in FIFO order over all owners, but for one thing: a rowset a
 * batch leaves partly taken goes to the back of the queue (with others
 * queued behind it), its time the batch's, so a rowset of millions of rows
 * takes its turn one batch at a time and never holds the rows queued after
 * it for all of its own. A request's rows may be split over several
 * batches; inside one batch they form one segment per run of consecutive
 * rows of the same rowset.
 */
#ifndef INFERGATE_BATCHER_H
#define INFERGATE_BATCHER_H

#include <stdint.h>

#include "infergate/batch-t.h"
#include "infergate/rows-t.h"

struct ig_batcher;
struct ig_batcher_entry; /* one queued rowset, a handle for O(1) cancel */

struct ig_batcher_limits {
    uint32_t max_batch_rows;  /* >= 1: a batch never holds more rows */
    uint64_t max_batch_bytes; /* >= 1: a batch never holds more bytes (sum of row lens),
                                 except one row larger than this, which goes alone */
    uint64_t max_delay_us;    /* a queued row waits at most this long (0 = flush at once) */
    uint32_t max_inflight;    /* >= 1: batches handed out and not yet done */
    uint32_t max_queue_rows;  /* >= 1: rows queued (not yet in a batch) at most */
    uint32_t max_batch_segs;  /* rowsets (owners' entries) in one batch at most; 0: any */
};

/*
 * A new, empty batcher with a copy of <lim>. Returns NULL when a limit that
 * must be >= 1 is 0 (max_batch_rows, max_batch_bytes, max_inflight,
 * max_queue_rows) or <lim> is NULL. Aborts on OOM (bookkeeping). Free with
 * ig_batcher_free.
 */
struct ig_batcher *ig_batcher_new(const struct ig_batcher_limits *lim);

/*
 * Keep *<rows> counting <b>'s queued rows too, with those of every batcher
 * given the same counter (the rows an endpoint's lanes hold, read in O(1)):
 * <b>'s rows queued now are added at once, and taken off the old counter
 * when there was one. NULL stops it. The counter must outlive the link.
 */
void ig_batcher_set_group(struct ig_batcher *b, uint32_t *rows);

/*
 * Free <b> and its queued entries (their rows are dropped; the rowsets and
 * owners are the caller's and are not touched). Batches still in flight stay
 * valid and are freed by the caller with ig_batch_free (not
 * ig_batcher_done). NULL is fine.
 */
void ig_batcher_free(struct ig_batcher *b);

/*
 * Queue all rows of <rs> for <owner> (opaque to the batcher, NULL allowed),
 * at time <now_us>. <rs> is borrowed: it must stay valid until its rows have
 * left the queue and every batch that holds them is done, or until the rows
 * are cancelled.
 * Returns 0;
 *   IG_ERR_INVALID when <rs> is NULL, has 0 rows or no row array;
 *   IG_ERR_TOOBIG  when rs->nrows > max_queue_rows (it could never fit);
 *   IG_ERR_FULL    when queued rows + rs->nrows > max_queue_rows (the caller
 *                  answers ThrottlingException or stops reading).
 * On error nothing is queued and no count changes.
 */
int ig_batcher_enqueue(struct ig_batcher *b, void *owner, const struct ig_rowset *rs,
                       uint64_t now_us);

/*
 * ig_batcher_enqueue, and on success the entry's handle in <*entry> (NULL
 * allowed). The handle stays valid while any of the rowset's rows is still
 * queued: the caller knows, by adding up the rows of its segments in the
 * batches it gets, when all have left (then the entry is gone) and must not
 * cancel it after that.
 */
int ig_batcher_enqueue_entry(struct ig_batcher *b, void *owner, const struct ig_rowset *rs,
                             uint64_t now_us, struct ig_batcher_entry **entry);

/*
 * ig_batcher_enqueue_entry for a caller that already knows the sum of the
 * rowset's row lengths, <nbytes> (it must be exact: the byte limits and
 * counts rely on it). The enqueue is then O(1) whatever the row count: a
 * body of millions of short rows, decoded on a worker that also summed
 * their lengths, is queued without a pass over its rows on the loop.
 */
int ig_batcher_enqueue_sized(struct ig_batcher *b, void *owner, const struct ig_rowset *rs,
                             uint64_t nbytes, uint64_t now_us, struct ig_batcher_entry **entry);

/*
 * The next batch due at <now_us>, or NULL when none is due or
 * inflight == max_inflight. The queue is due when, in this order of
 * reported reason:
 *   queued rows  >= max_batch_rows            IG_FLUSH_ROWS
 *   queued bytes >= max_batch_bytes           IG_FLUSH_BYTES
 *   now_us >= oldest row's enqueue time + max_delay_us   IG_FLUSH_DELAY
 *     (a rowset sent to the back counts from that batch's time)
 *   drain mode is on and a row is queued      IG_FLUSH_DRAIN
 * The batch takes rows from the head while rows < max_batch_rows and
 * bytes + next row's len <= max_batch_bytes, and (max_batch_segs != 0)
 * from at most max_batch_segs entries; the first row always goes in.
 * Sets id (1, 2, 3, ... per batcher), reason, nrows, nbytes, segs, nsegs and
 * created_us = now_us; status, out, out_len, preds, err_type and err_msg are
 * zero. The caller owns the batch; it counts as in flight until
 * ig_batcher_done. Call in a loop: more than one batch may be due.
 * Aborts on OOM (bookkeeping, bounded by max_batch_rows).
 */
struct ig_batch *ig_batcher_next(struct ig_batcher *b, uint64_t now_us);

/* Whether next() would return a batch at <now_us> (one is due and
 * inflight < max_inflight), without taking it. */
int ig_batcher_ready(const struct ig_batcher *b, uint64_t now_us);

/* The owner of the oldest queued row, or NULL when nothing is queued. */
void *ig_batcher_head_owner(const struct ig_batcher *b);

/*
 * When the queue next becomes due by delay: the oldest queued row's enqueue
 * time + max_delay_us (saturating at UINT64_MAX), or UINT64_MAX when nothing
 * is queued. It ignores the row, byte and in-flight limits: when inflight is
 * full, the caller polls next() again after ig_batcher_done.
 */
uint64_t ig_batcher_next_deadline(const struct ig_batcher *b);

/*
 * <batch>, returned by ig_batcher_next on <b>, is finished (its results were
 * scattered): inflight goes down by one and the batch is freed with
 * ig_batch_free. NULL <batch> is a no-op.
 */
void ig_batcher_done(struct ig_batcher *b, struct ig_batch *batch);

/* Free segs, out, preds, fails, backs, err_msg and <batch> itself. NULL is
 * fine. */
void ig_batch_free(struct ig_batch *batch);

/*
 * Remove <owner>'s rows that are still queued (not yet in any batch),
 * including the remainder of a partially taken rowset. Rows already in a
 * batch are not touched. Returns how many rows were removed. O(queued
 * entries).
 */
uint32_t ig_batcher_cancel(struct ig_batcher *b, void *owner);

/*
 * Move <entry>, one queued behind the last entry hoisted (the one just
 * enqueued, or a client's next once its first is taken), ahead of the
 * entries queued since, behind that one (first when none is queued). The
 * caller hoists the request of a client that has nothing queued, and a
 * client's next request once the one before it leaves: each client's first
 * request waiting goes before any client's second, so one client's backlog
 * on a lane delays another's request by at most a batch per other client's
 * first request, not by all of the backlog, and a client's second request
 * is not passed for good by the others' firsts. Each client's own requests
 * keep their order (its later ones are not hoisted while it has one
 * queued). O(1).
 */
void ig_batcher_hoist(struct ig_batcher *b, struct ig_batcher_entry *entry);
/* Entries hoisted past those not hoisted, at most, before a batch takes
 * rows of one of those: past that, a hoisted entry stays last (clients
 * always new cannot keep a client's later request waiting for ever). */
#define IG_BATCHER_HOIST_MAX 32

/* <batch>, one of <b>'s in flight, no longer counts in its inflight
 * (max_inflight): another batch may go while it is out. Once; its
 * ig_batcher_done then leaves the count as it is. */
void ig_batcher_release(struct ig_batcher *b, struct ig_batch *batch);

/* Remove the rows still queued of one entry (see ig_batcher_enqueue_entry)
 * in O(1); returns how many. The handle is invalid afterwards. */
uint32_t ig_batcher_cancel_entry(struct ig_batcher *b, struct ig_batcher_entry *entry);

/* Drain mode on (<on> != 0) or off: while on, any queued row is due. */
void ig_batcher_set_drain(struct ig_batcher *b, int on);

/* Rows and bytes queued, not yet in a batch. */
uint32_t ig_batcher_queued_rows(const struct ig_batcher *b);
uint64_t ig_batcher_queued_bytes(const struct ig_batcher *b);

/* Batches returned by next() and not yet done. */
uint32_t ig_batcher_inflight(const struct ig_batcher *b);

#endif /* INFERGATE_BATCHER_H */

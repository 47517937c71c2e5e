/*
 * batcher.c - the batching policy (pure: the caller passes the clock).
 *
 * The queue is a doubly linked FIFO of entries, one per enqueued rowset,
 * with a tail pointer (the back links make cancelling an entry by its
 * handle O(1): a mass disconnect must not cost O(entries^2)). An entry's
 * <next_row> is the first of its rows still queued. An entry that a batch left
 * partly taken goes to the back of the queue (batcher_rotate), with the
 * batch's time as its time: a request of millions of rows takes its turn
 * one batch at a time, and a small one behind it leaves with the next
 * batches instead of after all of its rows. An entry the caller hoists
 * (ig_batcher_hoist: its client had nothing else queued) goes ahead of the
 * entries queued after the last one hoisted, taking the time of the entry
 * it passes if that is older; at most IG_BATCHER_HOIST_MAX of them pass
 * the entries not hoisted before a batch takes rows of one of those (the
 * oldest), so that clients always new (a request each, from ever other
 * addresses) cannot keep another client's later request waiting for ever.
 * The times stay in queue order, so the head's time is always the oldest
 * in the queue. Queued rows and bytes are kept incrementally (each entry also
 * knows its remaining bytes), so next() costs O(rows taken + segments) and
 * cancel() by owner O(entries), cancel_entry() O(1), never a rescan of rows.
 */
#include <stdint.h>
#include <stdlib.h>

#include "infergate/batcher.h"
#include "infergate/common.h"

struct ig_batcher_entry {
    struct ig_batcher_entry *next;
    struct ig_batcher_entry *prev;
    void *owner;
    const struct ig_rowset *rs;
    uint32_t next_row;   /* first row of rs still queued; < rs->nrows */
    int hoisted;         /* it passed others (ig_batcher_hoist), and was not sent to the back since */
    uint64_t nbytes;     /* bytes of rows [next_row, rs->nrows) */
    uint64_t enqueue_us; /* when the rowset was queued */
};

struct ig_batcher {
    struct ig_batcher_limits lim;
    struct ig_batcher_entry *head; /* oldest; NULL when empty */
    struct ig_batcher_entry *tail; /* newest; NULL when empty */
    /* The last entry hoisted (ig_batcher_hoist), or the one before it when
     * it was cancelled; NULL: none is queued, the next goes first. */
    struct ig_batcher_entry *mark;
    /* Entries hoisted past the entries not hoisted since a batch last took
     * rows of one of those (or the queue was empty): at most
     * IG_BATCHER_HOIST_MAX. */
    uint32_t passes;
    uint32_t queued_rows;       /* <= lim.max_queue_rows */
    uint32_t *group_rows;       /* NULL, or a count shared by batchers (ig_batcher_set_group) */
    uint64_t queued_bytes;
    uint32_t inflight; /* <= lim.max_inflight */
    uint64_t next_id;  /* id of the next batch, from 1 */
    int drain;
};

#define BATCHER_SEGS_INIT 4

struct ig_batcher *ig_batcher_new(const struct ig_batcher_limits *lim)
{
    struct ig_batcher *b;

    if (lim == NULL || lim->max_batch_rows == 0 || lim->max_batch_bytes == 0 ||
        lim->max_inflight == 0 || lim->max_queue_rows == 0)
        return NULL;
    b = ig_xcalloc(1, sizeof(*b));
    b->lim = *lim;
    b->next_id = 1;
    return b;
}

void ig_batcher_set_group(struct ig_batcher *b, uint32_t *rows)
{
    if (b->group_rows != NULL)
        *b->group_rows -= b->queued_rows;
    b->group_rows = rows;
    if (rows != NULL)
        *rows += b->queued_rows;
}

void ig_batcher_free(struct ig_batcher *b)
{
    struct ig_batcher_entry *e, *next;

    if (b == NULL)
        return;
    ig_batcher_set_group(b, NULL);
    for (e = b->head; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    free(b);
}

int ig_batcher_enqueue(struct ig_batcher *b, void *owner, const struct ig_rowset *rs,
                       uint64_t now_us)
{
    return ig_batcher_enqueue_entry(b, owner, rs, now_us, NULL);
}

/* Checks shared by the enqueue calls: 0, or why <rs> cannot be queued. */
static int batcher_admit(const struct ig_batcher *b, const struct ig_rowset *rs)
{
    if (rs == NULL || rs->nrows == 0 || rs->rows == NULL)
        return IG_ERR_INVALID;
    if (rs->nrows > b->lim.max_queue_rows)
        return IG_ERR_TOOBIG;
    if (rs->nrows > b->lim.max_queue_rows - b->queued_rows)
        return IG_ERR_FULL;
    return 0;
}

int ig_batcher_enqueue_sized(struct ig_batcher *b, void *owner, const struct ig_rowset *rs,
                             uint64_t nbytes, uint64_t now_us, struct ig_batcher_entry **entry)
{
    struct ig_batcher_entry *e;
    int rv = batcher_admit(b, rs);

    if (rv < 0)
        return rv;
    e = ig_xmalloc(sizeof(*e));
    e->next = NULL;
    e->prev = b->tail;
    e->owner = owner;
    e->rs = rs;
    e->next_row = 0;
    e->hoisted = 0;
    e->nbytes = nbytes;
    e->enqueue_us = now_us;
    if (b->tail != NULL)
        b->tail->next = e;
    else
        b->head = e;
    b->tail = e;
    b->queued_rows += rs->nrows;
    b->queued_bytes += nbytes;
    if (b->group_rows != NULL)
        *b->group_rows += rs->nrows;
    if (entry != NULL)
        *entry = e;
    return 0;
}

int ig_batcher_enqueue_entry(struct ig_batcher *b, void *owner, const struct ig_rowset *rs,
                             uint64_t now_us, struct ig_batcher_entry **entry)
{
    uint64_t bytes = 0;
    int rv = batcher_admit(b, rs);

    if (rv < 0)
        return rv;
    for (uint32_t i = 0; i < rs->nrows; i++)
        bytes += rs->rows[i].len;
    return ig_batcher_enqueue_sized(b, owner, rs, bytes, now_us, entry);
}

void ig_batcher_hoist(struct ig_batcher *b, struct ig_batcher_entry *e)
{
    struct ig_batcher_entry *at = b->mark; /* e goes after it (NULL: first) */

    if (e->hoisted) /* ahead already, at or before the mark */
        return;
    if (e->prev != at) { /* it passes the entries not hoisted */
        if (b->passes >= IG_BATCHER_HOIST_MAX)
            return; /* the oldest of them goes first now: it waits in turn */
        b->passes++;
    }
    e->hoisted = 1;
    b->mark = e;
    if (e->prev == at) /* there already */
        return;
    /* out of its place (behind <at>: not the head)... */
    e->prev->next = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        b->tail = e->prev;
    /* ...and in after <at> */
    e->prev = at;
    e->next = at != NULL ? at->next : b->head;
    e->next->prev = e;
    if (at != NULL)
        at->next = e;
    else
        b->head = e;
    if (e->enqueue_us > e->next->enqueue_us) /* the times stay in queue order */
        e->enqueue_us = e->next->enqueue_us;
}

uint64_t ig_batcher_next_deadline(const struct ig_batcher *b)
{
    uint64_t t;

    if (b->head == NULL)
        return UINT64_MAX;
    t = b->head->enqueue_us;
    if (b->lim.max_delay_us > UINT64_MAX - t)
        return UINT64_MAX;
    return t + b->lim.max_delay_us;
}

/* Whether the queue is due at <now_us>; the reason goes to <reason>. */
static int batcher_due(const struct ig_batcher *b, uint64_t now_us, enum ig_flush_reason *reason)
{
    if (b->head == NULL)
        return 0;
    if (b->queued_rows >= b->lim.max_batch_rows)
        *reason = IG_FLUSH_ROWS;
    else if (b->queued_bytes >= b->lim.max_batch_bytes)
        *reason = IG_FLUSH_BYTES;
    else if (now_us >= ig_batcher_next_deadline(b))
        *reason = IG_FLUSH_DELAY;
    else if (b->drain)
        *reason = IG_FLUSH_DRAIN;
    else
        return 0;
    return 1;
}

int ig_batcher_ready(const struct ig_batcher *b, uint64_t now_us)
{
    enum ig_flush_reason reason;

    return b->inflight < b->lim.max_inflight && batcher_due(b, now_us, &reason);
}

void *ig_batcher_head_owner(const struct ig_batcher *b)
{
    return b->head != NULL ? b->head->owner : NULL;
}

/* Append a segment to <bt>, growing segs geometrically (<*cap> entries). */
static struct ig_batch_seg *batcher_add_seg(struct ig_batch *bt, uint32_t *cap,
                                            const struct ig_batcher_entry *e)
{
    struct ig_batch_seg *s;

    if (bt->nsegs == *cap) {
        *cap = *cap ? *cap * 2 : BATCHER_SEGS_INIT;
        bt->segs = ig_xrealloc(bt->segs, (size_t)*cap * sizeof(*bt->segs));
    }
    s = &bt->segs[bt->nsegs++];
    s->owner = e->owner;
    s->rs = e->rs;
    s->first = e->next_row;
    s->nrows = 0;
    return s;
}

/* Pop the (fully taken) head entry. */
static void batcher_pop(struct ig_batcher *b)
{
    struct ig_batcher_entry *e = b->head;

    if (b->mark == e)
        b->mark = NULL;
    b->head = e->next;
    if (b->head == NULL) {
        b->tail = NULL;
        b->passes = 0;
    } else {
        b->head->prev = NULL;
    }
    free(e);
}

/* Take <e> out of the queue, whatever its place; returns its rows left. */
static uint32_t batcher_unlink(struct ig_batcher *b, struct ig_batcher_entry *e)
{
    uint32_t rows = e->rs->nrows - e->next_row;

    if (b->mark == e)
        b->mark = e->prev;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        b->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        b->tail = e->prev;
    if (b->head == NULL)
        b->passes = 0;
    b->queued_rows -= rows;
    b->queued_bytes -= e->nbytes;
    if (b->group_rows != NULL)
        *b->group_rows -= rows;
    free(e);
    return rows;
}

/*
 * Move rows from the head of the queue into <bt>: while rows <
 * max_batch_rows and bytes + the next row's len <= max_batch_bytes, the
 * first row always. Each entry touched gives one segment. Returns 1 when
 * the batch took rows of the head entry and left it partly taken.
 */
static int batcher_fill(struct ig_batcher *b, struct ig_batch *bt)
{
    const struct ig_batcher_limits *lim = &b->lim;
    uint64_t bytes = 0;
    uint32_t cap = 0;
    int full = 0, partial = 0;

    while (b->head != NULL && !full) {
        struct ig_batcher_entry *e = b->head;
        struct ig_batch_seg *s;

        if (lim->max_batch_segs != 0 && bt->nsegs == lim->max_batch_segs)
            break; /* the entries a batch may hold: the next waits */
        s = batcher_add_seg(bt, &cap, e);

        while (e->next_row < e->rs->nrows) {
            uint32_t len = e->rs->rows[e->next_row].len;

            /* Stop when bytes + len > max; bytes > max after a lone
             * oversized first row, so test that before subtracting. */
            if (bt->nrows == lim->max_batch_rows ||
                (bt->nrows > 0 &&
                 (bytes > lim->max_batch_bytes || len > lim->max_batch_bytes - bytes))) {
                full = 1;
                break;
            }
            bytes += len;
            e->nbytes -= len;
            e->next_row++;
            s->nrows++;
            bt->nrows++;
        }
        /* An entry stopped at before its first taken row adds nothing. */
        if (s->nrows == 0)
            bt->nsegs--;
        else if (!e->hoisted) /* the oldest not hoisted had its turn */
            b->passes = 0;
        if (e->next_row == e->rs->nrows)
            batcher_pop(b);
        else
            partial = s->nrows > 0;
    }
    bt->nbytes = (size_t)bytes;
    b->queued_rows -= bt->nrows;
    b->queued_bytes -= bytes;
    if (b->group_rows != NULL)
        *b->group_rows -= bt->nrows;
    return partial;
}

/* After a batch that left the head entry partly taken: with others behind
 * it, it goes to the back, its time now (no earlier than any queued: times
 * are enqueue times, never in the future). */
static void batcher_rotate(struct ig_batcher *b, uint64_t now_us)
{
    struct ig_batcher_entry *e = b->head;

    if (e == NULL || e->next == NULL)
        return;
    if (b->mark == e) /* behind every other now: the next hoisted goes first */
        b->mark = NULL;
    e->hoisted = 0;
    b->head = e->next;
    b->head->prev = NULL;
    e->next = NULL;
    e->prev = b->tail;
    b->tail->next = e;
    b->tail = e;
    if (e->enqueue_us < e->prev->enqueue_us)
        e->enqueue_us = e->prev->enqueue_us;
    if (e->enqueue_us < now_us)
        e->enqueue_us = now_us;
}

struct ig_batch *ig_batcher_next(struct ig_batcher *b, uint64_t now_us)
{
    enum ig_flush_reason reason;
    struct ig_batch *bt;

    if (b->inflight >= b->lim.max_inflight || !batcher_due(b, now_us, &reason))
        return NULL;
    bt = ig_xcalloc(1, sizeof(*bt));
    bt->id = b->next_id++;
    bt->reason = reason;
    bt->created_us = now_us;
    if (batcher_fill(b, bt))
        batcher_rotate(b, now_us);
    b->inflight++;
    return bt;
}

void ig_batcher_release(struct ig_batcher *b, struct ig_batch *batch)
{
    if (batch->released)
        return;
    batch->released = 1;
    if (b->inflight > 0)
        b->inflight--;
}

void ig_batcher_done(struct ig_batcher *b, struct ig_batch *batch)
{
    if (batch == NULL)
        return;
    ig_batcher_release(b, batch);
    ig_batch_free(batch);
}

void ig_batch_free(struct ig_batch *batch)
{
    if (batch == NULL)
        return;
    free(batch->segs);
    free(batch->out);
    free(batch->preds);
    free(batch->fails);
    for (uint32_t i = 0; batch->backs != NULL && i < batch->nsegs; i++) {
        free(batch->backs[i].custom_attributes);
        free(batch->backs[i].variant);
    }
    free(batch->backs);
    free(batch->err_msg);
    free(batch);
}

uint32_t ig_batcher_cancel(struct ig_batcher *b, void *owner)
{
    struct ig_batcher_entry *e = b->head, *next;
    uint32_t removed = 0;

    for (; e != NULL; e = next) {
        next = e->next;
        if (e->owner == owner)
            removed += batcher_unlink(b, e);
    }
    return removed;
}

uint32_t ig_batcher_cancel_entry(struct ig_batcher *b, struct ig_batcher_entry *entry)
{
    return batcher_unlink(b, entry);
}

void ig_batcher_set_drain(struct ig_batcher *b, int on)
{
    b->drain = on != 0;
}

uint32_t ig_batcher_queued_rows(const struct ig_batcher *b)
{
    return b->queued_rows;
}

uint64_t ig_batcher_queued_bytes(const struct ig_batcher *b)
{
    return b->queued_bytes;
}

uint32_t ig_batcher_inflight(const struct ig_batcher *b)
{
    return b->inflight;
}

/*
 * test_batcher.c - the batching policy, driven by a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/batcher.h"
#include "infergate/common.h"

/* Owners are opaque to the batcher: the addresses of these tags. */
static char owner_tags[8];
#define OWNER(i) ((void *)&owner_tags[(i)])
#define A OWNER(0)
#define B OWNER(1)
#define C OWNER(2)
#define D OWNER(3)

static struct ig_rowset *rs_new_lens(uint32_t n, const uint32_t *lens)
{
    struct ig_rowset *rs = ig_xcalloc(1, sizeof(*rs));
    uint32_t off = 0;

    rs->nrows = n;
    rs->rows = ig_xcalloc(n ? n : 1, sizeof(*rs->rows));
    for (uint32_t i = 0; i < n; i++) {
        rs->rows[i].off = off;
        rs->rows[i].len = lens[i];
        off += lens[i];
    }
    rs->body_len = off;
    return rs;
}

/* <n> rows of <len> bytes each. */
static struct ig_rowset *rs_new(uint32_t n, uint32_t len)
{
    struct ig_rowset *rs;
    uint32_t *lens = ig_xcalloc(n ? n : 1, sizeof(*lens));

    for (uint32_t i = 0; i < n; i++)
        lens[i] = len;
    rs = rs_new_lens(n, lens);
    free(lens);
    return rs;
}

static void rs_free(struct ig_rowset *rs)
{
    if (rs == NULL)
        return;
    free(rs->rows);
    free(rs);
}

static struct ig_batcher *batcher_make(uint32_t rows, uint64_t bytes, uint64_t delay,
                                       uint32_t inflight, uint32_t queue)
{
    struct ig_batcher_limits lim = {
        .max_batch_rows = rows,
        .max_batch_bytes = bytes,
        .max_delay_us = delay,
        .max_inflight = inflight,
        .max_queue_rows = queue,
    };
    struct ig_batcher *b = ig_batcher_new(&lim);

    assert_non_null(b);
    return b;
}

static void assert_seg(const struct ig_batch *bt, uint32_t i, void *owner,
                       const struct ig_rowset *rs, uint32_t first, uint32_t nrows)
{
    assert_true(i < bt->nsegs);
    assert_ptr_equal(bt->segs[i].owner, owner);
    assert_ptr_equal(bt->segs[i].rs, rs);
    assert_int_equal(bt->segs[i].first, first);
    assert_int_equal(bt->segs[i].nrows, nrows);
}

/* A batch as next() returns it: header fields, no results yet. */
static void assert_batch(const struct ig_batch *bt, enum ig_flush_reason reason, uint32_t nrows,
                         size_t nbytes, uint32_t nsegs)
{
    assert_non_null(bt);
    assert_int_equal(bt->reason, reason);
    assert_int_equal(bt->nrows, nrows);
    assert_int_equal(bt->nbytes, nbytes);
    assert_int_equal(bt->nsegs, nsegs);
    assert_int_equal(bt->status, 0);
    assert_null(bt->out);
    assert_int_equal(bt->out_len, 0);
    assert_null(bt->preds);
    assert_null(bt->err_type);
    assert_null(bt->err_msg);
}

static void test_new_rejects_zero_limits(void **state)
{
    struct ig_batcher_limits ok = {4, 100, 0, 1, 10, 0};
    struct ig_batcher_limits lim;
    struct ig_batcher *b;

    (void)state;
    assert_null(ig_batcher_new(NULL));
    lim = ok;
    lim.max_batch_rows = 0;
    assert_null(ig_batcher_new(&lim));
    lim = ok;
    lim.max_batch_bytes = 0;
    assert_null(ig_batcher_new(&lim));
    lim = ok;
    lim.max_inflight = 0;
    assert_null(ig_batcher_new(&lim));
    lim = ok;
    lim.max_queue_rows = 0;
    assert_null(ig_batcher_new(&lim));

    b = ig_batcher_new(&ok); /* max_delay_us = 0 is valid */
    assert_non_null(b);
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 0);
    assert_int_equal(ig_batcher_inflight(b), 0);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);
    assert_null(ig_batcher_next(b, 0));
    ig_batcher_free(b);
    ig_batcher_free(NULL);
    ig_batch_free(NULL);
}

static void test_flush_by_rows(void **state)
{
    struct ig_batcher *b = batcher_make(4, 1000000, 1000000, 8, 100);
    struct ig_rowset *rs3 = rs_new(3, 10), *rs1 = rs_new(1, 10), *rs5 = rs_new(5, 10);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, rs3, 0), 0);
    assert_null(ig_batcher_next(b, 0)); /* 3 < 4 */
    assert_int_equal(ig_batcher_queued_rows(b), 3);
    assert_int_equal(ig_batcher_enqueue(b, B, rs1, 1), 0);

    bt = ig_batcher_next(b, 1); /* exactly max rows */
    assert_batch(bt, IG_FLUSH_ROWS, 4, 40, 2);
    assert_seg(bt, 0, A, rs3, 0, 3);
    assert_seg(bt, 1, B, rs1, 0, 1);
    assert_int_equal(bt->id, 1);
    assert_true(bt->created_us == 1);
    assert_null(ig_batcher_next(b, 1));
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    ig_batcher_done(b, bt);

    /* 5 queued: a batch of 4, never 5; the fifth waits. */
    assert_int_equal(ig_batcher_enqueue(b, A, rs5, 2), 0);
    bt = ig_batcher_next(b, 2);
    assert_batch(bt, IG_FLUSH_ROWS, 4, 40, 1);
    assert_seg(bt, 0, A, rs5, 0, 4);
    assert_int_equal(bt->id, 2);
    ig_batcher_done(b, bt);
    assert_null(ig_batcher_next(b, 2));
    assert_int_equal(ig_batcher_queued_rows(b), 1);
    assert_int_equal(ig_batcher_queued_bytes(b), 10);

    bt = ig_batcher_next(b, 2 + 1000000);
    assert_batch(bt, IG_FLUSH_DELAY, 1, 10, 1);
    assert_seg(bt, 0, A, rs5, 4, 1);
    assert_int_equal(bt->id, 3);
    ig_batcher_done(b, bt);
    assert_int_equal(ig_batcher_inflight(b), 0);

    ig_batcher_free(b);
    rs_free(rs3);
    rs_free(rs1);
    rs_free(rs5);
}

static void test_flush_by_bytes(void **state)
{
    static const uint32_t la[] = {40, 60}, lb[] = {40, 50, 30}, lc[] = {10, 150, 20},
                          ld[] = {100, 0};
    struct ig_batcher *b = batcher_make(100, 100, 1000, 8, 100);
    struct ig_rowset *ra = rs_new_lens(2, la), *rb = rs_new_lens(3, lb), *rc = rs_new_lens(3, lc),
                     *rd = rs_new_lens(2, ld);
    struct ig_batch *bt;

    (void)state;
    /* bytes == max is allowed */
    assert_int_equal(ig_batcher_enqueue(b, A, ra, 0), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 100);
    bt = ig_batcher_next(b, 0);
    assert_batch(bt, IG_FLUSH_BYTES, 2, 100, 1);
    assert_seg(bt, 0, A, ra, 0, 2);
    ig_batcher_done(b, bt);

    /* the row that would pass max starts the next batch */
    assert_int_equal(ig_batcher_enqueue(b, A, rb, 0), 0);
    bt = ig_batcher_next(b, 0);
    assert_batch(bt, IG_FLUSH_BYTES, 2, 90, 1);
    assert_seg(bt, 0, A, rb, 0, 2);
    ig_batcher_done(b, bt);
    assert_null(ig_batcher_next(b, 999));
    assert_int_equal(ig_batcher_queued_rows(b), 1);
    assert_int_equal(ig_batcher_queued_bytes(b), 30);
    bt = ig_batcher_next(b, 1000);
    assert_batch(bt, IG_FLUSH_DELAY, 1, 30, 1);
    assert_seg(bt, 0, A, rb, 2, 1);
    ig_batcher_done(b, bt);

    /* an oversized row goes alone, and nothing joins it */
    assert_int_equal(ig_batcher_enqueue(b, B, rc, 2000), 0);
    bt = ig_batcher_next(b, 2000);
    assert_batch(bt, IG_FLUSH_BYTES, 1, 10, 1);
    assert_seg(bt, 0, B, rc, 0, 1);
    ig_batcher_done(b, bt);
    bt = ig_batcher_next(b, 2000);
    assert_batch(bt, IG_FLUSH_BYTES, 1, 150, 1);
    assert_seg(bt, 0, B, rc, 1, 1);
    ig_batcher_done(b, bt);
    assert_null(ig_batcher_next(b, 2000));
    assert_int_equal(ig_batcher_queued_bytes(b), 20);
    bt = ig_batcher_next(b, 3000);
    assert_batch(bt, IG_FLUSH_DELAY, 1, 20, 1);
    assert_seg(bt, 0, B, rc, 2, 1);
    ig_batcher_done(b, bt);

    /* an empty row after a full batch still fits: 100 + 0 <= 100 */
    assert_int_equal(ig_batcher_enqueue(b, C, rd, 4000), 0);
    bt = ig_batcher_next(b, 4000);
    assert_batch(bt, IG_FLUSH_BYTES, 2, 100, 1);
    assert_seg(bt, 0, C, rd, 0, 2);
    ig_batcher_done(b, bt);
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 0);

    ig_batcher_free(b);
    rs_free(ra);
    rs_free(rb);
    rs_free(rc);
    rs_free(rd);
}

static void test_flush_by_delay(void **state)
{
    struct ig_batcher *b = batcher_make(2, 1000000, 1000, 8, 100);
    struct ig_rowset *r1 = rs_new(1, 5), *r3 = rs_new(3, 5);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r1, 5000), 0);
    assert_true(ig_batcher_next_deadline(b) == 6000);
    assert_null(ig_batcher_next(b, 5000));
    assert_null(ig_batcher_next(b, 5999));
    bt = ig_batcher_next(b, 6000);
    assert_batch(bt, IG_FLUSH_DELAY, 1, 5, 1);
    assert_seg(bt, 0, A, r1, 0, 1);
    assert_true(bt->created_us == 6000);
    ig_batcher_done(b, bt);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);

    /* The rest of a partially taken rowset keeps its enqueue time. */
    assert_int_equal(ig_batcher_enqueue(b, B, r3, 10000), 0);
    bt = ig_batcher_next(b, 10500);
    assert_batch(bt, IG_FLUSH_ROWS, 2, 10, 1);
    assert_seg(bt, 0, B, r3, 0, 2);
    ig_batcher_done(b, bt);
    assert_true(ig_batcher_next_deadline(b) == 11000);
    assert_null(ig_batcher_next(b, 10999));
    bt = ig_batcher_next(b, 11000);
    assert_batch(bt, IG_FLUSH_DELAY, 1, 5, 1);
    assert_seg(bt, 0, B, r3, 2, 1);
    ig_batcher_done(b, bt);

    ig_batcher_free(b);
    rs_free(r1);
    rs_free(r3);
}

static void test_delay_zero(void **state)
{
    struct ig_batcher *b = batcher_make(10, 1000, 0, 8, 100);
    struct ig_rowset *r = rs_new(2, 3);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r, 7), 0);
    assert_true(ig_batcher_next_deadline(b) == 7);
    bt = ig_batcher_next(b, 7);
    assert_batch(bt, IG_FLUSH_DELAY, 2, 6, 1);
    assert_seg(bt, 0, A, r, 0, 2);
    assert_null(ig_batcher_next(b, 7));
    ig_batcher_done(b, bt);
    ig_batcher_free(b);
    rs_free(r);
}

static void test_owners_share_batches(void **state)
{
    static const uint32_t la[] = {1, 2}, lb[] = {3, 4, 5}, lc[] = {6}, la2[] = {7};
    struct ig_rowset *ra = rs_new_lens(2, la), *rb = rs_new_lens(3, lb), *rc = rs_new_lens(1, lc),
                     *ra2 = rs_new_lens(1, la2);
    struct ig_batcher *b = batcher_make(10, 1000, 1000, 8, 100);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, ra, 0), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, rb, 1), 0);
    assert_int_equal(ig_batcher_enqueue(b, C, rc, 2), 0);
    assert_int_equal(ig_batcher_enqueue(b, A, ra2, 3), 0);
    assert_int_equal(ig_batcher_queued_rows(b), 7);
    assert_int_equal(ig_batcher_queued_bytes(b), 28);
    bt = ig_batcher_next(b, 1000);
    assert_batch(bt, IG_FLUSH_DELAY, 7, 28, 4);
    assert_seg(bt, 0, A, ra, 0, 2);
    assert_seg(bt, 1, B, rb, 0, 3);
    assert_seg(bt, 2, C, rc, 0, 1);
    assert_seg(bt, 3, A, ra2, 0, 1);
    ig_batcher_done(b, bt);
    ig_batcher_free(b);

    /* The same, split over two batches of at most 4 rows. */
    b = batcher_make(4, 1000, 1000, 8, 100);
    assert_int_equal(ig_batcher_enqueue(b, A, ra, 0), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, rb, 1), 0);
    assert_int_equal(ig_batcher_enqueue(b, C, rc, 2), 0);
    assert_int_equal(ig_batcher_enqueue(b, A, ra2, 3), 0);
    bt = ig_batcher_next(b, 3);
    assert_batch(bt, IG_FLUSH_ROWS, 4, 10, 2);
    assert_seg(bt, 0, A, ra, 0, 2);
    assert_seg(bt, 1, B, rb, 0, 2);
    ig_batcher_done(b, bt);
    assert_null(ig_batcher_next(b, 3));
    ig_batcher_set_drain(b, 1);
    bt = ig_batcher_next(b, 3);
    /* B, left partly taken by the first batch, went to the back. */
    assert_batch(bt, IG_FLUSH_DRAIN, 3, 18, 3);
    assert_seg(bt, 0, C, rc, 0, 1);
    assert_seg(bt, 1, A, ra2, 0, 1);
    assert_seg(bt, 2, B, rb, 2, 1);
    ig_batcher_done(b, bt);
    ig_batcher_free(b);

    rs_free(ra);
    rs_free(rb);
    rs_free(rc);
    rs_free(ra2);
}

/* max_batch_segs = 1: a batch holds one entry's rows (a request whose rows
 * go in calls of their own is one batch, not one of hundreds of calls a
 * batch waits for); a partly taken entry still takes its turn. */
static void test_max_batch_segs(void **state)
{
    static const uint32_t la[] = {1, 2}, lc[] = {6};
    struct ig_rowset *ra = rs_new_lens(2, la), *rb = rs_new(5, 1), *rc = rs_new_lens(1, lc);
    struct ig_batcher_limits lim = {.max_batch_rows = 3, .max_batch_bytes = 1000,
                                    .max_delay_us = 0, .max_inflight = 8,
                                    .max_queue_rows = 100, .max_batch_segs = 1};
    struct ig_batcher *b = ig_batcher_new(&lim);
    struct ig_batch *bt[4];

    (void)state;
    assert_non_null(b);
    assert_int_equal(ig_batcher_enqueue(b, A, ra, 0), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, rb, 1), 0);
    assert_int_equal(ig_batcher_enqueue(b, C, rc, 2), 0);
    bt[0] = ig_batcher_next(b, 2);
    assert_batch(bt[0], IG_FLUSH_ROWS, 2, 3, 1);
    assert_seg(bt[0], 0, A, ra, 0, 2);
    bt[1] = ig_batcher_next(b, 2);
    assert_batch(bt[1], IG_FLUSH_ROWS, 3, 3, 1);
    assert_seg(bt[1], 0, B, rb, 0, 3);
    /* B, partly taken, went behind C */
    bt[2] = ig_batcher_next(b, 2);
    assert_batch(bt[2], IG_FLUSH_ROWS, 1, 6, 1);
    assert_seg(bt[2], 0, C, rc, 0, 1);
    bt[3] = ig_batcher_next(b, 2);
    assert_batch(bt[3], IG_FLUSH_DELAY, 2, 2, 1);
    assert_seg(bt[3], 0, B, rb, 3, 2);
    assert_null(ig_batcher_next(b, 2));
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 0);
    for (int i = 0; i < 4; i++)
        ig_batcher_done(b, bt[i]);
    ig_batcher_free(b);
    rs_free(ra);
    rs_free(rb);
    rs_free(rc);
}

/* Two batchers sharing a group counter: it holds their queued rows through
 * enqueue, a batch taken, a cancel, unlinking and freeing. */
static void test_group_rows(void **state)
{
    struct ig_rowset *ra = rs_new(3, 1), *rb = rs_new(4, 1), *rc = rs_new(2, 1);
    struct ig_batcher_limits lim = {.max_batch_rows = 2, .max_batch_bytes = 1000,
                                    .max_delay_us = 0, .max_inflight = 8,
                                    .max_queue_rows = 100};
    struct ig_batcher *b1 = ig_batcher_new(&lim), *b2 = ig_batcher_new(&lim);
    struct ig_batch *bt;
    uint32_t group = 0;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b1, A, ra, 0), 0); /* before the link: added then */
    ig_batcher_set_group(b1, &group);
    ig_batcher_set_group(b2, &group);
    assert_int_equal(group, 3);
    assert_int_equal(ig_batcher_enqueue(b2, B, rb, 0), 0);
    assert_int_equal(ig_batcher_enqueue(b2, C, rc, 0), 0);
    assert_int_equal(group, 9);
    bt = ig_batcher_next(b2, 1); /* 2 rows of B */
    assert_non_null(bt);
    assert_int_equal(group, 7);
    assert_int_equal(ig_batcher_cancel(b2, B), 2); /* B's other 2 */
    assert_int_equal(group, 5);
    ig_batcher_set_group(b1, NULL); /* A's 3 leave the count */
    assert_int_equal(group, 2);
    ig_batcher_done(b2, bt);
    ig_batcher_free(b2); /* C's 2 */
    assert_int_equal(group, 0);
    ig_batcher_free(b1);
    rs_free(ra);
    rs_free(rb);
    rs_free(rc);
}

/* A request of many rows takes its turn one batch at a time: the one-row
 * request queued behind it leaves in the second batch, not the fourth, and
 * the big one's rows keep their order. */
static void test_big_request_takes_turns(void **state)
{
    static const uint32_t lb[] = {5};
    struct ig_rowset *ra = rs_new(10, 1), *rb = rs_new_lens(1, lb);
    struct ig_batcher *b = batcher_make(4, 1000, 1000, 8, 100);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, ra, 0), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, rb, 1), 0);
    bt = ig_batcher_next(b, 2);
    assert_batch(bt, IG_FLUSH_ROWS, 4, 4, 1);
    assert_seg(bt, 0, A, ra, 0, 4);
    ig_batcher_done(b, bt);
    bt = ig_batcher_next(b, 3);
    assert_batch(bt, IG_FLUSH_ROWS, 4, 8, 2);
    assert_seg(bt, 0, B, rb, 0, 1);
    assert_seg(bt, 1, A, ra, 4, 3);
    ig_batcher_done(b, bt);
    /* Alone in the queue now: no turn to give, its time stays the first
     * batch's (2, when it went to the back), and its last rows wait
     * max_delay_us from there. */
    assert_int_equal(ig_batcher_next_deadline(b), 1002);
    assert_null(ig_batcher_next(b, 1001));
    bt = ig_batcher_next(b, 1002);
    assert_batch(bt, IG_FLUSH_DELAY, 3, 3, 1);
    assert_seg(bt, 0, A, ra, 7, 3);
    ig_batcher_done(b, bt);
    ig_batcher_free(b);
    rs_free(ra);
    rs_free(rb);
}

/* A hoisted request goes after the last one hoisted, ahead of the rest;
 * it takes the older time of the entry it passes; a cancelled mark
 * leaves its place to the entry before it; a mark that goes out (or to
 * the back, partly taken) leaves the next hoisted one to go first. */
static void test_hoist(void **state)
{
    struct ig_rowset *a1 = rs_new(2, 1), *a2 = rs_new(2, 1), *a3 = rs_new(2, 1);
    struct ig_rowset *b1 = rs_new(1, 1), *c1 = rs_new(1, 1), *d1 = rs_new(1, 1);
    struct ig_rowset *big = rs_new(5, 1);
    struct ig_batcher *b = batcher_make(2, 1000, 100, 8, 100);
    struct ig_batcher_entry *e;
    struct ig_batch *bt;

    (void)state;
    /* A's first, hoisted into an empty queue; its next two at the back */
    assert_int_equal(ig_batcher_enqueue_entry(b, A, a1, 10, &e), 0);
    ig_batcher_hoist(b, e);
    assert_int_equal(ig_batcher_enqueue_entry(b, A, a2, 11, NULL), 0);
    assert_int_equal(ig_batcher_enqueue_entry(b, A, a3, 12, NULL), 0);
    /* B's first: after A's first, ahead of A's others; C's after B's */
    assert_int_equal(ig_batcher_enqueue_entry(b, B, b1, 20, &e), 0);
    ig_batcher_hoist(b, e);
    assert_int_equal(ig_batcher_enqueue_entry(b, C, c1, 30, &e), 0);
    ig_batcher_hoist(b, e);
    assert_int_equal(ig_batcher_next_deadline(b), 110);
    bt = ig_batcher_next(b, 40);
    assert_batch(bt, IG_FLUSH_ROWS, 2, 2, 1);
    assert_seg(bt, 0, A, a1, 0, 2);
    ig_batcher_done(b, bt);
    /* the times stay in queue order: B, now first, took the time of A's
     * second (11), which it passed */
    assert_int_equal(ig_batcher_next_deadline(b), 111);
    /* C (the mark) cancelled: D goes after B, its place */
    assert_int_equal(ig_batcher_cancel(b, C), 1);
    assert_int_equal(ig_batcher_enqueue_entry(b, D, d1, 50, &e), 0);
    ig_batcher_hoist(b, e);
    bt = ig_batcher_next(b, 60);
    assert_batch(bt, IG_FLUSH_ROWS, 2, 2, 2);
    assert_seg(bt, 0, B, b1, 0, 1);
    assert_seg(bt, 1, D, d1, 0, 1);
    ig_batcher_done(b, bt);
    /* the mark went out: the next hoisted goes first, ahead of A's */
    assert_int_equal(ig_batcher_enqueue_entry(b, C, big, 70, &e), 0);
    ig_batcher_hoist(b, e);
    bt = ig_batcher_next(b, 80);
    assert_batch(bt, IG_FLUSH_ROWS, 2, 2, 1);
    assert_seg(bt, 0, C, big, 0, 2);
    ig_batcher_done(b, bt);
    /* partly taken, it went to the back, no longer the mark: B's next
     * goes first */
    assert_int_equal(ig_batcher_enqueue_entry(b, B, b1, 90, &e), 0);
    ig_batcher_hoist(b, e);
    bt = ig_batcher_next(b, 100);
    assert_batch(bt, IG_FLUSH_ROWS, 2, 2, 2);
    assert_seg(bt, 0, B, b1, 0, 1);
    assert_seg(bt, 1, A, a2, 0, 1);
    ig_batcher_done(b, bt);
    ig_batcher_free(b);
    rs_free(a1);
    rs_free(a2);
    rs_free(a3);
    rs_free(b1);
    rs_free(c1);
    rs_free(d1);
    rs_free(big);
}

/* At most IG_BATCHER_HOIST_MAX hoisted entries pass one not hoisted: the
 * next stays last; once a batch took the oldest not hoisted, others may
 * pass the next one again. */
static void test_hoist_cap(void **state)
{
    enum { N = IG_BATCHER_HOIST_MAX + 2 };
    struct ig_rowset *rs[N];
    struct ig_batcher *b = batcher_make(1, 1000, 100, 1, 1000);
    struct ig_batcher_entry *e;
    struct ig_batch *bt;

    (void)state;
    for (int i = 0; i < N; i++)
        rs[i] = rs_new(1, 1);
    /* rs[0]: A's second request (not hoisted), then N - 1 newcomers */
    assert_int_equal(ig_batcher_enqueue_entry(b, A, rs[0], 0, NULL), 0);
    for (int i = 1; i < N; i++) {
        assert_int_equal(ig_batcher_enqueue_entry(b, B, rs[i], (uint64_t)i, &e), 0);
        ig_batcher_hoist(b, e);
    }
    /* the first IG_BATCHER_HOIST_MAX passed it, in order; then rs[0]; the
     * last one stayed behind it and passes it no more than the others */
    for (int i = 1; i <= IG_BATCHER_HOIST_MAX; i++) {
        bt = ig_batcher_next(b, 1000);
        assert_non_null(bt);
        assert_ptr_equal(bt->segs[0].rs, rs[i]);
        ig_batcher_done(b, bt);
    }
    bt = ig_batcher_next(b, 1000);
    assert_ptr_equal(bt->segs[0].rs, rs[0]);
    ig_batcher_done(b, bt);
    /* the oldest not hoisted had its turn: a newcomer passes again */
    assert_int_equal(ig_batcher_enqueue_entry(b, C, rs[0], 2000, &e), 0);
    ig_batcher_hoist(b, e);
    bt = ig_batcher_next(b, 3000);
    assert_ptr_equal(bt->segs[0].rs, rs[0]);
    ig_batcher_done(b, bt);
    bt = ig_batcher_next(b, 3000);
    assert_ptr_equal(bt->segs[0].rs, rs[N - 1]);
    ig_batcher_done(b, bt);
    assert_null(ig_batcher_next(b, 3000));
    ig_batcher_free(b);
    for (int i = 0; i < N; i++)
        rs_free(rs[i]);
}

static void test_one_owner_2500_rows(void **state)
{
    struct ig_batcher *b = batcher_make(1024, 1u << 30, 2000, 8, 4096);
    struct ig_rowset *r = rs_new(2500, 7);
    struct ig_batch *b1, *b2, *b3;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r, 0), 0);
    b1 = ig_batcher_next(b, 0);
    assert_batch(b1, IG_FLUSH_ROWS, 1024, 7168, 1);
    assert_seg(b1, 0, A, r, 0, 1024);
    b2 = ig_batcher_next(b, 0);
    assert_batch(b2, IG_FLUSH_ROWS, 1024, 7168, 1);
    assert_seg(b2, 0, A, r, 1024, 1024);
    assert_null(ig_batcher_next(b, 1999));
    assert_int_equal(ig_batcher_queued_rows(b), 452);
    assert_int_equal(ig_batcher_queued_bytes(b), 3164);
    b3 = ig_batcher_next(b, 2000);
    assert_batch(b3, IG_FLUSH_DELAY, 452, 3164, 1);
    assert_seg(b3, 0, A, r, 2048, 452);
    assert_int_equal(b1->id, 1);
    assert_int_equal(b2->id, 2);
    assert_int_equal(b3->id, 3);
    assert_int_equal(ig_batcher_inflight(b), 3);
    ig_batcher_done(b, b2);
    ig_batcher_done(b, b1);
    ig_batcher_done(b, b3);
    assert_int_equal(ig_batcher_inflight(b), 0);
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    ig_batcher_free(b);
    rs_free(r);
}

static void test_max_inflight(void **state)
{
    struct ig_batcher *b = batcher_make(2, 1000, 100, 2, 100);
    struct ig_rowset *r = rs_new(7, 1);
    struct ig_batch *b1, *b2, *b3, *b4;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r, 50), 0);
    b1 = ig_batcher_next(b, 50);
    b2 = ig_batcher_next(b, 50);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_int_equal(ig_batcher_inflight(b), 2);
    assert_null(ig_batcher_next(b, 50));   /* due by rows, blocked */
    assert_null(ig_batcher_next(b, 1000)); /* due by delay too, still blocked */
    assert_int_equal(ig_batcher_queued_rows(b), 3);
    assert_true(ig_batcher_next_deadline(b) == 150);

    ig_batcher_done(b, b1);
    assert_int_equal(ig_batcher_inflight(b), 1);
    b3 = ig_batcher_next(b, 1000);
    assert_batch(b3, IG_FLUSH_ROWS, 2, 2, 1);
    assert_seg(b3, 0, A, r, 4, 2);
    assert_int_equal(b3->id, 3);
    assert_null(ig_batcher_next(b, 1000));
    ig_batcher_done(b, b2);
    b4 = ig_batcher_next(b, 1000);
    assert_batch(b4, IG_FLUSH_DELAY, 1, 1, 1);
    assert_seg(b4, 0, A, r, 6, 1);
    assert_int_equal(b4->id, 4);
    ig_batcher_done(b, b3);
    ig_batcher_done(b, b4);
    assert_int_equal(ig_batcher_inflight(b), 0);
    ig_batcher_free(b);
    rs_free(r);
}

/* ready() says what next() would do, without taking a batch; head_owner()
 * names the oldest queued row's owner (the gateway picks the lane whose
 * head's client was served least). */
static void test_ready_and_head_owner(void **state)
{
    struct ig_batcher *b = batcher_make(2, 1000, 100, 1, 100);
    struct ig_rowset *r1 = rs_new(1, 1), *r2 = rs_new(2, 1);
    struct ig_batch *b1, *b2;

    (void)state;
    assert_false(ig_batcher_ready(b, 0));
    assert_null(ig_batcher_head_owner(b));
    assert_int_equal(ig_batcher_enqueue(b, A, r1, 50), 0);
    assert_ptr_equal(ig_batcher_head_owner(b), A);
    assert_false(ig_batcher_ready(b, 149)); /* one row, its delay not passed */
    assert_true(ig_batcher_ready(b, 150));
    assert_int_equal(ig_batcher_queued_rows(b), 1); /* nothing taken */
    assert_int_equal(ig_batcher_enqueue(b, B, r2, 60), 0);
    assert_true(ig_batcher_ready(b, 60)); /* full: due by rows */
    b1 = ig_batcher_next(b, 60);
    assert_batch(b1, IG_FLUSH_ROWS, 2, 2, 2);
    assert_ptr_equal(ig_batcher_head_owner(b), B); /* B's second row */
    assert_false(ig_batcher_ready(b, 1000));       /* due, but max_inflight is 1 */
    assert_null(ig_batcher_next(b, 1000));
    ig_batcher_done(b, b1);
    assert_true(ig_batcher_ready(b, 1000));
    b2 = ig_batcher_next(b, 1000);
    assert_batch(b2, IG_FLUSH_DELAY, 1, 1, 1);
    assert_null(ig_batcher_head_owner(b));
    ig_batcher_done(b, b2);
    ig_batcher_free(b);
    rs_free(r1);
    rs_free(r2);
}

static void test_queue_full(void **state)
{
    struct ig_batcher *b = batcher_make(100, 100000, 1000, 8, 10);
    struct ig_rowset *r6 = rs_new(6, 3), *r5 = rs_new(5, 3), *r4 = rs_new(4, 3), *r1 = rs_new(1, 3),
                     *r11 = rs_new(11, 3), *r0 = rs_new(0, 3);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r11, 0), IG_ERR_TOOBIG); /* even when empty */
    assert_int_equal(ig_batcher_enqueue(b, A, r0, 0), IG_ERR_INVALID);
    assert_int_equal(ig_batcher_enqueue(b, A, NULL, 0), IG_ERR_INVALID);
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);

    assert_int_equal(ig_batcher_enqueue(b, A, r6, 100), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, r5, 200), IG_ERR_FULL);
    assert_int_equal(ig_batcher_queued_rows(b), 6);
    assert_int_equal(ig_batcher_queued_bytes(b), 18);
    assert_true(ig_batcher_next_deadline(b) == 1100);
    assert_int_equal(ig_batcher_enqueue(b, C, r4, 300), 0); /* exactly the cap */
    assert_int_equal(ig_batcher_queued_rows(b), 10);
    assert_int_equal(ig_batcher_enqueue(b, D, r1, 400), IG_ERR_FULL);
    assert_int_equal(ig_batcher_enqueue(b, D, r11, 400), IG_ERR_TOOBIG);
    assert_int_equal(ig_batcher_queued_rows(b), 10);
    assert_int_equal(ig_batcher_queued_bytes(b), 30);

    /* The refused rowsets never show up. */
    ig_batcher_set_drain(b, 1);
    bt = ig_batcher_next(b, 400);
    assert_batch(bt, IG_FLUSH_DRAIN, 10, 30, 2);
    assert_seg(bt, 0, A, r6, 0, 6);
    assert_seg(bt, 1, C, r4, 0, 4);
    assert_null(ig_batcher_next(b, 400));
    ig_batcher_done(b, bt);
    /* Room again. */
    assert_int_equal(ig_batcher_enqueue(b, B, r5, 500), 0);
    assert_int_equal(ig_batcher_queued_rows(b), 5);

    ig_batcher_free(b);
    rs_free(r6);
    rs_free(r5);
    rs_free(r4);
    rs_free(r1);
    rs_free(r11);
    rs_free(r0);
}

static void test_cancel(void **state)
{
    static const uint32_t la[] = {1, 2, 3, 4, 5}, lb[] = {10, 20, 30}, la2[] = {100, 200},
                          lc[] = {1000};
    struct ig_rowset *ra = rs_new_lens(5, la), *rb = rs_new_lens(3, lb), *ra2 = rs_new_lens(2, la2),
                     *rc = rs_new_lens(1, lc);
    struct ig_rowset *x1 = rs_new(1, 1), *x2 = rs_new(1, 2), *x3 = rs_new(1, 3), *x4 = rs_new(1, 4);
    struct ig_batcher *b = batcher_make(3, 100000, 1000, 8, 100);
    struct ig_batch *b1, *b2, *b3;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, ra, 0), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, rb, 1), 0);
    assert_int_equal(ig_batcher_enqueue(b, A, ra2, 2), 0);
    assert_int_equal(ig_batcher_enqueue(b, C, rc, 3), 0);
    assert_int_equal(ig_batcher_queued_rows(b), 11);
    assert_int_equal(ig_batcher_queued_bytes(b), 1375);

    b1 = ig_batcher_next(b, 3);
    assert_batch(b1, IG_FLUSH_ROWS, 3, 6, 1);
    assert_seg(b1, 0, A, ra, 0, 3);
    assert_int_equal(ig_batcher_queued_bytes(b), 1369);

    /* A's partial head remainder (2 rows) and ra2 (2 rows) go. */
    assert_int_equal(ig_batcher_cancel(b, A), 4);
    assert_int_equal(ig_batcher_queued_rows(b), 4);
    assert_int_equal(ig_batcher_queued_bytes(b), 1060);
    assert_true(ig_batcher_next_deadline(b) == 1001); /* head is now B's */
    assert_int_equal(ig_batcher_cancel(b, A), 0);
    assert_int_equal(ig_batcher_cancel(b, D), 0);
    /* The batch in flight is not touched. */
    assert_seg(b1, 0, A, ra, 0, 3);
    assert_int_equal(b1->nrows, 3);

    b2 = ig_batcher_next(b, 3);
    assert_batch(b2, IG_FLUSH_ROWS, 3, 60, 1);
    assert_seg(b2, 0, B, rb, 0, 3);
    assert_null(ig_batcher_next(b, 3));
    assert_int_equal(ig_batcher_cancel(b, C), 1); /* the last entry */
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 0);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);
    assert_null(ig_batcher_next(b, 5000));
    ig_batcher_done(b, b1);
    ig_batcher_done(b, b2);

    /* Cancel the head and the tail of B, C, B; then append: C, A. */
    assert_int_equal(ig_batcher_enqueue(b, B, x1, 10), 0);
    assert_int_equal(ig_batcher_enqueue(b, C, x2, 11), 0);
    assert_int_equal(ig_batcher_enqueue(b, B, x3, 12), 0);
    assert_int_equal(ig_batcher_cancel(b, B), 2);
    assert_int_equal(ig_batcher_queued_rows(b), 1);
    assert_int_equal(ig_batcher_queued_bytes(b), 2);
    assert_true(ig_batcher_next_deadline(b) == 1011);
    assert_int_equal(ig_batcher_enqueue(b, A, x4, 13), 0);
    ig_batcher_set_drain(b, 1);
    b3 = ig_batcher_next(b, 13);
    assert_batch(b3, IG_FLUSH_DRAIN, 2, 6, 2);
    assert_seg(b3, 0, C, x2, 0, 1);
    assert_seg(b3, 1, A, x4, 0, 1);
    assert_null(ig_batcher_next(b, 13));
    ig_batcher_done(b, b3);

    /* Cancelling everything empties the queue; enqueue works after. */
    assert_int_equal(ig_batcher_enqueue(b, D, x1, 20), 0);
    assert_int_equal(ig_batcher_cancel(b, D), 1);
    assert_int_equal(ig_batcher_enqueue(b, D, x2, 21), 0);
    assert_int_equal(ig_batcher_queued_rows(b), 1);
    assert_true(ig_batcher_next_deadline(b) == 1021);

    ig_batcher_free(b); /* with an entry still queued */
    rs_free(ra);
    rs_free(rb);
    rs_free(ra2);
    rs_free(rc);
    rs_free(x1);
    rs_free(x2);
    rs_free(x3);
    rs_free(x4);
}

/* Enqueue with the byte total given by the caller (a decoder computed it
 * off the loop): the same admission rules and counts as the counting
 * enqueue, and batches cut by bytes exactly as if the batcher had summed. */
static void test_enqueue_sized(void **state)
{
    static const uint32_t la[] = {5, 6, 7}, lb[] = {40, 1};
    struct ig_rowset *ra = rs_new_lens(3, la), *rb = rs_new_lens(2, lb), *big = rs_new(6, 1);
    struct ig_rowset empty = {0};
    struct ig_batcher *b = batcher_make(100, 50, 1000, 8, 5);
    struct ig_batcher_entry *ea = NULL, *eb = NULL;
    struct ig_batch *b1, *b2;

    (void)state;
    assert_int_equal(ig_batcher_enqueue_sized(b, A, NULL, 0, 0, NULL), IG_ERR_INVALID);
    assert_int_equal(ig_batcher_enqueue_sized(b, A, &empty, 0, 0, NULL), IG_ERR_INVALID);
    assert_int_equal(ig_batcher_enqueue_sized(b, A, big, 6, 0, NULL), IG_ERR_TOOBIG);
    assert_int_equal(ig_batcher_enqueue_sized(b, A, ra, 18, 0, &ea), 0);
    assert_non_null(ea);
    assert_int_equal(ig_batcher_queued_rows(b), 3);
    assert_int_equal(ig_batcher_queued_bytes(b), 18);
    /* 3 + 3 rows > 5: full, and nothing changed. */
    assert_int_equal(ig_batcher_enqueue_sized(b, B, ra, 18, 1, &eb), IG_ERR_FULL);
    assert_null(eb);
    assert_int_equal(ig_batcher_queued_bytes(b), 18);
    assert_int_equal(ig_batcher_enqueue_sized(b, B, rb, 41, 1, &eb), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 59);
    /* 59 bytes >= 50: due by bytes; 18 + 40 > 50 stops before B's first row. */
    b1 = ig_batcher_next(b, 1);
    assert_batch(b1, IG_FLUSH_BYTES, 3, 18, 1);
    assert_seg(b1, 0, A, ra, 0, 3);
    assert_int_equal(ig_batcher_queued_bytes(b), 41);
    assert_null(ig_batcher_next(b, 1));
    b2 = ig_batcher_next(b, 1001);
    assert_batch(b2, IG_FLUSH_DELAY, 2, 41, 1);
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 0);
    ig_batcher_done(b, b1);
    ig_batcher_done(b, b2);
    ig_batcher_free(b);
    rs_free(ra);
    rs_free(rb);
    rs_free(big);
}

/* Cancel by handle: a partly taken head, a middle entry and the tail, in
 * O(1) each, with the queue's order, counts and deadline kept right. */
static void test_cancel_entry(void **state)
{
    static const uint32_t la[] = {1, 2, 3, 4}, lb[] = {10, 20}, lc[] = {100}, ld[] = {1000, 2000};
    struct ig_rowset *ra = rs_new_lens(4, la), *rb = rs_new_lens(2, lb), *rc = rs_new_lens(1, lc),
                     *rd = rs_new_lens(2, ld);
    struct ig_batcher *b = batcher_make(3, 100000, 1000, 8, 100);
    struct ig_batcher_entry *ea, *eb, *ec, *ed;
    struct ig_batch *b1, *b2;

    (void)state;
    assert_int_equal(ig_batcher_enqueue_entry(b, A, ra, 0, &ea), 0);
    assert_int_equal(ig_batcher_enqueue_entry(b, B, rb, 1, &eb), 0);
    assert_int_equal(ig_batcher_enqueue_entry(b, C, rc, 2, &ec), 0);
    assert_int_equal(ig_batcher_enqueue_entry(b, D, rd, 3, &ed), 0);
    assert_non_null(ea);
    b1 = ig_batcher_next(b, 3); /* A's rows 0..2 */
    assert_seg(b1, 0, A, ra, 0, 3);
    assert_int_equal(ig_batcher_queued_rows(b), 6);

    assert_int_equal(ig_batcher_cancel_entry(b, ec), 1); /* middle */
    assert_int_equal(ig_batcher_queued_rows(b), 5);
    assert_int_equal(ig_batcher_queued_bytes(b), 4 + 30 + 3000);
    assert_int_equal(ig_batcher_cancel_entry(b, ea), 1); /* partly taken head */
    assert_true(ig_batcher_next_deadline(b) == 1001);
    assert_int_equal(ig_batcher_cancel_entry(b, ed), 2); /* tail */
    assert_int_equal(ig_batcher_queued_rows(b), 2);
    assert_int_equal(ig_batcher_queued_bytes(b), 30);
    /* Appending after removing the tail links behind B. */
    assert_int_equal(ig_batcher_enqueue_entry(b, D, rd, 4, &ed), 0);
    b2 = ig_batcher_next(b, 4);
    assert_batch(b2, IG_FLUSH_ROWS, 3, 1030, 2);
    assert_seg(b2, 0, B, rb, 0, 2);
    assert_seg(b2, 1, D, rd, 0, 1);
    assert_int_equal(ig_batcher_cancel_entry(b, ed), 1); /* D's remainder */
    assert_int_equal(ig_batcher_queued_rows(b), 0);
    assert_int_equal(ig_batcher_queued_bytes(b), 0);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);
    ig_batcher_done(b, b1);
    ig_batcher_done(b, b2);

    /* Many entries cancelled by handle, in an order unlike the queue's:
     * nothing is left and the queue works again. */
    {
        enum { N = 5000 };
        struct ig_rowset *one = rs_new(1, 1);
        struct ig_batcher *big = batcher_make(10, 100000, 1000, 8, N);
        struct ig_batcher_entry **es = ig_xcalloc(N, sizeof(*es));

        for (int i = 0; i < N; i++)
            assert_int_equal(ig_batcher_enqueue_entry(big, OWNER(i % 8), one, (uint64_t)i, &es[i]),
                             0);
        for (int i = 0; i < N; i += 2)
            assert_int_equal(ig_batcher_cancel_entry(big, es[i]), 1);
        for (int i = N - 1; i > 0; i -= 2)
            assert_int_equal(ig_batcher_cancel_entry(big, es[i]), 1);
        assert_int_equal(ig_batcher_queued_rows(big), 0);
        assert_true(ig_batcher_next_deadline(big) == UINT64_MAX);
        assert_int_equal(ig_batcher_enqueue(big, A, one, 7), 0);
        assert_true(ig_batcher_next_deadline(big) == 1007);
        free(es);
        ig_batcher_free(big);
        rs_free(one);
    }
    ig_batcher_free(b);
    rs_free(ra);
    rs_free(rb);
    rs_free(rc);
    rs_free(rd);
}

static void test_drain(void **state)
{
    struct ig_batcher *b = batcher_make(10, 1000, 1000, 8, 100);
    struct ig_rowset *r2 = rs_new(2, 4), *r1 = rs_new(1, 4);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r2, 0), 0);
    assert_null(ig_batcher_next(b, 0));
    ig_batcher_set_drain(b, 1);
    bt = ig_batcher_next(b, 0);
    assert_batch(bt, IG_FLUSH_DRAIN, 2, 8, 1);
    assert_seg(bt, 0, A, r2, 0, 2);
    assert_null(ig_batcher_next(b, 0)); /* nothing queued: no empty batch */
    ig_batcher_done(b, bt);
    ig_batcher_set_drain(b, 0);
    assert_int_equal(ig_batcher_enqueue(b, A, r1, 0), 0);
    assert_null(ig_batcher_next(b, 999));
    bt = ig_batcher_next(b, 1000);
    assert_batch(bt, IG_FLUSH_DELAY, 1, 4, 1);
    ig_batcher_done(b, bt);
    ig_batcher_free(b);
    rs_free(r2);
    rs_free(r1);
}

static void test_next_deadline(void **state)
{
    struct ig_batcher *b = batcher_make(10, 1000, 50, 8, 100);
    struct ig_rowset *r1 = rs_new(1, 1), *r2 = rs_new(1, 1);

    (void)state;
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);
    assert_int_equal(ig_batcher_enqueue(b, A, r1, 100), 0);
    assert_true(ig_batcher_next_deadline(b) == 150);
    assert_int_equal(ig_batcher_enqueue(b, B, r2, 120), 0);
    assert_true(ig_batcher_next_deadline(b) == 150);
    assert_int_equal(ig_batcher_cancel(b, A), 1);
    assert_true(ig_batcher_next_deadline(b) == 170);
    assert_int_equal(ig_batcher_cancel(b, B), 1);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);
    ig_batcher_free(b);

    /* enqueue time + delay saturates */
    b = batcher_make(10, 1000, UINT64_MAX - 10, 8, 100);
    assert_int_equal(ig_batcher_enqueue(b, A, r1, 100), 0);
    assert_true(ig_batcher_next_deadline(b) == UINT64_MAX);
    assert_null(ig_batcher_next(b, UINT64_MAX - 1));
    ig_batcher_free(b);
    rs_free(r1);
    rs_free(r2);
}

/* The batcher goes first; its batches stay valid and own their results. */
static void test_free_with_batches_in_flight(void **state)
{
    struct ig_batcher *b = batcher_make(2, 1000, 1000, 8, 100);
    struct ig_rowset *r = rs_new(3, 9);
    struct ig_batch *bt;

    (void)state;
    assert_int_equal(ig_batcher_enqueue(b, A, r, 0), 0);
    bt = ig_batcher_next(b, 0);
    assert_non_null(bt);
    ig_batcher_free(b); /* one row still queued, one batch in flight */
    assert_seg(bt, 0, A, r, 0, 2);
    bt->out = ig_xstrdup("1\n2\n");
    bt->out_len = 4;
    bt->preds = ig_xcalloc(2, sizeof(*bt->preds));
    bt->err_msg = ig_xstrdup("x");
    ig_batch_free(bt); /* ASan: nothing leaks */
    rs_free(r);
}

/* ------------------------------------------------------------------------
 * Randomized property test against a simple model of the queue.
 */

struct prop_req {
    struct ig_rowset *rs;
    uint32_t owner;
    int hoisted; /* passed others and not sent to the back since (the batcher's mark zone) */
    struct ig_batcher_entry *e; /* its entry, while it has rows queued */
    uint8_t *state; /* per row: 0 queued, 1 in a batch, 2 cancelled */
};

struct prop_row {
    struct prop_req *req;
    uint32_t row;
    uint64_t enq_us;
};

struct prop {
    unsigned seed;
    uint64_t rng;
    struct ig_batcher_limits lim;
    struct ig_batcher *b;
    uint64_t now;
    int drain;
    uint64_t next_id;
    struct prop_row *q; /* model queue, q[0] oldest */
    uint32_t nq;
    uint64_t qbytes;
    struct prop_req **reqs;
    size_t nreqs, capreqs;
    struct ig_batch **infl;
    uint32_t ninfl;
    uint64_t batches, rows_out, rows_cancelled, rows_in, hoisted;
    struct prop_req *mark; /* the batcher's mark (ig_batcher_hoist), NULL: none */
    uint32_t passes;       /* hoists past entries not hoisted (IG_BATCHER_HOIST_MAX) */
};

#define PCHECK(p, cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("seed %u line %d: %s", (p)->seed, __LINE__, #cond);                           \
    } while (0)

/* Whether the model's queue holds rows of <req>. */
static int prop_queued(const struct prop *p, const struct prop_req *req)
{
    for (uint32_t i = 0; i < p->nq; i++)
        if (p->q[i].req == req)
            return 1;
    return 0;
}

/* Where the rows of the model's marked request end in its queue (0: no
 * mark, a hoisted request goes first). */
static uint32_t prop_mark_end(struct prop *p)
{
    uint32_t i = 0;

    if (p->mark == NULL)
        return 0;
    while (i < p->nq && p->q[i].req != p->mark)
        i++;
    PCHECK(p, i < p->nq); /* a mark has rows queued */
    while (i < p->nq && p->q[i].req == p->mark)
        i++;
    return i;
}

static uint64_t prop_rand(struct prop *p)
{
    /* splitmix64 */
    uint64_t z = (p->rng += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t prop_range(struct prop *p, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(prop_rand(p) % (uint64_t)(hi - lo + 1));
}

static uint32_t prop_row_len(const struct prop_row *r)
{
    return r->req->rs->rows[r->row].len;
}

static void prop_check_counts(struct prop *p)
{
    uint64_t want = p->nq ? p->q[0].enq_us + p->lim.max_delay_us : UINT64_MAX;

    PCHECK(p, ig_batcher_queued_rows(p->b) == p->nq);
    PCHECK(p, ig_batcher_queued_bytes(p->b) == p->qbytes);
    PCHECK(p, ig_batcher_inflight(p->b) == p->ninfl);
    PCHECK(p, ig_batcher_next_deadline(p->b) == want);
    PCHECK(p, p->nq <= p->lim.max_queue_rows);
    PCHECK(p, p->ninfl <= p->lim.max_inflight);
}

/* ig_batcher_hoist of <req>'s entry (it has rows queued), and the same in
 * the model: after the marked request's rows, at the time of the row it
 * passes when that is older; not when it is ahead already, nor when it
 * would pass others past IG_BATCHER_HOIST_MAX. */
static void prop_hoist(struct prop *p, struct prop_req *req)
{
    uint32_t at = prop_mark_end(p), from = 0, m = 0, i;
    struct prop_row *tmp;
    uint64_t t;

    ig_batcher_hoist(p->b, req->e);
    if (req->hoisted)
        return;
    while (p->q[from].req != req)
        from++;
    PCHECK(p, from >= at); /* not hoisted: behind the mark */
    while (from + m < p->nq && p->q[from + m].req == req)
        m++;
    if (from != at) {
        if (p->passes >= IG_BATCHER_HOIST_MAX)
            return;
        p->passes++;
    }
    req->hoisted = 1;
    p->mark = req;
    p->hoisted++;
    if (from == at)
        return;
    t = p->q[from].enq_us < p->q[at].enq_us ? p->q[from].enq_us : p->q[at].enq_us;
    tmp = ig_xmalloc(m * sizeof(*tmp));
    memcpy(tmp, p->q + from, m * sizeof(*tmp));
    memmove(p->q + at + m, p->q + at, (from - at) * sizeof(*p->q));
    for (i = 0; i < m; i++) {
        tmp[i].enq_us = t;
        p->q[at + i] = tmp[i];
    }
    free(tmp);
}

static void prop_enqueue(struct prop *p)
{
    uint32_t owner = prop_range(p, 0, 4), n, i, *lens;
    uint32_t maxlen = (uint32_t)(p->lim.max_batch_bytes + p->lim.max_batch_bytes / 2);
    struct prop_req *req;
    int rv, want;

    n = prop_range(p, 0, 9) == 0 ? prop_range(p, 0, p->lim.max_queue_rows + 2)
                                 : prop_range(p, 1, 6);
    lens = ig_xcalloc(n ? n : 1, sizeof(*lens));
    for (i = 0; i < n; i++)
        lens[i] = prop_range(p, 0, 19) == 0
                      ? prop_range(p, 0, maxlen)
                      : prop_range(p, 0, (uint32_t)p->lim.max_batch_bytes / 3);
    req = ig_xcalloc(1, sizeof(*req));
    req->rs = rs_new_lens(n, lens);
    req->owner = owner;
    req->state = ig_xcalloc(n ? n : 1, 1);
    free(lens);

    if (n == 0)
        want = IG_ERR_INVALID;
    else if (n > p->lim.max_queue_rows)
        want = IG_ERR_TOOBIG;
    else if (p->nq + n > p->lim.max_queue_rows)
        want = IG_ERR_FULL;
    else
        want = 0;
    struct ig_batcher_entry *e = NULL;
    int hoist = prop_range(p, 0, 2) == 0;

    rv = ig_batcher_enqueue_entry(p->b, OWNER(owner), req->rs, p->now, &e);
    PCHECK(p, rv == want);
    if (rv != 0) {
        rs_free(req->rs);
        free(req->state);
        free(req);
        return;
    }
    if (p->nreqs == p->capreqs) {
        p->capreqs = p->capreqs ? p->capreqs * 2 : 64;
        p->reqs = ig_xrealloc(p->reqs, p->capreqs * sizeof(*p->reqs));
    }
    p->reqs[p->nreqs++] = req;
    req->e = e;
    for (i = 0; i < n; i++)
        p->q[p->nq++] = (struct prop_row){req, i, p->now};
    if (hoist)
        prop_hoist(p, req);
    for (i = 0; i < n; i++)
        p->qbytes += req->rs->rows[i].len;
    p->rows_in += n;
}

/* The reason the model says the queue is due for, or -1. */
static int prop_due(const struct prop *p)
{
    if (p->nq == 0 || p->ninfl >= p->lim.max_inflight)
        return -1;
    if (p->nq >= p->lim.max_batch_rows)
        return IG_FLUSH_ROWS;
    if (p->qbytes >= p->lim.max_batch_bytes)
        return IG_FLUSH_BYTES;
    if (p->now >= p->q[0].enq_us + p->lim.max_delay_us)
        return IG_FLUSH_DELAY;
    if (p->drain)
        return IG_FLUSH_DRAIN;
    return -1;
}

/* <bt> must hold exactly the model's next rows, packed to the limits. */
static void prop_check_batch(struct prop *p, const struct ig_batch *bt, int reason)
{
    struct prop_req *last;
    uint32_t k = 0, s, j, n;
    uint64_t bytes = 0;

    PCHECK(p, (int)bt->reason == reason);
    PCHECK(p, bt->id == p->next_id);
    PCHECK(p, bt->created_us == p->now);
    PCHECK(p, bt->status == 0 && bt->out == NULL && bt->preds == NULL && bt->err_msg == NULL);
    PCHECK(p, bt->nrows >= 1 && bt->nrows <= p->lim.max_batch_rows);
    PCHECK(p, bt->nsegs >= 1);
    for (s = 0; s < bt->nsegs; s++) {
        const struct ig_batch_seg *sg = &bt->segs[s];

        PCHECK(p, sg->nrows >= 1);
        if (s > 0) /* one segment per run: a run never continues in the next */
            PCHECK(p, !(sg->rs == bt->segs[s - 1].rs &&
                        sg->first == bt->segs[s - 1].first + bt->segs[s - 1].nrows));
        for (j = 0; j < sg->nrows; j++, k++) {
            PCHECK(p, k < p->nq);
            PCHECK(p, p->q[k].req->rs == sg->rs);
            PCHECK(p, OWNER(p->q[k].req->owner) == sg->owner);
            PCHECK(p, p->q[k].row == sg->first + j);
            PCHECK(p, p->q[k].req->state[p->q[k].row] == 0);
            p->q[k].req->state[p->q[k].row] = 1;
            if (!p->q[k].req->hoisted) /* the oldest not hoisted had its turn */
                p->passes = 0;
            bytes += prop_row_len(&p->q[k]);
        }
    }
    n = k;
    PCHECK(p, n == bt->nrows);
    PCHECK(p, bytes == bt->nbytes);
    PCHECK(p, bytes <= p->lim.max_batch_bytes || n == 1);
    /* Maximal: the next queued row would pass a limit. */
    if (n < p->nq)
        PCHECK(p, n == p->lim.max_batch_rows ||
                      bytes + prop_row_len(&p->q[n]) > p->lim.max_batch_bytes);
    last = n > 0 ? p->q[n - 1].req : NULL;
    memmove(p->q, p->q + n, (p->nq - n) * sizeof(*p->q));
    p->nq -= n;
    p->qbytes -= bytes;
    /* a mark whose rows all went out: none (the rows before it went too) */
    if (p->mark != NULL && !prop_queued(p, p->mark))
        p->mark = NULL;
    if (p->nq == 0)
        p->passes = 0;
    /* A request the batch left partly taken goes to the back of the queue,
     * its rows' time the batch's (or the newest queued, if later). */
    if (p->nq > 0 && p->q[0].req == last && p->q[p->nq - 1].req != last) {
        uint32_t m = 0, i;
        uint64_t t = p->q[p->nq - 1].enq_us;
        struct prop_row *tmp;

        while (m < p->nq && p->q[m].req == last)
            m++;
        if (p->mark == last)
            p->mark = NULL;
        last->hoisted = 0;
        tmp = ig_xmalloc(m * sizeof(*tmp));
        memcpy(tmp, p->q, m * sizeof(*tmp));
        memmove(p->q, p->q + m, (p->nq - m) * sizeof(*p->q));
        if (t < p->now)
            t = p->now;
        for (i = 0; i < m; i++) {
            tmp[i].enq_us = t;
            p->q[p->nq - m + i] = tmp[i];
        }
        free(tmp);
    }
    p->rows_out += n;
    p->batches++;
    p->next_id++;
}

static void prop_poll(struct prop *p)
{
    struct ig_batch *bt;
    int reason;

    for (;;) {
        reason = prop_due(p);
        bt = ig_batcher_next(p->b, p->now);
        if (bt == NULL) {
            PCHECK(p, reason == -1);
            return;
        }
        PCHECK(p, reason != -1);
        prop_check_batch(p, bt, reason);
        PCHECK(p, p->ninfl < p->lim.max_inflight);
        p->infl[p->ninfl++] = bt;
        prop_check_counts(p);
    }
}

static void prop_done(struct prop *p)
{
    uint32_t i;

    if (p->ninfl == 0)
        return;
    i = prop_range(p, 0, p->ninfl - 1);
    ig_batcher_done(p->b, p->infl[i]);
    p->infl[i] = p->infl[--p->ninfl];
}

static void prop_cancel(struct prop *p)
{
    uint32_t owner = prop_range(p, 0, 5), want = 0, i, kept = 0;

    /* a cancelled mark: the nearest request before it that stays */
    if (p->mark != NULL && p->mark->owner == owner) {
        struct prop_req *m = NULL;

        for (i = 0; i < p->nq && p->q[i].req != p->mark; i++)
            if (p->q[i].req->owner != owner)
                m = p->q[i].req;
        p->mark = m;
    }
    for (i = 0; i < p->nq; i++) {
        if (p->q[i].req->owner == owner) {
            p->q[i].req->state[p->q[i].row] = 2;
            p->qbytes -= prop_row_len(&p->q[i]);
            want++;
        } else {
            p->q[kept++] = p->q[i];
        }
    }
    p->nq = kept;
    if (p->nq == 0)
        p->passes = 0;
    PCHECK(p, ig_batcher_cancel(p->b, OWNER(owner)) == want);
    p->rows_cancelled += want;
}

static uint64_t total_hoisted;

static void prop_run(unsigned seed, uint32_t nops)
{
    struct prop p = {0};
    uint32_t op, i;

    p.seed = seed;
    p.rng = seed;
    p.lim.max_batch_rows = prop_range(&p, 0, 3) ? prop_range(&p, 1, 8) : prop_range(&p, 1, 64);
    p.lim.max_batch_bytes = prop_range(&p, 1, 300);
    p.lim.max_delay_us = prop_range(&p, 0, 4) ? prop_range(&p, 0, 500) : 0;
    p.lim.max_inflight = prop_range(&p, 1, 4);
    p.lim.max_queue_rows = prop_range(&p, 1, 80);
    p.b = ig_batcher_new(&p.lim);
    PCHECK(&p, p.b != NULL);
    p.next_id = 1;
    p.now = prop_range(&p, 0, 1000000);
    p.q = ig_xcalloc(p.lim.max_queue_rows, sizeof(*p.q));
    p.infl = ig_xcalloc(p.lim.max_inflight, sizeof(*p.infl));

    for (op = 0; op < nops; op++) {
        uint32_t r = prop_range(&p, 0, 99);

        if (r < 40)
            prop_enqueue(&p);
        else if (r < 55)
            p.now += prop_range(&p, 0, (uint32_t)p.lim.max_delay_us + 1);
        else if (r < 75)
            prop_poll(&p);
        else if (r < 90)
            prop_done(&p);
        else if (r < 93)
            prop_cancel(&p);
        else if (r < 95 && p.nq > 0) /* a request queued, hoisted (its client's first gone) */
            prop_hoist(&p, p.q[prop_range(&p, 0, p.nq - 1)].req);
        else
            ig_batcher_set_drain(p.b, (p.drain = !p.drain));
        prop_check_counts(&p);
    }

    /* Drain everything: every row comes out exactly once or was cancelled. */
    ig_batcher_set_drain(p.b, (p.drain = 1));
    while (p.nq > 0 || p.ninfl > 0) {
        while (p.ninfl > 0)
            prop_done(&p);
        prop_poll(&p);
        prop_check_counts(&p);
    }
    PCHECK(&p, ig_batcher_next(p.b, p.now) == NULL);
    PCHECK(&p, p.rows_out + p.rows_cancelled == p.rows_in);
    for (size_t ri = 0; ri < p.nreqs; ri++) {
        for (i = 0; i < p.reqs[ri]->rs->nrows; i++)
            PCHECK(&p, p.reqs[ri]->state[i] == 1 || p.reqs[ri]->state[i] == 2);
        rs_free(p.reqs[ri]->rs);
        free(p.reqs[ri]->state);
        free(p.reqs[ri]);
    }
    /* The run must have exercised something. */
    PCHECK(&p, p.batches > 0 && p.rows_out > 0);
    total_hoisted += p.hoisted;
    ig_batcher_free(p.b);
    free(p.reqs);
    free(p.q);
    free(p.infl);
}

static void test_property_random(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 200; seed++)
        prop_run(seed, 5000);
    assert_true(total_hoisted > 1000); /* the runs hoisted requests */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_zero_limits),
        cmocka_unit_test(test_flush_by_rows),
        cmocka_unit_test(test_flush_by_bytes),
        cmocka_unit_test(test_flush_by_delay),
        cmocka_unit_test(test_delay_zero),
        cmocka_unit_test(test_owners_share_batches),
        cmocka_unit_test(test_max_batch_segs),
        cmocka_unit_test(test_group_rows),
        cmocka_unit_test(test_big_request_takes_turns),
        cmocka_unit_test(test_hoist),
        cmocka_unit_test(test_hoist_cap),
        cmocka_unit_test(test_one_owner_2500_rows),
        cmocka_unit_test(test_max_inflight),
        cmocka_unit_test(test_ready_and_head_owner),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_entry),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_next_deadline),
        cmocka_unit_test(test_enqueue_sized),
        cmocka_unit_test(test_free_with_batches_in_flight),
        cmocka_unit_test(test_property_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

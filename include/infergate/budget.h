/*
 * budget.h - byte budgets: what the gateway holds for clients, charged when
 * it is really held, against a cap.
 *
 * Budgets nest: a connection's share has the server-wide budget as its
 * parent, so a charge to the share is also a charge to the server, and it
 * succeeds only when every level has room (all or nothing). Charges and
 * releases are lock-free (C11 atomics), so a worker thread that decodes a
 * body can charge the features it grows while the loop thread charges
 * headers and bodies of other requests.
 *
 * A budget is reference-counted: whatever holds a charge against it also
 * holds a reference (ig_budget_hold does both), so a connection's share
 * outlives the connection while a request the gateway still holds has bytes
 * charged to it. A child holds a reference on its parent.
 *
 * What is charged (docs/limits.md): request header blocks as decoded,
 * request bodies as received, decoded rows and feature arrays, response
 * bytes waiting for the client (HTTP/2 flow control, a socket that does not
 * drain) and input read from a socket but not yet processed.
 */
#ifndef INFERGATE_BUDGET_H
#define INFERGATE_BUDGET_H

#include <stdatomic.h>
#include <stdint.h>

struct ig_budget {
    _Atomic uint64_t held;    /* bytes charged now */
    _Atomic uint64_t refused; /* charges refused so far (metrics) */
    _Atomic uint32_t refs;
    uint64_t cap;             /* charges that would take held past cap fail */
    struct ig_budget *parent; /* NULL: top level; referenced */
};

/* A new budget of <cap> bytes inside <parent> (may be NULL; referenced),
 * with one reference for the caller. Aborts on OOM (fixed bookkeeping). */
struct ig_budget *ig_budget_new(uint64_t cap, struct ig_budget *parent);
struct ig_budget *ig_budget_ref(struct ig_budget *b);
/* Drop a reference; the last one frees <b> (which must hold nothing) and
 * drops its reference on the parent. NULL is a no-op. */
void ig_budget_unref(struct ig_budget *b);

/* Charge <n> bytes to <b> and every parent: 0, or IG_ERR_FULL when some
 * level would go past its cap (nothing is charged then, and that level's
 * refused count grows). n == 0 always succeeds. */
int ig_budget_charge(struct ig_budget *b, uint64_t n);
/* Give back <n> bytes charged earlier to <b> (and its parents). */
void ig_budget_release(struct ig_budget *b, uint64_t n);

uint64_t ig_budget_held(const struct ig_budget *b);
uint64_t ig_budget_refused(const struct ig_budget *b);

/*
 * A hold: the bytes one object (a request's header block, its body, a
 * rowset's features, a response) has charged, and against which budget.
 * Zero-initialised is empty. ig_budget_hold_set(h, b, n) makes the hold
 * <n> bytes against <b> (NULL: no accounting, always 0): growth is charged (IG_ERR_FULL leaves the hold as
 * it was), shrinking releases; the first charge takes a reference on <b>.
 * A hold is bound to one budget until ig_budget_hold_clear(), which
 * releases everything and drops the reference. Not thread-safe per hold
 * (one owner at a time); the budgets themselves are.
 */
struct ig_budget_hold {
    struct ig_budget *b;
    uint64_t n;
};

int ig_budget_hold_set(struct ig_budget_hold *h, struct ig_budget *b, uint64_t n);
void ig_budget_hold_clear(struct ig_budget_hold *h);

#endif /* INFERGATE_BUDGET_H */

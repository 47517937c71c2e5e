/*
 * budget.c - nested byte budgets with lock-free charges (see budget.h).
 */
#include <stdlib.h>

#include "infergate/budget.h"
#include "infergate/common.h"

struct ig_budget *ig_budget_new(uint64_t cap, struct ig_budget *parent)
{
    struct ig_budget *b = ig_xcalloc(1, sizeof(*b));

    atomic_init(&b->held, 0);
    atomic_init(&b->refused, 0);
    atomic_init(&b->refs, 1);
    b->cap = cap;
    b->parent = parent ? ig_budget_ref(parent) : NULL;
    return b;
}

struct ig_budget *ig_budget_ref(struct ig_budget *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void ig_budget_unref(struct ig_budget *b)
{
    struct ig_budget *parent;

    if (b == NULL || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    parent = b->parent;
    free(b);
    ig_budget_unref(parent);
}

/* Charge one level: 0, or -1 when it would pass the cap. */
static int budget_take(struct ig_budget *b, uint64_t n)
{
    uint64_t cur = atomic_load_explicit(&b->held, memory_order_relaxed);

    do {
        if (n > b->cap || cur > b->cap - n) {
            atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
            return -1;
        }
    } while (!atomic_compare_exchange_weak_explicit(&b->held, &cur, cur + n,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 0;
}

int ig_budget_charge(struct ig_budget *b, uint64_t n)
{
    struct ig_budget *l;

    if (n == 0)
        return 0;
    for (l = b; l != NULL; l = l->parent) {
        if (budget_take(l, n) < 0) {
            /* Undo the levels below the one that refused. */
            for (struct ig_budget *u = b; u != l; u = u->parent)
                atomic_fetch_sub_explicit(&u->held, n, memory_order_relaxed);
            return IG_ERR_FULL;
        }
    }
    return 0;
}

void ig_budget_release(struct ig_budget *b, uint64_t n)
{
    if (n == 0)
        return;
    for (; b != NULL; b = b->parent)
        atomic_fetch_sub_explicit(&b->held, n, memory_order_relaxed);
}

uint64_t ig_budget_held(const struct ig_budget *b)
{
    return atomic_load_explicit(&b->held, memory_order_relaxed);
}

uint64_t ig_budget_refused(const struct ig_budget *b)
{
    return atomic_load_explicit(&b->refused, memory_order_relaxed);
}

int ig_budget_hold_set(struct ig_budget_hold *h, struct ig_budget *b, uint64_t n)
{
    if (h->b == NULL) {
        if (n == 0 || b == NULL)
            return 0;
        if (ig_budget_charge(b, n) < 0)
            return IG_ERR_FULL;
        h->b = ig_budget_ref(b);
        h->n = n;
        return 0;
    }
    if (n > h->n) {
        if (ig_budget_charge(h->b, n - h->n) < 0)
            return IG_ERR_FULL;
    } else {
        ig_budget_release(h->b, h->n - n);
    }
    h->n = n;
    return 0;
}

void ig_budget_hold_clear(struct ig_budget_hold *h)
{
    if (h->b == NULL)
        return;
    ig_budget_release(h->b, h->n);
    ig_budget_unref(h->b);
    h->b = NULL;
    h->n = 0;
}

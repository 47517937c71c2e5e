/* test_budget.c - nested byte budgets: all-or-nothing charges, holds,
 * references, and charges racing from several threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "infergate/budget.h"
#include "infergate/common.h"

static void test_nested_all_or_nothing(void **state)
{
    struct ig_budget *srv = ig_budget_new(100, NULL);
    struct ig_budget *a = ig_budget_new(60, srv);
    struct ig_budget *b = ig_budget_new(60, srv);

    (void)state;
    assert_int_equal(ig_budget_charge(a, 60), 0);
    assert_int_equal(ig_budget_charge(a, 1), IG_ERR_FULL); /* the share refuses */
    assert_int_equal(ig_budget_held(srv), 60);
    assert_int_equal(ig_budget_charge(b, 41), IG_ERR_FULL); /* the server refuses */
    assert_int_equal(ig_budget_held(b), 0);                  /* nothing left charged */
    assert_int_equal(ig_budget_held(srv), 60);
    assert_int_equal(ig_budget_refused(srv), 1);
    assert_int_equal(ig_budget_refused(a), 1);
    assert_int_equal(ig_budget_charge(b, 40), 0);
    assert_int_equal(ig_budget_held(srv), 100);
    assert_int_equal(ig_budget_charge(b, UINT64_MAX), IG_ERR_FULL); /* no overflow */
    ig_budget_release(a, 60);
    ig_budget_release(b, 40);
    assert_int_equal(ig_budget_held(srv), 0);
    assert_int_equal(ig_budget_charge(a, 0), 0);
    ig_budget_unref(a);
    ig_budget_unref(b);
    ig_budget_unref(srv);
}

static void test_hold(void **state)
{
    struct ig_budget *srv = ig_budget_new(1000, NULL);
    struct ig_budget *conn = ig_budget_new(500, srv);
    struct ig_budget_hold h = {0};

    (void)state;
    assert_int_equal(ig_budget_hold_set(&h, conn, 0), 0);
    assert_null(h.b);
    assert_int_equal(ig_budget_hold_set(&h, conn, 100), 0);
    assert_int_equal(ig_budget_hold_set(&h, conn, 400), 0);
    assert_int_equal(ig_budget_hold_set(&h, conn, 501), IG_ERR_FULL);
    assert_int_equal(h.n, 400);
    assert_int_equal(ig_budget_held(srv), 400);
    assert_int_equal(ig_budget_hold_set(&h, conn, 50), 0);
    assert_int_equal(ig_budget_held(conn), 50);
    /* The connection goes away while the hold still charges its share. */
    ig_budget_unref(conn);
    assert_int_equal(ig_budget_held(srv), 50);
    ig_budget_hold_clear(&h);
    ig_budget_hold_clear(&h); /* idempotent */
    assert_int_equal(ig_budget_held(srv), 0);
    ig_budget_unref(srv);
}

struct racer {
    struct ig_budget *b;
    uint64_t ok;
};

static void *race(void *arg)
{
    struct racer *r = arg;

    for (int i = 0; i < 200000; i++) {
        if (ig_budget_charge(r->b, 7) == 0) {
            r->ok++;
            if (i % 3)
                ig_budget_release(r->b, 7);
        }
    }
    return NULL;
}

static void test_threads_never_pass_cap(void **state)
{
    struct ig_budget *srv = ig_budget_new(7 * 1000, NULL);
    struct ig_budget *shares[4];
    struct racer r[4];
    pthread_t t[4];
    uint64_t kept = 0;

    (void)state;
    for (int i = 0; i < 4; i++) {
        shares[i] = ig_budget_new(7 * 400, srv);
        r[i].b = shares[i];
        r[i].ok = 0;
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_true(ig_budget_held(shares[i]) <= 7 * 400);
        kept += ig_budget_held(shares[i]);
    }
    /* Every kept charge is accounted for exactly once at the top. */
    assert_int_equal(ig_budget_held(srv), kept);
    assert_true(kept <= 7 * 1000);
    assert_int_equal(kept % 7, 0);
    for (int i = 0; i < 4; i++) {
        ig_budget_release(shares[i], ig_budget_held(shares[i]));
        ig_budget_unref(shares[i]);
    }
    assert_int_equal(ig_budget_held(srv), 0);
    ig_budget_unref(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_all_or_nothing),
        cmocka_unit_test(test_hold),
        cmocka_unit_test(test_threads_never_pass_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_igload_hist.c - igload's latency histogram and answer scanner
 * (load/igload/hist.c, check.c, compiled in here: they are not part of
 * the library). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "../../load/igload/check.c"
#include "../../load/igload/hist.c"

/* Every value maps into a bucket that holds it, buckets are contiguous,
 * and no bucket is wider than 1/128 of its low end. */
static void test_hist_buckets(void **state)
{
    uint64_t prev_hi = 0;

    (void)state;
    for (unsigned i = 0; i <= igl_hist_index(IGL_HIST_MAX_US); i++) {
        uint64_t lo, hi;
        igl_hist_range(i, &lo, &hi);
        assert_true(lo <= hi);
        if (i > 0)
            assert_int_equal(lo, prev_hi + 1);
        assert_true((double)(hi - lo + 1) <= (double)lo / 128.0 + 1.0);
        assert_int_equal(igl_hist_index(lo), i);
        assert_int_equal(igl_hist_index(hi), i);
        prev_hi = hi;
    }
    assert_true(igl_hist_index(IGL_HIST_MAX_US) < IGL_HIST_BUCKETS);
    assert_int_equal(igl_hist_index(UINT64_MAX), igl_hist_index(IGL_HIST_MAX_US));
}

/* Percentiles of 1..100000 us within 0.5 %; max and mean exact. */
static void test_hist_percentiles(void **state)
{
    static struct igl_hist h;
    const double ps[] = {1, 10, 50, 90, 99, 99.9};

    (void)state;
    igl_hist_init(&h);
    assert_true(igl_hist_pct(&h, 50) == 0.0);
    for (uint64_t v = 1; v <= 100000; v++)
        igl_hist_add(&h, v);
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double want = ps[i] * 1000.0, got = igl_hist_pct(&h, ps[i]);
        assert_true(fabs(got - want) <= want * 0.005 + 1.0);
    }
    assert_true(igl_hist_pct(&h, 100) == 100000.0);
    assert_int_equal(h.max_us, 100000);
    assert_true(fabs(igl_hist_mean(&h) - 50000.5) < 1e-9);
    /* exact below 256 us */
    igl_hist_init(&h);
    igl_hist_add(&h, 7);
    assert_true(igl_hist_pct(&h, 50) == 7.0);
}

static void test_scan_numbers(void **state)
{
    double v[8];
    const char *json = "{\"predictions\":[{\"closest_cluster\":3.0,\"distance_to_cluster\":1.25},"
                       "{\"closest_cluster\":-0.5e2,\"x1\":NaN,\"y\":Infinity,\"z\":.5}]}";

    (void)state;
    /* keys are skipped; bare words (NaN, Infinity) are numbers that
     * match nothing: a model never writes them */
    assert_int_equal(igl_scan_numbers(json, strlen(json), v, 8), 6);
    assert_true(v[0] == 3.0 && v[1] == 1.25 && v[2] == -50.0 && v[5] == 0.5);
    assert_true(isnan(v[3]) && isnan(v[4]));
    assert_int_equal(igl_scan_numbers("3.0,1.25\n-1,2e-3\n", 17, v, 8), 4);
    assert_true(v[3] == 2e-3);
    assert_int_equal(igl_scan_numbers("abc - . -x", 10, v, 8), 2);
    assert_true(isnan(v[0]) && isnan(v[1]));
    assert_int_equal(igl_scan_numbers("2.0abc,1", 8, v, 8), 2);
    assert_true(isnan(v[0]) && v[1] == 1.0);
    assert_int_equal(igl_scan_numbers("{\"k\\\"1\":2}", 10, v, 8), 1);
    assert_true(v[0] == 2.0);
    assert_false(igl_num_close(INFINITY, 1e308));
    assert_false(igl_num_close(1e308, INFINITY));
    assert_false(igl_num_close(NAN, NAN));
    assert_int_equal(igl_scan_numbers("1,2,3", 5, v, 1), 3);
    /* a number cut by the span's end */
    assert_int_equal(igl_scan_numbers("12345", 3, v, 8), 1);
    assert_true(v[0] == 123.0);
    assert_true(igl_num_close(1.0, 1.0 + 1e-7));
    assert_false(igl_num_close(1.0, 1.0 + 1e-5));
    assert_true(igl_num_close(0.0, 1e-13));
    assert_false(igl_num_close(NAN, NAN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_hist_percentiles),
        cmocka_unit_test(test_scan_numbers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

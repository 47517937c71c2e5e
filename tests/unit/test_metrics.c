/* test_metrics.c - histogram buckets and the exact Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/metrics.h"

static void test_render(void **state)
{
    static const double bounds[] = {1, 10, 100};
    struct ig_hist h;
    struct ig_buf out;

    (void)state;
    ig_hist_init(&h, bounds, 3);
    ig_hist_observe(&h, 1);   /* le=1 */
    ig_hist_observe(&h, 5);   /* le=10 */
    ig_hist_observe(&h, 10);  /* le=10 */
    ig_hist_observe(&h, 500); /* +Inf */
    ig_buf_init(&out, 4096);
    assert_int_equal(ig_metrics_header(&out, "x_rows", "histogram", "Rows."), 0);
    assert_int_equal(ig_metrics_hist(&out, "x_rows", "endpoint=\"demo\"", &h), 0);
    assert_int_equal(ig_metrics_sample(&out, "x_total", "", 42), 0);
    assert_int_equal(ig_metrics_sample(&out, "x_ratio", "a=\"b\"", 0.25), 0);
    assert_string_equal(out.data, "# HELP x_rows Rows.\n"
                                  "# TYPE x_rows histogram\n"
                                  "x_rows_bucket{endpoint=\"demo\",le=\"1.0\"} 1\n"
                                  "x_rows_bucket{endpoint=\"demo\",le=\"10.0\"} 3\n"
                                  "x_rows_bucket{endpoint=\"demo\",le=\"100.0\"} 3\n"
                                  "x_rows_bucket{endpoint=\"demo\",le=\"+Inf\"} 4\n"
                                  "x_rows_sum{endpoint=\"demo\"} 516.0\n"
                                  "x_rows_count{endpoint=\"demo\"} 4\n"
                                  "x_total 42\n"
                                  "x_ratio{a=\"b\"} 0.25\n");
    ig_buf_clear(&out);
}

static void test_unlabelled_hist_and_cap(void **state)
{
    static const double bounds[] = {0.5};
    struct ig_hist h;
    struct ig_buf out;

    (void)state;
    ig_hist_init(&h, bounds, 1);
    ig_hist_observe(&h, 0.25);
    ig_buf_init(&out, 4096);
    assert_int_equal(ig_metrics_hist(&out, "t", "", &h), 0);
    assert_string_equal(out.data, "t_bucket{le=\"0.5\"} 1\nt_bucket{le=\"+Inf\"} 1\n"
                                  "t_sum 0.25\nt_count 1\n");
    ig_buf_clear(&out);
    ig_buf_init(&out, 10);
    assert_int_equal(ig_metrics_hist(&out, "t", "", &h), IG_ERR_TOOBIG);
    ig_buf_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_unlabelled_hist_and_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_metrics.c - histogram buckets and the exact Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The fast path (stack line) and the printf path (names and labels over
 * 1 KiB) write the same text; five bounds arrays cycle the 4-entry cache of
 * formatted bounds without mixing them up. */
static void test_long_labels_and_bounds_cache(void **state)
{
    static const double b[5][2] = {{1, 2}, {0.1, 0.2}, {10, 20}, {1e-5, 1e20}, {3, 4}};
    static char labels[2100];
    struct ig_hist h;
    struct ig_buf out;
    char want[512];

    (void)state;
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 5; k++) {
            ig_hist_init(&h, b[k], 2);
            ig_hist_observe(&h, b[k][1]);
            ig_buf_init(&out, 4096);
            assert_int_equal(ig_metrics_hist(&out, "m", "e=\"x\"", &h), 0);
            {
                char b0[32], b1[32], sum[32];

                ig_fmt_double(b0, b[k][0]);
                ig_fmt_double(b1, b[k][1]);
                ig_fmt_double(sum, b[k][1]);
                snprintf(want, sizeof(want),
                         "m_bucket{e=\"x\",le=\"%s\"} 0\nm_bucket{e=\"x\",le=\"%s\"} 1\n"
                         "m_bucket{e=\"x\",le=\"+Inf\"} 1\nm_sum{e=\"x\"} %s\nm_count{e=\"x\"} 1\n",
                         b0, b1, sum);
            }
            assert_string_equal(out.data, want);
            ig_buf_clear(&out);
        }
    assert_string_equal(want + strlen("m_bucket{e=\"x\",le=\""), "3.0\"} 0\n"
                        "m_bucket{e=\"x\",le=\"4.0\"} 1\nm_bucket{e=\"x\",le=\"+Inf\"} 1\n"
                        "m_sum{e=\"x\"} 4.0\nm_count{e=\"x\"} 1\n");

    /* labels of 2 KiB: the printf path, same shape */
    memset(labels, 'a', sizeof(labels) - 1);
    memcpy(labels, "e=\"", 3);
    labels[sizeof(labels) - 2] = '"';
    ig_hist_init(&h, b[0], 2);
    ig_hist_observe(&h, 1.5);
    ig_buf_init(&out, 1 << 20);
    assert_int_equal(ig_metrics_hist(&out, "m", labels, &h), 0);
    assert_int_equal(ig_metrics_sample(&out, "s", labels, 7), 0);
    {
        char *expect = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&expect, &n);

        fprintf(f, "m_bucket{%s,le=\"1.0\"} 0\nm_bucket{%s,le=\"2.0\"} 1\n"
                   "m_bucket{%s,le=\"+Inf\"} 1\nm_sum{%s} 1.5\nm_count{%s} 1\ns{%s} 7\n",
                labels, labels, labels, labels, labels, labels);
        fclose(f);
        assert_string_equal(out.data, expect);
        free(expect);
    }
    ig_buf_clear(&out);
}

/* Sample values: integers below 2^53 as integers, others exactly. */
static void test_sample_values(void **state)
{
    struct ig_buf out;

    (void)state;
    ig_buf_init(&out, 4096);
    assert_int_equal(ig_metrics_sample(&out, "a", "", 0), 0);
    assert_int_equal(ig_metrics_sample(&out, "a", "", 18446744073709551615.0), 0);
    assert_int_equal(ig_metrics_sample(&out, "a", "", 9007199254740991.0), 0);
    assert_int_equal(ig_metrics_sample(&out, "a", "", -1), 0);
    assert_int_equal(ig_metrics_sample(&out, "a", "", 1e-7), 0);
    assert_string_equal(out.data, "a 0\na 1.8446744073709552e+19\na 9007199254740991\na -1.0\n"
                                  "a 1e-07\n");
    ig_buf_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_unlabelled_hist_and_cap),
        cmocka_unit_test(test_long_labels_and_bounds_cache),
        cmocka_unit_test(test_sample_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_codec_libsvm.c - text/libsvm decoding: 0- and 1-based indices,
 * features bit for bit, row slices (CRLF, spaces, tabs), every error with
 * its exact message and row, max_rows, the budget, and the amplification
 * case "0 4000000000:1".
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/budget.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/convert.h"

#include "codec_test.h"

/* Decode <body> (strlen) with index base <base>; require success. */
static void svm_ok(const char *body, uint8_t base, uint32_t dim, struct ig_rowset *rs)
{
    struct ig_codec_error err = {0, ""};
    int rv;

    memset(rs, 0, sizeof(*rs));
    rs->index_base = base;
    rv = ig_codec_decode(IG_FMT_LIBSVM, body, strlen(body), dim, 1000, rs, &err);
    if (rv != 0)
        print_error("decode failed: %s\n", err.msg);
    assert_int_equal(rv, 0);
    assert_ptr_equal(rs->body, body);
    assert_int_equal(rs->dim, dim);
    assert_int_equal(rs->index_base, base);
}

/* Decode with base <base>; require IG_ERR_INVALID, the exact message and
 * row, and an empty rowset that still says its base. */
static void svm_fail_b(const char *body, uint8_t base, uint32_t dim, uint32_t row,
                       const char *msg)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err = {99, "unset"};

    rs.index_base = base;
    assert_int_equal(ig_codec_decode(IG_FMT_LIBSVM, body, strlen(body), dim, 1000, &rs, &err),
                     IG_ERR_INVALID);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.row, row);
    assert_null(rs.rows);
    assert_null(rs.features);
    assert_int_equal(rs.nrows, 0);
    assert_int_equal(rs.index_base, base);
    assert_int_equal(rs.hold.n, 0);
}

static void svm_fail(const char *body, uint32_t dim, uint32_t row, const char *msg)
{
    svm_fail_b(body, 0, dim, row, msg);
    /* with no features to parse, the same syntax error */
    if (dim > 0 && strstr(msg, "the model takes") == NULL)
        svm_fail_b(body, 0, 0, row, msg);
}

static void expect_row(const struct ig_rowset *rs, uint32_t i, uint32_t off, uint32_t len)
{
    assert_true(i < rs->nrows);
    assert_int_equal(rs->rows[i].off, off);
    assert_int_equal(rs->rows[i].len, len);
}

/* Bit for bit, so that -0.0 and 0.0 differ. */
static void expect_feats(const struct ig_rowset *rs, const double *want, size_t n)
{
    assert_int_equal((size_t)rs->nrows * rs->dim, n);
    for (size_t i = 0; i < n; i++)
        if (memcmp(&rs->features[i], &want[i], sizeof(double)) != 0)
            fail_msg("feature %zu: got %.17g, want %.17g", i, rs->features[i], want[i]);
}

/* ---- rows and features ---- */

static void test_zero_based(void **state)
{
    struct ig_rowset rs;
    const double want[] = {1.5, 0, 0, 2, 0, -1, 0, 0, 0, 0, 0, 0};

    (void)state;
    svm_ok("1 0:1.5 3:2\n0 1:-1\n7\n", 0, 4, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_row(&rs, 0, 0, 11);
    expect_row(&rs, 1, 12, 6);
    expect_row(&rs, 2, 19, 1);
    expect_feats(&rs, want, 12);
    ig_rowset_clear(&rs);
}

static void test_one_based(void **state)
{
    struct ig_rowset rs;
    const double want[] = {1.5, 0, 0, 2, 0, -1, 0, 0};

    (void)state;
    svm_ok("1 1:1.5 4:2\n0 2:-1", 1, 4, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 11);
    expect_row(&rs, 1, 12, 6);
    expect_feats(&rs, want, 8);
    ig_rowset_clear(&rs);
    /* the same text read 0-based: index 4 is out of range for 4 features */
    svm_fail_b("1 1:1.5 4:2\n", 0, 4, 1,
               "Row 1: feature index 4 is out of range: the model takes 4 features (indices 0 "
               "to 3).");
    svm_fail_b("1 1:1.5 5:2\n", 1, 4, 1,
               "Row 1: feature index 5 is out of range: the model takes 4 features (indices 1 "
               "to 4).");
    svm_fail_b("1 0:1.5\n", 1, 4, 1,
               "Row 1: feature index 0 is out of range: indices start at 1.");
    svm_fail_b("1 0:1.5\n", 1, 0, 1,
               "Row 1: feature index 0 is out of range: indices start at 1.");
}

static void test_values_exact(void **state)
{
    const char *texts[] = {"0.1", "-0.0", "1e300", "2.2250738585072014e-308", "4.9e-324",
                           "123456789012345678901234567890", "+7", ".5", "5.", "1E-3",
                           "0.30000000000000004", "9007199254740993"};
    size_t n = sizeof(texts) / sizeof(texts[0]);
    char body[1024];
    size_t len = 0;
    double want[16] = {0};
    struct ig_rowset rs;

    (void)state;
    len += (size_t)snprintf(body + len, sizeof(body) - len, "-1.5e3");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(body + len, sizeof(body) - len, " %zu:%s", i, texts[i]);
        want[i] = strtod(texts[i], NULL);
    }
    svm_ok(body, 0, 16, &rs);
    expect_feats(&rs, want, 16);
    assert_true(signbit(rs.features[1]));
    ig_rowset_clear(&rs);
}

static void test_label_only_and_spaces(void **state)
{
    struct ig_rowset rs;
    const double want[] = {0, 0, 0, 0, 0, 3};

    (void)state;
    /* a row that is only its label is all zeros; tabs and runs of spaces
     * separate; spaces before and after belong to the row's slice */
    svm_ok("0\n \t-1\t\t 2:3  \t\n", 0, 3, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 1);
    expect_row(&rs, 1, 2, 13);
    expect_feats(&rs, want, 6);
    ig_rowset_clear(&rs);
}

static void test_crlf(void **state)
{
    struct ig_rowset rs;
    const double want[] = {1, 0, 0, 2};

    (void)state;
    svm_ok("1 0:1\r\n2 1:2\r\n", 0, 2, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 5);
    expect_row(&rs, 1, 7, 5);
    expect_feats(&rs, want, 4);
    ig_rowset_clear(&rs);
    /* a CR that ends the body ends the row */
    svm_ok("1 0:1\n2 1:2\r", 0, 2, &rs);
    expect_row(&rs, 1, 6, 5);
    expect_feats(&rs, want, 4);
    ig_rowset_clear(&rs);
    /* a CR elsewhere is part of a token */
    svm_fail("1 0:1\r 1:2\n", 2, 1, "Row 1: the value of '0:1?' is not a number.");
}

static void test_split_only(void **state)
{
    struct ig_rowset rs;

    (void)state;
    svm_ok("1 3:1 9:2\n0 4000000000:1\n", 0, 0, &rs);
    assert_int_equal(rs.nrows, 2);
    assert_null(rs.features);
    expect_row(&rs, 0, 0, 9);
    expect_row(&rs, 1, 10, 14);
    ig_rowset_clear(&rs);
    /* the largest index there is */
    svm_ok("0 4294967295:1", 0, 0, &rs);
    assert_int_equal(rs.nrows, 1);
    ig_rowset_clear(&rs);
    svm_ok("0 4294967295:1", 1, 0, &rs);
    ig_rowset_clear(&rs);
}

static void test_bom(void **state)
{
    struct ig_rowset rs;
    const double want[] = {0, 5};

    (void)state;
    svm_ok("\xef\xbb\xbf" "1 1:5\n", 0, 2, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 3, 5);
    expect_feats(&rs, want, 2);
    ig_rowset_clear(&rs);
}

/* ---- errors ---- */

static void test_err_empty_rows(void **state)
{
    (void)state;
    svm_fail("1 0:1\n\n", 2, 2, "Row 2: empty row.");
    svm_fail("\n1 0:1\n", 2, 1, "Row 1: empty row.");
    svm_fail("1 0:1\n \t \n2\n", 2, 2, "Row 2: empty row.");
    svm_fail("1 0:1\n\r\n", 2, 2, "Row 2: empty row.");
    svm_fail("1 0:1\n  ", 2, 2, "Row 2: empty row.");
    dec_fail_n(IG_FMT_LIBSVM, "", 0, 2, 1000, IG_ERR_INVALID, 0, "Request body is empty.");
    dec_fail_n(IG_FMT_LIBSVM, "\n", 1, 2, 1000, IG_ERR_INVALID, 1, "Row 1: empty row.");
}

static void test_err_label(void **state)
{
    (void)state;
    svm_fail("x 0:1\n", 2, 1, "Row 1: the label 'x' is not a number.");
    svm_fail("1 0:1\nnan 1:1\n", 2, 2, "Row 2: the label 'nan' is not a number.");
    svm_fail("1e999\n", 2, 1, "Row 1: the label '1e999' is not a number.");
    svm_fail("0:1 1:2\n", 2, 1,
             "Row 1: the row starts with '0:1', not a label: a libsvm row is a label (any "
             "number, e.g. 0) then index:value pairs.");
    svm_fail("1,2 0:1\n", 2, 1, "Row 1: the label '1,2' is not a number.");
}

static void test_err_pairs(void **state)
{
    (void)state;
    svm_fail("1 0:1 7\n", 2, 1, "Row 1: '7' is not an index:value pair.");
    svm_fail("1 a:1\n", 2, 1, "Row 1: the feature index of 'a:1' is not a non-negative integer.");
    svm_fail("1 :1\n", 2, 1, "Row 1: the feature index of ':1' is not a non-negative integer.");
    svm_fail("1 -1:1\n", 2, 1,
             "Row 1: the feature index of '-1:1' is not a non-negative integer.");
    svm_fail("1 +1:1\n", 2, 1,
             "Row 1: the feature index of '+1:1' is not a non-negative integer.");
    svm_fail("1 1.0:1\n", 2, 1,
             "Row 1: the feature index of '1.0:1' is not a non-negative integer.");
    svm_fail("1 qid:3 1:1\n", 2, 1,
             "Row 1: the feature index of 'qid:3' is not a non-negative integer.");
    svm_fail("1 4294967296:1\n", 2, 1,
             "Row 1: the feature index of '4294967296:1' is larger than 4294967295.");
    svm_fail("1 99999999999999999999999:1\n", 2, 1,
             "Row 1: the feature index of '99999999999999999999999:1' is larger than "
             "4294967295.");
    svm_fail("1 99999999999x:1\n", 2, 1,
             "Row 1: the feature index of '99999999999x:1' is not a non-negative integer.");
    svm_fail("1 0:\n", 2, 1, "Row 1: the value of '0:' is not a number.");
    svm_fail("1 0:x\n", 2, 1, "Row 1: the value of '0:x' is not a number.");
    svm_fail("1 0:1:2\n", 2, 1, "Row 1: the value of '0:1:2' is not a number.");
    svm_fail("1 0:1e999\n", 2, 1, "Row 1: the value of '0:1e999' is not a number.");
    svm_fail("1 0:inf\n", 2, 1, "Row 1: the value of '0:inf' is not a number.");
    svm_fail("1 0:0x10\n", 2, 1, "Row 1: the value of '0:0x10' is not a number.");
    svm_fail("1 0:1,\n", 2, 1, "Row 1: the value of '0:1,' is not a number.");
}

static void test_err_order(void **state)
{
    (void)state;
    svm_fail("1 0:1\n1 5:1 3:1\n", 9, 2,
             "Row 2: feature indices are not strictly increasing (3 after 5).");
    svm_fail("1 2:1 2:1\n", 9, 1,
             "Row 1: feature indices are not strictly increasing (2 after 2).");
    /* out of range is found pair by pair, in order */
    svm_fail_b("1 57:1 3:1\n", 0, 50, 1,
               "Row 1: feature index 57 is out of range: the model takes 50 features (indices "
               "0 to 49).");
    svm_fail_b("1 57:1 3:1\n", 0, 0, 1,
               "Row 1: feature indices are not strictly increasing (3 after 57).");
    svm_fail_b("1 1:1 50:1\n", 0, 50, 1,
               "Row 1: feature index 50 is out of range: the model takes 50 features (indices "
               "0 to 49).");
}

static void test_err_nul(void **state)
{
    (void)state;
    dec_fail_n(IG_FMT_LIBSVM, "1 0:1\n1 0\0:1\n", 13, 2, 1000, IG_ERR_INVALID, 2,
               "Row 2: NUL byte in the row.");
    dec_fail_n(IG_FMT_LIBSVM, "1 0:1\n1 0\0:1\n", 13, 0, 1000, IG_ERR_INVALID, 2,
               "Row 2: NUL byte in the row.");
}

static void test_err_long_token(void **state)
{
    char body[200];

    (void)state;
    memset(body, '7', sizeof(body));
    memcpy(body, "1 ", 2);
    body[sizeof(body) - 1] = '\0';
    svm_fail(body, 2, 1,
             "Row 1: '7777777777777777777777777777777777777777...' is not an index:value pair.");
    body[100] = ':';
    body[101] = 'x';
    svm_fail(body, 2, 1,
             "Row 1: the feature index of '7777777777777777777777777777777777777777...' is "
             "larger than 4294967295.");
    /* the message is printable: other bytes become '?' */
    svm_fail("\xff\x01 0:1", 2, 1, "Row 1: the label '?" "?' is not a number.");
    dec_fail_n(IG_FMT_LIBSVM, "\x1f\x8b\x08", 3, 2, 1000, IG_ERR_INVALID, 0, ig_codec_msg_gzip);
}

/* "0 4000000000:1": a tiny body naming a huge column allocates nothing
 * for it. dim > 0 bounds the row (an error here); dim 0 allocates only
 * the rows array. */
static void test_amplification(void **state)
{
    struct ig_budget *b = ig_budget_new(1u << 16, NULL);
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_LIBSVM, "0 4000000000:1", 14, 50, 1000, &rs, &err),
                     IG_ERR_INVALID);
    assert_string_equal(err.msg, "Row 1: feature index 4000000000 is out of range: the model "
                                 "takes 50 features (indices 0 to 49).");
    assert_int_equal(ig_budget_held(b), 0);
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_LIBSVM, "0 4000000000:1", 14, 0, 1000, &rs, &err), 0);
    assert_int_equal(rs.nrows, 1);
    assert_null(rs.features);
    /* the rows array only: the body has room for 8 rows */
    assert_true(ig_budget_held(b) <= 8 * sizeof(struct ig_row));
    ig_rowset_clear(&rs);
    assert_int_equal(ig_budget_held(b), 0);
    ig_budget_unref(b);
}

static void test_max_rows(void **state)
{
    struct ig_rowset rs;

    (void)state;
    dec_fail_n(IG_FMT_LIBSVM, "1\n2\n3\n", 6, 1, 2, IG_ERR_TOOBIG, 0,
               "Request has more than 2 rows.");
    dec_fail_n(IG_FMT_LIBSVM, "1\n2\n3", 5, 0, 2, IG_ERR_TOOBIG, 0,
               "Request has more than 2 rows.");
    /* exactly max_rows, with the final terminator */
    memset(&rs, 0, sizeof(rs));
    assert_int_equal(ig_codec_decode(IG_FMT_LIBSVM, "1\n2\n", 4, 1, 2, &rs, NULL), 0);
    assert_int_equal(rs.nrows, 2);
    ig_rowset_clear(&rs);
}

/* The budget refuses growth: IG_ERR_FULL naming the row, nothing held. */
static void test_budget(void **state)
{
    struct ig_budget *b = ig_budget_new(1000, NULL);
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    /* one row of 200 features: the 7-byte body's 4 rows of room take
     * 4 * (8 + 1600) bytes */
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_LIBSVM, "1 199:1", 7, 200, 1000, &rs, &err),
                     IG_ERR_FULL);
    assert_int_equal(err.row, 1);
    assert_string_equal(err.msg, "Row 1: the decoded features of this request do not fit in "
                                 "the gateway's memory budget; retry later or send fewer rows.");
    assert_null(rs.rows);
    assert_int_equal(ig_budget_held(b), 0);
    /* a body that holds 4 rows takes 4 rows' room: 4 * (8 + 200) bytes */
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_LIBSVM, "1 24:1", 6, 25, 1000, &rs, &err), 0);
    assert_int_equal(ig_budget_held(b), 4 * (8 + 25 * 8));
    assert_true(rs.features[24] == 1.0);
    ig_rowset_clear(&rs);
    assert_int_equal(ig_budget_held(b), 0);
    ig_budget_unref(b);
}

/* ig_libsvm_row on its own: the pairs, 0-based, in order. */
struct pairs {
    uint32_t keys[8];
    double vals[8];
    int n;
};

static int pairs_put(void *arg, uint32_t key, double value)
{
    struct pairs *p = arg;

    if (p->n == 8)
        return IG_ERR_TOOBIG;
    p->keys[p->n] = key;
    p->vals[p->n++] = value;
    return 0;
}

static void test_row_reader(void **state)
{
    struct pairs p = {0};
    struct ig_codec_error err;
    const char *line = "3 1:0.5 7:-2 9:1e3";

    (void)state;
    assert_int_equal(ig_libsvm_row(line, strlen(line), 1, 1, 0, pairs_put, &p, &err), 0);
    assert_int_equal(p.n, 3);
    assert_int_equal(p.keys[0], 0);
    assert_int_equal(p.keys[1], 6);
    assert_int_equal(p.keys[2], 8);
    assert_true(p.vals[0] == 0.5 && p.vals[1] == -2 && p.vals[2] == 1000);
    /* the callback's error stops the row */
    p.n = 8;
    assert_int_equal(ig_libsvm_row(line, strlen(line), 1, 1, 0, pairs_put, &p, &err),
                     IG_ERR_TOOBIG);
}

/* Every prefix of a tricky body: no crash, no read past len (ASan). */
static void test_all_prefixes(void **state)
{
    const char *src = "1 0:1.5\t3:2\r\n\n-1 4294967295:1 2:x\r\n0 1:1e5\r";
    size_t n = strlen(src);

    (void)state;
    for (size_t len = 0; len <= n; len++) {
        for (uint32_t dim = 0; dim < 6; dim += 5) {
            char *copy = malloc(len ? len : 1);
            struct ig_rowset rs = {0};
            struct ig_codec_error err = {0, ""};
            int rv;

            memcpy(copy, src, len);
            rv = ig_codec_decode(IG_FMT_LIBSVM, copy, len, dim, 100, &rs, &err);
            if (rv == 0) {
                assert_true(rs.nrows > 0);
                for (uint32_t i = 0; i < rs.nrows; i++)
                    assert_true((size_t)rs.rows[i].off + rs.rows[i].len <= len);
            } else {
                assert_int_equal(rv, IG_ERR_INVALID);
                assert_true(err.msg[0] != '\0');
                assert_null(rs.rows);
            }
            ig_rowset_clear(&rs);
            free(copy);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_based),
        cmocka_unit_test(test_one_based),
        cmocka_unit_test(test_values_exact),
        cmocka_unit_test(test_label_only_and_spaces),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_split_only),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_err_empty_rows),
        cmocka_unit_test(test_err_label),
        cmocka_unit_test(test_err_pairs),
        cmocka_unit_test(test_err_order),
        cmocka_unit_test(test_err_nul),
        cmocka_unit_test(test_err_long_token),
        cmocka_unit_test(test_amplification),
        cmocka_unit_test(test_max_rows),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_row_reader),
        cmocka_unit_test(test_all_prefixes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

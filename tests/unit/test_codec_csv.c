/*
 * test_codec_csv.c - text/csv decoding: row slices, features, every error
 * with its exact message and row, and the caps.
 */
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

#include "codec_test.h"

/* Decode <body> (strlen) and require success. */
static void csv_ok(const char *body, uint32_t dim, struct ig_rowset *rs)
{
    struct ig_codec_error err = {0, ""};
    int rv = ig_codec_decode(IG_FMT_CSV, body, strlen(body), dim, 1000, rs, &err);

    if (rv != 0)
        print_error("decode failed: %s\n", err.msg);
    assert_int_equal(rv, 0);
    assert_ptr_equal(rs->body, body);
    assert_int_equal(rs->body_len, strlen(body));
    assert_int_equal(rs->dim, dim);
}

static void expect_row(const struct ig_rowset *rs, uint32_t i, uint32_t off, uint32_t len)
{
    assert_true(i < rs->nrows);
    assert_int_equal(rs->rows[i].off, off);
    assert_int_equal(rs->rows[i].len, len);
}

/* Decode <len> bytes of <body>, require <code> and the exact error. */
static void csv_fail_n(const char *body, size_t len, uint32_t dim, uint32_t max_rows, int code,
                       uint32_t row, const char *msg)
{
    dec_fail_n(IG_FMT_CSV, body, len, dim, max_rows, code, row, msg);
}

static void csv_fail(const char *body, uint32_t dim, uint32_t row, const char *msg)
{
    csv_fail_n(body, strlen(body), dim, 1000, IG_ERR_INVALID, row, msg);
}

/* ---- slices ---- */

static void test_lf(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    csv_ok("1,2\n3,4\n", 2, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 3);
    expect_row(&rs, 1, 4, 3);
    assert_true(rs.features[0] == 1.0 && rs.features[1] == 2.0);
    assert_true(rs.features[2] == 3.0 && rs.features[3] == 4.0);
    ig_rowset_clear(&rs);
}

static void test_crlf(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    csv_ok("1,2\r\n3,4\r\n", 2, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 3);
    expect_row(&rs, 1, 5, 3);
    ig_rowset_clear(&rs);
    /* Mixed terminators, and a CR that ends the body. */
    csv_ok("1\n22\r\n333\r", 0, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_row(&rs, 0, 0, 1);
    expect_row(&rs, 1, 2, 2);
    expect_row(&rs, 2, 6, 3);
    ig_rowset_clear(&rs);
}

static void test_no_final_newline(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    csv_ok("1,2\n3,4", 2, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 3);
    expect_row(&rs, 1, 4, 3);
    assert_true(rs.features[3] == 4.0);
    ig_rowset_clear(&rs);
    csv_ok("7", 1, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 0, 1);
    assert_true(rs.features[0] == 7.0);
    ig_rowset_clear(&rs);
}

static void test_quoted_fields(void **state)
{
    struct ig_rowset rs = {0};
    /* row 1: a,"b,c"   row 2: "x<LF>y","say ""hi"""   row 3: last */
    const char *body = "a,\"b,c\"\n\"x\ny\",\"say \"\"hi\"\"\"\r\nlast";

    (void)state;
    csv_ok(body, 0, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_row(&rs, 0, 0, 7);
    expect_row(&rs, 1, 8, 18);
    assert_memory_equal(body + 8, "\"x\ny\",\"say \"\"hi\"\"\"", 18);
    expect_row(&rs, 2, 28, 4);
    assert_null(rs.features);
    ig_rowset_clear(&rs);
}

static void test_quoted_numbers(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    csv_ok("\"1.5\",\" 2 \" ,3\n\"-4\",5,\"6e1\"\n", 3, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 14);
    expect_row(&rs, 1, 15, 12);
    assert_true(rs.features[0] == 1.5);
    assert_true(rs.features[1] == 2.0);
    assert_true(rs.features[2] == 3.0);
    assert_true(rs.features[3] == -4.0);
    assert_true(rs.features[4] == 5.0);
    assert_true(rs.features[5] == 60.0);
    ig_rowset_clear(&rs);
}

static void test_spaces_and_tabs(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    csv_ok(" 1 ,\t2\t, 3\n", 3, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 0, 10);
    assert_true(rs.features[0] == 1.0 && rs.features[1] == 2.0 && rs.features[2] == 3.0);
    ig_rowset_clear(&rs);
}

static void test_feature_values_exact(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    csv_ok("0.1,-2.5e-3,1e308,4.9e-324,-0,123456789012345678,.5,5.,+7,1E2\n", 10, &rs);
    assert_true(rs.features[0] == 0.1);
    assert_true(rs.features[1] == -2.5e-3);
    assert_true(rs.features[2] == 1e308);
    assert_true(rs.features[3] == 4.9e-324);
    assert_true(rs.features[4] == 0.0);
    assert_true(rs.features[5] == 123456789012345678.0);
    assert_true(rs.features[6] == 0.5);
    assert_true(rs.features[7] == 5.0);
    assert_true(rs.features[8] == 7.0);
    assert_true(rs.features[9] == 100.0);
    ig_rowset_clear(&rs);
}

static void test_split_only(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    /* dim 0: any text, empty fields, bare CRs inside a field. */
    csv_ok("abc,,x\ry\n,\n\"\"\n", 0, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_row(&rs, 0, 0, 8);
    expect_row(&rs, 1, 9, 1);
    expect_row(&rs, 2, 11, 2);
    ig_rowset_clear(&rs);
}

static void test_many_rows(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    char *body = malloc(10000 * 16);
    size_t len = 0;

    (void)state;
    for (int i = 0; i < 10000; i++)
        len += (size_t)sprintf(body + len, "%d,%d.5\n", i, -i);
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, len, 2, 10000, &rs, &err), 0);
    assert_int_equal(rs.nrows, 10000);
    for (uint32_t i = 0, off = 0; i < 10000; i++) {
        char line[32];
        int n = sprintf(line, "%u,%d.5", i, -(int)i);

        expect_row(&rs, i, off, (uint32_t)n);
        assert_true(rs.features[2 * i] == (double)i);
        assert_true(rs.features[2 * i + 1] == (i == 0 ? 0.5 : -(double)i - 0.5));
        off += (uint32_t)n + 1;
    }
    ig_rowset_clear(&rs);
    csv_fail_n(body, len, 2, 9999, IG_ERR_TOOBIG, 0, "Request has more than 9999 rows.");
    free(body);
}

/* ---- errors ---- */

static void test_err_unterminated_quote(void **state)
{
    (void)state;
    csv_fail("1,2\n3,\"4\n5,6\n", 0, 2, "Row 2, column 2: unterminated quoted field.");
    csv_fail("1,2\n3,4\n\"", 2, 3, "Row 3, column 1: unterminated quoted field.");
    /* An escaped quote right at the end does not close the field. */
    csv_fail("\"ab\"\"", 0, 1, "Row 1, column 1: unterminated quoted field.");
}

static void test_err_after_closing_quote(void **state)
{
    (void)state;
    csv_fail("\"1\"x,2\n", 0, 1, "Row 1, column 1: characters after closing quote.");
    csv_fail("1,2\n3,\"4\" 5\n", 2, 2, "Row 2, column 2: characters after closing quote.");
    csv_fail("\"1\"\r2\n", 0, 1, "Row 1, column 1: characters after closing quote.");
}

static void test_err_quote_in_unquoted(void **state)
{
    (void)state;
    csv_fail("1,a\"b\n", 0, 1, "Row 1, column 2: quote character in an unquoted field.");
}

static void test_err_feature_count(void **state)
{
    (void)state;
    csv_fail("1,2,3,4,5,6,7,8,9,10\n1,2,3,4,5,6,7,8,9\n", 10, 2,
             "Row 2: expected 10 features, found 9.");
    csv_fail("1,2,3\n1,2,3,4\n", 3, 2, "Row 2: expected 3 features, found more than 3.");
    /* A trailing comma is one more (empty) field. */
    csv_fail("1,2,\n", 2, 1, "Row 1: expected 2 features, found more than 2.");
}

static void test_err_not_a_number(void **state)
{
    (void)state;
    csv_fail("1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,abc\n", 4, 5,
             "Row 5, column 4: 'abc' is not a number.");
    csv_fail("nan,1\n", 2, 1, "Row 1, column 1: 'nan' is not a number.");
    csv_fail("1,inf\n", 2, 1, "Row 1, column 2: 'inf' is not a number.");
    csv_fail("1,-Infinity\n", 2, 1, "Row 1, column 2: '-Infinity' is not a number.");
    csv_fail("1,1e999\n", 2, 1, "Row 1, column 2: '1e999' is not a number.");
    csv_fail("0x10,1\n", 2, 1, "Row 1, column 1: '0x10' is not a number.");
    csv_fail("1 2,1\n", 2, 1, "Row 1, column 1: '1 2' is not a number.");
    csv_fail("1e,1\n", 2, 1, "Row 1, column 1: '1e' is not a number.");
    csv_fail("1,\"x,y\"\n", 2, 1, "Row 1, column 2: 'x,y' is not a number.");
    csv_fail("1,-\n", 2, 1, "Row 1, column 2: '-' is not a number.");
    csv_fail("1,2\r3\n", 2, 1, "Row 1, column 2: '2?3' is not a number.");
    csv_fail("1,\xc3\xa9\n", 2, 1, "Row 1, column 2: '?" "?' is not a number.");
}

static void test_err_long_field_truncated(void **state)
{
    char body[500];

    (void)state;
    memset(body, '9', 200);
    body[0] = 'x';
    body[200] = '\0';
    csv_fail(body, 1, 1,
             "Row 1, column 1: 'x999999999999999999999999999999999999999...' is not a number.");
    /* 400 digits that overflow: quoted, truncated, as any bad number. */
    memset(body, '9', 400);
    body[400] = '\0';
    csv_fail(body, 1, 1,
             "Row 1, column 1: '9999999999999999999999999999999999999999...' is not a number.");
}

/* A number of any length that reads as a finite double is a feature: long
 * fractions, 400 digits, padding zeros, as other tools write them. */
static void test_long_numbers(void **state)
{
    static char body[8000];
    struct ig_rowset rs = {0};
    size_t n = 0;

    (void)state;
    /* 0.000...0001 with 300 zeros, then 200 digits, then 400 digits */
    n += (size_t)sprintf(body + n, "0.");
    memset(body + n, '0', 300);
    n += 300;
    body[n++] = '1';
    body[n++] = ',';
    memset(body + n, '9', 200);
    n += 200;
    body[n++] = ',';
    for (int i = 0; i < 400; i++)
        body[n++] = (char)('1' + i % 9);
    n += (size_t)sprintf(body + n, "e-399\n");
    /* row 2: 6000 zeros of padding either side of a short number */
    memset(body + n, '0', 3000);
    n += 3000;
    n += (size_t)sprintf(body + n, "2.5");
    memset(body + n, '0', 3000);
    n += 3000;
    n += (size_t)sprintf(body + n, ",-1,1\n");
    body[n] = '\0';
    csv_ok(body, 3, &rs);
    assert_int_equal(rs.nrows, 2);
    assert_true(rs.features[0] == 1e-301);
    assert_true(rs.features[1] == 1e200);
    assert_true(rs.features[2] == 1.2345678912345679);
    assert_true(rs.features[3] == 2.5);
    assert_true(rs.features[4] == -1.0);
    ig_rowset_clear(&rs);
}

static void test_err_empty_field(void **state)
{
    (void)state;
    csv_fail("1,,3\n", 3, 1, "Row 1, column 2: empty field.");
    csv_fail("1,2,\"\"\n", 3, 1, "Row 1, column 3: empty field.");
    csv_fail(",1\n", 2, 1, "Row 1, column 1: empty field.");
}

static void test_err_empty_rows(void **state)
{
    (void)state;
    csv_fail("1\n\n2\n", 1, 2, "Row 2: empty row.");
    csv_fail("1\n\n2\n", 0, 2, "Row 2: empty row.");
    csv_fail("1\n2\n\n", 1, 3, "Row 3: empty row.");
    csv_fail("1\r\n\r\n", 0, 2, "Row 2: empty row.");
    csv_fail("\n", 0, 1, "Row 1: empty row.");
    csv_fail("\n1\n", 1, 1, "Row 1: empty row.");
    csv_fail("1\n \t \n", 0, 2, "Row 2: empty row.");
    csv_fail("1\n  ", 0, 2, "Row 2: empty row.");
    csv_fail("1\n\r", 0, 2, "Row 2: empty row.");
    csv_fail_n("", 0, 0, 10, IG_ERR_INVALID, 0, "Request body is empty.");
}

static void test_err_nul(void **state)
{
    (void)state;
    csv_fail_n("1,\0\n", 4, 0, 10, IG_ERR_INVALID, 1, "Row 1, column 2: NUL byte in the field.");
    csv_fail_n("1,2\n2\0,3\n", 9, 2, 10, IG_ERR_INVALID, 2,
               "Row 2, column 1: NUL byte in the field.");
    csv_fail_n("\"a\0\"\n", 5, 0, 10, IG_ERR_INVALID, 1,
               "Row 1, column 1: NUL byte in the field.");
}

static void test_err_huge_line(void **state)
{
    size_t nfields = 1000000, len = 0;
    char *body = malloc(nfields * 4 + 8);
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    uint64_t t0, t1;

    (void)state;
    for (size_t i = 0; i < nfields; i++) {
        /* Field 12 is not a number: reading past field 11 would say so. */
        const char *f = i == 11 ? "abc," : "1,";

        memcpy(body + len, f, strlen(f));
        len += strlen(f);
    }
    body[len - 1] = '\n';
    t0 = ig_now_us();
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, len, 10, 1000, &rs, &err),
                     IG_ERR_INVALID);
    t1 = ig_now_us();
    assert_int_equal(err.row, 1);
    assert_string_equal(err.msg, "Row 1: expected 10 features, found more than 10.");
    assert_true(t1 - t0 < 10000);
    /* Split only, the same line is read to its end. */
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, len, 0, 1000, &rs, &err), 0);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 0, (uint32_t)len - 1);
    ig_rowset_clear(&rs);
    free(body);
}

static void test_max_rows(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    csv_fail_n("1\n2\n3\n", 6, 1, 2, IG_ERR_TOOBIG, 0, "Request has more than 2 rows.");
    csv_fail_n("1\n2\n3", 5, 0, 2, IG_ERR_TOOBIG, 0, "Request has more than 2 rows.");
    csv_fail_n("1\n", 2, 0, 0, IG_ERR_TOOBIG, 0, "Request has more than 0 rows.");
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, "1\n2\n3\n", 6, 1, 3, &rs, &err), 0);
    assert_int_equal(rs.nrows, 3);
    ig_rowset_clear(&rs);
}

/* Every prefix of a tricky body: no crash, no read past len (ASan), and
 * either rows or an error with a message. */
/* A small budget: the rows and features of a CSV body are charged as
 * they grow; past the budget, IG_ERR_FULL naming the first row that did
 * not fit, and nothing stays charged. */
static void test_budget(void **state)
{
    struct ig_budget *b = ig_budget_new(1000, NULL);
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    char body[64 * 4 + 1];

    (void)state;
    for (int i = 0; i < 64; i++)
        memcpy(body + i * 4, "1,2\n", 4);
    body[256] = '\0';
    rs.budget = b;
    /* 32 rows of 2 features: 32 * 8 + 32 * 16 = 768 bytes, within 1000 */
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 32 * 4, 2, 1000, &rs, &err), 0);
    assert_int_equal(rs.nrows, 32);
    assert_int_equal(ig_budget_held(b), 768);
    ig_rowset_clear(&rs);
    assert_int_equal(ig_budget_held(b), 0);
    /* 33 rows need 35 rows' room (840 bytes: the body holds no more) */
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 33 * 4, 2, 1000, &rs, &err), 0);
    assert_int_equal(rs.cap, 35);
    assert_int_equal(ig_budget_held(b), 840);
    ig_rowset_clear(&rs);
    /* 64 rows: at row 33 the room doubles to 64 rows, 1536 bytes */
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 64 * 4, 2, 1000, &rs, &err), IG_ERR_FULL);
    assert_int_equal(err.row, 33);
    assert_string_equal(err.msg, "Row 33: the decoded features of this request do not fit in "
                                 "the gateway's memory budget; retry later or send fewer rows.");
    assert_null(rs.rows);
    assert_int_equal(ig_budget_held(b), 0);
    /* a budget already partly held by others leaves less */
    assert_int_equal(ig_budget_charge(b, 600), 0);
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 17 * 4, 2, 1000, &rs, &err), IG_ERR_FULL);
    assert_int_equal(err.row, 17);
    assert_int_equal(ig_budget_held(b), 600);
    ig_budget_release(b, 600);
    ig_budget_unref(b);
}

static void test_all_prefixes(void **state)
{
    const char *src = "1,\"2\"\r\n\"a\"\"b\",\" 3 \"\n\n4,5\r\r\n\"x\ny\"z\n,\n\"";
    size_t n = strlen(src);

    (void)state;
    for (size_t len = 0; len <= n; len++) {
        for (uint32_t dim = 0; dim < 3; dim++) {
            char *copy = malloc(len ? len : 1);
            struct ig_rowset rs = {0};
            struct ig_codec_error err = {0, ""};
            int rv;

            memcpy(copy, src, len);
            rv = ig_codec_decode(IG_FMT_CSV, copy, len, dim, 100, &rs, &err);
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
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_no_final_newline),
        cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_quoted_numbers),
        cmocka_unit_test(test_spaces_and_tabs),
        cmocka_unit_test(test_feature_values_exact),
        cmocka_unit_test(test_split_only),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_err_unterminated_quote),
        cmocka_unit_test(test_err_after_closing_quote),
        cmocka_unit_test(test_err_quote_in_unquoted),
        cmocka_unit_test(test_err_feature_count),
        cmocka_unit_test(test_err_not_a_number),
        cmocka_unit_test(test_err_long_field_truncated),
        cmocka_unit_test(test_long_numbers),
        cmocka_unit_test(test_err_empty_field),
        cmocka_unit_test(test_err_empty_rows),
        cmocka_unit_test(test_err_nul),
        cmocka_unit_test(test_err_huge_line),
        cmocka_unit_test(test_max_rows),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_all_prefixes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_codec_json.c - application/json and application/jsonlines decoding:
 * every row form (dense, features, data, sparse), exact slices, features,
 * every error with its exact message and row, and the caps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "infergate/budget.h"
#include "infergate/codec.h"
#include "infergate/common.h"

#include "codec_test.h"

static void dec_ok(enum ig_format fmt, const char *body, uint32_t dim, struct ig_rowset *rs)
{
    struct ig_codec_error err = {0, ""};
    int rv = ig_codec_decode(fmt, body, strlen(body), dim, 1000, rs, &err);

    if (rv != 0)
        print_error("decode failed: %s\n", err.msg);
    assert_int_equal(rv, 0);
    assert_ptr_equal(rs->body, body);
    assert_int_equal(rs->dim, dim);
}

/* Row <i> is exactly the text <want>. */
static void expect_slice(const struct ig_rowset *rs, uint32_t i, const char *want)
{
    assert_true(i < rs->nrows);
    assert_int_equal(rs->rows[i].len, strlen(want));
    assert_memory_equal(rs->body + rs->rows[i].off, want, strlen(want));
}

static void expect_row(const struct ig_rowset *rs, uint32_t i, uint32_t off, uint32_t len)
{
    assert_true(i < rs->nrows);
    assert_int_equal(rs->rows[i].off, off);
    assert_int_equal(rs->rows[i].len, len);
}

static void expect_features(const struct ig_rowset *rs, const double *want, size_t n)
{
    assert_int_equal((size_t)rs->nrows * rs->dim, n);
    for (size_t i = 0; i < n; i++) {
        if (rs->features[i] != want[i])
            print_error("feature %zu: %.17g != %.17g\n", i, rs->features[i], want[i]);
        assert_true(rs->features[i] == want[i]);
    }
}

static void json_fail(const char *body, uint32_t dim, uint32_t row, const char *msg)
{
    dec_fail_n(IG_FMT_JSON, body, strlen(body), dim, 1000, IG_ERR_INVALID, row, msg);
}

static void jsonl_fail(const char *body, uint32_t dim, uint32_t row, const char *msg)
{
    dec_fail_n(IG_FMT_JSONL, body, strlen(body), dim, 1000, IG_ERR_INVALID, row, msg);
}

/* ---- application/json: shapes and slices ---- */

static void test_json_instances_forms(void **state)
{
    struct ig_rowset rs = {0};
    const char *body = "{\"instances\":[{\"features\":[1.5,16.0]},[3,4],"
                       "{\"data\":{\"features\":{\"values\":[5,6e-1]}}},"
                       "{\"features\":{\"values\":[7,8],\"shape\":[2]}}]}";
    const double want[] = {1.5, 16.0, 3, 4, 5, 0.6, 7, 8};

    (void)state;
    dec_ok(IG_FMT_JSON, body, 2, &rs);
    assert_int_equal(rs.nrows, 4);
    expect_row(&rs, 0, 14, 23);
    expect_slice(&rs, 0, "{\"features\":[1.5,16.0]}");
    expect_slice(&rs, 1, "[3,4]");
    expect_slice(&rs, 2, "{\"data\":{\"features\":{\"values\":[5,6e-1]}}}");
    expect_slice(&rs, 3, "{\"features\":{\"values\":[7,8],\"shape\":[2]}}");
    expect_features(&rs, want, 8);
    ig_rowset_clear(&rs);
}

static void test_json_sparse(void **state)
{
    struct ig_rowset rs = {0};
    const char *body =
        "{\"instances\":["
        "{\"data\":{\"features\":{\"keys\":[3,0],\"shape\":[5],\"values\":[1.5,2]}}},"
        "{\"features\":{\"keys\":[],\"shape\":[5],\"values\":[]}},"
        "{\"features\":{\"keys\":[4],\"shape\":[5],\"values\":[-1]}}]}";
    const double want[] = {2, 0, 0, 1.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1};

    (void)state;
    dec_ok(IG_FMT_JSON, body, 5, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_slice(&rs, 0,
                 "{\"data\":{\"features\":{\"keys\":[3,0],\"shape\":[5],\"values\":[1.5,2]}}}");
    expect_slice(&rs, 1, "{\"features\":{\"keys\":[],\"shape\":[5],\"values\":[]}}");
    expect_slice(&rs, 2, "{\"features\":{\"keys\":[4],\"shape\":[5],\"values\":[-1]}}");
    expect_features(&rs, want, 15);
    ig_rowset_clear(&rs);
}

static void test_json_single_object(void **state)
{
    struct ig_rowset rs = {0};
    const double want[] = {1, 2, 3};
    const double sparse[] = {0, 9, 0};

    (void)state;
    dec_ok(IG_FMT_JSON, " \n{\"features\": [1, 2, 3]}\r\n ", 3, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 2, 23);
    expect_features(&rs, want, 3);
    ig_rowset_clear(&rs);
    dec_ok(IG_FMT_JSON, "{\"features\":{\"keys\":[1],\"shape\":[3],\"values\":[9]}}", 3, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 0, 50);
    expect_features(&rs, sparse, 3);
    ig_rowset_clear(&rs);
    dec_ok(IG_FMT_JSON, "{\"data\":{\"features\":{\"values\":[1,2,3]}}}", 3, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 0, 40);
    expect_features(&rs, want, 3);
    ig_rowset_clear(&rs);
}

static void test_json_bare_arrays(void **state)
{
    struct ig_rowset rs = {0};
    const double one[] = {1, 2.5, -3};
    const double two[] = {1, 2, 3, 4};

    (void)state;
    dec_ok(IG_FMT_JSON, "[1,2.5,-3]", 3, &rs);
    assert_int_equal(rs.nrows, 1);
    expect_row(&rs, 0, 0, 10);
    expect_features(&rs, one, 3);
    ig_rowset_clear(&rs);
    dec_ok(IG_FMT_JSON, " [ [1, 2] ,\n[3,4] ] ", 2, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 3, 6);
    expect_row(&rs, 1, 12, 5);
    expect_features(&rs, two, 4);
    ig_rowset_clear(&rs);
    /* A bare array of row objects. */
    dec_ok(IG_FMT_JSON, "[{\"features\":[1,2]},{\"features\":[3,4]}]", 2, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_slice(&rs, 0, "{\"features\":[1,2]}");
    expect_slice(&rs, 1, "{\"features\":[3,4]}");
    expect_features(&rs, two, 4);
    ig_rowset_clear(&rs);
}

static void test_json_slices_tricky(void **state)
{
    struct ig_rowset rs = {0};
    /* Strings holding brackets, commas, quotes and escapes; another key
     * before "instances" holding nested values; whitespace everywhere. */
    const char *body = "{ \"config\" : {\"a\":[1,{\"b\":\"]}\\\"\"}],\"c\":\"[\"},\n"
                       "  \"instances\" : [ {\"s\":\"a]\\\"},[\", \"t\":[[]]} ,\"x\\\\\" , 1.5e3 ,"
                       "null,true , [ ] ]\n}";

    (void)state;
    dec_ok(IG_FMT_JSON, body, 0, &rs);
    assert_int_equal(rs.nrows, 6);
    expect_slice(&rs, 0, "{\"s\":\"a]\\\"},[\", \"t\":[[]]}");
    expect_slice(&rs, 1, "\"x\\\\\"");
    expect_slice(&rs, 2, "1.5e3");
    expect_slice(&rs, 3, "null");
    expect_slice(&rs, 4, "true");
    expect_slice(&rs, 5, "[ ]");
    assert_null(rs.features);
    ig_rowset_clear(&rs);
}

static void test_json_escaped_key(void **state)
{
    struct ig_rowset rs = {0};
    const double want[] = {1, 2};

    (void)state;
    /* "instanc\u0065s" is "instances"; "instances\u0000" and "\u0069nstance" are not. */
    dec_ok(IG_FMT_JSON,
           "{\"x\":{\"instances\":[[9]]},\"instance\\u0073x\":0,\"instanc\\u0065s\":[[1],[2]]}", 1,
           &rs);
    assert_int_equal(rs.nrows, 2);
    expect_slice(&rs, 0, "[1]");
    expect_slice(&rs, 1, "[2]");
    expect_features(&rs, want, 2);
    ig_rowset_clear(&rs);
}

static void test_json_dim0_any_value(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    dec_ok(IG_FMT_JSON, "{\"instances\":[\"x\",{\"anything\":1},null]}", 0, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_slice(&rs, 0, "\"x\"");
    expect_slice(&rs, 1, "{\"anything\":1}");
    expect_slice(&rs, 2, "null");
    ig_rowset_clear(&rs);
}

static void test_json_values_exact(void **state)
{
    struct ig_rowset rs = {0};
    const double want[] = {0.1, -2.5e-3, 1e308, 4.9e-324, -0.0, 9007199254740993.0, 7};

    (void)state;
    dec_ok(IG_FMT_JSON, "[0.1,-2.5e-3,1e308,4.9e-324,-0,9007199254740993,7.0]", 7, &rs);
    expect_features(&rs, want, 7);
    ig_rowset_clear(&rs);
}

/* ---- application/json: errors ---- */

static void test_json_err_syntax(void **state)
{
    (void)state;
    json_fail("{\"instances\":[[1],]}", 1, 0,
              "Request body is not valid JSON: unexpected token near ']' at line 1 column 19.");
    json_fail("{\"instances\":[[1]]}\n\n x", 1, 0,
              "Request body is not valid JSON: end of file expected near 'x' at line 3 column 2.");
    json_fail("[1,2", 2, 0,
              "Request body is not valid JSON: ']' expected near end of file at line 1 column 4.");
    json_fail("   ", 0, 0,
              "Request body is not valid JSON: unexpected token near end of file at line 1 "
              "column 3.");
    json_fail("{\"a\":1,\"a\":2}", 0, 0,
              "Request body is not valid JSON: duplicate object key near '\"a\"' at line 1 "
              "column 10.");
    json_fail("[1e999]", 1, 0,
              "Request body is not valid JSON: real number overflow near '1e999' at line 1 "
              "column 6.");
    json_fail("[NaN]", 1, 0,
              "Request body is not valid JSON: invalid token near 'NaN' at line 1 column 4.");
    json_fail("[1,\xff]", 1, 0,
              "Request body is not valid JSON: unable to decode byte 0xff at line 1 column 3.");
    dec_fail_n(IG_FMT_JSON, "[1,\0]", 5, 2, 10, IG_ERR_INVALID, 0,
               "Request body contains a NUL byte at offset 3.");
}

static void test_json_err_shape(void **state)
{
    const char *shape =
        "Expected an object with 'instances', an object with 'features', or an array.";

    (void)state;
    json_fail("{\"foo\":[1,2]}", 2, 0, shape);
    json_fail("{}", 0, 0, shape);
    json_fail("3", 1, 0, shape);
    json_fail("\"x\"", 1, 0, shape);
    json_fail("null", 0, 0, shape);
    json_fail("{\"instances\":{\"features\":[1]}}", 1, 0, "'instances' must be an array.");
    json_fail("{\"instances\":[]}", 1, 0, "Request has no rows.");
    json_fail("[]", 0, 0, "Request has no rows.");
}

static void test_json_err_rows(void **state)
{
    (void)state;
    json_fail("{\"instances\":[[1,2],[1,2,3]]}", 2, 2, "Row 2: expected 2 features, found 3.");
    json_fail("{\"instances\":[{\"features\":[1,2]},{\"features\":[1]}]}", 2, 2,
              "Row 2: expected 2 features, found 1.");
    json_fail("[1,2,3]", 10, 1, "Row 1: expected 10 features, found 3.");
    json_fail("{\"instances\":[{\"features\":\"1,2\"}]}", 2, 1,
              "Row 1: 'features' must be an array of numbers.");
    json_fail("{\"instances\":[{\"features\":null}]}", 2, 1,
              "Row 1: 'features' must be an array of numbers.");
    json_fail("[[1,2],[3,\"4\"]]", 2, 2, "Row 2: feature 2 is not a number.");
    json_fail("[1,\"2\"]", 2, 1, "Row 1: feature 2 is not a number.");
    json_fail("[1,[2]]", 2, 1, "Row 1: feature 2 is not a number.");
    json_fail("[[1,2],3]", 2, 2,
              "Row 2: expected an array of numbers or an object with 'features'.");
    json_fail("{\"instances\":[[1,2],{\"feature\":[1,2]}]}", 2, 2,
              "Row 2: expected an array of numbers or an object with 'features'.");
    json_fail("{\"instances\":[{\"data\":[1,2]}]}", 2, 1,
              "Row 1: 'data' must be an object with 'features'.");
    json_fail("{\"instances\":[{\"data\":{\"values\":[1,2]}}]}", 2, 1,
              "Row 1: 'data' must be an object with 'features'.");
    json_fail("{\"instances\":[{\"features\":{\"value\":[1,2]}}]}", 2, 1,
              "Row 1: 'values' must be an array of numbers.");
    json_fail("{\"features\":{\"values\":[1,2],\"shape\":[3]}}", 2, 1,
              "Row 1: expected 2 features, shape is [3].");
}

static void test_json_err_sparse(void **state)
{
    (void)state;
    json_fail("{\"features\":{\"keys\":[1,5],\"shape\":[5],\"values\":[1,2]}}", 5, 1,
              "Row 1: key 5 is out of range for 5 features.");
    json_fail("{\"features\":{\"keys\":[-1],\"shape\":[5],\"values\":[1]}}", 5, 1,
              "Row 1: key -1 is out of range for 5 features.");
    json_fail("{\"features\":{\"keys\":[1,2,1],\"shape\":[5],\"values\":[1,2,3]}}", 5, 1,
              "Row 1: key 1 appears twice.");
    json_fail("{\"features\":{\"keys\":[1,2],\"shape\":[5],\"values\":[1]}}", 5, 1,
              "Row 1: 'keys' has 2 entries but 'values' has 1.");
    json_fail("{\"features\":{\"keys\":[1],\"shape\":[6],\"values\":[1]}}", 5, 1,
              "Row 1: expected 5 features, shape is [6].");
    json_fail("{\"features\":{\"keys\":[1],\"values\":[1]}}", 5, 1,
              "Row 1: sparse 'features' needs a 'shape'.");
    json_fail("{\"features\":{\"keys\":[1],\"shape\":5,\"values\":[1]}}", 5, 1,
              "Row 1: 'shape' must be an array of one integer.");
    json_fail("{\"features\":{\"keys\":[1],\"shape\":[5,1],\"values\":[1]}}", 5, 1,
              "Row 1: 'shape' must be an array of one integer.");
    json_fail("{\"features\":{\"keys\":[1.0],\"shape\":[5],\"values\":[1]}}", 5, 1,
              "Row 1: 'keys' must be an array of integers.");
    json_fail("{\"features\":{\"keys\":\"1\",\"shape\":[5],\"values\":[1]}}", 5, 1,
              "Row 1: 'keys' must be an array of integers.");
    json_fail("{\"features\":{\"keys\":[0,1],\"shape\":[5],\"values\":[1,\"x\"]}}", 5, 1,
              "Row 1: value 2 is not a number.");
}

/* Integers beyond int64 are numbers like any other: read as doubles, in
 * both JSON formats, with sparse keys and shapes still integers. */
static void test_json_big_integers(void **state)
{
    static const double want[] = {123456789012345678901234567890.0, -1e40, 5, 1.5};
    static const double want_sparse[] = {0, 123456789012345678901234567890.0, 0};
    struct ig_rowset rs = {0};

    (void)state;
    dec_ok(IG_FMT_JSON, "[[123456789012345678901234567890,-10000000000000000000000000000000000000000],"
                        "[5,1.5]]", 2, &rs);
    expect_features(&rs, want, 4);
    expect_slice(&rs, 0, "[123456789012345678901234567890,-10000000000000000000000000000000000000000]");
    ig_rowset_clear(&rs);
    dec_ok(IG_FMT_JSONL, "[123456789012345678901234567890,-10000000000000000000000000000000000000000]\n"
                         "[5,1.5]\n", 2, &rs);
    expect_features(&rs, want, 4);
    ig_rowset_clear(&rs);
    dec_ok(IG_FMT_JSON, "{\"features\":{\"keys\":[1],\"shape\":[3],"
                        "\"values\":[123456789012345678901234567890]}}", 3, &rs);
    expect_features(&rs, want_sparse, 3);
    ig_rowset_clear(&rs);
    /* still refused: a key or shape that is no integer, or out of range */
    json_fail("{\"features\":{\"keys\":[1.5],\"shape\":[3],"
              "\"values\":[123456789012345678901234567890]}}", 3, 1,
              "Row 1: 'keys' must be an array of integers.");
    json_fail("{\"features\":{\"keys\":[123456789012345678901234567890],\"shape\":[3],"
              "\"values\":[1]}}", 3, 1, "Row 1: 'keys' must be an array of integers.");
    json_fail("{\"features\":{\"keys\":[1],\"shape\":[123456789012345678901234567890],"
              "\"values\":[1]}}", 3, 1, "Row 1: 'shape' must be an array of one integer.");
    json_fail("[1e999,123456789012345678901234567890]", 2, 0,
              "Request body is not valid JSON: real number overflow near '1e999' at line 1 "
              "column 6.");
}

/* The amplification attack: empty sparse rows of a wide model are a few
 * bytes each on the wire and dim * 8 bytes each decoded (4000 rows of
 * shape [20000], 170 KB, would take 655 MB). Against a 4 MB budget the
 * decode is refused as soon as the features would pass it, before they
 * are allocated, and nothing stays charged. */
static void test_json_sparse_amplification(void **state)
{
    static const char row[] = "{\"features\":{\"keys\":[],\"shape\":[20000],\"values\":[]}}";
    const size_t nrows = 4000, rl = sizeof(row) - 1;
    const char *msg = "Row 17: the decoded features of this request do not fit in the gateway's "
                      "memory budget; retry later or send fewer rows.";
    struct ig_budget *server = ig_budget_new(64u << 20, NULL);
    struct ig_budget *b = ig_budget_new(4u << 20, server);
    char *body = malloc(nrows * (rl + 1) + 16);
    struct ig_codec_error err;
    size_t n = 0;

    (void)state;
    assert_non_null(body);
    for (int fmt = IG_FMT_JSONL; fmt <= IG_FMT_JSON; fmt++) {
        struct ig_rowset rs = {0};

        n = 0;
        if (fmt == IG_FMT_JSON)
            n += (size_t)sprintf(body, "{\"instances\":[");
        for (size_t i = 0; i < nrows; i++) {
            memcpy(body + n, row, rl);
            n += rl;
            body[n++] = fmt == IG_FMT_JSON ? ',' : '\n';
        }
        if (fmt == IG_FMT_JSON)
            memcpy(body + n - 1, "]}", 2), n++;
        assert_true(n < 250000);
        rs.budget = b;
        assert_int_equal(ig_codec_decode((enum ig_format)fmt, body, n, 20000, 100000, &rs, &err),
                         IG_ERR_FULL);
        assert_int_equal(err.row, 17);
        assert_string_equal(err.msg, msg);
        assert_null(rs.rows);
        assert_null(rs.features);
        assert_int_equal(ig_budget_held(b), 0);
        assert_int_equal(ig_budget_held(server), 0);
        /* the same rows, fewer of them, fit: 16 rows of 20000 features */
        n = 0;
        if (fmt == IG_FMT_JSON)
            n += (size_t)sprintf(body, "{\"instances\":[");
        for (size_t i = 0; i < 16; i++) {
            memcpy(body + n, row, rl);
            n += rl;
            body[n++] = fmt == IG_FMT_JSON ? ',' : '\n';
        }
        if (fmt == IG_FMT_JSON)
            memcpy(body + n - 1, "]}", 2), n++;
        rs.budget = b;
        assert_int_equal(ig_codec_decode((enum ig_format)fmt, body, n, 20000, 100000, &rs, &err),
                         0);
        assert_int_equal(rs.nrows, 16);
        assert_int_equal(ig_budget_held(server), 16 * 8 + 16 * 20000 * 8);
        ig_rowset_clear(&rs);
        assert_int_equal(ig_budget_held(server), 0);
    }
    assert_int_equal(ig_budget_refused(b), 2);
    ig_budget_unref(b);
    ig_budget_unref(server);
    free(body);
}

static void test_json_sparse_keys_reset(void **state)
{
    struct ig_rowset rs = {0};
    /* The same keys in consecutive rows are no repeat: the marks that
     * detect repeats are reset after each row. */
    const char *body = "{\"instances\":["
                       "{\"features\":{\"keys\":[1,2],\"shape\":[3],\"values\":[1,2]}},"
                       "{\"features\":{\"keys\":[2,1],\"shape\":[3],\"values\":[3,4]}}]}";
    const double want[] = {0, 1, 2, 0, 4, 3};

    (void)state;
    dec_ok(IG_FMT_JSON, body, 3, &rs);
    expect_features(&rs, want, 6);
    ig_rowset_clear(&rs);
}

static void test_json_depth_cap(void **state)
{
    char body[300];
    size_t len = 0;
    struct ig_rowset rs = {0};

    (void)state;
    /* {"instances":[ + 62 nested arrays: 64 levels, allowed. */
    len = (size_t)sprintf(body, "{\"instances\":[");
    for (int i = 0; i < 62; i++)
        body[len++] = '[';
    for (int i = 0; i < 62; i++)
        body[len++] = ']';
    memcpy(body + len, "]}", 3);
    dec_ok(IG_FMT_JSON, body, 0, &rs);
    assert_int_equal(rs.nrows, 1);
    assert_int_equal(rs.rows[0].len, 124);
    ig_rowset_clear(&rs);
    /* 63 nested arrays: 65 levels. */
    len = (size_t)sprintf(body, "{\"instances\":[");
    for (int i = 0; i < 63; i++)
        body[len++] = '[';
    for (int i = 0; i < 63; i++)
        body[len++] = ']';
    memcpy(body + len, "]}", 3);
    json_fail(body, 0, 0, "Request body nests deeper than 64 levels.");
    /* The same depth in a value skipped before "instances". */
    len = (size_t)sprintf(body, "{\"a\":");
    for (int i = 0; i < 64; i++)
        body[len++] = '[';
    for (int i = 0; i < 64; i++)
        body[len++] = ']';
    memcpy(body + len, ",\"instances\":[[1]]}", 20);
    json_fail(body, 0, 0, "Request body nests deeper than 64 levels.");
}

static void test_json_max_rows(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    const char *body = "{\"instances\":[[1],[2],[3]]}";

    (void)state;
    dec_fail_n(IG_FMT_JSON, body, strlen(body), 1, 2, IG_ERR_TOOBIG, 0,
               "Request has more than 2 rows.");
    dec_fail_n(IG_FMT_JSON, "[1]", 3, 1, 0, IG_ERR_TOOBIG, 0, "Request has more than 0 rows.");
    assert_int_equal(ig_codec_decode(IG_FMT_JSON, body, strlen(body), 1, 3, &rs, &err), 0);
    assert_int_equal(rs.nrows, 3);
    ig_rowset_clear(&rs);
}

static void test_json_many_rows(void **state)
{
    size_t cap = 20000 * 24 + 32, len;
    char *body = malloc(cap);
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    len = (size_t)sprintf(body, "{\"instances\":[");
    for (int i = 0; i < 20000; i++)
        len += (size_t)sprintf(body + len, "%s{\"features\":[%d,1]}", i ? "," : "", i);
    len += (size_t)sprintf(body + len, "]}");
    assert_int_equal(ig_codec_decode(IG_FMT_JSON, body, len, 2, 20000, &rs, &err), 0);
    assert_int_equal(rs.nrows, 20000);
    for (uint32_t i = 0; i < 20000; i++) {
        char want[32];

        sprintf(want, "{\"features\":[%u,1]}", i);
        expect_slice(&rs, i, want);
        assert_true(rs.features[2 * i] == (double)i);
        assert_true(rs.features[2 * i + 1] == 1.0);
    }
    ig_rowset_clear(&rs);
    free(body);
}

/* ---- application/json: the decoder's own memory ---- */

/* jansson's allocations, counted: set in these tests only, around one
 * decode (a tree must be freed by the allocator that made it). */
static size_t jl_live, jl_peak, jl_count;

static void *jl_malloc(size_t n)
{
    size_t *p = malloc(n + 16);

    if (p == NULL)
        return NULL;
    p[0] = n;
    jl_live += n;
    jl_count++;
    if (jl_live > jl_peak)
        jl_peak = jl_live;
    return (char *)p + 16;
}

static void jl_free(void *q)
{
    size_t *p;

    if (q == NULL)
        return;
    p = (size_t *)((char *)q - 16);
    jl_live -= p[0];
    free(p);
}

/* Decode with jansson's allocations counted: jl_peak, jl_count. */
static int dec_counted(enum ig_format fmt, const char *body, size_t len, uint32_t dim,
                       uint32_t max_rows, struct ig_rowset *rs, struct ig_codec_error *err)
{
    int rv;

    jl_live = jl_peak = jl_count = 0;
    json_set_alloc_funcs(jl_malloc, jl_free);
    rv = ig_codec_decode(fmt, body, len, dim, max_rows, rs, err);
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(jl_live, 0); /* every tree freed */
    return rv;
}

/* <prefix>, then <elem> repeated (joined by ',') up to <size> bytes, then
 * <suffix>. Sets *n to the element count. */
static char *repeat_body(const char *prefix, const char *elem, size_t size, const char *suffix,
                         size_t *len, size_t *n)
{
    size_t pl = strlen(prefix), el = strlen(elem), sl = strlen(suffix), k = 0, at;
    char *b = malloc(size + el + pl + sl + 2);

    assert_non_null(b);
    memcpy(b, prefix, pl);
    at = pl;
    while (at < size) {
        if (k++ > 0)
            b[at++] = ',';
        memcpy(b + at, elem, el);
        at += el;
    }
    memcpy(b + at, suffix, sl);
    at += sl;
    b[at] = '\0';
    *len = at;
    if (n != NULL)
        *n = k;
    return b;
}

#define PEAK_MAX ((size_t)1 << 20)

/*
 * The amplification of a whole-body tree: 4.7 MB of {"instances":[{},{},
 * ...]} made a 369 MB jansson tree, [[],[],...] 201 MB, 6 MiB of 0.5,
 * 67 MB. Decoded one element at a time (and dense rows with no tree),
 * jansson never holds more than one element: under 1 MiB for each.
 */
static void test_json_peak_memory(void **state)
{
    static const struct {
        const char *prefix, *elem, *suffix;
        uint32_t dim;
        size_t size;
    } cases[] = {
        {"{\"instances\":[", "{}", "]}", 0, 4700000},
        {"[", "[]", "]", 0, 4700000},
        {"[", "0.5", "]", 0, 6u << 20},
        {"{\"instances\":[", "[0.5,0.25,-1e3,7]", "]}", 4, 6u << 20},
        {"[", "{\"features\":[0.5,0.25,-1e3,7]}", "]", 4, 6u << 20},
        {"{\"instances\":[", "{\"features\":{\"keys\":[1,3],\"shape\":[4],\"values\":[1.5,2]}}",
         "]}", 4, 6u << 20},
        {"{\"instances\":[", "{\"data\":{\"features\":{\"values\":[1,2,3,4]}},\"id\":\"x\"}",
         "]}", 4, 6u << 20},
    };

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(cases); i++) {
        struct ig_rowset rs = {0};
        struct ig_codec_error err = {0, ""};
        size_t len, n;
        char *body = repeat_body(cases[i].prefix, cases[i].elem, cases[i].size, cases[i].suffix,
                                 &len, &n);
        int rv = dec_counted(IG_FMT_JSON, body, len, cases[i].dim, 4000000, &rs, &err);

        if (rv != 0 || jl_peak > PEAK_MAX)
            print_error("case %zu: rv %d (%s), jansson peak %zu bytes for %zu\n", i, rv, err.msg,
                        jl_peak, len);
        assert_int_equal(rv, 0);
        assert_true(jl_peak < PEAK_MAX);
        /* 0.5,0.5,...: the whole array is one row (dim 0: forwarded) */
        assert_int_equal(rs.nrows, strcmp(cases[i].elem, "0.5") == 0 ? 1 : n);
        if (cases[i].dim == 4) {
            assert_true(rs.features[4 * (n - 1)] == (i == 5 ? 0 : i == 6 ? 1 : 0.5));
            expect_slice(&rs, (uint32_t)n - 1, cases[i].elem);
        }
        ig_rowset_clear(&rs);
        free(body);
    }
}

/* The row limit stops the scan as the row past it starts: nothing after
 * it is read, not even bytes that are no JSON. */
static void test_json_max_rows_stops_early(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    size_t len;
    char *body = repeat_body("{\"instances\":[", "{}", 4700000, "]}", &len, NULL);

    (void)state;
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, 0, 10, &rs, &err), IG_ERR_TOOBIG);
    assert_string_equal(err.msg, "Request has more than 10 rows.");
    assert_int_equal(err.row, 0);
    /* the key and ten rows were read, not 1.5 million */
    assert_true(jl_count < 50);
    free(body);
    dec_fail_n(IG_FMT_JSON, "[[1],[2],[3] this is no JSON", 28, 1, 2, IG_ERR_TOOBIG, 0,
               "Request has more than 2 rows.");
    dec_fail_n(IG_FMT_JSON, "{\"instances\":[{},{},{\"x\":", 25, 0, 2, IG_ERR_TOOBIG, 0,
               "Request has more than 2 rows.");
}

/* The tree jansson would build for a text, as the decoder weighs it: 64
 * for the value, 3 a byte, 256 a '[' or '{', 96 a ',' or ':' (outside
 * strings). */
static unsigned long long tree_weight(const char *t, size_t n)
{
    unsigned long long w = 64 + 3 * (unsigned long long)n;

    for (size_t i = 0; i < n; i++)
        w += t[i] == '[' || t[i] == '{' ? 256 : t[i] == ',' || t[i] == ':' ? 96 : 0;
    return w;
}

/* One element too big to read as a tree (no limit on width in jansson,
 * only on depth) is refused before it is read, naming its row. */
static void test_json_huge_element(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    char want[256];
    size_t len, n;
    char *body;

    (void)state;
    /* dim 0 (rows forwarded): one row of 1 MB of {} would be 70 MB (20 MiB allowed) */
    body = repeat_body("{\"instances\":[[1],[", "{}", 300000, "]]}", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, 0, 100, &rs, &err), IG_ERR_TOOBIG);
    snprintf(want, sizeof(want),
             "Row 2: this row's JSON is too large or too nested to decode (about %llu bytes as "
             "a tree, over the 20971520 bytes one row may take); send its features as an array "
             "of numbers.",
             tree_weight(body + 18, len - 18 - 2));
    assert_string_equal(err.msg, want);
    assert_int_equal(err.row, 2);
    assert_true(jl_peak < 4096);
    assert_null(rs.rows);
    free(body);
    /* dim 2: a row object carrying a wide value: 1 MiB + 2 * 384 bytes */
    body = repeat_body("[[1,2],{\"features\":[1,2],\"x\":[", "0", 300000, "]}]", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, 2, 100, &rs, &err), IG_ERR_TOOBIG);
    snprintf(want, sizeof(want),
             "Row 2: this row's JSON is too large or too nested to decode (about %llu bytes as "
             "a tree, over the 1049344 bytes one row may take); send its features as an array "
             "of numbers.",
             tree_weight(body + 7, len - 8));
    assert_string_equal(err.msg, want);
    assert_int_equal(err.row, 2);
    assert_true(jl_peak < 4096);
    free(body);
    /* the same in a value that is no row */
    body = repeat_body("{\"meta\":[", "[]", 1000000, "],\"instances\":[[1]]}", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, 1, 100, &rs, &err), IG_ERR_TOOBIG);
    assert_int_equal(err.row, 0);
    assert_true(strncmp(err.msg, "Request body has a value too large or too nested to decode "
                                 "(about ", 66) == 0);
    free(body);
    /* a JSON Lines row */
    body = repeat_body("[1]\n[", "[]", 1000000, "]\n", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSONL, body, len, 0, 100, &rs, &err), IG_ERR_TOOBIG);
    assert_int_equal(err.row, 2);
    assert_true(strncmp(err.msg, "Row 2: this row's JSON is too large", 35) == 0);
    assert_true(jl_peak < 4096);
    free(body);
    /* unterminated: weighed to the end of the body */
    body = repeat_body("{\"instances\":[[", "{}", 1000000, "", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, 0, 100, &rs, &err), IG_ERR_TOOBIG);
    assert_int_equal(err.row, 1);
    free(body);
    /* deep nesting is the depth cap's */
    body = repeat_body("{\"instances\":[", "{\"a\":", 6u << 20, "", &len, &n);
    for (size_t i = 0; i < len; i++)
        body[i] = body[i] == ',' ? ' ' : body[i];
    dec_fail_n(IG_FMT_JSON, body, len, 2, 100, IG_ERR_INVALID, 0,
               "Request body nests deeper than 64 levels.");
    free(body);
}

/* What may be big is read: a dense row of 6 MiB (no tree), a full sparse
 * row of a wide model, a row that is one long string (dim 0). */
static void test_json_big_rows_pass(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    size_t len, n, at;
    char *body;

    (void)state;
    body = repeat_body("[", "0.5", 6u << 20, "]", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, (uint32_t)n, 10, &rs, &err), 0);
    assert_int_equal(rs.nrows, 1);
    assert_true(rs.features[n - 1] == 0.5);
    assert_int_equal(jl_count, 0);
    ig_rowset_clear(&rs);
    assert_int_equal(dec_counted(IG_FMT_JSONL, body, len, (uint32_t)n, 10, &rs, &err), 0);
    assert_int_equal(jl_count, 0);
    ig_rowset_clear(&rs);
    free(body);
    /* {"features":{"keys":[0..19999],"shape":[20000],"values":[1.25 ...]}} */
    body = malloc(400000);
    assert_non_null(body);
    at = (size_t)sprintf(body, "{\"features\":{\"keys\":[");
    for (int i = 0; i < 20000; i++)
        at += (size_t)sprintf(body + at, "%s%d", i ? "," : "", i);
    at += (size_t)sprintf(body + at, "],\"shape\":[20000],\"values\":[");
    for (int i = 0; i < 20000; i++)
        at += (size_t)sprintf(body + at, "%s1.25", i ? "," : "");
    at += (size_t)sprintf(body + at, "]}}");
    assert_int_equal(dec_counted(IG_FMT_JSON, body, at, 20000, 10, &rs, &err), 0);
    assert_true(rs.features[19999] == 1.25);
    assert_true(jl_peak < 20000 * 8 * 32); /* one row: under 32 times its features */
    ig_rowset_clear(&rs);
    free(body);
    body = repeat_body("{\"instances\":[\"", "abcdefgh", 6u << 20, "\"]}", &len, &n);
    assert_int_equal(dec_counted(IG_FMT_JSON, body, len, 0, 10, &rs, &err), 0);
    assert_int_equal(rs.nrows, 1);
    ig_rowset_clear(&rs);
    free(body);
}

/* Errors outside the rows (a missing ',', trailing bytes, a repeated
 * top-level key) are found by the decoder's own scanner, then told by
 * jansson: each message is the one jansson gives for the whole body. */
static void test_json_errors_as_whole_body(void **state)
{
    static const char *const bodies[] = {
        "{\"instances\":[[1],]}", "{\"instances\":[[1]]}\n\n x", "[1,2", "   ", "[NaN]",
        "{\"a\":1,\"a\":2}", "[1e999]", "[1,\xff]", "[1x]", "[[1]x]", "[[1] [2]]", "{\"a\" 1}",
        "{\"a\":1 \"b\":2}", "{\"a\":1,}", "{,}", "{\"instances\":[[1],[2] [3]]}",
        "{\"instances\":[[1]]} 123456789012345678901234567890", "{\"instances\":[[1]]} [",
        "{\"instances\":[[1]]}]", "\n\n  {\"x\":\"\xc3\xa9\xc3\xa9\" \"y\"}",
        "{\"\xc3\xa9\":1,\n \"\xc3\xa9\":2}", "{\"\\u00e9\":1,\"\xc3\xa9\":2}", "{\"a\\u0000b\":1}",
        "{\"a\\x\":1}", "{\"abc", "{\"instances\":[[1],[2]", "[[1],[2],", "[", "{",
        "{\"instances\":[\"a\\q\"]}", "{\"instances\":[1.]}", "{\"instances\":[-]}",
        "{\"instances\":[tru]}", "{\"instances\":[[1,2}]}", "{\"instances\":[{\"a\":1]}]}",
        "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
        "{\"instances\":[[1]],\"instances\":[[2]]}", "{\"features\":[1,2],\"x\":[1,}",
        "{\"x\":[1,],\"instances\":[[1]]}", "[0e]", "[01]", "[1,2]]", "{} x", "[] x", "3 3",
        "{\"instances\":[[1]]\n,\n\"y\":01}", "{\"instances\" : [[1], \n [1] \n x]}",
        "{\"instances\":[\"\t\"]}", "[\"\xc3\xa9\", x]", "[[1, 2], [3, 4]] \"\xff\"",
        "{\"instances\":[null\xff]}", "[1 2]", "[1,,2]", "{\"a\":}", "{\"a\"}", "[{]",
        "\xef\xbb\xbf{\"instances\":[[1]] x}",
        "{\"instances\":[[1]],\"x\":0,\"instanc\\u0065s\":[[2]]}",
        "{\"instances\":[[1]],\"x\":0,\"\\u0069nstances\\u0020long\\u0020key\":1,"
        "\"\\u0069nstances long key\":1}",
    };

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(bodies); i++) {
        const char *b = bodies[i];
        size_t n = strlen(b), skip = strncmp(b, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
        json_error_t jerr;
        json_t *v = json_loadb(b + skip, n - skip, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        char want[256];

        if (v == NULL && json_error_code(&jerr) == json_error_numeric_overflow)
            v = json_loadb(b + skip, n - skip,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
                           &jerr);
        assert_null(v);
        snprintf(want, sizeof(want), "Request body is not valid JSON: %s at line %d column %d.",
                 jerr.text, jerr.line, jerr.column);
        for (char *p = want; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
        json_fail(b, 0, 0, want);
    }
    /* a row's own error comes first now: it is found before the end */
    json_fail("{\"instances\":[[1,2],[3]] x", 2, 2, "Row 2: expected 2 features, found 1.");
}

/* The top-level object's keys are checked for repeats without a tree:
 * at most 1024 of them (a request has two or three). */
static char *keys_body(int nkeys)
{
    char *body = malloc((size_t)nkeys * 16 + 64);
    size_t len = 1;

    assert_non_null(body);
    body[0] = '{';
    for (int i = 0; i < nkeys - 1; i++)
        len += (size_t)sprintf(body + len, "\"k%d\":%d,", i, i);
    sprintf(body + len, "\"instances\":[[1]]}");
    return body;
}

static void test_json_top_level_keys(void **state)
{
    struct ig_rowset rs = {0};
    char *body = keys_body(1024);

    (void)state;
    dec_ok(IG_FMT_JSON, body, 1, &rs);
    assert_int_equal(rs.nrows, 1);
    ig_rowset_clear(&rs);
    free(body);
    body = keys_body(1025);
    json_fail(body, 1, 0, "Request body has more than 1024 keys in its top-level object.");
    free(body);
}

/* With a byte-order mark, a NUL byte's offset is still in the body as
 * sent (the mark's 3 bytes count). */
static void test_json_bom_nul_offset(void **state)
{
    (void)state;
    dec_fail_n(IG_FMT_JSON, "\xef\xbb\xbf[1,\0]", 8, 2, 10, IG_ERR_INVALID, 0,
               "Request body contains a NUL byte at offset 6.");
    dec_fail_n(IG_FMT_JSON, "[1,\0]", 5, 2, 10, IG_ERR_INVALID, 0,
               "Request body contains a NUL byte at offset 3.");
}

/* ---- application/jsonlines ---- */

static void test_jsonl_forms(void **state)
{
    struct ig_rowset rs = {0};
    const char *body = "[1,2]\n"
                       "{\"features\":[3,4]}\r\n"
                       "{\"data\":{\"features\":{\"values\":[5,6]}}}\n"
                       "{\"data\":{\"features\":{\"keys\":[1],\"shape\":[2],\"values\":[7]}}}\n"
                       " {\"features\":{\"keys\":[0],\"shape\":[2],\"values\":[8]}} ";
    const double want[] = {1, 2, 3, 4, 5, 6, 0, 7, 8, 0};

    (void)state;
    dec_ok(IG_FMT_JSONL, body, 2, &rs);
    assert_int_equal(rs.nrows, 5);
    expect_row(&rs, 0, 0, 5);
    expect_row(&rs, 1, 6, 18);
    expect_slice(&rs, 1, "{\"features\":[3,4]}");
    expect_slice(&rs, 2, "{\"data\":{\"features\":{\"values\":[5,6]}}}");
    expect_slice(&rs, 3, "{\"data\":{\"features\":{\"keys\":[1],\"shape\":[2],\"values\":[7]}}}");
    expect_slice(&rs, 4, " {\"features\":{\"keys\":[0],\"shape\":[2],\"values\":[8]}} ");
    expect_features(&rs, want, 10);
    ig_rowset_clear(&rs);
}

static void test_jsonl_terminators(void **state)
{
    struct ig_rowset rs = {0};

    (void)state;
    dec_ok(IG_FMT_JSONL, "[1]\r\n[2]\r\n", 1, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 0, 0, 3);
    expect_row(&rs, 1, 5, 3);
    ig_rowset_clear(&rs);
    dec_ok(IG_FMT_JSONL, "[1]\n[2]", 1, &rs);
    assert_int_equal(rs.nrows, 2);
    expect_row(&rs, 1, 4, 3);
    ig_rowset_clear(&rs);
    /* dim 0: any JSON value per line. */
    dec_ok(IG_FMT_JSONL, "\"a\"\n3\n{\"k\":[]}\n", 0, &rs);
    assert_int_equal(rs.nrows, 3);
    expect_slice(&rs, 0, "\"a\"");
    expect_slice(&rs, 1, "3");
    expect_slice(&rs, 2, "{\"k\":[]}");
    assert_null(rs.features);
    ig_rowset_clear(&rs);
}

static void test_jsonl_errors(void **state)
{
    (void)state;
    jsonl_fail("[1,2]\n[1,\n", 2, 2,
               "Row 2: invalid JSON: ']' expected near end of file at column 3.");
    jsonl_fail("[1,2]\n{\"features\":[1,2]} x\n", 2, 2,
               "Row 2: invalid JSON: end of file expected near 'x' at column 20.");
    jsonl_fail("{\"a\":1,\"a\":1}\n", 0, 1,
               "Row 1: invalid JSON: duplicate object key near '\"a\"' at column 10.");
    jsonl_fail("[1,2]\n[1,2]\n[1,2,3]\n", 2, 3, "Row 3: expected 2 features, found 3.");
    jsonl_fail("{\"features\":\"x\"}\n", 2, 1, "Row 1: 'features' must be an array of numbers.");
    jsonl_fail("[1]\n\n[2]\n", 1, 2, "Row 2: empty row.");
    jsonl_fail("[1]\n[2]\n\n", 1, 3, "Row 3: empty row.");
    jsonl_fail("[1]\r\n\r\n", 0, 2, "Row 2: empty row.");
    jsonl_fail("[1]\n \t\n", 0, 2, "Row 2: empty row.");
    jsonl_fail("\n", 0, 1, "Row 1: empty row.");
    jsonl_fail("{\"features\":{\"keys\":[3],\"shape\":[3],\"values\":[1]}}", 3, 1,
               "Row 1: key 3 is out of range for 3 features.");
    dec_fail_n(IG_FMT_JSONL, "[1]\n[\0]\n", 8, 1, 10, IG_ERR_INVALID, 2,
               "Row 2: NUL byte in the row.");
    dec_fail_n(IG_FMT_JSONL, "[1]\n[2]\n[3]", 11, 1, 2, IG_ERR_TOOBIG, 0,
               "Request has more than 2 rows.");
}

/*
 * Dense rows read straight from the text (one pass, eight bytes at a time
 * where eight are left, else byte by byte) agree with jansson's tree
 * ({"features":[...]}): the same verdict and the same doubles, bit for bit
 * (-0.0 too), each number at a row's start (bytes to spare) and at its end.
 * Bodies are allocated to their exact length, so ASan sees any read past.
 */
static void test_jsonl_dense_numbers_as_jansson(void **state)
{
    const char *nums[] = {
        "0", "-0", "0.0", "-0.0", "0e5", "-0e5", "-0E-0", "0.0000000", "1", "-1", "12",
        "1234567", "12345678", "123456789", "0.1234567", "0.12345678", "1234567.1234567",
        "9999999.9999999", "1234567.1234567e+15", "1234567.1234567e15", "-1234567.1234567E-5",
        "9007199254740993", "1e22", "1e23", "1e-22", "1e-23", "1.5e+3",
        "1.5E-003", "1e0999", "1e999", "-1e-999", "1e0022", "3e-05", "0.000001", "4.9e-324",
        "2.2250738585072014e-308", "123456.789e-7", "7.0", "-12.5", "1234.567", "0.123456",
        "99999999999999999999", "0.30000000000000004", "1234567e-22", "9e22", "01", "-01",
        "00", "1.", "-.5", ".5", "-", "1e", "1e+", "+1", "1.e5", "0x1", "1.5.5", "1e5.5", "--1",
        "1 2", "1]", "1,]", "-a", "1ee5", "1.5e+-3", "0.1234567e5", "12345678.5", "1234567.",
        "1234567.5", "0.0000001", "12345678e2", "00.5", "0.", "-0.5e-0", "1234567.8", "8.1234567",
        "0.12345678e-1", "-0.000000", "0.1.", "1.2.3", "5.e", "-0.", "1234.5678", "-9999999.9"};
    const char *layouts[][2] = {
        {"[", ",1,2,3,4,5,6,7]"},         {"[1,2,3,4,5,6,7,", "]"},
        {"[ ", " , 1,2,3,4,5,6,7 ]"},     {"[1, 2, 3, 4, ", ", 5, 6, 7]"},
        {"[1,\t2,3,4,5,6,7,\t", "\t]"}, {"[1,2,3,4,5,6,7,", ""}};

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(nums); i++) {
        for (size_t l = 0; l < IG_ARRAY_SIZE(layouts); l++) {
            char text[128], tree[160];
            struct ig_rowset a = {0}, b = {0};
            struct ig_codec_error ea = {0, ""}, eb = {0, ""};
            int ra, rb, n = snprintf(text, sizeof(text), "%s%s%s", layouts[l][0], nums[i],
                                             layouts[l][1]);
            char *copy = malloc((size_t)n);

            snprintf(tree, sizeof(tree), "{\"features\":%s}", text);
            memcpy(copy, text, (size_t)n);
            ra = ig_codec_decode(IG_FMT_JSONL, copy, (size_t)n, 8, 10, &a, &ea);
            rb = ig_codec_decode(IG_FMT_JSONL, tree, strlen(tree), 8, 10, &b, &eb);
            if (ra != rb || (ra == 0 && memcmp(a.features, b.features, 8 * sizeof(double)) != 0))
                print_error("%s: %d (%s) %.17g vs %d (%s) %.17g\n", text, ra, ea.msg,
                            ra == 0 ? a.features[l == 1 ? 7 : 0] : 0.0, rb, eb.msg,
                            rb == 0 ? b.features[l == 1 ? 7 : 0] : 0.0);
            assert_int_equal(ra, rb);
            if (ra == 0)
                assert_memory_equal(a.features, b.features, 8 * sizeof(double));
            ig_rowset_clear(&a);
            /* application/json: the same verdict and doubles, the text
             * ending at the buffer's end */
            ra = ig_codec_decode(IG_FMT_JSON, copy, (size_t)n, 8, 10, &a, &ea);
            assert_int_equal(ra, rb);
            if (ra == 0)
                assert_memory_equal(a.features, b.features, 8 * sizeof(double));
            ig_rowset_clear(&a);
            ig_rowset_clear(&b);
            free(copy);
        }
    }
}

/*
 * The same with random numbers: 1 to 10 digits, a dot anywhere (or at an
 * end, or none), an exponent or not, a sign or not, leading zeros, at a
 * row's start and at its end, against jansson's tree.
 */
static void test_jsonl_random_numbers_as_jansson(void **state)
{
    uint64_t x = 2018;

    (void)state;
    for (int i = 0; i < 40000; i++) {
        char num[48], text[128], tree[160];
        struct ig_rowset a = {0}, b = {0};
        struct ig_codec_error ea = {0, ""}, eb = {0, ""};
        uint64_t r;
        int len = 0, nd, dot, ra, rb, n;
        char *copy;

        x += 0x9e3779b97f4a7c15ull;
        r = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
        r ^= r >> 29;
        nd = 1 + (int)(r % 10);
        dot = (int)((r >> 8) % (unsigned)(nd + 3)) - 1; /* -1, past nd: none */
        if (r & (1ull << 20))
            num[len++] = '-';
        for (int d = 0; d < nd; d++) {
            if (d == dot)
                num[len++] = '.';
            num[len++] = (char)('0' + (r >> (24 + 3 * d % 30)) % 10);
        }
        if (dot == nd)
            num[len++] = '.';
        if (r & (1ull << 21))
            len += snprintf(num + len, 16, "%s%d", (r & (1ull << 22)) ? "e" : "E-",
                            (int)((r >> 56) % 30));
        num[len] = '\0';
        if (r & (1ull << 23))
            n = snprintf(text, sizeof(text), "[%s, 1, 2, 3, 4, 5, 6, 7]", num);
        else
            n = snprintf(text, sizeof(text), "[1,2,3,4,5,6,7,%s]", num);
        snprintf(tree, sizeof(tree), "{\"features\":%s}", text);
        copy = malloc((size_t)n);
        assert_non_null(copy);
        memcpy(copy, text, (size_t)n);
        ra = ig_codec_decode(IG_FMT_JSONL, copy, (size_t)n, 8, 10, &a, &ea);
        rb = ig_codec_decode(IG_FMT_JSONL, tree, strlen(tree), 8, 10, &b, &eb);
        if (ra != rb || (ra == 0 && memcmp(a.features, b.features, 8 * sizeof(double)) != 0))
            fail_msg("%s: %d (%s) vs %d (%s)", text, ra, ea.msg, rb, eb.msg);
        ig_rowset_clear(&a);
        ig_rowset_clear(&b);
        free(copy);
    }
}

/*
 * The same, a line's numbers read in the one pass of a dense line (the
 * line has bytes to spare after it: more lines follow): random numbers
 * of every form (1 to 9 digits, a dot anywhere or none, an exponent or
 * not, a sign or not, leading zeros, a stray byte) in every place of an
 * 8-number row, with ',' or ', ' between them, against jansson's tree.
 */
static void test_jsonl_line_pass_as_jansson(void **state)
{
    static const char *const odd[] = {"1.", ".5", "-", "00", "01", "-0", "-0.0", "0e5", "-0e5",
                                      "1e", "1e+", "1e999", "1E-22", "1e23", "1.5.5", "1a",
                                      "12345678", "123456789", "0.1234567", "1234567.8"};
    uint64_t x = 1806;

    (void)state;
    for (int i = 0; i < 60000; i++) {
        char text[256], tree[300], body[600];
        struct ig_rowset a = {0}, b = {0};
        struct ig_codec_error ea = {0, ""}, eb = {0, ""};
        int n = 0, ra, rb, bl;
        uint64_t r;

        text[n++] = '[';
        for (int f = 0; f < 8; f++) {
            x += 0x9e3779b97f4a7c15ull;
            r = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
            r ^= r >> 29;
            if (f > 0)
                n += snprintf(text + n, 4, "%s", (r & 0xff) == 7 ? ", " : ",");
            if ((r >> 8) % 16 == 0) {
                n += snprintf(text + n, 16, "%s", odd[(r >> 12) % IG_ARRAY_SIZE(odd)]);
            } else {
                int nd = 1 + (int)((r >> 12) % 9), dot = (int)((r >> 16) % (unsigned)(nd + 2)) - 1;

                if (r & (1ull << 20))
                    text[n++] = '-';
                for (int d = 0; d < nd; d++) {
                    if (d == dot && d > 0)
                        text[n++] = '.';
                    text[n++] = (char)('0' + (r >> (24 + 3 * d % 30)) % 10);
                }
                if (r & (1ull << 21) && (r >> 22) % 4 == 0)
                    n += snprintf(text + n, 16, "%s%d", (r & (1ull << 23)) ? "e" : "E-",
                                  (int)((r >> 56) % 30));
            }
        }
        text[n++] = ']';
        text[n] = '\0';
        snprintf(tree, sizeof(tree), "{\"features\":%s}", text);
        bl = snprintf(body, sizeof(body), "%s%s\n[1,2,3,4,5,6,7,8]\n[1,2,3,4,5,6,7,8]\n", text,
                      (r >> 40) % 4 == 0 ? " \r" : "");
        ra = ig_codec_decode(IG_FMT_JSONL, body, (size_t)bl, 8, 10, &a, &ea);
        rb = ig_codec_decode(IG_FMT_JSONL, tree, strlen(tree), 8, 10, &b, &eb);
        if (ra != rb || (ra == 0 && memcmp(a.features, b.features, 8 * sizeof(double)) != 0) ||
            (ra != 0 && strcmp(ea.msg, eb.msg) != 0 && strstr(eb.msg, "invalid JSON") == NULL))
            fail_msg("%s: %d (%s) vs %d (%s)", text, ra, ea.msg, rb, eb.msg);
        if (ra == 0) {
            assert_int_equal(a.nrows, 3);
            expect_row(&a, 0, 0, (uint32_t)(strchr(body, '\n') - body) -
                                     ((r >> 40) % 4 == 0 ? 1u : 0u));
        }
        ig_rowset_clear(&a);
        ig_rowset_clear(&b);
    }
}

/* Every prefix of tricky bodies: no crash, no read past len (ASan). */
static void test_all_prefixes(void **state)
{
    const char *srcs[] = {
        "{\"x\":\"a\\\"]\",\"instances\" :[ {\"features\":{\"keys\":[1],\"shape\":[2],"
        "\"values\":[3]}}, [1,2] ,{\"data\":{\"features\":[4,5]}}]}",
        "[[1,2],[3,4]]",
        "[1,2]\n{\"features\":[3,4]}\r\n\n\"\\u00e9\"",
    };

    (void)state;
    for (size_t k = 0; k < IG_ARRAY_SIZE(srcs); k++) {
        size_t n = strlen(srcs[k]);

        for (size_t len = 0; len <= n; len++) {
            for (int f = IG_FMT_JSONL; f <= IG_FMT_JSON; f++) {
                for (uint32_t dim = 0; dim < 3; dim++) {
                    char *copy = malloc(len ? len : 1);
                    struct ig_rowset rs = {0};
                    struct ig_codec_error err = {0, ""};
                    int rv;

                    memcpy(copy, srcs[k], len);
                    rv = ig_codec_decode((enum ig_format)f, copy, len, dim, 100, &rs, &err);
                    if (rv == 0) {
                        assert_true(rs.nrows > 0);
                        for (uint32_t i = 0; i < rs.nrows; i++)
                            assert_true((size_t)rs.rows[i].off + rs.rows[i].len <= len);
                    } else {
                        assert_int_equal(rv, IG_ERR_INVALID);
                        assert_true(err.msg[0] != '\0');
                    }
                    ig_rowset_clear(&rs);
                    free(copy);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_instances_forms),
        cmocka_unit_test(test_json_sparse),
        cmocka_unit_test(test_json_single_object),
        cmocka_unit_test(test_json_bare_arrays),
        cmocka_unit_test(test_json_slices_tricky),
        cmocka_unit_test(test_json_escaped_key),
        cmocka_unit_test(test_json_dim0_any_value),
        cmocka_unit_test(test_json_values_exact),
        cmocka_unit_test(test_json_err_syntax),
        cmocka_unit_test(test_json_err_shape),
        cmocka_unit_test(test_json_err_rows),
        cmocka_unit_test(test_json_err_sparse),
        cmocka_unit_test(test_json_big_integers),
        cmocka_unit_test(test_json_sparse_amplification),
        cmocka_unit_test(test_json_sparse_keys_reset),
        cmocka_unit_test(test_json_depth_cap),
        cmocka_unit_test(test_json_max_rows),
        cmocka_unit_test(test_json_many_rows),
        cmocka_unit_test(test_json_peak_memory),
        cmocka_unit_test(test_json_max_rows_stops_early),
        cmocka_unit_test(test_json_huge_element),
        cmocka_unit_test(test_json_big_rows_pass),
        cmocka_unit_test(test_json_errors_as_whole_body),
        cmocka_unit_test(test_json_top_level_keys),
        cmocka_unit_test(test_json_bom_nul_offset),
        cmocka_unit_test(test_jsonl_forms),
        cmocka_unit_test(test_jsonl_terminators),
        cmocka_unit_test(test_jsonl_errors),
        cmocka_unit_test(test_jsonl_dense_numbers_as_jansson),
        cmocka_unit_test(test_jsonl_random_numbers_as_jansson),
        cmocka_unit_test(test_jsonl_line_pass_as_jansson),
        cmocka_unit_test(test_all_prefixes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

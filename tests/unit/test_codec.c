/*
 * test_codec.c - content negotiation, the decode entry point, the rowset
 * builder and the response encoder. CSV and JSON decoding are in
 * test_codec_csv.c and test_codec_json.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "infergate/budget.h"
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"

#include "codec_test.h"

/* ---- ig_codec_format_parse ---- */

static void expect_format(const char *v, enum ig_format dflt, enum ig_format want)
{
    enum ig_format got = (enum ig_format)99;

    assert_int_equal(ig_codec_format_parse(v, dflt, &got), 0);
    assert_int_equal(got, want);
}

static void expect_format_unsupported(const char *v)
{
    enum ig_format got = (enum ig_format)99;

    assert_int_equal(ig_codec_format_parse(v, IG_FMT_CSV, &got), IG_ERR_UNSUPPORTED);
    assert_int_equal(got, 99); /* untouched */
}

static void test_format_known(void **state)
{
    (void)state;
    expect_format("text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_format("application/jsonlines", IG_FMT_CSV, IG_FMT_JSONL);
    expect_format("application/jsonl", IG_FMT_CSV, IG_FMT_JSONL);
    expect_format("application/x-jsonlines", IG_FMT_CSV, IG_FMT_JSONL);
    expect_format("application/json", IG_FMT_CSV, IG_FMT_JSON);
    expect_format("application/x-recordio-protobuf", IG_FMT_CSV, IG_FMT_RECORDIO);
    expect_format("text/libsvm", IG_FMT_CSV, IG_FMT_LIBSVM);
    expect_format("text/x-libsvm", IG_FMT_CSV, IG_FMT_LIBSVM);
}

static void test_format_case_params_spaces(void **state)
{
    (void)state;
    expect_format("TEXT/CSV", IG_FMT_JSON, IG_FMT_CSV);
    expect_format("Application/JSON", IG_FMT_CSV, IG_FMT_JSON);
    expect_format("text/csv;label_size=0", IG_FMT_JSON, IG_FMT_CSV);
    expect_format("text/csv; charset=utf-8", IG_FMT_JSON, IG_FMT_CSV);
    expect_format("  application/json ; charset=UTF-8 ", IG_FMT_CSV, IG_FMT_JSON);
    expect_format("\tapplication/jsonlines\t", IG_FMT_CSV, IG_FMT_JSONL);
}

static void test_format_default(void **state)
{
    (void)state;
    expect_format(NULL, IG_FMT_JSONL, IG_FMT_JSONL);
    expect_format("", IG_FMT_JSON, IG_FMT_JSON);
    expect_format("   ", IG_FMT_CSV, IG_FMT_CSV);
}

static void test_format_unknown(void **state)
{
    (void)state;
    expect_format_unsupported("application/x-recordio");
    expect_format_unsupported("text/libsvmx");
    expect_format_unsupported("text/csvx");
    expect_format_unsupported("text/cs");
    expect_format_unsupported("application/json-seq");
    expect_format_unsupported("*/*");
    expect_format_unsupported("text/csv, application/json");
    expect_format_unsupported("; charset=utf-8");
    expect_format_unsupported("garbage");
}

/* ---- ig_codec_accept_parse ---- */

static void expect_accept(const char *v, enum ig_format dflt, enum ig_format want)
{
    enum ig_format got = (enum ig_format)99;

    assert_int_equal(ig_codec_accept_parse(v, dflt, &got), 0);
    assert_int_equal(got, want);
}

static void test_accept_single(void **state)
{
    (void)state;
    expect_accept("text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/jsonlines", IG_FMT_JSON, IG_FMT_JSONL);
    expect_accept("APPLICATION/JSON;q=0.9", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept(NULL, IG_FMT_JSONL, IG_FMT_JSONL);
    expect_accept("", IG_FMT_JSON, IG_FMT_JSON);
    expect_accept(" ", IG_FMT_CSV, IG_FMT_CSV);
}

static void test_accept_list(void **state)
{
    (void)state;
    expect_accept("text/html, application/json", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("application/xml,text/csv;q=0.5, application/json", IG_FMT_JSON, IG_FMT_JSON);
    expect_accept("application/xml,text/csv;q=0.5, application/json", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/x-recordio , application/jsonlines", IG_FMT_CSV,
                  IG_FMT_JSONL);
    expect_accept(",, text/csv", IG_FMT_JSON, IG_FMT_CSV);
    /* q=0 means "not acceptable": skipped. */
    expect_accept("application/json;q=0, text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/json; q=0.000, text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/json;q=0.01", IG_FMT_CSV, IG_FMT_JSON);
}

/* The highest q decides (RFC 9110 section 12.5.1), the first of equals. */
static void test_accept_q(void **state)
{
    (void)state;
    expect_accept("application/json;q=0.01, text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("text/csv;q=0.5, application/json;q=0.8", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/csv;q=0.8, application/json;q=0.8", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("text/csv;q=0.801, application/json;q=0.8", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("text/csv;q=0.8, application/json;q=0.8001", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("text/csv ; q = 0.3 , application/jsonlines;q=0.31", IG_FMT_JSON,
                  IG_FMT_JSONL);
    expect_accept("text/csv;q=0.9, */*", IG_FMT_JSON, IG_FMT_JSON);
    expect_accept("*/*;q=0.1, text/csv", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("text/html, application/*;q=0.2, text/*;q=0.3", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/json;q=1.000, text/csv", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/html;q=1, text/csv;q=0.1", IG_FMT_JSON, IG_FMT_CSV);
    /* not a qvalue: as if there were none (1) */
    expect_accept("text/csv;q=0.5, application/json;q=2", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/csv;q=0.5, application/json;q=1.5", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/csv;q=0.5, application/json;q=abc", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/csv;q=0.5, application/json;q=", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("application/json;q=0.5;q=0.9, text/csv;q=0.7", IG_FMT_JSON, IG_FMT_CSV);
    /* a q past three decimals that is not 0: the least acceptable, not refused */
    expect_accept("application/json;q=0.0001", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("application/json;q=0.0001, text/csv;q=0.002", IG_FMT_JSON, IG_FMT_CSV);
    /* a quoted parameter value holds no element or parameter end */
    expect_accept("application/json;q=0.5, text/csv;x=\"a;q=0,b\"", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/json;q=0.5, text/csv;x=\"a\\\";q=0,\"", IG_FMT_JSON,
                  IG_FMT_CSV);
    expect_accept("text/csv;x=\",application/json\";q=0.4, application/json;q=0.5",
                  IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/csv;x=\"a\";q=0.4, application/json;q=0.5", IG_FMT_CSV, IG_FMT_JSON);
    /* a quote left open runs to the end */
    expect_accept("application/json;q=0.5, text/csv;x=\"a;q=0, text/csv;q=0", IG_FMT_JSON,
                  IG_FMT_CSV);
}

/* A format's q is that of the most specific range naming it. */
static void test_accept_specific(void **state)
{
    enum ig_format got = IG_FMT_JSONL;

    (void)state;
    /* refused by name: a wildcard does not bring it back */
    expect_accept("text/csv;q=0, */*", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("application/json;q=0, */*", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/json;q=0, application/*", IG_FMT_JSON, IG_FMT_JSONL);
    /* named with a low q: the wildcard's higher q goes to another format */
    expect_accept("*/*;q=0.9, text/csv;q=0.1", IG_FMT_CSV, IG_FMT_JSON);
    expect_accept("text/*;q=0.9, */*;q=0.5", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/*;q=0.2, */*;q=0.8", IG_FMT_JSON, IG_FMT_CSV);
    /* aliases of one format: the highest q of them */
    expect_accept("application/jsonl;q=0.2, text/csv;q=0.5, application/jsonlines;q=0.9",
                  IG_FMT_JSON, IG_FMT_JSONL);
    /* libsvm is no answer a wildcard picks */
    expect_accept("text/*", IG_FMT_JSON, IG_FMT_CSV);
    assert_int_equal(ig_codec_accept_parse("text/csv;q=0, text/*", IG_FMT_JSON, &got),
                     IG_ERR_UNSUPPORTED);
    assert_int_equal(got, IG_FMT_JSONL);
}

static void test_accept_wildcards(void **state)
{
    (void)state;
    expect_accept("*/*", IG_FMT_JSON, IG_FMT_JSON);
    expect_accept("*/*", IG_FMT_CSV, IG_FMT_CSV);
    expect_accept("text/html, */*;q=0.8", IG_FMT_JSONL, IG_FMT_JSONL);
    /* Of equal q, the first known type or wildcard decides. */
    expect_accept("*/*, text/csv", IG_FMT_JSON, IG_FMT_JSON);
    expect_accept("application/json, */*", IG_FMT_CSV, IG_FMT_JSON);
    /* A range selects the default only when the default is in it. */
    expect_accept("text/*", IG_FMT_CSV, IG_FMT_CSV);
    expect_accept("text/*", IG_FMT_JSON, IG_FMT_CSV);
    expect_accept("application/*", IG_FMT_JSONL, IG_FMT_JSONL);
    expect_accept("application/*", IG_FMT_JSON, IG_FMT_JSON);
    expect_accept("application/*", IG_FMT_CSV, IG_FMT_JSON);
}

static void test_accept_unsupported(void **state)
{
    enum ig_format got = IG_FMT_JSONL;

    (void)state;
    assert_int_equal(ig_codec_accept_parse("text/html", IG_FMT_JSON, &got), IG_ERR_UNSUPPORTED);
    assert_int_equal(ig_codec_accept_parse("image/png, text/plain", IG_FMT_JSON, &got),
                     IG_ERR_UNSUPPORTED);
    assert_int_equal(ig_codec_accept_parse("text/csv;q=0", IG_FMT_JSON, &got),
                     IG_ERR_UNSUPPORTED);
    assert_int_equal(ig_codec_accept_parse("image/*", IG_FMT_JSON, &got), IG_ERR_UNSUPPORTED);
    assert_int_equal(ig_codec_accept_parse(";q=1", IG_FMT_JSON, &got), IG_ERR_UNSUPPORTED);
    assert_int_equal(got, IG_FMT_JSONL); /* untouched */
}

static void test_format_mime(void **state)
{
    (void)state;
    assert_string_equal(ig_codec_format_mime(IG_FMT_CSV), "text/csv");
    assert_string_equal(ig_codec_format_mime(IG_FMT_JSONL), "application/jsonlines");
    assert_string_equal(ig_codec_format_mime(IG_FMT_JSON), "application/json");
    assert_string_equal(ig_codec_format_mime(IG_FMT_COUNT), "application/octet-stream");
    /* Every name parses back to its format. */
    for (int f = 0; f < IG_FMT_COUNT; f++)
        expect_format(ig_codec_format_mime((enum ig_format)f), IG_FMT_COUNT, (enum ig_format)f);
}

/* ---- ig_codec_decode entry point ---- */

static void test_decode_entry_errors(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    const char *body = "1\n";

    (void)state;
    for (int f = 0; f < IG_FMT_COUNT; f++) {
        assert_int_equal(ig_codec_decode((enum ig_format)f, body, 0, 0, 10, &rs, &err),
                         IG_ERR_INVALID);
        assert_int_equal(err.row, 0);
        assert_string_equal(err.msg, "Request body is empty.");
        assert_ptr_equal(rs.body, body);
        assert_int_equal(rs.body_len, 0);
        assert_null(rs.rows);
        assert_int_equal(rs.nrows, 0);
    }
    assert_int_equal(ig_codec_decode(IG_FMT_COUNT, body, 2, 0, 10, &rs, &err),
                     IG_ERR_UNSUPPORTED);
    assert_string_equal(err.msg, "Unsupported request format.");
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, NULL, 2, 0, 10, &rs, &err), IG_ERR_INVALID);
    assert_string_equal(err.msg, "Request body is missing.");
    /* A NULL err is allowed. */
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 0, 0, 10, &rs, NULL), IG_ERR_INVALID);
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 2, 1, 10, &rs, NULL), 0);
    assert_int_equal(rs.nrows, 1);
    assert_true(rs.features[0] == 1.0);
    ig_rowset_clear(&rs);
    assert_null(rs.rows);
    assert_null(rs.features);
    assert_null(rs.body);
    ig_rowset_clear(&rs); /* twice is fine */
}

static void test_decode_sets_body_and_dim(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    const char *body = "1,2\n";

    (void)state;
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 4, 0, 10, &rs, &err), 0);
    assert_ptr_equal(rs.body, body);
    assert_int_equal(rs.body_len, 4);
    assert_int_equal(rs.dim, 0);
    assert_null(rs.features);
    ig_rowset_clear(&rs);
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, body, 4, 2, 10, &rs, &err), 0);
    assert_int_equal(rs.dim, 2);
    assert_non_null(rs.features);
    ig_rowset_clear(&rs);
}

/* A UTF-8 byte-order mark is skipped in every format; rows still index
 * the body as received. */
static void test_decode_bom(void **state)
{
    static const struct {
        enum ig_format fmt;
        const char *body;
        uint32_t rows, off;
    } cases[] = {
        {IG_FMT_CSV, "\xef\xbb\xbf" "1,2\n3,4\n", 2, 3},
        {IG_FMT_JSONL, "\xef\xbb\xbf" "[1,2]\n[3,4]\n", 2, 3},
        {IG_FMT_JSON, "\xef\xbb\xbf" "[[1,2],[3,4]]", 2, 4},
        {IG_FMT_JSON, "\xef\xbb\xbf" "{\"instances\":[[1,2],[3,4]]}", 2, 17},
    };
    static const char *const first[] = {"1,2", "[1,2]", "[1,2]", "[1,2]"};
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(cases); i++) {
        const char *body = cases[i].body;

        assert_int_equal(ig_codec_decode(cases[i].fmt, body, strlen(body), 2, 10, &rs, &err), 0);
        assert_ptr_equal(rs.body, body);
        assert_int_equal(rs.body_len, strlen(body));
        assert_int_equal(rs.nrows, cases[i].rows);
        assert_int_equal(rs.rows[0].off, cases[i].off);
        assert_int_equal(rs.rows[0].len, strlen(first[i]));
        assert_memory_equal(body + rs.rows[0].off, first[i], strlen(first[i]));
        assert_true(rs.features[0] == 1.0 && rs.features[3] == 4.0);
        ig_rowset_clear(&rs);
    }
    /* dim 0 (forwarded rows): the same slices */
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, "\xef\xbb\xbf" "a\nb\n", 7, 0, 10, &rs, &err), 0);
    assert_int_equal(rs.rows[0].off, 3);
    assert_int_equal(rs.rows[0].len, 1);
    assert_int_equal(rs.rows[1].off, 5);
    ig_rowset_clear(&rs);
    /* only a mark: nothing to decode; a mark further in is content */
    dec_fail_n(IG_FMT_CSV, "\xef\xbb\xbf", 3, 2, 10, IG_ERR_INVALID, 0, "Request body is empty.");
    dec_fail_n(IG_FMT_CSV, "1,2\n\xef\xbb\xbf" "3,4\n", 11, 2, 10, IG_ERR_INVALID, 2,
               "Row 2, column 1: '?" "?" "?3' is not a number.");
    dec_fail_n(IG_FMT_JSON, "\xef\xbb\xbf\xef\xbb\xbf[1,2]", 11, 2, 10, IG_ERR_INVALID, 0,
               "Request body is not valid JSON: invalid token near '?" "?" "?' at line 1 column 1.");
}

/* A gzip body (no Content-Encoding is taken) is named as such, whatever
 * the format. */
static void test_decode_gzip(void **state)
{
    /* gzip of "1,2\n" */
    static const char gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x33\xd4\x31\xe2\x02\x00"
                             "\x7d\x31\xd6\x0c\x04\x00\x00\x00";
    static const char msg[] = "The request body looks gzip-compressed (it starts with 1F 8B); "
                              "send it uncompressed: Content-Encoding is not supported.";

    (void)state;
    assert_string_equal(ig_codec_msg_gzip, msg);
    for (int f = 0; f < IG_FMT_COUNT; f++) {
        dec_fail_n((enum ig_format)f, gz, sizeof(gz) - 1, 2, 10, IG_ERR_INVALID, 0, msg);
        dec_fail_n((enum ig_format)f, gz, sizeof(gz) - 1, 0, 10, IG_ERR_INVALID, 0, msg);
        dec_fail_n((enum ig_format)f, gz, 2, 2, 10, IG_ERR_INVALID, 0, msg);
    }
    /* 1F alone is not the magic */
    dec_fail_n(IG_FMT_CSV, "\x1f" "1,2\n", 5, 2, 10, IG_ERR_INVALID, 1,
               "Row 1, column 1: '?1' is not a number.");
}

/* ---- ig_rowset_push ---- */

static void test_rowset_push_growth(void **state)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    memset(&rs, 0, sizeof(rs));
    rs.dim = 3;
    for (uint32_t i = 0; i < 100; i++) {
        double *f = NULL;

        assert_int_equal(ig_rowset_push(&rs, 100, i * 7, &f, &err), 0);
        assert_int_equal(rs.nrows, i + 1);
        assert_ptr_equal(f, rs.features + (size_t)i * 3);
        assert_true(f[0] == 0.0 && f[1] == 0.0 && f[2] == 0.0);
        f[0] = i;
        f[2] = -(double)i;
        rs.rows[i].len = i;
    }
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(rs.rows[i].off, i * 7);
        assert_int_equal(rs.rows[i].len, i);
        assert_true(rs.features[i * 3] == i);
        assert_true(rs.features[i * 3 + 1] == 0.0);
        assert_true(rs.features[i * 3 + 2] == -(double)i);
    }
    assert_int_equal(ig_rowset_push(&rs, 100, 0, NULL, &err), IG_ERR_TOOBIG);
    assert_int_equal(err.row, 0);
    assert_string_equal(err.msg, "Request has more than 100 rows.");
    assert_int_equal(rs.nrows, 100);
    ig_rowset_clear(&rs);
}

/* Growth is charged before it is allocated: a refused charge leaves the
 * rowset as it was, and the hold always equals what is allocated. */
static void test_rowset_push_budget(void **state)
{
    struct ig_budget *b = ig_budget_new(2000, NULL);
    struct ig_rowset rs;
    struct ig_codec_error err;
    double *f;

    (void)state;
    memset(&rs, 0, sizeof(rs));
    rs.dim = 3;
    rs.budget = b;
    /* 16 rows: 16 * 8 + 16 * 3 * 8 = 512 bytes; 32 rows: 1024; 64: 2048 */
    assert_int_equal(ig_rowset_push(&rs, 1000, 0, &f, &err), 0);
    assert_int_equal(rs.hold.n, 512);
    assert_int_equal(ig_budget_held(b), 512);
    for (uint32_t i = 1; i < 32; i++)
        assert_int_equal(ig_rowset_push(&rs, 1000, i, &f, &err), 0);
    assert_int_equal(ig_budget_held(b), 1024);
    assert_int_equal(ig_rowset_push(&rs, 1000, 32, &f, &err), IG_ERR_FULL);
    assert_int_equal(err.row, 33);
    assert_string_equal(err.msg, "Row 33: the decoded features of this request do not fit in "
                                 "the gateway's memory budget; retry later or send fewer rows.");
    assert_int_equal(rs.nrows, 32);
    assert_int_equal(ig_budget_held(b), 1024);
    assert_int_equal(ig_budget_refused(b), 1);
    ig_rowset_clear(&rs);
    assert_int_equal(ig_budget_held(b), 0);
    assert_null(rs.budget);
    assert_int_equal(rs.hold.n, 0);
    /* no budget: no accounting, no limit */
    rs.dim = 3;
    for (uint32_t i = 0; i < 64; i++)
        assert_int_equal(ig_rowset_push(&rs, 1000, i, &f, &err), 0);
    assert_int_equal(rs.hold.n, 0);
    ig_rowset_clear(&rs);
    ig_budget_unref(b);
}

/* ig_codec_decode keeps the caller's budget, and on failure rs owns and
 * holds nothing. */
static void test_decode_budget(void **state)
{
    struct ig_budget *b = ig_budget_new(1u << 20, NULL);
    struct ig_rowset rs = {0};
    struct ig_codec_error err;

    (void)state;
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, "1,2\n3,4\n", 8, 2, 10, &rs, &err), 0);
    assert_ptr_equal(rs.budget, b);
    /* room for 5 rows: all that 8 bytes can hold, not 16 */
    assert_int_equal(rs.cap, 5);
    assert_int_equal(ig_budget_held(b), 5 * 8 + 5 * 2 * 8);
    ig_rowset_clear(&rs);
    assert_int_equal(ig_budget_held(b), 0);
    rs.budget = b;
    assert_int_equal(ig_codec_decode(IG_FMT_CSV, "1,2\n3,x\n", 8, 2, 10, &rs, &err),
                     IG_ERR_INVALID);
    assert_ptr_equal(rs.budget, b);
    assert_null(rs.rows);
    assert_int_equal(rs.hold.n, 0);
    assert_int_equal(ig_budget_held(b), 0);
    ig_rowset_clear(&rs);
    ig_budget_unref(b);
}

static void test_rowset_push_no_dim(void **state)
{
    struct ig_rowset rs = {0};
    double *f = (double *)&rs;

    (void)state;
    memset(&rs, 0, sizeof(rs));
    assert_int_equal(ig_rowset_push(&rs, 0, 0, NULL, NULL), IG_ERR_TOOBIG);
    assert_int_equal(ig_rowset_push(&rs, 2, 5, &f, NULL), 0);
    assert_null(f);
    assert_null(rs.features);
    assert_int_equal(rs.rows[0].off, 5);
    ig_rowset_clear(&rs);
}

static void test_error_set_sanitizes(void **state)
{
    struct ig_codec_error err;

    (void)state;
    ig_codec_error_set(&err, 7, "Row %u: '%s'.", 7u, "a\x01\xff\"b");
    assert_int_equal(err.row, 7);
    assert_string_equal(err.msg, "Row 7: 'a??\"b'.");
    ig_codec_error_set(NULL, 1, "ignored");
}

static void test_error_reason(void **state)
{
    struct ig_codec_error err;

    (void)state;
    ig_codec_error_set(&err, 12, "Row 12: empty row.");
    assert_string_equal(ig_codec_error_reason(&err), "empty row.");
    ig_codec_error_set(&err, 12, "Row 1: another row's number stays.");
    assert_string_equal(ig_codec_error_reason(&err), "Row 1: another row's number stays.");
    ig_codec_error_set(&err, 0, "The body is empty.");
    assert_string_equal(ig_codec_error_reason(&err), "The body is empty.");
}

/* ---- ig_codec_encode_response ---- */

static const char enc_base[] = "1.0,3.0|{\"score\":0.5}|2.0,4.0|{\"score\":1}";
static const struct ig_pred enc_csv[] = {{0, 7}, {22, 7}};
static const struct ig_pred enc_json[] = {{8, 13}, {30, 11}};

static void expect_encoded(enum ig_format fmt, const char *key, const struct ig_pred *preds,
                           size_t n, const char *want)
{
    struct ig_buf b;

    ig_buf_init(&b, 1024);
    assert_int_equal(ig_codec_encode_response(fmt, key, enc_base, preds, n, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    ig_buf_clear(&b);
}

static void test_encode_formats(void **state)
{
    (void)state;
    expect_encoded(IG_FMT_CSV, NULL, enc_csv, 2, "1.0,3.0\n2.0,4.0\n");
    expect_encoded(IG_FMT_JSONL, NULL, enc_json, 2, "{\"score\":0.5}\n{\"score\":1}\n");
    expect_encoded(IG_FMT_JSON, "predictions", enc_json, 2,
                   "{\"predictions\":[{\"score\":0.5},{\"score\":1}]}");
    expect_encoded(IG_FMT_JSON, "projections", enc_json, 1, "{\"projections\":[{\"score\":0.5}]}");
    expect_encoded(IG_FMT_JSON, NULL, enc_json + 1, 1, "{\"predictions\":[{\"score\":1}]}");
    expect_encoded(IG_FMT_JSON, "a\"b\\c\n", enc_json, 1,
                   "{\"a\\\"b\\\\c\\u000a\":[{\"score\":0.5}]}");
}

static void test_encode_empty(void **state)
{
    struct ig_buf b;

    (void)state;
    expect_encoded(IG_FMT_JSON, "predictions", NULL, 0, "{\"predictions\":[]}");
    ig_buf_init(&b, 1024);
    assert_int_equal(ig_codec_encode_response(IG_FMT_CSV, NULL, NULL, NULL, 0, &b), 0);
    assert_int_equal(ig_codec_encode_response(IG_FMT_JSONL, NULL, NULL, NULL, 0, &b), 0);
    assert_int_equal(b.len, 0);
    ig_buf_clear(&b);
}

static void test_encode_appends(void **state)
{
    struct ig_buf b;

    (void)state;
    ig_buf_init(&b, 1024);
    assert_int_equal(ig_buf_append_str(&b, "x"), 0);
    assert_int_equal(ig_codec_encode_response(IG_FMT_CSV, NULL, enc_base, enc_csv, 1, &b), 0);
    assert_int_equal(ig_codec_encode_response(IG_FMT_CSV, NULL, enc_base, enc_csv + 1, 1, &b),
                     0);
    assert_string_equal(b.data, "x1.0,3.0\n2.0,4.0\n");
    assert_int_equal(ig_codec_encode_response(IG_FMT_COUNT, NULL, enc_base, enc_csv, 1, &b),
                     IG_ERR_UNSUPPORTED);
    assert_string_equal(b.data, "x1.0,3.0\n2.0,4.0\n");
    ig_buf_clear(&b);
}

static void test_encode_cap(void **state)
{
    struct ig_buf b;
    /* "{"predictions":[{"score":0.5},{"score":1}]}" is 43 bytes. */
    const char *full = "{\"predictions\":[{\"score\":0.5},{\"score\":1}]}";

    (void)state;
    assert_int_equal(strlen(full), 43);
    ig_buf_init(&b, 45);
    assert_int_equal(ig_buf_append_str(&b, "ab"), 0);
    assert_int_equal(ig_codec_encode_response(IG_FMT_JSON, NULL, enc_base, enc_json, 2, &b), 0);
    assert_int_equal(b.len, 45);
    ig_buf_clear(&b);

    ig_buf_init(&b, 44);
    assert_int_equal(ig_buf_append_str(&b, "ab"), 0);
    assert_int_equal(ig_codec_encode_response(IG_FMT_JSON, NULL, enc_base, enc_json, 2, &b),
                     IG_ERR_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    ig_buf_clear(&b);

    /* CSV: 16 bytes fit in 16, not in 15. */
    ig_buf_init(&b, 15);
    assert_int_equal(ig_codec_encode_response(IG_FMT_CSV, NULL, enc_base, enc_csv, 2, &b),
                     IG_ERR_TOOBIG);
    assert_int_equal(b.len, 0);
    ig_buf_clear(&b);
    ig_buf_init(&b, 16);
    assert_int_equal(ig_codec_encode_response(IG_FMT_CSV, NULL, enc_base, enc_csv, 2, &b), 0);
    assert_string_equal(b.data, "1.0,3.0\n2.0,4.0\n");
    ig_buf_clear(&b);
}


/* The CSV decoder's one-pass fast path for plain decimals gives exactly
 * what ig_parse_double gives, and leaves every other form (exponents,
 * spaces, 20 digits, 2^53 + 1, a lone CR, garbage) to the general path:
 * random fields, decoded as a one-column row, against ig_parse_double on
 * the same text. */
static void test_csv_fast_path_exact(void **state)
{
    static const char alphabet[] = "0123456789-+.eE \r";
    static const char *const fixed[] = {
        "-0", "0", ".5", "5.", "+1", "-.5", "9007199254740993", "9007199254740992.5",
        "1234567890123456789", "12345678901234567890", "0.0000000000000000000001",
        "0.00000000000000000000001", "1e5", "1.5E-3", " 2.5", "2.5 ", "1\r2", "1\r", "-", ".",
        "1.2.3", "--1", "3.14159265358979323846",
    };
    uint64_t seed = 42;

    (void)state;
    for (int t = 0; t < 20000 + (int)(sizeof(fixed) / sizeof(fixed[0])); t++) {
        char field[32];
        size_t n;
        struct ig_rowset rs;
        struct ig_codec_error err;
        double want = 0;
        int want_ok, rv;

        if (t < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
            n = strlen(fixed[t]);
            memcpy(field, fixed[t], n);
        } else {
            n = 1 + (size_t)((seed >> 33) % 24);
            for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                /* mostly digits, some signs, dots and others */
                field[i] = (seed >> 60) < 11 ? (char)('0' + (seed >> 40) % 10)
                                              : alphabet[(seed >> 40) % (sizeof(alphabet) - 1)];
            }
        }
        field[n] = '\0';
        {
            /* what the general path accepts: ig_parse_double of the field
             * without surrounding blanks, finite; CR only at the very end */
            const char *a = field, *e = field + n;

            while (a < e && (*a == ' ' || *a == '\t'))
                a++;
            if (e > a && e[-1] == '\r')
                e--;
            while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            want_ok = e > a && memchr(a, '\r', (size_t)(e - a)) == NULL &&
                      ig_parse_double(a, (size_t)(e - a), &want) == 0 && isfinite(want);
        }
        memset(&rs, 0, sizeof(rs));
        rv = ig_codec_decode(IG_FMT_CSV, field, n, 1, 4, &rs, &err);
        if (want_ok) {
            if (rv != 0 || rs.nrows != 1)
                fail_msg("field '%s': decode %d (%s), ig_parse_double ok", field, rv, err.msg);
            if (memcmp(&rs.features[0], &want, sizeof(want)) != 0)
                fail_msg("field '%s': %.17g, ig_parse_double %.17g", field, rs.features[0],
                         want);
        } else if (rv == 0) {
            fail_msg("field '%s': decoded %.17g, ig_parse_double refuses it", field,
                     rs.features[0]);
        }
        ig_rowset_clear(&rs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_format_case_params_spaces),
        cmocka_unit_test(test_format_default),
        cmocka_unit_test(test_format_unknown),
        cmocka_unit_test(test_accept_single),
        cmocka_unit_test(test_accept_list),
        cmocka_unit_test(test_accept_q),
        cmocka_unit_test(test_accept_specific),
        cmocka_unit_test(test_accept_wildcards),
        cmocka_unit_test(test_accept_unsupported),
        cmocka_unit_test(test_format_mime),
        cmocka_unit_test(test_decode_entry_errors),
        cmocka_unit_test(test_decode_sets_body_and_dim),
        cmocka_unit_test(test_decode_bom),
        cmocka_unit_test(test_decode_gzip),
        cmocka_unit_test(test_rowset_push_growth),
        cmocka_unit_test(test_rowset_push_no_dim),
        cmocka_unit_test(test_rowset_push_budget),
        cmocka_unit_test(test_decode_budget),
        cmocka_unit_test(test_error_set_sanitizes),
        cmocka_unit_test(test_error_reason),
        cmocka_unit_test(test_encode_formats),
        cmocka_unit_test(test_encode_empty),
        cmocka_unit_test(test_encode_appends),
        cmocka_unit_test(test_encode_cap),
        cmocka_unit_test(test_csv_fast_path_exact),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_jpath.c - the InputFilter / OutputFilter JSONPath subset: every
 * grammar form, parse errors with their exact messages, CSV and JSON
 * selection byte for byte, every error, the caps, and seeded random
 * inputs (no crash; the JSON check agrees with jansson; slices agree with
 * a Python-semantics reference).
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

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/jpath.h"

/* What an output buffer holds before each call: results are appended. */
#define PRE "pre|"

static struct ig_jpath *parse_ok(const char *expr)
{
    struct ig_jpath *p = NULL;
    char err[256] = "";
    int rv = ig_jpath_parse(expr, &p, err, sizeof(err));

    if (rv != 0)
        print_error("parse %s: %s\n", expr, err);
    assert_int_equal(rv, 0);
    assert_non_null(p);
    assert_string_equal(ig_jpath_expr(p), expr);
    return p;
}

static void parse_fail(const char *expr, const char *msg)
{
    struct ig_jpath *p = (struct ig_jpath *)&p; /* must stay untouched */
    char err[256] = "unset";

    assert_int_equal(ig_jpath_parse(expr, &p, err, sizeof(err)), IG_ERR_INVALID);
    assert_ptr_equal(p, (struct ig_jpath *)&p);
    assert_string_equal(err, msg);
}

typedef int (*apply_fn)(const struct ig_jpath *, const char *, size_t, struct ig_buf *, char *,
                        size_t);

/* Apply <expr> to <len> bytes of <rec>; require success and <want>
 * (<wlen> bytes) appended after PRE. */
static void apply_ok_n(apply_fn fn, const char *expr, const char *rec, size_t len,
                       const char *want, size_t wlen)
{
    struct ig_jpath *p = parse_ok(expr);
    struct ig_buf out;
    char err[256] = "";
    int rv;

    ig_buf_init(&out, 1 << 20);
    assert_int_equal(ig_buf_append_str(&out, PRE), 0);
    rv = fn(p, rec, len, &out, err, sizeof(err));
    if (rv != 0)
        print_error("%s on %.*s: %s\n", expr, (int)len, rec, err);
    assert_int_equal(rv, 0);
    assert_int_equal(out.len, strlen(PRE) + wlen);
    assert_memory_equal(out.data, PRE, strlen(PRE));
    if (wlen)
        assert_memory_equal(out.data + strlen(PRE), want, wlen);
    assert_int_equal(out.data[out.len], '\0');
    ig_buf_clear(&out);
    ig_jpath_free(p);
}

/* Applying fails with <code> and <msg>; the output is as it was. */
static void apply_fail_n(apply_fn fn, const char *expr, const char *rec, size_t len, int code,
                         const char *msg)
{
    struct ig_jpath *p = parse_ok(expr);
    struct ig_buf out;
    char err[256] = "unset";

    ig_buf_init(&out, 1 << 20);
    assert_int_equal(ig_buf_append_str(&out, PRE), 0);
    assert_int_equal(fn(p, rec, len, &out, err, sizeof(err)), code);
    assert_string_equal(err, msg);
    assert_string_equal(out.data, PRE);
    assert_int_equal(out.len, strlen(PRE));
    ig_buf_clear(&out);
    ig_jpath_free(p);
}

static void csv_ok(const char *expr, const char *rec, const char *want)
{
    apply_ok_n(ig_jpath_csv, expr, rec, strlen(rec), want, strlen(want));
}

static void csv_fail(const char *expr, const char *rec, const char *msg)
{
    apply_fail_n(ig_jpath_csv, expr, rec, strlen(rec), IG_ERR_INVALID, msg);
}

static void json_ok(const char *expr, const char *rec, const char *want)
{
    apply_ok_n(ig_jpath_json, expr, rec, strlen(rec), want, strlen(want));
}

static void json_fail(const char *expr, const char *rec, const char *msg)
{
    apply_fail_n(ig_jpath_json, expr, rec, strlen(rec), IG_ERR_INVALID, msg);
}

/* ---- parsing ---- */

static void test_parse_forms(void **state)
{
    static const struct {
        const char *expr;
        int members;
    } ok[] = {
        {"$", 0},
        {"$[0]", 0},
        {"$[12]", 0},
        {"$[-1]", 0},
        {"$[1:3]", 0},
        {"$[1:]", 0},
        {"$[:2]", 0},
        {"$[:]", 0},
        {"$[-2:-1]", 0},
        {"$[*]", 0},
        {"$[0,2]", 0},
        {"$[2,-1,0,0]", 0},
        {"$[0,5:]", 0},
        {"$[:1,-1:]", 0},
        {"$[0][1]", 0},
        {"$.features", 1},
        {"$.a.b", 1},
        {"$._x9.B_", 1},
        {"$.features[1:]", 1},
        {"$.a.b[0]", 1},
        {"$.a[0].b", 1},
        {"$['name']", 1},
        {"$[\"name\"]", 1},
        {"$['a b.c']", 1},
        {"$['']", 1},
        {"$['a'][\"b\"][0]", 1},
        {"$['id','SageMakerOutput']", 1},
        {"$.x['a',\"b\"]", 1},
    };

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(ok); i++) {
        struct ig_jpath *p = parse_ok(ok[i].expr);

        assert_int_equal(ig_jpath_has_members(p), ok[i].members);
        ig_jpath_free(p);
    }
    ig_jpath_free(NULL);
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_fail("", "Filter '' is empty: use $ for the whole record.");
    parse_fail("a", "Filter a: expected '$' at character 1.");
    parse_fail(" $", "Filter  $: expected '$' at character 1.");
    parse_fail("$ ", "Filter $ : expected '.' or '[' at character 2.");
    parse_fail("$x", "Filter $x: expected '.' or '[' at character 2.");
    parse_fail("$.", "Filter $.: expected a member name at the end.");
    parse_fail("$.1a", "Filter $.1a: expected a member name at character 3.");
    parse_fail("$..a", "Filter $..a: expected a member name at character 3.");
    parse_fail("$.*", "Filter $.*: expected a member name at character 3.");
    parse_fail("$.a-b", "Filter $.a-b: expected '.' or '[' at character 4.");
    parse_fail("$[", "Filter $[: expected an index, a slice or a quoted name at the end.");
    parse_fail("$[]", "Filter $[]: expected an index, a slice or a quoted name at character 3.");
    parse_fail("$[ 1]", "Filter $[ 1]: expected an index, a slice or a quoted name at character 3.");
    parse_fail("$[1 ]", "Filter $[1 ]: expected ':', ',' or ']' at character 4.");
    parse_fail("$[1", "Filter $[1: expected ':', ',' or ']' at the end.");
    parse_fail("$[1:x]", "Filter $[1:x]: expected a number, ',' or ']' at character 5.");
    parse_fail("$[1:2:1]", "Filter $[1:2:1]: expected ',' or ']' at character 6.");
    parse_fail("$[-]", "Filter $[-]: expected a digit at character 4.");
    parse_fail("$[1:-]", "Filter $[1:-]: expected a digit at character 6.");
    parse_fail("$[+1]", "Filter $[+1]: expected an index, a slice or a quoted name at character 3.");
    parse_fail("$[1,]", "Filter $[1,]: expected an index or a slice at character 5.");
    parse_fail("$[1, 2]", "Filter $[1, 2]: expected an index or a slice at character 5.");
    parse_fail("$[1,'a']", "Filter $[1,'a']: expected an index or a slice at character 5.");
    parse_fail("$['a',1]", "Filter $['a',1]: expected a quoted name at character 7.");
    parse_fail("$['a' ]", "Filter $['a' ]: expected ',' or ']' at character 6.");
    parse_fail("$['a", "Filter $['a: the quoted name at character 3 is not closed.");
    parse_fail("$['a\"]", "Filter $['a\"]: the quoted name at character 3 is not closed.");
    parse_fail("$['a','a']", "Filter $['a','a']: member a is named twice.");
    parse_fail("$[*", "Filter $[*: expected an index, a slice or a quoted name at character 3.");
    parse_fail("$[*,1]", "Filter $[*,1]: expected an index, a slice or a quoted name at character 3.");
    parse_fail("$[1:].a",
               "Filter $[1:].a: expected the end after a slice, union or list of names at character 6.");
    parse_fail("$[0,1][0]",
               "Filter $[0,1][0]: expected the end after a slice, union or list of names at character 7.");
    parse_fail("$[*][0]",
               "Filter $[*][0]: expected the end after a slice, union or list of names at character 5.");
    parse_fail("$['a','b'].c", "Filter $['a','b'].c: expected the end after a slice, union or list "
                               "of names at character 11.");
    /* Control bytes are shown as '?'. */
    parse_fail("$\t", "Filter $?: expected '.' or '[' at character 2.");
    /* No message buffer: still refused. */
    {
        struct ig_jpath *p = NULL;

        assert_int_equal(ig_jpath_parse("$x", &p, NULL, 0), IG_ERR_INVALID);
        assert_null(p);
    }
}

static void test_parse_indices(void **state)
{
    struct ig_jpath *p;

    (void)state;
    p = parse_ok("$[2147483647]");
    ig_jpath_free(p);
    p = parse_ok("$[-2147483648]");
    ig_jpath_free(p);
    p = parse_ok("$[-2147483648:2147483647]");
    ig_jpath_free(p);
    p = parse_ok("$[007]");
    ig_jpath_free(p);
    parse_fail("$[2147483648]", "Filter $[2147483648]: the index at character 3 does not fit in "
                                "32 bits.");
    parse_fail("$[-2147483649]", "Filter $[-2147483649]: the index at character 3 does not fit "
                                 "in 32 bits.");
    parse_fail("$[0:99999999999999999999999999999999]",
               "Filter $[0:99999999999999999999999999999999]: the index at character 5 does not "
               "fit in 32 bits.");
    parse_fail("$[1,2,-99999999999]", "Filter $[1,2,-99999999999]: the index at character 7 "
                                      "does not fit in 32 bits.");
}

static void test_parse_length(void **state)
{
    char e63[64], e64[65], msg[200];
    struct ig_jpath *p;

    (void)state;
    /* "$.aaaa...": 63 characters parse, 64 do not. */
    memset(e63, 'a', sizeof(e63));
    e63[0] = '$';
    e63[1] = '.';
    e63[63] = '\0';
    p = parse_ok(e63);
    assert_int_equal(ig_jpath_has_members(p), 1);
    ig_jpath_free(p);
    memcpy(e64, e63, 63);
    e64[63] = 'a';
    e64[64] = '\0';
    snprintf(msg, sizeof(msg), "Filter %s...: longer than 63 characters.", e63);
    parse_fail(e64, msg);
    /* The most steps 63 characters hold. */
    p = parse_ok("$.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a");
    ig_jpath_free(p);
    /* The most union members. */
    p = parse_ok("$[0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]");
    ig_jpath_free(p);
    /* A long expression shows only its first 63 characters. */
    {
        char big[1000];

        memset(big, '[', sizeof(big));
        big[0] = '$';
        big[999] = '\0';
        snprintf(msg, sizeof(msg), "Filter %.63s...: longer than 63 characters.", big);
        parse_fail(big, msg);
    }
}

/* ---- CSV ---- */

static void test_csv_select(void **state)
{
    const char *r = "a,b,c,d,e";

    (void)state;
    csv_ok("$", r, r);
    csv_ok("$[0]", r, "a");
    csv_ok("$[4]", r, "e");
    csv_ok("$[-1]", r, "e");
    csv_ok("$[-5]", r, "a");
    csv_ok("$[1:]", r, "b,c,d,e");
    csv_ok("$[:2]", r, "a,b");
    csv_ok("$[1:3]", r, "b,c");
    csv_ok("$[-2:]", r, "d,e");
    csv_ok("$[:-1]", r, "a,b,c,d");
    csv_ok("$[-100:100]", r, r);
    csv_ok("$[:]", r, r);
    csv_ok("$[*]", r, r);
    /* Empty slices: nothing appended. */
    csv_ok("$[3:1]", r, "");
    csv_ok("$[5:]", r, "");
    csv_ok("$[:-5]", r, "");
    csv_ok("$[2:2]", r, "");
    /* Unions keep their order and duplicates; slices inside. */
    csv_ok("$[2,0]", r, "c,a");
    csv_ok("$[0,0,-1]", r, "a,a,e");
    csv_ok("$[0,3:]", r, "a,d,e");
    csv_ok("$[3:,0]", r, "d,e,a");
    csv_ok("$[4:,0:0,1]", r, "e,b");
    csv_ok("$[9:,0:0]", r, "");
    csv_ok("$[-1,1:3,-5]", r, "e,b,c,a");
    /* Empty fields and an empty record (one empty column). */
    csv_ok("$[1]", "a,,c", "");
    csv_ok("$[1:]", "a,,", ",");
    csv_ok("$[0]", "", "");
    csv_ok("$[-1]", "", "");
    csv_ok("$[0,0]", "", ",");
    /* Bytes are bytes: UTF-8, CR, NUL inside fields. */
    csv_ok("$[1]", "x,h\xc3\xa9llo,y", "h\xc3\xa9llo");
    apply_ok_n(ig_jpath_csv, "$[1:]", "a,b\0c,d\re", 9, "b\0c,d\re", 7);
}

static void test_csv_quoted(void **state)
{
    const char *r = "1,\"a,b\",\"say \"\"hi\"\"\",\"\",x";

    (void)state;
    csv_ok("$[1]", r, "\"a,b\"");
    csv_ok("$[2]", r, "\"say \"\"hi\"\"\"");
    csv_ok("$[3]", r, "\"\"");
    csv_ok("$[4]", r, "x");
    csv_ok("$[-1]", r, "x");
    csv_ok("$[1:3]", r, "\"a,b\",\"say \"\"hi\"\"\"");
    csv_ok("$[4,1]", r, "x,\"a,b\"");
    csv_ok("$[*]", r, r);
    /* Spaces around fields are kept (codec_csv reads them). */
    csv_ok("$[1]", "a, \"b,c\" ,d", " \"b,c\" ");
    csv_ok("$[2]", "a, \"b,c\" , d ", " d ");
    csv_ok("$[0]", "\",,,\"", "\",,,\"");
    csv_ok("$[0]", "\"\"\"\"", "\"\"\"\"");
}

static void test_csv_errors(void **state)
{
    (void)state;
    csv_fail("$.a", "1,2", "Filter $.a selects a member; CSV records have only columns.");
    csv_fail("$['a','b']", "1,2",
             "Filter $['a','b'] selects a member; CSV records have only columns.");
    csv_fail("$[0].a", "1,2", "Filter $[0].a selects a member; CSV records have only columns.");
    csv_fail("$[0][1]", "1,2",
             "Filter $[0][1] selects inside a column; CSV records have only columns.");
    csv_fail("$[0][1:]", "1,2",
             "Filter $[0][1:] selects inside a column; CSV records have only columns.");
    csv_fail("$[7]", "a,b,c,d,e", "Filter $[7]: the record has 5 columns.");
    csv_fail("$[5]", "a,b,c,d,e", "Filter $[5]: the record has 5 columns.");
    csv_fail("$[-6]", "a,b,c,d,e", "Filter $[-6]: the record has 5 columns.");
    csv_fail("$[1]", "a", "Filter $[1]: the record has 1 column.");
    csv_fail("$[1]", "", "Filter $[1]: the record has 1 column.");
    csv_fail("$[0,1,9]", "a,b", "Filter $[0,1,9]: the record has 2 columns.");
    csv_fail("$[1:,-3]", "a,b", "Filter $[1:,-3]: the record has 2 columns.");
    csv_fail("$[0]", "a,\"b", "Filter $[0]: column 2 of the record has an unterminated quoted "
                              "field.");
    csv_fail("$[0]", "a,\"b\"\"", "Filter $[0]: column 2 of the record has an unterminated "
                                  "quoted field.");
    csv_fail("$[0]", "\"a\"b,c", "Filter $[0]: column 1 of the record has characters after its "
                                 "closing quote.");
    csv_fail("$[1:]", "a,b,\"c\" d", "Filter $[1:]: column 3 of the record has characters after "
                                     "its closing quote.");
    csv_fail("$[*]", "a,b\"c", "Filter $[*]: column 2 of the record has a quote in an unquoted "
                               "field.");
    /* The whole record is checked, not only the columns selected. */
    csv_fail("$[0]", "a,b,c,\"", "Filter $[0]: column 4 of the record has an unterminated quoted "
                                 "field.");
}

/* ---- JSON ---- */

static void test_json_select(void **state)
{
    const char *rec = "{\"id\": 7, \"features\": [1, 2.5, -3e2, \"x\", null],"
                      " \"meta\": {\"a\": {\"b\": [true, false, {\"c\": []}]}}}";

    (void)state;
    json_ok("$", rec, "{\"id\":7,\"features\":[1,2.5,-3e2,\"x\",null],\"meta\":{\"a\":{\"b\":[true,"
                      "false,{\"c\":[]}]}}}");
    json_ok("$.id", rec, "7");
    json_ok("$.features", rec, "[1,2.5,-3e2,\"x\",null]");
    json_ok("$.features[0]", rec, "1");
    json_ok("$.features[-1]", rec, "null");
    json_ok("$.features[-2]", rec, "\"x\"");
    json_ok("$.features[1:]", rec, "[2.5,-3e2,\"x\",null]");
    json_ok("$.features[:2]", rec, "[1,2.5]");
    json_ok("$.features[1:3]", rec, "[2.5,-3e2]");
    json_ok("$.features[-2:]", rec, "[\"x\",null]");
    json_ok("$.features[3:1]", rec, "[]");
    json_ok("$.features[9:]", rec, "[]");
    json_ok("$.features[*]", rec, "[1,2.5,-3e2,\"x\",null]");
    json_ok("$.features[4,0]", rec, "[null,1]");
    json_ok("$.features[0,3:]", rec, "[1,\"x\",null]");
    json_ok("$.features[1,1]", rec, "[2.5,2.5]");
    json_ok("$.features[0:1]", rec, "[1]");
    json_ok("$.meta.a", rec, "{\"b\":[true,false,{\"c\":[]}]}");
    json_ok("$.meta.a.b[2]", rec, "{\"c\":[]}");
    json_ok("$.meta.a.b[2].c", rec, "[]");
    json_ok("$.meta.a.b[2].c[:]", rec, "[]");
    json_ok("$['meta'][\"a\"].b[0]", rec, "true");
    json_ok("$['features','id']", rec, "{\"features\":[1,2.5,-3e2,\"x\",null],\"id\":7}");
    json_ok("$.meta.a['b']", rec, "[true,false,{\"c\":[]}]");
    /* A top-level array and scalars. */
    json_ok("$[1]", "[10,[20,21],30]", "[20,21]");
    json_ok("$[1][0]", "[10,[20,21],30]", "20");
    json_ok("$[1][-1]", "[10,[20,21],30]", "21");
    json_ok("$[0,2]", "[10,[20,21],30]", "[10,30]");
    json_ok("$[1:]", " \t\r\n[ 10 , [ 20 , 21 ] , 30 ] \n", "[[20,21],30]");
    json_ok("$[:]", "[]", "[]");
    json_ok("$[-1:]", "[]", "[]");
    json_ok("$", "\"s\"", "\"s\"");
    json_ok("$", " 12 ", "12");
    json_ok("$", "null", "null");
    /* Member names that need brackets, and the empty name. */
    json_ok("$['a b']", "{\"a b\":1,\"a\":2}", "1");
    json_ok("$['']", "{\"\":[]}", "[]");
    json_ok("$['x.y']", "{\"x\":{\"y\":1},\"x.y\":2}", "2");
    /* SageMaker's joined record. */
    json_ok("$['id','SageMakerOutput']",
            "{\"id\":\"r1\",\"features\":[1,2],\"SageMakerOutput\":{\"predicted_label\":1}}",
            "{\"id\":\"r1\",\"SageMakerOutput\":{\"predicted_label\":1}}");
}

static void test_json_exact(void **state)
{
    (void)state;
    /* Numbers stay as sent. */
    json_ok("$[0]", "[1.000000000000000001]", "1.000000000000000001");
    json_ok("$.x", "{\"x\": 1e400}", "1e400");
    json_ok("$[1:]", "[0, -0, 1E+2, 123456789012345678901234567890, 0.5e-7]",
            "[-0,1E+2,123456789012345678901234567890,0.5e-7]");
    /* Strings and their escapes stay as sent; spaces in strings stay. */
    json_ok("$.s", "{\"s\": \"a \\\"b\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00\"}",
            "\"a \\\"b\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00\"");
    json_ok("$[0]", "[\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]",
            "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    json_ok("$", "{ \"a b\" : [ \" x \" , \"\\\" ]\" ] }", "{\"a b\":[\" x \",\"\\\" ]\"]}");
    /* Keys written with escapes match the decoded name. */
    json_ok("$.a", "{\"\\u0061\": 1}", "1");
    json_ok("$.ab", "{\"a\": 0, \"\\u0061b\": 2, \"abc\": 3}", "2");
    json_ok("$['\xc3\xa9']", "{\"\\u00e9\": 3}", "3");
    json_ok("$['\xc3\xa9']", "{\"\xc3\xa9\": 4}", "4");
    json_ok("$['\xf0\x9f\x98\x80']", "{\"\\ud83d\\ude00\": 5}", "5");
    json_ok("$['a\"b']", "{\"a\\\"b\": 6}", "6");
    json_ok("$[\"a'b\"]", "{\"a'b\": 6}", "6");
    json_ok("$['a\\b']", "{\"a\\\\b\": 7}", "7");
    json_ok("$['a/b']", "{\"a\\/b\": 8}", "8");
    json_ok("$['\n']", "{\"\\n\": 9}", "9");
    /* The key is copied as written in a list of names. */
    json_ok("$['a','\xc3\xa9']", "{\"\\u00e9\": 1, \"\\u0061\": 2}", "{\"\\u0061\":2,\"\\u00e9\":1}");
    /* A prefix is no match. */
    json_fail("$.ab", "{\"a\": 1, \"abc\": 2}", "Filter $.ab: no member ab.");
    json_fail("$.ab", "{\"\\u0061\": 1}", "Filter $.ab: no member ab.");
}

static void test_json_errors(void **state)
{
    (void)state;
    json_fail("$.features", "{\"id\":1}", "Filter $.features: no member features.");
    json_fail("$.features", "{}", "Filter $.features: no member features.");
    json_fail("$.a.b", "{\"a\":{\"c\":1}}", "Filter $.a.b: no member b.");
    json_fail("$['id','x']", "{\"id\":1}", "Filter $['id','x']: no member x.");
    json_fail("$.a", "{\"a\":1,\"b\":2,\"a\":3}", "Filter $.a: member a appears twice in the record.");
    json_fail("$.a", "{\"a\":1,\"\\u0061\":3}", "Filter $.a: member a appears twice in the record.");
    json_fail("$['a','b']", "{\"a\":1,\"b\":2,\"b\":3}",
              "Filter $['a','b']: member b appears twice in the record.");
    /* Kinds. */
    json_fail("$.a", "[1]", "Filter $.a: $ is an array, not an object.");
    json_fail("$.a.b", "{\"a\":[1]}", "Filter $.a.b: $.a is an array, not an object.");
    json_fail("$.a.b", "{\"a\":\"s\"}", "Filter $.a.b: $.a is a string, not an object.");
    json_fail("$.a.b", "{\"a\":1}", "Filter $.a.b: $.a is a number, not an object.");
    json_fail("$.a.b", "{\"a\":true}", "Filter $.a.b: $.a is a boolean, not an object.");
    json_fail("$.a.b", "{\"a\":null}", "Filter $.a.b: $.a is null, not an object.");
    json_fail("$[0]", "{\"a\":1}", "Filter $[0]: $ is an object, not an array.");
    json_fail("$.a[0]", "{\"a\":{}}", "Filter $.a[0]: $.a is an object, not an array.");
    json_fail("$.a[1:]", "{\"a\":\"xy\"}", "Filter $.a[1:]: $.a is a string, not an array.");
    json_fail("$.a[*]", "{\"a\":{}}", "Filter $.a[*]: $.a is an object, not an array.");
    json_fail("$[0,1]", "7", "Filter $[0,1]: $ is a number, not an array.");
    json_fail("$.a['x','y']", "{\"a\":[]}", "Filter $.a['x','y']: $.a is an array, not an object.");
    json_fail("$['a'][0]", "{\"a\":{}}", "Filter $['a'][0]: $['a'] is an object, not an array.");
    json_fail("$[0][0]", "[1]", "Filter $[0][0]: $[0] is a number, not an array.");
    /* Indices. */
    json_fail("$[5]", "[0,1,2,3,4]", "Filter $[5]: the array has 5 elements.");
    json_fail("$[-6]", "[0,1,2,3,4]", "Filter $[-6]: the array has 5 elements.");
    json_fail("$[0]", "[]", "Filter $[0]: the array has 0 elements.");
    json_fail("$[-1]", " [ ] ", "Filter $[-1]: the array has 0 elements.");
    json_fail("$.a[1]", "{\"a\":[9]}", "Filter $.a[1]: the array has 1 element.");
    json_fail("$[0,2]", "[0,1]", "Filter $[0,2]: the array has 2 elements.");
    json_fail("$[1:,7]", "[0,1]", "Filter $[1:,7]: the array has 2 elements.");
}

static void test_json_invalid(void **state)
{
    static const struct {
        const char *rec;
        const char *why;
    } bad[] = {
        {"", "expected a value at its end"},
        {"   ", "expected a value at its end"},
        {"{", "expected a member name at its end"},
        {"{\"a\"", "expected ':' at its end"},
        {"{\"a\":1", "expected ',' or '}' at its end"},
        {"[1", "expected ',' or ']' at its end"},
        {"[1,]", "expected a value at byte 4"},
        {"[,1]", "expected a value at byte 2"},
        {"{\"a\":1,}", "expected a member name at byte 8"},
        {"{1:2}", "expected a member name at byte 2"},
        {"{'a':1}", "expected a member name at byte 2"},
        {"[1 2]", "expected ',' or ']' at byte 4"},
        {"{\"a\" 1}", "expected ':' at byte 6"},
        {"[1]x", "unexpected data after the value at byte 4"},
        {"1 2", "unexpected data after the value at byte 3"},
        {"[1]]", "unexpected data after the value at byte 4"},
        {"tru", "invalid literal at byte 1"},
        {"nul", "invalid literal at byte 1"},
        {"True", "expected a value at byte 1"},
        {"NaN", "expected a value at byte 1"},
        {"[Infinity]", "expected a value at byte 2"},
        {"01", "unexpected data after the value at byte 2"},
        {"-", "invalid number at its end"},
        {"-a", "invalid number at byte 2"},
        {"+1", "expected a value at byte 1"},
        {".5", "expected a value at byte 1"},
        {"1.", "invalid number at its end"},
        {"1.e5", "invalid number at byte 3"},
        {"1e", "invalid number at its end"},
        {"1e+", "invalid number at its end"},
        {"[1e+x]", "invalid number at byte 5"},
        {"\"abc", "unterminated string at its end"},
        {"\"a\\", "invalid escape at byte 3"},
        {"\"a\\x\"", "invalid escape at byte 3"},
        {"\"a\\u12\"", "invalid \\u escape at byte 3"},
        {"\"a\\u12g4\"", "invalid \\u escape at byte 3"},
        {"\"\\u0000\"", "\\u0000 in a string at byte 2"},
        {"\"\\udc00\"", "invalid \\u escape at byte 2"},
        {"\"\\ud800\"", "invalid \\u escape at byte 2"},
        {"\"\\ud800\\u0041\"", "invalid \\u escape at byte 2"},
        {"\"\\ud800x\"", "invalid \\u escape at byte 2"},
        {"\"a\tb\"", "control character in a string at byte 3"},
        {"\"a\nb\"", "control character in a string at byte 3"},
        {"\"\x80\"", "invalid UTF-8 at byte 2"},
        {"\"\xc0\xaf\"", "invalid UTF-8 at byte 2"},       /* overlong */
        {"\"\xe0\x80\xaf\"", "invalid UTF-8 at byte 2"},   /* overlong */
        {"\"\xed\xa0\x80\"", "invalid UTF-8 at byte 2"},   /* surrogate */
        {"\"\xf4\x90\x80\x80\"", "invalid UTF-8 at byte 2"}, /* > U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", "invalid UTF-8 at byte 2"},
        {"\"\xc3\"", "invalid UTF-8 at byte 2"},
        {"\"\xe2\x82\"", "invalid UTF-8 at byte 2"},
        {"\"\xe2\x82", "invalid UTF-8 at byte 2"},
        {"\xef\xbb\xbf{}", "expected a value at byte 1"}, /* a BOM */
        {"{\"\xff\":1}", "invalid UTF-8 at byte 3"},
        {"[1,\x01]", "expected a value at byte 4"},
    };
    char msg[256];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(bad); i++) {
        snprintf(msg, sizeof(msg), "Filter $: the record is not valid JSON: %s.", bad[i].why);
        json_fail("$", bad[i].rec, msg);
    }
    /* The whole record is checked, not only the path to the selection. */
    json_fail("$.a", "{\"a\":1,\"b\":[1,}",
              "Filter $.a: the record is not valid JSON: expected a value at byte 15.");
    /* A NUL byte. */
    apply_fail_n(ig_jpath_json, "$", "[1]\0", 4, IG_ERR_INVALID,
                 "Filter $: the record is not valid JSON: unexpected data after the value at "
                 "byte 4.");
    apply_fail_n(ig_jpath_json, "$", "\"a\0\"", 4, IG_ERR_INVALID,
                 "Filter $: the record is not valid JSON: control character in a string at byte "
                 "3.");
}

/* <n> levels of arrays, or of objects {"a":...}, around 0. */
static char *nested(int n, int objects)
{
    size_t cap = (size_t)n * 6 + 2, len = 0;
    char *s = malloc(cap);

    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        memcpy(s + len, objects ? "{\"a\":" : "[", objects ? 5 : 1);
        len += objects ? 5 : 1;
    }
    s[len++] = '0';
    for (int i = 0; i < n; i++)
        s[len++] = objects ? '}' : ']';
    s[len] = '\0';
    return s;
}

static void test_json_depth(void **state)
{
    char *s, *want;

    (void)state;
    s = nested(64, 0);
    want = nested(61, 0);
    json_ok("$[0][0][0]", s, want);
    free(want);
    free(s);
    s = nested(65, 0);
    json_fail("$", s, "Filter $: the record nests deeper than 64 levels.");
    free(s);
    s = nested(64, 1);
    want = nested(33, 1);
    json_ok("$.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a", s, want);
    free(want);
    free(s);
    s = nested(65, 1);
    json_fail("$.a", s, "Filter $.a: the record nests deeper than 64 levels.");
    free(s);
    /* Far deeper: refused without deep recursion. */
    s = nested(100000, 0);
    json_fail("$", s, "Filter $: the record nests deeper than 64 levels.");
    free(s);
    /* Depth counts open containers, not values: a wide record is fine. */
    json_ok("$[2]", "[[],[[]],[[[]]],{}]", "[[[]]]");
}

static void test_output_cap(void **state)
{
    struct ig_jpath *p = parse_ok("$[1:]");
    struct ig_buf out;
    char err[256] = "";

    (void)state;
    ig_buf_init(&out, 8);
    assert_int_equal(ig_buf_append_str(&out, "ab"), 0);
    /* "b,c,d,e" is 7 more: 9 > 8. */
    assert_int_equal(ig_jpath_csv(p, "a,b,c,d,e", 9, &out, err, sizeof(err)), IG_ERR_TOOBIG);
    assert_string_equal(err, "Filter $[1:]: the selection is larger than the 8 bytes allowed.");
    assert_int_equal(out.len, 2);
    assert_string_equal(out.data, "ab");
    /* JSON: the array's opening bracket and two elements fit, then not. */
    assert_int_equal(ig_jpath_json(p, "[0, 1, 2, 3]", 12, &out, err, sizeof(err)), IG_ERR_TOOBIG);
    assert_int_equal(out.len, 2);
    assert_string_equal(out.data, "ab");
    /* Exactly at the cap, once the whitespace is gone (the text as sent
     * would not fit). */
    assert_int_equal(ig_jpath_json(p, "[0, 1,   22]", 12, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, "ab[1,22]");
    ig_buf_reset(&out);
    assert_int_equal(ig_jpath_json(p, "[0, \" \" ,\n 2]", 13, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, "[\" \",2]");
    ig_buf_clear(&out);
    ig_jpath_free(p);
    /* $ on CSV: the record as is, also capped. */
    p = parse_ok("$");
    ig_buf_init(&out, 3);
    assert_int_equal(ig_jpath_csv(p, "abcd", 4, &out, err, sizeof(err)), IG_ERR_TOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(ig_jpath_csv(p, "abc", 3, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, "abc");
    ig_buf_clear(&out);
    ig_jpath_free(p);
}

/* A large record: a 2 MiB array, a 1 MiB CSV line. */
static void test_large(void **state)
{
    size_t n = 1 << 19, len = 0;
    char *s = malloc(n * 4 + 16), *c = malloc(n * 2 + 16);
    struct ig_jpath *p = parse_ok("$[-2:]");
    struct ig_buf out;
    char err[256] = "";

    (void)state;
    assert_non_null(s);
    assert_non_null(c);
    s[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(s + len, i ? ", 7" : "7", i ? 3 : 1);
        len += i ? 3 : 1;
    }
    memcpy(s + len, ", 8]", 4);
    len += 4;
    ig_buf_init(&out, 1 << 20);
    assert_int_equal(ig_jpath_json(p, s, len, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, "[7,8]");
    ig_buf_reset(&out);
    for (size_t i = 0; i < n; i++) {
        c[2 * i] = 'x';
        c[2 * i + 1] = ',';
    }
    c[2 * n] = 'y';
    assert_int_equal(ig_jpath_csv(p, c, 2 * n + 1, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, "x,y");
    ig_buf_clear(&out);
    ig_jpath_free(p);
    free(s);
    free(c);
}

/* ---- seeded random inputs ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t rng_below(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % n);
}

/* A random string over <alpha> (or any byte when NULL), at most <max>. */
static size_t rng_text(uint64_t *s, char *out, size_t max, const char *alpha)
{
    size_t n = rng_below(s, max + 1), na = alpha ? strlen(alpha) : 0;

    for (size_t i = 0; i < n; i++)
        out[i] = alpha ? alpha[rng_below(s, na)] : (char)rng_below(s, 256);
    return n;
}

/* Random expressions (bytes and grammar characters) and records: no crash,
 * and any error has a message starting "Filter ". */
static void test_random_no_crash(void **state)
{
    static const char *exprs[] = {"$",        "$[0]",   "$[-1]", "$[1:]", "$[:-1]", "$[0,2:]",
                                  "$[*]",     "$.a",    "$.a[0]", "$['a','b']",
                                  "$.a.b[1:]", "$[0][0]"};
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char text[512], expr[80], err[256];
    struct ig_buf out;

    (void)state;
    ig_buf_init(&out, 256);
    for (int round = 0; round < 40000; round++) {
        struct ig_jpath *p = NULL;
        size_t n;
        int rv;

        /* An expression: random bytes, grammar characters, or a known one
         * with one byte changed. */
        switch (round % 3) {
        case 0:
            n = rng_text(&rng, expr, 70, NULL);
            break;
        case 1:
            expr[0] = '$';
            n = 1 + rng_text(&rng, expr + 1, 20, "$.[]:,-*'\"ab019");
            break;
        default:
            n = strlen(exprs[round / 3 % IG_ARRAY_SIZE(exprs)]);
            memcpy(expr, exprs[round / 3 % IG_ARRAY_SIZE(exprs)], n);
            if (round % 2)
                expr[rng_below(&rng, n)] = (char)rng_below(&rng, 256);
            break;
        }
        expr[n] = '\0';
        err[0] = '\0';
        rv = ig_jpath_parse(expr, &p, err, sizeof(err));
        if (rv < 0) {
            assert_int_equal(rv, IG_ERR_INVALID);
            assert_memory_equal(err, "Filter ", 7);
            continue;
        }
        for (int k = 0; k < 4; k++) {
            size_t before;

            if (k % 2)
                n = rng_text(&rng, text, sizeof(text), NULL);
            else
                n = rng_text(&rng, text, 60, k ? "a,\" 1" : "{}[]\":,0 1-.eE\\u\"ab");
            ig_buf_reset(&out);
            ig_buf_append_str(&out, "x");
            before = out.len;
            rv = ig_jpath_csv(p, text, n, &out, err, sizeof(err));
            assert_true(rv == 0 || rv == IG_ERR_INVALID || rv == IG_ERR_TOOBIG);
            if (rv < 0) {
                assert_int_equal(out.len, before);
                assert_memory_equal(err, "Filter ", 7);
            }
            rv = ig_jpath_json(p, text, n, &out, err, sizeof(err));
            assert_true(rv == 0 || rv == IG_ERR_INVALID || rv == IG_ERR_TOOBIG);
        }
        ig_jpath_free(p);
    }
    ig_buf_clear(&out);
}

/* Append <str> to out[n..] when it fits; the new length. */
static size_t rng_put(char *out, size_t cap, size_t n, const char *str)
{
    size_t l = strlen(str);

    if (n + l < cap) {
        memcpy(out + n, str, l);
        n += l;
    }
    return n;
}

/* Append a random valid JSON value (<depth> more levels at most). */
static size_t rng_json(uint64_t *s, char *out, size_t cap, size_t n, int depth)
{
    /* (No number jansson cannot hold: such a text would be skipped.) */
    static const char *scalars[] = {"1", "-2.5e3", "0", "0.1e-2", "true", "false", "null",
                                    "\"\"", "\"x y\"", "\"\\u0061\"", "\"\\\"\"",
                                    "\"\xc3\xa9\"", "\"\\ud83d\\ude00\""};
    static const char *keys[] = {"\"a\"", "\"b\"", "\"\\u0061\"", "\"c\""};
    static const char *ws[] = {"", "", "", " ", "\n\t "};
    size_t kind = depth > 0 ? rng_below(s, 3) : 0, count = rng_below(s, 4);
    const char *w = ws[rng_below(s, IG_ARRAY_SIZE(ws))];

#define RNG_PUT(str) n = rng_put(out, cap, n, (str))
    RNG_PUT(w);
    if (kind == 0) {
        RNG_PUT(scalars[rng_below(s, IG_ARRAY_SIZE(scalars))]);
    } else {
        RNG_PUT(kind == 1 ? "[" : "{");
        for (size_t i = 0; i < count; i++) {
            if (i)
                RNG_PUT(",");
            if (kind == 2) {
                RNG_PUT(keys[rng_below(s, IG_ARRAY_SIZE(keys))]);
                RNG_PUT(w);
                RNG_PUT(":");
            }
            n = rng_json(s, out, cap, n, depth - 1);
        }
        RNG_PUT(w);
        RNG_PUT(kind == 1 ? "]" : "}");
    }
    RNG_PUT(w);
#undef RNG_PUT
    return n;
}

/* JSON-ish random texts: the check accepts exactly what jansson accepts
 * (numbers too large for jansson aside), and what is selected reads back
 * in jansson as the same value it finds at that path. */
static void test_random_json_vs_jansson(void **state)
{
    static const char *atoms[] = {"{", "}", "[", "]", ",", ":", "\"a\"", "\"b\"", "\"\\u0061\"",
                                  "1", "-2.5e3", "0", "01", "true", "null", " ", "\n", "\"\\\"\"",
                                  "\"\xc3\xa9\"", "\"\\ud83d\\ude00\"", "[1,2]", "{\"a\":[3]}",
                                  "\"", "\\", "x", "-", "\"\xff\""};
    struct ig_jpath *pa = parse_ok("$"), *pm = parse_ok("$.a"), *pi = parse_ok("$[1]");
    uint64_t rng = 12345;
    char text[1024], err[256];
    struct ig_buf out;
    int accepted = 0, found_a = 0, found_1 = 0;

    (void)state;
    ig_buf_init(&out, 1 << 16);
    for (int round = 0; round < 200000; round++) {
        size_t n = 0, k = 1 + rng_below(&rng, 12);
        json_error_t jerr;
        json_t *j, *got;
        int rv, dup;

        if (round % 2) {
            /* A valid value (unless cut short by the buffer), maybe with
             * one byte changed. */
            n = rng_json(&rng, text, sizeof(text), 0, 3);
            if (round % 4 == 1 && n > 0)
                text[rng_below(&rng, n)] = (char)rng_below(&rng, 256);
        }
        for (size_t i = 0; round % 2 == 0 && i < k; i++) {
            const char *a = atoms[rng_below(&rng, IG_ARRAY_SIZE(atoms))];
            size_t al = strlen(a);

            if (n + al >= sizeof(text))
                break;
            memcpy(text + n, a, al);
            n += al;
        }
        j = json_loadb(text, n, JSON_DECODE_ANY, &jerr);
        if (j == NULL && json_error_code(&jerr) == json_error_numeric_overflow)
            continue; /* a number jansson cannot hold: jpath copies it */
        if (j != NULL && memchr(text, '\0', n) != NULL) {
            /* jansson 2.14 takes a NUL byte between tokens as whitespace;
             * jpath, as RFC 8259, does not. */
            json_decref(j);
            continue;
        }
        dup = 0;
        if (j != NULL) {
            json_t *d = json_loadb(text, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);

            dup = d == NULL;
            json_decref(d);
        }
        ig_buf_reset(&out);
        rv = ig_jpath_json(pa, text, n, &out, err, sizeof(err));
        if ((j != NULL) != (rv == 0)) {
            for (size_t q = 0; q < n; q++)
                print_message("%02x ", (unsigned char)text[q]);
            fail_msg("round %d: jansson %s, jpath %s on '%.*s'", round, j ? "accepts" : jerr.text,
                     rv == 0 ? "accepts" : err, (int)n, text);
        }
        if (j == NULL)
            continue;
        accepted++;
        /* $ reads back as the same value, with no whitespace left outside strings. */
        got = json_loadb(out.data, out.len, JSON_DECODE_ANY, &jerr);
        assert_non_null(got);
        assert_true(json_equal(got, j));
        json_decref(got);
        /* $.a and $[1] select what jansson finds there. */
        {
            json_t *want = json_is_object(j) ? json_object_get(j, "a")
                           : NULL;
            int rm;

            ig_buf_reset(&out);
            rm = ig_jpath_json(pm, text, n, &out, err, sizeof(err));
            if (want != NULL && dup && rm == IG_ERR_INVALID) {
                /* jansson keeps the last of repeated keys; jpath refuses "a" twice. */
                assert_string_equal(err, "Filter $.a: member a appears twice in the record.");
            } else if (want != NULL) {
                found_a++;
                assert_int_equal(rm, 0);
                got = json_loadb(out.data, out.len, JSON_DECODE_ANY, &jerr);
                assert_true(json_equal(got, want));
                json_decref(got);
            } else {
                assert_int_equal(rm, IG_ERR_INVALID);
            }
            want = json_is_array(j) ? json_array_get(j, 1) : NULL;
            ig_buf_reset(&out);
            rm = ig_jpath_json(pi, text, n, &out, err, sizeof(err));
            if (want != NULL) {
                found_1++;
                assert_int_equal(rm, 0);
                got = json_loadb(out.data, out.len, JSON_DECODE_ANY, &jerr);
                assert_true(json_equal(got, want));
                json_decref(got);
            } else {
                assert_int_equal(rm, IG_ERR_INVALID);
            }
        }
        json_decref(j);
    }
    /* The generator reaches valid texts often enough to mean something. */
    assert_true(accepted > 50000);
    assert_true(found_a > 5000);
    assert_true(found_1 > 5000);
    ig_buf_clear(&out);
    ig_jpath_free(pa);
    ig_jpath_free(pm);
    ig_jpath_free(pi);
}

/* Python's slice of 0..n-1 by [a:b] (either bound optional). */
static size_t ref_slice(int64_t n, int has_a, int64_t a, int has_b, int64_t b, int64_t *out)
{
    size_t k = 0;

    a = has_a ? a : 0;
    b = has_b ? b : n;
    if (a < 0)
        a = a + n < 0 ? 0 : a + n;
    if (b < 0)
        b = b + n < 0 ? 0 : b + n;
    if (a > n)
        a = n;
    if (b > n)
        b = n;
    for (int64_t i = a; i < b; i++)
        out[k++] = i;
    return k;
}

/* Random slices of random-length CSV records and JSON arrays agree with
 * the reference. */
static void test_random_slices(void **state)
{
    uint64_t rng = 777;
    struct ig_buf out;

    (void)state;
    ig_buf_init(&out, 1 << 16);
    for (int round = 0; round < 20000; round++) {
        int64_t n = (int64_t)rng_below(&rng, 9), a = (int64_t)rng_below(&rng, 25) - 12,
                b = (int64_t)rng_below(&rng, 25) - 12, sel[16];
        int has_a = (int)rng_below(&rng, 2), has_b = (int)rng_below(&rng, 2);
        char expr[40], csv[64], json[64], want_csv[64], want_json[64], err[256];
        size_t k, cl = 0, jl = 1, wc = 0, wj = 1;
        struct ig_jpath *p;

        snprintf(expr, sizeof(expr), "$[%s%lld:%s%lld]", "", (long long)a, "", (long long)b);
        if (!has_a || !has_b) {
            char sa[16] = "", sb[16] = "";

            if (has_a)
                snprintf(sa, sizeof(sa), "%lld", (long long)a);
            if (has_b)
                snprintf(sb, sizeof(sb), "%lld", (long long)b);
            snprintf(expr, sizeof(expr), "$[%s:%s]", sa, sb);
        }
        /* CSV "c0,c1,..." (n >= 1; an empty line is one empty column) and
         * JSON [0,1,...]. */
        json[0] = '[';
        for (int64_t i = 0; i < n; i++) {
            cl += (size_t)snprintf(csv + cl, sizeof(csv) - cl, "%sc%lld", i ? "," : "", (long long)i);
            jl += (size_t)snprintf(json + jl, sizeof(json) - jl, "%s %lld", i ? "," : "",
                                   (long long)i);
        }
        json[jl++] = ']';
        want_json[0] = '[';
        k = ref_slice(n, has_a, a, has_b, b, sel);
        for (size_t i = 0; i < k; i++) {
            wc += (size_t)snprintf(want_csv + wc, sizeof(want_csv) - wc, "%sc%lld", i ? "," : "",
                                   (long long)sel[i]);
            wj += (size_t)snprintf(want_json + wj, sizeof(want_json) - wj, "%s%lld", i ? "," : "",
                                   (long long)sel[i]);
        }
        want_json[wj++] = ']';
        p = parse_ok(expr);
        ig_buf_reset(&out);
        assert_int_equal(ig_jpath_json(p, json, jl, &out, err, sizeof(err)), 0);
        if (out.len != wj || memcmp(out.data, want_json, wj) != 0)
            fail_msg("%s on %.*s: %s, want %.*s", expr, (int)jl, json, out.data, (int)wj,
                     want_json);
        if (n > 0) {
            ig_buf_reset(&out);
            assert_int_equal(ig_jpath_csv(p, csv, cl, &out, err, sizeof(err)), 0);
            if (out.len != wc || (wc && memcmp(out.data, want_csv, wc) != 0))
                fail_msg("%s on %.*s: %s, want %.*s", expr, (int)cl, csv,
                         out.data ? out.data : "", (int)wc, want_csv);
        }
        ig_jpath_free(p);
    }
    ig_buf_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_indices),
        cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_csv_select),
        cmocka_unit_test(test_csv_quoted),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_json_select),
        cmocka_unit_test(test_json_exact),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_invalid),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_random_no_crash),
        cmocka_unit_test(test_random_json_vs_jansson),
        cmocka_unit_test(test_random_slices),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_convert.c - format conversion: every pair of request formats over
 * dense and sparse rows (1,000 random rows, fixed seed) decodes to the
 * same features as the original, bit for bit (float32 where RecordIO
 * narrows or where the values came from float32); the output rows are the
 * target decoder's rows; exact bytes of chosen rows and of every
 * prediction mapping; every error with its exact message.
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
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/convert.h"
#include "infergate/recordio.h"
#include "proto/record.pb-c.h"

#define BODY_MAX (64u << 20)
#define MAXD 40

static const char *const fmt_name[IG_FMT_COUNT] = {"csv", "jsonl", "json", "recordio", "libsvm"};

/* ---- random values (xorshift64*, fixed seed) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* A feature value: zeros (so that sparse rows are sparse), short
 * decimals, integers, -0.0, float32 values, and doubles of random bits
 * within float32's range (so that RecordIO can carry them). */
static double rand_value(void)
{
    uint64_t r = rng();

    switch (r % 8) {
    case 0:
    case 1:
    case 2:
        return 0.0;
    case 3:
        return (double)((int64_t)(rng() % 2000001) - 1000000) / 1000.0;
    case 4:
        return (double)((int64_t)(rng() % 200001) - 100000);
    case 5:
        return (r >> 8) % 4 == 0 ? -0.0 : (double)(float)((double)(rng() % 1000000) / 7.0);
    default: {
        /* random mantissa, exponent between 2^-60 and 2^60 */
        uint64_t e = 1023 - 60 + rng() % 121;
        uint64_t bits = (rng() & 0x000fffffffffffffull) | e << 52;
        double v;

        memcpy(&v, &bits, sizeof(v));
        return rng() % 2 ? -v : v;
    }
    }
}

/* ---- logical rows and the sources written from them ---- */

struct trow {
    int sparse; /* written in a sparse form where the format has one */
    int style;  /* which JSON form */
    double v[MAXD];
};

struct tset {
    uint32_t d;
    size_t n;
    struct trow *rows;
};

static void put_num(struct ig_buf *b, double v)
{
    assert_int_equal(ig_buf_printf(b, "%.17g", v), 0);
}

static void src_json_row(struct ig_buf *b, const struct trow *r, uint32_t d)
{
    if (!r->sparse) {
        static const char *const pre[] = {"[", "{\"features\":[", "{\"features\":{\"values\":[",
                                          "{\"data\":{\"features\":{\"values\":["};
        static const char *const post[] = {"]", "]}", "]}}", "]}}}"};

        assert_int_equal(ig_buf_append_str(b, pre[r->style % 4]), 0);
        for (uint32_t i = 0; i < d; i++) {
            if (i > 0)
                assert_int_equal(ig_buf_append_char(b, ','), 0);
            put_num(b, r->v[i]);
        }
        assert_int_equal(ig_buf_append_str(b, post[r->style % 4]), 0);
        return;
    }
    /* sparse: the nonzero entries (and -0.0), keys in reverse order for
     * odd styles (the decoder takes any order) */
    {
        uint32_t idx[MAXD], n = 0;

        for (uint32_t i = 0; i < d; i++)
            if (r->v[i] != 0 || signbit(r->v[i]))
                idx[n++] = i;
        if (r->style % 2)
            for (uint32_t i = 0; i < n / 2; i++) {
                uint32_t t = idx[i];

                idx[i] = idx[n - 1 - i];
                idx[n - 1 - i] = t;
            }
        assert_int_equal(ig_buf_append_str(b, r->style % 4 >= 2
                                                  ? "{\"data\":{\"features\":{\"keys\":["
                                                  : "{\"features\":{\"keys\":["),
                         0);
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(ig_buf_printf(b, "%s%u", i ? "," : "", idx[i]), 0);
        assert_int_equal(ig_buf_printf(b, "],\"shape\":[%u],\"values\":[", d), 0);
        for (uint32_t i = 0; i < n; i++) {
            if (i > 0)
                assert_int_equal(ig_buf_append_char(b, ','), 0);
            put_num(b, r->v[idx[i]]);
        }
        assert_int_equal(ig_buf_append_str(b, r->style % 4 >= 2 ? "]}}}" : "]}}"), 0);
    }
}

/* The rows of <s> written in <fmt> (libsvm with index base <base>). */
static void src_write(struct ig_buf *b, const struct tset *s, enum ig_format fmt, uint8_t base)
{
    if (fmt == IG_FMT_JSON)
        assert_int_equal(ig_buf_append_str(b, "{\"instances\":["), 0);
    for (size_t k = 0; k < s->n; k++) {
        const struct trow *r = &s->rows[k];

        switch (fmt) {
        case IG_FMT_CSV:
            for (uint32_t i = 0; i < s->d; i++) {
                if (i > 0)
                    assert_int_equal(ig_buf_append_char(b, ','), 0);
                put_num(b, r->v[i]);
            }
            assert_int_equal(ig_buf_append_str(b, k % 3 == 0 ? "\r\n" : "\n"), 0);
            break;
        case IG_FMT_JSONL:
            src_json_row(b, r, s->d);
            assert_int_equal(ig_buf_append_char(b, '\n'), 0);
            break;
        case IG_FMT_JSON:
            if (k > 0)
                assert_int_equal(ig_buf_append_str(b, k % 2 ? ",\n " : ","), 0);
            src_json_row(b, r, s->d);
            break;
        case IG_FMT_RECORDIO:
            if (r->sparse) {
                uint64_t keys[MAXD];
                double vals[MAXD];
                size_t n = 0;

                for (uint32_t i = 0; i < s->d; i++)
                    if (r->v[i] != 0 || signbit(r->v[i])) {
                        keys[n] = i;
                        vals[n++] = r->v[i];
                    }
                assert_int_equal(ig_recordio_encode_row(b, vals, keys, n, s->d), 0);
            } else {
                assert_int_equal(ig_recordio_encode_row(b, r->v, NULL, s->d, 0), 0);
            }
            break;
        case IG_FMT_LIBSVM:
            assert_int_equal(ig_buf_printf(b, "%d", (int)(k % 3)), 0);
            for (uint32_t i = 0; i < s->d; i++)
                if (r->v[i] != 0 || signbit(r->v[i])) {
                    assert_int_equal(ig_buf_printf(b, " %u:", i + base), 0);
                    put_num(b, r->v[i]);
                }
            assert_int_equal(ig_buf_append_char(b, '\n'), 0);
            break;
        default:
            fail();
        }
    }
    if (fmt == IG_FMT_JSON)
        assert_int_equal(ig_buf_append_str(b, "]}"), 0);
}

/* Decode and require success. */
static void decode_ok(enum ig_format fmt, const char *body, size_t len, uint32_t dim,
                      uint8_t base, struct ig_rowset *rs)
{
    struct ig_codec_error err = {0, ""};
    int rv;

    memset(rs, 0, sizeof(*rs));
    rs->index_base = base;
    rv = ig_codec_decode(fmt, body, len, dim, 1u << 20, rs, &err);
    if (rv != 0)
        fail_msg("decoding %s (dim %u): %s", fmt_name[fmt], dim, err.msg);
}

static uint64_t bits64(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

static uint32_t bits32(float v)
{
    uint32_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

/* Convert <s> from <from> to <to> and check everything. */
static void check_pair(const struct tset *s, enum ig_format from, enum ig_format to,
                       uint8_t in_base, uint8_t out_base)
{
    struct ig_buf src, body;
    struct ig_rowset in, want, got, rows, out;
    struct ig_codec_error err = {0, ""};
    int rv;

    ig_buf_init(&src, BODY_MAX);
    ig_buf_init(&body, BODY_MAX);
    src_write(&src, s, from, in_base);
    decode_ok(from, src.data, src.len, 0, in_base, &in);
    decode_ok(from, src.data, src.len, s->d, in_base, &want);
    memset(&out, 0, sizeof(out));
    out.index_base = out_base;
    rv = ig_convert_rows(from, &in, to, s->d, &body, &out, &err);
    if (rv != 0)
        fail_msg("%s -> %s: %s", fmt_name[from], fmt_name[to], err.msg);
    assert_int_equal(out.nrows, s->n);
    assert_ptr_equal(out.body, body.data);
    assert_int_equal(out.body_len, body.len);
    assert_int_equal(out.index_base, out_base);
    assert_null(out.features);
    /* the rows are the target decoder's rows */
    decode_ok(to, body.data, body.len, 0, out_base, &rows);
    assert_int_equal(rows.nrows, out.nrows);
    for (uint32_t i = 0; i < out.nrows; i++) {
        assert_int_equal(rows.rows[i].off, out.rows[i].off);
        assert_int_equal(rows.rows[i].len, out.rows[i].len);
    }
    /* the features are the original's */
    decode_ok(to, body.data, body.len, s->d, out_base, &got);
    assert_int_equal(got.nrows, want.nrows);
    for (size_t i = 0; i < (size_t)s->n * s->d; i++) {
        double w = want.features[i], g = got.features[i];

        if (to == IG_FMT_RECORDIO) {
            if (bits64(g) != bits64((double)(float)w))
                fail_msg("%s -> %s feature %zu: %.17g, want %.17g as float32", fmt_name[from],
                         fmt_name[to], i, g, w);
        } else if (from == IG_FMT_RECORDIO) {
            /* float32 values, printed as the shortest float text */
            if (bits32((float)g) != bits32((float)w))
                fail_msg("%s -> %s feature %zu: %.9g, want %.9g", fmt_name[from], fmt_name[to],
                         i, g, w);
        } else if (bits64(g) != bits64(w)) {
            fail_msg("%s -> %s feature %zu: %.17g, want %.17g", fmt_name[from], fmt_name[to], i,
                     g, w);
        }
    }
    ig_rowset_clear(&in);
    ig_rowset_clear(&want);
    ig_rowset_clear(&got);
    ig_rowset_clear(&rows);
    ig_rowset_clear(&out);
    ig_buf_clear(&src);
    ig_buf_clear(&body);
}

static void check_all_pairs(const struct tset *s)
{
    for (int from = 0; from < IG_FMT_COUNT; from++)
        for (int to = 0; to < IG_FMT_COUNT; to++)
            for (uint8_t base = 0; base < 2; base++)
                check_pair(s, (enum ig_format)from, (enum ig_format)to, base,
                           (uint8_t)((base + (unsigned)to) % 2));
}

/* A handful of rows, by hand: dense and sparse, -0.0, long values. */
static void test_pairs_fixed(void **state)
{
    struct trow rows[4];
    struct tset s = {.d = 5, .n = 4, .rows = rows};
    const double r0[] = {1.5, 0, 0, 2, -0.0}, r1[] = {0.1, 1e-7, 123456.789, -3, 1e30},
                 r2[] = {0, 0, 0, 0, 0}, r3[] = {0, 0, 0.30000000000000004, 0, 7};

    (void)state;
    memset(rows, 0, sizeof(rows));
    memcpy(rows[0].v, r0, sizeof(r0));
    memcpy(rows[1].v, r1, sizeof(r1));
    memcpy(rows[2].v, r2, sizeof(r2));
    memcpy(rows[3].v, r3, sizeof(r3));
    for (int sp = 0; sp < 2; sp++) {
        for (int i = 0; i < 4; i++) {
            rows[i].sparse = sp ? i % 2 == 0 : i % 2 == 1;
            rows[i].style = i + sp;
        }
        check_all_pairs(&s);
    }
}

/* 1,000 random rows: 10 bodies of 100, widths 1 to 40. */
static void test_pairs_random(void **state)
{
    struct trow *rows = calloc(100, sizeof(*rows));

    (void)state;
    assert_non_null(rows);
    for (int set = 0; set < 10; set++) {
        struct tset s = {.d = 1 + (uint32_t)(rng() % MAXD), .n = 100, .rows = rows};

        for (size_t k = 0; k < s.n; k++) {
            rows[k].sparse = (int)(rng() % 2);
            rows[k].style = (int)(rng() % 4);
            for (uint32_t i = 0; i < s.d; i++)
                rows[k].v[i] = rand_value();
        }
        check_all_pairs(&s);
    }
    free(rows);
}

/* ---- exact bytes ---- */

/* Convert <src> (decoded with dim 0, libsvm base <in_base>) and require
 * the exact body <want>. */
static void conv_bytes(enum ig_format from, const char *src, uint8_t in_base, enum ig_format to,
                       uint32_t width, uint8_t out_base, const char *want, size_t want_len)
{
    struct ig_buf body;
    struct ig_rowset in, out;
    struct ig_codec_error err = {0, ""};
    int rv;

    ig_buf_init(&body, BODY_MAX);
    decode_ok(from, src, strlen(src), 0, in_base, &in);
    memset(&out, 0, sizeof(out));
    out.index_base = out_base;
    rv = ig_convert_rows(from, &in, to, width, &body, &out, &err);
    if (rv != 0)
        fail_msg("%s -> %s: %s", fmt_name[from], fmt_name[to], err.msg);
    if (body.len != want_len || memcmp(body.data, want, want_len) != 0)
        fail_msg("%s -> %s: got '%.*s', want '%s'", fmt_name[from], fmt_name[to], (int)body.len,
                 body.data, want);
    ig_rowset_clear(&in);
    ig_rowset_clear(&out);
    ig_buf_clear(&body);
}

static void conv_str(enum ig_format from, const char *src, enum ig_format to, uint32_t width,
                     const char *want)
{
    conv_bytes(from, src, 0, to, width, 0, want, strlen(want));
}

static void test_rows_bytes(void **state)
{
    (void)state;
    conv_str(IG_FMT_CSV, "1.5,2,-0\n0.1, 1e300 ,\"3\"\n", IG_FMT_JSONL, 0,
             "[1.5,2.0,-0.0]\n[0.1,1e+300,3.0]\n");
    conv_str(IG_FMT_CSV, "1.5,2\n", IG_FMT_JSON, 0, "{\"instances\":[[1.5,2.0]]}");
    conv_str(IG_FMT_CSV, "1.5,0,2\n", IG_FMT_LIBSVM, 0, "0 0:1.5 2:2.0\n");
    conv_str(IG_FMT_CSV, "0,0\n", IG_FMT_LIBSVM, 0, "0\n");
    conv_str(IG_FMT_LIBSVM, "1 0:1.5 3:2\n", IG_FMT_CSV, 5, "1.5,0,0,2.0,0\n");
    conv_str(IG_FMT_LIBSVM, "1 0:1.5 3:2\n7\n", IG_FMT_JSONL, 5,
             "{\"features\":{\"keys\":[0,3],\"shape\":[5],\"values\":[1.5,2.0]}}\n"
             "{\"features\":{\"keys\":[],\"shape\":[5],\"values\":[]}}\n");
    conv_str(IG_FMT_LIBSVM, "1 0:1.5 3:2\n", IG_FMT_JSON, 5,
             "{\"instances\":[{\"features\":{\"keys\":[0,3],\"shape\":[5],\"values\":[1.5,"
             "2.0]}}]}");
    conv_bytes(IG_FMT_LIBSVM, "1 0:1.5 3:2\n", 0, IG_FMT_LIBSVM, 0, 1, "0 1:1.5 4:2.0\n", 14);
    conv_bytes(IG_FMT_LIBSVM, "1 1:1.5 4:2\n", 1, IG_FMT_LIBSVM, 0, 0, "0 0:1.5 3:2.0\n", 14);
    /* same format, same base: the text as it is */
    conv_bytes(IG_FMT_LIBSVM, "1 1:1.5  4:2\r\n", 1, IG_FMT_LIBSVM, 0, 1, "1 1:1.5  4:2\n", 13);
    conv_str(IG_FMT_JSONL, "{\"features\":{\"keys\":[3,0],\"shape\":[4],\"values\":[2,-0.0]}}\n",
             IG_FMT_LIBSVM, 0, "0 0:-0.0 3:2.0\n");
    conv_str(IG_FMT_JSONL, "{\"features\":{\"keys\":[3,0],\"shape\":[4],\"values\":[2,1.5]}}\n",
             IG_FMT_CSV, 0, "1.5,0,0,2.0\n");
    conv_str(IG_FMT_JSON, "{\"data\":{\"features\":{\"values\":[1,2.5e-3]}}}", IG_FMT_CSV, 0,
             "1.0,0.0025\n");
    conv_str(IG_FMT_JSON, "[1, 2, 3]", IG_FMT_JSONL, 0, "[1.0,2.0,3.0]\n");
    conv_str(IG_FMT_JSONL, "[]", IG_FMT_LIBSVM, 0, "0\n");
    conv_str(IG_FMT_JSONL, "[123456789012345678901234567890, -0]\n", IG_FMT_CSV, 0,
             "1.2345678901234568e+29,0.0\n");
    /* copies */
    conv_str(IG_FMT_CSV, "a,\"b\nc\"\r\nd\n", IG_FMT_CSV, 0, "a,\"b\nc\"\nd\n");
    conv_str(IG_FMT_JSON, "{\"instances\":[{\"x\": \"y\"},\n 3]}", IG_FMT_JSON, 0,
             "{\"instances\":[{\"x\": \"y\"},3]}");
    conv_str(IG_FMT_JSONL, "\"s\"\n", IG_FMT_JSONL, 0, "\"s\"\n");
}

/* float32 values through text: the shortest text of the float. */
static void test_rows_float32(void **state)
{
    struct ig_buf src, body;
    struct ig_rowset in, out;
    const double v[] = {0.1f, 3.0f, -1.0e-20f, 16777216.0f, 3.4028234663852886e38};
    const char *want[] = {
        "0.1,3.0,-1e-20,16777216.0,3.4028235e+38\n",
        "[0.1,3.0,-1e-20,16777216.0,3.4028235e+38]\n",
        "{\"instances\":[[0.1,3.0,-1e-20,16777216.0,3.4028235e+38]]}",
        NULL,
        "0 0:0.1 1:3.0 2:-1e-20 3:16777216.0 4:3.4028235e+38\n",
    };

    (void)state;
    ig_buf_init(&src, BODY_MAX);
    assert_int_equal(ig_recordio_encode_row(&src, v, NULL, 5, 0), 0);
    for (int to = 0; to < IG_FMT_COUNT; to++) {
        if (want[to] == NULL)
            continue;
        ig_buf_init(&body, BODY_MAX);
        decode_ok(IG_FMT_RECORDIO, src.data, src.len, 0, 0, &in);
        memset(&out, 0, sizeof(out));
        assert_int_equal(ig_convert_rows(IG_FMT_RECORDIO, &in, (enum ig_format)to, 0, &body, &out,
                                         NULL),
                         0);
        assert_int_equal(body.len, strlen(want[to]));
        assert_memory_equal(body.data, want[to], body.len);
        ig_rowset_clear(&in);
        ig_rowset_clear(&out);
        ig_buf_clear(&body);
    }
    ig_buf_clear(&src);
}

/* RecordIO out: the encoder's bytes. */
static void test_rows_recordio_bytes(void **state)
{
    struct ig_buf want, body;
    struct ig_rowset in, out;
    const double d[] = {1.5, 2.0};
    const double sv[] = {1.5, 2.0};
    const uint64_t sk[] = {0, 3};

    (void)state;
    ig_buf_init(&want, BODY_MAX);
    ig_buf_init(&body, BODY_MAX);
    assert_int_equal(ig_recordio_encode_row(&want, d, NULL, 2, 0), 0);
    assert_int_equal(ig_recordio_encode_row(&want, sv, sk, 2, 5), 0);
    decode_ok(IG_FMT_LIBSVM, "1 0:1.5 1:2\n1 0:1.5 3:2", 23, 0, 0, &in);
    /* a libsvm row is sparse: shape [width] */
    memset(&out, 0, sizeof(out));
    assert_int_equal(ig_convert_rows(IG_FMT_LIBSVM, &in, IG_FMT_RECORDIO, 5, &body, &out, NULL),
                     0);
    ig_rowset_clear(&in);
    assert_int_equal(out.nrows, 2);
    /* the first as a dense row from CSV */
    {
        struct ig_buf b2;
        struct ig_rowset in2, out2;

        ig_buf_init(&b2, BODY_MAX);
        decode_ok(IG_FMT_CSV, "1.5,2", 5, 0, 0, &in2);
        memset(&out2, 0, sizeof(out2));
        assert_int_equal(ig_convert_rows(IG_FMT_CSV, &in2, IG_FMT_RECORDIO, 0, &b2, &out2, NULL),
                         0);
        assert_int_equal(b2.len, 32);
        /* the vector of sagemaker-protocols.md 5.3 */
        assert_memory_equal(b2.data,
                            "\x0a\x23\xd7\xce\x18\x00\x00\x00\x0a\x16\x0a\x06values\x12\x0c\x12"
                            "\x0a\x0a\x08\x00\x00\xc0\x3f\x00\x00\x00\x40",
                            32);
        assert_memory_equal(b2.data, want.data, 32);
        ig_rowset_clear(&in2);
        ig_rowset_clear(&out2);
        ig_buf_clear(&b2);
    }
    assert_int_equal(out.rows[1].len, want.len - 32);
    assert_memory_equal(body.data + out.rows[1].off, want.data + 32, want.len - 32);
    ig_rowset_clear(&out);
    ig_buf_clear(&body);
    ig_buf_clear(&want);
}

/* What was in <body> before stays; the rows index body->data. */
static void test_rows_append(void **state)
{
    struct ig_buf body;
    struct ig_rowset in, out;

    (void)state;
    ig_buf_init(&body, BODY_MAX);
    assert_int_equal(ig_buf_append_str(&body, "9,9\n"), 0);
    decode_ok(IG_FMT_JSONL, "[1,2]\n[3,4]\n", 12, 0, 0, &in);
    memset(&out, 0, sizeof(out));
    assert_int_equal(ig_convert_rows(IG_FMT_JSONL, &in, IG_FMT_CSV, 0, &body, &out, NULL), 0);
    assert_string_equal(body.data, "9,9\n1.0,2.0\n3.0,4.0\n");
    assert_int_equal(out.rows[0].off, 4);
    assert_int_equal(out.rows[0].len, 7);
    assert_int_equal(out.rows[1].off, 12);
    assert_ptr_equal(out.body, body.data);
    ig_rowset_clear(&in);
    ig_rowset_clear(&out);
    ig_buf_clear(&body);
}

/* ---- errors ---- */

/* Convert <in> and require <code>, the exact message and row; <body> as
 * it was and <out> empty. */
static void conv_fail_in(enum ig_format from, const struct ig_rowset *in, enum ig_format to,
                         uint32_t width, size_t body_max, int code, uint32_t row, const char *msg)
{
    struct ig_buf body;
    struct ig_rowset out;
    struct ig_codec_error err = {99, "unset"};

    ig_buf_init(&body, body_max);
    assert_int_equal(ig_buf_append_str(&body, "keep"), 0);
    memset(&out, 0, sizeof(out));
    out.index_base = 1;
    assert_int_equal(ig_convert_rows(from, in, to, width, &body, &out, &err), code);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.row, row);
    assert_int_equal(body.len, 4);
    assert_string_equal(body.data, "keep");
    assert_null(out.rows);
    assert_int_equal(out.nrows, 0);
    assert_int_equal(out.index_base, 1);
    ig_buf_clear(&body);
}

/* The same for <src> decoded with dim 0. */
static void conv_fail_b(enum ig_format from, const char *src, size_t len, uint8_t in_base,
                        enum ig_format to, uint32_t width, size_t body_max, int code,
                        uint32_t row, const char *msg)
{
    struct ig_rowset in;

    decode_ok(from, src, len, 0, in_base, &in);
    conv_fail_in(from, &in, to, width, body_max, code, row, msg);
    ig_rowset_clear(&in);
}

static void conv_fail(enum ig_format from, const char *src, enum ig_format to, uint32_t width,
                      uint32_t row, const char *msg)
{
    conv_fail_b(from, src, strlen(src), 0, to, width, BODY_MAX, IG_ERR_INVALID, row, msg);
}

static void test_rows_width(void **state)
{
    (void)state;
    conv_fail(IG_FMT_LIBSVM, "1 0:1\n1 3:1\n", IG_FMT_CSV, 0, 1,
              "Row 1: a libsvm row has no width; set the endpoint option feature_dim to the "
              "model's feature count to convert it to text/csv.");
    conv_fail(IG_FMT_LIBSVM, "1 0:1\n", IG_FMT_JSON, 0, 1,
              "Row 1: a libsvm row has no width; set the endpoint option feature_dim to the "
              "model's feature count to convert it to application/json.");
    conv_fail(IG_FMT_LIBSVM, "1 0:1\n", IG_FMT_RECORDIO, 0, 1,
              "Row 1: a libsvm row has no width; set the endpoint option feature_dim to the "
              "model's feature count to convert it to application/x-recordio-protobuf.");
    conv_fail(IG_FMT_LIBSVM, "1 0:1\n1 57:1\n", IG_FMT_CSV, 50, 2,
              "Row 2: feature index 57 is out of range: the model takes 50 features (indices 0 "
              "to 49).");
    conv_fail_b(IG_FMT_LIBSVM, "1 1:1\n1 51:1\n", 13, 1, IG_FMT_JSONL, 50, BODY_MAX,
                IG_ERR_INVALID, 2,
                "Row 2: feature index 51 is out of range: the model takes 50 features (indices "
                "1 to 50).");
    /* a sparse row's own width decides, and is bounded when written densely */
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[1],\"shape\":[2000000],\"values\":[1]}}",
              IG_FMT_CSV, 5, 1,
              "Row 1: a sparse row of 2000000 features is too wide to write as text/csv (at most "
              "1000000).");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[],\"shape\":[0],\"values\":[]}}",
              IG_FMT_CSV, 5, 1, "Row 1: a row of no features cannot be written as text/csv.");
    conv_fail(IG_FMT_JSONL, "[]", IG_FMT_CSV, 0, 1,
              "Row 1: a row of no features cannot be written as text/csv.");
    /* "0 999999:1": a million columns at most, and within the buffer's cap */
    conv_fail_b(IG_FMT_LIBSVM, "0 999999:1", 10, 0, IG_FMT_CSV, 1000000, 1u << 20,
                IG_ERR_TOOBIG, 0,
                "The request's rows, converted to text/csv, would take more than 1048576 bytes.");
    conv_fail_b(IG_FMT_CSV, "1,2\n3,4\n", 8, 0, IG_FMT_JSONL, 0, 16, IG_ERR_TOOBIG, 0,
                "The request's rows, converted to application/jsonlines, would take more than "
                "16 bytes.");
    /* wide but sparse where the format has a sparse form */
    conv_str(IG_FMT_LIBSVM, "0 999999:1\n", IG_FMT_JSONL, 1000000,
             "{\"features\":{\"keys\":[999999],\"shape\":[1000000],\"values\":[1.0]}}\n");
    conv_str(IG_FMT_LIBSVM, "0 4000000000:1\n", IG_FMT_LIBSVM, 0, "0 4000000000:1\n");
    conv_bytes(IG_FMT_LIBSVM, "0 4000000000:1\n", 0, IG_FMT_LIBSVM, 0, 1, "0 4000000001:1.0\n", 17);
    conv_fail_b(IG_FMT_LIBSVM, "0 4294967295:1\n", 15, 0, IG_FMT_JSONL, 0, BODY_MAX,
                IG_ERR_INVALID, 1,
                "Row 1: a libsvm row has no width; set the endpoint option feature_dim to the "
                "model's feature count to convert it to application/jsonlines.");
    {
        struct ig_rowset in, out = {.index_base = 1};
        struct ig_buf body;
        struct ig_codec_error err;

        ig_buf_init(&body, BODY_MAX);
        decode_ok(IG_FMT_LIBSVM, "0 4294967295:1\n", 15, 0, 0, &in);
        assert_int_equal(ig_convert_rows(IG_FMT_LIBSVM, &in, IG_FMT_LIBSVM, 0, &body, &out, &err),
                         IG_ERR_INVALID);
        assert_string_equal(err.msg, "Row 1: feature index 4294967296 is too large for "
                                     "text/libsvm (at most 4294967295).");
        ig_rowset_clear(&in);
        ig_buf_clear(&body);
    }
}

/* CSV rows the fast reader takes (unquoted, unpadded numbers: commas at
 * every offset of its 8-byte words) and those it leaves to the general
 * one (blanks, quotes, empty fields, not numbers): the same values and
 * messages either way. */
static void test_rows_csv_fast(void **state)
{
    (void)state;
    conv_str(IG_FMT_CSV, "1,22,333,4444,55555,666666,7777777,88888888,999999999,1\n",
             IG_FMT_JSONL, 0,
             "[1.0,22.0,333.0,4444.0,55555.0,666666.0,7777777.0,88888888.0,999999999.0,"
             "1.0]\n");
    conv_str(IG_FMT_CSV, "0.123456789012,-1.5e-3,+2\n7\n", IG_FMT_JSONL, 0,
             "[0.123456789012,-0.0015,2.0]\n[7.0]\n");
    /* blanks at either end of a field, quotes: the general reader */
    conv_str(IG_FMT_CSV, "1, 2,3 ,\t4,5\t,\"6\",7\n", IG_FMT_JSONL, 0,
             "[1.0,2.0,3.0,4.0,5.0,6.0,7.0]\n");
    conv_str(IG_FMT_CSV, "12345678, 1\n", IG_FMT_JSONL, 0, "[12345678.0,1.0]\n");
    conv_fail(IG_FMT_CSV, "1,2,\n", IG_FMT_JSONL, 0, 1, "Row 1, column 3: empty field.");
    conv_fail(IG_FMT_CSV, ",1\n", IG_FMT_JSONL, 0, 1, "Row 1, column 1: empty field.");
    conv_fail(IG_FMT_CSV, "1,2,3,4,5,6,7,8,9,1x\n", IG_FMT_JSONL, 0, 1,
              "Row 1, column 10: '1x' is not a number.");
    conv_fail(IG_FMT_CSV, "1,2\n1.5,nan\n", IG_FMT_JSONL, 0, 2,
              "Row 2, column 2: 'nan' is not a number.");
    conv_fail(IG_FMT_CSV, "1,--2\n", IG_FMT_JSONL, 0, 1,
              "Row 1, column 2: '--2' is not a number.");
    conv_fail(IG_FMT_CSV, "1,1e999\n", IG_FMT_RECORDIO, 0, 1,
              "Row 1, column 2: '1e999' is not a number.");
}

static void test_rows_errors(void **state)
{
    (void)state;
    conv_fail(IG_FMT_CSV, "1,2\na,1\n", IG_FMT_JSONL, 0, 2,
              "Row 2, column 1: 'a' is not a number.");
    conv_fail(IG_FMT_CSV, "1,,2\n", IG_FMT_JSONL, 0, 1, "Row 1, column 2: empty field.");
    conv_fail(IG_FMT_CSV, "1,\"a\"\"b\"\n", IG_FMT_JSONL, 0, 1,
              "Row 1, column 2: 'a\"\"b' is not a number.");
    conv_fail(IG_FMT_CSV, "1,1e999\n", IG_FMT_JSONL, 0, 1,
              "Row 1, column 2: '1e999' is not a number.");
    conv_fail(IG_FMT_JSONL, "[1,\"x\"]\n", IG_FMT_CSV, 0, 1,
              "Row 1: feature 2 is not a number.");
    conv_fail(IG_FMT_JSONL, "{\"x\":1}\n", IG_FMT_CSV, 0, 1,
              "Row 1: expected an array of numbers or an object with 'features'.");
    conv_fail(IG_FMT_JSONL, "\"s\"\n", IG_FMT_CSV, 0, 1,
              "Row 1: expected an array of numbers or an object with 'features'.");
    conv_fail(IG_FMT_JSONL, "{\"data\":1}\n", IG_FMT_CSV, 0, 1,
              "Row 1: 'data' must be an object with 'features'.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[0]}}\n", IG_FMT_CSV, 0, 1,
              "Row 1: 'values' must be an array of numbers.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[0],\"values\":[1]}}\n", IG_FMT_CSV, 0, 1,
              "Row 1: sparse 'features' needs a 'shape'.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[0],\"shape\":[1,2],\"values\":[1]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: 'shape' must be an array of one integer.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[0],\"shape\":[-1],\"values\":[1]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: the shape [-1] is out of range.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[5],\"shape\":[5],\"values\":[1]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: key 5 is out of range for 5 features.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[2,1,2],\"shape\":[5],\"values\":[1,2,3]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: key 2 appears twice.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[1,2],\"shape\":[5],\"values\":[1]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: 'keys' has 2 entries but 'values' has 1.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[1.5],\"shape\":[5],\"values\":[1]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: 'keys' must be an array of integers.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[1],\"shape\":[5],\"values\":[\"a\"]}}\n",
              IG_FMT_CSV, 0, 1, "Row 1: value 1 is not a number.");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"shape\":[3],\"values\":[1]}}\n", IG_FMT_CSV, 0, 1,
              "Row 1: expected 3 features, found 1.");
    conv_fail(IG_FMT_JSONL, "{\"features\":7}\n", IG_FMT_CSV, 0, 1,
              "Row 1: 'features' must be an array of numbers.");
    conv_fail(IG_FMT_CSV, "1,1e300\n", IG_FMT_RECORDIO, 0, 1,
              "Row 1: the value 1e+300 does not fit a float32 (application/x-recordio-protobuf "
              "carries float32 features).");
    conv_fail(IG_FMT_JSONL, "{\"features\":{\"keys\":[0],\"shape\":[4294967296],\"values\":[1]}}",
              IG_FMT_RECORDIO, 0, 1, "Row 1: the shape [4294967296] is out of range.");
}

/* RecordIO rows that the decoder (dim 0) passes but that have no vector
 * to convert. */
static void test_rows_recordio_errors(void **state)
{
    Aialgs__Data__Record rec = AIALGS__DATA__RECORD__INIT;
    Aialgs__Data__Record__FeaturesEntry ent = AIALGS__DATA__RECORD__FEATURES_ENTRY__INIT;
    Aialgs__Data__Record__FeaturesEntry *ptr = &ent;
    Aialgs__Data__Value val = AIALGS__DATA__VALUE__INIT;
    Aialgs__Data__Float64Tensor t64 = AIALGS__DATA__FLOAT64_TENSOR__INIT;
    Aialgs__Data__Int32Tensor t32 = AIALGS__DATA__INT32_TENSOR__INIT;
    double dv[2] = {0.1, -2.5};
    int32_t iv[3] = {7, -1, 0};
    uint64_t keys[2] = {1, 8}, shape[2] = {3, 4};
    uint8_t pb[256];
    struct ig_buf src;
    size_t n;

    (void)state;
    ig_buf_init(&src, BODY_MAX);
    /* a float64 tensor, sparse with a 2-d shape (12 elements) */
    t64.n_values = 2;
    t64.values = dv;
    t64.n_keys = 2;
    t64.keys = keys;
    t64.n_shape = 2;
    t64.shape = shape;
    val.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR;
    val.float64_tensor = &t64;
    ent.key = (char *)"values";
    ent.value = &val;
    rec.n_features = 1;
    rec.features = &ptr;
    n = aialgs__data__record__pack(&rec, pb);
    assert_int_equal(ig_recordio_frame(&src, pb, n), 0);
    /* an int32 tensor, dense */
    t32.n_values = 3;
    t32.values = iv;
    val.value_case = AIALGS__DATA__VALUE__VALUE_INT32_TENSOR;
    val.int32_tensor = &t32;
    n = aialgs__data__record__pack(&rec, pb);
    assert_int_equal(ig_recordio_frame(&src, pb, n), 0);
    {
        struct ig_buf body;
        struct ig_rowset in, out;

        ig_buf_init(&body, BODY_MAX);
        decode_ok(IG_FMT_RECORDIO, src.data, src.len, 0, 0, &in);
        memset(&out, 0, sizeof(out));
        assert_int_equal(ig_convert_rows(IG_FMT_RECORDIO, &in, IG_FMT_JSONL, 0, &body, &out, NULL),
                         0);
        assert_string_equal(body.data,
                            "{\"features\":{\"keys\":[1,8],\"shape\":[12],\"values\":[0.1,-2.5]}}\n"
                            "[7.0,-1.0,0.0]\n");
        ig_rowset_clear(&out);
        ig_buf_reset(&body);
        memset(&out, 0, sizeof(out));
        assert_int_equal(ig_convert_rows(IG_FMT_RECORDIO, &in, IG_FMT_CSV, 0, &body, &out, NULL),
                         0);
        assert_string_equal(body.data, "0,0.1,0,0,0,0,0,0,-2.5,0,0,0\n7.0,-1.0,0.0\n");
        ig_rowset_clear(&out);
        ig_rowset_clear(&in);
        ig_buf_clear(&body);
    }
    /* rows that were not decoded: the converter checks what it reads as
     * the decoder would */
    {
        struct ig_row whole;
        struct ig_rowset in = {.rows = &whole, .nrows = 1};

        ig_buf_reset(&src);
        ent.key = (char *)"other";
        n = aialgs__data__record__pack(&rec, pb);
        assert_int_equal(ig_recordio_frame(&src, pb, n), 0);
        whole = (struct ig_row){0, (uint32_t)src.len};
        in.body = src.data;
        in.body_len = src.len;
        conv_fail_in(IG_FMT_RECORDIO, &in, IG_FMT_CSV, 0, BODY_MAX, IG_ERR_INVALID, 1,
                     "Row 1: the record has no features[\"values\"] tensor.");
        ig_buf_reset(&src);
        assert_int_equal(ig_recordio_frame(&src, "\xff\xff", 2), 0);
        whole.len = (uint32_t)src.len;
        in.body = src.data;
        conv_fail_in(IG_FMT_RECORDIO, &in, IG_FMT_CSV, 0, BODY_MAX, IG_ERR_INVALID, 1,
                     "Row 1: the record is not a valid RecordIO-protobuf Record (the protobuf "
                     "does not parse).");
        /* two records in one row */
        ig_buf_reset(&src);
        ent.key = (char *)"values";
        n = aialgs__data__record__pack(&rec, pb);
        assert_int_equal(ig_recordio_frame(&src, pb, n), 0);
        assert_int_equal(ig_recordio_frame(&src, pb, n), 0);
        whole.len = (uint32_t)src.len;
        in.body = src.data;
        conv_fail_in(IG_FMT_RECORDIO, &in, IG_FMT_CSV, 0, BODY_MAX, IG_ERR_INVALID, 1,
                     "Row 1: the row holds more than one RecordIO record.");
        /* a text row that is no number */
        in.body = "1,x";
        whole.len = 3;
        conv_fail_in(IG_FMT_CSV, &in, IG_FMT_JSON, 0, BODY_MAX, IG_ERR_INVALID, 1,
                     "Row 1, column 2: 'x' is not a number.");
        in.body = "[1,\"x\"";
        whole.len = 7;
        conv_fail_in(IG_FMT_JSONL, &in, IG_FMT_CSV, 0, BODY_MAX, IG_ERR_INVALID, 1,
                     "Row 1: invalid JSON: ']' expected near end of file at column 7.");
    }
    ig_buf_clear(&src);
}

/* The rows array is charged to out->budget. */
static void test_rows_budget(void **state)
{
    struct ig_budget *b = ig_budget_new(64, NULL);
    struct ig_buf body;
    struct ig_rowset in, out;
    struct ig_codec_error err;

    (void)state;
    ig_buf_init(&body, BODY_MAX);
    decode_ok(IG_FMT_CSV, "1\n2\n3\n4\n5\n6\n7\n8\n9\n", 18, 0, 0, &in);
    memset(&out, 0, sizeof(out));
    out.budget = b;
    assert_int_equal(ig_convert_rows(IG_FMT_CSV, &in, IG_FMT_JSONL, 0, &body, &out, &err),
                     IG_ERR_FULL);
    assert_int_equal(err.row, 1);
    assert_int_equal(ig_budget_held(b), 0);
    assert_ptr_equal(out.budget, b);
    assert_int_equal(body.len, 0);
    ig_rowset_clear(&in);
    ig_buf_clear(&body);
    ig_budget_unref(b);
}

/* ---- predictions ---- */

static void pred_ok_n(enum ig_format from, const char *p, size_t len, enum ig_format to,
                      const char *want, size_t want_len)
{
    struct ig_buf out;
    struct ig_codec_error err = {0, ""};
    int rv;

    ig_buf_init(&out, 1u << 20);
    assert_int_equal(ig_buf_append_str(&out, "<"), 0);
    rv = ig_convert_pred(from, p, len, to, 7, &out, &err);
    if (rv != 0)
        fail_msg("%s -> %s: %s", fmt_name[from], fmt_name[to], err.msg);
    if (out.len != want_len + 1 || memcmp(out.data + 1, want, want_len) != 0)
        fail_msg("%s -> %s: got '%.*s', want '%s'", fmt_name[from], fmt_name[to],
                 (int)out.len - 1, out.data + 1, want);
    ig_buf_clear(&out);
}

/* <want> a string literal, NUL bytes and all */
#define PRED_OK_LIT(from, p, len, to, want) pred_ok_n(from, p, len, to, want, sizeof(want) - 1)
/* <p> a string literal */
#define PRED_OK_IN(from, p, to, want, wlen) pred_ok_n(from, p, sizeof(p) - 1, to, want, wlen)

static void pred_ok(enum ig_format from, const char *p, enum ig_format to, const char *want)
{
    pred_ok_n(from, p, strlen(p), to, want, strlen(want));
}

static void pred_fail_n(enum ig_format from, const char *p, size_t len, enum ig_format to,
                        int code, const char *msg)
{
    struct ig_buf out;
    struct ig_codec_error err = {99, "unset"};

    ig_buf_init(&out, 1u << 20);
    assert_int_equal(ig_buf_append_str(&out, "<"), 0);
    assert_int_equal(ig_convert_pred(from, p, len, to, 7, &out, &err), code);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.row, 7);
    assert_int_equal(out.len, 1);
    assert_string_equal(out.data, "<");
    ig_buf_clear(&out);
}

static void pred_fail(enum ig_format from, const char *p, enum ig_format to, const char *msg)
{
    pred_fail_n(from, p, strlen(p), to, IG_ERR_INVALID, msg);
}

/* The framed label record of <n> labels. */
static void labels(struct ig_buf *b, const struct ig_recordio_label *l, size_t n)
{
    ig_buf_init(b, 1u << 20);
    assert_int_equal(ig_recordio_encode_labels(b, l, n), 0);
}

static void test_pred_text(void **state)
{
    (void)state;
    /* CSV -> JSON / JSON Lines */
    pred_ok(IG_FMT_CSV, "0.73", IG_FMT_JSON, "0.73");
    pred_ok(IG_FMT_CSV, "1,3.5", IG_FMT_JSON, "[1,3.5]");
    pred_ok(IG_FMT_CSV, " 2.50 ,+1,007,-0, 1e2,\"4\"", IG_FMT_JSONL, "[2.5,1,7,0,100.0,4]");
    pred_ok(IG_FMT_CSV, "0.4386190772", IG_FMT_JSONL, "0.4386190772");
    pred_ok(IG_FMT_CSV, "99999999999999999999", IG_FMT_JSON, "1e+20");
    /* JSON -> CSV */
    pred_ok(IG_FMT_JSON, "{\"score\":0.73}", IG_FMT_CSV, "0.73");
    pred_ok(IG_FMT_JSON, "{\"closest_cluster\": 1, \"distance_to_cluster\": 3.5}", IG_FMT_CSV,
            "1,3.5");
    pred_ok(IG_FMT_JSONL, "{\"score\":[0.1,0.9],\"predicted_label\":1.0}", IG_FMT_CSV,
            "0.1,0.9,1.0");
    pred_ok(IG_FMT_JSON, " 0.73 ", IG_FMT_CSV, "0.73");
    pred_ok(IG_FMT_JSON, "[0.1, 0.9]", IG_FMT_CSV, "0.1,0.9");
    pred_ok(IG_FMT_JSON, "[12345678901234567890123,-0,-0.0]", IG_FMT_CSV,
            "1.2345678901234568e+22,0,-0.0");
    /* JSON <-> JSON Lines: as it is, on one line */
    pred_ok(IG_FMT_JSON, "{\n  \"a\": [1,\r\n 2]\n}", IG_FMT_JSONL, "{   \"a\": [1,   2] }");
    pred_ok(IG_FMT_JSONL, "{\"s\":\"x\"}", IG_FMT_JSON, "{\"s\":\"x\"}");
    /* same format: as it is */
    pred_ok(IG_FMT_CSV, "a,b", IG_FMT_CSV, "a,b");
    pred_ok(IG_FMT_JSON, "{\"s\":\n1}", IG_FMT_JSON, "{\"s\":\n1}");
}

static void test_pred_recordio(void **state)
{
    struct ig_buf rb, want;
    const double cc[] = {1.0}, dist[] = {3.5}, proj[] = {1.0, 0.1, -2.25}, sc[] = {0.1, 0.9};
    const double pl[] = {2.0};

    (void)state;
    /* K-Means: the label map in bytewise order, 1-value tensors as numbers */
    {
        const struct ig_recordio_label l[] = {{"distance_to_cluster", dist, 1},
                                              {"closest_cluster", cc, 1}};

        labels(&rb, l, 2);
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON,
                    "{\"closest_cluster\":1.0,\"distance_to_cluster\":3.5}");
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSONL,
                    "{\"closest_cluster\":1.0,\"distance_to_cluster\":3.5}");
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, "1.0,3.5");
        pred_ok_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_RECORDIO, rb.data, rb.len);
        /* and back: the JSON object is the same record, byte for byte */
        PRED_OK_IN(IG_FMT_JSON, "{\"closest_cluster\":1.0,\"distance_to_cluster\":3.5}",
                   IG_FMT_RECORDIO, rb.data, rb.len);
        PRED_OK_IN(IG_FMT_JSONL, "{\"distance_to_cluster\":3.5,\"closest_cluster\":1}",
                   IG_FMT_RECORDIO, rb.data, rb.len);
        ig_buf_clear(&rb);
    }
    /* PCA: an array; float32 values as their shortest text */
    {
        const struct ig_recordio_label l[] = {{"projection", proj, 3}};

        labels(&rb, l, 1);
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON,
                    "{\"projection\":[1.0,0.1,-2.25]}");
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, "1.0,0.1,-2.25");
        ig_buf_clear(&rb);
    }
    /* Linear Learner multiclass */
    {
        const struct ig_recordio_label l[] = {{"score", sc, 2}, {"predicted_label", pl, 1}};

        labels(&rb, l, 2);
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON,
                    "{\"predicted_label\":2.0,\"score\":[0.1,0.9]}");
        PRED_OK_IN(IG_FMT_JSON, "{\"score\":[0.1,0.9],\"predicted_label\":2}", IG_FMT_RECORDIO,
                   rb.data, rb.len);
        ig_buf_clear(&rb);
    }
    /* numbers, arrays and CSV lines are the label "score" */
    {
        const struct ig_recordio_label l1[] = {{"score", pl, 1}}, l2[] = {{"score", sc, 2}};

        labels(&want, l1, 1);
        PRED_OK_IN(IG_FMT_JSON, "2", IG_FMT_RECORDIO, want.data, want.len);
        PRED_OK_IN(IG_FMT_CSV, "2.0", IG_FMT_RECORDIO, want.data, want.len);
        PRED_OK_LIT(IG_FMT_RECORDIO, want.data, want.len, IG_FMT_CSV, "2.0");
        ig_buf_clear(&want);
        labels(&want, l2, 1);
        PRED_OK_IN(IG_FMT_JSON, "[0.1,0.9]", IG_FMT_RECORDIO, want.data, want.len);
        PRED_OK_IN(IG_FMT_CSV, "0.1,0.9", IG_FMT_RECORDIO, want.data, want.len);
        ig_buf_clear(&want);
    }
    /* a name that needs escaping in JSON, and one from a JSON escape */
    {
        const struct ig_recordio_label l[] = {{"a\"b\\c\x01\xc3\xa9", pl, 1}};

        labels(&rb, l, 1);
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON,
                    "{\"a\\\"b\\\\c\\u0001\xc3\xa9\":2.0}");
        PRED_OK_IN(IG_FMT_JSON, "{\"a\\\"b\\\\c\\u0001\\u00e9\":2}", IG_FMT_RECORDIO, rb.data,
                   rb.len);
        ig_buf_clear(&rb);
    }
}

/* A record with one label <name> of the given Value. */
static void label_record(struct ig_buf *b, const char *name, Aialgs__Data__Value *val)
{
    Aialgs__Data__Record rec = AIALGS__DATA__RECORD__INIT;
    Aialgs__Data__Record__LabelEntry ent = AIALGS__DATA__RECORD__LABEL_ENTRY__INIT, *ptr = &ent;
    uint8_t pb[512];
    size_t n;

    ent.key = (char *)(uintptr_t)name;
    ent.value = val;
    rec.n_label = 1;
    rec.label = &ptr;
    assert_true(aialgs__data__record__get_packed_size(&rec) <= sizeof(pb));
    n = aialgs__data__record__pack(&rec, pb);
    ig_buf_init(b, 1u << 20);
    assert_int_equal(ig_recordio_frame(b, pb, n), 0);
}

static void test_pred_recordio_types(void **state)
{
    Aialgs__Data__Value val = AIALGS__DATA__VALUE__INIT;
    Aialgs__Data__Float64Tensor t64 = AIALGS__DATA__FLOAT64_TENSOR__INIT;
    Aialgs__Data__Int32Tensor t32 = AIALGS__DATA__INT32_TENSOR__INIT;
    Aialgs__Data__Float32Tensor t = AIALGS__DATA__FLOAT32_TENSOR__INIT;
    Aialgs__Data__Bytes by = AIALGS__DATA__BYTES__INIT;
    double dv[] = {0.1, 1e300};
    int32_t iv[] = {3};
    float fv[] = {NAN};
    uint64_t keys[] = {0};
    struct ig_buf rb;

    (void)state;
    t64.n_values = 2;
    t64.values = dv;
    val.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR;
    val.float64_tensor = &t64;
    label_record(&rb, "p", &val);
    PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON, "{\"p\":[0.1,1e+300]}");
    pred_fail_n(IG_FMT_JSON, "{\"p\":[0.1,1e+300]}", 18, IG_FMT_RECORDIO, IG_ERR_INVALID,
                "Row 7: the model's answer '{\"p\":[0.1,1e+300]}' cannot be written as "
                "application/x-recordio-protobuf: 1e+300 does not fit a float32.");
    ig_buf_clear(&rb);
    t32.n_values = 1;
    t32.values = iv;
    val.value_case = AIALGS__DATA__VALUE__VALUE_INT32_TENSOR;
    val.int32_tensor = &t32;
    label_record(&rb, "predicted_label", &val);
    PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON, "{\"predicted_label\":3}");
    PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, "3");
    ig_buf_clear(&rb);
    /* what has no text */
    t.n_values = 1;
    t.values = fv;
    t.n_keys = 1;
    t.keys = keys;
    val.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
    val.float32_tensor = &t;
    label_record(&rb, "s", &val);
    pred_fail_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer cannot be written as text/csv: the label 's' "
                "is a sparse tensor.");
    ig_buf_clear(&rb);
    t.n_keys = 0;
    label_record(&rb, "s", &val);
    pred_fail_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer cannot be written as application/json: the "
                "label 's' holds a value that is not a finite number.");
    ig_buf_clear(&rb);
    val.value_case = AIALGS__DATA__VALUE__VALUE_BYTES;
    val.bytes = &by;
    label_record(&rb, "b", &val);
    pred_fail_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer cannot be written as application/json: the "
                "label 'b' is not a tensor.");
    ig_buf_clear(&rb);
    label_record(&rb, "\xff", NULL);
    pred_fail_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer cannot be written as text/csv: the label '?' "
                "is not a tensor.");
    ig_buf_clear(&rb);
    /* no labels: {} in JSON, nothing to write in CSV */
    {
        Aialgs__Data__Record rec = AIALGS__DATA__RECORD__INIT;
        uint8_t pb[8];
        size_t n = aialgs__data__record__pack(&rec, pb);

        ig_buf_init(&rb, 1024);
        assert_int_equal(ig_recordio_frame(&rb, pb, n), 0);
        PRED_OK_LIT(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_JSON, "{}");
        pred_fail_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, IG_ERR_INVALID,
                    "Row 7: the model's RecordIO answer cannot be written as text/csv: it holds "
                    "no numbers.");
        /* two records */
        assert_int_equal(ig_recordio_frame(&rb, pb, n), 0);
        pred_fail_n(IG_FMT_RECORDIO, rb.data, rb.len, IG_FMT_CSV, IG_ERR_INVALID,
                    "Row 7: the model's RecordIO answer holds more than one record.");
        ig_buf_clear(&rb);
    }
    pred_fail_n(IG_FMT_RECORDIO, "\x0a\x23\xd7\xce\x08\x00\x00\x00\x01", 9, IG_FMT_CSV,
                IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer is not one whole RecordIO record: truncated "
                "RecordIO record: the body ends inside its data.");
    pred_fail_n(IG_FMT_RECORDIO, "abcdefgh", 8, IG_FMT_CSV, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer is not one whole RecordIO record: bad "
                "RecordIO magic 0x64636261 at byte 0 (expected 0xced7230a).");
    pred_fail_n(IG_FMT_RECORDIO, "\x0a\x23\xd7\xce\x02\x00\x00\x00\xff\xff\x00\x00", 12,
                IG_FMT_CSV, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer is not a valid RecordIO-protobuf Record (the "
                "protobuf does not parse).");
    pred_fail_n(IG_FMT_RECORDIO, "", 0, IG_FMT_CSV, IG_ERR_INVALID,
                "Row 7: the model's RecordIO answer is empty.");
}

static void test_pred_errors(void **state)
{
    (void)state;
    /* JSON <-> JSON Lines: one whole JSON value, or the client would get
     * a broken document */
    pred_fail(IG_FMT_JSONL, "[0.1,0.9]es\":", IG_FMT_JSON,
              "Row 7: the model's answer '[0.1,0.9]es\":' is not one JSON value.");
    pred_fail(IG_FMT_JSON, "{\"a\":1", IG_FMT_JSONL,
              "Row 7: the model's answer '{\"a\":1' is not one JSON value.");
    pred_fail(IG_FMT_JSONL, "", IG_FMT_JSON, "Row 7: the model's answer '' is not one JSON value.");
    pred_fail(IG_FMT_JSON, "{\"a\":{\"b\":1}}", IG_FMT_CSV,
              "Row 7: the model's answer '{\"a\":{\"b\":1}}' cannot be written as text/csv: 'a' is "
              "not a number or an array of numbers.");
    pred_fail(IG_FMT_JSON, "{\"a\":1,\"label\":\"cat\"}", IG_FMT_RECORDIO,
              "Row 7: the model's answer '{\"a\":1,\"label\":\"cat\"}' cannot be written as "
              "application/x-recordio-protobuf: 'label' is not a number or an array of numbers.");
    pred_fail(IG_FMT_JSON, "[[1,2]]", IG_FMT_CSV,
              "Row 7: the model's answer '[[1,2]]' cannot be written as text/csv: it is not a "
              "number or an array of numbers.");
    pred_fail(IG_FMT_JSONL, "\"yes\"", IG_FMT_CSV,
              "Row 7: the model's answer '\"yes\"' cannot be written as text/csv: it is not a "
              "number or an array of numbers.");
    pred_fail(IG_FMT_JSON, "null", IG_FMT_RECORDIO,
              "Row 7: the model's answer 'null' cannot be written as "
              "application/x-recordio-protobuf: it is not a number or an array of numbers.");
    pred_fail(IG_FMT_JSON, "{}", IG_FMT_CSV,
              "Row 7: the model's answer '{}' cannot be written as text/csv: it holds no numbers.");
    pred_fail(IG_FMT_JSON, "[]", IG_FMT_CSV,
              "Row 7: the model's answer '[]' cannot be written as text/csv: it holds no numbers.");
    pred_fail(IG_FMT_JSON, "{}", IG_FMT_RECORDIO,
              "Row 7: the model's answer '{}' cannot be written as "
              "application/x-recordio-protobuf: it holds no outputs.");
    pred_fail(IG_FMT_JSON, "{\"a\":1,\"a\":2}", IG_FMT_RECORDIO,
              "Row 7: the model's answer '{\"a\":1,\"a\":2}' cannot be written as "
              "application/x-recordio-protobuf: the output 'a' appears twice.");
    pred_fail(IG_FMT_JSON, "{\"a\\u0000\":1}", IG_FMT_RECORDIO,
              "Row 7: the model's answer '{\"a\\u0000\":1}' cannot be written as "
              "application/x-recordio-protobuf: the output name 'a' holds a NUL byte.");
    pred_fail(IG_FMT_JSON, "{\"a\":1", IG_FMT_CSV,
              "Row 7: the model's answer '{\"a\":1' is not valid JSON: '}' expected near end of "
              "file at line 1 column 6.");
    pred_fail(IG_FMT_JSON, "1 2", IG_FMT_CSV,
              "Row 7: the model's answer '1 2' is not valid JSON: end of file expected near '2' "
              "at line 1 column 3.");
    pred_fail(IG_FMT_JSON, "1e999", IG_FMT_CSV,
              "Row 7: the model's answer '1e999' is not valid JSON: real number overflow near "
              "'1e999' at line 1 column 5.");
    pred_fail(IG_FMT_JSON, "{\"\xff\":1}", IG_FMT_CSV,
              "Row 7: the model's answer '{\"?\":1}' is not valid JSON: unable to decode byte "
              "0xff near '\"' at line 1 column 2.");
    pred_fail(IG_FMT_JSON, "1e39", IG_FMT_RECORDIO,
              "Row 7: the model's answer '1e39' cannot be written as "
              "application/x-recordio-protobuf: 1e+39 does not fit a float32.");
    pred_fail(IG_FMT_CSV, "1,a", IG_FMT_JSON,
              "Row 7: the model's answer '1,a' is not a CSV line of numbers: column 2 is not a "
              "number.");
    pred_fail(IG_FMT_CSV, "1,", IG_FMT_JSON,
              "Row 7: the model's answer '1,' is not a CSV line of numbers: column 2 is empty.");
    pred_fail(IG_FMT_CSV, "", IG_FMT_JSON,
              "Row 7: the model's answer '' is not a CSV line of numbers: column 1 is empty.");
    pred_fail(IG_FMT_CSV, "0,\"[0.1, 0.9]\"", IG_FMT_JSON,
              "Row 7: the model's answer '0,\"[0.1, 0.9]\"' is not a CSV line of numbers: column 2 "
              "is not a number.");
    pred_fail(IG_FMT_CSV, "1,nan", IG_FMT_RECORDIO,
              "Row 7: the model's answer '1,nan' is not a CSV line of numbers: column 2 is not a "
              "number.");
    /* a long answer is quoted cut short */
    pred_fail(IG_FMT_JSON, "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":true}",
              IG_FMT_CSV,
              "Row 7: the model's answer '{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' cannot be "
              "written as text/csv: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is not a "
              "number or an array of numbers.");
    /* libsvm is no response format */
    pred_fail_n(IG_FMT_CSV, "1", 1, IG_FMT_LIBSVM, IG_ERR_UNSUPPORTED,
                "Row 7: no conversion of answers from text/csv to text/libsvm.");
    pred_fail_n(IG_FMT_LIBSVM, "1", 1, IG_FMT_CSV, IG_ERR_UNSUPPORTED,
                "Row 7: no conversion of answers from text/libsvm to text/csv.");
    /* the output's cap */
    {
        struct ig_buf out;
        struct ig_codec_error err;

        ig_buf_init(&out, 4);
        assert_int_equal(ig_convert_pred(IG_FMT_CSV, "1,2,3", 5, IG_FMT_JSON, 2, &out, &err),
                         IG_ERR_TOOBIG);
        assert_string_equal(err.msg, "Row 2: the model's answer, converted to application/json, "
                                     "does not fit in the response.");
        assert_int_equal(out.len, 0);
        ig_buf_clear(&out);
    }
}

/* Random answers: CSV -> JSON -> RecordIO -> JSON Lines -> CSV keeps the
 * numbers (float32 past RecordIO). */
static void test_pred_random(void **state)
{
    (void)state;
    for (int k = 0; k < 300; k++) {
        struct ig_buf a, b, c, d, e;
        size_t n = 1 + rng() % 6;
        float want[8];

        ig_buf_init(&a, 1u << 16);
        ig_buf_init(&b, 1u << 16);
        ig_buf_init(&c, 1u << 16);
        ig_buf_init(&d, 1u << 16);
        ig_buf_init(&e, 1u << 16);
        for (size_t i = 0; i < n; i++) {
            double v = rand_value();

            /* "-0" is text of the integer 0 */
            want[i] = v == 0 ? 0.0f : (float)v;
            assert_int_equal(ig_buf_printf(&a, "%s%.17g", i ? "," : "", v), 0);
        }
        assert_int_equal(ig_convert_pred(IG_FMT_CSV, a.data, a.len, IG_FMT_JSON, 1, &b, NULL), 0);
        assert_int_equal(ig_convert_pred(IG_FMT_JSON, b.data, b.len, IG_FMT_RECORDIO, 1, &c, NULL),
                         0);
        assert_int_equal(ig_convert_pred(IG_FMT_RECORDIO, c.data, c.len, IG_FMT_JSONL, 1, &d, NULL),
                         0);
        assert_int_equal(ig_convert_pred(IG_FMT_JSONL, d.data, d.len, IG_FMT_CSV, 1, &e, NULL), 0);
        {
            const char *p = e.data;

            for (size_t i = 0; i < n; i++) {
                char *end;
                double v = strtod(p, &end);

                assert_true(end > p);
                if (bits32((float)v) != bits32(want[i]))
                    fail_msg("answer %d value %zu: %s -> %s", k, i, a.data, e.data);
                p = *end == ',' ? end + 1 : end;
            }
            assert_int_equal(*p, '\0');
        }
        ig_buf_clear(&a);
        ig_buf_clear(&b);
        ig_buf_clear(&c);
        ig_buf_clear(&d);
        ig_buf_clear(&e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_fixed),
        cmocka_unit_test(test_pairs_random),
        cmocka_unit_test(test_rows_bytes),
        cmocka_unit_test(test_rows_float32),
        cmocka_unit_test(test_rows_recordio_bytes),
        cmocka_unit_test(test_rows_append),
        cmocka_unit_test(test_rows_width),
        cmocka_unit_test(test_rows_errors),
        cmocka_unit_test(test_rows_csv_fast),
        cmocka_unit_test(test_rows_recordio_errors),
        cmocka_unit_test(test_rows_budget),
        cmocka_unit_test(test_pred_text),
        cmocka_unit_test(test_pred_recordio),
        cmocka_unit_test(test_pred_recordio_types),
        cmocka_unit_test(test_pred_errors),
        cmocka_unit_test(test_pred_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

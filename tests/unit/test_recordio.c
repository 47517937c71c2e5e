/*
 * test_recordio.c - application/x-recordio-protobuf: the vectors Python's
 * protobuf runtime wrote (tests/data/recordio, made by
 * tests/integration/recordio_vectors.py) decoded and re-encoded byte for
 * byte, split records, every chunk boundary, random round trips and every
 * bad input with its exact message.
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
#include <jansson.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/recordio.h"
#include "proto/record.pb-c.h"

#define MAX_REC (1u << 20)

static const char *test_path(const char *rel)
{
    static char path[4096];
    const char *root = getenv("IG_SRCDIR");

    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    return path;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* ---- collecting what the decoder hands over ---- */

struct got_rec {
    uint8_t *data;
    size_t len;
    uint32_t index;
    uint64_t frame_off;
    uint64_t frame_len;
};

struct got {
    struct got_rec *r;
    size_t n;
    size_t cap;
    int fail_at; /* return IG_ERR_CANCELLED at this record (1-based), 0: never */
};

static int got_cb(const struct ig_recordio_rec *rec, void *arg)
{
    struct got *g = arg;
    struct got_rec *r;

    assert_non_null(rec->data);
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->r = realloc(g->r, g->cap * sizeof(*g->r));
        assert_non_null(g->r);
    }
    r = &g->r[g->n++];
    r->data = malloc(rec->len + 1);
    assert_non_null(r->data);
    memcpy(r->data, rec->data, rec->len);
    r->len = rec->len;
    r->index = rec->index;
    r->frame_off = rec->frame_off;
    r->frame_len = rec->frame_len;
    assert_int_equal(r->index, g->n);
    if (g->fail_at > 0 && (size_t)g->fail_at == g->n)
        return IG_ERR_CANCELLED;
    return 0;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->r[i].data);
    free(g->r);
    memset(g, 0, sizeof(*g));
}

static void got_equal(const struct got *a, const struct got *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->r[i].len, b->r[i].len);
        assert_memory_equal(a->r[i].data, b->r[i].data, a->r[i].len);
        assert_int_equal(a->r[i].index, b->r[i].index);
        assert_int_equal(a->r[i].frame_off, b->r[i].frame_off);
        assert_int_equal(a->r[i].frame_len, b->r[i].frame_len);
    }
}

/* Decode <body> fed in the chunks cut at <cuts> (ncuts increasing offsets). */
static int decode_chunks(const uint8_t *body, size_t len, const size_t *cuts, size_t ncuts,
                         size_t max_record, struct got *g, struct ig_codec_error *err)
{
    struct ig_recordio_dec *d = NULL;
    size_t from = 0;
    int rv = 0;

    assert_int_equal(ig_recordio_dec_new(max_record, &d), 0);
    for (size_t i = 0; i <= ncuts && rv == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;

        rv = ig_recordio_dec_feed(d, body + from, to - from, got_cb, g, err);
        from = to;
    }
    if (rv == 0)
        rv = ig_recordio_dec_end(d, err);
    if (rv == 0)
        assert_int_equal(ig_recordio_dec_count(d), g->n);
    ig_recordio_dec_free(d);
    return rv;
}

static int decode_all(const uint8_t *body, size_t len, size_t max_record, struct got *g,
                      struct ig_codec_error *err)
{
    return decode_chunks(body, len, NULL, 0, max_record, g, err);
}

/* ---- the vectors of tests/data/recordio ---- */

static double *json_doubles(const json_t *a, size_t *n)
{
    double *v = calloc(json_array_size(a) + 1, sizeof(*v));

    assert_non_null(v);
    for (size_t i = 0; i < json_array_size(a); i++)
        v[i] = json_number_value(json_array_get(a, i));
    *n = json_array_size(a);
    return v;
}

static uint64_t *json_u64s(const json_t *a)
{
    uint64_t *v = calloc(json_array_size(a) + 1, sizeof(*v));

    assert_non_null(v);
    for (size_t i = 0; i < json_array_size(a); i++)
        v[i] = (uint64_t)json_integer_value(json_array_get(a, i));
    return v;
}

/* C's frame of record <rec> of a features vector, or 0 when C writes no
 * such record (float64, int32, a dense shape). */
static int encode_feature(const json_t *rec, uint32_t dim, struct ig_buf *out)
{
    const json_t *keys = json_object_get(rec, "keys");
    uint64_t *k = NULL;
    double *v;
    size_t n;
    int rv;

    if (!json_is_true(json_object_get(rec, "encode")))
        return 0;
    v = json_doubles(json_object_get(rec, "values"), &n);
    if (keys != NULL)
        k = json_u64s(keys);
    rv = ig_recordio_encode_row(out, v, k, n, dim);
    assert_int_equal(rv, 0);
    free(v);
    free(k);
    return 1;
}

static void encode_label_rec(const json_t *rec, struct ig_buf *out)
{
    const json_t *labs = json_object_get(rec, "labels");
    struct ig_recordio_label l[8];
    size_t n = json_array_size(labs);

    assert_true(n > 0 && n <= 8);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(labs, i);

        l[i].name = json_string_value(json_object_get(e, "name"));
        l[i].values = json_doubles(json_object_get(e, "values"), &l[i].n);
    }
    assert_int_equal(ig_recordio_encode_labels(out, l, n), 0);
    for (size_t i = 0; i < n; i++)
        free((void *)(uintptr_t)l[i].values);
}

static void check_vector(const json_t *v)
{
    const char *file = json_string_value(json_object_get(v, "file"));
    const char *kind = json_string_value(json_object_get(v, "kind"));
    uint32_t dim = (uint32_t)json_integer_value(json_object_get(v, "dim"));
    const json_t *recs = json_object_get(v, "records");
    char rel[256];
    struct got g = {0};
    struct ig_codec_error err = {0, ""};
    uint8_t *body;
    size_t len;

    snprintf(rel, sizeof(rel), "tests/data/recordio/%s", file);
    body = read_file(test_path(rel), &len);
    if (decode_all(body, len, MAX_REC, &g, &err) != 0)
        fail_msg("%s: %s", file, err.msg);
    assert_int_equal(g.n, json_array_size(recs));
    for (size_t i = 0; i < g.n; i++) {
        const json_t *rec = json_array_get(recs, i);
        struct ig_buf out;

        ig_buf_init(&out, 1u << 20);
        if (strcmp(kind, "features") == 0) {
            size_t n;
            double *want = json_doubles(json_object_get(rec, "dense"), &n);
            double *row = calloc(dim, sizeof(*row));

            /* Python's bytes -> C's row */
            assert_int_equal(n, dim);
            if (ig_recordio_record_to_row(g.r[i].data, g.r[i].len, (uint32_t)i + 1, dim, row,
                                          &err) != 0)
                fail_msg("%s record %zu: %s", file, i + 1, err.msg);
            for (size_t j = 0; j < dim; j++)
                if (row[j] != want[j])
                    fail_msg("%s record %zu feature %zu: %.17g != %.17g", file, i + 1, j + 1,
                             row[j], want[j]);
            assert_int_equal(ig_recordio_record_to_row(g.r[i].data, g.r[i].len, 1, 0, NULL,
                                                       &err),
                             0);
            /* C's bytes == Python's bytes */
            if (encode_feature(rec, dim, &out)) {
                assert_true(out.len >= 8);
                if (out.len == g.r[i].frame_len)
                    assert_memory_equal(out.data, body + g.r[i].frame_off, out.len);
                else /* dmlc split it: the same payload */
                    assert_true(strcmp(file, "split.rec") == 0);
                assert_int_equal(out.len - 8 - ((4 - g.r[i].len % 4) % 4), g.r[i].len);
                assert_memory_equal(out.data + 8, g.r[i].data, g.r[i].len);
            }
            free(want);
            free(row);
        } else {
            encode_label_rec(rec, &out);
            assert_int_equal(out.len, g.r[i].frame_len);
            assert_memory_equal(out.data, body + g.r[i].frame_off, out.len);
        }
        ig_buf_clear(&out);
    }
    /* the whole-body decoder: slices are the frames, features the rows */
    if (strcmp(kind, "features") == 0) {
        struct ig_rowset rs = {0};

        assert_int_equal(ig_recordio_decode((const char *)body, len, dim, 1000, &rs, &err), 0);
        assert_int_equal(rs.nrows, g.n);
        assert_ptr_equal(rs.body, body);
        for (size_t i = 0; i < g.n; i++) {
            size_t n;
            double *want = json_doubles(json_object_get(json_array_get(recs, i), "dense"), &n);

            assert_int_equal(rs.rows[i].off, g.r[i].frame_off);
            assert_int_equal(rs.rows[i].len, g.r[i].frame_len);
            assert_memory_equal(rs.features + i * dim, want, dim * sizeof(double));
            free(want);
        }
        ig_rowset_clear(&rs);
    }
    got_free(&g);
    free(body);
}

static void test_vectors(void **state)
{
    json_error_t jerr;
    json_t *m = json_load_file(test_path("tests/data/recordio/vectors.json"), 0, &jerr);
    const json_t *vs;

    (void)state;
    if (m == NULL)
        fail_msg("vectors.json: %s", jerr.text);
    vs = json_object_get(m, "vectors");
    assert_true(json_array_size(vs) >= 10);
    for (size_t i = 0; i < json_array_size(vs); i++)
        check_vector(json_array_get(vs, i));
    json_decref(m);
}

/* The hand-encoded vector of sagemaker-protocols.md 5.3. */
static void test_spec_vector(void **state)
{
    static const uint8_t want[] = {
        0x0a, 0x23, 0xd7, 0xce, 0x18, 0x00, 0x00, 0x00, 0x0a, 0x16, 0x0a,
        0x06, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x73, 0x12, 0x0c, 0x12, 0x0a,
        0x0a, 0x08, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0x40,
    };
    const double v[2] = {1.5, 2.0};
    double row[2];
    struct ig_buf out;

    (void)state;
    ig_buf_init(&out, 1024);
    assert_int_equal(ig_recordio_encode_row(&out, v, NULL, 2, 2), 0);
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    assert_int_equal(ig_recordio_record_to_row(want + 8, 24, 1, 2, row, NULL), 0);
    assert_true(row[0] == 1.5 && row[1] == 2.0);
    ig_buf_clear(&out);
}

/* ---- chunk boundaries ---- */

/* split.rec (first, middle, empty middle and last parts), sparse.rec and
 * labels_kmeans.rec in one stream. */
static uint8_t *multi_stream(size_t *len)
{
    static const char *files[] = {"split.rec", "sparse.rec", "labels_kmeans.rec"};
    uint8_t *all = NULL;

    *len = 0;
    for (size_t i = 0; i < IG_ARRAY_SIZE(files); i++) {
        char rel[256];
        size_t n;
        uint8_t *p;

        snprintf(rel, sizeof(rel), "tests/data/recordio/%s", files[i]);
        p = read_file(test_path(rel), &n);
        all = realloc(all, *len + n);
        assert_non_null(all);
        memcpy(all + *len, p, n);
        *len += n;
        free(p);
    }
    return all;
}

static void test_chunk_every_offset(void **state)
{
    struct ig_codec_error err;
    struct got whole = {0};
    size_t len;
    uint8_t *s = multi_stream(&len);

    (void)state;
    assert_int_equal(decode_all(s, len, MAX_REC, &whole, &err), 0);
    assert_int_equal(whole.n, 3 + 6 + 2);
    /* two chunks cut at every offset */
    for (size_t k = 0; k <= len; k++) {
        struct got g = {0};

        assert_int_equal(decode_chunks(s, len, &k, 1, MAX_REC, &g, &err), 0);
        got_equal(&g, &whole);
        got_free(&g);
    }
    /* three chunks cut at every pair of offsets of the split records */
    for (size_t a = 0; a <= 164; a++)
        for (size_t b = a; b <= 164; b++) {
            size_t cuts[2] = {a, b};
            struct got g = {0};

            assert_int_equal(decode_chunks(s, len, cuts, 2, MAX_REC, &g, &err), 0);
            got_equal(&g, &whole);
            got_free(&g);
        }
    /* one byte at a time */
    {
        size_t *cuts = malloc(len * sizeof(*cuts));
        struct got g = {0};

        for (size_t k = 0; k < len; k++)
            cuts[k] = k;
        assert_int_equal(decode_chunks(s, len, cuts, len, MAX_REC, &g, &err), 0);
        got_equal(&g, &whole);
        got_free(&g);
        free(cuts);
    }
    got_free(&whole);
    free(s);
}

/* ---- random round trips ---- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 11);
}

static double rnd_value(void)
{
    /* float32-exact values of every magnitude */
    return (double)(float)(((double)rnd() / 4294967296.0 - 0.5) * ldexp(1.0, (int)(rnd() % 60) - 30));
}

static void test_round_trip(void **state)
{
    struct ig_buf stream;
    double *rows;
    uint32_t dims[200];
    size_t nrows = 200, total = 0;
    struct got g = {0};
    struct ig_codec_error err;

    (void)state;
    ig_buf_init(&stream, 16u << 20);
    rows = calloc(nrows * 64, sizeof(*rows));
    assert_non_null(rows);
    for (size_t i = 0; i < nrows; i++) {
        uint32_t dim = 1 + rnd() % 64;
        double *row = rows + i * 64;

        dims[i] = dim;
        if (i % 2 == 0) {
            for (uint32_t j = 0; j < dim; j++)
                row[j] = rnd_value();
            assert_int_equal(ig_recordio_encode_row(&stream, row, NULL, dim, dim), 0);
        } else {
            uint64_t keys[64];
            double vals[64];
            size_t n = 0;

            for (uint32_t j = 0; j < dim; j++)
                if (rnd() % 4 == 0) {
                    keys[n] = j;
                    vals[n] = rnd_value();
                    row[j] = vals[n++];
                }
            assert_int_equal(ig_recordio_encode_row(&stream, vals, keys, n, dim), 0);
        }
    }
    total = stream.len;
    /* random chunks */
    for (int round = 0; round < 20; round++) {
        size_t cuts[16], nc = 0, at = 0;

        while (nc < 16) {
            at += rnd() % (total / 8 + 1);
            if (at > total)
                break;
            cuts[nc++] = at;
        }
        assert_int_equal(
            decode_chunks((const uint8_t *)stream.data, total, cuts, nc, MAX_REC, &g, &err), 0);
        assert_int_equal(g.n, nrows);
        for (size_t i = 0; i < nrows; i++) {
            double row[64];

            assert_int_equal(ig_recordio_record_to_row(g.r[i].data, g.r[i].len,
                                                       (uint32_t)i + 1, dims[i], row, &err),
                             0);
            assert_memory_equal(row, rows + i * 64, dims[i] * sizeof(double));
        }
        got_free(&g);
    }
    free(rows);
    ig_buf_clear(&stream);
}

/* ---- bad framing ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A stream of two spec records (32 bytes each). */
static void two_records(uint8_t s[64])
{
    const double v[2] = {1.5, 2.0};
    struct ig_buf out;

    ig_buf_init(&out, 1024);
    assert_int_equal(ig_recordio_encode_row(&out, v, NULL, 2, 2), 0);
    assert_int_equal(ig_recordio_encode_row(&out, v, NULL, 2, 2), 0);
    assert_int_equal(out.len, 64);
    memcpy(s, out.data, 64);
    ig_buf_clear(&out);
}

static void frame_fail(const uint8_t *s, size_t len, size_t max_record, int code, uint32_t row,
                       const char *msg, size_t ndelivered)
{
    struct got g = {0};
    struct ig_codec_error err = {99, "unset"};

    assert_int_equal(decode_all(s, len, max_record, &g, &err), code);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.row, row);
    assert_int_equal(g.n, ndelivered);
    got_free(&g);
    /* byte by byte: the same error */
    {
        size_t *cuts = malloc((len + 1) * sizeof(*cuts));

        for (size_t k = 0; k < len; k++)
            cuts[k] = k;
        err.msg[0] = '\0';
        assert_int_equal(decode_chunks(s, len, cuts, len, max_record, &g, &err), code);
        assert_string_equal(err.msg, msg);
        free(cuts);
        got_free(&g);
    }
}

static void test_bad_magic(void **state)
{
    uint8_t s[64];

    (void)state;
    two_records(s);
    s[0] = 0x0b;
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: bad RecordIO magic 0xced7230b at byte 0 (expected 0xced7230a).", 0);
    two_records(s);
    s[35] = 0;
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 2,
               "Row 2: bad RecordIO magic 0x00d7230a at byte 32 (expected 0xced7230a).", 1);
}

static void test_truncated(void **state)
{
    uint8_t s[64];
    struct ig_buf out;

    (void)state;
    two_records(s);
    frame_fail(s, 36, MAX_REC, IG_ERR_INVALID, 2,
               "Row 2: truncated RecordIO record: the body ends inside its header.", 1);
    frame_fail(s, 40, MAX_REC, IG_ERR_INVALID, 2,
               "Row 2: truncated RecordIO record: the body ends inside its data.", 1);
    frame_fail(s, 63, MAX_REC, IG_ERR_INVALID, 2,
               "Row 2: truncated RecordIO record: the body ends inside its data.", 1);
    /* a 5-byte payload: 3 bytes of padding */
    ig_buf_init(&out, 1024);
    assert_int_equal(ig_recordio_frame(&out, "abcde", 5), 0);
    assert_int_equal(out.len, 16);
    frame_fail((const uint8_t *)out.data, 15, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: truncated RecordIO record: the body ends inside its padding.", 0);
    frame_fail((const uint8_t *)out.data, 13, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: truncated RecordIO record: the body ends inside its padding.", 0);
    /* a first part and nothing more */
    put32((uint8_t *)out.data + 4, 1u << 29 | 5);
    frame_fail((const uint8_t *)out.data, 16, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: truncated RecordIO record: the body ends before its last part.", 0);
    ig_buf_clear(&out);
}

static void test_too_big(void **state)
{
    uint8_t s[64], split[8 + 8 + 8 + 8];
    struct got g = {0};
    struct ig_codec_error err;

    (void)state;
    two_records(s);
    frame_fail(s, 64, 23, IG_ERR_TOOBIG, 1,
               "Row 1: RecordIO record of 24 bytes or more is larger than the 23-byte limit.",
               0);
    assert_int_equal(decode_all(s, 64, 24, &g, &err), 0);
    assert_int_equal(g.n, 2);
    got_free(&g);
    /* a length word of 2^29 - 1: refused at its header, nothing buffered */
    put32(s + 36, IG_RECORDIO_MAX_FRAME);
    frame_fail(s, 64, MAX_REC, IG_ERR_TOOBIG, 2,
               "Row 2: RecordIO record of 536870911 bytes or more is larger than the "
               "1048576-byte limit.",
               1);
    /* split: 8 + magic + 8 = 20 bytes joined, over a limit of 19 */
    put32(split, IG_RECORDIO_MAGIC);
    put32(split + 4, 1u << 29 | 8);
    memset(split + 8, 0, 8);
    put32(split + 16, IG_RECORDIO_MAGIC);
    put32(split + 20, 3u << 29 | 8);
    memset(split + 24, 0, 8);
    frame_fail(split, sizeof(split), 19, IG_ERR_TOOBIG, 1,
               "Row 1: RecordIO record of 20 bytes or more is larger than the 19-byte limit.",
               0);
    assert_int_equal(decode_all(split, sizeof(split), 20, &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.r[0].len, 20);
    assert_int_equal(g.r[0].frame_len, 32);
    got_free(&g);
}

static void test_bad_flags(void **state)
{
    uint8_t s[64];

    (void)state;
    two_records(s);
    put32(s + 4, 2u << 29 | 24);
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: RecordIO continuation flag 2 at byte 0 without a first part.", 0);
    two_records(s);
    put32(s + 4, 3u << 29 | 24);
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: RecordIO continuation flag 3 at byte 0 without a first part.", 0);
    two_records(s);
    put32(s + 4, 1u << 29 | 24);
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: RecordIO continuation flag 0 at byte 32 inside a split record.", 0);
    two_records(s);
    put32(s + 4, 1u << 29 | 24);
    put32(s + 36, 1u << 29 | 24);
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 1,
               "Row 1: RecordIO continuation flag 1 at byte 32 inside a split record.", 0);
    two_records(s);
    put32(s + 36, 5u << 29 | 24);
    frame_fail(s, 64, MAX_REC, IG_ERR_INVALID, 2,
               "Row 2: bad RecordIO continuation flag 5 at byte 32.", 1);
}

static void test_callback_stops(void **state)
{
    uint8_t s[64];
    struct got g = {0};
    struct ig_recordio_dec *d;
    struct ig_codec_error err;

    (void)state;
    two_records(s);
    g.fail_at = 1;
    assert_int_equal(ig_recordio_dec_new(MAX_REC, &d), 0);
    assert_int_equal(ig_recordio_dec_feed(d, s, 64, got_cb, &g, &err), IG_ERR_CANCELLED);
    assert_int_equal(g.n, 1);
    /* refused from then on */
    assert_int_equal(ig_recordio_dec_feed(d, s, 64, got_cb, &g, &err), IG_ERR_CANCELLED);
    assert_string_equal(err.msg, "Row 2: the RecordIO stream failed earlier.");
    assert_int_equal(ig_recordio_dec_end(d, &err), IG_ERR_CANCELLED);
    assert_int_equal(g.n, 1);
    ig_recordio_dec_free(d);
    got_free(&g);
    assert_int_equal(ig_recordio_dec_new(0, &d), IG_ERR_INVALID);
    assert_null(d);
    /* an empty stream, an empty record */
    assert_int_equal(ig_recordio_dec_new(16, &d), 0);
    assert_int_equal(ig_recordio_dec_feed(d, NULL, 0, got_cb, &g, &err), 0);
    assert_int_equal(ig_recordio_dec_end(d, &err), 0);
    ig_recordio_dec_free(d);
}

static void test_empty_payload(void **state)
{
    uint8_t s[16];
    struct got g = {0};
    struct ig_codec_error err;
    size_t cut = 8;

    (void)state;
    put32(s, IG_RECORDIO_MAGIC);
    put32(s + 4, 0);
    put32(s + 8, IG_RECORDIO_MAGIC);
    put32(s + 12, 0);
    assert_int_equal(decode_chunks(s, 16, &cut, 1, 4, &g, &err), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.r[1].len, 0);
    assert_int_equal(g.r[1].frame_off, 8);
    got_free(&g);
    /* an empty last part after a first part ending at a chunk's end */
    put32(s + 4, 1u << 29 | 0);
    put32(s + 12, 3u << 29 | 0);
    for (cut = 0; cut <= 16; cut++) {
        assert_int_equal(decode_chunks(s, 16, &cut, 1, 4, &g, &err), 0);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.r[0].len, 4);
        assert_int_equal(g.r[0].frame_len, 16);
        got_free(&g);
    }
}

/* ---- bad records ---- */

/* Pack <r> into a fresh buffer. */
static uint8_t *pack(const Aialgs__Data__Record *r, size_t *len)
{
    uint8_t *p;

    *len = aialgs__data__record__get_packed_size(r);
    p = malloc(*len + 1);
    assert_non_null(p);
    aialgs__data__record__pack(r, p);
    return p;
}

/* A record whose features["values"] is <v>. */
static uint8_t *pack_value(Aialgs__Data__Value *v, const char *key, size_t *len)
{
    Aialgs__Data__Record r = AIALGS__DATA__RECORD__INIT;
    Aialgs__Data__Record__FeaturesEntry e = AIALGS__DATA__RECORD__FEATURES_ENTRY__INIT;
    Aialgs__Data__Record__FeaturesEntry *ep = &e;

    e.key = (char *)(uintptr_t)key;
    e.value = v;
    r.n_features = 1;
    r.features = &ep;
    return pack(&r, len);
}

static uint8_t *pack_f32(float *vals, size_t n, uint64_t *keys, size_t nk, uint64_t *shape,
                         size_t ns, size_t *len)
{
    Aialgs__Data__Value v = AIALGS__DATA__VALUE__INIT;
    Aialgs__Data__Float32Tensor t = AIALGS__DATA__FLOAT32_TENSOR__INIT;

    t.n_values = n;
    t.values = vals;
    t.n_keys = nk;
    t.keys = keys;
    t.n_shape = ns;
    t.shape = shape;
    v.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
    v.float32_tensor = &t;
    return pack_value(&v, "values", len);
}

static void row_fail(const uint8_t *p, size_t len, uint32_t dim, int code, const char *msg)
{
    struct ig_codec_error err = {99, "unset"};
    double row[16];

    assert_true(dim <= 16);
    assert_int_equal(ig_recordio_record_to_row(p, len, 7, dim, row, &err), code);
    assert_string_equal(err.msg, msg);
    assert_int_equal(err.row, 7);
}

static void test_bad_protobuf(void **state)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t cut[] = {0x0a, 0x16, 0x0a, 0x06, 0x76};
    const char *msg = "Row 7: the record is not a valid RecordIO-protobuf Record (the protobuf "
                      "does not parse).";

    (void)state;
    row_fail(junk, sizeof(junk), 2, IG_ERR_INVALID, msg);
    row_fail(cut, sizeof(cut), 2, IG_ERR_INVALID, msg);
    row_fail(cut, sizeof(cut), 0, IG_ERR_INVALID, msg);
}

/* protobuf-c allocates through a cap of IG_RECORDIO_PB_MEM_FACTOR times
 * the payload: 1000 empty map entries (2 bytes each, 48 allocated) pass it. */
static void test_pb_mem_cap(void **state)
{
    uint8_t *p = malloc(2000);

    (void)state;
    assert_non_null(p);
    for (size_t i = 0; i < 2000; i += 2) {
        p[i] = 0x0a;
        p[i + 1] = 0x00;
    }
    row_fail(p, 2000, 2, IG_ERR_TOOBIG, "Row 7: the record is too large to decode.");
    /* 10 of them fit (4 KiB of slack): no features["values"] among them */
    row_fail(p, 20, 2, IG_ERR_INVALID, "Row 7: the record has no features[\"values\"] tensor.");
    free(p);
}

static void test_missing_values(void **state)
{
    Aialgs__Data__Record r = AIALGS__DATA__RECORD__INIT;
    Aialgs__Data__Value v = AIALGS__DATA__VALUE__INIT;
    Aialgs__Data__Bytes b = AIALGS__DATA__BYTES__INIT;
    float f[2] = {1, 2};
    const char *none = "Row 7: the record has no features[\"values\"] tensor.";
    const char *notensor =
        "Row 7: features[\"values\"] is not a float32, float64 or int32 tensor.";
    uint8_t *p;
    size_t len;

    (void)state;
    row_fail((const uint8_t *)"", 0, 2, IG_ERR_INVALID, none);
    r.uid = (char *)(uintptr_t)"u1";
    p = pack(&r, &len);
    row_fail(p, len, 2, IG_ERR_INVALID, none);
    free(p);
    /* another key */
    {
        Aialgs__Data__Value fv = AIALGS__DATA__VALUE__INIT;
        Aialgs__Data__Float32Tensor t = AIALGS__DATA__FLOAT32_TENSOR__INIT;

        t.n_values = 2;
        t.values = f;
        fv.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
        fv.float32_tensor = &t;
        p = pack_value(&fv, "value", &len);
        row_fail(p, len, 2, IG_ERR_INVALID, none);
        free(p);
    }
    /* bytes, nothing */
    v.value_case = AIALGS__DATA__VALUE__VALUE_BYTES;
    v.bytes = &b;
    p = pack_value(&v, "values", &len);
    row_fail(p, len, 2, IG_ERR_INVALID, notensor);
    free(p);
    v.value_case = AIALGS__DATA__VALUE__VALUE__NOT_SET;
    p = pack_value(&v, "values", &len);
    row_fail(p, len, 2, IG_ERR_INVALID, notensor);
    free(p);
}

static void test_bad_dense(void **state)
{
    float f[3] = {1, 2, 3};
    uint64_t shape[2] = {2, 2};
    uint8_t *p;
    size_t len;

    (void)state;
    p = pack_f32(f, 3, NULL, 0, NULL, 0, &len);
    row_fail(p, len, 4, IG_ERR_INVALID, "Row 7: expected 4 features, found 3.");
    row_fail(p, len, 2, IG_ERR_INVALID, "Row 7: expected 2 features, found 3.");
    free(p);
    p = pack_f32(f, 3, NULL, 0, shape, 2, &len);
    row_fail(p, len, 3, IG_ERR_INVALID,
             "Row 7: features[\"values\"] holds 3 values for a shape of 4 elements.");
    free(p);
    f[1] = NAN;
    p = pack_f32(f, 3, NULL, 0, NULL, 0, &len);
    row_fail(p, len, 3, IG_ERR_INVALID, "Row 7: feature 2 is not a finite number.");
    row_fail(p, len, 0, IG_ERR_INVALID, "Row 7: feature 2 is not a finite number.");
    free(p);
    f[1] = INFINITY;
    p = pack_f32(f, 3, NULL, 0, NULL, 0, &len);
    row_fail(p, len, 3, IG_ERR_INVALID, "Row 7: feature 2 is not a finite number.");
    free(p);
}

static void test_bad_sparse(void **state)
{
    float f[3] = {1, 2, 3};
    uint64_t k_ok[3] = {0, 4, 9}, k_range[3] = {0, 4, 10}, k_unsorted[3] = {4, 0, 9},
             k_dup[3] = {0, 4, 4}, shape[1] = {10}, shape2[2] = {2, 5},
             huge[2] = {UINT64_MAX, 2};
    double row[10];
    uint8_t *p;
    size_t len;

    (void)state;
    p = pack_f32(f, 3, k_range, 3, shape, 1, &len);
    row_fail(p, len, 10, IG_ERR_INVALID,
             "Row 7: sparse key 10 is out of range (shape of 10 elements).");
    row_fail(p, len, 0, IG_ERR_INVALID,
             "Row 7: sparse key 10 is out of range (shape of 10 elements).");
    free(p);
    p = pack_f32(f, 3, k_unsorted, 3, shape, 1, &len);
    row_fail(p, len, 10, IG_ERR_INVALID,
             "Row 7: sparse keys are not strictly increasing (0 after 4).");
    free(p);
    p = pack_f32(f, 3, k_dup, 3, shape, 1, &len);
    row_fail(p, len, 10, IG_ERR_INVALID,
             "Row 7: sparse keys are not strictly increasing (4 after 4).");
    free(p);
    p = pack_f32(f, 3, k_ok, 3, NULL, 0, &len);
    row_fail(p, len, 10, IG_ERR_INVALID,
             "Row 7: sparse features[\"values\"] (keys) without a shape.");
    free(p);
    p = pack_f32(f, 3, k_ok, 3, shape, 1, &len);
    row_fail(p, len, 9, IG_ERR_INVALID, "Row 7: expected 9 features, the sparse shape has 10.");
    free(p);
    p = pack_f32(f, 2, k_ok, 3, shape, 1, &len);
    row_fail(p, len, 10, IG_ERR_INVALID,
             "Row 7: sparse features[\"values\"] has 3 keys for 2 values.");
    free(p);
    p = pack_f32(f, 3, k_ok, 3, huge, 2, &len);
    row_fail(p, len, 10, IG_ERR_INVALID, "Row 7: the shape of features[\"values\"] is too large.");
    free(p);
    /* a [2, 5] matrix flattened: keys index 10 elements */
    p = pack_f32(f, 3, k_ok, 3, shape2, 2, &len);
    assert_int_equal(ig_recordio_record_to_row(p, len, 1, 10, row, NULL), 0);
    assert_true(row[0] == 1 && row[4] == 2 && row[9] == 3 && row[1] == 0 && row[8] == 0);
    free(p);
    f[2] = -INFINITY;
    p = pack_f32(f, 3, k_ok, 3, shape, 1, &len);
    row_fail(p, len, 10, IG_ERR_INVALID, "Row 7: feature 10 is not a finite number.");
    free(p);
}

/* An unpacked (not packed) repeated encoding parses too (protobuf readers
 * take both), and the last "values" entry wins. */
static void test_unpacked_and_last_entry(void **state)
{
    /* features { key "values" value { float32_tensor { values: 1.0 values: 2.0 (unpacked) } } } */
    static const uint8_t unpacked[] = {
        0x0a, 0x16, 0x0a, 0x06, 'v', 'a', 'l', 'u', 'e', 's', 0x12, 0x0c, 0x12, 0x0a,
        0x0d, 0x00, 0x00, 0x80, 0x3f, 0x0d, 0x00, 0x00, 0x00, 0x40,
    };
    float a[1] = {5}, b[2] = {7, 8};
    uint8_t *p1, *p2, *both;
    size_t l1, l2;
    double row[2];

    (void)state;
    assert_int_equal(ig_recordio_record_to_row(unpacked, sizeof(unpacked), 1, 2, row, NULL),
                     0);
    assert_true(row[0] == 1.0 && row[1] == 2.0);
    p1 = pack_f32(a, 1, NULL, 0, NULL, 0, &l1);
    p2 = pack_f32(b, 2, NULL, 0, NULL, 0, &l2);
    both = malloc(l1 + l2);
    memcpy(both, p1, l1);
    memcpy(both + l1, p2, l2);
    assert_int_equal(ig_recordio_record_to_row(both, l1 + l2, 1, 2, row, NULL), 0);
    assert_true(row[0] == 7.0 && row[1] == 8.0);
    free(p1);
    free(p2);
    free(both);
}

/* ---- the hand-written decoder of the common record ---- */

/* recordio.c's test hook: 0 both paths, 1 the hand-written decoder only (1:
 * it declined), 2 protobuf-c only. */
int ig_recordio_record_to_row_path(const void *payload, size_t len, uint32_t index, uint32_t dim,
                                   double *row, int path, struct ig_codec_error *err);

/* <p> through the hand-written decoder (taken: 0, or declined: 1, as
 * <taken> says), and both paths agree with protobuf-c's alone. */
static void fast_case(const uint8_t *p, size_t len, uint32_t dim, int taken)
{
    struct ig_codec_error e0 = {99, "unset"}, e2 = {99, "unset"};
    double r0[64], r1[64], r2[64];
    int rv0, rv2;

    assert_true(dim <= 64);
    memset(r0, 0xa5, sizeof(r0));
    memset(r2, 0xa5, sizeof(r2));
    assert_int_equal(ig_recordio_record_to_row_path(p, len, 3, dim, r1, 1, NULL), taken ? 0 : 1);
    rv0 = ig_recordio_record_to_row_path(p, len, 3, dim, r0, 0, &e0);
    rv2 = ig_recordio_record_to_row_path(p, len, 3, dim, r2, 2, &e2);
    assert_int_equal(rv0, rv2);
    assert_string_equal(e0.msg, e2.msg);
    assert_int_equal(e0.row, e2.row);
    if (rv0 == 0) {
        assert_memory_equal(r0, r2, dim * sizeof(double));
        if (taken)
            assert_memory_equal(r1, r2, dim * sizeof(double));
    }
    if (taken)
        assert_int_equal(rv0, 0);
}

static void test_fast_path(void **state)
{
    float f[3] = {1.5f, -0.0f, 3e-5f}, bad[2] = {1, INFINITY};
    uint64_t keys[1] = {1}, shape[1] = {3};
    /* 0a 12 { 0a 06 "values" 12 08 { 12 06 { 0a 04 <1.0f> } } }, and variants */
    static const uint8_t one[] = {0x0a, 0x12, 0x0a, 0x06, 'v', 'a', 'l', 'u', 'e', 's', 0x12,
                                  0x08, 0x12, 0x06, 0x0a, 0x04, 0x00, 0x00, 0x80, 0x3f};
    static const uint8_t empty_tensor[] = {0x0a, 0x0c, 0x0a, 0x06, 'v', 'a', 'l', 'u',
                                           'e', 's', 0x12, 0x02, 0x12, 0x00};
    static const uint8_t empty_packed[] = {0x0a, 0x0e, 0x0a, 0x06, 'v', 'a', 'l', 'u', 'e',
                                           's', 0x12, 0x04, 0x12, 0x02, 0x0a, 0x00};
    /* the record's length as a 2-byte varint (0x92 0x00: not shortest) */
    static const uint8_t long_len[] = {0x0a, 0x92, 0x00, 0x0a, 0x06, 'v', 'a', 'l', 'u', 'e',
                                       's', 0x12, 0x08, 0x12, 0x06, 0x0a, 0x04, 0x00, 0x00,
                                       0x80, 0x3f};
    static const uint8_t uid[] = {0x1a, 0x01, 'u'};
    static const uint8_t label[] = {0x12, 0x0c, 0x0a, 0x06, 'v', 'a', 'l', 'u',
                                    'e', 's', 0x12, 0x02, 0x12, 0x00};
    Aialgs__Data__Value v = AIALGS__DATA__VALUE__INIT;
    Aialgs__Data__Float64Tensor t64 = AIALGS__DATA__FLOAT64_TENSOR__INIT;
    double d[3] = {1, 2, 3};
    uint8_t buf[128], *p;
    size_t len;

    (void)state;
    /* taken: dense float32, dim 0 (checked only) and dim n */
    p = pack_f32(f, 3, NULL, 0, NULL, 0, &len);
    fast_case(p, len, 3, 1);
    fast_case(p, len, 0, 1);
    /* declined: a count other than dim (the message is protobuf-c's path's) */
    fast_case(p, len, 2, 0);
    fast_case(p, len, 4, 0);
    /* taken: the last of two entries wins; declined: cut anywhere but between them */
    memcpy(buf, one, sizeof(one));
    memcpy(buf + sizeof(one), p, len);
    fast_case(buf, sizeof(one) + len, 3, 1);
    fast_case(buf, sizeof(one) + len, 1, 0);
    for (size_t cut = 0; cut < sizeof(one) + len; cut++)
        fast_case(buf, cut, 1, cut == sizeof(one));
    /* declined: a non-"values" entry, uid, a label (before or after) */
    memcpy(buf, p, len);
    memcpy(buf + len, uid, sizeof(uid));
    fast_case(buf, len + sizeof(uid), 3, 0);
    memcpy(buf + len, label, sizeof(label));
    fast_case(buf, len + sizeof(label), 3, 0);
    memcpy(buf, label, sizeof(label));
    memcpy(buf + sizeof(label), p, len);
    fast_case(buf, len + sizeof(label), 3, 0);
    free(p);
    p = pack_f32(f, 1, NULL, 0, NULL, 0, &len);
    memcpy(buf, p, len);
    buf[4] = 'V';
    fast_case(buf, len, 1, 0);
    free(p);
    /* declined: sparse keys, a shape, float64, a non-finite value */
    p = pack_f32(f, 1, keys, 1, shape, 1, &len);
    fast_case(p, len, 3, 0);
    free(p);
    p = pack_f32(f, 3, NULL, 0, shape, 1, &len);
    fast_case(p, len, 3, 0);
    free(p);
    t64.n_values = 3;
    t64.values = d;
    v.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR;
    v.float64_tensor = &t64;
    p = pack_value(&v, "values", &len);
    fast_case(p, len, 3, 0);
    free(p);
    p = pack_f32(bad, 2, NULL, 0, NULL, 0, &len);
    fast_case(p, len, 2, 0);
    fast_case(p, len, 0, 0);
    free(p);
    /* taken: one value, an empty tensor at dim 0; declined: the rest */
    fast_case(one, sizeof(one), 1, 1);
    fast_case(empty_tensor, sizeof(empty_tensor), 0, 1);
    fast_case(empty_tensor, sizeof(empty_tensor), 1, 0);
    fast_case(empty_packed, sizeof(empty_packed), 0, 0);
    fast_case(long_len, sizeof(long_len), 1, 0);
    fast_case(one, 0, 0, 0);
    fast_case(one, 0, 1, 0);
    fast_case(uid, sizeof(uid), 1, 0);
}

/* The dense rows ig_recordio_encode_row writes by hand are the bytes
 * protobuf-c packs, framed, at every varint length boundary. */
static void test_encode_dense_bytes(void **state)
{
    static const size_t ns[] = {0, 1, 2, 27, 28, 29, 30, 31, 32, 33, 50, 4092, 4093, 4094, 4095,
                                4096, 4097, 5000};
    double *v = malloc(5000 * sizeof(*v));
    float *fv = malloc(5000 * sizeof(*fv));
    struct ig_buf a, b;

    (void)state;
    assert_non_null(v);
    assert_non_null(fv);
    srand(18);
    for (size_t i = 0; i < 5000; i++)
        v[i] = (rand() - RAND_MAX / 2) / 1024.0;
    v[1] = -0.0;
    v[2] = NAN;
    v[3] = 1e300; /* narrows to infinity */
    v[4] = -INFINITY;
    for (size_t i = 0; i < 5000; i++)
        fv[i] = (float)v[i];
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        Aialgs__Data__Value val = AIALGS__DATA__VALUE__INIT;
        Aialgs__Data__Float32Tensor t = AIALGS__DATA__FLOAT32_TENSOR__INIT;
        uint8_t *p;
        size_t len;

        t.n_values = ns[k];
        t.values = fv;
        val.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
        val.float32_tensor = &t;
        p = pack_value(&val, "values", &len);
        ig_buf_init(&a, 1u << 20);
        ig_buf_init(&b, 1u << 20);
        assert_int_equal(ig_buf_append(&a, "xyz", 3), 0);
        assert_int_equal(ig_buf_append(&b, "xyz", 3), 0);
        assert_int_equal(ig_recordio_frame(&a, p, len), 0);
        assert_int_equal(ig_recordio_encode_row(&b, v, NULL, ns[k], 0), 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        assert_int_equal(b.data[b.len], '\0');
        /* one byte short of room: refused, nothing written */
        ig_buf_clear(&b);
        ig_buf_init(&b, a.len - 4);
        assert_int_equal(ig_buf_append(&b, "xyz", 3), 0);
        assert_int_equal(ig_recordio_encode_row(&b, v, NULL, ns[k], 0), IG_ERR_TOOBIG);
        assert_int_equal(b.len, 3);
        free(p);
        ig_buf_clear(&a);
        ig_buf_clear(&b);
    }
    ig_buf_init(&b, 1024);
    assert_int_equal(ig_recordio_encode_row(&b, v, NULL, (size_t)IG_RECORDIO_MAX_FRAME / 4 + 1, 0),
                     IG_ERR_TOOBIG);
    assert_int_equal(b.len, 0);
    ig_buf_clear(&b);
    free(v);
    free(fv);
}

/* ---- the whole-body decoder ---- */

static void test_decode_body(void **state)
{
    uint8_t s[64];
    struct ig_rowset rs = {0};
    struct ig_codec_error err = {99, "unset"};

    (void)state;
    two_records(s);
    assert_int_equal(ig_recordio_decode((const char *)s, 64, 0, 10, &rs, &err), 0);
    assert_int_equal(rs.nrows, 2);
    assert_null(rs.features);
    assert_int_equal(rs.rows[1].off, 32);
    assert_int_equal(rs.rows[1].len, 32);
    ig_rowset_clear(&rs);
    assert_int_equal(ig_recordio_decode((const char *)s, 64, 2, 1, &rs, &err), IG_ERR_TOOBIG);
    assert_string_equal(err.msg, "Request has more than 1 rows.");
    assert_null(rs.rows);
    assert_ptr_equal(rs.body, s);
    assert_int_equal(ig_recordio_decode((const char *)s, 64, 3, 10, &rs, &err), IG_ERR_INVALID);
    assert_string_equal(err.msg, "Row 1: expected 3 features, found 2.");
    assert_int_equal(err.row, 1);
    assert_null(rs.rows);
    assert_null(rs.features);
    assert_int_equal(ig_recordio_decode((const char *)s, 0, 2, 10, &rs, &err), IG_ERR_INVALID);
    assert_string_equal(err.msg, "Request body is empty.");
    assert_int_equal(ig_recordio_decode((const char *)s, 61, 2, 10, &rs, &err), IG_ERR_INVALID);
    assert_string_equal(err.msg,
                        "Row 2: truncated RecordIO record: the body ends inside its data.");
    assert_null(rs.rows);
    s[33] = 0;
    assert_int_equal(ig_recordio_decode((const char *)s, 64, 2, 10, &rs, &err), IG_ERR_INVALID);
    assert_string_equal(err.msg,
                        "Row 2: bad RecordIO magic 0xced7000a at byte 32 (expected 0xced7230a).");
    assert_int_equal(err.row, 2);
    assert_null(rs.rows);
}

/* ---- writers ---- */

static void test_encode_errors(void **state)
{
    const double one[1] = {1.0};
    struct ig_recordio_label l[2] = {{"score", one, 1}, {"score", one, 1}};
    struct ig_buf out;
    const double v[2] = {1.5, 2.0};

    (void)state;
    ig_buf_init(&out, 1024);
    assert_int_equal(ig_recordio_encode_labels(&out, l, 0), IG_ERR_INVALID);
    assert_int_equal(ig_recordio_encode_labels(&out, l, 2), IG_ERR_INVALID);
    l[1].name = NULL;
    assert_int_equal(ig_recordio_encode_labels(&out, l, 2), IG_ERR_INVALID);
    assert_int_equal(out.len, 0);
    ig_buf_clear(&out);
    /* out's cap: nothing written */
    ig_buf_init(&out, 40);
    assert_int_equal(ig_recordio_encode_row(&out, v, NULL, 2, 2), 0);
    assert_int_equal(ig_recordio_encode_row(&out, v, NULL, 2, 2), IG_ERR_TOOBIG);
    assert_int_equal(out.len, 32);
    assert_int_equal(ig_recordio_frame(&out, "abcdefghi", 9), IG_ERR_TOOBIG);
    assert_int_equal(out.len, 32);
    assert_int_equal(ig_recordio_frame(&out, "a", 0), 0);
    assert_int_equal(out.len, 40);
    ig_buf_clear(&out);
    assert_int_equal(ig_recordio_frame(&out, "a", (size_t)IG_RECORDIO_MAX_FRAME + 1),
                     IG_ERR_TOOBIG);
    /* padding is zero */
    ig_buf_init(&out, 1024);
    assert_int_equal(ig_recordio_frame(&out, "abcde", 5), 0);
    assert_int_equal(out.len, 16);
    assert_memory_equal(out.data, "\x0a\x23\xd7\xce\x05\x00\x00\x00" "abcde\0\0\0", 16);
    ig_buf_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_chunk_every_offset),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_bad_protobuf),
        cmocka_unit_test(test_pb_mem_cap),
        cmocka_unit_test(test_missing_values),
        cmocka_unit_test(test_bad_dense),
        cmocka_unit_test(test_bad_sparse),
        cmocka_unit_test(test_unpacked_and_last_entry),
        cmocka_unit_test(test_decode_body),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_fast_path),
        cmocka_unit_test(test_encode_dense_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

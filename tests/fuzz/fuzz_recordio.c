/*
 * fuzz_recordio.c - application/x-recordio-protobuf: the incremental
 * RecordIO decoder at fuzzer-chosen chunk boundaries, the whole-body codec
 * (ig_recordio_decode, with and without a budget), each record through
 * ig_recordio_record_to_row at several dims, and the writers read back.
 *
 * Input: a 4-byte header, <ncuts> chunk lengths, then the stream.
 *   byte 0  bits 0-3  ncuts: the next ncuts bytes are chunk lengths (0: an
 *                     empty chunk, fed as NULL, 0)
 *           bit 4     the rest after the cuts fed one byte at a time
 *                     (else at once)
 *           bits 5-7  max_record (rio_max_record)
 *   byte 1            an extra dim (0: none) besides 1, 3 and 50
 *   byte 2  bits 0-3  the budget of the decode with features: 64 << n
 *                     bytes (0: none)
 *           bits 4-7  a run whose callback stops the decoder at this
 *                     record (0: no such run)
 *   byte 3  bits 0-2  max_rows of the decode with features (rio_max_rows)
 * The stream is copied into its own exactly-sized allocation.
 *
 * Checked, besides the sanitizers:
 * - chunked == whole: the records (payload bytes, index, frame offset and
 *   length), the result codes and messages of ig_recordio_dec_feed and
 *   ig_recordio_dec_end; the frames tile the stream from 0; a failed
 *   decoder refuses more with the same code and calls nobody;
 * - a callback's nonzero return stops the decoder, which returns it from
 *   then on;
 * - ig_recordio_decode (dim 0, then the extra dim with max_rows and the
 *   budget) gives the frames as row slices and ig_recordio_record_to_row's
 *   features, or exactly the error the records predict (the first record
 *   that fails, the row past max_rows, the stream's own error), or
 *   IG_ERR_FULL under a budget that then holds nothing;
 * - ig_recordio_record_to_row at dims 0, 1, 3, 50 and the extra one:
 *   the same (code, message, features bit for bit) as protobuf-c's path
 *   alone, the hand-written decoder of the common record declining or
 *   giving those features; a documented code, "Row <index>: ..." on failure, finite features, at
 *   most one dim > 0 accepted, and none when dim 0 refuses;
 * - a record read at dim d, written again by ig_recordio_encode_row (dense,
 *   and sparse with its nonzero keys) and read back, gives the features
 *   narrowed to float32 (or, when one narrows to infinity, "not a finite
 *   number"); each payload framed by ig_recordio_frame reads back alone;
 * - no single allocation passes RIO_ALLOC_LIMIT(input size): what a frame
 *   header announces is no reason to allocate it (a malloc hook; libFuzzer's
 *   own -malloc_limit_mb is the RSS limit, 2 GiB, far too loose for that).
 */
#include <math.h>
#include <sanitizer/allocator_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "infergate/budget.h"
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/recordio.h"

#define RIO_HDR 4
#define RIO_STOP_CODE IG_ERR_CANCELLED /* what the stopping callback returns */

/* The largest allocation one input may cause: rows and features of 255
 * doubles for frames of 8 bytes or more, with the rowset's doubling, take
 * 512 bytes a body byte; protobuf-c 16 a payload byte plus 4 KiB. */
#define RIO_ALLOC_LIMIT(size) ((size_t)(size)*1024u + 65536u)

static size_t rio_alloc_limit; /* 0: not inside an input */

static void rio_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    if (rio_alloc_limit != 0 && n > rio_alloc_limit) {
        size_t limit = rio_alloc_limit;

        rio_alloc_limit = 0;
        fprintf(stderr,
                "fuzz_recordio: an allocation of %zu bytes, over the %zu-byte limit of "
                "this input\n",
                n, limit);
        __sanitizer_print_stack_trace();
        abort();
    }
}

static void rio_free_hook(const volatile void *p)
{
    (void)p;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    __sanitizer_install_malloc_and_free_hooks(rio_malloc_hook, rio_free_hook);
    return 0;
}

static const size_t rio_max_record[8] = {1u << 20, 1u << 20, 1u << 20, 4096, 256, 64, 16, 1};
static const uint32_t rio_max_rows[8] = {UINT32_MAX, 1, 2, 3, 16, 17, 100, UINT32_MAX};
static const uint32_t rio_dims[4] = {1, 3, 50, 0 /* the extra one */};

/* ---- what a decoder hands over ---- */

struct rio_rec {
    uint8_t *data;
    size_t len;
    uint32_t index;
    uint64_t frame_off;
    uint64_t frame_len;
};

struct rio_list {
    struct rio_rec *v;
    size_t n;
    size_t cap;
    size_t stop_at; /* return RIO_STOP_CODE at this record (1-based); 0: never */
    bool closed;    /* the decoder failed: no more calls expected */
};

/* The outcome of one decoder run. */
struct rio_run {
    struct rio_list recs;
    int rv; /* the first failure (feed or end), or 0 */
    struct ig_codec_error err;
};

static int rio_collect(const struct ig_recordio_rec *rec, void *arg)
{
    struct rio_list *l = arg;
    struct rio_rec *r;

    FUZZ_CHECK(!l->closed, "callback after the decoder failed");
    FUZZ_CHECK(rec->data != NULL, "record %u with NULL data", rec->index);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        FUZZ_CHECK(l->v != NULL, "realloc");
    }
    r = &l->v[l->n++];
    r->len = rec->len;
    r->data = malloc(rec->len ? rec->len : 1);
    FUZZ_CHECK(r->data != NULL, "malloc");
    memcpy(r->data, rec->data, rec->len);
    r->index = rec->index;
    r->frame_off = rec->frame_off;
    r->frame_len = rec->frame_len;
    if (l->stop_at != 0 && l->n == l->stop_at)
        return RIO_STOP_CODE;
    return 0;
}

static void rio_list_free(struct rio_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* The message is a NUL-terminated printable sentence; with <row> > 0 it
 * says "Row <row>: " first and err->row is <row>. */
static void check_msg(const struct ig_codec_error *err, uint32_t row)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));
    char want[32];

    FUZZ_CHECK(n < sizeof(err->msg), "error message not NUL-terminated");
    FUZZ_CHECK(n > 0, "failure without a message");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)err->msg[i] >= 0x20 && (unsigned char)err->msg[i] <= 0x7e,
                   "byte 0x%02x in error message \"%s\"", (unsigned char)err->msg[i], err->msg);
    if (row > 0) {
        snprintf(want, sizeof(want), "Row %u: ", row);
        FUZZ_CHECK(err->row == row && strncmp(err->msg, want, strlen(want)) == 0,
                   "error of row %u is row %u \"%s\"", row, err->row, err->msg);
    }
}

static bool err_eq(const struct ig_codec_error *a, const struct ig_codec_error *b)
{
    return a->row == b->row && strcmp(a->msg, b->msg) == 0;
}

/* After a failure with <code>: more bytes are refused with it, nobody is
 * called, and the end says the same. */
static void check_refuses(struct ig_recordio_dec *d, struct rio_list *l, int code)
{
    struct ig_codec_error err;
    uint32_t count = ig_recordio_dec_count(d);
    int rv;

    l->closed = true;
    memset(&err, 0x55, sizeof(err));
    rv = ig_recordio_dec_feed(d, "\x0a\x23\xd7\xce", 4, rio_collect, l, &err);
    FUZZ_CHECK(rv == code, "feed after failure %d returns %d", code, rv);
    check_msg(&err, count + 1);
    rv = ig_recordio_dec_feed(d, NULL, 0, rio_collect, l, &err);
    FUZZ_CHECK(rv == code, "empty feed after failure %d returns %d", code, rv);
    rv = ig_recordio_dec_end(d, &err);
    FUZZ_CHECK(rv == code, "end after failure %d returns %d", code, rv);
    check_msg(&err, count + 1);
    FUZZ_CHECK(ig_recordio_dec_count(d) == count, "count moved after failure");
}

/* Feed one chunk; record the first failure in <run>. Returns false once
 * the decoder has failed. */
static bool rio_feed(struct ig_recordio_dec *d, struct rio_run *run, const uint8_t *p, size_t n)
{
    struct ig_codec_error err;
    uint32_t before = ig_recordio_dec_count(d);
    int rv;

    memset(&err, 0x55, sizeof(err));
    rv = ig_recordio_dec_feed(d, n ? p : NULL, n, rio_collect, &run->recs, &err);
    FUZZ_CHECK(ig_recordio_dec_count(d) == run->recs.n, "count %u, %zu records handed over",
               ig_recordio_dec_count(d), run->recs.n);
    if (rv == 0)
        return true;
    if (run->recs.stop_at != 0 && run->recs.n == run->recs.stop_at) {
        FUZZ_CHECK(rv == RIO_STOP_CODE, "callback's code %d came back as %d", RIO_STOP_CODE, rv);
    } else {
        FUZZ_CHECK(rv == IG_ERR_INVALID || rv == IG_ERR_TOOBIG || rv == IG_ERR_NOMEM,
                   "feed returned %d", rv);
        check_msg(&err, ig_recordio_dec_count(d) + 1);
        FUZZ_CHECK(ig_recordio_dec_count(d) >= before, "count went back");
        run->err = err;
    }
    run->rv = rv;
    return false;
}

/* One decoder over <body> cut as the header says (ncuts == 0 and !bytewise:
 * at once). */
static void rio_run(const uint8_t *body, size_t len, size_t max_record, const uint8_t *cuts,
                    size_t ncuts, bool bytewise, size_t stop_at, struct rio_run *run)
{
    struct ig_recordio_dec *d = NULL;
    size_t off = 0;
    bool ok = true;
    int rv;

    memset(run, 0, sizeof(*run));
    run->recs.stop_at = stop_at;
    rv = ig_recordio_dec_new(max_record, &d);
    FUZZ_CHECK(rv == 0 && d != NULL, "dec_new(%zu): %d", max_record, rv);
    for (size_t i = 0; ok && i < ncuts; i++) {
        size_t n = cuts[i] < len - off ? cuts[i] : len - off;

        ok = rio_feed(d, run, body + off, n);
        off += n;
    }
    if (bytewise)
        for (; ok && off < len; off++)
            ok = rio_feed(d, run, body + off, 1);
    else if (ok)
        ok = rio_feed(d, run, body + off, len - off);
    if (ok) {
        memset(&run->err, 0x55, sizeof(run->err));
        rv = ig_recordio_dec_end(d, &run->err);
        FUZZ_CHECK(rv == 0 || rv == IG_ERR_INVALID, "dec_end returned %d", rv);
        if (rv != 0) {
            check_msg(&run->err, ig_recordio_dec_count(d) + 1);
            FUZZ_CHECK(strstr(run->err.msg, "truncated RecordIO record") != NULL,
                       "end of stream: \"%s\"", run->err.msg);
        }
        run->rv = rv;
    }
    if (run->rv != 0)
        check_refuses(d, &run->recs, run->rv);
    ig_recordio_dec_free(d);
}

static void check_same_records(const struct rio_list *a, const struct rio_list *b, size_t n,
                               const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const struct rio_rec *x = &a->v[i], *y = &b->v[i];

        FUZZ_CHECK(x->len == y->len && memcmp(x->data, y->data, x->len) == 0,
                   "%s: record %zu payload differs (%zu vs %zu bytes)", what, i + 1, x->len,
                   y->len);
        FUZZ_CHECK(x->index == y->index && x->frame_off == y->frame_off &&
                       x->frame_len == y->frame_len,
                   "%s: record %zu is #%u at %llu+%llu vs #%u at %llu+%llu", what, i + 1, x->index,
                   (unsigned long long)x->frame_off, (unsigned long long)x->frame_len, y->index,
                   (unsigned long long)y->frame_off, (unsigned long long)y->frame_len);
    }
}

/* The records of a whole run: numbered from 1, frames tiling the stream
 * from byte 0, a whole record's frame exactly header + data + padding. */
static void check_frames(const struct rio_run *w, size_t len)
{
    uint64_t at = 0;

    for (size_t i = 0; i < w->recs.n; i++) {
        const struct rio_rec *r = &w->recs.v[i];

        FUZZ_CHECK(r->index == i + 1, "record %zu numbered %u", i + 1, r->index);
        FUZZ_CHECK(r->frame_off == at, "record %zu at %llu, expected %llu", i + 1,
                   (unsigned long long)r->frame_off, (unsigned long long)at);
        FUZZ_CHECK(r->frame_len >= 8 + r->len && r->frame_len % 4 == 0,
                   "record %zu: %zu bytes in a frame of %llu", i + 1, r->len,
                   (unsigned long long)r->frame_len);
        at += r->frame_len;
    }
    FUZZ_CHECK(at <= len, "frames end at %llu past the %zu bytes", (unsigned long long)at, len);
    if (w->rv == 0)
        FUZZ_CHECK(at == len, "a clean stream of %zu bytes has frames up to %llu", len,
                   (unsigned long long)at);
}

/* ---- records to rows ---- */

/* recordio.c's test hook (not in recordio.h): ig_recordio_record_to_row
 * by one path: 0 both, 1 the hand-written decoder alone (1: it declined),
 * 2 protobuf-c alone. */
int ig_recordio_record_to_row_path(const void *payload, size_t len, uint32_t index, uint32_t dim,
                                   double *row, int path, struct ig_codec_error *err);

/* The hand-written decoder and protobuf-c's path agree on <r> at <dim>
 * with what ig_recordio_record_to_row gave (<rv>, <err>, <row>): the same
 * code, message and features bit for bit; the hand-written one either
 * declines or gives those features. */
static void check_paths(const struct rio_rec *r, uint32_t dim, const double *row, int rv,
                        const struct ig_codec_error *err)
{
    struct ig_codec_error err2;
    double *row2 = NULL, *row1 = NULL;
    int rv2, rv1;

    if (dim > 0) {
        row2 = malloc((size_t)dim * sizeof(double));
        row1 = malloc((size_t)dim * sizeof(double));
        FUZZ_CHECK(row2 != NULL && row1 != NULL, "malloc");
    }
    memset(&err2, 0x55, sizeof(err2));
    rv2 = ig_recordio_record_to_row_path(r->data, r->len, r->index, dim, row2, 2, &err2);
    FUZZ_CHECK(rv2 == rv, "record %u dim %u: protobuf-c's path %d, both paths %d", r->index, dim,
               rv2, rv);
    if (rv != 0)
        FUZZ_CHECK(err_eq(&err2, err), "record %u dim %u: protobuf-c's path \"%s\", both \"%s\"",
                   r->index, dim, err2.msg, err->msg);
    else if (dim > 0)
        FUZZ_CHECK(memcmp(row2, row, (size_t)dim * sizeof(double)) == 0,
                   "record %u dim %u: protobuf-c's path gives other features", r->index, dim);
    rv1 = ig_recordio_record_to_row_path(r->data, r->len, r->index, dim, row1, 1, NULL);
    FUZZ_CHECK(rv1 == 0 || rv1 == 1, "record %u dim %u: the hand-written decoder returned %d",
               r->index, dim, rv1);
    if (rv1 == 0) {
        FUZZ_CHECK(rv == 0, "record %u dim %u: the hand-written decoder accepts what fails (%s)",
                   r->index, dim, err->msg);
        if (dim > 0)
            FUZZ_CHECK(memcmp(row1, row, (size_t)dim * sizeof(double)) == 0,
                       "record %u dim %u: the hand-written decoder gives other features",
                       r->index, dim);
    }
    free(row1);
    free(row2);
}

/* ig_recordio_record_to_row with its checks; <row> receives dim doubles. */
static int rio_to_row(const struct rio_rec *r, uint32_t dim, double *row,
                      struct ig_codec_error *err)
{
    int rv;

    memset(err, 0x55, sizeof(*err));
    rv = ig_recordio_record_to_row(r->data, r->len, r->index, dim, dim ? row : NULL, err);
    FUZZ_CHECK(rv == 0 || rv == IG_ERR_INVALID || rv == IG_ERR_TOOBIG || rv == IG_ERR_NOMEM,
               "record_to_row returned %d", rv);
    check_paths(r, dim, row, rv, err);
    if (rv != 0) {
        check_msg(err, r->index);
        return rv;
    }
    for (uint32_t j = 0; j < dim; j++)
        FUZZ_CHECK(isfinite(row[j]), "record %u feature %u is %g", r->index, j, row[j]);
    return 0;
}

static uint64_t bits_of(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

/* Decode the single frame in <out> at <dim> and compare with <want>
 * (narrowed values; a non-finite one must be refused). */
static void check_reread(const struct ig_buf *out, uint32_t dim, const double *want,
                         const char *what, uint32_t index)
{
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    size_t bad = dim;
    int rv;

    for (size_t j = 0; j < dim && bad == dim; j++)
        if (!isfinite(want[j]))
            bad = j;
    rv = ig_recordio_decode(out->data, out->len, dim, 1, &rs, &err);
    if (bad < dim) {
        char msg[96];

        snprintf(msg, sizeof(msg), "Row 1: feature %zu is not a finite number.", bad + 1);
        FUZZ_CHECK(rv == IG_ERR_INVALID && strcmp(err.msg, msg) == 0,
                   "%s of record %u with feature %zu out of float32 range: %d \"%s\"", what, index,
                   bad + 1, rv, err.msg);
        return;
    }
    FUZZ_CHECK(rv == 0, "%s of record %u at dim %u does not read back: %d %s", what, index, dim, rv,
               err.msg);
    FUZZ_CHECK(rs.nrows == 1 && rs.rows[0].off == 0 && rs.rows[0].len == out->len,
               "%s: %u rows, first {%u,%u} of %zu bytes", what, rs.nrows, rs.rows[0].off,
               rs.rows[0].len, out->len);
    for (uint32_t j = 0; j < dim; j++)
        FUZZ_CHECK(bits_of(rs.features[j]) == bits_of(want[j]),
                   "%s of record %u: feature %u reads back as %.17g, expected %.17g", what, index,
                   j, rs.features[j], want[j]);
    ig_rowset_clear(&rs);
}

/* <row> (dim doubles, record <index>) written dense and sparse, read back. */
static void check_round_trip(const double *row, uint32_t dim, uint32_t index)
{
    double *want = malloc(dim * sizeof(double));
    double *vals = malloc(dim * sizeof(double));
    uint64_t *keys = malloc(dim * sizeof(uint64_t));
    struct ig_buf out;
    size_t n = 0;
    int rv;

    FUZZ_CHECK(want != NULL && vals != NULL && keys != NULL, "malloc");
    for (uint32_t j = 0; j < dim; j++)
        want[j] = (double)(float)row[j];

    ig_buf_init(&out, 1u << 24);
    rv = ig_recordio_encode_row(&out, row, NULL, dim, 0);
    FUZZ_CHECK(rv == 0, "encode_row dense %u: %d", dim, rv);
    check_reread(&out, dim, want, "dense re-encoding", index);
    /* its payload through both paths; the hand-written decoder takes it
     * when every value is finite as a float32 */
    {
        const uint8_t *h = (const uint8_t *)out.data;
        struct rio_rec pr = {(uint8_t *)out.data + 8,
                             (size_t)(h[4] | h[5] << 8 | h[6] << 16 | (uint32_t)h[7] << 24),
                             index, 0, out.len};
        struct ig_codec_error err;
        bool finite = true;

        for (uint32_t j = 0; j < dim; j++)
            finite = finite && isfinite(want[j]);
        rv = rio_to_row(&pr, dim, vals, &err);
        FUZZ_CHECK(rv == (finite ? 0 : IG_ERR_INVALID), "dense re-encoding of record %u: %d",
                   index, rv);
        rv = ig_recordio_record_to_row_path(pr.data, pr.len, index, dim, vals, 1, NULL);
        FUZZ_CHECK(rv == (finite ? 0 : 1),
                   "dense re-encoding of record %u: the hand-written decoder returns %d", index,
                   rv);
    }
    ig_buf_clear(&out);

    /* sparse: the nonzero entries (-0 too: it is no missing entry) */
    for (uint32_t j = 0; j < dim; j++)
        if (bits_of(row[j]) != 0) {
            keys[n] = j;
            vals[n++] = row[j];
        }
    ig_buf_init(&out, 1u << 24);
    rv = ig_recordio_encode_row(&out, vals, keys, n, dim);
    FUZZ_CHECK(rv == 0, "encode_row sparse %zu of %u: %d", n, dim, rv);
    check_reread(&out, dim, want, "sparse re-encoding", index);
    ig_buf_clear(&out);
    free(keys);
    free(vals);
    free(want);
}

/* Every record at every dim, and round trips of what reads densely. */
static void check_records(const struct rio_list *l, uint32_t extra_dim)
{
    uint32_t dims[4];
    double *row;

    memcpy(dims, rio_dims, sizeof(dims));
    dims[3] = extra_dim;
    row = malloc((size_t)(extra_dim > 50 ? extra_dim : 50) * sizeof(double));
    FUZZ_CHECK(row != NULL, "malloc");
    for (size_t i = 0; i < l->n; i++) {
        const struct rio_rec *r = &l->v[i];
        struct ig_codec_error err;
        int rv0 = rio_to_row(r, 0, NULL, &err), accepted = 0;
        struct ig_buf one;

        for (size_t k = 0; k < 4; k++) {
            int rv;

            if (dims[k] == 0 || (k == 3 && (extra_dim == 1 || extra_dim == 3 || extra_dim == 50)))
                continue;
            rv = rio_to_row(r, dims[k], row, &err);
            if (rv != 0)
                continue;
            accepted++;
            FUZZ_CHECK(rv0 == 0, "record %u: dim %u accepts what dim 0 refuses", r->index, dims[k]);
            FUZZ_CHECK(accepted == 1, "record %u accepted at two dims (%u the second)", r->index,
                       dims[k]);
            check_round_trip(row, dims[k], r->index);
        }
        /* the payload framed whole reads back as one record */
        ig_buf_init(&one, (1u << 20) + 64);
        if (ig_recordio_frame(&one, r->data, r->len) == 0) {
            struct rio_run rr;

            rio_run((const uint8_t *)one.data, one.len, r->len ? r->len : 1, NULL, 0, false, 0,
                    &rr);
            FUZZ_CHECK(rr.rv == 0 && rr.recs.n == 1 && rr.recs.v[0].len == r->len &&
                           memcmp(rr.recs.v[0].data, r->data, r->len) == 0 &&
                           rr.recs.v[0].frame_len == one.len,
                       "record %u framed alone: %d, %zu records", r->index, rr.rv, rr.recs.n);
            rio_list_free(&rr.recs);
        }
        ig_buf_clear(&one);
    }
    free(row);
}

/* ---- the whole-body codec ---- */

/*
 * What ig_recordio_decode(body, dim, max_rows) must return, from the
 * records of the whole run <w> (decoded with <max_record>): the first
 * record past max_rows or that fails at <dim>, else the stream's own
 * result. *known false: the run stopped at its max_record, which the codec
 * does not have.
 */
static int rio_expect(const struct rio_run *w, size_t len, uint32_t dim, uint32_t max_rows,
                      struct ig_codec_error *err, bool *known)
{
    double *row = malloc((dim ? dim : 1) * sizeof(double));
    int rv = 0;

    FUZZ_CHECK(row != NULL, "malloc");
    *known = true;
    memset(err, 0, sizeof(*err));
    if (len == 0) {
        ig_codec_error_set(err, 0, "Request body is empty.");
        free(row);
        return IG_ERR_INVALID;
    }
    for (size_t i = 0; i < w->recs.n && rv == 0; i++) {
        if (i >= max_rows) {
            ig_codec_error_set(err, 0, "Request has more than %u rows.", max_rows);
            rv = IG_ERR_TOOBIG;
        } else {
            rv = rio_to_row(&w->recs.v[i], dim, row, err);
        }
    }
    if (rv == 0 && w->rv != 0) {
        rv = w->rv;
        *err = w->err;
        if (rv == IG_ERR_TOOBIG || rv == IG_ERR_NOMEM)
            *known = false;
    }
    free(row);
    return rv;
}

static void check_decode(const char *body, size_t len, const struct rio_run *w, uint32_t dim,
                         uint32_t max_rows, uint64_t budget_cap)
{
    struct ig_budget *budget = budget_cap ? ig_budget_new(budget_cap, NULL) : NULL;
    struct ig_rowset rs = {0};
    struct ig_codec_error err, want_err;
    bool known;
    int want = rio_expect(w, len, dim, max_rows, &want_err, &known);
    int rv;

    rs.budget = budget;
    memset(&err, 0x55, sizeof(err));
    rv = ig_recordio_decode(body, len, dim, max_rows, &rs, &err);
    FUZZ_CHECK(rv == 0 || rv == IG_ERR_INVALID || rv == IG_ERR_TOOBIG || rv == IG_ERR_FULL ||
                   rv == IG_ERR_NOMEM,
               "decode returned %d", rv);
    FUZZ_CHECK(rs.body == body && rs.body_len == len && rs.budget == budget,
               "decode lost the body or the budget");
    if (rv == IG_ERR_FULL && budget != NULL) {
        check_msg(&err, err.row);
        FUZZ_CHECK(err.row >= 1 && strstr(err.msg, "memory budget") != NULL,
                   "budget refusal \"%s\"", err.msg);
    } else if (known) {
        FUZZ_CHECK(rv == want, "decode at dim %u, max_rows %u: %d \"%s\", expected %d \"%s\"", dim,
                   max_rows, rv, rv ? err.msg : "", want, want ? want_err.msg : "");
        if (rv != 0)
            FUZZ_CHECK(err_eq(&err, &want_err), "decode says row %u \"%s\", expected %u \"%s\"",
                       err.row, err.msg, want_err.row, want_err.msg);
    } else if (rv == 0) {
        /* past the run's max_record: its records are a prefix */
        FUZZ_CHECK(rs.nrows >= w->recs.n, "decode %u rows, the run %zu before its limit", rs.nrows,
                   w->recs.n);
    }
    if (rv == 0) {
        double *row = malloc((dim ? dim : 1) * sizeof(double));
        size_t n = known ? w->recs.n : rs.nrows < w->recs.n ? rs.nrows : w->recs.n;

        FUZZ_CHECK(row != NULL, "malloc");
        FUZZ_CHECK(rs.dim == dim && (dim == 0) == (rs.features == NULL), "dim %u, features %p",
                   rs.dim, (void *)rs.features);
        FUZZ_CHECK(!known || rs.nrows == w->recs.n, "decode %u rows, the run %zu records", rs.nrows,
                   w->recs.n);
        for (size_t i = 0; i < n; i++) {
            const struct rio_rec *r = &w->recs.v[i];

            FUZZ_CHECK(rs.rows[i].off == r->frame_off && rs.rows[i].len == r->frame_len,
                       "row %zu is {%u,%u}, record frame %llu+%llu", i + 1, rs.rows[i].off,
                       rs.rows[i].len, (unsigned long long)r->frame_off,
                       (unsigned long long)r->frame_len);
            if (dim > 0) {
                FUZZ_CHECK(rio_to_row(r, dim, row, &err) == 0, "row %zu", i + 1);
                FUZZ_CHECK(memcmp(row, rs.features + i * dim, dim * sizeof(double)) == 0,
                           "row %zu features differ from record_to_row's", i + 1);
            }
        }
        if (budget != NULL)
            FUZZ_CHECK(
                ig_budget_held(budget) == rs.hold.n &&
                    rs.hold.n == (uint64_t)rs.cap * (sizeof(struct ig_row) + dim * sizeof(double)),
                "%u rows (room %u) of %u features: hold %llu, budget %llu", rs.nrows, rs.cap, dim,
                (unsigned long long)rs.hold.n, (unsigned long long)ig_budget_held(budget));
        free(row);
    } else {
        FUZZ_CHECK(rs.rows == NULL && rs.features == NULL && rs.nrows == 0,
                   "failed decode left rows");
        FUZZ_CHECK(budget == NULL || ig_budget_held(budget) == 0, "failed decode holds %llu",
                   (unsigned long long)ig_budget_held(budget));
        check_msg(&err, err.row);
    }
    ig_rowset_clear(&rs);
    if (budget != NULL) {
        FUZZ_CHECK(ig_budget_held(budget) == 0, "cleared rowset holds %llu",
                   (unsigned long long)ig_budget_held(budget));
        ig_budget_unref(budget);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rio_run w, c;
    const uint8_t *cuts;
    size_t ncuts, len, max_record, stop_at;
    uint32_t extra_dim, max_rows;
    uint64_t budget_cap;
    bool bytewise;
    uint8_t *body;

    if (size < RIO_HDR)
        return 0;
    rio_alloc_limit = RIO_ALLOC_LIMIT(size);
    ncuts = data[0] & 15;
    bytewise = (data[0] & 16) != 0;
    max_record = rio_max_record[data[0] >> 5];
    extra_dim = data[1];
    budget_cap = (data[2] & 15) ? 64ull << (data[2] & 15) : 0;
    stop_at = data[2] >> 4;
    max_rows = rio_max_rows[data[3] & 7];
    if (ncuts > size - RIO_HDR)
        ncuts = size - RIO_HDR;
    cuts = data + RIO_HDR;
    len = size - RIO_HDR - ncuts;
    body = malloc(len ? len : 1);
    FUZZ_CHECK(body != NULL, "malloc");
    memcpy(body, data + RIO_HDR + ncuts, len);

    /* at once, then cut up: the same records and the same end */
    rio_run(body, len, max_record, NULL, 0, false, 0, &w);
    check_frames(&w, len);
    rio_run(body, len, max_record, cuts, ncuts, bytewise, 0, &c);
    FUZZ_CHECK(c.recs.n == w.recs.n, "%zu records cut up, %zu at once", c.recs.n, w.recs.n);
    check_same_records(&c.recs, &w.recs, w.recs.n, "cut up vs at once");
    FUZZ_CHECK(c.rv == w.rv && (c.rv == 0 || err_eq(&c.err, &w.err)),
               "cut up: %d \"%s\", at once: %d \"%s\"", c.rv, c.rv ? c.err.msg : "", w.rv,
               w.rv ? w.err.msg : "");
    rio_list_free(&c.recs);

    /* a callback that says stop */
    if (stop_at != 0) {
        struct rio_run s;

        rio_run(body, len, max_record, cuts, ncuts, bytewise, stop_at, &s);
        if (stop_at <= w.recs.n) {
            FUZZ_CHECK(s.rv == RIO_STOP_CODE && s.recs.n == stop_at,
                       "stopped at %zu: %d after %zu records", stop_at, s.rv, s.recs.n);
        } else {
            FUZZ_CHECK(s.rv == w.rv && s.recs.n == w.recs.n, "stop past the end changed the run");
        }
        check_same_records(&s.recs, &w.recs, s.recs.n, "stopping vs at once");
        rio_list_free(&s.recs);
    }

    check_records(&w.recs, extra_dim);
    check_decode((const char *)body, len, &w, 0, UINT32_MAX, 0);
    check_decode((const char *)body, len, &w, extra_dim, max_rows, budget_cap);

    rio_list_free(&w.recs);
    free(body);
    rio_alloc_limit = 0;
    return 0;
}

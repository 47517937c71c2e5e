/*
 * fuzz_codec.c - ig_codec_decode in every format, then the invariants of a
 * decoded rowset, ig_codec_encode_response on the decoded rows, and the
 * Content-Type / Accept parsers.
 *
 * Input: byte 0 picks the format, dim and max_rows; the rest is the body.
 *   bits 0-1  format: 0 CSV, 1 JSON Lines, 2 JSON, 3 the one byte 1 picks
 *             (then the body starts after byte 1)
 *   bits 2-4  dim      (codec_dims)
 *   bits 5-7  max_rows (codec_max_rows)
 *   byte 1, bits 0-1 (format 3 only): 0 RecordIO, 1 libsvm with index base
 *             0, 2 libsvm with index base 1, 3 JSON
 * The body is copied into its own exactly-sized allocation so that ASan
 * sees any read past it. application/json is also checked against jansson
 * on the whole body (which the decoder never does, for memory): what the
 * decoder accepts, jansson accepts, and a syntax error the decoder reports
 * is jansson's, word for word, line and column. The responses are encoded from the decoded rows
 * used as predictions, in every response format, with the default JSON key
 * and with the first row as the key. (fuzz_recordio.c checks RecordIO
 * itself much further: chunking, records, round trips.)
 */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "infergate/budget.h"
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"

#define FUZZ_RECHECK_ROWS 8 /* rows re-decoded alone, per input */

static const uint32_t codec_dims[8] = {0, 0, 1, 2, 3, 4, 7, 64};
static const uint32_t codec_max_rows[8] = {1, 2, 3, 4, 16, 17, 100, 100000};

/* The formats whose rows are lines (a CR before the LF is no part of a
 * row, a row holds no LF). */
static bool is_line_format(enum ig_format fmt)
{
    return fmt == IG_FMT_CSV || fmt == IG_FMT_JSONL || fmt == IG_FMT_LIBSVM;
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The error is a NUL-terminated printable-ASCII sentence. */
static void check_error(const struct ig_codec_error *err)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));

    FUZZ_CHECK(n < sizeof(err->msg), "error message not NUL-terminated");
    FUZZ_CHECK(n > 0, "failure without a message");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)err->msg[i] >= 0x20 && (unsigned char)err->msg[i] <= 0x7e,
                   "byte 0x%02x in error message \"%s\"", (unsigned char)err->msg[i], err->msg);
}

/* A row slice decoded on its own (in a fresh exact allocation) must give one
 * row with the same features. */
static void check_row_alone(enum ig_format fmt, const struct ig_rowset *rs, uint32_t i)
{
    const struct ig_row *r = &rs->rows[i];
    struct ig_rowset one = {0};
    struct ig_codec_error err;
    char *copy = malloc(r->len ? r->len : 1);
    int rv;

    FUZZ_CHECK(copy != NULL, "malloc");
    memcpy(copy, rs->body + r->off, r->len);
    one.index_base = rs->index_base;
    rv = ig_codec_decode(fmt, copy, r->len, rs->dim, 1, &one, &err);
    FUZZ_CHECK(rv == 0, "row %u (\"%.*s\") decoded alone fails: %d %s", i, (int)r->len, copy, rv,
               err.msg);
    FUZZ_CHECK(one.nrows == 1, "row %u decoded alone gives %u rows", i, one.nrows);
    /* a CR that ends the body is a row terminator (CSV, JSON Lines,
     * libsvm): a row ending in CR (before its CRLF) loses it when decoded
     * alone */
    FUZZ_CHECK(one.rows[0].off == 0 &&
                   (one.rows[0].len == r->len ||
                    (is_line_format(fmt) && r->len > 0 && copy[r->len - 1] == '\r' &&
                     one.rows[0].len == r->len - 1)),
               "row %u decoded alone is the slice {%u,%u}, not {0,%u}", i, one.rows[0].off,
               one.rows[0].len, r->len);
    FUZZ_CHECK(memcmp(one.features, rs->features + (size_t)i * rs->dim,
                      rs->dim * sizeof(double)) == 0,
               "row %u decoded alone has other features", i);
    ig_rowset_clear(&one);
    free(copy);
}

static void check_rowset(enum ig_format fmt, const char *body, size_t len, uint32_t dim,
                         uint32_t max_rows, const struct ig_rowset *rs)
{
    uint64_t prev_end = 0;

    FUZZ_CHECK(rs->body == body && rs->body_len == len, "body not recorded");
    FUZZ_CHECK(rs->nrows >= 1, "success with no rows");
    FUZZ_CHECK(rs->nrows <= max_rows, "%u rows > max_rows %u", rs->nrows, max_rows);
    FUZZ_CHECK(rs->rows != NULL, "rows NULL");
    FUZZ_CHECK(rs->dim == dim, "dim %u, asked %u", rs->dim, dim);
    FUZZ_CHECK((dim == 0) == (rs->features == NULL), "features %p with dim %u",
               (void *)rs->features, dim);
    for (uint32_t i = 0; i < rs->nrows; i++) {
        const struct ig_row *r = &rs->rows[i];
        uint64_t end = (uint64_t)r->off + r->len;

        FUZZ_CHECK(end <= len, "row %u {%u,%u} past the body (%zu bytes)", i, r->off, r->len, len);
        FUZZ_CHECK(i == 0 || r->off >= prev_end,
                   "row %u {%u,%u} starts before the end of row %u (%llu)", i, r->off, r->len,
                   i - 1, (unsigned long long)prev_end);
        /* RecordIO rows are the records' frames, back to back */
        if (fmt == IG_FMT_RECORDIO)
            FUZZ_CHECK(r->off == prev_end && r->len >= 8 && r->len % 4 == 0 &&
                           (i + 1 < rs->nrows || end == len),
                       "RecordIO row %u {%u,%u} is no frame after %llu (%zu bytes)", i, r->off,
                       r->len, (unsigned long long)prev_end, len);
        prev_end = end;
        if (fmt == IG_FMT_JSONL || fmt == IG_FMT_LIBSVM)
            FUZZ_CHECK(memchr(body + r->off, '\n', r->len) == NULL, "format %d row %u has a LF",
                       fmt, i);
        if (fmt == IG_FMT_JSON) {
            FUZZ_CHECK(r->len > 0, "empty JSON row %u", i);
            FUZZ_CHECK(!is_json_space(body[r->off]) && !is_json_space(body[end - 1]),
                       "JSON row %u \"%.*s\" is not trimmed", i, (int)r->len, body + r->off);
        }
        for (uint32_t j = 0; j < dim; j++)
            FUZZ_CHECK(isfinite(rs->features[(size_t)i * dim + j]), "row %u feature %u is %g", i,
                       j, rs->features[(size_t)i * dim + j]);
    }
    if (dim > 0)
        for (uint32_t i = 0; i < rs->nrows && i < FUZZ_RECHECK_ROWS; i++)
            check_row_alone(fmt, rs, i);
}

static bool key_is_plain(const char *key)
{
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            return false;
    return true;
}

/* The response the encoder must write, when it is fully specified. */
static char *expected_response(enum ig_format fmt, const char *key, const char *base,
                               const struct ig_pred *preds, size_t n, size_t *elen)
{
    size_t total = fmt == IG_FMT_JSON ? strlen(key) + 8 : 1, o = 0;
    char *e;

    for (size_t i = 0; i < n; i++)
        total += preds[i].len + 1;
    e = malloc(total);
    FUZZ_CHECK(e != NULL, "malloc");
    if (fmt == IG_FMT_JSON)
        o += (size_t)sprintf(e, "{\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (fmt == IG_FMT_JSON && i > 0)
            e[o++] = ',';
        memcpy(e + o, base + preds[i].off, preds[i].len);
        o += preds[i].len;
        if (fmt == IG_FMT_CSV || fmt == IG_FMT_JSONL)
            e[o++] = '\n';
    }
    if (fmt == IG_FMT_JSON) {
        memcpy(e + o, "]}", 2);
        o += 2;
    }
    *elen = o;
    return e;
}

/* Encode <n> fake predictions (slices of <base>) in <fmt>, into a buffer
 * that already holds a prefix, with a roomy cap, with a cap one byte short
 * of the response and with the exact cap. libsvm has no response format:
 * refused, the buffer untouched. */
static void check_encode(enum ig_format fmt, const char *key, const char *base,
                         const struct ig_pred *preds, size_t n)
{
    static const char prefix[] = "HTTP/1.1 200 OK\r\n\r\n";
    const size_t plen = sizeof(prefix) - 1;
    struct ig_buf out;
    size_t got;
    int rv;

    ig_buf_init(&out, 1u << 24);
    FUZZ_CHECK(ig_buf_append(&out, prefix, plen) == 0, "prefix");
    rv = ig_codec_encode_response(fmt, key, base, preds, n, &out);
    if (fmt == IG_FMT_LIBSVM) {
        FUZZ_CHECK(rv == IG_ERR_UNSUPPORTED, "libsvm response encoded: %d", rv);
        FUZZ_CHECK(out.len == plen && memcmp(out.data, prefix, plen) == 0 &&
                       out.data[plen] == '\0',
                   "buffer changed by a refused encode");
        ig_buf_clear(&out);
        return;
    }
    FUZZ_CHECK(rv == 0, "encode failed: %d", rv);
    got = out.len - plen;
    FUZZ_CHECK(memcmp(out.data, prefix, plen) == 0, "prefix overwritten");
    FUZZ_CHECK(out.data[out.len] == '\0', "not NUL-terminated");
    if (key == NULL || key_is_plain(key)) {
        size_t elen;
        char *e = expected_response(fmt, key ? key : "predictions", base, preds, n, &elen);

        FUZZ_CHECK(got == elen && memcmp(out.data + plen, e, elen) == 0,
                   "format %d: got %zu bytes \"%.*s\", want %zu \"%.*s\"", fmt, got,
                   (int)(got < 200 ? got : 200), out.data + plen, elen,
                   (int)(elen < 200 ? elen : 200), e);
        free(e);
    } else {
        FUZZ_CHECK(got >= 7 && memcmp(out.data + plen, "{\"", 2) == 0 &&
                       memcmp(out.data + out.len - 2, "]}", 2) == 0,
                   "JSON response shape");
    }
    /* One byte short: refused, the buffer exactly as it was. */
    if (got > 0) {
        struct ig_buf small;

        ig_buf_init(&small, plen + got - 1);
        FUZZ_CHECK(ig_buf_append(&small, prefix, plen) == 0, "prefix");
        rv = ig_codec_encode_response(fmt, key, base, preds, n, &small);
        FUZZ_CHECK(rv == IG_ERR_TOOBIG, "cap one byte short: %d", rv);
        FUZZ_CHECK(small.len == plen && memcmp(small.data, prefix, plen) == 0 &&
                       small.data[plen] == '\0',
                   "buffer changed by a failed encode");
        ig_buf_clear(&small);
    }
    /* The exact cap: the same bytes. */
    {
        struct ig_buf exact;

        ig_buf_init(&exact, plen + got);
        FUZZ_CHECK(ig_buf_append(&exact, prefix, plen) == 0, "prefix");
        rv = ig_codec_encode_response(fmt, key, base, preds, n, &exact);
        FUZZ_CHECK(rv == 0 && exact.len == out.len && memcmp(exact.data, out.data, out.len) == 0,
                   "format %d: a cap of exactly the %zu bytes of the response: %d", fmt, got, rv);
        ig_buf_clear(&exact);
    }
    ig_buf_clear(&out);
}

static void check_media_parsers(const char *s, enum ig_format dflt)
{
    enum ig_format out = IG_FMT_COUNT;
    int rv;

    rv = ig_codec_format_parse(s, dflt, &out);
    FUZZ_CHECK((rv == 0 && (unsigned)out < IG_FMT_COUNT) ||
                   (rv == IG_ERR_UNSUPPORTED && out == IG_FMT_COUNT),
               "format_parse(\"%s\") = %d, %d", s, rv, out);
    out = IG_FMT_COUNT;
    rv = ig_codec_accept_parse(s, dflt, &out);
    FUZZ_CHECK((rv == 0 && (unsigned)out < IG_FMT_COUNT) ||
                   (rv == IG_ERR_UNSUPPORTED && out == IG_FMT_COUNT),
               "accept_parse(\"%s\") = %d, %d", s, rv, out);
}

/* application/json against jansson on the whole body (after a byte-order
 * mark): the decoder reads it one value at a time, but accepts only what
 * jansson accepts and reports jansson's syntax errors exactly; with dim 0
 * (no row errors) a body jansson refuses gets jansson's message unless
 * another limit stopped the decode first. */
static void check_json_whole(const char *body, size_t len, uint32_t dim, int rv,
                             const struct ig_codec_error *err)
{
    static const char syn[] = "Request body is not valid JSON: ";
    size_t skip = len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    json_error_t jerr;
    json_t *v;
    char want[256];

    /* empty (or only the mark), a NUL byte, gzip: the decoder's own words */
    if (len == skip || memchr(body, '\0', len) != NULL ||
        (len >= 2 && (unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b))
        return;
    v = json_loadb(body + skip, len - skip, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL && json_error_code(&jerr) == json_error_numeric_overflow)
        v = json_loadb(body + skip, len - skip,
                       JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (v != NULL) {
        json_decref(v);
        FUZZ_CHECK(rv != IG_ERR_INVALID || strncmp(err->msg, syn, sizeof(syn) - 1) != 0,
                   "jansson accepts the body, the decoder says \"%s\"", err->msg);
        return;
    }
    FUZZ_CHECK(rv != 0, "the decoder accepts a body jansson refuses: %s", jerr.text);
    snprintf(want, sizeof(want), "%s%s at line %d column %d.", syn, jerr.text, jerr.line,
             jerr.column);
    for (char *p = want; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    if (strncmp(err->msg, syn, sizeof(syn) - 1) == 0 ||
        (dim == 0 && rv == IG_ERR_INVALID &&
         strcmp(err->msg, "Request body nests deeper than 64 levels.") != 0 &&
         strncmp(err->msg, "Request body has more than", 26) != 0))
        FUZZ_CHECK(strcmp(err->msg, want) == 0, "syntax error \"%s\", jansson's \"%s\"",
                   err->msg, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum ig_format fmt;
    uint32_t dim, max_rows;
    struct ig_rowset rs = {0};
    struct ig_codec_error err;
    struct ig_budget *budget;
    char *body, *str;
    size_t len, hdr;
    uint8_t index_base = 0;
    int rv;

    if (size == 0)
        return 0;
    dim = codec_dims[(data[0] >> 2) & 7];
    max_rows = codec_max_rows[(data[0] >> 5) & 7];
    hdr = 1;
    if ((data[0] & 3) < 3) {
        fmt = (enum ig_format)(data[0] & 3);
    } else {
        static const enum ig_format ext[4] = {IG_FMT_RECORDIO, IG_FMT_LIBSVM, IG_FMT_LIBSVM,
                                              IG_FMT_JSON};

        if (size < 2)
            return 0;
        fmt = ext[data[1] & 3];
        index_base = (data[1] & 3) == 2;
        hdr = 2;
    }
    len = size - hdr;
    body = malloc(len ? len : 1);
    FUZZ_CHECK(body != NULL, "malloc");
    memcpy(body, data + hdr, len);

    memset(&err, 0x55, sizeof(err));
    rs.index_base = index_base;
    rv = ig_codec_decode(fmt, body, len, dim, max_rows, &rs, &err);
    if (fmt == IG_FMT_JSON)
        check_json_whole(body, len, dim, rv, &err);
    if (rv == 0) {
        struct ig_pred *preds = malloc(rs.nrows * sizeof(*preds));
        char *key = NULL;

        FUZZ_CHECK(preds != NULL, "malloc");
        check_rowset(fmt, body, len, dim, max_rows, &rs);
        for (uint32_t i = 0; i < rs.nrows; i++) {
            preds[i].off = rs.rows[i].off;
            preds[i].len = rs.rows[i].len;
        }
        for (int f = 0; f < IG_FMT_COUNT; f++)
            check_encode((enum ig_format)f, NULL, body, preds, rs.nrows);
        /* a JSON key made of peer bytes: the first row, as a C string */
        key = malloc((size_t)rs.rows[0].len + 1);
        FUZZ_CHECK(key != NULL, "malloc");
        memcpy(key, body + rs.rows[0].off, rs.rows[0].len);
        key[rs.rows[0].len] = '\0';
        check_encode(IG_FMT_JSON, key, body, preds, rs.nrows);
        check_encode(IG_FMT_JSON, key, NULL, NULL, 0);
        free(key);
        free(preds);
    } else {
        FUZZ_CHECK(rv == IG_ERR_INVALID || rv == IG_ERR_TOOBIG, "decode returned %d", rv);
        FUZZ_CHECK(rs.rows == NULL && rs.features == NULL && rs.nrows == 0,
                   "failed decode left rows");
        FUZZ_CHECK(rs.body == body && rs.body_len == len, "failed decode lost the body");
        check_error(&err);
        FUZZ_CHECK(err.row <= max_rows + 1u || max_rows == UINT32_MAX, "error row %u", err.row);
    }
    ig_rowset_clear(&rs);
    FUZZ_CHECK(rs.rows == NULL && rs.features == NULL && rs.nrows == 0 && rs.dim == 0,
               "ig_rowset_clear left fields");

    /* Again against a budget of a few bytes per body byte: the same result
     * or IG_ERR_FULL; the budget holds exactly what the rowset allocated,
     * and nothing once it is cleared or when the decode failed. */
    budget = ig_budget_new(64 + len * 8, NULL);
    rs.budget = budget;
    rs.index_base = index_base;
    rv = ig_codec_decode(fmt, body, len, dim, max_rows, &rs, &err);
    FUZZ_CHECK(rs.budget == budget, "decode lost the budget");
    if (rv == 0) {
        FUZZ_CHECK(rs.cap >= rs.nrows && rs.cap <= max_rows &&
                       rs.cap <= (rs.nrows < 8 ? 16 : 2 * rs.nrows),
                   "room for %u rows holding %u", rs.cap, rs.nrows);
        FUZZ_CHECK(ig_budget_held(budget) == rs.hold.n &&
                       rs.hold.n == rs.cap * (sizeof(struct ig_row) + dim * sizeof(double)),
                   "%u rows of %u features hold %llu bytes, the budget %llu", rs.nrows, dim,
                   (unsigned long long)rs.hold.n, (unsigned long long)ig_budget_held(budget));
    } else {
        FUZZ_CHECK(ig_budget_held(budget) == 0 && rs.hold.n == 0, "failed decode holds %llu",
                   (unsigned long long)ig_budget_held(budget));
        check_error(&err);
    }
    ig_rowset_clear(&rs);
    FUZZ_CHECK(ig_budget_held(budget) == 0, "cleared rowset holds %llu",
               (unsigned long long)ig_budget_held(budget));
    ig_budget_unref(budget);

    /* the whole body as a header value */
    str = malloc(len + 1);
    FUZZ_CHECK(str != NULL, "malloc");
    memcpy(str, data + hdr, len);
    str[len] = '\0';
    check_media_parsers(str, fmt);
    free(str);
    free(body);
    return 0;
}

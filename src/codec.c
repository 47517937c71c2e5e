/*
 * codec.c - content negotiation, the decode entry point, the rowset
 * builder and the response encoder. The per-format decoders live in
 * codec_csv.c and codec_json.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/recordio.h"

/* Rows allocated by the first ig_rowset_push; then doubled. */
#define CODEC_ROWS_INITIAL 16u

struct codec_mime {
    const char *name;
    enum ig_format fmt;
};

static const struct codec_mime codec_mimes[] = {
    {"text/csv", IG_FMT_CSV},
    {"application/jsonlines", IG_FMT_JSONL},
    {"application/jsonl", IG_FMT_JSONL},
    {"application/x-jsonlines", IG_FMT_JSONL},
    {"application/json", IG_FMT_JSON},
    {"application/x-recordio-protobuf", IG_FMT_RECORDIO},
    {"text/libsvm", IG_FMT_LIBSVM},
    {"text/x-libsvm", IG_FMT_LIBSVM},
};

static const char *const codec_mime_names[IG_FMT_COUNT] = {
    [IG_FMT_CSV] = "text/csv",
    [IG_FMT_JSONL] = "application/jsonlines",
    [IG_FMT_JSON] = "application/json",
    [IG_FMT_RECORDIO] = "application/x-recordio-protobuf",
    [IG_FMT_LIBSVM] = "text/libsvm",
};

static int codec_is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim spaces and tabs off [*s, *e). */
static void codec_trim(const char **s, const char **e)
{
    while (*s < *e && codec_is_space(**s))
        (*s)++;
    while (*e > *s && codec_is_space((*e)[-1]))
        (*e)--;
}

static int codec_eq(const char *s, const char *e, const char *lit)
{
    size_t n = strlen(lit);

    return (size_t)(e - s) == n && strncasecmp(s, lit, n) == 0;
}

/* The known format of the media type [s, e) (no parameters, trimmed), or -1. */
static int codec_mime_lookup(const char *s, const char *e)
{
    for (size_t i = 0; i < IG_ARRAY_SIZE(codec_mimes); i++)
        if (codec_eq(s, e, codec_mimes[i].name))
            return (int)codec_mimes[i].fmt;
    return -1;
}

/* The end of the media type in [s, e): the first ';' or e. */
static const char *codec_type_end(const char *s, const char *e)
{
    const char *semi = memchr(s, ';', (size_t)(e - s));

    return semi ? semi : e;
}

int ig_codec_format_parse(const char *value, enum ig_format dflt, enum ig_format *out)
{
    const char *s, *e;
    int f;

    if (value == NULL) {
        *out = dflt;
        return 0;
    }
    s = value;
    e = codec_type_end(s, s + strlen(s));
    codec_trim(&s, &e);
    if (s == e) {
        /* Blank, or only parameters: no type was named. */
        const char *all = value, *alle = value + strlen(value);

        codec_trim(&all, &alle);
        if (all != alle)
            return IG_ERR_UNSUPPORTED;
        *out = dflt;
        return 0;
    }
    f = codec_mime_lookup(s, e);
    if (f < 0)
        return IG_ERR_UNSUPPORTED;
    *out = (enum ig_format)f;
    return 0;
}

/* The first <c> in [s, e) outside a quoted string (a parameter's value
 * "...", in which a backslash quotes the next byte; RFC 9110 section
 * 5.6.4), or NULL. A quote left open runs to <e>. */
static const char *codec_delim(const char *s, const char *e, char c)
{
    /* one pass: looking for <c> again from each quoted string's end cost
     * a scan to <e> a string, quadratic in a header of many "" */
    for (; s < e; s++) {
        if (*s == c)
            return s;
        if (*s != '"')
            continue;
        for (s++; s < e && *s != '"'; s++)
            if (*s == '\\' && s + 1 < e)
                s++;
        if (s >= e)
            return NULL;
    }
    return NULL;
}

/* The q-value of the parameter list [s, e) (starting at a ';') in
 * thousandths: 1000 without one, or with one that is not a qvalue
 * ("0", "0.5", "1.000"; RFC 9110 section 12.4.2, more than three decimals
 * taken as three, but never as 0 when one of them is not 0). */
static int codec_params_q(const char *s, const char *e)
{
    while (s < e) {
        const char *pe, *eq, *ns, *ne, *vs, *ve;

        s++; /* the ';' */
        pe = codec_delim(s, e, ';');
        if (pe == NULL)
            pe = e;
        eq = memchr(s, '=', (size_t)(pe - s));
        if (eq != NULL) {
            ns = s;
            ne = eq;
            vs = eq + 1;
            ve = pe;
            codec_trim(&ns, &ne);
            codec_trim(&vs, &ve);
            if (codec_eq(ns, ne, "q") && vs < ve && (*vs == '0' || *vs == '1')) {
                const char *p = vs + 1;
                int q = (*vs - '0') * 1000, scale = 100;
                int tiny = 0; /* a digit past the third that is not 0 */

                if (p < ve && *p == '.') /* digits past the third are read and not counted */
                    for (p++; p < ve && *p >= '0' && *p <= '9'; p++, scale /= 10) {
                        q += (*p - '0') * scale;
                        tiny |= scale == 0 && *p != '0';
                    }
                if (p == ve && q <= 1000)
                    return q == 0 && tiny ? 1 : q; /* 0.0001: acceptable, the least */
                return 1000; /* not a qvalue: as if absent */
            }
        }
        s = pe;
    }
    return 1000;
}

static int codec_mime_is_text(enum ig_format f)
{
    return f == IG_FMT_CSV || f == IG_FMT_LIBSVM; /* codec_mime_names: text/... */
}

/* What an Accept element says of a format: its q (thousandths, -1: not
 * named), and the element's place in the list. */
struct codec_acc {
    int q, pos;
};

static void codec_acc_set(struct codec_acc *a, int q, int pos)
{
    if (a->q < 0) { /* the first element naming it speaks */
        a->q = q;
        a->pos = pos;
    } else if (q > a->q) { /* or an alias of higher q (application/jsonl) */
        a->q = q;
    }
}

/* A wildcard's choice among equals: the default, then JSON, CSV, JSON
 * Lines, RecordIO (libsvm is never an answer a wildcard picks). */
static int codec_wild_rank(enum ig_format f, enum ig_format dflt)
{
    static const int rank[IG_FMT_COUNT] = {[IG_FMT_JSON] = 1, [IG_FMT_CSV] = 2,
                                           [IG_FMT_JSONL] = 3, [IG_FMT_RECORDIO] = 4,
                                           [IG_FMT_LIBSVM] = 5};
    return f == dflt ? 0 : rank[f];
}

int ig_codec_accept_parse(const char *value, enum ig_format dflt, enum ig_format *out)
{
    /* each format's q is that of the most specific range naming it (its
     * type, then text/star or application/star, then star/star; RFC 9110
     * section 12.5.1); the highest q wins, then the earliest element, then
     * for a wildcard codec_wild_rank */
    struct codec_acc fmt[IG_FMT_COUNT], text = {-1, 0}, app = {-1, 0}, all_ = {-1, 0};
    const char *p, *end;
    int any = 0, pos = 0, best = -1, best_q = 0, best_pos = 0, best_rank = 0;

    if (value == NULL) {
        *out = dflt;
        return 0;
    }
    for (int f = 0; f < IG_FMT_COUNT; f++)
        fmt[f].q = -1;
    p = value;
    end = value + strlen(value);
    for (;; pos++) {
        const char *comma = codec_delim(p, end, ',');
        const char *ee = comma ? comma : end;
        const char *s = p, *te = codec_type_end(p, ee);
        const char *all = p, *alle = ee;

        codec_trim(&all, &alle);
        if (all != alle)
            any = 1;
        codec_trim(&s, &te);
        if (s < te) {
            int f = codec_mime_lookup(s, te), q = codec_params_q(te, ee);

            if (f >= 0 && pos == 0 && q == 1000) { /* first, of q 1: none beats it */
                *out = (enum ig_format)f;
                return 0;
            }
            if (f >= 0)
                codec_acc_set(&fmt[f], q, pos);
            else if (codec_eq(s, te, "*/*"))
                codec_acc_set(&all_, q, pos);
            else if (codec_eq(s, te, "text/*"))
                codec_acc_set(&text, q, pos);
            else if (codec_eq(s, te, "application/*"))
                codec_acc_set(&app, q, pos);
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    if (!any) {
        *out = dflt;
        return 0;
    }
    for (int f = 0; f < IG_FMT_COUNT; f++) {
        const struct codec_acc *a = &fmt[f];
        int rank = 0;

        if (a->q < 0) { /* not named: what a range says, for an answer format */
            a = codec_mime_is_text((enum ig_format)f) ? &text : &app;
            if (a->q < 0)
                a = &all_;
            if (f == IG_FMT_LIBSVM && f != (int)dflt)
                continue;
            rank = codec_wild_rank((enum ig_format)f, dflt);
        }
        if (a->q <= 0)
            continue; /* not named, or q=0: not acceptable */
        if (best < 0 || a->q > best_q || (a->q == best_q && a->pos < best_pos) ||
            (a->q == best_q && a->pos == best_pos && rank < best_rank)) {
            best = f;
            best_q = a->q;
            best_pos = a->pos;
            best_rank = rank;
        }
    }
    if (best < 0)
        return IG_ERR_UNSUPPORTED;
    *out = (enum ig_format)best;
    return 0;
}

const char *ig_codec_format_mime(enum ig_format f)
{
    if ((unsigned)f >= IG_FMT_COUNT)
        return "application/octet-stream";
    return codec_mime_names[f];
}

const char ig_codec_msg_gzip[] =
    "The request body looks gzip-compressed (it starts with 1F 8B); send it uncompressed: "
    "Content-Encoding is not supported.";

const char *ig_codec_error_reason(const struct ig_codec_error *err)
{
    char pre[24];
    int n = snprintf(pre, sizeof(pre), "Row %u: ", err->row);

    return strncmp(err->msg, pre, (size_t)n) == 0 ? err->msg + n : err->msg;
}

void ig_codec_error_set(struct ig_codec_error *err, uint32_t row, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    err->row = row;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    /* Messages quote peer bytes: keep them printable ASCII, so they are
     * safe in a JSON error body and in the log. */
    for (char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

void ig_rowset_clear(struct ig_rowset *rs)
{
    ig_free(&rs->rows);
    ig_free(&rs->features);
    ig_budget_hold_clear(&rs->hold);
    rs->body = NULL;
    rs->body_len = 0;
    rs->nrows = 0;
    rs->dim = 0;
    rs->cap = 0;
    rs->budget = NULL;
    rs->pass = NULL;
}

/* Bytes allocated for <rows> rows and <feats> rows of features. */
static uint64_t codec_rowset_bytes(const struct ig_rowset *rs, size_t rows, size_t feats)
{
    return (uint64_t)rows * sizeof(struct ig_row) + (uint64_t)feats * rs->dim * sizeof(double);
}

/*
 * The rows the body can still hold from offset <off> on: every row takes
 * at least two bytes with its separator (a CSV or JSON Lines row and its
 * newline, a JSON element and its comma), the last one at least one. A
 * bound, not a promise: growing past it only costs another doubling.
 */
static size_t codec_rows_left(const struct ig_rowset *rs, uint32_t off)
{
    if (rs->body_len <= off)
        return 0;
    return (rs->body_len - off) / 2 + 1;
}

int ig_rowset_push(struct ig_rowset *rs, uint32_t max_rows, uint32_t off, double **feat,
                   struct ig_codec_error *err)
{
    uint32_t n = rs->nrows;
    double *f;

    if (n >= max_rows) {
        ig_codec_error_set(err, 0, "Request has more than %u rows.", max_rows);
        return IG_ERR_TOOBIG;
    }
    if (n == rs->cap) {
        /* Double (16 at first), but never past what the body can hold or
         * max_rows: a 6 MiB body of one-byte rows takes 3 Mi rows of
         * room, not 4 Mi. */
        size_t ncap = n == 0 ? CODEC_ROWS_INITIAL : (size_t)n * 2, left = codec_rows_left(rs, off);
        struct ig_row *rows;

        if (left > 0 && ncap > n + left)
            ncap = n + left;
        if (ncap > max_rows)
            ncap = max_rows;
        if (ncap > SIZE_MAX / sizeof(*rows) ||
            (rs->dim > 0 && ncap > SIZE_MAX / sizeof(double) / rs->dim))
            goto nomem;
        /* Charge first: what a peer makes us allocate is refused before it
         * is allocated, not after. */
        if (ig_budget_hold_set(&rs->hold, rs->budget, codec_rowset_bytes(rs, ncap, ncap)) < 0) {
            ig_codec_error_set(err, n + 1,
                               "Row %u: the decoded features of this request do not fit in the "
                               "gateway's memory budget; retry later or send fewer rows.",
                               n + 1);
            return IG_ERR_FULL;
        }
        rows = ig_try_realloc(rs->rows, ncap * sizeof(*rows));
        if (rows == NULL) {
            ig_budget_hold_set(&rs->hold, rs->budget, codec_rowset_bytes(rs, n, n));
            goto nomem;
        }
        rs->rows = rows;
        if (rs->dim > 0) {
            f = ig_try_realloc(rs->features, ncap * rs->dim * sizeof(double));
            if (f == NULL) {
                /* rows grew, features did not: keep the old capacity (the
                 * next push reallocates rows to the same size, harmless),
                 * and the hold says what is allocated */
                ig_budget_hold_set(&rs->hold, rs->budget, codec_rowset_bytes(rs, ncap, n));
                goto nomem;
            }
            rs->features = f;
        }
        rs->cap = (uint32_t)ncap;
    }
    rs->rows[n].off = off;
    rs->rows[n].len = 0;
    if (rs->dim > 0) {
        f = rs->features + (size_t)n * rs->dim;
        if (rs->missing_nan)
            for (uint32_t i = 0; i < rs->dim; i++)
                f[i] = NAN;
        else
            memset(f, 0, rs->dim * sizeof(double));
        *feat = f;
    } else if (feat != NULL) {
        *feat = NULL;
    }
    rs->nrows = n + 1;
    return 0;

nomem:
    ig_codec_error_set(err, 0, "Out of memory decoding the request.");
    return IG_ERR_NOMEM;
}

int ig_codec_decode(enum ig_format fmt, const char *body, size_t len, uint32_t dim,
                    uint32_t max_rows, struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct ig_budget *budget = rs->budget;
    uint8_t index_base = rs->index_base, missing_nan = rs->missing_nan;
    size_t skip = 0;
    int rv;

    memset(rs, 0, sizeof(*rs));
    rs->body = body;
    rs->body_len = len;
    rs->budget = budget;
    rs->index_base = index_base;
    rs->missing_nan = missing_nan;
    if (err != NULL) {
        err->row = 0;
        err->msg[0] = '\0';
    }
    if ((unsigned)fmt >= IG_FMT_COUNT) {
        ig_codec_error_set(err, 0, "Unsupported request format.");
        return IG_ERR_UNSUPPORTED;
    }
    if (len == 0) {
        ig_codec_error_set(err, 0, "Request body is empty.");
        return IG_ERR_INVALID;
    }
    if (body == NULL) {
        ig_codec_error_set(err, 0, "Request body is missing.");
        return IG_ERR_INVALID;
    }
    if (len > UINT32_MAX) {
        ig_codec_error_set(err, 0, "Request body is 4 GiB or larger.");
        return IG_ERR_TOOBIG;
    }
    /* A compressed body is no text format: say what it looks like rather
     * than report its bytes as a syntax error. */
    if (len >= 2 && (unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b) {
        ig_codec_error_set(err, 0, "%s", ig_codec_msg_gzip);
        return IG_ERR_INVALID;
    }
    /* A UTF-8 byte-order mark (Windows tools write one) is no content:
     * decode what follows; the rows' offsets still index <body>. */
    if (fmt != IG_FMT_RECORDIO && len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
        skip = 3;
        if (len == skip) {
            ig_codec_error_set(err, 0, "Request body is empty.");
            return IG_ERR_INVALID;
        }
    }
    rs->dim = dim;
    switch (fmt) {
    case IG_FMT_CSV:
        rv = ig_codec_decode_csv(body + skip, len - skip, dim, max_rows, rs, err);
        break;
    case IG_FMT_JSONL:
        rv = ig_codec_decode_jsonl(body + skip, len - skip, dim, max_rows, rs, err);
        break;
    case IG_FMT_JSON:
        /* offsets index <body> already: a NUL byte's too */
        rv = ig_codec_decode_json_at(body, len, skip, dim, max_rows, rs, err);
        break;
    case IG_FMT_RECORDIO:
        rv = ig_recordio_decode(body, len, dim, max_rows, rs, err);
        break;
    case IG_FMT_LIBSVM:
        rv = ig_codec_decode_libsvm(body + skip, len - skip, dim, max_rows, rs, err);
        break;
    default:
        rv = IG_ERR_UNSUPPORTED;
        break;
    }
    if (rv == 0 && skip > 0 && fmt != IG_FMT_JSON)
        for (uint32_t i = 0; i < rs->nrows; i++)
            rs->rows[i].off += (uint32_t)skip;
    if (rv < 0) {
        ig_rowset_clear(rs); /* releases what the rows held */
        rs->body = body;
        rs->body_len = len;
        rs->budget = budget;
        rs->index_base = index_base;
        rs->missing_nan = missing_nan;
    }
    return rv;
}

/* The JSON-escaped length of <key>, without quotes. */
static size_t codec_json_key_len(const char *key)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        n += *p == '"' || *p == '\\' ? 2 : *p < 0x20 ? 6 : 1;
    return n;
}

/* Append <key> as a JSON string (quotes included). */
static int codec_append_json_key(struct ig_buf *out, const char *key)
{
    int rv = ig_buf_append_char(out, '"');

    for (const unsigned char *p = (const unsigned char *)key; rv == 0 && *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};

            rv = ig_buf_append(out, esc, 2);
        } else if (*p < 0x20) {
            rv = ig_buf_printf(out, "\\u%04x", *p);
        } else {
            rv = ig_buf_append_char(out, (char)*p);
        }
    }
    if (rv == 0)
        rv = ig_buf_append_char(out, '"');
    return rv;
}

int ig_codec_encode_response(enum ig_format fmt, const char *json_key, const char *base,
                             const struct ig_pred *preds, size_t n, struct ig_buf *out)
{
    size_t orig = out->len, total = 0;
    int rv = 0;

    if ((unsigned)fmt >= IG_FMT_COUNT || fmt == IG_FMT_LIBSVM)
        return IG_ERR_UNSUPPORTED;
    if (json_key == NULL)
        json_key = "predictions";
    /* Reserve the exact size at once: one allocation, and a cap hit is
     * found before anything is written. Each row takes its length plus a
     * "\n" (CSV, JSON Lines) or a "," (JSON, one fewer than rows). */
    for (size_t i = 0; i < n; i++) {
        if (total > SIZE_MAX - preds[i].len - 1)
            return IG_ERR_TOOBIG;
        total += (size_t)preds[i].len + (fmt != IG_FMT_RECORDIO);
    }
    if (fmt == IG_FMT_JSON) {
        size_t klen = codec_json_key_len(json_key);

        if (n > 0)
            total--;
        if (total > SIZE_MAX - klen - 7)
            return IG_ERR_TOOBIG;
        total += klen + 7; /* {"":[]} */
    }
    rv = ig_buf_reserve(out, total);
    if (rv < 0)
        return rv;

    if (fmt == IG_FMT_JSON) {
        rv = ig_buf_append_char(out, '{');
        if (rv == 0)
            rv = codec_append_json_key(out, json_key);
        if (rv == 0)
            rv = ig_buf_append(out, ":[", 2);
        for (size_t i = 0; rv == 0 && i < n; i++) {
            if (i > 0)
                rv = ig_buf_append_char(out, ',');
            if (rv == 0)
                rv = ig_buf_append(out, base + preds[i].off, preds[i].len);
        }
        if (rv == 0)
            rv = ig_buf_append(out, "]}", 2);
    } else {
        /* RecordIO: each prediction is a whole frame already */
        for (size_t i = 0; rv == 0 && i < n; i++) {
            rv = ig_buf_append(out, base + preds[i].off, preds[i].len);
            if (rv == 0 && fmt != IG_FMT_RECORDIO)
                rv = ig_buf_append_char(out, '\n');
        }
    }
    if (rv < 0) {
        out->len = orig;
        if (out->data != NULL)
            out->data[orig] = '\0';
    }
    return rv;
}

/*
 * codec_libsvm.c - text/libsvm request bodies into rows and features.
 *
 * A row is one line, "label idx:val idx:val ...": the label (a number,
 * ignored for inference), then index:value pairs, separated by one or more
 * spaces or tabs. Indices are decimal integers (at most 4294967295),
 * strictly increasing; rs->index_base (0: XGBoost's 0-based columns, 1:
 * the SageMaker Spark library's 1-based ones) is the index of the first
 * feature. Values are finite decimal numbers (ig_parse_double). A line may
 * be the label alone (an all-zero row).
 *
 * No allocation of its own: with dim > 0 a pair writes one double of the
 * row ig_rowset_push zero-filled, after its index was checked against dim,
 * so "0 4000000000:1" costs nothing more than its text; with dim == 0
 * nothing but the rows array is allocated.
 */
#include <math.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/convert.h"

/* Characters of a bad token quoted in an error message. */
#define LIBSVM_SHOW_MAX 40

static int libsvm_is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Fill <err> with "Row N: <what '<token>'><after>", the token cut to
 * LIBSVM_SHOW_MAX characters. */
static int libsvm_fail_tok(struct ig_codec_error *err, uint32_t row, const char *before,
                           const char *tok, size_t n, const char *after)
{
    int show = (int)(n > LIBSVM_SHOW_MAX ? LIBSVM_SHOW_MAX : n);

    ig_codec_error_set(err, row, "Row %u: %s'%.*s%s'%s", row, before, show, tok,
                       n > LIBSVM_SHOW_MAX ? "..." : "", after);
    return IG_ERR_INVALID;
}

/* The decimal integer [s, s + n) (digits only) into *out; -1 when it is
 * not one, -2 when it passes UINT32_MAX. */
static int libsvm_index(const char *s, size_t n, uint32_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (d > 9)
            return -1;
        v = v * 10 + d;
        if (v > UINT32_MAX) {
            /* the rest must still be digits for this to be "too large" */
            for (i++; i < n; i++)
                if ((unsigned)(s[i] - '0') > 9)
                    return -1;
            return -2;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

/* The label token: a finite number, and no pair. */
static int libsvm_label(const char *tok, size_t n, uint32_t row, struct ig_codec_error *err)
{
    double v;

    if (memchr(tok, ':', n) != NULL)
        return libsvm_fail_tok(err, row, "the row starts with ", tok, n,
                               ", not a label: a libsvm row is a label (any number, e.g. 0) "
                               "then index:value pairs.");
    if (ig_parse_double(tok, n, &v) < 0 || !isfinite(v))
        return libsvm_fail_tok(err, row, "the label ", tok, n, " is not a number.");
    return 0;
}

int ig_libsvm_row(const char *line, size_t len, uint32_t row, uint8_t base, uint32_t dim,
                  ig_libsvm_pair_fn *fn, void *arg, struct ig_codec_error *err)
{
    size_t p = 0;
    uint32_t prev = 0;
    int have_prev = 0, first = 1;

    if (memchr(line, '\0', len) != NULL) {
        ig_codec_error_set(err, row, "Row %u: NUL byte in the row.", row);
        return IG_ERR_INVALID;
    }
    for (;;) {
        size_t ts, te, colon;
        uint32_t idx;
        double v;
        int rv;

        while (p < len && libsvm_is_space(line[p]))
            p++;
        if (p == len)
            break;
        ts = p;
        while (p < len && !libsvm_is_space(line[p]))
            p++;
        te = p;
        if (first) {
            first = 0;
            rv = libsvm_label(line + ts, te - ts, row, err);
            if (rv < 0)
                return rv;
            continue;
        }
        colon = ts;
        while (colon < te && line[colon] != ':')
            colon++;
        if (colon == te)
            return libsvm_fail_tok(err, row, "", line + ts, te - ts,
                                   " is not an index:value pair.");
        rv = libsvm_index(line + ts, colon - ts, &idx);
        if (rv == -1)
            return libsvm_fail_tok(err, row, "the feature index of ", line + ts, te - ts,
                                   " is not a non-negative integer.");
        if (rv == -2)
            return libsvm_fail_tok(err, row, "the feature index of ", line + ts, te - ts,
                                   " is larger than 4294967295.");
        if (ig_parse_double(line + colon + 1, te - colon - 1, &v) < 0 || !isfinite(v))
            return libsvm_fail_tok(err, row, "the value of ", line + ts, te - ts,
                                   " is not a number.");
        if (idx < base) {
            ig_codec_error_set(err, row,
                               "Row %u: feature index %u is out of range: indices start at %u.",
                               row, idx, base);
            return IG_ERR_INVALID;
        }
        if (have_prev && idx <= prev) {
            ig_codec_error_set(err, row,
                               "Row %u: feature indices are not strictly increasing (%u after "
                               "%u).",
                               row, idx, prev);
            return IG_ERR_INVALID;
        }
        if (dim > 0 && idx - base >= dim) {
            ig_codec_error_set(err, row,
                               "Row %u: feature index %u is out of range: the model takes %u "
                               "features (indices %u to %llu).",
                               row, idx, dim, base, (unsigned long long)dim - 1 + base);
            return IG_ERR_INVALID;
        }
        prev = idx;
        have_prev = 1;
        if (fn != NULL) {
            rv = fn(arg, idx - base, v);
            if (rv < 0)
                return rv;
        }
    }
    if (first) {
        ig_codec_error_set(err, row, "Row %u: empty row.", row);
        return IG_ERR_INVALID;
    }
    return 0;
}

/* The decoder's pair sink: one feature of the dense row. */
static int libsvm_put(void *arg, uint32_t key, double value)
{
    ((double *)arg)[key] = value;
    return 0;
}

int ig_codec_decode_libsvm(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                           struct ig_rowset *rs, struct ig_codec_error *err)
{
    size_t pos = 0;
    int rv;

    while (pos < len) {
        uint32_t row = rs->nrows + 1;
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - body) : len, next = nl ? end + 1 : len;
        double *feat = NULL;

        /* CRLF, or a CR that ends the body */
        if (end > pos && body[end - 1] == '\r')
            end--;
        rv = ig_rowset_push(rs, max_rows, (uint32_t)pos, &feat, err);
        if (rv < 0)
            return rv;
        rs->rows[row - 1].len = (uint32_t)(end - pos);
        rv = ig_libsvm_row(body + pos, end - pos, row, rs->index_base, dim,
                           dim > 0 ? libsvm_put : NULL, feat, err);
        if (rv < 0)
            return rv;
        pos = next;
    }
    return 0;
}

/*
 * codec_csv.c - text/csv request bodies (RFC 4180) into rows and features.
 *
 * The hot path: one pass over the body, a table-driven scan of unquoted
 * fields, numbers parsed with ig_parse_double in place (the body is
 * not NUL-terminated), no per-row allocation (ig_rowset_push grows the
 * arrays geometrically).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"

/* Characters of a bad field quoted in an error message. */
#define CODEC_CSV_SHOW_MAX 40

/* Bytes that end the fast scan of an unquoted field. */
static const unsigned char codec_csv_stop[256] = {
    ['\0'] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1, [','] = 1,
};


struct codec_csv_in {
    const char *b;
    size_t len;
    uint32_t dim;
    struct ig_codec_error *err;
};

static int codec_csv_is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Is position <p> a row terminator: LF, CRLF, or a CR that ends the body? */
static int codec_csv_at_eol(const struct codec_csv_in *in, size_t p)
{
    if (p >= in->len)
        return 1;
    if (in->b[p] == '\n')
        return 1;
    return in->b[p] == '\r' && (p + 1 == in->len || in->b[p + 1] == '\n');
}

/*
 * Parse the field text [s, s + n) as one finite number. Spaces and tabs
 * around it are allowed. Returns 0, 1 when the field is empty, -1 when it
 * is not a number.
 */
static int codec_csv_number(const char *s, size_t n, double *out)
{
    double v;

    while (n > 0 && codec_csv_is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && codec_csv_is_space(s[n - 1]))
        n--;
    if (n == 0)
        return 1;
    /* ig_parse_double takes only [+-]digits[.digits][eE[+-]digits], of any
     * length: no hex, nan, inf or spaces, which are no CSV number here. */
    if (ig_parse_double(s, n, &v) < 0 || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Exact powers of ten, for codec_csv_fast. */
static const double codec_csv_p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The fast path of a field, in one pass: an unquoted decimal
 * [+-]digits[.digits] (no spaces, no exponent, at most 19 digits whose
 * value fits 53 bits) that a comma or the row's end follows. Its value is
 * the mantissa divided by an exact power of ten: one correctly rounded
 * operation, the same result as ig_parse_double's own fast path. Returns
 * the position after the number, or 0 when the field is not of this form
 * (the general path then reads it, errors and all).
 */
static inline size_t codec_csv_fast(const struct codec_csv_in *in, size_t p, double *out)
{
    const char *b = in->b;
    size_t len = in->len, q = p, d0, f0;
    uint64_t m = 0;
    int neg = 0;
    double v;

    if (q < len && (b[q] == '-' || b[q] == '+'))
        neg = b[q++] == '-';
    for (d0 = q; q < len && (unsigned)(b[q] - '0') < 10; q++)
        m = m * 10 + (uint64_t)(b[q] - '0');
    f0 = q;
    if (q < len && b[q] == '.')
        for (f0 = ++q; q < len && (unsigned)(b[q] - '0') < 10; q++)
            m = m * 10 + (uint64_t)(b[q] - '0');
    /* digits: before the dot (f0 - d0, less the dot) and after it */
    {
        size_t frac = q - f0, nd = q - d0 - (f0 > d0 && b[f0 - 1] == '.');

        if (nd == 0 || nd > 19 || frac > 22 || m > (1ull << 53))
            return 0;
        if (q < len && b[q] != ',' && !codec_csv_at_eol(in, q))
            return 0;
        v = (double)m;
        if (frac > 0)
            v /= codec_csv_p10[frac];
    }
    *out = neg ? -v : v;
    return q;
}

static int codec_csv_fail(const struct codec_csv_in *in, uint32_t row, uint32_t col,
                          const char *what)
{
    ig_codec_error_set(in->err, row, "Row %u, column %u: %s.", row, col, what);
    return IG_ERR_INVALID;
}

/*
 * Decode the row that starts at <start> (< len). Sets *end to the end of
 * its content (before the terminator) and *next to the start of the next
 * row. Writes dim features to <feat> when dim > 0.
 */
static int codec_csv_row(const struct codec_csv_in *in, size_t start, uint32_t row,
                         double *feat, size_t *end, size_t *next)
{
    const char *b = in->b;
    size_t len = in->len, p = start;
    uint32_t col = 0;

    for (;;) {
        size_t fs, fe;

        col++;
        if (in->dim > 0 && col > in->dim) {
            /* Stop here: a huge line is not read past dim + 1 fields. */
            ig_codec_error_set(in->err, row, "Row %u: expected %u features, found more than %u.",
                               row, in->dim, in->dim);
            return IG_ERR_INVALID;
        }
        while (p < len && codec_csv_is_space(b[p]))
            p++;
        if (in->dim > 0) {
            size_t q = codec_csv_fast(in, p, &feat[col - 1]);

            if (q != 0) {
                p = q;
                if (p < len && b[p] == ',') {
                    p++;
                    continue;
                }
                break;
            }
        }
        if (p < len && b[p] == '"') {
            fs = ++p;
            for (;;) {
                while (p < len && b[p] != '"' && b[p] != '\0')
                    p++;
                if (p == len)
                    return codec_csv_fail(in, row, col, "unterminated quoted field");
                if (b[p] == '\0')
                    return codec_csv_fail(in, row, col, "NUL byte in the field");
                if (p + 1 < len && b[p + 1] == '"') {
                    p += 2; /* "" is an escaped quote */
                    continue;
                }
                break;
            }
            fe = p++;
            while (p < len && codec_csv_is_space(b[p]))
                p++;
            if (p < len && b[p] != ',' && !codec_csv_at_eol(in, p))
                return codec_csv_fail(in, row, col, "characters after closing quote");
        } else {
            fs = p;
            for (;;) {
                while (p < len && !codec_csv_stop[(unsigned char)b[p]])
                    p++;
                if (p == len || b[p] == ',' || codec_csv_at_eol(in, p))
                    break;
                if (b[p] == '"')
                    return codec_csv_fail(in, row, col, "quote character in an unquoted field");
                if (b[p] == '\0')
                    return codec_csv_fail(in, row, col, "NUL byte in the field");
                p++; /* a CR that is not a line end: field content */
            }
            fe = p;
            while (fe > fs && codec_csv_is_space(b[fe - 1]))
                fe--;
            if (col == 1 && fe == fs && (p == len || b[p] != ',')) {
                ig_codec_error_set(in->err, row, "Row %u: empty row.", row);
                return IG_ERR_INVALID;
            }
        }

        if (in->dim > 0) {
            int r = codec_csv_number(b + fs, fe - fs, &feat[col - 1]);

            if (r > 0)
                return codec_csv_fail(in, row, col, "empty field");
            if (r < 0) {
                size_t n = fe - fs;
                int show = (int)(n > CODEC_CSV_SHOW_MAX ? CODEC_CSV_SHOW_MAX : n);

                ig_codec_error_set(in->err, row, "Row %u, column %u: '%.*s%s' is not a number.",
                                   row, col, show, b + fs, n > CODEC_CSV_SHOW_MAX ? "..." : "");
                return IG_ERR_INVALID;
            }
        }

        if (p < len && b[p] == ',') {
            p++;
            continue;
        }
        break;
    }
    *end = p;
    if (p < len && b[p] == '\r')
        p++;
    if (p < len && b[p] == '\n')
        p++;
    *next = p;
    if (in->dim > 0 && col < in->dim) {
        ig_codec_error_set(in->err, row, "Row %u: expected %u features, found %u.", row, in->dim,
                           col);
        return IG_ERR_INVALID;
    }
    return 0;
}

int ig_codec_decode_csv(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                        struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct codec_csv_in in = {.b = body, .len = len, .dim = dim, .err = err};
    size_t pos = 0;
    int rv;

    while (pos < len) {
        uint32_t row = rs->nrows + 1;
        double *feat = NULL;
        size_t end = pos, next = len;

        rv = ig_rowset_push(rs, max_rows, (uint32_t)pos, &feat, err);
        if (rv < 0)
            return rv;
        rv = codec_csv_row(&in, pos, row, feat, &end, &next);
        if (rv < 0)
            return rv;
        rs->rows[row - 1].len = (uint32_t)(end - pos);
        pos = next;
    }
    return 0;
}

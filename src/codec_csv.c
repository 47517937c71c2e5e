/*
 * codec_csv.c - text/csv request bodies (RFC 4180) into rows and features.
 *
 * The hot path: one pass over the body, a table-driven scan of unquoted
 * fields, numbers parsed with ig_parse_double in place (the body is
 * not NUL-terminated), no per-row allocation (ig_rowset_push grows the
 * arrays geometrically). Rows split without features (dim 0) are scanned
 * 16 bytes at a time for the bytes that make a row special.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"

/* Characters of a bad field quoted in an error message. */
#define CODEC_CSV_SHOW_MAX 40

/* Bytes that end the fast scan of an unquoted field. */
static const unsigned char codec_csv_stop[256] = {
    ['\0'] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1, [','] = 1,
};

/* Bytes a row of plain fields cannot hold (codec_csv_scan), and, with
 * space and tab, those it cannot start with (codec_csv_split_row). */
static const unsigned char codec_csv_special[256] = {
    ['\0'] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1,
};
static const unsigned char codec_csv_nostart[256] = {
    ['\0'] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1, [' '] = 1, ['\t'] = 1,
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

/*
 * The first byte at or after <p> of LF, CR, '"' or NUL, or <len>: 16
 * bytes a step with SSE2, 8 with a word's arithmetic elsewhere (on a
 * little-endian machine), then one at a time.
 */
static inline size_t codec_csv_scan(const char *b, size_t p, size_t len)
{
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'), qt = _mm_set1_epi8('"');
    const __m128i nul = _mm_setzero_si128();

    for (; len - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + p));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, qt), _mm_cmpeq_epi8(v, nul)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);

        if (bits != 0)
            return p + (unsigned)__builtin_ctz(bits);
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* (x - 0x01..) & ~x & 0x80.. flags each zero byte of x; bytes above a
     * zero byte may be flagged too, so only the lowest flag is sure: the
     * first byte that matches, in memory order. */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    for (; len - p >= 8; p += 8) {
        uint64_t x, t = 0;

        memcpy(&x, b + p, sizeof(x));
        t |= (x - ones) & ~x;
        t |= ((x ^ (ones * '\n')) - ones) & ~(x ^ (ones * '\n'));
        t |= ((x ^ (ones * '\r')) - ones) & ~(x ^ (ones * '\r'));
        t |= ((x ^ (ones * '"')) - ones) & ~(x ^ (ones * '"'));
        t &= highs;
        if (t != 0)
            return p + (size_t)(__builtin_ctzll(t) / 8);
    }
#endif
    while (p < len && !codec_csv_special[(unsigned char)b[p]])
        p++;
    return p;
}

/*
 * The fast path of a row when no features are parsed (dim 0): a row that
 * starts with none of space, tab, LF, CR, '"' or NUL and holds no '"', NUL
 * or bare CR up to its LF, CRLF or the body's end is valid whatever its
 * commas (no quoting, not blank): find that end with codec_csv_scan. Sets
 * *end and *next as codec_csv_row does and returns 1; 0 when the row is
 * not of this kind (codec_csv_row reads it, errors and all).
 */
static inline int codec_csv_split_row(const char *b, size_t len, size_t pos, size_t *end,
                                      size_t *next)
{
    size_t e;

    if (codec_csv_nostart[(unsigned char)b[pos]])
        return 0;
    e = codec_csv_scan(b, pos, len);
    if (e == len) {
        *end = *next = len;
        return 1;
    }
    if (b[e] == '\n') {
        *end = e;
        *next = e + 1;
        return 1;
    }
    if (b[e] == '\r' && (e + 1 == len || b[e + 1] == '\n')) {
        *end = e;
        *next = e + 1 == len ? len : e + 2;
        return 1;
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
        if (dim == 0 && codec_csv_split_row(body, len, pos, &end, &next)) {
            rs->rows[row - 1].len = (uint32_t)(end - pos);
            pos = next;
            continue;
        }
        rv = codec_csv_row(&in, pos, row, feat, &end, &next);
        if (rv < 0)
            return rv;
        rs->rows[row - 1].len = (uint32_t)(end - pos);
        pos = next;
    }
    return 0;
}

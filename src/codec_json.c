/*
 * codec_json.c - application/jsonlines and application/json request bodies
 * into rows and features.
 *
 * Memory: a jansson tree takes up to ~80 times its text ({"instances":[{},
 * {},...]} of 4.7 MB made 369 MB), so no body is ever loaded whole. A
 * small scanner (the frame) walks the top level of an application/json
 * body by itself and hands jansson one value at a time (an instance, a
 * top-level key, another key's value), freeing each tree before the next:
 * the peak is one element's tree, not the body's. A row that is a plain
 * array of numbers (the common dense row) is read straight from its text,
 * with no tree at all. Before jansson reads a value, the tree it would
 * build is estimated from the text (codec_json_weigh) and a value over
 * what one row may take is refused, so a single huge element is bounded
 * too. The row count is checked as each row starts: max_rows stops the
 * scan at once.
 *
 * Errors stay jansson's own, at the same line and column as if the whole
 * body had been parsed: a value's errors come from jansson on that value,
 * moved to its place in the body; an error in the frame (a missing ',',
 * trailing bytes) is given to jansson with a few bytes of context that put
 * its parser in the same state (codec_json_frame_error).
 */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"

/* Deepest nesting the slice scanner follows. */
#define CODEC_JSON_MAX_DEPTH 64

#define CODEC_JSON_LOAD_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

/*
 * The tree jansson builds for a value, estimated from its text: measured
 * with jansson 2.14 (allocated bytes, plus ~16 a block for the allocator),
 * an empty object takes 213 bytes, an empty array 117, a number in an
 * array 32, an object member 110, a string 2.6 times its length at the
 * peak (the raw text and the decoded copy). The weights are above each.
 */
#define CODEC_JSON_W_CONTAINER 256u /* per '{' or '[' */
#define CODEC_JSON_W_SEPARATOR 96u  /* per ',' or ':' (one more value or member) */
#define CODEC_JSON_W_VALUE 64u      /* the value itself */
#define CODEC_JSON_W_BYTE 3u        /* per byte of text */

/* The tree one value may take: for a model of dim features, 1 MiB plus
 * 384 bytes a feature (a full sparse row of dim keys and values weighs
 * ~230 a feature); with no features to parse (rows forwarded as bytes:
 * an image in base64 is one long string), 20 MiB, so that a row of a
 * 6 MiB body that is one string fits. */
#define CODEC_JSON_TREE_FLOOR ((uint64_t)1 << 20)
#define CODEC_JSON_TREE_PER_FEATURE 384u
#define CODEC_JSON_TREE_ANY ((uint64_t)20 << 20)

/* Keys of the top-level object checked for repeats (jansson rejects a
 * repeated key; the frame does it for the top level without a tree). */
#define CODEC_JSON_MAX_KEYS 1024

/* A top-level scalar is never a request; one longer than this is refused
 * as such without being read. */
#define CODEC_JSON_SCALAR_MAX 65536

struct codec_json_ctx {
    uint32_t dim;
    unsigned char *seen; /* dim flags for sparse keys, allocated on first use */
    struct ig_codec_error *err;
    int ints_as_real; /* the text last loaded had to be read with integers as reals */
    const char *text; /* application/json: where jansson's line 1 column 0 is */
    uint64_t tree_max; /* the tree one value may take (CODEC_JSON_TREE_*) */
};

/*
 * json_loadb, but an integer beyond int64 (123456789012345678901234567890
 * is a fine feature value) does not fail the text: jansson refuses it
 * unless told to read every integer as a real, so the text is read again
 * that way. Only such texts pay the second parse.
 */
static json_t *codec_json_load(struct codec_json_ctx *c, const char *b, size_t len,
                               size_t flags, json_error_t *jerr)
{
    json_t *v = json_loadb(b, len, flags, jerr);

    c->ints_as_real = 0;
    if (v == NULL && json_error_code(jerr) == json_error_numeric_overflow) {
        v = json_loadb(b, len, flags | JSON_DECODE_INT_AS_REAL, jerr);
        c->ints_as_real = v != NULL;
    }
    return v;
}

/* An integer: a JSON integer or, when the text was read with integers as
 * reals, a real with an integral value in int64 range. */
static int codec_json_int(const struct codec_json_ctx *c, const json_t *v, json_int_t *out)
{
    double r;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (!c->ints_as_real || !json_is_real(v))
        return 0;
    r = json_real_value(v);
    if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0) || r != floor(r))
        return 0;
    *out = (json_int_t)r;
    return 1;
}

static int codec_json_fail(struct codec_json_ctx *c, uint32_t row, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int codec_json_fail(struct codec_json_ctx *c, uint32_t row, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    ig_codec_error_set(c->err, row, "Row %u: %s", row, what);
    return IG_ERR_INVALID;
}

/* <arr> holds exactly dim numbers: copy them to <feat>. */
static int codec_json_dense(struct codec_json_ctx *c, uint32_t row, const json_t *arr,
                            double *feat)
{
    size_t n = json_array_size(arr);

    if (n != c->dim)
        return codec_json_fail(c, row, "expected %u features, found %zu.", c->dim, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);

        if (!json_is_number(v))
            return codec_json_fail(c, row, "feature %zu is not a number.", i + 1);
        feat[i] = json_number_value(v);
    }
    return 0;
}

/* "shape", when given, must be [dim]. */
static int codec_json_shape(struct codec_json_ctx *c, uint32_t row, const json_t *shape)
{
    const json_t *d = json_array_get(shape, 0);
    json_int_t dv;

    if (!json_is_array(shape) || json_array_size(shape) != 1 || !codec_json_int(c, d, &dv))
        return codec_json_fail(c, row, "'shape' must be an array of one integer.");
    if (dv != (json_int_t)c->dim)
        return codec_json_fail(c, row,
                               "expected %u features, shape is [%" JSON_INTEGER_FORMAT "].", c->dim,
                               dv);
    return 0;
}

static int codec_json_sparse(struct codec_json_ctx *c, uint32_t row, const json_t *keys,
                             const json_t *values, double *feat)
{
    size_t nk, nv, i;
    int rv = 0;

    if (!json_is_array(keys))
        return codec_json_fail(c, row, "'keys' must be an array of integers.");
    nk = json_array_size(keys);
    nv = json_array_size(values);
    if (nk != nv)
        return codec_json_fail(c, row, "'keys' has %zu entries but 'values' has %zu.", nk, nv);
    if (c->seen == NULL) {
        c->seen = ig_try_malloc(c->dim);
        if (c->seen == NULL) {
            ig_codec_error_set(c->err, 0, "Out of memory decoding the request.");
            return IG_ERR_NOMEM;
        }
        memset(c->seen, 0, c->dim);
    }
    for (i = 0; i < nk; i++) {
        const json_t *k = json_array_get(keys, i), *v = json_array_get(values, i);
        json_int_t kv;

        if (!codec_json_int(c, k, &kv)) {
            rv = codec_json_fail(c, row, "'keys' must be an array of integers.");
            break;
        }
        if (kv < 0 || kv >= (json_int_t)c->dim) {
            rv = codec_json_fail(c, row,
                                 "key %" JSON_INTEGER_FORMAT " is out of range for %u features.",
                                 kv, c->dim);
            break;
        }
        if (c->seen[kv]) {
            rv = codec_json_fail(c, row, "key %" JSON_INTEGER_FORMAT " appears twice.", kv);
            break;
        }
        if (!json_is_number(v)) {
            rv = codec_json_fail(c, row, "value %zu is not a number.", i + 1);
            break;
        }
        c->seen[kv] = 1;
        feat[kv] = json_number_value(v);
    }
    /* Reset only what this row marked: O(nnz), not O(dim). */
    while (i-- > 0) {
        json_int_t kv;

        if (codec_json_int(c, json_array_get(keys, i), &kv)) /* always, for keys marked */
            c->seen[kv] = 0;
    }
    return rv;
}

/* The value of "features": an array, or an object with "values" (dense)
 * or "keys", "shape" and "values" (sparse). */
static int codec_json_features(struct codec_json_ctx *c, uint32_t row, const json_t *f,
                               double *feat)
{
    const json_t *keys, *shape, *values;
    int rv;

    if (json_is_array(f))
        return codec_json_dense(c, row, f, feat);
    if (!json_is_object(f))
        return codec_json_fail(c, row, "'features' must be an array of numbers.");
    values = json_object_get(f, "values");
    keys = json_object_get(f, "keys");
    shape = json_object_get(f, "shape");
    if (!json_is_array(values))
        return codec_json_fail(c, row, "'values' must be an array of numbers.");
    if (keys != NULL && shape == NULL)
        return codec_json_fail(c, row, "sparse 'features' needs a 'shape'.");
    if (shape != NULL) {
        rv = codec_json_shape(c, row, shape);
        if (rv < 0)
            return rv;
    }
    if (keys != NULL)
        return codec_json_sparse(c, row, keys, values, feat);
    return codec_json_dense(c, row, values, feat);
}

static const char codec_json_form_msg[] =
    "expected an array of numbers or an object with 'features'.";

/* One row in any of its forms: [..], {"features":..}, {"data":{"features":..}}. */
static int codec_json_row(struct codec_json_ctx *c, uint32_t row, const json_t *v, double *feat)
{
    const json_t *f, *d;

    if (c->dim == 0)
        return 0;
    if (json_is_array(v))
        return codec_json_dense(c, row, v, feat);
    if (!json_is_object(v))
        return codec_json_fail(c, row, "%s", codec_json_form_msg);
    f = json_object_get(v, "features");
    if (f == NULL) {
        d = json_object_get(v, "data");
        if (d == NULL)
            return codec_json_fail(c, row, "%s", codec_json_form_msg);
        f = json_object_get(d, "features"); /* NULL when d is not an object */
        if (f == NULL)
            return codec_json_fail(c, row, "'data' must be an object with 'features'.");
    }
    return codec_json_features(c, row, f, feat);
}

static int codec_json_is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int codec_json_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/*
 * One JSON number at b[pos] (pos > 0, before <len>), by its grammar,
 * stricter than ig_parse_double's: no '+', no leading zeros, digits on
 * both sides of the dot. Returns where it ends (its value in *out, -0 as
 * an integer read as 0 as jansson does), or 0: not such a number, or one
 * jansson refuses (1e999, "real number overflow"). Positions are returned,
 * not written through a pointer, so that the caller's position stays in a
 * register.
 */
static __attribute__((noinline)) size_t codec_json_number_slow(const char *b, size_t len,
                                                               size_t pos, double *out)
{
    size_t ns = pos;
    int integer = 1;
    double d;

    if (pos < len && b[pos] == '-')
        pos++;
    if (pos >= len)
        return 0;
    if (b[pos] == '0') {
        pos++;
    } else if (b[pos] >= '1' && b[pos] <= '9') {
        while (pos < len && codec_json_is_digit(b[pos]))
            pos++;
    } else {
        return 0;
    }
    if (pos < len && b[pos] == '.') {
        integer = 0;
        if (++pos >= len || !codec_json_is_digit(b[pos]))
            return 0;
        while (pos < len && codec_json_is_digit(b[pos]))
            pos++;
    }
    if (pos < len && (b[pos] == 'e' || b[pos] == 'E')) {
        integer = 0;
        if (++pos < len && (b[pos] == '+' || b[pos] == '-'))
            pos++;
        if (pos >= len || !codec_json_is_digit(b[pos]))
            return 0;
        while (pos < len && codec_json_is_digit(b[pos]))
            pos++;
    }
    if (ig_parse_double(b + ns, pos - ns, &d) < 0 || !isfinite(d))
        return 0;
    if (integer && d == 0)
        d = 0.0; /* jansson reads -0 as the integer 0 */
    *out = d;
    return pos;
}

/*
 * The short numbers of a dense row (-12.5, 0.123456, 3e-05, 42) in one
 * pass, eight bytes at a time, for a little-endian machine whose double
 * arithmetic is plain IEEE (FLT_EVAL_METHOD 0): digits and dot found and
 * valued together, the value as ig_parse_double's short path computes it
 * (mantissa < 10^8 < 2^53 over or times an exact power of ten: one
 * correctly rounded operation, so strtod's result). The digits and the
 * dot are read in one word from <p> on (after a sign), within 17 bytes,
 * all before <lim>: the text ends at <len> <= <lim>, and a byte at <len>
 * before <lim> ends a number (a JSON line's '\r' or '\n'), so no run of
 * digits and no dot is taken from past the text (the exponent is read up
 * to <len>).
 * So a JSON line's last numbers are read here too.
 * Returns where the number ends, or 0 for anything else (8 digits and
 * more, a run of digits and dot past 8 bytes, a leading zero, an exponent
 * of 4 digits or out of +-22), without a verdict: codec_json_number_slow
 * reads it as before.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && FLT_EVAL_METHOD == 0
#define CODEC_JSON_FAST_NUMBERS 1

static const double codec_json_p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
/* The value of the digits at the top of <x> (zeros before them), as
 * simdjson values eight. */
static inline uint64_t codec_json_value8(uint64_t x)
{
    x = x * 10 + (x >> 8);
    return (((x & 0x000000FF000000FFu) * 0x000F424000000064u) +
            (((x >> 16) & 0x000000FF000000FFu) * 0x0000271000000001u)) >>
           32;
}

/* The rest of a number whose digits are worth <m> with <frac> of them
 * after a dot (none: <integer>), from <p> on: an exponent or nothing. */
static inline __attribute__((always_inline)) size_t
codec_json_number_end(const char *b, size_t len, size_t p, uint64_t m, unsigned frac, int neg,
                      int integer, double *out)
{
    int eneg = 0, ev = 0, e10 = -(int)frac;
    unsigned n = 0;
    double d;

    if ((b[p] | 0x20) != 'e') {
        /* no exponent: 10^frac divides, and only the integer -0 is 0 */
        d = integer ? (double)m : (double)m / codec_json_p10[frac];
        if (neg)
            d = integer && m == 0 ? 0.0 : -d;
        *out = d;
        return p;
    }
    if (++p < len && (b[p] == '+' || b[p] == '-'))
        eneg = b[p++] == '-';
    for (; p < len && n < 4 && codec_json_is_digit(b[p]); p++, n++)
        ev = ev * 10 + (b[p] - '0');
    if (n - 1 >= 3)
        return 0; /* no digit, or 4 of them */
    e10 += eneg ? -ev : ev;
    if (e10 < -22 || e10 > 22)
        return 0;
    d = e10 < 0 ? (double)m / codec_json_p10[-e10] : (double)m * codec_json_p10[e10];
    *out = neg ? -d : d; /* -0.0 keeps its sign */
    return p;
}

/*
 * The number at <p>, its digits and dot read in one 8-byte word (as
 * parse_run8 in buf.c). With x = byte ^ '0', a byte is a digit when
 * x < 10: neither x nor x + 0x76 has bit 7 set. A carry out of x + 0x76
 * comes only from a byte whose x has bit 7 set (no digit, nor the dot:
 * '.' ^ '0' is 0x1e), so it moves only into bytes past the first other
 * byte (past the dot, the next one), whose flags are not used. The first
 * byte that is no digit is found at once and, when it is the dot, the
 * next; the dot is squeezed out (the bytes above it move down one), the
 * digits shifted to the top (zeros before them, the bytes past the run
 * shifted out) and valued together as simdjson values eight digits.
 */
static inline __attribute__((always_inline)) size_t
codec_json_number_fast(const char *b, size_t len, size_t lim, size_t p, double *out)
{
    uint64_t w, x, nd, low;
    unsigned k, pos;
    int neg;

    if (p + 17 > lim)
        return 0;
    neg = b[p] == '-';
    p += (size_t)neg;
    memcpy(&w, b + p, sizeof(w));
    x = w ^ 0x3030303030303030u;
    nd = ((x + 0x7676767676767676u) | x) & 0x8080808080808080u;
    if (nd == 0)
        return 0; /* 8 digits or more */
    k = (unsigned)__builtin_ctzll(nd) / 8;
    /* a digit first, and no leading zero ("0" then a digit) */
    if (k == 0 || ((uint8_t)w == '0' && k > 1))
        return 0;
    if ((uint8_t)(w >> (8 * k)) != '.')
        return codec_json_number_end(b, len, p + k, codec_json_value8(x << (8 * (8 - k))), 0,
                                     neg, 1, out);
    nd &= nd - 1;
    pos = nd ? (unsigned)__builtin_ctzll(nd) / 8 : 8;
    /* a digit after the dot; a run that fills the word must end there
     * (the byte after it is in the text, or ends it) */
    if (pos == k + 1 || (pos == 8 && (codec_json_is_digit(b[p + 8]) || b[p + 8] == '.')))
        return 0;
    low = (1ull << (8 * k)) - 1;
    x = (x & low) | ((x >> 8) & ~low); /* the dot squeezed out */
    return codec_json_number_end(b, len, p + pos, codec_json_value8(x << (8 * (9 - pos))),
                                 pos - 1 - k, neg, 0, out);
}

/* 10^i and -10^i: a quotient by the second is the negated quotient by
 * the first (-0.0 for 0), with no branch on the sign. */
static const double codec_json_p10s[2][8] = {{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7},
                                             {-1e0, -1e1, -1e2, -1e3, -1e4, -1e5, -1e6, -1e7}};

/*
 * The exponent of a number of a dense line at <p> (its 'e' or 'E'), the
 * digits before it worth <m> with <frac> after a dot: its value, as
 * codec_json_number_end has it, in *out. At most three digits are read
 * (the fourth refuses it), all within the 17 bytes the caller checked.
 * Returns where it ends (its value in *out), or NULL.
 */
static __attribute__((noinline)) const char *codec_json_line_exp(const char *p, uint64_t m,
                                                                  unsigned frac, int neg,
                                                                  double *out)
{
    int eneg = 0, ev = 0, e10;
    unsigned n = 0;
    double d;

    p++;
    if (*p == '+' || *p == '-')
        eneg = *p++ == '-';
    for (; n < 4 && codec_json_is_digit(*p); p++, n++)
        ev = ev * 10 + (*p - '0');
    e10 = (eneg ? -ev : ev) - (int)frac;
    if (n - 1 >= 3 || e10 < -22 || e10 > 22)
        return NULL; /* no digit, 4 of them, or out of range */
    d = e10 < 0 ? (double)m / codec_json_p10[-e10] : (double)m * codec_json_p10[e10];
    *out = neg ? -d : d; /* -0.0 keeps its sign */
    return p;
}

/*
 * A JSON line's common row, exactly <dim> short numbers and nothing else
 * ("[0.5,-12,3e-05]": no space, each number as codec_json_number_fast
 * takes it), read in one tight pass into <feat>: the same numbers and
 * values as codec_json_number_fast, the same checks (a digit first, no
 * leading zero, a digit after the dot, an exponent of at most 3 digits
 * within +-22), with fewer branches and no bounds test but one a number:
 * each number starts 17 bytes or more before <lim> (the body's end), and
 * it and the byte after it are read within those 17. A number must end
 * at ',' or, the dim-th, at ']'.
 * Returns the offset just past the ']', or 0 for anything else (a
 * space, a long number, the wrong count, the body's last bytes), which
 * the caller then reads as before; <feat> may have been written.
 */
static __attribute__((noinline)) size_t codec_json_line_dense(const char *b, size_t lim,
                                                              size_t pos, uint32_t dim,
                                                              double *feat)
{
    const char *p = b + pos + 1, *stop;
    double *f = feat, *fend = feat + dim;

    if (lim < pos + 18)
        return 0;
    stop = b + lim - 17;
    for (;;) {
        uint64_t w, x, nd, m;
        unsigned k8, e8, frac, neg;
        const char *q;
        double d;
        char ch;

        if (p > stop)
            return 0;
        neg = *p == '-';
        p += neg;
        memcpy(&w, p, sizeof(w));
        x = w ^ 0x3030303030303030u;
        nd = ((x + 0x7676767676767676u) | x) & 0x8080808080808080u;
        if (nd == 0)
            return 0; /* 8 digits or more */
        k8 = (unsigned)__builtin_ctzll(nd) - 7; /* 8 times the digits before */
        /* a digit first, and no leading zero ("0" then a digit) */
        if ((k8 == 0) | (((uint8_t)w == '0') & (k8 > 8)))
            return 0;
        if ((uint8_t)(w >> k8) == '.') {
            uint64_t low = (1ull << k8) - 1;

            /* the next byte that is no digit, at e8 / 8 (64: none in the
             * word, and the byte after it must end the number) */
            nd &= nd - 1;
            e8 = (unsigned)__builtin_ctzll((nd >> 8) | (1ull << 63)) + 1;
            if (e8 == k8 + 8)
                return 0; /* no digit after the dot */
            x = (x & low) | ((x >> 8) & ~low); /* the dot squeezed out */
            m = codec_json_value8(x << (72 - e8));
            frac = (e8 - k8) / 8 - 1;
            d = (double)m / codec_json_p10s[neg][frac];
        } else {
            e8 = k8;
            m = codec_json_value8(x << (64 - k8));
            frac = 0;
            /* an integer: -0 is 0 */
            d = (double)(((int64_t)m ^ -(int64_t)neg) + (int64_t)neg);
        }
        q = p + e8 / 8;
        ch = *q;
        if ((ch | 0x20) == 'e') {
            double de; /* its own: d stays in a register */

            q = codec_json_line_exp(q, m, frac, (int)neg, &de);
            d = de;
            if (q == NULL)
                return 0;
            ch = *q;
        }
        *f++ = d;
        p = q + 1;
        if (ch == ',' && f < fend)
            continue;
        return ch == ']' && f == fend ? (size_t)(p - b) : 0;
    }
}
#endif

/*
 * The common row, an array of plain numbers ([1, 2.5e3, -0.25]), read
 * straight from the text [b + pos, b + len) with no tree: ig_parse_double
 * (or codec_json_number_fast, equal to it) gives what jansson's strtod
 * gives. <pos> is at the '['. Any other text, or a number jansson would
 * refuse (1e999), is left to jansson (0), which then says what is wrong
 * exactly as before. Returns 1 (read; *end just past the ']', and with
 * c->dim > 0 the numbers are in <feat>), 0 (not such a row) or
 * IG_ERR_INVALID (the wrong number of features).
 */
static int codec_json_fast(struct codec_json_ctx *c, const char *b, size_t len, size_t lim,
                           size_t pos, uint32_t row, double *feat, size_t *end)
{
    size_t n = 0, cap = feat != NULL ? c->dim : 0;

    pos++;
    while (pos < len && codec_json_is_ws(b[pos]))
        pos++;
    if (pos < len && b[pos] == ']') {
        pos++;
        goto done;
    }
    for (;;) {
        double d = 0.0;
        size_t e = 0;

#ifdef CODEC_JSON_FAST_NUMBERS
        /* the common run: a number and a bare ',', while there is room
         * for the number; the last one, or any other, goes on below (one
         * that failed here is tried once more: rare) */
        while (n < cap) {
            e = codec_json_number_fast(b, len, lim, pos, &d);
            if (e == 0 || e >= len || b[e] != ',')
                break;
            feat[n++] = d;
            pos = e + 1;
        }
        if (e == 0)
            e = codec_json_number_fast(b, len, lim, pos, &d);
        if (e == 0 && pos < len && codec_json_is_ws(b[pos])) {
            /* after a bare ',' taken below: spaces before the number */
            while (pos < len && codec_json_is_ws(b[pos]))
                pos++;
            e = codec_json_number_fast(b, len, lim, pos, &d);
        }
        if (e != 0) {
            if (n < cap)
                feat[n] = d;
            n++;
            pos = e;
            if (pos < len && b[pos] == ',') {
                pos++; /* spaces after it are skipped above */
                continue;
            }
            goto separator;
        }
#endif
        {
            double t; /* its own: d stays in a register */

            e = codec_json_number_slow(b, len, pos, &t);
            d = t;
        }
        if (e == 0)
            return 0;
        pos = e;
        if (n < cap)
            feat[n] = d;
        n++;
    separator:
        while (pos < len && codec_json_is_ws(b[pos]))
            pos++;
        if (pos >= len)
            return 0;
        if (b[pos] == ']') {
            pos++;
            break;
        }
        if (b[pos] != ',')
            return 0;
        pos++;
        while (pos < len && codec_json_is_ws(b[pos]))
            pos++;
    }
done:
    *end = pos;
    if (c->dim > 0 && n != c->dim)
        return codec_json_fail(c, row, "expected %u features, found %zu.", c->dim, n);
    return 1;
}

/* The tree jansson would build for the text [b, b + n): weights of its
 * containers, separators and bytes (strings skipped, so a ',' in a string
 * weighs as a byte). An estimate, on the high side. */
static uint64_t codec_json_weigh(const char *b, size_t n)
{
    uint64_t w = CODEC_JSON_W_VALUE + (uint64_t)n * CODEC_JSON_W_BYTE;

    for (size_t i = 0; i < n; i++) {
        switch (b[i]) {
        case '"':
            while (++i < n && b[i] != '"')
                if (b[i] == '\\')
                    i++;
            break;
        case '{':
        case '[':
            w += CODEC_JSON_W_CONTAINER;
            break;
        case ',':
        case ':':
            w += CODEC_JSON_W_SEPARATOR;
            break;
        default:
            break;
        }
    }
    return w;
}

/* A value of <w> bytes as a tree (codec_json_weigh) may be read: 0, or
 * IG_ERR_TOOBIG naming row <row> (0: a value of the body that is no row). */
static int codec_json_check_weight(struct codec_json_ctx *c, uint32_t row, uint64_t w)
{
    if (w <= c->tree_max)
        return 0;
    if (row > 0)
        ig_codec_error_set(c->err, row,
                           "Row %u: this row's JSON is too large or too nested to decode (about "
                           "%llu bytes as a tree, over the %llu bytes one row may take); send "
                           "its features as an array of numbers.",
                           row, (unsigned long long)w, (unsigned long long)c->tree_max);
    else
        ig_codec_error_set(c->err, 0,
                           "Request body has a value too large or too nested to decode (about "
                           "%llu bytes as a tree, over the %llu bytes one value may take).",
                           (unsigned long long)w, (unsigned long long)c->tree_max);
    return IG_ERR_TOOBIG;
}

static uint64_t codec_json_tree_max(uint32_t dim)
{
    return dim == 0 ? CODEC_JSON_TREE_ANY
                    : CODEC_JSON_TREE_FLOOR + (uint64_t)dim * CODEC_JSON_TREE_PER_FEATURE;
}

int ig_codec_decode_jsonl(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                          struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct codec_json_ctx c = {.dim = dim, .err = err, .tree_max = codec_json_tree_max(dim)};
    size_t pos = 0;
    int rv = 0;

    while (pos < len) {
        uint32_t row = rs->nrows + 1;
        const char *nl;
        size_t end, next, s, fend;
        double *feat = NULL;
        json_error_t jerr;
        json_t *v;

        rv = ig_rowset_push(rs, max_rows, (uint32_t)pos, &feat, err);
        if (rv < 0)
            goto out;
#ifdef CODEC_JSON_FAST_NUMBERS
        /* The common line, [n,...,n] then spaces or none, in one pass:
         * no search for its end first (nor for a NUL: it has none). */
        if (feat != NULL && body[pos] == '[') {
            fend = codec_json_line_dense(body, len, pos, dim, feat);
            if (fend != 0) {
                while (fend < len && (body[fend] == ' ' || body[fend] == '\t' ||
                                      body[fend] == '\r'))
                    fend++;
                if (fend == len || body[fend] == '\n') {
                    end = fend;
                    if (body[end - 1] == '\r')
                        end--;
                    rs->rows[row - 1].len = (uint32_t)(end - pos);
                    pos = fend < len ? fend + 1 : len;
                    continue;
                }
            }
        }
#endif
        nl = memchr(body + pos, '\n', len - pos);
        end = nl ? (size_t)(nl - body) : len;
        next = nl ? end + 1 : len;
        if (end > pos && body[end - 1] == '\r')
            end--;
        rs->rows[row - 1].len = (uint32_t)(end - pos);
        for (s = pos; s < end && codec_json_is_ws(body[s]); s++)
            ;
        if (s == end) {
            ig_codec_error_set(err, row, "Row %u: empty row.", row);
            rv = IG_ERR_INVALID;
            goto out;
        }
        if (memchr(body + pos, '\0', end - pos) != NULL) {
            ig_codec_error_set(err, row, "Row %u: NUL byte in the row.", row);
            rv = IG_ERR_INVALID;
            goto out;
        }
        /* A dense row with nothing after it but spaces: no tree. */
        if (body[s] == '[') {
            fend = s;
            rv = codec_json_fast(&c, body, end, len, s, row, feat, &fend);
            while (rv != 0 && fend < end && codec_json_is_ws(body[fend]))
                fend++;
            /* what follows the array decides first: jansson's error */
            if (rv < 0 && fend == end)
                goto out;
            if (rv == 1 && fend == end) {
                rv = 0;
                pos = next;
                continue;
            }
        }
        rv = codec_json_check_weight(&c, row, codec_json_weigh(body + pos, end - pos));
        if (rv < 0)
            goto out;
        v = codec_json_load(&c, body + pos, end - pos, CODEC_JSON_LOAD_FLAGS, &jerr);
        if (v == NULL) {
            ig_codec_error_set(err, row, "Row %u: invalid JSON: %s at column %d.", row, jerr.text,
                               jerr.column);
            rv = IG_ERR_INVALID;
            goto out;
        }
        rv = codec_json_row(&c, row, v, feat);
        json_decref(v);
        if (rv < 0)
            goto out;
        pos = next;
    }

out:
    ig_free(&c.seen);
    return rv;
}

/*
 * The slice scanner. It finds where a value ends without reading it (for
 * the depth cap and its weight); jansson then reads it. Written for any
 * input: it never reads at or past len and fails (-1) rather than guess.
 */
struct codec_json_scan {
    const char *b;
    size_t len;
    size_t pos;
};

static void codec_json_scan_ws(struct codec_json_scan *s)
{
    while (s->pos < s->len && codec_json_is_ws(s->b[s->pos]))
        s->pos++;
}

/* At '"': move past the closing quote. */
static int codec_json_scan_string(struct codec_json_scan *s)
{
    s->pos++;
    while (s->pos < s->len) {
        char ch = s->b[s->pos++];

        if (ch == '\\') {
            if (s->pos == s->len)
                return -1;
            s->pos++;
        } else if (ch == '"') {
            return 0;
        }
    }
    return -1;
}

/* Move past one value. <depth> is the nesting of the value's container.
 * Returns 0, -1 (malformed: s->pos is where it gave up, len for an
 * unterminated value), -2 (nested deeper than CODEC_JSON_MAX_DEPTH). */
static int codec_json_scan_value(struct codec_json_scan *s, int depth)
{
    size_t start = s->pos;

    if (s->pos >= s->len)
        return -1;
    switch (s->b[s->pos]) {
    case '"':
        return codec_json_scan_string(s);
    case '{':
    case '[': {
        int d = 0;

        while (s->pos < s->len) {
            char ch = s->b[s->pos];

            if (ch == '"') {
                if (codec_json_scan_string(s) < 0)
                    return -1;
                continue;
            }
            s->pos++;
            if (ch == '{' || ch == '[') {
                if (depth + ++d > CODEC_JSON_MAX_DEPTH)
                    return -2;
            } else if (ch == '}' || ch == ']') {
                if (--d == 0)
                    return 0;
            }
        }
        return -1;
    }
    default:
        while (s->pos < s->len && !codec_json_is_ws(s->b[s->pos]) && s->b[s->pos] != ',' &&
               s->b[s->pos] != ']' && s->b[s->pos] != '}')
            s->pos++;
        return s->pos > start ? 0 : -1;
    }
}

static int codec_json_scan_error(struct ig_codec_error *err, int rv)
{
    if (rv == -2)
        ig_codec_error_set(err, 0, "Request body nests deeper than %d levels.",
                           CODEC_JSON_MAX_DEPTH);
    else
        ig_codec_error_set(err, 0, "Request body could not be split into rows.");
    return IG_ERR_INVALID;
}

/* jansson's line and column after reading the text up to <p>: lines count
 * LFs from 1, columns count characters (UTF-8 lead bytes) from 0. */
static void codec_json_linecol(const struct codec_json_ctx *c, const char *p, int *line,
                               int *col)
{
    int l = 1, k = 0;

    for (const char *q = c->text; q < p; q++) {
        if (*q == '\n') {
            l++;
            k = 0;
        } else if (((unsigned char)*q & 0xc0) != 0x80) {
            k++;
        }
    }
    *line = l;
    *col = k;
}

/* jansson failed on text that starts at <p> in the body, preceded by
 * <ncontext> bytes of ASCII context that are not the body's: report its
 * error at its place in the body. */
static int codec_json_syntax(struct codec_json_ctx *c, const char *p, size_t ncontext,
                             const json_error_t *jerr)
{
    int line, col;

    codec_json_linecol(c, p, &line, &col);
    if (jerr->line <= 1) {
        col += jerr->column - (int)ncontext;
    } else {
        line += jerr->line - 1;
        col = jerr->column;
    }
    ig_codec_error_set(c->err, 0, "Request body is not valid JSON: %s at line %d column %d.",
                       jerr->text, line, col);
    return IG_ERR_INVALID;
}

/* What json_load_callback reads: <ctx>, then [b, b + len), in place. */
struct codec_json_feed {
    const char *ctx;
    size_t nctx;
    const char *b;
    size_t len;
    size_t done; /* of nctx + len */
};

static size_t codec_json_feed_read(void *buf, size_t buflen, void *data)
{
    struct codec_json_feed *f = data;
    size_t n = 0;

    while (n < buflen && f->done < f->nctx + f->len) {
        size_t k;

        if (f->done < f->nctx) {
            k = f->nctx - f->done;
            if (k > buflen - n)
                k = buflen - n;
            memcpy((char *)buf + n, f->ctx + f->done, k);
        } else {
            k = f->nctx + f->len - f->done;
            if (k > buflen - n)
                k = buflen - n;
            memcpy((char *)buf + n, f->b + (f->done - f->nctx), k);
        }
        n += k;
        f->done += k;
    }
    return n;
}

/*
 * The frame found, at body offset <q>, a token that does not belong where
 * it is. Whole-body jansson would have failed there: give jansson <ctx>
 * (a few bytes that put its parser in the same state: "[[]" after an
 * array element, "{" before a first key...) and the body from <q> on, so
 * that its message, and its position moved back to the body, are what
 * they were. jansson stops at that token; what it is given is still
 * bounded (the token, or 64 KiB) in case it would not.
 */
static int codec_json_frame_error(struct codec_json_ctx *c, const char *b, size_t len, size_t q,
                                  const char *ctx)
{
    struct codec_json_feed f = {.ctx = ctx, .nctx = strlen(ctx), .b = b + q, .len = len - q};
    json_error_t jerr;
    json_t *v;

    if (q < len && b[q] == '"') {
        struct codec_json_scan t = {.b = b, .len = len, .pos = q};

        if (codec_json_scan_string(&t) == 0 && t.pos + 1 - q < f.len)
            f.len = t.pos + 1 - q;
    } else if (f.len > 65536) {
        f.len = 65536;
    }
    v = json_load_callback(codec_json_feed_read, &f, CODEC_JSON_LOAD_FLAGS, &jerr);
    if (v == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        f.done = 0;
        v = json_load_callback(codec_json_feed_read, &f,
                               CODEC_JSON_LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, &jerr);
    }
    if (v != NULL) {
        json_decref(v);
        return codec_json_scan_error(c->err, -1);
    }
    return codec_json_syntax(c, b + q, f.nctx, &jerr);
}

/*
 * Read the value at s->pos (nested <depth> levels deep, for the depth
 * cap) and leave s->pos just past it. <row> > 0: it is that row, decoded
 * into <feat>; 0: it is only checked (another key's value). jansson reads
 * it alone (its tree freed at once), from its start to the body's end
 * with the EOF check off: it stops where the value ends, as it would have
 * in the whole body, so the errors are the same.
 */
static int codec_json_value(struct codec_json_ctx *c, struct codec_json_scan *s, int depth,
                            uint32_t row, double *feat)
{
    struct codec_json_scan t = *s;
    size_t start = s->pos, end;
    json_error_t jerr;
    json_t *v;
    int rv;

    if (row > 0 && start < s->len && s->b[start] == '[') {
        rv = codec_json_fast(c, s->b, s->len, s->len, start, row, feat, &end);
        if (rv < 0)
            return rv;
        if (rv == 1) {
            s->pos = end;
            return 0;
        }
    }
    rv = codec_json_scan_value(&t, depth);
    if (rv == -2)
        return codec_json_scan_error(c->err, rv);
    end = rv == 0 ? t.pos : s->len;
    rv = codec_json_check_weight(c, row, codec_json_weigh(s->b + start, end - start));
    if (rv < 0)
        return rv;
    v = codec_json_load(c, s->b + start, s->len - start,
                        CODEC_JSON_LOAD_FLAGS | JSON_DISABLE_EOF_CHECK, &jerr);
    if (v != NULL && jerr.text[0] != '\0') {
        /* "null" then a byte that is no UTF-8: the value was whole when
         * the read failed, and jansson returns it with the error set */
        json_decref(v);
        v = NULL;
    }
    if (v == NULL)
        return codec_json_syntax(c, s->b + start, 0, &jerr);
    s->pos = start + (size_t)jerr.position;
    rv = row > 0 ? codec_json_row(c, row, v, feat) : 0;
    json_decref(v);
    return rv;
}

/* One more row starts at s->pos: count it (max_rows stops here, before
 * the row is read), read it, and record its slice. */
static int codec_json_take_row(struct codec_json_ctx *c, struct codec_json_scan *s, int depth,
                               struct ig_rowset *rs, uint32_t max_rows)
{
    size_t start = s->pos;
    double *feat = NULL;
    int rv;

    rv = ig_rowset_push(rs, max_rows, (uint32_t)start, &feat, c->err);
    if (rv < 0)
        return rv;
    rv = codec_json_value(c, s, depth, rs->nrows, feat);
    if (rv < 0)
        return rv;
    rs->rows[rs->nrows - 1].len = (uint32_t)(s->pos - start);
    return 0;
}

/* The array of rows at s->pos (its '['): each element is a row. */
static int codec_json_rows(struct codec_json_ctx *c, struct codec_json_scan *s, int depth,
                           struct ig_rowset *rs, uint32_t max_rows)
{
    int rv;

    s->pos++;
    codec_json_scan_ws(s);
    if (s->pos < s->len && s->b[s->pos] == ']') {
        s->pos++;
        return 0;
    }
    for (;;) {
        /* no element before the end: jansson says "']' expected" */
        if (s->pos >= s->len)
            return codec_json_frame_error(c, s->b, s->len, s->pos, "[[]");
        rv = codec_json_take_row(c, s, depth, rs, max_rows);
        if (rv < 0)
            return rv;
        codec_json_scan_ws(s);
        if (s->pos < s->len && s->b[s->pos] == ']') {
            s->pos++;
            return 0;
        }
        if (s->pos >= s->len || s->b[s->pos] != ',')
            return codec_json_frame_error(c, s->b, s->len, s->pos, "[[]");
        s->pos++;
        codec_json_scan_ws(s);
    }
}

/* FNV-1a: the top-level keys' fingerprints, to find a repeat. */
static uint64_t codec_json_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

struct codec_json_key {
    uint64_t hash;
    size_t off, len; /* the key's raw text, quotes included */
};

/* The decoded key whose raw text is [b + off, b + off + len) (jansson
 * read it once already: it is valid). NULL on OOM. */
static json_t *codec_json_key_load(const char *b, size_t off, size_t len, json_error_t *jerr)
{
    return json_loadb(b + off, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, jerr);
}

/*
 * The members of the top-level object at s->pos (its '{'). Each key is
 * read by jansson alone, checked against the keys before it, and its
 * value read alone: the rows of "instances" as they come, any other value
 * only checked. *instances: 0 none, 1 an array (its rows taken), -1 not
 * an array; *single: a "features" or "data" key.
 */
static int codec_json_object(struct codec_json_ctx *c, struct codec_json_scan *s,
                             struct ig_rowset *rs, uint32_t max_rows, int *instances,
                             int *single)
{
    struct codec_json_key *keys = NULL;
    size_t nkeys = 0;
    int rv = 0;

    *instances = 0;
    *single = 0;
    s->pos++;
    codec_json_scan_ws(s);
    if (s->pos < s->len && s->b[s->pos] == '}') {
        s->pos++;
        return 0;
    }
    for (;;) {
        size_t ks = s->pos, klen;
        json_error_t jerr;
        const char *k;
        uint64_t h;
        json_t *key;

        if (s->pos >= s->len || s->b[s->pos] != '"') {
            rv = codec_json_frame_error(c, s->b, s->len, s->pos, nkeys ? "{\"\":[]," : "{");
            goto out;
        }
        if (codec_json_scan_string(s) < 0) {
            rv = codec_json_frame_error(c, s->b, s->len, ks, nkeys ? "{\"\":[]," : "{");
            goto out;
        }
        klen = s->pos - ks;
        key = json_loadb(s->b + ks, klen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (key == NULL) {
            rv = codec_json_syntax(c, s->b + ks, 0, &jerr);
            goto out;
        }
        k = json_string_value(key);
        if (memchr(k, '\0', json_string_length(key)) != NULL) {
            json_decref(key);
            rv = codec_json_frame_error(c, s->b, s->len, ks, "{");
            goto out;
        }
        /* A repeated key: jansson's message, at the end of the key. */
        h = codec_json_hash(k, json_string_length(key));
        for (size_t i = 0; i < nkeys; i++) {
            json_t *other;
            int same;

            if (keys[i].hash != h)
                continue;
            other = codec_json_key_load(s->b, keys[i].off, keys[i].len, &jerr);
            same = other != NULL && json_equal(other, key);
            json_decref(other);
            if (same) {
                int line, col;

                json_decref(key);
                codec_json_linecol(c, s->b + s->pos, &line, &col);
                if (klen <= 20)
                    ig_codec_error_set(c->err, 0,
                                       "Request body is not valid JSON: duplicate object key "
                                       "near '%.*s' at line %d column %d.",
                                       (int)klen, s->b + ks, line, col);
                else
                    ig_codec_error_set(c->err, 0,
                                       "Request body is not valid JSON: duplicate object key "
                                       "at line %d column %d.",
                                       line, col);
                rv = IG_ERR_INVALID;
                goto out;
            }
        }
        if (nkeys == CODEC_JSON_MAX_KEYS) {
            json_decref(key);
            ig_codec_error_set(c->err, 0, "Request body has more than %d keys in its top-level "
                               "object.", CODEC_JSON_MAX_KEYS);
            rv = IG_ERR_INVALID;
            goto out;
        }
        if (nkeys % 16 == 0) {
            struct codec_json_key *more = ig_try_realloc(keys, (nkeys + 16) * sizeof(*keys));

            if (more == NULL) {
                json_decref(key);
                ig_codec_error_set(c->err, 0, "Out of memory decoding the request.");
                rv = IG_ERR_NOMEM;
                goto out;
            }
            keys = more;
        }
        keys[nkeys++] = (struct codec_json_key){.hash = h, .off = ks, .len = klen};

        codec_json_scan_ws(s);
        if (s->pos >= s->len || s->b[s->pos] != ':') {
            json_decref(key);
            rv = codec_json_frame_error(c, s->b, s->len, s->pos, "{\"\"");
            goto out;
        }
        s->pos++;
        codec_json_scan_ws(s);
        if (strcmp(k, "instances") == 0 && s->pos < s->len && s->b[s->pos] == '[') {
            *instances = 1;
            rv = codec_json_rows(c, s, 2, rs, max_rows);
        } else {
            if (strcmp(k, "instances") == 0)
                *instances = -1;
            else if (strcmp(k, "features") == 0 || strcmp(k, "data") == 0)
                *single = 1;
            rv = codec_json_value(c, s, 1, 0, NULL);
        }
        json_decref(key);
        if (rv < 0)
            goto out;
        codec_json_scan_ws(s);
        if (s->pos < s->len && s->b[s->pos] == '}') {
            s->pos++;
            break;
        }
        if (s->pos >= s->len || s->b[s->pos] != ',') {
            rv = codec_json_frame_error(c, s->b, s->len, s->pos, "{\"\":[]");
            goto out;
        }
        s->pos++;
        codec_json_scan_ws(s);
    }
    rv = 0;

out:
    ig_free(&keys);
    return rv;
}

static const char codec_json_shape_msg[] =
    "Expected an object with 'instances', an object with 'features', or an array.";

int ig_codec_decode_json_at(const char *body, size_t len, size_t from, uint32_t dim,
                            uint32_t max_rows, struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct codec_json_ctx c = {
        .dim = dim, .err = err, .text = body + from, .tree_max = codec_json_tree_max(dim)};
    struct codec_json_scan s = {.b = body, .len = len, .pos = from};
    int instances = 0, single = 0, rv;
    const char *nul;
    size_t start;

    nul = memchr(body + from, '\0', len - from);
    if (nul != NULL) {
        /* the offset in the body as sent, byte-order mark included */
        ig_codec_error_set(err, 0, "Request body contains a NUL byte at offset %zu.",
                           (size_t)(nul - body));
        return IG_ERR_INVALID;
    }
    codec_json_scan_ws(&s);
    start = s.pos;
    if (start == len || (body[start] != '[' && body[start] != '{')) {
        /* A scalar, or no JSON: never a request, but a syntax error is
         * still named as such. A long scalar is not read. */
        json_error_t jerr;
        json_t *v;

        if (len - start > CODEC_JSON_SCALAR_MAX && strchr("\"-0123456789tfn", body[start]))
            goto shape;
        v = codec_json_load(&c, body + start, len - start, CODEC_JSON_LOAD_FLAGS, &jerr);
        if (v == NULL)
            return codec_json_syntax(&c, body + start, 0, &jerr);
        json_decref(v);
        goto shape;
    }
    if (body[start] == '[') {
        size_t p = start + 1;

        while (p < len && codec_json_is_ws(body[p]))
            p++;
        if (p < len && (body[p] == '-' || codec_json_is_digit(body[p]))) {
            /* [1, 2, 3]: the whole array is the one row */
            rv = codec_json_take_row(&c, &s, 0, rs, max_rows);
        } else {
            rv = codec_json_rows(&c, &s, 1, rs, max_rows);
            instances = 1;
        }
    } else {
        rv = codec_json_object(&c, &s, rs, max_rows, &instances, &single);
    }
    if (rv < 0)
        goto out;
    codec_json_scan_ws(&s);
    if (s.pos < len) {
        rv = codec_json_frame_error(&c, body, len, s.pos, "[]");
        goto out;
    }
    if (instances < 0) {
        ig_codec_error_set(err, 0, "'instances' must be an array.");
        rv = IG_ERR_INVALID;
    } else if (instances > 0 && rs->nrows == 0) {
        ig_codec_error_set(err, 0, "Request has no rows.");
        rv = IG_ERR_INVALID;
    } else if (instances == 0 && single) {
        /* {"features": ...} or {"data": ...}: the whole object is the row */
        s.pos = start;
        rv = codec_json_take_row(&c, &s, 0, rs, max_rows);
    } else if (instances == 0 && rs->nrows == 0) {
        goto shape;
    }

out:
    ig_free(&c.seen);
    return rv;

shape:
    ig_codec_error_set(err, 0, "%s", codec_json_shape_msg);
    return IG_ERR_INVALID;
}

int ig_codec_decode_json(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                         struct ig_rowset *rs, struct ig_codec_error *err)
{
    return ig_codec_decode_json_at(body, len, 0, dim, max_rows, rs, err);
}

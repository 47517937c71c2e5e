/*
 * buf.c - capped byte buffer and the shortest round-trip double format.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/common.h"

void ig_buf_init(struct ig_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void ig_buf_clear(struct ig_buf *b)
{
    ig_free(&b->data);
    b->len = 0;
    b->cap = 0;
}

void ig_buf_reset(struct ig_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int ig_buf_reserve(struct ig_buf *b, size_t n)
{
    size_t want, ncap;
    char *p;

    if (n > b->max - b->len)
        return IG_ERR_TOOBIG;
    want = b->len + n + 1; /* room for the NUL */
    if (want <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < want)
        ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    p = ig_try_realloc(b->data, ncap);
    if (p == NULL)
        return IG_ERR_NOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

int ig_buf_append(struct ig_buf *b, const void *p, size_t n)
{
    int rv = ig_buf_reserve(b, n);

    if (rv < 0)
        return rv;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ig_buf_append_str(struct ig_buf *b, const char *s)
{
    return ig_buf_append(b, s, strlen(s));
}

int ig_buf_append_char(struct ig_buf *b, char c)
{
    return ig_buf_append(b, &c, 1);
}

int ig_buf_printf(struct ig_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rv;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return IG_ERR_INVALID;
    rv = ig_buf_reserve(b, (size_t)n);
    if (rv < 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int ig_buf_append_double(struct ig_buf *b, double v)
{
    char tmp[IG_FMT_DOUBLE_MAX];
    size_t n = ig_fmt_double(tmp, v);

    return ig_buf_append(b, tmp, n);
}

char *ig_buf_take(struct ig_buf *b, size_t *len)
{
    char *p = b->data;

    if (len)
        *len = b->len;
    if (p == NULL)
        p = ig_xcalloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

/*
 * The shortest digits that read back to <v>: a double with at most 15
 * significant digits round-trips through decimal (DBL_DIG), so if a form of
 * n <= 15 digits exists, rounding to 15 digits yields it padded with zeros.
 * Hence at most three tries: 15, 16, then 17 digits (17 always works);
 * subnormals, with less precision, try every length.
 * Fills <digits> (no dot, trailing zeros stripped) and returns the decimal
 * exponent of the first digit.
 */
static int fmt_shortest(double v, char *digits, size_t *ndigits)
{
    char tmp[40];
    char *e;
    size_t n = 0;
    int exp10;

    /* Subnormals have fewer digits of precision: search them all. */
    for (int prec = v < DBL_MIN ? 0 : 14; prec <= 16; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
        if (prec == 16 || strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is "d.ddddde[+-]XX" (v > 0 here). */
    e = strchr(tmp, 'e');
    exp10 = atoi(e + 1);
    for (const char *p = tmp; p < e; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    *ndigits = n;
    return exp10;
}

size_t ig_fmt_double(char *out, double v)
{
    char digits[24];
    size_t nd, n = 0;
    int exp10;

    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        const char *s = v > 0 ? "Infinity" : "-Infinity";

        n = strlen(s);
        memcpy(out, s, n + 1);
        return n;
    }
    if (v == 0) {
        const char *s = signbit(v) ? "-0.0" : "0.0";

        n = strlen(s);
        memcpy(out, s, n + 1);
        return n;
    }
    if (v < 0) {
        out[n++] = '-';
        v = -v;
    }
    exp10 = fmt_shortest(v, digits, &nd);
    /* Python's repr: positional for 1e-4 <= |v| < 1e16, else scientific. */
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = -1; i > exp10; i--)
                out[n++] = '0';
            memcpy(out + n, digits, nd);
            n += nd;
        } else {
            size_t intlen = (size_t)exp10 + 1;

            for (size_t i = 0; i < intlen; i++)
                out[n++] = i < nd ? digits[i] : '0';
            out[n++] = '.';
            if (nd > intlen) {
                memcpy(out + n, digits + intlen, nd - intlen);
                n += nd - intlen;
            } else {
                out[n++] = '0';
            }
        }
    } else {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, nd - 1);
            n += nd - 1;
        }
        n += (size_t)snprintf(out + n, 8, "e%c%02d", exp10 < 0 ? '-' : '+',
                              exp10 < 0 ? -exp10 : exp10);
    }
    out[n] = '\0';
    return n;
}

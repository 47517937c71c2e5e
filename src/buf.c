/*
 * buf.c - capped byte buffer and the shortest round-trip double format.
 */
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

size_t ig_fmt_double(char *out, double v)
{
    int n = 0;

    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        const char *s = v > 0 ? "Infinity" : "-Infinity";

        n = (int)strlen(s);
        memcpy(out, s, (size_t)n + 1);
        return (size_t)n;
    }
    /* The shortest precision that round-trips: 17 always does. */
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(out, IG_FMT_DOUBLE_MAX, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (strpbrk(out, ".eEn") == NULL) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

/*
 * buf.c - capped byte buffer and the shortest round-trip double format.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
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

size_t ig_buf_grown_cap(const struct ig_buf *b, size_t n)
{
    size_t want, ncap;

    if (n > b->max - b->len)
        return 0;
    want = b->len + n + 1; /* room for the NUL */
    if (want <= b->cap)
        return b->cap;
    ncap = b->cap ? b->cap : 256;
    while (ncap < want)
        ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    return ncap;
}

int ig_buf_reserve(struct ig_buf *b, size_t n)
{
    size_t ncap;
    char *p;

    if (n > b->max - b->len)
        return IG_ERR_TOOBIG;
    if (b->len + n + 1 <= b->cap)
        return 0;
    ncap = ig_buf_grown_cap(b, n);
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
 * <tmp> is "d.dddde[+-]XX", the decimal nearest <v> at its length and
 * below <v>, and does not read back to <v>. At a power of two the interval
 * that reads back is asymmetric (the gap below is half the gap above), so
 * the decimal one unit up at the same length may still read back although
 * it is no closer: replace <tmp> with it when it does. Returns 1 then.
 */
static int fmt_try_up(char *tmp, size_t size, double v)
{
    char *e = strchr(tmp, 'e');
    uint64_t digits = 0;
    int exp10 = atoi(e + 1), nd = 0;
    char dig[24];

    for (const char *p = tmp; p < e; p++)
        if (*p != '.') {
            digits = digits * 10 + (uint64_t)(*p - '0');
            nd++;
        }
    /* digits * 10^(exp10 - nd + 1) is the candidate: one unit up. */
    snprintf(dig, sizeof(dig), "%llue%d", (unsigned long long)(digits + 1), exp10 - nd + 1);
    if (strtod(dig, NULL) != v)
        return 0;
    /* Back to "d.dddde[+-]XX": the caller reads digits and exponent. */
    {
        char *de = strchr(dig, 'e');
        int n = (int)(de - dig);

        snprintf(tmp, size, "%c.%.*se%d", dig[0], n - 1, dig + 1, exp10 + (n - nd));
    }
    return 1;
}

/*
 * The shortest digits that read back to <v>: a double with at most 15
 * significant digits round-trips through decimal (DBL_DIG), so if a form of
 * n <= 15 digits exists, rounding to 15 digits yields it padded with zeros
 * (or, at a power of two, whose interval is lopsided, the form one unit
 * above that: fmt_try_up). Hence at most three tries: 15, 16, then 17
 * digits (17 always works); subnormals, with less precision, try every
 * length. Fills <digits> (no dot, trailing zeros stripped) and returns the
 * decimal exponent of the first digit. Slow (printf and strtod): the
 * fallback.
 */
static int fmt_shortest_printf(double v, char *digits, size_t *ndigits)
{
    char tmp[40];
    char *e;
    size_t n = 0;
    int exp10;
    uint64_t bits;
    int lopsided;

    memcpy(&bits, &v, sizeof(bits));
    /* A power of two above the smallest normal: the gap below is half. */
    lopsided = (bits & ((1ull << 52) - 1)) == 0 && (bits >> 52) > 1;
    /* Subnormals have fewer digits of precision: search them all. */
    for (int prec = v < DBL_MIN ? 0 : 14; prec <= 16; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
        if (prec == 16 || strtod(tmp, NULL) == v)
            break;
        if (lopsided && fmt_try_up(tmp, sizeof(tmp), v))
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

typedef unsigned __int128 fmt_u128;

/* floor(x * 10^k / 2^s) and whether it was exact; x * 10^k < 2^128. */
static fmt_u128 fmt_scale(uint64_t x, const fmt_u128 p10, unsigned s, int *exact)
{
    fmt_u128 num = (fmt_u128)x * p10;

    *exact = (num & (((fmt_u128)1 << s) - 1)) == 0;
    return num >> s;
}

/* The decimal interval of a double, scaled to integers, as digits drop. */
struct fmt_bounds {
    uint64_t vr, vp, vm; /* the value and the bounds of its interval */
    int vr_exact;        /* every digit dropped from vr so far was 0 */
    int vm_exact;        /* likewise for vm (and the bound is inclusive) */
    int last;            /* the digit last dropped from vr */
    int removed;         /* digits dropped */
};

static void fmt_drop_digit(struct fmt_bounds *b)
{
    b->vr_exact = b->vr_exact && b->last == 0;
    b->last = (int)(b->vr % 10);
    b->vr /= 10;
    b->vp /= 10;
    b->vm /= 10;
    b->removed++;
}

/*
 * Ryu's digit removal on 64-bit bounds: drop digits while the interval
 * [vm, vp] still holds two truncations, then round the last dropped digit
 * of vr half to even.
 */
static uint64_t fmt_remove_digits(struct fmt_bounds *b, int accept)
{
    while (b->vp / 10 > b->vm / 10) {
        b->vm_exact = b->vm_exact && b->vm % 10 == 0;
        fmt_drop_digit(b);
    }
    if (b->vm_exact)
        while (b->vm % 10 == 0)
            fmt_drop_digit(b);
    if (b->vr_exact && b->last == 5 && b->vr % 2 == 0)
        b->last = 4; /* exactly half way: round to even */
    return b->vr + ((b->vr == b->vm && (!accept || !b->vm_exact)) || b->last >= 5);
}

/*
 * The same digits as fmt_shortest_printf, exactly, with 128-bit integer
 * arithmetic instead of printf, for 1e-2 <= v < 1e15 (most numbers models
 * print). It is Ryu's digit-removal loop fed by exact quotients: with
 * v = m * 2^e, the interval of decimals that read back to v is
 * [(4m - 1 or 2) * 2^(e-2), (4m + 2) * 2^(e-2)]; scale it by 10^k so that
 * it spans at least 18 digits (one more than any double needs, so that
 * the last digit is always rounded, not truncated), then drop digits while
 * the bounds still differ, rounding the last removed digit half to even.
 * Returns the decimal exponent of the first digit, or INT32_MIN when <v> is
 * out of range.
 */
static int fmt_shortest_exact(double v, char *digits, size_t *ndigits)
{
    uint64_t bits, m, out;
    unsigned s, mmshift;
    fmt_u128 p10 = 1, vr, vp, vm;
    struct fmt_bounds b;
    int e2, k, accept, vr_exact, vp_exact, vm_exact, e10;
    char tmp[24];
    size_t n = 0;

    if (!(v >= 1e-2 && v < 1e15))
        return INT32_MIN;
    memcpy(&bits, &v, sizeof(bits));
    m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    e2 = (int)((bits >> 52) & 0x7ff) - 1075 - 2; /* v = 4m * 2^e2 */
    accept = (m & 1) == 0;
    mmshift = (bits & ((1ull << 52) - 1)) != 0 ? 2 : 1;
    /* 19 or 20 digits, or 18: floor(log10(v)) from the binary exponent
     * instead of log10() (twice the cost of the rest): with
     * 2^(e-1) <= v < 2^e, floor(e * log10(2)) is floor(log10(v)) or one
     * above it (78913 / 2^18 is log10(2) close enough for |e| < 1650, as
     * in Ryu); one above makes k one smaller: 18 digits, still enough. */
    {
        int e = (int)((bits >> 52) & 0x7ff) - 1023 + 1; /* v < 2^e */

        k = 19 - (e >= 0 ? (e * 78913) >> 18 : -((-e * 78913 + (1 << 18) - 1) >> 18));
    }
    if (k > 21)
        return INT32_MIN;
    for (int i = 0; i < k; i++)
        p10 *= 10;
    s = (unsigned)-e2; /* v < 1e15 < 2^50: e2 < 0 */
    vr = fmt_scale(4 * m, p10, s, &vr_exact);
    vp = fmt_scale(4 * m + 2, p10, s, &vp_exact);
    vm = fmt_scale(4 * m - mmshift, p10, s, &vm_exact);
    if (vp >= (fmt_u128)10000000000000000000ull * 10)
        return INT32_MIN; /* log10 was low: 21 digits would not fit below */
    vm_exact = vm_exact && accept;
    if (vp_exact && !accept)
        vp--; /* the upper bound itself does not read back to v */
    /* The first removal in 128 bits (there always is one: the interval
     * spans more than ten units at 18 digits and more); below 10^19 the
     * rest fits in 64 bits, where dividing by ten is a multiply. */
    b.vm_exact = vm_exact && vm % 10 == 0;
    b.vr_exact = vr_exact;
    b.last = (int)(vr % 10);
    b.removed = 1;
    b.vr = (uint64_t)(vr / 10);
    b.vp = (uint64_t)(vp / 10);
    b.vm = (uint64_t)(vm / 10);
    out = fmt_remove_digits(&b, accept);
    do {
        tmp[n++] = (char)('0' + out % 10);
        out /= 10;
    } while (out);
    e10 = b.removed - k + (int)n - 1;
    *ndigits = 0;
    while (n > 0)
        digits[(*ndigits)++] = tmp[--n];
    while (*ndigits > 1 && digits[*ndigits - 1] == '0')
        (*ndigits)--;
    return e10;
}

static size_t fmt_double(char *out, double v, int exact_ok)

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
    exp10 = exact_ok ? fmt_shortest_exact(v, digits, &nd) : INT32_MIN;
    if (exp10 == INT32_MIN)
        exp10 = fmt_shortest_printf(v, digits, &nd);
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

size_t ig_fmt_double(char *out, double v)
{
    return fmt_double(out, v, 1);
}

size_t ig_fmt_double_printf(char *out, double v)
{
    return fmt_double(out, v, 0);
}

/* Powers of ten that are exact doubles. */
static const double parse_p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Significant digits handed to strtod. A double's rounding depends on at
 * most 767 of them (the longest exact midpoint between two doubles), so
 * the first PARSE_SIG_MAX digits, and a nonzero digit after them that
 * stands for all the nonzero ones dropped, round exactly as the whole text
 * does: a number of any length is read in bounded space.
 */
#define PARSE_SIG_MAX 780
/* Texts up to this long are read by the fast function (and go to strtod as
 * they are, copied to add a NUL); longer ones by parse_long. */
#define PARSE_COPY_MAX 400

/*
 * The rest of a number from <p> to <end>: nothing, or an exponent
 * [eE][+-]?DIGITS whose value (its magnitude capped near 10^6, far past
 * any double) goes in *<exp>. 0, or -1 when anything else is left.
 */
static inline int parse_exponent(const char *p, const char *end, int *exp)
{
    int neg = 0, val = 0, digits = 0;

    *exp = 0;
    if (p == end)
        return 0;
    if (*p != 'e' && *p != 'E')
        return -1;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
        if (val < 100000)
            val = val * 10 + (*p - '0');
    if (digits == 0 || p != end)
        return -1;
    *exp = neg ? -val : val;
    return 0;
}

/*
 * A text over PARSE_COPY_MAX bytes (rare: kept out of the hot function):
 * check the same grammar, rewrite the number as "DDDDe<x>" (at most
 * PARSE_SIG_MAX + 1 significant digits, an integer exponent) and let
 * strtod round it. Counts are 64-bit: any length is safe.
 */
static __attribute__((noinline, cold)) int parse_long(const char *s, size_t n, double *out)
{
    char tmp[PARSE_SIG_MAX + 1 + 24];
    const char *p = s, *end = s + n;
    size_t nd = 0, ndig = 0;
    int64_t x = 0;
    int neg = 0, frac = 0, sticky = 0, eval;
    double v;

    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    for (; p < end; p++) {
        if (*p == '.' && !frac) {
            frac = 1;
            continue;
        }
        if (*p < '0' || *p > '9')
            break;
        ndig++;
        x -= frac; /* value = all digits * 10^(exponent - fraction digits) */
        if (nd == 0 && *p == '0')
            continue;
        if (nd < PARSE_SIG_MAX) {
            tmp[nd++] = *p;
        } else {
            x++; /* a digit dropped off the end */
            sticky |= *p != '0';
        }
    }
    if (ndig == 0)
        return -1;
    if (parse_exponent(p, end, &eval) < 0)
        return -1;
    if (nd == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (sticky) {
        tmp[nd++] = '1';
        x--;
    }
    x += eval;
    /* Past 10^400 or below 10^-400 the result is inf or 0 whatever the
     * digits (nd <= PARSE_SIG_MAX + 1): clamp, so the text stays short. */
    if (x > 100000)
        x = 100000;
    if (x < -100000)
        x = -100000;
    snprintf(tmp + nd, sizeof(tmp) - nd, "e%d", (int)x);
    v = strtod(tmp, NULL);
    *out = neg ? -v : v;
    return 0;
}

int ig_parse_double(const char *s, size_t n, double *out)
{
    const char *p = s, *end = s + n;
    uint64_t mant = 0;
    int neg = 0, digits = 0, sig = 0, exp10 = 0, eval, dropped = 0;
    char tmp[PARSE_COPY_MAX + 1];
    char *stop;
    double v;

    /* Below this length every count here fits an int. */
    if (n > PARSE_COPY_MAX)
        return parse_long(s, n, out);
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(*p - '0');
            sig += mant != 0;
        } else {
            exp10++;
            dropped |= *p != '0';
        }
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                sig += mant != 0;
                exp10--;
            } else {
                dropped |= *p != '0';
            }
        }
    }
    if (digits == 0)
        return -1;
    if (parse_exponent(p, end, &eval) < 0)
        return -1;
    exp10 += eval;
    /* Clinger's fast path: an exact mantissa and an exact power of ten
     * give a correctly rounded result in one operation. */
    if (!dropped && mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / parse_p10[-exp10] : v * parse_p10[exp10];
        *out = neg ? -v : v;
        return 0;
    }
    /* 17 digits, a far exponent: strtod on a NUL-terminated copy. */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    v = strtod(tmp, &stop);
    if (stop != tmp + n)
        return -1;
    *out = v;
    return 0;
}

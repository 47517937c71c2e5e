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

int ig_buf_append_float(struct ig_buf *b, float v)
{
    char tmp[IG_FMT_FLOAT_MAX];
    size_t n = ig_fmt_float(tmp, v);

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
 * Number formatting. Every path ends in a decimal d * 10^e (d > 0) that
 * fmt_layout writes; the exact integer paths below make it with no printf,
 * and printf with strtod is the reference they are tested against and the
 * fallback for what they leave out (far exponents, subnormals).
 */

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

/* "d.ddde[+-]XX" from printf: as the decimal *d * 10^(return value). */
static int fmt_read_e(const char *tmp, uint64_t *d)
{
    const char *e = strchr(tmp, 'e');
    int nd = 0;

    *d = 0;
    for (const char *p = tmp; p < e; p++)
        if (*p != '.') {
            *d = *d * 10 + (uint64_t)(*p - '0');
            nd++;
        }
    return atoi(e + 1) - (nd - 1);
}

/*
 * The shortest digits that read back to <v> (> 0): a double with at most
 * 15 significant digits round-trips through decimal (DBL_DIG), so if a
 * form of n <= 15 digits exists, rounding to 15 digits yields it padded
 * with zeros (or, at a power of two, whose interval is lopsided, the form
 * one unit above that: fmt_try_up). Hence at most three tries: 15, 16,
 * then 17 digits (17 always works); subnormals, with less precision, try
 * every length. Sets *d and returns e: the decimal is d * 10^e. Slow
 * (printf and strtod): the fallback.
 */
static int fmt_shortest_printf(double v, uint64_t *d)
{
    char tmp[40];
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
    return fmt_read_e(tmp, d);
}

typedef unsigned __int128 fmt_u128;

static const uint64_t fmt_p10[20] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
};

/* 5^0 .. 5^27 (5^27 < 2^63) */
static const uint64_t fmt_p5[28] = {
    1ull,
    5ull,
    25ull,
    125ull,
    625ull,
    3125ull,
    15625ull,
    78125ull,
    390625ull,
    1953125ull,
    9765625ull,
    48828125ull,
    244140625ull,
    1220703125ull,
    6103515625ull,
    30517578125ull,
    152587890625ull,
    762939453125ull,
    3814697265625ull,
    19073486328125ull,
    95367431640625ull,
    476837158203125ull,
    2384185791015625ull,
    11920928955078125ull,
    59604644775390625ull,
    298023223876953125ull,
    1490116119384765625ull,
    7450580596923828125ull,
};


/* 5^k for 0 <= k <= 55 (5^55 < 2^128). */
static inline fmt_u128 fmt_pow5(int k)
{
    if (k < 28)
        return fmt_p5[k];
    if (k < 55)
        return (fmt_u128)fmt_p5[27] * fmt_p5[k - 27];
    return (fmt_u128)fmt_p5[27] * fmt_p5[27] * 5;
}

/*
 * floor(x * 10^k * 2^e2) into *out, and whether that is exact, when it is
 * below 2^64 and within this arithmetic (x < 2^56, |k| <= 55): 0, else -1.
 * 10^k * 2^e2 is 5^k * 2^(k + e2): x * 5^k in 192 bits, then a shift; for
 * k < 0, x * 2^(e2 + k) (a shift left) divided by 5^-k.
 */
static inline int fmt_mul_scale(uint64_t x, int k, int e2, uint64_t *out, int *exact)
{
    if (k >= 0 && k <= 55) {
        fmt_u128 p = fmt_pow5(k), lo = (fmt_u128)x * (uint64_t)p, t;
        uint64_t w0 = (uint64_t)lo;
        int sh = k + e2;

        /* x * 5^k = t * 2^64 + w0 */
        t = (lo >> 64) + (fmt_u128)x * (uint64_t)(p >> 64);
        if (sh >= 0) {
            if (t != 0 || sh >= 64 || (sh > 0 && w0 >> (64 - sh) != 0))
                return -1;
            *out = w0 << sh;
            *exact = 1;
        } else if (sh <= -64) {
            unsigned s = (unsigned)(-sh - 64);

            if (s >= 128 || t >> s >> 64 != 0)
                return -1;
            *out = (uint64_t)(t >> s);
            *exact = w0 == 0 && (t & (((fmt_u128)1 << s) - 1)) == 0;
        } else {
            unsigned s = (unsigned)-sh; /* 0 < s < 64 */

            if (t >> s != 0)
                return -1;
            *out = (uint64_t)(t << (64 - s)) | (w0 >> s);
            *exact = (w0 & ((1ull << s) - 1)) == 0;
        }
        return 0;
    }
    if (k < 0 && k >= -55 && e2 + k >= 0 && e2 + k <= 127 - 56) {
        fmt_u128 num = (fmt_u128)x << (e2 + k), p = fmt_pow5(-k), q = num / p;

        if (q >> 64 != 0)
            return -1;
        *out = (uint64_t)q;
        *exact = num - q * p == 0;
        return 0;
    }
    return -1;
}

/* The decimal interval of a number, scaled to integers, as digits drop. */
struct fmt_bounds {
    uint64_t vr, vp, vm; /* the value and the bounds of its interval */
    int vr_exact;        /* every digit dropped from vr so far was 0 */
    int vm_exact;        /* likewise for vm (and the bound is inclusive) */
    int last;            /* the digit last dropped from vr */
    int removed;         /* digits dropped */
};

/* Drop <n> (1, 2, 4 or 8) digits at once: what <n> single drops would do
 * (divisions by constants: multiplications). */
static inline void fmt_drop_digits(struct fmt_bounds *b, int n)
{
    uint64_t p = fmt_p10[n], lo = p / 10;

    b->vr_exact = b->vr_exact && b->last == 0 && b->vr % lo == 0;
    b->last = (int)(b->vr / lo % 10);
    b->vm_exact = b->vm_exact && b->vm % p == 0;
    b->vr /= p;
    b->vp /= p;
    b->vm /= p;
    b->removed += n;
}

/* Drop the trailing zeros of c > 0, counting them in *removed. */
static inline uint64_t fmt_strip_zeros(uint64_t c, int *removed)
{
    while (c % 100000000 == 0) {
        c /= 100000000;
        *removed += 8;
    }
    if (c % 10000 == 0) {
        c /= 10000;
        *removed += 4;
    }
    if (c % 100 == 0) {
        c /= 100;
        *removed += 2;
    }
    if (c % 10 == 0) {
        c /= 10;
        *removed += 1;
    }
    return c;
}

/*
 * Ryu's digit removal on 64-bit bounds: drop digits while the interval
 * [vm, vp] still holds two truncations, then, when vm is exact and
 * accepted, its trailing zeros; round the last dropped digit of vr half to
 * even. Returns the digits; b->removed says how many were dropped.
 *
 * First a shortcut: <big> (10^lbig) is a power of ten over twice the
 * interval's width (else the loops run: a subnormal's interval is wider).
 * When a multiple M of <big> lies in (vm, vp] it is the only one, and the
 * answer is M without its trailing zeros: vm is no multiple of <big> (two
 * would be a width apart), so it is never the shorter one even when exact
 * and accepted, and at M's length the rounding cannot go past it (the
 * rest of vr is under half of <big>; vr below M rounds up to it). Else at
 * most lbig - 1 digits drop: with neither vr nor vm exact (most numbers:
 * no tie to break, no zeros to track) three, two, then one at a time,
 * rounding on what was dropped.
 */
static inline uint64_t fmt_remove_digits(struct fmt_bounds *b, int accept, uint64_t big, int lbig)
{
    if (b->vp - b->vm < big / 2 && b->vp / big > b->vm / big) {
        b->removed = lbig;
        return fmt_strip_zeros(b->vp / big, &b->removed);
    }
    if (!b->vr_exact && !b->vm_exact) {
        uint64_t vr = b->vr, vp = b->vp, vm = b->vm, q;
        int up = 0, removed = 0;

        if (vp - vm >= big / 2) {
            /* wider (a subnormal's few digits): the plain loop */
            while (vp / 10 > vm / 10) {
                q = vr / 10;
                up = vr - q * 10 >= 5;
                vr = q;
                vp /= 10;
                vm /= 10;
                removed++;
            }
            b->removed = removed;
            return vr + (vr == vm || up);
        }
        if (lbig > 4 && vp / 1000 > vm / 1000) {
            q = vr / 1000;
            up = vr - q * 1000 >= 500;
            vr = q;
            vp /= 1000;
            vm /= 1000;
            removed += 3;
        }
        if (vp / 100 > vm / 100) {
            q = vr / 100;
            up = vr - q * 100 >= 50;
            vr = q;
            vp /= 100;
            vm /= 100;
            removed += 2;
        }
        if (vp / 10 > vm / 10) {
            q = vr / 10;
            up = vr - q * 10 >= 5;
            vr = q;
            vm /= 10;
            removed++;
        }
        b->removed = removed;
        return vr + (vr == vm || up);
    }
    while (b->vp / 100000000 > b->vm / 100000000)
        fmt_drop_digits(b, 8);
    if (b->vp / 10000 > b->vm / 10000)
        fmt_drop_digits(b, 4);
    if (b->vp / 100 > b->vm / 100)
        fmt_drop_digits(b, 2);
    if (b->vp / 10 > b->vm / 10)
        fmt_drop_digits(b, 1);
    if (b->vm_exact)
        while (b->vm % 10 == 0)
            fmt_drop_digits(b, 1);
    if (b->vr_exact && b->last == 5 && b->vr % 2 == 0)
        b->last = 4; /* exactly half way: round to even */
    return b->vr + ((b->vr == b->vm && (!accept || !b->vm_exact)) || b->last >= 5);
}

/*
 * Ryu's digit removal fed by exact quotients: the shortest decimal in the
 * interval [4m - mmshift, 4m + 2] * 2^e2 (ends included when m is even)
 * around v = 4m * 2^e2, and of those the nearest v. The interval is scaled
 * by 10^k, which the caller chose to give it one digit more than the
 * format ever needs (so that the last digit is always rounded, not
 * truncated) and fewer than 20 (it fits 64 bits); then digits drop while
 * the bounds still differ, the last one dropped rounded half to even.
 * Sets *d and returns e (the decimal is d * 10^e), or INT32_MIN when the
 * scaling is out of fmt_mul_scale's reach. The interval spans up to 2^-52
 * of v (doubles, at most 2220 units at 19 digits: fmt_remove_digits' big
 * is 10^4) or 2^-23 (floats, ends != NULL: 11921 units at 11 digits, big
 * is 10^5). <ends> (floats only, k small enough that d * 10^dropped fits): *ends is set when the result, scaled
 * back, lies less than a unit inside an end it must not reach (m odd,
 * the end not a whole number of units).
 */
static inline int fmt_shortest_scaled(uint64_t m, int e2, unsigned mmshift, int k, uint64_t *d,
                                      int *ends)
{
    struct fmt_bounds b;
    int accept = (m & 1) == 0, vr_exact, vp_exact, vm_exact, sh = k + e2;

    if (k >= 0 && k < 28 && sh < 0 && sh > -128) {
        /* the common case: 5^k < 2^63, x * 5^k < 2^119, a shift right */
        uint64_t p = fmt_p5[k];
        unsigned s = (unsigned)-sh;
        fmt_u128 nr = (fmt_u128)(4 * m) * p, np = nr + 2 * (fmt_u128)p;
        fmt_u128 nm = nr - mmshift * (fmt_u128)p, mask = ((fmt_u128)1 << s) - 1;

        if (np >> s >> 64 != 0)
            return INT32_MIN;
        b.vr = (uint64_t)(nr >> s);
        b.vp = (uint64_t)(np >> s);
        b.vm = (uint64_t)(nm >> s);
        vr_exact = (nr & mask) == 0;
        vp_exact = (np & mask) == 0;
        vm_exact = (nm & mask) == 0;
    } else if (fmt_mul_scale(4 * m, k, e2, &b.vr, &vr_exact) < 0 ||
               fmt_mul_scale(4 * m + 2, k, e2, &b.vp, &vp_exact) < 0 ||
               fmt_mul_scale(4 * m - mmshift, k, e2, &b.vm, &vm_exact) < 0) {
        return INT32_MIN;
    }
    if (ends) {
        uint64_t vm0 = b.vm, vp0 = b.vp;

        if (vp_exact && !accept)
            b.vp--; /* the upper end itself does not read back */
        b.vr_exact = vr_exact;
        b.vm_exact = vm_exact && accept;
        b.last = 0;
        b.removed = 0;
        *d = fmt_remove_digits(&b, accept, 100000, 5);
        if (!accept) {
            uint64_t scaled = *d * fmt_p10[b.removed];

            *ends = (scaled == vm0 + 1 && !vm_exact) || (scaled == vp0 && !vp_exact);
        } else {
            *ends = 0;
        }
        return b.removed - k;
    }
    if (vp_exact && !accept)
        b.vp--;
    b.vr_exact = vr_exact;
    b.vm_exact = vm_exact && accept;
    b.last = 0;
    b.removed = 0;
    *d = fmt_remove_digits(&b, accept, 10000, 4);
    return b.removed - k;
}

/* floor(log10(2^e)) or one above it, for |e| < 1650: 78913 / 2^18 is
 * log10(2) close enough (as in Ryu); from the binary exponent, as log10()
 * costs twice the rest. */
static inline int fmt_log10_pow2(int e)
{
    /* floor((e + 2^18) * 78913 / 2^18) - 78913, in unsigned arithmetic:
     * the floor for negative e too, without a branch */
    return (int)(((uint64_t)(e + (1 << 18)) * 78913) >> 18) - 78913;
}

/*
 * The same digits as fmt_shortest_printf, exactly, with integer arithmetic
 * instead of printf, for normal doubles from about 1e-37 to 1e46 (most
 * numbers models print): fmt_shortest_scaled at 18 or 19 digits (doubles
 * need at most 17). Sets *d and returns e (the decimal is d * 10^e), or
 * INT32_MIN when <v> is out of range.
 */
static inline int fmt_shortest_exact(double v, uint64_t *d)
{
    uint64_t bits, m;
    unsigned mmshift;
    int e2, k, be;

    memcpy(&bits, &v, sizeof(bits));
    be = (int)((bits >> 52) & 0x7ff);
    if (be == 0)
        return INT32_MIN; /* subnormal */
    m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    e2 = be - 1075 - 2; /* v = 4m * 2^e2 */
    mmshift = (bits & ((1ull << 52) - 1)) != 0 || be == 1 ? 2 : 1;
    /* 2^(e-1) <= v < 2^e with e = be - 1022: floor(log10(v)) is the
     * estimate or one below it, and k gives 19 digits or 18 */
    k = 18 - fmt_log10_pow2(be - 1022);
    return fmt_shortest_scaled(m, e2, mmshift, k, d, NULL);
}

/* "00" .. "99" */
static const char fmt_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                   "31323334353637383940414243444546474849505152535455565758596061"
                                   "62636465666768697071727374757677787980818283848586878889909192"
                                   "93949596979899";

/* Write the <nd> digits of <d> at p[0] .. p[nd - 1], two at a time. */
static inline void fmt_write_digits(char *p, uint64_t d, size_t nd)
{
    uint32_t d32;

    while (d > UINT32_MAX) {
        uint64_t q = d / 100;

        nd -= 2;
        memcpy(p + nd, fmt_pairs + 2 * (d - q * 100), 2);
        d = q;
    }
    /* the rest in 32 bits: cheaper divisions */
    d32 = (uint32_t)d;
    while (d32 >= 100) {
        uint32_t q = d32 / 100;

        nd -= 2;
        memcpy(p + nd, fmt_pairs + 2 * (d32 - q * 100), 2);
        d32 = q;
    }
    if (d32 >= 10)
        memcpy(p, fmt_pairs + 2 * d32, 2);
    else
        p[0] = (char)('0' + d32);
}

/*
 * Write the <nd> digits at <dig> (at most 17; 32 bytes readable there,
 * '0' after the digits), the first of them at 10^<exp10>, after the <n>
 * bytes already in <out> (a sign), as Python's repr does: positional for
 * 1e-4 <= |v| < 1e16 with ".0" on integral values, scientific otherwise
 * ("1e+16", "1.5e-05"). Returns the new length; <out> is NUL-terminated.
 * The digits are copied in fixed blocks (no call to memcpy for a few
 * bytes): up to 26 bytes of <out> are written, 22 when nd <= 9 (a
 * float's).
 */
static inline __attribute__((always_inline)) size_t fmt_place(char *out, size_t n,
                                                              const char *dig, size_t nd,
                                                              int exp10)
{
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            /* "0." and -exp10 - 1 zeros, then the digits */
            memcpy(out + n, "0.000000", 8);
            n += (size_t)(1 - exp10);
            memcpy(out + n, dig, 16);
            if (nd > 16)
                out[n + 16] = dig[16];
            n += nd;
        } else if ((size_t)exp10 + 1 >= nd) {
            /* integral: the digits, then zeros (dig's), then ".0" */
            memcpy(out + n, dig, 16);
            n += (size_t)exp10 + 1;
            out[n++] = '.';
            out[n++] = '0';
        } else {
            /* the integer part, '.', the rest (at most 8 digits, or at
             * most 8 before the dot) */
            size_t intlen = (size_t)exp10 + 1;

            memcpy(out + n, dig, 16);
            out[n + intlen] = '.';
            if (nd - intlen <= 8)
                memcpy(out + n + intlen + 1, dig + intlen, 8);
            else
                memcpy(out + n + intlen + 1, dig + intlen, 16);
            n += nd + 1;
        }
    } else {
        unsigned x = (unsigned)(exp10 < 0 ? -exp10 : exp10);

        out[n] = dig[0];
        if (nd > 1) {
            out[n + 1] = '.';
            memcpy(out + n + 2, dig + 1, 16);
            n += nd + 1;
        } else {
            n++;
        }
        /* "e%c%02d" by hand */
        out[n++] = 'e';
        out[n++] = exp10 < 0 ? '-' : '+';
        if (x >= 100)
            out[n++] = (char)('0' + x / 100);
        out[n++] = (char)('0' + x / 10 % 10);
        out[n++] = (char)('0' + x % 10);
    }
    out[n] = '\0';
    return n;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The 8 bytes from byte <i> (0 .. 23) on of the 32-byte string held in
 * <w> (little-endian words), as a word: shifts, not a load that straddles
 * stores; (x << 1) << (63 - 8r) is x << (64 - 8r), and 0 for r = 0. */
static inline uint64_t fmt_word_at(const uint64_t *w, size_t i)
{
    size_t j = i / 8, r = i % 8;

    return (w[j] >> (8 * r)) | ((w[j + 1] << 1) << (63 - 8 * r));
}

/*
 * fmt_place with the digits in four words (little endian, '0' after the
 * digits): every byte goes out through a register, in 8-byte stores, and
 * one layout serves all positional forms: <z> = -exp10 zeros put before
 * the digits (0.0123 is "0" "." "0123"), the integer part (at least "0"),
 * '.', and the rest (at least one digit: the '0' padding gives "3.0"). No
 * branch on the number's shape but positional or not. Writes up to 30
 * bytes of <out> (26 when nd <= 9): with 21 bytes in p (17 digits and 4
 * zeros), the fraction (more than 16 bytes) starts by byte 4.
 */
static inline __attribute__((always_inline)) size_t fmt_place_words(char *out, size_t n,
                                                                    const uint64_t *w,
                                                                    size_t nd, int exp10)
{
    const uint64_t zeros = 0x3030303030303030ull;

    if (exp10 >= -4 && exp10 < 16) {
        /* z = max(-exp10, 0), intlen = max(exp10 + 1, 1) = exp10 + 1 + z,
         * frac = max(nd - exp10 - 1, 1): masks, not branches */
        unsigned z = (unsigned)-exp10 & -(unsigned)(exp10 < 0), sh = 8 * z;
        size_t intlen = (size_t)(exp10 + 1 + (int)z);
        int f = (int)nd - exp10 - 1;
        size_t frac = (size_t)(f + ((1 - f) & -(f < 1)));
        uint64_t p[4], f0;

        /* p: z '0's then w's string (its last z bytes, '0's, drop off) */
        p[0] = (w[0] << sh) | ((zeros >> 1) >> (63 - sh));
        p[1] = (w[1] << sh) | ((w[0] >> 1) >> (63 - sh));
        p[2] = (w[2] << sh) | ((w[1] >> 1) >> (63 - sh));
        p[3] = (w[3] << sh) | ((w[2] >> 1) >> (63 - sh));
        f0 = fmt_word_at(p, intlen);
        memcpy(out + n, &p[0], 8);
        memcpy(out + n + 8, &p[1], 8);
        out[n + intlen] = '.';
        memcpy(out + n + intlen + 1, &f0, 8);
        if (frac > 8) { /* up to 20 digits: 17 and 3 zeros */
            uint64_t f1 = fmt_word_at(p, intlen + 8), f2 = fmt_word_at(p, intlen + 16);

            memcpy(out + n + intlen + 9, &f1, 8);
            if (frac > 16)
                memcpy(out + n + intlen + 17, &f2, 8);
        }
        n += intlen + 1 + frac;
    } else {
        unsigned x = (unsigned)(exp10 < 0 ? -exp10 : exp10);
        uint64_t f0 = fmt_word_at(w, 1), f1 = fmt_word_at(w, 9);

        out[n] = (char)w[0];
        if (nd > 1) {
            out[n + 1] = '.';
            memcpy(out + n + 2, &f0, 8);
            memcpy(out + n + 10, &f1, 8);
            n += nd + 1;
        } else {
            n++;
        }
        out[n++] = 'e';
        out[n++] = exp10 < 0 ? '-' : '+';
        if (x >= 100)
            out[n++] = (char)('0' + x / 100);
        out[n++] = (char)('0' + x / 10 % 10);
        out[n++] = (char)('0' + x % 10);
    }
    out[n] = '\0';
    return n;
}
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * The layout of fmt_place for at most 8 digits, the first nonzero, held
 * as characters in the word <s> (little endian: the first digit in the
 * low byte; '0's after the <nd> digits), the first at 10^<exp10> with
 * exp10 <= 7 (the callers' 8 digits have no larger one). One store for
 * the digits before the dot, and one for those after it (the word
 * shifted): "0.0123", "12.5", "1234567.0", "12345678.0", "3e-05",
 * "1.5e-07". Writes up to 20 bytes of <out>.
 */
static inline __attribute__((always_inline)) size_t fmt_place8(char *out, size_t n, uint64_t s,
                                                               size_t nd, int exp10)
{
    const uint64_t zeros = 0x3030303030303030ull;

    if (exp10 >= -4) {
        /* positional, with no branch on the shape (they mispredict): z =
         * max(-exp10, 0) '0's, then the digits, then '0's, in the 16
         * bytes of p0 p1; the integer part is its first intlen =
         * max(exp10 + 1, 1) bytes ("0" when exp10 < 0), then '.', then
         * the rest (f0 f1), at least one byte (a '0' of the padding:
         * "3.0"). Shifts by 64 are spelled as two (x >> 1 >> 63). */
        unsigned z = (unsigned)-exp10 & -(unsigned)(exp10 < 0), sh = 8 * z; /* z <= 4 */
        size_t intlen = (size_t)(exp10 + 1 + (int)z);                       /* 1 .. 8 */
        unsigned ish = (unsigned)(8 * intlen);
        int fr = (int)nd + (int)z - (int)intlen;
        size_t frac = (size_t)(fr + ((1 - fr) & -(fr < 1)));
        uint64_t p0 = (s << sh) | (zeros & ((1ull << sh) - 1));
        uint64_t p1 = ((s >> 1) >> (63 - sh)) | (zeros << sh);
        /* the rest: 11 bytes at most, and past p1 only when z = 0 and
         * then 3 at most */
        uint64_t w[4] = {p0, p1, ((p0 >> 1) >> (ish - 1)) | (p1 << (64 - ish)),
                         (p1 >> 1) >> (ish - 1)};

        memcpy(out + n, &w[0], 8);
        memcpy(out + n + 8, &w[1], 8);
        out[n + intlen] = '.';
        memcpy(out + n + intlen + 1, &w[2], 8);
        memcpy(out + n + intlen + 9, &w[3], 8);
        n += intlen + 1 + frac;
    } else {
        unsigned x = (unsigned)-exp10;
        uint64_t f = s >> 8;

        /* the first digit, '.' and the rest; with no rest, the 'e'
         * goes where the '.' was */
        out[n] = (char)s;
        out[n + 1] = '.';
        memcpy(out + n + 2, &f, 8);
        n += nd + (nd > 1);
        memcpy(out + n, "e-", 2);
        n += 2;
        if (x >= 100)
            out[n++] = (char)('0' + x / 100);
        out[n++] = (char)('0' + x / 10 % 10);
        out[n++] = (char)('0' + x % 10);
    }
    out[n] = '\0';
    return n;
}
#endif

/* fmt_place for the decimal d * 10^e (d > 0, at most 17 digits). */
static inline __attribute__((always_inline)) size_t fmt_layout(char *out, size_t n, uint64_t d,
                                                               int e)
{
    char tmp[32];
    size_t nd, t;

    while (d % 10 == 0) {
        d /= 10;
        e++;
    }
    /* digits: floor(log10(d)) + 1 from the bit length (1233 / 4096 is
     * log10(2) from below), then one comparison */
    t = (size_t)(64 - __builtin_clzll(d)) * 1233 >> 12;
    nd = t + (t < 20 && d >= fmt_p10[t]);
    memcpy(tmp, "00000000000000000000000000000000", 32);
    fmt_write_digits(tmp, d, nd);
    return fmt_place(out, n, tmp, nd, e + (int)nd - 1);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * The 8 digits of x < 10^8 (leading zeros included) as the values 0..9 of
 * the 8 bytes of a little-endian word, first digit first: split in 4-digit
 * halves, each of those in 2-digit halves, each in digits, all lanes at
 * once with multiplications by reciprocals (n * 10486 >> 20 is n / 100
 * for n < 10000; n * 103 >> 10 is n / 10 for n < 100; the lanes do not
 * overlap), no table. Add '0' to each byte for the characters.
 */
static inline uint64_t fmt_digits8(uint32_t x)
{
    uint64_t hi4 = x / 10000, lo4 = x - (uint32_t)hi4 * 10000;
    uint64_t v = hi4 | (lo4 << 32), q;

    q = ((v * 10486) >> 20) & 0x0000007F0000007Full;
    v = q | ((v - q * 100) << 16);
    q = ((v * 103) >> 10) & 0x000F000F000F000Full;
    return q | ((v - q * 10) << 8);
}
#else
/* The 8 characters of x < 10^8 (leading zeros included), first first, as
 * the bytes of a word in memory order. */
static inline uint64_t fmt_digits8(uint32_t x)
{
    char p[8];
    uint64_t w;

    for (int i = 7; i >= 0; i--) {
        p[i] = (char)('0' + x % 10);
        x /= 10;
    }
    memcpy(&w, p, 8);
    return w;
}
#endif

/*
 * Round v = m * 2^(be - 1075) (m with its leading bit) times 10^k to an
 * integer *c, and say whether *c * 10^-k reads back to v: with
 * v * 10^k = num / 2^s, it does when it lies within half an ulp of v,
 * 10^k * 2^(be - 1076) = 5^k / 2^(s + 1) scaled, so when
 * 2 * |c * 2^s - num| < 5^k (never equal: 5^k is odd; the caller leaves
 * out powers of two, whose gap below is half). The callers' decimals (8
 * or 15 digits, m >= 2^52) have a unit 2^s over 4 times the ulp 5^k: a
 * tie between two of them is never within half an ulp, so the rounding
 * adds half a unit and truncates, and 2 * |c * 2^s - num| is
 * |2 * fr - 2^s| with fr the low s bits of num + 2^(s - 1); it is below
 * 5^k when 2 * fr - (2^s - 5^k), unsigned, is below 2 * 5^k. The caller
 * keeps v * 10^k < 2^63 with 0 <= k <= 22.
 */
static inline int fmt_round_check(int be, uint64_t m, int k, uint64_t *c)
{
    unsigned s = (unsigned)(1075 - be - k);
    uint64_t p5 = fmt_p5[k], fr;
    fmt_u128 t;

    if (s - 1 > 62) /* s = 0 or s > 63: not here */
        return 0;
    t = (fmt_u128)m * p5 + (1ull << (s - 1)); /* < 2^53 * 2^51 + 2^63 */
    /* t >> s with 0 < s < 64, spelled so (the general 128-bit shift
     * tests s >= 64) */
    *c = ((uint64_t)(t >> 64) << (64 - s)) | ((uint64_t)t >> s);
    fr = (uint64_t)t & ((1ull << s) - 1);
    return 2 * fr - ((1ull << s) - p5) < 2 * p5;
}

/*
 * The common case first, in one pass (numbers parsed from short decimals,
 * whole numbers): round v (> 0, bits <bits>) to 8 significant digits (on
 * a little-endian machine: fmt_double_fast8, laid out by fmt_place8) and
 * keep them when they read back to v, else the same with 15 (here). With
 * their
 * trailing zeros dropped they are then the shortest form: if rounding to
 * n <= 15 digits reads back, the shortest form has at most n digits, and
 * n-digit decimals lie more than a double's ulp apart (DBL_DIG), while the
 * nearest one to v and the shortest form padded to n digits are both
 * within half an ulp of v: they are the same (and so the nearest of that
 * length). With the exponent estimate one high it is 7 or 14 digits, the
 * same argument. The digits are made in registers (fmt_digits8) and
 * counted there, and fmt_place_words lays them out: few data-dependent
 * branches, no division, no load of bytes just stored (mispredictions and
 * stalls cost more than the arithmetic here). For about 1e-8 <= v < 1e15
 * (8 digits: 1e-15 <= v < 1e8), normal, not a power of two; returns the
 * length written (as fmt_place), or 0 (then the general way decides).
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The 8 digits of fmt_double_fast (the common case), alone: inlined in
 * ig_fmt_double, whose frame stays small; the rest is fmt_double_rest's. */
static inline size_t fmt_double_fast8(char *out, size_t n, uint64_t bits)
{
    const uint64_t zeros = 0x3030303030303030ull;
    int be = (int)((bits >> 52) & 0x7ff), k;
    uint64_t m = bits & ((1ull << 52) - 1), c, w0;
    size_t lead, tz;

    if (be <= 1 || m == 0)
        return 0;
    m |= 1ull << 52;
    /* 8 digits (7 with the estimate one high): most numbers have no
     * more, and one word holds them */
    k = 7 - fmt_log10_pow2(be - 1022);
    if (k < 0 || k > 22 || !fmt_round_check(be, m, k, &c) || c >= 100000000)
        return 0;
    w0 = fmt_digits8((uint32_t)c);
    tz = (size_t)__builtin_clzll(w0) / 8; /* c >= 10^6: not all zeros */
    lead = c < 10000000;
    return fmt_place8(out, n, (w0 >> (8 * lead)) | zeros, 8 - lead - tz, (int)(7 - lead) - k);
}
#endif

/* fmt_double_fast8's 15 digits (the 8 are tried before). */
static inline size_t fmt_double_fast(char *out, size_t n, uint64_t bits)
{
    int be = (int)((bits >> 52) & 0x7ff), est, k;
    uint64_t m = bits & ((1ull << 52) - 1), c;
    unsigned hi;
    size_t lead, tz;
    uint64_t w0, w1;

    if (be <= 1 || m == 0)
        return 0;
    m |= 1ull << 52;
    est = fmt_log10_pow2(be - 1022);
    /* 15 digits (14) */
    k = 14 - est;
    if (k < 0 || k > 22 || !fmt_round_check(be, m, k, &c))
        return 0;
    /* 10^13 <= c; 10^15 when it rounded up to 16 digits: the general way */
    if (c >= 1000000000000000ull)
        return 0;
    hi = (unsigned)(c / 100000000);
    w0 = fmt_digits8(hi);
    w1 = fmt_digits8((uint32_t)(c - (uint64_t)hi * 100000000));
    lead = 2 - (c >= 100000000000000ull); /* 14 or 15 digits of 16 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    {
        /* trailing zero digits: the last byte in memory is a word's most
         * significant; hi >= 10^5, so the first word is not all zeros */
        const uint64_t zeros = 0x3030303030303030ull;
        uint64_t w[4];

        tz = w1 ? (size_t)__builtin_clzll(w1) / 8 : 8 + (size_t)__builtin_clzll(w0) / 8;
        w0 |= zeros; /* the characters */
        w1 |= zeros;
        /* drop the <lead> leading zeros in registers */
        w[0] = (w0 >> (8 * lead)) | (w1 << (64 - 8 * lead));
        w[1] = (w1 >> (8 * lead)) | (zeros << (64 - 8 * lead));
        w[2] = zeros;
        w[3] = zeros;
        return fmt_place_words(out, n, w, 16 - lead - tz, (int)(15 - lead) - k);
    }
#else
    {
        char tmp[48];

        memcpy(tmp, &w0, 8);
        memcpy(tmp + 8, &w1, 8);
        memcpy(tmp + 16, "00000000000000000000000000000000", 32);
        for (tz = 0; tmp[15 - tz] == '0'; tz++)
            ;
        return fmt_place(out, n, tmp + lead, 16 - lead - tz, (int)(15 - lead) - k);
    }
#endif
}

/* NaN, Infinity, -Infinity, 0.0 and -0.0 (what has no digits): their text
 * in <out> and its length, or 0 for any other value. */
static size_t fmt_special(char *out, double v)
{
    const char *s;
    size_t n;

    if (isnan(v))
        s = "NaN";
    else if (isinf(v))
        s = v > 0 ? "Infinity" : "-Infinity";
    else if (v == 0)
        s = signbit(v) ? "-0.0" : "0.0";
    else
        return 0;
    n = strlen(s);
    memcpy(out, s, n + 1);
    return n;
}

/*
 * A whole number below <limit> (2^53 for doubles, 2^24 for floats: every
 * integer there has its own value and an interval narrower than 1) is its
 * own shortest form: its digits, trailing zeros dropped. Sets *d.
 */
static inline int fmt_whole(double v, double limit, uint64_t *d)
{
    if (v < limit && v == (double)(uint64_t)v) {
        *d = (uint64_t)v;
        return 1;
    }
    return 0;
}

/* ig_fmt_double past its 8-digit case: <v> (> 0, bits <bits>) after the
 * <n> bytes of the sign. */
static __attribute__((noinline)) size_t fmt_double_rest(char *out, size_t n, uint64_t bits)
{
    uint64_t d;
    double v;
    size_t len = fmt_double_fast(out, n, bits);
    int e;

    if (len > 0)
        return len;
    memcpy(&v, &bits, sizeof(v));
    if (fmt_whole(v, 9007199254740992.0, &d))
        e = 0;
    else if ((e = fmt_shortest_exact(v, &d)) == INT32_MIN)
        e = fmt_shortest_printf(v, &d);
    return fmt_layout(out, n, d, e);
}

size_t ig_fmt_u64(char *out, uint64_t v)
{
    char tmp[IG_FMT_U64_MAX];
    size_t n = 0;

    do
        tmp[IG_FMT_U64_MAX - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    memcpy(out, tmp + IG_FMT_U64_MAX - n, n);
    return n;
}

size_t ig_fmt_double(char *out, double v)
{
    uint64_t bits;
    size_t n;

    memcpy(&bits, &v, sizeof(bits));
    if ((bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull || (bits << 1) == 0)
        return fmt_special(out, v); /* not finite, or zero */
    /* the sign without a branch: '-' written always, kept or not */
    out[0] = '-';
    n = (size_t)(bits >> 63);
    bits &= ~(1ull << 63);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    {
        size_t len = fmt_double_fast8(out, n, bits);

        if (len > 0)
            return len;
    }
#endif
    return fmt_double_rest(out, n, bits);
}

size_t ig_fmt_double_printf(char *out, double v)
{
    uint64_t d;
    size_t n;
    int e;

    if (!isfinite(v) || v == 0)
        return fmt_special(out, v);
    n = 0;
    if (v < 0) {
        out[n++] = '-';
        v = -v;
    }
    e = fmt_shortest_printf(v, &d);
    return fmt_layout(out, n, d, e);
}

/*
 * float32. The digits must read back to <f> both through strtof() and
 * through strtod() narrowed to float: the second rounds twice, and a
 * decimal within half a double's ulp of the midpoint between <f> and a
 * neighbour reads as that midpoint, which the narrowing rounds to even,
 * maybe away from <f> ("7.038531e-26", strtof's shortest for the float
 * 0x1.5d8f6ap-84, reads back through a double as its neighbour). Both
 * readings agree everywhere else.
 */
static int fmt_float_reads_back(const char *s, float f)
{
    return strtof(s, NULL) == f && (float)strtod(s, NULL) == f;
}

/* The decimal nearest <v> at <p> significant digits ("%.*e"): c * 10^e,
 * e returned; the text in tmp. */
static int fmt_nearest(double v, int p, char *tmp, size_t size, uint64_t *c)
{
    snprintf(tmp, size, "%.*e", p - 1, v);
    return fmt_read_e(tmp, c);
}

/*
 * The reference (and the fallback) for a float <f> > 0: the fewest
 * significant digits p (1..9) at which a decimal reads back both ways,
 * and of those the one nearest <f>. The nearest at 9 digits always does
 * (it lies within 5e-9 of <f>, relatively, and the midpoints 3e-8 or more
 * away). Away from a power of two the interval that reads back is
 * symmetric around a normal <f> (the double reading narrows both ends
 * alike: they lie in one binade), so the nearest p-digit decimal is the
 * only candidate at p and, as p grows, once it reads back it always does:
 * a binary search over p. At a power of two (the gap below is half the gap
 * above) and for subnormals every p from 1, each with the nearest decimal,
 * then its neighbour on <f>'s side, then the other one.
 * Sets *d and returns e: the decimal is d * 10^e.
 */
static int fmt_float_shortest_printf(float f, uint64_t *d)
{
    double v = f;
    char tmp[40];
    uint32_t bits;
    int lo = 1, hi = 9, e = 0;

    memcpy(&bits, &f, sizeof(bits));
    if ((bits >> 23) != 0 && ((bits & 0x7fffff) != 0 || (bits >> 23) == 1)) {
        /* the nearest at hi reads back; at lo - 1 it does not */
        while (lo < hi) {
            int mid = (lo + hi) / 2;

            fmt_nearest(v, mid, tmp, sizeof(tmp), d);
            if (fmt_float_reads_back(tmp, f))
                hi = mid;
            else
                lo = mid + 1;
        }
        return fmt_nearest(v, lo, tmp, sizeof(tmp), d);
    }
    for (int p = 1; p <= 9; p++) {
        uint64_t c, cand[2];

        e = fmt_nearest(v, p, tmp, sizeof(tmp), &c);
        if (p == 9 || fmt_float_reads_back(tmp, f)) {
            *d = c;
            return e;
        }
        cand[0] = strtod(tmp, NULL) < v ? c + 1 : c - 1;
        cand[1] = strtod(tmp, NULL) < v ? c - 1 : c + 1;
        for (int i = 0; i < 2; i++) {
            if (cand[i] == 0)
                continue;
            snprintf(tmp, sizeof(tmp), "%llue%d", (unsigned long long)cand[i], e);
            if (fmt_float_reads_back(tmp, f)) {
                *d = cand[i];
                return e;
            }
        }
    }
    return e; /* not reached: p == 9 returns */
}

/*
 * The shortest digits of <f> (> 0, finite) with integer arithmetic, as
 * fmt_shortest_exact does for doubles: fmt_shortest_scaled at 10 or 11
 * digits (float32 needs at most 9), for every float. The decimal must also
 * survive the double reading: it rounds to the double nearest it, and only
 * a decimal within 2^-53 (relative) of an end of the interval rounds to
 * the end itself; at 11 digits that is less than a unit, so only a decimal
 * less than a unit inside an end can: with odd m (ends excluded, and the
 * narrowing of an end goes to the even neighbour) that rare case (the
 * shortest decimal is seldom the last one inside) is left to the printf
 * path. Sets *d and returns e (the decimal is d * 10^e), or INT32_MIN.
 */
static inline int fmt_float_exact(float f, uint64_t *d)
{
    uint32_t bits, ieee_m, ieee_e;
    uint64_t m;
    unsigned mmshift;
    int e2, e, ends, r;

    memcpy(&bits, &f, sizeof(bits));
    ieee_m = bits & 0x7fffff;
    ieee_e = (bits >> 23) & 0xff;
    if (ieee_e == 0) { /* subnormal: m * 2^-149, 2^(e-1) <= f < 2^e */
        m = ieee_m;
        e2 = 1 - 150 - 2;
        e = (64 - __builtin_clzll(m)) - 149;
    } else {
        m = ieee_m | (1u << 23);
        e2 = (int)ieee_e - 150 - 2; /* f = 4m * 2^e2 */
        e = (int)ieee_e - 126;
    }
    mmshift = ieee_m != 0 || ieee_e <= 1 ? 2 : 1;
    r = fmt_shortest_scaled(m, e2, mmshift, 10 - fmt_log10_pow2(e), d, &ends);
    return ends ? INT32_MIN : r;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * Round f = m * 2^(be - 150) times 10^k to an integer *c, half to even,
 * and say whether *c * 10^-k reads back to f: 1 both ways (through
 * strtof when within half an ulp, 2 * dist <= 5^k as fmt_round_check;
 * through a double when farther than half a double's ulp from the ends of
 * that interval, where the double reading could land on an end and the
 * narrowing round it away; an exact tie, 2 * dist == 5^k with an even
 * mantissa, reads as the tie both ways, and both give f), 0 when it does
 * not even through strtof (exactly), -1 when that is not decided here (a
 * decimal near an end, or a scale outside this arithmetic).
 */
static inline int fmt_float_round(uint64_t m, int be, int k, uint64_t *c)
{
    unsigned s = (unsigned)(150 - be - k), up;
    uint64_t p5, rem, half, dist;
    fmt_u128 num;

    if (k < 0 || k > 27 || s - 1 > 62)
        return -1;
    p5 = fmt_p5[k];
    num = (fmt_u128)m * p5; /* < 2^24 * 2^63 */
    *c = ((uint64_t)(num >> 64) << (64 - s)) | ((uint64_t)num >> s);
    rem = (uint64_t)num & ((1ull << s) - 1);
    half = 1ull << (s - 1);
    up = (rem > half) | ((rem == half) & (unsigned)*c);
    dist = up ? (1ull << s) - rem : rem;
    *c += up;
    if (2 * dist > p5 || (2 * dist == p5 && (m & 1)))
        return 0;
    /* half a double's ulp of the end, scaled, is under num / 2^(s + 52) (the
     * end is within 2^-24 of f: a factor of 2 to spare) */
    return (2 * dist < p5 && ((fmt_u128)(p5 - 2 * dist) << 51) > num) || 2 * dist == p5 ? 1
                                                                                      : -1;
}

/*
 * The common case of a float32 (> 0, bits <bits>), as fmt_double_fast
 * does for doubles: round it to 6 significant digits (FLT_DIG: 6-digit
 * decimals lie more than a float's ulp apart, so when the rounding reads
 * back it is the shortest form, padded; 5 with the estimate one high),
 * fmt_float_round deciding. When that rounding does not read back even
 * through strtof, no decimal of 6 digits or fewer does (one would be the
 * nearest 6-digit decimal, padded), so the shortest has 7 or more: the
 * nearest of 7 digits (6 with the estimate high), when it reads back both
 * ways, is the answer. Returns the length written, or 0.
 */
static inline size_t fmt_float_fast(char *out, size_t n, uint32_t bits)
{
    const uint64_t zeros = 0x3030303030303030ull;
    int be = (int)((bits >> 23) & 0xff), k, r;
    uint64_t m = bits & 0x7fffff, c, w0;
    size_t lead, tz;

    if (be <= 1 || be == 0xff || m == 0)
        return 0;
    m |= 1u << 23;
    /* f = m * 2^(be - 150), 2^(be - 127) <= f < 2^(be - 126) */
    k = 5 - fmt_log10_pow2(be - 126);
    r = fmt_float_round(m, be, k, &c);
    if (r == 1 && c < 1000000) {
        /* 10^4 <= c < 10^6: 8 digits with 2 or 3 leading zeros */
        w0 = fmt_digits8((uint32_t)c);
        tz = (size_t)__builtin_clzll(w0) / 8;
        lead = 2 + (c < 100000);
    } else if (r == 0 && fmt_float_round(m, be, ++k, &c) == 1 && c < 10000000) {
        /* 10^5 <= c < 10^7: 8 digits with 1 or 2 leading zeros */
        w0 = fmt_digits8((uint32_t)c);
        tz = (size_t)__builtin_clzll(w0) / 8;
        lead = 1 + (c < 1000000);
    } else {
        return 0;
    }
    return fmt_place8(out, n, (w0 >> (8 * lead)) | zeros, 8 - lead - tz, (int)(7 - lead) - k);
}
#endif

static size_t fmt_float(char *out, float f, int exact_ok)
{
    uint64_t d;
    size_t n;
    int e;

    if (!isfinite(f) || f == 0)
        return fmt_special(out, f);
    n = 0;
    if (f < 0) {
        out[n++] = '-';
        f = -f;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (exact_ok) {
        uint32_t bits;
        size_t len;

        memcpy(&bits, &f, sizeof(bits));
        len = fmt_float_fast(out, n, bits);
        if (len > 0)
            return len;
    }
#endif
    if (exact_ok && fmt_whole(f, 16777216.0, &d))
        e = 0;
    else if (!exact_ok || (e = fmt_float_exact(f, &d)) == INT32_MIN)
        e = fmt_float_shortest_printf(f, &d);
    return fmt_layout(out, n, d, e);
}

size_t ig_fmt_float(char *out, float v)
{
    return fmt_float(out, v, 1);
}

size_t ig_fmt_float_printf(char *out, float v)
{
    return fmt_float(out, v, 0);
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

/*
 * The common short number, in one pass: at most 19 bytes (so at most 19
 * digits: the mantissa is exact in 64 bits), [+-]digits[.digits] and an
 * optional exponent, whose value Clinger's fast path gives. Returns 0 with
 * *out set, -1 when the text is not of this grammar, 1 when it is but the
 * value needs the general path.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * The 4 bytes at <p> as a 4-digit number into *val, or 0 when they are
 * not all digits: a byte is a digit when its high nibble is 3 and adding 6
 * keeps it so; then pairs (d0 * 10 + d1, d2 * 10 + d3) in bytes 0 and 2,
 * and the pairs joined by one multiplication (as simdjson does with 8).
 */
static inline int parse_4digits(const char *p, uint32_t *val)
{
    uint32_t x;

    memcpy(&x, p, sizeof(x));
    if (((x & 0xF0F0F0F0u) | (((x + 0x06060606u) & 0xF0F0F0F0u) >> 4)) != 0x33333333u)
        return 0;
    x -= 0x30303030u;
    x = x * 10 + (x >> 8);
    *val = (((x & 0x00FF00FFu) * 6553601u) >> 16) & 0xFFFFu;
    return 1;
}
#endif

/* Digits from *pp on (before <end>) into *mant, four at a time where it
 * can (on a little-endian machine); *pp moves past them. */
static inline uint64_t parse_digits(const char **pp, const char *end, uint64_t mant)
{
    const char *p = *pp;
    unsigned d;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t q;

    while (end - p >= 4 && parse_4digits(p, &q)) {
        mant = mant * 10000 + q;
        p += 4;
    }
#endif
    for (; p < end && (d = (unsigned)(*p - '0')) < 10; p++)
        mant = mant * 10 + d;
    *pp = p;
    return mant;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The bytes [s, s + n), 1 <= n <= 8, as a little-endian word, zero bytes
 * after them: two 4-byte loads that overlap (the bytes they share are the
 * same, so OR keeps them), or for n < 4 the bytes 0, n / 2 and n - 1
 * (which cover 1 to 3 bytes). Nothing outside the text is read. */
static inline uint64_t parse_load8(const char *s, size_t n)
{
    uint32_t lo, hi;

    if (n >= 4) {
        memcpy(&lo, s, sizeof(lo));
        memcpy(&hi, s + n - 4, sizeof(hi));
        return lo | ((uint64_t)hi << (8 * (n - 4)));
    }
    return (uint64_t)(uint8_t)s[0] | (uint64_t)(uint8_t)s[n / 2] << (8 * (n / 2)) |
           (uint64_t)(uint8_t)s[n - 1] << (8 * (n - 1));
}

/*
 * Bit 7 of each byte of <w> that is not a digit '0'..'9', at least up to
 * the second such byte when the first is a dot: with x = byte ^ '0', a
 * digit has x < 10, so neither x nor x + 0x76 has bit 7 set. A carry out
 * of x + 0x76 comes only from a byte whose x has bit 7 set (no digit, nor
 * the dot: '.' ^ '0' is 0x1e), so it only moves into the bytes after the
 * first other byte that is not the dot, whose flags are not used.
 */
static inline uint64_t parse_nondigits8(uint64_t w)
{
    uint64_t x = w ^ 0x3030303030303030ull;

    return ((x + 0x7676767676767676ull) | x) & 0x8080808080808080ull;
}

/*
 * A number of at most 8 bytes after its sign, [s, s + n) with 1 <= n <= 8
 * (0.123456, 1234.567, -12.5, 3e-05, 42), in one word: the first byte
 * that is no digit is found at once, and when it is the dot, the next
 * one; the dot is squeezed out (the bytes above it move down one) and the
 * digits, at most 8, are valued together as simdjson does. Their value
 * (below 10^8) over or times an exact power of ten is one correctly
 * rounded operation: strtod's result (Clinger). Returns 0 with *out set
 * (the magnitude), or 1 for anything else (no digit, an exponent past
 * +-22 or of another shape): the general path then decides, as before.
 */
/*
 * The digits of <w> (a word of a number's bytes, its sign left out) up
 * to the first byte that is neither a digit nor the first dot: their
 * count in *ndig (0 to 8), the digits after the dot in *frac, and the
 * value (below 10^8) returned. The first byte that is no digit is found
 * at once, and when it is the dot, the next one; the dot is squeezed out
 * (the bytes above it move down one) and the digits (byte ^ '0': the
 * bytes past them are shifted out) are valued together as simdjson does.
 * *pos is where that first other byte is (8: none in the word).
 */
static inline uint64_t parse_run8(uint64_t w, size_t *pos, size_t *ndig, size_t *frac)
{
    uint64_t nd = parse_nondigits8(w), d = w ^ 0x3030303030303030ull, x;
    size_t k = nd ? (unsigned)__builtin_ctzll(nd) / 8 : 8;

    *pos = k;
    *ndig = k;
    *frac = 0;
    if (k < 8 && (uint8_t)(w >> (8 * k)) == '.') {
        uint64_t nd2 = nd & (nd - 1), low = (1ull << (8 * k)) - 1;

        *pos = nd2 ? (unsigned)__builtin_ctzll(nd2) / 8 : 8;
        *ndig = *pos - 1;
        *frac = *pos - 1 - k;
        d = (d & low) | ((d >> 8) & ~low);
    }
    /* the digits at the top, zeros (leading) below them (no digit: a
     * value the callers do not use) */
    x = d << (8 * ((8 - *ndig) & 7));
    x = x * 10 + (x >> 8);
    return (((x & 0x000000ff000000ffull) * 0x000f424000000064ull) +
            (((x >> 16) & 0x000000ff000000ffull) * 0x0000271000000001ull)) >>
           32;
}

/*
 * A number of at most 8 bytes after its sign, [s, s + n) with 1 <= n <= 8
 * (0.123456, 1234.567, -12.5, 3e-05, 42), in one word (parse_run8). Its
 * digits' value (below 10^8) over or times an exact power of ten is one
 * correctly rounded operation: strtod's result (Clinger). Returns 0 with
 * *out set (the magnitude), or 1 for anything else (no digit, an
 * exponent past +-22 or of another shape): the general path then
 * decides, as before.
 */
static inline int parse_swar8(const char *s, size_t n, double *out)
{
    size_t pos, ndig, frac;
    uint64_t x = parse_run8(parse_load8(s, n), &pos, &ndig, &frac);
    int e10 = -(int)frac, eval;

    if (ndig == 0)
        return 1;
    if (pos < n) {
        if (parse_exponent(s + pos, s + n, &eval) < 0)
            return 1;
        e10 += eval;
        if (e10 < -22 || e10 > 22)
            return 1;
    }
    *out = e10 < 0 ? (double)x / parse_p10[-e10] : (double)x * parse_p10[e10];
    return 0;
}
#endif

static inline int parse_short(const char *s, size_t n, double *out)
{
    const char *p = s, *end = s + n, *d0, *f0;
    uint64_t mant = 0;
    int neg = 0, exp10 = 0, eval;
    double v;

    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    d0 = p;
    mant = parse_digits(&p, end, 0);
    f0 = p;
    if (p < end && *p == '.') {
        f0 = ++p;
        mant = parse_digits(&p, end, mant);
        exp10 = -(int)(p - f0);
        if (p - f0 == 0 && f0 - 1 == d0)
            return -1; /* "." or "-.": no digit on either side */
    } else if (p == d0) {
        return -1;
    }
    if (p < end) {
        if (parse_exponent(p, end, &eval) < 0)
            return -1;
        exp10 += eval;
    }
    if (mant > (1ull << 53) || exp10 < -22 || exp10 > 22)
        return 1;
    v = (double)mant;
    v = exp10 < 0 ? v / parse_p10[-exp10] : v * parse_p10[exp10];
    *out = neg ? -v : v;
    return 0;
}

/* ig_parse_double past parse_swar8: kept out of line, so that the common
 * case has no frame to set up for the rest. */
static __attribute__((noinline)) int parse_general(const char *s, size_t n, double *out)
{
    const char *p = s, *end = s + n;
    uint64_t mant = 0;
    int neg = 0, digits = 0, sig = 0, exp10 = 0, eval, dropped = 0;
    char tmp[PARSE_COPY_MAX + 1];
    char *stop;
    double v;

    if (n <= 19) {
        int r = parse_short(s, n, out);

        if (r <= 0)
            return r;
    }
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

int ig_parse_double(const char *s, size_t n, double *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    char c0 = n > 0 ? s[0] : 0;
    size_t sign = (c0 == '-') | (c0 == '+');
    double v;

    if (n - sign - 1 < 8 && parse_swar8(s + sign, n - sign, &v) == 0) {
        *out = c0 == '-' ? -v : v;
        return 0;
    }
#endif
    return parse_general(s, n, out);
}

/* ig_parse_double_field's general way, out of line (the fast one then
 * needs no frame): find <sep>, parse what is before it. */
static __attribute__((noinline)) int parse_field_slow(const char *s, size_t n, char sep,
                                                      size_t *len, double *out)
{
    const char *e = n > 0 ? memchr(s, sep, n) : NULL;

    *len = e != NULL ? (size_t)(e - s) : n;
    return ig_parse_double(s, *len, out);
}

/*
 * The fast way of ig_parse_double_field: 1 when the field was read (*len,
 * *out set), 0 when the general way must decide.
 */
static inline __attribute__((always_inline)) int parse_field_fast(const char *s, size_t n,
                                                                  char sep, size_t *len,
                                                                  double *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    char c0 = n > 0 ? s[0] : 0;
    size_t sign = (c0 == '-') | (c0 == '+'), m = n - sign, pos, ndig, frac;
    uint64_t w, x;

    if (m >= 8)
        memcpy(&w, s + sign, sizeof(w));
    else
        w = m > 0 ? parse_load8(s + sign, m) : 0;
    x = parse_run8(w, &pos, &ndig, &frac);
    /* the digits (and dot) end at the end, or at <sep> (in the word or
     * just after it): then that is the field, and parse_swar8 would read
     * it so */
    if (ndig > 0 && (pos == m || (pos < m && s[sign + pos] == sep))) {
        double v = (double)x / parse_p10[frac];

        *out = c0 == '-' ? -v : v;
        *len = sign + pos;
        return 1;
    }
    /* or at an exponent of 1 to 3 digits, then the end or <sep>: 3e-05 */
    if (ndig > 0 && pos < m && (s[sign + pos] | 0x20) == 'e') {
        size_t q = sign + pos + 1, q0;
        int eneg = 0, ev = 0, e10;
        double v;

        if (q < n && (s[q] == '-' || s[q] == '+'))
            eneg = s[q++] == '-';
        for (q0 = q; q < n && q - q0 < 4 && (unsigned)(s[q] - '0') < 10; q++)
            ev = ev * 10 + (s[q] - '0');
        e10 = (eneg ? -ev : ev) - (int)frac;
        if (q - q0 - 1 < 3 && (q == n || s[q] == sep) && e10 >= -22 && e10 <= 22) {
            v = e10 < 0 ? (double)x / parse_p10[-e10] : (double)x * parse_p10[e10];
            *out = c0 == '-' ? -v : v;
            *len = q;
            return 1;
        }
    }
#else
    (void)s;
    (void)n;
    (void)sep;
    (void)len;
    (void)out;
#endif
    return 0;
}

int ig_parse_double_field(const char *s, size_t n, char sep, size_t *len, double *out)
{
    if (parse_field_fast(s, n, sep, len, out))
        return 0;
    return parse_field_slow(s, n, sep, len, out);
}

int ig_parse_double_row(const char *s, size_t n, char sep, double *vals, size_t max,
                        size_t *count)
{
    size_t p = 0, k = 0;

    for (;;) {
        size_t len;
        double v;

        if (k == max)
            return -1;
        if (!parse_field_fast(s + p, n - p, sep, &len, &v) &&
            (parse_field_slow(s + p, n - p, sep, &len, &v) < 0 || !isfinite(v)))
            return -1;
        vals[k++] = v;
        p += len;
        if (p == n)
            break;
        p++; /* the separator */
    }
    *count = k;
    return 0;
}

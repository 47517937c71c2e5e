/*
 * fuzz_number.c - the number parser and formatter of buf.c against libc.
 *
 * ig_parse_double on the whole input:
 *   - it accepts exactly the grammar of buf.h,
 *     [+-]digits[.digits][(e|E)[+-]digits], digits on at least one side of
 *     the dot, of any length;
 *   - whatever it accepts it reads to the same bits as strtod().
 * ig_fmt_double on the parsed value and on every 8-byte window of the
 * input taken as a double (any bit pattern: NaNs, subnormals, ...):
 *   - the text is what ig_fmt_double_printf writes;
 *   - strtod() and ig_parse_double read it back to the same bits;
 *   - it fits IG_FMT_DOUBLE_MAX and its length is returned.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "infergate/buf.h"

#define FUZZ_FMT_WINDOWS 16 /* 8-byte windows formatted per input */

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* The grammar of buf.h, written out independently of buf.c. */
static bool grammar_matches(const uint8_t *s, size_t n)
{
    size_t i = 0, int_digits = 0, frac_digits = 0, exp_digits = 0;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && is_digit(s[i]))
        i++, int_digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i]))
            i++, frac_digits++;
    }
    if (int_digits + frac_digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < n && is_digit(s[i]))
            i++, exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    return i == n;
}

static uint64_t bits_of(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

static void check_format(double v)
{
    char a[IG_FMT_DOUBLE_MAX + 8], b[IG_FMT_DOUBLE_MAX + 8];
    size_t na, nb;
    double back;
    char *end;

    memset(a, 0x7f, sizeof(a));
    na = ig_fmt_double(a, v);
    FUZZ_CHECK(na < IG_FMT_DOUBLE_MAX, "ig_fmt_double(%a) wrote %zu bytes", v, na);
    FUZZ_CHECK(strlen(a) == na, "ig_fmt_double(%a) returned %zu for \"%s\"", v, na, a);
    nb = ig_fmt_double_printf(b, v);
    FUZZ_CHECK(na == nb && strcmp(a, b) == 0,
               "ig_fmt_double(%a) = \"%s\" but ig_fmt_double_printf = \"%s\"", v, a, b);
    if (isnan(v)) {
        FUZZ_CHECK(strcmp(a, "NaN") == 0, "NaN printed as \"%s\"", a);
        return;
    }
    if (isinf(v)) {
        FUZZ_CHECK(strcmp(a, v > 0 ? "Infinity" : "-Infinity") == 0, "%g printed as \"%s\"", v,
                   a);
        return;
    }
    back = strtod(a, &end);
    FUZZ_CHECK(*end == '\0' && bits_of(back) == bits_of(v),
               "ig_fmt_double(%a) = \"%s\", which strtod reads as %a", v, a, back);
    back = 0;
    FUZZ_CHECK(ig_parse_double(a, na, &back) == 0 && bits_of(back) == bits_of(v),
               "ig_fmt_double(%a) = \"%s\", which ig_parse_double reads as %a", v, a, back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: ASan sees any read past the input */
    char *s = malloc(size ? size : 1);
    char *z = malloc(size + 1);
    bool grammar = grammar_matches(data, size);
    double v = 0, ref;
    char *end;
    int rv;

    FUZZ_CHECK(s != NULL && z != NULL, "malloc");
    memcpy(s, data, size);
    memcpy(z, data, size);
    z[size] = '\0';
    rv = ig_parse_double(s, size, &v);
    FUZZ_CHECK(rv == 0 || rv == -1, "ig_parse_double returned %d", rv);
    if (rv == 0) {
        FUZZ_CHECK(grammar, "ig_parse_double accepts \"%s\" (%zu bytes), outside the grammar", z,
                   size);
        ref = strtod(z, &end);
        FUZZ_CHECK(end == z + size, "strtod stops at byte %zu of \"%s\"", (size_t)(end - z), z);
        FUZZ_CHECK(bits_of(v) == bits_of(ref), "\"%s\": ig_parse_double %a (%.17g), strtod %a",
                   z, v, v, ref);
        check_format(v);
    } else {
        FUZZ_CHECK(!grammar,
                   "ig_parse_double refuses \"%s\" (%zu bytes), which the grammar allows", z,
                   size);
    }
    for (size_t i = 0, w = 0; i + sizeof(double) <= size && w < FUZZ_FMT_WINDOWS;
         i += sizeof(double), w++) {
        double d;

        memcpy(&d, data + i, sizeof(d));
        check_format(d);
    }
    free(z);
    free(s);
    return 0;
}

/*
 * check.c - comparing an answer with the model's predictions (igload.h):
 * the numbers of a CSV or JSON answer, in order, against the expected ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "igload.h"

static int igl_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int igl_is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || igl_is_digit(c);
}

/* strtod on a bounded span: copy the number's characters (at most 63). */
static size_t igl_parse_number(const char *p, size_t n, double *v)
{
    char tmp[64];
    size_t k = 0;
    char *end;

    while (k < n && k < sizeof(tmp) - 1) {
        char c = p[k];
        if (!(igl_is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            break;
        tmp[k] = c;
        k++;
    }
    tmp[k] = '\0';
    *v = strtod(tmp, &end);
    if (end == tmp) /* "-" alone, "." alone */
        return 1;
    /* skip whatever number characters strtod left (a very long number) */
    k = (size_t)(end - tmp);
    while (k < n && (igl_is_digit(p[k]) || p[k] == '.' || p[k] == 'e' || p[k] == 'E'))
        k++;
    /* letters stuck to it ("2.0abc"): not a number the model wrote */
    if (k < n && igl_is_word(p[k])) {
        *v = NAN;
        while (k < n && igl_is_word(p[k]))
            k++;
    }
    return k;
}

const char *igl_next_number(const char *p, const char *end, double *v)
{
    while (p < end) {
        char c = *p;
        size_t left = (size_t)(end - p);
        int start = igl_is_digit(c) ||
                    ((c == '-' || c == '.') && left > 1 &&
                     (igl_is_digit(p[1]) || (p[1] == '.' && left > 2)));
        if (!start) {
            if (c == '"') {
                /* a JSON string (a key like "a1") holds no number */
                for (p++; p < end && *p != '"'; p++)
                    if (*p == '\\' && p + 1 < end)
                        p++;
                p += p < end;
                continue;
            }
            if (igl_is_word(c)) {
                /* a bare word (NaN, Infinity, null, junk) where a model
                 * writes numbers: counted as a number that matches none */
                while (p < end && igl_is_word(*p))
                    p++;
                *v = NAN;
                return p;
            }
            p++;
            continue;
        }
        return p + igl_parse_number(p, left, v);
    }
    return NULL;
}

size_t igl_scan_numbers(const char *p, size_t n, double *out, size_t cap)
{
    const char *end = p + n;
    size_t count = 0;
    double v;

    while ((p = igl_next_number(p, end, &v)) != NULL) {
        if (count < cap)
            out[count] = v;
        count++;
    }
    return count;
}

int igl_num_close(double a, double b)
{
    double d = fabs(a - b);
    double m = fmax(fabs(a), fabs(b));

    if (a == b)
        return 1;
    /* an overflow (1e999) or NaN is close to nothing: inf - inf is not
     * "within 1e-6 of inf" */
    if (!isfinite(a) || !isfinite(b))
        return 0;
    return d <= 1e-6 * m || d <= 1e-12;
}

/*
 * json_scan.c - a validating JSON walk that builds no tree (json_scan.h).
 */
#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include "infergate/json_scan.h"


/* End of the JSON number at p, or NULL (RFC 8259's grammar). */
static const char *json_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end || !isdigit((unsigned char)*p))
        return NULL;
    if (*p == '0')
        p++;
    else
        while (p < end && isdigit((unsigned char)*p))
            p++;
    if (p < end && *p == '.') {
        if (++p >= end || !isdigit((unsigned char)*p))
            return NULL;
        while (p < end && isdigit((unsigned char)*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !isdigit((unsigned char)*p))
            return NULL;
        while (p < end && isdigit((unsigned char)*p))
            p++;
    }
    return p;
}

/* End of the JSON string at p (its opening quote), or NULL. */
/* The length of the well-formed UTF-8 sequence at <p> (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t json_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static const char *json_str_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        unsigned char ch = (unsigned char)*p;

        if (ch == '"')
            return p + 1;
        if (ch < 0x20)
            return NULL;
        if (ch >= 0x80) { /* JSON text is UTF-8 (RFC 8259 8.1) */
            size_t n = json_utf8_len((const unsigned char *)p, (const unsigned char *)end);

            if (n == 0)
                return NULL;
            p += n - 1;
            continue;
        }
        if (ch == '\\') {
            if (++p >= end || *p == '\0' || strchr("\"\\/bfnrtu", *p) == NULL)
                return NULL;
            if (*p == 'u') {
                for (int k = 0; k < 4; k++)
                    if (++p >= end || !isxdigit((unsigned char)*p))
                        return NULL;
            }
        }
    }
    return NULL;
}

/* End of the JSON value at p (< end), or NULL when it is not one: a
 * validating walk (matched brackets, keys that are strings, numbers and
 * literals as the grammar has them), no tree built. */
static const char *json_skip_at(const char *p, const char *end, int depth)
{
    p = ig_json_ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        return json_str_end(p, end);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';

        if (depth >= IG_JSON_SCAN_DEPTH)
            return NULL;
        p = ig_json_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (p >= end || *p != '"' || (p = json_str_end(p, end)) == NULL)
                    return NULL;
                p = ig_json_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            if ((p = json_skip_at(p, end, depth + 1)) == NULL)
                return NULL;
            p = ig_json_ws(p, end);
            if (p < end && *p == close)
                return p + 1;
            if (p >= end || *p != ',')
                return NULL;
            p = ig_json_ws(p + 1, end);
        }
    }
    case 't':
        return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_number(p, end);
    }
}

const char *ig_json_skip(const char *p, const char *end)
{
    return json_skip_at(p, end, 0);
}

const char *ig_json_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

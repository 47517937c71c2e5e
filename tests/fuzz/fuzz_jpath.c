/*
 * fuzz_jpath.c - the batch transform's InputFilter/OutputFilter (jpath.c):
 * ig_jpath_parse on a client's expression, then ig_jpath_csv or
 * ig_jpath_json on a client's record. Both come from the request (the
 * CreateTransformJob call, the streaming transform's X-Infergate-*-Filter
 * headers, the rows of the data).
 *
 * Input: byte 0: bit 0 the record is JSON (else CSV), bits 1-2 the output
 * cap (unbounded, 0 bytes, 7 bytes, 64 bytes past the prefix); then the
 * expression up to the first '\n' (NUL bytes and all), then the record.
 *
 * Checked beyond the sanitizers:
 *   - parse (of the expression up to its first NUL, as a C string): 0
 *     with a filter whose ig_jpath_expr is the expression (at most 63
 *     bytes), or IG_ERR_INVALID, no filter and a message "Filter ...";
 *   - apply: 0, IG_ERR_INVALID or IG_ERR_TOOBIG; on failure the output
 *     buffer is byte for byte what it was and the message is not empty;
 *     "$" on a CSV record appends the record itself;
 *   - JSON against jansson (RFC 8259 as the gateway's other JSON readers
 *     take it): a record jansson refuses (but for a number too large for
 *     it), or holds a NUL byte, is refused; whatever a filter outputs,
 *     jansson reads; and when
 *     jansson reads the record with no repeated key, it is at most 64
 *     levels deep and the filter is a chain of member and index steps,
 *     the filter succeeds exactly when jansson finds that value, and
 *     outputs that value.
 */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/jpath.h"

#define FUZZ_ERR 160
#define FUZZ_PREFIX "prefix|"

/* Levels of open arrays and objects (a scalar: 0). */
static int depth(const json_t *v)
{
    int d = 0;

    if (json_is_array(v)) {
        size_t i;
        json_t *e;

        json_array_foreach(v, i, e)
        {
            int k = depth(e);

            d = k > d ? k : d;
            if (d > IG_JPATH_JSON_DEPTH)
                break;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;

        json_object_foreach((json_t *)v, k, e)
        {
            int n = depth(e);

            d = n > d ? n : d;
            if (d > IG_JPATH_JSON_DEPTH)
                break;
        }
        return d + 1;
    }
    return 0;
}

/* jansson's errors about numbers it cannot hold, which jpath accepts. */
static bool number_error(const json_error_t *e)
{
    return strstr(e->text, "number overflow") != NULL || strstr(e->text, "too big") != NULL;
}

/*
 * Walk <v> by <expr> when it is $ followed by .name, ['name'], ["name"]
 * and [i] steps only: 1 and *<res> (NULL when a step finds nothing);
 * 0 when the expression has other steps (not modelled here).
 */
static int reference(const char *expr, json_t *v, json_t **res)
{
    const char *p = expr + 1;

    if (expr[0] != '$')
        return 0;
    while (*p != '\0') {
        if (*p == '.') {
            char name[64];
            size_t n = 0;

            for (p++; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                      (n > 0 && *p >= '0' && *p <= '9');
                 p++)
                name[n++] = *p;
            if (n == 0)
                return 0;
            name[n] = '\0';
            v = v != NULL && json_is_object(v) ? json_object_get(v, name) : NULL;
        } else if (p[0] == '[' && (p[1] == '\'' || p[1] == '"')) {
            const char *q = strchr(p + 2, p[1]);
            char name[64];

            if (q == NULL || q[1] != ']' || (size_t)(q - p - 2) >= sizeof(name))
                return 0;
            memcpy(name, p + 2, (size_t)(q - p - 2));
            name[q - p - 2] = '\0';
            v = v != NULL && json_is_object(v) ? json_object_get(v, name) : NULL;
            p = q + 2;
        } else if (p[0] == '[') {
            char *e;
            long long i = strtoll(p + 1, &e, 10);

            if (e == p + 1 || *e != ']' || p[1] == '+' || p[1] == ' ' ||
                (p[1] == '-' && (p[2] < '0' || p[2] > '9')) || i > INT32_MAX || i < INT32_MIN)
                return 0;
            if (v != NULL && json_is_array(v)) {
                long long n = (long long)json_array_size(v);

                if (i < 0)
                    i += n;
                v = i >= 0 && i < n ? json_array_get(v, (size_t)i) : NULL;
            } else {
                v = NULL;
            }
            p = e + 1;
        } else {
            return 0;
        }
    }
    *res = v;
    return 1;
}

static void check_json(const struct ig_jpath *jp, const char *expr, const char *rec, size_t len,
                       int rc, const struct ig_buf *out, size_t prefix, const char *err)
{
    json_error_t je;
    json_t *v = json_loadb(rec, len, JSON_DECODE_ANY, &je), *got, *want = NULL;
    json_t *strict;
    bool numbers = v == NULL && number_error(&je);

    if (v == NULL && !numbers)
        FUZZ_CHECK(rc != 0, "jansson refuses the record (%s), the filter accepts it", je.text);
    /* A NUL byte is no JSON text, whatever follows it; jansson stops
     * reading there. */
    if (memchr(rec, '\0', len) != NULL) {
        FUZZ_CHECK(rc != 0, "a record with a NUL byte accepted");
        json_decref(v);
        return;
    }
    if (rc == 0) {
        got = json_loadb(out->data + prefix, out->len - prefix, JSON_DECODE_ANY, &je);
        FUZZ_CHECK(got != NULL || numbers,
                   "the output is not JSON (%s): %.*s", je.text, (int)(out->len - prefix),
                   out->data + prefix);
        if (got != NULL && v != NULL && strcmp(expr, "$") == 0)
            FUZZ_CHECK(json_equal(got, v), "$ outputs another value");
        json_decref(got);
    }
    if (v == NULL)
        return;
    strict = json_loadb(rec, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (strict != NULL && depth(strict) > IG_JPATH_JSON_DEPTH)
        FUZZ_CHECK(rc != 0, "a record %d levels deep accepted", depth(strict));
    else if (strict != NULL && reference(expr, strict, &want)) {
        if (want == NULL) {
            FUZZ_CHECK(rc == IG_ERR_INVALID, "jansson finds nothing at %s, the filter rc %d",
                       expr, rc);
        } else if (rc != IG_ERR_TOOBIG) {
            FUZZ_CHECK(rc == 0, "jansson finds a value at %s, the filter says: %s", expr, err);
            got = json_loadb(out->data + prefix, out->len - prefix, JSON_DECODE_ANY, &je);
            FUZZ_CHECK(got != NULL && json_equal(got, want), "%s: the filter outputs %.*s", expr,
                       (int)(out->len - prefix), out->data + prefix);
            json_decref(got);
        }
    }
    (void)jp;
    json_decref(strict);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[] = {SIZE_MAX, 0, 7, 64};
    const uint8_t *nl;
    char *expr, err[FUZZ_ERR];
    const char *rec;
    size_t elen, len, prefix = strlen(FUZZ_PREFIX), cap;
    struct ig_jpath *jp = NULL;
    struct ig_buf out;
    bool json;
    int rc;

    if (size < 1 || size > 256 * 1024)
        return 0;
    json = data[0] & 1;
    cap = caps[(data[0] >> 1) & 3];
    nl = memchr(data + 1, '\n', size - 1);
    elen = nl ? (size_t)(nl - data - 1) : size - 1;
    if (elen > 256)
        return 0;
    expr = ig_xmalloc(elen + 1);
    memcpy(expr, data + 1, elen);
    expr[elen] = '\0';
    rec = nl ? (const char *)nl + 1 : "";
    len = nl ? size - (size_t)(nl + 1 - data) : 0;

    memset(err, 'x', sizeof(err));
    rc = ig_jpath_parse(expr, &jp, err, sizeof(err));
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL || rc == 0, "unterminated message");
    if (rc != 0) {
        FUZZ_CHECK(rc == IG_ERR_INVALID && jp == NULL, "parse rc %d", rc);
        FUZZ_CHECK(strncmp(err, "Filter ", 7) == 0, "parse message: %s", err);
        free(expr);
        return 0;
    }
    FUZZ_CHECK(jp != NULL && strlen(expr) <= IG_JPATH_EXPR_MAX &&
                   strcmp(ig_jpath_expr(jp), expr) == 0,
               "accepted %zu bytes, expr '%s'", strlen(expr), jp ? ig_jpath_expr(jp) : "(null)");

    ig_buf_init(&out, cap == SIZE_MAX ? SIZE_MAX / 2 : prefix + cap);
    FUZZ_CHECK(ig_buf_append(&out, FUZZ_PREFIX, prefix) == 0, "prefix");
    memset(err, 'x', sizeof(err));
    rc = json ? ig_jpath_json(jp, rec, len, &out, err, sizeof(err))
              : ig_jpath_csv(jp, rec, len, &out, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == IG_ERR_INVALID || rc == IG_ERR_TOOBIG, "apply rc %d", rc);
    if (rc != 0) {
        FUZZ_CHECK(out.len == prefix && memcmp(out.data, FUZZ_PREFIX, prefix) == 0,
                   "a failure changed the output (%zu bytes)", out.len);
        FUZZ_CHECK(rc == IG_ERR_TOOBIG || (memchr(err, '\0', sizeof(err)) != NULL && err[0]),
                   "apply message");
    } else if (!json && strcmp(expr, "$") == 0 && cap == SIZE_MAX) {
        FUZZ_CHECK(out.len == prefix + len && memcmp(out.data + prefix, rec, len) == 0,
                   "$ on a CSV record is not the record");
    }
    if (json && (cap == SIZE_MAX || rc == 0))
        check_json(jp, expr, rec, len, rc, &out, prefix, err);
    ig_buf_clear(&out);
    ig_jpath_free(jp);
    free(expr);
    return 0;
}

/*
 * codec_json.c - application/jsonlines and application/json request bodies
 * into rows and features.
 *
 * jansson validates the syntax and gives the numbers. It gives no byte
 * offsets, so for application/json a small bounded scanner walks the
 * already-validated body to find the exact text of each instance element.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "infergate/codec.h"
#include "infergate/common.h"

/* Deepest nesting the slice scanner follows. */
#define CODEC_JSON_MAX_DEPTH 64

#define CODEC_JSON_LOAD_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

struct codec_json_ctx {
    uint32_t dim;
    unsigned char *seen; /* dim flags for sparse keys, allocated on first use */
    struct ig_codec_error *err;
    int ints_as_real; /* the text last loaded had to be read with integers as reals */
};

/*
 * json_loadb, but an integer beyond int64 (123456789012345678901234567890
 * is a fine feature value) does not fail the text: jansson refuses it
 * unless told to read every integer as a real, so the text is read again
 * that way. Only such texts pay the second parse.
 */
static json_t *codec_json_load(struct codec_json_ctx *c, const char *b, size_t len,
                               json_error_t *jerr)
{
    json_t *v = json_loadb(b, len, CODEC_JSON_LOAD_FLAGS, jerr);

    c->ints_as_real = 0;
    if (v == NULL && json_error_code(jerr) == json_error_numeric_overflow) {
        v = json_loadb(b, len, CODEC_JSON_LOAD_FLAGS | JSON_DECODE_INT_AS_REAL, jerr);
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

int ig_codec_decode_jsonl(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                          struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct codec_json_ctx c = {.dim = dim, .seen = NULL, .err = err};
    size_t pos = 0;
    int rv = 0;

    while (pos < len) {
        uint32_t row = rs->nrows + 1;
        const char *nl = memchr(body + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - body) : len, next = nl ? end + 1 : len, s;
        double *feat = NULL;
        json_error_t jerr;
        json_t *v;

        if (end > pos && body[end - 1] == '\r')
            end--;
        rv = ig_rowset_push(rs, max_rows, (uint32_t)pos, &feat, err);
        if (rv < 0)
            goto out;
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
        v = codec_json_load(&c, body + pos, end - pos, &jerr);
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
 * The slice scanner. It runs only on a body jansson accepted, but is
 * written for any input: it never reads at or past len and fails (-1)
 * rather than guess.
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
 * Returns 0, -1 (malformed), -2 (nested deeper than CODEC_JSON_MAX_DEPTH). */
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

static int codec_json_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Does the raw (still escaped) key text [k, k + n) decode to the ASCII
 * string <lit>? */
static int codec_json_key_is(const char *k, size_t n, const char *lit)
{
    size_t i = 0, j = 0, ll = strlen(lit);

    while (i < n) {
        char ch = k[i++];

        if (ch == '\\') {
            if (i == n)
                return 0;
            ch = k[i++];
            if (ch == 'u') {
                int code = 0;

                if (n - i < 4)
                    return 0;
                for (int h = 0; h < 4; h++) {
                    int x = codec_json_hex(k[i++]);

                    if (x < 0)
                        return 0;
                    code = code * 16 + x;
                }
                if (code == 0 || code > 0x7e)
                    return 0; /* lit is printable ASCII */
                ch = (char)code;
            } else if (ch != '"' && ch != '\\' && ch != '/') {
                return 0; /* \b \f \n \r \t: not in lit */
            }
        }
        if (j == ll || lit[j++] != ch)
            return 0;
    }
    return j == ll;
}

/* In the top-level object, find the value of <key>: leave s->pos on it. */
static int codec_json_scan_find_key(struct codec_json_scan *s, const char *key)
{
    codec_json_scan_ws(s);
    if (s->pos >= s->len || s->b[s->pos] != '{')
        return -1;
    s->pos++;
    for (;;) {
        size_t ks;
        int rv;

        codec_json_scan_ws(s);
        if (s->pos >= s->len || s->b[s->pos] != '"')
            return -1;
        ks = s->pos + 1;
        if (codec_json_scan_string(s) < 0)
            return -1;
        rv = codec_json_key_is(s->b + ks, s->pos - 1 - ks, key);
        codec_json_scan_ws(s);
        if (s->pos >= s->len || s->b[s->pos] != ':')
            return -1;
        s->pos++;
        codec_json_scan_ws(s);
        if (rv)
            return 0;
        rv = codec_json_scan_value(s, 1);
        if (rv < 0)
            return rv;
        codec_json_scan_ws(s);
        if (s->pos >= s->len || s->b[s->pos] != ',')
            return -1;
        s->pos++;
    }
}

/* Where a JSON body's rows come from. */
enum codec_json_layout {
    CODEC_JSON_SINGLE = 0,    /* the whole body is one row */
    CODEC_JSON_INSTANCES = 1, /* each element of "instances" */
    CODEC_JSON_ELEMENTS = 2,  /* each element of the top-level array */
};

static int codec_json_scan_error(struct ig_codec_error *err, int rv)
{
    if (rv == -2)
        ig_codec_error_set(err, 0, "Request body nests deeper than %d levels.",
                           CODEC_JSON_MAX_DEPTH);
    else
        ig_codec_error_set(err, 0, "Request body could not be split into rows.");
    return IG_ERR_INVALID;
}

/*
 * The next row: scan the value at the cursor (nested <depth> levels deep,
 * for the depth cap) to get its exact slice, push it, and decode <v>, the
 * same value as jansson parsed it, into the row's features.
 */
static int codec_json_take_row(struct codec_json_ctx *c, struct codec_json_scan *s, int depth,
                               struct ig_rowset *rs, uint32_t max_rows, const json_t *v)
{
    double *feat = NULL;
    size_t start;
    int rv;

    codec_json_scan_ws(s);
    start = s->pos;
    rv = codec_json_scan_value(s, depth);
    if (rv < 0)
        return codec_json_scan_error(c->err, rv);
    rv = ig_rowset_push(rs, max_rows, (uint32_t)start, &feat, c->err);
    if (rv < 0)
        return rv;
    rs->rows[rs->nrows - 1].len = (uint32_t)(s->pos - start);
    return codec_json_row(c, rs->nrows, v, feat);
}

int ig_codec_decode_json(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                         struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct codec_json_ctx c = {.dim = dim, .seen = NULL, .err = err};
    struct codec_json_scan s = {.b = body, .len = len, .pos = 0};
    enum codec_json_layout layout;
    const json_t *arr = NULL;
    const char *nul;
    json_error_t jerr;
    json_t *root = NULL;
    size_t n, i;
    int rv;

    nul = memchr(body, '\0', len);
    if (nul != NULL) {
        ig_codec_error_set(err, 0, "Request body contains a NUL byte at offset %zu.",
                           (size_t)(nul - body));
        return IG_ERR_INVALID;
    }
    root = codec_json_load(&c, body, len, &jerr);
    if (root == NULL) {
        ig_codec_error_set(err, 0, "Request body is not valid JSON: %s at line %d column %d.",
                           jerr.text, jerr.line, jerr.column);
        return IG_ERR_INVALID;
    }

    if (json_is_object(root) && (arr = json_object_get(root, "instances")) != NULL) {
        if (!json_is_array(arr)) {
            ig_codec_error_set(err, 0, "'instances' must be an array.");
            rv = IG_ERR_INVALID;
            goto out;
        }
        layout = CODEC_JSON_INSTANCES;
    } else if (json_is_object(root) && (json_object_get(root, "features") != NULL ||
                                        json_object_get(root, "data") != NULL)) {
        layout = CODEC_JSON_SINGLE;
    } else if (json_is_array(root)) {
        arr = root;
        layout = json_array_size(root) > 0 && json_is_number(json_array_get(root, 0))
                     ? CODEC_JSON_SINGLE
                     : CODEC_JSON_ELEMENTS;
    } else {
        ig_codec_error_set(err, 0,
                           "Expected an object with 'instances', an object with 'features', "
                           "or an array.");
        rv = IG_ERR_INVALID;
        goto out;
    }

    if (layout == CODEC_JSON_SINGLE) {
        rv = codec_json_take_row(&c, &s, 0, rs, max_rows, root);
        goto out;
    }

    n = json_array_size(arr);
    if (n == 0) {
        ig_codec_error_set(err, 0, "Request has no rows.");
        rv = IG_ERR_INVALID;
        goto out;
    }
    if (n > max_rows) {
        ig_codec_error_set(err, 0, "Request has more than %u rows.", max_rows);
        rv = IG_ERR_TOOBIG;
        goto out;
    }
    if (layout == CODEC_JSON_INSTANCES) {
        rv = codec_json_scan_find_key(&s, "instances");
        if (rv < 0) {
            rv = codec_json_scan_error(err, rv);
            goto out;
        }
    } else {
        codec_json_scan_ws(&s);
    }
    if (s.pos >= len || body[s.pos] != '[') {
        rv = codec_json_scan_error(err, -1);
        goto out;
    }
    s.pos++;
    for (i = 0; i < n; i++) {
        rv = codec_json_take_row(&c, &s, layout == CODEC_JSON_INSTANCES ? 2 : 1, rs, max_rows,
                                 json_array_get(arr, i));
        if (rv < 0)
            goto out;
        codec_json_scan_ws(&s);
        if (s.pos >= len || body[s.pos] != (i + 1 < n ? ',' : ']')) {
            rv = codec_json_scan_error(err, -1);
            goto out;
        }
        s.pos++;
    }
    rv = 0;

out:
    ig_free(&c.seen);
    json_decref(root);
    return rv;
}

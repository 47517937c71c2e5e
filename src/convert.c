/*
 * convert.c - request rows and predictions from one wire format into
 * another (convert.h says what each mapping writes).
 *
 * Rows: each input row is read into a vector (dense values, or sparse
 * keys and values with a width when the format carries one), then
 * written in the target format, appended to one output buffer. The
 * vector's storage is reused from row to row and is bounded by the row's
 * own text (one number takes at least one byte); the only growth a row's
 * text does not bound is a sparse row written densely, capped at
 * IG_CONVERT_MAX_WIDTH columns and by the output buffer's cap.
 *
 * Predictions: one answer is read by a small scanner (JSON: no tree is
 * built) and, for a text target, written number by number as it is read;
 * a RecordIO target collects the outputs (names and doubles, at most what
 * the output has room for) and writes one record. A RecordIO answer is
 * unpacked by protobuf-c under a cap tied to the output's room.
 *
 * Numbers keep their exact value: text is parsed with ig_parse_double
 * (what strtod and jansson give) and printed with the shortest text that
 * reads back to the same double (ig_fmt_double), or to the same float32
 * for values that came from a float32 tensor.
 */
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/convert.h"
#include "infergate/json_scan.h"
#include "infergate/recordio.h"
#include "proto/record.pb-c.h"

/* Characters of a bad field or answer quoted in an error message. */
#define CONVERT_SHOW_MAX 40
/* Outputs of one answer written as RecordIO labels
 * (ig_recordio_encode_labels' limit). */
#define CONVERT_MAX_OUTPUTS 1024u
#define CONVERT_JSON_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
/* An answer the scanner cannot read is given to jansson, for its own
 * words, only up to this size (a tree of at most ~80 times it). */
#define CONVERT_JSON_ERR_MAX 65536u
/* What protobuf-c may take unpacking an answer beyond twice the room its
 * text has (the structures of its labels: about 200 bytes each). */
#define CONVERT_PB_SLACK ((size_t)1 << 20)

/* How a number was written where it came from, and so how it is printed. */
enum convert_kind {
    CONVERT_REAL = 0, /* ig_fmt_double */
    CONVERT_F32 = 1,  /* a float32: ig_fmt_float */
    CONVERT_INT = 2,  /* an integer of text or an int32 tensor: as an integer */
};

/* ---- numbers ---- */

/* Print one number of kind <kind> into <out> (IG_FMT_DOUBLE_MAX bytes). */
static size_t convert_fmt(char *out, double v, int64_t i, int kind)
{
    if (kind == CONVERT_INT)
        return (size_t)snprintf(out, IG_FMT_DOUBLE_MAX, "%" PRId64, i);
    if (kind == CONVERT_F32)
        return ig_fmt_float(out, (float)v);
    return ig_fmt_double(out, v);
}

/* Append <pre> (<npre> bytes, at most 24: a separator, a libsvm index)
 * then the number, in one append. */
static int convert_put(struct ig_buf *b, const char *pre, size_t npre, double v, int64_t i,
                       int kind)
{
    char tmp[24 + IG_FMT_DOUBLE_MAX];

    memcpy(tmp, pre, npre);
    return ig_buf_append(b, tmp, npre + convert_fmt(tmp + npre, v, i, kind));
}

/* " <k>:" into <out> (24 bytes); its length. */
static size_t convert_index_text(char *out, uint64_t k)
{
    size_t n = ig_fmt_u64(out + 1, k);

    out[0] = ' ';
    out[n + 1] = ':';
    return n + 2;
}

static int convert_is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int convert_is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int convert_is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* [+-]digits within int64: *out. 0, or -1 when the text is not that. */
static int convert_int_text(const char *s, size_t n, int64_t *out)
{
    uint64_t m = 0, lim;
    size_t p = 0;
    int neg = 0;

    if (p < n && (s[p] == '+' || s[p] == '-'))
        neg = s[p++] == '-';
    if (p == n)
        return -1;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < n; p++) {
        unsigned d = (unsigned)(s[p] - '0');

        if (d > 9 || m > (lim - d) / 10)
            return -1;
        m = m * 10 + d;
    }
    *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return 0;
}

/*
 * A JSON number at b[*pos] (JSON's grammar: no '+', no leading zeros,
 * digits on both sides of a dot). Moves *pos past it and sets *v (and,
 * for an integer within int64, *i and *kind CONVERT_INT, as jansson reads
 * it: "-0" is the integer 0). Returns 0, or -1 when there is no number
 * there or it is not finite (jansson refuses 1e999).
 */
static int convert_json_num(const char *b, size_t len, size_t *pos, double *v, int64_t *i,
                            int *kind)
{
    size_t p = *pos, s = p;
    int integer = 1;

    if (p < len && b[p] == '-')
        p++;
    if (p >= len)
        return -1;
    if (b[p] == '0') {
        p++;
    } else if (b[p] >= '1' && b[p] <= '9') {
        while (p < len && convert_is_digit(b[p]))
            p++;
    } else {
        return -1;
    }
    if (p < len && b[p] == '.') {
        integer = 0;
        if (++p >= len || !convert_is_digit(b[p]))
            return -1;
        while (p < len && convert_is_digit(b[p]))
            p++;
    }
    if (p < len && (b[p] == 'e' || b[p] == 'E')) {
        integer = 0;
        if (++p < len && (b[p] == '+' || b[p] == '-'))
            p++;
        if (p >= len || !convert_is_digit(b[p]))
            return -1;
        while (p < len && convert_is_digit(b[p]))
            p++;
    }
    if (integer && convert_int_text(b + s, p - s, i) == 0) {
        *v = (double)*i;
        *kind = CONVERT_INT;
    } else {
        if (ig_parse_double(b + s, p - s, v) < 0 || !isfinite(*v))
            return -1;
        *kind = CONVERT_REAL;
    }
    *pos = p;
    return 0;
}

/* An unpacked record and the allocator it lives in. */
struct convert_rec {
    struct ig_recordio_pb_mem mem;
    ProtobufCAllocator alloc;
    Aialgs__Data__Record *r;
};

static void convert_rec_free(struct convert_rec *cr)
{
    if (cr->r != NULL)
        aialgs__data__record__free_unpacked(cr->r, &cr->alloc);
    cr->r = NULL;
}

/* Unpack <len> bytes into cr->r, protobuf-c taking at most
 * IG_RECORDIO_PB_MEM_FACTOR times them (plus 4 KiB) and at most <max>.
 * <what>: the record as messages name it ("the record", "the model's
 * RecordIO answer"). */
static int convert_rec_unpack(struct convert_rec *cr, const void *data, size_t len, size_t max,
                              uint32_t row, const char *what, struct ig_codec_error *err)
{
    size_t cap;

    cr->r = NULL;
    if (len > (SIZE_MAX - 4096) / IG_RECORDIO_PB_MEM_FACTOR) {
        ig_recordio_pb_allocator(&cr->mem, 0, &cr->alloc);
        ig_codec_error_set(err, row, "Row %u: %s is too large to decode.", row, what);
        return IG_ERR_TOOBIG;
    }
    cap = len * IG_RECORDIO_PB_MEM_FACTOR + 4096;
    ig_recordio_pb_allocator(&cr->mem, cap > max ? max : cap, &cr->alloc);
    cr->r = aialgs__data__record__unpack(&cr->alloc, len, data);
    if (cr->r != NULL)
        return 0;
    if (cr->mem.over) {
        ig_codec_error_set(err, row, "Row %u: %s is too large to decode.", row, what);
        return IG_ERR_TOOBIG;
    }
    if (cr->mem.nomem) {
        ig_codec_error_set(err, row, "Row %u: out of memory decoding %s.", row, what);
        return IG_ERR_NOMEM;
    }
    ig_codec_error_set(err, row,
                       "Row %u: %s is not a valid RecordIO-protobuf Record (the protobuf does not "
                       "parse).",
                       row, what);
    return IG_ERR_INVALID;
}

/* A tensor of a Value, whatever its type. */
struct convert_tensor {
    int type; /* AIALGS__DATA__VALUE__VALUE_* */
    size_t n;
    const void *values;
    size_t nkeys;
    const uint64_t *keys;
    size_t nshape;
    const uint64_t *shape;
};

/* The tensor of <v> (may be NULL); -1 when it holds none. */
static int convert_tensor_of(const Aialgs__Data__Value *v, struct convert_tensor *t)
{
    memset(t, 0, sizeof(*t));
    if (v == NULL)
        return -1;
    t->type = v->value_case;
#define CONVERT_TENSOR(field)                                                                      \
    do {                                                                                           \
        t->n = v->field->n_values;                                                                 \
        t->values = v->field->values;                                                              \
        t->nkeys = v->field->n_keys;                                                               \
        t->keys = v->field->keys;                                                                  \
        t->nshape = v->field->n_shape;                                                             \
        t->shape = v->field->shape;                                                                \
    } while (0)
    switch (v->value_case) {
    case AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR:
        CONVERT_TENSOR(float32_tensor);
        return 0;
    case AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR:
        CONVERT_TENSOR(float64_tensor);
        return 0;
    case AIALGS__DATA__VALUE__VALUE_INT32_TENSOR:
        CONVERT_TENSOR(int32_tensor);
        return 0;
    default:
        return -1;
    }
#undef CONVERT_TENSOR
}

/* Value <i> of <t>, with the kind it is printed as. */
static double convert_tensor_at(const struct convert_tensor *t, size_t i, int64_t *iv, int *kind)
{
    switch (t->type) {
    case AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR:
        *kind = CONVERT_F32;
        return ((const float *)t->values)[i];
    case AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR:
        *kind = CONVERT_REAL;
        return ((const double *)t->values)[i];
    default:
        *kind = CONVERT_INT;
        *iv = ((const int32_t *)t->values)[i];
        return (double)*iv;
    }
}

/* ====================================================================== */
/* ---- request rows ---- */

/* One row, read. A dense row's positions are its indices: it has no
 * keys (8 bytes a value, not 16). */
struct convert_vec {
    double *vals;
    uint64_t *keys; /* sparse: 0-based, strictly increasing */
    size_t n;       /* values (sparse: entries) */
    size_t cap;     /* of vals */
    size_t kcap;    /* of keys */
    uint64_t width;    /* sparse: the row's width, when has_width */
    uint8_t sparse;    /* keys hold the positions */
    uint8_t has_width; /* sparse: the row said its width */
    uint8_t f32;       /* the values are float32 (a RecordIO float32 tensor) */
};

struct convert_ctx {
    const struct ig_rowset *in;
    enum ig_format from, to;
    uint32_t width;
    uint8_t out_base;
    struct ig_buf *body;
    struct ig_codec_error *err;
    struct convert_vec vec;
    struct ig_recordio_dec *dec; /* from RecordIO */
    uint32_t row;                /* the row being converted, 1-based */
    size_t nrec;                 /* records of the current row's slice */
};

static int convert_fail(struct convert_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "Row N: <what>" (IG_ERR_INVALID). */
static int convert_fail(struct convert_ctx *c, const char *fmt, ...)
{
    char what[224];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    ig_codec_error_set(c->err, c->row, "Row %u: %s", c->row, what);
    return IG_ERR_INVALID;
}

static int convert_nomem(struct ig_codec_error *err)
{
    ig_codec_error_set(err, 0, "Out of memory converting the request.");
    return IG_ERR_NOMEM;
}

/* An append to the output failed with <rv>: say why. */
static int convert_wfail(struct convert_ctx *c, int rv)
{
    if (rv == IG_ERR_TOOBIG)
        ig_codec_error_set(c->err, 0,
                           "The request's rows, converted to %s, would take more than %zu bytes.",
                           ig_codec_format_mime(c->to), c->body->max);
    else if (rv == IG_ERR_NOMEM)
        return convert_nomem(c->err);
    return rv;
}

static void convert_vec_reset(struct convert_vec *x)
{
    x->n = 0;
    x->width = 0;
    x->sparse = 0;
    x->has_width = 0;
    x->f32 = 0;
}

/* Room for <need> entries (keys too when the row is sparse). */
static int convert_vec_reserve(struct convert_ctx *c, size_t need)
{
    struct convert_vec *x = &c->vec;

    if (need > SIZE_MAX / sizeof(uint64_t))
        return convert_nomem(c->err);
    if (need > x->cap) {
        double *nv = ig_try_realloc(x->vals, need * sizeof(*nv));

        if (nv == NULL)
            return convert_nomem(c->err);
        x->vals = nv;
        x->cap = need;
    }
    if (x->sparse && need > x->kcap) {
        uint64_t *nk = ig_try_realloc(x->keys, need * sizeof(*nk));

        if (nk == NULL)
            return convert_nomem(c->err);
        x->keys = nk;
        x->kcap = need;
    }
    return 0;
}

/* Append one entry (<key> kept when the row is sparse: set x->sparse
 * before the first). */
static int convert_vec_push(struct convert_ctx *c, uint64_t key, double v)
{
    struct convert_vec *x = &c->vec;

    if (x->n == x->cap || (x->sparse && x->n == x->kcap)) {
        int rv = convert_vec_reserve(c, x->n > 32 ? x->n * 2 : 64);

        if (rv < 0)
            return rv;
    }
    if (x->sparse)
        x->keys[x->n] = key;
    x->vals[x->n++] = v;
    return 0;
}

/* ---- reading: text/csv ---- */

static int convert_read_csv_general(struct convert_ctx *c, const char *s, size_t n);

/*
 * The common row: unquoted fields with no blank at either end, each a
 * number ig_parse_double reads as finite. Their slices are exactly those
 * the general reader gives ig_parse_double, so the values are its; any
 * other row (an error included) is read again from its start by the
 * general reader, whose results and messages are so unchanged. The
 * vector's room is taken once: a row of n bytes holds at most n / 2 + 1
 * fields (an empty one is an error).
 */
static int convert_read_csv(struct convert_ctx *c, const char *s, size_t n)
{
    struct convert_vec *x = &c->vec;
    size_t need = n / 2 + 1;
    int rv;

    if (need > x->cap) {
        rv = convert_vec_reserve(c, need);
        if (rv < 0)
            return rv;
    }
    /* a field empty, quoted or with a blank at an end is no number to
     * ig_parse_double either */
    if (ig_parse_double_row(s, n, ',', x->vals, x->cap, &x->n) == 0)
        return 0;
    x->n = 0;
    return convert_read_csv_general(c, s, n);
}

static int convert_read_csv_general(struct convert_ctx *c, const char *s, size_t n)
{
    size_t p = 0;
    uint32_t col = 0;
    int rv;

    for (;;) {
        size_t fs, fe;
        int esc = 0;
        double v;

        col++;
        while (p < n && convert_is_space(s[p]))
            p++;
        if (p < n && s[p] == '"') {
            fs = ++p;
            for (;;) {
                while (p < n && s[p] != '"')
                    p++;
                if (p + 1 < n && s[p + 1] == '"') {
                    esc = 1; /* "" is a quote: no number */
                    p += 2;
                    continue;
                }
                break;
            }
            fe = p;
            while (p < n && s[p] != ',')
                p++;
        } else {
            fs = p;
            while (p < n && s[p] != ',')
                p++;
            fe = p;
        }
        while (fe > fs && convert_is_space(s[fe - 1]))
            fe--;
        while (fs < fe && convert_is_space(s[fs]))
            fs++;
        if (fe == fs && !esc) {
            ig_codec_error_set(c->err, c->row, "Row %u, column %u: empty field.", c->row, col);
            return IG_ERR_INVALID;
        }
        if (esc || ig_parse_double(s + fs, fe - fs, &v) < 0 || !isfinite(v)) {
            size_t k = fe - fs;

            ig_codec_error_set(c->err, c->row, "Row %u, column %u: '%.*s%s' is not a number.",
                               c->row, col, (int)(k > CONVERT_SHOW_MAX ? CONVERT_SHOW_MAX : k),
                               s + fs, k > CONVERT_SHOW_MAX ? "..." : "");
            return IG_ERR_INVALID;
        }
        rv = convert_vec_push(c, col - 1, v);
        if (rv < 0)
            return rv;
        if (p < n && s[p] == ',') {
            p++;
            continue;
        }
        return 0;
    }
}

/* ---- reading: JSON rows ---- */

/* The common row [1, 2.5, ...]: 1 (read), 0 (not of that form: jansson
 * reads it), or an error. */
static int convert_json_fast(struct convert_ctx *c, const char *b, size_t len, size_t p)
{
    p++;
    while (p < len && convert_is_ws(b[p]))
        p++;
    if (p < len && b[p] == ']') {
        p++;
    } else {
        for (;;) {
            double v;
            int64_t iv;
            int kind, rv;

            if (convert_json_num(b, len, &p, &v, &iv, &kind) < 0)
                return 0;
            rv = convert_vec_push(c, c->vec.n, v);
            if (rv < 0)
                return rv;
            while (p < len && convert_is_ws(b[p]))
                p++;
            if (p < len && b[p] == ']') {
                p++;
                break;
            }
            if (p >= len || b[p] != ',')
                return 0;
            p++;
            while (p < len && convert_is_ws(b[p]))
                p++;
        }
    }
    while (p < len && convert_is_ws(b[p]))
        p++;
    return p == len ? 1 : 0;
}

/* An integer: a JSON integer or, read with integers as reals, an
 * integral real within int64. */
static int convert_json_int(const json_t *v, int ints_as_real, json_int_t *out)
{
    double r;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (!ints_as_real || !json_is_real(v))
        return 0;
    r = json_real_value(v);
    if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0) || r != floor(r))
        return 0;
    *out = (json_int_t)r;
    return 1;
}

static int convert_json_dense(struct convert_ctx *c, const json_t *arr)
{
    size_t n = json_array_size(arr);

    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        int rv;

        if (!json_is_number(v))
            return convert_fail(c, "feature %zu is not a number.", i + 1);
        rv = convert_vec_push(c, i, json_number_value(v));
        if (rv < 0)
            return rv;
    }
    return 0;
}

static int convert_pair_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sort the sparse entries by key (JSON keys may come in any order); a
 * repeated key is an error. */
static int convert_vec_sort(struct convert_ctx *c)
{
    struct convert_vec *x = &c->vec;
    uint64_t *tmp;
    size_t i;

    for (i = 1; i < x->n && x->keys[i - 1] < x->keys[i]; i++)
        ;
    if (i >= x->n)
        return 0;
    /* (key, value bits) pairs, sorted by key */
    if (x->n > SIZE_MAX / (2 * sizeof(*tmp)))
        return convert_nomem(c->err);
    tmp = ig_try_malloc(x->n * 2 * sizeof(*tmp));
    if (tmp == NULL)
        return convert_nomem(c->err);
    for (i = 0; i < x->n; i++) {
        tmp[2 * i] = x->keys[i];
        memcpy(&tmp[2 * i + 1], &x->vals[i], sizeof(double));
    }
    qsort(tmp, x->n, 2 * sizeof(*tmp), convert_pair_cmp);
    for (i = 0; i < x->n; i++) {
        if (i > 0 && tmp[2 * i] == tmp[2 * i - 2]) {
            uint64_t k = tmp[2 * i];

            free(tmp);
            return convert_fail(c, "key %" PRIu64 " appears twice.", k);
        }
        x->keys[i] = tmp[2 * i];
        memcpy(&x->vals[i], &tmp[2 * i + 1], sizeof(double));
    }
    free(tmp);
    return 0;
}

static int convert_json_sparse(struct convert_ctx *c, const json_t *keys, const json_t *values,
                               json_int_t d, int ints_as_real)
{
    size_t nk, nv;
    int rv;

    if (!json_is_array(keys))
        return convert_fail(c, "'keys' must be an array of integers.");
    nk = json_array_size(keys);
    nv = json_array_size(values);
    if (nk != nv)
        return convert_fail(c, "'keys' has %zu entries but 'values' has %zu.", nk, nv);
    c->vec.sparse = 1;
    for (size_t i = 0; i < nk; i++) {
        const json_t *v = json_array_get(values, i);
        json_int_t kv;

        if (!convert_json_int(json_array_get(keys, i), ints_as_real, &kv))
            return convert_fail(c, "'keys' must be an array of integers.");
        if (kv < 0 || kv >= d)
            return convert_fail(c, "key %" JSON_INTEGER_FORMAT " is out of range for %u features.",
                                kv, (uint32_t)d);
        if (!json_is_number(v))
            return convert_fail(c, "value %zu is not a number.", i + 1);
        rv = convert_vec_push(c, (uint64_t)kv, json_number_value(v));
        if (rv < 0)
            return rv;
    }
    c->vec.has_width = 1;
    c->vec.width = (uint64_t)d;
    return convert_vec_sort(c);
}

static const char convert_json_form_msg[] =
    "expected an array of numbers or an object with 'features'.";

/* A row as jansson read it: the forms codec_json.c takes. */
static int convert_json_tree(struct convert_ctx *c, const json_t *v, int ints_as_real)
{
    const json_t *f, *d, *keys, *shape, *values;
    json_int_t dv = -1;

    if (json_is_array(v))
        return convert_json_dense(c, v);
    if (!json_is_object(v))
        return convert_fail(c, "%s", convert_json_form_msg);
    f = json_object_get(v, "features");
    if (f == NULL) {
        d = json_object_get(v, "data");
        if (d == NULL)
            return convert_fail(c, "%s", convert_json_form_msg);
        f = json_object_get(d, "features");
        if (f == NULL)
            return convert_fail(c, "'data' must be an object with 'features'.");
    }
    if (json_is_array(f))
        return convert_json_dense(c, f);
    if (!json_is_object(f))
        return convert_fail(c, "'features' must be an array of numbers.");
    values = json_object_get(f, "values");
    keys = json_object_get(f, "keys");
    shape = json_object_get(f, "shape");
    if (!json_is_array(values))
        return convert_fail(c, "'values' must be an array of numbers.");
    if (keys != NULL && shape == NULL)
        return convert_fail(c, "sparse 'features' needs a 'shape'.");
    if (shape != NULL) {
        if (!json_is_array(shape) || json_array_size(shape) != 1 ||
            !convert_json_int(json_array_get(shape, 0), ints_as_real, &dv))
            return convert_fail(c, "'shape' must be an array of one integer.");
        if (dv < 0 || (uint64_t)dv > UINT32_MAX)
            return convert_fail(c, "the shape [%" JSON_INTEGER_FORMAT "] is out of range.", dv);
    }
    if (keys != NULL)
        return convert_json_sparse(c, keys, values, dv, ints_as_real);
    if (shape != NULL && (size_t)dv != json_array_size(values))
        return convert_fail(c, "expected %" JSON_INTEGER_FORMAT " features, found %zu.", dv,
                            json_array_size(values));
    return convert_json_dense(c, values);
}

static int convert_read_json(struct convert_ctx *c, const char *s, size_t n)
{
    size_t p = 0;
    json_error_t jerr;
    int ints_as_real = 0, rv;
    json_t *v;

    while (p < n && convert_is_ws(s[p]))
        p++;
    if (p < n && s[p] == '[') {
        rv = convert_json_fast(c, s, n, p);
        if (rv != 0)
            return rv < 0 ? rv : 0;
        c->vec.n = 0;
    }
    v = json_loadb(s, n, CONVERT_JSON_FLAGS, &jerr);
    if (v == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        v = json_loadb(s, n, CONVERT_JSON_FLAGS | JSON_DECODE_INT_AS_REAL, &jerr);
        ints_as_real = 1;
    }
    if (v == NULL)
        return convert_fail(c, "invalid JSON: %s at column %d.", jerr.text, jerr.column);
    rv = convert_json_tree(c, v, ints_as_real);
    json_decref(v);
    return rv;
}

/* ---- reading: RecordIO ---- */

/* The shape's element count; -1 past UINT64_MAX. */
static int convert_shape_size(const uint64_t *shape, size_t n, uint64_t *out)
{
    uint64_t p = 1;

    for (size_t i = 0; i < n; i++) {
        if (shape[i] != 0 && p > UINT64_MAX / shape[i])
            return -1;
        p *= shape[i];
    }
    *out = p;
    return 0;
}

/* features["values"] of the record into the vector, checked as
 * ig_recordio_record_to_row checks it. */
static int convert_rec_tensor(struct convert_ctx *c, const struct convert_tensor *t)
{
    uint64_t size = 0;
    int sparse = t->nkeys > 0 || (t->n == 0 && t->nshape > 0), rv;

    if (t->nshape > 0 && convert_shape_size(t->shape, t->nshape, &size) < 0)
        return convert_fail(c, "the shape of features[\"values\"] is too large.");
    if (sparse) {
        if (t->nshape == 0)
            return convert_fail(c, "sparse features[\"values\"] (keys) without a shape.");
        if (t->nkeys != t->n)
            return convert_fail(c, "sparse features[\"values\"] has %zu keys for %zu values.",
                                t->nkeys, t->n);
    } else if (t->nshape > 0 && size != t->n) {
        return convert_fail(c, "features[\"values\"] holds %zu values for a shape of %" PRIu64
                               " elements.",
                            t->n, size);
    }
    c->vec.sparse = (uint8_t)sparse;
    rv = convert_vec_reserve(c, t->n); /* exactly: the tensor says how many */
    if (rv < 0)
        return rv;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t k = sparse ? t->keys[i] : i;
        int64_t iv;
        int kind;
        double v = convert_tensor_at(t, i, &iv, &kind);

        if (sparse && k >= size)
            return convert_fail(c, "sparse key %" PRIu64 " is out of range (shape of %" PRIu64
                                   " elements).",
                                k, size);
        if (sparse && i > 0 && k <= t->keys[i - 1])
            return convert_fail(c, "sparse keys are not strictly increasing (%" PRIu64
                                   " after %" PRIu64 ").",
                                k, t->keys[i - 1]);
        if (!isfinite(v))
            return convert_fail(c, "feature %" PRIu64 " is not a finite number.", k + 1);
        rv = convert_vec_push(c, k, v);
        if (rv < 0)
            return rv;
    }
    c->vec.has_width = (uint8_t)sparse;
    c->vec.width = size;
    c->vec.f32 = t->type == AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
    return 0;
}

static int convert_rec_row_cb(const struct ig_recordio_rec *rec, void *arg)
{
    struct convert_ctx *c = arg;
    struct convert_rec cr;
    const Aialgs__Data__Value *v = NULL;
    struct convert_tensor t;
    int rv;

    if (c->nrec++ > 0)
        return convert_fail(c, "the row holds more than one RecordIO record.");
    rv = convert_rec_unpack(&cr, rec->data, rec->len, SIZE_MAX, c->row, "the record", c->err);
    if (rv < 0)
        return rv;
    for (size_t i = 0; i < cr.r->n_features; i++) {
        const Aialgs__Data__Record__FeaturesEntry *e = cr.r->features[i];

        if (e->key != NULL && strcmp(e->key, IG_RECORDIO_KEY_VALUES) == 0)
            v = e->value;
    }
    if (v == NULL)
        rv = convert_fail(c, "the record has no features[\"values\"] tensor.");
    else if (convert_tensor_of(v, &t) < 0)
        rv = convert_fail(c, "features[\"values\"] is not a float32, float64 or int32 tensor.");
    else
        rv = convert_rec_tensor(c, &t);
    convert_rec_free(&cr);
    return rv;
}

static int convert_read_recordio(struct convert_ctx *c, const char *s, size_t n)
{
    int rv;

    c->nrec = 0;
    if (c->dec == NULL)
        (void)ig_recordio_dec_new(IG_RECORDIO_MAX_FRAME, &c->dec);
    rv = ig_recordio_dec_feed(c->dec, s, n, convert_rec_row_cb, c, c->err);
    if (rv == 0)
        rv = ig_recordio_dec_end(c->dec, c->err);
    if (rv < 0)
        return rv;
    if (c->nrec != 1)
        return convert_fail(c, "the row holds no RecordIO record.");
    return 0;
}

/* ---- reading: libsvm ---- */

static int convert_libsvm_pair(void *arg, uint32_t key, double value)
{
    return convert_vec_push(arg, key, value);
}

static int convert_read_libsvm(struct convert_ctx *c, const char *s, size_t n)
{
    c->vec.sparse = 1;
    /* <width>, when known, bounds the indices (with the decoder's words) */
    return ig_libsvm_row(s, n, c->row, c->in->index_base, c->width, convert_libsvm_pair, c,
                         c->err);
}

/* ---- writing ---- */

/* The width a sparse row is written with: its own, else <width>. */
static int convert_sparse_width(struct convert_ctx *c, uint64_t *w)
{
    if (c->vec.has_width) {
        *w = c->vec.width;
        return 0;
    }
    if (c->width > 0) {
        *w = c->width;
        return 0;
    }
    return convert_fail(c,
                        "a libsvm row has no width; set the endpoint option feature_dim to the "
                        "model's feature count to convert it to %s.",
                        ig_codec_format_mime(c->to));
}

/* <n> missing entries of a densified row: "0" each, <sep>-separated, the
 * first after a separator unless <at_start>. Written in bulk (a million
 * columns are a few memcpy calls, not a million appends: ~10x faster). */
static int convert_put_zeros(struct ig_buf *b, uint64_t n, int at_start, char sep)
{
    char pat[512]; /* sep '0' sep '0' ... */
    size_t total, done = 0, off = at_start ? 1 : 0;
    int rv;

    if (n == 0)
        return 0;
    if (n > (SIZE_MAX - 1) / 2)
        return IG_ERR_TOOBIG;
    total = (size_t)n * 2 - off;
    rv = ig_buf_reserve(b, total);
    if (rv < 0)
        return rv;
    for (size_t i = 0; i < sizeof(pat); i += 2) {
        pat[i] = sep;
        pat[i + 1] = '0';
    }
    /* every piece but the first starts at a separator and ends at a '0' */
    while (done < total) {
        size_t k = total - done;

        if (k > sizeof(pat) - off)
            k = sizeof(pat) - off;
        memcpy(b->data + b->len + done, pat + off, k);
        done += k;
        off = 0;
    }
    b->len += total;
    b->data[b->len] = '\0';
    return 0;
}

/* A sparse row as <w> dense values, "0" for the missing ones. */
static int convert_write_densified(struct convert_ctx *c, uint64_t w, char sep)
{
    const struct convert_vec *x = &c->vec;
    uint64_t i = 0; /* the next column */
    int kind = x->f32 ? CONVERT_F32 : CONVERT_REAL, rv;

    if (w > IG_CONVERT_MAX_WIDTH)
        return convert_fail(c, "a sparse row of %" PRIu64 " features is too wide to write as %s "
                               "(at most %u).",
                            w, ig_codec_format_mime(c->to), IG_CONVERT_MAX_WIDTH);
    /* at least two bytes a column: refused before it is written */
    if (w * 2 > c->body->max - c->body->len)
        return convert_wfail(c, IG_ERR_TOOBIG);
    for (size_t k = 0; k < x->n && x->keys[k] < w; k++) {
        uint64_t key = x->keys[k];

        rv = convert_put_zeros(c->body, key - i, i == 0, sep);
        if (rv == 0)
            rv = convert_put(c->body, &sep, key > 0, x->vals[k], 0, kind);
        if (rv < 0)
            return convert_wfail(c, rv);
        i = key + 1;
    }
    rv = convert_put_zeros(c->body, w - i, i == 0, sep);
    return rv < 0 ? convert_wfail(c, rv) : 0;
}

/* The values, <sep>-separated (a dense row, or a sparse row's values). */
static int convert_write_values(struct convert_ctx *c, char sep)
{
    const struct convert_vec *x = &c->vec;
    int kind = x->f32 ? CONVERT_F32 : CONVERT_REAL, rv = 0;

    for (size_t i = 0; rv == 0 && i < x->n; i++)
        rv = convert_put(c->body, &sep, i > 0, x->vals[i], 0, kind);
    return rv < 0 ? convert_wfail(c, rv) : 0;
}

static int convert_write_csv(struct convert_ctx *c)
{
    uint64_t w = 0;
    int rv;

    if (!c->vec.sparse) {
        if (c->vec.n == 0)
            return convert_fail(c, "a row of no features cannot be written as text/csv.");
        return convert_write_values(c, ',');
    }
    rv = convert_sparse_width(c, &w);
    if (rv < 0)
        return rv;
    if (w == 0)
        return convert_fail(c, "a row of no features cannot be written as text/csv.");
    return convert_write_densified(c, w, ',');
}

static int convert_write_json(struct convert_ctx *c)
{
    struct ig_buf *b = c->body;
    uint64_t w = 0;
    int rv;

    if (!c->vec.sparse) {
        rv = ig_buf_append_char(b, '[');
        if (rv == 0)
            rv = convert_write_values(c, ',');
        if (rv == 0)
            rv = ig_buf_append_char(b, ']');
        return rv < 0 ? convert_wfail(c, rv) : 0;
    }
    rv = convert_sparse_width(c, &w);
    if (rv < 0)
        return rv;
    if (w > UINT32_MAX)
        return convert_fail(c, "the sparse shape of %" PRIu64 " elements is too large.", w);
    rv = ig_buf_append_str(b, "{\"features\":{\"keys\":[");
    for (size_t i = 0; rv == 0 && i < c->vec.n; i++) {
        if (i > 0)
            rv = ig_buf_append_char(b, ',');
        if (rv == 0)
            rv = ig_buf_printf(b, "%" PRIu64, c->vec.keys[i]);
    }
    if (rv == 0)
        rv = ig_buf_printf(b, "],\"shape\":[%" PRIu64 "],\"values\":[", w);
    if (rv == 0)
        rv = convert_write_values(c, ',');
    if (rv == 0)
        rv = ig_buf_append_str(b, "]}}");
    return rv < 0 ? convert_wfail(c, rv) : 0;
}

static int convert_write_recordio(struct convert_ctx *c)
{
    const struct convert_vec *x = &c->vec;
    uint64_t w = 0;
    int rv;

    for (size_t i = 0; i < x->n; i++)
        if (!isfinite((float)x->vals[i])) {
            char tmp[IG_FMT_DOUBLE_MAX];

            ig_fmt_double(tmp, x->vals[i]);
            return convert_fail(c, "the value %s does not fit a float32 (%s carries float32 "
                                   "features).",
                                tmp, ig_codec_format_mime(IG_FMT_RECORDIO));
        }
    if (x->sparse) {
        rv = convert_sparse_width(c, &w);
        if (rv < 0)
            return rv;
        if (w > UINT32_MAX)
            return convert_fail(c, "the sparse shape of %" PRIu64 " elements is too large.", w);
    }
    /* a sparse row of no entries has no keys array: still sparse, shape [w] */
    rv = ig_recordio_encode_row(c->body, x->vals,
                                x->sparse ? (x->keys != NULL ? x->keys : &w) : NULL, x->n,
                                (uint32_t)w);
    return rv < 0 ? convert_wfail(c, rv) : 0;
}

static int convert_write_libsvm(struct convert_ctx *c)
{
    const struct convert_vec *x = &c->vec;
    int kind = x->f32 ? CONVERT_F32 : CONVERT_REAL, rv;

    rv = ig_buf_append_char(c->body, '0');
    for (size_t i = 0; rv == 0 && i < x->n; i++) {
        uint64_t k = (x->sparse ? x->keys[i] : i) + c->out_base;
        char pre[24];

        /* zeros are what a missing index means; -0.0 is kept as it is */
        if (x->vals[i] == 0 && !signbit(x->vals[i]))
            continue;
        if (k > UINT32_MAX)
            return convert_fail(c, "feature index %" PRIu64 " is too large for text/libsvm "
                                   "(at most 4294967295).",
                                k);
        rv = convert_put(c->body, pre, convert_index_text(pre, k), x->vals[i], 0, kind);
    }
    return rv < 0 ? convert_wfail(c, rv) : 0;
}

/* Read the row [s, s + n) of <from> into c->vec. */
static int convert_read(struct convert_ctx *c, const char *s, size_t n)
{
    convert_vec_reset(&c->vec);
    switch (c->from) {
    case IG_FMT_CSV:
        return convert_read_csv(c, s, n);
    case IG_FMT_JSONL:
    case IG_FMT_JSON:
        return convert_read_json(c, s, n);
    case IG_FMT_RECORDIO:
        return convert_read_recordio(c, s, n);
    case IG_FMT_LIBSVM:
        return convert_read_libsvm(c, s, n);
    default:
        return IG_ERR_UNSUPPORTED;
    }
}

static int convert_write(struct convert_ctx *c)
{
    switch (c->to) {
    case IG_FMT_CSV:
        return convert_write_csv(c);
    case IG_FMT_JSONL:
    case IG_FMT_JSON:
        return convert_write_json(c);
    case IG_FMT_RECORDIO:
        return convert_write_recordio(c);
    case IG_FMT_LIBSVM:
        return convert_write_libsvm(c);
    default:
        return IG_ERR_UNSUPPORTED;
    }
}

/* Convert (or, <copy>, copy) row <i> of <in>, appending it and its
 * separator; push its slice to <out>. */
static int convert_one(struct convert_ctx *c, uint32_t i, int copy, struct ig_rowset *out)
{
    const struct ig_row *r = &c->in->rows[i];
    const char *s = c->in->body + r->off;
    size_t start, end;
    int rv;

    c->row = i + 1;
    if (c->to == IG_FMT_JSON && i > 0 && (rv = ig_buf_append_char(c->body, ',')) < 0)
        return convert_wfail(c, rv);
    start = c->body->len;
    if (start > UINT32_MAX)
        return convert_wfail(c, IG_ERR_TOOBIG);
    rv = ig_rowset_push(out, c->in->nrows, (uint32_t)start, NULL, c->err);
    if (rv < 0)
        return rv;
    if (copy) {
        rv = ig_buf_append(c->body, s, r->len);
        if (rv < 0)
            return convert_wfail(c, rv);
    } else {
        rv = convert_read(c, s, r->len);
        if (rv == 0)
            rv = convert_write(c);
        if (rv < 0)
            return rv;
    }
    end = c->body->len;
    if (end - start > UINT32_MAX)
        return convert_wfail(c, IG_ERR_TOOBIG);
    out->rows[i].len = (uint32_t)(end - start);
    if (c->to == IG_FMT_CSV || c->to == IG_FMT_JSONL || c->to == IG_FMT_LIBSVM) {
        rv = ig_buf_append_char(c->body, '\n');
        if (rv < 0)
            return convert_wfail(c, rv);
    }
    return 0;
}

int ig_convert_rows(enum ig_format from, const struct ig_rowset *in, enum ig_format to,
                    uint32_t width, struct ig_buf *body, struct ig_rowset *out,
                    struct ig_codec_error *err)
{
    struct ig_budget *budget = out->budget;
    uint8_t out_base = out->index_base;
    struct convert_ctx c = {
        .in = in, .from = from, .to = to, .width = width, .out_base = out_base,
        .body = body, .err = err};
    size_t orig = body->len;
    int copy, rv = 0;

    memset(out, 0, sizeof(*out));
    out->budget = budget;
    out->index_base = out_base;
    if (err != NULL) {
        err->row = 0;
        err->msg[0] = '\0';
    }
    if ((unsigned)from >= IG_FMT_COUNT || (unsigned)to >= IG_FMT_COUNT) {
        ig_codec_error_set(err, 0, "Unsupported request format.");
        return IG_ERR_UNSUPPORTED;
    }
    copy = from == to && (from != IG_FMT_LIBSVM || in->index_base == out_base);
    if (to == IG_FMT_JSON && in->nrows > 0 &&
        (rv = ig_buf_append_str(body, "{\"instances\":[")) < 0)
        goto fail_write;
    for (uint32_t i = 0; i < in->nrows; i++) {
        rv = convert_one(&c, i, copy, out);
        if (rv < 0)
            goto out;
    }
    if (to == IG_FMT_JSON && in->nrows > 0 && (rv = ig_buf_append_str(body, "]}")) < 0)
        goto fail_write;
    out->body = body->data;
    out->body_len = body->len;
    goto out;

fail_write:
    rv = convert_wfail(&c, rv);
out:
    ig_free(&c.vec.vals);
    ig_free(&c.vec.keys);
    ig_recordio_dec_free(c.dec);
    if (rv < 0) {
        ig_rowset_clear(out);
        out->budget = budget;
        out->index_base = out_base;
        body->len = orig;
        if (body->data != NULL)
            body->data[orig] = '\0';
    }
    return rv;
}

/* ====================================================================== */
/* ---- predictions ---- */

/* One output, collected for a RecordIO answer: a name (or none) and its
 * numbers. */
struct convert_item {
    size_t name_off, name_len; /* in names; NUL-terminated there */
    size_t first, n;           /* in vals */
    uint8_t named, array;      /* array: written as [..] even with one number */
};

enum convert_shape {
    CONVERT_SCALAR = 0, /* one unnamed number */
    CONVERT_ARRAY,      /* unnamed numbers */
    CONVERT_OBJECT,     /* named outputs */
};

/*
 * An answer being converted. A text target (CSV, JSON, JSON Lines) is
 * written as the answer is read, number by number: the numbers are never
 * held (a 64 MiB answer of "1,1,..." held as numbers took 24 bytes each,
 * doubled as it grew: about 1.6 GB). A RecordIO target needs them all
 * (labels sorted by name, lengths first): they are collected as doubles,
 * at most as many as the output has room for (4 bytes a float32), the
 * outputs at most CONVERT_MAX_OUTPUTS. What passes those bounds, or the
 * output's cap, stops the writing or collecting but not the reading: the
 * answer is read to its end, so that the errors keep their order (a
 * reading error first, then what cannot be written).
 */
struct convert_pred {
    enum convert_shape shape;
    int collect;          /* <to> is RecordIO */
    struct ig_buf *out;   /* text targets: written as read */
    size_t open_at;       /* CSV to JSON: where a '[' goes once a second number comes */
    int lazy_open;        /* CSV to JSON: one number is written bare, more as [..] */
    size_t nnums;         /* numbers read, all outputs */
    size_t item_nums;     /* numbers of the current output */
    size_t noutputs;      /* outputs begun */
    /* the current output, for messages (its name in names) */
    size_t cur_off, cur_len;
    uint8_t cur_named, cur_array;
    /* collected (RecordIO target) */
    struct convert_item *items;
    size_t nitems, items_cap;
    double *vals;
    size_t nvals, vals_cap, vals_max;
    size_t unpack_max; /* RecordIO: what protobuf-c may take unpacking the answer */
    int full;          /* the output's cap (text) or vals_max (RecordIO) was reached */
    int too_many;      /* RecordIO: more than CONVERT_MAX_OUTPUTS outputs */
    char f32_bad[IG_FMT_DOUBLE_MAX]; /* RecordIO: the first value past float32, as text */
    struct ig_buf names; /* collected: every output's name; text: the current one's */
    enum ig_format to;
    uint32_t row;
    struct ig_codec_error *err;
    char subject[CONVERT_SHOW_MAX + 32]; /* "the model's answer '...'" */
};

static int convert_pred_nomem(struct convert_pred *pr)
{
    ig_codec_error_set(pr->err, pr->row, "Row %u: out of memory converting the model's answer.",
                       pr->row);
    return IG_ERR_NOMEM;
}

static int convert_pred_fail(struct convert_pred *pr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "Row N: <subject> cannot be written as <to>: <why>." */
static int convert_pred_fail(struct convert_pred *pr, const char *fmt, ...)
{
    char why[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ig_codec_error_set(pr->err, pr->row, "Row %u: %s cannot be written as %s: %s.", pr->row,
                       pr->subject, ig_codec_format_mime(pr->to), why);
    return IG_ERR_INVALID;
}

/* A write to the output failed with <rv>: say why. */
static int convert_pred_wfail(struct convert_pred *pr, int rv)
{
    if (rv == IG_ERR_NOMEM)
        return convert_pred_nomem(pr);
    if (rv == IG_ERR_TOOBIG)
        ig_codec_error_set(pr->err, pr->row,
                           "Row %u: the model's answer, converted to %s, does not fit in the "
                           "response.",
                           pr->row, ig_codec_format_mime(pr->to));
    return rv;
}

/* The outcome <rv> of a write to a text target: the output's cap stops
 * the writing (pr->full: said once the answer is read), anything else is
 * an error now. */
static int convert_pred_wrote(struct convert_pred *pr, int rv)
{
    if (rv == IG_ERR_TOOBIG) {
        pr->full = 1;
        return 0;
    }
    return rv < 0 ? convert_pred_wfail(pr, rv) : 0;
}

/* The name of the current output, for messages: "'name'" cut short, or
 * "it". */
static void convert_pred_what(const struct convert_pred *pr, char *out, size_t n)
{
    if (!pr->cur_named) {
        snprintf(out, n, "it");
        return;
    }
    snprintf(out, n, "'%.*s%s'",
             (int)(pr->cur_len > CONVERT_SHOW_MAX ? CONVERT_SHOW_MAX : pr->cur_len),
             pr->names.data + pr->cur_off, pr->cur_len > CONVERT_SHOW_MAX ? "..." : "");
}

/* <s> (<n> bytes, valid UTF-8) as a JSON string. */
static int convert_put_json_string(struct ig_buf *out, const char *s, size_t n)
{
    int rv = ig_buf_append_char(out, '"');

    for (size_t i = 0; rv == 0 && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};

            rv = ig_buf_append(out, esc, 2);
        } else if (ch < 0x20) {
            rv = ig_buf_printf(out, "\\u%04x", ch);
        } else {
            rv = ig_buf_append_char(out, (char)ch);
        }
    }
    if (rv == 0)
        rv = ig_buf_append_char(out, '"');
    return rv;
}

/* The current output is named by names[off, off + len) when <named>
 * (messages name it from here on). */
static void convert_pred_cur(struct convert_pred *pr, int named, size_t off, size_t len)
{
    pr->cur_named = (uint8_t)named;
    pr->cur_off = off;
    pr->cur_len = len;
}

/* A name is about to be read into pr->names: a text target keeps only
 * the current one. */
static void convert_pred_name_start(struct convert_pred *pr)
{
    if (!pr->collect)
        ig_buf_reset(&pr->names);
}

/* A new output, named by names[off, off + len) when <named>; <array>: its
 * numbers are written as [..] (known here for a RecordIO label; for a
 * JSON member, set by convert_pred_set_array once seen). */
static int convert_pred_item(struct convert_pred *pr, int named, size_t off, size_t len,
                             int array)
{
    int rv = 0;

    convert_pred_cur(pr, named, off, len);
    pr->cur_array = (uint8_t)array;
    pr->item_nums = 0;
    pr->noutputs++;
    if (pr->collect) {
        struct convert_item *it;

        if (pr->nitems >= CONVERT_MAX_OUTPUTS) {
            pr->too_many = 1; /* said once the answer is read */
            return 0;
        }
        if (pr->nitems == pr->items_cap) {
            size_t ncap = pr->items_cap ? pr->items_cap * 2 : 8;

            it = ig_try_realloc(pr->items, ncap * sizeof(*it));
            if (it == NULL)
                return convert_pred_nomem(pr);
            pr->items = it;
            pr->items_cap = ncap;
        }
        it = &pr->items[pr->nitems++];
        it->name_off = off;
        it->name_len = len;
        it->first = pr->nvals;
        it->n = 0;
        it->named = (uint8_t)named;
        it->array = (uint8_t)array;
    } else if (named && pr->to != IG_FMT_CSV && !pr->full) {
        /* a member of the JSON object (from a RecordIO label map) */
        if (pr->noutputs > 1)
            rv = ig_buf_append_char(pr->out, ',');
        if (rv == 0)
            rv = convert_put_json_string(pr->out, pr->names.data + off, len);
        if (rv == 0)
            rv = ig_buf_append_char(pr->out, ':');
        if (rv == 0 && array)
            rv = ig_buf_append_char(pr->out, '[');
    }
    return convert_pred_wrote(pr, rv);
}

/* The current output is an array (JSON: seen once its value starts). */
static void convert_pred_set_array(struct convert_pred *pr, int array)
{
    pr->cur_array = (uint8_t)array;
    if (pr->collect && pr->nitems > 0 && !pr->too_many)
        pr->items[pr->nitems - 1].array = (uint8_t)array;
}

/* The current output's numbers are all read. */
static int convert_pred_item_end(struct convert_pred *pr)
{
    int rv;

    if (pr->collect || !pr->cur_named || pr->to == IG_FMT_CSV || !pr->cur_array || pr->full)
        return 0;
    rv = ig_buf_append_char(pr->out, ']');
    return convert_pred_wrote(pr, rv);
}

/* A number of the current output: written (text), or collected
 * (RecordIO: it must fit a float32, and the output have room for it). */
static int convert_pred_num(struct convert_pred *pr, double v, int64_t i, int kind)
{
    if (pr->collect) {
        if (!isfinite((float)v) && pr->f32_bad[0] == '\0') /* said once it is read */
            convert_fmt(pr->f32_bad, v, i, kind);
        if (pr->too_many || pr->full) {
            /* nothing more is kept */
        } else if (pr->nvals == pr->vals_cap && pr->nvals >= pr->vals_max) {
            pr->full = 1; /* 4 bytes each: no room for them */
        } else if (pr->nvals == pr->vals_cap) {
            size_t ncap = pr->vals_cap ? pr->vals_cap * 2 : 16;
            double *nv;

            if (ncap > pr->vals_max)
                ncap = pr->vals_max;
            nv = ig_try_realloc(pr->vals, ncap * sizeof(*nv));
            if (nv == NULL)
                return convert_pred_nomem(pr);
            pr->vals = nv;
            pr->vals_cap = ncap;
        }
        if (!pr->too_many && !pr->full) {
            pr->vals[pr->nvals++] = v;
            if (pr->nitems > 0)
                pr->items[pr->nitems - 1].n++;
        }
    } else if (!pr->full) {
        /* CSV: every number of the answer comma-separated; JSON: those of
         * one output */
        int sep = pr->to == IG_FMT_CSV ? pr->nnums > 0 : pr->item_nums > 0;
        struct ig_buf *out = pr->out;
        int rv = 0;

        if (pr->lazy_open && pr->item_nums == 1) {
            /* a second number: the first goes inside [..] (a few bytes moved) */
            rv = ig_buf_reserve(out, 1);
            if (rv == 0) {
                memmove(out->data + pr->open_at + 1, out->data + pr->open_at,
                        out->len - pr->open_at + 1);
                out->data[pr->open_at] = '[';
                out->len++;
            }
        }
        if (rv == 0)
            rv = convert_put(out, ",", (size_t)sep, v, i, kind);
        rv = convert_pred_wrote(pr, rv);
        if (rv < 0)
            return rv;
    }
    pr->nnums++;
    pr->item_nums++;
    return 0;
}

/* ---- reading: a CSV line ---- */

static int convert_pred_csv_fail(struct convert_pred *pr, const char *why, uint32_t col)
{
    ig_codec_error_set(pr->err, pr->row, "Row %u: %s is not a CSV line of numbers: column %u %s.",
                       pr->row, pr->subject, col, why);
    return IG_ERR_INVALID;
}

static int convert_pred_csv(struct convert_pred *pr, const char *s, size_t n)
{
    size_t p = 0;
    uint32_t col = 0;
    int rv;

    rv = convert_pred_item(pr, 0, 0, 0, 0);
    if (rv < 0)
        return rv;
    for (;;) {
        size_t fs, fe;
        int64_t iv = 0;
        double v;

        col++;
        while (p < n && convert_is_space(s[p]))
            p++;
        fs = p;
        if (p < n && s[p] == '"') {
            /* a quoted field: its content, when it holds no quote */
            fs = ++p;
            while (p < n && s[p] != '"')
                p++;
            fe = p;
            if (p < n)
                p++;
            while (p < n && convert_is_space(s[p]))
                p++;
            if (p < n && s[p] != ',')
                return convert_pred_csv_fail(pr, "is not a number", col);
        } else {
            while (p < n && s[p] != ',')
                p++;
            fe = p;
        }
        while (fe > fs && convert_is_space(s[fe - 1]))
            fe--;
        while (fs < fe && convert_is_space(s[fs]))
            fs++;
        if (fe == fs)
            return convert_pred_csv_fail(pr, "is empty", col);
        if (convert_int_text(s + fs, fe - fs, &iv) == 0)
            rv = convert_pred_num(pr, (double)iv, iv, CONVERT_INT);
        else if (ig_parse_double(s + fs, fe - fs, &v) == 0 && isfinite(v))
            rv = convert_pred_num(pr, v, 0, CONVERT_REAL);
        else
            return convert_pred_csv_fail(pr, "is not a number", col);
        if (rv < 0)
            return rv;
        if (p < n && s[p] == ',') {
            p++;
            continue;
        }
        break;
    }
    pr->shape = pr->nnums == 1 ? CONVERT_SCALAR : CONVERT_ARRAY;
    convert_pred_set_array(pr, pr->shape == CONVERT_ARRAY);
    return 0;
}

/* ---- reading: a JSON value, without a tree ---- */

struct convert_scan {
    const char *b;
    size_t len;
    size_t pos;
};

static void convert_scan_ws(struct convert_scan *s)
{
    while (s->pos < s->len && convert_is_ws(s->b[s->pos]))
        s->pos++;
}

/* Is [s, s + n) valid UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF)? */
static int convert_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], need, min, cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            min = 0x80;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            min = 0x800;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            min = 0x10000;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

static int convert_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int k = 0; k < 4; k++) {
        char ch = p[k];
        unsigned d;

        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* The JSON string at s->pos, decoded into pr->names (NUL-terminated
 * there). 0, -1 (no valid string: a syntax error), or an error code. */
static int convert_scan_string(struct convert_pred *pr, struct convert_scan *s, size_t *off,
                               size_t *nlen)
{
    struct ig_buf *nb = &pr->names;
    int rv = 0;

    s->pos++;
    *off = nb->len;
    while (rv == 0) {
        unsigned char ch;

        if (s->pos >= s->len)
            return -1;
        ch = (unsigned char)s->b[s->pos];
        if (ch == '"')
            break;
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            size_t q = s->pos;

            while (q < s->len && s->b[q] != '"' && s->b[q] != '\\' &&
                   (unsigned char)s->b[q] >= 0x20)
                q++;
            rv = ig_buf_append(nb, s->b + s->pos, q - s->pos);
            s->pos = q;
            continue;
        }
        if (s->pos + 1 >= s->len)
            return -1;
        ch = (unsigned char)s->b[s->pos + 1];
        s->pos += 2;
        switch (ch) {
        case '"':
        case '\\':
        case '/':
            rv = ig_buf_append_char(nb, (char)ch);
            break;
        case 'b':
            rv = ig_buf_append_char(nb, '\b');
            break;
        case 'f':
            rv = ig_buf_append_char(nb, '\f');
            break;
        case 'n':
            rv = ig_buf_append_char(nb, '\n');
            break;
        case 'r':
            rv = ig_buf_append_char(nb, '\r');
            break;
        case 't':
            rv = ig_buf_append_char(nb, '\t');
            break;
        case 'u': {
            unsigned cp, lo;
            char u[4];
            size_t k;

            if (s->len - s->pos < 4 || convert_hex4(s->b + s->pos, &cp) < 0)
                return -1;
            s->pos += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (s->len - s->pos < 6 || s->b[s->pos] != '\\' || s->b[s->pos + 1] != 'u' ||
                    convert_hex4(s->b + s->pos + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                s->pos += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp < 0x80) {
                u[0] = (char)cp;
                k = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3f));
                k = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | cp >> 12);
                u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                k = 3;
            } else {
                u[0] = (char)(0xf0 | cp >> 18);
                u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                k = 4;
            }
            rv = ig_buf_append(nb, u, k);
            break;
        }
        default:
            return -1;
        }
    }
    if (rv < 0)
        return rv == IG_ERR_NOMEM ? convert_pred_nomem(pr) : IG_ERR_TOOBIG;
    s->pos++; /* the closing quote */
    *nlen = nb->len - *off;
    if (*nlen > 0 && !convert_utf8_ok((const unsigned char *)nb->data + *off, *nlen))
        return -1; /* (an empty name: nb may hold nothing yet, data NULL) */
    rv = ig_buf_append_char(nb, '\0');
    if (rv < 0)
        return rv == IG_ERR_NOMEM ? convert_pred_nomem(pr) : IG_ERR_TOOBIG;
    return 0;
}

/* Outcomes of the scanner besides 0 and error codes. */
#define CONVERT_SCAN_SYNTAX 1   /* not JSON there */
#define CONVERT_SCAN_NOT_NUM 2  /* JSON, but not what an output may be */

/* A number, or an array of numbers, at s->pos: the numbers of the last
 * item. */
static int convert_scan_numbers(struct convert_pred *pr, struct convert_scan *s, int *array)
{
    double v;
    int64_t iv = 0;
    int kind, rv;

    if (s->pos < s->len && s->b[s->pos] != '[') {
        *array = 0;
        if (convert_json_num(s->b, s->len, &s->pos, &v, &iv, &kind) < 0)
            return CONVERT_SCAN_NOT_NUM;
        return convert_pred_num(pr, v, iv, kind);
    }
    *array = 1;
    if (s->pos >= s->len)
        return CONVERT_SCAN_SYNTAX;
    s->pos++;
    convert_scan_ws(s);
    if (s->pos < s->len && s->b[s->pos] == ']') {
        s->pos++;
        return 0;
    }
    for (;;) {
        if (convert_json_num(s->b, s->len, &s->pos, &v, &iv, &kind) < 0)
            return CONVERT_SCAN_NOT_NUM;
        rv = convert_pred_num(pr, v, iv, kind);
        if (rv < 0)
            return rv;
        convert_scan_ws(s);
        if (s->pos < s->len && s->b[s->pos] == ']') {
            s->pos++;
            return 0;
        }
        if (s->pos >= s->len || s->b[s->pos] != ',')
            return CONVERT_SCAN_SYNTAX;
        s->pos++;
        convert_scan_ws(s);
    }
}

static int convert_scan_object(struct convert_pred *pr, struct convert_scan *s)
{
    int rv, array;

    s->pos++;
    convert_scan_ws(s);
    if (s->pos < s->len && s->b[s->pos] == '}') {
        s->pos++;
        return 0;
    }
    for (;;) {
        size_t off, nlen;

        if (s->pos >= s->len || s->b[s->pos] != '"')
            return CONVERT_SCAN_SYNTAX;
        convert_pred_name_start(pr);
        rv = convert_scan_string(pr, s, &off, &nlen);
        if (rv != 0)
            return rv < 0 && rv != -1 ? rv : CONVERT_SCAN_SYNTAX;
        convert_scan_ws(s);
        if (s->pos >= s->len || s->b[s->pos] != ':')
            return CONVERT_SCAN_SYNTAX;
        s->pos++;
        convert_scan_ws(s);
        rv = convert_pred_item(pr, 1, off, nlen, 0);
        if (rv < 0)
            return rv;
        rv = convert_scan_numbers(pr, s, &array);
        if (rv != 0)
            return rv;
        convert_pred_set_array(pr, array);
        rv = convert_pred_item_end(pr);
        if (rv < 0)
            return rv;
        convert_scan_ws(s);
        if (s->pos < s->len && s->b[s->pos] == '}') {
            s->pos++;
            return 0;
        }
        if (s->pos >= s->len || s->b[s->pos] != ',')
            return CONVERT_SCAN_SYNTAX;
        s->pos++;
        convert_scan_ws(s);
    }
}

static int convert_pred_json(struct convert_pred *pr, const char *p, size_t len)
{
    struct convert_scan s = {.b = p, .len = len, .pos = 0};
    char what[CONVERT_SHOW_MAX + 8];
    int rv, array = 0;

    convert_scan_ws(&s);
    if (s.pos < len && s.b[s.pos] == '{') {
        pr->shape = CONVERT_OBJECT;
        rv = convert_scan_object(pr, &s);
    } else {
        rv = convert_pred_item(pr, 0, 0, 0, 0);
        if (rv == 0)
            rv = convert_scan_numbers(pr, &s, &array);
        if (rv == 0) {
            pr->shape = array ? CONVERT_ARRAY : CONVERT_SCALAR;
            convert_pred_set_array(pr, array);
        }
    }
    if (rv == 0) {
        convert_scan_ws(&s);
        if (s.pos < len)
            rv = CONVERT_SCAN_SYNTAX;
    }
    if (rv <= 0)
        return rv;
    /* Not what the scanner takes: jansson says whether it is JSON at all
     * (in its words), for an answer small enough to read as a tree. */
    if (len <= CONVERT_JSON_ERR_MAX) {
        json_error_t jerr;
        json_t *v = json_loadb(p, len, CONVERT_JSON_FLAGS, &jerr);

        if (v == NULL && json_error_code(&jerr) == json_error_numeric_overflow)
            v = json_loadb(p, len, CONVERT_JSON_FLAGS | JSON_DECODE_INT_AS_REAL, &jerr);
        if (v == NULL) {
            ig_codec_error_set(pr->err, pr->row,
                               "Row %u: %s is not valid JSON: %s at line %d column %d.", pr->row,
                               pr->subject, jerr.text, jerr.line, jerr.column);
            return IG_ERR_INVALID;
        }
        json_decref(v);
        if (rv == CONVERT_SCAN_SYNTAX)
            return convert_pred_fail(pr, "it is not a number, an array of numbers or an object "
                                         "of them");
    } else if (rv == CONVERT_SCAN_SYNTAX) {
        ig_codec_error_set(pr->err, pr->row, "Row %u: %s is not valid JSON (at byte %zu).",
                           pr->row, pr->subject, s.pos);
        return IG_ERR_INVALID;
    }
    convert_pred_what(pr, what, sizeof(what));
    return convert_pred_fail(pr, "%s is not a number or an array of numbers", what);
}

/* ---- reading: a RecordIO record ---- */

struct convert_pred_rec {
    struct convert_pred *pr;
    struct convert_rec cr;
    size_t nrec;
    int cb_failed; /* the callback failed and said why */
};

static int convert_pred_rec_cb(const struct ig_recordio_rec *rec, void *arg)
{
    struct convert_pred_rec *x = arg;
    int rv;

    if (x->nrec++ > 0) {
        ig_codec_error_set(x->pr->err, x->pr->row,
                           "Row %u: the model's RecordIO answer holds more than one record.",
                           x->pr->row);
        x->cb_failed = 1;
        return IG_ERR_INVALID;
    }
    rv = convert_rec_unpack(&x->cr, rec->data, rec->len, x->pr->unpack_max, x->pr->row,
                            "the model's RecordIO answer", x->pr->err);
    x->cb_failed = rv < 0;
    return rv;
}

/* The labels of the record, in the map's order. */
static int convert_pred_labels(struct convert_pred *pr, const Aialgs__Data__Record *r)
{
    char what[CONVERT_SHOW_MAX + 8];
    int rv;

    pr->shape = CONVERT_OBJECT;
    for (size_t i = 0; i < r->n_label; i++) {
        const Aialgs__Data__Record__LabelEntry *e = r->label[i];
        const char *name = e->key != NULL ? e->key : "";
        size_t nlen = strlen(name), off;
        struct convert_tensor t;

        convert_pred_name_start(pr);
        off = pr->names.len;
        rv = ig_buf_append(&pr->names, name, nlen + 1);
        if (rv < 0)
            return rv == IG_ERR_NOMEM ? convert_pred_nomem(pr) : rv;
        convert_pred_cur(pr, 1, off, nlen);
        convert_pred_what(pr, what, sizeof(what));
        if (convert_tensor_of(e->value, &t) < 0)
            return convert_pred_fail(pr, "the label %s is not a tensor", what);
        if (t.nkeys > 0)
            return convert_pred_fail(pr, "the label %s is a sparse tensor", what);
        if ((pr->to == IG_FMT_JSON || pr->to == IG_FMT_JSONL) &&
            !convert_utf8_ok((const unsigned char *)name, nlen))
            return convert_pred_fail(pr, "the label name %s is not valid UTF-8", what);
        rv = convert_pred_item(pr, 1, off, nlen, t.n != 1);
        if (rv < 0)
            return rv;
        for (size_t k = 0; k < t.n; k++) {
            int64_t iv = 0;
            int kind;
            double v = convert_tensor_at(&t, k, &iv, &kind);

            if (!isfinite(v))
                return convert_pred_fail(pr, "the label %s holds a value that is not a finite "
                                             "number",
                                         what);
            rv = convert_pred_num(pr, v, iv, kind);
            if (rv < 0)
                return rv;
        }
        rv = convert_pred_item_end(pr);
        if (rv < 0)
            return rv;
    }
    return 0;
}

static int convert_pred_recordio(struct convert_pred *pr, const char *p, size_t len)
{
    struct convert_pred_rec x = {.pr = pr};
    struct ig_codec_error ferr = {0, ""};
    struct ig_recordio_dec *d = NULL;
    int rv;

    (void)ig_recordio_dec_new(IG_RECORDIO_MAX_FRAME, &d);
    rv = ig_recordio_dec_feed(d, p, len, convert_pred_rec_cb, &x, &ferr);
    if (rv == 0)
        rv = ig_recordio_dec_end(d, &ferr);
    ig_recordio_dec_free(d);
    if (rv < 0 && !x.cb_failed) {
        /* the framing: the decoder's reason, without its own row number */
        const char *why = strstr(ferr.msg, ": ");

        ig_codec_error_set(pr->err, pr->row,
                           "Row %u: the model's RecordIO answer is not one whole RecordIO "
                           "record: %s",
                           pr->row, why != NULL ? why + 2 : ferr.msg);
    } else if (rv == 0 && x.nrec == 0) {
        ig_codec_error_set(pr->err, pr->row, "Row %u: the model's RecordIO answer is empty.",
                           pr->row);
        rv = IG_ERR_INVALID;
    }
    if (rv == 0)
        rv = convert_pred_labels(pr, x.cr.r);
    convert_rec_free(&x.cr);
    return rv;
}

/* ---- writing ---- */

/* A text target before the answer is read: JSON from RecordIO is an
 * object, JSON from CSV an array (its '[' dropped at the end for one
 * number). */
static int convert_pred_begin(struct convert_pred *pr, enum ig_format from)
{
    int rv = 0;

    if (pr->collect || pr->to == IG_FMT_CSV)
        return 0;
    if (from == IG_FMT_RECORDIO) {
        rv = ig_buf_append_char(pr->out, '{');
    } else if (from == IG_FMT_CSV) {
        pr->open_at = pr->out->len;
        pr->lazy_open = 1;
    }
    return convert_pred_wrote(pr, rv);
}

/* A text target after the answer is read. */
static int convert_pred_end_text(struct convert_pred *pr, enum ig_format from)
{
    struct ig_buf *out = pr->out;
    int rv = 0;

    if (pr->to == IG_FMT_CSV && pr->nnums == 0)
        return convert_pred_fail(pr, "it holds no numbers");
    if (pr->full)
        return convert_pred_wfail(pr, IG_ERR_TOOBIG);
    if (pr->to == IG_FMT_CSV)
        return 0;
    if (from == IG_FMT_RECORDIO)
        rv = ig_buf_append_char(out, '}');
    else if (pr->shape == CONVERT_ARRAY) /* one number stays bare */
        rv = ig_buf_append_char(out, ']');
    return rv < 0 ? convert_pred_wfail(pr, rv) : 0;
}

/* The collected answer as one RecordIO record; its errors in the order
 * they were always said: no outputs, too many, a value past float32, a
 * name, then the output's cap. */
static int convert_pred_write_recordio(struct convert_pred *pr, struct ig_buf *out)
{
    struct ig_recordio_label *labels = NULL;
    size_t n = pr->shape == CONVERT_OBJECT ? pr->nitems : 1;
    char what[CONVERT_SHOW_MAX + 8];
    int rv;

    if (pr->shape == CONVERT_OBJECT && n == 0)
        return convert_pred_fail(pr, "it holds no outputs");
    if (pr->too_many || n > CONVERT_MAX_OUTPUTS)
        return convert_pred_fail(pr, "it has more than %u outputs", CONVERT_MAX_OUTPUTS);
    if (pr->f32_bad[0] != '\0')
        return convert_pred_fail(pr, "%s does not fit a float32", pr->f32_bad);
    for (size_t i = 0; pr->shape == CONVERT_OBJECT && i < n; i++) {
        const struct convert_item *it = &pr->items[i];
        const char *name = pr->names.data + it->name_off;

        convert_pred_cur(pr, 1, it->name_off, it->name_len);
        convert_pred_what(pr, what, sizeof(what));
        if (strlen(name) != it->name_len)
            return convert_pred_fail(pr, "the output name %s holds a NUL byte", what);
        for (size_t k = 0; k < i; k++)
            if (pr->items[k].name_len == it->name_len &&
                memcmp(pr->names.data + pr->items[k].name_off, name, it->name_len) == 0)
                return convert_pred_fail(pr, "the output %s appears twice", what);
    }
    if (pr->full)
        return IG_ERR_TOOBIG;
    labels = ig_try_malloc(n * sizeof(*labels));
    if (labels == NULL)
        return IG_ERR_NOMEM;
    if (pr->shape == CONVERT_OBJECT) {
        for (size_t i = 0; i < n; i++) {
            labels[i].name = pr->names.data + pr->items[i].name_off;
            labels[i].values = pr->vals ? pr->vals + pr->items[i].first : NULL; /* no values */
            labels[i].n = pr->items[i].n;
        }
    } else {
        labels[0].name = "score";
        labels[0].values = pr->vals;
        labels[0].n = pr->nvals;
    }
    rv = ig_recordio_encode_labels(out, labels, n);
    free(labels);
    return rv;
}

/* CR and LF of a JSON value (whitespace outside its strings, which hold
 * none raw) become spaces: the value fits on one JSON Lines line. */
static int convert_pred_oneline(const char *p, size_t len, struct ig_buf *out)
{
    size_t at = out->len;
    int rv = ig_buf_append(out, p, len);

    if (rv < 0)
        return rv;
    for (size_t i = at; i < out->len; i++)
        if (out->data[i] == '\n' || out->data[i] == '\r')
            out->data[i] = ' ';
    return 0;
}

int ig_convert_pred(enum ig_format from, const char *p, size_t len, enum ig_format to,
                    uint32_t row, struct ig_buf *out, struct ig_codec_error *err)
{
    struct convert_pred pr;
    size_t orig = out->len;
    int rv;

    if ((unsigned)from >= IG_FMT_COUNT || (unsigned)to >= IG_FMT_COUNT ||
        from == IG_FMT_LIBSVM || to == IG_FMT_LIBSVM) {
        ig_codec_error_set(err, row, "Row %u: no conversion of answers from %s to %s.", row,
                           ig_codec_format_mime(from), ig_codec_format_mime(to));
        return IG_ERR_UNSUPPORTED;
    }
    memset(&pr, 0, sizeof(pr));
    pr.to = to;
    pr.row = row;
    pr.err = err;
    pr.out = out;
    pr.collect = to == IG_FMT_RECORDIO;
    /* a float32 takes 4 bytes of the record: no more than that many */
    pr.vals_max = (out->max - out->len) / 4;
    /* A RecordIO answer is decoded for a text target: each value it holds
     * (at most 8 bytes decoded) is written in 2 bytes or more ("1,"), so
     * an answer that takes more than twice the output's room (and 1 MiB
     * for its labels' structures) does not fit it. protobuf-c's 16 times
     * a 64 MiB answer alone would be 1 GiB. */
    pr.unpack_max = (out->max - out->len) > (SIZE_MAX - CONVERT_PB_SLACK) / 2
                        ? SIZE_MAX
                        : (out->max - out->len) * 2 + CONVERT_PB_SLACK;
    if (from == IG_FMT_RECORDIO) {
        snprintf(pr.subject, sizeof(pr.subject), "the model's RecordIO answer");
    } else {
        int show = (int)(len > CONVERT_SHOW_MAX ? CONVERT_SHOW_MAX : len);

        snprintf(pr.subject, sizeof(pr.subject), "the model's answer '%.*s%s'", show, p,
                 len > CONVERT_SHOW_MAX ? "..." : "");
    }
    if (from == to) {
        rv = convert_pred_wfail(&pr, ig_buf_append(out, p, len));
        goto out;
    }
    if ((from == IG_FMT_JSON || from == IG_FMT_JSONL) &&
        (to == IG_FMT_JSON || to == IG_FMT_JSONL)) {
        /* one whole JSON value, else the client would get broken JSON */
        const char *e = len > 0 ? ig_json_skip(p, p + len) : NULL;

        if (e == NULL || ig_json_ws(e, p + len) != p + len) {
            ig_codec_error_set(err, row, "Row %u: %s is not one JSON value.", row, pr.subject);
            rv = IG_ERR_INVALID;
            goto out;
        }
        rv = convert_pred_wfail(&pr, convert_pred_oneline(p, len, out));
        goto out;
    }
    /* names: never longer than the answer, plus a NUL each */
    ig_buf_init(&pr.names, len > SIZE_MAX / 2 - 64 ? SIZE_MAX : len * 2 + 64);
    rv = convert_pred_begin(&pr, from);
    if (rv < 0)
        goto out;
    switch (from) {
    case IG_FMT_CSV:
        rv = convert_pred_csv(&pr, p, len);
        break;
    case IG_FMT_RECORDIO:
        rv = convert_pred_recordio(&pr, p, len);
        break;
    default:
        rv = convert_pred_json(&pr, p, len);
        break;
    }
    if (rv < 0)
        goto out;
    if (pr.collect)
        rv = convert_pred_wfail(&pr, convert_pred_write_recordio(&pr, out));
    else
        rv = convert_pred_end_text(&pr, from);

out:
    if (rv < 0) {
        out->len = orig;
        if (out->data != NULL)
            out->data[orig] = '\0';
    }
    ig_buf_clear(&pr.names);
    free(pr.items);
    free(pr.vals);
    return rv;
}

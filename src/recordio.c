/*
 * recordio.c - application/x-recordio-protobuf: RecordIO framing (an
 * incremental reader, a whole-record writer) and the aialgs.data.Record
 * protobuf (protoc-c, proto/record.proto) to and from rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/recordio.h"
#include "infergate/rows-t.h"
#include "proto/record.pb-c.h"

/* A buffered record's storage above this is freed once it is handed over,
 * so a long stream keeps no large buffer between records. */
#define RECORDIO_KEEP_CAP (64u * 1024u)
/* The first allocation of a buffered record. */
#define RECORDIO_MIN_CAP 256u

enum recordio_state {
    RIO_HDR = 0, /* reading the 8 header bytes */
    RIO_DATA,    /* reading a frame's data */
    RIO_PAD,     /* skipping its padding */
};

struct ig_recordio_dec {
    size_t max_record;
    enum recordio_state state;
    uint8_t hdr[8];
    unsigned hdr_len;
    uint32_t cflag;      /* of the current frame */
    size_t part_left;    /* data bytes of the current frame still to read */
    unsigned pad_left;   /* padding bytes still to skip */
    int multi;           /* inside a split record (after cflag 1) */
    uint8_t *rec;        /* the buffered payload */
    size_t rec_len;
    size_t rec_cap;
    uint64_t off;        /* stream bytes consumed */
    uint64_t rec_start;  /* stream offset of the current record's first frame */
    uint32_t count;      /* records handed over */
    int failed;          /* the error code of a failure, 0 */
};

static uint32_t recordio_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void recordio_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static unsigned recordio_pad(size_t len)
{
    return (unsigned)((4u - (len & 3u)) & 3u);
}

int ig_recordio_dec_new(size_t max_record, struct ig_recordio_dec **out)
{
    struct ig_recordio_dec *d;

    *out = NULL;
    if (max_record == 0)
        return IG_ERR_INVALID;
    d = ig_xcalloc(1, sizeof(*d));
    d->max_record = max_record;
    *out = d;
    return 0;
}

void ig_recordio_dec_free(struct ig_recordio_dec *d)
{
    if (d == NULL)
        return;
    free(d->rec);
    free(d);
}

uint32_t ig_recordio_dec_count(const struct ig_recordio_dec *d)
{
    return d->count;
}

static int recordio_fail(struct ig_recordio_dec *d, int code)
{
    d->failed = code;
    return code;
}

/* Make room for <n> more payload bytes (rec_len + n <= max_record is
 * checked by the caller). Called for bytes that have arrived, never for
 * what a header announces: a peer's 8-byte header claiming 512 MiB must
 * not make us allocate them. Doubling, from RECORDIO_MIN_CAP. */
static int recordio_reserve(struct ig_recordio_dec *d, size_t n)
{
    size_t need = d->rec_len + n, ncap;
    uint8_t *p;

    if (need <= d->rec_cap)
        return 0;
    ncap = d->rec_cap < d->max_record / 2 ? d->rec_cap * 2 : d->max_record;
    if (ncap < RECORDIO_MIN_CAP)
        ncap = d->max_record < RECORDIO_MIN_CAP ? d->max_record : RECORDIO_MIN_CAP;
    if (ncap < need)
        ncap = need;
    p = ig_try_realloc(d->rec, ncap);
    if (p == NULL)
        return IG_ERR_NOMEM;
    d->rec = p;
    d->rec_cap = ncap;
    return 0;
}

/* Hand the buffered record over and get ready for the next one. */
static int recordio_emit(struct ig_recordio_dec *d, const uint8_t *data, size_t len,
                         ig_recordio_record_cb *cb, void *arg)
{
    struct ig_recordio_rec r;
    int rv;

    static const uint8_t empty[1] = {0};

    r.data = data != NULL ? data : empty;
    r.len = len;
    r.index = d->count + 1;
    r.frame_off = d->rec_start;
    r.frame_len = d->off - d->rec_start;
    d->count++;
    d->rec_len = 0;
    d->multi = 0;
    rv = cb != NULL ? cb(&r, arg) : 0;
    if (d->rec_cap > RECORDIO_KEEP_CAP) {
        ig_free(&d->rec);
        d->rec_cap = 0;
    }
    if (rv != 0)
        return recordio_fail(d, rv);
    return 0;
}

/* A full header is in d->hdr: check it and set up the frame. */
static int recordio_header(struct ig_recordio_dec *d, struct ig_codec_error *err)
{
    uint32_t magic = recordio_le32(d->hdr), word = recordio_le32(d->hdr + 4);
    uint32_t row = d->count + 1, len = word & IG_RECORDIO_MAX_FRAME;
    uint64_t at = d->off - 8;
    size_t more;

    d->cflag = word >> 29;
    if (magic != IG_RECORDIO_MAGIC) {
        ig_codec_error_set(err, row,
                           "Row %u: bad RecordIO magic 0x%08x at byte %llu (expected 0x%08x).",
                           row, magic, (unsigned long long)at, IG_RECORDIO_MAGIC);
        return recordio_fail(d, IG_ERR_INVALID);
    }
    if (d->cflag > 3) {
        ig_codec_error_set(err, row, "Row %u: bad RecordIO continuation flag %u at byte %llu.",
                           row, d->cflag, (unsigned long long)at);
        return recordio_fail(d, IG_ERR_INVALID);
    }
    if ((d->multi && (d->cflag == 0 || d->cflag == 1)) ||
        (!d->multi && (d->cflag == 2 || d->cflag == 3))) {
        ig_codec_error_set(err, row,
                           "Row %u: RecordIO continuation flag %u at byte %llu %s.", row,
                           d->cflag, (unsigned long long)at,
                           d->multi ? "inside a split record" : "without a first part");
        return recordio_fail(d, IG_ERR_INVALID);
    }
    if (!d->multi)
        d->rec_start = at;
    /* a later part follows the magic the writer split at */
    more = (size_t)len + (d->multi ? 4u : 0u);
    if (more > d->max_record || d->rec_len > d->max_record - more) {
        ig_codec_error_set(err, row,
                           "Row %u: RecordIO record of %llu bytes or more is larger than the "
                           "%zu-byte limit.",
                           row, (unsigned long long)d->rec_len + more, d->max_record);
        return recordio_fail(d, IG_ERR_TOOBIG);
    }
    if (d->multi) {
        if (recordio_reserve(d, 4) < 0)
            goto nomem;
        recordio_put_le32(d->rec + d->rec_len, IG_RECORDIO_MAGIC);
        d->rec_len += 4;
    }
    if (d->cflag == 1)
        d->multi = 1;
    d->part_left = len;
    d->pad_left = recordio_pad(len);
    d->state = RIO_DATA;
    return 0;

nomem:
    ig_codec_error_set(err, row, "Row %u: out of memory reading the RecordIO record.", row);
    return recordio_fail(d, IG_ERR_NOMEM);
}

int ig_recordio_dec_feed(struct ig_recordio_dec *d, const void *buf, size_t len,
                         ig_recordio_record_cb *cb, void *arg, struct ig_codec_error *err)
{
    const uint8_t *p = buf, *end;
    int rv;

    if (d->failed)
        goto failed;
    if (len == 0)
        return 0; /* buf may be NULL */
    end = p + len;
    while (p < end) {
        size_t avail = (size_t)(end - p), n;

        switch (d->state) {
        case RIO_HDR:
            n = 8 - d->hdr_len;
            if (n > avail)
                n = avail;
            memcpy(d->hdr + d->hdr_len, p, n);
            d->hdr_len += (unsigned)n;
            p += n;
            d->off += n;
            if (d->hdr_len < 8)
                break;
            d->hdr_len = 0;
            rv = recordio_header(d, err);
            if (rv < 0)
                return rv;
            /* A whole record inside this chunk: hand it over from here. */
            if (d->cflag == 0 && (size_t)(end - p) >= d->part_left + d->pad_left) {
                const uint8_t *data = p;
                size_t dlen = d->part_left;

                p += dlen + d->pad_left;
                d->off += dlen + d->pad_left;
                d->part_left = 0;
                d->pad_left = 0;
                d->state = RIO_HDR;
                rv = recordio_emit(d, data, dlen, cb, arg);
                if (rv != 0)
                    return rv;
                break;
            }
            if (d->part_left == 0)
                d->state = RIO_PAD;
            break;
        case RIO_DATA:
            n = d->part_left < avail ? d->part_left : avail;
            if (recordio_reserve(d, n) < 0) {
                ig_codec_error_set(err, d->count + 1,
                                   "Row %u: out of memory reading the RecordIO record.",
                                   d->count + 1);
                return recordio_fail(d, IG_ERR_NOMEM);
            }
            memcpy(d->rec + d->rec_len, p, n);
            d->rec_len += n;
            d->part_left -= n;
            p += n;
            d->off += n;
            if (d->part_left == 0)
                d->state = RIO_PAD;
            break;
        case RIO_PAD:
            n = d->pad_left < avail ? d->pad_left : avail;
            d->pad_left -= (unsigned)n;
            p += n;
            d->off += n;
            break;
        }
        /* A frame ends after its padding: a whole record or a last part
         * completes the record; a first or middle part waits for more. */
        if (d->state == RIO_PAD && d->pad_left == 0) {
            d->state = RIO_HDR;
            if (d->cflag == 0 || d->cflag == 3) {
                rv = recordio_emit(d, d->rec, d->rec_len, cb, arg);
                if (rv != 0)
                    return rv;
            }
        }
    }
    return 0;

failed:
    ig_codec_error_set(err, d->count + 1, "Row %u: the RecordIO stream failed earlier.",
                       d->count + 1);
    return d->failed;
}

int ig_recordio_dec_end(struct ig_recordio_dec *d, struct ig_codec_error *err)
{
    uint32_t row = d->count + 1;
    const char *where;

    if (d->failed) {
        ig_codec_error_set(err, row, "Row %u: the RecordIO stream failed earlier.", row);
        return d->failed;
    }
    if (d->state == RIO_HDR && d->hdr_len == 0 && !d->multi)
        return 0;
    if (d->state == RIO_HDR && d->hdr_len == 0)
        where = "before its last part";
    else if (d->state == RIO_HDR)
        where = "inside its header";
    else if (d->state == RIO_DATA)
        where = "inside its data";
    else
        where = "inside its padding";
    ig_codec_error_set(err, row, "Row %u: truncated RecordIO record: the body ends %s.", row,
                       where);
    return recordio_fail(d, IG_ERR_INVALID);
}

int ig_recordio_frame(struct ig_buf *out, const void *payload, size_t len)
{
    static const uint8_t zeros[4] = {0, 0, 0, 0};
    uint8_t hdr[8];
    unsigned pad = recordio_pad(len);
    int rv;

    if (len > IG_RECORDIO_MAX_FRAME)
        return IG_ERR_TOOBIG;
    rv = ig_buf_reserve(out, 8 + len + pad);
    if (rv < 0)
        return rv;
    recordio_put_le32(hdr, IG_RECORDIO_MAGIC);
    recordio_put_le32(hdr + 4, (uint32_t)len);
    /* cannot fail: the room is reserved */
    (void)ig_buf_append(out, hdr, sizeof(hdr));
    (void)ig_buf_append(out, payload, len);
    (void)ig_buf_append(out, zeros, pad);
    return 0;
}

/* ---- protobuf-c's allocator: ig_try_malloc under a cap ---- */

static void *recordio_pb_alloc(void *data, size_t n)
{
    struct ig_recordio_pb_mem *m = data;
    void *p;

    if (n > m->cap - m->used) {
        m->over = 1;
        return NULL;
    }
    p = ig_try_malloc(n);
    if (p == NULL) {
        m->nomem = 1;
        return NULL;
    }
    m->used += n;
    return p;
}

static void recordio_pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

void ig_recordio_pb_allocator(struct ig_recordio_pb_mem *m, size_t cap, ProtobufCAllocator *a)
{
    memset(m, 0, sizeof(*m));
    m->cap = cap;
    a->alloc = recordio_pb_alloc;
    a->free = recordio_pb_free;
    a->allocator_data = m;
}

/* ---- records to rows ---- */

/* The tensor of features["values"], whatever its value type. */
struct recordio_tensor {
    int type; /* AIALGS__DATA__VALUE__VALUE_* */
    size_t n;
    const void *values;
    size_t nkeys;
    const uint64_t *keys;
    size_t nshape;
    const uint64_t *shape;
};

static double recordio_at(const struct recordio_tensor *t, size_t i)
{
    switch (t->type) {
    case AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR:
        return ((const float *)t->values)[i];
    case AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR:
        return ((const double *)t->values)[i];
    default:
        return ((const int32_t *)t->values)[i];
    }
}

/* The tensor of <v>; -1 when it holds none (bytes, nothing). */
static int recordio_tensor_of(const Aialgs__Data__Value *v, struct recordio_tensor *t)
{
    t->type = v->value_case;
    switch (v->value_case) {
    case AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR:
        t->n = v->float32_tensor->n_values;
        t->values = v->float32_tensor->values;
        t->nkeys = v->float32_tensor->n_keys;
        t->keys = v->float32_tensor->keys;
        t->nshape = v->float32_tensor->n_shape;
        t->shape = v->float32_tensor->shape;
        return 0;
    case AIALGS__DATA__VALUE__VALUE_FLOAT64_TENSOR:
        t->n = v->float64_tensor->n_values;
        t->values = v->float64_tensor->values;
        t->nkeys = v->float64_tensor->n_keys;
        t->keys = v->float64_tensor->keys;
        t->nshape = v->float64_tensor->n_shape;
        t->shape = v->float64_tensor->shape;
        return 0;
    case AIALGS__DATA__VALUE__VALUE_INT32_TENSOR:
        t->n = v->int32_tensor->n_values;
        t->values = v->int32_tensor->values;
        t->nkeys = v->int32_tensor->n_keys;
        t->keys = v->int32_tensor->keys;
        t->nshape = v->int32_tensor->n_shape;
        t->shape = v->int32_tensor->shape;
        return 0;
    default:
        return -1;
    }
}

/* The number of elements of <shape>; -1 when it passes UINT64_MAX. */
static int recordio_shape_size(const uint64_t *shape, size_t n, uint64_t *out)
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

/* Check <t> and, when dim > 0, write its dense row. */
static int recordio_tensor_row(const struct recordio_tensor *t, uint32_t index, uint32_t dim,
                               double *row, double fill, struct ig_codec_error *err)
{
    uint64_t size = 0;

    if (t->nshape > 0 && recordio_shape_size(t->shape, t->nshape, &size) < 0) {
        ig_codec_error_set(err, index, "Row %u: the shape of features[\"values\"] is too large.",
                           index);
        return IG_ERR_INVALID;
    }
    if (t->nkeys > 0 || (t->n == 0 && t->nshape > 0)) {
        /* sparse (or an all-zero sparse row: no keys, no values, a shape) */
        if (t->nshape == 0) {
            ig_codec_error_set(err, index,
                               "Row %u: sparse features[\"values\"] (keys) without a shape.",
                               index);
            return IG_ERR_INVALID;
        }
        if (dim > 0 && size != dim) {
            ig_codec_error_set(err, index,
                               "Row %u: expected %u features, the sparse shape has %llu.", index,
                               dim, (unsigned long long)size);
            return IG_ERR_INVALID;
        }
        if (t->nkeys != t->n) {
            ig_codec_error_set(err, index,
                               "Row %u: sparse features[\"values\"] has %zu keys for %zu "
                               "values.",
                               index, t->nkeys, t->n);
            return IG_ERR_INVALID;
        }
        for (uint32_t i = 0; i < dim; i++)
            row[i] = fill;
        for (size_t i = 0; i < t->nkeys; i++) {
            uint64_t k = t->keys[i];
            double v;

            if (k >= size) {
                ig_codec_error_set(err, index,
                                   "Row %u: sparse key %llu is out of range (shape of %llu "
                                   "elements).",
                                   index, (unsigned long long)k, (unsigned long long)size);
                return IG_ERR_INVALID;
            }
            if (i > 0 && k <= t->keys[i - 1]) {
                ig_codec_error_set(err, index,
                                   "Row %u: sparse keys are not strictly increasing (%llu after "
                                   "%llu).",
                                   index, (unsigned long long)k,
                                   (unsigned long long)t->keys[i - 1]);
                return IG_ERR_INVALID;
            }
            v = recordio_at(t, i);
            if (!isfinite(v)) {
                ig_codec_error_set(err, index, "Row %u: feature %llu is not a finite number.",
                                   index, (unsigned long long)k + 1);
                return IG_ERR_INVALID;
            }
            if (dim > 0)
                row[k] = v;
        }
        return 0;
    }
    /* dense */
    if (dim > 0 && t->n != dim) {
        ig_codec_error_set(err, index, "Row %u: expected %u features, found %zu.", index, dim,
                           t->n);
        return IG_ERR_INVALID;
    }
    if (t->nshape > 0 && size != t->n) {
        ig_codec_error_set(err, index,
                           "Row %u: features[\"values\"] holds %zu values for a shape of %llu "
                           "elements.",
                           index, t->n, (unsigned long long)size);
        return IG_ERR_INVALID;
    }
    for (size_t i = 0; i < t->n; i++) {
        double v = recordio_at(t, i);

        if (!isfinite(v)) {
            ig_codec_error_set(err, index, "Row %u: feature %zu is not a finite number.", index,
                               i + 1);
            return IG_ERR_INVALID;
        }
        if (dim > 0)
            row[i] = v;
    }
    return 0;
}

/* ---- records to rows: the hand-written decoder of the common record ---- */

/* What recordio_fast returns when it leaves a record to protobuf-c. */
#define RECORDIO_FAST_DECLINED 1

/* A varint of at most 4 bytes in its shortest form (< 2^28) at *pp, below
 * <end>: 0 and *pp past it, or -1 (anything else: left to protobuf-c). */
static int recordio_fast_varint(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
    const uint8_t *p = *pp;
    uint32_t v = 0;

    for (unsigned i = 0; i < 4 && p < end; i++) {
        uint8_t b = *p++;

        v |= (uint32_t)(b & 0x7fu) << (7 * i);
        if ((b & 0x80u) == 0) {
            if (b == 0 && i > 0)
                return -1;
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* A length-delimited field's length at *pp, which must span exactly the
 * rest up to <end>: 0 or -1. */
static int recordio_fast_rest(const uint8_t **pp, const uint8_t *end)
{
    uint32_t l;

    if (recordio_fast_varint(pp, end, &l) < 0 || l != (size_t)(end - *pp))
        return -1;
    return 0;
}

/*
 * The Record the SageMaker SDKs write for a dense float32 row, read from
 * its wire bytes (proto/record.proto): only features entries (field 1),
 * each exactly { key (1) = "values", value (2) = Value { float32_tensor
 * (2) = Float32Tensor { values (1), packed, at most once } } } in that
 * order, fields written once each with shortest-form lengths; the last
 * entry wins, as in the protobuf map. The values must be finite and, when
 * dim > 0, exactly <dim>. On success the same row as protobuf-c's path
 * (floats widened to doubles), 0; anything else, an error included, is
 * RECORDIO_FAST_DECLINED (<row> may have been written): the caller takes
 * the protobuf-c path, so odd records and every error message are its.
 */
static int recordio_fast(const uint8_t *p, size_t len, uint32_t dim, double *row)
{
    static const uint8_t key[8] = {0x0a, 0x06, 'v', 'a', 'l', 'u', 'e', 's'};
    const uint8_t *end = p + len, *vals = NULL;
    size_t n = 0;

    while (p < end) {
        const uint8_t *e, *eend;
        uint32_t l;

        /* features (1), length-delimited */
        if (*p++ != 0x0a || recordio_fast_varint(&p, end, &l) < 0 || l > (size_t)(end - p))
            return RECORDIO_FAST_DECLINED;
        e = p;
        eend = p + l;
        p = eend;
        /* key "values", then value (2) up to the entry's end */
        if ((size_t)(eend - e) < sizeof(key) + 2 || memcmp(e, key, sizeof(key)) != 0)
            return RECORDIO_FAST_DECLINED;
        e += sizeof(key);
        if (*e++ != 0x12 || recordio_fast_rest(&e, eend) < 0)
            return RECORDIO_FAST_DECLINED;
        /* Value: float32_tensor (2) up to its end */
        if (e == eend || *e++ != 0x12 || recordio_fast_rest(&e, eend) < 0)
            return RECORDIO_FAST_DECLINED;
        /* Float32Tensor: nothing, or packed values (1) up to its end */
        if (e == eend) {
            vals = e;
            n = 0;
            continue;
        }
        if (*e++ != 0x0a || recordio_fast_rest(&e, eend) < 0 || e == eend ||
            ((size_t)(eend - e) & 3u) != 0)
            return RECORDIO_FAST_DECLINED;
        vals = e;
        n = (size_t)(eend - e) / 4;
    }
    if (vals == NULL || (dim > 0 && n != dim))
        return RECORDIO_FAST_DECLINED;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = recordio_le32(vals + 4 * i);
        float f;

        memcpy(&f, &bits, sizeof(f));
        if (!isfinite(f))
            return RECORDIO_FAST_DECLINED;
        if (dim > 0)
            row[i] = f;
    }
    return 0;
}

/* ig_recordio_record_to_row through protobuf-c, a sparse row's absent
 * entries <fill>. */
static int recordio_to_row_pb(const void *payload, size_t len, uint32_t index, uint32_t dim,
                           double *row, double fill, struct ig_codec_error *err)
{
    struct ig_recordio_pb_mem mem;
    ProtobufCAllocator alloc;
    Aialgs__Data__Record *r;
    const Aialgs__Data__Value *v = NULL;
    struct recordio_tensor t;
    int rv;

    if (len > (SIZE_MAX - 4096) / IG_RECORDIO_PB_MEM_FACTOR) {
        ig_codec_error_set(err, index, "Row %u: the record is too large to decode.", index);
        return IG_ERR_TOOBIG;
    }
    ig_recordio_pb_allocator(&mem, len * IG_RECORDIO_PB_MEM_FACTOR + 4096, &alloc);
    r = aialgs__data__record__unpack(&alloc, len, payload);
    if (r == NULL) {
        if (mem.over) {
            ig_codec_error_set(err, index, "Row %u: the record is too large to decode.", index);
            return IG_ERR_TOOBIG;
        }
        if (mem.nomem) {
            ig_codec_error_set(err, index, "Row %u: out of memory decoding the record.", index);
            return IG_ERR_NOMEM;
        }
        ig_codec_error_set(err, index,
                           "Row %u: the record is not a valid RecordIO-protobuf Record (the "
                           "protobuf does not parse).",
                           index);
        return IG_ERR_INVALID;
    }
    /* the last entry of the key wins, as in a protobuf map */
    for (size_t i = 0; i < r->n_features; i++) {
        const Aialgs__Data__Record__FeaturesEntry *e = r->features[i];

        if (e->key != NULL && strcmp(e->key, IG_RECORDIO_KEY_VALUES) == 0)
            v = e->value;
    }
    if (v == NULL) {
        ig_codec_error_set(err, index, "Row %u: the record has no features[\"values\"] tensor.",
                           index);
        rv = IG_ERR_INVALID;
        goto cleanup;
    }
    if (recordio_tensor_of(v, &t) < 0) {
        ig_codec_error_set(err, index,
                           "Row %u: features[\"values\"] is not a float32, float64 or int32 "
                           "tensor.",
                           index);
        rv = IG_ERR_INVALID;
        goto cleanup;
    }
    rv = recordio_tensor_row(&t, index, dim, row, fill, err);

cleanup:
    aialgs__data__record__free_unpacked(r, &alloc);
    return rv;
}

/* ig_recordio_record_to_row with a sparse row's absent entries <fill>:
 * the hand-written decoder, or protobuf-c for what it declines. */
static int recordio_to_row(const void *payload, size_t len, uint32_t index, uint32_t dim,
                           double *row, double fill, struct ig_codec_error *err)
{
    if (recordio_fast(payload, len, dim, row) == 0)
        return 0;
    return recordio_to_row_pb(payload, len, index, dim, row, fill, err);
}

int ig_recordio_record_to_row(const void *payload, size_t len, uint32_t index, uint32_t dim,
                              double *row, struct ig_codec_error *err)
{
    return recordio_to_row(payload, len, index, dim, row, 0.0, err);
}

/*
 * For the unit tests and fuzz_recordio only (declared there, not in
 * recordio.h): ig_recordio_record_to_row by one path. <path> 0: both (what
 * ig_recordio_record_to_row does); 1: the hand-written decoder alone
 * (returns RECORDIO_FAST_DECLINED, 1, when it leaves the record to
 * protobuf-c; <err> untouched); 2: protobuf-c alone.
 */
int ig_recordio_record_to_row_path(const void *payload, size_t len, uint32_t index, uint32_t dim,
                                   double *row, int path, struct ig_codec_error *err);

int ig_recordio_record_to_row_path(const void *payload, size_t len, uint32_t index, uint32_t dim,
                                   double *row, int path, struct ig_codec_error *err)
{
    if (path == 1)
        return recordio_fast(payload, len, dim, row);
    if (path == 2)
        return recordio_to_row_pb(payload, len, index, dim, row, 0.0, err);
    return recordio_to_row(payload, len, index, dim, row, 0.0, err);
}

/* ---- the whole-body decoder ---- */

struct recordio_rows {
    struct ig_rowset *rs;
    uint32_t max_rows;
    uint32_t dim;
    struct ig_codec_error *err;
    double fill; /* a sparse row's absent entries (rs->missing_nan: NaN) */
};

static int recordio_rows_cb(const struct ig_recordio_rec *rec, void *arg)
{
    struct recordio_rows *c = arg;
    double *feat = NULL;
    int rv;

    rv = ig_rowset_push(c->rs, c->max_rows, (uint32_t)rec->frame_off, &feat, c->err);
    if (rv < 0)
        return rv;
    c->rs->rows[c->rs->nrows - 1].len = (uint32_t)rec->frame_len;
    return recordio_to_row(rec->data, rec->len, rec->index, c->dim, feat, c->fill, c->err);
}

int ig_recordio_decode(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                       struct ig_rowset *rs, struct ig_codec_error *err)
{
    struct ig_budget *budget = rs->budget;
    struct ig_recordio_dec *d = NULL;
    struct recordio_rows c = {rs, max_rows, dim, err, rs->missing_nan ? NAN : 0.0};
    uint8_t index_base = rs->index_base, missing_nan = rs->missing_nan;
    int rv;

    memset(rs, 0, sizeof(*rs));
    rs->body = body;
    rs->body_len = len;
    rs->budget = budget;
    rs->index_base = index_base;
    rs->missing_nan = missing_nan;
    rs->dim = dim;
    if (err != NULL) {
        err->row = 0;
        err->msg[0] = '\0';
    }
    if (len == 0) {
        ig_codec_error_set(err, 0, "Request body is empty.");
        return IG_ERR_INVALID;
    }
    if (body == NULL) {
        ig_codec_error_set(err, 0, "Request body is missing.");
        return IG_ERR_INVALID;
    }
    if (len > UINT32_MAX) {
        ig_codec_error_set(err, 0, "Request body is 4 GiB or larger.");
        return IG_ERR_TOOBIG;
    }
    (void)ig_recordio_dec_new(IG_RECORDIO_MAX_FRAME, &d);
    rv = ig_recordio_dec_feed(d, body, len, recordio_rows_cb, &c, err);
    if (rv == 0)
        rv = ig_recordio_dec_end(d, err);
    ig_recordio_dec_free(d);
    if (rv < 0) {
        ig_rowset_clear(rs);
        rs->body = body;
        rs->body_len = len;
        rs->budget = budget;
    }
    return rv;
}

/* ---- writers ---- */

/* Pack <r> and append it to <out> as one frame. */
static int recordio_pack_frame(struct ig_buf *out, const Aialgs__Data__Record *r)
{
    size_t n = aialgs__data__record__get_packed_size(r);
    uint8_t *tmp;
    int rv;

    if (n > IG_RECORDIO_MAX_FRAME)
        return IG_ERR_TOOBIG;
    tmp = ig_try_malloc(n);
    if (tmp == NULL)
        return IG_ERR_NOMEM;
    aialgs__data__record__pack(r, tmp);
    rv = ig_recordio_frame(out, tmp, n);
    free(tmp);
    return rv;
}

/* <n> doubles narrowed to float32 in new storage (NULL: out of memory). */
static float *recordio_floats(const double *v, size_t n)
{
    float *f;

    if (n > SIZE_MAX / sizeof(*f))
        return NULL;
    f = ig_try_malloc(n * sizeof(*f));
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    return f;
}

int ig_recordio_encode_labels(struct ig_buf *out, const struct ig_recordio_label *labels,
                              size_t n)
{
    Aialgs__Data__Record rec = AIALGS__DATA__RECORD__INIT;
    Aialgs__Data__Record__LabelEntry *ents = NULL, **ptrs = NULL;
    Aialgs__Data__Value *vals = NULL;
    Aialgs__Data__Float32Tensor *tens = NULL;
    size_t *order = NULL, done = 0;
    int rv;

    if (n == 0 || n > 1024)
        return IG_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (labels[i].name == NULL || (labels[i].n > 0 && labels[i].values == NULL))
            return IG_ERR_INVALID;
    ents = ig_try_malloc(n * sizeof(*ents));
    ptrs = ig_try_malloc(n * sizeof(*ptrs));
    vals = ig_try_malloc(n * sizeof(*vals));
    tens = ig_try_malloc(n * sizeof(*tens));
    order = ig_try_malloc(n * sizeof(*order));
    rv = IG_ERR_NOMEM;
    if (ents == NULL || ptrs == NULL || vals == NULL || tens == NULL || order == NULL)
        goto cleanup;
    /* bytewise order of the names (insertion sort: a handful of outputs) */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;

        while (j > 0 && strcmp(labels[order[j - 1]].name, labels[i].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(labels[order[i - 1]].name, labels[order[i]].name) == 0) {
            rv = IG_ERR_INVALID;
            goto cleanup;
        }
    for (done = 0; done < n; done++) {
        const struct ig_recordio_label *l = &labels[order[done]];

        aialgs__data__float32_tensor__init(&tens[done]);
        tens[done].n_values = l->n;
        tens[done].values = recordio_floats(l->values, l->n);
        if (tens[done].values == NULL)
            goto cleanup;
        aialgs__data__value__init(&vals[done]);
        vals[done].value_case = AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
        vals[done].float32_tensor = &tens[done];
        aialgs__data__record__label_entry__init(&ents[done]);
        ents[done].key = (char *)(uintptr_t)l->name;
        ents[done].value = &vals[done];
        ptrs[done] = &ents[done];
    }
    rec.n_label = n;
    rec.label = ptrs;
    rv = recordio_pack_frame(out, &rec);

cleanup:
    for (size_t i = 0; i < done; i++)
        free(tens[i].values);
    free(ents);
    free(ptrs);
    free(vals);
    free(tens);
    free(order);
    return rv;
}

/* The bytes of <v> as a varint. */
static size_t recordio_varint_len(size_t v)
{
    size_t k = 1;

    while (v >= 0x80) {
        v >>= 7;
        k++;
    }
    return k;
}

static uint8_t *recordio_put_varint(uint8_t *p, size_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/*
 * The dense row of ig_recordio_encode_row, written straight into <out>:
 * the exact bytes protobuf-c packs for that Record (fields in number
 * order, no empty repeated field), without its structures or a copy:
 *   0a L1 { 0a 06 "values" 12 L2 { 12 L3 { [0a L4 floats] } } }
 */
static int recordio_encode_dense(struct ig_buf *out, const double *values, size_t n)
{
    size_t l4, l3, l2, l1, total;
    unsigned pad;
    uint8_t *p;
    int rv;

    if (n > IG_RECORDIO_MAX_FRAME / 4)
        return IG_ERR_TOOBIG;
    l4 = n * 4;
    l3 = n > 0 ? 1 + recordio_varint_len(l4) + l4 : 0;
    l2 = 1 + recordio_varint_len(l3) + l3;
    l1 = 8 + 1 + recordio_varint_len(l2) + l2;
    total = 1 + recordio_varint_len(l1) + l1;
    if (total > IG_RECORDIO_MAX_FRAME)
        return IG_ERR_TOOBIG;
    pad = recordio_pad(total);
    rv = ig_buf_reserve(out, 8 + total + pad);
    if (rv < 0)
        return rv;
    p = (uint8_t *)out->data + out->len;
    recordio_put_le32(p, IG_RECORDIO_MAGIC);
    recordio_put_le32(p + 4, (uint32_t)total);
    p += 8;
    *p++ = 0x0a;
    p = recordio_put_varint(p, l1);
    memcpy(p, "\x0a\x06values\x12", 9);
    p += 9;
    p = recordio_put_varint(p, l2);
    *p++ = 0x12;
    p = recordio_put_varint(p, l3);
    if (n > 0) {
        *p++ = 0x0a;
        p = recordio_put_varint(p, l4);
        for (size_t i = 0; i < n; i++) {
            float f = (float)values[i];
            uint32_t bits;

            memcpy(&bits, &f, sizeof(bits));
            recordio_put_le32(p, bits);
            p += 4;
        }
    }
    for (unsigned i = 0; i < pad; i++)
        *p++ = 0;
    out->len += 8 + total + pad;
    out->data[out->len] = '\0';
    return 0;
}

int ig_recordio_encode_row(struct ig_buf *out, const double *values, const uint64_t *keys,
                           size_t n, uint32_t dim)
{
    Aialgs__Data__Record rec = AIALGS__DATA__RECORD__INIT;
    Aialgs__Data__Record__FeaturesEntry ent = AIALGS__DATA__RECORD__FEATURES_ENTRY__INIT;
    Aialgs__Data__Record__FeaturesEntry *ptr = &ent;
    Aialgs__Data__Value val = AIALGS__DATA__VALUE__INIT;
    Aialgs__Data__Float32Tensor ten = AIALGS__DATA__FLOAT32_TENSOR__INIT;
    uint64_t shape = dim;
    int rv;

    if (keys == NULL)
        return recordio_encode_dense(out, values, n);
    ten.n_values = n;
    ten.values = recordio_floats(values, n);
    if (ten.values == NULL)
        return IG_ERR_NOMEM;
    if (keys != NULL) {
        ten.n_keys = n;
        ten.keys = (uint64_t *)(uintptr_t)keys;
        ten.n_shape = 1;
        ten.shape = &shape;
    }
    val.value_case = AIALGS__DATA__VALUE__VALUE_FLOAT32_TENSOR;
    val.float32_tensor = &ten;
    ent.key = (char *)(uintptr_t)IG_RECORDIO_KEY_VALUES;
    ent.value = &val;
    rec.n_features = 1;
    rec.features = &ptr;
    rv = recordio_pack_frame(out, &rec);
    free(ten.values);
    return rv;
}

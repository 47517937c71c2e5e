/*
 * recordio.h - application/x-recordio-protobuf: the RecordIO framing of the
 * SageMaker built-in algorithms and the aialgs.data.Record protobuf
 * (proto/record.proto, compiled by protoc-c) inside it.
 *
 * Framing (dmlc-core recordio, sagemaker-protocols.md 5.3), per frame:
 *   uint32 LE magic 0xCED7230A | uint32 LE (cflag << 29 | length) |
 *   data[length] | zero padding to a multiple of 4.
 * cflag 0: a whole record; 1, 2, 3: first, middle, last part of a record
 * that dmlc's writer split where its data held the magic at a 4-aligned
 * offset; the reader joins the parts with the magic's 4 bytes between them.
 * Padding bytes are skipped whatever they hold (as dmlc and the SageMaker
 * SDK's reader do). Writers here write whole records (cflag 0) only.
 *
 * Pure code (house rule 4): no event loop, no globals, no logging. Sizes
 * are peer-controlled: every allocation goes through ig_try_malloc, capped
 * (one record's payload by the decoder's max_record; protobuf-c's
 * allocations by IG_RECORDIO_PB_MEM_FACTOR times the payload).
 *
 * Errors follow codec.h: a negative IG_ERR_* code and a struct
 * ig_codec_error whose row is the 1-based record number ("Row N: ..."),
 * 0 for the body as a whole.
 */
#ifndef INFERGATE_RECORDIO_H
#define INFERGATE_RECORDIO_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/codec.h"

struct ig_buf;
struct ig_rowset;

#define IG_RECORDIO_MAGIC 0xCED7230Au
/* The largest length one frame header can carry (29 bits). */
#define IG_RECORDIO_MAX_FRAME ((1u << 29) - 1u)
/* protobuf-c may allocate at most this many times a payload's size (plus
 * 4 KiB) while unpacking it (a 1-byte varint key becomes 8 bytes). */
#define IG_RECORDIO_PB_MEM_FACTOR 16u
/* The map key of the feature vector and of generic labels. */
#define IG_RECORDIO_KEY_VALUES "values"

/* ---- protobuf-c's allocator: ig_try_malloc under a cap ---- */

/* What an allocator of ig_recordio_pb_allocator has given out. */
struct ig_recordio_pb_mem {
    size_t used;
    size_t cap;
    int over;  /* the cap refused an allocation */
    int nomem; /* ig_try_malloc failed */
};

/* Set <a> up to allocate through ig_try_malloc, at most <cap> bytes in all
 * (counted in <m>), for unpacking records of proto/record.proto. */
struct ProtobufCAllocator;
void ig_recordio_pb_allocator(struct ig_recordio_pb_mem *m, size_t cap,
                              struct ProtobufCAllocator *a);

/* ---- framing: the incremental decoder ---- */

/* One complete record, as the decoder hands it over. */
struct ig_recordio_rec {
    const uint8_t *data; /* the payload (parts joined); valid during the callback only */
    size_t len;
    uint32_t index;       /* 1-based record number in the stream */
    uint64_t frame_off;   /* stream offset of its first frame header */
    uint64_t frame_len;   /* bytes of all its frames, headers and padding included */
};

/* Called for each complete record; a nonzero return stops
 * ig_recordio_dec_feed, which returns it (and the decoder refuses more). */
typedef int ig_recordio_record_cb(const struct ig_recordio_rec *rec, void *arg);

struct ig_recordio_dec;

/*
 * A decoder for one stream. <max_record>: the largest record payload it
 * takes (parts joined), at most IG_RECORDIO_MAX_FRAME for a whole record.
 * It buffers at most one record (max_record bytes, grown as needed) and
 * only when the record is not whole inside one fed chunk.
 * Returns 0, IG_ERR_INVALID (max_record 0). Bookkeeping: ig_xmalloc.
 */
int ig_recordio_dec_new(size_t max_record, struct ig_recordio_dec **out);
void ig_recordio_dec_free(struct ig_recordio_dec *d);

/*
 * Feed the next <len> bytes of the stream (any chunking); <cb>(rec, arg)
 * runs for each record completed by them, in order. Returns 0,
 * IG_ERR_INVALID (bad magic, a continuation flag out of sequence),
 * IG_ERR_TOOBIG (a record over max_record), IG_ERR_NOMEM, or the nonzero
 * value <cb> returned; <err> (may be NULL) is set on failure except for a
 * callback's code (the callback sets what it wants). After a failure the
 * decoder refuses everything with the same code.
 */
int ig_recordio_dec_feed(struct ig_recordio_dec *d, const void *buf, size_t len,
                         ig_recordio_record_cb *cb, void *arg, struct ig_codec_error *err);

/*
 * The stream has ended: 0 when it ended between records, IG_ERR_INVALID
 * when inside one ("Row N: truncated RecordIO record: the body ends inside
 * its header." / "... its data." / "... its padding." / "... before its
 * last part."), or the code of an earlier failure.
 */
int ig_recordio_dec_end(struct ig_recordio_dec *d, struct ig_codec_error *err);

/* Records completed so far. */
uint32_t ig_recordio_dec_count(const struct ig_recordio_dec *d);

/* ---- framing: the writer ---- */

/* Append one whole frame (cflag 0) holding <payload> to <out>. Returns 0,
 * IG_ERR_TOOBIG (len > IG_RECORDIO_MAX_FRAME, or out's cap), IG_ERR_NOMEM;
 * on failure <out> is as it was. */
int ig_recordio_frame(struct ig_buf *out, const void *payload, size_t len);

/* ---- records <-> rows ---- */

/*
 * Decode the Record <payload> (<len> bytes), record number <index>
 * (1-based, for messages) into a dense row. The feature vector is
 * features["values"] (the last entry of that key when repeated, as the
 * protobuf map semantics say): a Float32Tensor, Float64Tensor or
 * Int32Tensor,
 *   dense  (no keys): exactly <dim> values (a non-empty shape must hold as
 *          many elements);
 *   sparse (keys):    shape required, its product == <dim>; as many keys as
 *          values; keys strictly increasing and < dim; missing entries 0.
 *          No keys and no values with a shape of <dim> elements is an
 *          all-zero sparse row (what the SDK writes for an empty row).
 * Every value must be finite (as the text codecs require).
 * <dim> > 0: <row> receives dim doubles. <dim> == 0: the tensor is only
 * checked (sparse keys against their shape); <row> may be NULL.
 * Returns 0, IG_ERR_INVALID with "Row <index>: ..." in <err> (may be NULL),
 * IG_ERR_TOOBIG (protobuf-c's allocation cap) or IG_ERR_NOMEM.
 */
int ig_recordio_record_to_row(const void *payload, size_t len, uint32_t index, uint32_t dim,
                              double *row, struct ig_codec_error *err);

/*
 * The whole-body decoder with ig_codec_decode_csv's contract (codec.h):
 * rows are slices of <body> spanning each record's frames (headers and
 * padding included, so forwarding the slices as they are is a valid
 * RecordIO stream), rs->features filled when dim > 0 (via ig_rowset_push:
 * budget and max_rows apply), one record at most IG_RECORDIO_MAX_FRAME
 * bytes. An empty body is an error ("Request body is empty.").
 */
int ig_recordio_decode(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                       struct ig_rowset *rs, struct ig_codec_error *err);

/* ---- writers of records ---- */

/* One output of a response record: label[<name>] = Float32Tensor of <n>
 * values (doubles narrowed to float32, as the built-in algorithms write). */
struct ig_recordio_label {
    const char *name;
    const double *values;
    size_t n;
};

/*
 * Append one framed response record to <out>: empty features, the <n>
 * labels in the label map, written in bytewise order of their names (what
 * protobuf's deterministic serialization writes; names must differ).
 * K-Means: closest_cluster [1], distance_to_cluster [1]; PCA: projection
 * [k]; Linear Learner: score [1 or classes], predicted_label [1]
 * (regressor: score only). Returns 0, IG_ERR_INVALID (n 0 or over 1024,
 * a NULL or repeated name), IG_ERR_TOOBIG, IG_ERR_NOMEM; on failure <out> is as it
 * was.
 */
int ig_recordio_encode_labels(struct ig_buf *out, const struct ig_recordio_label *labels,
                              size_t n);

/*
 * Append one framed request record to <out>: features["values"] = a
 * Float32Tensor, dense (keys == NULL: the <n> values, no shape; <dim>
 * unused) or sparse (<n> keys[i], values[i] and shape [dim]; keys as given:
 * the caller keeps them increasing and < dim), as the SageMaker SDKs write
 * them. Doubles are narrowed to float32.
 * Returns 0, IG_ERR_TOOBIG, IG_ERR_NOMEM; on failure <out> is as it was.
 */
int ig_recordio_encode_row(struct ig_buf *out, const double *values, const uint64_t *keys,
                           size_t n, uint32_t dim);

#endif /* INFERGATE_RECORDIO_H */

/*
 * convert.h - rewriting request rows and predictions from one wire format
 * into another (CSV, JSON Lines, JSON, RecordIO-protobuf, libsvm), done
 * only where a client's format differs from the upstream's.
 *
 * Pure code (house rule 4): no event loop, no globals, no logging. Sizes
 * are peer-controlled: allocations go through ig_try_malloc and ig_buf,
 * whose caps bound what a conversion may write.
 */
#ifndef INFERGATE_CONVERT_H
#define INFERGATE_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/codec.h"
#include "infergate/rows-t.h"

/* ---- request rows ---- */

/* The widest sparse row written densely (text/csv, the one target
 * without a sparse form): "0 999999:1" becomes a million columns at most,
 * and never more than <body>'s cap allows. Also the endpoint option
 * feature_dim's maximum. */
#define IG_CONVERT_MAX_WIDTH 1000000u

struct ig_buf;

/*
 * Rewrite the rows of <in> in format <to>. <in> was decoded from in->body
 * in format <from> (with dim 0 or not: only the row slices are read;
 * in->index_base is the libsvm base of <from>). The result is appended to
 * <body>; <out> receives one row per input row, in order: slices of
 * body->data that are exactly the rows ig_codec_decode(<to>, body->data,
 * body->len, ...) yields for that body (offsets count from body->data[0],
 * so bytes <body> held before are part of that text).
 *
 * <out>: caller-zeroed but for out->budget (the rows array is charged to
 * it, as by ig_rowset_push) and out->index_base (the libsvm base written
 * when <to> is IG_FMT_LIBSVM: 0, XGBoost's, in a zeroed rowset). This
 * function sets out->rows, nrows, cap and, once the last byte is
 * appended, out->body = body->data and out->body_len = body->len (body->data
 * moves as it grows: read it from <out>, or from <body> after the call,
 * never before). out->dim stays 0, out->features NULL.
 *
 * <width>: the model's feature count when known (the endpoint option
 * feature_dim), else 0. It gives libsvm rows, which carry none, a width.
 *
 * Each row is read into a vector (the row's text bounds it: no row of
 * <in> costs more than 16 bytes a byte of its text, plus, for a JSON row
 * that is not a plain array of numbers, jansson's tree of it, which the
 * decoder already bounded when it split <in>):
 *   text/csv:  dense, its fields as numbers (spaces around a field and a
 *              quoted number allowed, as the CSV decoder takes them);
 *   JSON, JSON Lines: dense ([..], {"features":[..]},
 *              {"features":{"values":[..]}}, {"data":{"features":..}}) or
 *              sparse ({"keys":[..],"shape":[D],"values":[..]}: the width
 *              is D; keys any order, sorted here);
 *   RecordIO:  features["values"] (float32, float64 or int32), dense, or
 *              sparse with the width the shape's element count (a
 *              several-dimension shape is flattened);
 *   libsvm:    sparse, index - in->index_base as keys, no width of its own
 *              (<width> when given: an index past it is an error).
 * and written:
 *   text/csv:  "v1,v2,..." and "\n". A sparse row is written densely
 *              (missing entries "0") when its width is known (its own,
 *              else <width>), at most IG_CONVERT_MAX_WIDTH columns.
 *   application/jsonlines: one line per row, "\n"-terminated: a dense row
 *              [v1,v2,...]; a sparse one
 *              {"features":{"keys":[k,...],"shape":[D],"values":[v,...]}}
 *              (keys 0-based, increasing) when its width D is known, else
 *              as for text/csv (an error).
 *   application/json: {"instances":[row1,row2,...]} with the rows as for
 *              JSON Lines (nothing at all for 0 rows).
 *   RecordIO:  one frame per row (ig_recordio_encode_row): dense, or
 *              sparse keys + values with shape [D] (same width rule).
 *              Values are narrowed to float32: a value beyond float32's
 *              range is an error.
 *   libsvm:    "0 k:v k:v ...\n": label 0, the nonzero values only (and
 *              -0.0, kept bit for bit), k = key + out->index_base.
 * Numbers: a value that came from a float32 tensor is printed as the
 * shortest text that reads back to the same float32 (ig_fmt_float); any
 * other with the shortest text that reads back to the same double
 * (ig_fmt_double): through text the features are bit for bit those of
 * <in> decoded with dim > 0 (float32 ones as floats), through RecordIO
 * they are those narrowed to float32.
 * A dense row of no values (JSON []) cannot be text/csv (an error); dense
 * rows are written as they are, whatever <width> says (the target's
 * decoder checks their length).
 * <from> == <to> copies each row's text, with the target's separators
 * (libsvm: rewritten when in->index_base and out->index_base differ).
 *
 * Errors (<err> may be NULL; rows 1-based):
 *   reading: the decoders' messages where they have one ("Row 2, column 3:
 *     'x' is not a number.", "Row 1: feature 2 is not a number.", "Row 1:
 *     key 7 is out of range for 5 features.", "Row 1: key 2 appears
 *     twice.", "Row 1: invalid JSON: ...", RecordIO's "Row 1: sparse keys
 *     are not strictly increasing (3 after 5).", ig_libsvm_row's, ...);
 *     and "Row N: the shape [D] is out of range." (JSON: D < 0 or past
 *     4294967295), "Row N: expected 3 features, found 1." (a dense JSON
 *     row with a shape), "Row N: the row holds more than one RecordIO
 *     record.";
 *   "Row N: a libsvm row has no width; set the endpoint option feature_dim
 *    to the model's feature count to convert it to text/csv." (or
 *    application/json, ...);
 *   "Row N: feature index 57 is out of range: the model takes 50 features
 *    (indices 0 to 49)." (libsvm index against <width>);
 *   "Row N: a sparse row of 2000000 features is too wide to write as
 *    text/csv (at most 1000000)."
 *   "Row N: the sparse shape of 5000000000 elements is too large."
 *   "Row N: the value 1e+300 does not fit a float32 (application/
 *    x-recordio-protobuf carries float32 features)."
 *   "Row N: a row of no features cannot be written as text/csv."
 *   "Row N: feature index 4294967296 is too large for text/libsvm (at
 *    most 4294967295)." (out->index_base 1 on the largest index);
 *   "The request's rows, converted to text/csv, would take more than N
 *    bytes." (row 0, IG_ERR_TOOBIG: <body>'s cap).
 * Returns 0, IG_ERR_INVALID, IG_ERR_TOOBIG, IG_ERR_FULL (out->budget
 * refused the rows array), IG_ERR_NOMEM, IG_ERR_UNSUPPORTED (a format out
 * of range). On failure <body> is back to its length before the call and
 * <out> is empty (out->budget and out->index_base kept).
 */
int ig_convert_rows(enum ig_format from, const struct ig_rowset *in, enum ig_format to,
                    uint32_t width, struct ig_buf *body, struct ig_rowset *out,
                    struct ig_codec_error *err);

/* ---- predictions ---- */

/*
 * Rewrite one prediction <p> (<len> bytes), as an upstream answered it in
 * format <from>, in format <to>, appended to <out>. Row <row> (1-based)
 * names it in messages.
 *   <from> text/csv: one line without its terminator: numbers separated
 *          by commas ("0.73", "1,3.5"; spaces around a field allowed);
 *   <from> JSON / JSON Lines: one JSON value: a number, an array of
 *          numbers, or an object whose members are numbers or arrays of
 *          numbers ({"score":0.73}, {"closest_cluster":1,...});
 *   <from> RecordIO: one record, its frame(s) whole (as
 *          ig_recordio_encode_labels writes them): its label map holds
 *          the outputs (float32, float64 or int32 tensors, dense).
 * What is written for <to>:
 *   text/csv (a line without "\n"): every number in order, comma-
 *          separated: an object's members' values in their order, arrays
 *          flattened; a RecordIO record's labels in the map's order, each
 *          tensor's values in order;
 *   JSON / JSON Lines (one JSON value, on one line): from CSV, one field
 *          as a number ("0.5" -> 0.5), more as an array ("1,2" -> [1,2]);
 *          from RecordIO, an object of the labels in the map's order, a
 *          1-value tensor as a number, any other as an array
 *          ({"closest_cluster":1.0,"distance_to_cluster":3.5}); from JSON
 *          to JSON Lines or back, the value as it is, its CR and LF bytes
 *          (whitespace there) turned into spaces (it must be one whole JSON
 *          value: "Row N: the model's answer '...' is not one JSON value.");
 *   RecordIO (one framed record, ig_recordio_encode_labels: labels in
 *          bytewise order of their names, float32): a JSON object's
 *          members as labels (a number a 1-value tensor, an array an
 *          n-value one); a JSON number or array, or a CSV line, as the
 *          label "score".
 * Numbers: from text, an integer (no '.' or exponent, within int64) is
 * written as an integer ("1" stays 1, not 1.0; "+1", "007" -> 1, 7; "-0"
 * is the integer 0, as jansson reads it), any other number with
 * ig_fmt_double (shortest exact: "0.50" -> 0.5, "1e2" -> 100.0); float32
 * tensor values with ig_fmt_float, float64 ones with ig_fmt_double, int32
 * ones as integers. <from> == <to>: copied as it is.
 * A JSON answer is read by a scanner that builds no tree (the numbers and
 * names only); jansson reads one that the scanner refuses, only to say
 * whether and where it is not JSON, up to 64 KiB. A repeated key is not
 * checked but where it matters (RecordIO labels).
 * Errors (IG_ERR_INVALID; answers quoted, cut to 40 characters):
 *   "Row N: the model's answer '<p>' cannot be written as text/csv: 'x'
 *    is not a number or an array of numbers." (strings, booleans, null,
 *    nested arrays or objects; "it" for the answer as a whole);
 *   "... : it holds no numbers." (CSV: {} or []); "... : it holds no
 *   outputs." (RecordIO: {}); "... : it has more than 1024 outputs.";
 *   "... : 1e+39 does not fit a float32."; "... : the output 'a' appears
 *   twice."; "... : the output name 'a' holds a NUL byte." (RecordIO);
 *   "... : the label 'x' is a sparse tensor." / "... is not a tensor." /
 *   "... holds a value that is not a finite number." / "... : the label
 *   name 'x' is not valid UTF-8." (JSON);
 *   "Row N: the model's answer '<p>' is not valid JSON: <jansson's text>
 *    at line L column C." ("(at byte B)" past 64 KiB);
 *   "Row N: the model's answer '<p>' is not a CSV line of numbers: column
 *    2 is not a number." / "column 1 is empty." (strings, "nan", quoted
 *    lists);
 *   "Row N: the model's RecordIO answer is not a valid RecordIO-protobuf
 *    Record (the protobuf does not parse).", "... holds more than one
 *    record.", "... is empty.", "... is not one whole RecordIO record:
 *    <the framing decoder's reason>".
 * A RecordIO answer is quoted as "the model's RecordIO answer".
 * "Row N: the model's answer, converted to <to>, does not fit in the
 * response." with IG_ERR_TOOBIG (out's cap); IG_ERR_NOMEM; and
 * IG_ERR_UNSUPPORTED (<from> or <to> libsvm or out of range: "Row N: no
 * conversion of answers from text/csv to text/libsvm."). On failure <out>
 * is as it was.
 */
int ig_convert_pred(enum ig_format from, const char *p, size_t len, enum ig_format to,
                    uint32_t row, struct ig_buf *out, struct ig_codec_error *err);

/* ---- libsvm rows (codec_libsvm.c) ---- */

/* Called for each index:value pair of a row, in order: <key> is the index
 * less the index base (0-based), <value> finite. A negative return stops
 * ig_libsvm_row, which returns it. */
typedef int ig_libsvm_pair_fn(void *arg, uint32_t key, double value);

/*
 * Read the libsvm row <line> (<len> bytes, no line terminator), row
 * number <row> (1-based, for messages): "label idx:val idx:val ...", one
 * or more spaces or tabs between tokens (and any before or after). The
 * label is a finite number (ig_parse_double's syntax) and holds no ':'; a
 * pair is a decimal index of digits only, at most 4294967295, at least
 * <base>, strictly increasing along the row, then ':' and a finite number.
 * <dim> > 0: also index - base < dim. <fn> (may be NULL) gets each pair.
 * Errors (IG_ERR_INVALID, <err> holds "Row <row>: ..."; tokens are quoted,
 * cut to 40 characters and "..."):
 *   "Row N: empty row."                              (only spaces and tabs)
 *   "Row N: NUL byte in the row."
 *   "Row N: the label 'x' is not a number."
 *   "Row N: the row starts with '3:1', not a label: a libsvm row is a label
 *    (any number, e.g. 0) then index:value pairs."
 *   "Row N: 'x' is not an index:value pair."
 *   "Row N: the feature index of 'a:1' is not a non-negative integer."
 *   "Row N: the feature index of '4294967296:1' is larger than 4294967295."
 *   "Row N: the value of '3:x' is not a number."     (also 1e999)
 *   "Row N: feature index 0 is out of range: indices start at 1."
 *   "Row N: feature indices are not strictly increasing (3 after 5)."
 *   "Row N: feature index 57 is out of range: the model takes 50 features
 *    (indices 0 to 49)."                             (base 1: 1 to 50)
 * or <fn>'s negative return.
 */
int ig_libsvm_row(const char *line, size_t len, uint32_t row, uint8_t base, uint32_t dim,
                  ig_libsvm_pair_fn *fn, void *arg, struct ig_codec_error *err);

#endif /* INFERGATE_CONVERT_H */

/*
 * codec.h - request body decoders and response encoders for the text
 * formats: text/csv, application/jsonlines and application/json.
 *
 * Pure code (house rule 4): no event loop, no globals, no logging. Bytes in,
 * rows or bytes or an error out. Every size here is peer-controlled, so all
 * allocation goes through ig_try_malloc / ig_try_realloc and every count is
 * capped by the caller's limits.
 */
#ifndef INFERGATE_CODEC_H
#define INFERGATE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "infergate/batch-t.h"
#include "infergate/rows-t.h"

struct ig_buf;

/*
 * Parse a Content-Type value into a format. Case-insensitive; parameters
 * after ';' are ignored ("text/csv;label_size=0", "; charset=utf-8") and so
 * are surrounding spaces and tabs. Known types: text/csv -> IG_FMT_CSV;
 * application/jsonlines, application/jsonl, application/x-jsonlines ->
 * IG_FMT_JSONL; application/json -> IG_FMT_JSON. NULL, empty or blank
 * -> <dflt>. Wildcards are not content types: star/star here is unsupported.
 * Returns 0 (and sets *out) or IG_ERR_UNSUPPORTED (*out untouched).
 */
int ig_codec_format_parse(const char *value, enum ig_format dflt, enum ig_format *out);

/*
 * Parse an Accept value: a comma-separated list of media ranges with
 * q-values (RFC 9110: absent or not a qvalue is 1, q=0 is "not
 * acceptable"). Each format's q is that of the most specific range that
 * names it: its type (as in ig_codec_format_parse), else text/star or
 * application/star, else star/star (star written for '*'); a range names
 * the answer formats of its kind (libsvm only when it is <dflt>). The
 * format of the highest q is chosen; of equals, the one the earliest
 * element names; of those a wildcard names, <dflt>, then JSON, CSV, JSON
 * Lines, RecordIO. Unknown types are skipped. NULL, empty or blank ->
 * <dflt>.
 * Returns 0 (and sets *out) or IG_ERR_UNSUPPORTED when no format is
 * acceptable (*out untouched).
 */
int ig_codec_accept_parse(const char *value, enum ig_format dflt, enum ig_format *out);

/* The MIME type written for <f>: "text/csv", "application/jsonlines",
 * "application/json"; "application/octet-stream" for an out-of-range value.
 * Static storage. */
const char *ig_codec_format_mime(enum ig_format f);

/* The message for a body that starts with the gzip magic 1F 8B. */
extern const char ig_codec_msg_gzip[];

/* A decode error, ready to be sent to the client. */
struct ig_codec_error {
    uint32_t row;  /* 1-based row the error is in; 0 = the body as a whole */
    char msg[256]; /* a complete sentence, e.g. "Row 3: empty row." */
};

/*
 * Decode <body> (<len> bytes, not NUL-terminated; NUL bytes in it are
 * errors) in format <fmt> into rows.
 *
 * Each row is a slice {off, len} of <body>, never a copy:
 *   IG_FMT_CSV:   the line without its LF / CRLF terminator (RFC 4180; a
 *                 quoted field may hold commas, "" and newlines, and then
 *                 the slice spans them);
 *   IG_FMT_JSONL: the line without its LF / CRLF terminator;
 *   IG_FMT_JSON:  the exact text of the instance element: each element of
 *                 {"instances":[...]} or of a bare array of arrays/objects;
 *                 the whole (trimmed) body for {"features":...},
 *                 {"data":...} or a bare array of numbers.
 * JSON rows (both JSON formats) are a dense array [1,2], {"features":[..]},
 * {"features":{"values":[..]}}, {"data":{"features":{"values":[..]}}}, or
 * the sparse {"features"|"data":{"features": {"keys":[..],"shape":[D],
 * "values":[..]}}} (0-based keys < D, no repeats, shape [D], missing
 * entries 0).
 *
 * <dim> > 0: also parse exactly <dim> finite numbers per row into
 * rs->features (nrows * dim doubles, row-major) and set rs->dim; a CSV row
 * stops being read at its (dim+1)-th field. <dim> == 0: split and validate
 * syntax only (CSV quoting, JSON syntax); any JSON value is a row;
 * rs->features stays NULL.
 *
 * At most <max_rows> rows, counted as each row starts: the decode stops at
 * row max_rows + 1. A blank line is an error anywhere except as the single
 * terminator at the very end; an empty body is an error.
 *
 * JSON memory: jansson never reads a whole body, only one value at a time
 * (a row, or another key's value), each tree freed before the next; a row
 * that is an array of numbers is read with no tree. A value whose tree
 * would pass what one row may take (1 MiB + 384 bytes a feature; 20 MiB
 * when dim == 0) is refused (IG_ERR_TOOBIG, "Row N: this row's JSON is
 * too large or too nested to decode ..."), before it is read.
 *
 * A UTF-8 byte-order mark (EF BB BF) at the very start is skipped (row
 * offsets still index <body>). A body that starts with the gzip magic
 * 1F 8B is refused with ig_codec_msg_gzip (the gateway takes no
 * Content-Encoding).
 *
 * On success rs owns rows/features (release with ig_rowset_clear) and
 * borrows <body>, which must outlive it. On failure rs is empty (nothing to
 * free) except that rs->body/body_len are set, and <err> (may be NULL) holds
 * the row and the message.
 *
 * rs->budget is read before anything else (set it, or zero the rowset,
 * before the call): the rows and features are charged to it as they grow
 * (see ig_rowset_push), and on failure nothing stays charged. Pure and
 * thread-safe: any thread may decode (the budgets are lock-free).
 *
 * Errors are found in body order: a row's error (wrong feature count) is
 * reported before a syntax error further on. JSON syntax errors are
 * jansson's, at the line and column jansson gives for the whole body.
 *
 * Returns 0, IG_ERR_INVALID (malformed), IG_ERR_TOOBIG (more than max_rows
 * rows, a body of 4 GiB or more, or a JSON value too large to decode),
 * IG_ERR_FULL (the decoded rows do not fit rs->budget: "Row N: the decoded
 * features of this request do not fit in the gateway's memory budget;
 * retry later or send fewer rows."), IG_ERR_NOMEM, IG_ERR_UNSUPPORTED
 * (<fmt> out of range).
 */
int ig_codec_decode(enum ig_format fmt, const char *body, size_t len, uint32_t dim,
                    uint32_t max_rows, struct ig_rowset *rs, struct ig_codec_error *err);

/* The per-format decoders behind ig_codec_decode, same contract. <body> is
 * non-NULL when <len> > 0 and <len> < 4 GiB; <rs> is empty and has body,
 * body_len and dim set (ig_codec_decode does all of this). */
int ig_codec_decode_csv(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                        struct ig_rowset *rs, struct ig_codec_error *err);
int ig_codec_decode_jsonl(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                          struct ig_rowset *rs, struct ig_codec_error *err);
int ig_codec_decode_json(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                         struct ig_rowset *rs, struct ig_codec_error *err);
/* text/libsvm (codec_libsvm.c): "label idx:val idx:val ..." per line, the
 * label ignored; indices strictly increasing, rs->index_base (0 or 1) the
 * first feature's; a row is the line without its terminator. dim > 0:
 * every index - index_base < dim, missing features 0. */
int ig_codec_decode_libsvm(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                           struct ig_rowset *rs, struct ig_codec_error *err);
/* ig_codec_decode_json of body[from, len) (after a byte-order mark): row
 * offsets and the NUL byte's offset index <body> as sent, lines and
 * columns count from <from>. */
int ig_codec_decode_json_at(const char *body, size_t len, size_t from, uint32_t dim,
                            uint32_t max_rows, struct ig_rowset *rs, struct ig_codec_error *err);

/* Free rows and features and release their hold; every field of <rs>
 * (budget too) becomes zero/NULL. Accepts a zeroed or already-cleared
 * rowset. */
void ig_rowset_clear(struct ig_rowset *rs);

/*
 * Building block for decoders (the ones above and other formats'): append
 * the row {off, 0} to <rs> and, when rs->dim > 0, point *feat at its
 * rs->dim doubles, zero-filled (feat may be NULL when rs->dim == 0). The
 * caller sets rs->rows[rs->nrows - 1].len once the row's end is known.
 * rs->rows and rs->features grow geometrically (rs->cap: 16 rows, then
 * doubling), but never past max_rows nor past the rows the rest of the body
 * can hold (rs->body_len from <off> on, two bytes a row); rs must only grow
 * through this function.
 * Growth is charged to rs->budget (rs->hold) before it is allocated.
 * Returns 0, IG_ERR_TOOBIG when rs already holds <max_rows> rows ("Request
 * has more than N rows.", row 0, in <err>), IG_ERR_FULL when the budget
 * refuses the growth (row nrows + 1 and its message in <err>) or
 * IG_ERR_NOMEM (also in <err>). On failure rs is unchanged (still owning
 * and holding what it had).
 */
int ig_rowset_push(struct ig_rowset *rs, uint32_t max_rows, uint32_t off, double **feat,
                   struct ig_codec_error *err);

/* Fill <err> (may be NULL) with <row> and a printf-formatted message
 * (truncated to fit; bytes outside printable ASCII become '?', so the
 * message is safe to embed in JSON and logs). */
void ig_codec_error_set(struct ig_codec_error *err, uint32_t row, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* <err>'s message without its leading "Row <err->row>: ", for a message
 * that numbers the rows its own way (or as it is, when it has none). */
const char *ig_codec_error_reason(const struct ig_codec_error *err);

/*
 * Append a response of <n> predictions to <out>. preds[i] is a slice of
 * <base> holding one row already encoded in <fmt> (CSV: a line without a
 * newline; JSON / JSON Lines: one JSON value).
 *   IG_FMT_CSV, IG_FMT_JSONL: each slice followed by "\n" (n == 0: nothing);
 *   IG_FMT_RECORDIO: the slices (whole frames) back to back;
 *   IG_FMT_JSON: {"<json_key>":[p1,p2,...]} with no spaces; <json_key> is
 *                JSON-escaped, NULL means "predictions".
 * <base> and <preds> may be NULL when n == 0.
 * Returns 0, IG_ERR_TOOBIG (out's cap), IG_ERR_NOMEM, IG_ERR_UNSUPPORTED
 * (<fmt> out of range, or IG_FMT_LIBSVM: no response format). On failure
 * <out> is left as it was.
 */
int ig_codec_encode_response(enum ig_format fmt, const char *json_key, const char *base,
                             const struct ig_pred *preds, size_t n, struct ig_buf *out);

#endif /* INFERGATE_CODEC_H */

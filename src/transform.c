/*
 * transform.c - POST /transform/{name}: one duplex stream of rows in and
 * predictions out, in input order, while the client is still sending.
 *
 * A stream's life (all on the loop thread):
 *
 *   ig_ts_start: options checked, the response head goes out at once.
 *   ts_on_body: the HTTP layer delivers body bytes as they arrive; they
 *   are appended to <in> and held against the client's flow control (not
 *   consumed) until they are cut into a chunk.
 *   ts_run (a deferred event): complete lines are cut from <in> into
 *   chunks of at most ts_chunk_rows() lines, each a gw_request of its own
 *   that joins the endpoint's batcher like any InvokeEndpoint body (so a
 *   stream's rows share batches with other streams and unary requests);
 *   the bytes cut are consumed (WINDOW_UPDATE). No chunk is cut while the
 *   stream has ts_rows_cap() rows open (cut, not yet written), while its
 *   unsent output is over TS_OUT_HIGH, or while the endpoint's queue has
 *   no room: the client is then held back by flow control, never buffered.
 *   ig_ts_chunk_ok / _fail: a chunk's answer is formatted into its own
 *   output at once (joins and filters applied, error records in place of
 *   failed rows); ts_run writes the done chunks at the head, in order.
 *
 * Records are lines (LF or CRLF); blank lines are skipped. CSV rows are
 * CSV records; JSON Lines and JSON streams carry one JSON row per line.
 * The line numbers in error records count every line from 1.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway_int.h"
#include "infergate/common.h"
#include "infergate/convert.h"
#include "infergate/http.h"
#include "infergate/jpath.h"
#include "infergate/recordio.h"
#include "infergate/workers.h"


/* Bytes of lines in one chunk at most (a longer line goes alone). */
#define TS_CHUNK_BYTES ((size_t)256 << 10)
/* A record (line) longer than this is refused and skipped. Below the
 * stream window (HTTP_H2_STREAM_WINDOW, 1 MiB) and IG_HTTP_STREAM_H1_HELD,
 * which are all a client may send before its bytes are consumed: a line
 * must be seen whole within them, or be known too long. */
#define TS_LINE_MAX ((size_t)512 << 10)
/* Chunks up to this many bytes are decoded on the loop; bigger ones on
 * the decoder pool, at most TS_DECODING_MAX of a stream at once. */
#define TS_DECODE_INLINE_MAX ((size_t)16 << 10)
/* Chunks cut together go to the decoder pool as one job, up to this many
 * (a job's hand-off and wake-ups cost as much as decoding a few dozen
 * rows): while chunks are out, a stream waits for this many chunks' worth
 * of input (at most TS_GROUP_WAIT_MAX bytes) before it cuts again. */
#define TS_GROUP_MAX 4
#define TS_GROUP_WAIT_MAX ((size_t)256 << 10)
#define TS_DECODING_MAX (4 * TS_GROUP_MAX)
/* An emptied input buffer larger than this is freed. */
#define TS_IN_KEEP ((size_t)64 << 10)
/* Decoded rows a stream may have open, in bytes (their features), beside
 * the row count's cap. */
#define TS_FEATURES_MAX ((uint64_t)16 << 20)
/* Unsent output above which no chunk is cut. */
#define TS_OUT_HIGH ((size_t)1 << 20)
/* <in> holds at most what flow control lets through: a stream window
 * (h2) or IG_HTTP_STREAM_H1_HELD plus one read (h1), and a line. */
#define TS_IN_MAX ((size_t)8 << 20)

/* What a stream holds of its input and has not cut yet. */
#define TS_IN(ts) ((ts)->in.data + (ts)->in_off)
#define TS_IN_LEN(ts) ((ts)->in.len - (ts)->in_off)

struct ts_rec {
    uint64_t line;    /* 1-based line number in the stream */
    uint32_t off;     /* the line in the chunk's lines (no terminator) */
    uint32_t len;
    int32_t row;      /* its row in the chunk's rowset, or -1: refused */
    const char *type; /* why refused */
    char *msg;        /* owned */
};

struct ts_chunk {
    struct gw_tstream *ts;
    struct ts_chunk *next;
    struct gw_request *r; /* while its rows are out */
    const char *lines;    /* the cut lines: r's (own_body or own_aux) while r is out */
    size_t lines_len;
    uint64_t first_line;
    uint32_t nrecs;       /* records (output lines) */
    struct ts_rec *recs;  /* NULL: the fast path, record i is row i, line first_line + i */
    struct ig_buf out;    /* the output, once done */
    struct ig_budget *budget; /* the rows' (the connection's share, referenced by them) */
    uint32_t cut_rows;    /* lines counted at the cut (rows_open has them until decoded) */
    uint32_t nrows;       /* rows decoded */
    uint64_t nbytes;      /* their bytes */
    uint8_t breaks;       /* a row holds a line break (gw_rows_break): calls of its own */
    uint8_t decoding;     /* on a decoder: <r> and the records are the worker's */
    uint8_t done;
    uint8_t abort_here;   /* errors=abort: reset the stream after <out> */
};

struct gw_tstream {
    struct ig_gateway *gw;
    struct gw_endpoint *ep;
    struct gw_lane *lane;
    struct gw_tstream *ep_prev, *ep_next; /* ep->streams */
    struct ig_http_req *http;             /* NULL once the client side is done */
    enum ig_format ctype, accept, row_fmt;
    uint8_t join, abort_mode, in_end, blocked, aborting, skipping;
    uint8_t dead;      /* the client side is gone; freed when no chunk is decoding */
    uint8_t out_full;  /* the budgets refused output: no chunk until it drains */
    uint32_t decoding; /* chunks on a decoder */
    uint32_t dim;      /* the upstream's features per row (0: rows as bytes) */
    struct ig_jpath *in_filter, *out_filter;
    struct ig_buf in;  /* delivered; from in_off on, not cut yet (TS_IN) */
    size_t in_off;     /* bytes at the start of <in> already cut (compacted on append) */
    size_t scanned;    /* bytes at the start of TS_IN known to hold no LF */
    uint64_t lines;    /* lines cut so far */
    struct ts_chunk *head, *tail;
    struct ts_chunk *group[TS_GROUP_MAX]; /* cut, for one decoder job (ts_group_submit) */
    uint32_t ngroup;
    size_t last_cut;    /* bytes of the last chunk cut for a decoder */
    uint64_t rows_open; /* records cut and not written yet */
    struct event *ev;
    struct ig_budget_hold hold;
    uint64_t start_us, records_out, bytes_out;
    char first_err[160];
};

/* ---- options ----------------------------------------------------------- */

int ig_ts_pick(const struct ig_http_req *http, void *arg)
{
    const char *m = ig_http_req_method(http);

    (void)arg;
    /* PUT too: what `curl -T FILE` sends */
    return (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0) &&
           strncmp(ig_http_req_path(http), "/transform/", 11) == 0;
}

/* Rows open per stream at most: enough to fill the endpoint's batches in
 * flight twice over (one set out, one being decoded, queued or written),
 * and no more, so that one stream leaves room in the queue and in the
 * batches for everybody else. */
static uint64_t ts_rows_cap(const struct gw_tstream *ts)
{
    const struct ig_endpoint_conf *c = ts->ep->conf;
    uint64_t cap = (uint64_t)c->max_batch_rows * c->max_inflight * 2;
    /* and at most TS_FEATURES_MAX of decoded rows (a wide model's rows) */
    uint64_t by_bytes = TS_FEATURES_MAX / ((uint64_t)ts->dim * sizeof(double) +
                                           sizeof(struct ig_row) + 1);

    if (by_bytes < cap)
        cap = by_bytes;
    return cap < 64 ? 64 : cap;
}

/* Lines per chunk: a batch's worth, so that a chunk is most often one
 * batch (its predictions then go out with no gathering copy), and a
 * stream keeps many chunks in the pipeline. */
static uint32_t ts_chunk_rows(const struct gw_tstream *ts)
{
    uint64_t n = ts->ep->conf->max_batch_rows;

    return n < 16 ? 16 : n > 65536 ? 65536 : (uint32_t)n;
}

/* ---- memory ------------------------------------------------------------ */

/* What the stream holds (its input, its chunks' lines and outputs),
 * charged to its connection's share. 0 or IG_ERR_FULL. */
static int ts_charge(struct gw_tstream *ts)
{
    uint64_t mem = sizeof(*ts) + ts->in.cap;

    for (const struct ts_chunk *c = ts->head; c != NULL; c = c->next)
        mem += sizeof(*c) + c->lines_len + c->out.cap + c->nrecs * sizeof(struct ts_rec);
    if (ts->http == NULL)
        return 0;
    return ig_budget_hold_set(&ts->hold, ig_http_req_budget(ts->http), mem) == 0 ? 0
                                                                                : IG_ERR_FULL;
}

static void ts_kick(struct gw_tstream *ts)
{
    event_active(ts->ev, EV_TIMEOUT, 0);
}

/* ---- records ----------------------------------------------------------- */

/* An error record: JSON formats {"error":{"row":N,"type":T,"message":M}},
 * CSV error,N,T,"M" (quotes doubled). */
static void ts_error_record(struct gw_tstream *ts, struct ig_buf *out, uint64_t line,
                            const char *type, const char *msg)
{
    ts->ep->stream_errors++;
    if (ts->first_err[0] == '\0')
        snprintf(ts->first_err, sizeof(ts->first_err), "%s", msg);
    if (ts->accept == IG_FMT_CSV) {
        ig_buf_printf(out, "error,%llu,%s,\"", (unsigned long long)line, type);
        for (const char *p = msg; *p; p++) {
            if (*p == '"')
                ig_buf_append_char(out, '"');
            ig_buf_append_char(out, *p == '\n' || *p == '\r' ? ' ' : *p);
        }
        ig_buf_append(out, "\"\n", 2);
        return;
    }
    json_t *o = json_pack("{s:{s:I,s:s,s:s}}", "error", "row", (json_int_t)line, "type", type,
                          "message", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    if (s == NULL) /* a message jansson refuses (not UTF-8): the record without it */
        ig_buf_printf(out, "{\"error\":{\"row\":%llu,\"type\":\"%s\"}}\n",
                      (unsigned long long)line, type);
    else
        ig_buf_printf(out, "%s\n", s);
    free(s);
    json_decref(o);
}

/* "Row 1..." from a decode of one line becomes "Row <line>..."; a message
 * naming no row gets "Row <line>: " in front. */
static void ts_row_msg(char *dst, size_t n, uint64_t line, const char *msg)
{
    size_t k = 4;

    if (strncmp(msg, "Row ", 4) == 0 && msg[4] >= '0' && msg[4] <= '9') {
        while (msg[k] >= '0' && msg[k] <= '9')
            k++;
        snprintf(dst, n, "Row %llu%s", (unsigned long long)line, msg + k);
    } else {
        snprintf(dst, n, "Row %llu: %s", (unsigned long long)line, msg);
    }
}

static void ts_rec_fail(struct ts_rec *rec, const char *type, const char *msg)
{
    char m[512];

    ts_row_msg(m, sizeof(m), rec->line, msg);
    rec->row = -1;
    rec->type = type;
    free(rec->msg);
    rec->msg = ig_xstrdup(m);
}

/* A JSON record joined with its prediction: an object gets the member
 * "SageMakerOutput"; any other value goes under "SageMakerInput". */
static void ts_join_json(struct ig_buf *out, const char *in, size_t len, const char *val,
                         size_t vlen)
{
    size_t a = 0, b = len;

    while (a < b && (in[a] == ' ' || in[a] == '\t'))
        a++;
    while (b > a && (in[b - 1] == ' ' || in[b - 1] == '\t' || in[b - 1] == '\r'))
        b--;
    if (b - a >= 2 && in[a] == '{' && in[b - 1] == '}') {
        size_t k = a + 1;

        while (k < b - 1 && (in[k] == ' ' || in[k] == '\t'))
            k++;
        ig_buf_append(out, in + a, b - 1 - a);
        if (k < b - 1)
            ig_buf_append_char(out, ',');
        ig_buf_append_str(out, "\"SageMakerOutput\":");
        ig_buf_append(out, val, vlen);
        ig_buf_append_char(out, '}');
        return;
    }
    ig_buf_append_str(out, "{\"SageMakerInput\":");
    ig_buf_append(out, in + a, b - a);
    ig_buf_append_str(out, ",\"SageMakerOutput\":");
    ig_buf_append(out, val, vlen);
    ig_buf_append_char(out, '}');
}

/* One record's output line: the prediction (JSON Accept: wrapped as the
 * endpoint answers one row), joined with the input, filtered. 0, or -1
 * with the reason in <err>. */
static int ts_format(struct gw_tstream *ts, struct ig_buf *out, struct ig_buf *tmp,
                     const char *in, size_t inlen, const char *p, size_t plen, char *err,
                     size_t errlen)
{
    struct ig_buf *dst = ts->out_filter ? tmp : out;
    const char *key = ts->ep->up->json_key ? ts->ep->up->json_key : "predictions";
    size_t start = out->len;

    ig_buf_reset(tmp);
    if (ts->join && ts->accept == IG_FMT_CSV) {
        ig_buf_append(dst, in, inlen);
        ig_buf_append_char(dst, ',');
        ig_buf_append(dst, p, plen);
    } else if (ts->accept == IG_FMT_JSON) {
        struct ig_buf w;

        ig_buf_init(&w, GW_RESPONSE_MAX);
        ig_buf_printf(&w, "{\"%s\":[", key);
        ig_buf_append(&w, p, plen);
        ig_buf_append_str(&w, "]}");
        if (ts->join)
            ts_join_json(dst, in, inlen, w.data, w.len);
        else
            ig_buf_append(dst, w.data, w.len);
        ig_buf_clear(&w);
    } else if (ts->join) {
        ts_join_json(dst, in, inlen, p, plen);
    } else {
        ig_buf_append(dst, p, plen);
    }
    if (ts->out_filter) {
        int rv = ts->accept == IG_FMT_CSV
                     ? ig_jpath_csv(ts->out_filter, tmp->data, tmp->len, out, err, errlen)
                     : ig_jpath_json(ts->out_filter, tmp->data, tmp->len, out, err, errlen);

        if (rv < 0) {
            out->len = start;
            return -1;
        }
    }
    if ((ts->accept != IG_FMT_RECORDIO && ig_buf_append_char(out, '\n') < 0) ||
        (ts->accept == IG_FMT_RECORDIO && out->len == start && plen > 0)) {
        out->len = start;
        snprintf(err, errlen, "The prediction is too large to hold.");
        return -1;
    }
    return 0;
}

/* ---- chunks ------------------------------------------------------------ */

static void ts_chunk_free(struct ts_chunk *c)
{
    for (uint32_t i = 0; c->recs != NULL && i < c->nrecs; i++)
        free(c->recs[i].msg);
    free(c->recs);
    ig_buf_clear(&c->out);
    free(c);
}

static void ts_chunk_done(struct ts_chunk *c)
{
    c->done = 1;
    if (c->r != NULL) {
        c->r->chunk = NULL;
        c->r = NULL;
    }
    c->lines = NULL; /* r's, about to go */
    ts_kick(c->ts);
}

/* The line text of record <i> (fast path: found by scanning). */
static void ts_chunk_line(const struct ts_chunk *c, uint32_t i, const char **p, size_t *len,
                          const char **cursor)
{
    const char *s = *cursor, *end = c->lines + c->lines_len, *nl;

    if (c->recs != NULL) {
        *p = c->lines + c->recs[i].off;
        *len = c->recs[i].len;
        return;
    }
    nl = memchr(s, '\n', (size_t)(end - s));
    *p = s;
    *len = (size_t)((nl ? nl : end) - s);
    if (*len > 0 && s[*len - 1] == '\r')
        (*len)--;
    *cursor = nl ? nl + 1 : end;
}

/* Format chunk <c>'s output from <nrows> predictions (slices of <base>):
 * each record's line, or its error record; errors=abort stops at the
 * first error, which is not written. */
static void ts_chunk_format(struct ts_chunk *c, const char *base, const struct ig_pred *preds,
                            const struct ig_row_fail *fails, uint32_t nrows)
{
    struct gw_tstream *ts = c->ts;
    struct ig_buf tmp;
    const char *cursor = c->lines;
    char err[512], m[600];
    int plain = c->recs == NULL && !ts->join && !ts->out_filter && ts->accept != IG_FMT_JSON;

    for (uint32_t i = 0; plain && i < nrows; i++)
        plain = !(preds[i].len & IG_PRED_FAILED);
    if (plain && ig_codec_encode_response(ts->accept, NULL, base, preds, nrows, &c->out) == 0) {
        ts_chunk_done(c);
        return;
    }
    ig_buf_init(&tmp, GW_RESPONSE_MAX);
    for (uint32_t i = 0; i < c->nrecs; i++) {
        const struct ts_rec *rec = c->recs ? &c->recs[i] : NULL;
        uint64_t line = rec ? rec->line : c->first_line + i;
        int32_t row = rec ? rec->row : (int32_t)i;
        size_t mark = c->out.len;
        const char *in;
        size_t inlen;

        ts_chunk_line(c, i, &in, &inlen, &cursor);
        if (row < 0) {
            ts_error_record(ts, &c->out, line, rec->type, rec->msg);
        } else if (preds[row].len & IG_PRED_FAILED) {
            const struct ig_row_fail *f = fails ? &fails[row] : NULL;

            snprintf(m, sizeof(m), "Row %llu: %.*s", (unsigned long long)line,
                     (int)(preds[row].len & ~IG_PRED_FAILED), base + preds[row].off);
            ts_error_record(ts, &c->out, line,
                            f != NULL && f->type != NULL ? f->type : "ModelError", m);
        } else if (ts_format(ts, &c->out, &tmp, in, inlen, base + preds[row].off,
                             preds[row].len, err, sizeof(err)) < 0) {
            ts_row_msg(m, sizeof(m), line, err);
            ts_error_record(ts, &c->out, line, "ValidationError", m);
        } else {
            continue;
        }
        if (ts->abort_mode) { /* the error record is not sent: the stream resets */
            c->out.len = mark;
            c->abort_here = 1;
            break;
        }
    }
    ig_buf_clear(&tmp);
    ts_chunk_done(c);
}

void ig_ts_chunk_ok(struct gw_request *r, const char *base, const struct ig_pred *preds)
{
    ts_chunk_format(r->chunk, base, preds, r->fails_view ? r->fails_view : r->row_fails,
                    r->rs.nrows);
}

void ig_ts_chunk_fail(struct gw_request *r, const char *type, const char *msg)
{
    struct ts_chunk *c = r->chunk;
    struct gw_tstream *ts = c->ts;
    char m[600];

    for (uint32_t i = 0; i < c->nrecs; i++) {
        const struct ts_rec *rec = c->recs ? &c->recs[i] : NULL;
        uint64_t line = rec ? rec->line : c->first_line + i;

        if (ts->abort_mode) {
            ts->ep->stream_errors++;
            if (ts->first_err[0] == '\0')
                snprintf(ts->first_err, sizeof(ts->first_err), "%s", msg);
            c->abort_here = 1;
            break;
        }
        if (rec != NULL && rec->row < 0) {
            ts_error_record(ts, &c->out, line, rec->type, rec->msg);
            continue;
        }
        ts_row_msg(m, sizeof(m), line, msg);
        ts_error_record(ts, &c->out, line, type, m);
    }
    ts_chunk_done(c);
}

void ig_ts_chunk_gone(struct gw_request *r)
{
    if (r->chunk != NULL)
        r->chunk->r = NULL;
    r->chunk = NULL;
}

/*
 * RecordIO streams: the length of the record that starts at <p> (<avail>
 * bytes there), its frames whole: 1 and *len when it is all there, 0 when
 * more bytes are needed, -1 when the framing is broken or the record is
 * over TS_LINE_MAX (<msg> says why, naming record <rec>). The frames are
 * only walked here; their data is read by the decoder.
 */
static int ts_record_len(const uint8_t *p, size_t avail, uint64_t rec, size_t *len, char *msg,
                         size_t msglen)
{
    size_t off = 0;
    int inside = 0;

    for (;;) {
        uint32_t magic, word, flag, flen;
        size_t total;

        if (avail - off < 8)
            break;
        magic = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                (uint32_t)p[off + 3] << 24;
        word = (uint32_t)p[off + 4] | (uint32_t)p[off + 5] << 8 | (uint32_t)p[off + 6] << 16 |
               (uint32_t)p[off + 7] << 24;
        if (magic != IG_RECORDIO_MAGIC) {
            snprintf(msg, msglen, "Row %llu: bad RecordIO magic 0x%08x (expected 0x%08x); the "
                     "rest of the stream is not read.",
                     (unsigned long long)rec, magic, IG_RECORDIO_MAGIC);
            return -1;
        }
        flag = word >> 29;
        flen = word & IG_RECORDIO_MAX_FRAME;
        if ((flag == 0 || flag == 1) ? inside : !inside) {
            snprintf(msg, msglen, "Row %llu: RecordIO continuation flag %u out of sequence; the "
                     "rest of the stream is not read.",
                     (unsigned long long)rec, flag);
            return -1;
        }
        total = 8 + (((size_t)flen + 3) & ~(size_t)3);
        if (off + total > TS_LINE_MAX) {
            snprintf(msg, msglen, "Row %llu: the record is longer than %zu bytes; the rest of "
                     "the stream is not read.",
                     (unsigned long long)rec, TS_LINE_MAX);
            return -1;
        }
        if (avail - off < total)
            break;
        off += total;
        if (flag == 0 || flag == 3) {
            *len = off;
            return 1;
        }
        inside = 1;
    }
    return 0;
}

/* Whether <ts>'s input holds a whole record (a line; RecordIO: a record). */
static int ts_whole_record(struct gw_tstream *ts);

/* Count the lines of <p>[0, len) that ended with LF; NULL-safe. */
static uint32_t ts_count_lf(const char *p, size_t len)
{
    uint32_t n = 0;
    const char *end = p + len;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* Whether <ts>'s rows are converted for the model (upstream_content_type). */
static int ts_converts(const struct gw_tstream *ts)
{
    if (ts->lane->ctype == IG_FMT_JSON && ts->row_fmt == IG_FMT_JSONL)
        return 0; /* a JSON stream's lines are JSON rows already */
    return gw_converts(ts->ep, ts->row_fmt, ts->lane->ctype, ts->ep->conf->libsvm_index_base);
}

/*
 * The slow path: records one by one (blank lines skipped, input filter
 * applied, each decoded on its own so that a bad one is refused alone),
 * then the good ones decoded together into <r>'s rowset. <r->own_body>
 * holds the cut lines on entry.
 */
static int ts_chunk_records(struct gw_tstream *ts, struct ts_chunk *c, struct gw_request *r)
{
    const char *s = r->own_body, *end = s + c->lines_len;
    struct ig_buf sent, one;
    struct ig_codec_error cerr;
    char err[512];
    int rio = ts->row_fmt == IG_FMT_RECORDIO;
    uint32_t cap = rio ? c->nrecs + 1 : ts_count_lf(s, c->lines_len) + 1, nrows = 0;
    uint64_t line = c->first_line;
    size_t conv_cap = 0; /* the sum of the converted rows' own caps */
    int rv;

    c->nrecs = 0;
    c->recs = ig_xcalloc(cap, sizeof(*c->recs));
    ig_buf_init(&sent, (size_t)-1 / 2);
    ig_buf_init(&one, TS_LINE_MAX + (1u << 16));
    for (; s < end && c->nrecs < cap; line++) {
        const char *nl;
        size_t len;
        struct ts_rec *rec;
        const char *row = s;
        size_t rowlen;

        if (rio) { /* whole records, cut so (ts_record_len) */
            if (ts_record_len((const uint8_t *)s, (size_t)(end - s), line, &len, err,
                              sizeof(err)) != 1)
                break; /* not reached */
            nl = s + len - 1;
        } else {
            nl = memchr(s, '\n', (size_t)(end - s));
            len = (size_t)((nl ? nl : end) - s);
            if (len > 0 && s[len - 1] == '\r')
                len--;
            if (len == 0) { /* blank: skipped */
                s = nl ? nl + 1 : end;
                continue;
            }
        }
        rec = &c->recs[c->nrecs++];
        rec->line = line;
        rec->off = (uint32_t)(s - r->own_body);
        rec->len = (uint32_t)len;
        rec->row = -1;
        s = nl ? nl + 1 : end;
        rowlen = len;
        if (ts->in_filter) {
            ig_buf_reset(&one);
            rv = ts->row_fmt == IG_FMT_CSV
                     ? ig_jpath_csv(ts->in_filter, row, len, &one, err, sizeof(err))
                     : ig_jpath_json(ts->in_filter, row, len, &one, err, sizeof(err));
            if (rv < 0) {
                ts_rec_fail(rec, "ValidationError", err);
                continue;
            }
            row = one.data;
            rowlen = one.len;
        }
        /* each record on its own: a bad one is refused alone */
        struct ig_rowset tmp;

        memset(&tmp, 0, sizeof(tmp));
        tmp.index_base = (uint8_t)ts->ep->conf->libsvm_index_base;
        tmp.missing_nan = ts->ep->up->missing_nan;
        rv = ig_codec_decode(ts->row_fmt, row, rowlen, ts->dim, 1, &tmp, &cerr);
        if (rv == 0 && ts_converts(ts)) {
            /* one that cannot be converted in what its size allows (as a
             * unary request of it alone) is refused alone */
            struct ig_buf cb;
            struct ig_rowset co;

            ig_buf_init(&cb, gw_convert_cap(rowlen));
            memset(&co, 0, sizeof(co));
            rv = ig_convert_rows(ts->row_fmt, &tmp, ts->lane->ctype, ts->ep->conf->feature_dim,
                                 &cb, &co, &cerr);
            ig_rowset_clear(&co);
            ig_buf_clear(&cb);
            if (rv == 0)
                conv_cap += gw_convert_cap(rowlen);
        }
        ig_rowset_clear(&tmp);
        if (rv < 0) {
            ts_rec_fail(rec, rv == IG_ERR_FULL ? "ThrottlingException" : "ValidationError",
                        cerr.msg);
            continue;
        }
        rec->row = (int32_t)nrows++;
        if (ig_buf_append(&sent, row, rowlen) < 0 ||
            (!rio && ig_buf_append_char(&sent, '\n') < 0)) {
            ts_rec_fail(rec, "InternalFailure", "Out of memory for the record.");
            nrows--;
        }
    }
    ig_buf_clear(&one);
    if (nrows == 0) {
        ig_buf_clear(&sent);
        return 0;
    }
    /* the rows go as sent; the lines stay for joins and error records */
    r->own_aux = r->own_body;
    r->own_body = ig_buf_take(&sent, &c->lines_len);
    c->lines = r->own_aux;
    {
        size_t sent_len = c->lines_len;

        c->lines_len = (size_t)(end - r->own_aux);
        rv = ig_codec_decode(ts->row_fmt, r->own_body, sent_len, ts->dim, nrows, &r->rs, &cerr);
    }
    if (rv == 0 && r->rs.nrows == nrows && ts_converts(ts))
        rv = gw_req_convert(r, ts->row_fmt, ts->lane->ctype, conv_cap, &cerr);
    if (rv < 0 || r->rs.nrows != nrows) {
        for (uint32_t i = 0; i < c->nrecs; i++)
            if (c->recs[i].row >= 0)
                ts_rec_fail(&c->recs[i], rv == IG_ERR_FULL ? "ThrottlingException"
                                                           : "ValidationError",
                            rv < 0 ? cerr.msg : "The record does not decode to one row.");
        ig_rowset_clear(&r->rs);
        return 0;
    }
    return (int)nrows;
}

/* Worker thread (or the loop, when the decoders are full): decode chunk
 * <c>'s lines into its request's rows: the lines as they came when they
 * decode cleanly (the fast path), else record by record. Touches only <c>,
 * its request and the stream's options, which stay until it is done. */
static void ts_decode_work(void *arg)
{
    struct ts_chunk *c = arg;
    struct gw_tstream *ts = c->ts;
    struct gw_request *r = c->r;
    struct ig_codec_error cerr;
    size_t len = c->lines_len;
    int rv = -1;

    if (!ts->join && !ts->in_filter) {
        uint32_t want = c->nrecs; /* lines, counted at the cut */

        rv = ig_codec_decode(ts->row_fmt, r->own_body, len, ts->dim, want, &r->rs, &cerr);
        if (rv == 0 && r->rs.nrows == want && ts_converts(ts) &&
            gw_req_convert(r, ts->row_fmt, ts->lane->ctype, 0, &cerr) < 0) {
            ig_rowset_clear(&r->rs); /* record by record: only the bad ones fail */
            r->rs.budget = c->budget;
            r->rs.index_base = (uint8_t)ts->ep->conf->libsvm_index_base;
            r->rs.missing_nan = ts->ep->up->missing_nan;
            rv = -1;
        }
        if (rv == 0 && r->rs.nrows != want) {
            ig_rowset_clear(&r->rs); /* a quoted field spans lines: record by record */
            r->rs.budget = c->budget;
            r->rs.index_base = (uint8_t)ts->ep->conf->libsvm_index_base;
            r->rs.missing_nan = ts->ep->up->missing_nan;
            rv = -1;
        }
    }
    if (rv == 0) {
        c->nrows = r->rs.nrows;
    } else {
        c->nrows = (uint32_t)ts_chunk_records(ts, c, r); /* counts c->nrecs again */
    }
    c->nbytes = 0;
    for (uint32_t i = 0; i < r->rs.nrows; i++)
        c->nbytes += r->rs.rows[i].len;
    /* a row a line-reading model would read as two (a VT, a U+2028 in a
     * record) must not share a call with other requests' rows */
    c->breaks = (uint8_t)gw_rows_break(ts->ep->up, &r->rs, ts->lane->ctype);
}

static void ts_release(struct gw_tstream *ts);

/* Loop thread: chunk <c> is decoded: its rows join the endpoint's queue
 * (none: its error records are its output now). */
static void ts_decode_done(void *arg)
{
    struct ts_chunk *c = arg;
    struct gw_tstream *ts = c->ts;
    struct gw_request *r = c->r;

    c->decoding = 0;
    ts->decoding--;
    ts->rows_open = ts->rows_open - c->cut_rows + c->nrecs;
    if (ts->dead || ts->gw->closing) {
        /* the client went away meanwhile: its rows go nowhere */
        r->chunk = NULL;
        c->r = NULL;
        gw_req_finish(r);
        if (ts->dead)
            ts_release(ts);
        return;
    }
    if (c->nrows == 0) { /* every record refused, or none: no rows to send */
        ts_chunk_format(c, NULL, NULL, NULL, 0);
        r->chunk = NULL;
        gw_req_finish(r);
        return;
    }
    r->rs.rows_apart = 1;
    r->breaks = c->breaks;
    gw_req_decoded(r, 0, NULL, c->nbytes);
    ts_kick(ts);
}

/* Chunks handed to a decoder together, decoded in order. */
struct ts_group {
    uint32_t n;
    struct ts_chunk *c[TS_GROUP_MAX];
};

static void ts_group_work(void *arg)
{
    struct ts_group *g = arg;

    for (uint32_t i = 0; i < g->n; i++)
        ts_decode_work(g->c[i]);
}

/* Loop thread. The stream may be freed by the last chunk's done (a dead
 * stream): <g> holds no reference to it. */
static void ts_group_done(void *arg)
{
    struct ts_group *g = arg;

    for (uint32_t i = 0; i < g->n; i++)
        ts_decode_done(g->c[i]);
    free(g);
}

/* Hand the chunks cut for a decoder to one (or, when the pool is full,
 * decode them here). */
static void ts_group_submit(struct gw_tstream *ts)
{
    struct ts_group *g;
    uint32_t n = ts->ngroup;

    if (n == 0)
        return;
    ts->ngroup = 0;
    g = ig_xmalloc(sizeof(*g));
    g->n = n;
    memcpy(g->c, ts->group, n * sizeof(g->c[0]));
    if (ig_workers_submit(ts->gw->decoders, ts_group_work, ts_group_done, g) < 0) {
        ts_group_work(g);
        ts_group_done(g);
    }
}

/* A new chunk of the <len> bytes at the start of <in> (<nlf> whole lines,
 * and the last one without its LF at the end of the body), queued at the
 * tail and handed to a decoder. */
static void ts_cut(struct gw_tstream *ts, size_t len, uint32_t nlf)
{
    struct ts_chunk *c = ig_xcalloc(1, sizeof(*c));
    struct gw_request *r = ig_xcalloc(1, sizeof(*r));

    c->ts = ts;
    c->first_line = ts->lines + 1;
    c->lines_len = len;
    c->nrecs = ts->row_fmt == IG_FMT_RECORDIO ? nlf
                                              : nlf + (len > 0 && TS_IN(ts)[len - 1] != '\n');
    c->cut_rows = c->nrecs;
    /* the decoded rows are charged to the server-wide budget, as a unary
     * request's gathered predictions: the connection's share holds the
     * stream's input and output, and refusing rows already cut would turn
     * them into errors (the rows open are capped by count and bytes) */
    c->budget = ts->http ? ig_http_req_budget(ts->http) : NULL;
    if (c->budget != NULL && c->budget->parent != NULL)
        c->budget = c->budget->parent;
    ig_buf_init(&c->out, GW_RESPONSE_MAX);
    ts->lines += c->nrecs;
    ts->rows_open += c->nrecs;
    if (ts->tail)
        ts->tail->next = c;
    else
        ts->head = c;
    ts->tail = c;

    r->gw = ts->gw;
    r->lane = ts->lane;
    /* its client's: the lanes share the endpoint's slots by client, and a
     * chunk of no client read as one never served, ahead of all others */
    r->peer_key = ts->http != NULL ? ig_http_req_peer_key(ts->http) : 0;
    r->accept = (uint8_t)ts->accept;
    r->lane->ep->refs++; /* gw_req_free gives it back */
    r->refs = 1;
    r->start_us = ig_now_us();
    ig_buf_init(&r->out, GW_RESPONSE_MAX);
    r->rs.budget = c->budget;
    r->rs.index_base = (uint8_t)ts->ep->conf->libsvm_index_base;
    r->rs.missing_nan = ts->ep->up->missing_nan;
    r->own_body = ig_xmalloc(len + 1);
    memcpy(r->own_body, TS_IN(ts), len);
    r->own_body[len] = '\0';
    r->chunk = c;
    c->r = r;
    c->lines = r->own_body;
    c->decoding = 1;
    ts->decoding++;
    /* a small chunk costs less here than a worker's round trip */
    if (len <= TS_DECODE_INLINE_MAX) {
        ts_decode_work(c);
        ts_decode_done(c);
        return;
    }
    ts->last_cut = len;
    ts->group[ts->ngroup++] = c;
    if (ts->ngroup == TS_GROUP_MAX)
        ts_group_submit(ts);
}

/* ---- the stream -------------------------------------------------------- */

/* Free <ts> once no chunk of it is on a decoder (the decoders read its
 * options): the last ts_decode_done of a dead stream calls it again. */
static void ts_release(struct gw_tstream *ts)
{
    struct ts_chunk *c, **pc = &ts->head;

    /* chunks back from their decoders go; those still there stay */
    while ((c = *pc) != NULL) {
        if (c->decoding) {
            pc = &c->next;
            continue;
        }
        *pc = c->next;
        if (c->r != NULL) { /* its rows are out: they are dropped */
            struct gw_request *r = c->r;

            r->chunk = NULL;
            c->r = NULL;
            gw_req_finish(r);
        }
        ts_chunk_free(c);
    }
    if (ts->decoding > 0)
        return;
    event_free(ts->ev);
    ig_jpath_free(ts->in_filter);
    ig_jpath_free(ts->out_filter);
    ig_buf_clear(&ts->in);
    ig_budget_hold_clear(&ts->hold);
    gw_ep_unref(ts->ep);
    free(ts);
}

/* The client side is done with <ts> (ended, reset or gone). */
static void ts_free(struct gw_tstream *ts)
{
    struct gw_endpoint *ep = ts->ep;

    if (ts->blocked)
        ep->streams_blocked--;
    ts->blocked = 0;
    if (ts->ep_prev)
        ts->ep_prev->ep_next = ts->ep_next;
    else
        ep->streams = ts->ep_next;
    if (ts->ep_next)
        ts->ep_next->ep_prev = ts->ep_prev;
    ts->dead = 1;
    ts->http = NULL;
    ep->streams_open--;
    event_del(ts->ev);
    ts_release(ts);
}

/* The access-log line of a stream that ended (<status> 200) or whose
 * client went away (0). */
static void ts_access(struct gw_tstream *ts, int status, const char *etype)
{
    struct ig_access_rec rec = {0};

    if (!ig_log_access_on && etype == NULL && status < 400)
        return;
    rec.request_id = ig_http_req_id(ts->http);
    rec.endpoint = ts->ep->conf->name;
    rec.proto = strcmp(ig_http_req_proto(ts->http), "h2") == 0 ? "HTTP/2" : "HTTP/1.1";
    rec.status = status;
    rec.error_type = etype;
    rec.rows = ts->records_out;
    rec.bytes_out = ts->bytes_out;
    rec.total_us = ig_now_us() - ts->start_us;
    ig_log_access(&rec);
}

static void ts_on_closed(struct ig_http_req *http, void *arg)
{
    struct gw_tstream *ts = arg;

    (void)http;
    ts_access(ts, 0, NULL);
    ts->http = NULL;
    ts_free(ts);
}

/* Leave the client side: the response ended (or was reset). */
static void ts_finish(struct gw_tstream *ts, int reset)
{
    struct ig_http_req *http = ts->http;

    ig_http_req_set_close_cb(http, NULL, NULL);
    gw_count_status(ts->gw, 200);
    if (reset)
        ig_log(IG_LOG_WARN, "transform %s: stream reset after %llu records: %s",
               ts->ep->conf->name, (unsigned long long)ts->records_out, ts->first_err);
    ts_access(ts, 200, reset ? "StreamAborted" : NULL);
    ts->http = NULL;
    if (reset)
        ig_http_stream_reset(http);
    else
        ig_http_stream_end(http);
    ts_free(ts);
}

/* Write the done chunks at the head, in order. 1 when the stream ended. */
static int ts_flush(struct gw_tstream *ts)
{
    struct ts_chunk *c;

    while ((c = ts->head) != NULL && c->done) {
        if (c->out.len > 0 && ig_http_stream_write(ts->http, c->out.data, c->out.len) < 0) {
            ts->out_full = 1; /* queued anyway; nothing more until it drains */
            ig_http_stream_wait_writable(ts->http);
        }
        ts->bytes_out += c->out.len;
        ts->records_out += c->nrecs;
        ts->ep->stream_records += c->nrecs;
        ts->rows_open -= c->nrecs;
        ts->head = c->next;
        if (ts->head == NULL)
            ts->tail = NULL;
        if (c->abort_here) {
            ts_chunk_free(c);
            ts_finish(ts, 1);
            return 1;
        }
        ts_chunk_free(c);
    }
    return 0;
}

/* The next record refused with <m> (its error record, or the reset in
 * abort mode), and what follows skipped: up to its LF (skipping 1), or
 * the rest of the stream (2: a RecordIO stream whose framing is lost). */
static void ts_refuse(struct gw_tstream *ts, const char *m, uint8_t skipping)
{
    struct ts_chunk *c = ig_xcalloc(1, sizeof(*c));

    c->ts = ts;
    c->first_line = ++ts->lines;
    c->nrecs = 1;
    ig_buf_init(&c->out, GW_RESPONSE_MAX);
    if (ts->abort_mode) {
        ts->ep->stream_errors++;
        snprintf(ts->first_err, sizeof(ts->first_err), "%s", m);
        c->abort_here = 1;
    } else {
        ts_error_record(ts, &c->out, c->first_line, "ValidationError", m);
    }
    c->done = 1;
    ts->rows_open++;
    if (ts->tail)
        ts->tail->next = c;
    else
        ts->head = c;
    ts->tail = c;
    ts->skipping = skipping;
}

/* An over-long line: refused, and the rest of it skipped up to its LF. */
static void ts_long_line(struct gw_tstream *ts)
{
    char m[160];

    snprintf(m, sizeof(m), "Row %llu: the record is longer than %zu bytes.",
             (unsigned long long)ts->lines + 1, TS_LINE_MAX);
    ts_refuse(ts, m, 1);
}

/* Drop the bytes at the start of <in> that were cut (or skipped), and
 * give them back to the client's flow control. */
static void ts_take(struct gw_tstream *ts, size_t n)
{
    ts->in_off += n;
    if (ts->in_off == ts->in.len) {
        ts->in_off = ts->in.len = 0;
        if (ts->in.cap > TS_IN_KEEP)
            ig_buf_clear(&ts->in); /* a burst's buffer goes back (and off the budget) */
    }
    ts->scanned = 0;
    if (ts->http)
        ig_http_stream_consume(ts->http, n);
}

/* Draining, half of drain_timeout_ms has passed and the client still
 * sends: the stream takes no more input. */
static int ts_drain_cut(const struct gw_tstream *ts)
{
    return ts->gw->draining && !ts->in_end && ig_now_us() >= ts->gw->stream_cut_us;
}

/* May another chunk be cut now? */
static int ts_may_cut(struct gw_tstream *ts, uint32_t rows)
{
    const struct gw_endpoint *ep = ts->ep;
    int blocked;

    /* half into the drain, a stream still sending takes no more rows
     * (ts_run) */
    if (ts_drain_cut(ts) || ts->rows_open >= ts_rows_cap(ts) || ts->aborting ||
        ts->decoding >= TS_DECODING_MAX || ts->out_full ||
        ig_http_stream_unsent(ts->http) > TS_OUT_HIGH)
        return 0;
    /* what it holds must fit its connection's share: over it, the stream
     * waits for its chunks out to come back (they free memory), but one
     * with nothing out may always cut: its input, which flow control
     * bounds, only moves into a chunk */
    if (ts_charge(ts) != 0 && ts->head != NULL)
        return 0;
    /* room in the endpoint's queue; a stream with nothing open always
     * gets one chunk in, or it could wait forever behind full queues of
     * others that a batch would free (it is woken by any batch) */
    blocked = gw_endpoint_queued(ep) + (uint64_t)rows > ep->conf->max_queue_rows &&
              ts->rows_open > 0;
    if (blocked != ts->blocked) {
        ts->blocked = (uint8_t)blocked;
        if (blocked)
            ts->ep->streams_blocked++;
        else
            ts->ep->streams_blocked--;
    }
    return !blocked;
}

/* The first LF in <in>, scanning only bytes not scanned before (a line
 * trickled in small pieces is not rescanned from its start each time). */
static const char *ts_first_lf(struct gw_tstream *ts)
{
    const char *nl = NULL;

    if (ts->scanned < TS_IN_LEN(ts))
        nl = memchr(TS_IN(ts) + ts->scanned, '\n', TS_IN_LEN(ts) - ts->scanned);
    ts->scanned = nl ? (size_t)(nl - TS_IN(ts)) : TS_IN_LEN(ts);
    return nl;
}

static int ts_whole_record(struct gw_tstream *ts)
{
    char msg[8];
    size_t len;

    if (ts->row_fmt != IG_FMT_RECORDIO)
        return ts_first_lf(ts) != NULL;
    return ts_record_len((const uint8_t *)TS_IN(ts), TS_IN_LEN(ts), 0, &len, msg,
                         sizeof(msg)) != 0;
}

/* ts_cut_all for RecordIO: whole records, the framing walked (not the
 * data); a broken frame ends what is read of the stream. */
static void ts_cut_records(struct gw_tstream *ts)
{
    uint32_t max_rows = ts_chunk_rows(ts);
    char msg[200];

    while (ts->http != NULL && !ts->aborting) {
        const uint8_t *p = (const uint8_t *)TS_IN(ts);
        size_t avail = TS_IN_LEN(ts), window, off = 0, len;
        uint32_t n = 0;
        int rv = 0;

        if (ts->skipping) { /* the framing is lost: the rest goes unread */
            ts_take(ts, avail);
            return;
        }
        if (avail == 0)
            return;
        window = avail < TS_CHUNK_BYTES ? avail : TS_CHUNK_BYTES;
        while (n < max_rows &&
               (rv = ts_record_len(p + off, avail - off, ts->lines + n + 1, &len, msg,
                                   sizeof(msg))) == 1 &&
               (n == 0 || off + len <= window)) {
            off += len;
            n++;
        }
        if (n == 0) {
            if (rv == 0 && ts->in_end) {
                snprintf(msg, sizeof(msg), "Row %llu: truncated RecordIO record: the stream "
                         "ends inside it.", (unsigned long long)ts->lines + 1);
                rv = -1;
            }
            if (rv == 0 || !ts_may_cut(ts, 1))
                return;
            ts_refuse(ts, msg, 2);
            ts_take(ts, avail);
            return;
        }
        if (ts->head != NULL && !ts->in_end && rv == 0 && n < max_rows &&
            off < 2 * TS_DECODE_INLINE_MAX)
            return;
        if (!ts_may_cut(ts, n))
            return;
        ts_cut(ts, off, n);
        ts_take(ts, off);
    }
}

/* Cut what may be cut from <in> (ts_cut_all). */
static void ts_cut_lines(struct gw_tstream *ts)
{
    uint32_t max_rows = ts_chunk_rows(ts);

    if (ts->row_fmt == IG_FMT_RECORDIO) {
        ts_cut_records(ts);
        return;
    }
    while (ts->http != NULL && !ts->aborting) {
        const char *p = TS_IN(ts), *first = ts_first_lf(ts), *end, *nl, *last;
        size_t avail = TS_IN_LEN(ts);
        size_t window, len, first_len;
        uint32_t n;

        if (ts->skipping) { /* the rest of an over-long line */
            if (first == NULL) {
                ts_take(ts, avail);
                return;
            }
            ts->skipping = 0;
            ts_take(ts, (size_t)(first - p) + 1);
            continue;
        }
        if (avail == 0)
            return;
        first_len = first ? (size_t)(first - p) : avail;
        if (first_len > 0 && p[first_len - 1] == '\r')
            first_len--;
        if (first_len > TS_LINE_MAX) {
            /* refused alone: up to its LF, or all there is and the rest
             * of it skipped as it comes */
            if (!ts_may_cut(ts, 1))
                return;
            ts_long_line(ts);
            ts->skipping = first == NULL && !ts->in_end;
            ts_take(ts, first ? (size_t)(first - p) + 1 : avail);
            continue;
        }
        if (first == NULL) {
            if (!ts->in_end || !ts_may_cut(ts, 1))
                return;
            ts_cut(ts, avail, 0); /* the last line, without its LF */
            ts_take(ts, avail);
            continue;
        }
        /* whole lines, at most max_rows and TS_CHUNK_BYTES (the first
         * line goes alone when it is longer) */
        window = avail < TS_CHUNK_BYTES ? avail : TS_CHUNK_BYTES;
        end = p + window;
        last = first;
        n = 1;
        for (const char *q = first + 1; n < max_rows && q < end &&
                                        (nl = memchr(q, '\n', (size_t)(end - q))) != NULL;
             q = nl + 1) {
            last = nl;
            n++;
        }
        len = (size_t)(last - p) + 1;
        /* while chunks are out, a few lines wait for more to come (or for
         * those chunks to return, which runs this again): small chunks
         * would be decoded here on the loop, big ones go to the decoders,
         * and they go a few chunks to a job; a stream with nothing out
         * sends what it has at once */
        if (ts->head != NULL && !ts->in_end &&
            ((n < max_rows && len < 2 * TS_DECODE_INLINE_MAX) ||
             (ts->ngroup == 0 && ts->last_cut > 0 &&
              avail < ts->last_cut * TS_GROUP_MAX && avail < TS_GROUP_WAIT_MAX)))
            return;
        if (!ts_may_cut(ts, n))
            return;
        ts_cut(ts, len, n);
        ts_take(ts, len);
    }
}

/* Cut what may be cut from <in>; the chunks for a decoder go to it. */
static void ts_cut_all(struct gw_tstream *ts)
{
    ts_cut_lines(ts);
    ts_group_submit(ts);
}

static void ts_run(struct gw_tstream *ts)
{
    if (ts->http == NULL)
        return;
    if (ts_flush(ts))
        return;
    ts_cut_all(ts);
    /* chunks with no rows are done at once */
    if (ts_flush(ts))
        return;
    if (ts->in_end && TS_IN_LEN(ts) == 0 && ts->head == NULL) {
        ts_finish(ts, 0);
        return;
    }
    if (ts_charge(ts) != 0 && ts->head == NULL && !ts_whole_record(ts) && TS_IN_LEN(ts) > 0) {
        /* over the budgets with nothing out and no whole line: a partial
         * line holds memory others need and only its client can free (a
         * unary request would get ThrottlingException) */
        snprintf(ts->first_err, sizeof(ts->first_err),
                 "ThrottlingException: a partial line held while the bytes held for clients "
                 "are at their limit");
        ts_finish(ts, 1);
        return;
    }
    /* the stall rule's clock runs only while the stream waits on its
     * client: not while it holds whole lines back itself, nor while its
     * rows are out (a client may wait for its answers before it sends on) */
    ig_http_stream_waiting(ts->http,
                           ts->head == NULL && (ts->skipping || !ts_whole_record(ts)));
    if (ts_drain_cut(ts) && ts->head == NULL) {
        /* SIGTERM: the rows taken are answered, then the stream is reset:
         * the client knows how many records came back and resumes after
         * them elsewhere */
        snprintf(ts->first_err, sizeof(ts->first_err),
                 "the gateway is shutting down (the client sends on)");
        ts_finish(ts, 1);
        return;
    }
    if (ig_http_stream_unsent(ts->http) > TS_OUT_HIGH)
        ig_http_stream_wait_writable(ts->http);
}

static void ts_on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ts_run(arg);
}

static void ts_on_writable(struct ig_http_req *http, void *arg)
{
    struct gw_tstream *ts = arg;

    (void)http;
    ts->out_full = 0;
    ts_run(ts);
}

static void ts_on_body(struct ig_http_req *http, const char *data, size_t len, int end,
                       void *arg)
{
    struct gw_tstream *ts = arg;

    (void)http;
    if (!end && ts->in_off > 0 &&
        (ts->in_off >= TS_IN_LEN(ts) || ts->in.len + len >= ts->in.cap)) {
        /* the bytes cut go: at most as many are moved as were cut */
        memmove(ts->in.data, TS_IN(ts), TS_IN_LEN(ts));
        ts->in.len -= ts->in_off;
        ts->in_off = 0;
    }
    if (end) {
        ts->in_end = 1;
    } else if (ig_buf_append(&ts->in, data, len) < 0) {
        /* more than flow control lets through: not reached */
        ig_http_stream_consume(http, len);
        ts->aborting = 1;
        snprintf(ts->first_err, sizeof(ts->first_err), "input over %zu bytes held", TS_IN_MAX);
    }
    ts_kick(ts); /* not from inside the parser */
}

void ig_ts_drain(struct gw_endpoint *ep)
{
    for (struct gw_tstream *ts = ep->streams; ts != NULL; ts = ts->ep_next)
        ts_kick(ts);
}

void ig_ts_wake(struct gw_endpoint *ep)
{
    for (struct gw_tstream *ts = ep->streams; ts != NULL; ts = ts->ep_next)
        if (ts->blocked)
            ts_kick(ts);
}

/* An X-Infergate-* option: a filter (NULL when absent). 0, or -1 with the
 * message in <msg>. */
static int ts_filter(struct ig_http_req *http, const char *name, struct ig_jpath **out,
                     char *msg, size_t msglen)
{
    const char *v = ig_http_req_header(http, name);
    char err[256];

    *out = NULL;
    if (v == NULL)
        return 0;
    if (ig_jpath_parse(v, out, err, sizeof(err)) < 0) {
        snprintf(msg, msglen, "%s: %s", name, err);
        return -1;
    }
    return 0;
}

void ig_ts_start(struct ig_gateway *gw, struct ig_http_req *http, const char *name,
                 size_t namelen)
{
    enum ig_format ctype, accept;
    struct gw_endpoint *ep = gw_route(gw, http, name, namelen, 0, &ctype, &accept);
    struct gw_tstream *ts;
    struct ig_http_hdr hdrs[2];
    const char *v;
    char msg[512];

    if (ep == NULL)
        return;
    ts = ig_xcalloc(1, sizeof(*ts));
    ts->gw = gw;
    ts->ep = ep;
    ts->http = http;
    ts->ctype = ctype;
    ts->accept = accept;
    ts->row_fmt = ctype == IG_FMT_JSON ? IG_FMT_JSONL : ctype;
    ts->dim = ep->up->dim;
    ts->start_us = ig_now_us();
    ig_buf_init(&ts->in, TS_IN_MAX);
    msg[0] = '\0';
    if ((v = ig_http_req_header(http, "X-Infergate-Join")) != NULL) {
        if (strcasecmp(v, "input") == 0)
            ts->join = 1;
        else if (strcasecmp(v, "none") != 0)
            snprintf(msg, sizeof(msg), "X-Infergate-Join: \"%.64s\" is not input or none.", v);
    }
    if (msg[0] == '\0' && (v = ig_http_req_header(http, "X-Infergate-Errors")) != NULL) {
        if (strcasecmp(v, "abort") == 0)
            ts->abort_mode = 1;
        else if (strcasecmp(v, "inline") != 0)
            snprintf(msg, sizeof(msg), "X-Infergate-Errors: \"%.64s\" is not inline or abort.",
                     v);
    }
    if (msg[0] == '\0' && (ctype == IG_FMT_RECORDIO || accept == IG_FMT_RECORDIO) &&
        (ts->join || ig_http_req_header(http, "X-Infergate-Input-Filter") != NULL ||
         ig_http_req_header(http, "X-Infergate-Output-Filter") != NULL))
        snprintf(msg, sizeof(msg), "X-Infergate-Join and the filters take CSV or JSON records, "
                                   "not application/x-recordio-protobuf.");
    if (msg[0] == '\0' && accept == IG_FMT_RECORDIO) {
        /* RecordIO has no error record: the first error resets the stream */
        v = ig_http_req_header(http, "X-Infergate-Errors");
        if (v != NULL && strcasecmp(v, "inline") == 0)
            snprintf(msg, sizeof(msg), "X-Infergate-Errors: inline needs a text Accept: "
                                       "application/x-recordio-protobuf has no error records "
                                       "(errors reset the stream).");
        ts->abort_mode = 1;
    }
    if (msg[0] == '\0' && ctype == IG_FMT_LIBSVM &&
        (ts->join || ig_http_req_header(http, "X-Infergate-Input-Filter") != NULL))
        snprintf(msg, sizeof(msg), "X-Infergate-Join and X-Infergate-Input-Filter take CSV or "
                                   "JSON records, not text/libsvm.");
    if (msg[0] == '\0' && ts->join && (ctype == IG_FMT_CSV) != (accept == IG_FMT_CSV))
        snprintf(msg, sizeof(msg),
                 "X-Infergate-Join: input needs CSV output for CSV input and JSON output for "
                 "JSON input (Content-Type %s, Accept %s).",
                 ig_codec_format_mime(ctype), ig_codec_format_mime(accept));
    if (msg[0] == '\0')
        ts_filter(http, "X-Infergate-Input-Filter", &ts->in_filter, msg, sizeof(msg));
    if (msg[0] == '\0')
        ts_filter(http, "X-Infergate-Output-Filter", &ts->out_filter, msg, sizeof(msg));
    if (msg[0] == '\0' && ts->in_filter && ctype == IG_FMT_CSV &&
        ig_jpath_has_members(ts->in_filter))
        snprintf(msg, sizeof(msg), "X-Infergate-Input-Filter: %s selects a member; CSV records "
                 "have only columns.", ig_jpath_expr(ts->in_filter));
    if (msg[0] == '\0' && ts->out_filter && accept == IG_FMT_CSV &&
        ig_jpath_has_members(ts->out_filter))
        snprintf(msg, sizeof(msg), "X-Infergate-Output-Filter: %s selects a member; CSV records "
                 "have only columns.", ig_jpath_expr(ts->out_filter));
    if (msg[0] != '\0') {
        ig_jpath_free(ts->in_filter);
        ig_jpath_free(ts->out_filter);
        ig_buf_clear(&ts->in);
        free(ts);
        gw_error_for(gw, http, NULL, ep->conf->name, "ValidationError", msg);
        gw_ep_unref(ep);
        return;
    }
    /* Rows parsed into features mix whatever their format; rows sent as
     * bytes go with rows of their own format. */
    ts->lane = &ep->lanes[(ep->up->dim > 0 ? 0 : ep->up_ctype >= 0 ? ep->up_ctype : (int)ctype) *
                              IG_FMT_COUNT +
                          (ep->up_accept >= 0 ? ep->up_accept : (int)accept)];
    ts->ev = event_new(gw->base, -1, 0, ts_on_event, ts);
    ep->streams_open++;
    ep->streams_total++;
    ts->ep_next = ep->streams;
    if (ep->streams)
        ep->streams->ep_prev = ts;
    ep->streams = ts;
    ig_http_req_set_close_cb(http, ts_on_closed, ts);
    ig_http_stream_open(http, ts_on_body, ts_on_writable, ts);
    hdrs[0].name = "Content-Type";
    hdrs[0].value = ig_codec_format_mime(accept);
    hdrs[1].name = "x-Amzn-Invoked-Production-Variant";
    hdrs[1].value = ep->conf->variant;
    ig_http_stream_head(http, 200, hdrs, 2);
    ts_charge(ts);
}

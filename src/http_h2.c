/*
 * http_h2.c - HTTP/2 on one connection with an nghttp2 server session.
 *
 * Streams map to requests through nghttp2's stream user data. A request is
 * created on the first HEADERS of a stream, handed to the gateway when the
 * stream's END_STREAM arrives (from inside on_frame_recv: the gateway may
 * answer at once, which only submits frames, as nghttp2 allows in
 * callbacks), and freed when nghttp2 closes the stream.
 *
 * Output goes through nghttp2_session_send() into the bufferevent, stopping
 * (NGHTTP2_ERR_WOULDBLOCK) above HTTP_OUT_WATERMARK pending bytes or when
 * the connection's share refuses to charge them (h2_out_room); the
 * bufferevent's write callback resumes it. Response bodies are owned by
 * their request and copied once, straight from the request into the
 * bufferevent (NGHTTP2_DATA_FLAG_NO_COPY + send_data_callback).
 *
 * Flow control is automatic (nghttp2 sends WINDOW_UPDATE as data is
 * received); request bodies are capped by max_body_bytes each and by
 * max_buffered_body_bytes across all connections instead. A stream refused
 * before its body is in keeps being read, its DATA dropped and its window
 * replenished, up to HTTP_DISCARD_MAX (h2_discard), so that clients that
 * upload before they read see the answer; past it, RST_STREAM(NO_ERROR).
 *
 * Drain: a shutdown notice and a PING, then the final GOAWAY with the last
 * stream id when the PING comes back (or after HTTP_H2_DRAIN_ACK_US).
 *
 * Stalls: each stream waiting on the client (request body incomplete, or
 * response DATA held back by the client's flow-control window or by a
 * socket it does not read) must move min_rate_bytes per idle_timeout_ms
 * period on its own (ig_http_req_progress; the timer is in http_server.c):
 * request-body bytes received, response DATA bytes sent. While the output
 * is over HTTP_OUT_WATERMARK, the socket taking min_rate bytes in a period
 * counts for every response waiting behind it (conn->stall_progress_us).
 * PINGs, SETTINGS and WINDOW_UPDATEs that open no DATA do not count, and a
 * stream moving one byte now and then is cut alone (RST_STREAM(CANCEL)).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <nghttp2/nghttp2.h>

#include "http_int.h"
#include "infergate/common.h"

/*
 * nghttp2 allocates and frees a handful of small blocks for every stream
 * (the stream, its outbound items, a copy of the response's header block,
 * ...). The thread keeps up to H2_CACHE_MAX freed blocks of each of a few
 * sizes for the next ones instead of a malloc and a free each time: at
 * most H2_CACHE_MAX * (64 + 128 + 256 + 512 + 4 * 16) bytes (~240 KiB) a
 * thread, given back by ig_http_h2_cache_flush(). A block carries its size
 * class (and its size) in a header before it. Under ASan the cache is off:
 * every block goes to malloc and free, so that misuse is still seen.
 */
#define H2_CACHE_CLASSES 4u /* 64, 128, 256, 512 usable bytes */
#define H2_CACHE_MIN 64u
#define H2_CACHE_MAX 256u
#define H2_CLS_HEAP H2_CACHE_CLASSES /* a block of its own size, not cached */

#if defined(__SANITIZE_ADDRESS__)
#define H2_CACHE_ON 0
#else
#define H2_CACHE_ON 1
#endif

union h2_blk {
    struct {
        uint32_t cls;
        size_t size; /* usable bytes */
    } h;
    max_align_t align;
};

static _Thread_local union h2_blk *h2_cache[H2_CACHE_CLASSES]; /* chained through the payload */
static _Thread_local uint32_t h2_cache_n[H2_CACHE_CLASSES];

/* A cached block's link to the next one, kept in its payload. */
static union h2_blk *h2_link_get(const union h2_blk *b)
{
    union h2_blk *next;

    memcpy(&next, (const void *)(b + 1), sizeof(next));
    return next;
}

static void h2_link_set(union h2_blk *b, union h2_blk *next)
{
    memcpy((void *)(b + 1), &next, sizeof(next));
}

static uint32_t h2_cls(size_t size)
{
    uint32_t c = 0;

    if (!H2_CACHE_ON)
        return H2_CLS_HEAP;
    while (c < H2_CACHE_CLASSES && size > (size_t)H2_CACHE_MIN << c)
        c++;
    return c;
}

static void *h2_malloc(size_t size, void *ud)
{
    uint32_t c = h2_cls(size);
    union h2_blk *b;

    (void)ud;
    if (c < H2_CACHE_CLASSES && h2_cache[c] != NULL) {
        b = h2_cache[c];
        h2_cache[c] = h2_link_get(b);
        h2_cache_n[c]--;
        return b + 1;
    }
    if (size > SIZE_MAX - sizeof(*b))
        return NULL;
    b = ig_try_malloc(sizeof(*b) + (c < H2_CACHE_CLASSES ? (size_t)H2_CACHE_MIN << c : size));
    if (b == NULL)
        return NULL;
    b->h.cls = c;
    b->h.size = c < H2_CACHE_CLASSES ? (size_t)H2_CACHE_MIN << c : size;
    return b + 1;
}

static void h2_free_mem(void *p, void *ud)
{
    union h2_blk *b;
    uint32_t c;

    (void)ud;
    if (p == NULL)
        return;
    b = (union h2_blk *)p - 1;
    c = b->h.cls;
    if (c < H2_CACHE_CLASSES && h2_cache_n[c] < H2_CACHE_MAX) {
        h2_link_set(b, h2_cache[c]);
        h2_cache[c] = b;
        h2_cache_n[c]++;
        return;
    }
    free(b);
}

void ig_http_h2_cache_flush(void)
{
    for (uint32_t c = 0; c < H2_CACHE_CLASSES; c++) {
        while (h2_cache[c] != NULL) {
            union h2_blk *b = h2_cache[c];

            h2_cache[c] = h2_link_get(b);
            free(b);
        }
        h2_cache_n[c] = 0;
    }
}

static void *h2_calloc(size_t nmemb, size_t size, void *ud)
{
    void *p;

    if (size != 0 && nmemb > SIZE_MAX / size)
        return NULL;
    p = h2_malloc(nmemb * size, ud);
    if (p != NULL)
        memset(p, 0, nmemb * size);
    return p;
}

static void *h2_realloc(void *p, size_t size, void *ud)
{
    union h2_blk *b;
    void *q;

    if (p == NULL)
        return h2_malloc(size, ud);
    b = (union h2_blk *)p - 1;
    if (size <= b->h.size && (b->h.cls < H2_CACHE_CLASSES || size == b->h.size))
        return p;
    if (b->h.cls == H2_CLS_HEAP && h2_cls(size) == H2_CLS_HEAP) {
        if (size > SIZE_MAX - sizeof(*b))
            return NULL;
        b = ig_try_realloc(b, sizeof(*b) + size);
        if (b == NULL)
            return NULL;
        b->h.size = size;
        return b + 1;
    }
    q = h2_malloc(size, ud);
    if (q == NULL)
        return NULL;
    memcpy(q, p, size < b->h.size ? size : b->h.size);
    h2_free_mem(p, ud);
    return q;
}

/* nghttp2's allocations go through the peer-sized policy (house rule 7). */
static nghttp2_mem h2_mem = {
    .malloc = h2_malloc,
    .free = h2_free_mem,
    .calloc = h2_calloc,
    .realloc = h2_realloc,
};

static struct ig_http_req *h2_req(nghttp2_session *session, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(session, stream_id);
}

/*
 * Room for <len> more output bytes: below HTTP_OUT_WATERMARK and charged to
 * the connection's share (conn->out_hold, in HTTP_CHARGE_UNIT steps: most
 * frames fit in the step already charged and cost a compare). Over the
 * budgets, the output blocks like at the watermark (the socket's drain is
 * the stall rule's progress, then the write callback resumes), except that
 * an empty output always takes one frame: a connection is never locked out
 * of sending its SETTINGS, an RST_STREAM or a small answer.
 */
static bool h2_out_room(struct http_conn *conn, struct evbuffer *out, size_t len)
{
    size_t have = evbuffer_get_length(out);

    if (have < HTTP_OUT_WATERMARK &&
        (have + len <= conn->out_hold.n || ig_http_conn_out_charge(conn, have + len) == 0 ||
         have == 0))
        return true;
    conn->h2_out_blocked = true;
    return false;
}

static ssize_t h2_on_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
                          void *ud)
{
    struct http_conn *conn = ud;

    (void)session;
    (void)flags;
    if (!h2_out_room(conn, bufferevent_get_output(conn->bev), len))
        return NGHTTP2_ERR_WOULDBLOCK;
    if (bufferevent_write(conn->bev, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* DATA payloads up to this many bytes go out in one evbuffer_add with
 * their frame header (h2_on_send_data). */
#define H2_DATA_JOIN 1024u

static int h2_on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                           size_t length, nghttp2_data_source *source, void *ud)
{
    static const uint8_t zeros[256];
    struct http_conn *conn = ud;
    struct ig_http_req *req = source->ptr;
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    size_t padlen = frame->data.padlen;

    (void)session;
    if (!h2_out_room(conn, out, 9 + padlen + length))
        return NGHTTP2_ERR_WOULDBLOCK;
    if (padlen == 0 && req->sout == NULL && length <= H2_DATA_JOIN) {
        /* a small answer (most are): frame header and body in one add,
         * one run of the output's callbacks instead of two */
        uint8_t frame_buf[9 + H2_DATA_JOIN];

        memcpy(frame_buf, framehd, 9);
        if (length > 0)
            memcpy(frame_buf + 9, req->resp_body + req->resp_off, length);
        if (evbuffer_add(out, frame_buf, 9 + length) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        req->resp_off += length;
        ig_http_req_progress(req, length);
        return 0;
    }
    if (evbuffer_add(out, framehd, 9) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (padlen > 0) {
        uint8_t pl = (uint8_t)(padlen - 1);

        evbuffer_add(out, &pl, 1);
    }
    if (req->sout != NULL) {
        if (evbuffer_remove_buffer(req->sout, out, length) != (int)length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else {
        if (evbuffer_add(out, req->resp_body + req->resp_off, length) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        req->resp_off += length;
    }
    if (padlen > 1)
        evbuffer_add(out, zeros, padlen - 1);
    ig_http_req_progress(req, length);
    return 0;
}

static ssize_t h2_on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                               size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                               void *ud)
{
    struct ig_http_req *req = source->ptr;
    size_t left = req->resp_len - req->resp_off;
    size_t n = left < length ? left : length;

    (void)session;
    (void)stream_id;
    (void)buf;
    (void)ud;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == left)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* A stream's response: what the gateway queued in sout; deferred while
 * it is empty (ig_http_h2_stream_resume wakes it), then END_STREAM or,
 * for a reset, RST_STREAM(INTERNAL_ERROR) once it is all out. */
static ssize_t h2_on_read_stream(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                 size_t length, uint32_t *data_flags,
                                 nghttp2_data_source *source, void *ud)
{
    struct ig_http_req *req = source->ptr;
    size_t left = req->sout ? evbuffer_get_length(req->sout) : 0;
    size_t n = left < length ? left : length;

    (void)session;
    (void)stream_id;
    (void)buf;
    (void)ud;
    if (n == 0) {
        if (req->stream_reset)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
        if (!req->stream_out_end)
            return NGHTTP2_ERR_DEFERRED;
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == left && req->stream_out_end)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct http_conn *conn = ud;
    struct ig_http_req *req;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    req = ig_http_req_new(conn);
    req->stream_id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, req->stream_id, req);
    conn->h2_hdr_req = req;
    conn->h2_hdr_sid = req->stream_id;
    return 0;
}

/* nghttp2 has checked that content-length is all digits. */
static void h2_content_length(struct ig_http_req *req, const uint8_t *v, size_t len)
{
    uint64_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (n > (UINT64_MAX - 9) / 10) {
            n = UINT64_MAX;
            break;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    req->has_declared_len = true;
    req->declared_len = n;
}

static int h2_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct http_conn *conn = ud;
    struct ig_http_req *req = conn->h2_hdr_req != NULL && conn->h2_hdr_sid == frame->hd.stream_id
                                  ? conn->h2_hdr_req
                                  : h2_req(session, frame->hd.stream_id);
    const char *n = (const char *)name, *v = (const char *)value;
    int64_t *off = NULL;
    int rv;

    (void)flags;
    if (req == NULL || req->state != HTTP_REQ_HEADERS)
        return 0;
    /* also after a refusal: how much body is to come decides how it is
     * answered (h2_refuse) */
    if (nlen == 14 && memcmp(n, "content-length", 14) == 0)
        h2_content_length(req, value, vlen);
    if (req->err != HTTP_REQ_ERR_NONE)
        return 0;
    if (nlen > 0 && n[0] == ':') {
        if (nlen == 7 && memcmp(n, ":method", 7) == 0)
            off = &req->method_off;
        else if (nlen == 5 && memcmp(n, ":path", 5) == 0)
            off = &req->url_off;
        else if (nlen == 10 && memcmp(n, ":authority", 10) == 0)
            off = &req->authority_off;
        rv = ig_http_req_add_pseudo(req, n, nlen, v, vlen, off);
    } else {
        rv = ig_http_req_add_header(req, n, nlen, v, vlen);
    }
    if (rv != 0)
        ig_http_req_hdr_fail(req, rv);
    return 0;
}

static bool h2_may_discard(const struct ig_http_req *req);

/*
 * The module refuses <req> (req->err) while its body may still be coming
 * (<body_done> false). The rest of the body is read and dropped within
 * HTTP_DISCARD_MAX (h2_discard; what was kept is released now). When more
 * of it may come than one stream window (or its length is unknown), the
 * answer waits for its end: a client still uploading when the answer
 * comes goes wrong either way: reset in the middle of its upload, Node's
 * http2 client stalls its next call and httpx loses the answer; answered
 * but not reset, Node holds the unsent rest and refuses its next stream
 * (ENHANCE_YOUR_CALM, maxSessionMemory) when the AWS SDK starts it on the
 * answer. A rest that fits one window the client sends without waiting
 * on us: answered now (also a client waiting for a 100 Continue, which
 * never comes, and past the bound, with RST_STREAM(NO_ERROR) after).
 */
static void h2_refuse(struct ig_http_req *req, bool body_done)
{
    const char *expect = ig_http_req_header(req, "expect");
    bool big = !req->has_declared_len || req->declared_len > HTTP_H2_STREAM_WINDOW;

    if (!body_done && big && h2_may_discard(req) && expect == NULL) {
        ig_http_req_drop_body(req);
        return;
    }
    ig_http_req_reject(req);
}

/* The request's header block is complete. */
static void h2_end_headers(struct ig_http_req *req, const nghttp2_frame *frame)
{
    if (req->err == HTTP_REQ_ERR_NONE && ig_http_req_end_headers(req) != 0)
        req->err = HTTP_REQ_ERR_NOMEM;
    req->state = HTTP_REQ_BODY;
    if (req->err == HTTP_REQ_ERR_NONE) {
        ig_http_stream_pick(req);
        ig_http_req_begin_body(req); /* sets req->err on refusal */
    }
    if (req->err != HTTP_REQ_ERR_NONE) {
        h2_refuse(req, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    } else if (req->stream) {
        /* a duplex stream: the gateway has it from now on, and its body
         * as it comes */
        ig_http_req_dispatch(req);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            ig_http_stream_input_end(req);
    } else if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        ig_http_req_dispatch(req);
    }
}

/* The body ended (END_STREAM): hand the request over, or give the answer
 * a refusal has waited with (h2_refuse). */
static void h2_end_body(struct ig_http_req *req)
{
    if (req->err != HTTP_REQ_ERR_NONE)
        ig_http_req_reject(req);
    else
        ig_http_req_dispatch(req);
}

static int h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct http_conn *conn = ud;
    struct ig_http_req *req;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        req = h2_req(session, frame->hd.stream_id);
        if (req == NULL)
            break;
        if (req->state == HTTP_REQ_HEADERS)
            h2_end_headers(req, frame);
        else if (req->stream && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            ig_http_stream_input_end(req); /* after trailers */
        else if (req->state == HTTP_REQ_BODY && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            h2_end_body(req); /* after trailers */
        break;
    case NGHTTP2_DATA:
        req = h2_req(session, frame->hd.stream_id);
        if (req != NULL && req->stream && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            ig_http_stream_input_end(req);
        else if (req != NULL && req->state == HTTP_REQ_BODY &&
                 (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            h2_end_body(req);
        break;
    case NGHTTP2_PING:
        /* our drain PING came back: every stream the client opened before
         * it saw the shutdown notice has reached us */
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            ig_http_h2_drain_goaway(conn);
        break;
    default:
        break;
    }
    return 0;
}

/* May the client of <req>, refused early (413, throttled, ...), go on
 * sending its body to be dropped? Within HTTP_DISCARD_MAX, and not while
 * draining (the connection is about to go). */
static bool h2_may_discard(const struct ig_http_req *req)
{
    const struct ig_http_server *srv = req->conn->srv;
    uint64_t max = HTTP_DISCARD_MAX(srv);

    if (srv->draining || req->discarded > max)
        return false;
    return !req->has_declared_len || req->declared_len <= max;
}

/*
 * <len> bytes of DATA came on a refused stream: drop them. nghttp2 counts
 * them as consumed, so the windows are replenished (automatic
 * WINDOW_UPDATE) and the client can finish its upload, then read the
 * answer (h2_refuse). Past the bound: the answer goes now if it waited,
 * and the client is asked to stop: RST_STREAM(NO_ERROR) (RFC 9113 8.1),
 * once.
 */
static void h2_discard(struct ig_http_req *req, size_t len)
{
    struct http_conn *conn = req->conn;

    if (req->discarded == UINT64_MAX)
        return; /* reset already asked for */
    req->discarded += len;
    ig_http_req_progress(req, len); /* the stall rule, as for a body kept */
    if (req->state == HTTP_REQ_BODY && !h2_may_discard(req)) {
        ig_http_req_reject(req); /* RST_STREAM(NO_ERROR) follows it */
        return;
    }
    if (h2_may_discard(req) || req->state != HTTP_REQ_ANSWERED ||
        nghttp2_session_get_stream_local_close(conn->h2, req->stream_id) != 1)
        return; /* within the bound, or the answer is not out yet */
    req->discarded = UINT64_MAX;
    nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id, NGHTTP2_NO_ERROR);
}

static int h2_on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                      const uint8_t *data, size_t len, void *ud)
{
    struct ig_http_req *req = h2_req(session, stream_id);

    (void)flags;
    (void)ud;
    /* Window updates are ours (no_auto_window_update): a stream's bytes
     * are given back as the gateway consumes them; every other byte now
     * (kept in a body, dropped or not wanted). */
    if (req != NULL && req->stream && req->state == HTTP_REQ_DISPATCHED) {
        ig_http_stream_input(req, (const char *)data, len);
        return 0;
    }
    nghttp2_session_consume(session, stream_id, len);
    if (req != NULL && req->err != HTTP_REQ_ERR_NONE) {
        h2_discard(req, len);
        return 0;
    }
    if (req == NULL || req->state != HTTP_REQ_BODY)
        return 0;
    /* Progress for the stall rule is counted by ig_http_req_add_body(). A
     * refusal drops the rest of the body (h2_discard) and answers at its
     * end, or answers now (h2_refuse). */
    if (ig_http_req_add_body(req, (const char *)data, len) != 0)
        h2_refuse(req, false);
    return 0;
}

/* A response ended while the client is still sending: a refused body
 * within the bound is read and dropped (h2_discard); otherwise ask the
 * client to stop (RFC 9113 8.1: RST_STREAM with NO_ERROR). */
static int h2_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    struct ig_http_req *req;

    (void)ud;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0) {
        req = h2_req(session, frame->hd.stream_id);
        if (req != NULL && req->err != HTTP_REQ_ERR_NONE && req->discarded != UINT64_MAX &&
            h2_may_discard(req))
            return 0;
        if (req != NULL)
            req->discarded = UINT64_MAX;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int h2_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *ud)
{
    struct http_conn *conn = ud;
    struct ig_http_req *req = h2_req(session, stream_id);

    (void)error_code;
    if (conn->h2_hdr_sid == stream_id)
        conn->h2_hdr_req = NULL;
    if (req != NULL)
        ig_http_req_gone(req);
    return 0;
}

static int h2_on_error(nghttp2_session *session, int code, const char *msg, size_t len, void *ud)
{
    struct http_conn *conn = ud;

    (void)session;
    ig_log(IG_LOG_DEBUG, "http: %s: h2: %.*s (%d)", conn->peer, (int)len, msg, code);
    return 0;
}

/* What the responses of <conn> with DATA still to send must move in a
 * period, together (ig_http_req_rate_need each). */
static uint64_t h2_waiting_need(const struct http_conn *conn)
{
    const struct ig_http_req *req;
    uint64_t n = 0;

    TAILQ_FOREACH(req, &conn->reqs, link)
    if (ig_http_req_resp_left(req) > 0)
        n += ig_http_req_rate_need(req, conn->srv->min_rate);
    return n;
}

/*
 * Output buffer changes: bytes the socket took while the output was
 * blocked are progress for the responses waiting behind it, shared out:
 * the socket must take what each of them would have to move on its own
 * (ig_http_req_rate_need: min_rate, more for a big one) per period. Counted whole for every one, a client reading
 * min_rate bytes per period kept up to max_concurrent_streams answers
 * (and their charge, up to the connection's share) alive.
 */
static void h2_on_out_change(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct http_conn *conn = arg;

    (void)buf;
    if (info->n_deleted == 0 || !conn->h2_out_blocked)
        return;
    conn->drain_bytes += info->n_deleted;
    if (conn->drain_bytes >= conn->srv->min_rate && conn->drain_bytes >= h2_waiting_need(conn)) {
        conn->stall_progress_us = ig_now_us();
        conn->drain_bytes = 0;
    }
    if (info->orig_size + info->n_added - info->n_deleted == 0)
        conn->h2_out_blocked = false;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    nghttp2_session_callbacks *cbs;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, h2_on_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, h2_on_send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, h2_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, h2_on_error);
    return cbs;
}

int ig_http_h2_start(struct http_conn *conn)
{
    const struct ig_http_server *srv = conn->srv;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, HTTP_H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, srv->max_header_bytes},
    };
    nghttp2_session_callbacks *cbs = h2_callbacks();
    nghttp2_option *opt = NULL;
    int rv;

    if (cbs == NULL)
        return IG_ERR_NOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return IG_ERR_NOMEM;
    }
    /* Streams hold the client back by the bytes the gateway has not
     * consumed (h2_on_data, ig_http_h2_stream_consume). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* Closed streams stay (nghttp2_option_set_no_closed_streams is not
     * set): they are what answers DATA or HEADERS on a closed stream with
     * GOAWAY STREAM_CLOSED as nghttpd does (test_h2_frames), and freeing
     * them at once saved only ~150 instructions a request. */
    rv = nghttp2_session_server_new3(&conn->h2, cbs, conn, opt, &h2_mem);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return IG_ERR_NOMEM;
    conn->proto = HTTP_PROTO_H2;
    conn->stall_progress_us = ig_now_us();
    if (evbuffer_add_cb(bufferevent_get_output(conn->bev), h2_on_out_change, conn) == NULL)
        return IG_ERR_NOMEM;
    /* What the client may send ahead of the gateway's consumption, all
     * streams together: at most half the connection's share, so that duplex
     * streams held back by flow control hold no more than the budget lets
     * one connection hold (bodies of other requests are consumed at once) */
    if (nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, iv, IG_ARRAY_SIZE(iv)) != 0 ||
        nghttp2_session_set_local_window_size(
            conn->h2, NGHTTP2_FLAG_NONE, 0,
            (int32_t)(srv->conn_cap / 2 < HTTP_H2_CONN_WINDOW
                          ? (srv->conn_cap / 2 > HTTP_H2_STREAM_WINDOW ? srv->conn_cap / 2
                                                                       : HTTP_H2_STREAM_WINDOW)
                          : HTTP_H2_CONN_WINDOW)) != 0)
        return IG_ERR_NOMEM;
    if (srv->draining)
        ig_http_h2_drain(conn);
    return 0;
}

void ig_http_h2_free(struct http_conn *conn)
{
    if (conn->h2 != NULL)
        evbuffer_remove_cb(bufferevent_get_output(conn->bev), h2_on_out_change, conn);
    nghttp2_session_del(conn->h2);
    conn->h2 = NULL;
}

/* Send what nghttp2 has; close when the session is over. */
static void h2_send(struct http_conn *conn)
{
    int rv = nghttp2_session_send(conn->h2);

    if (rv != 0) {
        ig_log(IG_LOG_DEBUG, "http: %s: h2 send: %s", conn->peer, nghttp2_strerror(rv));
        ig_http_conn_close(conn);
        return;
    }
    if (!nghttp2_session_want_read(conn->h2) && !nghttp2_session_want_write(conn->h2))
        ig_http_conn_finish(conn);
}

/*
 * Back-pressure: input is fed to nghttp2 in pieces of at most
 * HTTP_H2_RECV_PIECE bytes, what nghttp2 queues in reply is flushed after
 * each, and feeding stops while HTTP_OUT_WATERMARK bytes wait for the client
 * or the budgets refuse more output (h2_out_blocked, until the socket has
 * taken it all; the write callback resumes). The unread input then fills
 * up to HTTP_READ_HIGH, or less when the budgets refuse it
 * (conn_in_recount), libevent stops reading and TCP holds the client back.
 * Otherwise a client that never reads could make nghttp2 queue replies
 * without bound (an RST_STREAM for each stream opened over the limit).
 */
void ig_http_h2_process(struct http_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    struct evbuffer *out = bufferevent_get_output(conn->bev);

    while (conn->state == HTTP_CONN_OPEN && evbuffer_get_length(in) > 0 &&
           !conn->h2_out_blocked && evbuffer_get_length(out) < HTTP_OUT_WATERMARK) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        n = nghttp2_session_mem_recv(conn->h2, v.iov_base,
                                     v.iov_len < HTTP_H2_RECV_PIECE ? v.iov_len
                                                                    : HTTP_H2_RECV_PIECE);
        if (n < 0) {
            ig_log(IG_LOG_DEBUG, "http: %s: h2 receive: %s", conn->peer, nghttp2_strerror((int)n));
            /* nghttp2 queues no GOAWAY of its own for a flood or a
             * CONTINUATION run (it only stops): the client is told why
             * (a GOAWAY already queued stays the only one) */
            nghttp2_session_terminate_session(conn->h2, n == NGHTTP2_ERR_FLOODED ||
                                                                n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                                                            ? NGHTTP2_ENHANCE_YOUR_CALM
                                                            : NGHTTP2_PROTOCOL_ERROR);
            ig_http_conn_finish(conn); /* flush the GOAWAY */
            return;
        }
        evbuffer_drain(in, (size_t)n);
        h2_send(conn);
    }
    if (conn->state == HTTP_CONN_OPEN)
        h2_send(conn);
}

int ig_http_h2_flush(struct http_conn *conn)
{
    int rv = nghttp2_session_send(conn->h2);

    if (rv != 0) {
        ig_http_conn_close(conn);
        return 0;
    }
    return !nghttp2_session_want_write(conn->h2);
}

void ig_http_h2_on_timeout(struct http_conn *conn)
{
    nghttp2_session_terminate_session(conn->h2, NGHTTP2_NO_ERROR);
    ig_http_conn_finish(conn);
}

void ig_http_h2_on_stall(struct http_conn *conn)
{
    uint64_t now = ig_now_us(), d;
    struct ig_http_req *req;
    uint32_t late = 0;
    bool others = false, late_answer = false;

    TAILQ_FOREACH(req, &conn->reqs, link) {
        d = ig_http_req_stall_deadline(req);
        if (d != 0 && d <= now) {
            late++;
            late_answer |= req->state == HTTP_REQ_ANSWERED;
        } else {
            others = true;
        }
    }
    if (late == 0)
        return;
    conn->srv->stalls += late;
    if (!others || (conn->h2_out_blocked && late_answer)) {
        /* nothing else on the connection: it goes with them; or an
         * answer is late behind a socket too slow to take what waits (a
         * RST_STREAM would wait behind it too, and the answers held with
         * it): the connection goes, its bytes freed within HTTP_LINGER_US */
        ig_http_h2_on_timeout(conn);
        return;
    }
    /* Only queued here: the streams close (and their requests go) when the
     * RST_STREAMs are sent, from nghttp2_session_send(). A socket that
     * takes nothing cannot send them: a new period, then try again. */
    TAILQ_FOREACH(req, &conn->reqs, link) {
        d = ig_http_req_stall_deadline(req);
        if (d == 0 || d > now)
            continue;
        nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id, NGHTTP2_CANCEL);
        /* no answer fits: status 0, the reset named as the error */
        ig_http_req_log_refusal(req, 0, "StreamStalled");
        ig_http_req_wait(req);
    }
    ig_http_conn_kick(conn);
}

void ig_http_h2_drain(struct http_conn *conn)
{
    struct ig_http_req *req, *next;

    if (conn->h2_drain != 0)
        return;
    /* refused bodies still being dropped: the connection is about to go;
     * an answer that waited for the end of the body goes now (the reset
     * follows it), one already out is followed by the reset */
    for (req = TAILQ_FIRST(&conn->reqs); req != NULL; req = next) {
        next = TAILQ_NEXT(req, link);
        if (req->err == HTTP_REQ_ERR_NONE || req->discarded == UINT64_MAX)
            continue;
        if (req->state == HTTP_REQ_BODY) {
            ig_http_req_reject(req);
        } else if (nghttp2_session_get_stream_local_close(conn->h2, req->stream_id) == 1 &&
                   nghttp2_session_get_stream_remote_close(conn->h2, req->stream_id) == 0) {
            req->discarded = UINT64_MAX;
            nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id,
                                      NGHTTP2_NO_ERROR);
        }
    }
    nghttp2_submit_shutdown_notice(conn->h2);
    nghttp2_submit_ping(conn->h2, NGHTTP2_FLAG_NONE, NULL);
    conn->h2_drain = 1;
    ig_http_conn_kick(conn);
}

/* The final GOAWAY: the last stream id that reached us, NO_ERROR. */
static void h2_final_goaway(struct http_conn *conn)
{
    nghttp2_submit_goaway(conn->h2, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(conn->h2), NGHTTP2_NO_ERROR,
                          NULL, 0);
    conn->h2_drain = 2;
}

int ig_http_h2_drain_goaway(struct http_conn *conn)
{
    if (conn->h2_drain != 1 || conn->h2 == NULL)
        return 0;
    /* every stream the client opened before it saw the notice has reached
     * us (the PING came back), or it had its time */
    h2_final_goaway(conn);
    ig_http_conn_kick(conn);
    return 1;
}

void ig_http_h2_last_words(struct http_conn *conn)
{
    if (conn->h2 == NULL)
        return;
    if (conn->h2_drain < 2)
        h2_final_goaway(conn);
    nghttp2_session_send(conn->h2);
}

void ig_http_h2_drain_stall(struct http_conn *conn, uint64_t bound_us)
{
    struct ig_http_req *req, *next;
    bool cut_headers = false, ended = false;

    for (req = TAILQ_FIRST(&conn->reqs); req != NULL; req = next) {
        next = TAILQ_NEXT(req, link);
        if (req->state == HTTP_REQ_HEADERS) {
            cut_headers = true; /* nothing can be sent on it mid-block */
        } else if (req->state == HTTP_REQ_BODY && req->err != HTTP_REQ_ERR_NONE) {
            ig_http_req_reject(req); /* its refusal, which waited for the body */
            ended = true;
        } else if (req->state == HTTP_REQ_BODY) {
            /* the answer ends it; RST_STREAM(NO_ERROR) follows while the
             * client still owes body bytes (h2_on_frame_send) */
            ig_http_req_drain_timeout(req, bound_us);
            ended = true;
        } else if (((req->state == HTTP_REQ_ANSWERED && ig_http_req_resp_left(req) > 0) ||
                    (req->stream && req->state == HTTP_REQ_DISPATCHED &&
                     ig_http_stream_unsent(req) > 0)) &&
                   req->discarded != UINT64_MAX) {
            /* an answer, or a stream's output, the client does not take */
            req->discarded = UINT64_MAX;
            nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id,
                                      NGHTTP2_CANCEL);
            ended = true;
        }
    }
    if (cut_headers ||
        (!ended && evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)) {
        ig_http_conn_close(conn);
        return;
    }
    ig_http_conn_kick(conn);
}

uint32_t ig_http_h2_pending(const struct http_conn *conn)
{
    const struct ig_http_req *req;
    uint32_t n = 0;

    TAILQ_FOREACH(req, &conn->reqs, link)
    if (req->state == HTTP_REQ_HEADERS || req->state == HTTP_REQ_BODY)
        n++;
    return n;
}

int ig_http_h2_flushed(const struct http_conn *conn)
{
    const struct ig_http_req *req;

    if (conn->h2 == NULL)
        return 1;
    if (conn->h2_drain < 2 || nghttp2_session_want_write(conn->h2))
        return 0;
    /* DATA held back by the client's window is not "wanted" by nghttp2 */
    TAILQ_FOREACH(req, &conn->reqs, link)
    if (req->state == HTTP_REQ_ANSWERED && ig_http_req_resp_left(req) > 0)
        return 0;
    return 1;
}

void ig_http_h2_forget(struct ig_http_req *req)
{
    struct http_conn *conn = req->conn;

    if (conn->h2 != NULL && req->stream_id > 0)
        nghttp2_session_set_stream_user_data(conn->h2, req->stream_id, NULL);
    if (conn->h2_hdr_req == req)
        conn->h2_hdr_req = NULL;
}

static nghttp2_nv h2_nv_len(const char *name, size_t namelen, const char *value, size_t valuelen)
{
    nghttp2_nv nv = {
        .name = (uint8_t *)(uintptr_t)name,
        .value = (uint8_t *)(uintptr_t)value,
        .namelen = namelen,
        .valuelen = valuelen,
        .flags = NGHTTP2_NV_FLAG_NONE,
    };

    return nv;
}

static nghttp2_nv h2_nv(const char *name, const char *value)
{
    return h2_nv_len(name, strlen(name), value, strlen(value));
}

/* <n> bytes of <src> into <dst>, ASCII 'A'..'Z' folded to lowercase, eight
 * at a time: a byte with the high bit set is copied as it is. */
static void h2_lower(char *dst, const char *src, size_t n)
{
    const uint64_t hi = 0x8080808080808080ull;
    size_t k = 0;

    for (; k + 8 <= n; k += 8) {
        uint64_t w, low, ge_a, gt_z;

        memcpy(&w, src + k, 8);
        low = w & ~hi;                           /* no carry across bytes below */
        ge_a = low + 0x3f3f3f3f3f3f3f3full;      /* high bit: byte >= 'A' */
        gt_z = low + 0x2525252525252525ull;      /* high bit: byte > 'Z' */
        w |= (ge_a & ~gt_z & ~w & hi) >> 2;      /* + 0x20 where 'A'..'Z' */
        memcpy(dst + k, &w, 8);
    }
    for (; k < n; k++)
        dst[k] = (char)(src[k] >= 'A' && src[k] <= 'Z' ? src[k] + 32 : src[k]);
}

/*
 * <name> (<len> bytes) lower-cased, kept for <srv>'s life: nghttp2 takes it
 * as it is (NGHTTP2_NV_FLAG_NO_COPY_NAME: it neither copies nor
 * lower-cases it, which was a tenth of its work a response). Response
 * header names come from the application's code, a handful; past
 * HTTP_H2_NAMES_MAX of them, NULL: the caller copies the name.
 */
static const char *h2_name(struct ig_http_server *srv, const char *name, size_t len)
{
    struct http_h2_name *n;

    for (size_t i = 0; i < srv->h2_nnames; i++)
        if (srv->h2_names[i].len == len && memcmp(srv->h2_names[i].orig, name, len) == 0)
            return srv->h2_names[i].lower;
    if (srv->h2_nnames == HTTP_H2_NAMES_MAX)
        return NULL;
    n = &srv->h2_names[srv->h2_nnames++];
    n->orig = ig_xstrndup(name, len);
    n->lower = ig_xmalloc(len + 1);
    h2_lower(n->lower, name, len);
    n->lower[len] = '\0';
    n->len = len;
    return n->lower;
}

static nghttp2_nv h2_nv_static(const char *name, size_t namelen, const char *value,
                               size_t valuelen)
{
    nghttp2_nv nv = h2_nv_len(name, namelen, value, valuelen);

    nv.flags = NGHTTP2_NV_FLAG_NO_COPY_NAME; /* lower case, and outlives the frame */
    return nv;
}

/* The application's headers into <nva>: the names kept by h2_name, or past
 * those lowercase copies in <names> (sized by the caller). */
static size_t h2_user_headers(struct ig_http_server *srv, nghttp2_nv *nva, char *names,
                              const struct ig_http_hdr *hdrs, size_t nhdrs)
{
    size_t nn = 0;

    for (size_t i = 0; i < nhdrs; i++) {
        const char *name = hdrs[i].name, *value = hdrs[i].value, *lower;
        size_t len;

        if (name == NULL || value == NULL || name[0] == '\0' || name[0] == ':')
            continue;
        len = strlen(name);
        if (ig_http_hdr_reserved(name, len) || strpbrk(value, "\r\n") != NULL)
            continue;
        if ((lower = h2_name(srv, name, len)) != NULL) {
            nva[nn++] = h2_nv_static(lower, len, value, strlen(value));
            continue;
        }
        h2_lower(names, name, len);
        names[len] = '\0';
        nva[nn++] = h2_nv(names, value);
        names += len + 1;
    }
    return nn;
}

/* A response's header block: on the stack when it fits (nghttp2 copies
 * what it is given), else allocated; h2_head_free() after the submit. */
#define H2_HEAD_NV 16
#define H2_HEAD_NAMES 512

struct h2_head {
    nghttp2_nv *nva, nv_local[H2_HEAD_NV];
    char *names, names_local[H2_HEAD_NAMES];
    size_t nn;
    char sbuf[4], lbuf[IG_FMT_U64_MAX];
};

/* :status (a 3-digit code; others as 500), the user headers, content-length
 * unless <len> is SIZE_MAX, and x-amzn-requestid. */
static void h2_head_build(struct h2_head *h, const struct ig_http_req *req, int status,
                          const struct ig_http_hdr *hdrs, size_t nhdrs, size_t len)
{
    size_t names_len = 1;

    for (size_t i = 0; i < nhdrs; i++)
        names_len += hdrs[i].name != NULL ? strlen(hdrs[i].name) + 1 : 0;
    h->nva = nhdrs + 3 <= H2_HEAD_NV ? h->nv_local : ig_xmalloc((nhdrs + 3) * sizeof(*h->nva));
    h->names = names_len <= H2_HEAD_NAMES ? h->names_local : ig_xmalloc(names_len);
    h->nn = 0;
    if (status < 100 || status > 999)
        status = 500;
    h->sbuf[0] = (char)('0' + status / 100);
    h->sbuf[1] = (char)('0' + status / 10 % 10);
    h->sbuf[2] = (char)('0' + status % 10);
    h->nva[h->nn++] = h2_nv_static(":status", 7, h->sbuf, 3);
    h->nn += h2_user_headers(req->conn->srv, h->nva + h->nn, h->names, hdrs, nhdrs);
    if (len != SIZE_MAX)
        h->nva[h->nn++] = h2_nv_static("content-length", 14, h->lbuf, ig_fmt_u64(h->lbuf, len));
    /* A new value on every response: indexing it would only evict the
     * stable headers from the HPACK table. */
    h->nva[h->nn] = h2_nv_static("x-amzn-requestid", 16, req->id, strlen(req->id));
    h->nva[h->nn++].flags |= NGHTTP2_NV_FLAG_NO_INDEX;
}

static void h2_head_free(struct h2_head *h)
{
    if (h->nva != h->nv_local)
        free(h->nva);
    if (h->names != h->names_local)
        free(h->names);
}

void ig_http_h2_respond(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                        size_t nhdrs, char *body, size_t len)
{
    struct http_conn *conn = req->conn;
    nghttp2_data_provider prd = {.source.ptr = req, .read_callback = h2_on_read_body};
    struct h2_head h;
    int rv;

    if (status == 204 || status == 304 || req->head) {
        free(body);
        body = NULL;
        if (!req->head)
            len = 0;
    }
    h2_head_build(&h, req, status, hdrs, nhdrs, status != 204 && status != 304 ? len : SIZE_MAX);
    req->state = HTTP_REQ_ANSWERED;
    ig_http_req_wait(req); /* its DATA now waits on the client */
    req->resp_body = body;
    req->resp_len = body != NULL ? len : 0;
    req->resp_off = 0;
    ig_http_req_drop_body(req); /* no longer needed; off the server's count */
    if (nghttp2_session_find_stream(conn->h2, req->stream_id) == NULL)
        rv = NGHTTP2_ERR_STREAM_CLOSED;
    else
        rv = nghttp2_submit_response(conn->h2, req->stream_id, h.nva, h.nn,
                                     req->resp_len > 0 ? &prd : NULL);
    h2_head_free(&h);
    if (rv == NGHTTP2_ERR_STREAM_CLOSED) {
        ig_http_req_free(req);
    } else if (rv != 0) {
        ig_log(IG_LOG_DEBUG, "http: %s: h2 response on stream %d: %s", conn->peer, req->stream_id,
               nghttp2_strerror(rv));
        nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
    ig_http_conn_kick(conn);
}

void ig_http_h2_stream_consume(struct ig_http_req *req, size_t n)
{
    struct http_conn *conn = req->conn;

    if (conn->h2 == NULL)
        return;
    nghttp2_session_consume(conn->h2, req->stream_id, n);
    ig_http_conn_kick(conn); /* the WINDOW_UPDATE goes out */
}

void ig_http_h2_stream_head(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                            size_t nhdrs)
{
    struct http_conn *conn = req->conn;
    nghttp2_data_provider prd = {.source.ptr = req, .read_callback = h2_on_read_stream};
    struct h2_head h;
    int rv;

    h2_head_build(&h, req, status >= 200 ? status : 500, hdrs, nhdrs, SIZE_MAX);
    if (nghttp2_session_find_stream(conn->h2, req->stream_id) == NULL)
        rv = NGHTTP2_ERR_STREAM_CLOSED;
    else
        rv = nghttp2_submit_response(conn->h2, req->stream_id, h.nva, h.nn, &prd);
    h2_head_free(&h);
    if (rv != 0 && rv != NGHTTP2_ERR_STREAM_CLOSED) {
        ig_log(IG_LOG_DEBUG, "http: %s: h2 stream head on stream %d: %s", conn->peer,
               req->stream_id, nghttp2_strerror(rv));
        nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
    }
    ig_http_conn_kick(conn);
}

void ig_http_h2_stream_resume(struct ig_http_req *req)
{
    struct http_conn *conn = req->conn;

    if (conn == NULL || conn->h2 == NULL || !req->stream_head)
        return;
    /* fails harmlessly when the data is not deferred (already scheduled) */
    nghttp2_session_resume_data(conn->h2, req->stream_id);
    ig_http_conn_kick(conn);
}

void ig_http_h2_stream_rst(struct ig_http_req *req)
{
    struct http_conn *conn = req->conn;

    nghttp2_submit_rst_stream(conn->h2, NGHTTP2_FLAG_NONE, req->stream_id,
                              NGHTTP2_INTERNAL_ERROR);
    ig_http_conn_kick(conn);
}

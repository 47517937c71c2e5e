/*
 * http_h1.c - HTTP/1.1 on one connection with Debian's http-parser.
 *
 * One request at a time: on_message_complete pauses the parser, the loop in
 * ig_http_h1_process() hands the request to the gateway and parses nothing
 * more until the response is written. Pipelined requests therefore wait in
 * the bufferevent's input (capped by its read watermark) and are answered
 * in order by construction. A connection has at most one request (the one
 * being parsed or the one being answered) in conn->reqs.
 *
 * Requests the module rejects (400, 408, 413, 431, 503, and 400
 * ThrottlingException when a budget is spent) are answered with
 * "Connection: close" and the connection then closes after a lingering
 * close (http_server.c), except a refusal before the body is in whose
 * declared rest is within HTTP_DISCARD_MAX: that body is read and dropped
 * (h1_refuse) and the connection kept. After CONNECT, an Upgrade or a
 * transfer coding other than chunked the connection closes too: what
 * follows is not HTTP/1.1 this parser may read as another request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http_int.h"
#include "infergate/common.h"

/* req->h1_last: which kind of parser callback came last */
enum h1_last {
    H1_LAST_NONE = 0,
    H1_LAST_URL,
    H1_LAST_FIELD,
    H1_LAST_VALUE,
};

static const char h1_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

static struct ig_http_req *h1_req(const struct http_conn *conn)
{
    return TAILQ_FIRST(&conn->reqs);
}

int ig_http_h1_busy(const struct http_conn *conn)
{
    const struct ig_http_req *req = h1_req(conn);

    if (req == NULL || req->state != HTTP_REQ_DISPATCHED)
        return 0;
    /* a duplex stream's body is parsed on while the gateway keeps up */
    return !req->stream || req->stream_in_end || req->stream_held >= IG_HTTP_STREAM_H1_HELD;
}

/* Map a header-block error to the request and stop the parser. */
static int h1_hdr_fail(struct ig_http_req *req, int rv)
{
    ig_http_req_hdr_fail(req, rv);
    return -1;
}

static int h1_on_message_begin(http_parser *p)
{
    struct http_conn *conn = p->data;

    ig_http_req_new(conn);
    return 0;
}

static int h1_on_url(http_parser *p, const char *at, size_t len)
{
    struct ig_http_req *req = h1_req(p->data);
    int rv;

    if (req->h1_last != H1_LAST_URL) {
        req->url_off = (int64_t)req->hbuf.len;
        req->h1_last = H1_LAST_URL;
    }
    if ((rv = ig_http_req_hdr_append(req, at, len)) != 0)
        return h1_hdr_fail(req, rv);
    return 0;
}

static int h1_on_header_field(http_parser *p, const char *at, size_t len)
{
    struct ig_http_req *req = h1_req(p->data);
    int rv = 0;

    /* Trailers of a chunked body come through these callbacks too; they are
     * dropped: the block is resolved (pointers into hbuf, hdrs sized) and
     * must not grow. http-parser caps their size like a header block. */
    if (req->state != HTTP_REQ_HEADERS)
        return 0;
    if (req->h1_last != H1_LAST_FIELD) {
        if (req->h1_last == H1_LAST_URL || req->h1_last == H1_LAST_VALUE)
            rv = ig_http_req_hdr_sep(req);
        if (rv == 0)
            rv = ig_http_req_hdr_field(req);
        req->h1_last = H1_LAST_FIELD;
    }
    if (rv == 0)
        rv = ig_http_req_hdr_append(req, at, len);
    return rv != 0 ? h1_hdr_fail(req, rv) : 0;
}

static int h1_on_header_value(http_parser *p, const char *at, size_t len)
{
    struct ig_http_req *req = h1_req(p->data);
    int rv = 0;

    if (req->state != HTTP_REQ_HEADERS)
        return 0; /* a trailer, see h1_on_header_field() */
    if (req->h1_last != H1_LAST_VALUE) {
        rv = ig_http_req_hdr_value(req);
        req->h1_last = H1_LAST_VALUE;
    }
    if (rv == 0)
        rv = ig_http_req_hdr_append(req, at, len);
    return rv != 0 ? h1_hdr_fail(req, rv) : 0;
}

/* Expect: 100-continue: tell the client to send the body (the caller has
 * already refused one that is declared too large). */
static void h1_expect(struct http_conn *conn, struct ig_http_req *req, const http_parser *p)
{
    const char *expect = ig_http_req_header(req, "expect");

    if (expect == NULL || req->http10 || strcasecmp(expect, "100-continue") != 0)
        return;
    if ((p->flags & F_CHUNKED) || (req->has_declared_len && req->declared_len > 0))
        bufferevent_write(conn->bev, h1_continue, sizeof(h1_continue) - 1);
}

/*
 * The module refuses <req> (req->err: 413, throttled, 503) before its body
 * is read in full. When the rest of the body has a known length within
 * HTTP_DISCARD_MAX and the client is sending it (no Expect: 100-continue
 * left unanswered, <sending>), the answer goes out now and the parser reads
 * the rest into nothing (conn->h1_discard), keeping the connection for the
 * next request: most clients send the whole body before they read, and a
 * close with their bytes unread turns into a reset that hides the answer.
 * Otherwise -1: h1_fail() answers with "Connection: close".
 */
static int h1_refuse(struct http_conn *conn, struct ig_http_req *req, const http_parser *p,
                     bool sending)
{
    const char *expect = ig_http_req_header(req, "expect");

    if ((p->flags & F_CHUNKED) || !(p->flags & F_CONTENTLENGTH) ||
        p->content_length > HTTP_DISCARD_MAX(conn->srv) || conn->srv->draining ||
        (!sending && expect != NULL))
        return -1;
    conn->h1_discard = true;
    ig_http_req_reject(req); /* writes the answer and frees req */
    return 0;
}

/* A transfer coding other than chunked alone ("gzip, chunked"): the body
 * would be read with a framing or coding the gateway does not apply, and
 * what follows it could be taken for another request. Answer 400 and
 * close. 1 when answered. */
static int h1_unknown_coding(struct http_conn *conn, struct ig_http_req *req)
{
    const char *te = ig_http_req_header(req, "transfer-encoding");

    if (te == NULL || strcasecmp(te, "chunked") == 0)
        return 0;
    conn->h1_close = true;
    ig_http_req_log_refusal(req, 400, "ValidationError");
    ig_http_respond_error(req, 400, "ValidationError",
                          "Transfer-Encoding \"%.64s\" is not supported; send the body with "
                          "Content-Length or Transfer-Encoding: chunked.",
                          te);
    return 1;
}

static int h1_on_headers_complete(http_parser *p)
{
    struct http_conn *conn = p->data;
    struct ig_http_req *req = h1_req(conn);
    int rv = 0;

    if (req->h1_last == H1_LAST_URL || req->h1_last == H1_LAST_VALUE)
        rv = ig_http_req_hdr_sep(req);
    if (rv != 0)
        return h1_hdr_fail(req, rv);
    req->method = http_method_str((enum http_method)p->method);
    req->head = p->method == HTTP_HEAD;
    req->http10 = p->http_major == 0 || (p->http_major == 1 && p->http_minor == 0);
    req->keep_alive = http_should_keep_alive(p) != 0;
    if (p->flags & F_CONTENTLENGTH) {
        req->has_declared_len = true;
        req->declared_len = p->content_length;
    }
    if (ig_http_req_end_headers(req) != 0)
        return h1_hdr_fail(req, IG_ERR_NOMEM);
    req->state = HTTP_REQ_BODY;
    if (h1_unknown_coding(conn, req))
        return -1; /* answered; the connection closes */
    ig_http_stream_pick(req);
    if (ig_http_req_begin_body(req) != 0)
        return h1_refuse(conn, req, p, false); /* 413, throttled or 503 (req->err) */
    h1_expect(conn, req, p);
    /* a duplex stream: the loop in ig_http_h1_process() hands it over now,
     * outside the parser, and its body follows as it is parsed */
    if (req->stream)
        http_parser_pause(p, 1);
    return 0;
}

static int h1_on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *conn = p->data;
    struct ig_http_req *req = h1_req(conn);

    if (conn->h1_discard)
        return 0; /* a refused request's body: dropped */
    if (req->stream) {
        ig_http_stream_input(req, at, len);
        return 0;
    }
    /* a refusal sets req->err; h1_refuse() or h1_fail() answers */
    return ig_http_req_add_body(req, at, len) == 0 ? 0 : h1_refuse(conn, req, p, true);
}

static int h1_on_message_complete(http_parser *p)
{
    /* the loop in ig_http_h1_process() dispatches it */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = h1_on_message_begin,
    .on_url = h1_on_url,
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_headers_complete = h1_on_headers_complete,
    .on_body = h1_on_body,
    .on_message_complete = h1_on_message_complete,
};

void ig_http_h1_start(struct http_conn *conn)
{
    conn->proto = HTTP_PROTO_H1;
    http_parser_init(&conn->parser, HTTP_REQUEST);
    conn->parser.data = conn;
}

/* The parser stopped with <e>: answer and close. */
static void h1_fail(struct http_conn *conn, enum http_errno e)
{
    struct ig_http_req *req = h1_req(conn);

    if (req != NULL && req->stream && req->state == HTTP_REQ_DISPATCHED) {
        /* a duplex stream's body went bad: its answer has begun, so there
         * is nothing to say but the end; the gateway lets it go (close
         * callback), what was written goes out, the connection closes
         * before the last chunk */
        ig_log(IG_LOG_DEBUG, "http: %s: bad HTTP/1.1 stream body: %s", conn->peer,
               http_errno_description(e));
        ig_http_req_gone(req);
        conn->h1_close = true;
        ig_http_conn_finish(conn);
        return;
    }
    if (req == NULL)
        req = ig_http_req_new(conn);
    conn->h1_close = true;
    if (req->err == HTTP_REQ_ERR_NONE && e == HPE_HEADER_OVERFLOW)
        req->err = HTTP_REQ_ERR_HEADER_TOOBIG;
    if (req->err != HTTP_REQ_ERR_NONE) {
        ig_http_req_reject(req);
        return;
    }
    ig_log(IG_LOG_DEBUG, "http: %s: bad HTTP/1.1 request: %s", conn->peer,
           http_errno_description(e));
    ig_http_req_log_refusal(req, 400, "ValidationError");
    ig_http_respond_error(req, 400, "ValidationError", "Malformed HTTP/1.1 request: %s.",
                          http_errno_description(e));
}

void ig_http_h1_process(struct http_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    struct evbuffer *out = bufferevent_get_output(conn->bev);

    /* output over HTTP_OUT_WATERMARK, or an answer that went over the
     * budgets (conn->out_full): the next request waits until the socket
     * has taken it (the idle timeout cuts a client that never reads) */
    while (conn->state == HTTP_CONN_OPEN && !ig_http_h1_busy(conn) && !conn->out_full &&
           evbuffer_get_length(out) < HTTP_OUT_WATERMARK) {
        struct evbuffer_iovec v;
        enum http_errno e;
        size_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        n = http_parser_execute(&conn->parser, &h1_settings, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        e = HTTP_PARSER_ERRNO(&conn->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&conn->parser, 0);
            if (conn->h1_discard) {
                conn->h1_discard = false; /* answered already */
                continue;
            }
            if (h1_req(conn)->stream) {
                struct ig_http_req *req = h1_req(conn);

                if (req->state == HTTP_REQ_BODY) /* its header block ended */
                    ig_http_req_dispatch(req);
                else /* its body ended */
                    ig_http_stream_input_end(req);
                continue;
            }
            /* CONNECT or Upgrade: what follows is not HTTP/1.1 to us; after
             * the answer the connection closes instead of parsing it */
            if (conn->parser.upgrade)
                conn->h1_close = true;
            ig_http_req_dispatch(h1_req(conn));
            continue;
        }
        if (e != HPE_OK) {
            if (conn->state == HTTP_CONN_OPEN) /* else answered already */
                h1_fail(conn, e);
            break;
        }
        if (n == 0)
            break;
    }
}

void ig_http_h1_on_stall(struct http_conn *conn, bool headers)
{
    struct ig_http_req *req = h1_req(conn);
    const struct ig_http_server *srv = conn->srv;

    if (req == NULL || req->state > HTTP_REQ_BODY) {
        ig_http_conn_close(conn);
        return;
    }
    conn->h1_close = true;
    ig_http_req_log_refusal(req, 408, "ValidationError");
    if (headers)
        ig_http_respond_error(req, 408, "ValidationError",
                              "Request headers were not received within %llu ms.",
                              (unsigned long long)(srv->header_us / 1000u));
    else
        ig_http_respond_error(req, 408, "ValidationError",
                              "The request body came slower than %llu bytes per %llu ms.",
                              (unsigned long long)srv->min_rate,
                              (unsigned long long)(srv->idle_us / 1000u));
}

int ig_http_h1_pending(const struct http_conn *conn)
{
    const struct ig_http_req *req = h1_req(conn);

    if (req != NULL)
        return req->state == HTTP_REQ_HEADERS || req->state == HTTP_REQ_BODY;
    return !conn->h1_discard && ig_http_conn_input_waiting(conn);
}

void ig_http_h1_drain(struct http_conn *conn)
{
    /* Requests whose first byte was read are answered; the answer sets
     * "Connection: close" when nothing follows (ig_http_h1_respond). A
     * refused body still being dropped: close after the answer. */
    if (conn->h1_discard) {
        ig_http_conn_finish(conn);
        return;
    }
    if (!TAILQ_EMPTY(&conn->reqs) || ig_http_conn_input_waiting(conn)) {
        ig_http_conn_kick(conn);
    } else if (evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0) {
        /* a keep-alive answer not on the socket yet: it goes first */
        conn->h1_close = true;
        ig_http_conn_finish(conn);
    } else {
        ig_http_conn_close(conn); /* no byte of a request read */
    }
}

static void h1_free_body(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static void h1_add(struct evbuffer *out, const char *s)
{
    evbuffer_add(out, s, strlen(s));
}

/* A response's head (and a small body) gathered, then handed to the
 * output buffer in one evbuffer_add: each add runs the buffer's callbacks
 * (a fifth of an answer's instructions when it was an add a piece). */
#define H1_HEAD_LOCAL 2048
/* A body up to this size is copied behind its head, not referenced. */
#define H1_BODY_COPY_MAX 1024

struct h1_head {
    char *p;
    size_t len, cap;
    char local[H1_HEAD_LOCAL];
};

static void hh_add(struct h1_head *h, const char *s, size_t n)
{
    if (n > h->cap - h->len) {
        size_t cap = h->cap * 2 > h->len + n ? h->cap * 2 : h->len + n;

        if (h->p == h->local) {
            h->p = ig_xmalloc(cap);
            memcpy(h->p, h->local, h->len);
        } else {
            h->p = ig_xrealloc(h->p, cap);
        }
        h->cap = cap;
    }
    memcpy(h->p + h->len, s, n);
    h->len += n;
}

static void hh_add_header(struct h1_head *h, const char *name, size_t nlen, const char *value)
{
    hh_add(h, name, nlen);
    hh_add(h, ": ", 2);
    hh_add(h, value, strlen(value));
    hh_add(h, "\r\n", 2);
}

#define HH_HEADER(h, lit, value) hh_add_header((h), lit, sizeof(lit) - 1, (value))

/* The length of a duplex stream's response: unknown (chunked, or to the
 * close for an HTTP/1.0 client). */
#define H1_LEN_STREAM SIZE_MAX

/* <req>'s answer is queued: free it, then close after the answer or parse
 * the next request. */
static void h1_done(struct http_conn *conn, struct ig_http_req *req, bool close)
{
    ig_http_req_free(req);
    if (close) {
        conn->h1_close = true;
        ig_http_conn_finish(conn);
    } else {
        ig_http_conn_kick(conn); /* parse the next request */
    }
}

/* Status line and headers, into <h> (h1_head_init first). */
static void h1_head(struct h1_head *h, struct http_conn *conn, const struct ig_http_req *req,
                    int status, const struct ig_http_hdr *hdrs, size_t nhdrs, size_t len,
                    bool close)
{
    const char *reason;
    char line[24];

    if (status < 100 || status > 999)
        status = 500;
    reason = ig_http_status_reason(status);
    line[0] = (char)('0' + status / 100);
    line[1] = (char)('0' + status / 10 % 10);
    line[2] = (char)('0' + status % 10);
    line[3] = ' ';
    hh_add(h, "HTTP/1.1 ", 9);
    hh_add(h, line, 4);
    hh_add(h, reason, strlen(reason));
    hh_add(h, "\r\n", 2);
    for (size_t i = 0; i < nhdrs; i++) {
        const char *name = hdrs[i].name, *value = hdrs[i].value;
        size_t nlen;

        if (name == NULL || value == NULL || name[0] == '\0' ||
            ig_http_hdr_reserved(name, nlen = strlen(name)) || strpbrk(name, "\r\n:") != NULL ||
            strpbrk(value, "\r\n") != NULL)
            continue;
        hh_add_header(h, name, nlen, value);
    }
    if (len == H1_LEN_STREAM) {
        if (!req->http10)
            HH_HEADER(h, "Transfer-Encoding", "chunked");
    } else if (status != 204 && status != 304) {
        line[ig_fmt_u64(line, len)] = '\0';
        HH_HEADER(h, "Content-Length", line);
    }
    HH_HEADER(h, "x-amzn-RequestId", req->id);
    HH_HEADER(h, "Date", ig_http_server_date(conn->srv));
    if (close)
        HH_HEADER(h, "Connection", "close");
    else if (req->http10)
        HH_HEADER(h, "Connection", "keep-alive");
    hh_add(h, "\r\n", 2);
}

static void h1_head_init(struct h1_head *h)
{
    h->p = h->local;
    h->len = 0;
    h->cap = sizeof(h->local);
}

static void h1_head_free(struct h1_head *h)
{
    if (h->p != h->local)
        free(h->p);
}

/* The head, and <body> (<blen> bytes, NULL: none) behind it, in one add. */
static void h1_write_head(struct http_conn *conn, const struct ig_http_req *req, int status,
                          const struct ig_http_hdr *hdrs, size_t nhdrs, size_t len, bool close,
                          const char *body, size_t blen)
{
    struct h1_head h;

    h1_head_init(&h);
    h1_head(&h, conn, req, status, hdrs, nhdrs, len, close);
    if (body != NULL)
        hh_add(&h, body, blen);
    evbuffer_add(bufferevent_get_output(conn->bev), h.p, h.len);
    h1_head_free(&h);
}

void ig_http_h1_respond(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                        size_t nhdrs, char *body, size_t len)
{
    struct http_conn *conn = req->conn;
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    /* Draining: a request read behind this one is answered too; the last
     * answer says "Connection: close" */
    bool close = conn->h1_close || !req->keep_alive ||
                 (conn->srv->draining && !ig_http_conn_input_waiting(conn)) ||
                 (req->stream && !req->stream_in_end);

    if (status == 204 || status == 304) {
        free(body);
        body = NULL;
        len = 0;
    }
    if (body != NULL && len > 0 && len <= H1_BODY_COPY_MAX && !req->head) {
        h1_write_head(conn, req, status, hdrs, nhdrs, len, close, body, len); /* one add */
        free(body);
        h1_done(conn, req, close);
        return;
    }
    h1_write_head(conn, req, status, hdrs, nhdrs, len, close, NULL, 0);
    if (body == NULL || len == 0 || req->head)
        free(body);
    else if (evbuffer_add_reference(out, body, len, h1_free_body, NULL) != 0) {
        free(body);
        close = true;
    }
    h1_done(conn, req, close);
}

/* ---- duplex streams: a chunked response ---- */

void ig_http_h1_stream_head(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                            size_t nhdrs)
{
    struct http_conn *conn = req->conn;
    struct evbuffer *out = bufferevent_get_output(conn->bev);

    /* an HTTP/1.0 client knows no chunks: the body runs to the close */
    if (req->http10)
        conn->h1_close = true;
    h1_write_head(conn, req, status, hdrs, nhdrs, H1_LEN_STREAM,
                  conn->h1_close || !req->keep_alive, NULL, 0);
    ig_http_conn_out_charge(conn, evbuffer_get_length(out));
}

int ig_http_h1_stream_write(struct ig_http_req *req, const char *data, size_t len)
{
    struct http_conn *conn = req->conn;
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    char size[24];
    int rv;

    if (!req->http10) {
        snprintf(size, sizeof(size), "%zx\r\n", len);
        h1_add(out, size);
    }
    evbuffer_add(out, data, len);
    if (!req->http10)
        evbuffer_add(out, "\r\n", 2);
    /* charged; over the budgets the bytes go anyway and the caller waits
     * for the writable notice */
    rv = ig_http_conn_out_charge(conn, evbuffer_get_length(out)) == 0 ? 0 : IG_ERR_FULL;
    ig_http_req_progress(req, len);
    return rv;
}

void ig_http_h1_stream_end(struct ig_http_req *req, bool reset)
{
    struct http_conn *conn = req->conn;
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    bool close = conn->h1_close || !req->keep_alive || reset || !req->stream_in_end ||
                 (conn->srv->draining && !ig_http_conn_input_waiting(conn));

    if (!req->stream_head && !reset)
        ig_http_h1_stream_head(req, 200, NULL, 0);
    if (!reset && !req->http10)
        evbuffer_add(out, "0\r\n\r\n", 5);
    /* a reset: what was queued goes, then the connection closes with the
     * chunked body unfinished, which the client sees as an error */
    h1_done(conn, req, close);
}

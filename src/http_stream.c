/*
 * http_stream.c - duplex streams (http.h, ig_http_stream_*): a request
 * body delivered as it arrives and a response written while it does, over
 * HTTP/2 (one stream, its flow-control window given back only for bytes
 * the gateway consumed) and HTTP/1.1 (chunked both ways; parsing stops
 * while IG_HTTP_STREAM_H1_HELD bytes are held).
 *
 * The protocol-neutral part lives here: picking, delivery, consumption,
 * the writable notice, accounting. The framing is the protocols' own
 * (ig_http_h2_stream_*, ig_http_h1_stream_*).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http_int.h"
#include "infergate/common.h"

void ig_http_server_set_stream_pick(struct ig_http_server *srv, ig_http_stream_pick_cb *pick)
{
    srv->pick = pick;
}

int ig_http_req_is_stream(const struct ig_http_req *req)
{
    return req->stream;
}

bool ig_http_stream_pick(struct ig_http_req *req)
{
    const struct ig_http_server *srv = req->srv;

    req->stream = srv != NULL && srv->pick != NULL && srv->pick(req, srv->arg) == 1;
    return req->stream;
}

void ig_http_stream_open(struct ig_http_req *req, ig_http_body_cb *on_body,
                         ig_http_writable_cb *on_writable, void *arg)
{
    req->stream_open = true;
    req->on_body = on_body;
    req->on_writable = on_writable;
    req->stream_arg = arg;
    ig_http_req_wait(req); /* the stall rule's period starts */
}

void ig_http_stream_input(struct ig_http_req *req, const char *data, size_t len)
{
    if (len == 0)
        return;
    req->stream_held += len;
    req->stream_in += len;
    ig_http_req_progress(req, len);
    if (req->stream_open && req->state == HTTP_REQ_DISPATCHED)
        req->on_body(req, data, len, 0, req->stream_arg);
    else
        ig_http_stream_consume(req, len); /* nobody takes them: dropped */
}

void ig_http_stream_input_end(struct ig_http_req *req)
{
    if (req->stream_in_end)
        return;
    req->stream_in_end = true;
    if (req->stream_open && req->state == HTTP_REQ_DISPATCHED)
        req->on_body(req, NULL, 0, 1, req->stream_arg);
}

void ig_http_stream_consume(struct ig_http_req *req, size_t n)
{
    struct http_conn *conn = req->conn;
    bool was_full = req->stream_held >= IG_HTTP_STREAM_H1_HELD;

    if (n > req->stream_held)
        n = (size_t)req->stream_held;
    if (n == 0)
        return;
    req->stream_held -= n;
    if (conn == NULL || conn->state == HTTP_CONN_DEAD)
        return;
    if (req->h2)
        ig_http_h2_stream_consume(req, n); /* WINDOW_UPDATE */
    else if (was_full && req->stream_held < IG_HTTP_STREAM_H1_HELD)
        ig_http_conn_kick(conn); /* parse on */
}

size_t ig_http_req_resp_left(const struct ig_http_req *req)
{
    return req->resp_len - req->resp_off + (req->sout ? evbuffer_get_length(req->sout) : 0);
}

size_t ig_http_stream_unsent(const struct ig_http_req *req)
{
    const struct http_conn *conn = req->conn;

    if (req->h2)
        return req->sout ? evbuffer_get_length(req->sout) : 0;
    /* h1: one request at a time owns the connection's output */
    return conn != NULL && conn->bev != NULL
               ? evbuffer_get_length(bufferevent_get_output(conn->bev))
               : 0;
}

/* Bring the request's charge in line with what sout holds. */
static int stream_charge(struct ig_http_req *req)
{
    uint64_t n = req->sout ? evbuffer_get_length(req->sout) : 0;
    int rv = ig_http_req_mem_set(req, req->mem - req->sout_mem + n);

    if (rv == 0)
        req->sout_mem = n;
    return rv;
}

void ig_http_stream_head(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                         size_t nhdrs)
{
    struct http_conn *conn = req->conn;

    if (req->stream_head || conn == NULL || conn->state != HTTP_CONN_OPEN)
        return;
    req->stream_head = true;
    if (req->h2)
        ig_http_h2_stream_head(req, status, hdrs, nhdrs);
    else
        ig_http_h1_stream_head(req, status, hdrs, nhdrs);
}

int ig_http_stream_write(struct ig_http_req *req, const char *data, size_t len)
{
    struct http_conn *conn = req->conn;
    int rv;

    if (len == 0 || !req->stream_head || conn == NULL || conn->state != HTTP_CONN_OPEN)
        return 0;
    req->stream_out += len;
    if (!req->h2)
        return ig_http_h1_stream_write(req, data, len);
    if (req->sout == NULL && (req->sout = evbuffer_new()) == NULL)
        return IG_ERR_NOMEM;
    if (evbuffer_add(req->sout, data, len) != 0)
        return IG_ERR_NOMEM;
    rv = stream_charge(req);
    if (evbuffer_get_length(req->sout) == len)
        ig_http_req_wait(req); /* output now waits on the client: a new period */
    ig_http_h2_stream_resume(req);
    return rv;
}

void ig_http_stream_waiting(struct ig_http_req *req, int on)
{
    if (on && req->stream_busy)
        ig_http_req_wait(req); /* the client's clock starts afresh */
    req->stream_busy = !on;
}

void ig_http_stream_wait_writable(struct ig_http_req *req)
{
    req->stream_writable = true;
    if (req->conn != NULL)
        ig_http_conn_kick(req->conn);
}

void ig_http_stream_notify(struct http_conn *conn)
{
    struct ig_http_req *req, *next;

    for (req = TAILQ_FIRST(&conn->reqs); req != NULL && conn->state == HTTP_CONN_OPEN;
         req = next) {
        next = TAILQ_NEXT(req, link);
        if (req->h2 && req->sout != NULL && req->sout_mem != evbuffer_get_length(req->sout))
            stream_charge(req); /* shrinks as DATA goes: cannot fail */
        if (!req->stream_writable || req->state != HTTP_REQ_DISPATCHED ||
            ig_http_stream_unsent(req) > IG_HTTP_STREAM_LOW)
            continue;
        req->stream_writable = false;
        /* may write, end or reset <req> (not the others); <next> stays */
        req->on_writable(req, req->stream_arg);
    }
}

/* The gateway is done with <req> (end or reset): it leaves the active
 * count as an answer would. */
static void stream_done(struct ig_http_req *req)
{
    if (req->state == HTTP_REQ_DISPATCHED && req->conn != NULL)
        req->conn->srv->nactive--;
    req->close_cb = NULL;
    req->stream_writable = false;
}

static void stream_finish(struct ig_http_req *req, bool reset)
{
    struct http_conn *conn = req->conn;

    stream_done(req);
    if (conn == NULL || conn->state != HTTP_CONN_OPEN) {
        ig_http_req_free(req);
        return;
    }
    if (!req->h2) {
        ig_http_h1_stream_end(req, reset);
        return;
    }
    req->state = HTTP_REQ_ANSWERED;
    ig_http_req_wait(req);
    if (!req->stream_head && !reset)
        ig_http_stream_head(req, 200, NULL, 0);
    if (reset && !req->stream_head) {
        ig_http_h2_stream_rst(req); /* nothing was sent: the reset goes now */
        return;
    }
    if (reset)
        req->stream_reset = true;
    else
        req->stream_out_end = true;
    ig_http_h2_stream_resume(req);
}

void ig_http_stream_end(struct ig_http_req *req)
{
    stream_finish(req, false);
}

void ig_http_stream_reset(struct ig_http_req *req)
{
    stream_finish(req, true);
}

void ig_http_stream_release(struct ig_http_req *req)
{
    if (req->stream_held > 0 && req->h2 && req->conn != NULL && req->conn->state != HTTP_CONN_DEAD)
        ig_http_h2_stream_consume(req, (size_t)req->stream_held);
    req->stream_held = 0;
    if (req->sout != NULL) {
        evbuffer_free(req->sout);
        req->sout = NULL;
    }
    req->sout_mem = 0;
}

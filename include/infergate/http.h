/*
 * http.h - the gateway's HTTP front: one listening port serving HTTP/2 (prior
 * knowledge over cleartext, or ALPN "h2" over TLS) and HTTP/1.1 with
 * keep-alive and pipelining, all on one libevent event_base thread.
 *
 * The module hands the gateway complete requests (headers and the whole body,
 * capped) through one callback and takes complete responses, possibly long
 * after the callback returned. Protocol limits (header and body caps,
 * timeouts, connection and stream limits) are enforced here: requests that
 * break them are answered by the module and never reach the gateway.
 *
 * Threading: every function must be called on the thread that runs <base>.
 * Request objects are only valid between on_request and the matching
 * ig_http_respond() (or the close callback).
 */
#ifndef INFERGATE_HTTP_H
#define INFERGATE_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ig_budget;

/* Bytes one request of the maximum size holds beyond its body and header
 * list: the request itself, the header block's NULs, offsets and index,
 * and the rounding of charges (4 KiB steps). A connection's share must be
 * at least max_body_bytes + max_header_list_size + this. */
#define IG_HTTP_REQ_OVERHEAD (32u << 10)

struct ig_http_server_conf {
    const char *listen;              /* "HOST:PORT": IPv4, "[v6]" or a name (addr.h); 0 = any port */
    const char *tls_cert, *tls_key;  /* both non-empty: TLS (ALPN h2, http/1.1); else cleartext */
    uint32_t max_connections;        /* at the limit, a new connection ends the oldest idle one
                                        (h2: GOAWAY first), else the one longest (over 1 s) in
                                        a TLS handshake, its first bytes, an h1 header block
                                        or dropping a refused h1 body; with none of those it
                                        is closed at once; 0 = unlimited */
    uint32_t max_concurrent_streams; /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; 0 = 100 */
    uint32_t max_header_list_size;   /* bytes of header names+values (and the request target) per
                                        request: h2 SETTINGS_MAX_HEADER_LIST_SIZE and enforced
                                        (h2: 431; h1: 431 then close); 0 = 65536 */
    uint64_t max_body_bytes;         /* bigger bodies get 413; 0 = 6291456 (SageMaker's limit).
                                        A body refused before it is in (413, throttled) is
                                        read and dropped up to 2 * max_body_bytes + 1 MiB so
                                        that the client sees the answer and keeps the
                                        connection (h2: with more than one stream window
                                        of it to come, the answer waits for its end);
                                        past that h1 closes (also after an unanswered
                                        Expect: 100-continue) and h2 sends
                                        RST_STREAM(NO_ERROR) after the answer */
    uint64_t max_buffered_body_bytes; /* the server-wide budget (budget.h): bytes held for
                                         clients at once across all connections (request
                                         header blocks as decoded, bodies as they arrive,
                                         decoded rows, responses waiting for the client); a
                                         request that would take the total past this gets 400
                                         ThrottlingException at once (h1: then close; h2:
                                         RST_STREAM(NO_ERROR)); 0 = 1073741824 */
    uint64_t max_conn_buffered_bytes; /* each connection's share of that budget, the same
                                         bytes counted per connection; one request of the
                                         maximum size needs max_body_bytes +
                                         max_header_list_size + IG_HTTP_REQ_OVERHEAD;
                                         0 = 67108864 */
    uint64_t min_rate_bytes;         /* the stall rule: a request body still arriving, or a
                                        response waiting on the client, must move this many
                                        bytes per idle_timeout_ms period, or 1/16 of its body
                                        received / response left when that is more (each
                                        stream, each h1 request on its own; responses behind
                                        a blocked h2 socket share its progress out), else
                                        408 (h1) or RST_STREAM(CANCEL) / GOAWAY (h2, also
                                        when the socket is what holds them); 0 = 4096 */
    uint64_t idle_timeout_ms;        /* connection with no request in progress for this long: closed
                                        (h2: GOAWAY); also the stall period: an h1 request body
                                        that moves fewer than min_rate_bytes in one: 408 then
                                        close; an h2 stream waiting on the client (body
                                        incomplete, response held back by flow control) that
                                        moves fewer than min_rate_bytes in one: RST_STREAM(CANCEL),
                                        or GOAWAY when no other stream is left; 0 = never */
    uint64_t header_timeout_ms;      /* a request's headers not complete within this: closed
                                        (h1: 408 then close; h2: GOAWAY); 0 = never */
};

struct ig_http_hdr {
    const char *name;
    const char *value;
};

struct ig_http_server; /* opaque */
struct ig_http_req;    /* opaque: one request (an h2 stream or one h1 exchange) */

/* A complete request was received. The gateway answers it with
 * ig_http_respond() exactly once, now or later, unless the close callback
 * fires first. */
typedef void ig_http_request_cb(struct ig_http_req *req, void *arg);
/* The peer went away (connection lost, stream reset, server freed) before the
 * response was sent; <req> is freed right after this returns and must not be
 * answered. Must not call ig_http_respond() on <req> nor ig_http_server_free(). */
typedef void ig_http_close_cb(struct ig_http_req *req, void *arg);

/*
 * Start listening on <conf>->listen on <base> and serve requests to
 * <on_request>(req, <arg>). <conf> is copied (strings are only read here).
 * TLS is used when both tls_cert (a PEM chain) and tls_key are non-empty.
 * On success *<out> owns the server (free with ig_http_server_free()).
 * Errors (with a message in <err>, cut to <errlen>):
 *   IG_ERR_CONFIG  listen address unparsable, certificate or key unusable
 *   IG_ERR_IO      socket, bind or listen failed (address in use, ...)
 *   IG_ERR_NOMEM   libevent or OpenSSL could not allocate
 */
int ig_http_server_new(struct event_base *base, const struct ig_http_server_conf *conf,
                       ig_http_request_cb *on_request, void *arg, struct ig_http_server **out,
                       char *err, size_t errlen);

/* The bound port (useful with port 0). */
uint16_t ig_http_server_port(const struct ig_http_server *srv);

/*
 * Drain: close the listener. Every request whose first byte was read is
 * answered (bodies still arriving included). h2 connections get a graceful
 * GOAWAY: a shutdown notice, then after a PING round trip (at most 1 s) the
 * last stream id; streams above it were never accepted. h1 connections
 * answer what they read, the last answer with "Connection: close"; a
 * keep-alive connection with no byte of a request read is closed at once.
 * A client that moves no byte for 1 s (or idle_timeout_ms if shorter) while
 * the drain waits on it gets 408 for a request not in, or its connection
 * closed for answers it does not take. Idempotent.
 */
void ig_http_server_stop_accepting(struct ig_http_server *srv);

/* Requests handed to on_request and neither answered nor closed yet. */
uint32_t ig_http_server_active_requests(const struct ig_http_server *srv);

/*
 * For the drain (SIGTERM): a request counts as accepted from the first byte
 * of it that the gateway read. The drain is complete - the loop may exit -
 * only when
 *     ig_http_server_active_requests(srv) == 0
 *  && ig_http_server_pending_requests(srv) == 0
 *  && ig_http_server_flushed(srv)
 * (and the gateway holds no request of its own). Poll them from a timer
 * after ig_http_server_stop_accepting(); never exit the loop from inside
 * the drain call itself (the shutdown notices are only queued there).
 *
 * pending: requests started but not handed to on_request yet: header or
 * body bytes still arriving (h1 and h2), h1 bytes read but not parsed yet
 * (the next keep-alive or pipelined request), a cleartext connection whose
 * first bytes came before its protocol is known. Each of them becomes an
 * on_request call or a module answer (408 at header_timeout_ms, 413, ...)
 * within the connection's timeouts.
 *
 * flushed: 1 when no connection has anything left to send: every HTTP/2
 * connection's final GOAWAY (the one carrying the last stream id) and every
 * last response are written to their sockets (TLS: and close_notify).
 * Before stop_accepting it is 1 only when there is no connection at all.
 * Connections that remain (waiting for the client's EOF) are closed
 * without loss by ig_http_server_free().
 */
uint32_t ig_http_server_pending_requests(const struct ig_http_server *srv);
int ig_http_server_flushed(const struct ig_http_server *srv);
/*
 * 1 when every connection left waiting for its client's EOF has had what
 * was written acknowledged by the client. Exiting before that closes a
 * socket whose input came unread with a RST, which throws away what it
 * had not sent yet: a drain that is complete waits for it too (a client
 * that does not read is left at the linger, 2 s, or the drain's deadline).
 */
int ig_http_server_acked(const struct ig_http_server *srv);
/* The server-wide budget (max_buffered_body_bytes), for others that hold
 * bytes on clients' behalf (a remote model's calls): hold charges with
 * ig_budget_hold, which keeps its own reference. */
struct ig_budget *ig_http_server_budget(struct ig_http_server *srv);
/* Open client connections (including ones flushing a last response). */
uint32_t ig_http_server_connections(const struct ig_http_server *srv);
/* The budgets (budget.h) as /metrics shows them: the server-wide budget
 * (held, cap, charges it refused) and the per-connection shares (the
 * largest held now, the cap, charges refused by any share so far). */
struct ig_http_budget_stats {
    uint64_t held, cap, refused;
    uint64_t conn_held_max, conn_cap, conn_refused;
    uint64_t stalls;  /* streams / h1 requests cut by the stall rule so far */
    uint64_t evicted; /* connections ended at max_connections to make room */
};
void ig_http_server_budget_stats(const struct ig_http_server *srv,
                                 struct ig_http_budget_stats *out);
/* Bytes of request-body storage held now, across all connections: every
 * request's allocated body buffer (grown by doubling as bytes arrive, up to
 * its declared length plus one), from the first byte until the response
 * is sent or the request is freed (also a request the gateway still holds
 * after its connection went away). Part of what the budgets count. */
uint64_t ig_http_server_buffered_body_bytes(const struct ig_http_server *srv);

/*
 * Close every connection and the listener, then free <srv>. Requests still
 * waiting for a response get their close callback; requests without one stay
 * valid until the gateway answers them (the answer is then dropped). NULL is
 * a no-op. Must not be called from inside an ig_http_request_cb or
 * ig_http_close_cb.
 */
void ig_http_server_free(struct ig_http_server *srv);

/* Accessors; the strings live as long as <req>. */
const char *ig_http_req_method(const struct ig_http_req *req);
/* The request path without the query (nor fragment), NUL-terminated. */
const char *ig_http_req_path(const struct ig_http_req *req);
/* First value of header <name> (case-insensitive), or NULL when absent. Over
 * h2, "host" falls back to :authority. */
const char *ig_http_req_header(const struct ig_http_req *req, const char *name);
/* All request headers (pseudo-headers excluded), in arrival order; the array
 * lives as long as <req>. */
const struct ig_http_hdr *ig_http_req_headers(const struct ig_http_req *req, size_t *n);
/* The whole body, stable until the response is sent or the req closed;
 * NUL-terminated for convenience (not counted in *<len>). Never NULL. */
const char *ig_http_req_body(const struct ig_http_req *req, size_t *len);
/* "h2" or "http/1.1" (also for HTTP/1.0 clients). */
const char *ig_http_req_proto(const struct ig_http_req *req);
/* A UUID v4 (36 characters), also sent as x-amzn-RequestId on the response. */
const char *ig_http_req_id(const struct ig_http_req *req);
/* The budget that bytes held for <req> are charged to: its connection's
 * share (a child of the server-wide budget). Never NULL; a caller that
 * keeps charges past the request's life takes its own reference
 * (ig_budget_hold does). */
struct ig_budget *ig_http_req_budget(const struct ig_http_req *req);
/* A value the application keeps for <req>'s connection (0 when it is
 * accepted; e.g. a deadline), or NULL when the request has no connection
 * any more. */
uint64_t *ig_http_req_conn_mark(struct ig_http_req *req);
/* Who <req> came from, as a number: an IPv4 address (odd), an IPv6 /63
 * (even; an IPv4-mapped IPv6 address is its IPv4 one), never 0; 0 for a
 * Unix socket's peer or when the request has no connection any more. */
uint64_t ig_http_req_peer_key(const struct ig_http_req *req);
/* Ask to be told when the peer goes away before the response; see
 * ig_http_close_cb. Replaces any previous callback. */
void ig_http_req_set_close_cb(struct ig_http_req *req, ig_http_close_cb *cb, void *arg);
/* 1 when an answer to <req> would be dropped (its connection went away,
 * leaving it detached, or is closing), else 0: for a caller that holds a
 * request without a close callback, e.g. while a worker reads its body. */
int ig_http_req_orphaned(const struct ig_http_req *req);

/*
 * Send the response: <status> (200..999; anything else is sent as 500), the
 * headers <hdrs>[0..<nhdrs>) (copied; names are lowercased for h2; headers
 * the module owns - content-length, transfer-encoding, connection, date,
 * x-amzn-requestid, keep-alive, upgrade - and values containing CR or LF are
 * dropped) and <body> of <len> bytes, whose ownership is taken (malloc'd,
 * freed with free(); NULL with len 0 for none). content-length and
 * x-amzn-RequestId (and date for h1) are added. Exactly once per request,
 * possibly long after on_request returned. If the connection died meanwhile
 * and no close callback was set, the response is dropped. After the call
 * <req> must not be used.
 */
void ig_http_respond(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                     size_t nhdrs, char *body, size_t len);

/*
 * Duplex streams (POST /transform/...): a request the gateway takes as a
 * stream is handed to on_request as soon as its header block is complete;
 * its body is then delivered piece by piece as it arrives (never stored by
 * this module) and its response is written piece by piece while the body
 * is still coming: h2 on the same stream, h1 as a chunked response.
 *
 * Flow control: body bytes delivered and not yet given back with
 * ig_http_stream_consume() hold the client back: h2 sends WINDOW_UPDATE
 * only for consumed bytes (each stream window is HTTP_H2_STREAM_WINDOW),
 * h1 parses no further input while IG_HTTP_STREAM_H1_HELD bytes are held.
 * Response bytes queued and not yet taken by the client count as unsent
 * (ig_http_stream_unsent); they are charged to the request's budget.
 *
 * Stall rule: a stream whose client owes input (the body has not ended and
 * the gateway waits for more of it: ig_http_stream_waiting) or holds
 * unsent output must move min_rate_bytes in either direction per
 * idle_timeout_ms, else it is cut (h2 RST_STREAM(CANCEL), h1 close) and
 * the close callback runs.
 */
#define IG_HTTP_STREAM_H1_HELD ((size_t)1 << 20)
/* ig_http_stream_wait_writable: the callback comes once unsent output is at
 * most this. */
#define IG_HTTP_STREAM_LOW ((size_t)256 << 10)

/* Called once a request's header block is complete (method, path and
 * headers readable, no body yet): return 1 to take it as a duplex stream. */
typedef int ig_http_stream_pick_cb(const struct ig_http_req *req, void *arg);
void ig_http_server_set_stream_pick(struct ig_http_server *srv, ig_http_stream_pick_cb *pick);
/* 1 when <req> was taken as a stream. */
int ig_http_req_is_stream(const struct ig_http_req *req);

/* <len> body bytes of a stream arrived (<end> 0), or the body ended (<end>
 * 1, <len> 0). The bytes are only valid during the call. Called from inside
 * the protocol's parser: the callee must not answer, end or reset <req>
 * from here (defer to a later event). */
typedef void ig_http_body_cb(struct ig_http_req *req, const char *data, size_t len, int end,
                             void *arg);
/* Unsent output fell to IG_HTTP_STREAM_LOW or below after
 * ig_http_stream_wait_writable(). May write, end or reset. */
typedef void ig_http_writable_cb(struct ig_http_req *req, void *arg);

/* Take <req> (from on_request, with ig_http_req_is_stream) as a stream:
 * body pieces go to <on_body>, the writable notice to <on_writable>. Not
 * calling it and answering with ig_http_respond() refuses the stream (the
 * rest of its body is dropped; h1 closes the connection after the answer). */
void ig_http_stream_open(struct ig_http_req *req, ig_http_body_cb *on_body,
                         ig_http_writable_cb *on_writable, void *arg);
/* Give <n> delivered body bytes back to the client's flow control. */
void ig_http_stream_consume(struct ig_http_req *req, size_t n);
/* Send the status and headers now (no content-length; h1: chunked, or for
 * an HTTP/1.0 client the body runs to the connection's close). Once. */
void ig_http_stream_head(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                         size_t nhdrs);
/* Queue <len> response bytes (copied) after the head. 0, or IG_ERR_FULL
 * when the budgets refused to count them (they are queued anyway: the
 * caller stops producing until the writable notice). */
int ig_http_stream_write(struct ig_http_req *req, const char *data, size_t len);
/* Response bytes queued and not yet taken by the client. */
size_t ig_http_stream_unsent(const struct ig_http_req *req);
/* <on> 1 (the default): the gateway waits for more of the body from the
 * client (what it holds, if anything, is a line not complete yet): the
 * stall rule's clock runs. 0: it holds the client's bytes back itself
 * (backpressure): the clock stops, and starts a new period when it runs
 * again. */
void ig_http_stream_waiting(struct ig_http_req *req, int on);
/* Ask for on_writable once unsent output is at most IG_HTTP_STREAM_LOW. */
void ig_http_stream_wait_writable(struct ig_http_req *req);
/* End the response after what is queued (h2 END_STREAM, h1 last chunk);
 * <req> must not be used afterwards. The body should have ended (else h2
 * follows with RST_STREAM(NO_ERROR) and h1 closes the connection). */
void ig_http_stream_end(struct ig_http_req *req);
/* Abort after what is queued has been sent: h2 RST_STREAM(INTERNAL_ERROR),
 * h1 the connection closes without the last chunk. <req> must not be used
 * afterwards. */
void ig_http_stream_reset(struct ig_http_req *req);

/*
 * A SageMaker-shaped error response: <status>, headers
 * "Content-Type: application/json" and "x-amzn-ErrorType: <type>", body
 * {"message":"<msg>"} with the printf-formatted message (cut at 1 KiB)
 * JSON-escaped (bytes that are not valid UTF-8 become '?'). Same ownership
 * rule as ig_http_respond().
 */
void ig_http_respond_error(struct ig_http_req *req, int status, const char *type, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

#endif /* INFERGATE_HTTP_H */

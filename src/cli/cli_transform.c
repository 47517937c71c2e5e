/*
 * cli_transform.c - one streaming transform: IN -> POST /transform/NAME
 * over HTTP/2 -> OUT, full duplex, on one libevent loop.
 *
 * Request body: an nghttp2 data source (cli_on_body_read) hands nghttp2
 * the input as flow control lets it, from one CLI_IN_BUF buffer refilled by
 * read(2) only when empty. A regular file is read as it is asked for; a
 * pipe, terminal or socket is made non-blocking and, when it has nothing,
 * the data source answers NGHTTP2_ERR_DEFERRED and an EV_READ event on it
 * resumes the stream (nghttp2_session_resume_data). Frames go to the
 * bufferevent through cli_on_send, which refuses (NGHTTP2_ERR_WOULDBLOCK)
 * above CLI_SOCK_OUT_HIGH pending bytes; the write callback resumes. So
 * memory holds at most CLI_IN_BUF of input and about CLI_SOCK_OUT_HIGH of
 * frames, whatever the input's size.
 *
 * Response: read whenever the socket has bytes, always, so that both sides
 * can send at once. DATA of a 200 is counted (newlines are records) and
 * copied into CLI_OUT_BUF, written to OUT with write(2) when it fills and
 * after each read from the socket; a slow OUT blocks the loop, and so the
 * gateway's sending through the flow-control window, never memory. Any
 * other status keeps at most CLI_ERR_BODY_MAX of its body for the message.
 *
 * The outcome is decided when the stream closes (cli_on_stream_close): a
 * 200 whose END_STREAM arrived after the whole request was sent succeeds;
 * anything else fails with one message (the first failure wins). Then a
 * GOAWAY is flushed (at most CLI_LINGER_MS) and the loop ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "infergate/addr.h"
#include "infergate/version.h"

#define CLI_IN_BUF ((size_t)1 << 20)          /* one read(2) of IN */
#define CLI_OUT_BUF ((size_t)1 << 20)         /* predictions held before write(2) */
#define CLI_OUT_FLUSH ((size_t)256 << 10)     /* written at once from this much */
#define CLI_OUT_DELAY_US 5000                 /* else within this */
#define CLI_SOCK_OUT_HIGH ((size_t)1 << 20)   /* frames pending on the socket */
#define CLI_SOCK_OUT_LOW ((size_t)256 << 10)  /* resume sending below this */
#define CLI_SOCK_READ_MAX ((size_t)256 << 10)  /* one read(2) or write(2) of the socket */
#define CLI_WINDOW ((int32_t)16 << 20)        /* stream and connection windows */
#define CLI_HEADER_MAX ((size_t)64 << 10)     /* one response header block */
#define CLI_ERR_BODY_MAX ((size_t)64 << 10)   /* an error response's body kept */
#define CLI_ERRTYPE_MAX 128                   /* x-amzn-errortype kept */
#define CLI_MSG_MAX 1024                      /* the failure message */
#define CLI_CONNECT_TIMEOUT_MS 10000
#define CLI_LINGER_MS 1000                    /* flushing the final GOAWAY */
#define CLI_PROGRESS_US 250000                /* the progress line's refresh */

struct cli {
    const struct cli_opts *o;
    struct event_base *base;
    struct bufferevent *bev;
    SSL_CTX *ssl_ctx;
    SSL *ssl;             /* owned by bev once it exists */
    nghttp2_session *h2;
    int32_t sid;          /* the request's stream */

    /* IN */
    int in_fd;
    const char *in_name;
    int in_flags;         /* fcntl flags before O_NONBLOCK, or -1 */
    int in_eof;
    char *in_buf;
    size_t in_off, in_len; /* unsent bytes: in_buf[in_off, in_len) */
    struct event *in_ev;  /* EV_READ on a non-blocking IN */

    /* OUT */
    int out_fd;
    const char *out_name;
    char *out_buf;
    size_t out_len;
    struct event *out_ev; /* writes a small out_buf within CLI_OUT_DELAY_US */

    /* the response */
    int status_cur;       /* :status of the header block being read */
    int status;           /* the final status, 0 until it came */
    size_t header_bytes;  /* of the block being read */
    char errtype[CLI_ERRTYPE_MAX + 1];
    char *err_body;
    size_t err_len;
    int request_sent;     /* END_STREAM of the request went out */
    int response_ended;   /* END_STREAM of the response came */

    /* counters */
    uint64_t records, bytes_sent, bytes_recv;
    uint64_t t0_us, t_end_us;
    struct event *progress_ev;
    uint64_t last_records, last_us;
    double last_rate;
    int progress_shown;

    /* the outcome */
    int h2_started;       /* the HTTP/2 session began: print a summary */
    int conn_dead;        /* the socket failed or closed: nothing more to send */
    int done;             /* stream closed or failure: finish after this turn */
    int finishing;
    int ok;
    int failed;
    char msg[CLI_MSG_MAX];
    struct event *linger_ev;
    struct event *sig_ev[2]; /* SIGINT, SIGTERM: stop, keep the output so far */
};

static void cli_finish(struct cli *c);

static uint64_t cli_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Record the first failure and end the transform after this turn. */
__attribute__((format(printf, 2, 3))) static void cli_fail(struct cli *c, const char *fmt, ...)
{
    va_list ap;

    c->done = 1;
    if (c->failed)
        return;
    c->failed = 1;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
    va_end(ap);
}

static const char *cli_out_label(const struct cli *c)
{
    return c->o->out_path ? c->o->out_path : "stdout";
}

/* ---- OUT ------------------------------------------------------------- */

/* write(2) all of <p>, waiting on a non-blocking OUT; 0 or -1 with errno. */
static int cli_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            (void)poll(&pfd, 1, -1);
        } else if (w == -1 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

static int cli_out_flush(struct cli *c)
{
    if (c->out_len == 0)
        return 0;
    if (cli_write_all(c->out_fd, c->out_buf, c->out_len) == -1) {
        cli_fail(c, "cannot write to %s: %s", cli_out_label(c), strerror(errno));
        c->out_len = 0;
        return -1;
    }
    c->out_len = 0;
    return 0;
}

static int cli_out_add(struct cli *c, const uint8_t *p, size_t n)
{
    if (c->out_len + n > CLI_OUT_BUF && cli_out_flush(c) == -1)
        return -1;
    if (n > CLI_OUT_BUF) {
        if (cli_write_all(c->out_fd, (const char *)p, n) == -1) {
            cli_fail(c, "cannot write to %s: %s", cli_out_label(c), strerror(errno));
            return -1;
        }
        return 0;
    }
    memcpy(c->out_buf + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void cli_on_out_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cli *c = arg;

    (void)fd;
    (void)what;
    if (cli_out_flush(c) == -1)
        cli_finish(c);
}

/*
 * After a read from the socket: write the predictions now when they are
 * many, else within CLI_OUT_DELAY_US (a trickle of records is not one
 * write(2) per DATA frame, and still shows at once).
 */
static void cli_out_schedule(struct cli *c)
{
    struct timeval tv = {0, CLI_OUT_DELAY_US};

    if (c->out_len >= CLI_OUT_FLUSH)
        (void)cli_out_flush(c);
    else if (c->out_len > 0 && !evtimer_pending(c->out_ev, NULL))
        evtimer_add(c->out_ev, &tv);
}

static uint64_t cli_count_newlines(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t k = 0;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* ---- progress and summary ---------------------------------------------- */

static void cli_human(char *out, size_t cap, uint64_t bytes)
{
    if (bytes >= ((uint64_t)1 << 30))
        snprintf(out, cap, "%.2f GiB", (double)bytes / (double)((uint64_t)1 << 30));
    else if (bytes >= ((uint64_t)1 << 20))
        snprintf(out, cap, "%.1f MiB", (double)bytes / (double)((uint64_t)1 << 20));
    else
        snprintf(out, cap, "%.1f KiB", (double)bytes / 1024.0);
}

static void cli_on_progress(evutil_socket_t fd, short what, void *arg)
{
    struct cli *c = arg;
    uint64_t now = cli_now_us();
    char sent[32], recvd[32], line[256];
    int n;

    (void)fd;
    (void)what;
    if (now > c->last_us)
        c->last_rate = (double)(c->records - c->last_records) * 1e6 / (double)(now - c->last_us);
    c->last_records = c->records;
    c->last_us = now;
    cli_human(sent, sizeof(sent), c->bytes_sent);
    cli_human(recvd, sizeof(recvd), c->bytes_recv);
    n = snprintf(line, sizeof(line),
                 "\rinfergate-cli: %llu rows out, %.0f rows/s, %s sent, %s received, %.1f s\033[K",
                 (unsigned long long)c->records, c->last_rate, sent, recvd,
                 (double)(now - c->t0_us) / 1e6);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    c->progress_shown = 1;
}

static void cli_print_summary(const struct cli *c)
{
    double secs = (double)(c->t_end_us - c->t0_us) / 1e6;

    fprintf(stderr,
            "infergate-cli: %llu records in %.2f s (%.0f records/s), %llu bytes sent, "
            "%llu bytes received\n",
            (unsigned long long)c->records, secs, secs > 0 ? (double)c->records / secs : 0.0,
            (unsigned long long)c->bytes_sent, (unsigned long long)c->bytes_recv);
}

/* ---- finishing ------------------------------------------------------- */

static void cli_on_linger(evutil_socket_t fd, short what, void *arg)
{
    struct cli *c = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(c->base);
}

/*
 * The stream is over (or the transform failed): send a GOAWAY when the
 * connection still works, and end the loop once it is written (the write
 * callback) or after CLI_LINGER_MS.
 */
static void cli_finish(struct cli *c)
{
    struct timeval tv = {CLI_LINGER_MS / 1000, (CLI_LINGER_MS % 1000) * 1000};

    if (c->finishing) {
        if (c->conn_dead)
            event_base_loopbreak(c->base);
        return;
    }
    c->finishing = 1;
    if (c->t_end_us == 0)
        c->t_end_us = cli_now_us();
    if (c->in_ev)
        event_del(c->in_ev);
    if (c->h2 && c->bev && !c->conn_dead) {
        (void)nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
        (void)nghttp2_session_send(c->h2);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
            bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
            event_add(c->linger_ev, &tv);
            return;
        }
    }
    event_base_loopbreak(c->base);
}

static void cli_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct cli *c = arg;

    (void)what;
    cli_fail(c, "interrupted (%s) after %llu records", sig == SIGINT ? "SIGINT" : "SIGTERM",
             (unsigned long long)c->records);
    cli_finish(c);
}

/* After each event: finish when the stream is over, else send what can go. */
static void cli_after_io(struct cli *c)
{
    if (!c->done && c->h2 && !c->conn_dead) {
        int rv = nghttp2_session_send(c->h2);
        if (rv != 0)
            cli_fail(c, "HTTP/2 error: %s", nghttp2_strerror(rv));
    }
    if (c->done)
        cli_finish(c);
}

/* ---- the response's end ---------------------------------------------- */

/* Replace control bytes (a terminal's escapes) in <s> with '?'. */
static void cli_sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

/* "<status> <errortype>: <message>" from the error response. */
static void cli_http_error(struct cli *c)
{
    json_t *root = NULL, *m;
    char text[CLI_MSG_MAX];
    const char *msg = NULL;

    if (c->err_len > 0)
        root = json_loadb(c->err_body, c->err_len, 0, NULL);
    m = root ? json_object_get(root, "message") : NULL;
    if (m && json_is_string(m)) {
        msg = json_string_value(m);
    } else if (c->err_len > 0) {
        size_t n = c->err_len;
        while (n > 0 && (c->err_body[n - 1] == '\n' || c->err_body[n - 1] == '\r'))
            n--;
        snprintf(text, sizeof(text), "%.*s", (int)n, c->err_body);
        msg = text;
    } else {
        msg = "(no message)";
    }
    if (msg != text)
        snprintf(text, sizeof(text), "%s", msg);
    /* NUL bytes in a raw body end the message early; that is fine. */
    cli_sanitize(text);
    if (c->errtype[0])
        cli_fail(c, "%d %s: %s", c->status, c->errtype, text);
    else
        cli_fail(c, "%d: %s", c->status, text);
    json_decref(root);
}

static int cli_on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *arg)
{
    struct cli *c = arg;

    (void)s;
    if (sid != c->sid)
        return 0;
    c->t_end_us = cli_now_us();
    if (c->status == 0)
        cli_fail(c, "the stream was reset by the gateway (%s) before a response",
                 nghttp2_http2_strerror(code));
    else if (c->status != 200)
        cli_http_error(c);
    else if (!c->response_ended)
        cli_fail(c, "the stream was reset by the gateway (%s) after %llu records",
                 nghttp2_http2_strerror(code), (unsigned long long)c->records);
    else if (!c->request_sent)
        cli_fail(c, "the gateway ended the response before the whole input was sent, "
                    "after %llu records", (unsigned long long)c->records);
    else
        c->ok = 1;
    c->done = 1;
    return 0;
}

/* ---- nghttp2 callbacks ----------------------------------------------- */

static ssize_t cli_on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                           void *arg)
{
    struct cli *c = arg;
    struct evbuffer *out = bufferevent_get_output(c->bev);

    (void)s;
    (void)flags;
    if (evbuffer_get_length(out) >= CLI_SOCK_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* Refill the input buffer: 1 bytes came, 0 EOF, -1 nothing yet, -2 error. */
static int cli_in_fill(struct cli *c)
{
    for (;;) {
        ssize_t n = read(c->in_fd, c->in_buf, CLI_IN_BUF);
        if (n > 0) {
            c->in_off = 0;
            c->in_len = (size_t)n;
            return 1;
        }
        if (n == 0) {
            c->in_eof = 1;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        if (errno != EINTR) {
            cli_fail(c, "cannot read %s: %s", c->in_name, strerror(errno));
            return -2;
        }
    }
}

static ssize_t cli_on_body_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                                uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct cli *c = arg;
    size_t n;

    (void)s;
    (void)sid;
    (void)src;
    if (c->in_off == c->in_len && !c->in_eof) {
        int r = cli_in_fill(c);
        if (r == -1) {
            event_add(c->in_ev, NULL);
            return NGHTTP2_ERR_DEFERRED;
        }
        if (r == -2)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    n = c->in_len - c->in_off;
    if (n > len)
        n = len;
    memcpy(buf, c->in_buf + c->in_off, n);
    c->in_off += n;
    if (c->in_eof && c->in_off == c->in_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void cli_on_in_ready(evutil_socket_t fd, short what, void *arg)
{
    struct cli *c = arg;

    (void)fd;
    (void)what;
    if (c->h2 && !c->done)
        (void)nghttp2_session_resume_data(c->h2, c->sid);
    cli_after_io(c);
}

static int cli_on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *arg)
{
    struct cli *c = arg;

    (void)s;
    if (frame->hd.stream_id == c->sid) {
        c->header_bytes = 0;
        c->status_cur = 0;
    }
    return 0;
}

static int cli_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *arg)
{
    struct cli *c = arg;

    (void)s;
    (void)flags;
    if (frame->hd.stream_id != c->sid)
        return 0;
    c->header_bytes += namelen + valuelen + 32;
    if (c->header_bytes > CLI_HEADER_MAX) {
        cli_fail(c, "the gateway's response header block is larger than %zu KiB",
                 CLI_HEADER_MAX >> 10);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (c->status != 0)
        return 0; /* trailers */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3) {
        c->status_cur = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    } else if (namelen == 16 && memcmp(name, "x-amzn-errortype", 16) == 0) {
        size_t n = valuelen < CLI_ERRTYPE_MAX ? valuelen : CLI_ERRTYPE_MAX;
        memcpy(c->errtype, value, n);
        c->errtype[n] = '\0';
        cli_sanitize(c->errtype);
    }
    return 0;
}

static int cli_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *arg)
{
    struct cli *c = arg;

    (void)s;
    if (frame->hd.stream_id != c->sid)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && c->status == 0) {
        if (c->status_cur >= 100 && c->status_cur < 200)
            c->status_cur = 0; /* an interim response: the final one follows */
        else
            c->status = c->status_cur;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        c->response_ended = 1;
        /* A complete answer before the whole request: stop sending. */
        if (!c->request_sent)
            (void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_CANCEL);
    }
    return 0;
}

static int cli_on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                       size_t len, void *arg)
{
    struct cli *c = arg;

    (void)s;
    (void)flags;
    if (sid != c->sid)
        return 0;
    c->bytes_recv += len;
    if (c->status == 200) {
        c->records += cli_count_newlines(data, len);
        if (cli_out_add(c, data, len) == -1)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    } else if (c->err_len < CLI_ERR_BODY_MAX) {
        size_t n = CLI_ERR_BODY_MAX - c->err_len;
        if (n > len)
            n = len;
        memcpy(c->err_body + c->err_len, data, n);
        c->err_len += n;
        /* Enough of an error: the message is in what came. */
        if (c->err_len == CLI_ERR_BODY_MAX)
            (void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_CANCEL);
    }
    return 0;
}

static int cli_on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *arg)
{
    struct cli *c = arg;

    (void)s;
    if (frame->hd.stream_id != c->sid || frame->hd.type != NGHTTP2_DATA)
        return 0;
    c->bytes_sent += frame->hd.length;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        c->request_sent = 1;
        if (c->in_ev)
            event_del(c->in_ev);
    }
    return 0;
}

/* ---- the session ----------------------------------------------------- */

static int cli_session_start(struct cli *c)
{
    const struct cli_opts *o = c->o;
    nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)CLI_WINDOW},
    };
    char ua[64];
    nghttp2_nv nva[12];
    size_t n = 0;
    nghttp2_data_provider prd = {.read_callback = cli_on_body_read};
    int rv;

#define CLI_NV(k, v)                                                                            \
    nva[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v),              \
                            NGHTTP2_NV_FLAG_NONE}
    snprintf(ua, sizeof(ua), "infergate-cli/%s", IG_VERSION);
    CLI_NV(":method", "POST");
    CLI_NV(":scheme", o->tls ? "https" : "http");
    CLI_NV(":authority", o->authority);
    CLI_NV(":path", o->path);
    CLI_NV("content-type", o->content_type);
    CLI_NV("accept", o->accept);
    CLI_NV("user-agent", ua);
    if (o->join)
        CLI_NV("x-infergate-join", o->join);
    if (o->input_filter)
        CLI_NV("x-infergate-input-filter", o->input_filter);
    if (o->output_filter)
        CLI_NV("x-infergate-output-filter", o->output_filter);
    if (o->errors)
        CLI_NV("x-infergate-errors", o->errors);
#undef CLI_NV

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cbs, cli_on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cli_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cli_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cli_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cli_on_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cli_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cli_on_stream_close);
    rv = nghttp2_session_client_new(&c->h2, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return -1;
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CLI_WINDOW) != 0)
        return -1;
    c->sid = nghttp2_submit_request(c->h2, NULL, nva, n, &prd, c);
    if (c->sid < 0)
        return -1;
    c->h2_started = 1;
    c->t0_us = cli_now_us();
    c->last_us = c->t0_us;
    if (c->progress_ev) {
        struct timeval tv = {0, CLI_PROGRESS_US};
        event_add(c->progress_ev, &tv);
    }
    return 0;
}

/* ---- the connection -------------------------------------------------- */

static void cli_on_read(struct bufferevent *bev, void *arg)
{
    struct cli *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (!c->done && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int k = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        for (int i = 0; i < k && i < 8 && !c->done; i++) {
            ssize_t rv = nghttp2_session_mem_recv(c->h2, v[i].iov_base, v[i].iov_len);
            if (rv < 0) {
                cli_fail(c, "HTTP/2 error from the gateway: %s", nghttp2_strerror((int)rv));
                break;
            }
            used += (size_t)rv;
        }
        evbuffer_drain(in, used);
    }
    cli_out_schedule(c);
    cli_after_io(c);
}

static void cli_on_write(struct bufferevent *bev, void *arg)
{
    struct cli *c = arg;

    if (c->finishing) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            event_base_loopbreak(c->base);
        return;
    }
    cli_after_io(c);
}

/* Why the TLS handshake failed, in words. */
static void cli_tls_reason(struct cli *c, char *out, size_t cap, int err)
{
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

    if (vr != X509_V_OK)
        snprintf(out, cap, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    else if (e != 0)
        ERR_error_string_n(e, out, cap);
    else if (err != 0)
        snprintf(out, cap, "%s", strerror(err));
    else
        snprintf(out, cap, "the connection was closed");
}

static void cli_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct cli *c = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        const unsigned char *alpn = NULL;
        unsigned int alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
            cli_fail(c, "%s did not negotiate HTTP/2 over TLS (ALPN h2)", c->o->authority);
            c->conn_dead = 1;
        } else if (cli_session_start(c) != 0) {
            cli_fail(c, "cannot start the HTTP/2 session");
            c->conn_dead = 1;
        }
        cli_after_io(c);
        return;
    }
    (void)bev;
    c->conn_dead = 1;
    if (!c->h2_started) {
        cli_tls_reason(c, why, sizeof(why), err);
        cli_fail(c, "TLS handshake with %s failed: %s", c->o->authority, why);
    } else if (!c->done) {
        /* Keep what came before the close. */
        if (what & BEV_EVENT_EOF)
            cli_fail(c, "the gateway closed the connection after %llu records",
                     (unsigned long long)c->records);
        else
            cli_fail(c, "the connection to %s was lost after %llu records: %s",
                     c->o->authority, (unsigned long long)c->records,
                     err ? strerror(err) : "error");
    }
    c->t_end_us = c->t_end_us ? c->t_end_us : cli_now_us();
    cli_finish(c);
}

/* Resolve and connect, trying each address; the socket, or -1 after cli_fail. */
static int cli_connect(struct cli *c)
{
    char err[256];
    int fd = ig_addr_dial(c->o->host, c->o->port, c->o->authority, CLI_CONNECT_TIMEOUT_MS, NULL,
                          NULL, err, sizeof(err));

    if (fd == -1)
        cli_fail(c, "%s", err);
    return fd;
}

static int cli_tls_setup(struct cli *c)
{
    const struct cli_opts *o = c->o;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, o->host, ip) == 1 || inet_pton(AF_INET6, o->host, ip) == 1;

    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ssl_ctx)
        goto ssl_fail;
    SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_alpn_protos(c->ssl_ctx, (const unsigned char *)"\x02h2", 3) != 0)
        goto ssl_fail;
    if (o->insecure) {
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
        if (o->cacert) {
            if (SSL_CTX_load_verify_locations(c->ssl_ctx, o->cacert, NULL) != 1) {
                char e[256];
                ERR_error_string_n(ERR_get_error(), e, sizeof(e));
                cli_fail(c, "cannot load --cacert %s: %s", o->cacert, e);
                return -1;
            }
        } else if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
            goto ssl_fail;
        }
    }
    c->ssl = SSL_new(c->ssl_ctx);
    if (!c->ssl)
        goto ssl_fail;
    if (!is_ip)
        SSL_set_tlsext_host_name(c->ssl, o->host);
    if (!o->insecure) {
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), o->host) != 1
                  : SSL_set1_host(c->ssl, o->host) != 1)
            goto ssl_fail;
    }
    return 0;
ssl_fail:
    cli_fail(c, "cannot set up TLS: %s", ERR_reason_error_string(ERR_get_error()));
    return -1;
}

/* Connect and create the bufferevent; 0, or -1 after cli_fail. */
static int cli_open_conn(struct cli *c)
{
    int opts = BEV_OPT_CLOSE_ON_FREE;
    int fd;

    if (c->o->tls && cli_tls_setup(c) != 0)
        return -1;
    if ((fd = cli_connect(c)) == -1)
        return -1;
    if (c->o->tls) {
        c->bev = bufferevent_openssl_socket_new(c->base, fd, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                opts);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        else
            SSL_free(c->ssl);
    } else {
        c->bev = bufferevent_socket_new(c->base, fd, opts);
    }
    if (!c->bev) {
        close(fd);
        c->ssl = NULL;
        cli_fail(c, "cannot create the connection's buffers");
        return -1;
    }
    bufferevent_set_max_single_read(c->bev, CLI_SOCK_READ_MAX);
    bufferevent_set_max_single_write(c->bev, CLI_SOCK_READ_MAX);
    bufferevent_setwatermark(c->bev, EV_WRITE, CLI_SOCK_OUT_LOW, 0);
    bufferevent_setcb(c->bev, cli_on_read, cli_on_write, cli_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!c->o->tls) {
        if (cli_session_start(c) != 0) {
            cli_fail(c, "cannot start the HTTP/2 session");
            return -1;
        }
        cli_after_io(c);
    }
    return 0;
}

/* ---- IN and OUT ------------------------------------------------------ */

static int cli_open_files(struct cli *c)
{
    const struct cli_opts *o = c->o;
    struct stat st;

    c->in_fd = STDIN_FILENO;
    c->in_name = o->in_path ? o->in_path : "stdin";
    if (o->in_path && (c->in_fd = open(o->in_path, O_RDONLY | O_CLOEXEC)) == -1) {
        cli_fail(c, "cannot open %s: %s", o->in_path, strerror(errno));
        return -1;
    }
    if (fstat(c->in_fd, &st) == -1) {
        cli_fail(c, "cannot read %s: %s", c->in_name, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        cli_fail(c, "cannot read %s: %s", c->in_name, strerror(EISDIR));
        return -1;
    }
    /* Anything but a regular file or a block device may have nothing yet. */
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        c->in_flags = fcntl(c->in_fd, F_GETFL);
        if (c->in_flags == -1 || fcntl(c->in_fd, F_SETFL, c->in_flags | O_NONBLOCK) == -1) {
            cli_fail(c, "cannot read %s: %s", c->in_name, strerror(errno));
            c->in_flags = -1;
            return -1;
        }
    }
    c->in_ev = event_new(c->base, c->in_fd, EV_READ, cli_on_in_ready, c);
    c->out_fd = STDOUT_FILENO;
    c->out_name = cli_out_label(c);
    if (o->out_path &&
        (c->out_fd = open(o->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) == -1) {
        cli_fail(c, "cannot open %s: %s", o->out_path, strerror(errno));
        return -1;
    }
    return c->in_ev ? 0 : -1;
}

static void cli_clear(struct cli *c)
{
    if (c->h2)
        nghttp2_session_del(c->h2);
    if (c->bev)
        bufferevent_free(c->bev);
    else if (c->ssl)
        SSL_free(c->ssl);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    if (c->in_ev)
        event_free(c->in_ev);
    if (c->progress_ev)
        event_free(c->progress_ev);
    if (c->linger_ev)
        event_free(c->linger_ev);
    if (c->out_ev)
        event_free(c->out_ev);
    for (int i = 0; i < 2; i++)
        if (c->sig_ev[i])
            event_free(c->sig_ev[i]);
    if (c->in_flags != -1)
        (void)fcntl(c->in_fd, F_SETFL, c->in_flags);
    if (c->o->in_path && c->in_fd > STDERR_FILENO)
        close(c->in_fd);
    if (c->o->out_path && c->out_fd > STDERR_FILENO)
        close(c->out_fd);
    if (c->base)
        event_base_free(c->base);
    free(c->in_buf);
    free(c->out_buf);
    free(c->err_body);
}

int cli_transform(const struct cli_opts *o)
{
    struct cli c;

    memset(&c, 0, sizeof(c));
    c.o = o;
    c.in_fd = -1;
    c.out_fd = -1;
    c.in_flags = -1;
    c.in_buf = malloc(CLI_IN_BUF);
    c.out_buf = malloc(CLI_OUT_BUF);
    c.err_body = malloc(CLI_ERR_BODY_MAX);
    c.base = event_base_new();
    if (!c.in_buf || !c.out_buf || !c.err_body || !c.base) {
        fprintf(stderr, "infergate-cli: out of memory\n");
        cli_clear(&c);
        return CLI_EXIT_FAIL;
    }
    c.linger_ev = evtimer_new(c.base, cli_on_linger, &c);
    c.out_ev = evtimer_new(c.base, cli_on_out_timer, &c);
    c.sig_ev[0] = evsignal_new(c.base, SIGINT, cli_on_signal, &c);
    c.sig_ev[1] = evsignal_new(c.base, SIGTERM, cli_on_signal, &c);
    for (int i = 0; i < 2; i++)
        if (c.sig_ev[i])
            event_add(c.sig_ev[i], NULL);
    if (isatty(STDERR_FILENO))
        c.progress_ev = event_new(c.base, -1, EV_PERSIST, cli_on_progress, &c);
    if (c.linger_ev && c.out_ev && cli_open_files(&c) == 0 && cli_open_conn(&c) == 0 && !c.finishing)
        event_base_dispatch(c.base);
    (void)cli_out_flush(&c);
    if (c.t_end_us == 0)
        c.t_end_us = cli_now_us();
    if (!c.ok && !c.failed)
        cli_fail(&c, "the connection ended without an answer");
    if (c.progress_shown)
        fputs("\r\033[K", stderr);
    if (c.failed)
        fprintf(stderr, "infergate-cli: %s\n", c.msg);
    if (c.h2_started)
        cli_print_summary(&c);
    cli_clear(&c);
    return c.ok && !c.failed ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

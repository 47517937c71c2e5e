/*
 * h2-floor.c - the HTTP/2 floor of a one-row request: what nghttp2, libevent
 * and the kernel cost per request with no gateway work at all
 * (load/bench-upstream.sh builds and runs it beside the gateway).
 *
 *   h2-floor [--port N] [--hold-us N] BODY-FILE
 *
 * An h2c server (prior knowledge) on 127.0.0.1 built as the gateway's front
 * is: a libevent bufferevent per connection, an nghttp2 server session fed
 * by nghttp2_session_mem_recv and flushed by nghttp2_session_send into the
 * bufferevent, the gateway's SETTINGS (128 streams, 1 MiB stream window).
 * Every POST, once its request has ended, is answered 200 with the bytes of
 * BODY-FILE and the gateway's response headers (content-type text/csv,
 * x-amzn-invoked-production-variant, content-length, a fresh
 * x-amzn-requestid not indexed), its body read and dropped. Nothing is
 * parsed, routed, batched or forwarded: whatever the gateway spends above
 * this server's CPU per request is its own work.
 *
 * --hold-us N answers the requests that ended in the last N microseconds
 * together, from a timer, as the gateway answers a batch's requests
 * together when its call returns (0, the default: each at once).
 *
 * A GET answers the number of POSTs answered so far, as decimal text.
 * Prints "listening on 127.0.0.1:PORT" once ready; SIGINT or SIGTERM stop
 * it (exit 0). Exit status 1 on a start-up error, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#define FLOOR_STREAMS 128
#define FLOOR_WINDOW (1 << 20)

struct floor_conn;

struct floor_stream {
    struct floor_conn *conn;
    int32_t id;
    int get;               /* a GET: answer the count */
    size_t off;            /* of the body sent */
    const char *body;
    size_t len;
    char count[24];
    char id_text[37];
    int is_held;
    TAILQ_ENTRY(floor_stream) held;
    TAILQ_ENTRY(floor_stream) all; /* the connection's */
};

struct floor_conn {
    struct bufferevent *bev;
    nghttp2_session *h2;
    int dirty; /* has answers to flush */
    TAILQ_ENTRY(floor_conn) dirty_link;
    TAILQ_HEAD(, floor_stream) streams;
};

static struct event_base *base;
static char *body;
static size_t body_len;
static uint64_t answered;
static long hold_us;
static struct event *hold_ev;
static TAILQ_HEAD(, floor_stream) held = TAILQ_HEAD_INITIALIZER(held);
static TAILQ_HEAD(, floor_conn) dirty = TAILQ_HEAD_INITIALIZER(dirty);
static int hold_armed;

static void make_id(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    static uint64_t counter = 0x9e3779b97f4a7c15ull;
    uint64_t w[2];
    size_t o = 0;

    /* splitmix64 twice: a fresh UUID-shaped id per answer, like the gateway's */
    for (int k = 0; k < 2; k++) {
        uint64_t z = (counter += 0x9e3779b97f4a7c15ull);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        w[k] = z ^ (z >> 31);
    }
    for (int i = 0; i < 16; i++) {
        unsigned v = (unsigned)(w[i / 8] >> (56 - 8 * (i % 8))) & 0xff;

        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[v >> 4];
        out[o++] = hex[v & 15];
    }
    out[o] = '\0';
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct floor_conn *c = ud;

    (void)s;
    (void)flags;
    if (bufferevent_write(c->bev, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static ssize_t on_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct floor_stream *st = src->ptr;
    size_t n = st->len - st->off;

    (void)s;
    (void)sid;
    (void)ud;
    if (n > len)
        n = len;
    memcpy(buf, st->body + st->off, n);
    st->off += n;
    if (st->off == st->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, l, f)                                                                      \
    {                                                                                       \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (l), NGHTTP2_NV_FLAG_NONE | (f)      \
    }

static void answer(struct floor_stream *st)
{
    struct floor_conn *c = st->conn;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_read_body};
    char lbuf[24];
    int ll;

    if (st->get) {
        st->len = (size_t)snprintf(st->count, sizeof(st->count), "%" PRIu64, answered);
        st->body = st->count;
    } else {
        st->body = body;
        st->len = body_len;
        answered++;
    }
    ll = snprintf(lbuf, sizeof(lbuf), "%zu", st->len);
    make_id(st->id_text);
    nghttp2_nv nva[] = {
        NV(":status", "200", 3, 0),
        NV("content-type", "text/csv", 8, 0),
        NV("x-amzn-invoked-production-variant", "AllTraffic", 10, 0),
        NV("content-length", lbuf, (size_t)ll, 0),
        NV("x-amzn-requestid", st->id_text, 36, NGHTTP2_NV_FLAG_NO_INDEX),
    };
    nghttp2_submit_response(c->h2, st->id, nva, sizeof(nva) / sizeof(nva[0]), &prd);
    if (!c->dirty) {
        c->dirty = 1;
        TAILQ_INSERT_TAIL(&dirty, c, dirty_link);
    }
}

static void stream_free(struct floor_stream *st)
{
    if (st->is_held)
        TAILQ_REMOVE(&held, st, held);
    TAILQ_REMOVE(&st->conn->streams, st, all);
    free(st);
}

static void conn_free(struct floor_conn *c)
{
    struct floor_stream *st;

    while ((st = TAILQ_FIRST(&c->streams)) != NULL)
        stream_free(st);
    if (c->dirty)
        TAILQ_REMOVE(&dirty, c, dirty_link);
    nghttp2_session_del(c->h2);
    bufferevent_free(c->bev);
    free(c);
}

/* Flush every connection with answers; drop those whose session is over. */
static void flush_dirty(void)
{
    struct floor_conn *c;

    while ((c = TAILQ_FIRST(&dirty)) != NULL) {
        TAILQ_REMOVE(&dirty, c, dirty_link);
        c->dirty = 0;
        if (nghttp2_session_send(c->h2) != 0 ||
            (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)))
            conn_free(c);
    }
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
    struct floor_stream *st;

    (void)fd;
    (void)what;
    (void)arg;
    hold_armed = 0;
    while ((st = TAILQ_FIRST(&held)) != NULL) {
        TAILQ_REMOVE(&held, st, held);
        st->is_held = 0;
        answer(st);
    }
    flush_dirty();
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct floor_stream *st;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->conn = ud;
    st->id = f->hd.stream_id;
    TAILQ_INSERT_TAIL(&st->conn->streams, st, all);
    return nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct floor_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

    (void)flags;
    (void)ud;
    if (st != NULL && nlen == 7 && memcmp(name, ":method", 7) == 0)
        st->get = vlen == 3 && memcmp(value, "GET", 3) == 0;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct floor_stream *st;

    (void)ud;
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (st == NULL)
        return 0;
    if (hold_us > 0 && !st->get) {
        TAILQ_INSERT_TAIL(&held, st, held);
        st->is_held = 1;
        if (!hold_armed) {
            struct timeval tv = {hold_us / 1000000, hold_us % 1000000};

            evtimer_add(hold_ev, &tv);
            hold_armed = 1;
        }
    } else {
        answer(st);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    struct floor_stream *st = nghttp2_session_get_stream_user_data(s, sid);

    (void)code;
    (void)ud;
    if (st != NULL)
        stream_free(st);
    return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct floor_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[16];

    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_peek(in, -1, NULL, v, 16);
        size_t used = 0;

        for (int i = 0; i < n && i < 16; i++) {
            ssize_t r = nghttp2_session_mem_recv(c->h2, v[i].iov_base, v[i].iov_len);

            if (r < 0) {
                conn_free(c);
                return;
            }
            used += (size_t)r;
        }
        evbuffer_drain(in, used);
    }
    if (!c->dirty) {
        c->dirty = 1;
        TAILQ_INSERT_TAIL(&dirty, c, dirty_link);
    }
    flush_dirty();
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    static nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, FLOOR_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, FLOOR_WINDOW},
    };
    struct floor_conn *c = calloc(1, sizeof(*c));
    int one = 1;

    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    if (cbs == NULL) {
        if (nghttp2_session_callbacks_new(&cbs) != 0)
            abort();
        nghttp2_session_callbacks_set_send_callback(cbs, on_send);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    }
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    TAILQ_INIT(&c->streams);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL || nghttp2_session_server_new(&c->h2, cbs, c) != 0 ||
        nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        nghttp2_session_del(c->h2);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->dirty = 1;
    TAILQ_INSERT_TAIL(&dirty, c, dirty_link);
    flush_dirty();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

static int usage(void)
{
    fprintf(stderr, "usage: h2-floor [--port N] [--hold-us N] BODY-FILE\n");
    return 2;
}

static int parse_num(const char *s, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct evconnlistener *lis;
    struct event *sigint, *sigterm;
    const char *path = NULL;
    long port = 0;
    FILE *f;
    long n;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 65535, &port) != 0)
                return usage();
        } else if (strcmp(argv[i], "--hold-us") == 0 && i + 1 < argc) {
            if (parse_num(argv[++i], 10000000, &hold_us) != 0)
                return usage();
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            return usage();
        }
    }
    if (path == NULL)
        return usage();
    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
        fseek(f, 0, SEEK_SET) != 0 || (body = malloc((size_t)n + 1)) == NULL ||
        fread(body, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "h2-floor: cannot read %s (at most 1 MiB)\n", path);
        return 1;
    }
    fclose(f);
    body_len = (size_t)n;
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (base == NULL)
        return 1;
    hold_ev = evtimer_new(base, on_hold, NULL);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    lis = evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                  1024, (struct sockaddr *)&sin, sizeof(sin));
    if (lis == NULL) {
        fprintf(stderr, "h2-floor: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        return 1;
    }
    {
        struct sockaddr_in bound;
        socklen_t bl = sizeof(bound);

        getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&bound, &bl);
        printf("listening on 127.0.0.1:%u\n", ntohs(bound.sin_port));
        fflush(stdout);
    }
    sigint = evsignal_new(base, SIGINT, on_signal, NULL);
    sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    event_base_dispatch(base);
    evconnlistener_free(lis);
    event_free(sigint);
    event_free(sigterm);
    event_free(hold_ev);
    event_base_free(base);
    free(body);
    return 0;
}

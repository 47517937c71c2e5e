/*
 * log.c - JSON-lines logging on stderr.
 *
 * Each line is formatted into a stack buffer by the thread that logs. Once
 * ig_log_start() has run, lines go into a bounded byte ring that a writer
 * thread drains to stderr, so a slow or blocked stderr never stalls the
 * event loop: when the ring is full the line is dropped and counted
 * (memcached's logger). Before start and after stop, lines are written
 * directly, each with one write(2) so that lines never interleave. A line
 * longer than the buffer is cut, never split.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "infergate/common.h"

#define LOG_LINE_MAX 2048
#define LOG_RING_SIZE (256u * 1024)

int ig_log_min_level = IG_LOG_INFO;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;  /* data in the ring, or stopping */
    pthread_cond_t empty; /* the writer has written everything */
    pthread_t thread;
    int running;
    int stopping;
    int writing;          /* the writer holds bytes it has not written yet */
    char ring[LOG_RING_SIZE];
    size_t head;          /* next byte to write out */
    size_t len;           /* bytes in the ring */
    uint64_t dropped;
} log_ring = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .empty = PTHREAD_COND_INITIALIZER,
};

static void log_write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);

        if (w <= 0)
            return; /* nowhere left to report it */
        p += w;
        n -= (size_t)w;
    }
}

static void *log_writer_main(void *arg)
{
    static char chunk[LOG_RING_SIZE];

    (void)arg;
    pthread_mutex_lock(&log_ring.lock);
    for (;;) {
        size_t n, first;

        while (log_ring.len == 0 && !log_ring.stopping)
            pthread_cond_wait(&log_ring.cond, &log_ring.lock);
        if (log_ring.len == 0)
            break;
        n = log_ring.len;
        first = LOG_RING_SIZE - log_ring.head < n ? LOG_RING_SIZE - log_ring.head : n;
        memcpy(chunk, log_ring.ring + log_ring.head, first);
        memcpy(chunk + first, log_ring.ring, n - first);
        log_ring.head = (log_ring.head + n) % LOG_RING_SIZE;
        log_ring.len = 0;
        log_ring.writing = 1;
        pthread_mutex_unlock(&log_ring.lock);
        log_write_all(chunk, n);
        pthread_mutex_lock(&log_ring.lock);
        log_ring.writing = 0;
        pthread_cond_broadcast(&log_ring.empty);
    }
    pthread_mutex_unlock(&log_ring.lock);
    return NULL;
}

int ig_log_start(void)
{
    int rv = 0;

    pthread_mutex_lock(&log_ring.lock);
    if (!log_ring.running) {
        log_ring.stopping = 0;
        if (pthread_create(&log_ring.thread, NULL, log_writer_main, NULL) == 0)
            log_ring.running = 1;
        else
            rv = IG_ERR_IO;
    }
    pthread_mutex_unlock(&log_ring.lock);
    return rv;
}

void ig_log_stop(void)
{
    pthread_mutex_lock(&log_ring.lock);
    if (!log_ring.running) {
        pthread_mutex_unlock(&log_ring.lock);
        return;
    }
    log_ring.stopping = 1;
    pthread_cond_signal(&log_ring.cond);
    pthread_mutex_unlock(&log_ring.lock);
    pthread_join(log_ring.thread, NULL);
    pthread_mutex_lock(&log_ring.lock);
    log_ring.running = 0;
    pthread_mutex_unlock(&log_ring.lock);
}

void ig_log_flush(void)
{
    pthread_mutex_lock(&log_ring.lock);
    while (log_ring.running && (log_ring.len > 0 || log_ring.writing))
        pthread_cond_wait(&log_ring.empty, &log_ring.lock);
    pthread_mutex_unlock(&log_ring.lock);
}

uint64_t ig_log_dropped(void)
{
    uint64_t n;

    pthread_mutex_lock(&log_ring.lock);
    n = log_ring.dropped;
    pthread_mutex_unlock(&log_ring.lock);
    return n;
}

/* Queue one line for the writer, or write it here when there is none. */
static void log_emit(const char *line, size_t n)
{
    pthread_mutex_lock(&log_ring.lock);
    if (!log_ring.running) {
        pthread_mutex_unlock(&log_ring.lock);
        log_write_all(line, n);
        return;
    }
    if (LOG_RING_SIZE - log_ring.len < n) {
        log_ring.dropped++;
    } else {
        size_t tail = (log_ring.head + log_ring.len) % LOG_RING_SIZE;
        size_t first = LOG_RING_SIZE - tail < n ? LOG_RING_SIZE - tail : n;

        memcpy(log_ring.ring + tail, line, first);
        memcpy(log_ring.ring, line + first, n - first);
        log_ring.len += n;
        pthread_cond_signal(&log_ring.cond);
    }
    pthread_mutex_unlock(&log_ring.lock);
}

static const char *const log_names[] = {"debug", "info", "warn", "error"};

int ig_log_level_parse(const char *s)
{
    for (size_t i = 0; i < IG_ARRAY_SIZE(log_names); i++)
        if (strcmp(s, log_names[i]) == 0)
            return (int)i;
    return -1;
}

/* Length of the valid UTF-8 sequence at <s> (1..4), or 0 when the bytes
 * there are not one (overlong forms, surrogates and code points above
 * U+10FFFF included), so that every line is valid JSON for strict parsers. */
static size_t log_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1Fu;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0Fu;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/* Append at most <max> bytes of <s> to <out> as JSON string content,
 * never past <cap> - 1 (room is left for the caller's closing bytes only if
 * it passes a smaller <cap>); returns the new length. An escape or a UTF-8
 * sequence is written whole or not at all. */
static size_t log_escape(char *out, size_t pos, size_t cap, const char *str, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str, *end = s + strnlen(str, max);

    while (s < end && pos + 7 < cap) {
        unsigned char c = *s;
        size_t n = log_utf8_len(s);

        if (n == 0 || s + n > end) {
            memcpy(out + pos, "\\ufffd", 6);
            pos += 6;
            s++;
        } else if (n > 1) {
            memcpy(out + pos, s, n);
            pos += n;
            s += n;
        } else if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
            s++;
        } else if (c < 0x20) {
            memcpy(out + pos, "\\u00", 4);
            out[pos + 4] = hex[c >> 4];
            out[pos + 5] = hex[c & 15];
            pos += 6;
            s++;
        } else {
            out[pos++] = (char)c;
            s++;
        }
    }
    return pos;
}

/* '{"ts":"...","level":"LEVEL",' into <line>; returns its length. */
static size_t log_prefix(char *line, size_t cap, int level)
{
    struct timeval tv;
    struct tm tm;
    size_t n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, cap, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, cap - n, ".%03dZ\",\"level\":\"%s\",",
                          (int)(tv.tv_usec / 1000), log_names[level]);
    return n;
}

void ig_log_write(int level, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 256];
    va_list ap;
    size_t n;

    if (level < IG_LOG_DEBUG || level > IG_LOG_ERROR)
        level = IG_LOG_ERROR;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    n = log_prefix(line, sizeof(line), level);
    memcpy(line + n, "\"msg\":\"", 7);
    n = log_escape(line, n + 7, sizeof(line) - 3, msg, sizeof(msg));
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    log_emit(line, n);
}

/* ---- access log ---------------------------------------------------------- */

#define LOG_ACCESS_STR_MAX 256 /* source bytes of one string field, at most */
#define LOG_ACCESS_STR_OUT 300 /* its bytes once escaped, at most (quotes aside) */

_Static_assert(IG_LOG_ACCESS_MAX >= 128 + 4 * (LOG_ACCESS_STR_OUT + 16) + 12 * 32,
               "IG_LOG_ACCESS_MAX cannot hold the longest access line");

int ig_log_access_on = 0;

/* ,"key":"escaped" or ,"key":null; the value takes at most
 * LOG_ACCESS_STR_OUT + 2 bytes. */
static size_t log_access_str(char *out, size_t pos, const char *key, const char *v)
{
    pos += (size_t)sprintf(out + pos, ",\"%s\":", key);
    if (v == NULL) {
        memcpy(out + pos, "null", 4);
        return pos + 4;
    }
    out[pos++] = '"';
    pos = log_escape(out, pos, pos + LOG_ACCESS_STR_OUT, v, LOG_ACCESS_STR_MAX);
    out[pos++] = '"';
    return pos;
}

static size_t log_access_id(char *out, size_t pos, const char *key, uint64_t id)
{
    if (id == 0)
        return pos + (size_t)sprintf(out + pos, ",\"%s\":null", key);
    return pos + (size_t)sprintf(out + pos, ",\"%s\":%" PRIu64, key, id);
}

size_t ig_log_access_format(char *out, size_t cap, const struct ig_access_rec *rec, int level)
{
    char line[IG_LOG_ACCESS_MAX];
    size_t n;

    /* Built in a buffer whose size the static assertion above checks, so
     * that no field is ever cut by the caller's <cap>. */
    if (level < IG_LOG_DEBUG || level > IG_LOG_ERROR)
        level = IG_LOG_ERROR;
    n = log_prefix(line, sizeof(line), level);
    n += (size_t)sprintf(line + n, "\"msg\":\"access\"");
    n = log_access_str(line, n, "request_id", rec->request_id);
    n = log_access_str(line, n, "endpoint", rec->endpoint);
    n = log_access_str(line, n, "proto", rec->proto);
    n += (size_t)sprintf(line + n, ",\"status\":%d", rec->status);
    n = log_access_str(line, n, "error_type", rec->error_type);
    n += (size_t)sprintf(line + n,
                         ",\"rows\":%" PRIu32 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64,
                         rec->rows, rec->bytes_in, rec->bytes_out);
    n = log_access_id(line, n, "batch_first", rec->batch_first);
    n = log_access_id(line, n, "batch_last", rec->batch_last);
    n += (size_t)sprintf(line + n,
                         ",\"queue_us\":%" PRIu64 ",\"upstream_us\":%" PRIu64
                         ",\"total_us\":%" PRIu64 "}\n",
                         rec->queue_us, rec->upstream_us, rec->total_us);
    if (cap == 0)
        return 0;
    if (n >= cap)
        n = 0; /* a caller's buffer below IG_LOG_ACCESS_MAX: nothing rather than half a line */
    memcpy(out, line, n);
    out[n] = '\0';
    return n;
}

void ig_log_access(const struct ig_access_rec *rec)
{
    char line[IG_LOG_ACCESS_MAX];
    int problem = rec->status >= 400 || rec->error_type != NULL;
    int level = problem ? IG_LOG_WARN : IG_LOG_INFO;

    if (!ig_log_access_on && !(problem && IG_LOG_WARN >= ig_log_min_level))
        return;
    log_emit(line, ig_log_access_format(line, sizeof(line), rec, level));
}

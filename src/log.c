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

/* Append <s> to <out> as JSON string content; returns the new length. */
static size_t log_escape(char *out, size_t pos, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20) {
            out[pos++] = '\\';
            out[pos++] = 'u';
            out[pos++] = '0';
            out[pos++] = '0';
            out[pos++] = hex[c >> 4];
            out[pos++] = hex[c & 15];
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

void ig_log_write(int level, const char *fmt, ...)
{
    char msg[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 256];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;

    if (level < IG_LOG_DEBUG || level > IG_LOG_ERROR)
        level = IG_LOG_ERROR;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ\",\"level\":\"%s\",\"msg\":\"",
                          (int)(tv.tv_usec / 1000), log_names[level]);
    n = log_escape(line, n, sizeof(line) - 3, msg);
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    log_emit(line, n);
}

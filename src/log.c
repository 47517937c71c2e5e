/*
 * log.c - JSON-lines logging on stderr.
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from the loop and the worker threads never interleave. A line
 * longer than the buffer is cut, never split.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "infergate/common.h"

#define LOG_LINE_MAX 2048

int ig_log_min_level = IG_LOG_INFO;

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
    if (write(STDERR_FILENO, line, n) == -1) {
        /* Nowhere left to report it. */
    }
}

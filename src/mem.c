/*
 * mem.c - the two allocation policies, error strings and the clock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infergate/common.h"

static void mem_oom(size_t n)
{
    fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
    abort();
}

void *ig_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        mem_oom(n);
    return p;
}

void *ig_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL)
        mem_oom(nmemb * size);
    return p;
}

void *ig_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        mem_oom(n);
    return q;
}

void ig_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *ig_xstrdup(const char *s)
{
    return ig_xstrndup(s, strlen(s));
}

char *ig_xstrndup(const char *s, size_t n)
{
    char *p = ig_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *ig_try_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *ig_try_realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

void ig_free(void *pp)
{
    void **p = pp;

    free(*p);
    *p = NULL;
}

uint64_t ig_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *ig_strerror(int err)
{
    switch (err) {
    case IG_OK:
        return "success";
    case IG_ERR_NOMEM:
        return "out of memory";
    case IG_ERR_INVALID:
        return "invalid input";
    case IG_ERR_TOOBIG:
        return "too large";
    case IG_ERR_FULL:
        return "queue full";
    case IG_ERR_NOTFOUND:
        return "not found";
    case IG_ERR_IO:
        return "I/O error";
    case IG_ERR_CONFIG:
        return "configuration error";
    case IG_ERR_TIMEOUT:
        return "timed out";
    case IG_ERR_AGAIN:
        return "not ready yet";
    case IG_ERR_CANCELLED:
        return "cancelled";
    case IG_ERR_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown error";
}

/*
 * common.h - error codes, allocation policies, clocks and logging shared by
 * every module. Nothing here owns state except the log level.
 */
#ifndef INFERGATE_COMMON_H
#define INFERGATE_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Results: 0 on success, one of these (negative) on failure. */
enum ig_err {
    IG_OK = 0,
    IG_ERR_NOMEM = -1,       /* allocation failed (peer-sized data) */
    IG_ERR_INVALID = -2,     /* malformed input */
    IG_ERR_TOOBIG = -3,      /* a cap was hit */
    IG_ERR_FULL = -4,        /* a queue is full: try later */
    IG_ERR_NOTFOUND = -5,    /* no such object */
    IG_ERR_IO = -6,          /* a syscall or library failed */
    IG_ERR_CONFIG = -7,      /* bad configuration */
    IG_ERR_TIMEOUT = -8,     /* a deadline passed */
    IG_ERR_UNSUPPORTED = -9, /* unknown content type, algorithm, ... */
};

/* A short static description of an IG_ERR_* code. */
const char *ig_strerror(int err);

/*
 * Two allocation policies (house rule 7): ig_xmalloc and friends abort on
 * OOM and serve fixed internal bookkeeping; ig_try_malloc returns NULL and
 * serves every size a peer controls.
 */
void *ig_xmalloc(size_t n);
void *ig_xcalloc(size_t nmemb, size_t size);
void *ig_xrealloc(void *p, size_t n);
char *ig_xstrdup(const char *s);
char *ig_xstrndup(const char *s, size_t n);
void *ig_try_malloc(size_t n);
void *ig_try_realloc(void *p, size_t n);
/* free(*pp) and set *pp = NULL. */
void ig_free(void *pp);

/* Monotonic clock in microseconds. */
uint64_t ig_now_us(void);

/*
 * Logging: one JSON object per line on stderr,
 *   {"ts":"2026-11-25T19:00:00.123Z","level":"info","msg":"..."}
 * The level test runs before any formatting.
 */
enum ig_log_level {
    IG_LOG_DEBUG = 0,
    IG_LOG_INFO = 1,
    IG_LOG_WARN = 2,
    IG_LOG_ERROR = 3,
};

extern int ig_log_min_level;
/*
 * Hand log output to a writer thread through a bounded ring (256 KiB), so
 * that a blocked stderr never stalls the caller; a line that does not fit
 * is dropped and counted. Before ig_log_start and after ig_log_stop, lines
 * are written synchronously. ig_log_stop writes what is queued and joins.
 * Returns 0 or IG_ERR_IO.
 */
int ig_log_start(void);
void ig_log_stop(void);
/* Wait until every queued line has been written. */
void ig_log_flush(void);
/* Lines dropped because the ring was full. */
uint64_t ig_log_dropped(void);
void ig_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse "debug" | "info" | "warn" | "error"; -1 when unknown. */
int ig_log_level_parse(const char *s);

#define ig_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= ig_log_min_level)                                                           \
            ig_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

#define IG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* INFERGATE_COMMON_H */

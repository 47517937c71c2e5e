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
    IG_ERR_AGAIN = -10,      /* not ready yet: a callback says when */
    IG_ERR_CANCELLED = -11,  /* the caller gave the work up */
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
/* printf into err[errlen] when there is room for a message (err may be
 * NULL, errlen 0: nothing is written). */
void ig_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
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

/*
 * Access log: one JSON line per finished client request, through the same
 * ring as every other line (a slow stderr drops it and counts it, never
 * blocks the caller). Call ig_log_access() once per request, when its
 * response is handed to the HTTP layer, or when the request ends without
 * one (client gone: status 0 and error_type NULL, or as the caller sees
 * fit). Any thread may call it.
 *
 * Which lines are written:
 *   - status >= 400 or error_type set (errors, ThrottlingException,
 *     deadline expiries...): level "warn", written when warn passes
 *     log_level, whatever access_log says;
 *   - otherwise level "info", written only when access_log is on
 *     (ig_log_access_on), whatever log_level says: asking for an access
 *     log is asking for these lines.
 *
 * The line, on one line, keys always present and in this order:
 *   {"ts":"2026-11-30T14:00:00.123Z","level":"info","msg":"access",
 *    "request_id":"6f1c...","endpoint":"demo","proto":"HTTP/2","status":200,
 *    "error_type":null,"rows":3,"bytes_in":45,"bytes_out":37,
 *    "batch_first":12,"batch_last":13,"queue_us":800,"upstream_us":1200,
 *    "total_us":2500}
 * A NULL string is written as null; batch_first/batch_last 0 (no batch) as
 * null. Strings are JSON-escaped (quotes, backslashes, control characters
 * as \u00XX; bytes that are not valid UTF-8 as \ufffd) and cut at 256
 * bytes, so a client-chosen endpoint name cannot break or bloat the line.
 */
struct ig_access_rec {
    const char *request_id; /* the id sent as x-amzn-RequestId; NULL: none */
    const char *endpoint;   /* the endpoint named by the path (even unknown); NULL: none */
    const char *proto;      /* "HTTP/1.1", "HTTP/2" */
    const char *error_type; /* x-amzn-ErrorType of the answer; NULL on success */
    int status;             /* HTTP status sent; 0 when none was (client gone) */
    uint32_t rows;          /* rows decoded from the request */
    uint64_t bytes_in;      /* request body bytes */
    uint64_t bytes_out;     /* response body bytes */
    uint64_t batch_first;   /* id of the first batch that held its rows; 0: none */
    uint64_t batch_last;    /* id of the last one; 0: none */
    uint64_t queue_us;      /* from enqueue until its last row left in a batch */
    uint64_t upstream_us;   /* from its first batch's flush until its last batch's answer */
    uint64_t total_us;      /* from the first byte of the request to the response */
};

/* access_log = on|off (default off); set by main() from the configuration. */
extern int ig_log_access_on;
void ig_log_access(const struct ig_access_rec *rec);
/* Format the line ig_log_access() would write (newline included) into
 * <out> of <cap> bytes (at least IG_LOG_ACCESS_MAX); returns its length. */
#define IG_LOG_ACCESS_MAX 2048
size_t ig_log_access_format(char *out, size_t cap, const struct ig_access_rec *rec, int level);

#define ig_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= ig_log_min_level)                                                           \
            ig_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

/* An intrusive doubly linked list with a head pointer: <e> has prev and
 * next fields. Push at the head, unlink anywhere, both O(1). */
#define IG_DLIST_PUSH(head, e)                                                                     \
    do {                                                                                           \
        (e)->prev = NULL;                                                                          \
        (e)->next = (head);                                                                        \
        if ((head) != NULL)                                                                        \
            (head)->prev = (e);                                                                    \
        (head) = (e);                                                                              \
    } while (0)
#define IG_DLIST_UNLINK(head, e)                                                                   \
    do {                                                                                           \
        if ((e)->prev != NULL)                                                                     \
            (e)->prev->next = (e)->next;                                                           \
        else                                                                                       \
            (head) = (e)->next;                                                                    \
        if ((e)->next != NULL)                                                                     \
            (e)->next->prev = (e)->prev;                                                           \
    } while (0)

#define IG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* INFERGATE_COMMON_H */

/*
 * aws_creds.c - the AWS credentials chain: environment, shared files, STS
 * web identity, container endpoint; temporary credentials refreshed ahead
 * of their expiry on the caller's loop.
 *
 * One provider holds one set of credentials and at most one fetch. The
 * fetch runs on an ig_curl_loop; its answer replaces the set only from the
 * loop, so a pointer get() handed out stays good until the caller returns
 * to the loop. A timer starts the next fetch: the refresh ahead of expiry,
 * or the retry after a failure.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "infergate/aws_creds.h"
#include "infergate/common.h"
#include "infergate/curl_loop.h"

#define CREDS_TIMEOUT_MS_DEFAULT 5000u
#define CREDS_REFRESH_AHEAD_MS 300000 /* at most 5 minutes before expiry */
#define CREDS_BACKOFF_MIN_MS 1000u
#define CREDS_REFRESH_MIN_MS 1000 /* a source handing out short lives is asked once a second */
#define CREDS_BACKOFF_MAX_MS 30000u
#define CREDS_ECS_HOST "http://169.254.170.2"
#define CREDS_MSG_MAX 300 /* a server's error message, as quoted in ours */

enum creds_kind {
    CREDS_ENV = 0,
    CREDS_PROFILE = 1,
    CREDS_WEB_IDENTITY = 2,
    CREDS_CONTAINER = 3,
};

struct creds_set {
    char *ak, *sk, *tok;
    time_t exp; /* 0: never */
};

struct ig_aws_creds_provider {
    struct event_base *base;
    enum creds_kind kind;
    char source[128];
    ig_aws_creds_ready_cb *ready;
    void *arg;

    struct creds_set cur;
    int have;
    struct ig_aws_creds view; /* points into cur */

    /* fetched sources */
    struct ig_curl_loop *curl, *own_curl;
    CURL *easy;
    struct curl_slist *hdrs;
    char *post;
    char *url;
    char url_shown[300]; /* scheme://host[:port]: a path or query may be a capability */
    char *role_arn, *session_name, *token_file; /* web identity */
    char *auth_token_env, *auth_token_file;     /* container */
    unsigned timeout_ms;
    char *body; /* IG_AWS_CREDS_MAX_ANSWER + 1 bytes */
    size_t body_len;
    int body_toobig;
    int fetching;
    int kicked;  /* get() set the refresh timer to fire at once (a wall-clock jump) */
    int waiters; /* get() said IG_ERR_AGAIN for a refresh: ready() when it ends */
    int first_done;
    int *freed; /* inside ready(): set when ready() frees the provider */
    unsigned fetches;
    struct event *timer;
    int64_t refresh_at_ms; /* wall clock: the planned refresh is due (0: none planned) */
    unsigned backoff_ms;
    int last_rc;
    char last_err[1024];
};

/* ---------------------------------------------------------------- helpers */

static int creds_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int creds_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* getenv, with an empty value meaning unset (as the SDKs read it). */
static const char *creds_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int64_t creds_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void creds_time_fmt(time_t t, char *out, size_t cap)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Wipe a secret before it goes back to the allocator. */
static void creds_str_wipe(char **s)
{
    if (*s != NULL)
        explicit_bzero(*s, strlen(*s));
    ig_free(s);
}

/* Free a header list after wiping it: it may carry the Authorization token. */
static void creds_hdrs_free(struct curl_slist **h)
{
    for (struct curl_slist *e = *h; e != NULL; e = e->next)
        explicit_bzero(e->data, strlen(e->data));
    curl_slist_free_all(*h);
    *h = NULL;
}

static void creds_set_clear(struct creds_set *c)
{
    creds_str_wipe(&c->ak);
    creds_str_wipe(&c->sk);
    creds_str_wipe(&c->tok);
    c->exp = 0;
}

/*
 * Read a small file whole (NUL-terminated). IG_ERR_NOTFOUND when it does
 * not exist, IG_ERR_TOOBIG past <cap>, IG_ERR_IO otherwise; <err> says so.
 */
static int creds_read_file(const char *path, size_t cap, char **out, size_t *outlen, char *err,
                           size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    ssize_t n;
    int rc = 0;
    struct stat st;
    /* O_NONBLOCK: a FIFO (or a tty) in the path must not hold the loop in
     * open() or read(); only a regular file is read (where the flag does
     * nothing) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd == -1)
        return creds_fail(err, errlen, errno == ENOENT ? IG_ERR_NOTFOUND : IG_ERR_IO, "%s: %s",
                          path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return creds_fail(err, errlen, IG_ERR_IO, "%s: not a regular file", path);
    }
    buf = ig_try_malloc(cap + 1);
    if (buf == NULL) {
        rc = creds_fail(err, errlen, IG_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    /* read one byte past the cap to tell "exactly cap" from "more" */
    while ((n = read(fd, buf + len, cap + 1 - len)) != 0) {
        if (n == -1) {
            if (errno == EINTR)
                continue;
            rc = creds_fail(err, errlen, IG_ERR_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        len += (size_t)n;
        if (len > cap) {
            rc = creds_fail(err, errlen, IG_ERR_TOOBIG, "%s: larger than %zu bytes", path, cap);
            goto out;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
out:
    if (buf != NULL)
        explicit_bzero(buf, len);
    free(buf);
    close(fd);
    return rc;
}

/* A credential must go into an HTTP header and a signature: visible ASCII only. */
static int creds_value_ok(const char *s, size_t len, size_t cap)
{
    if (len == 0 || len > cap)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return 1;
}

/* Copy a server's message into ours: control bytes become spaces, cut at CREDS_MSG_MAX. */
static void creds_msg_clean(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (; *in != '\0' && n + 1 < cap && n < CREDS_MSG_MAX; in++)
        out[n++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? ' ' : *in;
    out[n] = '\0';
}

/*
 * ISO 8601 as STS and the container endpoints write it:
 * YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|+HHMM|+HH), '-' as well as '+' (every
 * offset botocore reads). 0 or IG_ERR_INVALID.
 */
static int creds_iso8601(const char *s, time_t *out)
{
    struct tm tm;
    int n = 0, off = 0;
    const char *p;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return IG_ERR_INVALID;
    p = s + n;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        const char *d = p + 1;
        int hh, mm = 0, k;

        /* the two hour digits first: d[2] is past the string's NUL when
         * the offset stops short ("+", "+1") */
        if (!isdigit((unsigned char)d[0]) || !isdigit((unsigned char)d[1]))
            return IG_ERR_INVALID;
        k = d[2] == ':' ? 3 : 2;
        hh = (d[0] - '0') * 10 + (d[1] - '0');
        if (k == 3 || isdigit((unsigned char)d[2])) { /* minutes: ":MM" or "MM" */
            if (!isdigit((unsigned char)d[k]) || !isdigit((unsigned char)d[k + 1]))
                return IG_ERR_INVALID;
            mm = (d[k] - '0') * 10 + (d[k + 1] - '0');
            d += k + 2;
        } else {
            d += 2;
        }
        if (hh > 23 || mm > 59)
            return IG_ERR_INVALID;
        off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
        p = d;
    } else {
        return IG_ERR_INVALID;
    }
    if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return IG_ERR_INVALID;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    if (t == (time_t)-1)
        return IG_ERR_INVALID;
    *out = t - off;
    return 0;
}

/* ---------------------------------------------------------- shared files */

struct creds_profile {
    char *ak, *sk, *tok;
    char *ltok; /* aws_security_token: the legacy name, read when aws_session_token is not */
    int found;  /* the section exists */
};

static void creds_profile_clear(struct creds_profile *pr)
{
    creds_str_wipe(&pr->ak);
    creds_str_wipe(&pr->sk);
    creds_str_wipe(&pr->tok);
    creds_str_wipe(&pr->ltok);
    pr->found = 0;
}

static char *creds_trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return s;
}

/* Does section header <name> (trimmed) name <profile>? The config file
 * writes "[profile NAME]" except for "[default]"; the credentials file
 * writes "[NAME]". */
static int creds_section_is(const char *name, const char *profile, int config)
{
    if (!config)
        return strcmp(name, profile) == 0;
    if (strcmp(profile, "default") == 0 && strcmp(name, "default") == 0)
        return 1;
    if (strncmp(name, "profile", 7) != 0 || !isspace((unsigned char)name[7]))
        return 0;
    name += 7;
    while (isspace((unsigned char)*name))
        name++;
    return strcmp(name, profile) == 0;
}

/*
 * Scan INI text (modified in place) for <profile>'s keys, as the AWS CLI
 * reads these files: '#' and ';' start comment lines, '=' or ':' splits
 * key and value, spaces around both are dropped, key names are compared
 * without case. By hand rather than libinih: its line length cap would cut
 * a session token.
 */
static void creds_ini_scan(char *text, const char *profile, int config, struct creds_profile *pr)
{
    int in = 0;
    char *line = text;

    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        char *end = nl != NULL ? nl : line + strlen(line);
        char *s = creds_trim(line, end);
        char *next = nl != NULL ? nl + 1 : NULL;
        char *eq, **slot = NULL;

        line = next;
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strrchr(s, ']');

            in = close != NULL && creds_section_is(creds_trim(s + 1, close), profile, config);
            pr->found |= in;
            continue;
        }
        if (!in)
            continue;
        eq = strpbrk(s, "=:");
        if (eq == NULL)
            continue;
        s = creds_trim(s, eq);
        for (char *k = s; *k != '\0'; k++)
            *k = (char)tolower((unsigned char)*k);
        if (strcmp(s, "aws_access_key_id") == 0)
            slot = &pr->ak;
        else if (strcmp(s, "aws_secret_access_key") == 0)
            slot = &pr->sk;
        else if (strcmp(s, "aws_session_token") == 0)
            slot = &pr->tok;
        else if (strcmp(s, "aws_security_token") == 0)
            slot = &pr->ltok;
        if (slot == NULL)
            continue;
        creds_str_wipe(slot);
        s = creds_trim(eq + 1, eq + 1 + strlen(eq + 1));
        if (*s != '\0')
            *slot = ig_xstrdup(s);
    }
}

/* "~/x" as the CLI expands it; <buf> of <cap>. */
static const char *creds_path(const char *env, const char *def, char *buf, size_t cap)
{
    const char *v = creds_env(env), *home = getenv("HOME");

    if (v == NULL)
        v = def;
    if (strncmp(v, "~/", 2) == 0) {
        if (home == NULL || home[0] == '\0')
            return NULL;
        snprintf(buf, cap, "%s/%s", home, v + 2);
        return buf;
    }
    return v;
}

/* One file's profile: 0 (absent, or read), or an error when it cannot be read. */
static int creds_profile_file(const char *path, const char *profile, int config,
                              struct creds_profile *pr, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len;
    int rc;

    if (path == NULL)
        return 0;
    rc = creds_read_file(path, IG_AWS_CREDS_MAX_FILE, &text, &len, err, errlen);
    if (rc == IG_ERR_NOTFOUND)
        return 0;
    if (rc != 0)
        return IG_ERR_CONFIG;
    creds_ini_scan(text, profile, config, pr);
    explicit_bzero(text, len);
    free(text);
    return 0;
}

/* ------------------------------------------------------------ the fetch */

/* What errors and logs show of <url>: scheme, host and port. An ECS
 * relative URI's path is a capability to the task's credentials. */
static void creds_url_show(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;

    snprintf(out, cap, "(a URL libcurl cannot parse)");
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, 0); /* none when the URL names none */
        snprintf(out, cap, "%s://%s%s%s", scheme, host, port != NULL ? ":" : "",
                 port != NULL ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

static void creds_schedule(struct ig_aws_creds_provider *p, int64_t delay_ms)
{
    struct timeval tv;

    if (delay_ms < 0)
        delay_ms = 0;
    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
    evtimer_add(p->timer, &tv);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct ig_aws_creds_provider *p = arg;
    size_t n = size * nmemb;

    if (n > IG_AWS_CREDS_MAX_ANSWER - p->body_len) {
        p->body_toobig = 1;
        return 0; /* libcurl ends the transfer: CURLE_WRITE_ERROR */
    }
    memcpy(p->body + p->body_len, data, n);
    p->body_len += n;
    return n;
}

/* Append <s> percent-encoded (RFC 3986 unreserved kept) to <out> at *n. */
static void creds_form_enc(char *out, size_t *n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out[(*n)++] = (char)c;
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[c >> 4];
            out[(*n)++] = hex[c & 15];
        }
    }
    out[*n] = '\0';
}

/* Read a token file: its bytes, trailing white space dropped; refused
 * empty, past the cap, or holding a byte a header cannot carry. */
static int creds_token_file(const char *path, const char *what, int allow_nl, char **out, char *err,
                            size_t errlen)
{
    char *tok = NULL, why[256];
    size_t len;
    int rc = creds_read_file(path, IG_AWS_CREDS_MAX_TOKEN, &tok, &len, why, sizeof(why));

    if (rc != 0) /* why names the path and the cause */
        return creds_fail(err, errlen, rc == IG_ERR_NOMEM ? rc : IG_ERR_CONFIG, "%s: %s", what,
                          why);
    if (allow_nl)
        while (len > 0 && isspace((unsigned char)tok[len - 1]))
            tok[--len] = '\0';
    if (len == 0) {
        free(tok);
        return creds_fail(err, errlen, IG_ERR_CONFIG, "%s: %s is empty", what, path);
    }
    if (!allow_nl && strpbrk(tok, "\r\n") != NULL) {
        creds_str_wipe(&tok);
        return creds_fail(err, errlen, IG_ERR_CONFIG,
                          "%s: the token in %s holds a CR or LF (not a legal header value)", what,
                          path);
    }
    *out = tok;
    return 0;
}

static int creds_web_identity_setup(struct ig_aws_creds_provider *p, char *err, size_t errlen)
{
    char *tok = NULL;
    size_t cap, n = 0;
    int rc = creds_token_file(p->token_file, "AWS_WEB_IDENTITY_TOKEN_FILE", 1, &tok, err, errlen);

    if (rc != 0)
        return rc;
    cap = 128 + 3 * (strlen(p->role_arn) + strlen(p->session_name) + strlen(tok));
    creds_str_wipe(&p->post);
    p->post = ig_xmalloc(cap);
    n = (size_t)snprintf(p->post, cap,
                         "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=");
    creds_form_enc(p->post, &n, p->role_arn);
    n += (size_t)snprintf(p->post + n, cap - n, "&RoleSessionName=");
    creds_form_enc(p->post, &n, p->session_name);
    n += (size_t)snprintf(p->post + n, cap - n, "&WebIdentityToken=");
    creds_form_enc(p->post, &n, tok);
    creds_str_wipe(&tok);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, p->post);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    p->hdrs = curl_slist_append(p->hdrs, "Content-Type: application/x-www-form-urlencoded");
    /* a token makes the body pass 1 KiB: no 100-continue round trip */
    p->hdrs = curl_slist_append(p->hdrs, "Expect:");
    return 0;
}

static int creds_container_setup(struct ig_aws_creds_provider *p, char *err, size_t errlen)
{
    char *tok = NULL, *hdr;
    size_t cap;
    int rc;

    if (p->auth_token_file != NULL) {
        rc = creds_token_file(p->auth_token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", 0, &tok,
                              err, errlen);
        if (rc != 0)
            return rc;
    } else if (p->auth_token_env != NULL) {
        tok = ig_xstrdup(p->auth_token_env);
    }
    p->hdrs = curl_slist_append(p->hdrs, "Accept: application/json");
    /* a local agent: never through an http_proxy of the environment, which
     * would see the token and the credentials */
    curl_easy_setopt(p->easy, CURLOPT_NOPROXY, "*");
    if (tok == NULL)
        return 0;
    cap = strlen(tok) + sizeof("Authorization: ");
    hdr = ig_xmalloc(cap);
    snprintf(hdr, cap, "Authorization: %s", tok);
    p->hdrs = curl_slist_append(p->hdrs, hdr);
    creds_str_wipe(&hdr);
    creds_str_wipe(&tok);
    return 0;
}

static void on_fetch_done(CURL *easy, CURLcode rc, void *arg);

/*
 * Start a fetch. 0, or an error (token file, libcurl) with p->last_err
 * and p->last_rc set; the caller decides when to try again.
 */
static int creds_fetch_start(struct ig_aws_creds_provider *p)
{
    char err[sizeof(p->last_err)];
    int rc;

    if (p->easy == NULL)
        p->easy = curl_easy_init();
    else
        curl_easy_reset(p->easy);
    creds_hdrs_free(&p->hdrs);
    creds_str_wipe(&p->post);
    if (p->easy == NULL) {
        rc = creds_fail(err, sizeof(err), IG_ERR_IO, "libcurl: cannot create a handle");
        goto fail;
    }
    rc = p->kind == CREDS_WEB_IDENTITY ? creds_web_identity_setup(p, err, sizeof(err))
                                       : creds_container_setup(p, err, sizeof(err));
    if (rc != 0)
        goto fail;
    curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
    curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->hdrs);
    curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "infergate");
    /* a declared length past the cap fails before the body is read */
    curl_easy_setopt(p->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)IG_AWS_CREDS_MAX_ANSWER);
    curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
    p->body_len = 0;
    p->body_toobig = 0;
    if (ig_curl_loop_add(p->curl, p->easy, on_fetch_done, p) != 0) {
        rc = creds_fail(err, sizeof(err), IG_ERR_IO, "libcurl: cannot start the transfer");
        goto fail;
    }
    p->fetching = 1;
    return 0;
fail:
    p->last_rc = rc;
    snprintf(p->last_err, sizeof(p->last_err), "%s", err);
    return rc;
}

/* The text of the first <tag>...</tag> in <doc>, XML entities decoded,
 * cut at <cap> bytes (then NULL: too long). */
static char *creds_xml_text(const char *doc, const char *tag, size_t cap, int *toolong)
{
    char open[64], close[64];
    const char *a, *b;
    char *out;
    size_t n = 0;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    a = strstr(doc, open);
    if (a == NULL)
        return NULL;
    a += strlen(open);
    b = strstr(a, close);
    if (b == NULL)
        return NULL;
    out = ig_xmalloc((size_t)(b - a) + 1);
    while (a < b) {
        static const struct {
            const char *ent;
            char c;
        } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        size_t i;

        if (*a == '&') {
            for (i = 0; i < IG_ARRAY_SIZE(ents); i++)
                if (strncmp(a, ents[i].ent, strlen(ents[i].ent)) == 0)
                    break;
            if (i < IG_ARRAY_SIZE(ents)) {
                out[n++] = ents[i].c;
                a += strlen(ents[i].ent);
                continue;
            }
        }
        out[n++] = *a++;
    }
    out[n] = '\0';
    if (n > cap) {
        *toolong = 1;
        creds_str_wipe(&out);
    }
    return out;
}

/* Check and take one fetched set; <what> names the answer's fields. */
static int creds_take(struct creds_set *c, char *ak, char *sk, char *tok, const char *exp,
                      char *err, size_t errlen)
{
    time_t t = 0;

    if (ak == NULL || !creds_value_ok(ak, strlen(ak), IG_AWS_CREDS_MAX_KEY_ID))
        return creds_fail(err, errlen, IG_ERR_INVALID,
                          "AccessKeyId missing, empty, too long or "
                          "not printable ASCII");
    if (sk == NULL || !creds_value_ok(sk, strlen(sk), IG_AWS_CREDS_MAX_SECRET))
        return creds_fail(err, errlen, IG_ERR_INVALID,
                          "SecretAccessKey missing, empty, too long "
                          "or not printable ASCII");
    if (tok != NULL && !creds_value_ok(tok, strlen(tok), IG_AWS_CREDS_MAX_TOKEN))
        return creds_fail(err, errlen, IG_ERR_INVALID,
                          "session token empty, too long or not "
                          "printable ASCII");
    if (exp == NULL || creds_iso8601(exp, &t) != 0)
        return creds_fail(err, errlen, IG_ERR_INVALID, "Expiration missing or not ISO 8601");
    if ((int64_t)t * 1000 <= creds_wall_ms()) {
        char when[32];

        creds_time_fmt(t, when, sizeof(when));
        return creds_fail(err, errlen, IG_ERR_INVALID, "credentials already expired at %s", when);
    }
    c->ak = ig_xstrdup(ak);
    c->sk = ig_xstrdup(sk);
    c->tok = tok != NULL ? ig_xstrdup(tok) : NULL;
    c->exp = t;
    return 0;
}

/* STS's XML answer: the credentials, or <Error><Code>/<Message>. */
static int creds_parse_sts(struct ig_aws_creds_provider *p, long status, struct creds_set *c,
                           char *err, size_t errlen)
{
    const char *doc = p->body;
    char *f[4] = {NULL, NULL, NULL, NULL};
    static const char *const tags[4] = {"AccessKeyId", "SecretAccessKey", "SessionToken",
                                        "Expiration"};
    static const size_t caps[4] = {IG_AWS_CREDS_MAX_KEY_ID, IG_AWS_CREDS_MAX_SECRET,
                                   IG_AWS_CREDS_MAX_TOKEN, 64};
    int toolong = 0, rc;

    if (status != 200) {
        char *code = creds_xml_text(doc, "Code", 128, &toolong);
        char *msg = creds_xml_text(doc, "Message", IG_AWS_CREDS_MAX_ANSWER, &toolong);
        char cm[CREDS_MSG_MAX + 1], cc[129];

        creds_msg_clean(code != NULL ? code : "", cc, sizeof(cc));
        creds_msg_clean(msg != NULL ? msg : "", cm, sizeof(cm));
        if (code == NULL)
            rc = creds_fail(err, errlen, IG_ERR_IO, "HTTP %ld with no <Error><Code> in the answer",
                            status);
        else
            rc = creds_fail(err, errlen, IG_ERR_IO, "HTTP %ld %s: %s", status, cc, cm);
        free(code);
        free(msg);
        return rc;
    }
    for (int i = 0; i < 4; i++)
        f[i] = creds_xml_text(doc, tags[i], caps[i], &toolong);
    rc = creds_take(c, f[0], f[1], f[2], f[3], err, errlen);
    if (rc == 0 && c->tok == NULL) {
        creds_set_clear(c);
        rc = creds_fail(err, errlen, IG_ERR_INVALID, "SessionToken missing");
    }
    for (int i = 0; i < 4; i++)
        creds_str_wipe(&f[i]);
    return rc;
}

static char *creds_json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? ig_xstrdup(s) : NULL;
}

/* The container endpoint's JSON: {AccessKeyId, SecretAccessKey, Token, Expiration}. */
static int creds_parse_container(struct ig_aws_creds_provider *p, long status, struct creds_set *c,
                                 char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_loadb(p->body, p->body_len, 0, &jerr);
    char *f[4] = {NULL, NULL, NULL, NULL};
    static const char *const keys[4] = {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"};
    int rc;

    if (status != 200) {
        char cc[129], cm[CREDS_MSG_MAX + 1];
        const char *code = json_string_value(json_object_get(o, "code"));
        const char *msg = json_string_value(json_object_get(o, "message"));

        creds_msg_clean(code != NULL ? code : "", cc, sizeof(cc));
        creds_msg_clean(msg != NULL ? msg : "", cm, sizeof(cm));
        rc = creds_fail(err, errlen, IG_ERR_IO, "HTTP %ld%s%s%s%s", status, cc[0] ? " " : "", cc,
                        cm[0] ? ": " : "", cm);
        json_decref(o);
        return rc;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        return creds_fail(err, errlen, IG_ERR_INVALID, "the answer is not a JSON object");
    }
    for (int i = 0; i < 4; i++)
        f[i] = creds_json_str(o, keys[i]);
    rc = creds_take(c, f[0], f[1], f[2], f[3], err, errlen);
    for (int i = 0; i < 4; i++)
        creds_str_wipe(&f[i]);
    json_decref(o);
    return rc;
}

static const char *creds_fetch_name(const struct ig_aws_creds_provider *p)
{
    return p->kind == CREDS_WEB_IDENTITY ? "STS AssumeRoleWithWebIdentity"
                                         : "container credentials";
}

/* The next fetch after a failure: 1 s doubling to 30 s. */
static void creds_retry_later(struct ig_aws_creds_provider *p)
{
    creds_schedule(p, p->backoff_ms);
    p->backoff_ms =
        p->backoff_ms * 2 > CREDS_BACKOFF_MAX_MS ? CREDS_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* Fresh credentials: refresh when the lifetime left falls below
 * min(300 s, half the lifetime they came with), but not within a second:
 * an STS or credentials endpoint that hands out lives of a few
 * milliseconds is not asked again at once, over and over. */
static void creds_install(struct ig_aws_creds_provider *p, struct creds_set *c)
{
    int64_t now = creds_wall_ms(), exp_ms = (int64_t)c->exp * 1000;
    int64_t ahead = (exp_ms - now) / 2;
    char when[32];

    if (ahead > CREDS_REFRESH_AHEAD_MS)
        ahead = CREDS_REFRESH_AHEAD_MS;
    if (exp_ms - ahead - now < CREDS_REFRESH_MIN_MS)
        ahead = exp_ms - now - CREDS_REFRESH_MIN_MS;
    creds_set_clear(&p->cur);
    p->cur = *c;
    p->have = 1;
    p->view.access_key = p->cur.ak;
    p->view.secret_key = p->cur.sk;
    p->view.session_token = p->cur.tok;
    p->view.expiration = p->cur.exp;
    p->last_rc = 0;
    p->last_err[0] = '\0';
    p->backoff_ms = CREDS_BACKOFF_MIN_MS;
    creds_time_fmt(c->exp, when, sizeof(when));
    ig_log(IG_LOG_INFO, "aws credentials from %s: new set, expires at %s", p->source, when);
    /* the timer runs on the monotonic clock, the expiry on the wall clock:
     * get() starts the refresh early when the wall clock got there first
     * (a suspended VM resumed, the clock stepped forward) */
    p->refresh_at_ms = exp_ms - ahead;
    creds_schedule(p, exp_ms - ahead - now);
}

/* ready(): after the first fetch, and after a refresh that get() told
 * callers to wait for. */
static void creds_notify(struct ig_aws_creds_provider *p)
{
    int freed = 0;

    p->waiters = 0;
    if (p->ready == NULL)
        return;
    p->freed = &freed;
    p->ready(p->arg); /* it may free p */
    if (!freed)
        p->freed = NULL;
}

static void on_fetch_done(CURL *easy, CURLcode crc, void *arg)
{
    struct ig_aws_creds_provider *p = arg;
    struct creds_set c = {NULL, NULL, NULL, 0};
    char err[512];
    long status = 0;
    int rc, first = !p->first_done;

    p->fetching = 0;
    p->fetches++;
    p->body[p->body_len] = '\0';
    if (crc == CURLE_OPERATION_TIMEDOUT) {
        rc = creds_fail(err, sizeof(err), IG_ERR_TIMEOUT, "no answer within %u ms", p->timeout_ms);
    } else if (p->body_toobig || crc == CURLE_FILESIZE_EXCEEDED) {
        rc = creds_fail(err, sizeof(err), IG_ERR_TOOBIG, "answer larger than %d bytes",
                        IG_AWS_CREDS_MAX_ANSWER);
    } else if (crc != CURLE_OK) {
        rc = creds_fail(err, sizeof(err), IG_ERR_IO, "%s", curl_easy_strerror(crc));
    } else {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        rc = p->kind == CREDS_WEB_IDENTITY ? creds_parse_sts(p, status, &c, err, sizeof(err))
                                           : creds_parse_container(p, status, &c, err, sizeof(err));
    }
    explicit_bzero(p->body, p->body_len);
    p->body_len = 0;
    creds_str_wipe(&p->post);
    creds_hdrs_free(&p->hdrs); /* out of the multi: libcurl is done with them */
    if (rc == 0) {
        creds_install(p, &c);
    } else {
        p->last_rc = rc;
        snprintf(p->last_err, sizeof(p->last_err), "%s from %s: %s", creds_fetch_name(p),
                 p->url_shown, err);
        ig_log(IG_LOG_WARN, "aws credentials from %s: %s (next try in %u ms)", p->source,
               p->last_err, p->backoff_ms);
        creds_retry_later(p);
    }
    p->first_done = 1;
    if (first || p->waiters)
        creds_notify(p);
}

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ig_aws_creds_provider *p = arg;

    (void)fd;
    (void)what;
    p->kicked = 0;
    if (p->fetching)
        return;
    if (creds_fetch_start(p) != 0) {
        ig_log(IG_LOG_WARN, "aws credentials from %s: %s (next try in %u ms)", p->source,
               p->last_err, p->backoff_ms);
        creds_retry_later(p);
        if (p->waiters)
            creds_notify(p);
    }
}

/* ------------------------------------------------------------ the chain */

static int creds_static(struct ig_aws_creds_provider *p, const char *ak, const char *sk,
                        const char *tok, const char *where, char *err, size_t errlen)
{
    if (!creds_value_ok(ak, strlen(ak), IG_AWS_CREDS_MAX_KEY_ID) ||
        !creds_value_ok(sk, strlen(sk), IG_AWS_CREDS_MAX_SECRET) ||
        (tok != NULL && !creds_value_ok(tok, strlen(tok), IG_AWS_CREDS_MAX_TOKEN)))
        return creds_fail(err, errlen, IG_ERR_CONFIG,
                          "%s: a key or token is too long or holds a byte that is not visible "
                          "ASCII",
                          where);
    p->cur.ak = ig_xstrdup(ak);
    p->cur.sk = ig_xstrdup(sk);
    p->cur.tok = tok != NULL ? ig_xstrdup(tok) : NULL;
    p->have = 1;
    p->first_done = 1;
    p->view.access_key = p->cur.ak;
    p->view.secret_key = p->cur.sk;
    p->view.session_token = p->cur.tok;
    p->view.expiration = 0;
    return 0;
}

/* 1. The environment. 1 when it is the source, 0 when not set, or an error. */
static int creds_try_env(struct ig_aws_creds_provider *p, char *err, size_t errlen)
{
    const char *ak = creds_env("AWS_ACCESS_KEY_ID"), *sk = creds_env("AWS_SECRET_ACCESS_KEY");
    const char *tok;
    int rc;

    if (ak == NULL && sk == NULL)
        return 0;
    if (ak == NULL || sk == NULL)
        return creds_fail(err, errlen, IG_ERR_CONFIG, "%s is set but %s is not",
                          ak != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                          ak != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    tok = creds_env("AWS_SESSION_TOKEN");
    if (tok == NULL) /* the legacy name, which botocore reads too */
        tok = creds_env("AWS_SECURITY_TOKEN");
    rc = creds_static(p, ak, sk, tok, "AWS_ACCESS_KEY_ID", err, errlen);
    if (rc != 0)
        return rc;
    p->kind = CREDS_ENV;
    snprintf(p->source, sizeof(p->source), "environment");
    return 1;
}

/* 2. The shared files. 1, 0, or an error. */
static int creds_try_profile(struct ig_aws_creds_provider *p, char *err, size_t errlen)
{
    const char *named = creds_env("AWS_PROFILE");
    const char *profile = named != NULL ? named : "default";
    char cbuf[4096], fbuf[4096];
    const char *cpath =
        creds_path("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", cbuf, sizeof(cbuf));
    const char *fpath = creds_path("AWS_CONFIG_FILE", "~/.aws/config", fbuf, sizeof(fbuf));
    struct creds_profile pc = {NULL, NULL, NULL, NULL, 0}, pf = {NULL, NULL, NULL, NULL, 0};
    struct creds_profile *use = NULL;
    const char *where = NULL;
    int rc;

    rc = creds_profile_file(cpath, profile, 0, &pc, err, errlen);
    if (rc == 0)
        rc = creds_profile_file(fpath, profile, 1, &pf, err, errlen);
    if (rc != 0)
        goto out;
    /* the credentials file wins, profile by profile, as in the CLI */
    if (pc.ak != NULL || pc.sk != NULL) {
        use = &pc;
        where = cpath;
    } else if (pf.ak != NULL || pf.sk != NULL) {
        use = &pf;
        where = fpath;
    }
    if (use == NULL) {
        if (named != NULL && !pc.found && !pf.found)
            rc = creds_fail(err, errlen, IG_ERR_NOTFOUND, "profile '%s' not found in %s, %s",
                            profile, cpath != NULL ? cpath : "~/.aws/credentials (no HOME)",
                            fpath != NULL ? fpath : "~/.aws/config (no HOME)");
        if (named != NULL && rc == 0)
            ig_log(IG_LOG_INFO,
                   "aws credentials: profile '%s' holds no access key; trying the "
                   "next source",
                   profile);
        goto out;
    }
    if (use->ak == NULL || use->sk == NULL) {
        rc = creds_fail(err, errlen, IG_ERR_CONFIG, "profile '%s' in %s has %s but no %s", profile,
                        where, use->ak != NULL ? "aws_access_key_id" : "aws_secret_access_key",
                        use->ak != NULL ? "aws_secret_access_key" : "aws_access_key_id");
        goto out;
    }
    rc = creds_static(p, use->ak, use->sk, use->tok != NULL ? use->tok : use->ltok, where, err,
                      errlen);
    if (rc == 0) {
        p->kind = CREDS_PROFILE;
        snprintf(p->source, sizeof(p->source), "profile %s", profile);
        ig_log(IG_LOG_INFO, "aws credentials: profile '%s' from %s", profile, where);
        rc = 1;
    }
out:
    creds_profile_clear(&pc);
    creds_profile_clear(&pf);
    return rc;
}

/* A region goes into a host name: letters, digits and '-' only. */
static int creds_region_ok(const char *r)
{
    if (r == NULL || r[0] == '\0' || strlen(r) > 64)
        return 0;
    for (; *r != '\0'; r++)
        if (!isalnum((unsigned char)*r) && *r != '-')
            return 0;
    return 1;
}

/* 3. Web identity. 1, 0, or an error. */
static int creds_try_web_identity(struct ig_aws_creds_provider *p,
                                  const struct ig_aws_creds_conf *conf, char *err, size_t errlen)
{
    const char *tf = creds_env("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = creds_env("AWS_ROLE_ARN");
    const char *name = creds_env("AWS_ROLE_SESSION_NAME");
    const char *ep =
        conf->sts_endpoint != NULL ? conf->sts_endpoint : creds_env("AWS_ENDPOINT_URL_STS");
    char buf[160];

    if (tf == NULL) /* AWS_ROLE_ARN alone is no source (botocore): the next one serves */
        return 0;
    if (arn == NULL)
        return creds_fail(err, errlen, IG_ERR_CONFIG,
                          "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    if (strlen(arn) > 2048 || (name != NULL && strlen(name) > 64))
        return creds_fail(err, errlen, IG_ERR_CONFIG,
                          "AWS_ROLE_ARN longer than 2048 or AWS_ROLE_SESSION_NAME longer than 64");
    if (ep != NULL) {
        p->url = ig_xstrdup(ep);
    } else {
        if (!creds_region_ok(conf->region))
            return creds_fail(err, errlen, IG_ERR_CONFIG,
                              "web identity credentials need a region for STS (or "
                              "AWS_ENDPOINT_URL_STS); region '%s' is not one",
                              conf->region != NULL ? conf->region : "");
        snprintf(buf, sizeof(buf), "https://sts.%s.%s", conf->region,
                 ig_aws_dns_suffix(conf->region));
        p->url = ig_xstrdup(buf);
    }
    if (name == NULL) {
        snprintf(buf, sizeof(buf), "infergate-%ld", (long)getpid());
        name = buf;
    }
    p->kind = CREDS_WEB_IDENTITY;
    p->token_file = ig_xstrdup(tf);
    p->role_arn = ig_xstrdup(arn);
    p->session_name = ig_xstrdup(name);
    snprintf(p->source, sizeof(p->source), "web identity");
    creds_url_show(p->url, p->url_shown, sizeof(p->url_shown));
    ig_log(IG_LOG_INFO, "aws credentials: web identity, role %s through %s", arn, p->url_shown);
    return 1;
}

/*
 * Plain http carries the credentials in clear: as the SDKs do, only to a
 * loopback host or the ECS / EKS Pod Identity agent. Literal addresses and
 * "localhost" only: a name resolving to loopback would need a lookup here.
 */
static int creds_http_host_ok(const char *host)
{
    static const char *const agents[] = {"169.254.170.2", "169.254.170.23"};
    unsigned char a[16], b[16];
    char h[64];
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, a) == 1) {
        if (a[0] == 127)
            return 1;
        for (size_t i = 0; i < IG_ARRAY_SIZE(agents); i++)
            if (strcmp(host, agents[i]) == 0)
                return 1;
        return 0;
    }
    if (n < 3 || n - 2 >= sizeof(h) || host[0] != '[' || host[n - 1] != ']')
        return 0;
    memcpy(h, host + 1, n - 2);
    h[n - 2] = '\0';
    if (inet_pton(AF_INET6, h, a) != 1)
        return 0;
    if (inet_pton(AF_INET6, "::1", b) == 1 && memcmp(a, b, 16) == 0)
        return 1;
    return inet_pton(AF_INET6, "fd00:ec2::23", b) == 1 && memcmp(a, b, 16) == 0;
}

static int creds_container_url_check(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;

    if (u == NULL)
        return creds_fail(err, errlen, IG_ERR_NOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = creds_fail(err, errlen, IG_ERR_CONFIG,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL");
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0)
        goto out;
    if (strcasecmp(scheme, "http") != 0) {
        rc = creds_fail(err, errlen, IG_ERR_CONFIG,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI: scheme %s is neither http nor https",
                        scheme);
        goto out;
    }
    if (!creds_http_host_ok(host))
        rc = creds_fail(err, errlen, IG_ERR_CONFIG,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http to host %s refused: only "
                        "a loopback host (127.0.0.0/8, ::1, localhost) or 169.254.170.2, "
                        "169.254.170.23, fd00:ec2::23 may be reached without https",
                        host);
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* 4. Container credentials. 1, 0, or an error. */
static int creds_try_container(struct ig_aws_creds_provider *p, char *err, size_t errlen)
{
    const char *full = creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *rel = creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *tok = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *tf = creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    int rc;

    if (full == NULL && rel == NULL)
        return 0;
    if (rel != NULL) { /* the SDKs prefer the relative URI */
        size_t n = strlen(CREDS_ECS_HOST) + strlen(rel) + 1;

        if (rel[0] != '/' || strlen(rel) > 2048)
            return creds_fail(err, errlen, IG_ERR_CONFIG,
                              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path ('/...')");
        p->url = ig_xmalloc(n);
        snprintf(p->url, n, "%s%s", CREDS_ECS_HOST, rel);
    } else {
        if (strlen(full) > 2048)
            return creds_fail(err, errlen, IG_ERR_CONFIG,
                              "AWS_CONTAINER_CREDENTIALS_FULL_URI longer than 2048 bytes");
        rc = creds_container_url_check(full, err, errlen);
        if (rc != 0)
            return rc;
        p->url = ig_xstrdup(full);
    }
    if (tok != NULL && (strpbrk(tok, "\r\n") != NULL || strlen(tok) > IG_AWS_CREDS_MAX_TOKEN))
        return creds_fail(err, errlen, IG_ERR_CONFIG,
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a CR or LF or is longer than "
                          "%d bytes",
                          IG_AWS_CREDS_MAX_TOKEN);
    p->kind = CREDS_CONTAINER;
    p->auth_token_file = tf != NULL ? ig_xstrdup(tf) : NULL;
    p->auth_token_env = tok != NULL ? ig_xstrdup(tok) : NULL;
    snprintf(p->source, sizeof(p->source), "container");
    creds_url_show(p->url, p->url_shown, sizeof(p->url_shown));
    ig_log(IG_LOG_INFO, "aws credentials: container endpoint %s", p->url_shown);
    return 1;
}

int ig_aws_creds_new(struct event_base *base, const struct ig_aws_creds_conf *conf,
                     ig_aws_creds_ready_cb *ready, void *arg, struct ig_aws_creds_provider **out,
                     char *err, size_t errlen)
{
    static const struct ig_aws_creds_conf none = {NULL, NULL, 0, NULL};
    struct ig_aws_creds_provider *p = ig_xcalloc(1, sizeof(*p));
    int rc;

    if (conf == NULL)
        conf = &none;
    p->base = base;
    p->ready = ready;
    p->arg = arg;
    p->backoff_ms = CREDS_BACKOFF_MIN_MS;
    p->timeout_ms = conf->fetch_timeout_ms != 0 ? conf->fetch_timeout_ms : CREDS_TIMEOUT_MS_DEFAULT;
    /* botocore's order (the Java and Go SDKs' too): web identity before the files */
    rc = creds_try_env(p, err, errlen);
    if (rc == 0)
        rc = creds_try_web_identity(p, conf, err, errlen);
    if (rc == 0)
        rc = creds_try_profile(p, err, errlen);
    if (rc == 0)
        rc = creds_try_container(p, err, errlen);
    if (rc == 0 && creds_env("AWS_ROLE_ARN") != NULL)
        rc = creds_fail(err, errlen, IG_ERR_CONFIG,
                        "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
    if (rc == 0)
        rc = creds_fail(err, errlen, IG_ERR_NOTFOUND,
                        "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a "
                        "profile, AWS_WEB_IDENTITY_TOKEN_FILE+AWS_ROLE_ARN or "
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rc < 0)
        goto fail;
    if (p->kind == CREDS_ENV)
        ig_log(IG_LOG_INFO, "aws credentials: environment");
    if (p->kind == CREDS_ENV || p->kind == CREDS_PROFILE) {
        *out = p;
        return 0;
    }
    p->curl = conf->curl;
    if (p->curl == NULL)
        p->curl = p->own_curl = ig_curl_loop_new(base, 0, 0);
    p->timer = evtimer_new(base, on_refresh_timer, p);
    p->body = ig_xmalloc(IG_AWS_CREDS_MAX_ANSWER + 1);
    if (p->curl == NULL || p->timer == NULL) {
        rc = creds_fail(err, errlen, IG_ERR_IO, "cannot set up libcurl or a timer");
        goto fail;
    }
    rc = creds_fetch_start(p);
    if (rc != 0) {
        /* at creation a bad token file is a set-up error, seen at once */
        creds_fail(err, errlen, rc, "%s", p->last_err);
        goto fail;
    }
    *out = p;
    return 0;
fail:
    ig_aws_creds_free(p);
    return rc;
}

int ig_aws_creds_get(struct ig_aws_creds_provider *p, const struct ig_aws_creds **out, char *err,
                     size_t errlen)
{
    char when[32];

    /* The refresh is due by the wall clock but its timer (monotonic) is
     * still far: start it now. Only the planned refresh: after a failed
     * one the backoff paces the retries, however often get() is called. */
    if (p->refresh_at_ms != 0 && !p->fetching && p->last_rc == 0 &&
        creds_wall_ms() >= p->refresh_at_ms) {
        p->refresh_at_ms = 0;
        p->kicked = 1;
        creds_schedule(p, 0);
    }
    if (p->have && (p->cur.exp == 0 || (int64_t)p->cur.exp * 1000 > creds_wall_ms())) {
        *out = &p->view;
        return 0;
    }
    if (!p->first_done)
        return creds_fail(err, errlen, IG_ERR_AGAIN, "AWS credentials from %s: first fetch running",
                          p->source);
    /* What failed, not why: these words reach clients and /readyz. The
     * fetch's own error (an STS host, its code and text, a file's path)
     * is logged at each failure and kept for ig_aws_creds_last_error(). */
    if (!p->have)
        return creds_fail(err, errlen, p->last_rc != 0 ? p->last_rc : IG_ERR_IO,
                          "AWS credentials from %s: their fetch failed (the gateway's log says why)",
                          p->source);
    creds_time_fmt(p->cur.exp, when, sizeof(when));
    if (p->last_rc == 0 && (p->fetching || p->kicked) && p->ready != NULL) {
        /* expired while their refresh runs (the wall clock jumped past
         * both): the caller waits for it, ready() says when it ended */
        p->waiters = 1;
        return creds_fail(err, errlen, IG_ERR_AGAIN,
                          "AWS credentials from %s expired at %s; their refresh is running",
                          p->source, when);
    }
    if (p->last_rc == 0)
        return creds_fail(err, errlen, IG_ERR_TIMEOUT,
                          "AWS credentials from %s expired at %s; their refresh is still running",
                          p->source, when);
    return creds_fail(err, errlen, p->last_rc,
                      "AWS credentials from %s expired at %s; their refresh failed (the gateway's "
                      "log says why)",
                      p->source, when);
}

const char *ig_aws_creds_last_error(const struct ig_aws_creds_provider *p)
{
    return p->last_rc != 0 ? p->last_err : "";
}

const char *ig_aws_dns_suffix(const char *region)
{
    return strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

const char *ig_aws_creds_source(const struct ig_aws_creds_provider *p)
{
    return p->source;
}

unsigned ig_aws_creds_fetches(const struct ig_aws_creds_provider *p)
{
    return p->fetches;
}

static void on_curl_free_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ig_curl_loop_free(arg);
}

void ig_aws_creds_free(struct ig_aws_creds_provider *p)
{
    static const struct timeval now = {0, 0};

    if (p == NULL)
        return;
    /* freed from ready(), our own curl loop is still reaping on the stack:
     * it goes on the next loop turn */
    if (p->freed != NULL) {
        *p->freed = 1;
        if (p->own_curl != NULL &&
            event_base_once(p->base, -1, EV_TIMEOUT, on_curl_free_later, p->own_curl, &now) == 0)
            p->own_curl = NULL;
    }
    if (p->fetching)
        ig_curl_loop_cancel(p->curl, p->easy);
    if (p->easy != NULL)
        curl_easy_cleanup(p->easy);
    creds_hdrs_free(&p->hdrs);
    ig_curl_loop_free(p->own_curl);
    if (p->timer != NULL)
        event_free(p->timer);
    creds_set_clear(&p->cur);
    creds_str_wipe(&p->post);
    creds_str_wipe(&p->auth_token_env);
    if (p->body != NULL)
        explicit_bzero(p->body, IG_AWS_CREDS_MAX_ANSWER + 1);
    free(p->body);
    free(p->url);
    free(p->role_arn);
    free(p->session_name);
    free(p->token_file);
    free(p->auth_token_file);
    free(p);
}

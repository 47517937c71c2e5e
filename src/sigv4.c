/*
 * sigv4.c - AWS Signature Version 4 on OpenSSL: for the Authorization
 * header (what the SDKs send) or presigned (query parameters).
 *
 * One call builds the canonical request into a single allocation sized from
 * the capped inputs (no reallocation, no temporary heap): the headers and
 * the query parameters are sorted as small arrays of pointers on the stack,
 * and the query is compared in its canonical (decoded, re-encoded) form on
 * the fly, so nothing is copied to be sorted. The other outputs are one
 * allocation each. Every write goes through a writer that refuses to pass
 * the size computed in advance: a wrong bound is an error, not an overflow.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "infergate/common.h"
#include "infergate/sigv4.h"

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_TERM "aws4_request"
#define SIGV4_OWN_HDRS 3         /* x-amz-date, x-amz-security-token, x-amz-content-sha256 */
#define SIGV4_PRESIGN_PARAMS 6   /* X-Amz-Algorithm, -Credential, -Date, -Expires, ... */
#define SIGV4_MAX_EXPIRES 604800 /* seven days: the longest a presigned URL may live */

static const char sigv4_hex[] = "0123456789abcdef";
static const char sigv4_hex_upper[] = "0123456789ABCDEF";

/* Headers botocore never signs (section 3.1): a proxy or the transport may
 * change them on the way, and the SDKs must agree with the service. */
static const char *const sigv4_unsigned[] = {
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
};

struct sigv4_hdr {
    const char *name; /* as given (any case) */
    size_t name_len;
    const char *value;
    size_t value_len;
    size_t order; /* position in the input: duplicates join in this order */
};

struct sigv4_param {
    const char *key; /* as on the wire (still %-encoded) */
    size_t key_len;
    const char *val;
    size_t val_len;
};

/* Per-call state, on the caller's stack (about 15 KiB). */
struct sigv4_req {
    const char *why; /* on failure: what was refused (static text) */
    long why_hdr;    /* and in which of in->hdrs (-1: none) */
    size_t nhdrs;
    size_t hdr_bytes;   /* names + values of the signed headers */
    const char *ph_hdr; /* value of the caller's x-amz-content-sha256, if any */
    size_t ph_hdr_len;
    int has_host;
    size_t nparams;
    const char *path;
    size_t path_len;
    const char *query; /* after '?' (NULL: none) */
    size_t query_len;
    size_t pq_len, pq_cap; /* out->presigned_query: length, room (presigning) */
    char date8[9];
    char scope[sizeof(((struct ig_sigv4_key_cache *)0)->_scope)]; /* date/region/service */
    size_t scope_len;
    /* The arrays last: only the part above is zeroed per call. */
    struct sigv4_hdr hdrs[IG_SIGV4_MAX_HDRS + SIGV4_OWN_HDRS];
    struct sigv4_param params[IG_SIGV4_MAX_QUERY_PARAMS + SIGV4_PRESIGN_PARAMS];
};

/* Record why the request is refused; returns <rc>. */
static int sigv4_refuse(struct sigv4_req *r, int rc, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    return rc;
}

/* A writer into a buffer sized in advance; <over> records a bound that was
 * wrong (a bug), which the caller turns into an error rather than an
 * overflow. */
struct sigv4_w {
    char *p;
    size_t len;
    size_t cap;
    int over;
};

static void w_put(struct sigv4_w *w, const void *s, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void w_putc(struct sigv4_w *w, char c)
{
    w_put(w, &c, 1);
}

static void w_puts(struct sigv4_w *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static int sigv4_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* RFC 7230 tchar: what a method and a header name are made of. */
static int sigv4_is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A control character other than tab: it would end the canonical line or
 * the header on the wire early (CR, LF), or is not allowed in HTTP. */
static int sigv4_is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int sigv4_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char sigv4_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of a header name against a lowercase one. */
static int sigv4_name_is(const char *name, size_t len, const char *lower)
{
    size_t i;

    if (strlen(lower) != len)
        return 0;
    for (i = 0; i < len; i++)
        if (sigv4_lower((unsigned char)name[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

static void sigv4_to_hex(const unsigned char *b, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = sigv4_hex[b[i] >> 4];
        out[2 * i + 1] = sigv4_hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int sigv4_sha256(const void *p, size_t n, unsigned char md[32])
{
    unsigned int mdlen = 0;

    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return IG_ERR_IO;
    return 0;
}

static int sigv4_hmac(const void *key, size_t key_len, const void *msg, size_t n,
                      unsigned char md[32])
{
    unsigned int mdlen = 0;

    if (key_len > INT32_MAX || HMAC(EVP_sha256(), key, (int)key_len, msg, n, md, &mdlen) == NULL ||
        mdlen != 32)
        return IG_ERR_IO;
    return 0;
}

/* --- input checks ------------------------------------------------------ */

/* A name that goes into the credential scope or the Credential= field:
 * no '/', ',', '=', space or control, so that scope and header parse back
 * the way they were meant. */
static int sigv4_check_name(const char *s, int token_only)
{
    size_t i, n;

    if (s == NULL || (n = strnlen(s, IG_SIGV4_MAX_NAME + 1)) == 0)
        return IG_ERR_INVALID;
    if (n > IG_SIGV4_MAX_NAME)
        return IG_ERR_TOOBIG;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (token_only ? !sigv4_is_tchar(c)
                       : (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == '='))
            return IG_ERR_INVALID;
    }
    return 0;
}

/* A header value (or the token): no control other than tab. */
static int sigv4_check_value(const char *s, size_t *len)
{
    size_t i;

    if (s == NULL)
        return IG_ERR_INVALID;
    for (i = 0; s[i] != '\0'; i++) {
        if (sigv4_is_ctl((unsigned char)s[i]))
            return IG_ERR_INVALID;
        if (i >= IG_SIGV4_MAX_HDR_BYTES)
            return IG_ERR_TOOBIG;
    }
    *len = i;
    return 0;
}

static int sigv4_check_hash(const char *h)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return IG_ERR_INVALID;
    return h[64] == '\0' ? 0 : IG_ERR_INVALID;
}

static int sigv4_check_scalars(const struct ig_sigv4_in *in, struct sigv4_req *r)
{
    size_t n;
    int rc;

    if ((rc = sigv4_check_name(in->method, 1)) < 0)
        return sigv4_refuse(r, rc, "method: empty, too long or not an HTTP token");
    if ((rc = sigv4_check_name(in->region, 0)) < 0)
        return sigv4_refuse(r, rc, "region: empty, too long, or holds '/', ',', '=' or a space");
    if ((rc = sigv4_check_name(in->service, 0)) < 0)
        return sigv4_refuse(r, rc, "service: empty, too long, or holds '/', ',', '=' or a space");
    if ((rc = sigv4_check_name(in->access_key, 0)) < 0)
        return sigv4_refuse(r, rc,
                            "access key id: empty, too long, or holds '/', ',', '=' or a space");
    if (in->secret_key == NULL || (n = strnlen(in->secret_key, IG_SIGV4_MAX_SECRET + 1)) == 0)
        return sigv4_refuse(r, IG_ERR_INVALID, "secret key: none");
    if (n > IG_SIGV4_MAX_SECRET)
        return sigv4_refuse(r, IG_ERR_TOOBIG, "secret key: longer than 256 bytes");
    if (in->body == NULL && in->body_len > 0)
        return sigv4_refuse(r, IG_ERR_INVALID, "body: NULL with a length");
    if (in->payload_hash != NULL && sigv4_check_hash(in->payload_hash) < 0)
        return sigv4_refuse(r, IG_ERR_INVALID, "payload hash: not 64 lowercase hex digits");
    if (in->hdrs == NULL && in->nhdrs > 0)
        return sigv4_refuse(r, IG_ERR_INVALID, "headers: NULL with a count");
    if (in->presign_expires > SIGV4_MAX_EXPIRES)
        return sigv4_refuse(r, IG_ERR_INVALID, "presign: lifetime over seven days");
    return 0;
}

/* X-Amz-Date and the credential scope. */
static int sigv4_dates(const struct ig_sigv4_in *in, struct sigv4_req *r, struct ig_sigv4_out *out)
{
    struct tm tm;
    int n;

    /* Four-digit years only: X-Amz-Date has no room for others. */
    if (gmtime_r(&in->now, &tm) == NULL || tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900 ||
        strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return sigv4_refuse(r, IG_ERR_INVALID, "time: not in years 1000-9999");
    memcpy(r->date8, out->amz_date, 8);
    r->date8[8] = '\0';
    n = snprintf(r->scope, sizeof(r->scope), "%s/%s/%s", r->date8, in->region, in->service);
    if (n < 0 || (size_t)n >= sizeof(r->scope))
        return sigv4_refuse(r, IG_ERR_TOOBIG, "credential scope: too long");
    r->scope_len = (size_t)n;
    return 0;
}

/* The path and the query as on the wire. */
static int sigv4_split_uri(const char *uri, struct sigv4_req *r)
{
    const char *q;
    size_t i, n;

    if (uri == NULL || uri[0] != '/')
        return sigv4_refuse(r, IG_ERR_INVALID, "uri: does not start with '/'");
    for (n = 0; uri[n] != '\0'; n++) {
        if (sigv4_is_ctl((unsigned char)uri[n]) || uri[n] == '\t')
            return sigv4_refuse(r, IG_ERR_INVALID, "uri: control character");
        if (n >= IG_SIGV4_MAX_URI)
            return sigv4_refuse(r, IG_ERR_TOOBIG, "uri: longer than 8192 bytes");
    }
    q = memchr(uri, '?', n);
    r->path = uri;
    r->path_len = q ? (size_t)(q - uri) : n;
    r->query = q ? q + 1 : NULL;
    r->query_len = q ? n - r->path_len - 1 : 0;
    /* Every %-escape of the query must decode: it is compared decoded. */
    for (i = 0; i < r->query_len; i++) {
        if (r->query[i] != '%')
            continue;
        if (i + 2 >= r->query_len || sigv4_hexval((unsigned char)r->query[i + 1]) < 0 ||
            sigv4_hexval((unsigned char)r->query[i + 2]) < 0)
            return sigv4_refuse(r, IG_ERR_INVALID, "uri: '%' not followed by two hex digits");
        i += 2;
    }
    return 0;
}

/* --- headers ----------------------------------------------------------- */

static int sigv4_add_hdr(struct sigv4_req *r, const char *name, const char *value, size_t value_len)
{
    size_t name_len = strlen(name);
    struct sigv4_hdr *h;

    if (r->nhdrs >= IG_ARRAY_SIZE(r->hdrs))
        return sigv4_refuse(r, IG_ERR_TOOBIG, "headers: more than 256");
    if (name_len + value_len > IG_SIGV4_MAX_HDR_BYTES - r->hdr_bytes)
        return sigv4_refuse(r, IG_ERR_TOOBIG,
                            "headers pass 65536 bytes of names and values (token included)");
    r->hdr_bytes += name_len + value_len;
    h = &r->hdrs[r->nhdrs];
    h->name = name;
    h->name_len = name_len;
    h->value = value;
    h->value_len = value_len;
    h->order = r->nhdrs++;
    return 0;
}

/* Which of the caller's headers are signed, and what they say about the
 * payload hash and Host. */
static int sigv4_collect_hdrs(const struct ig_sigv4_in *in, int has_token, struct sigv4_req *r)
{
    size_t i, k, vlen;
    int rc;

    if (in->nhdrs > IG_SIGV4_MAX_HDRS)
        return sigv4_refuse(r, IG_ERR_TOOBIG, "headers: more than 256");
    for (i = 0; i < in->nhdrs; i++) {
        const struct ig_sigv4_hdr *h = &in->hdrs[i];
        size_t nlen;
        int skip = 0;

        r->why_hdr = (long)i;
        if ((rc = sigv4_check_name(h->name, 1)) < 0)
            return sigv4_refuse(r, rc, "name empty, longer than 128 or not an HTTP token");
        if ((rc = sigv4_check_value(h->value, &vlen)) < 0)
            return sigv4_refuse(r, rc,
                                rc == IG_ERR_TOOBIG ? "value longer than 65536 bytes"
                                                    : "value NULL or with a control character");
        nlen = strlen(h->name);
        for (k = 0; !in->sign_listed_hdrs && k < IG_ARRAY_SIZE(sigv4_unsigned); k++)
            skip |= sigv4_name_is(h->name, nlen, sigv4_unsigned[k]);
        /* The signer's own values replace these (botocore does the same). */
        skip |= sigv4_name_is(h->name, nlen, "authorization") ||
                sigv4_name_is(h->name, nlen, "x-amz-date") ||
                (has_token && sigv4_name_is(h->name, nlen, "x-amz-security-token"));
        if (skip)
            continue;
        r->has_host |= sigv4_name_is(h->name, nlen, "host");
        if (sigv4_name_is(h->name, nlen, "x-amz-content-sha256")) {
            if (r->ph_hdr != NULL) /* two payload hashes: which one? */
                return sigv4_refuse(r, IG_ERR_INVALID, "a second x-amz-content-sha256");
            r->ph_hdr = h->value;
            r->ph_hdr_len = vlen;
        }
        if ((rc = sigv4_add_hdr(r, h->name, h->value, vlen)) < 0)
            return rc;
    }
    r->why_hdr = -1;
    return r->has_host ? 0 : sigv4_refuse(r, IG_ERR_INVALID, "headers: no Host");
}

/* Header names compared as their lowercase forms, byte by byte. */
static int sigv4_name_cmp(const struct sigv4_hdr *x, const struct sigv4_hdr *y)
{
    size_t i, n = x->name_len < y->name_len ? x->name_len : y->name_len;

    for (i = 0; i < n; i++) {
        unsigned char cx = sigv4_lower((unsigned char)x->name[i]);
        unsigned char cy = sigv4_lower((unsigned char)y->name[i]);

        if (cx != cy)
            return cx < cy ? -1 : 1;
    }
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    return 0;
}

static int sigv4_hdr_cmp(const void *a, const void *b)
{
    const struct sigv4_hdr *x = a, *y = b;
    int c = sigv4_name_cmp(x, y);

    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order; /* stable: duplicates in order */
}

/*
 * Binary insertion sort, stable: glibc's qsort (2.36) mallocs a scratch
 * copy of any array over 1 KiB, and these arrays are short and capped
 * (IG_SIGV4_MAX_HDRS + 3 headers, IG_SIGV4_MAX_QUERY_PARAMS + 6
 * parameters): O(n log n) comparisons, and moves of small elements.
 */
static void sigv4_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    unsigned char tmp[sizeof(struct sigv4_hdr)], *a = base;
    size_t i;

    _Static_assert(sizeof(struct sigv4_param) <= sizeof(struct sigv4_hdr), "sort scratch");
    for (i = 1; i < n; i++) {
        size_t lo = 0, hi = i; /* the first element greater than a[i] */

        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (cmp(a + mid * size, a + i * size) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == i)
            continue;
        memcpy(tmp, a + i * size, size);
        memmove(a + (lo + 1) * size, a + lo * size, (i - lo) * size);
        memcpy(a + lo * size, tmp, size);
    }
}

/* A value trimmed, with each run of spaces and tabs written as one space. */
static void sigv4_put_value(struct sigv4_w *w, const char *v, size_t n)
{
    size_t i;
    int gap = 0, any = 0;

    for (i = 0; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            gap = 1;
            continue;
        }
        if (gap && any)
            w_putc(w, ' ');
        w_putc(w, v[i]);
        gap = 0;
        any = 1;
    }
}

static void sigv4_put_lower(struct sigv4_w *w, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        w_putc(w, (char)sigv4_lower((unsigned char)s[i]));
}

static void sigv4_put_enc(struct sigv4_w *w, unsigned char c);

/* The signed-header list: lowercase names, sorted, once each, joined by
 * ';' (written %3B when <encode>, for a presigned query). */
static void sigv4_put_signed(struct sigv4_w *w, const struct sigv4_req *r, int encode)
{
    size_t i;

    for (i = 0; i < r->nhdrs; i++) {
        const struct sigv4_hdr *h = &r->hdrs[i];

        if (i > 0 && sigv4_name_cmp(h, h - 1) == 0)
            continue;
        if (i > 0 && !encode)
            w_putc(w, ';');
        if (!encode) {
            sigv4_put_lower(w, h->name, h->name_len);
            continue;
        }
        if (i > 0)
            sigv4_put_enc(w, ';');
        for (size_t k = 0; k < h->name_len; k++)
            sigv4_put_enc(w, sigv4_lower((unsigned char)h->name[k]));
    }
}

/* Canonical header lines (sorted, duplicates joined by ','), then the blank
 * line, then the signed-header list whose position is returned for the
 * Authorization header. */
static void sigv4_put_hdrs(struct sigv4_w *w, const struct sigv4_req *r, size_t *signed_at,
                           size_t *signed_len)
{
    size_t i;

    for (i = 0; i < r->nhdrs; i++) {
        const struct sigv4_hdr *h = &r->hdrs[i];

        if (i > 0 && sigv4_name_cmp(h, h - 1) == 0) {
            w->len--; /* the previous line's '\n' */
            w_putc(w, ',');
        } else {
            sigv4_put_lower(w, h->name, h->name_len);
            w_putc(w, ':');
        }
        sigv4_put_value(w, h->value, h->value_len);
        w_putc(w, '\n');
    }
    w_putc(w, '\n');
    *signed_at = w->len;
    sigv4_put_signed(w, r, 0);
    *signed_len = w->len - *signed_at;
}

/* --- path and query ---------------------------------------------------- */

static void sigv4_put_enc(struct sigv4_w *w, unsigned char c)
{
    char e[3];

    if (sigv4_is_unreserved(c)) {
        w_putc(w, (char)c);
        return;
    }
    e[0] = '%';
    e[1] = sigv4_hex_upper[c >> 4];
    e[2] = sigv4_hex_upper[c & 15];
    w_put(w, e, 3);
}

/*
 * The canonical URI. Normalising does what botocore and aws-c-auth do (the
 * service checks what they send): "." and empty segments dropped, ".."
 * drops the one before, a trailing '/' kept only when the path ends with
 * one ("/a/b/.." is "/a", "//a//" is "/a/"). It is done on the encoded
 * output, which holds no '/' but the separators, so ".." simply cuts back
 * to the previous '/'. A ".." above the root is refused: the SDKs clamp
 * it, some servers refuse it, and a path that means two things cannot be
 * signed for one of them.
 */
static int sigv4_put_path(struct sigv4_w *w, const char *p, size_t n, int normalize)
{
    size_t i = 0, start = w->len;

    if (!normalize) {
        if (n == 0)
            w_putc(w, '/');
        for (i = 0; i < n; i++)
            if (p[i] == '/')
                w_putc(w, '/');
            else
                sigv4_put_enc(w, (unsigned char)p[i]);
        return 0;
    }
    while (i < n) {
        size_t s, len;

        while (i < n && p[i] == '/')
            i++;
        if (i == n)
            break;
        for (s = i; i < n && p[i] != '/'; i++)
            ;
        len = i - s;
        if (len == 1 && p[s] == '.')
            continue;
        if (len == 2 && p[s] == '.' && p[s + 1] == '.') {
            if (w->len == start)
                return IG_ERR_INVALID;
            while (w->len > start && w->p[w->len - 1] != '/')
                w->len--;
            w->len--; /* and that '/' */
            continue;
        }
        w_putc(w, '/');
        for (; s < i; s++)
            sigv4_put_enc(w, (unsigned char)p[s]);
    }
    if (w->len == start || p[n - 1] == '/')
        w_putc(w, '/');
    return 0;
}

/* Walks the canonical form of a %-encoded query key or value: each
 * character decoded, then encoded again with only the unreserved set left
 * bare, so that "%7E", "~" and "%7e" all sign as "~". */
struct sigv4_qit {
    const char *p, *end;
    char pend[3];
    int npend, ipend;
};

static int sigv4_qit_next(struct sigv4_qit *it)
{
    unsigned char c;

    if (it->ipend < it->npend)
        return (unsigned char)it->pend[it->ipend++];
    if (it->p >= it->end)
        return -1;
    c = (unsigned char)*it->p++;
    if (c == '%') { /* checked well-formed by sigv4_split_uri */
        c = (unsigned char)(sigv4_hexval((unsigned char)it->p[0]) << 4 |
                            sigv4_hexval((unsigned char)it->p[1]));
        it->p += 2;
    }
    if (sigv4_is_unreserved(c))
        return c;
    it->pend[0] = sigv4_hex_upper[c >> 4];
    it->pend[1] = sigv4_hex_upper[c & 15];
    it->npend = 2;
    it->ipend = 0;
    return '%';
}

static int sigv4_canon_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    struct sigv4_qit x = {a, a + an, {0}, 0, 0}, y = {b, b + bn, {0}, 0, 0};

    for (;;) {
        int cx = sigv4_qit_next(&x), cy = sigv4_qit_next(&y);

        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (cx < 0)
            return 0;
    }
}

static int sigv4_param_cmp(const void *a, const void *b)
{
    const struct sigv4_param *x = a, *y = b;
    int c = sigv4_canon_cmp(x->key, x->key_len, y->key, y->key_len);

    return c != 0 ? c : sigv4_canon_cmp(x->val, x->val_len, y->val, y->val_len);
}

/* Add the parameters of the %-encoded query [q, q + n) to <r>. */
static int sigv4_add_params(struct sigv4_req *r, const char *q, size_t n, size_t limit)
{
    const char *p = q, *end;

    if (q == NULL) /* no query (q + 0 on NULL is undefined) */
        return 0;
    for (end = q + n; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        struct sigv4_param *pr;

        if (stop > p) { /* "a&&b": the empty one is no parameter */
            if (r->nparams >= limit)
                return sigv4_refuse(r, IG_ERR_TOOBIG, "uri: more than 128 query parameters");
            pr = &r->params[r->nparams++];
            pr->key = p;
            pr->key_len = (size_t)((eq ? eq : stop) - p);
            pr->val = eq ? eq + 1 : stop;
            pr->val_len = (size_t)(stop - pr->val);
        }
        p = stop + 1;
    }
    return 0;
}

static void sigv4_put_canon(struct sigv4_w *w, const char *s, size_t n)
{
    struct sigv4_qit it = {s, s + n, {0}, 0, 0};
    int c;

    while ((c = sigv4_qit_next(&it)) >= 0)
        w_putc(w, (char)c);
}

static void sigv4_put_query(struct sigv4_w *w, const struct sigv4_req *r)
{
    size_t i;

    for (i = 0; i < r->nparams; i++) {
        if (i > 0)
            w_putc(w, '&');
        sigv4_put_canon(w, r->params[i].key, r->params[i].key_len);
        w_putc(w, '=');
        sigv4_put_canon(w, r->params[i].val, r->params[i].val_len);
    }
}

static void sigv4_put_enc_str(struct sigv4_w *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sigv4_put_enc(w, (unsigned char)s[i]);
}

/*
 * Presigning: the query parameters that carry the authentication, written
 * %-encoded into out->presigned_query with room left for the signature
 * (and for an omitted token, which follows it), then added to the
 * parameters the canonical query is made of.
 */
static int sigv4_presign_query(const struct ig_sigv4_in *in, struct sigv4_req *r,
                               struct ig_sigv4_out *out, int has_token, size_t tok_len)
{
    struct sigv4_w w = {0};
    char num[16];
    size_t i;

    w.cap = 200 + 3 * (strlen(in->access_key) + r->scope_len + strlen(SIGV4_TERM) + 2) +
            3 * tok_len + 64;
    for (i = 0; i < r->nhdrs; i++)
        w.cap += 3 * (r->hdrs[i].name_len + 1);
    if ((w.p = ig_try_malloc(w.cap + 1)) == NULL)
        return IG_ERR_NOMEM;
    out->presigned_query = w.p;
    w_puts(&w, "X-Amz-Algorithm=" SIGV4_ALGO "&X-Amz-Credential=");
    sigv4_put_enc_str(&w, in->access_key, strlen(in->access_key));
    sigv4_put_enc(&w, '/');
    sigv4_put_enc_str(&w, r->scope, r->scope_len);
    sigv4_put_enc(&w, '/');
    w_puts(&w, SIGV4_TERM "&X-Amz-Date=");
    w_put(&w, out->amz_date, 16);
    snprintf(num, sizeof(num), "%u", in->presign_expires);
    w_puts(&w, "&X-Amz-Expires=");
    w_puts(&w, num);
    w_puts(&w, "&X-Amz-SignedHeaders=");
    sigv4_put_signed(&w, r, 1);
    if (has_token && !in->omit_session_token) {
        w_puts(&w, "&X-Amz-Security-Token=");
        sigv4_put_enc_str(&w, in->session_token, tok_len);
    }
    if (w.over)
        return IG_ERR_TOOBIG; /* the bound above is wrong: a bug */
    w.p[w.len] = '\0';
    r->pq_len = w.len;
    r->pq_cap = w.cap;
    return sigv4_add_params(r, w.p, w.len, IG_ARRAY_SIZE(r->params));
}

/* The signature (and an omitted token) at the end of the presigned query. */
static int sigv4_presign_end(const struct ig_sigv4_in *in, const struct sigv4_req *r,
                             struct ig_sigv4_out *out)
{
    struct sigv4_w w = {out->presigned_query, r->pq_len, r->pq_cap, 0};

    w_puts(&w, "&X-Amz-Signature=");
    w_put(&w, out->signature, 64);
    if (in->session_token != NULL && in->session_token[0] != '\0' && in->omit_session_token) {
        w_puts(&w, "&X-Amz-Security-Token=");
        sigv4_put_enc_str(&w, in->session_token, strlen(in->session_token));
    }
    if (w.over)
        return IG_ERR_TOOBIG;
    w.p[w.len] = '\0';
    return 0;
}

/* --- assembly ---------------------------------------------------------- */

/* The canonical request; <signed_at>/<signed_len> locate the signed-header
 * list in it. The bound: every byte of path and query (the presigning
 * parameters included) at most triples when encoded (a decoded "%XX" is
 * three bytes in and at most three out), a parameter may gain its '=',
 * header values only shrink. */
static int sigv4_canonical(const struct ig_sigv4_in *in, struct sigv4_req *r, const char *ph,
                           char **creq, size_t *creq_len, size_t *signed_at, size_t *signed_len)
{
    struct sigv4_w w = {0};
    size_t i;
    int rc;

    w.cap = strlen(in->method) + 1 + 3 * r->path_len + 2 + 3 * (r->query_len + 1 + r->pq_len) +
            r->nparams + 1 + 64 + 1 + 1;
    for (i = 0; i < r->nhdrs; i++)
        w.cap += 2 * (r->hdrs[i].name_len + 1) + r->hdrs[i].value_len + 1;
    if ((w.p = ig_try_malloc(w.cap + 1)) == NULL)
        return IG_ERR_NOMEM;
    w_puts(&w, in->method);
    w_putc(&w, '\n');
    if ((rc = sigv4_put_path(&w, r->path, r->path_len, !in->no_normalize)) < 0) {
        free(w.p);
        return sigv4_refuse(r, rc, "uri: '..' climbs above the root");
    }
    w_putc(&w, '\n');
    sigv4_put_query(&w, r);
    w_putc(&w, '\n');
    sigv4_put_hdrs(&w, r, signed_at, signed_len);
    w_putc(&w, '\n');
    w_put(&w, ph, strlen(ph));
    if (w.over) { /* the bound above is wrong: a bug, never an overflow */
        free(w.p);
        return IG_ERR_TOOBIG;
    }
    w.p[w.len] = '\0';
    *creq = w.p;
    *creq_len = w.len;
    return 0;
}

/* The payload hash: the caller's x-amz-content-sha256 verbatim, else the
 * given hash, else SHA-256 of the body. */
static int sigv4_payload_hash(const struct ig_sigv4_in *in, struct sigv4_req *r, char ph[65])
{
    unsigned char md[32];
    int rc;

    if (r->ph_hdr != NULL) {
        struct sigv4_w w = {ph, 0, 64, 0};

        sigv4_put_value(&w, r->ph_hdr, r->ph_hdr_len);
        if (w.over || w.len == 0)
            return sigv4_refuse(r, IG_ERR_INVALID,
                                "x-amz-content-sha256: empty or longer than 64 bytes");
        ph[w.len] = '\0';
        return 0;
    }
    if (in->payload_hash != NULL) {
        memcpy(ph, in->payload_hash, 65);
        return 0;
    }
    if ((rc = sigv4_sha256(in->body_len ? in->body : "", in->body_len, md)) < 0)
        return rc;
    sigv4_to_hex(md, 32, ph);
    return 0;
}

int ig_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, unsigned char key[32])
{
    unsigned char k[4 + IG_SIGV4_MAX_SECRET], a[32], b[32];
    size_t n;
    int rc;

    if (secret == NULL || date8 == NULL || region == NULL || service == NULL ||
        (n = strnlen(secret, IG_SIGV4_MAX_SECRET + 1)) == 0 || n > IG_SIGV4_MAX_SECRET ||
        strnlen(date8, 9) != 8 || region[0] == '\0' || service[0] == '\0' ||
        strnlen(region, IG_SIGV4_MAX_NAME + 1) > IG_SIGV4_MAX_NAME ||
        strnlen(service, IG_SIGV4_MAX_NAME + 1) > IG_SIGV4_MAX_NAME)
        return IG_ERR_INVALID;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, n);
    rc = sigv4_hmac(k, 4 + n, date8, 8, a);
    if (rc == 0)
        rc = sigv4_hmac(a, 32, region, strlen(region), b);
    if (rc == 0)
        rc = sigv4_hmac(b, 32, service, strlen(service), a);
    if (rc == 0)
        rc = sigv4_hmac(a, 32, SIGV4_TERM, strlen(SIGV4_TERM), key);
    /* The key material does not outlive the call on the stack. */
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    return rc;
}

void ig_sigv4_key_cache_clear(struct ig_sigv4_key_cache *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}

/* The signing key, from the cache when the scope and the secret match. */
static int sigv4_key(const struct ig_sigv4_in *in, const struct sigv4_req *r, unsigned char key[32])
{
    struct ig_sigv4_key_cache *c = in->key_cache;
    unsigned char sha[32];
    int rc;

    if (c == NULL)
        return ig_sigv4_signing_key(in->secret_key, r->date8, in->region, in->service, key);
    if ((rc = sigv4_sha256(in->secret_key, strlen(in->secret_key), sha)) < 0)
        return rc;
    if (c->_valid && strcmp(c->_scope, r->scope) == 0 &&
        CRYPTO_memcmp(c->_secret_sha, sha, 32) == 0) {
        memcpy(key, c->_key, 32);
        c->_hits++;
        return 0;
    }
    c->_valid = 0;
    if ((rc = ig_sigv4_signing_key(in->secret_key, r->date8, in->region, in->service, key)) < 0)
        return rc;
    memcpy(c->_scope, r->scope, r->scope_len + 1);
    memcpy(c->_secret_sha, sha, 32);
    memcpy(c->_key, key, 32);
    c->_valid = 1;
    c->_misses++;
    return 0;
}

static int sigv4_finish(const struct ig_sigv4_in *in, const struct sigv4_req *r,
                        struct ig_sigv4_out *out, size_t creq_len, size_t signed_at,
                        size_t signed_len)
{
    static const char cred[] = SIGV4_ALGO " Credential=", sh[] = ", SignedHeaders=",
                      sig[] = ", Signature=";
    unsigned char md[32], key[32];
    char hex[65];
    size_t n;
    int rc;

    if ((rc = sigv4_sha256(out->canonical_request, creq_len, md)) < 0)
        return rc;
    sigv4_to_hex(md, 32, hex);
    n = strlen(SIGV4_ALGO) + 1 + 16 + 1 + r->scope_len + 1 + strlen(SIGV4_TERM) + 1 + 64 + 1;
    if ((out->string_to_sign = ig_try_malloc(n)) == NULL)
        return IG_ERR_NOMEM;
    snprintf(out->string_to_sign, n, SIGV4_ALGO "\n%s\n%s/" SIGV4_TERM "\n%s", out->amz_date,
             r->scope, hex);
    if ((rc = sigv4_key(in, r, key)) < 0)
        return rc;
    rc = sigv4_hmac(key, 32, out->string_to_sign, strlen(out->string_to_sign), md);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0)
        return rc;
    sigv4_to_hex(md, 32, out->signature);
    if (in->presign_expires > 0)
        return sigv4_presign_end(in, r, out);
    n = sizeof(cred) - 1 + strlen(in->access_key) + 1 + r->scope_len + 1 + strlen(SIGV4_TERM) +
        sizeof(sh) - 1 + signed_len + sizeof(sig) - 1 + 64 + 1;
    if ((out->authorization = ig_try_malloc(n)) == NULL)
        return IG_ERR_NOMEM;
    snprintf(out->authorization, n, "%s%s/%s/" SIGV4_TERM "%s%.*s%s%s", cred, in->access_key,
             r->scope, sh, (int)signed_len, out->canonical_request + signed_at, sig,
             out->signature);
    return 0;
}

/* out->error: what was refused, and which header when one was. */
static void sigv4_error(struct ig_sigv4_out *out, const struct sigv4_req *r, int rc)
{
    const char *why = r->why;

    if (why == NULL) /* failures that are not the input's */
        why = rc == IG_ERR_NOMEM ? "out of memory"
              : rc == IG_ERR_IO  ? "OpenSSL failed"
                                 : "internal: a size computed in advance was short";
    if (r->why_hdr >= 0)
        snprintf(out->error, sizeof(out->error), "hdrs[%ld]: %s", r->why_hdr, why);
    else
        snprintf(out->error, sizeof(out->error), "%s", why);
}

/* The headers the signer signs itself (Authorization mode only: a
 * presigned query carries date and token as parameters instead). */
static int sigv4_own_hdrs(const struct ig_sigv4_in *in, struct sigv4_req *r,
                          struct ig_sigv4_out *out, int has_token, size_t tok_len)
{
    int rc;

    if (in->presign_expires > 0) { /* the token is in the query: capped the same */
        if (has_token && tok_len > IG_SIGV4_MAX_HDR_BYTES - r->hdr_bytes)
            return sigv4_refuse(r, IG_ERR_TOOBIG,
                                "headers pass 65536 bytes of names and values (token included)");
        return 0;
    }
    if ((rc = sigv4_add_hdr(r, "x-amz-date", out->amz_date, 16)) < 0)
        return rc;
    if (has_token && !in->omit_session_token &&
        (rc = sigv4_add_hdr(r, "x-amz-security-token", in->session_token, tok_len)) < 0)
        return rc;
    if (in->sign_body && r->ph_hdr == NULL)
        return sigv4_add_hdr(r, "x-amz-content-sha256", out->payload_hash,
                             strlen(out->payload_hash));
    return 0;
}

int ig_sigv4_sign(const struct ig_sigv4_in *in, struct ig_sigv4_out *out)
{
    struct sigv4_req r;
    size_t creq_len = 0, signed_at = 0, signed_len = 0, tok_len = 0;
    int has_token, rc;

    memset(out, 0, sizeof(*out));
    memset(&r, 0, offsetof(struct sigv4_req, hdrs));
    r.why_hdr = -1;
    if ((rc = sigv4_check_scalars(in, &r)) < 0 || (rc = sigv4_dates(in, &r, out)) < 0 ||
        (rc = sigv4_split_uri(in->uri, &r)) < 0)
        goto fail;
    has_token = in->session_token != NULL && in->session_token[0] != '\0';
    if (has_token && (rc = sigv4_check_value(in->session_token, &tok_len)) < 0) {
        sigv4_refuse(&r, rc, "session token: a control character, or longer than 65536 bytes");
        goto fail;
    }
    if ((rc = sigv4_collect_hdrs(in, has_token, &r)) < 0 ||
        (rc = sigv4_payload_hash(in, &r, out->payload_hash)) < 0 ||
        (rc = sigv4_own_hdrs(in, &r, out, has_token, tok_len)) < 0)
        goto fail;
    sigv4_sort(r.hdrs, r.nhdrs, sizeof(r.hdrs[0]), sigv4_hdr_cmp);
    if ((rc = sigv4_add_params(&r, r.query, r.query_len, IG_SIGV4_MAX_QUERY_PARAMS)) < 0 ||
        (in->presign_expires > 0 &&
         (rc = sigv4_presign_query(in, &r, out, has_token, tok_len)) < 0))
        goto fail;
    sigv4_sort(r.params, r.nparams, sizeof(r.params[0]), sigv4_param_cmp);
    if ((rc = sigv4_canonical(in, &r, out->payload_hash, &out->canonical_request, &creq_len,
                              &signed_at, &signed_len)) < 0 ||
        (rc = sigv4_finish(in, &r, out, creq_len, signed_at, signed_len)) < 0)
        goto fail;
    return 0;
fail:
    ig_sigv4_out_clear(out);
    sigv4_error(out, &r, rc);
    return rc;
}

void ig_sigv4_out_clear(struct ig_sigv4_out *out)
{
    ig_free(&out->authorization);
    ig_free(&out->presigned_query);
    ig_free(&out->canonical_request);
    ig_free(&out->string_to_sign);
    memset(out, 0, sizeof(*out));
}

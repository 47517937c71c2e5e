/*
 * auth.c - SigV4 verification of incoming requests (auth.h).
 *
 * The Authorization header is parsed and checked in the order the errors
 * are documented in auth.h; the canonical request and the signature are
 * then computed by ig_sigv4_sign() from exactly the headers the client
 * listed in SignedHeaders (their values as received), the client's
 * X-Amz-Date as the signing time and the region of its credential scope,
 * and compared with CRYPTO_memcmp. The signer's own signed-header list
 * must equal the client's too, so a listed header that is absent, or a
 * list that is not sorted lowercase, fails like a wrong signature.
 *
 * All work is bounded: the Authorization header (8 KiB), SignedHeaders (64
 * names), the headers looked at (1024) and what the signer takes (its caps).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "infergate/auth.h"
#include "infergate/common.h"
#include "infergate/sigv4.h"

#define AUTH_ALGO "AWS4-HMAC-SHA256"
#define AUTH_TERM "aws4_request"
#define AUTH_ECHO_MAX 512 /* bytes of the Authorization header quoted back */
#define AUTH_MAX_TOKEN (IG_AUTH_MAX_LINE)

#define T_MISSING "MissingAuthenticationTokenException"
#define T_INCOMPLETE "IncompleteSignatureException"
#define T_UNRECOGNIZED "UnrecognizedClientException"
#define T_INVALID "InvalidSignatureException"
#define T_INTERNAL "InternalFailure"

#define MSG_MISSING "Missing Authentication Token"
#define MSG_BAD_TOKEN "The security token included in the request is invalid."
#define MSG_MISMATCH                                                                               \
    "The request signature we calculated does not match the signature you provided. Check "        \
    "your AWS Secret Access Key and signing method. Consult the service documentation for "        \
    "details."

struct auth_key {
    char *ak;
    char *sk;
    char *token; /* NULL: none */
};

struct ig_auth {
    struct auth_key *keys; /* sorted by ak */
    size_t nkeys;
    uint32_t skew_s;
};

/* --- keys -------------------------------------------------------------- */

/* An access key id: 1..128 printable ASCII bytes without space, '/', ','
 * or '=' (it is parsed back out of the credential scope). */
static int auth_ak_ok(const char *s, size_t n)
{
    if (n == 0 || n > IG_SIGV4_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '/' ||
            s[i] == ',' || s[i] == '=')
            return 0;
    return 1;
}

/* A secret (1..256) or a token (1..4096): printable ASCII, no space. */
static int auth_word_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Add one key; <where> ("FILE:LINE" or the option name) for the errors. */
static int auth_add(struct ig_auth *a, const char *ak, size_t akn, const char *sk, size_t skn,
                    const char *tok, size_t tokn, const char *where, char *err, size_t errlen)
{
    struct auth_key *k;

    if (!auth_ak_ok(ak, akn)) {
        ig_errf(err, errlen,
                "%s: access key id must be 1..128 printable characters without space, '/', ',' "
                "or '='",
                where);
        return IG_ERR_CONFIG;
    }
    if (!auth_word_ok(sk, skn, IG_SIGV4_MAX_SECRET)) {
        ig_errf(err, errlen, "%s: secret key of '%.*s' must be 1..256 printable characters", where,
                (int)akn, ak);
        return IG_ERR_CONFIG;
    }
    if (tok != NULL && !auth_word_ok(tok, tokn, AUTH_MAX_TOKEN)) {
        ig_errf(err, errlen, "%s: session token of '%.*s' must be printable characters", where,
                (int)akn, ak);
        return IG_ERR_CONFIG;
    }
    for (size_t i = 0; i < a->nkeys; i++)
        if (strlen(a->keys[i].ak) == akn && memcmp(a->keys[i].ak, ak, akn) == 0) {
            ig_errf(err, errlen, "%s: access key '%.*s' is defined twice", where, (int)akn, ak);
            return IG_ERR_CONFIG;
        }
    if (a->nkeys >= IG_AUTH_MAX_KEYS) {
        ig_errf(err, errlen, "%s: more than %d keys", where, IG_AUTH_MAX_KEYS);
        return IG_ERR_CONFIG;
    }
    k = &a->keys[a->nkeys++];
    k->ak = ig_xstrndup(ak, akn);
    k->sk = ig_xstrndup(sk, skn);
    k->token = tok != NULL ? ig_xstrndup(tok, tokn) : NULL;
    return 0;
}

static int auth_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The keys file: "ACCESS_KEY SECRET [SESSION_TOKEN]" per line, blank lines
 * and lines whose first non-blank is '#' skipped. */
static int auth_read_file(struct ig_auth *a, const char *path, char *err, size_t errlen)
{
    char line[IG_AUTH_MAX_LINE + 2], where[4200];
    FILE *f = fopen(path, "r");
    int lineno = 0, rc = 0;

    if (f == NULL) {
        ig_errf(err, errlen, "%s: cannot open (admin_keys_file): %s", path, strerror(errno));
        return IG_ERR_CONFIG;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *w[4];
        size_t wl[4], nw = 0, len = strlen(line), i = 0;

        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (len > IG_AUTH_MAX_LINE || (line[len - 1] != '\n' && !feof(f))) {
            ig_errf(err, errlen, "%s: line longer than %d bytes", where, IG_AUTH_MAX_LINE);
            rc = IG_ERR_CONFIG;
            break;
        }
        while (i < len) {
            while (i < len && auth_is_blank(line[i]))
                i++;
            if (i == len || (nw == 0 && line[i] == '#'))
                break;
            if (nw == 4)
                break;
            w[nw] = line + i;
            while (i < len && !auth_is_blank(line[i]))
                i++;
            wl[nw] = (size_t)(line + i - w[nw]);
            nw++;
        }
        if (nw == 0)
            continue;
        if (nw < 2 || nw > 3) {
            ig_errf(err, errlen, "%s: expected ACCESS_KEY SECRET [SESSION_TOKEN]", where);
            rc = IG_ERR_CONFIG;
            break;
        }
        if ((rc = auth_add(a, w[0], wl[0], w[1], wl[1], nw == 3 ? w[2] : NULL, nw == 3 ? wl[2] : 0,
                           where, err, errlen)) < 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        ig_errf(err, errlen, "%s: read error (admin_keys_file)", path);
        rc = IG_ERR_CONFIG;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return rc;
}

static int auth_key_cmp(const void *x, const void *y)
{
    return strcmp(((const struct auth_key *)x)->ak, ((const struct auth_key *)y)->ak);
}

int ig_auth_new(const struct ig_config *cfg, struct ig_auth **out, char *err, size_t errlen)
{
    struct ig_auth *a = ig_xcalloc(1, sizeof(*a));
    const char *ak = cfg->admin_access_key ? cfg->admin_access_key : "";
    const char *sk = cfg->admin_secret_key ? cfg->admin_secret_key : "";
    int rc = 0;

    *out = NULL;
    a->keys = ig_xcalloc(IG_AUTH_MAX_KEYS, sizeof(*a->keys));
    a->skew_s = cfg->auth_skew_s > 0 ? cfg->auth_skew_s : 300;
    if ((ak[0] != '\0') != (sk[0] != '\0')) {
        ig_errf(err, errlen, "admin_access_key and admin_secret_key: set both or neither");
        rc = IG_ERR_CONFIG;
        goto fail;
    }
    if (ak[0] != '\0' && (rc = auth_add(a, ak, strlen(ak), sk, strlen(sk), NULL, 0,
                                        "admin_access_key", err, errlen)) < 0)
        goto fail;
    if (cfg->admin_keys_file != NULL && cfg->admin_keys_file[0] != '\0' &&
        (rc = auth_read_file(a, cfg->admin_keys_file, err, errlen)) < 0)
        goto fail;
    if (a->nkeys == 0 && (cfg->admin_auth || cfg->data_auth)) {
        ig_errf(err, errlen,
                "%s is on but no key is configured: set admin_access_key and admin_secret_key, "
                "or admin_keys_file%s",
                cfg->admin_auth ? "admin_auth" : "data_auth",
                cfg->admin_auth ? " (or admin_auth = off with the admin API on loopback only)"
                                : "");
        rc = IG_ERR_CONFIG;
        goto fail;
    }
    qsort(a->keys, a->nkeys, sizeof(a->keys[0]), auth_key_cmp);
    *out = a;
    return 0;
fail:
    ig_auth_free(a);
    return rc;
}

static void auth_wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void ig_auth_free(struct ig_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nkeys; i++) {
        free(a->keys[i].ak);
        auth_wipe_free(a->keys[i].sk);
        auth_wipe_free(a->keys[i].token);
    }
    free(a->keys);
    free(a);
}

size_t ig_auth_nkeys(const struct ig_auth *a)
{
    return a != NULL ? a->nkeys : 0;
}

static const struct auth_key *auth_find(const struct ig_auth *a, const char *ak)
{
    struct auth_key probe = {(char *)ak, NULL, NULL};

    return bsearch(&probe, a->keys, a->nkeys, sizeof(a->keys[0]), auth_key_cmp);
}

/* --- verification ------------------------------------------------------ */

struct auth_res {
    const char **type;
    int *status;
    char *msg;
    size_t msglen;
};

__attribute__((format(printf, 4, 5))) static int
auth_refuse(const struct auth_res *r, const char *type, int status, const char *fmt, ...)
{
    va_list ap;

    *r->type = type;
    *r->status = status;
    if (r->msglen > 0) {
        va_start(ap, fmt);
        vsnprintf(r->msg, r->msglen, fmt, ap);
        va_end(ap);
    }
    return status >= 500 ? IG_ERR_IO : IG_ERR_INVALID;
}

/* Bytes of a span quoted back in a message. */
static int auth_echo_len(size_t n)
{
    return (int)(n < AUTH_ECHO_MAX ? n : AUTH_ECHO_MAX);
}

struct auth_span {
    const char *p;
    size_t n;
};

static int span_is(struct auth_span s, const char *lit)
{
    return s.p != NULL && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* The parsed Authorization header. */
struct auth_hdr {
    struct auth_span algo, cred, signed_hdrs, sig;
    struct auth_span names[IG_AUTH_MAX_SIGNED]; /* SignedHeaders split on ';' */
    size_t nnames;
};

static int auth_sp(char c)
{
    return c == ' ' || c == '\t';
}

/* "ALGO Credential=..., SignedHeaders=..., Signature=...": 0, or a
 * refusal. Missing parameters are all named, as AWS does. */
static int auth_parse(const struct auth_res *res, const char *v, struct auth_hdr *h, int have_date)
{
    size_t i = 0, n = strlen(v);
    char why[512];
    size_t wn = 0;

    while (i < n && auth_sp(v[i]))
        i++;
    h->algo.p = v + i;
    while (i < n && !auth_sp(v[i]))
        i++;
    h->algo.n = (size_t)(v + i - h->algo.p);
    if (!span_is(h->algo, AUTH_ALGO))
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Unsupported authorization type: '%.*s' (only " AUTH_ALGO
                           " is accepted). Authorization=%.*s",
                           (int)(h->algo.n > 64 ? 64 : h->algo.n), h->algo.p, AUTH_ECHO_MAX, v);
    while (i < n) {
        struct auth_span key, val, *slot = NULL;

        while (i < n && (auth_sp(v[i]) || v[i] == ','))
            i++;
        if (i == n)
            break;
        key.p = v + i;
        while (i < n && v[i] != '=' && v[i] != ',')
            i++;
        key.n = (size_t)(v + i - key.p);
        while (key.n > 0 && auth_sp(key.p[key.n - 1]))
            key.n--;
        if (i == n || v[i] != '=')
            return auth_refuse(res, T_INCOMPLETE, 400,
                               "Authorization header parameter '%.*s' has no value. "
                               "Authorization=%.*s",
                               (int)(key.n > 64 ? 64 : key.n), key.p, AUTH_ECHO_MAX, v);
        i++;
        while (i < n && auth_sp(v[i]))
            i++;
        val.p = v + i;
        while (i < n && v[i] != ',')
            i++;
        val.n = (size_t)(v + i - val.p);
        while (val.n > 0 && auth_sp(val.p[val.n - 1]))
            val.n--;
        if (span_is(key, "Credential"))
            slot = &h->cred;
        else if (span_is(key, "SignedHeaders"))
            slot = &h->signed_hdrs;
        else if (span_is(key, "Signature"))
            slot = &h->sig;
        if (slot == NULL)
            continue; /* an unknown parameter: not signed, not used */
        if (slot->p != NULL)
            return auth_refuse(res, T_INCOMPLETE, 400,
                               "Authorization header has the '%.*s' parameter twice. "
                               "Authorization=%.*s",
                               (int)key.n, key.p, AUTH_ECHO_MAX, v);
        *slot = val;
    }
    why[0] = '\0';
    if (h->cred.p == NULL || h->cred.n == 0)
        wn += (size_t)snprintf(why + wn, sizeof(why) - wn,
                               "Authorization header requires 'Credential' parameter. ");
    if (h->sig.p == NULL || h->sig.n == 0)
        wn += (size_t)snprintf(why + wn, sizeof(why) - wn,
                               "Authorization header requires 'Signature' parameter. ");
    if (h->signed_hdrs.p == NULL || h->signed_hdrs.n == 0)
        wn += (size_t)snprintf(why + wn, sizeof(why) - wn,
                               "Authorization header requires 'SignedHeaders' parameter. ");
    if (!have_date)
        wn += (size_t)snprintf(why + wn, sizeof(why) - wn,
                               "Authorization header requires existence of either a "
                               "'X-Amz-Date' or a 'Date' header. ");
    if (wn > 0)
        return auth_refuse(res, T_INCOMPLETE, 400, "%sAuthorization=%.*s", why, AUTH_ECHO_MAX, v);
    /* SignedHeaders: names separated by ';' */
    for (i = 0; i < h->signed_hdrs.n;) {
        struct auth_span s = {h->signed_hdrs.p + i, 0};

        while (i < h->signed_hdrs.n && h->signed_hdrs.p[i] != ';')
            i++;
        s.n = (size_t)(h->signed_hdrs.p + i - s.p);
        i++; /* the ';' */
        if (s.n == 0)
            return auth_refuse(res, T_INCOMPLETE, 400,
                               "SignedHeaders '%.*s' has an empty header name.",
                               auth_echo_len(h->signed_hdrs.n), h->signed_hdrs.p);
        if (h->nnames == IG_AUTH_MAX_SIGNED)
            return auth_refuse(res, T_INCOMPLETE, 400, "SignedHeaders lists more than %d headers.",
                               IG_AUTH_MAX_SIGNED);
        h->names[h->nnames++] = s;
    }
    return 0;
}

/* Is <name> (any case) listed in SignedHeaders (compared case-blind)? */
static int auth_listed(const struct auth_hdr *h, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < h->nnames; i++)
        if (h->names[i].n == n && strncasecmp(h->names[i].p, name, n) == 0)
            return 1;
    return 0;
}

/* YYYYMMDDTHHMMSSZ exactly (what the signer writes back): 0 and *t. */
static int auth_parse_date(const char *v, time_t *t)
{
    struct tm tm = {0};
    char back[17];
    int f[6], w[6] = {4, 2, 2, 2, 2, 2}, pos[6] = {0, 4, 6, 9, 11, 13};

    if (strlen(v) != 16 || v[8] != 'T' || v[15] != 'Z')
        return -1;
    for (int k = 0; k < 6; k++) {
        f[k] = 0;
        for (int j = 0; j < w[k]; j++) {
            char c = v[pos[k] + j];

            if (c < '0' || c > '9')
                return -1;
            f[k] = f[k] * 10 + (c - '0');
        }
    }
    if (f[0] < 1000 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 ||
        f[5] > 59)
        return -1;
    tm.tm_year = f[0] - 1900;
    tm.tm_mon = f[1] - 1;
    tm.tm_mday = f[2];
    tm.tm_hour = f[3];
    tm.tm_min = f[4];
    tm.tm_sec = f[5];
    *t = timegm(&tm);
    if (gmtime_r(t, &tm) == NULL || strftime(back, sizeof(back), "%Y%m%dT%H%M%SZ", &tm) != 16 ||
        memcmp(back, v, 16) != 0) /* e.g. February 30th */
        return -1;
    return 0;
}

static void auth_fmt_date(time_t t, char out[17])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        snprintf(out, 17, "?");
}

/* The query has an X-Amz-Algorithm parameter (a presigned URL). */
static int auth_presigned(const char *pq)
{
    const char *q = strchr(pq, '?');

    while (q != NULL) {
        q++;
        if (strncmp(q, "X-Amz-Algorithm=", 16) == 0)
            return 1;
        q = strchr(q, '&');
    }
    return 0;
}

/* Trim spaces and tabs around a header value into <buf>; -1 when it does
 * not fit. */
static int auth_trim(const char *v, char *buf, size_t cap)
{
    size_t n;

    while (auth_sp(*v))
        v++;
    n = strlen(v);
    while (n > 0 && auth_sp(v[n - 1]))
        n--;
    if (n >= cap)
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 0;
}

static int auth_sha256_hex(const char *body, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(len ? body : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return IG_ERR_IO;
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

/* The request's own headers of interest. */
struct auth_seen {
    const char *authz, *date, *token, *csha;
    int nauthz, ndate, ntoken, ncsha;
};

static void auth_scan(const struct ig_http_hdr *hdrs, size_t nhdrs, struct auth_seen *s)
{
    for (size_t i = 0; i < nhdrs; i++) {
        const char *n = hdrs[i].name, *v = hdrs[i].value;

        if (n == NULL || v == NULL)
            continue;
        if (strcasecmp(n, "authorization") == 0 && s->nauthz++ == 0)
            s->authz = v;
        else if (strcasecmp(n, "x-amz-date") == 0 && s->ndate++ == 0)
            s->date = v;
        else if (strcasecmp(n, "x-amz-security-token") == 0 && s->ntoken++ == 0)
            s->token = v;
        else if (strcasecmp(n, "x-amz-content-sha256") == 0 && s->ncsha++ == 0)
            s->csha = v;
    }
}

/* Credential = AK/YYYYMMDD/REGION/SERVICE/aws4_request, split into NUL-
 * terminated copies. */
struct auth_scope {
    char ak[IG_SIGV4_MAX_NAME + 1], date8[9], region[IG_SIGV4_MAX_NAME + 1],
        service[IG_SIGV4_MAX_NAME + 1];
};

static int auth_scope(const struct auth_res *res, struct auth_span cred, struct auth_scope *sc)
{
    struct auth_span part[5];
    size_t np = 0, i = 0;

    while (np < 5) {
        part[np].p = cred.p + i;
        while (i < cred.n && cred.p[i] != '/')
            i++;
        part[np].n = (size_t)(cred.p + i - part[np].p);
        np++;
        if (i == cred.n)
            break;
        i++;
    }
    if (np != 5 || i != cred.n)
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Credential should be of the form "
                           "ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request, not '%.*s'.",
                           auth_echo_len(cred.n), cred.p);
    if (!span_is(part[4], AUTH_TERM))
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Credential should be scoped with a valid terminator: '" AUTH_TERM
                           "', not '%.*s'. ",
                           (int)(part[4].n > 128 ? 128 : part[4].n), part[4].p);
    if (!auth_ak_ok(part[0].p, part[0].n))
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Credential has an empty or malformed access key id: '%.*s'.",
                           auth_echo_len(cred.n), cred.p);
    if (part[1].n != 8 || strspn(part[1].p, "0123456789") < 8)
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Credential should be scoped to a date of the form YYYYMMDD, not "
                           "'%.*s'. ",
                           (int)(part[1].n > 64 ? 64 : part[1].n), part[1].p);
    if (part[2].n == 0 || part[2].n > IG_SIGV4_MAX_NAME ||
        strspn(part[2].p, "abcdefghijklmnopqrstuvwxyz0123456789-") < part[2].n)
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Credential should be scoped to a valid region, not '%.*s'. ",
                           (int)(part[2].n > 128 ? 128 : part[2].n), part[2].p);
    if (part[3].n == 0 || part[3].n > IG_SIGV4_MAX_NAME)
        return auth_refuse(res, T_INCOMPLETE, 400,
                           "Credential should be scoped to a valid service, not '%.*s'. ",
                           (int)(part[3].n > 128 ? 128 : part[3].n), part[3].p);
    memcpy(sc->ak, part[0].p, part[0].n);
    sc->ak[part[0].n] = '\0';
    memcpy(sc->date8, part[1].p, 8);
    sc->date8[8] = '\0';
    memcpy(sc->region, part[2].p, part[2].n);
    sc->region[part[2].n] = '\0';
    memcpy(sc->service, part[3].p, part[3].n);
    sc->service[part[3].n] = '\0';
    return 0;
}

/* "5 min" or "90 sec", as AWS writes the window. */
static void auth_fmt_skew(uint32_t s, char *buf, size_t len)
{
    if (s % 60 == 0)
        snprintf(buf, len, "%u min", s / 60);
    else
        snprintf(buf, len, "%u sec", s);
}

/* Recompute the signature with the signer and compare. */
static int auth_verify_sig(const struct auth_res *res, const struct auth_hdr *h,
                           const struct auth_scope *sc, const struct auth_key *key,
                           const char *service, int no_normalize, const char *method,
                           const char *pq, const struct ig_http_hdr *hdrs, size_t nhdrs,
                           const char *body, size_t bodylen, const char *body_hash, time_t t)
{
    struct ig_sigv4_hdr sh[IG_SIGV4_MAX_HDRS];
    struct ig_sigv4_in in = {0};
    struct ig_sigv4_out out = {0};
    const char *at, *end;
    size_t n = 0;
    int rc, ok;

    for (size_t i = 0; i < nhdrs; i++) {
        if (hdrs[i].name == NULL || hdrs[i].value == NULL || !auth_listed(h, hdrs[i].name))
            continue;
        if (n == IG_SIGV4_MAX_HDRS)
            return auth_refuse(res, T_INCOMPLETE, 400, "More than %d signed header lines.",
                               IG_SIGV4_MAX_HDRS);
        sh[n].name = hdrs[i].name;
        sh[n].value = hdrs[i].value;
        n++;
    }
    in.method = method;
    in.uri = pq;
    in.hdrs = sh;
    in.nhdrs = n;
    in.body = body;
    in.body_len = bodylen;
    in.payload_hash = body_hash;
    in.region = sc->region;
    in.service = service;
    in.access_key = sc->ak;
    in.secret_key = key->sk;
    in.session_token = key->token;
    in.now = t;
    in.no_normalize = no_normalize;
    in.sign_listed_hdrs = 1;
    if ((rc = ig_sigv4_sign(&in, &out)) < 0) {
        if (rc == IG_ERR_NOMEM || rc == IG_ERR_IO)
            rc = auth_refuse(res, T_INTERNAL, 500, "Internal error while verifying the signature.");
        else
            rc = auth_refuse(res, T_INCOMPLETE, 400,
                             "The request cannot be canonicalised for its signature: %s.",
                             out.error);
        ig_sigv4_out_clear(&out);
        return rc;
    }
    /* The signer's signed-header list must be the client's, byte for byte. */
    at = strstr(out.authorization, ", SignedHeaders=");
    end = at ? strstr(at, ", Signature=") : NULL;
    ok = at != NULL && end != NULL;
    if (ok) {
        at += strlen(", SignedHeaders=");
        ok = (size_t)(end - at) == h->signed_hdrs.n &&
             memcmp(at, h->signed_hdrs.p, h->signed_hdrs.n) == 0;
    }
    /* Every check runs whatever the outcome of the others. */
    ok &= h->sig.n == 64;
    ok &= CRYPTO_memcmp(out.signature, h->sig.n == 64 ? h->sig.p : out.signature, 64) == 0;
    ig_sigv4_out_clear(&out);
    if (!ok)
        return auth_refuse(res, T_INVALID, 403, MSG_MISMATCH);
    return 0;
}

int ig_auth_check_service(const struct ig_auth *a, const char *service, int no_normalize,
                          const char *method, const char *path_and_query,
                          const struct ig_http_hdr *hdrs, size_t nhdrs, const char *body,
                          size_t bodylen, time_t now, const char **type, int *status, char *msg,
                          size_t msglen)
{
    struct auth_res res = {type, status, msg, msglen};
    struct auth_seen seen = {0};
    struct auth_hdr *h = NULL;
    struct auth_scope sc;
    const struct auth_key *key;
    char date[32], body_hash[65], csha[80], skew[24], d1[17], d2[17];
    time_t t;
    int rc;

    *type = NULL;
    *status = 200;
    if (msglen > 0)
        msg[0] = '\0';
    if (nhdrs > IG_AUTH_MAX_HDRS)
        return auth_refuse(&res, T_INCOMPLETE, 400, "More than %d request headers.",
                           IG_AUTH_MAX_HDRS);
    auth_scan(hdrs, nhdrs, &seen);
    if (seen.authz == NULL) {
        if (path_and_query != NULL && auth_presigned(path_and_query))
            return auth_refuse(&res, T_MISSING, 403,
                               MSG_MISSING " (presigned URLs, X-Amz-Algorithm in the query, are "
                                           "not supported: send an Authorization header)");
        return auth_refuse(&res, T_MISSING, 403, MSG_MISSING);
    }
    if (seen.nauthz > 1)
        return auth_refuse(&res, T_INCOMPLETE, 400, "More than one Authorization header.");
    if (strnlen(seen.authz, IG_AUTH_MAX_AUTHORIZATION + 1) > IG_AUTH_MAX_AUTHORIZATION)
        return auth_refuse(&res, T_INCOMPLETE, 400,
                           "The Authorization header is longer than %d bytes.",
                           IG_AUTH_MAX_AUTHORIZATION);
    h = ig_try_malloc(sizeof(*h));
    if (h == NULL)
        return auth_refuse(&res, T_INTERNAL, 500, "Internal error while verifying the signature.");
    memset(h, 0, sizeof(*h));
    if ((rc = auth_parse(&res, seen.authz, h, seen.date != NULL)) < 0)
        goto out;
    if (seen.ndate > 1) {
        rc = auth_refuse(&res, T_INCOMPLETE, 400, "More than one X-Amz-Date header.");
        goto out;
    }
    if (auth_trim(seen.date, date, sizeof(date)) < 0 || auth_parse_date(date, &t) < 0) {
        rc = auth_refuse(&res, T_INCOMPLETE, 400,
                         "Date must be in ISO-8601 'basic format'. Got '%.64s'. See "
                         "http://en.wikipedia.org/wiki/ISO_8601",
                         seen.date);
        goto out;
    }
    if ((rc = auth_scope(&res, h->cred, &sc)) < 0)
        goto out;
    if (memcmp(sc.date8, date, 8) != 0) {
        rc = auth_refuse(&res, T_INVALID, 403,
                         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                         "of date from HTTP: '%s' != '%.8s', from '%s'.",
                         sc.date8, date, date);
        goto out;
    }
    if (strcmp(sc.service, service) != 0) {
        rc = auth_refuse(&res, T_INVALID, 403,
                         "Credential should be scoped to correct service: '%s'. ", service);
        goto out;
    }
    if (!auth_listed(h, "host")) {
        rc = auth_refuse(&res, T_INCOMPLETE, 400,
                         "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                         "Authorization.");
        goto out;
    }
    if (!auth_listed(h, "x-amz-date")) {
        rc = auth_refuse(&res, T_INCOMPLETE, 400,
                         "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
        goto out;
    }
    /* Every x-amz-* header sent must be signed, as AWS requires: else a
     * captured request could be replayed with another X-Amz-Target. (The
     * security token and the payload hash have rules of their own below.) */
    for (size_t i = 0; i < nhdrs; i++)
        if (hdrs[i].name != NULL && strncasecmp(hdrs[i].name, "x-amz-", 6) == 0 &&
            strcasecmp(hdrs[i].name, "x-amz-security-token") != 0 &&
            strcasecmp(hdrs[i].name, "x-amz-content-sha256") != 0 &&
            !auth_listed(h, hdrs[i].name)) {
            rc = auth_refuse(&res, T_INVALID, 403,
                             "The request header '%.64s' must be signed: every x-amz-* header "
                             "sent is one of the SignedHeaders.",
                             hdrs[i].name);
            goto out;
        }
    auth_fmt_skew(a->skew_s, skew, sizeof(skew));
    auth_fmt_date(now, d2);
    if (t < now - (time_t)a->skew_s) {
        auth_fmt_date(now - (time_t)a->skew_s, d1);
        rc = auth_refuse(&res, T_INVALID, 403,
                         "Signature expired: %s is now earlier than %s (%s - %s.)", date, d1, d2,
                         skew);
        goto out;
    }
    if (t > now + (time_t)a->skew_s) {
        auth_fmt_date(now + (time_t)a->skew_s, d1);
        rc = auth_refuse(&res, T_INVALID, 403,
                         "Signature not yet current: %s is still later than %s (%s + %s.)", date,
                         d1, d2, skew);
        goto out;
    }
    if ((key = auth_find(a, sc.ak)) == NULL) {
        rc = auth_refuse(&res, T_UNRECOGNIZED, 403, MSG_BAD_TOKEN);
        goto out;
    }
    if (key->token != NULL) {
        size_t kn = strlen(key->token);
        int same = seen.token != NULL && seen.ntoken == 1 && strlen(seen.token) == kn;

        /* constant time over the key's token length */
        same &= CRYPTO_memcmp(key->token, same ? seen.token : key->token, kn) == 0;
        if (!same) {
            rc = auth_refuse(&res, T_UNRECOGNIZED, 403, MSG_BAD_TOKEN);
            goto out;
        }
        if (!auth_listed(h, "x-amz-security-token")) {
            rc = auth_refuse(&res, T_INCOMPLETE, 400,
                             "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS "
                             "Authorization.");
            goto out;
        }
    } else if (auth_listed(h, "x-amz-security-token")) {
        /* a token signed for a key that has none: not this key's credentials */
        rc = auth_refuse(&res, T_UNRECOGNIZED, 403, MSG_BAD_TOKEN);
        goto out;
    }
    if ((rc = auth_sha256_hex(body, bodylen, body_hash)) < 0) {
        rc = auth_refuse(&res, T_INTERNAL, 500, "Internal error while verifying the signature.");
        goto out;
    }
    if (seen.ncsha > 1) {
        rc = auth_refuse(&res, T_INCOMPLETE, 400, "More than one x-amz-content-sha256 header.");
        goto out;
    }
    /* A declared payload hash must be the body's: else a captured request
     * could be replayed with another body. */
    if (seen.csha != NULL &&
        (auth_trim(seen.csha, csha, sizeof(csha)) < 0 || strcmp(csha, body_hash) != 0)) {
        rc = auth_refuse(&res, T_INVALID, 403,
                         "The provided 'x-amz-content-sha256' header does not match what was "
                         "computed (unsigned or streaming payloads are not accepted).");
        goto out;
    }
    rc = auth_verify_sig(&res, h, &sc, key, service, no_normalize, method, path_and_query, hdrs,
                         nhdrs, body, bodylen, body_hash, t);
out:
    free(h);
    return rc;
}

int ig_auth_check(const struct ig_auth *a, const char *method, const char *path_and_query,
                  const struct ig_http_hdr *hdrs, size_t nhdrs, const char *body, size_t bodylen,
                  time_t now, const char **type, int *status, char *msg, size_t msglen)
{
    return ig_auth_check_service(a, IG_AUTH_SERVICE, 0, method, path_and_query, hdrs, nhdrs, body,
                                 bodylen, now, type, status, msg, msglen);
}

/*
 * sigv4.h - AWS Signature Version 4: canonical request, string to sign,
 * HMAC-SHA256 chain on OpenSSL, and the Authorization header value (what
 * every AWS SDK sends) or, presigning, the query parameters. Spec:
 * sagemaker-protocols.md section 3; every case of the aws-c-auth test suite
 * (tests/unit/data/sigv4-test-suite), header and query variants, is
 * reproduced byte for byte.
 *
 * Pure code (house rule 4): no globals, no I/O, no clock. The caller gives
 * the time and the credentials, sends the headers the signer reports, and
 * owns the optional signing-key cache.
 *
 * Caps: a request past one of them is refused with IG_ERR_TOOBIG, so each
 * output is bounded (the canonical request by about 3 * (IG_SIGV4_MAX_URI +
 * IG_SIGV4_MAX_HDR_BYTES) + 1 KiB) whatever the caller passes.
 */
#ifndef INFERGATE_SIGV4_H
#define INFERGATE_SIGV4_H

#include <stddef.h>
#include <time.h>

#define IG_SIGV4_MAX_HDRS 256              /* headers in ig_sigv4_in.hdrs */
#define IG_SIGV4_MAX_HDR_BYTES (64 * 1024) /* names + values (+ the token) */
#define IG_SIGV4_MAX_URI 8192              /* path and query, as on the wire */
#define IG_SIGV4_MAX_QUERY_PARAMS 128      /* key[=value] pairs in the query */
#define IG_SIGV4_MAX_SECRET 256            /* bytes of the secret access key */
#define IG_SIGV4_MAX_NAME 128              /* method, region, service, key id, header name */

struct ig_sigv4_hdr {
    const char *name;  /* NUL-terminated, any case */
    const char *value; /* NUL-terminated, as sent (trimmed and collapsed for signing) */
};

/*
 * The signing key of one (date, region, service, secret): four HMACs saved
 * per call when the same credentials sign again on the same UTC day. Owned
 * by the caller (zero it, or ig_sigv4_key_cache_clear, before first use);
 * not locked: one cache per thread, or the caller's lock around the sign.
 * It keeps a SHA-256 of the secret, never the secret.
 */
struct ig_sigv4_key_cache {
    int _valid;
    char _scope[8 + 1 + IG_SIGV4_MAX_NAME + 1 + IG_SIGV4_MAX_NAME + 1]; /* date/region/service */
    unsigned char _secret_sha[32];
    unsigned char _key[32];
    unsigned long _hits, _misses; /* for tests */
};

struct ig_sigv4_in {
    const char *method; /* "POST": an HTTP token, sent as is */
    const char *uri;    /* path[?query] exactly as sent on the wire; starts with '/' */
    const struct ig_sigv4_hdr *hdrs;
    size_t nhdrs;     /* the request's headers, Host included; duplicates allowed */
    const void *body; /* NULL only when body_len == 0 */
    size_t body_len;
    const char *payload_hash; /* lowercase hex SHA-256 of the body if known, or NULL */
    const char *region, *service;
    const char *access_key, *secret_key;
    const char *session_token; /* NULL or "": none; else signed as x-amz-security-token */
    time_t now;                /* UTC seconds */
    int no_normalize;          /* 0: normalise the path (every service but S3) */
    /* Added fields (zero: off). */
    int sign_body;          /* also sign x-amz-content-sha256: <payload hash> (S3 style);
                             * the caller sends it with out.payload_hash */
    int omit_session_token; /* the token is sent but not signed (aws-c-auth's flag) */
    struct ig_sigv4_key_cache *key_cache; /* NULL: derive the signing key every call */
    unsigned presign_expires; /* 0: sign for the Authorization header; 1..604800: presign
                               * (query auth, seconds valid): out.presigned_query */
    int sign_listed_hdrs; /* verifying (auth.c): <hdrs> are exactly the headers the client
                           * listed in SignedHeaders; none is skipped for being on the
                           * never-signed list below (Authorization and X-Amz-Date still are) */
};

struct ig_sigv4_out {
    char amz_date[17];       /* YYYYMMDDTHHMMSSZ: send as X-Amz-Date */
    char *authorization;     /* malloc'd: the Authorization header value */
    char *canonical_request; /* malloc'd (for tests and debug logs) */
    char *string_to_sign;    /* malloc'd */
    char signature[65];
    char payload_hash[65]; /* what was signed as the payload hash (x-amz-content-sha256) */
    char *presigned_query; /* malloc'd when presigning, else NULL: append to the URI's query
                            * (after '&' when it has one); authorization is NULL then */
    char error[128];       /* on failure: what was refused, for the log, e.g.
                            * "hdrs[2]: value NULL or with a control character" */
};

/*
 * Sign <in> into <out> (overwritten: clear a reused one first). The signer
 * adds x-amz-date (and x-amz-security-token when a token is given and
 * omit_session_token is 0, x-amz-content-sha256 when sign_body is set) to
 * the signed headers itself: the caller must send them on the wire with
 * these values. A caller's own Authorization and X-Amz-Date in <hdrs> (and
 * X-Amz-Security-Token when a token is given) are left out, replaced by the
 * signer's, as botocore does: do not send them twice.
 *
 * Presigning (presign_expires > 0) puts X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, the token (unless
 * omitted: then after the signature) and X-Amz-Signature in
 * out.presigned_query instead; no header is added and sign_body is ignored
 * (aws-c-auth's query-* vectors).
 *
 * Headers never signed (botocore's list, section 3.1): connection, expect,
 * keep-alive, proxy-authenticate, proxy-authorization, te, trailer,
 * transfer-encoding, upgrade, user-agent, x-amzn-trace-id.
 *
 * The payload hash is, in this order: the value of an x-amz-content-sha256
 * header in <hdrs> (verbatim, as AWS reads it, e.g. UNSIGNED-PAYLOAD), else
 * <payload_hash>, else SHA-256(<body>).
 *
 * The path is URI-encoded once more (a '%' on the wire is signed as %25,
 * as the SDKs do for every service but S3); normalising first drops "."
 * and empty segments, lets ".." drop the segment before, and keeps a
 * trailing '/' only when the path ends with one, as botocore and
 * aws-c-auth do ("/a/b/.." is "/a"). The query is decoded and re-encoded,
 * sorted by key then value.
 *
 * The Host value signed must be the one the HTTP client sends (with
 * ":port" when the URL has one; for HTTP/2 the :authority), and the path
 * the one it sends (libcurl removes dot segments unless told not to).
 *
 * Returns 0; IG_ERR_INVALID for a malformed input: a NULL or empty
 * required field, a method or header name that is not an HTTP token, a
 * control character (other than tab) in the URI or in a header value or
 * the token, a URI that does not start with '/', a bad %-escape in the
 * query, a ".." that climbs above the root (normalising), no Host header,
 * a payload hash that is not 64 lowercase hex digits, a time that is not
 * in years 1000-9999, presign_expires over seven days; IG_ERR_TOOBIG past
 * a cap above; IG_ERR_NOMEM; IG_ERR_IO if OpenSSL fails. On failure <out>
 * holds no allocation, and out.error says what was refused.
 */
int ig_sigv4_sign(const struct ig_sigv4_in *in, struct ig_sigv4_out *out);

/* Free what ig_sigv4_sign allocated; <out> is zeroed (safe to call twice). */
void ig_sigv4_out_clear(struct ig_sigv4_out *out);

/*
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + <secret>, <date8>), <region>),
 * <service>), "aws4_request") into <key> (32 bytes). <date8> is YYYYMMDD.
 * 0, IG_ERR_INVALID (empty or too long input), IG_ERR_IO.
 */
int ig_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, unsigned char key[32]);

/* Forget the cached key (wiped). */
void ig_sigv4_key_cache_clear(struct ig_sigv4_key_cache *c);

#endif /* INFERGATE_SIGV4_H */

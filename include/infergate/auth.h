/*
 * auth.h - verification of AWS Signature Version 4 on incoming requests
 * (the admin API, and the data plane with data_auth = on), as unchanged AWS
 * clients sign them: the Authorization header form only (presigned URLs
 * are refused). Spec: sagemaker-protocols.md section 3.2.
 *
 * The canonical request is rebuilt by ig_sigv4_sign() (src/sigv4.c), the
 * signer the gateway uses towards SageMaker, given the headers the client
 * listed in SignedHeaders, its X-Amz-Date, scope region and token: one
 * canonicalisation for both directions. The signatures are compared in
 * constant time.
 *
 * Keys: admin_access_key/admin_secret_key and the lines of admin_keys_file
 * ("ACCESS_KEY SECRET [SESSION_TOKEN]", '#' comments), read once by
 * ig_auth_new(). A key with a session token accepts only requests that
 * carry that token in X-Amz-Security-Token and sign it.
 *
 * Pure after ig_auth_new (no I/O, no clock: the caller passes <now>); a
 * struct ig_auth is read-only and may be shared by threads.
 */
#ifndef INFERGATE_AUTH_H
#define INFERGATE_AUTH_H

#include <stddef.h>
#include <time.h>

#include "infergate/config.h"
#include "infergate/http.h"

#define IG_AUTH_MAX_KEYS 1000          /* keys in all (file and admin_access_key) */
#define IG_AUTH_MAX_LINE 4096          /* bytes of one keys-file line, newline included */
#define IG_AUTH_MAX_AUTHORIZATION 8192 /* bytes of the Authorization header */
#define IG_AUTH_MAX_SIGNED 64          /* names in SignedHeaders */
#define IG_AUTH_MAX_HDRS 1024          /* headers of a request looked at */
#define IG_AUTH_SERVICE "sagemaker"    /* the signing name of both SageMaker APIs */

struct ig_auth; /* the configured keys, and the allowed skew */

/*
 * Read the keys of <cfg> (admin_access_key/admin_secret_key, then
 * admin_keys_file) into *<out>. Errors (IG_ERR_CONFIG, message in <err>):
 * a keys-file line that is not ACCESS_KEY SECRET [SESSION_TOKEN]
 * ("FILE:LINE: ..."), longer than 4096 bytes, a key id or secret with a
 * bad character or too long, a key id given twice, more than 1000 keys,
 * an unreadable file, and no key at all while admin_auth or data_auth is
 * on. main must call it before honouring --check-config. IG_ERR_NOMEM.
 */
int ig_auth_new(const struct ig_config *cfg, struct ig_auth **out, char *err, size_t errlen);

/* Wipes the secrets and frees <a> (NULL is fine). */
void ig_auth_free(struct ig_auth *a);

/* Keys held (for the startup log). */
size_t ig_auth_nkeys(const struct ig_auth *a);

/*
 * Verify <req> (method, path with query as on the wire, headers as
 * received with Host the client's (:authority for h2), body bytes as
 * received) signed for service "sagemaker" (any region). 0 = OK. Else a
 * negative code (IG_ERR_INVALID for every refusal the client caused,
 * IG_ERR_NOMEM or IG_ERR_IO for ours) and, in *<type>, *<status> and <msg>,
 * the AWS error to send:
 *   MissingAuthenticationTokenException 403: no Authorization header (or a
 *     presigned query, which is not supported: the message says so);
 *   IncompleteSignatureException 400: a malformed Authorization, credential
 *     scope, X-Amz-Date, or host, x-amz-date or a key's token not signed;
 *   UnrecognizedClientException 403: unknown access key, or a token that is
 *     not the key's;
 *   InvalidSignatureException 403: scope date or service wrong, date beyond
 *     the skew, x-amz-content-sha256 not the body's, signature mismatch;
 *   InternalFailure 500: our failure (memory, OpenSSL).
 * <type> is a static string; <msg> is NUL-terminated (cut to <msglen>).
 */
int ig_auth_check(const struct ig_auth *a, const char *method, const char *path_and_query,
                  const struct ig_http_hdr *hdrs, size_t nhdrs, const char *body, size_t bodylen,
                  time_t now, const char **type, int *status, char *msg, size_t msglen);

/*
 * ig_auth_check for another signing name <service>, and with the path
 * signed as is when <no_normalize> (S3 style; ig_auth_check normalises, as
 * every other service does). For tests (the aws-c-auth suite signs for
 * "service") and future callers.
 */
int ig_auth_check_service(const struct ig_auth *a, const char *service, int no_normalize,
                          const char *method, const char *path_and_query,
                          const struct ig_http_hdr *hdrs, size_t nhdrs, const char *body,
                          size_t bodylen, time_t now, const char **type, int *status, char *msg,
                          size_t msglen);

#endif /* INFERGATE_AUTH_H */

/*
 * codec_libsvm.c - text/libsvm request bodies (placeholder until the
 * decoder lands: every body is refused).
 */
#include "infergate/codec.h"
#include "infergate/common.h"

int ig_codec_decode_libsvm(const char *body, size_t len, uint32_t dim, uint32_t max_rows,
                           struct ig_rowset *rs, struct ig_codec_error *err)
{
    (void)body;
    (void)len;
    (void)dim;
    (void)max_rows;
    (void)rs;
    ig_codec_error_set(err, 0, "text/libsvm is not supported yet.");
    return IG_ERR_UNSUPPORTED;
}

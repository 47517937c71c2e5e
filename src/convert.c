/*
 * convert.c - request rows and predictions from one wire format into
 * another (placeholder until the converter lands: every call is refused).
 */
#include "infergate/buf.h"
#include "infergate/convert.h"
#include "infergate/common.h"

int ig_convert_rows(enum ig_format from, const struct ig_rowset *in, enum ig_format to,
                    uint32_t width, struct ig_buf *body, struct ig_rowset *out,
                    struct ig_codec_error *err)
{
    (void)from;
    (void)in;
    (void)to;
    (void)width;
    (void)body;
    (void)out;
    ig_codec_error_set(err, 0, "Converting between request formats is not supported yet.");
    return IG_ERR_UNSUPPORTED;
}

int ig_convert_pred(enum ig_format from, const char *p, size_t len, enum ig_format to,
                    uint32_t row, struct ig_buf *out, struct ig_codec_error *err)
{
    (void)from;
    (void)p;
    (void)len;
    (void)to;
    (void)out;
    ig_codec_error_set(err, row, "Converting between response formats is not supported yet.");
    return IG_ERR_UNSUPPORTED;
}

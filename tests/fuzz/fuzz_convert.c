/*
 * fuzz_convert.c - the format conversions of convert.h on hostile input.
 *
 * Input: byte 0 picks the operation and formats, byte 1 the width and the
 * output cap; the rest is the body (its own exactly-sized allocation).
 *   byte 0 bit 0    0: rows (ig_convert_rows), 1: one prediction
 *                   (ig_convert_pred)
 *   byte 0 bits 1-3 the format converted from (mod IG_FMT_COUNT)
 *   byte 0 bits 4-6 the format converted to (mod IG_FMT_COUNT)
 *   byte 0 bit 7    libsvm index base (rows)
 *   byte 1 bits 0-3 the width (convert_widths)
 *   byte 1 bits 4-7 the output buffer's cap (convert_caps)
 * Rows: the body decoded with dim 0 in the "from" format; when that
 * succeeds, ig_convert_rows either fails leaving the output buffer as it
 * was and the rowset empty, or gives one row per input row, each a slice
 * of the output that ig_codec_decode in the "to" format reads back as the
 * same number of rows. Predictions: ig_convert_pred either fails leaving
 * the buffer as it was, or appends text that is one prediction of the
 * "to" format (CSV: no LF; JSON: valid JSON for jansson; RecordIO: one
 * whole record that decodes; the same format: a copy). Error messages are
 * sentences that start "Row " or "The ".
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/convert.h"
#include "infergate/recordio.h"

static const uint32_t convert_widths[16] = {0, 0, 1, 2, 3, 4, 5, 7, 8, 16, 50, 64, 100, 1000,
                                            1000000, 2000000};
static const size_t convert_caps[16] = {1,    8,    16,    64,    100,     256,     1000,
                                        4096, 8192, 16384, 65536, 1 << 18, 1 << 20, 1 << 22,
                                        1 << 24, 1 << 26};

static void check_msg(const struct ig_codec_error *err, int rv)
{
    FUZZ_CHECK(err->msg[0] != '\0', "rv %d without a message", rv);
    FUZZ_CHECK(strncmp(err->msg, "Row ", 4) == 0 || strncmp(err->msg, "The ", 4) == 0 ||
                   strncmp(err->msg, "Out of memory", 13) == 0 ||
                   strncmp(err->msg, "Request", 7) == 0 || strncmp(err->msg, "Unsupported", 11) == 0,
               "message: %s", err->msg);
}

static int count_records(const struct ig_recordio_rec *rec, void *arg)
{
    (void)rec;
    (*(uint32_t *)arg)++;
    return 0;
}

static void fuzz_rows(enum ig_format from, enum ig_format to, uint8_t base, uint32_t width,
                      size_t cap, const char *body, size_t len)
{
    struct ig_rowset in, out, back;
    struct ig_codec_error err;
    struct ig_buf b;
    int rv;

    memset(&in, 0, sizeof(in));
    in.index_base = base;
    if (ig_codec_decode(from, body, len, 0, 100000, &in, &err) < 0)
        return;
    ig_buf_init(&b, cap);
    FUZZ_CHECK(ig_buf_append(&b, "pre", 3) == 0 || cap < 3, "prefix");
    {
        size_t before = b.len;

        memset(&out, 0, sizeof(out));
        memset(&err, 0, sizeof(err));
        rv = ig_convert_rows(from, &in, to, width, &b, &out, &err);
        if (rv < 0) {
            check_msg(&err, rv);
            FUZZ_CHECK(b.len == before, "a failed conversion changed the buffer");
            FUZZ_CHECK(out.nrows == 0 && out.rows == NULL, "a failed conversion left rows");
            goto done;
        }
        FUZZ_CHECK(out.nrows == in.nrows, "%u rows converted from %u", out.nrows, in.nrows);
        for (uint32_t i = 0; i < out.nrows; i++)
            FUZZ_CHECK((size_t)out.rows[i].off + out.rows[i].len <= b.len,
                       "row %u past the output", i);
        if (out.nrows > 0 && to != IG_FMT_JSON && from != to) { /* (same: never asked) */
            memset(&back, 0, sizeof(back));
            back.index_base = out.index_base;
            rv = ig_codec_decode(to, b.data + before, b.len - before, 0, 100000, &back, &err);
            FUZZ_CHECK(rv == 0 && back.nrows == out.nrows,
                       "the converted rows do not decode as %s: %d %s (%u of %u rows)",
                       ig_codec_format_mime(to), rv, err.msg, back.nrows, out.nrows);
            ig_rowset_clear(&back);
        }
        if (to == IG_FMT_RECORDIO)
            for (uint32_t i = 0; i < out.nrows; i++) {
                struct ig_recordio_dec *d;
                uint32_t n = 0;

                FUZZ_CHECK(ig_recordio_dec_new(1u << 26, &d) == 0, "dec");
                FUZZ_CHECK(ig_recordio_dec_feed(d, b.data + out.rows[i].off, out.rows[i].len,
                                                count_records, &n, NULL) == 0 &&
                               ig_recordio_dec_end(d, NULL) == 0 && n == 1,
                           "row %u is not one whole record", i);
                ig_recordio_dec_free(d);
            }
        ig_rowset_clear(&out);
    }
done:
    ig_buf_clear(&b);
    ig_rowset_clear(&in);
}

static void fuzz_pred(enum ig_format from, enum ig_format to, size_t cap, const char *p,
                      size_t len)
{
    struct ig_codec_error err;
    struct ig_buf b;
    size_t before;
    int rv;

    ig_buf_init(&b, cap);
    FUZZ_CHECK(ig_buf_append(&b, "pre", 3) == 0 || cap < 3, "prefix");
    before = b.len;
    memset(&err, 0, sizeof(err));
    rv = ig_convert_pred(from, p, len, to, 1, &b, &err);
    if (rv < 0) {
        if (rv != IG_ERR_UNSUPPORTED && rv != IG_ERR_TOOBIG)
            check_msg(&err, rv);
        FUZZ_CHECK(b.len == before, "a failed conversion changed the buffer");
    } else if (from == to) { /* never asked by the gateway: a copy */
        FUZZ_CHECK(b.len - before == len && memcmp(b.data + before, p, len) == 0, "not a copy");
    } else if (to == IG_FMT_CSV) {
        FUZZ_CHECK(memchr(b.data + before, '\n', b.len - before) == NULL, "a CSV answer with LF");
    } else if (to == IG_FMT_JSON || to == IG_FMT_JSONL) {
        json_error_t je;
        json_t *v = json_loadb(b.data + before, b.len - before,
                              JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);

        /* (a number past the double range is JSON still: jansson alone
         * refuses it) */
        FUZZ_CHECK(v != NULL || strstr(je.text, "real number overflow") != NULL, "not JSON: %s: %.*s",
                   je.text, (int)(b.len - before), b.data + before);
        json_decref(v);
        if (to == IG_FMT_JSONL)
            FUZZ_CHECK(memchr(b.data + before, '\n', b.len - before) == NULL,
                       "a JSON Lines answer with LF");
    } else if (to == IG_FMT_RECORDIO) {
        struct ig_recordio_dec *d;
        uint32_t n = 0;

        FUZZ_CHECK(ig_recordio_dec_new(1u << 26, &d) == 0, "dec");
        FUZZ_CHECK(ig_recordio_dec_feed(d, b.data + before, b.len - before, count_records, &n,
                                        NULL) == 0 &&
                       ig_recordio_dec_end(d, NULL) == 0 && n == 1,
                   "not one whole record");
        ig_recordio_dec_free(d);
    }
    ig_buf_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum ig_format from, to;
    char *body;
    size_t len;

    if (size < 2)
        return 0;
    from = (enum ig_format)(((data[0] >> 1) & 7) % IG_FMT_COUNT);
    to = (enum ig_format)(((data[0] >> 4) & 7) % IG_FMT_COUNT);
    len = size - 2;
    body = malloc(len ? len : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data + 2, len);
    if (data[0] & 1)
        fuzz_pred(from, to, convert_caps[data[1] >> 4], body, len);
    else
        fuzz_rows(from, to, (uint8_t)(data[0] >> 7), convert_widths[data[1] & 15],
                  convert_caps[data[1] >> 4], body, len);
    free(body);
    return 0;
}

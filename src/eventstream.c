/*
 * eventstream.c - AWS event-stream messages (see eventstream.h).
 */
#include <string.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/eventstream.h"

uint32_t ig_crc32(uint32_t crc, const void *p, size_t n)
{
    static uint32_t table[256];
    static int ready; /* filled once; every entry is a pure function of its index */
    const unsigned char *s = p;

    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;

            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    crc = ~crc;
    while (n--)
        crc = table[(crc ^ *s++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A string header: name length, name, type 7, value length, value. */
static size_t es_header(unsigned char *p, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    p[0] = (unsigned char)nl;
    memcpy(p + 1, name, nl);
    p[1 + nl] = 7;
    p[2 + nl] = (unsigned char)(vl >> 8);
    p[3 + nl] = (unsigned char)vl;
    memcpy(p + 4 + nl, value, vl);
    return 4 + nl + vl;
}

/* One message with three string headers (names and values short and
 * static: they fit the 512 bytes) and <n> bytes of payload. */
static int es_message(struct ig_buf *out, const char *const hdr[6], const void *payload, size_t n)
{
    unsigned char head[512];
    size_t hl = 12, total;
    uint32_t crc;
    int rv;

    for (int i = 0; i < 6; i += 2) {
        if (strlen(hdr[i]) + strlen(hdr[i + 1]) + 4 > sizeof(head) - hl)
            return IG_ERR_TOOBIG;
        hl += es_header(head + hl, hdr[i], hdr[i + 1]);
    }
    if (n > IG_EVENTSTREAM_PART_MAX)
        return IG_ERR_TOOBIG;
    total = hl + n + 4;
    put32(head, (uint32_t)total);
    put32(head + 4, (uint32_t)(hl - 12));
    put32(head + 8, ig_crc32(0, head, 8));
    if ((rv = ig_buf_reserve(out, total)) < 0)
        return rv;
    crc = ig_crc32(ig_crc32(0, head, hl), payload, n);
    ig_buf_append(out, head, hl);
    ig_buf_append(out, payload, n);
    put32(head, crc);
    ig_buf_append(out, head, 4);
    return 0;
}

int ig_eventstream_payload(struct ig_buf *out, const void *p, size_t n)
{
    static const char *const hdr[6] = {":event-type",   "PayloadPart", ":content-type",
                                       "application/octet-stream", ":message-type", "event"};

    return es_message(out, hdr, p, n);
}

int ig_eventstream_payloads(struct ig_buf *out, const void *p, size_t n)
{
    const char *s = p;
    size_t before = out->len;

    while (n > 0) {
        size_t k = n < IG_EVENTSTREAM_PART_MAX ? n : IG_EVENTSTREAM_PART_MAX;
        int rv = ig_eventstream_payload(out, s, k);

        if (rv < 0) {
            out->len = before; /* as it was */
            if (out->data != NULL)
                out->data[before] = '\0';
            return rv;
        }
        s += k;
        n -= k;
    }
    return 0;
}

int ig_eventstream_exception(struct ig_buf *out, const char *type, const char *json)
{
    const char *hdr[6] = {":exception-type", type, ":content-type", "application/json",
                          ":message-type", "exception"};

    return es_message(out, hdr, json, strlen(json));
}

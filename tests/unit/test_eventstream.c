/*
 * test_eventstream.c - AWS event-stream framing: the protocol note's
 * PayloadPart vector (accepted by boto3), CRC-32's check value, parts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/eventstream.h"

static size_t unhex(const char *h, unsigned char *out)
{
    size_t n = 0;

    for (; *h; h++) {
        if (*h == ' ')
            continue;
        sscanf(h, "%2hhx", &out[n++]);
        h++;
    }
    return n;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_crc32_check_value(void **state)
{
    (void)state;
    assert_int_equal(ig_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(ig_crc32(ig_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    assert_int_equal(ig_crc32(0, "", 0), 0);
}

/* sagemaker-protocols.md 1.6: PayloadPart "hi", verified with boto3. */
static void test_payload_vector(void **state)
{
    static const char want_hex[] =
        "0000006b 00000059 99777065 0b3a6576656e742d74797065 07 000b 5061796c6f616450617274 "
        "0d3a636f6e74656e742d74797065 07 0018 6170706c69636174696f6e2f6f637465742d73747265616d "
        "0d3a6d6573736167652d74797065 07 0005 6576656e74 6869 f0e10a16";
    unsigned char want[256];
    size_t n = unhex(want_hex, want);
    struct ig_buf b;

    (void)state;
    ig_buf_init(&b, 1 << 20);
    assert_int_equal(ig_eventstream_payload(&b, "hi", 2), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    ig_buf_clear(&b);
}

/* Walk messages: each prelude and message CRC checks, payloads add up. */
static size_t walk(const unsigned char *p, size_t len, char *payload, size_t *plen)
{
    size_t off = 0, msgs = 0;

    *plen = 0;
    while (off < len) {
        uint32_t total = get32(p + off), hl = get32(p + off + 4);

        assert_true(off + total <= len);
        assert_int_equal(get32(p + off + 8), ig_crc32(0, p + off, 8));
        assert_int_equal(get32(p + off + total - 4), ig_crc32(0, p + off, total - 4));
        memcpy(payload + *plen, p + off + 12 + hl, total - hl - 16);
        *plen += total - hl - 16;
        off += total;
        msgs++;
    }
    return msgs;
}

static void test_parts(void **state)
{
    size_t n = 2 * IG_EVENTSTREAM_PART_MAX + 5, plen;
    char *src = malloc(n), *got = malloc(n);
    struct ig_buf b;

    (void)state;
    for (size_t i = 0; i < n; i++)
        src[i] = (char)(i * 7);
    ig_buf_init(&b, 16 << 20);
    assert_int_equal(ig_eventstream_payloads(&b, src, n), 0);
    assert_int_equal(walk((unsigned char *)b.data, b.len, got, &plen), 3);
    assert_int_equal(plen, n);
    assert_memory_equal(got, src, n);
    /* nothing for nothing */
    ig_buf_reset(&b);
    assert_int_equal(ig_eventstream_payloads(&b, src, 0), 0);
    assert_int_equal(b.len, 0);
    /* a cap that cannot take the third part: the buffer is left as it was */
    ig_buf_clear(&b);
    ig_buf_init(&b, 2 * IG_EVENTSTREAM_PART_MAX + 300);
    assert_int_equal(ig_buf_append(&b, "x", 1), 0);
    assert_int_equal(ig_eventstream_payloads(&b, src, n), IG_ERR_TOOBIG);
    assert_int_equal(b.len, 1);
    assert_int_equal(ig_eventstream_payload(&b, src, IG_EVENTSTREAM_PART_MAX + 1), IG_ERR_TOOBIG);
    ig_buf_clear(&b);
    free(src);
    free(got);
}

static void test_exception(void **state)
{
    static const char json[] = "{\"Message\":\"boom\",\"ErrorCode\":\"StreamBroken\"}";
    struct ig_buf b;
    char got[128];
    size_t plen;

    (void)state;
    ig_buf_init(&b, 1 << 20);
    assert_int_equal(ig_eventstream_exception(&b, "ModelStreamError", json), 0);
    assert_int_equal(walk((unsigned char *)b.data, b.len, got, &plen), 1);
    assert_int_equal(plen, strlen(json));
    assert_memory_equal(got, json, plen);
    assert_non_null(memmem(b.data, b.len, "\x0f:exception-type\x07\x00\x10ModelStreamError", 35));
    ig_buf_clear(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_payload_vector),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_exception),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * eventstream.h - AWS event-stream messages (application/vnd.amazon.eventstream),
 * the framing of InvokeEndpointWithResponseStream's answer.
 *
 * A message: total length, headers length, prelude CRC (big-endian u32s),
 * headers (name length u8, name, type u8; type 7 is a string: length u16,
 * bytes), payload, message CRC; CRC-32 is IEEE's (zlib's). Pure code.
 */
#ifndef INFERGATE_EVENTSTREAM_H
#define INFERGATE_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct ig_buf;

/* Largest payload one message carries here (botocore reads up to 24 MiB). */
#define IG_EVENTSTREAM_PART_MAX ((size_t)1 << 20)

/* CRC-32 (IEEE 802.3, zlib's crc32) of <n> bytes, continuing <crc> (0 to start). */
uint32_t ig_crc32(uint32_t crc, const void *p, size_t n);

/* Append one PayloadPart event (:event-type PayloadPart, :content-type
 * application/octet-stream, :message-type event) carrying <n> bytes.
 * 0, IG_ERR_TOOBIG (out's cap or n > IG_EVENTSTREAM_PART_MAX), IG_ERR_NOMEM. */
int ig_eventstream_payload(struct ig_buf *out, const void *p, size_t n);

/* Append <n> bytes as PayloadPart events of at most IG_EVENTSTREAM_PART_MAX
 * each (none for n == 0). Same results. */
int ig_eventstream_payloads(struct ig_buf *out, const void *p, size_t n);

/* Append an exception event (:exception-type <type>, :content-type
 * application/json, :message-type exception) with the JSON <json>. */
int ig_eventstream_exception(struct ig_buf *out, const char *type, const char *json);

#endif /* INFERGATE_EVENTSTREAM_H */

/*
 * buf.h - a capped, growable byte buffer (curl's dynbuf idea).
 *
 * Every buffer has a hard cap set at init; an append that would pass it
 * fails with IG_ERR_TOOBIG and leaves the buffer as it was. Growth uses
 * ig_try_realloc (sizes here are peer-controlled): IG_ERR_NOMEM on failure.
 */
#ifndef INFERGATE_BUF_H
#define INFERGATE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct ig_buf {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap; /* allocated */
    size_t max; /* hard cap on len */
};

void ig_buf_init(struct ig_buf *b, size_t max);
/* Free the storage; the buffer is empty and reusable afterwards. */
void ig_buf_clear(struct ig_buf *b);
/* Keep the storage, drop the contents. */
void ig_buf_reset(struct ig_buf *b);
/* Make room for <n> more bytes. 0, IG_ERR_TOOBIG, IG_ERR_NOMEM. */
int ig_buf_reserve(struct ig_buf *b, size_t n);
/* The bytes <b> has allocated once ig_buf_reserve(b, <n>) succeeds (b->cap
 * when no growth is needed; 0 when <n> more would pass b->max): for a caller
 * that charges a budget before the buffer grows. */
size_t ig_buf_grown_cap(const struct ig_buf *b, size_t n);
/* 0, IG_ERR_TOOBIG, IG_ERR_NOMEM. */
int ig_buf_append(struct ig_buf *b, const void *p, size_t n);
int ig_buf_append_str(struct ig_buf *b, const char *s);
int ig_buf_append_char(struct ig_buf *b, char c);
int ig_buf_printf(struct ig_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a double in the shortest form that reads back to the same value
 * (ig_fmt_double). */
int ig_buf_append_double(struct ig_buf *b, double v);
/* Append a float32 in the shortest form that reads back to it (ig_fmt_float). */
int ig_buf_append_float(struct ig_buf *b, float v);
/* Hand the storage to the caller (free() it); the buffer becomes empty. */
char *ig_buf_take(struct ig_buf *b, size_t *len);

/*
 * Write <v> into <out> exactly as Python's repr(float) does: the shortest
 * digits that strtod() reads back to exactly <v>; positional notation for
 * 1e-4 <= |v| < 1e16 with ".0" on integral values ("3.0", "900.0", "0.25",
 * "0.0001"), scientific otherwise ("1e+16", "1.5e-05"). Non-finite values
 * print as "NaN", "Infinity", "-Infinity". <out> must hold at least
 * IG_FMT_DOUBLE_MAX bytes, any of which may be written (the digits go out
 * in 8-byte blocks). Returns the length written (without the NUL).
 */
#define IG_FMT_DOUBLE_MAX 32
size_t ig_fmt_double(char *out, double v);

/* <v> in decimal into <out> (at most IG_FMT_U64_MAX bytes, no NUL).
 * Returns the length written. */
#define IG_FMT_U64_MAX 20
size_t ig_fmt_u64(char *out, uint64_t v);
/* The same result through printf and strtod only: the reference the exact
 * integer path of ig_fmt_double is tested against, and its fallback. */
size_t ig_fmt_double_printf(char *out, double v);

/*
 * The same for a float32: the shortest digits that read back to exactly
 * <v> both through strtof() and through strtod() (or ig_parse_double)
 * narrowed to float, which rounds twice (so once in a while one digit more
 * than strtof alone needs); among those of that length the one nearest <v>.
 * Laid out as ig_fmt_double does ("0.1", "12.5", "3e-05", "16777216.0",
 * "3.4028235e+38", "NaN", "-Infinity"). <out> holds at least
 * IG_FMT_FLOAT_MAX bytes, any of which may be written. Returns the length
 * written (without the NUL).
 */
#define IG_FMT_FLOAT_MAX 24
size_t ig_fmt_float(char *out, float v);
/* The same result through printf and strtof/strtod only (the reference and
 * the fallback of ig_fmt_float's integer path). */
size_t ig_fmt_float_printf(char *out, float v);

/*
 * Parse exactly the bytes [s, s + n) as a decimal number:
 * [+-]digits[.digits][(e|E)[+-]digits], digits on at least one side of the
 * dot, of any length. The result is what strtod() returns for the same text
 * (correctly rounded), computed without strtod for the common short
 * numbers; a long text is read in bounded space (only its first 780
 * significant digits, and whether any other is nonzero, decide the
 * rounding). No spaces, hex, inf or nan. Returns 0, or -1 when the text is
 * not such a number. Overflow gives +-HUGE_VAL as strtod does: callers
 * check isfinite().
 */
int ig_parse_double(const char *s, size_t n, double *out);

/*
 * The field at the start of [s, s + n) that ends at the first <sep> (or
 * at the end), parsed: *len gets its length, and the result is
 * ig_parse_double's on it (a CSV field: ig_parse_double(s, *len, out)).
 * A short plain number followed by <sep> is read in one pass, without a
 * scan for <sep> first.
 */
int ig_parse_double_field(const char *s, size_t n, char sep, size_t *len, double *out);

/*
 * All the fields of [s, s + n) separated by <sep> (a CSV row), each read
 * as ig_parse_double_field does, into vals[0 .. *count): 0 when every
 * field is a number ig_parse_double reads as finite and there are at most
 * <max>, else -1 (vals then holds garbage; the caller reads the row its
 * own way). An empty text is one empty field: -1.
 */
int ig_parse_double_row(const char *s, size_t n, char sep, double *vals, size_t max,
                        size_t *count);

#endif /* INFERGATE_BUF_H */

/*
 * jpath.h - the JSONPath subset of SageMaker Batch Transform's InputFilter
 * and OutputFilter, applied one record at a time (the streaming transform's
 * X-Infergate-Input-Filter / X-Infergate-Output-Filter headers).
 *
 * Pure code (house rule 4): no event loop, no globals, no logging. A parsed
 * filter is immutable: any number of threads may apply one at once.
 *
 * Grammar (no whitespace except inside a quoted name; at most 63
 * characters, SageMaker's limit):
 *   $                  the whole record
 *   .name              an object member, name [A-Za-z_][A-Za-z0-9_]*
 *   ['name'] ["name"]  an object member, any bytes but the quote (no
 *                      escapes: the bytes are the member's decoded name)
 *   [i]                element i; negative from the end (-1 = last);
 *                      i fits in 32 bits
 *   [i:j] [i:] [:j]    a slice, Python semantics (bounds clamped, never
 *                      out of range; negatives count from the end)
 *   [*]                every element (the slice [:])
 *   [a,b,...]          a union of indices and slices, kept in the given
 *                      order (duplicates kept): $[0,5:] is element 0 then
 *                      elements 5 onwards; at most 64 members
 *   ['a','b',...]      several members of an object (JSON only): an object
 *                      of those members, in the given order
 * Member and index steps chain freely ($.a[0].b); a slice, a wildcard, a
 * union or a list of names ends the filter.
 */
#ifndef INFERGATE_JPATH_H
#define INFERGATE_JPATH_H

#include <stddef.h>

struct ig_buf;
struct ig_jpath; /* a parsed filter (opaque) */

/* The longest expression accepted (SageMaker's limit). */
#define IG_JPATH_EXPR_MAX 63
/* The deepest nesting of a JSON record (open objects and arrays). */
#define IG_JPATH_JSON_DEPTH 64

/*
 * Parse <expr> (NUL-terminated). Returns 0 and a new filter in *out, or
 * IG_ERR_INVALID with a one-sentence message in <err> naming the
 * expression and the place ("Filter $[1:x]: expected a number, ',' or ']'
 * at character 5."; characters count from 1). <err> may be NULL.
 */
int ig_jpath_parse(const char *expr, struct ig_jpath **out, char *err, size_t errlen);
/* NULL ok. */
void ig_jpath_free(struct ig_jpath *p);
/* 1 when the filter has member steps ($.a, $['a','b']): only valid on JSON
 * records; 0 otherwise. */
int ig_jpath_has_members(const struct ig_jpath *p);
/* The expression as given to ig_jpath_parse. */
const char *ig_jpath_expr(const struct ig_jpath *p);

/*
 * Apply to one CSV record <rec> (<len> bytes: one line without its
 * terminator; RFC 4180 fields, a quoted field may hold commas and "").
 * $ -> the record as is (not checked); $[i], slices, unions, [*] -> the
 * selected fields joined by ',', each copied byte for byte (quotes and
 * any spaces around them kept); an empty selection appends nothing.
 * Appends to <out>. Returns 0, or IG_ERR_INVALID with a message in <err>
 * when the filter has member steps, indexes inside a column ($[0][1]), an
 * index is out of range ("Filter $[7]: the record has 5 columns."), or
 * the record's quoting is malformed; IG_ERR_TOOBIG / IG_ERR_NOMEM from
 * <out>. On error <out> is as it was.
 */
int ig_jpath_csv(const struct ig_jpath *p, const char *rec, size_t len, struct ig_buf *out,
                 char *err, size_t errlen);

/*
 * Apply to one JSON value <rec> (<len> bytes of JSON text, any value, at
 * most IG_JPATH_JSON_DEPTH levels deep). The whole text is checked as RFC
 * 8259 JSON, as jansson reads it (UTF-8, escapes, no \u0000), except that
 * numbers of any size are accepted and repeated keys are refused only in
 * an object the filter looks a member up in.
 * $ -> the value; $.a.b -> that member's value; $[i] -> that element; a
 * slice, wildcard or union -> a JSON array of the selected elements;
 * ['a','b'] -> an object of those members. The output is compact JSON
 * made of the selected values' own text, byte for byte but for the
 * whitespace between tokens (numbers and string escapes stay as sent).
 * Appends to <out>. Returns 0, or IG_ERR_INVALID with a message in <err>:
 * not valid JSON, nested too deep, a member missing ("Filter $.features:
 * no member features.") or present twice in the object looked in, an
 * index out of range, a member step on a non-object, an index on a
 * non-array; IG_ERR_TOOBIG / IG_ERR_NOMEM from <out>. On error <out> is as
 * it was.
 */
int ig_jpath_json(const struct ig_jpath *p, const char *rec, size_t len, struct ig_buf *out,
                  char *err, size_t errlen);

#endif /* INFERGATE_JPATH_H */

/*
 * json_scan.h - find where a JSON value ends, validating it on the way,
 * without building a tree (RFC 8259's grammar: matched brackets, keys that
 * are strings, numbers, strings and literals as the grammar has them;
 * strings of well-formed UTF-8).
 * Pure code; memory O(1) beside the recursion, which stops at
 * IG_JSON_SCAN_DEPTH levels of nesting (deeper is refused).
 */
#ifndef INFERGATE_JSON_SCAN_H
#define INFERGATE_JSON_SCAN_H

#define IG_JSON_SCAN_DEPTH 64

/* The end of the JSON value at <p> (leading whitespace skipped; p < end),
 * or NULL when there is none there. */
const char *ig_json_skip(const char *p, const char *end);

/* <p> past any JSON whitespace (space, tab, CR, LF), at most <end>. */
const char *ig_json_ws(const char *p, const char *end);

#endif /* INFERGATE_JSON_SCAN_H */

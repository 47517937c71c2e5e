/*
 * jpath.c - SageMaker's JSONPath subset for InputFilter / OutputFilter,
 * applied to one CSV or JSON record at a time.
 *
 * A parsed filter is a chain of steps (member or single index) and at most
 * one final selector (a union of indices and slices, or a list of member
 * names). Nothing is built per record: a CSV record is read field by field
 * in place, a JSON record is checked once by a small validating scanner
 * (no jansson tree, whose memory is ~80 times the text) and then walked by
 * a faster scanner that trusts it. What is selected is copied from the
 * record's own text, so numbers and escapes reach the output as the client
 * sent them.
 *
 * Slices and unions on a sequence (CSV fields, JSON array elements) run in
 * two passes: count the elements (so that negative indices resolve), then
 * find the first and last element of each selected range in one more pass
 * (the requests sorted by element), and copy each range as one span: in a
 * CSV record fields i..j are one run of bytes, commas included; in a JSON
 * array elements i..j are one run too, whose whitespace the copy drops.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/jpath.h"

/* Members of a union (unreachable within 63 characters, kept as a bound). */
#define JPATH_UNION_MAX 64
/* Steps: "$" then ".a" thirty-one times is the most 63 characters hold. */
#define JPATH_STEPS_MAX 32

enum jpath_step_kind { JPATH_MEMBER, JPATH_INDEX };
enum jpath_sel_kind { JPATH_SEL_NONE, JPATH_SEL_RANGES, JPATH_SEL_NAMES };
enum jpath_item_kind { JPATH_ITEM_INDEX, JPATH_ITEM_SLICE, JPATH_ITEM_NAME };

/* A member name is expr[off, off + len). */
struct jpath_step {
    uint8_t kind; /* enum jpath_step_kind */
    uint8_t at;   /* offset in expr where the step starts */
    uint8_t off, len;
    int32_t index;
};

/* One member of the final selector: an index, a slice, or a name. */
struct jpath_item {
    uint8_t kind; /* enum jpath_item_kind */
    uint8_t has_a, has_b;
    uint8_t off, len; /* JPATH_ITEM_NAME: the name in expr */
    int32_t a, b;     /* index (a), or slice bounds */
};

struct ig_jpath {
    char expr[IG_JPATH_EXPR_MAX + 1];
    char shown[IG_JPATH_EXPR_MAX + 1]; /* expr with control bytes as '?', for messages */
    uint8_t nsteps;
    uint8_t sel;    /* enum jpath_sel_kind */
    uint8_t sel_at; /* offset in expr where the selector starts */
    uint8_t nitems;
    uint8_t members; /* a member step or a list of names */
    struct jpath_step steps[JPATH_STEPS_MAX];
    struct jpath_item items[JPATH_UNION_MAX];
};


/* ------------------------------------------------------------------ */
/* Parsing                                                            */

struct jpath_parser {
    const char *s;
    size_t n, pos;
    struct ig_jpath *p;
    char *err;
    size_t errlen;
};

/* "Filter <expr>: expected <what> at character N." (or "at the end."). */
static int jpath_expected(const struct jpath_parser *ps, size_t at, const char *what)
{
    if (at >= ps->n)
        ig_errf(ps->err, ps->errlen, "Filter %s: expected %s at the end.", ps->p->shown, what);
    else
        ig_errf(ps->err, ps->errlen, "Filter %s: expected %s at character %zu.", ps->p->shown,
                  what, at + 1);
    return IG_ERR_INVALID;
}

static int jpath_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int jpath_is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int jpath_is_name_char(char c)
{
    return jpath_is_name_start(c) || jpath_is_digit(c);
}

/* An integer at ps->pos: -?[0-9]+, within int32. */
static int jpath_parse_int(struct jpath_parser *ps, int32_t *out)
{
    size_t at = ps->pos;
    int neg = 0;
    int64_t v = 0;

    if (ps->s[ps->pos] == '-') {
        neg = 1;
        ps->pos++;
    }
    if (!jpath_is_digit(ps->s[ps->pos]))
        return jpath_expected(ps, ps->pos, "a digit");
    while (jpath_is_digit(ps->s[ps->pos])) {
        if (v <= INT64_C(1) << 32)
            v = v * 10 + (ps->s[ps->pos] - '0');
        ps->pos++;
    }
    if (neg)
        v = -v;
    if (v < INT32_MIN || v > INT32_MAX) {
        ig_errf(ps->err, ps->errlen,
                  "Filter %s: the index at character %zu does not fit in 32 bits.", ps->p->shown,
                  at + 1);
        return IG_ERR_INVALID;
    }
    *out = (int32_t)v;
    return 0;
}

/* A quoted name at ps->pos (the quote): its bytes, without escapes. */
static int jpath_parse_quoted(struct jpath_parser *ps, uint8_t *off, uint8_t *len)
{
    char q = ps->s[ps->pos];
    size_t at = ps->pos;
    const char *end = memchr(ps->s + at + 1, q, ps->n - at - 1);

    if (end == NULL) {
        ig_errf(ps->err, ps->errlen, "Filter %s: the quoted name at character %zu is not closed.",
                  ps->p->shown, at + 1);
        return IG_ERR_INVALID;
    }
    *off = (uint8_t)(at + 1);
    *len = (uint8_t)((size_t)(end - ps->s) - at - 1);
    ps->pos = (size_t)(end - ps->s) + 1;
    return 0;
}

static int jpath_add_step(struct jpath_parser *ps, const struct jpath_step *st)
{
    struct ig_jpath *p = ps->p;

    if (p->nsteps >= JPATH_STEPS_MAX) { /* not reachable within 63 characters */
        ig_errf(ps->err, ps->errlen, "Filter %s: too many steps.", p->shown);
        return IG_ERR_INVALID;
    }
    p->steps[p->nsteps++] = *st;
    return 0;
}

static int jpath_add_item(struct jpath_parser *ps, const struct jpath_item *it)
{
    struct ig_jpath *p = ps->p;

    if (p->nitems >= JPATH_UNION_MAX) {
        ig_errf(ps->err, ps->errlen, "Filter %s: more than %d members in a union.", p->shown,
                  JPATH_UNION_MAX);
        return IG_ERR_INVALID;
    }
    p->items[p->nitems++] = *it;
    return 0;
}

/* ['a'] or ['a','b',...] from ps->pos (the first quote). */
static int jpath_parse_names(struct jpath_parser *ps, size_t at)
{
    struct ig_jpath *p = ps->p;
    int rv;

    for (;;) {
        struct jpath_item it = {.kind = JPATH_ITEM_NAME};

        if (ps->s[ps->pos] != '\'' && ps->s[ps->pos] != '"')
            return jpath_expected(ps, ps->pos, "a quoted name");
        rv = jpath_parse_quoted(ps, &it.off, &it.len);
        if (rv < 0)
            return rv;
        for (unsigned i = 0; i < p->nitems; i++)
            if (p->items[i].len == it.len && memcmp(p->expr + p->items[i].off, p->expr + it.off,
                                                    it.len) == 0) {
                ig_errf(ps->err, ps->errlen, "Filter %s: member %.*s is named twice.", p->shown,
                          (int)it.len, p->shown + it.off);
                return IG_ERR_INVALID;
            }
        rv = jpath_add_item(ps, &it);
        if (rv < 0)
            return rv;
        if (ps->s[ps->pos] == ']')
            break;
        if (ps->s[ps->pos] != ',')
            return jpath_expected(ps, ps->pos, "',' or ']'");
        ps->pos++;
    }
    ps->pos++;
    p->members = 1;
    if (p->nitems == 1) { /* ['a'] is .a */
        struct jpath_step st = {.kind = JPATH_MEMBER, .at = (uint8_t)at, .off = p->items[0].off,
                                .len = p->items[0].len};

        p->nitems = 0;
        return jpath_add_step(ps, &st);
    }
    p->sel = JPATH_SEL_NAMES;
    p->sel_at = (uint8_t)at;
    return 0;
}

/* One index or slice of a bracket, at ps->pos. */
static int jpath_parse_range(struct jpath_parser *ps, struct jpath_item *it, int first)
{
    const char *s = ps->s;
    int rv;

    if (s[ps->pos] != '-' && s[ps->pos] != ':' && !jpath_is_digit(s[ps->pos]))
        return jpath_expected(ps, ps->pos,
                              first ? "an index, a slice or a quoted name" : "an index or a slice");
    it->kind = JPATH_ITEM_INDEX;
    if (s[ps->pos] != ':') {
        rv = jpath_parse_int(ps, &it->a);
        if (rv < 0)
            return rv;
        it->has_a = 1;
        if (s[ps->pos] != ':') {
            if (s[ps->pos] != ',' && s[ps->pos] != ']')
                return jpath_expected(ps, ps->pos, "':', ',' or ']'");
            return 0;
        }
    }
    it->kind = JPATH_ITEM_SLICE;
    ps->pos++; /* ':' */
    if (s[ps->pos] == '-' || jpath_is_digit(s[ps->pos])) {
        rv = jpath_parse_int(ps, &it->b);
        if (rv < 0)
            return rv;
        it->has_b = 1;
        if (s[ps->pos] != ',' && s[ps->pos] != ']')
            return jpath_expected(ps, ps->pos, "',' or ']'");
        return 0;
    }
    if (s[ps->pos] != ',' && s[ps->pos] != ']')
        return jpath_expected(ps, ps->pos, "a number, ',' or ']'");
    return 0;
}

/* A bracket at ps->pos ('['). */
static int jpath_parse_bracket(struct jpath_parser *ps)
{
    struct ig_jpath *p = ps->p;
    size_t at = ps->pos;
    int rv;

    ps->pos++;
    if (ps->s[ps->pos] == '\'' || ps->s[ps->pos] == '"')
        return jpath_parse_names(ps, at);
    if (ps->s[ps->pos] == '*' && ps->s[ps->pos + 1] == ']') {
        struct jpath_item it = {.kind = JPATH_ITEM_SLICE};

        ps->pos += 2;
        p->sel = JPATH_SEL_RANGES;
        p->sel_at = (uint8_t)at;
        return jpath_add_item(ps, &it);
    }
    for (int first = 1;; first = 0) {
        struct jpath_item it = {0};

        rv = jpath_parse_range(ps, &it, first);
        if (rv < 0)
            return rv;
        rv = jpath_add_item(ps, &it);
        if (rv < 0)
            return rv;
        if (ps->s[ps->pos++] == ']')
            break;
    }
    if (p->nitems == 1 && p->items[0].kind == JPATH_ITEM_INDEX) { /* [i] is a step */
        struct jpath_step st = {.kind = JPATH_INDEX, .at = (uint8_t)at, .index = p->items[0].a};

        p->nitems = 0;
        return jpath_add_step(ps, &st);
    }
    p->sel = JPATH_SEL_RANGES;
    p->sel_at = (uint8_t)at;
    return 0;
}

static int jpath_parse_steps(struct jpath_parser *ps)
{
    struct ig_jpath *p = ps->p;
    int rv;

    if (ps->s[0] != '$')
        return jpath_expected(ps, 0, "'$'");
    ps->pos = 1;
    while (ps->pos < ps->n) {
        char c = ps->s[ps->pos];

        if (p->sel != JPATH_SEL_NONE)
            return jpath_expected(ps, ps->pos, "the end after a slice, union or list of names");
        if (c == '.') {
            struct jpath_step st = {.kind = JPATH_MEMBER, .at = (uint8_t)ps->pos};

            ps->pos++;
            if (!jpath_is_name_start(ps->s[ps->pos]))
                return jpath_expected(ps, ps->pos, "a member name");
            st.off = (uint8_t)ps->pos;
            while (jpath_is_name_char(ps->s[ps->pos]))
                ps->pos++;
            st.len = (uint8_t)(ps->pos - st.off);
            p->members = 1;
            rv = jpath_add_step(ps, &st);
        } else if (c == '[') {
            rv = jpath_parse_bracket(ps);
        } else {
            return jpath_expected(ps, ps->pos, "'.' or '['");
        }
        if (rv < 0)
            return rv;
    }
    return 0;
}

int ig_jpath_parse(const char *expr, struct ig_jpath **out, char *err, size_t errlen)
{
    struct jpath_parser ps = {.s = expr, .err = err, .errlen = errlen};
    struct ig_jpath *p;
    size_t n = strnlen(expr, IG_JPATH_EXPR_MAX + 1);
    int rv;

    if (n > IG_JPATH_EXPR_MAX) {
        char shown[IG_JPATH_EXPR_MAX + 1];

        for (size_t i = 0; i < IG_JPATH_EXPR_MAX; i++)
            shown[i] = (unsigned char)expr[i] < 0x20 || expr[i] == 0x7f ? '?' : expr[i];
        shown[IG_JPATH_EXPR_MAX] = '\0';
        ig_errf(err, errlen, "Filter %s...: longer than %d characters.", shown,
                  IG_JPATH_EXPR_MAX);
        return IG_ERR_INVALID;
    }
    if (n == 0) {
        ig_errf(err, errlen, "Filter '' is empty: use $ for the whole record.");
        return IG_ERR_INVALID;
    }
    p = ig_xcalloc(1, sizeof(*p));
    memcpy(p->expr, expr, n);
    for (size_t i = 0; i < n; i++)
        p->shown[i] = (unsigned char)expr[i] < 0x20 || expr[i] == 0x7f ? '?' : expr[i];
    ps.s = p->expr; /* NUL-padded: a look one byte past the end reads '\0' */
    ps.n = n;
    ps.p = p;
    rv = jpath_parse_steps(&ps);
    if (rv < 0) {
        free(p);
        return rv;
    }
    *out = p;
    return 0;
}

void ig_jpath_free(struct ig_jpath *p)
{
    free(p);
}

int ig_jpath_has_members(const struct ig_jpath *p)
{
    return p->members;
}

const char *ig_jpath_expr(const struct ig_jpath *p)
{
    return p->expr;
}

/* ------------------------------------------------------------------ */
/* Selecting ranges of a sequence (CSV fields, JSON array elements)     */

/* Next element of a sequence: 1 and its span, 0 at the end, <0 on a
 * malformed element (message already written). */
typedef int (*jpath_next_fn)(void *it, size_t *start, size_t *end);

/* The element span each selector item covers, once resolved. */
struct jpath_spans {
    int64_t a[JPATH_UNION_MAX], b[JPATH_UNION_MAX]; /* element range [a, b) */
    size_t start[JPATH_UNION_MAX], end[JPATH_UNION_MAX];
};

/* Which element's start (or end) item <item> needs. */
struct jpath_req {
    int64_t elem;
    uint8_t item;
    uint8_t is_end;
};

/*
 * Resolve <items> against a sequence of <n> elements. Returns 0, or the
 * position (1-based) of the first index out of range.
 */
static unsigned jpath_resolve(const struct jpath_item *items, unsigned nitems, int64_t n,
                              struct jpath_spans *sp)
{
    for (unsigned i = 0; i < nitems; i++) {
        const struct jpath_item *it = &items[i];
        int64_t a = it->a, b = it->b;

        if (it->kind == JPATH_ITEM_INDEX) {
            if (a < 0)
                a += n;
            if (a < 0 || a >= n)
                return i + 1;
            sp->a[i] = a;
            sp->b[i] = a + 1;
            continue;
        }
        a = it->has_a ? a : 0;
        b = it->has_b ? b : n;
        if (a < 0)
            a = a + n < 0 ? 0 : a + n;
        if (b < 0)
            b = b + n < 0 ? 0 : b + n;
        sp->a[i] = a > n ? n : a;
        sp->b[i] = b > n ? n : b;
    }
    return 0;
}

/* Fill sp->start / sp->end with one more pass over the sequence. */
static int jpath_locate(unsigned nitems, struct jpath_spans *sp, jpath_next_fn next, void *it)
{
    struct jpath_req req[2 * JPATH_UNION_MAX];
    unsigned nreq = 0, k = 0;
    int64_t e = 0;

    for (unsigned i = 0; i < nitems; i++) {
        if (sp->a[i] >= sp->b[i])
            continue;
        req[nreq++] = (struct jpath_req){sp->a[i], (uint8_t)i, 0};
        req[nreq++] = (struct jpath_req){sp->b[i] - 1, (uint8_t)i, 1};
    }
    /* Insertion sort by element: at most 128 requests. */
    for (unsigned i = 1; i < nreq; i++) {
        struct jpath_req r = req[i];
        unsigned j = i;

        for (; j > 0 && req[j - 1].elem > r.elem; j--)
            req[j] = req[j - 1];
        req[j] = r;
    }
    for (; k < nreq; e++) {
        size_t s, en;
        int rv = next(it, &s, &en);

        if (rv <= 0) /* the count pass saw them all: cannot happen */
            return rv < 0 ? rv : IG_ERR_INVALID;
        for (; k < nreq && req[k].elem == e; k++) {
            if (req[k].is_end)
                sp->end[req[k].item] = en;
            else
                sp->start[req[k].item] = s;
        }
    }
    return 0;
}

static void jpath_restore(struct ig_buf *out, size_t len)
{
    out->len = len;
    if (out->data != NULL)
        out->data[len] = '\0';
}

static int jpath_out_fail(const struct ig_jpath *p, int rv, const struct ig_buf *out, char *err,
                          size_t errlen)
{
    if (rv == IG_ERR_TOOBIG)
        ig_errf(err, errlen, "Filter %s: the selection is larger than the %zu bytes allowed.",
                  p->shown, out->max);
    else if (rv == IG_ERR_NOMEM)
        ig_errf(err, errlen, "Filter %s: out of memory.", p->shown);
    return rv;
}

/* ------------------------------------------------------------------ */
/* CSV                                                                */

struct jpath_csv_it {
    const struct ig_jpath *p;
    const char *s;
    size_t len, pos;
    int64_t col; /* fields returned so far */
    int done;
    char *err;
    size_t errlen;
};

/* Bytes that end the scan of an unquoted field. */
static const unsigned char jpath_csv_stop[256] = {[','] = 1, ['"'] = 1};

static int jpath_csv_bad(struct jpath_csv_it *c, const char *what)
{
    ig_errf(c->err, c->errlen, "Filter %s: column %lld of the record has %s.", c->p->shown,
              (long long)c->col + 1, what);
    return IG_ERR_INVALID;
}

/* The next field as its raw bytes between commas (spaces and quotes kept),
 * checked as codec_csv reads it. */
static int jpath_csv_next(void *vit, size_t *start, size_t *end)
{
    struct jpath_csv_it *c = vit;
    const char *s = c->s;
    size_t len = c->len, p = c->pos;

    if (c->done)
        return 0;
    *start = p;
    while (p < len && (s[p] == ' ' || s[p] == '\t'))
        p++;
    if (p < len && s[p] == '"') {
        for (p++;;) {
            const char *q = memchr(s + p, '"', len - p);

            if (q == NULL)
                return jpath_csv_bad(c, "an unterminated quoted field");
            p = (size_t)(q - s) + 1;
            if (p < len && s[p] == '"') {
                p++; /* "" is an escaped quote */
                continue;
            }
            break;
        }
        while (p < len && (s[p] == ' ' || s[p] == '\t'))
            p++;
        if (p < len && s[p] != ',')
            return jpath_csv_bad(c, "characters after its closing quote");
    } else {
        while (p < len && !jpath_csv_stop[(unsigned char)s[p]])
            p++;
        if (p < len && s[p] == '"')
            return jpath_csv_bad(c, "a quote in an unquoted field");
    }
    *end = p;
    if (p < len)
        c->pos = p + 1; /* past the comma */
    else
        c->done = 1;
    c->col++;
    return 1;
}

int ig_jpath_csv(const struct ig_jpath *p, const char *rec, size_t len, struct ig_buf *out,
                 char *err, size_t errlen)
{
    struct jpath_csv_it c = {.p = p, .s = rec, .len = len, .err = err, .errlen = errlen};
    struct jpath_item one;
    const struct jpath_item *items = p->items;
    unsigned nitems = p->nitems, bad;
    struct jpath_spans sp;
    size_t saved = out->len, s, e;
    int rv = 0, any = 0;

    if (p->members) {
        ig_errf(err, errlen, "Filter %s selects a member; CSV records have only columns.",
                  p->shown);
        return IG_ERR_INVALID;
    }
    if (p->nsteps > 1 || (p->nsteps == 1 && p->sel != JPATH_SEL_NONE)) {
        ig_errf(err, errlen, "Filter %s selects inside a column; CSV records have only columns.",
                  p->shown);
        return IG_ERR_INVALID;
    }
    if (p->nsteps == 0 && p->sel == JPATH_SEL_NONE) {
        rv = ig_buf_append(out, rec, len);
        return rv < 0 ? jpath_out_fail(p, rv, out, err, errlen) : 0;
    }
    if (p->nsteps == 1) { /* $[i] */
        one = (struct jpath_item){.kind = JPATH_ITEM_INDEX, .has_a = 1, .a = p->steps[0].index};
        items = &one;
        nitems = 1;
    }
    while ((rv = jpath_csv_next(&c, &s, &e)) > 0)
        ;
    if (rv < 0)
        return rv;
    bad = jpath_resolve(items, nitems, c.col, &sp);
    if (bad) {
        ig_errf(err, errlen, "Filter %s: the record has %lld column%s.", p->shown,
                  (long long)c.col, c.col == 1 ? "" : "s");
        return IG_ERR_INVALID;
    }
    c.pos = 0;
    c.col = 0;
    c.done = 0;
    rv = jpath_locate(nitems, &sp, jpath_csv_next, &c);
    for (unsigned i = 0; rv == 0 && i < nitems; i++) {
        if (sp.a[i] >= sp.b[i])
            continue;
        if (any++)
            rv = ig_buf_append_char(out, ',');
        if (rv == 0)
            rv = ig_buf_append(out, rec + sp.start[i], sp.end[i] - sp.start[i]);
    }
    if (rv < 0) {
        jpath_restore(out, saved);
        return jpath_out_fail(p, rv, out, err, errlen);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* JSON: the validating scanner                                       */

struct jpath_jv {
    const unsigned char *s;
    size_t len, pos;
    const char *why; /* what is wrong, at pos */
};

#define JPATH_JV_DEEP (-100) /* not an IG_ERR_* value */

/* A byte of a string that needs no attention: 0x20..0x7f but '"' and '\\'. */
#define JPATH_STR_PLAIN(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')

static int jpath_is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void jpath_jv_ws(struct jpath_jv *v)
{
    while (v->pos < v->len && jpath_is_ws(v->s[v->pos]))
        v->pos++;
}

static int jpath_jv_fail(struct jpath_jv *v, const char *why)
{
    v->why = why;
    return IG_ERR_INVALID;
}

static int jpath_hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* \uXXXX at v->pos (the backslash), with its low surrogate if any. */
static int jpath_jv_uescape(struct jpath_jv *v)
{
    const unsigned char *s = v->s;
    uint32_t cp, lo;

    if (v->len - v->pos < 6 || jpath_hex4(s + v->pos + 2, &cp) < 0)
        return jpath_jv_fail(v, "invalid \\u escape");
    if (cp == 0)
        return jpath_jv_fail(v, "\\u0000 in a string");
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return jpath_jv_fail(v, "invalid \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (v->len - v->pos < 12 || s[v->pos + 6] != '\\' || s[v->pos + 7] != 'u' ||
            jpath_hex4(s + v->pos + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return jpath_jv_fail(v, "invalid \\u escape");
        v->pos += 6;
    }
    v->pos += 6;
    return 0;
}

/* One UTF-8 sequence of 2 to 4 bytes at v->pos. */
static int jpath_jv_utf8(struct jpath_jv *v)
{
    const unsigned char *s = v->s + v->pos;
    size_t left = v->len - v->pos, n;
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return jpath_jv_fail(v, "invalid UTF-8");
    }
    if (left < n || s[1] < lo || s[1] > hi)
        return jpath_jv_fail(v, "invalid UTF-8");
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return jpath_jv_fail(v, "invalid UTF-8");
    v->pos += n;
    return 0;
}

static int jpath_jv_string(struct jpath_jv *v)
{
    const unsigned char *s = v->s;

    v->pos++; /* the opening quote */
    for (;;) {
        unsigned char c;

        while (v->pos < v->len && JPATH_STR_PLAIN(s[v->pos]))
            v->pos++;
        if (v->pos >= v->len)
            return jpath_jv_fail(v, "unterminated string");
        c = s[v->pos];
        if (c == '"') {
            v->pos++;
            return 0;
        }
        if (c == '\\') {
            unsigned char e = v->pos + 1 < v->len ? s[v->pos + 1] : 0;

            if (e == 'u') {
                if (jpath_jv_uescape(v) < 0)
                    return IG_ERR_INVALID;
            } else if (e && strchr("\"\\/bfnrt", e) != NULL) {
                v->pos += 2;
            } else {
                return jpath_jv_fail(v, "invalid escape");
            }
        } else if (c < 0x20) {
            return jpath_jv_fail(v, "control character in a string");
        } else if (jpath_jv_utf8(v) < 0) {
            return IG_ERR_INVALID;
        }
    }
}

static int jpath_jv_digits(struct jpath_jv *v)
{
    size_t at = v->pos;

    while (v->pos < v->len && jpath_is_digit((char)v->s[v->pos]))
        v->pos++;
    return v->pos > at ? 0 : jpath_jv_fail(v, "invalid number");
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, of any size. */
static int jpath_jv_number(struct jpath_jv *v)
{
    const unsigned char *s = v->s;

    if (s[v->pos] == '-')
        v->pos++;
    if (v->pos < v->len && s[v->pos] == '0')
        v->pos++;
    else if (jpath_jv_digits(v) < 0)
        return IG_ERR_INVALID;
    if (v->pos < v->len && s[v->pos] == '.') {
        v->pos++;
        if (jpath_jv_digits(v) < 0)
            return IG_ERR_INVALID;
    }
    if (v->pos < v->len && (s[v->pos] == 'e' || s[v->pos] == 'E')) {
        v->pos++;
        if (v->pos < v->len && (s[v->pos] == '+' || s[v->pos] == '-'))
            v->pos++;
        if (jpath_jv_digits(v) < 0)
            return IG_ERR_INVALID;
    }
    return 0;
}

static int jpath_jv_word(struct jpath_jv *v, const char *w)
{
    size_t n = strlen(w);

    if (v->len - v->pos < n || memcmp(v->s + v->pos, w, n) != 0)
        return jpath_jv_fail(v, "invalid literal");
    v->pos += n;
    return 0;
}

static int jpath_jv_value(struct jpath_jv *v, int depth);

/* An object or array at v->pos; <depth> is the nesting of its contents. */
static int jpath_jv_container(struct jpath_jv *v, int depth)
{
    unsigned char close = v->s[v->pos] == '{' ? '}' : ']';
    int rv;

    if (depth > IG_JPATH_JSON_DEPTH)
        return JPATH_JV_DEEP;
    v->pos++;
    jpath_jv_ws(v);
    if (v->pos < v->len && v->s[v->pos] == close) {
        v->pos++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (v->pos >= v->len || v->s[v->pos] != '"')
                return jpath_jv_fail(v, "expected a member name");
            rv = jpath_jv_string(v);
            if (rv < 0)
                return rv;
            jpath_jv_ws(v);
            if (v->pos >= v->len || v->s[v->pos] != ':')
                return jpath_jv_fail(v, "expected ':'");
            v->pos++;
        }
        rv = jpath_jv_value(v, depth);
        if (rv < 0)
            return rv;
        jpath_jv_ws(v);
        if (v->pos < v->len && v->s[v->pos] == close) {
            v->pos++;
            return 0;
        }
        if (v->pos >= v->len || v->s[v->pos] != ',')
            return jpath_jv_fail(v, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        v->pos++;
        jpath_jv_ws(v);
    }
}

static int jpath_jv_value(struct jpath_jv *v, int depth)
{
    jpath_jv_ws(v);
    if (v->pos >= v->len)
        return jpath_jv_fail(v, "expected a value");
    switch (v->s[v->pos]) {
    case '{':
    case '[':
        return jpath_jv_container(v, depth + 1);
    case '"':
        return jpath_jv_string(v);
    case 't':
        return jpath_jv_word(v, "true");
    case 'f':
        return jpath_jv_word(v, "false");
    case 'n':
        return jpath_jv_word(v, "null");
    default:
        if (v->s[v->pos] == '-' || jpath_is_digit((char)v->s[v->pos]))
            return jpath_jv_number(v);
        return jpath_jv_fail(v, "expected a value");
    }
}

/* Check the whole record; on error write the message. */
static int jpath_json_check(const struct ig_jpath *p, const char *rec, size_t len, char *err,
                            size_t errlen)
{
    struct jpath_jv v = {.s = (const unsigned char *)rec, .len = len};
    int rv = jpath_jv_value(&v, 0);

    if (rv == 0) {
        jpath_jv_ws(&v);
        if (v.pos < len)
            rv = jpath_jv_fail(&v, "unexpected data after the value");
    }
    if (rv == JPATH_JV_DEEP) {
        ig_errf(err, errlen, "Filter %s: the record nests deeper than %d levels.", p->shown,
                  IG_JPATH_JSON_DEPTH);
        return IG_ERR_INVALID;
    }
    if (rv < 0) {
        if (v.pos >= len)
            ig_errf(err, errlen, "Filter %s: the record is not valid JSON: %s at its end.",
                      p->shown, v.why);
        else
            ig_errf(err, errlen, "Filter %s: the record is not valid JSON: %s at byte %zu.",
                      p->shown, v.why, v.pos + 1);
        return IG_ERR_INVALID;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* JSON: walking a checked record                                     */

static size_t jpath_ws(const char *s, size_t len, size_t pos)
{
    while (pos < len && jpath_is_ws((unsigned char)s[pos]))
        pos++;
    return pos;
}

/* Past the string whose opening quote is at <pos> (a checked record). */
static size_t jpath_string_end(const char *s, size_t len, size_t pos)
{
    for (pos++; pos < len; pos++) {
        if (s[pos] == '\\')
            pos++;
        else if (s[pos] == '"')
            return pos + 1;
    }
    return len;
}

/* Bytes that end a number or a literal in a checked record. */
static const unsigned char jpath_scalar_end[256] = {
    [','] = 1, [']'] = 1, ['}'] = 1, [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

/* Past the value at <pos> (a checked record). */
static size_t jpath_skip(const char *s, size_t len, size_t pos)
{
    int depth = 0;

    if (s[pos] == '"')
        return jpath_string_end(s, len, pos);
    if (s[pos] != '{' && s[pos] != '[') {
        while (pos < len && !jpath_scalar_end[(unsigned char)s[pos]])
            pos++;
        return pos;
    }
    while (pos < len) {
        char c = s[pos];

        if (c == '"') {
            pos = jpath_string_end(s, len, pos);
            continue;
        }
        pos++;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            break;
    }
    return pos;
}

/* What the value starting with <c> is, for messages. */
static const char *jpath_kind(char c)
{
    switch (c) {
    case '{':
        return "an object";
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

/* Encode <cp> as UTF-8 into <u>; returns the length. */
static size_t jpath_utf8_put(uint32_t cp, unsigned char *u)
{
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    u[0] = (unsigned char)(0xf0 | (cp >> 18));
    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Does the checked string body k[0, klen) decode to name[0, nlen)? */
static int jpath_key_eq(const char *k, size_t klen, const char *name, size_t nlen)
{
    size_t i = 0, j = 0;

    if (memchr(k, '\\', klen) == NULL)
        return klen == nlen && memcmp(k, name, nlen) == 0;
    while (i < klen) {
        unsigned char u[4];
        size_t un = 1;

        if (k[i] != '\\') {
            u[0] = (unsigned char)k[i++];
        } else {
            char e = k[i + 1];
            uint32_t cp, lo;

            i += 2;
            switch (e) {
            case 'b':
                u[0] = '\b';
                break;
            case 'f':
                u[0] = '\f';
                break;
            case 'n':
                u[0] = '\n';
                break;
            case 'r':
                u[0] = '\r';
                break;
            case 't':
                u[0] = '\t';
                break;
            case 'u':
                jpath_hex4((const unsigned char *)k + i, &cp);
                i += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    jpath_hex4((const unsigned char *)k + i + 2, &lo);
                    i += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                un = jpath_utf8_put(cp, u);
                break;
            default: /* '"', '\\', '/' */
                u[0] = (unsigned char)e;
                break;
            }
        }
        if (un > nlen - j || memcmp(name + j, u, un) != 0)
            return 0;
        j += un;
    }
    return j == nlen;
}

/* The member <name> of the object at <pos>: its key's span (quotes
 * included) and its value's start. Returns 1 found, 0 missing, 2 present
 * twice. */
static int jpath_member(const char *s, size_t len, size_t pos, const char *name, size_t nlen,
                        size_t *key, size_t *key_end, size_t *val)
{
    int found = 0;

    pos = jpath_ws(s, len, pos + 1);
    if (s[pos] == '}')
        return 0;
    for (;;) {
        size_t ks = pos, ke = jpath_string_end(s, len, pos), vs;

        pos = jpath_ws(s, len, ke);
        vs = jpath_ws(s, len, pos + 1); /* past ':' */
        if (jpath_key_eq(s + ks + 1, ke - ks - 2, name, nlen)) {
            if (found)
                return 2;
            found = 1;
            *key = ks;
            *key_end = ke;
            *val = vs;
        }
        pos = jpath_ws(s, len, jpath_skip(s, len, vs));
        if (s[pos] == '}')
            return found;
        pos = jpath_ws(s, len, pos + 1); /* past ',' */
    }
}

struct jpath_arr_it {
    const char *s;
    size_t len, pos;
    int done;
};

static void jpath_arr_start(struct jpath_arr_it *a, const char *s, size_t len, size_t pos)
{
    a->s = s;
    a->len = len;
    a->pos = jpath_ws(s, len, pos + 1);
    a->done = s[a->pos] == ']';
}

static int jpath_arr_next(void *vit, size_t *start, size_t *end)
{
    struct jpath_arr_it *a = vit;

    if (a->done)
        return 0;
    *start = a->pos;
    *end = jpath_skip(a->s, a->len, a->pos);
    a->pos = jpath_ws(a->s, a->len, *end);
    if (a->s[a->pos] == ']')
        a->done = 1;
    else
        a->pos = jpath_ws(a->s, a->len, a->pos + 1);
    return 1;
}

/* Append the checked JSON text s[a, b) without the whitespace between
 * tokens. */
static int jpath_copy_compact(struct ig_buf *out, const char *s, size_t a, size_t b)
{
    size_t run = a, p = a;
    char *d;
    int rv = ig_buf_reserve(out, b - a);

    if (rv == 0) { /* the common case: room for the text as it is */
        d = out->data + out->len;
        while (p < b) {
            char c = s[p];

            if (c == '"') {
                size_t e = jpath_string_end(s, b, p);

                memcpy(d, s + p, e - p);
                d += e - p;
                p = e;
            } else {
                if (!jpath_is_ws((unsigned char)c))
                    *d++ = c;
                p++;
            }
        }
        out->len = (size_t)(d - out->data);
        out->data[out->len] = '\0';
        return 0;
    }
    if (rv != IG_ERR_TOOBIG)
        return rv;
    /* Near the cap: the text may still fit once its whitespace is gone. */
    while (p < b) {
        unsigned char c = (unsigned char)s[p];

        if (c == '"') {
            p = jpath_string_end(s, b, p);
        } else if (jpath_is_ws(c)) {
            rv = ig_buf_append(out, s + run, p - run);
            if (rv < 0)
                return rv;
            p = jpath_ws(s, b, p);
            run = p;
        } else {
            p++;
        }
    }
    return ig_buf_append(out, s + run, b - run);
}

/* "$.a.b" up to (not including) step <i>'s text, for messages. */
static int jpath_prefix_len(const struct ig_jpath *p, unsigned i)
{
    return i < p->nsteps ? p->steps[i].at : p->sel_at;
}

static int jpath_wrong_kind(const struct ig_jpath *p, unsigned i, char c, const char *want,
                            char *err, size_t errlen)
{
    ig_errf(err, errlen, "Filter %s: %.*s is %s, not %s.", p->shown, jpath_prefix_len(p, i),
              p->shown, jpath_kind(c), want);
    return IG_ERR_INVALID;
}

/* Count the elements of the array at <pos>. */
static int64_t jpath_arr_count(const char *s, size_t len, size_t pos)
{
    struct jpath_arr_it a;
    size_t st, en;
    int64_t n = 0;

    jpath_arr_start(&a, s, len, pos);
    while (jpath_arr_next(&a, &st, &en) > 0)
        n++;
    return n;
}

/* Follow the steps from the top value; *pos is the selected value. */
static int jpath_json_walk(const struct ig_jpath *p, const char *s, size_t len, size_t *pos,
                           char *err, size_t errlen)
{
    size_t v = jpath_ws(s, len, 0);

    for (unsigned i = 0; i < p->nsteps; i++) {
        const struct jpath_step *st = &p->steps[i];

        if (st->kind == JPATH_MEMBER) {
            size_t ks, ke, vs;
            int r;

            if (s[v] != '{')
                return jpath_wrong_kind(p, i, s[v], "an object", err, errlen);
            r = jpath_member(s, len, v, p->expr + st->off, st->len, &ks, &ke, &vs);
            if (r != 1) {
                ig_errf(err, errlen,
                          r == 0 ? "Filter %s: no member %.*s." : "Filter %s: member %.*s appears "
                                                                  "twice in the record.",
                          p->shown, (int)st->len, p->shown + st->off);
                return IG_ERR_INVALID;
            }
            v = vs;
        } else {
            struct jpath_arr_it a;
            int64_t n, idx = st->index;
            size_t es, ee;

            if (s[v] != '[')
                return jpath_wrong_kind(p, i, s[v], "an array", err, errlen);
            n = jpath_arr_count(s, len, v);
            if (idx < 0)
                idx += n;
            if (idx < 0 || idx >= n) {
                ig_errf(err, errlen, "Filter %s: the array has %lld element%s.", p->shown,
                          (long long)n, n == 1 ? "" : "s");
                return IG_ERR_INVALID;
            }
            jpath_arr_start(&a, s, len, v);
            for (int64_t k = 0; k <= idx; k++)
                jpath_arr_next(&a, &es, &ee);
            v = es;
        }
    }
    *pos = v;
    return 0;
}

/* ['a','b'] on the object at <v>: {"a":...,"b":...}. */
static int jpath_json_names(const struct ig_jpath *p, const char *s, size_t len, size_t v,
                            struct ig_buf *out, char *err, size_t errlen)
{
    int rv;

    if (s[v] != '{')
        return jpath_wrong_kind(p, p->nsteps, s[v], "an object", err, errlen);
    rv = ig_buf_append_char(out, '{');
    for (unsigned i = 0; rv == 0 && i < p->nitems; i++) {
        const struct jpath_item *it = &p->items[i];
        size_t ks, ke, vs;
        int r = jpath_member(s, len, v, p->expr + it->off, it->len, &ks, &ke, &vs);

        if (r != 1) {
            ig_errf(err, errlen,
                      r == 0 ? "Filter %s: no member %.*s."
                             : "Filter %s: member %.*s appears twice in the record.",
                      p->shown, (int)it->len, p->shown + it->off);
            return IG_ERR_INVALID;
        }
        if (i > 0)
            rv = ig_buf_append_char(out, ',');
        if (rv == 0)
            rv = ig_buf_append(out, s + ks, ke - ks);
        if (rv == 0)
            rv = ig_buf_append_char(out, ':');
        if (rv == 0)
            rv = jpath_copy_compact(out, s, vs, jpath_skip(s, len, vs));
    }
    if (rv == 0)
        rv = ig_buf_append_char(out, '}');
    return rv < 0 ? jpath_out_fail(p, rv, out, err, errlen) : 0;
}

/* A slice, wildcard or union on the array at <v>: [...]. */
static int jpath_json_ranges(const struct ig_jpath *p, const char *s, size_t len, size_t v,
                             struct ig_buf *out, char *err, size_t errlen)
{
    struct jpath_spans sp;
    struct jpath_arr_it a;
    int64_t n;
    int rv, any = 0;

    if (s[v] != '[')
        return jpath_wrong_kind(p, p->nsteps, s[v], "an array", err, errlen);
    n = jpath_arr_count(s, len, v);
    if (jpath_resolve(p->items, p->nitems, n, &sp)) {
        ig_errf(err, errlen, "Filter %s: the array has %lld element%s.", p->shown, (long long)n,
                  n == 1 ? "" : "s");
        return IG_ERR_INVALID;
    }
    jpath_arr_start(&a, s, len, v);
    rv = jpath_locate(p->nitems, &sp, jpath_arr_next, &a);
    if (rv == 0)
        rv = ig_buf_append_char(out, '[');
    for (unsigned i = 0; rv == 0 && i < p->nitems; i++) {
        if (sp.a[i] >= sp.b[i])
            continue;
        if (any++)
            rv = ig_buf_append_char(out, ',');
        if (rv == 0)
            rv = jpath_copy_compact(out, s, sp.start[i], sp.end[i]);
    }
    if (rv == 0)
        rv = ig_buf_append_char(out, ']');
    return rv < 0 ? jpath_out_fail(p, rv, out, err, errlen) : 0;
}

int ig_jpath_json(const struct ig_jpath *p, const char *rec, size_t len, struct ig_buf *out,
                  char *err, size_t errlen)
{
    size_t saved = out->len, v = 0;
    int rv;

    rv = jpath_json_check(p, rec, len, err, errlen);
    if (rv < 0)
        return rv;
    rv = jpath_json_walk(p, rec, len, &v, err, errlen);
    if (rv < 0)
        return rv;
    if (p->sel == JPATH_SEL_NAMES) {
        rv = jpath_json_names(p, rec, len, v, out, err, errlen);
    } else if (p->sel == JPATH_SEL_RANGES) {
        rv = jpath_json_ranges(p, rec, len, v, out, err, errlen);
    } else {
        rv = jpath_copy_compact(out, rec, v, jpath_skip(rec, len, v));
        if (rv < 0)
            jpath_out_fail(p, rv, out, err, errlen);
    }
    if (rv < 0)
        jpath_restore(out, saved);
    return rv;
}

/*
 * main.c - igload's command line, its rows and request bodies, the
 * expected predictions of --model, and the report (human and JSON).
 * load/igload/README.md documents the interface.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "igload.h"
#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/model.h"
#include "infergate/version.h"

static const char igl_usage_text[] =
    "usage: igload [options] URL\n"
    "  URL                     http://host:port/path (h2c, prior knowledge) or https://...\n"
    "                          (TLS, ALPN h2), e.g. http://127.0.0.1:8080/endpoints/NAME/invocations\n"
    "  -c, --connections N     connections (default 1)\n"
    "  -m, --streams M         concurrent streams per connection (default 1)\n"
    "  -r, --rate R            open loop: R requests/s in all, latency from the intended time\n"
    "  -d, --duration S        measured seconds (default 10)\n"
    "  -w, --warmup S          seconds before the measure (default 0)\n"
    "  -n, --requests N        stop after N measured requests\n"
    "  --mode unary|stream     one POST per request, or one long POST per stream slot\n"
    "  --rows N                rows per request (unary, default 1) or per stream\n"
    "  --input FILE            rows, one per line, cycled\n"
    "  --seed N                generated rows' seed (default 1)\n"
    "  --content-type T        text/csv (default), application/jsonlines, application/json\n"
    "  --accept T              default: the content type\n"
    "  --model FILE            check every prediction against this model.json\n"
    "  -H, --header 'N: V'     extra request header (repeatable)\n"
    "  --sigv4 REGION          sign every request (SigV4, service sagemaker)\n"
    "  --timeout S             per-request timeout (default 30)\n"
    "  --json FILE             the results as JSON (\"-\": stdout)\n"
    "  --quiet                 no human summary\n"
    "  --fail-on-error         exit 1 when any request failed\n"
    "  --insecure, --cacert F  https: no certificate check / these CAs\n"
    "  -h, --help, --version\n";

enum igl_opt_id {
    OPT_MODE = 256,
    OPT_ROWS,
    OPT_INPUT,
    OPT_SEED,
    OPT_CT,
    OPT_ACCEPT,
    OPT_MODEL,
    OPT_SIGV4,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_QUIET,
    OPT_FAIL,
    OPT_INSECURE,
    OPT_CACERT,
    OPT_VERSION,
};

static const struct option igl_long_opts[] = {
    {"connections", required_argument, NULL, 'c'},
    {"streams", required_argument, NULL, 'm'},
    {"rate", required_argument, NULL, 'r'},
    {"duration", required_argument, NULL, 'd'},
    {"warmup", required_argument, NULL, 'w'},
    {"requests", required_argument, NULL, 'n'},
    {"header", required_argument, NULL, 'H'},
    {"mode", required_argument, NULL, OPT_MODE},
    {"rows", required_argument, NULL, OPT_ROWS},
    {"input", required_argument, NULL, OPT_INPUT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"content-type", required_argument, NULL, OPT_CT},
    {"accept", required_argument, NULL, OPT_ACCEPT},
    {"model", required_argument, NULL, OPT_MODEL},
    {"sigv4", required_argument, NULL, OPT_SIGV4},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", required_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"fail-on-error", no_argument, NULL, OPT_FAIL},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

__attribute__((format(printf, 1, 2))) static int igl_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("igload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (igload --help)\n", stderr);
    return IGL_EXIT_USAGE;
}

__attribute__((format(printf, 1, 2))) static int igl_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("igload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return IGL_EXIT_FAIL;
}

static int igl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int igl_parse_secs(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* http://host[:port][/path] or https://; IPv6 in brackets. */
static int igl_parse_url(struct igl_opts *o, const char *url)
{
    const char *p, *hs, *he, *ps;
    size_t hl;

    if (strncmp(url, "http://", 7) == 0) {
        o->tls = 0;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        o->tls = 1;
        p = url + 8;
    } else {
        return -1;
    }
    ps = p + strcspn(p, "/?#");
    if (*ps == '#')
        return -1;
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(ps - hs));
        if (!he)
            return -1;
        p = he + 1;
    } else {
        hs = p;
        he = memchr(hs, ':', (size_t)(ps - hs));
        if (!he)
            he = ps;
        p = he;
    }
    hl = (size_t)(he - hs);
    if (hl == 0 || hl > IGL_HOST_MAX || memchr(hs, '@', hl))
        return -1;
    memcpy(o->host, hs, hl);
    o->host[hl] = '\0';
    if (*p == ':') {
        uint64_t port;
        char tmp[8];
        size_t pl = (size_t)(ps - p - 1);
        if (pl == 0 || pl >= sizeof(tmp))
            return -1;
        memcpy(tmp, p + 1, pl);
        tmp[pl] = '\0';
        if (igl_parse_u64(tmp, 1, 65535, &port) != 0)
            return -1;
        snprintf(o->port, sizeof(o->port), "%u", (unsigned)port);
    } else if (p != ps) {
        return -1;
    } else {
        snprintf(o->port, sizeof(o->port), "%s", o->tls ? "443" : "80");
    }
    snprintf(o->authority, sizeof(o->authority), "%.*s", (int)(ps - (url + (o->tls ? 8 : 7))),
             url + (o->tls ? 8 : 7));
    if (*ps == '\0')
        snprintf(o->path, sizeof(o->path), "/");
    else if (*ps == '?')
        snprintf(o->path, sizeof(o->path), "/%s", ps);
    else if (strlen(ps) >= sizeof(o->path))
        return -1;
    else
        snprintf(o->path, sizeof(o->path), "%s", ps);
    for (const char *c = o->path; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
            return -1;
    o->url = url;
    return 0;
}

static int igl_add_header(struct igl_opts *o, const char *arg)
{
    const char *colon = strchr(arg, ':');
    size_t nl;
    char *name, *value;
    const char *v;

    if (!colon || colon == arg || o->nhdrs == IGL_MAX_HEADERS)
        return -1;
    nl = (size_t)(colon - arg);
    for (size_t i = 0; i < nl; i++) {
        char c = arg[i];
        if (!(c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return -1;
    }
    v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    for (const char *c = v; *c; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return -1;
    name = strndup(arg, nl);
    value = strdup(v);
    if (!name || !value) {
        free(name);
        free(value);
        return -1;
    }
    for (char *c = name; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    o->hdrs[o->nhdrs].name = name;
    o->hdrs[o->nhdrs].value = value;
    o->nhdrs++;
    return 0;
}

static int igl_fmt_of(const char *t)
{
    if (strcasecmp(t, "text/csv") == 0)
        return IG_FMT_CSV;
    if (strcasecmp(t, "application/jsonlines") == 0 || strcasecmp(t, "application/jsonl") == 0 ||
        strcasecmp(t, "application/x-jsonlines") == 0)
        return IG_FMT_JSONL;
    if (strcasecmp(t, "application/json") == 0)
        return IG_FMT_JSON;
    return -1;
}

/* ---- rows ------------------------------------------------------------ */

static uint64_t igl_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Rows from <text> (owned: becomes pool_text), blank lines and '\r' dropped. */
static int igl_rows_from_text(struct igl_opts *o, char *text, size_t len)
{
    size_t n = 0, w = 0, cap = 1024;
    size_t *off = malloc(cap * sizeof(*off));

    if (!off)
        return -1;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t l = e - i;
        while (l > 0 && (text[i + l - 1] == '\r' || text[i + l - 1] == ' ' || text[i + l - 1] == '\t'))
            l--;
        if (l > 0) {
            if (n + 2 > cap) {
                size_t *nw = realloc(off, 2 * cap * sizeof(*off));
                if (!nw) {
                    free(off);
                    return -1;
                }
                off = nw;
                cap *= 2;
            }
            off[n++] = w;
            memmove(text + w, text + i, l);
            w += l;
            text[w++] = '\n';
        }
        i = e + 1;
    }
    if (n == 0 || n > UINT32_MAX - 1) {
        free(off);
        return -1;
    }
    off[n] = w;
    o->pool_text = text;
    o->pool_len = w;
    o->row_off = off;
    o->nrows = (uint32_t)n;
    return 0;
}

static int igl_load_input(struct igl_opts *o, const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *text;
    size_t got;

    if (!f)
        return igl_fail("cannot open --input %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return igl_fail("--input %s: not a regular file", path);
    }
    if ((size_t)st.st_size > IGL_INPUT_MAX) {
        fclose(f);
        return igl_fail("--input %s: larger than %zu MiB", path, IGL_INPUT_MAX >> 20);
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        fclose(f);
        return igl_fail("out of memory");
    }
    got = fread(text, 1, (size_t)st.st_size, f);
    fclose(f);
    if (igl_rows_from_text(o, text, got) != 0) {
        free(text);
        return igl_fail("--input %s: no rows", path);
    }
    return 0;
}

/* IGL_POOL_ROWS rows of <dim> values in [-10, 10), 3 decimals. */
static int igl_gen_rows(struct igl_opts *o, uint32_t dim, uint64_t seed, int json)
{
    struct ig_buf b;
    uint64_t s = seed;
    char *text;
    size_t len;

    ig_buf_init(&b, (size_t)1 << 30);
    for (uint32_t i = 0; i < IGL_POOL_ROWS; i++) {
        if (json && ig_buf_append_char(&b, '[') != 0)
            goto nomem;
        for (uint32_t j = 0; j < dim; j++) {
            int64_t v = (int64_t)(igl_splitmix(&s) % 20000u) - 10000;
            if (ig_buf_printf(&b, "%s%s%lld.%03lld", j ? "," : "", v < 0 ? "-" : "",
                              (long long)(llabs(v) / 1000), (long long)(llabs(v) % 1000)) != 0)
                goto nomem;
        }
        if ((json && ig_buf_append_char(&b, ']') != 0) || ig_buf_append_char(&b, '\n') != 0)
            goto nomem;
    }
    text = ig_buf_take(&b, &len);
    if (igl_rows_from_text(o, text, len) != 0) {
        free(text);
        return igl_fail("out of memory");
    }
    return 0;
nomem:
    ig_buf_clear(&b);
    return igl_fail("out of memory (generating rows)");
}

static uint64_t igl_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Unary bodies: body k holds rows (k * R + j) mod L, j < R. */
static int igl_make_bodies(struct igl_opts *o, int fmt)
{
    uint64_t L = o->nrows, R = o->rows;
    uint64_t period = L / igl_gcd(L, R);
    size_t total = 0;
    uint32_t nb = 0;

    if (period > UINT32_MAX)
        period = UINT32_MAX;
    o->bodies = calloc((size_t)(period < 65536 ? period : 65536), sizeof(*o->bodies));
    if (!o->bodies)
        return igl_fail("out of memory");
    for (uint64_t k = 0; k < period && k < 65536; k++) {
        struct ig_buf b;
        struct igl_body *bd = &o->bodies[nb];
        uint64_t first = (k * R) % L;

        ig_buf_init(&b, IGL_RESP_MAX);
        if (fmt == IG_FMT_JSON && ig_buf_append_str(&b, "{\"instances\":[") != 0)
            goto toobig;
        for (uint64_t j = 0; j < R; j++) {
            uint64_t r = (first + j) % L;
            size_t rl = o->row_off[r + 1] - o->row_off[r];
            if (fmt == IG_FMT_JSON) {
                if ((j && ig_buf_append_char(&b, ',') != 0) ||
                    ig_buf_append(&b, o->pool_text + o->row_off[r], rl - 1) != 0)
                    goto toobig;
            } else if (ig_buf_append(&b, o->pool_text + o->row_off[r], rl) != 0) {
                goto toobig;
            }
        }
        if (fmt == IG_FMT_JSON && ig_buf_append_str(&b, "]}") != 0)
            goto toobig;
        bd->data = ig_buf_take(&b, &bd->len);
        bd->first_row = (uint32_t)first;
        snprintf(bd->clen, sizeof(bd->clen), "%zu", bd->len);
        if (o->sigv4_region) {
            unsigned char md[SHA256_DIGEST_LENGTH];
            SHA256((const unsigned char *)bd->data, bd->len, md);
            for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
                snprintf(bd->sha + 2 * i, 3, "%02x", md[i]);
        }
        nb++;
        total += bd->len;
        if (total >= IGL_BODIES_BYTES)
            break;
        continue;
    toobig:
        ig_buf_clear(&b);
        o->nbodies = nb;
        return igl_fail("a request of %llu rows is larger than %zu MiB",
                        (unsigned long long)R, IGL_RESP_MAX >> 20);
    }
    o->nbodies = nb;
    return 0;
}

/* The model's predictions of every pool row, as numbers. */
static int igl_load_expected(struct igl_opts *o, const struct ig_model *m)
{
    uint32_t dim = ig_model_dim(m);
    double *x = malloc(((size_t)dim + 1) * sizeof(double));
    struct ig_buf b;
    size_t cap = (size_t)o->nrows * 2, n = 0;
    int rc = IGL_EXIT_FAIL;

    ig_buf_init(&b, (size_t)1 << 24);
    o->exp_off = calloc((size_t)o->nrows + 1, sizeof(size_t));
    o->exp = malloc(cap * sizeof(double));
    if (!x || !o->exp_off || !o->exp) {
        igl_fail("out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < o->nrows; i++) {
        const char *row = o->pool_text + o->row_off[i];
        size_t rl = o->row_off[i + 1] - o->row_off[i];
        size_t k = igl_scan_numbers(row, rl, x, (size_t)dim + 1);
        if (k != dim) {
            igl_fail("row %u has %zu numbers, the model has %u features: %.*s", i + 1, k, dim,
                     (int)(rl > 80 ? 80 : rl - 1), row);
            goto out;
        }
        ig_buf_reset(&b);
        int r = ig_model_predict_row(m, x, IG_FMT_CSV, &b);
        if (r != 0) {
            igl_fail("row %u: the model cannot predict it (%d)", i + 1, r);
            goto out;
        }
        size_t kk = igl_scan_numbers(b.data, b.len, NULL, 0);
        while (n + kk > cap) {
            double *nw = realloc(o->exp, 2 * cap * sizeof(double));
            if (!nw) {
                igl_fail("out of memory");
                goto out;
            }
            o->exp = nw;
            cap *= 2;
        }
        igl_scan_numbers(b.data, b.len, o->exp + n, kk);
        o->exp_off[i] = n;
        n += kk;
    }
    o->exp_off[o->nrows] = n;
    rc = 0;
out:
    ig_buf_clear(&b);
    free(x);
    return rc;
}

/* ---- the report ------------------------------------------------------ */

static void igl_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static double igl_per_s(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0.0;
}

static void igl_write_json(FILE *f, const struct igl_opts *o, const struct igl_result *r)
{
    const struct igl_hist *h = &r->hist;
    int first = 1;

    fputs("{\"tool\":\"igload\",\"version\":", f);
    igl_json_str(f, IG_VERSION);
    fputs(",\"url\":", f);
    igl_json_str(f, o->url);
    fprintf(f, ",\"mode\":\"%s\",\"connections\":%u,\"streams\":%u,\"rate\":",
            o->mode == IGL_UNARY ? "unary" : "stream", o->conns, o->streams);
    if (o->rate > 0)
        fprintf(f, "%.6g", o->rate);
    else
        fputs("null", f);
    fprintf(f, ",\"duration_s\":%.6f,\"warmup_s\":%.3f,\"rows_per_request\":%llu,", r->duration_s,
            o->warmup_s, (unsigned long long)o->rows);
    fputs("\"content_type\":", f);
    igl_json_str(f, o->content_type);
    fprintf(f, ",\"checked\":%s,", o->exp_off ? "true" : "false");
    fprintf(f,
            "\"requests\":{\"sent\":%llu,\"ok\":%llu,\"failed\":%llu,\"lost\":%llu,"
            "\"unsent\":%llu},",
            (unsigned long long)r->sent, (unsigned long long)r->ok, (unsigned long long)r->failed,
            (unsigned long long)r->lost, (unsigned long long)r->unsent);
    fprintf(f, "\"rows_ok\":%llu,\"requests_per_s\":%.3f,\"rows_per_s\":%.3f,\"errors\":{",
            (unsigned long long)r->rows_ok, igl_per_s(r->ok, r->duration_s),
            igl_per_s(r->rows_ok, r->duration_s));
    for (int s = 100; s < 600; s++) {
        if (r->http[s]) {
            fprintf(f, "%s\"http_%d\":%llu", first ? "" : ",", s, (unsigned long long)r->http[s]);
            first = 0;
        }
    }
    for (int e = 0; e < IGL_E_COUNT; e++) {
        if (r->err[e]) {
            fprintf(f, "%s\"%s\":%llu", first ? "" : ",", igl_err_name((enum igl_err_type)e),
                    (unsigned long long)r->err[e]);
            first = 0;
        }
    }
    fprintf(f,
            "},\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
            "\"max\":%.3f,\"mean\":%.3f,\"count\":%llu},",
            igl_hist_pct(h, 50) / 1e3, igl_hist_pct(h, 90) / 1e3, igl_hist_pct(h, 99) / 1e3,
            igl_hist_pct(h, 99.9) / 1e3, (double)h->max_us / 1e3, igl_hist_mean(h) / 1e3,
            (unsigned long long)h->count);
    fprintf(f, "\"bytes\":{\"sent\":%llu,\"received\":%llu}}\n",
            (unsigned long long)r->bytes_sent, (unsigned long long)r->bytes_recv);
}

static void igl_write_human(FILE *f, const struct igl_opts *o, const struct igl_result *r)
{
    const struct igl_hist *h = &r->hist;
    int any = 0;

    fprintf(f, "igload %s %s: %u connections x %u streams, %s", o->url,
            o->mode == IGL_UNARY ? "unary" : "stream", o->conns, o->streams,
            o->rate > 0 ? "open loop" : "closed loop");
    if (o->rate > 0)
        fprintf(f, " at %.6g req/s", o->rate);
    fprintf(f, ", %llu rows/%s%s\n", (unsigned long long)o->rows,
            o->mode == IGL_UNARY ? "request" : "stream", o->exp_off ? ", answers checked" : "");
    fprintf(f, "  duration   %.3f s\n", r->duration_s);
    fprintf(f, "  requests   %llu sent, %llu ok, %llu failed, %llu lost", (unsigned long long)r->sent,
            (unsigned long long)r->ok, (unsigned long long)r->failed, (unsigned long long)r->lost);
    if (r->unsent)
        fprintf(f, ", %llu due but never sent", (unsigned long long)r->unsent);
    fputc('\n', f);
    fprintf(f, "  throughput %.1f req/s, %.1f rows/s (%llu rows ok)\n",
            igl_per_s(r->ok, r->duration_s), igl_per_s(r->rows_ok, r->duration_s),
            (unsigned long long)r->rows_ok);
    fprintf(f, "  latency ms p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
            igl_hist_pct(h, 50) / 1e3, igl_hist_pct(h, 90) / 1e3, igl_hist_pct(h, 99) / 1e3,
            igl_hist_pct(h, 99.9) / 1e3, (double)h->max_us / 1e3, igl_hist_mean(h) / 1e3);
    fputs("  errors    ", f);
    for (int s = 100; s < 600; s++) {
        if (r->http[s]) {
            fprintf(f, " http_%d %llu", s, (unsigned long long)r->http[s]);
            any = 1;
        }
    }
    for (int e = 0; e < IGL_E_COUNT; e++) {
        if (r->err[e]) {
            fprintf(f, " %s %llu", igl_err_name((enum igl_err_type)e), (unsigned long long)r->err[e]);
            any = 1;
        }
    }
    fprintf(f, "%s\n", any ? "" : " none");
    fprintf(f, "  bytes      %llu sent, %llu received\n", (unsigned long long)r->bytes_sent,
            (unsigned long long)r->bytes_recv);
}

static void igl_opts_free(struct igl_opts *o)
{
    for (size_t i = 0; i < o->nhdrs; i++) {
        free((char *)o->hdrs[i].name);
        free((char *)o->hdrs[i].value);
    }
    for (uint32_t i = 0; o->bodies && i < o->nbodies; i++)
        free(o->bodies[i].data);
    free(o->bodies);
    free(o->pool_text);
    free(o->row_off);
    free(o->exp);
    free(o->exp_off);
}

/* ---- main ------------------------------------------------------------ */

static int igl_main(int argc, char **argv, struct igl_opts *o, struct igl_result *res)
{
    const char *mode = "unary", *input = NULL, *model_path = NULL;
    uint64_t v, seed = 1, rows = 0;
    int rows_given = 0, c, fmt, afmt, rc;
    struct ig_model *model = NULL;
    char err[512];
    FILE *jf = NULL;

    o->conns = 1;
    o->streams = 1;
    o->duration_s = 10;
    o->timeout_s = 30;
    o->content_type = "text/csv";
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:m:r:d:w:n:H:h", igl_long_opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (igl_parse_u64(optarg, 1, IGL_MAX_CONNS, &v) != 0)
                return igl_usage("-c/--connections: '%s' is not 1..%u", optarg, IGL_MAX_CONNS);
            o->conns = (uint32_t)v;
            break;
        case 'm':
            if (igl_parse_u64(optarg, 1, IGL_MAX_STREAMS, &v) != 0)
                return igl_usage("-m/--streams: '%s' is not 1..%u", optarg, IGL_MAX_STREAMS);
            o->streams = (uint32_t)v;
            break;
        case 'r':
            if (igl_parse_secs(optarg, 1e-3, 1e8, &o->rate) != 0)
                return igl_usage("-r/--rate: '%s' is not a rate 0.001..1e8", optarg);
            break;
        case 'd':
            if (igl_parse_secs(optarg, 1e-3, 1e7, &o->duration_s) != 0)
                return igl_usage("-d/--duration: '%s' is not seconds 0.001..1e7", optarg);
            o->duration_given = 1;
            break;
        case 'w':
            if (igl_parse_secs(optarg, 0, 1e6, &o->warmup_s) != 0)
                return igl_usage("-w/--warmup: '%s' is not seconds 0..1e6", optarg);
            break;
        case 'n':
            if (igl_parse_u64(optarg, 1, (uint64_t)1 << 48, &o->requests) != 0)
                return igl_usage("-n/--requests: '%s' is not a positive count", optarg);
            break;
        case 'H':
            if (igl_add_header(o, optarg) != 0)
                return igl_usage("-H/--header: '%s' is not 'name: value' (at most %d)", optarg,
                                 IGL_MAX_HEADERS);
            break;
        case OPT_MODE:
            if (strcmp(optarg, "unary") != 0 && strcmp(optarg, "stream") != 0)
                return igl_usage("--mode: '%s' is not unary or stream", optarg);
            mode = optarg;
            break;
        case OPT_ROWS:
            if (igl_parse_u64(optarg, 1, (uint64_t)1 << 40, &rows) != 0)
                return igl_usage("--rows: '%s' is not a positive count", optarg);
            rows_given = 1;
            break;
        case OPT_INPUT:
            input = optarg;
            break;
        case OPT_SEED:
            if (igl_parse_u64(optarg, 0, UINT64_MAX, &seed) != 0)
                return igl_usage("--seed: '%s' is not a number", optarg);
            break;
        case OPT_CT:
            o->content_type = optarg;
            break;
        case OPT_ACCEPT:
            o->accept = optarg;
            break;
        case OPT_MODEL:
            model_path = optarg;
            break;
        case OPT_SIGV4:
            if (!*optarg || strlen(optarg) > 64 || strspn(optarg, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(optarg))
                return igl_usage("--sigv4: '%s' is not a region name", optarg);
            o->sigv4_region = optarg;
            break;
        case OPT_TIMEOUT:
            if (igl_parse_secs(optarg, 1e-3, 1e6, &o->timeout_s) != 0)
                return igl_usage("--timeout: '%s' is not seconds 0.001..1e6", optarg);
            break;
        case OPT_JSON:
            o->json_path = optarg;
            break;
        case OPT_QUIET:
            o->quiet = 1;
            break;
        case OPT_FAIL:
            o->fail_on_error = 1;
            break;
        case OPT_INSECURE:
            o->insecure = 1;
            break;
        case OPT_CACERT:
            o->cacert = optarg;
            break;
        case 'h':
            fputs(igl_usage_text, stdout);
            return -IGL_EXIT_OK - 1000;
        case OPT_VERSION:
            printf("igload %s\n", IG_VERSION);
            return -IGL_EXIT_OK - 1000;
        case ':':
            return igl_usage("%s needs a value", argv[optind - 1]);
        default:
            return igl_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return igl_usage(optind >= argc ? "a URL is needed" : "one URL only, got '%s'",
                         optind < argc ? argv[optind + 1] : "");
    if (igl_parse_url(o, argv[optind]) != 0)
        return igl_usage("'%s' is not an http:// or https:// URL (http://host:port/path)",
                         argv[optind]);
    o->mode = strcmp(mode, "stream") == 0 ? IGL_STREAM : IGL_UNARY;
    o->rows = rows_given ? rows : (o->mode == IGL_STREAM ? 10000 : 1);
    if (!o->accept)
        o->accept = o->content_type;
    if ((fmt = igl_fmt_of(o->content_type)) < 0)
        return igl_usage("--content-type: '%s' is not text/csv, application/jsonlines or "
                         "application/json", o->content_type);
    afmt = igl_fmt_of(o->accept);
    if (model_path && afmt < 0)
        return igl_usage("--accept: '%s' cannot be checked with --model (text/csv, "
                         "application/jsonlines or application/json)", o->accept);
    if (!input && !model_path)
        return igl_usage("--input FILE or --model FILE is needed (rows are generated from the "
                         "model's feature count)");
    if (o->sigv4_region && o->mode == IGL_STREAM)
        return igl_usage("--sigv4 signs unary requests only (a stream's body is not known "
                         "before it is sent)");
    if (o->rate > 0 && o->mode == IGL_STREAM)
        return igl_usage("--rate is for unary mode");
    if (o->json_path && strcmp(o->json_path, "-") != 0 && !(jf = fopen(o->json_path, "w")))
        return igl_fail("cannot write --json %s: %s", o->json_path, strerror(errno));

    rc = IGL_EXIT_FAIL;
    if (model_path &&
        ig_model_load_file(model_path, &model, err, sizeof(err)) != 0) {
        igl_fail("--model: %s", err);
        goto out;
    }
    if (input ? igl_load_input(o, input) != 0
              : igl_gen_rows(o, ig_model_dim(model), seed, fmt != IG_FMT_CSV) != 0)
        goto out;
    if (model && igl_load_expected(o, model) != 0)
        goto out;
    if (o->mode == IGL_UNARY && igl_make_bodies(o, fmt) != 0)
        goto out;
    ig_model_free(model);
    model = NULL;

    rc = igl_run(o, res);
    if (rc != IGL_EXIT_OK)
        goto out;
    if (o->json_path && !jf)
        igl_write_json(stdout, o, res);
    if (jf) {
        igl_write_json(jf, o, res);
        if (fclose(jf) != 0)
            igl_fail("cannot write --json %s: %s", o->json_path, strerror(errno));
        jf = NULL;
    }
    if (!o->quiet)
        igl_write_human(o->json_path && strcmp(o->json_path, "-") == 0 ? stderr : stdout, o, res);
    if (o->fail_on_error && (res->failed || res->lost))
        rc = IGL_EXIT_FAIL;
out:
    if (jf)
        fclose(jf);
    ig_model_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    static struct igl_opts o;
    static struct igl_result res;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    ig_log_min_level = IG_LOG_WARN; /* the library's info lines are not igload's output */
    rc = igl_main(argc, argv, &o, &res);
    igl_opts_free(&o);
    if (rc == -IGL_EXIT_OK - 1000)
        rc = IGL_EXIT_OK;
    fflush(stdout);
    return rc;
}

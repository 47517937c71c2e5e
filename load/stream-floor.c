/*
 * stream-floor.c - the compute floor of the streaming transform, and the
 * generator of its input file (load/bench-stream.sh builds and runs both).
 *
 *   stream-floor gen ROWS OUT
 *       Write ROWS CSV rows of 10 features to OUT: each feature is
 *       n / 10000 for an integer n drawn uniformly from [-100000, 100000]
 *       by splitmix64 from a fixed seed, written as printf's "%.4f" would
 *       ("-3.1416", "0.0420", "10.0000"). Deterministic: the same ROWS give
 *       the same bytes, and the first R rows of any larger file are the file
 *       of R rows. Written to OUT.tmp.PID, then renamed, so OUT is whole or
 *       absent.
 *
 *   stream-floor run [-c CHUNK] MODEL IN OUT
 *       The gateway's work for a transform of IN with no network, single
 *       threaded: read IN in pieces of CHUNK bytes (default 1 MiB; a piece
 *       ends at its last newline, the rest goes to the next piece: rows are
 *       lines, with no quoted newlines, as the generator writes), decode
 *       each piece with the gateway's CSV decoder (ig_codec_decode_csv,
 *       parsing the model's feature_dim numbers a row), predict every row
 *       with the gateway's model (ig_model_predict_row, CSV), encode the
 *       piece's predictions as the gateway answers them
 *       (ig_codec_encode_response, text/csv: one line a row) and write them
 *       to OUT (/dev/null for the timing). Prints one line of figures:
 *         rows=N bytes=B seconds=S rows_per_s=R cpu_s=C sys_s=.. read_s=..
 *         decode_s=.. predict_s=.. encode_write_s=.. chunk=.. maxrss_kib=..
 *       (seconds: wall clock from the first read to the last write; the
 *       phases are wall clock too, summed over the pieces; cpu_s, user +
 *       system CPU over the same span, sys_s the system part, and maxrss_kib, the process's peak
 *       RSS, from getrusage).
 *
 * Exit status: 0, 1 on an error (named on stderr: a row that does not
 * decode, with its number in IN; a row longer than CHUNK; I/O), 2 on
 * bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/model.h"

#define SF_FEATURES 10
#define SF_SEED UINT64_C(20261130)
#define SF_GEN_BUF ((size_t)1 << 20)
#define SF_CHUNK_DEFAULT ((size_t)1 << 20)
#define SF_CHUNK_MAX ((size_t)1 << 30)
#define SF_OUT_MAX ((size_t)1 << 30) /* predictions of one piece */

static void usage(void)
{
    fprintf(stderr, "usage: stream-floor gen ROWS OUT\n"
                    "       stream-floor run [-c CHUNK_BYTES] MODEL IN OUT\n");
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* The process's user + system CPU seconds so far; *ru gets the rest. */
static double cpu_s(struct rusage *ru)
{
    getrusage(RUSAGE_SELF, ru);
    return tv_s(&ru->ru_utime) + tv_s(&ru->ru_stime);
}

/* Parse a decimal count in [1, max]; 0 on anything else. */
static uint64_t parse_count(const char *s, uint64_t max)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > max)
        return 0;
    return (uint64_t)v;
}

/* write(2) all of it; 0 or -1 (errno set). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- gen ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* n / 10000 as "%.4f" writes it, for |n| <= 100000; returns the length. */
static size_t fmt_fixed4(char *p, int32_t n)
{
    char *q = p;
    uint32_t u = (uint32_t)(n < 0 ? -n : n), ip = u / 10000, fp = u % 10000;

    if (n < 0)
        *q++ = '-';
    if (ip >= 10) {
        *q++ = (char)('0' + ip / 10);
        ip %= 10;
    }
    *q++ = (char)('0' + ip);
    *q++ = '.';
    q[0] = (char)('0' + fp / 1000);
    q[1] = (char)('0' + fp / 100 % 10);
    q[2] = (char)('0' + fp / 10 % 10);
    q[3] = (char)('0' + fp % 10);
    return (size_t)(q + 4 - p);
}

static int cmd_gen(int argc, char **argv)
{
    uint64_t rows, seed = SF_SEED;
    char tmp[4096], *buf;
    size_t len = 0;
    int fd;

    if (argc != 4 || (rows = parse_count(argv[2], UINT64_C(1) << 40)) == 0)
        usage();
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", argv[3], (long)getpid()) >= sizeof(tmp)) {
        fprintf(stderr, "stream-floor: output path too long\n");
        return 1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "stream-floor: cannot create %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    buf = ig_xmalloc(SF_GEN_BUF);
    for (uint64_t r = 0; r < rows; r++) {
        for (int f = 0; f < SF_FEATURES; f++) {
            int32_t n = (int32_t)(splitmix64(&seed) % 200001u) - 100000;

            len += fmt_fixed4(buf + len, n);
            buf[len++] = f + 1 < SF_FEATURES ? ',' : '\n';
        }
        /* A row is at most 10 * 9 bytes. */
        if (len > SF_GEN_BUF - 128 || r + 1 == rows) {
            if (write_all(fd, buf, len) < 0) {
                fprintf(stderr, "stream-floor: cannot write %s: %s\n", tmp, strerror(errno));
                close(fd);
                unlink(tmp);
                free(buf);
                return 1;
            }
            len = 0;
        }
    }
    free(buf);
    if (close(fd) < 0 || rename(tmp, argv[3]) < 0) {
        fprintf(stderr, "stream-floor: cannot write %s: %s\n", argv[3], strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

/* ---- run ------------------------------------------------------------------ */

struct floor_run {
    const struct ig_model *m;
    uint32_t dim;
    int out_fd;
    uint64_t rows;  /* rows done before the current piece */
    struct ig_buf preds_out;  /* the model's predictions of one piece */
    struct ig_buf body;       /* the response bytes of one piece */
    struct ig_pred *preds;
    size_t preds_cap;
    double t_decode, t_predict, t_encode;
};

/* Decode, predict, encode and write one piece of whole rows. 0 or -1. */
static int floor_piece(struct floor_run *fr, const char *p, size_t n)
{
    struct ig_rowset rs = {.body = p, .body_len = n, .dim = fr->dim};
    struct ig_codec_error err = {0};
    double t0 = now_s(), t1, t2;
    int rv;

    rv = ig_codec_decode_csv(p, n, fr->dim, (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX), &rs, &err);
    if (rv < 0) {
        /* ig_codec_decode clears a failed rowset; its per-format decoders leave that to us. */
        ig_rowset_clear(&rs);
        fprintf(stderr, "stream-floor: row %" PRIu64 " of the input (the decoder counts the rows "
                "of a %zu-byte piece): %s\n", fr->rows + (err.row ? err.row : 1), n, err.msg);
        return -1;
    }
    t1 = now_s();
    if (rs.nrows > fr->preds_cap) {
        fr->preds_cap = rs.nrows;
        fr->preds = ig_xrealloc(fr->preds, fr->preds_cap * sizeof(*fr->preds));
    }
    ig_buf_reset(&fr->preds_out);
    for (uint32_t i = 0; i < rs.nrows; i++) {
        size_t before = fr->preds_out.len;

        rv = ig_model_predict_row(fr->m, rs.features + (size_t)i * fr->dim, IG_FMT_CSV,
                                  &fr->preds_out);
        if (rv < 0) {
            fprintf(stderr, "stream-floor: row %" PRIu64 " of the input: prediction failed (%s)\n",
                    fr->rows + i + 1, rv == IG_MODEL_NOT_FINITE ? "not finite" : ig_strerror(rv));
            ig_rowset_clear(&rs);
            return -1;
        }
        fr->preds[i].off = (uint32_t)before;
        fr->preds[i].len = (uint32_t)(fr->preds_out.len - before);
    }
    t2 = now_s();
    ig_buf_reset(&fr->body);
    rv = ig_codec_encode_response(IG_FMT_CSV, NULL, fr->preds_out.data, fr->preds, rs.nrows,
                                  &fr->body);
    if (rv < 0 || write_all(fr->out_fd, fr->body.data, fr->body.len) < 0) {
        fprintf(stderr, "stream-floor: cannot write the predictions: %s\n",
                rv < 0 ? ig_strerror(rv) : strerror(errno));
        ig_rowset_clear(&rs);
        return -1;
    }
    fr->t_decode += t1 - t0;
    fr->t_predict += t2 - t1;
    fr->t_encode += now_s() - t2;
    fr->rows += rs.nrows;
    ig_rowset_clear(&rs);
    return 0;
}

/* Read <in_fd> in pieces of <chunk> bytes and run every whole row. */
static int floor_stream(struct floor_run *fr, int in_fd, size_t chunk, uint64_t *bytes,
                        double *t_read)
{
    char *buf = ig_xmalloc(chunk);
    size_t have = 0;
    int rv = 0;

    for (;;) {
        double t0 = now_s();
        ssize_t r = read(in_fd, buf + have, chunk - have);
        size_t end;

        *t_read += now_s() - t0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "stream-floor: cannot read the input: %s\n", strerror(errno));
            rv = -1;
            break;
        }
        *bytes += (uint64_t)r;
        have += (size_t)r;
        if (r == 0) { /* the end: a last row without its newline */
            if (have > 0)
                rv = floor_piece(fr, buf, have);
            break;
        }
        for (end = have; end > 0 && buf[end - 1] != '\n'; end--)
            ;
        if (end == 0) {
            if (have < chunk)
                continue;
            fprintf(stderr, "stream-floor: row %" PRIu64 " of the input is longer than %zu bytes\n",
                    fr->rows + 1, chunk);
            rv = -1;
            break;
        }
        if ((rv = floor_piece(fr, buf, end)) < 0)
            break;
        memmove(buf, buf + end, have - end);
        have -= end;
    }
    free(buf);
    return rv;
}

static int cmd_run(int argc, char **argv)
{
    struct floor_run fr = {.out_fd = -1};
    struct ig_model *m = NULL;
    struct rusage ru;
    size_t chunk = SF_CHUNK_DEFAULT;
    uint64_t bytes = 0;
    double t0, secs, cpu, sys, t_read = 0;
    char err[512];
    int a = 2, in_fd, rv;

    if (argc > a + 1 && strcmp(argv[a], "-c") == 0) {
        chunk = (size_t)parse_count(argv[a + 1], SF_CHUNK_MAX);
        if (chunk < 64)
            usage();
        a += 2;
    }
    if (argc != a + 3)
        usage();
    if ((rv = ig_model_load_file(argv[a], &m, err, sizeof(err))) < 0) {
        fprintf(stderr, "stream-floor: %s\n", err);
        return 1;
    }
    in_fd = open(argv[a + 1], O_RDONLY);
    if (in_fd < 0) {
        fprintf(stderr, "stream-floor: cannot open %s: %s\n", argv[a + 1], strerror(errno));
        ig_model_free(m);
        return 1;
    }
    fr.out_fd = open(argv[a + 2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fr.out_fd < 0) {
        fprintf(stderr, "stream-floor: cannot create %s: %s\n", argv[a + 2], strerror(errno));
        close(in_fd);
        ig_model_free(m);
        return 1;
    }
    fr.m = m;
    fr.dim = ig_model_dim(m);
    ig_buf_init(&fr.preds_out, SF_OUT_MAX);
    ig_buf_init(&fr.body, SF_OUT_MAX);

    cpu = cpu_s(&ru);
    sys = tv_s(&ru.ru_stime);
    t0 = now_s();
    rv = floor_stream(&fr, in_fd, chunk, &bytes, &t_read);
    secs = now_s() - t0;
    cpu = cpu_s(&ru) - cpu;
    sys = tv_s(&ru.ru_stime) - sys;

    if (close(fr.out_fd) < 0 && rv == 0) {
        fprintf(stderr, "stream-floor: cannot write %s: %s\n", argv[a + 2], strerror(errno));
        rv = -1;
    }
    close(in_fd);
    ig_buf_clear(&fr.preds_out);
    ig_buf_clear(&fr.body);
    free(fr.preds);
    ig_model_free(m);
    if (rv < 0)
        return 1;
    printf("rows=%" PRIu64 " bytes=%" PRIu64 " seconds=%.4f rows_per_s=%.0f cpu_s=%.3f sys_s=%.3f "
           "read_s=%.3f "
           "decode_s=%.3f predict_s=%.3f encode_write_s=%.3f chunk=%zu maxrss_kib=%ld\n",
           fr.rows, bytes, secs, secs > 0 ? (double)fr.rows / secs : 0.0, cpu, sys, t_read, fr.t_decode,
           fr.t_predict, fr.t_encode, chunk, ru.ru_maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "gen") == 0)
        return cmd_gen(argc, argv);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc, argv);
    usage();
    return 2;
}

/*
 * fuzz_model.c - ig_model_load_json on arbitrary bytes; a model that loads
 * predicts a row of zeros, a row of small integers and a row of huge
 * numbers in every format into capped buffers.
 *
 * Checked: a failed load sets *out to NULL and writes a NUL-terminated
 * message; a loaded model has sane accessors; a prediction either fits or
 * fails with IG_ERR_TOOBIG leaving the buffer exactly as it was; an output
 * past the double range fails with IG_MODEL_NOT_FINITE in every format;
 * otherwise the JSON and JSON Lines rows are the same text, a valid JSON
 * object (never a bare NaN or Infinity), whose numbers are, in order, the
 * fields of the CSV row.
 */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/model.h"

#define FUZZ_OUT_MAX (1u << 20)
#define FUZZ_PREFIX "prefix,"
#define FUZZ_PREFIX_LEN (sizeof(FUZZ_PREFIX) - 1)

/* Predict <x> in <fmt> into a buffer holding FUZZ_PREFIX, capped at <max>;
 * returns the result and, on success, the row (malloc'd) in *row. */
static int predict(const struct ig_model *m, const double *x, enum ig_format fmt, size_t max,
                   char **row, size_t *rlen)
{
    struct ig_buf b;
    int rv;

    ig_buf_init(&b, max);
    FUZZ_CHECK(ig_buf_append(&b, FUZZ_PREFIX, FUZZ_PREFIX_LEN) == 0, "prefix");
    rv = ig_model_predict_row(m, x, fmt, &b);
    FUZZ_CHECK(memcmp(b.data, FUZZ_PREFIX, FUZZ_PREFIX_LEN) == 0, "prefix overwritten");
    FUZZ_CHECK(b.data[b.len] == '\0', "not NUL-terminated");
    if (rv != 0) {
        FUZZ_CHECK(rv == IG_ERR_TOOBIG || rv == IG_MODEL_NOT_FINITE ||
                       (rv == IG_ERR_INVALID && fmt >= IG_FMT_COUNT),
                   "predict format %d: %d", fmt, rv);
        FUZZ_CHECK(b.len == FUZZ_PREFIX_LEN, "failed predict changed the buffer");
        ig_buf_clear(&b);
        return rv;
    }
    FUZZ_CHECK(b.len > FUZZ_PREFIX_LEN, "empty prediction");
    *rlen = b.len - FUZZ_PREFIX_LEN;
    *row = malloc(*rlen + 1);
    FUZZ_CHECK(*row != NULL, "malloc");
    memcpy(*row, b.data + FUZZ_PREFIX_LEN, *rlen + 1);
    ig_buf_clear(&b);
    return 0;
}

static bool is_num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
           (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The numbers (and NaN / Infinity) of a JSON text, in order, joined by ','.
 * Keys and string values are skipped, and so are true / false / null. */
static char *json_numbers(const char *j)
{
    size_t n = strlen(j), o = 0;
    char *out = malloc(n + 1);

    FUZZ_CHECK(out != NULL, "malloc");
    for (size_t i = 0; i < n;) {
        if (j[i] == '"') {
            for (i++; i < n && j[i] != '"'; i++)
                if (j[i] == '\\')
                    i++;
            i++;
        } else if (is_num_char(j[i])) {
            size_t s = i;

            while (i < n && is_num_char(j[i]))
                i++;
            if ((i - s == 4 && (memcmp(j + s, "true", 4) == 0 || memcmp(j + s, "null", 4) == 0)) ||
                (i - s == 5 && memcmp(j + s, "false", 5) == 0))
                continue;
            if (o > 0)
                out[o++] = ',';
            memcpy(out + o, j + s, i - s);
            o += i - s;
        } else {
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

static void check_predictions(const struct ig_model *m, const double *x)
{
    char *csv = NULL, *json = NULL, *jsonl = NULL, *nums;
    size_t clen = 0, jlen = 0, llen = 0, tmp;
    char *ignored;

    int rv = predict(m, x, IG_FMT_CSV, FUZZ_OUT_MAX, &csv, &clen);

    /* An output past the double range fails the row in every format. */
    if (rv == IG_MODEL_NOT_FINITE) {
        FUZZ_CHECK(predict(m, x, IG_FMT_JSON, FUZZ_OUT_MAX, &json, &jlen) == rv &&
                       predict(m, x, IG_FMT_JSONL, FUZZ_OUT_MAX, &jsonl, &llen) == rv,
                   "not finite in CSV only");
        FUZZ_CHECK(strlen(ig_model_not_finite_msg(m)) > 0, "no reason");
        return;
    }
    FUZZ_CHECK(rv == 0, "CSV predict");
    FUZZ_CHECK(predict(m, x, IG_FMT_JSON, FUZZ_OUT_MAX, &json, &jlen) == 0, "JSON predict");
    FUZZ_CHECK(predict(m, x, IG_FMT_JSONL, FUZZ_OUT_MAX, &jsonl, &llen) == 0, "JSONL predict");
    FUZZ_CHECK(strstr(csv, "nan") == NULL && strstr(csv, "inf") == NULL &&
                   strstr(csv, "NaN") == NULL && strstr(csv, "Infinity") == NULL,
               "CSV row \"%s\" is not all finite numbers", csv);
    FUZZ_CHECK(clen == strlen(csv) && strchr(csv, '\n') == NULL && strchr(csv, '"') == NULL,
               "CSV row \"%s\"", csv);
    FUZZ_CHECK(jlen == llen && strcmp(json, jsonl) == 0, "JSON \"%s\" vs JSON Lines \"%s\"", json,
               jsonl);
    FUZZ_CHECK(json[0] == '{' && json[jlen - 1] == '}' && strchr(json, ' ') == NULL &&
                   strchr(json, '\n') == NULL,
               "JSON row \"%s\"", json);
    {
        json_error_t e;
        json_t *v = json_loadb(json, jlen, 0, &e);

        FUZZ_CHECK(json_is_object(v), "JSON row \"%.200s\" does not parse: %s", json, e.text);
        json_decref(v);
    }
    nums = json_numbers(json);
    FUZZ_CHECK(strcmp(nums, csv) == 0, "JSON row \"%.200s\" has numbers \"%.200s\", CSV \"%.200s\"",
               json, nums, csv);
    free(nums);
    /* every cap short of the row fails cleanly (a few of them) */
    for (size_t cut = 1; cut <= clen && cut <= 3; cut++)
        FUZZ_CHECK(predict(m, x, IG_FMT_CSV, FUZZ_PREFIX_LEN + clen - cut, &ignored, &tmp) ==
                       IG_ERR_TOOBIG,
                   "CSV row of %zu bytes fits in %zu", clen, clen - cut);
    FUZZ_CHECK(predict(m, x, IG_FMT_JSON, FUZZ_PREFIX_LEN + jlen - 1, &ignored, &tmp) ==
                   IG_ERR_TOOBIG,
               "JSON row of %zu bytes fits in %zu", jlen, jlen - 1);
    FUZZ_CHECK(predict(m, x, IG_FMT_COUNT, FUZZ_OUT_MAX, &ignored, &tmp) == IG_ERR_INVALID,
               "unknown format accepted");
    free(csv);
    free(json);
    free(jsonl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ig_model *m = (struct ig_model *)(uintptr_t)1;
    char err[256];
    char *buf = malloc(size ? size : 1);
    uint32_t dim;
    double *x;
    int rv;

    FUZZ_CHECK(buf != NULL, "malloc");
    memcpy(buf, data, size);
    memset(err, 0x55, sizeof(err));
    rv = ig_model_load_json(buf, size, &m, err, sizeof(err));
    if (rv != 0) {
        FUZZ_CHECK(m == NULL, "failed load (%d) left a model", rv);
        FUZZ_CHECK(rv == IG_ERR_INVALID || rv == IG_ERR_UNSUPPORTED || rv == IG_ERR_TOOBIG,
                   "load returned %d", rv);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0',
                   "no message for error %d", rv);
        free(buf);
        return 0;
    }
    FUZZ_CHECK(m != NULL, "no model");
    free(buf); /* the model must not borrow the text */
    dim = ig_model_dim(m);
    FUZZ_CHECK(dim >= 1 && dim <= IG_MODEL_MAX_DIM, "dim %u", dim);
    FUZZ_CHECK(ig_model_k(m) >= 1 && ig_model_k(m) <= IG_MODEL_MAX_ROWS, "k %u", ig_model_k(m));
    FUZZ_CHECK((unsigned)ig_model_algo(m) <= IG_ALGO_LINEAR_LEARNER, "algo %d", ig_model_algo(m));
    FUZZ_CHECK(ig_model_algo_name(m) != NULL && ig_model_json_key(m) != NULL, "names");
    x = calloc(dim, sizeof(*x));
    FUZZ_CHECK(x != NULL, "calloc");
    check_predictions(m, x);
    for (uint32_t i = 0; i < dim; i++)
        x[i] = (double)(i % 7) - 3;
    check_predictions(m, x);
    /* finite inputs that overflow most models */
    for (uint32_t i = 0; i < dim; i++)
        x[i] = i % 2 ? -1e308 : 1.7e308;
    check_predictions(m, x);
    free(x);
    ig_model_free(m);
    return 0;
}

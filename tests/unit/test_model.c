/*
 * test_model.c - embedded K-Means, PCA and Linear Learner: model.json
 * validation (every error with its exact message) and predictions against
 * hand-computed values, plus the shipped demo model against numpy; XGBoost
 * models (tests/data/xgb-*, written by tests/data/xgb-gen.c) against the
 * predictions XGBoost itself made of them.
 *
 * Run from the repository root (make test-unit does), or set IG_SRCDIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/model.h"
#include "infergate/recordio.h"

#define ERRLEN 256

static const char *test_path(const char *rel)
{
    static char path[4096];
    const char *root = getenv("IG_SRCDIR");

    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    return path;
}

static struct ig_model *load_file_ok(const char *rel)
{
    char err[ERRLEN] = "";
    struct ig_model *m = NULL;
    int rv = ig_model_load_file(test_path(rel), &m, err, sizeof(err));

    if (rv != 0)
        fail_msg("%s: %d %s", rel, rv, err);
    assert_non_null(m);
    return m;
}

static struct ig_model *load_json_ok(const char *json)
{
    char err[ERRLEN] = "";
    struct ig_model *m = NULL;
    int rv = ig_model_load_json(json, strlen(json), &m, err, sizeof(err));

    if (rv != 0)
        fail_msg("%s: %d %s", json, rv, err);
    assert_non_null(m);
    return m;
}

/* Predict one row in <fmt> into a fresh buffer and compare the bytes. */
static void expect_row(const struct ig_model *m, const double *x, enum ig_format fmt,
                       const char *want)
{
    struct ig_buf b;

    ig_buf_init(&b, 1 << 20);
    assert_int_equal(ig_model_predict_row(m, x, fmt, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_string_equal(b.data, want);
    ig_buf_clear(&b);
}

/* The same row in CSV, JSON and JSON Lines. */
static void expect_all(const struct ig_model *m, const double *x, const char *csv,
                       const char *json)
{
    expect_row(m, x, IG_FMT_CSV, csv);
    expect_row(m, x, IG_FMT_JSON, json);
    expect_row(m, x, IG_FMT_JSONL, json);
}

/* ---- K-Means ------------------------------------------------------------ */

/* centroids (0,0), (4,0), (0,3) */
static void test_kmeans_2d(void **state)
{
    struct ig_model *m = load_file_ok("tests/data/kmeans-2d.json");
    const double origin[] = {0, 0}, corner[] = {4, 3}, near2[] = {3, 4};

    (void)state;
    assert_int_equal(ig_model_algo(m), IG_ALGO_KMEANS);
    assert_string_equal(ig_model_algo_name(m), "kmeans");
    assert_int_equal(ig_model_dim(m), 2);
    assert_int_equal(ig_model_k(m), 3);
    assert_string_equal(ig_model_json_key(m), "predictions");

    expect_all(m, origin, "0.0,0.0", "{\"closest_cluster\":0.0,\"distance_to_cluster\":0.0}");
    /* distances 5, 3, 4 */
    expect_all(m, corner, "1.0,3.0", "{\"closest_cluster\":1.0,\"distance_to_cluster\":3.0}");
    /* distances 5, sqrt(17), sqrt(10) */
    expect_all(m, near2, "2.0,3.1622776601683795",
               "{\"closest_cluster\":2.0,\"distance_to_cluster\":3.1622776601683795}");
    ig_model_free(m);
}

static void test_kmeans_ties(void **state)
{
    struct ig_model *m = load_file_ok("tests/data/kmeans-2d.json");
    /* (2,1.5): 2.5 from all three centroids */
    const double all3[] = {2, 1.5};
    /* (2,0): 2 from centroids 0 and 1 */
    const double c01[] = {2, 0};
    /* (5,5.5): sqrt(31.25) from centroids 1 and 2, exactly in doubles */
    const double c12[] = {5, 5.5};

    (void)state;
    expect_all(m, all3, "0.0,2.5", "{\"closest_cluster\":0.0,\"distance_to_cluster\":2.5}");
    expect_all(m, c01, "0.0,2.0", "{\"closest_cluster\":0.0,\"distance_to_cluster\":2.0}");
    expect_all(m, c12, "1.0,5.5901699437494745",
               "{\"closest_cluster\":1.0,\"distance_to_cluster\":5.5901699437494745}");
    ig_model_free(m);

    /* Duplicate centroids: the lowest index wins. */
    m = load_json_ok("{\"algorithm\":\"kmeans\",\"feature_dim\":1,"
                     "\"centroids\":[[9],[1],[1],[-1]]}");
    {
        const double x[] = {1};

        expect_row(m, x, IG_FMT_CSV, "1.0,0.0");
    }
    ig_model_free(m);
}

/* Odd dims exercise the tail of the 4-lane loops. */
static void test_kmeans_dims(void **state)
{
    struct ig_model *m = load_json_ok("{\"algorithm\":\"kmeans\",\"feature_dim\":5,\"centroids\":"
                                      "[[1,1,1,1,1],[0,0,0,0,2]]}");
    const double x[] = {0, 0, 0, 0, 0};
    const double y[] = {1, 1, 1, 1, 4};

    (void)state;
    /* x: sqrt(5) vs 2 */
    expect_row(m, x, IG_FMT_CSV, "1.0,2.0");
    /* y: 3 vs sqrt(1+1+1+1+4) */
    expect_row(m, y, IG_FMT_CSV, "1.0,2.8284271247461903");
    ig_model_free(m);
}

/* Cluster indexes past 9 are still floats with ".0", as SageMaker writes them. */
static void test_kmeans_many_clusters(void **state)
{
    struct ig_model *m = load_json_ok("{\"algorithm\":\"kmeans\",\"feature_dim\":1,\"centroids\":"
                                      "[[0],[1],[2],[3],[4],[5],[6],[7],[8],[9],[10],[11],[100]]}");
    const double a[] = {11}, b[] = {10.25}, c[] = {99.5};

    (void)state;
    assert_int_equal(ig_model_k(m), 13);
    expect_all(m, a, "11.0,0.0", "{\"closest_cluster\":11.0,\"distance_to_cluster\":0.0}");
    expect_all(m, b, "10.0,0.25", "{\"closest_cluster\":10.0,\"distance_to_cluster\":0.25}");
    expect_row(m, c, IG_FMT_CSV, "12.0,0.5");
    ig_model_free(m);
}

/* ---- PCA ---------------------------------------------------------------- */

/* mean (1,2,3), components (1,0,0) and (0.5,0.5,-1) */
static void test_pca(void **state)
{
    struct ig_model *m = load_file_ok("tests/data/pca-3to2.json");
    const double a[] = {2, 4, 1};  /* centred (1,2,-2): 1, 0.5+1+2 */
    const double b[] = {1, 2, 3};  /* the mean */
    const double c[] = {0, 0, 0};  /* centred (-1,-2,-3): -1, -0.5-1+3 */

    (void)state;
    assert_int_equal(ig_model_algo(m), IG_ALGO_PCA);
    assert_string_equal(ig_model_algo_name(m), "pca");
    assert_int_equal(ig_model_dim(m), 3);
    assert_int_equal(ig_model_k(m), 2);
    assert_string_equal(ig_model_json_key(m), "projections");

    expect_all(m, a, "1.0,3.5", "{\"projection\":[1.0,3.5]}");
    expect_all(m, b, "0.0,0.0", "{\"projection\":[0.0,0.0]}");
    expect_all(m, c, "-1.0,1.5", "{\"projection\":[-1.0,1.5]}");
    ig_model_free(m);
}

static void test_pca_no_mean(void **state)
{
    struct ig_model *m = load_json_ok("{\"algorithm\":\"pca\",\"feature_dim\":2,"
                                      "\"components\":[[0.5,0.25]]}");
    const double x[] = {2, -4};

    (void)state;
    assert_int_equal(ig_model_k(m), 1);
    expect_all(m, x, "0.0", "{\"projection\":[0.0]}");
    {
        const double y[] = {3, 2}; /* 1.5 + 0.5 */

        expect_all(m, y, "2.0", "{\"projection\":[2.0]}");
    }
    ig_model_free(m);
}

/* ---- Linear Learner ----------------------------------------------------- */

/* w (0.5,-1,2,0.25), b 0.125 */
static void test_ll_regressor(void **state)
{
    struct ig_model *m = load_file_ok("tests/data/ll-regressor.json");
    const double x[] = {1, 2, 3, 4}; /* 0.5 - 2 + 6 + 1 + 0.125 */
    const double z[] = {0, 0, 0, 0};
    const double n[] = {0, 10, 0, 0}; /* -10 + 0.125 */

    (void)state;
    assert_int_equal(ig_model_algo(m), IG_ALGO_LINEAR_LEARNER);
    assert_string_equal(ig_model_algo_name(m), "linear-learner");
    assert_int_equal(ig_model_dim(m), 4);
    assert_int_equal(ig_model_k(m), 1);
    assert_string_equal(ig_model_json_key(m), "predictions");

    expect_all(m, x, "5.625", "{\"score\":5.625}");
    expect_all(m, z, "0.125", "{\"score\":0.125}");
    expect_all(m, n, "-9.875", "{\"score\":-9.875}");
    ig_model_free(m);
}

/* w (1,-1,0.5,2), b -1, threshold 0.75 */
static void test_ll_binary(void **state)
{
    struct ig_model *m = load_file_ok("tests/data/ll-binary.json");
    const double z0[] = {1, 1, 0, 0.5};  /* z = 1 - 1 + 1 - 1 = 0: score 0.5 */
    const double z2[] = {2, 0, 0, 0.5};  /* z = 2 + 1 - 1 = 2 */
    const double zm3[] = {0, 2, 0, 0};   /* z = -2 - 1 = -3 */
    const double big[] = {1000, 0, 0, 0};  /* exp(-999) underflows: 1.0 */
    const double small[] = {0, 1000, 0, 0}; /* exp(1001) overflows: 0.0 */

    (void)state;
    expect_all(m, z0, "0.5,0", "{\"score\":0.5,\"predicted_label\":0}");
    /* 1 / (1 + e^-2) = 0.88079707797788... */
    expect_all(m, z2, "0.8807970779778823,1",
               "{\"score\":0.8807970779778823,\"predicted_label\":1}");
    /* 1 / (1 + e^3) = 0.04742587317756678... */
    expect_all(m, zm3, "0.04742587317756678,0",
               "{\"score\":0.04742587317756678,\"predicted_label\":0}");
    expect_all(m, big, "1.0,1", "{\"score\":1.0,\"predicted_label\":1}");
    expect_all(m, small, "0.0,0", "{\"score\":0.0,\"predicted_label\":0}");
    ig_model_free(m);
}

static void test_ll_threshold(void **state)
{
    const double z0[] = {0, 0};   /* score exactly 0.5 */
    const double z2[] = {2, 0};   /* score 0.88... */
    const double one[] = {1000, 0}; /* score exactly 1.0 */
    struct ig_model *m;

    (void)state;
    /* Default 0.5: score >= threshold, so 0.5 is labelled 1. */
    m = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                     "\"predictor_type\":\"binary_classifier\",\"weights\":[1,0],\"bias\":0}");
    expect_row(m, z0, IG_FMT_CSV, "0.5,1");
    ig_model_free(m);

    m = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                     "\"predictor_type\":\"binary_classifier\",\"weights\":[1,0],\"bias\":0,"
                     "\"threshold\":0.9}");
    expect_row(m, z2, IG_FMT_CSV, "0.8807970779778823,0");
    ig_model_free(m);

    m = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                     "\"predictor_type\":\"binary_classifier\",\"weights\":[1,0],\"bias\":0,"
                     "\"threshold\":0}");
    expect_row(m, z0, IG_FMT_CSV, "0.5,1");
    ig_model_free(m);

    m = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                     "\"predictor_type\":\"binary_classifier\",\"weights\":[1,0],\"bias\":0,"
                     "\"threshold\":1}");
    expect_row(m, z2, IG_FMT_CSV, "0.8807970779778823,0");
    expect_row(m, one, IG_FMT_CSV, "1.0,1");
    ig_model_free(m);

    /* A regressor accepts (and ignores) a threshold. */
    m = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                     "\"predictor_type\":\"regressor\",\"weights\":[1,0],\"bias\":0,"
                     "\"threshold\":0.9}");
    expect_row(m, z2, IG_FMT_JSON, "{\"score\":2.0}");
    ig_model_free(m);
}

/* ---- outputs that are not finite ---------------------------------------- */

/* <x> overflows <m>: IG_MODEL_NOT_FINITE in every format, nothing written
 * (the buffer keeps what it held); <ok> is answered. */
static void expect_not_finite(const struct ig_model *m, const double *x, const double *ok)
{
    for (int f = 0; f < IG_FMT_COUNT; f++) {
        struct ig_buf b;

        if (f == IG_FMT_LIBSVM) /* a request format only */
            continue;
        ig_buf_init(&b, 1 << 20);
        assert_int_equal(ig_buf_append_str(&b, "ab"), 0);
        assert_int_equal(ig_model_predict_row(m, x, (enum ig_format)f, &b), IG_MODEL_NOT_FINITE);
        assert_int_equal(b.len, 2);
        assert_string_equal(b.data, "ab");
        if (f == IG_FMT_RECORDIO) { /* float32: see test_record_out */
            ig_buf_clear(&b);
            continue;
        }
        assert_int_equal(ig_model_predict_row(m, ok, (enum ig_format)f, &b), 0);
        assert_null(strstr(b.data, "Infinity"));
        assert_null(strstr(b.data, "NaN"));
        ig_buf_clear(&b);
    }
}

/* <m>(<x>) as RecordIO equals the record ig_recordio_encode_labels writes
 * for <labels> (that writer is checked byte for byte against Python's
 * protobuf runtime in test_recordio.c). */
static void expect_record(const struct ig_model *m, const double *x,
                          const struct ig_recordio_label *labels, size_t n)
{
    struct ig_buf got, want;

    ig_buf_init(&got, 1 << 20);
    ig_buf_init(&want, 1 << 20);
    assert_int_equal(ig_model_predict_row(m, x, IG_FMT_RECORDIO, &got), 0);
    assert_int_equal(ig_recordio_encode_labels(&want, labels, n), 0);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ig_buf_clear(&got);
    ig_buf_clear(&want);
}

/* RecordIO answers: the label maps of the built-in algorithms, float32;
 * an output past float32's range fails the row (no bare infinity). */
static void test_record_out(void **state)
{
    struct ig_model *km = load_file_ok("tests/data/kmeans-2d.json");
    struct ig_model *bin = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                                        "\"predictor_type\":\"binary_classifier\","
                                        "\"weights\":[1,-1],\"bias\":0}");
    struct ig_model *reg = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                                        "\"predictor_type\":\"regressor\","
                                        "\"weights\":[1e30,1e30],\"bias\":0.5}");
    struct ig_model *pca = load_json_ok("{\"algorithm\":\"pca\",\"feature_dim\":2,"
                                        "\"mean\":[1,1],\"components\":[[1,0],[0,2]]}");
    const double corner[] = {4, 3}, x[] = {3, 5}, small[] = {0.25, 0.5};
    const double one[] = {1.0}, three[] = {3.0}, half[] = {1.0 / (1.0 + exp(2.0))},
                 zero[] = {0.0}, proj[] = {2.0, 8.0}, z[] = {0.75e30 + 0.5};
    struct ig_recordio_label l_km[] = {{"closest_cluster", one, 1},
                                       {"distance_to_cluster", three, 1}};
    struct ig_recordio_label l_bin[] = {{"score", half, 1}, {"predicted_label", zero, 1}};
    struct ig_recordio_label l_pca[] = {{"projection", proj, 2}};
    struct ig_recordio_label l_reg[] = {{"score", z, 1}};
    struct ig_buf b;

    (void)state;
    expect_record(km, corner, l_km, 2);
    expect_record(bin, x, l_bin, 2);
    expect_record(pca, x, l_pca, 1);
    expect_record(reg, small, l_reg, 1);
    /* 1e30 * 1e30 is a finite double, not a float32 */
    ig_buf_init(&b, 4096);
    assert_int_equal(ig_model_predict_row(reg, (const double[]){1e9, 1e9}, IG_FMT_RECORDIO, &b),
                     IG_MODEL_NOT_FINITE);
    assert_int_equal(b.len, 0);
    assert_int_equal(ig_model_predict_row(reg, x, IG_FMT_LIBSVM, &b), IG_ERR_INVALID);
    ig_buf_clear(&b);
    ig_model_free(km);
    ig_model_free(bin);
    ig_model_free(reg);
    ig_model_free(pca);
}

/* Finite inputs, finite model, output past the double range: never a bare
 * Infinity or NaN in a response; the row fails with a reason. */
static void test_not_finite(void **state)
{
    struct ig_model *reg = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                                        "\"predictor_type\":\"regressor\","
                                        "\"weights\":[1e308,-1e308],\"bias\":0}");
    struct ig_model *bin = load_json_ok("{\"algorithm\":\"linear-learner\",\"feature_dim\":2,"
                                        "\"predictor_type\":\"binary_classifier\","
                                        "\"weights\":[1e308,1e308],\"bias\":0}");
    struct ig_model *km = load_json_ok("{\"algorithm\":\"kmeans\",\"feature_dim\":2,"
                                       "\"centroids\":[[-1e308,0],[1e308,0]]}");
    struct ig_model *pca = load_json_ok("{\"algorithm\":\"pca\",\"feature_dim\":2,"
                                        "\"components\":[[1,0],[1e308,1e308]]}");
    const double big[] = {1e308, 1e308}, plus_minus[] = {1e308, -1e308}, ones[] = {1, 1};
    const double zero[] = {0, 0}, one_zero[] = {1, 0}, one_minus[] = {1, -1};

    (void)state;
    expect_not_finite(reg, big, ones); /* 1e308 * 1e308 = inf, then inf - inf = NaN */
    expect_not_finite(reg, plus_minus, ones); /* inf + inf = inf */
    expect_all(reg, ones, "0.0", "{\"score\":0.0}");
    /* a binary classifier's infinite score has a sigmoid; inf - inf has not */
    expect_all(bin, big, "1.0,1", "{\"score\":1.0,\"predicted_label\":1}");
    expect_not_finite(bin, plus_minus, one_minus);
    /* K-Means: every distance is past the double range... */
    expect_not_finite(km, (const double[]){0, 1.7e308}, zero);
    expect_not_finite(km, (const double[]){-1.7e308, 1.7e308}, zero);
    /* ...but a distance whose square overflows is still a distance (the
     * closest of two at 1e308 and 1.4142e308; ties keep the lowest) */
    expect_all(km, zero, "0.0,1e+308", "{\"closest_cluster\":0.0,\"distance_to_cluster\":1e+308}");
    expect_all(km, (const double[]){1e308, 1e308}, "1.0,1e+308",
               "{\"closest_cluster\":1.0,\"distance_to_cluster\":1e+308}");
    expect_all(km, (const double[]){0, 1e308}, "0.0,1.4142135623730951e+308",
               "{\"closest_cluster\":0.0,\"distance_to_cluster\":1.4142135623730951e+308}");
    expect_all(km, (const double[]){0, 1e200}, "0.0,1e+308",
               "{\"closest_cluster\":0.0,\"distance_to_cluster\":1e+308}");
    expect_all(km, (const double[]){1e307, 1e200}, "1.0,9e+307",
               "{\"closest_cluster\":1.0,\"distance_to_cluster\":9e+307}");
    /* PCA: the second projection overflows; the first alone is no answer */
    expect_not_finite(pca, big, one_zero);
    expect_all(pca, one_zero, "1.0,1e+308", "{\"projection\":[1.0,1e+308]}");
    assert_string_equal(ig_model_not_finite_msg(reg),
                        "the model's output is not finite (overflow in the linear learner score).");
    assert_string_equal(ig_model_not_finite_msg(bin),
                        "the model's output is not finite (overflow in the linear learner score).");
    assert_string_equal(ig_model_not_finite_msg(km),
                        "the model's output is not finite (overflow in the K-Means distance).");
    assert_string_equal(ig_model_not_finite_msg(pca),
                        "the model's output is not finite (overflow in the PCA projection).");
    ig_model_free(reg);
    ig_model_free(bin);
    ig_model_free(km);
    ig_model_free(pca);
}

/* ---- output buffer ------------------------------------------------------ */

static void test_predict_appends_and_caps(void **state)
{
    struct ig_model *km = load_file_ok("tests/data/kmeans-2d.json");
    struct ig_model *pca = load_file_ok("tests/data/pca-3to2.json");
    struct ig_model *ll = load_file_ok("tests/data/ll-binary.json");
    const double corner[] = {4, 3}, origin[] = {0, 0};
    const double a[] = {2, 4, 1};
    const double z0[] = {1, 1, 0, 0.5};
    struct ig_buf b;

    (void)state;
    /* Rows are appended, nothing else (no separator, no newline). */
    ig_buf_init(&b, 1 << 20);
    assert_int_equal(ig_model_predict_row(km, corner, IG_FMT_CSV, &b), 0);
    assert_int_equal(ig_model_predict_row(km, origin, IG_FMT_CSV, &b), 0);
    assert_string_equal(b.data, "1.0,3.00.0,0.0");
    ig_buf_clear(&b);

    /* A cap hit leaves the buffer exactly as it was: fixed-size outputs... */
    ig_buf_init(&b, 20);
    assert_int_equal(ig_buf_append_str(&b, "ab"), 0);
    assert_int_equal(ig_model_predict_row(km, corner, IG_FMT_JSON, &b), IG_ERR_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    assert_int_equal(ig_model_predict_row(ll, z0, IG_FMT_JSONL, &b), IG_ERR_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    /* ... and PCA, which is written value by value ({"projection":[1.0, fits). */
    assert_int_equal(ig_model_predict_row(pca, a, IG_FMT_JSON, &b), IG_ERR_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    assert_int_equal(ig_model_predict_row(pca, a, IG_FMT_CSV, &b), 0);
    assert_string_equal(b.data, "ab1.0,3.5");
    ig_buf_clear(&b);

    /* An exact fit is not a cap hit. */
    ig_buf_init(&b, 7);
    assert_int_equal(ig_model_predict_row(km, corner, IG_FMT_CSV, &b), 0);
    assert_string_equal(b.data, "1.0,3.0");
    assert_int_equal(ig_model_predict_row(km, corner, IG_FMT_CSV, &b), IG_ERR_TOOBIG);
    assert_string_equal(b.data, "1.0,3.0");
    ig_buf_clear(&b);

    /* Unknown format. */
    ig_buf_init(&b, 1 << 20);
    assert_int_equal(ig_model_predict_row(km, corner, IG_FMT_COUNT, &b), IG_ERR_INVALID);
    assert_int_equal(b.len, 0);
    ig_buf_clear(&b);

    ig_model_free(km);
    ig_model_free(pca);
    ig_model_free(ll);
}

/* ---- the shipped demo model against numpy ------------------------------- */

#define DIGITS_ROWS 1797
#define DIGITS_DIM 64

/* Read conf/data/digits.csv (integers 0..16) into a heap array. */
static double *read_digits(void)
{
    FILE *f = fopen(test_path("conf/data/digits.csv"), "r");
    double *x = calloc((size_t)DIGITS_ROWS * DIGITS_DIM, sizeof(*x));
    char line[1024];
    size_t r = 0;

    assert_non_null(f);
    assert_non_null(x);
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *end;

        assert_true(r < DIGITS_ROWS);
        for (int i = 0; i < DIGITS_DIM; i++) {
            x[r * DIGITS_DIM + (size_t)i] = strtod(p, &end);
            assert_true(end != p);
            assert_true(*end == (i == DIGITS_DIM - 1 ? '\n' : ','));
            p = end + 1;
        }
        r++;
    }
    assert_int_equal(r, DIGITS_ROWS);
    fclose(f);
    return x;
}

static void test_demo_kmeans(void **state)
{
    /* Printed by conf/models/train_demo_kmeans.py (numpy, float64). */
    static const unsigned want_cluster[5] = {5, 9, 9, 1, 3};
    static const double want_dist[5] = {13.95470674805418, 23.262494460257603, 30.02615432142839,
                                        21.90837079252597, 27.574569736243987};
    static const unsigned want_sizes[10] = {94, 171, 205, 171, 162, 178, 205, 179, 181, 251};
    struct ig_model *m = load_file_ok("conf/models/demo-kmeans.json");
    double *x = read_digits();
    unsigned sizes[10] = {0};
    struct ig_buf b;

    (void)state;
    assert_int_equal(ig_model_algo(m), IG_ALGO_KMEANS);
    assert_int_equal(ig_model_dim(m), 64);
    assert_int_equal(ig_model_k(m), 10);
    ig_buf_init(&b, 1 << 20);
    for (size_t r = 0; r < DIGITS_ROWS; r++) {
        char *end;
        double c, d;

        ig_buf_reset(&b);
        assert_int_equal(ig_model_predict_row(m, x + r * DIGITS_DIM, IG_FMT_CSV, &b), 0);
        c = strtod(b.data, &end);
        assert_true(*end == ',');
        d = strtod(end + 1, &end);
        assert_true(*end == '\0');
        assert_true(c >= 0 && c <= 9 && c == (double)(unsigned)c);
        sizes[(unsigned)c]++;
        if (r < 5) {
            char want[16];

            snprintf(want, sizeof(want), "%u.0,", want_cluster[r]);
            assert_memory_equal(b.data, want, strlen(want));
            /* numpy sums in another order: equal to ~1 ulp */
            assert_true(fabs(d - want_dist[r]) <= 1e-12 * want_dist[r]);
        }
    }
    assert_memory_equal(sizes, want_sizes, sizeof(sizes));
    ig_buf_clear(&b);
    free(x);
    ig_model_free(m);
}

/* Many threads on one model give the sequential answers. */
struct thread_arg {
    const struct ig_model *m;
    const double *x;
    const char *want; /* all rows, each followed by '\n' */
    int ok;
};

static void *thread_run(void *p)
{
    struct thread_arg *a = p;
    struct ig_buf b;

    ig_buf_init(&b, 1 << 24);
    a->ok = 1;
    for (int rep = 0; rep < 5; rep++) {
        ig_buf_reset(&b);
        for (size_t r = 0; r < DIGITS_ROWS; r++) {
            if (ig_model_predict_row(a->m, a->x + r * DIGITS_DIM, IG_FMT_JSONL, &b) != 0 ||
                ig_buf_append_char(&b, '\n') != 0)
                a->ok = 0;
        }
        if (b.len != strlen(a->want) || memcmp(b.data, a->want, b.len) != 0)
            a->ok = 0;
    }
    ig_buf_clear(&b);
    return NULL;
}

static void test_concurrent_predict(void **state)
{
    struct ig_model *m = load_file_ok("conf/models/demo-kmeans.json");
    double *x = read_digits();
    struct thread_arg args[4];
    pthread_t th[4];
    struct ig_buf want;

    (void)state;
    ig_buf_init(&want, 1 << 24);
    for (size_t r = 0; r < DIGITS_ROWS; r++) {
        assert_int_equal(ig_model_predict_row(m, x + r * DIGITS_DIM, IG_FMT_JSONL, &want), 0);
        assert_int_equal(ig_buf_append_char(&want, '\n'), 0);
    }
    {
        const char *first = "{\"closest_cluster\":5.0,\"distance_to_cluster\":13.9547067480541";

        assert_memory_equal(want.data, first, strlen(first));
    }
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){m, x, want.data, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thread_run, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].ok, 1);
    }
    ig_buf_clear(&want);
    free(x);
    ig_model_free(m);
}

/* ---- load errors -------------------------------------------------------- */

struct load_case {
    const char *json;
    int rv;
    const char *msg;
};

#define KM "{\"algorithm\":\"kmeans\","
#define PCA "{\"algorithm\":\"pca\","
#define LL "{\"algorithm\":\"linear-learner\","
#define LLB LL "\"feature_dim\":2,\"predictor_type\":\"binary_classifier\","

static const struct load_case load_cases[] = {
    /* not a model.json at all */
    {"", IG_ERR_INVALID,
     "model.json: invalid JSON at line 1 column 0: '[' or '{' expected near end of file"},
    {"{\"algorithm\":", IG_ERR_INVALID,
     "model.json: invalid JSON at line 1 column 13: unexpected token near end of file"},
    {"{\"algorithm\":\"kmeans\",\"algorithm\":\"pca\"}", IG_ERR_INVALID,
     "model.json: invalid JSON at line 1 column 33: duplicate object key near '\"algorithm\"'"},
    {"[1, 2]", IG_ERR_INVALID, "model.json: the top level must be a JSON object"},
    {"\"kmeans\"", IG_ERR_INVALID,
     "model.json: invalid JSON at line 1 column 8: '[' or '{' expected near '\"kmeans\"'"},
    /* algorithm */
    {"{}", IG_ERR_INVALID, "model.json: missing 'algorithm'"},
    {"{\"feature_dim\":2}", IG_ERR_INVALID, "model.json: missing 'algorithm'"},
    {"{\"algorithm\":1}", IG_ERR_INVALID, "model.json: 'algorithm' must be a string"},
    {"{\"algorithm\":null}", IG_ERR_INVALID, "model.json: 'algorithm' must be a string"},
    {"{\"algorithm\":\"xgboost\"}", IG_ERR_UNSUPPORTED,
     "model.json: unknown algorithm 'xgboost' (expected kmeans, pca or linear-learner)"},
    {"{\"algorithm\":\"KMeans\"}", IG_ERR_UNSUPPORTED,
     "model.json: unknown algorithm 'KMeans' (expected kmeans, pca or linear-learner)"},
    /* unknown keys */
    {KM "\"feature_dim\":2,\"centroids\":[[0,0]],\"components\":[[0,0]]}", IG_ERR_INVALID,
     "model.json: unknown key 'components' for algorithm kmeans"},
    {PCA "\"feature_dim\":1,\"components\":[[1]],\"bias\":0}", IG_ERR_INVALID,
     "model.json: unknown key 'bias' for algorithm pca"},
    {LLB "\"weights\":[1,2],\"bias\":0,\"treshold\":0.5}", IG_ERR_INVALID,
     "model.json: unknown key 'treshold' for algorithm linear-learner"},
    /* feature_dim */
    {KM "\"centroids\":[[0,0]]}", IG_ERR_INVALID, "model.json: missing 'feature_dim'"},
    {KM "\"feature_dim\":\"2\",\"centroids\":[[0,0]]}", IG_ERR_INVALID,
     "model.json: 'feature_dim' must be an integer"},
    {KM "\"feature_dim\":2.0,\"centroids\":[[0,0]]}", IG_ERR_INVALID,
     "model.json: 'feature_dim' must be an integer"},
    {KM "\"feature_dim\":0,\"centroids\":[[0,0]]}", IG_ERR_INVALID,
     "model.json: 'feature_dim' is 0, must be 1..100000"},
    {KM "\"feature_dim\":-3,\"centroids\":[[0,0]]}", IG_ERR_INVALID,
     "model.json: 'feature_dim' is -3, must be 1..100000"},
    {KM "\"feature_dim\":100001,\"centroids\":[[0,0]]}", IG_ERR_TOOBIG,
     "model.json: 'feature_dim' is 100001, must be 1..100000"},
    {KM "\"feature_dim\":4294967298,\"centroids\":[[0,0]]}", IG_ERR_TOOBIG,
     "model.json: 'feature_dim' is 4294967298, must be 1..100000"},
    /* centroids */
    {KM "\"feature_dim\":2}", IG_ERR_INVALID, "model.json: missing 'centroids'"},
    {KM "\"feature_dim\":2,\"centroids\":{}}", IG_ERR_INVALID,
     "model.json: 'centroids' must be an array of rows"},
    {KM "\"feature_dim\":2,\"centroids\":[]}", IG_ERR_INVALID, "model.json: 'centroids' is empty"},
    {KM "\"feature_dim\":2,\"centroids\":[[0,0],5]}", IG_ERR_INVALID,
     "model.json: 'centroids' row 1 is not an array"},
    {KM "\"feature_dim\":2,\"centroids\":[[0,0],[1]]}", IG_ERR_INVALID,
     "model.json: 'centroids' row 1 has 1 values, feature_dim is 2"},
    {KM "\"feature_dim\":2,\"centroids\":[[0,0,0]]}", IG_ERR_INVALID,
     "model.json: 'centroids' row 0 has 3 values, feature_dim is 2"},
    {KM "\"feature_dim\":2,\"centroids\":[[0,0],[1,\"x\"]]}", IG_ERR_INVALID,
     "model.json: 'centroids' row 1 value 1 is not a number"},
    {KM "\"feature_dim\":2,\"centroids\":[[null,0]]}", IG_ERR_INVALID,
     "model.json: 'centroids' row 0 value 0 is not a number"},
    {KM "\"feature_dim\":2,\"centroids\":[[true,0]]}", IG_ERR_INVALID,
     "model.json: 'centroids' row 0 value 0 is not a number"},
    {KM "\"feature_dim\":1,\"centroids\":[[1e999]]}", IG_ERR_INVALID,
     "model.json: invalid JSON at line 1 column 57: real number overflow near '1e999'"},
    /* PCA */
    {PCA "\"feature_dim\":3,\"mean\":[1,2,3]}", IG_ERR_INVALID,
     "model.json: missing 'components'"},
    {PCA "\"feature_dim\":3,\"components\":[]}", IG_ERR_INVALID,
     "model.json: 'components' is empty"},
    {PCA "\"feature_dim\":3,\"components\":[[1,0]]}", IG_ERR_INVALID,
     "model.json: 'components' row 0 has 2 values, feature_dim is 3"},
    {PCA "\"feature_dim\":3,\"mean\":{},\"components\":[[1,0,0]]}", IG_ERR_INVALID,
     "model.json: 'mean' must be an array of numbers"},
    {PCA "\"feature_dim\":3,\"mean\":[1,2],\"components\":[[1,0,0]]}", IG_ERR_INVALID,
     "model.json: 'mean' has 2 values, feature_dim is 3"},
    {PCA "\"feature_dim\":3,\"mean\":[1,[2],3],\"components\":[[1,0,0]]}", IG_ERR_INVALID,
     "model.json: 'mean' value 1 is not a number"},
    /* Linear Learner */
    {LL "\"feature_dim\":2,\"weights\":[1,2],\"bias\":0}", IG_ERR_INVALID,
     "model.json: missing 'predictor_type'"},
    {LL "\"feature_dim\":2,\"predictor_type\":1,\"weights\":[1,2],\"bias\":0}", IG_ERR_INVALID,
     "model.json: 'predictor_type' must be a string"},
    {LL "\"feature_dim\":2,\"predictor_type\":\"multiclass_classifier\",\"weights\":[1,2],"
        "\"bias\":0}",
     IG_ERR_UNSUPPORTED,
     "model.json: unknown predictor_type 'multiclass_classifier' (expected regressor or "
     "binary_classifier)"},
    {LLB "\"bias\":0}", IG_ERR_INVALID, "model.json: missing 'weights'"},
    {LLB "\"weights\":[[1,2]],\"bias\":0}", IG_ERR_INVALID,
     "model.json: 'weights' has 1 values, feature_dim is 2"},
    {LLB "\"weights\":[1,2,3],\"bias\":0}", IG_ERR_INVALID,
     "model.json: 'weights' has 3 values, feature_dim is 2"},
    {LLB "\"weights\":[1,\"2\"],\"bias\":0}", IG_ERR_INVALID,
     "model.json: 'weights' value 1 is not a number"},
    {LLB "\"weights\":3,\"bias\":0}", IG_ERR_INVALID,
     "model.json: 'weights' must be an array of numbers"},
    {LLB "\"weights\":[1,2]}", IG_ERR_INVALID, "model.json: missing 'bias'"},
    {LLB "\"weights\":[1,2],\"bias\":\"0\"}", IG_ERR_INVALID,
     "model.json: 'bias' must be a number"},
    {LLB "\"weights\":[1,2],\"bias\":[0]}", IG_ERR_INVALID, "model.json: 'bias' must be a number"},
    {LLB "\"weights\":[1,2],\"bias\":0,\"threshold\":\"0.5\"}", IG_ERR_INVALID,
     "model.json: 'threshold' must be a number"},
    {LLB "\"weights\":[1,2],\"bias\":0,\"threshold\":null}", IG_ERR_INVALID,
     "model.json: 'threshold' must be a number"},
    {LLB "\"weights\":[1,2],\"bias\":0,\"threshold\":1.5}", IG_ERR_INVALID,
     "model.json: 'threshold' is 1.5, must be between 0 and 1"},
    {LLB "\"weights\":[1,2],\"bias\":0,\"threshold\":-0.25}", IG_ERR_INVALID,
     "model.json: 'threshold' is -0.25, must be between 0 and 1"},
};

static void test_load_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(load_cases); i++) {
        const struct load_case *c = &load_cases[i];
        struct ig_model *m = (struct ig_model *)&m; /* must be reset to NULL */
        char err[ERRLEN] = "";
        int rv = ig_model_load_json(c->json, strlen(c->json), &m, err, sizeof(err));

        if (rv != c->rv || strcmp(err, c->msg) != 0)
            fail_msg("case %zu %s:\n got %d '%s'\nwant %d '%s'", i, c->json, rv, err, c->rv,
                     c->msg);
        assert_null(m);
    }
}

/* A 64-feature model whose row 3 is one value short: the message from the
 * design brief. */
static void test_load_dim_mismatch_64(void **state)
{
    struct ig_buf b;
    struct ig_model *m = NULL;
    char err[ERRLEN] = "";

    (void)state;
    ig_buf_init(&b, 1 << 20);
    assert_int_equal(ig_buf_append_str(&b, KM "\"feature_dim\":64,\"centroids\":["), 0);
    for (int r = 0; r < 5; r++) {
        assert_int_equal(ig_buf_append_str(&b, r ? ",[" : "["), 0);
        for (int i = 0; i < (r == 3 ? 63 : 64); i++)
            assert_int_equal(ig_buf_printf(&b, "%s%d", i ? "," : "", i), 0);
        assert_int_equal(ig_buf_append_char(&b, ']'), 0);
    }
    assert_int_equal(ig_buf_append_str(&b, "]}"), 0);
    assert_int_equal(ig_model_load_json(b.data, b.len, &m, err, sizeof(err)), IG_ERR_INVALID);
    assert_string_equal(err, "model.json: 'centroids' row 3 has 63 values, feature_dim is 64");
    assert_null(m);
    ig_buf_clear(&b);
}

/* IG_MODEL_MAX_ROWS rows load; one more is refused. */
static void test_load_row_cap(void **state)
{
    struct ig_buf b;
    struct ig_model *m = NULL;
    char err[ERRLEN] = "";

    (void)state;
    ig_buf_init(&b, 1 << 22);
    assert_int_equal(ig_buf_append_str(&b, PCA "\"feature_dim\":1,\"components\":[[1]"), 0);
    for (unsigned r = 1; r < IG_MODEL_MAX_ROWS; r++)
        assert_int_equal(ig_buf_append_str(&b, ",[1]"), 0);
    assert_int_equal(ig_buf_append_str(&b, "]}"), 0);
    assert_int_equal(ig_model_load_json(b.data, b.len, &m, err, sizeof(err)), 0);
    assert_int_equal(ig_model_k(m), IG_MODEL_MAX_ROWS);
    ig_model_free(m);

    b.len -= 2;
    assert_int_equal(ig_buf_append_str(&b, ",[1]]}"), 0);
    m = NULL;
    assert_int_equal(ig_model_load_json(b.data, b.len, &m, err, sizeof(err)), IG_ERR_TOOBIG);
    assert_string_equal(err, "model.json: 'components' has 100001 rows, the cap is 100000");
    assert_null(m);
    ig_buf_clear(&b);
}

/* feature_dim at its cap loads. */
static void test_load_dim_cap(void **state)
{
    struct ig_buf b;
    struct ig_model *m;
    double *x;

    (void)state;
    ig_buf_init(&b, 1 << 22);
    assert_int_equal(ig_buf_printf(&b, LL "\"feature_dim\":%u,\"predictor_type\":\"regressor\","
                                          "\"bias\":0.5,\"weights\":[0",
                                   IG_MODEL_MAX_DIM),
                     0);
    for (unsigned i = 1; i < IG_MODEL_MAX_DIM; i++)
        assert_int_equal(ig_buf_append_str(&b, i == IG_MODEL_MAX_DIM - 1 ? ",2" : ",0"), 0);
    assert_int_equal(ig_buf_append_str(&b, "]}"), 0);
    m = load_json_ok(b.data);
    assert_int_equal(ig_model_dim(m), IG_MODEL_MAX_DIM);
    x = calloc(IG_MODEL_MAX_DIM, sizeof(*x));
    assert_non_null(x);
    x[IG_MODEL_MAX_DIM - 1] = 3;
    expect_row(m, x, IG_FMT_CSV, "6.5");
    free(x);
    ig_model_free(m);
    ig_buf_clear(&b);
}

/* The size cap is checked before parsing. */
static void test_load_size_cap(void **state)
{
    char *big = calloc((size_t)IG_MODEL_MAX_FILE + 1, 1); /* zero pages, never touched */
    struct ig_model *m = NULL;
    char err[ERRLEN] = "";

    (void)state;
    assert_non_null(big);
    assert_int_equal(ig_model_load_json(big, (size_t)IG_MODEL_MAX_FILE + 1, &m, err, sizeof(err)),
                     IG_ERR_TOOBIG);
    assert_string_equal(err, "model.json: 268435457 bytes, the cap is 268435456");
    assert_null(m);
    free(big);
}

static void test_load_err_buffer(void **state)
{
    struct ig_model *m = NULL;
    char err[8];

    (void)state;
    /* Truncated but terminated. */
    memset(err, 'x', sizeof(err));
    assert_int_equal(ig_model_load_json("{}", 2, &m, err, sizeof(err)), IG_ERR_INVALID);
    assert_string_equal(err, "model.j");
    /* No error buffer at all. */
    assert_int_equal(ig_model_load_json("{}", 2, &m, NULL, 0), IG_ERR_INVALID);
    assert_null(m);
    assert_int_equal(ig_model_load_file("/nonexistent/model.json", &m, NULL, 0), IG_ERR_IO);
    assert_null(m);
    /* Not NUL-terminated input: only <len> bytes are read. */
    {
        const char buf[] = "{\"algorithm\":\"kmeans\",\"feature_dim\":1,\"centroids\":[[2]]}xyz";

        m = NULL;
        assert_int_equal(ig_model_load_json(buf, sizeof(buf) - 4, &m, NULL, 0), 0);
        assert_int_equal(ig_model_k(m), 1);
        ig_model_free(m);
    }
    ig_model_free(NULL);
}

static void test_load_file_errors(void **state)
{
    char tmpl[] = "/tmp/test_model_XXXXXX";
    char path[64], want[160], err[ERRLEN] = "";
    struct ig_model *m = NULL;
    int fd;

    (void)state;
    assert_int_equal(ig_model_load_file("/nonexistent/model.json", &m, err, sizeof(err)),
                     IG_ERR_IO);
    assert_string_equal(err, "cannot open /nonexistent/model.json: No such file or directory");
    assert_null(m);

    assert_int_equal(ig_model_load_file("/tmp", &m, err, sizeof(err)), IG_ERR_IO);
    assert_string_equal(err, "/tmp: not a regular file");

    /* Validation messages name the file. */
    fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    snprintf(path, sizeof(path), "%s", tmpl);
    assert_int_equal(write(fd, "{\"algorithm\":\"pca\",\"feature_dim\":2}", 35), 35);
    assert_int_equal(ig_model_load_file(path, &m, err, sizeof(err)), IG_ERR_INVALID);
    snprintf(want, sizeof(want), "%s: missing 'components'", path);
    assert_string_equal(err, want);
    assert_null(m);

    /* An empty file. */
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(ig_model_load_file(path, &m, err, sizeof(err)), IG_ERR_INVALID);
    snprintf(want, sizeof(want),
             "%s: invalid JSON at line 1 column 0: '[' or '{' expected near end of file", path);
    assert_string_equal(err, want);

    /* One byte over the cap (a sparse file): refused before reading. */
    assert_int_equal(ftruncate(fd, (off_t)IG_MODEL_MAX_FILE + 1), 0);
    assert_int_equal(ig_model_load_file(path, &m, err, sizeof(err)), IG_ERR_TOOBIG);
    snprintf(want, sizeof(want), "%s: 268435457 bytes, the cap is 268435456", path);
    assert_string_equal(err, want);
    assert_null(m);

    close(fd);
    unlink(path);
}

/* ---- XGBoost -------------------------------------------------------------- */

/*
 * Expected values: printed by tests/data/xgb-gen.c, which wrote the models
 * (XGBoosterPredict on a float32 DMatrix of these rows, the model loaded
 * afresh from its file; each value the shortest decimal that reads back to
 * XGBoost's float32 as a double):
 *   cc -std=c11 -o /tmp/xgb-gen tests/data/xgb-gen.c -lxgboost -lm
 *   /tmp/xgb-gen tests/data            (Debian libxgboost 1.7.4)
 */
#define XGB_NTEST 4
static const double xgb_rows[XGB_NTEST][3] = {
    {0, 0, 0}, {1, 2, 3}, {-1.5, 0.25, 4}, {5, -3, 0.5}};
static const char *const xgb_binary_want[XGB_NTEST] = {
    "0.7796534299850464", "0.6477199196815491", "0.22329078614711761", "0.7798811793327332"};
static const char *const xgb_regression_want[XGB_NTEST] = {
    "1.394576072692871", "1.2445822954177856", "-1.1384577751159668", "5.309835910797119"};
static const char *const xgb_multi_want[XGB_NTEST] = {
    "0.3555655777454376,0.28076595067977905,0.3636685311794281",
    "0.38421398401260376,0.4164087772369385,0.19937720894813538",
    "0.7177814245223999,0.14050713181495667,0.14171147346496582",
    "0.24871960282325745,0.12372762709856033,0.6275527477264404"};

static void check_xgb(const char *rel, uint32_t k, const char *const *want)
{
    struct ig_model *m = load_file_ok(rel);
    char json[256];
    struct ig_buf b;

    assert_int_equal(ig_model_algo(m), IG_ALGO_XGBOOST);
    assert_string_equal(ig_model_algo_name(m), "xgboost");
    assert_string_equal(ig_model_json_key(m), "predictions");
    assert_int_equal(ig_model_dim(m), 3);
    assert_int_equal(ig_model_k(m), k);
    ig_buf_init(&b, 4096);
    for (int r = 0; r < XGB_NTEST; r++) {
        ig_buf_reset(&b);
        assert_int_equal(ig_model_predict_row(m, xgb_rows[r], IG_FMT_CSV, &b), 0);
        assert_string_equal(b.data, want[r]);
        if (k == 1)
            snprintf(json, sizeof(json), "{\"score\":%s}", want[r]);
        else
            snprintf(json, sizeof(json), "{\"score\":[%s]}", want[r]);
        ig_buf_reset(&b);
        assert_int_equal(ig_model_predict_row(m, xgb_rows[r], IG_FMT_JSON, &b), 0);
        assert_string_equal(b.data, json);
        ig_buf_reset(&b);
        assert_int_equal(ig_model_predict_row(m, xgb_rows[r], IG_FMT_JSONL, &b), 0);
        assert_string_equal(b.data, json);
    }
    /* Appends; an unknown format is refused. */
    ig_buf_reset(&b);
    assert_int_equal(ig_buf_append(&b, "x,", 2), 0);
    assert_int_equal(ig_model_predict_row(m, xgb_rows[0], IG_FMT_CSV, &b), 0);
    assert_memory_equal(b.data, "x,", 2);
    assert_string_equal(b.data + 2, want[0]);
    assert_int_equal(ig_model_predict_row(m, xgb_rows[0], IG_FMT_COUNT, &b), IG_ERR_INVALID);
    /* A row that does not fit leaves the buffer as it was. */
    {
        struct ig_buf small;

        ig_buf_init(&small, 8);
        assert_int_equal(ig_buf_append(&small, "ab", 2), 0);
        assert_int_equal(ig_model_predict_row(m, xgb_rows[1], IG_FMT_JSON, &small),
                         IG_ERR_TOOBIG);
        assert_int_equal(small.len, 2);
        assert_string_equal(small.data, "ab");
        ig_buf_clear(&small);
    }
    ig_buf_clear(&b);
    ig_model_free(m);
}

/* XGBoost's binary format, as SageMaker's container saves xgboost-model. */
static void test_xgb_binary(void **state)
{
    (void)state;
    check_xgb("tests/data/xgb-binary.model", 1, xgb_binary_want);
}

/* XGBoost's JSON format: JSON, but not a model.json. */
static void test_xgb_regression_json(void **state)
{
    (void)state;
    check_xgb("tests/data/xgb-regression.json", 1, xgb_regression_want);
}

/* multi:softprob in UBJSON: the class probabilities on one line. */
static void test_xgb_multi_ubj(void **state)
{
    (void)state;
    check_xgb("tests/data/xgb-multi.ubj", 3, xgb_multi_want);
}

/* NaN is a missing feature, as in SageMaker's container (not an error). */
static void test_xgb_missing(void **state)
{
    struct ig_model *m = load_file_ok("tests/data/xgb-binary.model");
    double x[3] = {NAN, NAN, NAN};
    struct ig_buf b;

    (void)state;
    ig_buf_init(&b, 4096);
    assert_int_equal(ig_model_predict_row(m, x, IG_FMT_CSV, &b), 0);
    assert_true(b.len > 0 && strtod(b.data, NULL) > 0.0 && strtod(b.data, NULL) < 1.0);
    ig_buf_clear(&b);
    ig_model_free(m);
}

/* Several worker threads predicting on one booster give the same bytes. */
struct xgb_thread {
    const struct ig_model *m;
    const char *want;
    int ok;
};

#define XGB_THREAD_ROWS 2000

static void xgb_predict_all(const struct ig_model *m, struct ig_buf *b, int *ok)
{
    for (int r = 0; r < XGB_THREAD_ROWS; r++) {
        double x[3] = {(double)(r % 13) - 6.0, (double)(r % 7) * 0.5 - 1.5,
                       (double)(r % 5) - 2.0};

        if (ig_model_predict_row(m, x, r % 2 ? IG_FMT_JSONL : IG_FMT_CSV, b) != 0 ||
            ig_buf_append_char(b, '\n') != 0)
            *ok = 0;
    }
}

static void *xgb_thread_run(void *p)
{
    struct xgb_thread *a = p;
    struct ig_buf b;

    ig_buf_init(&b, 1 << 24);
    a->ok = 1;
    for (int rep = 0; rep < 3; rep++) {
        ig_buf_reset(&b);
        xgb_predict_all(a->m, &b, &a->ok);
        if (b.len != strlen(a->want) || memcmp(b.data, a->want, b.len) != 0)
            a->ok = 0;
    }
    ig_buf_clear(&b);
    return NULL;
}

static void test_xgb_concurrent(void **state)
{
    static const char *const files[] = {"tests/data/xgb-binary.model",
                                        "tests/data/xgb-multi.ubj"};

    (void)state;
    for (size_t f = 0; f < IG_ARRAY_SIZE(files); f++) {
        struct ig_model *m = load_file_ok(files[f]);
        struct xgb_thread args[4];
        pthread_t th[4];
        struct ig_buf want;
        int ok = 1;

        ig_buf_init(&want, 1 << 24);
        xgb_predict_all(m, &want, &ok);
        assert_int_equal(ok, 1);
        for (int i = 0; i < 4; i++) {
            args[i] = (struct xgb_thread){m, want.data, 0};
            assert_int_equal(pthread_create(&th[i], NULL, xgb_thread_run, &args[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_int_equal(args[i].ok, 1);
        }
        ig_buf_clear(&want);
        ig_model_free(m);
    }
}

/* The bytes of a test data file (NUL-terminated). */
static char *read_data(const char *rel, size_t *len)
{
    FILE *f = fopen(test_path(rel), "rb");
    char *buf;

    assert_non_null(f);
    buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

/* Write <len> bytes to a new temporary file; its path in <path>. */
static void write_tmp(char *path, size_t pathlen, const char *buf, size_t len)
{
    char tmpl[] = "/tmp/test_model_xgb_XXXXXX";
    int fd = mkstemp(tmpl);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    snprintf(path, pathlen, "%s", tmpl);
}

/* Replace the first <from> in <s> (NUL-terminated, room for it) by <to>. */
static void replace(char *s, const char *from, const char *to)
{
    char *p = strstr(s, from);
    size_t fl = strlen(from), tl = strlen(to);

    assert_non_null(p);
    memmove(p + tl, p + fl, strlen(p + fl) + 1);
    memcpy(p, to, tl);
}

/* Load <buf> as a file: the result, the message after "PATH: " in <msg>. */
static int load_tmp(const char *buf, size_t len, char *msg, size_t msglen)
{
    char path[64], err[1024] = "";
    struct ig_model *m = NULL;
    size_t pl;
    int rv;

    write_tmp(path, sizeof(path), buf, len);
    rv = ig_model_load_file(path, &m, err, sizeof(err));
    unlink(path);
    if (rv == 0) {
        assert_non_null(m);
        ig_model_free(m);
        snprintf(msg, msglen, "%s", "");
        return 0;
    }
    assert_null(m);
    pl = strlen(path);
    assert_memory_equal(err, path, pl);
    assert_memory_equal(err + pl, ": ", 2);
    snprintf(msg, msglen, "%s", err + pl + 2);
    return rv;
}

static void test_xgb_load_errors(void **state)
{
    static const char garbage[] = "\x01\x02\x03 not a model at all \xff\xfe";
    char msg[1024];
    size_t len, jlen;
    char *js = read_data("tests/data/xgb-regression.json", &jlen);
    char *bin;

    (void)state;
    /* Bytes that are neither. */
    assert_int_equal(load_tmp(garbage, sizeof(garbage) - 1, msg, sizeof(msg)), IG_ERR_INVALID);
    print_message("garbage: %s\n", msg);
    assert_true(strncmp(msg, "neither a model.json nor an XGBoost model XGBoost can load: ",
                        60) == 0);
    assert_null(strchr(msg, '\n'));
    /* A truncated binary model. */
    bin = read_data("tests/data/xgb-binary.model", &len);
    assert_int_equal(load_tmp(bin, len / 2, msg, sizeof(msg)), IG_ERR_INVALID);
    print_message("truncated: %s\n", msg);
    assert_true(strncmp(msg, "neither a model.json nor an XGBoost model XGBoost can load: ",
                        60) == 0);
    free(bin);
    /* XGBoost's JSON with something wrong in it. */
    assert_int_equal(load_tmp("{\"learner\":{}}", 14, msg, sizeof(msg)), IG_ERR_INVALID);
    print_message("bad learner: %s\n", msg);
    assert_true(strncmp(msg, "neither a model.json nor an XGBoost model XGBoost can load: ",
                        60) == 0);
    /* A model.json stays a model.json: its own messages. */
    assert_int_equal(load_tmp("{\"algorithm\":\"pca\",\"learner\":1}", 31, msg, sizeof(msg)),
                     IG_ERR_INVALID);
    assert_string_equal(msg, "unknown key 'learner' for algorithm pca");
    assert_int_equal(load_tmp("  {\"algorithm\":", 15, msg, sizeof(msg)), IG_ERR_INVALID);
    assert_string_equal(msg,
                        "invalid JSON at line 1 column 15: unexpected token near end of file");
    assert_int_equal(load_tmp("{}", 2, msg, sizeof(msg)), IG_ERR_INVALID);
    assert_string_equal(msg, "missing 'algorithm'");
    /* XGBoost's JSON loads whatever its spacing. */
    {
        char *sp = calloc(1, jlen + 8);

        assert_non_null(sp);
        memcpy(sp, "\n { ", 4);
        memcpy(sp + 4, js + 1, jlen - 1);
        assert_int_equal(load_tmp(sp, jlen + 3, msg, sizeof(msg)), 0);
        free(sp);
    }
    /* 0 features: xgb-nofeatures.json is xgb-regression.json with no trees
     * and num_feature "0" (with trees XGBoost counts their features). */
    bin = read_data("tests/data/xgb-nofeatures.json", &len);
    assert_int_equal(load_tmp(bin, len, msg, sizeof(msg)), IG_ERR_INVALID);
    assert_string_equal(msg, "the XGBoost model's number of features: Check failed: "
                             "mparam_.num_feature != 0 (0 vs. 0) : 0 feature is supplied.  Are "
                             "you using raw Booster interface?");
    free(bin);
    /* More features than the cap. */
    replace(js, "\"num_feature\":\"3\",\"num_target\"",
            "\"num_feature\":\"100001\",\"num_target\"");
    assert_int_equal(load_tmp(js, strlen(js), msg, sizeof(msg)), IG_ERR_TOOBIG);
    assert_string_equal(msg, "the XGBoost model has 100001 features, the cap is 100000");
    replace(js, "\"num_feature\":\"100001\"", "\"num_feature\":\"100000\"");
    assert_int_equal(load_tmp(js, strlen(js), msg, sizeof(msg)), 0);
    free(js);
}

/* A model whose output overflows float32: the row fails, <out> untouched. */
static void test_xgb_not_finite(void **state)
{
    char path[64], err[ERRLEN] = "";
    struct ig_model *m = NULL;
    struct ig_buf b;
    size_t len;
    char *js = read_data("tests/data/xgb-regression.json", &len);

    (void)state;
    /* Tree 0's four leaves and the base score: 3e38 each, whose sum is past
     * FLT_MAX. */
    replace(js, "\"base_score\":\"5E-1\"", "\"base_score\":\"3E38\"");
    replace(js, "-2.3333333E0,-1.0625E0,2.75E-1,2.1517856E0", "3E38,3E38,3E38,3E38");
    write_tmp(path, sizeof(path), js, strlen(js));
    assert_int_equal(ig_model_load_file(path, &m, err, sizeof(err)), 0);
    unlink(path);
    ig_buf_init(&b, 4096);
    assert_int_equal(ig_buf_append(&b, "keep", 4), 0);
    for (enum ig_format f = IG_FMT_CSV; f < IG_FMT_COUNT; f++) {
        if (f == IG_FMT_LIBSVM) /* a request format only */
            continue;
        assert_int_equal(ig_model_predict_row(m, xgb_rows[0], f, &b), IG_MODEL_NOT_FINITE);
        assert_string_equal(b.data, "keep");
    }
    assert_string_equal(ig_model_not_finite_msg(m),
                        "the model's output is not finite (XGBoost: NaN or infinity).");
    ig_buf_clear(&b);
    ig_model_free(m);
    free(js);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kmeans_2d),
        cmocka_unit_test(test_kmeans_ties),
        cmocka_unit_test(test_kmeans_dims),
        cmocka_unit_test(test_kmeans_many_clusters),
        cmocka_unit_test(test_pca),
        cmocka_unit_test(test_pca_no_mean),
        cmocka_unit_test(test_ll_regressor),
        cmocka_unit_test(test_ll_binary),
        cmocka_unit_test(test_ll_threshold),
        cmocka_unit_test(test_not_finite),
        cmocka_unit_test(test_record_out),
        cmocka_unit_test(test_predict_appends_and_caps),
        cmocka_unit_test(test_demo_kmeans),
        cmocka_unit_test(test_concurrent_predict),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_dim_mismatch_64),
        cmocka_unit_test(test_load_row_cap),
        cmocka_unit_test(test_load_dim_cap),
        cmocka_unit_test(test_load_size_cap),
        cmocka_unit_test(test_load_err_buffer),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_xgb_binary),
        cmocka_unit_test(test_xgb_regression_json),
        cmocka_unit_test(test_xgb_multi_ubj),
        cmocka_unit_test(test_xgb_missing),
        cmocka_unit_test(test_xgb_concurrent),
        cmocka_unit_test(test_xgb_load_errors),
        cmocka_unit_test(test_xgb_not_finite),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * xgb-gen.c - writes the XGBoost test models of tests/unit/test_model.c and
 * prints the predictions the tests assert, computed here with
 * XGBoosterPredictFromDMatrix on a float32 DMatrix (independently of
 * src/model.c, which predicts in place from doubles).
 *
 *   cc -std=c11 -O0 -o /tmp/xgb-gen tests/data/xgb-gen.c -lxgboost -lm
 *   /tmp/xgb-gen tests/data        (Debian libxgboost 1.7.4)
 *
 * Models (3 features, 48 training rows from a fixed formula, tree_method
 * exact, nthread 1, a few shallow trees):
 *   xgb-binary.model   binary:logistic, XGBoost's binary format (what
 *                      SageMaker's container's save_model writes as
 *                      xgboost-model)
 *   xgb-regression.json  reg:squarederror, XGBoost's JSON format
 *   xgb-multi.ubj      multi:softprob, 3 classes, UBJSON
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xgboost/c_api.h>

#define NROWS 48
#define NFEAT 3

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s: %s\n", #call, XGBGetLastError());                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* The rows the tests predict. */
static const float test_rows[][NFEAT] = {
    {0.0f, 0.0f, 0.0f},
    {1.0f, 2.0f, 3.0f},
    {-1.5f, 0.25f, 4.0f},
    {5.0f, -3.0f, 0.5f},
};
#define NTEST (sizeof(test_rows) / sizeof(test_rows[0]))

/* Shortest %.*g that reads back as the same double. */
static void shortest(char *out, size_t len, double v)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(out, len, "%.*g", p, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void train(const char *dir, const char *file, const char *objective, int nclass, int rounds)
{
    float x[NROWS * NFEAT], y[NROWS];
    DMatrixHandle d, t;
    BoosterHandle b;
    char path[512], num[16];

    for (int i = 0; i < NROWS; i++) {
        float a = (float)(i % 7) - 3.0f, c = (float)((i * 5) % 11) / 2.0f - 2.0f;
        float e = (float)((i * 3) % 5) - 1.0f;
        float s = a + 0.5f * c - e;

        x[i * NFEAT] = a;
        x[i * NFEAT + 1] = c;
        x[i * NFEAT + 2] = e;
        if (nclass > 1)
            y[i] = (float)(s < -1.0f ? 0 : s < 1.5f ? 1 : 2);
        else if (strcmp(objective, "binary:logistic") == 0)
            y[i] = s > 0.0f ? 1.0f : 0.0f;
        else
            y[i] = 2.0f * a - c + 0.25f * e * e;
    }
    CHECK(XGDMatrixCreateFromMat(x, NROWS, NFEAT, NAN, &d));
    CHECK(XGDMatrixSetFloatInfo(d, "label", y, NROWS));
    CHECK(XGBoosterCreate(&d, 1, &b));
    CHECK(XGBoosterSetParam(b, "objective", objective));
    CHECK(XGBoosterSetParam(b, "max_depth", "2"));
    CHECK(XGBoosterSetParam(b, "eta", "0.5"));
    CHECK(XGBoosterSetParam(b, "tree_method", "exact"));
    CHECK(XGBoosterSetParam(b, "nthread", "1"));
    CHECK(XGBoosterSetParam(b, "seed", "0"));
    if (nclass > 1) {
        snprintf(num, sizeof(num), "%d", nclass);
        CHECK(XGBoosterSetParam(b, "num_class", num));
    }
    for (int it = 0; it < rounds; it++)
        CHECK(XGBoosterUpdateOneIter(b, it, d));
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    CHECK(XGBoosterSaveModel(b, path));

    /* Predict the test rows from the saved file, loaded afresh. */
    {
        BoosterHandle b2;
        bst_ulong len;
        const float *out;
        char s[32];

        CHECK(XGBoosterCreate(NULL, 0, &b2));
        CHECK(XGBoosterLoadModel(b2, path));
        CHECK(XGDMatrixCreateFromMat(&test_rows[0][0], NTEST, NFEAT, NAN, &t));
        CHECK(XGBoosterPredict(b2, t, 0, 0, 0, &len, &out));
        printf("%s (%s):\n", file, objective);
        for (size_t r = 0; r < NTEST; r++) {
            size_t per = (size_t)len / NTEST;

            printf("  {%g, %g, %g} -> ", test_rows[r][0], test_rows[r][1], test_rows[r][2]);
            for (size_t j = 0; j < per; j++) {
                shortest(s, sizeof(s), (double)out[r * per + j]);
                printf("%s%s", j ? "," : "", s);
            }
            printf("\n");
        }
        CHECK(XGDMatrixFree(t));
        CHECK(XGBoosterFree(b2));
    }
    CHECK(XGBoosterFree(b));
    CHECK(XGDMatrixFree(d));
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";

    train(dir, "xgb-binary.model", "binary:logistic", 1, 4);
    train(dir, "xgb-regression.json", "reg:squarederror", 1, 3);
    train(dir, "xgb-multi.ubj", "multi:softprob", 3, 2);
    return 0;
}

/* test_upstream_local.c - the embedded backend answers a batch built from
 * segments of two requests on the worker pool, completing on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "infergate/batch-t.h"
#include "infergate/common.h"
#include "infergate/upstream.h"
#include "infergate/workers.h"

static struct ig_batch *completed;

static void on_done(struct ig_batch *b, void *arg)
{
    completed = b;
    event_base_loopbreak(arg);
}

static void pred_is(const struct ig_batch *b, uint32_t i, const char *want)
{
    assert_int_equal(b->preds[i].len, strlen(want));
    assert_memory_equal(b->out + b->preds[i].off, want, strlen(want));
}

static void test_batch_of_two_requests(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_workers *w;
    struct ig_upstream *u;
    struct ig_upstream_env env = {0};
    char err[256];
    /* Request A: 3 rows; request B: 2 rows. The batch takes A's rows 1..2
     * and B's row 0. */
    double fa[] = {0, 0, 3.5, 0.5, 1, 2.5};
    double fb[] = {0.5, 0.5, 9, 9};
    struct ig_rowset a = {.nrows = 3, .dim = 2, .features = fa};
    struct ig_rowset b = {.nrows = 2, .dim = 2, .features = fb};
    struct ig_batch_seg segs[] = {{.owner = &a, .rs = &a, .first = 1, .nrows = 2},
                                  {.owner = &b, .rs = &b, .first = 0, .nrows = 1}};
    struct ig_batch batch = {.nrows = 3, .segs = segs, .nsegs = 2};

    (void)state;
    assert_int_equal(ig_workers_new(base, 2, 8, &w), 0);
    env.workers = w;
    assert_int_equal(ig_upstream_open("file://tests/data/kmeans-2d.json", &env, &u, err,
                                      sizeof(err)), 0);
    assert_string_equal(u->ops->name, "local");
    assert_int_equal(u->dim, 2);
    assert_string_equal(u->json_key, "predictions");
    assert_int_equal(u->ops->health(u, NULL, 0), 0);

    assert_int_equal(u->ops->submit_batch(u, &batch, IG_FMT_CSV, IG_FMT_CSV, on_done, base), 0);
    assert_null(completed); /* never from inside submit */
    event_base_dispatch(base);
    assert_ptr_equal(completed, &batch);
    assert_int_equal(batch.status, 0);
    /* (3.5,0.5) -> centroid 1 (4,0): sqrt(0.5) ; (1,2.5) -> centroid 2 (0,3):
     * sqrt(1.25) ; (0.5,0.5) -> centroid 0: sqrt(0.5). */
    pred_is(&batch, 0, "1.0,0.7071067811865476");
    pred_is(&batch, 1, "2.0,1.118033988749895");
    pred_is(&batch, 2, "0.0,0.7071067811865476");

    free(batch.out);
    free(batch.preds);
    completed = NULL;
    batch.out = NULL;
    batch.preds = NULL;
    assert_int_equal(u->ops->submit_batch(u, &batch, IG_FMT_CSV, IG_FMT_JSON, on_done, base), 0);
    event_base_dispatch(base);
    pred_is(&batch, 1, "{\"closest_cluster\":2.0,\"distance_to_cluster\":1.118033988749895}");
    free(batch.out);
    free(batch.preds);

    ig_upstream_free(u);
    ig_workers_free(w);
    event_base_free(base);
}

/* A row whose output is not finite fails alone: its prediction carries
 * IG_PRED_FAILED and the reason; the batch and its other rows succeed. */
static void test_not_finite_row(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_workers *w;
    struct ig_upstream *u;
    struct ig_upstream_env env = {0};
    char err[256];
    /* weights (1e308, -1e308): (1,1) -> 0; (2,0) -> overflow; (1,0) -> 1e308 */
    double fa[] = {1, 1, 2, 0, 1, 0};
    double fb[] = {0, 1, 9, 9};
    struct ig_rowset a = {.nrows = 3, .dim = 2, .features = fa};
    struct ig_rowset b = {.nrows = 2, .dim = 2, .features = fb};
    struct ig_batch_seg segs[] = {{.owner = &a, .rs = &a, .first = 0, .nrows = 3},
                                  {.owner = &b, .rs = &b, .first = 0, .nrows = 1}};
    struct ig_batch batch = {.nrows = 4, .segs = segs, .nsegs = 2};
    static const char why[] = "the model's output is not finite (overflow in the linear "
                              "learner score).";

    (void)state;
    assert_int_equal(ig_workers_new(base, 1, 8, &w), 0);
    env.workers = w;
    assert_int_equal(ig_upstream_open("file://tests/unit/data/ll-huge.json", &env, &u, err,
                                      sizeof(err)), 0);
    for (int f = 0; f <= IG_FMT_JSON; f++) { /* the text formats */
        completed = NULL;
        assert_int_equal(u->ops->submit_batch(u, &batch, IG_FMT_CSV, (enum ig_format)f, on_done, base), 0);
        event_base_dispatch(base);
        assert_ptr_equal(completed, &batch);
        assert_int_equal(batch.status, 0);
        pred_is(&batch, 0, f == IG_FMT_CSV ? "0.0" : "{\"score\":0.0}");
        assert_int_equal(batch.preds[1].len, IG_PRED_FAILED | (sizeof(why) - 1));
        assert_memory_equal(batch.out + batch.preds[1].off, why, sizeof(why) - 1);
        pred_is(&batch, 2, f == IG_FMT_CSV ? "1e+308" : "{\"score\":1e+308}");
        pred_is(&batch, 3, f == IG_FMT_CSV ? "-1e+308" : "{\"score\":-1e+308}");
        free(batch.out);
        free(batch.preds);
        batch.out = NULL;
        batch.preds = NULL;
    }
    ig_upstream_free(u);
    ig_workers_free(w);
    event_base_free(base);
}

static void test_open_errors(void **state)
{
    struct ig_upstream_env env = {.workers = NULL};
    struct ig_upstream *u = NULL;
    char err[256];

    (void)state;
    assert_int_equal(ig_upstream_open("ftp://h/x", &env, &u, err, sizeof(err)), IG_ERR_UNSUPPORTED);
    assert_string_equal(err, "model 'ftp://h/x': unknown scheme (file://, http(s)://, sagemaker://)");
    /* a remote model needs the loop: refused, not crashed, without one */
    assert_int_equal(ig_upstream_open("http://127.0.0.1:9", &env, &u, err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_null(u);
    assert_int_equal(ig_upstream_open("file:///nonexistent/model.json", &env, &u, err, sizeof(err)),
                     IG_ERR_IO);
    assert_null(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_of_two_requests),
        cmocka_unit_test(test_not_finite_row),
        cmocka_unit_test(test_open_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_workers.c - jobs run on workers, completions run on the loop thread,
 * in a bounded queue. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "infergate/common.h"
#include "infergate/workers.h"

struct job {
    pthread_t ran_on;
    pthread_t done_on;
    int value;
    int result;
    int *completed;
    struct event_base *base;
    int stop_after;
};

static void square(void *arg)
{
    struct job *j = arg;

    j->ran_on = pthread_self();
    j->result = j->value * j->value;
}

static void finished(void *arg)
{
    struct job *j = arg;

    j->done_on = pthread_self();
    if (++*j->completed == j->stop_after)
        event_base_loopbreak(j->base);
}

static void test_jobs_complete_on_loop(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_workers *w;
    struct job jobs[100];
    int completed = 0;

    (void)state;
    assert_int_equal(ig_workers_new(base, 3, 100, &w), 0);
    assert_int_equal(ig_workers_threads(w), 3);
    for (int i = 0; i < 100; i++) {
        jobs[i] = (struct job){.value = i, .completed = &completed, .base = base, .stop_after = 100};
        assert_int_equal(ig_workers_submit(w, square, finished, &jobs[i]), 0);
    }
    assert_int_equal(ig_workers_submit(w, square, finished, &jobs[0]), IG_ERR_FULL);
    event_base_dispatch(base);
    assert_int_equal(completed, 100);
    assert_int_equal(ig_workers_pending(w), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(jobs[i].result, i * i);
        assert_true(pthread_equal(jobs[i].done_on, pthread_self()));
        assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
    }
    ig_workers_free(w);
    event_base_free(base);
}

static void test_free_completes_queued_jobs(void **state)
{
    struct event_base *base = event_base_new();
    struct ig_workers *w;
    struct job jobs[10];
    int completed = 0;

    (void)state;
    assert_int_equal(ig_workers_new(base, 0, 10, &w), 0);
    assert_true(ig_workers_threads(w) >= 1);
    for (int i = 0; i < 10; i++) {
        jobs[i] = (struct job){.value = i + 1, .completed = &completed, .base = base,
                               .stop_after = -1};
        assert_int_equal(ig_workers_submit(w, square, finished, &jobs[i]), 0);
    }
    /* No loop turn: free must still run every job and its completion. */
    ig_workers_free(w);
    assert_int_equal(completed, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(jobs[i].result, (i + 1) * (i + 1));
    event_base_free(base);
}

/* Each worker's own nice value, seen from inside a job. */
static void read_nice(void *arg)
{
    struct job *j = arg;

    errno = 0;
    j->result = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    j->value = errno;
}

/* ig_workers_new_nice lowers the workers' priority, and only theirs: the
 * loop thread keeps the process's. */
static void test_nice_workers(void **state)
{
    struct event_base *base = event_base_new();
    int loop_nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    struct ig_workers *w;
    struct job jobs[4];
    int completed = 0;

    (void)state;
    assert_int_equal(ig_workers_new_nice(base, 2, 4, 5, &w), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){.completed = &completed, .base = base, .stop_after = 4};
        assert_int_equal(ig_workers_submit(w, read_nice, finished, &jobs[i]), 0);
    }
    event_base_dispatch(base);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(jobs[i].value, 0);
        assert_int_equal(jobs[i].result, loop_nice + 5 > 19 ? 19 : loop_nice + 5);
    }
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), loop_nice);
    ig_workers_free(w);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_complete_on_loop),
        cmocka_unit_test(test_free_completes_queued_jobs),
        cmocka_unit_test(test_nice_workers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * workers.h - a fixed pool of worker threads for CPU work (embedded model
 * inference on whole batches). Jobs run on a worker; their completion
 * callback runs back on the loop thread, woken through an eventfd. The loop
 * never waits on a worker.
 */
#ifndef INFERGATE_WORKERS_H
#define INFERGATE_WORKERS_H

#include <stdint.h>

struct event_base;
struct ig_workers;

typedef void ig_work_fn(void *arg);       /* on a worker thread */
typedef void ig_work_done_cb(void *arg);  /* on the loop thread, after work */

/*
 * Start <nthreads> workers (0 = one per online CPU) completing on <base>.
 * At most <max_queue> jobs wait; more get IG_ERR_FULL from submit.
 * Returns 0 or IG_ERR_IO (thread or eventfd creation failed).
 */
int ig_workers_new(struct event_base *base, uint32_t nthreads, uint32_t max_queue,
                   struct ig_workers **out);

/*
 * ig_workers_new, with each worker thread's nice value raised by <nice>
 * (a thread's own priority; the loop thread keeps the process's): for
 * long jobs that must not take the CPU from the loop when cores are
 * scarce, as the loop then wins every wake-up against them.
 */
int ig_workers_new_nice(struct event_base *base, uint32_t nthreads, uint32_t max_queue, int nice,
                        struct ig_workers **out);

/*
 * Queue a job. <work>(arg) runs on some worker, then <done>(arg) on the
 * loop thread. Returns 0 or IG_ERR_FULL.
 */
int ig_workers_submit(struct ig_workers *w, ig_work_fn *work, ig_work_done_cb *done, void *arg);

uint32_t ig_workers_threads(const struct ig_workers *w);

/* Jobs queued or running and not yet completed on the loop. */
uint32_t ig_workers_pending(const struct ig_workers *w);

/*
 * Stop: queued jobs still run and complete (their done callbacks run here,
 * on the calling loop thread), then the threads are joined and freed.
 */
void ig_workers_free(struct ig_workers *w);

#endif /* INFERGATE_WORKERS_H */

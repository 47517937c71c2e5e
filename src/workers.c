/*
 * workers.c - worker thread pool with an eventfd completion queue.
 *
 * Two FIFO lists under one mutex each: <todo> (loop -> workers, with a
 * condition variable) and <done> (workers -> loop, signalled by an eventfd
 * that a persistent libevent read event drains). Jobs are small fixed
 * records; the counts are bounded by max_queue.
 *
 * System calls are the cost of a job, not the list work: a submit wakes a
 * sleeping worker only when no worker already woken will take the job
 * (each woken worker takes jobs until <todo> is empty), and a worker
 * writes the eventfd only when it puts the first job into an empty <done>
 * (the loop takes the whole list at once: later jobs ride on that write).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "infergate/common.h"
#include "infergate/workers.h"

struct work_job {
    struct work_job *next;
    ig_work_fn *work;
    ig_work_done_cb *done;
    void *arg;
};

struct work_list {
    struct work_job *head;
    struct work_job *tail;
};

struct ig_workers {
    pthread_mutex_t lock;        /* guards todo, stopping */
    pthread_cond_t cond;         /* todo became non-empty, or stopping */
    struct work_list todo;
    uint32_t ntodo;              /* jobs in todo */
    uint32_t idle;               /* workers waiting on cond */
    uint32_t waking;             /* of those, signalled and not yet running */
    int stopping;

    pthread_mutex_t done_lock;   /* guards done */
    struct work_list done;

    int efd;                     /* eventfd: done is non-empty */
    struct event *ev;
    pthread_t *threads;
    uint32_t nthreads;
    uint32_t pending;            /* submitted, done callback not yet run (loop only) */
    uint32_t max_queue;
    int nice;                    /* added to each thread's nice value at start */
};

static void work_list_push(struct work_list *l, struct work_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static struct work_job *work_list_pop(struct work_list *l)
{
    struct work_job *j = l->head;

    if (j) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return j;
}

static void *workers_main(void *arg)
{
    struct ig_workers *w = arg;
    uint64_t one = 1;

    /* Linux nice values are per thread: only this one is lowered. Best
     * effort: a failure leaves the thread at the process's priority. */
    if (w->nice != 0) {
        id_t tid = (id_t)syscall(SYS_gettid);
        int cur = getpriority(PRIO_PROCESS, tid); /* inherited from the creating thread */

        if (setpriority(PRIO_PROCESS, tid, cur + w->nice) != 0)
            ig_log(IG_LOG_WARN, "workers: cannot add %d to the nice value: %d", w->nice, errno);
    }
    for (;;) {
        struct work_job *j;

        int first;

        pthread_mutex_lock(&w->lock);
        while (w->todo.head == NULL && !w->stopping) {
            w->idle++;
            pthread_cond_wait(&w->cond, &w->lock);
            w->idle--;
            if (w->waking > 0) /* (a spurious wake-up may take a signal's count) */
                w->waking--;
        }
        j = work_list_pop(&w->todo);
        if (j != NULL)
            w->ntodo--;
        pthread_mutex_unlock(&w->lock);
        if (j == NULL)
            return NULL; /* stopping and nothing left */

        j->work(j->arg);

        pthread_mutex_lock(&w->done_lock);
        first = w->done.head == NULL;
        work_list_push(&w->done, j);
        pthread_mutex_unlock(&w->done_lock);
        /* Only the job that made <done> non-empty notifies: the loop has
         * not taken the list since, and takes the later ones with it. A
         * full eventfd counter cannot happen with 64-bit counts. */
        if (first && write(w->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
            ig_log(IG_LOG_ERROR, "workers: eventfd write: %d", errno);
    }
}

/* Run every completed job's done callback, on the loop thread. */
static void workers_complete(struct ig_workers *w)
{
    struct work_list batch;
    struct work_job *j;

    pthread_mutex_lock(&w->done_lock);
    batch = w->done;
    w->done.head = w->done.tail = NULL;
    pthread_mutex_unlock(&w->done_lock);

    while ((j = work_list_pop(&batch)) != NULL) {
        w->pending--;
        j->done(j->arg);
        free(j);
    }
}

static void on_workers_eventfd(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;

    (void)what;
    if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
        ig_log(IG_LOG_ERROR, "workers: eventfd read: %d", errno);
    workers_complete(arg);
}

int ig_workers_new(struct event_base *base, uint32_t nthreads, uint32_t max_queue,
                   struct ig_workers **out)
{
    return ig_workers_new_nice(base, nthreads, max_queue, 0, out);
}

int ig_workers_new_nice(struct event_base *base, uint32_t nthreads, uint32_t max_queue, int nice,
                        struct ig_workers **out)
{
    struct ig_workers *w = ig_xcalloc(1, sizeof(*w));

    if (nthreads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        nthreads = n > 0 ? (uint32_t)n : 1;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->done_lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->max_queue = max_queue ? max_queue : 1;
    w->nice = nice;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd == -1)
        goto fail;
    w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_workers_eventfd, w);
    if (w->ev == NULL || event_add(w->ev, NULL) == -1)
        goto fail;
    w->threads = ig_xcalloc(nthreads, sizeof(*w->threads));
    for (; w->nthreads < nthreads; w->nthreads++)
        if (pthread_create(&w->threads[w->nthreads], NULL, workers_main, w) != 0)
            goto fail;
    *out = w;
    return 0;

fail:
    ig_workers_free(w);
    return IG_ERR_IO;
}

int ig_workers_submit(struct ig_workers *w, ig_work_fn *work, ig_work_done_cb *done, void *arg)
{
    struct work_job *j;

    if (w->pending >= w->max_queue)
        return IG_ERR_FULL;
    j = ig_xmalloc(sizeof(*j));
    j->work = work;
    j->done = done;
    j->arg = arg;
    w->pending++;
    pthread_mutex_lock(&w->lock);
    work_list_push(&w->todo, j);
    w->ntodo++;
    /* a sleeping worker is woken unless the workers already woken are as
     * many as the jobs waiting (a busy worker also takes the next job
     * when it is done, but it may be long at it) */
    if (w->idle > w->waking && w->ntodo > w->waking) {
        w->waking++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return 0;
}

uint32_t ig_workers_threads(const struct ig_workers *w)
{
    return w->nthreads;
}

uint32_t ig_workers_pending(const struct ig_workers *w)
{
    return w->pending;
}

void ig_workers_free(struct ig_workers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (uint32_t i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    workers_complete(w);
    if (w->ev)
        event_free(w->ev);
    if (w->efd != -1)
        close(w->efd);
    free(w->threads);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    pthread_mutex_destroy(&w->done_lock);
    free(w);
}

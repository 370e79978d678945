/* SPDX-License-Identifier: MIT */
/* receiver.c — see receiver.h. */
#include <pthread.h>
#include <stdlib.h>

#include "app/receiver.h"
#include "service/service.h"
#include "util/log.h"
#include "util/wait.h"

#define QUEUE_MAX 65536       /* events waiting for the writer */
#define BATCH_MAX 1024        /* events per transaction */
#define SLOW_COMMIT_US 100000 /* a commit this slow is logged */
/* At most this many writer threads (receiver_new's @writers). */
#define WRITERS 2

struct item {
	event *ev;
	receiver_done_fn done;
	void *ctx;
};

struct receiver {
	svc_ctx *sc; /* where events are stored (svc_events_store) */
	metrics *m;
	pthread_t writers[WRITERS];
	size_t nwriters; /* started */
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct item *queue; /* ring buffer of QUEUE_MAX */
	size_t head, len;
	bool stopping;
	receiver_commit_fn on_commit;
	void *on_commit_ctx;
	receiver_event_fn on_event;
	void *on_event_ctx;
};

/* Store one batch and tell every submitter. Runs on a writer thread; with
 * two writers two batches may be in here at once (each writer's own). */
static void commit_batch(receiver *r, struct item *items, size_t n)
{
	event *evs[BATCH_MAX];
	enum store_put results[BATCH_MAX];
	for (size_t i = 0; i < n; i++)
		evs[i] = items[i].ev;
	th_error err = {0, {0}};
	int64_t t0 = time_mono_us();
	int rc = svc_events_store(r->sc, evs, n, results, &err);
	int64_t took_us = time_mono_us() - t0;
	svc_note_commit(r->sc, rc, &err); /* for /healthz */
	metrics_observe(&r->m->commit_latency, took_us);
	/* every waiting request waited this long: worth a line at warn */
	if (took_us >= SLOW_COMMIT_US)
		log_warn("receiver", "a commit of %zu event(s) took %lld ms (disk or lock stall)",
		         n, (long long)(took_us / 1000));
	size_t fresh = 0;
	if (rc) {
		log_error("receiver", "storing %zu event(s) failed: %s", n, err.msg);
		for (size_t i = 0; i < n; i++)
			results[i] = STORE_PUT_FAILED;
	} else {
		atomic_fetch_add_explicit(&r->m->commits, 1, memory_order_relaxed);
		for (size_t i = 0; i < n; i++) {
			if (results[i] == STORE_PUT_NEW) {
				fresh++;
				atomic_fetch_add_explicit(&r->m->events_stored, 1,
				                          memory_order_relaxed);
			} else if (results[i] == STORE_PUT_DUPLICATE) {
				atomic_fetch_add_explicit(&r->m->events_duplicate, 1,
				                          memory_order_relaxed);
			}
		}
		log_debug("receiver", "committed %zu event(s), %zu new, in %lld us", n, fresh,
		          (long long)took_us);
	}
	/* committed: who watches new events (the live view) sees them first,
	 * while the events are still ours */
	if (fresh && r->on_event)
		for (size_t i = 0; i < n; i++)
			if (results[i] == STORE_PUT_NEW)
				r->on_event(r->on_event_ctx, items[i].ev);
	for (size_t i = 0; i < n; i++)
		items[i].done(items[i].ctx, items[i].ev, results[i], rc ? &err : NULL);
	if (fresh && r->on_commit)
		r->on_commit(r->on_commit_ctx, fresh);
}

static void *writer_main(void *arg)
{
	receiver *r = arg;
	struct item batch[BATCH_MAX];
	for (;;) {
		pthread_mutex_lock(&r->lock);
		while (!r->len && !r->stopping)
			pthread_cond_wait(&r->ready, &r->lock);
		if (!r->len && r->stopping) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		size_t n = r->len < BATCH_MAX ? r->len : BATCH_MAX;
		for (size_t i = 0; i < n; i++)
			batch[i] = r->queue[(r->head + i) % QUEUE_MAX];
		r->head = (r->head + n) % QUEUE_MAX;
		r->len -= n;
		pthread_mutex_unlock(&r->lock);
		commit_batch(r, batch, n);
	}
	return NULL;
}

int receiver_new(receiver **out, svc_ctx *sc, size_t writers, th_error *err)
{
	*out = NULL;
	if (writers < 1 || writers > WRITERS)
		return th_err(err, TH_EINVAL, "the receiver runs 1 to %d writers, not %zu", WRITERS,
		              writers);
	receiver *r = calloc(1, sizeof *r);
	if (!r || !(r->queue = calloc(QUEUE_MAX, sizeof *r->queue))) {
		free(r);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	r->sc = sc;
	r->m = sc->m;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->ready, NULL);
	for (; r->nwriters < writers; r->nwriters++) {
		if (pthread_create(&r->writers[r->nwriters], NULL, writer_main, r)) {
			receiver_free(r); /* stops the ones started */
			return th_err(err, TH_EIO, "cannot start the store writer threads");
		}
		thread_name(r->writers[r->nwriters], "th-writer");
	}
	*out = r;
	return 0;
}

void receiver_on_commit(receiver *r, receiver_commit_fn fn, void *ctx)
{
	r->on_commit = fn;
	r->on_commit_ctx = ctx;
}

void receiver_on_event(receiver *r, receiver_event_fn fn, void *ctx)
{
	r->on_event = fn;
	r->on_event_ctx = ctx;
}

int receiver_submit(receiver *r, event *ev, receiver_done_fn done, void *ctx, th_error *err)
{
	pthread_mutex_lock(&r->lock);
	if (r->stopping || r->len == QUEUE_MAX) {
		bool stopping = r->stopping;
		pthread_mutex_unlock(&r->lock);
		return th_err(err, TH_EUNAVAIL, stopping ? "shutting down" : "store queue is full");
	}
	r->queue[(r->head + r->len) % QUEUE_MAX] = (struct item){ev, done, ctx};
	r->len++;
	pthread_cond_signal(&r->ready);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void receiver_free(receiver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true; /* the writers still commit what is queued */
	pthread_cond_broadcast(&r->ready);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < r->nwriters; i++)
		pthread_join(r->writers[i], NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->ready);
	free(r->queue);
	free(r);
}

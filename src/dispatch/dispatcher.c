/* SPDX-License-Identifier: MIT */
/*
 * dispatcher.c — claim due deliveries, run them on worker threads, record
 * the outcome.
 *
 * Threads: one claimer and cfg.workers workers, sharing one mutex.
 *  - The claimer wakes on dispatcher_wake() (after a group commit that made
 *    deliveries: store_take_fresh_deliveries), when
 *    finished workers leave enough slots to claim (claim_due), when a first
 *    outcome is queued (to record it within RECORD_DELAY_MS), and every
 *    POLL_MS (retries fall due, other processes add work: `deliveries
 *    retry`, `events replay`). Running and claimed deliveries together fill
 *    at most SLOTS_PER_WORKER slots per worker, so memory stays bounded by
 *    the worker count, and a claim is made once half of them are free.
 *  - A worker takes the oldest queued delivery whose handler is below its
 *    concurrency cap, runs it and queues its outcome: done / failed (with the
 *    next attempt time) / dead.
 *  - The claimer records every queued outcome in ONE transaction right
 *    before it claims again (delivery_finish_many), or once the oldest has
 *    waited RECORD_DELAY_MS: each write transaction has a fixed cost (an
 *    fsync with synchronous=FULL; SQLite now commits claims and outcomes
 *    without one, docs/DESIGN.md), and one per delivery capped throughput.
 *    An outcome not yet recorded when the process dies is lost with it; the
 *    delivery's lease then expires and it runs again — at least once, as
 *    promised. While the process lives, outcomes the store
 *    refuses stay queued and are retried every POLL_MS; a delivery claimed
 *    again meanwhile (its lease ended) is not run again (drop_known).
 * Order per (webhook, handler) needs nothing here: the store never hands out
 * a delivery while an earlier event of the same webhook has an unfinished
 * delivery to the same handler.
 *
 * Claims carry a lease long enough to wait here behind the deliveries
 * claimed before them and then run to the timeout (claim_lease). If this
 * process dies, its running deliveries become due again when their lease
 * ends (or at once, at this host's next start: delivery_recover); pending
 * ones were never touched and run right after a restart.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch/dispatch.h"
#include "service/handlers.h"
#include "util/log.h"
#include "util/wait.h"

#define POLL_MS 250
#define LEASE_SLACK_MS 5000
#define MAX_WORKERS 256
/* Claim slots per worker: deliveries running or claimed and waiting. A
 * claim's walk of the queue and its commit cost the same whatever its size
 * (only its row updates grow with it), and slots are claimed half at a time:
 * at 2 per worker, claims of ~10 rows cost the claimer 72 us of CPU per
 * delivery in bench/dispatch.sh, at 4 per worker ~18 rows 55 us
 * (bench/RESULTS.md, session 10). */
#define SLOTS_PER_WORKER 4
#define MAX_OUTCOMES 1024 /* queued outcomes before workers wait for the claimer */
/* The longest an outcome waits to be recorded when no claim comes first (so
 * `deliveries list` shows it soon, however the slots are used). */
#define RECORD_DELAY_MS 50

/* An attempt's outcome: the metrics' names (done, failed, dead). */
enum outcome { OUT_DONE = METRICS_DONE, OUT_FAILED = METRICS_FAILED, OUT_DEAD = METRICS_DEAD };

/* Per handler: how many of its deliveries run now (for the concurrency cap;
 * what the attempts came to is counted in the metrics, lock-free). */
typedef struct hstat {
	char id[64];
	char kind[12];
	unsigned running;
} hstat;

/* An attempt's outcome waiting to be recorded. */
typedef struct outcome_rec {
	char *id;
	enum delivery_status status;
	int64_t next_attempt_at;
	char *text;
	int64_t run_us; /* how long the attempt ran (the store's delivery rollup) */
	int attempts;   /* the attempt it is of: a later claim's count is undone */
} outcome_rec;

/* A claimed delivery waiting for a worker. */
typedef struct job {
	delivery d;
	handler h; /* loaded at claim time */
	bool have_handler;
} job;

struct dispatcher {
	svc_ctx *sc;
	pthread_mutex_t mu;
	pthread_cond_t work;  /* workers wait here for jobs */
	pthread_cond_t claim; /* the claimer waits here */
	bool wake;            /* a wake-up arrived while the claimer was busy */
	bool stopping;
	job *queue; /* claimed, not started; FIFO in claim (= event) order */
	size_t qlen, qcap;
	unsigned busy; /* workers running a job */
	hstat *stats;
	size_t nstats, cstats;
	outcome_rec *outcomes; /* finished attempts not yet in the store */
	size_t nout, cout;
	int64_t out_since; /* monotonic ms when the oldest of them was queued */
	uint64_t claim_errors;
	uint64_t record_errors;
	pthread_t claimer;
	pthread_t workers[MAX_WORKERS];
	unsigned nworkers;
	bool claimer_started;
};

/* ---- retry schedule ------------------------------------------------------------------ */

int64_t dispatch_retry_delay(const th_config *cfg, int attempt)
{
	if (attempt < 1 || (size_t)attempt > cfg->nretry)
		return -1;
	int64_t base = cfg->retry_ms[attempt - 1];
	uint32_t r = 0;
	if (rand_fill(&r, sizeof r))
		r = (uint32_t)time_mono_ms();
	/* +-10%: base * (0.9 + 0.2 * r / 2^32) */
	double f = 0.9 + 0.2 * ((double)r / 4294967296.0);
	int64_t d = (int64_t)((double)base * f);
	return d < 1 ? 1 : d;
}

/* ---- per-handler bookkeeping (called with mu held) ---------------------------------- */

static hstat *stat_for(dispatcher *d, const char *id, const char *kind)
{
	for (size_t i = 0; i < d->nstats; i++)
		if (str_eq(d->stats[i].id, id))
			return &d->stats[i];
	hstat *ns = mem_grow(d->stats, &d->cstats, d->nstats, sizeof *ns, 16);
	if (!ns)
		return NULL;
	d->stats = ns;
	hstat *s = &d->stats[d->nstats++];
	memset(s, 0, sizeof *s);
	str_copy(s->id, sizeof s->id, id);
	str_copy(s->kind, sizeof s->kind, kind ? kind : "");
	return s;
}

static void job_clear(job *j)
{
	delivery_clear(&j->d);
	handler_clear(&j->h);
	j->have_handler = false;
}

/* ---- running one delivery ---------------------------------------------------------- */

/* The connected function for @uid, or NULL. */
static const svc_func *func_for(svc_ctx *sc, const char *uid)
{
	for (size_t i = 0; i < sc->funcs->n; i++)
		if (str_eq(sc->funcs->v[i].uid, uid))
			return &sc->funcs->v[i];
	return NULL;
}

/* "@what: @err's message", malloc'd for a result's text (NULL when out of memory). */
static char *note_error(const char *what, const th_error *err)
{
	buf b;
	buf_init(&b, 600);
	buf_printf(&b, "%s: %s", what, err->msg);
	char *text = buf_detach(&b, NULL);
	buf_free(&b);
	return text;
}

/* Run @j once; fill @res. */
static void run_job(dispatcher *d, forwarder *fw, job *j, dispatch_result *res)
{
	svc_ctx *sc = d->sc;
	event ev = {0};
	th_error err = {0, {0}};
	memset(res, 0, sizeof *res);
	if (!j->have_handler) {
		res->text = str_dup("handler not found");
		return;
	}
	if (store_event_get(sc->st, j->d.event_id, &ev, &err) ||
	    event_fill_from_payload(&ev) /* what the store does not keep */) {
		res->text = note_error("loading the event", &err);
		return;
	}
	int64_t timeout = sc->cfg->exec_timeout_ms;
	switch (j->h.kind) {
	case HANDLER_EXEC: dispatch_exec(j->h.target, &ev, timeout, res); break;
	case HANDLER_FORWARD:
		/* the row keeps the whsec_ secret sealed; open it just to sign */
		if (handlers_open_secret(sc, &j->h, &err)) {
			res->text = note_error("opening the handler's signing secret", &err);
			break;
		}
		dispatch_forward(fw, &j->h, &ev, timeout, res);
		break;
	case HANDLER_FUNC: {
		const svc_func *f = func_for(sc, j->h.target);
		if (!f) {
			res->text = str_dup("C function not connected in this process");
			break;
		}
		ev.json = json_loadb(ev.payload, ev.payload_len, 0, NULL);
		int rc = f->fn(&ev, f->ctx);
		if (rc == 0) {
			res->ok = true;
		} else {
			char msg[64];
			str_printf(msg, sizeof msg, "C function returned %d", rc);
			res->text = str_dup(msg);
		}
		break;
	}
	}
	event_clear(&ev);
}

/* Queue @rec for the claimer to record; waits while the queue is full (the
 * store is down). Takes ownership of rec's strings. mu held. */
static void queue_outcome(dispatcher *d, outcome_rec *rec)
{
	while (d->nout >= MAX_OUTCOMES && !d->stopping)
		pthread_cond_wait(&d->work, &d->mu);
	outcome_rec *no = mem_grow(d->outcomes, &d->cout, d->nout, sizeof *no, 32);
	if (no) {
		d->outcomes = no;
		if (d->nout == 0)
			d->out_since = time_mono_ms();
		d->outcomes[d->nout++] = *rec;
		/* the first starts the claimer's RECORD_DELAY_MS; half full: record now */
		if (d->nout == 1 || d->nout == MAX_OUTCOMES / 2)
			pthread_cond_signal(&d->claim);
	} else {
		/* out of memory: the lease expires and the delivery runs again */
		log_error("dispatch", "out of memory recording delivery %s", rec->id);
		free(rec->id);
		free(rec->text);
	}
}

/* Record every queued outcome in one transaction. Called by the claimer
 * (and at stop) with mu NOT held. On failure they stay queued for the next
 * try and false is returned. */
static bool record_outcomes(dispatcher *d)
{
	pthread_mutex_lock(&d->mu);
	size_t n = d->nout;
	outcome_rec *recs = d->outcomes;
	d->outcomes = NULL;
	d->nout = d->cout = 0;
	pthread_mutex_unlock(&d->mu);
	if (!n) {
		free(recs);
		return true;
	}
	delivery_outcome *outs = calloc(n, sizeof *outs);
	th_error err = {0, {0}};
	int rc = outs ? 0 : th_err(&err, TH_ENOMEM, "out of memory");
	for (size_t i = 0; outs && i < n; i++)
		outs[i] = (delivery_outcome){recs[i].id,   recs[i].status, recs[i].next_attempt_at,
		                             recs[i].text, recs[i].run_us, recs[i].attempts};
	if (!rc)
		rc = store_delivery_finish_many(d->sc->st, outs, n, NULL, &err);
	free(outs);
	pthread_mutex_lock(&d->mu);
	if (rc) {
		/* put them back in front of anything queued meanwhile, try again later */
		if (d->record_errors++ % 40 == 0)
			log_error("dispatch", "recording %zu delivery outcome(s): %s", n, err.msg);
		outcome_rec *merged = realloc(recs, (n + d->nout) * sizeof *merged);
		if (merged) {
			d->out_since = time_mono_ms(); /* try again after RECORD_DELAY_MS */
			if (d->nout)
				memcpy(&merged[n], d->outcomes, d->nout * sizeof *merged);
			free(d->outcomes);
			d->outcomes = merged;
			d->nout += n;
			d->cout = d->nout;
			recs = NULL;
			n = 0;
		}
	}
	pthread_cond_broadcast(&d->work); /* room in the outcome queue */
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		free(recs[i].id);
		free(recs[i].text);
	}
	free(recs);
	return rc == 0;
}

/* Decide the outcome of @j's attempt (which ran for @run_us), count it and
 * queue it for recording. */
static void finish_job(dispatcher *d, job *j, const dispatch_result *res, int64_t run_us)
{
	svc_ctx *sc = d->sc;
	th_error err = {0, {0}};
	enum delivery_status st;
	int64_t next = 0;
	enum outcome oc;
	if (res->ok) {
		st = DELIVERY_DONE;
		oc = OUT_DONE;
	} else if (res->gone) {
		/* 410: the receiver is gone for good; stop sending it anything */
		if (store_handler_set_enabled(sc->st, j->d.handler_id, false, &err))
			log_warn("dispatch", "disabling handler %s: %s", j->d.handler_id, err.msg);
		else
			log_warn("dispatch", "handler %s answered 410 Gone: disabled",
			         j->d.handler_id);
		st = DELIVERY_DEAD;
		oc = OUT_DEAD;
	} else {
		int64_t delay = dispatch_retry_delay(sc->cfg, j->d.attempts);
		if (delay < 0) {
			st = DELIVERY_DEAD;
			oc = OUT_DEAD;
		} else {
			st = DELIVERY_FAILED;
			oc = OUT_FAILED;
			next = time_now_ms() + delay;
		}
	}
	if (oc != OUT_DONE)
		log_info("dispatch", "delivery %s (event %s, handler %s) attempt %d %s: %s",
		         j->d.id, j->d.event_id, j->d.handler_id, j->d.attempts,
		         metrics_outcome_name((enum metrics_outcome)oc),
		         res->text ? res->text : "");
	else
		log_debug("dispatch", "delivery %s done", j->d.id);
	metrics_handler_run(sc->m, j->d.handler_id, j->h.kind, run_us, (enum metrics_outcome)oc);
	outcome_rec rec = {str_dup(j->d.id), st, next, str_dup(res->text), run_us, j->d.attempts};
	pthread_mutex_lock(&d->mu);
	if (rec.id)
		queue_outcome(d, &rec);
	else
		free(rec.text); /* out of memory: the lease expires and it runs again */
	pthread_mutex_unlock(&d->mu);
}

/* ---- threads ----------------------------------------------------------------------- */

/* Index of the first queued job whose handler is below the cap, or -1. mu held. */
static long next_runnable(dispatcher *d)
{
	unsigned cap = d->sc->cfg->handler_concurrency ? d->sc->cfg->handler_concurrency : 1;
	for (size_t i = 0; i < d->qlen; i++) {
		hstat *s =
		    stat_for(d, d->queue[i].d.handler_id,
		             d->queue[i].have_handler ? handler_kind_name(d->queue[i].h.kind) : "");
		if (!s || s->running < cap)
			return (long)i;
	}
	return -1;
}

/* The claimer's rule, in one place (mu held). Claim when slots are free
 * and nothing is queued, or half the slots are free: each claim is a write
 * transaction, so while jobs are still queued claims wait to be larger (no
 * worker idles meanwhile: the queued half keeps them busy). Outcomes are
 * recorded right before a claim (they unblock later events of the same
 * webhook), so a claim and the batch before it are two back-to-back
 * transactions per half a queue of deliveries, not one per delivery; or
 * when the oldest has waited RECORD_DELAY_MS, or at the first wake-up once
 * the queue is half full. @idle gets the free slots. */
static bool claim_due(dispatcher *d, size_t *idle)
{
	size_t slots = SLOTS_PER_WORKER * (size_t)d->nworkers;
	*idle = slots > d->busy + d->qlen ? slots - d->busy - d->qlen : 0;
	return *idle && (d->qlen == 0 || *idle >= slots / 2);
}

static bool record_due(dispatcher *d, int64_t now)
{
	size_t idle;
	return d->nout && (claim_due(d, &idle) || d->nout >= MAX_OUTCOMES / 2 ||
	                   now - d->out_since >= RECORD_DELAY_MS);
}

static void *worker_main(void *arg)
{
	dispatcher *d = arg;
	forwarder *fw = NULL;
	if (forwarder_new(&fw))
		log_error("dispatch", "no HTTP client for forwards (out of memory)");
	pthread_mutex_lock(&d->mu);
	for (;;) {
		long i = -1;
		while (!d->stopping && (i = next_runnable(d)) < 0)
			pthread_cond_wait(&d->work, &d->mu);
		if (d->stopping)
			break;
		job j = d->queue[i];
		memmove(&d->queue[i], &d->queue[i + 1],
		        (d->qlen - (size_t)i - 1) * sizeof *d->queue);
		d->qlen--;
		hstat *s =
		    stat_for(d, j.d.handler_id, j.have_handler ? handler_kind_name(j.h.kind) : "");
		if (s)
			s->running++;
		d->busy++;
		pthread_mutex_unlock(&d->mu);

		dispatch_result res = {0};
		int64_t t0 = time_mono_us();
		if (!fw && j.have_handler && j.h.kind == HANDLER_FORWARD)
			res.text = str_dup("no HTTP client (out of memory)");
		else
			run_job(d, fw, &j, &res);
		finish_job(d, &j, &res, time_mono_us() - t0);
		dispatch_result_clear(&res);

		pthread_mutex_lock(&d->mu);
		s = stat_for(d, j.d.handler_id, "");
		if (s && s->running)
			s->running--;
		d->busy--;
		job_clear(&j);
		size_t idle;
		if (claim_due(d, &idle)) /* else the claimer's timer or a later worker */
			pthread_cond_signal(&d->claim);
		if (d->qlen) /* a job held back by its handler's cap may run now */
			pthread_cond_broadcast(&d->work);
	}
	pthread_mutex_unlock(&d->mu);
	forwarder_free(fw);
	return NULL;
}

/* The handler kinds this process runs: exec and forward always; C functions
 * only when some are connected here (they run where they are connected). */
static unsigned claim_kinds(svc_ctx *sc)
{
	unsigned k = (1u << HANDLER_EXEC) | (1u << HANDLER_FORWARD);
	if (sc->funcs->n)
		k |= 1u << HANDLER_FUNC;
	return k;
}

/* Is delivery @id already ours: queued, or run with its outcome not yet
 * recorded? mu held. */
static bool known_here(dispatcher *d, const char *id)
{
	for (size_t i = 0; i < d->nout; i++)
		if (str_eq(d->outcomes[i].id, id))
			return true;
	for (size_t i = 0; i < d->qlen; i++)
		if (str_eq(d->queue[i].d.id, id))
			return true;
	return false;
}

/* Drop from @jobs the deliveries this process already has (known_here): a
 * claim's lease ends while the store cannot take the outcome (it stays
 * queued, see record_outcomes), and the next claim hands the same delivery
 * out again. Running it twice would break "done once it ran": the queued
 * outcome settles it when the store is back. Returns the jobs kept (packed
 * at the front). mu held. */
static size_t drop_known(dispatcher *d, job *jobs, size_t n)
{
	size_t kept = 0;
	for (size_t i = 0; jobs && i < n; i++) {
		if (known_here(d, jobs[i].d.id)) {
			log_warn(
			    "dispatch",
			    "delivery %s: claimed again while this process still holds it "
			    "(queued, or its outcome waits to be recorded); not running it again "
			    "(its outcome puts back the attempt count this claim added)",
			    jobs[i].d.id);
			job_clear(&jobs[i]);
			continue;
		}
		if (kept != i)
			jobs[kept] = jobs[i];
		kept++;
	}
	return jobs ? kept : n;
}

/* The lease of a claim of up to @n deliveries queued behind @queued others.
 * Workers take queued deliveries in order, at most @par at a time (the
 * workers, or fewer under the per-handler cap), and each runs for at most
 * the timeout T; so the last of the claim starts within ceil((queued + n) /
 * par) * T and is done within another T. A lease that ended while the
 * delivery still waited here would let another process take it (this one
 * does not run it twice: drop_known). The price of a longer lease: the
 * deliveries of a process that died on another host wait that long to run
 * again (this host's start-up takes them back at once, delivery_recover). */
static int64_t claim_lease(const dispatcher *d, size_t queued, size_t n)
{
	size_t par = d->nworkers;
	unsigned cap = d->sc->cfg->handler_concurrency;
	if (cap && cap < par)
		par = cap;
	if (par == 0)
		par = 1;
	int64_t rounds = (int64_t)((queued + n + par - 1) / par);
	return d->sc->cfg->exec_timeout_ms * (1 + rounds) + LEASE_SLACK_MS;
}

/* Claim up to @max deliveries, to be queued behind @ahead others, and queue
 * them. Returns how many. mu NOT held. */
static size_t claim_some(dispatcher *d, size_t max, size_t ahead)
{
	svc_ctx *sc = d->sc;
	delivery *ds = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	int64_t lease = claim_lease(d, ahead, max);
	if (store_delivery_claim(sc->st, claim_kinds(sc), max, lease, &ds, &n, &err)) {
		pthread_mutex_lock(&d->mu);
		bool first = d->claim_errors++ % 40 == 0;
		pthread_mutex_unlock(&d->mu);
		if (first)
			log_warn("dispatch", "claiming deliveries: %s", err.msg);
		return 0;
	}
	job *jobs = n ? calloc(n, sizeof *jobs) : NULL;
	for (size_t i = 0; i < n && jobs; i++) {
		jobs[i].d = ds[i];
		memset(&ds[i], 0, sizeof ds[i]);
		err = (th_error){0, {0}};
		jobs[i].have_handler =
		    store_handler_get(sc->st, jobs[i].d.handler_id, &jobs[i].h, &err) == 0;
	}
	pthread_mutex_lock(&d->mu);
	n = drop_known(d, jobs, n);
	if (jobs && d->qlen + n > d->qcap) {
		size_t nc = d->qlen + n + 16;
		job *nq = realloc(d->queue, nc * sizeof *nq);
		if (nq) {
			d->queue = nq;
			d->qcap = nc;
		}
	}
	size_t queued = 0;
	if (jobs && d->qlen + n <= d->qcap) {
		memcpy(&d->queue[d->qlen], jobs, n * sizeof *jobs);
		d->qlen += n;
		queued = n;
		pthread_cond_broadcast(&d->work);
	}
	pthread_mutex_unlock(&d->mu);
	if (queued != n) {
		/* out of memory: the claims expire with their lease and run later */
		log_error("dispatch", "out of memory queueing %zu claimed deliveries", n);
		for (size_t i = 0; jobs && i < n; i++)
			job_clear(&jobs[i]);
		delivery_list_free(ds, n);
		ds = NULL;
	}
	free(jobs);
	free(ds); /* its strings moved to the jobs */
	return n;
}

static void *claimer_main(void *arg)
{
	dispatcher *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		bool record_failed = false;
		if (record_due(d, time_mono_ms())) {
			pthread_mutex_unlock(&d->mu);
			record_failed = !record_outcomes(d);
			pthread_mutex_lock(&d->mu);
		}
		size_t idle;
		if (claim_due(d, &idle)) {
			d->wake = false;
			size_t ahead = d->qlen;
			pthread_mutex_unlock(&d->mu);
			size_t got = claim_some(d, idle, ahead);
			pthread_mutex_lock(&d->mu);
			if (got == idle && !d->stopping)
				continue; /* maybe more due: claim again as soon as workers free up
				           */
		}
		/* the store refused the outcomes: try again after POLL_MS, not in a
		 * busy loop against a store that is down */
		if (d->wake && !record_failed) {
			d->wake = false;
			continue;
		}
		/* workers finished while we were in the store (their signal found no
		 * one waiting): record and claim now, not after RECORD_DELAY_MS */
		if (d->nout && !record_failed && claim_due(d, &idle))
			continue;
		int64_t wait = POLL_MS;
		if (d->nout && !record_failed) {
			int64_t left = d->out_since + RECORD_DELAY_MS - time_mono_ms();
			wait = left < 1 ? 1 : left < POLL_MS ? left : POLL_MS;
		}
		struct timespec ts;
		wait_deadline(&ts, CLOCK_REALTIME, wait);
		pthread_cond_timedwait(&d->claim, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------- */

int dispatcher_start(dispatcher **out, svc_ctx *sc, th_error *err)
{
	*out = NULL;
	int rc = handlers_ensure_funcs(sc, err);
	if (rc)
		return rc;
	dispatcher *d = calloc(1, sizeof *d);
	if (!d)
		return th_err(err, TH_ENOMEM, "out of memory");
	d->sc = sc;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->work, NULL);
	pthread_cond_init(&d->claim, NULL);
	/* a command that closes its stdin early must not kill us with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	unsigned want = sc->cfg->workers ? sc->cfg->workers : 1;
	if (want > MAX_WORKERS)
		want = MAX_WORKERS;
	for (unsigned i = 0; i < want; i++) {
		if (pthread_create(&d->workers[i], NULL, worker_main, d) != 0)
			break;
		thread_name(d->workers[i], "th-worker");
		d->nworkers++;
	}
	if (d->nworkers == 0 || pthread_create(&d->claimer, NULL, claimer_main, d) != 0) {
		dispatcher_stop(d);
		return th_err(err, TH_EIO, "could not start the dispatch threads");
	}
	d->claimer_started = true;
	thread_name(d->claimer, "th-claimer");
	log_info("dispatch", "%u workers; at most %u deliveries at once per handler; %zu attempts",
	         d->nworkers, sc->cfg->handler_concurrency, sc->cfg->nretry + 1);
	*out = d;
	return 0;
}

void dispatcher_wake(dispatcher *d)
{
	if (!d)
		return;
	wait_raise(&d->mu, &d->claim, &d->wake);
}

void dispatcher_stop(dispatcher *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = true;
	pthread_cond_broadcast(&d->work);
	pthread_cond_broadcast(&d->claim);
	unsigned running = d->busy;
	pthread_mutex_unlock(&d->mu);
	if (running)
		log_info("dispatch", "waiting for %u running deliveries", running);
	if (d->claimer_started)
		pthread_join(d->claimer, NULL);
	for (unsigned i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	(void)record_outcomes(d); /* what the workers finished last */
	for (size_t i = 0; i < d->nout; i++) {
		log_warn("dispatch", "delivery %s finished but not recorded: it will run again",
		         d->outcomes[i].id);
		free(d->outcomes[i].id);
		free(d->outcomes[i].text);
	}
	free(d->outcomes);
	/* Claimed but never started: make them due again at once (this costs them
	 * the attempt the claim counted, never the delivery itself). */
	for (size_t i = 0; i < d->qlen; i++) {
		th_error err = {0, {0}};
		if (store_delivery_finish(d->sc->st, d->queue[i].d.id, DELIVERY_FAILED,
		                          time_now_ms(), "not started: server stopping", &err))
			log_warn("dispatch", "releasing delivery %s: %s", d->queue[i].d.id,
			         err.msg);
		job_clear(&d->queue[i]);
	}
	free(d->queue);
	free(d->stats);
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->claim);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int dispatcher_metrics_render(dispatcher *d, buf *out)
{
	if (!d)
		return 0;
	int rc = 0;
	pthread_mutex_lock(&d->mu);
	rc |=
	    buf_printf(out,
	               "# HELP trellohook_dispatch_running Deliveries running now (this process).\n"
	               "# TYPE trellohook_dispatch_running gauge\ntrellohook_dispatch_running %u\n"
	               "# HELP trellohook_dispatch_workers Dispatch worker threads.\n"
	               "# TYPE trellohook_dispatch_workers gauge\ntrellohook_dispatch_workers %u\n",
	               d->busy, d->nworkers);
	pthread_mutex_unlock(&d->mu);
	return rc ? TH_ETOOBIG : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * engine.c — the Trello client itself and its request engine: one loop on an
 * HTTP group (http/client.h) that every call goes through (a single call is
 * a batch of one), with the retry, rate-limit and deadline rules of trello.h.
 * The typed calls on top of it are client.c.
 *
 * The engine, in one loop: start waiting requests whose rate bucket allows it
 * (at most max_parallel at once), let curl move bytes, and for each finished
 * request decide: done, wait out a 429 and try again, back off and retry a
 * transient failure (only when retrying is safe), or give up with an error.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "trello/engine.h"
#include "util/log.h"

#define COMPONENT "trello"
#define MAX_BUCKETS 1024   /* per-token rate state kept; least recently used evicted */
#define MAX_SECRET_LEN 512 /* tokens and keys longer than this are refused */
#define POLL_SLICE_MS 1000 /* longest single wait inside the loop */
#define BACKOFF_CAP_MS 10000

/* ---- the client and its rate-limit table ------------------------------------------ */

/* What we know of one rate-limit bucket (a token, or the API key). */
struct bucket {
	char *token;          /* NULL for the key bucket */
	long remaining;       /* last x-rate-limit-*-remaining, -1 unknown */
	long max;             /* last -max, -1 unknown */
	long interval_ms;     /* last -interval-ms, -1 unknown */
	int64_t window_start; /* our (never early) estimate of the window start, 0 unknown */
	int64_t resume_at;    /* no request before this (monotonic ms) */
	int inflight;         /* requests of this bucket now on the wire */
	int64_t last_used;    /* for eviction */
};

struct trello_client {
	trello_client_opts opts; /* strings below are our own copies */
	char *api_url;
	char *api_key;
	char user_agent[64];
	pthread_mutex_t lock; /* guards key_bucket and buckets */
	struct bucket key_bucket;
	struct bucket *buckets;
	size_t nbuckets;
	/* DNS answers and TLS sessions shared by every call of this client (so a
	 * health pass does not resolve and handshake from scratch each time).
	 * Connections themselves are not shared across threads; within a batch
	 * the group reuses them. */
	httpc_share *share;
	/* set before any call (trello_client_set_deadline / _set_notice) */
	int64_t deadline;     /* monotonic ms; 0: none */
	long notice_after_ms; /* 0: no notice */
	trello_notice_fn notice;
	void *notice_ctx;
	atomic_bool noticed;         /* the notice is given once per client */
	int64_t budget_ms;           /* what the deadline was set from, for messages */
	const atomic_bool *cancel;   /* the owner's stop (trello_client_set_cancel); NULL: none */
	trello_progress_fn progress; /* batches only; NULL: none */
	void *progress_ctx;
};

/* A secret that goes into a header must not be able to break it. */
bool trello_secret_ok(const char *s)
{
	if (!s || !*s)
		return false;
	size_t n = 0;
	for (; s[n]; n++) {
		unsigned char ch = (unsigned char)s[n];
		if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' || ch == ',' ||
		    n >= MAX_SECRET_LEN)
			return false;
	}
	return true;
}

/* Create a client; see trello.h. */
int trello_client_new(trello_client **out, const trello_client_opts *opts, th_error *err)
{
	*out = NULL;
	if (!opts || !opts->api_key || !*opts->api_key)
		return th_err(err, TH_ECONFIG,
		              "TRELLO_API_KEY is not set: the Trello client needs the "
		              "application's API key");
	if (!trello_secret_ok(opts->api_key))
		return th_err(err, TH_ECONFIG,
		              "TRELLO_API_KEY contains characters an API key never has");
	const char *url = opts->api_url;
	if (!url || !*url)
		url = getenv("TRELLO_API_URL");
	if (!url || !*url)
		url = TRELLO_DEFAULT_API_URL;
	if (!str_starts(url, "http://") && !str_starts(url, "https://"))
		return th_err(err, TH_ECONFIG,
		              "TRELLO_API_URL must start with https:// or http://, got "
		              "\"%.80s\"",
		              url);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return th_err(err, TH_ECONFIG,
			              "TRELLO_API_URL contains spaces or control characters");

	struct trello_client *c = calloc(1, sizeof *c);
	if (!c)
		return th_err(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->noticed, false);
	c->opts = *opts;
	c->api_url = str_dup(url);
	c->api_key = str_dup(opts->api_key);
	if (!c->api_url || !c->api_key) {
		trello_client_free(c);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	size_t ul = strlen(c->api_url);
	while (ul > 0 && c->api_url[ul - 1] == '/')
		c->api_url[--ul] = '\0';
	c->opts.api_url = c->api_url;
	c->opts.api_key = c->api_key;
	/* Zero / negative values fall back to the documented defaults. */
	if (c->opts.connect_timeout_ms <= 0)
		c->opts.connect_timeout_ms = 5000;
	if (c->opts.timeout_ms <= 0)
		c->opts.timeout_ms = 30000;
	if (c->opts.max_retries < 0)
		c->opts.max_retries = 3;
	if (c->opts.backoff_ms <= 0)
		c->opts.backoff_ms = 250;
	if (c->opts.max_rate_waits < 0)
		c->opts.max_rate_waits = 5;
	if (c->opts.rate_wait_ms_default <= 0)
		c->opts.rate_wait_ms_default = 10000;
	if (c->opts.rate_wait_ms_max <= 0)
		c->opts.rate_wait_ms_max = 15000;
	if (!c->opts.max_parallel)
		c->opts.max_parallel = 8;
	if (!c->opts.max_body)
		c->opts.max_body = TRELLO_MAX_BODY;
	str_printf(c->user_agent, sizeof c->user_agent, "trellohook/%s", TH_VERSION);
	c->share = httpc_share_new(); /* NULL: every call resolves and handshakes alone */
	c->key_bucket.remaining = c->key_bucket.max = c->key_bucket.interval_ms = -1;
	log_add_secret(c->api_key);
	*out = c;
	return 0;
}

/* Free the client and its rate table. NULL-safe. */
void trello_client_free(trello_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nbuckets; i++)
		free(c->buckets[i].token);
	free(c->buckets);
	free(c->api_url);
	free(c->api_key);
	httpc_share_free(c->share);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The base URL in use (owned by the client). */
const char *trello_client_api_url(const trello_client *c)
{
	return c->api_url;
}

/* Bound every call of the client in time; see trello.h. */
void trello_client_set_deadline(trello_client *c, int64_t budget_ms)
{
	c->budget_ms = budget_ms > 0 ? budget_ms : 0;
	c->deadline = budget_ms > 0 ? time_mono_ms() + budget_ms : 0;
}

/* Abandon every call once *@flag is set; see trello.h. */
void trello_client_set_cancel(trello_client *c, const atomic_bool *flag)
{
	c->cancel = flag;
}

/* Say once what a slow call waits for; see trello.h. */
void trello_client_set_notice(trello_client *c, long after_ms, trello_notice_fn fn, void *ctx)
{
	c->notice_after_ms = after_ms > 0 ? after_ms : 0;
	c->notice = fn;
	c->notice_ctx = ctx;
	atomic_store(&c->noticed, false);
}

/* Report how far each batch got; see trello.h. */
void trello_client_set_progress(trello_client *c, trello_progress_fn fn, void *ctx)
{
	c->progress = fn;
	c->progress_ctx = ctx;
}

/* The bucket of @token, created on first use. Caller holds c->lock. Returns
 * NULL only when out of memory (the caller then skips per-token pacing). */
static struct bucket *bucket_for(trello_client *c, const char *token, int64_t now)
{
	size_t i;
	for (i = 0; i < c->nbuckets; i++)
		if (strcmp(c->buckets[i].token, token) == 0) {
			c->buckets[i].last_used = now;
			return &c->buckets[i];
		}
	if (!c->buckets) {
		c->buckets = calloc(MAX_BUCKETS, sizeof *c->buckets);
		if (!c->buckets)
			return NULL;
	}
	char *copy = str_dup(token);
	if (!copy)
		return NULL;
	if (c->nbuckets < MAX_BUCKETS) {
		i = c->nbuckets++;
	} else {
		/* evict the least recently used bucket with nothing in flight */
		size_t victim = MAX_BUCKETS;
		for (size_t k = 0; k < c->nbuckets; k++)
			if (!c->buckets[k].inflight &&
			    (victim == MAX_BUCKETS ||
			     c->buckets[k].last_used < c->buckets[victim].last_used))
				victim = k;
		if (victim == MAX_BUCKETS) {
			free(copy);
			return NULL;
		}
		i = victim;
		free(c->buckets[i].token);
	}
	memset(&c->buckets[i], 0, sizeof c->buckets[i]);
	c->buckets[i].token = copy;
	c->buckets[i].remaining = c->buckets[i].max = c->buckets[i].interval_ms = -1;
	c->buckets[i].last_used = now;
	return &c->buckets[i];
}

/* When a bucket that is exhausted may be used again. Never early: our window
 * start is the start time of a request Trello counted in that window. */
static int64_t bucket_resume(const trello_client *c, const struct bucket *b, long interval_ms,
                             int64_t now)
{
	long interval = interval_ms > 0 ? interval_ms : b->interval_ms;
	if (interval <= 0)
		interval = c->opts.rate_wait_ms_default;
	int64_t at = now + interval;
	if (b->window_start > 0 && b->window_start + interval > now)
		at = b->window_start + interval + 25;
	if (at > now + c->opts.rate_wait_ms_max)
		at = now + c->opts.rate_wait_ms_max;
	return at;
}

/* Fold one answer's headers into a bucket. Caller holds c->lock. */
static void bucket_update(trello_client *c, struct bucket *b, long remaining, long max,
                          long interval, int64_t started, int64_t now)
{
	if (remaining < 0)
		return;
	if (interval > 0)
		b->interval_ms = interval;
	if (max > 0)
		b->max = max;
	long iv = b->interval_ms > 0 ? b->interval_ms : c->opts.rate_wait_ms_default;
	/* The first request of a window, or the first we see after the last
	 * window must have ended, starts our estimate of the window. */
	if ((max > 0 && remaining == max - 1) || b->window_start == 0 || now - b->window_start > iv)
		b->window_start = started;
	b->remaining = remaining;
	if (remaining == 0 && b->resume_at < now)
		b->resume_at = bucket_resume(c, b, interval, now);
}

/* ---- one request ---------------------------------------------------------------------- */

void trello_treq_init(struct treq *r)
{
	memset(r, 0, sizeof *r);
	httpc_resp_init(&r->hr);
	trello_rate_info_init(&r->rate);
}

void trello_treq_clear(struct treq *r)
{
	httpc_free(r->hc);
	free(r->path);
	free(r->body);
	httpc_resp_clear(&r->hr);
	memset(r, 0, sizeof *r);
}

/* The path with the token masked, for logs. */
static void log_path(const struct treq *r, char *out, size_t outsz)
{
	httpc_mask_url(r->path, r->token, out, outsz);
}

static void on_header(void *ud, const char *data, size_t n)
{
	struct treq *r = ud;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		trello_rate_info_init(&r->rate); /* a new header block (after 100 or a redirect) */
	else
		trello_rate_parse_header(&r->rate, data, n);
}

/* The time left before the client's deadline (ms, at least 1), or 0 when
 * there is no deadline. */
static long time_left(const trello_client *c, int64_t now)
{
	if (!c->deadline)
		return 0;
	return c->deadline > now ? (long)(c->deadline - now) : 1;
}

/* Start one attempt of @r inside @g. */
static int treq_start(trello_client *c, httpc_group *g, struct treq *r, int64_t now)
{
	buf url, auth;
	int rc = TH_ENOMEM;
	buf_init(&url, 16384);
	buf_init(&auth, 2048);
	trello_rate_info_init(&r->rate);
	r->status = 0;
	if (!r->hc) {
		httpc_opts o = HTTPC_OPTS_INIT;
		o.timeout_ms = c->opts.timeout_ms;
		o.connect_timeout_ms = c->opts.connect_timeout_ms;
		o.max_body = c->opts.max_body;
		o.user_agent = c->user_agent;
		o.component = COMPONENT;
		o.share = c->share;
		th_error e = {0, {0}};
		if (httpc_new(&r->hc, &o, &e))
			goto out;
	}
	if (buf_printf(&url, "%s%s", c->api_url, r->path) ||
	    /* Key and token go in the Authorization header (Trello's documented
	     * OAuth form), so they never appear in a URL. */
	    buf_printf(&auth, "Authorization: OAuth oauth_consumer_key=\"%s\", oauth_token=\"%s\"",
	               c->api_key, r->token))
		goto out;
	const char *hdrs[3] = {auth.data, "Accept: application/json",
	                       "Content-Type: application/json; charset=utf-8"};
	r->hq = (httpc_req){.method = r->method,
	                    .url = url.data,
	                    .headers = hdrs,
	                    .nheaders = r->body ? 3 : 2,
	                    .body = r->body,
	                    .body_len = r->body ? strlen(r->body) : 0,
	                    .timeout_ms = time_left(c, now),
	                    .on_header = on_header,
	                    .header_ctx = r,
	                    .secret = r->token};
	/* url and headers are copied when the transfer starts */
	rc = httpc_group_add(g, r->hc, &r->hq, &r->hr, r);
	r->hq.url = NULL;
	r->hq.headers = NULL;
	r->hq.nheaders = 0;
	if (rc)
		goto out;
	r->started = now;
	r->tries++;
	r->state = RQ_RUNNING;
out:
	/* the header value held the key and the token: wipe our copy */
	if (auth.data)
		memset(auth.data, 0, auth.len);
	buf_free(&auth);
	buf_free(&url);
	return rc;
}

/* May @r go now? Returns 0 and reserves a slot, or the earliest time to ask
 * again (monotonic ms). */
static int64_t gate(trello_client *c, struct treq *r, int64_t now)
{
	if (r->not_before > now)
		return r->not_before;
	int64_t at = 0;
	pthread_mutex_lock(&c->lock);
	struct bucket *b = bucket_for(c, r->token, now);
	struct bucket *kb = &c->key_bucket;
	struct bucket *both[2] = {kb, b};
	for (size_t i = 0; i < 2; i++) {
		struct bucket *x = both[i];
		if (!x)
			continue;
		if (x->resume_at > now) {
			at = at > x->resume_at ? at : x->resume_at;
			continue;
		}
		if (x->remaining == 0 && x->resume_at <= now)
			x->remaining = -1; /* the pause is over: a new window */
		/* do not send more than Trello said it will still accept */
		if (x->remaining > 0 && x->inflight >= x->remaining && !at)
			at = now + 20;
	}
	if (!at) {
		kb->inflight++;
		if (b)
			b->inflight++;
	}
	pthread_mutex_unlock(&c->lock);
	return at;
}

static long backoff(const trello_client *c, int tries)
{
	long d = c->opts.backoff_ms;
	for (int i = 1; i < tries && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	unsigned char rnd = 0;
	if (rand_fill(&rnd, 1) == 0)
		d = d / 2 + (d * rnd) / 510; /* 50 % .. 100 % */
	return d;
}

/* Give back the rate slots (the key's and the token's) gate() reserved for
 * @r; returns the token's bucket (NULL when none). c->lock held. */
static struct bucket *ungate_locked(trello_client *c, struct treq *r, int64_t now)
{
	struct bucket *b = bucket_for(c, r->token, now);
	if (c->key_bucket.inflight > 0)
		c->key_bucket.inflight--;
	if (b && b->inflight > 0)
		b->inflight--;
	return b;
}

/* Decide what a finished attempt means. Sets r->state to RQ_DONE or back to
 * RQ_WAITING (with not_before) for another attempt. */
static void treq_finish(trello_client *c, struct treq *r, int64_t now)
{
	char lp[320];
	enum httpc_fail fail = r->hr.fail;
	long status = fail == HTTPC_OK ? r->hr.status : 0;
	r->status = status;
	log_path(r, lp, sizeof lp);
	log_debug(COMPONENT, "%s %s -> %ld in %lld ms%s%s", r->method, lp, status,
	          (long long)(now - r->started), fail == HTTPC_OK ? "" : ": ", r->hr.error);

	/* rate-limit bookkeeping (also for 429) */
	pthread_mutex_lock(&c->lock);
	struct bucket *b = ungate_locked(c, r, now);
	bucket_update(c, &c->key_bucket, r->rate.key_remaining, r->rate.key_max,
	              r->rate.key_interval_ms, r->started, now);
	if (b)
		bucket_update(c, b, r->rate.token_remaining, r->rate.token_max,
		              r->rate.token_interval_ms, r->started, now);
	int64_t resume = 0;
	if (status == 429) {
		/* Which bucket ran out: the headers say, else Trello's error code. */
		bool key = r->rate.key_remaining == 0 ||
		           (r->rate.token_remaining != 0 && r->hr.body.data &&
		            strstr(r->hr.body.data, "API_KEY_LIMIT") != NULL);
		struct bucket *x = key || !b ? &c->key_bucket : b;
		long iv = key ? r->rate.key_interval_ms : r->rate.token_interval_ms;
		if (x->resume_at <= now)
			x->resume_at = bucket_resume(c, x, iv, now);
		x->remaining = 0;
		resume = x->resume_at;
	}
	pthread_mutex_unlock(&c->lock);

	if (status == 429 && r->rate_waits < c->opts.max_rate_waits &&
	    (!c->deadline || resume < c->deadline)) {
		r->rate_waits++;
		r->tries--; /* waiting out a 429 is not a failed try */
		r->not_before = resume;
		r->state = RQ_WAITING;
		log_info(COMPONENT, "Trello rate limit reached (%s %s); waiting %lld ms", r->method,
		         lp, (long long)(resume - now));
		return;
	}
	bool may_retry = r->tries <= c->opts.max_retries;
	if (fail != HTTPC_OK) {
		if (fail == HTTPC_FAIL_TOOBIG) {
			r->rc = th_err(&r->err.th, TH_ETOOBIG,
			               "Trello sent an unexpected answer: larger "
			               "than %zu bytes",
			               c->opts.max_body);
			r->err.kind = TRELLO_ERR_BAD_ANSWER;
			r->state = RQ_DONE;
			return;
		}
		if (may_retry && httpc_fail_transient(fail) &&
		    (r->idempotent || httpc_fail_never_sent(fail)) &&
		    (!c->deadline || now + backoff(c, r->tries) < c->deadline)) {
			r->not_before = now + backoff(c, r->tries);
			r->state = RQ_WAITING;
			return;
		}
		if (c->deadline && now >= c->deadline - 5 && fail == HTTPC_FAIL_TIMEOUT)
			r->rc = th_err(&r->err.th, TH_EUNAVAIL,
			               "Trello at %s did not answer %s %s within %lld s; "
			               "is TRELLO_API_URL right and Trello up?",
			               c->api_url, r->method, lp, (long long)c->budget_ms / 1000);
		else
			r->rc = th_err(&r->err.th, TH_EUNAVAIL, "cannot reach Trello at %s: %s%s",
			               c->api_url, r->hr.error,
			               r->tries > 1 ? " (after several tries)" : "");
		r->err.kind = TRELLO_ERR_UNREACHABLE;
		r->state = RQ_DONE;
		return;
	}
	if (status >= 500 && may_retry && r->idempotent &&
	    (!c->deadline || now + backoff(c, r->tries) < c->deadline)) {
		r->not_before = now + backoff(c, r->tries);
		r->state = RQ_WAITING;
		return;
	}
	r->state = RQ_DONE;
	if (status >= 200 && status < 300) {
		r->rc = 0;
		return;
	}
	trello_error_from_answer((int)status, r->hr.body.data, r->hr.body.len, &r->err);
	if (status == 429) {
		char said[sizeof r->err.th.msg];
		str_copy(said, sizeof said, r->err.th.msg);
		th_err(&r->err.th, TH_EUNAVAIL,
		       "Trello's rate limit is still exceeded after %d waits; "
		       "try again later (%s)",
		       r->rate_waits, said);
	}
	r->rc = r->err.th.code;
	if (trello_error_is_token_dead(&r->err) && c->opts.on_token_dead)
		c->opts.on_token_dead(c->opts.on_token_dead_ctx, r->token, r->err.kind);
}

/* Give back the rate slot gate() reserved for @r. */
static void ungate(trello_client *c, struct treq *r, int64_t now)
{
	pthread_mutex_lock(&c->lock);
	ungate_locked(c, r, now);
	pthread_mutex_unlock(&c->lock);
}

/* Past the client's deadline, a request still waiting gives up. */
static void treq_expire(trello_client *c, struct treq *r)
{
	char lp[320];
	log_path(r, lp, sizeof lp);
	r->rc = th_err(&r->err.th, TH_EUNAVAIL,
	               "Trello at %s did not answer %s %s within %lld s; is TRELLO_API_URL "
	               "right and Trello up?",
	               c->api_url, r->method, lp, (long long)c->budget_ms / 1000);
	r->err.kind = TRELLO_ERR_UNREACHABLE;
	r->state = RQ_DONE;
}

/* The owner is stopping: @r, not done, ends without an answer. One on the
 * wire gives back the rate slot gate() reserved for it (its connection is
 * closed by the caller). */
static void treq_abandon(trello_client *c, struct treq *r, int64_t now)
{
	char lp[320];
	log_path(r, lp, sizeof lp);
	if (r->state == RQ_RUNNING)
		ungate(c, r, now);
	r->rc = th_err(&r->err.th, TH_EUNAVAIL, "stopping: the call %s %s to Trello was abandoned",
	               r->method, lp);
	r->err.kind = TRELLO_ERR_UNREACHABLE;
	r->state = RQ_DONE;
}

/* Say once, after notice_after_ms, what the client is waiting for. */
static void maybe_notice(trello_client *c, struct treq **reqs, size_t n, int64_t t0, int64_t now)
{
	if (!c->notice || now - t0 < c->notice_after_ms || atomic_load(&c->noticed))
		return;
	if (atomic_exchange(&c->noticed, true))
		return;
	const struct treq *r = NULL;
	for (size_t i = 0; i < n && !r; i++)
		if (reqs[i]->state != RQ_DONE)
			r = reqs[i];
	char lp[320], what[512];
	if (r)
		log_path(r, lp, sizeof lp);
	str_printf(what, sizeof what, "waiting for Trello at %s (%s %s)", c->api_url,
	           r ? r->method : "", r ? lp : "");
	c->notice(c->notice_ctx, what);
}

/* Run every request to completion. Returns 0, or TH_ENOMEM when the HTTP
 * group could not even start (then every request not done carries that
 * error). */
int trello_engine_run(trello_client *c, struct treq **reqs, size_t n, bool report)
{
	httpc_group *g = NULL;
	size_t pending = n;
	unsigned running = 0;
	int64_t t0 = time_mono_ms();
	bool stopping = false; /* the owner's cancel flag was seen */
	int rc = httpc_group_new(&g, c->opts.max_parallel);
	if (rc) {
		rc = TH_ENOMEM;
		goto out;
	}
	report = report && c->progress;
	if (report)
		c->progress(c->progress_ctx, 0, n);
	while (pending > 0 && !(stopping = c->cancel && atomic_load(c->cancel))) {
		size_t was_pending = pending;
		int64_t now = time_mono_ms();
		int64_t wake = now + POLL_SLICE_MS;
		for (size_t i = 0; i < n && running < c->opts.max_parallel; i++) {
			struct treq *r = reqs[i];
			if (r->state != RQ_WAITING)
				continue;
			if (c->deadline && (now >= c->deadline || r->not_before >= c->deadline)) {
				treq_expire(c, r);
				pending--;
				continue;
			}
			int64_t at = gate(c, r, now);
			if (at) {
				wake = at < wake ? at : wake;
				continue;
			}
			if (treq_start(c, g, r, now) != 0) {
				ungate(c, r, now);
				r->rc = th_err(&r->err.th, TH_ENOMEM, "cannot start a request: %s",
				               r->hr.error[0] ? r->hr.error : "out of memory");
				r->state = RQ_DONE;
				pending--;
				continue;
			}
			running++;
		}
		if (c->notice && !atomic_load(&c->noticed)) {
			int64_t at = t0 + c->notice_after_ms;
			wake = at < wake ? at : wake;
		}
		if (c->deadline && c->deadline < wake)
			wake = c->deadline;
		now = time_mono_ms();
		int timeout = (int)(wake > now ? wake - now : 0);
		if (running) {
			if (timeout > 100)
				timeout = 100; /* it wakes up on socket activity anyway */
			httpc_group_run(g, timeout);
		} else if (timeout > 0 && pending) {
			(void)poll(NULL, 0, timeout);
		}
		struct treq *r;
		while ((r = httpc_group_done(g)) != NULL) {
			running--;
			treq_finish(c, r, time_mono_ms());
			if (r->state == RQ_DONE)
				pending--;
		}
		maybe_notice(c, reqs, n, t0, time_mono_ms());
		if (report && pending != was_pending)
			c->progress(c->progress_ctx, n - pending, n);
	}
out:
	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->state != RQ_DONE) {
			/* still attached: detach before the group goes */
			httpc_free(reqs[i]->hc);
			reqs[i]->hc = NULL;
			if (stopping) {
				treq_abandon(c, reqs[i], time_mono_ms());
				continue;
			}
			reqs[i]->rc = th_err(&reqs[i]->err.th, TH_ENOMEM, "out of memory");
			reqs[i]->state = RQ_DONE;
		}
	}
	httpc_group_free(g);
	return rc;
}

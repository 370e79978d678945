/* SPDX-License-Identifier: MIT */
/*
 * sqlite_deliveries.c — handlers and deliveries in the SQLite store: the
 * claim, outcomes, retries and counts.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"

/* ---- handlers --------------------------------------------------------------------------- */

static void bind_handler(sq_bind *b, const void *arg)
{
	store_params_handler(&(store_params){&sq_params_ops, b}, arg);
}

static int handler_unique_err(sq *s, const void *arg, th_error *err)
{
	(void)s;
	return th_err(err, TH_EEXISTS, "a handler with id %s already exists",
	              ((const handler *)arg)->id);
}

int sq_handler_insert(store *st, const handler *h, th_error *err)
{
	if (store_check_handler(h, err) != 0)
		return TH_EINVAL;
	return sq_command(sq_of(st), Q_HANDLER_INSERT, bind_handler, h, "adding a handler",
	                  handler_unique_err, NULL, err);
}

int sq_handler_get(store *st, const char *id, handler *out, th_error *err)
{
	return sq_get_id(sq_of(st), Q_HANDLER_GET, id, &store_rt_handler, out, "handler",
	                 "reading a handler", err);
}

int sq_handler_list(store *st, handler **out, size_t *n, th_error *err)
{
	return sq_list(sq_of(st), Q_HANDLER_LIST, &store_rt_handler, (void **)out, n,
	               "listing handlers", err);
}

/* Deletes the handler and, in the same transaction, its deliveries that are
 * not done (nothing is left to run them); done ones stay as history. */
static int tx_handler_delete(sq *s, void *ctx, th_error *err)
{
	const char *id = ctx;
	sqlite3_stmt *q = sq_stmt(s, Q_HANDLER_DELETE_DELIVERIES, err);
	if (!q)
		return TH_ESTORE;
	if (sq_step_key(q, id) != SQLITE_DONE)
		return sq_fail(s, err, "deleting a handler's deliveries");
	if (!(q = sq_stmt(s, Q_HANDLER_DELETE, err)))
		return TH_ESTORE;
	if (sq_step_key(q, id) != SQLITE_DONE)
		return sq_fail(s, err, "deleting a handler");
	if (sqlite3_changes(s->db) == 0)
		return store_not_found(err, "handler", id);
	return 0;
}

int sq_handler_delete(store *st, const char *id, th_error *err)
{
	return sq_txn(sq_of(st), tx_handler_delete, (void *)id, err);
}

typedef struct sq_enable {
	const char *id;
	bool enabled;
} sq_enable;

static void bind_enable(sq_bind *b, const void *arg)
{
	const sq_enable *x = arg;
	sq_bind_text(b, x->id);
	sq_bind_i64(b, x->enabled);
}

int sq_handler_set_enabled(store *st, const char *id, bool enabled, th_error *err)
{
	sq_enable x = {id, enabled};
	int changes = 0;
	int ret = sq_command(sq_of(st), Q_HANDLER_SET_ENABLED, bind_enable, &x,
	                     "updating a handler", NULL, &changes, err);
	if (ret == 0 && changes == 0)
		ret = store_not_found(err, "handler", id);
	return ret;
}

int sq_handler_set_secret(store *st, const char *id, const char *old, const char *secret,
                          bool *changed, th_error *err)
{
	sq_texts x = {{id, old, secret}, 3};
	int changes = 0;
	*changed = false;
	if (!id || !old || !secret)
		return th_err(err, TH_EINVAL, "handler_set_secret: id, old and new secret needed");
	int ret = sq_command(sq_of(st), Q_HANDLER_SET_SECRET, sq_bind_texts, &x,
	                     "updating a handler's secret", NULL, &changes, err);
	*changed = ret == 0 && changes > 0;
	return ret;
}

/* ---- deliveries ------------------------------------------------------------------------- */

int sq_delivery_get(store *st, const char *id, delivery *out, th_error *err)
{
	return sq_get_id(sq_of(st), Q_DELIVERY_GET, id, &store_rt_delivery, out, "delivery",
	                 "reading a delivery", err);
}

/* Claim due deliveries in one transaction (see store.h for the rules).
 * Deliveries of a disabled handler wait (they are not claimed). The returned
 * rows show the claimed state: running, attempts incremented, the lease end.
 * Committed without an fsync of its own: a claim lost to a power cut leaves
 * the deliveries due as they were, to run (again) after the restart. */
typedef struct claim_ctx {
	unsigned kinds;
	size_t max;
	int64_t lease_ms, now;
	delivery *a; /* the claimed rows (freed by the caller on failure too) */
	size_t n;
} claim_ctx;

/* The key (event_seq, generation) of the unfinished row at offset @offset
 * in event order into @key; *@found false when the queue is shorter. */
static int queue_edge(sq *s, int64_t offset, int64_t key[2], bool *found, th_error *err)
{
	sq_bind b;
	int ret = sq_prepare(s, Q_DELIVERY_QUEUE_EDGE, &b, err);
	if (ret != 0)
		return ret;
	sq_bind_i64(&b, offset);
	int rc = b.rc == SQLITE_OK ? sq_step(b.st) : b.rc;
	*found = rc == SQLITE_ROW;
	if (*found) {
		key[0] = sqlite3_column_int64(b.st, 0);
		key[1] = sqlite3_column_int64(b.st, 1);
	} else if (rc != SQLITE_DONE) {
		ret = sq_fail(s, err, "claiming deliveries");
	}
	sq_reset(b.st);
	return ret;
}

/* After a claim whose window could not tell, this many claims go straight to
 * the heads of the chains: a backlog that cannot be claimed (a disabled
 * handler's, a kind not run here, one behind a failed head) that filled the
 * window fills it again, and walking it first was wasted (a third of the
 * claim's select in bench/dispatch.sh). Then the window is tried again; it
 * is the cheaper of the two when many chains have work. */
#define CLAIM_HEADS_RUN 16

static int claim_heads(sq *s, claim_ctx *x, const int64_t *due, th_error *err)
{
	return sq_list_ints_locked(s, Q_DELIVERY_DUE_HEADS, due, 3, &store_rt_delivery,
	                           (void **)&x->a, &x->n, "claiming deliveries", err);
}

/* The due rows as the claim takes them (see Q_DELIVERY_DUE for why in two
 * steps): from the window at the front of the queue, or when that cannot
 * tell, from the heads of the chains. Both give the same rows: the earliest
 * claimable ones in event order. */
static int claim_select(sq *s, claim_ctx *x, th_error *err)
{
	int64_t due[] = {x->now, (int64_t)(x->kinds & 0x7fffffffu), (int64_t)x->max, INT64_MAX,
	                 INT64_MAX};
	if (s->claim_heads_run > 0) {
		s->claim_heads_run--;
		return claim_heads(s, x, due, err);
	}
	bool bounded = false;
	int ret = queue_edge(s, store_claim_window(x->max) - 1, &due[3], &bounded, err);
	if (ret != 0)
		return ret;
	ret = sq_list_ints_locked(s, Q_DELIVERY_DUE, due, TH_ARRAY_LEN(due), &store_rt_delivery,
	                          (void **)&x->a, &x->n, "claiming deliveries", err);
	if (ret != 0 || !bounded || x->n >= x->max)
		return ret;
	delivery_list_free(x->a, x->n);
	x->a = NULL;
	x->n = 0;
	s->claim_heads_run = CLAIM_HEADS_RUN;
	return claim_heads(s, x, due, err);
}

static int tx_claim(sq *s, void *ctx, th_error *err)
{
	claim_ctx *x = ctx;
	int ret = claim_select(s, x, err);
	for (size_t i = 0; ret == 0 && i < x->n; i++) {
		delivery *d = &x->a[i];
		d->status = DELIVERY_RUNNING;
		d->claimed_until = x->now + x->lease_ms;
		d->attempts++;
		d->updated_at = x->now;
		sq_bind b;
		if ((ret = sq_prepare(s, Q_DELIVERY_MARK_RUNNING, &b, err)) != 0)
			break;
		sq_bind_text(&b, d->id);
		sq_bind_i64(&b, d->claimed_until);
		sq_bind_i64(&b, x->now);
		sq_bind_text(&b, s->base.instance);
		ret = sq_done(s, &b, "claiming a delivery", err);
	}
	return ret;
}

int sq_delivery_claim(store *st, unsigned kinds, size_t max, int64_t lease_ms, delivery **out,
                      size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	claim_ctx x = {
	    kinds, store_list_limit(max, STORE_LIST_LIMIT_MAX), lease_ms, time_now_ms(), NULL, 0};
	int ret = sq_txn_nosync(sq_of(st), tx_claim, &x, err);
	if (ret != 0) {
		delivery_list_free(x.a, x.n);
	} else {
		*out = x.a;
		*n = x.n;
	}
	return ret;
}

static void bind_finish(sq_bind *b, const delivery_outcome *x, int64_t now)
{
	sq_bind_text(b, x->id);
	sq_bind_text(b, delivery_status_name(x->status));
	sq_bind_i64(b, x->next_attempt_at);
	sq_bind_text(b, x->last_error);
	sq_bind_i64(b, now);
	sq_bind_i64(b, x->attempts);
}

typedef struct sq_finish_many {
	const delivery_outcome *outs;
	size_t n;
	size_t changed;
} sq_finish_many;

/* The hourly delivery rollup (migration 9): one more attempt of the
 * delivery's handler in this hour, outcome and run-time bucket. */
static int rollup_outcome(sq *s, const delivery_outcome *o, int64_t now, th_error *err)
{
	sq_bind b;
	if (sq_prepare(s, Q_DELIVERY_ROLLUP_ADD, &b, err) != 0)
		return TH_ESTORE;
	sq_bind_text(&b, o->id);
	sq_bind_i64(&b, now / 3600000);
	sq_bind_text(&b, delivery_status_name(o->status));
	sq_bind_i64(&b, store_run_bucket(o->run_us));
	return sq_done(s, &b, "updating the hourly delivery rollup", err);
}

static int tx_finish_many(sq *s, void *ctx, th_error *err)
{
	sq_finish_many *m = ctx;
	sqlite3_stmt *q = sq_stmt(s, Q_DELIVERY_FINISH, err);
	if (!q)
		return TH_ESTORE;
	int64_t now = time_now_ms();
	for (size_t i = 0; i < m->n; i++) {
		sq_bind b = {q, 0, SQLITE_OK};
		bind_finish(&b, &m->outs[i], now);
		int rc = b.rc == SQLITE_OK ? sq_step(q) : b.rc;
		int changes = rc == SQLITE_DONE ? sqlite3_changes(s->db) : 0;
		m->changed += (size_t)changes;
		sq_reset(q);
		if (rc != SQLITE_DONE)
			return sq_fail(s, err, "recording a delivery's outcome");
		if (changes && (rc = rollup_outcome(s, &m->outs[i], now, err)) != 0)
			return rc;
	}
	return 0;
}

int sq_delivery_finish_many(store *st, const delivery_outcome *outs, size_t n, size_t *changed,
                            th_error *err)
{
	sq_finish_many m = {outs, n, 0};
	/* no fsync: an outcome lost to a power cut means the delivery runs again */
	int ret = sq_txn_nosync(sq_of(st), tx_finish_many, &m, err);
	*changed = m.changed;
	return ret;
}

/* Make a delivery pending and due now. attempts restarts at 0 so the retry
 * schedule (and the dead-after-N-tries rule) starts over; last_error is kept
 * until the next attempt replaces it. A running delivery is refused
 * (TH_EINVAL): its worker still owns it. */
static int tx_delivery_retry(sq *s, void *ctx, th_error *err)
{
	const char *id = ctx;
	sqlite3_stmt *q = sq_stmt(s, Q_DELIVERY_STATUS, err);
	if (!q)
		return TH_ESTORE;
	sq_bind b = {q, 0, SQLITE_OK};
	sq_bind_text(&b, id);
	int rc = b.rc == SQLITE_OK ? sq_step(q) : b.rc;
	if (rc == SQLITE_DONE) {
		sq_reset(q);
		return store_not_found(err, "delivery", id);
	}
	if (rc != SQLITE_ROW) {
		sq_reset(q);
		return sq_fail(s, err, "reading a delivery");
	}
	bool running = str_eq((const char *)sqlite3_column_text(q, 0), "running");
	sq_reset(q);
	if (running)
		return store_delivery_running(err, id);
	if (sq_prepare(s, Q_DELIVERY_RETRY, &b, err) != 0)
		return TH_ESTORE;
	sq_bind_text(&b, id);
	sq_bind_i64(&b, time_now_ms());
	return sq_done(s, &b, "retrying a delivery", err);
}

int sq_delivery_retry(store *st, const char *id, th_error *err)
{
	return sq_txn(sq_of(st), tx_delivery_retry, (void *)id, err);
}

/* Counts per status; @oldest_pending_at is the smallest next_attempt_at of a
 * pending delivery (0: none pending). */
int sq_delivery_stats(store *st, int64_t counts[5], int64_t *oldest_pending_at, th_error *err)
{
	sq *s = sq_of(st);
	int ret = 0, rc;
	for (int i = 0; i < 5; i++)
		counts[i] = 0;
	if (oldest_pending_at)
		*oldest_pending_at = 0;
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *q = sq_stmt(s, Q_DELIVERY_STATS, err);
	if (!q) {
		ret = TH_ESTORE;
		goto out;
	}
	while ((rc = sq_step(q)) == SQLITE_ROW) {
		enum delivery_status ds;
		if (delivery_status_parse((const char *)sqlite3_column_text(q, 0), &ds) == 0 &&
		    (int)ds >= 0 && (int)ds < 5)
			counts[ds] = sqlite3_column_int64(q, 1);
	}
	sq_reset(q);
	if (rc != SQLITE_DONE) {
		ret = sq_fail(s, err, "counting deliveries");
		goto out;
	}
	if (oldest_pending_at) {
		q = sq_stmt(s, Q_DELIVERY_OLDEST_PENDING, err);
		if (!q) {
			ret = TH_ESTORE;
			goto out;
		}
		rc = sq_step(q);
		if (rc == SQLITE_ROW)
			*oldest_pending_at = sqlite3_column_int64(q, 0); /* NULL reads as 0 */
		else
			ret = sq_fail(s, err, "counting deliveries");
		sq_reset(q);
	}
out:
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* The claimers of running deliveries that are dead processes of this host:
 * their deliveries become failed and due now, in one transaction. */
static int tx_recover(sq *s, void *ctx, th_error *err)
{
	size_t *recovered = ctx;
	*recovered = 0;
	char **who = NULL;
	size_t n = 0;
	int ret = sq_list_locked(s, Q_DELIVERY_CLAIMERS, &store_rt_text, (void **)&who, &n,
	                         "reading who runs deliveries", err);
	sqlite3_stmt *q = ret == 0 ? sq_stmt(s, Q_DELIVERY_RECOVER, err) : NULL;
	if (ret == 0 && !q)
		ret = TH_ESTORE;
	int64_t now = time_now_ms();
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (!store_instance_dead(&s->base, who[i]))
			continue;
		sq_bind b = {q, 0, SQLITE_OK};
		sq_bind_text(&b, who[i]);
		sq_bind_i64(&b, now);
		sq_bind_text(&b, STORE_RECOVERED_ERROR);
		int rc = b.rc == SQLITE_OK ? sq_step(q) : b.rc;
		if (rc == SQLITE_DONE)
			*recovered += (size_t)sqlite3_changes(s->db);
		else
			ret = sq_fail(s, err, "recovering deliveries");
		sq_reset(q);
	}
	for (size_t i = 0; i < n; i++)
		free(who[i]);
	free(who);
	return ret;
}

int sq_delivery_recover(store *st, size_t *recovered, th_error *err)
{
	return sq_txn(sq_of(st), tx_recover, recovered, err);
}

/* The delivery rollup cells of [from_hour, to_hour), oldest first. */
int sq_delivery_rollup(store *st, int64_t from_hour, int64_t to_hour, delivery_rollup_row **out,
                       size_t *n, th_error *err)
{
	const int64_t range[] = {from_hour, to_hour};
	return sq_list_ints(sq_of(st), Q_DELIVERY_ROLLUP_RANGE, range, TH_ARRAY_LEN(range),
	                    &store_rt_delivery_rollup, (void **)out, n,
	                    "reading the delivery rollup", err);
}

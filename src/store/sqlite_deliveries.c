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

typedef struct sq_secret {
	const char *id, *old, *secret;
} sq_secret;

static void bind_secret(sq_bind *b, const void *arg)
{
	const sq_secret *x = arg;
	sq_bind_text(b, x->id);
	sq_bind_text(b, x->old);
	sq_bind_text(b, x->secret);
}

int sq_handler_set_secret(store *st, const char *id, const char *old, const char *secret,
                          bool *changed, th_error *err)
{
	sq_secret x = {id, old, secret};
	int changes = 0;
	*changed = false;
	if (!id || !old || !secret)
		return th_err(err, TH_EINVAL, "handler_set_secret: id, old and new secret needed");
	int ret = sq_command(sq_of(st), Q_HANDLER_SET_SECRET, bind_secret, &x,
	                     "updating a handler's secret", NULL, &changes, err);
	*changed = ret == 0 && changes > 0;
	return ret;
}

/* ---- deliveries ------------------------------------------------------------------------- */

/* Newest first (by insertion); optional status and event filters. */
int sq_delivery_list(store *st, const char *status, const char *event_id, size_t limit,
                     delivery **out, size_t *n, th_error *err)
{
	sq *s = sq_of(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = NULL;
	int ret = 0, rc;
	if (store_check_status_filter(status, err) != 0)
		return TH_EINVAL;
	limit = store_list_limit(limit, STORE_DELIVERY_LIST_DEFAULT);
	char sql[512];
	str_printf(sql, sizeof sql,
	           "SELECT " DELIVERY_COLS " FROM deliveries d WHERE 1 = 1%s%s"
	           " ORDER BY d.rowid DESC LIMIT :limit",
	           status ? " AND d.status = :status" : "",
	           event_id ? " AND d.event_id = :event" : "");
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
		ret = sq_fail(s, err, "listing deliveries");
		goto out;
	}
	rc = sq_bind_named_i64(q, ":limit", (int64_t)limit);
	if (status)
		rc |= sq_bind_named_text(q, ":status", status);
	if (event_id)
		rc |= sq_bind_named_text(q, ":event", event_id);
	ret = sq_collect_once(s, q, rc, &store_rt_delivery, (void **)out, n, "listing deliveries",
	                      err);
out:
	pthread_mutex_unlock(&s->mu);
	return ret;
}

int sq_delivery_get(store *st, const char *id, delivery *out, th_error *err)
{
	return sq_get_id(sq_of(st), Q_DELIVERY_GET, id, &store_rt_delivery, out, "delivery",
	                 "reading a delivery", err);
}

/* Claim due deliveries in one transaction (see store.h for the rules).
 * Deliveries of a disabled handler wait (they are not claimed). The returned
 * rows show the claimed state: running, attempts incremented, the lease end. */
int sq_delivery_claim(store *st, unsigned kinds, size_t max, int64_t lease_ms, delivery **out,
                      size_t *n, th_error *err)
{
	sq *s = sq_of(st);
	*out = NULL;
	*n = 0;
	delivery *a = NULL;
	size_t cnt = 0;
	int ret = 0;
	if (max == 0)
		return 0;
	max = store_list_limit(max, STORE_LIST_LIMIT_MAX);
	int64_t now = time_now_ms();
	pthread_mutex_lock(&s->mu);
	if ((ret = sq_run(s, Q_BEGIN, "starting a transaction", err)) != 0)
		goto out;
	sq_bind b;
	if ((ret = sq_prepare(s, Q_DELIVERY_DUE, &b, err)) != 0)
		goto fail;
	sqlite3_stmt *q = b.st;
	sq_bind_i64(&b, now);
	sq_bind_i64(&b, (int64_t)(kinds & 0x7fffffffu));
	sq_bind_i64(&b, (int64_t)max);
	if (b.rc != SQLITE_OK) {
		sq_reset(q);
		ret = sq_fail(s, err, "claiming deliveries");
		goto fail;
	}
	ret = sq_collect(s, q, &store_rt_delivery, (void **)&a, &cnt, "claiming deliveries", err);
	sq_reset(q);
	if (ret != 0)
		goto fail;
	q = sq_stmt(s, Q_DELIVERY_MARK_RUNNING, err);
	if (!q) {
		ret = TH_ESTORE;
		goto fail;
	}
	for (size_t i = 0; i < cnt; i++) {
		delivery *d = &a[i];
		d->status = DELIVERY_RUNNING;
		d->claimed_until = now + lease_ms;
		d->attempts++;
		d->updated_at = now;
		b = (sq_bind){q, 0, SQLITE_OK};
		sq_bind_text(&b, d->id);
		sq_bind_i64(&b, d->claimed_until);
		sq_bind_i64(&b, now);
		sq_bind_text(&b, s->base.instance);
		if ((ret = sq_done(s, &b, "claiming a delivery", err)) != 0)
			goto fail;
	}
	if ((ret = sq_run(s, Q_COMMIT, "committing claims", err)) != 0)
		goto fail;
	goto out;
fail:
	sq_rollback(s);
out:
	pthread_mutex_unlock(&s->mu);
	if (ret != 0) {
		delivery_list_free(a, cnt);
	} else {
		*out = a;
		*n = cnt;
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
	int ret = store_check_outcomes(outs, n, changed, err);
	if (ret != 0 || n == 0)
		return ret;
	sq_finish_many m = {outs, n, 0};
	ret = sq_txn(sq_of(st), tx_finish_many, &m, err);
	if (ret == 0 && changed)
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
	size_t made = 0;
	int ret = sq_txn(sq_of(st), tx_recover, &made, err);
	if (recovered)
		*recovered = ret == 0 ? made : 0;
	return ret;
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

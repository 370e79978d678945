/* SPDX-License-Identifier: MIT */
/*
 * sqlite_events.c — events in the SQLite store: storing batches (with their
 * deliveries), reading, listing and replaying them.
 */
#include <stdlib.h>
#include <string.h>

#include "store/payload_codec.h"
#include "store/sqlite_int.h"

/* ---- handlers (loading the enabled ones for matching) ------------------------------- */

/* All enabled handlers, for matching new events. Called with the lock held. */
int sq_load_enabled_handlers(sq *s, handler **out, size_t *n, th_error *err)
{
	return sq_list_locked(s, Q_HANDLERS_ENABLED, &store_rt_handler, (void **)out, n,
	                      "loading handlers", err);
}

/* One delivery row (store_each_match callback); the statement is bound anew each time. */
typedef struct sq_dctx {
	sq *s;
	sqlite3_stmt *q;
	const event *ev;
	int64_t seq, generation, now;
	size_t made;
} sq_dctx;

static int insert_delivery(void *ctx, const handler *h, const char *id, th_error *err)
{
	sq_dctx *x = ctx;
	sq_bind b = {x->q, 0, SQLITE_OK};
	sq_bind_text(&b, id);
	sq_bind_text(&b, x->ev->id);
	sq_bind_text(&b, h->id);
	sq_bind_i64(&b, x->generation);
	sq_bind_i64(&b, x->now);
	sq_bind_text(&b, x->ev->webhook_id);
	sq_bind_i64(&b, x->seq);
	int rc = b.rc == SQLITE_OK ? sq_step(x->q) : b.rc;
	sq_reset(x->q);
	if (rc != SQLITE_DONE)
		return sq_fail(x->s, err, "adding a delivery");
	x->made++;
	return 0;
}

/* Insert one pending delivery, due at @now, of @ev (stored with @seq) for each
 * handler of @hs that matches it. Called inside a transaction with the lock
 * held. @out_n (optional) counts the deliveries. */
static int insert_deliveries(sq *s, const event *ev, int64_t seq, int64_t generation,
                             const handler *hs, size_t nh, int64_t now, size_t *out_n,
                             th_error *err)
{
	sq_dctx x = {s, NULL, ev, seq, generation, now, 0};
	int ret = 0;
	if (nh > 0) {
		if (!(x.q = sq_stmt(s, Q_DELIVERY_INSERT, err)))
			ret = TH_ESTORE;
		else
			ret = store_each_match(ev, hs, nh, insert_delivery, &x, err);
	}
	if (out_n)
		*out_n = x.made;
	return ret;
}

/* ---- events ------------------------------------------------------------------------------ */

/* May events be stored under webhook @id: *@ok false when it has no row or
 * is being removed. Inside the batch transaction, so no rm commits between
 * this answer and the insert (BEGIN IMMEDIATE: one writer at a time). */
static int webhook_takes_events(sq *s, const char *id, bool *ok, th_error *err)
{
	sqlite3_stmt *q = sq_stmt(s, Q_WEBHOOK_TAKES_EVENTS, err);
	if (!q)
		return TH_ESTORE;
	int rc = sq_step_key(q, id);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, err, "checking the event's webhook");
	*ok = rc == SQLITE_ROW;
	return 0;
}

/* Store one event, its payload packed as @pk, inside the batch transaction.
 * *@result: NEW when inserted, DUPLICATE for a second (webhook_id,
 * action_id); *@made grows by its deliveries. */
static int put_one(sq *s, const event *ev, const packed_payload *pk, const handler *hs, size_t nh,
                   int64_t now, enum store_put *result, size_t *made, th_error *err)
{
	*result = STORE_PUT_DUPLICATE;
	sqlite3_stmt *q = sq_stmt(s, Q_EVENT_INSERT, err);
	if (!q)
		return TH_ESTORE;
	sq_bind b = {q, 0, SQLITE_OK};
	sq_bind_text(&b, ev->id);
	sq_bind_text(&b, ev->webhook_id);
	sq_bind_text(&b, ev->action_id);
	sq_bind_text(&b, ev->action_type);
	sq_bind_text(&b, ev->action_date);
	sq_bind_text(&b, ev->model_id);
	sq_bind_text(&b, ev->board_id);
	sq_bind_text(&b, ev->board_name);
	sq_bind_text(&b, ev->list_id);
	sq_bind_text(&b, ev->list_name);
	sq_bind_text(&b, ev->card_id);
	sq_bind_text(&b, ev->card_name);
	sq_bind_text(&b, ev->member);
	sq_bind_text(&b, ev->summary);
	sq_bind_text(&b, event_source_name(ev->source));
	sq_bind_text(&b, ev->member_id);
	/* the body exactly as received, or its LZ4 block (payload_codec.h): a
	 * BLOB, never re-encoded as text */
	sq_bind_i64(&b, pk->codec);
	int i = ++b.i;
	if (b.rc == SQLITE_OK)
		b.rc = sqlite3_bind_blob64(q, i, pk->len ? pk->data : "", pk->len, SQLITE_STATIC);
	sq_bind_i64(&b, ev->received_at);
	int rc = sq_done(s, &b, "storing an event", err);
	if (rc != 0)
		return rc;
	if (sqlite3_changes(s->db) == 0)
		return 0;
	*result = STORE_PUT_NEW;
	int64_t seq = sqlite3_last_insert_rowid(s->db);
	size_t k = 0;
	int ret = insert_deliveries(s, ev, seq, 0, hs, nh, now, &k, err);
	*made += k;
	return ret;
}

/* The hourly rollup: one upsert per distinct (hour, webhook, type) of the
 * batch's new events. Called inside the batch transaction, lock held. */
static int add_rollups(sq *s, event *const *evs, const enum store_put *results, size_t n,
                       th_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int64_t hour, count;
		if (!store_batch_rollup_first(evs, results, n, i, &hour, &count))
			continue;
		sq_bind b;
		if (sq_prepare(s, Q_ROLLUP_ADD, &b, err) != 0)
			return TH_ESTORE;
		sq_bind_i64(&b, hour);
		sq_bind_text(&b, evs[i]->webhook_id);
		sq_bind_text(&b, evs[i]->action_type ? evs[i]->action_type : "");
		sq_bind_i64(&b, count);
		int rc = sq_done(s, &b, "updating the hourly event rollup", err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Per webhook with new events in the batch: last_event_at and the event
 * counter (migration 9). Called inside the batch transaction, lock held. */
static int touch_webhooks(sq *s, event *const *evs, const enum store_put *results, size_t n,
                          th_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int64_t latest, count;
		if (!store_batch_webhook_latest(evs, results, n, i, &latest, &count))
			continue;
		static const struct {
			int id;
			const char *what;
		} step[] = {{Q_WEBHOOK_TOUCH, "updating the webhook's last event time"},
		            {Q_WEBHOOK_COUNT_ADD, "updating the webhook's event count"}};
		for (size_t k = 0; k < TH_ARRAY_LEN(step); k++) {
			sq_bind b;
			if (sq_prepare(s, step[k].id, &b, err) != 0)
				return TH_ESTORE;
			sq_bind_text(&b, evs[i]->webhook_id);
			sq_bind_i64(&b, step[k].id == Q_WEBHOOK_TOUCH ? latest : count);
			int rc = sq_done(s, &b, step[k].what, err);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int sq_events_put(store *st, event **evs, size_t n, enum store_put *results, th_error *err)
{
	sq *s = sq_of(st);
	int ret = 0;
	handler *hs = NULL;
	size_t nh = 0;
	for (size_t i = 0; i < n; i++)
		results[i] = STORE_PUT_FAILED;
	if (n == 0)
		return 0;
	/* which ids/received_at we filled in, to undo for events not stored */
	unsigned char *filled = calloc(n, 1);
	packed_payload *packs = calloc(n, sizeof *packs);
	if (!filled || !packs) {
		free(filled);
		free(packs);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	int64_t now = time_now_ms();
	if ((ret = store_events_fill(evs, n, now, filled, err)) != 0)
		goto out;
	/* Compress before taking the lock: with two writers, one packs its
	 * batch while the other commits. */
	for (size_t i = 0; i < n; i++)
		if (store_event_storable(evs[i]))
			payload_pack(evs[i]->payload, evs[i]->payload_len, &packs[i]);

	pthread_mutex_lock(&s->mu);
	if ((ret = sq_run(s, Q_BEGIN, "starting a transaction", err)) != 0)
		goto unlock;
	if ((ret = sq_load_enabled_handlers(s, &hs, &nh, err)) != 0)
		goto rollback;
	const char *checked = NULL; /* the webhook id last checked, and its answer */
	bool takes = false;
	size_t made = 0; /* deliveries */
	for (size_t i = 0; i < n; i++) {
		event *ev = evs[i];
		if (!store_event_storable(ev))
			continue;
		if (!checked || !str_eq(checked, ev->webhook_id)) { /* batches run by webhook */
			if ((ret = webhook_takes_events(s, ev->webhook_id, &takes, err)) != 0)
				goto rollback;
			checked = ev->webhook_id;
		}
		if (!takes) {
			results[i] = STORE_PUT_GONE; /* removed or being removed: not stored */
			continue;
		}
		if ((ret = put_one(s, ev, &packs[i], hs, nh, now, &results[i], &made, err)) != 0)
			goto rollback;
	}
	if ((ret = touch_webhooks(s, evs, results, n, err)) != 0)
		goto rollback;
	if ((ret = add_rollups(s, evs, results, n, err)) != 0)
		goto rollback;
	if ((ret = sq_run(s, Q_COMMIT, "committing events", err)) != 0)
		goto rollback;
	if (made)
		atomic_store_explicit(&st->fresh_deliveries, true, memory_order_release);
	goto unlock;
rollback:
	sq_rollback(s);
	for (size_t i = 0; i < n; i++)
		results[i] = STORE_PUT_FAILED;
	if (ret != TH_ENOMEM && ret != TH_EIO)
		ret = TH_ESTORE;
unlock:
	pthread_mutex_unlock(&s->mu);
out:
	/* an event that was not stored keeps the id/time it came with */
	store_events_unfill(evs, n, results, filled);
	free(filled);
	for (size_t i = 0; i < n; i++)
		packed_payload_free(&packs[i]);
	free(packs);
	handler_list_free(hs, nh);
	return ret;
}

int sq_event_get(store *st, const char *id, event *out, th_error *err)
{
	return sq_get_id(sq_of(st), Q_EVENT_GET, id, &store_rt_event, out, "event",
	                 "reading an event", err);
}

/* A new generation of deliveries of a stored event, one per matching enabled
 * handler, due now; in one transaction. */
typedef struct replay_ctx {
	const char *event_id;
	size_t *made; /* the deliveries made */
} replay_ctx;

static int tx_replay(sq *s, void *ctx, th_error *err)
{
	replay_ctx *x = ctx;
	event_row er = {0};
	handler *hs = NULL;
	size_t nh = 0;
	int64_t generation = 0;
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "event", x->event_id);
	int ret = sq_get_one_locked(s, Q_EVENT_FOR_REPLAY, x->event_id, NULL,
	                            &store_rt_event_row_full, &er, nf, "reading an event", err);
	if (ret != 0)
		goto out;
	sq_bind b;
	if ((ret = sq_prepare(s, Q_NEXT_GENERATION, &b, err)) != 0)
		goto out;
	sq_bind_text(&b, x->event_id);
	int rc = b.rc == SQLITE_OK ? sq_step(b.st) : b.rc;
	if (rc == SQLITE_ROW)
		generation = sqlite3_column_int64(b.st, 0);
	else
		ret = sq_fail(s, err, "reading delivery generations");
	sq_reset(b.st);
	if (ret == 0)
		ret = sq_load_enabled_handlers(s, &hs, &nh, err);
	if (ret == 0)
		ret = insert_deliveries(s, &er.ev, er.seq, generation, hs, nh, time_now_ms(),
		                        x->made, err);
out:
	store_event_clear(&er.ev);
	handler_list_free(hs, nh);
	return ret;
}

int sq_event_replay(store *st, const char *event_id, size_t *out_n, th_error *err)
{
	replay_ctx x = {event_id, out_n};
	return sq_txn(sq_of(st), tx_replay, &x, err);
}

/* The by-type read: the range's cells come in primary-key order (hour
 * first), so a bucket's cells are contiguous; they are summed into the tail
 * of @out (one row per type of the current bucket, found by a short linear
 * search: a bucket holds a few dozen types). SQLite's GROUP BY would sort
 * every cell first (tens of thousands for 30 days); this reads them once. */
static int rollup_fold(sq *s, sqlite3_stmt *q, int64_t bucket_hours, event_rollup_row **out,
                       size_t *n, th_error *err)
{
	size_t cap = 0, first = 0; /* first: where the current bucket's rows start */
	int64_t cur = 0;
	int rc;
	while ((rc = sq_step(q)) == SQLITE_ROW) {
		int64_t hour = sqlite3_column_int64(q, 0);
		const char *type = (const char *)sqlite3_column_text(q, 1);
		int64_t b = hour - hour % bucket_hours;
		if (!type)
			type = "";
		if (*n == 0 || b != cur) {
			cur = b;
			first = *n;
		}
		size_t i = first;
		while (i < *n && strcmp((*out)[i].action_type, type) != 0)
			i++;
		if (i == *n) {
			if (*n == STORE_ROLLUP_MAX_ROWS)
				break; /* the bound every rollup read keeps */
			if (*n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				event_rollup_row *g = realloc(*out, nc * sizeof *g);
				if (!g)
					return th_err(err, TH_ENOMEM,
					              "reading the event rollup: out of memory");
				*out = g;
				cap = nc;
			}
			event_rollup_row *r = &(*out)[(*n)++];
			*r = (event_rollup_row){str_dup(""), str_dup(type), b, 0};
			if (!r->webhook_id || !r->action_type)
				return th_err(err, TH_ENOMEM,
				              "reading the event rollup: out of memory");
		}
		(*out)[i].n += sqlite3_column_int64(q, 2);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(s, err, "reading the event rollup");
	return 0;
}

/* rollup_fold, and nothing left behind when it fails. */
static int rollup_by_type(sq *s, sqlite3_stmt *q, int64_t bucket_hours, event_rollup_row **out,
                          size_t *n, th_error *err)
{
	int ret = rollup_fold(s, q, bucket_hours, out, n, err);
	if (ret != 0) {
		event_rollup_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

/* The rollup cells of [from_hour, to_hour), oldest first. */
int sq_event_rollup(store *st, int64_t from_hour, int64_t to_hour, int64_t bucket_hours,
                    bool per_webhook, event_rollup_row **out, size_t *n, th_error *err)
{
	if (store_check_rollup(bucket_hours, out, n, err) != 0)
		return TH_EINVAL;
	sq *s = sq_of(st);
	if (per_webhook) { /* summed in SQL */
		const int64_t range[] = {from_hour, to_hour, bucket_hours};
		return sq_list_ints(s, Q_ROLLUP_RANGE, range, TH_ARRAY_LEN(range), &store_rt_rollup,
		                    (void **)out, n, "reading the event rollup", err);
	}
	/* by type: summed in rollup_by_type */
	pthread_mutex_lock(&s->mu);
	sq_bind b;
	int ret = sq_prepare(s, Q_ROLLUP_RANGE_TYPES, &b, err);
	if (ret == 0) {
		sq_bind_i64(&b, from_hour);
		sq_bind_i64(&b, to_hour);
		ret = b.rc != SQLITE_OK ? sq_fail(s, err, "reading the event rollup")
		                        : rollup_by_type(s, b.st, bucket_hours, out, n, err);
		sq_reset(b.st);
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

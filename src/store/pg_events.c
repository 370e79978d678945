/* SPDX-License-Identifier: MIT */
/*
 * pg_events.c — events in the PostgreSQL store: storing batches (with their
 * deliveries), reading, listing and replaying them.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

#define EVENTS_PER_INSERT 1000     /* 18 parameters each: well under 65535 */
#define DELIVERIES_PER_INSERT 5000 /* 7 parameters each */

/* ---- deliveries for new events ------------------------------------------------------------ */

/* All enabled handlers, for matching new events (inside the caller's transaction). */
static int load_enabled_handlers(pgs *s, PGconn *c, handler **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	PGresult *r = pq(s, c,
	                 "SELECT " HANDLER_COLS " FROM handlers WHERE enabled"
	                 " ORDER BY created_at, id",
	                 NULL, "loading handlers", err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	int ret = pg_read_rows(r, &store_rt_handler, (void **)out, n, err);
	PQclear(r);
	return ret;
}

/* Pending deliveries being gathered for one multi-row INSERT. */
typedef struct dbatch {
	pparams p;
	buf sql;
	int rows;
	size_t made;
} dbatch;

static int dbatch_flush(pgs *s, PGconn *c, dbatch *b, th_error *err)
{
	if (b->rows == 0)
		return 0;
	int ret = 0;
	if (buf_puts(&b->sql, "") != 0 || !b->sql.data)
		ret = th_err(err, TH_ENOMEM, "out of memory");
	else
		ret = pq_do(s, c, b->sql.data, &b->p, "adding deliveries", err);
	buf_reset(&b->sql);
	pp_reset(&b->p);
	b->rows = 0;
	return ret;
}

typedef struct pg_dctx {
	pgs *s;
	PGconn *c;
	dbatch *b;
	const event *ev;
	int64_t seq, generation, now;
} pg_dctx;

/* One delivery row into the batch (store_each_match callback); flushes a full batch. */
static int queue_delivery(void *ctx, const handler *h, const char *id, th_error *err)
{
	pg_dctx *x = ctx;
	dbatch *b = x->b;
	int k = b->p.n;
	int e = buf_puts(&b->sql, b->rows == 0 ? "INSERT INTO deliveries (id, event_id, handler_id,"
	                                         " generation, status, attempts, next_attempt_at,"
	                                         " updated_at, webhook_id, event_seq) VALUES "
	                                       : ",");
	if (!e)
		e = buf_printf(&b->sql, "($%d,$%d,$%d,$%d,'pending',0,$%d,$%d,$%d,$%d)", k + 1,
		               k + 2, k + 3, k + 4, k + 5, k + 5, k + 6, k + 7);
	if (e)
		return th_err(err, TH_ENOMEM, "out of memory");
	pp_text(&b->p, pp_own(&b->p, str_dup(id)));
	pp_text(&b->p, x->ev->id);
	pp_text(&b->p, h->id);
	pp_i64(&b->p, x->generation);
	pp_i64(&b->p, x->now);
	pp_text_repair(&b->p, x->ev->webhook_id);
	pp_i64(&b->p, x->seq);
	b->rows++;
	b->made++;
	if (b->rows >= DELIVERIES_PER_INSERT)
		return dbatch_flush(x->s, x->c, b, err);
	return 0;
}

/* Queue one pending delivery, due at @now, of @ev (stored as @seq) for each
 * matching handler of @hs; flushes full batches. */
static int queue_deliveries(pgs *s, PGconn *c, dbatch *b, const event *ev, int64_t seq,
                            int64_t generation, const handler *hs, size_t nh, int64_t now,
                            th_error *err)
{
	pg_dctx x = {s, c, b, ev, seq, generation, now};
	return store_each_match(ev, hs, nh, queue_delivery, &x, err);
}

/* ---- events -------------------------------------------------------------------------------- */

typedef struct put_ctx {
	event **evs;
	size_t n;
	enum store_put *results;
	int64_t now;
	int64_t *seqs; /* per event: its seq when new */
} put_ctx;

/* One SELECT ... FOR KEY SHARE over the distinct webhook ids @ids[0..@k):
 * marks @ok[i] for each event whose webhook takes events (exists, not being
 * removed). The lock makes a concurrent DELETE of such a webhook wait for
 * this batch's commit, so no event is stored under a webhook that is gone by
 * then; marking one removing (an UPDATE of other columns) does not wait. */
static int lock_chunk(pgs *s, PGconn *c, put_ctx *x, const char **ids, size_t k, unsigned char *ok,
                      th_error *err)
{
	pparams p = {0};
	buf sql;
	buf_init(&sql, BUF_MAX_DEFAULT);
	int e = buf_puts(&sql, "SELECT id FROM webhooks WHERE state <> 'removing' AND id IN (");
	for (size_t j = 0; j < k && !e; j++) {
		e = buf_printf(&sql, j ? ",$%zu" : "$%zu", j + 1);
		pp_text_repair(&p, ids[j]);
	}
	if (!e)
		e = buf_puts(&sql, ") ORDER BY id FOR KEY SHARE");
	PGresult *r = NULL;
	int ret = 0;
	if (e)
		ret = th_err(err, TH_ENOMEM, "out of memory");
	else if (!(r = pq(s, c, sql.data, &p, "checking the events' webhooks", err)))
		ret = err ? err->code : TH_ESTORE;
	for (int row = 0; r && row < PQntuples(r); row++)
		for (size_t i = 0; i < x->n; i++)
			if (store_event_storable(x->evs[i]) &&
			    str_eq(x->evs[i]->webhook_id, PQgetvalue(r, row, 0)))
				ok[i] = 1;
	PQclear(r);
	pp_free(&p);
	buf_free(&sql);
	return ret;
}

/* Before inserting: every storable event whose webhook has no row or is
 * being removed becomes STORE_PUT_GONE (and is skipped by insert_events). */
static int refuse_gone(pgs *s, PGconn *c, put_ctx *x, th_error *err)
{
	const char **ids = calloc(x->n ? x->n : 1, sizeof *ids);
	unsigned char *ok = calloc(x->n ? x->n : 1, 1);
	size_t k = 0;
	int ret = ids && ok ? 0 : th_err(err, TH_ENOMEM, "out of memory");
	for (size_t i = 0; i < x->n && !ret; i++) {
		if (!store_event_storable(x->evs[i]))
			continue;
		bool seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = str_eq(ids[j], x->evs[i]->webhook_id);
		if (!seen)
			ids[k++] = x->evs[i]->webhook_id;
		if (k == EVENTS_PER_INSERT) { /* bounded parameters per statement */
			ret = lock_chunk(s, c, x, ids, k, ok, err);
			k = 0;
		}
	}
	if (!ret && k)
		ret = lock_chunk(s, c, x, ids, k, ok, err);
	for (size_t i = 0; i < x->n && !ret; i++)
		if (store_event_storable(x->evs[i]) && !ok[i])
			x->results[i] = STORE_PUT_GONE;
	free(ids);
	free(ok);
	return ret;
}

/* May insert_events store evs[@i]? (Storable, and its webhook takes events.) */
static bool insertable(const put_ctx *x, size_t i)
{
	return store_event_storable(x->evs[i]) && x->results[i] != STORE_PUT_GONE;
}

/* Insert events [from, to) that are storable in one multi-row INSERT; marks
 * results NEW (with seqs) for the rows that came back, DUPLICATE for the rest. */
static int insert_events(pgs *s, PGconn *c, put_ctx *x, size_t from, size_t to, th_error *err)
{
	pparams p = {0};
	buf sql;
	buf_init(&sql, BUF_MAX_DEFAULT);
	PGresult *r = NULL;
	int ret = 0, rows = 0;
	int e = buf_puts(&sql, "INSERT INTO events (id, webhook_id, action_id, action_type,"
	                       " action_date, model_id, board_id, board_name, list_id, list_name,"
	                       " card_id, card_name, member, summary, source, member_id, payload,"
	                       " received_at) VALUES ");
	for (size_t i = from; i < to && !e; i++) {
		event *ev = x->evs[i];
		if (!insertable(x, i))
			continue;
		e = buf_puts(&sql, rows ? ",(" : "(");
		for (int k = 0; k < 18 && !e; k++)
			e = buf_printf(&sql, k ? ",$%d" : "$%d", p.n + k + 1);
		if (!e)
			e = buf_putc(&sql, ')');
		pp_text_repair(&p, ev->id);
		pp_text_repair(&p, ev->webhook_id);
		pp_text_repair(&p, ev->action_id);
		pp_text_repair(&p, ev->action_type);
		pp_text_repair(&p, ev->action_date);
		pp_text_repair(&p, ev->model_id);
		pp_text_repair(&p, ev->board_id);
		pp_text_repair(&p, ev->board_name);
		pp_text_repair(&p, ev->list_id);
		pp_text_repair(&p, ev->list_name);
		pp_text_repair(&p, ev->card_id);
		pp_text_repair(&p, ev->card_name);
		pp_text_repair(&p, ev->member);
		pp_text_repair(&p, ev->summary);
		pp_text(&p, event_source_name(ev->source));
		pp_text_repair(&p, ev->member_id);
		pp_bytes(&p, ev->payload, ev->payload_len); /* the body exactly as received */
		pp_i64(&p, ev->received_at);
		rows++;
	}
	if (rows == 0)
		goto out;
	if (!e)
		e = buf_puts(&sql,
		             " ON CONFLICT (webhook_id, action_id) DO NOTHING RETURNING id, seq");
	if (e) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	if (!(r = pq(s, c, sql.data, &p, "storing events", err))) {
		ret = err ? err->code : TH_ESTORE;
		goto out;
	}
	for (size_t i = from; i < to; i++)
		if (insertable(x, i))
			x->results[i] = STORE_PUT_DUPLICATE;
	/* rows come back in VALUES order in practice; search on when they do not */
	size_t cur = from;
	for (int k = 0; k < PQntuples(r); k++) {
		const char *id = PQgetvalue(r, k, 0);
		size_t j = cur, tries = 0;
		while (tries < to - from && !(insertable(x, j) && str_eq(x->evs[j]->id, id))) {
			j = j + 1 < to ? j + 1 : from;
			tries++;
		}
		if (tries == to - from)
			continue; /* cannot happen: ids are ours */
		x->results[j] = STORE_PUT_NEW;
		(void)num_parse_i64(PQgetvalue(r, k, 1), 0, INT64_MAX, &x->seqs[j]);
		cur = j + 1 < to ? j + 1 : from;
	}
out:
	PQclear(r);
	pp_free(&p);
	buf_free(&sql);
	return ret;
}

/* The hourly rollup: one upsert per distinct (hour, webhook, type) of the
 * batch's new events, inside the batch transaction. */
static int add_rollups(pgs *s, PGconn *c, put_ctx *x, th_error *err)
{
	for (size_t i = 0; i < x->n; i++) {
		int64_t hour, count;
		if (!store_batch_rollup_first(x->evs, x->results, x->n, i, &hour, &count))
			continue;
		pparams p = {0};
		pp_i64(&p, hour);
		pp_text_repair(&p, x->evs[i]->webhook_id);
		pp_text_repair(&p, x->evs[i]->action_type ? x->evs[i]->action_type : "");
		pp_i64(&p, count);
		int ret =
		    pq_do(s, c,
		          "INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)"
		          " VALUES ($1, $2, $3, $4) ON CONFLICT (hour, webhook_id, action_type)"
		          " DO UPDATE SET n = event_rollup_hour.n + excluded.n",
		          &p, "updating the hourly event rollup", err);
		pp_free(&p);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* The whole batch in one transaction: events, their deliveries, the webhooks'
 * last event times, the hourly rollup. */
static int op_events_put(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	put_ctx *x = ctx;
	handler *hs = NULL;
	size_t nh = 0;
	dbatch db = {0};
	buf_init(&db.sql, BUF_MAX_DEFAULT);
	int ret = 0;
	for (size_t i = 0; i < x->n; i++)
		x->results[i] = STORE_PUT_FAILED;
	if ((ret = pq_begin(s, c, err)) != 0)
		goto fail;
	if ((ret = load_enabled_handlers(s, c, &hs, &nh, err)) != 0)
		goto fail;
	if ((ret = refuse_gone(s, c, x, err)) != 0)
		goto fail;
	for (size_t i = 0; i < x->n; i += EVENTS_PER_INSERT) {
		size_t to = i + EVENTS_PER_INSERT < x->n ? i + EVENTS_PER_INSERT : x->n;
		if ((ret = insert_events(s, c, x, i, to, err)) != 0)
			goto fail;
	}
	for (size_t i = 0; i < x->n; i++) {
		if (x->results[i] != STORE_PUT_NEW)
			continue;
		if ((ret = queue_deliveries(s, c, &db, x->evs[i], x->seqs[i], 0, hs, nh, x->now,
		                            err)) != 0)
			goto fail;
	}
	if ((ret = dbatch_flush(s, c, &db, err)) != 0)
		goto fail;
	/* last_event_at: one UPDATE per webhook with its latest new event */
	for (size_t i = 0; i < x->n; i++) {
		int64_t latest;
		if (!store_batch_webhook_latest(x->evs, x->results, x->n, i, &latest))
			continue;
		pparams p = {0};
		pp_text_repair(&p, x->evs[i]->webhook_id);
		pp_i64(&p, latest);
		ret = pq_do(s, c,
		            "UPDATE webhooks SET last_event_at = $2"
		            " WHERE id = $1 AND last_event_at < $2",
		            &p, "updating the webhook's last event time", err);
		pp_free(&p);
		if (ret != 0)
			goto fail;
	}
	if ((ret = add_rollups(s, c, x, err)) != 0)
		goto fail;
	if ((ret = pq_commit(s, c, "committing events", err)) != 0)
		goto fail;
	goto out;
fail:
	pq_rollback(c);
	for (size_t i = 0; i < x->n; i++)
		x->results[i] = STORE_PUT_FAILED;
out:
	pp_free(&db.p);
	buf_free(&db.sql);
	handler_list_free(hs, nh);
	return ret;
}

int pg_events_put(store *st, event **evs, size_t n, enum store_put *results, th_error *err)
{
	pgs *s = pgs_of(st);
	int ret = 0;
	/* which ids/received_at we filled in, to undo for events not stored */
	unsigned char *filled = calloc(n ? n : 1, 1);
	int64_t *seqs = calloc(n ? n : 1, sizeof *seqs);
	for (size_t i = 0; i < n; i++)
		results[i] = STORE_PUT_FAILED;
	if (!filled || !seqs) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	int64_t now = time_now_ms();
	if ((ret = store_events_fill(evs, n, now, filled, err)) != 0)
		goto out;
	put_ctx x = {evs, n, results, now, seqs};
	ret = with_conn(s, op_events_put, &x, err);
	if (ret != 0 && ret != TH_ENOMEM && ret != TH_EIO && ret != TH_EUNAVAIL)
		ret = TH_ESTORE;
out:
	/* an event that was not stored keeps the id/time it came with */
	store_events_unfill(evs, n, results, filled);
	free(filled);
	free(seqs);
	return ret;
}

int pg_event_get(store *st, const char *id, event *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "event", id);
	pparams p = {0};
	pp_text(&p, id);
	int ret = pg_get_one(pgs_of(st), "SELECT " EVENT_COLS ", payload FROM events WHERE id = $1",
	                     &p, "reading an event", &store_rt_event, out, nf, err);
	pp_free(&p);
	return ret;
}

/* Newest first (or oldest first), without payloads. The text filter is
 * ILIKE, which (with the C collation of our clusters) folds ASCII letters. */
int pg_event_list(store *st, const event_query *qy, event_row **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	pparams p = {0};
	buf sql, pat;
	buf_init(&sql, 4096);
	buf_init(&pat, 4096);
	int ret = 0;
	size_t limit = store_list_limit(qy->limit, STORE_EVENT_LIST_DEFAULT);
	int e = buf_puts(&sql, "SELECT " EVENT_COLS " FROM events WHERE true");
	if (!e && qy->webhook_id) {
		pp_text_repair(&p, qy->webhook_id);
		e = buf_printf(&sql, " AND webhook_id = $%d", p.n);
	}
	if (!e && qy->action_type) {
		pp_text_repair(&p, qy->action_type);
		e = buf_printf(&sql, " AND action_type = $%d", p.n);
	}
	if (!e && qy->text && *qy->text) {
		e = store_like_pattern(&pat, qy->text);
		if (!e) {
			pp_text_repair(&p, pat.data);
			e = buf_printf(&sql, " AND summary ILIKE $%d ESCAPE '\\'", p.n);
		}
	}
	if (!e && qy->after_seq > 0) {
		pp_i64(&p, qy->after_seq);
		e = buf_printf(&sql, " AND seq > $%d", p.n);
	}
	if (!e && qy->before_seq > 0) {
		pp_i64(&p, qy->before_seq);
		e = buf_printf(&sql, " AND seq < $%d", p.n);
	}
	if (!e)
		e = buf_puts(&sql, qy->oldest_first ? " ORDER BY seq ASC" : " ORDER BY seq DESC");
	if (!e) {
		pp_i64(&p, (int64_t)limit);
		e = buf_printf(&sql, " LIMIT $%d", p.n);
	}
	if (e) {
		ret = th_err(err, TH_ETOOBIG, "event filter text is too long");
		goto out;
	}
	ret = pg_list_all(pgs_of(st), sql.data, &p, "listing events", &store_rt_event_row,
	                  (void **)out, n, err);
out:
	pp_free(&p);
	buf_free(&sql);
	buf_free(&pat);
	return ret;
}

typedef struct replay_ctx {
	const char *event_id;
	size_t made;
} replay_ctx;

/* A new generation of deliveries of a stored event, one per matching enabled
 * handler, due now; in one transaction. */
static int op_event_replay(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	replay_ctx *x = ctx;
	event_row er = {0};
	handler *hs = NULL;
	size_t nh = 0;
	int64_t generation = 0;
	pparams p = {0};
	PGresult *r = NULL;
	dbatch db = {0};
	buf_init(&db.sql, BUF_MAX_DEFAULT);
	int ret = 0;
	x->made = 0;
	pp_text_repair(&p, x->event_id);
	/* FOR UPDATE: two replays of one event take turns, so generations differ */
	if (!(r = pq(s, c, "SELECT " EVENT_COLS ", payload FROM events WHERE id = $1 FOR UPDATE",
	             &p, "reading an event", err))) {
		ret = err ? err->code : TH_ESTORE;
		goto out;
	}
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "event", x->event_id);
	ret = pg_read_first(r, &store_rt_event_row_full, &er, nf, err);
	PQclear(r);
	r = NULL;
	if (ret != 0)
		goto out;
	if (!(r = pq(s, c,
	             "SELECT coalesce(max(generation), -1) + 1 FROM deliveries"
	             " WHERE event_id = $1",
	             &p, "reading delivery generations", err))) {
		ret = err ? err->code : TH_ESTORE;
		goto out;
	}
	(void)num_parse_i64(PQgetvalue(r, 0, 0), 0, INT32_MAX, &generation);
	if ((ret = load_enabled_handlers(s, c, &hs, &nh, err)) != 0)
		goto out;
	if ((ret = queue_deliveries(s, c, &db, &er.ev, er.seq, generation, hs, nh, time_now_ms(),
	                            err)) != 0)
		goto out;
	if ((ret = dbatch_flush(s, c, &db, err)) != 0)
		goto out;
	x->made = db.made;
out:
	PQclear(r);
	pp_free(&p);
	pp_free(&db.p);
	buf_free(&db.sql);
	store_event_clear(&er.ev);
	handler_list_free(hs, nh);
	return ret;
}

int pg_event_replay(store *st, const char *event_id, size_t *out_n, th_error *err)
{
	replay_ctx x = {event_id, 0};
	int ret = with_txn(pgs_of(st), op_event_replay, &x, err);
	if (out_n)
		*out_n = ret == 0 ? x.made : 0;
	return ret;
}

/* The rollup cells of [from_hour, to_hour), oldest first. */
int pg_event_rollup(store *st, int64_t from_hour, int64_t to_hour, int64_t bucket_hours,
                    event_rollup_row **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	if (bucket_hours < 1)
		return th_err(err, TH_EINVAL, "event rollup: buckets of at least 1 hour");
	pparams p = {0};
	pp_i64(&p, from_hour);
	pp_i64(&p, to_hour);
	pp_i64(&p, bucket_hours);
	int ret =
	    pg_list_all(pgs_of(st),
	                "SELECT webhook_id, action_type, hour - hour % $3::bigint AS b, sum(n)"
	                " FROM event_rollup_hour WHERE hour >= $1 AND hour < $2"
	                " GROUP BY b, webhook_id, action_type ORDER BY b LIMIT 100000",
	                &p, "reading the event rollup", &store_rt_rollup, (void **)out, n, err);
	pp_free(&p);
	return ret;
}

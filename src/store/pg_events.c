/* SPDX-License-Identifier: MIT */
/*
 * pg_events.c — events in the PostgreSQL store: reading, listing and
 * replaying them (storing batches: pg_batch.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/pg_int.h"
#include "util/log.h"

#define DELIVERIES_PER_INSERT 5000 /* 7 parameters each (replay) */

/* All enabled handlers, for matching events. */
#define HANDLERS_SQL PG_ENABLED_HANDLERS " ORDER BY created_at, id"

/* ---- deliveries of a replayed event ------------------------------------------------------ */

/* All enabled handlers (inside the caller's transaction). */
static int load_enabled_handlers(pgs *s, PGconn *c, handler **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	PGresult *r = pq(s, c, HANDLERS_SQL, NULL, "loading handlers", err);
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

int pg_event_get(store *st, const char *id, event *out, th_error *err)
{
	return pg_get_id(pgs_of(st),
	                 "SELECT " EVENT_COLS ", " EVENT_PAYLOAD_COLS " FROM events WHERE id = $1",
	                 id, "reading an event", &store_rt_event, out, "event", err);
}

typedef struct replay_ctx {
	const char *event_id;
	size_t *made; /* the deliveries made */
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
	*x->made = 0;
	pp_text_repair(&p, x->event_id);
	/* FOR UPDATE: two replays of one event take turns, so generations differ */
	if ((ret = pq_get(s, c,
	                  "SELECT " EVENT_COLS ", " EVENT_PAYLOAD_COLS
	                  " FROM events WHERE id = $1 FOR UPDATE",
	                  &p, "reading an event", &r, err)) != 0)
		goto out;
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "event", x->event_id);
	ret = pg_read_first(r, &store_rt_event_row_full, &er, nf, err);
	PQclear(r);
	r = NULL;
	if (ret != 0)
		goto out;
	if ((ret = pq_get(s, c,
	                  "SELECT coalesce(max(generation), -1) + 1 FROM deliveries"
	                  " WHERE event_id = $1",
	                  &p, "reading delivery generations", &r, err)) != 0)
		goto out;
	(void)num_parse_i64(PQgetvalue(r, 0, 0), 0, INT32_MAX, &generation);
	if ((ret = load_enabled_handlers(s, c, &hs, &nh, err)) != 0)
		goto out;
	if ((ret = queue_deliveries(s, c, &db, &er.ev, er.seq, generation, hs, nh, time_now_ms(),
	                            err)) != 0)
		goto out;
	if ((ret = dbatch_flush(s, c, &db, err)) != 0)
		goto out;
	*x->made = db.made;
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
	replay_ctx x = {event_id, out_n};
	return with_txn(pgs_of(st), op_event_replay, &x, err);
}

/* The rollup cells of [from_hour, to_hour), oldest first. */
int pg_event_rollup(store *st, int64_t from_hour, int64_t to_hour, int64_t bucket_hours,
                    bool per_webhook, event_rollup_row **out, size_t *n, th_error *err)
{
	if (store_check_rollup(bucket_hours, out, n, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	pp_i64(&p, from_hour);
	pp_i64(&p, to_hour);
	pp_i64(&p, bucket_hours);
	const char *sql =
	    per_webhook
	        ? "SELECT webhook_id, action_type, hour - hour % $3::bigint AS b, sum(n)"
	          " FROM event_rollup_hour WHERE hour >= $1 AND hour < $2"
	          " GROUP BY b, webhook_id, action_type ORDER BY b, webhook_id, action_type LIMIT 100000"
	        : "SELECT '', action_type, hour - hour % $3::bigint AS b, sum(n)"
	          " FROM event_rollup_hour WHERE hour >= $1 AND hour < $2"
	          " GROUP BY b, action_type ORDER BY b, action_type LIMIT 100000";
	int ret = pg_list_all(pgs_of(st), sql, &p, "reading the event rollup", &store_rt_rollup,
	                      (void **)out, n, err);
	pp_free(&p);
	return ret;
}

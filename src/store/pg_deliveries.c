/* SPDX-License-Identifier: MIT */
/*
 * pg_deliveries.c — handlers and deliveries in the PostgreSQL store: the claim,
 * outcomes, retries and counts.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

/* ---- handlers ------------------------------------------------------------------------------ */

int pg_handler_insert(store *st, const handler *h, th_error *err)
{
	if (store_check_handler(h, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	store_params_handler(&(store_params){&pp_params_ops, &p}, h);
	int ret = pg_command(
	    pgs_of(st), "INSERT INTO handlers (" HANDLER_COLS ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
	    &p, "adding a handler", NULL, err);
	pp_free(&p);
	if (ret == TH_EEXISTS)
		return th_err(err, TH_EEXISTS, "a handler with id %s already exists", h->id);
	return ret;
}

int pg_handler_get(store *st, const char *id, handler *out, th_error *err)
{
	return pg_get_id(pgs_of(st), "SELECT " HANDLER_COLS " FROM handlers WHERE id = $1", id,
	                 "reading a handler", &store_rt_handler, out, "handler", err);
}

int pg_handler_list(store *st, handler **out, size_t *n, th_error *err)
{
	return pg_list_all(pgs_of(st),
	                   "SELECT " HANDLER_COLS " FROM handlers ORDER BY created_at, id", NULL,
	                   "listing handlers", &store_rt_handler, (void **)out, n, err);
}

/* Deletes the handler and, in the same transaction, its deliveries that are
 * not done; done ones stay as history. */
static int op_handler_delete(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	const char *id = ctx;
	pparams p = {0};
	PGresult *r = NULL;
	int ret = 0;
	pp_text(&p, id);
	if ((ret = pq_do(s, c, "DELETE FROM deliveries WHERE handler_id = $1 AND status <> 'done'",
	                 &p, "deleting a handler's deliveries", err)) != 0)
		goto out;
	if ((ret = pq_get(s, c, "DELETE FROM handlers WHERE id = $1", &p, "deleting a handler", &r,
	                  err)) == 0 &&
	    pq_changes(r) == 0)
		ret = store_not_found(err, "handler", id);
out:
	PQclear(r);
	pp_free(&p);
	return ret;
}

int pg_handler_delete(store *st, const char *id, th_error *err)
{
	return with_txn(pgs_of(st), op_handler_delete, (void *)id, err);
}

int pg_handler_set_enabled(store *st, const char *id, bool enabled, th_error *err)
{
	pparams p = {0};
	pp_text(&p, id);
	pp_bool(&p, enabled);
	long changes = 0;
	int ret = pg_command(pgs_of(st), "UPDATE handlers SET enabled = $2 WHERE id = $1", &p,
	                     "updating a handler", &changes, err);
	pp_free(&p);
	if (ret == 0 && changes == 0)
		ret = store_not_found(err, "handler", id);
	return ret;
}

int pg_handler_set_secret(store *st, const char *id, const char *old, const char *secret,
                          bool *changed, th_error *err)
{
	*changed = false;
	if (!id || !old || !secret)
		return th_err(err, TH_EINVAL, "handler_set_secret: id, old and new secret needed");
	pparams p = {0};
	pp_text(&p, id);
	pp_text(&p, old);
	pp_text(&p, secret);
	long changes = 0;
	int ret =
	    pg_command(pgs_of(st), "UPDATE handlers SET secret = $3 WHERE id = $1 AND secret = $2",
	               &p, "updating a handler's secret", &changes, err);
	pp_free(&p);
	*changed = ret == 0 && changes > 0;
	return ret;
}

/* ---- deliveries ---------------------------------------------------------------------------- */

int pg_delivery_get(store *st, const char *id, delivery *out, th_error *err)
{
	return pg_get_id(pgs_of(st), "SELECT " DELIVERY_COLS " FROM deliveries d WHERE d.id = $1",
	                 id, "reading a delivery", &store_rt_delivery, out, "delivery", err);
}

/* Claim due deliveries in one statement (see store.h for the rules). Rows
 * another transaction is claiming right now are skipped (SKIP LOCKED), so
 * several instances never claim the same delivery; the order rule is checked
 * against committed state, and a row claimed meanwhile by another instance is
 * re-checked after its lock (status running, lease valid: not claimed).
 *
 * Cost bound, as in SQLite's (Q_DELIVERY_DUE in sqlite.c says why): rows
 * that cannot be claimed stay at the front of the queue, so `fast` walks the
 * queue in event order only up to `edge`, the key of the $6-th unfinished
 * row (the window: O(window), one seek each for the order rule), locking as
 * it goes and skipping locked rows as the claim always has. `exact` says
 * whether that is the answer (no edge: the window holds the whole queue; or
 * it found the limit); only when it is not does `heads` run (a gated plan:
 * PostgreSQL does not start a branch whose one-time filter is false): the
 * heads of the chains of the enabled, in-mask handlers, by a loose index
 * scan over deliveries_chain (per handler its first webhook with unfinished
 * rows, then the next, one seek each; each chain's first unfinished event,
 * every generation): O(runnable handlers + their chains), whatever the
 * backlog behind the heads. `due` then locks the candidates in claim order
 * up to the limit, skipping locked ones; ties (one event to several
 * handlers) go by seq, the insertion order. Every step is an index seek per
 * row or a CTE computed once (ARRAY, OFFSET 0, scalar subqueries keep the
 * planner from joining a CTE against a scan of every unfinished row, which
 * it did with a fresh table's statistics). */
#define PG_UNFINISHED "('pending', 'running', 'failed')" /* = the partial indexes */
/* delivery d due at $1; its handler h enabled, its kind's bit set in $2 */
#define PG_CLAIM_DUE_D                                                     \
	"((d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1)" \
	" OR (d.status = 'running' AND d.claimed_until < $1))"
/* the same test in a form no index serves (a CASE: neither the partial
 * indexes' predicate nor deliveries_due's status applies), so `due` reads
 * its candidates by id, whatever the statistics */
#define PG_CLAIM_DUE_CASE                                                          \
	"CASE WHEN d.status IN ('pending', 'failed') THEN d.next_attempt_at <= $1" \
	" WHEN d.status = 'running' THEN d.claimed_until < $1 ELSE false END"
#define PG_RUNNABLE_H                                                                  \
	"h.enabled AND (($2::bigint >> (CASE h.kind WHEN 'exec' THEN 0 WHEN 'forward'" \
	" THEN 1 WHEN 'func' THEN 2 ELSE 62 END)) & 1) = 1"
#define PG_BIG "9223372036854775807"
static const char CLAIM_SQL[] =
    "WITH RECURSIVE edge AS ("
    "  SELECT d.event_seq, d.generation FROM deliveries d WHERE d.status IN " PG_UNFINISHED
    "  ORDER BY d.event_seq, d.generation OFFSET $6 - 1 LIMIT 1"
    "), fast AS MATERIALIZED ("
    "  SELECT d.id FROM deliveries d JOIN handlers h ON h.id = d.handler_id"
    "  WHERE d.status IN " PG_UNFINISHED " AND (d.event_seq, d.generation)"
    "        <= ((SELECT coalesce(max(e.event_seq), " PG_BIG ") FROM edge e),"
    "            (SELECT coalesce(max(e.generation), " PG_BIG ") FROM edge e))"
    "    AND " PG_CLAIM_DUE_D " AND " PG_RUNNABLE_H "    AND NOT EXISTS (SELECT 1 FROM deliveries p"
    "         WHERE p.handler_id = d.handler_id AND p.webhook_id = d.webhook_id"
    "           AND p.event_seq < d.event_seq AND p.status IN " PG_UNFINISHED " OFFSET 0)"
    /* seq breaks ties (one event's rows to several handlers) as `due` does:
     * without it a limit between tied rows kept an arbitrary one of them */
    "  ORDER BY d.event_seq, d.generation, d.seq LIMIT $3"
    "  FOR UPDATE OF d SKIP LOCKED"
    "), exact AS ("
    "  SELECT NOT EXISTS (SELECT 1 FROM edge) OR (SELECT count(*) FROM fast) >= $3 AS yes"
    "), chain (h, w) AS ("
    "  SELECT h.id, (SELECT c.webhook_id FROM deliveries c"
    "    WHERE c.handler_id = h.id AND c.status IN " PG_UNFINISHED
    "    ORDER BY c.webhook_id LIMIT 1) FROM handlers h WHERE " PG_RUNNABLE_H "  UNION ALL"
    "  SELECT chain.h, (SELECT c.webhook_id FROM deliveries c"
    "    WHERE c.handler_id = chain.h AND c.webhook_id > chain.w"
    "      AND c.status IN " PG_UNFINISHED
    "    ORDER BY c.webhook_id LIMIT 1) FROM chain WHERE chain.w IS NOT NULL"
    "), heads AS ("
    "  SELECT d.id FROM chain CROSS JOIN LATERAL ("
    "    SELECT d.* FROM deliveries d"
    "    WHERE d.handler_id = chain.h AND d.webhook_id = chain.w"
    "      AND d.status IN " PG_UNFINISHED
    "      AND d.event_seq = (SELECT c.event_seq FROM deliveries c"
    "        WHERE c.handler_id = chain.h AND c.webhook_id = chain.w"
    "          AND c.status IN " PG_UNFINISHED " ORDER BY c.event_seq LIMIT 1)"
    "    OFFSET 0) d"
    "  WHERE chain.w IS NOT NULL AND " PG_CLAIM_DUE_D "), candidates AS ("
    "  SELECT * FROM fast WHERE (SELECT yes FROM exact)"
    "  UNION ALL"
    "  SELECT * FROM heads WHERE NOT (SELECT yes FROM exact)"
    "), due AS ("
    "  SELECT d.id FROM deliveries d WHERE d.id = ANY (ARRAY (SELECT id FROM candidates))"
    "    AND " PG_CLAIM_DUE_CASE "  ORDER BY d.event_seq, d.generation, d.seq LIMIT $3"
    "  FOR UPDATE OF d SKIP LOCKED"
    "), claimed AS ("
    "  UPDATE deliveries d SET status = 'running', claimed_until = $4,"
    "         attempts = d.attempts + 1, updated_at = $1, claimed_by = $5"
    "  FROM due WHERE d.id = due.id"
    "  RETURNING " DELIVERY_COLS ", d.event_seq, d.generation, d.seq"
    ") SELECT * FROM claimed ORDER BY event_seq, generation, seq";

/* The claim's planner settings, in its own transaction only (set_config's
 * is_local: undone by the commit, or the rollback, that ends the claim).
 * Left to PostgreSQL, the prepared claim was planned again on every run on a
 * large table (a generic plan's estimate, LIMIT $3 taken as a tenth of the
 * rows, never beat a custom plan's): more server time planning than running
 * it. On a small table it could switch to a generic plan instead, made with
 * that table's statistics and kept while the backlog grew: a bitmap scan of
 * every unfinished row per claim until an ANALYZE. So it is one generic plan
 * per connection, made on first use with whatever the statistics are then
 * (an empty table's, say) and made again when ANALYZE changes them, that
 * reads an index at every step whatever the estimates: CLAIM_SQL leaves each
 * step an index to read (`due` its ids by the primary key) and sequential
 * and bitmap scans are off; and no JIT (the cost that turning those off
 * adds to the estimates would start it: ~400 ms per claim). */
static const char CLAIM_PLAN_SQL[] =
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true),"
    " set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),"
    " set_config('jit', 'off', true)";

typedef struct claim_op {
	pparams *p;
	delivery **out;
	size_t *n;
	char sqlstate[6]; /* a failure's SQLSTATE (pg_retry) */
} claim_op;

/* The settings and the claim in one round trip (a pipeline), in one implicit
 * transaction that the sync commits; both prepared once per connection. */
static int op_claim(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	claim_op *o = ctx;
	pq_pipe pl = {0};
	int ret;
	if ((ret = pq_prepare(s, c, PQS_CLAIM_PLAN, CLAIM_PLAN_SQL, err)) != 0 ||
	    (ret = pq_prepare(s, c, PQS_CLAIM, CLAIM_SQL, err)) != 0 ||
	    (ret = pq_pipe_begin(s, &pl, c, err)) != 0 ||
	    (ret = pq_pipe_send_stmt(s, &pl, PQS_CLAIM_PLAN, CLAIM_PLAN_SQL, NULL,
	                             "setting the claim's plan", err)) != 0 ||
	    (ret = pq_pipe_send_stmt(s, &pl, PQS_CLAIM, CLAIM_SQL, o->p, "claiming deliveries",
	                             err)) != 0 ||
	    (ret = pq_pipe_sync(s, &pl, err)) != 0 ||
	    (ret = pq_pipe_done(s, &pl, "setting the claim's plan", err)) != 0)
		goto out;
	PGresult *r = pq_pipe_result(s, &pl, "claiming deliveries", err);
	if (!r) {
		ret = err ? err->code : TH_ESTORE;
		goto out;
	}
	ret = pg_read_rows(r, &store_rt_delivery, (void **)o->out, o->n, err);
	PQclear(r);
	if (ret == 0 && (ret = pq_pipe_synced(s, &pl, err)) != 0) {
		delivery_list_free(*o->out, *o->n); /* not committed: not claimed */
		*o->out = NULL;
		*o->n = 0;
	}
out:
	memcpy(o->sqlstate, pl.sqlstate, sizeof o->sqlstate);
	pq_pipe_end(&pl);
	return ret;
}

int pg_delivery_claim(store *st, unsigned kinds, size_t max, int64_t lease_ms, delivery **out,
                      size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	max = store_list_limit(max, STORE_LIST_LIMIT_MAX);
	int64_t now = time_now_ms();
	pparams p = {0};
	pp_i64(&p, now);
	pp_i64(&p, (int64_t)(kinds & 0x7fffffffu));
	pp_i64(&p, (int64_t)max);
	pp_i64(&p, now + lease_ms);
	pp_text(&p, st->instance);
	pp_i64(&p, store_claim_window(max));
	/* one statement, so a deadlock rolls it back whole: tried again like an
	 * ingest batch (pg_retry); it runs after every commit that made
	 * deliveries, so it is prepared and planned once per connection */
	claim_op o = {.p = &p, .out = out, .n = n};
	int ret = pg_retry(pgs_of(st), false, op_claim, &o, o.sqlstate, "claiming deliveries", err);
	pp_free(&p);
	return ret;
}

typedef struct pg_finish_many {
	const delivery_outcome *outs;
	size_t n;
	size_t changed;
	char sqlstate[6]; /* a failure's SQLSTATE (pg_retry) */
} pg_finish_many;

/* Every outcome of the batch inside the caller's transaction. */
static int op_finish_many(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	pg_finish_many *m = ctx;
	int64_t now = time_now_ms();
	m->changed = 0;
	for (size_t i = 0; i < m->n; i++) {
		const delivery_outcome *o = &m->outs[i];
		pparams p = {0};
		pp_text(&p, o->id);
		pp_text(&p, delivery_status_name(o->status));
		pp_i64(&p, o->next_attempt_at);
		pp_text_repair(&p, o->last_error);
		pp_i64(&p, now);
		pp_i64(&p, now / 3600000);
		pp_i64(&p, store_run_bucket(o->run_us));
		pp_i64(&p, o->attempts);
		/* and the hourly delivery rollup (migration 9) in the same round trip:
		 * a row counts when the update found the delivery */
		PGresult *r = pq_state(
		    s, c,
		    "WITH u AS (UPDATE deliveries SET status = $2, next_attempt_at = $3,"
		    " last_error = $4, updated_at = $5, claimed_until = 0,"
		    " attempts = CASE WHEN $8 > 0 THEN $8 ELSE attempts END WHERE id = $1"
		    " RETURNING handler_id)"
		    " INSERT INTO delivery_rollup_hour (hour, handler_id, status, bucket, n)"
		    " SELECT $6, handler_id, $2, $7, 1 FROM u"
		    " ON CONFLICT (hour, handler_id, status, bucket)"
		    " DO UPDATE SET n = delivery_rollup_hour.n + 1",
		    &p, "recording a delivery's outcome", m->sqlstate, err);
		pp_free(&p);
		if (!r)
			return err ? err->code : TH_ESTORE;
		m->changed += (size_t)pq_changes(r);
		PQclear(r);
	}
	return 0;
}

int pg_delivery_finish_many(store *st, const delivery_outcome *outs, size_t n, size_t *changed,
                            th_error *err)
{
	/* two instances' batches can update the same rollup cells in another
	 * order: a deadlock rolls the whole batch back, and it runs again */
	pg_finish_many m = {outs, n, 0, ""};
	int ret =
	    pg_retry(pgs_of(st), true, op_finish_many, &m, m.sqlstate, "recording outcomes", err);
	*changed = m.changed;
	return ret;
}

/* Pending and due now, attempts from 0; a running delivery is refused. */
static int op_delivery_retry(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	const char *id = ctx;
	pparams p = {0};
	PGresult *r = NULL;
	int ret = 0;
	pp_text(&p, id);
	/* the event is locked too (FOR SHARE): a prune batch locks its events FOR
	 * UPDATE before deleting finished deliveries, so either it waits for this
	 * retry and then sees the delivery pending (and keeps the event), or this
	 * retry waits for it and finds the delivery gone; never a retry reported
	 * done whose delivery the prune then deletes */
	if ((ret = pq_get(s, c,
	                  "SELECT d.status FROM deliveries d JOIN events e ON e.id = d.event_id"
	                  " WHERE d.id = $1 FOR UPDATE OF d FOR SHARE OF e",
	                  &p, "reading a delivery", &r, err)) != 0)
		goto out;
	if (PQntuples(r) == 0) {
		ret = store_not_found(err, "delivery", id);
		goto out;
	}
	if (str_eq(PQgetvalue(r, 0, 0), "running")) {
		ret = store_delivery_running(err, id);
		goto out;
	}
	pp_i64(&p, time_now_ms());
	ret = pq_do(s, c,
	            "UPDATE deliveries SET status = 'pending', attempts = 0,"
	            " next_attempt_at = $2, updated_at = $2, claimed_until = 0"
	            " WHERE id = $1",
	            &p, "retrying a delivery", err);
out:
	PQclear(r);
	pp_free(&p);
	return ret;
}

int pg_delivery_retry(store *st, const char *id, th_error *err)
{
	return with_txn(pgs_of(st), op_delivery_retry, (void *)id, err);
}

typedef struct stats_ctx {
	int64_t *counts;
	int64_t *oldest;
} stats_ctx;

static int op_delivery_stats(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	stats_ctx *x = ctx;
	for (int i = 0; i < 5; i++)
		x->counts[i] = 0;
	PGresult *r = pq(s, c,
	                 "SELECT status, count(*) FROM deliveries GROUP BY status"
	                 " UNION ALL SELECT '', coalesce(min(next_attempt_at), 0)"
	                 " FROM deliveries WHERE status = 'pending'",
	                 NULL, "counting deliveries", err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t v = 0;
		(void)num_parse_i64(PQgetvalue(r, i, 1), INT64_MIN, INT64_MAX, &v);
		const char *status = PQgetvalue(r, i, 0);
		enum delivery_status ds;
		if (!*status) {
			if (x->oldest)
				*x->oldest = v;
		} else if (delivery_status_parse(status, &ds) == 0 && (int)ds >= 0 && (int)ds < 5) {
			x->counts[ds] = v;
		}
	}
	PQclear(r);
	return 0;
}

/* Counts per status; @oldest_pending_at is the smallest next_attempt_at of a
 * pending delivery (0: none pending). */
int pg_delivery_stats(store *st, int64_t counts[5], int64_t *oldest_pending_at, th_error *err)
{
	if (oldest_pending_at)
		*oldest_pending_at = 0;
	stats_ctx x = {counts, oldest_pending_at};
	return with_conn(pgs_of(st), op_delivery_stats, &x, err);
}

/* The claimers of running deliveries that are dead processes of this host:
 * their deliveries become failed and due now, in one transaction. Another
 * instance recovering at the same time takes turns on the rows (FOR UPDATE
 * in the UPDATE), and a row already recovered no longer matches. */
static int op_recover(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	size_t *recovered = ctx;
	*recovered = 0;
	PGresult *r = pq(s, c,
	                 "SELECT DISTINCT claimed_by FROM deliveries"
	                 " WHERE status = 'running' AND claimed_by IS NOT NULL",
	                 NULL, "reading who runs deliveries", err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	int ret = 0;
	int64_t now = time_now_ms();
	for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
		const char *who = PQgetvalue(r, i, 0);
		if (!store_instance_dead(&s->base, who))
			continue;
		pparams p = {0};
		pp_text(&p, who);
		pp_i64(&p, now);
		pp_text(&p, STORE_RECOVERED_ERROR);
		PGresult *u = pq(s, c,
		                 "UPDATE deliveries SET status = 'failed', next_attempt_at = $2,"
		                 " updated_at = $2, claimed_until = 0, last_error = $3"
		                 " WHERE status = 'running' AND claimed_by = $1",
		                 &p, "recovering deliveries", err);
		pp_free(&p);
		if (!u) {
			ret = err ? err->code : TH_ESTORE;
		} else {
			*recovered += (size_t)pq_changes(u);
			PQclear(u);
		}
	}
	PQclear(r);
	return ret;
}

int pg_delivery_recover(store *st, size_t *recovered, th_error *err)
{
	return with_txn(pgs_of(st), op_recover, recovered, err);
}

/* The delivery rollup cells of [from_hour, to_hour), oldest first. */
int pg_delivery_rollup(store *st, int64_t from_hour, int64_t to_hour, delivery_rollup_row **out,
                       size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	pparams p = {0};
	pp_i64(&p, from_hour);
	pp_i64(&p, to_hour);
	int ret = pg_list_all(pgs_of(st), DELIVERY_ROLLUP_RANGE_SQL("$1", "$2"), &p,
	                      "reading the delivery rollup", &store_rt_delivery_rollup,
	                      (void **)out, n, err);
	pp_free(&p);
	return ret;
}

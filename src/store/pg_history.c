/* SPDX-License-Identifier: MIT */
/*
 * pg_history.c — the history operations of the PostgreSQL store (issue 17):
 * paged reads for `events export` and batched prunes for `events prune` and
 * TRELLOHOOK_RETENTION, each batch one short transaction. PostgreSQL reuses
 * the space of deleted rows after its autovacuum; compact does nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

/* See sqlite_history.c: the same rules in the same words. */
#define PRUNE_RANGE "e.seq > $1 AND e.seq <= $2 AND e.received_at < $3"
#define UNFINISHED                                                                                 \
	"EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status NOT IN ('done', " \
	"'dead'))"

static const char sql_walk[] = "SELECT seq, received_at FROM events WHERE seq > $1"
                               " ORDER BY seq LIMIT $2";
static const char sql_count[] = "SELECT count(*), count(*) FILTER (WHERE fin),"
                                " coalesce(sum(nd) FILTER (WHERE fin), 0)"
                                " FROM (SELECT NOT " UNFINISHED " AS fin,"
                                " (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id) AS nd"
                                " FROM events e WHERE " PRUNE_RANGE ") x";
/* the range's old events locked first: a replay (which locks its event FOR
 * UPDATE before adding deliveries) then waits for this batch, so no delivery
 * appears between the two deletes */
static const char sql_lock[] = "SELECT e.id FROM events e WHERE " PRUNE_RANGE " FOR UPDATE";
static const char sql_del_deliveries[] =
    "DELETE FROM deliveries WHERE event_id IN (SELECT e.id FROM events e WHERE " PRUNE_RANGE
    " AND NOT " UNFINISHED ")";
/* the webhooks' event counters (schema 9) lose what the next statement deletes */
static const char sql_uncount[] =
    "UPDATE webhook_event_count w SET n = greatest(0, w.n - k.n)"
    " FROM (SELECT e.webhook_id, count(*) AS n FROM events e WHERE " PRUNE_RANGE
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) GROUP BY 1) k"
    " WHERE w.webhook_id = k.webhook_id";
static const char sql_del_events[] =
    "DELETE FROM events e WHERE " PRUNE_RANGE
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)";

static int64_t cell_i64(const PGresult *r, int row, int col)
{
	int64_t v = 0;
	if (!PQgetisnull(r, row, col))
		(void)num_parse_i64(PQgetvalue(r, row, col), INT64_MIN, INT64_MAX, &v);
	return v;
}

typedef struct prune_ctx {
	int64_t cutoff;
	size_t limit;
	bool dry_run;
	prune_batch *b;
} prune_ctx;

/* A statement of the prune range; *@changes (may be NULL) its rows changed. */
static int run_range(pgs *s, PGconn *c, const char *sql, const int64_t v[3], int64_t *changes,
                     const char *what, th_error *err)
{
	pparams p = {0};
	pp_i64(&p, v[0]);
	pp_i64(&p, v[1]);
	pp_i64(&p, v[2]);
	PGresult *r = pq(s, c, sql, &p, what, err);
	pp_free(&p);
	if (!r)
		return err ? err->code : TH_ESTORE;
	if (changes)
		*changes = pq_changes(r);
	PQclear(r);
	return 0;
}

/* The batch's end: the last of the next @limit events received before the
 * cutoff, stopping at the first that was not. */
static int walk(pgs *s, PGconn *c, prune_ctx *x, int64_t *upto, th_error *err)
{
	pparams p = {0};
	pp_i64(&p, x->b->after_seq);
	pp_i64(&p, (int64_t)x->limit);
	PGresult *r = pq(s, c, sql_walk, &p, "walking events", err);
	pp_free(&p);
	if (!r)
		return err ? err->code : TH_ESTORE;
	int rows = PQntuples(r);
	*upto = x->b->after_seq;
	x->b->done = (size_t)rows < x->limit;
	for (int i = 0; i < rows; i++) {
		if (cell_i64(r, i, 1) >= x->cutoff) {
			x->b->done = true;
			break;
		}
		*upto = cell_i64(r, i, 0);
	}
	PQclear(r);
	return 0;
}

static int op_prune(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	prune_ctx *x = ctx;
	prune_batch *b = x->b;
	int64_t upto = 0;
	int ret = walk(s, c, x, &upto, err);
	if (ret || upto <= b->after_seq)
		return ret;
	int64_t v[3] = {b->after_seq, upto, x->cutoff};
	pparams p = {0};
	pp_i64(&p, v[0]);
	pp_i64(&p, v[1]);
	pp_i64(&p, v[2]);
	if (!x->dry_run && (ret = run_range(s, c, sql_lock, v, NULL, "locking events", err)) != 0) {
		pp_free(&p);
		return ret;
	}
	PGresult *r = pq(s, c, sql_count, &p, "counting events to prune", err);
	pp_free(&p);
	if (!r)
		return err ? err->code : TH_ESTORE;
	int64_t old = cell_i64(r, 0, 0);
	b->events = cell_i64(r, 0, 1);
	b->deliveries = cell_i64(r, 0, 2);
	b->kept = old - b->events;
	PQclear(r);
	if (!x->dry_run) {
		int64_t dd = 0, dev = 0;
		if ((ret =
		         run_range(s, c, sql_del_deliveries, v, &dd, "pruning deliveries", err)) ||
		    (ret = run_range(s, c, sql_uncount, v, NULL, "counting pruned events", err)) ||
		    (ret = run_range(s, c, sql_del_events, v, &dev, "pruning events", err)))
			return ret;
		b->events = dev;
		b->deliveries = dd;
	}
	b->after_seq = upto;
	return 0;
}

int pg_events_prune(store *st, int64_t cutoff_ms, size_t limit, bool dry_run, prune_batch *b,
                    th_error *err)
{
	if (limit < 1 || limit > 100000)
		return th_err(err, TH_EINVAL, "prune batch: 1 to 100000 events");
	int64_t start = b->after_seq;
	b->events = b->deliveries = b->kept = 0;
	prune_ctx x = {cutoff_ms, limit, dry_run, b};
	int ret = with_txn(pgs_of(st), op_prune, &x, err);
	if (ret) {
		b->after_seq = start;
		b->events = b->deliveries = b->kept = 0;
	}
	return ret;
}

int pg_compact(store *st, int64_t max_pages, int64_t *freed_pages, th_error *err)
{
	(void)st;
	(void)max_pages;
	(void)err;
	*freed_pages = 0; /* PostgreSQL's autovacuum makes deleted rows' space reusable */
	return 0;
}

int pg_payloads_repack(store *st, size_t limit, repack_batch *b, th_error *err)
{
	(void)st;
	(void)limit;
	(void)err;
	/* every row is raw here and TOAST already compresses it (store/pg.c) */
	b->raw = b->packed = b->bytes_before = b->bytes_after = 0;
	b->after_seq = b->upto_seq;
	b->done = true;
	return 0;
}

int pg_payloads_raw_sample(store *st, bool *found, th_error *err)
{
	(void)st;
	(void)err;
	*found = false; /* stored raw by design: TOAST compresses it */
	return 0;
}

int pg_vacuum(store *st, int64_t *bytes_before, int64_t *bytes_after, th_error *err)
{
	(void)st;
	(void)err;
	*bytes_before = *bytes_after = 0; /* autovacuum's business */
	return 0;
}

int pg_vacuum_mode(store *st, bool convert, int *mode, th_error *err)
{
	(void)st;
	(void)convert;
	(void)err;
	*mode = -1; /* not SQLite: nothing to convert */
	return 0;
}

typedef struct bounds_ctx {
	int64_t *min_seq, *max_seq;
} bounds_ctx;

static int op_bounds(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	bounds_ctx *x = ctx;
	PGresult *r = pq(s, c, "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events",
	                 NULL, "reading the range of events", err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	*x->min_seq = cell_i64(r, 0, 0);
	*x->max_seq = cell_i64(r, 0, 1);
	PQclear(r);
	return 0;
}

int pg_event_seq_bounds(store *st, int64_t *min_seq, int64_t *max_seq, th_error *err)
{
	*min_seq = *max_seq = 0;
	bounds_ctx x = {min_seq, max_seq};
	return with_conn(pgs_of(st), op_bounds, &x, err);
}

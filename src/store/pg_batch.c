/* SPDX-License-Identifier: MIT */
/*
 * pg_batch.c — storing a batch of events (with their deliveries) in the
 * PostgreSQL store: pg_events_put, in one round trip or two.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"
#include "util/log.h"

#define EVENTS_PER_INSERT 1000 /* 18 parameters each, +4: well under 65535 */

/* ---- storing a batch: one statement per 1,000 events, pipelined -------------------------- */

/*
 * A batch is one round trip to the server, or two, whatever its size
 * (libpq's pipeline mode, pg.c). In two:
 *   1. BEGIN; SELECT the enabled handlers (with their fingerprint); lock
 *      the batch's webhooks that take events (FOR KEY SHARE)      -> sync
 *   2. per chunk of events, one statement (below); COMMIT          -> sync
 * The handlers a batch read in two rounds are kept (the store's snapshot,
 * below), and the next batches match their deliveries against them in one:
 *      BEGIN; the guard; per chunk, its statement; COMMIT           -> sync
 * The guard, in the batch's transaction and before its inserts, locks the
 * batch's webhooks as round 1 does and checks that all of them take events
 * and that the server's enabled handlers still have the snapshot's
 * fingerprint; otherwise it fails (division by zero, 22012), so PostgreSQL
 * skips the rest of the pipeline and the transaction stores nothing, and
 * the batch runs again in two rounds, which also renews the snapshot. Either
 * way the deliveries are those of the handlers as a statement of the
 * batch's own transaction saw them before its inserts, as they were when
 * every batch read them in round 1. One round trip instead of two: +6-20%
 * events/s and -12-17% of the server's CPU per event (bench/RESULTS.md).
 * The chunk's events part is built while round 1 is in flight. Its
 * statement inserts the events with ON CONFLICT DO NOTHING RETURNING and,
 * in data-modifying CTEs fed by what that RETURNING gave (so only for the
 * events that are new, with their seq), their deliveries, the webhooks'
 * last event times, the hourly rollup and the webhooks' event counters
 * (migration 9). The deliveries are matched here
 * (handler_matches, C) for every storable event of the chunk and sent as
 * three arrays; the join with the inserted rows drops those of duplicates.
 * Foreign keys (deliveries -> events) are checked at the end of the
 * statement, when the CTE's rows are there.
 */

#define INSERT_COLS                                                                             \
	"id, webhook_id, action_id, action_type, action_date, model_id, board_id, board_name,"  \
	" list_id, list_name, card_id, card_name, member, summary, source, member_id, payload," \
	" received_at"

/* The statement's tail after the VALUES; %d: the first of its 4 parameters
 * (now, delivery ids[], event ids[], handler ids[]), repeated. */
#define CHUNK_TAIL                                                                             \
	" ON CONFLICT (webhook_id, action_id) DO NOTHING"                                      \
	" RETURNING id, seq, webhook_id, action_type, received_at),"                           \
	" d AS (INSERT INTO deliveries (id, event_id, handler_id, generation, status,"         \
	" attempts, next_attempt_at, updated_at, webhook_id, event_seq)"                       \
	" SELECT v.id, v.event_id, v.handler_id, 0, 'pending', 0, $%d::bigint, $%d::bigint,"   \
	" ins.webhook_id, ins.seq"                                                             \
	" FROM unnest($%d::text[], $%d::text[], $%d::text[]) AS v(id, event_id, handler_id)"   \
	" JOIN ins ON ins.id = v.event_id),"                                                   \
	" w AS (UPDATE webhooks SET last_event_at = l.latest"                                  \
	" FROM (SELECT webhook_id, max(received_at) AS latest FROM ins GROUP BY webhook_id) l" \
	" WHERE webhooks.id = l.webhook_id AND webhooks.last_event_at < l.latest),"            \
	" r AS (INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)"              \
	" SELECT received_at / 3600000, webhook_id, coalesce(action_type, ''), count(*)"       \
	" FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"                                          \
	" ON CONFLICT (hour, webhook_id, action_type)"                                         \
	" DO UPDATE SET n = event_rollup_hour.n + excluded.n),"                                \
	" c AS (INSERT INTO webhook_event_count (webhook_id, n)"                               \
	" SELECT webhook_id, count(*) FROM ins GROUP BY 1 ORDER BY 1"                          \
	" ON CONFLICT (webhook_id) DO UPDATE SET n = webhook_event_count.n + excluded.n)"      \
	" SELECT id, seq FROM ins"

typedef struct put_ctx {
	event **evs;
	size_t n;
	enum store_put *results;
	int64_t now;
	int64_t *seqs;    /* per event: its seq when new */
	char sqlstate[6]; /* why the last try failed, when PostgreSQL said ("" else) */
} put_ctx;

/* One chunk of the batch: events [from, to) and the statement storing them. */
typedef struct chunk {
	size_t from, to;
	int rows;               /* storable events in it */
	pparams p;              /* the events' 18 parameters each, then the tail's 4 */
	buf sql;                /* the statement */
	buf dids, deids, dhids; /* array literals: delivery, event and handler ids */
	const char **ids;       /* per event of the chunk: its id as sent (NULL: skipped) */
} chunk;

static void chunk_free(chunk *k)
{
	pp_free(&k->p);
	buf_free(&k->sql);
	buf_free(&k->dids);
	buf_free(&k->deids);
	buf_free(&k->dhids);
	free(k->ids);
}

/* May the chunk statement store evs[@i]? (Storable, and its webhook takes events.) */
static bool insertable(const put_ctx *x, size_t i)
{
	return store_event_storable(x->evs[i]) && x->results[i] != STORE_PUT_GONE;
}

/* The number of events of evs[@from, @to) the chunk statement may store. */
static int chunk_rows(const put_ctx *x, size_t from, size_t to)
{
	int rows = 0;
	for (size_t i = from; i < to; i++)
		rows += insertable(x, i);
	return rows;
}

/* The chunk statement for @rows events, into @sql: the same text for the
 * same number of rows, so it is prepared once per connection (pq_prepare). */
static int chunk_sql(buf *sql, int rows)
{
	buf_reset(sql);
	(void)buf_puts(sql, "WITH ins AS (INSERT INTO events (" INSERT_COLS ") VALUES ");
	for (int r = 0; r < rows; r++) {
		(void)buf_puts(sql, r ? ",(" : "(");
		for (int c = 0; c < 18; c++)
			(void)buf_printf(sql, c ? ",$%d" : "$%d", r * 18 + c + 1);
		(void)buf_putc(sql, ')');
	}
	int t = rows * 18 + 1;
	(void)buf_printf(sql, CHUNK_TAIL, t, t, t + 1, t + 2, t + 3);
	return buf_status(sql) ? TH_ENOMEM : 0;
}

/* The prepared statement (PQS_*) of a chunk of @rows events, or PQS_NONE. */
static int chunk_stmt(int rows)
{
	return rows >= 1 && rows <= PQS_EVENTS_MAX ? PQS_EVENTS_1 + rows - 1 : PQS_NONE;
}

/* The chunk's parameters for its insertable events (before the handlers are known). */
static int chunk_events(chunk *k, put_ctx *x)
{
	buf_init(&k->sql, BUF_MAX_DEFAULT);
	buf_init(&k->dids, BUF_MAX_DEFAULT);
	buf_init(&k->deids, BUF_MAX_DEFAULT);
	buf_init(&k->dhids, BUF_MAX_DEFAULT);
	if (!(k->ids = calloc(k->to - k->from, sizeof *k->ids)))
		return TH_ENOMEM;
	for (size_t i = k->from; i < k->to; i++) {
		event *ev = x->evs[i];
		if (!insertable(x, i))
			continue;
		int first = k->p.n;
		pp_text_repair(&k->p, ev->id);
		pp_text_repair(&k->p, ev->webhook_id);
		pp_text_repair(&k->p, ev->action_id);
		pp_text_repair(&k->p, ev->action_type);
		pp_text_repair(&k->p, ev->action_date);
		pp_text_repair(&k->p, ev->model_id);
		pp_text_repair(&k->p, ev->board_id);
		pp_text_repair(&k->p, ev->board_name);
		pp_text_repair(&k->p, ev->list_id);
		pp_text_repair(&k->p, ev->list_name);
		pp_text_repair(&k->p, ev->card_id);
		pp_text_repair(&k->p, ev->card_name);
		pp_text_repair(&k->p, ev->member);
		pp_text_repair(&k->p, ev->summary);
		pp_text(&k->p, event_source_name(ev->source));
		pp_text_repair(&k->p, ev->member_id);
		pp_bytes(&k->p, ev->payload, ev->payload_len); /* the body exactly as received */
		pp_i64(&k->p, ev->received_at);
		if (!k->p.oom)
			k->ids[i - k->from] = k->p.v[first]; /* the id as stored (repaired) */
		k->rows++;
	}
	return k->p.oom ? TH_ENOMEM : 0;
}

/* @s as one element of a PostgreSQL array literal: quoted, \ and " escaped. */
static void array_add(buf *b, const char *s)
{
	(void)buf_puts(b, b->len ? ",\"" : "{\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			(void)buf_putc(b, '\\');
		(void)buf_putc(b, *s);
	}
	(void)buf_putc(b, '"');
}

typedef struct match_ctx {
	chunk *k;
	const char *event_id;
} match_ctx;

/* One delivery of the chunk (store_each_match callback). */
static int add_delivery(void *ctx, const handler *h, const char *id, th_error *err)
{
	(void)err;
	match_ctx *m = ctx;
	array_add(&m->k->dids, id);
	array_add(&m->k->deids, m->event_id);
	array_add(&m->k->dhids, h->id);
	return 0;
}

/* The chunk's deliveries (for each storable event and each handler of @hs
 * it matches) and the statement's tail; 0 or the error code. */
static int chunk_finish(chunk *k, put_ctx *x, const handler *hs, size_t nh, th_error *err)
{
	for (size_t i = k->from; i < k->to; i++) {
		if (!k->ids[i - k->from])
			continue;
		match_ctx m = {k, k->ids[i - k->from]};
		int ret = store_each_match(x->evs[i], hs, nh, add_delivery, &m, err);
		if (ret != 0)
			return ret;
	}
	buf *arrays[3] = {&k->dids, &k->deids, &k->dhids};
	for (int a = 0; a < 3; a++) {
		(void)buf_puts(arrays[a], arrays[a]->len ? "}" : "{}");
		if (buf_status(arrays[a]))
			return th_err(err, TH_ENOMEM, "out of memory");
	}
	pp_i64(&k->p, x->now);
	pp_text(&k->p, k->dids.data);
	pp_text(&k->p, k->deids.data);
	pp_text(&k->p, k->dhids.data);
	if (k->p.oom || chunk_sql(&k->sql, k->rows) != 0)
		return th_err(err, TH_ENOMEM, "out of memory");
	return 0;
}

/* The chunk statement's answer: NEW (with seqs) for the rows that came back,
 * DUPLICATE for the other storable events of the chunk. */
static void chunk_results(chunk *k, put_ctx *x, PGresult *r)
{
	size_t from = k->from, to = k->to;
	for (size_t i = from; i < to; i++)
		if (k->ids[i - from])
			x->results[i] = STORE_PUT_DUPLICATE;
	/* rows come back in VALUES order in practice; search on when they do not */
	size_t cur = from;
	for (int row = 0; row < PQntuples(r); row++) {
		const char *id = PQgetvalue(r, row, 0);
		size_t j = cur, tries = 0;
		while (tries < to - from && !(k->ids[j - from] && str_eq(k->ids[j - from], id))) {
			j = j + 1 < to ? j + 1 : from;
			tries++;
		}
		if (tries == to - from)
			continue; /* cannot happen: the ids are the ones sent */
		x->results[j] = STORE_PUT_NEW;
		(void)num_parse_i64(PQgetvalue(r, row, 1), 0, INT64_MAX, &x->seqs[j]);
		cur = j + 1 < to ? j + 1 : from;
	}
}

/* ---- the enabled handlers as the last batch read them -------------------------------------- */

/* The server's fingerprint of the enabled handlers h: the md5 of their rows
 * as text, in matching order ("" when there are none). Both statements below
 * compute it with this one expression, so the same rows give the same text. */
#define HANDLERS_FP "coalesce(md5(string_agg(h::text, ',' ORDER BY h.created_at, h.id)), '')"
/* Round 1's handlers, each row with the fingerprint of them all as its last
 * column: one statement, so both come from one snapshot. */
#define BATCH_HANDLERS_SQL                                                                  \
	"WITH h AS (" PG_ENABLED_HANDLERS ") SELECT " HANDLER_COLS ", (SELECT " HANDLERS_FP \
	" FROM h) FROM h ORDER BY created_at, id"
/* The one-round batch's guard (see above): 1 when all $2 webhooks of the
 * array $1 (distinct ids) take events, locked as round 1 locks them, and the
 * enabled handlers' fingerprint is $3; else it fails with 22012. */
#define BATCH_GUARD_SQL                                                                        \
	"SELECT 1 / ((SELECT count(*) FROM (SELECT id FROM webhooks WHERE state <> 'removing'" \
	" AND id = ANY ($1::text[]) ORDER BY id FOR KEY SHARE) w) = $2::bigint"                \
	" AND (SELECT " HANDLERS_FP " FROM (" PG_ENABLED_HANDLERS ") h) = $3::text)::int"
#define GUARD_REFUSED "22012" /* division_by_zero: the guard's answer "no" */

/* The store's snapshot (pgs.snap): replaced, never changed, when a batch
 * reads the handlers again; each batch using it holds a reference. */
struct pg_handlers_snap {
	int refs; /* the store's and the batches' (under pgs.mu) */
	handler *hs;
	size_t n;
	char fp[33]; /* HANDLERS_FP as the server computed it */
};

static void snap_put(pgs *s, struct pg_handlers_snap *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&s->mu);
	bool last = --h->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last) {
		handler_list_free(h->hs, h->n);
		free(h);
	}
}

/* The store's snapshot with a reference for the caller, or NULL. */
static struct pg_handlers_snap *snap_take(pgs *s)
{
	pthread_mutex_lock(&s->mu);
	struct pg_handlers_snap *h = s->snap;
	if (h)
		h->refs++;
	pthread_mutex_unlock(&s->mu);
	return h;
}

/* Make @hs (@n handlers, owned from here on) with fingerprint @fp the store's
 * snapshot; returns it with a reference for the caller, or NULL when out of
 * memory (@hs freed). */
static struct pg_handlers_snap *snap_publish(pgs *s, handler *hs, size_t n, const char *fp)
{
	struct pg_handlers_snap *h = calloc(1, sizeof *h);
	if (!h) {
		handler_list_free(hs, n);
		return NULL;
	}
	*h = (struct pg_handlers_snap){.refs = 2, .hs = hs, .n = n};
	str_copy(h->fp, sizeof h->fp, fp);
	pthread_mutex_lock(&s->mu);
	struct pg_handlers_snap *old = s->snap;
	s->snap = h;
	pthread_mutex_unlock(&s->mu);
	snap_put(s, old);
	return h;
}

void pg_batch_forget_handlers(pgs *s)
{
	struct pg_handlers_snap *h = s->snap;
	s->snap = NULL;
	snap_put(s, h);
}

/* Round 1's first answers: BEGIN's, then the handlers (into *@hs, *@nh)
 * and their fingerprint (into @fp). */
static int read_handlers(pgs *s, pq_pipe *pl, handler **hs, size_t *nh, char fp[33], th_error *err)
{
	int ret = pq_pipe_done(s, pl, "starting a transaction", err);
	if (ret != 0)
		return ret;
	PGresult *r = pq_pipe_result(s, pl, "loading handlers", err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	ret = pg_read_rows(r, &store_rt_handler, (void **)hs, nh, err);
	str_copy(fp, 33, PQntuples(r) > 0 ? PQgetvalue(r, 0, PQnfields(r) - 1) : "");
	PQclear(r);
	return ret;
}

/* The distinct webhook ids of the batch's storable events, into @ids
 * (x->n slots); returns how many. */
static size_t batch_webhooks(const put_ctx *x, const char **ids)
{
	size_t k = 0;
	for (size_t i = 0; i < x->n; i++) {
		if (!store_event_storable(x->evs[i]))
			continue;
		bool seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = str_eq(ids[j], x->evs[i]->webhook_id);
		if (!seen)
			ids[k++] = x->evs[i]->webhook_id;
	}
	return k;
}

/* The check of @n webhooks ($1..$n), into @sql (see send_webhook_checks). */
static int webhook_check_sql(buf *sql, size_t n)
{
	buf_reset(sql);
	(void)buf_puts(sql, "SELECT id FROM webhooks WHERE state <> 'removing' AND id IN (");
	for (size_t j = 0; j < n; j++)
		(void)buf_printf(sql, j ? ",$%zu" : "$%zu", j + 1);
	(void)buf_puts(sql, ") ORDER BY id FOR KEY SHARE");
	return buf_status(sql) ? TH_ENOMEM : 0;
}

/* The prepared statement (PQS_*) checking @n webhooks, or PQS_NONE. */
static int webhook_check_stmt(size_t n)
{
	return n >= 1 && n <= PQS_WEBHOOKS_MAX ? PQS_WEBHOOK_CHECK_1 + (int)n - 1 : PQS_NONE;
}

/* Round 1 also checks the batch's @k webhooks @ids: one SELECT ... FOR KEY
 * SHARE per EVENTS_PER_INSERT of them (bounded parameters), returning those
 * that take events (a row, not being removed). The lock makes a concurrent
 * DELETE of such a webhook wait for this batch's commit, so no event is
 * stored under a webhook that is gone by then; marking one removing (an
 * UPDATE of other columns) does not wait, and the next batch sees it. */
static int send_webhook_checks(pgs *s, pq_pipe *pl, const char **ids, size_t k, th_error *err)
{
	for (size_t from = 0; from < k; from += EVENTS_PER_INSERT) {
		size_t to = from + EVENTS_PER_INSERT < k ? from + EVENTS_PER_INSERT : k;
		pparams p = {0};
		buf sql;
		buf_init(&sql, BUF_MAX_DEFAULT);
		for (size_t j = from; j < to; j++)
			pp_text_repair(&p, ids[j]);
		int ret = p.oom || webhook_check_sql(&sql, to - from) != 0
		              ? th_err(err, TH_ENOMEM, "out of memory")
		              : pq_pipe_send_stmt(s, pl, webhook_check_stmt(to - from), sql.data,
		                                  &p, "checking the events' webhooks", err);
		pp_free(&p); /* libpq has copied the statement and its parameters */
		buf_free(&sql);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* Before the batch's pipeline: prepare (once per connection) the statements
 * it sends before its chunks (round 1's for two rounds, else the guard) and
 * those of the chunks for their sizes as they are now (a chunk that loses
 * events to a removed webhook runs as text, or as another size's statement). */
static int prepare_batch(pgs *s, PGconn *c, const put_ctx *x, size_t nw, bool one_round,
                         th_error *err)
{
	buf sql;
	buf_init(&sql, BUF_MAX_DEFAULT);
	int ret = one_round ? pq_prepare(s, c, PQS_BATCH_GUARD, BATCH_GUARD_SQL, err)
	                    : pq_prepare(s, c, PQS_HANDLERS, BATCH_HANDLERS_SQL, err);
	size_t n = nw < EVENTS_PER_INSERT ? nw : EVENTS_PER_INSERT;
	int id = webhook_check_stmt(n);
	if (ret == 0 && !one_round && id != PQS_NONE && !pq_is_prepared(s, c, id))
		ret = webhook_check_sql(&sql, n) != 0 ? th_err(err, TH_ENOMEM, "out of memory")
		                                      : pq_prepare(s, c, id, sql.data, err);
	for (size_t from = 0; from < x->n && ret == 0; from += EVENTS_PER_INSERT) {
		size_t to = from + EVENTS_PER_INSERT < x->n ? from + EVENTS_PER_INSERT : x->n;
		int rows = chunk_rows(x, from, to);
		id = chunk_stmt(rows);
		if (id != PQS_NONE && !pq_is_prepared(s, c, id))
			ret = chunk_sql(&sql, rows) != 0 ? th_err(err, TH_ENOMEM, "out of memory")
			                                 : pq_prepare(s, c, id, sql.data, err);
	}
	buf_free(&sql);
	return ret;
}

/* The checks' answers (@k webhooks asked about): every storable event whose
 * webhook did not come back becomes STORE_PUT_GONE (*@gone: any did). */
static int read_webhook_checks(pgs *s, pq_pipe *pl, put_ctx *x, size_t k, bool *gone, th_error *err)
{
	unsigned char *ok = calloc(x->n ? x->n : 1, 1);
	if (!ok)
		return th_err(err, TH_ENOMEM, "out of memory");
	int ret = 0;
	for (size_t from = 0; from < k && ret == 0; from += EVENTS_PER_INSERT) {
		PGresult *r = pq_pipe_result(s, pl, "checking the events' webhooks", err);
		if (!r) {
			ret = err ? err->code : TH_ESTORE;
			break;
		}
		for (int row = 0; row < PQntuples(r); row++)
			for (size_t i = 0; i < x->n; i++)
				if (store_event_storable(x->evs[i]) &&
				    str_eq(x->evs[i]->webhook_id, PQgetvalue(r, row, 0)))
					ok[i] = 1;
		PQclear(r);
	}
	*gone = false;
	for (size_t i = 0; i < x->n && ret == 0; i++)
		if (store_event_storable(x->evs[i]) && !ok[i]) {
			x->results[i] = STORE_PUT_GONE; /* removed or being removed: not stored */
			*gone = true;
		}
	free(ok);
	return ret;
}

/* Build chunk @k again, without the events refused since it was built. */
static int chunk_rebuild(chunk *k, put_ctx *x)
{
	size_t from = k->from, to = k->to;
	chunk_free(k);
	memset(k, 0, sizeof *k);
	k->from = from;
	k->to = to;
	return chunk_events(k, x);
}

/* The batch's chunks (@nk of them, for x->n events), their events' part built. */
static chunk *chunks_new(put_ctx *x, size_t *nk)
{
	*nk = (x->n + EVENTS_PER_INSERT - 1) / EVENTS_PER_INSERT;
	chunk *ks = calloc(*nk ? *nk : 1, sizeof *ks);
	for (size_t i = 0; ks && i < *nk; i++) {
		ks[i].from = i * EVENTS_PER_INSERT;
		ks[i].to =
		    ks[i].from + EVENTS_PER_INSERT < x->n ? ks[i].from + EVENTS_PER_INSERT : x->n;
		if (chunk_events(&ks[i], x) != 0) {
			for (size_t j = 0; j <= i; j++)
				chunk_free(&ks[j]);
			free(ks);
			ks = NULL;
		}
	}
	return ks;
}

static void chunks_free(chunk *ks, size_t nk)
{
	for (size_t i = 0; ks && i < nk; i++)
		chunk_free(&ks[i]);
	free(ks);
}

/* The last round: send every chunk's statement, COMMIT and the sync. */
static int send_chunks(pgs *s, pq_pipe *pl, chunk *ks, size_t nk, th_error *err)
{
	int ret = 0;
	for (size_t i = 0; i < nk && ret == 0; i++)
		if (ks[i].rows)
			ret = pq_pipe_send_stmt(s, pl, chunk_stmt(ks[i].rows), ks[i].sql.data,
			                        &ks[i].p, "storing events", err);
	if (ret == 0)
		ret = pq_pipe_send(s, pl, "COMMIT", NULL, "committing events", err);
	if (ret == 0)
		ret = pq_pipe_sync(s, pl, err);
	return ret;
}

/* ... and read their answers, COMMIT's and the sync. */
static int read_chunks(pgs *s, pq_pipe *pl, chunk *ks, size_t nk, put_ctx *x, th_error *err)
{
	for (size_t i = 0; i < nk; i++) {
		if (!ks[i].rows)
			continue;
		PGresult *r = pq_pipe_result(s, pl, "storing events", err);
		if (!r)
			return err ? err->code : TH_ESTORE;
		chunk_results(&ks[i], x, r);
		PQclear(r);
	}
	int ret = pq_pipe_done(s, pl, "committing events", err);
	return ret == 0 ? pq_pipe_synced(s, pl, err) : ret;
}

/* Did a committed batch make deliveries? Those of a chunk with deliveries
 * sent and a new event (an upper bound: they may be a duplicate's). */
static bool chunks_made_deliveries(const chunk *ks, size_t nk, const put_ctx *x)
{
	for (size_t i = 0; i < nk; i++) {
		if (!ks[i].rows || ks[i].dids.len <= 2) /* "{}" */
			continue;
		for (size_t j = ks[i].from; j < ks[i].to; j++)
			if (x->results[j] == STORE_PUT_NEW)
				return true;
	}
	return false;
}

/* The end of a batch's transaction, @ret its outcome so far: committed (0),
 * tell the dispatcher when it made deliveries; failed, keep its SQLSTATE (for
 * the retry), read the pipeline to its end, roll back and mark every event
 * failed. Returns @ret. */
static int batch_end(pgs *s, PGconn *c, pq_pipe *pl, const chunk *ks, size_t nk, put_ctx *x,
                     int ret)
{
	if (ret == 0) {
		pq_pipe_end(pl);
		if (chunks_made_deliveries(ks, nk, x))
			atomic_store_explicit(&s->base.fresh_deliveries, true,
			                      memory_order_release);
		return 0;
	}
	str_copy(x->sqlstate, sizeof x->sqlstate, pl->sqlstate);
	pq_pipe_end(pl);
	pq_rollback(c);
	for (size_t i = 0; i < x->n; i++)
		x->results[i] = STORE_PUT_FAILED;
	return ret;
}

/* The batch in two round trips (see above), which renews the store's
 * snapshot of the handlers. @ids: its @nw webhooks. */
static int put_two_rounds(pgs *s, PGconn *c, put_ctx *x, const char **ids, size_t nw, th_error *err)
{
	handler *hs = NULL;
	size_t nh = 0, nk = 0;
	struct pg_handlers_snap *h = NULL;
	char fp[33] = "";
	chunk *ks = NULL;
	pq_pipe pl = {0};
	int ret = 0;
	for (size_t i = 0; i < x->n; i++)
		x->results[i] = STORE_PUT_FAILED;
	if ((ret = prepare_batch(s, c, x, nw, false, err)) != 0 ||
	    (ret = pq_pipe_begin(s, &pl, c, err)) != 0 ||
	    (ret = pq_pipe_send(s, &pl, "BEGIN", NULL, "starting a transaction", err)) != 0 ||
	    (ret = pq_pipe_send_stmt(s, &pl, PQS_HANDLERS, BATCH_HANDLERS_SQL, NULL,
	                             "loading handlers", err)) != 0 ||
	    (ret = send_webhook_checks(s, &pl, ids, nw, err)) != 0 ||
	    (ret = pq_pipe_sync(s, &pl, err)) != 0)
		goto end;
	if (!(ks = chunks_new(x, &nk))) { /* while the server answers round 1 */
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto end;
	}
	bool gone = false;
	if ((ret = read_handlers(s, &pl, &hs, &nh, fp, err)) != 0 ||
	    (ret = read_webhook_checks(s, &pl, x, nw, &gone, err)) != 0 ||
	    (ret = pq_pipe_synced(s, &pl, err)) != 0)
		goto end;
	h = snap_publish(s, hs, nh, fp); /* owns hs from here on */
	hs = NULL;
	if (!h) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto end;
	}
	/* rare: an event of a removed webhook; its chunk is built again without it */
	for (size_t i = 0; i < nk && gone; i++)
		if (chunk_rebuild(&ks[i], x) != 0) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			goto end;
		}
	for (size_t i = 0; i < nk; i++)
		if (ks[i].rows && (ret = chunk_finish(&ks[i], x, h->hs, h->n, err)) != 0)
			goto end;
	if ((ret = send_chunks(s, &pl, ks, nk, err)) == 0)
		ret = read_chunks(s, &pl, ks, nk, x, err);
end:
	ret = batch_end(s, c, &pl, ks, nk, x, ret);
	chunks_free(ks, nk);
	handler_list_free(hs, nh);
	snap_put(s, h);
	return ret;
}

/* The guard's parameters: the @nw webhook ids @ids as a text[] literal,
 * their number and the fingerprint of @h's handlers. */
static int guard_params(pparams *p, buf *arr, const char **ids, size_t nw,
                        const struct pg_handlers_snap *h)
{
	for (size_t j = 0; j < nw; j++)
		array_add(arr, ids[j]);
	(void)buf_puts(arr, nw ? "}" : "{}");
	pp_text(p, arr->data);
	pp_i64(p, (int64_t)nw);
	pp_text(p, h->fp);
	return p->oom || buf_status(arr) ? TH_ENOMEM : 0;
}

/* The batch in one round trip (see above), its deliveries those of the
 * handlers of @h. *@stale when the guard refused: nothing is stored, and the
 * caller runs the batch in two rounds. */
static int put_one_round(pgs *s, PGconn *c, put_ctx *x, const struct pg_handlers_snap *h,
                         const char **ids, size_t nw, bool *stale, th_error *err)
{
	size_t nk = 0;
	chunk *ks = NULL;
	pq_pipe pl = {0};
	pparams gp = {0};
	buf arr;
	buf_init(&arr, BUF_MAX_DEFAULT);
	int ret = 0;
	*stale = false;
	for (size_t i = 0; i < x->n; i++)
		x->results[i] = STORE_PUT_FAILED;
	if (guard_params(&gp, &arr, ids, nw, h) != 0 || !(ks = chunks_new(x, &nk))) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto end;
	}
	for (size_t i = 0; i < nk; i++)
		if (ks[i].rows && (ret = chunk_finish(&ks[i], x, h->hs, h->n, err)) != 0)
			goto end;
	if ((ret = prepare_batch(s, c, x, nw, true, err)) != 0 ||
	    (ret = pq_pipe_begin(s, &pl, c, err)) != 0 ||
	    (ret = pq_pipe_send(s, &pl, "BEGIN", NULL, "starting a transaction", err)) != 0 ||
	    (ret = pq_pipe_send_stmt(s, &pl, PQS_BATCH_GUARD, BATCH_GUARD_SQL, &gp,
	                             "checking the batch's webhooks and handlers", err)) != 0 ||
	    (ret = send_chunks(s, &pl, ks, nk, err)) != 0 ||
	    (ret = pq_pipe_done(s, &pl, "starting a transaction", err)) != 0)
		goto end;
	if ((ret = pq_pipe_done(s, &pl, "checking the batch's webhooks and handlers", err)) != 0) {
		*stale = str_eq(pl.sqlstate, GUARD_REFUSED);
		goto end;
	}
	ret = read_chunks(s, &pl, ks, nk, x, err);
end:
	ret = batch_end(s, c, &pl, ks, nk, x, ret);
	chunks_free(ks, nk);
	pp_free(&gp);
	buf_free(&arr);
	return ret;
}

/* May @id go into the guard's text[] literal as it is? (Printable ASCII: a
 * webhook id always is; anything else takes the two-round path, which
 * sends each id as a parameter of its own, repaired. Not id_is_wellformed:
 * the store takes any id its callers give, and the literal needs only this.) */
static bool plain_id(const char *id)
{
	for (; *id; id++)
		if ((unsigned char)*id <= 0x20 || (unsigned char)*id >= 0x7f)
			return false;
	return true;
}

/* The whole batch in one transaction: in one round trip with the store's
 * snapshot of the handlers when there is one and the guard holds, else in two. */
static int op_events_put(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	put_ctx *x = ctx;
	const char **ids = calloc(x->n ? x->n : 1, sizeof *ids); /* the batch's webhooks */
	if (!ids) {
		for (size_t i = 0; i < x->n; i++)
			x->results[i] = STORE_PUT_FAILED;
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	size_t nw = batch_webhooks(x, ids);
	bool plain = true;
	for (size_t j = 0; j < nw && plain; j++)
		plain = plain_id(ids[j]);
	struct pg_handlers_snap *h = plain ? snap_take(s) : NULL;
	int ret = 0;
	bool stale = true;
	if (h) {
		th_error e = {0};
		ret = put_one_round(s, c, x, h, ids, nw, &stale, &e);
		snap_put(s, h);
		if (!stale && ret != 0 && err)
			*err = e;
		if (stale) /* a handler changed, or a webhook of the batch is being removed */
			log_debug("store", "a batch's guard refused its handlers or webhooks;"
			                   " storing it in two round trips");
	}
	if (stale)
		ret = put_two_rounds(s, c, x, ids, nw, err);
	free(ids);
	return ret;
}

/* A batch whose transaction PostgreSQL aborted for its overlap with another
 * instance's (the same duplicate events in another order: a deadlock, 40P01;
 * or a serialization failure, 40001) is tried again whole, at most this many
 * more times, before its request answers 500 (and Trello retries it later). */
enum { PUT_RETRIES = 3 };

static bool batch_retryable(const char *sqlstate)
{
	return pg_retryable(sqlstate);
}

static void retry_pause(int try)
{
	pg_retry_pause(try);
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
	put_ctx x = {evs, n, results, now, seqs, ""};
	for (int try = 1;; try++) {
		x.sqlstate[0] = '\0';
		ret = with_conn(s, op_events_put, &x, err);
		if (ret == 0 || !batch_retryable(x.sqlstate) || try > PUT_RETRIES)
			break;
		log_warn("store",
		         "storing %zu events: %s (SQLSTATE %s, another instance stored some of "
		         "them at the same time); trying again (%d of %d)",
		         n, str_eq(x.sqlstate, "40P01") ? "deadlock" : "serialization failure",
		         x.sqlstate, try, PUT_RETRIES);
		retry_pause(try);
	}
	if (ret != 0 && ret != TH_ENOMEM && ret != TH_EIO && ret != TH_EUNAVAIL)
		ret = TH_ESTORE;
out:
	/* an event that was not stored keeps the id/time it came with */
	store_events_unfill(evs, n, results, filled);
	free(filled);
	free(seqs);
	return ret;
}

/* SPDX-License-Identifier: MIT */
/*
 * sqlite.c — the embedded SQLite implementation of the store.
 *
 * One connection per store handle, guarded by a mutex: SQLite serialises
 * writers anyway, and one connection keeps the prepared-statement cache
 * simple. Several handles (a running server and the CLI, say) share one file
 * through WAL mode and busy_timeout=5000.
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so a committed
 * transaction is on disk. events_put stores a whole batch in one transaction
 * (group commit: one fsync for many events).
 *
 * Every write transaction starts with BEGIN IMMEDIATE: it takes the write
 * lock up front, so the busy handler applies and a reader can never fail to
 * upgrade halfway through (SQLITE_BUSY_SNAPSHOT).
 *
 * Schema notes (see migrations_sqlite.h):
 *  - events.webhook_id has NO foreign key: deleting a webhook keeps its
 *    events (history is never lost); they then refer to no row.
 *  - deliveries.handler_id has no foreign key either: handler_delete deletes
 *    the handler's deliveries that are not done and keeps the done ones.
 *  - deliveries carry webhook_id and event_seq copied from their event, so
 *    the claim query can keep per-(webhook, handler) order with one index.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/migrations_sqlite.h"
#include "store/payload_codec.h"
#include "util/log.h"
#include "store/sqlite_int.h"

/* ---- cached statements ----------------------------------------------------------- */

/* An unfinished delivery (as d, p or c): the partial indexes' column
 * (migration 11) and, should it ever be wrong, the status itself. */
#define SQ_UNFINISHED_IS(t) t ".unfinished = 1 AND " t ".status IN ('pending', 'running', 'failed')"
#define SQ_UNFINISHED_D SQ_UNFINISHED_IS("d")
#define SQ_UNFINISHED_P SQ_UNFINISHED_IS("p")
#define SQ_UNFINISHED_C SQ_UNFINISHED_IS("c")
/* The claim's conditions on delivery d (due at ?1) and on its handler h
 * (its kind's bit set in the mask ?2), for Q_DELIVERY_DUE and _DUE_HEADS. */
#define SQ_CLAIM_DUE_D                                                   \
	"(CASE WHEN d.status = 'running' THEN d.claimed_until < ?1 ELSE" \
	" d.next_attempt_at <= ?1 END)"
#define SQ_KIND_IN_H                                                         \
	"((?2 >> (CASE h.kind WHEN 'exec' THEN 0 WHEN 'forward' THEN 1 WHEN" \
	" 'func' THEN 2 ELSE 31 END)) & 1) = 1"

static const char *const sq_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_EVENT_INSERT] =
        "INSERT INTO events (id, webhook_id, action_id, action_type, action_date, model_id,"
        " board_id, board_name, list_id, list_name, card_id, card_name, member, summary,"
        " source, member_id, payload_codec, payload, received_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (webhook_id, action_id) DO NOTHING",
    [Q_WEBHOOK_TOUCH] = "UPDATE webhooks SET last_event_at = ?2"
                        " WHERE id = ?1 AND last_event_at < ?2",
    [Q_WEBHOOK_COUNT_ADD] = "INSERT INTO webhook_event_count (webhook_id, n) VALUES (?1, ?2)"
                            " ON CONFLICT (webhook_id) DO UPDATE SET n = n + excluded.n",
    [Q_ROLLUP_ADD] = "INSERT INTO event_rollup_hour (hour, webhook_id, action_type, n)"
                     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (hour, webhook_id, action_type)"
                     " DO UPDATE SET n = n + excluded.n",
    [Q_ROLLUP_RANGE] =
        "SELECT webhook_id, action_type, hour - hour % ?3 AS b, sum(n)"
        " FROM event_rollup_hour WHERE hour >= ?1 AND hour < ?2"
        " GROUP BY b, webhook_id, action_type ORDER BY b, webhook_id, action_type LIMIT 100000",
    /* the dashboard's (by bucket and type only): the cells in primary-key
     * order, summed in C (sq_event_rollup); a GROUP BY would sort them all */
    [Q_ROLLUP_RANGE_TYPES] = "SELECT hour, action_type, n FROM event_rollup_hour"
                             " WHERE hour >= ?1 AND hour < ?2 ORDER BY hour",
    [Q_DELIVERY_INSERT] =
        "INSERT INTO deliveries (id, event_id, handler_id, generation, status, attempts,"
        " next_attempt_at, updated_at, webhook_id, event_seq)"
        " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?6, ?7)",
    [Q_HANDLERS_ENABLED] = "SELECT " HANDLER_COLS " FROM handlers WHERE enabled = 1"
                           " ORDER BY created_at, id",
    [Q_WEBHOOK_INSERT] = "INSERT INTO webhooks (" WEBHOOK_COLS ")"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_WEBHOOK_UPDATE] =
        "UPDATE webhooks SET trello_id = ?2, id_model = ?3, model_type = ?4, model_name = ?5,"
        " description = ?6, callback_url = ?7, token = ?8, state = ?9, active = ?10,"
        " consecutive_failures = ?11, first_consecutive_fail_at = ?12, last_event_at = ?13,"
        " token_fp = coalesce(?14, token_fp)"
        /* a removal is never undone by a writer that read the row before it */
        " WHERE id = ?1 AND (state <> 'removing' OR ?9 = 'removing')",
    [Q_WEBHOOK_GET] =
        "SELECT " WEBHOOK_COLS ", " WEBHOOK_EVENT_COUNT " FROM webhooks w WHERE id = ?",
    [Q_WEBHOOK_FIND] = "SELECT " WEBHOOK_COLS ", " WEBHOOK_EVENT_COUNT
                       " FROM webhooks w WHERE id_model = ? AND token = ?",
    [Q_WEBHOOK_LIST] =
        "SELECT " WEBHOOK_COLS ", " WEBHOOK_EVENT_COUNT " FROM webhooks w ORDER BY created_at, id",
    /* a row when events may be stored under the webhook (events_put) */
    [Q_WEBHOOK_TAKES_EVENTS] = "SELECT 1 FROM webhooks WHERE id = ? AND state <> 'removing'",
    [Q_WEBHOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?",
    [Q_TOKEN_PUT] = "INSERT INTO tokens (" TOKEN_COLS ") VALUES (?,?,?,?,?,?,?)"
                    " ON CONFLICT (token) DO UPDATE SET member = excluded.member,"
                    " expires_at = excluded.expires_at, state = excluded.state,"
                    " checked_at = excluded.checked_at,"
                    " token_fp = coalesce(excluded.token_fp, token_fp)",
    [Q_WEBHOOK_FILL_FP] =
        "UPDATE webhooks SET token_fp = ?2 WHERE id = ?1 AND " FP_REPLACEABLE("?2"),
    [Q_TOKEN_FILL_FP] =
        "UPDATE tokens SET token_fp = ?2 WHERE token = ?1 AND " FP_REPLACEABLE("?2"),
    [Q_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE token = ?",
    [Q_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, token",
    [Q_TOKEN_DELETE] = "DELETE FROM tokens WHERE token = ?",
    [Q_EVENT_GET] = "SELECT " EVENT_COLS ", " EVENT_PAYLOAD_COLS " FROM events WHERE id = ?",
    [Q_EVENT_FOR_REPLAY] = "SELECT " EVENT_COLS ", " EVENT_PAYLOAD_COLS " FROM events WHERE id = ?",
    [Q_NEXT_GENERATION] = "SELECT coalesce(max(generation), -1) + 1 FROM deliveries"
                          " WHERE event_id = ?",
    [Q_HANDLER_INSERT] = "INSERT INTO handlers (" HANDLER_COLS ") VALUES (?,?,?,?,?,?,?,?)",
    [Q_HANDLER_GET] = "SELECT " HANDLER_COLS " FROM handlers WHERE id = ?",
    [Q_HANDLER_LIST] = "SELECT " HANDLER_COLS " FROM handlers ORDER BY created_at, id",
    [Q_HANDLER_DELETE_DELIVERIES] = "DELETE FROM deliveries WHERE handler_id = ?"
                                    " AND status <> 'done'",
    [Q_HANDLER_DELETE] = "DELETE FROM handlers WHERE id = ?",
    [Q_HANDLER_SET_ENABLED] = "UPDATE handlers SET enabled = ?2 WHERE id = ?1",
    [Q_HANDLER_SET_SECRET] = "UPDATE handlers SET secret = ?3 WHERE id = ?1 AND secret = ?2",
    [Q_DELIVERY_GET] = "SELECT " DELIVERY_COLS " FROM deliveries d WHERE d.id = ?",
    /* The claim (sq_delivery_claim). Due: pending/failed and due, or
     * running with an expired lease; of a handler whose kind is in the mask
     * (?2) and that is enabled; and not behind an unfinished delivery of an
     * earlier event of the same webhook to the same handler (the head of its
     * (handler, webhook) chain: every generation of the chain's first
     * unfinished event). In event_seq, generation, rowid order, at most ?3.
     *
     * Cost bound: a row that cannot be claimed (behind a failed head waiting
     * for its retry, of a disabled handler or of a kind not run, running)
     * stays in the queue, and a walk of the queue in event order re-read
     * all of them on every claim: O(backlog) per claim, quadratic to drain
     * (77% of serve's CPU in bench/dispatch.sh with 2/3 of the queue parked).
     * So the walk has an end: Q_DELIVERY_QUEUE_EDGE finds the key of the
     * window's last row, the store_claim_window()-th unfinished one in event
     * order (index only), and Q_DELIVERY_DUE walks deliveries_queue up to it
     * (?4, ?5), one seek each for the order rule, stopping at the limit:
     * O(window). What it finds are the earliest claimable rows of the whole
     * queue, so they are the answer when they reach the limit or when the
     * queue is shorter than the window (no edge: the walk is unbounded).
     * Otherwise Q_DELIVERY_DUE_HEADS answers: O(runnable handlers + their
     * chains), whatever the backlog behind the heads. */
    [Q_DELIVERY_DUE] = "SELECT " DELIVERY_COLS " FROM deliveries d INDEXED BY deliveries_queue"
                       " JOIN handlers h ON h.id = d.handler_id"
                       " WHERE " SQ_UNFINISHED_D "   AND (d.event_seq, d.generation) <= (?4, ?5)"
                       "   AND " SQ_CLAIM_DUE_D " AND h.enabled = 1 AND " SQ_KIND_IN_H
                       "   AND NOT EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_chain"
                       "        WHERE p.handler_id = d.handler_id AND p.webhook_id = d.webhook_id"
                       "          AND p.event_seq < d.event_seq"
                       "          AND " SQ_UNFINISHED_P ")"
                       " ORDER BY d.event_seq, d.generation LIMIT ?3",
    /* the key of the (?1 + 1)-th unfinished row in event order: no row when
     * the queue is shorter (index only) */
    [Q_DELIVERY_QUEUE_EDGE] =
        "SELECT event_seq, generation FROM deliveries INDEXED BY deliveries_queue"
        " WHERE unfinished = 1" /* the index alone: a row it has counts */
        " ORDER BY event_seq, generation LIMIT 1 OFFSET ?1",
    /* The heads of the chains of the enabled, in-mask handlers, found by a
     * loose index scan over deliveries_chain: per handler, its first
     * webhook with unfinished deliveries, then the next one after it, one
     * seek each; then each chain's first unfinished event (one seek) and its
     * rows (every generation), due ones only. */
    [Q_DELIVERY_DUE_HEADS] =
        "WITH RECURSIVE"
        " hs(id) AS (SELECT id FROM handlers h WHERE h.enabled = 1 AND " SQ_KIND_IN_H "),"
        " chain(h, w) AS ("
        "   SELECT hs.id, (SELECT c.webhook_id FROM deliveries c INDEXED BY deliveries_chain"
        "     WHERE c.handler_id = hs.id AND " SQ_UNFINISHED_C
        "     ORDER BY c.webhook_id LIMIT 1) FROM hs"
        "   UNION ALL"
        "   SELECT chain.h, (SELECT c.webhook_id FROM deliveries c INDEXED BY deliveries_chain"
        "     WHERE c.handler_id = chain.h AND c.webhook_id > chain.w"
        "       AND " SQ_UNFINISHED_C
        "     ORDER BY c.webhook_id LIMIT 1) FROM chain WHERE chain.w IS NOT NULL),"
        " head(h, w, s) AS ("
        "   SELECT chain.h, chain.w, (SELECT c.event_seq FROM deliveries c"
        "     INDEXED BY deliveries_chain WHERE c.handler_id = chain.h AND c.webhook_id = chain.w"
        "       AND " SQ_UNFINISHED_C
        "     ORDER BY c.event_seq LIMIT 1) FROM chain WHERE chain.w IS NOT NULL)"
        " SELECT " DELIVERY_COLS " FROM head"
        " JOIN deliveries d INDEXED BY deliveries_chain ON d.handler_id = head.h"
        "   AND d.webhook_id = head.w AND d.event_seq = head.s"
        " WHERE " SQ_UNFINISHED_D " AND " SQ_CLAIM_DUE_D
        " ORDER BY d.event_seq, d.generation, d.rowid LIMIT ?3",
    [Q_DELIVERY_MARK_RUNNING] = "UPDATE deliveries SET status = 'running', claimed_until = ?2,"
                                " attempts = attempts + 1, updated_at = ?3, claimed_by = ?4"
                                " WHERE id = ?1",
    [Q_DELIVERY_CLAIMERS] = "SELECT DISTINCT claimed_by FROM deliveries"
                            " WHERE status = 'running' AND claimed_by IS NOT NULL",
    [Q_DELIVERY_RECOVER] = "UPDATE deliveries SET status = 'failed', next_attempt_at = ?2,"
                           " updated_at = ?2, claimed_until = 0, last_error = ?3"
                           " WHERE status = 'running' AND claimed_by = ?1",
    [Q_DELIVERY_FINISH] = "UPDATE deliveries SET status = ?2, unfinished = (?2 = 'failed'),"
                          " next_attempt_at = ?3,"
                          " last_error = ?4, updated_at = ?5, claimed_until = 0,"
                          " attempts = CASE WHEN ?6 > 0 THEN ?6 ELSE attempts END WHERE id = ?1",
    [Q_DELIVERY_ROLLUP_ADD] =
        "INSERT INTO delivery_rollup_hour (hour, handler_id, status, bucket, n)"
        " SELECT ?2, handler_id, ?3, ?4, 1 FROM deliveries WHERE id = ?1"
        " ON CONFLICT (hour, handler_id, status, bucket) DO UPDATE SET n = n + 1",
    [Q_DELIVERY_ROLLUP_RANGE] = DELIVERY_ROLLUP_RANGE_SQL("?1", "?2"),
    [Q_DELIVERY_STATUS] = "SELECT status FROM deliveries WHERE id = ?",
    [Q_DELIVERY_RETRY] = "UPDATE deliveries SET status = 'pending', unfinished = 1, attempts = 0,"
                         " next_attempt_at = ?2, updated_at = ?2, claimed_until = 0"
                         " WHERE id = ?1",
    [Q_DELIVERY_STATS] = "SELECT status, count(*) FROM deliveries GROUP BY status",
    [Q_DELIVERY_OLDEST_PENDING] = "SELECT min(next_attempt_at) FROM deliveries"
                                  " WHERE status = 'pending'",
    [Q_USER_PUT] = "INSERT INTO users (name, pwhash, created_at) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (name) DO UPDATE SET pwhash = excluded.pwhash",
    [Q_USER_GET_HASH] = "SELECT pwhash FROM users WHERE name = ?",
    [Q_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_at < ?",
    [Q_SESSION_PUT] = "INSERT INTO sessions (id_hash, user, csrf, expires_at) VALUES (?,?,?,?)"
                      " ON CONFLICT (id_hash) DO UPDATE SET user = excluded.user,"
                      " csrf = excluded.csrf, expires_at = excluded.expires_at",
    [Q_BACKFILL_MARK_GET] =
        "SELECT " BACKFILL_MARK_COLS " FROM backfill_marks WHERE webhook_id = ?",
    [Q_BACKFILL_MARK_PUT] = BACKFILL_MARK_PUT_SQL("?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9"),
    [Q_SESSION_GET] = "SELECT id_hash, user, csrf, expires_at FROM sessions WHERE id_hash = ?",
    [Q_SESSION_DELETE] = "DELETE FROM sessions WHERE id_hash = ?",
};

/* An error from the database: TH_ESTORE with "what: sqlite message". */
int sq_fail(sq *s, th_error *err, const char *what)
{
	if (store_fault_take())
		return th_err(err, TH_ESTORE, "%s: disk I/O error (injected fault)", what);
	return th_err(err, TH_ESTORE, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Was the last error a uniqueness (or primary key) violation? */
bool sq_is_unique(sq *s)
{
	int x = sqlite3_extended_errcode(s->db);
	return x == SQLITE_CONSTRAINT_UNIQUE || x == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* The cached statement @id, prepared on first use. Returns NULL (with @err
 * filled) when preparing fails. The caller must sq_reset() it after use. */
sqlite3_stmt *sq_stmt(sq *s, enum sq_q id, th_error *err)
{
	if (!s->q[id]) {
		if (id != Q_ROLLBACK && store_fault_hit(STORE_FAULT_PREPARE)) {
			sq_fail(s, err, "preparing a statement");
			return NULL;
		}
		if (sqlite3_prepare_v3(s->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->q[id],
		                       NULL) != SQLITE_OK) {
			sq_fail(s, err, "preparing a statement");
			s->q[id] = NULL;
			return NULL;
		}
	}
	return s->q[id];
}

/* Reset a statement so it holds no lock and no bound pointers. NULL-safe. */
void sq_reset(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

/* Run a cached statement that returns no rows (BEGIN, COMMIT, ...). */
int sq_run(sq *s, enum sq_q id, const char *what, th_error *err)
{
	sqlite3_stmt *st = sq_stmt(s, id, err);
	if (!st)
		return TH_ESTORE;
	/* faults are injected into COMMIT, never into ROLLBACK (the way back) */
	int rc = id == Q_ROLLBACK                                        ? sqlite3_step(st)
	         : id == Q_COMMIT && store_fault_hit(STORE_FAULT_COMMIT) ? SQLITE_IOERR
	                                                                 : sq_step(st);
	int ret = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : sq_fail(s, err, what);
	sq_reset(st);
	return ret;
}

/* Run @sql (one or more statements, no parameters, rows ignored) with the
 * lock held: 0, or TH_ESTORE "@what: sqlite message". */
int sq_exec(sq *s, const char *sql, const char *what, th_error *err)
{
	char *emsg = NULL;
	int ret = 0;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &emsg) != SQLITE_OK)
		ret = th_err(err, TH_ESTORE, "%s: %s", what, emsg ? emsg : "?");
	sqlite3_free(emsg);
	return ret;
}

/* Roll back the open transaction, if any, keeping the first error in @err. */
void sq_rollback(sq *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)sq_run(s, Q_ROLLBACK, "rollback", NULL);
}

/* ---- binding ---------------------------------------------------------------------------- */

static void sw_text(store_params *w, const char *v)
{
	sq_bind_text(w->dst, v);
}
static void sw_int(store_params *w, int64_t v)
{
	sq_bind_i64(w->dst, v);
}
static void sw_bool(store_params *w, bool v)
{
	sq_bind_i64(w->dst, v);
}
const struct store_params_ops sq_params_ops = {sw_text, sw_int, sw_bool};

int sq_prepare(sq *s, enum sq_q id, sq_bind *b, th_error *err)
{
	*b = (sq_bind){sq_stmt(s, id, err), 0, SQLITE_OK};
	return b->st ? 0 : TH_ESTORE;
}

int sq_done(sq *s, sq_bind *b, const char *what, th_error *err)
{
	int rc = b->rc == SQLITE_OK ? sq_step(b->st) : b->rc;
	sq_reset(b->st);
	return rc == SQLITE_DONE ? 0 : sq_fail(s, err, what);
}

void sq_bind_text(sq_bind *b, const char *v)
{
	int i = ++b->i;
	if (b->rc == SQLITE_OK)
		b->rc = v ? sqlite3_bind_text(b->st, i, v, -1, SQLITE_STATIC)
		          : sqlite3_bind_null(b->st, i);
}

void sq_bind_i64(sq_bind *b, int64_t v)
{
	int i = ++b->i;
	if (b->rc == SQLITE_OK)
		b->rc = sqlite3_bind_int64(b->st, i, v);
}

/* ---- reading: a statement as a store_row cursor (store_rows.c reads the rows) ------------ */

typedef struct sq_src {
	sq *s;
	sqlite3_stmt *q;
} sq_src;

static sqlite3_stmt *src_q(const store_row *r)
{
	return ((const sq_src *)r->src)->q;
}

static int sq_row_next(store_row *r, th_error *err)
{
	sq_src *x = r->src;
	int rc = sq_step(x->q);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return sq_fail(x->s, err, r->what);
}

static bool sq_row_null(const store_row *r, int c)
{
	return sqlite3_column_type(src_q(r), c) == SQLITE_NULL;
}

static const char *sq_row_text(const store_row *r, int c, size_t *len)
{
	const unsigned char *t = sqlite3_column_text(src_q(r), c);
	*len = (size_t)sqlite3_column_bytes(src_q(r), c);
	return (const char *)t;
}

static int64_t sq_row_int(const store_row *r, int c)
{
	return sqlite3_column_int64(src_q(r), c);
}

static bool sq_row_bool(const store_row *r, int c)
{
	return sqlite3_column_int64(src_q(r), c) != 0;
}

/* The payload is a BLOB: any bytes, kept exactly; we add a NUL after it. */
static char *sq_row_blob(const store_row *r, int c, size_t *len)
{
	const void *p = sqlite3_column_blob(src_q(r), c);
	size_t n = (size_t)sqlite3_column_bytes(src_q(r), c);
	char *v = str_ndup(n ? p : "", n); /* an empty BLOB may read as NULL */
	if (v)
		*len = n;
	return v;
}

static const struct store_row_ops sq_row_ops = {
    sq_row_next, sq_row_null, sq_row_text, sq_row_int, sq_row_bool, sq_row_blob,
};

int sq_collect(sq *s, sqlite3_stmt *q, const store_rowtype *rt, void **out, size_t *n,
               const char *what, th_error *err)
{
	sq_src x = {s, q};
	store_row r = {&sq_row_ops, &x, 0, 0, false, what, ""};
	return store_rows_collect(&r, rt, out, n, err);
}

int sq_collect_once(sq *s, sqlite3_stmt *q, int bind_rc, const store_rowtype *rt, void **out,
                    size_t *n, const char *what, th_error *err)
{
	int ret =
	    bind_rc != SQLITE_OK ? sq_fail(s, err, what) : sq_collect(s, q, rt, out, n, what, err);
	sqlite3_finalize(q);
	return ret;
}

int sq_read_one(sq *s, sqlite3_stmt *q, const store_rowtype *rt, void *out, const char *nf,
                const char *what, th_error *err)
{
	sq_src x = {s, q};
	store_row r = {&sq_row_ops, &x, 0, 0, false, what, ""};
	return store_rows_first(&r, rt, out, nf, err);
}

/* ---- one row, all rows ---------------------------------------------------------------- */

/* A statement left stepping (not reset on some path) keeps its connection's
 * read transaction open, so every later read on that connection sees the
 * database as it was then: a webhook another process added or marked removed
 * would stay invisible. Reads start by resetting any such statement, and log
 * it, so the path that forgot can be found. Called with s->mu held. */
static void sq_end_stale_reads(sq *s)
{
	for (sqlite3_stmt *st = sqlite3_next_stmt(s->db, NULL); st;
	     st = sqlite3_next_stmt(s->db, st))
		if (sqlite3_stmt_busy(st)) {
			log_warn("store", "a statement was left open (%.60s); reset before a read",
			         sqlite3_sql(st) ? sqlite3_sql(st) : "?");
			sqlite3_reset(st);
		}
}

int sq_get_one_locked(sq *s, enum sq_q id, const char *k1, const char *k2, const store_rowtype *rt,
                      void *out, const char *nf, const char *what, th_error *err)
{
	memset(out, 0, rt->size);
	sq_bind b;
	int ret = sq_prepare(s, id, &b, err);
	if (ret != 0)
		return ret;
	sq_bind_text(&b, k1);
	if (k2)
		sq_bind_text(&b, k2);
	if (b.rc != SQLITE_OK)
		ret = sq_fail(s, err, what);
	else
		ret = sq_read_one(s, b.st, rt, out, nf, what, err);
	sq_reset(b.st);
	return ret;
}

int sq_get_one(sq *s, enum sq_q id, const char *k1, const char *k2, const store_rowtype *rt,
               void *out, const char *nf, const char *what, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	sq_end_stale_reads(s);
	int ret = sq_get_one_locked(s, id, k1, k2, rt, out, nf, what, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

int sq_get_id(sq *s, enum sq_q q, const char *id, const store_rowtype *rt, void *out,
              const char *entity, const char *what, th_error *err)
{
	char nf[160];
	return sq_get_one(s, q, id, NULL, rt, out, store_not_found_msg(nf, sizeof nf, entity, id),
	                  what, err);
}

int sq_list_locked(sq *s, enum sq_q id, const store_rowtype *rt, void **out, size_t *n,
                   const char *what, th_error *err)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = sq_stmt(s, id, err);
	if (!q)
		return TH_ESTORE;
	int ret = sq_collect(s, q, rt, out, n, what, err);
	sq_reset(q);
	return ret;
}

int sq_list(sq *s, enum sq_q id, const store_rowtype *rt, void **out, size_t *n, const char *what,
            th_error *err)
{
	pthread_mutex_lock(&s->mu);
	sq_end_stale_reads(s);
	int ret = sq_list_locked(s, id, rt, out, n, what, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

int sq_list_ints_locked(sq *s, enum sq_q id, const int64_t *args, size_t nargs,
                        const store_rowtype *rt, void **out, size_t *n, const char *what,
                        th_error *err)
{
	*out = NULL;
	*n = 0;
	sq_bind b;
	int ret = sq_prepare(s, id, &b, err);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < nargs; i++)
		sq_bind_i64(&b, args[i]);
	ret =
	    b.rc != SQLITE_OK ? sq_fail(s, err, what) : sq_collect(s, b.st, rt, out, n, what, err);
	sq_reset(b.st);
	return ret;
}

int sq_list_ints(sq *s, enum sq_q id, const int64_t *args, size_t nargs, const store_rowtype *rt,
                 void **out, size_t *n, const char *what, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = sq_list_ints_locked(s, id, args, nargs, rt, out, n, what, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* The dialect's listing: @sql prepared for this once, the values @bind
 * writes bound in order; takes the lock. */
static int sq_list_sql(store *st, const char *sql, store_binder bind, const void *ctx,
                       const store_rowtype *rt, void **out, size_t *n, const char *what,
                       th_error *err)
{
	sq *s = sq_of(st);
	sqlite3_stmt *q = NULL;
	int ret;
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
		ret = sq_fail(s, err, what);
	} else {
		sq_bind b = {q, 0, SQLITE_OK};
		bind(&(store_params){&sq_params_ops, &b}, ctx);
		ret = sq_collect_once(s, q, b.rc, rt, out, n, what, err);
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* LIKE folds case for ASCII letters only; rowid is the insertion order. */
static const store_dialect sq_dialect = {'?', " AND summary LIKE ", " ORDER BY d.rowid DESC LIMIT ",
                                         sq_list_sql};

/* ---- one command ---------------------------------------------------------------------- */

/* Run cached command @id (no rows) under the lock, its parameters bound by
 * @bind from @arg. 0 with *@changes (optional) the rows it changed; else
 * @on_unique's error for a uniqueness violation (when given) or TH_ESTORE
 * "what: message". */
int sq_command(sq *s, enum sq_q id, sq_binder bind, const void *arg, const char *what,
               sq_unique_fn on_unique, int *changes, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = 0;
	sq_bind b;
	if ((ret = sq_prepare(s, id, &b, err)) != 0)
		goto out;
	sqlite3_stmt *q = b.st;
	bind(&b, arg);
	if (b.rc != SQLITE_OK || sq_step(q) != SQLITE_DONE) {
		ret = on_unique && sq_is_unique(s) ? on_unique(s, arg, err) : sq_fail(s, err, what);
		goto out;
	}
	if (changes)
		*changes = sqlite3_changes(s->db);
out:
	sq_reset(b.st);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static void bind_key(sq_bind *b, const void *arg)
{
	sq_bind_text(b, arg);
}

void sq_bind_texts(sq_bind *b, const void *arg)
{
	const sq_texts *x = arg;
	for (size_t i = 0; i < x->n && i < TH_ARRAY_LEN(x->v); i++)
		sq_bind_text(b, x->v[i]);
}

int sq_set_sync(sq *s, bool full, th_error *err)
{
	char *emsg = NULL;
	int rc =
	    sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
	                 NULL, NULL, &emsg);
	int ret = rc == SQLITE_OK ? 0
	                          : th_err(err, TH_ESTORE, "setting synchronous: %s",
	                                   emsg ? emsg : sqlite3_errstr(rc));
	sqlite3_free(emsg);
	return ret;
}

/* BEGIN, @body, COMMIT (lock held); any failure rolls back. */
static int txn_locked(sq *s, sq_txn_body body, void *ctx, th_error *err)
{
	int ret = sq_run(s, Q_BEGIN, "starting a transaction", err);
	if (ret == 0) {
		ret = body(s, ctx, err);
		if (ret == 0)
			ret = sq_run(s, Q_COMMIT, "commit", err);
		if (ret != 0)
			sq_rollback(s);
	}
	return ret;
}

/* Run @body with @ctx in one write transaction under the lock; any failure
 * (its own or the commit's) rolls back. */
int sq_txn(sq *s, sq_txn_body body, void *ctx, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = txn_locked(s, body, ctx, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

int sq_txn_nosync(sq *s, sq_txn_body body, void *ctx, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = sq_set_sync(s, false, err);
	if (ret == 0)
		ret = txn_locked(s, body, ctx, err);
	th_error serr = {0, {0}};
	if (sq_set_sync(s, true, &serr) && !ret)
		ret = th_err(err, TH_ESTORE, "%s", serr.msg);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* Bind the text @key to @q, step it once and reset it; returns the step's
 * result code. For commands: a row's columns are gone after the reset. */
int sq_step_key(sqlite3_stmt *q, const char *key)
{
	sq_bind b = {q, 0, SQLITE_OK};
	sq_bind_text(&b, key);
	int rc = b.rc == SQLITE_OK ? sq_step(q) : b.rc;
	sq_reset(q);
	return rc;
}

/* DELETE by one text key; TH_ENOTFOUND "no <what> with <keyname> <key>" when
 * nothing was deleted (@show_key false hides the key, e.g. for tokens). */
int sq_delete_one(sq *s, enum sq_q id, const char *key, const char *what, bool show_key,
                  th_error *err)
{
	int changes = 0;
	int ret = sq_command(s, id, bind_key, key, "deleting", NULL, &changes, err);
	if (ret == 0 && changes == 0)
		ret = store_delete_not_found(err, what, key, show_key);
	return ret;
}

/* ---- open, migrate, close ------------------------------------------------------------ */

/* The schema version recorded in schema_migrations (0: none). */
static int sq_version(sq *s, int *out, th_error *err)
{
	sqlite3_stmt *st = NULL;
	int ret = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
	                       &st, NULL) != SQLITE_OK) {
		ret = sq_fail(s, err, "reading the schema version");
		goto out;
	}
	if (sq_step(st) != SQLITE_ROW) {
		ret = sq_fail(s, err, "reading the schema version");
		goto out;
	}
	*out = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	return ret;
}

/* After migration PAYLOAD_CODEC_SCHEMA: say that the events stored before
 * keep their payloads raw, and how to pack them (lock held). */
static void note_raw_payloads(sq *s)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM events", -1, &q, NULL) == SQLITE_OK &&
	    sq_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > 0)
		log_info("store",
		         "new payloads are stored LZ4-packed from schema %d on; the %lld event(s)"
		         " stored before keep theirs as they are (readable as before): 'trellohook"
		         " migrate --repack', with serve stopped, packs them and shrinks the file",
		         PAYLOAD_CODEC_SCHEMA, (long long)sqlite3_column_int64(q, 0));
	sqlite3_finalize(q);
}

/* Apply every migration the database lacks, each in its own transaction, and
 * report the resulting version. Idempotent; safe against a second process
 * migrating at the same time (the version is re-read under the write lock). */
static int sq_migrate_locked(sq *s, int *out_version, th_error *err)
{
	const int latest = (int)TH_ARRAY_LEN(sqlite_migrations);
	int ret = 0, version = 0;
	if ((ret = sq_exec(s,
	                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                   " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
	                   "creating schema_migrations", err)) != 0)
		return ret;
	for (;;) {
		if ((ret = sq_run(s, Q_BEGIN, "starting a migration", err)) != 0)
			return ret;
		if ((ret = sq_version(s, &version, err)) != 0)
			goto fail;
		if ((ret = store_check_schema_version(version, latest, err)) != 0)
			goto fail;
		if (version == latest) {
			if ((ret = sq_run(s, Q_COMMIT, "commit", err)) != 0)
				goto fail;
			break;
		}
		char what[48], sql[128];
		str_printf(what, sizeof what, "migration %d", version + 1);
		if ((ret = sq_exec(s, sqlite_migrations[version], what, err)) != 0)
			goto fail;
		str_printf(what, sizeof what, "recording migration %d", version + 1);
		str_printf(sql, sizeof sql,
		           "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)",
		           version + 1, (long long)time_now_ms());
		if ((ret = sq_exec(s, sql, what, err)) != 0)
			goto fail;
		if ((ret = sq_run(s, Q_COMMIT, "committing a migration", err)) != 0)
			goto fail;
		if (version + 1 == PAYLOAD_CODEC_SCHEMA)
			note_raw_payloads(s);
	}
	if (out_version)
		*out_version = version;
	return 0;
fail:
	sq_rollback(s);
	return ret;
}

static void sq_close(store *st)
{
	sq *s = sq_of(st);
	if (!s)
		return;
	for (size_t i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->q[i]);
	sqlite3_close(s->db);
	sqlite_ckpt_stop(s->ckpt); /* after the writer closed: a final checkpoint */
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int sq_migrate(store *st, int *out_version, th_error *err)
{
	sq *s = sq_of(st);
	pthread_mutex_lock(&s->mu);
	int ret = sq_migrate_locked(s, out_version, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

int sq_ping(store *st, th_error *err)
{
	sq *s = sq_of(st);
	pthread_mutex_lock(&s->mu);
	int ret = sq_exec(s, "SELECT 1", "ping", err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* A write that commits (and fsyncs) like an event batch, leaving nothing:
 * schema_migrations gets a row no migration has (version -1) and loses it in
 * the same transaction, so its pages are written and committed. */
int sq_probe_write(store *st, th_error *err)
{
	sq *s = sq_of(st);
	pthread_mutex_lock(&s->mu);
	int ret = sq_run(s, Q_BEGIN, "write probe: begin", err);
	if (!ret)
		ret = sq_exec(s,
		              "INSERT INTO schema_migrations (version, applied_at) VALUES (-1, 0);"
		              "DELETE FROM schema_migrations WHERE version = -1",
		              "write probe", err);
	if (!ret)
		ret = sq_run(s, Q_COMMIT, "write probe: commit", err);
	if (ret)
		sq_rollback(s);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* clang-format off */
#define SQ_OP_ENTRY(op, params, args) .op = sq_##op,
static const struct store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .dialect = &sq_dialect,
    STORE_OPS_ALL(SQ_OP_ENTRY) /* .migrate = sq_migrate, ... */
};
#undef SQ_OP_ENTRY
/* clang-format on */

/* Explain why @path could not be opened, naming the likely cause. */
static int open_error(const char *path, const char *why, th_error *err)
{
	char dir[1024];
	const char *slash = strrchr(path, '/');
	if (slash && (size_t)(slash - path) < sizeof dir) {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, n);
		dir[n] = '\0';
		struct stat sb;
		if (stat(dir, &sb) != 0)
			return th_err(
			    err, TH_ESTORE,
			    "cannot open SQLite database %s: directory %s does not exist (%s)",
			    path, dir, strerror(errno));
		if (!S_ISDIR(sb.st_mode))
			return th_err(err, TH_ESTORE,
			              "cannot open SQLite database %s: %s is not a directory", path,
			              dir);
	}
	return th_err(err, TH_ESTORE, "cannot open SQLite database %s: %s", path, why);
}

/* Open (creating when missing) the SQLite database at @path — ":memory:" for
 * a private in-memory one — set the PRAGMAs for durability and sharing, and
 * migrate it. The directory must exist. On success *out belongs to the caller
 * (store_close()); it is safe to use from several threads. */
int store_sqlite_open(store **out, const char *path, th_error *err)
{
	/* auto_vacuum first: it takes effect in a new file (before its first
	 * table) and lets a prune give freed pages back (sq_compact); an older
	 * file keeps its mode until `trellohook migrate --vacuum` rewrites it */
	static const char pragmas[] = "PRAGMA busy_timeout = 5000;"
	                              "PRAGMA auto_vacuum = INCREMENTAL;"
	                              "PRAGMA journal_mode = WAL;"
	                              "PRAGMA synchronous = FULL;"
	                              "PRAGMA foreign_keys = ON;";
	*out = NULL;
	int ret = 0;
	char *emsg = NULL;
	if (!path || !*path)
		return th_err(err, TH_ECONFIG, "the SQLite database path is empty");
	sq *s = calloc(1, sizeof *s);
	if (!s)
		return th_err(err, TH_ENOMEM, "out of memory");
	s->base.ops = &sq_ops;
	store_instance_init(&s->base);
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return th_err(err, TH_ENOMEM, "cannot create a mutex");
	}
	/* A new store holds tokens and payloads: only its owner may read it, not
	 * whatever the umask allows (SQLite gives its -wal and -shm the mode of
	 * the database). An existing file keeps its mode. */
	if (strcmp(path, ":memory:") != 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	int rc = sqlite3_open_v2(
	    path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = open_error(path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), err);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	if (sqlite3_exec(s->db, pragmas, NULL, NULL, &emsg) != SQLITE_OK) {
		ret = open_error(path, emsg ? emsg : sqlite3_errmsg(s->db), err);
		goto fail;
	}
	if ((ret = sq_migrate_locked(s, NULL, err)) != 0)
		goto fail;
	/* Checkpoints move off the committing writer (see sqlite_ckpt.h). */
	if (strcmp(path, ":memory:") != 0) {
		if ((ret = sqlite_ckpt_start(&s->ckpt, path, SQLITE_CKPT_PERIOD_MS,
		                             SQLITE_CKPT_CATCH_UP_FRAMES, err)) != 0)
			goto fail;
		if (sqlite3_exec(s->db, "PRAGMA journal_size_limit = 67108864;", NULL, NULL,
		                 &emsg) != SQLITE_OK) {
			ret = open_error(path, emsg ? emsg : sqlite3_errmsg(s->db), err);
			goto fail;
		}
		/* replaces SQLite's automatic checkpoint, which is a WAL hook too */
		sqlite_ckpt_attach_writer(s->ckpt, s->db);
	}
	*out = &s->base;
	goto out;
fail:
	sq_close(&s->base);
out:
	sqlite3_free(emsg);
	return ret;
}

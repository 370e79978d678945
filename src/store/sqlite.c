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
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/migrations_sqlite.h"
#include "store/sqlite_ckpt.h"
#include "store/store.h"
#include "store/store_int.h"

/* ---- cached statements ----------------------------------------------------------- */

enum sq_q {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_EVENT_INSERT,
	Q_WEBHOOK_TOUCH,
	Q_DELIVERY_INSERT,
	Q_HANDLERS_ENABLED,
	Q_WEBHOOK_INSERT,
	Q_WEBHOOK_UPDATE,
	Q_WEBHOOK_GET,
	Q_WEBHOOK_FIND,
	Q_WEBHOOK_LIST,
	Q_WEBHOOK_DELETE,
	Q_TOKEN_PUT,
	Q_TOKEN_GET,
	Q_TOKEN_LIST,
	Q_TOKEN_DELETE,
	Q_EVENT_GET,
	Q_EVENT_FOR_REPLAY,
	Q_NEXT_GENERATION,
	Q_HANDLER_INSERT,
	Q_HANDLER_GET,
	Q_HANDLER_LIST,
	Q_HANDLER_DELETE_DELIVERIES,
	Q_HANDLER_DELETE,
	Q_HANDLER_SET_ENABLED,
	Q_DELIVERY_GET,
	Q_DELIVERY_DUE,
	Q_DELIVERY_MARK_RUNNING,
	Q_DELIVERY_FINISH,
	Q_DELIVERY_STATUS,
	Q_DELIVERY_RETRY,
	Q_DELIVERY_STATS,
	Q_DELIVERY_OLDEST_PENDING,
	Q_USER_PUT,
	Q_USER_GET_HASH,
	Q_SESSION_PURGE,
	Q_SESSION_PUT,
	Q_SESSION_GET,
	Q_SESSION_DELETE,
	Q_COUNT
};

#define WEBHOOK_COLS                                                                          \
	"id, trello_id, id_model, model_type, model_name, description, callback_url, token, " \
	"state, active, consecutive_failures, first_consecutive_fail_at, created_at, "        \
	"last_event_at"
#define EVENT_COLS                                                                       \
	"seq, id, webhook_id, action_id, action_type, action_date, model_id, board_id, " \
	"board_name, list_id, list_name, card_id, card_name, member, summary, received_at"
#define HANDLER_COLS "id, kind, target, on_types, model, secret, enabled, created_at"
#define DELIVERY_COLS                                                               \
	"d.id, d.event_id, d.handler_id, d.status, d.attempts, d.next_attempt_at, " \
	"d.last_error, d.updated_at, d.claimed_until"
#define TOKEN_COLS "token, member, expires_at, state, checked_at, created_at"

static const char *const sq_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_EVENT_INSERT] =
        "INSERT INTO events (id, webhook_id, action_id, action_type, action_date, model_id,"
        " board_id, board_name, list_id, list_name, card_id, card_name, member, summary,"
        " payload, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT (webhook_id, action_id) DO NOTHING",
    [Q_WEBHOOK_TOUCH] = "UPDATE webhooks SET last_event_at = ?2"
                        " WHERE id = ?1 AND last_event_at < ?2",
    [Q_DELIVERY_INSERT] =
        "INSERT INTO deliveries (id, event_id, handler_id, generation, status, attempts,"
        " next_attempt_at, updated_at, webhook_id, event_seq)"
        " VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?6, ?7)",
    [Q_HANDLERS_ENABLED] = "SELECT " HANDLER_COLS " FROM handlers WHERE enabled = 1"
                           " ORDER BY created_at, id",
    [Q_WEBHOOK_INSERT] = "INSERT INTO webhooks (" WEBHOOK_COLS ")"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [Q_WEBHOOK_UPDATE] =
        "UPDATE webhooks SET trello_id = ?2, id_model = ?3, model_type = ?4, model_name = ?5,"
        " description = ?6, callback_url = ?7, token = ?8, state = ?9, active = ?10,"
        " consecutive_failures = ?11, first_consecutive_fail_at = ?12, last_event_at = ?13"
        " WHERE id = ?1",
    [Q_WEBHOOK_GET] = "SELECT " WEBHOOK_COLS ", (SELECT count(*) FROM events e"
                      " WHERE e.webhook_id = w.id) FROM webhooks w WHERE id = ?",
    [Q_WEBHOOK_FIND] = "SELECT " WEBHOOK_COLS ", (SELECT count(*) FROM events e"
                       " WHERE e.webhook_id = w.id) FROM webhooks w"
                       " WHERE id_model = ? AND token = ?",
    [Q_WEBHOOK_LIST] = "SELECT " WEBHOOK_COLS ", (SELECT count(*) FROM events e"
                       " WHERE e.webhook_id = w.id) FROM webhooks w ORDER BY created_at, id",
    [Q_WEBHOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?",
    [Q_TOKEN_PUT] = "INSERT INTO tokens (" TOKEN_COLS ") VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT (token) DO UPDATE SET member = excluded.member,"
                    " expires_at = excluded.expires_at, state = excluded.state,"
                    " checked_at = excluded.checked_at",
    [Q_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE token = ?",
    [Q_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, token",
    [Q_TOKEN_DELETE] = "DELETE FROM tokens WHERE token = ?",
    [Q_EVENT_GET] = "SELECT " EVENT_COLS ", payload FROM events WHERE id = ?",
    [Q_EVENT_FOR_REPLAY] = "SELECT " EVENT_COLS ", payload FROM events WHERE id = ?",
    [Q_NEXT_GENERATION] = "SELECT coalesce(max(generation), -1) + 1 FROM deliveries"
                          " WHERE event_id = ?",
    [Q_HANDLER_INSERT] = "INSERT INTO handlers (" HANDLER_COLS ") VALUES (?,?,?,?,?,?,?,?)",
    [Q_HANDLER_GET] = "SELECT " HANDLER_COLS " FROM handlers WHERE id = ?",
    [Q_HANDLER_LIST] = "SELECT " HANDLER_COLS " FROM handlers ORDER BY created_at, id",
    [Q_HANDLER_DELETE_DELIVERIES] = "DELETE FROM deliveries WHERE handler_id = ?"
                                    " AND status <> 'done'",
    [Q_HANDLER_DELETE] = "DELETE FROM handlers WHERE id = ?",
    [Q_HANDLER_SET_ENABLED] = "UPDATE handlers SET enabled = ?2 WHERE id = ?1",
    [Q_DELIVERY_GET] = "SELECT " DELIVERY_COLS " FROM deliveries d WHERE d.id = ?",
    /* Due: pending/failed and due, or running with an expired lease; of a
     * handler whose kind is in the mask (?2) and that is enabled; and not
     * behind an unfinished delivery of an earlier event of the same webhook
     * to the same handler. Walks deliveries_queue (unfinished, in event order)
     * and stops at the limit; the planner would otherwise sort every due row
     * (migration 2 explains the numbers). */
    [Q_DELIVERY_DUE] =
        "SELECT " DELIVERY_COLS " FROM deliveries d INDEXED BY deliveries_queue"
        " JOIN handlers h ON h.id = d.handler_id"
        " WHERE d.status IN ('pending', 'running', 'failed')" /* = the partial index */
        "   AND (CASE WHEN d.status = 'running' THEN d.claimed_until < ?1"
        "        ELSE d.next_attempt_at <= ?1 END)"
        "   AND h.enabled = 1"
        "   AND ((?2 >> (CASE h.kind WHEN 'exec' THEN 0 WHEN 'forward' THEN 1"
        "                 WHEN 'func' THEN 2 ELSE 31 END)) & 1) = 1"
        "   AND NOT EXISTS (SELECT 1 FROM deliveries p"
        "        WHERE p.webhook_id = d.webhook_id AND p.handler_id = d.handler_id"
        "          AND p.event_seq < d.event_seq"
        "          AND p.status IN ('pending', 'running', 'failed'))"
        " ORDER BY d.event_seq, d.generation LIMIT ?3",
    [Q_DELIVERY_MARK_RUNNING] = "UPDATE deliveries SET status = 'running', claimed_until = ?2,"
                                " attempts = attempts + 1, updated_at = ?3 WHERE id = ?1",
    [Q_DELIVERY_FINISH] = "UPDATE deliveries SET status = ?2, next_attempt_at = ?3,"
                          " last_error = ?4, updated_at = ?5, claimed_until = 0 WHERE id = ?1",
    [Q_DELIVERY_STATUS] = "SELECT status FROM deliveries WHERE id = ?",
    [Q_DELIVERY_RETRY] = "UPDATE deliveries SET status = 'pending', attempts = 0,"
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
    [Q_SESSION_GET] = "SELECT id_hash, user, csrf, expires_at FROM sessions WHERE id_hash = ?",
    [Q_SESSION_DELETE] = "DELETE FROM sessions WHERE id_hash = ?",
};

/* The store handle. `base` must stay first (store* <-> sq* casts). */
typedef struct sq {
	store base;
	sqlite3 *db;              /* the one connection; used only under `mu` */
	pthread_mutex_t mu;       /* serialises every operation */
	sqlite3_stmt *q[Q_COUNT]; /* lazily prepared, persistent; reset after each use */
	sqlite_ckpt *ckpt;        /* background WAL checkpoints (file databases only) */
} sq;

static sq *sq_of(store *st)
{
	return (sq *)st;
}

/* An error from the database: TH_ESTORE with "what: sqlite message". */
static int sq_fail(sq *s, th_error *err, const char *what)
{
	return th_err(err, TH_ESTORE, "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Was the last error a uniqueness (or primary key) violation? */
static bool sq_is_unique(sq *s)
{
	int x = sqlite3_extended_errcode(s->db);
	return x == SQLITE_CONSTRAINT_UNIQUE || x == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* The cached statement @id, prepared on first use. Returns NULL (with @err
 * filled) when preparing fails. The caller must sq_reset() it after use. */
static sqlite3_stmt *sq_stmt(sq *s, enum sq_q id, th_error *err)
{
	if (!s->q[id]) {
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
static void sq_reset(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

/* Run a cached statement that returns no rows (BEGIN, COMMIT, ...). */
static int sq_run(sq *s, enum sq_q id, const char *what, th_error *err)
{
	sqlite3_stmt *st = sq_stmt(s, id, err);
	if (!st)
		return TH_ESTORE;
	int rc = sqlite3_step(st);
	int ret = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : sq_fail(s, err, what);
	sq_reset(st);
	return ret;
}

/* Roll back the open transaction, if any, keeping the first error in @err. */
static void sq_rollback(sq *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)sq_run(s, Q_ROLLBACK, "rollback", NULL);
}

/* ---- binding and reading -------------------------------------------------------- */

/* Sequential parameter binding: the first error sticks in `rc`. */
typedef struct sq_bind {
	sqlite3_stmt *st;
	int i;
	int rc;
} sq_bind;

static void bind_text(sq_bind *b, const char *v)
{
	int i = ++b->i;
	if (b->rc == SQLITE_OK)
		b->rc = v ? sqlite3_bind_text(b->st, i, v, -1, SQLITE_STATIC)
		          : sqlite3_bind_null(b->st, i);
}

static void bind_i64(sq_bind *b, int64_t v)
{
	int i = ++b->i;
	if (b->rc == SQLITE_OK)
		b->rc = sqlite3_bind_int64(b->st, i, v);
}

/* Sequential column reading: strings are copied (the caller owns them);
 * `oom` records a failed copy. */
typedef struct sq_row {
	sqlite3_stmt *st;
	int col;
	bool oom;
} sq_row;

static char *row_str(sq_row *r)
{
	int c = r->col++;
	if (sqlite3_column_type(r->st, c) == SQLITE_NULL)
		return NULL;
	const unsigned char *t = sqlite3_column_text(r->st, c);
	int n = sqlite3_column_bytes(r->st, c);
	char *v = t ? str_ndup((const char *)t, (size_t)n) : NULL;
	if (!v)
		r->oom = true;
	return v;
}

static int64_t row_i64(sq_row *r)
{
	return sqlite3_column_int64(r->st, r->col++);
}

/* Grow @*arr (of @elem-sized items) so it can hold @n + 1; zeroes new room. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return TH_ENOMEM;
	memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = p;
	*cap = ncap;
	return 0;
}

static void read_webhook(sq_row *r, webhook *w)
{
	char *state;
	w->id = row_str(r);
	w->trello_id = row_str(r);
	w->id_model = row_str(r);
	w->model_type = row_str(r);
	w->model_name = row_str(r);
	w->description = row_str(r);
	w->callback_url = row_str(r);
	w->token = row_str(r);
	state = row_str(r);
	if (!state || webhook_state_parse(state, &w->state) != 0)
		w->state = WEBHOOK_PENDING;
	free(state);
	w->active = row_i64(r) != 0;
	w->consecutive_failures = (int)row_i64(r);
	w->first_consecutive_fail_at = row_i64(r);
	w->created_at = row_i64(r);
	w->last_event_at = row_i64(r);
	w->event_count = row_i64(r);
}

static void read_token(sq_row *r, token *t)
{
	t->token = row_str(r);
	t->member = row_str(r);
	t->expires_at = row_i64(r);
	char *state = row_str(r);
	if (!state || token_state_parse(state, &t->state) != 0)
		t->state = TOKEN_UNCHECKED;
	free(state);
	t->checked_at = row_i64(r);
	t->created_at = row_i64(r);
}

/* Reads EVENT_COLS (and, when @with_payload, the payload after them). */
static int64_t read_event(sq_row *r, event *ev, bool with_payload)
{
	int64_t seq = row_i64(r);
	ev->id = row_str(r);
	ev->webhook_id = row_str(r);
	ev->action_id = row_str(r);
	ev->action_type = row_str(r);
	ev->action_date = row_str(r);
	ev->model_id = row_str(r);
	ev->board_id = row_str(r);
	ev->board_name = row_str(r);
	ev->list_id = row_str(r);
	ev->list_name = row_str(r);
	ev->card_id = row_str(r);
	ev->card_name = row_str(r);
	ev->member = row_str(r);
	ev->summary = row_str(r);
	ev->received_at = row_i64(r);
	if (with_payload) {
		/* The payload is a BLOB: any bytes, kept exactly; we add a NUL after it. */
		int c = r->col++;
		const void *p = sqlite3_column_blob(r->st, c);
		size_t n = (size_t)sqlite3_column_bytes(r->st, c);
		ev->payload = malloc(n + 1);
		if (!ev->payload) {
			r->oom = true;
		} else {
			if (n)
				memcpy(ev->payload, p, n);
			ev->payload[n] = '\0';
			ev->payload_len = n;
		}
	}
	return seq;
}

static void read_handler(sq_row *r, handler *h)
{
	h->id = row_str(r);
	char *kind = row_str(r);
	if (!kind || handler_kind_parse(kind, &h->kind) != 0)
		h->kind = HANDLER_EXEC;
	free(kind);
	h->target = row_str(r);
	h->on = row_str(r);
	h->model = row_str(r);
	h->secret = row_str(r);
	h->enabled = row_i64(r) != 0;
	h->created_at = row_i64(r);
}

static void read_delivery(sq_row *r, delivery *d)
{
	d->id = row_str(r);
	d->event_id = row_str(r);
	d->handler_id = row_str(r);
	char *status = row_str(r);
	if (!status || delivery_status_parse(status, &d->status) != 0)
		d->status = DELIVERY_PENDING;
	free(status);
	d->attempts = (int)row_i64(r);
	d->next_attempt_at = row_i64(r);
	d->last_error = row_str(r);
	d->updated_at = row_i64(r);
	d->claimed_until = row_i64(r);
}

/* ---- one row, all rows ---------------------------------------------------------------- */

/* A reader fills one element from the current row; a clearer frees what a
 * reader filled (element types differ: webhook, token, event, ...). */
typedef void (*sq_reader)(sq_row *r, void *elem);
typedef void (*sq_clearer)(void *elem);

static void rd_webhook(sq_row *r, void *e)
{
	read_webhook(r, e);
}
static void rd_token(sq_row *r, void *e)
{
	read_token(r, e);
}
static void rd_handler(sq_row *r, void *e)
{
	read_handler(r, e);
}
static void rd_delivery(sq_row *r, void *e)
{
	read_delivery(r, e);
}
static void rd_event_full(sq_row *r, void *e)
{
	(void)read_event(r, e, true);
}
static void rd_event_row(sq_row *r, void *e)
{
	event_row *er = e;
	er->seq = read_event(r, &er->ev, false);
}
static void rd_str(sq_row *r, void *e)
{
	*(char **)e = row_str(r);
}
static void rd_session(sq_row *r, void *e)
{
	user_session *us = e;
	us->id_hash = row_str(r);
	us->user = row_str(r);
	us->csrf = row_str(r);
	us->expires_at = row_i64(r);
}

static void clr_webhook(void *e)
{
	webhook_clear(e);
}
static void clr_token(void *e)
{
	token_clear(e);
}
static void clr_handler(void *e)
{
	handler_clear(e);
}
static void clr_delivery(void *e)
{
	delivery_clear(e);
}
static void clr_event(void *e)
{
	store_event_clear(e);
}
static void clr_event_row(void *e)
{
	store_event_clear(&((event_row *)e)->ev);
}
static void clr_str(void *e)
{
	free(*(char **)e);
}
static void clr_session(void *e)
{
	user_session_clear(e);
}

/* Run cached statement @id with one or two text keys (@k2 NULL: one) and read
 * its first row into @out (@elem bytes, zeroed first) with @rd. No row:
 * TH_ENOTFOUND with the message @nf. Called with the lock held. */
static int sq_get_one_locked(sq *s, enum sq_q id, const char *k1, const char *k2, sq_reader rd,
                             size_t elem, void *out, sq_clearer clr, const char *nf,
                             const char *what, th_error *err)
{
	memset(out, 0, elem);
	int ret = 0;
	sqlite3_stmt *q = sq_stmt(s, id, err);
	if (!q)
		return TH_ESTORE;
	sq_bind b = {q, 0, SQLITE_OK};
	bind_text(&b, k1);
	if (k2)
		bind_text(&b, k2);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	if (rc == SQLITE_DONE) {
		ret = th_err(err, TH_ENOTFOUND, "%s", nf);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = sq_fail(s, err, what);
		goto out;
	}
	sq_row r = {q, 0, false};
	rd(&r, out);
	if (r.oom) {
		clr(out);
		ret = th_err(err, TH_ENOMEM, "out of memory");
	}
out:
	sq_reset(q);
	return ret;
}

/* sq_get_one_locked() under the lock. */
static int sq_get_one(sq *s, enum sq_q id, const char *k1, const char *k2, sq_reader rd,
                      size_t elem, void *out, sq_clearer clr, const char *nf, const char *what,
                      th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = sq_get_one_locked(s, id, k1, k2, rd, elem, out, clr, nf, what, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* Step @q to the end, reading every row into a new array of @elem-sized
 * items with @rd. On success the array (NULL when empty) and its count are
 * the caller's; on failure (TH_ENOMEM, or "what: message") everything read
 * is freed and *out is NULL. Does not reset or finalize @q. */
static int sq_collect(sq *s, sqlite3_stmt *q, sq_reader rd, size_t elem, sq_clearer clr, void **out,
                      size_t *n, const char *what, th_error *err)
{
	char *a = NULL;
	size_t cnt = 0, cap = 0;
	int ret = 0, rc;
	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (grow((void **)&a, &cap, cnt, elem) != 0) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
		sq_row r = {q, 0, false};
		rd(&r, a + cnt++ * elem);
		if (r.oom) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		ret = sq_fail(s, err, what);
out:
	if (ret != 0) {
		for (size_t i = 0; i < cnt; i++)
			clr(a + i * elem);
		free(a);
	} else {
		*out = a;
		*n = cnt;
	}
	return ret;
}

/* Every row of cached statement @id (no parameters), read with @rd; see
 * sq_collect(). Called with the lock held. */
static int sq_list_locked(sq *s, enum sq_q id, sq_reader rd, size_t elem, sq_clearer clr,
                          void **out, size_t *n, const char *what, th_error *err)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = sq_stmt(s, id, err);
	if (!q)
		return TH_ESTORE;
	int ret = sq_collect(s, q, rd, elem, clr, out, n, what, err);
	sq_reset(q);
	return ret;
}

/* sq_list_locked() under the lock. */
static int sq_list(sq *s, enum sq_q id, sq_reader rd, size_t elem, sq_clearer clr, void **out,
                   size_t *n, const char *what, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = sq_list_locked(s, id, rd, elem, clr, out, n, what, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* ---- one command ---------------------------------------------------------------------- */

/* Binds a command's parameters from @arg. */
typedef void (*sq_binder)(sq_bind *b, const void *arg);
/* Turns a uniqueness violation of @arg into a TH_EEXISTS message. */
typedef int (*sq_unique_fn)(sq *s, const void *arg, th_error *err);

/* Run cached command @id (no rows) under the lock, its parameters bound by
 * @bind from @arg. 0 with *@changes (optional) the rows it changed; else
 * @on_unique's error for a uniqueness violation (when given) or TH_ESTORE
 * "what: message". */
static int sq_command(sq *s, enum sq_q id, sq_binder bind, const void *arg, const char *what,
                      sq_unique_fn on_unique, int *changes, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = 0;
	sqlite3_stmt *q = sq_stmt(s, id, err);
	if (!q) {
		ret = TH_ESTORE;
		goto out;
	}
	sq_bind b = {q, 0, SQLITE_OK};
	bind(&b, arg);
	if (b.rc != SQLITE_OK || sqlite3_step(q) != SQLITE_DONE) {
		ret = on_unique && sq_is_unique(s) ? on_unique(s, arg, err) : sq_fail(s, err, what);
		goto out;
	}
	if (changes)
		*changes = sqlite3_changes(s->db);
out:
	sq_reset(q);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static void bind_key(sq_bind *b, const void *arg)
{
	bind_text(b, arg);
}

/* A transaction body: runs with the lock held between BEGIN and COMMIT. */
typedef int (*sq_txn_body)(sq *s, void *ctx, th_error *err);

/* Run @body with @ctx in one write transaction under the lock; any failure
 * (its own or the commit's) rolls back. */
static int sq_txn(sq *s, sq_txn_body body, void *ctx, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int ret = sq_run(s, Q_BEGIN, "starting a transaction", err);
	if (ret == 0) {
		ret = body(s, ctx, err);
		if (ret == 0)
			ret = sq_run(s, Q_COMMIT, "commit", err);
		if (ret != 0)
			sq_rollback(s);
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* Bind the text @key to @q, step it once and reset it; returns the step's
 * result code. For commands: a row's columns are gone after the reset. */
static int sq_step_key(sqlite3_stmt *q, const char *key)
{
	sq_bind b = {q, 0, SQLITE_OK};
	bind_text(&b, key);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	sq_reset(q);
	return rc;
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
	if (sqlite3_step(st) != SQLITE_ROW) {
		ret = sq_fail(s, err, "reading the schema version");
		goto out;
	}
	*out = sqlite3_column_int(st, 0);
out:
	sqlite3_finalize(st);
	return ret;
}

/* Apply every migration the database lacks, each in its own transaction, and
 * report the resulting version. Idempotent; safe against a second process
 * migrating at the same time (the version is re-read under the write lock). */
static int sq_migrate_locked(sq *s, int *out_version, th_error *err)
{
	const int latest = (int)TH_ARRAY_LEN(sqlite_migrations);
	int ret = 0, version = 0;
	char *emsg = NULL;
	if (sqlite3_exec(s->db,
	                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                 " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
	                 NULL, NULL, &emsg) != SQLITE_OK) {
		ret = th_err(err, TH_ESTORE, "creating schema_migrations: %s", emsg ? emsg : "?");
		goto out;
	}
	for (;;) {
		if ((ret = sq_run(s, Q_BEGIN, "starting a migration", err)) != 0)
			goto out;
		if ((ret = sq_version(s, &version, err)) != 0)
			goto fail;
		if (version > latest) {
			ret =
			    th_err(err, TH_ESTORE,
			           "the database schema is version %d, newer than this trellohook "
			           "knows (%d); upgrade trellohook",
			           version, latest);
			goto fail;
		}
		if (version == latest) {
			if ((ret = sq_run(s, Q_COMMIT, "commit", err)) != 0)
				goto fail;
			break;
		}
		if (sqlite3_exec(s->db, sqlite_migrations[version], NULL, NULL, &emsg) !=
		    SQLITE_OK) {
			ret = th_err(err, TH_ESTORE, "migration %d: %s", version + 1,
			             emsg ? emsg : "?");
			goto fail;
		}
		char sql[128];
		str_printf(sql, sizeof sql,
		           "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)",
		           version + 1, (long long)time_now_ms());
		if (sqlite3_exec(s->db, sql, NULL, NULL, &emsg) != SQLITE_OK) {
			ret = th_err(err, TH_ESTORE, "recording migration %d: %s", version + 1,
			             emsg ? emsg : "?");
			goto fail;
		}
		if ((ret = sq_run(s, Q_COMMIT, "committing a migration", err)) != 0)
			goto fail;
	}
	if (out_version)
		*out_version = version;
	goto out;
fail:
	sq_rollback(s);
out:
	sqlite3_free(emsg);
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

static int sq_migrate(store *st, int *out_version, th_error *err)
{
	sq *s = sq_of(st);
	pthread_mutex_lock(&s->mu);
	int ret = sq_migrate_locked(s, out_version, err);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sq_ping(store *st, th_error *err)
{
	sq *s = sq_of(st);
	pthread_mutex_lock(&s->mu);
	char *emsg = NULL;
	int ret = 0;
	if (sqlite3_exec(s->db, "SELECT 1", NULL, NULL, &emsg) != SQLITE_OK)
		ret = th_err(err, TH_ESTORE, "ping: %s", emsg ? emsg : "?");
	sqlite3_free(emsg);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* ---- webhooks ------------------------------------------------------------------------ */

static int webhook_unique_err(sq *s, const void *arg, th_error *err)
{
	return store_webhook_exists(arg, strstr(sqlite3_errmsg(s->db), "webhooks.id_model") != NULL,
	                            err);
}

/* The columns both webhook statements bind, in order; created_at only on insert. */
static void bind_webhook(sq_bind *b, const webhook *w, bool insert)
{
	bind_text(b, w->id);
	bind_text(b, w->trello_id);
	bind_text(b, w->id_model);
	bind_text(b, w->model_type);
	bind_text(b, w->model_name);
	bind_text(b, w->description);
	bind_text(b, w->callback_url);
	bind_text(b, w->token);
	bind_text(b, webhook_state_name(w->state));
	bind_i64(b, w->active);
	bind_i64(b, w->consecutive_failures);
	bind_i64(b, w->first_consecutive_fail_at);
	if (insert)
		bind_i64(b, w->created_at ? w->created_at : time_now_ms());
	bind_i64(b, w->last_event_at);
}

static void bind_webhook_insert(sq_bind *b, const void *arg)
{
	bind_webhook(b, arg, true);
}

static void bind_webhook_update(sq_bind *b, const void *arg)
{
	bind_webhook(b, arg, false);
}

static int sq_webhook_insert(store *st, const webhook *w, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	return sq_command(sq_of(st), Q_WEBHOOK_INSERT, bind_webhook_insert, w, "adding a webhook",
	                  webhook_unique_err, NULL, err);
}

static int sq_webhook_update(store *st, const webhook *w, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	int changes = 0;
	int ret = sq_command(sq_of(st), Q_WEBHOOK_UPDATE, bind_webhook_update, w,
	                     "updating a webhook", webhook_unique_err, &changes, err);
	if (ret == 0 && changes == 0)
		ret = store_not_found(err, "webhook", w->id);
	return ret;
}

static int sq_webhook_get(store *st, const char *id, webhook *out, th_error *err)
{
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "webhook", id);
	return sq_get_one(sq_of(st), Q_WEBHOOK_GET, id, NULL, rd_webhook, sizeof *out, out,
	                  clr_webhook, nf, "reading a webhook", err);
}

static int sq_webhook_find(store *st, const char *id_model, const char *tok, webhook *out,
                           th_error *err)
{
	char nf[160];
	str_printf(nf, sizeof nf, "no webhook for model %s with this token",
	           id_model ? id_model : "(null)");
	if (!tok) {
		memset(out, 0, sizeof *out);
		return th_err(err, TH_ENOTFOUND, "%s", nf);
	}
	return sq_get_one(sq_of(st), Q_WEBHOOK_FIND, id_model, tok, rd_webhook, sizeof *out, out,
	                  clr_webhook, nf, "reading a webhook", err);
}

static int sq_webhook_list(store *st, webhook **out, size_t *n, th_error *err)
{
	return sq_list(sq_of(st), Q_WEBHOOK_LIST, rd_webhook, sizeof **out, clr_webhook,
	               (void **)out, n, "listing webhooks", err);
}

/* DELETE by one text key; TH_ENOTFOUND "no <what> with <keyname> <key>" when
 * nothing was deleted (@show_key false hides the key, e.g. for tokens). */
static int delete_one(sq *s, enum sq_q id, const char *key, const char *what, bool show_key,
                      th_error *err)
{
	int changes = 0;
	int ret = sq_command(s, id, bind_key, key, "deleting", NULL, &changes, err);
	if (ret == 0 && changes == 0)
		ret = store_delete_not_found(err, what, key, show_key);
	return ret;
}

/* Deleting a webhook keeps its events (no foreign key; see the top comment). */
static int sq_webhook_delete(store *st, const char *id, th_error *err)
{
	return delete_one(sq_of(st), Q_WEBHOOK_DELETE, id, "webhook", true, err);
}

/* ---- tokens --------------------------------------------------------------------------- */

static void bind_token(sq_bind *b, const void *arg)
{
	const token *t = arg;
	bind_text(b, t->token);
	bind_text(b, t->member);
	bind_i64(b, t->expires_at);
	bind_text(b, token_state_name(t->state));
	bind_i64(b, t->checked_at);
	bind_i64(b, t->created_at ? t->created_at : time_now_ms());
}

static int sq_token_put(store *st, const token *t, th_error *err)
{
	if (store_check_token(t, err) != 0)
		return TH_EINVAL;
	return sq_command(sq_of(st), Q_TOKEN_PUT, bind_token, t, "storing a token", NULL, NULL,
	                  err);
}

static int sq_token_get(store *st, const char *tok, token *out, th_error *err)
{
	return sq_get_one(sq_of(st), Q_TOKEN_GET, tok, NULL, rd_token, sizeof *out, out, clr_token,
	                  "no such token stored", "reading a token", err);
}

static int sq_token_list(store *st, token **out, size_t *n, th_error *err)
{
	return sq_list(sq_of(st), Q_TOKEN_LIST, rd_token, sizeof **out, clr_token, (void **)out, n,
	               "listing tokens", err);
}

static int sq_token_delete(store *st, const char *tok, th_error *err)
{
	return delete_one(sq_of(st), Q_TOKEN_DELETE, tok, "token", false, err);
}

/* ---- handlers (loading the enabled ones for matching) ------------------------------- */

/* All enabled handlers, for matching new events. Called with the lock held. */
static int load_enabled_handlers(sq *s, handler **out, size_t *n, th_error *err)
{
	return sq_list_locked(s, Q_HANDLERS_ENABLED, rd_handler, sizeof **out, clr_handler,
	                      (void **)out, n, "loading handlers", err);
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
	bind_text(&b, id);
	bind_text(&b, x->ev->id);
	bind_text(&b, h->id);
	bind_i64(&b, x->generation);
	bind_i64(&b, x->now);
	bind_text(&b, x->ev->webhook_id);
	bind_i64(&b, x->seq);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(x->q) : b.rc;
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

/* Store one event inside the batch transaction. *@is_new tells whether it was
 * inserted (false: a duplicate of (webhook_id, action_id)). */
static int put_one(sq *s, const event *ev, const handler *hs, size_t nh, int64_t now, bool *is_new,
                   th_error *err)
{
	*is_new = false;
	sqlite3_stmt *q = sq_stmt(s, Q_EVENT_INSERT, err);
	if (!q)
		return TH_ESTORE;
	sq_bind b = {q, 0, SQLITE_OK};
	bind_text(&b, ev->id);
	bind_text(&b, ev->webhook_id);
	bind_text(&b, ev->action_id);
	bind_text(&b, ev->action_type);
	bind_text(&b, ev->action_date);
	bind_text(&b, ev->model_id);
	bind_text(&b, ev->board_id);
	bind_text(&b, ev->board_name);
	bind_text(&b, ev->list_id);
	bind_text(&b, ev->list_name);
	bind_text(&b, ev->card_id);
	bind_text(&b, ev->card_name);
	bind_text(&b, ev->member);
	bind_text(&b, ev->summary);
	/* the body exactly as received: a BLOB, never re-encoded */
	int i = ++b.i;
	if (b.rc == SQLITE_OK)
		b.rc = sqlite3_bind_blob64(q, i, ev->payload_len ? (const void *)ev->payload : "",
		                           ev->payload_len, SQLITE_STATIC);
	bind_i64(&b, ev->received_at);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	sq_reset(q);
	if (rc != SQLITE_DONE)
		return sq_fail(s, err, "storing an event");
	if (sqlite3_changes(s->db) == 0)
		return 0;
	*is_new = true;
	int64_t seq = sqlite3_last_insert_rowid(s->db);
	return insert_deliveries(s, ev, seq, 0, hs, nh, now, NULL, err);
}

static int sq_events_put(store *st, event **evs, size_t n, enum store_put *results, th_error *err)
{
	sq *s = sq_of(st);
	int ret = 0;
	handler *hs = NULL;
	size_t nh = 0;
	/* which ids/received_at we filled in, to undo for events not stored */
	unsigned char *filled = calloc(n ? n : 1, 1);
	for (size_t i = 0; i < n; i++)
		results[i] = STORE_PUT_FAILED;
	if (n == 0) {
		free(filled);
		return 0;
	}
	if (!filled)
		return th_err(err, TH_ENOMEM, "out of memory");
	int64_t now = time_now_ms();
	if ((ret = store_events_fill(evs, n, now, filled, err)) != 0)
		goto out;

	pthread_mutex_lock(&s->mu);
	if ((ret = sq_run(s, Q_BEGIN, "starting a transaction", err)) != 0)
		goto unlock;
	if ((ret = load_enabled_handlers(s, &hs, &nh, err)) != 0)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		event *ev = evs[i];
		if (!store_event_storable(ev))
			continue;
		bool is_new;
		if ((ret = put_one(s, ev, hs, nh, now, &is_new, err)) != 0)
			goto rollback;
		results[i] = is_new ? STORE_PUT_NEW : STORE_PUT_DUPLICATE;
	}
	/* last_event_at: one UPDATE per webhook with its latest new event */
	for (size_t i = 0; i < n; i++) {
		int64_t latest;
		if (!store_batch_webhook_latest(evs, results, n, i, &latest))
			continue;
		sqlite3_stmt *q = sq_stmt(s, Q_WEBHOOK_TOUCH, err);
		if (!q) {
			ret = TH_ESTORE;
			goto rollback;
		}
		sq_bind b = {q, 0, SQLITE_OK};
		bind_text(&b, evs[i]->webhook_id);
		bind_i64(&b, latest);
		int rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
		sq_reset(q);
		if (rc != SQLITE_DONE) {
			ret = sq_fail(s, err, "updating the webhook's last event time");
			goto rollback;
		}
	}
	if ((ret = sq_run(s, Q_COMMIT, "committing events", err)) != 0)
		goto rollback;
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
	handler_list_free(hs, nh);
	return ret;
}

static int sq_event_get(store *st, const char *id, event *out, th_error *err)
{
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "event", id);
	return sq_get_one(sq_of(st), Q_EVENT_GET, id, NULL, rd_event_full, sizeof *out, out,
	                  clr_event, nf, "reading an event", err);
}

/* Listing: newest first (or oldest first), without payloads. The text filter
 * is LIKE, which folds case for ASCII letters only. */
static int sq_event_list(store *st, const event_query *qy, event_row **out, size_t *n,
                         th_error *err)
{
	sq *s = sq_of(st);
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q = NULL;
	buf sql, pat;
	buf_init(&sql, 4096);
	buf_init(&pat, 4096);
	int ret = 0, rc;
	size_t limit = store_list_limit(qy->limit, STORE_EVENT_LIST_DEFAULT);
	int e = buf_puts(&sql, "SELECT " EVENT_COLS " FROM events WHERE 1 = 1");
	if (!e && qy->webhook_id)
		e = buf_puts(&sql, " AND webhook_id = :webhook");
	if (!e && qy->action_type)
		e = buf_puts(&sql, " AND action_type = :type");
	if (!e && qy->text && *qy->text) {
		e = buf_puts(&sql, " AND summary LIKE :text ESCAPE '\\'");
		if (!e)
			e = store_like_pattern(&pat, qy->text);
	}
	if (!e && qy->after_seq > 0)
		e = buf_puts(&sql, " AND seq > :after");
	if (!e && qy->before_seq > 0)
		e = buf_puts(&sql, " AND seq < :before");
	if (!e)
		e = buf_puts(&sql, qy->oldest_first ? " ORDER BY seq ASC" : " ORDER BY seq DESC");
	if (!e)
		e = buf_puts(&sql, " LIMIT :limit");
	if (e) {
		ret = th_err(err, TH_ETOOBIG, "event filter text is too long");
		goto done;
	}
	pthread_mutex_lock(&s->mu);
	if (sqlite3_prepare_v2(s->db, sql.data, -1, &q, NULL) != SQLITE_OK) {
		ret = sq_fail(s, err, "listing events");
		goto out;
	}
	rc = SQLITE_OK;
	if (qy->webhook_id)
		rc |= sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, ":webhook"),
		                        qy->webhook_id, -1, SQLITE_STATIC);
	if (qy->action_type)
		rc |= sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, ":type"),
		                        qy->action_type, -1, SQLITE_STATIC);
	if (qy->text && *qy->text)
		rc |= sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, ":text"), pat.data,
		                        (int)pat.len, SQLITE_STATIC);
	if (qy->after_seq > 0)
		rc |=
		    sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":after"), qy->after_seq);
	if (qy->before_seq > 0)
		rc |= sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":before"),
		                         qy->before_seq);
	rc |= sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":limit"), (int64_t)limit);
	if (rc != SQLITE_OK) {
		ret = sq_fail(s, err, "listing events");
		goto out;
	}
	ret = sq_collect(s, q, rd_event_row, sizeof **out, clr_event_row, (void **)out, n,
	                 "listing events", err);
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
done:
	buf_free(&sql);
	buf_free(&pat);
	return ret;
}

/* ---- handlers --------------------------------------------------------------------------- */

static void bind_handler(sq_bind *b, const void *arg)
{
	const handler *h = arg;
	bind_text(b, h->id);
	bind_text(b, handler_kind_name(h->kind));
	bind_text(b, h->target);
	bind_text(b, h->on);
	bind_text(b, h->model);
	bind_text(b, h->secret);
	bind_i64(b, h->enabled);
	bind_i64(b, h->created_at ? h->created_at : time_now_ms());
}

static int handler_unique_err(sq *s, const void *arg, th_error *err)
{
	(void)s;
	return th_err(err, TH_EEXISTS, "a handler with id %s already exists",
	              ((const handler *)arg)->id);
}

static int sq_handler_insert(store *st, const handler *h, th_error *err)
{
	if (store_check_handler(h, err) != 0)
		return TH_EINVAL;
	return sq_command(sq_of(st), Q_HANDLER_INSERT, bind_handler, h, "adding a handler",
	                  handler_unique_err, NULL, err);
}

static int sq_handler_get(store *st, const char *id, handler *out, th_error *err)
{
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "handler", id);
	return sq_get_one(sq_of(st), Q_HANDLER_GET, id, NULL, rd_handler, sizeof *out, out,
	                  clr_handler, nf, "reading a handler", err);
}

static int sq_handler_list(store *st, handler **out, size_t *n, th_error *err)
{
	return sq_list(sq_of(st), Q_HANDLER_LIST, rd_handler, sizeof **out, clr_handler,
	               (void **)out, n, "listing handlers", err);
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

static int sq_handler_delete(store *st, const char *id, th_error *err)
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
	bind_text(b, x->id);
	bind_i64(b, x->enabled);
}

static int sq_handler_set_enabled(store *st, const char *id, bool enabled, th_error *err)
{
	sq_enable x = {id, enabled};
	int changes = 0;
	int ret = sq_command(sq_of(st), Q_HANDLER_SET_ENABLED, bind_enable, &x,
	                     "updating a handler", NULL, &changes, err);
	if (ret == 0 && changes == 0)
		ret = store_not_found(err, "handler", id);
	return ret;
}

/* ---- deliveries ------------------------------------------------------------------------- */

/* Newest first (by insertion); optional status and event filters. */
static int sq_delivery_list(store *st, const char *status, const char *event_id, size_t limit,
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
	rc = sqlite3_bind_int64(q, sqlite3_bind_parameter_index(q, ":limit"), (int64_t)limit);
	if (status)
		rc |= sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, ":status"), status, -1,
		                        SQLITE_STATIC);
	if (event_id)
		rc |= sqlite3_bind_text(q, sqlite3_bind_parameter_index(q, ":event"), event_id, -1,
		                        SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		ret = sq_fail(s, err, "listing deliveries");
		goto out;
	}
	ret = sq_collect(s, q, rd_delivery, sizeof **out, clr_delivery, (void **)out, n,
	                 "listing deliveries", err);
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&s->mu);
	return ret;
}

static int sq_delivery_get(store *st, const char *id, delivery *out, th_error *err)
{
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "delivery", id);
	return sq_get_one(sq_of(st), Q_DELIVERY_GET, id, NULL, rd_delivery, sizeof *out, out,
	                  clr_delivery, nf, "reading a delivery", err);
}

/* Claim due deliveries in one transaction (see store.h for the rules).
 * Deliveries of a disabled handler wait (they are not claimed). The returned
 * rows show the claimed state: running, attempts incremented, the lease end. */
static int sq_delivery_claim(store *st, unsigned kinds, size_t max, int64_t lease_ms,
                             delivery **out, size_t *n, th_error *err)
{
	sq *s = sq_of(st);
	*out = NULL;
	*n = 0;
	delivery *a = NULL;
	size_t cnt = 0;
	int ret = 0, rc;
	if (max == 0)
		return 0;
	max = store_list_limit(max, STORE_LIST_LIMIT_MAX);
	int64_t now = time_now_ms();
	pthread_mutex_lock(&s->mu);
	if ((ret = sq_run(s, Q_BEGIN, "starting a transaction", err)) != 0)
		goto out;
	sqlite3_stmt *q = sq_stmt(s, Q_DELIVERY_DUE, err);
	if (!q) {
		ret = TH_ESTORE;
		goto fail;
	}
	sq_bind b = {q, 0, SQLITE_OK};
	bind_i64(&b, now);
	bind_i64(&b, (int64_t)(kinds & 0x7fffffffu));
	bind_i64(&b, (int64_t)max);
	if (b.rc != SQLITE_OK) {
		sq_reset(q);
		ret = sq_fail(s, err, "claiming deliveries");
		goto fail;
	}
	ret = sq_collect(s, q, rd_delivery, sizeof *a, clr_delivery, (void **)&a, &cnt,
	                 "claiming deliveries", err);
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
		bind_text(&b, d->id);
		bind_i64(&b, d->claimed_until);
		bind_i64(&b, now);
		rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
		sq_reset(q);
		if (rc != SQLITE_DONE) {
			ret = sq_fail(s, err, "claiming a delivery");
			goto fail;
		}
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
	bind_text(b, x->id);
	bind_text(b, delivery_status_name(x->status));
	bind_i64(b, x->next_attempt_at);
	bind_text(b, x->last_error);
	bind_i64(b, now);
}

typedef struct sq_finish_many {
	const delivery_outcome *outs;
	size_t n;
	size_t changed;
} sq_finish_many;

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
		int rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
		if (rc == SQLITE_DONE)
			m->changed += (size_t)sqlite3_changes(s->db);
		sq_reset(q);
		if (rc != SQLITE_DONE)
			return sq_fail(s, err, "recording a delivery's outcome");
	}
	return 0;
}

static int sq_delivery_finish_many(store *st, const delivery_outcome *outs, size_t n,
                                   size_t *changed, th_error *err)
{
	if (changed)
		*changed = 0;
	for (size_t i = 0; i < n; i++)
		if (store_check_finish(outs[i].status, err) != 0)
			return TH_EINVAL;
	if (n == 0)
		return 0;
	sq_finish_many m = {outs, n, 0};
	int ret = sq_txn(sq_of(st), tx_finish_many, &m, err);
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
	bind_text(&b, id);
	int rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
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
	if (!(q = sq_stmt(s, Q_DELIVERY_RETRY, err)))
		return TH_ESTORE;
	b = (sq_bind){q, 0, SQLITE_OK};
	bind_text(&b, id);
	bind_i64(&b, time_now_ms());
	rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	sq_reset(q);
	if (rc != SQLITE_DONE)
		return sq_fail(s, err, "retrying a delivery");
	return 0;
}

static int sq_delivery_retry(store *st, const char *id, th_error *err)
{
	return sq_txn(sq_of(st), tx_delivery_retry, (void *)id, err);
}

/* A new generation of deliveries of a stored event, one per matching enabled
 * handler, due now; in one transaction. */
static int sq_event_replay(store *st, const char *event_id, size_t *out_n, th_error *err)
{
	sq *s = sq_of(st);
	event ev = {0};
	handler *hs = NULL;
	size_t nh = 0, made = 0;
	int64_t seq = 0, generation = 0;
	int ret = 0, rc;
	pthread_mutex_lock(&s->mu);
	if ((ret = sq_run(s, Q_BEGIN, "starting a transaction", err)) != 0)
		goto out;
	sqlite3_stmt *q = sq_stmt(s, Q_EVENT_FOR_REPLAY, err);
	if (!q) {
		ret = TH_ESTORE;
		goto fail;
	}
	sq_bind b = {q, 0, SQLITE_OK};
	bind_text(&b, event_id);
	rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	if (rc == SQLITE_ROW) {
		sq_row r = {q, 0, false};
		seq = read_event(&r, &ev, true);
		if (r.oom)
			ret = th_err(err, TH_ENOMEM, "out of memory");
	} else if (rc == SQLITE_DONE) {
		ret = store_not_found(err, "event", event_id);
	} else {
		ret = sq_fail(s, err, "reading an event");
	}
	sq_reset(q);
	if (ret != 0)
		goto fail;
	q = sq_stmt(s, Q_NEXT_GENERATION, err);
	if (!q) {
		ret = TH_ESTORE;
		goto fail;
	}
	b = (sq_bind){q, 0, SQLITE_OK};
	bind_text(&b, event_id);
	rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	if (rc == SQLITE_ROW)
		generation = sqlite3_column_int64(q, 0);
	else
		ret = sq_fail(s, err, "reading delivery generations");
	sq_reset(q);
	if (ret != 0)
		goto fail;
	if ((ret = load_enabled_handlers(s, &hs, &nh, err)) != 0)
		goto fail;
	if ((ret = insert_deliveries(s, &ev, seq, generation, hs, nh, time_now_ms(), &made, err)) !=
	    0)
		goto fail;
	if ((ret = sq_run(s, Q_COMMIT, "commit", err)) != 0)
		goto fail;
	goto out;
fail:
	made = 0;
	sq_rollback(s);
out:
	pthread_mutex_unlock(&s->mu);
	store_event_clear(&ev);
	handler_list_free(hs, nh);
	if (out_n)
		*out_n = made;
	return ret;
}

/* Counts per status; @oldest_pending_at is the smallest next_attempt_at of a
 * pending delivery (0: none pending). */
static int sq_delivery_stats(store *st, int64_t counts[5], int64_t *oldest_pending_at,
                             th_error *err)
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
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
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
		rc = sqlite3_step(q);
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

/* ---- users and sessions --------------------------------------------------------------------- */

typedef struct sq_user {
	const char *name;
	const char *pwhash;
} sq_user;

static void bind_user(sq_bind *b, const void *arg)
{
	const sq_user *x = arg;
	bind_text(b, x->name);
	bind_text(b, x->pwhash);
	bind_i64(b, time_now_ms());
}

/* Insert a user or replace its password hash. */
static int sq_user_put(store *st, const char *name, const char *pwhash, th_error *err)
{
	if (store_check_user(name, pwhash, err) != 0)
		return TH_EINVAL;
	sq_user x = {name, pwhash};
	return sq_command(sq_of(st), Q_USER_PUT, bind_user, &x, "storing a user", NULL, NULL, err);
}

static int sq_user_get_hash(store *st, const char *name, char **out_hash, th_error *err)
{
	char nf[160];
	str_printf(nf, sizeof nf, "no user named %s", name ? name : "(null)");
	int ret = sq_get_one(sq_of(st), Q_USER_GET_HASH, name, NULL, rd_str, sizeof *out_hash,
	                     out_hash, clr_str, nf, "reading a user", err);
	if (ret == 0 && !*out_hash)
		ret = th_err(err, TH_ENOMEM, "out of memory");
	return ret;
}

/* Insert or replace a session; expired sessions are purged on the way.
 * TH_ENOTFOUND when the user does not exist. */
static int sq_session_put(store *st, const user_session *us, th_error *err)
{
	sq *s = sq_of(st);
	if (store_check_session(us, err) != 0)
		return TH_EINVAL;
	pthread_mutex_lock(&s->mu);
	int ret = 0, rc;
	sqlite3_stmt *q = sq_stmt(s, Q_SESSION_PURGE, err);
	if (!q) {
		ret = TH_ESTORE;
		goto out;
	}
	sq_bind b = {q, 0, SQLITE_OK};
	bind_i64(&b, time_now_ms());
	rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	sq_reset(q);
	if (rc != SQLITE_DONE) {
		ret = sq_fail(s, err, "purging sessions");
		goto out;
	}
	q = sq_stmt(s, Q_SESSION_PUT, err);
	if (!q) {
		ret = TH_ESTORE;
		goto out;
	}
	b = (sq_bind){q, 0, SQLITE_OK};
	bind_text(&b, us->id_hash);
	bind_text(&b, us->user);
	bind_text(&b, us->csrf);
	bind_i64(&b, us->expires_at);
	rc = b.rc == SQLITE_OK ? sqlite3_step(q) : b.rc;
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
			ret = th_err(err, TH_ENOTFOUND, "no user named %s", us->user);
		else
			ret = sq_fail(s, err, "storing a session");
	}
	sq_reset(q);
out:
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* The session as stored, even when expired: the caller checks expires_at. */
static int sq_session_get(store *st, const char *id_hash, user_session *out, th_error *err)
{
	return sq_get_one(sq_of(st), Q_SESSION_GET, id_hash, NULL, rd_session, sizeof *out, out,
	                  clr_session, "no such session", "reading a session", err);
}

static int sq_session_delete(store *st, const char *id_hash, th_error *err)
{
	return delete_one(sq_of(st), Q_SESSION_DELETE, id_hash, "session", false, err);
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .migrate = sq_migrate,
    .ping = sq_ping,
    .webhook_insert = sq_webhook_insert,
    .webhook_update = sq_webhook_update,
    .webhook_get = sq_webhook_get,
    .webhook_find = sq_webhook_find,
    .webhook_list = sq_webhook_list,
    .webhook_delete = sq_webhook_delete,
    .token_put = sq_token_put,
    .token_get = sq_token_get,
    .token_list = sq_token_list,
    .token_delete = sq_token_delete,
    .events_put = sq_events_put,
    .event_get = sq_event_get,
    .event_list = sq_event_list,
    .handler_insert = sq_handler_insert,
    .handler_get = sq_handler_get,
    .handler_list = sq_handler_list,
    .handler_delete = sq_handler_delete,
    .handler_set_enabled = sq_handler_set_enabled,
    .delivery_list = sq_delivery_list,
    .delivery_get = sq_delivery_get,
    .delivery_claim = sq_delivery_claim,
    .delivery_finish = store_delivery_finish_one,
    .delivery_finish_many = sq_delivery_finish_many,
    .delivery_retry = sq_delivery_retry,
    .event_replay = sq_event_replay,
    .delivery_stats = sq_delivery_stats,
    .user_put = sq_user_put,
    .user_get_hash = sq_user_get_hash,
    .session_put = sq_session_put,
    .session_get = sq_session_get,
    .session_delete = sq_session_delete,
};

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
	static const char pragmas[] = "PRAGMA busy_timeout = 5000;"
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
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return th_err(err, TH_ENOMEM, "cannot create a mutex");
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

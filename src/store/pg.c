/*
 * pg.c — the PostgreSQL implementation of the store (libpq), for several
 * `trellohook serve` instances on one database.
 *
 * Connections: a small pool (DATABASE_URL query parameter `pool_size`, else
 * TRELLOHOOK_DB_POOL, default 4), opened lazily. Each connection runs with
 * application_name=trellohook and statement_timeout (parameter
 * `statement_timeout` in ms, default 30000). Our own parameters are stripped
 * before the URL goes to libpq. An operation that finds its connection broken
 * (the server restarted) resets it and runs once more; every operation is one
 * transaction, so a retry never sees half of an earlier attempt.
 *
 * Semantics are those of sqlite.c (the reference): versioned migrations
 * (applied under pg_advisory_xact_lock, so instances starting together are
 * safe), events_put as ONE transaction per batch (one WAL flush) with
 * multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING to tell new from
 * duplicate, deliveries for matching enabled handlers, and delivery_claim with
 * FOR UPDATE SKIP LOCKED plus leases (claimed_until) so a crashed instance's
 * running deliveries are claimed again once the lease ran out.
 *
 * Data crossing the wire: every value is a query parameter (never spliced
 * into SQL). Text goes as text and must be UTF-8 (event fields that are not
 * are repaired with U+FFFD-free '?' substitutes so one hostile event cannot
 * fail a batch); the payload goes as binary BYTEA, byte-exact. Results come
 * back in text format (bytea as hex, decoded with PQunescapeBytea).
 *
 * The password is never logged or put in an error: errors name the URL
 * through mask_url() with the query string dropped.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/migrations_pg.h"
#include "store/store.h"
#include "store/store_int.h"

#define POOL_DEFAULT 4
#define POOL_MAX 64
#define STMT_TIMEOUT_DEFAULT 30000
#define EVENTS_PER_INSERT 1000                /* 16 parameters each: well under 65535 */
#define DELIVERIES_PER_INSERT 5000            /* 7 parameters each */
#define MIGRATION_LOCK_KEY "7466323030303831" /* any constant; ours */

/* ---- the handle and its pool ------------------------------------------------------------ */

typedef struct pgs {
	store base;       /* first: store* <-> pgs* casts */
	char *conninfo;   /* the URL for libpq, our parameters removed (holds the password) */
	char masked[256]; /* the URL for messages: password masked, query dropped */
	char options[64]; /* "-c statement_timeout=N" */
	size_t pool_size;
	PGconn **conns;     /* pool_size slots; NULL until first used */
	bool *busy;         /* slot in use by a thread */
	pthread_mutex_t mu; /* guards busy[] (not the connections themselves) */
	pthread_cond_t cv;  /* signalled when a slot is released */
} pgs;

static pgs *pgs_of(store *st)
{
	return (pgs *)st;
}

/* Server notices ("relation ... already exists, skipping") are not errors:
 * libpq would print them on stderr; we drop them. */
static void pg_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Open one connection with our settings. NULL with @err (TH_EUNAVAIL) on failure. */
static PGconn *pg_connect(pgs *s, th_error *err)
{
	/* keywords in order: later ones win, dbname expands the URL in place, so
	 * the URL may override connect_timeout but not our name and timeout */
	const char *keys[] = {"connect_timeout", "dbname", "application_name", "options", NULL};
	const char *vals[] = {"10", s->conninfo, "trellohook", s->options, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		th_err(err, TH_ENOMEM, "PostgreSQL at %s: out of memory", s->masked);
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[200];
		str_copy(msg, sizeof msg, PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		th_err(err, TH_EUNAVAIL, "cannot connect to PostgreSQL at %s: %s", s->masked, msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, pg_quiet, NULL); /* kept across PQreset */
	return c;
}

/* Take a free slot (waiting for one), connected. Returns the slot index or -1
 * with @err filled. The caller gives it back with pool_put(). */
static int pool_get(pgs *s, th_error *err)
{
	pthread_mutex_lock(&s->mu);
	int slot = -1;
	for (;;) {
		for (size_t i = 0; i < s->pool_size; i++) {
			if (!s->busy[i] && (slot < 0 || (s->conns[i] && !s->conns[slot])))
				slot = (int)i; /* prefer a slot that is already connected */
		}
		if (slot >= 0)
			break;
		pthread_cond_wait(&s->cv, &s->mu);
	}
	s->busy[slot] = true;
	pthread_mutex_unlock(&s->mu);
	PGconn *c = s->conns[slot];
	if (c && PQstatus(c) != CONNECTION_OK) {
		PQreset(c);
		if (PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			s->conns[slot] = c = NULL;
		}
	}
	if (!c && !(s->conns[slot] = pg_connect(s, err))) {
		pthread_mutex_lock(&s->mu);
		s->busy[slot] = false;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	return slot;
}

static void pool_put(pgs *s, int slot)
{
	pthread_mutex_lock(&s->mu);
	s->busy[slot] = false;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* An operation on one connection; it runs one transaction (or one statement). */
typedef int (*pg_op)(pgs *s, PGconn *c, void *ctx, th_error *err);

/* Run @op on a pooled connection. When it fails because the connection broke
 * (server restart, network), reset the connection and run @op once more. */
static int with_conn(pgs *s, pg_op op, void *ctx, th_error *err)
{
	th_error e = {0};
	int slot = pool_get(s, &e);
	if (slot < 0) {
		if (err)
			*err = e;
		return e.code ? e.code : TH_EUNAVAIL;
	}
	int ret = op(s, s->conns[slot], ctx, err);
	if (ret != 0 && PQstatus(s->conns[slot]) == CONNECTION_BAD) {
		PQreset(s->conns[slot]);
		if (PQstatus(s->conns[slot]) == CONNECTION_OK)
			ret = op(s, s->conns[slot], ctx, err);
		else
			ret = th_err(err, TH_EUNAVAIL,
			             "lost the connection to PostgreSQL at %s and could "
			             "not reconnect",
			             s->masked);
	}
	pool_put(s, slot);
	return ret;
}

/* ---- parameters ------------------------------------------------------------------------- */

/* Query parameters: values, lengths and formats for PQexecParams; strings it
 * made (numbers, repaired text) are owned here and freed by pp_free(). The
 * first failure sticks in `oom`. */
typedef struct pparams {
	int n, cap;
	const char **v;
	int *len;
	int *fmt;
	char **owned;
	int nowned, capowned;
	bool oom;
} pparams;

static void pp_free(pparams *p)
{
	for (int i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	free(p->owned);
	free(p->v);
	free(p->len);
	free(p->fmt);
	memset(p, 0, sizeof *p);
}

static void pp_reset(pparams *p)
{
	for (int i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	p->nowned = 0;
	p->n = 0;
}

static bool pp_room(pparams *p)
{
	if (p->oom)
		return false;
	if (p->n < p->cap)
		return true;
	int ncap = p->cap ? p->cap * 2 : 32;
	const char **v = realloc(p->v, (size_t)ncap * sizeof *v);
	if (v)
		p->v = v;
	int *len = realloc(p->len, (size_t)ncap * sizeof *len);
	if (len)
		p->len = len;
	int *fmt = realloc(p->fmt, (size_t)ncap * sizeof *fmt);
	if (fmt)
		p->fmt = fmt;
	if (!v || !len || !fmt) {
		p->oom = true;
		return false;
	}
	p->cap = ncap;
	return true;
}

/* Keep @str (heap) until pp_free; frees it and sets oom when that fails. */
static const char *pp_own(pparams *p, char *str)
{
	if (!str) {
		p->oom = true;
		return NULL;
	}
	if (p->nowned == p->capowned) {
		int ncap = p->capowned ? p->capowned * 2 : 16;
		char **o = realloc(p->owned, (size_t)ncap * sizeof *o);
		if (!o) {
			free(str);
			p->oom = true;
			return NULL;
		}
		p->owned = o;
		p->capowned = ncap;
	}
	p->owned[p->nowned++] = str;
	return str;
}

static void pp_add(pparams *p, const char *v, int len, int fmt)
{
	if (!pp_room(p))
		return;
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	p->n++;
}

/* A text value (NULL: SQL NULL); must stay valid until the query ran. */
static void pp_text(pparams *p, const char *v)
{
	pp_add(p, v, 0, 0);
}

/* A text value that came from outside: invalid UTF-8 bytes become '?'
 * (PostgreSQL refuses them in TEXT; the payload keeps the exact bytes). */
static void pp_text_repair(pparams *p, const char *v)
{
	if (!v || str_utf8_valid(v, strlen(v))) {
		pp_text(p, v);
		return;
	}
	size_t n = strlen(v);
	char *c = malloc(n + 1);
	if (c) {
		size_t i = 0;
		while (i < n) {
			/* a valid sequence, else one '?' */
			size_t k = str_utf8_seq(v + i, n - i);
			if (k == 0) {
				c[i] = '?';
				i++;
			} else {
				memcpy(c + i, v + i, k);
				i += k;
			}
		}
		c[n] = '\0';
	}
	pp_text(p, pp_own(p, c));
}

static void pp_i64(pparams *p, int64_t v)
{
	char tmp[24];
	str_printf(tmp, sizeof tmp, "%lld", (long long)v);
	pp_text(p, pp_own(p, str_dup(tmp)));
}

static void pp_bool(pparams *p, bool v)
{
	pp_text(p, v ? "t" : "f");
}

/* Binary bytes (BYTEA): sent as is, length explicit, NUL bytes included. */
static void pp_bytes(pparams *p, const void *data, size_t len)
{
	if (len > (size_t)INT32_MAX) {
		p->oom = true;
		return;
	}
	pp_add(p, len ? (const char *)data : "", (int)len, 1);
}

/* ---- running queries -------------------------------------------------------------------- */

/* A failed statement or connection as a th_error: TH_EEXISTS for a unique
 * violation (23505), TH_ENOTFOUND for a foreign key (23503), TH_EUNAVAIL when
 * the connection is gone, else TH_ESTORE "what: message". */
static int pg_fail(pgs *s, PGconn *c, const PGresult *r, const char *what, th_error *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char msg[200];
	str_copy(msg, sizeof msg, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	if (!*msg)
		str_copy(msg, sizeof msg, PQerrorMessage(c));
	msg[strcspn(msg, "\n")] = '\0';
	if (str_eq(state, "23505"))
		return th_err(err, TH_EEXISTS, "%s: %s", what, msg);
	if (str_eq(state, "23503"))
		return th_err(err, TH_ENOTFOUND, "%s: %s", what, msg);
	if (PQstatus(c) == CONNECTION_BAD)
		return th_err(err, TH_EUNAVAIL, "%s: lost the connection to PostgreSQL at %s: %s",
		              what, s->masked, msg);
	return th_err(err, TH_ESTORE, "%s: %s", what, msg);
}

/* Run @sql with @p (may be NULL). Returns the result when its status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK (PQclear it), else NULL with @err. */
static PGresult *pq(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, th_error *err)
{
	if (p && p->oom) {
		th_err(err, TH_ENOMEM, "%s: out of memory", what);
		return NULL;
	}
	PGresult *r = PQexecParams(c, sql, p ? p->n : 0, NULL, p ? p->v : NULL, p ? p->len : NULL,
	                           p ? p->fmt : NULL, 0);
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	pg_fail(s, c, r, what, err);
	PQclear(r);
	return NULL;
}

/* Run a statement whose result is not needed; 0 or the error code. */
static int pq_do(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, th_error *err)
{
	PGresult *r = pq(s, c, sql, p, what, err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	PQclear(r);
	return 0;
}

/* Rows affected by a command result. */
static long pq_changes(PGresult *r)
{
	int64_t v = 0;
	const char *t = PQcmdTuples(r);
	if (!t || !*t || num_parse_i64(t, 0, INT64_MAX, &v) != 0)
		return 0;
	return (long)v;
}

static int pq_begin(pgs *s, PGconn *c, th_error *err)
{
	return pq_do(s, c, "BEGIN", NULL, "starting a transaction", err);
}

static int pq_commit(pgs *s, PGconn *c, const char *what, th_error *err)
{
	return pq_do(s, c, "COMMIT", NULL, what, err);
}

/* Roll back whatever is open; errors ignored (the first one is in @err). */
static void pq_rollback(PGconn *c)
{
	if (PQstatus(c) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(c) == PQTRANS_IDLE)
		return;
	PGresult *r = PQexec(c, "ROLLBACK");
	PQclear(r);
}

/* One transaction: @body runs between BEGIN and COMMIT on one connection;
 * any failure (its own or the commit's) rolls back. */
typedef struct pg_txn {
	pg_op body;
	void *ctx;
} pg_txn;

static int op_txn(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	pg_txn *t = ctx;
	int ret = pq_begin(s, c, err);
	if (ret == 0)
		ret = t->body(s, c, t->ctx, err);
	if (ret == 0)
		ret = pq_commit(s, c, "commit", err);
	if (ret != 0)
		pq_rollback(c);
	return ret;
}

/* Run @body with @ctx in one transaction on a pooled connection (see with_conn). */
static int with_txn(pgs *s, pg_op body, void *ctx, th_error *err)
{
	pg_txn t = {body, ctx};
	return with_conn(s, op_txn, &t, err);
}

/* ---- reading rows ----------------------------------------------------------------------- */

typedef struct pq_row {
	PGresult *r;
	int row, col;
	bool oom;
} pq_row;

static char *row_str(pq_row *w)
{
	int c = w->col++;
	if (PQgetisnull(w->r, w->row, c))
		return NULL;
	char *v = str_ndup(PQgetvalue(w->r, w->row, c), (size_t)PQgetlength(w->r, w->row, c));
	if (!v)
		w->oom = true;
	return v;
}

static int64_t row_i64(pq_row *w)
{
	int c = w->col++;
	int64_t v = 0;
	if (!PQgetisnull(w->r, w->row, c))
		(void)num_parse_i64(PQgetvalue(w->r, w->row, c), INT64_MIN, INT64_MAX, &v);
	return v;
}

static bool row_bool(pq_row *w)
{
	int c = w->col++;
	return !PQgetisnull(w->r, w->row, c) && PQgetvalue(w->r, w->row, c)[0] == 't';
}

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

static void read_webhook(pq_row *w, webhook *o)
{
	o->id = row_str(w);
	o->trello_id = row_str(w);
	o->id_model = row_str(w);
	o->model_type = row_str(w);
	o->model_name = row_str(w);
	o->description = row_str(w);
	o->callback_url = row_str(w);
	o->token = row_str(w);
	char *state = row_str(w);
	if (!state || webhook_state_parse(state, &o->state) != 0)
		o->state = WEBHOOK_PENDING;
	free(state);
	o->active = row_bool(w);
	o->consecutive_failures = (int)row_i64(w);
	o->first_consecutive_fail_at = row_i64(w);
	o->created_at = row_i64(w);
	o->last_event_at = row_i64(w);
	o->event_count = row_i64(w);
}

static void read_token(pq_row *w, token *t)
{
	t->token = row_str(w);
	t->member = row_str(w);
	t->expires_at = row_i64(w);
	char *state = row_str(w);
	if (!state || token_state_parse(state, &t->state) != 0)
		t->state = TOKEN_UNCHECKED;
	free(state);
	t->checked_at = row_i64(w);
	t->created_at = row_i64(w);
}

/* Reads EVENT_COLS (and, when @with_payload, the payload after them). */
static int64_t read_event(pq_row *w, event *ev, bool with_payload)
{
	int64_t seq = row_i64(w);
	ev->id = row_str(w);
	ev->webhook_id = row_str(w);
	ev->action_id = row_str(w);
	ev->action_type = row_str(w);
	ev->action_date = row_str(w);
	ev->model_id = row_str(w);
	ev->board_id = row_str(w);
	ev->board_name = row_str(w);
	ev->list_id = row_str(w);
	ev->list_name = row_str(w);
	ev->card_id = row_str(w);
	ev->card_name = row_str(w);
	ev->member = row_str(w);
	ev->summary = row_str(w);
	ev->received_at = row_i64(w);
	if (with_payload) {
		/* BYTEA in text format is "\x<hex>"; decode to the exact bytes, add a NUL */
		int c = w->col++;
		size_t n = 0;
		unsigned char *raw =
		    PQunescapeBytea((const unsigned char *)PQgetvalue(w->r, w->row, c), &n);
		ev->payload = raw ? malloc(n + 1) : NULL;
		if (!ev->payload) {
			w->oom = true;
		} else {
			if (n)
				memcpy(ev->payload, raw, n);
			ev->payload[n] = '\0';
			ev->payload_len = n;
		}
		PQfreemem(raw);
	}
	return seq;
}

static void read_handler(pq_row *w, handler *h)
{
	h->id = row_str(w);
	char *kind = row_str(w);
	if (!kind || handler_kind_parse(kind, &h->kind) != 0)
		h->kind = HANDLER_EXEC;
	free(kind);
	h->target = row_str(w);
	h->on = row_str(w);
	h->model = row_str(w);
	h->secret = row_str(w);
	h->enabled = row_bool(w);
	h->created_at = row_i64(w);
}

static void read_delivery(pq_row *w, delivery *d)
{
	d->id = row_str(w);
	d->event_id = row_str(w);
	d->handler_id = row_str(w);
	char *status = row_str(w);
	if (!status || delivery_status_parse(status, &d->status) != 0)
		d->status = DELIVERY_PENDING;
	free(status);
	d->attempts = (int)row_i64(w);
	d->next_attempt_at = row_i64(w);
	d->last_error = row_str(w);
	d->updated_at = row_i64(w);
	d->claimed_until = row_i64(w);
}

/* A reader fills one element from the current row. */
typedef void (*row_reader)(pq_row *w, void *elem);

static void rd_webhook(pq_row *w, void *e)
{
	read_webhook(w, e);
}
static void rd_token(pq_row *w, void *e)
{
	read_token(w, e);
}
static void rd_handler(pq_row *w, void *e)
{
	read_handler(w, e);
}
static void rd_delivery(pq_row *w, void *e)
{
	read_delivery(w, e);
}
static void rd_event_row(pq_row *w, void *e)
{
	event_row *er = e;
	er->seq = read_event(w, &er->ev, false);
}

/* A clearer frees what a reader filled in one element. */
typedef void (*row_clearer)(void *elem);

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

/* Read every row of @r into a new zeroed array of @elem-sized items (NULL
 * when there are none), the caller's on success. On failure (out of memory)
 * what was read is freed with @clr and *out is NULL. */
static int read_all(PGresult *r, size_t elem, row_reader rd, row_clearer clr, void **out, size_t *n,
                    th_error *err)
{
	int rows = PQntuples(r);
	*out = NULL;
	*n = 0;
	if (rows <= 0)
		return 0;
	char *a = calloc((size_t)rows, elem);
	if (!a)
		return th_err(err, TH_ENOMEM, "out of memory");
	for (int i = 0; i < rows; i++) {
		pq_row w = {r, i, 0, false};
		rd(&w, a + (size_t)i * elem);
		if (w.oom) {
			for (int k = 0; k <= i; k++)
				clr(a + (size_t)k * elem);
			free(a);
			return th_err(err, TH_ENOMEM, "out of memory");
		}
	}
	*out = a;
	*n = (size_t)rows;
	return 0;
}

/* ---- migrations ------------------------------------------------------------------------- */

/* Apply every migration the database lacks. Each runs in a transaction that
 * first takes a transaction-scoped advisory lock, so two instances starting
 * at once apply each migration exactly once (the second waits, then sees the
 * new version). */
static int op_migrate(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	int *out_version = ctx;
	const int latest = (int)TH_ARRAY_LEN(pg_migrations);
	int ret = 0, version = 0;
	PGresult *r = NULL;
	for (;;) {
		if ((ret = pq_begin(s, c, err)) != 0)
			goto fail;
		if ((ret = pq_do(s, c, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", NULL,
		                 "taking the migration lock", err)) != 0)
			goto fail;
		if ((ret = pq_do(s, c,
		                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
		                 " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
		                 NULL, "creating schema_migrations", err)) != 0)
			goto fail;
		r = pq(s, c, "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL,
		       "reading the schema version", err);
		if (!r) {
			ret = err ? err->code : TH_ESTORE;
			goto fail;
		}
		int64_t v = 0;
		(void)num_parse_i64(PQgetvalue(r, 0, 0), 0, INT32_MAX, &v);
		PQclear(r);
		r = NULL;
		version = (int)v;
		if (version > latest) {
			ret =
			    th_err(err, TH_ESTORE,
			           "the database schema is version %d, newer than this trellohook "
			           "knows (%d); upgrade trellohook",
			           version, latest);
			goto fail;
		}
		if (version == latest) {
			if ((ret = pq_commit(s, c, "commit", err)) != 0)
				goto fail;
			break;
		}
		/* a migration is several statements: the simple query protocol runs them all */
		r = PQexec(c, pg_migrations[version]);
		if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
			char what[48];
			str_printf(what, sizeof what, "migration %d", version + 1);
			ret = pg_fail(s, c, r, what, err);
			goto fail;
		}
		PQclear(r);
		r = NULL;
		pparams p = {0};
		pp_i64(&p, version + 1);
		pp_i64(&p, time_now_ms());
		ret = pq_do(s, c,
		            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
		            &p, "recording a migration", err);
		pp_free(&p);
		if (ret != 0)
			goto fail;
		if ((ret = pq_commit(s, c, "committing a migration", err)) != 0)
			goto fail;
	}
	if (out_version)
		*out_version = version;
	return 0;
fail:
	PQclear(r);
	pq_rollback(c);
	return ret;
}

static int pg_migrate(store *st, int *out_version, th_error *err)
{
	return with_conn(pgs_of(st), op_migrate, out_version, err);
}

static int op_ping(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	(void)ctx;
	return pq_do(s, c, "SELECT 1", NULL, "ping", err);
}

static int pg_ping(store *st, th_error *err)
{
	return with_conn(pgs_of(st), op_ping, NULL, err);
}

static void pg_close(store *st)
{
	pgs *s = pgs_of(st);
	if (!s)
		return;
	for (size_t i = 0; s->conns && i < s->pool_size; i++)
		if (s->conns[i])
			PQfinish(s->conns[i]);
	free(s->conns);
	free(s->busy);
	if (s->conninfo) {
		memset(s->conninfo, 0, strlen(s->conninfo)); /* it holds the password */
		free(s->conninfo);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- generic one-statement operations ---------------------------------------------------- */

/* A statement with parameters; optional row reading. */
typedef struct simple_op {
	const char *sql;
	pparams *p;
	const char *what;
	/* reading: when rd is set, the rows go to *out / *n */
	row_reader rd;
	row_clearer clr;
	size_t elem;
	void **out;
	size_t *n;
	long changes; /* rows affected (commands) */
} simple_op;

static int op_simple(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	simple_op *o = ctx;
	PGresult *r = pq(s, c, o->sql, o->p, o->what, err);
	if (!r)
		return err ? err->code : TH_ESTORE;
	int ret = 0;
	o->changes = pq_changes(r);
	if (o->rd)
		ret = read_all(r, o->elem, o->rd, o->clr, o->out, o->n, err);
	PQclear(r);
	return ret;
}

/* ---- webhooks ----------------------------------------------------------------------------- */

static int webhook_unique_err(const th_error *e, const webhook *w, th_error *err)
{
	return store_webhook_exists(w, strstr(e->msg, "webhooks_model_token") != NULL, err);
}

static void webhook_params(pparams *p, const webhook *w, bool insert)
{
	pp_text(p, w->id);
	pp_text(p, w->trello_id);
	pp_text(p, w->id_model);
	pp_text(p, w->model_type);
	pp_text(p, w->model_name);
	pp_text(p, w->description);
	pp_text(p, w->callback_url);
	pp_text(p, w->token);
	pp_text(p, webhook_state_name(w->state));
	pp_bool(p, w->active);
	pp_i64(p, w->consecutive_failures);
	pp_i64(p, w->first_consecutive_fail_at);
	if (insert)
		pp_i64(p, w->created_at ? w->created_at : time_now_ms());
	pp_i64(p, w->last_event_at);
}

static int pg_webhook_insert(store *st, const webhook *w, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	webhook_params(&p, w, true);
	simple_op o = {.sql = "INSERT INTO webhooks (" WEBHOOK_COLS ") VALUES"
	                      " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
	               .p = &p,
	               .what = "adding a webhook"};
	th_error e = {0};
	int ret = with_conn(pgs_of(st), op_simple, &o, &e);
	pp_free(&p);
	if (ret == TH_EEXISTS)
		return webhook_unique_err(&e, w, err);
	if (ret != 0 && err)
		*err = e;
	return ret;
}

static int pg_webhook_update(store *st, const webhook *w, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	webhook_params(&p, w, false);
	simple_op o = {.sql = "UPDATE webhooks SET trello_id = $2, id_model = $3, model_type = $4,"
	                      " model_name = $5, description = $6, callback_url = $7, token = $8,"
	                      " state = $9, active = $10, consecutive_failures = $11,"
	                      " first_consecutive_fail_at = $12, last_event_at = $13 WHERE id = $1",
	               .p = &p,
	               .what = "updating a webhook"};
	th_error e = {0};
	int ret = with_conn(pgs_of(st), op_simple, &o, &e);
	pp_free(&p);
	if (ret == TH_EEXISTS)
		return webhook_unique_err(&e, w, err);
	if (ret != 0) {
		if (err)
			*err = e;
		return ret;
	}
	if (o.changes == 0)
		return store_not_found(err, "webhook", w->id);
	return 0;
}

#define WEBHOOK_SELECT                                                                       \
	"SELECT " WEBHOOK_COLS ", (SELECT count(*) FROM events e WHERE e.webhook_id = w.id)" \
	" FROM webhooks w"

/* Fetch at most one row of an element type; TH_ENOTFOUND with @nf when none. */
static int get_one(pgs *s, const char *sql, pparams *p, const char *what, row_reader rd,
                   size_t elem, void *out, row_clearer clear, const char *nf, th_error *err)
{
	void *arr = NULL;
	size_t n = 0;
	simple_op o = {.sql = sql,
	               .p = p,
	               .what = what,
	               .rd = rd,
	               .clr = clear,
	               .elem = elem,
	               .out = &arr,
	               .n = &n};
	int ret = with_conn(s, op_simple, &o, err);
	if (ret == 0 && n == 0)
		ret = th_err(err, TH_ENOTFOUND, "%s", nf);
	if (ret == 0)
		memcpy(out, arr, elem);
	for (size_t i = 1; ret == 0 && i < n; i++)
		clear((char *)arr + i * elem);
	free(arr);
	return ret;
}

/* Every row of @sql (parameters @p, may be NULL) into *out / *n, read with
 * @rd; on failure *out is NULL and *n 0 (nothing to free). */
static int list_all(pgs *s, const char *sql, pparams *p, const char *what, row_reader rd,
                    row_clearer clr, size_t elem, void **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	simple_op o = {.sql = sql,
	               .p = p,
	               .what = what,
	               .rd = rd,
	               .clr = clr,
	               .elem = elem,
	               .out = out,
	               .n = n};
	return with_conn(s, op_simple, &o, err);
}

static int pg_webhook_get(store *st, const char *id, webhook *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "webhook", id);
	pparams p = {0};
	pp_text(&p, id);
	int ret = get_one(pgs_of(st), WEBHOOK_SELECT " WHERE id = $1", &p, "reading a webhook",
	                  rd_webhook, sizeof *out, out, clr_webhook, nf, err);
	pp_free(&p);
	return ret;
}

static int pg_webhook_find(store *st, const char *id_model, const char *tok, webhook *out,
                           th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	str_printf(nf, sizeof nf, "no webhook for model %s with this token",
	           id_model ? id_model : "(null)");
	if (!tok || !id_model)
		return th_err(err, TH_ENOTFOUND, "%s", nf);
	pparams p = {0};
	pp_text(&p, id_model);
	pp_text(&p, tok);
	int ret = get_one(pgs_of(st), WEBHOOK_SELECT " WHERE id_model = $1 AND token = $2", &p,
	                  "reading a webhook", rd_webhook, sizeof *out, out, clr_webhook, nf, err);
	pp_free(&p);
	return ret;
}

static int pg_webhook_list(store *st, webhook **out, size_t *n, th_error *err)
{
	return list_all(pgs_of(st), WEBHOOK_SELECT " ORDER BY created_at, id", NULL,
	                "listing webhooks", rd_webhook, clr_webhook, sizeof **out, (void **)out, n,
	                err);
}

/* DELETE by one text key; TH_ENOTFOUND when nothing was deleted (@show_key
 * false keeps the key out of the message, e.g. for tokens). */
static int delete_one(pgs *s, const char *sql, const char *key, const char *what, bool show_key,
                      th_error *err)
{
	pparams p = {0};
	pp_text(&p, key);
	simple_op o = {.sql = sql, .p = &p, .what = "deleting"};
	int ret = with_conn(s, op_simple, &o, err);
	pp_free(&p);
	if (ret == 0 && o.changes == 0)
		ret = store_delete_not_found(err, what, key, show_key);
	return ret;
}

/* Deleting a webhook keeps its events (no foreign key). */
static int pg_webhook_delete(store *st, const char *id, th_error *err)
{
	return delete_one(pgs_of(st), "DELETE FROM webhooks WHERE id = $1", id, "webhook", true,
	                  err);
}

/* ---- tokens ------------------------------------------------------------------------------- */

static int pg_token_put(store *st, const token *t, th_error *err)
{
	if (store_check_token(t, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	pp_text(&p, t->token);
	pp_text(&p, t->member);
	pp_i64(&p, t->expires_at);
	pp_text(&p, token_state_name(t->state));
	pp_i64(&p, t->checked_at);
	pp_i64(&p, t->created_at ? t->created_at : time_now_ms());
	simple_op o = {.sql = "INSERT INTO tokens (" TOKEN_COLS ") VALUES ($1,$2,$3,$4,$5,$6)"
	                      " ON CONFLICT (token) DO UPDATE SET member = excluded.member,"
	                      " expires_at = excluded.expires_at, state = excluded.state,"
	                      " checked_at = excluded.checked_at",
	               .p = &p,
	               .what = "storing a token"};
	int ret = with_conn(pgs_of(st), op_simple, &o, err);
	pp_free(&p);
	return ret;
}

static int pg_token_get(store *st, const char *tok, token *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	pparams p = {0};
	pp_text(&p, tok);
	int ret = get_one(pgs_of(st), "SELECT " TOKEN_COLS " FROM tokens WHERE token = $1", &p,
	                  "reading a token", rd_token, sizeof *out, out, clr_token,
	                  "no such token stored", err);
	pp_free(&p);
	return ret;
}

static int pg_token_list(store *st, token **out, size_t *n, th_error *err)
{
	return list_all(pgs_of(st), "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, token",
	                NULL, "listing tokens", rd_token, clr_token, sizeof **out, (void **)out, n,
	                err);
}

static int pg_token_delete(store *st, const char *tok, th_error *err)
{
	return delete_one(pgs_of(st), "DELETE FROM tokens WHERE token = $1", tok, "token", false,
	                  err);
}

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
	int ret = read_all(r, sizeof **out, rd_handler, clr_handler, (void **)out, n, err);
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

/* Insert events [from, to) that are storable in one multi-row INSERT; marks
 * results NEW (with seqs) for the rows that came back, DUPLICATE for the rest. */
static int insert_events(pgs *s, PGconn *c, put_ctx *x, size_t from, size_t to, th_error *err)
{
	pparams p = {0};
	buf sql;
	buf_init(&sql, BUF_MAX_DEFAULT);
	PGresult *r = NULL;
	int ret = 0, rows = 0;
	int e =
	    buf_puts(&sql, "INSERT INTO events (id, webhook_id, action_id, action_type,"
	                   " action_date, model_id, board_id, board_name, list_id, list_name,"
	                   " card_id, card_name, member, summary, payload, received_at) VALUES ");
	for (size_t i = from; i < to && !e; i++) {
		event *ev = x->evs[i];
		if (!store_event_storable(ev))
			continue;
		e = buf_puts(&sql, rows ? ",(" : "(");
		for (int k = 0; k < 16 && !e; k++)
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
		if (store_event_storable(x->evs[i]))
			x->results[i] = STORE_PUT_DUPLICATE;
	/* rows come back in VALUES order in practice; search on when they do not */
	size_t cur = from;
	for (int k = 0; k < PQntuples(r); k++) {
		const char *id = PQgetvalue(r, k, 0);
		size_t j = cur, tries = 0;
		while (tries < to - from &&
		       !(store_event_storable(x->evs[j]) && str_eq(x->evs[j]->id, id))) {
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

/* The whole batch in one transaction: events, their deliveries, the webhooks'
 * last event times. */
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

static int pg_events_put(store *st, event **evs, size_t n, enum store_put *results, th_error *err)
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

static void rd_event_full(pq_row *w, void *e)
{
	(void)read_event(w, e, true);
}

static int pg_event_get(store *st, const char *id, event *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "event", id);
	pparams p = {0};
	pp_text(&p, id);
	int ret =
	    get_one(pgs_of(st), "SELECT " EVENT_COLS ", payload FROM events WHERE id = $1", &p,
	            "reading an event", rd_event_full, sizeof *out, out, clr_event, nf, err);
	pp_free(&p);
	return ret;
}

/* Newest first (or oldest first), without payloads. The text filter is
 * ILIKE, which (with the C collation of our clusters) folds ASCII letters. */
static int pg_event_list(store *st, const event_query *qy, event_row **out, size_t *n,
                         th_error *err)
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
	ret = list_all(pgs_of(st), sql.data, &p, "listing events", rd_event_row, clr_event_row,
	               sizeof **out, (void **)out, n, err);
out:
	pp_free(&p);
	buf_free(&sql);
	buf_free(&pat);
	return ret;
}

/* ---- handlers ------------------------------------------------------------------------------ */

static int pg_handler_insert(store *st, const handler *h, th_error *err)
{
	if (store_check_handler(h, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	pp_text(&p, h->id);
	pp_text(&p, handler_kind_name(h->kind));
	pp_text(&p, h->target);
	pp_text(&p, h->on);
	pp_text(&p, h->model);
	pp_text(&p, h->secret);
	pp_bool(&p, h->enabled);
	pp_i64(&p, h->created_at ? h->created_at : time_now_ms());
	simple_op o = {.sql = "INSERT INTO handlers (" HANDLER_COLS
	                      ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
	               .p = &p,
	               .what = "adding a handler"};
	int ret = with_conn(pgs_of(st), op_simple, &o, err);
	pp_free(&p);
	if (ret == TH_EEXISTS)
		return th_err(err, TH_EEXISTS, "a handler with id %s already exists", h->id);
	return ret;
}

static int pg_handler_get(store *st, const char *id, handler *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "handler", id);
	pparams p = {0};
	pp_text(&p, id);
	int ret = get_one(pgs_of(st), "SELECT " HANDLER_COLS " FROM handlers WHERE id = $1", &p,
	                  "reading a handler", rd_handler, sizeof *out, out, clr_handler, nf, err);
	pp_free(&p);
	return ret;
}

static int pg_handler_list(store *st, handler **out, size_t *n, th_error *err)
{
	return list_all(pgs_of(st), "SELECT " HANDLER_COLS " FROM handlers ORDER BY created_at, id",
	                NULL, "listing handlers", rd_handler, clr_handler, sizeof **out,
	                (void **)out, n, err);
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
	if (!(r = pq(s, c, "DELETE FROM handlers WHERE id = $1", &p, "deleting a handler", err)))
		ret = err ? err->code : TH_ESTORE;
	else if (pq_changes(r) == 0)
		ret = store_not_found(err, "handler", id);
out:
	PQclear(r);
	pp_free(&p);
	return ret;
}

static int pg_handler_delete(store *st, const char *id, th_error *err)
{
	return with_txn(pgs_of(st), op_handler_delete, (void *)id, err);
}

static int pg_handler_set_enabled(store *st, const char *id, bool enabled, th_error *err)
{
	pparams p = {0};
	pp_text(&p, id);
	pp_bool(&p, enabled);
	simple_op o = {.sql = "UPDATE handlers SET enabled = $2 WHERE id = $1",
	               .p = &p,
	               .what = "updating a handler"};
	int ret = with_conn(pgs_of(st), op_simple, &o, err);
	pp_free(&p);
	if (ret == 0 && o.changes == 0)
		ret = store_not_found(err, "handler", id);
	return ret;
}

/* ---- deliveries ---------------------------------------------------------------------------- */

/* Newest first (by insertion); optional status and event filters. */
static int pg_delivery_list(store *st, const char *status, const char *event_id, size_t limit,
                            delivery **out, size_t *n, th_error *err)
{
	*out = NULL;
	*n = 0;
	if (store_check_status_filter(status, err) != 0)
		return TH_EINVAL;
	limit = store_list_limit(limit, STORE_DELIVERY_LIST_DEFAULT);
	pparams p = {0};
	char sql[512], a[32] = "", b[32] = "";
	pp_i64(&p, (int64_t)limit);
	if (status) {
		pp_text(&p, status);
		str_printf(a, sizeof a, " AND d.status = $%d", p.n);
	}
	if (event_id) {
		pp_text_repair(&p, event_id);
		str_printf(b, sizeof b, " AND d.event_id = $%d", p.n);
	}
	str_printf(sql, sizeof sql,
	           "SELECT " DELIVERY_COLS " FROM deliveries d WHERE true%s%s"
	           " ORDER BY d.seq DESC LIMIT $1",
	           a, b);
	int ret = list_all(pgs_of(st), sql, &p, "listing deliveries", rd_delivery, clr_delivery,
	                   sizeof **out, (void **)out, n, err);
	pp_free(&p);
	return ret;
}

static int pg_delivery_get(store *st, const char *id, delivery *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	store_not_found_msg(nf, sizeof nf, "delivery", id);
	pparams p = {0};
	pp_text(&p, id);
	int ret =
	    get_one(pgs_of(st), "SELECT " DELIVERY_COLS " FROM deliveries d WHERE d.id = $1", &p,
	            "reading a delivery", rd_delivery, sizeof *out, out, clr_delivery, nf, err);
	pp_free(&p);
	return ret;
}

/* Claim due deliveries in one statement (see store.h for the rules). Rows
 * another transaction is claiming right now are skipped (SKIP LOCKED), so
 * several instances never claim the same delivery; the order rule is checked
 * against committed state, and a row claimed meanwhile by another instance is
 * re-checked after its lock (status running, lease valid: not claimed). */
static const char CLAIM_SQL[] =
    "WITH due AS ("
    "  SELECT d.id FROM deliveries d JOIN handlers h ON h.id = d.handler_id"
    "  WHERE d.status IN ('pending', 'running', 'failed')" /* = the partial indexes */
    "    AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1)"
    "         OR (d.status = 'running' AND d.claimed_until < $1))"
    "    AND h.enabled"
    "    AND (($2::bigint >> (CASE h.kind WHEN 'exec' THEN 0 WHEN 'forward' THEN 1"
    "                          WHEN 'func' THEN 2 ELSE 62 END)) & 1) = 1"
    "    AND NOT EXISTS (SELECT 1 FROM deliveries p"
    "         WHERE p.webhook_id = d.webhook_id AND p.handler_id = d.handler_id"
    "           AND p.event_seq < d.event_seq"
    "           AND p.status IN ('pending', 'running', 'failed'))"
    "  ORDER BY d.event_seq, d.generation LIMIT $3"
    "  FOR UPDATE OF d SKIP LOCKED"
    "), claimed AS ("
    "  UPDATE deliveries d SET status = 'running', claimed_until = $4,"
    "         attempts = d.attempts + 1, updated_at = $1"
    "  FROM due WHERE d.id = due.id"
    "  RETURNING " DELIVERY_COLS ", d.event_seq, d.generation"
    ") SELECT * FROM claimed ORDER BY event_seq, generation";

static int pg_delivery_claim(store *st, unsigned kinds, size_t max, int64_t lease_ms,
                             delivery **out, size_t *n, th_error *err)
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
	int ret = list_all(pgs_of(st), CLAIM_SQL, &p, "claiming deliveries", rd_delivery,
	                   clr_delivery, sizeof **out, (void **)out, n, err);
	pp_free(&p);
	return ret;
}

typedef struct pg_finish_many {
	const delivery_outcome *outs;
	size_t n;
	size_t changed;
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
		PGresult *r =
		    pq(s, c,
		       "UPDATE deliveries SET status = $2, next_attempt_at = $3,"
		       " last_error = $4, updated_at = $5, claimed_until = 0 WHERE id = $1",
		       &p, "recording a delivery's outcome", err);
		pp_free(&p);
		if (!r)
			return err ? err->code : TH_ESTORE;
		m->changed += (size_t)pq_changes(r);
		PQclear(r);
	}
	return 0;
}

static int pg_delivery_finish_many(store *st, const delivery_outcome *outs, size_t n,
                                   size_t *changed, th_error *err)
{
	if (changed)
		*changed = 0;
	for (size_t i = 0; i < n; i++)
		if (store_check_finish(outs[i].status, err) != 0)
			return TH_EINVAL;
	if (n == 0)
		return 0;
	pg_finish_many m = {outs, n, 0};
	int ret = with_txn(pgs_of(st), op_finish_many, &m, err);
	if (ret == 0 && changed)
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
	if (!(r = pq(s, c, "SELECT status FROM deliveries WHERE id = $1 FOR UPDATE", &p,
	             "reading a delivery", err))) {
		ret = err ? err->code : TH_ESTORE;
		goto out;
	}
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

static int pg_delivery_retry(store *st, const char *id, th_error *err)
{
	return with_txn(pgs_of(st), op_delivery_retry, (void *)id, err);
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
	event ev = {0};
	handler *hs = NULL;
	size_t nh = 0;
	int64_t seq = 0, generation = 0;
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
	if (PQntuples(r) == 0) {
		ret = store_not_found(err, "event", x->event_id);
		goto out;
	}
	pq_row w = {r, 0, 0, false};
	seq = read_event(&w, &ev, true);
	PQclear(r);
	r = NULL;
	if (w.oom) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
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
	if ((ret = queue_deliveries(s, c, &db, &ev, seq, generation, hs, nh, time_now_ms(), err)) !=
	    0)
		goto out;
	if ((ret = dbatch_flush(s, c, &db, err)) != 0)
		goto out;
	x->made = db.made;
out:
	PQclear(r);
	pp_free(&p);
	pp_free(&db.p);
	buf_free(&db.sql);
	store_event_clear(&ev);
	handler_list_free(hs, nh);
	return ret;
}

static int pg_event_replay(store *st, const char *event_id, size_t *out_n, th_error *err)
{
	replay_ctx x = {event_id, 0};
	int ret = with_txn(pgs_of(st), op_event_replay, &x, err);
	if (out_n)
		*out_n = ret == 0 ? x.made : 0;
	return ret;
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
static int pg_delivery_stats(store *st, int64_t counts[5], int64_t *oldest_pending_at,
                             th_error *err)
{
	if (oldest_pending_at)
		*oldest_pending_at = 0;
	stats_ctx x = {counts, oldest_pending_at};
	return with_conn(pgs_of(st), op_delivery_stats, &x, err);
}

/* ---- users and sessions -------------------------------------------------------------------- */

static int pg_user_put(store *st, const char *name, const char *pwhash, th_error *err)
{
	if (store_check_user(name, pwhash, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	pp_text(&p, name);
	pp_text(&p, pwhash);
	pp_i64(&p, time_now_ms());
	simple_op o = {.sql = "INSERT INTO users (name, pwhash, created_at) VALUES ($1, $2, $3)"
	                      " ON CONFLICT (name) DO UPDATE SET pwhash = excluded.pwhash",
	               .p = &p,
	               .what = "storing a user"};
	int ret = with_conn(pgs_of(st), op_simple, &o, err);
	pp_free(&p);
	return ret;
}

static void rd_str(pq_row *w, void *e)
{
	*(char **)e = row_str(w);
}

static void clr_str(void *e)
{
	free(*(char **)e);
}

static int pg_user_get_hash(store *st, const char *name, char **out_hash, th_error *err)
{
	*out_hash = NULL;
	char nf[160];
	str_printf(nf, sizeof nf, "no user named %s", name ? name : "(null)");
	pparams p = {0};
	pp_text(&p, name);
	int ret = get_one(pgs_of(st), "SELECT pwhash FROM users WHERE name = $1", &p,
	                  "reading a user", rd_str, sizeof *out_hash, out_hash, clr_str, nf, err);
	pp_free(&p);
	if (ret == 0 && !*out_hash)
		ret = th_err(err, TH_ENOMEM, "out of memory");
	return ret;
}

/* Insert or replace a session, purging expired ones, in one transaction. */
static int op_session_put(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	const user_session *us = ctx;
	pparams p = {0};
	int ret = 0;
	pp_i64(&p, time_now_ms());
	if ((ret = pq_do(s, c, "DELETE FROM sessions WHERE expires_at < $1", &p, "purging sessions",
	                 err)) != 0)
		goto out;
	pp_reset(&p);
	pp_text(&p, us->id_hash);
	pp_text(&p, us->user);
	pp_text(&p, us->csrf);
	pp_i64(&p, us->expires_at);
	ret = pq_do(s, c,
	            "INSERT INTO sessions (id_hash, \"user\", csrf, expires_at)"
	            " VALUES ($1, $2, $3, $4) ON CONFLICT (id_hash) DO UPDATE SET"
	            " \"user\" = excluded.\"user\", csrf = excluded.csrf,"
	            " expires_at = excluded.expires_at",
	            &p, "storing a session", err);
	if (ret == TH_ENOTFOUND)
		ret = th_err(err, TH_ENOTFOUND, "no user named %s", us->user);
out:
	pp_free(&p);
	return ret;
}

static int pg_session_put(store *st, const user_session *us, th_error *err)
{
	if (store_check_session(us, err) != 0)
		return TH_EINVAL;
	return with_txn(pgs_of(st), op_session_put, (void *)us, err);
}

static void rd_session(pq_row *w, void *e)
{
	user_session *s = e;
	s->id_hash = row_str(w);
	s->user = row_str(w);
	s->csrf = row_str(w);
	s->expires_at = row_i64(w);
}

static void clr_session(void *e)
{
	user_session_clear(e);
}

/* The session as stored, even when expired: the caller checks expires_at. */
static int pg_session_get(store *st, const char *id_hash, user_session *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	pparams p = {0};
	pp_text(&p, id_hash);
	int ret = get_one(pgs_of(st),
	                  "SELECT id_hash, \"user\", csrf, expires_at FROM sessions"
	                  " WHERE id_hash = $1",
	                  &p, "reading a session", rd_session, sizeof *out, out, clr_session,
	                  "no such session", err);
	pp_free(&p);
	return ret;
}

static int pg_session_delete(store *st, const char *id_hash, th_error *err)
{
	return delete_one(pgs_of(st), "DELETE FROM sessions WHERE id_hash = $1", id_hash, "session",
	                  false, err);
}

static const struct store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .migrate = pg_migrate,
    .ping = pg_ping,
    .webhook_insert = pg_webhook_insert,
    .webhook_update = pg_webhook_update,
    .webhook_get = pg_webhook_get,
    .webhook_find = pg_webhook_find,
    .webhook_list = pg_webhook_list,
    .webhook_delete = pg_webhook_delete,
    .token_put = pg_token_put,
    .token_get = pg_token_get,
    .token_list = pg_token_list,
    .token_delete = pg_token_delete,
    .events_put = pg_events_put,
    .event_get = pg_event_get,
    .event_list = pg_event_list,
    .handler_insert = pg_handler_insert,
    .handler_get = pg_handler_get,
    .handler_list = pg_handler_list,
    .handler_delete = pg_handler_delete,
    .handler_set_enabled = pg_handler_set_enabled,
    .delivery_list = pg_delivery_list,
    .delivery_get = pg_delivery_get,
    .delivery_claim = pg_delivery_claim,
    .delivery_finish = store_delivery_finish_one,
    .delivery_finish_many = pg_delivery_finish_many,
    .delivery_retry = pg_delivery_retry,
    .event_replay = pg_event_replay,
    .delivery_stats = pg_delivery_stats,
    .user_put = pg_user_put,
    .user_get_hash = pg_user_get_hash,
    .session_put = pg_session_put,
    .session_get = pg_session_get,
    .session_delete = pg_session_delete,
};

/* ---- opening -------------------------------------------------------------------------------- */

/* Split our own query parameters (pool_size, statement_timeout) off @url:
 * @s->conninfo gets the rest for libpq, and @s->masked a printable form. */
static int parse_url(pgs *s, const char *url, th_error *err)
{
	int ret = 0;
	buf out;
	buf_init(&out, 8192);
	int64_t pool = POOL_DEFAULT, timeout = STMT_TIMEOUT_DEFAULT;
	const char *env = getenv("TRELLOHOOK_DB_POOL");
	char *copy = NULL;
	if (env && *env && num_parse_i64(env, 1, POOL_MAX, &pool) != 0)
		return th_err(err, TH_ECONFIG,
		              "TRELLOHOOK_DB_POOL must be a number from 1 to %d, "
		              "not \"%.32s\"",
		              POOL_MAX, env);
	const char *q = strchr(url, '?');
	size_t base = q ? (size_t)(q - url) : strlen(url);
	{
		char *b = str_ndup(url, base);
		if (!b)
			return th_err(err, TH_ENOMEM, "out of memory");
		mask_url(b, s->masked, sizeof s->masked);
		free(b);
	}
	if (buf_append(&out, url, base) != 0) {
		ret = th_err(err, TH_ETOOBIG, "DATABASE_URL is too long");
		goto out;
	}
	if (q) {
		copy = str_dup(q + 1);
		if (!copy) {
			ret = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
		bool first = true;
		char *p = copy;
		while (p) {
			char *amp = strchr(p, '&');
			if (amp)
				*amp = '\0';
			char *eq = strchr(p, '=');
			const char *val = eq ? eq + 1 : "";
			size_t klen = eq ? (size_t)(eq - p) : strlen(p);
			if (klen == 9 && !strncmp(p, "pool_size", 9)) {
				if (num_parse_i64(val, 1, POOL_MAX, &pool) != 0) {
					ret = th_err(err, TH_ECONFIG,
					             "DATABASE_URL: pool_size must be a number "
					             "from 1 to %d, not \"%.32s\"",
					             POOL_MAX, val);
					goto out;
				}
			} else if (klen == 17 && !strncmp(p, "statement_timeout", 17)) {
				if (num_parse_i64(val, 0, 86400000, &timeout) != 0) {
					ret = th_err(err, TH_ECONFIG,
					             "DATABASE_URL: statement_timeout is in "
					             "milliseconds (0 to 86400000), not \"%.32s\"",
					             val);
					goto out;
				}
			} else if (*p) {
				if (buf_putc(&out, first ? '?' : '&') != 0 ||
				    buf_puts(&out, p) != 0) {
					ret = th_err(err, TH_ETOOBIG, "DATABASE_URL is too long");
					goto out;
				}
				first = false;
			}
			p = amp ? amp + 1 : NULL;
		}
	}
	s->pool_size = (size_t)pool;
	str_printf(s->options, sizeof s->options, "-c statement_timeout=%lld", (long long)timeout);
	if (!(s->conninfo = buf_detach(&out, NULL)))
		ret = th_err(err, TH_ENOMEM, "out of memory");
out:
	if (copy) {
		memset(copy, 0, strlen(copy));
		free(copy);
	}
	if (out.data)
		memset(out.data, 0, out.len);
	buf_free(&out);
	return ret;
}

/* Open a store on the PostgreSQL database named by @url (postgresql://... or
 * postgres://..., libpq's URI syntax, plus our optional parameters
 * pool_size=N and statement_timeout=MS), connect once to fail early, and
 * migrate. On success *out belongs to the caller (store_close()); it is safe
 * to use from several threads (at most pool_size queries run at once). On
 * failure @err names the URL with its password masked: TH_ECONFIG for a
 * malformed URL, TH_EUNAVAIL when the server cannot be reached, TH_ESTORE
 * when migrating fails. */
int store_pg_open(store **out, const char *url, th_error *err)
{
	*out = NULL;
	if (!url || !*url)
		return th_err(err, TH_ECONFIG, "the PostgreSQL URL is empty");
	pgs *s = calloc(1, sizeof *s);
	if (!s)
		return th_err(err, TH_ENOMEM, "out of memory");
	s->base.ops = &pg_ops;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return th_err(err, TH_ENOMEM, "cannot create a mutex");
	}
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return th_err(err, TH_ENOMEM, "cannot create a condition variable");
	}
	int ret = parse_url(s, url, err);
	if (ret != 0)
		goto fail;
	/* libpq's own check of the URI syntax, so a typo is a config error */
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(s->conninfo, &perr);
	if (!opts) {
		char msg[160];
		str_copy(msg, sizeof msg, perr ? perr : "out of memory");
		msg[strcspn(msg, "\n")] = '\0';
		/* libpq quotes the whole URI, password included: cut it off */
		char *quoted = strstr(msg, "\"postgres");
		if (quoted)
			*quoted = '\0';
		PQfreemem(perr);
		ret = th_err(err, TH_ECONFIG, "PostgreSQL URL %s is not valid: %s", s->masked, msg);
		goto fail;
	}
	PQconninfoFree(opts);
	s->conns = calloc(s->pool_size, sizeof *s->conns);
	s->busy = calloc(s->pool_size, sizeof *s->busy);
	if (!s->conns || !s->busy) {
		ret = th_err(err, TH_ENOMEM, "out of memory");
		goto fail;
	}
	if ((ret = with_conn(s, op_migrate, NULL, err)) != 0)
		goto fail;
	*out = &s->base;
	return 0;
fail:
	pg_close(&s->base);
	return ret;
}

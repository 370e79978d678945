/* SPDX-License-Identifier: MIT */
/*
 * pg_int.h — what the files of the PostgreSQL store share (private to
 * src/store): the handle and its pool, query parameters, and the helpers of
 * pg.c that every entity file (pg_webhooks.c, pg_events.c, pg_batch.c,
 * pg_deliveries.c, pg_users.c) runs its SQL with.
 *
 * Threads: the handle is shared; a connection is used by the one thread that
 * took it from the pool (with_conn), so the pg_op callbacks need no lock.
 */
#ifndef TH_PG_INT_H
#define TH_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>

#include "store/store_int.h"

/* Statements of the hot paths (an ingest batch, the dispatcher's claim after
 * every commit) that each connection prepares once and then runs by name,
 * so the server parses and plans them once per connection, not per batch
 * (pg.c, pq_prepare; which ones a connection has is kept with it by libpq's
 * event procedure, and forgotten when it is reset). The variants of a statement by its number of
 * rows or ids have one id each, up to the _MAX; bigger ones run unprepared. */
#define PQS_WEBHOOKS_MAX 4
#define PQS_EVENTS_MAX 64
enum pq_stmt {
	PQS_NONE = 0, /* run as text (PQexecParams) */
	PQS_CLAIM,
	PQS_CLAIM_PLAN, /* the claim's planner settings (pg_deliveries.c) */
	PQS_HANDLERS,
	PQS_BATCH_GUARD,     /* a one-round-trip batch's check (pg_batch.c) */
	PQS_WEBHOOK_CHECK_1, /* + k - 1: k webhook ids */
	PQS_EVENTS_1 = PQS_WEBHOOK_CHECK_1 + PQS_WEBHOOKS_MAX, /* + n - 1: n events */
	PQS_COUNT = PQS_EVENTS_1 + PQS_EVENTS_MAX
};

typedef struct pgs {
	store base;       /* first: store* <-> pgs* casts */
	char *conninfo;   /* the URL for libpq, our parameters removed (holds the password) */
	char masked[256]; /* the URL for messages: password masked, query dropped */
	char options[64]; /* "-c statement_timeout=N" */
	size_t pool_size;
	PGconn **conns;     /* pool_size slots; NULL until first used */
	bool *busy;         /* slot in use by a thread */
	pthread_mutex_t mu; /* guards busy[] and snap (not the connections themselves) */
	pthread_cond_t cv;  /* signalled when a slot is released */
	/* the enabled handlers as the last batch read them (pg_batch.c) */
	struct pg_handlers_snap *snap;
} pgs;

static inline pgs *pgs_of(store *st)
{
	return (pgs *)st;
}

/* An operation on one connection; it runs one transaction (or one statement). */
typedef int (*pg_op)(pgs *s, PGconn *c, void *ctx, th_error *err);
/* Run @op on a pooled connection; once more after a reconnect when the
 * connection broke. */
int with_conn(pgs *s, pg_op op, void *ctx, th_error *err);
/* Run @body in one transaction on a pooled connection; a failure rolls back. */
int with_txn(pgs *s, pg_op body, void *ctx, th_error *err);

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

void pp_free(pparams *p);

/* What libpq's statement functions take of a pparams. */
typedef struct pq_args {
	int n;
	const char *const *v;
	const int *len, *fmt;
} pq_args;
/* The checks every statement makes before it is sent (@p ran out of memory
 * while being built: TH_ENOMEM; a fault injected by a test: TH_ESTORE), then
 * @p (NULL: no parameters) as libpq takes it in *@a. */
int pq_args_of(const pparams *p, const char *what, pq_args *a, th_error *err);
void pp_reset(pparams *p);                      /* empty, for reuse */
const char *pp_own(pparams *p, char *str);      /* keep a heap string until pp_free */
void pp_text(pparams *p, const char *v);        /* NULL: SQL NULL; not copied */
void pp_text_repair(pparams *p, const char *v); /* outside text: bad UTF-8 -> '?' */
void pp_i64(pparams *p, int64_t v);
void pp_bool(pparams *p, bool v);
void pp_bytes(pparams *p, const void *data, size_t len); /* BYTEA, byte-exact */

/* pparams as a store_params: {&pp_params_ops, &p}. */
extern const struct store_params_ops pp_params_ops;

/* A failed statement as a th_error: TH_EEXISTS (unique), TH_ENOTFOUND
 * (foreign key), TH_EUNAVAIL (connection gone), else TH_ESTORE. */
int pg_fail(pgs *s, PGconn *c, const PGresult *r, const char *what, th_error *err);
/* Run @sql with @p (may be NULL): the result (PQclear it) or NULL with @err. */
PGresult *pq(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, th_error *err);
/* pq(), and the failed statement's SQLSTATE in @state (NULL: not wanted). */
PGresult *pq_state(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, char state[6],
                   th_error *err);
/* Run @sql with @p (may be NULL): 0 with the result in *@out (PQclear it),
 * or the error's code with *@out NULL. */
int pq_get(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, PGresult **out,
           th_error *err);
/* Keep with @c (libpq's event procedure) which statements it prepared; 0 or
 * TH_ENOMEM. Called once per new connection; a reset forgets them. */
int pq_prepared_attach(PGconn *c);
/* Drop the store's snapshot of the enabled handlers (pg_batch.c); at close. */
void pg_batch_forget_handlers(pgs *s);
/* The enabled handlers, for matching events (HANDLER_COLS). */
#define PG_ENABLED_HANDLERS "SELECT " HANDLER_COLS " FROM handlers WHERE enabled"
/* PQreset @c, then give the new session our settings (pg.c). Check PQstatus after. */
void pq_reset(PGconn *c);
/* Make sure @c has statement @id (PQS_*, its text @sql) prepared; outside
 * pipeline mode. 0, or the error (the caller then fails as the statement would). */
int pq_prepare(pgs *s, PGconn *c, int id, const char *sql, th_error *err);
/* Whether @c has statement @id prepared (pq_prepare). */
bool pq_is_prepared(pgs *s, PGconn *c, int id);
/* The server-side name of statement @id. */
void pq_stmt_name(int id, char out[16]);
/* A prepared statement failed as missing (SQLSTATE 26000): prepare again next time. */
void pq_prepared_lost(PGconn *c, const PGresult *r);
/* pq_state() for statement @id: prepared on first use on @c, then run by name. */
PGresult *pq_stmt(pgs *s, PGconn *c, int id, const char *sql, pparams *p, const char *what,
                  char state[6], th_error *err);
/* pq_state() of the statement prepared as @name (NULL: @sql as text). */
PGresult *pq_named(pgs *s, PGconn *c, const char *name, const char *sql, pparams *p,
                   const char *what, char state[6], th_error *err);
/* Run a statement whose result is not needed; 0 or the error code. */
int pq_do(pgs *s, PGconn *c, const char *sql, pparams *p, const char *what, th_error *err);
long pq_changes(PGresult *r); /* rows affected by a command */
int pq_begin(pgs *s, PGconn *c, th_error *err);
int pq_commit(pgs *s, PGconn *c, const char *what, th_error *err);
void pq_rollback(PGconn *c); /* whatever is open; errors ignored */

/* An operation PostgreSQL aborted for its overlap with another instance's
 * (a deadlock, 40P01, or a serialization failure, 40001: @sqlstate) rolled
 * back whole and may run again: pg_retry() tries it at most PG_RETRIES more
 * times, pausing pg_retry_pause() before each (10..40 ms times the try,
 * jittered). */
enum { PG_RETRIES = 3 };
bool pg_retryable(const char *sqlstate);
void pg_retry_pause(int try);
/* Run @op with @ctx on a pooled connection (with_txn() when @txn, else
 * with_conn()) and again while it fails retryably: @op leaves the SQLSTATE
 * of its failure in @state (char[6], e.g. through pq_state()). Each retry
 * is logged, naming @what. */
int pg_retry(pgs *s, bool txn, pg_op op, void *ctx, char *state, const char *what, th_error *err);

/* Statements in libpq's pipeline mode (pg.c): queued with pq_pipe_send,
 * sent at pq_pipe_sync, answered in order by pq_pipe_result / pq_pipe_done
 * and pq_pipe_synced. pq_pipe_end always ends it (after an error it reads
 * and drops what is still coming); roll back afterwards if needed. */
typedef struct pq_pipe {
	PGconn *c;
	int queued; /* statements queued since the last sync */
	int syncs;  /* sync points whose answer was not read yet */
	bool active;
	char sqlstate[6]; /* the first failed statement's SQLSTATE, "" when none */
} pq_pipe;
int pq_pipe_begin(pgs *s, pq_pipe *pl, PGconn *c, th_error *err);
int pq_pipe_send(pgs *s, pq_pipe *pl, const char *sql, pparams *p, const char *what, th_error *err);
/* pq_pipe_send() by name when the connection has statement @id prepared
 * (pq_prepare, before the pipeline began), else as the text @sql. */
int pq_pipe_send_stmt(pgs *s, pq_pipe *pl, int id, const char *sql, pparams *p, const char *what,
                      th_error *err);
int pq_pipe_sync(pgs *s, pq_pipe *pl, th_error *err);
PGresult *pq_pipe_result(pgs *s, pq_pipe *pl, const char *what, th_error *err);
int pq_pipe_done(pgs *s, pq_pipe *pl, const char *what, th_error *err);
int pq_pipe_synced(pgs *s, pq_pipe *pl, th_error *err);
void pq_pipe_end(pq_pipe *pl);

/* Every row of @r as @rt elements (store_rows_collect()), or its first row
 * into @out (store_rows_first(), TH_ENOTFOUND "@nf" when none). */
int pg_read_rows(PGresult *r, const store_rowtype *rt, void **out, size_t *n, th_error *err);
int pg_read_first(PGresult *r, const store_rowtype *rt, void *out, const char *nf, th_error *err);

/* A statement with parameters for pg_simple(); when @rt is set its rows are
 * read: the first into @first (TH_ENOTFOUND "@nf" when none) or, when
 * @first is NULL, all of them into *out / *n. */
typedef struct simple_op {
	const char *sql;
	pparams *p;
	const char *what;
	const store_rowtype *rt;
	void **out;
	size_t *n;
	void *first;
	const char *nf;
	long changes;     /* rows affected (commands) */
	char sqlstate[6]; /* a failure's SQLSTATE (pg_retry) */
	int stmt;         /* PQS_*: prepared once per connection (PQS_NONE: as text) */
} simple_op;
/* A pg_op running one simple_op (@ctx). */
int pg_simple(pgs *s, PGconn *c, void *ctx, th_error *err);

/* One statement with parameters @p on a pooled connection, its rows read as
 * @rt: the first into @out (TH_ENOTFOUND "@nf" when none), or all of them. */
int pg_get_one(pgs *s, const char *sql, pparams *p, const char *what, const store_rowtype *rt,
               void *out, const char *nf, th_error *err);
/* pg_get_one() with one text parameter, @key ($1). */
int pg_get_key(pgs *s, const char *sql, const char *key, const char *what, const store_rowtype *rt,
               void *out, const char *nf, th_error *err);
/* pg_get_key() by an id: TH_ENOTFOUND "no @entity with id @id" when none. */
int pg_get_id(pgs *s, const char *sql, const char *id, const char *what, const store_rowtype *rt,
              void *out, const char *entity, th_error *err);
int pg_list_all(pgs *s, const char *sql, pparams *p, const char *what, const store_rowtype *rt,
                void **out, size_t *n, th_error *err);
/* A command with parameters @p; *@changes (optional) the rows it changed. */
int pg_command(pgs *s, const char *sql, pparams *p, const char *what, long *changes, th_error *err);
/* DELETE by one text key; TH_ENOTFOUND when nothing was deleted (@show_key
 * false keeps the key out of the message). */
int pg_delete_one(pgs *s, const char *sql, const char *key, const char *what, bool show_key,
                  th_error *err);

/* The store_ops entries (STORE_OPS_ALL in store.h): pg_<op>, by entity file;
 * migrate, ping and probe_write in pg.c. */
#define PG_OP_DECL(op, params, args) int pg_##op params;
STORE_OPS_ALL(PG_OP_DECL)
#undef PG_OP_DECL

#endif

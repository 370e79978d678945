/* SPDX-License-Identifier: MIT */
/*
 * sqlite_int.h — what the files of the SQLite store share (private to
 * src/store): the handle, the cached statements, and the helpers of sqlite.c
 * that every entity file (sqlite_webhooks.c, sqlite_events.c,
 * sqlite_deliveries.c, sqlite_users.c) runs its SQL with.
 *
 * Locking: every helper named *_locked runs with `mu` held by its caller;
 * the others take it themselves. One connection, so one operation at a time.
 */
#ifndef TH_SQLITE_INT_H
#define TH_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/sqlite_ckpt.h"
#include "store/store_fault.h"
#include "store/store_int.h"

/* The cached statements (their SQL is sq_sql[] in sqlite.c). */
enum sq_q {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_EVENT_INSERT,
	Q_WEBHOOK_TOUCH,
	Q_WEBHOOK_COUNT_ADD,
	Q_ROLLUP_ADD,
	Q_ROLLUP_RANGE,
	Q_ROLLUP_RANGE_TYPES,
	Q_DELIVERY_INSERT,
	Q_HANDLERS_ENABLED,
	Q_WEBHOOK_INSERT,
	Q_WEBHOOK_UPDATE,
	Q_WEBHOOK_GET,
	Q_WEBHOOK_TAKES_EVENTS,
	Q_WEBHOOK_FIND,
	Q_WEBHOOK_LIST,
	Q_WEBHOOK_DELETE,
	Q_TOKEN_PUT,
	Q_TOKEN_GET,
	Q_TOKEN_LIST,
	Q_TOKEN_DELETE,
	Q_WEBHOOK_FILL_FP,
	Q_TOKEN_FILL_FP,
	Q_EVENT_GET,
	Q_EVENT_FOR_REPLAY,
	Q_NEXT_GENERATION,
	Q_HANDLER_INSERT,
	Q_HANDLER_GET,
	Q_HANDLER_LIST,
	Q_HANDLER_DELETE_DELIVERIES,
	Q_HANDLER_DELETE,
	Q_HANDLER_SET_ENABLED,
	Q_HANDLER_SET_SECRET,
	Q_DELIVERY_GET,
	Q_DELIVERY_DUE,
	Q_DELIVERY_QUEUE_EDGE,
	Q_DELIVERY_DUE_HEADS,
	Q_DELIVERY_MARK_RUNNING,
	Q_DELIVERY_CLAIMERS,
	Q_DELIVERY_RECOVER,
	Q_DELIVERY_FINISH,
	Q_DELIVERY_ROLLUP_ADD,
	Q_DELIVERY_ROLLUP_RANGE,
	Q_DELIVERY_STATUS,
	Q_DELIVERY_RETRY,
	Q_DELIVERY_STATS,
	Q_DELIVERY_OLDEST_PENDING,
	Q_USER_PUT,
	Q_USER_GET_HASH,
	Q_SESSION_PURGE,
	Q_SESSION_PUT,
	Q_SESSION_GET,
	Q_BACKFILL_MARK_GET,
	Q_BACKFILL_MARK_PUT,
	Q_SESSION_DELETE,
	Q_COUNT
};

/* The store handle. `base` must stay first (store* <-> sq* casts). */
typedef struct sq {
	store base;
	sqlite3 *db;              /* the one connection; used only under `mu` */
	pthread_mutex_t mu;       /* serialises every operation */
	sqlite3_stmt *q[Q_COUNT]; /* lazily prepared, persistent; reset after each use */
	sqlite_ckpt *ckpt;        /* background WAL checkpoints (file databases only) */
	unsigned claim_heads_run; /* claims left that ask the chain heads first (claim_select) */
} sq;

static inline sq *sq_of(store *st)
{
	return (sq *)st;
}

/* sqlite3_step, or SQLITE_IOERR when a test injects a fault (store_fault.h). */
static inline int sq_step(sqlite3_stmt *q)
{
	return store_fault_hit(STORE_FAULT_STEP) ? SQLITE_IOERR : sqlite3_step(q);
}

/* An error from the database: TH_ESTORE with "what: sqlite message". */
int sq_fail(sq *s, th_error *err, const char *what);
/* Was the last error a uniqueness (or primary key) violation? */
bool sq_is_unique(sq *s);
/* The cached statement @id, prepared on first use; NULL with @err when
 * preparing fails. The caller sq_reset()s it after use. */
sqlite3_stmt *sq_stmt(sq *s, enum sq_q id, th_error *err);
/* Reset a statement so it holds no lock and no bound pointers. NULL-safe. */
void sq_reset(sqlite3_stmt *st);
/* Run a cached statement that returns no rows (BEGIN, COMMIT, ...). */
int sq_run(sq *s, enum sq_q id, const char *what, th_error *err);
/* Run @sql (statements without parameters; rows ignored), lock held: 0, or
 * TH_ESTORE "@what: sqlite message". */
int sq_exec(sq *s, const char *sql, const char *what, th_error *err);
/* Roll back the open transaction, if any. */
void sq_rollback(sq *s);

/* Sequential parameter binding: the first error sticks in `rc`. */
typedef struct sq_bind {
	sqlite3_stmt *st;
	int i;
	int rc;
} sq_bind;

void sq_bind_text(sq_bind *b, const char *v); /* NULL binds SQL NULL; not copied */
void sq_bind_i64(sq_bind *b, int64_t v);

/* sq_bind as a store_params: {&sq_params_ops, &b} (booleans bind as 0/1). */
extern const struct store_params_ops sq_params_ops;
/* The cached statement @id (sq_stmt()) in @b, ready to bind its first
 * parameter: 0, or TH_ESTORE with @err when it cannot be prepared (b->st is
 * then NULL). The caller sq_reset()s b->st after use. */
int sq_prepare(sq *s, enum sq_q id, sq_bind *b, th_error *err);

/* Step the bound statement of @b once (a command: rows are not read) and
 * reset it: 0 when it ran to its end, else TH_ESTORE "@what: message"
 * (a binding that failed too). */
int sq_done(sq *s, sq_bind *b, const char *what, th_error *err);

/* Step @q to the end, every row read as @rt into a new array (see
 * store_rows_collect()). Does not reset @q. */
int sq_collect(sq *s, sqlite3_stmt *q, const store_rowtype *rt, void **out, size_t *n,
               const char *what, th_error *err);
/* sq_collect() of @q, a statement prepared for one listing, which is then
 * finalized; @bind_rc is what binding its parameters gave (SQLITE_OK, or
 * the failure: TH_ESTORE "@what: message", nothing read). */
int sq_collect_once(sq *s, sqlite3_stmt *q, int bind_rc, const store_rowtype *rt, void **out,
                    size_t *n, const char *what, th_error *err);
/* Step @q (bound) once and read its row as @rt into @out; no row:
 * TH_ENOTFOUND "@nf". Does not reset @q. */
int sq_read_one(sq *s, sqlite3_stmt *q, const store_rowtype *rt, void *out, const char *nf,
                const char *what, th_error *err);
/* Cached query @id with one or two text keys (@k2 NULL: one): its first row
 * as @rt into @out; TH_ENOTFOUND "@nf" when none. Takes the lock; _locked:
 * lock held (inside a transaction). */
int sq_get_one_locked(sq *s, enum sq_q id, const char *k1, const char *k2, const store_rowtype *rt,
                      void *out, const char *nf, const char *what, th_error *err);
int sq_get_one(sq *s, enum sq_q id, const char *k1, const char *k2, const store_rowtype *rt,
               void *out, const char *nf, const char *what, th_error *err);
/* sq_get_one() of cached query @q by one @id: TH_ENOTFOUND "no @entity with
 * id @id" when none. */
int sq_get_id(sq *s, enum sq_q q, const char *id, const store_rowtype *rt, void *out,
              const char *entity, const char *what, th_error *err);
/* Every row of cached query @id (no parameters) as @rt; _locked: lock held. */
int sq_list_locked(sq *s, enum sq_q id, const store_rowtype *rt, void **out, size_t *n,
                   const char *what, th_error *err);
int sq_list(sq *s, enum sq_q id, const store_rowtype *rt, void **out, size_t *n, const char *what,
            th_error *err);

/* Every row of cached query @id bound to the integers @args (@nargs of
 * them, in order) as @rt; takes the lock (_locked: lock held). */
int sq_list_ints_locked(sq *s, enum sq_q id, const int64_t *args, size_t nargs,
                        const store_rowtype *rt, void **out, size_t *n, const char *what,
                        th_error *err);
int sq_list_ints(sq *s, enum sq_q id, const int64_t *args, size_t nargs, const store_rowtype *rt,
                 void **out, size_t *n, const char *what, th_error *err);

/* Binds a command's parameters from @arg. */
typedef void (*sq_binder)(sq_bind *b, const void *arg);
/* Turns a uniqueness violation of @arg into a TH_EEXISTS message. */
typedef int (*sq_unique_fn)(sq *s, const void *arg, th_error *err);
/* Text parameters in order ({{a, b}, 2}), bound by sq_bind_texts (an
 * sq_binder). */
typedef struct sq_texts {
	const char *v[3];
	size_t n;
} sq_texts;
void sq_bind_texts(sq_bind *b, const void *arg);
/* Run cached command @id (no rows) under the lock, bound by @bind from @arg:
 * 0 with *@changes (optional) the rows changed; else @on_unique's error for a
 * uniqueness violation (when given) or TH_ESTORE "what: message". */
int sq_command(sq *s, enum sq_q id, sq_binder bind, const void *arg, const char *what,
               sq_unique_fn on_unique, int *changes, th_error *err);
/* DELETE by one text key; TH_ENOTFOUND when nothing was deleted (@show_key
 * false keeps the key out of the message). */
int sq_delete_one(sq *s, enum sq_q id, const char *key, const char *what, bool show_key,
                  th_error *err);

/* A transaction body: runs with the lock held between BEGIN and COMMIT. */
typedef int (*sq_txn_body)(sq *s, void *ctx, th_error *err);
/* Run @body in one write transaction under the lock; a failure rolls back. */
int sq_txn(sq *s, sq_txn_body body, void *ctx, th_error *err);
/* The same, committed with synchronous=NORMAL (no fsync of its own: in WAL
 * mode still atomic and consistent, on disk with the next synced commit or
 * checkpoint; a power cut may lose it, a crash of the process does not). For
 * writes that are safe to lose: the dispatcher's claims and outcomes (see
 * docs/DESIGN.md, "What a crash or a power cut can cost a delivery"). */
int sq_txn_nosync(sq *s, sq_txn_body body, void *ctx, th_error *err);
/* PRAGMA synchronous = FULL (@full) or NORMAL on the connection (lock held).
 * Whoever sets NORMAL sets FULL again before releasing the lock: every
 * other write of the connection keeps FULL. */
int sq_set_sync(sq *s, bool full, th_error *err);
/* Bind the text @key to @q, step it once and reset it; the step's result code. */
int sq_step_key(sqlite3_stmt *q, const char *key);

/* All enabled handlers, for matching (lock held). */
int sq_load_enabled_handlers(sq *s, handler **out, size_t *n, th_error *err);

/* The store_ops entries (STORE_OPS_ALL in store.h): sq_<op>, by entity file;
 * migrate, ping and probe_write in sqlite.c. */
#define SQ_OP_DECL(op, params, args) int sq_##op params;
STORE_OPS_ALL(SQ_OP_DECL)
#undef SQ_OP_DECL

#endif

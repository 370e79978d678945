/* SPDX-License-Identifier: MIT */
/*
 * store — the one interface to persistent state, with two implementations:
 * SQLite (store/sqlite.c, the embedded default) and PostgreSQL (store/pg.c).
 * Nothing above this layer writes SQL.
 *
 * A `store` is a handle with a table of operations (`store_ops`); the inline
 * wrappers below are what callers use. Every implementation:
 *  - is safe to call from several threads at once (it serialises or pools
 *    connections internally);
 *  - returns 0, TH_ENOTFOUND, TH_EEXISTS (a uniqueness rule was hit) or
 *    TH_ESTORE (with the database's message in @err);
 *  - fills caller-provided structs whose strings the caller then owns
 *    (free with the model's *_clear()) and arrays the caller frees with the
 *    matching *_list_free().
 *
 * Invariants enforced by the schema (not only by code):
 *  - a webhook is unique per (id_model, token) and per (id_model, token_fp),
 *    a token per token_fp (token_fp: the token's keyed fingerprint, see
 *    webhook/token in model.h; NULL for rows not yet filled);
 *  - an event is unique per (webhook_id, action_id);
 *  - a delivery is unique per (event_id, handler_id, generation) where a
 *    replay starts a new generation;
 *  - deleting a webhook KEEPS its events (history is never lost): events keep
 *    their webhook_id, which then refers to no row. Deleting a handler deletes
 *    its deliveries that are not done (nothing left to run them).
 */
#ifndef TH_STORE_H
#define TH_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct store store;

/* Filters for listing events; zero/NULL fields do not filter. */
typedef struct event_query {
	const char *webhook_id;
	const char *action_type;
	const char *text;   /* substring of the summary (case-insensitive) */
	int64_t after_seq;  /* only events with seq > after_seq (for tail) */
	int64_t before_seq; /* only events with seq < before_seq (paging), 0: no bound */
	size_t limit;       /* 0: 50; capped at 1000 */
	bool oldest_first;  /* default newest first */
} event_query;

/* One row of an event listing: the event without payload plus its sequence. */
typedef struct event_row {
	event ev; /* payload NULL in listings */
	int64_t seq;
} event_row;

/* The outcome of one delivery attempt, for delivery_finish_many(). */
typedef struct delivery_outcome {
	const char *id;
	enum delivery_status status; /* done, failed or dead */
	int64_t next_attempt_at;     /* failed: when to try again */
	const char *last_error;      /* bounded error text or output; NULL: none */
	int64_t run_us;              /* how long the attempt ran; < 0: unknown */
	/* > 0: the attempt this is the outcome of (the claimed delivery's
	 * attempts), written back: a claim meanwhile (the lease ended while the
	 * outcome waited; the dispatcher drops a delivery it still holds) counted
	 * an attempt that never ran. 0: the stored count stays. */
	int attempts;
} delivery_outcome;

/* Run-time buckets of the hourly delivery rollup (migration 9): bucket i
 * holds attempts that ran at most store_run_bucket_max_us[i] (and more than
 * the one before); the last is unbounded. */
#define STORE_RUN_BUCKETS 16
extern const int64_t store_run_bucket_max_us[STORE_RUN_BUCKETS];
/* The bucket of a run time; -1 when unknown (@run_us < 0). */
int store_run_bucket(int64_t run_us);

/* One cell of the hourly delivery rollup: how many attempts of @handler_id
 * ended in @status (done, failed or dead) during @hour, in run-time bucket
 * @bucket (-1: run time unknown, e.g. outcomes recorded before schema 9). */
typedef struct delivery_rollup_row {
	int64_t hour;
	char *handler_id;
	enum delivery_status status;
	int bucket;
	int64_t n;
} delivery_rollup_row;

/* One cell of the hourly event rollup (migration 7): how many events of
 * @action_type webhook @webhook_id received in hour @hour (hours since the
 * epoch, UTC: received_at / 3600000). Maintained inside events_put's
 * transaction, one upsert per distinct (webhook, type, hour) of a batch. */
typedef struct event_rollup_row {
	char *webhook_id;
	char *action_type;
	int64_t hour;
	int64_t n;
} event_rollup_row;

#define STORE_ROLLUP_MAX_ROWS 100000 /* event_rollup returns at most this many */

/* One page of events for export (issue 17), payloads included, oldest first:
 * the rows with after_seq < seq <= upto_seq that match the filters, at most
 * @limit (1..STORE_PAGE_MAX). The caller walks seq windows so that a page
 * never scans more than upto_seq - after_seq rows, however few match. */
typedef struct event_page_query {
	const char *webhook_id;  /* NULL: any */
	const char *action_type; /* NULL: any */
	int64_t since_ms;        /* received_at >= since_ms; 0: no lower bound */
	int64_t until_ms;        /* received_at < until_ms; 0: no upper bound */
	int64_t after_seq, upto_seq;
	size_t limit;
} event_page_query;

#define STORE_PAGE_MAX 1000

/* One batch of a prune (events_prune). The batch walks up to @limit events
 * in seq order after @after_seq and stops at the first one received at or
 * after the cutoff (received_at grows with seq; see DESIGN "Retention"). Of
 * the older ones, those whose deliveries are all done or dead are deleted
 * with their deliveries; the others are kept. */
typedef struct prune_batch {
	int64_t after_seq;  /* in: start after this seq; out: where the next batch starts */
	bool done;          /* out: nothing older than the cutoff after after_seq */
	int64_t events;     /* out: events deleted (dry run: that would be) */
	int64_t deliveries; /* out: their deliveries */
	int64_t kept;       /* out: older events kept for an unfinished delivery */
} prune_batch;

/* One batch of payloads_repack: the events with after_seq < seq <= upto_seq
 * whose payload is stored raw (rows from before migration 12) are packed
 * where that makes them smaller (store/payload_codec.h). */
typedef struct repack_batch {
	int64_t after_seq;    /* in: start after this seq; out: where the next batch starts */
	int64_t upto_seq;     /* in: the last seq to look at (the range's end) */
	bool done;            /* out: after_seq reached upto_seq */
	int64_t raw;          /* out: rows stored raw that were looked at */
	int64_t packed;       /* out: of those, now packed (the others do not shrink) */
	int64_t bytes_before; /* out: the packed rows' payloads, as they were */
	int64_t bytes_after;  /* out: and as they are now */
} repack_batch;

/* Outcome of storing one event in a batch. GONE: its webhook does not exist
 * (removed) or is being removed, checked inside the batch's transaction, so
 * no event is ever stored under a webhook `webhook rm` has dealt with. */
enum store_put { STORE_PUT_NEW = 0, STORE_PUT_DUPLICATE, STORE_PUT_FAILED, STORE_PUT_GONE };

typedef struct user_session {
	char *id_hash; /* SHA-256 hex of the session id (the id itself is never stored) */
	char *user;
	char *csrf; /* the session's CSRF token */
	int64_t expires_at;
} user_session;

/* Where backfill stands for one webhook (table backfill_marks). Strings are
 * owned (backfill_mark_clear); NULL when unknown. Times in ms since the epoch. */
typedef struct backfill_mark {
	char *webhook_id;
	char *last_action_id; /* the newest action stored, NULL: none yet */
	int64_t last_action_at;
	char *model_kind;         /* "board", "card", "list", NULL: not learnt yet */
	char *error;              /* the last pass's error, NULL: it ended well */
	int64_t recovered;        /* actions the last pass stored */
	int64_t gap_from, gap_to; /* dates of the oldest and newest of them */
	int64_t updated_at;
} backfill_mark;

/* Every operation of a store but its name and close, once: X(op, (parameters),
 * (arguments)). With STORE_OPS_CHECKED below it makes the members of struct
 * store_ops and each backend's declarations and table (pg_<op> in pg_int.h,
 * sq_<op> in sqlite_int.h); STORE_OPS alone, the inline store_<op>()
 * wrappers every caller uses (never st->ops-> directly). */
/* clang-format off */
#define STORE_OPS(X)                                                                       \
	X(migrate, (store *st, int *out_version, th_error *err), (st, out_version, err))          \
	X(ping, (store *st, th_error *err), (st, err))                                            \
	/* Can the store commit a write? One small transaction that writes a row and              \
	 * takes it back (nothing stays); fails as a real write would (disk full,                 \
	 * read-only, fsync error). */                                                            \
	X(probe_write, (store *st, th_error *err), (st, err))                                     \
	/* ---- webhooks */                                                                       \
	X(webhook_insert, (store *st, const webhook *w, th_error *err), (st, w, err))             \
	/* All mutable fields by id. A row in state removing is written only by an update         \
	 * that keeps it removing: a writer that read the row before `webhook rm` marked          \
	 * it (health pass, sync) gets TH_ENOTFOUND and never undoes the removal; a               \
	 * deleted row is TH_ENOTFOUND too. */                                                    \
	X(webhook_update, (store *st, const webhook *w, th_error *err), (st, w, err))             \
	X(webhook_get, (store *st, const char *id, webhook *out, th_error *err),                  \
	  (st, id, out, err))                                                                     \
	X(webhook_find, (store *st, const char *id_model, const char *tok, webhook *out,          \
	  th_error *err), (st, id_model, tok, out, err))                                          \
	X(webhook_list, (store *st, webhook **out, size_t *n, th_error *err),                     \
	  (st, out, n, err))                                                                      \
	X(webhook_delete, (store *st, const char *id, th_error *err), (st, id, err))              \
	/* ---- tokens */                                                                         \
	/* Insert or update (by token). */                                                        \
	X(token_put, (store *st, const token *t, th_error *err), (st, t, err))                    \
	X(token_get, (store *st, const char *tok, token *out, th_error *err),                     \
	  (st, tok, out, err))                                                                    \
	X(token_list, (store *st, token **out, size_t *n, th_error *err), (st, out, n, err))      \
	X(token_delete, (store *st, const char *tok, th_error *err), (st, tok, err))              \
	/* Give a row stored before tokens had fingerprints its token_fp: the webhook             \
	 * with id @id, or the token stored as @tok. Only a missing one is set, or one            \
	 * made without the secret key ("d:...") replaced by a keyed one ("k:..."); 0             \
	 * also when nothing was to be set; TH_EEXISTS when another row has that identity         \
	 * already (a duplicate from before: the row stays as it is). The service                 \
	 * computes @fp (the store cannot open sealed tokens). */                                 \
	X(webhook_fill_fp, (store *st, const char *id, const char *fp, th_error *err),            \
	  (st, id, fp, err))                                                                      \
	X(token_fill_fp, (store *st, const char *tok, const char *fp, th_error *err),             \
	  (st, tok, fp, err))                                                                     \
	/* events: store a batch in ONE transaction (group commit), recording one pending         \
	 * delivery per matching enabled handler for each new event. results[i] says what         \
	 * happened to evs[i]; a new event gets ev->id and ev->received_at set if they            \
	 * were NULL/0. An event whose webhook has no row, or a row in state removing, is         \
	 * not stored (STORE_PUT_GONE); the check holds until the commit (SQLite: one             \
	 * writer; PostgreSQL: the webhook rows are locked FOR KEY SHARE, so a DELETE             \
	 * waits). Returns non-zero only when the whole transaction failed (then nothing          \
	 * was stored). */                                                                        \
	X(events_put, (store *st, event **evs, size_t n, enum store_put *results,                 \
	  th_error *err), (st, evs, n, results, err))                                             \
	/* With its payload. */                                                                   \
	X(event_get, (store *st, const char *id, event *out, th_error *err),                      \
	  (st, id, out, err))                                                                     \
	/* The rollup cells with @from_hour <= hour < @to_hour, summed into buckets of            \
	 * @bucket_hours hours (>= 1; a row's hour is its bucket's first, hour - hour %           \
	 * bucket_hours), oldest first (at most STORE_ROLLUP_MAX_ROWS). Reads the small           \
	 * rollup table only, never events: bounded by hours x webhooks x action types.           \
	 * @per_webhook false: summed over webhooks too (webhook_id ""), one row per              \
	 * bucket and type, for charts that show types only (the dashboard). */                   \
	X(event_rollup, (store *st, int64_t from_hour, int64_t to_hour,                           \
	  int64_t bucket_hours, bool per_webhook, event_rollup_row **out, size_t *n,              \
	  th_error *err), (st, from_hour, to_hour, bucket_hours, per_webhook, out, n, err))       \
	/* history (export, prune): the lowest and highest seq stored (0, 0: none); a             \
	 * page of events with payloads; one prune batch in ONE short transaction                 \
	 * (@dry_run: counted, nothing changed); returning up to @max_pages free pages of         \
	 * the file to the system (SQLite with auto_vacuum=INCREMENTAL; elsewhere 0 and           \
	 * nothing done). */                                                                      \
	X(event_seq_bounds, (store *st, int64_t *min_seq, int64_t *max_seq, th_error *err),       \
	  (st, min_seq, max_seq, err))                                                            \
	X(events_prune, (store *st, int64_t cutoff_ms, size_t limit, bool dry_run,                \
	  prune_batch *b, th_error *err), (st, cutoff_ms, limit, dry_run, b, err))                \
	X(compact, (store *st, int64_t max_pages, int64_t *freed_pages, th_error *err),           \
	  (st, max_pages, freed_pages, err))                                                      \
	/* Pack the raw payloads of up to @limit seqs after b->after_seq (at most to              \
	 * b->upto_seq) in ONE short transaction; see repack_batch. PostgreSQL: done at           \
	 * once, nothing to do (TOAST compresses its values). */                                  \
	X(payloads_repack, (store *st, size_t limit, repack_batch *b, th_error *err),             \
	  (st, limit, b, err))                                                                    \
	/* *@found: of up to 32 events spread evenly over the seqs stored, one has its            \
	 * payload stored raw although packing would shrink it: events an older version           \
	 * stored (before schema 12), or a repack stopped midway, that payloads_repack            \
	 * would pack. 32 reads by key, for doctor. PostgreSQL: false (TOAST compresses           \
	 * its values). */                                                                        \
	X(payloads_raw_sample, (store *st, bool *found, th_error *err), (st, found, err))         \
	/* SQLite's auto_vacuum mode in *@mode (0 none, 1 full, 2 incremental; -1: not a          \
	 * SQLite store). @convert switches a file to incremental with one VACUUM, which          \
	 * rewrites the whole file (needs its size free on disk and holds the write lock          \
	 * throughout: run it with serve stopped). */                                             \
	X(vacuum_mode, (store *st, bool convert, int *mode, th_error *err),                       \
	  (st, convert, mode, err))                                                               \
	/* Rewrite an SQLite file with one VACUUM (also switching it to incremental               \
	 * auto-vacuum), as vacuum_mode's @convert does whatever the mode: rows packed by         \
	 * payloads_repack leave free space inside pages that only a rewrite gives back.          \
	 * *@bytes_before/after: the file's size (pages x page size). PostgreSQL: nothing         \
	 * done, 0 and 0. */                                                                      \
	X(vacuum, (store *st, int64_t *bytes_before, int64_t *bytes_after, th_error *err),        \
	  (st, bytes_before, bytes_after, err))                                                   \
	/* ---- handlers */                                                                       \
	X(handler_insert, (store *st, const handler *h, th_error *err), (st, h, err))             \
	X(handler_get, (store *st, const char *id, handler *out, th_error *err),                  \
	  (st, id, out, err))                                                                     \
	X(handler_list, (store *st, handler **out, size_t *n, th_error *err),                     \
	  (st, out, n, err))                                                                      \
	X(handler_delete, (store *st, const char *id, th_error *err), (st, id, err))              \
	X(handler_set_enabled, (store *st, const char *id, bool enabled, th_error *err),          \
	  (st, id, enabled, err))                                                                 \
	/* Replace the handler's stored secret by @secret only if it is still @old                \
	 * (compare-and-set: two processes sealing the same row do not both win).                 \
	 * *changed says whether the row was updated. */                                          \
	X(handler_set_secret, (store *st, const char *id, const char *old,                        \
	  const char *secret, bool *changed, th_error *err),                                      \
	  (st, id, old, secret, changed, err))                                                    \
	/* ---- deliveries */                                                                     \
	X(delivery_get, (store *st, const char *id, delivery *out, th_error *err),                \
	  (st, id, out, err))                                                                     \
	/* Claim up to @max due deliveries (pending or failed with next_attempt_at <=             \
	 * now, or running with an expired lease) whose handler kind is in @kinds                 \
	 * (bitmask of 1 << handler_kind). Respects order: a delivery is not claimed              \
	 * while an earlier event of the same webhook has an unfinished delivery to the           \
	 * same handler. Claimed rows become running with claimed_until = now + lease_ms. */      \
	X(delivery_claim, (store *st, unsigned kinds, size_t max, int64_t lease_ms,               \
	  delivery **out, size_t *n, th_error *err),                                              \
	  (st, kinds, max, lease_ms, out, n, err))                                                \
	/* Make a failed/dead/done delivery pending again, due now. */                            \
	X(delivery_retry, (store *st, const char *id, th_error *err), (st, id, err))              \
	/* Counts per status, for metrics. @counts is indexed by delivery_status. */              \
	X(delivery_stats, (store *st, int64_t counts[5], int64_t *oldest_pending_at,              \
	  th_error *err), (st, counts, oldest_pending_at, err))                                   \
	/* The delivery rollup cells with @from_hour <= hour < @to_hour, oldest first (at         \
	 * most STORE_ROLLUP_MAX_ROWS); the rollup table only: bounded by hours x                 \
	 * handlers x 3 outcomes x STORE_RUN_BUCKETS. */                                          \
	X(delivery_rollup, (store *st, int64_t from_hour, int64_t to_hour,                        \
	  delivery_rollup_row **out, size_t *n, th_error *err),                                   \
	  (st, from_hour, to_hour, out, n, err))                                                  \
	/* ---- admin users and sessions */                                                       \
	X(user_put, (store *st, const char *name, const char *pwhash, th_error *err),             \
	  (st, name, pwhash, err))                                                                \
	X(user_get_hash, (store *st, const char *name, char **out_hash, th_error *err),           \
	  (st, name, out_hash, err))                                                              \
	X(session_put, (store *st, const user_session *s, th_error *err), (st, s, err))           \
	X(session_get, (store *st, const char *id_hash, user_session *out, th_error *err),        \
	  (st, id_hash, out, err))                                                                \
	X(session_delete, (store *st, const char *id_hash, th_error *err),                        \
	  (st, id_hash, err))                                                                     \
	/* ---- backfill marks */                                                                 \
	/* The backfill mark of @webhook_id; TH_ENOTFOUND when it has none yet. */                \
	X(backfill_mark_get, (store *st, const char *webhook_id, backfill_mark *out,              \
	  th_error *err), (st, webhook_id, out, err))                                             \
	/* Insert or update @m. The newest-action mark (last_action_id/_at) only moves            \
	 * forward: an older or equal date, or a NULL id, keeps the stored one; the other         \
	 * fields are replaced. */                                                                \
	X(backfill_mark_put, (store *st, const backfill_mark *m, th_error *err),                  \
	  (st, m, err))

/* The operations whose arguments store.c checks before a backend sees them
 * (and whose optional counts it fills: the backend always gets one, the
 * caller sees 0 after a failure): their store_<op>() is a function of
 * store.c, not an inline wrapper. */
#define STORE_OPS_CHECKED(X)                                                               \
	/* Record several outcomes in ONE transaction (one fsync for all: the                     \
	 * dispatcher's workers finish many deliveries between two commits). Ids that no          \
	 * longer exist are skipped; @changed (may be NULL) counts the rows updated. All          \
	 * or nothing: on failure none is recorded. */                                            \
	X(delivery_finish_many, (store *st, const delivery_outcome *outs, size_t n,               \
	  size_t *changed, th_error *err), (st, outs, n, changed, err))                           \
	/* Start-up recovery: deliveries left running by a process of this host that has          \
	 * died (kill -9, a crash) become failed and due now (the attempt counts),                \
	 * instead of holding their lease until it runs out and stalling their webhook's          \
	 * queue. A claim records the claiming process (see struct store's `instance`); a         \
	 * live process's claims, and those of other hosts, are never touched. @recovered         \
	 * (may be NULL) counts them. */                                                          \
	X(delivery_recover, (store *st, size_t *recovered, th_error *err),                        \
	  (st, recovered, err))                                                                   \
	/* New pending deliveries of an event to every matching handler; @out_n counts            \
	 * them. */                                                                               \
	X(event_replay, (store *st, const char *event_id, size_t *out_n, th_error *err),          \
	  (st, event_id, out_n, err))
#define STORE_OPS_ALL(X) STORE_OPS(X) STORE_OPS_CHECKED(X)
/* clang-format on */

struct store_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(store *st);
	/* how the listings built from filters run (store_query.c) */
	const struct store_dialect *dialect;
#define STORE_OP_MEMBER(op, params, args) int(*op) params;
	STORE_OPS_ALL(STORE_OP_MEMBER)
#undef STORE_OP_MEMBER
};

#define STORE_INSTANCE_MAX 160

struct store {
	const struct store_ops *ops;
	/* Who claims through this handle: "HOST:PID:START" (START: the process's
	 * start time, so a reused pid is not taken for the same process). Set
	 * at open, read-only after. Recorded in deliveries.claimed_by. */
	char instance[STORE_INSTANCE_MAX];
	/* Set by events_put once a batch it committed made deliveries (due at
	 * once); taken by store_take_fresh_deliveries. */
	atomic_bool fresh_deliveries;
};

/* ---- the inline wrappers every caller uses (never st->ops-> directly) ---------- */

/* Did events_put, through @st, commit deliveries since the last call? (And
 * forget it.) After a group commit the dispatcher is woken only then: a
 * claim after every batch of events no handler takes is a transaction for
 * nothing (on PostgreSQL ~8% of the server's CPU per event stored). Work
 * from elsewhere (other processes, retries, replays) waits for its poll. */
static inline bool store_take_fresh_deliveries(store *st)
{
	return atomic_exchange_explicit(&st->fresh_deliveries, false, memory_order_acq_rel);
}

/* "sqlite" or "postgresql". */
static inline const char *store_name(const store *st)
{
	return st->ops->name;
}

#define STORE_OP_WRAPPER(op, params, args)  \
	static inline int store_##op params \
	{                                   \
		return st->ops->op args;    \
	}
STORE_OPS(STORE_OP_WRAPPER)
#undef STORE_OP_WRAPPER

/* Record several outcomes (STORE_OPS_CHECKED) once each is checked: a status
 * other than done, failed or dead is TH_EINVAL and records nothing. */
int store_delivery_finish_many(store *st, const delivery_outcome *outs, size_t n, size_t *changed,
                               th_error *err);
int store_delivery_recover(store *st, size_t *recovered, th_error *err);

/* Listings with filters, the same SQL on both backends (store_query.c):
 * events without payloads, newest first (or oldest first); a page of events
 * with payloads (export); deliveries newest first by insertion (@status,
 * @event_id NULL: any). */
int store_event_list(store *st, const event_query *q, event_row **out, size_t *n, th_error *err);
int store_event_page(store *st, const event_page_query *q, event_row **out, size_t *n,
                     th_error *err);
int store_delivery_list(store *st, const char *status, const char *event_id, size_t limit,
                        delivery **out, size_t *n, th_error *err);
int store_event_replay(store *st, const char *event_id, size_t *out_n, th_error *err);
/* Record an attempt's outcome (delivery_finish_many() of one): status done,
 * failed (with @next_attempt_at) or dead. TH_ENOTFOUND for an unknown id. */
int store_delivery_finish(store *st, const char *id, enum delivery_status status,
                          int64_t next_attempt_at, const char *last_error, th_error *err);

/* Open the store named by a DATABASE_URL ("sqlite:PATH" or "postgresql://...")
 * and migrate it to the current schema. Free with store_close(). */
int store_open(store **out, const char *database_url, th_error *err);
void store_close(store *st);

/* Implementations' constructors (used by store_open). */
int store_sqlite_open(store **out, const char *path, th_error *err);
int store_pg_open(store **out, const char *conninfo, th_error *err);

/* Array helpers. */
void webhook_list_free(webhook *a, size_t n);
void token_list_free(token *a, size_t n);
void event_row_list_free(event_row *a, size_t n);
void handler_list_free(handler *a, size_t n);
void event_rollup_list_free(event_rollup_row *a, size_t n);
void delivery_rollup_list_free(delivery_rollup_row *a, size_t n);
void delivery_list_free(delivery *a, size_t n);
void user_session_clear(user_session *s);
void backfill_mark_clear(backfill_mark *m);

#endif

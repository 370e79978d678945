/* SPDX-License-Identifier: MIT */
/*
 * store_int.h — what the store implementations (sqlite.c, pg.c) share, kept
 * once in store.c: argument checks and their messages, events_put's filling
 * (and undoing) of generated ids and times, list limits, LIKE patterns and
 * matching new events to handlers. Private to src/store.
 */
#ifndef TH_STORE_INT_H
#define TH_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_LIST_LIMIT_MAX 1000
#define STORE_EVENT_LIST_DEFAULT 50
#define STORE_DELIVERY_LIST_DEFAULT 100

/* @limit with 0 meaning @dflt, capped at STORE_LIST_LIMIT_MAX. */
size_t store_list_limit(size_t limit, size_t dflt);

/* The claim's window for a claim of @max rows: it first searches this many
 * unfinished deliveries at the front of the queue (event order), and only
 * when those cannot tell, the heads of the (handler, webhook) chains (see
 * the claim queries in sqlite.c and pg_deliveries.c). A few times the
 * limit, at least STORE_CLAIM_WINDOW_MIN. */
#define STORE_CLAIM_WINDOW_MIN 64
static inline int64_t store_claim_window(size_t max)
{
	int64_t w = 4 * (int64_t)max;
	return w < STORE_CLAIM_WINDOW_MIN ? STORE_CLAIM_WINDOW_MIN : w;
}

/* Argument checks shared by the backends: 0, or TH_EINVAL with the message. */
int store_check_webhook(const webhook *w, th_error *err);
int store_check_token(const token *t, th_error *err);
int store_check_handler(const handler *h, th_error *err);
int store_check_user(const char *name, const char *pwhash, th_error *err);
int store_check_session(const user_session *us, th_error *err);
int store_check_finish(enum delivery_status status, th_error *err);
/* For a batch just stored: true when evs[i] is the first NEW event of its
 * rollup key (webhook, action type, hour of received_at) in the batch; *hour
 * and *count (how many new events share the key) are then set. So each
 * backend makes one rollup upsert per distinct key per batch. */
bool store_batch_rollup_first(event *const *evs, const enum store_put *results, size_t n, size_t i,
                              int64_t *hour, int64_t *count);
/* For a batch just stored: true when evs[i] is the first NEW event of its
 * webhook in the batch; *latest then gets the latest received_at of that
 * webhook's new events and *count how many there are. So each backend
 * updates webhooks.last_event_at and the webhook's event counter (migration
 * 9) once per webhook per batch, not once per event. */
bool store_batch_webhook_latest(event *const *evs, const enum store_put *results, size_t n,
                                size_t i, int64_t *latest, int64_t *count);
int store_check_status_filter(const char *status, th_error *err);
/* event_rollup's checks: *@out and *@n emptied, buckets of at least one
 * hour (else TH_EINVAL). */
int store_check_rollup(int64_t bucket_hours, event_rollup_row **out, size_t *n, th_error *err);

/* TH_EEXISTS for a webhook insert/update that hit a uniqueness rule:
 * @model_token says it was (id_model, token), else the id. */
int store_webhook_exists(const webhook *w, bool model_token, th_error *err);

/* migrate's check: TH_ESTORE ("upgrade trellohook") when the database's
 * schema @version is newer than @latest, the newest this build knows. */
int store_check_schema_version(int version, int latest, th_error *err);

/* TH_ENOTFOUND "no @what with id @id" (@id NULL shows "(null)"). */
int store_not_found(th_error *err, const char *what, const char *id);
/* The same message into @out, for a lookup that reports it later. */
const char *store_not_found_msg(char *out, size_t size, const char *what, const char *id);
/* TH_ENOTFOUND for a webhook update that changed no row (gone, or removing). */
int store_webhook_gone(th_error *err, const char *id);
/* TH_ENOTFOUND for a DELETE that removed nothing: "no @what with id @key",
 * or "no such @what" when @show_key is false (the key is a secret). */
int store_delete_not_found(th_error *err, const char *what, const char *key, bool show_key);
/* TH_EINVAL: a running delivery belongs to its worker. */
int store_delivery_running(th_error *err, const char *id);

/* Can events_put store @ev at all? (Others stay STORE_PUT_FAILED.) */
static inline bool store_event_storable(const event *ev)
{
	return ev && ev->webhook_id && ev->action_id && (ev->payload || !ev->payload_len);
}

/* events_put, before storing: give every storable event without an id a new
 * one and without received_at @now, recording in @filled[i] (bit 1: id,
 * bit 2: time) what was filled. TH_ENOMEM when an id cannot be made. */
int store_events_fill(event **evs, size_t n, int64_t now, unsigned char *filled, th_error *err);
/* events_put, after: an event that was not stored (results[i] not NEW) gets
 * back the id/time it came with. */
void store_events_unfill(event **evs, size_t n, const enum store_put *results,
                         const unsigned char *filled);

/* Free the strings (and json) of an event read by a store and zero it; the
 * store does not depend on event.c. */
void store_event_clear(event *ev);

/* Append @s to @b as a LIKE pattern matching it anywhere, literally ('\'
 * escapes %, _ and \). Non-zero when @b is full. */
int store_like_pattern(buf *b, const char *s);

/* Called once per handler that matches: @id is a new delivery id. */
typedef int (*store_match_fn)(void *ctx, const handler *h, const char *id, th_error *err);
/* Call @fn for each handler of @hs that matches @ev (handler_matches()).
 * Stops at the first non-zero return of @fn; TH_EIO without randomness. */
int store_each_match(const event *ev, const handler *hs, size_t nh, store_match_fn fn, void *ctx,
                     th_error *err);

/* ---- the columns every backend selects, in the order the readers read them ---- */

#define WEBHOOK_COLS                                                                          \
	"id, trello_id, id_model, model_type, model_name, description, callback_url, token, " \
	"state, active, consecutive_failures, first_consecutive_fail_at, created_at, "        \
	"last_event_at, token_fp"
/* The webhook listing's event count (webhooks aliased w): the counter kept at
 * ingest (migration 9), one primary-key lookup, never a count over events. */
#define WEBHOOK_EVENT_COUNT \
	"coalesce((SELECT n FROM webhook_event_count c WHERE c.webhook_id = w.id), 0)"
#define EVENT_COLS                                                                       \
	"seq, id, webhook_id, action_id, action_type, action_date, model_id, board_id, " \
	"board_name, list_id, list_name, card_id, card_name, member, summary, source, "  \
	"member_id, received_at"
/* After EVENT_COLS where the payload is read: how it is stored, then its
 * bytes (store/payload_codec.h; store_read_event unpacks them). */
#define EVENT_PAYLOAD_COLS "payload_codec, payload"
#define HANDLER_COLS "id, kind, target, on_types, model, secret, enabled, created_at"
#define DELIVERY_COLS                                                               \
	"d.id, d.event_id, d.handler_id, d.status, d.attempts, d.next_attempt_at, " \
	"d.last_error, d.updated_at, d.claimed_until"
#define TOKEN_COLS "token, member, expires_at, state, checked_at, created_at, token_fp"

/* Fill @st->instance for this process (store_open's backends, at open). */
void store_instance_init(store *st);
/* Is @claimed_by (a stored instance) a process of this host that is gone?
 * False for another host's, a live one's, or anything unreadable. */
bool store_instance_dead(const store *st, const char *claimed_by);
#define STORE_RECOVERED_ERROR "the process running it stopped (recovered at start-up)"

/* A stored token_fp that webhook_fill_fp/token_fill_fp may set: none yet, or
 * one made without the secret key ("d:") when the new one (@param) is keyed
 * ("k:"; see tokens_fingerprint() in the service). */
#define FP_REPLACEABLE(param) "(token_fp IS NULL OR (token_fp LIKE 'd:%' AND " param " LIKE 'k:%'))"

/* ---- reading rows (store_rows.c) ------------------------------------------------------
 *
 * A backend exposes a query's result as a store_row: a cursor with a table
 * of column getters. Each row type (webhook, token, event, event row,
 * handler, delivery, session, one text column) is then read once, in
 * store_rows.c, the same way for every backend. Columns are read in order:
 * each row_*() call takes the next one. */

typedef struct store_row store_row;

struct store_row_ops {
	/* Move to the next row: 1 when there is one, 0 at the end, else an error
	 * code with @err filled (the backend's message, prefixed with r->what). */
	int (*next)(store_row *r, th_error *err);
	bool (*is_null)(const store_row *r, int col);
	/* The column's text, borrowed until the next move; *len its length. */
	const char *(*text)(const store_row *r, int col, size_t *len);
	int64_t (*integer)(const store_row *r, int col); /* NULL reads as 0 */
	bool (*boolean)(const store_row *r, int col);    /* NULL reads as false */
	/* A binary column as a heap copy with a NUL after its @*len bytes (the
	 * caller frees it); NULL when out of memory. */
	char *(*blob)(const store_row *r, int col, size_t *len);
};

/* A cursor over one result. The backend fills ops, src (its statement or
 * result), row (its position, if it keeps one) and what (for messages);
 * col and oom belong to the readers. Used by one thread at a time. */
struct store_row {
	const struct store_row_ops *ops;
	void *src;
	int row;
	int col;
	bool oom; /* a copy failed: the element read is incomplete */
	const char *what;
	/* A reader found a stored value it cannot read (a damaged payload):
	 * what is wrong and what to do; the element read is incomplete. */
	char bad[256];
};

/* The next column as a heap string (NULL for SQL NULL), as an integer, as a
 * boolean, or as a binary payload (see store_row_ops.blob). */
char *row_text(store_row *r);
int64_t row_int(store_row *r);
bool row_bool(store_row *r);
char *row_blob(store_row *r, size_t *len);

/* One row type: its element size, its reader (fills a zeroed element from the
 * current row) and its clearer (frees what the reader filled). */
typedef struct store_rowtype {
	size_t size;
	void (*read)(store_row *r, void *elem);
	void (*clear)(void *elem);
} store_rowtype;

extern const store_rowtype store_rt_webhook; /* WEBHOOK_COLS + event count */
extern const store_rowtype store_rt_token;   /* TOKEN_COLS */
/* EVENT_COLS + EVENT_PAYLOAD_COLS (an event) */
extern const store_rowtype store_rt_event;
extern const store_rowtype store_rt_event_row; /* EVENT_COLS (an event_row) */
/* EVENT_COLS + EVENT_PAYLOAD_COLS (an event_row) */
extern const store_rowtype store_rt_event_row_full;
extern const store_rowtype store_rt_handler;       /* HANDLER_COLS */
extern const store_rowtype store_rt_delivery;      /* DELIVERY_COLS */
extern const store_rowtype store_rt_backfill_mark; /* BACKFILL_MARK_COLS */
#define BACKFILL_MARK_COLS                                                                    \
	"webhook_id, last_action_id, last_action_at, model_kind, error, recovered, gap_from," \
	" gap_to, updated_at"
/* A backfill mark's upsert, for both backends (@P: the nine placeholders in
 * BACKFILL_MARK_COLS order): the newest-action mark only moves forward, a
 * NULL model kind keeps the stored one, the rest is replaced. */
#define BACKFILL_MARK_PUT_SQL(P)                                                                 \
	"INSERT INTO backfill_marks (" BACKFILL_MARK_COLS ") VALUES (" P ")"                     \
	" ON CONFLICT (webhook_id) DO UPDATE SET"                                                \
	" last_action_id = CASE WHEN " BACKFILL_MARK_NEWER                                       \
	"  THEN excluded.last_action_id ELSE backfill_marks.last_action_id END,"                 \
	" last_action_at = CASE WHEN " BACKFILL_MARK_NEWER                                       \
	"  THEN excluded.last_action_at ELSE backfill_marks.last_action_at END,"                 \
	" model_kind = COALESCE(excluded.model_kind, backfill_marks.model_kind),"                \
	" error = excluded.error, recovered = excluded.recovered, gap_from = excluded.gap_from," \
	" gap_to = excluded.gap_to, updated_at = excluded.updated_at"
/* The new row names a newer action than the stored one (or the first). */
#define BACKFILL_MARK_NEWER                                                              \
	"excluded.last_action_id IS NOT NULL AND (backfill_marks.last_action_id IS NULL" \
	" OR excluded.last_action_at > backfill_marks.last_action_at)"
extern const store_rowtype store_rt_session; /* id_hash, user, csrf, expires_at */
extern const store_rowtype store_rt_text;    /* one text column (a char *) */
extern const store_rowtype store_rt_rollup;  /* webhook_id, action_type, hour, n */
/* hour, handler_id, status, bucket, n */
extern const store_rowtype store_rt_delivery_rollup;
/* The delivery rollup's range read, for both backends ($1/?1 from, $2/?2 to). */
#define DELIVERY_ROLLUP_RANGE_SQL(P1, P2)                                                        \
	"SELECT hour, handler_id, status, bucket, n FROM delivery_rollup_hour WHERE hour >= " P1 \
	" AND hour < " P2 " ORDER BY hour, handler_id, status, bucket LIMIT 100000"

/* Reads EVENT_COLS of the current row into @ev (and EVENT_PAYLOAD_COLS after
 * them when @with_payload: the received bytes, unpacked; r->bad set when they
 * cannot be); returns the event's seq. */
int64_t store_read_event(store_row *r, event *ev, bool with_payload);

/* ---- writing parameters (store_rows.c) ----------------------------------------------
 *
 * The mirror of store_row: a backend exposes a statement's parameters as a
 * store_params (its ops append the next one), and the parameters of a row
 * type are written once, here, in the order of its *_COLS. */

typedef struct store_params store_params;

struct store_params_ops {
	void (*text)(store_params *w, const char *v); /* NULL: SQL NULL; not copied */
	void (*integer)(store_params *w, int64_t v);
	void (*boolean)(store_params *w, bool v);
};

struct store_params {
	const struct store_params_ops *ops;
	void *dst; /* the backend's parameter list (pparams, sq_bind) */
};

/* WEBHOOK_COLS (created_at only when @insert, else left out). */
void store_params_webhook(store_params *w, const webhook *wh, bool insert);
void store_params_token(store_params *w, const token *t);     /* TOKEN_COLS */
void store_params_handler(store_params *w, const handler *h); /* HANDLER_COLS */
/* id_hash, user, csrf, expires_at */
void store_params_session(store_params *w, const user_session *us);

/* ---- listings built from their filters (store_query.c) -----------------------------
 *
 * event_list, event_page and delivery_list add a condition per filter given;
 * store_query.c builds them once, in the SQL both backends run, and each
 * backend's dialect says how its SQL differs and runs the statement. */

/* Writes a statement's values to @w in the order of their placeholders. */
typedef void (*store_binder)(store_params *w, const void *ctx);

struct store_dialect {
	char style;                 /* placeholders: '$' ($1, $2, ...) or '?' (?1, ?2, ...) */
	const char *like;           /* " AND summary <a LIKE that folds ASCII case> " */
	const char *delivery_order; /* " ORDER BY <deliveries in insertion order> DESC LIMIT " */
	/* Run @sql with the values @bind writes from @ctx; every row as @rt
	 * into a new array (*out, *n; see store_rows_collect()). */
	int (*list)(store *st, const char *sql, store_binder bind, const void *ctx,
	            const store_rowtype *rt, void **out, size_t *n, const char *what,
	            th_error *err);
};
typedef struct store_dialect store_dialect;

/* Every remaining row of @r as a new array of @t elements (NULL when none),
 * the caller's on success; on failure everything read is freed, *out is NULL
 * and *n 0. */
int store_rows_collect(store_row *r, const store_rowtype *t, void **out, size_t *n, th_error *err);
/* Free an array of @n @t elements (each cleared with @t's clearer), as the
 * *_list_free() of store.h do. NULL-safe. */
void store_rows_free(void *a, size_t n, const store_rowtype *t);
/* The next row of @r into @out (zeroed first): TH_ENOTFOUND "@nf" when there
 * is none, TH_ENOMEM (out cleared) when a copy failed. */
int store_rows_first(store_row *r, const store_rowtype *t, void *out, const char *nf,
                     th_error *err);

#endif

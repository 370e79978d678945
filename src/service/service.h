/* SPDX-License-Identifier: MIT */
/*
 * service — the one door into the core (rank 3): every operation the CLI,
 * the admin, the callbacks route and the periodic health pass perform on the
 * store or against Trello:
 *
 *   crypto_tokens.c  tokens at rest: libsodium secretbox when
 *                    TRELLOHOOK_SECRET_KEY is set ("enc:v1:" + base64)
 *   tokens.c         the token table (add, list, check, remove), the Trello
 *                    client of an app, and the ONE helper that flags a token
 *                    (and its webhooks) Trello called invalid or expired
 *   webhooks.c       webhook rows (decrypting tokens), add, remove, Trello's view
 *   sync.c           reconcile the store with Trello, token by token, at once
 *   health_pass.c    the periodic pass of `serve` (its thread is app/'s)
 *   receive.c        the decision on one callback POST (svc_receive)
 *   users.c          admin users, the one password hash, sign-in with its
 *                    throttle, sessions
 *   records.c        events, deliveries, handler listings, store facts
 *
 * Every function takes the narrow svc_ctx (service/ctx.h), never the app.
 *
 * Every function returns 0 or a negative TH_E* code with a message a user can
 * act on in @err (Trello's own text where Trello refused). Tokens are plain
 * text in memory and never printed or logged in full (mask_secret).
 * Thread-safety: functions may run on several threads at once as long as
 * each uses its own output structs; the svc_ctx parts, the store and the
 * Trello client are thread-safe.
 */
#ifndef TH_SERVICE_H
#define TH_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/ctx.h"
#include "trello/trello.h"

/* ---- tokens at rest (crypto_tokens.c) -------------------------------------------- */

#define TOKEN_SEAL_PREFIX "enc:v1:"

/* The form of @plain to store: with a secret key, "enc:v1:" +
 * base64(nonce || secretbox(plain)) (a fresh random nonce every time), else a
 * copy of @plain. *out is malloc'd; free() it. */
int tokens_seal(const th_config *cfg, const char *plain, char **out, th_error *err);
/* The plain token of a stored value. A plain stored value is returned as is
 * (rows written before a key was configured); a sealed one needs the key
 * (TH_ECONFIG without it, TH_EAUTH when the key is not the one it was sealed
 * with). *out is malloc'd; free() it. */
int tokens_open(const th_config *cfg, const char *stored, char **out, th_error *err);
bool tokens_is_sealed(const char *stored);
/* The same for any short secret (at most 512 bytes) at rest, e.g. a forward
 * handler's whsec_ secret; @what names it in messages ("Trello token"). */
int svc_seal(const th_config *cfg, const char *what, const char *plain, char **out, th_error *err);
int svc_open(const th_config *cfg, const char *what, const char *stored, char **out, th_error *err);

/* "k:" or "d:" and 64 hex digits, and the NUL. */
#define TOKEN_FP_SIZE (2 + 64 + 1)
/* The token's identity in the store: a BLAKE2b fingerprint of @plain keyed
 * with a key derived from TRELLOHOOK_SECRET_KEY ("k:" + hex), or, without a
 * secret key, with a fixed domain key ("d:" + hex). Equal tokens give equal
 * fingerprints (sealing does not: it uses a random nonce), so the schema can
 * keep (model, token) unique. Thread-safe; TH_EIO when libsodium fails. */
int tokens_fingerprint(const th_config *cfg, const char *plain, char out[TOKEN_FP_SIZE],
                       th_error *err);
/* Give the webhooks and tokens stored before fingerprints existed (or
 * fingerprinted before a secret key was set) their fingerprint, opening each
 * sealed token. Run when the app opens its store; rows whose token cannot be
 * opened (no or another key) are left for a later run, and a row that turns
 * out to duplicate another's identity keeps none and is logged (remove one of
 * the two). Returns how many rows still lack a current fingerprint. */
size_t svc_tokens_fill_fingerprints(svc_ctx *sc);

/* ---- the Trello client and tokens (tokens.c) -------------------------------------- */

/* A Trello client for @a (TRELLO_API_URL, TRELLO_API_KEY) whose invalid/
 * expired-token answers go to svc_token_mark_dead(). Free with
 * trello_client_free(). */
int svc_trello_client(svc_ctx *sc, trello_client **out, th_error *err);

/* THE helper for an `invalid token` / `expired token` answer, from any call:
 * marks the stored token expired/invalid and every webhook using it
 * WEBHOOK_NEEDS_TOKEN (not ones being removed), counts it in
 * app->m.token_problems and logs a warning with the token masked. A token we
 * never stored is only counted and logged. Never fails (logs store errors). */
void svc_token_mark_dead(svc_ctx *sc, const char *plain, enum trello_error_kind kind);

/* All stored tokens with their plain text in ->token. Free with token_list_free. */
int svc_token_list(svc_ctx *sc, token **out, size_t *n, th_error *err);
/* The stored token equal to @plain (TH_ENOTFOUND if none); @out gets the plain
 * token; @stored_out (optional, malloc'd) the value as stored, which is the
 * key of its row. */
int svc_token_find(svc_ctx *sc, const char *plain, token *out, char **stored_out, th_error *err);
/* Insert or update @t (->token plain), keeping its row when it exists. */
int svc_token_save(svc_ctx *sc, const token *t, th_error *err);
/* Remember @plain as unchecked unless it is stored already. */
int svc_token_remember(svc_ctx *sc, const char *plain, th_error *err);
/* Forget a token. TH_EEXISTS when webhooks still use it (naming how many). */
int svc_token_remove(svc_ctx *sc, const char *plain, th_error *err);
/* GET /1/tokens/{t}: fills @out (plain token, member, expiry, state) and
 * saves the result when the token is stored. An expired/invalid answer is not
 * a failure of the call: it returns 0 with out->state EXPIRED / INVALID (and
 * the token and its webhooks flagged). Other failures (unreachable, ...) are
 * returned with Trello's message. Clear @info with trello_token_info_clear. */
int svc_token_check(svc_ctx *sc, trello_client *tc, const char *plain, token *out,
                    trello_token_info *info /* optional: Trello's answer, incl. permissions */,
                    th_error *err);

/* ---- webhooks (webhooks.c) ------------------------------------------------------------- */

/* Store access with tokens sealed at rest and opened on read. */
int svc_webhook_get(svc_ctx *sc, const char *id, webhook *out, th_error *err);
int svc_webhook_list(svc_ctx *sc, webhook **out, size_t *n, th_error *err);
int svc_webhook_insert(svc_ctx *sc, const webhook *w, th_error *err);
int svc_webhook_update(svc_ctx *sc, const webhook *w, th_error *err);
int svc_webhook_delete(svc_ctx *sc, const char *id, th_error *err);
/* The local webhook on @id_model with token @plain (TH_ENOTFOUND if none);
 * works with sealed tokens (compares the plain text). */
int svc_webhook_find(svc_ctx *sc, const char *id_model, const char *plain, webhook *out,
                     th_error *err);

typedef struct webhook_add_opts {
	const char *model;       /* 24-hex id or a trello.com /b/ or /c/ URL */
	const char *token;       /* the Trello user token */
	const char *description; /* optional */
} webhook_add_opts;

/* `webhook add`: validate, resolve the model, insert the row (pending) so the
 * HEAD check and early POSTs find it, register it on Trello, store Trello's
 * id and `active`. On any failure nothing is left behind (see webhooks.c).
 * @out receives the stored webhook; @note (optional, @notesz bytes) a remark
 * for the user (e.g. "adopted after a timeout"). */
int svc_webhook_add(svc_ctx *sc, trello_client *tc, const webhook_add_opts *o, webhook *out,
                    char *note, size_t notesz, th_error *err);

enum webhook_rm_outcome {
	WEBHOOK_RM_REMOVED = 0,      /* deleted on Trello, then locally */
	WEBHOOK_RM_WAS_GONE,         /* Trello no longer had it; removed locally */
	WEBHOOK_RM_NEVER_REGISTERED, /* no Trello id (add never finished); removed locally */
	WEBHOOK_RM_MARKED            /* Trello unreachable: state REMOVING, callbacks get 410 */
};

/* `webhook rm`: delete on Trello first, then locally. When Trello cannot be
 * reached the row is kept in state REMOVING (callbacks answer 410) and
 * TH_EUNAVAIL is returned with *outcome WEBHOOK_RM_MARKED. */
int svc_webhook_rm(svc_ctx *sc, trello_client *tc, const char *id, enum webhook_rm_outcome *outcome,
                   th_error *err);

/* `webhook update`: change the description (@description, NULL: keep) and/or
 * the active flag (@active 1 or 0, -1: keep; 0 pauses deliveries on Trello's
 * side) on Trello first (PUT /1/webhooks/{trello_id} as the webhook's token),
 * then the local row with what Trello answered. When Trello refuses or
 * cannot be reached nothing changes here and @err has Trello's message.
 * TH_EINVAL when the webhook is not registered on Trello or is being
 * removed. @out (optional) receives the updated row; webhook_clear() it. */
int svc_webhook_change(svc_ctx *sc, trello_client *tc, const char *id, const char *description,
                       int active, webhook *out, th_error *err);

/* Trello's view of a stored webhook (GET /1/webhooks/{trello_id} as its
 * token); also saves active / failures into the row. */
int svc_webhook_trello_view(svc_ctx *sc, trello_client *tc, const char *id, trello_webhook *out,
                            th_error *err);

/* The callback URL of webhook @id: CALLBACK_DOMAIN + "/callbacks/" + @id
 * into @out (@outsz bytes). TH_ETOOBIG when it does not fit. */
int svc_callback_url(const svc_ctx *sc, const char *id, char *out, size_t outsz);
/* Is @url one of ours (CALLBACK_DOMAIN + "/callbacks/" + a well-formed id)?
 * Copies the id into @id_out (at least 64 bytes) when it is. */
bool svc_callback_is_ours(const svc_ctx *sc, const char *url, char *id_out, size_t idsz);
/* Does @url point at our CALLBACK_DOMAIN at all (any path)? */
bool svc_callback_at_domain(const svc_ctx *sc, const char *url);

/* Trello's boards visible to @plain (GET /1/members/me/boards), with this
 * context's own Trello client; an expired/invalid answer flags the token
 * (svc_token_mark_dead). Clear @out with trello_board_list_clear. */
#define SVC_BOARDS_BUDGET_MS 10000 /* the most svc_trello_boards waits for Trello */
int svc_trello_boards(svc_ctx *sc, const char *plain, trello_board_list *out, th_error *err);

/* ---- sync (sync.c) ------------------------------------------------------------------- */

enum sync_kind {
	SYNC_REGISTER = 0,   /* local webhook Trello lacks: create it on Trello */
	SYNC_ADOPT,          /* Trello webhook pointing at us, not stored: store it */
	SYNC_UPDATE,         /* description / active drift: PUT Trello back to ours */
	SYNC_PRUNE,          /* duplicate / orphan pointing at us, deleted (--prune) */
	SYNC_DUPLICATE,      /* duplicate / orphan pointing at us, reported only */
	SYNC_FOREIGN,        /* points elsewhere: listed, never touched */
	SYNC_FINISH_REMOVAL, /* a webhook rm left in REMOVING: delete on Trello, then here */
	SYNC_TOKEN_ERROR     /* a token's webhooks could not be listed */
};

typedef struct sync_action {
	enum sync_kind kind;
	int token_ix;     /* index into sync_report.tokens */
	char *webhook_id; /* ours, when known */
	char *trello_id;  /* Trello's, when known */
	char *id_model;
	char *callback_url;
	char *detail; /* what and why, one line */
	/* result */
	bool done;   /* carried out (false in a dry run or on failure) */
	char *error; /* why it failed, NULL when it did not */
	/* internal bookkeeping of sync.c */
	long local_ix;            /* index of the local webhook, -1 none */
	const trello_webhook *tw; /* Trello's webhook (borrowed from the listing), or NULL */
} sync_action;

typedef struct sync_token {
	char *token;            /* plain (print masked only) */
	size_t trello_webhooks; /* how many Trello listed */
	char *error;            /* listing failed: why */
} sync_token;

typedef struct sync_report {
	bool dry_run;
	sync_token *tokens;
	size_t ntokens;
	sync_action *actions;
	size_t nactions, capactions;
	size_t in_sync;    /* webhooks that needed nothing */
	size_t failures;   /* failed actions + tokens that could not be listed */
	size_t backfilled; /* events recovered for webhooks registered or enabled again */
} sync_report;

typedef struct sync_opts {
	const char *const *tokens; /* extra tokens to include (also saved unless dry_run) */
	size_t ntokens;
	bool dry_run;
	bool prune;
} sync_opts;

const char *sync_kind_name(enum sync_kind k); /* "register", "adopt", ... */
/* Reconcile every known token (and @o->tokens) with Trello: list all tokens'
 * webhooks at once, plan, then (unless dry_run) carry the plan out in one
 * concurrent batch within the rate limits and save the outcome. Returns 0
 * when the plan could be made (look at report->failures), else an error.
 * Free the report with sync_report_clear(). */
int svc_sync(svc_ctx *sc, trello_client *tc, const sync_opts *o, sync_report *out, th_error *err);
void sync_report_clear(sync_report *r);

/* ---- the periodic health pass (health_pass.c) ----------------------------------------- */

typedef struct health_stats {
	size_t tokens_checked, tokens_dead;
	size_t webhooks_seen, webhooks_disabled, webhooks_deleted, removals_finished;
	size_t errors;
} health_stats;

/* One pass: check every token, fetch Trello's view of every webhook (one
 * listing per token), update states (disabled, deleted on Trello, token
 * needed), finish REMOVING webhooks. Logs what it finds. */
int svc_health_pass(svc_ctx *sc, trello_client *tc, health_stats *out, th_error *err);

/* ---- receiving a callback POST (receive.c) ------------------------------------------ */

/* What became of one POST to /callbacks/{id}; server/callbacks.c maps each to
 * its status code (in brackets). */
enum svc_recv {
	SVC_RECV_QUEUED = 0,    /* accepted and queued: @done reports the rest */
	SVC_RECV_STORED,        /* (via done) committed                      [200] */
	SVC_RECV_DUPLICATE,     /* (via done) that action was stored before  [200] */
	SVC_RECV_UNKNOWN,       /* no such webhook                           [404] */
	SVC_RECV_GONE,          /* the webhook is being removed; or (via done)
	                         * the store found it removed or removing     [410] */
	SVC_RECV_SIG_MISSING,   /* no X-Trello-Webhook                       [401] */
	SVC_RECV_SIG_MALFORMED, /* not base64 of a SHA-1 HMAC, or repeated   [401] */
	SVC_RECV_SIG_MISMATCH,  /* well-formed but wrong                     [401] */
	SVC_RECV_MALFORMED,     /* signed, but not a Trello payload          [400] */
	SVC_RECV_LOOKUP_FAILED, /* the store could not say who the webhook is [503] */
	SVC_RECV_NOMEM,         /* out of memory                              [503] */
	SVC_RECV_BUSY,          /* (via done) the queue is full / not running [503] */
	SVC_RECV_STORE_FAILED,  /* (via done) the commit failed               [503] */
};

/* The short name of an outcome ("stored", "bad signature"...), for logs and tests. */
const char *svc_recv_name(enum svc_recv r);

/* An accepted event's memory, handed back by svc_recv_opts.done. */
typedef struct recv_pending svc_recv_left;

typedef struct svc_recv_opts {
	const char *remote;      /* the client's address, for logs ("" or NULL: unknown) */
	bool signature_repeated; /* X-Trello-Webhook came more than once (is malformed) */
	/* Called once the event is accepted, just before it is queued (on the
	 * calling thread): returns the context @done gets, or NULL when out of
	 * memory (nothing is queued; svc_receive returns SVC_RECV_NOMEM). */
	void *(*accept)(void *ctx);
	void *ctx;
	/* Called exactly once for every accepted event, with STORED, DUPLICATE,
	 * GONE, BUSY or STORE_FAILED (@err says why for the last two; it lives only
	 * during the call) — possibly before svc_receive returns, usually on the
	 * queue's writer thread. @left is the event's memory, now the callee's to
	 * free with svc_recv_release(). */
	void (*done)(void *done_ctx, enum svc_recv outcome, const th_error *err,
	             svc_recv_left *left);
} svc_recv_opts;

/* Free what an accepted event left behind (NULL-safe). Call it on the thread
 * that called svc_receive(), which allocated it: glibc's allocator then takes
 * the memory back into that thread's cache. Freed on the writer thread instead,
 * every block went back to another thread's arena under its lock, and the
 * request threads and the writer queued on that lock (issue 18). */
void svc_recv_release(svc_recv_left *left);

/* Decide one POST to /callbacks/@id: the webhook is known here (from the
 * cache), not being removed, @signature (X-Trello-Webhook, NULL when absent)
 * verifies over the raw @body bytes ++ the callback URL stored with the
 * webhook, the body is a Trello payload — then the event is queued for the
 * group commit. Cheapest refusal first; unsigned bytes never reach the JSON
 * parser. Counts every refusal in sc->m. Returns SVC_RECV_QUEUED (then
 * o->done follows) or the refusal; @err (optional) gets the detail of
 * MALFORMED and LOOKUP_FAILED, and for SIG_* the one word why ("missing",
 * "malformed", "mismatch"). Thread-safe; @body is only read during the call. */
enum svc_recv svc_receive(svc_ctx *sc, const char *id, const char *signature, const char *body,
                          size_t len, const svc_recv_opts *o, th_error *err);

/* ---- admin users and sessions (users.c) ---------------------------------------------- */

#define SVC_USER_MAX 64
#define SVC_PWHASH_MAX 128 /* >= crypto_pwhash_STRBYTES */

/* THE password hash: Argon2id (libsodium crypto_pwhash_str, interactive
 * limits) of @pw[0..len) into @out, NUL-terminated. Thread-safe. */
int svc_password_hash(const char *pw, size_t len, char out[SVC_PWHASH_MAX], th_error *err);
/* Is @name a user name (1-64 of [A-Za-z0-9._@-]; they appear in pages and logs)? */
bool svc_user_name_ok(const char *name);
/* Create user @name, or give an existing one the password @pw[0..len). */
int svc_user_set(svc_ctx *sc, const char *name, const char *pw, size_t len, th_error *err);

/* The login throttle (per app; see users.c). Free with svc_throttle_free (NULL-safe). */
int svc_throttle_new(svc_throttle **out, th_error *err);
void svc_throttle_free(svc_throttle *t);

/* Check a sign-in of @user with @pw from @addr: 0 when right; TH_EAUTH when
 * wrong (counted against (@user, @addr) and @addr); TH_EUNAVAIL when either is
 * throttled (*retry_ms: how long to wait; the password is not even checked);
 * TH_EINVAL for an empty or over-long name or password. Unknown users take as
 * long as known ones. Thread-safe. */
int svc_login_check(svc_ctx *sc, const char *user, const char *pw, const char *addr,
                    int64_t *retry_ms, th_error *err);
/* Store a new session (@id_hash: SHA-256 hex of its id) for @user with its
 * CSRF token; *max_age_ms gets its idle lifetime (for the cookie). */
int svc_session_start(svc_ctx *sc, const char *id_hash, const char *user, const char *csrf,
                      int64_t *max_age_ms, th_error *err);
/* The live session of @id_hash (TH_ENOTFOUND when none or expired; an
 * expired one is deleted); slides its expiry. Clear @out with user_session_clear. */
int svc_session_load(svc_ctx *sc, const char *id_hash, user_session *out, th_error *err);
/* Sign out: delete the session of @id_hash (and tell svc_ctx.on_session_end). */
int svc_session_end(svc_ctx *sc, const char *id_hash, th_error *err);
/* Is the session of @id_hash still signed in? 1 yes, 0 no (none, or expired),
 * or a negative TH_E* code when the store could not say. Unlike
 * svc_session_load it does not slide the expiry: a stream left open must not
 * keep its session alive. */
int svc_session_alive(svc_ctx *sc, const char *id_hash, th_error *err);

/* ---- events, deliveries, handlers, the store (records.c) ----------------------------- */

/* Each reads or changes the store as its store_* namesake does (store/store.h
 * says what is returned and who frees it). */
int svc_event_list(svc_ctx *sc, const event_query *q, event_row **out, size_t *n, th_error *err);
int svc_event_get(svc_ctx *sc, const char *id, event *out, th_error *err);
int svc_delivery_list(svc_ctx *sc, const char *status, const char *event_id, size_t limit,
                      delivery **out, size_t *n, th_error *err);
int svc_delivery_get(svc_ctx *sc, const char *id, delivery *out, th_error *err);
int svc_delivery_stats(svc_ctx *sc, int64_t counts[5], int64_t *oldest_pending_at, th_error *err);
/* Start-up: deliveries left running by a process of this host that died are
 * due again now (store_delivery_recover); @recovered counts them. */
int svc_delivery_recover(svc_ctx *sc, size_t *recovered, th_error *err);
/* Every handler, forward secrets opened where this process has the key
 * (handlers_secret.c); one that cannot be opened keeps its sealed "enc:v1:"
 * form, which listings mask like any secret. */
int svc_handler_list(svc_ctx *sc, handler **out, size_t *n, th_error *err);
/* Webhook and token rows as stored (tokens sealed when a key is set): for
 * listings and counts that never show or use a token. */
int svc_webhook_rows(svc_ctx *sc, webhook **out, size_t *n, th_error *err);
int svc_token_rows(svc_ctx *sc, token **out, size_t *n, th_error *err);
/* Store @n received events in ONE transaction (the group commit of the
 * receive queue); results[i] says what became of evs[i]. */
int svc_events_store(svc_ctx *sc, event **evs, size_t n, enum store_put *results, th_error *err);
/* Migrate the store to the current schema; *out_version gets it. */
int svc_migrate(svc_ctx *sc, int *out_version, th_error *err);
/* Does the store answer? */
int svc_ping(svc_ctx *sc, th_error *err);
/* Record the outcome of one commit of the receive path (@rc 0: committed;
 * else @err says why), so that /healthz can tell when the store cannot
 * commit. Cheap (an atomic store; a lock only on failure); any thread. */
void svc_note_commit(svc_ctx *sc, int rc, const th_error *err);
/* The same at @now_ms (monotonic ms; tests give their own clock). */
void svc_note_commit_at(svc_ctx *sc, int rc, const th_error *err, int64_t now_ms);
/* Can the store take writes now? 0: yes. Else TH_EUNAVAIL with @err saying
 * why: the store does not answer, or the last commit failed (a failed group
 * commit, e.g. a full disk, until a later one succeeds). When no commit was
 * seen for SVC_PROBE_IDLE_MS before @now_ms (monotonic ms), one caller runs a
 * small write probe (store_probe_write) and its outcome counts as a commit:
 * at most one probe per SVC_PROBE_IDLE_MS, however often this is called.
 * Thread-safe. */
#define SVC_PROBE_IDLE_MS 5000
int svc_store_health(svc_ctx *sc, int64_t now_ms, th_error *err);
/* "sqlite" or "postgresql". */
const char *svc_store_name(const svc_ctx *sc);

#endif

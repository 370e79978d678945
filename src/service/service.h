/*
 * service — the webhook and token operations users perform against Trello
 * (layer 5), shared by the CLI, the admin and the periodic health pass:
 *
 *   crypto_tokens.c  tokens at rest: libsodium secretbox when
 *                    TRELLOHOOK_SECRET_KEY is set ("enc:v1:" + base64)
 *   tokens.c         the token table (add, list, check, remove), the Trello
 *                    client of an app, and the ONE helper that flags a token
 *                    (and its webhooks) Trello called invalid or expired
 *   webhooks.c       webhook rows (decrypting tokens), add, remove, Trello's view
 *   sync.c           reconcile the store with Trello, token by token, at once
 *   health_pass.c    the periodic pass of `serve`
 *
 * Every function returns 0 or a negative TH_E* code with a message a user can
 * act on in @err (Trello's own text where Trello refused). Tokens are plain
 * text in memory and never printed or logged in full (mask_secret).
 * Thread-safety: functions may run on several threads at once as long as
 * each uses its own output structs; the app, store and Trello client are
 * thread-safe.
 */
#ifndef TH_SERVICE_H
#define TH_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/app.h"
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

/* ---- the Trello client and tokens (tokens.c) -------------------------------------- */

/* A Trello client for @a (TRELLO_API_URL, TRELLO_API_KEY) whose invalid/
 * expired-token answers go to svc_token_mark_dead(). Free with
 * trello_client_free(). */
int svc_trello_client(app *a, trello_client **out, th_error *err);

/* THE helper for an `invalid token` / `expired token` answer, from any call:
 * marks the stored token expired/invalid and every webhook using it
 * WEBHOOK_NEEDS_TOKEN (not ones being removed), counts it in
 * app->m.token_problems and logs a warning with the token masked. A token we
 * never stored is only counted and logged. Never fails (logs store errors). */
void svc_token_mark_dead(app *a, const char *plain, enum trello_error_kind kind);

/* All stored tokens with their plain text in ->token. Free with token_list_free. */
int svc_token_list(app *a, token **out, size_t *n, th_error *err);
/* The stored token equal to @plain (TH_ENOTFOUND if none); @out gets the plain
 * token; @stored_out (optional, malloc'd) the value as stored, which is the
 * key of its row. */
int svc_token_find(app *a, const char *plain, token *out, char **stored_out, th_error *err);
/* Insert or update @t (->token plain), keeping its row when it exists. */
int svc_token_save(app *a, const token *t, th_error *err);
/* Remember @plain as unchecked unless it is stored already. */
int svc_token_remember(app *a, const char *plain, th_error *err);
/* Forget a token. TH_EEXISTS when webhooks still use it (naming how many). */
int svc_token_remove(app *a, const char *plain, th_error *err);
/* GET /1/tokens/{t}: fills @out (plain token, member, expiry, state) and
 * saves the result when the token is stored. An expired/invalid answer is not
 * a failure of the call: it returns 0 with out->state EXPIRED / INVALID (and
 * the token and its webhooks flagged). Other failures (unreachable, ...) are
 * returned with Trello's message. Clear @info with trello_token_info_clear. */
int svc_token_check(app *a, trello_client *tc, const char *plain, token *out,
                    trello_token_info *info /* optional: Trello's answer, incl. permissions */,
                    th_error *err);

/* ---- webhooks (webhooks.c) ------------------------------------------------------------- */

/* Store access with tokens sealed at rest and opened on read. */
int svc_webhook_get(app *a, const char *id, webhook *out, th_error *err);
int svc_webhook_list(app *a, webhook **out, size_t *n, th_error *err);
int svc_webhook_insert(app *a, const webhook *w, th_error *err);
int svc_webhook_update(app *a, const webhook *w, th_error *err);
int svc_webhook_delete(app *a, const char *id, th_error *err);
/* The local webhook on @id_model with token @plain (TH_ENOTFOUND if none);
 * works with sealed tokens (compares the plain text). */
int svc_webhook_find(app *a, const char *id_model, const char *plain, webhook *out, th_error *err);

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
int svc_webhook_add(app *a, trello_client *tc, const webhook_add_opts *o, webhook *out, char *note,
                    size_t notesz, th_error *err);

enum webhook_rm_outcome {
	WEBHOOK_RM_REMOVED = 0,      /* deleted on Trello, then locally */
	WEBHOOK_RM_WAS_GONE,         /* Trello no longer had it; removed locally */
	WEBHOOK_RM_NEVER_REGISTERED, /* no Trello id (add never finished); removed locally */
	WEBHOOK_RM_MARKED            /* Trello unreachable: state REMOVING, callbacks get 410 */
};

/* `webhook rm`: delete on Trello first, then locally. When Trello cannot be
 * reached the row is kept in state REMOVING (callbacks answer 410) and
 * TH_EUNAVAIL is returned with *outcome WEBHOOK_RM_MARKED. */
int svc_webhook_rm(app *a, trello_client *tc, const char *id, enum webhook_rm_outcome *outcome,
                   th_error *err);

/* `webhook update`: change the description (@description, NULL: keep) and/or
 * the active flag (@active 1 or 0, -1: keep; 0 pauses deliveries on Trello's
 * side) on Trello first (PUT /1/webhooks/{trello_id} as the webhook's token),
 * then the local row with what Trello answered. When Trello refuses or
 * cannot be reached nothing changes here and @err has Trello's message.
 * TH_EINVAL when the webhook is not registered on Trello or is being
 * removed. @out (optional) receives the updated row; webhook_clear() it. */
int svc_webhook_change(app *a, trello_client *tc, const char *id, const char *description,
                       int active, webhook *out, th_error *err);

/* Trello's view of a stored webhook (GET /1/webhooks/{trello_id} as its
 * token); also saves active / failures into the row. */
int svc_webhook_trello_view(app *a, trello_client *tc, const char *id, trello_webhook *out,
                            th_error *err);

/* Is @url one of ours (CALLBACK_DOMAIN + "/callbacks/" + a well-formed id)?
 * Copies the id into @id_out (at least 64 bytes) when it is. */
bool svc_callback_is_ours(const app *a, const char *url, char *id_out, size_t idsz);
/* Does @url point at our CALLBACK_DOMAIN at all (any path)? */
bool svc_callback_at_domain(const app *a, const char *url);

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
	size_t in_sync;  /* webhooks that needed nothing */
	size_t failures; /* failed actions + tokens that could not be listed */
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
int svc_sync(app *a, trello_client *tc, const sync_opts *o, sync_report *out, th_error *err);
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
int svc_health_pass(app *a, trello_client *tc, health_stats *out, th_error *err);

/* Start the periodic pass in a thread of @a (first pass shortly after start,
 * then every cfg.health_interval_ms; nothing when that is 0 or there is no
 * API key). health_stop() wakes it, waits for it and frees it; NULL-safe on
 * an app without one. */
int health_start(app *a, th_error *err);
void health_stop(app *a);

#endif

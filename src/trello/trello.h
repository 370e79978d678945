/* SPDX-License-Identifier: MIT */
/*
 * trello — the Trello REST client (layer 4): webhooks CRUD, token info, the
 * token owner and boards, resolving board/card URLs, and a batch runner that
 * issues many calls at once (all of it over http/client.h).
 *
 * Wire facts (see ../shared/trello/API.md):
 *  - key and token travel in the `Authorization: OAuth oauth_consumer_key=..,
 *    oauth_token=..` header, never in the URL (so never in proxy or server
 *    logs); parameters of POST/PUT travel as a JSON body;
 *  - Trello answers errors as text/plain (`invalid token`) or JSON
 *    (`{"message","error"}`); both become one trello_error with Trello's text;
 *  - 429 is waited out (x-rate-limit-*-interval-ms, else 10 s) and retried,
 *    at most `max_rate_waits` times; a bucket whose `remaining` reached 0 is
 *    paused before the next call, per token and for the key;
 *  - network failures and 5xx are retried with backoff (`max_retries`) for
 *    GET, PUT and DELETE only. A POST (create webhook) is NOT idempotent: it
 *    is retried only when Trello certainly never saw it (429, connection
 *    refused, DNS failure). After a timeout or a dropped connection the
 *    webhook may or may not exist — the caller must list the token's webhooks
 *    to find out (trello_list_webhooks) before creating again.
 *
 * Thread-safety: a trello_client may be used from any number of threads at
 * once; each call uses its own curl handles. The only shared mutable state is
 * the rate-limit table inside the client, guarded by a mutex.
 *
 * Ownership: every struct filled through an `out` parameter owns its strings;
 * release it with its *_clear function (NULL-safe, leaves it zeroed).
 * Nothing here logs a key or a token (paths are logged with the token masked).
 */
#ifndef TH_TRELLO_H
#define TH_TRELLO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define TRELLO_DEFAULT_API_URL "https://api.trello.com/1"
#define TRELLO_MAX_BODY ((size_t)8 << 20) /* largest answer we accept: 8 MiB */

/* ---- errors ------------------------------------------------------------------ */

/* What kind of failure a call met, beyond the TH_E* code. */
enum trello_error_kind {
	TRELLO_ERR_NONE = 0,
	TRELLO_ERR_INVALID_TOKEN, /* 401 "invalid token": revoked or never valid */
	TRELLO_ERR_EXPIRED_TOKEN, /* 401 "expired token" */
	TRELLO_ERR_INVALID_KEY,   /* 401 "invalid key": our API key is wrong */
	TRELLO_ERR_NOT_OWNER,     /* 401 "webhook does not belong to token" */
	TRELLO_ERR_NOT_FOUND,     /* 404 */
	TRELLO_ERR_DUPLICATE,     /* 400 same callback + model + token exists */
	TRELLO_ERR_BAD_MODEL,     /* 400 invalid value for idModel */
	TRELLO_ERR_HEAD_CHECK,    /* 400 the callback URL did not answer 200 / unreachable */
	TRELLO_ERR_RATE_LIMITED,  /* 429 still after every wait */
	TRELLO_ERR_UNREACHABLE,   /* no answer: DNS, refused, timeout, TLS */
	TRELLO_ERR_SERVER,        /* 5xx */
	TRELLO_ERR_BAD_ANSWER,    /* an answer we cannot use (wrong JSON, too big) */
	TRELLO_ERR_OTHER          /* any other Trello error */
};

/* A call's failure report. `th` is the usual code + message (Trello's own
 * text, e.g. "Trello: invalid token"), so callers can pass `&te.th` on or copy
 * it into their th_error. Caller-owned; zeroed on success. */
typedef struct trello_error {
	th_error th;
	enum trello_error_kind kind;
	int http_status; /* Trello's status, 0 when there was no answer */
} trello_error;

/* "invalid-token", "expired-token", ... (static storage). */
const char *trello_error_kind_name(enum trello_error_kind kind);
/* True for INVALID_TOKEN and EXPIRED_TOKEN: the token needs replacing. */
bool trello_error_is_token_dead(const trello_error *err);

/* ---- result types -------------------------------------------------------------- */

/* A Trello webhook as Trello reports it. Strings may be NULL when absent. */
typedef struct trello_webhook {
	char *id;
	char *description;
	char *id_model;
	char *callback_url;
	bool active;
	int consecutive_failures;
	char *first_consecutive_fail_date; /* ISO 8601, NULL when not failing */
} trello_webhook;

typedef struct trello_webhook_list {
	trello_webhook *items;
	size_t len;
} trello_webhook_list;

typedef struct trello_permission {
	char *id_model;   /* "*" for all */
	char *model_type; /* "Board", "Organization", "Member" */
	bool read;
	bool write;
} trello_permission;

/* GET /1/tokens/{token}. */
typedef struct trello_token_info {
	char *id;
	char *id_member;
	char *date_created; /* ISO 8601 or NULL */
	char *date_expires; /* ISO 8601, NULL = never expires */
	trello_permission *permissions;
	size_t npermissions;
} trello_token_info;

/* GET /1/members/me. */
typedef struct trello_member {
	char *id;
	char *username;
	char *full_name;
} trello_member;

typedef struct trello_board {
	char *id;
	char *name;
	char *url;
	char *short_link;
} trello_board;

typedef struct trello_board_list {
	trello_board *items;
	size_t len;
} trello_board_list;

enum trello_model_type { TRELLO_MODEL_BOARD = 0, TRELLO_MODEL_CARD, TRELLO_MODEL_LIST };

/* What trello_resolve_model() found. */
typedef struct trello_model {
	char *id; /* 24-hex id, usable as idModel */
	enum trello_model_type type;
	char *name;
	char *url; /* NULL for lists */
} trello_model;

/* One action from a model's actions listing (GET /1/boards/{id}/actions...):
 * the object as Trello sent it (re-serialised compactly, UTF-8 as is), with
 * the fields a caller needs checked and copied out. */
typedef struct trello_action {
	char *id;   /* 24 hex; its first 8 are the creation time in seconds */
	char *type; /* e.g. "updateCard" */
	char *date; /* ISO 8601 as Trello sent it */
	int64_t date_ms;
	char *json; /* the whole action object, compact JSON */
} trello_action;

typedef struct trello_action_list {
	trello_action *items; /* newest first, as Trello lists them */
	size_t len;
} trello_action_list;

void trello_action_list_clear(trello_action_list *l);
void trello_webhook_clear(trello_webhook *w);
void trello_webhook_list_clear(trello_webhook_list *l);
void trello_token_info_clear(trello_token_info *t);
void trello_member_clear(trello_member *m);
void trello_board_list_clear(trello_board_list *l);
void trello_model_clear(trello_model *m);
/* "board", "card", "list". */
const char *trello_model_type_name(enum trello_model_type t);

/* ---- the client ------------------------------------------------------------------ */

typedef struct trello_client trello_client;

/* Told about every 401 `invalid token` / `expired token`, from whatever
 * thread made the call, so a caller can flag the token wherever it shows up.
 * Called once per failed request (a batch on a dead token calls it for each
 * of its ops), with no client lock held, so it may itself use the client.
 * @token is borrowed for the duration of the call. */
typedef void (*trello_token_dead_fn)(void *ctx, const char *token, enum trello_error_kind kind);

typedef struct trello_client_opts {
	const char *api_url;       /* NULL: $TRELLO_API_URL, else TRELLO_DEFAULT_API_URL */
	const char *api_key;       /* required: the application's API key */
	long connect_timeout_ms;   /* default 5000 */
	long timeout_ms;           /* whole call, default 30000 */
	int max_retries;           /* network / 5xx retries of idempotent calls, default 3 */
	long backoff_ms;           /* first retry delay (doubles, with jitter), default 250 */
	int max_rate_waits;        /* 429 answers waited out per call, default 5 */
	long rate_wait_ms_default; /* wait after 429 without interval header, default 10000 */
	long rate_wait_ms_max;     /* cap on any single rate wait, default 15000 */
	unsigned max_parallel;     /* concurrent requests in a batch, default 8 */
	size_t max_body;           /* largest answer, default TRELLO_MAX_BODY */
	trello_token_dead_fn on_token_dead; /* optional */
	void *on_token_dead_ctx;
} trello_client_opts;

/* Start from this (not from {0}): a zero max_retries / max_rate_waits really
 * means "never retry" / "never wait out a 429". Zero timeouts, backoff, waits,
 * max_parallel and max_body fall back to the defaults above. */
#define TRELLO_CLIENT_OPTS_INIT                                                                    \
	{                                                                                          \
		.api_url = NULL, .api_key = NULL, .connect_timeout_ms = 5000, .timeout_ms = 30000, \
		.max_retries = 3, .backoff_ms = 250, .max_rate_waits = 5,                          \
		.rate_wait_ms_default = 10000, .rate_wait_ms_max = 15000, .max_parallel = 8,       \
		.max_body = TRELLO_MAX_BODY, .on_token_dead = NULL, .on_token_dead_ctx = NULL      \
	}

/* Create a client. @opts is copied (strings too). Calls curl_global_init once
 * per process. Returns 0, TH_ECONFIG (no key, bad URL) or TH_ENOMEM.
 * Free with trello_client_free(). */
int trello_client_new(trello_client **out, const trello_client_opts *opts, th_error *err);
/* NULL-safe. No call may be running on the client. */
void trello_client_free(trello_client *c);
/* The base URL in use, without trailing slash (owned by the client). */
const char *trello_client_api_url(const trello_client *c);

/* Told once per client, from the thread making a call, when a call has been
 * waiting for notice_after_ms: @what says what for ("waiting for Trello at
 * URL (GET /webhooks/ID)"; tokens masked). */
typedef void (*trello_notice_fn)(void *ctx, const char *what);

/* Give up every call of this client after @budget_ms from now (all retries
 * and rate waits included): a call still waiting then fails with TH_EUNAVAIL
 * kind UNREACHABLE saying what it waited for. 0 clears it. For interactive
 * commands (a Trello that accepts and never answers must not hang them).
 * Call before any call runs on the client; not thread-safe. */
void trello_client_set_deadline(trello_client *c, int64_t budget_ms);
/* Abandon every call of the client once *@flag is true (NULL: never): the
 * calls on the wire are closed and each call still going ends within about a
 * second with TH_EUNAVAIL, kind UNREACHABLE, "stopping: …". @flag is owned by
 * the caller, outlives the client's calls, and may be set from any thread:
 * the way a stopping serve ends a health pass or backfill that waits for a
 * Trello that does not answer. Call before any call runs; not thread-safe. */
void trello_client_set_cancel(trello_client *c, const atomic_bool *flag);
/* Call @fn once when a call has waited @after_ms (see trello_notice_fn).
 * Call before any call runs; not thread-safe. */
void trello_client_set_notice(trello_client *c, long after_ms, trello_notice_fn fn, void *ctx);
/* Told, on the thread running a batch (trello_batch_run), how many of its
 * @total calls have finished: 0 at the start, then after each that ends. */
typedef void (*trello_progress_fn)(void *ctx, size_t done, size_t total);
/* Report the progress of every batch of this client to @fn (NULL: stop).
 * Call before any call runs; not thread-safe. */
void trello_client_set_progress(trello_client *c, trello_progress_fn fn, void *ctx);

/* ---- calls ------------------------------------------------------------------------
 * Each returns 0 or a negative TH_E* code and fills @err (may be NULL):
 *   401 → TH_EAUTH (kind tells invalid/expired token, invalid key, not owner)
 *   404 → TH_ENOTFOUND, 400/other 4xx → TH_ETRELLO with Trello's text,
 *   5xx, no answer, 429 after every wait → TH_EUNAVAIL,
 *   an answer we cannot read → TH_ETRELLO kind BAD_ANSWER ("Trello sent an
 *   unexpected answer: ..."), over max_body → TH_ETOOBIG.
 * @token is the Trello user token the call acts as; it is never logged. */

/* What to send when creating or updating a webhook. NULL strings / -1 mean
 * "leave out" (create needs callback_url and id_model). */
typedef struct trello_webhook_params {
	const char *callback_url;
	const char *id_model;
	const char *description;
	int active; /* 1, 0, or -1 = leave out */
} trello_webhook_params;

#define TRELLO_WEBHOOK_PARAMS_INIT                                                        \
	{                                                                                 \
		.callback_url = NULL, .id_model = NULL, .description = NULL, .active = -1 \
	}

/* POST /1/webhooks as @token (the token travels in the Authorization header,
 * which binds the webhook to it just as POST /1/tokens/{token}/webhooks does,
 * but keeps the token out of the URL). Trello sends HEAD to callback_url first and
 * creates the webhook only when that answers 200 (else TRELLO_ERR_HEAD_CHECK).
 * Not retried after the request may have reached Trello: on TH_EUNAVAIL with
 * kind UNREACHABLE, list the token's webhooks before trying again. */
int trello_create_webhook(trello_client *c, const char *token, const trello_webhook_params *p,
                          trello_webhook *out, trello_error *err);
/* GET /1/webhooks/{id} (as the token that owns it). */
int trello_get_webhook(trello_client *c, const char *token, const char *id, trello_webhook *out,
                       trello_error *err);
/* PUT /1/webhooks/{id} with the fields of @p that are set; @out may be NULL. */
int trello_update_webhook(trello_client *c, const char *token, const char *id,
                          const trello_webhook_params *p, trello_webhook *out, trello_error *err);
/* DELETE /1/webhooks/{id}. A 404 is reported as TH_ENOTFOUND (callers that
 * only want it gone treat that as done). */
int trello_delete_webhook(trello_client *c, const char *token, const char *id, trello_error *err);
/* GET /1/tokens/{token}/webhooks. */
int trello_list_webhooks(trello_client *c, const char *token, trello_webhook_list *out,
                         trello_error *err);
/* GET /1/tokens/{token}. */
int trello_get_token(trello_client *c, const char *token, trello_token_info *out,
                     trello_error *err);
/* GET /1/members/me. */
int trello_get_me(trello_client *c, const char *token, trello_member *out, trello_error *err);
/* GET /1/members/me/boards?fields=name,url,shortLink. */
int trello_list_boards(trello_client *c, const char *token, trello_board_list *out,
                       trello_error *err);
/* Resolve what a user typed for --model: a 24-hex id (tried as a board, then
 * a card, then a list), or a board/card URL (https://trello.com/b/SHORT/slug,
 * https://trello.com/c/SHORT/slug; scheme, slug, trailing slash, query and
 * fragment optional). Anything else is TH_EINVAL with an example. */
int trello_resolve_model(trello_client *c, const char *token, const char *id_or_url,
                         trello_model *out, trello_error *err);

/* What to ask of a model's actions listing. NULL strings are left out. */
typedef struct trello_actions_query {
	const char *since;  /* newer than: a date YYYY-MM-DDThh:mm:ss[.fff]Z or an action id */
	const char *before; /* older than: the same forms */
	const char *filter; /* comma-separated action types; NULL = all */
	int limit;          /* 1..1000 (Trello's default is 50) */
	int page;           /* 0.. */
} trello_actions_query;

#define TRELLO_ACTIONS_LIMIT_MAX 1000

/* GET /1/{boards,cards,lists}/{id}/actions: one page of the model's actions,
 * newest first. A since/before that is neither a date nor an action id, or a
 * limit outside 1..1000, is TH_EINVAL before any call. An answer that is not
 * an array of actions (each with a 24-hex id, a type and a date), or has
 * more than the limit, is TH_ETRELLO kind BAD_ANSWER. Counts against the
 * client's rate limits like every call. */
int trello_list_actions(trello_client *c, const char *token, enum trello_model_type type,
                        const char *id_model, const trello_actions_query *q,
                        trello_action_list *out, trello_error *err);
/* GET /1/{boards,cards,lists}/{id}: the model as Trello returns it, as
 * compact JSON in *@json (caller frees); it must be an object whose "id" is
 * @id_model. */
int trello_get_model_json(trello_client *c, const char *token, enum trello_model_type type,
                          const char *id_model, char **json, trello_error *err);

/* ---- many calls at once ----------------------------------------------------------- */

enum trello_op_kind {
	TRELLO_OP_LIST_WEBHOOKS = 0, /* token */
	TRELLO_OP_CREATE_WEBHOOK,    /* token, params */
	TRELLO_OP_GET_WEBHOOK,       /* token, webhook_id */
	TRELLO_OP_UPDATE_WEBHOOK,    /* token, webhook_id, params */
	TRELLO_OP_DELETE_WEBHOOK,    /* token, webhook_id */
	TRELLO_OP_GET_TOKEN          /* token */
};

/* One call of a batch: the caller fills the inputs (borrowed until
 * trello_batch_run returns), the batch fills the outputs. Release the
 * outputs with trello_op_clear(). */
typedef struct trello_op {
	/* in */
	enum trello_op_kind kind;
	const char *token;
	const char *webhook_id;
	trello_webhook_params params;
	/* out */
	int rc; /* 0 or TH_E*, as the single call would return */
	trello_error err;
	trello_webhook webhook;       /* create, get, update */
	trello_webhook_list webhooks; /* list */
	trello_token_info token_info; /* get token */
} trello_op;

/* Run @n ops concurrently (at most opts.max_parallel in flight), each with
 * the retry and rate-limit rules of its single call; a 429 delays only the
 * ops of the bucket that hit it. Returns 0 when every op ran (look at each
 * op's rc), or TH_ENOMEM / TH_EINVAL when the batch could not run at all. */
int trello_batch_run(trello_client *c, trello_op *ops, size_t n, th_error *err);
/* Free an op's outputs (not its inputs). */
void trello_op_clear(trello_op *op);

/* GET /1/tokens/{token}/webhooks for @n tokens concurrently: fills out[i] and
 * errs[i] (both arrays of @n, errs may be NULL) and returns 0 when every
 * token succeeded, else the first failing code. */
int trello_list_webhooks_many(trello_client *c, const char *const *tokens, size_t n,
                              trello_webhook_list *out, trello_error *errs);

/* ---- pure helpers (exposed for tests) ---------------------------------------------- */

/* What trello_parse_model_ref() recognised. */
enum trello_ref_kind { TRELLO_REF_ID = 0, TRELLO_REF_BOARD_SHORT, TRELLO_REF_CARD_SHORT };

typedef struct trello_model_ref {
	enum trello_ref_kind kind;
	char value[25]; /* the id (24) or the short link (8) */
} trello_model_ref;

/* Parse a --model argument without any network call. TH_EINVAL with a message
 * naming --model and an example for anything else. */
int trello_parse_model_ref(const char *s, trello_model_ref *out, th_error *err);

/* Turn an error answer (@status, raw @body of @len bytes, text or JSON) into
 * @out: code, kind and "Trello: <message>". Hostile bodies are cut and
 * sanitised (control bytes and invalid UTF-8 replaced). */
void trello_error_from_answer(int status, const char *body, size_t len, trello_error *out);

/* Rate-limit information from one answer's headers. -1 = not sent. */
typedef struct trello_rate_info {
	long token_remaining;
	long token_max;
	long token_interval_ms;
	long key_remaining;
	long key_max;
	long key_interval_ms;
} trello_rate_info;

void trello_rate_info_init(trello_rate_info *r);
/* Feed one raw header line ("Name: value\r\n"); unknown headers are ignored,
 * malformed values leave the field untouched. Returns true when it was one
 * of the x-rate-limit-* headers. */
bool trello_rate_parse_header(trello_rate_info *r, const char *line, size_t len);

/* Parse answers (exposed for tests). Each returns 0 or TH_ETRELLO with
 * "Trello sent an unexpected answer: ..." in @err; @out is cleared on error. */
int trello_parse_webhook(const char *body, size_t len, trello_webhook *out, th_error *err);
int trello_parse_webhook_list(const char *body, size_t len, trello_webhook_list *out,
                              th_error *err);
int trello_parse_token_info(const char *body, size_t len, trello_token_info *out, th_error *err);
int trello_parse_member(const char *body, size_t len, trello_member *out, th_error *err);
int trello_parse_board_list(const char *body, size_t len, trello_board_list *out, th_error *err);
/* An actions listing: an array of at most @max objects, each with "id" (24
 * hex), "type" (1-100 printable ASCII) and "date" (ISO 8601). */
int trello_parse_action_list(const char *body, size_t len, size_t max, trello_action_list *out,
                             th_error *err);
/* A since/before value Trello accepts: an action id or an ISO 8601 date. */
bool trello_action_bound_ok(const char *s);
/* A board, card or list object; its id must be 24 hex (it becomes idModel). */
int trello_parse_model(const char *body, size_t len, enum trello_model_type type, trello_model *out,
                       th_error *err);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * mock — trello-mock, a local emulator of the parts of the Trello REST API
 * that trellohook uses (see ../shared/trello/API.md for the facts it follows).
 *
 * Files:
 *   main.c    command line, start-up, signals, shutdown
 *   state.c   the in-memory model (boards, lists, cards, tokens, webhooks),
 *             ids, public JSON views, persistence (--state)
 *   api.c     the HTTP handler: parameters, auth, rate limits, /1/... routes
 *   authorize.c  the /1/authorize consent page
 *   control.c the /_mock/ control API
 *   actions.c the action log and the /1/.../actions listings
 *   deliver.c the HEAD check, actions turned into payloads, signed
 *             deliveries with retries
 *
 * Concurrency: one `struct mock` per process, every field below `lock` is
 * guarded by it. Functions named *_locked expect the caller to hold it.
 * Network I/O (HEAD checks, deliveries) never runs with the lock held.
 */
#ifndef TH_MOCK_H
#define TH_MOCK_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"
#include "util/util.h"

#define MOCK_ID_LEN 24
#define MOCK_MAX_RETRIES 8
#define MOCK_MAX_SEED_TOKENS 32
#define MOCK_MAX_DELIVERY_RECORDS 20000

/* The demo member every token belongs to. */
#define MOCK_MEMBER_ID "5e3b1c9f8a7d6e5f4a3b2c1d"
#define MOCK_MEMBER_USERNAME "zoeangstrom"
#define MOCK_MEMBER_FULLNAME "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m"
#define MOCK_MEMBER_INITIALS "Z\xc3\x85"
#define MOCK_ORG_ID "6123456789abcdef00000001"

/* Immutable after start-up. */
struct mock_config {
	char key[129];
	char secret[257];
	const char *seed_tokens[MOCK_MAX_SEED_TOKENS];
	size_t nseed;
	int64_t retry_ms[MOCK_MAX_RETRIES]; /* delays before attempts 2, 3, ... */
	size_t nretry;
	const char *state_path; /* NULL: in memory only */
	bool json_errors;       /* {"message","error"} instead of text */
	int64_t disable_after;  /* 0: never disable */
	int64_t rate_key, rate_token, rate_window_ms;
	int64_t head_timeout_ms;     /* HEAD check, Trello: ~10 s */
	int64_t delivery_timeout_ms; /* Trello waits 30 s */
};

/* One fixed rate-limit window for a key or a token. */
struct mock_rate {
	char name[200]; /* "k:" + key or "t:" + token */
	int64_t start;  /* monotonic ms the window began */
	int64_t count;
};

struct mock {
	struct mock_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* job finished / stop requested / reset */
	/* {"boards":[],"lists":[],"cards":[],"tokens":[],"webhooks":[]}: the
	 * model with internal fields; only the view functions make it public. */
	json_t *state;
	json_t *deliveries;   /* array of attempt records */
	json_t *pending_auth; /* array of authorize requests awaiting Allow/Deny */
	struct mock_rate *rates;
	size_t nrates, caprates;
	unsigned jobs_running; /* delivery threads alive */
	uint64_t generation;   /* bumped by reset: older jobs stop */
	bool stopping;
	/* A fault of the actions listings, set by POST /_mock/faults/actions
	 * (tests of what a client does with a hostile or slow Trello). */
	struct mock_fault {
		char mode[16];    /* "", "truncated", "wrong-types", "huge", "status" */
		int status;       /* for "status": the status answered (429, 500, ...) */
		int64_t delay_ms; /* every listing waits this long first */
		int64_t times;    /* listings still affected; -1: all */
	} actions_fault;
};

enum mock_token_state { MOCK_TOKEN_OK = 0, MOCK_TOKEN_INVALID, MOCK_TOKEN_EXPIRED };

/* ---- state.c ------------------------------------------------------------------ */

/* Initialise @m with @cfg (copied) and an empty model. Returns 0 or TH_ENOMEM. */
int mock_init(struct mock *m, const struct mock_config *cfg);
/* Free everything @m owns. Delivery threads must have stopped. */
void mock_fini(struct mock *m);
/* Load --state (missing file: empty model) and add the --token seeds.
 * Returns 0, or TH_EINVAL with @err filled when the file is malformed. */
int mock_load(struct mock *m, th_error *err);
/* Write the model to --state atomically (tmp + rename); no-op without it. */
void mock_save_locked(struct mock *m);
/* Empty the model (keeps the --token seeds) and forget deliveries. */
void mock_reset_locked(struct mock *m);

/* A 24-hex id shaped like a Mongo ObjectId (8 hex seconds + 16 random). */
int mock_new_id(char out[MOCK_ID_LEN + 1]);

/* Borrowed element of collection @coll whose string field @field equals @val. */
json_t *mock_find_locked(struct mock *m, const char *coll, const char *field, const char *val);
/* Board, list or card by id; or board/card by short link. Borrowed. */
json_t *mock_board_get_locked(struct mock *m, const char *id_or_short);
json_t *mock_card_get_locked(struct mock *m, const char *id_or_short);
json_t *mock_list_get_locked(struct mock *m, const char *id);
/* The kind of the model @id names: "board", "list", "card", "member" or NULL. */
const char *mock_model_kind_locked(struct mock *m, const char *id);

/* Create a board seeded with two lists ("To do", "Doing") and one card. Borrowed. */
json_t *mock_board_create_locked(struct mock *m, const char *name);
json_t *mock_list_create_locked(struct mock *m, json_t *board, const char *name);
json_t *mock_card_create_locked(struct mock *m, json_t *list, const char *name);
/* The label of @board named @name (and coloured @color, when given), added
 * in @color (default green) when the board has none. Borrowed; NULL when out
 * of memory or randomness. */
json_t *mock_label_get_or_add_locked(json_t *board, const char *name, const char *color);
/* The first checklist item of @card named @name, and its checklist in *@cl;
 * when there is none, a new incomplete item in the card's first checklist
 * (a new "Checklist" when it has none). Borrowed; NULL (and *@cl NULL) when
 * out of memory or randomness. */
json_t *mock_check_item_get_or_add_locked(json_t *card, const char *name, json_t **cl);

/* Public views (new references, caller decrefs). */
json_t *mock_board_view_locked(struct mock *m, json_t *board, bool for_payload);
json_t *mock_list_view_locked(struct mock *m, json_t *list);
json_t *mock_card_view_locked(struct mock *m, json_t *card);
json_t *mock_member_view_locked(struct mock *m);
/* The model named by @id in its public form, or NULL. */
json_t *mock_model_view_locked(struct mock *m, const char *id);
/* Exactly {"id","description","idModel","callbackURL","active",
 * "consecutiveFailures","firstConsecutiveFailDate"}. */
json_t *mock_webhook_view(json_t *wh);

/* Mint a token (@hex64: the older 64-hex form, else ATTA...). @expires_ms
 * 0 = never. @scope e.g. "read,write". Borrowed. NULL when out of memory. */
json_t *mock_token_create_locked(struct mock *m, const char *value, int64_t expires_ms,
                                 const char *scope, const char *app_name, bool hex64);
/* Check @token: unknown, expired (its webhooks are deleted at that moment,
 * as Trello does) or fine. */
enum mock_token_state mock_token_check_locked(struct mock *m, const char *token);
/* Expire now (webhooks deleted). Returns false when unknown. */
bool mock_token_expire_locked(struct mock *m, const char *token);
/* Revoke: the token disappears (then `invalid token`), webhooks deleted. */
bool mock_token_revoke_locked(struct mock *m, const char *token);
/* Expire every token whose time has come (deleting their webhooks). */
void mock_tokens_sweep_locked(struct mock *m);
/* Delete a webhook by id. Returns false when unknown. */
bool mock_webhook_delete_locked(struct mock *m, const char *id);

/* ---- deliver.c ------------------------------------------------------------------- */

/* HEAD @url like Trello before creating a webhook. Returns 0 and the status
 * in @status when an answer came; TH_EUNAVAIL (and a reason in @why) when
 * the URL could not be reached at all. Call without the lock. */
int mock_head_check(struct mock *m, const char *url, long *status, char *why, size_t whysz);
/* Perform the action described by @req (the POST /_mock/actions body) and
 * deliver it. On success *@action_out (new ref) and *@ndeliveries are set;
 * when @req has "wait": true, returns after every attempt finished. On a
 * bad request returns TH_EINVAL with the offending field in @msg. Call
 * without the lock. */
int mock_action_perform(struct mock *m, json_t *req, json_t **action_out, int *ndeliveries,
                        char *msg, size_t msgsz);
/* Ask every delivery thread to stop and wait up to @timeout_ms for them. */
void mock_deliveries_stop(struct mock *m, int64_t timeout_ms);

/* ---- api.c ------------------------------------------------------------------------ */

/* The HTTP handler (ctx = struct mock *). Thread-safe. */
int mock_handle(void *ctx, http_request *req, http_response *res);

/* Shared with authorize.c and control.c (all thread-safe; none takes the
 * lock unless it says so). */
#define MOCK_MAX_SEGMENTS 8
#define MOCK_URL_MAX 2048
/* String field @k of @o, or "" (borrowed). */
const char *mock_str(json_t *o, const char *k);
/* Send @v (stolen) as JSON; NULL means out of memory (500). */
void mock_send_json(http_response *res, int status, json_t *v);
/* A control API error, always JSON {"message", "error": "BAD_REQUEST"}. */
void mock_ctl_err(http_response *res, int status, const char *msg);
/* Trello's 404 for an unknown route. */
void mock_not_found(struct mock *m, http_response *res, http_request *req);
/* The request's parameters (query, JSON or form body) as one object (new
 * ref), or NULL when the request was malformed (the answer is then sent). */
json_t *mock_params(struct mock *m, http_request *req, http_response *res, bool control);
/* String parameter @name, or NULL (borrowed). */
const char *mock_param(json_t *params, const char *name);
/* Split @path at '/' into @seg (copies in @store). Returns the count, or
 * MOCK_MAX_SEGMENTS + 1 when there are too many. */
size_t mock_split_path(const char *path, char *store, size_t storesz, char *seg[MOCK_MAX_SEGMENTS]);
/* An http(s) URL Trello would accept as a callback or return URL. */
bool mock_valid_url(const char *u);

/* A Trello error (plain text, or JSON with --json-errors). */
void mock_trello_err(struct mock *m, http_response *res, int status, const char *code,
                     const char *msg);

/* ---- actions.c -------------------------------------------------------------------- */

/* Keep @action (copied) with the ids of the models it @touched. Under the lock. */
void mock_action_record_locked(struct mock *m, json_t *action, json_t *touched);
/* GET /1/{boards,cards,lists}/{ref}/actions (filter, limit 0-1000, since,
 * before, page; newest first). Takes the lock. */
void mock_actions_list(struct mock *m, http_response *res, json_t *params, const char *kind,
                       const char *ref);

/* ---- authorize.c ------------------------------------------------------------------ */

/* /1/authorize: GET shows the consent page, POST (its form) mints a token. */
void mock_authorize(struct mock *m, http_request *req, http_response *res);

/* ---- control.c -------------------------------------------------------------------- */

/* POST /_mock/faults/actions (actions.c): set the listings' fault. */
void mock_actions_fault_set(struct mock *m, json_t *params, http_response *res);
/* The /_mock/ control API (see docs/trello-mock.md). */
void mock_control_route(struct mock *m, http_request *req, http_response *res);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * model — the plain data types of trellohook and the Trello payload parser.
 *
 * Strings in these structs are heap-allocated and owned by the struct; each
 * type has a *_clear() that frees them (and leaves the struct zeroed).
 * NULL means "absent". Timestamps are milliseconds since the epoch (0: never).
 */
#ifndef TH_MODEL_H
#define TH_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/jdoc.h"
#include "util/util.h"

/* ---- webhook ----------------------------------------------------------------- */

/* Lifecycle of a webhook row, see service/webhooks.c. */
enum webhook_state {
	WEBHOOK_PENDING = 0, /* stored, not yet confirmed by Trello (add in progress) */
	WEBHOOK_ACTIVE,      /* registered and active on Trello */
	WEBHOOK_DISABLED,    /* Trello reports active:false */
	WEBHOOK_NEEDS_TOKEN, /* its token expired or was revoked */
	WEBHOOK_REMOVING     /* rm asked for while Trello was unreachable; callbacks get 410 */
};

typedef struct webhook {
	char *id;         /* our opaque id, part of the callback URL */
	char *trello_id;  /* Trello's webhook id, NULL until registered */
	char *id_model;   /* the watched Trello model (24 hex) */
	char *model_type; /* "board", "card", "list", "member", "organization" */
	char *model_name;
	char *description;
	char *callback_url; /* the exact URL registered with Trello (signed over) */
	char *token;        /* the Trello user token (plain text in memory) */
	enum webhook_state state;
	bool active; /* Trello's "active" flag as last seen */
	int consecutive_failures;
	int64_t first_consecutive_fail_at;
	int64_t created_at;
	int64_t last_event_at;
	int64_t event_count; /* filled by listings */
	char *token_fp;      /* the token's identity: its keyed fingerprint (hex; see service) */
} webhook;

void webhook_clear(webhook *w);
const char *webhook_state_name(enum webhook_state s);
int webhook_state_parse(const char *s, enum webhook_state *out);

/* ---- token --------------------------------------------------------------------- */

enum token_state { TOKEN_UNCHECKED = 0, TOKEN_VALID, TOKEN_EXPIRED, TOKEN_INVALID };

typedef struct token {
	char *token;        /* plain text in memory; see store for encryption at rest */
	char *member;       /* owner's member id or username, as Trello reported */
	int64_t expires_at; /* 0: never or unknown */
	enum token_state state;
	int64_t checked_at;
	int64_t created_at;
	char *token_fp; /* the token's identity: its keyed fingerprint (hex; see service) */
} token;

void token_clear(token *t);
const char *token_state_name(enum token_state s);
int token_state_parse(const char *s, enum token_state *out);

/* ---- event ---------------------------------------------------------------------- */

/* Deepest nesting we accept in a payload. Trello payloads are about 6 levels deep. */
#define EVENT_MAX_DEPTH 64

/* How an event reached us: POSTed by Trello (a delivery, signed), or listed
 * from Trello's actions after downtime (a backfill, which carries no
 * signature). Stored as its name ("delivery", "backfill"). */
enum event_source { EVENT_FROM_DELIVERY = 0, EVENT_FROM_BACKFILL };

const char *event_source_name(enum event_source s);
int event_source_parse(const char *s, enum event_source *out);

/* A received Trello action. `struct th_event` is the public opaque type. */
struct th_event {
	char *id;          /* our event id */
	char *webhook_id;  /* our webhook id */
	char *action_id;   /* Trello's action.id (dedupe key per webhook) */
	char *action_type; /* action.type, e.g. "updateCard" */
	char *action_date; /* action.date as sent (ISO 8601) */
	char *model_id;    /* the watched model (model.id, else webhook.idModel) */
	char *board_id, *board_name;
	char *list_id, *list_name;
	char *card_id, *card_name;
	char *member;    /* who acted: memberCreator.fullName (or username); also member_name */
	char *member_id; /* who acted: action.idMemberCreator (24 hex); events stored before
	                    schema 8 may lack it, event_fill_from_payload() recovers it */
	char *summary;   /* one line for people, see model/summary.c */
	char *payload;   /* the body exactly as received (NUL-terminated copy) */
	size_t payload_len;
	int64_t received_at;
	enum event_source source; /* zeroed: a delivery */
	json_t *json; /* parsed payload when a caller attached one (owned reference); event_parse()
	                 leaves it NULL */
};
typedef struct th_event event;

/* Parse a Trello delivery body into @ev (which must be zeroed): validates that
 * it is a JSON object with an `action` object that has string `id` and `type`;
 * extracts the fields above, builds the summary, keeps a byte-exact copy of
 * the body (no parsed tree: `json` stays NULL). Bodies must be strict JSON
 * (util/jdoc.h: what jansson accepts with JSON_REJECT_DUPLICATES) and valid
 * UTF-8 (Trello sends UTF-8); depth is limited. Returns 0, or TH_EINVAL with a message naming what
 * is wrong (for the 400 answer). On failure @ev is left cleared. */
int event_parse(event *ev, const char *body, size_t len, th_error *err);
void event_clear(event *ev);

/* Fill what the store does not keep (member_id) from @ev's kept payload, when
 * it has one and the field is still NULL. A payload that does not parse
 * changes nothing. Returns 0 or TH_ENOMEM. Not thread-safe for one event. */
int event_fill_from_payload(event *ev);

/* The one-line summary of a payload, e.g.
 * `Zoë Ångström moved "Ship it" from To do to Doing on Roadmap 2027`.
 * event_summarize_text() parses @len bytes of JSON text (borrowed; text that
 * does not parse gets the generic "Someone did something");
 * event_summarize_doc() reads value @root (NULL allowed) of the parsed
 * document @d, decoding strings into @d's arena. Never NULL unless out of
 * memory; free() it. Thread-safe for different documents. */
char *event_summarize_text(const char *json, size_t len);
char *event_summarize_doc(jdoc *d, const jnode *root);
/* The @i-th action type that has a sentence of its own (the order of
 * docs/actions.md), or NULL past the last. Static storage; thread-safe. */
const char *event_summary_type(size_t i);

/* ---- handler --------------------------------------------------------------------- */

enum handler_kind { HANDLER_EXEC = 0, HANDLER_FORWARD, HANDLER_FUNC };

typedef struct handler {
	char *id;
	enum handler_kind kind;
	char *target; /* command line, URL, or the dispatch_uid of a C function */
	char *on;     /* comma list of action types ("updateCard:idList" allowed); NULL: all */
	char *model;  /* board, list or card id the action must touch; NULL: any */
	char *secret; /* forward: the whsec_ signing secret */
	bool enabled;
	int64_t created_at;
} handler;

void handler_clear(handler *h);
const char *handler_kind_name(enum handler_kind k);
int handler_kind_parse(const char *s, enum handler_kind *out);
/* Does @h want @ev? (filters `on` and `model`; disabled handlers match nothing) */
bool handler_matches(const handler *h, const event *ev);

/* ---- delivery --------------------------------------------------------------------- */

enum delivery_status {
	DELIVERY_PENDING = 0,
	DELIVERY_RUNNING,
	DELIVERY_DONE,
	DELIVERY_FAILED,
	DELIVERY_DEAD
};

typedef struct delivery {
	char *id;
	char *event_id;
	char *handler_id;
	enum delivery_status status;
	int attempts;
	int64_t next_attempt_at;
	char *last_error; /* bounded error text or captured output */
	int64_t updated_at;
	int64_t claimed_until; /* lease end while running */
} delivery;

void delivery_clear(delivery *d);
const char *delivery_status_name(enum delivery_status s);
int delivery_status_parse(const char *s, enum delivery_status *out);

#endif

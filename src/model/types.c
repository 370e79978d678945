/* SPDX-License-Identifier: MIT */
/*
 * types.c — the plain data types of the model: clearing them, naming and
 * parsing their enums, and deciding whether a handler wants an event.
 * Event parsing and summaries live in event.c / summary.c.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* ---- enum names --------------------------------------------------------------- */

static const char *const webhook_state_names[] = {
    [WEBHOOK_PENDING] = "pending",   [WEBHOOK_ACTIVE] = "active",
    [WEBHOOK_DISABLED] = "disabled", [WEBHOOK_NEEDS_TOKEN] = "needs_token",
    [WEBHOOK_REMOVING] = "removing",
};

static const char *const token_state_names[] = {
    [TOKEN_UNCHECKED] = "unchecked",
    [TOKEN_VALID] = "valid",
    [TOKEN_EXPIRED] = "expired",
    [TOKEN_INVALID] = "invalid",
};

static const char *const handler_kind_names[] = {
    [HANDLER_EXEC] = "exec",
    [HANDLER_FORWARD] = "forward",
    [HANDLER_FUNC] = "func",
};

static const char *const delivery_status_names[] = {
    [DELIVERY_PENDING] = "pending", [DELIVERY_RUNNING] = "running", [DELIVERY_DONE] = "done",
    [DELIVERY_FAILED] = "failed",   [DELIVERY_DEAD] = "dead",
};

static const char *const event_source_names[] = {
    [EVENT_FROM_DELIVERY] = "delivery",
    [EVENT_FROM_BACKFILL] = "backfill",
};

/* Index of @s in @names (exact, case-sensitive), or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* The name of @v in @names, or "unknown" when out of range. Static storage. */
static const char *name_of(const char *const *names, size_t n, int v)
{
	if (v < 0 || (size_t)v >= n || !names[v])
		return "unknown";
	return names[v];
}

/* One enum's name table, read both ways: NAME_FN(v) names the value (or
 * "unknown", static storage) and PARSE_FN(s, &out) parses a name into @out,
 * returning 0 or TH_EINVAL and leaving @out alone on failure. */
#define ENUM_NAMES(NAME_FN, PARSE_FN, TYPE, NAMES)                  \
	const char *NAME_FN(TYPE v)                                 \
	{                                                           \
		return name_of(NAMES, TH_ARRAY_LEN(NAMES), (int)v); \
	}                                                           \
	int PARSE_FN(const char *s, TYPE *out)                      \
	{                                                           \
		int i = name_index(NAMES, TH_ARRAY_LEN(NAMES), s);  \
		if (i < 0)                                          \
			return TH_EINVAL;                           \
		*out = (TYPE)i;                                     \
		return 0;                                           \
	}

/* "pending", "active", ... */
ENUM_NAMES(webhook_state_name, webhook_state_parse, enum webhook_state, webhook_state_names)
/* "unchecked", "valid", ... */
ENUM_NAMES(token_state_name, token_state_parse, enum token_state, token_state_names)
/* "exec", "forward", "func" */
ENUM_NAMES(handler_kind_name, handler_kind_parse, enum handler_kind, handler_kind_names)
/* "pending", "running", ... */
ENUM_NAMES(delivery_status_name, delivery_status_parse, enum delivery_status, delivery_status_names)
/* "delivery", "backfill" */
ENUM_NAMES(event_source_name, event_source_parse, enum event_source, event_source_names)

/* ---- clearing ------------------------------------------------------------------- */

/* Free every string of @w and zero it. NULL-safe. */
void webhook_clear(webhook *w)
{
	if (!w)
		return;
	TH_FREE_ALL(w->id, w->trello_id, w->id_model, w->model_type, w->model_name, w->description,
	            w->callback_url, w->token_fp);
	str_free_secret(w->token); /* do not leave the token in freed memory */
	memset(w, 0, sizeof *w);
}

/* Free every string of @t (wiping the token first) and zero it. NULL-safe. */
void token_clear(token *t)
{
	if (!t)
		return;
	str_free_secret(t->token);
	TH_FREE_ALL(t->member, t->token_fp);
	memset(t, 0, sizeof *t);
}

/* Free every string of @h (wiping the secret first) and zero it. NULL-safe. */
void handler_clear(handler *h)
{
	if (!h)
		return;
	TH_FREE_ALL(h->id, h->target, h->on, h->model);
	str_free_secret(h->secret);
	memset(h, 0, sizeof *h);
}

/* Free every string of @d and zero it. NULL-safe. */
void delivery_clear(delivery *d)
{
	if (!d)
		return;
	TH_FREE_ALL(d->id, d->event_id, d->handler_id, d->last_error);
	memset(d, 0, sizeof *d);
}

/* ---- handler filters ------------------------------------------------------------ */

/* Does the payload's action.data show that @field changed? Trello puts the
 * previous values of changed fields in action.data.old; a list move also
 * carries data.listAfter, so "idList" accepts either. @d is the parsed
 * payload. */
static bool payload_changed(const jdoc *d, const char *field, size_t field_len)
{
	const jnode *data = jdoc_get(d, jdoc_get(d, jdoc_root(d), "action"), "data");
	const jnode *old = jdoc_get(d, data, "old");
	if (jdoc_is_object(old)) {
		jdoc_iter it;
		const jnode *key, *val;
		jdoc_iter_init(&it, d, old);
		while (jdoc_iter_next(&it, &key, &val))
			if (jdoc_str_eq(d, key, field, field_len))
				return true;
	}
	return field_len == 6 && memcmp(field, "idList", 6) == 0 &&
	       jdoc_is_object(jdoc_get(d, data, "listAfter"));
}

/* payload_changed() over the kept payload of @ev. An event without one (or
 * with one that does not parse) matches on its type alone. */
static bool event_changed(const event *ev, const char *field, size_t field_len)
{
	if (!ev->payload)
		return true;
	jdoc d;
	bool changed = jdoc_parse(&d, ev->payload, ev->payload_len, EVENT_MAX_DEPTH, NULL) != 0 ||
	               payload_changed(&d, field, field_len);
	jdoc_free(&d);
	return changed;
}

/* Does one `on` entry (not NUL-terminated: @e, @len, already trimmed) match @ev?
 * An entry is an action type ("commentCard") or "type:field" ("updateCard:idList"),
 * which also needs @field among the changed fields of the payload. Without a
 * payload, "type:field" matches on the type alone. */
static bool on_entry_matches(const char *e, size_t len, const event *ev)
{
	const char *colon = memchr(e, ':', len);
	size_t tlen = colon ? (size_t)(colon - e) : len;
	if (!ev->action_type || strlen(ev->action_type) != tlen ||
	    memcmp(ev->action_type, e, tlen) != 0)
		return false;
	if (!colon)
		return true;
	size_t flen = len - tlen - 1;
	return flen == 0 || event_changed(ev, colon + 1, flen);
}

/* Does @h want @ev? A disabled handler matches nothing. `on` (a comma list,
 * spaces around entries ignored; NULL or empty: every type) must have an entry
 * matching the action, and `model` (NULL or empty: any) must equal the event's
 * board, list, card or model id. Pure; thread-safe. */
bool handler_matches(const handler *h, const event *ev)
{
	if (!h || !ev || !h->enabled)
		return false;
	if (h->model && h->model[0]) {
		if (!str_eq(h->model, ev->board_id) && !str_eq(h->model, ev->list_id) &&
		    !str_eq(h->model, ev->card_id) && !str_eq(h->model, ev->model_id))
			return false;
	}
	if (!h->on)
		return true;
	const char *p = h->on;
	bool any_entry = false;
	while (*p) {
		const char *end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		const char *s = p, *e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			any_entry = true;
			if (on_entry_matches(s, (size_t)(e - s), ev))
				return true;
		}
		p = *end ? end + 1 : end;
	}
	return !any_entry; /* "" or only commas: no filter */
}

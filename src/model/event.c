/* SPDX-License-Identifier: MIT */
/*
 * event.c — turning a Trello delivery body into an event.
 *
 * The body comes straight off the wire from anyone who knows a callback URL
 * (the signature is checked before this, but a bug or a leaked secret must
 * still not crash us), so every field is checked for its type before use and
 * nothing here trusts lengths, nesting or encodings.
 *
 * What Trello sends (see shared/trello/API.md and tests/data/payloads/):
 *   {"model": {...the watched model...},
 *    "action": {"id": "<24 hex>", "type": "updateCard", "date": "...",
 *               "idMemberCreator": "...", "memberCreator": {"fullName": ...},
 *               "data": {"board": {...}, "list": {...}, "card": {...}, ...},
 *               "display": {"translationKey": ..., "entities": {...}}},
 *    "webhook": {"id": ..., "idModel": ..., ...}}
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* Longest action type we accept ("updateCheckItemStateOnCard" is 26). */
#define EVENT_MAX_TYPE 64
/* Longest action.date we keep (ISO 8601 is 24 bytes). */
#define EVENT_MAX_DATE 64

/* The byte offset of the first byte that does not start a valid UTF-8
 * sequence, or @len when all of @s is valid. */
static size_t utf8_first_invalid(const char *s, size_t len)
{
	size_t i = 0, n;
	while (i < len && (n = str_utf8_seq(s + i, len - i)) != 0)
		i += n;
	return i;
}

/* How deep @body nests arrays and objects, stopping early once it is past
 * @limit. Strings are skipped (with their escapes), so brackets inside them
 * do not count. For well-formed JSON this equals the depth of the tree:
 * top-level object = 1. Used to word a refusal (jdoc itself stops at the
 * limit without recursing). */
static int json_depth_scan(const char *body, size_t len, int limit)
{
	int depth = 0, max = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = body[i];
		if (in_str) {
			if (c == '\\')
				i++; /* skip the escaped character (\" in particular) */
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
			if (max > limit)
				return max;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* The string at @key of object @obj, or NULL when @obj is not an object or
 * the member is missing or not a string. Decoded into, and owned by, @d. */
static const char *get_str(jdoc *d, const jnode *obj, const char *key)
{
	return jdoc_str(d, jdoc_get(d, obj, key));
}

/* The object at @key of @obj, or NULL. */
static const jnode *get_obj(const jdoc *d, const jnode *obj, const char *key)
{
	const jnode *v = jdoc_get(d, obj, key);
	return jdoc_is_object(v) ? v : NULL;
}

/* A copy of the string at @key when it is a well-formed Trello id (24 hex),
 * else NULL. Sets *oom when the copy failed. */
static char *dup_id(jdoc *d, const jnode *obj, const char *key, bool *oom)
{
	const char *s = get_str(d, obj, key);
	if (!str_is_trello_id(s))
		return NULL;
	char *p = str_dup(s);
	if (!p)
		*oom = true;
	return p;
}

/* A copy of the string at @key when it is a non-empty string, else NULL.
 * Sets *oom when the copy failed. The copy is the exact text as sent
 * (whoever shows it escapes it). */
static char *dup_str(jdoc *d, const jnode *obj, const char *key, bool *oom)
{
	const char *s = get_str(d, obj, key);
	if (!s || !*s)
		return NULL;
	char *p = str_dup(s);
	if (!p)
		*oom = true;
	return p;
}

/* action.type: non-empty, at most EVENT_MAX_TYPE of [A-Za-z:_]. The colon
 * allows the "updateCard:idList" style used in handler filters. */
static bool type_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > EVENT_MAX_TYPE)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ':' || c == '_'))
			return false;
	}
	return true;
}

/* The string action.<@key> (borrowed from @d), or NULL with *@rc and @err
 * naming what is wrong: missing, not a string, or out of memory. */
static const char *action_str(jdoc *d, const jnode *action, const char *key, int *rc, th_error *err)
{
	const jnode *n = jdoc_get(d, action, key);
	if (!n) {
		*rc = th_err(err, TH_EINVAL, "action.%s is missing", key);
		return NULL;
	}
	if (!jdoc_is_string(n)) {
		*rc = th_err(err, TH_EINVAL, "action.%s is not a string", key);
		return NULL;
	}
	const char *v = jdoc_str(d, n);
	if (!v)
		*rc = th_err(err, TH_ENOMEM, "out of memory parsing the payload");
	return v;
}

/* Check the top level and `action` of @root; fills @err and returns
 * TH_EINVAL naming the offending field. */
static int check_shape(jdoc *d, const jnode *root, th_error *err)
{
	if (!jdoc_is_object(root))
		return th_err(err, TH_EINVAL, "body is not a JSON object");
	const jnode *action = jdoc_get(d, root, "action");
	if (!action)
		return th_err(err, TH_EINVAL, "action is missing");
	if (!jdoc_is_object(action))
		return th_err(err, TH_EINVAL, "action is not an object");

	int rc = 0;
	const char *ids = action_str(d, action, "id", &rc, err);
	if (!ids)
		return rc;
	if (!str_is_trello_id(ids))
		return th_err(err, TH_EINVAL, "action.id is not a Trello id (24 hex digits)");

	const char *ts = action_str(d, action, "type", &rc, err);
	if (!ts)
		return rc;
	if (!type_ok(ts))
		return th_err(err, TH_EINVAL,
		              "action.type is not an action type (1 to %d of A-Z a-z : _)",
		              EVENT_MAX_TYPE);
	return 0;
}

/* The name of whoever did the action: memberCreator.fullName, else its
 * username, else display.entities.memberCreator.text, else idMemberCreator.
 * Owned by @d; NULL when none of them is a non-empty string. */
static const char *member_of(jdoc *d, const jnode *action)
{
	const jnode *mc = get_obj(d, action, "memberCreator");
	const char *s = get_str(d, mc, "fullName");
	if (!s || !*s)
		s = get_str(d, mc, "username");
	if (!s || !*s)
		s = get_str(d,
		            get_obj(d, get_obj(d, get_obj(d, action, "display"), "entities"),
		                    "memberCreator"),
		            "text");
	if (!s || !*s)
		s = get_str(d, action, "idMemberCreator");
	return s && *s ? s : NULL;
}

/* Fill the extracted fields of @ev from the checked document @d. Returns 0
 * or TH_ENOMEM. */
static int extract(event *ev, jdoc *d, th_error *err)
{
	bool oom = false;
	const jnode *root = jdoc_root(d);
	const jnode *action = jdoc_get(d, root, "action");
	const jnode *data = get_obj(d, action, "data");

	ev->action_id = str_dup(get_str(d, action, "id"));
	ev->action_type = str_dup(get_str(d, action, "type"));
	if (!ev->action_id || !ev->action_type)
		oom = true;

	const char *date = get_str(d, action, "date");
	if (date && strlen(date) <= EVENT_MAX_DATE)
		ev->action_date = dup_str(d, action, "date", &oom);

	ev->model_id = dup_id(d, get_obj(d, root, "model"), "id", &oom);
	if (!ev->model_id)
		ev->model_id = dup_id(d, get_obj(d, root, "webhook"), "idModel", &oom);

	const jnode *board = get_obj(d, data, "board");
	ev->board_id = dup_id(d, board, "id", &oom);
	ev->board_name = dup_str(d, board, "name", &oom);

	/* A move between lists carries listBefore/listAfter instead of list:
	 * the card is now in listAfter. */
	const jnode *list = get_obj(d, data, "listAfter");
	if (!list || !jdoc_is_string(jdoc_get(d, list, "id")))
		list = get_obj(d, data, "list");
	ev->list_id = dup_id(d, list, "id", &oom);
	ev->list_name = dup_str(d, list, "name", &oom);

	const jnode *card = get_obj(d, data, "card");
	ev->card_id = dup_id(d, card, "id", &oom);
	ev->card_name = dup_str(d, card, "name", &oom);

	ev->member_id = dup_id(d, action, "idMemberCreator", &oom);
	if (!ev->member_id)
		ev->member_id = dup_id(d, get_obj(d, action, "memberCreator"), "id", &oom);

	const char *member = member_of(d, action);
	if (member) {
		ev->member = str_dup(member);
		if (!ev->member)
			oom = true;
	}

	ev->summary = event_summarize_doc(d, root);
	if (!ev->summary)
		oom = true;
	return oom ? th_err(err, TH_ENOMEM, "out of memory parsing the payload") : 0;
}

/* Why @body (which jdoc refused with @jerr) is refused, in the words and the
 * order of precedence the receive path has always used: a NUL byte, then
 * invalid UTF-8, then nesting, then any other JSON error. Only runs on the
 * failure path, so accepted bodies are scanned once. Returns TH_EINVAL. */
static int explain_refusal(const char *body, size_t len, const th_error *jerr, th_error *err)
{
	/* JSON never has a raw NUL (inside strings it must be escaped), and C
	 * string handling downstream would silently cut at one. */
	const char *nul = memchr(body, '\0', len);
	if (nul)
		return th_err(err, TH_EINVAL, "body contains a NUL byte (byte offset %zu)",
		              (size_t)(nul - body));
	size_t bad = utf8_first_invalid(body, len);
	if (bad < len)
		return th_err(err, TH_EINVAL, "body is not valid UTF-8 (byte offset %zu)", bad);
	if (json_depth_scan(body, len, EVENT_MAX_DEPTH) > EVENT_MAX_DEPTH ||
	    str_starts(jerr->msg, "nesting deeper than"))
		return th_err(err, TH_EINVAL, "body nests deeper than %d levels", EVENT_MAX_DEPTH);
	return th_err(err, TH_EINVAL, "body is not JSON: %s", jerr->msg);
}

/* See model.h. @ev must be zeroed; on success it owns copies of everything
 * (free with event_clear()); on failure it is left cleared. id, webhook_id
 * are the caller's to set; received_at is set to now; json stays NULL.
 * Thread-safe. */
int event_parse(event *ev, const char *body, size_t len, th_error *err)
{
	int rc = 0;
	jdoc d;
	th_error jerr = {0};

	if (!body || len == 0) {
		return th_err(err, TH_EINVAL, "body is empty");
	}

	/* One strict pass (jdoc.h): the same JSON that jansson's
	 * json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts, minus raw
	 * NUL bytes and nesting past EVENT_MAX_DEPTH. Trello never sends
	 * duplicate keys: a body with them is hostile or broken, and two readers
	 * could disagree on which one counts. */
	rc = jdoc_parse(&d, body, len, EVENT_MAX_DEPTH, &jerr);
	if (rc == TH_EINVAL) {
		rc = explain_refusal(body, len, &jerr, err);
		goto out;
	}
	if (rc) {
		rc = th_err(err, rc, "body is not JSON: %s", jerr.msg);
		goto out;
	}
	rc = check_shape(&d, jdoc_root(&d), err);
	if (rc)
		goto out;

	/* Keep the exact bytes: signatures and forwards are over these, never a
	 * re-serialisation. The extra NUL makes it usable as a C string. */
	ev->payload = malloc(len + 1);
	if (!ev->payload) {
		rc = th_err(err, TH_ENOMEM, "out of memory copying the payload");
		goto out;
	}
	memcpy(ev->payload, body, len);
	ev->payload[len] = '\0';
	ev->payload_len = len;

	rc = extract(ev, &d, err);
	if (rc)
		goto out;
	ev->received_at = time_now_ms();

out:
	jdoc_free(&d);
	if (rc)
		event_clear(ev);
	return rc;
}

/* See model.h. Frees every string and the tree (when a caller attached one);
 * leaves @ev zeroed. NULL-safe. */
void event_clear(event *ev)
{
	if (!ev)
		return;
	TH_FREE_ALL(ev->id, ev->webhook_id, ev->action_id, ev->action_type, ev->action_date,
	            ev->model_id, ev->board_id, ev->board_name, ev->list_id, ev->list_name,
	            ev->card_id, ev->card_name, ev->member, ev->member_id, ev->summary,
	            ev->payload);
	json_decref(ev->json);
	memset(ev, 0, sizeof *ev);
}

/* See model.h. Parses ev->payload again (borrowed) only when a field is
 * missing; the names stored with the event are left as they are. */
int event_fill_from_payload(event *ev)
{
	if (!ev || !ev->payload || ev->member_id)
		return 0;
	jdoc d;
	bool oom = false;
	if (jdoc_parse(&d, ev->payload, ev->payload_len, EVENT_MAX_DEPTH, NULL) == 0) {
		const jnode *action = get_obj(&d, jdoc_root(&d), "action");
		ev->member_id = dup_id(&d, action, "idMemberCreator", &oom);
		if (!ev->member_id && !oom)
			ev->member_id =
			    dup_id(&d, get_obj(&d, action, "memberCreator"), "id", &oom);
	}
	jdoc_free(&d);
	return oom ? TH_ENOMEM : 0;
}

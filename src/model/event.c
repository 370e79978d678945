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

/* Deepest nesting we accept. Trello payloads are about 6 levels deep. */
#define EVENT_MAX_DEPTH 64
/* Longest action type we accept ("updateCheckItemStateOnCard" is 26). */
#define EVENT_MAX_TYPE 64
/* Longest action.date we keep (ISO 8601 is 24 bytes). */
#define EVENT_MAX_DATE 64

/* The byte offset of the first byte that does not start a valid UTF-8
 * sequence, or @len when all of @s is valid. Each sequence is checked with
 * str_utf8_valid() so the rules (no overlongs, no surrogates, ≤ U+10FFFF)
 * live in one place. */
static size_t utf8_first_invalid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n;
		if (c < 0x80)
			n = 1;
		else if ((c & 0xE0) == 0xC0)
			n = 2;
		else if ((c & 0xF0) == 0xE0)
			n = 3;
		else if ((c & 0xF8) == 0xF0)
			n = 4;
		else
			return i;
		if (n > len - i || !str_utf8_valid(s + i, n))
			return i;
		i += n;
	}
	return len;
}

/* How deep @body nests arrays and objects, stopping early once it is past
 * @limit. Strings are skipped (with their escapes), so brackets inside them
 * do not count. Done on the bytes before parsing so that a hostile body never
 * makes jansson (which recurses per level, up to 2048) or us go deep. For
 * well-formed JSON this equals the depth of the tree: top-level object = 1. */
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
 * the member is missing or not a string. Borrowed from the tree. */
static const char *get_str(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The object at @key of @obj, or NULL. Borrowed. */
static json_t *get_obj(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_object(v) ? v : NULL;
}

/* A copy of the string at @key when it is a well-formed Trello id (24 hex),
 * else NULL. Sets *oom when the copy failed. */
static char *dup_id(const json_t *obj, const char *key, bool *oom)
{
	const char *s = get_str(obj, key);
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
static char *dup_str(const json_t *obj, const char *key, bool *oom)
{
	const char *s = get_str(obj, key);
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

/* Check the top level and `action` of @root; fills @err and returns
 * TH_EINVAL naming the offending field. */
static int check_shape(json_t *root, th_error *err)
{
	if (!json_is_object(root))
		return th_err(err, TH_EINVAL, "body is not a JSON object");
	json_t *action = json_object_get(root, "action");
	if (!action)
		return th_err(err, TH_EINVAL, "action is missing");
	if (!json_is_object(action))
		return th_err(err, TH_EINVAL, "action is not an object");

	json_t *id = json_object_get(action, "id");
	if (!id)
		return th_err(err, TH_EINVAL, "action.id is missing");
	if (!json_is_string(id))
		return th_err(err, TH_EINVAL, "action.id is not a string");
	if (!str_is_trello_id(json_string_value(id)))
		return th_err(err, TH_EINVAL, "action.id is not a Trello id (24 hex digits)");

	json_t *type = json_object_get(action, "type");
	if (!type)
		return th_err(err, TH_EINVAL, "action.type is missing");
	if (!json_is_string(type))
		return th_err(err, TH_EINVAL, "action.type is not a string");
	if (!type_ok(json_string_value(type)))
		return th_err(err, TH_EINVAL,
		              "action.type is not an action type (1 to %d of A-Z a-z : _)",
		              EVENT_MAX_TYPE);
	return 0;
}

/* The name of whoever did the action: memberCreator.fullName, else its
 * username, else display.entities.memberCreator.text, else idMemberCreator.
 * Borrowed; NULL when none of them is a non-empty string. */
static const char *member_of(const json_t *action)
{
	const json_t *mc = get_obj(action, "memberCreator");
	const char *s = get_str(mc, "fullName");
	if (!s || !*s)
		s = get_str(mc, "username");
	if (!s || !*s)
		s = get_str(
		    get_obj(get_obj(get_obj(action, "display"), "entities"), "memberCreator"),
		    "text");
	if (!s || !*s)
		s = get_str(action, "idMemberCreator");
	return s && *s ? s : NULL;
}

/* Fill the extracted fields of @ev from the checked tree @root. Returns 0 or
 * TH_ENOMEM. */
static int extract(event *ev, json_t *root, th_error *err)
{
	bool oom = false;
	json_t *action = json_object_get(root, "action");
	json_t *data = get_obj(action, "data");

	ev->action_id = str_dup(get_str(action, "id"));
	ev->action_type = str_dup(get_str(action, "type"));
	if (!ev->action_id || !ev->action_type)
		oom = true;

	const char *date = get_str(action, "date");
	if (date && strlen(date) <= EVENT_MAX_DATE)
		ev->action_date = dup_str(action, "date", &oom);

	ev->model_id = dup_id(get_obj(root, "model"), "id", &oom);
	if (!ev->model_id)
		ev->model_id = dup_id(get_obj(root, "webhook"), "idModel", &oom);

	json_t *board = get_obj(data, "board");
	ev->board_id = dup_id(board, "id", &oom);
	ev->board_name = dup_str(board, "name", &oom);

	/* A move between lists carries listBefore/listAfter instead of list:
	 * the card is now in listAfter. */
	json_t *list = get_obj(data, "listAfter");
	if (!list || !get_str(list, "id"))
		list = get_obj(data, "list");
	ev->list_id = dup_id(list, "id", &oom);
	ev->list_name = dup_str(list, "name", &oom);

	json_t *card = get_obj(data, "card");
	ev->card_id = dup_id(card, "id", &oom);
	ev->card_name = dup_str(card, "name", &oom);

	const char *member = member_of(action);
	if (member) {
		ev->member = str_dup(member);
		if (!ev->member)
			oom = true;
	}

	ev->summary = event_summarize(root);
	if (!ev->summary)
		oom = true;
	return oom ? th_err(err, TH_ENOMEM, "out of memory parsing the payload") : 0;
}

/* See model.h. @ev must be zeroed; on success it owns copies of everything
 * (free with event_clear()); on failure it is left cleared. id, webhook_id
 * are the caller's to set; received_at is set to now. Thread-safe. */
int event_parse(event *ev, const char *body, size_t len, th_error *err)
{
	int rc = 0;
	json_t *root = NULL;

	if (!body || len == 0) {
		rc = th_err(err, TH_EINVAL, "body is empty");
		goto out;
	}
	/* JSON never has a raw NUL (inside strings it must be escaped), and C
	 * string handling downstream would silently cut at one. */
	const char *nul = memchr(body, '\0', len);
	if (nul) {
		rc = th_err(err, TH_EINVAL, "body contains a NUL byte (byte offset %zu)",
		            (size_t)(nul - body));
		goto out;
	}
	size_t bad = utf8_first_invalid(body, len);
	if (bad < len) {
		rc = th_err(err, TH_EINVAL, "body is not valid UTF-8 (byte offset %zu)", bad);
		goto out;
	}
	if (json_depth_scan(body, len, EVENT_MAX_DEPTH) > EVENT_MAX_DEPTH) {
		rc = th_err(err, TH_EINVAL, "body nests deeper than %d levels", EVENT_MAX_DEPTH);
		goto out;
	}

	/* Trello never sends duplicate keys: a body with them is hostile or
	 * broken, and two readers could disagree on which one counts. NUL bytes,
	 * escaped as \u0000 are rejected by jansson (no JSON_ALLOW_NUL). */
	json_error_t jerr;
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = th_err(err, TH_EINVAL, "body is not JSON: %s at line %d column %d", jerr.text,
		            jerr.line, jerr.column);
		goto out;
	}
	rc = check_shape(root, err);
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

	rc = extract(ev, root, err);
	if (rc)
		goto out;
	ev->json = root;
	root = NULL;
	ev->received_at = time_now_ms();

out:
	json_decref(root);
	if (rc)
		event_clear(ev);
	return rc;
}

/* See model.h. Frees every string and the tree; leaves @ev zeroed. NULL-safe. */
void event_clear(event *ev)
{
	if (!ev)
		return;
	free(ev->id);
	free(ev->webhook_id);
	free(ev->action_id);
	free(ev->action_type);
	free(ev->action_date);
	free(ev->model_id);
	free(ev->board_id);
	free(ev->board_name);
	free(ev->list_id);
	free(ev->list_name);
	free(ev->card_id);
	free(ev->card_name);
	free(ev->member);
	free(ev->summary);
	free(ev->payload);
	json_decref(ev->json);
	memset(ev, 0, sizeof *ev);
}

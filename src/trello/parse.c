/* SPDX-License-Identifier: MIT */
/*
 * parse.c — the pure half of the Trello client: reading Trello's answers
 * (JSON objects, error bodies, rate-limit headers) and what users type for
 * --model. No network, no global state; everything here is unit-tested
 * without a server.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "trello/trello.h"

/* ---- small helpers ---------------------------------------------------------------- */

#define BAD_ANSWER "Trello sent an unexpected answer: "

/* Copy at most @max bytes of @s (length @len) into @out as one printable line:
 * control bytes become spaces, invalid UTF-8 becomes '?', runs of whitespace
 * collapse, ends are trimmed. Used for text that came from outside. */
static void sanitize_line(const char *s, size_t len, char *out, size_t outsz)
{
	size_t o = 0;
	bool utf8 = str_utf8_valid(s, len);
	bool space = false;
	if (!outsz)
		return;
	for (size_t i = 0; i < len && o + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == ' ') {
			space = o > 0;
			continue;
		}
		if (ch >= 0x80 && !utf8)
			ch = '?';
		if (space) {
			if (o + 2 >= outsz)
				break;
			out[o++] = ' ';
			space = false;
		}
		out[o++] = (char)ch;
	}
	/* never cut a UTF-8 sequence in half */
	if (utf8 && o > 0 && (unsigned char)out[o - 1] >= 0x80) {
		size_t k = o;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0) {
			unsigned char lead = (unsigned char)out[k - 1];
			size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
			if (o - (k - 1) < need)
				o = k - 1;
		}
	}
	out[o] = '\0';
}

/* "Trello sent an unexpected answer: "field" what" (field may be NULL). */
static int bad_answer(th_error *err, const char *field, const char *what)
{
	if (field)
		return th_err(err, TH_ETRELLO, BAD_ANSWER "\"%s\" %s", field, what);
	return th_err(err, TH_ETRELLO, BAD_ANSWER "%s", what);
}

/* Optional member @key of @obj into *@v: absent or null → NULL and 0; one that
 * @ok accepts → it and 0; anything else → the error "<key> <what>". */
static int member(json_t *obj, const char *key, bool (*ok)(const json_t *), const char *what,
                  json_t **v, th_error *err)
{
	*v = json_object_get(obj, key);
	if (*v && json_is_null(*v))
		*v = NULL;
	if (*v && !ok(*v))
		return bad_answer(err, key, what);
	return 0;
}

static bool is_string(const json_t *v)
{
	return json_is_string(v);
}

static bool is_boolean(const json_t *v)
{
	return json_is_boolean(v);
}

static bool is_count(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= 1000000000;
}

/* Optional string member: absent or null → NULL; a string → copied; anything
 * else → error. */
static int get_str(json_t *obj, const char *key, char **out, th_error *err)
{
	json_t *v;
	*out = NULL;
	int rc = member(obj, key, is_string, "is not a string", &v, err);
	if (rc || !v)
		return rc;
	*out = str_ndup(json_string_value(v), json_string_length(v));
	if (!*out)
		return th_err(err, TH_ENOMEM, "out of memory");
	return 0;
}

/* Required string member. */
static int need_str(json_t *obj, const char *key, char **out, th_error *err)
{
	int rc = get_str(obj, key, out, err);
	if (rc)
		return rc;
	if (!*out || !**out) {
		free(*out);
		*out = NULL;
		return bad_answer(err, key, "is missing");
	}
	return 0;
}

/* A string member of an answer object and where it goes: the char * at @off
 * of the item being filled; @need: required (need_str), else optional. */
typedef struct str_field {
	const char *key;
	size_t off;
	bool need;
} str_field;
#define STR_FIELD(TYPE, KEY, MEMBER, NEED)            \
	{                                             \
		(KEY), offsetof(TYPE, MEMBER), (NEED) \
	}

/* Read the @n string members @f of @obj into @item, in order, up to the
 * first error. */
static int get_strs(json_t *obj, void *item, const str_field *f, size_t n, th_error *err)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		char **out = (char **)((char *)item + f[i].off);
		rc = f[i].need ? need_str(obj, f[i].key, out, err)
		               : get_str(obj, f[i].key, out, err);
	}
	return rc;
}

static int get_bool(json_t *obj, const char *key, bool dflt, bool *out, th_error *err)
{
	json_t *v;
	int rc = member(obj, key, is_boolean, "is not true or false", &v, err);
	*out = v && !rc ? json_is_true(v) : dflt;
	return rc;
}

static int get_count(json_t *obj, const char *key, int *out, th_error *err)
{
	json_t *v;
	int rc = member(obj, key, is_count, "is not a count", &v, err);
	*out = v && !rc ? (int)json_integer_value(v) : 0;
	return rc;
}

/* Parse @len bytes as JSON; the root must be of @type. */
static int load(const char *body, size_t len, json_type type, json_t **out, th_error *err)
{
	json_error_t je;
	*out = NULL;
	if (!body)
		return th_err(err, TH_ETRELLO, BAD_ANSWER "empty body");
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		char text[120];
		sanitize_line(je.text, strlen(je.text), text, sizeof text);
		return th_err(err, TH_ETRELLO, BAD_ANSWER "invalid JSON at byte %d (%s)",
		              je.position, text);
	}
	if (json_typeof(root) != type) {
		json_decref(root);
		return th_err(err, TH_ETRELLO, BAD_ANSWER "expected a JSON %s",
		              type == JSON_ARRAY ? "array" : "object");
	}
	*out = root;
	return 0;
}

/* ---- clearing --------------------------------------------------------------------- */

/* Clear each of the @elem-sized *@items with @clear, free the array and
 * empty the list (*@items NULL, *@len 0). */
static void list_clear(void **items, size_t *len, size_t elem, void (*clear)(void *item))
{
	for (size_t i = 0; i < *len; i++)
		clear((char *)*items + i * elem);
	free(*items);
	*items = NULL;
	*len = 0;
}

/* NAME(l): free every item of the list @l (with ITEM_CLEAR) and its array;
 * the list is left empty. NULL-safe. */
#define LIST_CLEAR(NAME, LIST, ITEM_CLEAR)                                                     \
	void NAME(LIST *l)                                                                     \
	{                                                                                      \
		if (l)                                                                         \
			list_clear((void **)&l->items, &l->len, sizeof *l->items, ITEM_CLEAR); \
	}

static void webhook_item_clear(void *item)
{
	trello_webhook_clear(item);
}

/* Free a webhook's strings; the struct is zeroed. NULL-safe. */
void trello_webhook_clear(trello_webhook *w)
{
	if (!w)
		return;
	TH_FREE_ALL(w->id, w->description, w->id_model, w->callback_url,
	            w->first_consecutive_fail_date);
	memset(w, 0, sizeof *w);
}

LIST_CLEAR(trello_webhook_list_clear, trello_webhook_list, webhook_item_clear)

/* Free a token info's strings and permissions. NULL-safe. */
void trello_token_info_clear(trello_token_info *t)
{
	if (!t)
		return;
	TH_FREE_ALL(t->id, t->id_member, t->date_created, t->date_expires);
	for (size_t i = 0; i < t->npermissions; i++)
		TH_FREE_ALL(t->permissions[i].id_model, t->permissions[i].model_type);
	free(t->permissions);
	memset(t, 0, sizeof *t);
}

/* Free a member's strings. NULL-safe. */
void trello_member_clear(trello_member *m)
{
	if (!m)
		return;
	TH_FREE_ALL(m->id, m->username, m->full_name);
	memset(m, 0, sizeof *m);
}

static void board_item_clear(void *item)
{
	trello_board *b = item;
	TH_FREE_ALL(b->id, b->name, b->url, b->short_link);
}

LIST_CLEAR(trello_board_list_clear, trello_board_list, board_item_clear)

/* Free a resolved model's strings. NULL-safe. */
void trello_model_clear(trello_model *m)
{
	if (!m)
		return;
	TH_FREE_ALL(m->id, m->name, m->url);
	memset(m, 0, sizeof *m);
}

/* Static name of a model type. */
const char *trello_model_type_name(enum trello_model_type t)
{
	switch (t) {
	case TRELLO_MODEL_BOARD: return "board";
	case TRELLO_MODEL_CARD: return "card";
	case TRELLO_MODEL_LIST: return "list";
	}
	return "unknown";
}

/* Static, stable name of an error kind (for logs, --json and metrics). */
const char *trello_error_kind_name(enum trello_error_kind kind)
{
	switch (kind) {
	case TRELLO_ERR_NONE: return "none";
	case TRELLO_ERR_INVALID_TOKEN: return "invalid-token";
	case TRELLO_ERR_EXPIRED_TOKEN: return "expired-token";
	case TRELLO_ERR_INVALID_KEY: return "invalid-key";
	case TRELLO_ERR_NOT_OWNER: return "not-owner";
	case TRELLO_ERR_NOT_FOUND: return "not-found";
	case TRELLO_ERR_DUPLICATE: return "duplicate";
	case TRELLO_ERR_BAD_MODEL: return "bad-model";
	case TRELLO_ERR_HEAD_CHECK: return "head-check";
	case TRELLO_ERR_RATE_LIMITED: return "rate-limited";
	case TRELLO_ERR_UNREACHABLE: return "unreachable";
	case TRELLO_ERR_SERVER: return "server-error";
	case TRELLO_ERR_BAD_ANSWER: return "bad-answer";
	case TRELLO_ERR_OTHER: return "other";
	}
	return "other";
}

/* True when the error says the token is dead (invalid or expired). NULL-safe. */
bool trello_error_is_token_dead(const trello_error *err)
{
	return err &&
	       (err->kind == TRELLO_ERR_INVALID_TOKEN || err->kind == TRELLO_ERR_EXPIRED_TOKEN);
}

/* ---- objects ------------------------------------------------------------------------ */

/* Fill one item from a JSON value; on failure the item may hold what was
 * filled so far (the caller's clear frees it). */
typedef int (*item_fn)(json_t *v, void *item, th_error *err);

/* Parse @len bytes as one JSON object into the @size-byte @out (zeroed
 * first): with @fill, which leaves @out cleared when it fails; with no
 * @fill, the @n string members @f alone (@out zeroed again on error, its
 * strings freed). */
static int load_object(const char *body, size_t len, void *out, size_t size, item_fn fill,
                       const str_field *f, size_t n, th_error *err)
{
	json_t *root = NULL;
	memset(out, 0, size);
	int rc = load(body, len, JSON_OBJECT, &root, err);
	if (!rc)
		rc = fill ? fill(root, out, err) : get_strs(root, out, f, n, err);
	if (rc && !fill) { /* its strings are all a string-only object holds */
		for (size_t i = 0; i < n; i++)
			free(*(char **)((char *)out + f[i].off));
		memset(out, 0, size);
	}
	json_decref(root);
	return rc;
}

/* Fill @out from a webhook object. @out must be zeroed; cleared on error. */
static int webhook_from(json_t *o, trello_webhook *out, th_error *err)
{
	int rc;
	if (!json_is_object(o))
		return bad_answer(err, NULL, "a webhook is not a JSON object");
	if ((rc = need_str(o, "id", &out->id, err)) ||
	    (rc = get_str(o, "description", &out->description, err)) ||
	    (rc = get_str(o, "idModel", &out->id_model, err)) ||
	    (rc = get_str(o, "callbackURL", &out->callback_url, err)) ||
	    (rc = get_bool(o, "active", true, &out->active, err)) ||
	    (rc = get_count(o, "consecutiveFailures", &out->consecutive_failures, err)) ||
	    (rc = get_str(o, "firstConsecutiveFailDate", &out->first_consecutive_fail_date, err)))
		trello_webhook_clear(out);
	return rc;
}

static int webhook_item(json_t *v, void *item, th_error *err)
{
	return webhook_from(v, item, err);
}

/* Parse one webhook object (the answer of create/get/update). */
int trello_parse_webhook(const char *body, size_t len, trello_webhook *out, th_error *err)
{
	return load_object(body, len, out, sizeof *out, webhook_item, NULL, 0, err);
}

/* Parse a JSON array answer into a calloc'ed array of @elem-sized items
 * filled by @fill, counting in *@n every element that was started. More than
 * @max elements is the error @too_many. On failure the list is cleared
 * (list_clear() with @clear, partial items included). */
static int load_array(const char *body, size_t len, size_t max, const char *too_many, void **items,
                      size_t *n, size_t elem, item_fn fill, void (*clear)(void *item),
                      th_error *err)
{
	json_t *root = NULL;
	*items = NULL;
	*n = 0;
	int rc = load(body, len, JSON_ARRAY, &root, err);
	size_t count = rc ? 0 : json_array_size(root);
	if (!rc && count > max)
		rc = bad_answer(err, NULL, too_many);
	if (!rc && count && !(*items = calloc(count, elem)))
		rc = th_err(err, TH_ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < count; i++) {
		(*n)++;
		rc = fill(json_array_get(root, i), (char *)*items + i * elem, err);
	}
	json_decref(root);
	if (rc)
		list_clear(items, n, elem, clear);
	return rc;
}

/* Parse an array of webhooks (GET /1/tokens/{token}/webhooks). */
int trello_parse_webhook_list(const char *body, size_t len, trello_webhook_list *out, th_error *err)
{
	return load_array(body, len, SIZE_MAX, NULL, (void **)&out->items, &out->len,
	                  sizeof *out->items, webhook_item, webhook_item_clear, err);
}

/* A token info object and its permissions (counted as they are started);
 * cleared on error. */
static int token_info_from(json_t *root, void *item, th_error *err)
{
	trello_token_info *out = item;
	int rc;
	static const str_field fields[] = {
	    STR_FIELD(trello_token_info, "id", id, true),
	    STR_FIELD(trello_token_info, "idMember", id_member, false),
	    STR_FIELD(trello_token_info, "dateCreated", date_created, false),
	    STR_FIELD(trello_token_info, "dateExpires", date_expires, false),
	};
	if ((rc = get_strs(root, out, fields, TH_ARRAY_LEN(fields), err)))
		goto out;
	json_t *perms = json_object_get(root, "permissions");
	if (!perms || json_is_null(perms))
		goto out;
	if (!json_is_array(perms)) {
		rc = bad_answer(err, "permissions", "is not a list");
		goto out;
	}
	size_t n = json_array_size(perms);
	if (n) {
		out->permissions = calloc(n, sizeof *out->permissions);
		if (!out->permissions) {
			rc = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(perms, i);
		trello_permission *tp = &out->permissions[out->npermissions];
		if (!json_is_object(p)) {
			rc = bad_answer(err, NULL, "a permission is not a JSON object");
			goto out;
		}
		out->npermissions++; /* counted first so clear() frees partial fields */
		if ((rc = get_str(p, "idModel", &tp->id_model, err)) ||
		    (rc = get_str(p, "modelType", &tp->model_type, err)) ||
		    (rc = get_bool(p, "read", false, &tp->read, err)) ||
		    (rc = get_bool(p, "write", false, &tp->write, err)))
			goto out;
	}
out:
	if (rc)
		trello_token_info_clear(out);
	return rc;
}

/* Parse GET /1/tokens/{token}. */
int trello_parse_token_info(const char *body, size_t len, trello_token_info *out, th_error *err)
{
	return load_object(body, len, out, sizeof *out, token_info_from, NULL, 0, err);
}

/* Parse GET /1/members/me. */
int trello_parse_member(const char *body, size_t len, trello_member *out, th_error *err)
{
	static const str_field fields[] = {
	    STR_FIELD(trello_member, "id", id, true),
	    STR_FIELD(trello_member, "username", username, false),
	    STR_FIELD(trello_member, "fullName", full_name, false),
	};
	return load_object(body, len, out, sizeof *out, NULL, fields, TH_ARRAY_LEN(fields), err);
}

static int board_item(json_t *o, void *item, th_error *err)
{
	static const str_field fields[] = {
	    STR_FIELD(trello_board, "id", id, true),
	    STR_FIELD(trello_board, "name", name, false),
	    STR_FIELD(trello_board, "url", url, false),
	    STR_FIELD(trello_board, "shortLink", short_link, false),
	};
	if (!json_is_object(o))
		return bad_answer(err, NULL, "a board is not a JSON object");
	return get_strs(o, item, fields, TH_ARRAY_LEN(fields), err);
}

/* Parse GET /1/members/me/boards. */
int trello_parse_board_list(const char *body, size_t len, trello_board_list *out, th_error *err)
{
	return load_array(body, len, SIZE_MAX, NULL, (void **)&out->items, &out->len,
	                  sizeof *out->items, board_item, board_item_clear, err);
}

/* Parse a board, card or list object into a model (id must be 24 hex: it becomes idModel). */
int trello_parse_model(const char *body, size_t len, enum trello_model_type type, trello_model *out,
                       th_error *err)
{
	static const str_field fields[] = {
	    STR_FIELD(trello_model, "id", id, true),
	    STR_FIELD(trello_model, "name", name, false),
	    STR_FIELD(trello_model, "url", url, false),
	};
	int rc = load_object(body, len, out, sizeof *out, NULL, fields, TH_ARRAY_LEN(fields), err);
	if (!rc && !str_is_trello_id(out->id)) {
		rc = bad_answer(err, NULL, "the id is not 24 hex digits");
		trello_model_clear(out);
	}
	out->type = type; /* kept on failure too */
	return rc;
}

/* ---- actions ------------------------------------------------------------------------ */

static void action_item_clear(void *item)
{
	trello_action *a = item;
	TH_FREE_ALL(a->id, a->type, a->date, a->json);
}

LIST_CLEAR(trello_action_list_clear, trello_action_list, action_item_clear)

/* An action type as Trello names them: 1-100 of [A-Za-z0-9_:-]. */
static bool action_type_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 100)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == ':'))
			return false;
	return true;
}

/* One element of the listing (checked, then re-serialised as it came). */
static int action_item(json_t *v, void *item, th_error *err)
{
	trello_action *a = item;
	int rc;
	if (!json_is_object(v))
		return bad_answer(err, NULL, "an action is not a JSON object");
	static const str_field fields[] = {
	    STR_FIELD(trello_action, "id", id, true),
	    STR_FIELD(trello_action, "type", type, true),
	    STR_FIELD(trello_action, "date", date, true),
	};
	if ((rc = get_strs(v, item, fields, TH_ARRAY_LEN(fields), err)))
		return rc;
	if (!str_is_trello_id(a->id))
		return bad_answer(err, "id", "of an action is not 24 hex digits");
	if (!action_type_ok(a->type))
		return bad_answer(err, "type", "of an action is not an action type");
	if (time_parse_iso(a->date, &a->date_ms) || a->date_ms <= 0)
		return bad_answer(err, "date", "of an action is not an ISO 8601 date");
	a->json = json_dumps(v, JSON_COMPACT);
	if (!a->json)
		return th_err(err, TH_ENOMEM, "out of memory");
	return 0;
}

/* Parse an actions listing; see trello.h. */
int trello_parse_action_list(const char *body, size_t len, size_t max, trello_action_list *out,
                             th_error *err)
{
	return load_array(body, len, max, "more actions than asked for", (void **)&out->items,
	                  &out->len, sizeof *out->items, action_item, action_item_clear, err);
}

/* A since/before value: an action id, or a date as Trello writes them. */
bool trello_action_bound_ok(const char *s)
{
	int64_t ms;
	if (!s)
		return false;
	if (str_is_trello_id(s))
		return true;
	if (strlen(s) < 20 || strlen(s) > 30)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == ':' || *p == 'T' ||
		      *p == '.' || *p == 'Z'))
			return false;
	return time_parse_iso(s, &ms) == 0;
}

/* ---- errors -------------------------------------------------------------------------- */

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* Classify one error answer. The message is Trello's own text, prefixed with
 * "Trello: " so users see who said it. */
void trello_error_from_answer(int status, const char *body, size_t len, trello_error *out)
{
	char text[200] = "";
	char code_text[64] = "";
	json_t *root = NULL;

	memset(out, 0, sizeof *out);
	out->http_status = status;
	if (!body)
		len = 0;
	/* The newer form is JSON {"message": "...", "error": "CODE"}; anything else
	 * (plain text, an HTML page from a proxy) is shown as text. */
	size_t skip = 0;
	while (skip < len && isspace((unsigned char)body[skip]))
		skip++;
	if (skip < len && body[skip] == '{')
		root = json_loadb(body, len, 0, NULL);
	if (root && json_is_object(root)) {
		json_t *m = json_object_get(root, "message");
		json_t *e = json_object_get(root, "error");
		if (json_is_string(e))
			sanitize_line(json_string_value(e), json_string_length(e), code_text,
			              sizeof code_text);
		if (json_is_string(m))
			sanitize_line(json_string_value(m), json_string_length(m), text,
			              sizeof text);
		else if (code_text[0])
			str_copy(text, sizeof text, code_text);
	}
	if (!text[0] && !root)
		sanitize_line(body ? body : "", len, text, sizeof text);
	json_decref(root);
	if (!text[0])
		str_printf(text, sizeof text, "HTTP %d with no message", status);

	int code;
	enum trello_error_kind kind = TRELLO_ERR_OTHER;
	if (status == 401) {
		code = TH_EAUTH;
		if (contains_ci(text, "expired token"))
			kind = TRELLO_ERR_EXPIRED_TOKEN;
		else if (contains_ci(text, "invalid token") ||
		         contains_ci(text, "unauthorized token"))
			kind = TRELLO_ERR_INVALID_TOKEN;
		else if (contains_ci(text, "invalid key"))
			kind = TRELLO_ERR_INVALID_KEY;
		else if (contains_ci(text, "does not belong to token"))
			kind = TRELLO_ERR_NOT_OWNER;
	} else if (status == 404) {
		code = TH_ENOTFOUND;
		kind = TRELLO_ERR_NOT_FOUND;
	} else if (status == 429) {
		code = TH_EUNAVAIL;
		kind = TRELLO_ERR_RATE_LIMITED;
	} else if (status >= 500) {
		code = TH_EUNAVAIL;
		kind = TRELLO_ERR_SERVER;
	} else {
		code = TH_ETRELLO;
		if (contains_ci(text, "already exists"))
			kind = TRELLO_ERR_DUPLICATE;
		else if (contains_ci(text, "idModel"))
			kind = TRELLO_ERR_BAD_MODEL;
		else if (contains_ci(text, "did not return 200") ||
		         contains_ci(text, "not reachable") ||
		         contains_ci(code_text, "VALIDATOR_URL"))
			kind = TRELLO_ERR_HEAD_CHECK;
	}
	out->kind = kind;
	if (status >= 500)
		th_err(&out->th, code, "Trello failed (HTTP %d): %s; try again later", status,
		       text);
	else
		th_err(&out->th, code, "Trello: %s", text);
}

/* ---- rate-limit headers --------------------------------------------------------------- */

/* Reset every field to "not sent". */
void trello_rate_info_init(trello_rate_info *r)
{
	r->token_remaining = r->token_max = r->token_interval_ms = -1;
	r->key_remaining = r->key_max = r->key_interval_ms = -1;
}

/* See trello.h. Header names are case-insensitive on the wire (HTTP/2 sends
 * them lowercase, Trello's HTTP/1.1 answers mixed case). */
bool trello_rate_parse_header(trello_rate_info *r, const char *line, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} known[] = {
	    {"x-rate-limit-api-token-remaining", offsetof(trello_rate_info, token_remaining)},
	    {"x-rate-limit-api-token-max", offsetof(trello_rate_info, token_max)},
	    {"x-rate-limit-api-token-interval-ms", offsetof(trello_rate_info, token_interval_ms)},
	    {"x-rate-limit-api-key-remaining", offsetof(trello_rate_info, key_remaining)},
	    {"x-rate-limit-api-key-max", offsetof(trello_rate_info, key_max)},
	    {"x-rate-limit-api-key-interval-ms", offsetof(trello_rate_info, key_interval_ms)},
	};
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return false;
	size_t nlen = (size_t)(colon - line);
	for (size_t i = 0; i < TH_ARRAY_LEN(known); i++) {
		if (strlen(known[i].name) != nlen || strncasecmp(line, known[i].name, nlen) != 0)
			continue;
		const char *v = colon + 1;
		const char *end = line + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v &&
		       (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
			end--;
		char tmp[24];
		int64_t n;
		if ((size_t)(end - v) >= sizeof tmp)
			return true;
		memcpy(tmp, v, (size_t)(end - v));
		tmp[end - v] = '\0';
		if (num_parse_i64(tmp, 0, 1000000000, &n) == 0)
			*(long *)(void *)((char *)r + known[i].off) = (long)n;
		return true;
	}
	return false;
}

/* ---- --model ---------------------------------------------------------------------------- */

#define MODEL_EXAMPLE                                                       \
	"expected a 24-character Trello id or a board or card URL such as " \
	"https://trello.com/b/AbCd1234/roadmap"

/* See trello.h. Accepted: ID24; [http[s]://][www.]trello.com/{b,c}/SHORT[/slug][/][?q][#f]. */
int trello_parse_model_ref(const char *s, trello_model_ref *out, th_error *err)
{
	char shown[64];
	memset(out, 0, sizeof *out);
	if (!s || !*s)
		return th_err(err, TH_EINVAL, "--model: %s", MODEL_EXAMPLE);
	sanitize_line(s, strnlen(s, 4096), shown, sizeof shown);
	if (str_is_trello_id(s)) {
		out->kind = TRELLO_REF_ID;
		str_copy(out->value, sizeof out->value, s);
		return 0;
	}
	const char *p = s;
	if (strncasecmp(p, "https://", 8) == 0)
		p += 8;
	else if (strncasecmp(p, "http://", 7) == 0)
		p += 7;
	if (strncasecmp(p, "www.", 4) == 0)
		p += 4;
	if (strncasecmp(p, "trello.com/", 11) != 0)
		return th_err(err, TH_EINVAL, "--model \"%s\": %s", shown, MODEL_EXAMPLE);
	p += 11;
	enum trello_ref_kind kind;
	if (p[0] == 'b' && p[1] == '/')
		kind = TRELLO_REF_BOARD_SHORT;
	else if (p[0] == 'c' && p[1] == '/')
		kind = TRELLO_REF_CARD_SHORT;
	else
		return th_err(
		    err, TH_EINVAL,
		    "--model \"%s\": only board (/b/) and card (/c/) URLs name a model; %s", shown,
		    MODEL_EXAMPLE);
	p += 2;
	size_t n = 0;
	while (isalnum((unsigned char)p[n]) && n < 32)
		n++;
	/* Short links are 8 characters; a 24-hex id also works in their place. */
	bool ok = (n == 8 || (n == 24 && str_is_hex(p, 24))) &&
	          (p[n] == '\0' || p[n] == '/' || p[n] == '?' || p[n] == '#');
	if (!ok)
		return th_err(err, TH_EINVAL, "--model \"%s\": no short link after /%c/; %s", shown,
		              kind == TRELLO_REF_BOARD_SHORT ? 'b' : 'c', MODEL_EXAMPLE);
	/* Whatever follows (slug, query, fragment) must still be a sane URL. */
	for (const char *q = p + n; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return th_err(err, TH_EINVAL,
			              "--model \"%s\": the URL contains spaces or control "
			              "characters; %s",
			              shown, MODEL_EXAMPLE);
	out->kind = kind;
	memcpy(out->value, p, n);
	out->value[n] = '\0';
	return 0;
}

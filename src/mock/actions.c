/* SPDX-License-Identifier: MIT */
/* actions.c — trello-mock's action log and Trello's actions listings:
 * GET /1/boards/{id}/actions, /1/cards/{id}/actions, /1/lists/{id}/actions.
 *
 * Every action the mock performs is kept (delivered or not, whatever its
 * webhooks answered) as {"models": [ids it touched], "action": {...}} in
 * the "actions" collection of the model, oldest first, so a receiver that
 * was down can list what it missed, as it can from Trello. */
#include <string.h>
#include <time.h>

#include "mock/mock.h"
#include "util/log.h"

/* The most actions kept; the oldest are dropped beyond it. */
#define MOCK_MAX_ACTIONS 100000
/* Trello: limit 0–1000, default 50. */
#define LIST_LIMIT_MAX 1000
#define LIST_LIMIT_DEFAULT 50
#define LIST_PAGE_MAX 1000000

void mock_action_record_locked(struct mock *m, json_t *action, json_t *touched)
{
	json_t *log = json_object_get(m->state, "actions");
	if (!json_is_array(log)) {
		log = json_array();
		if (!log || json_object_set_new(m->state, "actions", log))
			return;
	}
	json_t *e = json_pack("{s:o, s:o}", "models", json_deep_copy(touched), "action",
	                      json_deep_copy(action));
	if (!e || json_array_append_new(log, e)) {
		log_error("mock", "out of memory recording an action");
		return;
	}
	while (json_array_size(log) > MOCK_MAX_ACTIONS)
		json_array_remove(log, 0);
}

/* A bound of the listing: none, a position in the log (an action id we
 * know), or a time in ms (a date, or an unknown id's creation second). */
struct bound {
	bool set;
	bool by_pos;
	size_t pos;
	int64_t ms;
};

/* Parse since/before: a date (YYYY-MM-DDThh:mm:ss[.fff]Z) or an action id
 * (24 hex; its first 8 hex digits are its creation time in seconds). */
static bool parse_bound(json_t *log, const char *v, struct bound *b)
{
	memset(b, 0, sizeof *b);
	if (!v)
		return true;
	b->set = true;
	if (str_is_trello_id(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(log, i, e)
		{
			if (str_eq(mock_str(json_object_get(e, "action"), "id"), v)) {
				b->by_pos = true;
				b->pos = i;
				return true;
			}
		}
		char hex[9];
		memcpy(hex, v, 8);
		hex[8] = '\0';
		b->ms = (int64_t)strtoul(hex, NULL, 16) * 1000;
		return true;
	}
	return time_parse_iso(v, &b->ms) == 0;
}

/* Is the action at @i (dated @ms) newer than @b (since) / older (before)? */
static bool after(const struct bound *b, size_t i, int64_t ms)
{
	return !b->set || (b->by_pos ? i > b->pos : ms > b->ms);
}

static bool before(const struct bound *b, size_t i, int64_t ms)
{
	return !b->set || (b->by_pos ? i < b->pos : ms < b->ms);
}

/* Is @type in the comma-separated @filter ("all" or absent: every type)? */
static bool type_matches(const char *filter, const char *type)
{
	if (!filter || !*filter || str_eq(filter, "all"))
		return true;
	size_t n = strlen(type);
	const char *p = filter;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && memcmp(p, type, n) == 0)
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

static bool touches(json_t *entry, const char *id)
{
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(entry, "models"), i, t)
	{
		if (str_eq(json_string_value(t), id))
			return true;
	}
	return false;
}

/* The model's id (a board or card may be named by its short link), or NULL. */
static const char *model_id_locked(struct mock *m, const char *kind, const char *ref)
{
	json_t *o = NULL;
	if (str_eq(kind, "boards"))
		o = mock_board_get_locked(m, ref);
	else if (str_eq(kind, "cards"))
		o = mock_card_get_locked(m, ref);
	else if (str_eq(kind, "lists"))
		o = mock_list_get_locked(m, ref);
	return o ? mock_str(o, "id") : NULL;
}

void mock_actions_fault_set(struct mock *m, json_t *params, http_response *res)
{
	const char *mode = mock_str(params, "mode");
	json_t *st = json_object_get(params, "status");
	json_t *delay = json_object_get(params, "delay_ms");
	json_t *times = json_object_get(params, "times");
	static const char *const modes[] = {"none", "truncated", "wrong-types", "huge", "status"};
	bool known = false;
	for (size_t i = 0; mode && i < TH_ARRAY_LEN(modes); i++)
		known = known || str_eq(mode, modes[i]);
	if (!known ||
	    (st && (!json_is_integer(st) || json_integer_value(st) < 100 ||
	            json_integer_value(st) > 599)) ||
	    (delay && (!json_is_integer(delay) || json_integer_value(delay) < 0 ||
	               json_integer_value(delay) > 60000)) ||
	    (times && (!json_is_integer(times) || json_integer_value(times) < -1))) {
		mock_ctl_err(
		    res, 400,
		    "expected {\"mode\": none|truncated|wrong-types|huge|status, "
		    "\"status\": 100..599, \"delay_ms\": 0..60000, \"times\": -1 or more}");
		return;
	}
	pthread_mutex_lock(&m->lock);
	struct mock_fault *f = &m->actions_fault;
	str_copy(f->mode, sizeof f->mode, str_eq(mode, "none") ? "" : mode);
	f->status = st ? (int)json_integer_value(st) : 429;
	f->delay_ms = delay ? json_integer_value(delay) : 0;
	f->times = times ? json_integer_value(times) : -1;
	pthread_mutex_unlock(&m->lock);
	log_info("mock", "actions listings: fault %s, delay %lld ms", mode, (long long)f->delay_ms);
	mock_send_json(res, 200, json_pack("{s:s}", "mode", mode));
}

/* Answer with the listings' fault, if one is set: true when answered. */
static bool fault_answer(struct mock *m, http_response *res, int64_t limit)
{
	pthread_mutex_lock(&m->lock);
	struct mock_fault f = m->actions_fault;
	if (m->actions_fault.times > 0 && --m->actions_fault.times == 0)
		memset(&m->actions_fault, 0, sizeof m->actions_fault);
	pthread_mutex_unlock(&m->lock);
	if (!f.times)
		return false;
	if (f.delay_ms > 0) {
		struct timespec ts = {f.delay_ms / 1000, (long)(f.delay_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	if (str_eq(f.mode, "truncated")) {
		static const char cut[] = "[{\"id\":\"5f00000000000000000000aa\",\"type\":\"comm";
		http_response_body(res, 200, "application/json", cut, sizeof cut - 1);
	} else if (str_eq(f.mode, "wrong-types")) {
		static const char bad[] = "[{\"id\":12,\"type\":true,\"date\":null,\"data\":[]}]";
		http_response_body(res, 200, "application/json", bad, sizeof bad - 1);
	} else if (str_eq(f.mode, "huge")) {
		/* more actions than the limit asked for, each well-formed */
		json_t *arr = json_array();
		for (int64_t i = 0; arr && i < limit + 10; i++) {
			char id[32];
			str_printf(id, sizeof id, "5f000000%016llx", (unsigned long long)i);
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:{}}", "id", id,
			                                     "type", "commentCard", "date",
			                                     "2020-01-01T00:00:00.000Z", "data"));
		}
		mock_send_json(res, 200, arr);
	} else if (str_eq(f.mode, "status")) {
		mock_trello_err(m, res, f.status,
		                f.status == 429 ? "API_TOKEN_LIMIT_EXCEEDED" : "SERVER_ERROR",
		                f.status == 429 ? "Rate limit exceeded" : "Internal server error");
	} else {
		return false; /* only slow */
	}
	return true;
}

/* One page of the model's actions, newest first. Params are checked before
 * the model is looked up, as Trello answers 400 for them first. */
void mock_actions_list(struct mock *m, http_response *res, json_t *params, const char *kind,
                       const char *ref)
{
	int64_t limit = LIST_LIMIT_DEFAULT, page = 0;
	const char *lim = mock_param(params, "limit");
	const char *pg = mock_param(params, "page");
	const char *filter = mock_param(params, "filter");
	if (lim && num_parse_i64(lim, 0, LIST_LIMIT_MAX, &limit)) {
		mock_trello_err(m, res, 400, "INVALID_VALUE", "invalid value for limit");
		return;
	}
	if (pg && num_parse_i64(pg, 0, LIST_PAGE_MAX, &page)) {
		mock_trello_err(m, res, 400, "INVALID_VALUE", "invalid value for page");
		return;
	}
	if (filter && (strlen(filter) > 4096 || !str_utf8_valid(filter, strlen(filter)))) {
		mock_trello_err(m, res, 400, "INVALID_VALUE", "invalid value for filter");
		return;
	}
	if (fault_answer(m, res, limit))
		return;
	pthread_mutex_lock(&m->lock);
	json_t *log = json_object_get(m->state, "actions");
	struct bound since, bef;
	bool ok_since = parse_bound(log, mock_param(params, "since"), &since);
	bool ok_before = parse_bound(log, mock_param(params, "before"), &bef);
	const char *id = model_id_locked(m, kind, ref);
	json_t *out = NULL;
	if (ok_since && ok_before && id) {
		out = json_array();
		int64_t skip = page * limit, taken = 0;
		for (size_t i = json_array_size(log); out && i-- > 0 && taken < limit;) {
			json_t *e = json_array_get(log, i);
			json_t *a = json_object_get(e, "action");
			int64_t ms = 0;
			if (time_parse_iso(mock_str(a, "date"), &ms) || !touches(e, id) ||
			    !type_matches(filter, mock_str(a, "type")) || !after(&since, i, ms) ||
			    !before(&bef, i, ms))
				continue;
			if (skip > 0) {
				skip--;
				continue;
			}
			if (json_array_append_new(out, json_deep_copy(a))) {
				json_decref(out);
				out = NULL;
			}
			taken++;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (!ok_since)
		mock_trello_err(m, res, 400, "INVALID_VALUE", "invalid value for since");
	else if (!ok_before)
		mock_trello_err(m, res, 400, "INVALID_VALUE", "invalid value for before");
	else if (!id)
		mock_trello_err(m, res, 404, "NOT_FOUND", "The requested resource was not found.");
	else
		mock_send_json(res, 200, out);
}

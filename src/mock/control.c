/* SPDX-License-Identifier: MIT */
/* control.c — trello-mock's /_mock/ control API (not Trello's): create
 * boards, lists and cards, perform actions, read delivery attempts and
 * webhooks, mint and expire tokens, reset, sign. JSON in, JSON out
 * (docs/trello-mock.md). */
#include <string.h>

#include "mock/mock.h"
#include "util/log.h"
#include "util/sign.h"

static json_t *board_summary_locked(struct mock *m, json_t *b)
{
	char url[256];
	str_printf(url, sizeof url, "https://trello.com/b/%s/%s", mock_str(b, "shortLink"),
	           mock_str(b, "slug"));
	json_t *lists = json_array(), *cards = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(m->state, "lists"), i,
	                   e) if (str_eq(mock_str(e, "idBoard"), mock_str(b, "id")))
	    json_array_append_new(lists, json_pack("{s:s, s:s}", "id", mock_str(e, "id"), "name",
	                                           mock_str(e, "name")));
	json_array_foreach(json_object_get(m->state, "cards"), i,
	                   e) if (str_eq(mock_str(e, "idBoard"), mock_str(b, "id")))
	    json_array_append_new(cards,
	                          json_pack("{s:s, s:s, s:s, s:s}", "id", mock_str(e, "id"), "name",
	                                    mock_str(e, "name"), "idList", mock_str(e, "idList"),
	                                    "shortLink", mock_str(e, "shortLink")));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", mock_str(b, "id"), "name",
	                 mock_str(b, "name"), "shortLink", mock_str(b, "shortLink"), "url", url,
	                 "lists", lists, "cards", cards);
}

static const char *name_param(json_t *params)
{
	const char *n = mock_param(params, "name");
	return n && *n && strlen(n) <= 16384 ? n : NULL;
}

/* POST /_mock/tokens {"expires_in", "format", "scope", "name"}: a new token. */
/* The answer to creating a list or card under @parent (found by the id
 * parameter @bad_parent names): 400 when the parent or the name is missing,
 * else the view @v of what was made. */
static void send_created(http_response *res, const json_t *parent, const char *bad_parent,
                         const char *name, json_t *v)
{
	if (!parent)
		mock_ctl_err(res, 400, bad_parent);
	else if (!name)
		mock_ctl_err(res, 400, "invalid value for name");
	else
		mock_send_json(res, 200, v);
}

/* A board by its id alone (not its short link, unlike mock_board_get_locked). */
static json_t *board_by_id(struct mock *m, const char *id)
{
	return mock_find_locked(m, "boards", "id", id);
}

/* POST /_mock/lists and /_mock/cards: a new list or card named ?name in the
 * board or list that @find gives for ?<parent_param>, answered with its view
 * (400 naming the parameter that was not valid). */
static void create_child(struct mock *m, json_t *params, http_response *res,
                         const char *parent_param, json_t *(*find)(struct mock *, const char *),
                         json_t *(*create)(struct mock *, json_t *, const char *),
                         json_t *(*view)(struct mock *, json_t *))
{
	const char *name = name_param(params);
	char bad_parent[64];
	str_printf(bad_parent, sizeof bad_parent, "invalid value for %s", parent_param);
	pthread_mutex_lock(&m->lock);
	json_t *parent = find(m, mock_param(params, parent_param));
	json_t *child = parent && name ? create(m, parent, name) : NULL;
	json_t *v = child ? view(m, child) : NULL;
	mock_save_locked(m);
	pthread_mutex_unlock(&m->lock);
	send_created(res, parent, bad_parent, name, v);
}

static void ctl_new_token(struct mock *m, json_t *params, http_response *res)
{
	json_t *ei = json_object_get(params, "expires_in");
	int64_t secs = 0;
	if (json_is_integer(ei) && json_integer_value(ei) > 0 &&
	    json_integer_value(ei) < 100LL * 365 * 86400) {
		secs = json_integer_value(ei);
	} else if (json_is_real(ei) && json_real_value(ei) > 0 && json_real_value(ei) < 3.2e9) {
		secs = -1;
	} else if (ei && !json_is_null(ei)) {
		mock_ctl_err(res, 400, "invalid value for expires_in");
		return;
	}
	int64_t exp = secs > 0   ? time_now_ms() + secs * 1000
	              : secs < 0 ? time_now_ms() + (int64_t)(json_real_value(ei) * 1000.0)
	                         : 0;
	const char *fmt = mock_param(params, "format");
	if (fmt && !str_eq(fmt, "atta") && !str_eq(fmt, "hex64")) {
		mock_ctl_err(res, 400, "invalid value for format");
		return;
	}
	pthread_mutex_lock(&m->lock);
	json_t *t = mock_token_create_locked(m, NULL, exp, mock_param(params, "scope"),
	                                     mock_param(params, "name"), str_eq(fmt, "hex64"));
	json_t *v = t ? json_pack("{s:s}", "token", mock_str(t, "token")) : NULL;
	mock_save_locked(m);
	pthread_mutex_unlock(&m->lock);
	mock_send_json(res, 200, v);
}

/* POST /_mock/sign {"body", "callbackURL", "secret"}: the mock's signer. */
static void ctl_sign(struct mock *m, json_t *params, http_response *res)
{
	/* Not Trello's: exposes the mock's signer for test vectors. */
	const char *body = mock_param(params, "body");
	const char *url = mock_param(params, "callbackURL");
	const char *secret =
	    mock_param(params, "secret") ? mock_param(params, "secret") : m->cfg.secret;
	char sig[TRELLO_SIG_LEN + 1];
	if (!body || !url) {
		mock_ctl_err(res, 400, "invalid value for body or callbackURL");
		return;
	}
	if (sign_trello(secret, body, strlen(body), url, sig)) {
		mock_ctl_err(res, 500, "signing failed");
		return;
	}
	mock_send_json(res, 200, json_pack("{s:s}", "signature", sig));
}

/* The control API; see mock.h. */
void mock_control_route(struct mock *m, http_request *req, http_response *res)
{
	char store[1024];
	char *seg[MOCK_MAX_SEGMENTS] = {0};
	size_t n = mock_split_path(req->path + 7, store, sizeof store, seg);
	const char *meth = req->method;
	json_t *params = mock_params(m, req, res, true);
	if (!params)
		return;
	bool post = str_eq(meth, "POST");
	if (n == 1 && post && str_eq(seg[0], "boards")) {
		const char *name = name_param(params);
		if (!name) {
			mock_ctl_err(res, 400, "invalid value for name");
			goto out;
		}
		pthread_mutex_lock(&m->lock);
		json_t *b = mock_board_create_locked(m, name);
		json_t *v = b ? board_summary_locked(m, b) : NULL;
		mock_save_locked(m);
		pthread_mutex_unlock(&m->lock);
		mock_send_json(res, 200, v);
	} else if (n == 1 && post && str_eq(seg[0], "lists")) {
		create_child(m, params, res, "idBoard", board_by_id, mock_list_create_locked,
		             mock_list_view_locked);
	} else if (n == 1 && post && str_eq(seg[0], "cards")) {
		create_child(m, params, res, "idList", mock_list_get_locked,
		             mock_card_create_locked, mock_card_view_locked);
	} else if (n == 1 && post && str_eq(seg[0], "actions")) {
		json_t *action = NULL;
		int nd = 0;
		char msg[256];
		if (mock_action_perform(m, params, &action, &nd, msg, sizeof msg)) {
			mock_ctl_err(res, 400, msg);
			goto out;
		}
		mock_send_json(res, 200,
		               json_pack("{s:o, s:i}", "action", action, "deliveries", nd));
	} else if (n == 1 && str_eq(meth, "GET") && str_eq(seg[0], "deliveries")) {
		pthread_mutex_lock(&m->lock);
		json_t *v = json_deep_copy(m->deliveries);
		pthread_mutex_unlock(&m->lock);
		mock_send_json(res, 200, v);
	} else if (n == 1 && str_eq(meth, "GET") && str_eq(seg[0], "webhooks")) {
		pthread_mutex_lock(&m->lock);
		mock_tokens_sweep_locked(m);
		json_t *arr = json_array();
		size_t i;
		json_t *w;
		json_array_foreach(json_object_get(m->state, "webhooks"), i, w)
		{
			json_t *v = mock_webhook_view(w);
			json_object_set_new(v, "token", json_string(mock_str(w, "token")));
			json_array_append_new(arr, v);
		}
		pthread_mutex_unlock(&m->lock);
		mock_send_json(res, 200, arr);
	} else if (n == 1 && post && str_eq(seg[0], "tokens")) {
		ctl_new_token(m, params, res);
	} else if (n == 3 && post && str_eq(seg[0], "tokens") && str_eq(seg[2], "expire")) {
		pthread_mutex_lock(&m->lock);
		bool ok = mock_token_expire_locked(m, seg[1]);
		pthread_mutex_unlock(&m->lock);
		if (ok)
			mock_send_json(res, 200, json_pack("{s:b}", "expired", 1));
		else
			mock_send_json(res, 404,
			               json_pack("{s:s, s:s}", "message", "unknown token", "error",
			                         "NOT_FOUND"));
	} else if (n == 1 && post && str_eq(seg[0], "reset")) {
		pthread_mutex_lock(&m->lock);
		mock_reset_locked(m);
		pthread_mutex_unlock(&m->lock);
		log_info("mock", "state reset");
		mock_send_json(res, 200, json_pack("{s:b}", "reset", 1));
	} else if (n == 2 && post && str_eq(seg[0], "faults") && str_eq(seg[1], "actions")) {
		mock_actions_fault_set(m, params, res);
	} else if (n == 1 && post && str_eq(seg[0], "sign")) {
		ctl_sign(m, params, res);
	} else {
		mock_send_json(res, 404,
		               json_pack("{s:s, s:s}", "message", "no such control route", "error",
		                         "NOT_FOUND"));
	}
out:
	json_decref(params);
}

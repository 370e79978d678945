/* SPDX-License-Identifier: MIT */
/* state.c — trello-mock's model: boards, lists, cards, tokens and webhooks
 * kept as jansson objects (with internal fields), their public views, and
 * persistence to --state. See mock.h for the locking rules. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mock/mock.h"
#include "util/log.h"

static const char *const collections[] = {"boards", "lists", "cards", "tokens", "webhooks"};

int mock_init(struct mock *m, const struct mock_config *cfg)
{
	memset(m, 0, sizeof *m);
	m->cfg = *cfg;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->state = json_object();
	m->deliveries = json_array();
	m->pending_auth = json_array();
	if (!m->state || !m->deliveries || !m->pending_auth)
		return TH_ENOMEM;
	for (size_t i = 0; i < TH_ARRAY_LEN(collections); i++)
		if (json_object_set_new(m->state, collections[i], json_array()))
			return TH_ENOMEM;
	if (json_object_set_new(m->state, "actions", json_array()))
		return TH_ENOMEM;
	return 0;
}

void mock_fini(struct mock *m)
{
	json_decref(m->state);
	json_decref(m->deliveries);
	json_decref(m->pending_auth);
	free(m->rates);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	m->state = m->deliveries = m->pending_auth = NULL;
	m->rates = NULL;
}

static json_t *coll(struct mock *m, const char *name)
{
	return json_object_get(m->state, name);
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int mock_new_id(char out[MOCK_ID_LEN + 1])
{
	unsigned char r[8];
	if (rand_fill(r, sizeof r))
		return TH_EIO;
	uint32_t secs = (uint32_t)(time_now_ms() / 1000);
	str_printf(out, MOCK_ID_LEN + 1, "%08x", (unsigned)secs);
	hex_encode(r, sizeof r, out + 8);
	return 0;
}

/* 8 characters of [A-Za-z0-9], like Trello short links. */
static int new_short_link(char out[9])
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[8];
	if (rand_fill(r, sizeof r))
		return TH_EIO;
	for (size_t i = 0; i < 8; i++)
		out[i] = al[r[i] % (sizeof al - 1)];
	out[8] = '\0';
	return 0;
}

/* Trello's URL slug: lowercase ASCII letters and digits, runs of anything
 * else become one '-'. */
static void slugify(const char *name, char *out, size_t size)
{
	size_t n = 0;
	bool dash = false;
	for (const unsigned char *p = (const unsigned char *)name; *p && n + 2 < size; p++) {
		unsigned char c = *p;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (dash && n)
				out[n++] = '-';
			out[n++] = (char)c;
			dash = false;
		} else if (c >= 'A' && c <= 'Z') {
			if (dash && n)
				out[n++] = '-';
			out[n++] = (char)(c - 'A' + 'a');
			dash = false;
		} else {
			dash = true;
		}
	}
	out[n] = '\0';
	if (!n)
		str_copy(out, size, "untitled");
}

static const char *sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

json_t *mock_find_locked(struct mock *m, const char *cname, const char *field, const char *val)
{
	size_t i;
	json_t *e;
	if (!val)
		return NULL;
	json_array_foreach(coll(m, cname), i, e)
	{
		if (str_eq(json_string_value(json_object_get(e, field)), val))
			return e;
	}
	return NULL;
}

json_t *mock_board_get_locked(struct mock *m, const char *id)
{
	json_t *b = mock_find_locked(m, "boards", "id", id);
	return b ? b : mock_find_locked(m, "boards", "shortLink", id);
}

json_t *mock_card_get_locked(struct mock *m, const char *id)
{
	json_t *c = mock_find_locked(m, "cards", "id", id);
	return c ? c : mock_find_locked(m, "cards", "shortLink", id);
}

json_t *mock_list_get_locked(struct mock *m, const char *id)
{
	return mock_find_locked(m, "lists", "id", id);
}

const char *mock_model_kind_locked(struct mock *m, const char *id)
{
	if (!id || !str_is_trello_id(id))
		return NULL;
	if (mock_find_locked(m, "boards", "id", id))
		return "board";
	if (mock_find_locked(m, "lists", "id", id))
		return "list";
	if (mock_find_locked(m, "cards", "id", id))
		return "card";
	if (str_eq(id, MOCK_MEMBER_ID))
		return "member";
	return NULL;
}

static json_t *label_new(const char *name, const char *color)
{
	char id[MOCK_ID_LEN + 1];
	if (mock_new_id(id))
		return NULL;
	return json_pack("{s:s, s:s, s:s}", "id", id, "name", name, "color", color);
}

json_t *mock_board_create_locked(struct mock *m, const char *name)
{
	char id[MOCK_ID_LEN + 1], sl[9], slug[64];
	if (mock_new_id(id) || new_short_link(sl))
		return NULL;
	slugify(name, slug, sizeof slug);
	json_t *labels = json_array();
	json_array_append_new(labels, label_new("ready", "green"));
	json_array_append_new(labels, label_new("blocked", "red"));
	json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "id", id, "name", name,
	                      "shortLink", sl, "slug", slug, "nextIdShort", (json_int_t)1,
	                      "created", (json_int_t)time_now_ms(), "labels", labels);
	if (!b || json_array_append_new(coll(m, "boards"), b))
		return NULL;
	json_t *todo = mock_list_create_locked(m, b, "To do");
	if (!todo || !mock_list_create_locked(m, b, "Doing") ||
	    !mock_card_create_locked(m, todo, "Ship the <b>webhook</b> admin"))
		return NULL;
	return b;
}

json_t *mock_list_create_locked(struct mock *m, json_t *board, const char *name)
{
	char id[MOCK_ID_LEN + 1];
	if (mock_new_id(id))
		return NULL;
	json_int_t pos = (json_int_t)(json_array_size(coll(m, "lists")) + 1) * 16384;
	json_t *l = json_pack("{s:s, s:s, s:s, s:b, s:I}", "id", id, "name", name, "idBoard",
	                      sget(board, "id"), "closed", 0, "pos", pos);
	if (!l || json_array_append_new(coll(m, "lists"), l))
		return NULL;
	return l;
}

json_t *mock_card_create_locked(struct mock *m, json_t *list, const char *name)
{
	char id[MOCK_ID_LEN + 1], sl[9];
	if (mock_new_id(id) || new_short_link(sl))
		return NULL;
	json_t *board = mock_board_get_locked(m, sget(list, "idBoard"));
	if (!board)
		return NULL;
	json_int_t n = json_integer_value(json_object_get(board, "nextIdShort"));
	json_object_set_new(board, "nextIdShort", json_integer(n + 1));
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:[], s:[], s:s}", "id", id,
	                      "name", name, "shortLink", sl, "idList", sget(list, "id"), "idBoard",
	                      sget(board, "id"), "idShort", n, "closed", 0, "pos",
	                      (json_int_t)(json_array_size(coll(m, "cards")) + 1) * 16384,
	                      "idLabels", "checklists", "dateLastActivity", "");
	if (!c)
		return NULL;
	char now[32];
	time_format_iso(time_now_ms(), now);
	json_object_set_new(c, "dateLastActivity", json_string(now));
	if (json_array_append_new(coll(m, "cards"), c))
		return NULL;
	return c;
}

json_t *mock_label_get_or_add_locked(json_t *board, const char *name, const char *color)
{
	json_t *labels = json_object_get(board, "labels"), *l;
	size_t i;
	json_array_foreach(labels, i, l)
	{
		if (str_eq(sget(l, "name"), name) && (!color || str_eq(sget(l, "color"), color)))
			return l;
	}
	l = label_new(name, color ? color : "green");
	return l && json_array_append_new(labels, l) == 0 ? l : NULL;
}

json_t *mock_check_item_get_or_add_locked(json_t *card, const char *name, json_t **cl)
{
	json_t *lists = json_object_get(card, "checklists"), *e, *it;
	size_t i, j;
	json_array_foreach(lists, i, e)
	{
		json_array_foreach(json_object_get(e, "checkItems"), j, it)
		{
			if (str_eq(sget(it, "name"), name)) {
				*cl = e;
				return it;
			}
		}
	}
	char id[MOCK_ID_LEN + 1];
	*cl = json_array_get(lists, 0);
	if (!*cl) {
		*cl = mock_new_id(id) ? NULL
		                      : json_pack("{s:s, s:s, s:[]}", "id", id, "name", "Checklist",
		                                  "checkItems");
		if (!*cl || json_array_append_new(lists, *cl))
			goto fail;
	}
	if (mock_new_id(id))
		goto fail;
	it = json_pack("{s:s, s:s, s:s}", "id", id, "name", name, "state", "incomplete");
	if (!it || json_array_append_new(json_object_get(*cl, "checkItems"), it))
		goto fail;
	return it;
fail:
	*cl = NULL;
	return NULL;
}

/* ---- views ---------------------------------------------------------------------- */

json_t *mock_board_view_locked(struct mock *m, json_t *b, bool for_payload)
{
	char url[256], surl[64];
	str_printf(url, sizeof url, "https://trello.com/b/%s/%s", sget(b, "shortLink"),
	           sget(b, "slug"));
	str_printf(surl, sizeof surl, "https://trello.com/b/%s", sget(b, "shortLink"));
	json_t *names = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "green", "", "yellow", "",
	                          "orange", "", "red", "", "purple", "", "blue", "");
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(b, "labels"), i, l)
	{
		const char *color = sget(l, "color");
		if (json_object_get(names, color) &&
		    !*json_string_value(json_object_get(names, color)))
			json_object_set_new(names, color, json_string(sget(l, "name")));
	}
	json_t *v = json_pack(
	    "{s:s, s:s, s:s, s:n, s:b, s:s, s:n, s:b, s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:o}", "id",
	    sget(b, "id"), "name", sget(b, "name"), "desc", "", "descData", "closed", 0,
	    "idOrganization", MOCK_ORG_ID, "idEnterprise", "pinned", 0, "url", url, "shortUrl",
	    surl, "prefs", "permissionLevel", "org", "voting", "disabled", "comments", "members",
	    "background", "blue", "labelNames", names);
	if (v && !for_payload) {
		json_object_set_new(v, "shortLink", json_string(sget(b, "shortLink")));
		json_object_set_new(v, "idMemberCreator", json_string(MOCK_MEMBER_ID));
		json_t *labels = json_array();
		json_array_foreach(json_object_get(b, "labels"), i, l)
		{
			json_t *c = json_deep_copy(l);
			json_object_set_new(c, "idBoard", json_string(sget(b, "id")));
			json_array_append_new(labels, c);
		}
		json_object_set_new(v, "labels", labels);
	}
	(void)m;
	return v;
}

json_t *mock_list_view_locked(struct mock *m, json_t *l)
{
	(void)m;
	return json_pack("{s:s, s:s, s:b, s:s, s:O, s:b}", "id", sget(l, "id"), "name",
	                 sget(l, "name"), "closed", json_is_true(json_object_get(l, "closed")),
	                 "idBoard", sget(l, "idBoard"), "pos", json_object_get(l, "pos"),
	                 "subscribed", 0);
}

json_t *mock_card_view_locked(struct mock *m, json_t *c)
{
	json_t *board = mock_board_get_locked(m, sget(c, "idBoard"));
	char slug[64], url[256], surl[64];
	slugify(sget(c, "name"), slug, sizeof slug);
	str_printf(url, sizeof url, "https://trello.com/c/%s/%lld-%s", sget(c, "shortLink"),
	           (long long)json_integer_value(json_object_get(c, "idShort")), slug);
	str_printf(surl, sizeof surl, "https://trello.com/c/%s", sget(c, "shortLink"));
	json_t *labels = json_array();
	size_t i;
	json_t *idl;
	json_array_foreach(json_object_get(c, "idLabels"), i, idl)
	{
		size_t j;
		json_t *l;
		json_array_foreach(json_object_get(board, "labels"), j, l)
		{
			if (str_eq(sget(l, "id"), json_string_value(idl))) {
				json_t *copy = json_deep_copy(l);
				json_object_set_new(copy, "idBoard",
				                    json_string(sget(board, "id")));
				json_array_append_new(labels, copy);
			}
		}
	}
	json_int_t nitems = 0, ndone = 0;
	json_t *cl;
	json_array_foreach(json_object_get(c, "checklists"), i, cl)
	{
		size_t j;
		json_t *it;
		json_array_foreach(json_object_get(cl, "checkItems"), j, it)
		{
			nitems++;
			if (str_eq(sget(it, "state"), "complete"))
				ndone++;
		}
	}
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:O, s:O, s:o, s:[], s:O, s:s, s:s,"
	                 " s:s, s:[], s:{s:I, s:I}}",
	                 "id", sget(c, "id"), "name", sget(c, "name"), "desc", "", "closed",
	                 json_is_true(json_object_get(c, "closed")), "idBoard", sget(c, "idBoard"),
	                 "idList", sget(c, "idList"), "shortLink", sget(c, "shortLink"), "idShort",
	                 json_object_get(c, "idShort"), "idLabels", json_object_get(c, "idLabels"),
	                 "labels", labels, "idMembers", "pos", json_object_get(c, "pos"), "url",
	                 url, "shortUrl", surl, "dateLastActivity", sget(c, "dateLastActivity"),
	                 "idChecklists", "badges", "checkItems", nitems, "checkItemsChecked",
	                 ndone);
}

json_t *mock_member_view_locked(struct mock *m)
{
	json_t *ids = json_array();
	size_t i;
	json_t *b;
	json_array_foreach(coll(m, "boards"), i, b)
	    json_array_append_new(ids, json_string(sget(b, "id")));
	return json_pack("{s:s, s:s, s:s, s:s, s:n, s:n, s:s, s:o, s:b}", "id", MOCK_MEMBER_ID,
	                 "username", MOCK_MEMBER_USERNAME, "fullName", MOCK_MEMBER_FULLNAME,
	                 "initials", MOCK_MEMBER_INITIALS, "avatarHash", "avatarUrl", "url",
	                 "https://trello.com/" MOCK_MEMBER_USERNAME, "idBoards", ids, "confirmed",
	                 1);
}

json_t *mock_model_view_locked(struct mock *m, const char *id)
{
	const char *kind = mock_model_kind_locked(m, id);
	if (str_eq(kind, "board"))
		return mock_board_view_locked(m, mock_board_get_locked(m, id), true);
	if (str_eq(kind, "list"))
		return mock_list_view_locked(m, mock_list_get_locked(m, id));
	if (str_eq(kind, "card"))
		return mock_card_view_locked(m, mock_card_get_locked(m, id));
	if (str_eq(kind, "member"))
		return mock_member_view_locked(m);
	return NULL;
}

json_t *mock_webhook_view(json_t *wh)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O}", "id", sget(wh, "id"), "description",
	                 sget(wh, "description"), "idModel", sget(wh, "idModel"), "callbackURL",
	                 sget(wh, "callbackURL"), "active",
	                 json_is_true(json_object_get(wh, "active")), "consecutiveFailures",
	                 json_object_get(wh, "consecutiveFailures"), "firstConsecutiveFailDate",
	                 json_object_get(wh, "firstConsecutiveFailDate"));
}

/* ---- tokens and webhooks ------------------------------------------------------------- */

json_t *mock_token_create_locked(struct mock *m, const char *value, int64_t expires_ms,
                                 const char *scope, const char *app_name, bool hex64)
{
	char tok[80], id[MOCK_ID_LEN + 1], now[32];
	if (value) {
		if (!str_copy(tok, sizeof tok, value))
			return NULL;
	} else {
		unsigned char r[36];
		if (rand_fill(r, sizeof r))
			return NULL;
		if (hex64) {
			hex_encode(r, 32, tok);
		} else {
			/* "ATTA" + 64 lowercase hex + 8 uppercase hex */
			memcpy(tok, "ATTA", 4);
			hex_encode(r, 32, tok + 4);
			hex_encode(r + 32, 4, tok + 68);
			for (char *p = tok + 68; *p; p++)
				if (*p >= 'a' && *p <= 'f')
					*p = (char)(*p - 'a' + 'A');
		}
	}
	if (mock_new_id(id))
		return NULL;
	time_format_iso(time_now_ms(), now);
	json_t *t = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:b}", "token", tok, "id", id,
	                      "dateCreated", now, "expiresMs", (json_int_t)expires_ms, "scope",
	                      scope ? scope : "read,write,account", "identifier",
	                      app_name ? app_name : "trello-mock", "expired", 0);
	if (!t || json_array_append_new(coll(m, "tokens"), t))
		return NULL;
	return t;
}

/* Delete every webhook bound to @token. */
static void delete_token_webhooks(struct mock *m, const char *token)
{
	json_t *arr = coll(m, "webhooks");
	for (size_t i = json_array_size(arr); i-- > 0;)
		if (str_eq(sget(json_array_get(arr, i), "token"), token))
			json_array_remove(arr, i);
}

static void expire_token(struct mock *m, json_t *t)
{
	char masked[32];
	mask_secret(sget(t, "token"), masked, sizeof masked);
	log_info("mock", "token %s expired: its webhooks are deleted", masked);
	json_object_set_new(t, "expired", json_true());
	if (!json_integer_value(json_object_get(t, "expiresMs")) ||
	    json_integer_value(json_object_get(t, "expiresMs")) > time_now_ms())
		json_object_set_new(t, "expiresMs", json_integer(time_now_ms()));
	delete_token_webhooks(m, sget(t, "token"));
}

void mock_tokens_sweep_locked(struct mock *m)
{
	size_t i;
	json_t *t;
	int64_t now = time_now_ms();
	bool changed = false;
	json_array_foreach(coll(m, "tokens"), i, t)
	{
		json_int_t exp = json_integer_value(json_object_get(t, "expiresMs"));
		if (!json_is_true(json_object_get(t, "expired")) && exp && exp <= now) {
			expire_token(m, t);
			changed = true;
		}
	}
	if (changed)
		mock_save_locked(m);
}

enum mock_token_state mock_token_check_locked(struct mock *m, const char *token)
{
	json_t *t = mock_find_locked(m, "tokens", "token", token);
	if (!t)
		return MOCK_TOKEN_INVALID;
	mock_tokens_sweep_locked(m);
	return json_is_true(json_object_get(t, "expired")) ? MOCK_TOKEN_EXPIRED : MOCK_TOKEN_OK;
}

bool mock_token_expire_locked(struct mock *m, const char *token)
{
	json_t *t = mock_find_locked(m, "tokens", "token", token);
	if (!t)
		return false;
	expire_token(m, t);
	mock_save_locked(m);
	return true;
}

/* Remove the first element of collection @cname whose @field is @val, and
 * save. Returns whether there was one. */
static bool remove_first(struct mock *m, const char *cname, const char *field, const char *val)
{
	json_t *arr = coll(m, cname);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		if (str_eq(sget(json_array_get(arr, i), field), val)) {
			json_array_remove(arr, i);
			mock_save_locked(m);
			return true;
		}
	}
	return false;
}

/* A revoked token takes its webhooks with it, as on Trello. */
bool mock_token_revoke_locked(struct mock *m, const char *token)
{
	if (!mock_find_locked(m, "tokens", "token", token))
		return false;
	delete_token_webhooks(m, token);
	return remove_first(m, "tokens", "token", token);
}

bool mock_webhook_delete_locked(struct mock *m, const char *id)
{
	return remove_first(m, "webhooks", "id", id);
}

/* ---- persistence and reset ------------------------------------------------------------ */

void mock_save_locked(struct mock *m)
{
	if (!m->cfg.state_path)
		return;
	char tmp[4096];
	if (!str_printf(tmp, sizeof tmp, "%s.tmp", m->cfg.state_path)) {
		log_error("mock", "state path too long");
		return;
	}
	if (json_dump_file(m->state, tmp, JSON_INDENT(1)) || rename(tmp, m->cfg.state_path)) {
		log_error("mock", "cannot write state file %s: %s", m->cfg.state_path,
		          strerror(errno));
		unlink(tmp);
	}
}

static int add_seed_tokens(struct mock *m)
{
	for (size_t i = 0; i < m->cfg.nseed; i++) {
		if (mock_find_locked(m, "tokens", "token", m->cfg.seed_tokens[i]))
			continue;
		if (!mock_token_create_locked(m, m->cfg.seed_tokens[i], 0, NULL, "seed", false))
			return TH_ENOMEM;
	}
	return 0;
}

void mock_reset_locked(struct mock *m)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(collections); i++)
		json_array_clear(coll(m, collections[i]));
	json_array_clear(coll(m, "actions"));
	json_array_clear(m->deliveries);
	json_array_clear(m->pending_auth);
	m->nrates = 0;
	memset(&m->actions_fault, 0, sizeof m->actions_fault);
	m->generation++;
	if (add_seed_tokens(m))
		log_error("mock", "out of memory re-seeding tokens");
	pthread_cond_broadcast(&m->cond);
	mock_save_locked(m);
}

int mock_load(struct mock *m, th_error *err)
{
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	if (m->cfg.state_path && access(m->cfg.state_path, F_OK) == 0) {
		json_error_t je;
		json_t *root = json_load_file(m->cfg.state_path, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(root)) {
			json_decref(root);
			rc = th_err(err, TH_EINVAL, "cannot read state file %s: %s (line %d)",
			            m->cfg.state_path, root ? "not an object" : je.text, je.line);
			goto out;
		}
		for (size_t i = 0; i < TH_ARRAY_LEN(collections); i++) {
			json_t *a = json_object_get(root, collections[i]);
			if (!json_is_array(a)) {
				json_decref(root);
				rc = th_err(err, TH_EINVAL,
				            "state file %s: \"%s\" is missing or not an array",
				            m->cfg.state_path, collections[i]);
				goto out;
			}
		}
		/* The action log came later: older files have none. */
		json_t *acts = json_object_get(root, "actions");
		if (acts && !json_is_array(acts)) {
			json_decref(root);
			rc = th_err(err, TH_EINVAL, "state file %s: \"actions\" is not an array",
			            m->cfg.state_path);
			goto out;
		}
		if (!acts && json_object_set_new(root, "actions", json_array())) {
			json_decref(root);
			rc = th_err(err, TH_ENOMEM, "out of memory");
			goto out;
		}
		json_decref(m->state);
		m->state = root;
		log_info("mock", "state loaded from %s", m->cfg.state_path);
	}
	if (add_seed_tokens(m)) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	mock_save_locked(m);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/* deliver.c — what trello-mock sends out: the HEAD check before a webhook is
 * created, and the signed POST of every action to the webhooks watching the
 * model it touched, with Trello's retries and failure counters. */
#include <string.h>

#include "http/client.h"
#include "mock/mock.h"
#include "util/log.h"
#include "util/sign.h"

/* Largest answer body we keep from a receiver (the rest is read and dropped). */
#define ANSWER_MAX 4096

/* Stop a transfer in flight when the mock shuts down. */
static bool stopping(void *ud)
{
	struct mock *m = ud;
	pthread_mutex_lock(&m->lock);
	bool stop = m->stopping;
	pthread_mutex_unlock(&m->lock);
	return stop;
}

/* A one-call HTTP client with the mock's policy: http/https, no redirects
 * (Trello does not follow them), answers read up to ANSWER_MAX and dropped. */
static httpc *mock_httpc(struct mock *m, long timeout_ms)
{
	httpc *hc = NULL;
	httpc_opts o = HTTPC_OPTS_INIT;
	o.timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	o.connect_timeout_ms = o.timeout_ms;
	o.max_body = ANSWER_MAX;
	o.keep_head = true;
	o.user_agent = "trello-mock";
	o.component = "mock";
	o.abort = stopping;
	o.abort_ctx = m;
	th_error e = {0, {0}};
	return httpc_new(&hc, &o, &e) ? NULL : hc;
}

int mock_head_check(struct mock *m, const char *url, long *status, char *why, size_t whysz)
{
	int rc = TH_EUNAVAIL;
	*status = 0;
	httpc *hc = mock_httpc(m, (long)m->cfg.head_timeout_ms);
	if (!hc) {
		str_copy(why, whysz, "out of memory");
		return rc;
	}
	/* Trello: HEAD, no body, no signature; only an exact 200 passes, a
	 * redirect does not (we do not follow it); TLS must verify. */
	httpc_resp resp;
	httpc_resp_init(&resp);
	httpc_req req = {.method = "HEAD", .url = url};
	if (httpc_perform(hc, &req, &resp) == 0) {
		*status = resp.status;
		rc = 0;
	} else {
		str_copy(why, whysz, resp.error);
	}
	httpc_resp_clear(&resp);
	httpc_free(hc);
	return rc;
}

/* ---- building actions ------------------------------------------------------------ */

static const char *sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static json_t *ref_board(json_t *b)
{
	return json_pack("{s:s, s:s, s:s}", "id", sget(b, "id"), "name", sget(b, "name"),
	                 "shortLink", sget(b, "shortLink"));
}

static json_t *ref_card(json_t *c, bool with_list)
{
	json_t *r =
	    json_pack("{s:s, s:s, s:O, s:s}", "id", sget(c, "id"), "name", sget(c, "name"),
	              "idShort", json_object_get(c, "idShort"), "shortLink", sget(c, "shortLink"));
	if (r && with_list)
		json_object_set_new(r, "idList", json_string(sget(c, "idList")));
	return r;
}

static json_t *ref_list(json_t *l)
{
	return json_pack("{s:s, s:s}", "id", sget(l, "id"), "name", sget(l, "name"));
}

static json_t *ent_card(json_t *c, bool with_list)
{
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "type", "card", "id", sget(c, "id"),
	                      "shortLink", sget(c, "shortLink"), "text", sget(c, "name"));
	if (e && with_list)
		json_object_set_new(e, "idList", json_string(sget(c, "idList")));
	return e;
}

static json_t *ent_list(json_t *l)
{
	return json_pack("{s:s, s:s, s:s}", "type", "list", "id", sget(l, "id"), "text",
	                 sget(l, "name"));
}

static json_t *ent_member(void)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "type", "member", "id", MOCK_MEMBER_ID, "username",
	                 MOCK_MEMBER_USERNAME, "text", MOCK_MEMBER_FULLNAME);
}

static json_t *member_creator(void)
{
	return json_pack("{s:s, s:b, s:n, s:n, s:s, s:n, s:s, s:{}, s:b, s:s}", "id",
	                 MOCK_MEMBER_ID, "activityBlocked", 0, "avatarHash", "avatarUrl",
	                 "fullName", MOCK_MEMBER_FULLNAME, "idMemberReferrer", "initials",
	                 MOCK_MEMBER_INITIALS, "nonPublic", "nonPublicAvailable", 1, "username",
	                 MOCK_MEMBER_USERNAME);
}

/* A string field of @req, or NULL when absent / not a non-empty string. */
static const char *req_str(json_t *req, const char *k)
{
	const char *s = json_string_value(json_object_get(req, k));
	return s && *s ? s : NULL;
}

/* req.<k>, given as "name" or as {"name": ..., "<extra>": ...}: the name (NULL
 * when absent), and in *@extra_out the <extra> field (NULL when absent). */
static const char *req_named(json_t *req, const char *k, const char *extra, const char **extra_out)
{
	json_t *v = json_object_get(req, k);
	*extra_out = json_is_object(v) ? req_str(v, extra) : NULL;
	return json_is_string(v) ? json_string_value(v) : req_str(v, "name");
}

/* req_named() for a model the action names (<k>: "name" or {"name", "<extra>"}):
 * the name, of at least @min_len and at most 16384 bytes, with in *@extra_out
 * its <extra>, one of the @nallowed @allowed (@dflt when not given). NULL
 * when either is not valid. */
static const char *req_choice(json_t *req, const char *k, size_t min_len, const char *extra,
                              const char *const *allowed, size_t nallowed, const char *dflt,
                              const char **extra_out)
{
	const char *name = req_named(req, k, extra, extra_out);
	if (!*extra_out)
		*extra_out = dflt;
	if (!name || strlen(name) < min_len || strlen(name) > 16384)
		return NULL;
	bool ok = !*extra_out;
	for (size_t i = 0; i < nallowed && !ok; i++)
		ok = str_eq(*extra_out, allowed[i]);
	return ok ? name : NULL;
}

#define BAD(field)                                                     \
	do {                                                           \
		str_printf(msg, msgsz, "invalid value for %s", field); \
		goto out;                                              \
	} while (0)

/* Say that @field of the request is invalid. Returns NULL, for `return bad(...)`. */
static const char *bad(char *msg, size_t msgsz, const char *field)
{
	str_printf(msg, msgsz, "invalid value for %s", field);
	return NULL;
}

/* The models an action touches: its card, list and board (each NULL until found). */
struct targets {
	json_t *card, *list, *board;
	json_t *member; /* action.member of member actions (owned), else NULL */
};

/* createCard: a new card in data.idList (or idModel when that is a list). */
static const char *act_create_card(struct mock *m, json_t *req, struct targets *t, json_t *data,
                                   json_t *entities, char *msg, size_t msgsz)
{
	const char *id_model = req_str(req, "idModel");
	json_t *card = NULL, *list = NULL, *board = NULL;
	const char *name = req_str(req, "name");
	const char *id_list = req_str(req, "idList");
	if (!id_list && id_model && mock_list_get_locked(m, id_model))
		id_list = id_model;
	list = mock_list_get_locked(m, id_list);
	if (!list)
		return bad(msg, msgsz, "idList");
	if (!name || strlen(name) > 16384)
		return bad(msg, msgsz, "name");
	card = mock_card_create_locked(m, list, name);
	board = mock_board_get_locked(m, sget(list, "idBoard"));
	if (!card || !board)
		return bad(msg, msgsz, "idList");
	json_object_set_new(data, "card", ref_card(card, true));
	json_object_set_new(data, "list", ref_list(list));
	json_object_set_new(data, "board", ref_board(board));
	json_object_set_new(entities, "card", ent_card(card, false));
	json_object_set_new(entities, "list", ent_list(list));
	t->card = card;
	t->list = list;
	t->board = board;
	return "action_create_card";
}

/* updateCard: a move to another list (idList) or a rename (name). */
static const char *act_update_card(struct mock *m, json_t *req, struct targets *t, json_t *data,
                                   json_t *entities, json_t *touched, char *msg, size_t msgsz)
{
	json_t *card = t->card, *list = t->list, *board = t->board;
	const char *id_list = req_str(req, "idList");
	const char *name = req_str(req, "name");
	if (id_list) {
		json_t *to = mock_list_get_locked(m, id_list);
		if (!to || !str_eq(sget(to, "idBoard"), sget(board, "id")))
			return bad(msg, msgsz, "idList");
		json_t *from = list;
		json_object_set_new(card, "idList", json_string(sget(to, "id")));
		json_object_set_new(data, "card", ref_card(card, true));
		json_object_set_new(data, "old", json_pack("{s:s}", "idList", sget(from, "id")));
		json_object_set_new(data, "board", ref_board(board));
		json_object_set_new(data, "listBefore", ref_list(from));
		json_object_set_new(data, "listAfter", ref_list(to));
		json_object_set_new(entities, "card", ent_card(card, true));
		json_object_set_new(entities, "listBefore", ent_list(from));
		json_object_set_new(entities, "listAfter", ent_list(to));
		json_array_append_new(touched, json_string(sget(from, "id")));
		t->list = to;
		return "action_move_card_from_list_to_list";
	}
	if (name) {
		if (strlen(name) > 16384)
			return bad(msg, msgsz, "name");
		char *old = str_dup(sget(card, "name"));
		json_object_set_new(card, "name", json_string(name));
		json_object_set_new(data, "card", ref_card(card, false));
		json_object_set_new(data, "old", json_pack("{s:s}", "name", old ? old : ""));
		json_object_set_new(data, "board", ref_board(board));
		json_object_set_new(data, "list", ref_list(list));
		json_object_set_new(entities, "card", ent_card(card, false));
		json_object_set_new(entities, "name",
		                    json_pack("{s:s, s:s}", "type", "text", "text", name));
		free(old);
		return "action_renamed_card";
	}
	return bad(msg, msgsz, "idList");
}

/* commentCard: data.text, the card, its list and board. */
static const char *act_comment_card(struct mock *m, json_t *req, struct targets *t, json_t *data,
                                    json_t *entities, json_t *touched, char *msg, size_t msgsz)
{
	json_t *card = t->card, *list = t->list, *board = t->board;
	const char *text = req_str(req, "text");
	if (!text || strlen(text) > 16384)
		return bad(msg, msgsz, "text");
	json_object_set_new(data, "text", json_string(text));
	json_object_set_new(data, "textData", json_pack("{s:{}}", "emoji"));
	json_object_set_new(data, "card", ref_card(card, false));
	json_object_set_new(data, "board", ref_board(board));
	json_object_set_new(data, "list", ref_list(list));
	json_object_set_new(entities, "contextOn",
	                    json_pack("{s:s, s:s, s:b, s:s}", "type", "translatable",
	                              "translationKey", "action_on", "hideIfContext", 1,
	                              "idContext", sget(card, "id")));
	json_object_set_new(entities, "card", ent_card(card, false));
	json_object_set_new(entities, "comment",
	                    json_pack("{s:s, s:s}", "type", "comment", "text", text));
	return "action_comment_on_card";
}

/* addLabelToCard: an existing label of the board by name (and colour), else a new one. */
static const char *act_add_label(struct mock *m, json_t *req, struct targets *t, json_t *data,
                                 json_t *entities, json_t *touched, char *msg, size_t msgsz)
{
	json_t *card = t->card, *board = t->board;
	static const char *const colors[] = {"green", "yellow", "orange", "red",  "purple",
	                                     "blue",  "sky",    "lime",   "pink", "black"};
	const char *color;
	const char *lname =
	    req_choice(req, "label", 0, "color", colors, TH_ARRAY_LEN(colors), NULL, &color);
	if (!lname)
		return bad(msg, msgsz, "label");
	json_t *label = mock_label_get_or_add_locked(board, lname, color), *l;
	if (!label)
		return bad(msg, msgsz, "label");
	json_t *idl = json_object_get(card, "idLabels");
	bool has = false;
	size_t i;
	json_array_foreach(idl, i, l) has = has || str_eq(json_string_value(l), sget(label, "id"));
	if (!has)
		json_array_append_new(idl, json_string(sget(label, "id")));
	json_object_set_new(data, "board", ref_board(board));
	json_object_set_new(data, "card", ref_card(card, false));
	json_object_set_new(data, "label", json_deep_copy(label));
	json_object_set_new(data, "text", json_string(sget(label, "name")));
	json_object_set_new(data, "value", json_string(sget(label, "color")));
	json_object_set_new(entities, "card", ent_card(card, false));
	json_object_set_new(entities, "label",
	                    json_pack("{s:s, s:s, s:s, s:s}", "type", "label", "id",
	                              sget(label, "id"), "color", sget(label, "color"), "text",
	                              sget(label, "name")));
	return "action_add_label_to_card";
}

/* updateCheckItemStateOnCard: the named item of the card's checklists (made when missing). */
static const char *act_check_item(struct mock *m, json_t *req, struct targets *t, json_t *data,
                                  json_t *entities, json_t *touched, char *msg, size_t msgsz)
{
	json_t *card = t->card, *board = t->board;
	static const char *const states[] = {"complete", "incomplete"};
	const char *state;
	const char *iname = req_choice(req, "checkItem", 1, "state", states, TH_ARRAY_LEN(states),
	                               "complete", &state);
	if (!iname)
		return bad(msg, msgsz, "checkItem");
	json_t *cl = NULL, *item = mock_check_item_get_or_add_locked(card, iname, &cl);
	if (!item)
		return bad(msg, msgsz, "checkItem");
	json_object_set_new(item, "state", json_string(state));
	json_object_set_new(data, "card", ref_card(card, false));
	json_object_set_new(data, "board", ref_board(board));
	json_object_set_new(
	    data, "checklist",
	    json_pack("{s:s, s:s}", "id", sget(cl, "id"), "name", sget(cl, "name")));
	json_object_set_new(data, "checkItem",
	                    json_pack("{s:s, s:s, s:s, s:{s:{}}}", "id", sget(item, "id"), "name",
	                              sget(item, "name"), "state", state, "textData", "emoji"));
	json_object_set_new(entities, "checkitem",
	                    json_pack("{s:s, s:s, s:s, s:s}", "type", "check_item", "id",
	                              sget(item, "id"), "state", state, "text",
	                              sget(item, "name")));
	json_object_set_new(entities, "card", ent_card(card, false));
	return str_eq(state, "complete") ? "action_completed_checkitem"
	                                 : "action_marked_checkitem_incomplete";
}

/* addMemberToCard / removeMemberFromCard: as in real deliveries the member
 * acted on travels as action.member and data carries only idMember.
 * req.member is {"id", "fullName", "username"} (default: the mock's own
 * member, which makes it a join or a leave). Membership is not tracked. */
static const char *act_card_member(json_t *req, struct targets *t, bool add, json_t *data,
                                   json_t *entities, char *msg, size_t msgsz)
{
	json_t *mem = json_object_get(req, "member");
	bool given = json_is_object(mem);
	const char *id = given ? req_str(mem, "id") : MOCK_MEMBER_ID;
	const char *full = given ? req_str(mem, "fullName") : NULL;
	const char *user = given ? req_str(mem, "username") : NULL;
	if (!str_is_trello_id(id) || (mem && !given))
		return bad(msg, msgsz, "member");
	bool self = str_eq(id, MOCK_MEMBER_ID);
	if (self && !full)
		full = MOCK_MEMBER_FULLNAME;
	if (self && !user)
		user = MOCK_MEMBER_USERNAME;
	if (!full || strlen(full) > 16384 || (user && strlen(user) > 100))
		return bad(msg, msgsz, "member");
	t->member = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "fullName", full, "username",
	                      user ? user : "", "initials", "");
	if (!t->member)
		return bad(msg, msgsz, "member");
	json_object_set_new(data, "board", ref_board(t->board));
	json_object_set_new(data, "card", ref_card(t->card, false));
	json_object_set_new(data, "idMember", json_string(id));
	json_object_set_new(data, "list", ref_list(t->list));
	json_object_set_new(entities, "card", ent_card(t->card, false));
	json_object_set_new(entities, "member",
	                    json_pack("{s:s, s:s, s:s, s:s}", "type", "member", "id", id,
	                              "username", user ? user : "", "text", full));
	if (add)
		return self ? "action_member_joined_card" : "action_add_member_to_card";
	return self ? "action_member_left_card" : "action_remove_member_from_card";
}

/* Perform the action under the lock: mutate the model, fill @data and
 * @entities, and the ids of the models it touches into @touched (array of
 * strings). The shapes are those of real deliveries (the Trello API notes).
 * Returns the translation key, or NULL with @msg set. */
static const char *apply_locked(struct mock *m, json_t *req, const char *type, json_t *data,
                                json_t *entities, json_t *touched, json_t **member, char *msg,
                                size_t msgsz)
{
	struct targets t = {0};
	const char *key = NULL;
	if (str_eq(type, "createCard")) {
		key = act_create_card(m, req, &t, data, entities, msg, msgsz);
	} else {
		t.card = mock_card_get_locked(m, req_str(req, "idModel"));
		if (!t.card)
			BAD("idModel");
		t.list = mock_list_get_locked(m, sget(t.card, "idList"));
		t.board = mock_board_get_locked(m, sget(t.card, "idBoard"));
		if (!t.list || !t.board)
			BAD("idModel");
		char now[32];
		time_format_iso(time_now_ms(), now);
		json_object_set_new(t.card, "dateLastActivity", json_string(now));
		if (str_eq(type, "updateCard"))
			key = act_update_card(m, req, &t, data, entities, touched, msg, msgsz);
		else if (str_eq(type, "commentCard"))
			key = act_comment_card(m, req, &t, data, entities, touched, msg, msgsz);
		else if (str_eq(type, "addLabelToCard"))
			key = act_add_label(m, req, &t, data, entities, touched, msg, msgsz);
		else if (str_eq(type, "updateCheckItemStateOnCard"))
			key = act_check_item(m, req, &t, data, entities, touched, msg, msgsz);
		else if (str_eq(type, "addMemberToCard") || str_eq(type, "removeMemberFromCard"))
			key = act_card_member(req, &t, str_eq(type, "addMemberToCard"), data,
			                      entities, msg, msgsz);
		else
			BAD("type");
	}
	if (!key)
		goto out;
	json_array_append_new(touched, json_string(sget(t.card, "id")));
	json_array_append_new(touched, json_string(sget(t.list, "id")));
	json_array_append_new(touched, json_string(sget(t.board, "id")));
	json_array_append_new(touched, json_string(MOCK_MEMBER_ID));
	json_object_set_new(entities, "memberCreator", ent_member());
	if (t.member)
		json_array_append_new(touched, json_string(sget(t.member, "id")));
out:
	if (key) {
		*member = t.member;
		t.member = NULL;
	}
	json_decref(t.member);
	return key;
}

/* ---- delivery jobs ------------------------------------------------------------------ */

/* Shared by the jobs of one action and the request that may wait for them.
 * Freed by whoever drops the last reference (under the lock). */
struct group {
	unsigned remaining; /* jobs not finished */
	unsigned refs;      /* jobs + the request */
};

struct job {
	struct mock *m;
	struct group *g;
	uint64_t generation;
	char webhook_id[MOCK_ID_LEN + 1];
	char action_id[MOCK_ID_LEN + 1];
	char *url;  /* the callbackURL as registered: part of the signature */
	char *body; /* the exact bytes sent and signed */
	size_t len;
	char sig[TRELLO_SIG_LEN + 1];
};

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->url);
	free(j->body);
	free(j);
}

/* POST the payload once. Returns the HTTP status, or 0 when no answer came. */
static long post_once(struct job *j)
{
	struct mock *m = j->m;
	long status = 0;
	httpc *hc = mock_httpc(m, (long)m->cfg.delivery_timeout_ms);
	char sighdr[64];
	if (!hc)
		return 0;
	str_printf(sighdr, sizeof sighdr, "X-Trello-Webhook: %s", j->sig);
	/* On the wire: Content-Type application/json, the signature header, the
	 * exact bytes signed. No Expect: 100-continue (http/client never sends it). */
	const char *h[] = {"Content-Type: application/json; charset=utf-8", sighdr};
	httpc_req req = {.method = "POST",
	                 .url = j->url,
	                 .headers = h,
	                 .nheaders = TH_ARRAY_LEN(h),
	                 .body = j->body,
	                 .body_len = j->len};
	httpc_resp resp;
	httpc_resp_init(&resp);
	if (httpc_perform(hc, &req, &resp) == 0)
		status = resp.status;
	httpc_resp_clear(&resp);
	httpc_free(hc);
	return status;
}

static void record_locked(struct mock *m, struct job *j, int attempt, long status, int64_t latency)
{
	char at[32];
	time_format_iso(time_now_ms(), at);
	json_t *r =
	    json_pack("{s:s, s:s, s:i, s:I, s:I, s:s, s:s}", "webhook_id", j->webhook_id,
	              "action_id", j->action_id, "attempt", attempt, "status", (json_int_t)status,
	              "latency_ms", (json_int_t)latency, "at", at, "callbackURL", j->url);
	if (!r)
		return;
	if (json_array_size(m->deliveries) >= MOCK_MAX_DELIVERY_RECORDS)
		json_array_remove(m->deliveries, 0);
	json_array_append_new(m->deliveries, r);
}

static bool job_cancelled_locked(struct job *j)
{
	return j->m->stopping || j->m->generation != j->generation;
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct mock *m = j->m;
	size_t max_attempts = 1 + m->cfg.nretry;
	for (size_t attempt = 1; attempt <= max_attempts; attempt++) {
		pthread_mutex_lock(&m->lock);
		json_t *wh = mock_find_locked(m, "webhooks", "id", j->webhook_id);
		bool go =
		    !job_cancelled_locked(j) && wh && json_is_true(json_object_get(wh, "active"));
		pthread_mutex_unlock(&m->lock);
		if (!go)
			break;

		int64_t t0 = time_mono_ms();
		long status = post_once(j);
		int64_t latency = time_mono_ms() - t0;

		pthread_mutex_lock(&m->lock);
		if (job_cancelled_locked(j)) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		record_locked(m, j, (int)attempt, status, latency);
		wh = mock_find_locked(m, "webhooks", "id", j->webhook_id);
		log_info("mock", "delivery of action %s to webhook %s, attempt %zu: %ld (%lld ms)",
		         j->action_id, j->webhook_id, attempt, status, (long long)latency);
		bool done = true;
		if (!wh) {
			/* deleted meanwhile: nothing to count */
		} else if (status >= 200 && status < 300) {
			json_object_set_new(wh, "consecutiveFailures", json_integer(0));
			json_object_set_new(wh, "firstConsecutiveFailDate", json_null());
		} else if (status == 410) {
			/* Trello deletes a webhook whose receiver answers 410 Gone. */
			log_info("mock", "webhook %s answered 410: deleted", j->webhook_id);
			mock_webhook_delete_locked(m, j->webhook_id);
			wh = NULL;
		} else {
			json_int_t cf =
			    json_integer_value(json_object_get(wh, "consecutiveFailures")) + 1;
			json_object_set_new(wh, "consecutiveFailures", json_integer(cf));
			if (json_is_null(json_object_get(wh, "firstConsecutiveFailDate"))) {
				char at[32];
				time_format_iso(time_now_ms(), at);
				json_object_set_new(wh, "firstConsecutiveFailDate",
				                    json_string(at));
			}
			if (m->cfg.disable_after > 0 && cf >= m->cfg.disable_after) {
				log_info("mock",
				         "webhook %s disabled after %lld consecutive failures",
				         j->webhook_id, (long long)cf);
				json_object_set_new(wh, "active", json_false());
			} else {
				done = false;
			}
		}
		if (wh)
			mock_save_locked(m);
		if (done || attempt == max_attempts) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		/* Back off (interruptible by shutdown and reset). */
		int64_t until = time_mono_ms() + m->cfg.retry_ms[attempt - 1];
		while (!job_cancelled_locked(j) && time_mono_ms() < until) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t left = until - time_mono_ms();
			if (left > 100)
				left = 100;
			if (left < 1)
				left = 1;
			ts.tv_nsec += (long)(left * 1000000);
			ts.tv_sec += ts.tv_nsec / 1000000000;
			ts.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&m->cond, &m->lock, &ts);
		}
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_lock(&m->lock);
	struct group *g = j->g;
	g->remaining--;
	if (--g->refs == 0)
		free(g);
	m->jobs_running--;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	job_free(j);
	return NULL;
}

void mock_deliveries_stop(struct mock *m, int64_t timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->cond);
	while (m->jobs_running && time_mono_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	}
	if (m->jobs_running)
		log_warn("mock", "%u delivery threads still running at exit", m->jobs_running);
	pthread_mutex_unlock(&m->lock);
}

/* One job for every active webhook whose model @action touched (ids in
 * @touched): the payload Trello would send it, signed. Into @jobs (room for
 * every webhook); returns how many. Under the lock. */
static size_t make_jobs_locked(struct mock *m, struct group *g, json_t *action, const char *id,
                               json_t *touched, struct job **jobs)
{
	json_t *whs = json_object_get(m->state, "webhooks");
	size_t njobs = 0;
	size_t i;
	json_t *wh;
	json_array_foreach(whs, i, wh)
	{
		if (m->stopping || !json_is_true(json_object_get(wh, "active")))
			continue;
		bool hit = false;
		size_t k;
		json_t *t;
		json_array_foreach(touched, k, t) hit =
		    hit || str_eq(json_string_value(t), sget(wh, "idModel"));
		if (!hit)
			continue;
		json_t *model = mock_model_view_locked(m, sget(wh, "idModel"));
		json_t *payload =
		    json_pack("{s:o, s:O, s:o}", "model", model ? model : json_object(), "action",
		              action, "webhook", mock_webhook_view(wh));
		struct job *j = calloc(1, sizeof *j);
		if (!payload || !j) {
			json_decref(payload);
			free(j);
			continue;
		}
		j->m = m;
		j->g = g;
		j->generation = m->generation;
		str_copy(j->webhook_id, sizeof j->webhook_id, sget(wh, "id"));
		str_copy(j->action_id, sizeof j->action_id, id);
		j->url = str_dup(sget(wh, "callbackURL"));
		/* The bytes on the wire: compact JSON, UTF-8 as is (not \u-escaped). */
		j->body = json_dumps(payload, JSON_COMPACT);
		json_decref(payload);
		if (!j->url || !j->body) {
			job_free(j);
			continue;
		}
		j->len = strlen(j->body);
		if (sign_trello(m->cfg.secret, j->body, j->len, j->url, j->sig)) {
			job_free(j);
			continue;
		}
		jobs[njobs++] = j;
	}
	return njobs;
}

/* Start a detached thread per job (each owned by its thread from then on;
 * @jobs entries are cleared). Returns how many started. Under the lock. */
static int start_jobs_locked(struct mock *m, struct group *g, struct job **jobs, size_t njobs)
{
	int started = 0;
	for (size_t i = 0; i < njobs; i++) {
		pthread_t th;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		g->remaining++;
		g->refs++;
		m->jobs_running++;
		if (pthread_create(&th, &attr, job_run, jobs[i])) {
			g->remaining--;
			g->refs--;
			m->jobs_running--;
			job_free(jobs[i]);
		} else {
			started++;
		}
		jobs[i] = NULL;
		pthread_attr_destroy(&attr);
	}
	return started;
}

/* ---- performing an action ---------------------------------------------------------------- */

int mock_action_perform(struct mock *m, json_t *req, json_t **action_out, int *ndeliveries,
                        char *msg, size_t msgsz)
{
	int rc = TH_EINVAL;
	json_t *data = json_object(), *entities = json_object(), *touched = json_array();
	json_t *action = NULL, *member = NULL; /* member: action.member of member actions */
	struct job **jobs = NULL;
	size_t njobs = 0;
	struct group *g = NULL;
	bool wait = json_is_true(json_object_get(req, "wait"));
	*action_out = NULL;
	*ndeliveries = 0;
	msg[0] = '\0';
	if (!data || !entities || !touched) {
		str_copy(msg, msgsz, "out of memory");
		goto out;
	}
	const char *type = req_str(req, "type");
	if (!type) {
		str_copy(msg, msgsz, "invalid value for type");
		goto out;
	}
	if (!str_eq(type, "createCard") && !req_str(req, "idModel")) {
		str_copy(msg, msgsz, "invalid value for idModel");
		goto out;
	}

	pthread_mutex_lock(&m->lock);
	mock_tokens_sweep_locked(m);
	const char *key = apply_locked(m, req, type, data, entities, touched, &member, msg, msgsz);
	if (!key) {
		pthread_mutex_unlock(&m->lock);
		goto out;
	}
	char id[MOCK_ID_LEN + 1], date[32];
	if (mock_new_id(id)) {
		pthread_mutex_unlock(&m->lock);
		str_copy(msg, msgsz, "no randomness");
		goto out;
	}
	time_format_iso(time_now_ms(), date);
	action = json_pack("{s:s, s:s, s:O, s:n, s:s, s:s, s:n, s:{s:s, s:O}, s:o}", "id", id,
	                   "idMemberCreator", MOCK_MEMBER_ID, "data", data, "appCreator", "type",
	                   type, "date", date, "limits", "display", "translationKey", key,
	                   "entities", entities, "memberCreator", member_creator());
	if (action && member) {
		json_object_set_new(action, "member", member); /* stolen, also on failure */
		member = NULL;
	}
	if (!action) {
		pthread_mutex_unlock(&m->lock);
		str_copy(msg, msgsz, "out of memory");
		goto out;
	}

	/* Every active webhook whose model the action touched gets one job. */
	json_t *whs = json_object_get(m->state, "webhooks");
	jobs = calloc(json_array_size(whs) + 1, sizeof *jobs);
	g = calloc(1, sizeof *g);
	if (!jobs || !g) {
		pthread_mutex_unlock(&m->lock);
		str_copy(msg, msgsz, "out of memory");
		goto out;
	}
	g->refs = 1;
	/* Kept whatever happens to its deliveries: a receiver that was down
	 * lists it later from /1/.../actions. */
	mock_action_record_locked(m, action, touched);
	njobs = make_jobs_locked(m, g, action, id, touched, jobs);
	mock_save_locked(m);
	/* Start the jobs (their threads block on the lock until we release it). */
	*ndeliveries = start_jobs_locked(m, g, jobs, njobs);
	if (wait) {
		while (g->remaining > 0 && !m->stopping)
			pthread_cond_wait(&m->cond, &m->lock);
	}
	if (--g->refs == 0)
		free(g);
	g = NULL;
	pthread_mutex_unlock(&m->lock);
	log_info("mock", "action %s %s: %d deliveries", type, id, *ndeliveries);
	*action_out = action;
	action = NULL;
	rc = 0;
out:
	if (jobs)
		for (size_t k = 0; k < njobs; k++)
			job_free(jobs[k]);
	free(jobs);
	free(g);
	json_decref(member);
	json_decref(action);
	json_decref(data);
	json_decref(entities);
	json_decref(touched);
	return rc;
}

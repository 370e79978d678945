/* SPDX-License-Identifier: MIT */
/*
 * trigger.c — build, sign and send one realistic Trello delivery to one of
 * our webhooks (`trellohook trigger`), the way `stripe trigger` does.
 *
 * What crosses the wire is exactly what Trello sends: POST callbackURL with
 * Content-Type application/json, the compact UTF-8 body {"model", "action",
 * "webhook"} and X-Trello-Webhook = base64(HMAC-SHA1(TRELLO_API_SECRET,
 * body ++ callbackURL as registered)). The bytes signed are the bytes sent.
 */
#include <stdlib.h>
#include <string.h>

#include "http/client.h"
#include "service/trigger.h"
#include "store/store.h"
#include "util/sign.h"

#define SET_PATH_MAX 512       /* bytes of a --set path */
#define SET_SEGMENTS_MAX 32    /* segments of a --set path */
#define ANSWER_KEEP 255        /* bytes of the answer body kept for printing */
#define POST_TIMEOUT_MS 30000L /* Trello gives a receiver about this long */
#define CONNECT_TIMEOUT_MS 10000L
#define LOOKUP_LIMIT 1000 /* newest events of the webhook searched for our action */

const trigger_template *trigger_find(const char *name)
{
	for (size_t i = 0; name && i < trigger_ntemplates; i++)
		if (str_eq(trigger_templates[i].name, name))
			return &trigger_templates[i];
	return NULL;
}

int trigger_check_name(const char *name, th_error *err)
{
	if (trigger_find(name))
		return 0;
	/* the name is the user's text: cap it, keep the line printable ASCII */
	char shown[64];
	size_t k = 0;
	for (size_t i = 0; name && name[i] && k + 1 < sizeof shown; i++)
		shown[k++] = ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] >= 0x7f)
		                 ? '?'
		                 : name[i];
	shown[k] = '\0';
	return th_err(err, TH_EINVAL, "unknown action type '%s' (see trellohook trigger --list)",
	              shown);
}

int trigger_action_id(char out[25], th_error *err)
{
	unsigned char r[8];
	if (rand_fill(r, sizeof r))
		return th_err(err, TH_EIO, "no randomness for an action id");
	/* Trello ids are Mongo ObjectIds: 4 bytes of seconds, then 8 more bytes. */
	uint32_t secs = (uint32_t)(time_now_ms() / 1000);
	str_printf(out, 25, "%08x%02x%02x%02x%02x%02x%02x%02x%02x", (unsigned)secs, r[0], r[1],
	           r[2], r[3], r[4], r[5], r[6], r[7]);
	return 0;
}

/* ---- --set PATH=VALUE ------------------------------------------------------------ */

/* Is @s a decimal array index (no sign, no leading zeros but "0")? */
static bool seg_index(const char *s, size_t *out)
{
	int64_t v;
	if (num_parse_i64(s, 0, 1000000, &v) || (s[0] == '0' && s[1]))
		return false;
	*out = (size_t)v;
	return true;
}

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* The value of an assignment: JSON when it parses as JSON, else a string. */
static json_t *set_value(const char *text, th_error *err)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (v)
		return v;
	if (!str_utf8_valid(text, strlen(text))) {
		th_err(err, TH_EINVAL, "--set: the value is not valid UTF-8");
		return NULL;
	}
	v = json_string(text);
	if (!v)
		th_err(err, TH_ENOMEM, "out of memory");
	return v;
}

int trigger_set_path(json_t *root, const char *assignment, th_error *err)
{
	const char *eq = strchr(assignment, '=');
	if (!eq)
		return th_err(err, TH_EINVAL,
		              "--set '%.80s': expected PATH=VALUE, e.g. "
		              "--set action.data.text=hi",
		              assignment);
	size_t plen = (size_t)(eq - assignment);
	if (plen == 0)
		return th_err(err, TH_EINVAL,
		              "--set: the PATH before '=' is empty (e.g. "
		              "action.data.text=hi)");
	if (plen >= SET_PATH_MAX)
		return th_err(err, TH_EINVAL, "--set: the path is longer than %d bytes",
		              SET_PATH_MAX - 1);
	char path[SET_PATH_MAX];
	memcpy(path, assignment, plen);
	path[plen] = '\0';
	if (!str_utf8_valid(path, plen))
		return th_err(err, TH_EINVAL, "--set: the path is not valid UTF-8");

	/* split into segments, each non-empty */
	char *segs[SET_SEGMENTS_MAX];
	size_t nseg = 0;
	char *p = path;
	for (;;) {
		char *dot = strchr(p, '.');
		if (dot)
			*dot = '\0';
		if (!*p)
			return th_err(err, TH_EINVAL,
			              "--set '%.80s': empty segment in the path (write "
			              "a.b.c)",
			              assignment);
		if (nseg == SET_SEGMENTS_MAX)
			return th_err(err, TH_EINVAL, "--set: more than %d path segments",
			              SET_SEGMENTS_MAX);
		segs[nseg++] = p;
		if (!dot)
			break;
		p = dot + 1;
	}

	json_t *v = set_value(eq + 1, err);
	if (!v)
		return err ? err->code : TH_EINVAL;
	json_t *cur = root;
	for (size_t i = 0; i < nseg; i++) {
		bool last = i + 1 == nseg;
		size_t ix;
		if (json_is_object(cur)) {
			if (last) {
				if (json_object_set_new(cur, segs[i], v))
					return th_err(err, TH_ENOMEM, "out of memory");
				return 0;
			}
			json_t *next = json_object_get(cur, segs[i]);
			if (!next) {
				next = json_object();
				if (!next || json_object_set_new(cur, segs[i], next)) {
					json_decref(v);
					return th_err(err, TH_ENOMEM, "out of memory");
				}
			}
			cur = next;
		} else if (json_is_array(cur)) {
			if (!seg_index(segs[i], &ix) || ix > json_array_size(cur) ||
			    (!last && ix == json_array_size(cur))) {
				json_decref(v);
				return th_err(err, TH_EINVAL,
				              "--set '%.80s': '%s' is not an index of that array "
				              "(0..%zu)",
				              assignment, segs[i], json_array_size(cur));
			}
			if (last) {
				int r = ix == json_array_size(cur) ? json_array_append_new(cur, v)
				                                   : json_array_set_new(cur, ix, v);
				return r ? th_err(err, TH_ENOMEM, "out of memory") : 0;
			}
			cur = json_array_get(cur, ix);
		} else {
			json_decref(v);
			return th_err(err, TH_EINVAL,
			              "--set '%.80s': cannot go into '%s', its parent is %s",
			              assignment, segs[i], json_kind(cur));
		}
	}
	json_decref(v); /* not reached: the last segment returns */
	return 0;
}

/* ---- building ---------------------------------------------------------------------- */

/* Set @key of object @o to string @s (NULL: JSON null). Non-objects are left alone. */
static int set_str(json_t *o, const char *key, const char *s)
{
	if (!json_is_object(o))
		return 0;
	return json_object_set_new(o, key, s ? json_string(s) : json_null());
}

/* A model object named by the webhook: id and name (jansson drops names that
 * are not UTF-8, so a NULL name is tolerated). */
static int fill_named(json_t *o, const webhook *w)
{
	if (!json_is_object(o))
		return 0;
	if (set_str(o, "id", w->id_model))
		return -1;
	if (w->model_name && json_object_set_new(o, "name", json_string(w->model_name)))
		return -1;
	/* the template's links name the template's board, not this one */
	json_object_del(o, "shortLink");
	json_object_del(o, "url");
	json_object_del(o, "shortUrl");
	return 0;
}

/* Put the webhook's model into the template: the top-level "model" and, by
 * model type, the matching part of action.data and action.display. */
static int fill_model(json_t *root, const webhook *w)
{
	json_t *action = json_object_get(root, "action");
	json_t *data = json_object_get(action, "data");
	json_t *entities = json_object_get(json_object_get(action, "display"), "entities");
	const char *type = w->model_type ? w->model_type : "board";
	if (str_eq(type, "board")) {
		json_t *model = json_object_get(root, "model");
		if (!json_is_object(model)) {
			model = json_object();
			if (!model || json_object_set_new(root, "model", model))
				return -1;
		}
		if (fill_named(model, w) || fill_named(json_object_get(data, "board"), w))
			return -1;
		return 0;
	}
	/* card, list, member, organization: the model is that object */
	json_t *model = json_object();
	if (!model || json_object_set_new(root, "model", model))
		return -1;
	if (fill_named(model, w))
		return -1;
	if (str_eq(type, "card") || str_eq(type, "list")) {
		json_t *part = json_object_get(data, type);
		if (part && fill_named(part, w))
			return -1;
		json_t *ent = json_object_get(entities, type);
		if (json_is_object(ent)) {
			if (set_str(ent, "id", w->id_model) ||
			    (w->model_name && set_str(ent, "text", w->model_name)))
				return -1;
			json_object_del(ent, "shortLink");
		}
		if (str_eq(type, "card") && json_is_object(part)) {
			/* a card model carries where it is */
			json_t *list = json_object_get(data, "list");
			if (!list)
				list = json_object_get(data, "listAfter");
			if (json_is_string(json_object_get(list, "id")) &&
			    json_object_set(model, "idList", json_object_get(list, "id")))
				return -1;
			json_t *board = json_object_get(data, "board");
			if (json_is_string(json_object_get(board, "id")) &&
			    json_object_set(model, "idBoard", json_object_get(board, "id")))
				return -1;
		}
	}
	return 0;
}

/* The "webhook" part, as Trello's webhook object. */
static json_t *webhook_part(const webhook *w, th_error *err)
{
	char fresh[25];
	const char *tid = w->trello_id;
	if (!tid) {
		if (trigger_action_id(fresh, err))
			return NULL;
		tid = fresh; /* never registered: a plausible id */
	}
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:i,s:n}", "id", tid, "description",
	                      w->description ? w->description : "", "idModel", w->id_model,
	                      "callbackURL", w->callback_url, "active", 1, "consecutiveFailures", 0,
	                      "firstConsecutiveFailDate");
	if (!o)
		th_err(err, TH_ENOMEM, "cannot build the webhook object");
	return o;
}

int trigger_build(const char *name, const webhook *w, const char *const *sets, size_t nsets,
                  char **out_body, size_t *out_len, char action_id[64], th_error *err)
{
	int rc = 0;
	json_t *root = NULL;
	*out_body = NULL;
	*out_len = 0;
	action_id[0] = '\0';
	const trigger_template *t = trigger_find(name);
	if (!t)
		return trigger_check_name(name, err);
	if (!w->id_model || !w->callback_url)
		return th_err(err, TH_EINVAL, "webhook %s has no model or callback URL", w->id);
	json_error_t jerr;
	root = json_loads(t->json, 0, &jerr);
	json_t *action = json_object_get(root, "action");
	if (!json_is_object(action)) {
		rc = th_err(err, TH_EINVAL, "template %s is broken: %s", t->name, jerr.text);
		goto out;
	}
	char id[25], date[32];
	if ((rc = trigger_action_id(id, err)))
		goto out;
	time_format_iso(time_now_ms(), date);
	json_t *hook = webhook_part(w, err);
	if (!hook) {
		rc = err ? err->code : TH_ENOMEM;
		goto out;
	}
	if (fill_model(root, w) || set_str(action, "id", id) || set_str(action, "date", date) ||
	    json_object_set_new(root, "webhook", hook)) {
		rc = th_err(err, TH_ENOMEM, "out of memory while building the payload");
		goto out;
	}
	for (size_t i = 0; i < nsets; i++)
		if ((rc = trigger_set_path(root, sets[i], err)))
			goto out;
	const char *final_id =
	    json_string_value(json_object_get(json_object_get(root, "action"), "id"));
	str_copy(action_id, 64, final_id ? final_id : "");
	/* compact, UTF-8 as is: Trello's form; these are the bytes signed and sent */
	*out_body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!*out_body) {
		rc = th_err(err, TH_ENOMEM, "cannot encode the payload");
		goto out;
	}
	*out_len = strlen(*out_body);
out:
	json_decref(root);
	return rc;
}

/* ---- sending ------------------------------------------------------------------------ */

void trigger_result_clear(trigger_result *r)
{
	free(r->summary);
	memset(r, 0, sizeof *r);
}

/* The webhook to send to: @id, or the only one there is. */
static int pick_webhook(svc_ctx *sc, const char *id, webhook *out, th_error *err)
{
	if (id)
		return store_webhook_get(sc->st, id, out, err);
	webhook *ws = NULL;
	size_t n = 0;
	int rc = store_webhook_list(sc->st, &ws, &n, err);
	if (rc)
		return rc;
	if (n == 1) {
		*out = ws[0];
		memset(&ws[0], 0, sizeof ws[0]);
	} else if (n == 0) {
		rc = th_err(err, TH_EINVAL,
		            "no webhooks yet: add one with `trellohook webhook add` "
		            "(or run `trellohook demo`)");
	} else {
		buf ids;
		buf_init(&ids, 180);
		for (size_t i = 0; i < n; i++)
			if (buf_printf(&ids, "%s%s", i ? ", " : "", ws[i].id))
				break;
		rc = th_err(err, TH_EINVAL, "%zu webhooks: choose one with --webhook ID (%s%s)", n,
		            ids.data ? ids.data : "", ids.len + 1 < 180 ? "" : ", ...");
		buf_free(&ids);
	}
	webhook_list_free(ws, n);
	return rc;
}

/* POST @body to @url with the signature; @status gets the answer's code and
 * @answer the first ANSWER_KEEP bytes of its body (the rest is dropped). */
static int post_signed(const char *url, const char *body, size_t len, const char *sig, long *status,
                       buf *answer, th_error *err)
{
	httpc *hc = NULL;
	httpc_resp resp;
	httpc_resp_init(&resp);
	httpc_opts o = HTTPC_OPTS_INIT;
	o.timeout_ms = POST_TIMEOUT_MS;
	o.connect_timeout_ms = CONNECT_TIMEOUT_MS;
	o.max_body = ANSWER_KEEP;
	o.keep_head = true;
	o.user_agent = "trellohook-trigger/" TH_VERSION;
	o.component = "trigger";
	int rc = httpc_new(&hc, &o, err);
	if (rc)
		return rc;
	char sighdr[64];
	str_printf(sighdr, sizeof sighdr, "X-Trello-Webhook: %s", sig);
	/* what crosses the wire: Trello's content type and signature header */
	const char *lines[] = {"Content-Type: application/json; charset=utf-8", sighdr};
	httpc_req req = {.method = "POST",
	                 .url = url,
	                 .headers = lines,
	                 .nheaders = TH_ARRAY_LEN(lines),
	                 .body = body,
	                 .body_len = len};
	rc = httpc_perform(hc, &req, &resp);
	if (rc == TH_EINVAL)
		rc = th_err(err, rc, "POST %s: %s", url, resp.error);
	else if (rc)
		rc = th_err(err, rc == TH_ENOMEM ? rc : TH_EUNAVAIL, "POST %s: no answer: %s", url,
		            resp.error);
	else if (resp.body.len && buf_append(answer, resp.body.data, resp.body.len))
		rc = th_err(err, TH_ENOMEM, "out of memory");
	*status = resp.status;
	httpc_resp_clear(&resp);
	httpc_free(hc);
	return rc;
}

/* The stored event of @action_id on webhook @wid (newest first). */
static int lookup_event(svc_ctx *sc, const char *wid, const char *action_id, trigger_result *out,
                        th_error *err)
{
	event_query q;
	memset(&q, 0, sizeof q);
	q.webhook_id = wid;
	q.limit = LOOKUP_LIMIT;
	event_row *rows = NULL;
	size_t n = 0;
	int rc = store_event_list(sc->st, &q, &rows, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (str_eq(rows[i].ev.action_id, action_id)) {
			str_copy(out->event_id, sizeof out->event_id, rows[i].ev.id);
			out->summary = str_dup(rows[i].ev.summary);
			break;
		}
	}
	event_row_list_free(rows, n);
	return 0;
}

int trigger_send(svc_ctx *sc, const trigger_opts *o, trigger_result *out, th_error *err)
{
	int rc;
	char *body = NULL;
	size_t len = 0;
	buf answer;
	buf_init(&answer, ANSWER_KEEP + 1);
	webhook w;
	memset(&w, 0, sizeof w);
	memset(out, 0, sizeof *out);
	if ((rc = trigger_check_name(o->name,
	                             err))) /* the type first: its message lists the names */
		return rc;
	if ((rc = pick_webhook(sc, o->webhook_id, &w, err)))
		goto out;
	str_copy(out->webhook_id, sizeof out->webhook_id, w.id);
	str_copy(out->callback_url, sizeof out->callback_url, w.callback_url ? w.callback_url : "");
	if ((rc = trigger_build(o->name, &w, o->sets, o->nsets, &body, &len, out->action_id, err)))
		goto out;
	char sig[TRELLO_SIG_LEN + 1];
	/* signed over the URL exactly as registered with Trello (stored with the webhook) */
	if (sign_trello(sc->cfg->api_secret, body, len, w.callback_url, sig)) {
		rc = th_err(err, TH_EIO, "cannot sign the payload");
		goto out;
	}
	if ((rc = post_signed(w.callback_url, body, len, sig, &out->status, &answer, err)))
		goto out;
	/* one printable line of the answer */
	for (size_t i = 0; i < answer.len && i < sizeof out->answer - 1; i++) {
		unsigned char ch = (unsigned char)answer.data[i];
		out->answer[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
		out->answer[i + 1] = '\0';
	}
	if (out->status == 200 && out->action_id[0])
		rc = lookup_event(sc, w.id, out->action_id, out, err);
out:
	free(body);
	buf_free(&answer);
	webhook_clear(&w);
	return rc;
}

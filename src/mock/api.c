/* SPDX-License-Identifier: MIT */
/* api.c — trello-mock's HTTP side: parameters from the query, a JSON or form
 * body and the OAuth header; key/token checks; rate limits; the /1/ routes
 * that behave like Trello's. The authorize page is authorize.c, the /_mock/
 * control API control.c. */
#include <string.h>

#include "mock/mock.h"
#include "util/log.h"

#define DESCRIPTION_MAX 16384

const char *mock_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* ---- answers ---------------------------------------------------------------------------- */

/* Send @v (stolen) as JSON. NULL means we ran out of memory. */
void mock_send_json(http_response *res, int status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(v);
	if (!s) {
		http_response_text(res, 500, "out of memory");
		return;
	}
	http_response_body(res, status, "application/json; charset=utf-8", s, strlen(s));
	free(s);
}

/* A Trello error: plain text by default (the older form), or with
 * --json-errors {"message": ..., "error": CODE} (the newer form). */
static void send_err(struct mock *m, http_response *res, int status, const char *code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void send_err(struct mock *m, http_response *res, int status, const char *code,
                     const char *fmt, ...)
{
	char msg[MOCK_URL_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Messages may echo request bytes (a path): keep the JSON form valid. */
	for (size_t i = 0; msg[i]; i++)
		if ((unsigned char)msg[i] >= 0x80 && !str_utf8_valid(msg, strlen(msg)))
			msg[i] = '?';
	if (m->cfg.json_errors)
		mock_send_json(res, status, json_pack("{s:s, s:s}", "message", msg, "error", code));
	else
		http_response_body(res, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

void mock_trello_err(struct mock *m, http_response *res, int status, const char *code,
                     const char *msg)
{
	send_err(m, res, status, code, "%s", msg);
}

/* The control API always answers errors as JSON. */
void mock_ctl_err(http_response *res, int status, const char *msg)
{
	mock_send_json(res, status,
	               json_pack("{s:s, s:s}", "message", msg, "error", "BAD_REQUEST"));
}

/* ---- parameters --------------------------------------------------------------------------- */

/* Percent-decode @in[0..n) (with '+' as space when @plus) into a new string;
 * NULL for a malformed escape (Trello refuses those too) or no memory. */
static char *url_decode(const char *in, size_t n, bool plus, size_t *outlen)
{
	char *out = malloc(n + 1);
	long len = out ? str_url_decode(in, n, plus, out) : -1;
	if (len < 0) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)len;
	return out;
}

/* Set @name = @value (@len bytes) in @params as a JSON string. Returns false
 * when the value is not valid UTF-8 (or has a NUL). */
static bool set_str_param(json_t *params, const char *name, const char *value, size_t len)
{
	if (memchr(value, '\0', len) || !str_utf8_valid(value, len))
		return false;
	json_t *s = json_stringn(value, len);
	return s && json_object_set_new(params, name, s) == 0;
}

/* Parse application/x-www-form-urlencoded into @params. */
static bool parse_form(json_t *params, const char *body, size_t len, char *bad, size_t badsz)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && body[end] != '&')
			end++;
		const char *eq = memchr(body + i, '=', end - i);
		size_t nlen = eq ? (size_t)(eq - (body + i)) : end - i;
		size_t kl = 0, vl = 0;
		char *k = url_decode(body + i, nlen, true, &kl);
		char *v =
		    eq ? url_decode(eq + 1, (size_t)(body + end - eq - 1), true, &vl) : str_dup("");
		bool ok = k && v;
		if (ok && kl && (memchr(k, '\0', kl) || !str_utf8_valid(k, kl)))
			ok = false;
		if (ok && kl && !set_str_param(params, k, v, vl))
			ok = false;
		if (!ok)
			str_copy(bad, badsz,
			         k && str_utf8_valid(k, kl) && !memchr(k, '\0', kl) ? k : "body");
		free(k);
		free(v);
		if (!ok)
			return false;
		i = end + 1;
	}
	return true;
}

/* All parameters of a request in one object: query arguments, then the body
 * (JSON object or form), the body winning. On failure answers 400 itself and
 * returns NULL. */
json_t *mock_params(struct mock *m, http_request *req, http_response *res, bool control)
{
	json_t *p = json_object();
	char bad[128] = "";
	if (!p) {
		http_response_text(res, 500, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < req->nargs; i++) {
		const char *v = req->args[i].value ? req->args[i].value : "";
		if (!str_utf8_valid(req->args[i].name, strlen(req->args[i].name))) {
			str_copy(bad, sizeof bad, "query");
			goto fail;
		}
		if (!set_str_param(p, req->args[i].name, v, strlen(v))) {
			str_copy(bad, sizeof bad, req->args[i].name);
			goto fail;
		}
	}
	if (req->body_len) {
		const char *ct = http_header(req, "Content-Type");
		/* A form body, unless it plainly is a JSON object (curl -d '{...}'
		 * labels JSON as a form). */
		size_t k = 0;
		while (k < req->body_len && (req->body[k] == ' ' || req->body[k] == '\n' ||
		                             req->body[k] == '\r' || req->body[k] == '\t'))
			k++;
		bool form = ct && str_starts(ct, "application/x-www-form-urlencoded") &&
		            !(k < req->body_len && req->body[k] == '{');
		if (form) {
			if (!parse_form(p, req->body, req->body_len, bad, sizeof bad))
				goto fail;
		} else {
			json_error_t je;
			json_t *b =
			    json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
			if (!json_is_object(b)) {
				json_decref(b);
				json_decref(p);
				if (control)
					mock_ctl_err(res, 400, "the body must be a JSON object");
				else
					send_err(m, res, 400, "INVALID_JSON", "invalid JSON");
				return NULL;
			}
			json_object_update(p, b);
			json_decref(b);
		}
	}
	return p;
fail:
	json_decref(p);
	if (control)
		mock_ctl_err(res, 400, "malformed parameters");
	else
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for %s", bad);
	return NULL;
}

/* A parameter as a string (JSON strings only). */
const char *mock_param(json_t *params, const char *name)
{
	return json_string_value(json_object_get(params, name));
}

/* A boolean parameter: JSON true/false or the strings "true"/"false".
 * Returns 0 (absent), 1 (set into *out) or -1 (malformed). */
static int pbool(json_t *params, const char *name, bool *out)
{
	json_t *v = json_object_get(params, name);
	if (!v)
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 1;
	}
	if (str_eq(json_string_value(v), "true")) {
		*out = true;
		return 1;
	}
	if (str_eq(json_string_value(v), "false")) {
		*out = false;
		return 1;
	}
	return -1;
}

/* ---- auth -------------------------------------------------------------------------------------
 */

/* Pull oauth_consumer_key / oauth_token out of
 * `Authorization: OAuth oauth_consumer_key="KEY", oauth_token="TOKEN"`. */
static void parse_oauth(const char *h, char *key, size_t keysz, char *tok, size_t toksz)
{
	if (!h)
		return;
	while (*h == ' ')
		h++;
	if (!(str_starts(h, "OAuth ") || str_starts(h, "oauth ")))
		return;
	const char *p = h + 6;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		size_t nlen = (size_t)(eq - p);
		const char *v = eq + 1;
		bool quoted = *v == '"';
		if (quoted)
			v++;
		const char *end = v;
		while (*end && (quoted ? *end != '"' : (*end != ',' && *end != ' ')))
			end++;
		size_t vl = 0;
		char *dec = url_decode(v, (size_t)(end - v), false, &vl);
		if (dec && nlen == 18 && strncmp(p, "oauth_consumer_key", 18) == 0)
			str_copy(key, keysz, dec);
		else if (dec && nlen == 11 && strncmp(p, "oauth_token", 11) == 0)
			str_copy(tok, toksz, dec);
		free(dec);
		p = *end ? end + 1 : end;
	}
}

struct auth {
	char key[160];
	char token[160];
	int64_t key_remaining, token_remaining;
	bool key_ok, token_ok;
};

/* Count one request against @name's fixed window. Returns the remaining
 * allowance after it (negative: over the limit). */
static int64_t rate_hit_locked(struct mock *m, const char *name, int64_t max)
{
	int64_t now = time_mono_ms();
	struct mock_rate *r = NULL;
	for (size_t i = 0; i < m->nrates; i++)
		if (str_eq(m->rates[i].name, name))
			r = &m->rates[i];
	if (!r) {
		struct mock_rate *n = mem_grow(m->rates, &m->caprates, m->nrates, sizeof *n, 16);
		if (!n)
			return max;
		m->rates = n;
		r = &m->rates[m->nrates++];
		str_copy(r->name, sizeof r->name, name);
		r->start = now;
		r->count = 0;
	}
	if (now - r->start >= m->cfg.rate_window_ms) {
		r->start = now;
		r->count = 0;
	}
	r->count++;
	return max - r->count;
}

/* x-rate-limit-api-<who>-{interval-ms,max,remaining}, as Trello sends them. */
static void rate_header_set(http_response *res, const char *who, long long window_ms, long long max,
                            long long remaining)
{
	const char *const what[] = {"interval-ms", "max", "remaining"};
	const long long val[] = {window_ms, max, remaining > 0 ? remaining : 0};
	char name[64], v[32];
	for (size_t i = 0; i < TH_ARRAY_LEN(what); i++) {
		str_printf(name, sizeof name, "x-rate-limit-api-%s-%s", who, what[i]);
		str_printf(v, sizeof v, "%lld", val[i]);
		http_response_header(res, name, v);
	}
}

static void rate_headers(struct mock *m, http_response *res, const struct auth *a)
{
	if (a->key_ok)
		rate_header_set(res, "key", (long long)m->cfg.rate_window_ms,
		                (long long)m->cfg.rate_key, (long long)a->key_remaining);
	if (a->token_ok)
		rate_header_set(res, "token", (long long)m->cfg.rate_window_ms,
		                (long long)m->cfg.rate_token, (long long)a->token_remaining);
}

/* Check key and token (@path_token, when the route names one, stands in for
 * a missing token parameter). Answers 401/429 itself and returns false. */
static bool authenticate(struct mock *m, http_request *req, http_response *res, json_t *params,
                         const char *path_token, struct auth *a)
{
	char hkey[160] = "", htok[160] = "";
	parse_oauth(http_header(req, "Authorization"), hkey, sizeof hkey, htok, sizeof htok);
	const char *key = mock_param(params, "key");
	const char *tok = mock_param(params, "token");
	str_copy(a->key, sizeof a->key, key ? key : hkey);
	str_copy(a->token, sizeof a->token,
	         tok ? tok : (htok[0] ? htok : (path_token ? path_token : "")));
	if (!a->key[0] || !str_eq(a->key, m->cfg.key)) {
		send_err(m, res, 401, "INVALID_KEY", "invalid key");
		return false;
	}
	a->key_ok = true;
	pthread_mutex_lock(&m->lock);
	enum mock_token_state ts = a->token[0] && str_is_trello_token(a->token)
	                               ? mock_token_check_locked(m, a->token)
	                               : MOCK_TOKEN_INVALID;
	char kname[200], tname[200];
	str_printf(kname, sizeof kname, "k:%s", a->key);
	a->key_remaining = rate_hit_locked(m, kname, m->cfg.rate_key);
	if (ts == MOCK_TOKEN_OK) {
		a->token_ok = true;
		str_printf(tname, sizeof tname, "t:%s", a->token);
		a->token_remaining = rate_hit_locked(m, tname, m->cfg.rate_token);
	}
	pthread_mutex_unlock(&m->lock);
	if (ts == MOCK_TOKEN_INVALID) {
		send_err(m, res, 401, "INVALID_TOKEN", "invalid token");
		return false;
	}
	if (ts == MOCK_TOKEN_EXPIRED) {
		send_err(m, res, 401, "EXPIRED_TOKEN", "expired token");
		return false;
	}
	if (a->key_remaining < 0) {
		mock_send_json(res, 429,
		               json_pack("{s:s, s:s}", "error", "API_KEY_LIMIT_EXCEEDED", "message",
		                         "Rate limit exceeded"));
		return false;
	}
	if (a->token_remaining < 0) {
		mock_send_json(res, 429,
		               json_pack("{s:s, s:s}", "error", "API_TOKEN_LIMIT_EXCEEDED",
		                         "message", "Rate limit exceeded"));
		return false;
	}
	return true;
}

/* ---- webhooks ------------------------------------------------------------------------------ */

bool mock_valid_url(const char *u)
{
	if (!u || strlen(u) > MOCK_URL_MAX)
		return false;
	const char *rest = str_starts(u, "https://")  ? u + 8
	                   : str_starts(u, "http://") ? u + 7
	                                              : NULL;
	if (!rest || !*rest || *rest == '/' || *rest == '?' || *rest == '#')
		return false;
	for (const unsigned char *p = (const unsigned char *)u; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Trello's HEAD check. Answers 400 itself and returns false when it fails. */
static bool head_check(struct mock *m, http_response *res, const char *url)
{
	long status = 0;
	char why[256] = "";
	if (mock_head_check(m, url, &status, why, sizeof why)) {
		log_info("mock", "HEAD %s: not reachable (%s)", url, why);
		send_err(m, res, 400, "VALIDATOR_URL_NOT_REACHABLE",
		         "URL (%s) not reachable. Error: %s", url, why);
		return false;
	}
	if (status != 200) {
		log_info("mock", "HEAD %s: %ld", url, status);
		send_err(m, res, 400, "VALIDATOR_URL_DID_NOT_RETURN_200",
		         "URL (%s) did not return 200 status code, got %ld", url, status);
		return false;
	}
	return true;
}

static bool duplicate_locked(struct mock *m, const char *url, const char *model, const char *token,
                             const char *except_id)
{
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(m->state, "webhooks"), i, w)
	{
		if (str_eq(mock_str(w, "callbackURL"), url) &&
		    str_eq(mock_str(w, "idModel"), model) && str_eq(mock_str(w, "token"), token) &&
		    !str_eq(mock_str(w, "id"), except_id))
			return true;
	}
	return false;
}

/* Validate description / active; answers 400 itself. */
static bool check_common(struct mock *m, http_response *res, json_t *params, bool *active,
                         int *has_active)
{
	json_t *d = json_object_get(params, "description");
	if (d && (!json_is_string(d) || strlen(json_string_value(d)) > DESCRIPTION_MAX)) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for description");
		return false;
	}
	*has_active = pbool(params, "active", active);
	if (*has_active < 0) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for active");
		return false;
	}
	return true;
}

static void webhook_create(struct mock *m, http_response *res, json_t *params, const char *token)
{
	const char *url = mock_param(params, "callbackURL");
	const char *model = mock_param(params, "idModel");
	bool active = true;
	int has_active = 0;
	if (!url || !mock_valid_url(url)) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for callbackURL");
		return;
	}
	if (!model) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for idModel");
		return;
	}
	if (!check_common(m, res, params, &active, &has_active))
		return;
	pthread_mutex_lock(&m->lock);
	bool exists = mock_model_kind_locked(m, model) != NULL;
	bool dup = duplicate_locked(m, url, model, token, NULL);
	pthread_mutex_unlock(&m->lock);
	if (!exists) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for idModel");
		return;
	}
	if (dup) {
		send_err(m, res, 400, "DUPLICATE_WEBHOOK",
		         "A webhook with that callback, model, and token already exists");
		return;
	}
	if (!head_check(m, res, url))
		return;
	char id[MOCK_ID_LEN + 1];
	if (mock_new_id(id)) {
		http_response_text(res, 500, "no randomness");
		return;
	}
	pthread_mutex_lock(&m->lock);
	/* Re-check: the world may have changed during the HEAD. */
	if (mock_token_check_locked(m, token) != MOCK_TOKEN_OK ||
	    !mock_model_kind_locked(m, model)) {
		pthread_mutex_unlock(&m->lock);
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for idModel");
		return;
	}
	if (duplicate_locked(m, url, model, token, NULL)) {
		pthread_mutex_unlock(&m->lock);
		send_err(m, res, 400, "DUPLICATE_WEBHOOK",
		         "A webhook with that callback, model, and token already exists");
		return;
	}
	json_t *w =
	    json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:n, s:s}", "id", id, "description",
	              mock_param(params, "description") ? mock_param(params, "description") : "",
	              "idModel", model, "callbackURL", url, "active", active, "consecutiveFailures",
	              0, "firstConsecutiveFailDate", "token", token);
	json_t *view = NULL;
	if (w && !json_array_append(json_object_get(m->state, "webhooks"), w)) {
		view = mock_webhook_view(w);
		mock_save_locked(m);
	}
	json_decref(w);
	pthread_mutex_unlock(&m->lock);
	log_info("mock", "webhook %s created on %s -> %s", id, model, url);
	mock_send_json(res, 200, view);
}

/* Look up webhook @id for @token; answers 400/404/401 itself. Lock held. */
static json_t *webhook_for_locked(struct mock *m, http_response *res, const char *id,
                                  const char *token)
{
	if (!str_is_trello_id(id)) {
		send_err(m, res, 400, "INVALID_ID", "invalid id");
		return NULL;
	}
	json_t *w = mock_find_locked(m, "webhooks", "id", id);
	if (!w) {
		send_err(m, res, 404, "NOT_FOUND", "The requested resource was not found.");
		return NULL;
	}
	if (!str_eq(mock_str(w, "token"), token)) {
		send_err(m, res, 401, "UNAUTHORIZED", "webhook does not belong to token");
		return NULL;
	}
	return w;
}

static void webhook_get(struct mock *m, http_response *res, const char *id, const char *token,
                        const char *field)
{
	pthread_mutex_lock(&m->lock);
	json_t *w = webhook_for_locked(m, res, id, token);
	json_t *v = w ? mock_webhook_view(w) : NULL;
	pthread_mutex_unlock(&m->lock);
	if (!w)
		return;
	if (field) {
		static const char *const fields[] = {
		    "active",  "callbackURL",         "description",
		    "idModel", "consecutiveFailures", "firstConsecutiveFailDate",
		    "id"};
		bool ok = false;
		for (size_t i = 0; i < TH_ARRAY_LEN(fields); i++)
			ok = ok || str_eq(field, fields[i]);
		if (!ok) {
			json_decref(v);
			send_err(m, res, 404, "NOT_FOUND", "Cannot GET /1/webhooks/%s/%s", id,
			         field);
			return;
		}
		json_t *val = json_incref(json_object_get(v, field));
		json_decref(v);
		mock_send_json(res, 200, json_pack("{s:o}", "_value", val));
		return;
	}
	mock_send_json(res, 200, v);
}

static void webhook_put(struct mock *m, http_response *res, json_t *params, const char *id,
                        const char *token)
{
	bool active = true;
	int has_active = 0;
	if (!check_common(m, res, params, &active, &has_active))
		return;
	const char *url = mock_param(params, "callbackURL");
	const char *model = mock_param(params, "idModel");
	if (json_object_get(params, "callbackURL") && !mock_valid_url(url)) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for callbackURL");
		return;
	}
	if (json_object_get(params, "idModel") && !model) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for idModel");
		return;
	}
	pthread_mutex_lock(&m->lock);
	json_t *w = webhook_for_locked(m, res, id, token);
	bool url_changed = w && url && !str_eq(url, mock_str(w, "callbackURL"));
	pthread_mutex_unlock(&m->lock);
	if (!w)
		return;
	/* Assumed (unconfirmed): a changed callbackURL is HEAD-checked again. */
	if (url_changed && !head_check(m, res, url))
		return;
	pthread_mutex_lock(&m->lock);
	w = webhook_for_locked(m, res, id, token);
	if (!w)
		goto unlock;
	if (model && !mock_model_kind_locked(m, model)) {
		send_err(m, res, 400, "INVALID_VALUE", "invalid value for idModel");
		goto unlock;
	}
	if (duplicate_locked(m, url ? url : mock_str(w, "callbackURL"),
	                     model ? model : mock_str(w, "idModel"), token, id)) {
		send_err(m, res, 400, "DUPLICATE_WEBHOOK",
		         "A webhook with that callback, model, and token already exists");
		goto unlock;
	}
	if (url)
		json_object_set_new(w, "callbackURL", json_string(url));
	if (model)
		json_object_set_new(w, "idModel", json_string(model));
	if (mock_param(params, "description"))
		json_object_set_new(w, "description",
		                    json_string(mock_param(params, "description")));
	if (has_active > 0) {
		json_object_set_new(w, "active", json_boolean(active));
		if (active) {
			json_object_set_new(w, "consecutiveFailures", json_integer(0));
			json_object_set_new(w, "firstConsecutiveFailDate", json_null());
		}
	}
	mock_save_locked(m);
	mock_send_json(res, 200, mock_webhook_view(w));
unlock:
	pthread_mutex_unlock(&m->lock);
}

static void webhook_delete(struct mock *m, http_response *res, const char *id, const char *token)
{
	pthread_mutex_lock(&m->lock);
	json_t *w = webhook_for_locked(m, res, id, token);
	if (w) {
		mock_webhook_delete_locked(m, id);
		log_info("mock", "webhook %s deleted", id);
		mock_send_json(res, 200, json_pack("{s:n}", "_value"));
	}
	pthread_mutex_unlock(&m->lock);
}

static json_t *webhooks_of_locked(struct mock *m, const char *token)
{
	json_t *arr = json_array();
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(m->state, "webhooks"), i, w)
	{
		if (str_eq(mock_str(w, "token"), token))
			json_array_append_new(arr, mock_webhook_view(w));
	}
	return arr;
}

/* ---- boards, cards, lists, members ------------------------------------------------------------
 */

/* Honour `fields=a,b` loosely: keep only those (and id). "all" or absent
 * keeps everything. Steals @v, returns it filtered. */
static json_t *filter_fields(json_t *v, const char *fields)
{
	if (!v || !fields || !*fields || str_eq(fields, "all"))
		return v;
	json_t *out = json_object();
	json_object_set(out, "id", json_object_get(v, "id"));
	const char *p = fields;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char name[64];
		if (n && n < sizeof name) {
			memcpy(name, p, n);
			name[n] = '\0';
			json_t *x = json_object_get(v, name);
			if (x)
				json_object_set(out, name, x);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	json_decref(v);
	return out;
}

/* The views of the lists or cards (@cname) of board @b, as a new array. */
static json_t *on_board_locked(struct mock *m, json_t *b, const char *cname)
{
	json_t *arr = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(m->state, cname), i, e)
	{
		if (str_eq(mock_str(e, "idBoard"), mock_str(b, "id")))
			json_array_append_new(arr, str_eq(cname, "lists")
			                               ? mock_list_view_locked(m, e)
			                               : mock_card_view_locked(m, e));
	}
	return arr;
}

static json_t *board_full_locked(struct mock *m, json_t *b, json_t *params)
{
	json_t *v =
	    filter_fields(mock_board_view_locked(m, b, false), mock_param(params, "fields"));
	const char *lists = mock_param(params, "lists");
	const char *cards = mock_param(params, "cards");
	if (v && lists && !str_eq(lists, "none"))
		json_object_set_new(v, "lists", on_board_locked(m, b, "lists"));
	if (v && cards && !str_eq(cards, "none"))
		json_object_set_new(v, "cards", on_board_locked(m, b, "cards"));
	return v;
}

static bool valid_ref(const char *id)
{
	if (str_is_trello_id(id))
		return true;
	if (strlen(id) != 8)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

static void get_model(struct mock *m, http_response *res, json_t *params, const char *kind,
                      const char *id, const char *sub)
{
	if (!valid_ref(id) || (str_eq(kind, "lists") && !str_is_trello_id(id))) {
		send_err(m, res, 400, "INVALID_ID", "invalid id");
		return;
	}
	json_t *v = NULL;
	pthread_mutex_lock(&m->lock);
	if (str_eq(kind, "boards")) {
		json_t *b = mock_board_get_locked(m, id);
		if (b && !sub) {
			v = board_full_locked(m, b, params);
		} else if (b && (str_eq(sub, "lists") || str_eq(sub, "cards"))) {
			v = on_board_locked(m, b, sub);
		}
	} else if (str_eq(kind, "cards") && !sub) {
		json_t *c = mock_card_get_locked(m, id);
		if (c)
			v = filter_fields(mock_card_view_locked(m, c),
			                  mock_param(params, "fields"));
	} else if (str_eq(kind, "lists") && !sub) {
		json_t *l = mock_list_get_locked(m, id);
		if (l)
			v = filter_fields(mock_list_view_locked(m, l),
			                  mock_param(params, "fields"));
	}
	pthread_mutex_unlock(&m->lock);
	if (!v) {
		send_err(m, res, 404, "NOT_FOUND", "The requested resource was not found.");
		return;
	}
	mock_send_json(res, 200, v);
}

static void token_info(struct mock *m, http_response *res, const char *token)
{
	pthread_mutex_lock(&m->lock);
	json_t *t = mock_find_locked(m, "tokens", "token", token);
	json_t *v = NULL;
	if (t) {
		json_int_t exp = json_integer_value(json_object_get(t, "expiresMs"));
		char dexp[32];
		time_format_iso(exp, dexp);
		const char *scope = mock_str(t, "scope");
		bool write = strstr(scope, "write") != NULL;
		v = json_pack(
		    "{s:s, s:s, s:s, s:s, s:o, s:[{s:s, s:s, s:b, s:b}, {s:s, s:s, s:b, s:b}]}",
		    "id", mock_str(t, "id"), "identifier", mock_str(t, "identifier"), "idMember",
		    MOCK_MEMBER_ID, "dateCreated", mock_str(t, "dateCreated"), "dateExpires",
		    exp ? json_string(dexp) : json_null(), "permissions", "idModel", "*",
		    "modelType", "Board", "read", 1, "write", write, "idModel", "*", "modelType",
		    "Organization", "read", 1, "write", write);
	}
	pthread_mutex_unlock(&m->lock);
	if (!t) {
		send_err(m, res, 401, "INVALID_TOKEN", "invalid token");
		return;
	}
	mock_send_json(res, 200, v);
}

/* ---- the /1/ router ---------------------------------------------------------------------------
 */

size_t mock_split_path(const char *path, char *store, size_t storesz, char *seg[MOCK_MAX_SEGMENTS])
{
	if (!str_copy(store, storesz, path))
		return MOCK_MAX_SEGMENTS + 1;
	size_t n = 0;
	char *p = store;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		if (n == MOCK_MAX_SEGMENTS)
			return MOCK_MAX_SEGMENTS + 1;
		seg[n++] = p;
		char *e = strchr(p, '/');
		if (!e)
			break;
		*e = '\0';
		p = e + 1;
	}
	return n;
}

void mock_not_found(struct mock *m, http_response *res, http_request *req)
{
	send_err(m, res, 404, "NOT_FOUND", "Cannot %s %s", req->method, req->path);
}

static void trello_route(struct mock *m, http_request *req, http_response *res)
{
	char store[1024];
	char *seg[MOCK_MAX_SEGMENTS] = {0};
	size_t n = mock_split_path(req->path + 3, store, sizeof store, seg);
	const char *meth = req->method;
	json_t *params = NULL;
	struct auth a = {0};
	if (n == 0 || n > MOCK_MAX_SEGMENTS) {
		mock_not_found(m, res, req);
		return;
	}
	bool is_tokens = str_eq(seg[0], "tokens") && n >= 2;
	if (is_tokens && !str_is_trello_token(seg[1])) {
		/* Well-formed key check first, then the token. */
		params = mock_params(m, req, res, false);
		if (params && authenticate(m, req, res, params, NULL, &a))
			send_err(m, res, 401, "INVALID_TOKEN", "invalid token");
		goto out;
	}
	params = mock_params(m, req, res, false);
	if (!params)
		goto out;
	if (!authenticate(m, req, res, params, is_tokens ? seg[1] : NULL, &a))
		goto out;

	if (str_eq(seg[0], "webhooks")) {
		if (n == 1 && str_eq(meth, "POST"))
			webhook_create(m, res, params, a.token);
		else if (n == 2 && str_eq(meth, "GET"))
			webhook_get(m, res, seg[1], a.token, NULL);
		else if (n == 2 && str_eq(meth, "PUT"))
			webhook_put(m, res, params, seg[1], a.token);
		else if (n == 2 && str_eq(meth, "DELETE"))
			webhook_delete(m, res, seg[1], a.token);
		else if (n == 3 && str_eq(meth, "GET"))
			webhook_get(m, res, seg[1], a.token, seg[2]);
		else
			mock_not_found(m, res, req);
	} else if (is_tokens) {
		const char *tok = seg[1];
		pthread_mutex_lock(&m->lock);
		enum mock_token_state ts = mock_token_check_locked(m, tok);
		pthread_mutex_unlock(&m->lock);
		if (ts != MOCK_TOKEN_OK) {
			send_err(m, res, 401,
			         ts == MOCK_TOKEN_EXPIRED ? "EXPIRED_TOKEN" : "INVALID_TOKEN",
			         ts == MOCK_TOKEN_EXPIRED ? "expired token" : "invalid token");
		} else if (n == 2 && str_eq(meth, "GET")) {
			token_info(m, res, tok);
		} else if (n == 2 && str_eq(meth, "DELETE")) {
			pthread_mutex_lock(&m->lock);
			mock_token_revoke_locked(m, tok);
			pthread_mutex_unlock(&m->lock);
			mock_send_json(res, 200, json_pack("{s:n}", "_value"));
		} else if (n == 3 && str_eq(seg[2], "webhooks") && str_eq(meth, "GET")) {
			pthread_mutex_lock(&m->lock);
			json_t *arr = webhooks_of_locked(m, tok);
			pthread_mutex_unlock(&m->lock);
			mock_send_json(res, 200, arr);
		} else if (n == 3 && str_eq(seg[2], "webhooks") && str_eq(meth, "POST")) {
			webhook_create(m, res, params, tok);
		} else if (n >= 4 && n <= 5 && str_eq(seg[2], "webhooks")) {
			if (str_eq(meth, "GET"))
				webhook_get(m, res, seg[3], tok, n == 5 ? seg[4] : NULL);
			else if (n == 4 && str_eq(meth, "PUT"))
				webhook_put(m, res, params, seg[3], tok);
			else if (n == 4 && str_eq(meth, "DELETE"))
				webhook_delete(m, res, seg[3], tok);
			else
				mock_not_found(m, res, req);
		} else {
			mock_not_found(m, res, req);
		}
	} else if ((str_eq(seg[0], "boards") || str_eq(seg[0], "cards") ||
	            str_eq(seg[0], "lists")) &&
	           n == 3 && str_eq(seg[2], "actions") && str_eq(meth, "GET")) {
		if (!valid_ref(seg[1]) || (str_eq(seg[0], "lists") && !str_is_trello_id(seg[1])))
			send_err(m, res, 400, "INVALID_ID", "invalid id");
		else
			mock_actions_list(m, res, params, seg[0], seg[1]);
	} else if ((str_eq(seg[0], "boards") || str_eq(seg[0], "cards") ||
	            str_eq(seg[0], "lists")) &&
	           (n == 2 || n == 3) && str_eq(meth, "GET")) {
		get_model(m, res, params, seg[0], seg[1], n == 3 ? seg[2] : NULL);
	} else if (str_eq(seg[0], "members") && n >= 2 && str_eq(meth, "GET") &&
	           (str_eq(seg[1], "me") || str_eq(seg[1], MOCK_MEMBER_ID) ||
	            str_eq(seg[1], MOCK_MEMBER_USERNAME))) {
		pthread_mutex_lock(&m->lock);
		json_t *v = NULL;
		if (n == 2) {
			v = filter_fields(mock_member_view_locked(m), mock_param(params, "fields"));
		} else if (n == 3 && str_eq(seg[2], "boards")) {
			v = json_array();
			size_t i;
			json_t *b;
			json_array_foreach(json_object_get(m->state, "boards"), i, b)
			    json_array_append_new(v,
			                          filter_fields(mock_board_view_locked(m, b, false),
			                                        mock_param(params, "fields")));
		}
		pthread_mutex_unlock(&m->lock);
		if (v)
			mock_send_json(res, 200, v);
		else
			mock_not_found(m, res, req);
	} else if (str_eq(seg[0], "members") && n >= 2 && str_eq(meth, "GET")) {
		send_err(m, res, 404, "NOT_FOUND", "model not found");
	} else {
		mock_not_found(m, res, req);
	}
out:
	rate_headers(m, res, &a);
	json_decref(params);
}

int mock_handle(void *ctx, http_request *req, http_response *res)
{
	struct mock *m = ctx;
	const char *p = req->path ? req->path : "";
	if (str_starts(p, "/_mock/"))
		mock_control_route(m, req, res);
	else if (str_eq(p, "/1/authorize") || str_eq(p, "/1/authorize/"))
		mock_authorize(m, req, res);
	else if (str_starts(p, "/1/"))
		trello_route(m, req, res);
	else if (str_eq(p, "/") && (str_eq(req->method, "GET") || str_eq(req->method, "HEAD")))
		http_response_text(
		    res, 200,
		    "trello-mock: the Trello API is under /1/, the control API under /_mock/\n");
	else
		mock_not_found(m, res, req);
	return HTTP_DONE;
}

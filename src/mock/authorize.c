/* SPDX-License-Identifier: MIT */
/* authorize.c — trello-mock's /1/authorize: the consent page an application
 * sends its user to (key, name, expiration, scope, return_url), and its form,
 * which mints a token and returns it in the return URL's fragment
 * (#token=...) or on a page, like Trello's. */
#include <string.h>

#include "mock/mock.h"

#define PENDING_AUTH_MAX 1000
#define PENDING_AUTH_TTL_MS (10 * 60 * 1000)

static const char *expiration_ok(const char *e)
{
	static const char *const ok[] = {"1hour", "1day", "30days", "never"};
	for (size_t i = 0; i < TH_ARRAY_LEN(ok); i++)
		if (str_eq(e, ok[i]))
			return ok[i];
	return NULL;
}

static bool scope_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	const char *p = s;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (!((n == 4 && !strncmp(p, "read", 4)) || (n == 5 && !strncmp(p, "write", 5)) ||
		      (n == 7 && !strncmp(p, "account", 7))))
			return false;
		p += n;
		if (*p == ',')
			p++;
	}
	return true;
}

/* POST /1/authorize (the page's form): mint a token for the pending
 * request it names, or refuse; then send the browser back (or show it). */
static void authorize_post(struct mock *m, json_t *params, http_response *res, buf *page)
{
	const char *rk = mock_param(params, "requestKey");
	bool allow = mock_param(params, "approve") != NULL;
	pthread_mutex_lock(&m->lock);
	json_t *pa = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(m->pending_auth, i, e)
	{
		if (rk && str_eq(mock_str(e, "requestKey"), rk)) {
			pa = json_incref(e);
			json_array_remove(m->pending_auth, i);
			break;
		}
	}
	if (!pa ||
	    time_mono_ms() - json_integer_value(json_object_get(pa, "at")) > PENDING_AUTH_TTL_MS) {
		pthread_mutex_unlock(&m->lock);
		json_decref(pa);
		http_response_text(res, 400,
		                   "This authorization request has expired or was already used.");
		return;
	}
	const char *ret = mock_str(pa, "return_url");
	char target[MOCK_URL_MAX + 200];
	char base[MOCK_URL_MAX + 1];
	str_copy(base, sizeof base, ret);
	char *hash = strchr(base, '#');
	if (hash)
		*hash = '\0';
	if (allow) {
		const char *exp = mock_str(pa, "expiration");
		int64_t ms = str_eq(exp, "1hour")    ? 3600000LL
		             : str_eq(exp, "1day")   ? 86400000LL
		             : str_eq(exp, "30days") ? 30LL * 86400000LL
		                                     : 0;
		json_t *t =
		    mock_token_create_locked(m, NULL, ms ? time_now_ms() + ms : 0,
		                             mock_str(pa, "scope"), mock_str(pa, "name"), false);
		char tok[96] = "";
		if (t)
			str_copy(tok, sizeof tok, mock_str(t, "token"));
		mock_save_locked(m);
		pthread_mutex_unlock(&m->lock);
		if (!t) {
			json_decref(pa);
			http_response_text(res, 500, "out of memory");
			return;
		}
		if (*ret) {
			str_printf(target, sizeof target, "%s#token=%s", base, tok);
		} else {
			/* No return_url: Trello shows the token on a page. */
			buf_puts(page,
			         "<!doctype html><meta charset=utf-8><title>Token</title>"
			         "<p>You have granted access. Your token is:</p><pre id=token>");
			buf_puts(page, tok);
			buf_puts(page, "</pre>");
			http_response_body(res, 200, "text/html; charset=utf-8", page->data,
			                   page->len);
			json_decref(pa);
			return;
		}
	} else {
		pthread_mutex_unlock(&m->lock);
		if (*ret) {
			str_printf(target, sizeof target, "%s#error=access_denied", base);
		} else {
			json_decref(pa);
			http_response_text(res, 200, "Access denied.");
			return;
		}
	}
	json_decref(pa);
	http_response_header(res, "Location", target);
	http_response_text(res, 302, "Found. Redirecting to %s", target);
}

/* The authorize page; see mock.h. */
void mock_authorize(struct mock *m, http_request *req, http_response *res)
{
	json_t *params = mock_params(m, req, res, false);
	buf page;
	buf_init(&page, 1 << 20);
	if (!params)
		goto out;
	if (str_eq(req->method, "POST")) {
		authorize_post(m, params, res, &page);
		goto out;
	}
	if (!str_eq(req->method, "GET")) {
		mock_not_found(m, res, req);
		goto out;
	}
	const char *key = mock_param(params, "key");
	const char *name =
	    mock_param(params, "name") ? mock_param(params, "name") : "An application";
	const char *exp =
	    mock_param(params, "expiration") ? mock_param(params, "expiration") : "30days";
	const char *scope = mock_param(params, "scope") ? mock_param(params, "scope") : "read";
	const char *rt =
	    mock_param(params, "response_type") ? mock_param(params, "response_type") : "token";
	const char *cm = mock_param(params, "callback_method")
	                     ? mock_param(params, "callback_method")
	                     : "fragment";
	const char *ret = mock_param(params, "return_url") ? mock_param(params, "return_url") : "";
	if (!str_eq(key, m->cfg.key)) {
		http_response_text(res, 401, "invalid key");
		goto out;
	}
	if (!expiration_ok(exp) || !scope_ok(scope) || !str_eq(rt, "token") ||
	    !(str_eq(cm, "fragment") || str_eq(cm, "postMessage")) || strlen(name) > 256 ||
	    (*ret && !mock_valid_url(ret))) {
		const char *what = !expiration_ok(exp)              ? "expiration"
		                   : !scope_ok(scope)               ? "scope"
		                   : !str_eq(rt, "token")           ? "response_type"
		                   : strlen(name) > 256             ? "name"
		                   : (*ret && !mock_valid_url(ret)) ? "return_url"
		                                                    : "callback_method";
		http_response_text(res, 400, "invalid value for %s", what);
		goto out;
	}
	char rk[ID_LEN + 1];
	if (rand_id(rk)) {
		http_response_text(res, 500, "no randomness");
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	/* Forget stale requests; keep the list bounded. */
	for (size_t i = json_array_size(m->pending_auth); i-- > 0;)
		if (time_mono_ms() - json_integer_value(json_object_get(
		                         json_array_get(m->pending_auth, i), "at")) >
		    PENDING_AUTH_TTL_MS)
			json_array_remove(m->pending_auth, i);
	while (json_array_size(m->pending_auth) >= PENDING_AUTH_MAX)
		json_array_remove(m->pending_auth, 0);
	json_array_append_new(m->pending_auth,
	                      json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "requestKey", rk, "name",
	                                name, "expiration", exp, "scope", scope, "return_url", ret,
	                                "at", (json_int_t)time_mono_ms()));
	pthread_mutex_unlock(&m->lock);
	/* Everything the application chose is user input: escape it. */
	buf_puts(&page, "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
	                "<title>Authorize ");
	html_escape(&page, name);
	buf_puts(&page, " | trello-mock</title></head><body>\n<h1>Let <strong id=app>");
	html_escape(&page, name);
	buf_puts(&page, "</strong> use your account?</h1>\n<p>Signed in as ");
	html_escape(&page, MOCK_MEMBER_FULLNAME);
	buf_puts(&page,
	         " (@" MOCK_MEMBER_USERNAME ").</p>\n<p>It will be able to: <span id=scope>");
	html_escape(&page, scope);
	buf_puts(&page, "</span>. Access expires: <span id=expiration>");
	html_escape(&page, exp);
	buf_puts(&page, "</span>.</p>\n<form method=post action=\"/1/authorize\">"
	                "<input type=hidden name=requestKey value=\"");
	html_escape(&page, rk);
	buf_puts(&page, "\"><button type=submit name=approve value=Allow id=approve>Allow</button> "
	                "<button type=submit name=deny value=Deny id=deny>Deny</button></form>\n"
	                "</body></html>\n");
	http_response_header(res, "X-Frame-Options", "DENY");
	http_response_header(res, "Cache-Control", "no-store");
	http_response_body(res, 200, "text/html; charset=utf-8", page.data, page.len);
out:
	buf_free(&page);
	json_decref(params);
}

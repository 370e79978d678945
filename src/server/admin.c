/* SPDX-License-Identifier: MIT */
/*
 * admin.c — the web admin's front door: routing under /admin, sign-in and
 * sign-out, sessions, CSRF checks and login throttling.
 *
 * Sessions: the cookie carries 32 random bytes (base64url); the store keeps
 * only their SHA-256, the user, a per-session CSRF token and the expiry
 * (12 hours after the last use;
 * idle expiry, slid by the service layer). The password check and the
 * login throttle (per (name, address) and per address) are the service
 * layer's (service/users.c); this file only speaks HTTP about them.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "server/login_token.h"
#include "server/server.h"
#include "service/service.h"
#include "util/log.h"

#define ADMIN_COOKIE_MAX 128

/* ---- sessions ------------------------------------------------------------------------- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok = -1;

static void sodium_setup(void)
{
	sodium_ok = sodium_init() >= 0 ? 0 : -1;
}

/* 32 random bytes as base64url without padding (43 characters). */
static int random_b64url(char out[48])
{
	unsigned char raw[32];
	if (rand_fill(raw, sizeof raw))
		return TH_EIO;
	sodium_bin2base64(out, 48, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
	return 0;
}

static bool cookie_value_ok(const char *v)
{
	size_t n = strlen(v);
	return n == 43 && str_is_b64url(v, n);
}

static void set_cookie(admin_req *r, const char *name, const char *value, const char *path,
                       int64_t max_age_s)
{
	char c[400];
	str_printf(c, sizeof c, "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Strict%s", name,
	           value, path, (long long)max_age_s, r->sc->cfg->secure_cookies ? "; Secure" : "");
	http_response_header(r->res, "Set-Cookie", c);
}

/* Look up the session of the request's cookie; fills r->user / r->csrf and
 * slides the expiry. Returns true when signed in. */
static bool session_load(admin_req *r)
{
	char sid[ADMIN_COOKIE_MAX];
	if (!admin_cookie(r->req, ADMIN_SESSION_COOKIE, sid, sizeof sid) || !cookie_value_ok(sid))
		return false;
	admin_sha256_hex(sid, strlen(sid), r->id_hash);
	sodium_memzero(sid, sizeof sid);
	user_session s;
	th_error err = {0, {0}};
	int rc = svc_session_load(r->sc, r->id_hash, &s, &err);
	if (rc) {
		if (rc != TH_ENOTFOUND)
			log_warn("admin", "reading a session failed: %s", err.msg);
		return false;
	}
	bool ok =
	    str_copy(r->user, sizeof r->user, s.user) && str_copy(r->csrf, sizeof r->csrf, s.csrf);
	user_session_clear(&s);
	if (!ok)
		r->user[0] = '\0';
	return ok;
}

bool admin_session_check(svc_ctx *sc, http_request *req, char id_hash[65])
{
	pthread_once(&sodium_once, sodium_setup);
	id_hash[0] = '\0';
	if (sodium_ok)
		return false;
	admin_req r;
	memset(&r, 0, sizeof r);
	r.sc = sc;
	r.req = req;
	bool ok = session_load(&r);
	memcpy(id_hash, r.id_hash, 65);
	sodium_memzero(r.csrf, sizeof r.csrf);
	return ok;
}

/* Constant-time comparison of the form's csrf field with the session's. */
static bool csrf_ok(const admin_req *r)
{
	const char *got = admin_field(r, "csrf");
	size_t n = strlen(r->csrf);
	if (!got || n == 0 || strlen(got) != n)
		return false;
	return sodium_memcmp(got, r->csrf, n) == 0;
}

/* ---- login / logout ----------------------------------------------------------------------- */

/* Only a path inside the admin, never another host: "/admin/..." without
 * "//", backslashes or control characters. Otherwise the dashboard. */
static const char *safe_next(const char *next)
{
	if (!next || !str_starts(next, "/admin/") || strstr(next, "//") || strchr(next, '\\') ||
	    strlen(next) > 512)
		return "/admin/";
	for (const unsigned char *p = (const unsigned char *)next; *p; p++)
		if (*p < 0x21 || *p == 0x7f)
			return "/admin/";
	return next;
}

/* The key of the sign-in form's tokens (login_token.h): made once per
 * process, from TRELLOHOOK_SECRET_KEY when set. Owned by this file. */
static pthread_mutex_t login_key_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char login_key[LOGIN_TOKEN_KEY_LEN];
static bool login_key_set;

static int login_key_get(const admin_req *r, unsigned char out[LOGIN_TOKEN_KEY_LEN])
{
	int rc = 0;
	pthread_mutex_lock(&login_key_mu);
	if (!login_key_set) {
		const th_config *cfg = r->sc->cfg;
		rc = login_token_key(login_key, cfg->has_secret_key ? cfg->secret_key : NULL);
		login_key_set = rc == 0;
	}
	if (!rc)
		memcpy(out, login_key, LOGIN_TOKEN_KEY_LEN);
	pthread_mutex_unlock(&login_key_mu);
	return rc;
}

static int login_page(admin_req *r, int status, const char *error, const char *name)
{
	/* Double-submit token against login CSRF: the same value in a cookie
	 * (Path=/admin/login) and in the form, made and signed by us. */
	char lt[LOGIN_TOKEN_MAX];
	unsigned char key[LOGIN_TOKEN_KEY_LEN];
	int rc = login_key_get(r, key);
	if (!rc)
		rc = login_token_make(key, time_now_ms() / 1000, lt);
	sodium_memzero(key, sizeof key);
	if (rc)
		return admin_error_page(r, 500, "Error", "no randomness available");
	set_cookie(r, ADMIN_LOGIN_COOKIE, lt, "/admin/login", LOGIN_TOKEN_TTL_S);
	buf b;
	admin_page_begin(r, &b, "Sign in", "");
	buf_puts(&b, "<div class=\"card login\">\n");
	if (error)
		admin_notice(&b, "error", error);
	buf_puts(&b, "<form class=stack method=post action=\"/admin/login\">\n"
	             "<input type=hidden name=login_token value=\"");
	buf_puts(&b, lt);
	buf_puts(&b, "\">\n");
	admin_input(&b, "type=hidden name=next",
	            safe_next(http_arg(r->req, "next") ? http_arg(r->req, "next")
	                                               : admin_field(r, "next")));
	buf_puts(&b, "\n<label for=user>User name</label>\n");
	admin_input(&b,
	            "type=text id=user name=user autocomplete=username required autofocus "
	            "maxlength=64",
	            name);
	buf_puts(&b,
	         "\n<label for=password>Password</label>\n"
	         "<input type=password id=password name=password autocomplete=current-password "
	         "required>\n<button type=submit>Sign in</button>\n</form>\n"
	         "<p class=\"muted small\">Create users with <code>trellohook user add NAME</code> "
	         "(password on stdin).</p>\n</div>\n");
	admin_page_end(&b);
	return admin_send(r, status, &b);
}

static int login_post(admin_req *r)
{
	const char *user = admin_field(r, "user");
	const char *pw = admin_field(r, "password");
	const char *lt = admin_field(r, "login_token");
	char cookie[ADMIN_COOKIE_MAX];
	unsigned char key[LOGIN_TOKEN_KEY_LEN];
	/* the form's token must be the cookie's AND one we made, not expired */
	bool ok = lt && admin_cookie(r->req, ADMIN_LOGIN_COOKIE, cookie, sizeof cookie) &&
	          strlen(lt) == strlen(cookie) && sodium_memcmp(lt, cookie, strlen(cookie)) == 0;
	if (ok) {
		if (login_key_get(r, key))
			return admin_error_page(r, 500, "Error", "no randomness available");
		enum login_token_check c = login_token_check(key, cookie, time_now_ms() / 1000);
		sodium_memzero(key, sizeof key);
		if (c != LOGIN_TOKEN_OK)
			log_info("admin", "sign-in refused: the form's token is %s",
			         c == LOGIN_TOKEN_EXPIRED  ? "expired"
			         : c == LOGIN_TOKEN_FORGED ? "not one of ours (forged)"
			                                   : "malformed");
		ok = c == LOGIN_TOKEN_OK;
	}
	if (!ok)
		return admin_error_page(r, 403, "Forbidden",
		                        "The sign-in form expired or did not come from this site. "
		                        "Reload the sign-in page and try again.");
	if (!user || !*user || strlen(user) > ADMIN_USER_MAX || !pw || !*pw)
		return login_page(r, 400, "Enter a user name and a password.", user);
	const char *addr = r->req->remote ? r->req->remote : "";
	int64_t wait = 0;
	th_error err = {0, {0}};
	int rc = svc_login_check(r->sc, user, pw, addr, &wait, &err);
	if (rc == TH_EUNAVAIL && wait > 0) {
		long long min = (wait + 59999) / 60000;
		char msg[128], ra[32];
		str_printf(msg, sizeof msg, "Too many attempts; try again in %lld minute%s.", min,
		           min == 1 ? "" : "s");
		str_printf(ra, sizeof ra, "%lld", (long long)((wait + 999) / 1000));
		http_response_header(r->res, "Retry-After", ra);
		return login_page(r, 429, msg, user);
	}
	if (rc == TH_EAUTH)
		return login_page(r, 401, "Wrong user name or password.", user);
	if (rc) {
		log_error("admin", "reading a user failed: %s", err.msg);
		return admin_error_page(r, 500, "Error", "The store could not be read.");
	}

	char sid[48], csrf[48];
	if (random_b64url(sid) || random_b64url(csrf))
		return admin_error_page(r, 500, "Error", "no randomness available");
	char id_hash[65];
	admin_sha256_hex(sid, strlen(sid), id_hash);
	int64_t max_age_ms = 0;
	if (svc_session_start(r->sc, id_hash, user, csrf, &max_age_ms, &err)) {
		log_error("admin", "storing a session failed: %s", err.msg);
		return admin_error_page(r, 500, "Error", "The session could not be stored.");
	}
	log_info("admin", "user signed in from %s", addr);
	admin_redirect(r, safe_next(admin_field(r, "next")));
	set_cookie(r, ADMIN_SESSION_COOKIE, sid, "/admin", max_age_ms / 1000);
	sodium_memzero(sid, sizeof sid);
	return HTTP_DONE;
}

static int logout_post(admin_req *r)
{
	th_error err = {0, {0}};
	if (svc_session_end(r->sc, r->id_hash, &err) && err.code != TH_ENOTFOUND)
		log_warn("admin", "deleting a session failed: %s", err.msg);
	admin_redirect(r, "/admin/login");
	set_cookie(r, ADMIN_SESSION_COOKIE, "", "/admin", 0);
	return HTTP_DONE;
}

/* ---- routing --------------------------------------------------------------------------- */

static int method_not_allowed(admin_req *r, const char *allow)
{
	http_response_header(r->res, "Allow", allow);
	return admin_error_page(r, 405, "Method not allowed",
	                        "This page does not take that method.");
}

static int route_signed_in(admin_req *r)
{
	const char *p = r->rest;
	if (str_eq(p, "/logout"))
		return r->post ? logout_post(r) : method_not_allowed(r, "POST");
	if (str_eq(p, "/"))
		return r->get ? admin_dashboard(r) : method_not_allowed(r, "GET");
	if (str_eq(p, "/events"))
		return r->get ? admin_events(r) : method_not_allowed(r, "GET");
	if (str_starts(p, "/events/"))
		return admin_event(r, p + strlen("/events/"));
	if (str_eq(p, "/deliveries"))
		return r->get ? admin_deliveries(r) : method_not_allowed(r, "GET");
	if (str_starts(p, "/deliveries/"))
		return admin_delivery_action(r, p + strlen("/deliveries/"));
	if (str_eq(p, "/webhooks") || str_starts(p, "/webhooks/"))
		return admin_webhooks(r, p + strlen("/webhooks"));
	if (str_eq(p, "/tokens") || str_starts(p, "/tokens/"))
		return admin_tokens(r, p + strlen("/tokens"));
	if (str_eq(p, "/sync"))
		return admin_sync(r);
	return admin_error_page(r, 404, "Not found", "There is no such page in the admin.");
}

int server_admin(svc_ctx *sc, http_request *req, http_response *res, const char *rest)
{
	pthread_once(&sodium_once, sodium_setup);
	admin_req r;
	memset(&r, 0, sizeof r);
	r.sc = sc;
	r.req = req;
	r.res = res;
	r.rest = rest;
	r.get = str_eq(req->method, "GET") || str_eq(req->method, "HEAD");
	r.post = str_eq(req->method, "POST");
	int ret = HTTP_DONE;
	if (sodium_ok) {
		http_response_text(res, 500, "libsodium could not be initialised\n");
		goto out;
	}
	if (str_eq(rest, "")) {
		ret = admin_redirect(&r, "/admin/");
		goto out;
	}
	if (str_starts(rest, "/static/")) {
		if (!r.get)
			ret = method_not_allowed(&r, "GET");
		else if (!admin_static(&r, rest + strlen("/static/")))
			http_response_text(res, 404, "not found\n");
		goto out;
	}
	if (r.post && admin_form_parse(&r)) {
		ret = admin_error_page(&r, 400, "Bad request",
		                       "The form data could not be read: it must be URL-encoded "
		                       "UTF-8 text (at most 64 fields).");
		goto out;
	}
	bool signed_in = session_load(&r);
	if (str_eq(rest, "/login")) {
		if (r.post)
			ret = login_post(&r);
		else if (r.get && signed_in)
			ret = admin_redirect(&r, safe_next(http_arg(req, "next")));
		else if (r.get)
			ret = login_page(&r, 200, NULL, NULL);
		else
			ret = method_not_allowed(&r, "GET, POST");
		goto out;
	}
	if (!signed_in) {
		/* Every other page needs a session: back to the login page, and here
		 * afterwards (GET only; a form post would be lost anyway). */
		buf loc;
		buf_init(&loc, 2048);
		buf_puts(&loc, "/admin/login");
		if (r.get && !str_eq(rest, "/")) {
			buf_puts(&loc, "?next=");
			admin_urlenc(&loc, safe_next(req->path));
		}
		ret = admin_redirect(&r, loc.data && loc.len < loc.max ? loc.data : "/admin/login");
		buf_free(&loc);
		goto out;
	}
	if (r.post && !csrf_ok(&r)) {
		log_warn("admin", "form post without a valid CSRF token to %s", req->path);
		ret =
		    admin_error_page(&r, 403, "Forbidden",
		                     "This form is no longer valid (missing or wrong CSRF token). "
		                     "Reload the page and try again.");
		goto out;
	}
	if (!r.get && !r.post) {
		ret = method_not_allowed(&r, "GET, POST");
		goto out;
	}
	ret = route_signed_in(&r);
out:
	admin_req_clear(&r);
	return ret;
}

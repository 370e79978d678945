/* SPDX-License-Identifier: MIT */
/* test_admin.c — the web admin driven without sockets: requests built by
 * hand, answered by server_admin() over a real SQLite store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/admin.h"
#include "server/login_token.h"
#include "server/server.h"
#include "service/service.h"
#include "app/app.h"
#include "util/util.h"

#define PASSWORD "a long enough password"

typedef struct fx {
	char dir[64];
	char dburl[128];
	app *a;
	char cookie[128]; /* "trellohook_session=..." after sign-in */
	char csrf[64];
} fx;

static fx *g_fx;

static const char *fake_env(const char *name)
{
	if (str_eq(name, "DATABASE_URL"))
		return g_fx->dburl;
	if (str_eq(name, "CALLBACK_DOMAIN"))
		return "https://hooks.example.org";
	if (str_eq(name, "TRELLO_API_SECRET"))
		return "unit-test-secret-0123456789";
	if (str_eq(name, "TRELLO_API_KEY"))
		return "0123456789abcdef0123456789abcdef";
	return NULL;
}

/* One request through the admin; @res must be released by the caller. */
static void run(fx *f, const char *method, const char *path, const char *body, const char *cookie,
                http_response *res)
{
	http_request req;
	memset(&req, 0, sizeof req);
	req.method = method;
	req.path = path;
	req.remote = "192.0.2.7";
	if (cookie) {
		req.headers[req.nheaders++] = (http_pair){"Cookie", cookie};
	}
	if (body) {
		req.headers[req.nheaders++] =
		    (http_pair){"Content-Type", "application/x-www-form-urlencoded"};
		req.body = body;
		req.body_len = strlen(body);
	}
	/* split ?query into args (tests use only simple a=b&c=d without escapes) */
	static char qbuf[512];
	static char pbuf[512];
	const char *q = strchr(path, '?');
	if (q) {
		str_copy(pbuf, sizeof pbuf, path);
		pbuf[q - path] = '\0';
		req.path = pbuf;
		str_copy(qbuf, sizeof qbuf, q + 1);
		char *save = NULL, *p = qbuf;
		(void)save;
		while (p && *p && req.nargs < HTTP_MAX_ARGS) {
			char *amp = strchr(p, '&');
			if (amp)
				*amp = '\0';
			char *eq = strchr(p, '=');
			if (eq)
				*eq = '\0';
			req.args[req.nargs++] = (http_pair){p, eq ? eq + 1 : ""};
			p = amp ? amp + 1 : NULL;
		}
	}
	http_response_init(res);
	assert_int_equal(server_admin(app_svc(f->a), &req, res, req.path + strlen("/admin")),
	                 HTTP_DONE);
}

static const char *set_cookie_value(http_response *res, const char *name, char *out, size_t n)
{
	const char *sc = http_response_get_header(res, "Set-Cookie");
	if (!sc || !str_starts(sc, name))
		return NULL;
	const char *v = sc + strlen(name) + 1;
	size_t l = strcspn(v, ";");
	if (l + 1 > n)
		return NULL;
	memcpy(out, v, l);
	out[l] = '\0';
	return out;
}

static void sign_in(fx *f)
{
	http_response res;
	run(f, "GET", "/admin/login", NULL, NULL, &res);
	assert_int_equal(res.status, 200);
	char lt[LOGIN_TOKEN_MAX];
	assert_non_null(set_cookie_value(&res, ADMIN_LOGIN_COOKIE, lt, sizeof lt));
	http_response_clear(&res);
	char body[256], cookie[128];
	str_printf(body, sizeof body, "login_token=%s&user=ann&password=a+long+enough+password",
	           lt);
	str_printf(cookie, sizeof cookie, ADMIN_LOGIN_COOKIE "=%s", lt);
	run(f, "POST", "/admin/login", body, cookie, &res);
	assert_int_equal(res.status, 303);
	char sid[64];
	assert_non_null(set_cookie_value(&res, ADMIN_SESSION_COOKIE, sid, sizeof sid));
	/* Secure because CALLBACK_DOMAIN is https. */
	assert_non_null(strstr(http_response_get_header(&res, "Set-Cookie"), "; Secure"));
	http_response_clear(&res);
	str_printf(f->cookie, sizeof f->cookie, ADMIN_SESSION_COOKIE "=%s", sid);
	run(f, "GET", "/admin/", NULL, f->cookie, &res);
	assert_int_equal(res.status, 200);
	const char *c = strstr(res.body.data, "name=csrf value=\"");
	assert_non_null(c);
	c += strlen("name=csrf value=\"");
	size_t l = strcspn(c, "\"");
	assert_true(l < sizeof f->csrf);
	memcpy(f->csrf, c, l);
	f->csrf[l] = '\0';
	http_response_clear(&res);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	g_fx = f;
	str_copy(f->dir, sizeof f->dir, "/tmp/th-admin-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	str_printf(f->dburl, sizeof f->dburl, "sqlite:%s/th.db", f->dir);
	th_config cfg;
	th_error err = {0, {0}};
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_int_equal(app_new(&f->a, &cfg, &err), 0);
	assert_true(sodium_init() >= 0);
	char hash[crypto_pwhash_STRBYTES];
	assert_int_equal(crypto_pwhash_str(hash, PASSWORD, strlen(PASSWORD),
	                                   crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN),
	                 0);
	assert_int_equal(store_user_put(f->a->st, "ann", hash, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	th_app_free(f->a);
	char cmd[128];
	str_printf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

static void test_needs_session(void **state)
{
	fx *f = *state;
	static const char *const paths[] = {
	    "/admin/",           "/admin/events", "/admin/webhooks", "/admin/tokens",
	    "/admin/deliveries", "/admin/sync",   "/admin/events/x", "/admin/zzz"};
	for (size_t i = 0; i < TH_ARRAY_LEN(paths); i++) {
		http_response res;
		run(f, "GET", paths[i], NULL, "trellohook_session=nope", &res);
		assert_int_equal(res.status, 303);
		assert_true(str_starts(http_response_get_header(&res, "Location"), "/admin/login"));
		assert_string_equal(http_response_get_header(&res, "X-Frame-Options"), "DENY");
		http_response_clear(&res);
	}
}

/* The sign-in form's token without sockets: well-formed, forged, expired,
 * from another key, swapped fields, hostile bytes. */
static void test_login_token(void **state)
{
	(void)state;
	unsigned char k1[LOGIN_TOKEN_KEY_LEN], k2[LOGIN_TOKEN_KEY_LEN], k3[LOGIN_TOKEN_KEY_LEN];
	unsigned char secret[32];
	memset(secret, 9, sizeof secret);
	assert_int_equal(login_token_key(k1, NULL), 0);
	assert_int_equal(login_token_key(k2, NULL), 0);
	assert_memory_not_equal(k1, k2, sizeof k1); /* random per process */
	assert_int_equal(login_token_key(k3, secret), 0);
	unsigned char k3b[LOGIN_TOKEN_KEY_LEN];
	assert_int_equal(login_token_key(k3b, secret), 0);
	assert_memory_equal(k3, k3b, sizeof k3);        /* stable from the secret key */
	assert_memory_not_equal(k3, secret, sizeof k3); /* not the sealing key itself */
	int64_t now = 1800000000;
	char t[LOGIN_TOKEN_MAX], u[LOGIN_TOKEN_MAX];
	assert_int_equal(login_token_make(k1, now, t), 0);
	assert_int_equal(login_token_make(k1, now, u), 0);
	assert_string_not_equal(t, u); /* a fresh nonce each time */
	/* well-formed, in time (and a little clock skew either way) */
	assert_int_equal(login_token_check(k1, t, now), LOGIN_TOKEN_OK);
	assert_int_equal(login_token_check(k1, t, now + LOGIN_TOKEN_TTL_S), LOGIN_TOKEN_OK);
	assert_int_equal(login_token_check(k1, t, now - LOGIN_TOKEN_SKEW_S), LOGIN_TOKEN_OK);
	/* expired, or from the future */
	assert_int_equal(login_token_check(k1, t, now + LOGIN_TOKEN_TTL_S + 1),
	                 LOGIN_TOKEN_EXPIRED);
	assert_int_equal(login_token_check(k1, t, now - LOGIN_TOKEN_SKEW_S - 1),
	                 LOGIN_TOKEN_EXPIRED);
	/* another key's token */
	assert_int_equal(login_token_check(k2, t, now), LOGIN_TOKEN_FORGED);
	assert_int_equal(login_token_check(k3, t, now), LOGIN_TOKEN_FORGED);
	/* a later time pasted onto a valid mac (extending its life) */
	char f[LOGIN_TOKEN_MAX];
	str_printf(f, sizeof f, "%lld%s", (long long)now + 7200, strchr(t, '.'));
	assert_int_equal(login_token_check(k1, f, now + 7200), LOGIN_TOKEN_FORGED);
	/* swapped: the nonce of one with the mac of the other */
	const char *tn = strchr(t, '.') + 1, *um = strrchr(u, '.') + 1;
	str_printf(f, sizeof f, "%lld.%.22s.%s", (long long)now, tn, um);
	assert_int_equal(login_token_check(k1, f, now), LOGIN_TOKEN_FORGED);
	/* one bit of the mac flipped (still base64url) */
	str_copy(f, sizeof f, t);
	char *last = f + strlen(f) - 2;
	*last = *last == 'A' ? 'B' : 'A';
	assert_int_equal(login_token_check(k1, f, now), LOGIN_TOKEN_FORGED);
	/* an attacker-chosen value of the old form (43 base64url characters) */
	assert_int_equal(login_token_check(k1, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", now),
	                 LOGIN_TOKEN_MALFORMED);
	/* malformed, truncated, oversized, hostile, non-UTF-8 */
	static const char *const bad[] = {
	    "",
	    ".",
	    "..",
	    "1..",
	    "abc.def.ghi",
	    "-1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "01800000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAA+.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xff\xfe",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
	    "9999999999999.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++)
		assert_int_equal(login_token_check(k1, bad[i], now), LOGIN_TOKEN_MALFORMED);
	assert_int_equal(login_token_check(k1, NULL, now), LOGIN_TOKEN_MALFORMED);
	char big[4096];
	memset(big, '1', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(login_token_check(k1, big, now), LOGIN_TOKEN_MALFORMED);
	/* a truncated good token */
	str_copy(f, sizeof f, t);
	f[strlen(f) - 1] = '\0';
	assert_int_equal(login_token_check(k1, f, now), LOGIN_TOKEN_MALFORMED);
}

/* Through the handler: a cookie and form agreeing on a value we did not make
 * is refused; the page's own token signs in (sign_in). */
static void test_login_forged_token(void **state)
{
	fx *f = *state;
	static const char *const forged[] = {
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    "1800000000.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(forged); i++) {
		char body[256], cookie[160];
		str_printf(body, sizeof body,
		           "login_token=%s&user=ann&password=a+long+enough+password", forged[i]);
		str_printf(cookie, sizeof cookie, ADMIN_LOGIN_COOKIE "=%s", forged[i]);
		http_response res;
		run(f, "POST", "/admin/login", body, cookie, &res);
		assert_int_equal(res.status, 403);
		assert_null(http_response_get_header(&res, "Set-Cookie"));
		http_response_clear(&res);
	}
	/* a token of ours in the form but another in the cookie (swapped) */
	http_response res;
	run(f, "GET", "/admin/login", NULL, NULL, &res);
	char lt[LOGIN_TOKEN_MAX];
	assert_non_null(set_cookie_value(&res, ADMIN_LOGIN_COOKIE, lt, sizeof lt));
	http_response_clear(&res);
	run(f, "GET", "/admin/login", NULL, NULL, &res);
	char lt2[LOGIN_TOKEN_MAX];
	assert_non_null(set_cookie_value(&res, ADMIN_LOGIN_COOKIE, lt2, sizeof lt2));
	http_response_clear(&res);
	char body[256], cookie[160];
	str_printf(body, sizeof body, "login_token=%s&user=ann&password=a+long+enough+password",
	           lt);
	str_printf(cookie, sizeof cookie, ADMIN_LOGIN_COOKIE "=%s", lt2);
	run(f, "POST", "/admin/login", body, cookie, &res);
	assert_int_equal(res.status, 403);
	http_response_clear(&res);
	sign_in(f); /* and a well-formed one works */
}

static void test_sign_in_csrf_logout(void **state)
{
	fx *f = *state;
	sign_in(f);
	http_response res;
	run(f, "POST", "/admin/logout", "csrf=wrong", f->cookie, &res);
	assert_int_equal(res.status, 403);
	http_response_clear(&res);
	run(f, "GET", "/admin/logout", NULL, f->cookie, &res);
	assert_int_equal(res.status, 405);
	http_response_clear(&res);
	char body[128];
	str_printf(body, sizeof body, "csrf=%s", f->csrf);
	run(f, "POST", "/admin/logout", body, f->cookie, &res);
	assert_int_equal(res.status, 303);
	assert_string_equal(http_response_get_header(&res, "Location"), "/admin/login");
	http_response_clear(&res);
	run(f, "GET", "/admin/", NULL, f->cookie, &res);
	assert_int_equal(res.status, 303);
	http_response_clear(&res);
}

/* Store one payload file as an event of webhook "wh1" (its row made on first
 * use: events are stored only under webhooks that exist); returns its id
 * (malloc'd). */
static char *put_event(fx *f, const char *body, size_t len)
{
	event ev;
	memset(&ev, 0, sizeof ev);
	th_error err = {0, {0}};
	webhook w = {0};
	if (store_webhook_get(f->a->st, "wh1", &w, &err) == TH_ENOTFOUND) {
		w = (webhook){.id = (char *)"wh1",
		              .id_model = (char *)"5f0000000000000000000003",
		              .callback_url = (char *)"https://example.test/callbacks/wh1",
		              .token = (char *)"t",
		              .state = WEBHOOK_ACTIVE};
		assert_int_equal(store_webhook_insert(f->a->st, &w, &err), 0);
	} else {
		webhook_clear(&w);
	}
	if (event_parse(&ev, body, len, &err))
		return NULL;
	ev.webhook_id = str_dup("wh1");
	event *evs[1] = {&ev};
	enum store_put res[1];
	assert_int_equal(store_events_put(f->a->st, evs, 1, res, &err), 0);
	char *id = str_dup(ev.id);
	event_clear(&ev);
	return id;
}

/* No page may carry a <script> other than the admin's own file. */
static void assert_no_foreign_markup(const char *html)
{
	const char *p = html;
	int scripts = 0;
	while ((p = strstr(p, "<script")) != NULL) {
		assert_true(str_starts(p, "<script src=\"/admin/static/admin.js\""));
		scripts++;
		p++;
	}
	assert_true(scripts <= 1);
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "<b>Board"));
	assert_null(strstr(html, "<a href=\"http"));
}

static void test_trello_text_is_escaped(void **state)
{
	fx *f = *state;
	sign_in(f);
	const char *data = getenv("TH_TEST_DATA");
	assert_non_null(data);
	char dir[512];
	str_printf(dir, sizeof dir, "%s/payloads", data);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int stored = 0;
	char *ids[64];
	while ((de = readdir(d)) && stored < 63) {
		if (!str_ends(de->d_name, ".json"))
			continue;
		char path[1024];
		str_printf(path, sizeof path, "%s/%s", dir, de->d_name);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		static char body[1 << 20];
		size_t n = fread(body, 1, sizeof body - 1, fp);
		fclose(fp);
		body[n] = '\0';
		char *id = put_event(f, body, n);
		if (id)
			ids[stored++] = id;
	}
	closedir(d);
	assert_true(stored > 10);
	static const char evil[] =
	    "{\"action\":{\"id\":\"5f0000000000000000000001\",\"type\":\"createCard\","
	    "\"date\":\"2026-01-01T00:00:00.000Z\",\"memberCreator\":{\"fullName\":\"<img src=x "
	    "onerror=alert(2)>\"},\"data\":{\"card\":{\"id\":\"5f0000000000000000000002\",\"name\":"
	    "\"<script>alert(1)</script>\"},\"board\":{\"id\":\"5f0000000000000000000003\",\"name\":"
	    "\"<b>Board</b>\"},\"list\":{\"id\":\"5f0000000000000000000004\",\"name\":\"\\\"><a "
	    "href=\\\"http://x\\\">\"}}},\"model\":{\"id\":\"5f0000000000000000000003\"}}";
	char *evil_id = put_event(f, evil, strlen(evil));
	assert_non_null(evil_id);
	ids[stored++] = evil_id;

	http_response res;
	run(f, "GET", "/admin/events", NULL, f->cookie, &res);
	assert_int_equal(res.status, 200);
	assert_no_foreign_markup(res.body.data);
	assert_non_null(strstr(res.body.data, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	http_response_clear(&res);
	run(f, "GET", "/admin/", NULL, f->cookie, &res);
	assert_no_foreign_markup(res.body.data);
	http_response_clear(&res);
	for (int i = 0; i < stored; i++) {
		char path[128];
		str_printf(path, sizeof path, "/admin/events/%s", ids[i]);
		run(f, "GET", path, NULL, f->cookie, &res);
		assert_int_equal(res.status, 200);
		assert_no_foreign_markup(res.body.data);
		assert_string_equal(http_response_get_header(&res, "Cache-Control"), "no-store");
		http_response_clear(&res);
		free(ids[i]);
	}
	/* Paging: before= must be a positive number. */
	run(f, "GET", "/admin/events?before=abc", NULL, f->cookie, &res);
	assert_int_equal(res.status, 400);
	http_response_clear(&res);
	run(f, "GET", "/admin/events?before=2&type=createCard", NULL, f->cookie, &res);
	assert_int_equal(res.status, 200);
	http_response_clear(&res);
	run(f, "GET", "/admin/events/..%2f..", NULL, f->cookie, &res);
	assert_int_equal(res.status, 404);
	http_response_clear(&res);
	run(f, "GET", "/admin/deliveries?status=bogus", NULL, f->cookie, &res);
	assert_int_equal(res.status, 400);
	http_response_clear(&res);
}

static void test_form_parser(void **state)
{
	fx *f = *state;
	static const struct {
		const char *body;
		int rc;
		const char *name, *value;
	} cases[] = {
	    {"a=b", 0, "a", "b"},
	    {"a=x+y%21", 0, "a", "x y!"},
	    {"&&a=&b", 0, "a", ""},
	    {"a", 0, "a", ""},
	    {"a=%", TH_EINVAL, NULL, NULL},
	    {"a=%4", TH_EINVAL, NULL, NULL},
	    {"a=%zz", TH_EINVAL, NULL, NULL},
	    {"a=%00", TH_EINVAL, NULL, NULL},
	    {"a=%c3%28", TH_EINVAL, NULL, NULL},
	    {"%ff=1", TH_EINVAL, NULL, NULL},
	    {"a=%C3%A9", 0, "a", "\xc3\xa9"},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		http_request req;
		memset(&req, 0, sizeof req);
		req.headers[req.nheaders++] =
		    (http_pair){"Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"};
		req.body = cases[i].body;
		req.body_len = strlen(cases[i].body);
		admin_req r;
		memset(&r, 0, sizeof r);
		r.sc = app_svc(f->a);
		r.req = &req;
		assert_int_equal(admin_form_parse(&r), cases[i].rc);
		if (cases[i].name)
			assert_string_equal(admin_field(&r, cases[i].name), cases[i].value);
		admin_req_clear(&r);
	}
	/* Too many fields. */
	buf b;
	buf_init(&b, 0);
	for (int i = 0; i < ADMIN_MAX_FIELDS + 1; i++)
		buf_printf(&b, "f%d=%d&", i, i);
	http_request req;
	memset(&req, 0, sizeof req);
	req.headers[req.nheaders++] =
	    (http_pair){"Content-Type", "application/x-www-form-urlencoded"};
	req.body = b.data;
	req.body_len = b.len;
	admin_req r;
	memset(&r, 0, sizeof r);
	r.req = &req;
	assert_int_equal(admin_form_parse(&r), TH_EINVAL);
	admin_req_clear(&r);
	/* Another content type: no fields at all. */
	req.headers[0].value = "text/plain";
	memset(&r, 0, sizeof r);
	r.req = &req;
	assert_int_equal(admin_form_parse(&r), 0);
	assert_int_equal(r.nform, 0);
	admin_req_clear(&r);
	buf_free(&b);
}

static void test_cookie_parser(void **state)
{
	(void)state;
	http_request req;
	memset(&req, 0, sizeof req);
	req.headers[req.nheaders++] = (http_pair){"cookie", "a=1; trellohook_sessionx=2"};
	req.headers[req.nheaders++] = (http_pair){"Cookie", ";;trellohook_session=abc;z=9"};
	char out[8];
	assert_true(admin_cookie(&req, "trellohook_session", out, sizeof out));
	assert_string_equal(out, "abc");
	assert_true(admin_cookie(&req, "a", out, sizeof out));
	assert_string_equal(out, "1");
	assert_false(admin_cookie(&req, "missing", out, sizeof out));
	req.headers[1].value = "trellohook_session=0123456789";
	assert_false(admin_cookie(&req, "trellohook_session", out, sizeof out)); /* too long */
}

static void test_static_and_escape_helpers(void **state)
{
	fx *f = *state;
	http_response res;
	run(f, "GET", "/admin/static/admin.css", NULL, NULL, &res);
	assert_int_equal(res.status, 200);
	assert_true(str_starts(http_response_get_header(&res, "Content-Type"), "text/css"));
	http_response_clear(&res);
	run(f, "GET", "/admin/static/../../etc/passwd", NULL, NULL, &res);
	assert_int_equal(res.status, 404);
	http_response_clear(&res);
	buf b;
	buf_init(&b, 0);
	admin_urlenc(&b, "a b&c=d/é");
	assert_string_equal(b.data, "a%20b%26c%3Dd%2F%C3%A9");
	buf_reset(&b);
	admin_esc(&b, "<\"'&>");
	assert_null(strpbrk(b.data, "<>\"'"));
	buf_reset(&b);
	admin_masked(&b, "ATTAabcdef0123456789abcdef0123456789");
	assert_null(strstr(b.data, "abcdef0123456789"));
	buf_free(&b);
}

/* The login throttle (service/users.c) is keyed by (name, address) and by
 * address: a stranger guessing ann's password from one address locks out
 * that address, never ann signing in from another. */
static void test_login_throttle_keys(void **state)
{
	fx *f = *state;
	svc_ctx *sc = app_svc(f->a);
	th_error err = {0, {0}};
	int64_t wait = 0;
	for (int i = 0; i < 5; i++)
		assert_int_equal(
		    svc_login_check(sc, "ann", "wrong password", "192.0.2.66", &wait, &err),
		    TH_EAUTH);
	/* the stranger's address is locked, for ann and for any other name */
	assert_int_equal(svc_login_check(sc, "ann", PASSWORD, "192.0.2.66", &wait, &err),
	                 TH_EUNAVAIL);
	assert_true(wait > 0 && wait <= 15LL * 60 * 1000);
	assert_int_equal(svc_login_check(sc, "bob", "whatever", "192.0.2.66", &wait, &err),
	                 TH_EUNAVAIL);
	/* ann from elsewhere signs in */
	assert_int_equal(svc_login_check(sc, "ann", PASSWORD, "198.51.100.9", &wait, &err), 0);
	assert_int_equal(wait, 0);
	/* IPv6 addresses and hostile names are keys like any other */
	assert_int_equal(svc_login_check(sc, "ann", PASSWORD, "2001:db8::1", &wait, &err), 0);
	assert_int_equal(svc_login_check(sc, "a\xff\x01<b>", "x", "2001:db8::1", &wait, &err),
	                 TH_EAUTH);
	/* empty and over-long input is refused before any lookup */
	assert_int_equal(svc_login_check(sc, "", PASSWORD, "198.51.100.9", &wait, &err), TH_EINVAL);
	char longname[SVC_USER_MAX + 2];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(svc_login_check(sc, longname, PASSWORD, "198.51.100.9", &wait, &err),
	                 TH_EINVAL);
	/* the throttle is the app's: a second app in this process starts clean */
	app *other = NULL;
	assert_int_equal(app_new(&other, &f->a->cfg, &err), 0);
	assert_int_equal(
	    svc_login_check(app_svc(other), "ann", PASSWORD, "192.0.2.66", &wait, &err), 0);
	th_app_free(other);
}

/* The one password hash: what svc_user_set stores, svc_login_check accepts. */
static void test_user_set(void **state)
{
	fx *f = *state;
	svc_ctx *sc = app_svc(f->a);
	th_error err = {0, {0}};
	int64_t wait = 0;
	assert_int_equal(svc_user_set(sc, "bad name", PASSWORD, strlen(PASSWORD), &err), TH_EINVAL);
	assert_int_equal(svc_user_set(sc, "carol", "carols password", 15, &err), 0);
	assert_int_equal(svc_login_check(sc, "carol", "carols password", "::1", &wait, &err), 0);
	assert_int_equal(svc_login_check(sc, "carol", "carols passwore", "::1", &wait, &err),
	                 TH_EAUTH);
	char hash[SVC_PWHASH_MAX];
	assert_int_equal(svc_password_hash("x", 1, hash, &err), 0);
	assert_true(str_starts(hash, "$argon2id$"));
	assert_true(svc_user_name_ok("a.b_c@d-e"));
	assert_false(svc_user_name_ok("a b"));
	assert_false(svc_user_name_ok(""));
}

/* The dashboard's deliveries section: the chart by outcome and the
 * handlers' table with attempts, success rate and run times, from outcomes
 * recorded through the store; a handler id that is hostile text is escaped. */
static void test_dashboard_deliveries(void **state)
{
	fx *f = *state;
	store *st = f->a->st;
	th_error err = {0, {0}};
	sign_in(f);
	http_response res;
	run(f, "GET", "/admin/", NULL, f->cookie, &res);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.body.data, "id=h-deliveries"));
	assert_non_null(strstr(res.body.data, "No delivery attempts in the last 24 hours."));
	http_response_clear(&res);

	handler h = {0};
	h.id = (char *)"h<b>x";
	h.kind = HANDLER_EXEC;
	h.target = (char *)"/bin/true";
	h.enabled = true;
	assert_int_equal(store_handler_insert(st, &h, &err), 0);
	/* events are stored only under a webhook that exists */
	webhook w = {.id = (char *)"w1",
	             .id_model = (char *)"5f0000000000000000000004",
	             .callback_url = (char *)"https://example.test/callbacks/w1",
	             .token = (char *)"t",
	             .state = WEBHOOK_ACTIVE};
	assert_int_equal(store_webhook_insert(st, &w, &err), 0);
	event ev = {0};
	ev.webhook_id = (char *)"w1";
	ev.action_id = (char *)"a1";
	ev.action_type = (char *)"createCard";
	ev.payload = (char *)"{}";
	ev.payload_len = 2;
	event *evs[1] = {&ev};
	enum store_put r[1];
	assert_int_equal(store_events_put(st, evs, 1, r, &err), 0);
	delivery *d = NULL;
	size_t n = 0;
	assert_int_equal(store_delivery_claim(st, 1u << HANDLER_EXEC, 10, 60000, &d, &n, &err), 0);
	assert_int_equal(n, 1);
	delivery_outcome o = {d[0].id, DELIVERY_DONE, 0, NULL, 42000, 0};
	assert_int_equal(store_delivery_finish_many(st, &o, 1, NULL, &err), 0);
	delivery_list_free(d, n);
	free(ev.id);

	run(f, "GET", "/admin/", NULL, f->cookie, &res);
	assert_int_equal(res.status, 200);
	const char *body = res.body.data;
	assert_non_null(strstr(body, "<figure class=\"chart"));
	assert_non_null(strstr(body, "Delivery attempts per hour by outcome, last 24 hours"));
	const char *t = strstr(body, "<table id=handler-stats>");
	assert_non_null(t);
	assert_non_null(strstr(t, "<td class=mono>h&lt;b&gt;x</td><td>exec</td><td>1</td>"
	                          "<td>100.0 %</td><td>0</td><td>0</td>"));
	assert_non_null(strstr(t, " ms</td>")); /* p50 inside (25 ms, 50 ms] */
	assert_null(strstr(body, "h<b>x"));
	http_response_clear(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_needs_session, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dashboard_deliveries, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sign_in_csrf_logout, setup, teardown),
	    cmocka_unit_test(test_login_token),
	    cmocka_unit_test_setup_teardown(test_login_forged_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trello_text_is_escaped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_form_parser, setup, teardown),
	    cmocka_unit_test(test_cookie_parser),
	    cmocka_unit_test_setup_teardown(test_static_and_escape_helpers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_throttle_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_set, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

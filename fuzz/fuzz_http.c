/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http — the request path of `trellohook serve` without sockets:
 * server_route() (server/router.c) over a real app on a SQLite store, as
 * the HTTP layer calls it once libmicrohttpd has parsed a request. That
 * covers the router, /callbacks/{id} (id check, webhook lookup, signature
 * check over the raw body, the delivery parser), /healthz, /metrics and the
 * whole admin (sign-in, sessions, CSRF, forms, cookies, every page).
 *
 * Input: requests in the text form of fuzz.h, separated by 0x1E bytes
 * (at most 8 per input). Three placeholders stand for what a fuzzer cannot
 * guess: "$SIG" in a header value becomes the valid X-Trello-Webhook of the
 * request's body for webhook FUZZ_WEBHOOK, "$SID" in a header value the
 * cookie of a live admin session, and "$CSRF" in the body that session's
 * CSRF token. The store persists across inputs (as in a server's life).
 *
 * Not driven: the admin's POSTs that call Trello (add webhook, boards, add
 * or check a token, delete a webhook, sync) when they carry the valid CSRF
 * token, because each would wait out the Trello client's network retries.
 * Without the token they still run up to their CSRF refusal; their own form
 * handling is covered by the unit and e2e tests.
 * Deferred answers: the request carries no server state, so http_defer()
 * declines and the callback answers 503 after parsing the delivery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "app/app.h"
#include "server/admin.h"
#include "server/server.h"
#include "service/service.h"
#include "store/store.h"
#include "util/log.h"
#include "util/sign.h"
#include "util/util.h"

#define FUZZ_WEBHOOK "fuzzwebhook00000000001"
#define FUZZ_SECRET "fuzz-secret-0123456789"
#define FUZZ_SID "fuzzSessionId0123456789abcdefghijklmnopqrs" /* 43 url-safe chars */
#define FUZZ_CSRF "fuzzCsrfToken0123456789abcdefghijklmnopqrs"
#define MAX_REQUESTS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static app *g_app;
static server_ctx g_srv;
static char g_dir[256], g_dburl[300], g_callback_url[600];

static const char *fuzz_env(const char *name)
{
	if (str_eq(name, "DATABASE_URL"))
		return g_dburl;
	if (str_eq(name, "CALLBACK_DOMAIN"))
		return "https://hooks.example.org";
	if (str_eq(name, "TRELLO_API_SECRET"))
		return FUZZ_SECRET;
	if (str_eq(name, "TRELLO_API_KEY"))
		return "0123456789abcdef0123456789abcdef";
	/* nothing may leave the machine: a closed local port */
	if (str_eq(name, "TRELLO_API_URL"))
		return "http://127.0.0.1:1/1";
	if (str_eq(name, "TRELLOHOOK_LOG_LEVEL"))
		return "error";
	return NULL;
}

static void die(const char *what, const th_error *err)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

static void cleanup(void)
{
	th_app_free(g_app);
	g_app = NULL;
	char cmd[300];
	str_printf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_http: could not remove %s\n", g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* any URL the code under test might fetch goes to a closed port */
	setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
	setenv("http_proxy", "http://127.0.0.1:1", 1);
	setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1);
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	const char *tmp = getenv("TMPDIR");
	str_printf(g_dir, sizeof g_dir, "%s/th-fuzz-http-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(g_dir))
		die("mkdtemp", NULL);
	str_printf(g_dburl, sizeof g_dburl, "sqlite:%s/th.db", g_dir);
	th_config cfg;
	th_error err = {0, {0}};
	if (config_load_env(&cfg, fuzz_env, &err))
		die("config", &err);
	log_setup(LOG_ERROR, LOG_TEXT);
	if (app_new(&g_app, &cfg, &err))
		die("app_new", &err);
	atexit(cleanup);

	/* one webhook Trello may deliver to */
	webhook w;
	memset(&w, 0, sizeof w);
	g_srv = (server_ctx){app_svc(g_app), NULL, NULL};
	if (svc_callback_url(app_svc(g_app), FUZZ_WEBHOOK, g_callback_url, sizeof g_callback_url))
		die("callback url", NULL);
	w.id = FUZZ_WEBHOOK;
	w.trello_id = "5f0000000000000000000001";
	w.id_model = "5f0000000000000000000002";
	w.model_type = "board";
	w.model_name = "Fuzz board";
	w.description = "fuzz";
	w.callback_url = g_callback_url;
	w.token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	w.state = WEBHOOK_ACTIVE;
	w.active = true;
	w.created_at = time_now_ms();
	if (store_webhook_insert(g_app->st, &w, &err))
		die("webhook insert", &err);

	/* an admin user (password "fuzz password 1234") and a live session */
	const char *pw = "fuzz password 1234";
	if (svc_user_set(app_svc(g_app), "fuzz", pw, strlen(pw), &err))
		die("user", &err);
	char id_hash[65];
	admin_sha256_hex(FUZZ_SID, strlen(FUZZ_SID), id_hash);
	int64_t max_age;
	if (svc_session_start(app_svc(g_app), id_hash, "fuzz", FUZZ_CSRF, &max_age, &err))
		die("session", &err);
	return 0;
}

/* Would this request reach Trello (see the header comment)? */
static bool calls_trello(const fz_request *r, bool csrf_given)
{
	const char *p = r->req.path;
	return csrf_given && str_eq(r->req.method, "POST") &&
	       (str_starts(p, "/admin/webhooks") || str_starts(p, "/admin/tokens") ||
	        str_starts(p, "/admin/sync"));
}

static void one(const uint8_t *data, size_t size)
{
	fz_request r;
	fz_request_parse(&r, data, size, "192.0.2.10");
	bool csrf_given = r.body && memmem(r.body, r.req.body_len, "$CSRF", 5);
	if (calls_trello(&r, csrf_given)) {
		fz_request_free(&r);
		return;
	}
	fz_request_sub_headers(&r, "$SID", FUZZ_SID);
	fz_request_sub_body(&r, "$CSRF", FUZZ_CSRF);
	char sig[TRELLO_SIG_LEN + 1];
	if (sign_trello(FUZZ_SECRET, r.req.body, r.req.body_len, g_callback_url, sig) == 0)
		fz_request_sub_headers(&r, "$SIG", sig);

	http_response res;
	http_response_init(&res);
	int hr = server_route(&g_srv, &r.req, &res);
	if (hr != HTTP_DONE)
		abort(); /* without server state nothing may be deferred */
	if (res.status < 100 || res.status > 599)
		abort();
	for (size_t i = 0; i < res.nheaders; i++) {
		/* header injection: no CR or LF may reach a response header */
		if (strpbrk(res.header_names[i], "\r\n") || strpbrk(res.header_values[i], "\r\n"))
			abort();
	}
	http_response_clear(&res);
	fz_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	size_t n;
	const uint8_t *p;
	for (int i = 0; i < MAX_REQUESTS && (p = fz_cut(&in, 0x1e, &n)) != NULL; i++)
		one(p, n);
	return 0;
}

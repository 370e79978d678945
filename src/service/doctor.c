/* SPDX-License-Identifier: MIT */
/* doctor.c — see doctor.h. */
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "http/client.h"
#include "service/doctor.h"
#include "service/service.h"
#include "service/history.h"
#include "store/identity.h"

#define NET_TIMEOUT_MS 5000L     /* every network step of doctor */
#define CONNECT_TIMEOUT_MS 3000L /* and its connection */
#define MIN_FREE_BYTES (100LL << 20)
#define MAX_PROBE_ANSWER 512

/* Append a result; the fix is formatted (NULL: none). */
static doctor_check *add(doctor_report *r, const char *name, bool ok, const char *detail)
{
	doctor_check *p = mem_grow(r->items, &r->cap, r->n, sizeof *p, 16);
	if (!p)
		return NULL;
	r->items = p;
	doctor_check *c = &r->items[r->n++];
	memset(c, 0, sizeof *c);
	str_copy(c->name, sizeof c->name, name);
	c->ok = ok;
	str_copy(c->detail, sizeof c->detail, detail);
	return c;
}

static void fix(doctor_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fix(doctor_check *c, const char *fmt, ...)
{
	if (!c)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->fix, sizeof c->fix, fmt, ap);
	va_end(ap);
}

void doctor_report_free(doctor_report *r)
{
	if (!r)
		return;
	free(r->items);
	memset(r, 0, sizeof *r);
}

int doctor_probe_proof(const char *secret, const char *nonce, const char *identity,
                       char out[TRELLO_SIG_LEN + 1])
{
	char msg[160], tail[160];
	if (!str_printf(msg, sizeof msg, DOCTOR_PROBE_PREFIX "%s", nonce) ||
	    !str_printf(tail, sizeof tail, ":%s", identity))
		return TH_EINVAL;
	return sign_trello(secret, msg, strlen(msg), tail, out);
}

/* ---- configuration and store ----------------------------------------------------------- */

static void check_config(const th_config *cfg, doctor_report *r)
{
	static const struct {
		const char *name, *example;
		size_t off;
	} need[] = {
	    {"TRELLO_API_KEY", "32 hex characters from https://trello.com/app-key",
	     offsetof(th_config, api_key)},
	    {"TRELLO_API_SECRET", "the secret shown under the key at https://trello.com/app-key",
	     offsetof(th_config, api_secret)},
	    {"CALLBACK_DOMAIN", "https://hooks.example.com", offsetof(th_config, callback_domain)},
	};
	bool all = true;
	for (size_t i = 0; i < TH_ARRAY_LEN(need); i++) {
		const char *v = (const char *)cfg + need[i].off;
		if (*v)
			continue;
		all = false;
		char name[64];
		str_printf(name, sizeof name, "configuration: %s", need[i].name);
		fix(add(r, name, false, "not set"), "set %s (or %s_FILE), e.g. %s", need[i].name,
		    need[i].name, need[i].example);
	}
	if (all)
		add(r, "configuration", true,
		    "TRELLO_API_KEY, TRELLO_API_SECRET and CALLBACK_DOMAIN are set and well-formed");
}

static void check_disk(const char *url, doctor_report *r)
{
	const char *file = store_sqlite_file(url);
	char copy[PATH_MAX];
	if (!file || !str_copy(copy, sizeof copy, file))
		return; /* PostgreSQL's disk is the server's */
	struct statvfs vfs;
	char detail[256];
	if (statvfs(dirname(copy), &vfs) != 0) {
		fix(add(r, "disk", false, "cannot read the free space of the store's file system"),
		    "check the store's directory");
		return;
	}
	long long avail = (long long)vfs.f_bavail * (long long)vfs.f_frsize;
	str_printf(detail, sizeof detail, "%lld MiB free where the store is", avail >> 20);
	if (avail >= MIN_FREE_BYTES)
		add(r, "disk", true, detail);
	else
		fix(add(r, "disk", false, detail),
		    "free space on that file system: with less than %lld MiB the store soon cannot "
		    "commit and callbacks get 503",
		    MIN_FREE_BYTES >> 20);
}

/* Can other local users read (or write) the SQLite store? The store holds
 * every event's payload and, without TRELLOHOOK_SECRET_KEY, the tokens in
 * plain text. Its mode bits alone do not say: a store of mode 0644 inside a
 * directory that others cannot search (no o+x on it or on any directory
 * above) is out of their reach, as under systemd's StateDirectory=. */
static void check_access(const th_config *cfg, doctor_report *r)
{
	const char *file = store_sqlite_file(cfg->database_url);
	char real[PATH_MAX], path[PATH_MAX + 8], dir[PATH_MAX], detail[600], files[600] = "";
	if (!file || str_eq(file, ":memory:") || !realpath(file, real))
		return; /* PostgreSQL, or the "store" line said what is wrong */
	struct stat st;
	mode_t mode = 0, open_mode = 0; /* the store's; the first file open to others */
	const char *open_part = NULL;
	static const char *const part[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < TH_ARRAY_LEN(part); i++) {
		if (!str_printf(path, sizeof path, "%s%s", real, part[i]) || stat(path, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (i == 0)
			mode = st.st_mode & 07777;
		size_t used = strlen(files);
		str_printf(files + used, sizeof files - used, "%s%s", used ? " " : "", path);
		if (!open_part && (st.st_mode & (S_IROTH | S_IWOTH))) {
			open_part = part[i];
			open_mode = st.st_mode & 07777;
		}
	}
	if (!open_part) {
		str_printf(detail, sizeof detail,
		           "other users cannot read the store (%s is mode %04o)", real,
		           (unsigned)mode);
		add(r, "store access", true, detail);
		return;
	}
	/* the deepest directory that other users cannot search, if any */
	str_copy(dir, sizeof dir, real);
	char *slash;
	while ((slash = strrchr(dir, '/')) != NULL) {
		*(slash == dir ? slash + 1 : slash) = '\0';
		if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			str_printf(
			    detail, sizeof detail,
			    "%s%s is mode %04o, but other users cannot reach it: %s is mode %04o",
			    real, open_part, (unsigned)open_mode, dir,
			    (unsigned)(st.st_mode & 07777));
			add(r, "store access", true, detail);
			return;
		}
		if (slash == dir)
			break;
	}
	str_printf(detail, sizeof detail,
	           "every local user can %s the store (%s%s is mode %04o); it holds every "
	           "event's payload%s",
	           (open_mode & S_IWOTH) ? "write" : "read", real, open_part, (unsigned)open_mode,
	           cfg->has_secret_key ? "" : " and, without TRELLOHOOK_SECRET_KEY, the tokens");
	str_copy(dir, sizeof dir, real);
	slash = strrchr(dir, '/');
	*(slash && slash != dir ? slash : dir + 1) = '\0';
	fix(add(r, "store access", false, detail),
	    "chmod 600 %s (a store trellohook creates is 0600), or close its directory to other "
	    "users: chmod o-rwx %s",
	    files, dir);
}

/* ---- HTTP to our own public URL ------------------------------------------------------------ */

/* One request to @url through the outbound client (http/https only, no
 * redirect followed, an answer over MAX_PROBE_ANSWER refused): HEAD, or POST
 * of @body with the @sighdr header line. @resp (initialised by the caller)
 * has status 0, the failure and its words when there was no answer. */
static void request(const char *url, const char *body, const char *sighdr, httpc_resp *resp)
{
	httpc *hc = NULL;
	httpc_opts o = HTTPC_OPTS_INIT;
	o.timeout_ms = NET_TIMEOUT_MS;
	o.connect_timeout_ms = CONNECT_TIMEOUT_MS;
	o.max_body = MAX_PROBE_ANSWER;
	o.user_agent = "trellohook-doctor/" TH_VERSION;
	o.component = "doctor";
	th_error err = {0, {0}};
	if (httpc_new(&hc, &o, &err)) {
		httpc_resp_clear(resp);
		resp->status = 0;
		resp->fail = HTTPC_FAIL_NOMEM;
		str_copy(resp->error, sizeof resp->error, err.msg);
		return;
	}
	const char *h[] = {sighdr};
	httpc_req req = {.method = body ? "POST" : "HEAD",
	                 .url = url,
	                 .headers = sighdr ? h : NULL,
	                 .nheaders = sighdr ? 1 : 0,
	                 .body = body,
	                 .body_len = body ? strlen(body) : 0};
	(void)httpc_perform(hc, &req, resp); /* resp says how it went */
	httpc_free(hc);
}

/* Does CALLBACK_DOMAIN resolve, answer Trello's HEAD check, and is it us? */
static void check_callback(const th_config *cfg, doctor_report *r)
{
	const char *dom = cfg->callback_domain;
	if (!*dom)
		return;
	char id[ID_LEN + 1], url[700];
	httpc_resp resp;
	httpc_resp_init(&resp);
	if (rand_id(id) || !str_printf(url, sizeof url, "%s/callbacks/%s", dom, id))
		goto out;
	request(url, NULL, NULL, &resp);
	char detail[600];
	if (resp.fail == HTTPC_FAIL_RESOLVE) {
		str_printf(detail, sizeof detail, "the host of %s does not resolve: %s", dom,
		           resp.error);
		fix(add(r, "CALLBACK_DOMAIN resolves", false, detail),
		    "fix CALLBACK_DOMAIN or its DNS record (a tunnel's name changes when it restarts)");
		goto out;
	}
	str_printf(detail, sizeof detail, "%s resolves", dom);
	add(r, "CALLBACK_DOMAIN resolves", true, detail);
	if (resp.status != 200) {
		if (resp.status)
			str_printf(detail, sizeof detail, "HEAD %s answered %ld, Trello needs 200",
			           url, resp.status);
		else
			str_printf(detail, sizeof detail, "HEAD %s: no answer: %s", url,
			           resp.error);
		fix(add(r, "callback HEAD", false, detail),
		    "start trellohook serve, and point the proxy or tunnel at CALLBACK_DOMAIN to "
		    "TRELLOHOOK_LISTEN");
		goto out;
	}
	str_printf(detail, sizeof detail, "HEAD %s/callbacks/{id} answers 200", dom);
	add(r, "callback HEAD", true, detail);

	/* the probe: only a serve with our secret and our store can answer it */
	if (!*cfg->api_secret) {
		fix(add(r, "callback reaches this instance", false,
		        "not checked without "
		        "TRELLO_API_SECRET"),
		    "set TRELLO_API_SECRET");
		goto out;
	}
	char identity[128], nonce[DOCTOR_NONCE_LEN + 1], expect[TRELLO_SIG_LEN + 1];
	char sig[TRELLO_SIG_LEN + 1], sighdr[80];
	th_error err = {0, {0}};
	unsigned char raw[DOCTOR_NONCE_LEN / 2];
	if (store_identity(cfg->database_url, identity, sizeof identity, &err)) {
		fix(add(r, "callback reaches this instance", false, err.msg),
		    "fix the store first (see above)");
		goto out;
	}
	if (rand_fill(raw, sizeof raw))
		goto out;
	for (size_t i = 0; i < sizeof raw; i++)
		str_printf(nonce + 2 * i, 3, "%02x", raw[i]);
	if (!str_printf(url, sizeof url, "%s" DOCTOR_PROBE_PATH, dom) ||
	    sign_trello(cfg->api_secret, nonce, strlen(nonce), url, sig) ||
	    doctor_probe_proof(cfg->api_secret, nonce, identity, expect))
		goto out;
	str_printf(sighdr, sizeof sighdr, DOCTOR_PROBE_HEADER ": %s", sig);
	request(url, nonce, sighdr, &resp);
	long status = resp.status;
	const char *body = resp.body.data ? resp.body.data : "";
	char want[TRELLO_SIG_LEN + 32];
	str_printf(want, sizeof want, DOCTOR_PROBE_PREFIX "%s\n", expect);
	if (status == 200 && str_eq(body, want)) {
		add(r, "callback reaches this instance", true,
		    "a signed probe through CALLBACK_DOMAIN came back with proof of this store");
		goto out;
	}
	if (!status)
		str_printf(detail, sizeof detail, "POST %s: no answer: %s", url, resp.error);
	else if (status == 200 && str_starts(body, DOCTOR_PROBE_PREFIX))
		str_printf(detail, sizeof detail,
		           "CALLBACK_DOMAIN reaches a trellohook that uses another store");
	else if (status == 401)
		str_printf(detail, sizeof detail,
		           "CALLBACK_DOMAIN reaches a trellohook with another TRELLO_API_SECRET or "
		           "CALLBACK_DOMAIN (the probe's signature was refused)");
	else if (status == 503)
		str_printf(detail, sizeof detail,
		           "the trellohook at CALLBACK_DOMAIN cannot read its store (503)");
	else
		str_printf(
		    detail, sizeof detail,
		    "CALLBACK_DOMAIN reaches another server: the probe got %ld without proof of "
		    "this store",
		    status);
	fix(add(r, "callback reaches this instance", false, detail),
	    "point CALLBACK_DOMAIN (its DNS, proxy or tunnel) at this trellohook serve, with "
	    "the same DATABASE_URL and TRELLO_API_SECRET");
out:
	httpc_resp_clear(&resp);
}

/* ---- Trello: the key, the tokens, the webhooks --------------------------------------------- */

static void on_dead(void *ctx, const char *tok, enum trello_error_kind kind)
{
	svc_token_mark_dead((svc_ctx *)ctx, tok, kind);
}

/* The API key and every stored token; false when Trello could not be asked. */
static bool check_tokens(svc_ctx *a, trello_client *tc, doctor_report *r)
{
	bool key_checked = false, reached = true;
	token *list = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_token_list(a, &list, &n, &err)) {
		fix(add(r, "tokens", false, err.msg), "fix the store first (see above)");
		return true;
	}
	if (!n)
		fix(add(r, "tokens", false, "no Trello token is stored"),
		    "trellohook token add TOKEN (authorize one at TRELLO_AUTH_URL), then webhook add");
	for (size_t i = 0; i < n; i++) {
		char masked[32], name[64], detail[600];
		mask_secret(list[i].token, masked, sizeof masked);
		str_printf(name, sizeof name, "token %s", masked);
		token t = {0};
		int rc = svc_token_check(a, tc, list[i].token, &t, NULL, &err);
		if (rc == TH_EAUTH) {
			key_checked = true;
			fix(add(r, "API key", false, err.msg),
			    "set TRELLO_API_KEY to the key of https://trello.com/app-key");
			break;
		}
		if (rc) {
			str_printf(detail, sizeof detail, "Trello could not be asked: %s", err.msg);
			fix(add(r, name, false, detail),
			    "check the network and TRELLO_API_URL, then run trellohook doctor again");
			reached = false;
			break;
		}
		if (!key_checked) {
			key_checked = true;
			add(r, "API key", true, "Trello accepts TRELLO_API_KEY");
		}
		char exp[32] = "never";
		if (t.expires_at)
			time_format_iso(t.expires_at, exp);
		if (t.state == TOKEN_VALID) {
			str_printf(detail, sizeof detail, "valid (member %s), expires %s",
			           t.member ? t.member : "?", exp);
			add(r, name, true, detail);
		} else {
			str_printf(detail, sizeof detail,
			           "%s: Trello refuses it; its webhooks no longer "
			           "deliver",
			           token_state_name(t.state));
			fix(add(r, name, false, detail),
			    "authorize a new token (TRELLO_AUTH_URL), trellohook token add it, then "
			    "trellohook sync --token NEW");
		}
		token_clear(&t);
	}
	token_list_free(list, n);
	if (!key_checked && !reached)
		fix(add(r, "API key", false, "not checked: Trello could not be asked"),
		    "check the network and TRELLO_API_URL");
	else if (!key_checked)
		fix(add(r, "API key", false, "not checked: no stored token to ask Trello with"),
		    "trellohook token add TOKEN");
	return reached;
}

static void check_webhooks(svc_ctx *a, trello_client *tc, doctor_report *r)
{
	webhook *list = NULL;
	size_t n = 0;
	th_error err = {0, {0}};
	if (svc_webhook_list(a, &list, &n, &err)) {
		fix(add(r, "webhooks", false, err.msg), "fix the store first (see above)");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		webhook *w = &list[i];
		char name[64], detail[600];
		str_printf(name, sizeof name, "webhook %s", w->id);
		if (w->state == WEBHOOK_REMOVING)
			continue;
		if (!w->trello_id) {
			fix(add(r, name, false, "not registered on Trello"), "trellohook sync");
			continue;
		}
		trello_webhook tw = {0};
		if (svc_webhook_trello_view(a, tc, w->id, &tw, &err)) {
			fix(add(r, name, false, err.msg),
			    w->state == WEBHOOK_NEEDS_TOKEN
			        ? "its token is no longer valid: see the token lines above"
			        : "check the token lines above, then trellohook sync");
			continue;
		}
		if (tw.active && tw.consecutive_failures == 0) {
			str_printf(detail, sizeof detail,
			           "active on Trello (%s), no failed deliveries",
			           w->model_name ? w->model_name : w->id_model);
			add(r, name, true, detail);
		} else {
			str_printf(detail, sizeof detail,
			           "Trello: %s, %d consecutive failed deliveries%s%s",
			           tw.active ? "active" : "inactive", tw.consecutive_failures,
			           tw.first_consecutive_fail_date ? " since " : "",
			           tw.first_consecutive_fail_date ? tw.first_consecutive_fail_date
			                                          : "");
			doctor_check *c = add(r, name, false, detail);
			if (tw.active)
				fix(c,
				    "fix the callback lines above; Trello retries, and disables a "
				    "webhook after 30 days of failures");
			else
				fix(c,
				    "fix the callback lines above, then trellohook webhook update %s "
				    "--active true",
				    w->id);
		}
		trello_webhook_clear(&tw);
	}
	webhook_list_free(list, n);
}

bool doctor_store_missing(const th_config *cfg, char *detail, size_t detailsz)
{
	const char *file = store_sqlite_file(cfg->database_url);
	struct stat st;
	if (!file || str_eq(file, ":memory:") || stat(file, &st) == 0)
		return false;
	str_printf(detail, detailsz, "no store at %s", file);
	return true;
}

int doctor_run(const th_config *cfg, svc_ctx *a, const char *store_error, doctor_report *r)
{
	check_config(cfg, r);
	th_error err = {0, {0}};
	char masked[160], detail[600];
	mask_url(cfg->database_url, masked, sizeof masked);
	if (doctor_store_missing(cfg, detail, sizeof detail)) {
		fix(add(r, "store", false, detail),
		    "check DATABASE_URL and the working directory: serve creates the store on its "
		    "first start");
	} else if (!a) {
		fix(add(r, "store", false, store_error ? store_error : "cannot be opened"),
		    "fix DATABASE_URL or the store's permissions");
	} else {
		str_printf(detail, sizeof detail, "%s opens, schema current", masked);
		add(r, "store", true, detail);
		if (store_check_writable(cfg->database_url, &err))
			fix(add(r, "store writable", false, err.msg),
			    "give the user running trellohook write access to the store (and its "
			    "directory)");
		else
			add(r, "store writable", true, "this user can write to the store");
		check_access(cfg, r);
		check_disk(cfg->database_url, r);
		int mode = -1;
		if (!svc_vacuum_mode(a, false, &mode, &err) && mode >= 0 && mode != 2)
			add(r, "store space", true,
			    "pages freed by events prune are reused, but the SQLite file does not "
			    "shrink; to let it, stop serve and run trellohook migrate --vacuum once");
		bool raw = false;
		if (!svc_payloads_raw_sample(a, &raw, &err) && raw)
			add(r, "store payloads", true,
			    "events stored by an older trellohook (before schema 12) keep their "
			    "payloads raw, about twice the size; to pack them, stop serve and run "
			    "trellohook migrate --repack once");
	}
	check_callback(cfg, r);
	if (a && *cfg->api_key) {
		trello_client_opts o = TRELLO_CLIENT_OPTS_INIT;
		o.api_url = cfg->api_url[0] ? cfg->api_url : NULL;
		o.api_key = cfg->api_key;
		o.connect_timeout_ms = CONNECT_TIMEOUT_MS;
		o.timeout_ms = NET_TIMEOUT_MS;
		o.max_retries = 0;
		o.max_rate_waits = 1;
		o.rate_wait_ms_max = NET_TIMEOUT_MS;
		o.on_token_dead = on_dead;
		o.on_token_dead_ctx = a;
		trello_client *tc = NULL;
		if (trello_client_new(&tc, &o, &err)) {
			fix(add(r, "Trello client", false, err.msg), "check TRELLO_API_URL");
		} else {
			if (check_tokens(a, tc, r))
				check_webhooks(a, tc, r);
			else
				fix(add(r, "webhooks", false,
				        "not checked on Trello: Trello could not be "
				        "asked"),
				    "check the network and TRELLO_API_URL");
			trello_client_free(tc);
		}
	}
	return r->n && r->items ? 0 : TH_ENOMEM;
}

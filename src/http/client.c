/* SPDX-License-Identifier: MIT */
/*
 * client.c — the outbound HTTP client over libcurl (see client.h for the
 * policy). One curl easy handle per httpc, reset and set up again for every
 * call: curl_easy_reset() keeps the handle's live connections, DNS cache and
 * TLS sessions, so a handle kept per target reuses its connection.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http/client.h"
#include "util/log.h"

#define DEFAULT_COMPONENT "http-client"
#define MAX_METHOD 16
#define LOG_URL_MAX 512

/* ---- process-wide libcurl initialisation (owned by this module) ------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* libcurl's global initialisation, done on first use: CURLE_OK or why not. */
static CURLcode curl_ready(void)
{
	pthread_once(&curl_once, curl_init_once);
	return curl_init_rc;
}

/* ---- the handle ------------------------------------------------------------------ */

struct httpc {
	httpc_opts o;
	char *ua; /* our copy of the user agent */
	CURL *easy;
	/* the transfer in flight (busy) */
	bool busy;
	struct curl_slist *hdrs;
	const httpc_req *req;
	httpc_resp *resp;
	void *tag;
	bool too_big, nomem;
	int64_t started;
	char errbuf[CURL_ERROR_SIZE];
	char logurl[LOG_URL_MAX];
	struct httpc_group *group; /* the group it is attached to, while busy there */
	struct httpc *next_done;   /* a group's finished list */
};

struct httpc_group {
	CURLM *multi;
	int running;
	httpc **attached; /* busy handles, so free can detach them */
	size_t nattached, capattached;
	httpc *done_head, *done_tail; /* finished, not yet handed out */
};

static void group_detach(httpc_group *g, httpc *c);

struct httpc_share {
	CURLSH *sh;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

void httpc_resp_init(httpc_resp *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->body, 0);
}

void httpc_resp_clear(httpc_resp *r)
{
	if (!r)
		return;
	buf_free(&r->body);
	httpc_resp_init(r);
}

/* Create a handle; see client.h. */
int httpc_new(httpc **out, const httpc_opts *opts, th_error *err)
{
	*out = NULL;
	if (curl_ready() != CURLE_OK)
		return th_err(err, TH_EIO, "cannot initialise libcurl: %s",
		              curl_easy_strerror(curl_init_rc));
	if (!opts || opts->timeout_ms <= 0)
		return th_err(err, TH_EINVAL, "an HTTP client needs a total timeout (timeout_ms)");
	if (opts->connect_timeout_ms <= 0)
		return th_err(err, TH_EINVAL,
		              "an HTTP client needs a connect timeout (connect_timeout_ms)");
	if (!opts->max_body)
		return th_err(err, TH_EINVAL, "an HTTP client needs a body cap (max_body)");
	if (opts->max_redirects < 0 || opts->max_redirects > 20)
		return th_err(err, TH_EINVAL, "max_redirects must be 0 to 20");
	httpc *c = calloc(1, sizeof *c);
	if (!c)
		return th_err(err, TH_ENOMEM, "out of memory");
	c->o = *opts;
	if (c->o.connect_timeout_ms > c->o.timeout_ms)
		c->o.connect_timeout_ms = c->o.timeout_ms;
	if (!c->o.component)
		c->o.component = DEFAULT_COMPONENT;
	c->ua = str_dup(opts->user_agent ? opts->user_agent : "trellohook/" TH_VERSION);
	c->easy = curl_easy_init();
	if (!c->ua || !c->easy) {
		httpc_free(c);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	c->o.user_agent = c->ua;
	*out = c;
	return 0;
}

void httpc_free(httpc *c)
{
	if (!c)
		return;
	if (c->group)
		group_detach(c->group, c);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->hdrs);
	free(c->ua);
	free(c);
}

/* ---- masking ---------------------------------------------------------------------- */

/* Logs only: a piece that does not fit is simply left out. */
static void add(buf *b, const void *s, size_t n)
{
	if (buf_append(b, s, n) != 0)
		return;
}

static void adds(buf *b, const char *s)
{
	add(b, s, strlen(s));
}

static bool secret_param(const char *name, size_t n)
{
	static const char *const names[] = {"key",    "token",        "api_key",
	                                    "apikey", "access_token", "oauth_token",
	                                    "secret", "password",     "signature"};
	for (size_t i = 0; i < TH_ARRAY_LEN(names); i++)
		if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
			return true;
	return false;
}

/* Append @s[0..n) to @b, masked as a secret. */
static void put_masked(buf *b, const char *s, size_t n)
{
	char tmp[1024], m[32];
	if (n >= sizeof tmp) {
		adds(b, "****");
		return;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	mask_secret(tmp, m, sizeof m);
	adds(b, m);
}

static bool token_segment(const char *s, size_t n)
{
	char tmp[80];
	if (n != 64 && n != 76)
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return str_is_trello_token(tmp);
}

/* Mask a URL for logs; see client.h. */
void httpc_mask_url(const char *url, const char *secret, char *out, size_t outsz)
{
	if (!outsz)
		return;
	const char *p = url ? url : "";
	/* room for the whole masked text (a mask is at most 11 bytes, never more
	 * than twice what it replaces plus a little); @out cuts it */
	size_t room = 2 * strlen(p) + 64;
	buf b;
	buf_init(&b, room);
	/* scheme://[user[:pass]@]host */
	const char *auth = strstr(p, "://");
	if (auth) {
		auth += 3;
		add(&b, p, (size_t)(auth - p));
		size_t hostlen = strcspn(auth, "/?#");
		const char *at = memchr(auth, '@', hostlen);
		if (at) {
			const char *colon = memchr(auth, ':', (size_t)(at - auth));
			add(&b, auth, (size_t)((colon ? colon : at) - auth));
			adds(&b, colon ? ":****@" : "@");
			auth = at + 1;
			hostlen = strcspn(auth, "/?#");
		}
		add(&b, auth, hostlen);
		p = auth + hostlen;
	}
	/* the path, segment by segment */
	while (*p && *p != '?' && *p != '#') {
		size_t n = strcspn(p, "/?#");
		if (token_segment(p, n))
			put_masked(&b, p, n);
		else
			add(&b, p, n);
		p += n;
		if (*p == '/')
			add(&b, p++, 1);
	}
	/* the query, parameter by parameter */
	if (*p == '?') {
		add(&b, p++, 1);
		while (*p && *p != '#') {
			size_t n = strcspn(p, "&#");
			const char *eq = memchr(p, '=', n);
			if (eq && secret_param(p, (size_t)(eq - p))) {
				add(&b, p, (size_t)(eq - p) + 1);
				put_masked(&b, eq + 1, n - (size_t)(eq - p) - 1);
			} else {
				add(&b, p, n);
			}
			p += n;
			if (*p == '&')
				add(&b, p++, 1);
		}
	}
	adds(&b, p); /* the fragment */
	const char *s = b.data ? b.data : "";
	/* the caller's own secret, wherever it still shows */
	size_t sl = secret ? strlen(secret) : 0;
	const char *hit = sl >= 4 ? strstr(s, secret) : NULL;
	if (hit) {
		char m[32];
		mask_secret(secret, m, sizeof m);
		buf b2;
		buf_init(&b2, room);
		while (hit) {
			add(&b2, s, (size_t)(hit - s));
			adds(&b2, m);
			s = hit + sl;
			hit = strstr(s, secret);
		}
		adds(&b2, s);
		str_copy(out, outsz, b2.data ? b2.data : "");
		buf_free(&b2);
	} else {
		str_copy(out, outsz, s);
	}
	buf_free(&b);
}

/* Mask a header line for logs; see client.h. */
void httpc_mask_header(const char *line, char *out, size_t outsz)
{
	static const char *const names[] = {"authorization", "proxy-authorization",
	                                    "cookie",        "set-cookie",
	                                    "x-api-key",     "x-trello-webhook"};
	if (!outsz)
		return;
	const char *colon = line ? strchr(line, ':') : NULL;
	if (!colon) {
		str_copy(out, outsz, line ? line : "");
		return;
	}
	size_t n = (size_t)(colon - line);
	for (size_t i = 0; i < TH_ARRAY_LEN(names); i++) {
		if (strlen(names[i]) != n || strncasecmp(line, names[i], n) != 0)
			continue;
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		/* keep an auth scheme ("OAuth", "Bearer"): a word of letters then a space */
		size_t w = 0;
		while (isalpha((unsigned char)v[w]))
			w++;
		if (w && w < 16 && v[w] == ' ')
			str_printf(out, outsz, "%.*s: %.*s ****", (int)n, line, (int)w, v);
		else
			str_printf(out, outsz, "%.*s: ****", (int)n, line);
		return;
	}
	str_copy(out, outsz, line);
}

/* ---- one transfer -------------------------------------------------------------------- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	httpc *c = ud;
	httpc_resp *r = c->resp;
	size_t n = size * nmemb;
	size_t room = c->o.max_body - r->body.len;
	if (n <= room) {
		if (buf_append(&r->body, data, n)) {
			c->nomem = true;
			return 0;
		}
		return n;
	}
	if (!c->o.keep_head) {
		c->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (room && buf_append(&r->body, data, room)) {
		c->nomem = true;
		return 0;
	}
	r->truncated = true;
	return n; /* read and dropped */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	httpc *c = ud;
	size_t n = size * nmemb;
	if (c->req->on_header)
		c->req->on_header(c->req->header_ctx, data, n);
	return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	httpc *c = ud;
	(void)dt, (void)dn, (void)ut, (void)un;
	return c->o.abort(c->o.abort_ctx) ? 1 : 0;
}

/* Refuse before curl sees it: a missing URL, another scheme, spaces or
 * control bytes (curl would otherwise be the one to say so, less clearly). */
static bool url_ok(const char *url)
{
	if (!url || !(strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0))
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool method_ok(const char *m)
{
	size_t n = strlen(m);
	if (!n || n > MAX_METHOD)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

static int fail_now(httpc_resp *r, enum httpc_fail f, const char *what)
{
	r->fail = f;
	str_copy(r->error, sizeof r->error, what);
	return httpc_fail_code(f);
}

/* Set up c->easy for @req; on failure @resp says why and nothing is busy. */
static int prepare(httpc *c, const httpc_req *req, httpc_resp *resp)
{
	const char *method = req->method ? req->method : "GET";
	buf_free(&resp->body);
	httpc_resp_init(resp);
	buf_init(&resp->body, c->o.max_body);
	if (c->busy)
		return fail_now(resp, HTTPC_FAIL_URL, "this HTTP client handle is already busy");
	if (!url_ok(req->url))
		return fail_now(resp, HTTPC_FAIL_URL,
		                "only http:// and https:// URLs without spaces are allowed");
	if (!method_ok(method))
		return fail_now(resp, HTTPC_FAIL_URL, "the HTTP method is not a plain token");
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	for (size_t i = 0; i <= req->nheaders; i++) {
		/* no 100-continue round trip: send the body right away */
		const char *line = i < req->nheaders ? req->headers[i] : "Expect:";
		if (strpbrk(line, "\r\n"))
			return fail_now(resp, HTTPC_FAIL_URL, "a request header contains CR or LF");
		struct curl_slist *n = curl_slist_append(c->hdrs, line);
		if (!n)
			return fail_now(resp, HTTPC_FAIL_NOMEM, "out of memory");
		c->hdrs = n;
	}
	long timeout = c->o.timeout_ms;
	if (req->timeout_ms > 0 && req->timeout_ms < timeout)
		timeout = req->timeout_ms;
	long connect = c->o.connect_timeout_ms < timeout ? c->o.connect_timeout_ms : timeout;

	CURL *e = c->easy;
	curl_easy_reset(e); /* keeps live connections, DNS cache and TLS sessions */
	CURLcode cc = CURLE_OK;
	/* every setopt below can only fail for lack of memory */
#define SET(opt, val)                                       \
	do {                                                \
		if (cc == CURLE_OK)                         \
			cc = curl_easy_setopt(e, opt, val); \
	} while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, c->o.max_redirects > 0 ? 1L : 0L);
	SET(CURLOPT_MAXREDIRS, (long)c->o.max_redirects);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
	SET(CURLOPT_USERAGENT, c->ua);
	SET(CURLOPT_HTTPHEADER, c->hdrs);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_PRIVATE, c);
	if (!c->o.keep_head)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->o.max_body);
	if (c->o.share)
		SET(CURLOPT_SHARE, c->o.share->sh);
	if (c->o.abort) {
		SET(CURLOPT_NOPROGRESS, 0L);
		SET(CURLOPT_XFERINFOFUNCTION, on_progress);
		SET(CURLOPT_XFERINFODATA, c);
	}
	bool post = strcmp(method, "POST") == 0;
	if (strcmp(method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0 && !req->body) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (!post)
			SET(CURLOPT_CUSTOMREQUEST, method);
		if (req->body || post || strcmp(method, "PUT") == 0) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)(req->body ? req->body_len : 0));
			SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		}
	}
#undef SET
	if (cc != CURLE_OK)
		return fail_now(resp, HTTPC_FAIL_NOMEM, "out of memory");

	c->req = req;
	c->resp = resp;
	c->too_big = c->nomem = false;
	c->errbuf[0] = '\0';
	c->busy = true;
	c->started = time_mono_ms();
	httpc_mask_url(req->url, req->secret, c->logurl, sizeof c->logurl);
	if (log_enabled(LOG_DEBUG)) {
		buf h;
		buf_init(&h, 2048);
		for (size_t i = 0; i < req->nheaders; i++) {
			char m[256];
			httpc_mask_header(req->headers[i], m, sizeof m);
			if (buf_printf(&h, "; %s", m))
				break;
		}
		log_debug(c->o.component, "-> %s %s (%zu body bytes%s)", method, c->logurl,
		          req->body ? req->body_len : 0, h.data ? h.data : "");
		buf_free(&h);
	}
	return 0;
}

/* Read the outcome of the transfer into c->resp; the handle is free again. */
static void finish(httpc *c, CURLcode cc)
{
	httpc_resp *r = c->resp;
	CURL *e = c->easy;
	r->elapsed_ms = time_mono_ms() - c->started;
	if (cc == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
		r->fail = HTTPC_OK;
	} else {
		long sent = 0, redirects = 0;
		curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
		curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
		switch (cc) {
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
			r->fail = redirects > 0 ? HTTPC_FAIL_REDIRECT : HTTPC_FAIL_URL;
			break;
		case CURLE_TOO_MANY_REDIRECTS: r->fail = HTTPC_FAIL_REDIRECT; break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY: r->fail = HTTPC_FAIL_RESOLVE; break;
		case CURLE_COULDNT_CONNECT: r->fail = HTTPC_FAIL_CONNECT; break;
		case CURLE_OPERATION_TIMEDOUT:
			/* not one byte of the request went out: a connect timeout */
			r->fail = sent == 0 ? HTTPC_FAIL_CONNECT : HTTPC_FAIL_TIMEOUT;
			break;
		case CURLE_FILESIZE_EXCEEDED: r->fail = HTTPC_FAIL_TOOBIG; break;
		case CURLE_ABORTED_BY_CALLBACK: r->fail = HTTPC_FAIL_ABORTED; break;
		case CURLE_OUT_OF_MEMORY: r->fail = HTTPC_FAIL_NOMEM; break;
		case CURLE_WRITE_ERROR:
			r->fail = c->too_big ? HTTPC_FAIL_TOOBIG
			          : c->nomem ? HTTPC_FAIL_NOMEM
			                     : HTTPC_FAIL_NETWORK;
			break;
		default: r->fail = HTTPC_FAIL_NETWORK; break;
		}
		if (r->fail == HTTPC_FAIL_TOOBIG)
			str_printf(r->error, sizeof r->error, "the answer is larger than %zu bytes",
			           c->o.max_body);
		else if (r->fail == HTTPC_FAIL_REDIRECT)
			str_printf(r->error, sizeof r->error,
			           "redirect refused (at most %d, to http or https only): %s",
			           c->o.max_redirects,
			           c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		else
			str_copy(r->error, sizeof r->error,
			         c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
		/* the error text may quote the URL: mask it like the log does */
		if (c->req->secret && *c->req->secret && strstr(r->error, c->req->secret)) {
			char m[sizeof r->error];
			httpc_mask_url(r->error, c->req->secret, m, sizeof m);
			str_copy(r->error, sizeof r->error, m);
		}
	}
	log_debug(c->o.component, "<- %s %s: %ld in %lld ms, %zu bytes%s%s%s",
	          c->req->method ? c->req->method : "GET", c->logurl, r->status,
	          (long long)r->elapsed_ms, r->body.len, r->truncated ? " (cut)" : "",
	          r->fail ? ": " : "", r->error);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	c->busy = false;
	c->req = NULL;
	c->resp = NULL;
}

/* Send one request and wait for its answer; see client.h. */
int httpc_perform(httpc *c, const httpc_req *req, httpc_resp *resp)
{
	int rc = prepare(c, req, resp);
	if (rc)
		return rc;
	CURLcode cc = curl_easy_perform(c->easy);
	finish(c, cc);
	return httpc_fail_code(resp->fail);
}

bool httpc_fail_never_sent(enum httpc_fail f)
{
	return f == HTTPC_FAIL_URL || f == HTTPC_FAIL_RESOLVE || f == HTTPC_FAIL_CONNECT;
}

bool httpc_fail_transient(enum httpc_fail f)
{
	return f == HTTPC_FAIL_RESOLVE || f == HTTPC_FAIL_CONNECT || f == HTTPC_FAIL_TIMEOUT ||
	       f == HTTPC_FAIL_NETWORK;
}

int httpc_fail_code(enum httpc_fail f)
{
	switch (f) {
	case HTTPC_OK: return 0;
	case HTTPC_FAIL_URL: return TH_EINVAL;
	case HTTPC_FAIL_TOOBIG: return TH_ETOOBIG;
	case HTTPC_FAIL_NOMEM: return TH_ENOMEM;
	default: return TH_EUNAVAIL;
	}
}

/* ---- groups ---------------------------------------------------------------------- */

int httpc_group_new(httpc_group **out, unsigned max_connections)
{
	*out = NULL;
	if (curl_ready() != CURLE_OK)
		return TH_EIO;
	httpc_group *g = calloc(1, sizeof *g);
	if (!g)
		return TH_ENOMEM;
	g->multi = curl_multi_init();
	if (!g->multi) {
		free(g);
		return TH_ENOMEM;
	}
	if (max_connections)
		curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
	*out = g;
	return 0;
}

/* Take @c out of @g (a transfer not finished is dropped). */
static void group_detach(httpc_group *g, httpc *c)
{
	for (size_t i = 0; i < g->nattached; i++) {
		if (g->attached[i] != c)
			continue;
		g->attached[i] = g->attached[--g->nattached];
		curl_multi_remove_handle(g->multi, c->easy);
		break;
	}
	if (c->busy) {
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(c->hdrs);
		c->hdrs = NULL;
		c->busy = false;
		g->running--;
	}
	c->group = NULL;
}

void httpc_group_free(httpc_group *g)
{
	if (!g)
		return;
	while (g->nattached)
		group_detach(g, g->attached[0]);
	curl_multi_cleanup(g->multi);
	free(g->attached);
	free(g);
}

int httpc_group_add(httpc_group *g, httpc *c, const httpc_req *req, httpc_resp *resp, void *tag)
{
	httpc **a = mem_grow(g->attached, &g->capattached, g->nattached, sizeof *a, 8);
	if (!a) {
		buf_free(&resp->body);
		httpc_resp_init(resp);
		return fail_now(resp, HTTPC_FAIL_NOMEM, "out of memory");
	}
	g->attached = a;
	int rc = prepare(c, req, resp);
	if (rc)
		return rc;
	if (curl_multi_add_handle(g->multi, c->easy) != CURLM_OK) {
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(c->hdrs);
		c->hdrs = NULL;
		c->busy = false;
		return fail_now(resp, HTTPC_FAIL_NOMEM, "out of memory");
	}
	c->tag = tag;
	c->group = g;
	g->attached[g->nattached++] = c;
	g->running++;
	return 0;
}

/* Move every finished transfer to the done list. */
static void collect(httpc_group *g)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		CURL *e = msg->easy_handle;
		CURLcode cc = msg->data.result;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		httpc *c = (httpc *)(void *)priv;
		for (size_t i = 0; i < g->nattached; i++)
			if (g->attached[i] == c) {
				g->attached[i] = g->attached[--g->nattached];
				break;
			}
		curl_multi_remove_handle(g->multi, e);
		c->group = NULL;
		finish(c, cc);
		g->running--;
		c->next_done = NULL;
		if (g->done_tail)
			g->done_tail->next_done = c;
		else
			g->done_head = c;
		g->done_tail = c;
	}
}

int httpc_group_run(httpc_group *g, int max_wait_ms)
{
	int still = 0;
	curl_multi_perform(g->multi, &still);
	collect(g);
	if (!g->done_head && g->running && max_wait_ms > 0) {
		curl_multi_poll(g->multi, NULL, 0, max_wait_ms, NULL);
		curl_multi_perform(g->multi, &still);
		collect(g);
	}
	return g->running;
}

void *httpc_group_done(httpc_group *g)
{
	httpc *c = g->done_head;
	if (!c)
		return NULL;
	g->done_head = c->next_done;
	if (!g->done_head)
		g->done_tail = NULL;
	c->next_done = NULL;
	return c->tag;
}

/* ---- shares ----------------------------------------------------------------------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	httpc_share *s = ud;
	(void)h, (void)access;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	httpc_share *s = ud;
	(void)h;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&s->locks[data]);
}

httpc_share *httpc_share_new(void)
{
	if (curl_ready() != CURLE_OK)
		return NULL;
	httpc_share *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->locks[i], NULL);
	s->sh = curl_share_init();
	if (!s->sh || curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		httpc_share_free(s);
		return NULL;
	}
	return s;
}

void httpc_share_free(httpc_share *s)
{
	if (!s)
		return;
	if (s->sh)
		curl_share_cleanup(s->sh);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->locks[i]);
	free(s);
}

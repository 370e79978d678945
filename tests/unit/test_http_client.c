/* SPDX-License-Identifier: MIT */
/* Unit tests of the outbound HTTP client (src/http/client.c), against real
 * HTTP servers on loopback: our own http server (http/http.h) for answers,
 * redirects and big bodies, and a raw TCP server in this file that counts
 * connections, or accepts and never answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/client.h"
#include "http/http.h"
#include "util/log.h"
#include "util/util.h"

#define TOKEN                                                              \
	"ATTA"                                                             \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" \
	"ABCD1234"
#define API_KEY "5f1d3c0b9a8e7d6c5b4a39281706f5e4"

/* ==== a scripted server on http/http.h ============================================= */

struct srv {
	http_server *h;
	char base[128];
	atomic_int hits_ok; /* requests that reached /ok */
	atomic_int hits_any;
	char last_auth[256];
	char last_body[256];
	pthread_mutex_t lock;
};

static int handler(void *ctx, http_request *req, http_response *res)
{
	struct srv *s = ctx;
	atomic_fetch_add(&s->hits_any, 1);
	pthread_mutex_lock(&s->lock);
	const char *a = http_header(req, "Authorization");
	str_copy(s->last_auth, sizeof s->last_auth, a ? a : "");
	str_copy(s->last_body, sizeof s->last_body, req->body ? req->body : "");
	pthread_mutex_unlock(&s->lock);
	if (strcmp(req->path, "/ok") == 0) {
		atomic_fetch_add(&s->hits_ok, 1);
		http_response_header(res, "X-Seen", "yes");
		return http_response_text(res, 200, "hello %s", req->method), HTTP_DONE;
	}
	if (strcmp(req->path, "/echo") == 0)
		return http_response_body(res, 201, "text/plain", req->body, req->body_len),
		       HTTP_DONE;
	if (strcmp(req->path, "/big") == 0) {
		size_t n = 100000;
		char *big = malloc(n);
		if (!big)
			return http_response_text(res, 500, "oom"), HTTP_DONE;
		memset(big, 'x', n);
		http_response_body(res, 200, "text/plain", big, n);
		free(big);
		return HTTP_DONE;
	}
	if (strcmp(req->path, "/slow") == 0) {
		usleep(1500 * 1000);
		return http_response_text(res, 200, "late"), HTTP_DONE;
	}
	if (strcmp(req->path, "/to-ok") == 0) {
		http_response_header(res, "Location", "/ok");
		return http_response_text(res, 302, "moved"), HTTP_DONE;
	}
	if (strcmp(req->path, "/to-file") == 0) {
		http_response_header(res, "Location", "file:///etc/passwd");
		return http_response_text(res, 302, "moved"), HTTP_DONE;
	}
	if (strcmp(req->path, "/to-ftp") == 0) {
		http_response_header(res, "Location", "ftp://127.0.0.1/x");
		return http_response_text(res, 301, "moved"), HTTP_DONE;
	}
	if (strcmp(req->path, "/loop") == 0) {
		http_response_header(res, "Location", "/loop");
		return http_response_text(res, 302, "again"), HTTP_DONE;
	}
	return http_response_text(res, 404, "no route"), HTTP_DONE;
}

static struct srv *srv_start(void)
{
	struct srv *s = calloc(1, sizeof *s);
	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	http_server_opts o = {.listen = "127.0.0.1:0",
	                      .max_body = 1 << 20,
	                      .threads = 4,
	                      .thread_per_connection = true,
	                      .handler = handler,
	                      .ctx = s,
	                      .name = "test-server"};
	th_error e = {0, {0}};
	if (http_server_start(&s->h, &o, &e))
		fail_msg("cannot start the test server: %s", e.msg);
	str_copy(s->base, sizeof s->base, http_server_url(s->h));
	return s;
}

static void srv_stop(struct srv *s)
{
	http_server_free(s->h);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static httpc *client(long timeout_ms, size_t max_body, bool keep_head, int redirects)
{
	httpc *c = NULL;
	httpc_opts o = HTTPC_OPTS_INIT;
	o.timeout_ms = timeout_ms;
	o.connect_timeout_ms = timeout_ms;
	o.max_body = max_body;
	o.keep_head = keep_head;
	o.max_redirects = redirects;
	th_error e = {0, {0}};
	if (httpc_new(&c, &o, &e))
		fail_msg("httpc_new: %s", e.msg);
	return c;
}

static int get(httpc *c, const char *base, const char *path, httpc_resp *r)
{
	char url[256];
	snprintf(url, sizeof url, "%s%s", base, path);
	httpc_req q = {.url = url};
	return httpc_perform(c, &q, r);
}

/* ==== a raw TCP server: counts connections; answers keep-alive, or never ========== */

struct raw {
	int fd;
	int port;
	bool answer; /* false: accept, read, never answer */
	atomic_int conns;
	atomic_bool stop;
	pthread_t thr;
};

static void *raw_conn(void *arg)
{
	int *pfd = arg;
	int fd = pfd[0];
	bool answer = pfd[1];
	free(pfd);
	char in[4096];
	size_t have = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t n = read(fd, in + have, sizeof in - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		in[have] = '\0';
		char *end;
		while ((end = strstr(in, "\r\n\r\n")) != NULL) {
			/* requests here carry no body */
			size_t used = (size_t)(end + 4 - in);
			memmove(in, in + used, have - used);
			have -= used;
			in[have] = '\0';
			if (!answer)
				continue;
			const char *ans = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
			if (write(fd, ans, strlen(ans)) < 0)
				goto out;
		}
		if (have >= sizeof in - 1)
			break;
	}
out:
	close(fd);
	return NULL;
}

static void *raw_main(void *arg)
{
	struct raw *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		atomic_fetch_add(&r->conns, 1);
		int *arg2 = malloc(2 * sizeof *arg2);
		if (!arg2) {
			close(c);
			continue;
		}
		arg2[0] = c;
		arg2[1] = r->answer;
		pthread_t t;
		if (pthread_create(&t, NULL, raw_conn, arg2) == 0)
			pthread_detach(t);
		else {
			close(c);
			free(arg2);
		}
	}
	return NULL;
}

static struct raw *raw_start(bool answer)
{
	struct raw *r = calloc(1, sizeof *r);
	assert_non_null(r);
	r->answer = answer;
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(r->fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(r->fd, 64), 0);
	assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &al), 0);
	r->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&r->thr, NULL, raw_main, r), 0);
	return r;
}

static void raw_stop(struct raw *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thr, NULL);
	close(r->fd);
	free(r);
}

/* ==== tests ========================================================================== */

static void test_options_mandatory(void **state)
{
	httpc *c = NULL;
	th_error e = {0, {0}};
	httpc_opts o = HTTPC_OPTS_INIT;
	assert_int_equal(httpc_new(&c, &o, &e), TH_EINVAL);
	assert_non_null(strstr(e.msg, "timeout_ms"));
	assert_null(c);
	o.timeout_ms = 1000;
	assert_int_equal(httpc_new(&c, &o, &e), TH_EINVAL);
	assert_non_null(strstr(e.msg, "connect_timeout_ms"));
	o.connect_timeout_ms = 500;
	assert_int_equal(httpc_new(&c, &o, &e), TH_EINVAL);
	assert_non_null(strstr(e.msg, "max_body"));
	o.max_body = 100;
	o.max_redirects = -1;
	assert_int_equal(httpc_new(&c, &o, &e), TH_EINVAL);
	o.max_redirects = 0;
	assert_int_equal(httpc_new(&c, &o, &e), 0);
	assert_non_null(c);
	httpc_free(c);
	httpc_free(NULL);
	assert_int_equal(httpc_new(&c, NULL, &e), TH_EINVAL);
}

static void on_hdr(void *ctx, const char *line, size_t len)
{
	int *seen = ctx;
	if (len >= 7 && strncasecmp(line, "X-Seen:", 7) == 0)
		(*seen)++;
}

static void test_get_post_and_headers(void **state)
{
	struct srv *s = srv_start();
	httpc *c = client(5000, 1000, false, 0);
	httpc_resp r;
	httpc_resp_init(&r);
	int seen = 0;
	char url[256];
	snprintf(url, sizeof url, "%s/ok", s->base);
	const char *h[] = {"Authorization: Bearer abc"};
	httpc_req q = {
	    .url = url, .headers = h, .nheaders = 1, .on_header = on_hdr, .header_ctx = &seen};
	assert_int_equal(httpc_perform(c, &q, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.fail, HTTPC_OK);
	assert_string_equal(r.body.data, "hello GET");
	assert_string_equal(r.error, "");
	assert_int_equal(seen, 1);
	assert_string_equal(s->last_auth, "Bearer abc");

	/* POST with a body, PUT without one, HEAD */
	snprintf(url, sizeof url, "%s/echo", s->base);
	httpc_req p = {.method = "POST", .url = url, .body = "{\"a\":1}", .body_len = 7};
	assert_int_equal(httpc_perform(c, &p, &r), 0);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.body.len, 7);
	assert_memory_equal(r.body.data, "{\"a\":1}", 7);
	httpc_req put = {.method = "PUT", .url = url};
	assert_int_equal(httpc_perform(c, &put, &r), 0);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.body.len, 0);
	snprintf(url, sizeof url, "%s/ok", s->base);
	httpc_req head = {.method = "HEAD", .url = url};
	assert_int_equal(httpc_perform(c, &head, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 0);

	/* hostile method and header lines are refused before anything is sent */
	int before = atomic_load(&s->hits_any);
	httpc_req bad = {.method = "GET /x HTTP/1.1\r\nX:", .url = url};
	assert_int_equal(httpc_perform(c, &bad, &r), TH_EINVAL);
	const char *inj[] = {"X-A: 1\r\nX-Injected: 2"};
	httpc_req bad2 = {.url = url, .headers = inj, .nheaders = 1};
	assert_int_equal(httpc_perform(c, &bad2, &r), TH_EINVAL);
	assert_int_equal(r.fail, HTTPC_FAIL_URL);
	assert_int_equal(atomic_load(&s->hits_any), before);

	httpc_resp_clear(&r);
	httpc_free(c);
	srv_stop(s);
}

static void test_timeout(void **state)
{
	struct srv *s = srv_start();
	httpc *c = client(300, 1000, false, 0);
	httpc_resp r;
	httpc_resp_init(&r);
	int64_t t0 = time_mono_ms();
	assert_int_equal(get(c, s->base, "/slow", &r), TH_EUNAVAIL);
	int64_t took = time_mono_ms() - t0;
	assert_int_equal(r.fail, HTTPC_FAIL_TIMEOUT);
	assert_int_equal(r.status, 0);
	assert_true(took >= 250);
	assert_true(took < 1400); /* the server answers only after 1500 ms */
	assert_true(httpc_fail_transient(r.fail));
	assert_false(httpc_fail_never_sent(r.fail)); /* it may have been received */
	assert_true(r.error[0] != '\0');

	/* a per-request timeout can only shorten the handle's */
	httpc *c2 = client(5000, 1000, false, 0);
	char url[256];
	snprintf(url, sizeof url, "%s/slow", s->base);
	httpc_req q = {.url = url, .timeout_ms = 200};
	t0 = time_mono_ms();
	assert_int_equal(httpc_perform(c2, &q, &r), TH_EUNAVAIL);
	assert_true(time_mono_ms() - t0 < 1400);
	httpc_resp_clear(&r);
	httpc_free(c2);
	httpc_free(c);
	srv_stop(s);
}

static void test_hanging_server(void **state)
{
	/* accepts, reads the request, never answers */
	struct raw *raw = raw_start(false);
	httpc *c = client(400, 1000, false, 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/1/members/me", raw->port);
	httpc_resp r;
	httpc_resp_init(&r);
	httpc_req q = {.url = url};
	int64_t t0 = time_mono_ms();
	assert_int_equal(httpc_perform(c, &q, &r), TH_EUNAVAIL);
	assert_int_equal(r.fail, HTTPC_FAIL_TIMEOUT);
	assert_true(time_mono_ms() - t0 < 2000);
	httpc_resp_clear(&r);
	httpc_free(c);
	raw_stop(raw);
}

static void test_body_cap(void **state)
{
	struct srv *s = srv_start();
	httpc *c = client(5000, 1000, false, 0);
	httpc_resp r;
	httpc_resp_init(&r);
	assert_int_equal(get(c, s->base, "/big", &r), TH_ETOOBIG);
	assert_int_equal(r.fail, HTTPC_FAIL_TOOBIG);
	assert_non_null(strstr(r.error, "1000 bytes"));
	assert_true(r.body.len <= 1000);
	/* exactly at the cap passes */
	httpc *c2 = client(5000, 100000, false, 0);
	assert_int_equal(get(c2, s->base, "/big", &r), 0);
	assert_int_equal(r.body.len, 100000);
	/* keep_head: the first bytes kept, the rest read and dropped */
	httpc *c3 = client(5000, 1000, true, 0);
	assert_int_equal(get(c3, s->base, "/big", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 1000);
	assert_true(r.truncated);
	/* and the connection still works for the next call */
	assert_int_equal(get(c3, s->base, "/ok", &r), 0);
	assert_false(r.truncated);
	assert_string_equal(r.body.data, "hello GET");
	httpc_resp_clear(&r);
	httpc_free(c);
	httpc_free(c2);
	httpc_free(c3);
	srv_stop(s);
}

static void test_redirects(void **state)
{
	struct srv *s = srv_start();
	httpc_resp r;
	httpc_resp_init(&r);
	/* default: not followed; the 3xx is the answer */
	httpc *c = client(5000, 1000, false, 0);
	assert_int_equal(get(c, s->base, "/to-ok", &r), 0);
	assert_int_equal(r.status, 302);
	assert_int_equal(atomic_load(&s->hits_ok), 0);
	/* asked for: followed, within http/https */
	httpc *c2 = client(5000, 1000, false, 2);
	assert_int_equal(get(c2, s->base, "/to-ok", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(atomic_load(&s->hits_ok), 1);
	/* never to another scheme */
	assert_int_equal(get(c2, s->base, "/to-file", &r), TH_EUNAVAIL);
	assert_int_equal(r.fail, HTTPC_FAIL_REDIRECT);
	assert_non_null(strstr(r.error, "redirect refused"));
	assert_int_equal(get(c2, s->base, "/to-ftp", &r), TH_EUNAVAIL);
	assert_int_equal(r.fail, HTTPC_FAIL_REDIRECT);
	/* nor forever */
	assert_int_equal(get(c2, s->base, "/loop", &r), TH_EUNAVAIL);
	assert_int_equal(r.fail, HTTPC_FAIL_REDIRECT);
	httpc_resp_clear(&r);
	httpc_free(c);
	httpc_free(c2);
	srv_stop(s);
}

static void test_schemes_refused(void **state)
{
	struct srv *s = srv_start();
	httpc *c = client(2000, 1000, false, 3);
	httpc_resp r;
	httpc_resp_init(&r);
	static const char *const bad[] = {
	    "ftp://127.0.0.1/x",
	    "file:///etc/passwd",
	    "gopher://127.0.0.1:70/",
	    "dict://127.0.0.1/",
	    "scp://127.0.0.1/x",
	    "ldap://127.0.0.1/",
	    "telnet://127.0.0.1",
	    "smtp://127.0.0.1",
	    "http:/127.0.0.1/",
	    "127.0.0.1/ok",
	    "",
	    "http://exa mple.com/",
	    "http://a\x01.b/",
	    "\xff\xfe://x",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		httpc_req q = {.url = bad[i]};
		int rc = httpc_perform(c, &q, &r);
		if (rc != TH_EINVAL)
			fail_msg("%s: rc %d", bad[i], rc);
		assert_int_equal(r.fail, HTTPC_FAIL_URL);
		assert_true(httpc_fail_never_sent(r.fail));
		assert_non_null(strstr(r.error, "http://"));
	}
	httpc_req nul = {.url = NULL};
	assert_int_equal(httpc_perform(c, &nul, &r), TH_EINVAL);
	assert_int_equal(atomic_load(&s->hits_any), 0);
	/* the scheme is case-insensitive */
	char url[256];
	snprintf(url, sizeof url, "HTTP://%s/ok", s->base + strlen("http://"));
	httpc_req up = {.url = url};
	assert_int_equal(httpc_perform(c, &up, &r), 0);
	assert_int_equal(r.status, 200);
	httpc_resp_clear(&r);
	httpc_free(c);
	srv_stop(s);
}

static void test_connect_refused(void **state)
{
	struct raw *raw = raw_start(true);
	int port = raw->port;
	raw_stop(raw); /* the port is now closed */
	httpc *c = client(2000, 1000, false, 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	httpc_resp r;
	httpc_resp_init(&r);
	httpc_req q = {.method = "POST", .url = url, .body = "x", .body_len = 1};
	assert_int_equal(httpc_perform(c, &q, &r), TH_EUNAVAIL);
	assert_int_equal(r.fail, HTTPC_FAIL_CONNECT);
	assert_true(httpc_fail_never_sent(r.fail));
	assert_true(httpc_fail_transient(r.fail));
	httpc_resp_clear(&r);
	httpc_free(c);
}

static void test_keep_alive(void **state)
{
	struct raw *raw = raw_start(true);
	httpc *c = client(2000, 1000, false, 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", raw->port);
	httpc_resp r;
	httpc_resp_init(&r);
	for (int i = 0; i < 20; i++) {
		httpc_req q = {.url = url};
		assert_int_equal(httpc_perform(c, &q, &r), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(r.body.data, "ok");
	}
	/* one kept handle: one connection for all 20 calls */
	assert_int_equal(atomic_load(&raw->conns), 1);
	/* a second handle has its own */
	httpc *c2 = client(2000, 1000, false, 0);
	httpc_req q = {.url = url};
	assert_int_equal(httpc_perform(c2, &q, &r), 0);
	assert_int_equal(atomic_load(&raw->conns), 2);
	httpc_resp_clear(&r);
	httpc_free(c);
	httpc_free(c2);
	raw_stop(raw);
}

static bool abort_now(void *ctx)
{
	return atomic_load((atomic_bool *)ctx);
}

static void test_abort(void **state)
{
	struct srv *s = srv_start();
	atomic_bool stop;
	atomic_init(&stop, true);
	httpc *c = NULL;
	httpc_opts o = HTTPC_OPTS_INIT;
	o.timeout_ms = 5000;
	o.connect_timeout_ms = 5000;
	o.max_body = 100;
	o.abort = abort_now;
	o.abort_ctx = &stop;
	th_error e = {0, {0}};
	assert_int_equal(httpc_new(&c, &o, &e), 0);
	httpc_resp r;
	httpc_resp_init(&r);
	int64_t t0 = time_mono_ms();
	assert_int_equal(get(c, s->base, "/slow", &r), TH_EUNAVAIL);
	assert_int_equal(r.fail, HTTPC_FAIL_ABORTED);
	assert_true(time_mono_ms() - t0 < 1400);
	atomic_store(&stop, false);
	assert_int_equal(get(c, s->base, "/ok", &r), 0);
	httpc_resp_clear(&r);
	httpc_free(c);
	srv_stop(s);
}

static void test_group(void **state)
{
	struct srv *s = srv_start();
	httpc_group *g = NULL;
	assert_int_equal(httpc_group_new(&g, 4), 0);
	httpc *cs[3];
	httpc_resp rs[3];
	httpc_req qs[3];
	char urls[3][256];
	int tags[3] = {0, 1, 2};
	int64_t t0 = time_mono_ms();
	for (int i = 0; i < 3; i++) {
		cs[i] = client(5000, 1000, false, 0);
		httpc_resp_init(&rs[i]);
		snprintf(urls[i], sizeof urls[i], "%s%s", s->base, i == 2 ? "/nope" : "/slow");
		qs[i] = (httpc_req){.url = urls[i]};
		assert_int_equal(httpc_group_add(g, cs[i], &qs[i], &rs[i], &tags[i]), 0);
	}
	/* a busy handle is refused */
	httpc_resp extra;
	httpc_resp_init(&extra);
	assert_int_not_equal(httpc_group_add(g, cs[0], &qs[0], &extra, NULL), 0);
	int done = 0, seen[3] = {0};
	while (done < 3 && time_mono_ms() - t0 < 8000) {
		httpc_group_run(g, 100);
		int *t;
		while ((t = httpc_group_done(g)) != NULL) {
			seen[*t]++;
			done++;
		}
	}
	assert_int_equal(done, 3);
	/* in parallel: two 1.5 s answers took less than the 3 s they take in turn */
	assert_true(time_mono_ms() - t0 < 2900);
	assert_int_equal(seen[0] + seen[1] + seen[2], 3);
	assert_int_equal(rs[0].status, 200);
	assert_string_equal(rs[1].body.data, "late");
	assert_int_equal(rs[2].status, 404);
	/* a handle can be freed while still attached (its transfer is dropped) */
	assert_int_equal(httpc_group_add(g, cs[0], &qs[0], &rs[0], &tags[0]), 0);
	httpc_free(cs[0]);
	assert_int_equal(httpc_group_run(g, 0), 0);
	assert_null(httpc_group_done(g));
	httpc_group_free(g);
	for (int i = 0; i < 3; i++) {
		if (i)
			httpc_free(cs[i]);
		httpc_resp_clear(&rs[i]);
	}
	httpc_resp_clear(&extra);
	srv_stop(s);
}

static void test_mask(void **state)
{
	char out[512];
	httpc_mask_url("https://api.trello.com/1/tokens/" TOKEN "/webhooks?key=" API_KEY
	               "&fields=name&token=" TOKEN "#frag",
	               NULL, out, sizeof out);
	assert_null(strstr(out, TOKEN));
	assert_null(strstr(out, API_KEY));
	assert_null(strstr(out, "0123456789abcdef0123"));
	assert_non_null(strstr(out, "https://api.trello.com/1/tokens/ATTA"));
	assert_non_null(strstr(out, "/webhooks?key=5f1d"));
	assert_non_null(strstr(out, "&fields=name&token=ATTA"));
	assert_non_null(strstr(out, "#frag"));
	/* passwords in the authority; names case-insensitive; short secrets */
	httpc_mask_url("http://user:hunter2pass@h.example:8080/p?API_KEY=abc&Token=&x=1", NULL, out,
	               sizeof out);
	assert_string_equal(out, "http://user:****@h.example:8080/p?API_KEY=****&Token=****&x=1");
	/* a caller-named secret anywhere */
	httpc_mask_url("http://h/cards/s3cr3t-value-here/x", "s3cr3t-value-here", out, sizeof out);
	assert_null(strstr(out, "s3cr3t-value-here"));
	/* hostile input: bounded, terminated */
	char huge[5000];
	memset(huge, 'a', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	httpc_mask_url(huge, NULL, out, 16);
	assert_int_equal(strlen(out), 15);
	httpc_mask_url(NULL, NULL, out, sizeof out);
	assert_string_equal(out, "");
	httpc_mask_url("http://h/?token=\xff\xfe\x00", NULL, out, sizeof out);
	assert_null(strstr(out, "\xff"));

	httpc_mask_header("Authorization: OAuth oauth_consumer_key=\"" API_KEY
	                  "\", oauth_token=\"" TOKEN "\"",
	                  out, sizeof out);
	assert_string_equal(out, "Authorization: OAuth ****");
	httpc_mask_header("authorization:Basic dXNlcjpwYXNz", out, sizeof out);
	assert_string_equal(out, "authorization: Basic ****");
	httpc_mask_header("Cookie: s=1", out, sizeof out);
	assert_string_equal(out, "Cookie: ****");
	httpc_mask_header("X-Trello-Webhook: c2lnbmF0dXJl", out, sizeof out);
	assert_string_equal(out, "X-Trello-Webhook: ****");
	httpc_mask_header("Content-Type: application/json", out, sizeof out);
	assert_string_equal(out, "Content-Type: application/json");
	httpc_mask_header("no colon here", out, sizeof out);
	assert_string_equal(out, "no colon here");
}

/* What the logs of real calls show: no secret, the masked forms instead. */
static void test_logs_masked(void **state)
{
	struct srv *s = srv_start();
	char logpath[] = "/tmp/test_http_client_log_XXXXXX";
	int lfd = mkstemp(logpath);
	assert_true(lfd >= 0);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(lfd, 2) >= 0);
	log_setup(LOG_DEBUG, LOG_TEXT);

	httpc *c = client(2000, 1000, false, 0);
	httpc_resp r;
	httpc_resp_init(&r);
	char url[512];
	snprintf(url, sizeof url, "%s/ok?key=%s&token=%s", s->base, API_KEY, TOKEN);
	const char *h[] = {"Authorization: OAuth oauth_consumer_key=\"" API_KEY
	                   "\", oauth_token=\"" TOKEN "\"",
	                   "X-Other: visible"};
	httpc_req q = {.url = url, .headers = h, .nheaders = 2};
	int rc = httpc_perform(c, &q, &r);
	snprintf(url, sizeof url, "%s/tokens/%s/webhooks", s->base, TOKEN);
	httpc_req q2 = {.url = url};
	int rc2 = httpc_perform(c, &q2, &r);
	/* a failure's message quotes nothing secret either */
	httpc_req q3 = {.url = "http://127.0.0.1:1/tokens/" TOKEN, .secret = TOKEN};
	int rc3 = httpc_perform(c, &q3, &r);

	log_setup(LOG_INFO, LOG_TEXT);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	assert_int_equal(rc, 0);
	assert_int_equal(rc2, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(rc3, TH_EUNAVAIL);
	assert_null(strstr(r.error, TOKEN));

	char logbuf[65536];
	ssize_t n = pread(lfd, logbuf, sizeof logbuf - 1, 0);
	close(lfd);
	unlink(logpath);
	assert_true(n > 0);
	logbuf[n] = '\0';
	assert_null(strstr(logbuf, TOKEN));
	assert_null(strstr(logbuf, API_KEY));
	assert_null(strstr(logbuf, "0123456789abcdef0123"));
	assert_non_null(strstr(logbuf, "-> GET "));
	assert_non_null(strstr(logbuf, "<- GET "));
	assert_non_null(strstr(logbuf, "/ok?key=5f1d"));
	assert_non_null(strstr(logbuf, "Authorization: OAuth ****"));
	assert_non_null(strstr(logbuf, "X-Other: visible"));
	assert_non_null(strstr(logbuf, "/tokens/ATTA"));
	httpc_resp_clear(&r);
	httpc_free(c);
	srv_stop(s);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_options_mandatory),
	    cmocka_unit_test(test_get_post_and_headers),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_hanging_server),
	    cmocka_unit_test(test_body_cap),
	    cmocka_unit_test(test_redirects),
	    cmocka_unit_test(test_schemes_refused),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test(test_keep_alive),
	    cmocka_unit_test(test_abort),
	    cmocka_unit_test(test_group),
	    cmocka_unit_test(test_mask),
	    cmocka_unit_test(test_logs_masked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

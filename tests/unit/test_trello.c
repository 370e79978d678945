/* SPDX-License-Identifier: MIT */
/* Unit tests of the Trello client.
 *
 *  1. Pure parts, no server: --model parsing, error bodies (text and JSON,
 *     hostile ones), rate-limit headers, Trello's JSON objects.
 *  2. Against a scripted HTTP server in this process (a stand-in for Trello's
 *     misbehaviour the mock cannot produce): retries, 5xx, timeouts, oversized
 *     and malformed answers, the Authorization header, no secret in URLs or logs.
 *  3. Against the real `trello-mock` binary (started per test on port 0) with
 *     a real receiver for Trello's HEAD check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http/http.h"
#include "trello/trello.h"
#include "util/log.h"
#include "util/util.h"

#include "child.h"

#define KEY "0123456789abcdef0123456789abcdef"
#define TOK1 "1111111111111111111111111111111111111111111111111111111111111111"
#define TOK2 "ATTA2222222222222222222222222222222222222222222222222222222222222222ABCDEF12"
#define TOK3 "3333333333333333333333333333333333333333333333333333333333333333"
#define TOK4 "ATTA4444444444444444444444444444444444444444444444444444444444444444ABCDEF44"
#define TOK_UNKNOWN "9999999999999999999999999999999999999999999999999999999999999999"

/* ==== 1. pure parts ================================================================ */

static void test_model_ref_ok(void **state)
{
	trello_model_ref r;
	th_error e = {0};
	assert_int_equal(trello_parse_model_ref("5f1e2d3c4b5a69788796a5b4", &r, &e), 0);
	assert_int_equal(r.kind, TRELLO_REF_ID);
	assert_string_equal(r.value, "5f1e2d3c4b5a69788796a5b4");

	static const struct {
		const char *in;
		enum trello_ref_kind kind;
		const char *value;
	} ok[] = {
	    {"https://trello.com/b/AbCd1234/roadmap-2027", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"https://trello.com/b/AbCd1234", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"https://trello.com/b/AbCd1234/", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"http://trello.com/b/AbCd1234/x?filter=member:me", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"trello.com/b/AbCd1234/roadmap", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"https://www.trello.com/b/AbCd1234#frag", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"HTTPS://Trello.com/b/AbCd1234", TRELLO_REF_BOARD_SHORT, "AbCd1234"},
	    {"https://trello.com/c/XyZ98765/42-ship-it", TRELLO_REF_CARD_SHORT, "XyZ98765"},
	    {"trello.com/c/XyZ98765", TRELLO_REF_CARD_SHORT, "XyZ98765"},
	    {"https://trello.com/c/XyZ98765?x=1", TRELLO_REF_CARD_SHORT, "XyZ98765"},
	    {"https://trello.com/b/5f1e2d3c4b5a69788796a5b4/x", TRELLO_REF_BOARD_SHORT,
	     "5f1e2d3c4b5a69788796a5b4"},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(ok); i++) {
		memset(&e, 0, sizeof e);
		int rc = trello_parse_model_ref(ok[i].in, &r, &e);
		if (rc)
			fail_msg("%s: %s", ok[i].in, e.msg);
		assert_int_equal(r.kind, ok[i].kind);
		assert_string_equal(r.value, ok[i].value);
	}
}

static void test_model_ref_bad(void **state)
{
	static const char *const bad[] = {
	    "",
	    "5f1e2d3c4b5a69788796a5b",   /* 23 hex */
	    "5f1e2d3c4b5a69788796a5b4 ", /* trailing space */
	    "5f1e2d3c4b5a69788796a5bg",  /* not hex */
	    "https://example.com/b/AbCd1234/x",
	    "https://trello.com.evil.example/b/AbCd1234",
	    "https://trello.com/u/someone",
	    "https://trello.com/w/workspace",
	    "https://trello.com/b/",
	    "https://trello.com/b/AbC/x",       /* short link too short */
	    "https://trello.com/b/AbCd12345/x", /* too long */
	    "https://trello.com/b/AbCd-234/x",
	    "https://trello.com/b/AbCd1234/x y", /* space */
	    "https://trello.com/b/AbCd1234/\x01",
	    "ftp://trello.com/b/AbCd1234",
	    "trello.com",
	    "\xff\xfe\x80garbage",
	    "board",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		trello_model_ref r;
		th_error e = {0};
		assert_int_equal(trello_parse_model_ref(bad[i], &r, &e), TH_EINVAL);
		assert_int_equal(e.code, TH_EINVAL);
		/* the message names the option and shows an example */
		assert_non_null(strstr(e.msg, "--model"));
		assert_non_null(strstr(e.msg, "https://trello.com/b/"));
		assert_true(str_utf8_valid(e.msg, strlen(e.msg)));
		for (const char *p = e.msg; *p; p++)
			assert_true((unsigned char)*p >= 0x20);
	}
	trello_model_ref r;
	assert_int_equal(trello_parse_model_ref(NULL, &r, NULL), TH_EINVAL);
	/* a huge argument: the message stays bounded and terminated */
	char *huge = malloc(100000);
	assert_non_null(huge);
	memset(huge, 'a', 99999);
	huge[99999] = '\0';
	th_error e = {0};
	assert_int_equal(trello_parse_model_ref(huge, &r, &e), TH_EINVAL);
	assert_true(strlen(e.msg) < sizeof e.msg);
	free(huge);
}

static void check_answer(int status, const char *body, int code, enum trello_error_kind kind,
                         const char *msg)
{
	trello_error te;
	trello_error_from_answer(status, body, body ? strlen(body) : 0, &te);
	if (te.th.code != code || te.kind != kind || (msg && strcmp(te.th.msg, msg) != 0))
		fail_msg("status %d body \"%s\": got code %d kind %s msg \"%s\"", status,
		         body ? body : "(null)", te.th.code, trello_error_kind_name(te.kind),
		         te.th.msg);
	assert_int_equal(te.http_status, status);
}

static void test_error_bodies(void **state)
{
	check_answer(401, "invalid token", TH_EAUTH, TRELLO_ERR_INVALID_TOKEN,
	             "Trello: invalid token");
	check_answer(401, "invalid token\n", TH_EAUTH, TRELLO_ERR_INVALID_TOKEN,
	             "Trello: invalid token");
	check_answer(401, "expired token", TH_EAUTH, TRELLO_ERR_EXPIRED_TOKEN,
	             "Trello: expired token");
	check_answer(401, "invalid key", TH_EAUTH, TRELLO_ERR_INVALID_KEY, "Trello: invalid key");
	check_answer(401, "webhook does not belong to token", TH_EAUTH, TRELLO_ERR_NOT_OWNER,
	             "Trello: webhook does not belong to token");
	check_answer(401, "{\"message\":\"expired token\",\"error\":\"EXPIRED_TOKEN\"}", TH_EAUTH,
	             TRELLO_ERR_EXPIRED_TOKEN, "Trello: expired token");
	check_answer(401, "  {\"error\":\"invalid token\"}", TH_EAUTH, TRELLO_ERR_INVALID_TOKEN,
	             "Trello: invalid token");
	check_answer(400, "A webhook with that callback, model, and token already exists",
	             TH_ETRELLO, TRELLO_ERR_DUPLICATE,
	             "Trello: A webhook with that callback, model, and token already exists");
	check_answer(400,
	             "{\"message\":\"A webhook with that callback, model, and token already "
	             "exists\",\"error\":\"ERROR\"}",
	             TH_ETRELLO, TRELLO_ERR_DUPLICATE,
	             "Trello: A webhook with that callback, model, and token already exists");
	check_answer(400, "invalid value for idModel", TH_ETRELLO, TRELLO_ERR_BAD_MODEL,
	             "Trello: invalid value for idModel");
	check_answer(400, "URL (https://x.example/cb) did not return 200 status code, got 404",
	             TH_ETRELLO, TRELLO_ERR_HEAD_CHECK,
	             "Trello: URL (https://x.example/cb) did not return 200 status code, got 404");
	check_answer(
	    400,
	    "{\"message\":\"URL (https://x.example/cb) not reachable. Error: ECONNREFUSED\","
	    "\"error\":\"VALIDATOR_URL_NOT_REACHABLE\"}",
	    TH_ETRELLO, TRELLO_ERR_HEAD_CHECK, NULL);
	check_answer(400, "invalid id", TH_ETRELLO, TRELLO_ERR_OTHER, "Trello: invalid id");
	check_answer(404, "The requested resource was not found.", TH_ENOTFOUND,
	             TRELLO_ERR_NOT_FOUND, "Trello: The requested resource was not found.");
	check_answer(429,
	             "{\"error\":\"API_TOKEN_LIMIT_EXCEEDED\",\"message\":\"Rate limit exceeded\"}",
	             TH_EUNAVAIL, TRELLO_ERR_RATE_LIMITED, "Trello: Rate limit exceeded");
	check_answer(503, "<html><body>Service Unavailable</body></html>", TH_EUNAVAIL,
	             TRELLO_ERR_SERVER, NULL);
	check_answer(401, "", TH_EAUTH, TRELLO_ERR_OTHER, "Trello: HTTP 401 with no message");
	check_answer(400, NULL, TH_ETRELLO, TRELLO_ERR_OTHER, "Trello: HTTP 400 with no message");
	/* JSON without message/error, or not an object: shown as nothing rather than raw braces */
	check_answer(400, "{\"foo\":1}", TH_ETRELLO, TRELLO_ERR_OTHER,
	             "Trello: HTTP 400 with no message");
	check_answer(400, "{truncated", TH_ETRELLO, TRELLO_ERR_OTHER, "Trello: {truncated");
	check_answer(418, "multi\r\nline\t\ttext", TH_ETRELLO, TRELLO_ERR_OTHER,
	             "Trello: multi line text");
	/* hostile: control bytes, escape sequences, invalid UTF-8, huge */
	trello_error te;
	const char hostile[] = "evil\x1b[31m\xff\xfe\x00zz";
	trello_error_from_answer(400, hostile, sizeof hostile - 1, &te);
	assert_true(str_utf8_valid(te.th.msg, strlen(te.th.msg)));
	for (const char *p = te.th.msg; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	assert_non_null(strstr(te.th.msg, "evil"));
	size_t big = 1 << 20;
	char *huge = malloc(big);
	assert_non_null(huge);
	memset(huge, 'x', big);
	trello_error_from_answer(400, huge, big, &te);
	assert_true(strlen(te.th.msg) < sizeof te.th.msg);
	free(huge);
	/* valid multibyte text is kept whole (never cut mid-character) */
	char zoe[600];
	buf b;
	buf_init(&b, sizeof zoe - 1);
	while (buf_puts(&b, "Zo\xc3\xab ") == 0)
		;
	trello_error_from_answer(400, b.data, b.len, &te);
	assert_true(str_utf8_valid(te.th.msg, strlen(te.th.msg)));
	assert_non_null(strstr(te.th.msg, "Zo\xc3\xab"));
	buf_free(&b);
	assert_true(trello_error_is_token_dead(&(trello_error){.kind = TRELLO_ERR_EXPIRED_TOKEN}));
	assert_false(trello_error_is_token_dead(&(trello_error){.kind = TRELLO_ERR_NOT_FOUND}));
	assert_false(trello_error_is_token_dead(NULL));
	assert_string_equal(trello_error_kind_name(TRELLO_ERR_EXPIRED_TOKEN), "expired-token");
}

static void feed(trello_rate_info *r, const char *line)
{
	trello_rate_parse_header(r, line, strlen(line));
}

static void test_rate_headers(void **state)
{
	trello_rate_info r;
	trello_rate_info_init(&r);
	assert_int_equal(r.token_remaining, -1);
	assert_true(trello_rate_parse_header(&r, "x-rate-limit-api-token-remaining: 99\r\n", 38));
	feed(&r, "X-Rate-Limit-Api-Token-Max:100\r\n");
	feed(&r, "x-rate-limit-api-token-interval-ms: \t10000 \r\n");
	feed(&r, "x-rate-limit-api-key-remaining: 0\r\n");
	feed(&r, "x-rate-limit-api-key-max: 300\r\n");
	feed(&r, "x-rate-limit-api-key-interval-ms: 10000\r\n");
	assert_int_equal(r.token_remaining, 99);
	assert_int_equal(r.token_max, 100);
	assert_int_equal(r.token_interval_ms, 10000);
	assert_int_equal(r.key_remaining, 0);
	assert_int_equal(r.key_max, 300);
	assert_int_equal(r.key_interval_ms, 10000);
	/* malformed values leave the field alone */
	static const char *const junk[] = {
	    "x-rate-limit-api-token-remaining: -1\r\n",
	    "x-rate-limit-api-token-remaining: +5\r\n",
	    "x-rate-limit-api-token-remaining: 5x\r\n",
	    "x-rate-limit-api-token-remaining: \r\n",
	    "x-rate-limit-api-token-remaining: 99999999999999999999999999\r\n",
	    "x-rate-limit-api-token-remaining: 1 2\r\n",
	    "x-rate-limit-api-token-remaining: 0x10\r\n",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(junk); i++) {
		assert_true(trello_rate_parse_header(&r, junk[i], strlen(junk[i])));
		assert_int_equal(r.token_remaining, 99);
	}
	/* other headers and header-like junk are not ours */
	assert_false(trello_rate_parse_header(&r, "content-type: text/plain\r\n", 26));
	assert_false(
	    trello_rate_parse_header(&r, "x-rate-limit-api-token-remaining-extra: 1\r\n", 43));
	assert_false(trello_rate_parse_header(&r, "no colon here", 13));
	assert_false(trello_rate_parse_header(&r, "", 0));
	/* not NUL-terminated: only @len bytes are read */
	const char cut[] = "x-rate-limit-api-token-remaining: 42GARBAGE";
	assert_true(trello_rate_parse_header(&r, cut, sizeof cut - 1 - 7));
	assert_int_equal(r.token_remaining, 42);
}

static void test_parse_webhook(void **state)
{
	trello_webhook w;
	th_error e = {0};
	const char *full =
	    "{\"id\":\"5f1e2d3c4b5a69788796a5b4\",\"description\":\"Roadmap \\u00e9\","
	    "\"idModel\":\"5f1e2d3c4b5a69788796aaaa\",\"callbackURL\":\"https://h.example/"
	    "callbacks/abc\",\"active\":false,\"consecutiveFailures\":3,"
	    "\"firstConsecutiveFailDate\":\"2026-11-20T09:15:02.117Z\",\"extra\":[1,2]}";
	assert_int_equal(trello_parse_webhook(full, strlen(full), &w, &e), 0);
	assert_string_equal(w.id, "5f1e2d3c4b5a69788796a5b4");
	assert_string_equal(w.description, "Roadmap \xc3\xa9");
	assert_string_equal(w.id_model, "5f1e2d3c4b5a69788796aaaa");
	assert_string_equal(w.callback_url, "https://h.example/callbacks/abc");
	assert_false(w.active);
	assert_int_equal(w.consecutive_failures, 3);
	assert_string_equal(w.first_consecutive_fail_date, "2026-11-20T09:15:02.117Z");
	trello_webhook_clear(&w);
	assert_null(w.id);
	trello_webhook_clear(NULL);

	const char *minimal =
	    "{\"id\":\"abc\",\"firstConsecutiveFailDate\":null,\"description\":null}";
	assert_int_equal(trello_parse_webhook(minimal, strlen(minimal), &w, &e), 0);
	assert_true(w.active); /* Trello's default */
	assert_null(w.description);
	assert_null(w.first_consecutive_fail_date);
	trello_webhook_clear(&w);

	static const char *const bad[] = {
	    "",
	    "null",
	    "[]",
	    "{}", /* no id */
	    "{\"id\":\"\"}",
	    "{\"id\":5}",
	    "{\"id\":\"a\",\"active\":\"yes\"}",
	    "{\"id\":\"a\",\"active\":1}",
	    "{\"id\":\"a\",\"consecutiveFailures\":-1}",
	    "{\"id\":\"a\",\"consecutiveFailures\":1.5}",
	    "{\"id\":\"a\",\"consecutiveFailures\":\"3\"}",
	    "{\"id\":\"a\",\"callbackURL\":{}}",
	    "{\"id\":\"a\",\"description\":[\"x\"]}",
	    "{\"id\":\"a\"", /* truncated */
	    "{\"id\":\"a\"} trailing",
	    "{\"id\":\"\xff\xfe\"}",       /* not UTF-8 */
	    "{\"id\":\"a\",\"id\":\"b\"}", /* duplicate keys */
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		memset(&e, 0, sizeof e);
		w.id = (char *)"not-touched";
		assert_int_not_equal(trello_parse_webhook(bad[i], strlen(bad[i]), &w, &e), 0);
		assert_int_equal(e.code, TH_ETRELLO);
		assert_true(str_starts(e.msg, "Trello sent an unexpected answer: "));
		assert_null(w.id);
	}
	assert_int_equal(trello_parse_webhook(NULL, 0, &w, &e), TH_ETRELLO);
	/* deeply nested garbage is refused without blowing the stack */
	size_t depth = 100000;
	char *deep = malloc(depth * 2 + 16);
	assert_non_null(deep);
	size_t n = 0;
	n += (size_t)snprintf(deep, 16, "{\"id\":\"a\",\"x\":");
	for (size_t i = 0; i < depth; i++)
		deep[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_int_equal(trello_parse_webhook(deep, n, &w, &e), TH_ETRELLO);
	free(deep);
}

/* The actions listing: well-formed arrays parse; every hostile shape is a
 * clear "unexpected answer", never a crash or a partial list. */
static void test_parse_actions(void **state)
{
	(void)state;
	trello_action_list l;
	th_error e = {0};
	const char *two =
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"commentCard\","
	    "\"date\":\"2026-11-20T09:15:02.117Z\",\"data\":{\"text\":\"Z\xc3\xab\"}},"
	    "{\"id\":\"5f0000000000000000000001\",\"type\":\"createCard\","
	    "\"date\":\"2026-11-20T09:15:01.000Z\"}]";
	assert_int_equal(trello_parse_action_list(two, strlen(two), 10, &l, &e), 0);
	assert_int_equal(l.len, 2);
	assert_string_equal(l.items[0].id, "5f0000000000000000000002");
	assert_string_equal(l.items[0].type, "commentCard");
	assert_string_equal(l.items[0].date, "2026-11-20T09:15:02.117Z");
	assert_true(l.items[0].date_ms > l.items[1].date_ms);
	assert_non_null(strstr(l.items[0].json, "\"text\":\"Z\xc3\xab\""));
	trello_action_list_clear(&l);
	assert_null(l.items);
	assert_int_equal(trello_parse_action_list("[]", 2, 10, &l, &e), 0);
	assert_int_equal(l.len, 0);
	/* More than asked for. */
	assert_int_equal(trello_parse_action_list(two, strlen(two), 1, &l, &e), TH_ETRELLO);
	assert_non_null(strstr(e.msg, "more actions"));
	assert_null(l.items);
	static const char *const bad[] = {
	    "",
	    "{}",
	    "null",
	    "[1]",
	    "[[]]",
	    "[{\"type\":\"x\",\"date\":\"2026-11-20T09:15:02Z\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"date\":\"2026-11-20T09:15:02Z\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\"}]",
	    "[{\"id\":\"nothex00000000000000000z\",\"type\":\"x\",\"date\":\"2026-11-20T09:15:02Z\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"a b\",\"date\":\"2026-11-20T09:15:02Z\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\",\"date\":\"yesterday\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":7,\"date\":\"2026-11-20T09:15:02Z\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\",\"date\":\"2026-11-20T09:15:02Z\"}",
	    "[{\"id\":\"5f0000000000000000000002\",\"id\":\"5f0000000000000000000003\","
	    "\"type\":\"x\",\"date\":\"2026-11-20T09:15:02Z\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\",\"date\":\"2026-11-20T09:15:02Z\","
	    "\"data\":\"\xff\xfe\"}]",
	    "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\",\"date\":\"2026-11-20T09:15:02Z\","
	    "\"data\":\"a\\u0000b\"}]",
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		if (trello_parse_action_list(bad[i], strlen(bad[i]), 10, &l, &e) != TH_ETRELLO)
			fail_msg("accepted hostile listing %zu: %s", i, bad[i]);
		assert_non_null(strstr(e.msg, "unexpected answer"));
		assert_null(l.items);
		assert_int_equal(l.len, 0);
	}
	/* Valid first element, hostile second: nothing half-filled is left. */
	const char *half = "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\","
	                   "\"date\":\"2026-11-20T09:15:02Z\"},{\"id\":1}]";
	assert_int_equal(trello_parse_action_list(half, strlen(half), 10, &l, &e), TH_ETRELLO);
	assert_null(l.items);
	/* Deep nesting and a huge array do not crash. */
	size_t depth = 100000, n = 0;
	char *deep = malloc(depth * 2 + 200);
	assert_non_null(deep);
	n += (size_t)snprintf(deep, 200,
	                      "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\","
	                      "\"date\":\"2026-11-20T09:15:02Z\",\"data\":");
	for (size_t i = 0; i < depth; i++)
		deep[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n++] = ']';
	assert_int_equal(trello_parse_action_list(deep, n, 10, &l, &e), TH_ETRELLO);
	free(deep);
	/* Bounds for since/before. */
	assert_true(trello_action_bound_ok("5f0000000000000000000002"));
	assert_true(trello_action_bound_ok("2026-11-20T09:15:02Z"));
	assert_true(trello_action_bound_ok("2026-11-20T09:15:02.117Z"));
	assert_false(trello_action_bound_ok("2026-11-20T09:15:02Z&token=x"));
	assert_false(trello_action_bound_ok("yesterday"));
	assert_false(trello_action_bound_ok(""));
	assert_false(trello_action_bound_ok(NULL));
}

static void test_parse_lists(void **state)
{
	trello_webhook_list l;
	th_error e = {0};
	const char *two = "[{\"id\":\"a\",\"active\":true},{\"id\":\"b\",\"active\":false}]";
	assert_int_equal(trello_parse_webhook_list(two, strlen(two), &l, &e), 0);
	assert_int_equal(l.len, 2);
	assert_string_equal(l.items[1].id, "b");
	assert_false(l.items[1].active);
	trello_webhook_list_clear(&l);
	assert_int_equal(l.len, 0);
	assert_int_equal(trello_parse_webhook_list("[]", 2, &l, &e), 0);
	assert_int_equal(l.len, 0);
	trello_webhook_list_clear(&l);
	static const char *const bad[] = {"{}",
	                                  "[1]",
	                                  "[{\"id\":\"a\"},null]",
	                                  "[{\"id\":\"a\"},{\"id\":\"b\",\"active\":\"no\"}]",
	                                  "[",
	                                  "\"invalid token\""};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		assert_int_equal(trello_parse_webhook_list(bad[i], strlen(bad[i]), &l, &e),
		                 TH_ETRELLO);
		assert_null(l.items);
		assert_int_equal(l.len, 0);
	}

	trello_token_info ti;
	const char *tok =
	    "{\"id\":\"t1\",\"idMember\":\"m1\",\"dateCreated\":\"2026-01-01T00:00:00.000Z\","
	    "\"dateExpires\":null,\"permissions\":[{\"idModel\":\"*\",\"modelType\":"
	    "\"Board\",\"read\":true,\"write\":false},{\"idModel\":\"m1\",\"modelType\":"
	    "\"Member\",\"read\":true,\"write\":true}],\"identifier\":\"trellohook\"}";
	assert_int_equal(trello_parse_token_info(tok, strlen(tok), &ti, &e), 0);
	assert_string_equal(ti.id_member, "m1");
	assert_null(ti.date_expires);
	assert_int_equal(ti.npermissions, 2);
	assert_string_equal(ti.permissions[0].model_type, "Board");
	assert_true(ti.permissions[0].read);
	assert_false(ti.permissions[0].write);
	assert_true(ti.permissions[1].write);
	trello_token_info_clear(&ti);
	const char *expiring = "{\"id\":\"t1\",\"dateExpires\":\"2026-12-01T00:00:00.000Z\"}";
	assert_int_equal(trello_parse_token_info(expiring, strlen(expiring), &ti, &e), 0);
	assert_string_equal(ti.date_expires, "2026-12-01T00:00:00.000Z");
	assert_int_equal(ti.npermissions, 0);
	trello_token_info_clear(&ti);
	static const char *const badtok[] = {
	    "{\"id\":\"t\",\"permissions\":{}}",
	    "{\"id\":\"t\",\"permissions\":[1]}",
	    "{\"id\":\"t\",\"permissions\":[{\"read\":\"yes\"}]}",
	    "{\"id\":\"t\",\"permissions\":[{\"idModel\":\"*\"},{\"modelType\":7}]}",
	    "{\"id\":\"t\",\"dateExpires\":0}",
	    "{\"idMember\":\"m\"}"};
	for (size_t i = 0; i < TH_ARRAY_LEN(badtok); i++) {
		assert_int_equal(trello_parse_token_info(badtok[i], strlen(badtok[i]), &ti, &e),
		                 TH_ETRELLO);
		assert_null(ti.permissions);
	}

	trello_member m;
	const char *me =
	    "{\"id\":\"m1\",\"username\":\"zoe\",\"fullName\":\"Zo\\u00eb \\u00c5ngstr\\u00f6m\"}";
	assert_int_equal(trello_parse_member(me, strlen(me), &m, &e), 0);
	assert_string_equal(m.full_name, "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m");
	trello_member_clear(&m);
	assert_int_equal(trello_parse_member("{\"id\":\"m\",\"username\":1}", 24, &m, &e),
	                 TH_ETRELLO);

	trello_board_list bl;
	const char *boards =
	    "[{\"id\":\"b1\",\"name\":\"<b>Road</b>\",\"url\":\"https://trello.com/b/"
	    "AbCd1234/road\",\"shortLink\":\"AbCd1234\"}]";
	assert_int_equal(trello_parse_board_list(boards, strlen(boards), &bl, &e), 0);
	assert_int_equal(bl.len, 1);
	assert_string_equal(bl.items[0].name, "<b>Road</b>");
	trello_board_list_clear(&bl);
	assert_int_equal(trello_parse_board_list("[{\"name\":\"x\"}]", 14, &bl, &e), TH_ETRELLO);

	trello_model mo;
	const char *board =
	    "{\"id\":\"5f1e2d3c4b5a69788796a5b4\",\"name\":\"Roadmap\",\"url\":\"u\"}";
	assert_int_equal(trello_parse_model(board, strlen(board), TRELLO_MODEL_CARD, &mo, &e), 0);
	assert_int_equal(mo.type, TRELLO_MODEL_CARD);
	assert_string_equal(trello_model_type_name(mo.type), "card");
	trello_model_clear(&mo);
	const char *shortid = "{\"id\":\"AbCd1234\",\"name\":\"x\"}";
	assert_int_equal(trello_parse_model(shortid, strlen(shortid), TRELLO_MODEL_BOARD, &mo, &e),
	                 TH_ETRELLO);
	assert_null(mo.id);
}

static void test_client_opts(void **state)
{
	trello_client *c = NULL;
	trello_client_opts o = TRELLO_CLIENT_OPTS_INIT;
	th_error e = {0};
	assert_int_equal(trello_client_new(&c, &o, &e), TH_ECONFIG);
	assert_null(c);
	assert_non_null(strstr(e.msg, "API key"));
	o.api_key = "bad\"key";
	assert_int_equal(trello_client_new(&c, &o, &e), TH_ECONFIG);
	o.api_key = KEY;
	o.api_url = "ftp://example.com/1";
	assert_int_equal(trello_client_new(&c, &o, &e), TH_ECONFIG);
	o.api_url = "http://127.0.0.1:1/1///";
	assert_int_equal(trello_client_new(&c, &o, &e), 0);
	assert_string_equal(trello_client_api_url(c), "http://127.0.0.1:1/1");
	trello_client_free(c);
	/* NULL api_url: TRELLO_API_URL, else Trello itself */
	o.api_url = NULL;
	assert_int_equal(setenv("TRELLO_API_URL", "http://127.0.0.1:2/1", 1), 0);
	assert_int_equal(trello_client_new(&c, &o, &e), 0);
	assert_string_equal(trello_client_api_url(c), "http://127.0.0.1:2/1");
	trello_client_free(c);
	unsetenv("TRELLO_API_URL");
	assert_int_equal(trello_client_new(&c, &o, &e), 0);
	assert_string_equal(trello_client_api_url(c), TRELLO_DEFAULT_API_URL);
	/* tokens that could break the Authorization header are refused before any I/O */
	trello_webhook_list l;
	trello_error te;
	assert_int_equal(trello_list_webhooks(c, "abc\r\nX-Evil: 1", &l, &te), TH_EINVAL);
	assert_int_equal(trello_list_webhooks(c, "ab\"c", &l, &te), TH_EINVAL);
	assert_int_equal(trello_list_webhooks(c, "", &l, &te), TH_EINVAL);
	assert_int_equal(trello_list_webhooks(c, NULL, &l, &te), TH_EINVAL);
	trello_webhook w;
	trello_webhook_params p = TRELLO_WEBHOOK_PARAMS_INIT;
	assert_int_equal(trello_create_webhook(c, TOK1, &p, &w, &te), TH_EINVAL);
	assert_non_null(strstr(te.th.msg, "needs a callback URL and a model id"));
	p.callback_url = "http://x/\xff";
	p.id_model = "5f1e2d3c4b5a69788796a5b4";
	assert_int_equal(trello_create_webhook(c, TOK1, &p, &w, &te), TH_EINVAL);
	assert_non_null(strstr(te.th.msg, "must be UTF-8 text"));
	/* an update checks the fields it sends the same way, before any I/O */
	trello_webhook_params up = TRELLO_WEBHOOK_PARAMS_INIT;
	up.description = "bad \xc3";
	assert_int_equal(trello_update_webhook(c, TOK1, "5f1e2d3c4b5a69788796a5b4", &up, NULL, &te),
	                 TH_EINVAL);
	assert_non_null(strstr(te.th.msg, "must be UTF-8 text"));
	assert_int_equal(trello_update_webhook(c, TOK1, "", &up, NULL, &te), TH_EINVAL);
	assert_non_null(strstr(te.th.msg, "webhook id is needed"));
	assert_int_equal(trello_delete_webhook(c, TOK1, "", &te), TH_EINVAL);
	trello_client_free(c);
	trello_client_free(NULL);
}

/* ==== 2. a scripted stand-in for Trello in this process ============================== */

/* One scripted answer. */
struct step {
	int status;
	const char *body; /* NULL: a 9 MiB body */
	long remaining;   /* x-rate-limit-api-token-remaining, -1 none */
	long interval_ms; /* x-rate-limit-api-token-interval-ms, -1 none */
	int delay_ms;     /* sleep before answering */
};

struct script {
	pthread_mutex_t lock;
	const struct step *steps;
	size_t nsteps;
	size_t hits;    /* requests seen (the last step repeats) */
	char auth[600]; /* the last Authorization header */
	char path[600]; /* the last path + query names */
	char method[16];
	char body[2048];
	char content_type[128];
	int64_t times[16]; /* arrival of the first requests, monotonic ms */
	http_server *srv;
	char base[128];
};

static int script_handler(void *ctx, http_request *req, http_response *res)
{
	struct script *s = ctx;
	pthread_mutex_lock(&s->lock);
	size_t i = s->hits < s->nsteps ? s->hits : s->nsteps - 1;
	if (s->hits < TH_ARRAY_LEN(s->times))
		s->times[s->hits] = time_mono_ms();
	s->hits++;
	const char *a = http_header(req, "Authorization");
	str_copy(s->auth, sizeof s->auth, a ? a : "");
	const char *ct = http_header(req, "Content-Type");
	str_copy(s->content_type, sizeof s->content_type, ct ? ct : "");
	buf p;
	buf_init(&p, sizeof s->path - 1);
	buf_puts(&p, req->path);
	for (size_t k = 0; k < req->nargs; k++)
		buf_printf(&p, "%c%s=%s", k ? '&' : '?', req->args[k].name,
		           req->args[k].value ? req->args[k].value : "");
	str_copy(s->path, sizeof s->path, p.data ? p.data : "");
	buf_free(&p);
	str_copy(s->method, sizeof s->method, req->method);
	str_copy(s->body, sizeof s->body, req->body ? req->body : "");
	struct step st = s->steps[i];
	pthread_mutex_unlock(&s->lock);

	if (st.delay_ms)
		usleep((useconds_t)st.delay_ms * 1000);
	char v[32];
	if (st.remaining >= 0) {
		snprintf(v, sizeof v, "%ld", st.remaining);
		http_response_header(res, "X-Rate-Limit-Api-Token-Remaining", v);
		http_response_header(res, "X-Rate-Limit-Api-Token-Max", "5");
	}
	if (st.interval_ms >= 0) {
		snprintf(v, sizeof v, "%ld", st.interval_ms);
		http_response_header(res, "X-Rate-Limit-Api-Token-Interval-Ms", v);
	}
	if (st.body) {
		http_response_body(res, st.status, "application/json", st.body, strlen(st.body));
	} else {
		size_t n = (size_t)9 << 20;
		char *big = malloc(n);
		if (!big)
			return http_response_text(res, 500, "oom"), HTTP_DONE;
		memset(big, ' ', n);
		big[0] = '[';
		big[n - 1] = ']';
		http_response_body(res, st.status, "application/json", big, n);
		free(big);
	}
	return HTTP_DONE;
}

/* Requests seen so far. Under the lock: after a client timeout the handler
 * of an abandoned request may still be running (ThreadSanitizer saw it). */
static size_t script_hits(struct script *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->hits;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void script_hits_reset(struct script *s)
{
	pthread_mutex_lock(&s->lock);
	s->hits = 0;
	pthread_mutex_unlock(&s->lock);
}

static void script_start(struct script *s, const struct step *steps, size_t n)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->lock, NULL);
	s->steps = steps;
	s->nsteps = n;
	http_server_opts o = {.listen = "127.0.0.1:0",
	                      .max_body = 1 << 20,
	                      .threads = 4,
	                      .thread_per_connection = true,
	                      .handler = script_handler,
	                      .ctx = s,
	                      .name = "fake-trello"};
	th_error e = {0};
	if (http_server_start(&s->srv, &o, &e))
		fail_msg("cannot start the scripted server: %s", e.msg);
	snprintf(s->base, sizeof s->base, "%s/1", http_server_url(s->srv));
}

static void script_stop(struct script *s)
{
	http_server_free(s->srv);
	pthread_mutex_destroy(&s->lock);
}

static trello_client *client_for(const char *base, long timeout_ms, int retries)
{
	trello_client *c = NULL;
	trello_client_opts o = TRELLO_CLIENT_OPTS_INIT;
	th_error e = {0};
	o.api_url = base;
	o.api_key = KEY;
	o.backoff_ms = 20;
	o.max_retries = retries;
	o.rate_wait_ms_default = 300;
	o.rate_wait_ms_max = 2000;
	if (timeout_ms)
		o.timeout_ms = timeout_ms;
	if (trello_client_new(&c, &o, &e))
		fail_msg("trello_client_new: %s", e.msg);
	return c;
}

#define WH_JSON                                                                          \
	"{\"id\":\"5f1e2d3c4b5a69788796a5b4\",\"idModel\":\"5f1e2d3c4b5a69788796aaaa\"," \
	"\"callbackURL\":\"http://r.example/cb\",\"description\":\"d\",\"active\":true," \
	"\"consecutiveFailures\":0,\"firstConsecutiveFailDate\":null}"

static void test_fake_wire_format(void **state)
{
	static const struct step steps[] = {{200, WH_JSON, -1, -1, 0}};
	struct script s;
	script_start(&s, steps, 1);
	trello_client *c = client_for(s.base, 0, 3);

	/* capture everything logged at debug level while calling */
	char logpath[] = "/tmp/test_trello_log_XXXXXX";
	int lfd = mkstemp(logpath);
	assert_true(lfd >= 0);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(lfd, 2) >= 0);
	log_setup(LOG_DEBUG, LOG_TEXT);

	trello_webhook w;
	trello_error te;
	trello_webhook_params p = TRELLO_WEBHOOK_PARAMS_INIT;
	p.callback_url = "http://r.example/cb";
	p.id_model = "5f1e2d3c4b5a69788796aaaa";
	p.description = "Roadmap \"2027\" \xe2\x9c\x93";
	p.active = 1;
	int rc = trello_create_webhook(c, TOK2, &p, &w, &te);
	char auth[600], path[600], body[2048], ctype[128], method[16];
	str_copy(auth, sizeof auth, s.auth);
	str_copy(path, sizeof path, s.path);
	str_copy(body, sizeof body, s.body);
	str_copy(ctype, sizeof ctype, s.content_type);
	str_copy(method, sizeof method, s.method);
	trello_webhook_list l;
	int rc2 = trello_list_webhooks(c, TOK2, &l, &te); /* the answer is an object: bad answer */

	log_setup(LOG_INFO, LOG_TEXT);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);

	assert_int_equal(rc, 0);
	assert_string_equal(w.id, "5f1e2d3c4b5a69788796a5b4");
	trello_webhook_clear(&w);
	assert_int_equal(rc2, TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_BAD_ANSWER);
	assert_true(str_starts(te.th.msg, "Trello sent an unexpected answer: "));

	assert_string_equal(method, "POST");
	assert_string_equal(auth, "OAuth oauth_consumer_key=\"" KEY "\", oauth_token=\"" TOK2 "\"");
	assert_string_equal(path, "/1/webhooks"); /* no key, no token in the URL */
	assert_true(str_starts(ctype, "application/json"));
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "callbackURL")),
	                    "http://r.example/cb");
	assert_string_equal(json_string_value(json_object_get(j, "idModel")),
	                    "5f1e2d3c4b5a69788796aaaa");
	assert_string_equal(json_string_value(json_object_get(j, "description")), p.description);
	assert_true(json_is_true(json_object_get(j, "active")));
	json_decref(j);

	/* the log mentions the calls but never the key or a token */
	char logbuf[65536];
	ssize_t n = pread(lfd, logbuf, sizeof logbuf - 1, 0);
	assert_true(n > 0);
	logbuf[n] = '\0';
	close(lfd);
	unlink(logpath);
	assert_non_null(strstr(logbuf, "POST /webhooks"));
	assert_non_null(strstr(logbuf, "GET /tokens/ATTA"));
	assert_null(strstr(logbuf, TOK2));
	assert_null(strstr(logbuf, KEY));
	assert_null(strstr(logbuf, "2222222222222222"));
	trello_client_free(c);
	script_stop(&s);
}

static void test_fake_retries(void **state)
{
	/* GET: two 503s, then the answer */
	static const struct step flaky[] = {{503, "busy", -1, -1, 0},
	                                    {502, "<html>bad gateway</html>", -1, -1, 0},
	                                    {200, "[" WH_JSON "]", -1, -1, 0}};
	struct script s;
	script_start(&s, flaky, TH_ARRAY_LEN(flaky));
	trello_client *c = client_for(s.base, 0, 3);
	trello_webhook_list l;
	trello_error te;
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), 0);
	assert_int_equal(l.len, 1);
	assert_int_equal(script_hits(&s), 3);
	trello_webhook_list_clear(&l);
	trello_client_free(c);
	script_stop(&s);

	/* GET: always 500 → 1 + max_retries attempts, then TH_EUNAVAIL */
	static const struct step down[] = {{500, "{\"message\":\"Internal error\"}", -1, -1, 0}};
	script_start(&s, down, 1);
	c = client_for(s.base, 0, 2);
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), TH_EUNAVAIL);
	assert_int_equal(te.kind, TRELLO_ERR_SERVER);
	assert_int_equal(te.http_status, 500);
	assert_non_null(strstr(te.th.msg, "Internal error"));
	assert_int_equal(script_hits(&s), 3);
	/* POST create is not idempotent: one attempt only */
	script_hits_reset(&s);
	trello_webhook w;
	trello_webhook_params p = {"http://r.example/cb", "5f1e2d3c4b5a69788796aaaa", NULL, -1};
	assert_int_equal(trello_create_webhook(c, TOK1, &p, &w, &te), TH_EUNAVAIL);
	assert_int_equal(script_hits(&s), 1);
	/* DELETE and PUT are retried */
	script_hits_reset(&s);
	assert_int_equal(trello_delete_webhook(c, TOK1, "5f1e2d3c4b5a69788796a5b4", &te),
	                 TH_EUNAVAIL);
	assert_int_equal(script_hits(&s), 3);
	trello_client_free(c);
	script_stop(&s);
}

static void test_fake_rate_limit(void **state)
{
	/* 429 with a short interval header: waited out, then the call succeeds */
	static const struct step limited[] = {
	    {429, "{\"error\":\"API_TOKEN_LIMIT_EXCEEDED\",\"message\":\"Rate limit exceeded\"}", 0,
	     200, 0},
	    {200, WH_JSON, 4, 200, 0}};
	struct script s;
	script_start(&s, limited, 2);
	trello_client *c = client_for(s.base, 0, 0);
	trello_webhook w;
	trello_error te;
	trello_webhook_params p = {"http://r.example/cb", "5f1e2d3c4b5a69788796aaaa", NULL, -1};
	/* a POST may be repeated after 429: Trello did nothing */
	assert_int_equal(trello_create_webhook(c, TOK1, &p, &w, &te), 0);
	trello_webhook_clear(&w);
	assert_int_equal(script_hits(&s), 2);
	int64_t waited = s.times[1] - s.times[0];
	assert_true(waited >= 150);
	assert_true(waited < 2000);
	trello_client_free(c);
	script_stop(&s);

	/* always 429: bounded number of waits, then a clear error */
	static const struct step always[] = {
	    {429, "{\"error\":\"API_TOKEN_LIMIT_EXCEEDED\",\"message\":\"Rate limit exceeded\"}", 0,
	     30, 0}};
	script_start(&s, always, 1);
	c = client_for(s.base, 0, 3);
	trello_webhook_list l;
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), TH_EUNAVAIL);
	assert_int_equal(te.kind, TRELLO_ERR_RATE_LIMITED);
	assert_non_null(strstr(te.th.msg, "rate limit"));
	assert_int_equal(script_hits(&s), 6); /* the first try + 5 waits */
	trello_client_free(c);
	script_stop(&s);

	/* remaining 0 on a success: the next call pauses before going out */
	static const struct step last[] = {{200, "[]", 0, 300, 0}, {200, "[]", 4, 300, 0}};
	script_start(&s, last, 2);
	c = client_for(s.base, 0, 0);
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), 0);
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), 0);
	assert_int_equal(script_hits(&s), 2);
	waited = s.times[1] - s.times[0];
	assert_true(waited >= 250);
	/* another token is not held back */
	int64_t t0 = time_mono_ms();
	assert_int_equal(trello_list_webhooks(c, TOK3, &l, &te), 0);
	assert_true(time_mono_ms() - t0 < 250);
	trello_client_free(c);
	script_stop(&s);
}

static void test_fake_bad_answers(void **state)
{
	static const struct step huge[] = {{200, NULL, -1, -1, 0}};
	struct script s;
	script_start(&s, huge, 1);
	trello_client *c = client_for(s.base, 0, 3);
	trello_webhook_list l;
	trello_error te;
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), TH_ETOOBIG);
	assert_int_equal(te.kind, TRELLO_ERR_BAD_ANSWER);
	assert_int_equal(script_hits(&s), 1); /* not retried */
	trello_client_free(c);
	script_stop(&s);

	static const struct step garbage[] = {
	    {200, "[{\"id\":\"a\",\"active\":\"sure\"}]", -1, -1, 0}};
	script_start(&s, garbage, 1);
	c = client_for(s.base, 0, 3);
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_BAD_ANSWER);
	assert_non_null(strstr(te.th.msg, "\"active\""));
	trello_token_info ti;
	assert_int_equal(trello_get_token(c, TOK1, &ti, &te), TH_ETRELLO);
	trello_client_free(c);
	script_stop(&s);

	/* Hostile actions listings over the wire: one clear error, nothing kept. */
	static const struct step hostile[] = {
	    {200, "{\"actions\":[]}", -1, -1, 0},
	    {200, "[{\"id\":\"5f0000000000000000000002\",\"type\":\"x\"}]", -1, -1, 0},
	    {200, "[{\"id\":\"5f00", -1, -1, 0},
	    {200, "[\"\xff\xfe\"]", -1, -1, 0}};
	script_start(&s, hostile, TH_ARRAY_LEN(hostile));
	c = client_for(s.base, 0, 3);
	trello_actions_query aq = {.limit = 50};
	trello_action_list al;
	for (size_t i = 0; i < TH_ARRAY_LEN(hostile); i++) {
		assert_int_equal(trello_list_actions(c, TOK1, TRELLO_MODEL_BOARD,
		                                     "5f0000000000000000000001", &aq, &al, &te),
		                 TH_ETRELLO);
		assert_int_equal(te.kind, TRELLO_ERR_BAD_ANSWER);
		assert_non_null(strstr(te.th.msg, "unexpected answer"));
		assert_null(al.items);
		assert_int_equal(al.len, 0);
	}
	assert_int_equal(s.hits, TH_ARRAY_LEN(hostile)); /* a bad answer is not retried */
	trello_client_free(c);
	script_stop(&s);

	/* too slow: timeout, retried, then unreachable */
	static const struct step slow[] = {{200, "[]", -1, -1, 1500}};
	script_start(&s, slow, 1);
	c = client_for(s.base, 200, 1);
	int64_t t0 = time_mono_ms();
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), TH_EUNAVAIL);
	assert_int_equal(te.kind, TRELLO_ERR_UNREACHABLE);
	int64_t took = time_mono_ms() - t0;
	if (took >= 1400)
		fail_msg("took %lld ms, hits %zu: %s", (long long)took, script_hits(&s), te.th.msg);
	assert_non_null(strstr(te.th.msg, "cannot reach Trello at "));
	assert_int_equal(script_hits(&s), 2);
	trello_client_free(c);
	script_stop(&s);
}

/* A port nothing listens on (bound then closed). */
static void count_notice(void *ctx, const char *what)
{
	int *n = ctx;
	(*n)++;
	assert_non_null(strstr(what, "waiting for Trello at http://127.0.0.1:"));
	assert_non_null(strstr(what, "GET /tokens/ATTA"));
	assert_null(strstr(what, TOK2));
}

/* A client with a deadline gives up on a Trello that answers too late, all
 * retries included, and says once what it waits for. */
static void test_fake_deadline(void **state)
{
	static const struct step steps[] = {{200, "[]", -1, -1, 3000}};
	struct script s;
	script_start(&s, steps, 1);
	trello_client *c = client_for(s.base, 0, 3);
	int notices = 0;
	trello_client_set_deadline(c, 700);
	trello_client_set_notice(c, 200, count_notice, &notices);
	trello_webhook_list l;
	trello_error te;
	int64_t t0 = time_mono_ms();
	int rc = trello_list_webhooks(c, TOK2, &l, &te);
	int64_t took = time_mono_ms() - t0;
	assert_int_equal(rc, TH_EUNAVAIL);
	assert_int_equal(te.kind, TRELLO_ERR_UNREACHABLE);
	assert_non_null(strstr(te.th.msg, "did not answer GET /tokens/ATTA"));
	assert_null(strstr(te.th.msg, TOK2));
	assert_true(took >= 600 && took < 2000);
	assert_int_equal(notices, 1);
	/* past the deadline, further calls give up at once; no second notice */
	t0 = time_mono_ms();
	const char *toks[] = {TOK1, TOK3};
	trello_webhook_list out[2];
	trello_error errs[2];
	assert_int_equal(trello_list_webhooks_many(c, toks, 2, out, errs), TH_EUNAVAIL);
	assert_true(time_mono_ms() - t0 < 500);
	assert_int_equal(errs[1].kind, TRELLO_ERR_UNREACHABLE);
	assert_int_equal(notices, 1);
	for (int i = 0; i < 2; i++)
		trello_webhook_list_clear(&out[i]);
	/* clearing the deadline: calls wait for the answer again */
	trello_client_set_deadline(c, 0);
	assert_int_equal(trello_list_webhooks(c, TOK2, &l, &te), 0);
	trello_webhook_list_clear(&l);
	trello_client_free(c);
	script_stop(&s);
}

/* Sets *arg (an atomic_bool) after 300 ms, as a stopping serve does. */
static void *cancel_later(void *arg)
{
	struct timespec ts = {0, 300 * 1000000L};
	nanosleep(&ts, NULL);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

/* The owner's cancel flag, set from another thread, ends a call waiting for a
 * Trello that answers late (well before its timeout and retries), and every
 * later call at once, without the token in the words. */
static void test_fake_cancel(void **state)
{
	static const struct step steps[] = {{200, "[]", -1, -1, 3000}};
	struct script s;
	script_start(&s, steps, 1);
	trello_client *c = client_for(s.base, 0, 3); /* 30 s a try, 3 retries */
	atomic_bool stop;
	atomic_init(&stop, false);
	trello_client_set_cancel(c, &stop);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &stop), 0);
	trello_webhook_list l;
	trello_error te;
	int64_t t0 = time_mono_ms();
	assert_int_equal(trello_list_webhooks(c, TOK2, &l, &te), TH_EUNAVAIL);
	int64_t took = time_mono_ms() - t0;
	pthread_join(t, NULL);
	assert_int_equal(te.kind, TRELLO_ERR_UNREACHABLE);
	assert_non_null(strstr(te.th.msg, "stopping: the call GET /tokens/ATTA"));
	assert_non_null(strstr(te.th.msg, "to Trello was abandoned"));
	assert_null(strstr(te.th.msg, TOK2));
	if (took < 250 || took >= 1500)
		fail_msg("abandoned after %lld ms", (long long)took);
	/* set: a batch ends at once, every call abandoned, none sent */
	size_t hits = script_hits(&s);
	const char *toks[] = {TOK1, TOK3};
	trello_webhook_list out[2];
	trello_error errs[2];
	t0 = time_mono_ms();
	assert_int_equal(trello_list_webhooks_many(c, toks, 2, out, errs), TH_EUNAVAIL);
	assert_true(time_mono_ms() - t0 < 200);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(errs[i].kind, TRELLO_ERR_UNREACHABLE);
		assert_non_null(strstr(errs[i].th.msg, "was abandoned"));
		trello_webhook_list_clear(&out[i]);
	}
	assert_int_equal(script_hits(&s), hits);
	/* cleared: calls wait for the answer again */
	trello_client_set_cancel(c, NULL);
	assert_int_equal(trello_list_webhooks(c, TOK2, &l, &te), 0);
	trello_webhook_list_clear(&l);
	trello_client_free(c);
	script_stop(&s);
}

static int closed_port(void)
{
	http_server *srv = NULL;
	http_server_opts o = {.listen = "127.0.0.1:0", .handler = script_handler, .name = "probe"};
	th_error e = {0};
	if (http_server_start(&srv, &o, &e))
		fail_msg("%s", e.msg);
	int port = http_server_port(srv);
	http_server_free(srv);
	return port;
}

static void test_unreachable(void **state)
{
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d/1", closed_port());
	trello_client *c = client_for(base, 0, 2);
	trello_webhook_list l;
	trello_error te;
	assert_int_equal(trello_list_webhooks(c, TOK1, &l, &te), TH_EUNAVAIL);
	assert_int_equal(te.kind, TRELLO_ERR_UNREACHABLE);
	assert_int_equal(te.http_status, 0);
	char want[96];
	snprintf(want, sizeof want, "cannot reach Trello at %s: ", base);
	if (!str_starts(te.th.msg, want))
		fail_msg("message: %s", te.th.msg);
	assert_null(strstr(te.th.msg, TOK1));
	/* resolve and batch report the same */
	trello_model m;
	assert_int_equal(trello_resolve_model(c, TOK1, "https://trello.com/b/AbCd1234/x", &m, &te),
	                 TH_EUNAVAIL);
	trello_op ops[2] = {{.kind = TRELLO_OP_LIST_WEBHOOKS, .token = TOK1},
	                    {.kind = TRELLO_OP_GET_TOKEN, .token = TOK3}};
	th_error e = {0};
	assert_int_equal(trello_batch_run(c, ops, 2, &e), 0);
	assert_int_equal(ops[0].rc, TH_EUNAVAIL);
	assert_int_equal(ops[1].rc, TH_EUNAVAIL);
	trello_op_clear(&ops[0]);
	trello_op_clear(&ops[1]);
	trello_client_free(c);
}

/* ==== 3. against trello-mock ============================================================ */

struct mock {
	pid_t pid;
	char base[128]; /* http://127.0.0.1:PORT/1 */
	char root[128]; /* http://127.0.0.1:PORT */
};

/* Start trello-mock with @extra flags; false (and a note) when it is not
 * usable yet. */
static bool mock_start(struct mock *m, const char *const *extra)
{
	const char *dir = getenv("TH_BUILD");
	char bin[512];
	memset(m, 0, sizeof *m);
	snprintf(bin, sizeof bin, "%s/trello-mock", dir ? dir : "build");
	const char *argv[32];
	size_t n = 0;
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--key";
	argv[n++] = KEY;
	argv[n++] = "--retry-delays";
	argv[n++] = "0.05,0.05,0.05";
	static const char *const toks[] = {TOK1, TOK2, TOK3, TOK4};
	for (size_t i = 0; i < TH_ARRAY_LEN(toks); i++) {
		argv[n++] = "--token";
		argv[n++] = toks[i];
	}
	for (size_t i = 0; extra && extra[i] && n < TH_ARRAY_LEN(argv) - 1; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	int fds[2];
	if (pipe(fds))
		return false;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		child_dies_with_parent(parent); /* even when a failed assertion skips mock_stop */
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(bin, (char *const *)(void *)argv);
		_exit(127);
	}
	close(fds[1]);
	m->pid = pid;
	char line[256];
	size_t len = 0;
	int64_t deadline = time_mono_ms() + 10000;
	while (len < sizeof line - 1 && time_mono_ms() < deadline) {
		struct pollfd pf = {.fd = fds[0], .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		ssize_t r = read(fds[0], line + len, 1);
		if (r <= 0)
			break;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(fds[0]); /* later stdout writes would fail with EPIPE; the mock prints only the URL */
	if (!str_starts(line, "http://") || !str_ends(line, "/1")) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		m->pid = 0;
		return false;
	}
	str_copy(m->base, sizeof m->base, line);
	str_copy(m->root, sizeof m->root, line);
	m->root[strlen(m->root) - 2] = '\0';
	return true;
}

static void mock_stop(struct mock *m)
{
	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		waitpid(m->pid, NULL, 0);
	}
	m->pid = 0;
}

/* trello-mock is part of the build: one that does not start fails the test */
#define NEED_MOCK(m, extra)                                                                \
	do {                                                                               \
		if (!mock_start((m), (extra)))                                             \
			fail_msg("trello-mock in TH_BUILD did not start or print its URL " \
			         "(is TH_BUILD the build directory?)");                    \
	} while (0)

static size_t collect(char *d, size_t sz, size_t nm, void *ud)
{
	return buf_append(ud, d, sz * nm) == 0 ? sz * nm : 0;
}

/* Call the mock's control API (not Trello's; plain libcurl, no client of ours). */
static json_t *mock_call(const struct mock *m, const char *method, const char *path,
                         const char *body)
{
	CURL *e = curl_easy_init();
	buf b;
	buf_init(&b, 1 << 20);
	char url[512];
	snprintf(url, sizeof url, "%s%s", m->root, path);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
	CURLcode cc = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	if (cc != CURLE_OK || status != 200)
		fail_msg("mock %s %s: curl %d, HTTP %ld: %s", method, path, cc, status,
		         b.data ? b.data : "");
	json_t *j = json_loadb(b.data ? b.data : "", b.len, JSON_DECODE_ANY, NULL);
	buf_free(&b);
	if (!j)
		j = json_null();
	return j;
}

/* A receiver for Trello's HEAD check: 200 except under /missing. */
static int receiver_handler(void *ctx, http_request *req, http_response *res)
{
	if (str_starts(req->path, "/missing"))
		http_response_text(res, 404, "no such callback");
	else
		http_response_text(res, 200, "ok");
	return HTTP_DONE;
}

struct env {
	struct mock m;
	http_server *receiver;
	trello_client *c;
	json_t *board; /* the mock's board with lists and cards */
	const char *board_id;
	char cb[256];   /* a callback URL that answers 200 */
	int dead_calls; /* on_token_dead notifications */
	enum trello_error_kind dead_kind;
	pthread_mutex_t lock;
};

static void on_dead(void *ctx, const char *token, enum trello_error_kind kind)
{
	struct env *v = ctx;
	pthread_mutex_lock(&v->lock);
	v->dead_calls++;
	v->dead_kind = kind;
	pthread_mutex_unlock(&v->lock);
}

static void env_client(struct env *v, long rate_wait_default)
{
	trello_client_opts o = TRELLO_CLIENT_OPTS_INIT;
	th_error e = {0};
	o.api_url = v->m.base;
	o.api_key = KEY;
	o.backoff_ms = 20;
	o.rate_wait_ms_default = rate_wait_default;
	o.rate_wait_ms_max = 3000;
	o.on_token_dead = on_dead;
	o.on_token_dead_ctx = v;
	if (trello_client_new(&v->c, &o, &e))
		fail_msg("%s", e.msg);
}

static struct env *env_up(const char *const *extra)
{
	struct env *v = calloc(1, sizeof *v);
	assert_non_null(v);
	pthread_mutex_init(&v->lock, NULL);
	if (!mock_start(&v->m, extra)) {
		pthread_mutex_destroy(&v->lock);
		free(v);
		return NULL;
	}
	http_server_opts o = {
	    .listen = "127.0.0.1:0", .threads = 2, .handler = receiver_handler, .name = "receiver"};
	th_error e = {0};
	if (http_server_start(&v->receiver, &o, &e))
		fail_msg("%s", e.msg);
	snprintf(v->cb, sizeof v->cb, "%s/callbacks/one", http_server_url(v->receiver));
	v->board = mock_call(&v->m, "POST", "/_mock/boards", "{\"name\":\"Roadmap 2027\"}");
	v->board_id = json_string_value(json_object_get(v->board, "id"));
	assert_non_null(v->board_id);
	env_client(v, 10000);
	return v;
}

static void env_down(struct env *v)
{
	if (!v)
		return;
	trello_client_free(v->c);
	json_decref(v->board);
	http_server_free(v->receiver);
	mock_stop(&v->m);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

#define ENV_UP(v, extra)                                                                   \
	do {                                                                               \
		(v) = env_up(extra);                                                       \
		if (!(v))                                                                  \
			fail_msg("trello-mock in TH_BUILD did not start or print its URL " \
			         "(is TH_BUILD the build directory?)");                    \
	} while (0)

static void test_mock_webhook_crud(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	trello_webhook w, g, u;
	trello_error te;
	trello_webhook_params p = {v->cb, v->board_id, "first", 1};
	if (trello_create_webhook(v->c, TOK1, &p, &w, &te))
		fail_msg("create: %s", te.th.msg);
	assert_true(str_is_trello_id(w.id));
	assert_string_equal(w.id_model, v->board_id);
	assert_string_equal(w.callback_url, v->cb);
	assert_string_equal(w.description, "first");
	assert_true(w.active);

	assert_int_equal(trello_get_webhook(v->c, TOK1, w.id, &g, &te), 0);
	assert_string_equal(g.id, w.id);
	assert_int_equal(g.consecutive_failures, 0);
	assert_null(g.first_consecutive_fail_date);
	trello_webhook_clear(&g);
	/* another token does not see it */
	assert_int_equal(trello_get_webhook(v->c, TOK3, w.id, &g, &te), TH_EAUTH);
	assert_int_equal(te.kind, TRELLO_ERR_NOT_OWNER);

	trello_webhook_list l;
	assert_int_equal(trello_list_webhooks(v->c, TOK1, &l, &te), 0);
	assert_int_equal(l.len, 1);
	assert_string_equal(l.items[0].id, w.id);
	trello_webhook_list_clear(&l);
	assert_int_equal(trello_list_webhooks(v->c, TOK3, &l, &te), 0);
	assert_int_equal(l.len, 0);
	trello_webhook_list_clear(&l);

	trello_webhook_params up = {NULL, NULL, "renamed \xc3\xa9", 0};
	assert_int_equal(trello_update_webhook(v->c, TOK1, w.id, &up, &u, &te), 0);
	assert_string_equal(u.description, "renamed \xc3\xa9");
	assert_false(u.active);
	assert_string_equal(u.callback_url, v->cb);
	trello_webhook_clear(&u);
	assert_int_equal(trello_get_webhook(v->c, TOK1, w.id, &g, &te), 0);
	assert_false(g.active);
	trello_webhook_clear(&g);

	assert_int_equal(trello_delete_webhook(v->c, TOK1, w.id, &te), 0);
	assert_int_not_equal(trello_get_webhook(v->c, TOK1, w.id, &g, &te), 0);
	assert_int_equal(trello_delete_webhook(v->c, TOK1, w.id, &te), TH_ENOTFOUND);
	assert_int_equal(te.kind, TRELLO_ERR_NOT_FOUND);
	assert_int_equal(trello_list_webhooks(v->c, TOK1, &l, &te), 0);
	assert_int_equal(l.len, 0);
	trello_webhook_list_clear(&l);
	trello_webhook_clear(&w);
	env_down(v);
}

static void test_mock_create_errors(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	trello_webhook w;
	trello_error te;
	trello_webhook_params p = {v->cb, v->board_id, "dup", -1};
	assert_int_equal(trello_create_webhook(v->c, TOK1, &p, &w, &te), 0);
	trello_webhook_clear(&w);
	/* duplicate: Trello's message verbatim */
	assert_int_equal(trello_create_webhook(v->c, TOK1, &p, &w, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_DUPLICATE);
	assert_int_equal(te.http_status, 400);
	assert_string_equal(
	    te.th.msg, "Trello: A webhook with that callback, model, and token already exists");
	assert_null(w.id);
	/* same callback and model under another token is fine */
	assert_int_equal(trello_create_webhook(v->c, TOK2, &p, &w, &te), 0);
	trello_webhook_clear(&w);

	/* invalid idModel */
	trello_webhook_params bad = {v->cb, "ffffffffffffffffffffffff", NULL, -1};
	assert_int_equal(trello_create_webhook(v->c, TOK1, &bad, &w, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_BAD_MODEL);
	assert_string_equal(te.th.msg, "Trello: invalid value for idModel");

	/* HEAD check: the receiver answers 404 */
	char cb404[300];
	snprintf(cb404, sizeof cb404, "%s/missing/x", http_server_url(v->receiver));
	trello_webhook_params h404 = {cb404, v->board_id, NULL, -1};
	assert_int_equal(trello_create_webhook(v->c, TOK1, &h404, &w, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_HEAD_CHECK);
	assert_non_null(strstr(te.th.msg, "did not return 200 status code, got 404"));
	assert_non_null(strstr(te.th.msg, cb404));

	/* HEAD check: nothing listens */
	char cbdown[300];
	snprintf(cbdown, sizeof cbdown, "http://127.0.0.1:%d/callbacks/x", closed_port());
	trello_webhook_params hdown = {cbdown, v->board_id, NULL, -1};
	assert_int_equal(trello_create_webhook(v->c, TOK1, &hdown, &w, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_HEAD_CHECK);
	assert_true(str_starts(te.th.msg, "Trello: "));

	/* nothing was made by the failures */
	trello_webhook_list l;
	assert_int_equal(trello_list_webhooks(v->c, TOK1, &l, &te), 0);
	assert_int_equal(l.len, 1);
	trello_webhook_list_clear(&l);
	env_down(v);
}

static void test_mock_tokens(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	trello_error te;
	trello_webhook_list l;
	/* a token Trello never issued */
	assert_int_equal(trello_list_webhooks(v->c, TOK_UNKNOWN, &l, &te), TH_EAUTH);
	assert_int_equal(te.kind, TRELLO_ERR_INVALID_TOKEN);
	assert_int_equal(te.http_status, 401);
	assert_string_equal(te.th.msg, "Trello: invalid token");
	assert_int_equal(v->dead_calls, 1);
	assert_int_equal(v->dead_kind, TRELLO_ERR_INVALID_TOKEN);

	trello_token_info ti;
	assert_int_equal(trello_get_token(v->c, TOK1, &ti, &te), 0);
	assert_non_null(ti.id);
	assert_non_null(ti.id_member);
	assert_null(ti.date_expires);
	trello_token_info_clear(&ti);

	json_t *nt = mock_call(&v->m, "POST", "/_mock/tokens", "{\"expires_in\": 3600}");
	const char *fresh = json_string_value(json_object_get(nt, "token"));
	assert_non_null(fresh);
	assert_int_equal(trello_get_token(v->c, fresh, &ti, &te), 0);
	assert_non_null(ti.date_expires);
	int64_t exp;
	assert_int_equal(time_parse_iso(ti.date_expires, &exp), 0);
	assert_true(exp > time_now_ms());
	trello_token_info_clear(&ti);

	trello_member me;
	assert_int_equal(trello_get_me(v->c, TOK1, &me, &te), 0);
	assert_non_null(me.id);
	trello_member_clear(&me);
	trello_board_list bl;
	assert_int_equal(trello_list_boards(v->c, TOK1, &bl, &te), 0);
	bool found = false;
	for (size_t i = 0; i < bl.len; i++)
		found |= str_eq(bl.items[i].id, v->board_id);
	assert_true(found);
	trello_board_list_clear(&bl);

	/* expire it: every call answers 401 expired token and the webhooks are gone */
	trello_webhook w;
	trello_webhook_params p = {v->cb, v->board_id, NULL, -1};
	assert_int_equal(trello_create_webhook(v->c, fresh, &p, &w, &te), 0);
	char path[256];
	snprintf(path, sizeof path, "/_mock/tokens/%s/expire", fresh);
	json_decref(mock_call(&v->m, "POST", path, NULL));
	assert_int_equal(trello_list_webhooks(v->c, fresh, &l, &te), TH_EAUTH);
	assert_int_equal(te.kind, TRELLO_ERR_EXPIRED_TOKEN);
	assert_string_equal(te.th.msg, "Trello: expired token");
	assert_true(trello_error_is_token_dead(&te));
	trello_webhook g;
	assert_int_equal(trello_get_webhook(v->c, fresh, w.id, &g, &te), TH_EAUTH);
	assert_int_equal(te.kind, TRELLO_ERR_EXPIRED_TOKEN);
	trello_webhook_clear(&w);
	assert_int_equal(v->dead_kind, TRELLO_ERR_EXPIRED_TOKEN);
	json_decref(nt);
	env_down(v);
}

static void test_mock_resolve(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	trello_model m;
	trello_error te;
	json_t *b = v->board;
	const char *name = json_string_value(json_object_get(b, "name"));
	const char *url = json_string_value(json_object_get(b, "url"));
	const char *shortlink = json_string_value(json_object_get(b, "shortLink"));
	json_t *card = json_array_get(json_object_get(b, "cards"), 0);
	json_t *list = json_array_get(json_object_get(b, "lists"), 0);
	assert_non_null(card);
	assert_non_null(list);
	const char *card_id = json_string_value(json_object_get(card, "id"));
	const char *card_short = json_string_value(json_object_get(card, "shortLink"));
	const char *list_id = json_string_value(json_object_get(list, "id"));

	assert_int_equal(trello_resolve_model(v->c, TOK1, v->board_id, &m, &te), 0);
	assert_int_equal(m.type, TRELLO_MODEL_BOARD);
	assert_string_equal(m.id, v->board_id);
	assert_string_equal(m.name, name);
	trello_model_clear(&m);

	if (url) {
		assert_int_equal(trello_resolve_model(v->c, TOK1, url, &m, &te), 0);
		assert_int_equal(m.type, TRELLO_MODEL_BOARD);
		assert_string_equal(m.id, v->board_id);
		trello_model_clear(&m);
	}
	char u[256];
	snprintf(u, sizeof u, "trello.com/b/%s/", shortlink);
	if (trello_resolve_model(v->c, TOK1, u, &m, &te))
		fail_msg("%s: %s", u, te.th.msg);
	assert_string_equal(m.id, v->board_id);
	trello_model_clear(&m);

	assert_int_equal(trello_resolve_model(v->c, TOK1, card_id, &m, &te), 0);
	assert_int_equal(m.type, TRELLO_MODEL_CARD);
	assert_string_equal(m.id, card_id);
	trello_model_clear(&m);
	snprintf(u, sizeof u, "https://trello.com/c/%s/1-some-card?menu=1", card_short);
	assert_int_equal(trello_resolve_model(v->c, TOK1, u, &m, &te), 0);
	assert_int_equal(m.type, TRELLO_MODEL_CARD);
	assert_string_equal(m.id, card_id);
	trello_model_clear(&m);

	assert_int_equal(trello_resolve_model(v->c, TOK1, list_id, &m, &te), 0);
	assert_int_equal(m.type, TRELLO_MODEL_LIST);
	assert_string_equal(m.id, list_id);
	assert_string_equal(trello_model_type_name(m.type), "list");
	trello_model_clear(&m);

	assert_int_equal(trello_resolve_model(v->c, TOK1, "ffffffffffffffffffffffff", &m, &te),
	                 TH_ENOTFOUND);
	assert_non_null(strstr(te.th.msg, "ffffffffffffffffffffffff"));
	assert_int_equal(
	    trello_resolve_model(v->c, TOK1, "https://trello.com/b/Zz9Zz9Zz/x", &m, &te),
	    TH_ENOTFOUND);
	assert_int_equal(trello_resolve_model(v->c, TOK1, "https://example.com/b/x", &m, &te),
	                 TH_EINVAL);
	assert_non_null(strstr(te.th.msg, "--model"));
	assert_int_equal(trello_resolve_model(v->c, TOK_UNKNOWN, v->board_id, &m, &te), TH_EAUTH);
	assert_int_equal(te.kind, TRELLO_ERR_INVALID_TOKEN);
	env_down(v);
}

/* Make @n comments on the board's first card through the control API. */
static void make_comments(struct env *v, const char *card, int n)
{
	for (int i = 0; i < n; i++) {
		char body[256];
		snprintf(body, sizeof body,
		         "{\"type\":\"commentCard\",\"idModel\":\"%s\",\"text\":\"c%d\"}", card, i);
		json_decref(mock_call(&v->m, "POST", "/_mock/actions", body));
	}
}

/* trello_list_actions against trello-mock: newest first, limit, paging
 * with before, since (id and date), filter, card and list resources, and
 * the errors for a model that is gone and for bad arguments. */
static void test_mock_actions(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	trello_error te;
	trello_action_list l;
	json_t *card = json_array_get(json_object_get(v->board, "cards"), 0);
	json_t *list = json_array_get(json_object_get(v->board, "lists"), 0);
	const char *card_id = json_string_value(json_object_get(card, "id"));
	const char *list_id = json_string_value(json_object_get(list, "id"));
	make_comments(v, card_id, 7);

	trello_actions_query q = {.limit = 1000};
	if (trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &q, &l, &te))
		fail_msg("%s", te.th.msg);
	assert_int_equal(l.len, 7);
	assert_non_null(strstr(l.items[0].json, "\"text\":\"c6\""));
	assert_non_null(strstr(l.items[6].json, "\"text\":\"c0\""));
	char oldest[25], newest[25], middle[25], middle_date[40];
	snprintf(oldest, sizeof oldest, "%s", l.items[6].id);
	snprintf(newest, sizeof newest, "%s", l.items[0].id);
	snprintf(middle, sizeof middle, "%s", l.items[3].id);
	snprintf(middle_date, sizeof middle_date, "%s", l.items[3].date);
	trello_action_list_clear(&l);

	/* Paging backwards with before = the oldest seen, 3 at a time. */
	q.limit = 3;
	char before_id[25] = "";
	size_t seen = 0, pages = 0;
	for (;;) {
		q.before = before_id[0] ? before_id : NULL;
		if (trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &q, &l, &te))
			fail_msg("%s", te.th.msg);
		pages++;
		seen += l.len;
		size_t got = l.len;
		if (got)
			snprintf(before_id, sizeof before_id, "%s", l.items[got - 1].id);
		trello_action_list_clear(&l);
		if (got < 3)
			break;
	}
	assert_int_equal(seen, 7);
	assert_int_equal(pages, 3);
	assert_string_equal(before_id, oldest);

	/* since an id: only the newer ones; page skips. */
	q = (trello_actions_query){.limit = 100, .since = middle};
	assert_int_equal(trello_list_actions(v->c, TOK1, TRELLO_MODEL_CARD, card_id, &q, &l, &te),
	                 0);
	assert_int_equal(l.len, 3);
	assert_string_equal(l.items[0].id, newest);
	trello_action_list_clear(&l);
	q = (trello_actions_query){.limit = 2, .page = 1};
	assert_int_equal(trello_list_actions(v->c, TOK1, TRELLO_MODEL_LIST, list_id, &q, &l, &te),
	                 0);
	assert_int_equal(l.len, 2);
	assert_non_null(strstr(l.items[0].json, "\"text\":\"c4\""));
	trello_action_list_clear(&l);
	/* since a date a day later: nothing. */
	q = (trello_actions_query){.limit = 100, .since = "2999-01-01T00:00:00.000Z"};
	assert_int_equal(
	    trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &q, &l, &te), 0);
	assert_int_equal(l.len, 0);
	trello_action_list_clear(&l);
	(void)middle_date;
	/* filter by type. */
	q = (trello_actions_query){.limit = 100, .filter = "createCard,updateCard"};
	assert_int_equal(
	    trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &q, &l, &te), 0);
	assert_int_equal(l.len, 0);
	trello_action_list_clear(&l);
	/* A model that does not exist: 404. Bad arguments: refused before any call. */
	q = (trello_actions_query){.limit = 10};
	assert_int_equal(trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD,
	                                     "ffffffffffffffffffffffff", &q, &l, &te),
	                 TH_ENOTFOUND);
	assert_int_equal(te.kind, TRELLO_ERR_NOT_FOUND);
	q.limit = 1001;
	assert_int_equal(
	    trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &q, &l, &te),
	    TH_EINVAL);
	q = (trello_actions_query){.limit = 10, .since = "now&token=x"};
	assert_int_equal(
	    trello_list_actions(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &q, &l, &te),
	    TH_EINVAL);
	assert_non_null(strstr(te.th.msg, "since"));
	/* The model as Trello returns it. */
	char *json = NULL;
	assert_int_equal(
	    trello_get_model_json(v->c, TOK1, TRELLO_MODEL_BOARD, v->board_id, &json, &te), 0);
	assert_non_null(strstr(json, v->board_id));
	free(json);
	assert_int_equal(trello_get_model_json(v->c, TOK1, TRELLO_MODEL_CARD,
	                                       "ffffffffffffffffffffffff", &json, &te),
	                 TH_ENOTFOUND);
	assert_null(json);
	env_down(v);
}

static void test_mock_json_errors(void **state)
{
	static const char *const extra[] = {"--json-errors", NULL};
	struct env *v;
	ENV_UP(v, extra);
	trello_error te;
	trello_webhook_list l;
	assert_int_equal(trello_list_webhooks(v->c, TOK_UNKNOWN, &l, &te), TH_EAUTH);
	assert_int_equal(te.kind, TRELLO_ERR_INVALID_TOKEN);
	assert_string_equal(te.th.msg, "Trello: invalid token");
	trello_webhook w;
	trello_webhook_params p = {v->cb, v->board_id, NULL, -1};
	assert_int_equal(trello_create_webhook(v->c, TOK1, &p, &w, &te), 0);
	trello_webhook_clear(&w);
	assert_int_equal(trello_create_webhook(v->c, TOK1, &p, &w, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_DUPLICATE);
	assert_string_equal(
	    te.th.msg, "Trello: A webhook with that callback, model, and token already exists");
	trello_webhook_params bad = {v->cb, "ffffffffffffffffffffffff", NULL, -1};
	assert_int_equal(trello_create_webhook(v->c, TOK1, &bad, &w, &te), TH_ETRELLO);
	assert_int_equal(te.kind, TRELLO_ERR_BAD_MODEL);
	env_down(v);
}

static void test_mock_rate_limit(void **state)
{
	static const char *const extra[] = {"--rate-token", "5", "--rate-window-ms", "500", NULL};
	struct env *v;
	ENV_UP(v, extra);
	trello_error te;
	trello_webhook_list l;
	/* 17 calls one after another with 5 per 500 ms: all succeed, in ≥ 3 windows */
	int64_t t0 = time_mono_ms();
	for (int i = 0; i < 17; i++) {
		if (trello_list_webhooks(v->c, TOK1, &l, &te))
			fail_msg("call %d: %s", i, te.th.msg);
		trello_webhook_list_clear(&l);
	}
	int64_t took = time_mono_ms() - t0;
	assert_true(took >= 1400);
	assert_true(took < 6000);

	/* a concurrent burst of 20 on one token, plus 5 on another */
	trello_op ops[25];
	memset(ops, 0, sizeof ops);
	for (size_t i = 0; i < 25; i++) {
		ops[i].kind = i < 20 ? TRELLO_OP_LIST_WEBHOOKS : TRELLO_OP_GET_TOKEN;
		ops[i].token = i < 20 ? TOK2 : TOK3;
	}
	th_error e = {0};
	t0 = time_mono_ms();
	assert_int_equal(trello_batch_run(v->c, ops, 25, &e), 0);
	took = time_mono_ms() - t0;
	for (size_t i = 0; i < 25; i++) {
		if (ops[i].rc)
			fail_msg("op %zu: %s", i, ops[i].err.th.msg);
		trello_op_clear(&ops[i]);
	}
	assert_true(took >= 1400); /* 20 calls need 4 windows */
	assert_true(took < 8000);
	env_down(v);
}

/* Many calls on two tokens finish close to what the rate limits allow: with
 * 20 per 500 ms per token, 60 calls per token need 3 windows, so about
 * 1000 ms (the third window opens at +1000 ms), not 60 calls one by one and
 * not a 429 storm that wastes whole windows. */
enum { RATE_PER_TOKEN = 60 };

/* Run RATE_PER_TOKEN list calls for each of two tokens in one batch on @v's
 * client; returns how long it took in ms. */
static int64_t run_two_token_batch(struct env *v)
{
	trello_op *ops = calloc(2 * RATE_PER_TOKEN, sizeof *ops);
	assert_non_null(ops);
	for (size_t i = 0; i < 2 * RATE_PER_TOKEN; i++) {
		ops[i].kind = TRELLO_OP_LIST_WEBHOOKS;
		ops[i].token = i % 2 ? TOK1 : TOK2;
	}
	th_error e = {0};
	int64_t t0 = time_mono_ms();
	assert_int_equal(trello_batch_run(v->c, ops, 2 * RATE_PER_TOKEN, &e), 0);
	int64_t took = time_mono_ms() - t0;
	for (size_t i = 0; i < 2 * RATE_PER_TOKEN; i++) {
		if (ops[i].rc)
			fail_msg("op %zu: %s", i, ops[i].err.th.msg);
		trello_op_clear(&ops[i]);
	}
	free(ops);
	return took;
}

/* A rate-limited batch waits as the limit requires and no longer: at 20
 * calls per 500 ms per token, 60 calls per token need two full windows of
 * waiting (>= 1,000 ms less scheduling slack), and beyond that the batch may
 * cost only what the same calls cost without a limit, measured in the same
 * run (so a slow machine or valgrind does not read as a wasteful limiter),
 * plus one window of slack. */
static void test_mock_rate_efficiency(void **state)
{
	static const char *const extra[] = {"--rate-token", "20", "--rate-window-ms", "500", NULL};
	struct env *v;
	ENV_UP(v, NULL);
	int64_t unlimited = run_two_token_batch(v);
	env_down(v);
	ENV_UP(v, extra);
	int64_t took = run_two_token_batch(v);
	print_message(
	    "120 calls over 2 tokens at 20 per 500 ms each: %lld ms (no limit: %lld ms)\n",
	    (long long)took, (long long)unlimited);
	assert_true(took >= 950);
	assert_true(took < 1000 + unlimited + 500);
	env_down(v);
}

static void test_mock_many_tokens(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	const char *const toks[] = {TOK1, TOK2, TOK_UNKNOWN, TOK3, TOK4};
	/* three webhooks per real token, created concurrently */
	trello_op ops[12];
	char cbs[12][300];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	for (size_t t = 0; t < 5; t++) {
		if (t == 2)
			continue;
		for (int k = 0; k < 3; k++, n++) {
			snprintf(cbs[n], sizeof cbs[n], "%s/callbacks/%zu-%d",
			         http_server_url(v->receiver), t, k);
			ops[n].kind = TRELLO_OP_CREATE_WEBHOOK;
			ops[n].token = toks[t];
			ops[n].params = (trello_webhook_params){cbs[n], v->board_id, "many", -1};
		}
	}
	th_error e = {0};
	assert_int_equal(trello_batch_run(v->c, ops, n, &e), 0);
	for (size_t i = 0; i < n; i++) {
		if (ops[i].rc)
			fail_msg("create %zu: %s", i, ops[i].err.th.msg);
		assert_string_equal(ops[i].webhook.callback_url, cbs[i]);
		trello_op_clear(&ops[i]);
	}
	trello_webhook_list out[5];
	trello_error errs[5];
	assert_int_equal(trello_list_webhooks_many(v->c, toks, 5, out, errs), TH_EAUTH);
	for (size_t t = 0; t < 5; t++) {
		if (t == 2) {
			assert_int_equal(errs[t].th.code, TH_EAUTH);
			assert_int_equal(errs[t].kind, TRELLO_ERR_INVALID_TOKEN);
			assert_int_equal(out[t].len, 0);
			continue;
		}
		assert_int_equal(errs[t].th.code, 0);
		assert_int_equal(out[t].len, 3);
		for (size_t i = 0; i < 3; i++) {
			char prefix[300];
			snprintf(prefix, sizeof prefix, "%s/callbacks/%zu-",
			         http_server_url(v->receiver), t);
			assert_true(str_starts(out[t].items[i].callback_url, prefix));
		}
		trello_webhook_list_clear(&out[t]);
	}
	/* deletes in one batch, then the lists are empty */
	trello_webhook_list all;
	trello_error te;
	assert_int_equal(trello_list_webhooks(v->c, TOK4, &all, &te), 0);
	trello_op dels[3];
	memset(dels, 0, sizeof dels);
	for (size_t i = 0; i < all.len && i < 3; i++) {
		dels[i].kind = TRELLO_OP_DELETE_WEBHOOK;
		dels[i].token = TOK4;
		dels[i].webhook_id = all.items[i].id;
	}
	assert_int_equal(trello_batch_run(v->c, dels, 3, &e), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(dels[i].rc, 0);
		trello_op_clear(&dels[i]);
	}
	trello_webhook_list_clear(&all);
	assert_int_equal(trello_list_webhooks(v->c, TOK4, &all, &te), 0);
	assert_int_equal(all.len, 0);
	trello_webhook_list_clear(&all);
	env_down(v);
}

/* Many threads share one client. */
struct thr {
	struct env *v;
	int failures;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	for (int i = 0; i < 10; i++) {
		trello_webhook_list l;
		trello_error te;
		if (trello_list_webhooks(t->v->c, i % 2 ? TOK1 : TOK2, &l, &te))
			t->failures++;
		trello_webhook_list_clear(&l);
	}
	return NULL;
}

static void test_mock_threads(void **state)
{
	struct env *v;
	ENV_UP(v, NULL);
	pthread_t th[6];
	struct thr t[6];
	for (int i = 0; i < 6; i++) {
		t[i] = (struct thr){v, 0};
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &t[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].failures, 0);
	}
	env_down(v);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model_ref_ok),         cmocka_unit_test(test_model_ref_bad),
	    cmocka_unit_test(test_error_bodies),         cmocka_unit_test(test_rate_headers),
	    cmocka_unit_test(test_parse_webhook),        cmocka_unit_test(test_parse_lists),
	    cmocka_unit_test(test_parse_actions),        cmocka_unit_test(test_mock_actions),
	    cmocka_unit_test(test_client_opts),          cmocka_unit_test(test_fake_wire_format),
	    cmocka_unit_test(test_fake_retries),         cmocka_unit_test(test_fake_rate_limit),
	    cmocka_unit_test(test_fake_bad_answers),     cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_fake_deadline),        cmocka_unit_test(test_fake_cancel),
	    cmocka_unit_test(test_mock_webhook_crud),    cmocka_unit_test(test_mock_create_errors),
	    cmocka_unit_test(test_mock_tokens),          cmocka_unit_test(test_mock_resolve),
	    cmocka_unit_test(test_mock_json_errors),     cmocka_unit_test(test_mock_rate_limit),
	    cmocka_unit_test(test_mock_rate_efficiency), cmocka_unit_test(test_mock_many_tokens),
	    cmocka_unit_test(test_mock_threads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}

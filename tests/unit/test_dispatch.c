/* dispatch: the retry schedule with jitter, the exec runner (real /bin/sh
 * processes: stdin bytes, environment, exit codes, output bounds, timeouts
 * killing the process group, commands that never read), the handler
 * argument checks, and forward against a receiver that is not there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch/dispatch.h"
#include "service/handlers.h"

static event sample_event(const char *payload)
{
	event ev = {0};
	ev.id = "EvEvEvEvEvEvEvEvEvEv";
	ev.webhook_id = "WhWhWhWhWhWhWhWhWhWh";
	ev.action_id = "6123456789abcdef00010002";
	ev.action_type = "updateCard";
	ev.model_id = "6123456789abcdef01234567";
	ev.board_id = "6123456789abcdef01234567";
	ev.card_id = "6123456789abcdef0000cc07";
	ev.summary = "Zoë moved \"it\" from A to B";
	ev.payload = (char *)payload;
	ev.payload_len = strlen(payload);
	return ev;
}

static void test_retry_delay(void **state)
{
	th_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.retry_ms[0] = 10000;
	cfg.retry_ms[1] = 60000;
	cfg.nretry = 2;
	for (int i = 0; i < 200; i++) {
		int64_t d1 = dispatch_retry_delay(&cfg, 1);
		int64_t d2 = dispatch_retry_delay(&cfg, 2);
		assert_true(d1 >= 9000 && d1 <= 11000);
		assert_true(d2 >= 54000 && d2 <= 66000);
	}
	assert_int_equal(dispatch_retry_delay(&cfg, 3), -1); /* the last attempt: dead */
	assert_int_equal(dispatch_retry_delay(&cfg, 0), -1);
	/* jitter actually varies */
	int64_t a = dispatch_retry_delay(&cfg, 2), b = a;
	for (int i = 0; i < 20 && b == a; i++)
		b = dispatch_retry_delay(&cfg, 2);
	assert_true(a != b);
}

static void test_exec_stdin_env_and_exit(void **state)
{
	const char *body = "{\"action\":{\"id\":\"x\",\"type\":\"t\"}, \"ü\": \"\\u0000\"}";
	event ev = sample_event(body);
	dispatch_result r;
	setenv("TRELLO_API_SECRET", "must-not-leak-0123", 1);
	setenv("DATABASE_URL", "sqlite:/secret/path.db", 1);
	assert_int_equal(dispatch_exec("cat; echo; echo \"$TRELLO_EVENT_ID|$TRELLO_ACTION_TYPE|"
	                               "$TRELLO_CARD_ID|${TRELLO_LIST_ID-unset}|$TRELLO_SUMMARY|"
	                               "${TRELLO_API_SECRET-none}|${DATABASE_URL-none}\"",
	                               &ev, 5000, &r),
	                 0);
	assert_true(r.ok);
	assert_non_null(r.text);
	char want[512];
	snprintf(
	    want, sizeof want,
	    "%s\nEvEvEvEvEvEvEvEvEvEv|updateCard|6123456789abcdef0000cc07|unset|%s|none|none\n",
	    body, ev.summary);
	assert_string_equal(r.text, want);
	dispatch_result_clear(&r);

	assert_int_equal(dispatch_exec("exit 7", &ev, 5000, &r), 0);
	assert_false(r.ok);
	assert_string_equal(r.text, "exit status 7");
	dispatch_result_clear(&r);

	assert_int_equal(dispatch_exec("kill -9 $$", &ev, 5000, &r), 0);
	assert_false(r.ok);
	assert_non_null(strstr(r.text, "killed by signal 9"));
	dispatch_result_clear(&r);
	unsetenv("TRELLO_API_SECRET");
	unsetenv("DATABASE_URL");
}

static void test_exec_big_unread_input_and_flood(void **state)
{
	size_t n = 4 << 20;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'a', n);
	big[n] = '\0';
	event ev = sample_event(big);
	dispatch_result r;
	/* never reads 4 MiB of stdin: EPIPE, not a hang or SIGPIPE */
	assert_int_equal(dispatch_exec("exit 0", &ev, 5000, &r), 0);
	assert_true(r.ok);
	dispatch_result_clear(&r);
	/* reads it all */
	assert_int_equal(dispatch_exec("wc -c", &ev, 5000, &r), 0);
	assert_true(r.ok);
	assert_non_null(r.text);
	assert_int_equal(strtol(r.text, NULL, 10), (long)n);
	dispatch_result_clear(&r);
	/* floods output with NULs and invalid UTF-8: bounded and cleaned */
	assert_int_equal(dispatch_exec("head -c 1000000 /dev/urandom", &ev, 5000, &r), 0);
	assert_true(r.ok);
	assert_non_null(r.text);
	assert_true(strlen(r.text) < DISPATCH_OUTPUT_MAX + 100);
	assert_true(str_utf8_valid(r.text, strlen(r.text)));
	assert_non_null(strstr(r.text, "more bytes dropped"));
	dispatch_result_clear(&r);
	free(big);
}

static void test_exec_timeout_kills_group(void **state)
{
	event ev = sample_event("{}");
	dispatch_result r;
	char pidfile[] = "/tmp/th-dispatch-pidXXXXXX";
	int fd = mkstemp(pidfile);
	assert_true(fd >= 0);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "sleep 30 & echo $! > %s; trap '' TERM; sleep 30", pidfile);
	int64_t t0 = time_mono_ms();
	assert_int_equal(dispatch_exec(cmd, &ev, 300, &r), 0);
	int64_t took = time_mono_ms() - t0;
	assert_false(r.ok);
	assert_non_null(strstr(r.text, "timed out after 300 ms"));
	/* TERM ignored by the shell: the SIGKILL after the grace ends it */
	assert_true(took >= 300 && took < 3000);
	dispatch_result_clear(&r);
	FILE *f = fopen(pidfile, "r");
	assert_non_null(f);
	long pid = 0;
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	unlink(pidfile);
	/* the background sleep is gone (or a zombie about to be reaped by init) */
	bool dead = false;
	for (int i = 0; i < 100 && !dead; i++) {
		char path[64], stat[512] = "";
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		FILE *s = fopen(path, "r");
		if (!s) {
			dead = true;
			break;
		}
		if (fgets(stat, sizeof stat, s) && strstr(stat, ") Z "))
			dead = true;
		fclose(s);
		if (!dead)
			usleep(20000);
	}
	assert_true(dead);
}

static void test_exec_background_child_does_not_hold_us(void **state)
{
	event ev = sample_event("{}");
	dispatch_result r;
	int64_t t0 = time_mono_ms();
	/* the shell exits at once; its child keeps the output pipe open */
	assert_int_equal(dispatch_exec("(sleep 2; echo late) & echo early", &ev, 5000, &r), 0);
	assert_true(time_mono_ms() - t0 < 1500);
	assert_true(r.ok);
	assert_string_equal(r.text, "early\n");
	dispatch_result_clear(&r);
}

static void test_forward_connection_refused(void **state)
{
	forwarder *f = NULL;
	assert_int_equal(forwarder_new(&f), 0);
	handler h = {0};
	h.kind = HANDLER_FORWARD;
	h.target = "http://127.0.0.1:1/x";
	h.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	event ev = sample_event("{}");
	dispatch_result r;
	assert_int_equal(dispatch_forward(f, &h, &ev, 2000, &r), 0);
	assert_false(r.ok);
	assert_false(r.gone);
	assert_non_null(strstr(r.text, "request failed"));
	dispatch_result_clear(&r);
	h.secret = "whsec_!!!";
	assert_int_not_equal(dispatch_forward(f, &h, &ev, 2000, &r), 0);
	assert_false(r.ok);
	dispatch_result_clear(&r);
	forwarder_free(f);
}

static void test_handler_checks(void **state)
{
	const char *good_on[] = {"commentCard", "updateCard:idList", "a,b:c,D",
	                         "createCard,updateCard:closed"};
	const char *bad_on[] = {
	    "", ",", "a,", ",a", "a b", "a:", ":b", "a:b:c", "a-b", "ü", "a;rm -rf", "type:fi eld"};
	for (size_t i = 0; i < TH_ARRAY_LEN(good_on); i++)
		assert_int_equal(handlers_check_on(good_on[i], NULL), 0);
	for (size_t i = 0; i < TH_ARRAY_LEN(bad_on); i++)
		assert_int_equal(handlers_check_on(bad_on[i], NULL), TH_EINVAL);
	const char *good_url[] = {"http://127.0.0.1:8080/x", "https://example.com",
	                          "https://a.b/c?d=e#f"};
	const char *bad_url[] = {"",
	                         "ftp://a/",
	                         "http://",
	                         "https:///x",
	                         "http://a b/",
	                         "http://a/\x01",
	                         "http://\xc3\xa9.com/",
	                         "HTTP//x",
	                         "javascript:alert(1)"};
	for (size_t i = 0; i < TH_ARRAY_LEN(good_url); i++)
		assert_int_equal(handlers_check_url(good_url[i], NULL), 0);
	for (size_t i = 0; i < TH_ARRAY_LEN(bad_url); i++)
		assert_int_equal(handlers_check_url(bad_url[i], NULL), TH_EINVAL);
	char longurl[2100];
	memset(longurl, 'a', sizeof longurl);
	memcpy(longurl, "http://", 7);
	longurl[sizeof longurl - 1] = '\0';
	assert_int_equal(handlers_check_url(longurl, NULL), TH_EINVAL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as serve does */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_delay),
	    cmocka_unit_test(test_exec_stdin_env_and_exit),
	    cmocka_unit_test(test_exec_big_unread_input_and_flood),
	    cmocka_unit_test(test_exec_timeout_kills_group),
	    cmocka_unit_test(test_exec_background_child_does_not_hold_us),
	    cmocka_unit_test(test_forward_connection_refused),
	    cmocka_unit_test(test_handler_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

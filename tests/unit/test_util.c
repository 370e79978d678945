/* SPDX-License-Identifier: MIT */
/* Unit tests of the util layer: buffers, strings, numbers, ids, base64,
 * masking, HTML escaping, time, JSON quoting and log redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/json_text.h"
#include "util/log.h"
#include "util/util.h"
#include "util/wait.h"

static void test_buf_limits(void **state)
{
	buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_puts(&b, "hello"), 0);
	assert_int_equal(buf_puts(&b, "world"), 0);
	assert_int_equal(buf_putc(&b, '!'), TH_ETOOBIG); /* 11 > 10 */
	assert_string_equal(b.data, "helloworld");
	assert_int_equal(buf_printf(&b, "%d", 1), TH_ETOOBIG);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%s-%d", "ab", 42), 0);
	assert_string_equal(b.data, "ab-42");
	size_t len;
	char *p = buf_detach(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal(p, "ab-42");
	free(p);
	p = buf_detach(&b, &len); /* empty buffer detaches as "" */
	assert_non_null(p);
	assert_string_equal(p, "");
	free(p);
	buf_free(&b);
}

/* buf_reserve: one allocation up front, then appends up to it do not move the data. */
static void test_buf_reserve(void **state)
{
	buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_reserve(&b, 101), TH_ETOOBIG); /* over the maximum */
	assert_null(b.data);
	buf_reset(&b); /* the failure is sticky (test_buf_sticky) */
	assert_int_equal(buf_reserve(&b, 100), 0);
	char *before = b.data;
	assert_non_null(before);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_putc(&b, 'x'), 0);
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.len, 100);
	assert_int_equal(buf_putc(&b, 'y'), TH_ETOOBIG);
	buf_free(&b);
}

/* Failures are sticky: after the first one nothing more is added, the
 * status says why, and the text is not handed on as if it were whole. */
static void test_buf_sticky(void **state)
{
	buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_status(&b), 0);
	assert_int_equal(buf_puts(&b, "<p>"), 0);
	assert_int_equal(buf_puts(&b, "too long"), TH_ETOOBIG); /* 3 + 8 > 8 */
	assert_int_equal(buf_puts(&b, "!"), TH_ETOOBIG);        /* would fit, but poisoned */
	assert_int_equal(buf_putc(&b, 'x'), TH_ETOOBIG);
	assert_int_equal(buf_printf(&b, "%d", 1), TH_ETOOBIG);
	assert_int_equal(buf_append(&b, "y", 1), TH_ETOOBIG);
	assert_int_equal(buf_reserve(&b, 1), TH_ETOOBIG);
	assert_string_equal(b.data, "<p>"); /* nothing after the failure */
	assert_int_equal(buf_status(&b), TH_ETOOBIG);
	size_t len = 99;
	assert_null(buf_detach(&b, &len)); /* a partial text is never handed on */
	assert_int_equal(len, 99);
	assert_string_equal(b.data, "<p>"); /* still owned by the buffer */
	buf_reset(&b);                      /* starts over, healthy */
	assert_int_equal(buf_status(&b), 0);
	assert_int_equal(buf_puts(&b, "ok"), 0);
	char *p = buf_detach(&b, &len);
	assert_non_null(p);
	assert_string_equal(p, "ok");
	free(p);
	/* a reserve past the maximum poisons too */
	assert_int_equal(buf_reserve(&b, 9), TH_ETOOBIG);
	assert_int_equal(buf_puts(&b, "a"), TH_ETOOBIG);
	buf_free(&b); /* and buf_free forgets the failure with the data */
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "a"), 0);
	buf_free(&b);
}

static void test_mem_grow(void **state)
{
	(void)state;
	int *a = NULL;
	size_t cap = 0;
	for (size_t n = 0; n < 100; n++) {
		int *p = mem_grow(a, &cap, n, sizeof *a, 4);
		assert_non_null(p);
		a = p;
		assert_true(n < cap);
		a[n] = (int)n;
	}
	assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
	for (size_t n = 0; n < 100; n++)
		assert_int_equal(a[n], (int)n);
	assert_ptr_equal(mem_grow(a, &cap, 99, sizeof *a, 4), a); /* room left: no move */
	/* A size that would overflow is refused and leaves the array alone. */
	size_t huge = SIZE_MAX / 2 + 1;
	assert_null(mem_grow(a, &huge, huge, sizeof *a, 4));
	assert_int_equal(huge, SIZE_MAX / 2 + 1);
	size_t big = SIZE_MAX / sizeof *a / 2 + 1;
	assert_null(mem_grow(a, &big, big, sizeof *a, 4));
	assert_int_equal(big, SIZE_MAX / sizeof *a / 2 + 1);
	assert_int_equal(a[99], 99);
	free(a);
}

static void test_str_helpers(void **state)
{
	char small[4];
	assert_false(str_copy(small, sizeof small, "abcdef"));
	assert_string_equal(small, "abc");
	assert_true(str_copy(small, sizeof small, "ab"));
	assert_true(str_case_eq("Content-Length", "content-length"));
	assert_false(str_case_eq("a", "ab"));
	assert_true(str_eq(NULL, NULL));
	assert_false(str_eq("a", NULL));
	assert_true(str_is_trello_id("6123456789abcdef01234567"));
	assert_false(str_is_trello_id("6123456789abcdef0123456"));
	assert_false(str_is_trello_id("6123456789abcdef0123456z"));
	char tok76[77];
	memcpy(tok76, "ATTA", 4);
	memset(tok76 + 4, 'a', 64);
	memcpy(tok76 + 68, "ABCDEF12", 8);
	tok76[76] = '\0';
	assert_true(str_is_trello_token(tok76));
	char tok64[65];
	memset(tok64, 'f', 64);
	tok64[64] = '\0';
	assert_true(str_is_trello_token(tok64));
	tok64[3] = 'x';
	assert_false(str_is_trello_token(tok64));
	assert_false(str_is_trello_token("ATTA"));
	assert_true(str_is_b64url("aZ09-_", 6));
	assert_true(str_is_b64url("", 0));
	assert_false(str_is_b64url("ab+c", 4)); /* base64's '+' and '/' are not base64url */
	assert_false(str_is_b64url("ab/c", 4));
	assert_false(str_is_b64url("ab=", 3));
	assert_false(str_is_b64url("a\0b", 3));
	assert_false(str_is_b64url("\xc3\xa9", 2)); /* non-ASCII */
	assert_true(str_is_b64url("ab c", 2));      /* only @len bytes are read */
}

static void test_url_decode(void **state)
{
	char out[64];
	assert_int_equal(str_url_decode("a%20b+c%2Bd", 11, true, out), 7);
	assert_string_equal(out, "a b c+d");
	assert_int_equal(str_url_decode("a+b", 3, false, out), 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(str_url_decode("%C3%AB", 6, false, out), 2);
	assert_string_equal(out, "\xc3\xab");
	assert_int_equal(str_url_decode("", 0, true, out), 0);
	assert_string_equal(out, "");
	/* malformed or truncated escapes, and NUL bytes, are refused */
	assert_int_equal(str_url_decode("%", 1, true, out), -1);
	assert_int_equal(str_url_decode("%4", 2, true, out), -1);
	assert_int_equal(str_url_decode("%zz", 3, true, out), -1);
	assert_int_equal(str_url_decode("a%00b", 5, true, out), -1);
	/* only @n bytes are read: a cut in the middle of an escape is truncated input */
	assert_int_equal(str_url_decode("ab%41", 4, true, out), -1);
}

static void test_utf8(void **state)
{
	assert_true(str_utf8_valid("plain", 5));
	assert_true(str_utf8_valid("Zo\xc3\xab \xf0\x9f\x9a\x80", 9));
	assert_false(str_utf8_valid("\xc3", 1));         /* truncated */
	assert_false(str_utf8_valid("\xc0\xaf", 2));     /* overlong '/' */
	assert_false(str_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
	assert_false(str_utf8_valid("\xff", 1));
	assert_false(str_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	/* str_utf8_seq against a decoder written from the definition: every lead
	 * byte with every second byte, and the edges of the continuation range
	 * for the third and fourth */
	static const unsigned char tails[] = {0x00, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++)
			for (size_t ci = 0; ci < sizeof tails; ci++)
				for (size_t di = 0; di < sizeof tails; di++) {
					unsigned char q[4] = {(unsigned char)a, (unsigned char)b,
					                      tails[ci], tails[di]};
					size_t want = 0, n = a < 0x80             ? 1
					                     : (a & 0xE0) == 0xC0 ? 2
					                     : (a & 0xF0) == 0xE0 ? 3
					                     : (a & 0xF8) == 0xF0 ? 4
					                                          : 0;
					unsigned cp = n == 1 ? a : a & (0x7Fu >> n);
					bool ok = n > 0;
					for (size_t k = 1; ok && k < n; k++) {
						ok = (q[k] & 0xC0) == 0x80;
						cp = (cp << 6) | (q[k] & 0x3Fu);
					}
					static const unsigned min_cp[] = {0, 0, 0x80, 0x800,
					                                  0x10000};
					if (ok && cp >= min_cp[n] && cp <= 0x10FFFF &&
					    !(cp >= 0xD800 && cp <= 0xDFFF))
						want = n;
					if (str_utf8_seq((const char *)q, 4) != want)
						fail_msg("%02x %02x %02x %02x: %zu, want %zu", a, b,
						         q[2], q[3],
						         str_utf8_seq((const char *)q, 4), want);
					/* cut short, it is never a sequence of its full length */
					if (want > 1)
						assert_int_equal(
						    str_utf8_seq((const char *)q, want - 1), 0);
				}
	assert_int_equal(str_utf8_seq("", 0), 0);
	assert_int_equal(str_utf8_seq("\0", 1), 1);
}

static void test_numbers(void **state)
{
	int64_t v;
	assert_int_equal(num_parse_i64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(num_parse_i64("+3", 0, 100, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64(" 3", 0, 100, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64("3 ", 0, 100, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64("", 0, 100, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64("-1", 0, 100, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64("-1", -5, 100, &v), 0);
	assert_int_equal(v, -1);
	assert_int_equal(num_parse_i64("101", 0, 100, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64("99999999999999999999", 0, INT64_MAX, &v), TH_EINVAL);
	assert_int_equal(num_parse_i64("0x10", 0, 100, &v), TH_EINVAL);

	assert_int_equal(num_parse_duration_ms("10s", &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(num_parse_duration_ms("1m", &v), 0);
	assert_int_equal(v, 60000);
	assert_int_equal(num_parse_duration_ms("6h", &v), 0);
	assert_int_equal(v, 6 * 3600000);
	assert_int_equal(num_parse_duration_ms("250ms", &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(num_parse_duration_ms("1.5s", &v), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(num_parse_duration_ms("10", &v), TH_EINVAL);
	assert_int_equal(num_parse_duration_ms("s", &v), TH_EINVAL);
	assert_int_equal(num_parse_duration_ms("10x", &v), TH_EINVAL);
	assert_int_equal(num_parse_duration_ms("-1s", &v), TH_EINVAL);
	assert_int_equal(num_parse_seconds_ms("0.2", &v), 0);
	assert_int_equal(v, 200);
	assert_int_equal(num_parse_seconds_ms("30", &v), 0);
	assert_int_equal(v, 30000);
	assert_int_equal(num_parse_seconds_ms("1.", &v), TH_EINVAL);
	assert_int_equal(num_parse_seconds_ms("0.0001", &v), TH_EINVAL);
}

static void test_ids(void **state)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];
	assert_int_equal(rand_id(a), 0);
	assert_int_equal(rand_id(b), 0);
	assert_int_equal(strlen(a), ID_LEN);
	assert_string_not_equal(a, b);
	assert_true(id_is_wellformed(a));
	/* never a leading '-' or '_' (a leading '-' reads as a flag on the command line) */
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(rand_id(a), 0);
		assert_true(a[0] != '-' && a[0] != '_');
	}
	assert_false(id_is_wellformed("short"));
	assert_false(id_is_wellformed("abcdefghijklmnop/q"));
	/* timed ids: well-formed, distinct, and ordered like their times (as
	 * strcmp, i.e. as SQLite's BINARY collation, orders them) */
	char prev[ID_LEN + 1] = "";
	int64_t times[] = {0,
	                   1,
	                   61,
	                   62,
	                   1000,
	                   1795000000000,
	                   1795000000001,
	                   1795000003600,
	                   218340105584895 /* 62^8 - 1 */};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		assert_int_equal(rand_id_timed(a, times[i]), 0);
		assert_int_equal(strlen(a), ID_LEN);
		assert_true(id_is_wellformed(a));
		assert_true(a[0] != '-' && a[0] != '_');
		assert_true(strcmp(prev, a) < 0);
		memcpy(prev, a, sizeof prev);
	}
	assert_int_equal(rand_id_timed(a, 1795000000000), 0);
	assert_int_equal(rand_id_timed(b, 1795000000000), 0);
	assert_memory_equal(a, b, 8);              /* same millisecond: same prefix */
	assert_string_not_equal(a, b);             /* different random tails */
	assert_int_equal(rand_id_timed(a, -5), 0); /* a clock before 1970 still makes an id */
	assert_true(id_is_wellformed(a));
	/* many at once (more than one draw of random bytes): the same shape and
	 * prefix, and every random tail different */
	static char many[150][ID_LEN + 1];
	assert_int_equal(rand_ids_timed(many, 150, 1795000000000), 0);
	assert_int_equal(rand_ids_timed(many, 0, 1795000000000), 0);
	for (size_t i = 0; i < 150; i++) {
		assert_int_equal(strlen(many[i]), ID_LEN);
		assert_true(id_is_wellformed(many[i]));
		assert_memory_equal(many[i], b, 8);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(many[i], many[j]);
	}
	assert_false(id_is_wellformed("abcdefghijklmnop%2e"));
}

static void test_base64(void **state)
{
	char out[64];
	b64_encode("foobar", 6, out);
	assert_string_equal(out, "Zm9vYmFy");
	b64_encode("fooba", 5, out);
	assert_string_equal(out, "Zm9vYmE=");
	b64_encode("foob", 4, out);
	assert_string_equal(out, "Zm9vYg==");
	unsigned char dec[16];
	assert_int_equal(b64_decode("Zm9vYg==", 8, dec, sizeof dec), 4);
	assert_memory_equal(dec, "foob", 4);
	assert_int_equal(b64_decode("Zm9vYg=", 7, dec, sizeof dec), -1);
	assert_int_equal(b64_decode("Zm9v*mFy", 8, dec, sizeof dec), -1);
	assert_int_equal(b64_decode("Zg==Zg==", 8, dec, sizeof dec), -1);
	assert_int_equal(b64_decode("Zm9vYmFy", 8, dec, 3), -1);
}

static void test_masking(void **state)
{
	char out[64];
	mask_secret("ATTA0123456789abcdef1a2B", out, sizeof out);
	assert_string_equal(out, "ATTA\xe2\x80\xa6"
	                         "1a2B");
	mask_secret("short", out, sizeof out);
	assert_string_equal(out, "****");
	mask_secret(NULL, out, sizeof out);
	assert_string_equal(out, "****");
	mask_url("postgresql://user:hunter2@db:5432/th", out, sizeof out);
	assert_string_equal(out, "postgresql://user:****@db:5432/th");
	mask_url("postgresql://db:5432/th", out, sizeof out);
	assert_string_equal(out, "postgresql://db:5432/th");
	mask_url("sqlite:trellohook.db", out, sizeof out);
	assert_string_equal(out, "sqlite:trellohook.db");
}

static void test_html(void **state)
{
	buf b;
	buf_init(&b, 0);
	assert_int_equal(html_escape(&b, "<script>alert('x')</script> & \"q\""), 0);
	assert_string_equal(b.data,
	                    "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
	buf_free(&b);
}

static void test_time(void **state)
{
	int64_t ms;
	assert_int_equal(time_parse_iso("2026-11-20T09:15:02.117Z", &ms), 0);
	char out[32];
	time_format_iso(ms, out);
	assert_string_equal(out, "2026-11-20T09:15:02.117Z");
	assert_int_equal(time_parse_iso("2026-11-20T09:15:02Z", &ms), 0);
	assert_int_equal(time_parse_iso("2026-11-20 09:15:02", &ms), TH_EINVAL);
	assert_int_equal(time_parse_iso("yesterday", &ms), TH_EINVAL);
	assert_int_equal(time_parse_iso("2026-11-20T09:15:02.Z", &ms), TH_EINVAL);
}

static void test_json_quote(void **state)
{
	buf b;
	buf_init(&b, 0);
	assert_int_equal(json_text_quote(&b, "a\"b\\c\n\x01 Zo\xc3\xab \xff"), 0);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001 Zo\xc3\xab \xef\xbf\xbd\"");
	buf_free(&b);
}

/* The redaction list replaces a registered secret anywhere in a log line. */
static void test_log_redaction(void **state)
{
	char path[] = "/tmp/th-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_setup(LOG_DEBUG, LOG_JSON);
	log_add_secret("supersecretvalue123456");
	log_set_request_id("req-1");
	log_info("test", "secret is supersecretvalue123456 twice supersecretvalue123456");
	log_debug("test", "debug line");
	log_set_request_id(NULL);
	log_setup(LOG_WARN, LOG_TEXT);
	log_info("test", "not shown");
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_clear_secrets();
	char text[4096] = {0};
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	assert_null(strstr(text, "supersecretvalue123456"));
	assert_non_null(strstr(text, "supe\xe2\x80\xa6"
	                             "3456 twice supe"));
	assert_non_null(strstr(text, "\"request_id\":\"req-1\""));
	assert_non_null(strstr(text, "debug line"));
	assert_null(strstr(text, "not shown"));
}

/* Text lines escape control bytes (a forged line, terminal escapes), C1 and
 * invalid UTF-8; JSON lines stay valid JSON for the same input. */
static void test_log_escaping(void **state)
{
	char path[] = "/tmp/th-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	log_setup(LOG_INFO, LOG_TEXT);
	log_set_request_id("r\n1");
	log_info("co\x1bmp", "GET /a\r\n2026-01-01T00:00:00.000Z error FORGED\x1b[31m\x7f\x01 "
	                     "nel\xc2\x85 bad\xff\xfe ok \xc3\xa9\xe2\x80\xa6\ttab");
	log_set_request_id(NULL);
	log_setup(LOG_INFO, LOG_JSON);
	log_info("test", "json \x1b\r\n\xff\x01 \"q\"");
	log_setup(LOG_INFO, LOG_TEXT);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char text[4096] = {0};
	lseek(fd, 0, SEEK_SET);
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	char *nl = strchr(text, '\n');
	assert_non_null(nl);
	*nl = '\0'; /* the text line, alone: everything the message held stays on it */
	assert_non_null(strstr(text,
	                       " info  co\\x1bmp [r\\n1]: GET /a\\r\\n2026-01-01T00:00:00.000Z "
	                       "error FORGED\\x1b[31m\\x7f\\x01 nel\\u0085 bad\\xff\\xfe ok "
	                       "\xc3\xa9\xe2\x80\xa6\\ttab"));
	for (const char *p = text; *p; p++)
		assert_false((unsigned char)*p < 0x20 || *p == 0x7f);
	char *json = nl + 1;
	assert_non_null(
	    strstr(json, "\"msg\":\"json \\u001b\\r\\n\xef\xbf\xbd\\u0001 \\\"q\\\"\"}\n"));
}

struct raiser {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool flag;
};

static void *raise_later(void *arg)
{
	struct raiser *r = arg;
	usleep(50000);
	wait_raise(&r->mu, &r->cv, &r->flag);
	return NULL;
}

/* The deadline is normalised for every offset, including whole seconds and
 * a sub-second part that carries; a raised flag is seen by a waiter that
 * would otherwise sleep for a minute. */
static void test_wait(void **state)
{
	(void)state;
	const int64_t offsets[] = {0, 1, 250, 999, 1000, 1999, 61500};
	for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
		struct timespec now, until;
		clock_gettime(CLOCK_REALTIME, &now);
		wait_deadline(&until, CLOCK_REALTIME, offsets[i]);
		assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);
		int64_t d = ((int64_t)until.tv_sec - now.tv_sec) * 1000 +
		            (until.tv_nsec - now.tv_nsec) / 1000000;
		assert_true(d >= offsets[i] && d <= offsets[i] + 1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		wait_deadline(&until, CLOCK_MONOTONIC, offsets[i]);
		assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);
		d = ((int64_t)until.tv_sec - now.tv_sec) * 1000 +
		    (until.tv_nsec - now.tv_nsec) / 1000000;
		assert_true(d >= offsets[i] && d <= offsets[i] + 1000);
	}
	struct raiser r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
	struct timespec until;
	wait_deadline(&until, CLOCK_REALTIME, 60000);
	int64_t t0 = time_mono_ms();
	pthread_t t;
	pthread_mutex_lock(&r.mu);
	assert_int_equal(pthread_create(&t, NULL, raise_later, &r), 0);
	int rc = 0;
	while (!r.flag && rc == 0)
		rc = pthread_cond_timedwait(&r.cv, &r.mu, &until);
	bool seen = r.flag;
	pthread_mutex_unlock(&r.mu);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(seen);
	assert_int_equal(rc, 0);
	assert_true(time_mono_ms() - t0 < 30000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_limits),   cmocka_unit_test(test_buf_reserve),
	    cmocka_unit_test(test_buf_sticky),   cmocka_unit_test(test_str_helpers),
	    cmocka_unit_test(test_utf8),         cmocka_unit_test(test_url_decode),
	    cmocka_unit_test(test_numbers),      cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_base64),       cmocka_unit_test(test_masking),
	    cmocka_unit_test(test_html),         cmocka_unit_test(test_time),
	    cmocka_unit_test(test_json_quote),   cmocka_unit_test(test_log_redaction),
	    cmocka_unit_test(test_log_escaping), cmocka_unit_test(test_wait),
	    cmocka_unit_test(test_mem_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

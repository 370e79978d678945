/* SPDX-License-Identifier: MIT */
/* Unit tests of util/jdoc: the grammar, every string rule, surrogates,
 * duplicate keys (also in a 100k-key object), depth, numbers pinned against
 * jansson 2.14, truncation of the sample payloads at every byte, the reading
 * API, and a differential test against jansson on thousands of generated and
 * mutated inputs (fixed seed: a failure prints the input and reproduces). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jdoc.h"
#include "util/util.h"

#define DEPTH 64

/* ---- helpers ------------------------------------------------------------------------ */

/* Does jdoc accept the @len bytes at @s (with max depth @depth)? */
static bool jdoc_accepts(const char *s, size_t len, int depth)
{
	jdoc d;
	th_error err = {0};
	int rc = jdoc_parse(&d, s, len, depth, &err);
	assert_true(rc == 0 || rc == TH_EINVAL);
	if (rc == 0)
		assert_non_null(jdoc_root(&d));
	else
		assert_null(jdoc_root(&d));
	jdoc_free(&d);
	return rc == 0;
}

static void show(const char *s, size_t len)
{
	fprintf(stderr, "input (%zu bytes): \"", len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "\"\n");
}

static void expect_ok(const char *s)
{
	if (!jdoc_accepts(s, strlen(s), DEPTH)) {
		show(s, strlen(s));
		fail_msg("refused valid JSON");
	}
}

static void expect_bad(const char *s, size_t len)
{
	if (jdoc_accepts(s, len, DEPTH)) {
		show(s, len);
		fail_msg("accepted invalid JSON");
	}
}

#define BAD(lit) expect_bad(lit, sizeof(lit) - 1)

/* What jansson says, as event.c used it. */
static bool jansson_accepts(const char *s, size_t len)
{
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_decref(j);
	return j != NULL;
}

/* Parse @s, which must be valid, and return its root string decoded (copy). */
static char *decoded(const char *s, size_t len, size_t *out_len)
{
	jdoc d;
	th_error err = {0};
	if (jdoc_parse(&d, s, len, DEPTH, &err) != 0)
		fail_msg("refused: %s", err.msg);
	const jnode *r = jdoc_root(&d);
	assert_true(jdoc_is_string(r));
	const char *v = jdoc_str(&d, r);
	assert_non_null(v);
	assert_ptr_equal(jdoc_str(&d, r), v); /* decoded once, cached */
	*out_len = strlen(v);
	char *copy = str_dup(v);
	jdoc_free(&d);
	return copy;
}

/* ---- grammar -------------------------------------------------------------------------- */

static void test_grammar(void **state)
{
	static const char *ok[] = {"{}",
	                           "[]",
	                           "0",
	                           "-0",
	                           "1",
	                           "-1",
	                           "0.5",
	                           "-0.5e-3",
	                           "1E+2",
	                           "1e2",
	                           "12.34E5",
	                           "true",
	                           "false",
	                           "null",
	                           "\"\"",
	                           "\"x\"",
	                           " {} ",
	                           "\t\n\r [ ] \r\n",
	                           "[1,2,3]",
	                           "[[],{},[{}]]",
	                           "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
	                           "{ \"a\" : 1 , \"b\" : 2 }",
	                           "[\"\\u00e9\"]",
	                           "1e-400",
	                           "-0.0",
	                           "0e0",
	                           "[0,-0,0.0]",
	                           "\"\x7f\""};
	for (size_t i = 0; i < TH_ARRAY_LEN(ok); i++) {
		expect_ok(ok[i]);
		assert_true(jansson_accepts(ok[i], strlen(ok[i])));
	}
	static const char *bad[] = {"",
	                            " ",
	                            "{",
	                            "}",
	                            "[",
	                            "]",
	                            "[1,]",
	                            "[,1]",
	                            "[1 2]",
	                            "{\"a\"}",
	                            "{\"a\":}",
	                            "{\"a\":1,}",
	                            "{,}",
	                            "{1:2}",
	                            "{\"a\" 1}",
	                            "{'a':1}",
	                            "['a']",
	                            "NaN",
	                            "Infinity",
	                            "-Infinity",
	                            "nan",
	                            "+1",
	                            "01",
	                            "-01",
	                            "00",
	                            "1.",
	                            ".5",
	                            "-",
	                            "1e",
	                            "1e+",
	                            "1.e3",
	                            "0x10",
	                            "1_000",
	                            "tru",
	                            "truee",
	                            "True",
	                            "nul",
	                            "nulll",
	                            "[1]x",
	                            "[1][2]",
	                            "{}{}",
	                            "1 2",
	                            "/* c */ 1",
	                            "1 // c",
	                            "[1]\f",
	                            "\f[1]",
	                            "\v1",
	                            "\"a",
	                            "\"\\\"",
	                            "[\"a\",]",
	                            "[1,,2]",
	                            "{\"a\":1 \"b\":2}",
	                            "\xef\xbb\xbf{}",
	                            "[1}",
	                            "{]",
	                            "[\"a\":1]",
	                            "{\"a\":1:2}",
	                            "\"\\x41\"",
	                            "1.5.3",
	                            "--1",
	                            "-a",
	                            "[-]",
	                            "[.]",
	                            "\"\\u12\"",
	                            "\"\\u12G4\""};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		expect_bad(bad[i], strlen(bad[i]));
		assert_false(jansson_accepts(bad[i], strlen(bad[i])));
	}
	/* NUL bytes anywhere, including after a complete value (which jansson's
	 * json_loadb lets through after a number: event.c always refused NULs) */
	BAD("\0");
	BAD("1\0");
	BAD("[1\0]");
	BAD("{}\0");
	BAD("\"a\0\"");
	BAD("{\"a\0\":1}");
	/* a NULL text */
	expect_bad(NULL, 0);
}

/* Error messages say what and where (1-based line and column). */
static void test_error_messages(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
	    {"{\n  \"a\": [1,]\n}", "at line 2 column 11"},
	    {"[1", "unexpected end of input at line 1 column 3"},
	    {"{\"a\":1,\"a\":2}", "duplicate object key at line 1 column 8"},
	    {"\"\\u0000\"", "\\u0000 is not allowed"},
	    {"\"\\udc00\"", "lone low surrogate"},
	    {"\"\\ud800x\"", "high surrogate without a low surrogate"},
	    {"99999999999999999999", "too big integer"},
	    {"-99999999999999999999", "too big negative integer"},
	    {"1e400", "real number overflow"},
	    {"[1] 2", "end of input expected at line 1 column 5"},
	    {"[[[]]]", "nesting deeper than 2 levels at line 1 column 3"},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		jdoc d;
		th_error err = {0};
		int depth = strstr(cases[i].want, "nesting") ? 2 : DEPTH;
		assert_int_equal(jdoc_parse(&d, cases[i].text, strlen(cases[i].text), depth, &err),
		                 TH_EINVAL);
		jdoc_free(&d);
		assert_int_equal(err.code, TH_EINVAL);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("\"%s\": error \"%s\" lacks \"%s\"", cases[i].text, err.msg,
			         cases[i].want);
	}
}

/* ---- strings --------------------------------------------------------------------------- */

static void test_string_rules(void **state)
{
	/* every raw control character is refused, in values and keys; DEL is not */
	for (int c = 0; c < 0x20; c++) {
		char s[8] = {'"', 'a', (char)c, 'b', '"'};
		expect_bad(s, 5);
		char k[16] = {'{', '"', (char)c, '"', ':', '1', '}'};
		expect_bad(k, 7);
	}
	expect_ok("\"a\x7f\"");

	/* the eight short escapes and \u, decoded */
	static const struct {
		const char *json, *want;
		size_t want_len;
	} esc[] = {
	    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
	    {"\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6},
	    {"\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80", 4}, /* 😀 from a pair */
	    {"\"\\udbff\\udfff\"", "\xF4\x8F\xBF\xBF", 4}, /* U+10FFFF */
	    {"\"\\u0001\\u001f\"", "\x01\x1F", 2},         /* escaped controls are fine */
	    {"\"a\\u0062c\\/d\"", "abc/d", 5},             /* escapes between plain runs */
	    {"\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9},
	    {"\"\\uFFFF\\uFFFE\"", "\xEF\xBF\xBF\xEF\xBF\xBE", 6}, /* noncharacters are valid */
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(esc); i++) {
		size_t len;
		char *v = decoded(esc[i].json, strlen(esc[i].json), &len);
		assert_int_equal(len, esc[i].want_len);
		assert_memory_equal(v, esc[i].want, len);
		free(v);
	}

	/* refused escapes and surrogates */
	static const char *bad[] = {
	    "\"\\a\"",
	    "\"\\x41\"",
	    "\"\\U0041\"",
	    "\"\\'\"",
	    "\"\\0\"",
	    "\"\\\"",
	    "\"\\u\"",
	    "\"\\u004\"",
	    "\"\\u004G\"",
	    "\"\\u0000\"",
	    "\"a\\u0000b\"",
	    "{\"\\u0000\":1}",
	    "\"\\ud800\"",        /* lone high */
	    "\"\\udbff\"",        /* lone high */
	    "\"\\udc00\"",        /* lone low */
	    "\"\\udfff\\ud800\"", /* reversed pair */
	    "\"\\ud800\\u0041\"", /* high then not low */
	    "\"\\ud800\\ud800\"", /* high then high */
	    "\"\\ud800\\n\"",     /* high then another escape */
	    "\"\\ud800x\"",       /* high then a character */
	    "\"\\ud800\\u\"",     /* high then a cut \u */
	    "\"\\ud800\\udc0\"",  /* high then a short \u */
	    "\"\\ud800\\",
	    "\"\\ud8", /* cut */
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		expect_bad(bad[i], strlen(bad[i]));
		assert_false(jansson_accepts(bad[i], strlen(bad[i])));
	}
}

static void test_utf8_rules(void **state)
{
	static const char *ok[] = {"\"\xC2\x80\"",
	                           "\"\xDF\xBF\"",
	                           "\"\xE0\xA0\x80\"",
	                           "\"\xEC\xBF\xBF\"",
	                           "\"\xED\x9F\xBF\"",
	                           "\"\xEE\x80\x80\"",
	                           "\"\xEF\xBF\xBF\"",
	                           "\"\xF0\x90\x80\x80\"",
	                           "\"\xF3\xBF\xBF\xBF\"",
	                           "\"\xF4\x8F\xBF\xBF\"",
	                           "{\"\xC3\xA9\":\"\xC3\xA9\"}"};
	for (size_t i = 0; i < TH_ARRAY_LEN(ok); i++) {
		expect_ok(ok[i]);
		assert_true(jansson_accepts(ok[i], strlen(ok[i])));
	}
	static const char *bad[] = {
	    "\"\x80\"",             /* lone continuation */
	    "\"\xBF\"",             /* lone continuation */
	    "\"\xC0\x80\"",         /* overlong NUL */
	    "\"\xC1\xBF\"",         /* overlong */
	    "\"\xE0\x80\x80\"",     /* overlong, 3 bytes */
	    "\"\xE0\x9F\xBF\"",     /* overlong, 3 bytes */
	    "\"\xED\xA0\x80\"",     /* surrogate U+D800 */
	    "\"\xED\xBF\xBF\"",     /* surrogate U+DFFF */
	    "\"\xF0\x80\x80\x80\"", /* overlong, 4 bytes */
	    "\"\xF0\x8F\xBF\xBF\"", /* overlong, 4 bytes */
	    "\"\xF4\x90\x80\x80\"", /* past U+10FFFF */
	    "\"\xF5\x80\x80\x80\"",
	    "\"\xF8\x88\x80\x80\x80\"",
	    "\"\xFC\"",
	    "\"\xFE\"",
	    "\"\xFF\"",
	    "\"\xC3\"",         /* cut, then the quote */
	    "\"\xE2\x82\"",     /* cut */
	    "\"\xF0\x9F\x98\"", /* cut */
	    "\"\xC3\x28\"",     /* bad continuation */
	    "\"\xE2\x28\xA1\"",
	    "\"\xE2\x82\x28\"",
	    "\"\xF0\x28\x8C\xBC\"",
	    "\"\xF0\x90\x28\xBC\"",
	    "\"\xF0\x90\x8C\x28\"",
	    "\xC3\xA9",      /* valid UTF-8 outside a string is still not JSON */
	    "\"\xC3\xA9",    /* unterminated after a sequence */
	    "\"\xF0\x9F\x98" /* cut at the very end */
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		expect_bad(bad[i], strlen(bad[i]));
		assert_false(jansson_accepts(bad[i], strlen(bad[i])));
	}
	/* every byte value at every offset of a long plain run (the scanner
	 * reads eight bytes at a time there): jdoc and jansson agree */
	for (int c = 1; c < 256; c++) {
		for (int at = 1; at < 20; at++) {
			char s[32];
			memset(s, 'a', sizeof s);
			s[0] = '"';
			s[at] = (char)c;
			s[21] = '"';
			bool want = jansson_accepts(s, 22);
			if (jdoc_accepts(s, 22, DEPTH) != want)
				fail_msg("byte 0x%02x at %d: jdoc %s", c, at,
				         want ? "refuses" : "accepts");
		}
	}
	/* every byte value alone in a string: jdoc and jansson agree */
	for (int c = 1; c < 256; c++) {
		char s[4] = {'"', (char)c, '"'};
		bool want = jansson_accepts(s, 3);
		if (jdoc_accepts(s, 3, DEPTH) != want)
			fail_msg("byte 0x%02x: jdoc %s, jansson %s", c,
			         want ? "refuses" : "accepts", want ? "accepts" : "refuses");
	}
}

/* ---- duplicates ------------------------------------------------------------------------- */

/* An object with @n keys "k0".."k<n-1>" plus, when @extra is given, one more
 * member with that key text (already quoted). */
static char *big_object(size_t n, const char *extra, size_t *len)
{
	buf b;
	buf_init(&b, (size_t)64 << 20);
	assert_int_equal(buf_putc(&b, '{'), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_printf(&b, "%s\"k%zu\":%zu", i ? "," : "", i, i), 0);
	if (extra)
		assert_int_equal(buf_printf(&b, ",%s:true", extra), 0);
	assert_int_equal(buf_putc(&b, '}'), 0);
	return buf_detach(&b, len);
}

static void test_duplicates(void **state)
{
	static const char *bad[] = {
	    "{\"a\":1,\"a\":2}",
	    "{\"a\":1,\"\\u0061\":2}",        /* equal once decoded */
	    "{\"\\u0061\":1,\"a\":2}",        /* either order */
	    "{\"\\/\":1,\"/\":2}",            /* \/ is / */
	    "{\"\\u00e9\":1,\"\xC3\xA9\":2}", /* é escaped and raw */
	    "{\"\\uD83D\\uDE00\":1,\"\xF0\x9F\x98\x80\":2}",
	    "{\"a\":1,\"b\":2,\"c\":3,\"b\":4}",
	    "{\"x\":{\"a\":1,\"a\":1}}", /* nested */
	    "[{\"a\":[],\"a\":[]}]",
	    "{\"\":1,\"\":2}", /* empty keys */
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad); i++) {
		expect_bad(bad[i], strlen(bad[i]));
		assert_false(jansson_accepts(bad[i], strlen(bad[i])));
	}
	static const char *ok[] = {
	    "{\"a\":{\"a\":{\"a\":1}}}",          /* the same key in different objects */
	    "[{\"a\":1},{\"a\":1}]",              /* siblings */
	    "{\"a\":1,\"A\":2,\"a \":3,\"\":4}",  /* different keys */
	    "{\"a\":1,\"\\u0062\":2,\"ab\":3}",   /* escaped, different */
	    "{\"\\u0061b\":1,\"a\":2,\"b\":3}",   /* escaped prefix of nothing */
	    "{\"\\n\":1,\"n\":2,\"\\\\n\":3}",    /* decoded differs */
	    "{\"a\":1,\"b\":{\"a\":2},\"c\":3}"}; /* a nested object's keys do not count */
	for (size_t i = 0; i < TH_ARRAY_LEN(ok); i++) {
		expect_ok(ok[i]);
		assert_true(jansson_accepts(ok[i], strlen(ok[i])));
	}

	/* objects around the pairwise/sorted threshold: a duplicate at any place */
	for (size_t n = 2; n < 40; n++) {
		for (size_t dup = 0; dup < n; dup += 3) {
			char extra[32];
			assert_true(str_printf(extra, sizeof extra, "\"k%zu\"", dup));
			size_t len;
			char *s = big_object(n, extra, &len);
			expect_bad(s, len);
			free(s);
			/* and as an escape of the same key */
			assert_true(str_printf(extra, sizeof extra, "\"\\u006b%zu\"", dup));
			s = big_object(n, extra, &len);
			expect_bad(s, len);
			free(s);
		}
		size_t len;
		char *s = big_object(n, "\"k\"", &len);
		assert_true(jdoc_accepts(s, len, DEPTH));
		free(s);
	}

	/* 100k keys: unique is accepted, one duplicate (plain or escaped) at the
	 * end is found. An O(k^2) check would make ~10^10 comparisons (minutes)
	 * and trip the test runner's timeout; this takes milliseconds. */
	size_t len;
	char *s = big_object(100000, NULL, &len);
	jdoc d;
	assert_int_equal(jdoc_parse(&d, s, len, DEPTH, NULL), 0);
	assert_int_equal(jdoc_root(&d)->len, 100000);
	long long v = 0;
	assert_true(jdoc_int(&d, jdoc_get(&d, jdoc_root(&d), "k99999"), &v));
	assert_int_equal(v, 99999);
	jdoc_free(&d);
	free(s);
	s = big_object(100000, "\"k4242\"", &len);
	expect_bad(s, len);
	free(s);
	s = big_object(100000, "\"\\u006b4242\"", &len);
	expect_bad(s, len);
	free(s);
}

/* ---- depth --------------------------------------------------------------------------- */

static void test_depth(void **state)
{
	for (int depth = 1; depth <= 70; depth++) {
		buf b;
		buf_init(&b, 1 << 16);
		for (int i = 0; i < depth; i++)
			assert_int_equal(buf_puts(&b, i % 2 ? "[" : "{\"k\":"), 0);
		assert_int_equal(buf_puts(&b, "1"), 0);
		for (int i = depth - 1; i >= 0; i--)
			assert_int_equal(buf_putc(&b, i % 2 ? ']' : '}'), 0);
		assert_int_equal(jdoc_accepts(b.data, b.len, DEPTH), depth <= DEPTH);
		assert_true(jdoc_accepts(b.data, b.len, depth));
		assert_false(jdoc_accepts(b.data, b.len, depth - 1 > 0 ? depth - 1 : 0) &&
		             depth > 1);
		buf_free(&b);
	}
	/* a scalar at the top has depth 0: accepted whatever the limit */
	assert_true(jdoc_accepts("1", 1, 1));
	/* hostile nesting: a million brackets, open or balanced, and a deep
	 * limit well past the inline stack; no recursion, so no crash */
	size_t n = 1000000;
	char *s = malloc(2 * n);
	assert_non_null(s);
	memset(s, '[', n);
	memset(s + n, ']', n);
	expect_bad(s, n);
	expect_bad(s, 2 * n);
	assert_true(jdoc_accepts(s, 2 * n, (int)n));
	assert_false(jdoc_accepts(s, 2 * n, (int)n - 1));
	free(s);
}

/* ---- numbers ---------------------------------------------------------------------------- */

/* What jansson 2.14 does with numbers out of range (pinned: if an upgrade
 * changes this, jdoc must change with it). */
static void test_numbers_pinned(void **state)
{
	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
	    {"9223372036854775807", true},
	    {"-9223372036854775808", true},
	    {"9223372036854775808", false}, /* "too big integer" */
	    {"-9223372036854775809", false},
	    {"99999999999999999999", false},
	    {"00000000000000000001", false}, /* a leading zero anyway */
	    {"10000000000000000000", false},
	    {"1000000000000000000", true},
	    {"9223372036854775807.0", true}, /* a real, not an integer */
	    {"99999999999999999999.5", true},
	    {"1e400", false}, /* "real number overflow" */
	    {"-1e400", false},
	    {"1E309", false},
	    {"1e308", true},
	    {"1.7976931348623157e308", true},
	    {"1.7976931348623159e308", false},
	    {"0.00001e313", true},
	    {"1e-400", true}, /* underflow is accepted */
	    {"-1e-400", true},
	    {"0e999999999999999999999", true},
	    {"1e-99999999999999999999", true},
	    {"1e99999999999999999999", false},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		size_t len = strlen(cases[i].text);
		if (jansson_accepts(cases[i].text, len) != cases[i].ok)
			fail_msg("jansson changed its mind about %s", cases[i].text);
		if (jdoc_accepts(cases[i].text, len, DEPTH) != cases[i].ok)
			fail_msg("jdoc %s %s", cases[i].ok ? "refuses" : "accepts", cases[i].text);
	}
	/* a real longer than the stack copy used for the overflow check */
	buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_puts(&b, "0."), 0);
	for (int i = 0; i < 400; i++)
		assert_int_equal(buf_putc(&b, '0'), 0);
	assert_int_equal(buf_puts(&b, "1e709"), 0); /* 1e308 */
	assert_true(jdoc_accepts(b.data, b.len, DEPTH));
	assert_true(jansson_accepts(b.data, b.len));
	b.len -= 3;
	assert_int_equal(buf_puts(&b, "711"), 0); /* 1e310 */
	assert_false(jdoc_accepts(b.data, b.len, DEPTH));
	assert_false(jansson_accepts(b.data, b.len));
	/* 400 digits without exponent overflow */
	buf_reset(&b);
	assert_int_equal(buf_putc(&b, '1'), 0);
	for (int i = 0; i < 400; i++)
		assert_int_equal(buf_putc(&b, '0'), 0);
	assert_int_equal(buf_puts(&b, ".5"), 0);
	assert_false(jdoc_accepts(b.data, b.len, DEPTH));
	assert_false(jansson_accepts(b.data, b.len));
	buf_free(&b);
}

static void test_integers(void **state)
{
	static const struct {
		const char *text;
		long long want;
	} cases[] = {
	    {"0", 0},
	    {"-0", 0},
	    {"7", 7},
	    {"-42", -42},
	    {"65535", 65535},
	    {"9223372036854775807", INT64_MAX},
	    {"-9223372036854775808", INT64_MIN},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		jdoc d;
		assert_int_equal(jdoc_parse(&d, cases[i].text, strlen(cases[i].text), 1, NULL), 0);
		long long v = 1;
		assert_true(jdoc_is_integer(jdoc_root(&d)));
		assert_true(jdoc_int(&d, jdoc_root(&d), &v));
		assert_true(v == cases[i].want);
		jdoc_free(&d);
	}
	static const char *not_int[] = {"1.0", "1e2", "-0.5", "\"1\"", "true", "null", "[1]"};
	for (size_t i = 0; i < TH_ARRAY_LEN(not_int); i++) {
		jdoc d;
		assert_int_equal(jdoc_parse(&d, not_int[i], strlen(not_int[i]), 2, NULL), 0);
		long long v = 5;
		assert_false(jdoc_is_integer(jdoc_root(&d)));
		assert_false(jdoc_int(&d, jdoc_root(&d), &v));
		assert_true(v == 5);
		jdoc_free(&d);
	}
}

/* ---- the reading API --------------------------------------------------------------------- */

static void test_reading(void **state)
{
	static const char text[] =
	    "{\"s\":\"x\\ny\",\"n\":-3,\"f\":1.5,\"t\":true,\"F\":false,\"z\":null,"
	    "\"a\":[1,\"two\",{\"k\":[]},[]],\"o\":{\"\\u0065sc\":\"\\u00e9\",\"plain\":\"p\"},"
	    "\"e\":{},\"\":\"empty key\"}";
	jdoc d;
	th_error err = {0};
	/* not NUL-terminated: parse exactly the bytes given */
	char *copy = malloc(sizeof text - 1);
	assert_non_null(copy);
	memcpy(copy, text, sizeof text - 1);
	assert_int_equal(jdoc_parse(&d, copy, sizeof text - 1, 4, &err), 0);
	const jnode *r = jdoc_root(&d);
	assert_true(jdoc_is_object(r));
	assert_int_equal(r->len, 10);

	assert_string_equal(jdoc_str(&d, jdoc_get(&d, r, "s")), "x\ny");
	assert_string_equal(jdoc_str(&d, jdoc_get(&d, r, "")), "empty key");
	long long v;
	assert_true(jdoc_int(&d, jdoc_get(&d, r, "n"), &v));
	assert_true(v == -3);
	assert_false(jdoc_is_integer(jdoc_get(&d, r, "f")));
	assert_true(jdoc_is_true(jdoc_get(&d, r, "t")));
	assert_true(jdoc_is_false(jdoc_get(&d, r, "F")));
	assert_true(jdoc_is_null(jdoc_get(&d, r, "z")));
	assert_false(jdoc_is_null(jdoc_get(&d, r, "t")));
	assert_true(jdoc_is_array(jdoc_get(&d, r, "a")));
	assert_true(jdoc_is_object(jdoc_get(&d, r, "e")));
	assert_null(jdoc_get(&d, jdoc_get(&d, r, "e"), "x"));

	/* keys compare decoded; values of nested objects are not members */
	const jnode *o = jdoc_get(&d, r, "o");
	assert_string_equal(jdoc_str(&d, jdoc_get(&d, o, "esc")), "\xC3\xA9");
	assert_null(jdoc_get(&d, o, "\\u0065sc"));
	assert_null(jdoc_get(&d, r, "k"));
	assert_null(jdoc_get(&d, r, "esc"));
	assert_null(jdoc_get(&d, r, "missing"));

	/* absent and wrong types everywhere: NULL / false, never a crash */
	assert_null(jdoc_get(&d, NULL, "s"));
	assert_null(jdoc_get(&d, jdoc_get(&d, r, "s"), "s"));
	assert_null(jdoc_get(&d, jdoc_get(&d, r, "a"), "0"));
	assert_null(jdoc_get(&d, r, NULL));
	assert_null(jdoc_str(&d, NULL));
	assert_null(jdoc_str(&d, jdoc_get(&d, r, "n")));
	assert_null(jdoc_str(&d, r));
	assert_false(jdoc_int(&d, NULL, &v));
	assert_false(jdoc_is_object(NULL) || jdoc_is_array(NULL) || jdoc_is_string(NULL) ||
	             jdoc_is_integer(NULL) || jdoc_is_true(NULL) || jdoc_is_false(NULL) ||
	             jdoc_is_null(NULL));
	assert_false(jdoc_str_eq(&d, NULL, "x", 1));
	assert_true(jdoc_str_eq(&d, jdoc_get(&d, r, "s"), "x\ny", 3));
	assert_false(jdoc_str_eq(&d, jdoc_get(&d, r, "s"), "x\ny!", 4));
	assert_false(jdoc_str_eq(&d, jdoc_get(&d, r, "s"), "x\n", 2));

	/* iterating members in order, and array elements */
	static const char *keys[] = {"s", "n", "f", "t", "F", "z", "a", "o", "e", ""};
	jdoc_iter it;
	const jnode *k, *val;
	size_t i = 0;
	jdoc_iter_init(&it, &d, r);
	while (jdoc_iter_next(&it, &k, &val)) {
		assert_true(i < TH_ARRAY_LEN(keys));
		assert_string_equal(jdoc_str(&d, k), keys[i]);
		assert_ptr_equal(jdoc_get(&d, r, keys[i]), val);
		i++;
	}
	assert_int_equal(i, TH_ARRAY_LEN(keys));
	i = 0;
	jdoc_iter_init(&it, &d, jdoc_get(&d, r, "a"));
	while (jdoc_iter_next(&it, &k, &val)) {
		assert_null(k);
		i++;
	}
	assert_int_equal(i, 4);
	jdoc_iter_init(&it, &d, jdoc_get(&d, r, "e"));
	assert_false(jdoc_iter_next(&it, &k, &val));
	jdoc_iter_init(&it, &d, jdoc_get(&d, r, "s")); /* not a container */
	assert_false(jdoc_iter_next(&it, &k, &val));
	jdoc_iter_init(&it, &d, NULL);
	assert_false(jdoc_iter_next(&it, NULL, NULL));

	jdoc_free(&d);
	jdoc_free(&d); /* twice is fine */
	jdoc_free(NULL);
	free(copy);

	/* a failed parse leaves no root */
	assert_int_equal(jdoc_parse(&d, "[1,", 3, 2, &err), TH_EINVAL);
	assert_null(jdoc_root(&d));
	assert_null(jdoc_get(&d, jdoc_root(&d), "x"));
	jdoc_free(&d);
}

/* Big documents: the tape and the arena move to the heap and keep working. */
static void test_big_document(void **state)
{
	buf b;
	buf_init(&b, (size_t)16 << 20);
	assert_int_equal(buf_putc(&b, '['), 0);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(
		    buf_printf(&b, "%s{\"i\":%d,\"s\":\"v\\u00e9%d\"}", i ? "," : "", i, i), 0);
	assert_int_equal(buf_putc(&b, ']'), 0);
	jdoc d;
	assert_int_equal(jdoc_parse(&d, b.data, b.len, 2, NULL), 0);
	jdoc_iter it;
	const jnode *el;
	int i = 0;
	jdoc_iter_init(&it, &d, jdoc_root(&d));
	while (jdoc_iter_next(&it, NULL, &el)) {
		long long v;
		assert_true(jdoc_int(&d, jdoc_get(&d, el, "i"), &v));
		assert_true(v == i);
		char want[32];
		assert_true(str_printf(want, sizeof want, "v\xC3\xA9%d", i));
		assert_string_equal(jdoc_str(&d, jdoc_get(&d, el, "s")), want);
		i++;
	}
	assert_int_equal(i, 20000);
	jdoc_free(&d);

	/* one string longer than an arena chunk */
	buf_reset(&b);
	assert_int_equal(buf_putc(&b, '"'), 0);
	for (int k = 0; k < 100000; k++)
		assert_int_equal(buf_putc(&b, (char)('a' + k % 26)), 0);
	assert_int_equal(buf_putc(&b, '"'), 0);
	size_t len;
	char *v = decoded(b.data, b.len, &len);
	assert_int_equal(len, 100000);
	assert_memory_equal(v, b.data + 1, len);
	free(v);
	buf_free(&b);
}

/* ---- the sample payloads ------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	buf b;
	buf_init(&b, 1 << 20);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		assert_int_equal(buf_append(&b, chunk, n), 0);
	fclose(f);
	return buf_detach(&b, len);
}

/* Each sample payload (NULL-terminated list, malloc'ed). */
static char **read_samples(size_t *count)
{
	const char *dir = getenv("TH_TEST_DATA");
	assert_non_null(dir);
	char path[1024];
	assert_true(str_printf(path, sizeof path, "%s/payloads", dir));
	DIR *dh = opendir(path);
	assert_non_null(dh);
	char **out = calloc(64, sizeof *out);
	assert_non_null(out);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(dh)) != NULL && n < 63) {
		if (!str_ends(de->d_name, ".json"))
			continue;
		char file[1400];
		assert_true(str_printf(file, sizeof file, "%s/%s", path, de->d_name));
		size_t len;
		out[n++] = read_file(file, &len);
	}
	closedir(dh);
	assert_true(n >= 5);
	*count = n;
	return out;
}

static void free_samples(char **s)
{
	for (size_t i = 0; s[i]; i++)
		free(s[i]);
	free(s);
}

/* Every prefix of every sample is refused (each starts with '{'), without a
 * crash or a read past the given length (the copy has exactly that size, so
 * ASan sees any overread). */
static void test_truncated_samples(void **state)
{
	size_t n;
	char **samples = read_samples(&n);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(samples[i]);
		assert_true(jdoc_accepts(samples[i], len, DEPTH));
		for (size_t cut = 0; cut < len; cut++) {
			char *copy = malloc(cut ? cut : 1);
			assert_non_null(copy);
			memcpy(copy, samples[i], cut);
			bool ok = jdoc_accepts(copy, cut, DEPTH);
			free(copy);
			/* only whitespace after the closing brace may be cut off */
			if (ok) {
				for (size_t k = cut; k < len; k++)
					assert_true(samples[i][k] == ' ' || samples[i][k] == '\n' ||
					            samples[i][k] == '\r' || samples[i][k] == '\t');
			}
		}
	}
	free_samples(samples);
}

/* ---- differential: jdoc against jansson ------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: small, fast, reproducible */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static size_t rnd_below(size_t n)
{
	return (size_t)(rnd() % n);
}

/* Pieces that JSON-ish random strings are made of. */
static const char *const pieces[] = {"{",
                                     "}",
                                     "[",
                                     "]",
                                     ",",
                                     ":",
                                     "\"",
                                     "\"a\"",
                                     "\"k\"",
                                     "\"\\u0061\"",
                                     "\"\\u006B\"",
                                     "\\",
                                     "\\u",
                                     "\\ud83d",
                                     "\\ude00",
                                     "\\u0000",
                                     "\\n",
                                     "\\x",
                                     "0",
                                     "1",
                                     "-",
                                     "+",
                                     ".",
                                     "e",
                                     "E",
                                     "12",
                                     "-0",
                                     "1e400",
                                     "1e-400",
                                     "99999999999999999999",
                                     "9223372036854775807",
                                     "9223372036854775808",
                                     "-9223372036854775808",
                                     "true",
                                     "false",
                                     "null",
                                     "tru",
                                     "nul",
                                     " ",
                                     "\t",
                                     "\n",
                                     "\r",
                                     "\f",
                                     "\x01",
                                     "\x1f",
                                     "\x7f",
                                     "\xC3\xA9",
                                     "\xC3",
                                     "\xA9",
                                     "\xED\xA0\x80",
                                     "\xF4\x90\x80\x80",
                                     "\xF0\x9F\x98\x80",
                                     "\xC0\x80",
                                     "\xFF",
                                     "\"\xC3\xA9\"",
                                     "'",
                                     "/",
                                     "NaN",
                                     "\"\\ud800\"",
                                     "\"\\udc00\"",
                                     "\"\\ud83d\\ude00\"",
                                     "\"\\/\"",
                                     "\"/\""};

/* Append a random valid-ish JSON value of depth at most @depth to @b. */
static void gen_value(buf *b, int depth)
{
	size_t kind = rnd_below(depth > 0 ? 9 : 6);
	switch (kind) {
	case 0: assert_int_equal(buf_puts(b, pieces[rnd_below(TH_ARRAY_LEN(pieces))]), 0); break;
	case 1:
		assert_int_equal(buf_printf(b, "%lld", (long long)(rnd() >> rnd_below(64))), 0);
		break;
	case 2: assert_int_equal(buf_puts(b, rnd_below(2) ? "true" : "null"), 0); break;
	case 3:
		assert_int_equal(buf_printf(b, "%d.%de%d", (int)rnd_below(100), (int)rnd_below(100),
		                            (int)rnd_below(700) - 350),
		                 0);
		break;
	case 4:
	case 5: {
		static const char *const parts[] = {"a",   "b",    "\\u0061",  "\\u0062",
		                                    "\\n", "\\\"", "\xC3\xA9", "\\u00e9",
		                                    " ",   "\\/",  "/"};
		assert_int_equal(buf_putc(b, '"'), 0);
		for (size_t i = rnd_below(4); i > 0; i--)
			assert_int_equal(buf_puts(b, parts[rnd_below(TH_ARRAY_LEN(parts))]), 0);
		assert_int_equal(buf_putc(b, '"'), 0);
		break;
	}
	case 6:
	case 7: {
		assert_int_equal(buf_putc(b, '{'), 0);
		size_t n = rnd_below(5);
		for (size_t i = 0; i < n; i++) {
			static const char *const keys[] = {"\"a\"",        "\"b\"", "\"\\u0061\"",
			                                   "\"c\"",        "\"\"",  "\"\\u00e9\"",
			                                   "\"\xC3\xA9\"", "\"d\""};
			if (i)
				assert_int_equal(buf_putc(b, ','), 0);
			assert_int_equal(buf_puts(b, keys[rnd_below(TH_ARRAY_LEN(keys))]), 0);
			assert_int_equal(buf_puts(b, rnd_below(4) ? ":" : " : "), 0);
			gen_value(b, depth - 1);
		}
		assert_int_equal(buf_putc(b, '}'), 0);
		break;
	}
	default: {
		assert_int_equal(buf_putc(b, '['), 0);
		size_t n = rnd_below(5);
		for (size_t i = 0; i < n; i++) {
			if (i)
				assert_int_equal(buf_puts(b, rnd_below(4) ? "," : " , "), 0);
			gen_value(b, depth - 1);
		}
		assert_int_equal(buf_putc(b, ']'), 0);
		break;
	}
	}
}

/* Mutate @b in place: flip a bit, insert or delete bytes, splice a piece,
 * duplicate a span. */
static void mutate(buf *b)
{
	size_t k = rnd_below(6);
	size_t at = b->len ? rnd_below(b->len + 1) : 0;
	buf out;
	buf_init(&out, (size_t)16 << 20);
	assert_int_equal(buf_append(&out, b->data, at), 0);
	switch (k) {
	case 0: /* flip one bit of the byte at @at */
		if (at < b->len) {
			assert_int_equal(buf_putc(&out, (char)(b->data[at] ^ (1u << rnd_below(8)))),
			                 0);
			at++;
		}
		break;
	case 1: /* insert a random byte */
		assert_int_equal(buf_putc(&out, (char)rnd_below(256)), 0);
		break;
	case 2: /* delete 1..4 bytes */
		at += 1 + rnd_below(4);
		if (at > b->len)
			at = b->len;
		break;
	case 3: /* splice a piece */
		assert_int_equal(buf_puts(&out, pieces[rnd_below(TH_ARRAY_LEN(pieces))]), 0);
		break;
	case 4: { /* duplicate a span (makes duplicate keys) */
		size_t span = rnd_below(32);
		if (span > b->len - at)
			span = b->len - at;
		assert_int_equal(buf_append(&out, b->data + at, span), 0);
		break;
	}
	default: /* replace a byte with a structural one */
		if (at < b->len) {
			assert_int_equal(buf_putc(&out, "{}[],:\"\\ 0-e."[rnd_below(13)]), 0);
			at++;
		}
		break;
	}
	assert_int_equal(buf_append(&out, b->data + at, b->len - at), 0);
	buf_free(b);
	*b = out;
}

/* The depth of a jansson value (top-level container = 1, scalar = 0). */
static int tree_depth(json_t *j)
{
	int max = 0;
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v)
		{
			int dd = tree_depth(v);
			if (dd > max)
				max = dd;
		}
		return max + 1;
	}
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
		{
			int dd = tree_depth(v);
			if (dd > max)
				max = dd;
		}
		return max + 1;
	}
	return 0;
}

/* The same value in both: types, member counts, keys (looked up by jdoc),
 * decoded strings and integers. */
static bool same_value(jdoc *d, const jnode *n, json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		if (!jdoc_is_object(n) || n->len != json_object_size(j))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v)
		{
			const jnode *m = jdoc_get(d, n, k);
			if (!m || !same_value(d, m, v))
				return false;
		}
		return true;
	}
	case JSON_ARRAY: {
		jdoc_iter it;
		const jnode *el;
		size_t i = 0;
		jdoc_iter_init(&it, d, n);
		if (!jdoc_is_array(n))
			return false;
		while (jdoc_iter_next(&it, NULL, &el))
			if (i >= json_array_size(j) || !same_value(d, el, json_array_get(j, i++)))
				return false;
		return i == json_array_size(j);
	}
	case JSON_STRING: {
		const char *s = jdoc_str(d, n);
		return s && strlen(s) == json_string_length(j) &&
		       memcmp(s, json_string_value(j), json_string_length(j)) == 0;
	}
	case JSON_INTEGER: {
		long long v;
		return jdoc_int(d, n, &v) && v == json_integer_value(j);
	}
	case JSON_REAL: return n->type == JDOC_NUMBER && !jdoc_is_integer(n);
	case JSON_TRUE: return jdoc_is_true(n);
	case JSON_FALSE: return jdoc_is_false(n);
	case JSON_NULL: return jdoc_is_null(n);
	}
	return false;
}

/* One differential check: jdoc accepts exactly what event.c accepted
 * (jansson, no raw NUL, depth at most DEPTH), and reads the same values. */
static bool differ(const char *s, size_t len, const char *what, size_t round)
{
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	bool want = j && !memchr(s, '\0', len) && tree_depth(j) <= DEPTH;
	jdoc d;
	th_error err = {0};
	int rc = jdoc_parse(&d, s, len, DEPTH, &err);
	if ((rc == 0) != want) {
		show(s, len);
		fail_msg("%s round %zu: jdoc %s (%s), jansson %s", what, round,
		         rc == 0 ? "accepts" : "refuses", err.msg, want ? "accepts" : "refuses");
	}
	if (rc == 0 && !same_value(&d, jdoc_root(&d), j)) {
		show(s, len);
		fail_msg("%s round %zu: jdoc and jansson read different values", what, round);
	}
	jdoc_free(&d);
	json_decref(j);
	return rc == 0;
}

static void test_differential(void **state)
{
	rng_state = 0x9E3779B97F4A7C15ULL; /* fixed: failures reproduce */
	size_t n;
	char **samples = read_samples(&n);
	size_t accepted = 0, total = 0;

	/* mutated sample payloads: 1 to 3 mutations each */
	for (size_t round = 0; round < 3000; round++) {
		const char *src = samples[round % n];
		buf b;
		buf_init(&b, (size_t)16 << 20);
		assert_int_equal(buf_puts(&b, src), 0);
		for (size_t m = 1 + rnd_below(3); m > 0; m--)
			mutate(&b);
		accepted += differ(b.data, b.len, "mutated sample", round);
		total++;
		buf_free(&b);
	}
	/* generated values, as they are and mutated */
	for (size_t round = 0; round < 4000; round++) {
		buf b;
		buf_init(&b, (size_t)16 << 20);
		gen_value(&b, 1 + (int)rnd_below(5));
		if (round % 2)
			mutate(&b);
		accepted += differ(b.data, b.len, "generated", round);
		total++;
		buf_free(&b);
	}
	/* random strings of pieces */
	for (size_t round = 0; round < 4000; round++) {
		buf b;
		buf_init(&b, 1 << 16);
		for (size_t i = 1 + rnd_below(8); i > 0; i--)
			assert_int_equal(buf_puts(&b, pieces[rnd_below(TH_ARRAY_LEN(pieces))]), 0);
		accepted += differ(b.data, b.len, "pieces", round);
		total++;
		buf_free(&b);
	}
	/* the test means something only if both outcomes are common */
	if (accepted < total / 10 || accepted > total - total / 10)
		fail_msg("%zu of %zu inputs accepted: the generators need tuning", accepted, total);
	free_samples(samples);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grammar),           cmocka_unit_test(test_error_messages),
	    cmocka_unit_test(test_string_rules),      cmocka_unit_test(test_utf8_rules),
	    cmocka_unit_test(test_duplicates),        cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_numbers_pinned),    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_reading),           cmocka_unit_test(test_big_document),
	    cmocka_unit_test(test_truncated_samples), cmocka_unit_test(test_differential),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

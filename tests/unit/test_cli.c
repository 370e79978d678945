/* SPDX-License-Identifier: MIT */
/* cli: the table printer of the list commands (display widths, escapes of
 * control characters, bidi overrides and invalid UTF-8, cutting on character
 * boundaries, alignment, --no-header), the progress line (its text, and
 * silence when the stream is not a terminal), the flag tables of the
 * commands and the field tables of their JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/table.h"

/* @s is valid UTF-8 with no control character but '\n'. */
static void assert_clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x80) {
			assert_true(*p >= 0x20 || *p == '\n');
			assert_true(*p != 0x7f);
			p++;
			continue;
		}
		size_t n = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
		assert_true(*p >= 0xC2 && *p <= 0xF4);
		for (size_t i = 1; i < n; i++)
			assert_int_equal(p[i] & 0xC0, 0x80);
		p += n;
	}
}

static void test_width(void **state)
{
	(void)state;
	assert_int_equal(cli_display_width(""), 0);
	assert_int_equal(cli_display_width(NULL), 0);
	assert_int_equal(cli_display_width("abc"), 3);
	assert_int_equal(cli_display_width("caf\xC3\xA9"), 4); /* café: 4 code points */
	assert_int_equal(cli_display_width("\xE6\xBC\xA2\xE5\xAD\x97"), 4); /* 漢字: wide */
	assert_int_equal(cli_display_width("e\xCC\x81"), 1);        /* e + combining acute */
	assert_int_equal(cli_display_width("\xF0\x9F\x98\x80"), 2); /* 😀 */
	assert_int_equal(cli_display_width("a\tb"), 4);             /* a\tb */
}

/* One cli_cell_format() case: @in, capped at @max columns (0: no cap), reads
 * @want, @width columns wide (SIZE_MAX: not checked). */
typedef struct cell_case {
	const char *in;
	size_t max;
	const char *want;
	size_t width;
} cell_case;

static void check_cells(const cell_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char out[128];
		size_t w = cli_cell_format(cases[i].in, cases[i].max, out, sizeof out);
		assert_string_equal(out, cases[i].want);
		if (cases[i].width != SIZE_MAX)
			assert_int_equal(w, cases[i].width);
	}
}

static const cell_case escapes[] = {
    {"a\nb\tc\rd", 0, "a\\nb\\tc\\rd", SIZE_MAX},
    {"\x1b[31mred\x1b[0m", 0, "\\x1b[31mred\\x1b[0m", SIZE_MAX},
    {"del\x7f", 0, "del\\x7f", SIZE_MAX},
    /* C1 control U+009B (CSI), a right-to-left override, a BOM */
    {"\xC2\x9B"
     "2J",
     0, "\\u009b2J", SIZE_MAX},
    {"abc\xE2\x80\xAE"
     "fed",
     0, "abc\\u202efed", SIZE_MAX},
    {"\xEF\xBB\xBFx", 0, "\\ufeffx", SIZE_MAX},
    /* not UTF-8: a lone continuation, a truncated sequence, an overlong '/',
     * a surrogate, past U+10FFFF */
    {"\x80", 0, "\\x80", SIZE_MAX},
    {"ab\xE6\xBC", 0, "ab\\xe6\\xbc", SIZE_MAX},
    {"\xC0\xAF", 0, "\\xc0\\xaf", SIZE_MAX},
    {"\xED\xA0\x80", 0, "\\xed\\xa0\\x80", SIZE_MAX},
    {"\xF4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80", SIZE_MAX},
    /* valid non-ASCII stays as it is */
    {"Stra\xC3\x9F"
     "e \xE6\xBC\xA2",
     0,
     "Stra\xC3\x9F"
     "e \xE6\xBC\xA2",
     SIZE_MAX},
};

static void test_escapes(void **state)
{
	(void)state;
	check_cells(escapes, sizeof escapes / sizeof escapes[0]);
}

static const cell_case cuts[] = {
    /* fits exactly: not cut */
    {"abcde", 5, "abcde", 5},
    {"abcdef", 5, "abcd\xE2\x80\xA6", 5},
    /* wide characters are never split: 漢字漢 (6 columns) into 4 → 漢 + … (3) */
    {"\xE6\xBC\xA2\xE5\xAD\x97\xE6\xBC\xA2", 4, "\xE6\xBC\xA2\xE2\x80\xA6", 3},
    /* é as two bytes is one column: cut after whole characters */
    {"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3, "\xC3\xA9\xC3\xA9\xE2\x80\xA6", SIZE_MAX},
    /* an escape is one unit: never cut in half */
    {"ab\x1b"
     "cdef",
     4, "ab\xE2\x80\xA6", SIZE_MAX},
};

static void test_cut(void **state)
{
	(void)state;
	check_cells(cuts, sizeof cuts / sizeof cuts[0]);
	/* a tiny output buffer: still NUL-terminated, still whole characters */
	char tiny[4];
	cli_cell_format("\xE6\xBC\xA2\xE5\xAD\x97", 0, tiny, sizeof tiny);
	assert_string_equal(tiny, "\xE6\xBC\xA2");
	/* hostile: long garbage of every byte value stays clean and bounded */
	char bytes[512];
	for (size_t i = 0; i < sizeof bytes - 1; i++)
		bytes[i] = (char)(i % 255 + 1);
	bytes[sizeof bytes - 1] = '\0';
	char big[4096];
	size_t w = cli_cell_format(bytes, 40, big, sizeof big);
	assert_true(w <= 40);
	assert_true(strstr(big, "\xE2\x80\xA6") != NULL);
	for (const char *p = big; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	assert_clean_utf8(big);
}

/* The whole text @f got since it was opened. */
static char *slurp(FILE *f)
{
	long n = ftell(f);
	assert_true(n >= 0);
	char *s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(f);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	return s;
}

static const cli_col cols[] = {
    {"ID", 0, false}, {"N", 0, true}, {"NAME", 6, false}, {"NOTE", 0, false}};

static void test_table(void **state)
{
	(void)state;
	cli_table *t = NULL;
	assert_int_equal(cli_table_new(&t, cols, 0), -1);
	assert_int_equal(cli_table_new(&t, cols, CLI_TABLE_MAX_COLS + 1), -1);
	assert_int_equal(cli_table_new(&t, cols, 4), 0);
	const char *r1[] = {"a1", "7", "\xE6\xBC\xA2\xE5\xAD\x97", "x"};
	const char *r2[] = {"b22", "1234", "long name here", ""};
	const char *r3[] = {"c", NULL, "line\nbreak", "\x1b]0;title\x07"};
	assert_int_equal(cli_table_add(t, r1), 0);
	assert_int_equal(cli_table_add(t, r2), 0);
	assert_int_equal(cli_table_add(t, r3), 0);
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(cli_table_print(t, f, true), 0);
	char *s = slurp(f);
	/* columns: ID 3 wide, N right-aligned 4 wide, NAME capped at 6, NOTE last
	 * and unpadded; no line ends in a blank */
	assert_string_equal(s, "ID      N  NAME    NOTE\n"
	                       "a1      7  \xE6\xBC\xA2\xE5\xAD\x97    x\n"
	                       "b22  1234  long \xE2\x80\xA6\n"
	                       "c       -  line\xE2\x80\xA6   \\x1b]0;title\\x07\n");
	assert_clean_utf8(s);
	free(s);
	fclose(f);
	/* --no-header: the same rows, same widths (the header still counts) */
	f = tmpfile();
	assert_non_null(f);
	assert_int_equal(cli_table_print(t, f, false), 0);
	s = slurp(f);
	assert_string_equal(s, "a1      7  \xE6\xBC\xA2\xE5\xAD\x97    x\n"
	                       "b22  1234  long \xE2\x80\xA6\n"
	                       "c       -  line\xE2\x80\xA6   \\x1b]0;title\\x07\n");
	free(s);
	fclose(f);
	cli_table_free(t);
	cli_table_free(NULL);
}

static void test_table_empty_and_many(void **state)
{
	(void)state;
	cli_table *t = NULL;
	assert_int_equal(cli_table_new(&t, cols, 2), 0);
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(cli_table_print(t, f, true), 0);
	char *s = slurp(f);
	assert_string_equal(s, "ID  N\n");
	free(s);
	fclose(f);
	/* more rows than the first allocation */
	for (int i = 0; i < 100; i++) {
		char id[16], n[16];
		snprintf(id, sizeof id, "row%d", i);
		snprintf(n, sizeof n, "%d", i * i);
		const char *row[] = {id, n};
		assert_int_equal(cli_table_add(t, row), 0);
	}
	f = tmpfile();
	assert_non_null(f);
	assert_int_equal(cli_table_print(t, f, false), 0);
	s = slurp(f);
	assert_non_null(strstr(s, "row0      0\n"));
	assert_non_null(strstr(s, "row99  9801\n"));
	free(s);
	fclose(f);
	cli_table_free(t);
}

/* One cli_progress_format() case: @what at @done of @total after @ms. */
typedef struct progress_case {
	const char *what;
	uint64_t done, total;
	int64_t ms;
	const char *want;
} progress_case;

static const progress_case progress_cases[] = {
    {"sync: Trello calls", 0, 40, 0, "sync: Trello calls 0/40    0%"},
    {"sync: Trello calls", 12, 40, 2000, "sync: Trello calls 12/40   30%  6.0/s  ETA 5s"},
    {"x", 40, 40, 2000, "x 40/40  100%  20/s"},
    /* a slow one: minutes and hours */
    {"x", 1, 100, 2000, "x 1/100    1%  0.5/s  ETA 3m18s"},
    {"x", 1, 10000, 1000, "x 1/10000    0%  1.0/s  ETA 2h46m"},
    /* no total known */
    {"export", 500, 0, 1000, "export 500  500/s"},
};

static void test_progress_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof progress_cases / sizeof progress_cases[0]; i++) {
		const progress_case *p = &progress_cases[i];
		char line[256];
		cli_progress_format(line, sizeof line, p->what, p->done, p->total, p->ms);
		assert_string_equal(line, p->want);
	}
	/* a tiny buffer is cut, still terminated */
	char tiny[8];
	cli_progress_format(tiny, sizeof tiny, "sync: Trello calls", 1, 2, 10);
	assert_int_equal(strlen(tiny), 7);
}

/* Not a terminal (a file, like a pipe): nothing is written, ever. */
static void test_progress_quiet(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	assert_non_null(f);
	cli_progress p;
	cli_progress_init(&p, f, "sync: Trello calls");
	assert_false(p.on);
	for (uint64_t i = 0; i <= 50; i++)
		cli_progress_set(&p, i, 50);
	cli_progress_end(&p);
	assert_int_equal(ftell(f), 0);
	fclose(f);
}

/* Parse the NULL-terminated @args with @f (and a positional id when @id). */
static int parse(const cli_flag *f, size_t n, const char **id, const char *missing, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;
	va_start(ap, missing);
	for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 16;)
		argv[argc++] = a;
	va_end(ap);
	cli c;
	memset(&c, 0, sizeof c);
	c.prog = "test cmd";
	if (id)
		*id = NULL;
	return cli_parse_flags(&c, argc, argv, f, n, id, missing);
}

static int check_even(void *dst, const char *name, const char *v)
{
	(void)name;
	if (strlen(v) % 2)
		return EXIT_FAIL; /* a code of its own, to see it come back */
	*(const char **)dst = v;
	return 0;
}

static void test_flags(void **state)
{
	(void)state;
	bool yes = false;
	const char *s = NULL, *even = NULL, *id = NULL, *vals[2];
	int64_t num = 7;
	cli_strs list = {vals, 0, 2};
	const cli_flag f[] = {CLI_BOOL("--yes", &yes), CLI_STR("--s", &s),
	                      CLI_INT("--num", &num, 1, 1000), CLI_FN("--even", check_even, &even),
	                      CLI_LIST("--val", &list, NULL)};
	const size_t n = sizeof f / sizeof f[0];
	/* both spellings of a value, in any order, with the positional between */
	assert_int_equal(parse(f, n, &id, NULL, "--s", "a", "ID", "--num=12", "--yes", "--even=ab",
	                       "--val", "x", "--val=y", NULL),
	                 0);
	assert_true(yes);
	assert_string_equal(s, "a");
	assert_string_equal(id, "ID");
	assert_int_equal(num, 12);
	assert_string_equal(even, "ab");
	assert_int_equal(list.n, 2);
	assert_string_equal(vals[1], "y");
	/* the last of a repeated value wins; nothing given keeps the defaults */
	assert_int_equal(parse(f, n, NULL, NULL, "--s", "a", "--s", "b", NULL), 0);
	assert_string_equal(s, "b");
	/* usage errors: a missing value, a number out of range or not one, a bool
	 * with a value, an unknown flag, a flag's prefix, a positional where none
	 * is taken, a second positional, a list over its bound */
	assert_int_equal(parse(f, n, NULL, NULL, "--s", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "--num", "0", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "--num", "1001", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "--num=+3", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "--yes=1", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "--nope", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "--ss", "a", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, NULL, NULL, "ID", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, &id, NULL, "A", "B", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, &id, NULL, "-x", NULL), EXIT_USAGE);
	list.n = 0;
	assert_int_equal(parse(f, n, NULL, NULL, "--val", "1", "--val", "2", "--val", "3", NULL),
	                 EXIT_USAGE);
	assert_int_equal(list.n, 2);
	/* a check's own exit code comes back, and stops the parse there */
	even = NULL;
	yes = false;
	assert_int_equal(parse(f, n, NULL, NULL, "--even", "abc", "--yes", NULL), EXIT_FAIL);
	assert_null(even);
	assert_false(yes);
	/* a positional that must come */
	assert_int_equal(parse(f, n, &id, "test cmd: expected one id", "--yes", NULL), EXIT_USAGE);
	assert_int_equal(parse(f, n, &id, NULL, "--yes", NULL), 0);
	assert_null(id);
	/* a table's first flags only (events tail takes two of ls's four) */
	assert_int_equal(parse(f, 1, NULL, NULL, "--s", "a", NULL), EXIT_USAGE);
}

typedef struct rec {
	char *name;
	int64_t at;
	bool on;
	int count;
	int64_t big;
} rec;

static json_t *shout(const void *r)
{
	return json_string(((const rec *)r)->on ? "ON" : "off");
}

static void test_json_record(void **state)
{
	(void)state;
	static const cli_jfield fields[] = {
	    CLI_JSTR(rec, name),     CLI_JSTR_AS("alias", rec, name),
	    CLI_JTIME(rec, at),      CLI_JBOOL(rec, on),
	    CLI_JINT(rec, count),    CLI_JI64(rec, big),
	    CLI_JFN("shout", shout), CLI_JTIME_AS("when", rec, at)};
	rec r = {"n\xC3\xA9", 86400000, true, -3, INT64_C(1) << 40};
	json_t *o = CLI_JSON_RECORD(&r, fields);
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	/* in the table's order, whatever the members' */
	assert_string_equal(text, "{\"name\":\"n\xC3\xA9\",\"alias\":\"n\xC3\xA9\","
	                          "\"at\":\"1970-01-02T00:00:00.000Z\",\"on\":true,\"count\":-3,"
	                          "\"big\":1099511627776,\"shout\":\"ON\","
	                          "\"when\":\"1970-01-02T00:00:00.000Z\"}");
	free(text);
	json_decref(o);
	/* NULL and 0 are null; a string that is not UTF-8 is left out */
	rec z = {NULL, 0, false, 0, 0};
	o = CLI_JSON_RECORD(&z, fields);
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(text, "{\"name\":null,\"alias\":null,\"at\":null,\"on\":false,"
	                          "\"count\":0,\"big\":0,\"shout\":\"off\",\"when\":null}");
	free(text);
	json_decref(o);
	rec bad = {"\xFF", 0, false, 0, 0};
	o = CLI_JSON_RECORD(&bad, fields);
	assert_null(json_object_get(o, "name"));
	assert_non_null(json_object_get(o, "count"));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_width),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_cut),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_table_empty_and_many),
	    cmocka_unit_test(test_progress_format),
	    cmocka_unit_test(test_progress_quiet),
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_json_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

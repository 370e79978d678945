/* SPDX-License-Identifier: MIT */
/* cli: the table printer of the list commands (display widths, escapes of
 * control characters, bidi overrides and invalid UTF-8, cutting on character
 * boundaries, alignment, --no-header) and the progress line (its text, and
 * silence when the stream is not a terminal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void test_escapes(void **state)
{
	(void)state;
	char out[128];
	cli_cell_format("a\nb\tc\rd", 0, out, sizeof out);
	assert_string_equal(out, "a\\nb\\tc\\rd");
	cli_cell_format("\x1b[31mred\x1b[0m", 0, out, sizeof out);
	assert_string_equal(out, "\\x1b[31mred\\x1b[0m");
	cli_cell_format("del\x7f", 0, out, sizeof out);
	assert_string_equal(out, "del\\x7f");
	/* C1 control U+009B (CSI), a right-to-left override, a BOM */
	cli_cell_format("\xC2\x9B"
	                "2J",
	                0, out, sizeof out);
	assert_string_equal(out, "\\u009b2J");
	cli_cell_format("abc\xE2\x80\xAE"
	                "fed",
	                0, out, sizeof out);
	assert_string_equal(out, "abc\\u202efed");
	cli_cell_format("\xEF\xBB\xBFx", 0, out, sizeof out);
	assert_string_equal(out, "\\ufeffx");
	/* not UTF-8: a lone continuation, a truncated sequence, an overlong '/',
	 * a surrogate, past U+10FFFF */
	cli_cell_format("\x80", 0, out, sizeof out);
	assert_string_equal(out, "\\x80");
	cli_cell_format("ab\xE6\xBC", 0, out, sizeof out);
	assert_string_equal(out, "ab\\xe6\\xbc");
	cli_cell_format("\xC0\xAF", 0, out, sizeof out);
	assert_string_equal(out, "\\xc0\\xaf");
	cli_cell_format("\xED\xA0\x80", 0, out, sizeof out);
	assert_string_equal(out, "\\xed\\xa0\\x80");
	cli_cell_format("\xF4\x90\x80\x80", 0, out, sizeof out);
	assert_string_equal(out, "\\xf4\\x90\\x80\\x80");
	/* valid non-ASCII stays as it is */
	cli_cell_format("Stra\xC3\x9F"
	                "e \xE6\xBC\xA2",
	                0, out, sizeof out);
	assert_string_equal(out, "Stra\xC3\x9F"
	                         "e \xE6\xBC\xA2");
}

static void test_cut(void **state)
{
	(void)state;
	char out[128];
	/* fits exactly: not cut */
	assert_int_equal(cli_cell_format("abcde", 5, out, sizeof out), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(cli_cell_format("abcdef", 5, out, sizeof out), 5);
	assert_string_equal(out, "abcd\xE2\x80\xA6");
	/* wide characters are never split: 漢字漢 (6 columns) into 4 → 漢 + … (3) */
	assert_int_equal(
	    cli_cell_format("\xE6\xBC\xA2\xE5\xAD\x97\xE6\xBC\xA2", 4, out, sizeof out), 3);
	assert_string_equal(out, "\xE6\xBC\xA2\xE2\x80\xA6");
	/* é as two bytes is one column: cut after whole characters */
	cli_cell_format("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3, out, sizeof out);
	assert_string_equal(out, "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
	/* an escape is one unit: never cut in half */
	cli_cell_format("ab\x1b"
	                "cdef",
	                4, out, sizeof out);
	assert_string_equal(out, "ab\xE2\x80\xA6");
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

static void test_progress_format(void **state)
{
	(void)state;
	char line[256];
	cli_progress_format(line, sizeof line, "sync: Trello calls", 0, 40, 0);
	assert_string_equal(line, "sync: Trello calls 0/40    0%");
	cli_progress_format(line, sizeof line, "sync: Trello calls", 12, 40, 2000);
	assert_string_equal(line, "sync: Trello calls 12/40   30%  6.0/s  ETA 5s");
	cli_progress_format(line, sizeof line, "x", 40, 40, 2000);
	assert_string_equal(line, "x 40/40  100%  20/s");
	/* a slow one: minutes and hours */
	cli_progress_format(line, sizeof line, "x", 1, 100, 2000);
	assert_string_equal(line, "x 1/100    1%  0.5/s  ETA 3m18s");
	cli_progress_format(line, sizeof line, "x", 1, 10000, 1000);
	assert_string_equal(line, "x 1/10000    0%  1.0/s  ETA 2h46m");
	/* no total known */
	cli_progress_format(line, sizeof line, "export", 500, 0, 1000);
	assert_string_equal(line, "export 500  500/s");
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

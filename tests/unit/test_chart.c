/* SPDX-License-Identifier: MIT */
/* chart: the SVG renderer — empty data, one point, spikes, huge values, very
 * long and hostile names (escaped, shortened on character boundaries),
 * non-ASCII and invalid UTF-8, folding of many series, bad arguments, and a
 * bounded buffer. Every output is checked to be well-formed markup (each tag
 * closed in order) and valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/chart.h"

/* Every '<' of the output opens or closes a tag (text is escaped), and they
 * nest: fails the test otherwise. Returns the number of elements. */
static size_t check_markup(const char *s)
{
	char stack[64][16];
	size_t depth = 0, elements = 0;
	for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<')) {
		bool closing = p[1] == '/';
		const char *name = p + (closing ? 2 : 1);
		size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz");
		assert_true(n > 0 && n < 16);
		const char *end = strchr(name, '>');
		assert_non_null(end);
		/* no '<' inside a tag: attribute values are escaped */
		const char *lt = strchr(name, '<');
		assert_true(!lt || lt > end);
		if (closing) {
			assert_true(depth > 0);
			depth--;
			if (strncmp(stack[depth], name, n) != 0 || stack[depth][n])
				fail_msg("</%.*s> closes <%s>", (int)n, name, stack[depth]);
		} else if (end[-1] != '/') {
			assert_true(depth < 64);
			memcpy(stack[depth], name, n);
			stack[depth++][n] = '\0';
			elements++;
		} else {
			elements++;
		}
	}
	assert_int_equal(depth, 0);
	return elements;
}

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Render @c into a fresh string (freed by the caller); asserts success. */
static char *bars(const chart_bars *c)
{
	buf b;
	buf_init(&b, 4 << 20);
	assert_int_equal(chart_bars_render(&b, c), 0);
	char *s = buf_detach(&b, NULL);
	buf_free(&b);
	assert_non_null(s);
	check_markup(s);
	assert_true(str_utf8_valid(s, strlen(s)));
	return s;
}

static char *spark(const chart_spark *c)
{
	buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(chart_spark_render(&b, c), 0);
	char *s = buf_detach(&b, NULL);
	buf_free(&b);
	assert_non_null(s);
	check_markup(s);
	assert_true(str_utf8_valid(s, strlen(s)));
	return s;
}

static const char *const hours[24] = {"00:00", "01:00", "02:00", "03:00", "04:00", "05:00",
                                      "06:00", "07:00", "08:00", "09:00", "10:00", "11:00",
                                      "12:00", "13:00", "14:00", "15:00", "16:00", "17:00",
                                      "18:00", "19:00", "20:00", "21:00", "22:00", "23:00"};

/* The height="" of the segment whose tooltip starts with @tip. */
static int rect_height(const char *svg, const char *tip)
{
	const char *t = strstr(svg, tip);
	assert_non_null(t);
	const char *r = t;
	while (r > svg && strncmp(r, "<rect", 5) != 0)
		r--;
	const char *h = strstr(r, "height=\"");
	assert_non_null(h);
	assert_true(h < t);
	return (int)strtol(h + 8, NULL, 10);
}

static void test_empty(void **state)
{
	chart_bars c = {
	    .id = "ev24", .title = "Events per hour", .x_label = "hour (UTC)", .y_label = "events"};
	char *s = bars(&c);
	assert_non_null(strstr(s, "<title id=\"ev24-title\">Events per hour</title>"));
	assert_non_null(strstr(s, "aria-labelledby=\"ev24-title ev24-desc\""));
	assert_non_null(strstr(s, "No data in this period."));
	assert_non_null(strstr(s, ">no data</text>"));
	assert_non_null(strstr(s, "<caption>Events per hour</caption>"));
	assert_non_null(strstr(s, "<td colspan=\"2\">no data</td>"));
	assert_non_null(strstr(s, ">hour (UTC)</text>"));
	assert_non_null(strstr(s, ">events</text>"));
	free(s);
	/* 24 hours of zeros: axes, labels, no segments */
	uint64_t zero[24] = {0};
	chart_series one = {"createCard", zero};
	c.bucket_labels = hours;
	c.nbuckets = 24;
	c.series = &one;
	c.nseries = 1;
	s = bars(&c);
	assert_int_equal(count(s, "<rect"), 1); /* the legend's swatch only */
	assert_non_null(strstr(s, ">no data</text>"));
	assert_int_equal(count(s, "<tr><th scope=\"row\">"), 24);
	free(s);
	chart_spark sp = {.id = "sp", .title = "Roadmap"};
	s = spark(&sp);
	assert_non_null(strstr(s, "<title id=\"sp-title\">Roadmap: no data</title>"));
	assert_non_null(strstr(s, "<td>no data</td>"));
	free(s);
}

static void test_one_point(void **state)
{
	uint64_t v[1] = {7};
	const char *label[1] = {"14:00"};
	chart_series one = {"commentCard", v};
	chart_bars c = {.id = "c1",
	                .title = "T",
	                .x_label = "x",
	                .y_label = "y",
	                .bucket_labels = label,
	                .nbuckets = 1,
	                .series = &one,
	                .nseries = 1};
	char *s = bars(&c);
	/* 7 against a scale of 10 on a 170-pixel plot */
	assert_int_equal(rect_height(s, "<title>commentCard: 7 (14:00)</title>"), 119);
	assert_non_null(strstr(s, "<td>7</td><td>7</td></tr>"));
	assert_non_null(strstr(s, ">10</text>")); /* the top tick */
	assert_non_null(strstr(s, "1 bars, 7 in all, at most 7 in one"));
	free(s);
	chart_spark sp = {.id = "s1", .title = "W", .values = v, .labels = label, .n = 1};
	s = spark(&sp);
	assert_non_null(strstr(s, "<line "));
	assert_non_null(strstr(s, "W: 7 in all, at most 7 (14:00)"));
	assert_non_null(strstr(s, "<th scope=\"col\">14:00</th>"));
	free(s);
}

static void test_spikes_and_huge_values(void **state)
{
	uint64_t a[24], b[24];
	for (int i = 0; i < 24; i++) {
		a[i] = 1;
		b[i] = 0;
	}
	a[13] = 1000000;
	b[5] = 2;
	chart_series ss[2] = {{"updateCard", a}, {"createCard", b}};
	chart_bars c = {.id = "spike",
	                .title = "T",
	                .x_label = "x",
	                .y_label = "y",
	                .bucket_labels = hours,
	                .nbuckets = 24,
	                .series = ss,
	                .nseries = 2};
	char *s = bars(&c);
	/* every hour with an event stays visible beside the spike */
	for (int i = 0; i < 24; i++) {
		char tip[64];
		snprintf(tip, sizeof tip, "<title>updateCard: %s (%s)</title>",
		         i == 13 ? "1000000" : "1", hours[i]);
		int h = rect_height(s, tip);
		assert_true(i == 13 ? h == 170 : h >= 1);
	}
	assert_true(rect_height(s, "<title>createCard: 2 (05:00)</title>") >= 1);
	assert_non_null(strstr(s, ">1000000</text>"));
	assert_non_null(strstr(s, ">500000</text>"));
	/* at most 12 x labels */
	assert_true(count(s, "font-size=\"10\">") <= 12);
	free(s);
	/* sums that overflow saturate instead of wrapping */
	uint64_t m[2] = {UINT64_MAX, 3};
	chart_series big[2] = {{"a", m}, {"b", m}};
	c.series = big;
	c.nbuckets = 2;
	s = bars(&c);
	assert_non_null(strstr(s, "<td>18446744073709551615</td><td>18446744073709551615</td>"
	                          "<td>18446744073709551615</td>"));
	free(s);
	chart_spark sp = {.id = "sp", .title = "W", .values = a, .labels = hours, .n = 24};
	s = spark(&sp);
	assert_non_null(strstr(s, "at most 1000000 (13:00)"));
	assert_non_null(strstr(s, "<polyline "));
	free(s);
}

static void test_long_hostile_names_escaped(void **state)
{
	size_t n = 5000 * 8 + 8;
	char *name = malloc(n + 1);
	assert_non_null(name);
	for (size_t i = 0; i < 5000; i++)
		memcpy(name + 8 * i, "<script>", 8);
	memcpy(name + 5000 * 8, "&'\"</g>x", 8);
	name[n] = '\0';
	uint64_t v[2] = {3, 4};
	const char *labels[2] = {"<b>1</b>", "\"2\" onload='x'"};
	chart_series ss[1] = {{name, v}};
	chart_bars c = {.id = "x-1_Y",
	                .title = "</title><script>alert(1)</script>",
	                .x_label = "a&b",
	                .y_label = "<y>",
	                .bucket_labels = labels,
	                .nbuckets = 2,
	                .series = ss,
	                .nseries = 1};
	char *s = bars(&c);
	assert_null(strstr(s, "<script"));
	assert_null(strstr(s, "<b>"));
	assert_null(strstr(s, "onload='"));
	assert_non_null(strstr(s, "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(s, ">a&amp;b</text>"));
	assert_non_null(strstr(s, "&quot;2&quot; onload=&#39;x&#39;"));
	/* the legend shortens the name to 18 characters and "…" */
	assert_non_null(strstr(s, ">&lt;script&gt;&lt;script&gt;&lt;s\xe2\x80\xa6</text>"));
	/* tooltips and the table keep at most CHART_TEXT_MAX characters */
	assert_true(strlen(s) < 40000);
	free(s);
	chart_spark sp = {.id = "sp", .title = name, .values = v, .labels = labels, .n = 2};
	s = spark(&sp);
	assert_null(strstr(s, "<script"));
	assert_null(strstr(s, "<b>"));
	free(s);
	free(name);
}

static void test_non_ascii_and_invalid_utf8(void **state)
{
	uint64_t v[1] = {1};
	const char *label[1] = {"\xe6\x97\xa5\xe6\x9c\xac"}; /* 日本 */
	chart_series ss[3] = {
	    {"Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m \xe2\x9c\x93 \xf0\x9f\x9a\x80",
	     v}, /* Zoë Ångström ✓ 🚀 */
	    {"bad\xff\xfe\xc3 ctl\x01\x1b\x7f c1\xc2\x85 end", v},
	    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	     v}}; /* 20 × é */
	chart_bars c = {.id = "u",
	                .title = "Ereignisse pro Stunde \xe2\x80\x94 \xc3\xbc"
	                         "bersicht",
	                .x_label = "Stunde",
	                .y_label = "Anzahl",
	                .bucket_labels = label,
	                .nbuckets = 1,
	                .series = ss,
	                .nseries = 3};
	char *s = bars(&c); /* bars() checks the whole output is valid UTF-8 */
	assert_non_null(
	    strstr(s, "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m \xe2\x9c\x93 \xf0\x9f\x9a\x80"));
	assert_non_null(strstr(s, "Ereignisse pro Stunde \xe2\x80\x94 \xc3\xbc"
	                          "bersicht"));
	/* each stray byte, control character and C1 control is one U+FFFD */
	assert_non_null(strstr(s, "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ctl\xef\xbf\xbd\xef\xbf"
	                          "\xbd\xef\xbf\xbd c1\xef\xbf\xbd end"));
	/* shortened on a character boundary: 18 × é then … */
	assert_non_null(strstr(s,
	                       ">\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	                       "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	                       "\xc3\xa9\xc3\xa9\xe2\x80\xa6</text>"));
	assert_non_null(strstr(s, "<th scope=\"row\">\xe6\x97\xa5\xe6\x9c\xac</th>"));
	free(s);
}

static void test_many_series_fold_into_other(void **state)
{
	uint64_t v[12][2];
	chart_series ss[12];
	char names[12][16];
	for (int k = 0; k < 12; k++) {
		v[k][0] = (uint64_t)k + 1;
		v[k][1] = 1;
		snprintf(names[k], sizeof names[k], "type%d", k);
		ss[k] = (chart_series){names[k], v[k]};
	}
	const char *labels[2] = {"a", "b"};
	chart_bars c = {.id = "f",
	                .title = "T",
	                .x_label = "x",
	                .y_label = "y",
	                .bucket_labels = labels,
	                .nbuckets = 2,
	                .series = ss,
	                .nseries = 12};
	char *s = bars(&c);
	assert_non_null(strstr(s, "<th scope=\"col\">type6</th><th scope=\"col\">other</th>"
	                          "<th scope=\"col\">total</th>"));
	assert_null(strstr(s, ">type7<"));
	/* other = 8+9+10+11+12 = 50 in the first bucket, 5 in the second; totals 78 and 12 */
	assert_non_null(strstr(s, "<td>50</td><td>78</td></tr>"));
	assert_non_null(strstr(s, "<td>5</td><td>12</td></tr>"));
	assert_non_null(strstr(s, "<title>other: 50 (a)</title>"));
	free(s);
}

static void test_bad_arguments_and_limits(void **state)
{
	uint64_t v[1] = {1};
	chart_series ss[1] = {{"a", v}};
	chart_bars c = {.id = "ok", .title = "T", .nbuckets = 1, .series = ss, .nseries = 1};
	buf b;
	buf_init(&b, 1 << 20);
	const char *bad_ids[] = {
	    "",         "a b",
	    "x\"y",     "<svg>",
	    "\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	for (size_t i = 0; i < TH_ARRAY_LEN(bad_ids); i++) {
		c.id = bad_ids[i];
		assert_int_equal(chart_bars_render(&b, &c), TH_EINVAL);
		chart_spark sp = {.id = bad_ids[i], .title = "T"};
		assert_int_equal(chart_spark_render(&b, &sp), TH_EINVAL);
	}
	c.id = NULL;
	assert_int_equal(chart_bars_render(&b, &c), TH_EINVAL);
	c.id = "ok";
	c.nbuckets = CHART_MAX_BUCKETS + 1;
	assert_int_equal(chart_bars_render(&b, &c), TH_EINVAL);
	c.nbuckets = 1;
	ss[0].values = NULL;
	assert_int_equal(chart_bars_render(&b, &c), TH_EINVAL);
	c.series = NULL;
	assert_int_equal(chart_bars_render(&b, &c), TH_EINVAL);
	chart_spark sp = {.id = "s", .title = "T", .n = 3};
	assert_int_equal(chart_spark_render(&b, &sp), TH_EINVAL);
	assert_int_equal(b.len, 0); /* nothing written for a refused chart */
	buf_free(&b);
	/* NULL texts and labels render as "(none)" / nothing, not a crash */
	ss[0] = (chart_series){NULL, v};
	c = (chart_bars){.id = "n", .nbuckets = 1, .series = ss, .nseries = 1};
	char *s = bars(&c);
	assert_non_null(strstr(s, "(none)"));
	free(s);
	/* a buffer too small: the buf's error, and the buf says so */
	buf small;
	buf_init(&small, 300);
	c.title = "T";
	assert_int_equal(chart_bars_render(&small, &c), TH_ETOOBIG);
	assert_int_equal(buf_status(&small), TH_ETOOBIG);
	buf_free(&small);
	/* the largest chart allowed renders */
	uint64_t *many = calloc(CHART_MAX_BUCKETS, sizeof *many);
	assert_non_null(many);
	many[CHART_MAX_BUCKETS - 1] = 9;
	chart_series one = {"t", many};
	c = (chart_bars){
	    .id = "m", .title = "T", .nbuckets = CHART_MAX_BUCKETS, .series = &one, .nseries = 1};
	s = bars(&c);
	assert_int_equal(count(s, "<g>"), CHART_MAX_BUCKETS);
	free(s);
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_one_point),
	    cmocka_unit_test(test_spikes_and_huge_values),
	    cmocka_unit_test(test_long_hostile_names_escaped),
	    cmocka_unit_test(test_non_ascii_and_invalid_utf8),
	    cmocka_unit_test(test_many_series_fold_into_other),
	    cmocka_unit_test(test_bad_arguments_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* metrics: the Prometheus text of /metrics — well-formed (every sample's
 * family declared once, before it), histograms cumulative with +Inf equal to
 * the count; handler run time by kind and by handler with bounded cardinality
 * (the first METRICS_HANDLERS ids, the rest "other", ids that would need
 * quoting too), outcomes by kind, the store's delivery gauges, and counting
 * from many threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/metrics.h"

/* Render @m and check the text format; returns the text (free it). */
static char *render(metrics *m)
{
	buf b;
	buf_init(&b, 0);
	assert_int_equal(metrics_render(m, &b), 0);
	char *text = buf_detach(&b, NULL);
	assert_non_null(text);
	buf_free(&b);
	/* every line: "# HELP name text", "# TYPE name kind" or "name{labels} value";
	 * a family's TYPE comes once, before its samples */
	char families[128][96];
	size_t nf = 0;
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		char l[512];
		size_t len = (size_t)(nl - line);
		assert_true(len < sizeof l);
		memcpy(l, line, len);
		l[len] = '\0';
		char name[96], kind[32];
		if (strncmp(l, "# HELP ", 7) == 0) {
			assert_int_equal(sscanf(l, "# HELP %95s", name), 1);
		} else if (strncmp(l, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(l, "# TYPE %95s %31s", name, kind), 2);
			assert_true(!strcmp(kind, "counter") || !strcmp(kind, "gauge") ||
			            !strcmp(kind, "histogram"));
			for (size_t i = 0; i < nf; i++)
				assert_string_not_equal(families[i], name);
			assert_true(nf < 128);
			str_copy(families[nf++], sizeof families[0], name);
		} else {
			size_t n = strspn(l, "abcdefghijklmnopqrstuvwxyz_");
			assert_true(n > 0 && (l[n] == ' ' || l[n] == '{'));
			memcpy(name, l, n);
			name[n] = '\0';
			bool known = false;
			for (size_t i = 0; i < nf && !known; i++) {
				size_t fl = strlen(families[i]);
				known =
				    !strcmp(name, families[i]) ||
				    (!strncmp(name, families[i], fl) &&
				     (!strcmp(name + fl, "_bucket") || !strcmp(name + fl, "_sum") ||
				      !strcmp(name + fl, "_count")));
			}
			if (!known)
				fail_msg("sample of an undeclared family: %s", l);
			const char *v = strrchr(l, ' ');
			assert_non_null(v);
			char *end;
			strtod(v + 1, &end);
			assert_true(*end == '\0' && end > v + 1);
		}
		line = nl + 1;
	}
	return text;
}

/* The value of the sample line starting with @prefix (must be there once). */
static double sample(const char *text, const char *prefix)
{
	const char *p = text, *hit = NULL;
	size_t n = strlen(prefix);
	while ((p = strstr(p, prefix)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			assert_null(hit);
			hit = p;
		}
		p += n;
	}
	if (!hit)
		fail_msg("no sample %s", prefix);
	return strtod(hit + n + 1, NULL);
}

static size_t count_lines(const char *text, const char *prefix)
{
	size_t k = 0;
	for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++)
		k += p == text || p[-1] == '\n';
	return k;
}

static void test_empty(void **state)
{
	(void)state;
	static metrics m;
	metrics_init(&m);
	char *t = render(&m);
	/* every kind has its run-time series, at zero; no per-handler series yet */
	for (int k = 0; k < 3; k++) {
		char pre[128];
		snprintf(pre, sizeof pre, "trellohook_handler_run_seconds_count{kind=\"%s\"}",
		         handler_kind_name(k));
		assert_true(sample(t, pre) == 0);
		for (int o = 0; o < METRICS_OUTCOMES; o++) {
			snprintf(pre, sizeof pre,
			         "trellohook_delivery_outcomes_total{kind=\"%s\",outcome=\"%s\"}",
			         handler_kind_name(k), metrics_outcome_name(o));
			assert_true(sample(t, pre) == 0);
		}
	}
	assert_int_equal(count_lines(t, "trellohook_handler_run_by_handler_seconds_bucket"), 0);
	assert_int_equal(count_lines(t, "trellohook_delivery_attempts_total{"), 0);
	/* the older families are still there */
	assert_true(sample(t, "trellohook_events_received_total") == 0);
	assert_true(sample(t, "trellohook_commit_latency_seconds_count") == 0);
	free(t);
}

static void test_handler_run(void **state)
{
	(void)state;
	static metrics m;
	metrics_init(&m);
	metrics_handler_run(&m, "AAAAAAAAAAAAAAAAAAAA", HANDLER_EXEC, 2000, METRICS_DONE);
	metrics_handler_run(&m, "AAAAAAAAAAAAAAAAAAAA", HANDLER_EXEC, 40000000, METRICS_FAILED);
	metrics_handler_run(&m, "BBBBBBBBBBBBBBBBBBBB", HANDLER_FORWARD, 700, METRICS_DEAD);
	/* out of range: ignored, not a crash */
	metrics_handler_run(&m, "CCCCCCCCCCCCCCCCCCCC", (enum handler_kind)7, 1, METRICS_DONE);
	metrics_handler_run(&m, "CCCCCCCCCCCCCCCCCCCC", HANDLER_FUNC, 1, (enum metrics_outcome)9);
	char *t = render(&m);
	const char *k = "trellohook_handler_run_seconds";
	char pre[160];
	snprintf(pre, sizeof pre, "%s_bucket{kind=\"exec\",le=\"0.001\"}", k);
	assert_true(sample(t, pre) == 0);
	snprintf(pre, sizeof pre, "%s_bucket{kind=\"exec\",le=\"0.0025\"}", k);
	assert_true(sample(t, pre) == 1);
	snprintf(pre, sizeof pre, "%s_bucket{kind=\"exec\",le=\"30\"}", k);
	assert_true(sample(t, pre) == 1); /* 40 s is past the last bound */
	snprintf(pre, sizeof pre, "%s_bucket{kind=\"exec\",le=\"+Inf\"}", k);
	assert_true(sample(t, pre) == 2);
	snprintf(pre, sizeof pre, "%s_count{kind=\"exec\"}", k);
	assert_true(sample(t, pre) == 2);
	snprintf(pre, sizeof pre, "%s_sum{kind=\"exec\"}", k);
	assert_true(sample(t, pre) > 40.0019 && sample(t, pre) < 40.0021);
	snprintf(pre, sizeof pre, "%s_bucket{kind=\"forward\",le=\"0.001\"}", k);
	assert_true(sample(t, pre) == 1);
	snprintf(pre, sizeof pre, "%s_count{kind=\"func\"}", k);
	assert_true(sample(t, pre) == 0);
	assert_true(sample(t, "trellohook_handler_run_by_handler_seconds_count{handler="
	                      "\"AAAAAAAAAAAAAAAAAAAA\",kind=\"exec\"}") == 2);
	assert_true(sample(t, "trellohook_handler_run_by_handler_seconds_bucket{handler="
	                      "\"BBBBBBBBBBBBBBBBBBBB\",kind=\"forward\",le=\"0.001\"}") == 1);
	assert_true(
	    sample(t, "trellohook_delivery_outcomes_total{kind=\"exec\",outcome=\"done\"}") == 1);
	assert_true(
	    sample(t, "trellohook_delivery_outcomes_total{kind=\"exec\",outcome=\"failed\"}") == 1);
	assert_true(
	    sample(t, "trellohook_delivery_outcomes_total{kind=\"forward\",outcome=\"dead\"}") ==
	    1);
	assert_true(sample(t, "trellohook_delivery_attempts_total{handler=\"AAAAAAAAAAAAAAAAAAAA\","
	                      "kind=\"exec\",outcome=\"failed\"}") == 1);
	assert_true(sample(t, "trellohook_delivery_attempts_total{handler=\"BBBBBBBBBBBBBBBBBBBB\","
	                      "kind=\"forward\",outcome=\"done\"}") == 0);
	assert_null(strstr(t, "CCCCCCCCCCCCCCCCCCCC"));
	/* cumulative buckets never go down */
	double last = -1;
	for (const char *p = t;
	     (p = strstr(p, "trellohook_handler_run_seconds_bucket{kind=\"exec\"")); p++) {
		double v = strtod(strchr(p, '}') + 2, NULL);
		assert_true(v >= last);
		last = v;
	}
	free(t);
}

static void test_cardinality(void **state)
{
	(void)state;
	static metrics m;
	metrics_init(&m);
	for (int i = 0; i < METRICS_HANDLERS + 30; i++) {
		char id[32];
		snprintf(id, sizeof id, "handler%012d", i);
		metrics_handler_run(&m, id, i % 2 ? HANDLER_FORWARD : HANDLER_EXEC, 1500,
		                    METRICS_DONE);
		metrics_handler_run(&m, id, i % 2 ? HANDLER_FORWARD : HANDLER_EXEC, 1500,
		                    METRICS_DONE);
	}
	/* hostile ids never become labels: quotes, newlines, too long, empty */
	const char *bad[] = {
	    "a\"b", "a\nb",
	    "a\\b", "",
	    "x{y}", "0123456789012345678901234567890123456789012345678901234567890123456789"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		metrics_handler_run(&m, bad[i], HANDLER_FUNC, 10, METRICS_FAILED);
	metrics_handler_run(&m, NULL, HANDLER_FUNC, 10, METRICS_FAILED);
	char *t = render(&m);
	/* 50 own series (12 buckets, +Inf, sum, count each) plus "other" for exec,
	 * forward and func */
	assert_int_equal(count_lines(t, "trellohook_handler_run_by_handler_seconds_count{"),
	                 METRICS_HANDLERS + 3);
	assert_int_equal(count_lines(t, "trellohook_delivery_attempts_total{"),
	                 (METRICS_HANDLERS + 3) * 3);
	assert_true(sample(t, "trellohook_handler_run_by_handler_seconds_count{handler=\"other\","
	                      "kind=\"exec\"}") == 30);
	assert_true(sample(t, "trellohook_handler_run_by_handler_seconds_count{handler=\"other\","
	                      "kind=\"forward\"}") == 30);
	assert_true(sample(t, "trellohook_delivery_attempts_total{handler=\"other\",kind=\"func\","
	                      "outcome=\"failed\"}") == 7);
	assert_true(sample(t, "trellohook_handler_run_by_handler_seconds_count{handler="
	                      "\"handler000000000049\",kind=\"forward\"}") == 2);
	assert_null(strstr(t, "handler000000000050"));
	assert_null(strstr(t, "a\"b"));
	free(t);
}

/* Many workers at once: every attempt is counted once, every id gets one slot. */
static metrics shared;
static void *hammer(void *arg)
{
	int seed = (int)(intptr_t)arg;
	for (int i = 0; i < 20000; i++) {
		char id[32];
		snprintf(id, sizeof id, "race%016d", (i * 7 + seed) % 80);
		metrics_handler_run(&shared, id, HANDLER_EXEC, i % 5000, METRICS_DONE);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	metrics_init(&shared);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	char *t = render(&shared);
	assert_true(sample(t, "trellohook_handler_run_seconds_count{kind=\"exec\"}") == 80000);
	assert_true(
	    sample(t, "trellohook_delivery_outcomes_total{kind=\"exec\",outcome=\"done\"}") ==
	    80000);
	/* 50 slots, each id once (sample() fails on a repeated line), the rest other */
	double total = 0;
	for (int i = 0; i < 80; i++) {
		char pre[160];
		snprintf(pre, sizeof pre,
		         "trellohook_handler_run_by_handler_seconds_count{handler=\"race%016d\","
		         "kind=\"exec\"}",
		         i);
		if (strstr(t, pre))
			total += sample(t, pre);
	}
	assert_int_equal(
	    count_lines(t, "trellohook_handler_run_by_handler_seconds_count{handler=\"race"),
	    METRICS_HANDLERS);
	total += sample(t, "trellohook_handler_run_by_handler_seconds_count{handler=\"other\","
	                   "kind=\"exec\"}");
	assert_true(total == 80000);
	free(t);
}

static void test_deliveries(void **state)
{
	(void)state;
	int64_t counts[5] = {3, 1, 10, 2, 4}; /* pending, running, done, failed, dead */
	buf b;
	buf_init(&b, 0);
	assert_int_equal(metrics_render_deliveries(counts, 1000000, 1001500, &b), 0);
	assert_true(sample(b.data, "trellohook_deliveries{status=\"pending\"}") == 3);
	assert_true(sample(b.data, "trellohook_deliveries{status=\"dead\"}") == 4);
	assert_true(sample(b.data, "trellohook_delivery_oldest_pending_seconds") == 1.5);
	buf_reset(&b);
	/* none pending, or due in the future (a clock step): 0, never negative */
	assert_int_equal(metrics_render_deliveries(counts, 0, 1001500, &b), 0);
	assert_true(sample(b.data, "trellohook_delivery_oldest_pending_seconds") == 0);
	buf_reset(&b);
	assert_int_equal(metrics_render_deliveries(counts, 2000000, 1001500, &b), 0);
	assert_true(sample(b.data, "trellohook_delivery_oldest_pending_seconds") == 0);
	buf_free(&b);
	/* a bounded buffer that is too small fails instead of cutting a line */
	buf_init(&b, 64);
	assert_true(metrics_render_deliveries(counts, 0, 1, &b) != 0);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),       cmocka_unit_test(test_handler_run),
	    cmocka_unit_test(test_cardinality), cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_deliveries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

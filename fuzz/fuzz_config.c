/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config — configuration and duration parsing (config/config.c,
 * util/num.c, net_parse_listen): what an operator, a compose file or a
 * shell script puts in the environment and on the command line.
 *
 * Input: lines "NAME=VALUE" (NAME may be any text; the known variables are
 * the interesting ones) used three ways: as the environment of
 * config_load_env(), one by one through config_set(), and as command-line
 * flags (each line with the next as its value). Each VALUE also goes
 * through the number, duration, listen-address and domain parsers.
 * Checks: every text field stays NUL-terminated inside its array; a
 * refusal names what was wrong.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 32

static char *g_names[MAX_LINES], *g_values[MAX_LINES];
static size_t g_n;

static const char *fuzz_env(const char *name)
{
	for (size_t i = 0; i < g_n; i++)
		if (str_eq(g_names[i], name))
			return g_values[i];
	return NULL;
}

#define FIELD_OK(f) (memchr((f), '\0', sizeof(f)) != NULL)

static void check_cfg(const th_config *c)
{
	if (!FIELD_OK(c->api_key) || !FIELD_OK(c->api_secret) || !FIELD_OK(c->callback_domain) ||
	    !FIELD_OK(c->api_url) || !FIELD_OK(c->auth_url) || !FIELD_OK(c->database_url) ||
	    !FIELD_OK(c->listen) || c->nretry > CONFIG_MAX_RETRIES)
		abort();
}

static void need_msg(int rc, const th_error *err)
{
	if (rc < 0 && !err->msg[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_in in = {data, size};
	char *lines[MAX_LINES];
	size_t nlines = 0, ll;
	const uint8_t *l;
	g_n = 0;
	while (nlines < MAX_LINES && (l = fz_cut(&in, '\n', &ll)) != NULL) {
		lines[nlines] = fz_dup(l, ll);
		const uint8_t *eq = memchr(l, '=', ll);
		size_t nl = eq ? (size_t)(eq - l) : ll;
		g_names[g_n] = fz_dup(l, nl);
		g_values[g_n] = eq ? fz_dup(eq + 1, ll - nl - 1) : fz_dup("", 0);
		g_n++;
		nlines++;
	}

	th_config *cfg = malloc(sizeof *cfg);
	if (!cfg)
		abort();
	th_error err = {0, {0}};
	int rc = config_load_env(cfg, fuzz_env, &err);
	need_msg(rc, &err);
	if (rc == 0) {
		check_cfg(cfg);
		err = (th_error){0, {0}};
		need_msg(config_require(cfg, NEED_API_KEY | NEED_API_SECRET | NEED_CALLBACK_DOMAIN,
		                        &err),
		         &err);
	}
	(void)config_load_env(cfg, NULL, &err); /* a clean start from defaults */
	for (size_t i = 0; i < g_n; i++) {
		err = (th_error){0, {0}};
		rc = config_set(cfg, g_names[i], g_values[i], &err);
		need_msg(rc, &err);
		check_cfg(cfg);
	}
	for (size_t i = 0; i < nlines; i++) {
		err = (th_error){0, {0}};
		rc = config_apply_flag(cfg, lines[i], i + 1 < nlines ? lines[i + 1] : NULL, &err);
		need_msg(rc, &err);
		check_cfg(cfg);
	}
	for (size_t i = 0; i < g_n; i++) {
		const char *v = g_values[i];
		int64_t ms, n;
		(void)num_parse_duration_ms(v, &ms);
		(void)num_parse_seconds_ms(v, &ms);
		(void)num_parse_i64(v, INT64_MIN, INT64_MAX, &n);
		if (num_parse_i64(v, 0, 100, &n) == 0 && (n < 0 || n > 100))
			abort();
		char host[64];
		uint16_t port;
		(void)net_parse_listen(v, host, sizeof host, &port);
		char dom[80];
		err = (th_error){0, {0}};
		rc = config_normalize_domain(v, dom, sizeof dom, &err);
		need_msg(rc, &err);
		if (rc == 0 && !FIELD_OK(dom))
			abort();
	}
	buf help;
	buf_init(&help, 1 << 16);
	(void)config_help(&help);
	buf_free(&help);

	free(cfg);
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	for (size_t i = 0; i < g_n; i++) {
		free(g_names[i]);
		free(g_values[i]);
	}
	return 0;
}

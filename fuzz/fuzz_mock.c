/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mock — trello-mock's request handling (src/mock/api.c and what it
 * calls in state.c and deliver.c): mock_handle() as the HTTP layer calls
 * it, for the Trello routes (/1/...), the authorize page and the /_mock/
 * control API. trello-mock listens on a port anyone on the host can reach.
 *
 * Input: up to 8 requests in the text form of fuzz.h separated by 0x1E
 * bytes, run against a fresh model (reset before each input) so webhooks,
 * boards and tokens made by one request are seen by the next. The API key
 * is FUZZ_KEY and the seeded token FUZZ_TOKEN (both appear in the seeds).
 * Every URL the mock would fetch (the HEAD check, deliveries) goes to a
 * closed local port through a proxy setting, so nothing leaves the host.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mock/mock.h"
#include "util/log.h"
#include "util/util.h"

#define FUZZ_KEY "0123456789abcdef0123456789abcdef"
#define FUZZ_TOKEN "ATTA0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567"
#define MAX_REQUESTS 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mock g_mock;

static void cleanup(void)
{
	mock_deliveries_stop(&g_mock, 2000);
	mock_fini(&g_mock);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
	setenv("http_proxy", "http://127.0.0.1:1", 1);
	setenv("HTTPS_PROXY", "http://127.0.0.1:1", 1);
	unsetenv("NO_PROXY");
	unsetenv("no_proxy");
	log_setup(LOG_ERROR, LOG_TEXT);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort();
	struct mock_config cfg = {
	    .nretry = 0,
	    .rate_key = 300,
	    .rate_token = 100,
	    .rate_window_ms = 10000,
	    .head_timeout_ms = 200,
	    .delivery_timeout_ms = 200,
	};
	str_copy(cfg.key, sizeof cfg.key, FUZZ_KEY);
	str_copy(cfg.secret, sizeof cfg.secret, "fuzz-mock-secret");
	cfg.seed_tokens[cfg.nseed++] = FUZZ_TOKEN;
	th_error err = {0, {0}};
	if (mock_init(&g_mock, &cfg) || mock_load(&g_mock, &err)) {
		fprintf(stderr, "fuzz_mock: cannot start the mock: %s\n", err.msg);
		exit(1);
	}
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pthread_mutex_lock(&g_mock.lock);
	mock_reset_locked(&g_mock);
	pthread_mutex_unlock(&g_mock.lock);
	fz_in in = {data, size};
	size_t n;
	const uint8_t *p;
	for (int i = 0; i < MAX_REQUESTS && (p = fz_cut(&in, 0x1e, &n)) != NULL; i++) {
		fz_request r;
		fz_request_parse(&r, p, n, "127.0.0.1");
		http_response res;
		http_response_init(&res);
		if (mock_handle(&g_mock, &r.req, &res) != HTTP_DONE)
			abort();
		if (res.status < 100 || res.status > 599)
			abort();
		for (size_t h = 0; h < res.nheaders; h++)
			if (strpbrk(res.header_names[h], "\r\n") ||
			    strpbrk(res.header_values[h], "\r\n"))
				abort(); /* header injection */
		http_response_clear(&res);
		fz_request_free(&r);
	}
	return 0;
}

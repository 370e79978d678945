/* SPDX-License-Identifier: MIT */
/* main.c — trello-mock's command line: parse flags, load state, serve until
 * SIGINT/SIGTERM, then stop deliveries, save state and exit 0.
 *
 * The first line on stdout is the base URL (http://HOST:PORT/1), printed
 * once the server accepts connections; everything else goes to stderr. */
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mock/mock.h"
#include "util/log.h"

/* Fixed demo credentials (public: the mock is a development tool). */
#define DEMO_KEY "5f1d3c0b9a8e7d6c5b4a39281706f5e4"
#define DEMO_SECRET "7d3c1b9a8f6e4d2c0b1a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19081726"

static const char usage[] =
    "usage: trello-mock [options]\n"
    "A local emulator of the Trello REST API (webhooks, tokens, boards, cards).\n"
    "\n"
    "  --listen HOST:PORT      address to listen on (default 127.0.0.1:0: a free port)\n"
    "  --key KEY               the API key clients must send (default a fixed demo key)\n"
    "  --secret SECRET         the application secret deliveries are signed with\n"
    "  --token TOKEN           seed a valid token (64 hex or ATTA...); repeatable\n"
    "  --retry-delays S,S,S    seconds before each retry of a failed delivery\n"
    "                          (default 30,60,120; decimals allowed: 0.2,0.4,0.8)\n"
    "  --state FILE            load the model from FILE and save it after each change\n"
    "  --json-errors           answer errors as {\"message\",\"error\"} instead of plain text\n"
    "  --disable-after N       mark a webhook inactive after N consecutive failures (0: never)\n"
    "  --rate-key N            requests per window per API key (default 300)\n"
    "  --rate-token N          requests per window per token (default 100)\n"
    "  --rate-window-ms N      rate-limit window (default 10000)\n"
    "  --head-timeout S        timeout of the HEAD check (default 10)\n"
    "  --delivery-timeout S    how long a receiver may take to answer (default 30)\n"
    "  --max-body BYTES        largest request body accepted (default 1048576)\n"
    "  --log-level LEVEL       debug, info, warn, error (default info)\n"
    "  --help                  this text\n"
    "\n"
    "Prints its base URL (http://HOST:PORT/1) as the first line on stdout when ready.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "trello-mock: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see trello-mock --help)\n");
	return 2;
}

static int parse_retry(const char *s, struct mock_config *cfg)
{
	cfg->nretry = 0;
	if (!*s)
		return 0;
	char item[32];
	const char *p = s;
	while (1) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		int64_t ms;
		if (!n || n >= sizeof item || cfg->nretry == MOCK_MAX_RETRIES)
			return TH_EINVAL;
		memcpy(item, p, n);
		item[n] = '\0';
		if (num_parse_seconds_ms(item, &ms) || ms < 0 || ms > 86400000)
			return TH_EINVAL;
		cfg->retry_ms[cfg->nretry++] = ms;
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* The options that set one integer of the config: @label and @expected make
 * the usage error; @seconds reads "10" or "0.5" seconds as milliseconds. */
struct number_option {
	const char *name, *label, *expected;
	bool seconds;
	int64_t min, max;
	int64_t *field;
};

/* The number option called @name, with its field in @cfg, into @out; false
 * when @name is not one. */
static bool number_option(const char *name, struct mock_config *cfg, struct number_option *out)
{
	const struct number_option opts[] = {
	    {"--disable-after", "--disable-after", "a number such as 1000", false, 0, 1000000,
	     &cfg->disable_after},
	    {"--rate-key", "rate limit", "a positive number such as 300", false, 1, 100000000,
	     &cfg->rate_key},
	    {"--rate-token", "rate limit", "a positive number such as 300", false, 1, 100000000,
	     &cfg->rate_token},
	    {"--rate-window-ms", "--rate-window-ms", "milliseconds such as 10000", false, 1,
	     86400000, &cfg->rate_window_ms},
	    {"--head-timeout", "timeout", "seconds such as 10 or 0.5", true, 1, 3600000,
	     &cfg->head_timeout_ms},
	    {"--delivery-timeout", "timeout", "seconds such as 10 or 0.5", true, 1, 3600000,
	     &cfg->delivery_timeout_ms},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(opts); i++)
		if (str_eq(name, opts[i].name)) {
			*out = opts[i];
			return true;
		}
	return false;
}

/* Parse the command line into @cfg/@listen. Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct mock_config *cfg, const char **listen,
                      size_t *max_body, enum log_level *level)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		char name[64];
		const char *eq = strchr(a, '=');
		if (str_starts(a, "--") && eq) {
			if ((size_t)(eq - a) >= sizeof name)
				return usage_error("unknown option %s", a);
			memcpy(name, a, (size_t)(eq - a));
			name[eq - a] = '\0';
			val = eq + 1;
		} else {
			str_copy(name, sizeof name, a);
		}
		if (str_eq(name, "--help") || str_eq(name, "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if (str_eq(name, "--json-errors")) {
			cfg->json_errors = true;
			continue;
		}
		static const char *const with_value[] = {
		    "--listen",         "--key",          "--secret",
		    "--token",          "--retry-delays", "--state",
		    "--disable-after",  "--rate-key",     "--rate-token",
		    "--rate-window-ms", "--head-timeout", "--delivery-timeout",
		    "--max-body",       "--log-level"};
		bool known = false;
		for (size_t k = 0; k < TH_ARRAY_LEN(with_value); k++)
			known = known || str_eq(name, with_value[k]);
		if (!known)
			return usage_error("unknown option %s", a);
		if (!val) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value", name);
			val = argv[++i];
		}
		int64_t n = 0;
		struct number_option num;
		if (str_eq(name, "--listen")) {
			char host[256];
			uint16_t port;
			if (net_parse_listen(val, host, sizeof host, &port))
				return usage_error(
				    "--listen: expected HOST:PORT such as 127.0.0.1:0, got '%s'",
				    val);
			*listen = val;
		} else if (str_eq(name, "--key")) {
			if (!*val || !str_copy(cfg->key, sizeof cfg->key, val))
				return usage_error("--key: expected a key such as %s", DEMO_KEY);
		} else if (str_eq(name, "--secret")) {
			if (!*val || !str_copy(cfg->secret, sizeof cfg->secret, val))
				return usage_error("--secret: expected a secret such as %s",
				                   DEMO_SECRET);
		} else if (str_eq(name, "--token")) {
			if (!str_is_trello_token(val))
				return usage_error(
				    "--token: expected 64 hex characters or ATTA + 72 hex, got '%s'",
				    "(hidden)");
			if (cfg->nseed == MOCK_MAX_SEED_TOKENS)
				return usage_error("--token: at most %s tokens", "32");
			cfg->seed_tokens[cfg->nseed++] = val;
		} else if (str_eq(name, "--retry-delays")) {
			if (parse_retry(val, cfg))
				return usage_error(
				    "--retry-delays: expected seconds such as 30,60,120 or 0.2,0.4,0.8, got '%s'",
				    val);
		} else if (str_eq(name, "--state")) {
			if (!*val)
				return usage_error("--state: expected a file name such as %s",
				                   "mock-state.json");
			cfg->state_path = val;
		} else if (number_option(name, cfg, &num)) {
			bool bad = num.seconds
			               ? num_parse_seconds_ms(val, &n) || n < num.min || n > num.max
			               : num_parse_i64(val, num.min, num.max, &n) != 0;
			if (bad)
				return usage_error("%s: expected %s, got '%s'", num.label,
				                   num.expected, val);
			*num.field = n;
		} else if (str_eq(name, "--max-body")) {
			if (num_parse_i64(val, 1024, 1LL << 30, &n))
				return usage_error(
				    "--max-body: expected bytes such as 1048576, got '%s'", val);
			*max_body = (size_t)n;
		} else if (str_eq(name, "--log-level")) {
			if (log_level_parse(val, level))
				return usage_error(
				    "--log-level: expected debug, info, warn or error, got '%s'",
				    val);
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct mock_config cfg = {
	    .retry_ms = {30000, 60000, 120000},
	    .nretry = 3,
	    .rate_key = 300,
	    .rate_token = 100,
	    .rate_window_ms = 10000,
	    .head_timeout_ms = 10000,
	    .delivery_timeout_ms = 30000,
	};
	str_copy(cfg.key, sizeof cfg.key, DEMO_KEY);
	str_copy(cfg.secret, sizeof cfg.secret, DEMO_SECRET);
	const char *listen = "127.0.0.1:0";
	size_t max_body = 1 << 20;
	enum log_level level = LOG_INFO;
	int rc = parse_args(argc, argv, &cfg, &listen, &max_body, &level);
	if (rc >= 0)
		return rc;
	log_setup(level, LOG_TEXT);

	static struct mock m; /* owned by main for the life of the process */
	http_server *srv = NULL;
	th_error err = {0};
	rc = 1;
	bool curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	if (!curl_ok) {
		fprintf(stderr, "trello-mock: cannot initialise libcurl\n");
		return 1;
	}
	if (mock_init(&m, &cfg)) {
		fprintf(stderr, "trello-mock: out of memory\n");
		goto out;
	}
	if (mock_load(&m, &err)) {
		fprintf(stderr, "trello-mock: %s\n", err.msg);
		goto out;
	}

	/* Block the stop signals in every thread; main waits for them below. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	http_server_opts opts = {
	    .listen = listen,
	    .max_body = max_body,
	    .thread_per_connection = true, /* handlers block: HEAD checks, "wait": true */
	    .max_connections = 1024,
	    .per_address = 1024, /* a test tool: every client is one local address */
	    .timeout_s = 60,
	    .handler = mock_handle,
	    .ctx = &m,
	    .name = "mock",
	};
	if (http_server_start(&srv, &opts, &err)) {
		fprintf(stderr, "trello-mock: %s\n", err.msg);
		goto out;
	}
	{
		bool demo_key = str_eq(cfg.key, DEMO_KEY),
		     demo_secret = str_eq(cfg.secret, DEMO_SECRET);
		char mk[64], ms[64];
		mask_secret(cfg.key, mk, sizeof mk);
		mask_secret(cfg.secret, ms, sizeof ms);
		/* The demo credentials are public; configured ones are masked. */
		log_info("mock", "key %s secret %s, %zu seeded tokens, retries %zu, state %s",
		         demo_key ? cfg.key : mk, demo_secret ? cfg.secret : ms, cfg.nseed,
		         cfg.nretry, cfg.state_path ? cfg.state_path : "(memory)");
	}
	printf("%s/1\n", http_server_url(srv));
	fflush(stdout);

	int sig = 0;
	sigwait(&set, &sig);
	log_info("mock", "signal %d: stopping", sig);
	rc = 0;
out:
	if (srv)
		http_server_quiesce(srv);
	mock_deliveries_stop(&m, 5000);
	http_server_free(srv);
	mock_deliveries_stop(&m, 1000); /* jobs a last request may have started */
	if (m.state) {
		pthread_mutex_lock(&m.lock);
		mock_save_locked(&m);
		pthread_mutex_unlock(&m.lock);
	}
	if (m.jobs_running == 0)
		mock_fini(&m);
	curl_global_cleanup();
	return rc;
}

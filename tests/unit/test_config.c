/* Configuration: defaults, every variable's valid and invalid values, flags
 * winning over the environment, CALLBACK_DOMAIN normalisation, requirements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "config/config.h"

/* A fake environment: pairs of name/value, so tests never touch the process env. */
static const char *env_pairs[32];
static const char *fake_env(const char *name)
{
	for (size_t i = 0; env_pairs[i]; i += 2)
		if (strcmp(env_pairs[i], name) == 0)
			return env_pairs[i + 1];
	return NULL;
}

static void set_env(const char *a, const char *b)
{
	memset(env_pairs, 0, sizeof env_pairs);
	env_pairs[0] = a;
	env_pairs[1] = b;
}

/* Load with one variable set; return the result and keep the message. */
static int load_one(const char *var, const char *value, th_config *cfg, th_error *err)
{
	set_env(var, value);
	return config_load_env(cfg, fake_env, err);
}

static void test_defaults(void **state)
{
	th_config cfg;
	th_error err = {0, {0}};
	set_env(NULL, NULL);
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_string_equal(cfg.api_url, "https://api.trello.com/1");
	assert_string_equal(cfg.auth_url, "https://trello.com/1/authorize");
	assert_string_equal(cfg.database_url, "sqlite:trellohook.db");
	assert_string_equal(cfg.listen, "127.0.0.1:8000");
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.log_format, LOG_TEXT);
	assert_int_equal(cfg.max_body, 1048576);
	assert_int_equal(cfg.nretry, 7);
	assert_int_equal(cfg.retry_ms[0], 10000);
	assert_int_equal(cfg.retry_ms[6], 6 * 3600000);
	assert_false(cfg.has_secret_key);
	assert_int_equal(cfg.api_key[0], 0);
	/* mandatory values are reported with the variable, the flag and an example */
	assert_int_equal(config_require(&cfg, NEED_API_KEY, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "TRELLO_API_KEY"));
	assert_non_null(strstr(err.msg, "--api-key"));
	assert_non_null(strstr(err.msg, "e.g. TRELLO_API_KEY="));
	assert_int_equal(config_require(&cfg, NEED_API_SECRET, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "TRELLO_API_SECRET"));
	assert_int_equal(config_require(&cfg, NEED_CALLBACK_DOMAIN, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "CALLBACK_DOMAIN"));
	assert_int_equal(config_require(&cfg, 0, &err), 0);
}

struct domain_case {
	const char *in;
	const char *out; /* NULL: rejected */
};

static void test_callback_domain(void **state)
{
	static const struct domain_case cases[] = {
	    {"https://hooks.example.com", "https://hooks.example.com"},
	    {"https://hooks.example.com/", "https://hooks.example.com"},
	    {"abc.ngrok.app", "https://abc.ngrok.app"},
	    {"abc.ngrok.app/", "https://abc.ngrok.app"},
	    {"http://127.0.0.1:8000", "http://127.0.0.1:8000"},
	    {"http://127.0.0.1:8000//", "http://127.0.0.1:8000"},
	    {"https://example.com/trello/", "https://example.com/trello"},
	    {"http://[::1]:8000", "http://[::1]:8000"},
	    {"", NULL},
	    {"https://", NULL},
	    {"https:///path", NULL},
	    {"https://exa mple.com", NULL},
	    {" https://example.com", NULL},
	    {"https://example.com#frag", NULL},
	    {"https://user:pw@example.com", NULL},
	    {"https://user@example.com", NULL},
	    {"ftp://example.com", NULL},
	    {"https://example.com:99999", NULL},
	    {"https://example.com:", NULL},
	    {"https://example.com:abc", NULL},
	    {"https://exa_mple.com", NULL},
	    {"https://example.com/?q=1", NULL},
	    {"https://ex\xc3\xa4mple.com", NULL},
	    {"https://example.com\n", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		th_config cfg;
		th_error err = {0, {0}};
		int rc = load_one("CALLBACK_DOMAIN", cases[i].in, &cfg, &err);
		if (!cases[i].in[0]) {
			/* empty counts as unset */
			assert_int_equal(rc, 0);
			assert_int_equal(cfg.callback_domain[0], 0);
			continue;
		}
		if (cases[i].out) {
			if (rc)
				fail_msg("'%s' rejected: %s", cases[i].in, err.msg);
			assert_string_equal(cfg.callback_domain, cases[i].out);
		} else {
			if (rc != TH_ECONFIG)
				fail_msg("'%s' accepted as '%s'", cases[i].in, cfg.callback_domain);
			assert_non_null(strstr(err.msg, "CALLBACK_DOMAIN"));
			assert_non_null(strstr(err.msg, "e.g. CALLBACK_DOMAIN=https://"));
		}
	}
	th_config cfg;
	th_error err;
	assert_int_equal(load_one("CALLBACK_DOMAIN", "https://x.example", &cfg, &err), 0);
	assert_true(cfg.secure_cookies);
	assert_int_equal(load_one("CALLBACK_DOMAIN", "http://x.example", &cfg, &err), 0);
	assert_false(cfg.secure_cookies);
}

struct value_case {
	const char *var;
	const char *value;
	bool ok;
};

static void test_every_variable(void **state)
{
	static const struct value_case cases[] = {
	    {"TRELLO_API_KEY", "0123456789abcdef0123456789abcdef", true},
	    {"TRELLO_API_KEY", "0123456789abcdef0123456789abcde", false},
	    {"TRELLO_API_KEY", "0123456789abcdef0123456789abcdeg", false},
	    {"TRELLO_API_SECRET", "3f8e0c5a9b2d47e1a6c0f9d8e7b6a5c4", true},
	    {"TRELLO_API_SECRET", "short", false},
	    {"TRELLO_API_SECRET", "has a space in it", false},
	    {"TRELLO_API_SECRET", "n\xc3\xb6n-ascii-secret", false},
	    {"TRELLO_API_URL", "http://127.0.0.1:9999/1", true},
	    {"TRELLO_API_URL", "127.0.0.1:9999/1", false},
	    {"TRELLO_API_URL", "file:///etc/passwd", false},
	    {"TRELLO_AUTH_URL", "https://trello.com/1/authorize", true},
	    {"TRELLO_AUTH_URL", "trello.com/1/authorize", false},
	    {"DATABASE_URL", "sqlite:/tmp/x.db", true},
	    {"DATABASE_URL", "sqlite:relative.db", true},
	    {"DATABASE_URL", "postgresql://u:p@127.0.0.1:5432/db", true},
	    {"DATABASE_URL", "postgres://127.0.0.1/db", true},
	    {"DATABASE_URL", "sqlite:", false},
	    {"DATABASE_URL", "mysql://x", false},
	    {"DATABASE_URL", "trellohook.db", false},
	    {"DATABASE_URL", "postgresql://", false},
	    {"TRELLOHOOK_LISTEN", "127.0.0.1:8000", true},
	    {"TRELLOHOOK_LISTEN", "[::1]:8000", true},
	    {"TRELLOHOOK_LISTEN", "0.0.0.0:0", true},
	    {"TRELLOHOOK_LISTEN", "localhost:80", true},
	    {"TRELLOHOOK_LISTEN", "8000", false},
	    {"TRELLOHOOK_LISTEN", "127.0.0.1:65536", false},
	    {"TRELLOHOOK_LISTEN", "127.0.0.1:-1", false},
	    {"TRELLOHOOK_LISTEN", "::1:8000", false},
	    {"TRELLOHOOK_LISTEN", "[::1]8000", false},
	    {"TRELLOHOOK_LOG_LEVEL", "debug", true},
	    {"TRELLOHOOK_LOG_LEVEL", "error", true},
	    {"TRELLOHOOK_LOG_LEVEL", "verbose", false},
	    {"TRELLOHOOK_LOG_LEVEL", "INFO", false},
	    {"TRELLOHOOK_LOG_FORMAT", "json", true},
	    {"TRELLOHOOK_LOG_FORMAT", "xml", false},
	    {"TRELLOHOOK_MAX_BODY", "2048", true},
	    {"TRELLOHOOK_MAX_BODY", "1k", false},
	    {"TRELLOHOOK_MAX_BODY", "-5", false},
	    {"TRELLOHOOK_MAX_BODY", "10", false},
	    {"TRELLOHOOK_MAX_BODY", "99999999999999999999999", false},
	    {"TRELLOHOOK_RETRY_SCHEDULE", "1s,2s", true},
	    {"TRELLOHOOK_RETRY_SCHEDULE", "100ms", true},
	    {"TRELLOHOOK_RETRY_SCHEDULE", "1s,,2s", false},
	    {"TRELLOHOOK_RETRY_SCHEDULE", "1s,2", false},
	    {"TRELLOHOOK_RETRY_SCHEDULE", "1s,", false},
	    {"TRELLOHOOK_RETRY_SCHEDULE", "forever", false},
	    {"TRELLOHOOK_SECRET_KEY", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=", true},
	    {"TRELLOHOOK_SECRET_KEY", "dG9vIHNob3J0", false},
	    {"TRELLOHOOK_SECRET_KEY", "not base64 at all!!", false},
	    {"TRELLOHOOK_HEALTH_INTERVAL", "15m", true},
	    {"TRELLOHOOK_HEALTH_INTERVAL", "0", true},
	    {"TRELLOHOOK_HEALTH_INTERVAL", "10ms", false},
	    {"TRELLOHOOK_HANDLER_TIMEOUT", "5s", true},
	    {"TRELLOHOOK_HANDLER_TIMEOUT", "2d", false},
	    {"TRELLOHOOK_HANDLER_CONCURRENCY", "4", true},
	    {"TRELLOHOOK_HANDLER_CONCURRENCY", "0", false},
	    {"TRELLOHOOK_WORKERS", "2", true},
	    {"TRELLOHOOK_WORKERS", "many", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		th_config cfg;
		th_error err = {0, {0}};
		int rc = load_one(cases[i].var, cases[i].value, &cfg, &err);
		if (cases[i].ok && rc)
			fail_msg("%s=%s rejected: %s", cases[i].var, cases[i].value, err.msg);
		if (!cases[i].ok) {
			if (rc != TH_ECONFIG)
				fail_msg("%s=%s accepted", cases[i].var, cases[i].value);
			/* the message names the variable and shows a valid example */
			assert_non_null(strstr(err.msg, cases[i].var));
			assert_non_null(strstr(err.msg, "e.g. "));
		}
	}
}

/* Secrets in malformed values are never echoed back in the message. */
static void test_errors_hide_secrets(void **state)
{
	th_config cfg;
	th_error err = {0, {0}};
	assert_int_equal(load_one("TRELLO_API_SECRET", "has a space supersecret", &cfg, &err),
	                 TH_ECONFIG);
	assert_null(strstr(err.msg, "supersecret"));
	assert_int_equal(load_one("DATABASE_URL", "mysql://u:hunter2@h/db", &cfg, &err),
	                 TH_ECONFIG);
	assert_null(strstr(err.msg, "hunter2"));
	assert_int_equal(load_one("TRELLOHOOK_SECRET_KEY", "c2VjcmV0LXRvby1zaG9ydA==", &cfg, &err),
	                 TH_ECONFIG);
	assert_null(strstr(err.msg, "c2VjcmV0"));
}

static void test_flags_win(void **state)
{
	th_config cfg;
	th_error err = {0, {0}};
	set_env("TRELLOHOOK_LISTEN", "127.0.0.1:1111");
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:1111");
	assert_int_equal(config_apply_flag(&cfg, "--listen=127.0.0.1:2222", NULL, &err), 1);
	assert_string_equal(cfg.listen, "127.0.0.1:2222");
	assert_int_equal(config_apply_flag(&cfg, "--listen", "127.0.0.1:3333", &err), 2);
	assert_string_equal(cfg.listen, "127.0.0.1:3333");
	assert_int_equal(config_apply_flag(&cfg, "--listen", NULL, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "--listen needs a value"));
	assert_int_equal(config_apply_flag(&cfg, "--listen=nonsense", NULL, &err), TH_ECONFIG);
	assert_int_equal(config_apply_flag(&cfg, "--model", "x", &err), 0); /* not a config flag */
	assert_int_equal(config_apply_flag(&cfg, "--listener", "x", &err), 0);
	assert_int_equal(config_apply_flag(&cfg, "--callback-domain", "abc.ngrok.app/", &err), 2);
	assert_string_equal(cfg.callback_domain, "https://abc.ngrok.app");
	/* TRELLO_* variables also take the flag spelled from their whole name */
	assert_int_equal(
	    config_apply_flag(&cfg, "--trello-api-key", "0123456789abcdef0123456789abcdef", &err),
	    2);
	assert_string_equal(cfg.api_key, "0123456789abcdef0123456789abcdef");
	assert_int_equal(
	    config_apply_flag(&cfg, "--api-key=ffffffffffffffffffffffffffffffff", NULL, &err), 1);
	assert_string_equal(cfg.api_key, "ffffffffffffffffffffffffffffffff");
	assert_int_equal(
	    config_apply_flag(&cfg, "--trello-api-url=http://127.0.0.1:9/1", NULL, &err), 1);
	assert_string_equal(cfg.api_url, "http://127.0.0.1:9/1");
	assert_int_equal(config_apply_flag(&cfg, "--trello-api-secret", NULL, &err), TH_ECONFIG);
	assert_non_null(
	    strstr(err.msg, "--trello-api-secret needs a value (it sets TRELLO_API_SECRET)"));
	assert_int_equal(config_apply_flag(&cfg, "--listen=", NULL, &err), TH_ECONFIG);
	assert_int_equal(config_apply_flag(&cfg, "--retry-schedule=1s,2s,3s", NULL, &err), 1);
	assert_int_equal(cfg.nretry, 3);
	assert_int_equal(cfg.retry_ms[2], 3000);
}

static void test_help_lists_everything(void **state)
{
	buf b;
	buf_init(&b, 0);
	assert_int_equal(config_help(&b), 0);
	const char *names[] = {"TRELLO_API_KEY",
	                       "TRELLO_API_SECRET",
	                       "CALLBACK_DOMAIN",
	                       "TRELLO_API_URL",
	                       "TRELLO_AUTH_URL",
	                       "DATABASE_URL",
	                       "TRELLOHOOK_LISTEN",
	                       "TRELLOHOOK_LOG_LEVEL",
	                       "TRELLOHOOK_LOG_FORMAT",
	                       "TRELLOHOOK_MAX_BODY",
	                       "TRELLOHOOK_RETRY_SCHEDULE",
	                       "TRELLOHOOK_SECRET_KEY",
	                       "--listen"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		assert_non_null(strstr(b.data, names[i]));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),       cmocka_unit_test(test_callback_domain),
	    cmocka_unit_test(test_every_variable), cmocka_unit_test(test_errors_hide_secrets),
	    cmocka_unit_test(test_flags_win),      cmocka_unit_test(test_help_lists_everything),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	log_clear_secrets();
	return rc;
}

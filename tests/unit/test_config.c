/* SPDX-License-Identifier: MIT */
/* Configuration: defaults, every variable's valid and invalid values, flags
 * winning over the environment, CALLBACK_DOMAIN normalisation, requirements,
 * secrets from NAME_FILE and systemd credentials (real files in a temporary
 * directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"

#include "child.h"

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
	    {"TRELLOHOOK_BACKFILL_MAX_AGE", "30d", true},
	    {"TRELLOHOOK_BACKFILL_MAX_AGE", "2h", true},
	    {"TRELLOHOOK_BACKFILL_MAX_AGE", "10s", false},
	    {"TRELLOHOOK_BACKFILL_MAX_AGE", "forever", false},
	    {"TRELLOHOOK_BACKFILL_MAX_AGE", "-1d", false},
	    {"TRELLOHOOK_BACKFILL_MAX_AGE", "99999d", false},
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

/* ---- secrets from files and systemd credentials ------------------------- */

static char tmpdir[256];

static int make_tmpdir(void **state)
{
	const char *base = getenv("TMPDIR");
	assert_true(str_printf(tmpdir, sizeof tmpdir, "%s/th-config-XXXXXX",
	                       base && *base ? base : "/tmp"));
	assert_non_null(mkdtemp(tmpdir));
	/* others may traverse it, so the unreadable-file test fails on the file */
	assert_int_equal(chmod(tmpdir, 0711), 0);
	return 0;
}

static int remove_tmpdir(void **state)
{
	char cmd[300];
	assert_true(str_printf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir));
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Write @len bytes of @data to @name in the temporary directory with @mode;
 * the path goes to @path (static per call site: 512 bytes). */
static void write_file(char *path, const char *name, const void *data, size_t len, mode_t mode)
{
	assert_true(str_printf(path, 512, "%s/%s", tmpdir, name));
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void set_envs(const char *a, const char *b, const char *c, const char *d)
{
	memset(env_pairs, 0, sizeof env_pairs);
	env_pairs[0] = a;
	env_pairs[1] = b;
	env_pairs[2] = c;
	env_pairs[3] = d;
}

/* Each secret variable reads NAME_FILE, one trailing newline dropped. */
static void test_secret_files_good(void **state)
{
	static const struct {
		const char *var, *content, *want;
	} cases[] = {
	    {"TRELLO_API_KEY", "0123456789abcdef0123456789abcdef\n",
	     "0123456789abcdef0123456789abcdef"},
	    {"TRELLO_API_SECRET", "3f8e0c5a9b2d47e1a6c0f9d8e7b6a5c4\n",
	     "3f8e0c5a9b2d47e1a6c0f9d8e7b6a5c4"},
	    {"TRELLO_API_SECRET", "no-newline-at-all", "no-newline-at-all"},
	    {"TRELLOHOOK_SECRET_KEY", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n", NULL},
	    {"DATABASE_URL", "postgresql://u:hunter2@127.0.0.1:5432/db\n",
	     "postgresql://u:hunter2@127.0.0.1:5432/db"},
	};
	for (size_t i = 0; i < TH_ARRAY_LEN(cases); i++) {
		char path[512], file_var[64];
		th_config cfg;
		th_error err = {0, {0}};
		write_file(path, "secret", cases[i].content, strlen(cases[i].content), 0600);
		assert_true(str_printf(file_var, sizeof file_var, "%s_FILE", cases[i].var));
		/* an empty NAME beside NAME_FILE counts as unset */
		set_envs(file_var, path, cases[i].var, "");
		if (config_load_env(&cfg, fake_env, &err))
			fail_msg("%s from a file rejected: %s", cases[i].var, err.msg);
		if (str_eq(cases[i].var, "TRELLO_API_KEY"))
			assert_string_equal(cfg.api_key, cases[i].want);
		else if (str_eq(cases[i].var, "TRELLO_API_SECRET"))
			assert_string_equal(cfg.api_secret, cases[i].want);
		else if (str_eq(cases[i].var, "DATABASE_URL"))
			assert_string_equal(cfg.database_url, cases[i].want);
		else
			assert_true(cfg.has_secret_key);
	}
	/* a file the owner alone may read (0400) is fine too */
	char path[512];
	th_config cfg;
	th_error err = {0, {0}};
	write_file(path, "ro", "readonly-secret\n", 16, 0400);
	set_env("TRELLO_API_SECRET_FILE", path);
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_string_equal(cfg.api_secret, "readonly-secret");
}

static void test_secret_file_and_variable(void **state)
{
	char path[512];
	th_config cfg;
	th_error err = {0, {0}};
	write_file(path, "both", "from-the-file\n", 14, 0600);
	set_envs("TRELLO_API_SECRET", "from-the-environment", "TRELLO_API_SECRET_FILE", path);
	assert_int_equal(config_load_env(&cfg, fake_env, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "TRELLO_API_SECRET and TRELLO_API_SECRET_FILE"));
	assert_non_null(strstr(err.msg, "only one"));
	assert_null(strstr(err.msg, "from-the"));
}

static void expect_file_error(const char *var, const char *path, const char *why)
{
	th_config cfg;
	th_error err = {0, {0}};
	set_env(var, path);
	int rc = config_load_env(&cfg, fake_env, &err);
	if (rc != TH_ECONFIG)
		fail_msg("%s=%s: expected an error containing '%s', got %d", var, path, why, rc);
	if (!strstr(err.msg, var) || !strstr(err.msg, path) || !strstr(err.msg, why))
		fail_msg("%s=%s: message '%s' lacks '%s'", var, path, err.msg, why);
}

static void test_secret_file_unreadable(void **state)
{
	char path[512];
	assert_true(str_printf(path, sizeof path, "%s/does-not-exist", tmpdir));
	expect_file_error("TRELLO_API_KEY_FILE", path, "check the path");
	expect_file_error("DATABASE_URL_FILE", tmpdir, "not a regular file");

	/* a file its reader may not open: as root, read it as nobody */
	write_file(path, "locked", "locked-secret-value\n", 20, 0000);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_dies_with_parent(parent);
		close(fds[0]);
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(3);
		th_config cfg;
		th_error err = {0, {0}};
		set_env("TRELLO_API_SECRET_FILE", path);
		int rc = config_load_env(&cfg, fake_env, &err);
		ssize_t w = write(fds[1], err.msg, strlen(err.msg));
		_exit(rc == TH_ECONFIG && w > 0 ? 0 : 4);
	}
	close(fds[1]);
	char msg[300] = {0};
	size_t n = 0;
	ssize_t got;
	while (n < sizeof msg - 1 && (got = read(fds[0], msg + n, sizeof msg - 1 - n)) > 0)
		n += (size_t)got;
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("unreadable file: child exit %d, message '%s'", WEXITSTATUS(status), msg);
	assert_non_null(strstr(msg, "TRELLO_API_SECRET_FILE"));
	assert_non_null(strstr(msg, path));
	assert_non_null(strstr(msg, "Permission denied"));
	assert_non_null(strstr(msg, "readable by the user trellohook runs as"));
	assert_null(strstr(msg, "locked-secret"));
}

static void test_secret_file_too_open(void **state)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606, 0620, 0444};
	for (size_t i = 0; i < TH_ARRAY_LEN(modes); i++) {
		char path[512], mode[16];
		write_file(path, "open", "open-secret-value\n", 18, modes[i]);
		expect_file_error("TRELLO_API_SECRET_FILE", path, "run chmod 600");
		th_config cfg;
		th_error err = {0, {0}};
		set_env("TRELLO_API_SECRET_FILE", path);
		assert_int_equal(config_load_env(&cfg, fake_env, &err), TH_ECONFIG);
		assert_true(str_printf(mode, sizeof mode, "mode %04o", (unsigned)modes[i]));
		assert_non_null(strstr(err.msg, mode));
		assert_null(strstr(err.msg, "open-secret"));
		assert_int_equal(unlink(path), 0);
	}
}

static void test_secret_file_empty(void **state)
{
	char path[512];
	write_file(path, "empty", "", 0, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "is empty");
	write_file(path, "newline", "\n", 1, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "is empty");
	write_file(path, "crlf", "\r\n", 2, 0600);
	expect_file_error("TRELLOHOOK_SECRET_KEY_FILE", path, "is empty");
	/* an empty NAME_FILE variable counts as unset, like any empty variable */
	th_config cfg;
	th_error err = {0, {0}};
	set_env("TRELLO_API_SECRET_FILE", "");
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_int_equal(cfg.api_secret[0], 0);
}

static void test_secret_file_huge(void **state)
{
	static char big[8192];
	char path[512];
	memset(big, 'a', sizeof big);
	write_file(path, "huge", big, sizeof big, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "larger than 4096 bytes");
	/* exactly 4096 bytes fits the reader; DATABASE_URL then refuses its length,
	 * and the message says which file it came from */
	memcpy(big, "sqlite:", 7);
	write_file(path, "long", big, 4096, 0600);
	expect_file_error("DATABASE_URL_FILE", path, "is too long");
	/* the limit is on the file: 4096 bytes and a newline is over it */
	big[4096] = '\n';
	write_file(path, "long-nl", big, 4097, 0600);
	expect_file_error("DATABASE_URL_FILE", path, "larger than 4096 bytes");
}

static void test_secret_file_not_text(void **state)
{
	char path[512];
	write_file(path, "latin1", "s\xe9\xe9kr\xe9t-value\n", 14, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "not UTF-8");
	write_file(path, "nul", "secret\0value\n", 13, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "NUL byte");
	/* valid UTF-8 that is no valid secret: the setter's message, with the file */
	write_file(path, "utf8", "n\xc3\xb6n-ascii-secret\n", 18, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "visible ASCII");
	/* a hostile binary blob */
	static const char blob[] = "\x1b[31m\x7f\x01\x02secret\x1b]0;title\x07";
	write_file(path, "blob", blob, sizeof blob - 1, 0600);
	expect_file_error("TRELLO_API_KEY_FILE", path, "TRELLO_API_KEY");
}

static void test_secret_file_newlines(void **state)
{
	char path[512];
	th_config cfg;
	th_error err = {0, {0}};
	write_file(path, "crlf", "windows-secret\r\n", 16, 0600);
	set_env("TRELLO_API_SECRET_FILE", path);
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_string_equal(cfg.api_secret, "windows-secret");
	/* only one newline is dropped: the second one is part of the value */
	write_file(path, "two", "two-newlines-secret\n\n", 21, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "visible ASCII");
	/* a lone trailing CR is not a newline */
	write_file(path, "cr", "lone-cr-secret\r", 15, 0600);
	expect_file_error("TRELLO_API_SECRET_FILE", path, "visible ASCII");
}

/* Under systemd, $CREDENTIALS_DIRECTORY/<credential name>. */
static void test_secret_credentials(void **state)
{
	char dir[300], path[512], name[128];
	assert_true(str_printf(dir, sizeof dir, "%s/creds", tmpdir));
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_string_equal(config_secret_credential("TRELLO_API_SECRET"),
	                    "trellohook.trello_api_secret");
	assert_string_equal(config_secret_credential("TRELLO_API_KEY"),
	                    "trellohook.trello_api_key");
	assert_string_equal(config_secret_credential("TRELLOHOOK_SECRET_KEY"),
	                    "trellohook.secret_key");
	assert_string_equal(config_secret_credential("DATABASE_URL"), "trellohook.database_url");
	assert_null(config_secret_credential("TRELLOHOOK_LISTEN"));

	/* systemd may grant the read through an ACL (group bits in the mode) */
	assert_true(str_printf(name, sizeof name, "creds/%s", "trellohook.trello_api_secret"));
	write_file(path, name, "credential-secret\n", 18, 0440);
	assert_true(str_printf(name, sizeof name, "creds/%s", "trellohook.database_url"));
	write_file(path, name, "sqlite:/var/lib/trellohook/x.db\n", 32, 0400);
	th_config cfg;
	th_error err = {0, {0}};
	set_env("CREDENTIALS_DIRECTORY", dir);
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_string_equal(cfg.api_secret, "credential-secret");
	assert_string_equal(cfg.database_url, "sqlite:/var/lib/trellohook/x.db");
	assert_int_equal(cfg.api_key[0], 0); /* absent credential: not configured */

	/* the variable, or its _FILE, wins over a credential */
	set_envs("CREDENTIALS_DIRECTORY", dir, "TRELLO_API_SECRET", "from-the-environment");
	assert_int_equal(config_load_env(&cfg, fake_env, &err), 0);
	assert_string_equal(cfg.api_secret, "from-the-environment");

	/* a malformed credential names the credential */
	assert_true(str_printf(name, sizeof name, "creds/%s", "trellohook.trello_api_key"));
	write_file(path, name, "not-a-key\n", 10, 0400);
	set_env("CREDENTIALS_DIRECTORY", dir);
	assert_int_equal(config_load_env(&cfg, fake_env, &err), TH_ECONFIG);
	assert_non_null(strstr(err.msg, "credential trellohook.trello_api_key"));
	assert_non_null(strstr(err.msg, "TRELLO_API_KEY"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_callback_domain),
	    cmocka_unit_test(test_every_variable),
	    cmocka_unit_test(test_errors_hide_secrets),
	    cmocka_unit_test(test_flags_win),
	    cmocka_unit_test(test_help_lists_everything),
	    cmocka_unit_test(test_secret_files_good),
	    cmocka_unit_test(test_secret_file_and_variable),
	    cmocka_unit_test(test_secret_file_unreadable),
	    cmocka_unit_test(test_secret_file_too_open),
	    cmocka_unit_test(test_secret_file_empty),
	    cmocka_unit_test(test_secret_file_huge),
	    cmocka_unit_test(test_secret_file_not_text),
	    cmocka_unit_test(test_secret_file_newlines),
	    cmocka_unit_test(test_secret_credentials),
	};
	int rc = cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
	log_clear_secrets();
	return rc;
}

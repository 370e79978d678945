/* SPDX-License-Identifier: MIT */
/*
 * config — trellohook's configuration, 12-factor style.
 *
 * Every setting is an environment variable with a long flag twin
 * (TRELLOHOOK_LISTEN <=> --listen); a flag wins over the environment. Values
 * are validated when loaded: a malformed one is an error naming the variable
 * and showing a valid example (the CLI exits 2 on it). Mandatory values are
 * checked per command with config_require(), since not every command needs
 * every value.
 *
 * A th_config is a plain value: load it once, then treat it as immutable.
 */
#ifndef TH_CONFIG_H
#define TH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"
#include "util/util.h"

#define CONFIG_MAX_RETRIES 32

typedef struct th_config {
	char api_key[128];          /* TRELLO_API_KEY (32 hex) */
	char api_secret[512];       /* TRELLO_API_SECRET */
	char callback_domain[512];  /* CALLBACK_DOMAIN, normalised: scheme://host[:port][/path] */
	char api_url[512];          /* TRELLO_API_URL, no trailing slash */
	char auth_url[512];         /* TRELLO_AUTH_URL */
	char database_url[1024];    /* DATABASE_URL */
	char listen[300];           /* TRELLOHOOK_LISTEN */
	enum log_level log_level;   /* TRELLOHOOK_LOG_LEVEL */
	enum log_format log_format; /* TRELLOHOOK_LOG_FORMAT */
	char log_file[4096];        /* TRELLOHOOK_LOG_FILE: serve logs there ("" stderr) */
	size_t max_body;            /* TRELLOHOOK_MAX_BODY */
	int64_t retry_ms[CONFIG_MAX_RETRIES]; /* TRELLOHOOK_RETRY_SCHEDULE */
	size_t nretry;
	unsigned char secret_key[32]; /* TRELLOHOOK_SECRET_KEY, decoded */
	bool has_secret_key;
	int64_t health_interval_ms;   /* TRELLOHOOK_HEALTH_INTERVAL (0 disables) */
	int64_t exec_timeout_ms;      /* TRELLOHOOK_HANDLER_TIMEOUT */
	int64_t retention_ms;         /* TRELLOHOOK_RETENTION (0: keep every event) */
	unsigned handler_concurrency; /* TRELLOHOOK_HANDLER_CONCURRENCY (per handler) */
	unsigned workers;             /* TRELLOHOOK_WORKERS: dispatch worker threads */
	bool secure_cookies;          /* derived: callback_domain is https */
	char trusted_proxies[1024];   /* TRELLOHOOK_TRUSTED_PROXIES, as given (validated) */
	size_t body_memory;           /* TRELLOHOOK_BODY_MEMORY */
	int64_t
	    backfill_max_age_ms; /* TRELLOHOOK_BACKFILL_MAX_AGE: how far back a backfill reaches */
} th_config;

/* Which values a command cannot work without. */
enum config_need {
	NEED_API_KEY = 1 << 0,
	NEED_API_SECRET = 1 << 1,
	NEED_CALLBACK_DOMAIN = 1 << 2,
};

/* Returns the value of an environment variable, or NULL (getenv-like). */
typedef const char *(*config_env_fn)(const char *name);

/* Fill @cfg with defaults, then the environment (via @env, NULL: getenv). */
int config_load_env(th_config *cfg, config_env_fn env, th_error *err);

/* If @flag (e.g. "--listen" or "--listen=VALUE") is a configuration flag,
 * apply it and return 1 (2 when it consumed @next as its value); return 0
 * when it is not a configuration flag; negative on a malformed value. */
int config_apply_flag(th_config *cfg, const char *flag, const char *next, th_error *err);

/* Check the values a command needs; the error names the variable, its flag
 * and an example. */
int config_require(const th_config *cfg, unsigned needs, th_error *err);

/* Set one variable by its environment name (used by both of the above). */
int config_set(th_config *cfg, const char *var, const char *value, th_error *err);

/* Normalise a CALLBACK_DOMAIN value into @out. */
int config_normalize_domain(const char *in, char *out, size_t outsz, th_error *err);

/* Append the help text listing every variable, its flag and default. */
int config_help(buf *out);

/* ---- secrets from files (secrets.c) ---------------------------------------
 * A secret setting (TRELLO_API_KEY, TRELLO_API_SECRET, TRELLOHOOK_SECRET_KEY,
 * DATABASE_URL) comes from, in this order:
 *   NAME           the variable itself;
 *   NAME_FILE      a file holding the value (one trailing newline dropped),
 *                  which group and others may neither read nor write;
 *   $CREDENTIALS_DIRECTORY/<credential>  under systemd (LoadCredential=), when
 *                  neither of the above is set; see config_secret_credential().
 * NAME and NAME_FILE both set is an error. */

/* The systemd credential name of secret variable @env ("trellohook.<...>"),
 * or NULL when @env is not a secret setting. Static string; thread-safe. */
const char *config_secret_credential(const char *env);

/* Append the help text on NAME_FILE and the credential names to @out. */
int config_secret_help(buf *out);

/* Look up secret variable @env_name through @env (see above). Returns 1 with
 * *@value set when a value was found: either @env's own string or @fbuf
 * (@fbufsz bytes, filled from a file; the caller wipes it with explicit_bzero
 * once used), and @origin (may be NULL) naming the file or credential it
 * came from ("" for the variable itself). Returns 0 when the setting is not
 * given anywhere, TH_ECONFIG with a message naming the variable or file and
 * saying what to do otherwise (the file's content is never in it).
 * Thread-safe if @env is. */
int config_secret_get(const char *env_name, config_env_fn env, char *fbuf, size_t fbufsz,
                      const char **value, char *origin, size_t originsz, th_error *err);

#endif

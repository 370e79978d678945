/* SPDX-License-Identifier: MIT */
/* config.c — see config.h. One table drives env names, flags, defaults,
 * parsing and the help text, so they cannot drift apart. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/addr.h"

typedef int (*setter_fn)(th_config *cfg, const char *value, th_error *err);

struct var {
	const char *env;
	const char *flag;
	const char *def;   /* NULL: no default */
	const char *alias; /* the flag spelled from the whole variable name, when it differs */
	setter_fn set;
	const char *help;
};

static int bad(th_error *err, const char *env, const char *value, const char *why,
               const char *example)
{
	return th_err(err, TH_ECONFIG, "%s: %s%s%s%s, e.g. %s=%s", env, why, value ? " ('" : "",
	              value ? value : "", value ? "')" : "", env, example);
}

static int set_api_key(th_config *cfg, const char *v, th_error *err)
{
	if (strlen(v) != 32 || !str_is_hex(v, 32))
		return bad(
		    err, "TRELLO_API_KEY", NULL,
		    "must be the 32 hex characters of your Trello API key (https://trello.com/app-key)",
		    "0123456789abcdef0123456789abcdef");
	str_copy(cfg->api_key, sizeof cfg->api_key, v);
	return 0;
}

static int set_api_secret(th_config *cfg, const char *v, th_error *err)
{
	size_t n = strlen(v);
	bool printable = n >= 8 && n < sizeof cfg->api_secret;
	for (size_t i = 0; printable && i < n; i++)
		printable = v[i] > 0x20 && v[i] < 0x7f;
	if (!printable) /* never echo a secret back, not even a malformed one */
		return bad(
		    err, "TRELLO_API_SECRET", NULL,
		    "must be your Trello application secret (8 or more visible ASCII characters, "
		    "no spaces; shown next to the API key)",
		    "3f8e0c5a9b2d47e1a6c0f9d8e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8");
	str_copy(cfg->api_secret, sizeof cfg->api_secret, v);
	log_add_secret(v);
	return 0;
}

/* host[:port] validation shared by URL-ish settings; @hostport is not NUL-terminated. */
static bool valid_hostport(const char *hp, size_t n)
{
	if (!n)
		return false;
	size_t hostlen = n;
	if (hp[0] == '[') {
		const char *end = memchr(hp, ']', n);
		if (!end || end == hp + 1)
			return false;
		for (const char *p = hp + 1; p < end; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		hostlen = (size_t)(end - hp) + 1;
	} else {
		const char *colon = memchr(hp, ':', n);
		if (colon)
			hostlen = (size_t)(colon - hp);
		if (!hostlen)
			return false;
		for (size_t i = 0; i < hostlen; i++)
			if (!isalnum((unsigned char)hp[i]) && hp[i] != '.' && hp[i] != '-')
				return false;
		if (hp[0] == '.' || hp[0] == '-')
			return false;
	}
	if (hostlen == n)
		return true;
	if (hp[hostlen] != ':' || hostlen + 1 == n || n - hostlen - 1 > 5)
		return false;
	char port[6];
	memcpy(port, hp + hostlen + 1, n - hostlen - 1);
	port[n - hostlen - 1] = '\0';
	int64_t p;
	return num_parse_i64(port, 1, 65535, &p) == 0;
}

/* Validate an absolute http(s) URL; write it without trailing slashes.
 * @default_https: a value without scheme gets "https://". */
static int normalize_url(const char *env, const char *in, bool default_https, bool allow_query,
                         char *out, size_t outsz, const char *example, th_error *err)
{
	if (!*in)
		return bad(err, env, in, "is empty", example);
	for (const char *p = in; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return bad(err, env, in,
			           "must not contain spaces, control or non-ASCII characters",
			           example);
	char tmp[1024];
	const char *rest;
	if (str_starts(in, "https://") || str_starts(in, "http://")) {
		if (!str_copy(tmp, sizeof tmp, in))
			return bad(err, env, NULL, "is too long", example);
		rest = strstr(tmp, "://") + 3;
	} else if (strstr(in, "://")) {
		return bad(err, env, in, "must be an http:// or https:// URL", example);
	} else if (default_https) {
		if (!str_printf(tmp, sizeof tmp, "https://%s", in))
			return bad(err, env, NULL, "is too long", example);
		rest = tmp + 8;
	} else {
		return bad(err, env, in, "must start with http:// or https://", example);
	}
	if (strchr(tmp, '#'))
		return bad(err, env, in, "must not contain a fragment ('#')", example);
	if (!allow_query && strchr(tmp, '?'))
		return bad(err, env, in, "must not contain a query ('?')", example);
	size_t authlen = strcspn(rest, "/?");
	if (memchr(rest, '@', authlen))
		return bad(err, env, in, "must not contain user info ('user@')", example);
	if (!valid_hostport(rest, authlen))
		return bad(err, env, in, "has no valid host[:port]", example);
	size_t n = strlen(tmp);
	while (n && tmp[n - 1] == '/' && tmp + n - 1 >= rest + authlen)
		tmp[--n] = '\0';
	if (!str_copy(out, outsz, tmp))
		return bad(err, env, NULL, "is too long", example);
	return 0;
}

int config_normalize_domain(const char *in, char *out, size_t outsz, th_error *err)
{
	return normalize_url("CALLBACK_DOMAIN", in, true, false, out, outsz,
	                     "https://hooks.example.com", err);
}

static int set_callback_domain(th_config *cfg, const char *v, th_error *err)
{
	int rc = config_normalize_domain(v, cfg->callback_domain, sizeof cfg->callback_domain, err);
	if (!rc)
		cfg->secure_cookies = str_starts(cfg->callback_domain, "https://");
	return rc;
}

static int set_api_url(th_config *cfg, const char *v, th_error *err)
{
	return normalize_url("TRELLO_API_URL", v, false, false, cfg->api_url, sizeof cfg->api_url,
	                     "https://api.trello.com/1", err);
}

static int set_auth_url(th_config *cfg, const char *v, th_error *err)
{
	return normalize_url("TRELLO_AUTH_URL", v, false, false, cfg->auth_url,
	                     sizeof cfg->auth_url, "https://trello.com/1/authorize", err);
}

static int set_database_url(th_config *cfg, const char *v, th_error *err)
{
	const char *example = "sqlite:trellohook.db";
	if (str_starts(v, "sqlite:")) {
		if (!v[7])
			return bad(err, "DATABASE_URL", v, "names no file after 'sqlite:'",
			           example);
	} else if (str_starts(v, "postgresql://") || str_starts(v, "postgres://")) {
		const char *rest = strstr(v, "://") + 3;
		if (!*rest)
			return bad(err, "DATABASE_URL", NULL, "names no PostgreSQL server",
			           "postgresql://trellohook:secret@127.0.0.1:5432/trellohook");
	} else {
		char masked[256];
		mask_url(v, masked, sizeof masked);
		return bad(err, "DATABASE_URL", masked,
		           "must be sqlite:PATH or postgresql://user:pass@host:port/db", example);
	}
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bad(err, "DATABASE_URL", NULL, "must not contain control characters",
			           example);
	if (!str_copy(cfg->database_url, sizeof cfg->database_url, v))
		return bad(err, "DATABASE_URL", NULL, "is too long", example);
	/* a password inside the URL is a secret too */
	const char *scheme = strstr(v, "://");
	if (scheme) {
		const char *auth = scheme + 3, *at = strchr(auth, '@');
		const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon) {
			char pw[256];
			size_t n = (size_t)(at - colon - 1);
			if (n < sizeof pw) {
				memcpy(pw, colon + 1, n);
				pw[n] = '\0';
				log_add_secret(pw);
			}
		}
	}
	return 0;
}

static int set_listen(th_config *cfg, const char *v, th_error *err)
{
	char host[256];
	uint16_t port;
	if (net_parse_listen(v, host, sizeof host, &port))
		return bad(err, "TRELLOHOOK_LISTEN", v, "must be HOST:PORT or [IPv6]:PORT",
		           "127.0.0.1:8000");
	str_copy(cfg->listen, sizeof cfg->listen, v);
	return 0;
}

static int set_log_level(th_config *cfg, const char *v, th_error *err)
{
	if (log_level_parse(v, &cfg->log_level))
		return bad(err, "TRELLOHOOK_LOG_LEVEL", v, "must be debug, info, warn or error",
		           "info");
	return 0;
}

static int set_log_file(th_config *cfg, const char *v, th_error *err)
{
	if (!str_copy(cfg->log_file, sizeof cfg->log_file, v))
		return bad(err, "TRELLOHOOK_LOG_FILE", v, "is too long", "/var/log/trellohook.log");
	return 0;
}

static int set_log_format(th_config *cfg, const char *v, th_error *err)
{
	if (log_format_parse(v, &cfg->log_format))
		return bad(err, "TRELLOHOOK_LOG_FORMAT", v, "must be text or json", "json");
	return 0;
}

static int set_max_body(th_config *cfg, const char *v, th_error *err)
{
	int64_t n;
	if (num_parse_i64(v, 1024, (int64_t)64 << 20, &n))
		return bad(err, "TRELLOHOOK_MAX_BODY", v,
		           "must be a whole number of bytes from 1024 to 67108864", "1048576");
	cfg->max_body = (size_t)n;
	return 0;
}

static int set_retry_schedule(th_config *cfg, const char *v, th_error *err)
{
	const char *example = "10s,1m,5m,30m,2h,6h,6h";
	int64_t ms[CONFIG_MAX_RETRIES];
	size_t n = 0;
	const char *p = v;
	if (!*v)
		return bad(err, "TRELLOHOOK_RETRY_SCHEDULE", v, "is empty", example);
	for (;;) {
		size_t len = strcspn(p, ",");
		char item[32];
		if (n == CONFIG_MAX_RETRIES)
			return bad(err, "TRELLOHOOK_RETRY_SCHEDULE", NULL,
			           "has more than 32 delays", example);
		if (!len || len >= sizeof item)
			return bad(err, "TRELLOHOOK_RETRY_SCHEDULE", v,
			           "has an empty or overlong delay", example);
		memcpy(item, p, len);
		item[len] = '\0';
		if (num_parse_duration_ms(item, &ms[n]) || ms[n] > (int64_t)30 * 86400000)
			return bad(
			    err, "TRELLOHOOK_RETRY_SCHEDULE", v,
			    "must be comma-separated durations such as 250ms, 10s, 1m, 2h, 1d (at most 30d)",
			    example);
		n++;
		if (!p[len])
			break;
		p += len + 1;
	}
	memcpy(cfg->retry_ms, ms, n * sizeof ms[0]);
	cfg->nretry = n;
	return 0;
}

static int set_secret_key(th_config *cfg, const char *v, th_error *err)
{
	unsigned char key[48];
	long n = b64_decode(v, strlen(v), key, sizeof key);
	if (n != 32)
		return bad(
		    err, "TRELLOHOOK_SECRET_KEY", NULL,
		    "must be 32 random bytes in base64 (create one with: openssl rand -base64 32)",
		    "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=");
	memcpy(cfg->secret_key, key, 32);
	cfg->has_secret_key = true;
	log_add_secret(v);
	return 0;
}

/* A duration variable @env into *@out (ms): from @lo to @hi ms, or, when
 * @off_ok, "0"/"off" for 0; else the error "@env: @why". */
static int set_duration(const char *env, const char *v, int64_t lo, int64_t hi, bool off_ok,
                        int64_t *out, const char *why, const char *example, th_error *err)
{
	if (off_ok && (str_eq(v, "0") || str_eq(v, "off"))) {
		*out = 0;
		return 0;
	}
	if (num_parse_duration_ms(v, out) || *out < lo || *out > hi)
		return bad(err, env, v, why, example);
	return 0;
}

static int set_health_interval(th_config *cfg, const char *v, th_error *err)
{
	return set_duration("TRELLOHOOK_HEALTH_INTERVAL", v, 1000, INT64_MAX, true,
	                    &cfg->health_interval_ms,
	                    "must be a duration of at least 1s, or 0/off to disable", "15m", err);
}

/* Trello keeps every action, but a pass reaching years back after a long
 * outage would list (and hand to handlers) far more than anyone wants. */
static int set_backfill_max_age(th_config *cfg, const char *v, th_error *err)
{
	return set_duration("TRELLOHOOK_BACKFILL_MAX_AGE", v, 60000, (int64_t)3650 * 86400000,
	                    false, &cfg->backfill_max_age_ms, "must be a duration from 1m to 3650d",
	                    "30d", err);
}

/* How long serve keeps events (TRELLOHOOK_RETENTION); off/0/unset keeps all. */
static int set_retention(th_config *cfg, const char *v, th_error *err)
{
	return set_duration(
	    "TRELLOHOOK_RETENTION", v, 1000, (int64_t)36500 * 86400000, true, &cfg->retention_ms,
	    "must be a duration from 1s to 36500d, or 0/off to keep every event", "90d", err);
}

static int set_handler_timeout(th_config *cfg, const char *v, th_error *err)
{
	return set_duration("TRELLOHOOK_HANDLER_TIMEOUT", v, 10, 3600000, false,
	                    &cfg->exec_timeout_ms, "must be a duration from 10ms to 1h", "30s",
	                    err);
}

static int set_uint(const char *env, const char *v, unsigned lo, unsigned hi, unsigned *out,
                    const char *example, th_error *err)
{
	int64_t n;
	if (num_parse_i64(v, lo, hi, &n)) {
		char why[96];
		str_printf(why, sizeof why, "must be a whole number from %u to %u", lo, hi);
		return bad(err, env, v, why, example);
	}
	*out = (unsigned)n;
	return 0;
}

static int set_concurrency(th_config *cfg, const char *v, th_error *err)
{
	return set_uint("TRELLOHOOK_HANDLER_CONCURRENCY", v, 1, 1024, &cfg->handler_concurrency,
	                "8", err);
}

static int set_workers(th_config *cfg, const char *v, th_error *err)
{
	return set_uint("TRELLOHOOK_WORKERS", v, 1, 256, &cfg->workers, "4", err);
}

/* The HTTP layer's connection settings (issue 15): its own small setters. */
static int set_trusted_proxies(th_config *cfg, const char *v, th_error *err)
{
	net_cidr c[NET_MAX_PROXIES];
	size_t n;
	char why[128] = "";
	if (net_cidrs_parse(v, c, NET_MAX_PROXIES, &n, why, sizeof why) ||
	    !str_copy(cfg->trusted_proxies, sizeof cfg->trusted_proxies, v)) {
		char msg[192];
		str_printf(msg, sizeof msg, "must be addresses or CIDRs separated by commas (%s)",
		           why[0] ? why : "longer than 1023 characters");
		return bad(err, "TRELLOHOOK_TRUSTED_PROXIES", v, msg, "127.0.0.1,10.0.0.0/8,::1");
	}
	return 0;
}

static int set_body_memory(th_config *cfg, const char *v, th_error *err)
{
	int64_t n;
	if (num_parse_i64(v, (int64_t)1 << 20, (int64_t)4 << 30, &n))
		return bad(err, "TRELLOHOOK_BODY_MEMORY", v,
		           "must be a whole number of bytes from 1048576 (1 MiB) to 4294967296",
		           "33554432");
	cfg->body_memory = (size_t)n;
	return 0;
}

static const struct var vars[] = {
    {"TRELLO_API_KEY", "--api-key", NULL, "--trello-api-key", set_api_key,
     "Trello API key (32 hex). Needed by every command that calls Trello."},
    {"TRELLO_API_SECRET", "--api-secret", NULL, "--trello-api-secret", set_api_secret,
     "Trello application secret; verifies X-Trello-Webhook. Needed by serve."},
    {"CALLBACK_DOMAIN", "--callback-domain", NULL, NULL, set_callback_domain,
     "public base URL Trello can reach, e.g. https://hooks.example.com"},
    {"TRELLO_API_URL", "--api-url", "https://api.trello.com/1", "--trello-api-url", set_api_url,
     "Trello API base; point it at trello-mock"},
    {"TRELLO_AUTH_URL", "--auth-url", "https://trello.com/1/authorize", "--trello-auth-url",
     set_auth_url, "Trello's authorize page, for user tokens"},
    {"DATABASE_URL", "--database-url", "sqlite:trellohook.db", NULL, set_database_url,
     "sqlite:PATH or postgresql://user:pass@host:port/db"},
    {"TRELLOHOOK_LISTEN", "--listen", "127.0.0.1:8000", NULL, set_listen,
     "address the server listens on (HOST:PORT, [::1]:PORT)"},
    {"TRELLOHOOK_LOG_LEVEL", "--log-level", "info", NULL, set_log_level,
     "debug, info, warn, error"},
    {"TRELLOHOOK_LOG_FORMAT", "--log-format", "text", NULL, set_log_format, "text or json"},
    {"TRELLOHOOK_LOG_FILE", "--log-file", NULL, NULL, set_log_file,
     "serve appends its log here instead of stderr; SIGHUP reopens it (log rotation)"},
    {"TRELLOHOOK_MAX_BODY", "--max-body", "1048576", NULL, set_max_body,
     "largest callback body accepted, in bytes"},
    {"TRELLOHOOK_RETRY_SCHEDULE", "--retry-schedule", "10s,1m,5m,30m,2h,6h,6h", NULL,
     set_retry_schedule, "delays between handler attempts; length + 1 attempts"},
    {"TRELLOHOOK_SECRET_KEY", "--secret-key", NULL, NULL, set_secret_key,
     "optional 32-byte base64 key that encrypts stored Trello tokens"},
    {"TRELLOHOOK_HEALTH_INTERVAL", "--health-interval", "15m", NULL, set_health_interval,
     "how often serve checks tokens and webhooks on Trello (0 disables)"},
    {"TRELLOHOOK_RETENTION", "--retention", NULL, NULL, set_retention,
     "serve prunes events received longer ago than this (90d), hourly; unset keeps all"},
    {"TRELLOHOOK_HANDLER_TIMEOUT", "--handler-timeout", "30s", NULL, set_handler_timeout,
     "how long an exec or forward handler may take"},
    {"TRELLOHOOK_HANDLER_CONCURRENCY", "--handler-concurrency", "8", NULL, set_concurrency,
     "deliveries running at once per handler"},
    {"TRELLOHOOK_WORKERS", "--workers", "4", NULL, set_workers, "dispatch worker threads"},
    {"TRELLOHOOK_TRUSTED_PROXIES", "--trusted-proxies", NULL, NULL, set_trusted_proxies,
     "reverse proxies (addresses/CIDRs, comma-separated) whose X-Forwarded-For names the "
     "client; none by default"},
    {"TRELLOHOOK_BODY_MEMORY", "--body-memory", "33554432", NULL, set_body_memory,
     "bytes of request bodies held at once; beyond, new bodies get 503 + Retry-After"},
    {"TRELLOHOOK_BACKFILL_MAX_AGE", "--backfill-max-age", "30d", NULL, set_backfill_max_age,
     "how far back a backfill pass may reach (after downtime, Trello's past actions)"},
};

int config_set(th_config *cfg, const char *var, const char *value, th_error *err)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(vars); i++)
		if (str_eq(vars[i].env, var))
			return vars[i].set(cfg, value, err);
	return th_err(err, TH_ECONFIG, "unknown setting %s", var);
}

static const char *process_env(const char *name)
{
	return getenv(name);
}

/* Set secret variable @v from NAME, NAME_FILE or a systemd credential
 * (secrets.c); a value from a file that does not parse names the file too. */
static int load_secret(th_config *cfg, const struct var *v, config_env_fn env, th_error *err)
{
	char fbuf[4097], origin[512];
	const char *value;
	int rc =
	    config_secret_get(v->env, env, fbuf, sizeof fbuf, &value, origin, sizeof origin, err);
	if (rc == 1) {
		rc = v->set(cfg, value, err);
		if (rc && origin[0])
			th_err_wrap(err, "%s", origin);
	}
	explicit_bzero(fbuf, sizeof fbuf);
	return rc;
}

int config_load_env(th_config *cfg, config_env_fn env, th_error *err)
{
	memset(cfg, 0, sizeof *cfg);
	if (!env)
		env = process_env;
	for (size_t i = 0; i < TH_ARRAY_LEN(vars); i++) {
		if (vars[i].def) {
			int rc = vars[i].set(cfg, vars[i].def, err);
			if (rc)
				return rc;
		}
	}
	for (size_t i = 0; i < TH_ARRAY_LEN(vars); i++) {
		if (config_secret_credential(vars[i].env)) {
			int rc = load_secret(cfg, &vars[i], env, err);
			if (rc)
				return rc;
			continue;
		}
		const char *v = env(vars[i].env);
		/* an empty variable counts as unset (docker/compose leave them empty) */
		if (v && *v) {
			int rc = vars[i].set(cfg, v, err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* If @flag is @name or @name=VALUE, the value's start (or "" for the bare
 * form, whose value is the next argument); NULL when it is another flag. */
static const char *flag_value(const char *flag, const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (!n || strncmp(flag, name, n) != 0)
		return NULL;
	if (flag[n] == '=')
		return flag + n + 1;
	return flag[n] == '\0' ? flag + n : NULL;
}

int config_apply_flag(th_config *cfg, const char *flag, const char *next, th_error *err)
{
	for (size_t i = 0; i < TH_ARRAY_LEN(vars); i++) {
		const char *v = flag_value(flag, vars[i].flag);
		if (!v)
			v = flag_value(flag, vars[i].alias);
		if (!v)
			continue;
		if (*v || strchr(flag, '=')) {
			int rc = vars[i].set(cfg, v, err);
			return rc ? rc : 1;
		}
		if (!next)
			return th_err(err, TH_ECONFIG, "%s needs a value (it sets %s)", flag,
			              vars[i].env);
		int rc = vars[i].set(cfg, next, err);
		return rc ? rc : 2;
	}
	return 0;
}

int config_require(const th_config *cfg, unsigned needs, th_error *err)
{
	if ((needs & NEED_API_KEY) && !cfg->api_key[0])
		return bad(err, "TRELLO_API_KEY", NULL,
		           "is not set (nor TRELLO_API_KEY_FILE; or use --api-key); get yours at "
		           "https://trello.com/app-key",
		           "0123456789abcdef0123456789abcdef");
	if ((needs & NEED_API_SECRET) && !cfg->api_secret[0])
		return bad(
		    err, "TRELLO_API_SECRET", NULL,
		    "is not set (nor TRELLO_API_SECRET_FILE; or use --api-secret); it is the secret "
		    "shown next to your API key",
		    "3f8e0c5a9b2d47e1a6c0f9d8e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8");
	if ((needs & NEED_CALLBACK_DOMAIN) && !cfg->callback_domain[0])
		return bad(
		    err, "CALLBACK_DOMAIN", NULL,
		    "is not set (or use --callback-domain); it is the public URL Trello can reach",
		    "https://hooks.example.com");
	return 0;
}

int config_help(buf *out)
{
	int rc = buf_puts(out, "Configuration (environment variable / flag; a flag wins):\n");
	for (size_t i = 0; !rc && i < TH_ARRAY_LEN(vars); i++)
		rc = buf_printf(out, "  %-31s %-23s %s%s%s%s%s%s\n", vars[i].env, vars[i].flag,
		                vars[i].help, vars[i].def ? " [default: " : "",
		                vars[i].def ? vars[i].def : "", vars[i].def ? "]" : "",
		                vars[i].alias ? " Also " : "", vars[i].alias ? vars[i].alias : "");
	return rc ? rc : config_secret_help(out);
}

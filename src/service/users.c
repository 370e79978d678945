/* SPDX-License-Identifier: MIT */
/*
 * users.c — admin users, their sign-in and their sessions: the one password
 * hash (Argon2id, libsodium crypto_pwhash_str with the interactive limits),
 * the check of a sign-in against it, the login throttle, and the session rows.
 *
 * Login throttle: per-app state (svc_throttle, owned by the app), a small
 * table of recent failures keyed by (user name, client address) and by client
 * address alone, guarded by one mutex. SVC_THROTTLE_MAX failures within
 * SVC_THROTTLE_WINDOW_MS lock that key out until its window ends. A name is
 * never a key on its own: a stranger guessing passwords for "ann" from one
 * address cannot lock out ann signing in from another.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "util/log.h"

#define SVC_THROTTLE_MAX 5
#define SVC_THROTTLE_WINDOW_MS (15LL * 60 * 1000)
#define SVC_THROTTLE_SLOTS 1024
#define SVC_SESSION_IDLE_MS (12LL * 3600 * 1000)
#define SVC_SESSION_REFRESH_MS (5LL * 60 * 1000)

/* ---- the one password hash ---------------------------------------------------------- */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok = -1; /* this module's; set once by sodium_setup */

static void sodium_setup(void)
{
	sodium_ok = sodium_init() >= 0 ? 0 : -1;
}

int svc_password_hash(const char *pw, size_t len, char out[SVC_PWHASH_MAX], th_error *err)
{
	pthread_once(&sodium_once, sodium_setup);
	if (sodium_ok)
		return th_err(err, TH_EIO, "libsodium could not be initialised");
	if (crypto_pwhash_str(out, pw, (unsigned long long)len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return th_err(err, TH_ENOMEM, "out of memory while hashing the password");
	return 0;
}

bool svc_user_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > SVC_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

int svc_user_set(svc_ctx *sc, const char *name, const char *pw, size_t len, th_error *err)
{
	if (!svc_user_name_ok(name))
		return th_err(err, TH_EINVAL, "a user name is 1-64 of letters, digits, . _ @ -");
	char hash[SVC_PWHASH_MAX];
	int rc = svc_password_hash(pw, len, hash, err);
	if (!rc)
		rc = store_user_put(sc->st, name, hash, err);
	sodium_memzero(hash, sizeof hash);
	return rc;
}

/* ---- the login throttle ------------------------------------------------------------- */

typedef struct throttle_slot {
	char key[SVC_USER_MAX + 96]; /* "u:ADDRESS NAME" or "a:ADDRESS"; "" when free */
	int failures;
	int64_t window_start; /* time of the first failure in the window */
} throttle_slot;

struct svc_throttle {
	pthread_mutex_t mu;
	throttle_slot slots[SVC_THROTTLE_SLOTS]; /* guarded by mu */
};

int svc_throttle_new(svc_throttle **out, th_error *err)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return th_err(err, TH_ENOMEM, "out of memory");
	pthread_mutex_init(&(*out)->mu, NULL);
	return 0;
}

void svc_throttle_free(svc_throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* The slot of @key (created when @create), or NULL. Caller holds the lock. */
static throttle_slot *throttle_find(svc_throttle *t, const char *key, int64_t now, bool create)
{
	throttle_slot *free_slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < SVC_THROTTLE_SLOTS; i++) {
		throttle_slot *s = &t->slots[i];
		if (s->key[0] && now - s->window_start >= SVC_THROTTLE_WINDOW_MS)
			s->key[0] = '\0'; /* expired */
		if (!s->key[0]) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (str_eq(s->key, key))
			return s;
		if (!oldest || s->window_start < oldest->window_start)
			oldest = s;
	}
	if (!create)
		return NULL;
	throttle_slot *s = free_slot ? free_slot : oldest;
	str_copy(s->key, sizeof s->key, key);
	s->failures = 0;
	s->window_start = now;
	return s;
}

/* The two keys of a sign-in: (address, name) and address. An address never
 * holds a space, so "u:ADDRESS NAME" cannot collide across pairs. */
static void throttle_keys(const char *user, const char *addr, char ku[SVC_USER_MAX + 96],
                          char ka[SVC_USER_MAX + 96])
{
	str_printf(ku, SVC_USER_MAX + 96, "u:%s %s", addr, user);
	str_printf(ka, SVC_USER_MAX + 96, "a:%s", addr);
}

/* Milliseconds until @user at @addr may try again, 0 when they may now. */
static int64_t throttle_wait(svc_throttle *t, const char *user, const char *addr)
{
	char ku[SVC_USER_MAX + 96], ka[SVC_USER_MAX + 96];
	throttle_keys(user, addr, ku, ka);
	int64_t now = time_mono_ms(), wait = 0;
	pthread_mutex_lock(&t->mu);
	const char *keys[2] = {ku, ka};
	for (int i = 0; i < 2; i++) {
		throttle_slot *s = throttle_find(t, keys[i], now, false);
		if (s && s->failures >= SVC_THROTTLE_MAX) {
			int64_t w = s->window_start + SVC_THROTTLE_WINDOW_MS - now;
			if (w > wait)
				wait = w;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return wait;
}

static void throttle_fail(svc_throttle *t, const char *user, const char *addr)
{
	char ku[SVC_USER_MAX + 96], ka[SVC_USER_MAX + 96];
	throttle_keys(user, addr, ku, ka);
	int64_t now = time_mono_ms();
	pthread_mutex_lock(&t->mu);
	throttle_find(t, ku, now, true)->failures++;
	throttle_find(t, ka, now, true)->failures++;
	pthread_mutex_unlock(&t->mu);
}

static void throttle_success(svc_throttle *t, const char *user, const char *addr)
{
	char ku[SVC_USER_MAX + 96], ka[SVC_USER_MAX + 96];
	throttle_keys(user, addr, ku, ka);
	pthread_mutex_lock(&t->mu);
	throttle_slot *s = throttle_find(t, ku, time_mono_ms(), false);
	if (s)
		s->key[0] = '\0';
	pthread_mutex_unlock(&t->mu);
}

/* ---- sign-in ------------------------------------------------------------------------ */

/* A hash of a random password with the same cost as real ones, made once
 * (this module owns it; it never changes afterwards). */
static char dummy_hash_str[SVC_PWHASH_MAX];
static bool dummy_hash_ok;
static pthread_once_t dummy_hash_once = PTHREAD_ONCE_INIT;

static void make_dummy_hash(void)
{
	char pw[32];
	randombytes_buf(pw, sizeof pw);
	dummy_hash_ok = svc_password_hash(pw, sizeof pw, dummy_hash_str, NULL) == 0;
	sodium_memzero(pw, sizeof pw);
}

int svc_login_check(svc_ctx *sc, const char *user, const char *pw, const char *addr,
                    int64_t *retry_ms, th_error *err)
{
	*retry_ms = 0;
	if (!addr)
		addr = "";
	pthread_once(&sodium_once, sodium_setup);
	if (sodium_ok)
		return th_err(err, TH_EIO, "libsodium could not be initialised");
	if (!user || !*user || strlen(user) > SVC_USER_MAX || !pw || !*pw)
		return th_err(err, TH_EINVAL, "enter a user name and a password");
	int64_t wait = throttle_wait(sc->throttle, user, addr);
	if (wait > 0) {
		*retry_ms = wait;
		log_warn("admin", "sign-in throttled for a user name or address (%s)", addr);
		return th_err(err, TH_EUNAVAIL, "too many failed sign-ins; try again later");
	}
	char *hash = NULL;
	int rc = store_user_get_hash(sc->st, user, &hash, err);
	if (rc && rc != TH_ENOTFOUND)
		return rc;
	/* An unknown user is checked against a dummy hash, so the answer takes as
	 * long as for a known one and its timing does not reveal user names. */
	pthread_once(&dummy_hash_once, make_dummy_hash);
	const char *against = hash ? hash : dummy_hash_ok ? dummy_hash_str : NULL;
	bool good = against && crypto_pwhash_str_verify(against, pw, strlen(pw)) == 0 && hash;
	free(hash);
	if (!good) {
		throttle_fail(sc->throttle, user, addr);
		log_info("admin", "failed sign-in from %s", addr);
		return th_err(err, TH_EAUTH, "wrong user name or password");
	}
	throttle_success(sc->throttle, user, addr);
	return 0;
}

/* ---- sessions ----------------------------------------------------------------------- */

int svc_session_start(svc_ctx *sc, const char *id_hash, const char *user, const char *csrf,
                      int64_t *max_age_ms, th_error *err)
{
	user_session s = {(char *)id_hash, (char *)user, (char *)csrf,
	                  time_now_ms() + SVC_SESSION_IDLE_MS};
	*max_age_ms = SVC_SESSION_IDLE_MS;
	return store_session_put(sc->st, &s, err);
}

int svc_session_load(svc_ctx *sc, const char *id_hash, user_session *out, th_error *err)
{
	int rc = store_session_get(sc->st, id_hash, out, err);
	if (rc)
		return rc;
	int64_t now = time_now_ms();
	if (out->expires_at <= now) {
		th_error derr = {0, {0}};
		user_session_clear(out);
		(void)svc_session_end(sc, id_hash, &derr);
		return th_err(err, TH_ENOTFOUND, "the session expired");
	}
	/* Sliding idle expiry, written at most every few minutes. */
	if (out->expires_at - now < SVC_SESSION_IDLE_MS - SVC_SESSION_REFRESH_MS) {
		th_error werr = {0, {0}};
		out->expires_at = now + SVC_SESSION_IDLE_MS;
		if (store_session_put(sc->st, out, &werr))
			log_warn("admin", "refreshing a session failed: %s", werr.msg);
	}
	return 0;
}

int svc_session_end(svc_ctx *sc, const char *id_hash, th_error *err)
{
	int rc = store_session_delete(sc->st, id_hash, err);
	/* a session the store no longer has is gone either way */
	if ((!rc || rc == TH_ENOTFOUND) && sc->on_session_end)
		sc->on_session_end(sc->on_session_end_ctx, id_hash);
	return rc;
}

int svc_session_alive(svc_ctx *sc, const char *id_hash, th_error *err)
{
	user_session s;
	int rc = store_session_get(sc->st, id_hash, &s, err);
	if (rc == TH_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	bool alive = s.expires_at > time_now_ms();
	user_session_clear(&s);
	return alive ? 1 : 0;
}

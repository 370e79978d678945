/* SPDX-License-Identifier: MIT */
/*
 * sqlite_users.c — admin users and their sessions in the SQLite store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"

/* ---- users and sessions --------------------------------------------------------------------- */

typedef struct sq_user {
	const char *name;
	const char *pwhash;
} sq_user;

static void bind_user(sq_bind *b, const void *arg)
{
	const sq_user *x = arg;
	sq_bind_text(b, x->name);
	sq_bind_text(b, x->pwhash);
	sq_bind_i64(b, time_now_ms());
}

/* Insert a user or replace its password hash. */
int sq_user_put(store *st, const char *name, const char *pwhash, th_error *err)
{
	if (store_check_user(name, pwhash, err) != 0)
		return TH_EINVAL;
	sq_user x = {name, pwhash};
	return sq_command(sq_of(st), Q_USER_PUT, bind_user, &x, "storing a user", NULL, NULL, err);
}

int sq_user_get_hash(store *st, const char *name, char **out_hash, th_error *err)
{
	char nf[160];
	str_printf(nf, sizeof nf, "no user named %s", name ? name : "(null)");
	int ret = sq_get_one(sq_of(st), Q_USER_GET_HASH, name, NULL, &store_rt_text, out_hash, nf,
	                     "reading a user", err);
	if (ret == 0 && !*out_hash)
		ret = th_err(err, TH_ENOMEM, "out of memory");
	return ret;
}

/* Insert or replace a session; expired sessions are purged on the way.
 * TH_ENOTFOUND when the user does not exist. */
int sq_session_put(store *st, const user_session *us, th_error *err)
{
	sq *s = sq_of(st);
	if (store_check_session(us, err) != 0)
		return TH_EINVAL;
	pthread_mutex_lock(&s->mu);
	int ret = 0, rc;
	sq_bind b;
	if ((ret = sq_prepare(s, Q_SESSION_PURGE, &b, err)) != 0)
		goto out;
	sqlite3_stmt *q = b.st;
	sq_bind_i64(&b, time_now_ms());
	if ((ret = sq_done(s, &b, "purging sessions", err)) != 0)
		goto out;
	if ((ret = sq_prepare(s, Q_SESSION_PUT, &b, err)) != 0)
		goto out;
	q = b.st;
	sq_bind_text(&b, us->id_hash);
	sq_bind_text(&b, us->user);
	sq_bind_text(&b, us->csrf);
	sq_bind_i64(&b, us->expires_at);
	rc = b.rc == SQLITE_OK ? sq_step(q) : b.rc;
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
			ret = th_err(err, TH_ENOTFOUND, "no user named %s", us->user);
		else
			ret = sq_fail(s, err, "storing a session");
	}
	sq_reset(q);
out:
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* The session as stored, even when expired: the caller checks expires_at. */
int sq_session_get(store *st, const char *id_hash, user_session *out, th_error *err)
{
	return sq_get_one(sq_of(st), Q_SESSION_GET, id_hash, NULL, &store_rt_session, out,
	                  "no such session", "reading a session", err);
}

int sq_session_delete(store *st, const char *id_hash, th_error *err)
{
	return sq_delete_one(sq_of(st), Q_SESSION_DELETE, id_hash, "session", false, err);
}

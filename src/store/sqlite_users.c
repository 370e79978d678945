/* SPDX-License-Identifier: MIT */
/*
 * sqlite_users.c — admin users and their sessions in the SQLite store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"

/* ---- users and sessions --------------------------------------------------------------------- */

/* name, pwhash (an sq_texts), created_at */
static void bind_user(sq_bind *b, const void *arg)
{
	sq_bind_texts(b, arg);
	sq_bind_i64(b, time_now_ms());
}

/* Insert a user or replace its password hash. */
int sq_user_put(store *st, const char *name, const char *pwhash, th_error *err)
{
	if (store_check_user(name, pwhash, err) != 0)
		return TH_EINVAL;
	sq_texts x = {{name, pwhash}, 2};
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

/* Purge expired sessions, then insert or replace @ctx (a user_session). */
static int tx_session_put(sq *s, void *ctx, th_error *err)
{
	const user_session *us = ctx;
	sq_bind b;
	int ret = sq_prepare(s, Q_SESSION_PURGE, &b, err);
	if (ret != 0)
		return ret;
	sq_bind_i64(&b, time_now_ms());
	if ((ret = sq_done(s, &b, "purging sessions", err)) != 0 ||
	    (ret = sq_prepare(s, Q_SESSION_PUT, &b, err)) != 0)
		return ret;
	store_params_session(&(store_params){&sq_params_ops, &b}, us);
	/* the error survives the statement's reset in sq_done */
	if ((ret = sq_done(s, &b, "storing a session", err)) != 0 &&
	    sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		ret = th_err(err, TH_ENOTFOUND, "no user named %s", us->user);
	return ret;
}

/* Insert or replace a session; expired sessions are purged in the same
 * transaction. TH_ENOTFOUND when the user does not exist. */
int sq_session_put(store *st, const user_session *us, th_error *err)
{
	if (store_check_session(us, err) != 0)
		return TH_EINVAL;
	return sq_txn(sq_of(st), tx_session_put, (void *)us, err);
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

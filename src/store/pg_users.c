/* SPDX-License-Identifier: MIT */
/*
 * pg_users.c — admin users and their sessions in the PostgreSQL store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

/* ---- users and sessions -------------------------------------------------------------------- */

int pg_user_put(store *st, const char *name, const char *pwhash, th_error *err)
{
	if (store_check_user(name, pwhash, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	pp_text(&p, name);
	pp_text(&p, pwhash);
	pp_i64(&p, time_now_ms());
	int ret = pg_command(pgs_of(st),
	                     "INSERT INTO users (name, pwhash, created_at) VALUES ($1, $2, $3)"
	                     " ON CONFLICT (name) DO UPDATE SET pwhash = excluded.pwhash",
	                     &p, "storing a user", NULL, err);
	pp_free(&p);
	return ret;
}

int pg_user_get_hash(store *st, const char *name, char **out_hash, th_error *err)
{
	*out_hash = NULL;
	char nf[160];
	str_printf(nf, sizeof nf, "no user named %s", name ? name : "(null)");
	int ret = pg_get_key(pgs_of(st), "SELECT pwhash FROM users WHERE name = $1", name,
	                     "reading a user", &store_rt_text, out_hash, nf, err);
	if (ret == 0 && !*out_hash)
		ret = th_err(err, TH_ENOMEM, "out of memory");
	return ret;
}

/* Insert or replace a session, purging expired ones, in one transaction. */
static int op_session_put(pgs *s, PGconn *c, void *ctx, th_error *err)
{
	const user_session *us = ctx;
	pparams p = {0};
	int ret = 0;
	pp_i64(&p, time_now_ms());
	if ((ret = pq_do(s, c, "DELETE FROM sessions WHERE expires_at < $1", &p, "purging sessions",
	                 err)) != 0)
		goto out;
	pp_reset(&p);
	store_params_session(&(store_params){&pp_params_ops, &p}, us);
	ret = pq_do(s, c,
	            "INSERT INTO sessions (id_hash, \"user\", csrf, expires_at)"
	            " VALUES ($1, $2, $3, $4) ON CONFLICT (id_hash) DO UPDATE SET"
	            " \"user\" = excluded.\"user\", csrf = excluded.csrf,"
	            " expires_at = excluded.expires_at",
	            &p, "storing a session", err);
	if (ret == TH_ENOTFOUND)
		ret = th_err(err, TH_ENOTFOUND, "no user named %s", us->user);
out:
	pp_free(&p);
	return ret;
}

int pg_session_put(store *st, const user_session *us, th_error *err)
{
	if (store_check_session(us, err) != 0)
		return TH_EINVAL;
	return with_txn(pgs_of(st), op_session_put, (void *)us, err);
}

/* The session as stored, even when expired: the caller checks expires_at. */
int pg_session_get(store *st, const char *id_hash, user_session *out, th_error *err)
{
	return pg_get_key(pgs_of(st),
	                  "SELECT id_hash, \"user\", csrf, expires_at FROM sessions"
	                  " WHERE id_hash = $1",
	                  id_hash, "reading a session", &store_rt_session, out, "no such session",
	                  err);
}

int pg_session_delete(store *st, const char *id_hash, th_error *err)
{
	return pg_delete_one(pgs_of(st), "DELETE FROM sessions WHERE id_hash = $1", id_hash,
	                     "session", false, err);
}

/* SPDX-License-Identifier: MIT */
/*
 * pg_webhooks.c — webhooks and tokens in the PostgreSQL store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

/* ---- webhooks ----------------------------------------------------------------------------- */

static int webhook_unique_err(const th_error *e, const webhook *w, th_error *err)
{
	return store_webhook_exists(w, strstr(e->msg, "webhooks_model_token") != NULL, err);
}

/* Insert (@insert) or update @w with @sql over store_params_webhook(): a
 * uniqueness violation becomes the message naming the rule it hit;
 * *@changes the rows changed. */
static int webhook_write(store *st, const webhook *w, bool insert, const char *sql,
                         const char *what, long *changes, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	store_params_webhook(&(store_params){&pp_params_ops, &p}, w, insert);
	th_error e = {0};
	int ret = pg_command(pgs_of(st), sql, &p, what, changes, &e);
	pp_free(&p);
	if (ret == TH_EEXISTS)
		return webhook_unique_err(&e, w, err);
	if (ret != 0 && err)
		*err = e;
	return ret;
}

int pg_webhook_insert(store *st, const webhook *w, th_error *err)
{
	return webhook_write(st, w, true,
	                     "INSERT INTO webhooks (" WEBHOOK_COLS ") VALUES"
	                     " ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
	                     "adding a webhook", NULL, err);
}

int pg_webhook_update(store *st, const webhook *w, th_error *err)
{
	long changes = 0;
	int ret =
	    webhook_write(st, w, false,
	                  "UPDATE webhooks SET trello_id = $2, id_model = $3, model_type = $4,"
	                  " model_name = $5, description = $6, callback_url = $7, token = $8,"
	                  " state = $9, active = $10, consecutive_failures = $11,"
	                  " first_consecutive_fail_at = $12, last_event_at = $13,"
	                  " token_fp = coalesce($14, token_fp)"
	                  /* a removal is never undone by a writer that read the
	                   * row before it (see store.h) */
	                  " WHERE id = $1 AND (state <> 'removing' OR $9 = 'removing')",
	                  "updating a webhook", &changes, err);
	if (ret == 0 && changes == 0)
		return store_webhook_gone(err, w->id);
	return ret;
}

#define WEBHOOK_SELECT "SELECT " WEBHOOK_COLS ", " WEBHOOK_EVENT_COUNT " FROM webhooks w"

int pg_webhook_get(store *st, const char *id, webhook *out, th_error *err)
{
	return pg_get_id(pgs_of(st), WEBHOOK_SELECT " WHERE id = $1", id, "reading a webhook",
	                 &store_rt_webhook, out, "webhook", err);
}

int pg_webhook_find(store *st, const char *id_model, const char *tok, webhook *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	char nf[160];
	str_printf(nf, sizeof nf, "no webhook for model %s with this token",
	           id_model ? id_model : "(null)");
	if (!tok || !id_model)
		return th_err(err, TH_ENOTFOUND, "%s", nf);
	pparams p = {0};
	pp_text(&p, id_model);
	pp_text(&p, tok);
	int ret = pg_get_one(pgs_of(st), WEBHOOK_SELECT " WHERE id_model = $1 AND token = $2", &p,
	                     "reading a webhook", &store_rt_webhook, out, nf, err);
	pp_free(&p);
	return ret;
}

int pg_webhook_list(store *st, webhook **out, size_t *n, th_error *err)
{
	return pg_list_all(pgs_of(st), WEBHOOK_SELECT " ORDER BY created_at, id", NULL,
	                   "listing webhooks", &store_rt_webhook, (void **)out, n, err);
}

/* Deleting a webhook keeps its events (no foreign key). */
int pg_webhook_delete(store *st, const char *id, th_error *err)
{
	return pg_delete_one(pgs_of(st), "DELETE FROM webhooks WHERE id = $1", id, "webhook", true,
	                     err);
}

/* ---- tokens ------------------------------------------------------------------------------- */

int pg_token_put(store *st, const token *t, th_error *err)
{
	if (store_check_token(t, err) != 0)
		return TH_EINVAL;
	pparams p = {0};
	store_params_token(&(store_params){&pp_params_ops, &p}, t);
	int ret = pg_command(pgs_of(st),
	                     "INSERT INTO tokens (" TOKEN_COLS ") VALUES ($1,$2,$3,$4,$5,$6,$7)"
	                     " ON CONFLICT (token) DO UPDATE SET member = excluded.member,"
	                     " expires_at = excluded.expires_at, state = excluded.state,"
	                     " checked_at = excluded.checked_at,"
	                     " token_fp = coalesce(excluded.token_fp, tokens.token_fp)",
	                     &p, "storing a token", NULL, err);
	pp_free(&p);
	return ret;
}

int pg_token_get(store *st, const char *tok, token *out, th_error *err)
{
	return pg_get_key(pgs_of(st), "SELECT " TOKEN_COLS " FROM tokens WHERE token = $1", tok,
	                  "reading a token", &store_rt_token, out, "no such token stored", err);
}

int pg_token_list(store *st, token **out, size_t *n, th_error *err)
{
	return pg_list_all(pgs_of(st),
	                   "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, token", NULL,
	                   "listing tokens", &store_rt_token, (void **)out, n, err);
}

int pg_token_delete(store *st, const char *tok, th_error *err)
{
	return pg_delete_one(pgs_of(st), "DELETE FROM tokens WHERE token = $1", tok, "token", false,
	                     err);
}

/* ---- fingerprints of rows from before they existed ------------------------------------ */

static int fill_fp(pgs *s, const char *sql, const char *key, const char *fp, const char *what,
                   th_error *err)
{
	pparams p = {0};
	pp_text(&p, key);
	pp_text(&p, fp);
	int ret = pg_command(s, sql, &p, what, NULL, err);
	pp_free(&p);
	if (ret == TH_EEXISTS)
		ret = th_err(err, TH_EEXISTS, "another row already has this token");
	return ret;
}

int pg_webhook_fill_fp(store *st, const char *id, const char *fp, th_error *err)
{
	return fill_fp(pgs_of(st),
	               "UPDATE webhooks SET token_fp = $2 WHERE id = $1 AND " FP_REPLACEABLE("$2"),
	               id, fp, "filling a webhook's token fingerprint", err);
}

int pg_token_fill_fp(store *st, const char *tok, const char *fp, th_error *err)
{
	return fill_fp(pgs_of(st),
	               "UPDATE tokens SET token_fp = $2 WHERE token = $1 AND " FP_REPLACEABLE("$2"),
	               tok, fp, "filling a token's fingerprint", err);
}

/* ---- backfill marks ----------------------------------------------------------------------- */

int pg_backfill_mark_get(store *st, const char *webhook_id, backfill_mark *out, th_error *err)
{
	return pg_get_key(pgs_of(st),
	                  "SELECT " BACKFILL_MARK_COLS " FROM backfill_marks WHERE webhook_id = $1",
	                  webhook_id, "reading a backfill mark", &store_rt_backfill_mark, out,
	                  "no backfill mark for this webhook", err);
}

int pg_backfill_mark_put(store *st, const backfill_mark *m, th_error *err)
{
	pparams p = {0};
	pp_text(&p, m->webhook_id);
	pp_text(&p, m->last_action_id);
	pp_i64(&p, m->last_action_at);
	pp_text(&p, m->model_kind);
	pp_text_repair(&p, m->error);
	pp_i64(&p, m->recovered);
	pp_i64(&p, m->gap_from);
	pp_i64(&p, m->gap_to);
	pp_i64(&p, m->updated_at);
	int ret =
	    pg_command(pgs_of(st), BACKFILL_MARK_PUT_SQL("$1, $2, $3, $4, $5, $6, $7, $8, $9"), &p,
	               "storing a backfill mark", NULL, err);
	pp_free(&p);
	return ret;
}

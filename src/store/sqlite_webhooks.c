/* SPDX-License-Identifier: MIT */
/*
 * sqlite_webhooks.c — webhooks and tokens in the SQLite store.
 */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"

/* ---- webhooks ------------------------------------------------------------------------ */

static int webhook_unique_err(sq *s, const void *arg, th_error *err)
{
	return store_webhook_exists(arg, strstr(sqlite3_errmsg(s->db), "webhooks.id_model") != NULL,
	                            err);
}

/* The columns both webhook statements bind, in order; created_at only on insert. */
static void bind_webhook(sq_bind *b, const webhook *w, bool insert)
{
	store_params_webhook(&(store_params){&sq_params_ops, b}, w, insert);
}

static void bind_webhook_insert(sq_bind *b, const void *arg)
{
	bind_webhook(b, arg, true);
}

static void bind_webhook_update(sq_bind *b, const void *arg)
{
	bind_webhook(b, arg, false);
}

int sq_webhook_insert(store *st, const webhook *w, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	return sq_command(sq_of(st), Q_WEBHOOK_INSERT, bind_webhook_insert, w, "adding a webhook",
	                  webhook_unique_err, NULL, err);
}

int sq_webhook_update(store *st, const webhook *w, th_error *err)
{
	if (store_check_webhook(w, err) != 0)
		return TH_EINVAL;
	int changes = 0;
	int ret = sq_command(sq_of(st), Q_WEBHOOK_UPDATE, bind_webhook_update, w,
	                     "updating a webhook", webhook_unique_err, &changes, err);
	if (ret == 0 && changes == 0)
		ret = store_webhook_gone(err, w->id);
	return ret;
}

int sq_webhook_get(store *st, const char *id, webhook *out, th_error *err)
{
	return sq_get_id(sq_of(st), Q_WEBHOOK_GET, id, &store_rt_webhook, out, "webhook",
	                 "reading a webhook", err);
}

int sq_webhook_find(store *st, const char *id_model, const char *tok, webhook *out, th_error *err)
{
	char nf[160];
	str_printf(nf, sizeof nf, "no webhook for model %s with this token",
	           id_model ? id_model : "(null)");
	if (!tok) {
		memset(out, 0, sizeof *out);
		return th_err(err, TH_ENOTFOUND, "%s", nf);
	}
	return sq_get_one(sq_of(st), Q_WEBHOOK_FIND, id_model, tok, &store_rt_webhook, out, nf,
	                  "reading a webhook", err);
}

int sq_webhook_list(store *st, webhook **out, size_t *n, th_error *err)
{
	return sq_list(sq_of(st), Q_WEBHOOK_LIST, &store_rt_webhook, (void **)out, n,
	               "listing webhooks", err);
}

/* Deleting a webhook keeps its events (no foreign key; see the top comment). */
int sq_webhook_delete(store *st, const char *id, th_error *err)
{
	return sq_delete_one(sq_of(st), Q_WEBHOOK_DELETE, id, "webhook", true, err);
}

/* ---- tokens --------------------------------------------------------------------------- */

static void bind_token(sq_bind *b, const void *arg)
{
	store_params_token(&(store_params){&sq_params_ops, b}, arg);
}

int sq_token_put(store *st, const token *t, th_error *err)
{
	if (store_check_token(t, err) != 0)
		return TH_EINVAL;
	return sq_command(sq_of(st), Q_TOKEN_PUT, bind_token, t, "storing a token", NULL, NULL,
	                  err);
}

int sq_token_get(store *st, const char *tok, token *out, th_error *err)
{
	return sq_get_one(sq_of(st), Q_TOKEN_GET, tok, NULL, &store_rt_token, out,
	                  "no such token stored", "reading a token", err);
}

int sq_token_list(store *st, token **out, size_t *n, th_error *err)
{
	return sq_list(sq_of(st), Q_TOKEN_LIST, &store_rt_token, (void **)out, n, "listing tokens",
	               err);
}

int sq_token_delete(store *st, const char *tok, th_error *err)
{
	return sq_delete_one(sq_of(st), Q_TOKEN_DELETE, tok, "token", false, err);
}

/* ---- fingerprints of rows from before they existed ------------------------------------ */

static int fill_unique_err(sq *s, const void *arg, th_error *err)
{
	(void)s;
	(void)arg;
	return th_err(err, TH_EEXISTS, "another row already has this token");
}

int sq_webhook_fill_fp(store *st, const char *id, const char *fp, th_error *err)
{
	sq_texts x = {{id, fp}, 2};
	return sq_command(sq_of(st), Q_WEBHOOK_FILL_FP, sq_bind_texts, &x,
	                  "filling a webhook's token fingerprint", fill_unique_err, NULL, err);
}

int sq_token_fill_fp(store *st, const char *tok, const char *fp, th_error *err)
{
	sq_texts x = {{tok, fp}, 2};
	return sq_command(sq_of(st), Q_TOKEN_FILL_FP, sq_bind_texts, &x,
	                  "filling a token's fingerprint", fill_unique_err, NULL, err);
}

/* ---- backfill marks ----------------------------------------------------------------------- */

int sq_backfill_mark_get(store *st, const char *webhook_id, backfill_mark *out, th_error *err)
{
	return sq_get_one(sq_of(st), Q_BACKFILL_MARK_GET, webhook_id, NULL, &store_rt_backfill_mark,
	                  out, "no backfill mark for this webhook", "reading a backfill mark", err);
}

static void bind_mark(sq_bind *b, const void *arg)
{
	const backfill_mark *m = arg;
	sq_bind_text(b, m->webhook_id);
	sq_bind_text(b, m->last_action_id);
	sq_bind_i64(b, m->last_action_at);
	sq_bind_text(b, m->model_kind);
	sq_bind_text(b, m->error);
	sq_bind_i64(b, m->recovered);
	sq_bind_i64(b, m->gap_from);
	sq_bind_i64(b, m->gap_to);
	sq_bind_i64(b, m->updated_at);
}

int sq_backfill_mark_put(store *st, const backfill_mark *m, th_error *err)
{
	return sq_command(sq_of(st), Q_BACKFILL_MARK_PUT, bind_mark, m, "storing a backfill mark",
	                  NULL, NULL, err);
}

/* SPDX-License-Identifier: MIT */
/*
 * tokens.c — the Trello user tokens trellohook knows, and what happens when
 * Trello says one is no longer good.
 *
 * Rows of the tokens table are keyed by the token AS STORED: with a secret
 * key that is a sealed form that differs every time it is made, so every
 * lookup here lists the table and compares plain text, and updates reuse the
 * stored form of the row found (the table holds a handful of tokens).
 */
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "service/webhook_cache.h"
#include "util/log.h"

#define COMPONENT "tokens"

/* on_token_dead of every client made by svc_trello_client(). */
static void on_dead(void *ctx, const char *tok, enum trello_error_kind kind)
{
	svc_token_mark_dead((svc_ctx *)ctx, tok, kind);
}

int svc_trello_client(svc_ctx *sc, trello_client **out, th_error *err)
{
	trello_client_opts o = TRELLO_CLIENT_OPTS_INIT;
	o.api_url = sc->cfg->api_url[0] ? sc->cfg->api_url : NULL;
	o.api_key = sc->cfg->api_key;
	o.on_token_dead = on_dead;
	o.on_token_dead_ctx = sc;
	return trello_client_new(out, &o, err);
}

/* Open every row's token in place. On failure the list is freed. */
static int open_all(svc_ctx *sc, token *list, size_t n, th_error *err)
{
	for (size_t i = 0; i < n; i++) {
		char *plain = NULL;
		int rc = tokens_open(sc->cfg, list[i].token, &plain, err);
		if (rc)
			return rc;
		free(list[i].token);
		list[i].token = plain;
	}
	return 0;
}

int svc_token_list(svc_ctx *sc, token **out, size_t *n, th_error *err)
{
	int rc = store_token_list(sc->st, out, n, err);
	if (rc)
		return rc;
	rc = open_all(sc, *out, *n, err);
	if (rc) {
		token_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int svc_token_find(svc_ctx *sc, const char *plain, token *out, char **stored_out, th_error *err)
{
	token *list = NULL;
	size_t n = 0;
	memset(out, 0, sizeof *out);
	if (stored_out)
		*stored_out = NULL;
	int rc = store_token_list(sc->st, &list, &n, err);
	if (rc)
		return rc;
	rc = TH_ENOTFOUND;
	for (size_t i = 0; i < n && rc == TH_ENOTFOUND; i++) {
		char *p = NULL;
		int orc = tokens_open(sc->cfg, list[i].token, &p, err);
		if (orc) {
			rc = orc;
			break;
		}
		if (str_eq(p, plain)) {
			rc = 0;
			if (stored_out) {
				*stored_out = list[i].token;
				list[i].token = NULL;
			}
			*out = list[i];
			memset(&list[i], 0, sizeof list[i]);
			free(out->token);
			out->token = p;
			p = NULL;
		}
		free(p);
	}
	token_list_free(list, n);
	if (rc == TH_ENOTFOUND)
		th_err(err, TH_ENOTFOUND, "this token is not stored (see token ls)");
	return rc;
}

int svc_token_save(svc_ctx *sc, const token *t, th_error *err)
{
	token old;
	char *stored = NULL;
	int rc = svc_token_find(sc, t->token, &old, &stored, err);
	if (rc == TH_ENOTFOUND)
		rc = tokens_seal(sc->cfg, t->token, &stored, err);
	else if (rc == 0)
		token_clear(&old);
	if (rc)
		goto out;
	char fp[TOKEN_FP_SIZE];
	if ((rc = tokens_fingerprint(sc->cfg, t->token, fp, err)) != 0)
		goto out;
	token row = *t;
	row.token = stored;
	row.token_fp = fp;
	rc = store_token_put(sc->st, &row, err);
out:
	free(stored);
	return rc;
}

int svc_token_remember(svc_ctx *sc, const char *plain, th_error *err)
{
	token t;
	int rc = svc_token_find(sc, plain, &t, NULL, err);
	if (rc == 0) {
		token_clear(&t);
		return 0;
	}
	if (rc != TH_ENOTFOUND)
		return rc;
	token nt = {0};
	nt.token = (char *)plain;
	nt.state = TOKEN_UNCHECKED;
	nt.created_at = time_now_ms();
	return svc_token_save(sc, &nt, err);
}

int svc_token_remove(svc_ctx *sc, const char *plain, th_error *err)
{
	webhook *ws = NULL;
	size_t n = 0, users = 0;
	int rc = svc_webhook_list(sc, &ws, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		users += str_eq(ws[i].token, plain);
	webhook_list_free(ws, n);
	char masked[32];
	mask_secret(plain, masked, sizeof masked);
	if (users)
		return th_err(err, TH_EEXISTS,
		              "token %s is used by %zu webhook%s: remove %s first (webhook rm ID)",
		              masked, users, users == 1 ? "" : "s", users == 1 ? "it" : "them");
	token t;
	char *stored = NULL;
	rc = svc_token_find(sc, plain, &t, &stored, err);
	if (rc)
		return rc;
	token_clear(&t);
	rc = store_token_delete(sc->st, stored, err);
	free(stored);
	return rc;
}

void svc_token_mark_dead(svc_ctx *sc, const char *plain, enum trello_error_kind kind)
{
	char masked[32];
	th_error err = {0, {0}};
	mask_secret(plain, masked, sizeof masked);
	atomic_fetch_add_explicit(&sc->m->token_problems, 1, memory_order_relaxed);
	bool expired = kind == TRELLO_ERR_EXPIRED_TOKEN;
	log_warn(COMPONENT,
	         "Trello says token %s is %s: its webhooks need a new token (token add, "
	         "then webhook add)",
	         masked, expired ? "expired" : "invalid");

	token t;
	char *stored = NULL;
	int rc = svc_token_find(sc, plain, &t, &stored, &err);
	if (rc == 0) {
		t.state = expired ? TOKEN_EXPIRED : TOKEN_INVALID;
		t.checked_at = time_now_ms();
		free(t.token);
		t.token = stored; /* keep the row's key */
		stored = NULL;
		rc = store_token_put(sc->st, &t, &err);
		token_clear(&t);
	}
	free(stored);
	if (rc && rc != TH_ENOTFOUND)
		log_error(COMPONENT, "cannot flag token %s: %s", masked, err.msg);

	webhook *ws = NULL;
	size_t n = 0;
	if (svc_webhook_list(sc, &ws, &n, &err)) {
		log_error(COMPONENT, "cannot flag the webhooks of token %s: %s", masked, err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		webhook *w = &ws[i];
		if (!str_eq(w->token, plain) || w->state == WEBHOOK_REMOVING ||
		    w->state == WEBHOOK_NEEDS_TOKEN)
			continue;
		w->state = WEBHOOK_NEEDS_TOKEN;
		w->active = false;
		int urc = svc_webhook_update(sc, w, &err);
		if (urc == TH_ENOTFOUND) /* removed since the listing: nothing to flag */
			log_info(COMPONENT, "webhook %s was removed before it could be flagged",
			         w->id);
		else if (urc)
			log_error(COMPONENT, "cannot flag webhook %s: %s", w->id, err.msg);
		else
			log_warn(COMPONENT, "webhook %s (model %s) needs a new token", w->id,
			         w->id_model);
		webhook_cache_forget(sc->cache, w->id);
	}
	webhook_list_free(ws, n);
}

int svc_token_check(svc_ctx *sc, trello_client *tc, const char *plain, token *out,
                    trello_token_info *info, th_error *err)
{
	trello_token_info ti;
	trello_error te;
	memset(&ti, 0, sizeof ti);
	memset(&te, 0, sizeof te);
	memset(out, 0, sizeof *out);
	if (info)
		memset(info, 0, sizeof *info);
	token known;
	int krc = svc_token_find(sc, plain, &known, NULL, err);
	if (krc && krc != TH_ENOTFOUND)
		return krc;
	int rc = trello_get_token(tc, plain, &ti, &te);
	if (rc && !trello_error_is_token_dead(&te)) {
		if (!krc)
			token_clear(&known);
		trello_token_info_clear(&ti);
		return th_err(err, rc, "%s", te.th.msg);
	}
	out->token = str_dup(plain);
	out->checked_at = time_now_ms();
	out->created_at = krc ? out->checked_at : known.created_at;
	if (rc) {
		/* svc_token_mark_dead already flagged the row and its webhooks */
		out->state = te.kind == TRELLO_ERR_EXPIRED_TOKEN ? TOKEN_EXPIRED : TOKEN_INVALID;
		out->member = krc ? NULL : str_dup(known.member);
		out->expires_at = krc ? 0 : known.expires_at;
	} else {
		out->state = TOKEN_VALID;
		out->member = str_dup(ti.id_member);
		int64_t exp = 0;
		if (ti.date_expires && time_parse_iso(ti.date_expires, &exp))
			exp = 0;
		out->expires_at = exp;
	}
	if (!krc)
		token_clear(&known);
	if (!out->token) {
		token_clear(out);
		trello_token_info_clear(&ti);
		return th_err(err, TH_ENOMEM, "out of memory");
	}
	if (!krc && !rc) {
		int src = svc_token_save(sc, out, err);
		if (src) {
			token_clear(out);
			trello_token_info_clear(&ti);
			return src;
		}
	}
	if (info)
		*info = ti;
	else
		trello_token_info_clear(&ti);
	return 0;
}

int svc_trello_boards(svc_ctx *sc, const char *plain, trello_board_list *out, th_error *err)
{
	trello_client *tc = NULL;
	trello_error terr;
	memset(&terr, 0, sizeof terr);
	int rc = svc_trello_client(sc, &tc, err);
	if (!rc) /* for the admin's form: a hanging Trello must not hang the page */
		trello_client_set_deadline(tc, SVC_BOARDS_BUDGET_MS);
	if (!rc && (rc = trello_list_boards(tc, plain, out, &terr))) {
		if (err)
			*err = terr.th;
		if (rc == TH_EAUTH)
			svc_token_mark_dead(sc, plain, terr.kind);
	}
	trello_client_free(tc);
	return rc;
}

/* ---- fingerprints for rows from before they existed ----------------------------------- */

/* Does @fp need (re)computing under @cfg? None yet, or made without the key
 * while there is one now. */
static bool fp_stale(const th_config *cfg, const char *fp)
{
	return !fp || (cfg->has_secret_key && str_starts(fp, "d:"));
}

/* The fingerprint of the token stored as @stored, into @fp. */
static int stored_fp(svc_ctx *sc, const char *stored, char fp[TOKEN_FP_SIZE], th_error *err)
{
	char *plain = NULL;
	int rc = tokens_open(sc->cfg, stored, &plain, err);
	if (!rc)
		rc = tokens_fingerprint(sc->cfg, plain, fp, err);
	if (plain) {
		memset(plain, 0, strlen(plain));
		free(plain);
	}
	return rc;
}

/* One row's fingerprint, when stale (@have): computed from its token as
 * stored (@stored) and written by @fill under @key. 0 when nothing is left
 * to do for the row, else the error (TH_EEXISTS: it would duplicate another
 * row). */
static int refill_fp(svc_ctx *sc, const char *have, const char *stored,
                     int (*fill)(store *st, const char *key, const char *fp, th_error *err),
                     const char *key, th_error *err)
{
	char fp[TOKEN_FP_SIZE];
	if (!fp_stale(sc->cfg, have))
		return 0;
	int rc = stored_fp(sc, stored, fp, err);
	return rc ? rc : fill(sc->st, key, fp, err);
}

static size_t fill_webhooks(svc_ctx *sc)
{
	webhook *ws = NULL;
	size_t n = 0, left = 0;
	th_error err = {0, {0}};
	if (store_webhook_list(sc->st, &ws, &n, &err) != 0) {
		log_warn(COMPONENT, "cannot list webhooks to fingerprint their tokens: %s",
		         err.msg);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = refill_fp(sc, ws[i].token_fp, ws[i].token, store_webhook_fill_fp, ws[i].id,
		                   &err);
		if (rc == TH_EEXISTS)
			log_warn(COMPONENT,
			         "webhook %s duplicates another webhook of model %s with the same "
			         "token: remove one of them (webhook ls, webhook rm ID)",
			         ws[i].id, ws[i].id_model);
		else if (rc)
			log_debug(COMPONENT, "webhook %s keeps no token fingerprint for now: %s",
			          ws[i].id, err.msg);
		left += rc != 0;
	}
	webhook_list_free(ws, n);
	return left;
}

static size_t fill_tokens(svc_ctx *sc)
{
	token *ts = NULL;
	size_t n = 0, left = 0;
	th_error err = {0, {0}};
	if (store_token_list(sc->st, &ts, &n, &err) != 0) {
		log_warn(COMPONENT, "cannot list tokens to fingerprint them: %s", err.msg);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = refill_fp(sc, ts[i].token_fp, ts[i].token, store_token_fill_fp,
		                   ts[i].token, &err);
		if (rc)
			log_debug(COMPONENT, "a stored token keeps no fingerprint for now: %s",
			          err.msg);
		left += rc != 0;
	}
	token_list_free(ts, n);
	return left;
}

size_t svc_tokens_fill_fingerprints(svc_ctx *sc)
{
	return fill_webhooks(sc) + fill_tokens(sc);
}

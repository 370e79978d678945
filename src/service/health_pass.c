/* SPDX-License-Identifier: MIT */
/*
 * health_pass.c — the periodic health pass of `trellohook serve`.
 *
 * Every TRELLOHOOK_HEALTH_INTERVAL (default 15 min; the first pass a few
 * seconds after start) one concurrent batch asks Trello, for every token,
 * GET /1/tokens/{t} and GET /1/tokens/{t}/webhooks (two calls per token, not
 * one per webhook: the listing carries each webhook's full view). Then:
 *  - an expired / invalid token is flagged with its webhooks (by the client's
 *    on_token_dead → svc_token_mark_dead, as everywhere);
 *  - a webhook Trello reports active:false becomes DISABLED (logged);
 *  - a webhook Trello no longer has is logged, marked DISABLED and loses its
 *    Trello id (so `sync` registers it again);
 *  - REMOVING webhooks are deleted on Trello (if still there) and then here.
 * The thread that runs it every interval is the serve runtime's
 * (app/health_runner.c).
 */
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "util/log.h"

#define COMPONENT "health"

static int64_t iso_ms(const char *s)
{
	int64_t ms = 0;
	if (!s || time_parse_iso(s, &ms))
		return 0;
	return ms;
}

static const trello_webhook *find_tw(const trello_webhook_list *l, const webhook *w)
{
	for (size_t i = 0; i < l->len; i++)
		if (str_eq(l->items[i].id, w->trello_id))
			return &l->items[i];
	return NULL;
}

/* Update @w from Trello's view; returns true when something changed. */
static bool apply_view(webhook *w, const trello_webhook *tw, health_stats *s)
{
	enum webhook_state st = w->state;
	bool act = w->active;
	int cf = w->consecutive_failures;
	w->active = tw->active;
	w->consecutive_failures = tw->consecutive_failures;
	w->first_consecutive_fail_at = iso_ms(tw->first_consecutive_fail_date);
	if (!tw->active && w->state != WEBHOOK_DISABLED) {
		w->state = WEBHOOK_DISABLED;
		s->webhooks_disabled++;
		log_warn(COMPONENT,
		         "Trello disabled webhook %s (model %s) after %d consecutive failures; "
		         "`trellohook sync` re-enables it",
		         w->id, w->id_model, tw->consecutive_failures);
	} else if (tw->active && (w->state == WEBHOOK_DISABLED || w->state == WEBHOOK_NEEDS_TOKEN ||
	                          w->state == WEBHOOK_PENDING)) {
		w->state = WEBHOOK_ACTIVE;
	}
	if (tw->active && tw->consecutive_failures > 0 && tw->consecutive_failures != cf)
		log_warn(COMPONENT, "Trello reports %d consecutive failed deliveries to webhook %s",
		         tw->consecutive_failures, w->id);
	return st != w->state || act != w->active || cf != w->consecutive_failures;
}

/* Save what Trello said about each token (a dead one was flagged by the
 * client's on_token_dead already); warn about tokens that expire soon. */
static void record_tokens(svc_ctx *sc, const char *const *tokens, size_t n, const trello_op *ops,
                          health_stats *s)
{
	for (size_t i = 0; i < n; i++) {
		const trello_op *op = &ops[2 * i];
		char masked[32];
		mask_secret(tokens[i], masked, sizeof masked);
		s->tokens_checked++;
		if (trello_error_is_token_dead(&op->err)) {
			s->tokens_dead++; /* flagged by the client's on_token_dead */
			continue;
		}
		if (op->rc) {
			s->errors++;
			log_warn(COMPONENT, "cannot check token %s: %s", masked, op->err.th.msg);
			continue;
		}
		token t = {0};
		t.token = (char *)tokens[i];
		t.member = op->token_info.id_member;
		t.expires_at = iso_ms(op->token_info.date_expires);
		t.state = TOKEN_VALID;
		t.checked_at = time_now_ms();
		th_error terr = {0, {0}};
		if (svc_token_save(sc, &t, &terr))
			log_warn(COMPONENT, "cannot save token %s: %s", masked, terr.msg);
		if (t.expires_at && t.expires_at - time_now_ms() < 3LL * 24 * 3600 * 1000)
			log_warn(COMPONENT, "token %s expires soon (%s); its webhooks stop then",
			         masked, op->token_info.date_expires);
	}
}

/* One stored webhook against its token's listing @l: a REMOVING one is
 * queued for deletion on Trello (dels/del_ix) or finished at once when Trello
 * no longer has it; others take Trello's view (disabled, deleted on Trello). */
static void check_webhook(svc_ctx *sc, webhook *w, size_t i, const trello_op *l, health_stats *s,
                          trello_op *dels, long *del_ix, size_t *ndels)
{
	const trello_webhook *tw = w->trello_id ? find_tw(&l->webhooks, w) : NULL;
	th_error uerr = {0, {0}};
	if (w->state == WEBHOOK_REMOVING) {
		if (tw) {
			dels[*ndels].kind = TRELLO_OP_DELETE_WEBHOOK;
			dels[*ndels].token = w->token;
			dels[*ndels].webhook_id = w->trello_id;
			dels[*ndels].params = (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
			del_ix[(*ndels)++] = (long)i;
		} else if (!svc_webhook_delete(sc, w->id, &uerr)) {
			s->removals_finished++;
			log_info(COMPONENT,
			         "webhook %s: removal finished (Trello no longer had it)", w->id);
		}
		return;
	}
	if (!w->trello_id)
		return; /* not registered (pending, or lost earlier): sync's job */
	s->webhooks_seen++;
	bool changed;
	if (tw) {
		changed = apply_view(w, tw, s);
	} else {
		s->webhooks_deleted++;
		log_warn(COMPONENT,
		         "Trello no longer has webhook %s (model %s, Trello id %s): it was "
		         "deleted on Trello; `trellohook sync` registers it again",
		         w->id, w->id_model, w->trello_id);
		free(w->trello_id);
		w->trello_id = NULL;
		w->active = false;
		if (w->state != WEBHOOK_NEEDS_TOKEN)
			w->state = WEBHOOK_DISABLED;
		changed = true;
	}
	if (changed && svc_webhook_update(sc, w, &uerr))
		log_warn(COMPONENT, "webhook %s: cannot save Trello's view: %s", w->id, uerr.msg);
}

/* After the deletion batch: drop each REMOVING webhook Trello deleted (or
 * no longer had) here too. */
static void finish_removals(svc_ctx *sc, webhook *ws, const trello_op *dels, const long *del_ix,
                            size_t ndels, health_stats *s)
{
	for (size_t i = 0; i < ndels; i++) {
		webhook *w = &ws[del_ix[i]];
		th_error uerr = {0, {0}};
		if (dels[i].rc && dels[i].rc != TH_ENOTFOUND) {
			s->errors++;
			log_warn(COMPONENT, "webhook %s: removal still pending: %s", w->id,
			         dels[i].err.th.msg);
		} else if (svc_webhook_delete(sc, w->id, &uerr)) {
			s->errors++;
			log_warn(COMPONENT, "webhook %s: %s", w->id, uerr.msg);
		} else {
			s->removals_finished++;
			log_info(COMPONENT, "webhook %s: removal finished", w->id);
		}
	}
}

int svc_health_pass(svc_ctx *sc, trello_client *tc, health_stats *s, th_error *err)
{
	token *toks = NULL;
	webhook *ws = NULL;
	size_t ntoks = 0, nws = 0, n = 0;
	const char **tokens = NULL;
	trello_op *ops = NULL, *dels = NULL;
	size_t ndels = 0;
	long *del_ix = NULL;
	memset(s, 0, sizeof *s);
	int rc = svc_token_list(sc, &toks, &ntoks, err);
	if (!rc)
		rc = svc_webhook_list(sc, &ws, &nws, err);
	if (rc)
		goto out;
	tokens = calloc(ntoks + nws + 1, sizeof *tokens);
	if (!tokens) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ntoks + nws; i++) {
		const char *t = i < ntoks ? toks[i].token : ws[i - ntoks].token;
		bool seen = false;
		for (size_t k = 0; k < n && !seen; k++)
			seen = str_eq(tokens[k], t);
		if (!seen)
			tokens[n++] = t;
	}
	if (!n)
		goto out;
	ops = calloc(2 * n, sizeof *ops);
	if (!ops) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ops[2 * i].kind = TRELLO_OP_GET_TOKEN;
		ops[2 * i].token = tokens[i];
		ops[2 * i].params = (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
		ops[2 * i + 1].kind = TRELLO_OP_LIST_WEBHOOKS;
		ops[2 * i + 1].token = tokens[i];
		ops[2 * i + 1].params = (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
	}
	if ((rc = trello_batch_run(tc, ops, 2 * n, err)) != 0)
		goto out;

	record_tokens(sc, tokens, n, ops, s);

	/* webhooks (read again: flagging a dead token changed rows) */
	webhook_list_free(ws, nws);
	ws = NULL;
	nws = 0;
	if ((rc = svc_webhook_list(sc, &ws, &nws, err)) != 0)
		goto out;
	dels = calloc(nws ? nws : 1, sizeof *dels);
	del_ix = calloc(nws ? nws : 1, sizeof *del_ix);
	if (!dels || !del_ix) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nws; i++) {
		webhook *w = &ws[i];
		const trello_op *l = NULL;
		for (size_t k = 0; k < n && !l; k++)
			if (str_eq(tokens[k], w->token))
				l = &ops[2 * k + 1];
		if (!l || l->rc)
			continue; /* its token could not be listed (flagged or logged above) */
		check_webhook(sc, w, i, l, s, dels, del_ix, &ndels);
	}
	if (ndels && (rc = trello_batch_run(tc, dels, ndels, err)) != 0)
		goto out;
	finish_removals(sc, ws, dels, del_ix, ndels, s);
out:
	for (size_t i = 0; ops && i < 2 * n; i++)
		trello_op_clear(&ops[i]);
	for (size_t i = 0; dels && i < ndels; i++)
		trello_op_clear(&dels[i]);
	free(ops);
	free(dels);
	free(del_ix);
	free(tokens);
	token_list_free(toks, ntoks);
	webhook_list_free(ws, nws);
	return rc;
}

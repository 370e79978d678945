/* SPDX-License-Identifier: MIT */
/*
 * webhooks.c — webhooks against Trello: add, remove, Trello's view, and the
 * store access that keeps tokens sealed at rest.
 *
 * The order of `add` matters (see the Trello facts in API.md):
 *  1. everything that can be checked without Trello is checked first;
 *  2. the model is resolved (this also proves the token works);
 *  3. the row is inserted PENDING, so Trello's HEAD check and any POST that
 *     follows creation at once find it;
 *  4. POST /1/webhooks; on success Trello's id and `active` are stored;
 *  5. on ANY failure the row is deleted again; when the POST's outcome is
 *     unknown (timeout), the token's webhooks are listed and ours adopted.
 * `rm` goes the other way: Trello first, then the row — or, when Trello
 * cannot be reached, the row stays in state REMOVING (callbacks answer 410,
 * which makes Trello delete its side) for sync or the health pass to finish.
 */
#include <stdlib.h>
#include <string.h>

#include "service/backfill.h"
#include "service/service.h"
#include "service/webhook_cache.h"
#include "util/log.h"

#define COMPONENT "webhooks"
#define DESCRIPTION_MAX 16384 /* Trello's limit */

/* ---- store access with sealed tokens ---------------------------------------------------- */

static int open_token(svc_ctx *sc, webhook *w, th_error *err)
{
	char *plain = NULL;
	int rc = tokens_open(sc->cfg, w->token, &plain, err);
	if (rc)
		return rc;
	free(w->token);
	w->token = plain;
	return 0;
}

int svc_webhook_get(svc_ctx *sc, const char *id, webhook *out, th_error *err)
{
	int rc = store_webhook_get(sc->st, id, out, err);
	if (!rc && (rc = open_token(sc, out, err)) != 0)
		webhook_clear(out);
	return rc;
}

int svc_webhook_list(svc_ctx *sc, webhook **out, size_t *n, th_error *err)
{
	int rc = store_webhook_list(sc->st, out, n, err);
	for (size_t i = 0; !rc && i < *n; i++)
		rc = open_token(sc, &(*out)[i], err);
	if (rc && *out) {
		webhook_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* Insert (@update false) or update @w with its token sealed. */
static int put_sealed(svc_ctx *sc, const webhook *w, bool update, th_error *err)
{
	webhook row = *w;
	char *sealed = NULL;
	char fp[TOKEN_FP_SIZE];
	int rc = tokens_fingerprint(sc->cfg, w->token, fp, err);
	if (!rc)
		rc = tokens_seal(sc->cfg, w->token, &sealed, err);
	if (rc)
		return rc;
	row.token = sealed;
	row.token_fp = fp; /* the identity the database keeps unique per model */
	rc = update ? store_webhook_update(sc->st, &row, err)
	            : store_webhook_insert(sc->st, &row, err);
	free(sealed);
	webhook_cache_forget(sc->cache, w->id);
	return rc;
}

int svc_webhook_insert(svc_ctx *sc, const webhook *w, th_error *err)
{
	return put_sealed(sc, w, false, err);
}

int svc_webhook_update(svc_ctx *sc, const webhook *w, th_error *err)
{
	return put_sealed(sc, w, true, err);
}

int svc_webhook_delete(svc_ctx *sc, const char *id, th_error *err)
{
	int rc = store_webhook_delete(sc->st, id, err);
	webhook_cache_forget(sc->cache, id);
	return rc;
}

int svc_webhook_find(svc_ctx *sc, const char *id_model, const char *plain, webhook *out,
                     th_error *err)
{
	webhook *ws = NULL;
	size_t n = 0;
	memset(out, 0, sizeof *out);
	int rc = svc_webhook_list(sc, &ws, &n, err);
	if (rc)
		return rc;
	rc = th_err(err, TH_ENOTFOUND, "no webhook for model %s with this token", id_model);
	for (size_t i = 0; i < n; i++)
		if (str_case_eq(ws[i].id_model, id_model) && str_eq(ws[i].token, plain)) {
			*out = ws[i];
			memset(&ws[i], 0, sizeof ws[i]);
			rc = 0;
			if (err)
				memset(err, 0, sizeof *err);
			break;
		}
	webhook_list_free(ws, n);
	return rc;
}

/* ---- callback URLs ------------------------------------------------------------------------ */

bool svc_callback_at_domain(const svc_ctx *sc, const char *url)
{
	const char *d = sc->cfg->callback_domain;
	if (!url || !*d || !str_starts(url, d))
		return false;
	char next = url[strlen(d)];
	return next == '\0' || next == '/' || next == '?' || next == '#';
}

int svc_callback_url(const svc_ctx *sc, const char *id, char *out, size_t outsz)
{
	if (!str_printf(out, outsz, "%s/callbacks/%s", sc->cfg->callback_domain, id))
		return TH_ETOOBIG;
	return 0;
}

bool svc_callback_is_ours(const svc_ctx *sc, const char *url, char *id_out, size_t idsz)
{
	char prefix[600];
	if (!url || !str_printf(prefix, sizeof prefix, "%s/callbacks/", sc->cfg->callback_domain) ||
	    !str_starts(url, prefix))
		return false;
	const char *id = url + strlen(prefix);
	if (!id_is_wellformed(id) || strlen(id) >= idsz)
		return false;
	str_copy(id_out, idsz, id);
	return true;
}

/* ---- add ---------------------------------------------------------------------------------- */

/* Trello's message, plus a hint where we know what usually causes it. */
static int trello_fail(th_error *err, const trello_error *te, const char *what)
{
	const char *hint = "";
	if (te->kind == TRELLO_ERR_HEAD_CHECK)
		hint =
		    " (Trello's HEAD check of the callback URL failed: is `trellohook serve` running "
		    "and reachable at CALLBACK_DOMAIN?)";
	else if (te->kind == TRELLO_ERR_INVALID_TOKEN || te->kind == TRELLO_ERR_EXPIRED_TOKEN)
		hint = " (the token needs replacing: get a new one and use it with --token)";
	else if (te->kind == TRELLO_ERR_INVALID_KEY)
		hint = " (check TRELLO_API_KEY)";
	int code = te->th.code ? te->th.code : TH_ETRELLO;
	return th_err(err, code, "%s%s%s%s", what ? what : "", what ? ": " : "", te->th.msg, hint);
}

static int64_t iso_ms(const char *s)
{
	int64_t ms = 0;
	if (!s || time_parse_iso(s, &ms))
		return 0;
	return ms;
}

/* Step 1 of add: what can be checked without Trello. */
static int check_add_opts(const webhook_add_opts *o, th_error *err)
{
	if (!o->token || !str_is_trello_token(o->token))
		return th_err(err, TH_EINVAL,
		              "--token: expected a Trello user token (64 hex "
		              "characters, or ATTA followed by 72 hex characters)");
	if (!o->model)
		return th_err(err, TH_EINVAL,
		              "--model is needed: a 24-hex Trello id or a board/card "
		              "URL such as https://trello.com/b/AbCd1234/roadmap");
	trello_model_ref ref;
	int rc = trello_parse_model_ref(o->model, &ref, err);
	if (rc)
		return rc;
	if (o->description && (strlen(o->description) > DESCRIPTION_MAX ||
	                       !str_utf8_valid(o->description, strlen(o->description))))
		return th_err(err, TH_EINVAL, "--description: at most %d characters of UTF-8 text",
		              DESCRIPTION_MAX);
	return 0;
}

/* Step 4 of add: POST the webhook to Trello as @o->token. When the answer
 * is lost (unreachable), Trello's listing tells whether it was created
 * anyway (then kept, with a @note). Fills @tw, or @te on failure. */
static int register_webhook(trello_client *tc, const webhook_add_opts *o, const char *url,
                            const char *id_model, trello_webhook *tw, trello_error *te, char *note,
                            size_t notesz)
{
	trello_webhook_params p = TRELLO_WEBHOOK_PARAMS_INIT;
	p.callback_url = url;
	p.id_model = id_model;
	p.description = o->description;
	int rc = trello_create_webhook(tc, o->token, &p, tw, te);
	if (rc && te->kind == TRELLO_ERR_UNREACHABLE) {
		/* The POST may or may not have reached Trello: look before giving up. */
		trello_webhook_list l = {NULL, 0};
		trello_error le;
		memset(&le, 0, sizeof le);
		if (trello_list_webhooks(tc, o->token, &l, &le) == 0) {
			for (size_t i = 0; i < l.len; i++)
				if (str_eq(l.items[i].callback_url, url)) {
					*tw = l.items[i];
					memset(&l.items[i], 0, sizeof l.items[i]);
					rc = 0;
					if (note && notesz)
						str_copy(
						    note, notesz,
						    "Trello's answer was lost, but it had created "
						    "the webhook: kept it");
					break;
				}
		} else {
			char more[sizeof te->th.msg];
			str_printf(more, sizeof more,
			           "%s (if Trello created the webhook anyway, "
			           "`trellohook sync` will adopt it)",
			           te->th.msg);
			str_copy(te->th.msg, sizeof te->th.msg, more);
		}
		trello_webhook_list_clear(&l);
	}
	return rc;
}

int svc_webhook_add(svc_ctx *sc, trello_client *tc, const webhook_add_opts *o, webhook *out,
                    char *note, size_t notesz, th_error *err)
{
	trello_model m;
	trello_error te;
	trello_webhook tw;
	webhook dup, w;
	char id[ID_LEN + 1] = "";
	char url[600];
	bool inserted = false;
	int rc;
	memset(out, 0, sizeof *out);
	memset(&m, 0, sizeof m);
	memset(&te, 0, sizeof te);
	memset(&tw, 0, sizeof tw);
	memset(&w, 0, sizeof w);
	if (note && notesz)
		note[0] = '\0';

	/* 1. what can be checked here */
	if ((rc = check_add_opts(o, err)) != 0)
		return rc;

	/* 2. the model (and the token) */
	rc = trello_resolve_model(tc, o->token, o->model, &m, &te);
	if (rc) {
		rc = trello_fail(err, &te, "cannot resolve --model");
		goto out;
	}
	rc = svc_webhook_find(sc, m.id, o->token, &dup, err);
	if (rc == 0) {
		rc = th_err(err, TH_EEXISTS,
		            "a webhook on %s \"%s\" (%s) with this token already exists: "
		            "%s (see webhook show %s)",
		            trello_model_type_name(m.type), m.name ? m.name : "", m.id, dup.id,
		            dup.id);
		webhook_clear(&dup);
		goto out;
	}
	if (rc != TH_ENOTFOUND)
		goto out;

	/* 3. the local row first, so the HEAD check and early POSTs find it */
	if (rand_id(id)) {
		rc = th_err(err, TH_EIO, "no randomness for a webhook id");
		goto out;
	}
	if ((rc = svc_callback_url(sc, id, url, sizeof url)) != 0) {
		th_err(err, rc, "CALLBACK_DOMAIN is too long for a callback URL");
		goto out;
	}
	w.id = id;
	w.id_model = m.id;
	w.model_type = (char *)trello_model_type_name(m.type);
	w.model_name = m.name;
	w.description = (char *)o->description;
	w.callback_url = url;
	w.token = (char *)o->token;
	w.state = WEBHOOK_PENDING;
	w.created_at = time_now_ms();
	rc = svc_webhook_insert(sc, &w, err);
	if (rc == TH_EEXISTS) {
		rc = th_err(err, TH_EEXISTS,
		            "a webhook on %s %s with this token already exists (see "
		            "webhook ls)",
		            trello_model_type_name(m.type), m.id);
		goto out;
	}
	if (rc)
		goto out;
	inserted = true;

	/* 4. register it on Trello */
	rc = register_webhook(tc, o, url, m.id, &tw, &te, note, notesz);
	if (rc) {
		rc = trello_fail(err, &te, NULL);
		goto out;
	}

	/* 5. Trello's id and state */
	w.trello_id = tw.id;
	w.active = tw.active;
	w.state = tw.active ? WEBHOOK_ACTIVE : WEBHOOK_DISABLED;
	w.consecutive_failures = tw.consecutive_failures;
	w.first_consecutive_fail_at = iso_ms(tw.first_consecutive_fail_date);
	rc = svc_webhook_update(sc, &w, err);
	if (rc) {
		/* without its row the Trello webhook would be orphaned: take it back */
		trello_error de;
		memset(&de, 0, sizeof de);
		if (trello_delete_webhook(tc, o->token, tw.id, &de) && de.th.code != TH_ENOTFOUND)
			log_error(COMPONENT,
			          "webhook %s: the store failed and Trello's webhook %s could not "
			          "be deleted (%s); `trellohook sync` will report it",
			          id, tw.id, de.th.msg);
		goto out;
	}
	th_error terr = {0, {0}};
	if (svc_token_remember(sc, o->token, &terr))
		log_warn(COMPONENT, "webhook %s added, but its token could not be remembered: %s",
		         id, terr.msg);
	char masked[32];
	mask_secret(o->token, masked, sizeof masked);
	log_info(COMPONENT, "webhook %s added: %s %s, Trello id %s, token %s", id,
	         trello_model_type_name(m.type), m.id, tw.id, masked);
	inserted = false; /* it stays */
	rc = svc_webhook_get(sc, id, out, err);
out:
	if (inserted) {
		th_error derr = {0, {0}};
		if (svc_webhook_delete(sc, id, &derr))
			log_error(COMPONENT, "could not delete the unfinished webhook %s: %s", id,
			          derr.msg);
	}
	trello_model_clear(&m);
	trello_webhook_clear(&tw);
	return rc;
}

/* ---- remove -------------------------------------------------------------------------------- */

int svc_webhook_rm(svc_ctx *sc, trello_client *tc, const char *id, enum webhook_rm_outcome *outcome,
                   th_error *err)
{
	webhook w;
	trello_error te;
	memset(&te, 0, sizeof te);
	*outcome = WEBHOOK_RM_REMOVED;
	int rc = svc_webhook_get(sc, id, &w, err);
	if (rc)
		return rc;
	if (!w.trello_id) {
		*outcome = WEBHOOK_RM_NEVER_REGISTERED;
		rc = svc_webhook_delete(sc, id, err);
		goto out;
	}
	rc = trello_delete_webhook(tc, w.token, w.trello_id, &te);
	if (rc == TH_ENOTFOUND || trello_error_is_token_dead(&te)) {
		/* Trello lost it, or deleted it with its token */
		*outcome = WEBHOOK_RM_WAS_GONE;
		rc = 0;
	}
	if (rc == TH_EUNAVAIL) {
		w.state = WEBHOOK_REMOVING;
		w.active = false;
		th_error uerr = {0, {0}};
		int urc = svc_webhook_update(sc, &w, &uerr);
		if (urc) {
			rc = th_err(err, urc,
			            "%s; and marking webhook %s as removing failed too: %s",
			            te.th.msg, id, uerr.msg);
			goto out;
		}
		*outcome = WEBHOOK_RM_MARKED;
		rc = th_err(err, TH_EUNAVAIL,
		            "webhook %s marked removing: its callbacks answer 410 and "
		            "`trellohook sync` will finish the removal; %s",
		            id, te.th.msg);
		log_warn(COMPONENT, "webhook %s marked removing: %s", id, te.th.msg);
		goto out;
	}
	if (rc) {
		rc = trello_fail(err, &te, NULL);
		goto out;
	}
	rc = svc_webhook_delete(sc, id, err);
	if (!rc)
		log_info(COMPONENT, "webhook %s removed%s", id,
		         *outcome == WEBHOOK_RM_WAS_GONE ? " (Trello no longer had it)" : "");
out:
	webhook_clear(&w);
	return rc;
}

/* ---- change (description, active) ------------------------------------------------------- */

/* See service.h. The local row follows Trello's answer (what it now has), so
 * a field Trello did not echo keeps the value that was asked for. */
int svc_webhook_change(svc_ctx *sc, trello_client *tc, const char *id, const char *description,
                       int active, webhook *out, th_error *err)
{
	webhook w;
	trello_webhook tw;
	trello_error te;
	memset(&te, 0, sizeof te);
	memset(&tw, 0, sizeof tw);
	if (out)
		memset(out, 0, sizeof *out);
	int rc = svc_webhook_get(sc, id, &w, err);
	if (rc)
		return rc;
	if (!w.trello_id || w.state == WEBHOOK_PENDING || w.state == WEBHOOK_REMOVING) {
		rc = th_err(err, TH_EINVAL,
		            "webhook %s cannot be changed while it is %s (see webhook show)", id,
		            webhook_state_name(w.state));
		goto out;
	}
	trello_webhook_params p = TRELLO_WEBHOOK_PARAMS_INIT;
	p.description = description;
	p.active = active;
	rc = trello_update_webhook(tc, w.token, w.trello_id, &p, &tw, &te);
	if (rc) {
		rc = trello_fail(err, &te, "Trello refused the change (nothing changed here)");
		if (rc == TH_EINVAL) /* Trello's 400: an operation that failed, not our usage */
			rc = err ? (err->code = TH_ETRELLO) : TH_ETRELLO;
		goto out;
	}
	const char *desc = tw.description ? tw.description : description;
	if (desc && !str_eq(desc, w.description)) {
		char *copy = str_dup(desc);
		if (!copy) {
			rc = th_err(err, TH_ENOMEM,
			            "out of memory saving webhook %s (Trello has the change; "
			            "`trellohook sync` brings it here)",
			            id);
			goto out;
		}
		free(w.description);
		w.description = copy;
	}
	w.active = tw.id ? tw.active : (active >= 0 ? active == 1 : w.active);
	if (tw.id)
		w.consecutive_failures = tw.consecutive_failures;
	if (!w.active && w.state == WEBHOOK_ACTIVE)
		w.state = WEBHOOK_DISABLED;
	else if (w.active && w.state == WEBHOOK_DISABLED)
		w.state = WEBHOOK_ACTIVE;
	rc = svc_webhook_update(sc, &w, err);
	if (rc)
		goto out;
	log_info(COMPONENT, "webhook %s changed on Trello and here%s%s", id,
	         description ? " (description)" : "",
	         active < 0 ? "" : (active ? " (resumed)" : " (paused)"));
	/* resumed: what Trello did while it was paused or disabled is recovered */
	if (active == 1 && w.active)
		(void)svc_backfill_after_enable(sc, tc, id);
	if (out) {
		*out = w;
		memset(&w, 0, sizeof w);
	}
out:
	webhook_clear(&w);
	trello_webhook_clear(&tw);
	return rc;
}

/* ---- Trello's view ------------------------------------------------------------------------- */

int svc_webhook_trello_view(svc_ctx *sc, trello_client *tc, const char *id, trello_webhook *out,
                            th_error *err)
{
	webhook w;
	trello_error te;
	memset(&te, 0, sizeof te);
	memset(out, 0, sizeof *out);
	int rc = svc_webhook_get(sc, id, &w, err);
	if (rc)
		return rc;
	if (!w.trello_id) {
		rc = th_err(err, TH_ENOTFOUND, "webhook %s is not registered on Trello (state %s)",
		            id, webhook_state_name(w.state));
		goto out;
	}
	rc = trello_get_webhook(tc, w.token, w.trello_id, out, &te);
	if (rc) {
		rc = trello_fail(err, &te, NULL); /* callers say "Trello's view" */
		goto out;
	}
	w.active = out->active;
	w.consecutive_failures = out->consecutive_failures;
	w.first_consecutive_fail_at = iso_ms(out->first_consecutive_fail_date);
	if (!out->active && w.state == WEBHOOK_ACTIVE)
		w.state = WEBHOOK_DISABLED;
	else if (out->active && w.state == WEBHOOK_DISABLED)
		w.state = WEBHOOK_ACTIVE;
	th_error uerr = {0, {0}};
	if (svc_webhook_update(sc, &w, &uerr))
		log_warn(COMPONENT, "webhook %s: could not save Trello's view: %s", id, uerr.msg);
out:
	webhook_clear(&w);
	return rc;
}

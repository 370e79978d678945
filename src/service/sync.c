/* SPDX-License-Identifier: MIT */
/*
 * sync.c — reconcile the store with Trello.
 *
 * Trello can only list webhooks per token, so sync works token by token, but
 * all tokens at once: one concurrent batch lists every token's webhooks, the
 * plan is made from what came back, and one more concurrent batch carries out
 * every create / update / delete of the plan (the client paces each token
 * and the key within Trello's rate limits and waits out 429s).
 *
 * For each Trello webhook of a token that could be listed:
 *  - pointing outside CALLBACK_DOMAIN            → foreign: listed, never touched
 *  - at CALLBACK_DOMAIN/callbacks/ID, ID stored with this token
 *      - the row is REMOVING                      → finish-removal (delete on Trello)
 *      - first Trello webhook for the row         → in sync, or update (description/active drift)
 *      - another one for the same row             → duplicate (--prune deletes it)
 *  - ID stored with another token, or the model+token is already watched by
 *    another row, or any other path at our domain → duplicate/orphan (--prune deletes)
 *  - ID not stored                                → adopt (stored with that id, so its
 *                                                   callback URL and signature still match)
 * Then each row of the token that no Trello webhook matched: REMOVING → its
 * removal is finished locally; otherwise → register (create on Trello).
 * Rows of tokens that could not be listed are left alone (reported).
 */
#include <stdlib.h>
#include <string.h>

#include "service/backfill.h"
#include "service/service.h"
#include "util/log.h"

#define COMPONENT "sync"
#define PENDING_GRACE_MS (2 * 60 * 1000) /* a younger pending row is an add in progress */
#define MAX_RESOLVE 20                   /* adopted webhooks whose model name is looked up */

static const char *const kind_names[] = {
    [SYNC_REGISTER] = "register",
    [SYNC_ADOPT] = "adopt",
    [SYNC_UPDATE] = "update",
    [SYNC_PRUNE] = "prune",
    [SYNC_DUPLICATE] = "report-duplicate",
    [SYNC_FOREIGN] = "foreign",
    [SYNC_FINISH_REMOVAL] = "finish-removal",
    [SYNC_TOKEN_ERROR] = "token-error",
};

const char *sync_kind_name(enum sync_kind k)
{
	return (unsigned)k < TH_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

void sync_report_clear(sync_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ntokens; i++)
		TH_FREE_ALL(r->tokens[i].token, r->tokens[i].error);
	for (size_t i = 0; i < r->nactions; i++) {
		sync_action *x = &r->actions[i];
		TH_FREE_ALL(x->webhook_id, x->trello_id, x->id_model, x->callback_url, x->detail,
		            x->error);
	}
	TH_FREE_ALL(r->tokens, r->actions);
	memset(r, 0, sizeof *r);
}

/* Append an action; its strings are copied. Returns NULL when out of memory. */
static sync_action *add_action(sync_report *r, enum sync_kind kind, int token_ix, long local_ix,
                               const trello_webhook *tw, const char *webhook_id,
                               const char *id_model, const char *callback_url, const char *detail)
{
	sync_action *p = mem_grow(r->actions, &r->capactions, r->nactions, sizeof *p, 16);
	if (!p)
		return NULL;
	r->actions = p;
	sync_action *x = &r->actions[r->nactions];
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->token_ix = token_ix;
	x->local_ix = local_ix;
	x->tw = tw;
	x->webhook_id = str_dup(webhook_id);
	x->trello_id = tw ? str_dup(tw->id) : NULL;
	x->id_model = str_dup(id_model ? id_model : tw ? tw->id_model : NULL);
	x->callback_url = str_dup(callback_url ? callback_url : tw ? tw->callback_url : NULL);
	x->detail = str_dup(detail);
	r->nactions++;
	return x;
}

static bool add_token(sync_report *r, size_t *cap, const char *tok)
{
	for (size_t i = 0; i < r->ntokens; i++)
		if (str_eq(r->tokens[i].token, tok))
			return true;
	sync_token *p = mem_grow(r->tokens, cap, r->ntokens, sizeof *p, 8);
	if (!p)
		return false;
	r->tokens = p;
	memset(&r->tokens[r->ntokens], 0, sizeof r->tokens[0]);
	r->tokens[r->ntokens].token = str_dup(tok);
	return r->tokens[r->ntokens++].token != NULL;
}

static int64_t iso_ms(const char *s)
{
	int64_t ms = 0;
	if (!s || time_parse_iso(s, &ms))
		return 0;
	return ms;
}

static long find_local(const webhook *ws, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (str_eq(ws[i].id, id))
			return (long)i;
	return -1;
}

/* The rest of the plan for token @ti: its local rows that no Trello webhook
 * of its listing matched (register them again, or finish their removal). */
static int plan_missing(svc_ctx *sc, sync_report *r, int ti, webhook *ws, size_t nws,
                        const trello_webhook **claimed, th_error *err)
{
	const char *tok = r->tokens[ti].token;
	int64_t now = time_now_ms();
	for (size_t i = 0; i < nws; i++) {
		webhook *w = &ws[i];
		if (!str_eq(w->token, tok) || claimed[i])
			continue;
		bool finishing = false;
		for (size_t k = 0; k < r->nactions; k++)
			finishing = finishing || (r->actions[k].kind == SYNC_FINISH_REMOVAL &&
			                          r->actions[k].local_ix == (long)i);
		if (finishing)
			continue;
		sync_action *x;
		if (w->state == WEBHOOK_REMOVING) {
			x = add_action(r, SYNC_FINISH_REMOVAL, ti, (long)i, NULL, w->id,
			               w->id_model, w->callback_url,
			               "Trello no longer has it: remove it here");
		} else if (w->state == WEBHOOK_PENDING && !w->trello_id &&
		           now - w->created_at < PENDING_GRACE_MS) {
			continue; /* an add in progress elsewhere */
		} else {
			char url[600];
			if (svc_callback_url(sc, w->id, url, sizeof url))
				return th_err(err, TH_ETOOBIG, "CALLBACK_DOMAIN is too long");
			x = add_action(r, SYNC_REGISTER, ti, (long)i, NULL, w->id, w->id_model, url,
			               w->trello_id ? "Trello no longer has it: register it again"
			                            : "not registered on Trello: register it");
		}
		if (!x)
			return th_err(err, TH_ENOMEM, "out of memory");
	}
	return 0;
}

/* The plan for one listed token. @claimed[li] is the Trello webhook matched
 * to local row li (NULL: none yet). */
static int plan_token(svc_ctx *sc, const sync_opts *o, sync_report *r, int ti,
                      const trello_webhook_list *l, webhook *ws, size_t nws,
                      const trello_webhook **claimed, th_error *err)
{
	const char *tok = r->tokens[ti].token;
	enum sync_kind dupk = o->prune ? SYNC_PRUNE : SYNC_DUPLICATE;
	char lid[64], detail[700];
	for (size_t j = 0; j < l->len; j++) {
		const trello_webhook *tw = &l->items[j];
		sync_action *x = NULL;
		if (!svc_callback_at_domain(sc, tw->callback_url)) {
			str_printf(detail, sizeof detail, "points elsewhere (%s): left alone",
			           tw->callback_url ? tw->callback_url : "no URL");
			x = add_action(r, SYNC_FOREIGN, ti, -1, tw, NULL, NULL, NULL, detail);
		} else if (!svc_callback_is_ours(sc, tw->callback_url, lid, sizeof lid)) {
			x = add_action(
			    r, dupk, ti, -1, tw, NULL, NULL, NULL,
			    "orphan: points at CALLBACK_DOMAIN but at no callback of ours");
		} else {
			long li = find_local(ws, nws, lid);
			if (li >= 0 && !str_eq(ws[li].token, tok)) {
				str_printf(
				    detail, sizeof detail,
				    "duplicate: points at webhook %s, which belongs to another token",
				    lid);
				x = add_action(r, dupk, ti, -1, tw, lid, NULL, NULL, detail);
			} else if (li >= 0 && ws[li].state == WEBHOOK_REMOVING) {
				x = add_action(
				    r, SYNC_FINISH_REMOVAL, ti, li, tw, lid, NULL, NULL,
				    "removal asked while Trello was unreachable: delete on Trello, "
				    "then here");
			} else if (li >= 0) {
				bool other_primary = false;
				if (ws[li].trello_id && !str_eq(ws[li].trello_id, tw->id))
					for (size_t k = 0; k < l->len; k++)
						other_primary =
						    other_primary ||
						    str_eq(l->items[k].id, ws[li].trello_id);
				if (claimed[li] || other_primary) {
					str_printf(
					    detail, sizeof detail,
					    "duplicate: a second Trello webhook for webhook %s",
					    lid);
					x = add_action(r, dupk, ti, -1, tw, lid, NULL, NULL,
					               detail);
				} else {
					claimed[li] = tw;
					const char *want =
					    ws[li].description ? ws[li].description : "";
					const char *have = tw->description ? tw->description : "";
					bool ddrift = !str_eq(want, have);
					bool adrift = !tw->active;
					if (ddrift || adrift) {
						str_printf(detail, sizeof detail, "drift:%s%s",
						           ddrift ? " description" : "",
						           adrift ? " active=false on Trello" : "");
						x = add_action(r, SYNC_UPDATE, ti, li, tw, lid,
						               NULL, NULL, detail);
					} else {
						r->in_sync++;
						continue;
					}
				}
			} else {
				/* not stored: adopt, unless this model+token is watched already */
				long same = -1;
				for (size_t k = 0; k < nws && same < 0; k++)
					if (str_eq(ws[k].token, tok) &&
					    str_case_eq(ws[k].id_model, tw->id_model) &&
					    ws[k].state != WEBHOOK_REMOVING)
						same = (long)k;
				for (size_t k = 0; k < r->nactions && same < 0; k++) {
					const sync_action *y = &r->actions[k];
					if (y->kind == SYNC_ADOPT && y->token_ix == ti &&
					    (str_case_eq(y->id_model, tw->id_model) ||
					     str_eq(y->webhook_id, lid)))
						same = 0;
				}
				if (same >= 0) {
					str_printf(detail, sizeof detail,
					           "duplicate: model %s is already watched "
					           "with this token",
					           tw->id_model ? tw->id_model : "?");
					x = add_action(r, dupk, ti, -1, tw, lid, NULL, NULL,
					               detail);
				} else {
					x = add_action(r, SYNC_ADOPT, ti, -1, tw, lid, NULL, NULL,
					               "points at us but is not stored: store it");
				}
			}
		}
		if (!x)
			return th_err(err, TH_ENOMEM, "out of memory");
	}
	return plan_missing(sc, r, ti, ws, nws, claimed, err);
}

/* Save Trello's view @tw into local row @w (and its Trello id). */
static void absorb(webhook *w, const trello_webhook *tw)
{
	if (tw->id && !str_eq(w->trello_id, tw->id)) {
		char *id = str_dup(tw->id);
		if (id) {
			free(w->trello_id);
			w->trello_id = id;
		}
	}
	w->active = tw->active;
	w->consecutive_failures = tw->consecutive_failures;
	w->first_consecutive_fail_at = iso_ms(tw->first_consecutive_fail_date);
	w->state = tw->active ? WEBHOOK_ACTIVE : WEBHOOK_DISABLED;
}

static void fail_action(sync_report *r, sync_action *x, const char *msg)
{
	free(x->error);
	x->error = str_dup(msg ? msg : "failed");
	x->done = false;
	r->failures++;
}

/* The Trello call action @x needs, into @op; false when it needs none. */
static bool build_op(const sync_action *x, const char *tok, const webhook *ws, trello_op *op)
{
	op->params = (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
	op->token = tok;
	switch (x->kind) {
	case SYNC_REGISTER:
		op->kind = TRELLO_OP_CREATE_WEBHOOK;
		op->params.callback_url = x->callback_url;
		op->params.id_model = ws[x->local_ix].id_model;
		op->params.description = ws[x->local_ix].description;
		break;
	case SYNC_UPDATE:
		op->kind = TRELLO_OP_UPDATE_WEBHOOK;
		op->webhook_id = x->trello_id;
		op->params.description =
		    ws[x->local_ix].description ? ws[x->local_ix].description : "";
		op->params.active = 1;
		break;
	case SYNC_PRUNE:
		op->kind = TRELLO_OP_DELETE_WEBHOOK;
		op->webhook_id = x->trello_id;
		break;
	case SYNC_FINISH_REMOVAL:
		if (!x->trello_id)
			return false;
		op->kind = TRELLO_OP_DELETE_WEBHOOK;
		op->webhook_id = x->trello_id;
		break;
	default: return false;
	}
	return true;
}

/* SYNC_ADOPT: store Trello's webhook @x->tw as ours (its model resolved for
 * a name while under MAX_RESOLVE lookups, counted in *resolved). */
static int adopt(svc_ctx *sc, trello_client *tc, const sync_action *x, const char *tok,
                 size_t *resolved, th_error *err)
{
	const trello_webhook *tw = x->tw;
	webhook w;
	trello_model m;
	trello_error te;
	memset(&w, 0, sizeof w);
	memset(&m, 0, sizeof m);
	memset(&te, 0, sizeof te);
	if (tw->id_model && *resolved < MAX_RESOLVE && str_is_trello_id(tw->id_model)) {
		(*resolved)++;
		if (trello_resolve_model(tc, tok, tw->id_model, &m, &te) == 0) {
			w.model_type = (char *)trello_model_type_name(m.type);
			w.model_name = m.name;
		}
	}
	w.id = x->webhook_id;
	w.trello_id = tw->id;
	w.id_model = tw->id_model;
	w.description = tw->description && *tw->description ? tw->description : NULL;
	w.callback_url = tw->callback_url; /* exactly as registered: it is signed over */
	w.token = (char *)tok;
	w.active = tw->active;
	w.state = tw->active ? WEBHOOK_ACTIVE : WEBHOOK_DISABLED;
	w.consecutive_failures = tw->consecutive_failures;
	w.first_consecutive_fail_at = iso_ms(tw->first_consecutive_fail_date);
	w.created_at = time_now_ms();
	int rc = svc_webhook_insert(sc, &w, err);
	trello_model_clear(&m);
	return rc;
}

/* SYNC_FINISH_REMOVAL (action @i): the row goes once no Trello webhook of
 * it is left, and only when no earlier deletion of one failed. */
static int finish_removal(svc_ctx *sc, sync_report *r, size_t i, webhook *ws, th_error *err)
{
	const sync_action *x = &r->actions[i];
	/* the row goes once no Trello webhook of it is left */
	bool later = false;
	for (size_t k = i + 1; k < r->nactions; k++)
		later = later || (r->actions[k].kind == SYNC_FINISH_REMOVAL &&
		                  r->actions[k].local_ix == x->local_ix);
	bool failed_before = false;
	for (size_t k = 0; k < i; k++)
		failed_before =
		    failed_before || (r->actions[k].kind == SYNC_FINISH_REMOVAL &&
		                      r->actions[k].local_ix == x->local_ix && r->actions[k].error);
	if (!later && !failed_before && svc_webhook_delete(sc, ws[x->local_ix].id, err) &&
	    err->code != TH_ENOTFOUND)
		return err->code;
	return 0;
}

/* Carry out the plan. */
static int apply(svc_ctx *sc, trello_client *tc, sync_report *r, webhook *ws, size_t nws,
                 const trello_webhook **claimed, th_error *err)
{
	size_t nops = 0;
	trello_op *ops = calloc(r->nactions ? r->nactions : 1, sizeof *ops);
	long *opix = calloc(r->nactions ? r->nactions : 1, sizeof *opix);
	int rc = 0;
	if (!ops || !opix) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->nactions; i++) {
		sync_action *x = &r->actions[i];
		opix[i] = -1;
		if (build_op(x, r->tokens[x->token_ix].token, ws, &ops[nops]))
			opix[i] = (long)nops++;
	}
	if (nops && (rc = trello_batch_run(tc, ops, nops, err)) != 0)
		goto out;

	size_t resolved = 0;
	for (size_t i = 0; i < r->nactions; i++) {
		sync_action *x = &r->actions[i];
		trello_op *op = opix[i] >= 0 ? &ops[opix[i]] : NULL;
		th_error serr = {0, {0}};
		const char *tok = r->tokens[x->token_ix].token;
		if (op && op->rc &&
		    !(op->rc == TH_ENOTFOUND && op->kind == TRELLO_OP_DELETE_WEBHOOK)) {
			char msg[400];
			str_printf(msg, sizeof msg, "%s%s", op->err.th.msg,
			           x->kind == SYNC_REGISTER &&
			                   op->err.kind == TRELLO_ERR_UNREACHABLE
			               ? " (if Trello created it anyway, the next sync adopts it)"
			               : "");
			fail_action(r, x, msg);
			continue;
		}
		switch (x->kind) {
		case SYNC_REGISTER: {
			webhook *w = &ws[x->local_ix];
			char *url = str_dup(x->callback_url);
			if (url) {
				free(w->callback_url);
				w->callback_url = url;
			}
			absorb(w, &op->webhook);
			if (svc_webhook_update(sc, w, &serr)) {
				fail_action(r, x, serr.msg);
				continue;
			}
			free(x->trello_id);
			x->trello_id = str_dup(op->webhook.id);
			break;
		}
		case SYNC_UPDATE: {
			webhook *w = &ws[x->local_ix];
			absorb(w, op->webhook.id ? &op->webhook : x->tw);
			if (!op->webhook.id) { /* no answer body: Trello took what we sent */
				w->active = true;
				w->state = WEBHOOK_ACTIVE;
			}
			claimed[x->local_ix] = NULL; /* saved here */
			if (svc_webhook_update(sc, w, &serr)) {
				fail_action(r, x, serr.msg);
				continue;
			}
			break;
		}
		case SYNC_ADOPT:
			if (adopt(sc, tc, x, tok, &resolved, &serr)) {
				fail_action(r, x, serr.msg);
				continue;
			}
			break;
		case SYNC_FINISH_REMOVAL:
			if (finish_removal(sc, r, i, ws, &serr)) {
				fail_action(r, x, serr.msg);
				continue;
			}
			break;
		case SYNC_PRUNE: break;
		default: continue; /* reports only */
		}
		x->done = true;
	}

	/* rows that matched: save Trello's view (active, failures, its id) */
	for (size_t i = 0; i < nws; i++) {
		if (!claimed[i])
			continue;
		webhook *w = &ws[i];
		enum webhook_state st = w->state;
		bool act = w->active;
		int cf = w->consecutive_failures;
		bool same_id = str_eq(w->trello_id, claimed[i]->id);
		absorb(w, claimed[i]);
		if (same_id && st == w->state && act == w->active && cf == w->consecutive_failures)
			continue;
		th_error serr = {0, {0}};
		if (svc_webhook_update(sc, w, &serr))
			log_warn(COMPONENT, "webhook %s: could not save Trello's view: %s", w->id,
			         serr.msg);
	}
out:
	for (size_t i = 0; ops && i < nops; i++)
		trello_op_clear(&ops[i]);
	free(ops);
	free(opix);
	return rc;
}

int svc_sync(svc_ctx *sc, trello_client *tc, const sync_opts *o, sync_report *r, th_error *err)
{
	token *toks = NULL;
	webhook *ws = NULL;
	size_t ntoks = 0, nws = 0, tcap = 0;
	trello_op *lists = NULL;
	const trello_webhook **claimed = NULL;
	memset(r, 0, sizeof *r);
	r->dry_run = o->dry_run;
	for (size_t i = 0; i < o->ntokens; i++)
		if (!str_is_trello_token(o->tokens[i]))
			return th_err(err, TH_EINVAL,
			              "--token: expected a Trello user token (64 hex "
			              "characters, or ATTA followed by 72 hex characters)");
	int rc = svc_token_list(sc, &toks, &ntoks, err);
	if (!rc)
		rc = svc_webhook_list(sc, &ws, &nws, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < ntoks && !rc; i++)
		if (!add_token(r, &tcap, toks[i].token))
			rc = th_err(err, TH_ENOMEM, "out of memory");
	for (size_t i = 0; i < o->ntokens && !rc; i++)
		if (!add_token(r, &tcap, o->tokens[i]))
			rc = th_err(err, TH_ENOMEM, "out of memory");
	for (size_t i = 0; i < nws && !rc; i++)
		if (!add_token(r, &tcap, ws[i].token))
			rc = th_err(err, TH_ENOMEM, "out of memory");
	if (rc)
		goto out;
	if (!o->dry_run)
		for (size_t i = 0; i < o->ntokens; i++) {
			th_error terr = {0, {0}};
			if (svc_token_remember(sc, o->tokens[i], &terr))
				log_warn(COMPONENT, "could not remember a token: %s", terr.msg);
		}
	if (!r->ntokens)
		goto out; /* nothing to do */

	/* every token's webhooks, at once */
	lists = calloc(r->ntokens, sizeof *lists);
	claimed = calloc(nws ? nws : 1, sizeof *claimed);
	if (!lists || !claimed) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->ntokens; i++) {
		lists[i].kind = TRELLO_OP_LIST_WEBHOOKS;
		lists[i].token = r->tokens[i].token;
		lists[i].params = (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
	}
	rc = trello_batch_run(tc, lists, r->ntokens, err);
	if (rc)
		goto out;
	/* a dead token flagged rows while listing: read them again */
	webhook_list_free(ws, nws);
	ws = NULL;
	nws = 0;
	if ((rc = svc_webhook_list(sc, &ws, &nws, err)) != 0)
		goto out;
	free(claimed);
	claimed = calloc(nws ? nws : 1, sizeof *claimed);
	if (!claimed) {
		rc = th_err(err, TH_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->ntokens; i++) {
		if (lists[i].rc) {
			r->tokens[i].error = str_dup(lists[i].err.th.msg);
			r->failures++;
			char masked[32], detail[400];
			mask_secret(r->tokens[i].token, masked, sizeof masked);
			str_printf(detail, sizeof detail,
			           "cannot list the webhooks of token %s: %s", masked,
			           lists[i].err.th.msg);
			if (!add_action(r, SYNC_TOKEN_ERROR, (int)i, -1, NULL, NULL, NULL, NULL,
			                detail)) {
				rc = th_err(err, TH_ENOMEM, "out of memory");
				goto out;
			}
			continue;
		}
		r->tokens[i].trello_webhooks = lists[i].webhooks.len;
		rc = plan_token(sc, o, r, (int)i, &lists[i].webhooks, ws, nws, claimed, err);
		if (rc)
			goto out;
	}
	if (!o->dry_run)
		rc = apply(sc, tc, r, ws, nws, claimed, err);
	/* a webhook registered again or enabled again missed what Trello did
	 * meanwhile: backfill it (in serve's Trello thread when serving) */
	for (size_t i = 0; !rc && i < r->nactions; i++) {
		const sync_action *x = &r->actions[i];
		if (x->done && x->webhook_id &&
		    (x->kind == SYNC_REGISTER || x->kind == SYNC_UPDATE))
			r->backfilled += svc_backfill_after_enable(sc, tc, x->webhook_id);
	}
	size_t changes = 0;
	for (size_t i = 0; i < r->nactions; i++)
		changes += r->actions[i].done;
	log_info(COMPONENT,
	         "%s: %zu token(s), %zu action(s) planned, %zu done, %zu in sync, %zu "
	         "failure(s)",
	         o->dry_run ? "dry run" : "sync", r->ntokens, r->nactions, changes, r->in_sync,
	         r->failures);
out:
	/* the plan's borrowed Trello webhooks die with the listing */
	for (size_t i = 0; i < r->nactions; i++)
		r->actions[i].tw = NULL;
	for (size_t i = 0; lists && i < r->ntokens; i++)
		trello_op_clear(&lists[i]);
	free(lists);
	free(claimed);
	token_list_free(toks, ntoks);
	webhook_list_free(ws, nws);
	if (rc)
		sync_report_clear(r);
	return rc;
}

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
 * The runner thread is owned by the app (app->health) between health_start
 * and health_stop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/service.h"
#include "util/log.h"

#define COMPONENT "health"
#define FIRST_PASS_DELAY_MS 2000

struct health_runner {
	app *a;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled by health_stop */
	bool stop;         /* guarded by mu */
};

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

int svc_health_pass(app *a, trello_client *tc, health_stats *s, th_error *err)
{
	token *toks = NULL;
	webhook *ws = NULL;
	size_t ntoks = 0, nws = 0, n = 0;
	const char **tokens = NULL;
	trello_op *ops = NULL, *dels = NULL;
	size_t ndels = 0;
	long *del_ix = NULL;
	memset(s, 0, sizeof *s);
	int rc = svc_token_list(a, &toks, &ntoks, err);
	if (!rc)
		rc = svc_webhook_list(a, &ws, &nws, err);
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

	/* tokens */
	for (size_t i = 0; i < n; i++) {
		trello_op *op = &ops[2 * i];
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
		if (svc_token_save(a, &t, &terr))
			log_warn(COMPONENT, "cannot save token %s: %s", masked, terr.msg);
		if (t.expires_at && t.expires_at - time_now_ms() < 3LL * 24 * 3600 * 1000)
			log_warn(COMPONENT, "token %s expires soon (%s); its webhooks stop then",
			         masked, op->token_info.date_expires);
	}

	/* webhooks (read again: flagging a dead token changed rows) */
	webhook_list_free(ws, nws);
	ws = NULL;
	nws = 0;
	if ((rc = svc_webhook_list(a, &ws, &nws, err)) != 0)
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
		const trello_webhook *tw = w->trello_id ? find_tw(&l->webhooks, w) : NULL;
		th_error uerr = {0, {0}};
		if (w->state == WEBHOOK_REMOVING) {
			if (tw) {
				dels[ndels].kind = TRELLO_OP_DELETE_WEBHOOK;
				dels[ndels].token = w->token;
				dels[ndels].webhook_id = w->trello_id;
				dels[ndels].params =
				    (trello_webhook_params)TRELLO_WEBHOOK_PARAMS_INIT;
				del_ix[ndels++] = (long)i;
			} else if (!svc_webhook_delete(a, w->id, &uerr)) {
				s->removals_finished++;
				log_info(COMPONENT,
				         "webhook %s: removal finished (Trello no longer had it)",
				         w->id);
			}
			continue;
		}
		if (!w->trello_id)
			continue; /* not registered (pending, or lost earlier): sync's job */
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
		if (changed && svc_webhook_update(a, w, &uerr))
			log_warn(COMPONENT, "webhook %s: cannot save Trello's view: %s", w->id,
			         uerr.msg);
	}
	if (ndels && (rc = trello_batch_run(tc, dels, ndels, err)) != 0)
		goto out;
	for (size_t i = 0; i < ndels; i++) {
		webhook *w = &ws[del_ix[i]];
		th_error uerr = {0, {0}};
		if (dels[i].rc && dels[i].rc != TH_ENOTFOUND) {
			s->errors++;
			log_warn(COMPONENT, "webhook %s: removal still pending: %s", w->id,
			         dels[i].err.th.msg);
		} else if (svc_webhook_delete(a, w->id, &uerr)) {
			s->errors++;
			log_warn(COMPONENT, "webhook %s: %s", w->id, uerr.msg);
		} else {
			s->removals_finished++;
			log_info(COMPONENT, "webhook %s: removal finished", w->id);
		}
	}
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

/* ---- the runner thread ------------------------------------------------------------------- */

/* Wait up to @ms or until stopped; returns true when asked to stop. */
static bool wait_stop(struct health_runner *h, int64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		int rc = pthread_cond_timedwait(&h->cv, &h->mu, &until);
		if (rc == ETIMEDOUT)
			break;
	}
	bool stop = h->stop;
	pthread_mutex_unlock(&h->mu);
	return stop;
}

static void *runner(void *arg)
{
	struct health_runner *h = arg;
	app *a = h->a;
	trello_client *tc = NULL;
	th_error err = {0, {0}};
	int64_t delay = FIRST_PASS_DELAY_MS < a->cfg.health_interval_ms ? FIRST_PASS_DELAY_MS
	                                                                : a->cfg.health_interval_ms;
	if (svc_trello_client(a, &tc, &err)) {
		log_error(COMPONENT, "health pass disabled: %s", err.msg);
		return NULL;
	}
	while (!wait_stop(h, delay)) {
		health_stats s;
		int64_t t0 = time_mono_ms();
		if (svc_health_pass(a, tc, &s, &err)) {
			atomic_fetch_add_explicit(&a->m.health_failures, 1, memory_order_relaxed);
			log_warn(COMPONENT, "health pass failed: %s", err.msg);
		} else {
			atomic_fetch_add_explicit(&a->m.health_passes, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&a->m.health_webhooks_disabled,
			                          s.webhooks_disabled, memory_order_relaxed);
			atomic_fetch_add_explicit(&a->m.health_webhooks_deleted, s.webhooks_deleted,
			                          memory_order_relaxed);
			atomic_fetch_add_explicit(&a->m.health_removals_finished,
			                          s.removals_finished, memory_order_relaxed);
			log_info(
			    COMPONENT,
			    "health pass in %lld ms: %zu token(s) checked, %zu dead; %zu "
			    "webhook(s) seen, %zu disabled, %zu deleted on Trello, %zu removal(s) "
			    "finished, %zu error(s)",
			    (long long)(time_mono_ms() - t0), s.tokens_checked, s.tokens_dead,
			    s.webhooks_seen, s.webhooks_disabled, s.webhooks_deleted,
			    s.removals_finished, s.errors);
		}
		delay = a->cfg.health_interval_ms;
	}
	trello_client_free(tc);
	return NULL;
}

int health_start(app *a, th_error *err)
{
	a->health = NULL;
	if (a->cfg.health_interval_ms <= 0) {
		log_info(COMPONENT, "periodic health pass off (TRELLOHOOK_HEALTH_INTERVAL=0)");
		return 0;
	}
	if (!a->cfg.api_key[0]) {
		log_info(COMPONENT, "periodic health pass off: TRELLO_API_KEY is not set");
		return 0;
	}
	struct health_runner *h = calloc(1, sizeof *h);
	if (!h)
		return th_err(err, TH_ENOMEM, "out of memory");
	h->a = a;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	int prc = pthread_create(&h->thread, NULL, runner, h);
	if (prc) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return th_err(err, TH_EIO, "cannot start the health pass: %s", strerror(prc));
	}
	a->health = h;
	return 0;
}

void health_stop(app *a)
{
	struct health_runner *h = a ? a->health : NULL;
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
	a->health = NULL;
}

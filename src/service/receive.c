/* SPDX-License-Identifier: MIT */
/*
 * receive.c — the decision on one callback POST, apart from HTTP: in this
 * order, cheapest refusal first (docs/DESIGN.md, "order of checks"):
 *   1. the webhook is known here (webhook cache)     else UNKNOWN; removing: GONE
 *   2. X-Trello-Webhook verifies over the raw body bytes ++ the callback URL
 *      stored with the webhook (not the URL the request arrived at: proxies
 *      rewrite that)                                  else SIG_*
 *   3. the body is a Trello payload                   else MALFORMED
 *   4. the event goes to the receive queue (group commit); its fate
 *      (STORED, DUPLICATE, STORE_FAILED, or BUSY when it could not be queued)
 *      is reported through the caller's done callback. GONE there too: the
 *      store checks the webhook again inside the batch's transaction, so an
 *      entry the cache still holds (up to its TTL, when another process
 *      removed the webhook) never lets an event be stored after the rm.
 * server/callbacks.c maps outcomes to status codes; tests drive this
 * directly with a real store and the real receive queue.
 */
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "service/webhook_cache.h"
#include "util/log.h"
#include "util/sign.h"

/* An accepted event on its way through the queue; after done, the receiver's
 * to free (svc_recv_release). */
struct recv_pending {
	svc_ctx *sc;
	event *ev;
	void (*done)(void *done_ctx, enum svc_recv outcome, const th_error *err,
	             svc_recv_left *left);
	void *done_ctx;
};

void svc_recv_release(svc_recv_left *p)
{
	if (!p)
		return;
	event_clear(p->ev);
	free(p->ev);
	free(p);
}

const char *svc_recv_name(enum svc_recv r)
{
	static const char *const names[] = {
	    [SVC_RECV_QUEUED] = "queued",
	    [SVC_RECV_STORED] = "stored",
	    [SVC_RECV_DUPLICATE] = "duplicate",
	    [SVC_RECV_UNKNOWN] = "unknown webhook",
	    [SVC_RECV_GONE] = "webhook removed",
	    [SVC_RECV_SIG_MISSING] = "signature missing",
	    [SVC_RECV_SIG_MALFORMED] = "signature malformed",
	    [SVC_RECV_SIG_MISMATCH] = "signature mismatch",
	    [SVC_RECV_MALFORMED] = "not a Trello payload",
	    [SVC_RECV_LOOKUP_FAILED] = "store unavailable",
	    [SVC_RECV_NOMEM] = "out of memory",
	    [SVC_RECV_BUSY] = "busy",
	    [SVC_RECV_STORE_FAILED] = "store failed",
	};
	return (unsigned)r < sizeof names / sizeof names[0] && names[r] ? names[r] : "?";
}

static enum svc_recv refused(svc_ctx *sc, enum reject_reason why, enum svc_recv outcome)
{
	atomic_fetch_add_explicit(&sc->m->rejected[why], 1, memory_order_relaxed);
	return outcome;
}

/* The queue's writer thread: @ev's fate is known. */
static void on_stored(void *ctx, event *ev, enum store_put result, const th_error *err)
{
	struct recv_pending *p = ctx;
	enum svc_recv outcome;
	log_set_request_id(NULL);
	switch (result) {
	case STORE_PUT_NEW:
		/* debug: this runs on the group-commit writer, whose time is everyone's
		 * latency; the access log line of the request says 200 at info */
		log_debug("callback", "stored event %s: action %s %s on webhook %s", ev->id,
		          ev->action_id, ev->action_type, ev->webhook_id);
		outcome = SVC_RECV_STORED;
		break;
	case STORE_PUT_GONE:
		/* the cache still had it, the store says removed (by the CLI or another
		 * instance): not stored, 410; forget it so the next POST stops at step 1 */
		log_info("callback",
		         "action %s on webhook %s not stored: the webhook is removed or being "
		         "removed; 410 so Trello drops it",
		         ev->action_id, ev->webhook_id);
		webhook_cache_forget(p->sc->cache, ev->webhook_id);
		atomic_fetch_add_explicit(&p->sc->m->rejected[REJECT_WEBHOOK_REMOVED], 1,
		                          memory_order_relaxed);
		outcome = SVC_RECV_GONE;
		break;
	case STORE_PUT_DUPLICATE:
		log_info("callback", "action %s on webhook %s was already stored; not stored again",
		         ev->action_id, ev->webhook_id);
		outcome = SVC_RECV_DUPLICATE;
		break;
	default:
		log_error("callback", "could not store action %s on webhook %s: %s", ev->action_id,
		          ev->webhook_id, err ? err->msg : "unknown error");
		atomic_fetch_add_explicit(&p->sc->m->rejected[REJECT_STORE_UNAVAILABLE], 1,
		                          memory_order_relaxed);
		outcome = SVC_RECV_STORE_FAILED;
		break;
	}
	/* the event and p go back to the receiver, to be freed on its thread */
	p->done(p->done_ctx, outcome, err, p);
}

/* Step 2: the signature, over the raw bytes. SVC_RECV_QUEUED when it verifies. */
static enum svc_recv check_signature(svc_ctx *sc, const char *id, const webhook_brief *wb,
                                     const char *signature, const char *body, size_t len,
                                     const svc_recv_opts *o, th_error *err)
{
	const char *why = NULL;
	if (o->signature_repeated)
		signature = NULL, why = "malformed";
	int vrc = why ? TH_EAUTH
	              : sign_trello_verify(sc->cfg->api_secret, body, len, wb->callback_url,
	                                   signature, &why);
	if (!vrc)
		return SVC_RECV_QUEUED;
	log_warn("callback", "webhook %s: refused a POST from %s, X-Trello-Webhook %s", id,
	         o->remote && o->remote[0] ? o->remote : "?", why);
	th_err(err, TH_EAUTH, "%s", why); /* the word the answer carries */
	if (str_eq(why, "missing"))
		return refused(sc, REJECT_SIGNATURE_MISSING, SVC_RECV_SIG_MISSING);
	if (str_eq(why, "malformed"))
		return refused(sc, REJECT_SIGNATURE_MALFORMED, SVC_RECV_SIG_MALFORMED);
	return refused(sc, REJECT_SIGNATURE_MISMATCH, SVC_RECV_SIG_MISMATCH);
}

enum svc_recv svc_receive(svc_ctx *sc, const char *id, const char *signature, const char *body,
                          size_t len, const svc_recv_opts *o, th_error *err)
{
	webhook_brief wb;
	th_error lerr = {0, {0}};
	if (!err)
		err = &lerr;
	if (webhook_cache_get(sc->cache, sc->st, id, &wb, err)) {
		log_error("callback", "webhook lookup failed: %s", err->msg);
		return refused(sc, REJECT_STORE_UNAVAILABLE, SVC_RECV_LOOKUP_FAILED);
	}
	if (!wb.found) {
		log_info("callback", "POST for unknown webhook %s", id);
		return refused(sc, REJECT_UNKNOWN_WEBHOOK, SVC_RECV_UNKNOWN);
	}
	if (wb.state == WEBHOOK_REMOVING) {
		log_info("callback",
		         "POST for webhook %s, which is being removed: 410 so Trello drops it", id);
		return refused(sc, REJECT_WEBHOOK_REMOVED, SVC_RECV_GONE);
	}
	/* Verify before parsing: unsigned input never reaches the JSON parser. */
	enum svc_recv sig = check_signature(sc, id, &wb, signature, body, len, o, err);
	if (sig != SVC_RECV_QUEUED)
		return sig;

	event *ev = calloc(1, sizeof *ev);
	if (!ev)
		return refused(sc, REJECT_STORE_UNAVAILABLE, SVC_RECV_NOMEM);
	if (event_parse(ev, body, len, err)) {
		free(ev);
		log_warn("callback", "webhook %s: signed body is not a Trello payload: %s", id,
		         err->msg);
		return refused(sc, REJECT_BAD_PAYLOAD, SVC_RECV_MALFORMED);
	}
	ev->webhook_id = strdup(id);
	if (!ev->model_id && wb.id_model[0])
		ev->model_id = strdup(wb.id_model);
	atomic_fetch_add_explicit(&sc->m->events_received, 1, memory_order_relaxed);

	struct recv_pending *p = calloc(1, sizeof *p);
	void *done_ctx = p && ev->webhook_id ? o->accept(o->ctx) : NULL;
	if (!done_ctx) {
		free(p);
		event_clear(ev);
		free(ev);
		return refused(sc, REJECT_STORE_UNAVAILABLE, SVC_RECV_NOMEM);
	}
	p->sc = sc;
	p->ev = ev;
	p->done = o->done;
	p->done_ctx = done_ctx;
	int qrc = sc->queue_submit
	              ? sc->queue_submit(sc->queue, ev, on_stored, p, err)
	              : th_err(err, TH_EUNAVAIL, "not receiving (the server is not running)");
	if (qrc) {
		/* accepted, so the answer goes through done as promised */
		log_warn("callback", "cannot queue action %s: %s", ev->action_id, err->msg);
		atomic_fetch_add_explicit(&sc->m->rejected[REJECT_STORE_UNAVAILABLE], 1,
		                          memory_order_relaxed);
		o->done(done_ctx, SVC_RECV_BUSY, err, p);
	}
	return SVC_RECV_QUEUED;
}

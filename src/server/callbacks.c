/*
 * callbacks.c — /callbacks/{id}, where Trello talks to us.
 *
 * HEAD: Trello's check when a webhook is created. It arrives BEFORE Trello
 * knows the webhook (and before `webhook add` has Trello's id), carries no
 * body and no signature, and must get exactly 200 — so any well-formed id
 * answers 200 without touching the store.
 *
 * POST: a delivery. In this order, cheapest refusal first:
 *   1. the id is well-formed               else 404
 *   2. the webhook is known here           else 404; being removed: 410
 *      (410 makes Trello delete its side)
 *   3. X-Trello-Webhook verifies over the raw body bytes ++ the callback URL
 *      stored with the webhook (not the URL this request arrived at: proxies
 *      rewrite that)                       else 401
 *   4. the body is a Trello payload        else 400
 *   5. the event is handed to the group-commit writer and the request waits;
 *      200 once committed (a duplicate action also gets 200), 503 when the
 *      store fails (Trello retries later).
 * Body size (413) and framing (400) were already checked by the HTTP layer.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "util/log.h"
#include "util/sign.h"

/* What a waiting request needs when the writer reports back. */
struct pending {
	app *a;
	http_deferred *d;
	int64_t started_us; /* arrival, for the latency histogram */
};

/* Answer @status with @msg (one line) and count the refusal under @why. */
static int refuse(app *a, http_response *res, enum reject_reason why, int status, const char *msg)
{
	atomic_fetch_add_explicit(&a->m.rejected[why], 1, memory_order_relaxed);
	http_response_text(res, status, "%s\n", msg);
	return HTTP_DONE;
}

/* Writer thread: the event is committed (or not); answer the waiting request. */
static void on_stored(void *ctx, event *ev, enum store_put result, const th_error *err)
{
	struct pending *p = ctx;
	http_response res;
	http_response_init(&res);
	log_set_request_id(NULL);
	switch (result) {
	case STORE_PUT_NEW:
		/* debug: this runs on the group-commit writer, whose time is everyone's
		 * latency; the access log line of the request says 200 at info */
		log_debug("callback", "stored event %s: action %s %s on webhook %s", ev->id,
		          ev->action_id, ev->action_type, ev->webhook_id);
		http_response_text(&res, 200, "ok\n");
		break;
	case STORE_PUT_DUPLICATE:
		log_info("callback", "action %s on webhook %s was already stored; not stored again",
		         ev->action_id, ev->webhook_id);
		http_response_text(&res, 200, "ok (duplicate)\n");
		break;
	default:
		log_error("callback", "could not store action %s on webhook %s: %s", ev->action_id,
		          ev->webhook_id, err ? err->msg : "unknown error");
		atomic_fetch_add_explicit(&p->a->m.rejected[REJECT_STORE_UNAVAILABLE], 1,
		                          memory_order_relaxed);
		http_response_text(&res, 503, "store unavailable, retry later\n");
		http_response_header(&res, "Retry-After", "5");
		break;
	}
	metrics_observe(&p->a->m.callback_latency, time_mono_us() - p->started_us);
	event_clear(ev);
	free(ev);
	http_deferred_finish(p->d, &res);
	http_response_clear(&res);
	free(p);
}

static int receive(app *a, http_request *req, http_response *res, const char *id)
{
	int64_t started_us = time_mono_us();
	webhook_brief wb;
	th_error err = {0, {0}};
	if (webhook_cache_get(a->cache, a->st, id, &wb, &err)) {
		log_error("callback", "webhook lookup failed: %s", err.msg);
		return refuse(a, res, REJECT_STORE_UNAVAILABLE, 503, "store unavailable");
	}
	if (!wb.found) {
		log_info("callback", "POST for unknown webhook %s", id);
		return refuse(a, res, REJECT_UNKNOWN_WEBHOOK, 404, "unknown webhook");
	}
	if (wb.state == WEBHOOK_REMOVING) {
		log_info("callback",
		         "POST for webhook %s, which is being removed: 410 so Trello drops it", id);
		return refuse(a, res, REJECT_WEBHOOK_REMOVED, 410, "webhook removed");
	}

	/* Verify before parsing: unsigned input never reaches the JSON parser. */
	const char *why = NULL;
	const char *sig = http_header(req, "X-Trello-Webhook");
	if (http_header_count(req, "X-Trello-Webhook") > 1)
		sig = NULL, why = "malformed";
	int vrc = why ? TH_EAUTH
	              : sign_trello_verify(a->cfg.api_secret, req->body, req->body_len,
	                                   wb.callback_url, sig, &why);
	if (vrc) {
		enum reject_reason r = str_eq(why, "missing")     ? REJECT_SIGNATURE_MISSING
		                       : str_eq(why, "malformed") ? REJECT_SIGNATURE_MALFORMED
		                                                  : REJECT_SIGNATURE_MISMATCH;
		log_warn("callback", "webhook %s: refused a POST from %s, X-Trello-Webhook %s", id,
		         req->remote[0] ? req->remote : "?", why);
		char msg[64];
		str_printf(msg, sizeof msg, "X-Trello-Webhook signature %s", why);
		return refuse(a, res, r, 401, msg);
	}

	event *ev = calloc(1, sizeof *ev);
	if (!ev)
		return refuse(a, res, REJECT_STORE_UNAVAILABLE, 503, "out of memory");
	if (event_parse(ev, req->body, req->body_len, &err)) {
		free(ev);
		log_warn("callback", "webhook %s: signed body is not a Trello payload: %s", id,
		         err.msg);
		char msg[sizeof err.msg + 32];
		str_printf(msg, sizeof msg, "not a Trello payload: %s", err.msg);
		return refuse(a, res, REJECT_BAD_PAYLOAD, 400, msg);
	}
	ev->webhook_id = strdup(id);
	if (!ev->model_id && wb.id_model[0])
		ev->model_id = strdup(wb.id_model);
	atomic_fetch_add_explicit(&a->m.events_received, 1, memory_order_relaxed);

	struct pending *p = calloc(1, sizeof *p);
	http_deferred *d = p ? http_defer(req) : NULL;
	if (!p || !d || !ev->webhook_id) {
		free(p);
		event_clear(ev);
		free(ev);
		return refuse(a, res, REJECT_STORE_UNAVAILABLE, 503, "out of memory");
	}
	p->a = a;
	p->d = d;
	p->started_us = started_us;
	if (receiver_submit(a->rcv, ev, on_stored, p, &err)) {
		/* answer through the deferred path so its bookkeeping stays balanced */
		log_warn("callback", "cannot queue action %s: %s", ev->action_id, err.msg);
		atomic_fetch_add_explicit(&a->m.rejected[REJECT_STORE_UNAVAILABLE], 1,
		                          memory_order_relaxed);
		http_response busy;
		http_response_init(&busy);
		http_response_text(&busy, 503, "busy, retry later: %s\n", err.msg);
		http_response_header(&busy, "Retry-After", "5");
		event_clear(ev);
		free(ev);
		free(p);
		http_deferred_finish(d, &busy);
		http_response_clear(&busy);
	}
	return HTTP_DEFERRED;
}

int server_callbacks(app *a, http_request *req, http_response *res, const char *id)
{
	/* the id is the whole rest of the path: no further segments */
	if (!id_is_wellformed(id)) {
		atomic_fetch_add_explicit(&a->m.rejected[REJECT_UNKNOWN_WEBHOOK], 1,
		                          memory_order_relaxed);
		http_response_text(res, 404, "no such callback\n");
		return HTTP_DONE;
	}
	if (str_eq(req->method, "HEAD")) {
		/* Trello's creation check: 200, empty body, no lookup. */
		atomic_fetch_add_explicit(&a->m.head_checks, 1, memory_order_relaxed);
		log_info("callback", "HEAD check for %s answered 200", id);
		res->status = 200;
		return HTTP_DONE;
	}
	if (str_eq(req->method, "POST"))
		return receive(a, req, res, id);
	atomic_fetch_add_explicit(&a->m.rejected[REJECT_BAD_REQUEST], 1, memory_order_relaxed);
	http_response_text(res, 405, "method not allowed: use HEAD or POST\n");
	http_response_header(res, "Allow", "HEAD, POST");
	return HTTP_DONE;
}

/* SPDX-License-Identifier: MIT */
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
 *      200 once committed (a duplicate action also gets 200), 410 when the
 *      store found the webhook removed meanwhile (another process's rm: the
 *      cache had not seen it yet), 503 when the store fails (Trello retries
 *      later).
 * Body size (413) and framing (400) were already checked by the HTTP layer.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "service/service.h"
#include "util/log.h"

/* What a waiting request needs when the writer reports back. */
struct pending {
	svc_ctx *sc;
	http_request *req;
	http_deferred *d;
	int64_t started_us; /* arrival, for the latency histogram */
	/* the event's fate, from the writer, for the answer made on the request's thread */
	enum svc_recv outcome;
	char busy_why[sizeof(((th_error *)0)->msg)];
	svc_recv_left *left;
};

/* Answer @status with @msg (one line). */
static int refuse(http_response *res, int status, const char *msg)
{
	http_response_text(res, status, "%s\n", msg);
	return HTTP_DONE;
}

/* svc_recv_opts.accept: the event is accepted; suspend the request. */
static void *on_accept(void *ctx)
{
	struct pending *p = ctx;
	p->d = http_defer(p->req);
	if (!p->d)
		return NULL;
	struct pending *mine = malloc(sizeof *mine);
	if (!mine) {
		/* the request is deferred already: answer it through that path */
		http_response busy;
		http_response_init(&busy);
		http_response_text(&busy, 503, "out of memory\n");
		http_deferred_finish(p->d, &busy);
		http_response_clear(&busy);
		return NULL;
	}
	*mine = *p;
	return mine;
}

/* http_answer_fn, on the request's own thread: the answer to the event's fate,
 * and the event's memory freed where it was allocated (svc_recv_release). */
static void answer(void *ctx, http_response *res)
{
	struct pending *p = ctx;
	if (res) {
		switch (p->outcome) {
		case SVC_RECV_STORED: http_response_text(res, 200, "ok\n"); break;
		case SVC_RECV_DUPLICATE: http_response_text(res, 200, "ok (duplicate)\n"); break;
		case SVC_RECV_GONE: http_response_text(res, 410, "webhook removed\n"); break;
		case SVC_RECV_BUSY:
			http_response_text(res, 503, "busy, retry later: %s\n", p->busy_why);
			http_response_header(res, "Retry-After", "5");
			break;
		default:
			http_response_text(res, 503, "store unavailable, retry later\n");
			http_response_header(res, "Retry-After", "5");
			break;
		}
		if (p->outcome != SVC_RECV_BUSY)
			metrics_observe(&p->sc->m->callback_latency,
			                time_mono_us() - p->started_us);
	}
	svc_recv_release(p->left);
	free(p);
}

/* svc_recv_opts.done (usually the writer thread): the answer is made by
 * answer() on the request's thread, which frees what the request allocated —
 * this thread only notes the outcome (issue 18: frees here contended on the
 * request threads' allocator arenas). */
static void on_done(void *ctx, enum svc_recv outcome, const th_error *err, svc_recv_left *left)
{
	struct pending *p = ctx;
	p->outcome = outcome;
	p->left = left;
	if (outcome == SVC_RECV_BUSY) /* the only answer that says why */
		str_printf(p->busy_why, sizeof p->busy_why, "%s", err ? err->msg : "");
	http_deferred_answer(p->d, answer, p);
}

static int receive(svc_ctx *sc, http_request *req, http_response *res, const char *id)
{
	struct pending p = {.sc = sc, .req = req, .started_us = time_mono_us()};
	svc_recv_opts o = {
	    .remote = req->remote,
	    .signature_repeated = http_header_count(req, "X-Trello-Webhook") > 1,
	    .accept = on_accept,
	    .ctx = &p,
	    .done = on_done,
	};
	th_error err = {0, {0}};
	enum svc_recv r = svc_receive(sc, id, http_header(req, "X-Trello-Webhook"), req->body,
	                              req->body_len, &o, &err);
	char msg[sizeof err.msg + 32];
	switch (r) {
	case SVC_RECV_QUEUED: return HTTP_DEFERRED;
	case SVC_RECV_UNKNOWN: return refuse(res, 404, "unknown webhook");
	case SVC_RECV_GONE: return refuse(res, 410, "webhook removed");
	case SVC_RECV_SIG_MISSING:
	case SVC_RECV_SIG_MALFORMED:
	case SVC_RECV_SIG_MISMATCH:
		str_printf(msg, sizeof msg, "X-Trello-Webhook signature %s", err.msg);
		return refuse(res, 401, msg);
	case SVC_RECV_MALFORMED:
		str_printf(msg, sizeof msg, "not a Trello payload: %s", err.msg);
		return refuse(res, 400, msg);
	case SVC_RECV_NOMEM:
		/* deferred already when accept ran out of memory: answered there */
		return p.d ? HTTP_DEFERRED : refuse(res, 503, "out of memory");
	default: return refuse(res, 503, "store unavailable");
	}
}

int server_callbacks(svc_ctx *sc, http_request *req, http_response *res, const char *id)
{
	/* the id is the whole rest of the path: no further segments */
	if (!id_is_wellformed(id)) {
		atomic_fetch_add_explicit(&sc->m->rejected[REJECT_UNKNOWN_WEBHOOK], 1,
		                          memory_order_relaxed);
		http_response_text(res, 404, "no such callback\n");
		return HTTP_DONE;
	}
	if (str_eq(req->method, "HEAD")) {
		/* Trello's creation check: 200, empty body, no lookup. */
		atomic_fetch_add_explicit(&sc->m->head_checks, 1, memory_order_relaxed);
		log_info("callback", "HEAD check for %s answered 200", id);
		res->status = 200;
		return HTTP_DONE;
	}
	if (str_eq(req->method, "POST"))
		return receive(sc, req, res, id);
	atomic_fetch_add_explicit(&sc->m->rejected[REJECT_BAD_REQUEST], 1, memory_order_relaxed);
	http_response_text(res, 405, "method not allowed: use HEAD or POST\n");
	http_response_header(res, "Allow", "HEAD, POST");
	return HTTP_DONE;
}

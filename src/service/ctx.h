/* SPDX-License-Identifier: MIT */
/*
 * ctx — what a service operation may use, and nothing more: the
 * configuration, the store, the webhook cache, the metrics, the C functions
 * connected with th_connect(), the login throttle and (while serving) the
 * receive queue. The composition root (app/) owns every part and fills one
 * svc_ctx per process; the CLI, the admin, the dispatcher and the callbacks
 * route hand the same pointer to every svc_* / handlers_* call.
 *
 * Thread-safety: the struct is set up once before any thread uses it and is
 * then only read; each part it points at is thread-safe on its own (store,
 * cache, metrics atomics, throttle, queue). cfg and funcs are immutable while
 * serving (th_connect() is called before th_app_serve()).
 */
#ifndef TH_SERVICE_CTX_H
#define TH_SERVICE_CTX_H

#include <stddef.h>

#include "config/config.h"
#include "model/model.h"
#include "service/metrics.h"
#include "store/store.h"

/* A C function connected to callback_received (th_connect). */
typedef struct svc_func {
	th_handler_fn fn;
	void *ctx;
	char uid[128]; /* dispatch_uid; also the target of its handler row */
} svc_func;

#define SVC_MAX_FUNCS 64

typedef struct svc_funcs {
	svc_func v[SVC_MAX_FUNCS];
	size_t n;
} svc_funcs;

typedef struct webhook_cache webhook_cache; /* service/webhook_cache.h */
typedef struct svc_throttle svc_throttle;   /* service/sessions.c */

/* Called once @ev's fate is known (on the queue's writer thread). @err is
 * set when @result is STORE_PUT_FAILED. Ownership of @ev returns to the callee. */
typedef void (*svc_stored_fn)(void *ctx, event *ev, enum store_put result, const th_error *err);
/* The receive queue (the group-commit writer of app/receiver.c): on success
 * it owns @ev until @done is called; TH_EUNAVAIL when it is full. Reached
 * through this hook so that the service layer does not depend on the serve
 * runtime above it. */
typedef int (*svc_queue_fn)(void *queue, event *ev, svc_stored_fn done, void *ctx, th_error *err);

typedef struct svc_ctx {
	const th_config *cfg;      /* the loaded configuration, incl. the token-sealing key */
	store *st;                 /* the open, migrated store */
	webhook_cache *cache;      /* what the receive path knows about webhooks */
	metrics *m;                /* the process's counters */
	svc_funcs *funcs;          /* connected C functions (th_connect adds before serving) */
	svc_throttle *throttle;    /* the admin's login throttle */
	svc_queue_fn queue_submit; /* the receive queue, while serving (else NULL) */
	void *queue;
	/* Told after events were committed outside the receive queue (a
	 * backfill), with the @n new ones (borrowed for the call only, oldest
	 * first): while serving it wakes the dispatcher and shows them on the
	 * admin's live view, as the receive queue's commits do. NULL otherwise. */
	void (*on_events)(void *ctx, const event *const *fresh, size_t n);
	void *on_events_ctx;
	/* Queue a backfill pass of a webhook on serve's Trello thread (the admin's
	 * button); NULL when not serving. */
	int (*backfill_request)(void *ctx, const char *webhook_id, th_error *err);
	void *backfill_ctx;
	/* Told when this process ended a session (@id_hash: its SHA-256 hex):
	 * signed out, or found expired. While serving it ends the session's live
	 * views at once; NULL otherwise. */
	void (*on_session_end)(void *ctx, const char *id_hash);
	void *on_session_end_ctx;
} svc_ctx;

#endif

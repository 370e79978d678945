/*
 * app — what one trellohook process is: configuration, store, metrics, the
 * receive path and (when serving) the HTTP server and dispatch workers.
 * `struct th_app` is the public opaque handle of include/trellohook.h.
 */
#ifndef TH_APP_H
#define TH_APP_H

#include <pthread.h>

#include "config/config.h"
#include "http/http.h"
#include "service/metrics.h"
#include "service/receiver.h"
#include "store/store.h"

#define APP_MAX_FUNCS 64

/* A C function connected to callback_received. */
typedef struct app_func {
	th_handler_fn fn;
	void *ctx;
	char uid[128]; /* dispatch_uid; also the target of its handler row */
} app_func;

typedef struct webhook_cache webhook_cache;
struct dispatcher;
struct health_runner;

struct th_app {
	th_config cfg;
	store *st;
	metrics m;
	webhook_cache *cache;
	receiver *rcv;           /* while serving */
	http_server *http;       /* while serving */
	struct dispatcher *disp; /* while serving (NULL until dispatch exists) */
	struct health_runner
	    *health; /* while serving: the periodic health pass (service/health_pass.c) */
	app_func funcs[APP_MAX_FUNCS];
	size_t nfuncs;
	int stop_pipe[2]; /* th_app_stop() writes a byte; serve waits on it */
	int64_t started_at;
};
typedef struct th_app app;

/* Create an app from a loaded configuration: opens (and migrates) the store.
 * Free with th_app_free(). */
int app_new(app **out, const th_config *cfg, th_error *err);

/* Called once the server accepts connections, with its base URL. */
typedef void (*app_ready_fn)(void *ctx, const char *url);

/* Serve until stopped (signal or th_app_stop). */
int app_serve(app *a, app_ready_fn ready, void *ctx, th_error *err);

/* The callback URL of webhook @id for this configuration. */
int app_callback_url(const app *a, const char *id, char *out, size_t outsz);

/* ---- the webhook cache used by the receive path ---------------------------------- */

/* What the receive path needs to know about a webhook. */
typedef struct webhook_brief {
	bool found;
	enum webhook_state state;
	char callback_url[600];
	char id_model[32];
} webhook_brief;

int webhook_cache_new(webhook_cache **out, int64_t ttl_ms);
void webhook_cache_free(webhook_cache *c);
/* Look @id up, from the cache when fresh, else from the store (then cached). */
int webhook_cache_get(webhook_cache *c, store *st, const char *id, webhook_brief *out,
                      th_error *err);
/* Forget @id (after a change made by this process). NULL id: forget all. */
void webhook_cache_forget(webhook_cache *c, const char *id);

#endif

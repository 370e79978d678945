/* SPDX-License-Identifier: MIT */
/*
 * app — the composition root: what one trellohook process is. It owns the
 * configuration, the store, the metrics, the webhook cache, the connected C
 * functions and the login throttle, and hands the service layer one narrow
 * svc_ctx over them; while serving it also owns the receive queue
 * (receiver.c), the HTTP server, the dispatcher and the health runner
 * (health_runner.c), wires them together and stops them in order.
 * `struct th_app` is the public opaque handle of include/trellohook.h; only
 * app/ and cli/ (the layers above everything it composes) see its fields.
 */
#ifndef TH_APP_H
#define TH_APP_H

#include <pthread.h>

#include "app/receiver.h"
#include "config/config.h"
#include "http/http.h"
#include "server/server.h"
#include "service/ctx.h"
#include "service/metrics.h"
#include "store/store.h"
#include "util/wait.h"

struct dispatcher;
struct health_runner;
struct retention_runner;

struct th_app {
	th_config cfg;
	store *st;
	metrics m;
	webhook_cache *cache;
	svc_funcs funcs;              /* th_connect() adds; read by the dispatcher and handlers_* */
	svc_throttle *throttle;       /* the admin's login throttle */
	svc_ctx svc;                  /* points at the parts above (and at rcv while serving) */
	server_ctx srv;               /* what the routes get while serving */
	receiver *rcv;                /* while serving */
	http_server *http;            /* while serving */
	admin_live *live;             /* while serving: the live view's streams */
	struct dispatcher *disp;      /* while serving */
	struct health_runner *health; /* while serving: the periodic health pass */
	struct retention_runner *retention; /* while serving, with TRELLOHOOK_RETENTION */
	int stop_pipe[2];                   /* th_app_stop() writes a byte; serve waits on it */
	int64_t started_at;
};
typedef struct th_app app;

/* Create an app from a loaded configuration: opens (and migrates) the store.
 * Free with th_app_free(). */
int app_new(app **out, const th_config *cfg, th_error *err);

/* The service context of @a (owned by @a; valid until th_app_free). */
svc_ctx *app_svc(app *a);

/* Start the receive queue (the group-commit writer) and hand it to the
 * service context, as serving does; app_receiver_stop() commits what is
 * queued, unhooks and frees it (NULL-safe on a stopped one). Used by
 * app_serve and by tests that receive without a server. Not thread-safe:
 * call before/after the threads that receive. */
int app_receiver_start(app *a, th_error *err);
void app_receiver_stop(app *a);

/* Called once the server accepts connections, with its base URL. */
typedef void (*app_ready_fn)(void *ctx, const char *url);

/* Serve until stopped (signal or th_app_stop). */
int app_serve(app *a, app_ready_fn ready, void *ctx, th_error *err);

/* What serve's background runners share (health_runner.c, retention.c):
 * the app they work for and their thread. Each runner's struct begins with
 * one. (runner.c) */
struct app_runner {
	app *a;
	wait_thread t;
};
/* Allocate a zeroed runner of @size bytes (a struct that begins with a
 * struct app_runner) for @a and start @fn on it in its thread. 0 and *@out
 * (cast it to the runner's type), or an error ("cannot start @what: …") and *@out NULL.
 * The thread is named @name (thread_name). */
int app_runner_start(struct app_runner **out, app *a, size_t size, void *(*fn)(void *),
                     const char *what, const char *name, th_error *err);
/* Stop @r's thread (wait_thread_stop: wait for its current round) and free
 * it. NULL-safe. */
void app_runner_stop(struct app_runner *r);

/* Start the periodic health pass in a thread of @a (first pass shortly after
 * start, then every cfg.health_interval_ms; nothing when that is 0 or there
 * is no API key). health_stop() wakes it, waits for it and frees it;
 * NULL-safe on an app without one. (health_runner.c) */
int health_start(app *a, th_error *err);
void health_stop(app *a);

/* Start pruning in a thread of @a when cfg.retention_ms is set (first prune
 * a few seconds after start, then hourly); retention_stop() stops it after
 * its current batch. NULL-safe. (retention.c) */
int retention_start(app *a, th_error *err);
void retention_stop(app *a);

#endif

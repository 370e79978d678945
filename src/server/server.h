/* SPDX-License-Identifier: MIT */
/*
 * server — the HTTP routes of `trellohook serve`:
 *   /callbacks/{id}  Trello's HEAD check and signed POSTs (callbacks.c)
 *   /healthz, /metrics                                   (health.c)
 *   /admin/...       the web admin                       (admin*.c)
 * Each route is a function taking the service context and a parsed request,
 * so tests can drive it without sockets. The routes reach the core only
 * through the service layer (svc_* / handlers_*); what they need from the
 * layers beside them (the dispatcher's /metrics series) is handed in by the
 * composition root as a hook.
 */
#ifndef TH_SERVER_H
#define TH_SERVER_H

#include "http/http.h"
#include "service/ctx.h"

typedef struct admin_live admin_live;

/* What the routes of one server get; owned by its creator (the app), which
 * keeps it alive and unchanged while the server runs. */
typedef struct server_ctx {
	svc_ctx *svc;
	/* more /metrics series (the dispatcher's), appended after ours; NULL: none */
	int (*render_extra)(void *ctx, buf *out);
	void *render_ctx;
	admin_live *live; /* the live view's streams; NULL: GET /admin/events/stream answers 503 */
} server_ctx;

/* The http_handler_fn given to the HTTP server; @ctx is a server_ctx. */
int server_route(void *ctx, http_request *req, http_response *res);

int server_callbacks(svc_ctx *sc, http_request *req, http_response *res, const char *id);
int server_healthz(svc_ctx *sc, http_request *req, http_response *res);
int server_metrics(const server_ctx *s, http_request *req, http_response *res);
/* POST /callbacks/.probe: proof for `trellohook doctor` (probe.c, service/doctor.h). */
int server_probe(svc_ctx *sc, http_request *req, http_response *res);
/* The admin pages; @rest is the path after "/admin" ("" or "/..."). */
int server_admin(svc_ctx *sc, http_request *req, http_response *res, const char *rest);

/* ---- the live view (admin_live.c) ----------------------------------------------

 * GET /admin/events/stream: Server-Sent Events, one "row" message per new
 * event (its events-table row), ": heartbeat" comments every heartbeat_ms.
 * Needs an admin session (401 without); at most per_session streams per
 * session (429 beyond) and total in all (503 beyond), with Retry-After. */
#define ADMIN_LIVE_PER_SESSION 4
#define ADMIN_LIVE_TOTAL 32
#define ADMIN_LIVE_HEARTBEAT_MS 15000
typedef struct admin_live_opts {
	unsigned per_session; /* 0: ADMIN_LIVE_PER_SESSION */
	unsigned total;       /* 0: ADMIN_LIVE_TOTAL */
	int64_t heartbeat_ms; /* 0: ADMIN_LIVE_HEARTBEAT_MS */
	svc_ctx *sc;          /* asked before each heartbeat whether sessions are still
	                         signed in (NULL: never asked); must outlive the live view */
} admin_live_opts;
int admin_live_new(admin_live **out, const admin_live_opts *o, th_error *err);
/* Ends every stream and frees; call after the HTTP server and the receiver
 * stopped. NULL-safe. */
void admin_live_free(admin_live *l);
/* After @ev was committed: push its row to every open stream (cheap when
 * none is open). Any thread. NULL-safe. */
void admin_live_publish(admin_live *l, const event *ev);
/* End every stream of the session @id_hash (SHA-256 hex): it signed out.
 * Any thread that does not hold the live view (not from its callbacks).
 * NULL-safe. */
void admin_live_end_session(admin_live *l, const char *id_hash);
/* How many streams are open. */
size_t admin_live_open(admin_live *l);
int server_events_stream(const server_ctx *s, http_request *req, http_response *res);

#endif

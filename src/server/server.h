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

/* What the routes of one server get; owned by its creator (the app), which
 * keeps it alive and unchanged while the server runs. */
typedef struct server_ctx {
	svc_ctx *svc;
	/* more /metrics series (the dispatcher's), appended after ours; NULL: none */
	int (*render_extra)(void *ctx, buf *out);
	void *render_ctx;
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

#endif

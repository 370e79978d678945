/*
 * server — the HTTP routes of `trellohook serve`:
 *   /callbacks/{id}  Trello's HEAD check and signed POSTs (callbacks.c)
 *   /healthz, /metrics                                   (health.c)
 *   /admin/...       the web admin                       (admin*.c)
 * Each route is a function taking the app and a parsed request, so tests can
 * drive it without sockets.
 */
#ifndef TH_SERVER_H
#define TH_SERVER_H

#include "http/http.h"
#include "service/app.h"

/* The http_handler_fn given to the HTTP server; @ctx is the app. */
int server_route(void *ctx, http_request *req, http_response *res);

int server_callbacks(app *a, http_request *req, http_response *res, const char *id);
int server_healthz(app *a, http_request *req, http_response *res);
int server_metrics(app *a, http_request *req, http_response *res);
/* The admin pages; @rest is the path after "/admin" ("" or "/..."). */
int server_admin(app *a, http_request *req, http_response *res, const char *rest);

#endif

/* SPDX-License-Identifier: MIT */
/* router.c — maps a request path to its route. */
#include <string.h>

#include "server/server.h"
#include "util/log.h"

int server_route(void *ctx, http_request *req, http_response *res)
{
	server_ctx *s = ctx;
	const char *path = req->path;
	if (str_eq(path, "/callbacks/.probe"))
		return server_probe(s->svc, req, res); /* trellohook doctor (probe.c) */
	if (str_starts(path, "/callbacks/"))
		return server_callbacks(s->svc, req, res, path + strlen("/callbacks/"));
	if (str_eq(path, "/healthz"))
		return server_healthz(s->svc, req, res);
	if (str_eq(path, "/metrics"))
		return server_metrics(s, req, res);
	if (str_eq(path, "/admin/events/stream"))
		return server_events_stream(s, req, res); /* the live view (admin_live.c) */
	if (str_eq(path, "/admin") || str_starts(path, "/admin/"))
		return server_admin(s->svc, req, res, path + strlen("/admin"));
	if (str_eq(path, "/")) {
		res->status = 302;
		http_response_header(res, "Location", "/admin/");
		return HTTP_DONE;
	}
	http_response_text(res, 404, "not found: %s\n", "no such route");
	return HTTP_DONE;
}

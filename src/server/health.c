/* SPDX-License-Identifier: MIT */
/* health.c — GET /healthz (can the store take writes?) and GET /metrics. */
#include "server/server.h"
#include "service/service.h"
#include "util/log.h"

static bool is_get_or_head(const http_request *req)
{
	return str_eq(req->method, "GET") || str_eq(req->method, "HEAD");
}

int server_healthz(svc_ctx *sc, http_request *req, http_response *res)
{
	if (!is_get_or_head(req)) {
		http_response_text(res, 405, "method not allowed\n");
		http_response_header(res, "Allow", "GET, HEAD");
		return HTTP_DONE;
	}
	th_error err = {0, {0}};
	if (svc_store_health(sc, time_mono_ms(), &err)) {
		/* the reason is the store's own error text (no secrets: the store
		 * URL's password never reaches an error message) */
		log_warn("health", "%s", err.msg);
		http_response_text(res, 503, "%s\n", err.msg);
	} else {
		http_response_text(res, 200, "ok\n");
	}
	http_response_header(res, "Cache-Control", "no-store");
	return HTTP_DONE;
}

int server_metrics(const server_ctx *srv, http_request *req, http_response *res)
{
	if (!is_get_or_head(req)) {
		http_response_text(res, 405, "method not allowed\n");
		http_response_header(res, "Allow", "GET, HEAD");
		return HTTP_DONE;
	}
	res->status = 200;
	if (!metrics_render(srv->svc->m, &res->body)) {
		/* deliveries by status and the age of the oldest pending one, from the store */
		int64_t counts[5] = {0};
		int64_t oldest = 0;
		th_error err = {0, {0}};
		if (!svc_delivery_stats(srv->svc, counts, &oldest, &err))
			(void)metrics_render_deliveries(counts, oldest, time_now_ms(), &res->body);
		else
			log_warn("metrics", "delivery counts unavailable: %s", err.msg);
		/* the dispatcher's gauges: running deliveries, workers (while serving) */
		if (srv->render_extra)
			srv->render_extra(srv->render_ctx, &res->body);
	}
	http_response_header(res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	return HTTP_DONE;
}

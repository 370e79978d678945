/* SPDX-License-Identifier: MIT */
/*
 * records.c — what the CLI and the admin read from the store and the few
 * things they change there outside webhooks and tokens: events, deliveries,
 * handlers as listed, store facts (name, schema version, health, delivery
 * counts). Each is the service layer's door to one store operation, so that
 * cli/ and server/ never reach the store themselves; rules that belong to an
 * operation (what a listing may show, what a retry means) live here.
 */
#include "service/service.h"

int svc_event_list(svc_ctx *sc, const event_query *q, event_row **out, size_t *n, th_error *err)
{
	return store_event_list(sc->st, q, out, n, err);
}

int svc_event_get(svc_ctx *sc, const char *id, event *out, th_error *err)
{
	return store_event_get(sc->st, id, out, err);
}

int svc_delivery_list(svc_ctx *sc, const char *status, const char *event_id, size_t limit,
                      delivery **out, size_t *n, th_error *err)
{
	return store_delivery_list(sc->st, status, event_id, limit, out, n, err);
}

int svc_delivery_get(svc_ctx *sc, const char *id, delivery *out, th_error *err)
{
	return store_delivery_get(sc->st, id, out, err);
}

int svc_delivery_stats(svc_ctx *sc, int64_t counts[5], int64_t *oldest_pending_at, th_error *err)
{
	return store_delivery_stats(sc->st, counts, oldest_pending_at, err);
}

int svc_delivery_recover(svc_ctx *sc, size_t *recovered, th_error *err)
{
	return store_delivery_recover(sc->st, recovered, err);
}

int svc_webhook_rows(svc_ctx *sc, webhook **out, size_t *n, th_error *err)
{
	return store_webhook_list(sc->st, out, n, err);
}

int svc_token_rows(svc_ctx *sc, token **out, size_t *n, th_error *err)
{
	return store_token_list(sc->st, out, n, err);
}

int svc_migrate(svc_ctx *sc, int *out_version, th_error *err)
{
	return store_migrate(sc->st, out_version, err);
}

int svc_ping(svc_ctx *sc, th_error *err)
{
	return store_ping(sc->st, err);
}

const char *svc_store_name(const svc_ctx *sc)
{
	return store_name(sc->st);
}

int svc_events_store(svc_ctx *sc, event **evs, size_t n, enum store_put *results, th_error *err)
{
	return store_events_put(sc->st, evs, n, results, err);
}

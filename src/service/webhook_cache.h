/* SPDX-License-Identifier: MIT */
/*
 * webhook_cache — what the receive path needs to know about a webhook, from
 * memory when fresh (see webhook_cache.c). Thread-safe (one mutex; the store
 * is read outside it).
 */
#ifndef TH_WEBHOOK_CACHE_H
#define TH_WEBHOOK_CACHE_H

#include "service/ctx.h"

/* What the receive path needs to know about a webhook. */
typedef struct webhook_brief {
	bool found;
	enum webhook_state state;
	char callback_url[600];
	char id_model[32];
} webhook_brief;

/* A cache whose entries live @ttl_ms. Free with webhook_cache_free (NULL-safe). */
int webhook_cache_new(webhook_cache **out, int64_t ttl_ms);
void webhook_cache_free(webhook_cache *c);
/* Look @id up, from the cache when fresh, else from the store (then cached). */
int webhook_cache_get(webhook_cache *c, store *st, const char *id, webhook_brief *out,
                      th_error *err);
/* Forget @id (after a change made by this process). NULL id: forget all. */
void webhook_cache_forget(webhook_cache *c, const char *id);

#endif

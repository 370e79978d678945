/* SPDX-License-Identifier: MIT */
/* webhook_cache.c — a small fixed-size map from webhook id to what the receive
 * path needs (callback URL, state), with a time-to-live so that changes made
 * by other processes (the CLI, another instance) are seen within ttl_ms.
 * Unknown ids are cached too (briefly), so a flood of POSTs to a bogus id does
 * not turn into a flood of store reads.
 *
 * A stale entry never lets an event in after a removal: the store checks the
 * webhook again inside the batch's transaction (STORE_PUT_GONE, answered
 * 410), and receive.c then forgets the entry. Changes made by this process
 * (svc_webhook_*) forget their entry at once. docs/internals.md, "Removal". */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service/webhook_cache.h"

#define CACHE_SLOTS 4096 /* power of two */

struct slot {
	char id[72];
	webhook_brief brief;
	int64_t fetched_at;
};

struct webhook_cache {
	pthread_mutex_t lock;
	int64_t ttl_ms;
	/* bumped by every forget: a miss whose store read began before a forget
	 * does not store its (possibly older) answer, so a change made by this
	 * process is never hidden behind a stale entry for ttl_ms */
	uint64_t forgets;
	struct slot slots[CACHE_SLOTS];
};

static size_t slot_of(const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h & (CACHE_SLOTS - 1));
}

int webhook_cache_new(webhook_cache **out, int64_t ttl_ms)
{
	webhook_cache *c = calloc(1, sizeof *c);
	if (!c)
		return TH_ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->ttl_ms = ttl_ms;
	*out = c;
	return 0;
}

void webhook_cache_free(webhook_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int webhook_cache_get(webhook_cache *c, store *st, const char *id, webhook_brief *out,
                      th_error *err)
{
	if (strlen(id) >= sizeof c->slots[0].id)
		return th_err(err, TH_EINVAL, "webhook id too long");
	size_t i = slot_of(id);
	int64_t now = time_mono_ms();
	pthread_mutex_lock(&c->lock);
	struct slot *s = &c->slots[i];
	if (s->fetched_at && str_eq(s->id, id) && now - s->fetched_at < c->ttl_ms) {
		*out = s->brief;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	uint64_t forgets = c->forgets;
	pthread_mutex_unlock(&c->lock);

	webhook w = {0};
	webhook_brief b;
	memset(&b, 0, sizeof b);
	int rc = store_webhook_get(st, id, &w, err);
	if (rc == TH_ENOTFOUND) {
		b.found = false;
	} else if (rc) {
		return rc;
	} else {
		b.found = true;
		b.state = w.state;
		str_copy(b.callback_url, sizeof b.callback_url,
		         w.callback_url ? w.callback_url : "");
		str_copy(b.id_model, sizeof b.id_model, w.id_model ? w.id_model : "");
		webhook_clear(&w);
	}
	pthread_mutex_lock(&c->lock);
	if (c->forgets == forgets) {
		str_copy(s->id, sizeof s->id, id);
		s->brief = b;
		s->fetched_at = now ? now : 1;
	}
	pthread_mutex_unlock(&c->lock);
	*out = b;
	return 0;
}

void webhook_cache_forget(webhook_cache *c, const char *id)
{
	pthread_mutex_lock(&c->lock);
	c->forgets++;
	if (!id) {
		for (size_t i = 0; i < CACHE_SLOTS; i++)
			c->slots[i].fetched_at = 0;
	} else {
		struct slot *s = &c->slots[slot_of(id)];
		if (str_eq(s->id, id))
			s->fetched_at = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

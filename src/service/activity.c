/* SPDX-License-Identifier: MIT */
/*
 * activity.c — the admin charts' numbers from the hourly event rollup (see
 * activity.h). The rollup has one row per (hour, webhook, action type), so a
 * 24-hour window reads at most 24 x webhooks x types small rows.
 */
#include <stdlib.h>
#include <string.h>

#include "service/activity.h"
#include "store/store.h"
#include "util/util.h"

/* The series of @list named @name, added (zeroed) when missing; NULL when
 * out of memory. */
static svc_activity_series *series_for(svc_activity_series **list, size_t *n, size_t nbuckets,
                                       const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (str_eq((*list)[i].name, name))
			return &(*list)[i];
	svc_activity_series *grown = realloc(*list, (*n + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	*list = grown;
	svc_activity_series *s = &grown[*n];
	s->name = str_dup(name ? name : "");
	s->values = calloc(nbuckets, sizeof *s->values);
	s->total = 0;
	if (!s->name || !s->values) {
		free(s->name);
		free(s->values);
		return NULL;
	}
	(*n)++;
	return s;
}

static int by_total_desc(const void *a, const void *b)
{
	const svc_activity_series *x = a, *y = b;
	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->name, y->name);
}

int svc_activity_read(svc_ctx *sc, int64_t now_ms, int64_t bucket_hours, size_t nbuckets,
                      bool per_webhook, svc_activity *out, th_error *err)
{
	memset(out, 0, sizeof *out);
	if ((bucket_hours != 1 && bucket_hours != 24) || nbuckets == 0 ||
	    (int64_t)nbuckets * bucket_hours > SVC_ACTIVITY_MAX_BUCKETS)
		return th_err(err, TH_EINVAL,
		              "activity: buckets of 1 or 24 hours, at most %d hours in all",
		              SVC_ACTIVITY_MAX_BUCKETS);
	int64_t now_hour = now_ms / 3600000;
	int64_t last = now_hour - now_hour % bucket_hours; /* first hour of the current bucket */
	out->bucket_hours = bucket_hours;
	out->nbuckets = nbuckets;
	out->first_hour = last - (int64_t)(nbuckets - 1) * bucket_hours;
	event_rollup_row *rows = NULL;
	size_t nr = 0;
	int ret = store_event_rollup(sc->st, out->first_hour, last + bucket_hours, bucket_hours,
	                             per_webhook, &rows, &nr, err);
	if (ret != 0)
		return ret;
	for (size_t i = 0; i < nr; i++) {
		size_t k = (size_t)((rows[i].hour - out->first_hour) / bucket_hours);
		if (rows[i].hour < out->first_hour || k >= nbuckets || rows[i].n < 0)
			continue;
		svc_activity_series *t =
		    series_for(&out->types, &out->ntypes, nbuckets, rows[i].action_type);
		svc_activity_series *w =
		    t && per_webhook
		        ? series_for(&out->webhooks, &out->nwebhooks, nbuckets, rows[i].webhook_id)
		        : NULL;
		if (!t || (per_webhook && !w)) {
			ret = th_err(err, TH_ENOMEM, "activity: out of memory");
			break;
		}
		uint64_t v = (uint64_t)rows[i].n;
		t->values[k] += v;
		t->total += v;
		if (w) {
			w->values[k] += v;
			w->total += v;
		}
	}
	event_rollup_list_free(rows, nr);
	if (ret == 0 && out->ntypes > 1)
		qsort(out->types, out->ntypes, sizeof *out->types, by_total_desc);
	return ret;
}

const svc_activity_series *svc_activity_webhook(const svc_activity *a, const char *name)
{
	for (size_t i = 0; i < a->nwebhooks; i++)
		if (str_eq(a->webhooks[i].name, name))
			return &a->webhooks[i];
	return NULL;
}

bool svc_activity_silent(uint64_t events_7d, int64_t last_event_at, int64_t now_ms,
                         int64_t *limit_ms)
{
	if (limit_ms)
		*limit_ms = 0;
	if (events_7d < SVC_SILENT_MIN_EVENTS || last_event_at <= 0)
		return false;
	const int64_t week_ms = (int64_t)7 * 24 * 3600000;
	int64_t limit = SVC_SILENT_FACTOR * (week_ms / (int64_t)events_7d);
	if (limit < SVC_SILENT_FLOOR_MS)
		limit = SVC_SILENT_FLOOR_MS;
	if (limit_ms)
		*limit_ms = limit;
	return now_ms - last_event_at > limit;
}

static void series_free(svc_activity_series *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].name);
		free(s[i].values);
	}
	free(s);
}

void svc_activity_clear(svc_activity *a)
{
	if (!a)
		return;
	series_free(a->types, a->ntypes);
	series_free(a->webhooks, a->nwebhooks);
	memset(a, 0, sizeof *a);
}

/* SPDX-License-Identifier: MIT */
/*
 * activity — what the admin's charts show, read from the hourly event rollup
 * (store/store.h, event_rollup) and never from the events themselves: events
 * per bucket (an hour or a day) by action type and by webhook, over a window
 * that ends now.
 */
#ifndef TH_SVC_ACTIVITY_H
#define TH_SVC_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/ctx.h"

#define SVC_ACTIVITY_MAX_BUCKETS 744 /* 31 days of hours */

/* One name (an action type or a webhook id) and its count per bucket. */
typedef struct svc_activity_series {
	char *name;
	uint64_t *values; /* nbuckets counts, oldest bucket first */
	uint64_t total;
} svc_activity_series;

/* Counts per bucket; bucket i starts at hour first_hour + i * bucket_hours
 * (hours since the epoch, UTC). */
typedef struct svc_activity {
	int64_t first_hour;
	int64_t bucket_hours; /* 1 or 24 */
	size_t nbuckets;
	svc_activity_series *types; /* by action type, largest total first */
	size_t ntypes;
	svc_activity_series *webhooks; /* by webhook id, in no particular order */
	size_t nwebhooks;
} svc_activity;

/* Fill @out with the @nbuckets buckets of @bucket_hours hours (1: hours, 24:
 * days aligned to UTC midnight) that end with the one holding @now_ms.
 * TH_EINVAL for a bucket size other than 1 or 24 or more than
 * SVC_ACTIVITY_MAX_BUCKETS hours in all; the store's error otherwise. @out
 * is the caller's, freed with svc_activity_clear() (also after a failure).
 * Thread-safe: reads the store only. */
int svc_activity_read(svc_ctx *sc, int64_t now_ms, int64_t bucket_hours, size_t nbuckets,
                      svc_activity *out, th_error *err);

/* The series of @a named @name (a webhook id), or NULL. */
const svc_activity_series *svc_activity_webhook(const svc_activity *a, const char *name);

/* The silence rule of the webhooks page. A webhook "usually gets events"
 * when it received at least SVC_SILENT_MIN_EVENTS in the 7 days before now;
 * it is "silent" when, besides, its last event is older than 4 times its
 * mean inter-arrival over those 7 days (7 days / that count), and at least
 * 1 hour. The mean comes from the hourly rollup (a bounded read); a median
 * would need every arrival time. Returns whether @last_event_at (ms, 0:
 * never) is silent at @now_ms; *@limit_ms (may be NULL) gets the threshold
 * (0 when the webhook does not usually get events). Pure; thread-safe. */
#define SVC_SILENT_MIN_EVENTS 24
#define SVC_SILENT_FACTOR 4
#define SVC_SILENT_FLOOR_MS 3600000
bool svc_activity_silent(uint64_t events_7d, int64_t last_event_at, int64_t now_ms,
                         int64_t *limit_ms);

/* Free what svc_activity_read() filled. NULL-safe; @a is zeroed. */
void svc_activity_clear(svc_activity *a);

#endif

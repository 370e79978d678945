/* SPDX-License-Identifier: MIT */
/*
 * backfill — recovering what Trello did while trellohook was not listening.
 *
 * Trello retries a failed delivery only a few times, then drops it; after
 * enough failures it disables the webhook. It keeps every action, though,
 * and lists them per model (GET /1/{boards,lists,cards}/{id}/actions, see
 * ../shared/trello/API.md "Listing past actions"). One pass for one webhook:
 *
 *   1. since = the newest action a pass stored (its mark), never older than
 *      now - TRELLOHOOK_BACKFILL_MAX_AGE; without a mark, the webhook's
 *      creation (what happened before it existed was never missed);
 *   2. the model, fetched once (the payload's "model", as in a delivery);
 *   3. the actions newer than since, newest first, pages of at most 1,000,
 *      going back with `before` = the oldest id seen until a short page;
 *   4. stored oldest first, in chunks, through svc_events_store (the
 *      function the receive queue's writer commits with): the same dedupe by
 *      (webhook, action id), the same summary, one delivery per matching
 *      handler; payload {"action": ..., "model": ...}, source "backfill";
 *   5. after each chunk commits, the mark moves to its newest action. A
 *      kill -9 between the two re-lists that chunk next time, and dedupe
 *      stores none of it twice.
 *
 * A pass that Trello ends (401 expired/invalid token: the token is flagged
 * by the client's hook; 404 the model is gone; 429 after every wait;
 * timeouts; an answer that is not an actions listing) logs one line and
 * leaves the error in the mark, which `webhook show` and the admin show;
 * what it stored before stays stored and the next pass goes on from there.
 *
 * Thread-safety: passes of different webhooks may run at once; two passes
 * of one webhook at once store nothing twice (the store's dedupe), though
 * their events may interleave.
 */
#ifndef TH_SERVICE_BACKFILL_H
#define TH_SERVICE_BACKFILL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/ctx.h"
#include "trello/trello.h"

/* Told as a pass goes on: @listed actions listed so far (@pages pages), then
 * @stored of @total stored. Runs on the pass's thread. */
typedef void (*backfill_progress_fn)(void *ctx, size_t done, size_t total);

typedef struct backfill_opts {
	/* NULL: from the mark. Else a date (YYYY-MM-DDThh:mm:ss[.fff]Z) or an
	 * action id; either is still bounded by TRELLOHOOK_BACKFILL_MAX_AGE. */
	const char *since;
	int page_size;   /* actions per listing call, 1..1000; 0: 1000 */
	size_t max_held; /* most actions held in memory at once; 0: BACKFILL_MAX_HELD */
	int64_t now_ms;  /* 0: the wall clock (tests give their own) */
	backfill_progress_fn progress; /* optional */
	void *progress_ctx;
	const atomic_bool *cancel; /* optional: true ends the pass between chunks */
} backfill_opts;

#define BACKFILL_OPTS_INIT                                                                   \
	{                                                                                    \
		.since = NULL, .page_size = 0, .max_held = 0, .now_ms = 0, .progress = NULL, \
		.progress_ctx = NULL, .cancel = NULL                                         \
	}

/* When more actions than this are newer than since, a pass stores the
 * oldest ones first, moves the mark, and lists again from there. */
#define BACKFILL_MAX_HELD 20000
/* The most pages one listing may take (1,000 x 1,000 actions). */
#define BACKFILL_MAX_PAGES 1000
/* Events stored per transaction. */
#define BACKFILL_CHUNK 100

typedef struct backfill_result {
	char since[32];    /* the bound the pass listed from: a date or an action id */
	bool clamped;      /* --since (or the mark) was older than the horizon */
	size_t listed;     /* actions Trello listed */
	size_t recovered;  /* of them, stored now (not stored before) */
	size_t duplicates; /* of them, stored before (delivered, or an earlier pass) */
	int64_t gap_from;  /* date (ms) of the oldest recovered action, 0: none */
	int64_t gap_to;    /* date (ms) of the newest recovered action, 0: none */
	char error[256];   /* why the pass ended early, "" when it did not */
} backfill_result;

/* One pass for webhook @id (see the top of this file), with Trello client
 * @tc (its rate limits shared with everything else the client does).
 * Returns 0 when the pass completed; otherwise the pass's error (@err and
 * out->error say why, and so does the mark); what was stored before the
 * error stays stored. TH_EINVAL: a --since that is neither a date nor an
 * action id, or a webhook that cannot be backfilled (being removed, not yet
 * registered, a member or organization model). */
int svc_backfill_webhook(svc_ctx *sc, trello_client *tc, const char *id, const backfill_opts *o,
                         backfill_result *out, th_error *err);

/* A pass for every webhook that is active on Trello (state active), one
 * after the other, each ending on its own; a webhook whose pass fails does
 * not stop the others. Logs one line per webhook that recovered something
 * or failed. Returns how many events were recovered in all. */
size_t svc_backfill_all(svc_ctx *sc, trello_client *tc, const atomic_bool *cancel);

/* Ask serve's Trello thread for a pass of webhook @id (the admin's button):
 * returns at once; the outcome lands in the mark. TH_EUNAVAIL when not
 * serving (or no API key), TH_ENOTFOUND for an unknown webhook. */
int svc_backfill_request(svc_ctx *sc, const char *id, th_error *err);

/* After webhook @id was registered or enabled again (sync, webhook update
 * --active true): queue a pass on serve's Trello thread when serving, else
 * run one now with @tc. Returns the events it recovered (0 when queued or
 * failed; a failure is logged and kept in the mark). */
size_t svc_backfill_after_enable(svc_ctx *sc, trello_client *tc, const char *id);

/* The mark of webhook @id (TH_ENOTFOUND: no pass has run yet). Clear with
 * backfill_mark_clear. */
int svc_backfill_mark(svc_ctx *sc, const char *id, backfill_mark *out, th_error *err);

/* The payload a backfilled event is stored with: {"action": @action,
 * "model": @model} byte for byte (both compact JSON objects as Trello sent
 * them, borrowed). *out is malloc'd; free() it. TH_ENOMEM or TH_ETOOBIG. */
int backfill_payload(const char *action, const char *model, char **out, size_t *len, th_error *err);

#endif
